/* The GPU wire codec (layout and rules: gpu_wire.h). No CUDA, no allocation: it runs inside the
 * recorded process (libptbgpu.so) and in the recorder, and its reader is fuzzed
 * (tests/fuzz/fuzz_gpu_wire.c). */
#include "gpu_wire.h"

#include <errno.h>
#include <string.h>

#include "ptb_error.h"

/* ------------------------------------------------------------------ little-endian bytes */

static void put_u8(uint8_t *p, uint8_t v)
{
    p[0] = v;
}

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* A cursor over a record's payload. Bounds were checked before it is used. */
typedef struct wcur {
    uint8_t *p;
} wcur;

static void w8(wcur *c, uint8_t v)
{
    put_u8(c->p, v);
    c->p += 1;
}
static void w16(wcur *c, uint16_t v)
{
    put_u16(c->p, v);
    c->p += 2;
}
static void w32(wcur *c, uint32_t v)
{
    put_u32(c->p, v);
    c->p += 4;
}
static void w64(wcur *c, uint64_t v)
{
    put_u64(c->p, v);
    c->p += 8;
}
static void wbytes(wcur *c, const void *b, size_t n)
{
    if (n)
        memcpy(c->p, b, n);
    c->p += n;
}

typedef struct rcur {
    const uint8_t *p;
} rcur;

static uint8_t r8(rcur *c)
{
    return *c->p++;
}
static uint16_t r16(rcur *c)
{
    uint16_t v = get_u16(c->p);
    c->p += 2;
    return v;
}
static uint32_t r32(rcur *c)
{
    uint32_t v = get_u32(c->p);
    c->p += 4;
    return v;
}
static uint64_t r64(rcur *c)
{
    uint64_t v = get_u64(c->p);
    c->p += 8;
    return v;
}

/* ------------------------------------------------------------------ sizes */

static bool text_ok(const char *s, size_t n, size_t max)
{
    return n <= max && (n == 0 || (s && !memchr(s, '\0', n)));
}

size_t gpu_wire_rec_size(const gpu_wire_rec *r)
{
    switch (r->kind) {
    case GPU_WIRE_HELLO: return GPU_WIRE_HELLO_SIZE;
    case GPU_WIRE_NAME: {
        const gpu_wire_name *n = &r->u.name;
        if (n->id == 0 || n->id > GPU_WIRE_NAME_ID_MAX || n->len == 0 || n->full_len < n->len ||
            !text_ok(n->name, n->len, GPU_WIRE_NAME_MAX))
            return 0;
        return GPU_WIRE_NAME_FIXED + (size_t)n->len;
    }
    case GPU_WIRE_KERNEL:
        return r->u.kernel.name_id > GPU_WIRE_NAME_ID_MAX ? 0 : GPU_WIRE_KERNEL_SIZE;
    case GPU_WIRE_MEMCPY:
        return (r->u.copy.flags & ~GPU_WIRE_MEMCPY_F_P2P) ? 0 : GPU_WIRE_MEMCPY_SIZE;
    case GPU_WIRE_MEMSET: return GPU_WIRE_MEMSET_SIZE;
    case GPU_WIRE_CONTEXT:
        if (!text_ok(r->u.context.name, r->u.context.len, GPU_WIRE_DEVNAME_MAX))
            return 0;
        return GPU_WIRE_CONTEXT_FIXED + (size_t)r->u.context.len;
    case GPU_WIRE_GAP:
        if (!text_ok(r->u.gap.text, r->u.gap.len, GPU_WIRE_TEXT_MAX))
            return 0;
        return GPU_WIRE_GAP_FIXED + (size_t)r->u.gap.len;
    case GPU_WIRE_END: return GPU_WIRE_END_SIZE;
    default: return 0;
    }
}

/* ------------------------------------------------------------------ writing */

int gpu_wire_writer_init(gpu_wire_writer *w, uint8_t *buf, size_t cap)
{
    memset(w, 0, sizeof *w);
    if (!buf || cap < GPU_WIRE_HEADER_SIZE)
        return PTB_EINVAL;
    w->buf = buf;
    w->cap = cap > GPU_WIRE_BATCH_MAX ? GPU_WIRE_BATCH_MAX : cap;
    gpu_wire_writer_reset(w);
    return 0;
}

void gpu_wire_writer_reset(gpu_wire_writer *w)
{
    w->len = GPU_WIRE_HEADER_SIZE;
    w->count = 0;
    put_u32(w->buf, GPU_WIRE_MAGIC);
    put_u16(w->buf + 4, GPU_WIRE_VERSION);
    put_u16(w->buf + 6, 0);
    put_u32(w->buf + 8, GPU_WIRE_HEADER_SIZE);
    put_u32(w->buf + 12, 0);
}

