/* Blob values: compressing them on the store's compression threads, and decoding them.
 *
 * A `blobs` value (schemas/store.md) is byte 0 the codec, bytes 1..8 the raw length (u64 BE),
 * then the data: the bytes as they are (0), a zlib stream (1, RFC 1950) or zstd frames (2,
 * RFC 8878, the first one with its content size). A blob whose compressed form would not be
 * smaller than the raw bytes is stored as is, whatever the codec asked for.
 *
 * Compression runs off the producer's thread. store_blob_give (store_write.c) takes the blob's
 * place in the writer's ring as a BLOB_PENDING record and queues that record here; one of
 * min(4, CPUs online) threads compresses it and marks it BLOB_READY (or BLOB_FAILED: out of
 * memory, which also stops the store with a message). The writer stops at a pending record
 * until it is ready (store_writer.c), so blobs and events are committed in the order they were
 * given. A blob of 8 MiB or more with zstd is also split across zstd's own workers (the same
 * count), where the library was built with them.
 *
 * Ownership: the record owns its bytes (z). A compressor works on a record between taking it
 * from the queue and marking it; no one frees a pending record's bytes but
 * store_ring_free_blobs after store_compress_stop. */
#include "store_write_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#define COMPRESS_THREADS_MAX 4
#define COMPRESS_MT_MIN (8u << 20) /* blobs from this size use zstd's workers too */

/* ------------------------------------------------------------ compressing */

int store_compress_fault;

/* Compress r's raw bytes with the store's codec. On success *out is the compressed bytes
 * (malloc'd, *outlen of them, *codec set), or NULL with *codec 0 when they would not be smaller.
 * PTB_ENOMEM with msg filled when the codec fails. */
static int blob_compress(store *s, ZSTD_CCtx **zc, const rec_blob *r, uint8_t **out, size_t *outlen,
                         uint32_t *codec, bool *mt, char *msg, size_t msgn)
{
    size_t len = r->zlen;
    *out = NULL;
    *codec = STORE_CODEC_NONE;
    *mt = false;
    if (len < 2)
        return 0;
    /* room for one byte less than the raw bytes: what does not fit is stored as is */
    size_t cap = len - 1;
    bool fault = __atomic_load_n(&store_compress_fault, __ATOMIC_RELAXED) > 0 &&
                 __atomic_sub_fetch(&store_compress_fault, 1, __ATOMIC_RELAXED) == 0;
    uint8_t *buf = fault ? NULL : malloc(cap);
    if (!buf) {
        snprintf(msg, msgn, "compressing a blob of %zu bytes: out of memory", len);
        return PTB_ENOMEM;
    }
    if (s->opt.blob_codec == STORE_CODEC_ZLIB) {
        uLongf zl = cap;
        int zrc = compress2(buf, &zl, r->z, len, s->opt.blob_level);
        if (zrc == Z_OK) {
            *outlen = zl;
            *codec = STORE_CODEC_ZLIB;
        } else if (zrc != Z_BUF_ERROR) {
            free(buf);
            snprintf(msg, msgn, "zlib failed on a blob of %zu bytes (%d)", len, zrc);
            return PTB_ENOMEM;
        }
    } else {
        if (!*zc && !(*zc = ZSTD_createCCtx())) {
            free(buf);
            snprintf(msg, msgn, "compressing a blob of %zu bytes: out of memory", len);
            return PTB_ENOMEM;
        }
        ZSTD_CCtx_reset(*zc, ZSTD_reset_session_and_parameters);
        ZSTD_CCtx_setParameter(*zc, ZSTD_c_compressionLevel, s->opt.blob_level);
        /* a library built without threads refuses: then one thread does it */
        if (len >= COMPRESS_MT_MIN && s->q->zstd_workers > 1)
            *mt = !ZSTD_isError(ZSTD_CCtx_setParameter(*zc, ZSTD_c_nbWorkers, s->q->zstd_workers));
        size_t zn = ZSTD_compress2(*zc, buf, cap, r->z, len);
        if (!ZSTD_isError(zn)) {
            *outlen = zn;
            *codec = STORE_CODEC_ZSTD;
        } else if (ZSTD_getErrorCode(zn) != ZSTD_error_dstSize_tooSmall) {
            free(buf);
            snprintf(msg, msgn, "zstd failed on a blob of %zu bytes: %s", len,
                     ZSTD_getErrorName(zn));
            return PTB_ENOMEM;
        }
    }
    if (*codec == STORE_CODEC_NONE) {
        free(buf);
        *mt = false;
        return 0;
    }
    uint8_t *shrunk = realloc(buf, *outlen ? *outlen : 1);
    *out = shrunk ? shrunk : buf;
    return 0;
}

