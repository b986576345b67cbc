/* libFuzzer target: the reader of the references `ptb refs` keeps (forensics/audit_refs.c:
 * ref.json and sketch.safetensors), files on disk that anything could have changed.
 *
 * Input: ref.json's text, a NUL byte, then sketch.safetensors' bytes (copied to an aligned
 * buffer, as a mapping would be). Whatever the bytes, audit_ref_parse must return 0,
 * PTB_ECORRUPT or PTB_ENOMEM and never read outside the input (ASan); an accepted reference must
 * hold what audit_refs.h promises: tensors sorted by name and found by audit_ref_find, files
 * named, and each sketched tensor's k floats (1 <= k <= its elements) readable. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit_ckpt_num.h"
#include "audit_refs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    if (!nul)
        return 0;
    size_t jl = (size_t)(nul - data), sl = size - jl - 1;
    void *sk = malloc(sl ? sl : 1);
    if (!sk)
        return 0;
    memcpy(sk, nul + 1, sl);
    audit_ref *r;
    ptb_errbuf eb = {{0}};
    int rc = audit_ref_parse("r", (const char *)data, jl, sk, sl, &r, &eb);
    if (rc && rc != PTB_ECORRUPT && rc != PTB_ENOMEM)
        abort();
    if (rc && !eb.msg[0])
        abort();
    volatile double sum = 0;
    for (size_t i = 0; !rc && i < r->n; i++) {
        const audit_ref_tensor *t = &r->t[i];
        if (!t->name || (i && strcmp(r->t[i - 1].name, t->name) >= 0) ||
            audit_ref_find(r, t->name) != t || t->rank > 16)
            abort();
        if (!t->has_delta)
            continue;
        if (t->k < 1 || t->k > AUDIT_CKPT_SKETCH_MAX || t->k > t->n || !(t->ii >= 0))
            abort();
        for (uint32_t j = 0; j < t->k; j++)
            sum += t->sk[j];
    }
    for (size_t i = 0; !rc && i < r->nfiles; i++)
        if (strnlen(r->files[i].name, sizeof r->files[i].name) == sizeof r->files[i].name)
            abort();
    if (!rc)
        audit_ref_close(r);
    free(sk);
    (void)sum;
    return 0;
}
