/* net_decode: hand-built packets for every link type (Ethernet with VLAN tags and SNAP, SLL,
 * SLL2, null/loop in both byte orders, raw IP under each number), IPv4 options and fragments,
 * IPv6 extension headers (hop-by-hop, routing, destination options, fragment, AH; ESP and
 * no-next-header stop), TCP options, UDP, ICMP; malformed headers; every packet cut at every
 * length, in a buffer of exactly that size so that ASan sees any over-read; and every capture of
 * PTB_TEST_DATA/tcpdump-pcaps (pcap and pcapng, some corrupt by design) read with libpcap and
 * decoded, with totals printed. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "net_decode.h"
#include "ptb_error.h"

/* ---- packet builder ---------------------------------------------------------------------- */

typedef struct pb {
    uint8_t b[1024];
    size_t n;
} pb;

static void put(pb *p, const void *d, size_t n)
{
    assert_true(p->n + n <= sizeof p->b);
    memcpy(p->b + p->n, d, n);
    p->n += n;
}

static void put8(pb *p, unsigned v)
{
    uint8_t b = (uint8_t)v;
    put(p, &b, 1);
}

static void put16(pb *p, unsigned v)
{
    put8(p, v >> 8);
    put8(p, v);
}

static void put32(pb *p, uint32_t v)
{
    put16(p, v >> 16);
    put16(p, v & 0xFFFF);
}

static void zeros(pb *p, size_t n)
{
    while (n--)
        put8(p, 0);
}

static void eth(pb *p, unsigned type)
{
    static const uint8_t macs[12] = {2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2};
    put(p, macs, 12);
    put16(p, type);
}

/* IPv4 header with optlen bytes of options (NOPs then EOL) before l4len bytes. */
static void ip4(pb *p, unsigned proto, size_t optlen, size_t l4len, unsigned flags_frag)
{
    put8(p, 0x40 | (unsigned)(5 + optlen / 4));
    put8(p, 0);
    put16(p, (unsigned)(20 + optlen + l4len));
    put16(p, 0x1234);
    put16(p, flags_frag);
    put8(p, 64);
    put8(p, proto);
    put16(p, 0);
    put32(p, 0xC0000201); /* 192.0.2.1 */
    put32(p, 0xC6336402); /* 198.51.100.2 */
    for (size_t i = 0; i < optlen; i++)
        put8(p, i + 1 < optlen ? 1 : 0);
}