int gpu_wire_put(gpu_wire_writer *w, const gpu_wire_rec *r)
{
    size_t size = gpu_wire_rec_size(r);
    if (size == 0)
        return PTB_EINVAL;
    if (size > w->cap - w->len)
        return -ENOSPC;
    wcur c = {w->buf + w->len};
    w16(&c, r->kind);
    w16(&c, (uint16_t)size);
    switch (r->kind) {
    case GPU_WIRE_HELLO: {
        const gpu_wire_hello *h = &r->u.hello;
        w32(&c, h->wire_version);
        w32(&c, h->pid);
        w32(&c, h->cupti_version);
        w32(&c, h->flags);
        w64(&c, (uint64_t)h->clock_offset_ns);
        w64(&c, (uint64_t)h->init_ns);
        break;
    }
    case GPU_WIRE_NAME: {
        const gpu_wire_name *n = &r->u.name;
        w32(&c, n->id);
        w32(&c, n->full_len);
        w16(&c, n->len);
        wbytes(&c, n->name, n->len);
        break;
    }
    case GPU_WIRE_KERNEL: {
        const gpu_wire_kernel *k = &r->u.kernel;
        w32(&c, k->name_id);
        for (int i = 0; i < 3; i++)
            w32(&c, k->grid[i]);
        for (int i = 0; i < 3; i++)
            w32(&c, k->block[i]);
        w32(&c, k->shared_mem);
        w32(&c, k->registers);
        w32(&c, k->stream);
        w32(&c, k->device);
        w32(&c, k->context);
        w32(&c, k->correlation);
        w32(&c, k->graph_id);
        w64(&c, k->graph_node_id);
        w64(&c, (uint64_t)k->start_ns);
        w64(&c, (uint64_t)k->end_ns);
        break;
    }
    case GPU_WIRE_MEMCPY: {
        const gpu_wire_memcpy *m = &r->u.copy;
        w64(&c, m->bytes);
        w8(&c, m->copy_kind);
        w8(&c, m->src_kind);
        w8(&c, m->dst_kind);
        w8(&c, m->flags);
        w32(&c, m->device);
        w32(&c, m->context);
        w32(&c, m->stream);
        w32(&c, m->correlation);
        w32(&c, m->src_device);
        w32(&c, m->dst_device);
        w32(&c, m->graph_id);
        w64(&c, m->graph_node_id);
        w64(&c, (uint64_t)m->start_ns);
        w64(&c, (uint64_t)m->end_ns);
        break;
    }
    case GPU_WIRE_MEMSET: {
        const gpu_wire_memset *m = &r->u.set;
        w64(&c, m->bytes);
        w32(&c, m->value);
        w32(&c, m->device);
        w32(&c, m->context);
        w32(&c, m->stream);
        w32(&c, m->correlation);
        w16(&c, m->mem_kind);
        w16(&c, 0);
        w32(&c, m->graph_id);
        w64(&c, m->graph_node_id);
        w64(&c, (uint64_t)m->start_ns);
        w64(&c, (uint64_t)m->end_ns);
        break;
    }
    case GPU_WIRE_CONTEXT: {
        const gpu_wire_context *x = &r->u.context;
        w32(&c, x->device);
        w32(&c, x->context);
        wbytes(&c, x->uuid, 16);
        w16(&c, x->len);
        wbytes(&c, x->name, x->len);
        break;
    }
    case GPU_WIRE_GAP: {
        const gpu_wire_gap *g = &r->u.gap;
        w32(&c, g->reason);
        w64(&c, g->count);
        w16(&c, g->len);
        wbytes(&c, g->text, g->len);
        break;
    }
    case GPU_WIRE_END: {
        const gpu_wire_end *e = &r->u.end;
        w64(&c, e->kernels);
        w64(&c, e->memcpys);
        w64(&c, e->memsets);
        w64(&c, e->lost);
        break;
    }
    }
    w->len += size;
    w->count++;
    return 0;
}

size_t gpu_wire_writer_finish(gpu_wire_writer *w)
{
    put_u32(w->buf + 8, (uint32_t)w->len);
    put_u32(w->buf + 12, w->count);
    return w->len;
}

/* ------------------------------------------------------------------ reading */

/* Decode the record at p (avail bytes left in the batch) into *rec; its size into *size.
 * Returns NULL when it is well formed, else why not. */
