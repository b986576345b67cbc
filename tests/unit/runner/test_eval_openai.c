/* eval_openai: ptb eval's openai backend against tests/integration/eval_server.py, a stand-in for
 * vLLM started per test on a free port: 20 answers in their slots with 4 requests in flight (and
 * never more); 503s retried until answered; a reply that is not JSON, one without choices and one
 * over the body cap each fail only their item, quoting the body; a 400 not retried; 5xx retried
 * then reported with the attempt count; a slow item timing out while the others finish; no server
 * at all (complete() fails as a whole, "cannot reach"); the API key sent but never printed; bad
 * options rejected. Skipped where python3 is missing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "eval_backend.h"

#define NQ 20
#define KEY "sk-test-SECRET-0123456789"

/* The server of the running test; stopped by the teardown even when an assertion fails. */
static struct {
    pid_t pid;
    int port;
    char dir[64];
    char stats[128];
    char answers[128];
} srv;

static int have_python(void)
{
    return system("python3 -c '' >/dev/null 2>&1") == 0;
}

static const char *prompt_text(int i, char *buf, size_t size)
{
    if (i == 3) /* quotes, a backslash, a newline and UTF-8 survive the JSON both ways */
        return "q3: \"quoted\" \\ \xc3\xbcn\xc3\xaf"
               "code\nline 2";
    snprintf(buf, size, "q%d", i);
    return buf;
}

/* --answers file: prompt i answers "answer i". */
static void answers_write(const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < NQ; i++) {
        char p[32], a[32];
        snprintf(a, sizeof a, "answer %d", i);
        json_t *o = json_pack("{s:s, s:s}", "prompt", prompt_text(i, p, sizeof p), "answer", a);
        assert_non_null(o);
        assert_int_equal(json_dumpf(o, f, JSON_COMPACT), 0);
        fputc('\n', f);
        json_decref(o);
    }
    assert_int_equal(fclose(f), 0);
}

/* Start eval_server.py with extra flags (NULL-terminated); srv.port is its port. */
static void srv_start(const char *const *extra)
{
    const char *src = getenv("PTB_SOURCE_DIR");
    if (!src)
        src = PTB_SOURCE_DIR;
    char script[4096];
    snprintf(script, sizeof script, "%s/tests/integration/eval_server.py", src);
    snprintf(srv.dir, sizeof srv.dir, "/tmp/ptb-eval-openai-XXXXXX");
    assert_non_null(mkdtemp(srv.dir));
    snprintf(srv.stats, sizeof srv.stats, "%s/stats.json", srv.dir);
    snprintf(srv.answers, sizeof srv.answers, "%s/answers.jsonl", srv.dir);
    answers_write(srv.answers);

    const char *argv[32] = {"python3", script,    "--port",    "0",
                            "--stats", srv.stats, "--answers", srv.answers};
    size_t k = 8;
    for (size_t i = 0; extra && extra[i]; i++) {
        assert_true(k < 31);
        argv[k++] = extra[i];
    }
    argv[k] = NULL;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execvp("python3", (char *const *)argv);
        _exit(127);
    }
    srv.pid = pid;
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    assert_non_null(f);
    char line[64] = "";
    char *got = fgets(line, sizeof line, f);
    fclose(f); /* the server prints nothing after its port */
    assert_non_null(got);
    srv.port = atoi(line);
    assert_true(srv.port > 0 && srv.port < 65536);
}

static int srv_stop(void **state)
{
    (void)state;
    if (srv.pid > 0) {
        kill(srv.pid, SIGTERM);
        waitpid(srv.pid, NULL, 0);
        srv.pid = 0;
    }
    if (srv.dir[0]) {
        char path[160];
        unlink(srv.stats);
        unlink(srv.answers);
        snprintf(path, sizeof path, "%s.tmp", srv.stats);
        unlink(path);
        rmdir(srv.dir);
        srv.dir[0] = '\0';
    }
    return 0;
}

/* Requests the server got for prompt. */
static int stats_count(const char *prompt)
{
    json_error_t je;
    json_t *st = json_load_file(srv.stats, 0, &je);
    assert_non_null(st);
    json_t *c = json_object_get(json_object_get(st, "requests"), prompt);
    int n = json_is_integer(c) ? (int)json_integer_value(c) : 0;
    json_decref(st);
    return n;
}

static int stats_int(const char *field)
{
    json_error_t je;
    json_t *st = json_load_file(srv.stats, 0, &je);
    assert_non_null(st);
    int n = (int)json_integer_value(json_object_get(st, field));
    json_decref(st);
    return n;
}

