/* The GPU receiver: batches from libptbgpu.so to events (what and why: gpu_recv.h; the bytes:
 * gpu_wire.h).
 *
 * One thread owns everything below `r->live`: the listening socket, the connections, their name
 * tables. gpu_recv_stop wakes it through an eventfd; it then takes the connections still queued,
 * closes the listening socket and reads until every connection has closed or the drain deadline
 * passes. Counters are published to r->pub (under r->mu) after every batch, for
 * gpu_recv_stats_get. */
#include "gpu_recv.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "event_type.h"
#include "gpu_wire.h"
#include "redact.h"

typedef struct conn {
    int fd;
    int pid; /* SO_PEERCRED */
    uint64_t exec_id;
    bool hello, ended;
    uint64_t batches;
    char **names; /* names[id]: NUL-terminated, valid UTF-8; NULL when not defined */
    uint32_t names_cap;
    size_t name_bytes;
    uint64_t malformed, unknown_names;
    uint64_t kernels, memcpys, memsets; /* records received */
} conn;

/* Kernels of one connection on their way into one gpu.kernel_batch event (event.proto). */
#define RECV_KB_NAMES STORE_KERNELS_NAMES_MAX /* distinct names in one batch event */
#define RECV_KB_MAX (GPU_WIRE_BATCH_MAX / GPU_WIRE_KERNEL_SIZE + 1)
enum {
    KB_NAME,
    KB_GX,
    KB_GY,
    KB_GZ,
    KB_BX,
    KB_BY,
    KB_BZ,
    KB_SMEM,
    KB_REGS,
    KB_STREAM,
    KB_DEV,
    KB_CTX,
    KB_GRAPH,
    KB_U32
};
typedef struct kbatch {
    uint32_t n, nnames;
    uint32_t name_id[RECV_KB_NAMES]; /* the process's name id of each entry of names */
    Ptb__V1__GpuKernelName names[RECV_KB_NAMES];
    Ptb__V1__GpuKernelName *pnames[RECV_KB_NAMES];
    uint32_t u32[KB_U32][RECV_KB_MAX];
    int64_t start_delta[RECV_KB_MAX], duration[RECV_KB_MAX];
    int32_t corr_delta[RECV_KB_MAX];
    uint64_t node[RECV_KB_MAX];
    int64_t base, prev_start;
    uint32_t prev_corr;
    bool nz[KB_U32 + 4]; /* columns with a value that is not zero */
} kbatch;

struct gpu_recv {
    store *s;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    gpu_recv_exec_fn exec_of;
    void *arg;
    int lfd, efd, ep;
    bool accept_paused; /* out of descriptors: the listening socket is not polled */
    pthread_t th;
    conn **conns;
    size_t n_conns;
    uint8_t *buf;        /* one batch */
    char *clean;         /* UTF-8 cleaning of one text */
    kbatch *kb;          /* kernels of the connection being read, not yet appended */
    int err;             /* first store error */
    gpu_recv_stats live; /* the thread's */
    pthread_mutex_t mu;
    gpu_recv_stats pub; /* under mu */
};

#define RECV_CLEAN_MAX (3 * GPU_WIRE_NAME_MAX + 1)
#define RECV_READS_PER_WAKE 64

/* sentinels for epoll data */
static char recv_tag_listen, recv_tag_stop;

static int64_t mono_ms(void)
{
    return store_now_mono_ns() / 1000000;
}

/* The text made valid UTF-8 and NUL-terminated, in r->clean (valid until the next call). */
static const char *clean_text(gpu_recv *r, const char *s, size_t len)
{
    if (len > GPU_WIRE_NAME_MAX)
        len = GPU_WIRE_NAME_MAX;
    size_t n = len ? redact_utf8_clean(s, len, r->clean) : 0;
    r->clean[n] = 0;
    return r->clean;
}

/* ------------------------------------------------------------------ events */

static void emit(gpu_recv *r, conn *c, ptb_event *ev, uint64_t *counter)
{
    ev->source = PTB__V1__SOURCE__SOURCE_GPU;
    ev->exec_id = c ? c->exec_id : 0;
    if (r->err) {
        r->live.events_lost++;
        return;
    }
    int rc = store_append(r->s, ev, 0, NULL);
    if (rc == 0) {
        if (counter)
            (*counter)++;
        return;
    }
    r->live.events_lost++;
    if (rc != PTB_ETOOBIG)
        r->err = rc; /* the store stopped: count the rest */
}

