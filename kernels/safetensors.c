/* safetensors: strict reader, deterministic writer, sharded sets. The API is in safetensors.h.
 *
 * File layout (https://github.com/huggingface/safetensors, "Format"):
 *   off    size  content
 *     0       8  N: u64 little-endian, the length of the header in bytes
 *     8       N  header: a UTF-8 JSON object, possibly padded at its end with spaces (0x20)
 *   8+N    rest  data buffer: the tensors' bytes, back to back, up to the end of the file
 *
 * Header (__metadata__ is optional):
 *   {"<tensor name>": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {"<key>": "<value>", ...}}
 *
 * A tensor is the bytes [begin, end) of the data buffer: its elements row-major, each
 * little-endian. shape [] is a scalar (one element); a 0 in shape makes an empty tensor.
 *
 * Rules the reader enforces; each failure is PTB_ECORRUPT with a message naming the tensor and the
 * reason. They are the official library's (safetensors/src/tensor.rs: read_metadata, validate),
 * stricter on the form of the JSON, which the official one leaves to serde:
 *   - 2 <= N <= SAFETENSORS_HEADER_MAX and N <= file size - 8; the header starts with '{';
 *   - the header is one JSON object: valid UTF-8, no duplicate key, only whitespace after it;
 *   - __metadata__, when present, is an object whose values are strings;
 *   - every other key is a tensor name of 1..SAFETENSORS_NAME_MAX bytes whose value is an object
 *     with exactly the members "dtype" (a name this version knows), "shape" (an array of at most
 *     SAFETENSORS_RANK_MAX non-negative integers) and "data_offsets" (two non-negative integers,
 *     begin <= end);
 *   - product(shape) * dtype size does not overflow u64 and equals end - begin;
 *   - sorted by (begin, end), the tensors tile the data buffer: the first begins at 0, each one
 *     where the previous one ends (no hole, no overlap; empty tensors may share an offset), and
 *     the last one ends at the end of the file;
 *   - at most SAFETENSORS_TENSORS_MAX tensors.
 * jansson holds JSON integers as signed 64-bit and fails a bigger one as invalid JSON: that only
 * rejects files with more than 8 EiB of data. jansson refuses "\u0000" in strings, so names and
 * metadata are C strings; its nesting depth is bounded (2048).
 *
 * The handle owns one arena with every name and metadata string, the tensor table sorted by name
 * and the metadata table sorted by key; the JSON tree is freed before open returns. Tensor data
 * is never copied: `data` points into the mapping (or the caller's buffer).
 *
 * The writer emits the canonical form of what the reader accepts: tensors laid out in the order of
 * their names, the header compact with keys sorted (jansson JSON_SORT_KEYS|JSON_COMPACT), padded
 * with spaces so that the data buffer starts at a multiple of 8 (as the official writer does). */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_META_KEY "__metadata__"
#define ST_INDEX_NAME "model.safetensors.index.json"
#define ST_SINGLE_NAME "model.safetensors"
/* names in messages are cut to this many bytes: the message buffer is 512 */
#define ST_Q "'%.80s'"
/* `return ST_BAD(fmt, ...)`: PTB_ECORRUPT with a message into eb (every reader has an eb) */
#define ST_BAD(...) ptb_errf(eb, PTB_ECORRUPT, __VA_ARGS__)
#define ST_U(x) ((unsigned long long)(x)) /* for %llu */

struct safetensors_file {
    void *map; /* owned mapping of map_len bytes; NULL when the bytes are the caller's (parse) */
    size_t map_len;
    size_t n;
    safetensors_tensor *tensors; /* owned, n, sorted by name; names in `strings` */
    const char **meta;           /* owned, key, value, ..., NULL sorted by key; in `strings` */
    size_t nmeta;
    char *strings; /* owned arena of every name, metadata key and value */
};

struct safetensors_set {
    size_t nfiles;
    safetensors_file **files; /* owned, nfiles handles */
    size_t n;
    const safetensors_tensor **tensors; /* owned array of n, sorted by name; borrowed from files */
};

