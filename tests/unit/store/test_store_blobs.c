/* Blobs: each codec round trip (empty, 1 byte, incompressible, compressible, zstd's workers),
 * dedup (also of a blob given while the first is compressing), the budget charged at give and
 * corrected after, order (an event appended after store_blob_give is never committed before the
 * blob, also when the writer dies right after a commit), many producers at once, stores written
 * with zlib still readable, refused options, a compression that fails (fault injection). Real LMDB in a temporary directory; fixed seeds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include "store_write_int.h"

static char *tmpdir(void)
{
    char t[] = "/tmp/ptb-test-blobs-XXXXXX";
    assert_non_null(mkdtemp(t));
    char *d = malloc(strlen(t) + 16);
    sprintf(d, "%s/RUN.ptb", t);
    return d;
}

/* Remove the temporary folder around dir (.../RUN.ptb) and free dir. */
static void rmtree(char *dir)
{
    char cmd[4200];
    *strrchr(dir, '/') = 0;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(dir);
}

enum { RANDOM, TEXT, REPEAT };

/* n bytes of a kind: RANDOM does not compress, TEXT does (words), REPEAT a lot. */
static uint8_t *make(size_t n, int kind, uint64_t seed)
{
    static const char *const words[] = {"store ", "blob ", "zstd ",  "event ",   "writer ",
                                        "ring ",  "seq ",  "batch ", "commit\n", "chain "};
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
    for (size_t i = 0; i < n;) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        if (kind == RANDOM) {
            p[i++] = (uint8_t)(x >> 56);
        } else if (kind == TEXT) {
            const char *w = words[(x >> 40) % 10];
            for (; *w && i < n; w++)
                p[i++] = (uint8_t)*w;
        } else {
            p[i] = (uint8_t)("0123456789abcdef"[i % 16] + (seed & 7));
            i++;
        }
    }
    return p;
}

static void sha256(const void *p, size_t n, uint8_t out[32])
{
    unsigned int hl = 32;
    assert_true(EVP_Digest(p, n, out, &hl, EVP_sha256(), NULL));
}

/* Give a copy of p (the caller keeps p). */
static int give_copy(store *s, const uint8_t *p, size_t n, const char *what, uint8_t sha[32])
{
    sha256(p, n, sha);
    uint8_t *c = malloc(n ? n : 1);
    assert_non_null(c);
    memcpy(c, p, n);
    return store_blob_give(s, c, n, sha, what);
}

/* The codec byte and value size of a stored blob. */
static void stored(store_txn *t, const uint8_t sha[32], int *codec, size_t *vlen)
{
    MDB_val k = {32, (void *)sha}, v;
    assert_int_equal(mdb_get(store_txn_mdb(t), store_txn_store(t)->dbi[STORE_DB_BLOBS], &k, &v), 0);
    assert_true(v.mv_size >= STORE_BLOB_HDR);
    *codec = ((uint8_t *)v.mv_data)[0];
    *vlen = v.mv_size;
}

static void check_blob(store_txn *t, const uint8_t *p, size_t n, int want_codec)
{
    uint8_t sha[32];
    sha256(p, n, sha);
    void *back;
    size_t blen;
    assert_int_equal(store_blob_get(t, sha, &back, &blen), 0);
    assert_int_equal(blen, n);
    assert_memory_equal(back, p, n);
    free(back);
    int codec;
    size_t vlen;
    stored(t, sha, &codec, &vlen);
    if (want_codec >= 0)
        assert_int_equal(codec, want_codec);
    if (codec == STORE_CODEC_NONE)
        assert_int_equal(vlen, n + STORE_BLOB_HDR);
    else
        assert_true(vlen < n + STORE_BLOB_HDR);
}

static bool zstd_has_workers(void)
{
    ZSTD_bounds b = ZSTD_cParam_getBounds(ZSTD_c_nbWorkers);
    return !ZSTD_isError(b.error) && b.upperBound > 0 && sysconf(_SC_NPROCESSORS_ONLN) > 1;
}

