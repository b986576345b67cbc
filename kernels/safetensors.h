/* safetensors: the checkpoint format of Hugging Face (https://github.com/huggingface/safetensors),
 * read strictly and written deterministically. The byte layout and the rules the reader enforces
 * open safetensors.c.
 *
 * Reading: safetensors_open() maps a file read-only and validates the whole header before it
 * returns (every tensor's dtype, shape and byte range; the ranges cover the data buffer exactly,
 * with no hole and no overlap); afterwards every tensor's `data` lies inside the file and holds
 * exactly `nbytes` bytes. A file that fails any check gives PTB_ECORRUPT and a message naming the
 * tensor and the reason. Checkpoints come from agents and the network: nothing in them is
 * trusted.
 *
 * Writing: safetensors_write() lays the tensors out sorted by name, with a header whose keys are
 * sorted, so the same tensors always give the same bytes (replay compares checkpoints byte for
 * byte). The file appears at its path whole or not at all (written beside it, fsynced, renamed).
 *
 * Sharded checkpoints: a directory with `model.safetensors.index.json` and the shards it names,
 * opened as one set by safetensors_index_open() or safetensors_dir_open().
 *
 * Every fallible call returns 0 or a negative PTB_E* code (ptb_error.h) or -errno, and writes a
 * message into `eb` (may be NULL). */
#ifndef PTB_SAFETENSORS_H
#define PTB_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "ptb_error.h"

/* Limits of the reader (and the writer): a file over one of them is PTB_ECORRUPT. */
#define SAFETENSORS_HEADER_MAX 100000000u /* bytes of JSON header, as the official library */
#define SAFETENSORS_TENSORS_MAX 1000000u  /* tensors in one file */
#define SAFETENSORS_NAME_MAX 4096u        /* bytes of a tensor name */
#define SAFETENSORS_RANK_MAX 16u          /* dimensions of a tensor */
#define SAFETENSORS_SHARDS_MAX 16384u     /* files of a sharded checkpoint */

/* Element types. The numbers are ours (stable, only grow); the names are the format's. */
typedef enum safetensors_dtype {
    SAFETENSORS_BOOL = 0,
    SAFETENSORS_U8,
    SAFETENSORS_I8,
    SAFETENSORS_F8_E5M2,
    SAFETENSORS_F8_E4M3,
    SAFETENSORS_I16,
    SAFETENSORS_U16,
    SAFETENSORS_F16,
    SAFETENSORS_BF16,
    SAFETENSORS_I32,
    SAFETENSORS_U32,
    SAFETENSORS_F32,
    SAFETENSORS_F64,
    SAFETENSORS_I64,
    SAFETENSORS_U64,
    SAFETENSORS_C64,     /* complex64: two F32 */
    SAFETENSORS_F8_E8M0, /* 8-bit exponent-only scale (MX formats) */
    SAFETENSORS_DTYPE_COUNT
} safetensors_dtype;

/* Bytes per element; 0 for a value outside the enum. */
size_t safetensors_dtype_size(safetensors_dtype dt);

/* The format's name ("F32", "BF16"...); "?" for a value outside the enum. Static storage. */
const char *safetensors_dtype_name(safetensors_dtype dt);

/* Name -> dtype (exact, case-sensitive). PTB_ENOTFOUND for a name the format does not define or
 * this version does not know (the sub-byte F4, F6_* types). */
int safetensors_dtype_parse(const char *name /* borrowed */, safetensors_dtype *out);

/* One tensor. In a file handle everything it points to is borrowed from the handle and valid
 * until safetensors_close(); as input of safetensors_write() it is the caller's. */
typedef struct safetensors_tensor {
    const char *name; /* UTF-8, NUL-terminated, non-empty, at most SAFETENSORS_NAME_MAX bytes */
    safetensors_dtype dtype;
    uint32_t rank;                        /* 0 = scalar (one element) */
    uint64_t shape[SAFETENSORS_RANK_MAX]; /* shape[0..rank) */
    uint64_t nbytes;                      /* product(shape) * dtype size */
    const void *data; /* nbytes bytes; in a file, inside the mapping and NOT aligned in general
                         (the format only pads the header so that the buffer starts at a multiple
                         of 8; a tensor may begin anywhere): copy, or use memcpy-based loads */
} safetensors_tensor;

/* An open checkpoint file (opaque). */
typedef struct safetensors_file safetensors_file;

