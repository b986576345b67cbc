/* The writer thread: turns queued records into committed LMDB batches. See store_write.c for
 * the whole design and schemas/store.md for what each put writes. */
#include "store_write_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/* Postings collected during one batch: one list of seqs per (index, key). */
typedef struct post_list {
    uint64_t ix, key;
    uint64_t *seqs;
    size_t n, cap;
    size_t kept; /* seqs of committed events (the rest belong to the open transaction) */
} post_list;

typedef struct batch {
    MDB_txn *txn;
    EVP_MD_CTX *md;
    uint64_t first_seq, last_seq, events;
    int64_t ts_min, ts_max;
    int64_t t_start; /* monotonic ns of the first record */
    uint64_t last_ticket;
    uint64_t scan; /* ring position after the last processed record */
    /* postings: open addressing on (ix, key) */
    post_list *lists;
    size_t nlists, lists_cap;
    uint32_t *slots; /* index into lists + 1, 0 = empty */
    size_t nslots;
    /* blobs of this batch, for the chain entry and to free after commit */
    uint8_t (*blob_sha)[32];
    size_t nblobs, blobs_cap;
    uint64_t blob_bytes;
    /* postings are written to the ix_* databases every index_events events or index_ms (and
     * at close), not at every commit: far fewer B-tree pages rewritten. Events committed but not
     * yet indexed are the store's "index tail" (ptb.indexed_seq), which readers scan. */
    uint64_t idx_kept; /* committed events whose postings are pending */
    int64_t idx_t0;    /* monotonic ns when the first of them was committed */
    uint8_t *scratch;  /* posting value encoding */
    size_t scratch_cap;
    /* bytes on their way into the digest: many small updates cost more than the hashing */
    uint8_t hbuf[32768];
    size_t hlen;
    bool blob_failed; /* the scan reached a blob whose compression failed */
} batch;

static void batch_hash(batch *b, const void *p, size_t n)
{
    if (b->hlen + n > sizeof b->hbuf) {
        EVP_DigestUpdate(b->md, b->hbuf, b->hlen);
        b->hlen = 0;
        if (n > sizeof b->hbuf) {
            EVP_DigestUpdate(b->md, p, n);
            return;
        }
    }
    memcpy(b->hbuf + b->hlen, p, n);
    b->hlen += n;
}

static int batch_post(batch *b, uint64_t ix, uint64_t key, uint64_t seq)
{
    if ((b->nlists + 1) * 2 > b->nslots) {
        size_t ns = b->nslots ? b->nslots * 2 : 1024;
        uint32_t *nsl = calloc(ns, sizeof *nsl);
        if (!nsl)
            return PTB_ENOMEM;
        for (size_t i = 0; i < b->nlists; i++) {
            size_t j = (b->lists[i].key * 0x9e3779b97f4a7c15ULL + b->lists[i].ix) & (ns - 1);
            while (nsl[j])
                j = (j + 1) & (ns - 1);
            nsl[j] = (uint32_t)i + 1;
        }
        free(b->slots);
        b->slots = nsl;
        b->nslots = ns;
    }
    size_t j = (key * 0x9e3779b97f4a7c15ULL + ix) & (b->nslots - 1);
    post_list *l = NULL;
    while (b->slots[j]) {
        post_list *c = &b->lists[b->slots[j] - 1];
        if (c->ix == ix && c->key == key) {
            l = c;
            break;
        }
        j = (j + 1) & (b->nslots - 1);
    }
    if (!l) {
        if (b->nlists == b->lists_cap) {
            size_t nc = b->lists_cap ? b->lists_cap * 2 : 256;
            post_list *nl = realloc(b->lists, nc * sizeof *nl);
            if (!nl)
                return PTB_ENOMEM;
            memset(nl + b->lists_cap, 0, (nc - b->lists_cap) * sizeof *nl);
            b->lists = nl;
            b->lists_cap = nc;
        }
        l = &b->lists[b->nlists];
        l->ix = ix;
        l->key = key;
        l->n = 0;
        b->slots[j] = (uint32_t)++b->nlists;
    }
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        uint64_t *ns = realloc(l->seqs, nc * sizeof *ns);
        if (!ns)
            return PTB_ENOMEM;
        l->seqs = ns;
        l->cap = nc;
    }
    l->seqs[l->n++] = seq;
    return 0;
}