static void test_codecs(void **state)
{
    (void)state;
    static const struct {
        store_codec codec;
        int level;
        size_t random_n, text_n;
    } cases[] = {
        {STORE_CODEC_ZSTD, 1, 10u << 20, 50u << 20}, /* 50 MB: zstd's workers too */
        {STORE_CODEC_ZSTD, 19, 1u << 20, 1u << 20},  {STORE_CODEC_ZLIB, 1, 10u << 20, 4u << 20},
        {STORE_CODEC_ZLIB, 9, 1u << 20, 1u << 20},   {STORE_CODEC_NONE, 0, 10u << 20, 4u << 20},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char *dir = tmpdir();
        store_options o;
        store_options_default(&o);
        o.blob_codec = cases[c].codec;
        o.blob_level = cases[c].level;
        store *s;
        assert_int_equal(store_open(dir, &o, STORE_CREATE, &s), 0);
        uint8_t *rnd = make(cases[c].random_n, RANDOM, c);
        uint8_t *txt = make(cases[c].text_n, TEXT, c);
        uint8_t one = 'x', empty[1] = {0}, sha[32];
        assert_int_equal(give_copy(s, empty, 0, "empty", sha), 0);
        assert_int_equal(give_copy(s, &one, 1, "one", sha), 0);
        assert_int_equal(give_copy(s, rnd, cases[c].random_n, "random", sha), 0);
        assert_int_equal(give_copy(s, txt, cases[c].text_n, "text", sha), 0);
        assert_int_equal(store_flush(s), 0);
        store_write_stats ws;
        store_write_stats_get(s, &ws);
        assert_int_equal(ws.blobs_new, 4);
        if (cases[c].codec == STORE_CODEC_ZSTD && cases[c].text_n >= (8u << 20))
            assert_int_equal(ws.blobs_mt, zstd_has_workers() ? 1 : 0);
        else
            assert_int_equal(ws.blobs_mt, 0);
        assert_int_equal(store_close(s), 0);

        assert_int_equal(store_open(dir, NULL, STORE_RDONLY, &s), 0);
        store_txn *t;
        assert_int_equal(store_txn_begin(s, &t), 0);
        check_blob(t, empty, 0, STORE_CODEC_NONE);
        check_blob(t, &one, 1, STORE_CODEC_NONE);
        check_blob(t, rnd, cases[c].random_n, STORE_CODEC_NONE); /* does not shrink: as is */
        check_blob(t, txt, cases[c].text_n, (int)cases[c].codec);
        store_summary sum;
        assert_int_equal(store_summary_get(t, &sum), 0);
        assert_int_equal(sum.blob_zbytes, ws.blob_bytes);
        store_txn_end(t);
        assert_int_equal(store_close(s), 0);
        store_verify_report rep;
        assert_int_equal(store_verify(dir, &rep, NULL, NULL), 0);
        assert_int_equal(rep.blobs, 4);
        free(rnd);
        free(txt);
        rmtree(dir);
    }
}

static void test_dedup(void **state)
{
    (void)state;
    char *dir = tmpdir();
    store *s;
    assert_int_equal(store_open(dir, NULL, STORE_CREATE, &s), 0);
    size_t n = 20u << 20;
    uint8_t *p = make(n, TEXT, 1), sha[32], sha2[32];
    /* the second while the first is (most likely) still being compressed */
    uint8_t *c1 = malloc(n), *c2 = malloc(n);
    memcpy(c1, p, n);
    memcpy(c2, p, n);
    sha256(p, n, sha);
    assert_int_equal(store_blob_give(s, c1, n, sha, "first"), 0);
    assert_int_equal(store_blob_give(s, c2, n, sha, "second"), 0);
    assert_int_equal(store_flush(s), 0);
    assert_int_equal(give_copy(s, p, n, "third", sha2), 0);
    assert_memory_equal(sha, sha2, 32);
    store_write_stats ws;
    assert_int_equal(store_flush(s), 0);
    store_write_stats_get(s, &ws);
    assert_int_equal(ws.blobs_new, 1);
    assert_int_equal(ws.blobs_dup, 2);
    assert_int_equal(store_close(s), 0);
    /* a later session finds it in the store */
    assert_int_equal(store_open(dir, NULL, STORE_CREATE, &s), 0);
    assert_int_equal(give_copy(s, p, n, "again", sha2), 0);
    assert_int_equal(store_flush(s), 0);
    store_write_stats_get(s, &ws);
    assert_int_equal(ws.blobs_new, 0);
    assert_int_equal(ws.blobs_dup, 1);
    assert_int_equal(store_close(s), 0);
    store_verify_report rep;
    assert_int_equal(store_verify(dir, &rep, NULL, NULL), 0);
    assert_int_equal(rep.blobs, 1);
    free(p);
    rmtree(dir);
}

