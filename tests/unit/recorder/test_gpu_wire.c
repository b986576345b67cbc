/* GPU recording without a GPU, part 1: the wire codec (recorder/gpu/gpu_wire.h) and the
 * conversion of CUPTI activity records (gpu_cupti.h, fed synthetic CUpti_ActivityKernel10 & co.
 * where CUPTI's headers are installed). test_gpu_recv.c has the receiver and the library.
 *
 * Codec: every kind round-trips field by field; the bytes of the header and of a kernel record
 * are pinned; a batch cut at every length, and every byte of it changed in three ways, is
 * either rejected with a reason or decodes to records that encode back to the same bytes; a
 * table of hand-made corruptions, each rejected with its reason; the writer's bounds. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "event_type.h"
#include "gpu_recv.h"
#include "gpu_wire.h"
#include "ptb_error.h"
#include "store.h"
#include "gpu_test_recs.h"
#ifdef PTB_GPU_HAVE_CUPTI
#include <dlfcn.h>
#include <sys/wait.h>

#include "gpu_cupti.h"
#endif

/* ---- codec ---------------------------------------------------------------------------------- */

static void test_roundtrip(void **state)
{
    (void)state;
    gpu_wire_rec in[12];
    size_t n = all_kinds(in);
    uint8_t buf[GPU_WIRE_BATCH_MAX];
    size_t len = build(buf, sizeof buf, in, n);
    size_t expect = GPU_WIRE_HEADER_SIZE;
    for (size_t i = 0; i < n; i++)
        expect += gpu_wire_rec_size(&in[i]);
    assert_int_equal(len, expect);

    gpu_wire_reader r;
    const char *why = "unset";
    assert_int_equal(gpu_wire_reader_open(&r, buf, len, &why), 0);
    assert_null(why);
    gpu_wire_rec out;
    for (size_t i = 0; i < n; i++) {
        memset(&out, 0, sizeof out);
        assert_int_equal(gpu_wire_reader_next(&r, &out), 0);
        rec_equal(&in[i], &out);
    }
    assert_int_equal(gpu_wire_reader_next(&r, &out), PTB_ENOTFOUND);
    assert_int_equal(gpu_wire_reader_next(&r, &out), PTB_ENOTFOUND);

    /* an empty batch is a batch */
    gpu_wire_writer w;
    assert_int_equal(gpu_wire_writer_init(&w, buf, sizeof buf), 0);
    assert_int_equal(gpu_wire_writer_finish(&w), GPU_WIRE_HEADER_SIZE);
    assert_int_equal(gpu_wire_reader_open(&r, buf, GPU_WIRE_HEADER_SIZE, NULL), 0);
    assert_int_equal(gpu_wire_reader_next(&r, &out), PTB_ENOTFOUND);
}

/* The layout of gpu_wire.h, byte for byte. */
static void test_bytes(void **state)
{
    (void)state;
    uint8_t buf[256];
    gpu_wire_rec k = rec_kernel(0x000F0304, 1);
    size_t len = build(buf, sizeof buf, &k, 1);
    assert_int_equal(len, 16 + 84);
    const uint8_t head[16] = {'P', 'T', 'B', 'G', 1, 0, 0, 0, 100, 0, 0, 0, 1, 0, 0, 0};
    assert_memory_equal(buf, head, 16);
    const uint8_t rh[8] = {3, 0, 84, 0, 0x04, 0x03, 0x0F, 0x00};
    assert_memory_equal(buf + 16, rh, 8);
    /* grid x = 1025 at payload offset 4 */
    assert_int_equal(buf[20 + 4], 0x01);
    assert_int_equal(buf[20 + 5], 0x04);
    /* graph_node_id at payload offset 56, little-endian */
    const uint8_t node[8] = {0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11};
    assert_memory_equal(buf + 20 + 56, node, 8);
    /* start_ns at 64 */
    uint64_t start = 0;
    for (int i = 7; i >= 0; i--)
        start = start << 8 | buf[20 + 64 + i];
    assert_int_equal((int64_t)start, T0 + 1000);

    gpu_wire_rec g = rec_gap(GPU_WIRE_GAP_CUPTI_ERROR, 2, "ab");
    len = build(buf, sizeof buf, &g, 1);
    const uint8_t gb[4 + 14 + 2] = {7, 0, 20, 0, 3, 0, 0, 0, 2,   0,
                                    0, 0, 0,  0, 0, 0, 2, 0, 'a', 'b'};
    assert_int_equal(len, 16 + sizeof gb);
    assert_memory_equal(buf + 16, gb, sizeof gb);
}

