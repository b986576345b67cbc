/* Transport-layer decoding (see net_decode.h). c holds the IP payload, already limited to the
 * length the IP header declares.
 *
 *   TCP     sport[2] dport[2] seq[4] ack[4] off_res[1] flags[1] win[2] csum[2] urg[2]
 *           options[(off-5)*4]; data offset >= 5. Options are skipped, not parsed: the stream
 *           layer needs only the payload and the fixed fields.
 *   UDP     sport[2] dport[2] len[2] csum[2]; len >= 8 (0 is allowed only as a jumbogram's,
 *           then the IP length counts). A len beyond the IP payload is malformed; a len below
 *           it limits the payload.
 *   SCTP    sport[2] dport[2] vtag[4] csum[4]; chunks are the payload.
 *   ICMP / ICMPv6  type[1] code[1] csum[2]; the payload starts after these 4 bytes (the rest
 *           of the ICMP header, which depends on the type, is part of it). */
#include "net_decode.h"

enum {
    NET_P_ICMP = 1,
    NET_P_TCP = 6,
    NET_P_UDP = 17,
    NET_P_ICMPV6 = 58,
    NET_P_SCTP = 132,
};

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void net_l4_tcp(net_pkt *out, net_cur *c)
{
    if (!net_cur_need(out, c, 20, "truncated TCP header"))
        return;
    const uint8_t *h = c->p;
    size_t off = (size_t)(h[12] >> 4) * 4;
    if (off < 20) {
        net_pkt_stop(out, c, NET_PKT_MALFORMED, "TCP data offset below 5");
        return;
    }
    if (off > c->wire) {
        net_pkt_stop(out, c, NET_PKT_MALFORMED, "TCP data offset beyond the IP payload");
        return;
    }
    if (!net_cur_need(out, c, off, "truncated TCP options"))
        return;
    out->sport = rd16(h);
    out->dport = rd16(h + 2);
    out->tcp_seq = rd32(h + 4);
    out->tcp_ack = rd32(h + 8);
    out->tcp_flags = h[13];
    out->tcp_win = rd16(h + 14);
    net_cur_skip(c, off);
    out->layer = NET_LAYER_L4;
    net_pkt_set_payload(out, c);
}

static void net_l4_udp(net_pkt *out, net_cur *c)
{
    if (!net_cur_need(out, c, 8, "truncated UDP header"))
        return;
    const uint8_t *h = c->p;
    size_t len = rd16(h + 4);
    if (len == 0 && c->wire > 0xFFFF)
        len = c->wire; /* UDP jumbogram (RFC 2675) */
    if (len < 8) {
        net_pkt_stop(out, c, NET_PKT_MALFORMED, "UDP length below 8");
        return;
    }
    if (len > c->wire) {
        net_pkt_stop(out, c, NET_PKT_MALFORMED, "UDP length beyond the IP payload");
        return;
    }
    out->sport = rd16(h);
    out->dport = rd16(h + 2);
    c->wire = len;
    if (c->cap > len)
        c->cap = len;
    net_cur_skip(c, 8);
    out->layer = NET_LAYER_L4;
    net_pkt_set_payload(out, c);
}

static void net_l4_sctp(net_pkt *out, net_cur *c)
{
    if (!net_cur_need(out, c, 12, "truncated SCTP header"))
        return;
    out->sport = rd16(c->p);
    out->dport = rd16(c->p + 2);
    net_cur_skip(c, 12);
    out->layer = NET_LAYER_L4;
    net_pkt_set_payload(out, c);
}

static void net_l4_icmp(net_pkt *out, net_cur *c)
{
    if (!net_cur_need(out, c, 4, "truncated ICMP header"))
        return;
    out->icmp_type = c->p[0];
    out->icmp_code = c->p[1];
    net_cur_skip(c, 4);
    out->layer = NET_LAYER_L4;
    net_pkt_set_payload(out, c);
}

void net_l4_decode(net_pkt *out, net_cur *c)
{
    net_pkt_set_payload(out, c);
    switch (out->ip_proto) {
    case NET_P_TCP: net_l4_tcp(out, c); break;
    case NET_P_UDP: net_l4_udp(out, c); break;
    case NET_P_SCTP: net_l4_sctp(out, c); break;
    case NET_P_ICMP:
        if (out->ip_version == 4)
            net_l4_icmp(out, c);
        else if (!out->reason)
            out->reason = "ICMPv4 over IPv6";
        break;
    case NET_P_ICMPV6:
        if (out->ip_version == 6)
            net_l4_icmp(out, c);
        else if (!out->reason)
            out->reason = "ICMPv6 over IPv4";
        break;
    default:
        if (!out->reason)
            out->reason = "transport protocol not decoded";
        break;
    }
}
