/* safetensors: the writer's files read back exactly (dtypes, scalar, empty tensor, metadata) and
 * are byte-identical whatever the order of the input; the writer's bytes are the expected ones;
 * a file built by hand byte by byte after the spec reads as it should; a table of malformed files,
 * each refused with PTB_ECORRUPT and a message that says why; sharded checkpoints open as one set,
 * and hostile indexes (paths out of the directory, a tensor in two shards, ...) are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safetensors.h"

static char tmpdir[64];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/test_safetensors.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* tmpdir/name, in a static buffer of 4 rotating slots */
static const char *tpath(const char *name)
{
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
    return p;
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    rewind(f);
    unsigned char *p = malloc(*n + 1);
    assert_int_equal(fread(p, 1, *n, f), *n);
    fclose(f);
    return p;
}

/* A file: 8-byte LE n (the header's length when n == 0), header, data_len bytes 0..255. */
static unsigned char *make_file(const char *header, uint64_t n, size_t data_len, size_t *len)
{
    size_t hl = strlen(header);
    if (n == 0)
        n = hl;
    *len = 8 + hl + data_len;
    unsigned char *p = malloc(*len);
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(n >> (8 * i));
    memcpy(p + 8, header, hl);
    for (size_t i = 0; i < data_len; i++)
        p[8 + hl + i] = (unsigned char)i;
    return p;
}

/* ---- dtypes ---------------------------------------------------------------------------------- */

static void test_dtypes(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        size_t size;
    } tab[] = {{"BOOL", 1}, {"U8", 1},  {"I8", 1},   {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2},
               {"U16", 2},  {"F16", 2}, {"BF16", 2}, {"I32", 4},     {"U32", 4},     {"F32", 4},
               {"F64", 8},  {"I64", 8}, {"U64", 8},  {"C64", 8},     {"F8_E8M0", 1}};
    assert_int_equal(sizeof tab / sizeof tab[0], SAFETENSORS_DTYPE_COUNT);
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        safetensors_dtype dt;
        assert_int_equal(safetensors_dtype_parse(tab[i].name, &dt), 0);
        assert_string_equal(safetensors_dtype_name(dt), tab[i].name);
        assert_int_equal(safetensors_dtype_size(dt), tab[i].size);
    }
    safetensors_dtype dt;
    assert_int_equal(safetensors_dtype_parse("f32", &dt), PTB_ENOTFOUND);
    assert_int_equal(safetensors_dtype_parse("F4", &dt), PTB_ENOTFOUND);
    assert_int_equal(safetensors_dtype_size(SAFETENSORS_DTYPE_COUNT), 0);
    assert_string_equal(safetensors_dtype_name((safetensors_dtype)-1), "?");
}

/* ---- round trip ------------------------------------------------------------------------------ */

static float f32s[6] = {1, 2, 3, 4, 5, 6};
static uint16_t bf16s[4] = {0x3f80, 0x4000, 0x4040, 0x4080};
static int64_t scalar = -42;
static uint8_t bools[3] = {1, 0, 1};
static double f64s[1] = {3.5};
static uint8_t f8s[5] = {1, 2, 3, 4, 5};

static const safetensors_tensor rt[] = {
    {"w.f32", SAFETENSORS_F32, 2, {2, 3}, 24, f32s},
    {"w.bf16", SAFETENSORS_BF16, 1, {4}, 8, bf16s},
    {"step", SAFETENSORS_I64, 0, {0}, 8, &scalar},
    {"empty", SAFETENSORS_U8, 2, {0, 5}, 0, NULL},
    {"mask", SAFETENSORS_BOOL, 1, {3}, 3, bools},
    {"x.f64", SAFETENSORS_F64, 3, {1, 1, 1}, 8, f64s},
    {"q.f8", SAFETENSORS_F8_E4M3, 1, {5}, 5, f8s},
    {"caf\xc3\xa9", SAFETENSORS_U8, 1, {1}, 1, f8s},
};
#define NRT (sizeof rt / sizeof rt[0])