static void ip6(pb *p, unsigned next, size_t plen)
{
    put32(p, 0x60000000);
    put16(p, (unsigned)plen);
    put8(p, next);
    put8(p, 255);
    static const uint8_t s[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
    static const uint8_t d[16] = {0x20, 0x01, 0x0d, 0xb8, [14] = 0xab, [15] = 2};
    put(p, s, 16);
    put(p, d, 16);
}

/* generic 8*(len+1)-byte extension header */
static void ext6(pb *p, unsigned next, unsigned len8)
{
    put8(p, next);
    put8(p, len8);
    zeros(p, 6 + 8 * (size_t)len8);
}

static void frag6(pb *p, unsigned next, unsigned off_bytes, int more)
{
    put8(p, next);
    put8(p, 0);
    put16(p, (off_bytes & 0xFFF8) | (more ? 1 : 0));
    put32(p, 0xdeadbeef);
}

/* TCP with optlen option bytes (MSS, NOPs, window scale ...) and paylen payload bytes 'x'. */
static void tcp(pb *p, size_t optlen, size_t paylen)
{
    put16(p, 40000);
    put16(p, 443);
    put32(p, 1000);
    put32(p, 2000);
    put8(p, (unsigned)(5 + optlen / 4) << 4);
    put8(p, NET_TCP_SYN | NET_TCP_ACK);
    put16(p, 65535);
    put32(p, 0);
    static const uint8_t opts[] = {2, 4, 5, 0xb4, 1, 3, 3, 7, 4, 2, 1, 1};
    for (size_t i = 0; i < optlen; i++)
        put8(p, i < sizeof opts ? opts[i] : 0);
    for (size_t i = 0; i < paylen; i++)
        put8(p, 'x');
}

static void udp(pb *p, size_t paylen)
{
    put16(p, 5353);
    put16(p, 53);
    put16(p, (unsigned)(8 + paylen));
    put16(p, 0);
    for (size_t i = 0; i < paylen; i++)
        put8(p, 'u');
}

static void icmp(pb *p, unsigned type, unsigned code)
{
    put8(p, type);
    put8(p, code);
    put16(p, 0);
    put32(p, 0x00010001);
}

/* ---- the cases --------------------------------------------------------------------------- */

typedef struct tcase {
    const char *name;
    int linktype;
    void (*build)(pb *);
    int rc;
    uint8_t layer, ip_version, ip_proto;
    uint16_t sport, dport;
    size_t payload_len;
    uint32_t flags; /* exactly these NET_PKT_* */
    const char *src;
    size_t pad; /* trailing bytes that are not part of the packet (Ethernet padding) */
} tcase;

/* One builder per packet; kept one to a line so that the table reads as a list of packets. */
// clang-format off
#define B(fn) static void fn(pb *p)
B(b_eth_tcp) { eth(p, 0x0800); ip4(p, 6, 0, 25, 0x4000); tcp(p, 0, 5); }
B(b_eth_vlan_udp) { eth(p, 0x8100); put16(p, 0x2064); put16(p, 0x0800); ip4(p, 17, 0, 12, 0);
                    udp(p, 4); }
B(b_eth_qinq_v6) { eth(p, 0x88a8); put16(p, 10); put16(p, 0x8100); put16(p, 20);
                   put16(p, 0x86dd); ip6(p, 6, 20); tcp(p, 0, 0); }
B(b_eth_opts) { eth(p, 0x0800); ip4(p, 6, 8, 35, 0); tcp(p, 12, 3); }
B(b_eth_pad) { eth(p, 0x0800); ip4(p, 17, 0, 10, 0); udp(p, 2); zeros(p, 14); }
B(b_eth_snap) { eth(p, 40 + 8); put8(p, 0xaa); put8(p, 0xaa); put8(p, 3); zeros(p, 3);
                put16(p, 0x0800); ip4(p, 1, 0, 8, 0); icmp(p, 8, 0); }
B(b_eth_arp) { eth(p, 0x0806); zeros(p, 28); }
B(b_eth_stp) { eth(p, 38); put8(p, 0x42); put8(p, 0x42); put8(p, 3); zeros(p, 35); }
B(b_sll) { put16(p, 0); put16(p, 1); put16(p, 6); zeros(p, 8); put16(p, 0x0800);
           ip4(p, 17, 0, 8, 0); udp(p, 0); }
B(b_sll2) { put16(p, 0x86dd); put16(p, 0); put32(p, 2); put16(p, 1); put8(p, 4); put8(p, 6);
            zeros(p, 8); ip6(p, 17, 11); udp(p, 3); }
B(b_null_le) { put8(p, 2); zeros(p, 3); ip4(p, 1, 0, 8, 0); icmp(p, 0, 0); }
B(b_null_be) { put32(p, 30); ip6(p, 58, 8); icmp(p, 128, 0); }
B(b_loop) { put32(p, 24); ip6(p, 6, 24); tcp(p, 0, 4); }
B(b_loop_other) { put32(p, 7); zeros(p, 10); }
B(b_raw4) { ip4(p, 6, 4, 20, 0); tcp(p, 0, 0); }
B(b_raw6) { ip6(p, 17, 8); udp(p, 0); }
B(b_v6_ext) { ip6(p, 0, 8 + 24 + 16 + 21); ext6(p, 43, 0); ext6(p, 60, 2); ext6(p, 6, 1);
              tcp(p, 0, 1); }
B(b_v6_ah) { ip6(p, 51, 24 + 20); put8(p, 6); put8(p, 4); zeros(p, 22); tcp(p, 0, 0); }
B(b_v6_frag1) { ip6(p, 44, 8 + 8 + 8); frag6(p, 17, 0, 1); udp(p, 8); }
B(b_v6_frag2) { ip6(p, 44, 8 + 16); frag6(p, 17, 1448, 0); zeros(p, 16); }
B(b_v6_esp) { ip6(p, 50, 16); zeros(p, 16); }
B(b_v6_none) { ip6(p, 0, 8); ext6(p, 59, 0); }
B(b_v4_frag1) { ip4(p, 17, 0, 16, 0x2000); udp(p, 8); }
B(b_v4_frag2) { ip4(p, 17, 0, 16, 185); zeros(p, 16); }
B(b_v4_ah) { ip4(p, 51, 0, 16 + 8, 0); put8(p, 17); put8(p, 2); zeros(p, 14); udp(p, 0); }
B(b_tiny_frag) { ip4(p, 6, 0, 8, 0x2000); tcp(p, 0, 0); p->n -= 12; }
B(b_bad_ihl) { ip4(p, 6, 0, 20, 0); p->b[0] = 0x44; tcp(p, 0, 0); }
B(b_bad_total) { ip4(p, 6, 0, 20, 0); tcp(p, 0, 0); p->b[2] = 0; p->b[3] = 10; }
B(b_long_total) { ip4(p, 6, 0, 200, 0); tcp(p, 0, 0); }
B(b_bad_doff) { ip4(p, 6, 0, 20, 0); tcp(p, 0, 0); p->b[20 + 12] = 0x40; }
B(b_big_doff) { ip4(p, 6, 0, 20, 0); tcp(p, 0, 0); p->b[20 + 12] = 0xf0; }
B(b_bad_udp) { ip4(p, 17, 0, 8, 0); udp(p, 0); p->b[20 + 5] = 4; }
B(b_long_udp) { ip4(p, 17, 0, 8, 0); udp(p, 0); p->b[20 + 5] = 9; }
B(b_v6_loop) { ip6(p, 60, 8 * 17); for (int i = 0; i < 17; i++) ext6(p, 60, 0); }
B(b_ver_mismatch) { ip4(p, 17, 0, 8, 0); udp(p, 0); }
B(b_ver_bad) { ip4(p, 17, 0, 8, 0); udp(p, 0); p->b[0] = 0x55; }
B(b_too_many_vlans) { eth(p, 0x8100); for (int i = 0; i < 9; i++) { put16(p, i);
                      put16(p, 0x8100); } }
#undef B
// clang-format on

enum { TR = NET_PKT_TRUNC, MF = NET_PKT_MALFORMED, FR = NET_PKT_FRAG, MO = NET_PKT_FRAG_MORE };
enum { L0 = NET_LAYER_NONE, LL = NET_LAYER_LINK, LI = NET_LAYER_IP, L4 = NET_LAYER_L4 };

static const tcase cases[] = {
    {"eth tcp", 1, b_eth_tcp, 0, L4, 4, 6, 40000, 443, 5, NET_PKT_DF, "192.0.2.1", 0},
    {"eth 802.1Q udp", 1, b_eth_vlan_udp, 0, L4, 4, 17, 5353, 53, 4, 0, "192.0.2.1", 0},
    {"eth QinQ ipv6 tcp", 1, b_eth_qinq_v6, 0, L4, 6, 6, 40000, 443, 0, 0, "2001:db8::1", 0},
    {"ipv4+tcp options", 1, b_eth_opts, 0, L4, 4, 6, 40000, 443, 3, 0, "192.0.2.1", 0},
    {"eth padding", 1, b_eth_pad, 0, L4, 4, 17, 5353, 53, 2, 0, "192.0.2.1", 14},
    {"802.3 SNAP icmp", 1, b_eth_snap, 0, L4, 4, 1, 0, 0, 4, 0, "192.0.2.1", 0},
    {"arp", 1, b_eth_arp, 0, LL, 0, 0, 0, 0, 28, 0, NULL, 0},
    {"802.3 STP", 1, b_eth_stp, 0, LL, 0, 0, 0, 0, 38, 0, NULL, 0},
    {"sll udp", 113, b_sll, 0, L4, 4, 17, 5353, 53, 0, 0, "192.0.2.1", 0},
    {"sll2 ipv6 udp", 276, b_sll2, 0, L4, 6, 17, 5353, 53, 3, 0, "2001:db8::1", 0},
    {"null little-endian", 0, b_null_le, 0, L4, 4, 1, 0, 0, 4, 0, "192.0.2.1", 0},
    {"null big-endian v6", 0, b_null_be, 0, L4, 6, 58, 0, 0, 4, 0, "2001:db8::1", 0},
    {"loop v6 tcp", 108, b_loop, 0, L4, 6, 6, 40000, 443, 4, 0, "2001:db8::1", 0},
    {"loop other family", 108, b_loop_other, 0, LL, 0, 0, 0, 0, 10, 0, NULL, 0},
    {"raw 101", 101, b_raw4, 0, L4, 4, 6, 40000, 443, 0, 0, "192.0.2.1", 0},
    {"raw 12 v6", 12, b_raw6, 0, L4, 6, 17, 5353, 53, 0, 0, "2001:db8::1", 0},
    {"raw 14", 14, b_raw4, 0, L4, 4, 6, 40000, 443, 0, 0, "192.0.2.1", 0},
    {"ipv4 228", 228, b_raw4, 0, L4, 4, 6, 40000, 443, 0, 0, "192.0.2.1", 0},
    {"ipv6 229", 229, b_raw6, 0, L4, 6, 17, 5353, 53, 0, 0, "2001:db8::1", 0},
    {"v6 hbh+rt+dst", 101, b_v6_ext, 0, L4, 6, 6, 40000, 443, 1, 0, "2001:db8::1", 0},
    {"v6 AH", 101, b_v6_ah, 0, L4, 6, 6, 40000, 443, 0, 0, "2001:db8::1", 0},
    {"v6 first fragment", 101, b_v6_frag1, 0, L4, 6, 17, 5353, 53, 8, FR | MO, NULL, 0},
    {"v6 later fragment", 101, b_v6_frag2, 0, LI, 6, 17, 0, 0, 16, FR, NULL, 0},
    {"v6 ESP", 101, b_v6_esp, 0, LI, 6, 50, 0, 0, 16, 0, NULL, 0},
    {"v6 no next header", 101, b_v6_none, 0, LI, 6, 59, 0, 0, 0, 0, NULL, 0},
    {"v4 first fragment", 101, b_v4_frag1, 0, L4, 4, 17, 5353, 53, 8, FR | MO, NULL, 0},
    {"v4 later fragment", 101, b_v4_frag2, 0, LI, 4, 17, 0, 0, 16, FR, NULL, 0},
    {"v4 AH udp", 101, b_v4_ah, 0, L4, 4, 17, 5353, 53, 0, 0, NULL, 0},
    {"tiny first fragment", 101, b_tiny_frag, 0, LI, 4, 6, 0, 0, 8, MF | FR | MO, NULL, 0},
    {"bad IHL", 101, b_bad_ihl, 0, LL, 4, 0, 0, 0, 0, MF, NULL, 0},
    {"total < IHL", 101, b_bad_total, 0, LL, 4, 0, 0, 0, 0, MF, NULL, 0},
    {"total > frame", 101, b_long_total, 0, LI, 4, 6, 0, 0, 0, MF, NULL, 0},
    {"TCP offset 4", 101, b_bad_doff, 0, LI, 4, 6, 0, 0, 20, MF, NULL, 0},
    {"TCP offset 15", 101, b_big_doff, 0, LI, 4, 6, 0, 0, 20, MF, NULL, 0},
    {"UDP length 4", 101, b_bad_udp, 0, LI, 4, 17, 0, 0, 8, MF, NULL, 0},
    {"UDP length 9", 101, b_long_udp, 0, LI, 4, 17, 0, 0, 8, MF, NULL, 0},
    {"17 ext headers", 101, b_v6_loop, 0, LI, 6, 60, 0, 0, 8 * 1, MF, NULL, 0},
    {"v4 on IPV6 link", 229, b_ver_mismatch, 0, LL, 0, 0, 0, 0, 0, MF, NULL, 0},
    {"version 5", 101, b_ver_bad, 0, LL, 0, 0, 0, 0, 0, MF, NULL, 0},
    {"9 VLAN tags", 1, b_too_many_vlans, 0, L0, 0, 0, 0, 0, 0, MF, NULL, 0},
    {"unsupported link", 147, b_raw4, PTB_EINVAL, L0, 0, 0, 0, 0, 0, 0, NULL, 0},
};

static void check_case(const tcase *t)
{
    pb p = {.n = 0};
    t->build(&p);
    uint8_t *d = malloc(p.n);
    assert_non_null(d);
    memcpy(d, p.b, p.n);
    net_pkt k;
    int rc = net_decode(t->linktype, d, p.n, p.n, &k);
    print_message("%-20s rc %d layer %d flags %#x reason %s\n", t->name, rc, k.layer, k.flags,
                  k.reason ? k.reason : "-");
    assert_int_equal(rc, t->rc);
    assert_int_equal(k.layer, t->layer);
    assert_int_equal(k.ip_version, t->ip_version);
    assert_int_equal(k.ip_proto, t->ip_proto);
    assert_int_equal(k.sport, t->sport);
    assert_int_equal(k.dport, t->dport);
    assert_int_equal(k.flags & ~(uint32_t)NET_PKT_DF, t->flags & ~(uint32_t)NET_PKT_DF);
    if (t->flags & NET_PKT_DF)
        assert_true(k.flags & NET_PKT_DF);
    if (t->payload_len)
        assert_non_null(k.payload);
    if (k.payload) {
        assert_int_equal(k.payload_len, t->payload_len);
        assert_true(k.payload >= d && k.payload + k.payload_len <= d + p.n);
    }
    if ((t->flags & (NET_PKT_TRUNC | NET_PKT_MALFORMED)) || t->layer < NET_LAYER_L4)
        assert_non_null(k.reason);
    else
        assert_null(k.reason);
    char buf[46];
    if (t->src) {
        assert_string_equal(net_ip_str(&k, NET_ADDR_SRC, buf, sizeof buf), t->src);
        assert_non_null(net_ip_str(&k, NET_ADDR_DST, buf, sizeof buf));
        assert_null(net_ip_str(&k, 2, buf, sizeof buf));
        assert_null(net_ip_str(&k, NET_ADDR_SRC, buf, 4));
    }
    if (t->layer < NET_LAYER_IP)
        assert_null(net_ip_str(&k, NET_ADDR_SRC, buf, sizeof buf));
    free(d);
}

static void test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case(&cases[i]);
}

