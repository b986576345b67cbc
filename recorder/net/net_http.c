/* HTTP/1.x message heads (RFC 9112 2-5), for net.http events:
 *
 *   request-line  method SP request-target SP "HTTP/1." DIGIT CRLF
 *   status-line   "HTTP/1." DIGIT SP 3DIGIT [SP reason-phrase] CRLF
 *   header        field-name ":" OWS field-value OWS CRLF      (until an empty line)
 *
 * A bare LF is accepted for CRLF, as most servers do. Obsolete line folding (a line starting
 * with SP or HTAB) continues the previous header; such continuations are skipped, never kept, so
 * a folded credential cannot leak through them.
 *
 * Secrets: this is where an agent's API key crosses the wire, so a credential header's value
 * never leaves this file. It is fingerprinted (redact_fingerprint) with the provider tag of its
 * key shape when it has one (redact_provider), else the Authorization scheme ("bearer",
 * "basic", "auth") or "generic". The scheme name itself is kept only when it is one of the
 * known schemes: in "sk-ant-... x" the first word is the key, not a scheme. Every kept text
 * (target, reason phrase, credential header names, Host, User-Agent, Content-Type) goes through
 * redact_text, so key shapes and labelled values anywhere in it ("?api_key=...") become
 * placeholders. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net_app.h"
#include "ptb_error.h"

static bool http_tchar(uint8_t c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Copy text (n bytes) into out (cap bytes, cap >= 1) as printable ASCII, cut to fit; returns
 * the length before the cut. */
static size_t http_copy(char *out, size_t cap, const char *p, size_t n)
{
    size_t k = n < cap - 1 ? n : cap - 1;
    for (size_t i = 0; i < k; i++)
        out[i] = ((uint8_t)p[i] < 0x20 || (uint8_t)p[i] > 0x7E) ? '?' : p[i];
    out[k] = '\0';
    return n;
}

/* Redact p (n bytes) with redact_text and copy the result into out. Returns 0 or PTB_ENOMEM;
 * *full gets the redacted length before any cut. A cut can only shorten a placeholder, never
 * reveal what it replaced. */
static int http_redacted(char *out, size_t cap, const char *p, size_t n, size_t *full)
{
    char *r = NULL;
    size_t rn = 0;
    int rc = redact_text(p, n, &r, &rn, NULL);
    if (rc) {
        out[0] = '\0';
        return rc == PTB_ETOOBIG ? 0 : rc; /* lines are far below REDACT_TEXT_MAX */
    }
    size_t f = http_copy(out, cap, r, rn);
    if (full)
        *full = f;
    free(r);
    return 0;
}

bool net_http_header_is_secret(const char *name, size_t n)
{
    static const char *exact[] = {"authorization", "proxy-authorization", "cookie",
                                  "set-cookie",    "x-api-key",           "api-key"};
    static const char *parts[] = {"token", "key", "secret"};
    char low[64];
    if (!name)
        return false;
    if (n >= sizeof low)
        return true; /* an absurdly long name: not worth the risk */
    for (size_t i = 0; i < n; i++)
        low[i] = (char)tolower((unsigned char)name[i]);
    low[n] = '\0';
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (strcmp(low, exact[i]) == 0)
            return true;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        if (strstr(low, parts[i]))
            return true;
    return redact_name_is_secret(low);
}

/* Authorization schemes whose name is kept (IANA HTTP Authentication Scheme Registry plus the
 * common non-registered ones). */
static const char *http_scheme(const char *p, size_t n)
{
    static const char *known[] = {
        "Basic", "Bearer", "Digest", "Negotiate",        "NTLM",          "Token",       "Bot",
        "HOBA",  "Mutual", "DPoP",   "AWS4-HMAC-SHA256", "SCRAM-SHA-256", "GoogleLogin", "OAuth"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strlen(known[i]) == n && strncasecmp(known[i], p, n) == 0)
            return known[i];
    return NULL;
}