static void test_round_trip(void **state)
{
    (void)state;
    const char *meta[] = {"format", "pt", "step", "10", NULL};
    ptb_errbuf eb = {{0}};
    const char *p = tpath("rt.safetensors");
    assert_int_equal(safetensors_write(p, rt, NRT, meta, &eb), 0);
    assert_int_equal(access(tpath("rt.safetensors.tmp"), F_OK), -1);
    safetensors_file *f;
    assert_int_equal(safetensors_open(p, &f, &eb), 0);
    assert_int_equal(safetensors_count(f), NRT);
    for (size_t i = 0; i < NRT; i++) {
        const safetensors_tensor *t = safetensors_find(f, rt[i].name);
        assert_non_null(t);
        assert_string_equal(t->name, rt[i].name);
        assert_int_equal(t->dtype, rt[i].dtype);
        assert_int_equal(t->rank, rt[i].rank);
        assert_memory_equal(t->shape, rt[i].shape, rt[i].rank * sizeof t->shape[0]);
        assert_int_equal(t->nbytes, rt[i].nbytes);
        if (t->nbytes)
            assert_memory_equal(t->data, rt[i].data, t->nbytes);
        if (i)
            assert_true(strcmp(safetensors_at(f, i - 1)->name, safetensors_at(f, i)->name) < 0);
    }
    assert_null(safetensors_at(f, NRT));
    assert_null(safetensors_find(f, "nope"));
    assert_string_equal(safetensors_metadata(f, "format"), "pt");
    assert_string_equal(safetensors_metadata(f, "step"), "10");
    assert_null(safetensors_metadata(f, "other"));
    const char *const *kv = safetensors_metadata_all(f);
    assert_string_equal(kv[0], "format");
    assert_string_equal(kv[3], "10");
    assert_null(kv[4]);
    safetensors_close(f);

    /* the data buffer starts at a multiple of 8, after a space-padded header */
    size_t n;
    unsigned char *b = read_bytes(p, &n);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | b[i];
    assert_int_equal(hl % 8, 0);
    assert_true(b[8 + hl - 1] == '}' || b[8 + hl - 1] == ' ');
    free(b);
}

static void test_deterministic(void **state)
{
    (void)state;
    safetensors_tensor rev[NRT];
    for (size_t i = 0; i < NRT; i++)
        rev[i] = rt[NRT - 1 - i];
    const char *m1[] = {"format", "pt", "step", "10", NULL};
    const char *m2[] = {"step", "10", "format", "pt", NULL};
    assert_int_equal(safetensors_write(tpath("d1"), rt, NRT, m1, NULL), 0);
    assert_int_equal(safetensors_write(tpath("d2"), rev, NRT, m2, NULL), 0);
    size_t n1, n2;
    unsigned char *a = read_bytes(tpath("d1"), &n1), *b = read_bytes(tpath("d2"), &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1);
    free(a);
    free(b);
}

/* The writer's exact bytes: sorted keys, compact, padded to 8, data in name order. */
static void test_writer_bytes(void **state)
{
    (void)state;
    const float a[2] = {1.0f, 2.0f};
    const uint8_t z = 7;
    const safetensors_tensor ts[] = {{"b", SAFETENSORS_U8, 0, {0}, 1, &z},
                                     {"a", SAFETENSORS_F32, 1, {2}, 8, a}};
    const char *meta[] = {"format", "pt", NULL};
    assert_int_equal(safetensors_write(tpath("wb"), ts, 2, meta, NULL), 0);
    const char *h = "{\"__metadata__\":{\"format\":\"pt\"},"
                    "\"a\":{\"data_offsets\":[0,8],\"dtype\":\"F32\",\"shape\":[2]},"
                    "\"b\":{\"data_offsets\":[8,9],\"dtype\":\"U8\",\"shape\":[]}}";
    size_t hl = strlen(h), padded = (hl + 7) / 8 * 8, n;
    unsigned char *b = read_bytes(tpath("wb"), &n);
    assert_int_equal(n, 8 + padded + 9);
    assert_int_equal(b[0], padded);
    assert_memory_equal(b + 1, "\0\0\0\0\0\0\0", 7);
    assert_memory_equal(b + 8, h, hl);
    for (size_t i = hl; i < padded; i++)
        assert_int_equal(b[8 + i], ' ');
    assert_memory_equal(b + 8 + padded, "\x00\x00\x80\x3f\x00\x00\x00\x40\x07", 9);
    free(b);
}