static void batch_reset(batch *b, uint64_t scan)
{
    if (b->txn)
        mdb_txn_abort(b->txn);
    b->txn = NULL;
    b->first_seq = b->last_seq = b->events = 0;
    b->ts_min = b->ts_max = 0;
    b->t_start = 0;
    b->last_ticket = 0;
    b->scan = scan;
    b->nblobs = 0;
    b->blob_bytes = 0;
}

/* Postings after the open transaction aborted: drop what it added. */
static void postings_rollback(batch *b)
{
    for (size_t i = 0; i < b->nlists; i++)
        b->lists[i].n = b->lists[i].kept;
}

/* Postings after a commit that did not write them: they are pending now. */
static void postings_keep(batch *b)
{
    for (size_t i = 0; i < b->nlists; i++)
        b->lists[i].kept = b->lists[i].n;
    if (!b->idx_kept)
        b->idx_t0 = store_now_mono_ns();
    b->idx_kept += b->events;
}

/* Postings after a commit that wrote them all. */
static void postings_clear(batch *b)
{
    for (size_t i = 0; i < b->nlists; i++)
        b->lists[i].n = b->lists[i].kept = 0;
    b->nlists = 0;
    if (b->slots)
        memset(b->slots, 0, b->nslots * sizeof *b->slots);
    b->idx_kept = 0;
}

static void batch_free(batch *b)
{
    batch_reset(b, 0);
    for (size_t i = 0; i < b->lists_cap; i++)
        free(b->lists[i].seqs);
    free(b->lists);
    free(b->slots);
    free(b->blob_sha);
    free(b->scratch);
    EVP_MD_CTX_free(b->md);
}

static int batch_begin(store *s, batch *b)
{
    int rc;
    pthread_rwlock_wrlock(&s->map_lock); /* keep out map resizes; released at once */
    pthread_rwlock_unlock(&s->map_lock);
    rc = mdb_txn_begin(s->env, NULL, 0, &b->txn);
    if (rc)
        return rc;
    b->t_start = store_now_mono_ns();
    if (!EVP_DigestInit_ex(b->md, EVP_sha256(), NULL))
        return PTB_ENOMEM;
    static const char tag[] = "ptb-batch-v1";
    b->hlen = 0;
    batch_hash(b, tag, sizeof tag - 1);
    return 0;
}

/* ------------------------------------------------------------ one record */

static int write_event(store *s, batch *b, rec_event *e)
{
    uint8_t k[8];
    store_put_u64(k, e->seq);
    MDB_val key = {8, k}, val = {e->len, rec_event_data(e)};
    int rc = mdb_put(b->txn, s->dbi[STORE_DB_EVENTS], &key, &val, MDB_APPEND);
    if (rc)
        return rc;
    uint8_t hdr[12];
    memcpy(hdr, k, 8);
    store_put_u32(hdr + 8, e->len);
    batch_hash(b, hdr, sizeof hdr);
    batch_hash(b, rec_event_data(e), e->len);
    if (!b->first_seq)
        b->first_seq = e->seq;
    b->last_seq = e->seq;
    if (!b->events || e->ts < b->ts_min)
        b->ts_min = e->ts;
    if (!b->events || e->ts_hi > b->ts_max)
        b->ts_max = e->ts_hi;
    b->events++;
    for (uint32_t i = 0; i < e->npost; i++) {
        rc = batch_post(b, e->post[i].ix, e->post[i].key, e->seq);
        if (rc)
            return rc;
    }
    return 0;
}