/* Whatever a reader accepts encodes back to the same bytes; whatever it rejects has a reason. */
static void check_any(const uint8_t *data, size_t len)
{
    /* an exact-size copy, so ASan sees any read past the end */
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, data, len);
    gpu_wire_reader r;
    const char *why = NULL;
    int rc = gpu_wire_reader_open(&r, copy, len, &why);
    if (rc != 0) {
        assert_int_equal(rc, PTB_ECORRUPT);
        assert_non_null(why);
        assert_int_equal(gpu_wire_reader_next(&r, &(gpu_wire_rec){0}), PTB_ENOTFOUND);
        free(copy);
        return;
    }
    assert_null(why);
    static uint8_t again[GPU_WIRE_BATCH_MAX];
    gpu_wire_writer w;
    assert_int_equal(gpu_wire_writer_init(&w, again, sizeof again), 0);
    gpu_wire_rec rec;
    while (gpu_wire_reader_next(&r, &rec) == 0)
        assert_int_equal(gpu_wire_put(&w, &rec), 0);
    assert_int_equal(gpu_wire_writer_finish(&w), len);
    assert_memory_equal(again, copy, len);
    free(copy);
}

static void test_truncations(void **state)
{
    (void)state;
    gpu_wire_rec in[12];
    size_t n = all_kinds(in);
    uint8_t buf[4096], cut[4096];
    size_t len = build(buf, sizeof buf, in, n);
    for (size_t l = 0; l < len; l++) {
        const char *why = NULL;
        gpu_wire_reader r;
        assert_int_equal(gpu_wire_reader_open(&r, buf, l, &why), PTB_ECORRUPT);
        assert_non_null(why);
        /* the same cut with the header's length made to agree: still rejected */
        memcpy(cut, buf, l);
        if (l >= 12) {
            cut[8] = (uint8_t)l;
            cut[9] = (uint8_t)(l >> 8);
            cut[10] = cut[11] = 0;
        }
        why = NULL;
        assert_int_equal(gpu_wire_reader_open(&r, cut, l, &why), PTB_ECORRUPT);
        assert_non_null(why);
        check_any(cut, l);
    }
    check_any(buf, len);
}

static void test_corruptions(void **state)
{
    (void)state;
    gpu_wire_rec in[12];
    size_t n = all_kinds(in);
    uint8_t buf[4096], bad[4096];
    size_t len = build(buf, sizeof buf, in, n);
    const uint8_t flips[] = {0x01, 0x80, 0xFF};
    size_t accepted = 0, rejected = 0;
    for (size_t i = 0; i < len; i++)
        for (size_t f = 0; f < sizeof flips; f++) {
            memcpy(bad, buf, len);
            bad[i] ^= flips[f];
            gpu_wire_reader r;
            if (gpu_wire_reader_open(&r, bad, len, NULL) == 0)
                accepted++;
            else
                rejected++;
            check_any(bad, len);
        }
    /* values inside records may change freely; structure may not */
    assert_true(accepted > 0);
    assert_true(rejected > 0);
}

/* A hand-made corruption and the reason it must be rejected with. */
typedef struct corrupt_case {
    const char *what;
    size_t off; /* byte to set, or SIZE_MAX for none */
    uint8_t val;
    long len_delta; /* message length change (no header fix-up) */
    const char *why;
} corrupt_case;