static void test_writer_rejects(void **state)
{
    (void)state;
    const float a[2] = {1, 2};
    ptb_errbuf eb = {{0}};
    const safetensors_tensor dup[] = {{"a", SAFETENSORS_F32, 1, {2}, 8, a},
                                      {"a", SAFETENSORS_F32, 1, {2}, 8, a}};
    assert_int_equal(safetensors_write(tpath("bad"), dup, 2, NULL, &eb), PTB_EINVAL);
    assert_non_null(strstr(eb.msg, "twice"));
    const safetensors_tensor mis[] = {{"a", SAFETENSORS_F32, 1, {3}, 8, a}};
    assert_int_equal(safetensors_write(tpath("bad"), mis, 1, NULL, &eb), PTB_EINVAL);
    assert_non_null(strstr(eb.msg, "nbytes"));
    const safetensors_tensor res[] = {{"__metadata__", SAFETENSORS_F32, 1, {2}, 8, a}};
    assert_int_equal(safetensors_write(tpath("bad"), res, 1, NULL, &eb), PTB_EINVAL);
    const safetensors_tensor utf[] = {{"\xff", SAFETENSORS_F32, 1, {2}, 8, a}};
    assert_int_equal(safetensors_write(tpath("bad"), utf, 1, NULL, &eb), PTB_EINVAL);
    const safetensors_tensor big[] = {{"a", SAFETENSORS_F32, 2, {1ull << 62, 8}, 0, a}};
    assert_int_equal(safetensors_write(tpath("bad"), big, 1, NULL, &eb), PTB_EINVAL);
    const char *meta[] = {"k", "v", "k", "w", NULL};
    assert_int_equal(safetensors_write(tpath("bad"), mis, 0, meta, &eb), PTB_EINVAL);
    assert_int_equal(access(tpath("bad"), F_OK), -1);
    assert_int_equal(access(tpath("bad.tmp"), F_OK), -1);
    /* an empty checkpoint is fine */
    safetensors_file *f;
    assert_int_equal(safetensors_write(tpath("empty"), NULL, 0, NULL, &eb), 0);
    assert_int_equal(safetensors_open(tpath("empty"), &f, &eb), 0);
    assert_int_equal(safetensors_count(f), 0);
    safetensors_close(f);
}

/* A file made byte by byte after the spec, not by our writer. */
static void test_hand_made(void **state)
{
    (void)state;
    const char *h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"__metadata__\":{\"format\":\"pt\"}}";
    unsigned char buf[256];
    size_t hl = strlen(h), padded = (hl + 7) / 8 * 8;
    memset(buf, 0, 8);
    buf[0] = (unsigned char)padded;
    memcpy(buf + 8, h, hl);
    memset(buf + 8 + hl, ' ', padded - hl);
    memcpy(buf + 8 + padded, "\x00\x00\x80\x3f\x00\x00\x00\x40", 8);
    write_bytes(tpath("hand"), buf, 8 + padded + 8);
    safetensors_file *f;
    ptb_errbuf eb = {{0}};
    assert_int_equal(safetensors_open(tpath("hand"), &f, &eb), 0);
    assert_int_equal(safetensors_count(f), 1);
    const safetensors_tensor *t = safetensors_find(f, "a");
    assert_non_null(t);
    assert_int_equal(t->dtype, SAFETENSORS_F32);
    assert_int_equal(t->rank, 1);
    assert_int_equal(t->shape[0], 2);
    float v[2];
    memcpy(v, t->data, 8);
    assert_true(v[0] == 1.0f && v[1] == 2.0f);
    assert_string_equal(safetensors_metadata(f, "format"), "pt");
    safetensors_close(f);
}

/* ---- malformed files ------------------------------------------------------------------------- */