static int write_blob(store *s, batch *b, rec_blob *r)
{
    /* the value: the header, then the record's bytes, written in place */
    MDB_val key = {32, r->sha}, val = {STORE_BLOB_HDR + r->zlen, NULL};
    int rc = mdb_put(b->txn, s->dbi[STORE_DB_BLOBS], &key, &val, MDB_NOOVERWRITE | MDB_RESERVE);
    if (rc == MDB_KEYEXIST)
        return 0;
    if (rc)
        return rc;
    uint8_t *v = val.mv_data;
    v[0] = (uint8_t)r->codec;
    store_put_u64(v + 1, r->raw_len);
    if (r->zlen)
        memcpy(v + STORE_BLOB_HDR, r->z, r->zlen);
    if (b->nblobs == b->blobs_cap) {
        size_t nc = b->blobs_cap ? b->blobs_cap * 2 : 64;
        uint8_t(*nb)[32] = realloc(b->blob_sha, nc * 32);
        if (!nb)
            return PTB_ENOMEM;
        b->blob_sha = nb;
        b->blobs_cap = nc;
    }
    memcpy(b->blob_sha[b->nblobs++], r->sha, 32);
    b->blob_bytes += STORE_BLOB_HDR + r->zlen;
    return 0;
}

static int write_meta(store *s, batch *b, rec_meta *m)
{
    MDB_val key = {m->klen, m->data}, val = {m->vlen, m->data + m->klen};
    return mdb_put(b->txn, s->dbi[STORE_DB_META], &key, &val, 0);
}

/* ------------------------------------------------------------ commit */

static int post_cmp(const void *a, const void *b)
{
    const post_list *x = a, *y = b;
    if (x->ix != y->ix)
        return x->ix < y->ix ? -1 : 1;
    return x->key < y->key ? -1 : x->key > y->key;
}

static int put_meta_str(store *s, MDB_txn *txn, const char *key, const char *val)
{
    MDB_val k = {strlen(key), (void *)key}, v = {strlen(val), (void *)val};
    return mdb_put(txn, s->dbi[STORE_DB_META], &k, &v, 0);
}

static int put_meta_u64(store *s, MDB_txn *txn, const char *key, uint64_t val)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)val);
    return put_meta_str(s, txn, key, buf);
}

/* Write the strings, batch span and chain link, and with flush_index every pending posting;
 * commit. */