static void test_rejects(void **state)
{
    (void)state;
    uint8_t buf[4096];
    /* header | name(1, "k") 15 bytes at 16 | kernel 84 bytes at 31 */
    gpu_wire_rec recs[2] = {rec_name(1, "k", 0), rec_kernel(1, 0)};
    size_t len = build(buf, sizeof buf, recs, 2);
    assert_int_equal(len, 16 + 15 + 84);
    const corrupt_case cases[] = {
        {"magic", 0, 'X', 0, "bad magic"},
        {"version", 4, 2, 0, "batch of another wire version"},
        {"flags", 6, 1, 0, "batch with reserved flags set"},
        {"length", 8, 99, 0, "batch length disagrees with the message length"},
        {"count high", 12, 3, 0, "record header past the end of the batch"},
        {"count huge", 15, 0x40, 0, "record count larger than the batch can hold"},
        {"count low", 12, 1, 0, "bytes after the last record"},
        {"unknown kind", 16, 99, 0, "unknown record kind"},
        {"kind 0", 16, 0, 0, "unknown record kind"},
        {"record size < header", 18, 3, 0, "record size smaller than its header"},
        {"record size past end", 19, 0x10, 0, "record past the end of the batch"},
        {"name id 0", 20, 0, 0, "name id out of range"},
        {"name id huge", 23, 0x10, 0, "name id out of range"},
        {"name full_len < len", 24, 0, 0, "name longer than its full length"},
        {"name len 0", 28, 0, 0, "name length out of range"},
        {"name len vs size", 28, 2, 0, "name length disagrees with the record size"},
        {"NUL in name", 30, 0, 0, "NUL inside a name"},
        {"kernel size", 33, 83, 0, "kernel record of the wrong size"},
        {"kernel name id", 38, 0x10, 0, "kernel name id out of range"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t bad[4096];
        memcpy(bad, buf, len);
        if (cases[i].off != SIZE_MAX)
            bad[cases[i].off] = cases[i].val;
        const char *why = NULL;
        gpu_wire_reader r;
        int rc = gpu_wire_reader_open(&r, bad, (size_t)((long)len + cases[i].len_delta), &why);
        if (rc != PTB_ECORRUPT || !why || strcmp(why, cases[i].why) != 0)
            fail_msg("%s: rc %d, why \"%s\", expected \"%s\"", cases[i].what, rc,
                     why ? why : "(null)", cases[i].why);
    }

    /* kinds with texts and reserved bits, built whole */
    struct {
        gpu_wire_rec rec;
        size_t off; /* payload byte to set */
        uint8_t val;
        const char *why;
    } more[] = {
        {rec_hello(1), 0, 2, "hello of another wire version"},
        {rec_hello(1), 12, 1, "hello with reserved flags set"},
        {rec_hello(0), SIZE_MAX, 0, "hello with an impossible pid"},
        {rec_hello(1), 7, 0x80, "hello with an impossible pid"},
        {rec_memcpy(1, false), 11, 2, "memcpy with reserved flags set"},
        {rec_memset(), 30, 1, "memset with reserved bits set"},
        {rec_context(), 25, 1, "device name too long"},
        {rec_context(), 24, 3, "device name length disagrees with the record size"},
        {rec_context(), 26, 0, "NUL inside a device name"},
        {rec_gap(3, 1, "x"), 13, 0x10, "gap text too long"},
        {rec_gap(3, 1, "xy"), 12, 1, "gap text length disagrees with the record size"},
        {rec_gap(3, 1, "xy"), 15, 0, "NUL inside a gap text"},
    };
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) {
        uint8_t bad[4096];
        size_t l = build(bad, sizeof bad, &more[i].rec, 1);
        if (more[i].off != SIZE_MAX)
            bad[16 + 4 + more[i].off] = more[i].val;
        const char *why = NULL;
        gpu_wire_reader r;
        int rc = gpu_wire_reader_open(&r, bad, l, &why);
        if (rc != PTB_ECORRUPT || !why || strcmp(why, more[i].why) != 0)
            fail_msg("case %zu: rc %d, why \"%s\", expected \"%s\"", i, rc, why ? why : "(null)",
                     more[i].why);
    }

    /* fixed kinds of the wrong size: the record grows by one byte and so does the batch */
    const gpu_wire_rec fixed[] = {rec_hello(1), rec_memcpy(1, false), rec_memset(),
                                  rec_end(0, 0, 0, 0)};
    for (size_t i = 0; i < 4; i++) {
        uint8_t bad[4096];
        size_t l = build(bad, sizeof bad, &fixed[i], 1);
        bad[l] = 0;
        bad[18]++;
        bad[8]++;
        const char *why = NULL;
        gpu_wire_reader r;
        assert_int_equal(gpu_wire_reader_open(&r, bad, l + 1, &why), PTB_ECORRUPT);
        assert_non_null(strstr(why, "of the wrong size"));
    }

    /* sizes */
    const char *why = NULL;
    gpu_wire_reader r;
    assert_int_equal(gpu_wire_reader_open(&r, NULL, 0, &why), PTB_ECORRUPT);
    assert_string_equal(why, "batch shorter than its header");
    static uint8_t big[GPU_WIRE_BATCH_MAX + 1];
    assert_int_equal(gpu_wire_reader_open(&r, big, sizeof big, &why), PTB_ECORRUPT);
    assert_string_equal(why, "batch over the size bound");
}

