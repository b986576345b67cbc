/* audit_ckpt_cuda.h for the ptb program: the GPU half of the tensor comparison lives in
 * libptbauditcuda.so (forensics/cuda/, linked with the CUDA runtime) and is loaded with dlopen on
 * first use (ptb_load_lib, as kernels/lm_cuda_load.c): ptb does not link CUDA, and a missing
 * library, driver or GPU is a message (-ENOTSUP), after which `--device auto` uses the CPU.
 *
 * The library: $PTB_AUDIT_CUDA_LIB, else next to the ptb binary in the build tree
 * (runner/../forensics/), a packed tree (lib/) or an installed one (bin/../lib/ptb/). */
#include <errno.h>
#include <pthread.h>

#include "audit_ckpt_cuda.h"
#include "ptb_cli.h"

#ifndef PTB_AUDIT_CUDA_WHY
#define PTB_AUDIT_CUDA_WHY "built without CUDA"
#endif

static struct {
    int rc;
    char msg[4600];
    int (*available)(ptb_errbuf *);
    int (*dots)(const audit_ckpt_job *, size_t, ptb_errbuf *);
} acl;
static pthread_once_t acl_once = PTHREAD_ONCE_INIT;

static void acl_load(void)
{
    static const char *const rel[] = {"../forensics/libptbauditcuda.so", "lib/libptbauditcuda.so",
                                      "../lib/ptb/libptbauditcuda.so", NULL};
    const ptb_sym syms[] = {
        {(void **)&acl.available, "audit_ckpt_cuda_available"},
        {(void **)&acl.dots, "audit_ckpt_cuda_dots"},
    };
    acl.rc = ptb_load_lib("PTB_AUDIT_CUDA_LIB", rel, syms, sizeof syms / sizeof syms[0],
                          "this ptb has no CUDA tensor comparison: " PTB_AUDIT_CUDA_WHY, acl.msg,
                          sizeof acl.msg);
}

static int acl_ready(ptb_errbuf *eb)
{
    pthread_once(&acl_once, acl_load);
    return acl.rc ? ptb_errf(eb, acl.rc, "%s", acl.msg) : 0;
}

int audit_ckpt_cuda_available(ptb_errbuf *eb)
{
    int rc = acl_ready(eb);
    return rc ? rc : acl.available(eb);
}

int audit_ckpt_cuda_dots(const audit_ckpt_job *jobs, size_t n, ptb_errbuf *eb)
{
    int rc = acl_ready(eb);
    return rc ? rc : acl.dots(jobs, n, eb);
}
