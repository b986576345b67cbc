/* Internal to the writer side of the store (store_write.c, store_writer.c, store_intern.c,
 * store_compress.c): the producer queue, its records, the string intern table, the blob claim
 * set and the compression threads. */
#ifndef PTB_STORE_WRITE_INT_H
#define PTB_STORE_WRITE_INT_H

#include "store_int.h"

/* ------------------------------------------------------------ ring records */

enum { REC_PAD = 1, REC_EVENT = 2, REC_BLOB = 3, REC_META = 4 };

/* Every record starts with this header; sizes are multiples of 8. */
typedef struct rec_hdr {
    uint32_t kind;
    uint32_t size;   /* whole record, aligned */
    uint64_t ticket; /* enqueue order, for store_flush */
} rec_hdr;

typedef struct rec_posting {
    uint64_t ix;
    uint64_t key;
} rec_posting;

typedef struct rec_event {
    rec_hdr h;
    uint64_t seq;
    int64_t ts, ts_hi; /* the event's time span (store_event_span) */
    uint32_t len;      /* encoded bytes after the postings */
    uint32_t npost;
    rec_posting post[]; /* npost, then the encoded event */
} rec_event;

/* A blob's place in the queue, taken when it is given (store_blob_give) and filled by a
 * compression thread (store_compress.c); the writer does not go past a blob that is still
 * BLOB_PENDING, so the blob is committed in queue order. state is read and written with atomics:
 * whoever sees BLOB_READY (acquire) sees codec, z and zlen as the compressor left them. */
enum { BLOB_PENDING = 0, BLOB_READY = 1, BLOB_FAILED = 2 };
typedef struct rec_blob {
    rec_hdr h;
    uint8_t sha[32];
    uint32_t state; /* BLOB_*, atomic */
    uint32_t codec; /* STORE_CODEC_* of z (codec 0 until READY) */
    uint64_t raw_len;
    /* owned by the record, freed after commit (or at close when never written): the raw bytes
     * while pending, then the stored bytes that follow the value's header (compressed, or the
     * raw bytes again for codec 0) */
    uint8_t *z;
    size_t zlen;
    uint64_t reserved;     /* budget charged at give: raw_len + STORE_BLOB_HDR */
    struct rec_blob *next; /* the compressors' queue (store_queue.jobs) */
} rec_blob;

typedef struct rec_meta {
    rec_hdr h;
    uint32_t klen, vlen;
    char data[]; /* key then value, not NUL-terminated */
} rec_meta;

static inline size_t rec_align(size_t n)
{
    return (n + 7) & ~(size_t)7;
}
static inline size_t rec_event_size(uint32_t npost, size_t len)
{
    return rec_align(sizeof(rec_event) + npost * sizeof(rec_posting) + len);
}
static inline uint8_t *rec_event_data(rec_event *e)
{
    return (uint8_t *)(e->post + e->npost);
}

/* ------------------------------------------------------------ intern table */

typedef struct intern_ent {
    uint64_t hash;
    uint32_t sid;
    uint32_t len;
    const char *str; /* owned by the table */
} intern_ent;

typedef struct intern_table {
    pthread_mutex_t mu;
    intern_ent *slots; /* open addressing, power-of-two size */
    size_t nslots, used;
    const char **by_sid; /* by_sid[sid] = string, sid >= 1 */
    uint32_t *len_by_sid;
    size_t by_sid_cap;
    uint32_t next_sid;   /* next id to give */
    uint32_t stored_sid; /* ids below this are committed */
    uint32_t max_strings;
} intern_table;

/* ------------------------------------------------------------ blob claims */

typedef struct blob_set {
    pthread_mutex_t mu;
    uint8_t (*keys)[32]; /* open addressing; all-zero = empty */
    size_t nslots, used;
} blob_set;

/* ------------------------------------------------------------ the queue */

struct store_queue {
    store *s;
    pthread_mutex_t mu;
    pthread_cond_t cond_writer;    /* records arrived, flush asked, or stop */
    pthread_cond_t cond_space;     /* the writer freed ring space */
    pthread_cond_t cond_committed; /* a commit happened */
    uint8_t *buf;
    uint64_t cap;
    uint64_t head, tail; /* bytes written / freed, monotonic */
    uint64_t wake_bytes; /* producers wake an idle writer past this much queued */
    uint64_t tickets, committed_ticket, flush_ticket;
    uint64_t next_seq;       /* last seq given */
    uint64_t committed_seq;  /* last seq committed */
    uint64_t indexed_seq;    /* last seq whose postings are in the ix_* databases (at open) */
    uint8_t chain_head[32];  /* head after the last commit (writer thread only) */
    uint64_t inflight_bytes; /* blob bytes queued: raw while waiting to be compressed, then
                                stored bytes until committed */
    uint64_t blob_zbytes;    /* stored blob bytes (values) committed or queued; a blob waiting to
                                be compressed counts raw_len + STORE_BLOB_HDR */
    uint64_t waits;
    bool writer_idle;
    bool stop;
    int state; /* 0, or the error that stopped the writer */
    char state_msg[256];
    store_write_stats stats;
    pthread_t thread;
    bool thread_started;
    /* compression threads (store_compress.c); jobs, cond_jobs and cstop under mu */
    pthread_cond_t cond_jobs; /* a job arrived, or cstop */
    rec_blob *jobs, *jobs_last;
    bool cstop;
    pthread_t *cthreads;
    int ncthreads;
    int zstd_workers; /* for a large blob: min(4, CPUs online), set before the threads start */
    intern_table strings;
    blob_set blobs;
    int lock_fd; /* writer.lock, flock'd */
};

/* store_intern.c */
int store_intern_init(intern_table *t, MDB_env *env, MDB_dbi strings, uint32_t count);
void store_intern_free(intern_table *t);
/* id of a string, interned on first sight; 0 when the table is full (string stays inline) */
uint32_t store_intern(store_queue *q, const char *s, size_t n);

int store_blobset_init(blob_set *b);
void store_blobset_free(blob_set *b);
/* 1: the blob is stored or queued already; 0: claimed, the caller stores it; <0: error */
int store_blob_claim(store_queue *q, const uint8_t sha[32]);
void store_blob_unclaim(store_queue *q, const uint8_t sha[32], int unused);

/* store_write.c */
int store_blob_gap(store *s, const char *reason, size_t len, const uint8_t sha[32],
                   const char *what, int code);

/* store_compress.c: the compression threads. start: min(4, CPUs online) of them, 0 or an error
 * (none left running). stop: after the writer stopped; each thread ends after its current job,
 * jobs not started are left in the ring, freed by store_ring_free_blobs. */
int store_compress_start(store *s);
void store_compress_stop(store *s);
/* Queue r (q->mu held; r is a published BLOB_PENDING record). */
void store_compress_queue(store_queue *q, rec_blob *r);
/* Fault injection for tests: when set to N > 0, the Nth compression from then on fails as out of
 * memory (counted down atomically by the compression threads). */
extern int store_compress_fault;

/* store_writer.c: free the bytes of the blob records in ring positions [from, to) (no
 * compressor may hold one of them); returns how many bytes that freed. */
uint64_t store_ring_free_blobs(store_queue *q, uint64_t from, uint64_t to);

#endif