/* Map the file at `path` read-only and validate it. On success *out is the caller's, freed with
 * safetensors_close(). Errors: -errno from open/mmap, PTB_EINVAL (not a regular file),
 * PTB_ECORRUPT (message: path, tensor, reason), PTB_ENOMEM. As with any mapping, a file truncated by someone else while it is open
 * raises SIGBUS on access: don't open files that others are still writing. */
int safetensors_open(const char *path /* borrowed */, safetensors_file **out, ptb_errbuf *eb);

/* The same on bytes in memory: `buf` (len bytes) is borrowed and must outlive the handle (the
 * tensors' data point into it). Used by tests and the fuzzer. */
int safetensors_parse(const void *buf, size_t len, safetensors_file **out, ptb_errbuf *eb);

/* Unmap and free; NULL is fine. Every pointer obtained from the handle dies with it. */
void safetensors_close(safetensors_file *f);

/* Tensors, sorted by name (strcmp, i.e. by UTF-8 bytes). */
size_t safetensors_count(const safetensors_file *f);
/* i < count; borrowed, valid until safetensors_close(). NULL when i is out of range. */
const safetensors_tensor *safetensors_at(const safetensors_file *f, size_t i);
/* Binary search by exact name; NULL when absent. Borrowed, valid until safetensors_close(). */
const safetensors_tensor *safetensors_find(const safetensors_file *f, const char *name);

/* The value of __metadata__[key], or NULL. Borrowed, valid until safetensors_close(). */
const char *safetensors_metadata(const safetensors_file *f, const char *key);
/* All of __metadata__ as key, value, key, value, ..., NULL, sorted by key: the very form that
 * safetensors_write() takes. Never NULL. Borrowed, valid until safetensors_close(). */
const char *const *safetensors_metadata_all(const safetensors_file *f);

/* Write `n` tensors (caller's; names unique) to `path`, with metadata `meta_kv` (NULL, or key,
 * value, ..., NULL; caller's; keys unique). Output: tensors sorted by name, header keys sorted,
 * compact JSON padded with spaces so that the data buffer starts at a multiple of 8; the same
 * input in any order gives the same bytes. Written to "<path>.tmp", fsynced, renamed onto
 * `path`, directory fsynced; on failure nothing is left at either name. Errors: PTB_EINVAL
 * (duplicate or invalid name, bad dtype, rank over the max, nbytes not dtype * shape, NULL data
 * with nbytes > 0, a size over the format's limits, a path too long; the message says which
 * tensor), PTB_ENOMEM, -errno. */
int safetensors_write(const char *path /* borrowed */, const safetensors_tensor *tensors, size_t n,
                      const char *const *meta_kv, ptb_errbuf *eb);

/* ---- sharded checkpoints ---------------------------------------------------------------------
 * A set is one or more files seen as one list of tensors, sorted by name across files. */
typedef struct safetensors_set safetensors_set;

/* Open `dir`/model.safetensors.index.json ({"metadata": {...}, "weight_map": {"tensor": "shard
 * file name", ...}}) and every shard it names. Shard names must be plain file names inside dir
 * (no "/", not "." or ".."; a shard that is a symbolic link is followed, as in the Hugging Face
 * cache, so the directory itself must be trusted); every tensor of weight_map must be in the
 * shard it names, and every tensor of a shard in weight_map, in that shard only; at most
 * SAFETENSORS_SHARDS_MAX shards and SAFETENSORS_TENSORS_MAX tensors in all. PTB_ECORRUPT
 * otherwise (-errno for a shard that cannot be opened). "metadata" must be an object and is not
 * read further. On success *out is the caller's, freed with safetensors_set_close(). */
int safetensors_index_open(const char *dir /* borrowed */, safetensors_set **out, ptb_errbuf *eb);

/* `dir`/model.safetensors when it exists, else the index (above); PTB_ENOTFOUND when neither. */
int safetensors_dir_open(const char *dir /* borrowed */, safetensors_set **out, ptb_errbuf *eb);

/* Close every shard and free; NULL is fine. */
void safetensors_set_close(safetensors_set *s);

size_t safetensors_set_count(const safetensors_set *s);
/* Borrowed, valid until safetensors_set_close(); NULL when i is out of range / name absent. */
const safetensors_tensor *safetensors_set_at(const safetensors_set *s, size_t i);
const safetensors_tensor *safetensors_set_find(const safetensors_set *s, const char *name);

#endif
