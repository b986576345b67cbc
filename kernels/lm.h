/* The reference workload's language model: a small GPT-style decoder over bytes (issue 6).
 *
 *   lm_config c; lm_config_default(&c);            // or read from a checkpoint's config.json
 *   lm_model *m; lm_model_new(&c, &m, &eb);        // parameters allocated, zero
 *   lm_model_init(m, seed);                        // GPT-2 initialisation from a seeded PRNG
 *   lm_batch b (tokens, targets: B x T);           // lm_data.h fills one from prompt/completion
 *   lm_forward(m, &b, &loss);                      // activations kept for the backward
 *   lm_zero_grad(m); lm_backward(m, &b);
 *   lm_adamw_step(m, &opt, step);
 *   lm_model_free(m);
 *
 * Tokens are bytes (0..255) and one end-of-text token (LM_EOT = 256): vocab_size 257. A block is
 * pre-LayerNorm attention + GELU MLP with residuals, as GPT-2; the output projection is the token
 * embedding (tied). Targets of -1 are not scored: the loss is the mean cross-entropy over the
 * scored positions, so a prompt/completion batch trains on the completion only.
 *
 * Parameters live in one float array in this order, each tensor row-major (out, in):
 *   wte (V, C)  wpe (maxT, C)
 *   ln1w (L, C) ln1b (L, C)  qkvw (L, 3C, C) qkvb (L, 3C)  attprojw (L, C, C) attprojb (L, C)
 *   ln2w (L, C) ln2b (L, C)  fcw (L, 4C, C)  fcb (L, 4C)   fcprojw (L, C, 4C) fcprojb (L, C)
 *   lnfw (C) lnfb (C)
 * (llm.c's layout, so its kernels and ours read the same memory.)
 *
 * Everything here runs on the CPU with the reference kernels of kernels/ref/ (lm_ref.h). The
 * loops are parallel only where each output element is computed by one thread in a fixed order
 * (OpenMP over rows), so results are bit-identical whatever the thread count: the same seed and
 * data give the same checkpoint, which replay relies on. */
#ifndef PTB_LM_H
#define PTB_LM_H

#include <stddef.h>
#include <stdint.h>

#include "ptb_error.h"

#define LM_EOT 256
#define LM_VOCAB 257
#define LM_MAX_LAYERS 64
#define LM_MAX_CHANNELS 8192
#define LM_MAX_SEQ 8192

typedef struct lm_config {
    uint32_t vocab_size; /* LM_VOCAB */
    uint32_t max_seq;    /* positions of wpe */
    uint32_t layers;
    uint32_t heads;
    uint32_t channels; /* a multiple of heads */
} lm_config;

/* A small model for the demo: 4 layers, 4 heads, 128 channels, 256 positions. */
void lm_config_default(lm_config *c);

/* 0, or PTB_EINVAL with eb saying which value is out of range. */
int lm_config_check(const lm_config *c, ptb_errbuf *eb);

/* The tensors of the parameter array, in order (LM_NUM_TENSORS of them): the index of each in
 * lm_tensors' info. */
#define LM_NUM_TENSORS 16
enum {
    LM_T_WTE,
    LM_T_WPE,
    LM_T_LN1W,
    LM_T_LN1B,
    LM_T_QKVW,
    LM_T_QKVB,
    LM_T_ATTPROJW,
    LM_T_ATTPROJB,
    LM_T_LN2W,
    LM_T_LN2B,
    LM_T_FCW,
    LM_T_FCB,
    LM_T_FCPROJW,
    LM_T_FCPROJB,
    LM_T_LNFW,
    LM_T_LNFB
};
typedef struct lm_tensor_info {
    const char *name;   /* "wte", "ln1w", ... */
    size_t offset;      /* in floats, into the parameter array */
    size_t count;       /* floats */
    uint32_t per_layer; /* 0 for the whole model, else floats per layer (count / layers) */
    uint32_t rank;
    uint32_t shape[3]; /* of the whole tensor: (L, ...) when per_layer */
    int decay;         /* AdamW weight decay applies (matrices, not biases or norms) */
} lm_tensor_info;

