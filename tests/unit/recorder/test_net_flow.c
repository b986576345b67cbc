/* net_flows: hand-built IPv4 packets fed through the flow engine into a real store, then read
 * back: a TLS ClientHello split over segments that arrive out of order and retransmitted; an
 * HTTP/1.1 keep-alive connection with a Content-Length body, a chunked body and a credential
 * header; DNS over UDP naming the server of a later flow; DNS over TCP split across segments;
 * a hole that stops decoding; attribution through net_owners; the snap length and hosts kept
 * whole; the flow bounds; and every tcpdump test capture fed through the engine whole. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event_type.h"
#include "net_decode.h"
#include "net_flow.h"
#include "ptb_error.h"
#include "store.h"

/* ---- a store per test -------------------------------------------------------------------- */

typedef struct fx {
    char dir[64];
    store *s;
    net_flows *f;
    net_owners *own;
    int64_t ts;
} fx;

static void fx_open(fx *x, const net_flows_options *o)
{
    memset(x, 0, sizeof *x);
    snprintf(x->dir, sizeof x->dir, "/tmp/ptb-test-flow-XXXXXX");
    assert_non_null(mkdtemp(x->dir));
    strcat(x->dir, "/s.ptb");
    assert_int_equal(store_open(x->dir, NULL, STORE_CREATE, &x->s), 0);
    net_flows_options d;
    net_flows_options_default(&d);
    assert_int_equal(net_owners_new(&x->own), 0);
    d.owners = x->own;
    if (o) {
        d = *o;
        if (!d.owners)
            d.owners = x->own;
    }
    assert_int_equal(net_flows_new(x->s, &d, &x->f), 0);
    x->ts = 1700000000000000000LL;
}

/* Finish, close, reopen read-only. */
static store_txn *fx_done(fx *x)
{
    assert_int_equal(net_flows_finish(x->f), 0);
    net_flows_free(x->f);
    x->f = NULL;
    assert_int_equal(store_close(x->s), 0);
    assert_int_equal(store_open(x->dir, NULL, STORE_RDONLY, &x->s), 0);
    store_txn *t;
    assert_int_equal(store_txn_begin(x->s, &t), 0);
    return t;
}

static void fx_close(fx *x, store_txn *t)
{
    store_txn_end(t);
    store_close(x->s);
    net_owners_free(x->own);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%.*s'", (int)(strlen(x->dir) - 6), x->dir);
    assert_int_equal(system(cmd), 0);
}

/* The n-th (from 0) event of a body case, or NULL. */
static const ptb_event *nth(store_txn *t, int body, int n)
{
    uint64_t last = store_txn_last_seq(t);
    for (uint64_t seq = 1; seq <= last; seq++) {
        const ptb_event *ev;
        assert_int_equal(store_event_get(t, seq, &ev), 0);
        if ((int)ev->body_case == body && n-- == 0)
            return ev;
    }
    return NULL;
}

static int count(store_txn *t, int body)
{
    int n = 0;
    while (nth(t, body, n))
        n++;
    return n;
}

/* ---- packets ----------------------------------------------------------------------------- */

typedef struct ep {
    const char *ip;
    uint16_t port;
} ep;

static size_t ipv4(uint8_t *b, int proto, ep s, ep d, size_t l4len)
{
    memset(b, 0, 20);
    b[0] = 0x45;
    b[2] = (uint8_t)((20 + l4len) >> 8);
    b[3] = (uint8_t)(20 + l4len);
    b[8] = 64;
    b[9] = (uint8_t)proto;
    assert_int_equal(inet_pton(AF_INET, s.ip, b + 12), 1);
    assert_int_equal(inet_pton(AF_INET, d.ip, b + 16), 1);
    return 20;
}

