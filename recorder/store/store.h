/* The ptb run store: an append-only event log in one LMDB environment (a directory, RUN.ptb/).
 *
 * Layout, key encodings and value formats: schemas/store.md. In short: `events` maps an 8-byte
 * big-endian seq to the protobuf bytes of a ptb.v1.Event (seq omitted, interned strings replaced
 * by ids), `blobs` maps SHA-256 to the content (zstd, zlib or as is), `strings`/`strings_r` intern paths, hosts and
 * names, the `ix_*` databases hold posting lists per (value, first seq), `batches` holds the
 * time range of every committed batch, `chain` the hash chain, `meta` the run metadata.
 *
 * Writing: any number of producer threads call store_append() / store_blob_give(); records go
 * through one bounded queue to one writer thread, which commits a batch every `batch_events`
 * events or `batch_ms` milliseconds (group commit). A full queue blocks the producer (never
 * drops), unless it asked for STORE_APPEND_NOWAIT. Each commit extends the hash chain. Blobs are
 * compressed on the store's compression threads, off the producer's thread; their place in the
 * queue is taken when they are given, so they are committed in order with the events.
 *
 * Reading: a read transaction is a consistent snapshot; cursors iterate by seq, by time range,
 * or by an index. A store may be read while it is written (readers see committed batches).
 *
 * Threads: store_append, store_blob_give, store_blob_put, store_flush are thread-safe. A store_txn and its
 * cursors belong to one thread at a time. */
#ifndef PTB_STORE_H
#define PTB_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event_type.h"
#include "ptb_error.h"

/* Paths, hosts and names up to this many bytes are interned and indexed; longer ones stay inline
 * in their event, are not indexed, and queries find them only by scanning. */
#define STORE_STRING_MAX 65536

typedef struct store store;
typedef struct store_txn store_txn;
typedef struct store_cursor store_cursor;

/* ------------------------------------------------------------------ options */

typedef enum store_sync {
    STORE_SYNC_NONE = 0, /* no fsync; survives a crash of the process, not of the machine */
    STORE_SYNC_DATA = 1, /* fdatasync data at each commit, meta lazily (consistent, may lose the
                            last batch on power loss) -- the default */
    STORE_SYNC_FULL = 2, /* fully durable commits */
} store_sync;

/* How blob contents are stored (byte 0 of a `blobs` value, schemas/store.md). */
typedef enum store_codec {
    STORE_CODEC_NONE = 0, /* as is */
    STORE_CODEC_ZLIB = 1, /* zlib (RFC 1950), levels 1..9 */
    STORE_CODEC_ZSTD = 2, /* zstd (RFC 8878), levels 1..19 */
} store_codec;

typedef struct store_options {
    uint32_t batch_events;   /* commit after this many events (default 65536) */
    uint32_t batch_ms;       /* ... or this many ms after the first uncommitted one (default 50) */
    uint32_t index_events;   /* write index postings every this many events (default 1M) */
    uint32_t index_ms;       /* ... or this many ms (default 1000), and at close */
    size_t queue_bytes;      /* bound of the producer queue (default 64 MiB) */
    size_t event_max;        /* largest encoded event (default 4 MiB) */
    size_t blob_max;         /* largest blob, uncompressed (default 1 GiB) */
    uint64_t blob_budget;    /* total compressed blob bytes a store may hold (default 64 GiB) */
    size_t map_size_initial; /* first LMDB map size (default 1 GiB); grows by itself */
    size_t map_size_max;     /* largest map size (default 1 TiB) */
    store_sync sync;         /* default STORE_SYNC_DATA */
    store_codec blob_codec;  /* blob compression (default STORE_CODEC_ZSTD); a blob that does not
                                shrink is stored as is whatever the codec */
    int blob_level;          /* its level (default 1): zlib 1..9, zstd 1..19; ignored for none */
} store_options;

/* Fill *opt with the defaults above. */
void store_options_default(store_options *opt);

/* ------------------------------------------------------------------ open / close */

enum {
    STORE_RDONLY = 1 << 0,  /* read only; other flags ignored */
    STORE_CREATE = 1 << 1,  /* create the directory and store if missing */
    STORE_EXCL = 1 << 2,    /* with CREATE: fail with PTB_EEXIST if a store is there */
    STORE_NOCHECK = 1 << 3, /* with RDONLY: skip the structural check of data.mdb (below) */
};

/* Open the store in directory dir. opt may be NULL (defaults; ignored for STORE_RDONLY).
 * A read-only open first checks the page structure of data.mdb (lmdb_check.h: liblmdb keeps no
 * checksums and can crash on a damaged file), about 0.2 s per GB, unless a writer has the store
 * open (its file changes under the check; readers then rely on the fault guard alone), the
 * caller passes STORE_NOCHECK, or the file is unchanged (size and mtime) since a check that
 * passed, as noted in the store's `checked` file. `ptb verify` always checks.
 * Writers start the writer thread; one writer per store at a time (PTB_ELOCKED otherwise).
 * On failure *out is still set when the handle could be allocated, so store_errmsg() can say
 * why; close it with store_close(). */
