/* Link-layer decoding and the net_decode() entry point (see net_decode.h).
 *
 * Header layouts read here (all multi-byte fields big-endian unless said otherwise):
 *   Ethernet      dst[6] src[6] type[2]; type <= 1500 is an 802.3 length, followed by LLC
 *                 (dsap, ssap, ctrl) and, for SNAP (AA AA 03), oui[3] type[2]
 *   802.1Q/ad tag tci[2] type[2] after a type of 0x8100, 0x88A8 or 0x9100 (at most
 *                 NET_VLAN_MAX tags are followed, so a frame of tags cannot loop us long)
 *   Linux SLL     pkttype[2] hatype[2] halen[2] addr[8] protocol[2]          (16 bytes)
 *   Linux SLL2    protocol[2] reserved[2] ifindex[4] hatype[2] pkttype[1] halen[1] addr[8]
 *                                                                             (20 bytes)
 *   NULL / LOOP   family[4]: host order of the capturing machine for NULL (so either order:
 *                 a value with its high 16 bits set is byte-swapped, as tcpdump does), network
 *                 order for LOOP. 2 is IPv4; 24, 28, 30 are IPv6 (NetBSD/OpenBSD, FreeBSD,
 *                 Darwin).
 * In SLL the protocol values below 0x0600 (1 = 802.3, 4 = 802.2 LLC ...) are not IP. */
#include <string.h>

#include "net_decode.h"
#include "ptb_error.h"

enum {
    NET_ETH_IPV4 = 0x0800,
    NET_ETH_IPV6 = 0x86DD,
    NET_ETH_8021Q = 0x8100,
    NET_ETH_8021AD = 0x88A8,
    NET_ETH_QINQ_OLD = 0x9100,
    NET_VLAN_MAX = 8,
};

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void net_pkt_stop(net_pkt *out, const net_cur *c, uint32_t flags, const char *reason)
{
    if ((flags & NET_PKT_TRUNC) && c->cap >= c->wire)
        flags = (flags & ~(uint32_t)NET_PKT_TRUNC) | NET_PKT_MALFORMED;
    out->flags |= flags;
    if (!out->reason)
        out->reason = reason;
}

int net_cur_need(net_pkt *out, const net_cur *c, size_t n, const char *what)
{
    if (c->cap >= n)
        return 1;
    net_pkt_stop(out, c, NET_PKT_TRUNC, what);
    return 0;
}

void net_cur_skip(net_cur *c, size_t n)
{
    c->p += n;
    c->cap -= n;
    c->wire -= n;
}

void net_pkt_set_payload(net_pkt *out, const net_cur *c)
{
    out->payload = c->p;
    out->payload_len = c->cap;
    out->payload_wirelen = c->wire;
}

/* Headers read whole but the payload they declare not all captured: a truncation too. */
static void net_pkt_check_payload(net_pkt *out)
{
    if (out->payload && out->payload_len < out->payload_wirelen) {
        out->flags |= NET_PKT_TRUNC;
        if (!out->reason)
            out->reason = "payload truncated";
    }
}

/* Follow 802.1Q / 802.1ad tags starting at c (just after a type field that said "tag"), then
 * return the inner ethertype in *type. Returns 0 when stopped (out says why). */
static int net_vlan_walk(net_pkt *out, net_cur *c, uint16_t *type)
{
    while (*type == NET_ETH_8021Q || *type == NET_ETH_8021AD || *type == NET_ETH_QINQ_OLD) {
        if (out->vlan_count >= NET_VLAN_MAX) {
            net_pkt_stop(out, c, NET_PKT_MALFORMED, "too many VLAN tags");
            return 0;
        }
        if (!net_cur_need(out, c, 4, "truncated VLAN tag"))
            return 0;
        if (out->vlan_count < 2)
            out->vlan_id[out->vlan_count] = rd16(c->p) & 0x0FFF;
        out->vlan_count++;
        *type = rd16(c->p + 2);
        net_cur_skip(c, 4);
    }
    return 1;
}