__attribute__((format(printf, 5, 6))) static void emit_gap(gpu_recv *r, conn *c, const char *reason,
                                                           uint64_t count, const char *fmt, ...)
{
    char detail[GPU_WIRE_TEXT_MAX + 256];
    detail[0] = 0;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof detail, fmt, ap);
        va_end(ap);
    }
    Ptb__V1__Gap g = PTB__V1__GAP__INIT;
    g.origin = (char *)"gpu";
    g.reason = (char *)reason;
    g.count = count;
    g.detail = (char *)clean_text(r, detail, strlen(detail));
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.body_case = PTB__V1__EVENT__BODY_GAP;
    ev.gap = &g;
    emit(r, c, &ev, &r->live.gaps);
}

static void uuid_text(const uint8_t u[16], char out[48])
{
    static const uint8_t zero[16];
    if (!memcmp(u, zero, 16)) {
        out[0] = 0;
        return;
    }
    snprintf(out, 48, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
             u[14], u[15]);
}

static void kb_flush(gpu_recv *r, conn *c);

/* Whether host pid `pid`, in a PID namespace of its own (a sandboxed `ptb run`), calls itself
 * inner there: the last NSpid of /proc/PID/status. */
static bool ns_pid_is(int pid, int inner)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "re");
    bool yes = false;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "NSpid:", 6) == 0) {
            const char *last = strrchr(line, '\t');
            yes = last && atoi(last + 1) == inner;
            break;
        }
    if (f)
        fclose(f);
    return yes;
}

static void on_name(gpu_recv *r, conn *c, const gpu_wire_name *n)
{
    if (n->full_len > n->len)
        emit_gap(r, c, "name_truncated", 1, "kernel name cut at %u of %u bytes: %.*s...",
                 (unsigned)n->len, (unsigned)n->full_len, n->len > 200 ? 200 : (int)n->len,
                 n->name);
    if (n->id >= GPU_RECV_NAMES_MAX)
        return; /* cannot be: the wire bounds ids lower; kernels naming it count as unknown */
    if (n->id >= c->names_cap) {
        uint32_t cap = c->names_cap ? c->names_cap : 256;
        while (cap <= n->id)
            cap *= 2;
        if (cap > GPU_RECV_NAMES_MAX)
            cap = GPU_RECV_NAMES_MAX;
        char **nn = realloc(c->names, cap * sizeof *nn);
        if (!nn)
            return;
        memset(nn + c->names_cap, 0, (cap - c->names_cap) * sizeof *nn);
        c->names = nn;
        c->names_cap = cap;
    }
    const char *txt = clean_text(r, n->name, n->len);
    size_t len = strlen(txt);
    char *old = c->names[n->id];
    for (uint32_t i = 0; old && i < r->kb->nnames; i++)
        if (r->kb->name_id[i] == n->id)
            kb_flush(r, c); /* kernels gathered so far point to the old text */
    size_t old_len = old ? strlen(old) + 1 : 0;
    if (c->name_bytes - old_len + len + 1 > GPU_RECV_NAME_BYTES)
        return; /* over the bound: its kernels count as unknown names */
    char *copy = malloc(len + 1);
    if (!copy)
        return;
    memcpy(copy, txt, len + 1);
    free(old);
    c->names[n->id] = copy;
    c->name_bytes = c->name_bytes - old_len + len + 1;
}

