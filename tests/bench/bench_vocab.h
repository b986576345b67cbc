/* bench_store: the vocabularies of the synthetic run and the random draws (bench_vocab.c). */
#ifndef PTB_BENCH_VOCAB_H
#define PTB_BENCH_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#define BENCH_NHOSTS 42
#define BENCH_NPROCS 300 /* long-lived processes; exec_id = Zipf rank + 1 */

/* A Zipf distribution over ranks 0..n-1 with exponent s: cumulative probabilities. */
typedef struct bench_zipf {
    double *cdf;
    size_t n;
} bench_zipf;

/* Launch parameters of a kernel (fixed per name, jittered per launch). */
typedef struct bench_kparam {
    uint32_t grid_x, grid_y, block_x, shared_mem, registers, dur_ns;
} bench_kparam;

typedef struct bench_vocab {
    const char *const *kernels; /* nkernels demangled names */
    size_t nkernels;
    bench_kparam *kparam;
    const char *const *paths; /* every path (reads, opens) */
    size_t npaths;
    const char *const *wpaths; /* paths that are written: checkpoints, /tmp, workspace */
    size_t nwpaths;
    bench_zipf zkernel, zpath, zwpath, zhost, zproc, ztool;
} bench_vocab;

/* Built by bench_vocab_init() (thread-safe, once); read-only afterwards. */
extern bench_vocab bench_vocab_g;
int bench_vocab_init(void); /* 0, or -1 when out of memory */

extern const char *const bench_hosts[BENCH_NHOSTS];
extern const char *const bench_tools[9];

uint64_t bench_rng_next(uint64_t s[4]);
void bench_rng_seed(uint64_t s[4], uint64_t seed);
int bench_zipf_init(bench_zipf *z, size_t n, double s);
size_t bench_zipf_draw(const bench_zipf *z, uint64_t s[4]);

#endif
