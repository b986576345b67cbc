/* net_app: DNS, TLS ClientHello and HTTP/1.x parsers over hand-built messages shaped as real
 * clients send them: DNS queries and compressed responses (A, AAAA, CNAME, MX, TXT, PTR), pointer
 * loops, forward pointers, over-long names, TCP framing; ClientHellos with SNI, ALPN h2 +
 * http/1.1 and supported_versions, whole and split over records; HTTP requests carrying
 * credentials and a response. Every message is also cut at every length, in a buffer of exactly
 * that size so that ASan sees any over-read. No secret may appear anywhere in an output struct:
 * the tests search its bytes. Last, a real `openssl s_client` talks to a loopback socket of the
 * test and its ClientHello is parsed (skipped when openssl is missing). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net_app.h"
#include "ptb_error.h"

/* ---- message builder --------------------------------------------------------------------- */

typedef struct mb {
    uint8_t b[4096];
    size_t n;
} mb;

static void put(mb *p, const void *d, size_t n)
{
    assert_true(p->n + n <= sizeof p->b);
    memcpy(p->b + p->n, d, n);
    p->n += n;
}

static void put8(mb *p, unsigned v)
{
    uint8_t b = (uint8_t)v;
    put(p, &b, 1);
}

static void put16(mb *p, unsigned v)
{
    put8(p, (v >> 8) & 0xFF);
    put8(p, v & 0xFF);
}

static void put32(mb *p, uint32_t v)
{
    put16(p, v >> 16);
    put16(p, v & 0xFFFF);
}

static void set16(mb *p, size_t at, unsigned v)
{
    p->b[at] = (uint8_t)(v >> 8);
    p->b[at + 1] = (uint8_t)v;
}

/* A name in labels, "www.example.com" -> 3www7example3com0; ptr >= 0 ends it with a pointer. */
static void put_name(mb *p, const char *dotted, int ptr)
{
    while (*dotted) {
        const char *dot = strchr(dotted, '.');
        size_t n = dot ? (size_t)(dot - dotted) : strlen(dotted);
        put8(p, (unsigned)n);
        put(p, dotted, n);
        dotted += n + (dot ? 1 : 0);
    }
    if (ptr >= 0)
        put16(p, 0xC000 | (unsigned)ptr);
    else
        put8(p, 0);
}

/* Parse a copy of the first n bytes in a buffer of exactly n bytes. */
static void *dup_n(const uint8_t *b, size_t n)
{
    void *d = malloc(n ? n : 1);
    assert_non_null(d);
    if (n)
        memcpy(d, b, n);
    return d;
}

/* ---- DNS --------------------------------------------------------------------------------- */

static void dns_header(mb *m, unsigned id, unsigned flags, unsigned qd, unsigned an)
{
    put16(m, id);
    put16(m, flags);
    put16(m, qd);
    put16(m, an);
    put16(m, 0);
    put16(m, 0);
}

static void rr(mb *m, int name_ptr, unsigned type, uint32_t ttl)
{
    put16(m, 0xC000 | (unsigned)name_ptr);
    put16(m, type);
    put16(m, 1);
    put32(m, ttl);
}

/* A response as a resolver sends it: www.example.com -> CNAME cdn.example.com -> A, AAAA;
 * then MX, TXT and PTR records, every name compressed against earlier ones. */
static void dns_response(mb *m)
{
    m->n = 0;
    dns_header(m, 0xBEEF, 0x8180, 1, 6);
    put_name(m, "www.example.com", -1); /* at 12; "example" at 16 */
    put16(m, 1);
    put16(m, 1);
    rr(m, 12, 5, 3600);
    size_t rdl = m->n;
    put16(m, 0);
    size_t cname = m->n;
    put_name(m, "cdn", 16);
    set16(m, rdl, (unsigned)(m->n - cname));
    rr(m, (int)cname, 1, 300);
    put16(m, 4);
    put(m, "\x5d\xb8\xd8\x22", 4);
    rr(m, (int)cname, 28, 300);
    put16(m, 16);
    put(m, "\x26\x06\x28\x00\x02\x20\x00\x01\x02\x48\x18\x93\x25\xc8\x19\x46", 16);
    rr(m, 16, 15, 60);
    rdl = m->n;
    put16(m, 0);
    put16(m, 10);
    put_name(m, "mail", 16);
    set16(m, rdl, (unsigned)(m->n - rdl - 2));
    rr(m, 16, 16, 60);
    put16(m, 1 + 11 + 1 + 5);
    put8(m, 11);
    put(m, "v=spf1 -all", 11);
    put8(m, 5);
    put(m, "other", 5);
    rr(m, 16, 12, 60);
    rdl = m->n;
    put16(m, 0);
    put_name(m, "host", 16);
    set16(m, rdl, (unsigned)(m->n - rdl - 2));
}

