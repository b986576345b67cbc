/* Greedy generation (lm.h, lm_generate_greedy) for any backend, and lm_generate with the
 * reference model. Each new token runs the forward over the whole window (no key/value cache:
 * the reference favours plain code over speed); the window is sized once per call, so
 * activations are allocated once. */
#include <stdlib.h>
#include <string.h>

#include "lm.h"

int lm_generate_greedy(const lm_config *c, lm_step_fn step_fn, void *arg, const uint8_t *prompt,
                       size_t plen, size_t max_new, uint8_t *out, size_t cap, size_t *out_len)
{
    *out_len = 0;
    if (max_new > cap)
        max_new = cap;
    size_t T = plen + max_new;
    if (T > c->max_seq)
        T = c->max_seq;
    if (T == 0)
        return 0;
    int32_t *tok = malloc(T * sizeof *tok), *tgt = malloc(T * sizeof *tgt);
    if (!tok || !tgt) {
        free(tok);
        free(tgt);
        return PTB_ENOMEM;
    }
    for (size_t t = 0; t < T; t++)
        tgt[t] = -1; /* nothing scored */
    /* the sequence so far: prompt then output; the window holds its last T tokens */
    size_t have = plen;
    int rc = 0;
    for (size_t step = 0; step < max_new; step++) {
        size_t n = have < T ? have : T, start = have - n;
        if (n == 0) { /* an empty prompt: start from the end-of-text token */
            tok[0] = LM_EOT;
            n = 1;
        } else {
            for (size_t t = 0; t < n; t++) {
                size_t i = start + t;
                tok[t] = i < plen ? prompt[i] : out[i - plen];
            }
        }
        for (size_t t = n; t < T; t++) /* after the last position: causal, so they do not matter */
            tok[t] = LM_EOT;
        lm_batch b = {.B = 1, .T = (uint32_t)T, .tokens = tok, .targets = tgt};
        const float *l;
        if ((rc = step_fn(arg, &b, n - 1, &l)))
            break;
        uint32_t best = 0;
        for (uint32_t v = 1; v < c->vocab_size; v++)
            if (l[v] > l[best])
                best = v;
        if (best == LM_EOT)
            break;
        out[(*out_len)++] = (uint8_t)best;
        have++;
    }
    free(tok);
    free(tgt);
    return rc;
}

/* the CPU model's step: the reference forward, then the row's logits in place */
static int lm_cpu_step(void *arg, const lm_batch *b, size_t row, const float **logits)
{
    lm_model *m = arg;
    int rc = lm_forward(m, b, NULL);
    if (!rc)
        *logits = lm_logits(m) + row * lm_model_config(m)->vocab_size;
    return rc;
}

int lm_generate(lm_model *m, const uint8_t *prompt, size_t plen, size_t max_new, uint8_t *out,
                size_t cap, size_t *out_len)
{
    return lm_generate_greedy(lm_model_config(m), lm_cpu_step, m, prompt, plen, max_new, out, cap,
                              out_len);
}
