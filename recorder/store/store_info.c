/* Reading what is around the events: blobs, meta, index key counts, the store summary. */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <stdio.h>

/* ------------------------------------------------------------ blobs */

int store_blob_get(store_txn *t, const uint8_t sha256[32], void **data, size_t *len)
{
    MDB_val k = {32, (void *)sha256}, v;
    int rc = store_mdb_get(store_txn_mdb(t), store_txn_store(t)->dbi[STORE_DB_BLOBS], &k, &v);
    if (rc)
        return rc;
    return store_blob_decode(v.mv_data, v.mv_size, sha256, &store_txn_store(t)->err, data, len);
}

bool store_blob_exists(store_txn *t, const uint8_t sha256[32])
{
    MDB_val k = {32, (void *)sha256}, v;
    return store_mdb_get(store_txn_mdb(t), store_txn_store(t)->dbi[STORE_DB_BLOBS], &k, &v) == 0;
}

int store_blob_foreach(store_txn *t, int (*fn)(void *arg, const uint8_t sha256[32], size_t zlen),
                       void *arg)
{
    MDB_cursor *c;
    int rc =
        store_rc(mdb_cursor_open(store_txn_mdb(t), store_txn_store(t)->dbi[STORE_DB_BLOBS], &c));
    if (rc)
        return rc;
    MDB_val k, v;
    for (rc = store_mdb_cget(c, &k, &v, MDB_FIRST); rc == 0;
         rc = store_mdb_cget(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 32) {
            rc = PTB_ECORRUPT;
            break;
        }
        if ((rc = fn(arg, k.mv_data, v.mv_size)))
            break;
    }
    mdb_cursor_close(c);
    return rc == PTB_ENOTFOUND ? 0 : rc;
}

/* ------------------------------------------------------------ meta */

int store_meta_get(store_txn *t, const char *key, const char **val, size_t *len)
{
    MDB_val k = {strlen(key), (void *)key}, v;
    if (k.mv_size == 0 || k.mv_size > 511)
        return PTB_EINVAL;
    int rc = store_mdb_get(store_txn_mdb(t), store_txn_store(t)->dbi[STORE_DB_META], &k, &v);
    if (rc)
        return rc;
    *val = v.mv_data;
    *len = v.mv_size;
    return 0;
}

int store_meta_foreach(store_txn *t,
                       int (*fn)(void *arg, const char *key, size_t klen, const char *val,
                                 size_t vlen),
                       void *arg)
{
    MDB_cursor *c;
    int rc =
        store_rc(mdb_cursor_open(store_txn_mdb(t), store_txn_store(t)->dbi[STORE_DB_META], &c));
    if (rc)
        return rc;
    MDB_val k, v;
    for (rc = store_mdb_cget(c, &k, &v, MDB_FIRST); rc == 0;
         rc = store_mdb_cget(c, &k, &v, MDB_NEXT))
        if ((rc = fn(arg, k.mv_data, k.mv_size, v.mv_data, v.mv_size)))
            break;
    mdb_cursor_close(c);
    return rc == PTB_ENOTFOUND ? 0 : rc;
}

/* ------------------------------------------------------------ index keys */

static int posting_count(const MDB_val *v, uint64_t *n)
{
    const uint8_t *p = v->mv_data;
    if (store_varint_get(&p, p + v->mv_size, n) || *n == 0)
        return PTB_ECORRUPT;
    return 0;
}

typedef struct tail_count {
    store_index ix;
    uint64_t key, n;
} tail_count;

static int tail_count_cb(void *arg, uint64_t seq, const store_postings *p)
{
    (void)seq;
    tail_count *tc = arg;
    for (uint32_t i = 0; i < p->n; i++)
        tc->n += p->ix[i] == tc->ix && p->key[i] == tc->key;
    return 0;
}

