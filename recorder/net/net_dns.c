/* DNS messages (RFC 1035 4.1), for net.dns events. Layout, all numbers big-endian:
 *
 *   header   id:16 flags:16 qdcount:16 ancount:16 nscount:16 arcount:16     (12 bytes)
 *   question name qtype:16 qclass:16
 *   answer   name type:16 class:16 ttl:32 rdlength:16 rdata[rdlength]
 *   name     labels: len:8 (1..63) bytes[len] ... 0, or a pointer 11xxxxxx xxxxxxxx (offset
 *            from the start of the message) that ends the name with the labels found there.
 *
 * Pointers are where parsers get hurt: a pointer to itself, a cycle through two names, or a
 * pointer past the end. Each jump here must land strictly before the start of the labels that
 * held it, so offsets fall with every jump and a chain cannot cycle; NET_DNS_MAX_JUMPS caps the
 * work further. Legitimate compressers only point backwards, so nothing real is lost. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "net_app.h"
#include "ptb_error.h"

static uint16_t dns_rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t dns_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A parse position: the message and how far the reading got. The error fields are set once,
 * by the first fault. */
typedef struct dns_rd {
    const uint8_t *m;
    size_t len;
    const char *reason;
    bool truncated;
} dns_rd;

static int dns_fail(dns_rd *r, const char *reason, bool truncated)
{
    if (!r->reason) {
        r->reason = reason;
        r->truncated = truncated;
    }
    return PTB_ECORRUPT;
}

/* Read the name at *off into out (cap >= NET_DNS_NAME_MAX) and move *off past it (past the
 * first pointer when there is one). */
static int dns_name(dns_rd *r, size_t *off, char *out)
{
    size_t pos = *off, seg = *off, end = 0, wire = 0, n = 0;
    unsigned jumps = 0;
    for (;;) {
        if (pos >= r->len)
            return dns_fail(r, "name runs past the end of the message", true);
        uint8_t c = r->m[pos];
        if ((c & 0xC0) == 0xC0) {
            if (pos + 1 >= r->len)
                return dns_fail(r, "compression pointer cut short", true);
            size_t to = (size_t)(c & 0x3F) << 8 | r->m[pos + 1];
            if (to >= pos)
                return dns_fail(r, "compression pointer points forward", false);
            if (to >= seg)
                return dns_fail(r, "compression pointer loop", false);
            if (++jumps > NET_DNS_MAX_JUMPS)
                return dns_fail(r, "too many compression pointers", false);
            if (!end)
                end = pos + 2;
            pos = seg = to;
            continue;
        }
        if (c & 0xC0)
            return dns_fail(r, "unknown label type", false);
        wire += 1u + c;
        if (wire > 255)
            return dns_fail(r, "name longer than 255 bytes", false);
        if (c == 0) {
            pos++;
            break;
        }
        if (c > r->len - pos - 1)
            return dns_fail(r, "label runs past the end of the message", true);
        if (n)
            out[n++] = '.';
        for (size_t i = 0; i < c; i++) {
            uint8_t b = r->m[pos + 1 + i];
            out[n++] = (b < 0x20 || b > 0x7E || b == '.') ? '?' : (char)b;
        }
        pos += 1u + c;
    }
    /* wire <= 255 bounds n: each label adds at most its length plus one dot */
    if (n == 0)
        out[n++] = '.';
    out[n] = '\0';
    *off = end ? end : pos;
    return 0;
}

static void dns_text(char *out, size_t cap, const uint8_t *p, size_t n)
{
    size_t k = n < cap - 1 ? n : cap - 1;
    for (size_t i = 0; i < k; i++)
        out[i] = (p[i] < 0x20 || p[i] > 0x7E) ? '?' : (char)p[i];
    out[k] = '\0';
}

/* Decode the rdata at [off, off + rdlen) of an answer of type `type` into a->data. */
static int dns_rdata(dns_rd *r, uint16_t type, size_t off, size_t rdlen, net_dns_answer *a)
{
    const uint8_t *p = r->m + off;
    size_t pos = off;
    switch (type) {
    case 1: /* A */
        if (rdlen != 4)
            return dns_fail(r, "A record rdata is not 4 bytes", false);
        inet_ntop(AF_INET, p, a->data, sizeof a->data);
        return 0;
    case 28: /* AAAA */
        if (rdlen != 16)
            return dns_fail(r, "AAAA record rdata is not 16 bytes", false);
        inet_ntop(AF_INET6, p, a->data, sizeof a->data);
        return 0;
    case 2:  /* NS */
    case 5:  /* CNAME */
    case 12: /* PTR */
        if (dns_name(r, &pos, a->data))
            return PTB_ECORRUPT;
        break;
    case 15: { /* MX: preference:16 name */
        char name[NET_DNS_NAME_MAX];
        if (rdlen < 3)
            return dns_fail(r, "MX rdata too short", false);
        pos += 2;
        if (dns_name(r, &pos, name))
            return PTB_ECORRUPT;
        snprintf(a->data, sizeof a->data, "%u %.*s", dns_rd16(p), NET_DNS_DATA_MAX - 7, name);
        break;
    }
    case 16: /* TXT: one or more <len:8 bytes>; the first is kept */
        if (rdlen < 1 || (size_t)p[0] + 1 > rdlen)
            return dns_fail(r, "TXT string runs past its rdata", false);
        dns_text(a->data, sizeof a->data, p + 1, p[0]);
        return 0;
    default: return 0;
    }
    if (pos != off + rdlen)
        return dns_fail(r, "name does not fill its rdata", false);
    return 0;
}

