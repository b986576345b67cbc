/* lmdb_check: sound files pass; damaged files are caught; and the property ptb relies on, that a
 * file the check passes never crashes liblmdb. For thousands of seeded bit and byte flips (random
 * and aimed at metas, page headers, node offsets, node headers and branch pointers), every flip
 * the check passes is opened by liblmdb in a forked child that walks every DB in every
 * direction; the child must exit normally. The flip count is PTB_LMDB_FLIPS (default 3000). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lmdb_check.h"
#include "ptb_error.h"

static char g_dir[256];
static char g_path[300]; /* the pristine data file */
static uint8_t *g_img;   /* owned: its bytes */
static size_t g_len;
static uint64_t *g_live; /* owned: pages in use by the pristine snapshot (not free, not meta) */
static size_t g_nlive;

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

#define CHECK_MDB(e)                                                                               \
    do {                                                                                           \
        int rc_ = (e);                                                                             \
        if (rc_ != 0)                                                                              \
            fail_msg("%s: %s", #e, mdb_strerror(rc_));                                             \
    } while (0)

static void put(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kn, const void *v, size_t vn)
{
    MDB_val key = {kn, (void *)k}, val = {vn, (void *)v};
    CHECK_MDB(mdb_put(txn, dbi, &key, &val, 0));
}

/* Build an LMDB at path (NOSUBDIR) holding every structure the check knows: named DBs, a tree
 * of depth >= 3, overflow values (some rewritten smaller in place), DUPSORT with sub-pages and
 * sub-DBs, DUPFIXED, INTEGERKEY, INTEGERDUP, REVERSEKEY, and a free list from deletes.
 * scale 0 builds a tiny file for the fuzz corpus. */
static void build_store(const char *path, int scale)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi wide, big, dups, fixed, ints, rev;
    CHECK_MDB(mdb_env_create(&env));
    CHECK_MDB(mdb_env_set_maxdbs(env, 16));
    CHECK_MDB(mdb_env_set_mapsize(env, 64u << 20));
    CHECK_MDB(mdb_env_open(env, path, MDB_NOSUBDIR, 0644));
    int nwide = scale ? 2500 : 40, nbig = scale ? 12 : 2, ndup = scale ? 60 : 6;
    for (int round = 0; round < 3; round++) {
        CHECK_MDB(mdb_txn_begin(env, NULL, 0, &txn));
        MDB_dbi main;
        CHECK_MDB(mdb_dbi_open(txn, NULL, 0, &main));
        CHECK_MDB(mdb_dbi_open(txn, "wide", MDB_CREATE, &wide));
        CHECK_MDB(mdb_dbi_open(txn, "big", MDB_CREATE, &big));
        CHECK_MDB(mdb_dbi_open(txn, "dups", MDB_CREATE | MDB_DUPSORT, &dups));
        CHECK_MDB(mdb_dbi_open(txn, "fixed",
                               MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP, &fixed));
        CHECK_MDB(mdb_dbi_open(txn, "ints", MDB_CREATE | MDB_INTEGERKEY, &ints));
        CHECK_MDB(mdb_dbi_open(txn, "rev", MDB_CREATE | MDB_REVERSEKEY, &rev));
        char k[128], v[64];
        put(txn, main, "a-plain-key", 11, "value", 5);
        for (int i = round; i < nwide; i += 3) {
            memset(k, 'a' + i % 26, sizeof k);
            int n = snprintf(k, sizeof k, "key-%06d-", i);
            k[n] = '-';
            snprintf(v, sizeof v, "v%d", i * round);
            put(txn, wide, k, 100, v, strlen(v));
        }
        static uint8_t blob[40000];
        for (int i = 0; i < nbig; i++) {
            memset(blob, i + round, sizeof blob);
            snprintf(k, sizeof k, "big%02d", i);
            put(txn, big, k, strlen(k), blob, 3000 + (size_t)(i * 3000 + round * 17) % 36000);
        }
        for (int i = 0; i < ndup; i++) {
            snprintf(k, sizeof k, "dupkey%03d", i);
            int nd = 1 + (i * i * 7 + round * 13) % 250;
            for (int d = 0; d < nd; d++) {
                snprintf(v, sizeof v, "dup-value-%05d-%.*s", d * 7 + round, i % 20,
                         "xxxxxxxxxxxxxxxxxxxx");
                put(txn, dups, k, strlen(k), v, strlen(v));
                uint64_t x = (uint64_t)d * 1000003u + (uint64_t)round;
                put(txn, fixed, k, strlen(k), &x, sizeof x);
            }
        }
        for (uint64_t i = 0; i < (uint64_t)nwide / 2; i++) {
            uint64_t key = i * 7919 + (uint64_t)round;
            put(txn, ints, &key, sizeof key, "i", 1);
            snprintf(k, sizeof k, "%llu-rev", (unsigned long long)key);
            put(txn, rev, k, strlen(k), "r", 1);
        }
        CHECK_MDB(mdb_txn_commit(txn));
        /* deletes: a free list, partly emptied pages, sub-DBs shrunk back */
        CHECK_MDB(mdb_txn_begin(env, NULL, 0, &txn));
        for (int i = round; i < nwide; i += 7) {
            memset(k, 'a' + i % 26, sizeof k);
            int n = snprintf(k, sizeof k, "key-%06d-", i);
            k[n] = '-';
            MDB_val key = {100, k};
            int rc = mdb_del(txn, wide, &key, NULL);
            assert_true(rc == 0 || rc == MDB_NOTFOUND);
        }
        for (int i = 0; i < ndup; i += 4) {
            snprintf(k, sizeof k, "dupkey%03d", i);
            MDB_val key = {strlen(k), k};
            for (int d = 0; d < 120; d += 2) {
                snprintf(v, sizeof v, "dup-value-%05d-%.*s", d * 7 + round, i % 20,
                         "xxxxxxxxxxxxxxxxxxxx");
                MDB_val val = {strlen(v), v};
                int rc = mdb_del(txn, dups, &key, &val);
                assert_true(rc == 0 || rc == MDB_NOTFOUND);
            }
        }
        CHECK_MDB(mdb_txn_commit(txn));
    }
    mdb_env_close(env);
}

