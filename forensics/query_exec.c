/* The query executor: candidates (a seq range, or the sorted union of posting lists) are cut
 * into chunks; worker threads, each with its own read transaction, check the chunks; the
 * calling thread takes the results back chunk by chunk, in order, and hands the matches to
 * emit. At most QUERY_WINDOW chunks are in flight, so memory stays bounded and --limit stops
 * the workers early.
 *
 * A check reads the stored bytes of the event and parses only its envelope (seq, ts_ns,
 * mono_ns, source, exec_id, tid, sub and which body it has) into a "light" event whose body pointer
 * is NULL; the filter decides on that when it can (evt.type, evt.time, proc.exec_id, fields of
 * other event types, the process table), and the body is decoded only when the answer is
 * FILTER_UNKNOWN. A match then goes through query_options.accept when there is one (--contains),
 * in the worker too, after its stored-bytes pre-check. Snapshots of the workers may be newer
 * than the caller's, but seqs never move, and every chunk stays within the caller's last seq. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "query_int.h"

/* Seqs per chunk of a scan; candidates per chunk of an index plan (small: each candidate is a
 * random read, and small chunks keep every worker busy until the end). */
#define CHUNK_RANGE 65536
#define CHUNK_LIST 256
#define QUERY_WINDOW_PER_THREAD 4

typedef struct chunk {
    uint64_t k; /* chunk number */
    bool done;
    uint64_t *out;         /* matching seqs, owned */
    const ptb_event **evs; /* with need_event: the matches decoded into evb, owned */
    store_evbuf *evb;
    size_t n, cap;
    store_evbuf *batch;      /* a kernel batch being expanded */
    int err;                 /* a store error other than a corrupt event */
    uint64_t corrupt, first; /* events that did not decode */
    uint64_t checked;
} chunk;

typedef struct exec {
    query *q;
    /* the candidates */
    const uint64_t *list; /* index plan: sorted seqs; NULL for a scan */
    size_t nlist;
    uint64_t nchunks;
    /* the window */
    pthread_mutex_t mu;
    pthread_cond_t cv_done, cv_space;
    chunk *slots;
    size_t window;
    uint64_t next, consumed;
    bool stop;
} exec;

/* ------------------------------------------------------------------ the envelope */

/* The known body cases (field numbers of the oneof), bit c of body_cases[c / 64]. */
static uint64_t body_cases[2];
static pthread_once_t body_cases_once = PTHREAD_ONCE_INIT;

static void body_cases_init(void)
{
    for (size_t i = 0; i < event_type_count(); i++) {
        uint32_t c = event_type_at(i);
        if (c < 128)
            body_cases[c / 64] |= (uint64_t)1 << (c % 64);
    }
}

static bool env_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return false;
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return true;
        }
    }
    return false;
}

/* Parse the envelope of stored event bytes into *ev (body pointer NULL). False on bytes that
 * are not a well-formed message: the caller then decodes normally, which reports them. */
static bool env_parse(const void *data, size_t len, uint64_t seq, ptb_event *ev)
{
    ptb__v1__event__init(ev);
    ev->seq = seq;
    const uint8_t *p = data, *end = p + len;
    while (p < end) {
        uint64_t tag, v;
        if (!env_varint(&p, end, &tag))
            return false;
        uint32_t field = (uint32_t)(tag >> 3);
        switch (tag & 7) {
        case 0:
            if (!env_varint(&p, end, &v))
                return false;
            switch (field) {
            case 2: ev->ts_ns = (int64_t)v; break;
            case 3: ev->mono_ns = (int64_t)v; break;
            case 4: ev->source = (Ptb__V1__Source)(int32_t)v; break;
            case 5: ev->exec_id = v; break;
            case 6: ev->tid = (uint32_t)v; break;
            case 7: ev->sub = (uint32_t)v; break;
            default: break;
            }
            break;
        case 1:
            if (end - p < 8)
                return false;
            p += 8;
            break;
        case 5:
            if (end - p < 4)
                return false;
            p += 4;
            break;
        case 2:
            if (!env_varint(&p, end, &v) || v > (uint64_t)(end - p))
                return false;
            p += v;
            if (field < 128 && (body_cases[field / 64] >> (field % 64)) & 1)
                ev->body_case = (Ptb__V1__Event__BodyCase)field; /* last one wins */
            break;
        default: return false;
        }
    }
    return true;
}

/* ------------------------------------------------------------------ workers */

