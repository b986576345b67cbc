/* CPU reference kernels of the language model (lm.h): each layer's forward and backward as
 * plain loops with shape comments, after llm.c's train_gpt2.c. The CUDA kernels are checked
 * against these. B batch, T time, C channels, NH heads, OC output channels, V vocabulary.
 *
 * Backward functions add (+=) into their gradient outputs. Loops run in parallel (OpenMP) only
 * over outputs that one thread computes alone, in a fixed order: results do not depend on the
 * number of threads. */
#ifndef PTB_LM_REF_H
#define PTB_LM_REF_H

#include <stdint.h>

/* out (B,T,C) = wte[tokens] (V,C) + wpe[t] (maxT,C) */
void lm_ref_encoder_forward(float *out, const int32_t *tokens, const float *wte, const float *wpe,
                            int B, int T, int C);
void lm_ref_encoder_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tokens,
                             int B, int T, int C);

/* out (B,T,C) = (inp - mean) * rstd * weight + bias; mean, rstd (B,T) kept for the backward */
void lm_ref_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                              const float *weight, const float *bias, int B, int T, int C);
void lm_ref_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *weight, const float *mean,
                               const float *rstd, int B, int T, int C);

/* out (B,T,OC) = inp (B,T,C) @ weight^T (OC,C) + bias (OC; may be NULL) */
void lm_ref_matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
                           int B, int T, int C, int OC);
/* dbias may be NULL */
void lm_ref_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, int B, int T, int C, int OC);

/* inp (B,T,3C) holds q, k, v; preatt, att (B,NH,T,T); out (B,T,C). Causal, scale 1/sqrt(C/NH). */
void lm_ref_attention_forward(float *out, float *preatt, float *att, const float *inp, int B, int T,
                              int C, int NH);
void lm_ref_attention_backward(float *dinp, float *dpreatt, float *datt, const float *dout,
                               const float *inp, const float *att, int B, int T, int C, int NH);

/* GELU, tanh approximation, over N values */
void lm_ref_gelu_forward(float *out, const float *inp, int N);
void lm_ref_gelu_backward(float *dinp, const float *inp, const float *dout, int N);

/* out = a + b over N values; backward adds dout to both */
void lm_ref_residual_forward(float *out, const float *a, const float *b, int N);
void lm_ref_residual_backward(float *da, float *db, const float *dout, int N);

/* probs (B,T,V) = softmax(logits); returns the mean of -log probs[target] over the targets that
 * are not -1 (0 when none), *n the count of them. */
float lm_ref_crossentropy_forward(float *probs, const float *logits, const int32_t *targets, int B,
                                  int T, int V, int *n);
/* dlogits (B,T,V) = (probs - onehot(target)) / n where target != -1, else 0 (overwritten) */
void lm_ref_crossentropy_backward(float *dlogits, const float *probs, const int32_t *targets, int B,
                                  int T, int V, int n);

#endif