/* Append the kernels gathered in r->kb as one gpu.kernel_batch event of c. */
static void kb_flush(gpu_recv *r, conn *c)
{
    kbatch *b = r->kb;
    if (!b->n)
        return;
    Ptb__V1__GpuKernelBatch m = PTB__V1__GPU_KERNEL_BATCH__INIT;
    m.count = b->n;
    m.n_names = b->nnames;
    m.names = b->pnames;
    size_t *nf[KB_U32] = {&m.n_name,      &m.n_grid_x,  &m.n_grid_y,  &m.n_grid_z,
                          &m.n_block_x,   &m.n_block_y, &m.n_block_z, &m.n_shared_mem,
                          &m.n_registers, &m.n_stream,  &m.n_device,  &m.n_context_id,
                          &m.n_graph_id};
    uint32_t **vf[KB_U32] = {&m.name,    &m.grid_x,     &m.grid_y,     &m.grid_z,    &m.block_x,
                             &m.block_y, &m.block_z,    &m.shared_mem, &m.registers, &m.stream,
                             &m.device,  &m.context_id, &m.graph_id};
    for (int k = 0; k < KB_U32; k++)
        if (b->nz[k]) {
            *nf[k] = b->n;
            *vf[k] = b->u32[k];
        }
    if (b->nz[KB_U32]) {
        m.n_start_delta = b->n;
        m.start_delta = b->start_delta;
    }
    if (b->nz[KB_U32 + 1]) {
        m.n_duration = b->n;
        m.duration = b->duration;
    }
    if (b->nz[KB_U32 + 2]) {
        m.n_correlation_delta = b->n;
        m.correlation_delta = b->corr_delta;
    }
    if (b->nz[KB_U32 + 3]) {
        m.n_graph_node_id = b->n;
        m.graph_node_id = b->node;
    }
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.ts_ns = b->base;
    ev.body_case = PTB__V1__EVENT__BODY_GPU_KERNEL_BATCH;
    ev.gpu_kernel_batch = &m;
    ev.source = PTB__V1__SOURCE__SOURCE_GPU;
    ev.exec_id = c->exec_id;
    int rc = r->err ? r->err : store_append(r->s, &ev, 0, NULL);
    if (rc == 0) {
        r->live.kernels += b->n;
    } else {
        r->live.events_lost += b->n;
        if (rc != PTB_ETOOBIG && !r->err)
            r->err = rc; /* the store stopped: count the rest */
    }
    b->n = b->nnames = 0;
    memset(b->nz, 0, sizeof b->nz);
}

static void on_kernel(gpu_recv *r, conn *c, const gpu_wire_kernel *k)
{
    kbatch *b = r->kb;
    const char *name = NULL;
    if (k->name_id && k->name_id < c->names_cap)
        name = c->names[k->name_id];
    if (!name && k->name_id)
        c->unknown_names++;
    uint32_t slot = 0; /* 1 + index into names, 0 = no name */
    if (name) {
        for (uint32_t i = 0; i < b->nnames && !slot; i++)
            if (b->name_id[i] == k->name_id)
                slot = i + 1;
        if (!slot && b->nnames == RECV_KB_NAMES)
            kb_flush(r, c);
        if (!slot) {
            Ptb__V1__GpuKernelName *e = &b->names[b->nnames];
            ptb__v1__gpu_kernel_name__init(e);
            e->name = (char *)name;
            b->pnames[b->nnames] = e;
            b->name_id[b->nnames++] = k->name_id;
            slot = b->nnames;
        }
    }
    if (b->n == RECV_KB_MAX)
        kb_flush(r, c); /* cannot be: a wire batch holds fewer; kept for safety */
    uint32_t i = b->n++;
    if (i == 0) {
        b->base = k->start_ns ? k->start_ns : store_now_realtime_ns();
        b->prev_start = b->base;
        b->prev_corr = 0;
    }
    const uint32_t v[KB_U32] = {slot,        k->grid[0],  k->grid[1],    k->grid[2],   k->block[0],
                                k->block[1], k->block[2], k->shared_mem, k->registers, k->stream,
                                k->device,   k->context,  k->graph_id};
    for (int j = 0; j < KB_U32; j++) {
        b->u32[j][i] = v[j];
        b->nz[j] |= v[j] != 0;
    }
    b->start_delta[i] = (int64_t)((uint64_t)k->start_ns - (uint64_t)b->prev_start);
    b->duration[i] = (int64_t)((uint64_t)k->end_ns - (uint64_t)k->start_ns);
    b->corr_delta[i] = (int32_t)(k->correlation - b->prev_corr);
    b->node[i] = k->graph_node_id;
    b->nz[KB_U32] |= b->start_delta[i] != 0;
    b->nz[KB_U32 + 1] |= b->duration[i] != 0;
    b->nz[KB_U32 + 2] |= b->corr_delta[i] != 0;
    b->nz[KB_U32 + 3] |= b->node[i] != 0;
    b->prev_start = k->start_ns;
    b->prev_corr = k->correlation;
    c->kernels++;
}