/* ---- dtypes ---------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    size_t size;
} st_dtypes[SAFETENSORS_DTYPE_COUNT] = {
    [SAFETENSORS_BOOL] = {"BOOL", 1},       [SAFETENSORS_U8] = {"U8", 1},
    [SAFETENSORS_I8] = {"I8", 1},           [SAFETENSORS_F8_E5M2] = {"F8_E5M2", 1},
    [SAFETENSORS_F8_E4M3] = {"F8_E4M3", 1}, [SAFETENSORS_I16] = {"I16", 2},
    [SAFETENSORS_U16] = {"U16", 2},         [SAFETENSORS_F16] = {"F16", 2},
    [SAFETENSORS_BF16] = {"BF16", 2},       [SAFETENSORS_I32] = {"I32", 4},
    [SAFETENSORS_U32] = {"U32", 4},         [SAFETENSORS_F32] = {"F32", 4},
    [SAFETENSORS_F64] = {"F64", 8},         [SAFETENSORS_I64] = {"I64", 8},
    [SAFETENSORS_U64] = {"U64", 8},         [SAFETENSORS_C64] = {"C64", 8},
    [SAFETENSORS_F8_E8M0] = {"F8_E8M0", 1},
};

size_t safetensors_dtype_size(safetensors_dtype dt)
{
    return (unsigned)dt < SAFETENSORS_DTYPE_COUNT ? st_dtypes[dt].size : 0;
}

const char *safetensors_dtype_name(safetensors_dtype dt)
{
    return (unsigned)dt < SAFETENSORS_DTYPE_COUNT ? st_dtypes[dt].name : "?";
}

int safetensors_dtype_parse(const char *name, safetensors_dtype *out)
{
    for (unsigned i = 0; name && i < SAFETENSORS_DTYPE_COUNT; i++)
        if (strcmp(name, st_dtypes[i].name) == 0) {
            *out = (safetensors_dtype)i;
            return 0;
        }
    return PTB_ENOTFOUND;
}

/* ---- reader ---------------------------------------------------------------------------------- */

typedef struct st_range {
    uint64_t begin, end;
    size_t i; /* index into the tensor table */
} st_range;

static int st_cmp_range(const void *pa, const void *pb)
{
    const st_range *a = pa, *b = pb;
    if (a->begin != b->begin)
        return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end)
        return a->end < b->end ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i); /* header order: messages are reproducible */
}

static int st_cmp_tensor(const void *a, const void *b)
{
    return strcmp(((const safetensors_tensor *)a)->name, ((const safetensors_tensor *)b)->name);
}

