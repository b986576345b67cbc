/* libptbgpu.so: the CUPTI injection library. `ptb record` sets CUDA_INJECTION64_PATH to it for
 * the recorded tree; the CUDA driver loads it into every process that initialises CUDA and calls
 * InitializeInjection() from cuInit.
 *
 * What it does (issue 5; DESIGN.md "Recording"):
 *   1. Reads PTB_GPU_SOCKET, the path of the recorder's SOCK_SEQPACKET socket, and connects
 *      (non-blocking, a bounded retry while the backlog is full). No variable, or no socket
 *      there: it does nothing at all and the program runs as without it.
 *   2. Loads libcupti with dlopen (PTB_GPU_CUPTI if set, then the soname, then the path found at
 *      build time, then the usual CUDA places), so the library itself always loads: a missing or
 *      other-major libcupti is a gap, never a failed cuInit.
 *   3. Sends hello (pid, CUPTI version, CLOCK_REALTIME - CUPTI clock), subscribes to CUPTI
 *      (one subscriber per process: a profiler or Nsight already there is a gap), registers the
 *      activity buffer callbacks and enables CONCURRENT_KERNEL, MEMCPY, MEMCPY2 (peer to peer),
 *      MEMSET, CONTEXT and DEVICE.
 *   4. Each completed activity buffer (CUPTI's worker thread, or a flush) is converted
 *      (gpu_cupti.h) into batches of wire records (gpu_wire.h) and sent. A flush period of
 *      100 ms makes CUPTI hand over full buffers, and a thread of ours asks for the partly filled
 *      ones every PTB_GPU_FLUSH_MS ms (default 100; 0: none), so records arrive while the program
 *      runs, not only at its end.
 *   5. At exit: a forced flush, the contexts still waiting, and an end record with the counts.
 *
 * Never block or crash the program because recording fails:
 *   - a send waits at most INJ_SEND_WAIT_MS for room (non-blocking send + poll); after a timeout
 *     the next INJ_CONGESTED_MS of sends do not wait at all. A batch that could not go is counted
 *     (its records are lost) and the count goes out in a `send_dropped` gap with a later batch;
 *     names it carried are sent again before their next use;
 *   - activity buffers are bounded (INJ_BUFFERS_MAX of INJ_BUFFER_SIZE); past that CUPTI gets no
 *     buffer, drops records, and both counts are reported as gaps;
 *   - the peer closed, or any other send error: the socket is closed and the library goes
 *     passive (buffers are still taken back from CUPTI, and freed);
 *   - every CUPTI failure at start: a gap saying which call failed and why, an end record, then
 *     passive (CUPTI left as it was found, as far as it can be);
 *   - fork: the child (which shares our socket, and whose CUDA state is not usable) is marked in
 *     a pthread_atfork handler and never sends, flushes or takes our lock;
 *   - callbacks keep errno as they found it; our threads block all signals.
 *
 * Only InitializeInjection is exported (everything is built -fvisibility=hidden), so nothing
 * here can clash with the program's own symbols. */
#include <cupti.h>

#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "gpu_cupti.h"
#include "gpu_wire.h"

#define INJ_EXPORT __attribute__((visibility("default")))

#define INJ_BUFFER_SIZE ((size_t)8 << 20) /* one CUPTI activity buffer */
#define INJ_BUFFERS_MAX 32                /* allocated at once, in use or spare */
#define INJ_SPARE_MAX 4                   /* spare buffers kept for reuse */
#define INJ_SEND_WAIT_MS 50               /* longest wait for room in the socket */
#define INJ_CONGESTED_MS 1000             /* after a timeout, sends do not wait this long */
#define INJ_FINAL_WAIT_MS 200             /* the final batches at exit may wait this long */
#define INJ_CONNECT_WAIT_MS 200           /* retry while the recorder's backlog is full */
#define INJ_FLUSH_PERIOD_MS 100           /* cuptiActivityFlushPeriod */
#define INJ_SNDBUF (1 << 20)

/* ------------------------------------------------------------------ CUPTI, found at run time */

