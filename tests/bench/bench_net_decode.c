/* bench_net_decode: decode throughput of stored packets (issue 4, "Performance").
 *
 *   bench_net_decode STORE [--runs N]
 *
 * STORE holds net.packet events (from `ptb import --pcap` or `ptb record`). Timed, each the best
 * of N runs (default 3):
 *   read    the net.packet events read from the store and decoded from protobuf (the floor);
 *   decode  the same, plus net_decode of every packet (link, IP, TCP/UDP headers);
 *   flows   the same, plus the whole flow engine (flows, reassembly, DNS/TLS/HTTP decoders),
 *           appending its net.flow/net.dns/net.tls/net.http events to a scratch store (packets
 *           themselves not stored again).
 * Prints one line per measure: packets, seconds, packets/s; with --json, one JSON object. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "event_type.h"
#include "net_decode.h"
#include "net_flow.h"
#include "store.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

enum { M_READ, M_DECODE, M_FLOWS };

/* One pass over the packets; returns packets seen, or -1. */
static long long pass(store *s, int mode, const char *scratch, long long *checksum)
{
    store_txn *t;
    if (store_txn_begin(s, &t))
        return -1;
    store_range r;
    memset(&r, 0, sizeof r);
    r.by_index = true;
    r.index = STORE_IX_TYPE;
    r.key = PTB__V1__EVENT__BODY_NET_PACKET;
    store_cursor *c;
    if (store_cursor_open(t, &r, &c)) {
        store_txn_end(t);
        return -1;
    }
    store *out = NULL;
    net_flows *f = NULL;
    if (mode == M_FLOWS) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
        if (system(cmd) != 0 || store_open(scratch, NULL, STORE_CREATE, &out))
            return -1;
        net_flows_options o;
        net_flows_options_default(&o);
        o.packets = false;
        if (net_flows_new(out, &o, &f))
            return -1;
    }
    long long n = 0, sum = 0;
    const ptb_event *ev;
    while (store_cursor_next(c, &ev) == 0) {
        const Ptb__V1__NetPacket *p = ev->net_packet;
        if (!p)
            continue;
        n++;
        if (mode == M_DECODE) {
            net_pkt k;
            net_decode((int)p->linktype, p->data.data, p->data.len, p->origlen, &k);
            sum += k.layer + k.sport;
        } else if (mode == M_FLOWS) {
            if (net_flows_packet(f, ev->ts_ns, p->iface, (int)p->linktype, p->data.data,
                                 p->data.len, p->origlen))
                return -1;
        } else {
            sum += (long long)p->data.len;
        }
    }
    store_cursor_close(c);
    store_txn_end(t);
    if (f) {
        net_flows_stats st;
        if (net_flows_finish(f))
            return -1;
        net_flows_stats_get(f, &st);
        sum += (long long)(st.flows + st.dns + st.tls + st.http);
        net_flows_free(f);
        if (store_close(out))
            return -1;
    }
    *checksum = sum;
    return n;
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    int runs = 3;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json"))
            json = true;
        else
            dir = argv[i];
    }
    if (!dir || runs < 1) {
        fprintf(stderr, "usage: bench_net_decode STORE [--runs N] [--json]\n");
        return 2;
    }
    store *s;
    if (store_open(dir, NULL, STORE_RDONLY, &s)) {
        fprintf(stderr, "bench_net_decode: cannot open %s\n", dir);
        return 3;
    }
    char scratch[256];
    snprintf(scratch, sizeof scratch, "/tmp/bench-net-decode-%d.ptb", (int)getpid());
    static const char *const names[] = {"read", "decode", "flows"};
    if (json)
        printf("{");
    for (int m = M_READ; m <= M_FLOWS; m++) {
        double best = 1e30;
        long long n = 0, sum = 0;
        for (int r = 0; r < runs; r++) {
            double t0 = now_s();
            n = pass(s, m, scratch, &sum);
            double dt = now_s() - t0;
            if (n < 0) {
                fprintf(stderr, "bench_net_decode: %s failed\n", names[m]);
                return 1;
            }
            if (dt < best)
                best = dt;
        }
        if (json)
            printf("%s\"%s\": {\"packets\": %lld, \"seconds\": %.4f, \"packets_per_s\": %.0f}",
                   m ? ", " : "", names[m], n, best, n / best);
        else
            printf("%-7s %10lld packets %8.3f s %12.0f packets/s (check %lld)\n", names[m], n, best,
                   n / best, sum);
    }
    if (json)
        printf("}\n");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_net_decode: cannot remove %s\n", scratch);
    store_close(s);
    return 0;
}
