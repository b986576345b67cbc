/* Packet decoding: link layer, IPv4/IPv6, TCP/UDP/ICMP (issue 4, "Decoding").
 *
 * net_decode() turns the captured bytes of one packet into a net_pkt: where each layer starts,
 * the addresses, ports and TCP header fields, and where the L4 payload lies. It is the first
 * thing that touches bytes from the network, so it trusts nothing: every length field is checked
 * against the captured bytes, nothing outside [data, data+caplen) is read, and nonsense sets
 * NET_PKT_MALFORMED rather than failing an assert. A packet is decoded as far as it can be;
 * `layer` says how far and `reason` why it stopped there.
 *
 * The layers live in their own files: net_link.c (Ethernet with 802.1Q/802.1ad tags, Linux
 * cooked SLL and SLL2, BSD null/loop, raw IP), net_ip.c (IPv4 with options and fragments, IPv6
 * with extension headers), net_l4.c (TCP, UDP, SCTP ports, ICMP and ICMPv6 type/code). Tunnels
 * (IP-in-IP, GRE, VXLAN), MPLS and PPPoE are not looked into: the outer header is reported with
 * its payload. Nothing is allocated; a net_pkt borrows the caller's packet bytes. */
#ifndef NET_DECODE_H
#define NET_DECODE_H

#include <stddef.h>
#include <stdint.h>

/* Link types, numbered as pcap's LINKTYPE_ / Linux DLT_ values (pcap/dlt.h). Raw IP is also
 * accepted as 12 and 14, the DLT_RAW values of other platforms. */
enum {
    NET_LINK_NULL = 0,   /* 4-byte address family in the capturing host's byte order */
    NET_LINK_EN10MB = 1, /* Ethernet II / 802.3 with SNAP, 802.1Q / 802.1ad tags */
    NET_LINK_RAW = 101,  /* raw IPv4 or IPv6, told apart by the version nibble */
    NET_LINK_LOOP = 108, /* like NULL, family in network byte order */
    NET_LINK_SLL = 113,  /* Linux cooked v1, 16-byte header */
    NET_LINK_IPV4 = 228, /* raw IPv4 only */
    NET_LINK_IPV6 = 229, /* raw IPv6 only */
    NET_LINK_SLL2 = 276, /* Linux cooked v2, 20-byte header */
};

/* How far decoding got: the highest layer whose header was read whole. */
enum {
    NET_LAYER_NONE = 0, /* not even the link header */
    NET_LAYER_LINK = 1, /* link header read; ethertype known */
    NET_LAYER_IP = 2,   /* IP header (and IPv6 extension headers) read; addresses valid */
    NET_LAYER_L4 = 3,   /* transport header read; ports / TCP fields / ICMP type valid */
};

/* net_pkt.flags */
enum {
    NET_PKT_TRUNC = 1u << 0,     /* snap length: captured bytes ended before the packet did */
    NET_PKT_MALFORMED = 1u << 1, /* a length or field that cannot be right (see reason) */
    NET_PKT_FRAG = 1u << 2,      /* an IP fragment (first or not) */
    NET_PKT_FRAG_MORE = 1u << 3, /* more fragments follow (IPv4 MF, IPv6 M) */
    NET_PKT_DF = 1u << 4,        /* IPv4 don't-fragment */
};

/* TCP flag bits, as in the TCP header's flags byte. */
enum {
    NET_TCP_FIN = 0x01,
    NET_TCP_SYN = 0x02,
    NET_TCP_RST = 0x04,
    NET_TCP_PSH = 0x08,
    NET_TCP_ACK = 0x10,
    NET_TCP_URG = 0x20,
    NET_TCP_ECE = 0x40,
    NET_TCP_CWR = 0x80,
};

enum { NET_ADDR_SRC = 0, NET_ADDR_DST = 1 };

/* One decoded packet. A layer's fields are meaningful only when `layer` reached it; the rest are
 * zero, except that ethertype, ip_version and ip_proto are filled as soon as they are read, also
 * when the header around them then fails a check. Numbers are in host byte order. */
