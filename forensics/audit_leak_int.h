/* Internals of ptb audit's leakage detector: the matching, shared by audit_leak_scan.c (the
 * normalisation, the scan), audit_leak_index.c (the test split's index), audit_leak_piece.c
 * (pieces, threads, the GPU) and the detector's other files (audit_leak.c lists them). Not for
 * use outside them. The design, thresholds included, is in audit_leak.c's top comment. */
#ifndef PTB_AUDIT_LEAK_INT_H
#define PTB_AUDIT_LEAK_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LK_PRIME 0x100000001b3ull /* FNV's 64-bit prime: word, sequence and path hashes */
#define LK_N 8                    /* words of an n-gram, and the longest short part + 1 */
#define LK_W 4                    /* words allowed between a prompt and its answer */

/* ------------------------------------------------------------------ small helpers */

/* Grow the array *pp of n elements of size sz (capacity *cap) to hold one more: 0; PTB_ENOMEM
 * (the array is left as it was). */
int lk_grow(void *pp, size_t *cap, size_t n, size_t sz);
/* splitmix64's finaliser: tokens, table slots (cuda/audit_leak_scan.cu has the same) */
static inline uint64_t lk_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
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

#define PART_LONG(pt) ((pt)->len >= LK_N) /* a part matched by its 8-grams, not whole */

/* The index's hashing, shared by its builder (audit_leak_index.c) and the scan: the bloom
 * filter's word and bits of a key, a word sequence's key. */
static inline size_t lk_bloom_word(const lk_index *ix, uint64_t key)
{
    return (size_t)(key >> 12) & ix->bloom_mask;
}

static inline uint64_t lk_bloom_bits(uint64_t key)
{
    return 1ull << (key & 63) | 1ull << (key >> 6 & 63);
}

static inline uint64_t lk_seq_key(uint64_t h, size_t len)
{
    uint64_t k = lk_mix64(h ^ (len * 0x9e3779b97f4a7c15ull));
    return k ? k : 1;
}

static inline uint64_t lk_seq_hash(const uint64_t *t, size_t len)
{
    uint64_t h = 0;
    for (size_t i = 0; i < len; i++)
        h = h * LK_PRIME + t[i];
    return h;
}

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

#define LK_TOK_NUM(t) ((t)&1u) /* a word's token: its low bit says it is a number */
/* A template word's slot: a token is already a mixed hash, its bits above the low one will do. */
#define LK_TMPL_SLOT(t, mask) ((size_t)((t) >> 8) & (mask))

/* Is t a word of the template (o->tmpl)? The index drops them, and so does the scan. */
static inline bool lk_tmpl_has(const tok_out *o, uint64_t t)
{
    if (t & 1)
        return false; /* a number is never a template word */
    for (size_t i = LK_TMPL_SLOT(t, o->tmpl_mask); o->tmpl[i]; i = (i + 1) & o->tmpl_mask)
        if (o->tmpl[i] == t)
            return true;
    return false;
}

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

/* Precomputed hits of one piece of a unit's text (audit_leak_piece.c): the hits of the stream
 * positions [g0, cov), stream position g0 + hit.pos; every other position is scanned here. */
typedef struct lk_pre {
    uint64_t g0, cov;
    const lk_hit *hit;
    size_t nh, at, fat; /* hits; the next one to scan, to feed */
} lk_pre;

struct lk_piecer;