int store_open(const char *dir, const store_options *opt, unsigned flags, store **out);

/* Commit everything queued, stop the writer and free the handle. Returns the first error the
 * writer met (the store on disk is consistent either way). s may be NULL. */
int store_close(store *s);

/* Last error message of the handle; borrowed, valid until the next call on s. */
const char *store_errmsg(const store *s);

/* Directory of the store; borrowed, valid until store_close. */
const char *store_dir(const store *s);

/* ------------------------------------------------------------------ writing */

enum {
    STORE_APPEND_NOWAIT = 1 << 0, /* return PTB_EBUDGET-free EAGAIN (-EAGAIN) when the queue is
                                     full instead of waiting (pcap uses this and counts drops) */
};

/* Append one event. ev is borrowed for the call only (copied). ev->seq is ignored: the store
 * assigns the next seq, returned in *seq_out (may be NULL). ts_ns == 0 is filled with the
 * current CLOCK_REALTIME, mono_ns == 0 with CLOCK_MONOTONIC. Errors: PTB_EINVAL (a kernel
 * batch that store_kernels_begin refuses), PTB_ETOOBIG (encoded event over event_max), PTB_ECLOSED / PTB_ENOSPC (the writer stopped), -EAGAIN (NOWAIT, queue full),
 * PTB_EREADONLY. */
int store_append(store *s, const ptb_event *ev, unsigned flags, uint64_t *seq_out);

/* Give a blob to the store: data (len bytes, from malloc; NULL when len is 0) whose SHA-256 the
 * caller computed. The store owns data from the call on, whatever it returns (it frees it with
 * free()). Returns once the blob is queued: it is compressed on the store's compression threads
 * (store_options.blob_codec) and committed in queue order, so an event appended after this call
 * returns is never committed before the blob. Deduplicated by sha256: a blob already stored or
 * queued is not stored again (0). Bytes waiting to be compressed count in the queue's bound:
 * the call waits while too many are in flight. The budget is charged len + 9 bytes here and
 * corrected to the stored size once compressed. Over blob_max: PTB_ETOOBIG; over the budget:
 * PTB_EBUDGET; in both cases the store appends a `gap` event (source "blob", reason
 * "blob_cap"/"blob_budget", size, sha256, what) so the omission is on record. what (may be NULL,
 * borrowed for the call) names the content, e.g. its path. Other errors: PTB_EINVAL,
 * PTB_EREADONLY, and the writer's error once it stopped (a failed compression stops it too). */
int store_blob_give(store *s, void *data, size_t len, const uint8_t sha256[32], const char *what);

/* Store a copy of a blob: its SHA-256 into sha256_out (32 bytes, filled also on PTB_ETOOBIG and
 * PTB_EBUDGET), then as store_blob_give. data is borrowed for the call. */
int store_blob_put(store *s, const void *data, size_t len, const char *what,
                   uint8_t sha256_out[32]);

/* Set a run metadata key (UTF-8, <= 200 bytes) to a value (<= 64 KiB); committed with the next
 * batch. Keys starting with "ptb." are reserved for the store. */
int store_meta_set(store *s, const char *key, const char *value);

/* Wait until everything appended before this call is committed. Returns the writer's error if
 * it stopped. */
int store_flush(store *s);

/* Counters of the writer (approximate while it runs). */
typedef struct store_write_stats {
    uint64_t events;     /* events committed */
    uint64_t batches;    /* commits */
    uint64_t blobs_new;  /* blobs stored */
    uint64_t blobs_dup;  /* blobs already present */
    uint64_t blob_bytes; /* stored blob bytes (values, headers included) */
    uint64_t blobs_mt;   /* blobs compressed by zstd's own worker threads */
    uint64_t map_grows;  /* map size increases */
    uint64_t waits;      /* producer waits on a full queue */
} store_write_stats;
void store_write_stats_get(store *s, store_write_stats *out);

/* ------------------------------------------------------------------ reading */

/* Begin a read snapshot. *out is freed with store_txn_end(). */
int store_txn_begin(store *s, store_txn **out);
void store_txn_end(store_txn *t);

/* Highest committed seq in the snapshot (0 for an empty store). */
uint64_t store_txn_last_seq(store_txn *t);

/* The indexes. Keys: TYPE the body case; EXEC the exec_id; PATH/HOST/TOOL/KERNEL a string id
 * (see store_string_lookup). */