static void test_dns_query(void **state)
{
    (void)state;
    mb m = {0};
    dns_header(&m, 0x1234, 0x0100, 1, 0);
    put_name(&m, "api.anthropic.com", -1);
    put16(&m, 28);
    put16(&m, 1);
    net_dns d;
    assert_int_equal(net_dns_parse(m.b, m.n, false, &d), 0);
    assert_null(d.reason);
    assert_int_equal(d.id, 0x1234);
    assert_false(d.qr);
    assert_int_equal(d.n_q, 1);
    assert_string_equal(d.q[0].name, "api.anthropic.com");
    assert_int_equal(d.q[0].qtype, 28);
    assert_int_equal(d.q[0].qclass, 1);
    assert_int_equal(d.consumed, m.n);
    char t[12];
    assert_string_equal(net_dns_type_str(28, t, sizeof t), "AAAA");
    assert_string_equal(net_dns_type_str(65535, t, sizeof t), "TYPE65535");
}

static void test_dns_response(void **state)
{
    (void)state;
    mb m;
    dns_response(&m);
    net_dns d;
    assert_int_equal(net_dns_parse(m.b, m.n, false, &d), 0);
    assert_true(d.qr);
    assert_int_equal(d.rcode, 0);
    assert_int_equal(d.n_an, 6);
    static const struct {
        const char *name;
        uint16_t type;
        uint32_t ttl;
        const char *data;
    } want[] = {
        {"www.example.com", 5, 3600, "cdn.example.com"},
        {"cdn.example.com", 1, 300, "93.184.216.34"},
        {"cdn.example.com", 28, 300, "2606:2800:220:1:248:1893:25c8:1946"},
        {"example.com", 15, 60, "10 mail.example.com"},
        {"example.com", 16, 60, "v=spf1 -all"},
        {"example.com", 12, 60, "host.example.com"},
    };
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(d.an[i].name, want[i].name);
        assert_int_equal(d.an[i].type, want[i].type);
        assert_int_equal(d.an[i].ttl, want[i].ttl);
        assert_string_equal(d.an[i].data, want[i].data);
    }
    /* every prefix: corrupt and truncated, never a crash, questions kept once read */
    for (size_t k = 0; k < m.n; k++) {
        uint8_t *c = dup_n(m.b, k);
        assert_int_equal(net_dns_parse(c, k, false, &d), PTB_ECORRUPT);
        assert_non_null(d.reason);
        assert_true(d.truncated);
        if (k >= 33)
            assert_string_equal(d.q[0].name, "www.example.com");
        free(c);
    }
}

static void test_dns_tcp(void **state)
{
    (void)state;
    mb r, m = {0};
    dns_response(&r);
    put16(&m, (unsigned)r.n);
    put(&m, r.b, r.n);
    size_t one = m.n;
    put16(&m, (unsigned)r.n); /* a second message follows in the stream */
    put(&m, r.b, r.n);
    net_dns d;
    assert_int_equal(net_dns_parse(m.b, m.n, true, &d), 0);
    assert_int_equal(d.consumed, one);
    assert_int_equal(d.n_an, 6);
    for (size_t k = 0; k < one; k++) {
        uint8_t *c = dup_n(m.b, k);
        assert_int_equal(net_dns_parse(c, k, true, &d), PTB_ECORRUPT);
        assert_true(d.truncated);
        free(c);
    }
}

