/* Reading a store: snapshots, cursors by seq / time / index, strings, blobs, meta, summaries.
 *
 * Every call that makes liblmdb touch the map runs under STORE_GUARDED: a corrupt file whose
 * page pointers lead outside the map gives PTB_ECORRUPT, not a crash (`ptb verify` checks the
 * page structure in full). Values are bounds-checked before use. */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

__thread sigjmp_buf *store_guard_jmp;

static struct sigaction guard_prev_segv, guard_prev_bus;

static void guard_handler(int sig, siginfo_t *si, void *uc)
{
    (void)si, (void)uc;
    if (store_guard_jmp)
        siglongjmp(*store_guard_jmp, 1);
    /* not a fault of a guarded store read: give it to whoever had the signal before us, by
     * restoring their action and letting the faulting instruction run again */
    sigaction(sig, sig == SIGSEGV ? &guard_prev_segv : &guard_prev_bus, NULL);
}

static pthread_mutex_t guard_mu = PTHREAD_MUTEX_INITIALIZER;

/* Install the guard unless it is already the handler (someone may have replaced it since). */
int store_guard_install(void)
{
    pthread_mutex_lock(&guard_mu);
    struct sigaction cur, sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = guard_handler;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, NULL, &cur) == 0 && cur.sa_sigaction != guard_handler)
        sigaction(SIGSEGV, &sa, &guard_prev_segv);
    if (sigaction(SIGBUS, NULL, &cur) == 0 && cur.sa_sigaction != guard_handler)
        sigaction(SIGBUS, &sa, &guard_prev_bus);
    pthread_mutex_unlock(&guard_mu);
    return 0;
}

int store_rc(int mdb_rc)
{
    if (mdb_rc == MDB_NOTFOUND)
        return PTB_ENOTFOUND;
    if (mdb_rc == MDB_CORRUPTED || mdb_rc == MDB_PAGE_NOTFOUND || mdb_rc == MDB_BAD_VALSIZE)
        return PTB_ECORRUPT;
    return mdb_rc > 0 ? -mdb_rc : mdb_rc;
}

/* ------------------------------------------------------------ snapshots */

#define SID_CACHE 4096

struct store_txn {
    store *s;
    MDB_txn *txn;
    bool locked;
    store_arena arena; /* store_event_get */
    struct {
        uint32_t sid;
        uint32_t len;
        const char *str;
    } cache[SID_CACHE];
    uint64_t last_seq;
    uint64_t indexed_seq; /* events after this have no postings yet (the index tail) */
    uint32_t strings;
};

int store_txn_begin(store *s, store_txn **out)
{
    *out = NULL;
    store_txn *t = calloc(1, sizeof *t);
    if (!t)
        return PTB_ENOMEM;
    t->s = s;
    store_arena_init(&t->arena);
    pthread_rwlock_rdlock(&s->map_lock);
    t->locked = true;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &t->txn);
    if (rc == MDB_MAP_RESIZED) { /* a writer grew the map: adopt its size */
        mdb_env_set_mapsize(s->env, 0);
        rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &t->txn);
    }
    if (rc) {
        rc = store_rc(rc);
        ptb_errf(&s->err, rc, "%s: cannot read: %s", s->dir, ptb_strerror(rc));
        store_txn_end(t);
        return rc;
    }
    const char *v;
    size_t n;
    char buf[24];
    if (store_meta_get(t, "ptb.last_seq", &v, &n) == 0 && n < sizeof buf) {
        memcpy(buf, v, n);
        buf[n] = 0;
        t->last_seq = strtoull(buf, NULL, 10);
    }
    t->indexed_seq = t->last_seq;
    if (store_meta_get(t, "ptb.indexed_seq", &v, &n) == 0 && n < sizeof buf) {
        memcpy(buf, v, n);
        buf[n] = 0;
        unsigned long long x = strtoull(buf, NULL, 10);
        t->indexed_seq = x < t->last_seq ? x : t->last_seq;
    }
    if (store_meta_get(t, "ptb.strings", &v, &n) == 0 && n < sizeof buf) {
        memcpy(buf, v, n);
        buf[n] = 0;
        unsigned long long x = strtoull(buf, NULL, 10);
        t->strings = x > UINT32_MAX ? 0 : (uint32_t)x;
    }
    *out = t;
    return 0;
}