static void test_writer(void **state)
{
    (void)state;
    uint8_t buf[GPU_WIRE_HEADER_SIZE + GPU_WIRE_KERNEL_SIZE + 10];
    gpu_wire_writer w;
    assert_int_equal(gpu_wire_writer_init(&w, buf, 8), PTB_EINVAL);
    assert_int_equal(gpu_wire_writer_init(&w, buf, sizeof buf), 0);
    gpu_wire_rec k = rec_kernel(1, 0);
    assert_int_equal(gpu_wire_put(&w, &k), 0);
    size_t before = w.len;
    assert_int_equal(gpu_wire_put(&w, &k), -ENOSPC);
    assert_int_equal(w.len, before);
    assert_int_equal(w.count, 1);

    /* records that cannot be encoded */
    char longname[GPU_WIRE_NAME_MAX + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    const gpu_wire_rec bad[] = {
        rec_name(0, "x", 0),
        rec_name(GPU_WIRE_NAME_ID_MAX + 1, "x", 0),
        rec_name(1, "", 0),
        rec_name(1, longname, 0),
        rec_name(1, "abc", 2),
        {.kind = 0},
        {.kind = GPU_WIRE_KIND_LAST + 1},
        rec_kernel(GPU_WIRE_NAME_ID_MAX + 1, 0),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(gpu_wire_rec_size(&bad[i]), 0);
        assert_int_equal(gpu_wire_put(&w, &bad[i]), PTB_EINVAL);
    }
    gpu_wire_rec m = rec_memcpy(1, false);
    m.u.copy.flags = 2;
    assert_int_equal(gpu_wire_rec_size(&m), 0);
    gpu_wire_rec g = rec_gap(1, 0, NULL);
    g.u.gap.text = "a\0b";
    g.u.gap.len = 3;
    assert_int_equal(gpu_wire_rec_size(&g), 0);
    gpu_wire_rec c = rec_context();
    c.u.context.len = GPU_WIRE_DEVNAME_MAX + 1;
    assert_int_equal(gpu_wire_rec_size(&c), 0);

    /* a full batch of kernels: exactly as many as fit, and the batch stays within the bound */
    static uint8_t full[GPU_WIRE_BATCH_MAX + 100];
    assert_int_equal(gpu_wire_writer_init(&w, full, sizeof full), 0);
    assert_int_equal(w.cap, GPU_WIRE_BATCH_MAX);
    size_t n = 0;
    while (gpu_wire_put(&w, &k) == 0)
        n++;
    assert_int_equal(n, (GPU_WIRE_BATCH_MAX - GPU_WIRE_HEADER_SIZE) / GPU_WIRE_KERNEL_SIZE);
    size_t len = gpu_wire_writer_finish(&w);
    gpu_wire_reader r;
    assert_int_equal(gpu_wire_reader_open(&r, full, len, NULL), 0);
    assert_int_equal(r.count, n);
    gpu_wire_writer_reset(&w);
    assert_int_equal(w.len, GPU_WIRE_HEADER_SIZE);
    assert_int_equal(w.count, 0);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(gpu_wire_copy_kind_name(1), "HtoD");
    assert_string_equal(gpu_wire_copy_kind_name(2), "DtoH");
    assert_string_equal(gpu_wire_copy_kind_name(8), "DtoD");
    assert_string_equal(gpu_wire_copy_kind_name(9), "HtoH");
    assert_string_equal(gpu_wire_copy_kind_name(10), "PtoP");
    assert_string_equal(gpu_wire_copy_kind_name(3), "other");
    assert_string_equal(gpu_wire_copy_kind_name(0), "other");
    assert_string_equal(gpu_wire_copy_kind_name(255), "other");
    assert_string_equal(gpu_wire_mem_kind_name(0), "unknown");
    assert_string_equal(gpu_wire_mem_kind_name(2), "pinned");
    assert_string_equal(gpu_wire_mem_kind_name(7), "managed_static");
    assert_string_equal(gpu_wire_mem_kind_name(8), "other");
    assert_string_equal(gpu_wire_gap_reason_name(1), "subscriber_conflict");
    assert_string_equal(gpu_wire_gap_reason_name(5), "send_dropped");
    assert_string_equal(gpu_wire_gap_reason_name(8), "name_table_full");
    assert_string_equal(gpu_wire_gap_reason_name(0), "unknown");
    assert_string_equal(gpu_wire_gap_reason_name(9), "unknown");
}

/* ---- CUPTI records to wire records --------------------------------------------------------- */

#ifdef PTB_GPU_HAVE_CUPTI

typedef struct sink {
    gpu_wire_rec recs[64];
    char text[64][GPU_WIRE_NAME_MAX + 1]; /* the texts, copied: the converter lends them */
    size_t n;
} sink;

static void sink_put(void *arg, const gpu_wire_rec *rec)
{
    sink *s = arg;
    assert_true(s->n < 64);
    gpu_wire_rec *r = &s->recs[s->n];
    *r = *rec;
    const char *t = NULL;
    size_t len = 0;
    if (rec->kind == GPU_WIRE_NAME)
        t = rec->u.name.name, len = rec->u.name.len;
    else if (rec->kind == GPU_WIRE_CONTEXT)
        t = rec->u.context.name, len = rec->u.context.len;
    if (t) {
        memcpy(s->text[s->n], t, len);
        s->text[s->n][len] = 0;
        if (rec->kind == GPU_WIRE_NAME)
            r->u.name.name = s->text[s->n];
        else
            r->u.context.name = s->text[s->n];
    }
    s->n++;
}

static CUpti_ActivityKernel10 cupti_kernel(const char *name, uint64_t start)
{
    CUpti_ActivityKernel10 k;
    memset(&k, 0, sizeof k);
    k.kind = CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
    k.name = name;
    k.gridX = 128;
    k.gridY = 2;
    k.gridZ = 1;
    k.blockX = 256;
    k.blockY = 1;
    k.blockZ = 1;
    k.staticSharedMemory = 1024;
    k.dynamicSharedMemory = 2048;
    k.registersPerThread = 40;
    k.streamId = 13;
    k.deviceId = 0;
    k.contextId = 1;
    k.correlationId = 77;
    k.graphId = 4;
    k.graphNodeId = 99;
    k.start = start;
    k.end = start + 1500;
    return k;
}

static void test_cupti_kernels(void **state)
{
    (void)state;
    char *d = gpu_cupti_demangle("_Z7ptb_addPffi");
    if (!d) {
        /* no libstdc++ to demangle with: conversion keeps mangled names, nothing more to test */
        skip();
    }
    assert_string_equal(d, "ptb_add(float*, float, int)");
    free(d);
    assert_null(gpu_cupti_demangle("ptb_extern_c"));
    assert_null(gpu_cupti_demangle("_Znot a name"));

    gpu_cupti *c;
    assert_int_equal(gpu_cupti_new(&c), 0);
    sink s = {0};
    const int64_t off = 1700000000000000000LL;
    CUpti_ActivityKernel10 k1 = cupti_kernel("_Z7ptb_addPffi", 5000);
    assert_int_equal(gpu_cupti_record(c, (CUpti_Activity *)&k1, off, sink_put, &s), 1);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.recs[0].kind, GPU_WIRE_NAME);
    assert_int_equal(s.recs[0].u.name.id, 1);
    assert_string_equal(s.recs[0].u.name.name, "ptb_add(float*, float, int)");
    assert_int_equal(s.recs[0].u.name.full_len, strlen("ptb_add(float*, float, int)"));
    const gpu_wire_kernel *w = &s.recs[1].u.kernel;
    assert_int_equal(s.recs[1].kind, GPU_WIRE_KERNEL);
    assert_int_equal(w->name_id, 1);
    assert_int_equal(w->grid[0], 128);
    assert_int_equal(w->grid[1], 2);
    assert_int_equal(w->grid[2], 1);
    assert_int_equal(w->block[0], 256);
    assert_int_equal(w->shared_mem, 3072);
    assert_int_equal(w->registers, 40);
    assert_int_equal(w->stream, 13);
    assert_int_equal(w->device, 0);
    assert_int_equal(w->context, 1);
    assert_int_equal(w->correlation, 77);
    assert_int_equal(w->graph_id, 4);
    assert_int_equal(w->graph_node_id, 99);
    assert_int_equal(w->start_ns, off + 5000);
    assert_int_equal(w->end_ns, off + 6500);

    /* the same name again: no second name record; a time CUPTI left at 0 stays 0 */
    CUpti_ActivityKernel10 k2 = cupti_kernel("_Z7ptb_addPffi", 0);
    k2.end = 0;
    k2.kind = CUPTI_ACTIVITY_KIND_KERNEL;
    s.n = 0;
    assert_int_equal(gpu_cupti_record(c, (CUpti_Activity *)&k2, off, sink_put, &s), 1);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.recs[0].u.kernel.name_id, 1);
    assert_int_equal(s.recs[0].u.kernel.start_ns, 0);
    assert_int_equal(s.recs[0].u.kernel.end_ns, 0);

    /* the batch with the name was lost: the name goes again, once */
    gpu_cupti_name_lost(c, 1);
    gpu_cupti_name_lost(c, 999);
    s.n = 0;
    gpu_cupti_record(c, (CUpti_Activity *)&k1, off, sink_put, &s);
    gpu_cupti_record(c, (CUpti_Activity *)&k1, off, sink_put, &s);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.recs[0].kind, GPU_WIRE_NAME);
    assert_int_equal(s.recs[0].u.name.id, 1);

    /* a template, a C name, a name over the bound (cut, full length kept), no name at all */
    CUpti_ActivityKernel10 k3 = cupti_kernel("_Z8ptb_fillIiEvPT_S0_i", 1);
    CUpti_ActivityKernel10 k4 = cupti_kernel("ptb_extern_c", 1);
    char *longname = malloc(5001);
    memset(longname, 'x', 5000);
    longname[5000] = 0;
    CUpti_ActivityKernel10 k5 = cupti_kernel(longname, 1);
    CUpti_ActivityKernel10 k6 = cupti_kernel(NULL, 1);
    s.n = 0;
    gpu_cupti_record(c, (CUpti_Activity *)&k3, off, sink_put, &s);
    gpu_cupti_record(c, (CUpti_Activity *)&k4, off, sink_put, &s);
    gpu_cupti_record(c, (CUpti_Activity *)&k5, off, sink_put, &s);
    gpu_cupti_record(c, (CUpti_Activity *)&k6, off, sink_put, &s);
    assert_int_equal(s.n, 8);
    assert_string_equal(s.recs[0].u.name.name, "void ptb_fill<int>(int*, int, int)");
    assert_int_equal(s.recs[0].u.name.id, 2);
    assert_string_equal(s.recs[2].u.name.name, "ptb_extern_c");
    assert_int_equal(s.recs[4].u.name.len, GPU_WIRE_NAME_MAX);
    assert_int_equal(s.recs[4].u.name.full_len, 5000);
    assert_string_equal(s.recs[6].u.name.name, "(anonymous kernel)");
    assert_int_equal(s.recs[7].u.kernel.name_id, 5);
    free(longname);
    gpu_cupti_stats st;
    gpu_cupti_stats_get(c, &st);
    assert_int_equal(st.kernels, 8);
    assert_int_equal(st.names, 5);
    assert_int_equal(st.names_cut, 1);
    assert_int_equal(st.unnamed, 0);
    gpu_cupti_free(c);
}