/* A TCP segment from s to d on raw IP (link type 101). */
static void tcp(fx *x, ep s, ep d, uint8_t flags, uint32_t seq, const void *data, size_t n)
{
    static uint8_t b[70000];
    size_t o = ipv4(b, IPPROTO_TCP, s, d, 20 + n);
    uint8_t *t = b + o;
    memset(t, 0, 20);
    t[0] = (uint8_t)(s.port >> 8), t[1] = (uint8_t)s.port;
    t[2] = (uint8_t)(d.port >> 8), t[3] = (uint8_t)d.port;
    t[4] = (uint8_t)(seq >> 24), t[5] = (uint8_t)(seq >> 16), t[6] = (uint8_t)(seq >> 8);
    t[7] = (uint8_t)seq;
    t[12] = 5 << 4;
    t[13] = flags;
    t[14] = 0xff;
    if (n)
        memcpy(t + 20, data, n);
    x->ts += 1000;
    assert_int_equal(net_flows_packet(x->f, x->ts, 0, NET_LINK_RAW, b, o + 20 + n, o + 20 + n), 0);
}

static void udp(fx *x, ep s, ep d, const void *data, size_t n)
{
    static uint8_t b[70000];
    size_t o = ipv4(b, IPPROTO_UDP, s, d, 8 + n);
    uint8_t *u = b + o;
    u[0] = (uint8_t)(s.port >> 8), u[1] = (uint8_t)s.port;
    u[2] = (uint8_t)(d.port >> 8), u[3] = (uint8_t)d.port;
    u[4] = (uint8_t)((8 + n) >> 8), u[5] = (uint8_t)(8 + n);
    u[6] = u[7] = 0;
    if (n)
        memcpy(u + 8, data, n);
    x->ts += 1000;
    assert_int_equal(net_flows_packet(x->f, x->ts, 0, NET_LINK_RAW, b, o + 8 + n, o + 8 + n), 0);
}

enum { FIN = 1, SYN = 2, RST = 4, PSH = 8, ACK = 16 };

/* A handshake; returns nothing: client ISN 1000, server ISN 5000. */
static void handshake(fx *x, ep c, ep s)
{
    tcp(x, c, s, SYN, 999, NULL, 0);
    tcp(x, s, c, SYN | ACK, 4999, NULL, 0);
    tcp(x, c, s, ACK, 1000, NULL, 0);
}

static void closing(fx *x, ep c, ep s, uint32_t cseq, uint32_t sseq)
{
    tcp(x, c, s, FIN | ACK, cseq, NULL, 0);
    tcp(x, s, c, FIN | ACK, sseq, NULL, 0);
    tcp(x, c, s, ACK, cseq + 1, NULL, 0);
}

