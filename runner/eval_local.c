/* `ptb eval --backend local`: ptb's own model (kernels/lm.h) from a checkpoint folder, greedy
 * generation on the CPU or, with CUDA, on the GPU (eval_backend.h). */
#include <stdlib.h>
#include <string.h>

#include "eval_backend.h"
#include "lm.h"
#include "lm_ckpt.h"
#include "lm_cuda.h"

typedef struct local {
    eval_backend b;
    lm_model *m;
    lm_cuda *g; /* NULL on the CPU */
} local;

static int local_complete(eval_backend *b, const char *const *prompts, size_t n, size_t max_tokens,
                          char **outs, char **errs, eval_progress_fn progress, void *arg,
                          ptb_errbuf *eb)
{
    local *l = (local *)b;
    uint8_t *buf = malloc(max_tokens + 1);
    if (!buf)
        return ptb_errf(eb, PTB_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const uint8_t *p = (const uint8_t *)prompts[i];
        int rc =
            l->g ? lm_cuda_generate(l->g, p, strlen(prompts[i]), max_tokens, buf, max_tokens, &len)
                 : lm_generate(l->m, p, strlen(prompts[i]), max_tokens, buf, max_tokens, &len);
        if (rc) {
            errs[i] = strdup(rc == PTB_EIO && l->g ? lm_cuda_errmsg(l->g) : ptb_strerror(rc));
        } else if ((outs[i] = malloc(len + 1))) {
            memcpy(outs[i], buf, len);
            outs[i][len] = 0;
        }
        if (progress)
            progress(arg, i + 1, n);
    }
    free(buf);
    return 0;
}

static void local_free(eval_backend *b)
{
    local *l = (local *)b;
    if (!l)
        return;
    lm_cuda_free(l->g);
    lm_model_free(l->m);
    free(l);
}

int eval_backend_local(const char *dir, bool cuda, eval_backend **out, ptb_errbuf *eb)
{
    *out = NULL;
    local *l = calloc(1, sizeof *l);
    if (!l)
        return ptb_errf(eb, PTB_ENOMEM, "out of memory");
    int rc = lm_ckpt_load(dir, &l->m, eb);
    if (!rc && cuda)
        rc = lm_cuda_new(l->m, LM_CUDA_FP32, &l->g, eb);
    if (rc) {
        local_free(&l->b);
        return rc;
    }
    l->b.name = "local";
    l->b.complete = local_complete;
    l->b.free = local_free;
    *out = &l->b;
    return 0;
}
