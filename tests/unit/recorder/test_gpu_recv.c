/* GPU recording without a GPU, part 2: the receiver (gpu_recv.h) on a real store, and the
 * injection library libptbgpu.so itself with a stand-in libcupti (where CUPTI's headers are
 * installed). test_gpu_wire.c has the codec and the record conversion.
 *
 * Receiver: connects as libptbgpu.so does, sends a process's batches (hello, contexts, a name
 * table, kernels, copies, memsets, gaps, an end record) plus malformed batches, a second
 * process that lies about its pid and leaves without its end, one that skips its hello, one
 * still connected at stop, and 20 full batches; then reads the store back and checks the events
 * field by field (exec_id from the callback, names, times, counts, gaps). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "event_type.h"
#include "gpu_recv.h"
#include "gpu_wire.h"
#include "ptb_error.h"
#include "store.h"
#include "gpu_test_recs.h"
#ifdef PTB_GPU_HAVE_CUPTI
#include <dlfcn.h>
#include <sys/wait.h>

#include "gpu_cupti.h"
#endif

/* ---- the receiver on a real store ---------------------------------------------------------- */

typedef struct rx {
    char dir[64], store_dir[96], sock[100];
    store *s;
    gpu_recv *r;
    int exec_calls;
} rx;

static uint64_t exec_of(void *arg, int pid)
{
    rx *x = arg;
    x->exec_calls++;
    return pid == getpid() ? 4242 : 1000000 + (uint64_t)pid;
}

