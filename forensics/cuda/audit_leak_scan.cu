/* The GPU half of ptb audit's n-gram scan (audit_leak_cuda.h says what it does and what it leaves
 * to the CPU; the CPU reference is forensics/audit_leak_scan.c: lk_tokenize, leak_scan).
 *
 * One call scans a batch of pieces, text bytes p[0..n) cut at cut[0..np]:
 *   k_bytes    one thread per byte: the byte's class (a word's character: an ASCII letter or
 *              digit not taken by a backslash escape, or a '.' between two digits), the piece
 *              flags (cpu: a byte >= 0x80 or "\u"; b64: 24 base64-ish bytes in a row start here),
 *              and at a word's first byte its token (FNV-1a over the folded bytes, splitmix64's
 *              finaliser, the digit bit: word_end) and whether it is kept (not a template word)
 *   scan       cub's exclusive sum of the kept flags: each token's index
 *   k_scatter  the tokens, in order; k_tcut: each piece's first token
 *   k_ngram    one thread per token: the keys of the sequences of length 1..8 that start there and
 *              end in its piece (seq_key), the bloom filter, the open-addressing table; a hit is
 *              (position << 3 | length - 1, slot), appended with an atomic counter
 *   sort       cub's radix sort of the hits by that key: leak_scan's order (position, length)
 * then the tokens and hits come back to pinned host memory and are handed out per piece. Memory:
 * 16 bytes a text byte on the GPU, grown to the largest batch, kept until free. */
#include <cub/cub.cuh>
#include <cuda_runtime.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_leak_cuda.h"

#define LK_N 8
#define LK_PRIME 0x100000001b3ull

struct audit_leak_cuda {
    bool emu; /* PTB_AUDIT_CUDA_EMULATE=1: the kernels' code on the CPU (tests without a GPU) */
    uint64_t *key, *bloom, *tmpl; /* the index's tables, on the GPU (emu: host copies) */
    size_t kmask, bloom_mask, tmpl_mask;
    unsigned len_mask, ltop;
    cudaStream_t st;
    /* per byte */
    uint8_t *p;
    uint32_t *keep, *idx;
    uint64_t *wtok;
    size_t cap_b, cap_keep, cap_idx, cap_wtok;
    /* per token */
    uint64_t *tok;
    size_t cap_t;
    /* per piece */
    size_t *cut;
    uint32_t *tcut;
    int *flag; /* bit 0: cpu, bit 1: b64 */
    size_t cap_p, cap_tcut, cap_flag;
    /* hits */
    unsigned long long *hk, *hk2;
    uint32_t *hs, *hs2;
    unsigned *nhit;
    size_t cap_h, cap_hk2, cap_hs, cap_hs2;
    void *tmp;
    size_t cap_tmp;
    /* pinned host copies */
    uint64_t *h_tok;
    size_t cap_ht;
    unsigned long long *h_hk;
    uint32_t *h_hs;
    audit_leak_cuda_hit *h_hit;
    size_t cap_hhk, cap_hhs, cap_hhit;
    uint32_t *h_tcut;
    int *h_flag;
    size_t cap_htcut, cap_hflag;
};

static int fail(cudaError_t e, const char *what, char *msg, size_t cap)
{
    if (msg && cap)
        snprintf(msg, cap, "CUDA n-gram scan: %s: %s", what, cudaGetErrorString(e));
    return e == cudaErrorMemoryAllocation ? -ENOMEM : -EIO;
}

#define CK(call, what)                                                                             \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess)                                                                     \
            return fail(e_, what, msg, cap);                                                       \
    } while (0)

/* ------------------------------------------------------------------ device helpers */

__host__ __device__ static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

__host__ __device__ static inline bool is_digit(uint8_t c)
{
    return (unsigned)c - '0' < 10u;
}

__host__ __device__ static inline bool ascii_word(uint8_t c)
{
    return (unsigned)c - '0' < 10u || (unsigned)(c | 0x20) - 'a' < 26u;
}

