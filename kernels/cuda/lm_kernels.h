/* The CUDA kernels of the reference model (lm_cuda.h), one host wrapper per kernel of
 * kernels/ref/lm_ref.h, on device pointers. The unit test (tests/unit/kernels/test_lm_cuda.c)
 * checks each against its lm_ref_* twin and the benchmark (tests/bench/bench_lm_cuda.cu) times
 * each; lm_cuda.cu builds the model from them.
 *
 *   lm_cu_ctx *x; lm_cu_ctx_new(LM_CUDA_FP32, &x, &eb);   // a stream, a cuBLAS handle
 *   lm_cu_matmul_forward(x, out, inp, w, b, B, T, C, OC);   // queued on x's stream
 *   lm_cu_sync(x);                                          // waits; PTB_EIO on a CUDA error
 *
 * Every wrapper has the arguments of its lm_ref_* twin after the context, all arrays in device
 * memory (tokens and targets too), and the same contract: the backward wrappers add (+=) into
 * their gradient outputs, except where a comment below says that a scratch output (datt,
 * dpreatt) is overwritten. They queue work on the context's one stream and return 0, or PTB_EIO
 * when a launch or cuBLAS call fails (lm_cu_ctx_errmsg says which); PTB_ENOMEM when scratch
 * memory could not be had. Errors of the kernels themselves show at the next lm_cu_sync.
 *
 * Deterministic: no atomics. Sums across threads (bias, LayerNorm weight and embedding
 * gradients, the loss) are taken in a fixed order that depends only on the shapes; cuBLAS has
 * a fixed workspace on one stream.
 *
 * Precision (lm_cuda.h): in BF16 the two operands of every matrix product (the matmuls and the
 * four products of the attention) are rounded to bf16 (into scratch memory, or by the kernel
 * that produced them: the *16 copies of the _ex wrappers) and multiplied with fp32 accumulation
 * into fp32; everything else is fp32 in both modes. */
#ifndef PTB_LM_KERNELS_H
#define PTB_LM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lm_cu_ctx lm_cu_ctx;

/* prec: 0 = fp32 (LM_CUDA_FP32), 1 = bf16 (LM_CUDA_BF16). On the current device. Caller frees
 * with lm_cu_ctx_free. PTB_EIO (no device, a CUDA or cuBLAS error) with the reason in errmsg
 * (512 bytes, may be NULL). */
int lm_cu_ctx_new(int prec, lm_cu_ctx **out, char *errmsg, size_t errlen);
void lm_cu_ctx_free(lm_cu_ctx *x);
int lm_cu_ctx_precision(const lm_cu_ctx *x);
/* The message of the last error on x; borrowed, valid until the next call on x. */
const char *lm_cu_ctx_errmsg(const lm_cu_ctx *x);
/* The context's stream (a cudaStream_t), for callers that time it with events. */
void *lm_cu_ctx_stream(lm_cu_ctx *x);
/* Wait for the stream; PTB_EIO when something queued on it failed. */
int lm_cu_sync(lm_cu_ctx *x);

/* Device memory: *p gets n bytes (zeroed); free with lm_cu_free. Copies are synchronous on
 * the context's stream. */
int lm_cu_alloc(lm_cu_ctx *x, void **p, size_t n);
void lm_cu_free(void *p);
int lm_cu_upload(lm_cu_ctx *x, void *dst, const void *src, size_t n);
int lm_cu_download(lm_cu_ctx *x, void *dst, const void *src, size_t n);
int lm_cu_zero(lm_cu_ctx *x, void *p, size_t n); /* queued */

/* ------------------------------------------------------------------ the kernels */

int lm_cu_encoder_forward(lm_cu_ctx *x, float *out, const int32_t *tokens, const float *wte,
                          const float *wpe, int B, int T, int C);
/* dwte: each vocabulary row sums its positions in order (a block per row scans the tokens);
 * dwpe: each position sums over b in order. V is the rows of dwte (the ref does not need it). */