void store_txn_end(store_txn *t)
{
    if (!t)
        return;
    if (t->txn)
        mdb_txn_abort(t->txn);
    if (t->locked)
        pthread_rwlock_unlock(&t->s->map_lock);
    store_arena_free(&t->arena);
    free(t);
}

uint64_t store_txn_last_seq(store_txn *t)
{
    return t->last_seq;
}

/* ------------------------------------------------------------ guarded primitives */

__attribute__((noinline)) int store_mdb_get(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, MDB_val *v)
{
    int rc;
    STORE_GUARDED(rc, mdb_get(txn, dbi, k, v));
    return store_rc(rc);
}

__attribute__((noinline)) int store_mdb_cget(MDB_cursor *c, MDB_val *k, MDB_val *v,
                                             MDB_cursor_op op)
{
    int rc;
    STORE_GUARDED(rc, mdb_cursor_get(c, k, v, op));
    return store_rc(rc);
}

/* ------------------------------------------------------------ strings */

int store_string_raw(MDB_txn *txn, MDB_dbi dbi, uint32_t sid, const char **str, size_t *len)
{
    uint8_t kb[4];
    store_put_u32(kb, sid);
    MDB_val k = {4, kb}, v;
    int rc = store_mdb_get(txn, dbi, &k, &v);
    if (rc)
        return rc;
    if (v.mv_size > STORE_STRING_MAX)
        return PTB_ECORRUPT;
    *str = v.mv_data;
    *len = v.mv_size;
    return 0;
}

int store_string_get(store_txn *t, uint32_t sid, const char **str, size_t *len)
{
    if (sid == 0)
        return PTB_ENOTFOUND;
    unsigned slot = sid % SID_CACHE;
    if (t->cache[slot].sid == sid) {
        *str = t->cache[slot].str;
        *len = t->cache[slot].len;
        return 0;
    }
    int rc = store_string_raw(t->txn, t->s->dbi[STORE_DB_STRINGS], sid, str, len);
    if (rc == 0) {
        t->cache[slot].sid = sid;
        t->cache[slot].str = *str;
        t->cache[slot].len = (uint32_t)*len;
    }
    return rc;
}

int store_string_lookup(store_txn *t, const char *str, size_t len, uint32_t *sid)
{
    uint8_t hb[8];
    store_put_u64(hb, store_str_hash(str, len));
    MDB_cursor *c;
    int rc = store_rc(mdb_cursor_open(t->txn, t->s->dbi[STORE_DB_STRINGS_R], &c));
    if (rc)
        return rc;
    MDB_val k = {8, hb}, v;
    for (rc = store_mdb_cget(c, &k, &v, MDB_SET_KEY); rc == 0;
         rc = store_mdb_cget(c, &k, &v, MDB_NEXT_DUP)) {
        if (v.mv_size != 4) {
            rc = PTB_ECORRUPT;
            break;
        }
        uint32_t id = store_get_u32(v.mv_data);
        const char *s;
        size_t n;
        int r = store_string_get(t, id, &s, &n);
        if (r == 0 && n == len && memcmp(s, str, len) == 0) {
            *sid = id;
            break;
        }
    }
    mdb_cursor_close(c);
    return rc;
}

uint32_t store_string_count(store_txn *t)
{
    return t->strings;
}

static int resolve_cb(void *arg, uint32_t sid, const char **s, size_t *n)
{
    return store_string_get(arg, sid, s, n);
}

/* ------------------------------------------------------------ events */

int store_event_raw(store_txn *t, uint64_t seq, const void **data, size_t *len)
{
    uint8_t kb[8];
    store_put_u64(kb, seq);
    MDB_val k = {8, kb}, v;
    int rc = store_mdb_get(t->txn, t->s->dbi[STORE_DB_EVENTS], &k, &v);
    if (rc)
        return rc;
    *data = v.mv_data;
    *len = v.mv_size;
    return 0;
}

