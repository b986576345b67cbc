/* Live capture: net_capture.h. One thread: poll the pcap fd (and a pipe that says stop), read
 * what is there with pcap_dispatch, feed the flow engine; every stats_ms compare the kernel's drop
 * counter with what was already reported and put any increase on record as a gap. */
#include <errno.h>
#include <fcntl.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "event_type.h"
#include "net_capture.h"

#define CAPTURE_BLOCK_MS 50 /* a block of packets is handed over at the latest after this */

struct net_capture {
    store *s;
    pcap_t *p;
    net_flows *f;
    pthread_t th;
    bool started;
    int wake[2];
    atomic_bool stop;
    int err;
    int stats_ms;
    uint64_t drops_seen, ifdrops_seen;
    uint64_t gaps;
    char device[64];
};

void net_capture_options_default(net_capture_options *o)
{
    memset(o, 0, sizeof *o);
    o->device = "any";
    o->netns_fd = -1;
    o->buffer_bytes = 32u << 20;
    o->stats_ms = 500;
    net_flows_options_default(&o->flows);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Report new drops as a gap event. */
static int check_drops(net_capture *c)
{
    struct pcap_stat ps;
    if (pcap_stats(c->p, &ps) != 0)
        return 0;
    uint64_t drops = ps.ps_drop, ifdrops = ps.ps_ifdrop;
    if (drops <= c->drops_seen) {
        c->ifdrops_seen = ifdrops;
        return 0;
    }
    char detail[192];
    snprintf(detail, sizeof detail,
             "the kernel dropped %llu packets on %s (capture buffer full); %llu received so far",
             (unsigned long long)(drops - c->drops_seen), c->device,
             (unsigned long long)ps.ps_recv);
    Ptb__V1__Gap g = PTB__V1__GAP__INIT;
    g.origin = (char *)"pcap";
    g.reason = (char *)"drops";
    g.count = drops - c->drops_seen;
    g.detail = detail;
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.source = PTB__V1__SOURCE__SOURCE_PCAP;
    ev.body_case = PTB__V1__EVENT__BODY_GAP;
    ev.gap = &g;
    c->drops_seen = drops;
    c->ifdrops_seen = ifdrops;
    c->gaps++;
    return store_append(c->s, &ev, 0, NULL);
}

static void on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
    net_capture *c = (net_capture *)user;
    if (c->err)
        return;
    /* nanosecond precision was asked for: tv_usec holds nanoseconds */
    int64_t ts = (int64_t)h->ts.tv_sec * 1000000000LL + h->ts.tv_usec;
    int rc = net_flows_packet(c->f, ts, 0, pcap_datalink(c->p), bytes, h->caplen, h->len);
    if (rc) {
        c->err = rc;
        pcap_breakloop(c->p);
    }
}

static void *capture_thread(void *arg)
{
    net_capture *c = arg;
    struct pollfd pf[2] = {{.fd = pcap_get_selectable_fd(c->p), .events = POLLIN},
                           {.fd = c->wake[0], .events = POLLIN}};
    int64_t next_stats = mono_ms() + c->stats_ms;
    while (!c->err && !atomic_load(&c->stop)) {
        int64_t wait = next_stats - mono_ms();
        if (wait < 0)
            wait = 0;
        int n = poll(pf, 2, (int)(wait > 100 ? 100 : wait));
        if (n < 0 && errno != EINTR)
            break;
        /* read whatever is there: with TPACKET_V3 a block may be ready without POLLIN */
        while (!c->err && pcap_dispatch(c->p, -1, on_packet, (u_char *)c) > 0)
            ;
        if (mono_ms() >= next_stats) {
            int rc = check_drops(c);
            if (rc && !c->err)
                c->err = rc;
            next_stats = mono_ms() + c->stats_ms;
        }
    }
    /* stop: drain the ring (packets the tree sent just before it exited: the kernel hands a
     * partly filled block over after CAPTURE_BLOCK_MS), then end the flows */
    for (int idle = 0; !c->err && idle * 20 < 3 * CAPTURE_BLOCK_MS;) {
        int n = pcap_dispatch(c->p, -1, on_packet, (u_char *)c);
        if (n > 0) {
            idle = 0;
            continue;
        }
        idle++;
        poll(pf, 1, 20);
    }
    int rc = check_drops(c);
    if (rc && !c->err)
        c->err = rc;
    rc = net_flows_finish(c->f);
    if (rc && !c->err)
        c->err = rc;
    return NULL;
}