static int slurp(const char *path, uint8_t **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc(*len);
    size_t got = *buf ? fread(*buf, 1, *len, f) : 0;
    fclose(f);
    return got == *len ? 0 : -1;
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/ptb_lmdb_check_XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_path, sizeof g_path, "%s/pristine.mdb", g_dir);
    build_store(g_path, 1);
    return slurp(g_path, &g_img, &g_len);
}

static void rm_env(const char *path)
{
    char lock[330];
    snprintf(lock, sizeof lock, "%s-lock", path);
    unlink(path);
    unlink(lock);
}

static int teardown(void **state)
{
    (void)state;
    char p[320];
    rm_env(g_path);
    snprintf(p, sizeof p, "%s/flip.mdb", g_dir);
    rm_env(p);
    rmdir(g_dir);
    free(g_img);
    return 0;
}

static void test_sound_store_passes(void **state)
{
    (void)state;
    lmdb_check_report rep;
    int rc = lmdb_check_file(g_path, &rep);
    if (rc)
        fail_msg("pristine store rejected: %s", rep.first);
    printf("pristine: %zu bytes, psize %u, meta %d txnid %llu, last_pg %llu, %llu pages checked "
           "(%llu branch, %llu leaf, %llu overflow, %llu sub-pages), %llu free, %llu named DBs, "
           "%llu main entries\n",
           g_len, rep.psize, rep.meta, (unsigned long long)rep.txnid,
           (unsigned long long)rep.last_pg, (unsigned long long)rep.pages_checked,
           (unsigned long long)rep.branch_pages, (unsigned long long)rep.leaf_pages,
           (unsigned long long)rep.overflow_pages, (unsigned long long)rep.sub_pages,
           (unsigned long long)rep.free_pages, (unsigned long long)rep.named_dbs,
           (unsigned long long)rep.entries);
    assert_int_equal(rep.problems, 0);
    assert_int_equal(rep.named_dbs, 6);
    assert_true(rep.overflow_pages > 0 && rep.sub_pages > 0 && rep.free_pages > 0);
    /* depth >= 3 somewhere: the "wide" DB */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_stat st;
    CHECK_MDB(mdb_env_create(&env));
    CHECK_MDB(mdb_env_set_maxdbs(env, 16));
    CHECK_MDB(mdb_env_open(env, g_path, MDB_NOSUBDIR | MDB_RDONLY, 0644));
    CHECK_MDB(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
    CHECK_MDB(mdb_dbi_open(txn, "wide", 0, &dbi));
    CHECK_MDB(mdb_stat(txn, dbi, &st));
    printf("wide: depth %u, %zu entries\n", st.ms_depth, st.ms_entries);
    assert_true(st.ms_depth >= 3);
    mdb_txn_abort(txn);
    mdb_env_close(env);
}

static void test_empty_and_missing(void **state)
{
    (void)state;
    char p[320];
    lmdb_check_report rep;
    snprintf(p, sizeof p, "%s/empty.mdb", g_dir);
    MDB_env *env;
    CHECK_MDB(mdb_env_create(&env));
    CHECK_MDB(mdb_env_open(env, p, MDB_NOSUBDIR, 0644));
    mdb_env_close(env);
    int rc = lmdb_check_file(p, &rep);
    if (rc)
        fail_msg("fresh empty env rejected: %s", rep.first);
    rm_env(p);
    assert_int_equal(lmdb_check_file(p, &rep), -ENOENT);
    int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(lmdb_check_file(p, &rep), PTB_ECORRUPT);
    printf("empty file: %s\n", rep.first);
    unlink(p);
    assert_int_equal(lmdb_check_mem(NULL, 0, &rep), PTB_EINVAL);
    /* truncated: the metas survive, the pages do not */
    assert_int_equal(lmdb_check_mem(g_img, g_len / 2, &rep), PTB_ECORRUPT);
    printf("truncated: %s\n", rep.first);
}

/* Walk one DB every way a reader might. Returns the number of items seen. */
static long walk_dbi(MDB_txn *txn, MDB_dbi dbi)
{
    MDB_cursor *cur;
    MDB_val k, v;
    unsigned flags = 0;
    long items = 0;
    volatile unsigned sum = 0;
    MDB_stat st;
    mdb_stat(txn, dbi, &st);
    mdb_dbi_flags(txn, dbi, &flags);
    if (mdb_cursor_open(txn, dbi, &cur))
        return 0;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && items < 2000000;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), items++) {
        for (size_t i = 0; i < k.mv_size; i++)
            sum += ((unsigned char *)k.mv_data)[i];
        for (size_t i = 0; i < v.mv_size; i++)
            sum += ((unsigned char *)v.mv_data)[i];
        if (items % 8)
            continue; /* searches from the root, for every 8th item (the scans reach every page) */
        MDB_val k2 = k, v2;
        mdb_get(txn, dbi, &k2, &v2);
        MDB_cursor *c2;
        if (mdb_cursor_open(txn, dbi, &c2) == 0) {
            MDB_val k3 = k, v3 = v;
            mdb_cursor_get(c2, &k3, &v3, MDB_SET_RANGE);
            if (flags & MDB_DUPSORT) {
                size_t cnt;
                k3 = k;
                v3 = v;
                mdb_cursor_get(c2, &k3, &v3, MDB_GET_BOTH);
                mdb_cursor_count(c2, &cnt);
                mdb_cursor_get(c2, &k3, &v3, MDB_LAST_DUP);
                if ((flags & MDB_DUPFIXED) && mdb_cursor_get(c2, &k3, &v3, MDB_GET_MULTIPLE) == 0)
                    for (size_t i = 0; i < v3.mv_size; i++)
                        sum += ((unsigned char *)v3.mv_data)[i];
            }
            mdb_cursor_close(c2);
        }
    }
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_LAST); rc == 0 && items < 4000000;
         rc = mdb_cursor_get(cur, &k, &v, MDB_PREV), items++)
        sum += k.mv_size ? ((unsigned char *)k.mv_data)[0] : 0;
    if (flags & MDB_DUPSORT)
        for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && items < 6000000;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_NODUP), items++)
            ;
    mdb_cursor_close(cur);
    return items + (long)(sum & 0); /* sum: reads every byte, so a bad pointer faults here */
}

