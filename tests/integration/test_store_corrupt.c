/* Corruption: flipped bytes in any database of a store give a clear error from `ptb verify` and
 * from readers, never a crash.
 *
 * A store with events of several kinds, strings, blobs and meta is written once. Then, each time
 * on a fresh copy of it:
 *  - targeted: one byte of a random key or value of each named database is flipped (offsets found
 *    through liblmdb's map); `store_verify` must report a problem, and the real `ptb verify` must
 *    exit 1 (problems found) or 4 (corrupt) with a message;
 *  - random: 1..4 bytes anywhere in data.mdb are flipped;
 *  - crafted: a blob's value replaced by one with an unknown codec, a raw length its data does not
 *    have (each codec), data that does not decode, a value shorter than its header: readers get
 *    PTB_ECORRUPT with a message, verify reports it.
 * Each check runs in a child process that also walks the store with every reader call (cursors
 * by seq and index, strings, blobs, summary); the parent asserts the child was not killed by a
 * signal. Fixed seed.
 *
 * usage: test_store_corrupt PTB_BINARY [RANDOM_ROUNDS] */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "common/test_events.h"
#include "store.h"

static const char *ptb_bin;
static int random_rounds = 300;
static char pristine[4096], work[4096];

static int build_store(void **state)
{
    (void)state;
    store_options o;
    store_options_default(&o);
    o.batch_events = 300;
    store *s;
    assert_int_equal(store_open(pristine, &o, STORE_CREATE, &s), 0);
    for (uint64_t i = 0; i < 4000; i++) {
        test_event b;
        assert_int_equal(store_append(s, test_event_make(&b, i), 0, NULL), 0);
        if (i % 500 == 0) {
            char blob[20000];
            for (size_t k = 0; k < sizeof blob; k++)
                blob[k] = (char)('a' + (k * 7 + i) % 26);
            uint8_t sha[32];
            assert_int_equal(store_blob_put(s, blob, sizeof blob - i % 100, "f", sha), 0);
        }
    }
    assert_int_equal(store_meta_set(s, "task", "gsm8k-qwen3-4b"), 0);
    assert_int_equal(store_close(s), 0);
    return 0;
}

/* A location of a key or value in data.mdb. */
typedef struct spot {
    char db[32];
    long off;
    size_t len;
} spot;

static const char *dbs[] = {"events",  "blobs",   "strings", "strings_r", "batches", "chain",
                            "ix_type", "ix_exec", "ix_path", "ix_host",   "ix_tool", "ix_kernel"};
#define NDBS (sizeof dbs / sizeof dbs[0])

/* Where liblmdb mapped pristine/data.mdb in this process (from /proc/self/maps). */
static char *map_base(void)
{
    char want[4200], line[8192];
    snprintf(want, sizeof want, "%s/data.mdb", pristine);
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    char *base = NULL;
    while (!base && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        size_t n = strlen(line), w = strlen(want);
        unsigned long lo, off;
        if (n >= w && strcmp(line + n - w, want) == 0 &&
            sscanf(line, "%lx-%*x %*s %lx", &lo, &off) == 2 && off == 0)
            base = (char *)lo;
    }
    fclose(f);
    assert_non_null(base);
    return base;
}

/* Random key or value spots of database name, at most max. */
static size_t find_spots(const char *name, spot *out, size_t max, unsigned *seed)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *c;
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 32);
    assert_int_equal(mdb_env_open(env, pristine, MDB_RDONLY, 0644), 0);
    char *base = map_base();
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, name, 0, &dbi), 0);
    assert_int_equal(mdb_cursor_open(txn, dbi, &c), 0);
    MDB_val k, v;
    size_t n = 0, seen = 0;
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        MDB_val *which = rand_r(seed) % 2 ? &k : &v;
        spot sp;
        snprintf(sp.db, sizeof sp.db, "%s", name);
        sp.off = (long)((char *)which->mv_data - base);
        sp.len = which->mv_size;
        if (sp.len == 0)
            continue;
        /* reservoir sampling */
        if (n < max)
            out[n++] = sp;
        else if ((size_t)rand_r(seed) % (seen + 1) < max)
            out[rand_r(seed) % max] = sp;
        seen++;
    }
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return n;
}