#define E(d, s, o) "\"" d "\":{\"dtype\":\"" s "\",\"shape\":" o "}"
static const struct {
    const char *what;
    const char *header;
    uint64_t n; /* 0: the header's length */
    size_t data;
    const char *expect;
} bad[] = {
    {"N too big", "{}", 100000001, 0, "over the limit"},
    {"N past the file", "{}", 1000, 0, "past the end"},
    {"N too small", "{}", 1, 0, "too small"},
    {"not JSON", "{not json}", 0, 0, "not valid JSON"},
    {"not an object", "[1,2]", 0, 0, "start with '{'"},
    {"leading space", " {}", 0, 0, "start with '{'"},
    {"garbage after", "{} x", 0, 0, "not valid JSON"},
    {"bad UTF-8", "{\"\xff\":{}}", 0, 0, "not valid JSON"},
    {"duplicate key",
     "{" E("a", "U8", "[1],\"data_offsets\":[0,1]") "," E("a", "U8",
                                                          "[1],\"data_offsets\":[1,2]") "}",
     0, 2, "duplicate"},
    {"missing dtype", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,1]}}", 0, 1, "no dtype"},
    {"missing offsets", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1]}}", 0, 1, "no data_offsets"},
    {"extra member", "{" E("a", "U8", "[1],\"data_offsets\":[0,1],\"x\":1") "}", 0, 1,
     "members other"},
    {"bad dtype", "{" E("a", "F33", "[1],\"data_offsets\":[0,1]") "}", 0, 1, "unknown dtype 'F33'"},
    {"dtype not string", "{\"a\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,1]}}", 0, 1,
     "unknown dtype '(not a string)'"},
    {"negative dim", "{" E("a", "U8", "[-1],\"data_offsets\":[0,1]") "}", 0, 1, "shape[0]"},
    {"real dim", "{" E("a", "U8", "[1.0],\"data_offsets\":[0,1]") "}", 0, 1, "shape[0]"},
    {"shape not array", "{" E("a", "U8", "1,\"data_offsets\":[0,1]") "}", 0, 1,
     "shape is not an array"},
    {"rank 17", "{" E("a", "U8", "[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]") "}",
     0, 1, "at most 16 dimensions"},
    {"offsets reversed", "{" E("a", "U8", "[0],\"data_offsets\":[1,0]") "}", 0, 1, "reversed"},
    {"offsets three", "{" E("a", "U8", "[1],\"data_offsets\":[0,1,2]") "}", 0, 1,
     "two non-negative"},
    {"offsets huge", "{" E("a", "U8", "[1],\"data_offsets\":[0,9223372036854775808]") "}", 0, 1,
     "not valid JSON"},
    {"overlap",
     "{" E("a", "U8", "[8],\"data_offsets\":[0,8]") "," E("b", "U8",
                                                          "[8],\"data_offsets\":[4,12]") "}",
     0, 12, "overlap tensor 'a'"},
    {"hole",
     "{" E("a", "U8", "[4],\"data_offsets\":[0,4]") "," E("b", "U8",
                                                          "[4],\"data_offsets\":[8,12]") "}",
     0, 12, "'b': begins at 8, leaving a hole"},
    {"not at 0", "{" E("a", "U8", "[4],\"data_offsets\":[4,8]") "}", 0, 8, "hole"},
    {"short of buffer", "{" E("a", "U8", "[8],\"data_offsets\":[0,8]") "}", 0, 12,
     "4 bytes unused"},
    {"past buffer", "{" E("a", "U8", "[8],\"data_offsets\":[0,8]") "}", 0, 4, "past the data"},
    {"no tensor, data", "{}", 0, 4, "unused"},
    {"size mismatch", "{" E("a", "F32", "[2],\"data_offsets\":[0,4]") "}", 0, 4, "size mismatch"},
    {"scalar mismatch", "{" E("a", "F32", "[],\"data_offsets\":[0,0]") "}", 0, 0, "size mismatch"},
    {"shape overflow", "{" E("a", "U8", "[4294967296,4294967296],\"data_offsets\":[0,0]") "}", 0, 0,
     "shape overflows"},
    {"bytes overflow", "{" E("a", "U64", "[4611686018427387904],\"data_offsets\":[0,0]") "}", 0, 0,
     "size in bytes overflows"},
    {"metadata value", "{\"__metadata__\":{\"k\":1}}", 0, 0, "['k'] is not a string"},
    {"metadata not object", "{\"__metadata__\":[]}", 0, 0, "__metadata__ is not an object"},
    {"empty name", "{" E("", "U8", "[1],\"data_offsets\":[0,1]") "}", 0, 1, "name of 0 bytes"},
    {"entry not object", "{\"a\":[]}", 0, 0, "'a': entry is not an object"},
    {"NUL in name", "{" E("a\\u0000b", "U8", "[1],\"data_offsets\":[0,1]") "}", 0, 1,
     "not valid JSON"},
};