int lm_cu_encoder_backward(lm_cu_ctx *x, float *dwte, float *dwpe, const float *dout,
                           const int32_t *tokens, int B, int T, int C, int V);

int lm_cu_layernorm_forward(lm_cu_ctx *x, float *out, float *mean, float *rstd, const float *inp,
                            const float *weight, const float *bias, int B, int T, int C);
int lm_cu_layernorm_backward(lm_cu_ctx *x, float *dinp, float *dweight, float *dbias,
                             const float *dout, const float *inp, const float *weight,
                             const float *mean, const float *rstd, int B, int T, int C);

int lm_cu_matmul_forward(lm_cu_ctx *x, float *out, const float *inp, const float *weight,
                         const float *bias, int B, int T, int C, int OC);
int lm_cu_matmul_backward(lm_cu_ctx *x, float *dinp, float *dweight, float *dbias,
                          const float *dout, const float *inp, const float *weight, int B, int T,
                          int C, int OC);

int lm_cu_attention_forward(lm_cu_ctx *x, float *out, float *preatt, float *att, const float *inp,
                            int B, int T, int C, int NH);
/* dinp += as the ref; dpreatt and datt are overwritten (scratch: the model's are zero before
 * the ref adds into them, so the results are the same). */
int lm_cu_attention_backward(lm_cu_ctx *x, float *dinp, float *dpreatt, float *datt,
                             const float *dout, const float *inp, const float *att, int B, int T,
                             int C, int NH);

int lm_cu_gelu_forward(lm_cu_ctx *x, float *out, const float *inp, int N);
int lm_cu_gelu_backward(lm_cu_ctx *x, float *dinp, const float *inp, const float *dout, int N);
int lm_cu_residual_forward(lm_cu_ctx *x, float *out, const float *a, const float *b, int N);
int lm_cu_residual_backward(lm_cu_ctx *x, float *da, float *db, const float *dout, int N);

/* As the ref, *loss and *n copied back (this one waits for the stream). */
int lm_cu_crossentropy_forward(lm_cu_ctx *x, float *probs, const float *logits,
                               const int32_t *targets, int B, int T, int V, int *n, float *loss);
int lm_cu_crossentropy_backward(lm_cu_ctx *x, float *dlogits, const float *probs,
                                const int32_t *targets, int B, int T, int V, int n);

/* The fused causal attention (lm_kernels_flash.cu): the same out and dinp as
 * lm_cu_attention_forward/backward (FlashAttention-2 style: tiles of 64 queries x 64 keys, online
 * softmax), without the (B, NH, T, T) scores and probabilities: the forward keeps instead, per
 * row, lse (B*NH*T floats, device) = log2 of the sum over the row of exp2(scores * log2(e)),
 * which the backward reads with the forward's out. No atomics: dk and dv are summed by one block
 * per 64 keys, dq by one per 64 queries, each in a fixed order. FP32: fp32 FMA, no tensor cores;
 * BF16: q, k, v, dout, the probabilities and their gradient rounded to bf16 before the tensor
 * core products, fp32 accumulation, softmax and outputs (lm_kernels_flash.cu says exactly).
 * For head sizes C/NH up to 128 (lm_cu_attention_fused_supported); else PTB_EINVAL. */
int lm_cu_attention_fused_supported(int C, int NH);
int lm_cu_attention_fused_forward(lm_cu_ctx *x, float *out, float *lse, const float *inp, int B,
                                  int T, int C, int NH);
/* dinp += as the ref's; dout, inp, out, lse as the forward's */
int lm_cu_attention_fused_backward(lm_cu_ctx *x, float *dinp, const float *dout, const float *inp,
                                   const float *out, const float *lse, int B, int T, int C, int NH);
/* For the benchmark: the FP32 fused attention's thread layout, tx threads per row of a 64 x 64
 * tile: 8 (the default: 128 threads, 4 x 8 scores each) or 16 (256 threads, 4 x 4). */
void lm_cu_ctx_flash_layout(lm_cu_ctx *x, int tx);