static int chunk_push(chunk *c, uint64_t seq, const ptb_event *ev)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 256;
        uint64_t *no = realloc(c->out, cap * sizeof *no);
        if (!no)
            return PTB_ENOMEM;
        c->out = no;
        const ptb_event **ne = realloc(c->evs, cap * sizeof *ne);
        if (!ne)
            return PTB_ENOMEM;
        c->evs = ne;
        c->cap = cap;
    }
    c->evs[c->n] = ev;
    c->out[c->n++] = seq;
    return 0;
}

/* Check every launch of a kernel batch (store.h, "Kernel batches"): each is an event of its
 * own to the filter and to emit, with the batch's seq. */
static int check_batch(exec *x, store_txn *t, filter_ctx *cx, chunk *c, uint64_t seq,
                       const void *data, size_t len)
{
    const query_options *o = &x->q->o;
    const plan_set *p = &x->q->plan;
    if (!c->batch && store_evbuf_new(&c->batch))
        return PTB_ENOMEM;
    store_evbuf_reset(c->batch);
    const ptb_event *b, *ev;
    int rc = store_event_decode_buf(t, seq, data, len, c->batch, &b);
    store_kernels it;
    if (rc == 0 && store_kernels_begin(b, &it))
        rc = PTB_ECORRUPT;
    if (rc == PTB_ECORRUPT) {
        if (!c->corrupt++)
            c->first = seq;
        return 0;
    }
    if (rc)
        return rc;
    while (store_kernels_next(&it, &ev) == 0) {
        if (ev->ts_ns < p->ts_lo || ev->ts_ns > p->ts_hi ||
            filter_eval(x->q->f, ev, cx) != FILTER_TRUE)
            continue;
        if (o->accept && (rc = o->accept(o->accept_arg, t, ev)) <= 0) {
            if (rc < 0)
                return rc;
            continue;
        }
        const ptb_event *keep = NULL;
        if (o->need_event) {
            if (!c->evb && store_evbuf_new(&c->evb))
                return PTB_ENOMEM;
            if ((rc = store_kernel_copy_buf(ev, c->evb, &keep)))
                return rc;
        }
        if ((rc = chunk_push(c, seq, keep)))
            return rc;
    }
    return 0;
}

/* Check one candidate whose stored bytes are data/len. */
static int check_bytes(exec *x, store_txn *t, filter_ctx *cx, chunk *c, uint64_t seq,
                       const void *data, size_t len)
{
    c->checked++;
    ptb_event light;
    int r = FILTER_UNKNOWN;
    bool envelope = env_parse(data, len, seq, &light);
    if (envelope && light.body_case == PTB__V1__EVENT__BODY_GPU_KERNEL_BATCH)
        return check_batch(x, t, cx, c, seq, data, len);
    if (envelope) {
        const plan_set *p = &x->q->plan;
        if (light.ts_ns < p->ts_lo || light.ts_ns > p->ts_hi)
            return 0;
        r = filter_eval(x->q->f, &light, cx);
    }
    const ptb_event *ev = NULL;
    if (r == FILTER_UNKNOWN) {
        int rc = store_event_decode(t, seq, data, len, &ev);
        if (rc == PTB_ECORRUPT)
            goto corrupt;
        if (rc)
            return rc;
        r = filter_eval(x->q->f, ev, cx);
    }
    if (r != FILTER_TRUE)
        return 0;
    if (x->q->o.accept) {
        const query_options *o = &x->q->o;
        if (envelope && o->accept_maybe &&
            !o->accept_maybe(o->accept_arg, (uint32_t)light.body_case, data, len))
            return 0;
        int rc = ev ? 0 : store_event_decode(t, seq, data, len, &ev);
        if (rc == PTB_ECORRUPT)
            goto corrupt;
        if (rc)
            return rc;
        if ((rc = o->accept(o->accept_arg, t, ev)) <= 0)
            return rc;
    }
    /* a match: decoded here, in the worker, into the chunk's buffer, so the emitting thread
     * neither reads nor decodes it again */
    const ptb_event *keep = NULL;
    if (x->q->o.need_event) {
        if (!c->evb && store_evbuf_new(&c->evb))
            return PTB_ENOMEM;
        int rc = store_event_decode_buf(t, seq, data, len, c->evb, &keep);
        if (rc == PTB_ECORRUPT)
            goto corrupt;
        if (rc)
            return rc;
    }
    return chunk_push(c, seq, keep);
corrupt:
    if (!c->corrupt++)
        c->first = seq;
    return 0;
}