static eval_backend *backend_open(int port, int concurrency, int timeout_s, int retries,
                                  const char *key)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/", port);
    eval_openai_options o = {.url = url,
                             .model = "test-model",
                             .api_key = key,
                             .concurrency = concurrency,
                             .timeout_s = timeout_s,
                             .retries = retries};
    eval_backend *b = NULL;
    ptb_errbuf eb = {{0}};
    int rc = eval_backend_openai(&o, &b, &eb);
    if (rc != 0)
        print_message("eval_backend_openai: %s\n", eb.msg);
    assert_int_equal(rc, 0);
    assert_non_null(b);
    assert_string_equal(b->name, "openai");
    return b;
}

typedef struct progress_log {
    size_t calls, last_done, total;
    int monotonic;
} progress_log;

static void progress_note(void *arg, size_t done, size_t total)
{
    progress_log *p = arg;
    if (done != p->last_done + 1)
        p->monotonic = 0;
    p->calls++;
    p->last_done = done;
    p->total = total;
}

static void results_free(char **outs, char **errs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(outs[i]);
        free(errs[i]);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_answers_in_their_slots(void **state)
{
    (void)state;
    if (!have_python())
        skip();
    const char *extra[] = {"--delay-ms", "100", NULL}; /* so that requests overlap */
    srv_start(extra);
    eval_backend *b = backend_open(srv.port, 4, 0, -1, NULL);
    char pbuf[NQ][32];
    const char *prompts[NQ];
    for (int i = 0; i < NQ; i++)
        prompts[i] = prompt_text(i, pbuf[i], sizeof pbuf[i]);
    char *outs[NQ], *errs[NQ];
    progress_log pl = {.monotonic = 1};
    ptb_errbuf eb = {{0}};
    assert_int_equal(b->complete(b, prompts, NQ, 16, outs, errs, progress_note, &pl, &eb), 0);
    for (int i = 0; i < NQ; i++) {
        char want[32];
        snprintf(want, sizeof want, "answer %d", i);
        assert_null(errs[i]);
        assert_non_null(outs[i]);
        assert_string_equal(outs[i], want);
        assert_int_equal(stats_count(prompts[i]), 1);
    }
    assert_int_equal(pl.calls, NQ);
    assert_int_equal(pl.last_done, NQ);
    assert_int_equal(pl.total, NQ);
    assert_true(pl.monotonic);
    int inflight = stats_int("max_in_flight");
    assert_true(inflight > 1);
    assert_true(inflight <= 4);
    assert_int_equal(stats_int("total"), NQ);
    results_free(outs, errs, NQ);
    b->free(b);
}

static void test_retry_until_answered(void **state)
{
    (void)state;
    if (!have_python())
        skip();
    const char *extra[] = {"--fail-first", "2", NULL};
    srv_start(extra);
    eval_backend *b = backend_open(srv.port, 3, 0, -1, NULL); /* retries: the default, 3 */
    const char *prompts[] = {"q0", "q1", "q2", "q4", "q5", "q6"};
    enum { N = sizeof prompts / sizeof prompts[0] };
    char *outs[N], *errs[N];
    ptb_errbuf eb = {{0}};
    assert_int_equal(b->complete(b, prompts, N, 16, outs, errs, NULL, NULL, &eb), 0);
    for (int i = 0; i < N; i++) {
        assert_null(errs[i]);
        char want[32];
        snprintf(want, sizeof want, "answer %s", prompts[i] + 1);
        assert_string_equal(outs[i], want);
        assert_int_equal(stats_count(prompts[i]), 3);
    }
    results_free(outs, errs, N);
    b->free(b);
}

static void test_bad_replies_fail_their_item(void **state)
{
    (void)state;
    if (!have_python())
        skip();
    const char *extra[] = {
        "--garbage-for", "GARB",    "--no-choices-for", "NOCH",     "--big-for", "BIG",
        "--status-for",  "BAD:400", "--status-for",     "DOWN:503", NULL};
    srv_start(extra);
    eval_backend *b = backend_open(srv.port, 4, 0, 2, NULL);
    const char *prompts[] = {"q0", "GARB 1", "q1", "NOCH 1", "BIG 1", "BAD 1", "DOWN 1", "q2"};
    enum { N = sizeof prompts / sizeof prompts[0] };
    char *outs[N], *errs[N];
    ptb_errbuf eb = {{0}};
    double t0 = now_s();
    assert_int_equal(b->complete(b, prompts, N, 16, outs, errs, NULL, NULL, &eb), 0);
    double dt = now_s() - t0;
    for (int i = 0; i < N; i++)
        if (errs[i])
            print_message("%s: %s\n", prompts[i], errs[i]);
    assert_string_equal(outs[0], "answer 0");
    assert_string_equal(outs[2], "answer 1");
    assert_string_equal(outs[7], "answer 2");
    for (int i = 0; i < N; i++)
        if (i != 0 && i != 2 && i != 7) {
            assert_null(outs[i]);
            assert_non_null(errs[i]);
        }
    assert_non_null(strstr(errs[1], "not JSON"));
    assert_non_null(strstr(errs[1], "<html>this is not JSON"));
    assert_non_null(strstr(errs[3], "no choices[0].text"));
    assert_non_null(strstr(errs[3], "\"choices\": []"));
    assert_non_null(strstr(errs[4], "over the 8 MiB cap"));
    assert_true(strlen(errs[4]) < 400);
    assert_non_null(strstr(errs[5], "HTTP 400: "));
    assert_non_null(strstr(errs[5], "status 400 for you"));
    assert_null(strstr(errs[5], "attempt"));
    assert_non_null(strstr(errs[6], "HTTP 503 after 3 attempts: "));
    /* not retried: garbage, no choices, too big, 400; retried twice: 503 (0.5 s + 1 s apart) */
    assert_int_equal(stats_count("GARB 1"), 1);
    assert_int_equal(stats_count("NOCH 1"), 1);
    assert_int_equal(stats_count("BIG 1"), 1);
    assert_int_equal(stats_count("BAD 1"), 1);
    assert_int_equal(stats_count("DOWN 1"), 3);
    assert_true(dt >= 1.4);
    results_free(outs, errs, N);
    b->free(b);
}

static void test_timeout(void **state)
{
    (void)state;
    if (!have_python())
        skip();
    const char *extra[] = {"--slow-for", "SLOW", NULL};
    srv_start(extra);
    eval_backend *b = backend_open(srv.port, 2, 1, 1, NULL);
    const char *prompts[] = {"q0", "SLOW 1", "q1", "q2", "q4"};
    enum { N = sizeof prompts / sizeof prompts[0] };
    char *outs[N], *errs[N];
    ptb_errbuf eb = {{0}};
    assert_int_equal(b->complete(b, prompts, N, 16, outs, errs, NULL, NULL, &eb), 0);
    assert_null(outs[1]);
    assert_non_null(errs[1]);
    assert_string_equal(errs[1], "timeout after 1 s (2 attempts)");
    assert_int_equal(stats_count("SLOW 1"), 2);
    for (int i = 0; i < N; i++)
        if (i != 1) {
            assert_null(errs[i]);
            assert_non_null(outs[i]);
        }
    results_free(outs, errs, N);
    b->free(b);
}

/* A port nothing listens on: bound, read, closed. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_unreachable(void **state)
{
    (void)state;
    int port = free_port();
    char url[128];
    snprintf(url, sizeof url, "http://user:hunter2@127.0.0.1:%d/v1", port);
    eval_openai_options o = {.url = url, .api_key = KEY, .concurrency = 2, .retries = 1};
    eval_backend *b = NULL;
    ptb_errbuf eb = {{0}};
    assert_int_equal(eval_backend_openai(&o, &b, &eb), 0);
    const char *prompts[] = {"q0", "q1", "q2", "q4", "q5", "q6", "q7"};
    enum { N = sizeof prompts / sizeof prompts[0] };
    char *outs[N], *errs[N];
    double t0 = now_s();
    int rc = b->complete(b, prompts, N, 16, outs, errs, NULL, NULL, &eb);
    double dt = now_s() - t0;
    print_message("%s (%s)\n", eb.msg, ptb_errname(rc));
    assert_int_equal(rc, -ECONNREFUSED);
    assert_non_null(strstr(eb.msg, "cannot reach http://127.0.0.1:"));
    assert_non_null(strstr(eb.msg, "/v1/completions"));
    assert_null(strstr(eb.msg, "hunter2"));
    assert_null(strstr(eb.msg, "SECRET"));
    for (int i = 0; i < N; i++) {
        assert_null(outs[i]);
        assert_null(errs[i]);
    }
    assert_true(dt < 5); /* stopped after the first 2 items, not 7 items of retries */
    b->free(b);
}