/* In the child: open path with liblmdb and read everything. Exits 0 whatever liblmdb says. */
static void child_walk(const char *path, unsigned secs)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi main;
    alarm(secs); /* a hang (liblmdb looping on a cycle) counts as a failure */
    if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 64) ||
        mdb_env_open(env, path, MDB_NOSUBDIR | MDB_RDONLY, 0644))
        _exit(0);
    MDB_envinfo info;
    MDB_stat st;
    mdb_env_info(env, &info);
    mdb_env_stat(env, &st);
    if (mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) || mdb_dbi_open(txn, NULL, 0, &main))
        _exit(0);
    walk_dbi(txn, 0); /* the free DB */
    walk_dbi(txn, main);
    MDB_cursor *cur;
    MDB_val k, v;
    if (mdb_cursor_open(txn, main, &cur) == 0) {
        int n = 0;
        for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && n < 10000;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_NODUP), n++) {
            char name[256];
            MDB_dbi dbi;
            if (k.mv_size == 0 || k.mv_size >= sizeof name || memchr(k.mv_data, 0, k.mv_size))
                continue;
            memcpy(name, k.mv_data, k.mv_size);
            name[k.mv_size] = 0;
            if (mdb_dbi_open(txn, name, 0, &dbi) == 0)
                walk_dbi(txn, dbi);
        }
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    mdb_env_close(env);
    _exit(0);
}

