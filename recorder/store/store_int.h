/* Internal header of the store: the handle, key encodings, the codec between ptb_event and the
 * stored bytes. Not for use outside recorder/store/. The layout is documented byte by byte in
 * schemas/store.md; keep the two in step. */
#ifndef PTB_STORE_INT_H
#define PTB_STORE_INT_H

#include <lmdb.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>

#include "store.h"

/* Named databases. */
enum {
    STORE_DB_META,
    STORE_DB_EVENTS,
    STORE_DB_BLOBS,
    STORE_DB_STRINGS,
    STORE_DB_STRINGS_R,
    STORE_DB_BATCHES,
    STORE_DB_CHAIN,
    STORE_DB_IX_FIRST, /* STORE_DB_IX_FIRST + store_index */
    STORE_DB_COUNT = STORE_DB_IX_FIRST + STORE_IX_COUNT
};
extern const char *const store_db_names[STORE_DB_COUNT];

#define PTB_STR_(x) #x
#define PTB_STR(x) PTB_STR_(x)
#define STORE_FORMAT "ptb-store-1"
#define STORE_POSTING_KEY 16 /* u64 BE value, u64 BE first seq */
#define STORE_BATCH_VAL 24   /* u64 BE last seq, i64 BE ts_min, i64 BE ts_max */
#define STORE_CHAIN_FIXED 96 /* see store.md, `chain` */
#define STORE_BLOB_HDR 9     /* u8 codec (store_codec), u64 BE raw length */

/* ------------------------------------------------------------ byte helpers */

static inline void store_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}
static inline uint64_t store_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}
static inline void store_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
    p[3] = (uint8_t)v;
}
static inline uint32_t store_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
/* The key of `strings_r` (schemas/store.md): 8 bytes at a time, little-endian words w (the last
 * one zero-padded), h = (h ^ w) * M then h ^= h >> 29 per word, seeded with the length; then the
 * splitmix64 finaliser. Not cryptographic: `strings_r` keeps every id under a hash and readers
 * compare the strings. */