/* Malformed messages: each must fail with the given reason, whatever its length. */
static void test_dns_malformed(void **state)
{
    (void)state;
    struct {
        const char *what;
        const char *reason;
        mb m;
    } t[6];
    memset(t, 0, sizeof t);
    /* a pointer to itself */
    t[0].what = "self pointer";
    t[0].reason = "compression pointer points forward";
    dns_header(&t[0].m, 1, 0, 1, 0);
    put16(&t[0].m, 0xC00C);
    /* a label, then a pointer back to the start of the same name */
    t[1].what = "loop";
    t[1].reason = "compression pointer loop";
    dns_header(&t[1].m, 1, 0, 1, 0);
    put_name(&t[1].m, "a", 12);
    /* a chain that jumps back twice, the second time into the labels the first jump reached:
     * every pointer points backwards from where it stands, yet the chain would cycle */
    t[2].what = "backward cycle";
    t[2].reason = "compression pointer loop";
    dns_header(&t[2].m, 1, 0, 2, 0);
    put_name(&t[2].m, "a.b", -1); /* 12: 1a 1b 0 */
    put32(&t[2].m, 0x00010001);
    t[2].m.b[16] = 0x01; /* turn the end of "a.b" into a label "c" that runs into 21 */
    t[2].m.b[17] = 'c';
    t[2].m.n = 18;
    put16(&t[2].m, 0xC000 | 14); /* 18: ptr back to "b" (14 < 18, but inside its own name) */
    /* a pointer past itself */
    t[3].what = "forward pointer";
    t[3].reason = "compression pointer points forward";
    dns_header(&t[3].m, 1, 0, 1, 0);
    put16(&t[3].m, 0xC000 | 40);
    for (int i = 0; i < 40; i++)
        put8(&t[3].m, 0);
    /* 5 labels of 63 bytes: 320 > 255 */
    t[4].what = "long name";
    t[4].reason = "name longer than 255 bytes";
    dns_header(&t[4].m, 1, 0, 1, 0);
    for (int i = 0; i < 5; i++) {
        put8(&t[4].m, 63);
        for (int j = 0; j < 63; j++)
            put8(&t[4].m, 'a');
    }
    put8(&t[4].m, 0);
    put32(&t[4].m, 0x00010001);
    /* an A record with 5 bytes of rdata */
    t[5].what = "bad A";
    t[5].reason = "A record rdata is not 4 bytes";
    dns_header(&t[5].m, 1, 0x8000, 0, 1);
    put_name(&t[5].m, "a", -1);
    put16(&t[5].m, 1);
    put16(&t[5].m, 1);
    put32(&t[5].m, 1);
    put16(&t[5].m, 5);
    put(&t[5].m, "\1\2\3\4\5", 5);
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        net_dns d;
        uint8_t *c = dup_n(t[i].m.b, t[i].m.n);
        int rc = net_dns_parse(c, t[i].m.n, false, &d);
        free(c);
        if (rc != PTB_ECORRUPT || !d.reason || strcmp(d.reason, t[i].reason) != 0)
            fail_msg("%s: rc %d reason %s", t[i].what, rc, d.reason ? d.reason : "(null)");
        assert_false(d.truncated);
    }
}

static void test_dns_bounds(void **state)
{
    (void)state;
    mb m = {0};
    dns_header(&m, 7, 0x8180, 6, 20);
    for (int i = 0; i < 6; i++) {
        put_name(&m, i ? "" : "example.com", i ? 12 : -1);
        put32(&m, 0x00010001);
    }
    for (int i = 0; i < 20; i++) {
        rr(&m, 12, 1, (uint32_t)i);
        put16(&m, 4);
        put32(&m, 0x0A000001u + (uint32_t)i);
    }
    net_dns d;
    assert_int_equal(net_dns_parse(m.b, m.n, false, &d), 0);
    assert_int_equal(d.n_q, NET_DNS_MAX_QUESTIONS);
    assert_int_equal(d.q_dropped, 6 - NET_DNS_MAX_QUESTIONS);
    assert_int_equal(d.n_an, NET_DNS_MAX_ANSWERS);
    assert_int_equal(d.an_dropped, 20 - NET_DNS_MAX_ANSWERS);
    assert_string_equal(d.an[15].data, "10.0.0.16");
}

/* ---- TLS --------------------------------------------------------------------------------- */

/* The handshake message of a ClientHello as curl (OpenSSL 3) sends it, trimmed: session id,
 * three suites, SNI, ALPN h2 + http/1.1, supported_versions 1.3 + 1.2, a key share. */