/* A ClientHello record for host with ALPN h2 and http/1.1. */
static size_t client_hello(uint8_t *b, const char *host)
{
    uint8_t ext[512];
    size_t e = 0, hl = strlen(host);
    /* server_name */
    ext[e++] = 0, ext[e++] = 0;
    ext[e++] = 0, ext[e++] = (uint8_t)(hl + 5);
    ext[e++] = 0, ext[e++] = (uint8_t)(hl + 3);
    ext[e++] = 0;
    ext[e++] = 0, ext[e++] = (uint8_t)hl;
    memcpy(ext + e, host, hl), e += hl;
    /* ALPN */
    static const uint8_t alpn[] = {0, 16,  0,   14,  0,   12,  2,   'h', '2',
                                   8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    memcpy(ext + e, alpn, sizeof alpn), e += sizeof alpn;
    uint8_t hs[1024];
    size_t h = 0;
    hs[h++] = 3, hs[h++] = 3;                                 /* legacy_version */
    memset(hs + h, 0x11, 32), h += 32;                        /* random */
    hs[h++] = 0;                                              /* session id */
    hs[h++] = 0, hs[h++] = 2, hs[h++] = 0x13, hs[h++] = 0x01; /* one cipher suite */
    hs[h++] = 1, hs[h++] = 0;                                 /* compression: null */
    hs[h++] = (uint8_t)(e >> 8), hs[h++] = (uint8_t)e;
    memcpy(hs + h, ext, e), h += e;
    size_t n = 0;
    b[n++] = 0x16, b[n++] = 3, b[n++] = 1;
    b[n++] = (uint8_t)((h + 4) >> 8), b[n++] = (uint8_t)(h + 4);
    b[n++] = 1, b[n++] = 0, b[n++] = (uint8_t)(h >> 8), b[n++] = (uint8_t)h;
    memcpy(b + n, hs, h);
    return n + h;
}

static const ep CLI = {"100.64.0.2", 40000}, SRV = {"192.0.2.10", 443}, WEB = {"192.0.2.20", 80};

/* ---- tests ------------------------------------------------------------------------------- */

/* A hello in three segments, sent 3, 1, 2, with 1 retransmitted; the owner is known. */
static void test_tls_out_of_order(void **state)
{
    (void)state;
    fx x;
    fx_open(&x, NULL);
    assert_int_equal(net_owners_add(x.own, "tcp", CLI.ip, CLI.port, SRV.ip, SRV.port, 42), 0);
    uint8_t h[1024];
    size_t n = client_hello(h, "api.example.com");
    size_t a = 10, b = 60;
    handshake(&x, CLI, SRV);
    tcp(&x, CLI, SRV, ACK | PSH, 1000 + (uint32_t)b, h + b, n - b);
    tcp(&x, CLI, SRV, ACK, 1000, h, a);
    tcp(&x, CLI, SRV, ACK, 1000, h, a); /* retransmission */
    tcp(&x, CLI, SRV, ACK, 1000 + (uint32_t)a, h + a, b - a);
    tcp(&x, SRV, CLI, ACK | PSH, 5000, "\x16\x03\x03\x00\x01\x02", 6); /* server hello-ish */
    closing(&x, CLI, SRV, 1000 + (uint32_t)n, 5006);
    store_txn *t = fx_done(&x);
    assert_int_equal(count(t, PTB__V1__EVENT__BODY_NET_TLS), 1);
    const ptb_event *ev = nth(t, PTB__V1__EVENT__BODY_NET_TLS, 0);
    assert_string_equal(ev->net_tls->host, "api.example.com");
    assert_int_equal(ev->net_tls->n_alpn, 2);
    assert_string_equal(ev->net_tls->alpn[0], "h2");
    assert_int_equal(ev->exec_id, 42);
    assert_int_equal(ev->source, PTB__V1__SOURCE__SOURCE_PCAP);
    assert_int_equal(count(t, PTB__V1__EVENT__BODY_NET_FLOW), 1);
    ev = nth(t, PTB__V1__EVENT__BODY_NET_FLOW, 0);
    const Ptb__V1__NetFlow *f = ev->net_flow;
    assert_string_equal(f->proto, "tcp");
    assert_string_equal(f->src->ip, CLI.ip);
    assert_int_equal(f->src->port, CLI.port);
    assert_string_equal(f->dst->ip, SRV.ip);
    assert_string_equal(f->host, "api.example.com");
    assert_string_equal(f->state, "fin");
    assert_int_equal(f->packets_out, 8);
    assert_int_equal(f->packets_in, 3);
    assert_int_equal(f->bytes_out, 8 * 40 + n + a);
    assert_int_equal(f->missing_bytes, 0);
    assert_int_equal(ev->exec_id, 42);
    uint64_t flow_id = f->flow_id; /* f is not valid after the next read */
    assert_int_equal(count(t, PTB__V1__EVENT__BODY_NET_PACKET), 11);
    /* every packet carries its flow */
    for (int i = 0; i < 11; i++)
        assert_int_equal(nth(t, PTB__V1__EVENT__BODY_NET_PACKET, i)->net_packet->flow_id, flow_id);
    fx_close(&x, t);
}

static void test_http_keepalive(void **state)
{
    (void)state;
    fx x;
    fx_open(&x, NULL);
    handshake(&x, CLI, WEB);
    const char *r1 =
        "POST /v1/chat?api_key=sk-abcdefabcdefabcdefabcdef HTTP/1.1\r\n"
        "Host: llm.example.org:80\r\nAuthorization: Bearer sk-secretsecretsecret1234\r\n"
        "Content-Length: 11\r\n\r\nhello world";
    const char *r2 = "GET /next HTTP/1.1\r\nHost: llm.example.org\r\n\r\n";
    uint32_t cs = 1000, ss = 5000;
    /* the first request in two segments, the body split from the head */
    tcp(&x, CLI, WEB, ACK | PSH, cs, r1, 50), cs += 50;
    tcp(&x, CLI, WEB, ACK | PSH, cs, r1 + 50, strlen(r1) - 50), cs += (uint32_t)strlen(r1) - 50;
    const char *p1 = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n"
                     "HTTP/";
    tcp(&x, WEB, CLI, ACK | PSH, ss, p1, strlen(p1)), ss += (uint32_t)strlen(p1);
    tcp(&x, CLI, WEB, ACK | PSH, cs, r2, strlen(r2)), cs += (uint32_t)strlen(r2);
    const char *p2 = "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "4\r\nHTTP\r\n3;ext=1\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n"
                     "HTTP/1.1 204 No Content\r\n\r\n";
    tcp(&x, WEB, CLI, ACK | PSH, ss, p2, 30), ss += 30;
    tcp(&x, WEB, CLI, ACK | PSH, ss, p2 + 30, strlen(p2) - 30), ss += (uint32_t)strlen(p2) - 30;
    closing(&x, CLI, WEB, cs, ss);
    store_txn *t = fx_done(&x);
    assert_int_equal(count(t, PTB__V1__EVENT__BODY_NET_HTTP), 5);
    const Ptb__V1__NetHttp *h = nth(t, PTB__V1__EVENT__BODY_NET_HTTP, 0)->net_http;
    assert_false(h->response);
    assert_string_equal(h->method, "POST");
    assert_null(strstr(h->path, "sk-abcdef"));
    assert_string_equal(h->host, "llm.example.org:80");
    assert_int_equal(h->body_bytes, 11);
    int creds = 0;
    for (size_t i = 0; i < h->n_headers; i++)
        if (h->headers[i]->redacted) {
            creds++;
            assert_string_equal(h->headers[i]->value, "");
            assert_int_equal(h->headers[i]->redacted->sha256.len, 32);
        }
    assert_int_equal(creds, 1);
    h = nth(t, PTB__V1__EVENT__BODY_NET_HTTP, 1)->net_http;
    assert_true(h->response);
    assert_int_equal(h->status, 200);
    h = nth(t, PTB__V1__EVENT__BODY_NET_HTTP, 2)->net_http;
    assert_string_equal(h->method, "GET");
    assert_string_equal(h->path, "/next");
    assert_int_equal(nth(t, PTB__V1__EVENT__BODY_NET_HTTP, 3)->net_http->status, 404);
    assert_int_equal(nth(t, PTB__V1__EVENT__BODY_NET_HTTP, 4)->net_http->status, 204);
    /* no secret in the store's bytes */
    uint64_t last = store_txn_last_seq(t);
    for (uint64_t seq = 1; seq <= last; seq++) {
        const void *raw;
        size_t len;
        assert_int_equal(store_event_raw(t, seq, &raw, &len), 0);
        const ptb_event *ev;
        assert_int_equal(store_event_get(t, seq, &ev), 0);
        if (ev->body_case != PTB__V1__EVENT__BODY_NET_PACKET) /* packets hold the bytes */
            assert_null(memmem(raw, len, "secretsecret", 12));
    }
    assert_string_equal(nth(t, PTB__V1__EVENT__BODY_NET_FLOW, 0)->net_flow->host,
                        "llm.example.org");
    fx_close(&x, t);
}

/* A DNS query and answer (compressed name) over UDP; then a flow to the answer's address. */
static size_t dns_msg(uint8_t *b, uint16_t id, bool response, const char *name, const char *ip)
{
    size_t n = 0;
    b[n++] = (uint8_t)(id >> 8), b[n++] = (uint8_t)id;
    b[n++] = response ? 0x81 : 0x01, b[n++] = response ? 0x80 : 0x00;
    b[n++] = 0, b[n++] = 1, b[n++] = 0, b[n++] = response ? 1 : 0;
    b[n++] = 0, b[n++] = 0, b[n++] = 0, b[n++] = 0;
    const char *p = name;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        b[n++] = (uint8_t)l;
        memcpy(b + n, p, l), n += l;
        p += l + (dot ? 1 : 0);
    }
    b[n++] = 0;
    b[n++] = 0, b[n++] = 1, b[n++] = 0, b[n++] = 1;
    if (response) {
        b[n++] = 0xc0, b[n++] = 12; /* pointer to the question's name */
        b[n++] = 0, b[n++] = 1, b[n++] = 0, b[n++] = 1;
        b[n++] = 0, b[n++] = 0, b[n++] = 0x0e, b[n++] = 0x10;
        b[n++] = 0, b[n++] = 4;
        assert_int_equal(inet_pton(AF_INET, ip, b + n), 1);
        n += 4;
    }
    return n;
}