static void on_memcpy(gpu_recv *r, conn *c, const gpu_wire_memcpy *w)
{
    Ptb__V1__GpuMemcpy m = PTB__V1__GPU_MEMCPY__INIT;
    m.bytes = w->bytes;
    m.kind = (char *)gpu_wire_copy_kind_name(w->copy_kind);
    m.device = w->device;
    m.stream = w->stream;
    m.start_ns = w->start_ns;
    m.end_ns = w->end_ns;
    m.correlation_id = w->correlation;
    m.context_id = w->context;
    m.src_kind = (char *)gpu_wire_mem_kind_name(w->src_kind);
    m.dst_kind = (char *)gpu_wire_mem_kind_name(w->dst_kind);
    m.graph_id = w->graph_id;
    m.graph_node_id = w->graph_node_id;
    m.src_device = w->src_device;
    m.dst_device = w->dst_device;
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.ts_ns = w->start_ns;
    ev.body_case = PTB__V1__EVENT__BODY_GPU_MEMCPY;
    ev.gpu_memcpy = &m;
    c->memcpys++;
    emit(r, c, &ev, &r->live.memcpys);
}

static void on_memset(gpu_recv *r, conn *c, const gpu_wire_memset *w)
{
    Ptb__V1__GpuMemcpy m = PTB__V1__GPU_MEMCPY__INIT;
    m.bytes = w->bytes;
    m.kind = (char *)"memset";
    m.value = w->value;
    m.device = w->device;
    m.stream = w->stream;
    m.start_ns = w->start_ns;
    m.end_ns = w->end_ns;
    m.correlation_id = w->correlation;
    m.context_id = w->context;
    m.dst_kind = (char *)gpu_wire_mem_kind_name(w->mem_kind);
    m.graph_id = w->graph_id;
    m.graph_node_id = w->graph_node_id;
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.ts_ns = w->start_ns;
    ev.body_case = PTB__V1__EVENT__BODY_GPU_MEMSET;
    ev.gpu_memset = &m;
    c->memsets++;
    emit(r, c, &ev, &r->live.memsets);
}

static void on_context(gpu_recv *r, conn *c, const gpu_wire_context *w)
{
    char uuid[48];
    uuid_text(w->uuid, uuid);
    Ptb__V1__GpuContext m = PTB__V1__GPU_CONTEXT__INIT;
    m.device = w->device;
    m.name = (char *)clean_text(r, w->name, w->len);
    m.uuid = uuid;
    m.pid = c->pid;
    m.context_id = w->context;
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.body_case = PTB__V1__EVENT__BODY_GPU_CONTEXT;
    ev.gpu_context = &m;
    emit(r, c, &ev, &r->live.contexts);
}

static void on_gap(gpu_recv *r, conn *c, const gpu_wire_gap *w)
{
    if (w->reason == GPU_WIRE_GAP_CUPTI_DROPPED || w->reason == GPU_WIRE_GAP_SEND_DROPPED)
        r->live.lost += w->count;
    const char *reason = gpu_wire_gap_reason_name(w->reason);
    if (w->len)
        emit_gap(r, c, reason, w->count, "%.*s", (int)w->len, w->text);
    else if (!strcmp(reason, "unknown"))
        emit_gap(r, c, reason, w->count, "gap reason %u", (unsigned)w->reason);
    else
        emit_gap(r, c, reason, w->count, NULL);
}

static void on_end(gpu_recv *r, conn *c, const gpu_wire_end *e)
{
    c->ended = true;
    if (e->kernels == c->kernels && e->memcpys == c->memcpys && e->memsets == c->memsets)
        return;
    uint64_t d = 0;
    const uint64_t sent[3] = {e->kernels, e->memcpys, e->memsets};
    const uint64_t got[3] = {c->kernels, c->memcpys, c->memsets};
    for (int i = 0; i < 3; i++)
        d += sent[i] > got[i] ? sent[i] - got[i] : got[i] - sent[i];
    emit_gap(r, c, "count_mismatch", d,
             "the process sent %llu kernels, %llu memcpys, %llu memsets; %llu, %llu, %llu "
             "arrived",
             (unsigned long long)e->kernels, (unsigned long long)e->memcpys,
             (unsigned long long)e->memsets, (unsigned long long)c->kernels,
             (unsigned long long)c->memcpys, (unsigned long long)c->memsets);
}

