/* TLS ClientHello (RFC 8446 4.1.2, RFC 5246 7.4.1.2), for net.tls events. Layout, big-endian:
 *
 *   record     type:8 (22 = handshake) version:16 length:16 fragment[length]
 *   handshake  msg_type:8 (1 = client_hello) length:24 body[length]   (joined over records)
 *   hello      legacy_version:16 random[32] session_id<0..32> cipher_suites<2..2^16-2>
 *              compression_methods<1..2^8-1> extensions<0..2^16-1> (absent in old hellos)
 *   extension  type:16 data<0..2^16-1>
 *     server_name (0)          list<2>: name_type:8 (0 = host_name) name<2>
 *     alpn (16)                list<2>: protocol_name<1> (1..255 bytes)
 *     supported_versions (43)  versions<1>: version:16 ...
 *
 * where x<n> is a vector with an n-byte length. A ClientHello larger than one TCP segment (post-
 * quantum key shares make them ~1.8 kB) spans segments, and a client may also split it over
 * several records; the caller hands the reassembled stream prefix and the records are joined
 * here. Only the ClientHello is read: everything after it in the stream is encrypted or the
 * server's. */
#include <string.h>

#include "net_app.h"
#include "ptb_error.h"

static uint16_t tls_rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* A bounded reader over one vector; every take fails once the bytes run out. */
typedef struct tls_cur {
    const uint8_t *p;
    size_t n;
} tls_cur;

static bool tls_take(tls_cur *c, size_t k, const uint8_t **out)
{
    if (k > c->n)
        return false;
    *out = c->p;
    c->p += k;
    c->n -= k;
    return true;
}

/* A vector with a w-byte length prefix (w = 1 or 2). */
static bool tls_vec(tls_cur *c, unsigned w, tls_cur *v)
{
    const uint8_t *p;
    if (!tls_take(c, w, &p))
        return false;
    size_t k = w == 1 ? p[0] : tls_rd16(p);
    if (!tls_take(c, k, &v->p))
        return false;
    v->n = k;
    return true;
}

static void tls_text(char *out, size_t cap, const uint8_t *p, size_t n)
{
    size_t k = n < cap - 1 ? n : cap - 1;
    for (size_t i = 0; i < k; i++)
        out[i] = (p[i] < 0x20 || p[i] > 0x7E) ? '?' : (char)p[i];
    out[k] = '\0';
}

static int tls_fail(net_tls *out, const char *reason)
{
    out->reason = reason;
    return PTB_ECORRUPT;
}

static int tls_sni(tls_cur e, net_tls *out)
{
    tls_cur list, name;
    if (!tls_vec(&e, 2, &list) || e.n)
        return tls_fail(out, "server_name: bad list length");
    while (list.n) {
        const uint8_t *type;
        if (!tls_take(&list, 1, &type) || !tls_vec(&list, 2, &name))
            return tls_fail(out, "server_name: entry runs past the list");
        if (type[0] != 0 || out->has_sni)
            continue; /* other name types are undefined; one host_name is allowed */
        if (name.n == 0 || name.n >= NET_TLS_HOST_MAX)
            return tls_fail(out, "server_name: host_name empty or over 255 bytes");
        tls_text(out->sni, sizeof out->sni, name.p, name.n);
        out->has_sni = true;
    }
    return 0;
}

static int tls_alpn(tls_cur e, net_tls *out)
{
    tls_cur list, id;
    if (!tls_vec(&e, 2, &list) || e.n || list.n == 0)
        return tls_fail(out, "alpn: bad list length");
    while (list.n) {
        if (!tls_vec(&list, 1, &id) || id.n == 0)
            return tls_fail(out, "alpn: protocol id empty or past the list");
        if (out->n_alpn < NET_TLS_ALPN_MAX)
            tls_text(out->alpn[out->n_alpn++], NET_TLS_ALPN_LEN, id.p, id.n);
        else
            out->alpn_dropped++;
    }
    return 0;
}

static int tls_versions(tls_cur e, net_tls *out)
{
    tls_cur list;
    if (!tls_vec(&e, 1, &list) || e.n || list.n == 0 || list.n % 2)
        return tls_fail(out, "supported_versions: bad list length");
    for (size_t i = 0; i < list.n; i += 2) {
        if (out->n_versions < NET_TLS_VERSIONS_MAX)
            out->versions[out->n_versions++] = tls_rd16(list.p + i);
        else
            out->versions_dropped++;
    }
    return 0;
}