static void test_dns_names_flows(void **state)
{
    (void)state;
    fx x;
    fx_open(&x, NULL);
    ep c = {"100.64.0.2", 51000}, ns = {"100.64.0.1", 53};
    uint8_t m[512];
    size_t n = dns_msg(m, 7, false, "huggingface.co", NULL);
    udp(&x, c, ns, m, n);
    n = dns_msg(m, 7, true, "huggingface.co", "192.0.2.99");
    udp(&x, ns, c, m, n);
    ep hf = {"192.0.2.99", 80};
    handshake(&x, CLI, hf);
    tcp(&x, CLI, hf, ACK | PSH, 1000, "\x01\x02\x03", 3); /* no SNI, no HTTP */
    /* DNS over TCP: a length-prefixed query split in two segments */
    ep tc = {"100.64.0.2", 52000};
    n = dns_msg(m + 2, 9, false, "cdn-lfs.hf.co", NULL);
    m[0] = (uint8_t)(n >> 8), m[1] = (uint8_t)n;
    handshake(&x, tc, ns);
    tcp(&x, tc, ns, ACK | PSH, 1000, m, 5);
    tcp(&x, tc, ns, ACK | PSH, 1005, m + 5, n + 2 - 5);
    store_txn *t = fx_done(&x);
    assert_int_equal(count(t, PTB__V1__EVENT__BODY_NET_DNS), 3);
    const Ptb__V1__NetDns *d = nth(t, PTB__V1__EVENT__BODY_NET_DNS, 1)->net_dns;
    assert_true(d->response);
    assert_string_equal(d->host, "huggingface.co");
    assert_string_equal(d->qtype, "A");
    assert_int_equal(d->n_answers, 1);
    assert_string_equal(d->answers[0]->data, "192.0.2.99");
    assert_false(d->tcp);
    d = nth(t, PTB__V1__EVENT__BODY_NET_DNS, 2)->net_dns;
    assert_string_equal(d->host, "cdn-lfs.hf.co");
    assert_true(d->tcp);
    /* the flows: UDP DNS, TCP to hf (named by DNS, still open), TCP DNS */
    assert_int_equal(count(t, PTB__V1__EVENT__BODY_NET_FLOW), 3);
    bool seen = false;
    for (int i = 0; i < 3; i++) {
        const Ptb__V1__NetFlow *f = nth(t, PTB__V1__EVENT__BODY_NET_FLOW, i)->net_flow;
        if (f->dst->port == 80) {
            assert_string_equal(f->host, "huggingface.co");
            assert_string_equal(f->state, "open");
            seen = true;
        }
        if (!strcmp(f->proto, "udp"))
            assert_string_equal(f->src->ip, "100.64.0.2"); /* the client: port 53 is the server */
    }
    assert_true(seen);
    fx_close(&x, t);
}