/* ------------------------------------------------------------------ batches */

static void malformed(gpu_recv *r, conn *c, const char *why)
{
    r->live.malformed++;
    if (++c->malformed <= GPU_RECV_MALFORMED_EVENTS)
        emit_gap(r, c, "malformed_batch", 1, "pid %d: %s; the batch was dropped", c->pid, why);
}

/* The connection rules on top of the wire's: hello first and once. */
static const char *batch_rules(const conn *c, gpu_wire_reader rd)
{
    gpu_wire_rec rec;
    bool hello = c->hello;
    for (uint32_t i = 0; gpu_wire_reader_next(&rd, &rec) == 0; i++) {
        if (rec.kind == GPU_WIRE_HELLO) {
            if (hello)
                return "a second hello";
            hello = true;
        } else if (!hello) {
            return "records before the hello";
        }
    }
    return NULL;
}

static void conn_batch(gpu_recv *r, conn *c, const uint8_t *buf, size_t len)
{
    r->live.batches++;
    c->batches++;
    if (!c->exec_id && r->exec_of)
        c->exec_id = r->exec_of(r->arg, c->pid);
    gpu_wire_reader rd;
    const char *why = NULL;
    if (len > GPU_WIRE_BATCH_MAX)
        why = "batch over the size bound";
    else if (gpu_wire_reader_open(&rd, buf, len, &why) == 0)
        why = batch_rules(c, rd);
    if (why) {
        malformed(r, c, why);
        return;
    }
    gpu_wire_rec rec;
    while (gpu_wire_reader_next(&rd, &rec) == 0) {
        if (rec.kind != GPU_WIRE_KERNEL && rec.kind != GPU_WIRE_NAME)
            kb_flush(r, c); /* the events keep the order the records came in */
        switch (rec.kind) {
        case GPU_WIRE_HELLO:
            c->hello = true;
            r->live.processes++;
            if ((int)rec.u.hello.pid != c->pid && !ns_pid_is(c->pid, (int)rec.u.hello.pid))
                emit_gap(r, c, "pid_mismatch", 0,
                         "the hello says pid %u, the socket says pid %d (records are "
                         "attributed to the socket's)",
                         (unsigned)rec.u.hello.pid, c->pid);
            break;
        case GPU_WIRE_NAME: on_name(r, c, &rec.u.name); break;
        case GPU_WIRE_KERNEL: on_kernel(r, c, &rec.u.kernel); break;
        case GPU_WIRE_MEMCPY: on_memcpy(r, c, &rec.u.copy); break;
        case GPU_WIRE_MEMSET: on_memset(r, c, &rec.u.set); break;
        case GPU_WIRE_CONTEXT: on_context(r, c, &rec.u.context); break;
        case GPU_WIRE_GAP: on_gap(r, c, &rec.u.gap); break;
        case GPU_WIRE_END: on_end(r, c, &rec.u.end); break;
        default: break;
        }
    }
    kb_flush(r, c);
}

/* ------------------------------------------------------------------ connections */

static void publish(gpu_recv *r)
{
    pthread_mutex_lock(&r->mu);
    r->pub = r->live;
    pthread_mutex_unlock(&r->mu);
}

