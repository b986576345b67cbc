/* Training data for the language model (lm.h): JSONL records {"prompt": "...", "completion":
 * "..."} read into examples, and batches of them.
 *
 * An example is the bytes of the prompt, then of the completion, then LM_EOT. Only the
 * completion (and the LM_EOT) is scored: the target of position t is token t+1 when that token
 * belongs to the completion, else -1. An example longer than T+1 tokens loses the start of its
 * prompt first (the completion is what is learnt), then the end of its completion. Shorter ones
 * are padded with LM_EOT, not scored.
 *
 * Batches take the examples in a shuffled order (a seeded PRNG: the same seed gives the same
 * order), one epoch after another. */
#ifndef PTB_LM_DATA_H
#define PTB_LM_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "lm.h"
#include "ptb_error.h"

#define LM_DATA_MAX_EXAMPLES 10000000
#define LM_DATA_MAX_TEXT (1u << 20) /* bytes of a prompt or completion */

typedef struct lm_data lm_data;

/* Read path (a JSONL file; "-" is not accepted: training reads its data twice). Every line must
 * be an object with string members "prompt" and "completion" (other members ignored); a bad line
 * fails the whole read with its line number in eb (PTB_EPARSE), an empty file too. Blank lines
 * are skipped. Caller frees with lm_data_free. */
int lm_data_read(const char *path, lm_data **out, ptb_errbuf *eb);
void lm_data_free(lm_data *d);

size_t lm_data_count(const lm_data *d);
/* Example i: its prompt and completion bytes (borrowed, valid until lm_data_free). */
void lm_data_example(const lm_data *d, size_t i, const uint8_t **prompt, size_t *plen,
                     const uint8_t **completion, size_t *clen);

/* Tokens and targets of one example in a window of T positions (tokens[T], targets[T]). Returns
 * the number of scored positions. */
int lm_data_window(const lm_data *d, size_t i, uint32_t T, int32_t *tokens, int32_t *targets);

/* A batch sampler over d (borrowed). */
typedef struct lm_sampler {
    const lm_data *d;
    uint64_t rng;
    size_t *order, next;
    uint64_t epoch;
} lm_sampler;
int lm_sampler_init(lm_sampler *s, const lm_data *d, uint64_t seed);
void lm_sampler_free(lm_sampler *s);
/* Fill tokens/targets (B*T each) with the next B examples; returns the scored positions. */
int lm_sampler_next(lm_sampler *s, uint32_t B, uint32_t T, int32_t *tokens, int32_t *targets);

#endif
