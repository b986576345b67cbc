/* `ptb verify`: check a store from the bytes up, read-only.
 *
 * 1. The LMDB file's page structure (lmdb_check), before liblmdb maps it.
 * 2. Meta keys: format, schema, last seq, batches, strings, chain head.
 * 3. Strings: ids dense from 1, each findable through `strings_r`.
 * 4. The chain, batch by batch: the digest recomputed from the events (dense seqs, each one
 *    decodes), the strings and the blob keys of the batch; the link head = SHA-256(prev||digest);
 *    the batch's entry in `batches` (seq range and time span recomputed).
 * 5. Blobs: every blob decodes (zstd, zlib or as is) to bytes whose SHA-256 is its key; every
 *    blob is named by exactly one chain entry.
 * 6. Indexes: the postings recomputed from the decoded events up to ptb.indexed_seq (later
 *    events are the index tail, not indexed yet) and the postings stored in the ix_* databases
 *    are compared as multisets (count plus two 64-bit sums of a mixed hash of
 *    (index, key, seq)), in constant memory; each stored posting block is also checked for order.
 * Problems are counted and the first one described; the check goes on after a problem where
 * it can, so the count says how much is wrong. */
#include "lmdb_check.h"
#include "store_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct verify {
    store *s;
    store_txn *t;
    MDB_txn *txn;
    store_verify_report *rep;
    void (*progress)(void *arg, uint64_t done, uint64_t total);
    void *arg;
    uint64_t post_n, post_a, post_b; /* multiset of recomputed postings */
    store_arena arena;
} verify;

