/* libFuzzer target: the flow engine (recorder/net/net_flow.c): flows, TCP reassembly with
 * out-of-order segments, holes and bounds, HTTP body framing (Content-Length, chunked), DNS over
 * TCP, and the decoders behind them, fed with a sequence of packets.
 *
 * Input: records of [selector:1][length:2 big-endian][bytes:length]. The selector's low 4 bits
 * pick the link type (as fuzz_net_decode), bits 4-5 add to the time step (so that idle flows
 * expire), bit 6 cuts the wire length short of the bytes (snap length), bit 7 marks the
 * interface 1. Small bounds (4 flows, 512-byte streams, 1 KiB out of order) make every limit
 * reachable. The events go to one real store under /tmp, removed at exit; the engine must not
 * fail (the store is healthy), crash, leak, or read outside the packets (ASan). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_decode.h"
#include "net_flow.h"
#include "ptb_error.h"
#include "store.h"

static const int fuzz_links[] = {NET_LINK_EN10MB, NET_LINK_SLL,  NET_LINK_SLL2,
                                 NET_LINK_NULL,   NET_LINK_LOOP, NET_LINK_RAW,
                                 NET_LINK_IPV4,   NET_LINK_IPV6, 147};

static store *fz_store;
static net_owners *fz_owners;
static char fz_dir[64];

static void fz_cleanup(void)
{
    store_close(fz_store);
    net_owners_free(fz_owners);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fz_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", fz_dir);
}

static void fz_init(void)
{
    snprintf(fz_dir, sizeof fz_dir, "/tmp/ptb-fuzz-flow-XXXXXX");
    if (!mkdtemp(fz_dir))
        abort();
    char path[96];
    snprintf(path, sizeof path, "%s/s.ptb", fz_dir);
    if (store_open(path, NULL, STORE_CREATE, &fz_store) || net_owners_new(&fz_owners))
        abort();
    /* libcrypto registers its own exit handler when first used: use it now, so that it runs
     * after fz_cleanup (handlers run last registered first) */
    uint8_t h[32];
    if (store_blob_put(fz_store, "x", 1, NULL, h))
        abort();
    /* an owner for the loopback ends the corpus uses most */
    net_owners_add(fz_owners, "tcp", "127.0.0.1", 80, NULL, 0, 1);
    atexit(fz_cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fz_store)
        fz_init();
    net_flows_options o;
    net_flows_options_default(&o);
    o.flows_max = 4;
    o.stream_max = 512;
    o.ooo_max = 1024;
    o.idle_ns = 1000;
    o.snaplen = 64;
    o.owners = fz_owners;
    static const char *const keep[] = {"example.com"};
    o.keep_hosts = keep;
    o.n_keep_hosts = 1;
    net_flows *f;
    if (net_flows_new(fz_store, &o, &f))
        abort();
    int64_t ts = 1;
    size_t i = 0;
    while (i + 3 <= size) {
        uint8_t sel = data[i];
        size_t len = (size_t)data[i + 1] << 8 | data[i + 2];
        i += 3;
        if (len > size - i)
            len = size - i;
        int lt = fuzz_links[(sel & 0x0F) % (sizeof fuzz_links / sizeof *fuzz_links)];
        size_t wire = sel & 0x40 ? len + 1000 : len;
        ts += 1 + ((sel >> 4) & 3) * 400;
        /* a copy of exactly len bytes, so that ASan sees any read past the packet */
        uint8_t *pkt = len ? malloc(len) : NULL;
        if (len && !pkt)
            abort();
        if (len)
            memcpy(pkt, data + i, len);
        int rc = net_flows_packet(f, ts, sel >> 7, lt, pkt, len, wire);
        free(pkt);
        if (rc)
            abort();
        i += len;
    }
    if (net_flows_finish(f))
        abort();
    net_flows_stats st;
    net_flows_stats_get(f, &st);
    if (st.flows > st.packets)
        abort();
    net_flows_free(f);
    return 0;
}