static void test_budget(void **state)
{
    (void)state;
    char *dir = tmpdir();
    store_options o;
    store_options_default(&o);
    o.blob_budget = (1u << 20) + (64u << 10);
    o.blob_max = 2u << 20;
    store *s;
    assert_int_equal(store_open(dir, &o, STORE_CREATE, &s), 0);
    size_t m = 1u << 20;
    uint8_t *a = make(m, REPEAT, 1), *b = make(m, REPEAT, 2), *c = make(m, RANDOM, 3);
    uint8_t *d = make(128u << 10, RANDOM, 4), *big = make(3u << 20, REPEAT, 5), sha[32];
    assert_int_equal(give_copy(s, a, m, "a", sha), 0);
    assert_int_equal(store_flush(s), 0);
    /* a counted 1 MiB + 9 when given, its compressed size since: b fits */
    assert_int_equal(give_copy(s, b, m, "b", sha), 0);
    assert_int_equal(store_flush(s), 0);
    assert_int_equal(give_copy(s, c, m, "c", sha), 0);
    assert_int_equal(give_copy(s, d, 128u << 10, "d", sha), PTB_EBUDGET);
    assert_int_equal(give_copy(s, big, 3u << 20, "big", sha), PTB_ETOOBIG);
    store_write_stats ws;
    assert_int_equal(store_flush(s), 0);
    store_write_stats_get(s, &ws);
    assert_int_equal(ws.blobs_new, 3);
    assert_true(ws.blob_bytes <= o.blob_budget);
    assert_int_equal(store_close(s), 0);

    assert_int_equal(store_open(dir, NULL, STORE_RDONLY, &s), 0);
    store_txn *t;
    assert_int_equal(store_txn_begin(s, &t), 0);
    check_blob(t, a, m, STORE_CODEC_ZSTD);
    check_blob(t, b, m, STORE_CODEC_ZSTD);
    check_blob(t, c, m, STORE_CODEC_NONE);
    sha256(d, 128u << 10, sha);
    assert_false(store_blob_exists(t, sha));
    store_range r = {.by_index = true, .index = STORE_IX_TYPE, .key = PTB__V1__EVENT__BODY_GAP};
    store_cursor *cur;
    const ptb_event *ev;
    assert_int_equal(store_cursor_open(t, &r, &cur), 0);
    assert_int_equal(store_cursor_next(cur, &ev), 0);
    assert_string_equal(ev->gap->reason, "blob_budget");
    assert_string_equal(ev->gap->path, "d");
    assert_int_equal(ev->gap->bytes, 128u << 10);
    assert_memory_equal(ev->gap->sha256.data, sha, 32);
    assert_int_equal(store_cursor_next(cur, &ev), 0);
    assert_string_equal(ev->gap->reason, "blob_cap");
    assert_int_equal(store_cursor_next(cur, &ev), PTB_ENOTFOUND);
    store_cursor_close(cur);
    store_txn_end(t);
    assert_int_equal(store_close(s), 0);
    free(a), free(b), free(c), free(d), free(big);
    rmtree(dir);
}

/* Verify the store in dir, then read every event: each a file.write whose blob is there and
 * decodes, but those of path "before" (which name no blob). Returns how many named a blob. */
static int writes_with_blobs(const char *dir)
{
    store_verify_report rep;
    int vrc = store_verify(dir, &rep, NULL, NULL);
    if (vrc)
        fail_msg("verify: %s", rep.first);
    store *s;
    assert_int_equal(store_open(dir, NULL, STORE_RDONLY, &s), 0);
    store_txn *t;
    assert_int_equal(store_txn_begin(s, &t), 0);
    store_range rg = {0};
    store_cursor *c;
    const ptb_event *ev;
    int n = 0;
    assert_int_equal(store_cursor_open(t, &rg, &c), 0);
    while (store_cursor_next(c, &ev) == 0) {
        if (ev->body_case != PTB__V1__EVENT__BODY_FILE_WRITE)
            continue; /* the gap of a crashed writer */
        if (!strcmp(ev->file_write->path, "before"))
            continue;
        void *back;
        size_t blen;
        assert_int_equal(store_blob_get(t, ev->file_write->sha256.data, &back, &blen), 0);
        free(back);
        n++;
    }
    store_cursor_close(c);
    store_txn_end(t);
    assert_int_equal(store_close(s), 0);
    return n;
}

/* A file.write event saying blob sha was captured. */
static int append_write(store *s, const char *path, const uint8_t sha[32], uint64_t *seq)
{
    Ptb__V1__FileWrite fw = PTB__V1__FILE_WRITE__INIT;
    fw.path = (char *)path;
    fw.trigger = (char *)"close";
    fw.sha256.data = (uint8_t *)sha;
    fw.sha256.len = 32;
    fw.captured = true;
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.source = PTB__V1__SOURCE__SOURCE_TRACER;
    ev.body_case = PTB__V1__EVENT__BODY_FILE_WRITE;
    ev.file_write = &fw;
    return store_append(s, &ev, 0, seq);
}