static void flip(long off, uint8_t mask)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", work);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= mask ? mask : 0x10;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

static void fresh_copy(void)
{
    char cmd[13000];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", work, pristine, work);
    assert_int_equal(system(cmd), 0);
}

/* Every reader call over the whole store; only crashes matter here. */
static void reader_walk(void)
{
    store *s;
    if (store_open(work, NULL, STORE_RDONLY, &s)) {
        store_close(s);
        return;
    }
    store_txn *t;
    if (store_txn_begin(s, &t) == 0) {
        store_summary sum;
        store_summary_get(t, &sum);
        store_range all = {0};
        store_cursor *c;
        const ptb_event *ev;
        if (store_cursor_open(t, &all, &c) == 0) {
            for (int i = 0; i < 100000; i++) {
                int rc = store_cursor_next(c, &ev);
                if (rc == PTB_ENOTFOUND || (rc && rc != PTB_ECORRUPT))
                    break;
            }
            store_cursor_close(c);
        }
        for (int ix = 0; ix < STORE_IX_COUNT; ix++) {
            for (uint64_t key = 1; key < 40; key++) {
                store_range r = {.by_index = true, .index = (store_index)ix, .key = key};
                uint64_t n;
                store_index_count(t, (store_index)ix, key, &n);
                if (store_cursor_open(t, &r, &c) == 0) {
                    for (int i = 0; i < 100000; i++) {
                        int rc = store_cursor_next(c, &ev);
                        if (rc == PTB_ENOTFOUND || (rc && rc != PTB_ECORRUPT))
                            break;
                    }
                    store_cursor_close(c);
                }
            }
        }
        for (uint32_t sid = 1; sid <= store_string_count(t) + 2; sid++) {
            const char *str;
            size_t len;
            if (store_string_get(t, sid, &str, &len) == 0) {
                uint32_t back;
                store_string_lookup(t, str, len, &back);
            }
        }
        store_range tr = {.by_time = true, .ts_from = 0, .ts_to = INT64_MAX};
        if (store_cursor_open(t, &tr, &c) == 0) {
            uint64_t seq;
            for (int i = 0; i < 100000 && store_cursor_next_seq(c, &seq) == 0; i++)
                ;
            store_cursor_close(c);
        }
        store_txn_end(t);
    }
    store_close(s);
}

/* In a child: verify and walk. Returns 1 when verify found a problem, 0 when not; fails the
 * test when the child died of a signal. */
static int check_copy(const char *what)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL); /* not cmocka's handlers: a crash must kill the child */
        signal(SIGBUS, SIG_DFL);
        signal(SIGABRT, SIG_DFL);
        store_verify_report rep;
        int rc = store_verify(work, &rep, NULL, NULL);
        reader_walk();
        _exit(rc == 0 ? 0 : 1);
    }
    int st;
    waitpid(pid, &st, 0);
    if (WIFSIGNALED(st))
        fail_msg("%s: the reader/verifier died of signal %d", what, WTERMSIG(st));
    return WEXITSTATUS(st);
}

