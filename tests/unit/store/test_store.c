/* Store writer and reader: real LMDB in a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

#include "common/test_events.h"
#include "store.h"

static char *tmpdir(void)
{
    char t[] = "/tmp/ptb-test-store-XXXXXX";
    assert_non_null(mkdtemp(t));
    char *d = malloc(strlen(t) + 16);
    sprintf(d, "%s/RUN.ptb", t);
    return d;
}

static void rmtree(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

typedef struct producer_arg {
    store *s;
    uint64_t from, to;
} producer_arg;

static void write_range(store *s, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i < to; i++) {
        test_event b;
        uint64_t seq;
        assert_int_equal(store_append(s, test_event_make(&b, i), 0, &seq), 0);
        assert_int_equal(seq, i + 1);
    }
}

static void test_roundtrip_and_indexes(void **state)
{
    (void)state;
    char *dir = tmpdir();
    store_options o;
    store_options_default(&o);
    o.batch_events = 97; /* many batches */
    store *s;
    assert_int_equal(store_open(dir, &o, STORE_CREATE | STORE_EXCL, &s), 0);
    const uint64_t N = 5000;
    write_range(s, 0, N);
    assert_int_equal(store_flush(s), 0);
    store_write_stats ws;
    store_write_stats_get(s, &ws);
    assert_int_equal(ws.events, N);
    assert_true(ws.batches >= N / 97);
    assert_int_equal(store_close(s), 0);

    /* a second writer session appends after the first */
    assert_int_equal(store_open(dir, &o, STORE_CREATE, &s), 0);
    write_range(s, N, N + 1000);
    assert_int_equal(store_close(s), 0);

    assert_int_equal(store_open(dir, NULL, STORE_RDONLY, &s), 0);
    store_txn *t;
    assert_int_equal(store_txn_begin(s, &t), 0);
    assert_int_equal(store_txn_last_seq(t), N + 1000);

    /* by seq */
    store_range r = {.seq_from = 10, .seq_to = 20};
    store_cursor *c;
    const ptb_event *ev;
    assert_int_equal(store_cursor_open(t, &r, &c), 0);
    uint64_t n = 0;
    while (store_cursor_next(c, &ev) == 0)
        assert_true(test_event_equal(ev, 9 + n++));
    assert_int_equal(n, 11);
    store_cursor_close(c);

    /* by path index == brute force */
    uint32_t sid;
    assert_int_equal(store_string_lookup(t, "/work/data/file-3.jsonl", 23, &sid), 0);
    r = (store_range){.by_index = true, .index = STORE_IX_PATH, .key = sid};
    assert_int_equal(store_cursor_open(t, &r, &c), 0);
    n = 0;
    uint64_t expect_i = 0;
    while (store_cursor_next(c, &ev) == 0) {
        while (!(expect_i % 4 == 0 && expect_i % 13 == 3))
            expect_i++;
        assert_true(test_event_equal(ev, expect_i++));
        n++;
    }
    store_cursor_close(c);
    uint64_t cnt;
    assert_int_equal(store_index_count(t, STORE_IX_PATH, sid, &cnt), 0);
    assert_int_equal(cnt, n);
    assert_true(n > 50);

    /* index cursor starting mid-way */
    r.seq_from = 3000;
    assert_int_equal(store_cursor_open(t, &r, &c), 0);
    uint64_t seq, m = 0;
    while (store_cursor_next_seq(c, &seq) == 0) {
        assert_true(seq >= 3000);
        assert_int_equal((seq - 1) % 4, 0);
        assert_int_equal((seq - 1) % 13, 3);
        m++;
    }
    store_cursor_close(c);
    assert_true(m > 0 && m < n);

    /* type, tool, host, kernel, exec */
    assert_int_equal(store_index_count(t, STORE_IX_TYPE, PTB__V1__EVENT__BODY_GPU_KERNEL, &cnt), 0);
    assert_int_equal(cnt, (N + 1000) / 4);
    assert_int_equal(store_string_lookup(t, "Bash", 4, &sid), 0);
    assert_int_equal(store_index_count(t, STORE_IX_TOOL, sid, &cnt), 0);
    assert_int_equal(cnt, (N + 1000) / 8);
    assert_int_equal(store_string_lookup(t, "huggingface.co", 14, &sid), 0);
    assert_int_equal(store_index_count(t, STORE_IX_HOST, sid, &cnt), 0);
    assert_int_equal(cnt, (N + 1000) / 8);
    assert_int_equal(store_index_count(t, STORE_IX_EXEC, 3, &cnt), 0);
    assert_int_equal(cnt, (N + 1000) / 7 + ((N + 1000) % 7 > 2));
    assert_int_equal(store_string_lookup(t, "nope", 4, &sid), PTB_ENOTFOUND);

    /* by time: events 100..199 */
    r = (store_range){.by_time = true,
                      .ts_from = 1700000000000000000LL + 100 * 1000,
                      .ts_to = 1700000000000000000LL + 199 * 1000};
    assert_int_equal(store_cursor_open(t, &r, &c), 0);
    n = 0;
    while (store_cursor_next(c, &ev) == 0)
        if (ev->ts_ns >= r.ts_from && ev->ts_ns <= r.ts_to)
            assert_true(test_event_equal(ev, 100 + n++));
    assert_int_equal(n, 100);
    store_cursor_close(c);

    store_summary sum;
    assert_int_equal(store_summary_get(t, &sum), 0);
    assert_int_equal(sum.events, N + 1000);
    assert_int_equal(sum.ts_min, 1700000000000000000LL);
    store_txn_end(t);
    store_close(s);

    store_verify_report rep;
    int rc = store_verify(dir, &rep, NULL, NULL);
    if (rc)
        fprintf(stderr, "verify: %s\n", rep.first);
    assert_int_equal(rc, 0);
    assert_int_equal(rep.events, N + 1000);
    rmtree(dir);
    free(dir);
}