/* p[j] is a character of a word, as lk_tokenize reads a piece without bytes >= 0x80 or "\u": an
 * ASCII letter or digit, but n r t b f after a backslash (an escape: a separator); '.' between
 * two digits. */
__host__ __device__ static inline bool word_char(const uint8_t *p, size_t n, size_t j)
{
    uint8_t c = p[j];
    if (ascii_word(c))
        return !(j > 0 && p[j - 1] == '\\' &&
                 (c == 'n' || c == 'r' || c == 't' || c == 'b' || c == 'f'));
    return c == '.' && j > 0 && j + 1 < n && is_digit(p[j - 1]) && is_digit(p[j + 1]);
}

__host__ __device__ static inline bool b64_ext(uint8_t c)
{
    return ascii_word(c) || c == '+' || c == '/' || c == '-' || c == '_' || c == '=' || c == '\n' ||
           c == '\r' || c == '\\';
}

/* The piece of byte (or token) i: the last k with cut[k] <= i. */
template <typename T> __host__ __device__ static size_t piece_of(const T *cut, size_t np, size_t i)
{
    size_t lo = 0, hi = np; /* cut[lo] <= i < cut[hi] */
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (cut[mid] <= i)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

__host__ __device__ static inline void flag_or(int *f, int v)
{
#ifdef __CUDA_ARCH__
    atomicOr(f, v);
#else
    *f |= v;
#endif
}

/* Byte i: its piece's flags; at a word's first byte, its token and whether it is kept. */
__host__ __device__ static void byte_step(size_t i, const uint8_t *p, size_t n, const size_t *cut,
                                          size_t np, int *flag, const uint64_t *tmpl,
                                          size_t tmpl_mask, uint32_t *keep, uint64_t *wtok)
{
    uint8_t c = p[i], prev = i ? p[i - 1] : 0;
    if (c >= 0x80 || (c == 'u' && prev == '\\'))
        flag_or(&flag[piece_of(cut, np, i)], 1);
    if (b64_ext(c) && !(i && b64_ext(prev)) && i + 24 <= n) {
        bool run = true;
        for (size_t j = i + 1; j < i + 24 && run; j++)
            run = b64_ext(p[j]);
        if (run)
            flag_or(&flag[piece_of(cut, np, i)], 2);
    }
    uint32_t kept = 0;
    if (word_char(p, n, i) && !(i && word_char(p, n, i - 1))) {
        uint64_t h = 0xcbf29ce484222325ull;
        size_t j = i;
        do
            h = (h ^ (p[j] == '.' ? (uint64_t)'.' : (uint64_t)(p[j] | 0x20))) * LK_PRIME;
        while (++j < n && word_char(p, n, j));
        uint64_t t = (mix64(h) & ~1ull) | (is_digit(c) ? 1u : 0u);
        if (t >> 1 == 0)
            t |= 2;
        kept = 1;
        if (tmpl && !(t & 1))
            for (size_t s = (size_t)(t >> 8) & tmpl_mask; tmpl[s]; s = (s + 1) & tmpl_mask)
                if (tmpl[s] == t) {
                    kept = 0;
                    break;
                }
        wtok[i] = t;
    }
    keep[i] = kept;
}

static __global__ void k_bytes(const uint8_t *p, size_t n, const size_t *cut, size_t np, int *flag,
                               const uint64_t *tmpl, size_t tmpl_mask, uint32_t *keep,
                               uint64_t *wtok)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        byte_step(i, p, n, cut, np, flag, tmpl, tmpl_mask, keep, wtok);
}

static __global__ void k_scatter(size_t n, const uint32_t *keep, const uint32_t *idx,
                                 const uint64_t *wtok, uint64_t *tok)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n && keep[i])
        tok[idx[i]] = wtok[i];
}

static __global__ void k_tcut(const size_t *cut, size_t np, size_t n, const uint32_t *idx,
                              const uint32_t *keep, uint32_t *tcut)
{
    size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k > np)
        return;
    size_t b = cut[k];
    tcut[k] = b < n ? idx[b] : idx[n - 1] + keep[n - 1];
}