/* A lost segment: the bytes after it are counted, not decoded. */
static void test_hole(void **state)
{
    (void)state;
    fx x;
    fx_open(&x, NULL);
    handshake(&x, CLI, WEB);
    const char *r = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n";
    tcp(&x, CLI, WEB, ACK | PSH, 1000 + 100, r, strlen(r)); /* 100 bytes never seen */
    /* far ahead: the hole is given up at once */
    tcp(&x, CLI, WEB, ACK | PSH, 1000 + (20u << 20), r, strlen(r));
    store_txn *t = fx_done(&x);
    assert_int_equal(count(t, PTB__V1__EVENT__BODY_NET_HTTP), 0);
    const Ptb__V1__NetFlow *f = nth(t, PTB__V1__EVENT__BODY_NET_FLOW, 0)->net_flow;
    assert_int_equal(f->missing_bytes, 100 + (20u << 20) - 100 - strlen(r));
    fx_close(&x, t);
}

/* Snap length for ordinary flows; hosts of interest kept whole; no packets when off. */
static void test_snaplen_keep(void **state)
{
    (void)state;
    fx x;
    net_flows_options o;
    net_flows_options_default(&o);
    o.snaplen = 64;
    static const char *const keep[] = {"example.com"};
    o.keep_hosts = keep;
    o.n_keep_hosts = 1;
    fx_open(&x, &o);
    uint8_t h[1024], big[1400];
    memset(big, 'x', sizeof big);
    size_t n = client_hello(h, "www.example.com");
    handshake(&x, CLI, SRV);
    tcp(&x, CLI, SRV, ACK | PSH, 1000, h, n);
    tcp(&x, CLI, SRV, ACK | PSH, 1000 + (uint32_t)n, big, sizeof big);
    ep c2 = {"100.64.0.2", 40001};
    uint8_t h2[1024];
    size_t n2 = client_hello(h2, "notexample.com");
    handshake(&x, c2, SRV);
    tcp(&x, c2, SRV, ACK | PSH, 1000, h2, n2);
    tcp(&x, c2, SRV, ACK | PSH, 1000 + (uint32_t)n2, big, sizeof big);
    store_txn *t = fx_done(&x);
    assert_int_equal(count(t, PTB__V1__EVENT__BODY_NET_PACKET), 10);
    const Ptb__V1__NetPacket *p = nth(t, PTB__V1__EVENT__BODY_NET_PACKET, 4)->net_packet;
    assert_int_equal(p->caplen, 40 + sizeof big);
    assert_int_equal(p->data.len, 40 + sizeof big);             /* kept whole */
    p = nth(t, PTB__V1__EVENT__BODY_NET_PACKET, 8)->net_packet; /* the ClientHello: whole */
    assert_int_equal(p->caplen, 40 + n2);
    assert_int_equal(p->data.len, 40 + n2);
    p = nth(t, PTB__V1__EVENT__BODY_NET_PACKET, 9)->net_packet;
    assert_int_equal(p->caplen, 40 + sizeof big);
    assert_int_equal(p->data.len, 64);
    assert_int_equal(p->origlen, 40 + sizeof big);
    fx_close(&x, t);

    o.packets = false;
    fx_open(&x, &o);
    handshake(&x, CLI, SRV);
    t = fx_done(&x);
    assert_int_equal(count(t, PTB__V1__EVENT__BODY_NET_PACKET), 0);
    assert_int_equal(count(t, PTB__V1__EVENT__BODY_NET_FLOW), 1);
    fx_close(&x, t);
}

