/* The writer's string intern table and blob claim set, shared by all producer threads.
 *
 * Interning: a producer asks for the id of a path, host or name; the table gives the existing
 * id or the next one. Ids are dense from 1 and given in order, so the writer stores every id
 * below `next_sid` at each commit (strings are committed with or before the first event that
 * uses them). A store reopened for writing loads its strings first. The table is bounded
 * (max_strings); past it strings stay inline in their events, unindexed, which readers handle. */
#include "store_write_int.h"

#include <stdlib.h>
#include <string.h>

#define INTERN_MAX_DEFAULT (64u << 20)

static int intern_grow_slots(intern_table *t)
{
    size_t n = t->nslots ? t->nslots * 2 : 4096;
    intern_ent *ns = calloc(n, sizeof *ns);
    if (!ns)
        return PTB_ENOMEM;
    for (size_t i = 0; i < t->nslots; i++) {
        intern_ent *e = &t->slots[i];
        if (!e->sid)
            continue;
        size_t j = e->hash & (n - 1);
        while (ns[j].sid)
            j = (j + 1) & (n - 1);
        ns[j] = *e;
    }
    free(t->slots);
    t->slots = ns;
    t->nslots = n;
    return 0;
}

/* Add string (copied) with id sid; t->mu held or single-threaded. */
static int intern_add(intern_table *t, uint64_t h, const char *s, size_t n, uint32_t sid)
{
    if ((t->used + 1) * 4 > t->nslots * 3 && intern_grow_slots(t))
        return PTB_ENOMEM;
    if (sid >= t->by_sid_cap) {
        size_t nc = t->by_sid_cap ? t->by_sid_cap * 2 : 4096;
        while (nc <= sid)
            nc *= 2;
        const char **nb = realloc(t->by_sid, nc * sizeof *nb);
        if (!nb)
            return PTB_ENOMEM;
        t->by_sid = nb;
        uint32_t *nl = realloc(t->len_by_sid, nc * sizeof *nl);
        if (!nl)
            return PTB_ENOMEM;
        t->len_by_sid = nl;
        t->by_sid_cap = nc;
    }
    char *c = malloc(n + 1);
    if (!c)
        return PTB_ENOMEM;
    memcpy(c, s, n);
    c[n] = 0;
    size_t j = h & (t->nslots - 1);
    while (t->slots[j].sid)
        j = (j + 1) & (t->nslots - 1);
    t->slots[j] = (intern_ent){h, sid, (uint32_t)n, c};
    t->used++;
    t->by_sid[sid] = c;
    t->len_by_sid[sid] = (uint32_t)n;
    return 0;
}

int store_intern_init(intern_table *t, MDB_env *env, MDB_dbi strings, uint32_t count)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    t->max_strings = INTERN_MAX_DEFAULT;
    t->next_sid = 1;
    t->stored_sid = 1;
    if (intern_grow_slots(t))
        return PTB_ENOMEM;
    if (count == 0)
        return 0;
    MDB_txn *txn;
    int rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return rc;
    for (uint32_t sid = 1; sid <= count && rc == 0; sid++) {
        const char *s;
        size_t n;
        rc = store_string_raw(txn, strings, sid, &s, &n);
        if (rc == 0)
            rc = intern_add(t, store_str_hash(s, n), s, n, sid);
    }
    mdb_txn_abort(txn);
    t->next_sid = count + 1;
    t->stored_sid = count + 1;
    return rc;
}

void store_intern_free(intern_table *t)
{
    for (size_t i = 0; i < t->nslots; i++)
        free((void *)t->slots[i].str);
    free(t->slots);
    free(t->by_sid);
    free(t->len_by_sid);
    pthread_mutex_destroy(&t->mu);
    memset(t, 0, sizeof *t);
}

uint32_t store_intern(store_queue *q, const char *s, size_t n)
{
    intern_table *t = &q->strings;
    uint64_t h = store_str_hash(s, n);
    pthread_mutex_lock(&t->mu);
    size_t j = h & (t->nslots - 1);
    while (t->slots[j].sid) {
        const intern_ent *e = &t->slots[j];
        if (e->hash == h && e->len == n && memcmp(e->str, s, n) == 0) {
            uint32_t sid = e->sid;
            pthread_mutex_unlock(&t->mu);
            return sid;
        }
        j = (j + 1) & (t->nslots - 1);
    }
    uint32_t sid = 0;
    if (t->next_sid < t->max_strings && intern_add(t, h, s, n, t->next_sid) == 0)
        sid = t->next_sid++;
    pthread_mutex_unlock(&t->mu);
    return sid;
}