__host__ __device__ static inline uint64_t seq_key(uint64_t h, uint64_t len)
{
    uint64_t k = mix64(h ^ (len * 0x9e3779b97f4a7c15ull));
    return k ? k : 1;
}

/* Token j: the hits of the sequences that start there (leak_scan's loop body). */
__host__ __device__ static void ngram_step(size_t j, const uint64_t *tok, const uint32_t *tcut,
                                           size_t np, const int *flag, const uint64_t *key,
                                           size_t kmask, const uint64_t *bloom, size_t bloom_mask,
                                           unsigned len_mask, unsigned ltop, unsigned long long *hk,
                                           uint32_t *hs, unsigned *nhit, size_t cap)
{
    size_t k = piece_of(tcut, np, j);
    if ((flag[k] & 1) || j + LK_N > tcut[k + 1])
        return; /* the CPU's piece; a position the CPU scans with the next piece's words */
    uint64_t h = 0;
    for (unsigned l = 1; l <= ltop; l++) {
        h = h * LK_PRIME + tok[j + l - 1];
        if (!(len_mask & (1u << l)))
            continue;
        uint64_t kk = seq_key(h, l);
        uint64_t bits = 1ull << (kk & 63) | 1ull << (kk >> 6 & 63);
        if ((bloom[(size_t)(kk >> 12) & bloom_mask] & bits) != bits)
            continue;
        for (size_t s = mix64(kk) & kmask; key[s]; s = (s + 1) & kmask)
            if (key[s] == kk) {
#ifdef __CUDA_ARCH__
                unsigned at = atomicAdd(nhit, 1u);
#else
                unsigned at = (*nhit)++;
#endif
                if (at < cap) {
                    hk[at] = (unsigned long long)j << 3 | (l - 1);
                    hs[at] = (uint32_t)s;
                }
                break;
            }
    }
}

static __global__ void k_ngram(const uint64_t *tok, size_t ntok, const uint32_t *tcut, size_t np,
                               const int *flag, const uint64_t *key, size_t kmask,
                               const uint64_t *bloom, size_t bloom_mask, unsigned len_mask,
                               unsigned ltop, unsigned long long *hk, uint32_t *hs, unsigned *nhit,
                               size_t cap)
{
    size_t j = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (j < ntok)
        ngram_step(j, tok, tcut, np, flag, key, kmask, bloom, bloom_mask, len_mask, ltop, hk, hs,
                   nhit, cap);
}

/* ------------------------------------------------------------------ host */

template <typename T> static cudaError_t grow_dev(T **p, size_t *cap, size_t want)
{
    if (want <= *cap)
        return cudaSuccess;
    size_t nc = want + want / 4 + 1024;
    cudaFree(*p);
    *p = NULL;
    *cap = 0;
    cudaError_t e = cudaMalloc((void **)p, nc * sizeof(T));
    if (e == cudaSuccess)
        *cap = nc;
    return e;
}

template <typename T> static cudaError_t grow_host(T **p, size_t *cap, size_t want)
{
    if (want <= *cap)
        return cudaSuccess;
    size_t nc = want + want / 4 + 1024;
    cudaFreeHost(*p);
    *p = NULL;
    *cap = 0;
    cudaError_t e = cudaMallocHost((void **)p, nc * sizeof(T));
    if (e == cudaSuccess)
        *cap = nc;
    return e;
}

/* PTB_AUDIT_CUDA_EMULATE=1 runs byte_step and ngram_step on the CPU, one element at a time, with
 * the same host code around them (prefix sums, the sort, the hand-out): the test of the GPU's
 * logic on a machine without one. It is slow and never chosen by ptb itself. */
static bool emulated(void)
{
    const char *e = getenv("PTB_AUDIT_CUDA_EMULATE");
    return e && !strcmp(e, "1");
}