static int st_cmp_pair(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool st_json_u64(const json_t *v, uint64_t *out) /* a non-negative integer, or false */
{
    *out = (uint64_t)json_integer_value(v); /* 0 for a non-integer */
    return json_is_integer(v) && json_integer_value(v) >= 0;
}

/* One tensor entry: validate `v` and fill t (all but name and data) and r (all but i). */
static int st_tensor(const char *name, const json_t *v, safetensors_tensor *t, st_range *r,
                     ptb_errbuf *eb)
{
    if (!json_is_object(v))
        return ST_BAD("tensor " ST_Q ": entry is not an object", name);
    const json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape");
    const json_t *off = json_object_get(v, "data_offsets");
    const char *miss = !dt ? "dtype" : !sh ? "shape" : "data_offsets";
    if (!dt || !sh || !off)
        return ST_BAD("tensor " ST_Q ": no %s", name, miss);
    if (json_object_size(v) != 3)
        return ST_BAD("tensor " ST_Q ": members other than dtype, shape and data_offsets", name);
    const char *dts = json_is_string(dt) ? json_string_value(dt) : "(not a string)";
    if (safetensors_dtype_parse(dts, &t->dtype) != 0)
        return ST_BAD("tensor " ST_Q ": unknown dtype '%.40s'", name, dts);
    if (!json_is_array(sh) || json_array_size(sh) > SAFETENSORS_RANK_MAX)
        return ST_BAD("tensor " ST_Q ": shape is not an array of at most %u dimensions", name,
                      SAFETENSORS_RANK_MAX);
    t->rank = (uint32_t)json_array_size(sh);
    uint64_t n = 1;
    for (uint32_t d = 0; d < t->rank; d++) {
        if (!st_json_u64(json_array_get(sh, d), &t->shape[d]))
            return ST_BAD("tensor " ST_Q ": shape[%u] is not a non-negative integer", name, d);
        if (__builtin_mul_overflow(n, t->shape[d], &n))
            return ST_BAD("tensor " ST_Q ": shape overflows 64 bits", name);
    }
    if (__builtin_mul_overflow(n, (uint64_t)safetensors_dtype_size(t->dtype), &t->nbytes))
        return ST_BAD("tensor " ST_Q ": size in bytes overflows 64 bits", name);
    if (!json_is_array(off) || json_array_size(off) != 2 ||
        !st_json_u64(json_array_get(off, 0), &r->begin) ||
        !st_json_u64(json_array_get(off, 1), &r->end))
        return ST_BAD("tensor " ST_Q ": data_offsets is not two non-negative integers", name);
    if (r->begin > r->end)
        return ST_BAD("tensor " ST_Q ": data_offsets [%llu, %llu] are reversed (begin > end)", name,
                      ST_U(r->begin), ST_U(r->end));
    if (r->end - r->begin != t->nbytes)
        return ST_BAD("tensor " ST_Q ": size mismatch: %s%s has %llu bytes, data_offsets %llu",
                      name, safetensors_dtype_name(t->dtype), t->rank ? " by shape" : " scalar",
                      ST_U(t->nbytes), ST_U(r->end - r->begin));
    return 0;
}

/* Sorted by (begin, end), the ranges must tile [0, data_len). */
static int st_tile(const safetensors_tensor *tab, st_range *r, size_t n, uint64_t data_len,
                   ptb_errbuf *eb)
{
    qsort(r, n, sizeof *r, st_cmp_range);
    uint64_t at = 0;
    for (size_t k = 0; k < n; k++) {
        if (r[k].begin > at)
            return ST_BAD("tensor " ST_Q ": begins at %llu, leaving a hole at [%llu, %llu)",
                          tab[r[k].i].name, ST_U(r[k].begin), ST_U(at), ST_U(r[k].begin));
        if (r[k].begin < at)
            return ST_BAD("tensor " ST_Q ": data_offsets [%llu, %llu] overlap tensor " ST_Q,
                          tab[r[k].i].name, ST_U(r[k].begin), ST_U(r[k].end), tab[r[k - 1].i].name);
        at = r[k].end;
    }
    if (at < data_len)
        return ST_BAD("data buffer of %llu bytes: the tensors end at %llu, %llu bytes unused",
                      ST_U(data_len), ST_U(at), ST_U(data_len - at));
    if (at > data_len)
        return ST_BAD("tensor " ST_Q ": ends at %llu, past the data buffer of %llu bytes",
                      tab[r[n - 1].i].name, ST_U(at), ST_U(data_len));
    return 0;
}

/* Validate the parsed header `root` (hlen bytes of JSON) and fill f. data: the data buffer. */
static int st_header(safetensors_file *f, json_t *root, size_t hlen, const uint8_t *data,
                     uint64_t data_len, ptb_errbuf *eb)
{
    const char *key;
    size_t klen, m = 0;
    json_t *v, *meta = json_object_get(root, ST_META_KEY);
    size_t nt = json_object_size(root) - (meta != NULL);
    if (nt > SAFETENSORS_TENSORS_MAX)
        return ST_BAD("%zu tensors, over the limit of %u", nt, SAFETENSORS_TENSORS_MAX);
    if (meta && !json_is_object(meta))
        return ST_BAD(ST_META_KEY " is not an object");
    f->nmeta = json_object_size(meta);
    /* Every string kept (names, metadata), decoded and with its NUL, is no longer than its JSON
     * text with the quotes: the arena needs at most hlen bytes. */
    st_range *r = malloc((nt ? nt : 1) * sizeof *r);
    char *s = f->strings = malloc(hlen);
    f->tensors = calloc(nt ? nt : 1, sizeof *f->tensors);
    f->meta = calloc(2 * f->nmeta + 1, sizeof *f->meta);
    if (!r || !s || !f->tensors || !f->meta) {
        free(r);
        return ptb_errf(eb, PTB_ENOMEM, "out of memory for %zu tensors", nt);
    }
    int rc = 0;
    if (meta)
        json_object_keylen_foreach(meta, key, klen, v)
        {
            size_t vlen = json_string_length(v);
            if (!json_is_string(v) || strlen(key) != klen || strlen(json_string_value(v)) != vlen) {
                free(r);
                return ST_BAD(ST_META_KEY "[" ST_Q "] is not a string (without NUL)", key);
            }
            f->meta[m++] = memcpy(s, key, klen + 1);
            f->meta[m++] = memcpy(s + klen + 1, json_string_value(v), vlen + 1);
            s += klen + 1 + vlen + 1;
        }
    json_object_keylen_foreach(root, key, klen, v)
    {
        if (v == meta)
            continue;
        if (klen == 0 || klen > SAFETENSORS_NAME_MAX || strlen(key) != klen) {
            rc = ST_BAD("tensor " ST_Q ": name of %zu bytes: empty, over the limit or with a NUL",
                        key, klen);
            break;
        }
        safetensors_tensor *t = &f->tensors[f->n];
        if ((rc = st_tensor(key, v, t, &r[f->n], eb)) != 0)
            break;
        t->name = memcpy(s, key, klen + 1);
        s += klen + 1;
        r[f->n].i = f->n;
        f->n++;
    }
    if (rc == 0)
        rc = st_tile(f->tensors, r, f->n, data_len, eb);
    for (size_t k = 0; rc == 0 && k < f->n; k++)
        f->tensors[r[k].i].data = data + r[k].begin; /* inside: the ranges tile the buffer */
    free(r);
    qsort(f->tensors, f->n, sizeof *f->tensors, st_cmp_tensor);
    qsort(f->meta, f->nmeta, 2 * sizeof *f->meta, st_cmp_pair);
    return rc;
}

static int st_parse(safetensors_file *f, const uint8_t *p, size_t len, ptb_errbuf *eb)
{
    if (len < 8)
        return ST_BAD("file of %zu bytes, shorter than the header length", len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | p[i];
    const char *why = hlen > SAFETENSORS_HEADER_MAX ? "over the limit" : "past the end of the file";
    if (hlen < 2 || hlen > SAFETENSORS_HEADER_MAX || hlen > len - 8)
        return ST_BAD("header length %llu: %s (file of %zu bytes, limit %u)", ST_U(hlen),
                      hlen < 2 ? "too small" : why, len, SAFETENSORS_HEADER_MAX);
    if (p[8] != '{')
        return ST_BAD("header does not start with '{' (byte 0x%02x)", p[8]);
    json_error_t je;
    json_t *root = json_loadb((const char *)p + 8, hlen, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return ST_BAD("header is not valid JSON: %s (at byte %d)", je.text, je.position);
    int rc = json_is_object(root) ? st_header(f, root, hlen, p + 8 + hlen, len - 8 - hlen, eb)
                                  : ST_BAD("header is not a JSON object");
    json_decref(root);
    return rc;
}

int safetensors_parse(const void *buf, size_t len, safetensors_file **out, ptb_errbuf *eb)
{
    if (!out || (!buf && len))
        return ptb_errf(eb, PTB_EINVAL, "safetensors_parse: NULL argument");
    *out = NULL;
    safetensors_file *f = calloc(1, sizeof *f);
    if (!f)
        return ptb_errf(eb, PTB_ENOMEM, "out of memory");
    int rc = st_parse(f, buf, len, eb);
    if (rc == 0)
        *out = f;
    else
        safetensors_close(f);
    return rc;
}

/* Map dfd/name (a regular file of min..max bytes) read-only: *m is the caller's (munmap, *len).
 * O_NONBLOCK: opening a FIFO does not wait (it does nothing to regular files). */
static int st_map(int dfd, const char *name, const char *label, uint64_t min, uint64_t max,
                  void **m, size_t *len, ptb_errbuf *eb)
{
    struct stat st;
    int rc = 0, fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 || fstat(fd, &st) != 0)
        rc = ptb_errf(eb, -errno, "%s: %s", label, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = ptb_errf(eb, PTB_EINVAL, "%s: not a regular file", label);
    else if ((uint64_t)st.st_size < min || (uint64_t)st.st_size > max) /* mmap of 0 fails */
        rc = ST_BAD("%s: file of %lld bytes, not in [%llu, %llu]", label, (long long)st.st_size,
                    ST_U(min), ST_U(max));
    else if ((*m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0)) == MAP_FAILED)
        rc = ptb_errf(eb, -errno, "%s: mmap: %s", label, strerror(errno));
    else
        *len = (size_t)st.st_size;
    if (fd >= 0)
        close(fd);
    return rc;
}

/* safetensors_open of dfd/name; label names the file in messages. */
static int st_open_at(int dfd, const char *name, const char *label, safetensors_file **out,
                      ptb_errbuf *eb)
{
    void *m = NULL;
    size_t len = 0;
    int rc = st_map(dfd, name, label, 8, SIZE_MAX, &m, &len, eb);
    if (rc != 0)
        return rc;
    if ((rc = safetensors_parse(m, len, out, eb)) != 0) {
        munmap(m, len);
        if (eb) { /* "label: " before the message */
            char msg[sizeof eb->msg];
            memcpy(msg, eb->msg, sizeof msg);
            ptb_errf(eb, rc, "%s: %s", label, msg);
        }
        return rc;
    }
    (*out)->map = m;
    (*out)->map_len = len;
    return 0;
}

int safetensors_open(const char *path, safetensors_file **out, ptb_errbuf *eb)
{
    if (!path || !out)
        return ptb_errf(eb, PTB_EINVAL, "safetensors_open: NULL argument");
    *out = NULL;
    return st_open_at(AT_FDCWD, path, path, out, eb);
}

void safetensors_close(safetensors_file *f)
{
    if (!f)
        return;
    if (f->map)
        munmap(f->map, f->map_len);
    free(f->tensors);
    free(f->meta);
    free(f->strings);
    free(f);
}

size_t safetensors_count(const safetensors_file *f)
{
    return f->n;
}

const safetensors_tensor *safetensors_at(const safetensors_file *f, size_t i)
{
    return i < f->n ? &f->tensors[i] : NULL;
}

const safetensors_tensor *safetensors_find(const safetensors_file *f, const char *name)
{
    safetensors_tensor key = {.name = name};
    return bsearch(&key, f->tensors, f->n, sizeof *f->tensors, st_cmp_tensor);
}

const char *safetensors_metadata(const safetensors_file *f, const char *key)
{
    const char **kv = bsearch(&key, f->meta, f->nmeta, 2 * sizeof *f->meta, st_cmp_pair);
    return kv ? kv[1] : NULL;
}

const char *const *safetensors_metadata_all(const safetensors_file *f)
{
    return f->meta;
}

/* ---- writer ---------------------------------------------------------------------------------- */

/* Whether s is UTF-8 as jansson checks it (no overlong form, no surrogate, <= U+10FFFF). */
static bool st_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p++, n;
        uint32_t cp;
        if (c < 0x80)
            continue;
        if (c >= 0xC2 && c <= 0xDF)
            n = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF)
            n = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4)
            n = 3, cp = c & 0x07;
        else
            return false;
        for (unsigned i = 0; i < n; i++, p++) { /* the NUL fails the test: no overrun */
            if ((*p & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (*p & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
    }
    return true;
}

static int st_cmp_tensor_ptr(const void *a, const void *b)
{
    return strcmp((*(const safetensors_tensor *const *)a)->name,
                  (*(const safetensors_tensor *const *)b)->name);
}

/* Check one input tensor; on success *entry (the caller's) is its header entry at [at, at+nbytes). */
static int st_entry(const safetensors_tensor *t, uint64_t at, json_t **entry, ptb_errbuf *eb)
{
    size_t len = strlen(t->name);
    if (len == 0 || len > SAFETENSORS_NAME_MAX || !st_utf8(t->name) ||
        strcmp(t->name, ST_META_KEY) == 0)
        return ptb_errf(eb, PTB_EINVAL,
                        "tensor " ST_Q ": name empty, too long, reserved or not UTF-8", t->name);
    uint64_t n = safetensors_dtype_size(t->dtype);
    bool bad = n == 0 || t->rank > SAFETENSORS_RANK_MAX;
    for (uint32_t d = 0; !bad && d < t->rank; d++)
        bad = __builtin_mul_overflow(n, t->shape[d], &n) || t->shape[d] > INT64_MAX;
    if (bad || n > INT64_MAX - at)
        return ptb_errf(eb, PTB_EINVAL, "tensor " ST_Q ": bad dtype or rank, or over 2^63 bytes",
                        t->name);
    if (n != t->nbytes || (n && !t->data))
        return ptb_errf(eb, PTB_EINVAL,
                        "tensor " ST_Q ": nbytes %llu is not dtype * shape (%llu) or data is NULL",
                        t->name, ST_U(t->nbytes), ST_U(n));
    json_t *shape = json_array();
    for (uint32_t d = 0; d < t->rank; d++)
        json_array_append_new(shape, json_integer((json_int_t)t->shape[d]));
    /* "o" takes shape, on failure too */
    *entry = json_pack("{s:s,s:o,s:[I,I]}", "dtype", safetensors_dtype_name(t->dtype), "shape",
                       shape, "data_offsets", (json_int_t)at, (json_int_t)(at + n));
    if (*entry && json_array_size(shape) == t->rank)
        return 0;
    json_decref(*entry);
    return ptb_errf(eb, PTB_ENOMEM, "out of memory");
}

/* The header: 8-byte length, then JSON padded to a multiple of 8. *out is the caller's (free). */
static int st_build_header(const safetensors_tensor **sorted, size_t n, const char *const *kv,
                           char **out, size_t *out_len, ptb_errbuf *eb)
{
    json_t *root = json_object(), *meta = json_object(), *e = NULL;
    int rc = root && meta ? 0 : ptb_errf(eb, PTB_ENOMEM, "out of memory");
    uint64_t at = 0;
    for (size_t k = 0; rc == 0 && k < n; at += sorted[k++]->nbytes) {
        if (k && strcmp(sorted[k - 1]->name, sorted[k]->name) == 0)
            rc = ptb_errf(eb, PTB_EINVAL, "tensor " ST_Q ": name given twice", sorted[k]->name);
        else if ((rc = st_entry(sorted[k], at, &e, eb)) == 0 &&
                 json_object_set_new(root, sorted[k]->name, e) != 0)
            rc = ptb_errf(eb, PTB_ENOMEM, "out of memory");
    }
    for (size_t i = 0; rc == 0 && kv && kv[i]; i += 2) {
        if (!kv[i + 1] || !st_utf8(kv[i]) || !st_utf8(kv[i + 1]) || json_object_get(meta, kv[i]))
            rc = ptb_errf(eb, PTB_EINVAL, "metadata " ST_Q ": no value, not UTF-8, or given twice",
                          kv[i]);
        else if (json_object_set_new(meta, kv[i], json_string(kv[i + 1])) != 0)
            rc = ptb_errf(eb, PTB_ENOMEM, "out of memory");
    }
    if (rc == 0 && json_object_size(meta) && json_object_set(root, ST_META_KEY, meta) != 0)
        rc = ptb_errf(eb, PTB_ENOMEM, "out of memory");
    const size_t flags = JSON_SORT_KEYS | JSON_COMPACT;
    size_t jl = rc == 0 ? json_dumpb(root, NULL, 0, flags) : 0, padded = (jl + 7) & ~(size_t)7;
    char *h = NULL;
    if (rc == 0 && padded > SAFETENSORS_HEADER_MAX)
        rc = ptb_errf(eb, PTB_EINVAL, "header of %zu bytes, limit %u", padded,
                      SAFETENSORS_HEADER_MAX);
    else if (rc == 0 &&
             (!jl || !(h = malloc(8 + padded)) || json_dumpb(root, h + 8, jl, flags) != jl))
        rc = ptb_errf(eb, PTB_ENOMEM, "out of memory for a header of %zu bytes", jl);
    json_decref(root);
    json_decref(meta);
    if (rc != 0) {
        free(h);
        return rc;
    }
    memset(h + 8 + jl, ' ', padded - jl);
    for (int i = 0; i < 8; i++)
        h[i] = (char)((uint64_t)padded >> (8 * i));
    *out = h;
    *out_len = 8 + padded;
    return 0;
}

static int st_write_all(int fd, const void *buf, uint64_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n > (1u << 30) ? (1u << 30) : (size_t)n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        p += w;
        n -= (uint64_t)w;
    }
    return 0;
}

/* fsync the directory holding path, so that a rename in it is durable. */
static int st_sync_dir(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path); /* fits: path.tmp did */
    int rc = 0, fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0)
        rc = -errno;
    if (fd >= 0)
        close(fd);
    return rc;
}