static inline uint64_t store_str_hash(const void *s, size_t n)
{
    const uint8_t *p = s;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (n * 0xff51afd7ed558ccdULL);
    while (n >= 8) {
        uint64_t w = (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
                     (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
                     (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
        h = (h ^ w) * 0xc6a4a7935bd1e995ULL;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++)
        w |= (uint64_t)p[i] << (8 * i);
    h = (h ^ w) * 0xc6a4a7935bd1e995ULL;
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    return h ^ (h >> 31);
}

/* ------------------------------------------------------------ codec (store_codec.c) */

/* Index postings one event contributes: (index, key) pairs. */
#define STORE_CODEC_MAX_POSTINGS 256 /* a kernel batch: type, exec, STORE_KERNELS_NAMES_MAX names */
typedef struct store_postings {
    uint32_t n;
    uint8_t ix[STORE_CODEC_MAX_POSTINGS];
    uint64_t key[STORE_CODEC_MAX_POSTINGS];
} store_postings;

/* Interning callback: give the id of string s (len n), 0 to leave the string inline. */
typedef uint32_t (*store_intern_fn)(void *arg, const char *s, size_t n);

/* Encode ev for storage: interned string fields replaced by ids through intern(), seq cleared.
 * Writes at most cap bytes to buf; *len gets the encoded size (also when it does not fit, then
 * returns PTB_ETOOBIG). postings (may be NULL) gets the index postings. */
int store_codec_encode(const ptb_event *ev, store_intern_fn intern, void *arg, uint8_t *buf,
                       size_t cap, size_t *len, store_postings *postings);

/* Size the encoding of ev will have after interning (an upper bound: strings counted inline). */
size_t store_codec_size(const ptb_event *ev);

/* A bump allocator for decoding: every allocation lives until store_arena_reset. */
typedef struct store_arena {
    uint8_t *buf;
    size_t cap, used;
    struct store_arena_big *big; /* allocations too large for buf */
    ProtobufCAllocator pa;
} store_arena;
void store_arena_init(store_arena *a);
void store_arena_reset(store_arena *a);
void store_arena_free(store_arena *a);

/* Resolve callback: the string of id sid, or PTB_ENOTFOUND / PTB_ECORRUPT. */
typedef int (*store_resolve_fn)(void *arg, uint32_t sid, const char **s, size_t *n);

/* Decode stored bytes into an event allocated in arena a, strings resolved through resolve.
 * Returns PTB_ECORRUPT for bytes that do not decode or reference unknown ids. */
int store_codec_decode(const void *data, size_t len, uint64_t seq, store_arena *a,
                       store_resolve_fn resolve, void *arg, const ptb_event **out);

/* Postings of a decoded (resolved) event, with string keys looked up through lookup (ids of
 * strings; 0 when absent). For verify. */
typedef uint32_t (*store_lookup_fn)(void *arg, const char *s, size_t n);
void store_codec_postings(const ptb_event *ev, store_lookup_fn lookup, void *arg,
                          store_postings *out);

/* Postings of stored bytes (interned ids read as they are, nothing resolved), decoded into a.
 * PTB_ECORRUPT for bytes that do not decode. */
int store_codec_postings_stored(const void *data, size_t len, store_arena *a, store_postings *out);

/* Posting list value: varint count n, then n-1 varint deltas after the key's first seq. */
size_t store_varint_put(uint8_t *p, uint64_t v);
int store_varint_get(const uint8_t **p, const uint8_t *end, uint64_t *v);

/* ------------------------------------------------------------ the handle */

typedef struct store_queue store_queue; /* store_write.c */

struct store {
    char *dir;
    unsigned flags;
    store_options opt;
    MDB_env *env;
    MDB_dbi dbi[STORE_DB_COUNT];
    ptb_errbuf err;
    /* readers on the same handle hold rd; the writer holds wr to grow the map */
    pthread_rwlock_t map_lock;
    store_queue *q; /* writer only */
};

/* Open the LMDB environment and the named databases (store_read.c); create them when
 * creating. */
int store_env_open(store *s, bool create);

/* Read one interned string in txn (used by the writer at open and by readers). */
int store_string_raw(MDB_txn *txn, MDB_dbi dbi, uint32_t sid, const char **str, size_t *len);

/* Reader primitives (store_read.c): an LMDB code as a ptb code (MDB_NOTFOUND -> PTB_ENOTFOUND,
 * LMDB's corruption codes -> PTB_ECORRUPT, positive errno -> -errno), and mdb_get /
 * mdb_cursor_get under the fault guard. */
int store_rc(int mdb_rc);
int store_mdb_get(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, MDB_val *v);
int store_mdb_cget(MDB_cursor *c, MDB_val *k, MDB_val *v, MDB_cursor_op op);

/* The index tail of a snapshot: events after indexed_seq, whose postings are not written yet
 * (the writer writes them every index_events/index_ms). store_tail_foreach calls fn with the
 * postings of each (events that do not decode are skipped: verify reports them). */
uint64_t store_txn_indexed_seq(store_txn *t);
int store_tail_foreach(store_txn *t, int (*fn)(void *arg, uint64_t seq, const store_postings *p),
                       void *arg);

/* The LMDB txn and store of a read snapshot (store_read.c). */
MDB_txn *store_txn_mdb(store_txn *t);
store *store_txn_store(store_txn *t);

/* Decode a `blobs` value of n bytes (val may lie in the LMDB map: read under the fault guard)
 * stored under sha256: *data gets the raw bytes (caller frees with free()), *len their count.
 * PTB_ECORRUPT, with the reason in eb, for an unknown codec, a length the data does not have or
 * cannot have, data that does not decode, or content whose SHA-256 differs; PTB_ENOMEM.
 * (store_compress.c) */
int store_blob_decode(const void *val, size_t n, const uint8_t sha256[32], ptb_errbuf *eb,
                      void **data, size_t *len);

/* Writer start/stop (store_writer.c). */
int store_writer_start(store *s);
int store_writer_stop(store *s);

/* Fault guard for readers: a corrupt LMDB file can make liblmdb read outside its map. Around
 * each read call, a SIGSEGV/SIGBUS is turned into PTB_ECORRUPT instead of a crash. */
int store_guard_install(void);
extern __thread sigjmp_buf *store_guard_jmp;
#define STORE_GUARDED(rc_var, expr)                                                                \
    do {                                                                                           \
        sigjmp_buf store_jb_;                                                                      \
        sigjmp_buf *store_prev_ = store_guard_jmp;                                                 \
        if (sigsetjmp(store_jb_, 0) == 0) {                                                        \
            store_guard_jmp = &store_jb_;                                                          \
            rc_var = (expr);                                                                       \
        } else {                                                                                   \
            rc_var = PTB_ECORRUPT;                                                                 \
        }                                                                                          \
        store_guard_jmp = store_prev_;                                                             \
    } while (0)

#endif