extern "C" int audit_leak_cuda_available(char *msg, size_t cap)
{
    if (emulated())
        return 0;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        if (msg && cap)
            snprintf(msg, cap, "no CUDA device: %s",
                     e != cudaSuccess ? cudaGetErrorString(e) : "none found");
        return -ENOTSUP;
    }
    return 0;
}

extern "C" void audit_leak_cuda_free(audit_leak_cuda *g)
{
    if (!g)
        return;
    if (g->emu) {
        free(g->key), free(g->bloom), free(g->tmpl), free(g->h_tok), free(g->h_hk), free(g->h_hs),
            free(g->h_hit), free(g->h_tcut), free(g->h_flag);
        free(g);
        return;
    }
    cudaFree(g->key), cudaFree(g->bloom), cudaFree(g->tmpl), cudaFree(g->p), cudaFree(g->keep),
        cudaFree(g->idx), cudaFree(g->wtok), cudaFree(g->tok), cudaFree(g->cut), cudaFree(g->tcut),
        cudaFree(g->flag), cudaFree(g->hk), cudaFree(g->hk2), cudaFree(g->hs), cudaFree(g->hs2),
        cudaFree(g->nhit), cudaFree(g->tmp);
    cudaFreeHost(g->h_tok), cudaFreeHost(g->h_hk), cudaFreeHost(g->h_hs), cudaFreeHost(g->h_hit),
        cudaFreeHost(g->h_tcut), cudaFreeHost(g->h_flag);
    if (g->st)
        cudaStreamDestroy(g->st);
    free(g);
}

static int upload(uint64_t **d, const uint64_t *h, size_t n, char *msg, size_t cap)
{
    CK(cudaMalloc((void **)d, n * sizeof **d), "cudaMalloc (index)");
    CK(cudaMemcpy(*d, h, n * sizeof **d, cudaMemcpyHostToDevice), "copy of the index");
    return 0;
}

extern "C" int audit_leak_cuda_new(const audit_leak_cuda_tables *t, audit_leak_cuda **out,
                                   char *msg, size_t cap)
{
    *out = NULL;
    int rc = audit_leak_cuda_available(msg, cap);
    if (rc)
        return rc;
    audit_leak_cuda *g = (audit_leak_cuda *)calloc(1, sizeof *g);
    if (!g)
        return -ENOMEM;
    g->kmask = t->kmask, g->bloom_mask = t->bloom_mask, g->tmpl_mask = t->tmpl_mask;
    g->len_mask = t->len_mask;
    for (unsigned l = 1; l <= LK_N; l++)
        if (t->len_mask & (1u << l))
            g->ltop = l;
    if ((g->emu = emulated())) {
        size_t nk = (t->kmask + 1) * 8, nb = (t->bloom_mask + 1) * 8, nt = (t->tmpl_mask + 1) * 8;
        g->key = (uint64_t *)malloc(nk), g->bloom = (uint64_t *)malloc(nb);
        g->tmpl = t->tmpl ? (uint64_t *)malloc(nt) : NULL;
        if (!g->key || !g->bloom || (t->tmpl && !g->tmpl)) {
            audit_leak_cuda_free(g);
            return -ENOMEM;
        }
        memcpy(g->key, t->key, nk), memcpy(g->bloom, t->bloom, nb);
        if (t->tmpl)
            memcpy(g->tmpl, t->tmpl, nt);
        *out = g;
        return 0;
    }
    cudaError_t e = cudaStreamCreateWithFlags(&g->st, cudaStreamNonBlocking);
    if (e != cudaSuccess)
        rc = fail(e, "cudaStreamCreate", msg, cap);
    if (!rc)
        rc = upload(&g->key, t->key, t->kmask + 1, msg, cap);
    if (!rc)
        rc = upload(&g->bloom, t->bloom, t->bloom_mask + 1, msg, cap);
    if (!rc && t->tmpl)
        rc = upload(&g->tmpl, t->tmpl, t->tmpl_mask + 1, msg, cap);
    if (!rc) {
        e = cudaMalloc((void **)&g->nhit, sizeof *g->nhit);
        if (e != cudaSuccess)
            rc = fail(e, "cudaMalloc", msg, cap);
    }
    if (rc) {
        audit_leak_cuda_free(g);
        return rc;
    }
    *out = g;
    return 0;
}