static void tls_hello_msg(mb *h, const char *sni)
{
    mb b = {0};
    put16(&b, 0x0303);
    for (int i = 0; i < 32; i++)
        put8(&b, (unsigned)(i * 7));
    put8(&b, 32);
    for (int i = 0; i < 32; i++)
        put8(&b, (unsigned)i);
    put16(&b, 6);
    put16(&b, 0x1302);
    put16(&b, 0x1303);
    put16(&b, 0x1301);
    put8(&b, 1);
    put8(&b, 0);
    mb e = {0};
    size_t sl = strlen(sni);
    put16(&e, 0); /* server_name */
    put16(&e, (unsigned)(sl + 5));
    put16(&e, (unsigned)(sl + 3));
    put8(&e, 0);
    put16(&e, (unsigned)sl);
    put(&e, sni, sl);
    put16(&e, 16); /* ALPN */
    put16(&e, 14);
    put16(&e, 12);
    put8(&e, 2);
    put(&e, "h2", 2);
    put8(&e, 8);
    put(&e, "http/1.1", 8);
    put16(&e, 43); /* supported_versions */
    put16(&e, 5);
    put8(&e, 4);
    put16(&e, 0x0304);
    put16(&e, 0x0303);
    put16(&e, 51); /* key_share, x25519 */
    put16(&e, 38);
    put16(&e, 36);
    put16(&e, 29);
    put16(&e, 32);
    for (int i = 0; i < 32; i++)
        put8(&e, 0xAA);
    put16(&b, (unsigned)e.n);
    put(&b, e.b, e.n);
    h->n = 0;
    put8(h, 1);
    put8(h, 0);
    put16(h, (unsigned)b.n);
    put(h, b.b, b.n);
}

/* Records carrying msg, split at the given offsets. */
static void tls_records(mb *out, const mb *msg, const size_t *cuts, size_t ncuts)
{
    out->n = 0;
    size_t at = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : msg->n;
        put8(out, 22);
        put16(out, i ? 0x0303 : 0x0301);
        put16(out, (unsigned)(end - at));
        put(out, msg->b + at, end - at);
        at = end;
    }
}

static void check_hello(const net_tls *t)
{
    assert_true(t->has_sni);
    assert_string_equal(t->sni, "example.test");
    assert_int_equal(t->n_alpn, 2);
    assert_string_equal(t->alpn[0], "h2");
    assert_string_equal(t->alpn[1], "http/1.1");
    assert_int_equal(t->n_versions, 2);
    assert_int_equal(t->versions[0], 0x0304);
    assert_int_equal(t->legacy_version, 0x0303);
    assert_int_equal(t->record_version, 0x0301);
}

static void test_tls_hello(void **state)
{
    (void)state;
    mb h, r;
    tls_hello_msg(&h, "example.test");
    static const size_t split[][2] = {{0, 0}, {1, 0}, {2, 0}, {3, 0}, {50, 0}, {100, 101}};
    for (size_t s = 0; s < sizeof split / sizeof split[0]; s++) {
        size_t ncuts = split[s][0] ? (split[s][1] ? 2 : 1) : 0;
        tls_records(&r, &h, split[s], ncuts);
        size_t whole = r.n;
        put(&r, "\x14\x03\x03\x00\x01\x01", 6); /* what follows is not part of the hello */
        net_tls t;
        assert_int_equal(net_tls_client_hello(r.b, r.n, &t), 0);
        check_hello(&t);
        assert_int_equal(t.n_records, ncuts + 1);
        assert_int_equal(t.consumed, whole);
        for (size_t k = 0; k < whole; k++) {
            uint8_t *c = dup_n(r.b, k);
            int rc = net_tls_client_hello(c, k, &t);
            if (rc != PTB_ENOTFOUND || !t.need_more)
                fail_msg("split %zu cut at %zu: rc %d need_more %d", s, k, rc, t.need_more);
            free(c);
        }
    }
}

