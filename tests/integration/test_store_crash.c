/* Crash safety: a writer process is killed with SIGKILL at random moments, many times, on the
 * same store. After each kill the store opens, `ptb verify` (the real binary) passes, and every
 * batch the writer saw committed (it reports each flushed seq through a pipe) is there. The
 * writer runs with a tiny map, so kills also land in map growth, and with random batch sizes.
 *
 * usage: test_store_crash PTB_BINARY [ROUNDS] */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/test_events.h"
#include "store.h"

static const char *ptb_bin;
static int rounds = 40;

/* The child: append forever, flushing now and then and reporting the flushed seq. */
static void writer_child(const char *dir, int fd, unsigned seed)
{
    store_options o;
    store_options_default(&o);
    o.batch_events = 1 + seed % 700;
    o.batch_ms = 1 + seed % 5;
    o.map_size_initial = 256 * 1024;
    store *s;
    if (store_open(dir, &o, STORE_CREATE, &s)) {
        fprintf(stderr, "child: open: %s\n", store_errmsg(s));
        _exit(3);
    }
    uint8_t blob[4096];
    for (uint64_t i = 0;; i++) {
        test_event b;
        uint64_t seq;
        if (store_append(s, test_event_make(&b, i + seed), 0, &seq))
            _exit(4);
        if (i % 97 == 0) {
            memset(blob, (int)(i & 0xff), sizeof blob);
            memcpy(blob, &i, sizeof i);
            uint8_t sha[32];
            if (store_blob_put(s, blob, sizeof blob, "blob", sha))
                _exit(5);
        }
        if (i % 251 == 0) {
            if (store_flush(s))
                _exit(6);
            if (write(fd, &seq, sizeof seq) != sizeof seq)
                _exit(7);
        }
    }
}

static int run_verify(const char *dir)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' verify --quiet '%s'", ptb_bin, dir);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void test_kill_writer(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/ptb-crash-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/RUN.ptb", tmpl);
    srand(12345);
    uint64_t committed = 0, crashes_seen = 0;
    for (int r = 0; r < rounds; r++) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            writer_child(dir, p[1], (unsigned)rand());
        }
        close(p[1]);
        /* kill at a random moment: every fourth round at once (during start-up and open),
         * the others 0..60 ms after the writer's first commit, whatever the machine's speed */
        uint64_t seq;
        if (r % 4 != 0 && read(p[0], &seq, sizeof seq) == sizeof seq && seq > committed)
            committed = seq;
        usleep((useconds_t)(rand() % 60000));
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        assert_true(WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) == 0));
        while (read(p[0], &seq, sizeof seq) == sizeof seq)
            if (seq > committed)
                committed = seq;
        close(p[0]);
        if (access(dir, F_OK) != 0)
            continue; /* killed before it created anything */

        store *s;
        int rc = store_open(dir, NULL, STORE_RDONLY, &s);
        if (rc == PTB_ENOSTORE && committed == 0) {
            store_close(s); /* killed during creation, before the first commit */
            continue;
        }
        assert_int_equal(rc, 0);
        store_txn *t;
        assert_int_equal(store_txn_begin(s, &t), 0);
        uint64_t last = store_txn_last_seq(t);
        assert_true(last >= committed);
        /* every event decodes; writer_crashed gaps are recorded */
        store_range all = {0};
        store_cursor *c;
        const ptb_event *ev;
        assert_int_equal(store_cursor_open(t, &all, &c), 0);
        uint64_t n = 0, gaps = 0;
        while ((rc = store_cursor_next(c, &ev)) == 0) {
            n++;
            if (ev->body_case == PTB__V1__EVENT__BODY_GAP &&
                strcmp(ev->gap->reason, "writer_crashed") == 0)
                gaps++;
        }
        assert_int_equal(rc, PTB_ENOTFOUND);
        assert_int_equal(n, last);
        if (gaps > crashes_seen)
            crashes_seen = gaps;
        store_cursor_close(c);
        store_txn_end(t);
        store_close(s);
        assert_int_equal(run_verify(dir), 0);
        committed = last;
    }
    /* a last writer session takes up the events the killed ones left unindexed, and closes */
    store *w;
    assert_int_equal(store_open(dir, NULL, STORE_CREATE, &w), 0);
    assert_int_equal(store_close(w), 0);
    assert_int_equal(run_verify(dir), 0);
    store *s;
    assert_int_equal(store_open(dir, NULL, STORE_RDONLY, &s), 0);
    store_txn *t;
    assert_int_equal(store_txn_begin(s, &t), 0);
    const char *a, *b;
    size_t an, bn;
    assert_int_equal(store_meta_get(t, "ptb.indexed_seq", &a, &an), 0);
    assert_int_equal(store_meta_get(t, "ptb.last_seq", &b, &bn), 0);
    assert_int_equal(an, bn);
    assert_memory_equal(a, b, an);
    store_txn_end(t);
    store_close(s);
    printf("# %d kills, %llu events in the store, %llu writer_crashed gaps recorded\n", rounds,
           (unsigned long long)committed, (unsigned long long)crashes_seen);
    assert_true(committed > 0);
    assert_true(crashes_seen > 0);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
    assert_int_equal(system(cmd), 0);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PTB_BINARY [ROUNDS]\n", argv[0]);
        return 2;
    }
    ptb_bin = argv[1];
    if (argc > 2)
        rounds = atoi(argv[2]);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_kill_writer)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