/* Cut every packet at every length, in a buffer of exactly that size. With the original wire
 * length the cut must be flagged as a truncation; claimed as the whole packet (wirelen = caplen)
 * a cut IP packet is malformed. Either way the payload stays inside the captured bytes. */
static void test_truncation(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const tcase *t = &cases[i];
        if (t->rc != 0 || (t->flags & NET_PKT_MALFORMED))
            continue;
        pb p = {.n = 0};
        t->build(&p);
        for (size_t cap = 0; cap < p.n - t->pad; cap++) {
            uint8_t *d = cap ? malloc(cap) : NULL;
            if (cap)
                memcpy(d, p.b, cap);
            for (int whole = 0; whole < 2; whole++) {
                net_pkt k;
                assert_int_equal(net_decode(t->linktype, d, cap, whole ? cap : p.n, &k), 0);
                if (!whole)
                    assert_true(k.flags & NET_PKT_TRUNC);
                else if (t->layer >= NET_LAYER_IP)
                    assert_true(k.flags & NET_PKT_MALFORMED);
                assert_non_null(k.reason);
                if (k.payload && k.payload_len)
                    assert_true(k.payload >= d && k.payload + k.payload_len <= d + cap);
                assert_true(k.layer <= t->layer);
            }
            free(d);
        }
    }
}

