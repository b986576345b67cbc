/* Records and batches shared by the GPU wire tests (test_gpu_wire.c, test_gpu_recv.c): one
 * record of every kind with known values, their field-by-field comparison, and a batch builder.
 * Test-only; static inline so that each test takes what it uses. */
#ifndef PTB_TEST_GPU_RECS_H
#define PTB_TEST_GPU_RECS_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "gpu_wire.h"

/* ---- records ------------------------------------------------------------------------------ */

static const char DEVNAME[] = "NVIDIA H100 80GB HBM3";
static const uint8_t UUID[16] = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0,
                                 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
static const int64_t T0 = 1700000000123456789LL;

static inline gpu_wire_rec rec_hello(uint32_t pid)
{
    gpu_wire_rec r = {.kind = GPU_WIRE_HELLO};
    r.u.hello.wire_version = GPU_WIRE_VERSION;
    r.u.hello.pid = pid;
    r.u.hello.cupti_version = 130001;
    r.u.hello.clock_offset_ns = -123456789012LL;
    r.u.hello.init_ns = T0 - 1000;
    return r;
}

static inline gpu_wire_rec rec_name(uint32_t id, const char *name, uint32_t full)
{
    gpu_wire_rec r = {.kind = GPU_WIRE_NAME};
    r.u.name.id = id;
    r.u.name.name = name;
    r.u.name.len = (uint16_t)strlen(name);
    r.u.name.full_len = full ? full : (uint32_t)strlen(name);
    return r;
}

static inline gpu_wire_rec rec_kernel(uint32_t name_id, int i)
{
    gpu_wire_rec r = {.kind = GPU_WIRE_KERNEL};
    gpu_wire_kernel *k = &r.u.kernel;
    k->name_id = name_id;
    k->grid[0] = 1024 + (uint32_t)i;
    k->grid[1] = 2;
    k->grid[2] = 3;
    k->block[0] = 256;
    k->block[1] = 1;
    k->block[2] = 1;
    k->shared_mem = 49152;
    k->registers = 32;
    k->stream = 7;
    k->device = 1;
    k->context = 5;
    k->correlation = 100 + (uint32_t)i;
    k->graph_id = i % 2 ? 9 : 0;
    k->graph_node_id = i % 2 ? 0x1122334455667788ull : 0;
    k->start_ns = T0 + i * 1000;
    k->end_ns = T0 + i * 1000 + 500;
    return r;
}

static inline gpu_wire_rec rec_memcpy(uint8_t kind, bool p2p)
{
    gpu_wire_rec r = {.kind = GPU_WIRE_MEMCPY};
    gpu_wire_memcpy *m = &r.u.copy;
    m->bytes = 1ull << 20;
    m->copy_kind = kind;
    m->src_kind = GPU_WIRE_MEM_PINNED;
    m->dst_kind = GPU_WIRE_MEM_DEVICE;
    m->flags = p2p ? GPU_WIRE_MEMCPY_F_P2P : 0;
    m->device = 1;
    m->context = 5;
    m->stream = 8;
    m->correlation = 200;
    m->src_device = p2p ? 0 : 1;
    m->dst_device = 1;
    m->graph_id = 3;
    m->graph_node_id = 44;
    m->start_ns = T0 + 50000;
    m->end_ns = T0 + 60000;
    return r;
}

static inline gpu_wire_rec rec_memset(void)
{
    gpu_wire_rec r = {.kind = GPU_WIRE_MEMSET};
    gpu_wire_memset *m = &r.u.set;
    m->bytes = 4096;
    m->value = 0x7f;
    m->device = 1;
    m->context = 5;
    m->stream = 9;
    m->correlation = 300;
    m->mem_kind = GPU_WIRE_MEM_DEVICE;
    m->graph_id = 0;
    m->graph_node_id = 0;
    m->start_ns = T0 + 70000;
    m->end_ns = T0 + 70100;
    return r;
}

static inline gpu_wire_rec rec_context(void)
{
    gpu_wire_rec r = {.kind = GPU_WIRE_CONTEXT};
    r.u.context.device = 1;
    r.u.context.context = 5;
    memcpy(r.u.context.uuid, UUID, 16);
    r.u.context.name = DEVNAME;
    r.u.context.len = (uint16_t)strlen(DEVNAME);
    return r;
}

static inline gpu_wire_rec rec_gap(uint32_t reason, uint64_t count, const char *text)
{
    gpu_wire_rec r = {.kind = GPU_WIRE_GAP};
    r.u.gap.reason = reason;
    r.u.gap.count = count;
    r.u.gap.text = text;
    r.u.gap.len = text ? (uint16_t)strlen(text) : 0;
    return r;
}

