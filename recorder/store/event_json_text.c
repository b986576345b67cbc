/* Text writer and strict hex/base64 decoders of the JSON form. See event_json_text.h. */
#include "event_json_text.h"
#include "store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptb_error.h"

void event_json_buf_init(event_json_buf *b, size_t cap)
{
    b->len = 0;
    b->err = 0;
    b->p = malloc(cap);
    b->cap = b->p ? cap : 0;
    if (!b->p)
        b->err = PTB_ENOMEM;
}

bool event_json_buf_reserve(event_json_buf *b, size_t n)
{
    if (b->err)
        return false;
    if (b->len + n < b->cap)
        return true;
    if (n > EVENT_JSON_LINE_MAX || b->len + n >= EVENT_JSON_LINE_MAX) {
        b->err = PTB_ETOOBIG;
        return false;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap <= b->len + n)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->err = PTB_ENOMEM;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

static void ej_put(event_json_buf *b, const void *s, size_t n)
{
    if (event_json_buf_reserve(b, n)) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
    }
}

void event_json_buf_puts(event_json_buf *b, const char *s)
{
    ej_put(b, s, strlen(s));
}

void event_json_buf_key(event_json_buf *b, const char *key, bool *first)
{
    if (!*first)
        event_json_buf_putc(b, ',');
    *first = false;
    event_json_buf_putc(b, '"');
    event_json_buf_puts(b, key);
    ej_put(b, "\":", 2);
}

size_t store_utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

void event_json_buf_string(event_json_buf *b, const char *str, size_t n)
{
    static const char hexd[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    event_json_buf_putc(b, '"');
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' && s[run] != '\\')
            run++;
        if (run > i) {
            ej_put(b, s + i, run - i);
            i = run;
            continue;
        }
        unsigned char c = s[i];
        if (c >= 0x80) {
            size_t l = store_utf8_len(s + i, n - i);
            if (l) {
                ej_put(b, s + i, l);
                i += l;
            } else {
                ej_put(b, "\xef\xbf\xbd", 3); /* U+FFFD */
                i++;
            }
            continue;
        }
        char esc[6] = {'\\', 0};
        size_t el = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hexd[c >> 4];
            esc[5] = hexd[c & 15];
            el = 6;
        }
        ej_put(b, esc, el);
        i++;
    }
    event_json_buf_putc(b, '"');
}

void event_json_buf_u64(event_json_buf *b, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    ej_put(b, tmp + i, sizeof tmp - i);
}

void event_json_buf_i64(event_json_buf *b, int64_t v)
{
    if (v < 0) {
        event_json_buf_putc(b, '-');
        event_json_buf_u64(b, 0 - (uint64_t)v);
    } else {
        event_json_buf_u64(b, (uint64_t)v);
    }
}

