/* ptb audit's test-set leakage detector, the scan: the normalisation (one tokenizer, Unicode
 * folding, JSON string escapes undone; lk_tokenize) and the scan of a unit's bytes (leak_scan and the
 * scanner's bookkeeping; a binary's printable runs, base64 runs, a safetensors file's header).
 * leak_scan is the loop the CUDA version (cuda/audit_leak_scan.cu) mirrors, one thread per
 * position. A large text goes in pieces (audit_leak_piece.c: threads, the GPU) whose words and
 * hits come back here in order (lk_stream_feed, chunk_hits), so that the bookkeeping sees what one
 * pass gives. The design (Normalisation, Template, Matching, What is scanned) is in audit_leak.c's
 * top comment; audit_leak.c gives this file a test split and the units to scan, through
 * audit_leak_int.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_leak_cuda.h"
#include "audit_leak_int.h"
#include "ptb_error.h"

#define LK_MARGIN 48        /* words kept around a chunk for adjacency checks (>= 2N + W) */
#define LK_CHUNK (1u << 16) /* words scanned at a time */

static_assert(LK_MARGIN >= 2 * LK_N + LK_W, "adjacency checks look this far");

/* ------------------------------------------------------------------ small helpers */

int lk_grow(void *pp, size_t *cap, size_t n, size_t sz)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? 2 * *cap : 16;
    void *np = realloc(*(void **)pp, nc * sz);
    if (!np)
        return PTB_ENOMEM;
    *(void **)pp = np;
    *cap = nc;
    return 0;
}

int lk_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------------ normalisation */

enum { CP_SEP = -1, CP_IGNORE = -2, CP_SINGLE = 1 << 30 };

/* A code point as a word holds it (folded), or CP_SEP, or CP_IGNORE; CP_SINGLE or-ed in for a
 * character that is a word of its own. */
