/* The store writer: producers, the bounded queue, group commit, the hash chain.
 *
 * Producers (any thread) encode their event in their own thread (store_codec_encode, interning
 * strings through a shared table), then copy the record into a ring buffer of queue_bytes under
 * one mutex; the seq is assigned there, so seq order is queue order. A full ring makes the
 * producer wait (backpressure), never drops, unless it asked for STORE_APPEND_NOWAIT.
 *
 * One writer thread owns the LMDB write transaction. It walks the ring from `scan`, puts each
 * event with MDB_APPEND, collects index postings per (index, value) in memory, and commits when
 * the batch holds batch_events events, batch_ms passed since its first record, a flush is asked,
 * or the ring is half full. At commit it writes the postings (one value per (index, value,
 * batch)), the strings interned since the last commit, the batch's time span, and the chain link
 * head = SHA-256(prev head || batch digest). Records stay in the ring until their commit
 * succeeds, so a transaction that fails with MDB_MAP_FULL is aborted, the map grown, and the same
 * records processed again. A full disk (ENOSPC) frees the reserve file the store keeps for this,
 * commits what it can plus a `store.error` event, and stops the writer: the store on disk is
 * consistent, every producer gets PTB_ENOSPC afterwards. */
#include "store_int.h"
#include "store_write_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ time */

static int64_t clock_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
int64_t store_now_realtime_ns(void)
{
    return clock_ns(CLOCK_REALTIME);
}
int64_t store_now_mono_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

void store_hex(const uint8_t *bytes, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[bytes[i] >> 4];
        out[2 * i + 1] = hx[bytes[i] & 15];
    }
    out[2 * n] = 0;
}

