/* Packets to events: flows, bounded TCP reassembly, the application decoders, attribution
 * (issue 4, "Decoding"; DESIGN.md "Events").
 *
 *   net_flows *f; net_flows_options o; net_flows_options_default(&o);
 *   net_flows_new(store, &o, &f);
 *   for each packet: net_flows_packet(f, ts_ns, iface, linktype, data, caplen, wirelen);
 *   net_flows_finish(f);  // closes open flows: their net.flow events
 *   net_flows_free(f);
 *
 * Each packet becomes a `net.packet` event tied to its flow: its first snaplen bytes, or all of
 * it when its flow goes to a host of interest or when it carries bytes a decoder reads (DNS
 * messages, a ClientHello, HTTP heads: the evidence behind each application event stays
 * readable by other tools). Flows are keyed by protocol and both ends; the client is
 * the side that sent the SYN (UDP: the first sender). A flow ends at FIN both ways, RST, idle
 * time, or net_flows_finish, and becomes a `net.flow` event with bytes and packets each way.
 * Each TCP direction is reassembled in order (retransmissions and overlaps trimmed, out-of-order
 * segments held up to a bound) and fed to the decoders: TLS ClientHello (`net.tls`), HTTP/1.x
 * heads in both directions (`net.http`, bodies skipped by Content-Length or chunked framing, so
 * that every message of a keep-alive connection is read), DNS over TCP; UDP datagrams to or from
 * port 53 (and 5353) are read as DNS (`net.dns`). Memory is bounded: per direction at most
 * stream_max bytes wait for a decoder and ooo_max bytes out of order, at most flows_max flows.
 * What a bound cuts off is counted in the flow (missing_bytes) and never decoded from a guess.
 *
 * Attribution: an owner table (net_owners) holds the 5-tuples that the tracer saw at connect,
 * accept, bind and sendto, with the exec_id; each flow takes the exec_id of the entry with the
 * same ends. DNS answers seen earlier name the server of a flow that has no SNI or Host.
 *
 * The same code serves the live capture (net_capture.h) and `ptb import --pcap`. Not
 * thread-safe: one thread feeds one net_flows; net_owners is thread-safe. */
#ifndef NET_FLOW_H
#define NET_FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* ---- owners: 5-tuple -> exec_id --------------------------------------------------------- */

typedef struct net_owners net_owners;

int net_owners_new(net_owners **out);
void net_owners_free(net_owners *o);

/* Record that exec_id owns the socket with these ends. proto is "tcp" or "udp" (others are
 * ignored); ip texts as inet_ntop writes them ("10.0.0.1", "::1"; IPv4-mapped IPv6 addresses
 * are taken as IPv4); remote_ip NULL or "0.0.0.0"/"::" with port 0 for an unconnected socket
 * (matches any peer of that local end). A later entry for the same ends replaces the earlier.
 * Returns 0 or PTB_ENOMEM. Thread-safe. */
int net_owners_add(net_owners *o, const char *proto, const char *local_ip, uint16_t local_port,
                   const char *remote_ip, uint16_t remote_port, uint64_t exec_id);

/* exec_id owning the ends (a = one end, b = the other; either may be the local one), 0 when
 * unknown. A socket connected with exactly these ends wins (a's before b's: a flow's client),
 * then a listening or unconnected socket on a's end, then on b's; *exact (may be NULL) says
 * whether the first kind matched, so a caller can ask again later for a better answer. family
 * AF_INET/AF_INET6, addresses as in net_pkt (16 bytes, IPv4 in the first 4). Thread-safe. */
uint64_t net_owners_find(net_owners *o, int ip_proto, int family, const uint8_t a[16],
                         uint16_t a_port, const uint8_t b[16], uint16_t b_port, bool *exact);

/* ---- flows ------------------------------------------------------------------------------ */

typedef struct net_flows net_flows;

typedef struct net_flows_options {
    uint32_t snaplen;  /* bytes of each packet kept in net.packet (default 256); 0: keep all */
    bool packets;      /* emit net.packet events (default true) */
    uint32_t source;   /* Event.source of the events (default SOURCE_PCAP) */
    size_t stream_max; /* bytes per TCP direction waiting for a decoder (default 64 KiB) */
    size_t ooo_max;    /* out-of-order bytes held per TCP direction (default 256 KiB) */
    size_t flows_max;  /* flows tracked at once; beyond, the longest idle is ended (65536) */
    int64_t idle_ns;   /* a flow without packets for this long is ended (default 120 s) */
    /* hosts of interest: a flow whose host (SNI, HTTP Host or DNS name) equals one of these or
     * ends with "." + one, keeps its packets whole. Borrowed. */
    const char *const *keep_hosts;
    size_t n_keep_hosts;
    net_owners *owners; /* attribution (borrowed; NULL: exec_id 0) */
} net_flows_options;

void net_flows_options_default(net_flows_options *o);

int net_flows_new(store *s, const net_flows_options *o, net_flows **out);

/* One captured packet: link type (NET_LINK_*), caplen bytes of a wirelen-byte packet captured at
 * ts_ns (CLOCK_REALTIME), on interface iface (a run-local number). Appends its events. Returns 0,
 * or the store's error (the store stopped: feed no more). A packet that does not decode is still
 * stored (net.packet, flow 0). */
int net_flows_packet(net_flows *f, int64_t ts_ns, uint32_t iface, int linktype, const uint8_t *data,
                     size_t caplen, size_t wirelen);

/* End every open flow (net.flow events, state "open"). Returns 0 or the store's error. */
int net_flows_finish(net_flows *f);

typedef struct net_flows_stats {
    uint64_t packets, bytes; /* fed */
    uint64_t undecoded;      /* packets without an IP layer */
    uint64_t flows;          /* net.flow events */
    uint64_t dns, tls, http; /* application events */
    uint64_t missing_bytes;  /* TCP bytes never seen (holes, bounds) */
    uint64_t events;         /* all events appended */
} net_flows_stats;

void net_flows_stats_get(const net_flows *f, net_flows_stats *out);

void net_flows_free(net_flows *f);

#endif