static int rx_connect(const rx *x)
{
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, x->sock, strlen(x->sock) + 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static void rx_send(int fd, const gpu_wire_rec *recs, size_t n)
{
    static uint8_t buf[GPU_WIRE_BATCH_MAX];
    size_t len = build(buf, sizeof buf, recs, n);
    assert_int_equal(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Wait until the receiver has read `batches` batches in all. */
static void rx_wait(rx *x, uint64_t batches)
{
    for (int i = 0; i < 5000; i++) {
        gpu_recv_stats st;
        gpu_recv_stats_get(x->r, &st);
        if (st.batches >= batches)
            return;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    fail_msg("the receiver did not read %llu batches", (unsigned long long)batches);
}

static void rx_paths(rx *x)
{
    memset(x, 0, sizeof *x);
    snprintf(x->dir, sizeof x->dir, "/tmp/ptb-test-gpu-XXXXXX");
    assert_non_null(mkdtemp(x->dir));
    snprintf(x->store_dir, sizeof x->store_dir, "%s/s.ptb", x->dir);
    snprintf(x->sock, sizeof x->sock, "%s/gpu.sock", x->dir);
}

static void rx_start(rx *x)
{
    assert_int_equal(store_open(x->store_dir, NULL, STORE_CREATE, &x->s), 0);
    ptb_errbuf eb = {{0}};
    assert_int_equal(gpu_recv_start(x->s, x->sock, exec_of, x, &x->r, &eb), 0);
}

static void rx_open(rx *x)
{
    rx_paths(x);
    rx_start(x);
}

static void rx_remove(rx *x)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", x->dir);
    assert_int_equal(system(cmd), 0);
}

/* Every event as readers see it (kernel batches launch by launch, store.h): seq, sub and body
 * case, read once (the bulk part holds thousands of events). */
typedef struct seen_ev {
    uint64_t seq;
    uint32_t sub;
    int body;
} seen_ev;
static seen_ev *bodies;
static uint64_t n_bodies;

static void bodies_load(store_txn *t)
{
    size_t cap = 1024;
    n_bodies = 0;
    bodies = malloc(cap * sizeof *bodies);
    assert_non_null(bodies);
    store_range all = {0};
    store_cursor *c;
    assert_int_equal(store_cursor_open(t, &all, &c), 0);
    const ptb_event *ev;
    int rc;
    while ((rc = store_cursor_next(c, &ev)) == 0) {
        assert_int_not_equal(ev->body_case, PTB__V1__EVENT__BODY_GPU_KERNEL_BATCH);
        if (n_bodies == cap) {
            cap *= 2;
            bodies = realloc(bodies, cap * sizeof *bodies);
            assert_non_null(bodies);
        }
        bodies[n_bodies++] = (seen_ev){ev->seq, ev->sub, (int)ev->body_case};
    }
    assert_int_equal(rc, PTB_ENOTFOUND);
    store_cursor_close(c);
}

static store_cursor *nth_cursor;

static void bodies_free(void)
{
    free(bodies);
    bodies = NULL;
    n_bodies = 0;
    store_cursor_close(nth_cursor);
    nth_cursor = NULL;
}

/* The n-th (from 0) event of a body case, or NULL; valid until the next call. */
static const ptb_event *nth(store_txn *t, int body, int n)
{
    for (uint64_t i = 0; i < n_bodies; i++)
        if (bodies[i].body == body && n-- == 0) {
            store_cursor_close(nth_cursor);
            store_range r = {.seq_from = bodies[i].seq, .seq_to = bodies[i].seq};
            assert_int_equal(store_cursor_open(t, &r, &nth_cursor), 0);
            const ptb_event *ev;
            while (store_cursor_next(nth_cursor, &ev) == 0)
                if (ev->sub == bodies[i].sub)
                    return ev;
            fail_msg("seq %llu sub %u is gone", (unsigned long long)bodies[i].seq, bodies[i].sub);
        }
    return NULL;
}

static int count(store_txn *t, int body)
{
    (void)t;
    int n = 0;
    for (uint64_t i = 0; i < n_bodies; i++)
        n += bodies[i].body == body;
    return n;
}

/* The n-th gap of a reason. */
static const Ptb__V1__Gap *gap_of(store_txn *t, const char *reason, int n, uint64_t *exec_id)
{
    for (int i = 0;; i++) {
        const ptb_event *ev = nth(t, PTB__V1__EVENT__BODY_GAP, i);
        if (!ev)
            return NULL;
        if (!strcmp(ev->gap->reason, reason) && n-- == 0) {
            assert_string_equal(ev->gap->origin, "gpu");
            assert_int_equal(ev->source, PTB__V1__SOURCE__SOURCE_GPU);
            if (exec_id)
                *exec_id = ev->exec_id;
            return ev->gap;
        }
    }
}

static void test_recv(void **state)
{
    (void)state;
    rx x;
    rx_open(&x);
    struct stat sb;
    assert_int_equal(stat(x.sock, &sb), 0);
    assert_true(S_ISSOCK(sb.st_mode));
    assert_int_equal(sb.st_mode & 0777, 0600);
    /* the path is taken */
    gpu_recv *r2 = NULL;
    ptb_errbuf eb = {{0}};
    assert_int_equal(gpu_recv_start(x.s, x.sock, NULL, NULL, &r2, &eb), -EADDRINUSE);
    assert_null(r2);
    assert_non_null(strstr(eb.msg, "bind"));
    char longpath[200];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = 0;
    assert_int_equal(gpu_recv_start(x.s, longpath, NULL, NULL, &r2, NULL), PTB_EINVAL);

    uint64_t batches = 0;
    /* process A: everything, with a name table and its end record */
    int a = rx_connect(&x);
    char cut[GPU_WIRE_NAME_MAX + 1];
    memset(cut, 'n', GPU_WIRE_NAME_MAX);
    cut[GPU_WIRE_NAME_MAX] = 0;
    memcpy(cut, "\xe2\x82\xac_", 4); /* valid UTF-8 */
    gpu_wire_rec b1[] = {
        rec_hello((uint32_t)getpid()),
        rec_context(),
        rec_name(1, "ptb_add(float*, float, int)", 0),
        rec_kernel(1, 0),
        rec_kernel(1, 1),
        rec_name(2, cut, 5000),
        rec_kernel(2, 2),
        rec_kernel(7, 3), /* an id never defined */
        rec_memcpy(GPU_WIRE_COPY_HTOD, false),
        rec_memcpy(GPU_WIRE_COPY_PTOP, true),
        rec_memset(),
        rec_gap(GPU_WIRE_GAP_SEND_DROPPED, 5, NULL),
        rec_gap(GPU_WIRE_GAP_SUBSCRIBER, 0, "another CUPTI client: \xff bad byte"),
        rec_gap(77, 3, NULL),
    };
    rx_send(a, b1, sizeof b1 / sizeof b1[0]);
    batches++;
    /* malformed: bad magic; a batch cut short; a second hello; a message over 64 KiB */
    uint8_t bad[GPU_WIRE_BATCH_MAX + 100];
    gpu_wire_rec k = rec_kernel(1, 4);
    size_t len = build(bad, sizeof bad, &k, 1);
    bad[0] = 'X';
    assert_int_equal(send(a, bad, len, 0), (ssize_t)len);
    len = build(bad, sizeof bad, &k, 1);
    assert_int_equal(send(a, bad, len - 1, 0), (ssize_t)len - 1);
    gpu_wire_rec again = rec_hello((uint32_t)getpid());
    rx_send(a, &again, 1);
    memset(bad, 0, sizeof bad);
    assert_int_equal(send(a, bad, sizeof bad, 0), (ssize_t)sizeof bad);
    batches += 4;
    /* the malformed ones dropped nothing else: the names still resolve */
    gpu_wire_rec b2[] = {rec_kernel(1, 5), rec_end(5, 2, 1, 5)};
    rx_send(a, b2, 2);
    batches++;
    rx_wait(&x, batches);
    close(a);

    /* process B: a pid that is not its own, a kernel, and no end record */
    int b = rx_connect(&x);
    gpu_wire_rec b3[] = {rec_hello((uint32_t)getpid() + 100000), rec_name(1, "other_kernel", 0),
                         rec_kernel(1, 10)};
    rx_send(b, b3, 3);
    batches++;
    rx_wait(&x, batches);
    close(b);

    /* process C: records before its hello */
    int c = rx_connect(&x);
    gpu_wire_rec k2 = rec_kernel(0, 11);
    rx_send(c, &k2, 1);
    batches++;
    rx_wait(&x, batches);
    close(c);

    /* process D: 20 full batches, an end that matches */
    int d = rx_connect(&x);
    gpu_wire_rec h = rec_hello((uint32_t)getpid());
    gpu_wire_rec nm = rec_name(1, "bulk", 0);
    static uint8_t big[GPU_WIRE_BATCH_MAX];
    gpu_wire_writer w;
    uint64_t bulk = 0;
    for (int i = 0; i < 20; i++) {
        assert_int_equal(gpu_wire_writer_init(&w, big, sizeof big), 0);
        if (i == 0) {
            assert_int_equal(gpu_wire_put(&w, &h), 0);
            assert_int_equal(gpu_wire_put(&w, &nm), 0);
        }
        for (int j = 0;; j++) {
            gpu_wire_rec kk = rec_kernel(1, (int)bulk);
            if (gpu_wire_put(&w, &kk) != 0)
                break;
            bulk++;
        }
        size_t l = gpu_wire_writer_finish(&w);
        assert_int_equal(send(d, big, l, 0), (ssize_t)l);
        batches++;
    }
    gpu_wire_rec e = rec_end(bulk, 0, 0, 0);
    rx_send(d, &e, 1);
    batches++;
    rx_wait(&x, batches);
    close(d);

    /* process E: still connected at stop */
    int e_fd = rx_connect(&x);
    gpu_wire_rec he = rec_hello((uint32_t)getpid());
    rx_send(e_fd, &he, 1);
    batches++;
    rx_wait(&x, batches);

    gpu_recv_stats st;
    assert_int_equal(gpu_recv_stop(x.r, &st), 0);
    close(e_fd);
    assert_int_equal(stat(x.sock, &sb), -1); /* removed */
    assert_int_equal(st.connections, 5);
    assert_int_equal(st.processes, 4);
    assert_int_equal(st.batches, batches);
    assert_int_equal(st.malformed, 5);
    assert_int_equal(st.kernels, 5 + 1 + bulk);
    assert_int_equal(st.memcpys, 2);
    assert_int_equal(st.memsets, 1);
    assert_int_equal(st.contexts, 1);
    assert_int_equal(st.lost, 5);
    assert_int_equal(st.events_lost, 0);
    assert_true(x.exec_calls >= 5);

    /* read it back */
    assert_int_equal(store_close(x.s), 0);
    assert_int_equal(store_open(x.store_dir, NULL, STORE_RDONLY, &x.s), 0);
    store_txn *t;
    assert_int_equal(store_txn_begin(x.s, &t), 0);
    bodies_load(t);
    assert_int_equal(count(t, PTB__V1__EVENT__BODY_GPU_KERNEL), (int)st.kernels);
    assert_int_equal(count(t, PTB__V1__EVENT__BODY_GAP), (int)st.gaps);

    const ptb_event *ev = nth(t, PTB__V1__EVENT__BODY_GPU_CONTEXT, 0);
    assert_non_null(ev);
    assert_int_equal(ev->exec_id, 4242);
    assert_int_equal(ev->source, PTB__V1__SOURCE__SOURCE_GPU);
    assert_string_equal(ev->gpu_context->name, DEVNAME);
    assert_string_equal(ev->gpu_context->uuid, "GPU-12345678-9abc-def0-0123-456789abcdef");
    assert_int_equal(ev->gpu_context->device, 1);
    assert_int_equal(ev->gpu_context->context_id, 5);
    assert_int_equal(ev->gpu_context->pid, getpid());
    assert_true(ev->ts_ns > 0);

    ev = nth(t, PTB__V1__EVENT__BODY_GPU_KERNEL, 0);
    const Ptb__V1__GpuKernel *gk = ev->gpu_kernel;
    assert_int_equal(ev->exec_id, 4242);
    assert_int_equal(ev->ts_ns, T0);
    assert_string_equal(gk->name, "ptb_add(float*, float, int)");
    assert_int_equal(gk->grid_x, 1024);
    assert_int_equal(gk->grid_y, 2);
    assert_int_equal(gk->grid_z, 3);
    assert_int_equal(gk->block_x, 256);
    assert_int_equal(gk->block_y, 1);
    assert_int_equal(gk->block_z, 1);
    assert_int_equal(gk->shared_mem, 49152);
    assert_int_equal(gk->registers, 32);
    assert_int_equal(gk->stream, 7);
    assert_int_equal(gk->device, 1);
    assert_int_equal(gk->context_id, 5);
    assert_int_equal(gk->correlation_id, 100);
    assert_int_equal(gk->start_ns, T0);
    assert_int_equal(gk->end_ns, T0 + 500);
    assert_int_equal(gk->graph_id, 0);
    ev = nth(t, PTB__V1__EVENT__BODY_GPU_KERNEL, 1);
    assert_int_equal(ev->gpu_kernel->graph_id, 9);
    assert_int_equal(ev->gpu_kernel->graph_node_id, 0x1122334455667788ull);
    assert_int_equal(ev->ts_ns, T0 + 1000);
    ev = nth(t, PTB__V1__EVENT__BODY_GPU_KERNEL, 2);
    assert_int_equal(strlen(ev->gpu_kernel->name), GPU_WIRE_NAME_MAX);
    assert_memory_equal(ev->gpu_kernel->name, "\xe2\x82\xac_nnn", 7);
    ev = nth(t, PTB__V1__EVENT__BODY_GPU_KERNEL, 3);
    assert_string_equal(ev->gpu_kernel->name, ""); /* id 7 was never defined */
    ev = nth(t, PTB__V1__EVENT__BODY_GPU_KERNEL, 4);
    assert_string_equal(ev->gpu_kernel->name, "ptb_add(float*, float, int)");
    assert_int_equal(ev->gpu_kernel->correlation_id, 105);
    ev = nth(t, PTB__V1__EVENT__BODY_GPU_KERNEL, 5); /* process B */
    assert_string_equal(ev->gpu_kernel->name, "other_kernel");
    assert_int_equal(ev->exec_id, 4242); /* the socket's pid, not the hello's */
    ev = nth(t, PTB__V1__EVENT__BODY_GPU_KERNEL, 6 + (int)bulk - 1);
    assert_string_equal(ev->gpu_kernel->name, "bulk");
    assert_int_equal(ev->gpu_kernel->correlation_id, 100 + bulk - 1);

    /* the kernel names are indexed */
    uint32_t sid;
    assert_int_equal(store_string_lookup(t, "bulk", 4, &sid), 0);
    uint64_t n_bulk = 0, n_batches;
    store_range by_name = {.by_index = true, .index = STORE_IX_KERNEL, .key = sid};
    store_cursor *kc;
    assert_int_equal(store_cursor_open(t, &by_name, &kc), 0);
    uint32_t last_sub = 0;
    while (store_cursor_next(kc, &ev) == 0) {
        assert_string_equal(ev->gpu_kernel->name, "bulk");
        assert_true(ev->sub > 0);
        assert_true(ev->sub == last_sub + 1 || ev->sub == 1); /* launch by launch */
        last_sub = ev->sub;
        n_bulk++;
    }
    store_cursor_close(kc);
    assert_int_equal(n_bulk, bulk);
    /* stored compactly: one event per batch the process sent */
    assert_int_equal(store_index_count(t, STORE_IX_KERNEL, sid, &n_batches), 0);
    assert_int_equal(n_batches, 20);

    ev = nth(t, PTB__V1__EVENT__BODY_GPU_MEMCPY, 0);
    const Ptb__V1__GpuMemcpy *mc = ev->gpu_memcpy;
    assert_int_equal(ev->ts_ns, T0 + 50000);
    assert_int_equal(ev->exec_id, 4242);
    assert_string_equal(mc->kind, "HtoD");
    assert_int_equal(mc->bytes, 1 << 20);
    assert_string_equal(mc->src_kind, "pinned");
    assert_string_equal(mc->dst_kind, "device");
    assert_int_equal(mc->device, 1);
    assert_int_equal(mc->context_id, 5);
    assert_int_equal(mc->stream, 8);
    assert_int_equal(mc->correlation_id, 200);
    assert_int_equal(mc->src_device, 1);
    assert_int_equal(mc->dst_device, 1);
    assert_int_equal(mc->graph_id, 3);
    assert_int_equal(mc->graph_node_id, 44);
    assert_int_equal(mc->start_ns, T0 + 50000);
    assert_int_equal(mc->end_ns, T0 + 60000);
    ev = nth(t, PTB__V1__EVENT__BODY_GPU_MEMCPY, 1);
    assert_string_equal(ev->gpu_memcpy->kind, "PtoP");
    assert_int_equal(ev->gpu_memcpy->src_device, 0);
    assert_int_equal(ev->gpu_memcpy->dst_device, 1);

    ev = nth(t, PTB__V1__EVENT__BODY_GPU_MEMSET, 0);
    const Ptb__V1__GpuMemcpy *ms = ev->gpu_memset;
    assert_string_equal(ms->kind, "memset");
    assert_int_equal(ms->value, 0x7f);
    assert_int_equal(ms->bytes, 4096);
    assert_string_equal(ms->dst_kind, "device");
    assert_string_equal(ms->src_kind, "");
    assert_int_equal(ms->correlation_id, 300);
    assert_int_equal(ms->stream, 9);
    assert_int_equal(ev->ts_ns, T0 + 70000);

    /* gaps */
    uint64_t ex = 0;
    const Ptb__V1__Gap *g = gap_of(t, "send_dropped", 0, &ex);
    assert_non_null(g);
    assert_int_equal(g->count, 5);
    assert_int_equal(ex, 4242);
    g = gap_of(t, "subscriber_conflict", 0, NULL);
    assert_non_null(g);
    assert_string_equal(g->detail, "another CUPTI client: \xef\xbf\xbd bad byte");
    g = gap_of(t, "unknown", 0, NULL);
    assert_non_null(g);
    assert_int_equal(g->count, 3);
    assert_string_equal(g->detail, "gap reason 77");
    g = gap_of(t, "name_truncated", 0, NULL);
    assert_non_null(g);
    assert_int_equal(g->count, 1);
    assert_non_null(strstr(g->detail, "4096 of 5000"));
    const char *whys[] = {"bad magic", "batch length disagrees with the message length",
                          "a second hello", "batch over the size bound",
                          "records before the hello"};
    for (int i = 0; i < 5; i++) {
        g = gap_of(t, "malformed_batch", i, NULL);
        assert_non_null(g);
        if (!strstr(g->detail, whys[i]))
            fail_msg("malformed %d: \"%s\" lacks \"%s\"", i, g->detail, whys[i]);
    }
    assert_null(gap_of(t, "malformed_batch", 5, NULL));
    g = gap_of(t, "unknown_name", 0, NULL);
    assert_non_null(g);
    assert_int_equal(g->count, 1);
    g = gap_of(t, "pid_mismatch", 0, NULL);
    assert_non_null(g);
    assert_non_null(strstr(g->detail, "the socket says pid"));
    /* B ended without its end record; C never said hello; A and D ended cleanly */
    /* (a gap is valid until the next read: keep the texts) */
    char d0[512], d1[512];
    g = gap_of(t, "no_final_flush", 0, NULL);
    assert_non_null(g);
    snprintf(d0, sizeof d0, "%s", g->detail);
    g = gap_of(t, "no_final_flush", 1, NULL);
    assert_non_null(g);
    snprintf(d1, sizeof d1, "%s", g->detail);
    if (strstr(d0, "before its hello")) { /* B's and C's closes may come in either order */
        assert_non_null(strstr(d1, "without its final flush"));
    } else {
        assert_non_null(strstr(d0, "without its final flush"));
        assert_non_null(strstr(d1, "before its hello"));
    }
    assert_null(gap_of(t, "no_final_flush", 2, NULL));
    assert_null(gap_of(t, "count_mismatch", 0, NULL));
    g = gap_of(t, "open_at_stop", 0, NULL);
    assert_non_null(g);
    assert_null(gap_of(t, "open_at_stop", 1, NULL));

    bodies_free();
    store_txn_end(t);
    store_close(x.s);
    rx_remove(&x);
}

/* An end record that disagrees with what arrived, and too many malformed batches. */
static void test_recv_mismatch(void **state)
{
    (void)state;
    rx x;
    rx_open(&x);
    int a = rx_connect(&x);
    gpu_wire_rec b1[] = {rec_hello((uint32_t)getpid()), rec_name(1, "k", 0), rec_kernel(1, 0)};
    rx_send(a, b1, 3);
    uint8_t junk[64] = {0};
    for (int i = 0; i < GPU_RECV_MALFORMED_EVENTS + 4; i++)
        assert_int_equal(send(a, junk, sizeof junk, 0), (ssize_t)sizeof junk);
    gpu_wire_rec e = rec_end(3, 1, 0, 0);
    rx_send(a, &e, 1);
    rx_wait(&x, 2 + GPU_RECV_MALFORMED_EVENTS + 4);
    close(a);
    gpu_recv_stats st;
    assert_int_equal(gpu_recv_stop(x.r, &st), 0);
    assert_int_equal(st.malformed, GPU_RECV_MALFORMED_EVENTS + 4);
    assert_int_equal(store_close(x.s), 0);
    assert_int_equal(store_open(x.store_dir, NULL, STORE_RDONLY, &x.s), 0);
    store_txn *t;
    assert_int_equal(store_txn_begin(x.s, &t), 0);
    bodies_load(t);
    const Ptb__V1__Gap *g = gap_of(t, "count_mismatch", 0, NULL);
    assert_non_null(g);
    assert_int_equal(g->count, 3); /* 2 kernels and 1 memcpy short */
    assert_non_null(strstr(g->detail, "sent 3 kernels, 1 memcpys, 0 memsets; 1, 0, 0 arrived"));
    for (int i = 0; i < GPU_RECV_MALFORMED_EVENTS; i++)
        assert_int_equal(gap_of(t, "malformed_batch", i, NULL)->count, 1);
    g = gap_of(t, "malformed_batch", GPU_RECV_MALFORMED_EVENTS, NULL);
    assert_non_null(g);
    assert_int_equal(g->count, 4);
    assert_null(gap_of(t, "malformed_batch", GPU_RECV_MALFORMED_EVENTS + 1, NULL));
    assert_null(gap_of(t, "no_final_flush", 0, NULL));
    bodies_free();
    store_txn_end(t);
    store_close(x.s);
    rx_remove(&x);
}

/* Stop with nobody connected; stop(NULL). */
static void test_recv_idle(void **state)
{
    (void)state;
    rx x;
    rx_open(&x);
    gpu_recv_stats st;
    assert_int_equal(gpu_recv_stop(x.r, &st), 0);
    assert_int_equal(st.connections, 0);
    assert_int_equal(gpu_recv_stop(NULL, NULL), 0);
    assert_int_equal(store_close(x.s), 0);
    rx_remove(&x);
}

/* ---- the injection library itself, with a stand-in libcupti --------------------------------- */

#ifdef PTB_GPU_HAVE_CUPTI

typedef struct inj_paths {
    char lib[512], fake[512];
} inj_paths;

/* libptbgpu.so and the fake libcupti of this build; false (the test skips) when not built. */
static bool inj_find(inj_paths *p)
{
    const char *b = getenv("PTB_BUILD_DIR");
    if (!b)
        return false;
    snprintf(p->lib, sizeof p->lib, "%s/recorder/gpu/libptbgpu.so", b);
    snprintf(p->fake, sizeof p->fake, "%s/recorder/gpu/libptbgpu_fakecupti.so", b);
    return access(p->lib, R_OK) == 0 && access(p->fake, R_OK) == 0;
}

enum { SC_NORMAL, SC_SUBSCRIBE, SC_KERNEL, SC_MEMSET, SC_NO_SOCKET, SC_CONGESTED };
#define CONGESTED_KERNELS 200000

typedef struct fake_api {
    void (*kernel)(const char *name, uint64_t start, uint32_t correlation);
    void (*device)(uint32_t id, const char *name);
    void (*context)(uint32_t device, uint32_t context);
    void (*copy)(uint8_t kind, uint64_t bytes, uint64_t start);
    void (*drop)(size_t n);
    void (*deliver)(void);
    unsigned (*flushes)(int forced);
    unsigned (*enabled)(void);
} fake_api;

static uint64_t mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int64_t real_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The recorded process (a fork of the test): its exit status says what went wrong, 0 for
 * nothing. It ends with exit(), so the library's exit handler runs as in a real program. */
static int inj_child(int sc, const char *sock, const inj_paths *p, int go_fd, int res_fd)
{
    char c;
    if (read(go_fd, &c, 1) != 1)
        return 10;
    setenv("PTB_GPU_SOCKET", sc == SC_NO_SOCKET ? "/nonexistent/gpu.sock" : sock, 1);
    setenv("PTB_GPU_CUPTI", p->fake, 1);
    /* congested: no flusher thread, so that the hand-over timed below does all the work */
    setenv("PTB_GPU_FLUSH_MS", sc == SC_CONGESTED ? "0" : "20", 1);
    const char *fail[] = {
        [SC_SUBSCRIBE] = "subscribe", [SC_KERNEL] = "kernel", [SC_MEMSET] = "memset"};
    if (sc == SC_SUBSCRIBE || sc == SC_KERNEL || sc == SC_MEMSET)
        setenv("FAKE_CUPTI_FAIL", fail[sc], 1);
    void *h = dlopen(p->lib, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return 11;
    int (*init)(void) = (int (*)(void))dlsym(h, "InitializeInjection");
    if (!init || dlsym(h, "gpu_wire_put")) /* only InitializeInjection is exported */
        return 12;
    if (init() != 1 || init() != 1) /* the second call does nothing */
        return 13;
    void *f = dlopen(p->fake, RTLD_NOW | RTLD_NOLOAD);
    if (sc == SC_NO_SOCKET)
        return f ? 14 : 0; /* no recorder: libcupti not even loaded */
    if (!f)
        return 15;
    fake_api api;
    *(void **)&api.kernel = dlsym(f, "fake_cupti_kernel");
    *(void **)&api.device = dlsym(f, "fake_cupti_device");
    *(void **)&api.context = dlsym(f, "fake_cupti_context");
    *(void **)&api.copy = dlsym(f, "fake_cupti_memcpy");
    *(void **)&api.drop = dlsym(f, "fake_cupti_drop");
    *(void **)&api.deliver = dlsym(f, "fake_cupti_deliver");
    *(void **)&api.flushes = dlsym(f, "fake_cupti_flushes");
    *(void **)&api.enabled = dlsym(f, "fake_cupti_enabled");
    if (!api.kernel || !api.device || !api.context || !api.copy || !api.drop || !api.deliver ||
        !api.flushes || !api.enabled)
        return 16;
    static const char *kname = "_Z7ptb_addPffi";
    if (sc == SC_SUBSCRIBE || sc == SC_KERNEL)
        return api.enabled() == 0 ? 0 : 17; /* passive, and CUPTI left as it was */
    if (sc == SC_CONGESTED) {
        for (uint32_t i = 0; i < CONGESTED_KERNELS; i++)
            api.kernel(kname, mono_now(), i);
        uint64_t t0 = mono_now();
        api.deliver();
        uint64_t ms = (mono_now() - t0) / 1000000;
        if (write(res_fd, &ms, sizeof ms) != (ssize_t)sizeof ms)
            return 18;
        if (read(go_fd, &c, 1) != 1) /* the reader reads from now on */
            return 19;
        return 0;
    }
    api.device(0, "Fake GPU");
    api.context(0, 1);
    for (uint32_t i = 0; i < 3; i++)
        api.kernel(kname, mono_now(), i);
    api.copy(CUPTI_ACTIVITY_MEMCPY_KIND_HTOD, 4096, mono_now());
    api.drop(4);
    api.deliver();
    /* the library's own thread asks for partly filled buffers */
    for (int i = 0; i < 200 && api.flushes(0) < 2; i++) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    if (api.flushes(0) < 2)
        return 20;
    /* a fork: the child neither sends nor flushes, even at its exit */
    pid_t g = fork();
    if (g == 0) {
        api.kernel("_Z8ignoredv", mono_now(), 99);
        api.deliver();
        exit(api.flushes(1) == 0 ? 0 : 1);
    }
    int gst = 0;
    if (g < 0 || waitpid(g, &gst, 0) != g || !WIFEXITED(gst) || WEXITSTATUS(gst) != 0)
        return 21;
    if (api.flushes(1) != 0)
        return 22;
    /* left for the forced flush at exit: two kernels, a context whose device never comes */
    api.kernel(kname, mono_now(), 3);
    api.kernel(kname, mono_now(), 4);
    api.context(1, 2);
    return 0;
}

/* Fork the recorded process; it waits for a byte on *go before it starts. */
static pid_t inj_spawn(int sc, const char *sock, const inj_paths *p, int *go, int *res)
{
    int gp[2], rp[2];
    assert_int_equal(pipe(gp), 0);
    assert_int_equal(pipe(rp), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(gp[1]);
        close(rp[0]);
        exit(inj_child(sc, sock, p, gp[0], rp[1]));
    }
    close(gp[0]);
    close(rp[1]);
    *go = gp[1];
    *res = rp[0];
    return pid;
}

static void inj_wait(pid_t pid)
{
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("the recorded process failed: status %d", st);
}

/* Run scenario sc against a receiver; returns the read transaction on the store (bodies
 * loaded); *pid_out is the recorded process's pid. */
static store_txn *inj_run(rx *x, int sc, const inj_paths *p, gpu_recv_stats *st, pid_t *pid_out)
{
    rx_paths(x);
    int go, res;
    pid_t pid = inj_spawn(sc, x->sock, p, &go, &res);
    rx_start(x);
    assert_int_equal(write(go, "g", 1), 1);
    inj_wait(pid);
    close(go);
    close(res);
    assert_int_equal(gpu_recv_stop(x->r, st), 0);
    assert_int_equal(store_close(x->s), 0);
    assert_int_equal(store_open(x->store_dir, NULL, STORE_RDONLY, &x->s), 0);
    store_txn *t;
    assert_int_equal(store_txn_begin(x->s, &t), 0);
    bodies_load(t);
    *pid_out = pid;
    return t;
}

static void inj_done(rx *x, store_txn *t)
{
    bodies_free();
    store_txn_end(t);
    store_close(x->s);
    rx_remove(x);
}

static void test_inject(void **state)
{
    (void)state;
    inj_paths p;
    if (!inj_find(&p))
        skip();
    rx x;
    gpu_recv_stats st;
    pid_t pid;
    int64_t before = real_now();
    store_txn *t = inj_run(&x, SC_NORMAL, &p, &st, &pid);
    int64_t after = real_now();
    assert_int_equal(st.connections, 1); /* the fork child of the process did not connect */
    assert_int_equal(st.processes, 1);
    assert_int_equal(st.malformed, 0);
    assert_int_equal(st.kernels, 5);
    assert_int_equal(st.memcpys, 1);
    assert_int_equal(st.contexts, 2);
    assert_int_equal(st.lost, 4);
    const uint64_t exec_id = 1000000 + (uint64_t)pid;
    for (int i = 0; i < 5; i++) {
        const ptb_event *ev = nth(t, PTB__V1__EVENT__BODY_GPU_KERNEL, i);
        assert_non_null(ev);
        assert_int_equal(ev->exec_id, exec_id);
        assert_string_equal(ev->gpu_kernel->name, "ptb_add(float*, float, int)");
        assert_int_equal(ev->gpu_kernel->correlation_id, i);
        assert_int_equal(ev->gpu_kernel->grid_x, 64);
        assert_int_equal(ev->gpu_kernel->block_x, 128);
        assert_int_equal(ev->gpu_kernel->end_ns - ev->gpu_kernel->start_ns, 1000);
        /* CUPTI's clock (here CLOCK_MONOTONIC) turned into CLOCK_REALTIME */
        assert_true(ev->ts_ns >= before - 1000000 && ev->ts_ns <= after);
    }
    const ptb_event *ev = nth(t, PTB__V1__EVENT__BODY_GPU_CONTEXT, 0);
    assert_string_equal(ev->gpu_context->name, "Fake GPU");
    assert_string_equal(ev->gpu_context->uuid, "GPU-a0a1a2a3-a4a5-a6a7-a8a9-aaabacadaeaf");
    assert_int_equal(ev->gpu_context->pid, pid);
    assert_int_equal(ev->exec_id, exec_id);
    ev = nth(t, PTB__V1__EVENT__BODY_GPU_CONTEXT, 1);
    assert_string_equal(ev->gpu_context->name, "");
    assert_int_equal(ev->gpu_context->device, 1);
    assert_int_equal(ev->gpu_context->context_id, 2);
    ev = nth(t, PTB__V1__EVENT__BODY_GPU_MEMCPY, 0);
    assert_string_equal(ev->gpu_memcpy->kind, "HtoD");
    assert_string_equal(ev->gpu_memcpy->src_kind, "pageable");
    assert_int_equal(ev->gpu_memcpy->bytes, 4096);
    const Ptb__V1__Gap *g = gap_of(t, "cupti_dropped", 0, NULL);
    assert_non_null(g);
    assert_int_equal(g->count, 4);
    assert_null(gap_of(t, "no_final_flush", 0, NULL));
    assert_null(gap_of(t, "count_mismatch", 0, NULL));
    assert_null(gap_of(t, "pid_mismatch", 0, NULL));
    assert_int_equal(count(t, PTB__V1__EVENT__BODY_GAP), 1);
    inj_done(&x, t);
}

static void test_inject_failures(void **state)
{
    (void)state;
    inj_paths p;
    if (!inj_find(&p))
        skip();
    const struct {
        int sc;
        const char *reason, *detail;
        uint64_t kernels;
    } cases[] = {
        {SC_SUBSCRIBE, "subscriber_conflict", "Nsight Systems", 0},
        {SC_KERNEL, "cupti_error", "cuptiActivityEnable(CONCURRENT_KERNEL): CUPTI_ERROR_NOT_SUP",
         0},
        {SC_MEMSET, "cupti_error", "MEMSET): CUPTI_ERROR_NOT_SUPPORTED (fake) (the other kinds", 5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rx x;
        gpu_recv_stats st;
        pid_t pid;
        store_txn *t = inj_run(&x, cases[i].sc, &p, &st, &pid);
        assert_int_equal(st.processes, 1);
        assert_int_equal(st.kernels, cases[i].kernels);
        const Ptb__V1__Gap *g = gap_of(t, cases[i].reason, 0, NULL);
        assert_non_null(g);
        if (!strstr(g->detail, cases[i].detail))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, g->detail, cases[i].detail);
        /* passive or not, the process said goodbye */
        assert_null(gap_of(t, "no_final_flush", 0, NULL));
        inj_done(&x, t);
    }
    /* no recorder listening: nothing happens at all */
    rx x;
    gpu_recv_stats st;
    pid_t pid;
    store_txn *t = inj_run(&x, SC_NO_SOCKET, &p, &st, &pid);
    assert_int_equal(st.connections, 0);
    assert_int_equal(n_bodies, 0);
    inj_done(&x, t);
}

/* A recorder that does not read: the library waits a bounded time, counts what it could not
 * send, and says so (gap and end record) once the recorder reads again. */
static void test_inject_congested(void **state)
{
    (void)state;
    inj_paths p;
    if (!inj_find(&p))
        skip();
    rx x;
    rx_paths(&x);
    int go, res;
    pid_t pid = inj_spawn(SC_CONGESTED, x.sock, &p, &go, &res);
    int l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, x.sock, strlen(x.sock) + 1);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(l, 4), 0);
    assert_int_equal(write(go, "g", 1), 1);
    int c = accept(l, NULL, NULL);
    assert_true(c >= 0);
    uint64_t ms = 0;
    assert_int_equal(read(res, &ms, sizeof ms), (ssize_t)sizeof ms);
    assert_int_equal(write(go, "r", 1), 1);
    static uint8_t buf[GPU_WIRE_BATCH_MAX];
    uint64_t kernels = 0, dropped = 0, names = 0, ends = 0;
    gpu_wire_end end = {0};
    for (;;) {
        ssize_t n = recv(c, buf, sizeof buf, 0);
        if (n <= 0)
            break;
        gpu_wire_reader r;
        const char *why = NULL;
        if (gpu_wire_reader_open(&r, buf, (size_t)n, &why) != 0)
            fail_msg("a batch from the library is malformed: %s", why);
        gpu_wire_rec rec;
        while (gpu_wire_reader_next(&r, &rec) == 0) {
            if (rec.kind == GPU_WIRE_KERNEL) {
                kernels++;
                assert_int_equal(rec.u.kernel.name_id, 1);
            } else if (rec.kind == GPU_WIRE_NAME) {
                names++;
            } else if (rec.kind == GPU_WIRE_GAP) {
                assert_int_equal(rec.u.gap.reason, GPU_WIRE_GAP_SEND_DROPPED);
                dropped = rec.u.gap.count; /* the running count of what is not reported yet */
            } else if (rec.kind == GPU_WIRE_END) {
                end = rec.u.end;
                ends++;
            }
        }
    }
    inj_wait(pid);
    close(c);
    close(l);
    close(go);
    close(res);
    assert_int_equal(ends, 1);
    assert_true(dropped > 0);
    assert_true(kernels > 0);
    assert_int_equal(kernels + dropped, CONGESTED_KERNELS);
    assert_int_equal(end.kernels, kernels);
    assert_int_equal(end.lost, dropped);
    /* a wait of 50 ms, then none for a second, and so on: had every lost batch waited its
     * 50 ms, the hand-over would have taken dropped / (kernels per batch) * 50 ms */
    uint64_t per_batch = (GPU_WIRE_BATCH_MAX - GPU_WIRE_HEADER_SIZE) / GPU_WIRE_KERNEL_SIZE;
    uint64_t naive_ms = dropped / per_batch * 50;
    if (naive_ms < 4000 || ms * 2 > naive_ms)
        fail_msg("handing over %d kernels took %llu ms (waiting for each lost batch: %llu)",
                 CONGESTED_KERNELS, (unsigned long long)ms, (unsigned long long)naive_ms);
    /* the name went with the first batch that was delivered, again if an earlier one was lost */
    assert_true(names >= 1);
    rx_remove(&x);
}

#endif /* PTB_GPU_HAVE_CUPTI */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recv),
        cmocka_unit_test(test_recv_mismatch),
        cmocka_unit_test(test_recv_idle),
#ifdef PTB_GPU_HAVE_CUPTI
        cmocka_unit_test(test_inject),
        cmocka_unit_test(test_inject_failures),
        cmocka_unit_test(test_inject_congested),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