static void test_args(void **state)
{
    (void)state;
    net_pkt k;
    uint8_t b[4] = {0};
    assert_int_equal(net_decode(1, b, 4, 4, NULL), PTB_EINVAL);
    assert_int_equal(net_decode(1, NULL, 4, 4, &k), PTB_EINVAL);
    assert_int_equal(net_decode(1, NULL, 0, 0, &k), 0); /* an empty packet is short */
    assert_int_equal(k.flags, NET_PKT_MALFORMED);
    assert_int_equal(net_decode(1, NULL, 0, 60, &k), 0); /* nothing captured of 60 bytes */
    assert_int_equal(k.flags, NET_PKT_TRUNC);
    assert_int_equal(net_decode(101, b, 4, 0, &k), 0); /* wirelen < caplen: taken as caplen */
    assert_true(k.flags & NET_PKT_MALFORMED);
}

/* ---- the tcpdump captures ---------------------------------------------------------------- */

static char *data_dir(void)
{
    const char *env = getenv("PTB_TEST_DATA");
    char *dir = NULL;
    if (env && *env) {
        dir = strdup(env);
    } else if ((env = getenv("PTB_SOURCE_DIR")) && *env) {
        assert_true(asprintf(&dir, "%s/../shared/data", env) > 0);
    } else {
        /* the source dir, from this file's path */
        const char *f = __FILE__, *tail = strstr(f, "tests/unit/recorder/");
        int n = tail ? (int)(tail - f) : 0;
        assert_true(asprintf(&dir, "%.*s../shared/data", n, f) > 0);
    }
    assert_non_null(dir);
    return dir;
}