typedef struct cupti_api {
    CUptiResult (*GetVersion)(uint32_t *);
    CUptiResult (*GetResultString)(CUptiResult, const char **);
    CUptiResult (*Subscribe)(CUpti_SubscriberHandle *, CUpti_CallbackFunc, void *);
    CUptiResult (*Subscribe_v2)(CUpti_SubscriberHandle *, CUpti_CallbackFunc, void *,
                                CUpti_SubscriberParams *); /* optional */
    CUptiResult (*Unsubscribe)(CUpti_SubscriberHandle);
    CUptiResult (*ActivityEnable)(CUpti_ActivityKind);
    CUptiResult (*ActivityDisable)(CUpti_ActivityKind);
    CUptiResult (*ActivityRegisterCallbacks)(CUpti_BuffersCallbackRequestFunc,
                                             CUpti_BuffersCallbackCompleteFunc);
    CUptiResult (*ActivityFlushPeriod)(uint32_t);
    CUptiResult (*ActivityFlushAll)(uint32_t);
    CUptiResult (*ActivityGetNextRecord)(uint8_t *, size_t, CUpti_Activity **);
    CUptiResult (*ActivityGetNumDroppedRecords)(CUcontext, uint32_t, size_t *);
    CUptiResult (*GetTimestamp)(uint64_t *);
} cupti_api;

enum { INJ_OFF = 0, INJ_ACTIVE = 1, INJ_PASSIVE = 2 };

static struct inj {
    pthread_mutex_t mu; /* everything below except the atomics and the flusher's fields */
    atomic_int state;
    atomic_int child; /* this process is a fork child of the one that set us up */
    int fd;
    cupti_api api;
    CUpti_SubscriberHandle sub;
    bool subscribed;
    gpu_cupti *conv;
    /* the batch being filled */
    gpu_wire_writer w;
    uint8_t batch[GPU_WIRE_BATCH_MAX];
    uint32_t b_names[GPU_WIRE_BATCH_MAX / GPU_WIRE_NAME_FIXED + 1]; /* name ids it defines */
    unsigned n_b_names;
    uint64_t b_kernels, b_memcpys, b_memsets, b_other; /* its data records */
    uint64_t b_gap[GPU_WIRE_GAP_LAST + 1];             /* the counts its gap records carry */
    /* counts not yet reported, per gap reason (counted reasons only) */
    uint64_t pending[GPU_WIRE_GAP_LAST + 1];
    uint64_t unnamed_seen;
    /* totals */
    uint64_t sent_kernels, sent_memcpys, sent_memsets, lost;
    int64_t congested_until_ms;
    /* activity buffers */
    uint8_t *spare[INJ_SPARE_MAX];
    unsigned n_spare, n_alloc;
    /* the flusher thread */
    pthread_mutex_t fmu;
    pthread_cond_t fcv;
    pthread_t flusher;
    bool flusher_on, flusher_stop;
    unsigned flush_ms;
} g = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .fmu = PTHREAD_MUTEX_INITIALIZER,
    .fd = -1,
};

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t mono_ms(void)
{
    return clock_ns(CLOCK_MONOTONIC) / 1000000;
}

static const char *cupti_err(CUptiResult r)
{
    const char *s = NULL;
    if (g.api.GetResultString && g.api.GetResultString(r, &s) == CUPTI_SUCCESS && s)
        return s;
    return "unknown CUPTI error";
}

static bool cupti_load(char *err, size_t errlen)
{
    const char *tries[8];
    size_t n = 0;
    const char *env = getenv("PTB_GPU_CUPTI");
    if (env && *env)
        tries[n++] = env;
    tries[n++] = "libcupti.so.13";
#ifdef PTB_CUPTI_LIB
    tries[n++] = PTB_CUPTI_LIB;
#endif
    tries[n++] = "/usr/local/cuda/extras/CUPTI/lib64/libcupti.so.13";
    tries[n++] = "/usr/local/cuda/lib64/libcupti.so.13";
    tries[n++] = "libcupti.so";
    void *h = NULL;
    for (size_t i = 0; i < n && !h; i++)
        h = dlopen(tries[i], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(err, errlen, "libcupti not found (%s)", e ? e : "dlopen failed");
        return false;
    }
    cupti_api a;
    memset(&a, 0, sizeof a);
#define CUPTI_SYM(field, name)                                                                     \
    do {                                                                                           \
        *(void **)&a.field = dlsym(h, name);                                                       \
        if (!a.field) {                                                                            \
            snprintf(err, errlen, "libcupti has no %s", name);                                     \
            return false;                                                                          \
        }                                                                                          \
    } while (0)
    CUPTI_SYM(GetVersion, "cuptiGetVersion");
    CUPTI_SYM(GetResultString, "cuptiGetResultString");
    CUPTI_SYM(Subscribe, "cuptiSubscribe");
    CUPTI_SYM(Unsubscribe, "cuptiUnsubscribe");
    CUPTI_SYM(ActivityEnable, "cuptiActivityEnable");
    CUPTI_SYM(ActivityDisable, "cuptiActivityDisable");
    CUPTI_SYM(ActivityRegisterCallbacks, "cuptiActivityRegisterCallbacks");
    CUPTI_SYM(ActivityFlushPeriod, "cuptiActivityFlushPeriod");
    CUPTI_SYM(ActivityFlushAll, "cuptiActivityFlushAll");
    CUPTI_SYM(ActivityGetNextRecord, "cuptiActivityGetNextRecord");
    CUPTI_SYM(ActivityGetNumDroppedRecords, "cuptiActivityGetNumDroppedRecords");
    CUPTI_SYM(GetTimestamp, "cuptiGetTimestamp");
#undef CUPTI_SYM
    *(void **)&a.Subscribe_v2 = dlsym(h, "cuptiSubscribe_v2");
    g.api = a;
    return true; /* the handle stays open for the life of the process */
}

