/* tool_procs: tool calls tied to the processes they started, with real processes (their
 * /proc/PID/cmdline is what a call's command is matched against): one call at a time, two
 * parallel Bash calls told apart by command, descendants (fork, re-exec) following their tool
 * process, the harness and its re-exec belonging to no call, processes started when no call is
 * open belonging to none, an unknown call id, a result twice. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tool_procs.h"

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* a real process whose arguments hold text: sh -c "sleep 30; : TEXT" */
static pid_t start(const char *text)
{
    pid_t p = fork();
    if (p == 0) {
        setpgid(0, 0); /* stop() kills sleep too */
        char cmd[256];
        snprintf(cmd, sizeof cmd, "sleep 30; : %s", text);
        execlp("sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    usleep(50000); /* exec'd: its cmdline is sh's */
    return p;
}

static void stop(pid_t p)
{
    kill(-p, SIGKILL);
    waitpid(p, NULL, 0);
}

static size_t ids_of(tool_procs *tp, const char *call, uint64_t *ids)
{
    return tool_procs_for_result(tp, call, now_ns(), ids, 64);
}

static void test_calls(void **state)
{
    (void)state;
    tool_procs *tp = tool_procs_new();
    assert_non_null(tp);
    uint64_t ids[64];
    /* the harness: P (fork), the agent CLI (its first execve), its re-exec */
    tool_procs_on_exec(tp, getpid(), 1, 0, false);
    tool_procs_on_exec(tp, getpid(), 2, 1, true);
    tool_procs_on_exec(tp, getpid(), 3, 2, true);
    /* one call: its process and that process's fork and re-exec */
    tool_procs_on_call(tp, "c1", "Bash", "{\"command\":\"ls -la\"}", now_ns());
    pid_t a = start("ls -la");
    tool_procs_on_exec(tp, a, 4, 3, true);
    tool_procs_on_exec(tp, a + 100000, 5, 4, false); /* a fork of it */
    tool_procs_on_exec(tp, a + 100000, 6, 5, true);  /* ... that execs */
    size_t n = ids_of(tp, "c1", ids);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 4);
    assert_int_equal(ids[1], 5);
    assert_int_equal(ids[2], 6);
    assert_int_equal(ids_of(tp, "c1", ids), 0); /* answered already */
    /* no call open: a harness helper belongs to none */
    tool_procs_on_exec(tp, getpid(), 7, 3, false);
    /* two parallel calls, their processes started in the other order */
    tool_procs_on_call(tp, "p1", "Bash", "{\"command\":\"echo first-call\"}", now_ns());
    tool_procs_on_call(tp, "p2", "Bash", "{\"command\":\"echo second-call\"}", now_ns());
    pid_t b = start("echo second-call"), c = start("echo first-call");
    tool_procs_on_exec(tp, b, 8, 3, true);
    tool_procs_on_exec(tp, c, 9, 3, true);
    tool_procs_on_exec(tp, c + 100000, 10, 9, false);
    n = ids_of(tp, "p2", ids);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 8);
    n = ids_of(tp, "p1", ids);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 9);
    assert_int_equal(ids[1], 10);
    /* a call without a command (Write: done inside the agent CLI) gets no process, even one
     * that starts while it is open: it is the next call's, whose line the reader has not read
     * yet (both lines came at once); that call gets it by its command */
    tool_procs_on_call(tp, "w1", "Write", "{\"file_path\":\"x\",\"content\":\"y\"}", now_ns());
    pid_t d = start("head -3 data/train.jsonl");
    tool_procs_on_exec(tp, d, 11, 3, true);
    assert_int_equal(ids_of(tp, "w1", ids), 0);
    /* the same race after a Bash call: its own process by its command, not the next one's */
    tool_procs_on_call(tp, "b1", "Bash", "{\"command\":\"ls -la base_model\"}", now_ns());
    pid_t e = start("ls -la base_model"), f = start("ptb train --steps 5");
    tool_procs_on_exec(tp, e, 12, 3, true);
    tool_procs_on_exec(tp, f, 13, 3, true);
    n = ids_of(tp, "b1", ids);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 12);
    tool_procs_on_call(tp, "h1", "Bash", "{\"command\":\"head -3 data/train.jsonl\"}", now_ns());
    n = ids_of(tp, "h1", ids);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 11);
    tool_procs_on_call(tp, "t1", "Bash", "{\"command\":\"ptb train --steps 5\"}", now_ns());
    n = ids_of(tp, "t1", ids);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 13);
    /* an unknown call id, bad JSON input */
    assert_int_equal(ids_of(tp, "nope", ids), 0);
    tool_procs_on_call(tp, "j1", "Bash", "{not json", now_ns());
    assert_int_equal(ids_of(tp, "j1", ids), 0);
    stop(a), stop(b), stop(c), stop(d), stop(e), stop(f);
    tool_procs_free(tp);
}

/* The reader sees the first call late (a loaded machine): its process started more than a
 * second before (1.5 s), beside a helper the agent CLI started at its own start. The call's process is
 * the call's (its command), the helper the harness's. */
static void test_first_call_read_late(void **state)
{
    (void)state;
    tool_procs *tp = tool_procs_new();
    assert_non_null(tp);
    uint64_t ids[64];
    tool_procs_on_exec(tp, getpid(), 1, 0, true); /* the agent CLI */
    pid_t helper = start("node --helper"), late = start("./timer.sh");
    tool_procs_on_exec(tp, helper, 2, 1, true);
    tool_procs_on_exec(tp, late, 3, 1, true);
    int64_t t = now_ns() + 1500000000LL; /* past TP_HARNESS_NS, within TP_SLACK_NS */
    tool_procs_on_call(tp, "c1", "Bash", "{\"command\":\"./timer.sh\"}", t);
    assert_int_equal(tool_procs_for_result(tp, "c1", t + 1000, ids, 64), 1);
    assert_int_equal(ids[0], 3);
    /* a later call read 5 s late (past TP_SLACK_NS): its process by its command; a process of
     * another command that started as long before it is not its */
    pid_t later = start("ls -la base_model"), other = start("some-daemon");
    tool_procs_on_exec(tp, later, 4, 1, true);
    tool_procs_on_exec(tp, other, 5, 1, true);
    t = now_ns() + 5000000000LL;
    tool_procs_on_call(tp, "c2", "Bash", "{\"command\":\"ls -la base_model\"}", t);
    assert_int_equal(tool_procs_for_result(tp, "c2", t + 1000, ids, 64), 1);
    assert_int_equal(ids[0], 4);
    stop(helper), stop(late), stop(later), stop(other);
    tool_procs_free(tp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_calls),
                                       cmocka_unit_test(test_first_call_read_late)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
