/* A stand-in libcupti for tests (libptbgpu_fakecupti.so; never installed, never used by ptb).
 *
 * libptbgpu.so opens libcupti with dlopen and takes PTB_GPU_CUPTI first, so a test points it
 * here and drives the injection library on a machine without a GPU: activity records are queued
 * with the fake_cupti_* functions and handed over the way CUPTI does it (ask for a buffer with
 * the registered callback, fill it, hand it back; a full buffer is handed back and another one
 * asked for), on cuptiActivityFlushAll or fake_cupti_deliver. Records are the structs of the
 * CUPTI headers the library is built with.
 *
 * FAKE_CUPTI_FAIL in the environment makes one call fail: "subscribe" (another subscriber,
 * named "Nsight Systems"), "kernel" (cuptiActivityEnable(CONCURRENT_KERNEL): not supported),
 * "memset" (the same for MEMSET only), "callbacks" (cuptiActivityRegisterCallbacks). */
#include <cupti.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FAKE_EXPORT __attribute__((visibility("default")))

static pthread_mutex_t fake_mu = PTHREAD_MUTEX_INITIALIZER;
static CUpti_BuffersCallbackRequestFunc fake_request;
static CUpti_BuffersCallbackCompleteFunc fake_complete;
static uint8_t *fake_queue; /* records back to back, each 8-aligned */
static size_t fake_len, fake_cap;
static size_t fake_dropped;
static unsigned fake_flushes[2]; /* [0] default, [1] forced */
static unsigned fake_enabled;    /* bit per activity kind */
static unsigned fake_subscribed;

static const char *fake_fail(void)
{
    const char *f = getenv("FAKE_CUPTI_FAIL");
    return f ? f : "";
}

static size_t fake_size(CUpti_ActivityKind kind)
{
    switch (kind) {
    case CUPTI_ACTIVITY_KIND_KERNEL:
    case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: return sizeof(CUpti_ActivityKernel10);
    case CUPTI_ACTIVITY_KIND_MEMCPY: return sizeof(CUpti_ActivityMemcpy6);
    case CUPTI_ACTIVITY_KIND_MEMCPY2: return sizeof(CUpti_ActivityMemcpyPtoP4);
    case CUPTI_ACTIVITY_KIND_MEMSET: return sizeof(CUpti_ActivityMemset4);
    case CUPTI_ACTIVITY_KIND_DEVICE: return sizeof(CUpti_ActivityDevice5);
    case CUPTI_ACTIVITY_KIND_CONTEXT: return sizeof(CUpti_ActivityContext3);
    default: return sizeof(CUpti_Activity);
    }
}