/* The key goes in the header, and no message shows it even when the server echoes it. */
static void test_api_key_sent_never_printed(void **state)
{
    (void)state;
    if (!have_python())
        skip();
    const char *extra[] = {"--garbage-for", "GARB", "--status-for", "BAD:401", NULL};
    srv_start(extra);
    eval_backend *b = backend_open(srv.port, 2, 0, 0, KEY);
    const char *prompts[] = {"q0", "GARB k", "BAD k"};
    enum { N = sizeof prompts / sizeof prompts[0] };
    char *outs[N], *errs[N];
    ptb_errbuf eb = {{0}};
    assert_int_equal(b->complete(b, prompts, N, 16, outs, errs, NULL, NULL, &eb), 0);
    assert_string_equal(outs[0], "answer 0");
    assert_non_null(errs[1]);
    assert_non_null(errs[2]);
    print_message("%s\n%s\n", errs[1], errs[2]);
    assert_non_null(strstr(errs[1], "Authorization: Bearer ***"));
    assert_non_null(strstr(errs[2], "HTTP 401"));
    for (int i = 1; i < N; i++)
        assert_null(strstr(errs[i], "SECRET"));
    json_error_t je;
    json_t *st = json_load_file(srv.stats, 0, &je);
    assert_non_null(st);
    json_t *auth = json_object_get(st, "authorization");
    assert_int_equal(json_array_size(auth), 1);
    assert_string_equal(json_string_value(json_array_get(auth, 0)), "Bearer " KEY);
    json_decref(st);
    results_free(outs, errs, N);
    b->free(b);
}