static int batch_commit(store *s, batch *b, bool flush_index)
{
    store_queue *q = s->q;
    MDB_txn *txn = b->txn;
    int rc = 0;

    /* postings, in key order per index (the sort moves lists: postings_clear follows) */
    if (flush_index && b->nlists)
        qsort(b->lists, b->nlists, sizeof *b->lists, post_cmp);
    for (size_t i = 0; flush_index && i < b->nlists && !rc; i++) {
        post_list *l = &b->lists[i];
        if (l->n == 0)
            continue;
        size_t need = 10 * (l->n + 1);
        if (need > b->scratch_cap) {
            uint8_t *ns = realloc(b->scratch, need);
            if (!ns)
                return PTB_ENOMEM;
            b->scratch = ns;
            b->scratch_cap = need;
        }
        size_t n = store_varint_put(b->scratch, l->n);
        for (size_t k = 1; k < l->n; k++)
            n += store_varint_put(b->scratch + n, l->seqs[k] - l->seqs[k - 1]);
        uint8_t kb[STORE_POSTING_KEY];
        store_put_u64(kb, l->key);
        store_put_u64(kb + 8, l->seqs[0]);
        MDB_val key = {sizeof kb, kb}, val = {n, b->scratch};
        rc = mdb_put(txn, s->dbi[STORE_DB_IX_FIRST + l->ix], &key, &val, 0);
    }
    if (rc)
        return rc;

    /* strings interned since the last commit */
    intern_table *t = &q->strings;
    pthread_mutex_lock(&t->mu);
    uint32_t sid_first = t->stored_sid, sid_end = t->next_sid;
    for (uint32_t sid = sid_first; sid < sid_end && !rc; sid++) {
        uint8_t kb[4], hb[8 + 4];
        store_put_u32(kb, sid);
        MDB_val key = {4, kb}, val = {t->len_by_sid[sid], (void *)t->by_sid[sid]};
        rc = mdb_put(txn, s->dbi[STORE_DB_STRINGS], &key, &val, MDB_APPEND);
        if (rc)
            break;
        store_put_u64(hb, store_str_hash(t->by_sid[sid], t->len_by_sid[sid]));
        MDB_val rkey = {8, hb}, rval = {4, kb};
        rc = mdb_put(txn, s->dbi[STORE_DB_STRINGS_R], &rkey, &rval, 0);
        store_put_u32(hb + 8, t->len_by_sid[sid]);
        batch_hash(b, kb, 4);
        batch_hash(b, hb + 8, 4);
        batch_hash(b, t->by_sid[sid], t->len_by_sid[sid]);
    }
    pthread_mutex_unlock(&t->mu);
    if (rc)
        return rc;
    for (size_t i = 0; i < b->nblobs; i++)
        batch_hash(b, b->blob_sha[i], 32);

    /* the batch's time span */
    if (b->events) {
        uint8_t kb[8], vb[STORE_BATCH_VAL];
        store_put_u64(kb, b->first_seq);
        store_put_u64(vb, b->last_seq);
        store_put_u64(vb + 8, (uint64_t)b->ts_min);
        store_put_u64(vb + 16, (uint64_t)b->ts_max);
        MDB_val key = {8, kb}, val = {sizeof vb, vb};
        rc = mdb_put(txn, s->dbi[STORE_DB_BATCHES], &key, &val, MDB_APPEND);
        if (rc)
            return rc;
    }

    /* chain link */
    uint8_t digest[32], head[32];
    unsigned int dl = 32;
    EVP_DigestUpdate(b->md, b->hbuf, b->hlen);
    b->hlen = 0;
    EVP_DigestFinal_ex(b->md, digest, &dl);
    uint64_t batch_no = q->stats.batches + 1;
    uint8_t prev[32] = {0};
    memcpy(prev, q->chain_head, 32);
    EVP_MD_CTX *hc = EVP_MD_CTX_new();
    if (!hc)
        return PTB_ENOMEM;
    EVP_DigestInit_ex(hc, EVP_sha256(), NULL);
    EVP_DigestUpdate(hc, prev, 32);
    EVP_DigestUpdate(hc, digest, 32);
    EVP_DigestFinal_ex(hc, head, &dl);
    EVP_MD_CTX_free(hc);
    size_t clen = STORE_CHAIN_FIXED + 32 * b->nblobs;
    MDB_val ckey, cval = {clen, NULL};
    uint8_t kb[8];
    store_put_u64(kb, batch_no);
    ckey.mv_size = 8;
    ckey.mv_data = kb;
    rc = mdb_put(txn, s->dbi[STORE_DB_CHAIN], &ckey, &cval, MDB_APPEND | MDB_RESERVE);
    if (rc)
        return rc;
    uint8_t *c = cval.mv_data;
    store_put_u64(c, b->first_seq);
    store_put_u64(c + 8, b->last_seq);
    store_put_u32(c + 16, sid_first);
    store_put_u32(c + 20, sid_end);
    store_put_u32(c + 24, (uint32_t)b->nblobs);
    store_put_u32(c + 28, 0);
    memcpy(c + 32, digest, 32);
    memcpy(c + 64, head, 32);
    for (size_t i = 0; i < b->nblobs; i++)
        memcpy(c + STORE_CHAIN_FIXED + 32 * i, b->blob_sha[i], 32);

    char hex[65];
    store_hex(head, 32, hex);
    uint64_t last_seq = b->last_seq ? b->last_seq : q->committed_seq;
    if ((rc = put_meta_str(s, txn, "ptb.chain_head", hex)) ||
        (rc = put_meta_u64(s, txn, "ptb.batches", batch_no)) ||
        (rc = put_meta_u64(s, txn, "ptb.last_seq", last_seq)) ||
        (rc = put_meta_u64(s, txn, "ptb.strings", sid_end - 1)) ||
        (flush_index && (rc = put_meta_u64(s, txn, "ptb.indexed_seq", last_seq))))
        return rc;

    rc = mdb_txn_commit(txn);
    b->txn = NULL;
    if (rc)
        return rc;

    memcpy(q->chain_head, head, 32);
    q->committed_seq = last_seq;
    pthread_mutex_lock(&t->mu);
    t->stored_sid = sid_end;
    pthread_mutex_unlock(&t->mu);
    return 0;
}