typedef struct totals {
    long files, open_fail, read_err, packets, unsupported, v4, v6, l4, malformed, trunc;
} totals;

static void decode_file(const char *path, totals *t)
{
    char err[PCAP_ERRBUF_SIZE];
    pcap_t *pc = pcap_open_offline(path, err);
    t->files++;
    if (!pc) {
        t->open_fail++;
        return;
    }
    int lt = pcap_datalink(pc);
    struct pcap_pkthdr *h;
    const u_char *d;
    int rc;
    while ((rc = pcap_next_ex(pc, &h, &d)) == 1) {
        net_pkt k;
        t->packets++;
        if (net_decode(lt, d, h->caplen, h->len, &k) != 0) {
            t->unsupported++;
            continue;
        }
        assert_true(k.layer <= NET_LAYER_L4);
        if (k.payload && k.payload_len)
            assert_true(k.payload >= d && k.payload + k.payload_len <= d + h->caplen);
        char buf[46];
        if (k.layer >= NET_LAYER_IP) {
            assert_non_null(net_ip_str(&k, NET_ADDR_SRC, buf, sizeof buf));
            t->v4 += k.ip_version == 4;
            t->v6 += k.ip_version == 6;
        }
        t->l4 += k.layer == NET_LAYER_L4;
        t->malformed += (k.flags & NET_PKT_MALFORMED) != 0;
        t->trunc += (k.flags & NET_PKT_TRUNC) != 0;
    }
    if (rc == -1)
        t->read_err++;
    pcap_close(pc);
}