/* 0: the child exited normally within secs; else the signal (SIGALRM: it hung) or 1000 + its
 * exit status. */
static int run_child(const char *path, unsigned secs)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* cmocka catches these to report a failed test; here they must kill the child */
        static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            signal(sigs[i], SIG_DFL);
        struct rlimit nocore = {0, 0}; /* expected crashes: no core files */
        setrlimit(RLIMIT_CORE, &nocore);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2); /* liblmdb prints assertion failures */
        child_walk(path, secs);
    }
    int st;
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (WIFSIGNALED(st))
        return WTERMSIG(st);
    return WEXITSTATUS(st) ? 1000 + WEXITSTATUS(st) : 0;
}

static void write_image(const char *path, const uint8_t *img, size_t len)
{
    rm_env(path);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, img, len), (ssize_t)len);
    close(fd);
}

/* The pages the pristine snapshot uses: those whose page number, once damaged, the check
 * notices (free pages keep stale headers that nothing reads). */
static void find_live_pages(uint32_t ps, uint64_t npages)
{
    lmdb_check_report rep;
    uint8_t *img = malloc(g_len);
    assert_non_null(img);
    memcpy(img, g_img, g_len);
    g_live = calloc(npages, sizeof *g_live);
    assert_non_null(g_live);
    for (uint64_t pg = 2; pg < npages; pg++) {
        img[pg * ps] ^= 0x80;
        if (lmdb_check_mem(img, g_len, &rep) == PTB_ECORRUPT)
            g_live[g_nlive++] = pg;
        img[pg * ps] ^= 0x80;
    }
    free(img);
    assert_true(g_nlive > 0);
}

/* An offset aimed at a structure of a live page of the pristine image, by kind. */
static size_t aim(unsigned kind, uint32_t ps)
{
    uint64_t pg = g_live[rng() % g_nlive];
    const uint8_t *p = g_img + pg * ps;
    uint16_t flags, lower;
    memcpy(&flags, p + 10, 2);
    memcpy(&lower, p + 12, 2);
    int nodes = (flags & 3) && !(flags & 0x20) && lower > 16 && lower <= ps;
    unsigned n = nodes ? (lower - 16u) / 2 : 0;
    switch (kind) {
    case 0: /* meta pages: header and MDB_meta */ return (rng() & 1) * ps + rng() % (16 + 136);
    case 1: /* page header */ return pg * ps + rng() % 16;
    case 2: /* node offset array */
        return n ? pg * ps + 16 + rng() % (2 * n) : pg * ps + rng() % 16;
    default: { /* node header: mn_lo, mn_hi, mn_flags (branch: child pgno), mn_ksize */
        if (!n)
            return pg * ps + rng() % 16;
        uint16_t off;
        memcpy(&off, p + 16 + 2 * (rng() % n), 2);
        return off + 8u <= ps ? pg * ps + off + rng() % 8 : pg * ps + 12;
    }
    }
}