static unsigned blocks(size_t n, unsigned bs)
{
    return (unsigned)((n + bs - 1) / bs);
}

/* Per piece: its words, its hits (positions made the piece's), from the host copies. */
static void hand_out(audit_leak_cuda *g, size_t np, size_t nh, audit_leak_cuda_piece *piece)
{
    size_t h = 0;
    for (size_t k = 0; k < np; k++) {
        audit_leak_cuda_piece *q = &piece[k];
        size_t t0 = g->h_tcut[k], t1 = g->h_tcut[k + 1];
        q->cpu = g->h_flag[k] & 1;
        q->b64 = (g->h_flag[k] >> 1) & 1;
        q->tok = g->h_tok + t0;
        q->ntok = t1 - t0;
        q->hit = g->h_hit + h;
        q->nhit = 0;
        for (; h < nh && (g->h_hk[h] >> 3) < t1; h++) {
            g->h_hit[h].pos = (uint32_t)((g->h_hk[h] >> 3) - t0);
            g->h_hit[h].slot = g->h_hs[h];
            q->nhit++;
        }
    }
}

typedef struct emu_hit {
    unsigned long long k;
    uint32_t s;
} emu_hit;

static int cmp_emu_hit(const void *a, const void *b)
{
    unsigned long long x = ((const emu_hit *)a)->k, y = ((const emu_hit *)b)->k;
    return x < y ? -1 : x > y;
}