static void *producer(void *arg)
{
    producer_arg *p = arg;
    for (uint64_t i = p->from; i < p->to; i++) {
        test_event b;
        if (store_append(p->s, test_event_make(&b, i), 0, NULL))
            return (void *)1;
    }
    return NULL;
}

static void test_threads_small_queue(void **state)
{
    (void)state;
    char *dir = tmpdir();
    store_options o;
    store_options_default(&o);
    o.queue_bytes = 64 * 1024; /* tiny: producers must wait */
    o.batch_events = 500;
    o.map_size_initial = 64 * 1024; /* tiny: the map must grow */
    store *s;
    assert_int_equal(store_open(dir, &o, STORE_CREATE, &s), 0);
    pthread_t th[4];
    producer_arg pa[4];
    for (int i = 0; i < 4; i++) {
        pa[i] = (producer_arg){s, (uint64_t)i * 20000, (uint64_t)(i + 1) * 20000};
        pthread_create(&th[i], NULL, producer, &pa[i]);
    }
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        assert_null(r);
    }
    store_write_stats ws;
    assert_int_equal(store_flush(s), 0);
    store_write_stats_get(s, &ws);
    assert_int_equal(ws.events, 80000);
    assert_true(ws.map_grows > 0);
    assert_true(ws.waits > 0);
    assert_int_equal(store_close(s), 0);
    store_verify_report rep;
    assert_int_equal(store_verify(dir, &rep, NULL, NULL), 0);
    assert_int_equal(rep.events, 80000);
    rmtree(dir);
    free(dir);
}