static void test_tls_not_hello(void **state)
{
    (void)state;
    mb h, r;
    tls_hello_msg(&h, "example.test");
    tls_records(&r, &h, NULL, 0);
    net_tls t;
    static const char http[] = "GET / HTTP/1.1\r\n";
    assert_int_equal(net_tls_client_hello((const uint8_t *)http, 16, &t), PTB_ENOTFOUND);
    assert_false(t.need_more);
    r.b[5] = 2; /* a ServerHello */
    assert_int_equal(net_tls_client_hello(r.b, r.n, &t), PTB_ENOTFOUND);
    assert_false(t.need_more);
    r.b[5] = 1;
    /* corrupt: extensions length one too long (and the message one byte longer to match) */
    mb bad = r;
    size_t ext_len_at = 5 + 4 + 2 + 32 + 33 + 8 + 2;
    set16(&bad, ext_len_at, (unsigned)((bad.b[ext_len_at] << 8 | bad.b[ext_len_at + 1]) - 1));
    assert_int_equal(net_tls_client_hello(bad.b, bad.n, &t), PTB_ECORRUPT);
    assert_non_null(t.reason);
    /* an alert record in the middle of a split hello */
    size_t cut = 40;
    tls_records(&r, &h, &cut, 1);
    r.b[5 + cut] = 21;
    assert_int_equal(net_tls_client_hello(r.b, r.n, &t), PTB_ECORRUPT);
}

/* ---- HTTP -------------------------------------------------------------------------------- */

#define KEY "sk-ant-api03-Zq8vT1LxW4mRk7NbPa9cYdEe2FgHh3Jj5Kk6Ll_-Mm0NnOoPpQqRr"
#define APIKEY "d41d8cd98f00b204e9800998ecf8427e"
#define COOKIE "sessionid=7Hs9KqPzXmW2vLr4TnB8"
#define QKEY "Q7wErTyUiOpAsDfGhJkLzXcV"
#define AWS "AKIAIOSFODNN7EXAMPLE"

static const char *secrets[] = {KEY, APIKEY, COOKIE, QKEY, AWS};

/* No secret, nor any 8-byte piece of one past its first 4 bytes (the fingerprint prefix). */
static void check_no_secret(const void *out, size_t n)
{
    for (size_t s = 0; s < sizeof secrets / sizeof secrets[0]; s++) {
        size_t sl = strlen(secrets[s]);
        for (size_t i = 4; i + 8 <= sl; i++)
            if (memmem(out, n, secrets[s] + i, 8))
                fail_msg("piece %.8s of secret %zu in the output", secrets[s] + i, s);
    }
}

static const char req[] = "POST /v1/messages?beta=true&api_key=" QKEY " HTTP/1.1\r\n"
                          "Host: api.anthropic.com\r\n"
                          "User-Agent: claude-cli/1.0.0 (external, cli)\r\n"
                          "Authorization: Bearer " KEY "\r\n"
                          "X-Api-Key: " APIKEY "\r\n"
                          "cookie: " COOKIE "\r\n"
                          "Content-Type: application/json\r\n"
                          "Content-Length: 2\r\n"
                          "X-Refresh-Token: " APIKEY "\r\n"
                          "\r\n{}";

static void test_http_request(void **state)
{
    (void)state;
    net_http h;
    size_t n = sizeof req - 1;
    assert_int_equal(net_http_parse((const uint8_t *)req, n, &h), 0);
    assert_false(h.response);
    assert_string_equal(h.method, "POST");
    assert_int_equal(h.version_minor, 1);
    assert_non_null(strstr(h.path, "/v1/messages?beta=true&api_key=<secret:generic:"));
    assert_string_equal(h.host, "api.anthropic.com");
    assert_string_equal(h.user_agent, "claude-cli/1.0.0 (external, cli)");
    assert_string_equal(h.content_type, "application/json");
    assert_true(h.has_content_length);
    assert_int_equal(h.content_length, 2);
    assert_int_equal(h.head_len, n - 2);
    assert_int_equal(h.n_headers, 8);
    assert_int_equal(h.n_creds, 4);
    assert_string_equal(h.creds[0].name, "Authorization");
    assert_string_equal(h.creds[0].scheme, "Bearer");
    redact_fp want;
    assert_int_equal(redact_fingerprint("anthropic", KEY, strlen(KEY), &want), 0);
    assert_string_equal(h.creds[0].fp.provider, "anthropic");
    assert_string_equal(h.creds[0].fp.prefix, "sk-a");
    assert_memory_equal(h.creds[0].fp.sha256, want.sha256, 32);
    assert_int_equal(h.creds[0].fp.length, strlen(KEY));
    assert_ptr_equal(h.creds[0].fp.pb.sha256.data, h.creds[0].fp.sha256);
    assert_string_equal(h.creds[1].name, "X-Api-Key");
    assert_string_equal(h.creds[1].fp.provider, "generic");
    assert_string_equal(h.creds[1].scheme, "");
    assert_string_equal(h.creds[2].name, "cookie");
    assert_string_equal(h.creds[3].name, "X-Refresh-Token");
    check_no_secret(&h, sizeof h);
    /* every prefix: incomplete, valid so far, and still no secret (not even half of one) */
    for (size_t k = 0; k < n - 2; k++) {
        uint8_t *c = dup_n((const uint8_t *)req, k);
        int rc = net_http_parse(c, k, &h);
        if (rc != PTB_ENOTFOUND || !h.need_more)
            fail_msg("cut at %zu: rc %d need_more %d", k, rc, h.need_more);
        check_no_secret(&h, sizeof h);
        free(c);
    }
}

