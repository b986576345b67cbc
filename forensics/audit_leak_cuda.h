/* The GPU half of ptb audit's n-gram scan (audit_leak.c's top comment; the CPU reference is
 * audit_leak_scan.c). It lives in libptbauditcuda.so (cuda/audit_leak_scan.cu), which ptb loads
 * with dlopen on first use (audit_cuda_load.c: $PTB_AUDIT_CUDA_LIB, else next to ptb): ptb
 * does not link CUDA, and a missing library, driver or GPU is -ENOTSUP with a message.
 *
 * What the GPU does. A large text comes cut into pieces at bytes where the CPU tokenizer's state
 * is empty (lk_piece_cut). For each piece the GPU reads the bytes the way lk_tokenize does --
 * ASCII letters and digits folded to lower case, '.' between digits kept, a run of backslashes
 * before n r t b f a separator, every other ASCII byte a separator -- hashes the words (the same
 * FNV-1a, splitmix finaliser and digit bit), drops the template's words, and looks up the keys of
 * the word sequences of length 1..8 at every position whose 8 words lie in the piece (the index's
 * bloom filter, then its open-addressing table), as leak_scan does. A piece holding what this
 * does not read -- a byte >= 0x80 (UTF-8), a "\u" escape -- is marked `cpu` and left to the CPU
 * reference, as is the search for base64 runs in a piece with 24 base64 characters in a row
 * (`b64`). The CPU then applies the hits in order (audit_leak_piece.c): the results are those of
 * the CPU alone, finding for finding and number for number (test_audit_leak_cuda). */
#ifndef PTB_AUDIT_LEAK_CUDA_H
#define PTB_AUDIT_LEAK_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct audit_leak_cuda audit_leak_cuda; /* a GPU's copy of one index, and its buffers */

/* The index's tables (lk_index), borrowed for the call to audit_leak_cuda_new, which copies
 * them to the GPU. */
typedef struct audit_leak_cuda_tables {
    const uint64_t *key; /* open addressing, 0 = empty; kmask + 1 slots */
    size_t kmask;
    const uint64_t *bloom; /* bloom_mask + 1 words */
    size_t bloom_mask;
    unsigned len_mask;    /* the sequence lengths that keys have (bit l) */
    const uint64_t *tmpl; /* template words, open addressing, 0 = empty; NULL: none */
    size_t tmpl_mask;
} audit_leak_cuda_tables;

/* A hit: a position (in the piece's words) whose sequence of some length has a key in the
 * table's slot. Laid out as lk_hit. */
typedef struct audit_leak_cuda_hit {
    uint32_t pos, slot;
} audit_leak_cuda_hit;

/* One piece's result. tok and hit point into the handle's buffers: valid until its next scan or
 * free. */
typedef struct audit_leak_cuda_piece {
    const uint64_t *tok; /* the piece's words, template dropped */
    size_t ntok;
    const audit_leak_cuda_hit *hit; /* hits of the positions [0, ntok - 7), in order of
                                       position, then length */
    size_t nhit;
    int cpu; /* 1: the GPU does not read this piece (tok, hit unset): the CPU scans it */
    int b64; /* 1: it may hold a base64 run: the CPU looks */
} audit_leak_cuda_piece;

/* 0 when a GPU can be used; -ENOTSUP (why in msg) when none. */
int audit_leak_cuda_available(char *msg, size_t cap);
/* Copy the tables t to the GPU: 0 and *out (free with audit_leak_cuda_free); -ENOTSUP, -ENOMEM
 * or -EIO with msg. */
int audit_leak_cuda_new(const audit_leak_cuda_tables *t, audit_leak_cuda **out, char *msg,
                        size_t cap);
void audit_leak_cuda_free(audit_leak_cuda *g);
/* Scan the text p[0..n) (borrowed), cut at cut[0..npiece] (cut[0] = 0, cut[npiece] = n, each
 * other one a byte lk_piece_cut allows): piece[k] for [cut[k], cut[k+1]). 0; -ENOMEM, -EIO with
 * msg (the caller then scans it on the CPU). */
int audit_leak_cuda_scan(audit_leak_cuda *g, const uint8_t *p, size_t n, const size_t *cut,
                         size_t npiece, audit_leak_cuda_piece *piece, char *msg, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