typedef struct lk_scan {
    const lk_index *ix;
    unsigned threads;     /* of a large text's scan (lk_scan_pieces); 0, 1: this thread */
    size_t piece_bytes;   /* a piece of a large text; 0: LK_PIECE, LK_PIECE_GPU (tests: small) */
    size_t par_min;       /* a text of this many bytes or more goes in pieces; 0: LK_PAR_MIN */
    struct lk_piecer *pc; /* the pieces' buffers and threads; NULL until the first */
    struct audit_leak_cuda *gpu; /* the CUDA scan (audit_leak_cuda.h); NULL: the CPU */
    bool gpu_own;                /* gpu is the scanner's (opened by gpu_auto), freed with it */
    bool gpu_auto;  /* open the GPU for the first text of LK_GPU_AUTO_MIN bytes a thread (auto) */
    bool gpu_tried; /* ... once */
    uint64_t gpu_bytes; /* bytes scanned on the GPU */
    const lk_pre *pre;  /* precomputed hits, in stream order (scan_chunk uses them) */
    size_t npre, pre_at, pre_feed;
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

/* ------------------------------------------------------------------ pieces (audit_leak_piece.c) */

/* A large text is cut into pieces at bytes where the tokenizer's state is empty and no base64 run
 * goes on (lk_piece_cut), so that each piece's words, and the hits of the positions whose 8 words
 * lie in the piece, are the same as one pass's. Pieces are tokenized and scanned by threads or on
 * the GPU; the stream is then put together in order here (lk_stream_feed, scan_chunk), the few
 * positions at a piece's end scanned with the next piece's words, and the hits applied in
 * order: the results are a single pass's, bit for bit. */
#define LK_PIECE (1u << 20)     /* bytes of a piece */
#define LK_PIECE_GPU (1u << 16) /* ... on the GPU */
#define LK_PAR_MIN (4u << 20)   /* a text this large or larger goes in pieces */
/* --device auto: a text of this many bytes per CPU thread opens the GPU. Starting CUDA costs
 * about 0.25 s, in which a thread scans 80-140 MB; the GPU scans 5.7 GB/s (docs/BENCHMARKS.md): it
 * pays from about 180-300 MB on 2 threads and 1.2 GB on 8. */
#define LK_GPU_AUTO_MIN (128ull << 20)

typedef struct lk_b64run {
    size_t s, e; /* bytes of a base64 run long enough to decode */
} lk_b64run;

/* Words of p[0..n) into o (the normalisation). */
void lk_tokenize(tok_out *o, const uint8_t *p, size_t n);
/* Hits of the positions [0, cov) of tok[0..n) (cov = n - 7 when n >= 8: whole 8-grams), appended
 * to *hit (grown): 0; PTB_ENOMEM. */
int lk_scan_piece(const lk_index *ix, const uint64_t *tok, size_t n, lk_hit **hit, size_t *nh,
                  size_t *cap);
/* The base64 runs of p[0..n) worth decoding (scan_b64's test), appended to *run: 0; PTB_ENOMEM. */
int lk_b64_runs(const uint8_t *p, size_t n, lk_b64run **run, size_t *nrun, size_t *cap);
/* A byte at which a text may be cut into pieces: ASCII, not a word's, not '.', '\\', nor part of
 * a base64 run ('=', '+', '/', '-', '_', line breaks). */
bool lk_piece_cut(uint8_t c);
/* Append words tok[0..n) (template already dropped) to the stream; the positions that pre[]
 * covers use its hits. */
void lk_stream_feed(lk_scan *sc, const uint64_t *tok, size_t n);
/* End the stream (scan what is left), then decode and scan the base64 runs of p. */
void lk_stream_end(lk_scan *sc, const uint8_t *p, const lk_b64run *run, size_t nrun);
/* Scan the text p[0..n) in pieces (threads, GPU): 0; PTB_ENOMEM; a GPU error (the CPU then
 * scans it: nothing is lost). Called by scan_bytes for large texts. */
int lk_scan_pieces(lk_scan *sc, const uint8_t *p, size_t n);
void lk_piecer_free(struct lk_piecer *pc);
/* The GPU's copy of ix for lk_scan.gpu (free with audit_leak_cuda_free): 0; -ENOTSUP (no
 * library, driver or GPU), -ENOMEM, -EIO, with msg. */
int lk_gpu_open(const lk_index *ix, struct audit_leak_cuda **g, char *msg, size_t cap);
/* Set sc up for `--device dev` ("cpu", "cuda", "auto"; NULL: auto): threads = the online CPUs
 * (at most 8); the GPU opened now for cuda (0; -ENOTSUP, -ENOMEM, -EIO, PTB_EINVAL with msg),
 * for auto when a text of LK_GPU_AUTO_MIN bytes a thread comes (the CPU when it cannot). */
int lk_scanner_device(lk_scan *sc, const char *dev, char *msg, size_t cap);
/* Where the scan ran, for a finding's summary: "n-gram scan on cuda (...)" or "... on the cpu". */
void lk_scanner_device_say(const lk_scan *sc, char *out, size_t cap);

#endif