typedef enum store_index {
    STORE_IX_TYPE = 0,
    STORE_IX_EXEC,
    STORE_IX_PATH,   /* file paths (path, new_path), proc.exec exe, checkpoint path */
    STORE_IX_HOST,   /* host names and IP addresses of net.* events */
    STORE_IX_TOOL,   /* tool.call name */
    STORE_IX_KERNEL, /* gpu.kernel name */
    STORE_IX_COUNT
} store_index;

const char *store_index_name(store_index ix);

/* Cursor ranges. A cursor yields events in increasing seq order within [seq_from, seq_to]
 * (0 = unbounded on that side). With by_index, only events posted under (index, key); with
 * by_time, only events of batches whose time span meets [ts_from, ts_to] (the caller still
 * checks each event's ts_ns: batches are a coarse filter). */
typedef struct store_range {
    uint64_t seq_from, seq_to;
    bool by_index;
    store_index index;
    uint64_t key;
    bool by_time;
    int64_t ts_from, ts_to;
} store_range;

int store_cursor_open(store_txn *t, const store_range *r, store_cursor **out);
void store_cursor_close(store_cursor *c);

/* Next event: *ev is borrowed, valid until the next call on c (decoded into the cursor's arena,
 * interned strings resolved, seq set; a kernel batch launch by launch, see below). Returns 0, PTB_ENOTFOUND at the end, PTB_ECORRUPT for an
 * event that does not decode (the cursor can go on past it: the next call moves on). */
int store_cursor_next(store_cursor *c, const ptb_event **ev);

/* Like store_cursor_next but only yields the seq, without reading the event. */
int store_cursor_next_seq(store_cursor *c, uint64_t *seq);

/* Like store_cursor_next but yields the stored bytes undecoded (borrowed, valid until
 * store_txn_end); decode them with store_event_decode when needed. */
int store_cursor_next_raw(store_cursor *c, uint64_t *seq, const void **data, size_t *len);

/* Decode stored bytes of event seq (from store_event_raw or store_cursor_next_raw) into t's
 * arena; *ev valid until the next store_event_get/store_event_decode on t or store_txn_end.
 * PTB_ECORRUPT for bytes that do not decode. */
int store_event_decode(store_txn *t, uint64_t seq, const void *data, size_t len,
                       const ptb_event **ev);

/* A buffer that decoded events live in until it is reset or freed, for callers that keep many
 * events at once (the query executor keeps a chunk's matches). */
typedef struct store_evbuf store_evbuf;
int store_evbuf_new(store_evbuf **out);
void store_evbuf_reset(store_evbuf *b); /* every event decoded into b becomes invalid */
void store_evbuf_free(store_evbuf *b);

/* Decode stored bytes of event seq into b; *ev valid until store_evbuf_reset/free(b). */
int store_event_decode_buf(store_txn *t, uint64_t seq, const void *data, size_t len, store_evbuf *b,
                           const ptb_event **ev);

/* Kernel batches. The GPU receiver stores many launches of one process as one gpu.kernel_batch
 * event; readers see launches one by one. store_cursor_next does that itself: it yields every
 * launch of a batch as a gpu.kernel event with the batch's seq, envelope and `sub` = its
 * position (1..count), ts_ns its start. The other reading calls (store_cursor_next_raw,
 * store_event_get, store_event_decode*) give the batch as stored; expand it with
 * store_kernels_begin/next. Index and time lookups find a batch under every name and time of
 * its launches, and type gpu.kernel: a caller still checks each launch. */
#define STORE_KERNELS_MAX 65536     /* launches in one batch */
#define STORE_KERNELS_NAMES_MAX 250 /* distinct names in one batch (each one an index posting) */
typedef struct store_kernels {
    const ptb_event *batch;
    uint32_t i;
    int64_t start;
    uint32_t corr;
    Ptb__V1__GpuKernel kernel;
    ptb_event ev;
} store_kernels;

/* Start reading the launches of batch ev (borrowed while it is read). PTB_EINVAL when ev is not
 * a gpu.kernel_batch; PTB_ECORRUPT when its columns disagree (a count over STORE_KERNELS_MAX,
 * more names than STORE_KERNELS_NAMES_MAX, a column neither empty nor count long, a name index
 * past the names). */
int store_kernels_begin(const ptb_event *ev, store_kernels *it);

/* The next launch as a gpu.kernel event: *out lives in it (strings borrowed from the batch)
 * until the next call. Returns 0, or PTB_ENOTFOUND after the last. */
int store_kernels_next(store_kernels *it, const ptb_event **out);

/* A copy of a gpu.kernel event (a launch from store_kernels_next) into b, strings included;
 * valid until store_evbuf_reset/free(b). */
int store_kernel_copy_buf(const ptb_event *ev, store_evbuf *b, const ptb_event **out);

