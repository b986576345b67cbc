/* libFuzzer target: the GPU wire batch reader (recorder/gpu/gpu_wire.c), which reads bytes sent
 * by recorded processes.
 *
 * Input: one batch. Whatever the bytes, gpu_wire_reader_open must return 0 or PTB_ECORRUPT with
 * a reason, never read outside the input (ASan); a rejected batch yields no record; an accepted
 * one yields exactly its count of records, with texts inside the input and within their bounds,
 * and encodes back (gpu_wire_put) to the very same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_wire.h"
#include "ptb_error.h"

static void fuzz_inside(const uint8_t *data, size_t size, const char *p, size_t n, size_t max)
{
    if (n > max)
        abort();
    if (n && ((const uint8_t *)p < data || (const uint8_t *)p + n > data + size))
        abort();
    if (n && memchr(p, '\0', n))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t again[GPU_WIRE_BATCH_MAX];
    gpu_wire_reader r;
    gpu_wire_rec rec;
    const char *why = NULL;
    int rc = gpu_wire_reader_open(&r, data, size, &why);
    if (rc != 0) {
        if (rc != PTB_ECORRUPT || !why || gpu_wire_reader_next(&r, &rec) != PTB_ENOTFOUND)
            abort();
        return 0;
    }
    if (why)
        abort();
    gpu_wire_writer w;
    if (gpu_wire_writer_init(&w, again, sizeof again) != 0)
        abort();
    uint32_t n = 0;
    while ((rc = gpu_wire_reader_next(&r, &rec)) == 0) {
        n++;
        switch (rec.kind) {
        case GPU_WIRE_NAME:
            fuzz_inside(data, size, rec.u.name.name, rec.u.name.len, GPU_WIRE_NAME_MAX);
            if (rec.u.name.id == 0 || rec.u.name.id > GPU_WIRE_NAME_ID_MAX || !rec.u.name.len)
                abort();
            break;
        case GPU_WIRE_CONTEXT:
            fuzz_inside(data, size, rec.u.context.name, rec.u.context.len, GPU_WIRE_DEVNAME_MAX);
            break;
        case GPU_WIRE_GAP:
            fuzz_inside(data, size, rec.u.gap.text, rec.u.gap.len, GPU_WIRE_TEXT_MAX);
            (void)gpu_wire_gap_reason_name(rec.u.gap.reason);
            break;
        case GPU_WIRE_MEMCPY:
            (void)gpu_wire_copy_kind_name(rec.u.copy.copy_kind);
            (void)gpu_wire_mem_kind_name(rec.u.copy.src_kind);
            break;
        default:
            if (rec.kind < GPU_WIRE_HELLO || rec.kind > GPU_WIRE_KIND_LAST)
                abort();
        }
        if (gpu_wire_put(&w, &rec) != 0)
            abort();
    }
    if (rc != PTB_ENOTFOUND || n != r.count)
        abort();
    if (gpu_wire_writer_finish(&w) != size || memcmp(again, data, size) != 0)
        abort();
    return 0;
}
