/* The checkpoint detector's tensor comparison on the GPU (cuda/audit_ckpt_dots.cu, in
 * libptbauditcuda.so). ptb loads the library on first use (audit_cuda_load.c); programs that
 * link it directly (its test, its benchmark) call the same functions.
 *
 * The GPU gives the CPU's numbers (audit_ckpt_num.h) within a stated tolerance, not bit for bit:
 * both compute each element's terms in double from the same float values, only the order of
 * the double sums differs (the CPU: in index order; the GPU: per thread, then a tree per block,
 * then the blocks' atomic adds). Each sum of N terms then differs by at most
 * 2·N·2^-53·Σ|term| (in practice far less); the test (test_audit_ckpt_cuda) holds the GPU to
 * |gpu − cpu| ≤ 1e-9·Σ|term| with Σ|Δc·Δi| ≤ sqrt(‖Δc‖²‖Δi‖²). Sketch jobs: the buckets are
 * summed with atomic adds in double, in any order: the same bound per bucket.
 *
 * Streaming: the jobs' data (a mapping of the checkpoint files) is copied chunk by chunk into
 * pinned host buffers and uploaded on two streams, so that reading the next chunk overlaps the
 * copy and the kernel of the previous one; the GPU holds a few chunks, never a model. */
#ifndef PTB_AUDIT_CKPT_CUDA_H
#define PTB_AUDIT_CKPT_CUDA_H

#include "audit_ckpt_num.h"
#include "ptb_error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 0 when the library loaded and a GPU answers; -ENOTSUP with eb saying why otherwise. */
int audit_ckpt_cuda_available(ptb_errbuf *eb);

/* Run the jobs (audit_ckpt_num.h) on the GPU: the same outputs as audit_ckpt_dots_cpu within
 * the tolerance above. 0, or a negative code (-ENOTSUP, PTB_ENOMEM, PTB_EIO for a CUDA error)
 * with eb saying why; the outputs are then undefined. */
int audit_ckpt_cuda_dots(const audit_ckpt_job *jobs, size_t n, ptb_errbuf *eb);

#ifdef __cplusplus
}
#endif

#endif