/* The scan with the kernels' code on the CPU (PTB_AUDIT_CUDA_EMULATE=1). */
static int emu_scan(audit_leak_cuda *g, const uint8_t *p, size_t n, const size_t *cut, size_t np,
                    audit_leak_cuda_piece *piece)
{
    uint32_t *keep = (uint32_t *)malloc((n + 1) * 4), *idx = (uint32_t *)malloc((n + 1) * 4);
    uint64_t *wtok = (uint64_t *)malloc((n + 1) * 8);
    free(g->h_flag), free(g->h_tcut);
    g->h_flag = (int *)calloc(np + 1, sizeof *g->h_flag);
    g->h_tcut = (uint32_t *)malloc((np + 1) * sizeof *g->h_tcut);
    int rc = -ENOMEM;
    if (!keep || !idx || !wtok || !g->h_flag || !g->h_tcut)
        goto out;
    for (size_t i = 0; i < n; i++)
        byte_step(i, p, n, cut, np, g->h_flag, g->tmpl, g->tmpl_mask, keep, wtok);
    {
        uint32_t sum = 0;
        for (size_t i = 0; i < n; i++)
            idx[i] = sum, sum += keep[i];
        idx[n] = sum;
        for (size_t k = 0; k <= np; k++)
            g->h_tcut[k] = idx[cut[k] < n ? cut[k] : n];
        size_t ntok = sum, cap = ntok * LK_N + 1;
        free(g->h_tok), free(g->h_hk), free(g->h_hs), free(g->h_hit);
        g->h_tok = (uint64_t *)malloc((ntok + 1) * 8);
        g->h_hk = (unsigned long long *)malloc(cap * sizeof *g->h_hk);
        g->h_hs = (uint32_t *)malloc(cap * sizeof *g->h_hs);
        g->h_hit = (audit_leak_cuda_hit *)malloc(cap * sizeof *g->h_hit);
        emu_hit *eh = (emu_hit *)malloc(cap * sizeof *eh);
        if (!g->h_tok || !g->h_hk || !g->h_hs || !g->h_hit || !eh) {
            free(eh);
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            if (keep[i])
                g->h_tok[idx[i]] = wtok[i];
        unsigned nh = 0;
        for (size_t j = 0; j < ntok; j++)
            ngram_step(j, g->h_tok, g->h_tcut, np, g->h_flag, g->key, g->kmask, g->bloom,
                       g->bloom_mask, g->len_mask, g->ltop, g->h_hk, g->h_hs, &nh, cap);
        for (unsigned h = 0; h < nh; h++)
            eh[h] = (emu_hit){g->h_hk[h], g->h_hs[h]};
        qsort(eh, nh, sizeof *eh, cmp_emu_hit);
        for (unsigned h = 0; h < nh; h++)
            g->h_hk[h] = eh[h].k, g->h_hs[h] = eh[h].s;
        free(eh);
        hand_out(g, np, nh, piece);
        rc = 0;
    }
out:
    free(keep), free(idx), free(wtok);
    return rc;
}

extern "C" int audit_leak_cuda_scan(audit_leak_cuda *g, const uint8_t *p, size_t n,
                                    const size_t *cut, size_t np, audit_leak_cuda_piece *piece,
                                    char *msg, size_t cap)
{
    const unsigned BS = 256;
    cudaStream_t st = g->st;
    if (!n || !np) {
        for (size_t k = 0; k < np; k++)
            memset(&piece[k], 0, sizeof piece[k]);
        return 0;
    }
    if (n >= (1ull << 31)) {
        snprintf(msg, cap, "CUDA n-gram scan: a batch of %zu bytes (less than 2 GiB)", n);
        return -EINVAL;
    }
    if (g->emu)
        return emu_scan(g, p, n, cut, np, piece);
    CK(grow_dev(&g->p, &g->cap_b, n), "cudaMalloc (bytes)");
    CK(grow_dev(&g->keep, &g->cap_keep, n + 1), "cudaMalloc (flags)");
    CK(grow_dev(&g->idx, &g->cap_idx, n + 1), "cudaMalloc (indices)");
    CK(grow_dev(&g->wtok, &g->cap_wtok, n), "cudaMalloc (words)");
    CK(grow_dev(&g->cut, &g->cap_p, np + 1), "cudaMalloc (pieces)");
    CK(grow_dev(&g->tcut, &g->cap_tcut, np + 1), "cudaMalloc (pieces)");
    CK(grow_dev(&g->flag, &g->cap_flag, np + 1), "cudaMalloc (pieces)");
    CK(grow_host(&g->h_tcut, &g->cap_htcut, np + 1), "cudaMallocHost");
    CK(grow_host(&g->h_flag, &g->cap_hflag, np + 1), "cudaMallocHost");

    CK(cudaMemcpyAsync(g->p, p, n, cudaMemcpyHostToDevice, st), "copy of the text");
    CK(cudaMemcpyAsync(g->cut, cut, (np + 1) * sizeof *cut, cudaMemcpyHostToDevice, st),
       "copy of the cuts");
    CK(cudaMemsetAsync(g->flag, 0, (np + 1) * sizeof *g->flag, st), "memset");
    k_bytes<<<blocks(n, BS), BS, 0, st>>>(g->p, n, g->cut, np, g->flag, g->tmpl, g->tmpl_mask,
                                          g->keep, g->wtok);
    CK(cudaGetLastError(), "k_bytes");
    size_t tb = 0;
    CK(cub::DeviceScan::ExclusiveSum(NULL, tb, g->keep, g->idx, (int)n, st), "scan (size)");
    if (tb > g->cap_tmp) {
        cudaFree(g->tmp);
        g->tmp = NULL, g->cap_tmp = 0;
        CK(cudaMalloc(&g->tmp, tb), "cudaMalloc (scan)");
        g->cap_tmp = tb;
    }
    CK(cub::DeviceScan::ExclusiveSum(g->tmp, tb, g->keep, g->idx, (int)n, st), "scan");
    k_tcut<<<blocks(np + 1, BS), BS, 0, st>>>(g->cut, np, n, g->idx, g->keep, g->tcut);
    CK(cudaGetLastError(), "k_tcut");
    CK(cudaMemcpyAsync(g->h_tcut, g->tcut, (np + 1) * sizeof *g->tcut, cudaMemcpyDeviceToHost, st),
       "copy of the pieces");
    CK(cudaMemcpyAsync(g->h_flag, g->flag, np * sizeof *g->flag, cudaMemcpyDeviceToHost, st),
       "copy of the flags");
    CK(cudaStreamSynchronize(st), "k_bytes, scan");
    size_t ntok = g->h_tcut[np];
    CK(grow_dev(&g->tok, &g->cap_t, ntok + 1), "cudaMalloc (tokens)");
    CK(grow_host(&g->h_tok, &g->cap_ht, ntok + 1), "cudaMallocHost (tokens)");
    k_scatter<<<blocks(n, BS), BS, 0, st>>>(n, g->keep, g->idx, g->wtok, g->tok);
    CK(cudaGetLastError(), "k_scatter");
    CK(cudaMemcpyAsync(g->h_tok, g->tok, ntok * sizeof *g->tok, cudaMemcpyDeviceToHost, st),
       "copy of the tokens");
    /* the n-gram scan; again with room for every hit when they did not fit */
    unsigned nh = 0;
    size_t want_h = 1u << 16;
    for (int pass = 0; pass < 2; pass++) {
        if (!g->cap_h || g->cap_h < want_h) {
            CK(grow_dev(&g->hk, &g->cap_h, want_h), "cudaMalloc (hits)");
            CK(grow_dev(&g->hk2, &g->cap_hk2, want_h), "cudaMalloc (hits)");
            CK(grow_dev(&g->hs, &g->cap_hs, want_h), "cudaMalloc (hits)");
            CK(grow_dev(&g->hs2, &g->cap_hs2, want_h), "cudaMalloc (hits)");
        }
        CK(cudaMemsetAsync(g->nhit, 0, sizeof *g->nhit, st), "memset");
        if (ntok)
            k_ngram<<<blocks(ntok, BS), BS, 0, st>>>(g->tok, ntok, g->tcut, np, g->flag, g->key,
                                                     g->kmask, g->bloom, g->bloom_mask, g->len_mask,
                                                     g->ltop, g->hk, g->hs, g->nhit, g->cap_h);
        CK(cudaGetLastError(), "k_ngram");
        CK(cudaMemcpyAsync(&nh, g->nhit, sizeof nh, cudaMemcpyDeviceToHost, st), "copy");
        CK(cudaStreamSynchronize(st), "k_ngram");
        if (nh <= g->cap_h)
            break;
        want_h = nh;
    }
    if (nh) {
        size_t sb = 0;
        CK(cub::DeviceRadixSort::SortPairs(NULL, sb, g->hk, g->hk2, g->hs, g->hs2, (int)nh, 0, 64,
                                           st),
           "sort (size)");
        if (sb > g->cap_tmp) {
            cudaFree(g->tmp);
            g->tmp = NULL, g->cap_tmp = 0;
            CK(cudaMalloc(&g->tmp, sb), "cudaMalloc (sort)");
            g->cap_tmp = sb;
        }
        CK(cub::DeviceRadixSort::SortPairs(g->tmp, sb, g->hk, g->hk2, g->hs, g->hs2, (int)nh, 0, 64,
                                           st),
           "sort");
        CK(grow_host(&g->h_hk, &g->cap_hhk, nh), "cudaMallocHost (hits)");
        CK(grow_host(&g->h_hs, &g->cap_hhs, nh), "cudaMallocHost (hits)");
        CK(grow_host(&g->h_hit, &g->cap_hhit, nh), "cudaMallocHost (hits)");
        CK(cudaMemcpyAsync(g->h_hk, g->hk2, nh * sizeof *g->h_hk, cudaMemcpyDeviceToHost, st),
           "copy of the hits");
        CK(cudaMemcpyAsync(g->h_hs, g->hs2, nh * sizeof *g->h_hs, cudaMemcpyDeviceToHost, st),
           "copy of the hits");
    }
    CK(cudaStreamSynchronize(st), "copies back");
    hand_out(g, np, nh, piece);
    return 0;
}