static int32_t cp_fold(uint32_t cp)
{
    if (cp < 0x80) {
        if (cp >= 'A' && cp <= 'Z')
            return (int32_t)cp + 32;
        if ((cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9'))
            return (int32_t)cp;
        return CP_SEP;
    }
    if (cp == 0xAD || (cp >= 0x200B && cp <= 0x200D) || cp == 0x2060 || cp == 0xFEFF)
        return CP_IGNORE;
    if (cp >= 0xFF01 && cp <= 0xFF5E)
        return cp_fold(cp - 0xFEE0);
    if (cp < 0xC0 || cp == 0xD7 || cp == 0xF7)
        return CP_SEP; /* C1 controls, NBSP, Latin-1 punctuation and signs, x and / */
    if (cp <= 0xDE)
        return (int32_t)cp + 0x20;
    if (cp >= 0x391 && cp <= 0x3A9 && cp != 0x3A2)
        return (int32_t)cp + 0x20;
    if (cp >= 0x410 && cp <= 0x42F)
        return (int32_t)cp + 0x20;
    if (cp >= 0x400 && cp <= 0x40F)
        return (int32_t)cp + 0x50;
    if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x2BFF) || (cp >= 0x2E00 && cp <= 0x2E7F) ||
        (cp >= 0x3000 && cp <= 0x303F) || (cp >= 0xFE30 && cp <= 0xFE6F) ||
        (cp >= 0xFF5F && cp <= 0xFF65) || (cp >= 0xD800 && cp <= 0xDFFF) ||
        (cp >= 0x1F000 && cp <= 0x1FAFF))
        return CP_SEP; /* spaces, punctuation, symbols, arrows, math, shapes, emoji */
    if ((cp >= 0x3040 && cp <= 0x30FF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
        (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xF900 && cp <= 0xFAFF) ||
        (cp >= 0x20000 && cp <= 0x2FFFF))
        return (int32_t)cp | CP_SINGLE;
    return (int32_t)cp;
}

static inline size_t utf8_decode(const uint8_t *p, size_t n, uint32_t *cp)
{
    uint8_t c = p[0];
    size_t len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, v = c & 0x1Fu, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, v = c & 0x0Fu, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, v = c & 0x07u, min = 0x10000;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (p[i] & 0x3Fu);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

static bool hex4(const uint8_t *p, uint32_t *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int d = isdigit(p[i])                              ? p[i] - '0'
                : (p[i] | 32) >= 'a' && (p[i] | 32) <= 'f' ? (p[i] | 32) - 'a' + 10
                                                           : -1;
        if (d < 0)
            return false;
        *v = *v << 4 | (uint32_t)d;
    }
    return true;
}

static void scan_chunk(struct lk_scan *sc, bool final);

static inline void tok_push(tok_out *o, uint64_t t)
{
    if (o->rc || (o->tmpl && lk_tmpl_has(o, t)))
        return;
    if (o->n == o->cap) {
        if (o->sc)
            scan_chunk(o->sc, false);
        else if ((o->rc = lk_grow(&o->v, &o->cap, o->n, sizeof *o->v)))
            return;
    }
    o->v[o->n++] = t;
}

typedef struct word {
    uint64_t h;
    size_t len;
    bool num, last_digit;
} word;

/* Add a folded code point to the word: FNV-1a over its UTF-8 bytes. */
static inline void word_add(word *w, uint32_t cp)
{
    bool digit = cp - '0' < 10u;
    if (!w->len)
        w->h = 0xcbf29ce484222325ull, w->num = digit;
    if (cp < 0x80)
        w->h = (w->h ^ cp) * LK_PRIME;
    else {
        uint8_t b[4];
        size_t k = cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        b[0] = (uint8_t)(k == 2 ? 0xC0 | cp >> 6 : k == 3 ? 0xE0 | cp >> 12 : 0xF0 | cp >> 18);
        for (size_t i = 1; i < k; i++)
            b[i] = (uint8_t)(0x80 | (cp >> (6 * (k - 1 - i)) & 0x3F));
        for (size_t i = 0; i < k; i++)
            w->h = (w->h ^ b[i]) * LK_PRIME;
    }
    w->len++;
    w->last_digit = digit;
}

/* The word's token: its hash, low bit = starts with a digit; never 0 or 1. */
static inline __attribute__((always_inline)) void word_end(word *w, tok_out *o)
{
    if (!w->len)
        return;
    uint64_t t = (lk_mix64(w->h) & ~1ull) | (w->num ? 1u : 0u);
    if (t >> 1 == 0)
        t |= 2;
    tok_push(o, t);
    w->len = 0;
}

/* An ASCII letter or digit: c | 0x20 is its folded form. */
static inline bool ascii_word(uint8_t c)
{
    return (unsigned)c - '0' < 10u || (unsigned)(c | 0x20) - 'a' < 26u;
}

/* Words of p[0..n) into o (the normalisation above). The common case first: a run of ASCII
 * letters and digits hashed in a tight loop, an ASCII separator; the rest (escapes, '.', UTF-8)
 * one code point at a time. */
void lk_tokenize(tok_out *o, const uint8_t *p, size_t n)
{
    word w = {0};
    size_t i = 0;
    while (i < n && !o->rc) {
        uint8_t c = p[i];
        uint32_t cp;
        size_t adv = 1;
        if (ascii_word(c)) {
            if (!w.len)
                w.h = 0xcbf29ce484222325ull, w.num = (unsigned)c - '0' < 10u;
            uint64_t h = w.h;
            size_t j = i;
            do
                h = (h ^ (c | 0x20u)) * LK_PRIME;
            while (++j < n && ascii_word(c = p[j]));
            w.h = h;
            w.len += j - i;
            w.last_digit = (unsigned)p[j - 1] - '0' < 10u;
            i = j;
            continue;
        }
        if (c < 0x80) {
            if (c != '\\' && c != '.') { /* a separator */
                word_end(&w, o);
                i++;
                continue;
            }
            if (c == '\\') {
                size_t j = i;
                while (j < n && p[j] == '\\')
                    j++;
                if (j < n &&
                    (p[j] == 'n' || p[j] == 'r' || p[j] == 't' || p[j] == 'b' || p[j] == 'f')) {
                    word_end(&w, o);
                    i = j + 1;
                    continue;
                }
                if (j + 5 <= n && p[j] == 'u' && hex4(p + j + 1, &cp)) {
                    adv = j + 5 - i;
                    size_t k = j + 5;
                    while (k < n && p[k] == '\\')
                        k++;
                    uint32_t lo;
                    if (cp >= 0xD800 && cp <= 0xDBFF && k > j + 5 && k + 5 <= n && p[k] == 'u' &&
                        hex4(p + k + 1, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        adv = k + 5 - i;
                    }
                } else {
                    word_end(&w, o);
                    i = j;
                    continue;
                }
            } else if (c == '.' && w.len && w.last_digit && i + 1 < n && isdigit(p[i + 1])) {
                word_add(&w, '.');
                i++;
                continue;
            } else
                cp = c;
        } else if (!(adv = utf8_decode(p + i, n - i, &cp))) {
            word_end(&w, o);
            i++;
            continue;
        }
        i += adv;
        int32_t f = cp_fold(cp);
        if (f == CP_IGNORE)
            continue;
        if (f == CP_SEP) {
            word_end(&w, o);
            continue;
        }
        if (f & CP_SINGLE) {
            word_end(&w, o);
            word_add(&w, (uint32_t)(f & ~CP_SINGLE));
            word_end(&w, o);
            continue;
        }
        word_add(&w, (uint32_t)f);
    }
    word_end(&w, o);
}

/* ------------------------------------------------------------------ the index
 * (built by audit_leak_index.c) */

static inline int64_t index_find(const lk_index *ix, uint64_t key)
{
    uint64_t bits = lk_bloom_bits(key);
    if ((ix->bloom[lk_bloom_word(ix, key)] & bits) != bits)
        return -1;
    for (size_t s = lk_mix64(key) & ix->kmask; ix->key[s]; s = (s + 1) & ix->kmask)
        if (ix->key[s] == key)
            return (int64_t)s;
    return -1;
}

/* ------------------------------------------------------------------ the scan */

/* The scan: for each position i in [from, to) of tok[0..n), the keys of the word sequences of
 * length 1..N that start at i and are in the index. Each position is independent of the others
 * (a GPU kernel gives each one a thread and compacts the hits); hits come out in position order,
 * at most N per position. */
static size_t leak_scan(const lk_index *ix, const uint64_t *tok, size_t n, size_t from, size_t to,
                        lk_hit *out)
{
    size_t nh = 0, ltop = 0;
    for (size_t l = 1; l <= LK_N; l++)
        if (ix->len_mask & (1u << l))
            ltop = l;
    for (size_t i = from; i < to; i++) {
        uint64_t h = 0;
        size_t lmax = n - i < ltop ? n - i : ltop;
        for (size_t l = 1; l <= lmax; l++) {
            h = h * LK_PRIME + tok[i + l - 1];
            if (!(ix->len_mask & (1u << l)))
                continue;
            int64_t s = index_find(ix, lk_seq_key(h, l));
            if (s >= 0)
                out[nh++] = (lk_hit){(uint32_t)i, (uint32_t)s};
        }
    }
    return nh;
}

int lk_scan_piece(const lk_index *ix, const uint64_t *tok, size_t n, lk_hit **hit, size_t *nh,
                  size_t *cap)
{
    lk_hit buf[LK_N * 64];
    size_t cov = n >= LK_N ? n - LK_N + 1 : 0;
    for (size_t i = 0; i < cov; i += 64) {
        size_t k = leak_scan(ix, tok, n, i, i + 64 < cov ? i + 64 : cov, buf);
        for (size_t j = 0; j < k; j++) {
            if (lk_grow(hit, cap, *nh, sizeof **hit))
                return PTB_ENOMEM;
            (*hit)[(*nh)++] = buf[j];
        }
    }
    return 0;
}

/* The hits of the chunk's positions [from, to): from the precomputed pieces where they cover a
 * position, else leak_scan's. */
static size_t chunk_hits(lk_scan *sc, size_t from, size_t to, lk_hit *out)
{
    if (!sc->pre)
        return leak_scan(sc->ix, sc->out.v, sc->out.n, from, to, out);
    size_t nh = 0;
    for (size_t x = from; x < to;) {
        uint64_t g = sc->base + x;
        while (sc->pre_at < sc->npre && sc->pre[sc->pre_at].cov <= g)
            sc->pre_at++;
        lk_pre *P = sc->pre_at < sc->npre ? (lk_pre *)&sc->pre[sc->pre_at] : NULL;
        if (P && P->g0 <= g) {
            size_t y = P->cov - sc->base < to ? (size_t)(P->cov - sc->base) : to;
            for (; P->at < P->nh && P->g0 + P->hit[P->at].pos < sc->base + y; P->at++)
                if (P->g0 + P->hit[P->at].pos >= g)
                    out[nh++] = (lk_hit){(uint32_t)(P->g0 + P->hit[P->at].pos - sc->base),
                                         P->hit[P->at].slot};
            x = y;
        } else {
            size_t y = P && P->g0 - sc->base < to ? (size_t)(P->g0 - sc->base) : to;
            nh += leak_scan(sc->ix, sc->out.v, sc->out.n, x, y, out + nh);
            x = y;
        }
    }
    return nh;
}

enum { IT_ADJ = 1 };

int lk_scanner_init(lk_scan *sc, const lk_index *ix)
{
    memset(sc, 0, sizeof *sc);
    sc->ix = ix;
    size_t np = 2 * ix->n_items;
    sc->win_ep = calloc(ix->nwin + 1, sizeof *sc->win_ep);
    sc->part_ep = calloc(np + 1, sizeof *sc->part_ep);
    sc->part_hits = calloc(np + 1, sizeof *sc->part_hits);
    sc->item_ep = calloc(ix->n_items + 1, sizeof *sc->item_ep);
    sc->item_fl = calloc(ix->n_items + 1, 1);
    sc->out.cap = LK_CHUNK + 2 * LK_MARGIN;
    sc->out.v = malloc(sc->out.cap * sizeof *sc->out.v);
    sc->out.sc = sc;
    sc->out.tmpl = ix->tmpl;
    sc->out.tmpl_mask = ix->tmpl_mask;
    sc->hits = malloc(LK_N * sc->out.cap * sizeof *sc->hits);
    if (!sc->win_ep || !sc->part_ep || !sc->part_hits || !sc->item_ep || !sc->item_fl ||
        !sc->out.v || !sc->hits)
        return PTB_ENOMEM;
    return 0;
}

void lk_scanner_free(lk_scan *sc)
{
    free(sc->win_ep), free(sc->part_ep), free(sc->part_hits), free(sc->item_ep), free(sc->item_fl),
        free(sc->touched), free(sc->out.v), free(sc->hits);
    lk_piecer_free(sc->pc);
    if (sc->gpu_own)
        audit_leak_cuda_free(sc->gpu);
}

static void touch_item(lk_scan *sc, uint32_t item)
{
    if (sc->item_ep[item] == sc->epoch)
        return;
    sc->item_ep[item] = sc->epoch;
    sc->item_fl[item] = 0;
    if (lk_grow(&sc->touched, &sc->cap_touched, sc->n_touched, sizeof *sc->touched)) {
        sc->out.rc = PTB_ENOMEM;
        return;
    }
    sc->touched[sc->n_touched++] = item;
}

static bool eq_words(const uint64_t *a, const uint64_t *b, size_t n)
{
    return memcmp(a, b, n * sizeof *a) == 0;
}

/* Words a[0..la) start within W non-numeric words after position e of t[0..n): the gap, or -1. */
static int follows(const uint64_t *t, size_t n, size_t e, const uint64_t *a, size_t la)
{
    for (size_t g = 0; g <= LK_W && e + g + la <= n; g++) {
        if (g && LK_TOK_NUM(t[e + g - 1]))
            return -1;
        if (eq_words(t + e + g, a, la))
            return (int)g;
    }
    return -1;
}

/* Words a[0..la) end within W non-numeric words before position s (t[lo..]): the gap, or -1. */
static int precedes(const uint64_t *t, size_t lo, size_t s, const uint64_t *a, size_t la)
{
    for (size_t g = 0; g <= LK_W && s >= lo + g + la; g++) {
        if (g && LK_TOK_NUM(t[s - g]))
            return -1;
        if (eq_words(t + s - g - la, a, la))
            return (int)g;
    }
    return -1;
}

static void span_at_least(lk_scan *sc, size_t words)
{
    if (words > sc->span)
        sc->span = (uint32_t)words;
}

/* The hits of one chunk, in position order: count windows per part, find answers next to
 * prompts. */
static void apply_hits(lk_scan *sc, size_t nh)
{
    const lk_index *ix = sc->ix;
    const uint64_t *t = sc->out.v;
    size_t n = sc->out.n;
    for (size_t h = 0; h < nh; h++) {
        size_t i = sc->hits[h].pos, s = sc->hits[h].slot;
        for (uint32_t q = ix->kstart[s]; q < ix->kstart[s] + ix->kcount[s]; q++) {
            uint32_t w = ix->post[q], p = ix->win_part[w], item = p / 2;
            const lk_part *pt = &ix->part[p];
            size_t off = w - pt->win0, wl = PART_LONG(pt) ? LK_N : pt->len;
            if (i + wl > n || !eq_words(t + i, ix->tok + pt->off + off, wl))
                continue; /* a hash collision */
            if (sc->binary && !PART_LONG(pt))
                continue;
            if (sc->win_ep[w] != sc->epoch) {
                sc->win_ep[w] = sc->epoch;
                if (sc->part_ep[p] != sc->epoch)
                    sc->part_ep[p] = sc->epoch, sc->part_hits[p] = 0;
                sc->part_hits[p]++;
                touch_item(sc, item);
                if (sc->in_b64)
                    sc->b64_hit = true;
            }
            uint64_t gpos = sc->base + i;
            if (PART_LONG(pt) && gpos != sc->run_last) {
                sc->run_len = gpos == sc->run_last + 1 ? sc->run_len + 1 : 1;
                sc->run_last = gpos;
                span_at_least(sc, sc->run_len + LK_N - 1);
            }
            const lk_part *a = pt + 1;
            if (p % 2 || !a->len)
                continue;
            /* a prompt: its answer next to it, either side */
            size_t la = PART_LONG(a) ? LK_N : a->len;
            const uint64_t *af = ix->tok + a->off, *al = ix->tok + a->off + a->len - la;
            size_t plen = PART_LONG(pt) ? LK_N : pt->len;
            int g = -1;
            if (!PART_LONG(pt) || (!PART_LONG(a) && off + 1 == pt->nwin))
                g = follows(t, n, i + plen, af, la);
            if (g < 0 && (!PART_LONG(pt) || (!PART_LONG(a) && off == 0)))
                g = precedes(t, 0, i, al, la);
            if (g >= 0) {
                sc->item_fl[item] |= IT_ADJ;
                span_at_least(sc, (PART_LONG(pt) ? pt->len : plen) + (size_t)g + a->len);
            }
        }
    }
}

/* Scan the chunk's positions that have their lookahead (all of them when final), then keep
 * LK_MARGIN words before the first unscanned one. */
static void scan_chunk(lk_scan *sc, bool final)
{
    size_t n = sc->out.n;
    size_t end = final ? n : n > LK_MARGIN ? n - LK_MARGIN : 0;
    if (end > sc->done) {
        apply_hits(sc, chunk_hits(sc, sc->done, end, sc->hits));
        sc->words += end - sc->done;
        sc->done = end;
    }
    if (final) {
        sc->out.n = sc->done = 0;
        sc->base = 0;
        sc->run_last = UINT64_MAX - 1;
        return;
    }
    size_t from = sc->done > LK_MARGIN ? sc->done - LK_MARGIN : 0;
    memmove(sc->out.v, sc->out.v + from, (n - from) * sizeof *sc->out.v);
    sc->out.n -= from;
    sc->done -= from;
    sc->base += from;
}

static void unit_begin(lk_scan *sc)
{
    sc->epoch++;
    sc->n_touched = 0;
    sc->span = 0;
    sc->b64_hit = false;
    sc->out.n = sc->done = 0;
    sc->base = 0;
    sc->run_last = UINT64_MAX - 1;
}

static bool looks_binary(const uint8_t *p, size_t n)
{
    size_t at[3] = {0, n / 2, n > 4096 ? n - 4096 : 0};
    for (int k = 0; k < 3; k++) {
        size_t bad = 0, m = n - at[k] < 4096 ? n - at[k] : 4096;
        for (size_t i = at[k]; i < at[k] + m; i++) {
            uint8_t c = p[i];
            bad += (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f') || c == 0x7f;
        }
        if (bad * 100 > m)
            return true;
    }
    return false;
}

/* The value of a base64 character (both alphabets), or -1. */
#define B64_ROW(c)                                                                                 \
    ((c) >= 'A' && (c) <= 'Z'   ? (c) - 'A'                                                        \
     : (c) >= 'a' && (c) <= 'z' ? (c) - 'a' + 26                                                   \
     : (c) >= '0' && (c) <= '9' ? (c) - '0' + 52                                                   \
     : (c) == '+' || (c) == '-' ? 62                                                               \
     : (c) == '/' || (c) == '_' ? 63                                                               \
                                : -1)
#define B64_4(c) B64_ROW(c), B64_ROW(c + 1), B64_ROW(c + 2), B64_ROW(c + 3)
#define B64_16(c) B64_4(c), B64_4(c + 4), B64_4(c + 8), B64_4(c + 12)
#define B64_64(c) B64_16(c), B64_16(c + 16), B64_16(c + 32), B64_16(c + 48)
static const int16_t b64_tab[256] = {B64_64(0), B64_64(64), B64_64(128), B64_64(192)};

static inline int b64_val(uint8_t c)
{
    return b64_tab[c];
}

bool lk_piece_cut(uint8_t c)
{
    return c < 0x80 && b64_tab[c] < 0 && c != '=' && c != '.' && c != '\\' && c != '\n' &&
           c != '\r';
}

/* Decode base64 p[0..n) (line breaks, JSON-escaped ones too, skipped; '=' ends a quantum). */
static size_t b64_decode(const uint8_t *p, size_t n, uint8_t *out)
{
    uint32_t acc = 0;
    int k = 0;
    size_t o = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && p[i] == '\\') {
            i++;
            continue;
        }
        int v = i < n ? b64_val(p[i]) : -1;
        if (v >= 0) {
            acc = acc << 6 | (uint32_t)v;
            if (++k == 4) {
                out[o++] = (uint8_t)(acc >> 16), out[o++] = (uint8_t)(acc >> 8),
                out[o++] = (uint8_t)acc;
                k = 0, acc = 0;
            }
        } else if (i == n || p[i] == '=') {
            if (k == 2)
                out[o++] = (uint8_t)(acc >> 4);
            else if (k == 3)
                out[o++] = (uint8_t)(acc >> 10), out[o++] = (uint8_t)(acc >> 2);
            k = 0, acc = 0;
        }
    }
    return o;
}

static void scan_bytes(lk_scan *sc, const uint8_t *p, size_t n, int depth);

/* The base64 run p[0..n), decoded and scanned (a stream of its own). */
static void scan_b64_run(lk_scan *sc, const uint8_t *p, size_t n, size_t alpha, int depth)
{
    uint8_t *d = malloc(alpha);
    if (!d) {
        sc->out.rc = PTB_ENOMEM;
        return;
    }
    size_t dn = b64_decode(p, n, d);
    if (dn && !looks_binary(d, dn)) {
        scan_chunk(sc, true);
        bool was = sc->in_b64;
        sc->in_b64 = true;
        scan_bytes(sc, d, dn, depth + 1);
        sc->in_b64 = was;
    }
    free(d);
}

/* The next base64 run of p[i..n) worth decoding: true with [*s, *e) and its characters *alpha;
 * *i_ is where to go on. */
static bool b64_next_in(const uint8_t *p, size_t n, size_t *i_, size_t *s, size_t *e, size_t *alpha)
{
    for (size_t i = *i_; i < n;) {
        while (i < n && b64_val(p[i]) < 0)
            i++;
        if (i == n)
            break;
        size_t j = i, a = 0;
        bool up = false, low = false, dig = false;
        while (j < n && b64_val(p[j]) >= 0) /* most runs are short words: skip them cheaply */
            j++;
        if (j - i < 24 &&
            (j == n || (p[j] != '=' && p[j] != '\n' && p[j] != '\r' && p[j] != '\\'))) {
            i = j > i ? j : i + 1;
            continue;
        }
        j = i;
        while (j < n) {
            uint8_t c = p[j];
            if (b64_val(c) >= 0 || c == '=') {
                a++;
                up |= c >= 'A' && c <= 'Z', low |= c >= 'a' && c <= 'z';
                dig |= (c >= '0' && c <= '9') || c == '+' || c == '/';
                j++;
            } else if (c == '\n' || c == '\r')
                j++;
            else if (c == '\\' && j + 1 < n && (p[j + 1] == 'n' || p[j + 1] == 'r'))
                j += 2;
            else
                break;
        }
        size_t at = i;
        i = j > i ? j : i + 1;
        if (a >= 24 && up && low && dig) {
            *i_ = i, *s = at, *e = j, *alpha = a;
            return true;
        }
    }
    *i_ = n;
    return false;
}

/* A byte a base64 run may hold: its characters, '=', line breaks, the backslash of "\n". */
static inline bool b64_ext(uint8_t c)
{
    return b64_val(c) >= 0 || c == '=' || c == '\n' || c == '\r' || c == '\\';
}

/* Where b64_next is: in the stretch of b64_ext bytes [.., end), at i; then from `from`. */
typedef struct b64_it {
    size_t i, end, from;
} b64_it;

/* The next base64 run worth decoding, as b64_next_in, but looking only in the stretches of 24 or
 * more b64_ext bytes (a run worth decoding has 24 base64 characters): most text has none, and
 * looking at every 24th byte finds them. */
static bool b64_next(const uint8_t *p, size_t n, b64_it *it, size_t *s, size_t *e, size_t *alpha)
{
    for (;;) {
        if (it->i < it->end && b64_next_in(p, it->end, &it->i, s, e, alpha))
            return true;
        /* p[it->from - 1] is not a b64_ext byte (or from is 0): no stretch starts before from */
        size_t q = it->from;
        for (;;) {
            if (q + 24 > n)
                return false;
            if (!b64_ext(p[q + 23])) {
                q += 24;
                continue;
            }
            size_t a = q + 23, b = q + 24;
            while (a > q && b64_ext(p[a - 1]))
                a--;
            while (b < n && b64_ext(p[b]))
                b++;
            q = b + 1;
            if (b - a >= 24) {
                it->i = a, it->end = b, it->from = q;
                break;
            }
        }
    }
}

int lk_b64_runs(const uint8_t *p, size_t n, lk_b64run **run, size_t *nrun, size_t *cap)
{
    size_t s, e, a;
    b64_it i = {0};
    while (b64_next(p, n, &i, &s, &e, &a)) {
        if (lk_grow(run, cap, *nrun, sizeof **run))
            return PTB_ENOMEM;
        (*run)[(*nrun)++] = (lk_b64run){s, e};
    }
    return 0;
}

static void stream_copy(lk_scan *sc, const uint64_t *tok, size_t n)
{
    while (n && !sc->out.rc) {
        if (sc->out.n == sc->out.cap)
            scan_chunk(sc, false);
        size_t k = sc->out.cap - sc->out.n < n ? sc->out.cap - sc->out.n : n;
        memcpy(sc->out.v + sc->out.n, tok, k * sizeof *tok);
        sc->out.n += k, tok += k, n -= k;
    }
}

#define LK_SKIP_MIN 1024 /* words without a hit worth jumping over */

/* Words are copied to the chunk, except the middle of a stretch of LK_SKIP_MIN words or more that
 * a piece covers without a hit: those positions have no hit to apply, and a hit outside looks at
 * most LK_N + LK_W words past itself; the LK_MARGIN words at each end of the stretch are kept,
 * and the stream positions (base) go on as if every word had been there. */
void lk_stream_feed(lk_scan *sc, const uint64_t *tok, size_t n)
{
    size_t x = 0;
    while (x < n && !sc->out.rc) {
        uint64_t gx = sc->base + sc->out.n;
        while (sc->pre_feed < sc->npre && sc->pre[sc->pre_feed].cov <= gx)
            sc->pre_feed++;
        lk_pre *P = sc->pre_feed < sc->npre ? (lk_pre *)&sc->pre[sc->pre_feed] : NULL;
        size_t c = n - x;
        if (P && P->g0 <= gx) {
            while (P->fat < P->nh && P->g0 + P->hit[P->fat].pos < gx)
                P->fat++;
            uint64_t ge = P->fat < P->nh ? P->g0 + P->hit[P->fat].pos : P->cov;
            if (ge - gx >= LK_SKIP_MIN && ge - gx <= n - x) {
                stream_copy(sc, tok + x, LK_MARGIN);
                scan_chunk(sc, false); /* every position before gx */
                uint64_t gnew = ge - LK_MARGIN;
                sc->words += gnew - (sc->base + sc->done);
                x += (size_t)(gnew - gx);
                sc->out.n = sc->done = 0;
                sc->base = gnew;
                continue;
            }
            c = ge - gx + 1 < c ? (size_t)(ge - gx + 1) : c;
        } else if (P && P->g0 - gx < c)
            c = (size_t)(P->g0 - gx);
        stream_copy(sc, tok + x, c);
        x += c;
    }
}

void lk_stream_end(lk_scan *sc, const uint8_t *p, const lk_b64run *run, size_t nrun)
{
    scan_chunk(sc, true);
    sc->pre = NULL, sc->npre = sc->pre_at = sc->pre_feed = 0;
    for (size_t k = 0; k < nrun && !sc->out.rc; k++) {
        size_t a = 0;
        for (size_t i = run[k].s; i < run[k].e; i++)
            a += b64_val(p[i]) >= 0 || p[i] == '=';
        scan_b64_run(sc, p + run[k].s, run[k].e - run[k].s, a, 0);
    }
}

/* The base64 runs of a text, decoded and scanned. */
static void scan_b64(lk_scan *sc, const uint8_t *p, size_t n, int depth)
{
    size_t s, e, a;
    b64_it i = {0};
    while (!sc->out.rc && b64_next(p, n, &i, &s, &e, &a))
        scan_b64_run(sc, p + s, e - s, a, depth);
}

/* The length of a safetensors file's JSON header (8-byte little-endian length, then '{'), or 0:
 * the tensors after it are numbers, never text. */
static size_t safetensors_header(const uint8_t *p, size_t n)
{
    if (n < 10 || p[8] != '{')
        return 0;
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--)
        h = h << 8 | p[i];
    return h <= n - 8 ? (size_t)h : 0;
}