static void conn_close(gpu_recv *r, conn *c, bool at_stop)
{
    if (c->malformed > GPU_RECV_MALFORMED_EVENTS)
        emit_gap(r, c, "malformed_batch", c->malformed - GPU_RECV_MALFORMED_EVENTS,
                 "pid %d: further malformed batches, dropped", c->pid);
    if (c->unknown_names)
        emit_gap(r, c, "unknown_name", c->unknown_names,
                 "pid %d: kernels named by an id the process never defined", c->pid);
    if (at_stop)
        emit_gap(r, c, "open_at_stop", 0,
                 "pid %d was still connected when the recorder stopped: what it had not sent "
                 "is lost",
                 c->pid);
    else if (!c->hello)
        emit_gap(r, c, "no_final_flush", 0,
                 "pid %d connected and went away before its hello: its GPU activity, if any, "
                 "is not recorded",
                 c->pid);
    else if (!c->ended)
        emit_gap(r, c, "no_final_flush", 0,
                 "pid %d ended without its final flush (killed, _exit, or exec): records "
                 "still in its CUPTI buffers are lost",
                 c->pid);
    epoll_ctl(r->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    for (uint32_t i = 0; i < c->names_cap; i++)
        free(c->names[i]);
    free(c->names);
    for (size_t i = 0; i < r->n_conns; i++)
        if (r->conns[i] == c) {
            r->conns[i] = r->conns[--r->n_conns];
            break;
        }
    free(c);
    if (r->accept_paused && r->lfd >= 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &recv_tag_listen};
        if (epoll_ctl(r->ep, EPOLL_CTL_MOD, r->lfd, &ev) == 0)
            r->accept_paused = false;
    }
}

static void conn_read(gpu_recv *r, conn *c)
{
    for (int i = 0; i < RECV_READS_PER_WAKE; i++) {
        ssize_t n = recv(c->fd, r->buf, GPU_WIRE_BATCH_MAX, MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) { /* end of stream (or a zero-length message, which we never send) */
            conn_close(r, c, false);
            break;
        }
        conn_batch(r, c, r->buf, (size_t)n);
    }
    publish(r);
}

static void accept_all(gpu_recv *r)
{
    for (;;) {
        int fd = accept4(r->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* poll it again when a connection closes, instead of spinning on it */
                struct epoll_event ev = {.events = 0, .data.ptr = &recv_tag_listen};
                if (epoll_ctl(r->ep, EPOLL_CTL_MOD, r->lfd, &ev) == 0)
                    r->accept_paused = true;
            }
            break;
        }
        r->live.connections++;
        struct ucred cr = {0};
        socklen_t cl = sizeof cr;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) != 0)
            cr.pid = 0;
        conn *c = NULL;
        if (r->n_conns < GPU_RECV_CONNS_MAX)
            c = calloc(1, sizeof *c);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (!c || epoll_ctl(r->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            conn tmp = {.fd = fd, .pid = cr.pid};
            if (r->exec_of && cr.pid > 0)
                tmp.exec_id = r->exec_of(r->arg, cr.pid);
            emit_gap(r, &tmp, "too_many_processes", 1,
                     "pid %d: connection refused (%zu processes connected, or out of memory): "
                     "its GPU activity is not recorded",
                     (int)cr.pid, r->n_conns);
            close(fd);
            free(c);
            continue;
        }
        c->fd = fd;
        c->pid = cr.pid;
        if (r->exec_of && cr.pid > 0)
            c->exec_id = r->exec_of(r->arg, cr.pid);
        r->conns[r->n_conns++] = c;
    }
    publish(r);
}

static void listen_close(gpu_recv *r)
{
    if (r->lfd < 0)
        return;
    epoll_ctl(r->ep, EPOLL_CTL_DEL, r->lfd, NULL);
    close(r->lfd);
    r->lfd = -1;
    unlink(r->path);
}

static void *recv_main(void *arg)
{
    gpu_recv *r = arg;
    bool draining = false;
    int64_t deadline = 0;
    struct epoll_event evs[64];
    for (;;) {
        int timeout = -1;
        if (draining) {
            int64_t left = deadline - mono_ms();
            if (r->n_conns == 0 || left <= 0)
                break;
            timeout = (int)left;
        }
        int n = epoll_wait(r->ep, evs, 64, timeout);
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &recv_tag_listen) {
                accept_all(r);
            } else if (p == &recv_tag_stop) {
                uint64_t v;
                if (read(r->efd, &v, sizeof v) < 0) {
                    /* nothing: the wake-up is what counts */
                }
                if (!draining) {
                    draining = true;
                    deadline = mono_ms() + GPU_RECV_DRAIN_MS;
                    if (r->lfd >= 0)
                        accept_all(r); /* the ones already queued */
                    listen_close(r);
                }
            } else {
                conn_read(r, p);
            }
        }
    }
    while (r->n_conns)
        conn_close(r, r->conns[r->n_conns - 1], true);
    listen_close(r);
    publish(r);
    return NULL;
}