bool store_unhex(const char *s, uint8_t *out, size_t n)
{
    if (!s || strlen(s) != 2 * n)
        return false;
    for (size_t i = 0; i < 2 * n; i++) {
        char c = s[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return false;
        out[i / 2] = (uint8_t)(i % 2 ? out[i / 2] | v : v << 4);
    }
    return true;
}

void store_options_default(store_options *o)
{
    memset(o, 0, sizeof *o);
    o->batch_events = 65536;
    o->batch_ms = 50;
    o->index_events = 1u << 20;
    o->index_ms = 1000;
    o->queue_bytes = 64u << 20;
    o->event_max = 4u << 20;
    o->blob_max = 1u << 30;
    o->blob_budget = 64ULL << 30;
    o->map_size_initial = 1u << 30;
    o->map_size_max = 1ULL << 40;
    o->sync = STORE_SYNC_DATA;
    o->blob_codec = STORE_CODEC_ZSTD;
    o->blob_level = 1;
}

/* ------------------------------------------------------------ producers: append */

static uint32_t intern_cb(void *arg, const char *str, size_t n)
{
    return store_intern(arg, str, n);
}

static uint64_t ring_free(const store_queue *q)
{
    return q->cap - (q->head - q->tail);
}

/* Reserve room for a record of `need` bytes at the head (q->mu held); waits when full unless
 * nowait. Returns the record pointer, or NULL with *rc set. */
static rec_hdr *ring_reserve(store_queue *q, size_t need, bool nowait, int *rc)
{
    for (;;) {
        if (q->state) {
            *rc = q->state;
            return NULL;
        }
        uint64_t off = q->head % q->cap;
        uint64_t tail_room = q->cap - off;
        uint64_t skip = tail_room < need ? tail_room : 0;
        if (ring_free(q) >= need + skip) {
            if (skip) {
                if (skip >= sizeof(rec_hdr)) {
                    rec_hdr *pad = (rec_hdr *)(q->buf + off);
                    pad->kind = REC_PAD;
                    pad->size = (uint32_t)skip;
                }
                q->head += skip;
            }
            return (rec_hdr *)(q->buf + q->head % q->cap);
        }
        if (nowait) {
            *rc = -EAGAIN;
            return NULL;
        }
        q->waits++;
        pthread_cond_signal(&q->cond_writer);
        pthread_cond_wait(&q->cond_space, &q->mu);
    }
}

/* Wake the writer only when enough has piled up: it polls every batch_ms anyway, and a
 * futex wake per event would cost more than the event. */
static void ring_publish(store_queue *q, rec_hdr *h)
{
    q->head += h->size;
    h->ticket = ++q->tickets;
    if (q->writer_idle && q->head - q->tail >= q->wake_bytes)
        pthread_cond_signal(&q->cond_writer);
}

int store_append(store *s, const ptb_event *ev, unsigned flags, uint64_t *seq_out)
{
    if (!s || !ev)
        return PTB_EINVAL;
    if (!s->q)
        return ptb_errf(&s->err, PTB_EREADONLY, "store %s is open read-only", s->dir);
    store_queue *q = s->q;
    /* fill the envelope's clocks on a shallow copy; the caller's event is left alone */
    ptb_event c = *ev;
    if (!c.ts_ns)
        c.ts_ns = store_now_realtime_ns();
    if (!c.mono_ns)
        c.mono_ns = store_now_mono_ns();
    int64_t ts, ts_hi; /* a kernel batch is checked here too */
    if (store_event_span(&c, &ts, &ts_hi))
        return ptb_errf(&s->err, PTB_EINVAL,
                        "gpu.kernel_batch: no launches, too many, or columns that disagree");
    uint8_t stackbuf[2048];
    uint8_t *buf = stackbuf;
    size_t len = 0;
    store_postings post;
    int rc = store_codec_encode(&c, intern_cb, q, buf, sizeof stackbuf, &len, &post);
    if (rc == PTB_ETOOBIG && len > sizeof stackbuf && len <= s->opt.event_max) {
        buf = malloc(len);
        if (!buf)
            return PTB_ENOMEM;
        rc = store_codec_encode(&c, intern_cb, q, buf, len, &len, &post);
    }
    if (rc) {
        if (buf != stackbuf)
            free(buf);
        return ptb_errf(&s->err, rc, "event of type %u: %s (%zu bytes, cap %zu)", ev->body_case,
                        ptb_strerror(rc), len, s->opt.event_max);
    }
    size_t need = rec_event_size(post.n, len);
    if (need > q->cap / 2) {
        if (buf != stackbuf)
            free(buf);
        return ptb_errf(&s->err, PTB_ETOOBIG, "event of %zu bytes over half the queue", len);
    }
    pthread_mutex_lock(&q->mu);
    rec_hdr *h = ring_reserve(q, need, flags & STORE_APPEND_NOWAIT, &rc);
    if (h) {
        rec_event *e = (rec_event *)h;
        h->kind = REC_EVENT;
        h->size = (uint32_t)need;
        e->seq = ++q->next_seq;
        e->ts = ts;
        e->ts_hi = ts_hi;
        e->len = (uint32_t)len;
        e->npost = post.n;
        for (uint32_t i = 0; i < post.n; i++) {
            e->post[i].ix = post.ix[i];
            e->post[i].key = post.key[i];
        }
        memcpy(rec_event_data(e), buf, len);
        if (seq_out)
            *seq_out = e->seq;
        ring_publish(q, h);
    }
    pthread_mutex_unlock(&q->mu);
    if (buf != stackbuf)
        free(buf);
    if (!h)
        return rc == -EAGAIN ? rc : ptb_errf(&s->err, rc, "store stopped: %s", q->state_msg);
    return 0;
}

int store_meta_set(store *s, const char *key, const char *value)
{
    if (!s || !key || !value)
        return PTB_EINVAL;
    if (!s->q)
        return PTB_EREADONLY;
    size_t kl = strlen(key), vl = strlen(value);
    if (kl == 0 || kl > 200 || vl > 65536 || strncmp(key, "ptb.", 4) == 0)
        return ptb_errf(&s->err, PTB_EINVAL, "meta key '%s': empty, reserved or too long", key);
    store_queue *q = s->q;
    size_t need = rec_align(sizeof(rec_meta) + kl + vl);
    int rc = 0;
    pthread_mutex_lock(&q->mu);
    rec_hdr *h = ring_reserve(q, need, false, &rc);
    if (h) {
        rec_meta *m = (rec_meta *)h;
        h->kind = REC_META;
        h->size = (uint32_t)need;
        m->klen = (uint32_t)kl;
        m->vlen = (uint32_t)vl;
        memcpy(m->data, key, kl);
        memcpy(m->data + kl, value, vl);
        ring_publish(q, h);
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int store_flush(store *s)
{
    if (!s)
        return PTB_EINVAL;
    if (!s->q)
        return 0;
    store_queue *q = s->q;
    pthread_mutex_lock(&q->mu);
    uint64_t t = q->tickets;
    q->flush_ticket = t > q->flush_ticket ? t : q->flush_ticket;
    pthread_cond_signal(&q->cond_writer);
    while (q->committed_ticket < t && !q->state)
        pthread_cond_wait(&q->cond_committed, &q->mu);
    int rc = q->committed_ticket >= t ? 0 : q->state;
    pthread_mutex_unlock(&q->mu);
    return rc;
}

void store_write_stats_get(store *s, store_write_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!s || !s->q)
        return;
    pthread_mutex_lock(&s->q->mu);
    *out = s->q->stats;
    out->waits = s->q->waits;
    pthread_mutex_unlock(&s->q->mu);
}

/* ------------------------------------------------------------ blobs */

int store_blob_put(store *s, const void *data, size_t len, const char *what, uint8_t sha256_out[32])
{
    if (!s || (!data && len) || !sha256_out)
        return PTB_EINVAL;
    unsigned int hl = 32;
    if (!EVP_Digest(data, len, sha256_out, &hl, EVP_sha256(), NULL))
        return ptb_errf(&s->err, PTB_ENOMEM, "SHA-256 failed");
    if (!s->q)
        return PTB_EREADONLY;
    if (len > s->opt.blob_max) /* before the copy: the gap needs no bytes */
        return store_blob_gap(s, "blob_cap", len, sha256_out, what, PTB_ETOOBIG);
    void *copy = malloc(len ? len : 1);
    if (!copy)
        return ptb_errf(&s->err, PTB_ENOMEM, "blob of %zu bytes: out of memory", len);
    memcpy(copy, data, len);
    return store_blob_give(s, copy, len, sha256_out, what);
}

int store_blob_give(store *s, void *data, size_t len, const uint8_t sha256[32], const char *what)
{
    if (!s || (!data && len) || !sha256) {
        free(data);
        return PTB_EINVAL;
    }
    if (!s->q) {
        free(data);
        return PTB_EREADONLY;
    }
    store_queue *q = s->q;
    if (len > s->opt.blob_max) {
        free(data);
        return store_blob_gap(s, "blob_cap", len, sha256, what, PTB_ETOOBIG);
    }
    int rc = store_blob_claim(q, sha256);
    if (rc) {
        free(data);
        if (rc == 1)
            return 0; /* already stored or on its way */
        return ptb_errf(&s->err, rc, "blob lookup: %s", ptb_strerror(rc));
    }

    /* charged at its largest (a blob that does not shrink is stored as is), corrected by the
     * compressor */
    uint64_t reserve = (uint64_t)len + STORE_BLOB_HDR;
    pthread_mutex_lock(&q->mu);
    if (q->blob_zbytes + reserve > s->opt.blob_budget) {
        pthread_mutex_unlock(&q->mu);
        free(data);
        store_blob_unclaim(q, sha256, 0);
        return store_blob_gap(s, "blob_budget", len, sha256, what, PTB_EBUDGET);
    }
    q->blob_zbytes += reserve;
    /* bound the memory of blobs in flight, those waiting to be compressed included; a blob
     * larger than the bound goes when nothing else is in flight */
    while (q->inflight_bytes > 0 && q->inflight_bytes + len > q->cap && !q->state) {
        q->waits++;
        pthread_cond_wait(&q->cond_space, &q->mu);
    }
    rec_hdr *h = ring_reserve(q, sizeof(rec_blob), false, &rc);
    if (h) {
        rec_blob *b = (rec_blob *)h;
        memset(b, 0, sizeof *b);
        h->kind = REC_BLOB;
        h->size = sizeof(rec_blob);
        memcpy(b->sha, sha256, 32);
        b->raw_len = len;
        b->z = data;
        b->zlen = len;
        b->reserved = reserve;
        q->inflight_bytes += len;
        /* nothing to compress: ready as it is */
        bool now = len == 0 || s->opt.blob_codec == STORE_CODEC_NONE;
        if (now)
            b->state = BLOB_READY;
        ring_publish(q, h);
        if (!now)
            store_compress_queue(q, b);
    } else {
        q->blob_zbytes -= reserve;
    }
    pthread_mutex_unlock(&q->mu);
    if (!h) {
        free(data);
        store_blob_unclaim(q, sha256, 0);
        return ptb_errf(&s->err, rc, "store stopped: %s", q->state_msg);
    }
    return 0;
}

/* The store records every blob it refuses, so the omission is in the log. */
int store_blob_gap(store *s, const char *reason, size_t len, const uint8_t sha[32],
                   const char *what, int code)
{
    Ptb__V1__Gap g = PTB__V1__GAP__INIT;
    g.origin = (char *)"blob";
    g.reason = (char *)reason;
    g.count = 1;
    g.bytes = len;
    g.path = (char *)(what ? what : "");
    g.sha256.data = (uint8_t *)sha;
    g.sha256.len = 32;
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.source = PTB__V1__SOURCE__SOURCE_STORE;
    ev.body_case = PTB__V1__EVENT__BODY_GAP;
    ev.gap = &g;
    int rc = store_append(s, &ev, 0, NULL);
    if (rc)
        return rc;
    return ptb_errf(&s->err, code, "blob of %zu bytes (%s) not stored: %s", len,
                    what ? what : "unnamed", reason);
}