/* Scan bytes: a text, or a binary's printable runs; then a text's base64 (one level). */
static void scan_bytes(lk_scan *sc, const uint8_t *p, size_t n, int depth)
{
    size_t st = depth ? 0 : safetensors_header(p, n);
    if (st) { /* the header's names and metadata only */
        sc->skipped += n - 8 - st;
        p += 8, n = st;
    }
    bool binary = looks_binary(p, n);
    sc->binary = binary;
    if (!binary && !depth && sc->gpu_auto && !sc->gpu_tried &&
        n >= LK_GPU_AUTO_MIN * (sc->threads > 1 ? sc->threads : 1)) {
        char msg[256];
        sc->gpu_tried = true;
        sc->gpu_own = lk_gpu_open(sc->ix, &sc->gpu, msg, sizeof msg) == 0;
    }
    if (!binary && !depth && n >= (sc->par_min ? sc->par_min : LK_PAR_MIN) &&
        (sc->threads > 1 || sc->gpu)) {
        int rc = lk_scan_pieces(sc, p, n); /* the stream, then the base64 runs */
        if (rc && !sc->out.rc)
            sc->out.rc = rc;
        sc->binary = false;
        return;
    }
    if (!binary)
        lk_tokenize(&sc->out, p, n);
    else /* runs of printable ASCII and valid UTF-8 that can hold an 8-gram */
        for (size_t i = 0; i < n;) {
            size_t j = i, k;
            uint32_t cp;
            while (j < n) {
                if ((p[j] >= 0x20 && p[j] < 0x7f) || p[j] == '\t' || p[j] == '\n' || p[j] == '\r')
                    j++;
                else if (p[j] >= 0x80 && (k = utf8_decode(p + j, n - j, &cp)))
                    j += k;
                else
                    break;
            }
            if (j - i >= 2 * LK_N - 1)
                lk_tokenize(&sc->out, p + i, j - i);
            i = j + 1;
        }
    scan_chunk(sc, true);
    sc->binary = false;
    if (depth == 0 && !binary)
        scan_b64(sc, p, n, depth);
}

