/* audit_leak_cuda.h for the ptb program: the GPU half of the n-gram scan lives in
 * libptbauditcuda.so (forensics/cuda/audit_leak_scan.cu, linked with the CUDA runtime) and is
 * loaded with dlopen on first use (ptb_load_lib, as kernels/lm_cuda_load.c): ptb does not link
 * CUDA, and a missing library, driver or GPU is a message (-ENOTSUP), after which `--device auto`
 * scans on the CPU. Programs that link libptbauditcuda.so directly do not use this file.
 *
 * The library: $PTB_AUDIT_CUDA_LIB, else next to the ptb binary in the build tree
 * (runner/../forensics/), a packed tree (lib/) or an installed one (bin/../lib/ptb/). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include "audit_leak_cuda.h"
#include "ptb_cli.h"

#ifndef PTB_AUDIT_CUDA_WHY
#define PTB_AUDIT_CUDA_WHY "built without CUDA"
#endif

static struct {
    int rc;
    char msg[4600];
    int (*available)(char *, size_t);
    int (*new_)(const audit_leak_cuda_tables *, audit_leak_cuda **, char *, size_t);
    void (*free_)(audit_leak_cuda *);
    int (*scan)(audit_leak_cuda *, const uint8_t *, size_t, const size_t *, size_t,
                audit_leak_cuda_piece *, char *, size_t);
} alc;
static pthread_once_t alc_once = PTHREAD_ONCE_INIT;

static void alc_load(void)
{
    static const char *const rel[] = {"../forensics/libptbauditcuda.so", "lib/libptbauditcuda.so",
                                      "../lib/ptb/libptbauditcuda.so", NULL};
    const ptb_sym syms[] = {
        {(void **)&alc.available, "audit_leak_cuda_available"},
        {(void **)&alc.new_, "audit_leak_cuda_new"},
        {(void **)&alc.free_, "audit_leak_cuda_free"},
        {(void **)&alc.scan, "audit_leak_cuda_scan"},
    };
    alc.rc = ptb_load_lib("PTB_AUDIT_CUDA_LIB", rel, syms, sizeof syms / sizeof syms[0],
                          "this ptb has no CUDA n-gram scan: " PTB_AUDIT_CUDA_WHY, alc.msg,
                          sizeof alc.msg);
}

static int alc_ready(char *msg, size_t cap)
{
    pthread_once(&alc_once, alc_load);
    if (alc.rc && msg && cap)
        snprintf(msg, cap, "%s", alc.msg);
    return alc.rc;
}

int audit_leak_cuda_available(char *msg, size_t cap)
{
    int rc = alc_ready(msg, cap);
    return rc ? rc : alc.available(msg, cap);
}

int audit_leak_cuda_new(const audit_leak_cuda_tables *t, audit_leak_cuda **out, char *msg,
                        size_t cap)
{
    *out = NULL;
    int rc = alc_ready(msg, cap);
    return rc ? rc : alc.new_(t, out, msg, cap);
}

/* Every other call has a g, which only a loaded library hands out. */
void audit_leak_cuda_free(audit_leak_cuda *g)
{
    if (g)
        alc.free_(g);
}

int audit_leak_cuda_scan(audit_leak_cuda *g, const uint8_t *p, size_t n, const size_t *cut,
                         size_t npiece, audit_leak_cuda_piece *piece, char *msg, size_t cap)
{
    return alc.scan(g, p, n, cut, npiece, piece, msg, cap);
}