static inline gpu_wire_rec rec_end(uint64_t k, uint64_t c, uint64_t s, uint64_t lost)
{
    gpu_wire_rec r = {.kind = GPU_WIRE_END};
    r.u.end.kernels = k;
    r.u.end.memcpys = c;
    r.u.end.memsets = s;
    r.u.end.lost = lost;
    return r;
}

static inline void rec_equal(const gpu_wire_rec *a, const gpu_wire_rec *b)
{
    assert_int_equal(a->kind, b->kind);
    switch (a->kind) {
    case GPU_WIRE_NAME:
        assert_int_equal(a->u.name.id, b->u.name.id);
        assert_int_equal(a->u.name.full_len, b->u.name.full_len);
        assert_int_equal(a->u.name.len, b->u.name.len);
        assert_memory_equal(a->u.name.name, b->u.name.name, a->u.name.len);
        break;
    case GPU_WIRE_CONTEXT:
        assert_int_equal(a->u.context.device, b->u.context.device);
        assert_int_equal(a->u.context.context, b->u.context.context);
        assert_memory_equal(a->u.context.uuid, b->u.context.uuid, 16);
        assert_int_equal(a->u.context.len, b->u.context.len);
        if (a->u.context.len)
            assert_memory_equal(a->u.context.name, b->u.context.name, a->u.context.len);
        break;
    case GPU_WIRE_GAP:
        assert_int_equal(a->u.gap.reason, b->u.gap.reason);
        assert_int_equal(a->u.gap.count, b->u.gap.count);
        assert_int_equal(a->u.gap.len, b->u.gap.len);
        if (a->u.gap.len)
            assert_memory_equal(a->u.gap.text, b->u.gap.text, a->u.gap.len);
        break;
    case GPU_WIRE_HELLO: assert_memory_equal(&a->u.hello, &b->u.hello, sizeof a->u.hello); break;
    case GPU_WIRE_KERNEL:
        assert_memory_equal(&a->u.kernel, &b->u.kernel, sizeof a->u.kernel);
        break;
    case GPU_WIRE_MEMCPY: assert_memory_equal(&a->u.copy, &b->u.copy, sizeof a->u.copy); break;
    case GPU_WIRE_MEMSET: { /* field by field: the struct has padding */
        const gpu_wire_memset *x = &a->u.set, *y = &b->u.set;
        assert_int_equal(x->bytes, y->bytes);
        assert_int_equal(x->value, y->value);
        assert_int_equal(x->device, y->device);
        assert_int_equal(x->context, y->context);
        assert_int_equal(x->stream, y->stream);
        assert_int_equal(x->correlation, y->correlation);
        assert_int_equal(x->mem_kind, y->mem_kind);
        assert_int_equal(x->graph_id, y->graph_id);
        assert_int_equal(x->graph_node_id, y->graph_node_id);
        assert_int_equal(x->start_ns, y->start_ns);
        assert_int_equal(x->end_ns, y->end_ns);
        break;
    }
    case GPU_WIRE_END: assert_memory_equal(&a->u.end, &b->u.end, sizeof a->u.end); break;
    default: fail();
    }
}

/* One of each kind, some twice. */
static inline size_t all_kinds(gpu_wire_rec *out)
{
    size_t n = 0;
    memset(out, 0, 12 * sizeof *out);
    out[n++] = rec_hello(4321);
    out[n++] = rec_context();
    out[n++] = rec_name(1, "ptb_add(float*, float, int)", 0);
    out[n++] = rec_kernel(1, 0);
    out[n++] = rec_kernel(1, 1);
    out[n++] = rec_kernel(0, 2);
    out[n++] = rec_memcpy(GPU_WIRE_COPY_HTOD, false);
    out[n++] = rec_memcpy(GPU_WIRE_COPY_PTOP, true);
    out[n++] = rec_memset();
    out[n++] = rec_gap(GPU_WIRE_GAP_SEND_DROPPED, 17, NULL);
    out[n++] = rec_gap(GPU_WIRE_GAP_SUBSCRIBER, 0, "another CUPTI client holds the subscription");
    out[n++] = rec_end(2, 2, 1, 17);
    return n;
}

static inline size_t build(uint8_t *buf, size_t cap, const gpu_wire_rec *recs, size_t n)
{
    gpu_wire_writer w;
    assert_int_equal(gpu_wire_writer_init(&w, buf, cap), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(gpu_wire_put(&w, &recs[i]), 0);
    return gpu_wire_writer_finish(&w);
}

#endif