/* CLOCK_REALTIME minus the CUPTI clock: the tightest of three brackets. Measured again for each
 * buffer, so a realtime clock slewed or stepped during a long run is followed. */
static int64_t clock_offset(void)
{
    int64_t best = INT64_MAX, off = 0;
    for (int i = 0; i < 3; i++) {
        uint64_t c = 0;
        int64_t r0 = clock_ns(CLOCK_REALTIME);
        if (g.api.GetTimestamp(&c) != CUPTI_SUCCESS)
            return off;
        int64_t r1 = clock_ns(CLOCK_REALTIME);
        if (r1 - r0 < best) {
            best = r1 - r0;
            off = r0 + (r1 - r0) / 2 - (int64_t)c;
        }
    }
    return off;
}

/* ------------------------------------------------------------------ sending (under g.mu) */

static void connection_lost(void)
{
    if (g.fd >= 0)
        close(g.fd);
    g.fd = -1;
    atomic_store(&g.state, INJ_PASSIVE);
}

/* Send one message, waiting at most wait_ms for room. 0, -EAGAIN (timed out), or another
 * -errno (the connection is then closed, except for EMSGSIZE). */
static int send_bounded(const uint8_t *buf, size_t len, int wait_ms)
{
    if (g.fd < 0)
        return -ENOTCONN;
    int64_t deadline = mono_ms() + wait_ms;
    for (;;) {
        ssize_t n = send(g.fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n == (ssize_t)len)
            return 0;
        int e = n < 0 ? errno : EIO;
        if (e == EINTR)
            continue;
        if (e != EAGAIN && e != EWOULDBLOCK && e != ENOBUFS) {
            if (e != EMSGSIZE)
                connection_lost();
            return -e;
        }
        int64_t left = deadline - mono_ms();
        if (left <= 0) {
            g.congested_until_ms = mono_ms() + INJ_CONGESTED_MS;
            return -EAGAIN;
        }
        struct pollfd p = {.fd = g.fd, .events = POLLOUT};
        (void)poll(&p, 1, (int)left);
    }
}

static void batch_clear(void)
{
    gpu_wire_writer_reset(&g.w);
    g.n_b_names = 0;
    g.b_kernels = g.b_memcpys = g.b_memsets = g.b_other = 0;
    memset(g.b_gap, 0, sizeof g.b_gap);
}

/* The first records of every batch: the counts of what was lost since the last report. */
static void batch_open(void)
{
    for (uint32_t r = 1; r <= GPU_WIRE_GAP_LAST; r++) {
        if (!g.pending[r])
            continue;
        gpu_wire_rec rec = {.kind = GPU_WIRE_GAP};
        rec.u.gap.reason = r;
        rec.u.gap.count = g.pending[r];
        if (gpu_wire_put(&g.w, &rec) == 0)
            g.b_gap[r] = g.pending[r];
    }
}

