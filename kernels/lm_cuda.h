/* The reference model (lm.h) on an NVIDIA GPU: CUDA kernels and cuBLAS (kernels/cuda/).
 *
 *   lm_cuda *g;
 *   lm_cuda_new(m, LM_CUDA_FP32, &g, &eb);   // copies m's config and parameters to the GPU
 *   lm_cuda_forward(g, &b, &loss); lm_cuda_backward(g, &b); lm_cuda_adamw_step(g, &opt, step);
 *   lm_cuda_download(g, m, &eb);             // parameters back into m (for lm_ckpt_save)
 *   lm_cuda_free(g);
 *
 * The same model, data layout and optimizer as the CPU reference (kernels/ref/), each kernel
 * checked against it (tests/unit/kernels/test_lm_cuda.c). Precision:
 *   LM_CUDA_FP32  every value and every product in fp32 (cuBLAS without TF32);
 *   LM_CUDA_BF16  as torch.autocast(bfloat16): the operands of every matrix product (cuBLAS and
 *                 attention) rounded to bf16, products accumulated and stored in fp32; parameters,
 *                 gradients, optimizer state and every other activation in fp32.
 *
 * Deterministic: no atomics in any reduction (bias, LayerNorm and embedding gradients, the loss
 * are summed in a fixed order), cuBLAS with a fixed workspace and algorithm on one stream, so the
 * same model, batches and steps give bit-identical parameters run after run on the same GPU and
 * software. (Not bit-identical to the CPU: the sums are in another order.)
 *
 * Without CUDA (a build where nvcc was not found) every function returns -ENOTSUP and says so
 * in eb; lm_cuda_available tells before anything is allocated. */
#ifndef PTB_LM_CUDA_H
#define PTB_LM_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "lm.h"
#include "ptb_error.h"

typedef enum { LM_CUDA_FP32 = 0, LM_CUDA_BF16 = 1 } lm_cuda_precision;

/* 0 when this build has CUDA and a device is usable; else -ENOTSUP (no CUDA in this build, no
 * driver, no device) with the reason in eb. */
int lm_cuda_available(ptb_errbuf *eb);

typedef struct lm_cuda lm_cuda;

/* A GPU copy of m (config and parameters; m is borrowed for the call). Caller frees with
 * lm_cuda_free. -ENOTSUP, PTB_ENOMEM (device memory), PTB_EIO (a CUDA error, named in eb). */
int lm_cuda_new(const lm_model *m, lm_cuda_precision prec, lm_cuda **out, ptb_errbuf *eb);
void lm_cuda_free(lm_cuda *g);

/* As lm_forward, lm_backward (which zeroes the gradients first: one batch per step), and
 * lm_adamw_step, on the GPU. *loss (may be NULL) is copied back. Same errors as the CPU
 * versions, and PTB_EIO for a CUDA error (lm_cuda_errmsg says which). */
int lm_cuda_forward(lm_cuda *g, const lm_batch *b, float *loss);
int lm_cuda_backward(lm_cuda *g, const lm_batch *b);
int lm_cuda_adamw_step(lm_cuda *g, const lm_adamw *o, uint64_t step);

/* The message of the last failed call; borrowed, valid until the next call on g. */
const char *lm_cuda_errmsg(const lm_cuda *g);

/* Copy the parameters (and, if grads is non-NULL, the gradients: nparams floats) back to the
 * host: into m, which must have the same config. */
int lm_cuda_download(lm_cuda *g, lm_model *m, float *grads, ptb_errbuf *eb);

/* Logits of row `row` (0..B*T-1) of the last forward into out (vocab_size floats). */
int lm_cuda_logits_row(lm_cuda *g, size_t row, float *out);

/* lm_generate on the GPU: the same contract, the same greedy choice (ties to the lowest). */
int lm_cuda_generate(lm_cuda *g, const uint8_t *prompt, size_t plen, size_t max_new, uint8_t *out,
                     size_t cap, size_t *out_len);

#endif