void event_json_buf_double(event_json_buf *b, double v, bool is_float)
{
    if (isnan(v)) {
        event_json_buf_puts(b, "\"NaN\"");
        return;
    }
    if (isinf(v)) {
        event_json_buf_puts(b, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        return;
    }
    char tmp[40];
    int lo = is_float ? 6 : 15, hi = is_float ? 9 : 17;
    for (int prec = lo; prec <= hi; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        double back = strtod(tmp, NULL);
        if (is_float ? (float)back == (float)v : back == v)
            break;
    }
    event_json_buf_puts(b, tmp);
    if (!strpbrk(tmp, ".e"))
        ej_put(b, ".0", 2);
}

void event_json_buf_hex(event_json_buf *b, const uint8_t *data, size_t n)
{
    static const char hexd[] = "0123456789abcdef";
    if (n > EVENT_JSON_LINE_MAX / 2 || !event_json_buf_reserve(b, 2 * n + 2))
        return;
    char *o = b->p + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        *o++ = hexd[data[i] >> 4];
        *o++ = hexd[data[i] & 15];
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
}

static const char ej_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void event_json_buf_base64(event_json_buf *b, const uint8_t *d, size_t n)
{
    if (n > EVENT_JSON_LINE_MAX / 2 || !event_json_buf_reserve(b, (n + 2) / 3 * 4 + 2))
        return;
    char *o = b->p + b->len;
    *o++ = '"';
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        *o++ = ej_b64[v >> 18];
        *o++ = ej_b64[(v >> 12) & 63];
        *o++ = ej_b64[(v >> 6) & 63];
        *o++ = ej_b64[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0);
        *o++ = ej_b64[v >> 18];
        *o++ = ej_b64[(v >> 12) & 63];
        *o++ = i + 1 < n ? ej_b64[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
}

int event_json_buf_finish(event_json_buf *b, char **out, size_t *len)
{
    event_json_buf_putc(b, 0);
    if (b->err) {
        free(b->p);
        *out = NULL;
        return b->err;
    }
    *out = b->p;
    if (len)
        *len = b->len - 1;
    return 0;
}

static int ej_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int event_json_hex_decode(const char *s, size_t n, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (n % 2)
        return PTB_EPARSE;
    if (n == 0)
        return 0;
    uint8_t *d = malloc(n / 2);
    if (!d)
        return PTB_ENOMEM;
    for (size_t i = 0; i < n; i += 2) {
        int hi = ej_hexval(s[i]), lo = ej_hexval(s[i + 1]);
        if (hi < 0 || lo < 0) {
            free(d);
            return PTB_EPARSE;
        }
        d[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    *out = d;
    *len = n / 2;
    return 0;
}

static int ej_b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int event_json_base64_decode(const char *s, size_t n, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (n % 4)
        return PTB_EPARSE;
    if (n == 0)
        return 0;
    size_t pad = s[n - 1] == '=' ? (s[n - 2] == '=' ? 2 : 1) : 0;
    uint8_t *d = malloc(n / 4 * 3);
    if (!d)
        return PTB_ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        bool last = i + 4 == n;
        size_t valid = last ? 4 - pad : 4;
        uint32_t v = 0;
        for (size_t k = 0; k < 4; k++) {
            int x = k < valid ? ej_b64val(s[i + k]) : 0;
            if (x < 0 || (k >= valid && s[i + k] != '=')) {
                free(d);
                return PTB_EPARSE;
            }
            v = v << 6 | (uint32_t)x;
        }
        /* canonical: the bits a padded quantum does not use are zero */
        if ((valid == 2 && (v & 0xffff)) || (valid == 3 && (v & 0xff))) {
            free(d);
            return PTB_EPARSE;
        }
        d[o++] = (uint8_t)(v >> 16);
        if (valid > 2)
            d[o++] = (uint8_t)(v >> 8);
        if (valid > 3)
            d[o++] = (uint8_t)v;
    }
    *out = d;
    *len = o;
    return 0;
}

int event_json_parse_decimal(const char *str, size_t n, bool is_signed, int64_t *s, uint64_t *u)
{
    bool neg = is_signed && n > 0 && str[0] == '-';
    size_t i = neg ? 1 : 0;
    if (n == i || n - i > 20)
        return n - i > 20 && n - i < 64 ? PTB_ETOOBIG : PTB_EPARSE;
    uint64_t acc = 0;
    bool over = false;
    for (; i < n; i++) {
        if (str[i] < '0' || str[i] > '9')
            return PTB_EPARSE;
        unsigned dgt = (unsigned)(str[i] - '0');
        if (acc > (UINT64_MAX - dgt) / 10)
            over = true;
        acc = acc * 10 + dgt;
    }
    if (over || (is_signed && acc > (uint64_t)INT64_MAX + (neg ? 1 : 0)))
        return PTB_ETOOBIG;
    if (is_signed) {
        *s = neg ? (int64_t)(0 - acc) : (int64_t)acc;
        *u = (uint64_t)*s;
    } else {
        *u = acc;
        *s = (int64_t)acc;
    }
    return 0;
}