int store_index_count(store_txn *t, store_index ix, uint64_t key, uint64_t *count)
{
    if (ix >= STORE_IX_COUNT)
        return PTB_EINVAL;
    *count = 0;
    MDB_cursor *c;
    int rc = store_rc(
        mdb_cursor_open(store_txn_mdb(t), store_txn_store(t)->dbi[STORE_DB_IX_FIRST + ix], &c));
    if (rc)
        return rc;
    uint8_t kb[STORE_POSTING_KEY];
    store_put_u64(kb, key);
    store_put_u64(kb + 8, 0);
    MDB_val k = {sizeof kb, kb}, v;
    for (rc = store_mdb_cget(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = store_mdb_cget(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != STORE_POSTING_KEY) {
            rc = PTB_ECORRUPT;
            break;
        }
        if (store_get_u64(k.mv_data) != key)
            break;
        uint64_t n;
        if ((rc = posting_count(&v, &n)))
            break;
        *count += n;
    }
    mdb_cursor_close(c);
    if (rc && rc != PTB_ENOTFOUND)
        return rc;
    tail_count tc = {ix, key, 0}; /* events not indexed yet */
    rc = store_tail_foreach(t, tail_count_cb, &tc);
    *count += tc.n;
    return rc;
}

static int store_index_foreach_stored(store_txn *t, store_index ix,
                                      int (*fn)(void *arg, uint64_t key, uint64_t count), void *arg,
                                      uint64_t (*tail)[2], size_t ntail, size_t *ti);

/* Keys of one index in the index tail, with counts, sorted by key. */
typedef struct tail_keys {
    store_index ix;
    uint64_t (*kv)[2];
    size_t n, cap;
    int err;
} tail_keys;

static int tail_keys_cb(void *arg, uint64_t seq, const store_postings *p)
{
    (void)seq;
    tail_keys *tk = arg;
    for (uint32_t i = 0; i < p->n; i++) {
        if (p->ix[i] != tk->ix)
            continue;
        size_t j = 0;
        while (j < tk->n && tk->kv[j][0] != p->key[i])
            j++;
        if (j == tk->n) {
            if (tk->n == tk->cap) {
                size_t nc = tk->cap ? tk->cap * 2 : 64;
                uint64_t(*nk)[2] = realloc(tk->kv, nc * sizeof *nk);
                if (!nk)
                    return PTB_ENOMEM;
                tk->kv = nk;
                tk->cap = nc;
            }
            tk->kv[tk->n][0] = p->key[i];
            tk->kv[tk->n++][1] = 0;
        }
        tk->kv[j][1]++;
    }
    return 0;
}

static int kv_cmp(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

int store_index_foreach_key(store_txn *t, store_index ix,
                            int (*fn)(void *arg, uint64_t key, uint64_t count), void *arg)
{
    if (ix >= STORE_IX_COUNT)
        return PTB_EINVAL;
    /* the index tail (events not indexed yet), merged below with the stored postings */
    tail_keys tk = {.ix = ix};
    int trc = store_tail_foreach(t, tail_keys_cb, &tk);
    if (trc) {
        free(tk.kv);
        return trc;
    }
    if (tk.n)
        qsort(tk.kv, tk.n, sizeof *tk.kv, kv_cmp);
    size_t ti = 0;
    int rc = store_index_foreach_stored(t, ix, fn, arg, tk.kv, tk.n, &ti);
    for (; rc == 0 && ti < tk.n; ti++)
        rc = fn(arg, tk.kv[ti][0], tk.kv[ti][1]);
    free(tk.kv);
    return rc;
}

/* The stored postings' keys, with the tail's keys below each merged in, in key order. */
static int store_index_foreach_stored(store_txn *t, store_index ix,
                                      int (*fn)(void *arg, uint64_t key, uint64_t count), void *arg,
                                      uint64_t (*tail)[2], size_t ntail, size_t *ti)
{
    if (ix >= STORE_IX_COUNT)
        return PTB_EINVAL;
    MDB_cursor *c;
    int rc = store_rc(
        mdb_cursor_open(store_txn_mdb(t), store_txn_store(t)->dbi[STORE_DB_IX_FIRST + ix], &c));
    if (rc)
        return rc;
    MDB_val k, v;
    uint64_t cur = 0, n = 0;
    bool have = false;
    for (rc = store_mdb_cget(c, &k, &v, MDB_FIRST); rc == 0;
         rc = store_mdb_cget(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != STORE_POSTING_KEY) {
            rc = PTB_ECORRUPT;
            break;
        }
        uint64_t key = store_get_u64(k.mv_data), cnt;
        if ((rc = posting_count(&v, &cnt)))
            break;
        if (have && key != cur) {
            for (; *ti < ntail && tail[*ti][0] < cur && !rc; (*ti)++)
                rc = fn(arg, tail[*ti][0], tail[*ti][1]);
            if (!rc && *ti < ntail && tail[*ti][0] == cur)
                n += tail[(*ti)++][1];
            if (rc || (rc = fn(arg, cur, n)))
                break;
            n = 0;
        }
        cur = key;
        have = true;
        n += cnt;
    }
    if ((rc == PTB_ENOTFOUND || rc == 0) && have) {
        rc = 0;
        for (; *ti < ntail && tail[*ti][0] < cur && !rc; (*ti)++)
            rc = fn(arg, tail[*ti][0], tail[*ti][1]);
        if (!rc && *ti < ntail && tail[*ti][0] == cur)
            n += tail[(*ti)++][1];
        if (!rc)
            rc = fn(arg, cur, n);
    }
    mdb_cursor_close(c);
    return rc == PTB_ENOTFOUND ? 0 : rc;
}

/* ------------------------------------------------------------ summary */

static int meta_u64(store_txn *t, const char *key, uint64_t *out)
{
    const char *v;
    size_t n;
    char buf[32];
    int rc = store_meta_get(t, key, &v, &n);
    if (rc)
        return rc;
    if (n == 0 || n >= sizeof buf)
        return PTB_ECORRUPT;
    memcpy(buf, v, n);
    buf[n] = 0;
    char *end;
    *out = strtoull(buf, &end, 10);
    return *end ? PTB_ECORRUPT : 0;
}

int store_summary_get(store_txn *t, store_summary *out)
{
    memset(out, 0, sizeof *out);
    store *s = store_txn_store(t);
    MDB_txn *txn = store_txn_mdb(t);
    uint64_t sv = 0;
    int rc;
    if ((rc = meta_u64(t, "ptb.last_seq", &out->events)) ||
        (rc = meta_u64(t, "ptb.batches", &out->batches)) ||
        (rc = meta_u64(t, "ptb.strings", &out->strings)) ||
        (rc = meta_u64(t, "ptb.schema_version", &sv)))
        return rc == PTB_ENOTFOUND ? PTB_ECORRUPT : rc;
    out->schema_version = (uint32_t)sv;
    const char *hv;
    size_t hn;
    if (store_meta_get(t, "ptb.chain_head", &hv, &hn) == 0 && hn == 64) {
        for (int i = 0; i < 32; i++) {
            unsigned x;
            char pair[3] = {hv[2 * i], hv[2 * i + 1], 0};
            if (sscanf(pair, "%2x", &x) != 1)
                return PTB_ECORRUPT;
            out->chain_head[i] = (uint8_t)x;
        }
    }
    MDB_cursor *c;
    MDB_val k, v;
    if ((rc = store_rc(mdb_cursor_open(txn, s->dbi[STORE_DB_BATCHES], &c))))
        return rc;
    bool first = true;
    for (rc = store_mdb_cget(c, &k, &v, MDB_FIRST); rc == 0;
         rc = store_mdb_cget(c, &k, &v, MDB_NEXT)) {
        if (v.mv_size != STORE_BATCH_VAL) {
            rc = PTB_ECORRUPT;
            break;
        }
        int64_t lo = (int64_t)store_get_u64((uint8_t *)v.mv_data + 8);
        int64_t hi = (int64_t)store_get_u64((uint8_t *)v.mv_data + 16);
        if (first || lo < out->ts_min)
            out->ts_min = lo;
        if (first || hi > out->ts_max)
            out->ts_max = hi;
        first = false;
    }
    mdb_cursor_close(c);
    if (rc != PTB_ENOTFOUND && rc)
        return rc;
    if ((rc = store_rc(mdb_cursor_open(txn, s->dbi[STORE_DB_BLOBS], &c))))
        return rc;
    for (rc = store_mdb_cget(c, &k, &v, MDB_FIRST); rc == 0;
         rc = store_mdb_cget(c, &k, &v, MDB_NEXT)) {
        out->blobs++;
        out->blob_zbytes += v.mv_size;
    }
    mdb_cursor_close(c);
    if (rc != PTB_ENOTFOUND && rc)
        return rc;
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", s->dir);
    if (stat(path, &st) == 0)
        out->file_bytes = (uint64_t)st.st_size;
    return 0;
}