static void test_malformed(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t len;
        unsigned char *p = make_file(bad[i].header, bad[i].n, bad[i].data, &len);
        safetensors_file *f = (safetensors_file *)1;
        ptb_errbuf eb = {{0}};
        int rc = safetensors_parse(p, len, &f, &eb);
        if (rc != PTB_ECORRUPT || !strstr(eb.msg, bad[i].expect))
            fail_msg("%s: rc %d, message \"%s\", expected \"%s\"", bad[i].what, rc, eb.msg,
                     bad[i].expect);
        assert_null(f);
        free(p);
    }
    /* shorter than 8 bytes, in memory and on disk; a directory; a missing file */
    safetensors_file *f;
    ptb_errbuf eb = {{0}};
    assert_int_equal(safetensors_parse("\x02\0\0", 3, &f, &eb), PTB_ECORRUPT);
    assert_non_null(strstr(eb.msg, "shorter"));
    write_bytes(tpath("short"), "\x02\0\0", 3);
    assert_int_equal(safetensors_open(tpath("short"), &f, &eb), PTB_ECORRUPT);
    assert_non_null(strstr(eb.msg, "short: file of 3 bytes"));
    assert_int_equal(safetensors_open(tmpdir, &f, &eb), PTB_EINVAL);
    assert_int_equal(safetensors_open(tpath("missing"), &f, &eb), -ENOENT);
    /* on disk, the message starts with the path */
    size_t len;
    unsigned char *p = make_file("{}", 1000, 0, &len);
    write_bytes(tpath("nbig"), p, len);
    free(p);
    assert_int_equal(safetensors_open(tpath("nbig"), &f, &eb), PTB_ECORRUPT);
    assert_non_null(strstr(eb.msg, "nbig: header length 1000"));
}

/* Names up to the limit are fine, one byte more is not; empty tensors may share an offset. */
static void test_limits(void **state)
{
    (void)state;
    char *h = malloc(SAFETENSORS_NAME_MAX + 200);
    for (size_t extra = 0; extra < 2; extra++) {
        size_t nl = SAFETENSORS_NAME_MAX + extra;
        h[0] = '{', h[1] = '"';
        memset(h + 2, 'n', nl);
        strcpy(h + 2 + nl, "\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}");
        size_t len;
        unsigned char *p = make_file(h, 0, 0, &len);
        safetensors_file *f = NULL;
        ptb_errbuf eb = {{0}};
        assert_int_equal(safetensors_parse(p, len, &f, &eb), extra ? PTB_ECORRUPT : 0);
        if (extra)
            assert_non_null(strstr(eb.msg, "over the limit"));
        safetensors_close(f);
        free(p);
    }
    free(h);
    const char *z = "{" E("a", "U8", "[0],\"data_offsets\":[2,2]") "," E(
        "b", "U8", "[2],\"data_offsets\":[0,2]") "," E("c", "I32",
                                                       "[3,0],\"data_offsets\":[2,2]") "}";
    size_t len;
    unsigned char *p = make_file(z, 0, 2, &len);
    safetensors_file *f;
    assert_int_equal(safetensors_parse(p, len, &f, NULL), 0);
    assert_int_equal(safetensors_count(f), 3);
    assert_int_equal(safetensors_find(f, "c")->nbytes, 0);
    safetensors_close(f);
    free(p);
}

/* ---- sharded checkpoints --------------------------------------------------------------------- */

static const char *S1 = "model-00001-of-00002.safetensors",
                  *S2 = "model-00002-of-00002.safetensors";

/* dir (made) with shard files holding the named tensors, and an index with `weight_map`. */
static const char *make_sharded(const char *dir, const char *const *s1, const char *const *s2,
                                const char *weight_map)
{
    static const float v[2] = {1, 2};
    const char *d = tpath(dir);
    assert_int_equal(mkdir(d, 0755), 0);
    const char *const *lists[2] = {s1, s2};
    const char *files[2] = {S1, S2};
    char p[600];
    for (int k = 0; k < 2; k++) {
        safetensors_tensor ts[8];
        size_t n = 0;
        for (; lists[k][n]; n++)
            ts[n] = (safetensors_tensor){lists[k][n], SAFETENSORS_F32, 1, {2}, 8, v};
        snprintf(p, sizeof p, "%s/%s", d, files[k]);
        assert_int_equal(safetensors_write(p, ts, n, NULL, NULL), 0);
    }
    char idx[1024];
    snprintf(idx, sizeof idx, "{\"metadata\":{\"total_size\":40},\"weight_map\":{%s}}", weight_map);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", d);
    write_bytes(p, idx, strlen(idx));
    return d;
}

#define W1(t) "\"" t "\":\"model-00001-of-00002.safetensors\""
#define W2(t) "\"" t "\":\"model-00002-of-00002.safetensors\""