static size_t fake_aligned(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static void fake_push(const void *rec, size_t size)
{
    pthread_mutex_lock(&fake_mu);
    size_t need = fake_len + fake_aligned(size);
    if (need > fake_cap) {
        size_t cap = fake_cap ? fake_cap : 4096;
        while (cap < need)
            cap *= 2;
        uint8_t *q = realloc(fake_queue, cap);
        if (!q)
            abort(); /* a test double: out of memory ends the test */
        fake_queue = q;
        fake_cap = cap;
    }
    memset(fake_queue + fake_len, 0, fake_aligned(size));
    memcpy(fake_queue + fake_len, rec, size);
    fake_len = need;
    pthread_mutex_unlock(&fake_mu);
}

/* Hand the queued records over, in as many buffers as they need. */
static pthread_mutex_t fake_deliver_mu = PTHREAD_MUTEX_INITIALIZER; /* one hand-over at a time */

static void fake_hand_over(void)
{
    pthread_mutex_lock(&fake_deliver_mu);
    pthread_mutex_lock(&fake_mu);
    size_t off = 0;
    while (off < fake_len && fake_request && fake_complete) {
        uint8_t *buf = NULL;
        size_t size = 0, max = 0;
        fake_request(&buf, &size, &max);
        if (!buf) { /* refused: CUPTI drops what it cannot store */
            size_t n = 0;
            while (off < fake_len) {
                off += fake_aligned(fake_size(((CUpti_Activity *)(fake_queue + off))->kind));
                n++;
            }
            fake_dropped += n;
            break;
        }
        size_t used = 0;
        while (off < fake_len) {
            size_t sz = fake_aligned(fake_size(((CUpti_Activity *)(fake_queue + off))->kind));
            if (used + sz > size)
                break;
            memcpy(buf + used, fake_queue + off, sz);
            used += sz;
            off += sz;
        }
        pthread_mutex_unlock(&fake_mu); /* CUPTI does not hold its locks across the callback */
        fake_complete(NULL, 0, buf, size, used);
        pthread_mutex_lock(&fake_mu);
    }
    /* what was queued while the callback ran waits for the next hand-over */
    if (off) {
        memmove(fake_queue, fake_queue + off, fake_len - off);
        fake_len -= off;
    }
    pthread_mutex_unlock(&fake_mu);
    pthread_mutex_unlock(&fake_deliver_mu);
}

/* ---- control, for tests ---- */

FAKE_EXPORT void fake_cupti_kernel(const char *name, uint64_t start, uint32_t correlation)
{
    CUpti_ActivityKernel10 k;
    memset(&k, 0, sizeof k);
    k.kind = CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
    k.name = name; /* the caller keeps it alive, as CUPTI does */
    k.gridX = 64;
    k.gridY = k.gridZ = 1;
    k.blockX = 128;
    k.blockY = k.blockZ = 1;
    k.registersPerThread = 16;
    k.streamId = 7;
    k.contextId = 1;
    k.correlationId = correlation;
    k.start = start;
    k.end = start ? start + 1000 : 0;
    fake_push(&k, sizeof k);
}

FAKE_EXPORT void fake_cupti_device(uint32_t id, const char *name)
{
    CUpti_ActivityDevice5 d;
    memset(&d, 0, sizeof d);
    d.kind = CUPTI_ACTIVITY_KIND_DEVICE;
    d.id = id;
    d.name = name;
    for (int i = 0; i < 16; i++)
        d.uuid.bytes[i] = (char)(0xa0 + i);
    fake_push(&d, sizeof d);
}

FAKE_EXPORT void fake_cupti_context(uint32_t device, uint32_t context)
{
    CUpti_ActivityContext3 c;
    memset(&c, 0, sizeof c);
    c.kind = CUPTI_ACTIVITY_KIND_CONTEXT;
    c.deviceId = device;
    c.contextId = context;
    fake_push(&c, sizeof c);
}

FAKE_EXPORT void fake_cupti_memcpy(uint8_t copy_kind, uint64_t bytes, uint64_t start)
{
    CUpti_ActivityMemcpy6 m;
    memset(&m, 0, sizeof m);
    m.kind = CUPTI_ACTIVITY_KIND_MEMCPY;
    m.copyKind = copy_kind;
    m.srcKind = CUPTI_ACTIVITY_MEMORY_KIND_PAGEABLE;
    m.dstKind = CUPTI_ACTIVITY_MEMORY_KIND_DEVICE;
    m.bytes = bytes;
    m.start = start;
    m.end = start + 2000;
    m.contextId = 1;
    fake_push(&m, sizeof m);
}

FAKE_EXPORT void fake_cupti_drop(size_t n)
{
    pthread_mutex_lock(&fake_mu);
    fake_dropped += n;
    pthread_mutex_unlock(&fake_mu);
}

FAKE_EXPORT void fake_cupti_deliver(void)
{
    fake_hand_over();
}

FAKE_EXPORT unsigned fake_cupti_flushes(int forced)
{
    pthread_mutex_lock(&fake_mu);
    unsigned n = fake_flushes[forced ? 1 : 0];
    pthread_mutex_unlock(&fake_mu);
    return n;
}

FAKE_EXPORT unsigned fake_cupti_enabled(void)
{
    return fake_enabled;
}

/* ---- the CUPTI API, as much of it as libptbgpu.so uses ---- */

FAKE_EXPORT CUptiResult cuptiGetVersion(uint32_t *version)
{
    *version = CUPTI_API_VERSION;
    return CUPTI_SUCCESS;
}

FAKE_EXPORT CUptiResult cuptiGetResultString(CUptiResult result, const char **str)
{
    *str = result == CUPTI_ERROR_NOT_SUPPORTED ? "CUPTI_ERROR_NOT_SUPPORTED (fake)"
                                               : "CUPTI_ERROR (fake)";
    return CUPTI_SUCCESS;
}

FAKE_EXPORT CUptiResult cuptiSubscribe(CUpti_SubscriberHandle *subscriber,
                                       CUpti_CallbackFunc callback, void *userdata)
{
    (void)callback;
    (void)userdata;
    if (!strcmp(fake_fail(), "subscribe"))
        return CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED;
    *subscriber = (CUpti_SubscriberHandle)&fake_subscribed;
    fake_subscribed = 1;
    return CUPTI_SUCCESS;
}

FAKE_EXPORT CUptiResult cuptiSubscribe_v2(CUpti_SubscriberHandle *subscriber,
                                          CUpti_CallbackFunc callback, void *userdata,
                                          CUpti_SubscriberParams *params)
{
    CUptiResult r = cuptiSubscribe(subscriber, callback, userdata);
    if (r == CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED && params &&
        params->oldSubscriberName && params->oldSubscriberSize > 16)
        strcpy(params->oldSubscriberName, "Nsight Systems");
    return r;
}

FAKE_EXPORT CUptiResult cuptiUnsubscribe(CUpti_SubscriberHandle subscriber)
{
    (void)subscriber;
    fake_subscribed = 0;
    return CUPTI_SUCCESS;
}

FAKE_EXPORT CUptiResult cuptiActivityEnable(CUpti_ActivityKind kind)
{
    if ((kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL && !strcmp(fake_fail(), "kernel")) ||
        (kind == CUPTI_ACTIVITY_KIND_MEMSET && !strcmp(fake_fail(), "memset")))
        return CUPTI_ERROR_NOT_SUPPORTED;
    if ((unsigned)kind < 32)
        fake_enabled |= 1u << kind;
    return CUPTI_SUCCESS;
}

FAKE_EXPORT CUptiResult cuptiActivityDisable(CUpti_ActivityKind kind)
{
    if ((unsigned)kind < 32)
        fake_enabled &= ~(1u << kind);
    return CUPTI_SUCCESS;
}

FAKE_EXPORT CUptiResult cuptiActivityRegisterCallbacks(CUpti_BuffersCallbackRequestFunc request,
                                                       CUpti_BuffersCallbackCompleteFunc complete)
{
    if (!strcmp(fake_fail(), "callbacks"))
        return CUPTI_ERROR_INVALID_PARAMETER;
    fake_request = request;
    fake_complete = complete;
    return CUPTI_SUCCESS;
}

FAKE_EXPORT CUptiResult cuptiActivityFlushPeriod(uint32_t ms)
{
    (void)ms;
    return CUPTI_SUCCESS;
}

FAKE_EXPORT CUptiResult cuptiActivityFlushAll(uint32_t flag)
{
    pthread_mutex_lock(&fake_mu);
    fake_flushes[flag & CUPTI_ACTIVITY_FLAG_FLUSH_FORCED ? 1 : 0]++;
    pthread_mutex_unlock(&fake_mu);
    fake_hand_over();
    return CUPTI_SUCCESS;
}

FAKE_EXPORT CUptiResult cuptiActivityGetNextRecord(uint8_t *buffer, size_t valid,
                                                   CUpti_Activity **record)
{
    uint8_t *next =
        *record ? (uint8_t *)*record + fake_aligned(fake_size((*record)->kind)) : buffer;
    if (next >= buffer + valid)
        return CUPTI_ERROR_MAX_LIMIT_REACHED;
    *record = (CUpti_Activity *)next;
    return CUPTI_SUCCESS;
}

FAKE_EXPORT CUptiResult cuptiActivityGetNumDroppedRecords(CUcontext context, uint32_t stream,
                                                          size_t *dropped)
{
    (void)context;
    (void)stream;
    pthread_mutex_lock(&fake_mu);
    *dropped = fake_dropped;
    fake_dropped = 0;
    pthread_mutex_unlock(&fake_mu);
    return CUPTI_SUCCESS;
}

FAKE_EXPORT CUptiResult cuptiGetTimestamp(uint64_t *timestamp)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    *timestamp = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    return CUPTI_SUCCESS;
}