static void test_bad_options(void **state)
{
    (void)state;
    static const struct {
        const char *url, *key, *model;
        int concurrency, timeout_s, retries, rc;
    } cases[] = {
        {"ftp://x", NULL, NULL, 0, 0, 0, PTB_EINVAL},
        {NULL, NULL, NULL, 0, 0, 0, PTB_EINVAL},
        {"http://", NULL, NULL, 0, 0, 0, PTB_EINVAL},
        {"http:///v1", NULL, NULL, 0, 0, 0, PTB_EINVAL},
        {"http://h/v 1", NULL, NULL, 0, 0, 0, PTB_EINVAL},
        {"127.0.0.1:8000/v1", NULL, NULL, 0, 0, 0, PTB_EINVAL},
        {"http://h/v1", NULL, NULL, 257, 0, 0, PTB_EINVAL},
        {"http://h/v1", NULL, NULL, -1, 0, 0, PTB_EINVAL},
        {"http://h/v1", NULL, NULL, 0, -1, 0, PTB_EINVAL},
        {"http://h/v1", NULL, NULL, 0, 0, 101, PTB_EINVAL},
        {"http://h/v1", "k\r\nX-Evil: 1", NULL, 0, 0, 0, PTB_EINVAL},
        {"http://h/v1", NULL, "\xff\xfe", 0, 0, 0, PTB_EINVAL},
        {"http://h/v1", NULL, NULL, 0, 0, 0, 0},
        {"HTTPS://h:8443/v1/", "k", "m", 256, 600, -1, 0},
        {"http://h", "", NULL, 1, 1, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        eval_openai_options o = {.url = cases[i].url,
                                 .api_key = cases[i].key,
                                 .model = cases[i].model,
                                 .concurrency = cases[i].concurrency,
                                 .timeout_s = cases[i].timeout_s,
                                 .retries = cases[i].retries};
        eval_backend *b = (eval_backend *)&o; /* must be reset to NULL on failure */
        ptb_errbuf eb = {{0}};
        int rc = eval_backend_openai(&o, &b, &eb);
        if (rc != cases[i].rc)
            print_message("case %zu: %d %s\n", i, rc, eb.msg);
        assert_int_equal(rc, cases[i].rc);
        if (rc == 0) {
            assert_non_null(b);
            const char *p = "q";
            char *out, *err;
            /* arguments: max_tokens 0, no arrays */
            assert_int_equal(b->complete(b, &p, 1, 0, &out, &err, NULL, NULL, &eb), PTB_EINVAL);
            assert_int_equal(b->complete(b, NULL, 1, 8, NULL, NULL, NULL, NULL, &eb), PTB_EINVAL);
            assert_int_equal(b->complete(b, NULL, 0, 8, NULL, NULL, NULL, NULL, &eb), 0);
            b->free(b);
        } else {
            assert_null(b);
            assert_true(eb.msg[0] != '\0');
        }
    }
}

/* A prompt that is not UTF-8 fails alone, without being sent. */
static void test_prompt_not_utf8(void **state)
{
    (void)state;
    if (!have_python())
        skip();
    srv_start(NULL);
    eval_backend *b = backend_open(srv.port, 1, 0, 0, NULL);
    const char *prompts[] = {"q0", "bad \xff byte", "q1"};
    char *outs[3], *errs[3];
    ptb_errbuf eb = {{0}};
    assert_int_equal(b->complete(b, prompts, 3, 16, outs, errs, NULL, NULL, &eb), 0);
    assert_string_equal(outs[0], "answer 0");
    assert_string_equal(outs[2], "answer 1");
    assert_null(outs[1]);
    assert_non_null(strstr(errs[1], "not valid UTF-8"));
    assert_int_equal(stats_int("total"), 2);
    results_free(outs, errs, 3);
    b->free(b);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_answers_in_their_slots, srv_stop),
        cmocka_unit_test_teardown(test_retry_until_answered, srv_stop),
        cmocka_unit_test_teardown(test_bad_replies_fail_their_item, srv_stop),
        cmocka_unit_test_teardown(test_timeout, srv_stop),
        cmocka_unit_test(test_unreachable),
        cmocka_unit_test_teardown(test_api_key_sent_never_printed, srv_stop),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test_teardown(test_prompt_not_utf8, srv_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
