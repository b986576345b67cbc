/* The JSONL side of bench_store: every event as one line of event_json_encode_line(), queried
 * with the real grep (LC_ALL=C grep -c -F 'exact JSON fragment' FILE), wall clock from spawn to
 * exit, warm page cache. The write is timed too (encode + buffered write + close, no fsync). */
#include "bench.h"
#include "event_json.h"

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int bench_jsonl_fill(const char *path, uint64_t events, uint64_t seed)
{
    bench_gen *g = bench_gen_new(seed, 0);
    if (!g)
        return -1;
    double t0 = bench_now(), c0 = bench_cpu_seconds();
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "bench_store: %s: %s\n", path, strerror(errno));
        bench_gen_free(g);
        return -1;
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    int rc = 0;
    for (uint64_t n = 0; n < events && rc == 0; n++) {
        ptb_event *ev = (ptb_event *)bench_gen_next(g);
        ev->seq = n + 1; /* the store would assign it; the JSON form shows it */
        char *line = NULL;
        size_t len = 0;
        if (event_json_encode_line(ev, &line, &len) != 0) {
            fprintf(stderr, "bench_store: event_json_encode_line failed at event %llu\n",
                    (unsigned long long)n + 1);
            rc = -1;
            break;
        }
        line[len] = '\n'; /* replaces the NUL; the line is not used as a string afterwards */
        if (fwrite(line, 1, len + 1, f) != len + 1)
            rc = -1;
        free(line);
    }
    if (fclose(f) != 0)
        rc = -1;
    double t = bench_now() - t0;
    bench_gen_free(g);
    if (rc == 0) {
        bench_result_add("append", "seconds", "jsonl", t, "s");
        bench_result_add("append", "events/s", "jsonl", (double)events / t, "ev/s");
        bench_result_add("append", "cpu seconds", "jsonl", bench_cpu_seconds() - c0, "s");
    } else {
        fprintf(stderr, "bench_store: writing %s failed\n", path);
    }
    return rc;
}

/* Run `grep -c -F -- pattern file` with LC_ALL=C; the count it prints into *count. */
static int run_grep(const char *pattern, const char *file, long long *count)
{
    int pfd[2];
    if (pipe(pfd) != 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_addclose(&fa, pfd[0]);
    posix_spawn_file_actions_addclose(&fa, pfd[1]);
    char *argv[] = {"grep", "-c", "-F", "--", (char *)pattern, (char *)file, NULL};
    char *envp[] = {"LC_ALL=C", "PATH=/usr/bin:/bin", NULL};
    pid_t pid;
    int r = posix_spawnp(&pid, "grep", &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    if (r != 0) {
        close(pfd[0]);
        fprintf(stderr, "bench_store: spawn grep: %s\n", strerror(r));
        return -1;
    }
    char out[64];
    ssize_t n, got = 0;
    while ((n = read(pfd[0], out + got, sizeof out - 1 - (size_t)got)) > 0)
        got += n;
    out[got > 0 ? got : 0] = 0;
    close(pfd[0]);
    int st;
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) > 1) {
        fprintf(stderr, "bench_store: grep failed\n");
        return -1;
    }
    *count = strtoll(out, NULL, 10);
    return 0;
}

static int grep_time(const char *section, const char *what, const char *pattern, const char *file,
                     int runs, uint64_t events)
{
    double v[64];
    long long count = 0;
    if (runs > 64)
        runs = 64;
    for (int i = -1; i < runs; i++) { /* one warm-up */
        double t0 = bench_now();
        if (run_grep(pattern, file, &count))
            return -1;
        if (i >= 0)
            v[i] = bench_now() - t0;
    }
    double med = bench_median(v, runs);
    bench_result_add(section, what, "grep", med * 1e3, "ms");
    bench_result_add(section, what, "grep-matches", (double)count, "events");
    if (events)
        bench_result_add(section, what, "grep-rate", (double)events / med, "ev/s");
    return 0;
}

int bench_jsonl_query(const char *path, uint64_t events, int runs, const bench_targets *tg)
{
    char p_path[512], p_exec[64], p_host[256], p_tid[64];
    snprintf(p_path, sizeof p_path, "\"path\":\"%s\"", tg->path);
    snprintf(p_exec, sizeof p_exec, "\"exec_id\":%llu,", (unsigned long long)tg->exec_id);
    snprintf(p_host, sizeof p_host, "\"host\":\"%s\"", tg->host);
    snprintf(p_tid, sizeof p_tid, "\"tid\":%u,", tg->tid);
    if (grep_time("selective", "path", p_path, path, runs, 0) ||
        grep_time("selective", "exec_id", p_exec, path, runs, 0) ||
        grep_time("selective", "host", p_host, path, runs, 0) ||
        grep_time("scan", "tid", p_tid, path, runs, events) ||
        grep_time("scan", "contains", tg->needle, path, runs, events))
        return -1;
    return 0;
}