static int http_cred(net_http *out, const char *name, size_t nn, const char *v, size_t vn)
{
    if (out->n_creds >= NET_HTTP_CREDS_MAX) {
        out->creds_dropped++;
        return 0;
    }
    net_http_cred *c = &out->creds[out->n_creds];
    memset(c, 0, sizeof *c);
    /* a name is no secret, but one made of a key shape still becomes a placeholder */
    int rc = http_redacted(c->name, sizeof c->name, name, nn, NULL);
    if (rc)
        return rc;
    const char *provider = "generic";
    bool auth = (nn == 13 && strncasecmp(name, "authorization", 13) == 0) ||
                (nn == 19 && strncasecmp(name, "proxy-authorization", 19) == 0);
    if (auth) {
        size_t sp = 0;
        while (sp < vn && v[sp] != ' ' && v[sp] != '\t')
            sp++;
        const char *scheme = sp < vn ? http_scheme(v, sp) : NULL;
        provider = "auth";
        if (scheme) {
            snprintf(c->scheme, sizeof c->scheme, "%s", scheme);
            if (strcasecmp(scheme, "bearer") == 0)
                provider = "bearer";
            else if (strcasecmp(scheme, "basic") == 0)
                provider = "basic";
            while (sp < vn && (v[sp] == ' ' || v[sp] == '\t'))
                sp++;
            v += sp;
            vn -= sp;
        }
    }
    const char *shape = redact_provider(v, vn);
    rc = redact_fingerprint(shape ? shape : provider, v, vn, &c->fp);
    if (rc)
        return rc;
    out->n_creds++;
    return 0;
}

/* One header line (without its line end). */
static int http_header(net_http *out, const char *l, size_t n)
{
    size_t nn = 0;
    while (nn < n && l[nn] != ':')
        nn++;
    if (nn == 0 || nn == n) {
        out->reason = "header line without a name and ':'";
        return PTB_ECORRUPT;
    }
    for (size_t i = 0; i < nn; i++)
        if (!http_tchar((uint8_t)l[i])) {
            out->reason = "bad character in a header name";
            return PTB_ECORRUPT;
        }
    const char *v = l + nn + 1;
    size_t vn = n - nn - 1;
    while (vn && (*v == ' ' || *v == '\t'))
        v++, vn--;
    while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
        vn--;
    if (net_http_header_is_secret(l, nn))
        return http_cred(out, l, nn, v, vn);
    if (nn == 4 && strncasecmp(l, "host", 4) == 0 && !out->host[0])
        return http_redacted(out->host, sizeof out->host, v, vn, NULL);
    if (nn == 10 && strncasecmp(l, "user-agent", 10) == 0 && !out->user_agent[0])
        return http_redacted(out->user_agent, sizeof out->user_agent, v, vn, NULL);
    if (nn == 12 && strncasecmp(l, "content-type", 12) == 0 && !out->content_type[0])
        return http_redacted(out->content_type, sizeof out->content_type, v, vn, NULL);
    if (nn == 14 && strncasecmp(l, "content-length", 14) == 0 && !out->has_content_length) {
        uint64_t x = 0;
        if (vn == 0 || vn > 19) {
            out->reason = "bad Content-Length";
            return PTB_ECORRUPT;
        }
        for (size_t i = 0; i < vn; i++) {
            if (v[i] < '0' || v[i] > '9') {
                out->reason = "bad Content-Length";
                return PTB_ECORRUPT;
            }
            x = x * 10 + (uint64_t)(v[i] - '0');
        }
        out->content_length = x;
        out->has_content_length = true;
    }
    /* Transfer-Encoding whose last coding is chunked (RFC 9112 6.1) */
    if (nn == 17 && strncasecmp(l, "transfer-encoding", 17) == 0 && vn >= 7 &&
        strncasecmp(v + vn - 7, "chunked", 7) == 0 &&
        (vn == 7 || v[vn - 8] == ',' || v[vn - 8] == ' '))
        out->transfer_chunked = true;
    return 0;
}

/* "HTTP/1.x" at p (n bytes available); -1 when it is not, else x. */
static int http_version(const char *p, size_t n)
{
    if (n < 8 || memcmp(p, "HTTP/1.", 7) != 0 || p[7] < '0' || p[7] > '9')
        return -1;
    return p[7] - '0';
}

/* Whether the first n bytes (no line end among them) can still become a start line. */
static bool http_prefix_ok(const char *p, size_t n)
{
    static const char v[] = "HTTP/1.";
    if (n == 0)
        return true; /* p may be NULL */
    if (n <= 7 && memcmp(p, v, n) == 0)
        return true;
    if (n >= 7 && memcmp(p, v, 7) == 0)
        return n == 7 || (p[7] >= '0' && p[7] <= '9');
    size_t i = 0;
    while (i < n && i < 24 && http_tchar((uint8_t)p[i]))
        i++;
    return i > 0 && (i == n || (p[i] == ' ' && i < 24));
}