static void *compress_main(void *arg)
{
    store *s = arg;
    store_queue *q = s->q;
    pthread_setname_np(pthread_self(), "ptb-compress");
    ZSTD_CCtx *zc = NULL;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->jobs && !q->cstop)
            pthread_cond_wait(&q->cond_jobs, &q->mu);
        if (q->cstop) /* the writer has stopped: what is left is never written */
            break;
        rec_blob *r = q->jobs;
        q->jobs = r->next;
        if (!q->jobs)
            q->jobs_last = NULL;
        bool skip = q->state != 0; /* the store stopped: no use */
        pthread_mutex_unlock(&q->mu);

        uint8_t *out = NULL;
        size_t outlen = 0;
        uint32_t codec = STORE_CODEC_NONE;
        bool mt = false;
        char msg[256] = "";
        int rc = skip ? 0 : blob_compress(s, &zc, r, &out, &outlen, &codec, &mt, msg, sizeof msg);
        if (!skip && !rc && out) {
            free(r->z);
            r->z = out;
            r->zlen = outlen;
            r->codec = codec;
        }

        pthread_mutex_lock(&q->mu);
        if (skip || rc) {
            if (rc && !q->state) {
                q->state = rc;
                snprintf(q->state_msg, sizeof q->state_msg, "%s", msg);
            }
            __atomic_store_n(&r->state, BLOB_FAILED, __ATOMIC_RELEASE);
            pthread_cond_broadcast(&q->cond_space);
            pthread_cond_broadcast(&q->cond_committed);
            pthread_cond_signal(&q->cond_writer);
            continue;
        }
        /* the budget and the in-flight bytes: what it really takes now */
        q->blob_zbytes -= r->reserved - (r->zlen + STORE_BLOB_HDR);
        q->inflight_bytes -= r->raw_len - r->zlen;
        q->stats.blobs_mt += mt;
        __atomic_store_n(&r->state, BLOB_READY, __ATOMIC_RELEASE);
        if (r->zlen < r->raw_len)
            pthread_cond_broadcast(&q->cond_space);
        if (q->writer_idle)
            pthread_cond_signal(&q->cond_writer);
    }
    pthread_mutex_unlock(&q->mu);
    ZSTD_freeCCtx(zc);
    return NULL;
}

void store_compress_queue(store_queue *q, rec_blob *r)
{
    r->next = NULL;
    if (q->jobs_last)
        q->jobs_last->next = r;
    else
        q->jobs = r;
    q->jobs_last = r;
    pthread_cond_signal(&q->cond_jobs);
}

int store_compress_start(store *s)
{
    store_queue *q = s->q;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int n = cpus < 1 ? 1 : cpus > COMPRESS_THREADS_MAX ? COMPRESS_THREADS_MAX : (int)cpus;
    q->cthreads = calloc((size_t)n, sizeof *q->cthreads);
    if (!q->cthreads)
        return PTB_ENOMEM;
    q->zstd_workers = n; /* before the threads start: they read it */
    for (int i = 0; i < n; i++) {
        int rc = pthread_create(&q->cthreads[i], NULL, compress_main, s);
        if (rc && i == 0) {
            free(q->cthreads);
            q->cthreads = NULL;
            return -rc;
        }
        if (rc) /* fewer threads: still works */
            break;
        q->ncthreads++;
    }
    return 0;
}

void store_compress_stop(store *s)
{
    store_queue *q = s->q;
    if (!q || !q->cthreads)
        return;
    pthread_mutex_lock(&q->mu);
    q->cstop = true;
    pthread_cond_broadcast(&q->cond_jobs);
    pthread_mutex_unlock(&q->mu);
    for (int i = 0; i < q->ncthreads; i++)
        pthread_join(q->cthreads[i], NULL);
    free(q->cthreads);
    q->cthreads = NULL;
    q->ncthreads = 0;
}

/* ------------------------------------------------------------ decoding */

/* deflate expands at most 1032:1; a zstd RLE block of 4 bytes stands for up to 128 KiB */
#define ZLIB_RATIO_MAX 1032
#define ZSTD_RATIO_MAX 32768
#define BLOB_RAW_MAX ((uint64_t)1 << 40)

/* The codec step of a value whose header was read: data of n bytes into out (raw bytes).
 * 0, or PTB_ECORRUPT with why set. Reads the LMDB map: called under the fault guard. */
static int blob_decode_data(unsigned codec, const uint8_t *data, size_t n, uint8_t *out,
                            uint64_t raw, ZSTD_DCtx *dc, const char **why)
{
    switch (codec) {
    case STORE_CODEC_NONE:
        if (n != raw) {
            *why = "stored bytes differ from its length";
            return PTB_ECORRUPT;
        }
        memcpy(out, data, n);
        return 0;
    case STORE_CODEC_ZLIB: {
        uLongf dl = raw;
        if (uncompress(out, &dl, data, n) != Z_OK || dl != raw) {
            *why = "zlib data does not inflate to its length";
            return PTB_ECORRUPT;
        }
        return 0;
    }
    case STORE_CODEC_ZSTD: {
        unsigned long long fcs = ZSTD_getFrameContentSize(data, n);
        if (fcs == ZSTD_CONTENTSIZE_ERROR || (fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs != raw)) {
            *why = "zstd frame header disagrees with its length";
            return PTB_ECORRUPT;
        }
        size_t got = ZSTD_decompressDCtx(dc, out, raw, data, n);
        if (ZSTD_isError(got) || got != raw) {
            *why = "zstd data does not decompress to its length";
            return PTB_ECORRUPT;
        }
        return 0;
    }
    }
    *why = "unknown codec";
    return PTB_ECORRUPT;
}