/* Give slow blobs (zstd level 19) each followed by its event; watch the store from a reader
 * until the event is committed: the blob must be there in that snapshot. With die, the process
 * ends there without closing the store. */
static void order_run(const char *dir, int rounds, bool die)
{
    store_options o;
    store_options_default(&o);
    o.blob_level = 19;
    o.batch_ms = 1; /* commit as soon as possible */
    store *s, *r;
    assert_int_equal(store_open(dir, &o, STORE_CREATE, &s), 0);
    assert_int_equal(store_open(dir, NULL, STORE_RDONLY | STORE_NOCHECK, &r), 0);
    for (int i = 0; i < rounds; i++) {
        size_t n = 2u << 20;
        uint8_t *p = make(n, TEXT, 100 + (uint64_t)i), sha[32], other[32] = {1};
        uint64_t seq;
        assert_int_equal(append_write(s, "before", other, NULL), 0);
        assert_int_equal(give_copy(s, p, n, "slow", sha), 0);
        assert_int_equal(append_write(s, "slow", sha, &seq), 0);
        free(p);
        for (;;) {
            store_txn *t;
            assert_int_equal(store_txn_begin(r, &t), 0);
            uint64_t last = store_txn_last_seq(t);
            bool have = store_blob_exists(t, sha);
            store_txn_end(t);
            if (last >= seq) {
                assert_true(have);
                break;
            }
            usleep(200);
        }
        if (die && i == rounds - 1)
            _exit(0); /* the recorder dies right after the commit */
    }
    assert_int_equal(store_close(r), 0);
    assert_int_equal(store_flush(s), 0);
    assert_int_equal(store_close(s), 0);
}

static void test_order(void **state)
{
    (void)state;
    char *dir = tmpdir();
    order_run(dir, 3, false);
    /* again in a child that dies after its last commit */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        order_run(dir, 2, true);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* every captured write has its blob */
    assert_int_equal(writes_with_blobs(dir), 5);
    rmtree(dir);
}

/* ------------------------------------------------------------ many producers */

#define PRODUCERS 4
#define PER_PRODUCER 300

typedef struct producer {
    store *s;
    int id;
} producer;