__attribute__((format(printf, 2, 3))) static void problem(verify *v, const char *fmt, ...)
{
    if (v->rep->problems++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(v->rep->first, sizeof v->rep->first, fmt, ap);
        va_end(ap);
    }
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static void post_add(uint64_t *n, uint64_t *a, uint64_t *b, uint64_t ix, uint64_t key, uint64_t seq)
{
    uint64_t h = mix64(mix64(ix * 0x9e3779b97f4a7c15ULL ^ key) ^ seq);
    *n += 1;
    *a += h;
    *b += mix64(h ^ 0x5851f42d4c957f2dULL);
}

static uint32_t lookup_cb(void *arg, const char *s, size_t n)
{
    uint32_t sid = 0;
    return store_string_lookup(arg, s, n, &sid) == 0 ? sid : 0;
}

static int resolve_cb(void *arg, uint32_t sid, const char **s, size_t *n)
{
    return store_string_get(arg, sid, s, n);
}

__attribute__((noinline)) static int decode_one(verify *v, const MDB_val *d, uint64_t seq,
                                                const ptb_event **ev)
{
    int rc;
    STORE_GUARDED(rc,
                  store_codec_decode(d->mv_data, d->mv_size, seq, &v->arena, resolve_cb, v->t, ev));
    return rc;
}

/* ------------------------------------------------------------ strings */

static void verify_strings(verify *v, uint64_t count)
{
    MDB_cursor *c;
    if (mdb_cursor_open(v->txn, v->s->dbi[STORE_DB_STRINGS], &c))
        return problem(v, "strings: cannot open a cursor");
    MDB_val k, d;
    uint64_t want = 1;
    int rc;
    for (rc = store_mdb_cget(c, &k, &d, MDB_FIRST); rc == 0;
         rc = store_mdb_cget(c, &k, &d, MDB_NEXT), want++) {
        if (k.mv_size != 4 || store_get_u32(k.mv_data) != want) {
            problem(v, "strings: id %llu missing or key malformed", (unsigned long long)want);
            break;
        }
        if (d.mv_size == 0 || d.mv_size > STORE_STRING_MAX) {
            problem(v, "strings: id %llu has a bad length %zu", (unsigned long long)want,
                    d.mv_size);
            continue;
        }
        uint32_t sid = 0;
        if (store_string_lookup(v->t, d.mv_data, d.mv_size, &sid) || sid != want)
            problem(v, "strings: id %llu is not found by its hash in strings_r",
                    (unsigned long long)want);
        v->rep->strings++;
    }
    if (rc && rc != PTB_ENOTFOUND)
        problem(v, "strings: %s", ptb_strerror(rc));
    mdb_cursor_close(c);
    if (v->rep->strings != count)
        problem(v, "strings: %llu stored, meta says %llu", (unsigned long long)v->rep->strings,
                (unsigned long long)count);
    MDB_stat st;
    if (mdb_stat(v->txn, v->s->dbi[STORE_DB_STRINGS_R], &st) == 0 && st.ms_entries != count)
        problem(v, "strings_r: %zu entries for %llu strings", st.ms_entries,
                (unsigned long long)count);
}

/* ------------------------------------------------------------ chain, events, batches */

static void verify_chain(verify *v, uint64_t batches, uint64_t last_seq, const uint8_t head[32])
{
    MDB_cursor *cc, *ce, *cb;
    if (mdb_cursor_open(v->txn, v->s->dbi[STORE_DB_CHAIN], &cc) ||
        mdb_cursor_open(v->txn, v->s->dbi[STORE_DB_EVENTS], &ce) ||
        mdb_cursor_open(v->txn, v->s->dbi[STORE_DB_BATCHES], &cb))
        return problem(v, "chain: cannot open cursors");
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t prev[32] = {0};
    uint64_t next_seq = 1, no = 0, blobs_named = 0;
    uint32_t next_sid = 1;
    MDB_val ck, cv, ek, evv, bk, bv;
    int rc, erc = store_mdb_cget(ce, &ek, &evv, MDB_FIRST),
            brc = store_mdb_cget(cb, &bk, &bv, MDB_FIRST);
    for (rc = store_mdb_cget(cc, &ck, &cv, MDB_FIRST); rc == 0 && md;
         rc = store_mdb_cget(cc, &ck, &cv, MDB_NEXT)) {
        no++;
        if (ck.mv_size != 8 || store_get_u64(ck.mv_data) != no || cv.mv_size < STORE_CHAIN_FIXED ||
            (cv.mv_size - STORE_CHAIN_FIXED) % 32) {
            problem(v, "chain: entry %llu malformed", (unsigned long long)no);
            break;
        }
        const uint8_t *c = cv.mv_data;
        uint64_t first = store_get_u64(c), last = store_get_u64(c + 8);
        uint32_t sid_first = store_get_u32(c + 16), sid_end = store_get_u32(c + 20);
        uint32_t nblobs = store_get_u32(c + 24);
        if (nblobs != (cv.mv_size - STORE_CHAIN_FIXED) / 32 || sid_first != next_sid ||
            sid_end < sid_first || (first && (first != next_seq || last < first))) {
            problem(v, "chain: entry %llu does not follow the one before (seqs %llu..%llu)",
                    (unsigned long long)no, (unsigned long long)first, (unsigned long long)last);
            break;
        }
        EVP_DigestInit_ex(md, EVP_sha256(), NULL);
        EVP_DigestUpdate(md, "ptb-batch-v1", 12);
        int64_t tmin = 0, tmax = 0;
        for (uint64_t seq = first; first && seq <= last; seq++) {
            if (erc || ek.mv_size != 8 || store_get_u64(ek.mv_data) != seq) {
                problem(v, "events: seq %llu missing (batch %llu)", (unsigned long long)seq,
                        (unsigned long long)no);
                goto out;
            }
            uint8_t hdr[12];
            memcpy(hdr, ek.mv_data, 8);
            store_put_u32(hdr + 8, (uint32_t)evv.mv_size);
            EVP_DigestUpdate(md, hdr, 12);
            EVP_DigestUpdate(md, evv.mv_data, evv.mv_size);
            const ptb_event *ev;
            store_arena_reset(&v->arena);
            int drc = decode_one(v, &evv, seq, &ev);
            if (drc) {
                problem(v, "events: seq %llu does not decode (%s)", (unsigned long long)seq,
                        ptb_strerror(drc));
            } else {
                int64_t lo, hi;
                if (store_event_span(ev, &lo, &hi))
                    problem(v, "events: seq %llu is a kernel batch whose columns disagree",
                            (unsigned long long)seq);
                store_postings p;
                store_codec_postings(ev, lookup_cb, v->t, &p);
                /* events after indexed_seq are the index tail: not in the ix_* databases */
                for (uint32_t i = 0; i < p.n && seq <= store_txn_indexed_seq(v->t); i++)
                    post_add(&v->post_n, &v->post_a, &v->post_b, p.ix[i], p.key[i], seq);
                if (seq == first || lo < tmin)
                    tmin = lo;
                if (seq == first || hi > tmax)
                    tmax = hi;
            }
            v->rep->events++;
            if (v->progress && (v->rep->events & 0xffff) == 0)
                v->progress(v->arg, v->rep->events, last_seq);
            erc = store_mdb_cget(ce, &ek, &evv, MDB_NEXT);
        }
        for (uint32_t sid = sid_first; sid < sid_end; sid++) {
            const char *str;
            size_t n;
            uint8_t b[8];
            if (store_string_get(v->t, sid, &str, &n)) {
                problem(v, "chain: batch %llu names string %u, which is missing",
                        (unsigned long long)no, sid);
                continue;
            }
            store_put_u32(b, sid);
            store_put_u32(b + 4, (uint32_t)n);
            EVP_DigestUpdate(md, b, 8);
            EVP_DigestUpdate(md, str, n);
        }
        for (uint32_t i = 0; i < nblobs; i++) {
            const uint8_t *sha = c + STORE_CHAIN_FIXED + 32 * i;
            EVP_DigestUpdate(md, sha, 32);
            MDB_val k = {32, (void *)sha}, d;
            if (store_mdb_get(v->txn, v->s->dbi[STORE_DB_BLOBS], &k, &d))
                problem(v, "chain: batch %llu names a blob that is missing",
                        (unsigned long long)no);
        }
        blobs_named += nblobs;
        uint8_t digest[32], h[32];
        unsigned int dl = 32;
        EVP_DigestFinal_ex(md, digest, &dl);
        EVP_DigestInit_ex(md, EVP_sha256(), NULL);
        EVP_DigestUpdate(md, prev, 32);
        EVP_DigestUpdate(md, digest, 32);
        EVP_DigestFinal_ex(md, h, &dl);
        if (memcmp(digest, c + 32, 32) || memcmp(h, c + 64, 32))
            problem(v,
                    "chain: batch %llu (seqs %llu..%llu) does not match its recorded digest: "
                    "its events, strings or blob list changed",
                    (unsigned long long)no, (unsigned long long)first, (unsigned long long)last);
        memcpy(prev, c + 64, 32);
        if (first) {
            if (brc || bk.mv_size != 8 || bv.mv_size != STORE_BATCH_VAL ||
                store_get_u64(bk.mv_data) != first || store_get_u64(bv.mv_data) != last ||
                (int64_t)store_get_u64((uint8_t *)bv.mv_data + 8) != tmin ||
                (int64_t)store_get_u64((uint8_t *)bv.mv_data + 16) != tmax)
                problem(v, "batches: entry for seqs %llu..%llu missing or wrong",
                        (unsigned long long)first, (unsigned long long)last);
            else
                brc = store_mdb_cget(cb, &bk, &bv, MDB_NEXT);
            next_seq = last + 1;
        }
        next_sid = sid_end;
        v->rep->batches++;
    }
    if (rc && rc != PTB_ENOTFOUND)
        problem(v, "chain: %s", ptb_strerror(rc));
    if (no != batches)
        problem(v, "chain: %llu entries, meta says %llu", (unsigned long long)no,
                (unsigned long long)batches);
    if (next_seq - 1 != last_seq)
        problem(v, "events: chain covers seqs up to %llu, meta says %llu",
                (unsigned long long)(next_seq - 1), (unsigned long long)last_seq);
    if (erc == 0)
        problem(v, "events: seq %llu is not covered by the chain",
                (unsigned long long)(ek.mv_size == 8 ? store_get_u64(ek.mv_data) : 0));
    if (brc == 0)
        problem(v, "batches: an entry is not covered by the chain");
    if (memcmp(prev, head, 32))
        problem(v, "chain: the head in meta differs from the last link");
    MDB_stat st;
    if (mdb_stat(v->txn, v->s->dbi[STORE_DB_BLOBS], &st) == 0 && st.ms_entries != blobs_named)
        problem(v, "blobs: %zu stored, the chain names %llu", st.ms_entries,
                (unsigned long long)blobs_named);
out:
    EVP_MD_CTX_free(md);
    mdb_cursor_close(cc);
    mdb_cursor_close(ce);
    mdb_cursor_close(cb);
}

/* ------------------------------------------------------------ blobs */

static int blob_cb(void *arg, const uint8_t sha[32], size_t zlen)
{
    verify *v = arg;
    void *data;
    size_t len;
    int rc = store_blob_get(v->t, sha, &data, &len);
    if (rc == PTB_ECORRUPT) { /* the message names the blob and says what is wrong */
        problem(v, "blobs: %s", store_errmsg(v->s));
    } else if (rc) {
        char hex[65];
        store_hex(sha, 32, hex);
        problem(v, "blobs: %s (%zu bytes stored): %s", hex, zlen, ptb_strerror(rc));
    } else {
        free(data);
    }
    v->rep->blobs++;
    return 0;
}

/* ------------------------------------------------------------ indexes */

static void verify_indexes(verify *v)
{
    uint64_t n = 0, a = 0, b = 0;
    for (int ix = 0; ix < STORE_IX_COUNT; ix++) {
        MDB_cursor *c;
        if (mdb_cursor_open(v->txn, v->s->dbi[STORE_DB_IX_FIRST + ix], &c))
            return problem(v, "%s: cannot open a cursor", store_db_names[STORE_DB_IX_FIRST + ix]);
        MDB_val k, d;
        int rc;
        uint64_t prev_key = 0, prev_last = 0;
        for (rc = store_mdb_cget(c, &k, &d, MDB_FIRST); rc == 0;
             rc = store_mdb_cget(c, &k, &d, MDB_NEXT)) {
            const char *name = store_db_names[STORE_DB_IX_FIRST + ix];
            if (k.mv_size != STORE_POSTING_KEY) {
                problem(v, "%s: malformed key", name);
                continue;
            }
            uint64_t key = store_get_u64(k.mv_data), seq = store_get_u64((uint8_t *)k.mv_data + 8);
            const uint8_t *p = d.mv_data, *end = p + d.mv_size;
            uint64_t cnt;
            if (store_varint_get(&p, end, &cnt) || cnt == 0 || cnt > d.mv_size) {
                problem(v, "%s: posting list of key %llu at seq %llu is malformed", name,
                        (unsigned long long)key, (unsigned long long)seq);
                continue;
            }
            if (key == prev_key && seq <= prev_last && (prev_key || prev_last))
                problem(v, "%s: posting lists of key %llu overlap at seq %llu", name,
                        (unsigned long long)key, (unsigned long long)seq);
            for (uint64_t i = 0; i < cnt; i++) {
                uint64_t dlt = 0;
                if (i && (store_varint_get(&p, end, &dlt) || dlt == 0)) {
                    problem(v, "%s: posting list of key %llu at seq %llu is malformed", name,
                            (unsigned long long)key, (unsigned long long)seq);
                    break;
                }
                seq += dlt;
                post_add(&n, &a, &b, (uint64_t)ix, key, seq);
            }
            if (p != end)
                problem(v, "%s: trailing bytes in a posting list of key %llu", name,
                        (unsigned long long)key);
            prev_key = key;
            prev_last = seq;
            v->rep->postings += cnt;
        }
        if (rc && rc != PTB_ENOTFOUND)
            problem(v, "%s: %s", store_db_names[STORE_DB_IX_FIRST + ix], ptb_strerror(rc));
        mdb_cursor_close(c);
    }
    if (n != v->post_n || a != v->post_a || b != v->post_b)
        problem(v, "indexes: the stored postings (%llu) differ from those of the events (%llu)",
                (unsigned long long)n, (unsigned long long)v->post_n);
}

/* ------------------------------------------------------------ entry */

static int meta_num(verify *v, const char *key, uint64_t *out)
{
    const char *s;
    size_t n;
    char buf[32];
    if (store_meta_get(v->t, key, &s, &n) || n == 0 || n >= sizeof buf) {
        problem(v, "meta: '%s' missing or malformed", key);
        return PTB_ECORRUPT;
    }
    memcpy(buf, s, n);
    buf[n] = 0;
    char *end;
    *out = strtoull(buf, &end, 10);
    if (*end) {
        problem(v, "meta: '%s' is not a number", key);
        return PTB_ECORRUPT;
    }
    return 0;
}

int store_verify(const char *dir, store_verify_report *rep,
                 void (*progress)(void *arg, uint64_t done, uint64_t total), void *arg)
{
    memset(rep, 0, sizeof *rep);
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    lmdb_check_report lr;
    int rc = lmdb_check_file(path, &lr);
    if (rc == PTB_ECORRUPT) {
        rep->problems = 1;
        snprintf(rep->first, sizeof rep->first, "LMDB structure: %.480s", lr.first);
        return PTB_ECORRUPT;
    }
    if (rc == -ENOENT)
        return PTB_ENOSTORE;
    if (rc)
        return rc;
    verify v = {.rep = rep, .progress = progress, .arg = arg};
    rc = store_open(dir, NULL, STORE_RDONLY | STORE_NOCHECK, &v.s);
    if (rc) {
        snprintf(rep->first, sizeof rep->first, "%s", store_errmsg(v.s));
        store_close(v.s);
        if (rc == PTB_ECORRUPT)
            rep->problems = 1;
        return rc;
    }
    rc = store_txn_begin(v.s, &v.t);
    if (rc) {
        snprintf(rep->first, sizeof rep->first, "%s", store_errmsg(v.s));
        store_close(v.s);
        return rc;
    }
    v.txn = store_txn_mdb(v.t);
    store_arena_init(&v.arena);
    uint64_t last_seq = 0, batches = 0, strings = 0;
    uint8_t head[32] = {0};
    const char *hv;
    size_t hn;
    if (store_meta_get(v.t, "ptb.chain_head", &hv, &hn) == 0) {
        for (size_t i = 0; hn == 64 && i < 32; i++) {
            unsigned x;
            char pair[3] = {hv[2 * i], hv[2 * i + 1], 0};
            if (sscanf(pair, "%2x", &x) == 1)
                head[i] = (uint8_t)x;
        }
    }
    if (meta_num(&v, "ptb.last_seq", &last_seq) == 0 &&
        meta_num(&v, "ptb.batches", &batches) == 0 && meta_num(&v, "ptb.strings", &strings) == 0) {
        verify_strings(&v, strings);
        verify_chain(&v, batches, last_seq, head);
        rc = store_blob_foreach(v.t, blob_cb, &v);
        if (rc)
            problem(&v, "blobs: %s", ptb_strerror(rc));
        verify_indexes(&v);
    }
    if (progress)
        progress(arg, rep->events, last_seq);
    store_arena_free(&v.arena);
    store_txn_end(v.t);
    store_close(v.s);
    if (rep->problems)
        return strstr(rep->first, "chain") ? PTB_ECHAIN : PTB_ECORRUPT;
    return 0;
}