/* Check one candidate by seq (index plans: random access). */
static int check_one(exec *x, store_txn *t, filter_ctx *cx, chunk *c, uint64_t seq)
{
    const void *data;
    size_t len;
    int rc = store_event_raw(t, seq, &data, &len);
    if (rc == PTB_ENOTFOUND)
        return 0;
    if (rc == PTB_ECORRUPT) {
        c->checked++;
        if (!c->corrupt++)
            c->first = seq;
        return 0;
    }
    if (rc)
        return rc;
    return check_bytes(x, t, cx, c, seq, data, len);
}

/* Check a seq range in order with one cursor (scans: sequential reads, no lookup per event). */
static int check_range(exec *x, store_txn *t, filter_ctx *cx, chunk *c, const store_range *r)
{
    store_cursor *cur;
    int rc = store_cursor_open(t, r, &cur);
    if (rc)
        return rc;
    uint64_t seq;
    const void *data;
    size_t len;
    while ((rc = store_cursor_next_raw(cur, &seq, &data, &len)) == 0)
        if ((rc = check_bytes(x, t, cx, c, seq, data, len)))
            break;
    store_cursor_close(cur);
    if (rc == PTB_ECORRUPT) { /* the events tree itself is damaged: the rest of the range too */
        if (!c->corrupt++)
            c->first = r->seq_from;
        rc = 0;
    }
    return rc == PTB_ENOTFOUND ? 0 : rc;
}

static int check_chunk(exec *x, store_txn *t, filter_ctx *cx, chunk *c)
{
    const plan_set *p = &x->q->plan;
    int rc = 0;
    if (x->list) {
        size_t lo = (size_t)c->k * CHUNK_LIST;
        size_t hi = lo + CHUNK_LIST < x->nlist ? lo + CHUNK_LIST : x->nlist;
        for (size_t i = lo; i < hi && !rc; i++)
            rc = check_one(x, t, cx, c, x->list[i]);
        return rc;
    }
    uint64_t lo = p->seq_lo + c->k * CHUNK_RANGE;
    uint64_t hi = p->seq_hi - lo < CHUNK_RANGE ? p->seq_hi : lo + CHUNK_RANGE - 1;
    store_range r = {.seq_from = lo, .seq_to = hi};
    if (p->ts_lo != INT64_MIN || p->ts_hi != INT64_MAX) {
        /* time bounds: only the batches whose span meets them */
        r.by_time = true;
        r.ts_from = p->ts_lo;
        r.ts_to = p->ts_hi == INT64_MAX ? 0 : p->ts_hi;
    }
    return check_range(x, t, cx, c, &r);
}

static void *worker_main(void *arg)
{
    exec *x = arg;
    store_txn *t = NULL;
    int trc = store_txn_begin(x->q->s, &t);
    filter_ctx cx;
    filter_ctx_init(&cx, x->q->procs ? query_procs_find : NULL, x->q->procs);
    for (;;) {
        pthread_mutex_lock(&x->mu);
        while (!x->stop && x->next < x->nchunks && x->next >= x->consumed + x->window)
            pthread_cond_wait(&x->cv_space, &x->mu);
        if (x->stop || x->next >= x->nchunks) {
            pthread_mutex_unlock(&x->mu);
            break;
        }
        uint64_t k = x->next++;
        pthread_mutex_unlock(&x->mu);
        chunk *c = &x->slots[k % x->window];
        c->k = k;
        c->n = 0;
        store_evbuf_reset(c->evb);
        c->corrupt = c->first = c->checked = 0;
        c->err = trc ? trc : check_chunk(x, t, &cx, c);
        if (!c->err && cx.oom)
            c->err = PTB_ENOMEM;
        pthread_mutex_lock(&x->mu);
        c->done = true;
        pthread_cond_broadcast(&x->cv_done);
        pthread_mutex_unlock(&x->mu);
    }
    filter_ctx_free(&cx);
    store_txn_end(t);
    return NULL;
}