/* More flows than flows_max: the longest idle are ended ("evicted"); idle ones expire. */
static void test_bounds(void **state)
{
    (void)state;
    fx x;
    net_flows_options o;
    net_flows_options_default(&o);
    o.flows_max = 10;
    o.idle_ns = 1000000000LL;
    o.packets = false;
    fx_open(&x, &o);
    for (int i = 0; i < 25; i++) {
        ep c = {"100.64.0.2", (uint16_t)(30000 + i)};
        tcp(&x, c, SRV, SYN, 1, NULL, 0);
    }
    x.ts += 5000000000LL; /* later than idle: the 10 left expire on the next packet */
    ep c = {"100.64.0.2", 29999};
    tcp(&x, c, SRV, SYN, 1, NULL, 0);
    store_txn *t = fx_done(&x);
    int evicted = 0, idle = 0, open = 0;
    for (int i = 0;; i++) {
        const ptb_event *ev = nth(t, PTB__V1__EVENT__BODY_NET_FLOW, i);
        if (!ev)
            break;
        const char *st = ev->net_flow->state;
        evicted += !strcmp(st, "evicted");
        idle += !strcmp(st, "idle");
        open += !strcmp(st, "open");
    }
    assert_int_equal(evicted, 15);
    assert_int_equal(idle, 10);
    assert_int_equal(open, 1);
    fx_close(&x, t);
}