__attribute__((noinline)) static int decode_guarded(store_txn *t, const void *data, size_t len,
                                                    uint64_t seq, store_arena *a,
                                                    const ptb_event **ev)
{
    int rc;
    store_arena_reset(a);
    STORE_GUARDED(rc, store_codec_decode(data, len, seq, a, resolve_cb, t, ev));
    return rc;
}

int store_event_get(store_txn *t, uint64_t seq, const ptb_event **ev)
{
    const void *d;
    size_t n;
    int rc = store_event_raw(t, seq, &d, &n);
    if (rc)
        return rc;
    return decode_guarded(t, d, n, seq, &t->arena, ev);
}

/* ------------------------------------------------------------ cursors */

struct store_cursor {
    store_txn *t;
    store_range r;
    MDB_cursor *ev;  /* events */
    MDB_cursor *aux; /* index or batches */
    store_arena arena;
    bool started, done;
    int failed;
    /* index mode: the current posting block */
    uint64_t *seqs;
    size_t nseqs, iseq, seqs_cap;
    /* time mode: the current batch's remaining seq range */
    uint64_t bnext, bend;
    /* index mode, after the postings: the index tail, scanned (store.md, "index tail") */
    bool tail;
    uint64_t tail_next;
    /* store_cursor_next inside a kernel batch (decoded in arena) */
    bool in_batch;
    store_kernels kit;
};