/* ------------------------------------------------------------------ candidates */

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The sorted, deduplicated union of the plan's posting lists within its seq bounds. */
static int collect(query *q, uint64_t **out, size_t *nout)
{
    const plan_set *p = &q->plan;
    size_t cap = p->count < 1024 ? 1024 : (size_t)p->count, n = 0;
    uint64_t *v = malloc(cap * sizeof *v);
    if (!v)
        return PTB_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < p->nkeys && !rc; i++) {
        store_range r = {.seq_from = p->seq_lo,
                         .seq_to = p->seq_hi,
                         .by_index = true,
                         .index = p->keys[i].ix,
                         .key = p->keys[i].key};
        store_cursor *c;
        if ((rc = store_cursor_open(q->t, &r, &c)))
            break;
        uint64_t s;
        while ((rc = store_cursor_next_seq(c, &s)) == 0) {
            if (n == cap) {
                /* counts were read in the same snapshot, so this is only hostile data */
                if (cap >= QUERY_INDEX_MAX * 2) {
                    rc = PTB_ECORRUPT;
                    break;
                }
                uint64_t *nv = realloc(v, 2 * cap * sizeof *nv);
                if (!nv) {
                    rc = PTB_ENOMEM;
                    break;
                }
                v = nv;
                cap *= 2;
            }
            v[n++] = s;
        }
        store_cursor_close(c);
        if (rc == PTB_ENOTFOUND)
            rc = 0;
    }
    if (rc) {
        free(v);
        return rc;
    }
    if (p->nkeys > 1) {
        qsort(v, n, sizeof *v, u64_cmp);
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (k == 0 || v[k - 1] != v[i])
                v[k++] = v[i];
        n = k;
    }
    *out = v;
    *nout = n;
    return 0;
}

/* ------------------------------------------------------------------ run */

int query_run(query *q, query_emit_fn emit, void *arg)
{
    q->corrupt = q->corrupt_first = q->checked = 0;
    pthread_once(&body_cases_once, body_cases_init);
    const plan_set *p = &q->plan;
    exec x = {.q = q};
    uint64_t *list = NULL;
    int rc = 0;
    if (q->use_index) {
        if ((rc = collect(q, &list, &x.nlist)))
            return rc;
        x.list = list;
        x.nchunks = (x.nlist + CHUNK_LIST - 1) / CHUNK_LIST;
    } else if (p->seq_lo <= p->seq_hi && p->seq_hi > 0) {
        x.nchunks = (p->seq_hi - p->seq_lo) / CHUNK_RANGE + 1;
    }
    if (x.nchunks == 0) {
        free(list);
        return 0;
    }
    int nthreads = q->threads;
    if ((uint64_t)nthreads > x.nchunks)
        nthreads = (int)x.nchunks;
    x.window = (size_t)nthreads * QUERY_WINDOW_PER_THREAD;
    x.slots = calloc(x.window, sizeof *x.slots);
    pthread_t *th = calloc((size_t)nthreads, sizeof *th);
    if (!x.slots || !th) {
        free(x.slots);
        free(th);
        free(list);
        return PTB_ENOMEM;
    }
    pthread_mutex_init(&x.mu, NULL);
    pthread_cond_init(&x.cv_done, NULL);
    pthread_cond_init(&x.cv_space, NULL);
    int started = 0;
    for (int i = 0; i < nthreads; i++) {
        if (pthread_create(&th[i], NULL, worker_main, &x) != 0)
            break;
        started++;
    }
    if (started == 0)
        rc = PTB_ENOMEM;
    for (uint64_t k = 0; k < x.nchunks && !rc; k++) {
        chunk *c = &x.slots[k % x.window];
        pthread_mutex_lock(&x.mu);
        while (!(c->done && c->k == k))
            pthread_cond_wait(&x.cv_done, &x.mu);
        pthread_mutex_unlock(&x.mu);
        q->checked += c->checked;
        if (c->corrupt && !q->corrupt++)
            q->corrupt_first = c->first;
        if (c->corrupt > 1)
            q->corrupt += c->corrupt - 1;
        rc = c->err;
        for (size_t i = 0; i < c->n && !rc; i++)
            rc = emit(arg, c->out[i], c->evs[i]);
        pthread_mutex_lock(&x.mu);
        c->done = false;
        x.consumed = k + 1;
        if (rc)
            x.stop = true;
        pthread_cond_broadcast(&x.cv_space);
        pthread_mutex_unlock(&x.mu);
    }
    pthread_mutex_lock(&x.mu);
    x.stop = true;
    pthread_cond_broadcast(&x.cv_space);
    pthread_mutex_unlock(&x.mu);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    for (size_t i = 0; i < x.window; i++) {
        free(x.slots[i].out);
        free(x.slots[i].evs);
        store_evbuf_free(x.slots[i].evb);
        store_evbuf_free(x.slots[i].batch);
    }
    free(x.slots);
    free(th);
    free(list);
    pthread_mutex_destroy(&x.mu);
    pthread_cond_destroy(&x.cv_done);
    pthread_cond_destroy(&x.cv_space);
    return rc == 1 ? 0 : rc;
}