/* Send the batch (if it holds anything) and start an empty one. */
static void batch_send(int wait_ms)
{
    if (g.w.count == 0)
        return;
    size_t n = gpu_wire_writer_finish(&g.w);
    if (g.congested_until_ms > mono_ms())
        wait_ms = 0;
    if (send_bounded(g.batch, n, wait_ms) == 0) {
        g.sent_kernels += g.b_kernels;
        g.sent_memcpys += g.b_memcpys;
        g.sent_memsets += g.b_memsets;
        for (uint32_t r = 1; r <= GPU_WIRE_GAP_LAST; r++)
            g.pending[r] -= g.b_gap[r];
    } else {
        uint64_t lost = g.b_kernels + g.b_memcpys + g.b_memsets + g.b_other;
        g.pending[GPU_WIRE_GAP_SEND_DROPPED] += lost;
        g.lost += lost;
        for (unsigned i = 0; i < g.n_b_names; i++)
            gpu_cupti_name_lost(g.conv, g.b_names[i]);
    }
    batch_clear();
}

/* Append a record to the batch, sending the batch first when it is full. A name record is
 * only put where its kernel record fits too, so both travel (or are lost) together. */
static void inj_put(void *arg, const gpu_wire_rec *r)
{
    (void)arg;
    size_t need = gpu_wire_rec_size(r);
    if (r->kind == GPU_WIRE_NAME)
        need += GPU_WIRE_KERNEL_SIZE;
    if (g.w.count == 0)
        batch_open();
    if (need > g.w.cap - g.w.len) {
        batch_send(INJ_SEND_WAIT_MS);
        batch_open();
    }
    if (gpu_wire_put(&g.w, r) != 0) {
        if (r->kind == GPU_WIRE_NAME)
            gpu_cupti_name_lost(g.conv, r->u.name.id);
        else if (r->kind != GPU_WIRE_GAP) {
            g.pending[GPU_WIRE_GAP_SEND_DROPPED]++;
            g.lost++;
        }
        return;
    }
    switch (r->kind) {
    case GPU_WIRE_NAME: g.b_names[g.n_b_names++] = r->u.name.id; break;
    case GPU_WIRE_KERNEL: g.b_kernels++; break;
    case GPU_WIRE_MEMCPY: g.b_memcpys++; break;
    case GPU_WIRE_MEMSET: g.b_memsets++; break;
    case GPU_WIRE_CONTEXT: g.b_other++; break;
    default: break;
    }
}

__attribute__((format(printf, 3, 0))) static void inj_vgap(uint32_t reason, uint64_t count,
                                                           const char *fmt, va_list ap)
{
    char text[GPU_WIRE_TEXT_MAX + 1];
    int n = vsnprintf(text, sizeof text, fmt, ap);
    if (n < 0)
        n = 0;
    gpu_wire_rec rec = {.kind = GPU_WIRE_GAP};
    rec.u.gap.reason = reason;
    rec.u.gap.count = count;
    rec.u.gap.text = text;
    rec.u.gap.len = (uint16_t)((size_t)n < GPU_WIRE_TEXT_MAX ? (size_t)n : GPU_WIRE_TEXT_MAX);
    inj_put(NULL, &rec);
}

/* A gap with a text (CUPTI errors), into the batch; the caller holds g.mu. */
__attribute__((format(printf, 3, 4))) static void inj_gap(uint32_t reason, uint64_t count,
                                                          const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    inj_vgap(reason, count, fmt, ap);
    va_end(ap);
}

/* The same at start, where g.mu is not held across CUPTI calls (CUPTI may ask for a buffer
 * from inside them, on this thread). */
__attribute__((format(printf, 3, 4))) static void start_gap(uint32_t reason, uint64_t count,
                                                            const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&g.mu);
    inj_vgap(reason, count, fmt, ap);
    pthread_mutex_unlock(&g.mu);
    va_end(ap);
}

/* The last batch: what is left, the contexts still waiting, and the end record. */
static void send_end(void)
{
    if (g.conv)
        gpu_cupti_flush(g.conv, inj_put, NULL);
    batch_send(INJ_FINAL_WAIT_MS);
    g.congested_until_ms = 0; /* the end record gets its own chance */
    batch_open();
    gpu_wire_rec e = {.kind = GPU_WIRE_END};
    e.u.end.kernels = g.sent_kernels;
    e.u.end.memcpys = g.sent_memcpys;
    e.u.end.memsets = g.sent_memsets;
    e.u.end.lost = g.lost;
    inj_put(NULL, &e);
    batch_send(INJ_FINAL_WAIT_MS);
}

/* Give up: say so (the batch holds the gap that says why), end, close. */
static void go_passive(void)
{
    send_end();
    connection_lost();
}

/* ------------------------------------------------------------------ CUPTI callbacks */