static void test_blobs(void **state)
{
    (void)state;
    char *dir = tmpdir();
    store_options o;
    store_options_default(&o);
    o.blob_max = 1 << 20;
    o.blob_budget = 3 << 20;
    store *s;
    assert_int_equal(store_open(dir, &o, STORE_CREATE, &s), 0);
    size_t n = 900 * 1024;
    uint8_t *data = malloc(n);
    uint64_t x = 1;
    for (size_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        data[i] = (uint8_t)(x >> 56); /* incompressible */
    }
    uint8_t sha[32], sha2[32];
    assert_int_equal(store_blob_put(s, data, n, "a", sha), 0);
    assert_int_equal(store_blob_put(s, data, n, "a again", sha2), 0); /* dedup */
    assert_memory_equal(sha, sha2, 32);
    assert_int_equal(store_blob_put(s, "hello", 5, "small", sha2), 0);
    uint8_t *big = calloc(1, (1 << 20) + 1);
    assert_int_equal(store_blob_put(s, big, (1 << 20) + 1, "big.bin", sha2), PTB_ETOOBIG);
    data[0] ^= 1;
    assert_int_equal(store_blob_put(s, data, n, "b", sha2), 0);
    data[0] ^= 2;
    assert_int_equal(store_blob_put(s, data, n, "c", sha2), 0);
    data[0] ^= 4;
    assert_int_equal(store_blob_put(s, data, n, "d", sha2), PTB_EBUDGET);
    store_write_stats ws;
    assert_int_equal(store_flush(s), 0);
    store_write_stats_get(s, &ws);
    assert_int_equal(ws.blobs_new, 4);
    assert_int_equal(ws.blobs_dup, 1);
    assert_int_equal(store_close(s), 0);

    assert_int_equal(store_open(dir, NULL, STORE_RDONLY, &s), 0);
    store_txn *t;
    assert_int_equal(store_txn_begin(s, &t), 0);
    void *back;
    size_t blen;
    assert_int_equal(store_blob_get(t, sha, &back, &blen), 0);
    data[0] ^= 7;
    assert_int_equal(blen, n);
    assert_memory_equal(back, data, n);
    free(back);
    assert_false(store_blob_exists(t, sha2) && 0);
    /* two gap events: blob_cap and blob_budget, with path and size */
    store_range r = {.by_index = true, .index = STORE_IX_TYPE, .key = PTB__V1__EVENT__BODY_GAP};
    store_cursor *c;
    const ptb_event *ev;
    assert_int_equal(store_cursor_open(t, &r, &c), 0);
    assert_int_equal(store_cursor_next(c, &ev), 0);
    assert_string_equal(ev->gap->reason, "blob_cap");
    assert_string_equal(ev->gap->path, "big.bin");
    assert_int_equal(ev->gap->bytes, (1 << 20) + 1);
    assert_int_equal(store_cursor_next(c, &ev), 0);
    assert_string_equal(ev->gap->reason, "blob_budget");
    assert_int_equal(store_cursor_next(c, &ev), PTB_ENOTFOUND);
    store_cursor_close(c);
    store_txn_end(t);
    store_close(s);
    store_verify_report rep;
    assert_int_equal(store_verify(dir, &rep, NULL, NULL), 0);
    assert_int_equal(rep.blobs, 4);
    free(data);
    free(big);
    rmtree(dir);
    free(dir);
}

/* Rewriting one stored event (same length, other bytes) breaks the chain. */
/* Rewrite the stored bytes of event seq behind the store's back (raw LMDB): edit(arg, val)
 * changes val (it may point val at its own buffer, which must live until this returns). */