static void test_targeted(void **state)
{
    (void)state;
    unsigned seed = 7;
    size_t total = 0, found = 0;
    for (size_t d = 0; d < NDBS; d++) {
        spot sp[12];
        size_t n = find_spots(dbs[d], sp, 12, &seed);
        assert_true(n > 0);
        for (size_t i = 0; i < n; i++) {
            fresh_copy();
            long off = sp[i].off + (long)(rand_r(&seed) % sp[i].len);
            flip(off, (uint8_t)(1u << (rand_r(&seed) % 8)));
            char what[128];
            snprintf(what, sizeof what, "%s byte at %ld", dbs[d], off);
            int bad = check_copy(what);
            if (!bad)
                fail_msg("%s: flipped, but verify found nothing", what);
            found += (size_t)bad;
            total++;
            if (i == 0) { /* the real command: exit 1 (problems) or 4 (corrupt), a message */
                char cmd[9000];
                snprintf(cmd, sizeof cmd, "'%s' verify '%s' > /dev/null 2>&1", ptb_bin, work);
                int st = system(cmd);
                assert_true(WIFEXITED(st));
                assert_true(WEXITSTATUS(st) == 1 || WEXITSTATUS(st) == 4);
                /* readers: a clear exit code (0: the damage is not on their path; 4: corrupt),
                 * never a signal */
                static const char *const reads[][2] = {{"stats", ""},
                                                       {"query", "--format count"},
                                                       {"query", "'file.path contains data'"},
                                                       {"query", "'tool.name = Bash'"},
                                                       {"query", "--contains a --format count"}};
                for (size_t q = 0; q < sizeof reads / sizeof reads[0]; q++) {
                    char args[4500];
                    snprintf(args, sizeof args, "%s '%s' %s", reads[q][0], work, reads[q][1]);
                    snprintf(cmd, sizeof cmd, "'%s' %s > /dev/null 2>&1", ptb_bin, args);
                    st = system(cmd);
                    if (!WIFEXITED(st) || (WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 4))
                        fail_msg("%s: 'ptb %s' ended with status %d", what, args, st);
                }
            }
        }
    }
    printf("# targeted flips: %zu of %zu detected by verify\n", found, total);
}

static void test_random(void **state)
{
    (void)state;
    unsigned seed = 99;
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", pristine);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    int detected = 0;
    for (int r = 0; r < random_rounds; r++) {
        fresh_copy();
        int nflips = 1 + rand_r(&seed) % 4;
        for (int i = 0; i < nflips; i++)
            flip((long)((unsigned long)rand_r(&seed) % (unsigned long)st.st_size),
                 (uint8_t)(1 + rand_r(&seed) % 255));
        char what[64];
        snprintf(what, sizeof what, "random round %d", r);
        detected += check_copy(what);
    }
    printf("# random flips: %d of %d rounds detected (the rest hit unused space)\n", detected,
           random_rounds);
}

/* The first blob of the pristine store: its key and content (content freed by the caller). */
static void first_blob(uint8_t key[32], uint8_t **content, size_t *len)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *c;
    MDB_val k, v;
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 32);
    assert_int_equal(mdb_env_open(env, pristine, MDB_RDONLY, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "blobs", 0, &dbi), 0);
    assert_int_equal(mdb_cursor_open(txn, dbi, &c), 0);
    assert_int_equal(mdb_cursor_get(c, &k, &v, MDB_FIRST), 0);
    memcpy(key, k.mv_data, 32);
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    store *s;
    store_txn *t;
    assert_int_equal(store_open(pristine, NULL, STORE_RDONLY, &s), 0);
    assert_int_equal(store_txn_begin(s, &t), 0);
    void *d;
    assert_int_equal(store_blob_get(t, key, &d, len), 0);
    *content = d;
    store_txn_end(t);
    store_close(s);
}

/* Replace the value of blob key in the work copy. */
static void put_blob_value(const uint8_t key[32], const void *val, size_t n)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 32);
    assert_int_equal(mdb_env_open(env, work, 0, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "blobs", 0, &dbi), 0);
    MDB_val k = {32, (void *)key}, v = {n, (void *)val};
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static size_t value(uint8_t *out, unsigned codec, uint64_t raw, const void *data, size_t n)
{
    out[0] = (uint8_t)codec;
    for (int i = 0; i < 8; i++)
        out[1 + i] = (uint8_t)(raw >> (56 - 8 * i));
    memcpy(out + 9, data, n);
    return 9 + n;
}