uint64_t store_ring_free_blobs(store_queue *q, uint64_t from, uint64_t to)
{
    uint64_t freed = 0;
    while (from < to) {
        rec_hdr *h = (rec_hdr *)(q->buf + from % q->cap);
        uint64_t room = q->cap - from % q->cap;
        if (room < sizeof(rec_hdr) || h->kind == REC_PAD) {
            from += room;
            continue;
        }
        if (h->kind == REC_BLOB && ((rec_blob *)h)->z) {
            freed += ((rec_blob *)h)->zlen;
            free(((rec_blob *)h)->z);
            ((rec_blob *)h)->z = NULL;
        }
        from += h->size;
    }
    return freed;
}

/* Free the ring space of committed records and wake whoever waits. */
static void batch_release(store_queue *q, batch *b)
{
    uint64_t freed_blob = store_ring_free_blobs(q, q->tail, b->scan);
    pthread_mutex_lock(&q->mu);
    q->tail = b->scan;
    q->inflight_bytes -= freed_blob;
    if (b->last_ticket > q->committed_ticket)
        q->committed_ticket = b->last_ticket;
    q->stats.events += b->events;
    q->stats.batches++;
    q->stats.blobs_new += b->nblobs;
    q->stats.blob_bytes += b->blob_bytes;
    pthread_cond_broadcast(&q->cond_space);
    pthread_cond_broadcast(&q->cond_committed);
    pthread_mutex_unlock(&q->mu);
}

/* ------------------------------------------------------------ failures */

static int grow_map(store *s)
{
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    size_t cur = info.me_mapsize;
    if (cur >= s->opt.map_size_max)
        return MDB_MAP_FULL;
    size_t next = cur < (8ULL << 30) ? cur * 2 : cur + (8ULL << 30);
    if (next > s->opt.map_size_max)
        next = s->opt.map_size_max;
    pthread_rwlock_wrlock(&s->map_lock);
    int rc = mdb_env_set_mapsize(s->env, next);
    pthread_rwlock_unlock(&s->map_lock);
    if (rc == 0) {
        pthread_mutex_lock(&s->q->mu);
        s->q->stats.map_grows++;
        pthread_mutex_unlock(&s->q->mu);
    }
    return rc;
}

/* LMDB reports a short write (a disk that filled mid-commit) as EIO: count that as a full disk
 * when the file system has (almost) no space left. */
static bool is_disk_full(const store *s, int rc)
{
    if (rc < 0 && rc > -4096)
        rc = -rc;
    if (rc == ENOSPC || rc == EDQUOT || rc == EFBIG)
        return true;
    struct statvfs vfs;
    return rc == EIO && statvfs(s->dir, &vfs) == 0 &&
           (uint64_t)vfs.f_bavail * vfs.f_frsize < (1u << 20);
}

/* Stop the writer with code and message; wake every producer. */
static void writer_fail(store_queue *q, int code, const char *msg)
{
    pthread_mutex_lock(&q->mu);
    if (!q->state) {
        q->state = code;
        snprintf(q->state_msg, sizeof q->state_msg, "%s", msg);
    }
    pthread_cond_broadcast(&q->cond_space);
    pthread_cond_broadcast(&q->cond_committed);
    pthread_mutex_unlock(&q->mu);
}

/* After a disk-full commit failure: free the reserve, and commit one store.error event that
 * says how many events were lost (the batch that failed and everything queued after it). The
 * store stays consistent whatever happens here: LMDB commits are all or nothing. */