/* The time span of an event: ts_ns, or for a kernel batch its earliest and latest start. Returns
 * 0, or store_kernels_begin's error for a batch it refuses (*lo = *hi = ts_ns then). */
int store_event_span(const ptb_event *ev, int64_t *lo, int64_t *hi);

/* The key an event is posted under in STORE_IX_TYPE: its body case, gpu.kernel for a batch. */
uint64_t store_type_key(uint32_t body_case);

/* One event by seq; *ev valid until the next call on t with the same kind, or store_txn_end. */
int store_event_get(store_txn *t, uint64_t seq, const ptb_event **ev);

/* The stored (encoded) bytes of one event; borrowed, valid until store_txn_end. */
int store_event_raw(store_txn *t, uint64_t seq, const void **data, size_t *len);

/* Interned strings. lookup: id of a string (PTB_ENOTFOUND when the store never saw it).
 * get: *str borrowed (valid until store_txn_end), not NUL-terminated. */
int store_string_lookup(store_txn *t, const char *str, size_t len, uint32_t *sid);
int store_string_get(store_txn *t, uint32_t sid, const char **str, size_t *len);
/* Number of interned strings; ids are 1..count. */
uint32_t store_string_count(store_txn *t);

/* Blob: decompressed bytes into *data (caller frees with free()). PTB_ENOTFOUND if absent,
 * PTB_ECORRUPT (the reason in store_errmsg) if its codec is unknown, it does not decompress to
 * its recorded length, or its hash differs. */
int store_blob_get(store_txn *t, const uint8_t sha256[32], void **data, size_t *len);
bool store_blob_exists(store_txn *t, const uint8_t sha256[32]);

/* Visit every blob key; stops early when fn returns non-zero (returned as is). */
int store_blob_foreach(store_txn *t, int (*fn)(void *arg, const uint8_t sha256[32], size_t zlen),
                       void *arg);

/* Meta value of key; *val borrowed (valid until store_txn_end), not NUL-terminated. */
int store_meta_get(store_txn *t, const char *key, const char **val, size_t *len);

/* Visit every meta key/value (run metadata and the store's own "ptb.*" keys). */
int store_meta_foreach(store_txn *t,
                       int (*fn)(void *arg, const char *key, size_t klen, const char *val,
                                 size_t vlen),
                       void *arg);

/* Count of postings (events) under (index, key); exact, reads the posting lists. */
int store_index_count(store_txn *t, store_index ix, uint64_t key, uint64_t *count);

/* Visit the distinct keys of an index that have postings, with their event counts. */
int store_index_foreach_key(store_txn *t, store_index ix,
                            int (*fn)(void *arg, uint64_t key, uint64_t count), void *arg);

/* Summary of a store. */
typedef struct store_summary {
    uint64_t events;         /* last seq */
    uint64_t batches;        /* committed batches (chain length) */
    int64_t ts_min, ts_max;  /* time span of the events (0 when empty) */
    uint64_t blobs;          /* number of blobs */
    uint64_t blob_zbytes;    /* compressed bytes of blobs */
    uint64_t strings;        /* interned strings */
    uint64_t file_bytes;     /* size of data.mdb on disk */
    uint32_t schema_version; /* of the writer */
    uint8_t chain_head[32];
} store_summary;
int store_summary_get(store_txn *t, store_summary *out);

/* ------------------------------------------------------------------ verification */

typedef struct store_verify_report {
    uint64_t events, batches, blobs, strings, postings;
    uint64_t problems; /* number of problems found; 0 = store verifies */
    char first[512];   /* the first problem, in words */
} store_verify_report;

/* Check the store in dir, read-only: LMDB page structure, every event decodes, seqs dense, hash
 * chain recomputed, blob hashes, strings, and every index against the events. progress (may be
 * NULL) is called now and then with (done, total) events. Returns 0 when it verifies,
 * PTB_ECHAIN/PTB_ECORRUPT when not (report filled), other codes when it could not check. */
int store_verify(const char *dir, store_verify_report *rep,
                 void (*progress)(void *arg, uint64_t done, uint64_t total), void *arg);

/* ------------------------------------------------------------------ small helpers */

/* Current CLOCK_REALTIME / CLOCK_MONOTONIC in ns. */
int64_t store_now_realtime_ns(void);
int64_t store_now_mono_ns(void);

/* Length of the valid UTF-8 sequence at s[0..n) (1..4), or 0 when it is not one (overlong
 * forms, surrogates, code points past U+10FFFF, stray or missing continuation bytes). */
size_t store_utf8_len(const unsigned char *s, size_t n);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void store_hex(const uint8_t *bytes, size_t n, char *out);
/* The reverse: s exactly 2n lower-case hex digits into out[0..n); false otherwise. */
bool store_unhex(const char *s, uint8_t *out, size_t n);

#endif