static void *produce(void *arg)
{
    producer *p = arg;
    for (int i = 0; i < PER_PRODUCER; i++) {
        /* every 5th blob is the same in every thread: dedup races */
        bool shared = i % 5 == 0;
        uint64_t seed = shared ? (uint64_t)i : (uint64_t)(p->id + 1) * 100000 + (uint64_t)i;
        size_t n = (size_t)(seed * 7919 % (96u << 10));
        uint8_t *d = make(n, i % 3 == 0 ? RANDOM : TEXT, seed), sha[32];
        char path[64];
        snprintf(path, sizeof path, "t%d/%d", p->id, i);
        if (give_copy(p->s, d, n, path, sha) || append_write(p->s, path, sha, NULL))
            return (void *)1;
        free(d);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    char *dir = tmpdir();
    store_options o;
    store_options_default(&o);
    o.queue_bytes = 1u << 20; /* producers wait on the in-flight bound */
    o.batch_events = 50;
    store *s;
    assert_int_equal(store_open(dir, &o, STORE_CREATE, &s), 0);
    pthread_t th[PRODUCERS];
    producer pa[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        pa[i] = (producer){s, i};
        assert_int_equal(pthread_create(&th[i], NULL, produce, &pa[i]), 0);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        assert_null(ret);
    }
    store_write_stats ws;
    assert_int_equal(store_flush(s), 0);
    store_write_stats_get(s, &ws);
    assert_int_equal(ws.events, PRODUCERS * PER_PRODUCER);
    assert_int_equal(ws.blobs_new + ws.blobs_dup, PRODUCERS * PER_PRODUCER);
    assert_true(ws.blobs_dup >= (PRODUCERS - 1) * PER_PRODUCER / 5);
    assert_int_equal(store_close(s), 0);
    assert_int_equal(writes_with_blobs(dir), PRODUCERS * PER_PRODUCER);
    rmtree(dir);
}

/* A store written with zlib (codec 1) stays readable, and a zstd session may append to it. */
static void test_zlib_store(void **state)
{
    (void)state;
    char *dir = tmpdir();
    store_options o;
    store_options_default(&o);
    o.blob_codec = STORE_CODEC_ZLIB;
    o.blob_level = 6;
    store *s;
    assert_int_equal(store_open(dir, &o, STORE_CREATE, &s), 0);
    size_t n = 1u << 20;
    uint8_t *a = make(n, TEXT, 1), *b = make(n, TEXT, 2), sha[32];
    assert_int_equal(give_copy(s, a, n, "a", sha), 0);
    assert_int_equal(store_close(s), 0);
    assert_int_equal(store_open(dir, NULL, STORE_CREATE, &s), 0); /* zstd */
    assert_int_equal(give_copy(s, b, n, "b", sha), 0);
    assert_int_equal(give_copy(s, a, n, "a again", sha), 0);
    store_write_stats ws;
    assert_int_equal(store_flush(s), 0);
    store_write_stats_get(s, &ws);
    assert_int_equal(ws.blobs_new, 1);
    assert_int_equal(ws.blobs_dup, 1);
    assert_int_equal(store_close(s), 0);
    assert_int_equal(store_open(dir, NULL, STORE_RDONLY, &s), 0);
    store_txn *t;
    assert_int_equal(store_txn_begin(s, &t), 0);
    check_blob(t, a, n, STORE_CODEC_ZLIB);
    check_blob(t, b, n, STORE_CODEC_ZSTD);
    store_txn_end(t);
    assert_int_equal(store_close(s), 0);
    store_verify_report rep;
    assert_int_equal(store_verify(dir, &rep, NULL, NULL), 0);
    free(a), free(b);
    rmtree(dir);
}

static void test_options_refused(void **state)
{
    (void)state;
    static const struct {
        int codec, level;
    } bad[] = {{STORE_CODEC_ZLIB, 0},
               {STORE_CODEC_ZLIB, 10},
               {STORE_CODEC_ZSTD, 0},
               {STORE_CODEC_ZSTD, 20},
               {3, 1},
               {-1, 1}};
    char *dir = tmpdir();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        store_options o;
        store_options_default(&o);
        o.blob_codec = (store_codec)bad[i].codec;
        o.blob_level = bad[i].level;
        store *s;
        assert_int_equal(store_open(dir, &o, STORE_CREATE, &s), PTB_EINVAL);
        assert_non_null(strstr(store_errmsg(s), "blob codec"));
        store_close(s);
    }
    /* none ignores the level; a read-only store refuses a blob and frees it */
    store_options o;
    store_options_default(&o);
    o.blob_codec = STORE_CODEC_NONE;
    o.blob_level = 0;
    store *s;
    assert_int_equal(store_open(dir, &o, STORE_CREATE, &s), 0);
    assert_int_equal(store_close(s), 0);
    assert_int_equal(store_open(dir, NULL, STORE_RDONLY, &s), 0);
    uint8_t sha[32] = {1};
    assert_int_equal(store_blob_give(s, malloc(10), 10, sha, "x"), PTB_EREADONLY);
    assert_int_equal(store_close(s), 0);
    rmtree(dir);
}

/* The 4th compression fails: the store stops with the error, everything committed before the
 * failed blob is there (no event without its blob), waiters wake, nothing leaks. */
static void test_compress_failure(void **state)
{
    (void)state;
    char *dir = tmpdir();
    store *s;
    assert_int_equal(store_open(dir, NULL, STORE_CREATE, &s), 0);
    store_compress_fault = 4;
    int failed_at = -1;
    for (int i = 0; i < 40 && failed_at < 0; i++) {
        size_t n = 256u << 10;
        uint8_t *p = make(n, TEXT, 500 + (uint64_t)i), sha[32];
        char path[32];
        snprintf(path, sizeof path, "f%d", i);
        int rc = give_copy(s, p, n, path, sha);
        if (!rc)
            rc = append_write(s, path, sha, NULL);
        if (!rc && i % 8 == 7)
            rc = store_flush(s);
        if (rc) {
            assert_int_equal(rc, PTB_ENOMEM);
            assert_non_null(strstr(store_errmsg(s), "out of memory"));
            failed_at = i;
        }
        free(p);
    }
    assert_true(failed_at >= 3);
    assert_int_equal(store_flush(s), PTB_ENOMEM);
    assert_int_equal(store_close(s), PTB_ENOMEM);
    assert_int_equal(store_compress_fault, 0);
    /* the events after the 4th blob are not in */
    assert_int_equal(writes_with_blobs(dir), 3);
    rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codecs),          cmocka_unit_test(test_dedup),
        cmocka_unit_test(test_budget),          cmocka_unit_test(test_order),
        cmocka_unit_test(test_threads),         cmocka_unit_test(test_zlib_store),
        cmocka_unit_test(test_options_refused), cmocka_unit_test(test_compress_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