/* Ethernet II, or 802.3 with LLC/SNAP. */
static int net_link_ether(net_pkt *out, net_cur *c, uint16_t *type)
{
    if (!net_cur_need(out, c, 14, "truncated Ethernet header"))
        return 0;
    *type = rd16(c->p + 12);
    net_cur_skip(c, 14);
    if (!net_vlan_walk(out, c, type))
        return 0;
    if (*type <= 1500) {
        /* 802.3 length: only SNAP carries an ethertype; other LLC frames (STP, IPX ...) are
         * not IP. */
        if (!net_cur_need(out, c, 3, "truncated LLC header"))
            return 0;
        if (c->p[0] != 0xAA || c->p[1] != 0xAA || c->p[2] != 0x03) {
            out->layer = NET_LAYER_LINK;
            net_pkt_set_payload(out, c);
            out->reason = "802.3 LLC frame, not IP";
            return 0;
        }
        if (!net_cur_need(out, c, 8, "truncated SNAP header"))
            return 0;
        *type = rd16(c->p + 6);
        net_cur_skip(c, 8);
        if (!net_vlan_walk(out, c, type))
            return 0;
    }
    return 1;
}

static int net_link_sll(net_pkt *out, net_cur *c, uint16_t *type, int v2)
{
    size_t hlen = v2 ? 20 : 16;
    if (!net_cur_need(out, c, hlen, v2 ? "truncated SLL2 header" : "truncated SLL header"))
        return 0;
    *type = rd16(c->p + (v2 ? 0 : 14));
    net_cur_skip(c, hlen);
    if (*type < 0x0600) {
        out->layer = NET_LAYER_LINK;
        net_pkt_set_payload(out, c);
        out->reason = "cooked frame with a non-ethertype protocol";
        return 0;
    }
    return net_vlan_walk(out, c, type);
}

static int net_link_null(net_pkt *out, net_cur *c, uint16_t *type, int net_order)
{
    if (!net_cur_need(out, c, 4, "truncated loopback header"))
        return 0;
    uint32_t fam;
    if (net_order) {
        fam = rd32(c->p);
    } else {
        /* host order of an unknown host: read little-endian, swap if that looks wrong */
        fam = (uint32_t)c->p[3] << 24 | (uint32_t)c->p[2] << 16 | (uint32_t)c->p[1] << 8 | c->p[0];
        if (fam & 0xFFFF0000u)
            fam = rd32(c->p);
    }
    net_cur_skip(c, 4);
    if (fam == 2) {
        *type = NET_ETH_IPV4;
    } else if (fam == 24 || fam == 28 || fam == 30) {
        *type = NET_ETH_IPV6;
    } else {
        out->layer = NET_LAYER_LINK;
        net_pkt_set_payload(out, c);
        out->reason = "loopback family not IP";
        return 0;
    }
    return 1;
}

int net_decode(int linktype, const uint8_t *data, size_t caplen, size_t wirelen, net_pkt *out)
{
    if (!out)
        return PTB_EINVAL;
    memset(out, 0, sizeof *out);
    out->linktype = linktype;
    if (!data && caplen)
        return PTB_EINVAL;
    static const uint8_t empty[1];
    net_cur c = {data ? data : empty, data ? data : empty, caplen,
                 wirelen < caplen ? caplen : wirelen};
    uint16_t type = 0;
    int version = 0; /* 0: from the header's nibble */
    int go;
    switch (linktype) {
    case NET_LINK_EN10MB: go = net_link_ether(out, &c, &type); break;
    case NET_LINK_SLL: go = net_link_sll(out, &c, &type, 0); break;
    case NET_LINK_SLL2: go = net_link_sll(out, &c, &type, 1); break;
    case NET_LINK_NULL: go = net_link_null(out, &c, &type, 0); break;
    case NET_LINK_LOOP: go = net_link_null(out, &c, &type, 1); break;
    case NET_LINK_RAW:
    case 12: /* DLT_RAW on most systems */
    case 14: /* DLT_RAW on OpenBSD and BSD/OS */ go = 1; break;
    case NET_LINK_IPV4:
        go = 1;
        version = 4;
        break;
    case NET_LINK_IPV6:
        go = 1;
        version = 6;
        break;
    default: out->reason = "unsupported link type"; return PTB_EINVAL;
    }
    if (!go) {
        net_pkt_check_payload(out);
        return 0;
    }
    out->layer = NET_LAYER_LINK;
    if (type == NET_ETH_IPV4) {
        version = 4;
    } else if (type == NET_ETH_IPV6) {
        version = 6;
    } else if (type != 0) {
        out->ethertype = type;
        net_pkt_set_payload(out, &c);
        out->reason = "ethertype not IP";
        net_pkt_check_payload(out);
        return 0;
    }
    out->ip_offset = (size_t)(c.p - c.base);
    net_ip_decode(out, &c, version);
    net_pkt_check_payload(out);
    return 0;
}