int store_cursor_open(store_txn *t, const store_range *r, store_cursor **out)
{
    *out = NULL;
    if (r->by_index && r->index >= STORE_IX_COUNT)
        return PTB_EINVAL;
    store_cursor *c = calloc(1, sizeof *c);
    if (!c)
        return PTB_ENOMEM;
    c->t = t;
    c->r = *r;
    if (c->r.seq_to == 0)
        c->r.seq_to = UINT64_MAX;
    store_arena_init(&c->arena);
    int rc = store_rc(mdb_cursor_open(t->txn, t->s->dbi[STORE_DB_EVENTS], &c->ev));
    if (!rc && (r->by_index || r->by_time)) {
        MDB_dbi d =
            r->by_index ? t->s->dbi[STORE_DB_IX_FIRST + r->index] : t->s->dbi[STORE_DB_BATCHES];
        rc = store_rc(mdb_cursor_open(t->txn, d, &c->aux));
    }
    if (rc) {
        store_cursor_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

void store_cursor_close(store_cursor *c)
{
    if (!c)
        return;
    if (c->ev)
        mdb_cursor_close(c->ev);
    if (c->aux)
        mdb_cursor_close(c->aux);
    store_arena_free(&c->arena);
    free(c->seqs);
    free(c);
}

/* Decode a posting value whose key gave first seq `first` into c->seqs. */
static int posting_load(store_cursor *c, uint64_t first, const MDB_val *v)
{
    const uint8_t *p = v->mv_data, *end = p + v->mv_size;
    uint64_t n;
    if (store_varint_get(&p, end, &n) || n == 0 || n > v->mv_size + 1)
        return PTB_ECORRUPT;
    if (n > c->seqs_cap) {
        uint64_t *ns = realloc(c->seqs, n * sizeof *ns);
        if (!ns)
            return PTB_ENOMEM;
        c->seqs = ns;
        c->seqs_cap = n;
    }
    c->seqs[0] = first;
    for (uint64_t i = 1; i < n; i++) {
        uint64_t d;
        if (store_varint_get(&p, end, &d) || d == 0 || c->seqs[i - 1] + d < c->seqs[i - 1])
            return PTB_ECORRUPT;
        c->seqs[i] = c->seqs[i - 1] + d;
    }
    if (p != end)
        return PTB_ECORRUPT;
    c->nseqs = n;
    c->iseq = 0;
    return 0;
}

/* Postings of stored bytes under the fault guard (a value may point outside a damaged map). */
__attribute__((noinline)) static int postings_guarded(const void *data, size_t len, store_arena *a,
                                                      store_postings *p)
{
    int rc;
    STORE_GUARDED(rc, store_codec_postings_stored(data, len, a, p));
    return rc;
}

/* Index mode past the postings: events after indexed_seq carry (index, key)? */
static int next_tail_seq(store_cursor *c, uint64_t *seq)
{
    store_txn *t = c->t;
    uint64_t end = c->r.seq_to < t->last_seq ? c->r.seq_to : t->last_seq;
    if (!c->tail) {
        c->tail = true;
        c->tail_next = t->indexed_seq + 1 > c->r.seq_from ? t->indexed_seq + 1 : c->r.seq_from;
    }
    while (c->tail_next <= end) {
        uint64_t s = c->tail_next++;
        const void *data = NULL;
        size_t len = 0;
        int rc = store_event_raw(t, s, &data, &len);
        if (rc == PTB_ENOTFOUND)
            return PTB_ECORRUPT; /* seqs are dense up to last_seq */
        if (rc)
            return rc;
        store_postings p;
        store_arena_reset(&c->arena);
        rc = postings_guarded(data, len, &c->arena, &p);
        if (rc)
            continue; /* a tail event that does not decode is not in any index */
        for (uint32_t i = 0; i < p.n; i++)
            if (p.ix[i] == c->r.index && p.key[i] == c->r.key) {
                *seq = s;
                return 0;
            }
    }
    c->done = true;
    return PTB_ENOTFOUND;
}

static int next_index_seq(store_cursor *c, uint64_t *seq)
{
    for (;;) {
        while (c->iseq < c->nseqs) {
            uint64_t s = c->seqs[c->iseq++];
            if (s > c->r.seq_to)
                return next_tail_seq(c, seq);
            if (s >= c->r.seq_from) {
                *seq = s;
                return 0;
            }
        }
        if (c->tail)
            return next_tail_seq(c, seq);
        uint8_t kb[STORE_POSTING_KEY];
        MDB_val k, v;
        int rc;
        if (!c->started) {
            c->started = true;
            store_put_u64(kb, c->r.key);
            store_put_u64(kb + 8, c->r.seq_from);
            k.mv_size = sizeof kb;
            k.mv_data = kb;
            rc = store_mdb_cget(c->aux, &k, &v, MDB_SET_RANGE);
            /* the block holding seq_from may start before it: look one back */
            if (c->r.seq_from > 0) {
                MDB_val pk, pv;
                int prc = rc == 0 ? store_mdb_cget(c->aux, &pk, &pv, MDB_PREV)
                                  : store_mdb_cget(c->aux, &pk, &pv, MDB_LAST);
                if (prc == 0 && pk.mv_size == STORE_POSTING_KEY &&
                    store_get_u64(pk.mv_data) == c->r.key) {
                    k = pk, v = pv, rc = 0;
                } else if (prc == 0 || prc == PTB_ENOTFOUND) {
                    /* step back to where SET_RANGE was */
                    store_put_u64(kb, c->r.key);
                    store_put_u64(kb + 8, c->r.seq_from);
                    k.mv_size = sizeof kb;
                    k.mv_data = kb;
                    rc = store_mdb_cget(c->aux, &k, &v, MDB_SET_RANGE);
                } else {
                    rc = prc;
                }
            }
        } else {
            rc = store_mdb_cget(c->aux, &k, &v, MDB_NEXT);
        }
        if (rc == PTB_ENOTFOUND)
            return next_tail_seq(c, seq);
        if (rc)
            return rc;
        if (k.mv_size != STORE_POSTING_KEY)
            return PTB_ECORRUPT;
        if (store_get_u64(k.mv_data) != c->r.key)
            return next_tail_seq(c, seq);
        if ((rc = posting_load(c, store_get_u64((uint8_t *)k.mv_data + 8), &v)))
            return rc;
    }
}

static int next_time_seq(store_cursor *c, uint64_t *seq)
{
    for (;;) {
        if (c->bnext && c->bnext <= c->bend) {
            uint64_t s = c->bnext++;
            if (s > c->r.seq_to) {
                c->done = true;
                return PTB_ENOTFOUND;
            }
            if (s >= c->r.seq_from) {
                *seq = s;
                return 0;
            }
            continue;
        }
        MDB_val k, v;
        int rc = store_mdb_cget(c->aux, &k, &v, c->started ? MDB_NEXT : MDB_FIRST);
        c->started = true;
        if (rc)
            return rc;
        if (k.mv_size != 8 || v.mv_size != STORE_BATCH_VAL)
            return PTB_ECORRUPT;
        uint64_t first = store_get_u64(k.mv_data), last = store_get_u64(v.mv_data);
        int64_t tmin = (int64_t)store_get_u64((uint8_t *)v.mv_data + 8);
        int64_t tmax = (int64_t)store_get_u64((uint8_t *)v.mv_data + 16);
        if (last < first)
            return PTB_ECORRUPT;
        if (first > c->r.seq_to) {
            c->done = true;
            return PTB_ENOTFOUND;
        }
        if (last < c->r.seq_from || tmax < c->r.ts_from || (c->r.ts_to && tmin > c->r.ts_to))
            continue;
        c->bnext = first;
        c->bend = last;
    }
}

static int next_plain(store_cursor *c, MDB_val *k, MDB_val *v)
{
    int rc;
    if (!c->started) {
        c->started = true;
        uint8_t kb[8];
        store_put_u64(kb, c->r.seq_from);
        k->mv_size = 8;
        k->mv_data = kb;
        rc = store_mdb_cget(c->ev, k, v, MDB_SET_RANGE);
    } else {
        rc = store_mdb_cget(c->ev, k, v, MDB_NEXT);
    }
    if (rc)
        return rc;
    if (k->mv_size != 8)
        return PTB_ECORRUPT;
    if (store_get_u64(k->mv_data) > c->r.seq_to) {
        c->done = true;
        return PTB_ENOTFOUND;
    }
    return 0;
}

static int cursor_step(store_cursor *c, uint64_t *seq, MDB_val *v, bool want_value)
{
    if (c->done)
        return PTB_ENOTFOUND;
    if (c->failed)
        return c->failed;
    int rc;
    MDB_val k;
    if (!c->r.by_index && !c->r.by_time) {
        rc = next_plain(c, &k, v);
        if (rc == 0)
            *seq = store_get_u64(k.mv_data);
    } else {
        rc = c->r.by_index ? next_index_seq(c, seq) : next_time_seq(c, seq);
        if (rc == 0 && want_value) {
            uint8_t kb[8];
            store_put_u64(kb, *seq);
            k.mv_size = 8;
            k.mv_data = kb;
            rc = store_mdb_cget(c->ev, &k, v, MDB_SET_KEY);
            if (rc == PTB_ENOTFOUND)
                rc = PTB_ECORRUPT; /* an index or batch names a seq that is not there */
        }
    }
    if (rc == PTB_ENOTFOUND)
        c->done = true;
    else if (rc && rc != PTB_ECORRUPT)
        c->failed = rc;
    else if (rc == PTB_ECORRUPT && !c->r.by_index && !c->r.by_time)
        c->failed = rc; /* the events tree itself is broken: do not loop on it */
    return rc;
}

int store_cursor_next_seq(store_cursor *c, uint64_t *seq)
{
    MDB_val v;
    return cursor_step(c, seq, &v, false);
}

int store_cursor_next_raw(store_cursor *c, uint64_t *seq, const void **data, size_t *len)
{
    MDB_val v;
    int rc = cursor_step(c, seq, &v, true);
    if (rc)
        return rc;
    *data = v.mv_data;
    *len = v.mv_size;
    return 0;
}

struct store_evbuf {
    store_arena a;
};

int store_evbuf_new(store_evbuf **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return PTB_ENOMEM;
    store_arena_init(&(*out)->a);
    return 0;
}

void store_evbuf_reset(store_evbuf *b)
{
    if (b)
        store_arena_reset(&b->a);
}

void store_evbuf_free(store_evbuf *b)
{
    if (!b)
        return;
    store_arena_free(&b->a);
    free(b);
}

__attribute__((noinline)) int store_event_decode_buf(store_txn *t, uint64_t seq, const void *data,
                                                     size_t len, store_evbuf *b,
                                                     const ptb_event **ev)
{
    int rc;
    STORE_GUARDED(rc, store_codec_decode(data, len, seq, &b->a, resolve_cb, t, ev));
    return rc;
}

int store_event_decode(store_txn *t, uint64_t seq, const void *data, size_t len,
                       const ptb_event **ev)
{
    return decode_guarded(t, data, len, seq, &t->arena, ev);
}

/* Does a launch of a batch the cursor's index found carry the key? (Type and exec_id: every
 * launch does; a kernel name: the launches of that name.) */
static bool launch_matches(store_cursor *c, const ptb_event *k)
{
    if (!c->r.by_index || c->r.index != STORE_IX_KERNEL)
        return true;
    const char *s;
    size_t n;
    if (c->r.key > UINT32_MAX || store_string_get(c->t, (uint32_t)c->r.key, &s, &n))
        return false;
    return strlen(k->gpu_kernel->name) == n && memcmp(k->gpu_kernel->name, s, n) == 0;
}

int store_cursor_next(store_cursor *c, const ptb_event **ev)
{
    for (;;) {
        while (c->in_batch) {
            if (store_kernels_next(&c->kit, ev)) {
                c->in_batch = false;
                break;
            }
            if (launch_matches(c, *ev))
                return 0;
        }
        uint64_t seq;
        MDB_val v;
        int rc = cursor_step(c, &seq, &v, true);
        if (rc)
            return rc;
        rc = decode_guarded(c->t, v.mv_data, v.mv_size, seq, &c->arena, ev);
        if (rc || (*ev)->body_case != PTB__V1__EVENT__BODY_GPU_KERNEL_BATCH)
            return rc;
        if (store_kernels_begin(*ev, &c->kit))
            return PTB_ECORRUPT; /* the next call moves on */
        c->in_batch = true;
    }
}

int store_kernel_copy_buf(const ptb_event *ev, store_evbuf *b, const ptb_event **out)
{
    if (ev->body_case != PTB__V1__EVENT__BODY_GPU_KERNEL || !ev->gpu_kernel)
        return PTB_EINVAL;
    const char *name = ev->gpu_kernel->name ? ev->gpu_kernel->name : "";
    size_t n = strlen(name);
    ptb_event *e = b->a.pa.alloc(&b->a, sizeof *e);
    Ptb__V1__GpuKernel *k = b->a.pa.alloc(&b->a, sizeof *k);
    char *nm = b->a.pa.alloc(&b->a, n + 1);
    if (!e || !k || !nm)
        return PTB_ENOMEM;
    *e = *ev;
    *k = *ev->gpu_kernel;
    memcpy(nm, name, n + 1);
    k->name = nm;
    e->gpu_kernel = k;
    *out = e;
    return 0;
}

MDB_txn *store_txn_mdb(store_txn *t)
{
    return t->txn;
}

store *store_txn_store(store_txn *t)
{
    return t->s;
}

uint64_t store_txn_indexed_seq(store_txn *t)
{
    return t->indexed_seq;
}

int store_tail_foreach(store_txn *t, int (*fn)(void *arg, uint64_t seq, const store_postings *p),
                       void *arg)
{
    store_arena a;
    store_arena_init(&a);
    int rc = 0;
    for (uint64_t s = t->indexed_seq + 1; s <= t->last_seq && rc == 0; s++) {
        const void *data = NULL;
        size_t len = 0;
        rc = store_event_raw(t, s, &data, &len);
        if (rc)
            break;
        store_postings p;
        store_arena_reset(&a);
        int drc = postings_guarded(data, len, &a, &p);
        if (drc == 0)
            rc = fn(arg, s, &p);
    }
    store_arena_free(&a);
    return rc == PTB_ENOTFOUND ? PTB_ECORRUPT : rc;
}