static const char *rec_decode(const uint8_t *p, size_t avail, gpu_wire_rec *rec, size_t *size)
{
    if (avail < GPU_WIRE_REC_HEADER)
        return "record header past the end of the batch";
    uint16_t kind = get_u16(p), sz = get_u16(p + 2);
    if (sz < GPU_WIRE_REC_HEADER)
        return "record size smaller than its header";
    if (sz > avail)
        return "record past the end of the batch";
    memset(rec, 0, sizeof *rec);
    rec->kind = kind;
    *size = sz;
    rcur c = {p + GPU_WIRE_REC_HEADER};
    switch (kind) {
    case GPU_WIRE_HELLO: {
        if (sz != GPU_WIRE_HELLO_SIZE)
            return "hello record of the wrong size";
        gpu_wire_hello *h = &rec->u.hello;
        h->wire_version = r32(&c);
        h->pid = r32(&c);
        h->cupti_version = r32(&c);
        h->flags = r32(&c);
        h->clock_offset_ns = (int64_t)r64(&c);
        h->init_ns = (int64_t)r64(&c);
        if (h->wire_version != GPU_WIRE_VERSION)
            return "hello of another wire version";
        if (h->flags != 0)
            return "hello with reserved flags set";
        if (h->pid == 0 || h->pid > INT32_MAX)
            return "hello with an impossible pid";
        return NULL;
    }
    case GPU_WIRE_NAME: {
        if (sz < GPU_WIRE_NAME_FIXED)
            return "name record shorter than its fixed part";
        gpu_wire_name *n = &rec->u.name;
        n->id = r32(&c);
        n->full_len = r32(&c);
        n->len = r16(&c);
        n->name = (const char *)c.p;
        if (n->id == 0 || n->id > GPU_WIRE_NAME_ID_MAX)
            return "name id out of range";
        if (n->len == 0 || n->len > GPU_WIRE_NAME_MAX)
            return "name length out of range";
        if ((size_t)sz != GPU_WIRE_NAME_FIXED + (size_t)n->len)
            return "name length disagrees with the record size";
        if (n->full_len < n->len)
            return "name longer than its full length";
        if (memchr(n->name, '\0', n->len))
            return "NUL inside a name";
        return NULL;
    }
    case GPU_WIRE_KERNEL: {
        if (sz != GPU_WIRE_KERNEL_SIZE)
            return "kernel record of the wrong size";
        gpu_wire_kernel *k = &rec->u.kernel;
        k->name_id = r32(&c);
        for (int i = 0; i < 3; i++)
            k->grid[i] = r32(&c);
        for (int i = 0; i < 3; i++)
            k->block[i] = r32(&c);
        k->shared_mem = r32(&c);
        k->registers = r32(&c);
        k->stream = r32(&c);
        k->device = r32(&c);
        k->context = r32(&c);
        k->correlation = r32(&c);
        k->graph_id = r32(&c);
        k->graph_node_id = r64(&c);
        k->start_ns = (int64_t)r64(&c);
        k->end_ns = (int64_t)r64(&c);
        if (k->name_id > GPU_WIRE_NAME_ID_MAX)
            return "kernel name id out of range";
        return NULL;
    }
    case GPU_WIRE_MEMCPY: {
        if (sz != GPU_WIRE_MEMCPY_SIZE)
            return "memcpy record of the wrong size";
        gpu_wire_memcpy *m = &rec->u.copy;
        m->bytes = r64(&c);
        m->copy_kind = r8(&c);
        m->src_kind = r8(&c);
        m->dst_kind = r8(&c);
        m->flags = r8(&c);
        m->device = r32(&c);
        m->context = r32(&c);
        m->stream = r32(&c);
        m->correlation = r32(&c);
        m->src_device = r32(&c);
        m->dst_device = r32(&c);
        m->graph_id = r32(&c);
        m->graph_node_id = r64(&c);
        m->start_ns = (int64_t)r64(&c);
        m->end_ns = (int64_t)r64(&c);
        if (m->flags & ~GPU_WIRE_MEMCPY_F_P2P)
            return "memcpy with reserved flags set";
        return NULL;
    }
    case GPU_WIRE_MEMSET: {
        if (sz != GPU_WIRE_MEMSET_SIZE)
            return "memset record of the wrong size";
        gpu_wire_memset *m = &rec->u.set;
        m->bytes = r64(&c);
        m->value = r32(&c);
        m->device = r32(&c);
        m->context = r32(&c);
        m->stream = r32(&c);
        m->correlation = r32(&c);
        m->mem_kind = r16(&c);
        uint16_t reserved = r16(&c);
        m->graph_id = r32(&c);
        m->graph_node_id = r64(&c);
        m->start_ns = (int64_t)r64(&c);
        m->end_ns = (int64_t)r64(&c);
        if (reserved)
            return "memset with reserved bits set";
        return NULL;
    }
    case GPU_WIRE_CONTEXT: {
        if (sz < GPU_WIRE_CONTEXT_FIXED)
            return "context record shorter than its fixed part";
        gpu_wire_context *x = &rec->u.context;
        x->device = r32(&c);
        x->context = r32(&c);
        memcpy(x->uuid, c.p, 16);
        c.p += 16;
        x->len = r16(&c);
        x->name = (const char *)c.p;
        if (x->len > GPU_WIRE_DEVNAME_MAX)
            return "device name too long";
        if ((size_t)sz != GPU_WIRE_CONTEXT_FIXED + (size_t)x->len)
            return "device name length disagrees with the record size";
        if (memchr(x->name, '\0', x->len))
            return "NUL inside a device name";
        return NULL;
    }
    case GPU_WIRE_GAP: {
        if (sz < GPU_WIRE_GAP_FIXED)
            return "gap record shorter than its fixed part";
        gpu_wire_gap *g = &rec->u.gap;
        g->reason = r32(&c);
        g->count = r64(&c);
        g->len = r16(&c);
        g->text = (const char *)c.p;
        if (g->len > GPU_WIRE_TEXT_MAX)
            return "gap text too long";
        if ((size_t)sz != GPU_WIRE_GAP_FIXED + (size_t)g->len)
            return "gap text length disagrees with the record size";
        if (memchr(g->text, '\0', g->len))
            return "NUL inside a gap text";
        return NULL;
    }
    case GPU_WIRE_END: {
        if (sz != GPU_WIRE_END_SIZE)
            return "end record of the wrong size";
        gpu_wire_end *e = &rec->u.end;
        e->kernels = r64(&c);
        e->memcpys = r64(&c);
        e->memsets = r64(&c);
        e->lost = r64(&c);
        return NULL;
    }
    default: return "unknown record kind";
    }
}