/* net_owners: exact ends, either direction, unconnected sockets, wildcard binds, mapped v4. */
static void test_owners(void **state)
{
    (void)state;
    net_owners *o;
    assert_int_equal(net_owners_new(&o), 0);
    uint8_t a[16] = {0}, b[16] = {0}, c[16] = {0};
    inet_pton(AF_INET, "10.0.0.1", a);
    inet_pton(AF_INET, "10.0.0.2", b);
    inet_pton(AF_INET, "10.0.0.3", c);
    assert_int_equal(net_owners_add(o, "tcp", "10.0.0.1", 1000, "10.0.0.2", 80, 5), 0);
    assert_int_equal(net_owners_add(o, "udp", "::ffff:10.0.0.1", 2000, NULL, 0, 6), 0);
    assert_int_equal(net_owners_add(o, "tcp", "0.0.0.0", 8080, NULL, 0, 7), 0);
    assert_int_equal(net_owners_add(o, "unix", NULL, 0, NULL, 0, 8), 0); /* ignored */
    assert_int_equal(net_owners_find(o, IPPROTO_TCP, AF_INET, a, 1000, b, 80, NULL), 5);
    assert_int_equal(net_owners_find(o, IPPROTO_TCP, AF_INET, b, 80, a, 1000, NULL), 5);
    assert_int_equal(net_owners_find(o, IPPROTO_TCP, AF_INET, a, 1001, b, 80, NULL), 0);
    assert_int_equal(net_owners_find(o, IPPROTO_UDP, AF_INET, c, 53, a, 2000, NULL), 6);
    assert_int_equal(net_owners_find(o, IPPROTO_TCP, AF_INET, c, 5555, a, 8080, NULL), 7);
    /* replaced by a later owner of the same ends */
    assert_int_equal(net_owners_add(o, "tcp", "10.0.0.1", 1000, "10.0.0.2", 80, 9), 0);
    assert_int_equal(net_owners_find(o, IPPROTO_TCP, AF_INET, a, 1000, b, 80, NULL), 9);
    /* a listening socket and a client on loopback: the client's connected socket wins */
    uint8_t lo[16] = {0};
    inet_pton(AF_INET, "127.0.0.1", lo);
    bool exact = true;
    assert_int_equal(net_owners_add(o, "tcp", "127.0.0.1", 8000, NULL, 0, 20), 0);
    assert_int_equal(net_owners_find(o, IPPROTO_TCP, AF_INET, lo, 40000, lo, 8000, &exact), 20);
    assert_false(exact);
    assert_int_equal(net_owners_add(o, "tcp", "127.0.0.1", 8000, "127.0.0.1", 40000, 20), 0);
    assert_int_equal(net_owners_add(o, "tcp", "127.0.0.1", 40000, "127.0.0.1", 8000, 21), 0);
    assert_int_equal(net_owners_find(o, IPPROTO_TCP, AF_INET, lo, 40000, lo, 8000, &exact), 21);
    assert_true(exact);
    /* sendto from an unconnected socket bound to 0.0.0.0: known by its port and the peer */
    assert_int_equal(net_owners_add(o, "udp", "0.0.0.0", 56050, "127.0.0.1", 9999, 30), 0);
    assert_int_equal(net_owners_find(o, IPPROTO_UDP, AF_INET, lo, 56050, lo, 9999, &exact), 30);
    assert_true(exact);
    /* many: the table grows */
    char ip[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(ip, sizeof ip, "10.1.%d.%d", i / 250, i % 250);
        assert_int_equal(net_owners_add(o, "tcp", ip, 1, "10.0.0.9", 2, (uint64_t)i + 100), 0);
    }
    uint8_t d[16] = {0}, e[16] = {0};
    inet_pton(AF_INET, "10.1.19.249", d);
    inet_pton(AF_INET, "10.0.0.9", e);
    assert_int_equal(net_owners_find(o, IPPROTO_TCP, AF_INET, e, 2, d, 1, NULL), 4999 + 100);
    net_owners_free(o);
}