/* Fill info[LM_NUM_TENSORS] for c; returns the total number of parameters. */
size_t lm_tensors(const lm_config *c, lm_tensor_info info[LM_NUM_TENSORS]);

typedef struct lm_model lm_model;

/* A model of config c with zeroed parameters (caller frees with lm_model_free). The activation
 * buffers are allocated on the first forward, for its batch size, and grown when needed. */
int lm_model_new(const lm_config *c, lm_model **out, ptb_errbuf *eb);
void lm_model_free(lm_model *m);

const lm_config *lm_model_config(const lm_model *m);
/* The parameter and gradient arrays (lm_tensors gives their layout); borrowed, valid until
 * lm_model_free. */
float *lm_model_params(lm_model *m);
float *lm_model_grads(lm_model *m);
size_t lm_model_num_params(const lm_model *m);

/* splitmix64: the PRNG of initialisation and data order, the same everywhere (libc's rand is
 * not); *state is advanced. */
uint64_t lm_rng_next(uint64_t *state);

/* GPT-2 initialisation: weights N(0, 0.02) (residual projections scaled by 1/sqrt(2L)), biases
 * zero, norms one; from a PRNG seeded with seed (the same seed gives the same bits). */
void lm_model_init(lm_model *m, uint64_t seed);

/* One batch: B sequences of T tokens; targets[b*T+t] is the token that should follow position
 * t, or -1 where nothing is scored. Borrowed for the call. */
typedef struct lm_batch {
    uint32_t B, T;
    const int32_t *tokens;  /* B*T, each 0..vocab_size-1 */
    const int32_t *targets; /* B*T, -1 or 0..vocab_size-1 */
} lm_batch;

/* Forward pass; *loss (may be NULL) gets the mean loss over the scored positions (0 when none).
 * PTB_EINVAL for T over max_seq or a token out of range; PTB_ENOMEM. Keeps the activations for
 * lm_backward with the same batch. */
int lm_forward(lm_model *m, const lm_batch *b, float *loss);

/* Logits of the last forward (B*T rows of vocab_size); borrowed, valid until the next forward. */
const float *lm_logits(const lm_model *m);

/* Gradients to zero; backward pass of the last forward (same batch) adding into the gradients. */
void lm_zero_grad(lm_model *m);
int lm_backward(lm_model *m, const lm_batch *b);

typedef struct lm_adamw {
    float lr, beta1, beta2, eps, weight_decay;
} lm_adamw;
void lm_adamw_default(lm_adamw *o); /* lr 1e-3, 0.9, 0.95, 1e-8, wd 0.0 */

/* One AdamW update with the current gradients; step counts from 1 (bias correction). */
int lm_adamw_step(lm_model *m, const lm_adamw *o, uint64_t step);

/* Greedy generation: the bytes of prompt (plen), then up to max_new tokens, each the argmax of
 * the last position's logits (ties to the lowest token), until LM_EOT. The context is the last
 * max_seq tokens. out (cap bytes, borrowed) gets the generated bytes, not NUL-terminated;
 * *out_len their count (at most cap: generation stops there too). Returns 0 or the forward's
 * error. Deterministic. */
int lm_generate(lm_model *m, const uint8_t *prompt, size_t plen, size_t max_new, uint8_t *out,
                size_t cap, size_t *out_len);

/* The loop of lm_generate for any backend of config c: step(arg, b, row, &logits) runs the
 * forward of b and points logits at the vocab_size logits of position row (borrowed, valid
 * until the next call); its error stops generation and is returned. */
typedef int (*lm_step_fn)(void *arg, const lm_batch *b, size_t row, const float **logits);
int lm_generate_greedy(const lm_config *c, lm_step_fn step, void *arg, const uint8_t *prompt,
                       size_t plen, size_t max_new, uint8_t *out, size_t cap, size_t *out_len);

#endif