static void test_sharded(void **state)
{
    (void)state;
    const char *a[] = {"b", "a", NULL}, *b[] = {"c", NULL};
    const char *d = make_sharded("sh", a, b, W1("a") "," W1("b") "," W2("c"));
    safetensors_set *s;
    ptb_errbuf eb = {{0}};
    assert_int_equal(safetensors_dir_open(d, &s, &eb), 0);
    assert_int_equal(safetensors_set_count(s), 3);
    assert_string_equal(safetensors_set_at(s, 0)->name, "a");
    assert_string_equal(safetensors_set_at(s, 2)->name, "c");
    assert_null(safetensors_set_at(s, 3));
    for (const char *n = "abc"; *n; n++) {
        char name[2] = {*n, 0};
        const safetensors_tensor *t = safetensors_set_find(s, name);
        assert_non_null(t);
        assert_int_equal(t->nbytes, 8);
    }
    assert_null(safetensors_set_find(s, "d"));
    safetensors_set_close(s);
    assert_int_equal(safetensors_index_open(d, &s, &eb), 0);
    assert_int_equal(safetensors_set_count(s), 3);
    safetensors_set_close(s);

    /* a single file wins over an index */
    const float v[2] = {1, 2};
    const safetensors_tensor one = {"z", SAFETENSORS_F32, 1, {2}, 8, v};
    assert_int_equal(safetensors_write(tpath("sh/model.safetensors"), &one, 1, NULL, &eb), 0);
    assert_int_equal(safetensors_dir_open(d, &s, &eb), 0);
    assert_int_equal(safetensors_set_count(s), 1);
    assert_non_null(safetensors_set_find(s, "z"));
    safetensors_set_close(s);

    /* neither */
    assert_int_equal(mkdir(tpath("none"), 0755), 0);
    assert_int_equal(safetensors_dir_open(tpath("none"), &s, &eb), PTB_ENOTFOUND);
    assert_null(s);
}

static void test_sharded_hostile(void **state)
{
    (void)state;
    const char *a[] = {"a", "b", NULL}, *b[] = {"c", NULL}, *ac[] = {"a", "c", NULL};
    static const struct {
        const char *dir, *weight_map, *expect;
        int two_a; /* the second shard holds "a" too */
    } tab[] = {
        {"h1", W1("a") "," W1("b") ",\"c\":\"../model-00002-of-00002.safetensors\"",
         "not a plain file name", 0},
        {"h2", W1("a") "," W1("b") ",\"c\":\"..\"", "not a plain file name", 0},
        {"h3", W1("a") "," W1("b") ",\"c\":\"/etc/passwd\"", "not a plain file name", 0},
        {"h4", W1("a") "," W1("b") "," W2("c"), "in two shards", 1},
        {"h5", W1("a") "," W2("b") "," W2("c"), "weight_map says", 0},
        {"h6", W1("a") "," W2("c"), "'b' of shard", 0},
        {"h7", W1("a") "," W1("b") "," W2("c") "," W2("d"), "'d' of weight_map is not in", 0},
        {"h8", W1("a") "," W1("b") ",\"c\":1", "not a plain file name", 0},
        {"h9", W1("a") "," W1("b") "," W2("c") "," W2("c"), "duplicate", 0},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        const char *d = make_sharded(tab[i].dir, a, tab[i].two_a ? ac : b, tab[i].weight_map);
        safetensors_set *s = (safetensors_set *)1;
        ptb_errbuf eb = {{0}};
        int rc = safetensors_dir_open(d, &s, &eb);
        if (rc != PTB_ECORRUPT || !strstr(eb.msg, tab[i].expect))
            fail_msg("%s: rc %d, message \"%s\", expected \"%s\"", tab[i].dir, rc, eb.msg,
                     tab[i].expect);
        assert_null(s);
    }
    /* a shard named in the index that is not there */
    const char *d = make_sharded("h10", a, b, W1("a") "," W1("b") ",\"c\":\"gone.safetensors\"");
    safetensors_set *s;
    ptb_errbuf eb = {{0}};
    assert_int_equal(safetensors_index_open(d, &s, &eb), -ENOENT);
    assert_non_null(strstr(eb.msg, "gone.safetensors"));
    /* an index that is not JSON */
    write_bytes(tpath("h10/model.safetensors.index.json"), "{", 1);
    assert_int_equal(safetensors_index_open(d, &s, &eb), PTB_ECORRUPT);
    write_bytes(tpath("h10/model.safetensors.index.json"), "{\"weight_map\":[]}", 17);
    assert_int_equal(safetensors_index_open(d, &s, &eb), PTB_ECORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dtypes),         cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_deterministic),  cmocka_unit_test(test_writer_bytes),
        cmocka_unit_test(test_writer_rejects), cmocka_unit_test(test_hand_made),
        cmocka_unit_test(test_malformed),      cmocka_unit_test(test_limits),
        cmocka_unit_test(test_sharded),        cmocka_unit_test(test_sharded_hostile),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