static void CUPTIAPI buffer_requested(uint8_t **buffer, size_t *size, size_t *max_records)
{
    *buffer = NULL;
    *size = 0;
    *max_records = 0;
    if (atomic_load(&g.child))
        return;
    int saved = errno;
    pthread_mutex_lock(&g.mu);
    uint8_t *b = NULL;
    if (g.n_spare) {
        b = g.spare[--g.n_spare];
    } else if (g.n_alloc < INJ_BUFFERS_MAX) {
        void *p = NULL;
        if (posix_memalign(&p, 8, INJ_BUFFER_SIZE) == 0) {
            b = p;
            g.n_alloc++;
        }
    }
    if (b) {
        *buffer = b;
        *size = INJ_BUFFER_SIZE;
    } else {
        g.pending[GPU_WIRE_GAP_BUFFER_REFUSED]++;
    }
    pthread_mutex_unlock(&g.mu);
    errno = saved;
}

static void buffer_recycle(uint8_t *b)
{
    if (g.n_spare < INJ_SPARE_MAX) {
        g.spare[g.n_spare++] = b;
    } else {
        free(b);
        g.n_alloc--;
    }
}

static void CUPTIAPI buffer_completed(CUcontext ctx, uint32_t stream, uint8_t *buffer, size_t size,
                                      size_t valid)
{
    (void)size;
    if (atomic_load(&g.child))
        return; /* not ours to touch: the lock may be held by a thread that did not fork */
    int saved = errno;
    pthread_mutex_lock(&g.mu);
    if (atomic_load(&g.state) == INJ_ACTIVE && g.fd >= 0 && buffer) {
        int64_t off = clock_offset();
        CUpti_Activity *rec = NULL;
        for (;;) {
            CUptiResult r = g.api.ActivityGetNextRecord(buffer, valid, &rec);
            if (r != CUPTI_SUCCESS) {
                if (r != CUPTI_ERROR_MAX_LIMIT_REACHED)
                    inj_gap(GPU_WIRE_GAP_CUPTI_ERROR, 0,
                            "cuptiActivityGetNextRecord: %s (rest of the buffer lost)",
                            cupti_err(r));
                break;
            }
            gpu_cupti_record(g.conv, rec, off, inj_put, NULL);
        }
        gpu_cupti_buffer_end(g.conv, inj_put, NULL);
        size_t dropped = 0;
        if (g.api.ActivityGetNumDroppedRecords(ctx, stream, &dropped) == CUPTI_SUCCESS && dropped) {
            g.pending[GPU_WIRE_GAP_CUPTI_DROPPED] += dropped;
            g.lost += dropped;
        }
        gpu_cupti_stats st;
        gpu_cupti_stats_get(g.conv, &st);
        if (st.unnamed > g.unnamed_seen) {
            g.pending[GPU_WIRE_GAP_NAME_TABLE_FULL] += st.unnamed - g.unnamed_seen;
            g.unnamed_seen = st.unnamed;
        }
        if (g.w.count == 0)
            batch_open(); /* nothing else to send: the counts still go */
        batch_send(INJ_SEND_WAIT_MS);
    }
    if (buffer)
        buffer_recycle(buffer);
    pthread_mutex_unlock(&g.mu);
    errno = saved;
}

static void CUPTIAPI subscriber_callback(void *userdata, CUpti_CallbackDomain domain,
                                         CUpti_CallbackId cbid, const void *cbdata)
{
    (void)userdata;
    (void)domain;
    (void)cbid;
    (void)cbdata; /* no callback is enabled: the subscription only claims CUPTI */
}

/* ------------------------------------------------------------------ flusher, exit, fork */

static void *flusher_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g.fmu);
    while (!g.flusher_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (long)(g.flush_ms % 1000) * 1000000L;
        ts.tv_sec += g.flush_ms / 1000 + ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&g.fcv, &g.fmu, &ts);
        if (g.flusher_stop)
            break;
        pthread_mutex_unlock(&g.fmu);
        if (atomic_load(&g.state) == INJ_ACTIVE)
            g.api.ActivityFlushAll(0); /* completed records only, buffers need not be full */
        pthread_mutex_lock(&g.fmu);
    }
    pthread_mutex_unlock(&g.fmu);
    return NULL;
}