/* Every tcpdump test capture through the engine (ASan finds what goes wrong). */
static void test_tcpdump_captures(void **state)
{
    (void)state;
    const char *data = getenv("PTB_TEST_DATA");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tcpdump-pcaps", data ? data : "../shared/data");
    DIR *dp = opendir(dir);
    if (!dp) {
        print_message("no captures at %s: skipped\n", dir);
        skip();
    }
    struct dirent *de;
    uint64_t files = 0, packets = 0, events = 0;
    net_flows_stats tot = {0};
    fx x;
    fx_open(&x, NULL);
    net_flows_free(x.f); /* one engine per capture below */
    while ((de = readdir(dp))) {
        if (de->d_name[0] == '.')
            continue;
        char path[8192], err[PCAP_ERRBUF_SIZE];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        pcap_t *pc = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, err);
        if (!pc)
            continue;
        net_flows_options o;
        net_flows_options_default(&o);
        o.owners = x.own;
        o.flows_max = 64;
        o.stream_max = 4096;
        o.ooo_max = 8192;
        net_flows *f;
        assert_int_equal(net_flows_new(x.s, &o, &f), 0);
        struct pcap_pkthdr *h;
        const u_char *d;
        int linktype = pcap_datalink(pc);
        while (pcap_next_ex(pc, &h, &d) == 1) {
            int64_t ts = (int64_t)h->ts.tv_sec * 1000000000LL + h->ts.tv_usec;
            assert_int_equal(net_flows_packet(f, ts, 0, linktype, d, h->caplen, h->len), 0);
        }
        assert_int_equal(net_flows_finish(f), 0);
        net_flows_stats st;
        net_flows_stats_get(f, &st);
        tot.packets += st.packets, tot.flows += st.flows, tot.dns += st.dns, tot.tls += st.tls;
        tot.http += st.http;
        events += st.events;
        packets += st.packets;
        net_flows_free(f);
        pcap_close(pc);
        files++;
    }
    closedir(dp);
    print_message("%llu captures, %llu packets: %llu flows, %llu dns, %llu tls, %llu http, %llu "
                  "events\n",
                  (unsigned long long)files, (unsigned long long)packets,
                  (unsigned long long)tot.flows, (unsigned long long)tot.dns,
                  (unsigned long long)tot.tls, (unsigned long long)tot.http,
                  (unsigned long long)events);
    assert_true(files > 100);
    assert_true(tot.flows > 100 &&
                tot.dns > 10); /* the names are checked against tshark in test_pcap_import */
    x.f = NULL;
    assert_int_equal(store_close(x.s), 0);
    assert_int_equal(store_open(x.dir, NULL, STORE_RDONLY, &x.s), 0);
    store_txn *t;
    assert_int_equal(store_txn_begin(x.s, &t), 0);
    assert_int_equal(store_txn_last_seq(t), events);
    fx_close(&x, t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_out_of_order), cmocka_unit_test(test_http_keepalive),
        cmocka_unit_test(test_dns_names_flows),  cmocka_unit_test(test_hole),
        cmocka_unit_test(test_snaplen_keep),     cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_owners),           cmocka_unit_test(test_tcpdump_captures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
