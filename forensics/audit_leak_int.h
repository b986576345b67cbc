/* Internals of ptb audit's leakage detector, shared by its two files: audit_leak_scan.c (the
 * normalisation, the test split's index, the scan) and audit_leak.c (the run's events, content
 * units, lineage, findings, audit_leak()). Not for use outside them. The design, thresholds
 * included, is in audit_leak.c's top comment. */
#ifndef PTB_AUDIT_LEAK_INT_H
#define PTB_AUDIT_LEAK_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LK_PRIME 0x100000001b3ull /* FNV's 64-bit prime: word, sequence and path hashes */

/* ------------------------------------------------------------------ small helpers */

/* Grow the array *pp of n elements of size sz (capacity *cap) to hold one more: 0; PTB_ENOMEM
 * (the array is left as it was). */
int lk_grow(void *pp, size_t *cap, size_t n, size_t sz);
uint64_t lk_mix64(uint64_t x);                /* splitmix64's finaliser: tokens, table slots */
int lk_cmp_u64(const void *a, const void *b); /* qsort order of uint64_t */

/* ------------------------------------------------------------------ the index */

typedef struct lk_part {
    uint32_t off, len;   /* words in ix->tok */
    uint32_t win0, nwin; /* its windows (0 when not indexed) */
} lk_part;

typedef struct lk_index {
    size_t n_items;
    uint64_t *tok; /* the words of every part, template dropped */
    size_t ntok;
    lk_part *part;      /* 2 per item: prompt, answer */
    uint32_t *win_part; /* part of each window */
    size_t nwin;
    uint64_t *key; /* open addressing table of sequence keys, 0 = empty */
    uint32_t *kstart, *kcount;
    size_t kmask;
    uint32_t *post;    /* windows, grouped by key */
    uint64_t *bloom;   /* two bits per key in one word (16 bits a key), for a cheap "no" */
    size_t bloom_mask; /* words - 1 */
    unsigned len_mask; /* lengths (1..N) that keys have */
    uint64_t *tmpl;    /* template words (tok_out.tmpl) */
    size_t tmpl_mask, n_tmpl;
    char **sample;   /* per item: "prompt => answer", short */
    uint8_t sha[32]; /* of the split's file */
} lk_index;

/* Read the test split (JSONL) at path and build *ix. 0; PTB_ENOTFOUND (why in err) when the
 * split is unreadable or holds no item; PTB_ENOMEM. *ix is the caller's to free with
 * lk_index_free(), after an error too. */
int lk_index_build(lk_index *ix, const char *path, char *err, size_t errcap);
void lk_index_free(lk_index *ix);

/* ------------------------------------------------------------------ the scan */

struct lk_scan;

/* Where words go: a growing array (the test items), or a scanner's chunk. */
typedef struct tok_out {
    uint64_t *v;
    size_t n, cap;
    struct lk_scan *sc;   /* NULL: grow v */
    const uint64_t *tmpl; /* template words to drop: open addressing, 0 = empty; NULL: none */
    size_t tmpl_mask;
    int rc;
} tok_out;

typedef struct lk_hit {
    uint32_t pos;  /* in the token array */
    uint32_t slot; /* in the key table */
} lk_hit;

/* What one unit (a blob, a tool call's text) holds. */
typedef struct lk_res {
    uint32_t full, qonly, aonly, long_full; /* items */
    uint32_t span;                          /* longest matched run of words */
    uint32_t sample[3];                     /* the first full (else partial) items */
    uint32_t n_sample;
    bool b64; /* some of it was found in base64 */
} lk_res;

typedef struct lk_scan {
    const lk_index *ix;
    uint32_t epoch;
    uint32_t *win_ep, *part_ep, *part_hits, *item_ep;
    uint8_t *item_fl;
    uint32_t *touched; /* items touched in this unit */
    size_t n_touched, cap_touched;
    tok_out out;   /* the chunk: out.v[0..out.n) */
    size_t done;   /* positions of the chunk already scanned */
    uint64_t base; /* stream position of out.v[0] */
    lk_hit *hits;
    uint64_t run_last, run_len;
    uint32_t span;
    bool in_b64, b64_hit;
    bool binary;      /* the stream is a binary's printable runs: 8-grams only */
    uint64_t words;   /* scanned in all */
    uint64_t skipped; /* bytes of safetensors tensors not scanned */
} lk_scan;

/* A scanner over ix (borrowed: it must outlive the scanner). 0; PTB_ENOMEM. Free with
 * lk_scanner_free(), after an error too. */
int lk_scanner_init(lk_scan *sc, const lk_index *ix);
void lk_scanner_free(lk_scan *sc);
/* Scan one unit's bytes data[0..len) (borrowed) and say in *res what it holds: 0; PTB_ENOMEM. */
int lk_scan_unit(lk_scan *sc, const void *data, size_t len, lk_res *res);

#endif