/* ------------------------------------------------------------ blob claims */

int store_blobset_init(blob_set *b)
{
    memset(b, 0, sizeof *b);
    pthread_mutex_init(&b->mu, NULL);
    b->nslots = 1024;
    b->keys = calloc(b->nslots, 32);
    return b->keys ? 0 : PTB_ENOMEM;
}

void store_blobset_free(blob_set *b)
{
    free(b->keys);
    pthread_mutex_destroy(&b->mu);
    memset(b, 0, sizeof *b);
}

static const uint8_t blob_zero[32];

static size_t blobset_slot(const blob_set *b, const uint8_t sha[32])
{
    uint64_t h;
    memcpy(&h, sha, 8);
    size_t j = h & (b->nslots - 1);
    while (memcmp(b->keys[j], blob_zero, 32) && memcmp(b->keys[j], sha, 32))
        j = (j + 1) & (b->nslots - 1);
    return j;
}

static int blobset_grow(blob_set *b)
{
    blob_set nb = {.nslots = b->nslots * 2};
    nb.keys = calloc(nb.nslots, 32);
    if (!nb.keys)
        return PTB_ENOMEM;
    for (size_t i = 0; i < b->nslots; i++)
        if (memcmp(b->keys[i], blob_zero, 32))
            memcpy(nb.keys[blobset_slot(&nb, b->keys[i])], b->keys[i], 32);
    free(b->keys);
    b->keys = nb.keys;
    b->nslots = nb.nslots;
    return 0;
}

int store_blob_claim(store_queue *q, const uint8_t sha[32])
{
    blob_set *b = &q->blobs;
    if (memcmp(sha, blob_zero, 32) == 0)
        return PTB_EINVAL; /* cannot be a real SHA-256 output in practice; reserved as empty */
    pthread_mutex_lock(&b->mu);
    size_t j = blobset_slot(b, sha);
    if (memcmp(b->keys[j], sha, 32) == 0) {
        pthread_mutex_unlock(&b->mu);
        pthread_mutex_lock(&q->mu);
        q->stats.blobs_dup++;
        pthread_mutex_unlock(&q->mu);
        return 1;
    }
    /* not seen by this writer: it may be in the store from an earlier session */
    MDB_txn *txn;
    int rc = mdb_txn_begin(q->s->env, NULL, MDB_RDONLY, &txn);
    if (rc == 0) {
        MDB_val k = {32, (void *)sha}, v;
        rc = mdb_get(txn, q->s->dbi[STORE_DB_BLOBS], &k, &v);
        mdb_txn_abort(txn);
        if (rc == 0) {
            rc = 1;
        } else if (rc == MDB_NOTFOUND) {
            rc = 0;
        }
    }
    if (rc >= 0) {
        if ((b->used + 1) * 2 > b->nslots && blobset_grow(b)) {
            pthread_mutex_unlock(&b->mu);
            return PTB_ENOMEM;
        }
        memcpy(b->keys[blobset_slot(b, sha)], sha, 32);
        b->used++;
    }
    pthread_mutex_unlock(&b->mu);
    if (rc == 1) {
        pthread_mutex_lock(&q->mu);
        q->stats.blobs_dup++;
        pthread_mutex_unlock(&q->mu);
    }
    return rc;
}

/* Forget a claim whose blob was not queued, so a later put of the same bytes tries again.
 * Open addressing without tombstones: rebuild the cluster after the removed slot. */
void store_blob_unclaim(store_queue *q, const uint8_t sha[32], int unused)
{
    (void)unused;
    blob_set *b = &q->blobs;
    pthread_mutex_lock(&b->mu);
    size_t j = blobset_slot(b, sha);
    if (memcmp(b->keys[j], sha, 32) == 0) {
        memset(b->keys[j], 0, 32);
        b->used--;
        for (size_t k = (j + 1) & (b->nslots - 1); memcmp(b->keys[k], blob_zero, 32);
             k = (k + 1) & (b->nslots - 1)) {
            uint8_t tmp[32];
            memcpy(tmp, b->keys[k], 32);
            memset(b->keys[k], 0, 32);
            memcpy(b->keys[blobset_slot(b, tmp)], tmp, 32);
        }
    }
    pthread_mutex_unlock(&b->mu);
}