static void test_cupti_name_bound(void **state)
{
    (void)state;
    gpu_cupti *c;
    assert_int_equal(gpu_cupti_new(&c), 0);
    sink s = {0};
    char name[32];
    for (uint32_t i = 0; i <= GPU_CUPTI_NAMES_MAX; i++) {
        snprintf(name, sizeof name, "k%u", i);
        CUpti_ActivityKernel10 k = cupti_kernel(name, 1);
        s.n = 0;
        gpu_cupti_record(c, (CUpti_Activity *)&k, 0, sink_put, &s);
        if (i < GPU_CUPTI_NAMES_MAX) {
            assert_int_equal(s.n, 2);
            assert_int_equal(s.recs[1].u.kernel.name_id, i + 1);
        } else {
            assert_int_equal(s.n, 1); /* the table is full: no name, id 0, counted */
            assert_int_equal(s.recs[0].u.kernel.name_id, 0);
        }
    }
    /* names already in the table still resolve */
    CUpti_ActivityKernel10 k = cupti_kernel("k7", 1);
    s.n = 0;
    gpu_cupti_record(c, (CUpti_Activity *)&k, 0, sink_put, &s);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.recs[0].u.kernel.name_id, 8);
    gpu_cupti_stats st;
    gpu_cupti_stats_get(c, &st);
    assert_int_equal(st.unnamed, 1);
    assert_int_equal(st.names, GPU_CUPTI_NAMES_MAX);
    gpu_cupti_free(c);
}