static void writer_disk_full(store *s, batch *b, int rc)
{
    store_queue *q = s->q;
    char reserve[4096];
    snprintf(reserve, sizeof reserve, "%s/reserve", s->dir);
    unlink(reserve);
    uint64_t first_lost = q->committed_seq + 1;
    char msg[256];
    /* stop producers first, under the lock that gives seqs, so the count of lost events is exact
     * and no seq is given twice */
    pthread_mutex_lock(&q->mu);
    uint64_t lost = q->next_seq - q->committed_seq;
    q->next_seq = first_lost; /* the error event takes the first lost seq: seqs stay dense */
    snprintf(msg, sizeof msg, "disk full (%s) writing %s: %llu events not stored", strerror(rc),
             s->dir, (unsigned long long)lost);
    q->state = PTB_ENOSPC;
    snprintf(q->state_msg, sizeof q->state_msg, "%s", msg);
    pthread_cond_broadcast(&q->cond_space);
    pthread_cond_broadcast(&q->cond_committed);
    pthread_mutex_unlock(&q->mu);
    batch_reset(b, b->scan);
    postings_rollback(b);
    Ptb__V1__StoreError se = PTB__V1__STORE_ERROR__INIT;
    se.code = PTB_ENOSPC;
    se.message = msg;
    se.events_lost = lost;
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.source = PTB__V1__SOURCE__SOURCE_STORE;
    ev.ts_ns = store_now_realtime_ns();
    ev.mono_ns = store_now_mono_ns();
    ev.body_case = PTB__V1__EVENT__BODY_STORE_ERROR;
    ev.store_error = &se;
    uint8_t buf[1024];
    size_t len;
    store_postings post;
    if (store_codec_encode(&ev, NULL, NULL, buf, sizeof buf, &len, &post) == 0 &&
        batch_begin(s, b) == 0) {
        uint8_t k[8];
        store_put_u64(k, first_lost);
        MDB_val key = {8, k}, val = {len, buf};
        int prc = mdb_put(b->txn, s->dbi[STORE_DB_EVENTS], &key, &val, MDB_APPEND);
        if (prc == 0) {
            uint8_t hdr[12];
            memcpy(hdr, k, 8);
            store_put_u32(hdr + 8, (uint32_t)len);
            batch_hash(b, hdr, sizeof hdr);
            batch_hash(b, buf, len);
            b->first_seq = b->last_seq = first_lost;
            b->ts_min = b->ts_max = ev.ts_ns;
            b->events = 1;
            for (uint32_t i = 0; i < post.n && prc == 0; i++)
                prc = batch_post(b, post.ix[i], post.key[i], first_lost);
        }
        /* the pending postings stay unwritten (the disk is full): the events keep their place in
         * the index tail, which readers scan and the next writer indexes */
        if (prc == 0 && batch_commit(s, b, false) == 0) {
            pthread_mutex_lock(&q->mu);
            q->stats.events++;
            q->stats.batches++;
            pthread_mutex_unlock(&q->mu);
        }
    }
    batch_reset(b, b->scan);
    writer_fail(q, PTB_ENOSPC, msg);
}

/* ------------------------------------------------------------ the loop */

/* A writer that crashed left events committed after ptb.indexed_seq without postings: take
 * them up again, so the next index write covers them. */
static int index_tail_load(store *s, batch *b)
{
    store_queue *q = s->q;
    if (q->indexed_seq >= q->committed_seq)
        return 0;
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return rc > 0 ? -rc : rc;
    MDB_cursor *c;
    if ((rc = mdb_cursor_open(txn, s->dbi[STORE_DB_EVENTS], &c))) {
        mdb_txn_abort(txn);
        return rc > 0 ? -rc : rc;
    }
    store_arena a;
    store_arena_init(&a);
    uint8_t kb[8];
    store_put_u64(kb, q->indexed_seq + 1);
    MDB_val k = {8, kb}, v;
    uint64_t n = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8) {
            rc = PTB_ECORRUPT;
            break;
        }
        uint64_t seq = store_get_u64(k.mv_data);
        store_postings p;
        store_arena_reset(&a);
        if ((rc = store_codec_postings_stored(v.mv_data, v.mv_size, &a, &p)))
            break;
        for (uint32_t i = 0; i < p.n && !rc; i++)
            rc = batch_post(b, p.ix[i], p.key[i], seq);
        if (rc)
            break;
        n++;
    }
    store_arena_free(&a);
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    if (rc != MDB_NOTFOUND && rc != 0)
        return rc > 0 ? -rc : rc;
    b->events = n;
    postings_keep(b);
    b->events = 0;
    return 0;
}

