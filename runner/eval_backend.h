/* Backends of `ptb eval`: something that completes prompts. One small interface, one file per
 * backend (eval_local.c: ptb's own model on the CPU; eval_openai.c: any OpenAI-compatible
 * completions endpoint, e.g. vLLM serving a real checkpoint). */
#ifndef PTB_EVAL_BACKEND_H
#define PTB_EVAL_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

#include "ptb_error.h"

/* Called after each finished item (any order), from the thread that called complete. */
typedef void (*eval_progress_fn)(void *arg, size_t done, size_t total);

typedef struct eval_backend eval_backend;
struct eval_backend {
    const char *name; /* "local", "openai" */
    /* Complete prompts[0..n) greedily (temperature 0), at most max_tokens tokens each. For each
     * item i, outs[i] gets the answer (malloc'd, caller frees) or stays NULL with errs[i]
     * (malloc'd, caller frees) saying why that item failed. Returns 0 when every item was tried,
     * or a negative code when the backend as a whole failed (eb says why; items not tried keep
     * NULL in both). */
    int (*complete)(eval_backend *b, const char *const *prompts, size_t n, size_t max_tokens,
                    char **outs, char **errs, eval_progress_fn progress, void *arg, ptb_errbuf *eb);
    void (*free)(eval_backend *b);
};

/* ptb's model from checkpoint folder dir (kernels/lm_ckpt.h), on the CPU or (cuda) the GPU in
 * fp32. Errors: those of lm_ckpt_load and lm_cuda_new (-ENOTSUP without CUDA or a GPU). */
int eval_backend_local(const char *dir, bool cuda, eval_backend **out, ptb_errbuf *eb);

typedef struct eval_openai_options {
    const char *url;     /* base URL, e.g. "http://127.0.0.1:8000/v1"; /completions is added */
    const char *model;   /* the "model" field of each request */
    const char *api_key; /* sent as "Authorization: Bearer ..."; NULL for none */
    int concurrency;     /* requests in flight, 1..256 (0 = the default 8) */
    int timeout_s;       /* per request (0 = the default 60) */
    int retries;         /* per item after the first attempt, on connection errors, timeouts,
                            429 and 5xx; 0 = none, negative = the default 3 */
} eval_openai_options;

/* Requests go to options->url (strings copied). PTB_EINVAL for a URL that is not http(s). */
int eval_backend_openai(const eval_openai_options *o, eval_backend **out, ptb_errbuf *eb);

#endif