static void flusher_start(void)
{
    const char *env = getenv("PTB_GPU_FLUSH_MS");
    g.flush_ms = 100;
    if (env && *env) {
        char *end;
        unsigned long v = strtoul(env, &end, 10);
        if (!*end && v <= 60000)
            g.flush_ms = (unsigned)v;
    }
    if (g.flush_ms == 0)
        return;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&g.fcv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc)
        return;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the thread inherits it: no signal of the
                                                 program is ever delivered to us */
    if (pthread_create(&g.flusher, NULL, flusher_main, NULL) == 0) {
        g.flusher_on = true;
        pthread_setname_np(g.flusher, "ptb-gpu-flush");
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void flusher_stop(void)
{
    if (!g.flusher_on)
        return;
    pthread_mutex_lock(&g.fmu);
    g.flusher_stop = true;
    pthread_cond_signal(&g.fcv);
    pthread_mutex_unlock(&g.fmu);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 1;
    if (pthread_timedjoin_np(g.flusher, NULL, &ts) != 0)
        pthread_detach(g.flusher); /* stuck in CUPTI: leave it, the process is ending */
    g.flusher_on = false;
}

static void at_fork_child(void)
{
    atomic_store(&g.child, 1);
}

static void at_exit(void)
{
    if (atomic_load(&g.child) || atomic_load(&g.state) != INJ_ACTIVE)
        return;
    int saved = errno;
    flusher_stop();
    g.api.ActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
    pthread_mutex_lock(&g.mu);
    if (atomic_load(&g.state) == INJ_ACTIVE && g.fd >= 0)
        send_end(); /* stays active: records of later exit handlers still go */
    pthread_mutex_unlock(&g.mu);
    errno = saved;
}

/* ------------------------------------------------------------------ start */

static int inj_connect(const char *path)
{
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof a.sun_path)
        return -1;
    memcpy(a.sun_path, path, len);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    int64_t deadline = mono_ms() + INJ_CONNECT_WAIT_MS;
    for (;;) {
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN || mono_ms() >= deadline) {
            close(fd);
            return -1;
        }
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    int sndbuf = INJ_SNDBUF;
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    return fd;
}

static uint32_t gap_of_result(CUptiResult r)
{
    if (r == CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED)
        return GPU_WIRE_GAP_SUBSCRIBER;
    if (r == CUPTI_ERROR_NOT_INITIALIZED || r == CUPTI_ERROR_INVALID_DEVICE)
        return GPU_WIRE_GAP_NO_DEVICE;
    return GPU_WIRE_GAP_CUPTI_ERROR;
}

static bool subscribe(void)
{
    CUptiResult r;
    char old[CUPTI_OLD_SUBSCRIBER_NAME_MIN_LEN + 1] = "";
    if (g.api.Subscribe_v2) {
        CUpti_SubscriberParams p;
        memset(&p, 0, sizeof p);
        p.structSize = CUpti_SubscriberParams_STRUCT_SIZE;
        p.subscriberName = "ptb record";
        p.oldSubscriberName = old;
        p.oldSubscriberSize = CUPTI_OLD_SUBSCRIBER_NAME_MIN_LEN;
        r = g.api.Subscribe_v2(&g.sub, subscriber_callback, NULL, &p);
    } else {
        r = g.api.Subscribe(&g.sub, subscriber_callback, NULL);
    }
    if (r == CUPTI_SUCCESS) {
        g.subscribed = true;
        return true;
    }
    old[CUPTI_OLD_SUBSCRIBER_NAME_MIN_LEN] = 0;
    if (r == CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED)
        start_gap(GPU_WIRE_GAP_SUBSCRIBER, 0,
                  "another CUPTI client holds the subscription%s%s: GPU activity of this process "
                  "is not recorded",
                  old[0] ? ": " : "", old);
    else
        start_gap(gap_of_result(r), 0, "cuptiSubscribe: %s", cupti_err(r));
    return false;
}

static const struct {
    CUpti_ActivityKind kind;
    const char *name;
    bool required;
} inj_kinds[] = {
    {CUPTI_ACTIVITY_KIND_DEVICE, "DEVICE", false},
    {CUPTI_ACTIVITY_KIND_CONTEXT, "CONTEXT", false},
    {CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, "CONCURRENT_KERNEL", true},
    {CUPTI_ACTIVITY_KIND_MEMCPY, "MEMCPY", false},
    {CUPTI_ACTIVITY_KIND_MEMCPY2, "MEMCPY2", false},
    {CUPTI_ACTIVITY_KIND_MEMSET, "MEMSET", false},
};
#define INJ_NKINDS (sizeof inj_kinds / sizeof inj_kinds[0])