/* The state of the blob record at ring position pos, BLOB_READY for any other record. */
static uint32_t ring_blob_state(store_queue *q, uint64_t pos)
{
    uint64_t off = pos % q->cap;
    rec_hdr *h = (rec_hdr *)(q->buf + off);
    if (q->cap - off < sizeof(rec_hdr) || h->kind != REC_BLOB)
        return BLOB_READY;
    return __atomic_load_n(&((rec_blob *)h)->state, __ATOMIC_ACQUIRE);
}

/* Process records from b->scan until the batch is full, the snapshot ends, or a blob is not
 * compressed yet (the scan waits there: what follows it is committed after it) or failed
 * (b->blob_failed). */
static int writer_process(store *s, batch *b, uint64_t head)
{
    store_queue *q = s->q;
    int rc = 0;
    while (b->scan < head && b->events < s->opt.batch_events) {
        uint64_t off = b->scan % q->cap, room = q->cap - off;
        rec_hdr *h = (rec_hdr *)(q->buf + off);
        if (room < sizeof(rec_hdr) || h->kind == REC_PAD) {
            b->scan += room;
            continue;
        }
        uint32_t bst = ring_blob_state(q, b->scan);
        if (bst == BLOB_FAILED)
            b->blob_failed = true;
        if (bst != BLOB_READY)
            return 0;
        if (!b->txn && (rc = batch_begin(s, b)))
            return rc;
        switch (h->kind) {
        case REC_EVENT: rc = write_event(s, b, (rec_event *)h); break;
        case REC_BLOB: rc = write_blob(s, b, (rec_blob *)h); break;
        case REC_META: rc = write_meta(s, b, (rec_meta *)h); break;
        default: rc = PTB_ECORRUPT; break; /* our own ring: cannot happen */
        }
        if (rc)
            return rc;
        b->last_ticket = h->ticket;
        b->scan += h->size;
    }
    return 0;
}