static void test_http_auth_shapes(void **state)
{
    (void)state;
    static const struct {
        const char *value, *scheme, *provider, *cred;
    } t[] = {
        {"Bearer " KEY, "Bearer", "anthropic", KEY},
        {"bearer   " APIKEY "  ", "Bearer", "bearer", APIKEY},
        {"Basic dXNlcjpwYXNz", "Basic", "basic", "dXNlcjpwYXNz"},
        {KEY, "", "anthropic", KEY},                    /* no scheme at all */
        {KEY " trailing", "", "auth", KEY " trailing"}, /* the first word is no scheme */
        {"Bearer", "", "auth", "Bearer"},               /* a lone word is the credential */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char buf[512];
        int n = snprintf(buf, sizeof buf, "GET / HTTP/1.0\nAuthorization: %s\n\n", t[i].value);
        net_http h;
        assert_int_equal(net_http_parse((const uint8_t *)buf, (size_t)n, &h), 0);
        assert_int_equal(h.n_creds, 1);
        assert_string_equal(h.creds[0].scheme, t[i].scheme);
        assert_string_equal(h.creds[0].fp.provider, t[i].provider);
        redact_fp want;
        assert_int_equal(redact_fingerprint(NULL, t[i].cred, strlen(t[i].cred), &want), 0);
        assert_memory_equal(h.creds[0].fp.sha256, want.sha256, 32);
        check_no_secret(&h, sizeof h);
    }
}

static void test_http_response(void **state)
{
    (void)state;
    static const char rsp[] = "HTTP/1.1 404 Not Found\r\n"
                              "Content-Type: text/html\r\n"
                              "Set-Cookie: " COOKIE "; Path=/; HttpOnly\r\n"
                              "Content-Length: 9\r\n"
                              "\r\nnot found";
    net_http h;
    assert_int_equal(net_http_parse((const uint8_t *)rsp, sizeof rsp - 1, &h), 0);
    assert_true(h.response);
    assert_int_equal(h.status, 404);
    assert_string_equal(h.reason_phrase, "Not Found");
    assert_int_equal(h.content_length, 9);
    assert_int_equal(h.head_len, sizeof rsp - 1 - 9);
    assert_int_equal(h.n_creds, 1);
    assert_string_equal(h.creds[0].name, "Set-Cookie");
    check_no_secret(&h, sizeof h);
}