int gpu_wire_reader_open(gpu_wire_reader *r, const void *buf, size_t len, const char **why)
{
    const char *bad = NULL;
    const uint8_t *b = buf;
    memset(r, 0, sizeof *r);
    if (!b || len < GPU_WIRE_HEADER_SIZE)
        bad = "batch shorter than its header";
    else if (len > GPU_WIRE_BATCH_MAX)
        bad = "batch over the size bound";
    else if (get_u32(b) != GPU_WIRE_MAGIC)
        bad = "bad magic";
    else if (get_u16(b + 4) != GPU_WIRE_VERSION)
        bad = "batch of another wire version";
    else if (get_u16(b + 6) != 0)
        bad = "batch with reserved flags set";
    else if (get_u32(b + 8) != len)
        bad = "batch length disagrees with the message length";
    if (!bad) {
        uint32_t count = get_u32(b + 12);
        if (count > (len - GPU_WIRE_HEADER_SIZE) / GPU_WIRE_REC_HEADER)
            bad = "record count larger than the batch can hold";
        size_t off = GPU_WIRE_HEADER_SIZE;
        for (uint32_t i = 0; !bad && i < count; i++) {
            gpu_wire_rec rec;
            size_t sz = 0;
            bad = rec_decode(b + off, len - off, &rec, &sz);
            off += sz;
        }
        if (!bad && off != len)
            bad = "bytes after the last record";
        if (!bad) {
            r->buf = b;
            r->len = len;
            r->off = GPU_WIRE_HEADER_SIZE;
            r->count = count;
        }
    }
    if (why)
        *why = bad;
    return bad ? PTB_ECORRUPT : 0;
}

int gpu_wire_reader_next(gpu_wire_reader *r, gpu_wire_rec *rec)
{
    if (!r->buf || r->next >= r->count)
        return PTB_ENOTFOUND;
    size_t sz = 0;
    if (rec_decode(r->buf + r->off, r->len - r->off, rec, &sz))
        return PTB_ECORRUPT; /* cannot happen after a successful open */
    r->off += sz;
    r->next++;
    return 0;
}

/* ------------------------------------------------------------------ names of numbers */

const char *gpu_wire_copy_kind_name(uint8_t k)
{
    switch (k) {
    case GPU_WIRE_COPY_HTOD: return "HtoD";
    case GPU_WIRE_COPY_DTOH: return "DtoH";
    case GPU_WIRE_COPY_DTOD: return "DtoD";
    case GPU_WIRE_COPY_HTOH: return "HtoH";
    case GPU_WIRE_COPY_PTOP: return "PtoP";
    default: return "other";
    }
}

const char *gpu_wire_mem_kind_name(uint16_t k)
{
    static const char *const names[] = {"unknown", "pageable", "pinned",        "device",
                                        "array",   "managed",  "device_static", "managed_static"};
    return k < sizeof names / sizeof names[0] ? names[k] : "other";
}

const char *gpu_wire_gap_reason_name(uint32_t reason)
{
    static const char *const names[] = {"unknown",        "subscriber_conflict", "no_device",
                                        "cupti_error",    "cupti_dropped",       "send_dropped",
                                        "buffer_refused", "cupti_version",       "name_table_full"};
    return reason < sizeof names / sizeof names[0] ? names[reason] : "unknown";
}