/* Scan one unit's bytes and say what it holds. */
int lk_scan_unit(lk_scan *sc, const void *data, size_t len, lk_res *res)
{
    const lk_index *ix = sc->ix;
    unit_begin(sc);
    scan_bytes(sc, data, len, 0);
    memset(res, 0, sizeof *res);
    if (sc->out.rc)
        return sc->out.rc;
    uint32_t partial[3], npartial = 0;
    for (size_t k = 0; k < sc->n_touched; k++) {
        uint32_t it = sc->touched[k];
        const lk_part *P = &ix->part[2 * it], *A = P + 1;
        bool pm =
            P->nwin && sc->part_ep[2 * it] == sc->epoch && 2 * sc->part_hits[2 * it] >= P->nwin;
        bool am = A->nwin && sc->part_ep[2 * it + 1] == sc->epoch &&
                  2 * sc->part_hits[2 * it + 1] >= A->nwin;
        bool adj = sc->item_fl[it] & IT_ADJ, full;
        if (!P->len)
            full = am;
        else if (!A->len)
            full = pm;
        else if (!PART_LONG(P))
            full = adj && (!PART_LONG(A) || am);
        else
            full = pm && (PART_LONG(A) ? am : adj);
        if (full) {
            res->full++;
            res->long_full += P->len + A->len >= LK_N;
            if (res->n_sample < 3)
                res->sample[res->n_sample++] = it;
        } else if (PART_LONG(P) && pm) {
            res->qonly++;
        } else if (PART_LONG(A) && am) {
            res->aonly++;
        } else
            continue;
        if (!full && npartial < 3)
            partial[npartial++] = it;
    }
    for (uint32_t k = 0; res->n_sample < 3 && k < npartial; k++)
        res->sample[res->n_sample++] = partial[k];
    res->span = sc->span;
    res->b64 = sc->b64_hit;
    return 0;
}
