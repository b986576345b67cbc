/* CUPTI activity records to wire records (what and why: gpu_cupti.h). */
#include "gpu_cupti.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ptb_error.h"

/* ------------------------------------------------------------------ demangling */

typedef char *(*cxa_demangle_fn)(const char *mangled, char *buf, size_t *len, int *status);
static cxa_demangle_fn cupti_demangler;
static pthread_once_t cupti_demangler_once = PTHREAD_ONCE_INIT;

static void demangler_find(void)
{
    void *f = dlsym(RTLD_DEFAULT, "__cxa_demangle");
    if (!f) {
        /* a C program: libstdc++ is not loaded yet. Loading it does not change the program. */
        void *h = dlopen("libstdc++.so.6", RTLD_NOW | RTLD_LOCAL);
        if (h)
            f = dlsym(h, "__cxa_demangle");
    }
    cupti_demangler = (cxa_demangle_fn)f;
}

char *gpu_cupti_demangle(const char *mangled)
{
    if (!mangled || strncmp(mangled, "_Z", 2) != 0)
        return NULL;
    pthread_once(&cupti_demangler_once, demangler_find);
    if (!cupti_demangler)
        return NULL;
    int status = -1;
    char *out = cupti_demangler(mangled, NULL, NULL, &status);
    if (status != 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* ------------------------------------------------------------------ the converter */

typedef struct name_ent {
    uint64_t hash;
    char *mangled; /* as CUPTI gave it (the key) */
    char *shown;   /* demangled (or mangled), cut at GPU_WIRE_NAME_MAX */
    uint16_t len;  /* bytes of shown */
    uint32_t full; /* length before the cut */
    bool sent;
} name_ent;

typedef struct device_ent {
    uint32_t id;
    uint16_t len;
    uint8_t uuid[16];
    char name[GPU_WIRE_DEVNAME_MAX];
} device_ent;

typedef struct pending_ctx {
    uint32_t device, context;
    uint64_t gen; /* buffer count when it arrived */
} pending_ctx;

struct gpu_cupti {
    name_ent *names; /* names[id - 1] */
    uint32_t n_names, cap_names;
    uint32_t *slots; /* open addressing over names: 0 = empty, else id */
    uint32_t n_slots;
    size_t name_bytes;
    device_ent dev[GPU_CUPTI_DEVICES];
    unsigned n_dev;
    pending_ctx pend[GPU_CUPTI_PENDING];
    unsigned n_pend;
    uint64_t gen;
    gpu_cupti_stats st;
};

int gpu_cupti_new(gpu_cupti **out)
{
    *out = NULL;
    gpu_cupti *c = calloc(1, sizeof *c);
    if (!c)
        return PTB_ENOMEM;
    c->n_slots = 1024;
    c->slots = calloc(c->n_slots, sizeof *c->slots);
    if (!c->slots) {
        free(c);
        return PTB_ENOMEM;
    }
    pthread_once(&cupti_demangler_once, demangler_find);
    *out = c;
    return 0;
}

void gpu_cupti_free(gpu_cupti *c)
{
    if (!c)
        return;
    for (uint32_t i = 0; i < c->n_names; i++) {
        free(c->names[i].mangled);
        free(c->names[i].shown);
    }
    free(c->names);
    free(c->slots);
    free(c);
}

void gpu_cupti_stats_get(const gpu_cupti *c, gpu_cupti_stats *out)
{
    *out = c->st;
}

/* Length of s cut to at most max bytes without splitting a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

static uint64_t name_hash(const char *s, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
    }
    uint64_t t = 0;
    memcpy(&t, s + i, n - i);
    h = (h ^ t) * 0xC4CEB9FE1A85EC53ull;
    return h ^ (h >> 29);
}

static bool slots_grow(gpu_cupti *c)
{
    uint32_t n = c->n_slots * 2;
    uint32_t *s = calloc(n, sizeof *s);
    if (!s)
        return false;
    for (uint32_t id = 1; id <= c->n_names; id++) {
        uint32_t i = (uint32_t)c->names[id - 1].hash & (n - 1);
        while (s[i])
            i = (i + 1) & (n - 1);
        s[i] = id;
    }
    free(c->slots);
    c->slots = s;
    c->n_slots = n;
    return true;
}

/* The id of a kernel name, 0 when the table cannot take it. */
static uint32_t name_id(gpu_cupti *c, const char *mangled)
{
    if (!mangled)
        mangled = "";
    size_t len = strlen(mangled);
    uint64_t h = name_hash(mangled, len);
    uint32_t i = (uint32_t)h & (c->n_slots - 1);
    for (uint32_t id; (id = c->slots[i]) != 0; i = (i + 1) & (c->n_slots - 1)) {
        const name_ent *e = &c->names[id - 1];
        if (e->hash == h && !strcmp(e->mangled, mangled))
            return id;
    }
    /* a new name */
    if (c->n_names >= GPU_CUPTI_NAMES_MAX || c->name_bytes + 2 * len > GPU_CUPTI_NAME_BYTES)
        return 0;
    if ((c->n_names + 1) * 2 > c->n_slots) {
        if (!slots_grow(c))
            return 0;
        i = (uint32_t)h & (c->n_slots - 1);
        while (c->slots[i])
            i = (i + 1) & (c->n_slots - 1);
    }
    if (c->n_names == c->cap_names) {
        uint32_t cap = c->cap_names ? c->cap_names * 2 : 256;
        name_ent *nn = realloc(c->names, cap * sizeof *nn);
        if (!nn)
            return 0;
        c->names = nn;
        c->cap_names = cap;
    }
    char *dem = gpu_cupti_demangle(mangled);
    const char *src = dem ? dem : mangled;
    size_t full = strlen(src);
    const char *empty = "(anonymous kernel)"; /* a name record cannot be empty */
    if (full == 0) {
        src = empty;
        full = strlen(empty);
    }
    size_t cut = utf8_cut(src, full, GPU_WIRE_NAME_MAX);
    if (cut == 0) /* a first character over the bound: keep its bytes up to the bound */
        cut = GPU_WIRE_NAME_MAX;
    name_ent e = {
        .hash = h, .len = (uint16_t)cut, .full = full > UINT32_MAX ? UINT32_MAX : (uint32_t)full};
    e.mangled = strdup(mangled);
    e.shown = malloc(cut + 1);
    if (!e.mangled || !e.shown) {
        free(e.mangled);
        free(e.shown);
        free(dem);
        return 0;
    }
    memcpy(e.shown, src, cut);
    e.shown[cut] = 0;
    free(dem);
    c->names[c->n_names++] = e;
    c->slots[i] = c->n_names;
    c->name_bytes += len + cut + 2;
    c->st.names++;
    if (cut < full)
        c->st.names_cut++;
    return c->n_names;
}

void gpu_cupti_name_lost(gpu_cupti *c, uint32_t id)
{
    if (id >= 1 && id <= c->n_names)
        c->names[id - 1].sent = false;
}

static int64_t cupti_time(uint64_t t, int64_t offset)
{
    return t ? (int64_t)t + offset : 0;
}

static uint32_t nonneg(int32_t v)
{
    return v < 0 ? 0 : (uint32_t)v;
}

static void put_kernel(gpu_cupti *c, const CUpti_ActivityKernel10 *k, int64_t off,
                       gpu_cupti_put_fn put, void *arg)
{
    uint32_t id = name_id(c, k->name);
    if (id == 0) {
        c->st.unnamed++;
    } else if (!c->names[id - 1].sent) {
        const name_ent *e = &c->names[id - 1];
        gpu_wire_rec n = {.kind = GPU_WIRE_NAME};
        n.u.name.id = id;
        n.u.name.full_len = e->full;
        n.u.name.name = e->shown;
        n.u.name.len = e->len;
        put(arg, &n);
        c->names[id - 1].sent = true;
    }
    gpu_wire_rec r = {.kind = GPU_WIRE_KERNEL};
    gpu_wire_kernel *w = &r.u.kernel;
    w->name_id = id;
    w->grid[0] = nonneg(k->gridX);
    w->grid[1] = nonneg(k->gridY);
    w->grid[2] = nonneg(k->gridZ);
    w->block[0] = nonneg(k->blockX);
    w->block[1] = nonneg(k->blockY);
    w->block[2] = nonneg(k->blockZ);
    uint64_t shared = (uint64_t)nonneg(k->staticSharedMemory) + nonneg(k->dynamicSharedMemory);
    w->shared_mem = shared > UINT32_MAX ? UINT32_MAX : (uint32_t)shared;
    w->registers = k->registersPerThread;
    w->stream = k->streamId;
    w->device = k->deviceId;
    w->context = k->contextId;
    w->correlation = k->correlationId;
    w->graph_id = k->graphId;
    w->graph_node_id = k->graphNodeId;
    w->start_ns = cupti_time(k->start, off);
    w->end_ns = cupti_time(k->end, off);
    put(arg, &r);
    c->st.kernels++;
}

static const device_ent *device_find(const gpu_cupti *c, uint32_t id)
{
    for (unsigned i = 0; i < c->n_dev; i++)
        if (c->dev[i].id == id)
            return &c->dev[i];
    return NULL;
}

static void put_context(gpu_cupti *c, uint32_t device, uint32_t context, gpu_cupti_put_fn put,
                        void *arg)
{
    gpu_wire_rec r = {.kind = GPU_WIRE_CONTEXT};
    r.u.context.device = device;
    r.u.context.context = context;
    const device_ent *d = device_find(c, device);
    if (d) {
        memcpy(r.u.context.uuid, d->uuid, 16);
        r.u.context.name = d->name;
        r.u.context.len = d->len;
    }
    put(arg, &r);
    c->st.contexts++;
}

typedef enum pend_pick { PICK_DEVICE, PICK_OLD, PICK_ALL } pend_pick;

/* Send the waiting contexts that `pick` selects (PICK_DEVICE: those of device), keep the rest. */
static void pending_send(gpu_cupti *c, pend_pick pick, uint32_t device, gpu_cupti_put_fn put,
                         void *arg)
{
    unsigned k = 0;
    for (unsigned i = 0; i < c->n_pend; i++) {
        const pending_ctx *p = &c->pend[i];
        bool go = pick == PICK_ALL || (pick == PICK_OLD && p->gen < c->gen) ||
                  (pick == PICK_DEVICE && p->device == device);
        if (go)
            put_context(c, p->device, p->context, put, arg);
        else
            c->pend[k++] = *p;
    }
    c->n_pend = k;
}

static void put_device(gpu_cupti *c, const CUpti_ActivityDevice5 *d, gpu_cupti_put_fn put,
                       void *arg)
{
    c->st.devices++;
    if (device_find(c, d->id))
        return;
    if (c->n_dev == GPU_CUPTI_DEVICES)
        return;
    device_ent *e = &c->dev[c->n_dev++];
    memset(e, 0, sizeof *e);
    e->id = d->id;
    memcpy(e->uuid, d->uuid.bytes, 16);
    const char *name = d->name ? d->name : "";
    size_t len = strnlen(name, GPU_WIRE_DEVNAME_MAX + 1);
    len = utf8_cut(name, len, GPU_WIRE_DEVNAME_MAX);
    memcpy(e->name, name, len);
    e->len = (uint16_t)len;
    pending_send(c, PICK_DEVICE, d->id, put, arg);
}

int gpu_cupti_record(gpu_cupti *c, const CUpti_Activity *rec, int64_t off, gpu_cupti_put_fn put,
                     void *arg)
{
    switch (rec->kind) {
    case CUPTI_ACTIVITY_KIND_KERNEL:
    case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL:
        put_kernel(c, (const CUpti_ActivityKernel10 *)rec, off, put, arg);
        return 1;
    case CUPTI_ACTIVITY_KIND_MEMCPY: {
        const CUpti_ActivityMemcpy6 *m = (const CUpti_ActivityMemcpy6 *)rec;
        gpu_wire_rec r = {.kind = GPU_WIRE_MEMCPY};
        gpu_wire_memcpy *w = &r.u.copy;
        w->bytes = m->bytes;
        w->copy_kind = m->copyKind;
        w->src_kind = m->srcKind;
        w->dst_kind = m->dstKind;
        w->device = w->src_device = w->dst_device = m->deviceId;
        w->context = m->contextId;
        w->stream = m->streamId;
        w->correlation = m->correlationId;
        w->graph_id = m->graphId;
        w->graph_node_id = m->graphNodeId;
        w->start_ns = cupti_time(m->start, off);
        w->end_ns = cupti_time(m->end, off);
        put(arg, &r);
        c->st.memcpys++;
        return 1;
    }
    case CUPTI_ACTIVITY_KIND_MEMCPY2: {
        const CUpti_ActivityMemcpyPtoP4 *m = (const CUpti_ActivityMemcpyPtoP4 *)rec;
        gpu_wire_rec r = {.kind = GPU_WIRE_MEMCPY};
        gpu_wire_memcpy *w = &r.u.copy;
        w->bytes = m->bytes;
        w->copy_kind = m->copyKind;
        w->src_kind = m->srcKind;
        w->dst_kind = m->dstKind;
        w->flags = GPU_WIRE_MEMCPY_F_P2P;
        w->device = m->deviceId;
        w->src_device = m->srcDeviceId;
        w->dst_device = m->dstDeviceId;
        w->context = m->contextId;
        w->stream = m->streamId;
        w->correlation = m->correlationId;
        w->graph_id = m->graphId;
        w->graph_node_id = m->graphNodeId;
        w->start_ns = cupti_time(m->start, off);
        w->end_ns = cupti_time(m->end, off);
        put(arg, &r);
        c->st.memcpys++;
        return 1;
    }
    case CUPTI_ACTIVITY_KIND_MEMSET: {
        const CUpti_ActivityMemset4 *m = (const CUpti_ActivityMemset4 *)rec;
        gpu_wire_rec r = {.kind = GPU_WIRE_MEMSET};
        gpu_wire_memset *w = &r.u.set;
        w->bytes = m->bytes;
        w->value = m->value;
        w->device = m->deviceId;
        w->context = m->contextId;
        w->stream = m->streamId;
        w->correlation = m->correlationId;
        w->mem_kind = m->memoryKind;
        w->graph_id = m->graphId;
        w->graph_node_id = m->graphNodeId;
        w->start_ns = cupti_time(m->start, off);
        w->end_ns = cupti_time(m->end, off);
        put(arg, &r);
        c->st.memsets++;
        return 1;
    }
    case CUPTI_ACTIVITY_KIND_DEVICE:
        put_device(c, (const CUpti_ActivityDevice5 *)rec, put, arg);
        return 1;
    case CUPTI_ACTIVITY_KIND_CONTEXT: {
        const CUpti_ActivityContext3 *x = (const CUpti_ActivityContext3 *)rec;
        if (device_find(c, x->deviceId) || c->n_pend == GPU_CUPTI_PENDING) {
            put_context(c, x->deviceId, x->contextId, put, arg);
        } else {
            pending_ctx p = {x->deviceId, x->contextId, c->gen};
            c->pend[c->n_pend++] = p;
        }
        return 1;
    }
    default: c->st.ignored++; return 0;
    }
}

void gpu_cupti_buffer_end(gpu_cupti *c, gpu_cupti_put_fn put, void *arg)
{
    pending_send(c, PICK_OLD, 0, put, arg);
    c->gen++;
}

void gpu_cupti_flush(gpu_cupti *c, gpu_cupti_put_fn put, void *arg)
{
    pending_send(c, PICK_ALL, 0, put, arg);
}