static void test_cupti_copies_contexts(void **state)
{
    (void)state;
    gpu_cupti *c;
    assert_int_equal(gpu_cupti_new(&c), 0);
    sink s = {0};
    const int64_t off = -100;

    CUpti_ActivityMemcpy6 m;
    memset(&m, 0, sizeof m);
    m.kind = CUPTI_ACTIVITY_KIND_MEMCPY;
    m.copyKind = CUPTI_ACTIVITY_MEMCPY_KIND_DTOH;
    m.srcKind = CUPTI_ACTIVITY_MEMORY_KIND_DEVICE;
    m.dstKind = CUPTI_ACTIVITY_MEMORY_KIND_PAGEABLE;
    m.bytes = 12345;
    m.start = 1000;
    m.end = 2000;
    m.deviceId = 2;
    m.contextId = 3;
    m.streamId = 4;
    m.correlationId = 5;
    m.graphId = 6;
    m.graphNodeId = 7;
    assert_int_equal(gpu_cupti_record(c, (CUpti_Activity *)&m, off, sink_put, &s), 1);
    const gpu_wire_memcpy *w = &s.recs[0].u.copy;
    assert_int_equal(s.recs[0].kind, GPU_WIRE_MEMCPY);
    assert_int_equal(w->copy_kind, GPU_WIRE_COPY_DTOH);
    assert_int_equal(w->src_kind, GPU_WIRE_MEM_DEVICE);
    assert_int_equal(w->dst_kind, GPU_WIRE_MEM_PAGEABLE);
    assert_int_equal(w->flags, 0);
    assert_int_equal(w->bytes, 12345);
    assert_int_equal(w->start_ns, 900);
    assert_int_equal(w->end_ns, 1900);
    assert_int_equal(w->device, 2);
    assert_int_equal(w->src_device, 2);
    assert_int_equal(w->dst_device, 2);
    assert_int_equal(w->context, 3);
    assert_int_equal(w->stream, 4);
    assert_int_equal(w->correlation, 5);
    assert_int_equal(w->graph_id, 6);
    assert_int_equal(w->graph_node_id, 7);

    CUpti_ActivityMemcpyPtoP4 p;
    memset(&p, 0, sizeof p);
    p.kind = CUPTI_ACTIVITY_KIND_MEMCPY2;
    p.copyKind = CUPTI_ACTIVITY_MEMCPY_KIND_PTOP;
    p.bytes = 1 << 20;
    p.deviceId = 0;
    p.srcDeviceId = 0;
    p.dstDeviceId = 1;
    p.start = 10;
    p.end = 20;
    assert_int_equal(gpu_cupti_record(c, (CUpti_Activity *)&p, 0, sink_put, &s), 1);
    w = &s.recs[1].u.copy;
    assert_int_equal(w->copy_kind, GPU_WIRE_COPY_PTOP);
    assert_int_equal(w->flags, GPU_WIRE_MEMCPY_F_P2P);
    assert_int_equal(w->src_device, 0);
    assert_int_equal(w->dst_device, 1);

    CUpti_ActivityMemset4 ms;
    memset(&ms, 0, sizeof ms);
    ms.kind = CUPTI_ACTIVITY_KIND_MEMSET;
    ms.value = 0xab;
    ms.bytes = 64;
    ms.memoryKind = CUPTI_ACTIVITY_MEMORY_KIND_MANAGED;
    ms.deviceId = 1;
    ms.contextId = 2;
    ms.streamId = 3;
    ms.correlationId = 4;
    ms.start = 0;
    ms.end = 0;
    assert_int_equal(gpu_cupti_record(c, (CUpti_Activity *)&ms, off, sink_put, &s), 1);
    const gpu_wire_memset *ws = &s.recs[2].u.set;
    assert_int_equal(s.recs[2].kind, GPU_WIRE_MEMSET);
    assert_int_equal(ws->value, 0xab);
    assert_int_equal(ws->bytes, 64);
    assert_int_equal(ws->mem_kind, GPU_WIRE_MEM_MANAGED);
    assert_int_equal(ws->start_ns, 0);
    assert_int_equal(ws->correlation, 4);

    /* a device first, then its context: sent at once with the device's name and UUID */
    CUpti_ActivityDevice5 dv;
    memset(&dv, 0, sizeof dv);
    dv.kind = CUPTI_ACTIVITY_KIND_DEVICE;
    dv.id = 0;
    dv.name = DEVNAME;
    memcpy(dv.uuid.bytes, UUID, 16);
    s.n = 0;
    assert_int_equal(gpu_cupti_record(c, (CUpti_Activity *)&dv, 0, sink_put, &s), 1);
    assert_int_equal(s.n, 0);
    CUpti_ActivityContext3 cx;
    memset(&cx, 0, sizeof cx);
    cx.kind = CUPTI_ACTIVITY_KIND_CONTEXT;
    cx.deviceId = 0;
    cx.contextId = 1;
    gpu_cupti_record(c, (CUpti_Activity *)&cx, 0, sink_put, &s);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.recs[0].kind, GPU_WIRE_CONTEXT);
    assert_string_equal(s.recs[0].u.context.name, DEVNAME);
    assert_memory_equal(s.recs[0].u.context.uuid, UUID, 16);
    assert_int_equal(s.recs[0].u.context.context, 1);

    /* a context before its device: it waits for the device record */
    cx.deviceId = 1;
    cx.contextId = 2;
    s.n = 0;
    gpu_cupti_record(c, (CUpti_Activity *)&cx, 0, sink_put, &s);
    assert_int_equal(s.n, 0);
    dv.id = 1;
    dv.name = "second";
    gpu_cupti_record(c, (CUpti_Activity *)&dv, 0, sink_put, &s);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.recs[0].u.context.name, "second");
    assert_int_equal(s.recs[0].u.context.device, 1);

    /* a context whose device never comes: out at the end of the buffer after its own */
    cx.deviceId = 7;
    cx.contextId = 3;
    s.n = 0;
    gpu_cupti_record(c, (CUpti_Activity *)&cx, 0, sink_put, &s);
    gpu_cupti_buffer_end(c, sink_put, &s);
    assert_int_equal(s.n, 0);
    gpu_cupti_buffer_end(c, sink_put, &s);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.recs[0].u.context.len, 0);
    assert_int_equal(s.recs[0].u.context.context, 3);
    /* and at exit, whatever still waits */
    cx.contextId = 4;
    gpu_cupti_record(c, (CUpti_Activity *)&cx, 0, sink_put, &s);
    gpu_cupti_flush(c, sink_put, &s);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.recs[1].u.context.context, 4);

    /* other kinds are ignored */
    CUpti_Activity other = {.kind = CUPTI_ACTIVITY_KIND_DRIVER};
    s.n = 0;
    assert_int_equal(gpu_cupti_record(c, &other, 0, sink_put, &s), 0);
    assert_int_equal(s.n, 0);
    gpu_cupti_stats st;
    gpu_cupti_stats_get(c, &st);
    assert_int_equal(st.memcpys, 2);
    assert_int_equal(st.memsets, 1);
    assert_int_equal(st.contexts, 4);
    assert_int_equal(st.devices, 2);
    assert_int_equal(st.ignored, 1);
    gpu_cupti_free(c);
}

#endif /* PTB_GPU_HAVE_CUPTI */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_corruptions),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_writer),
        cmocka_unit_test(test_names),
#ifdef PTB_GPU_HAVE_CUPTI
        cmocka_unit_test(test_cupti_kernels),
        cmocka_unit_test(test_cupti_name_bound),
        cmocka_unit_test(test_cupti_copies_contexts),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