static void test_tcpdump_pcaps(void **state)
{
    (void)state;
    char *base = data_dir(), *dir;
    assert_true(asprintf(&dir, "%s/tcpdump-pcaps", base) > 0);
    struct dirent **ents;
    int n = scandir(dir, &ents, NULL, alphasort);
    if (n < 0) {
        /* the captures are the project's shared test data (../shared/data), not in the
         * repository; a checkout without them cannot run this part */
        print_message("SKIP: cannot read %s: %s (set PTB_TEST_DATA to the shared data)\n", dir,
                      strerror(errno));
        free(dir);
        free(base);
        skip();
    }
    totals t = {0};
    for (int i = 0; i < n; i++) {
        char *path;
        struct stat st;
        assert_true(asprintf(&path, "%s/%s", dir, ents[i]->d_name) > 0);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            decode_file(path, &t);
        free(path);
        free(ents[i]);
    }
    free(ents);
    print_message("%s: %ld files (%ld failed to open, %ld read errors), %ld packets: "
                  "%ld unsupported link type, %ld IPv4, %ld IPv6, %ld with L4, %ld malformed, "
                  "%ld truncated\n",
                  dir, t.files, t.open_fail, t.read_err, t.packets, t.unsupported, t.v4, t.v6, t.l4,
                  t.malformed, t.trunc);
    assert_true(t.files > 0);
    assert_true(t.v4 > 0 && t.v6 > 0 && t.l4 > 0);
    free(dir);
    free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_args),
        cmocka_unit_test(test_tcpdump_pcaps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