typedef struct net_pkt {
    int linktype;
    uint32_t flags;     /* NET_PKT_* */
    uint8_t layer;      /* NET_LAYER_* */
    const char *reason; /* static string: why decoding stopped or what is wrong; NULL if all ok */

    /* link */
    uint16_t ethertype;  /* after VLAN tags; 0x0800 / 0x86DD for IP (also set for raw IP) */
    uint8_t vlan_count;  /* tags seen (802.1Q / 802.1ad), including any beyond vlan_id[] */
    uint16_t vlan_id[2]; /* outer first, 12-bit VID */
    size_t ip_offset;    /* offset of the IP header in data */

    /* IP */
    uint8_t ip_version; /* 4 or 6 */
    uint8_t family;     /* AF_INET or AF_INET6 */
    uint8_t src[16];    /* IPv4 uses the first 4 bytes */
    uint8_t dst[16];
    uint8_t ip_proto;     /* the upper-layer protocol after extension headers (6 TCP, 17 UDP ...) */
    uint8_t ttl;          /* TTL or hop limit */
    uint8_t ext_count;    /* IPv6 extension headers (and IPv4 AH) skipped */
    uint16_t frag_offset; /* in bytes; nonzero: a non-first fragment, which has no L4 header */
    uint32_t frag_id;     /* IPv4 identification or IPv6 fragment identification */
    size_t l4_offset;     /* offset of the upper-layer header in data */

    /* L4 (TCP, UDP, SCTP: ports; ICMP / ICMPv6: type and code) */
    uint16_t sport, dport;
    uint8_t tcp_flags; /* NET_TCP_* */
    uint32_t tcp_seq, tcp_ack;
    uint16_t tcp_win; /* unscaled */
    uint8_t icmp_type, icmp_code;

    /* The bytes after the deepest header decoded (the L4 payload, or the IP payload when there
     * is no L4 header to read: a non-first fragment, ESP, an unknown protocol). Borrowed from
     * data; payload_len counts captured bytes only, payload_wirelen what the headers declare. */
    const uint8_t *payload;
    size_t payload_len;
    size_t payload_wirelen;
} net_pkt;

/* Decode one captured packet of link type `linktype` (NET_LINK_* / DLT_*). caplen bytes were
 * captured of a packet wirelen bytes long (a wirelen below caplen is taken as caplen). Returns 0
 * when decoded, possibly partially (out->layer, flags and reason say how far and why), and
 * PTB_EINVAL for an unsupported link type or a NULL out (data may be NULL only if caplen is 0).
 * A non-NULL out is always overwritten. Reads only [data, data+caplen); out->payload points into data. */
int net_decode(int linktype, const uint8_t *data, size_t caplen, size_t wirelen, net_pkt *out);

/* Text form of the source (NET_ADDR_SRC) or destination (NET_ADDR_DST) address, written to buf
 * ("192.0.2.1", "2001:db8::1"). Returns buf, or NULL when p has no IP layer, `which` is neither,
 * or cap is too small (46 bytes always suffice). */
const char *net_ip_str(const net_pkt *p, int which, char *buf, size_t cap);

/* ---- Between the decoder files only (not for callers) ---------------------------------- */

/* The bytes a layer may look at: p[0..cap) were captured, wire bytes (>= cap) were on the wire
 * from p onwards. */
typedef struct net_cur {
    const uint8_t *base; /* start of the packet, to compute offsets */
    const uint8_t *p;
    size_t cap;
    size_t wire;
} net_cur;

/* Mark out as stopped for `reason`. A header that runs past the captured bytes is a truncation
 * when more was on the wire; when it was not (cap == wire: the whole packet, or all that an
 * enclosing header declares, was captured) the packet itself is short: malformed instead. */
void net_pkt_stop(net_pkt *out, const net_cur *c, uint32_t flags, const char *reason);

/* Need n bytes at c: 1 if there, else marks out truncated (see net_pkt_stop) and returns 0. */
int net_cur_need(net_pkt *out, const net_cur *c, size_t n, const char *what);

/* Advance c by n bytes (n <= c->cap). */
void net_cur_skip(net_cur *c, size_t n);

/* Set out->payload* to everything at c. */
void net_pkt_set_payload(net_pkt *out, const net_cur *c);

/* net_ip.c: decode the IP packet at c; version 0 = take it from the first nibble, else that
 * version must match. Goes on to net_l4_decode(). */
void net_ip_decode(net_pkt *out, net_cur *c, int version);

/* net_l4.c: decode the upper-layer header out->ip_proto at c (the IP payload, already limited
 * to what the IP header declares). */
void net_l4_decode(net_pkt *out, net_cur *c);

#endif
