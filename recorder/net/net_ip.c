/* IPv4 and IPv6 decoding (see net_decode.h).
 *
 *   IPv4  ver_ihl[1] tos[1] total_len[2] id[2] flags_frag[2] ttl[1] proto[1] csum[2]
 *         src[4] dst[4] options[(ihl-5)*4]; IHL >= 5, total_len >= IHL*4. flags_frag: bit 14
 *         DF, bit 13 MF, low 13 bits the offset in 8-byte units.
 *   IPv6  ver_tc_flow[4] payload_len[2] next[1] hop_limit[1] src[16] dst[16], then a chain of
 *         extension headers, each naming the next:
 *           hop-by-hop (0), routing (43), destination options (60), mobility (135), HIP (139),
 *           shim6 (140): next[1] len[1], (len+1)*8 bytes
 *           fragment (44): next[1] res[1] off_flags[2] id[4], 8 bytes; offset in 8-byte units
 *           AH (51): next[1] len[1], (len+2)*4 bytes  (also skipped after an IPv4 header)
 *           ESP (50) and no-next-header (59) end the chain: nothing after them is readable.
 *         The chain is followed at most NET_EXT_MAX headers deep.
 *   A payload length of 0 with a hop-by-hop header is a jumbogram (RFC 2675): the payload is
 *   the rest of the frame.
 * The IP payload is limited to what the header declares, so Ethernet padding is not payload; a
 * declared length beyond the bytes on the wire is malformed, beyond the captured bytes only a
 * truncation. */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "net_decode.h"

enum {
    NET_EXT_MAX = 16,
    NET_P_HOPOPT = 0,
    NET_P_ROUTING = 43,
    NET_P_FRAGMENT = 44,
    NET_P_ESP = 50,
    NET_P_AH = 51,
    NET_P_NONE = 59,
    NET_P_DSTOPTS = 60,
    NET_P_MOBILITY = 135,
    NET_P_HIP = 139,
    NET_P_SHIM6 = 140,
};

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Limit c to the len bytes the IP header declares. Returns 0 if that is more than the wire
 * held (malformed); a declared length beyond the captured bytes only marks a truncation, which
 * the deeper layers report when they run out. */
static int net_ip_limit(net_pkt *out, net_cur *c, size_t len)
{
    if (len > c->wire) {
        net_pkt_stop(out, c, NET_PKT_MALFORMED, "IP length beyond the frame");
        return 0;
    }
    c->wire = len;
    if (c->cap > len)
        c->cap = len;
    return 1;
}

/* Skip an AH header at c (next protocol into *proto). Returns 0 when stopped. */
static int net_ip_ah(net_pkt *out, net_cur *c, uint8_t *proto)
{
    if (!net_cur_need(out, c, 2, "truncated AH header"))
        return 0;
    size_t len = ((size_t)c->p[1] + 2) * 4;
    if (!net_cur_need(out, c, len, "truncated AH header"))
        return 0;
    *proto = c->p[0];
    net_cur_skip(c, len);
    out->ext_count++;
    return 1;
}

static void net_ip_v4(net_pkt *out, net_cur *c)
{
    if (!net_cur_need(out, c, 20, "truncated IPv4 header"))
        return;
    const uint8_t *h = c->p;
    size_t ihl = (size_t)(h[0] & 0x0F) * 4;
    size_t total = rd16(h + 2);
    if (ihl < 20) {
        net_pkt_stop(out, c, NET_PKT_MALFORMED, "IPv4 IHL below 5");
        return;
    }
    if (!net_cur_need(out, c, ihl, "truncated IPv4 options"))
        return;
    if (total < ihl) {
        net_pkt_stop(out, c, NET_PKT_MALFORMED, "IPv4 total length below header length");
        return;
    }
    out->family = AF_INET;
    memcpy(out->src, h + 12, 4);
    memcpy(out->dst, h + 16, 4);
    out->ttl = h[8];
    out->ip_proto = h[9];
    out->frag_id = rd16(h + 4);
    uint16_t ff = rd16(h + 6);
    out->frag_offset = (uint16_t)((ff & 0x1FFF) * 8);
    if (ff & 0x4000)
        out->flags |= NET_PKT_DF;
    if (ff & 0x2000)
        out->flags |= NET_PKT_FRAG_MORE;
    if (ff & 0x3FFF)
        out->flags |= NET_PKT_FRAG;
    if (ff & 0x8000)
        net_pkt_stop(out, c, NET_PKT_MALFORMED, "IPv4 reserved flag set");
    out->layer = NET_LAYER_IP;
    if (!net_ip_limit(out, c, total))
        return;
    net_cur_skip(c, ihl);
    out->l4_offset = (size_t)(c->p - c->base);
    net_pkt_set_payload(out, c);
    if (out->frag_offset != 0) {
        if (!out->reason)
            out->reason = "non-first fragment";
        return;
    }
    if (out->ip_proto == NET_P_AH) {
        uint8_t next;
        if (!net_ip_ah(out, c, &next))
            return;
        out->ip_proto = next;
        out->l4_offset = (size_t)(c->p - c->base);
        net_pkt_set_payload(out, c);
    }
    net_l4_decode(out, c);
}