static void test_crafted_blobs(void **state)
{
    (void)state;
    uint8_t key[32], *content;
    size_t len;
    first_blob(key, &content, &len);
    assert_true(len > 100);
    size_t cap = 2 * len + 1024;
    uint8_t *zl = malloc(cap), *zs = malloc(cap), *v = malloc(cap + 9), *bad = malloc(len);
    uLongf zln = cap;
    assert_int_equal(compress2(zl, &zln, content, len, 6), Z_OK);
    size_t zsn = ZSTD_compress(zs, cap, content, len, 1);
    assert_false(ZSTD_isError(zsn));
    memcpy(bad, content, len);
    bad[len / 2] ^= 1;
    static const char *const names[] = {
        "codec 7", "codec 0, length + 1", "codec 0, content changed", "codec 1, length + 1",
        "codec 1, length 2^50", "codec 1, not zlib", "codec 2, length - 1", "codec 2, length + 1",
        "codec 2, not zstd", "codec 2, data cut", "5 bytes", "header only, codec 2",
        /* the real values decode: the codecs themselves are right */
        "codec 2", "codec 1", "codec 0"};
    for (int i = 0; i < 15; i++) {
        bool good = i >= 12;
        size_t n = 0;
        switch (i) {
        case 0: n = value(v, 7, len, content, len); break;
        case 1: n = value(v, 0, len + 1, content, len); break;
        case 2: n = value(v, 0, len, bad, len); break;
        case 3: n = value(v, 1, len + 1, zl, zln); break;
        case 4: n = value(v, 1, 1ULL << 50, zl, zln); break;
        case 5: n = value(v, 1, len, content, len); break;
        case 6: n = value(v, 2, len - 1, zs, zsn); break;
        case 7: n = value(v, 2, len + 1, zs, zsn); break;
        case 8: n = value(v, 2, len, content, len / 2); break;
        case 9: n = value(v, 2, len, zs, zsn / 2); break;
        case 10: n = value(v, 1, len, zl, 0) - 4; break;
        case 11: n = value(v, 2, len, zs, 0); break;
        case 12: n = value(v, 2, len, zs, zsn); break;
        case 13: n = value(v, 1, len, zl, zln); break;
        case 14: n = value(v, 0, len, content, len); break;
        }
        fresh_copy();
        put_blob_value(key, v, n);
        store *s;
        store_txn *t;
        assert_int_equal(store_open(work, NULL, STORE_RDONLY, &s), 0);
        assert_int_equal(store_txn_begin(s, &t), 0);
        void *d = NULL;
        size_t dl;
        int rc = store_blob_get(t, key, &d, &dl);
        if (good) {
            assert_int_equal(rc, 0);
            assert_int_equal(dl, len);
            assert_memory_equal(d, content, len);
            free(d);
        } else {
            if (rc != PTB_ECORRUPT)
                fail_msg("%s: store_blob_get gave %d, not PTB_ECORRUPT", names[i], rc);
            assert_null(d);
            if (!strstr(store_errmsg(s), "blob "))
                fail_msg("%s: no message (%s)", names[i], store_errmsg(s));
            printf("# %s: %s\n", names[i], store_errmsg(s));
        }
        store_txn_end(t);
        store_close(s);
        if (check_copy(names[i]) != !good)
            fail_msg("%s: verify found %s", names[i], good ? "a problem" : "nothing");
    }
    free(zl), free(zs), free(v), free(bad), free(content);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PTB_BINARY [RANDOM_ROUNDS]\n", argv[0]);
        return 2;
    }
    ptb_bin = argv[1];
    if (argc > 2)
        random_rounds = atoi(argv[2]);
    char tmpl[] = "/tmp/ptb-corrupt-XXXXXX";
    if (!mkdtemp(tmpl))
        return 1;
    snprintf(pristine, sizeof pristine, "%s/pristine.ptb", tmpl);
    snprintf(work, sizeof work, "%s/work.ptb", tmpl);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_targeted),
                                       cmocka_unit_test(test_random),
                                       cmocka_unit_test(test_crafted_blobs)};
    int rc = cmocka_run_group_tests(tests, build_store, NULL);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
    if (system(cmd) != 0)
        rc = 1;
    return rc;
}