static void *writer_main(void *arg)
{
    store *s = arg;
    store_queue *q = s->q;
    pthread_setname_np(pthread_self(), "ptb-writer");
    batch b = {0};
    b.md = EVP_MD_CTX_new();
    if (!b.md) {
        writer_fail(q, PTB_ENOMEM, "out of memory");
        return NULL;
    }
    b.scan = q->tail;
    int trc = index_tail_load(s, &b);
    if (trc) {
        writer_fail(q, trc, "cannot read the events not yet indexed");
        batch_free(&b);
        return NULL;
    }
    const int64_t batch_ns = (int64_t)s->opt.batch_ms * 1000000;
    for (;;) {
        pthread_mutex_lock(&q->mu);
        for (;;) {
            /* a blob still being compressed holds up the scan (and a stop) */
            bool blocked = b.scan < q->head && ring_blob_state(q, b.scan) == BLOB_PENDING;
            bool pending = b.scan < q->head && !blocked;
            bool open = b.txn != NULL;
            bool due = open && (q->flush_ticket >= b.last_ticket ||
                                store_now_mono_ns() - b.t_start >= batch_ns);
            if (pending || due || (q->stop && !blocked))
                break;
            /* sleep until the batch is due, or batch_ms when no batch is open: producers
             * wake us only past wake_bytes (ring_publish) */
            q->writer_idle = true;
            int64_t left = open ? b.t_start + batch_ns - store_now_mono_ns() : batch_ns;
            if (left < 0)
                left = 0;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += left / 1000000000;
            ts.tv_nsec += left % 1000000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&q->cond_writer, &q->mu, &ts);
            q->writer_idle = false;
        }
        uint64_t head = q->head;
        bool stopping = q->stop;
        uint64_t flush_ticket = q->flush_ticket;
        uint64_t used = q->head - q->tail;
        pthread_mutex_unlock(&q->mu);

        int rc = writer_process(s, &b, head);
        bool commit =
            b.txn && (rc != 0 || b.blob_failed || b.events >= s->opt.batch_events ||
                      used * 2 >= q->cap || flush_ticket >= b.last_ticket ||
                      store_now_mono_ns() - b.t_start >= batch_ns || (stopping && b.scan >= head));
        bool drained = stopping && b.scan >= head;
        bool flush_index =
            drained || b.idx_kept + b.events >= s->opt.index_events ||
            (b.idx_kept && store_now_mono_ns() - b.idx_t0 >= (int64_t)s->opt.index_ms * 1000000);
        if (rc == 0 && commit)
            rc = batch_commit(s, &b, flush_index);
        if (rc)
            postings_rollback(&b);
        if (rc == MDB_MAP_FULL) {
            uint64_t tail = q->tail;
            batch_reset(&b, tail);
            rc = grow_map(s);
            if (rc == 0)
                continue; /* process the same records again in a larger map */
            writer_fail(q, PTB_ENOSPC, "store map size limit reached (map_size_max)");
            break;
        }
        if (is_disk_full(s, rc)) {
            writer_disk_full(s, &b, rc);
            break;
        }
        if (rc) {
            char msg[256];
            snprintf(msg, sizeof msg, "writing %s: %s", s->dir, ptb_strerror(rc));
            batch_reset(&b, q->tail);
            writer_fail(q, rc > 0 ? -rc : rc, msg); /* LMDB gives errno values positive */
            break;
        }
        if (commit) {
            if (flush_index)
                postings_clear(&b);
            else
                postings_keep(&b);
            batch_release(q, &b);
            batch_reset(&b, b.scan);
        }
        if (b.blob_failed) { /* the compressor set the store's error; what came before is in */
            writer_fail(q, PTB_ENOMEM, "a blob could not be compressed");
            break;
        }
        if (stopping && !b.txn && b.scan >= head) {
            pthread_mutex_lock(&q->mu);
            bool more = b.scan < q->head;
            pthread_mutex_unlock(&q->mu);
            if (more)
                continue;
            /* closing: write the postings still pending */
            if (b.idx_kept && (rc = batch_begin(s, &b)) == 0 &&
                (rc = batch_commit(s, &b, true)) == 0)
                postings_clear(&b);
            if (rc) {
                batch_reset(&b, b.scan);
                writer_fail(q, rc > 0 ? -rc : rc, "writing the last index postings failed");
            }
            break;
        }
    }
    batch_free(&b);
    return NULL;
}

/* ------------------------------------------------------------ start / stop */

int store_writer_start(store *s)
{
    store_queue *q = s->q;
    int rc = store_compress_start(s);
    if (rc)
        return rc;
    rc = pthread_create(&q->thread, NULL, writer_main, s);
    if (rc) {
        store_compress_stop(s);
        return -rc;
    }
    q->thread_started = true;
    return 0;
}

int store_writer_stop(store *s)
{
    store_queue *q = s->q;
    if (!q || !q->thread_started)
        return 0;
    pthread_mutex_lock(&q->mu);
    q->stop = true;
    pthread_cond_signal(&q->cond_writer);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->thread, NULL);
    q->thread_started = false;
    /* then the compressors (the writer waited for every blob it could write), and the bytes of
     * blob records that will never be written */
    store_compress_stop(s);
    pthread_mutex_lock(&q->mu);
    store_ring_free_blobs(q, q->tail, q->head);
    pthread_mutex_unlock(&q->mu);
    return q->state;
}
