/* The numbers of the checkpoint detector (audit_ckpt.c) and of `ptb refs` (audit_refs.c): per
 * tensor, the three sums ⟨Δc,Δi⟩, ‖Δc‖², ‖Δi‖² with Δc = final − base and Δi = reference − base,
 * streamed AUDIT_CKPT_CHUNK elements at a time, on the CPU (OpenMP over blocks) or on the GPU
 * (audit_ckpt_cuda.h), and the count sketch of Δi that a stored reference keeps instead of its
 * weights.
 *
 * Exact jobs (x given): the three sums, each element's terms computed in double from the float
 * values (bf16 and f16 widen exactly, f64 is rounded to float first, as everywhere in the
 * detector). The CPU sums a block's elements in index order and the blocks in index order, so
 * its result does not depend on the number of threads.
 *
 * Sketch jobs (x NULL, sk given): the reference is known only by its sketch, k floats. When
 * k == n the sketch is Δi itself (as float) and the dot is exact but for that rounding; else
 * it is the count sketch S(Δi)_b = Σ_{j: h(j)=b} s(j)·Δi_j (h, s from splitmix64 of the tensor's
 * key + j), and ⟨S(Δc), S(Δi)⟩ estimates ⟨Δc,Δi⟩ without bias, with variance
 * (‖Δc‖²‖Δi‖² + ⟨Δc,Δi⟩² − 2 Σ Δc_j²Δi_j²) / k ≤ ‖Δc‖²‖Δi‖²(1 + cos²) / k: a standard error of
 * cos of at most sqrt((1 + cos²)/k) per tensor (docs/AUDIT.md has the measured errors). ‖Δc‖²
 * is computed exactly; ‖Δi‖² was stored exactly. Each sketch job runs on one thread (the
 * buckets' sums in index order). */
#ifndef PTB_AUDIT_CKPT_NUM_H
#define PTB_AUDIT_CKPT_NUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ptb_error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AUDIT_CKPT_CHUNK (1u << 20) /* elements: the unit of streaming and of the CPU's blocks */
#define AUDIT_CKPT_SKETCH_MAX (1u << 24) /* floats of one tensor's sketch */

/* Σ Δc·Δi, Σ Δc², Σ Δi² over some elements */
typedef struct audit_ckpt_dots {
    double dot, cc, ii;
} audit_ckpt_dots;

/* One tensor to compare. The data pointers are borrowed (a mapping of the checkpoint's file)
 * and may be unaligned; dtypes are safetensors_dtype values of F32, F16, BF16 or F64. */
typedef struct audit_ckpt_job {
    const void *f, *b, *x; /* n elements each of the final, the base, the reference; x NULL:
                              a sketch job */
    int fdt, bdt, xdt;
    uint64_t n;
    const float *sk; /* sketch jobs: the stored sketch of Δi, k floats (borrowed; unaligned) */
    uint32_t k;      /* k == n: the sketch is Δi itself */
    uint64_t key;    /* the tensor's hash key (audit_ckpt_sketch_key) */
    audit_ckpt_dots *out; /* zero before the run (so that a failed GPU run can be redone on the
                             CPU); gets dot, cc, and ii for exact jobs (sketch jobs leave ii) */
} audit_ckpt_job;

/* Whether the comparison reads dtype dt (a safetensors_dtype). */
bool audit_ckpt_dtype_ok(int dt);

/* Elements [off, off+n) of data (dtype dt) as float into out. */
void audit_ckpt_to_float(const void *data, int dt, size_t off, size_t n, float *out);

/* The per-tensor math: n elements of the final f, the base b and the reference x, accumulated
 * into d in double. The GPU version (cuda/audit_ckpt_dots.cu) computes the same three sums. */
void audit_ckpt_dots_add(const float *f, const float *b, const float *x, size_t n,
                         audit_ckpt_dots *d);

/* The count sketch's key of a tensor: from the reference's seed and the tensor's name. */
uint64_t audit_ckpt_sketch_key(uint64_t seed, const char *name);

/* The sketch length of a tensor of n elements for a budget of k floats: min(n, k), at least 1. */
uint32_t audit_ckpt_sketch_len(uint64_t n, uint32_t k);

/* bucket and sign of element j under key, for a sketch of k < n buckets */
static inline uint64_t audit_ckpt_mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The sketch of Δi = x − b (n elements) in k = audit_ckpt_sketch_len(n, K) floats into sk, and
 * ‖Δi‖² (exact, double) into *ii. PTB_ENOMEM, else 0. */
int audit_ckpt_sketch_delta(const void *x, int xdt, const void *b, int bdt, uint64_t n,
                            uint64_t key, uint32_t k, float *sk, double *ii);

/* Run the jobs on the CPU with OpenMP (threads <= 0: OpenMP's default). 0 or PTB_ENOMEM. */
int audit_ckpt_dots_cpu(const audit_ckpt_job *jobs, size_t n, int threads);

/* Run the jobs on device "cpu", "cuda" or "auto" (NULL: auto: CUDA when the library loads and a
 * GPU answers, else the CPU). *used (may be NULL) says which ran: "cpu" or "cuda". For "cuda",
 * -ENOTSUP (eb: why) when there is no usable GPU; PTB_EINVAL for another name. */
int audit_ckpt_dots_run(const audit_ckpt_job *jobs, size_t n, const char *device, const char **used,
                        ptb_errbuf *eb);

#ifdef __cplusplus
}
#endif

#endif