static void raw_event_edit(const char *dir, uint64_t seq, void (*edit)(void *arg, MDB_val *val),
                           void *arg)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 32);
    assert_int_equal(mdb_env_open(env, dir, 0, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "events", 0, &dbi), 0);
    uint8_t k[8];
    for (int i = 0; i < 8; i++)
        k[i] = (uint8_t)(seq >> (56 - 8 * i));
    MDB_val key = {8, k}, val;
    assert_int_equal(mdb_get(txn, dbi, &key, &val), 0);
    edit(arg, &val);
    assert_int_equal(mdb_put(txn, dbi, &key, &val, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* the last varint of the body flipped: still decodes (arg: 4096 bytes) */
static void flip_last(void *arg, MDB_val *val)
{
    uint8_t *copy = arg;
    assert_true(val->mv_size <= 4096);
    memcpy(copy, val->mv_data, val->mv_size);
    copy[val->mv_size - 1] ^= 1;
    val->mv_data = copy;
}

static void test_tamper_detected(void **state)
{
    (void)state;
    char *dir = tmpdir();
    store *s;
    assert_int_equal(store_open(dir, NULL, STORE_CREATE, &s), 0);
    write_range(s, 0, 100);
    assert_int_equal(store_close(s), 0);
    uint8_t copy[4096];
    raw_event_edit(dir, 42, flip_last, copy);
    store_verify_report rep;
    int rc = store_verify(dir, &rep, NULL, NULL);
    assert_true(rc == PTB_ECHAIN || rc == PTB_ECORRUPT);
    assert_true(rep.problems >= 1);
    assert_non_null(strstr(rep.first, "batch"));
    rmtree(dir);
    free(dir);
}

/* Events committed but not indexed yet (the index tail) are found through the index all the
 * same, by a reader of the live store and after a crash of the writer. */
static void test_index_tail(void **state)
{
    (void)state;
    char *dir = tmpdir();
    store_options o;
    store_options_default(&o);
    o.batch_events = 100;
    o.index_events = 1000;
    o.index_ms = 3600 * 1000;
    store *s;
    assert_int_equal(store_open(dir, &o, STORE_CREATE, &s), 0);
    write_range(s, 0, 2500); /* postings written at ~1000 and ~2000, the rest pending */
    assert_int_equal(store_flush(s), 0);
    store *r;
    assert_int_equal(store_open(dir, NULL, STORE_RDONLY, &r), 0);
    store_txn *t;
    assert_int_equal(store_txn_begin(r, &t), 0);
    assert_int_equal(store_txn_last_seq(t), 2500);
    uint32_t sid;
    assert_int_equal(store_string_lookup(t, "Bash", 4, &sid), 0);
    uint64_t cnt;
    assert_int_equal(store_index_count(t, STORE_IX_TOOL, sid, &cnt), 0);
    uint64_t want = 0, want_from = 0;
    for (uint64_t i = 0; i < 2500; i++) {
        want += i % 8 == 3;
        want_from += i % 8 == 3 && i + 1 >= 1500;
    }
    assert_int_equal(cnt, want);
    store_range rg = {.by_index = true, .index = STORE_IX_TOOL, .key = sid, .seq_from = 1500};
    store_cursor *c;
    const ptb_event *ev;
    assert_int_equal(store_cursor_open(t, &rg, &c), 0);
    uint64_t n = 0, last = 0;
    while (store_cursor_next(c, &ev) == 0) {
        assert_true(ev->seq >= 1500 && ev->seq > last);
        assert_string_equal(ev->tool_call->name, "Bash");
        last = ev->seq;
        n++;
    }
    store_cursor_close(c);
    assert_int_equal(n, want_from);
    assert_true(last > 2400);
    store_txn_end(t);
    store_close(r);
    write_range(s, 2500, 2600);
    assert_int_equal(store_close(s), 0); /* close writes the pending postings */
    store_verify_report rep;
    assert_int_equal(store_verify(dir, &rep, NULL, NULL), 0);
    rmtree(dir);
    free(dir);
}

/* a kernel batch whose name column is one short (valid protobuf, a corrupt batch) */
static void short_name_column(void *arg, MDB_val *val)
{
    ptb_event *stored = ptb__v1__event__unpack(NULL, val->mv_size, val->mv_data);
    assert_non_null(stored);
    assert_true(protobuf_c_message_get_packed_size(&stored->base) <= 1024); /* arg's size */
    stored->gpu_kernel_batch->n_name = 2;
    val->mv_size = protobuf_c_message_pack(&stored->base, arg);
    val->mv_data = arg;
    ptb__v1__event__free_unpacked(stored, NULL);
}

/* Kernel batches: malformed ones are refused at append; a good one reads back launch by launch
 * and verifies; one damaged on disk is reported by the cursor (which goes on) and by verify. */
static void test_kernel_batches(void **state)
{
    (void)state;
    char *dir = tmpdir();
    store *s;
    assert_int_equal(store_open(dir, NULL, STORE_CREATE, &s), 0);
    Ptb__V1__GpuKernelName n1 = PTB__V1__GPU_KERNEL_NAME__INIT, n2 = PTB__V1__GPU_KERNEL_NAME__INIT;
    n1.name = (char *)"gemm";
    n2.name = (char *)"softmax";
    Ptb__V1__GpuKernelName *names[] = {&n1, &n2};
    uint32_t nm[] = {2, 1, 0}, grid[] = {7, 8, 9};
    int64_t delta[] = {0, 500, -200}, dur[] = {100, 200, 300};
    int32_t corr[] = {10, 1, 1};
    Ptb__V1__GpuKernelBatch b = PTB__V1__GPU_KERNEL_BATCH__INIT;
    b.count = 3;
    b.n_names = 2;
    b.names = names;
    b.n_name = b.n_grid_x = b.n_start_delta = b.n_duration = b.n_correlation_delta = 3;
    b.name = nm;
    b.grid_x = grid;
    b.start_delta = delta;
    b.duration = dur;
    b.correlation_delta = corr;
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.ts_ns = 1000000;
    ev.exec_id = 5;
    ev.body_case = PTB__V1__EVENT__BODY_GPU_KERNEL_BATCH;
    ev.gpu_kernel_batch = &b;
    /* refused: a short column, a name index past the names, no launches */
    b.n_grid_x = 2;
    assert_int_equal(store_append(s, &ev, 0, NULL), PTB_EINVAL);
    b.n_grid_x = 3;
    nm[0] = 3;
    assert_int_equal(store_append(s, &ev, 0, NULL), PTB_EINVAL);
    nm[0] = 2;
    b.count = 0;
    assert_int_equal(store_append(s, &ev, 0, NULL), PTB_EINVAL);
    b.count = 3;
    Ptb__V1__GpuKernelName *many[STORE_KERNELS_NAMES_MAX + 1]; /* more than get index postings */
    for (int i = 0; i <= STORE_KERNELS_NAMES_MAX; i++)
        many[i] = &n1;
    b.names = many;
    b.n_names = STORE_KERNELS_NAMES_MAX + 1;
    assert_int_equal(store_append(s, &ev, 0, NULL), PTB_EINVAL);
    b.names = names;
    b.n_names = 2;
    for (int i = 0; i < 2; i++)
        assert_int_equal(store_append(s, &ev, 0, NULL), 0);
    write_range(s, 2, 3); /* one plain event, seq 3 */
    assert_int_equal(store_close(s), 0);
    store_verify_report rep;
    assert_int_equal(store_verify(dir, &rep, NULL, NULL), 0);

    /* launch by launch: names, deltas (one start before the batch's), sub */
    assert_int_equal(store_open(dir, NULL, STORE_RDONLY, &s), 0);
    store_txn *t;
    assert_int_equal(store_txn_begin(s, &t), 0);
    store_range all = {0};
    store_cursor *c;
    const ptb_event *e;
    assert_int_equal(store_cursor_open(t, &all, &c), 0);
    static const char *want_name[] = {"softmax", "gemm", ""};
    static const int64_t want_start[] = {1000000, 1000500, 1000300};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(store_cursor_next(c, &e), 0);
        assert_int_equal(e->body_case, PTB__V1__EVENT__BODY_GPU_KERNEL);
        assert_int_equal(e->seq, 1);
        assert_int_equal(e->sub, i + 1);
        assert_int_equal(e->exec_id, 5);
        assert_string_equal(e->gpu_kernel->name, want_name[i]);
        assert_int_equal(e->gpu_kernel->grid_x, grid[i]);
        assert_int_equal(e->gpu_kernel->start_ns, want_start[i]);
        assert_int_equal(e->ts_ns, want_start[i]);
        assert_int_equal(e->gpu_kernel->end_ns, want_start[i] + dur[i]);
        assert_int_equal(e->gpu_kernel->correlation_id, 10 + i);
        assert_int_equal(e->gpu_kernel->device, 0); /* an empty column */
    }
    store_cursor_close(c);
    /* the time span of the store covers the launch before the batch's ts */
    store_summary sum;
    assert_int_equal(store_summary_get(t, &sum), 0);
    assert_true(sum.ts_min <= 1000000);
    store_txn_end(t);
    store_close(s);

    /* damage batch 1 on disk: its name column one short (still valid protobuf) */
    uint8_t buf[1024];
    raw_event_edit(dir, 1, short_name_column, buf);
    assert_int_equal(store_open(dir, NULL, STORE_RDONLY | STORE_NOCHECK, &s), 0);
    assert_int_equal(store_txn_begin(s, &t), 0);
    assert_int_equal(store_cursor_open(t, &all, &c), 0);
    assert_int_equal(store_cursor_next(c, &e), PTB_ECORRUPT);
    for (int i = 0; i < 3; i++) { /* the next batch is whole */
        assert_int_equal(store_cursor_next(c, &e), 0);
        assert_int_equal(e->seq, 2);
        assert_int_equal(e->sub, i + 1);
    }
    assert_int_equal(store_cursor_next(c, &e), 0);
    assert_int_equal(e->seq, 3);
    assert_int_equal(store_cursor_next(c, &e), PTB_ENOTFOUND);
    store_cursor_close(c);
    store_txn_end(t);
    store_close(s);
    assert_int_not_equal(store_verify(dir, &rep, NULL, NULL), 0);
    assert_true(rep.problems >= 1);
    rmtree(dir);
    free(dir);
}

static void test_open_errors(void **state)
{
    /* error names: ptb's own, LMDB's, and any errno (from glibc) */
    assert_string_equal(ptb_errname(PTB_ECORRUPT), "PTB_ECORRUPT");
    assert_string_equal(ptb_errname(MDB_MAP_FULL), "MDB_MAP_FULL");
    assert_string_equal(ptb_errname(-ECONNREFUSED), "ECONNREFUSED");
    assert_string_equal(ptb_errname(-ENOENT), "ENOENT");
    (void)state;
    store *s;
    assert_int_equal(store_open("/nonexistent/ptb/store", NULL, STORE_RDONLY, &s), -ENOENT);
    assert_non_null(strstr(store_errmsg(s), "/nonexistent"));
    store_close(s);
    assert_int_equal(store_open("/tmp", NULL, STORE_RDONLY, &s), PTB_ENOSTORE);
    store_close(s);
    char *dir = tmpdir();
    assert_int_equal(store_open(dir, NULL, STORE_CREATE, &s), 0);
    store *s2;
    assert_int_equal(store_open(dir, NULL, STORE_CREATE, &s2), PTB_ELOCKED);
    store_close(s2);
    assert_int_equal(store_close(s), 0);
    assert_int_equal(store_open(dir, NULL, STORE_CREATE | STORE_EXCL, &s2), PTB_EEXIST);
    store_close(s2);
    rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_and_indexes),
        cmocka_unit_test(test_threads_small_queue),
        cmocka_unit_test(test_blobs),
        cmocka_unit_test(test_tamper_detected),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_index_tail),
        cmocka_unit_test(test_kernel_batches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