/* ------------------------------------------------------------------ start, stop */

static void recv_free(gpu_recv *r)
{
    if (r->ep >= 0)
        close(r->ep);
    if (r->efd >= 0)
        close(r->efd);
    if (r->lfd >= 0) {
        close(r->lfd);
        unlink(r->path);
    }
    pthread_mutex_destroy(&r->mu);
    free(r->conns);
    free(r->buf);
    free(r->clean);
    free(r->kb);
    free(r);
}

int gpu_recv_start(store *s, const char *socket_path, gpu_recv_exec_fn exec_of, void *arg,
                   gpu_recv **out, ptb_errbuf *eb)
{
    *out = NULL;
    if (!s || !socket_path || !*socket_path)
        return ptb_errf(eb, PTB_EINVAL, "gpu receiver: no store or socket path");
    gpu_recv *r = calloc(1, sizeof *r);
    if (!r)
        return ptb_errf(eb, PTB_ENOMEM, "gpu receiver: out of memory");
    r->lfd = r->efd = r->ep = -1;
    pthread_mutex_init(&r->mu, NULL);
    size_t plen = strlen(socket_path);
    if (plen >= sizeof r->path) {
        recv_free(r);
        return ptb_errf(eb, PTB_EINVAL, "gpu receiver: socket path over %zu bytes: %s",
                        sizeof r->path - 1, socket_path);
    }
    memcpy(r->path, socket_path, plen + 1);
    r->s = s;
    r->exec_of = exec_of;
    r->arg = arg;
    r->conns = calloc(GPU_RECV_CONNS_MAX, sizeof *r->conns);
    r->buf = malloc(GPU_WIRE_BATCH_MAX);
    r->clean = malloc(RECV_CLEAN_MAX);
    r->kb = calloc(1, sizeof *r->kb);
    if (!r->conns || !r->buf || !r->clean || !r->kb) {
        recv_free(r);
        return ptb_errf(eb, PTB_ENOMEM, "gpu receiver: out of memory");
    }
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    memcpy(a.sun_path, r->path, plen);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int e = -errno;
        recv_free(r);
        return ptb_errf(eb, e, "gpu receiver: socket: %s", strerror(-e));
    }
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = -errno;
        close(fd);
        recv_free(r);
        return ptb_errf(eb, e, "gpu receiver: bind %s: %s", socket_path, strerror(-e));
    }
    r->lfd = fd; /* from here recv_free unlinks the path */
    /* nobody can connect before listen(): set the mode first */
    if (chmod(r->path, 0600) != 0 || listen(fd, 512) != 0) {
        int e = -errno;
        recv_free(r);
        return ptb_errf(eb, e, "gpu receiver: %s: %s", socket_path, strerror(-e));
    }
    r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    r->ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event le = {.events = EPOLLIN, .data.ptr = &recv_tag_listen};
    struct epoll_event se = {.events = EPOLLIN, .data.ptr = &recv_tag_stop};
    if (r->efd < 0 || r->ep < 0 || epoll_ctl(r->ep, EPOLL_CTL_ADD, r->lfd, &le) != 0 ||
        epoll_ctl(r->ep, EPOLL_CTL_ADD, r->efd, &se) != 0) {
        int e = -errno;
        recv_free(r);
        return ptb_errf(eb, e, "gpu receiver: epoll: %s", strerror(-e));
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&r->th, NULL, recv_main, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        recv_free(r);
        return ptb_errf(eb, -rc, "gpu receiver: thread: %s", strerror(rc));
    }
    *out = r;
    return 0;
}

void gpu_recv_stats_get(gpu_recv *r, gpu_recv_stats *out)
{
    pthread_mutex_lock(&r->mu);
    *out = r->pub;
    pthread_mutex_unlock(&r->mu);
}

int gpu_recv_stop(gpu_recv *r, gpu_recv_stats *st)
{
    if (!r)
        return 0;
    uint64_t one = 1;
    while (write(r->efd, &one, sizeof one) < 0 && errno == EINTR) {
    }
    pthread_join(r->th, NULL);
    if (st)
        *st = r->live;
    int err = r->err;
    recv_free(r);
    return err;
}