/* The body of a ClientHello (n bytes, after the 4-byte handshake header). */
static int tls_hello(const uint8_t *body, size_t n, net_tls *out)
{
    tls_cur c = {body, n}, v;
    const uint8_t *p;
    if (!tls_take(&c, 2 + 32, &p))
        return tls_fail(out, "hello: shorter than version and random");
    out->legacy_version = tls_rd16(p);
    if (!tls_vec(&c, 1, &v) || v.n > 32)
        return tls_fail(out, "hello: bad session_id");
    if (!tls_vec(&c, 2, &v) || v.n < 2 || v.n % 2)
        return tls_fail(out, "hello: bad cipher_suites");
    if (!tls_vec(&c, 1, &v) || v.n < 1)
        return tls_fail(out, "hello: bad compression_methods");
    if (c.n == 0)
        return 0; /* SSL 3.0 / early TLS hellos end here */
    tls_cur exts;
    if (!tls_vec(&c, 2, &exts) || c.n)
        return tls_fail(out, "hello: extensions length does not match the message");
    while (exts.n) {
        tls_cur e;
        if (!tls_take(&exts, 2, &p) || !tls_vec(&exts, 2, &e))
            return tls_fail(out, "hello: extension runs past the list");
        int rc = 0;
        switch (tls_rd16(p)) {
        case 0: rc = tls_sni(e, out); break;
        case 16: rc = tls_alpn(e, out); break;
        case 43: rc = tls_versions(e, out); break;
        default: break;
        }
        if (rc)
            return rc;
    }
    return 0;
}

int net_tls_client_hello(const uint8_t *data, size_t len, net_tls *out)
{
    if (!out || (!data && len))
        return PTB_EINVAL;
    memset(out, 0, sizeof *out);
    /* The joined handshake bytes: only the first 4 + length of them are needed. */
    uint8_t hs[NET_TLS_HELLO_MAX];
    size_t have = 0, want = 0; /* want: 4 + message length once the header is in */
    size_t off = 0;
    while (want == 0 || have < want) {
        if (len - off < 5) {
            if (off == 0 && ((len > 0 && data[0] != 22) || (len > 1 && data[1] != 3))) {
                out->reason = "not a TLS handshake record";
                return PTB_ENOTFOUND;
            }
            out->need_more = true;
            out->reason = "stream ends inside a record header";
            return PTB_ENOTFOUND;
        }
        const uint8_t *h = data + off;
        if (h[0] != 22 || h[1] != 3) {
            out->reason = off ? "a non-handshake record inside the ClientHello"
                              : "not a TLS handshake record";
            return off ? PTB_ECORRUPT : PTB_ENOTFOUND;
        }
        size_t rlen = tls_rd16(h + 3);
        if (off == 0)
            out->record_version = tls_rd16(h + 1);
        if (rlen == 0 || rlen > NET_TLS_RECORD_MAX) {
            out->reason = "handshake record length 0 or over 2^14 + 2048";
            return PTB_ECORRUPT;
        }
        out->n_records++;
        off += 5;
        size_t got = len - off < rlen ? len - off : rlen;
        /* copy only what the message needs and the buffer holds; the rest is the next
         * handshake message (a hello is first and alone in practice) */
        size_t room = want ? want - have : sizeof hs - have;
        size_t k = got < room ? got : room;
        memcpy(hs + have, data + off, k);
        have += k;
        off += got;
        out->consumed = off;
        if (want == 0 && have >= 4) {
            if (hs[0] != 1) {
                out->reason = "first handshake message is not a ClientHello";
                return PTB_ENOTFOUND;
            }
            size_t mlen = (size_t)hs[1] << 16 | (size_t)hs[2] << 8 | hs[3];
            if (mlen > sizeof hs - 4) {
                out->reason = "ClientHello over NET_TLS_HELLO_MAX";
                return PTB_ETOOBIG;
            }
            want = 4 + mlen;
            if (have > want)
                have = want;
        }
        if (got < rlen && (want == 0 || have < want)) {
            out->need_more = true;
            out->reason = "stream ends inside the ClientHello";
            return PTB_ENOTFOUND;
        }
    }
    int rc = tls_hello(hs + 4, want - 4, out);
    if (rc == 0)
        out->reason = NULL;
    return rc;
}