static void net_ip_v6(net_pkt *out, net_cur *c)
{
    if (!net_cur_need(out, c, 40, "truncated IPv6 header"))
        return;
    const uint8_t *h = c->p;
    size_t plen = rd16(h + 4);
    uint8_t next = h[6];
    out->family = AF_INET6;
    memcpy(out->src, h + 8, 16);
    memcpy(out->dst, h + 24, 16);
    out->ttl = h[7];
    out->ip_proto = next;
    out->layer = NET_LAYER_IP;
    net_cur_skip(c, 40);
    if (plen == 0 && next == NET_P_HOPOPT)
        plen = c->wire; /* jumbogram: the real length is in an option we do not parse */
    if (!net_ip_limit(out, c, plen))
        return;
    for (int n = 0;; n++) {
        out->l4_offset = (size_t)(c->p - c->base);
        net_pkt_set_payload(out, c);
        out->ip_proto = next;
        if (next == NET_P_ESP || next == NET_P_NONE) {
            out->reason = next == NET_P_ESP ? "ESP: encrypted" : "no next header";
            return;
        }
        int ext = next == NET_P_HOPOPT || next == NET_P_ROUTING || next == NET_P_DSTOPTS ||
                  next == NET_P_MOBILITY || next == NET_P_HIP || next == NET_P_SHIM6 ||
                  next == NET_P_FRAGMENT || next == NET_P_AH;
        if (!ext)
            break;
        if (n >= NET_EXT_MAX) {
            net_pkt_stop(out, c, NET_PKT_MALFORMED, "too many IPv6 extension headers");
            return;
        }
        if (next == NET_P_AH) {
            if (!net_ip_ah(out, c, &next))
                return;
            continue;
        }
        if (!net_cur_need(out, c, 8, "truncated IPv6 extension header"))
            return;
        if (next == NET_P_FRAGMENT) {
            uint16_t of = rd16(c->p + 2);
            out->flags |= NET_PKT_FRAG;
            if (of & 1)
                out->flags |= NET_PKT_FRAG_MORE;
            out->frag_offset = (uint16_t)(of & 0xFFF8);
            out->frag_id = rd32(c->p + 4);
            next = c->p[0];
            net_cur_skip(c, 8);
            out->ext_count++;
            if (out->frag_offset != 0) {
                out->l4_offset = (size_t)(c->p - c->base);
                net_pkt_set_payload(out, c);
                out->ip_proto = next;
                out->reason = "non-first fragment";
                return;
            }
            continue;
        }
        size_t len = ((size_t)c->p[1] + 1) * 8;
        if (!net_cur_need(out, c, len, "truncated IPv6 extension header"))
            return;
        next = c->p[0];
        net_cur_skip(c, len);
        out->ext_count++;
    }
    net_l4_decode(out, c);
}

void net_ip_decode(net_pkt *out, net_cur *c, int version)
{
    if (!net_cur_need(out, c, 1, "no IP header"))
        return;
    int v = c->p[0] >> 4;
    if (version != 0 && v != version) {
        net_pkt_stop(out, c, NET_PKT_MALFORMED, "IP version does not match the link layer");
        return;
    }
    if (v != 4 && v != 6) {
        net_pkt_stop(out, c, NET_PKT_MALFORMED, "IP version neither 4 nor 6");
        return;
    }
    out->ip_version = (uint8_t)v;
    out->ethertype = v == 4 ? 0x0800 : 0x86DD;
    if (v == 4)
        net_ip_v4(out, c);
    else
        net_ip_v6(out, c);
}

const char *net_ip_str(const net_pkt *p, int which, char *buf, size_t cap)
{
    if (!p || !buf || p->layer < NET_LAYER_IP || (which != NET_ADDR_SRC && which != NET_ADDR_DST))
        return NULL;
    const uint8_t *a = which == NET_ADDR_SRC ? p->src : p->dst;
    if (cap > (size_t)(socklen_t)-1)
        cap = (socklen_t)-1;
    return inet_ntop(p->family, a, buf, (socklen_t)cap);
}
