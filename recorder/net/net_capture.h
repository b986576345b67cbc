/* Live packet capture for `ptb record` (issue 4, "Capture").
 *
 *   net_capture *c;
 *   net_capture_start(store, &opts, &c, &eb);   // opens the device, starts the thread
 *   ... the recorded command runs ...
 *   net_capture_stop(c, &stats);                // drains, ends the flows, joins
 *
 * One thread per capture reads packets with libpcap (memory-mapped TPACKET_V3 ring whose blocks
 * are handed over when full or after 50 ms, nanosecond timestamps, whole packets) and feeds them to the flow engine (net_flow.h), which
 * appends net.packet, net.flow, net.dns, net.tls and net.http events. The store's queue is
 * waited on, never dropped from: when the thread falls behind, the kernel ring fills and the
 * kernel drops instead; the drop counters (pcap_stats) are read every stats_ms and at the end,
 * and every increase becomes a `gap` event (origin "pcap", reason "drops", count).
 *
 * In a network namespace (netns_fd >= 0) the device is opened from inside it: "any" there sees
 * every interface of the namespace, loopback included, and nothing else. */
#ifndef NET_CAPTURE_H
#define NET_CAPTURE_H

#include <stdint.h>

#include "net_flow.h"
#include "ptb_error.h"
#include "store.h"

typedef struct net_capture net_capture;

typedef struct net_capture_options {
    const char *device;    /* interface name, or "any" (default) */
    const char *filter;    /* BPF filter expression (pcap-filter(7)); NULL: every packet */
    int netns_fd;          /* open the device inside this network namespace; -1: where we are */
    uint32_t buffer_bytes; /* kernel ring size (default 32 MiB) */
    int stats_ms;          /* how often drops are checked (default 500) */
    net_flows_options flows;
} net_capture_options;

void net_capture_options_default(net_capture_options *o);

/* Open the device and start the capture thread. Returns 0; -EPERM without CAP_NET_RAW; another
 * error for a missing device or a bad filter; each with a message in eb. Records the device
 * (meta "net.iface.0") in the store. */
int net_capture_start(store *s, const net_capture_options *o, net_capture **out, ptb_errbuf *eb);

typedef struct net_capture_stats {
    net_flows_stats flows;
    uint64_t dropped;    /* packets the kernel dropped (ps_drop + ps_ifdrop) */
    uint64_t gap_events; /* gap events appended for drops */
} net_capture_stats;

/* Read what is still in the ring, end every flow, check the drop counters one last time, stop
 * the thread and free c. Returns 0 or the error that stopped the thread (a store error). */
int net_capture_stop(net_capture *c, net_capture_stats *st);

#endif