static void test_flips(void **state)
{
    (void)state;
    const char *env_n = getenv("PTB_LMDB_FLIPS");
    long nflips = env_n ? atol(env_n) : 3000;
    lmdb_check_report rep;
    assert_int_equal(lmdb_check_mem(g_img, g_len, &rep), 0);
    uint32_t ps = rep.psize;
    uint64_t npages = rep.last_pg + 1;
    size_t used = (size_t)npages * ps;
    char path[320];
    snprintf(path, sizeof path, "%s/flip.mdb", g_dir);
    find_live_pages(ps, npages);
    printf("%zu of %llu pages are live\n", g_nlive, (unsigned long long)npages);
    uint8_t *img = malloc(g_len);
    assert_non_null(img);
    memcpy(img, g_img, g_len);
    write_image(path, img, g_len);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    long detected = 0, passed = 0, crashed = 0, crashes_prevented = 0, hangs = 0,
         by_kind[6][2] = {{0}};
    rng_state = 0x5EED1234ABCDull;
    for (long i = 0; i < nflips; i++) {
        unsigned kind = (unsigned)(rng() % 6); /* 4: anywhere in a live page, 5: anywhere */
        size_t off = kind == 5   ? (size_t)(rng() % used)
                     : kind == 4 ? (size_t)(g_live[rng() % g_nlive] * ps + rng() % ps)
                                 : aim(kind, ps);
        uint8_t old = img[off], nv;
        if (rng() % 3)
            nv = old ^ (uint8_t)(1u << (rng() % 8));
        else
            do
                nv = (uint8_t)rng();
            while (nv == old);
        img[off] = nv;
        assert_int_equal(pwrite(fd, &nv, 1, (off_t)off), 1);
        char lock[330];
        snprintf(lock, sizeof lock, "%s-lock", path);
        unlink(lock);
        int rc = lmdb_check_mem(img, g_len, &rep);
        assert_true(rc == 0 || rc == PTB_ECORRUPT);
        if (rc) {
            detected++;
            by_kind[kind][0]++;
            if (i < 8)
                printf("flip %ld at %zu (0x%02x->0x%02x): %s\n", i, off, old, nv, rep.first);
            /* how many of these would have hurt liblmdb: not required, but worth knowing */
            int how = i % 4 == 0 ? run_child(path, 2) : 0;
            if (how) {
                crashes_prevented++;
                hangs += how == SIGALRM;
                if (crashes_prevented <= 5)
                    printf("caught: flip %ld at %zu would kill liblmdb (%d): %s\n", i, off, how,
                           rep.first);
            }
        } else {
            passed++;
            by_kind[kind][1]++;
            int how = run_child(path, 30);
            if (how) {
                crashed++;
                printf("CRASH: flip %ld at %zu (page %zu +%zu) 0x%02x->0x%02x passed the check "
                       "but liblmdb died (%d)\n",
                       i, off, off / ps, off % ps, old, nv, how);
            }
        }
        img[off] = old;
        assert_int_equal(pwrite(fd, &old, 1, (off_t)off), 1);
    }
    close(fd);
    free(img);
    free(g_live);
    static const char *kinds[] = {"meta",        "page header", "node offsets",
                                  "node header", "live page",   "anywhere"};
    printf("flips: %ld, detected %ld, passed (benign) %ld, passed but crashed liblmdb %ld\n",
           nflips, detected, passed, crashed);
    for (int k = 0; k < 6; k++)
        printf("  %-13s detected %5ld  passed %5ld\n", kinds[k], by_kind[k][0], by_kind[k][1]);
    printf("  detected flips sampled (1 in 4) that crash liblmdb unchecked: %ld, hang it: %ld\n",
           crashes_prevented - hangs, hangs);
    assert_int_equal(crashed, 0);
}

/* Hand-made damage the random flips may miss: a cycle, a zero page size, a huge last page. */
static void test_targeted(void **state)
{
    (void)state;
    lmdb_check_report rep;
    uint8_t *img = malloc(g_len);
    assert_non_null(img);
    uint32_t ps;
    memcpy(&ps, g_img + 16 + 24, 4);
    /* page size 0 in meta 0 */
    memcpy(img, g_img, g_len);
    memset(img + 16 + 24, 0, 4);
    assert_int_equal(lmdb_check_mem(img, g_len, &rep), PTB_ECORRUPT);
    printf("psize 0: %s\n", rep.first);
    /* last page far beyond the file in both metas */
    memcpy(img, g_img, g_len);
    for (int m = 0; m < 2; m++)
        memset(img + m * ps + 16 + 120 + 4, 0x7f, 1);
    assert_int_equal(lmdb_check_mem(img, g_len, &rep), PTB_ECORRUPT);
    printf("last_pg: %s\n", rep.first);
    /* every branch page's first child points at itself: a cycle */
    memcpy(img, g_img, g_len);
    int found = 0;
    for (uint64_t pg = 2; pg * ps < g_len; pg++) {
        uint8_t *p = img + pg * ps;
        uint16_t flags, off;
        memcpy(&flags, p + 10, 2);
        if (flags != 1)
            continue;
        memcpy(&off, p + 16, 2);
        uint16_t lo = (uint16_t)pg, hi = (uint16_t)(pg >> 16);
        memcpy(p + off, &lo, 2);
        memcpy(p + off + 2, &hi, 2);
        found++;
    }
    assert_true(found > 0);
    assert_int_equal(lmdb_check_mem(img, g_len, &rep), PTB_ECORRUPT);
    printf("cycle: %s\n", rep.first);
    free(img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sound_store_passes),
        cmocka_unit_test(test_empty_and_missing),
        cmocka_unit_test(test_targeted),
        cmocka_unit_test(test_flips),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