__attribute__((noinline)) static int g_decode_data(unsigned codec, const uint8_t *data, size_t n,
                                                   uint8_t *out, uint64_t raw, ZSTD_DCtx *dc,
                                                   const char **why)
{
    int rc;
    *why = "the store's file is damaged there";
    STORE_GUARDED(rc, blob_decode_data(codec, data, n, out, raw, dc, why));
    return rc;
}

__attribute__((noinline)) static int g_read_header(const uint8_t *p, unsigned *codec, uint64_t *raw)
{
    int rc;
    STORE_GUARDED(rc, (*codec = p[0], *raw = store_get_u64(p + 1), 0));
    return rc;
}

static int blob_bad(ptb_errbuf *eb, const uint8_t sha256[32], size_t n, const char *why)
{
    char hex[65];
    store_hex(sha256, 32, hex);
    return ptb_errf(eb, PTB_ECORRUPT, "blob %s (%zu bytes stored): %s", hex, n, why);
}

/* One zstd decompression context per thread, kept between blobs (a replay or an audit decodes
 * thousands of small ones: a context is ~100 KB to allocate and set up each time); freed when
 * the thread exits. */
static pthread_key_t dctx_key;
static pthread_once_t dctx_once = PTHREAD_ONCE_INIT;

static void dctx_free(void *p)
{
    ZSTD_freeDCtx(p);
}

static void dctx_key_make(void)
{
    pthread_key_create(&dctx_key, dctx_free);
}

static ZSTD_DCtx *thread_dctx(void)
{
    pthread_once(&dctx_once, dctx_key_make);
    ZSTD_DCtx *dc = pthread_getspecific(dctx_key);
    if (!dc && (dc = ZSTD_createDCtx()) && pthread_setspecific(dctx_key, dc) != 0) {
        ZSTD_freeDCtx(dc);
        dc = NULL;
    }
    return dc;
}

int store_blob_decode(const void *val, size_t n, const uint8_t sha256[32], ptb_errbuf *eb,
                      void **data, size_t *len)
{
    const uint8_t *p = val;
    unsigned codec = 0;
    uint64_t raw = 0;
    if (n < STORE_BLOB_HDR)
        return blob_bad(eb, sha256, n, "shorter than the value's header");
    if (g_read_header(p, &codec, &raw))
        return blob_bad(eb, sha256, n, "the store's file is damaged there");
    size_t dn = n - STORE_BLOB_HDR;
    char why[96];
    if (codec > STORE_CODEC_ZSTD) {
        snprintf(why, sizeof why, "unknown codec %u", codec);
        return blob_bad(eb, sha256, n, why);
    }
    if (raw > BLOB_RAW_MAX || (codec == STORE_CODEC_NONE && raw != dn) ||
        (codec == STORE_CODEC_ZLIB && raw > (uint64_t)dn * ZLIB_RATIO_MAX + 64) ||
        (codec == STORE_CODEC_ZSTD && raw > (uint64_t)dn * ZSTD_RATIO_MAX + 64)) {
        snprintf(why, sizeof why, "a length of %llu bytes does not fit codec %u",
                 (unsigned long long)raw, codec);
        return blob_bad(eb, sha256, n, why);
    }
    uint8_t *out = malloc(raw ? raw : 1);
    ZSTD_DCtx *dc = codec == STORE_CODEC_ZSTD ? thread_dctx() : NULL;
    if (!out || (codec == STORE_CODEC_ZSTD && !dc)) {
        free(out);
        return ptb_errf(eb, PTB_ENOMEM, "blob of %llu bytes: out of memory",
                        (unsigned long long)raw);
    }
    const char *bad = NULL;
    int rc = g_decode_data(codec, p + STORE_BLOB_HDR, dn, out, raw, dc, &bad);
    if (!rc) {
        uint8_t h[32];
        unsigned int hl = 32;
        if (!EVP_Digest(out, raw, h, &hl, EVP_sha256(), NULL)) {
            free(out);
            return ptb_errf(eb, PTB_ENOMEM, "SHA-256 failed");
        }
        if (memcmp(h, sha256, 32) != 0) {
            rc = PTB_ECORRUPT;
            bad = "its content does not have that SHA-256";
        }
    }
    if (rc) {
        free(out);
        return blob_bad(eb, sha256, n, bad);
    }
    *data = out;
    *len = raw;
    return 0;
}
