/* Internal to event_json.c: the text writer of the JSON form (a growable buffer with JSON string
 * escaping, integers, doubles, hex, base64) and the strict hex/base64 decoders. Not part of the
 * store's public API. */
#ifndef PTB_EVENT_JSON_TEXT_H
#define PTB_EVENT_JSON_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest encoded line (the store caps an event at a few MiB; escaping grows it at most 6x). */
#define EVENT_JSON_LINE_MAX ((size_t)256 << 20)

typedef struct event_json_buf {
    char *p; /* owned; handed to the caller by event_json_buf_finish */
    size_t len, cap;
    int err; /* first error (PTB_ENOMEM, PTB_ETOOBIG); later appends are no-ops */
} event_json_buf;

void event_json_buf_init(event_json_buf *b, size_t cap);
/* Make room for n more bytes; false (and b->err set) when it cannot. */
bool event_json_buf_reserve(event_json_buf *b, size_t n);

static inline void event_json_buf_putc(event_json_buf *b, char c)
{
    if (b->len + 1 < b->cap || event_json_buf_reserve(b, 1))
        b->p[b->len++] = c;
}

void event_json_buf_puts(event_json_buf *b, const char *s);
/* A JSON string: escaped, invalid UTF-8 bytes replaced by U+FFFD. */
void event_json_buf_string(event_json_buf *b, const char *s, size_t n);
/* `"key":`, preceded by ',' unless *first (which it clears). key must need no escaping. */
void event_json_buf_key(event_json_buf *b, const char *key, bool *first);
void event_json_buf_i64(event_json_buf *b, int64_t v);
void event_json_buf_u64(event_json_buf *b, uint64_t v);
/* Shortest digits that read back to the same double (or float, when is_float); non-finite as
 * the strings "NaN", "Infinity", "-Infinity". Always looks like a real ("1.0"). */
void event_json_buf_double(event_json_buf *b, double v, bool is_float);
void event_json_buf_hex(event_json_buf *b, const uint8_t *data, size_t n);
void event_json_buf_base64(event_json_buf *b, const uint8_t *data, size_t n);
/* NUL-terminate and hand over: *out malloc'd (caller frees), *len (may be NULL) its length.
 * Returns 0 or the first error (then *out is NULL and the buffer freed). */
int event_json_buf_finish(event_json_buf *b, char **out, size_t *len);

/* Strict decoders: hex digits (either case) in pairs; standard base64 with padding, canonical
 * (no stray characters, no non-zero unused bits). *out malloc'd (NULL for empty input), caller
 * frees. Return 0, PTB_EPARSE, or PTB_ENOMEM. */
int event_json_hex_decode(const char *s, size_t n, uint8_t **out, size_t *len);
int event_json_base64_decode(const char *s, size_t n, uint8_t **out, size_t *len);

/* A decimal string of n bytes (digits, a leading '-' when is_signed) as int64/uint64 (*s and *u
 * both set). Returns 0, PTB_EPARSE (not a decimal number), or PTB_ETOOBIG (out of range). */
int event_json_parse_decimal(const char *str, size_t n, bool is_signed, int64_t *s, uint64_t *u);

#endif