/* Enable the activity kinds; false when the kernels cannot be recorded (the others are then
 * disabled again). A kind other than kernels that fails is a gap, and the rest goes on. */
static bool enable_kinds(void)
{
    bool on[INJ_NKINDS] = {false};
    for (size_t i = 0; i < INJ_NKINDS; i++) {
        CUptiResult r = g.api.ActivityEnable(inj_kinds[i].kind);
        if (r == CUPTI_SUCCESS) {
            on[i] = true;
            continue;
        }
        start_gap(gap_of_result(r), 0, "cuptiActivityEnable(%s): %s%s", inj_kinds[i].name,
                  cupti_err(r), inj_kinds[i].required ? "" : " (the other kinds are recorded)");
        if (inj_kinds[i].required) {
            for (size_t k = 0; k < INJ_NKINDS; k++)
                if (on[k])
                    g.api.ActivityDisable(inj_kinds[k].kind);
            return false;
        }
    }
    return true;
}

static void inj_start(void)
{
    const char *path = getenv("PTB_GPU_SOCKET");
    if (!path || !*path)
        return;
    int fd = inj_connect(path);
    if (fd < 0)
        return; /* no recorder: the program runs as without us */
    char err[256] = "";
    bool have = cupti_load(err, sizeof err);
    uint32_t version = 0;
    if (have && g.api.GetVersion(&version) != CUPTI_SUCCESS)
        version = 0;
    gpu_wire_rec h = {.kind = GPU_WIRE_HELLO};
    h.u.hello.wire_version = GPU_WIRE_VERSION;
    h.u.hello.pid = (uint32_t)getpid();
    h.u.hello.cupti_version = version;
    h.u.hello.clock_offset_ns = have ? clock_offset() : 0;
    h.u.hello.init_ns = clock_ns(CLOCK_REALTIME);
    pthread_mutex_lock(&g.mu);
    g.fd = fd;
    gpu_wire_writer_init(&g.w, g.batch, sizeof g.batch);
    batch_clear();
    inj_put(NULL, &h);
    pthread_mutex_unlock(&g.mu);

    if (!have) {
        start_gap(GPU_WIRE_GAP_CUPTI_ERROR, 0, "%s", err);
        goto passive;
    }
    if (version / 10000 != CUPTI_API_VERSION / 10000) {
        start_gap(GPU_WIRE_GAP_CUPTI_VERSION, 0,
                  "libcupti API version %u, built for %u: its records may not have the layout "
                  "this library reads",
                  version, (unsigned)CUPTI_API_VERSION);
        goto passive;
    }
    if (gpu_cupti_new(&g.conv) != 0) {
        start_gap(GPU_WIRE_GAP_CUPTI_ERROR, 0, "out of memory");
        goto passive;
    }
    if (!subscribe())
        goto passive;
    /* active from here: a buffer CUPTI hands back while we still set up is converted */
    atomic_store(&g.state, INJ_ACTIVE);
    CUptiResult r = g.api.ActivityRegisterCallbacks(buffer_requested, buffer_completed);
    if (r != CUPTI_SUCCESS) {
        start_gap(gap_of_result(r), 0, "cuptiActivityRegisterCallbacks: %s", cupti_err(r));
        goto unsubscribe;
    }
    if (!enable_kinds())
        goto unsubscribe;
    (void)g.api.ActivityFlushPeriod(INJ_FLUSH_PERIOD_MS);
    pthread_mutex_lock(&g.mu);
    batch_send(INJ_SEND_WAIT_MS); /* hello, and the gaps of kinds that could not be enabled */
    pthread_mutex_unlock(&g.mu);
    pthread_atfork(NULL, NULL, at_fork_child);
    atexit(at_exit);
    flusher_start();
    return;

unsubscribe:
    g.api.Unsubscribe(g.sub);
    g.subscribed = false;
passive:
    pthread_mutex_lock(&g.mu);
    atomic_store(&g.state, INJ_PASSIVE);
    go_passive();
    pthread_mutex_unlock(&g.mu);
}

INJ_EXPORT int InitializeInjection(void)
{
    static atomic_int once;
    if (atomic_exchange(&once, 1))
        return 1;
    int saved = errno;
    inj_start();
    errno = saved;
    return 1;
}
