/* libFuzzer target: the safetensors reader (kernels/safetensors.c), which reads checkpoints that
 * agents and the network hand us.
 *
 * Input: one file. Whatever the bytes, safetensors_parse must return 0 or PTB_ECORRUPT with a
 * message, and never read outside the input (ASan). An accepted file must hold what the reader
 * promises: tensors sorted by name with unique names, each one's data (nbytes = dtype size *
 * shape) inside the data buffer, found by name; and it must survive a round trip: written back by
 * safetensors_write (to $TMPDIR or /tmp, a name with our pid: run with TMPDIR=/dev/shm to spare
 * the disk) and opened again, it gives the same tensors, bytes and metadata. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "safetensors.h"

static void fuzz_check(const uint8_t *data, size_t size, const safetensors_file *f)
{
    size_t n = safetensors_count(f);
    if (safetensors_at(f, n) != NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        const safetensors_tensor *t = safetensors_at(f, i);
        if (!t || !t->name || !t->name[0] || strlen(t->name) > SAFETENSORS_NAME_MAX)
            abort();
        if (i && strcmp(safetensors_at(f, i - 1)->name, t->name) >= 0)
            abort();
        if (safetensors_find(f, t->name) != t || t->rank > SAFETENSORS_RANK_MAX)
            abort();
        uint64_t nb = safetensors_dtype_size(t->dtype);
        for (uint32_t d = 0; d < t->rank; d++)
            nb *= t->shape[d]; /* no overflow: the reader checked */
        if (nb != t->nbytes)
            abort();
        const uint8_t *p = t->data;
        if (p < data + 8 || p > data + size || t->nbytes > (uint64_t)(data + size - p))
            abort();
    }
    const char *const *kv = safetensors_metadata_all(f);
    for (size_t i = 0; kv[i]; i += 2)
        if (!kv[i + 1] || safetensors_metadata(f, kv[i]) != kv[i + 1])
            abort();
}

static void fuzz_same(const safetensors_file *a, const safetensors_file *b)
{
    if (safetensors_count(a) != safetensors_count(b))
        abort();
    for (size_t i = 0; i < safetensors_count(a); i++) {
        const safetensors_tensor *x = safetensors_at(a, i), *y = safetensors_at(b, i);
        if (strcmp(x->name, y->name) || x->dtype != y->dtype || x->rank != y->rank ||
            x->nbytes != y->nbytes || memcmp(x->shape, y->shape, x->rank * sizeof x->shape[0]) ||
            (x->nbytes && memcmp(x->data, y->data, x->nbytes)))
            abort();
    }
    const char *const *ka = safetensors_metadata_all(a), *const *kb = safetensors_metadata_all(b);
    size_t i = 0;
    for (; ka[i] && kb[i]; i++)
        if (strcmp(ka[i], kb[i]) != 0)
            abort();
    if (ka[i] || kb[i])
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ptb_errbuf eb = {{0}};
    safetensors_file *f = NULL;
    int rc = safetensors_parse(data, size, &f, &eb);
    if (rc != 0) {
        if (rc != PTB_ECORRUPT || f || !eb.msg[0])
            abort();
        return 0;
    }
    fuzz_check(data, size, f);

    size_t n = safetensors_count(f);
    safetensors_tensor *ts = malloc((n ? n : 1) * sizeof *ts);
    if (!ts)
        abort();
    for (size_t i = 0; i < n; i++)
        ts[n - 1 - i] = *safetensors_at(f, i); /* reversed: the writer sorts */
    const char *dir = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/fuzz_safetensors.%d.st", dir && dir[0] ? dir : "/tmp",
             (int)getpid());
    if (safetensors_write(path, ts, n, safetensors_metadata_all(f), &eb) != 0) {
        fprintf(stderr, "write back: %s\n", eb.msg);
        abort();
    }
    free(ts);
    safetensors_file *g = NULL;
    if (safetensors_open(path, &g, &eb) != 0) {
        fprintf(stderr, "open written: %s\n", eb.msg);
        abort();
    }
    unlink(path);
    fuzz_same(f, g);
    safetensors_close(g);
    safetensors_close(f);
    return 0;
}