int safetensors_write(const char *path, const safetensors_tensor *tensors, size_t n,
                      const char *const *meta_kv, ptb_errbuf *eb)
{
    char tmp[PATH_MAX];
    if (!path || (n && !tensors) || n > SAFETENSORS_TENSORS_MAX ||
        (size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
        return ptb_errf(eb, PTB_EINVAL, "safetensors_write: NULL, %zu tensors or path too long", n);
    const safetensors_tensor **sorted = malloc((n ? n : 1) * sizeof *sorted);
    int rc = sorted ? 0 : ptb_errf(eb, PTB_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (!(sorted[i] = &tensors[i])->name)
            rc = ptb_errf(eb, PTB_EINVAL, "tensor %zu has no name", i);
    char *h = NULL;
    size_t hl = 0;
    if (rc == 0) {
        qsort(sorted, n, sizeof *sorted, st_cmp_tensor_ptr);
        rc = st_build_header(sorted, n, meta_kv, &h, &hl, eb);
    }
    if (rc != 0) {
        free(sorted);
        return rc;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    rc = fd < 0 ? -errno : st_write_all(fd, h, hl);
    for (size_t k = 0; rc == 0 && k < n; k++)
        rc = st_write_all(fd, sorted[k]->data, sorted[k]->nbytes);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (fd >= 0 && close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0)
        unlink(tmp);
    else
        rc = st_sync_dir(path);
    free(h);
    free(sorted);
    return rc ? ptb_errf(eb, rc, "%s: %s", path, strerror(-rc)) : 0;
}

/* ---- sharded sets ---------------------------------------------------------------------------- */

typedef struct st_ref {
    const safetensors_tensor *t;
    size_t shard;
} st_ref;

static int st_cmp_ref(const void *a, const void *b)
{
    const st_ref *x = a, *y = b;
    int c = strcmp(x->t->name, y->t->name);
    return c ? c : (x->shard > y->shard) - (x->shard < y->shard);
}

/* A file name that stays inside the directory: no "/", not "." or "..", no NUL. */
static bool st_plain_name(const json_t *v)
{
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    return json_is_string(v) && n > 0 && n <= NAME_MAX && strlen(s) == n && !strchr(s, '/') &&
           strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/* Open dir/files[i] for i < nfiles into a new set *out (the caller's, even on failure). */
static int st_set_open(int dfd, const char *dir, const char **files, size_t nfiles,
                       safetensors_set **out, ptb_errbuf *eb)
{
    safetensors_set *s = *out = calloc(1, sizeof *s);
    if (!s || !(s->files = calloc(nfiles ? nfiles : 1, sizeof *s->files)))
        return ptb_errf(eb, PTB_ENOMEM, "out of memory");
    s->nfiles = nfiles;
    for (size_t i = 0; i < nfiles; i++) {
        char label[PATH_MAX];
        snprintf(label, sizeof label, "%s/%s", dir, files[i]);
        int rc = st_open_at(dfd, files[i], label, &s->files[i], eb);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Sort the tensors of all of s's files into s->tensors; each name in one file only and, with a
 * weight map `wm`, in the file that wm names for it (files[shard]), and every name of wm found. */
static int st_set_fill(safetensors_set *s, const char *dir, const json_t *wm, const char **files,
                       ptb_errbuf *eb)
{
    size_t total = 0, k = 0;
    for (size_t i = 0; i < s->nfiles; i++)
        total += s->files[i]->n;
    if (total > SAFETENSORS_TENSORS_MAX)
        return ST_BAD("%s: %zu tensors, limit %u", dir, total, SAFETENSORS_TENSORS_MAX);
    st_ref *e = malloc((total ? total : 1) * sizeof *e);
    s->tensors = malloc((total ? total : 1) * sizeof *s->tensors);
    if (!e || !s->tensors) {
        free(e);
        return ptb_errf(eb, PTB_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < s->nfiles; i++)
        for (size_t j = 0; j < s->files[i]->n; j++)
            e[k++] = (st_ref){&s->files[i]->tensors[j], i};
    qsort(e, total, sizeof *e, st_cmp_ref);
    int rc = 0;
    for (k = 0; rc == 0 && k < total; k++) {
        const char *name = e[k].t->name, *file = files[e[k].shard];
        const char *want = wm ? json_string_value(json_object_get(wm, name)) : file;
        if (k && strcmp(e[k - 1].t->name, name) == 0)
            rc = ST_BAD("%s: tensor " ST_Q " is in two shards, " ST_Q " and " ST_Q, dir, name,
                        files[e[k - 1].shard], file);
        else if (!want)
            rc = ST_BAD("%s: tensor " ST_Q " of shard " ST_Q " is not in weight_map", dir, name,
                        file);
        else if (strcmp(want, file) != 0)
            rc = ST_BAD("%s: tensor " ST_Q " is in shard " ST_Q ", weight_map says " ST_Q, dir,
                        name, file, want);
        s->tensors[k] = e[k].t;
    }
    free(e);
    s->n = total;
    if (rc == 0 && wm && total != json_object_size(wm)) { /* a name of wm is in no shard */
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)wm, key, v)
        {
            if (!safetensors_set_find(s, key))
                return ST_BAD("%s: tensor " ST_Q " of weight_map is not in shard " ST_Q, dir, key,
                              json_string_value(v));
        }
    }
    return rc;
}

/* The index in dfd and its shards. */
static int st_index_open_at(int dfd, const char *dir, safetensors_set **out, ptb_errbuf *eb)
{
    char label[PATH_MAX];
    snprintf(label, sizeof label, "%s/" ST_INDEX_NAME, dir);
    void *m = NULL;
    size_t len = 0, nf = 0;
    int rc = st_map(dfd, ST_INDEX_NAME, label, 1, SAFETENSORS_HEADER_MAX, &m, &len, eb);
    if (rc != 0)
        return rc;
    json_error_t je;
    json_t *root = json_loadb(m, len, JSON_REJECT_DUPLICATES, &je), *v;
    munmap(m, len);
    json_t *wm = json_object_get(root, "weight_map"), *md = json_object_get(root, "metadata");
    const char **files = NULL, *key;
    if (!root)
        rc = ST_BAD("%s: not valid JSON: %s (at byte %d)", label, je.text, je.position);
    else if (!json_is_object(wm) || (md && !json_is_object(md)))
        rc = ST_BAD("%s: weight_map or metadata is not an object", label);
    else if (json_object_size(wm) > SAFETENSORS_TENSORS_MAX)
        rc = ST_BAD("%s: over %u tensors", label, SAFETENSORS_TENSORS_MAX);
    else if (!(files = malloc((json_object_size(wm) + 1) * sizeof *files)))
        rc = ptb_errf(eb, PTB_ENOMEM, "out of memory");
    if (rc == 0)
        json_object_foreach(wm, key, v)
        {
            if (!st_plain_name(v)) {
                rc = ST_BAD("%s: tensor " ST_Q ": shard is not a plain file name", label, key);
                break;
            }
            files[nf++] = json_string_value(v);
        }
    if (rc == 0) { /* the distinct shard names, sorted */
        qsort(files, nf, sizeof *files, st_cmp_pair);
        size_t u = 0;
        for (size_t i = 0; i < nf; i++)
            if (u == 0 || strcmp(files[u - 1], files[i]) != 0)
                files[u++] = files[i];
        if (u > SAFETENSORS_SHARDS_MAX)
            rc = ST_BAD("%s: %zu shards, limit %u", label, u, SAFETENSORS_SHARDS_MAX);
        else if ((rc = st_set_open(dfd, dir, files, u, out, eb)) == 0)
            rc = st_set_fill(*out, dir, wm, files, eb);
    }
    free(files);
    json_decref(root);
    return rc;
}

/* dir's single file (when `single` and it exists), else its index. */
static int st_dir_open(const char *dir, bool single, safetensors_set **out, ptb_errbuf *eb)
{
    if (!dir || !out)
        return ptb_errf(eb, PTB_EINVAL, "safetensors_dir_open: NULL argument");
    *out = NULL;
    int rc, dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return ptb_errf(eb, -errno, "%s: %s", dir, strerror(errno));
    const char *one = ST_SINGLE_NAME;
    if (single && faccessat(dfd, one, F_OK, 0) == 0) {
        if ((rc = st_set_open(dfd, dir, &one, 1, out, eb)) == 0)
            rc = st_set_fill(*out, dir, NULL, &one, eb);
    } else if (single && faccessat(dfd, ST_INDEX_NAME, F_OK, 0) != 0)
        rc = ptb_errf(eb, PTB_ENOTFOUND, "%s: neither " ST_SINGLE_NAME " nor " ST_INDEX_NAME, dir);
    else
        rc = st_index_open_at(dfd, dir, out, eb);
    close(dfd);
    if (rc != 0) {
        safetensors_set_close(*out);
        *out = NULL;
    }
    return rc;
}

int safetensors_index_open(const char *dir, safetensors_set **out, ptb_errbuf *eb)
{
    return st_dir_open(dir, false, out, eb);
}

int safetensors_dir_open(const char *dir, safetensors_set **out, ptb_errbuf *eb)
{
    return st_dir_open(dir, true, out, eb);
}

void safetensors_set_close(safetensors_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; s->files && i < s->nfiles; i++)
        safetensors_close(s->files[i]);
    free(s->files);
    free(s->tensors);
    free(s);
}

size_t safetensors_set_count(const safetensors_set *s)
{
    return s->n;
}

const safetensors_tensor *safetensors_set_at(const safetensors_set *s, size_t i)
{
    return i < s->n ? s->tensors[i] : NULL;
}

const safetensors_tensor *safetensors_set_find(const safetensors_set *s, const char *name)
{
    const safetensors_tensor key = {.name = name}, *kp = &key;
    const safetensors_tensor *const *t =
        bsearch(&kp, s->tensors, s->n, sizeof *s->tensors, st_cmp_tensor_ptr);
    return t ? *t : NULL;
}