static int http_start(net_http *out, const char *l, size_t n)
{
    int ver = http_version(l, n);
    if (ver >= 0) {
        /* "HTTP/1.1 200 OK": a response */
        if (n < 12 || l[8] != ' ' || !isdigit((uint8_t)l[9]) || !isdigit((uint8_t)l[10]) ||
            !isdigit((uint8_t)l[11]) || l[9] == '0' || (n > 12 && l[12] != ' ')) {
            out->reason = "bad status line";
            return PTB_ECORRUPT;
        }
        out->response = true;
        out->version_minor = (uint8_t)ver;
        out->status = (uint16_t)((l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0'));
        if (n > 13)
            return http_redacted(out->reason_phrase, sizeof out->reason_phrase, l + 13, n - 13,
                                 NULL);
        return 0;
    }
    size_t m = 0;
    while (m < n && http_tchar((uint8_t)l[m]))
        m++;
    if (m == 0 || m >= sizeof out->method || m == n || l[m] != ' ')
        return PTB_ENOTFOUND;
    const char *t = l + m + 1;
    const char *sp = memchr(t, ' ', n - m - 1);
    if (!sp || sp == t || http_version(sp + 1, (size_t)(l + n - sp - 1)) < 0 ||
        (size_t)(l + n - sp - 1) != 8)
        return PTB_ENOTFOUND;
    if (redact_provider(l, m))
        return PTB_ENOTFOUND; /* a key, not a method: keep it out of the output */
    memcpy(out->method, l, m);
    out->method[m] = '\0';
    out->version_minor = (uint8_t)(sp[8] - '0');
    int rc = http_redacted(out->path, sizeof out->path, t, (size_t)(sp - t), &out->path_len);
    out->path_cut = out->path_len >= sizeof out->path;
    return rc;
}

int net_http_parse(const uint8_t *data, size_t len, net_http *out)
{
    if (!out || (!data && len))
        return PTB_EINVAL;
    memset(out, 0, sizeof *out);
    const char *p = (const char *)data;
    size_t lim = len < NET_HTTP_HEAD_MAX ? len : NET_HTTP_HEAD_MAX;
    size_t off = 0;
    for (size_t line = 0;; line++) {
        size_t room = lim - off < NET_HTTP_LINE_MAX ? lim - off : NET_HTTP_LINE_MAX;
        const char *lf = room ? memchr(p + off, '\n', room) : NULL;
        if (!lf) {
            if (line == 0 && !http_prefix_ok(p, room)) {
                out->reason = "not an HTTP/1.x start line";
                return PTB_ENOTFOUND;
            }
            if (room == NET_HTTP_LINE_MAX) {
                out->reason = "line over NET_HTTP_LINE_MAX";
                return PTB_ETOOBIG;
            }
            if (lim < len) {
                out->reason = "head over NET_HTTP_HEAD_MAX";
                return PTB_ETOOBIG;
            }
            out->need_more = true;
            out->reason = "bytes end before the blank line";
            return PTB_ENOTFOUND;
        }
        size_t n = (size_t)(lf - (p + off));
        const char *l = p + off;
        off += n + 1;
        if (n && l[n - 1] == '\r')
            n--;
        int rc;
        if (line == 0) {
            rc = http_start(out, l, n);
            if (rc == PTB_ENOTFOUND)
                out->reason = "not an HTTP/1.x start line";
            if (rc)
                return rc;
            continue;
        }
        if (n == 0)
            break;
        if (l[0] == ' ' || l[0] == '\t')
            continue; /* obs-fold: not kept */
        if (out->n_headers >= NET_HTTP_HEADERS_MAX) {
            out->headers_dropped++;
            continue;
        }
        out->n_headers++;
        if ((rc = http_header(out, l, n)))
            return rc;
    }
    out->head_len = off;
    if (out->headers_dropped) {
        out->reason = "headers over NET_HTTP_HEADERS_MAX";
        return PTB_ETOOBIG;
    }
    return 0;
}
