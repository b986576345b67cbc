/* lm_cuda.h for the ptb program: the CUDA backend lives in libptblmcuda.so (kernels/cuda/, linked
 * with the CUDA runtime and cuBLAS) and is loaded with dlopen on first use. Linking cuBLAS into
 * ptb itself would make every command map ~700 MB of libraries at start (0.5 s for `ptb --help`)
 * and ptb would not start at all on a machine without them; this way only `--device cuda` pays,
 * and a missing library, driver or GPU is an error message (-ENOTSUP), as in a build without CUDA.
 *
 * The library: $PTB_LM_CUDA_LIB, else next to the ptb binary in the build tree
 * (runner/../kernels/), a packed tree (lib/) or an installed one (bin/../lib/ptb/). Programs that
 * link libptblmcuda.so directly (its tests, its benchmark) do not use this file. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "lm_cuda.h"
#include "ptb_cli.h"

static struct {
    int rc;
    char msg[4600];
    int (*available)(ptb_errbuf *);
    int (*new_)(const lm_model *, lm_cuda_precision, lm_cuda **, ptb_errbuf *);
    void (*free_)(lm_cuda *);
    int (*forward)(lm_cuda *, const lm_batch *, float *);
    int (*backward)(lm_cuda *, const lm_batch *);
    int (*adamw_step)(lm_cuda *, const lm_adamw *, uint64_t);
    const char *(*errmsg)(const lm_cuda *);
    int (*download)(lm_cuda *, lm_model *, float *, ptb_errbuf *);
    int (*logits_row)(lm_cuda *, size_t, float *);
    int (*generate)(lm_cuda *, const uint8_t *, size_t, size_t, uint8_t *, size_t, size_t *);
} lcl;
static pthread_once_t lcl_once = PTHREAD_ONCE_INIT;

static void lcl_load(void)
{
    static const char *const rel[] = {"../kernels/libptblmcuda.so", "lib/libptblmcuda.so",
                                      "../lib/ptb/libptblmcuda.so", NULL};
    const ptb_sym syms[] = {
        {(void **)&lcl.available, "lm_cuda_available"},
        {(void **)&lcl.new_, "lm_cuda_new"},
        {(void **)&lcl.free_, "lm_cuda_free"},
        {(void **)&lcl.forward, "lm_cuda_forward"},
        {(void **)&lcl.backward, "lm_cuda_backward"},
        {(void **)&lcl.adamw_step, "lm_cuda_adamw_step"},
        {(void **)&lcl.errmsg, "lm_cuda_errmsg"},
        {(void **)&lcl.download, "lm_cuda_download"},
        {(void **)&lcl.logits_row, "lm_cuda_logits_row"},
        {(void **)&lcl.generate, "lm_cuda_generate"},
    };
    lcl.rc =
        ptb_load_lib("PTB_LM_CUDA_LIB", rel, syms, sizeof syms / sizeof syms[0],
                     "this ptb has no CUDA backend: " PTB_LM_CUDA_WHY, lcl.msg, sizeof lcl.msg);
}

static int lcl_ready(ptb_errbuf *eb)
{
    pthread_once(&lcl_once, lcl_load);
    return lcl.rc ? ptb_errf(eb, lcl.rc, "%s", lcl.msg) : 0;
}

int lm_cuda_available(ptb_errbuf *eb)
{
    int rc = lcl_ready(eb);
    return rc ? rc : lcl.available(eb);
}

int lm_cuda_new(const lm_model *m, lm_cuda_precision prec, lm_cuda **out, ptb_errbuf *eb)
{
    *out = NULL;
    int rc = lcl_ready(eb);
    return rc ? rc : lcl.new_(m, prec, out, eb);
}

/* Every other call has a g, which only a loaded library hands out. */
void lm_cuda_free(lm_cuda *g)
{
    if (g)
        lcl.free_(g);
}

int lm_cuda_forward(lm_cuda *g, const lm_batch *b, float *loss)
{
    return lcl.forward(g, b, loss);
}

int lm_cuda_backward(lm_cuda *g, const lm_batch *b)
{
    return lcl.backward(g, b);
}

int lm_cuda_adamw_step(lm_cuda *g, const lm_adamw *o, uint64_t step)
{
    return lcl.adamw_step(g, o, step);
}

const char *lm_cuda_errmsg(const lm_cuda *g)
{
    return lcl.errmsg(g);
}

int lm_cuda_download(lm_cuda *g, lm_model *m, float *grads, ptb_errbuf *eb)
{
    return lcl.download(g, m, grads, eb);
}

int lm_cuda_logits_row(lm_cuda *g, size_t row, float *out)
{
    return lcl.logits_row(g, row, out);
}

int lm_cuda_generate(lm_cuda *g, const uint8_t *prompt, size_t plen, size_t max_new, uint8_t *out,
                     size_t cap, size_t *out_len)
{
    return lcl.generate(g, prompt, plen, max_new, out, cap, out_len);
}
