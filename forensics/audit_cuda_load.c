/* audit_leak_cuda.h and audit_ckpt_cuda.h for the ptb program: the GPU halves of the n-gram scan
 * and of the tensor comparison live in libptbauditcuda.so (forensics/cuda/, linked with the CUDA
 * runtime), loaded with dlopen on first use (ptb_load_lib, as kernels/lm_cuda_load.c): ptb does
 * not link CUDA, and a missing library, driver or GPU is a message (-ENOTSUP), after which
 * `--device auto` uses the CPU. Programs that link libptbauditcuda.so directly (its tests, its
 * benchmarks) do not use this file.
 *
 * The library: $PTB_AUDIT_CUDA_LIB, else next to the ptb binary in the build tree
 * (runner/../forensics/), a packed tree (lib/) or an installed one (bin/../lib/ptb/). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include "audit_ckpt_cuda.h"
#include "audit_leak_cuda.h"
#include "ptb_cli.h"

#ifndef PTB_AUDIT_CUDA_WHY
#define PTB_AUDIT_CUDA_WHY "built without CUDA"
#endif

static struct {
    int rc;
    char msg[4600];
    int (*leak_available)(char *, size_t);
    int (*leak_new)(const audit_leak_cuda_tables *, audit_leak_cuda **, char *, size_t);
    void (*leak_free)(audit_leak_cuda *);
    int (*leak_scan)(audit_leak_cuda *, const uint8_t *, size_t, const size_t *, size_t,
                     audit_leak_cuda_piece *, char *, size_t);
    int (*ckpt_available)(ptb_errbuf *);
    int (*ckpt_dots)(const audit_ckpt_job *, size_t, ptb_errbuf *);
} acl;
static pthread_once_t acl_once = PTHREAD_ONCE_INIT;

static void acl_load(void)
{
    static const char *const rel[] = {"../forensics/libptbauditcuda.so", "lib/libptbauditcuda.so",
                                      "../lib/ptb/libptbauditcuda.so", NULL};
    const ptb_sym syms[] = {
        {(void **)&acl.leak_available, "audit_leak_cuda_available"},
        {(void **)&acl.leak_new, "audit_leak_cuda_new"},
        {(void **)&acl.leak_free, "audit_leak_cuda_free"},
        {(void **)&acl.leak_scan, "audit_leak_cuda_scan"},
        {(void **)&acl.ckpt_available, "audit_ckpt_cuda_available"},
        {(void **)&acl.ckpt_dots, "audit_ckpt_cuda_dots"},
    };
    acl.rc = ptb_load_lib("PTB_AUDIT_CUDA_LIB", rel, syms, sizeof syms / sizeof syms[0],
                          "this ptb has no CUDA code for the audit: " PTB_AUDIT_CUDA_WHY, acl.msg,
                          sizeof acl.msg);
}

static int acl_ready(char *msg, size_t cap)
{
    pthread_once(&acl_once, acl_load);
    if (acl.rc && msg && cap)
        snprintf(msg, cap, "%s", acl.msg);
    return acl.rc;
}

/* ------------------------------------------------------------------ the n-gram scan */

int audit_leak_cuda_available(char *msg, size_t cap)
{
    int rc = acl_ready(msg, cap);
    return rc ? rc : acl.leak_available(msg, cap);
}

int audit_leak_cuda_new(const audit_leak_cuda_tables *t, audit_leak_cuda **out, char *msg,
                        size_t cap)
{
    *out = NULL;
    int rc = acl_ready(msg, cap);
    return rc ? rc : acl.leak_new(t, out, msg, cap);
}

/* Every other call has a g, which only a loaded library hands out. */
void audit_leak_cuda_free(audit_leak_cuda *g)
{
    if (g)
        acl.leak_free(g);
}

int audit_leak_cuda_scan(audit_leak_cuda *g, const uint8_t *p, size_t n, const size_t *cut,
                         size_t npiece, audit_leak_cuda_piece *piece, char *msg, size_t cap)
{
    return acl.leak_scan(g, p, n, cut, npiece, piece, msg, cap);
}

/* ------------------------------------------------------------------ the tensor comparison */

static int acl_ready_eb(ptb_errbuf *eb)
{
    int rc = acl_ready(NULL, 0);
    return rc ? ptb_errf(eb, rc, "%s", acl.msg) : 0;
}

int audit_ckpt_cuda_available(ptb_errbuf *eb)
{
    int rc = acl_ready_eb(eb);
    return rc ? rc : acl.ckpt_available(eb);
}

int audit_ckpt_cuda_dots(const audit_ckpt_job *jobs, size_t n, ptb_errbuf *eb)
{
    int rc = acl_ready_eb(eb);
    return rc ? rc : acl.ckpt_dots(jobs, n, eb);
}