/* One resource record of the answer section at *off; kept in out->an when there is room. */
static int dns_answer(dns_rd *r, size_t *off, net_dns *out)
{
    net_dns_answer tmp, *a = out->n_an < NET_DNS_MAX_ANSWERS ? &out->an[out->n_an] : &tmp;
    memset(a, 0, sizeof *a);
    if (dns_name(r, off, a->name))
        return PTB_ECORRUPT;
    if (r->len - *off < 10)
        return dns_fail(r, "resource record header cut short", true);
    const uint8_t *p = r->m + *off;
    a->type = dns_rd16(p);
    a->rclass = dns_rd16(p + 2);
    a->ttl = dns_rd32(p + 4);
    size_t rdlen = dns_rd16(p + 8);
    *off += 10;
    if (rdlen > r->len - *off)
        return dns_fail(r, "rdata runs past the end of the message", true);
    /* A cut rdata must not read the next record; parse it against a window ending there. */
    dns_rd w = *r;
    w.len = *off + rdlen;
    int rc = dns_rdata(&w, a->type, *off, rdlen, a);
    if (rc) {
        a->data[0] = '\0';
        return dns_fail(r, w.reason, false);
    }
    *off += rdlen;
    if (a == &tmp)
        out->an_dropped++;
    else
        out->n_an++;
    return 0;
}

int net_dns_parse(const uint8_t *msg, size_t len, bool tcp, net_dns *out)
{
    if (!out || (!msg && len))
        return PTB_EINVAL;
    memset(out, 0, sizeof *out);
    dns_rd r = {.m = msg, .len = len};
    size_t base = 0;
    if (tcp) {
        if (len < 2) {
            out->truncated = true;
            out->reason = "TCP length prefix cut short";
            return PTB_ECORRUPT;
        }
        size_t mlen = dns_rd16(msg);
        base = 2;
        r.m = msg + 2;
        r.len = len - 2;
        if (mlen < 12)
            dns_fail(&r, "TCP length prefix shorter than a header", false);
        if (mlen < r.len)
            r.len = mlen; /* the rest is the next message */
        else if (mlen > r.len)
            dns_fail(&r, "TCP message longer than the bytes read", true);
    }
    int rc = 0;
    if (r.len < 12) {
        rc = dns_fail(&r, "header cut short", true);
        goto done;
    }
    out->id = dns_rd16(r.m);
    out->flags = dns_rd16(r.m + 2);
    out->qr = out->flags >> 15;
    out->opcode = (out->flags >> 11) & 0xF;
    out->tc = (out->flags >> 9) & 1;
    out->rcode = out->flags & 0xF;
    out->qdcount = dns_rd16(r.m + 4);
    out->ancount = dns_rd16(r.m + 6);
    out->nscount = dns_rd16(r.m + 8);
    out->arcount = dns_rd16(r.m + 10);
    size_t off = 12;
    for (unsigned i = 0; i < out->qdcount; i++) {
        net_dns_question tmp, *q = out->n_q < NET_DNS_MAX_QUESTIONS ? &out->q[out->n_q] : &tmp;
        memset(q, 0, sizeof *q);
        if ((rc = dns_name(&r, &off, q->name)))
            goto done;
        if (r.len - off < 4) {
            rc = dns_fail(&r, "question cut short", true);
            goto done;
        }
        q->qtype = dns_rd16(r.m + off);
        q->qclass = dns_rd16(r.m + off + 2);
        off += 4;
        if (q == &tmp)
            out->q_dropped++;
        else
            out->n_q++;
    }
    for (unsigned i = 0; i < out->ancount; i++)
        if ((rc = dns_answer(&r, &off, out)))
            goto done;
    /* Authority and additional records are not read: the message is what was given (UDP) or
     * what the prefix said (TCP). */
done:
    out->consumed = base + r.len;
    out->reason = r.reason;
    out->truncated = r.truncated;
    if (!rc && r.reason)
        rc = PTB_ECORRUPT; /* a TCP message cut short that still parsed as far as it went */
    return rc;
}

const char *net_dns_type_str(uint16_t type, char *buf, size_t cap)
{
    static const struct {
        uint16_t type;
        const char *name;
    } names[] = {
        {1, "A"},     {2, "NS"},     {5, "CNAME"},  {6, "SOA"},    {12, "PTR"},    {13, "HINFO"},
        {15, "MX"},   {16, "TXT"},   {28, "AAAA"},  {33, "SRV"},   {35, "NAPTR"},  {39, "DNAME"},
        {41, "OPT"},  {43, "DS"},    {46, "RRSIG"}, {47, "NSEC"},  {48, "DNSKEY"}, {50, "NSEC3"},
        {64, "SVCB"}, {65, "HTTPS"}, {99, "SPF"},   {252, "AXFR"}, {255, "ANY"},   {257, "CAA"},
    };
    if (!buf || !cap)
        return buf;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].type == type) {
            snprintf(buf, cap, "%s", names[i].name);
            return buf;
        }
    snprintf(buf, cap, "TYPE%u", type);
    return buf;
}