/* ------------------------------------------------------------------ for the model (lm_cuda.cu) */

/* bf16 copies: every `void *...16` below is a device array of __nv_bfloat16 of the shape of its
 * fp32 twin, or NULL. An output's copy is the fp32 value rounded to nearest even (the rounding
 * that lm_cu_gemm does in BF16), written by the kernel that computes the value; an operand's copy
 * given to a matmul is used instead of rounding the fp32 array (which is then not read, and may
 * be NULL). Where an fp32 output is marked "may be NULL", only the copy is written. */
int lm_cu_to_bf16(lm_cu_ctx *x, void *dst16, const float *src, size_t n);
int lm_cu_layernorm_forward_ex(lm_cu_ctx *x, float *out /* may be NULL */, void *out16, float *mean,
                               float *rstd, const float *inp, const float *weight,
                               const float *bias, int B, int T, int C);
int lm_cu_matmul_forward_ex(lm_cu_ctx *x, float *out, const float *inp, const void *inp16,
                            const float *weight, const void *weight16, const float *bias, int B,
                            int T, int C, int OC);
int lm_cu_gelu_forward_ex(lm_cu_ctx *x, float *out /* may be NULL */, void *out16, const float *inp,
                          int N);
int lm_cu_crossentropy_backward_ex(lm_cu_ctx *x, float *dlogits /* may be NULL */, void *dlogits16,
                                   const float *probs, const int32_t *targets, int B, int T, int V,
                                   int n);
/* AdamW that also writes the updated parameters' bf16 copy */
int lm_cu_adamw_ex(lm_cu_ctx *x, float *params, void *params16, const float *grads, float *m,
                   float *v, size_t n, float lr, float beta1, float beta2, float eps, float wd,
                   float c1, float c2);
int lm_cu_attention_fused_forward_ex(lm_cu_ctx *x, float *out, void *out16, float *lse,
                                     const float *inp, int B, int T, int C, int NH);
int lm_cu_attention_fused_backward_ex(lm_cu_ctx *x, float *dinp, void *dinp16, const float *dout,
                                      const float *inp, const float *out, const float *lse, int B,
                                      int T, int C, int NH, int acc);

/* The same kernels with acc = 0: outputs overwritten (=) instead of added into (dinp of the
 * matmul, attention and LayerNorm backward, dinp of GELU's), which saves zeroing them. */
int lm_cu_matmul_backward_ex(lm_cu_ctx *x, float *dinp, float *dweight, float *dbias,
                             const float *dout, const void *dout16, const float *inp,
                             const void *inp16, const float *weight, const void *weight16, int B,
                             int T, int C, int OC, int acc);
int lm_cu_layernorm_backward_ex(lm_cu_ctx *x, float *dinp, void *dinp16, float *dweight,
                                float *dbias, const float *dout, const float *inp,
                                const float *weight, const float *mean, const float *rstd, int B,
                                int T, int C, int acc);
int lm_cu_attention_backward_ex(lm_cu_ctx *x, float *dinp, float *dpreatt, float *datt,
                                const float *dout, const float *inp, const float *att, int B, int T,
                                int C, int NH, int acc);
int lm_cu_gelu_backward_ex(lm_cu_ctx *x, float *dinp, void *dinp16, const float *inp,
                           const float *dout, int N, int acc);
/* Cross-entropy forward without the copy back: probs, and into dsum (2 doubles, device) the loss
 * summed over the scored rows (in double, in a fixed order) and the count of those rows. */
int lm_cu_crossentropy_forward_sum(lm_cu_ctx *x, float *probs, const float *logits,
                                   const int32_t *targets, int B, int T, int V, double *dsum);

/* AdamW over n values (one tensor): c1, c2 the bias corrections 1 - beta^step. */
int lm_cu_adamw(lm_cu_ctx *x, float *params, const float *grads, float *m, float *v, size_t n,
                float lr, float beta1, float beta2, float eps, float wd, float c1, float c2);

#ifdef __cplusplus
}
#endif

#endif