/* Create and activate the pcap handle (in the caller's current network namespace). */
static int open_pcap(net_capture *c, const net_capture_options *o, ptb_errbuf *eb)
{
    char err[PCAP_ERRBUF_SIZE] = "";
    pcap_t *p = pcap_create(c->device, err);
    if (!p)
        return ptb_errf(eb, -ENODEV, "cannot capture on %s: %s", c->device, err);
    pcap_set_snaplen(p, 262144); /* whole packets: reassembly needs them; the store cuts */
    pcap_set_promisc(p, 0);
    /* not immediate mode: on Linux that means TPACKET_V2, a ring of fixed frames each as large
     * as the snap length (256 KiB: 128 packets in 32 MiB, and drops at 1 Gbit/s of small
     * packets); TPACKET_V3 packs packets into blocks, handed over when full or after the
     * timeout */
    pcap_set_timeout(p, CAPTURE_BLOCK_MS);
    pcap_set_buffer_size(p, (int)(o->buffer_bytes ? o->buffer_bytes : 32u << 20));
    pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_NANO);
    int rc = pcap_activate(p);
    if (rc < 0) {
        int code = rc == PCAP_ERROR_PERM_DENIED      ? -EPERM
                   : rc == PCAP_ERROR_NO_SUCH_DEVICE ? -ENODEV
                                                     : PTB_EIO;
        ptb_errf(eb, code, "cannot capture on %s: %s%s", c->device, pcap_geterr(p),
                 code == -EPERM ? " (packet capture needs root or CAP_NET_RAW)" : "");
        pcap_close(p);
        return code;
    }
    /* On "any", the kernel hands every loopback packet to the packet socket twice (as sent and
     * as received) and libpcap throws the sent copy away in user space: half of the ring and
     * of the work wasted, and a drop counter that counts lost loopback packets twice. A kernel
     * filter that refuses the sent copy on lo (ifindex 1, in a namespace always) fixes both;
     * it needs SLL2 (the interface index in the header), which the kernel filter reads as
     * packet metadata. */
    const char *dedupe = NULL;
    if (!strcmp(c->device, "any") && pcap_set_datalink(p, DLT_LINUX_SLL2) == 0)
        dedupe = "not (outbound and ifindex 1)";
    char *expr = NULL;
    const char *user = o->filter && *o->filter ? o->filter : NULL;
    if (dedupe && user) {
        size_t n = strlen(dedupe) + strlen(user) + 16;
        if ((expr = malloc(n)))
            snprintf(expr, n, "(%s) and (%s)", dedupe, user);
    } else if (dedupe || user) {
        expr = strdup(dedupe ? dedupe : user);
    }
    if ((dedupe || user) && !expr) {
        pcap_close(p);
        return ptb_errf(eb, PTB_ENOMEM, "out of memory");
    }
    if (expr) {
        struct bpf_program prog;
        if (pcap_compile(p, &prog, expr, 1, PCAP_NETMASK_UNKNOWN) != 0) {
            ptb_errf(eb, PTB_EINVAL, "bad capture filter '%s': %s", user ? user : expr,
                     pcap_geterr(p));
            free(expr);
            pcap_close(p);
            return PTB_EINVAL;
        }
        free(expr);
        rc = pcap_setfilter(p, &prog);
        pcap_freecode(&prog);
        if (rc != 0) {
            ptb_errf(eb, PTB_EIO, "cannot set the capture filter: %s", pcap_geterr(p));
            pcap_close(p);
            return PTB_EIO;
        }
    }
    if (pcap_setnonblock(p, 1, err) != 0) {
        ptb_errf(eb, PTB_EIO, "cannot capture on %s: %s", c->device, err);
        pcap_close(p);
        return PTB_EIO;
    }
    c->p = p;
    return 0;
}

int net_capture_start(store *s, const net_capture_options *o, net_capture **out, ptb_errbuf *eb)
{
    net_capture_options d;
    if (!o) {
        net_capture_options_default(&d);
        o = &d;
    }
    net_capture *c = calloc(1, sizeof *c);
    if (!c)
        return ptb_errf(eb, PTB_ENOMEM, "out of memory");
    c->s = s;
    c->wake[0] = c->wake[1] = -1;
    c->stats_ms = o->stats_ms > 0 ? o->stats_ms : 500;
    snprintf(c->device, sizeof c->device, "%s", o->device ? o->device : "any");
    int rc = 0;
    if (o->netns_fd >= 0) {
        int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (self < 0) {
            rc = ptb_errf(eb, -errno, "cannot open this thread's network namespace: %s",
                          strerror(errno));
        } else if (setns(o->netns_fd, CLONE_NEWNET) != 0) {
            rc = ptb_errf(eb, -errno, "cannot enter the run's network namespace: %s",
                          strerror(errno));
            close(self);
        } else {
            rc = open_pcap(c, o, eb);
            if (setns(self, CLONE_NEWNET) != 0 && !rc) /* cannot stay in there */
                rc = ptb_errf(eb, -errno, "cannot leave the run's network namespace: %s",
                              strerror(errno));
            close(self);
        }
    } else {
        rc = open_pcap(c, o, eb);
    }
    if (!rc && (rc = net_flows_new(s, &o->flows, &c->f)) != 0)
        ptb_errf(eb, rc, "cannot start the flow table: %s", ptb_strerror(rc));
    if (!rc && pipe2(c->wake, O_CLOEXEC | O_NONBLOCK) != 0)
        rc = ptb_errf(eb, -errno, "pipe: %s", strerror(errno));
    if (!rc) {
        char meta[128];
        snprintf(meta, sizeof meta, "%s%s (link type %s)", c->device,
                 o->netns_fd >= 0 ? " in the run's network namespace" : "",
                 pcap_datalink_val_to_name(pcap_datalink(c->p)));
        store_meta_set(s, "net.iface.0", meta);
        if ((rc = pthread_create(&c->th, NULL, capture_thread, c)) != 0)
            rc = ptb_errf(eb, -rc, "cannot start the capture thread: %s", strerror(rc));
        else
            c->started = true;
    }
    if (rc) {
        net_capture_stop(c, NULL);
        return rc;
    }
    *out = c;
    return 0;
}

int net_capture_stop(net_capture *c, net_capture_stats *st)
{
    if (!c)
        return 0;
    if (c->started) {
        atomic_store(&c->stop, true);
        if (write(c->wake[1], "x", 1) < 0) { /* the thread also wakes within 100 ms */
        }
        pthread_join(c->th, NULL);
    }
    int rc = c->err;
    if (st) {
        memset(st, 0, sizeof *st);
        if (c->f)
            net_flows_stats_get(c->f, &st->flows);
        st->dropped = c->drops_seen;
        st->gap_events = c->gaps;
    }
    net_flows_free(c->f);
    if (c->p)
        pcap_close(c->p);
    for (int i = 0; i < 2; i++)
        if (c->wake[i] >= 0)
            close(c->wake[i]);
    free(c);
    return rc;
}