static void test_http_rejects(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int rc;
        bool need_more;
    } t[] = {
        {"SSH-2.0-OpenSSH_9.6\r\n", PTB_ENOTFOUND, false},
        {"\x16\x03\x01\x02\x00\x01", PTB_ENOTFOUND, false},
        {"GET / HTTP/2.0\r\n\r\n", PTB_ENOTFOUND, false},
        {"GET / HTTP/1.1\r\nno colon here\r\n\r\n", PTB_ECORRUPT, false},
        {"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", PTB_ECORRUPT, false},
        {"HTTP/1.1 2000 OK\r\n\r\n", PTB_ECORRUPT, false},
        {"HTTP/1.1 200\r\nContent-Length: 1x\r\n\r\n", PTB_ECORRUPT, false},
        {"HTTP/1.1 200\r\n\r\n", 0, false},
        {"GET / HTTP/1.1\r\nHost: a\r\n", PTB_ENOTFOUND, true},
        {"GET / HTTP/1.1\r\nAuthorization: Bearer " KEY, PTB_ENOTFOUND, true},
        {"", PTB_ENOTFOUND, true},
        {AWS " / HTTP/1.1\r\n\r\n", PTB_ENOTFOUND, false}, /* a key is no method */
        {"HTTP/1.1 401 " KEY "\r\n" AWS ": 1\r\n\r\n", 0, false},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        net_http h;
        size_t n = strlen(t[i].in);
        uint8_t *c = dup_n((const uint8_t *)t[i].in, n);
        int rc = net_http_parse(c, n, &h);
        if (rc != t[i].rc || h.need_more != t[i].need_more)
            fail_msg("case %zu: rc %d need_more %d", i, rc, h.need_more);
        if (rc)
            assert_non_null(h.reason);
        check_no_secret(&h, sizeof h);
        free(c);
    }
    /* too many headers: an error, and what is past the bound is not read (not fingerprinted) */
    static char many[16384];
    size_t n = (size_t)snprintf(many, sizeof many, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < NET_HTTP_HEADERS_MAX + 10; i++)
        n += (size_t)snprintf(many + n, sizeof many - n, "X-H%d: v\r\n", i);
    n += (size_t)snprintf(many + n, sizeof many - n, "\r\n");
    net_http h;
    assert_int_equal(net_http_parse((const uint8_t *)many, n, &h), PTB_ETOOBIG);
    assert_int_equal(h.headers_dropped, 10);
}

/* ---- a real client ----------------------------------------------------------------------- */

static bool have_openssl(void)
{
    return system("command -v openssl >/dev/null 2>&1") == 0;
}

/* openssl s_client connects to a socket of this test on 127.0.0.1 (never anything else); the
 * bytes it sends first are read until the parser has a whole ClientHello. */
static void test_tls_openssl_client(void **state)
{
    (void)state;
    if (!have_openssl())
        skip();
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(ls >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(ls, 1), 0);
    assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &al), 0);
    char hostport[32];
    snprintf(hostport, sizeof hostport, "127.0.0.1:%u", ntohs(a.sin_port));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int nul = open("/dev/null", O_RDWR);
        if (nul >= 0) {
            dup2(nul, 0);
            dup2(nul, 1);
            dup2(nul, 2);
        }
        execlp("openssl", "openssl", "s_client", "-connect", hostport, "-servername",
               "example.test", "-alpn", "h2", (char *)NULL);
        _exit(127);
    }
    struct pollfd p = {.fd = ls, .events = POLLIN};
    int rc = PTB_ENOTFOUND;
    net_tls t = {0};
    static uint8_t buf[65536];
    size_t n = 0;
    if (poll(&p, 1, 10000) == 1) {
        int cs = accept(ls, NULL, NULL);
        assert_true(cs >= 0);
        struct pollfd q = {.fd = cs, .events = POLLIN};
        while (n < sizeof buf && poll(&q, 1, 10000) == 1) {
            ssize_t k = read(cs, buf + n, sizeof buf - n);
            if (k <= 0)
                break;
            n += (size_t)k;
            rc = net_tls_client_hello(buf, n, &t);
            if (rc != PTB_ENOTFOUND || !t.need_more)
                break;
        }
        close(cs);
    }
    close(ls);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    if (rc)
        fail_msg("openssl s_client: %zu bytes read, rc %d, reason %s", n, rc,
                 t.reason ? t.reason : "(null)");
    assert_true(t.has_sni);
    assert_string_equal(t.sni, "example.test");
    assert_int_equal(t.n_alpn, 1);
    assert_string_equal(t.alpn[0], "h2");
    assert_true(t.n_versions >= 1);
    print_message("openssl s_client ClientHello: %zu bytes in %zu record(s), %zu versions\n",
                  t.consumed, t.n_records, t.n_versions);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dns_query),        cmocka_unit_test(test_dns_response),
        cmocka_unit_test(test_dns_tcp),          cmocka_unit_test(test_dns_malformed),
        cmocka_unit_test(test_dns_bounds),       cmocka_unit_test(test_tls_hello),
        cmocka_unit_test(test_tls_not_hello),    cmocka_unit_test(test_http_request),
        cmocka_unit_test(test_http_auth_shapes), cmocka_unit_test(test_http_response),
        cmocka_unit_test(test_http_rejects),     cmocka_unit_test(test_tls_openssl_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
