/* bench_store: the store benchmark of docs/BENCHMARKS.md.
 *
 * Generates a deterministic synthetic run (bench_gen.c), writes it three ways, and measures the
 * same questions on each, in one process:
 *   ptb     store_append from one producer thread (the writer thread is the second core), default
 *           options; clock from store_open to store_close returning; a 2-producer variant
 *   sqlite  one indexed table (bench_sqlite.c)
 *   jsonl   event_json_encode_line per event, queried with grep (bench_jsonl.c)
 * Queries: selective ones through an index (one path, one exec_id, one host), and scans that no
 * index helps (a thread id; a text that only a few tool inputs hold); median of --runs after
 * one warm-up. Sizes on disk. A table on stdout, and with --json FILE the same numbers as JSON.
 *
 * Exit codes: 0 ok, 1 a backend failed, 2 usage. */
#include "bench.h"
#include "query.h"
#include "query_contains.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ timing and results */

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef struct result {
    char section[32], what[48], backend[48], unit[16];
    double value;
} result;

static result results[256];
static size_t nresults;

void bench_result_add(const char *section, const char *what, const char *backend, double value,
                      const char *unit)
{
    if (nresults == sizeof results / sizeof results[0])
        return;
    result *r = &results[nresults++];
    snprintf(r->section, sizeof r->section, "%s", section);
    snprintf(r->what, sizeof r->what, "%s", what);
    snprintf(r->backend, sizeof r->backend, "%s", backend);
    snprintf(r->unit, sizeof r->unit, "%s", unit);
    r->value = value;
}

double bench_result_get(const char *section, const char *what, const char *backend)
{
    for (size_t i = 0; i < nresults; i++)
        if (!strcmp(results[i].section, section) && !strcmp(results[i].what, what) &&
            !strcmp(results[i].backend, backend))
            return results[i].value;
    return -1;
}

double bench_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

/* Bytes this process caused to be written to storage so far (/proc/self/io), -1 if unknown. */
double bench_io_write_bytes(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    char line[128];
    double v = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "write_bytes:", 12))
            v = strtod(line + 12, NULL);
    if (f)
        fclose(f);
    return v;
}

/* CPU time and run-queue wait of one thread of this process, from schedstat (seconds). */
static int thread_sched(pid_t tid, double *run, double *wait)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", (int)tid);
    FILE *f = fopen(path, "r");
    unsigned long long r = 0, w = 0;
    int ok = f && fscanf(f, "%llu %llu", &r, &w) == 2;
    if (f)
        fclose(f);
    *run = ok ? (double)r * 1e-9 : 0;
    *wait = ok ? (double)w * 1e-9 : 0;
    return ok ? 0 : -1;
}

/* The thread of this process named name (the first found), or 0. */
static pid_t thread_by_name(const char *name)
{
    pid_t found = 0;
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    while (d && !found && (e = readdir(d))) {
        char path[300], comm[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(comm, sizeof comm, f) && !strncmp(comm, name, strlen(name)))
            found = (pid_t)atoi(e->d_name);
        fclose(f);
    }
    if (d)
        closedir(d);
    return found;
}

/* Sum of values read from events, so the compiler keeps the reads that touch them. */
static volatile uint64_t bench_sink;

/* ------------------------------------------------------------------ ptb: append */

typedef struct producer {
    store *s;
    uint64_t seed, events;
    unsigned stream;
    int rc;
    double run, wait; /* CPU and run-queue wait of the producer thread, seconds */
} producer;

static void *producer_main(void *arg)
{
    producer *p = arg;
    bench_gen *g = bench_gen_new(p->seed, p->stream);
    if (!g) {
        p->rc = PTB_ENOMEM;
        return NULL;
    }
    double r0, w0, r1, w1;
    pid_t tid = gettid();
    thread_sched(tid, &r0, &w0);
    for (uint64_t n = 0; n < p->events && p->rc == 0; n++)
        p->rc = store_append(p->s, bench_gen_next(g), 0, NULL);
    thread_sched(tid, &r1, &w1);
    p->run = r1 - r0;
    p->wait = w1 - w0;
    bench_gen_free(g);
    return NULL;
}

/* Append `events` events from `nprod` producer threads into a new store in dir. */
static const char *opt_query;     /* --only-query WHAT: run only that ptb query */
static uint32_t opt_batch_events; /* --batch-events (0: the store's default) */
static int opt_sync = -1;         /* --sync none|data|full (-1: the store's default) */

static int ptb_fill(const char *dir, uint64_t events, uint64_t seed, int nprod)
{
    const char *b = nprod == 1 ? "ptb" : "ptb-2producers";
    double c0 = bench_cpu_seconds(), t0 = bench_now(), io0 = bench_io_write_bytes();
    store *s = NULL;
    store_options so;
    store_options_default(&so);
    if (opt_batch_events)
        so.batch_events = opt_batch_events;
    if (opt_sync >= 0)
        so.sync = (store_sync)opt_sync;
    int rc = store_open(dir, &so, STORE_CREATE | STORE_EXCL, &s);
    if (rc) {
        fprintf(stderr, "bench_store: store_open %s: %s\n", dir, s ? store_errmsg(s) : "?");
        store_close(s);
        return -1;
    }
    producer p[2];
    pthread_t th[2];
    for (int i = 0; i < nprod; i++) {
        p[i] = (producer){
            s, seed, events / (uint64_t)nprod + (i == 0 ? events % nprod : 0), (unsigned)i, 0,
            0, 0};
        if (nprod == 1)
            producer_main(&p[0]); /* the calling thread is the one producer */
        else if (pthread_create(&th[i], NULL, producer_main, &p[i]) != 0)
            p[i].rc = PTB_ENOMEM;
    }
    if (nprod > 1)
        for (int i = 0; i < nprod; i++)
            pthread_join(th[i], NULL);
    double t_app = bench_now() - t0;
    store_write_stats ws;
    store_write_stats_get(s, &ws);
    double wrun = 0, wwait = 0;
    pid_t wtid = thread_by_name("ptb-writer");
    if (wtid)
        thread_sched(wtid, &wrun, &wwait); /* the writer's time up to here (not the last commit) */
    rc = store_close(s);
    double t = bench_now() - t0, cpu = bench_cpu_seconds() - c0, io = bench_io_write_bytes() - io0;
    for (int i = 0; i < nprod; i++)
        if (p[i].rc && !rc)
            rc = p[i].rc;
    if (rc) {
        fprintf(stderr, "bench_store: ptb append: %s\n", ptb_strerror(rc));
        return -1;
    }
    bench_result_add("append", "seconds", b, t, "s");
    bench_result_add("append", "events/s", b, (double)events / t, "ev/s");
    bench_result_add("append", "last append returned (s)", b, t_app, "s");
    bench_result_add("append", "cpu seconds", b, cpu, "s");
    bench_result_add("append", "batches", b, (double)ws.batches, "");
    bench_result_add("append", "writer cpu s", b, wrun, "s");
    bench_result_add("append", "writer runqueue wait s", b, wwait, "s");
    double prun = 0, pwait = 0;
    for (int i = 0; i < nprod; i++) {
        prun += p[i].run;
        pwait += p[i].wait;
    }
    bench_result_add("append", "producer cpu s", b, prun, "s");
    bench_result_add("append", "producer runqueue wait s", b, pwait, "s");
    bench_result_add("append", "disk write bytes/event", b, io / (double)events, "B");
    bench_result_add("append", "producer waits", b, (double)ws.waits, "");
    return 0;
}

/* The generator alone: what the producer spends before store_append. */
static void gen_only(uint64_t events, uint64_t seed)
{
    bench_gen *g = bench_gen_new(seed, 0);
    if (!g)
        return;
    double t0 = bench_now();
    uint64_t sink = 0;
    for (uint64_t n = 0; n < events; n++)
        sink += bench_gen_next(g)->ts_ns & 1;
    double t = bench_now() - t0;
    bench_gen_free(g);
    bench_sink += sink;
    bench_result_add("append", "seconds", "generator-only", t, "s");
    bench_result_add("append", "events/s", "generator-only", (double)events / t, "ev/s");
}

/* ------------------------------------------------------------------ ptb: queries */

typedef struct qstate {
    uint64_t n, touch;
    query_contains *qc;
    int err;
} qstate;

static int emit_count(void *arg, uint64_t seq, const ptb_event *ev)
{
    qstate *st = arg;
    st->n++;
    st->touch += seq + (ev ? (uint64_t)ev->ts_ns + ev->body_case : 0);
    return 0;
}

/* One query through the engine: filter text, optional --contains text. */
static int ptb_engine(store *s, const char *ftext, const char *contains, bool no_index,
                      uint64_t *matches, uint64_t *checked)
{
    store_txn *t = NULL;
    filter *f = NULL;
    query *q = NULL;
    filter_error fe;
    ptb_errbuf eb = {{0}};
    qstate st = {0};
    int rc = store_txn_begin(s, &t);
    if (rc == 0 && (rc = filter_parse(ftext, &f, &fe)) != 0)
        fprintf(stderr, "bench_store: filter '%s': %s\n", ftext, fe.msg);
    if (rc == 0 && contains && !(st.qc = query_contains_new(contains, strlen(contains))))
        rc = PTB_ENOMEM;
    if (rc == 0 && st.qc)
        rc = query_contains_prepare(st.qc, t);
    query_options o;
    query_options_default(&o);
    o.need_event = true;
    o.no_index = no_index;
    if (st.qc) {
        o.accept = query_contains_match;
        o.accept_maybe = query_contains_maybe;
        o.accept_arg = st.qc;
    }
    if (rc == 0 && (rc = query_plan(s, t, f, &o, &q, &eb)) != 0)
        fprintf(stderr, "bench_store: plan '%s': %s\n", ftext, eb.msg);
    if (rc == 0)
        rc = query_run(q, emit_count, &st);
    if (rc == 0) {
        *matches = st.n;
        *checked = query_checked(q);
        bench_sink += st.touch;
    }
    query_free(q);
    query_contains_free(st.qc);
    filter_free(f);
    store_txn_end(t);
    return rc;
}

/* The same through a store cursor: by_index (ix, key) or, with all, every event. */
static int ptb_cursor(store *s, bool all, store_index ix, const char *skey, uint64_t nkey,
                      uint64_t *matches)
{
    store_txn *t = NULL;
    store_cursor *c = NULL;
    int rc = store_txn_begin(s, &t);
    store_range r = {0};
    if (!all) {
        r.by_index = true;
        r.index = ix;
        r.key = nkey;
        uint32_t sid = 0;
        if (rc == 0 && skey && (rc = store_string_lookup(t, skey, strlen(skey), &sid)) == 0)
            r.key = sid;
    }
    if (rc == 0)
        rc = store_cursor_open(t, &r, &c);
    uint64_t n = 0, touch = 0;
    const ptb_event *ev;
    while (rc == 0 && (rc = store_cursor_next(c, &ev)) == 0) {
        n++;
        touch += (uint64_t)ev->ts_ns + ev->body_case;
    }
    if (rc == PTB_ENOTFOUND)
        rc = 0;
    bench_sink += touch; /* keeps the reads of each event */
    *matches = n;
    store_cursor_close(c);
    store_txn_end(t);
    return rc;
}

typedef struct ptb_q {
    const char *section, *what, *filter, *contains;
    bool no_index, cursor, cursor_all;
    store_index ix;
    const char *skey;
    uint64_t nkey;
} ptb_q;

static int ptb_time(store *s, const ptb_q *pq, int runs, uint64_t events)
{
    double v[64];
    uint64_t matches = 0, checked = 0;
    if (runs > 64)
        runs = 64;
    for (int i = -1; i < runs; i++) {
        double t0 = bench_now();
        int rc = pq->cursor
                     ? ptb_cursor(s, pq->cursor_all, pq->ix, pq->skey, pq->nkey, &matches)
                     : ptb_engine(s, pq->filter, pq->contains, pq->no_index, &matches, &checked);
        if (rc) {
            fprintf(stderr, "bench_store: ptb %s %s: %s\n", pq->section, pq->what,
                    ptb_strerror(rc));
            return -1;
        }
        if (i >= 0)
            v[i] = bench_now() - t0;
    }
    double med = bench_median(v, runs);
    const char *b = pq->cursor ? "ptb-cursor" : "ptb";
    char name[48];
    snprintf(name, sizeof name, "%s-matches", b);
    bench_result_add(pq->section, pq->what, b, med * 1e3, "ms");
    bench_result_add(pq->section, pq->what, name, (double)matches, "events");
    if (!pq->cursor) {
        snprintf(name, sizeof name, "%s-checked", b);
        bench_result_add(pq->section, pq->what, name, (double)checked, "events");
    }
    if (events) {
        snprintf(name, sizeof name, "%s-rate", b);
        bench_result_add(pq->section, pq->what, name, (double)events / med, "ev/s");
    }
    return 0;
}

static int ptb_queries(const char *dir, uint64_t events, int runs, const bench_targets *tg)
{
    store *s = NULL;
    int rc = store_open(dir, NULL, STORE_RDONLY, &s);
    if (rc) {
        fprintf(stderr, "bench_store: open %s: %s\n", dir, s ? store_errmsg(s) : "?");
        store_close(s);
        return -1;
    }
    char f_path[512], f_exec[64], f_host[256], f_tid[64];
    snprintf(f_path, sizeof f_path, "file.path = \"%s\"", tg->path);
    snprintf(f_exec, sizeof f_exec, "proc.exec_id = %llu", (unsigned long long)tg->exec_id);
    snprintf(f_host, sizeof f_host, "net.host = \"%s\"", tg->host);
    snprintf(f_tid, sizeof f_tid, "proc.tid = %u", tg->tid);
    const ptb_q qs[] = {
        {"selective", "path", f_path, NULL, false, false, false, 0, NULL, 0},
        {"selective", "path", NULL, NULL, false, true, false, STORE_IX_PATH, tg->path, 0},
        {"selective", "exec_id", f_exec, NULL, false, false, false, 0, NULL, 0},
        {"selective", "exec_id", NULL, NULL, false, true, false, STORE_IX_EXEC, NULL, tg->exec_id},
        {"selective", "host", f_host, NULL, false, false, false, 0, NULL, 0},
        {"selective", "host", NULL, NULL, false, true, false, STORE_IX_HOST, tg->host, 0},
        {"scan", "tid", f_tid, NULL, false, false, false, 0, NULL, 0},
        {"scan", "contains", "", tg->needle, false, false, false, 0, NULL, 0},
        {"scan", "decode-all", NULL, NULL, false, true, true, 0, NULL, 0},
    };
    for (size_t i = 0; i < sizeof qs / sizeof qs[0] && rc == 0; i++)
        if (!opt_query || !strcmp(opt_query, qs[i].what))
            rc = ptb_time(s, &qs[i], runs, strcmp(qs[i].section, "scan") ? 0 : events);
    /* counting only: the posting lists answer without reading an event */
    const struct {
        const char *what, *skey;
        store_index ix;
        uint64_t nkey;
    } cq[] = {{"path", tg->path, STORE_IX_PATH, 0},
              {"exec_id", NULL, STORE_IX_EXEC, tg->exec_id},
              {"host", tg->host, STORE_IX_HOST, 0}};
    for (size_t i = 0; i < 3 && rc == 0 && !opt_query; i++) {
        double v[64], t0;
        uint64_t n = 0;
        for (int k = -1; k < runs && rc == 0; k++) {
            store_txn *t = NULL;
            uint32_t sid = 0;
            t0 = bench_now();
            rc = store_txn_begin(s, &t);
            if (rc == 0 && cq[i].skey)
                rc = store_string_lookup(t, cq[i].skey, strlen(cq[i].skey), &sid);
            if (rc == 0)
                rc = store_index_count(t, cq[i].ix, cq[i].skey ? sid : cq[i].nkey, &n);
            if (rc == PTB_ENOTFOUND) { /* a string the store never saw: no events */
                n = 0;
                rc = 0;
            }
            store_txn_end(t);
            if (k >= 0)
                v[k] = bench_now() - t0;
        }
        if (rc)
            fprintf(stderr, "bench_store: ptb count %s: %s\n", cq[i].what, ptb_strerror(rc));
        if (rc == 0) {
            bench_result_add("selective", cq[i].what, "ptb-count", bench_median(v, runs) * 1e3,
                             "ms");
            bench_result_add("selective", cq[i].what, "ptb-count-matches", (double)n, "events");
        }
    }
    store_close(s);
    return rc;
}

/* ------------------------------------------------------------------ sizes, files */

static void size_of(const char *path, const char *backend, uint64_t events)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "bench_store: stat %s: %s\n", path, strerror(errno));
        return;
    }
    bench_result_add("size", "bytes", backend, (double)st.st_size, "B");
    bench_result_add("size", "allocated bytes", backend, (double)st.st_blocks * 512, "B");
    bench_result_add("size", "bytes/event", backend, (double)st.st_size / (double)events, "B");
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ------------------------------------------------------------------ report */

static double R(const char *sec, const char *what, const char *b)
{
    return bench_result_get(sec, what, b);
}

static void print_report(uint64_t events)
{
    printf("\n== append (%llu events) ==\n", (unsigned long long)events);
    printf("%-18s %8s %11s %7s %8s %8s %8s %8s %8s\n", "backend", "seconds", "events/s", "cpu s",
           "prod cpu", "prod rqw", "wrtr cpu", "wrtr rqw", "disk B/ev");
    static const char *const ab[] = {"generator-only",    "ptb",  "ptb-2producers", "sqlite",
                                     "sqlite-late-index", "jsonl"};
    for (size_t i = 0; i < sizeof ab / sizeof ab[0]; i++) {
        double s = R("append", "seconds", ab[i]);
        if (s < 0)
            continue;
        printf("%-18s %8.2f %11.0f %7.2f %8.2f %8.2f %8.2f %8.2f %8.1f\n", ab[i], s,
               R("append", "events/s", ab[i]), R("append", "cpu seconds", ab[i]),
               R("append", "producer cpu s", ab[i]), R("append", "producer runqueue wait s", ab[i]),
               R("append", "writer cpu s", ab[i]), R("append", "writer runqueue wait s", ab[i]),
               R("append", "disk write bytes/event", ab[i]));
    }
    double pa = R("append", "events/s", "ptb"), sa = R("append", "events/s", "sqlite");
    if (pa > 0 && sa > 0)
        printf("ptb / sqlite append rate: %.2fx\n", pa / sa);

    printf("\n== selective queries through an index (median ms) ==\n");
    printf("%-8s %8s %10s %10s %10s %10s %10s %10s %10s\n", "query", "matches", "ptb", "ptb-cursor",
           "ptb-count", "sqlite", "grep", "sqlite/ptb", "grep/ptb");
    static const char *const sq[] = {"path", "exec_id", "host"};
    for (size_t i = 0; i < 3; i++) {
        double p = R("selective", sq[i], "ptb"), c = R("selective", sq[i], "ptb-cursor");
        double s = R("selective", sq[i], "sqlite"), g = R("selective", sq[i], "grep");
        printf("%-8s %8.0f %10.3f %10.3f %10.3f %10.3f %10.1f %10.2f %10.0f\n", sq[i],
               R("selective", sq[i], "ptb-matches"), p, c, R("selective", sq[i], "ptb-count"), s, g,
               p > 0 && s > 0 ? s / p : -1, p > 0 && g > 0 ? g / p : -1);
        double ms = R("selective", sq[i], "sqlite-matches"),
               mg = R("selective", sq[i], "grep-matches");
        double mp = R("selective", sq[i], "ptb-matches");
        if ((ms >= 0 && ms != mp) || (mg >= 0 && mg != mp))
            printf("  WARNING: match counts differ: ptb %.0f sqlite %.0f grep %.0f\n", mp, ms, mg);
    }

    printf("\n== scans no index helps (median ms, events scanned per second) ==\n");
    printf("%-11s %8s %10s %12s %12s %12s %12s\n", "query", "matches", "ptb ms", "ptb ev/s",
           "sqlite ev/s", "grep ev/s", "ptb checked");
    static const char *const sc[] = {"tid", "contains", "decode-all"};
    for (size_t i = 0; i < 3; i++) {
        bool cur = i == 2;
        const char *pb = cur ? "ptb-cursor" : "ptb";
        char m[48], r[48], ck[48];
        snprintf(m, sizeof m, "%s-matches", pb);
        snprintf(r, sizeof r, "%s-rate", pb);
        snprintf(ck, sizeof ck, "%s-checked", pb);
        printf("%-11s %8.0f %10.1f %12.0f %12.0f %12.0f %12.0f\n", sc[i], R("scan", sc[i], m),
               R("scan", sc[i], pb), R("scan", sc[i], r), R("scan", sc[i], "sqlite-rate"),
               R("scan", sc[i], "grep-rate"), R("scan", sc[i], ck));
    }

    printf("\n== size on disk ==\n");
    printf("%-10s %16s %16s %12s\n", "backend", "bytes", "allocated", "bytes/event");
    static const char *const zb[] = {"ptb", "sqlite", "jsonl"};
    for (size_t i = 0; i < 3; i++)
        if (R("size", "bytes", zb[i]) >= 0)
            printf("%-10s %16.0f %16.0f %12.1f\n", zb[i], R("size", "bytes", zb[i]),
                   R("size", "allocated bytes", zb[i]), R("size", "bytes/event", zb[i]));
}

static int write_json(const char *path, uint64_t events, uint64_t seed, double load1,
                      const bench_targets *tg)
{
    json_t *root = json_object(), *arr = json_array();
    json_object_set_new(root, "events", json_integer((json_int_t)events));
    json_object_set_new(root, "seed", json_integer((json_int_t)seed));
    json_object_set_new(root, "loadavg_1min_at_start", json_real(load1));
    json_object_set_new(root, "target_path", json_string(tg->path));
    json_object_set_new(root, "target_exec_id", json_integer((json_int_t)tg->exec_id));
    json_object_set_new(root, "target_host", json_string(tg->host));
    json_object_set_new(root, "target_tid", json_integer(tg->tid));
    json_object_set_new(root, "needle", json_string(tg->needle));
    for (size_t i = 0; i < nresults; i++)
        json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:f,s:s}", "section", results[i].section,
                                             "what", results[i].what, "backend", results[i].backend,
                                             "value", results[i].value, "unit", results[i].unit));
    json_object_set_new(root, "results", arr);
    int rc = json_dump_file(root, path, JSON_INDENT(1));
    json_decref(root);
    if (rc)
        fprintf(stderr, "bench_store: cannot write %s\n", path);
    return rc ? -1 : 0;
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: bench_store [--events N] [--dir DIR] [--keep] [--seed S] "
        "[--only ptb|sqlite|jsonl] [--runs R] [--no-2producers] [--sqlite-late-index] "
        "[--no-queries] [--no-fill] [--only-query WHAT] [--batch-events N] [--sync none|data|full] "
        "[--json FILE] [--quick]\n");
}

int main(int argc, char **argv)
{
    uint64_t events = 10000000, seed = 1;
    const char *dir_opt = NULL, *only = NULL, *json = NULL;
    bool keep = false, two = true, late = false, queries = true, fill = true;
    int runs = 5;
    enum {
        O_EVENTS = 1,
        O_DIR,
        O_KEEP,
        O_SEED,
        O_ONLY,
        O_RUNS,
        O_NO2,
        O_LATE,
        O_JSON,
        O_QUICK,
        O_NOQ,
        O_NOFILL,
        O_BATCH,
        O_SYNC,
        O_OQ,
        O_HELP
    };
    static const struct option lo[] = {{"events", 1, NULL, O_EVENTS},
                                       {"dir", 1, NULL, O_DIR},
                                       {"keep", 0, NULL, O_KEEP},
                                       {"seed", 1, NULL, O_SEED},
                                       {"only", 1, NULL, O_ONLY},
                                       {"runs", 1, NULL, O_RUNS},
                                       {"no-2producers", 0, NULL, O_NO2},
                                       {"sqlite-late-index", 0, NULL, O_LATE},
                                       {"json", 1, NULL, O_JSON},
                                       {"quick", 0, NULL, O_QUICK},
                                       {"no-queries", 0, NULL, O_NOQ},
                                       {"no-fill", 0, NULL, O_NOFILL},
                                       {"only-query", 1, NULL, O_OQ},
                                       {"batch-events", 1, NULL, O_BATCH},
                                       {"sync", 1, NULL, O_SYNC},
                                       {"help", 0, NULL, O_HELP},
                                       {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case O_EVENTS: events = strtoull(optarg, NULL, 10); break;
        case O_DIR: dir_opt = optarg; break;
        case O_KEEP: keep = true; break;
        case O_SEED: seed = strtoull(optarg, NULL, 10); break;
        case O_ONLY: only = optarg; break;
        case O_RUNS: runs = atoi(optarg); break;
        case O_NO2: two = false; break;
        case O_LATE: late = true; break;
        case O_JSON: json = optarg; break;
        case O_QUICK:
            events = 200000;
            runs = 3;
            break;
        case O_NOQ: queries = false; break;
        case O_NOFILL: fill = false; break;
        case O_OQ: opt_query = optarg; break;
        case O_BATCH: opt_batch_events = (uint32_t)strtoul(optarg, NULL, 10); break;
        case O_SYNC:
            opt_sync = !strcmp(optarg, "none")   ? STORE_SYNC_NONE
                       : !strcmp(optarg, "data") ? STORE_SYNC_DATA
                       : !strcmp(optarg, "full") ? STORE_SYNC_FULL
                                                 : -2;
            if (opt_sync == -2) {
                usage(stderr);
                return 2;
            }
            break;
        case O_HELP: usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || events < 1000 || runs < 1 || runs > 64 ||
        (only && strcmp(only, "ptb") && strcmp(only, "sqlite") && strcmp(only, "jsonl"))) {
        usage(stderr);
        return 2;
    }
    bool do_ptb = !only || !strcmp(only, "ptb"), do_sq = !only || !strcmp(only, "sqlite"),
         do_js = !only || !strcmp(only, "jsonl");

    char dir[512];
    if (dir_opt) {
        snprintf(dir, sizeof dir, "%s", dir_opt);
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "bench_store: mkdir %s: %s\n", dir, strerror(errno));
            return 1;
        }
    } else {
        snprintf(dir, sizeof dir, "/tmp/bench_store.XXXXXX");
        if (!mkdtemp(dir)) {
            fprintf(stderr, "bench_store: mkdtemp: %s\n", strerror(errno));
            return 1;
        }
    }
    double load[3] = {0};
    getloadavg(load, 3);
    bench_targets tg;
    bench_gen_targets(seed, &tg);
    printf("bench_store: %llu events, seed %llu, dir %s, load average %.2f %.2f %.2f\n",
           (unsigned long long)events, (unsigned long long)seed, dir, load[0], load[1], load[2]);
    if (opt_batch_events || opt_sync >= 0)
        printf("ptb store options: batch_events %u, sync %d (0 = store default)\n",
               opt_batch_events, opt_sync);
    printf("targets: path %s, exec_id %llu, host %s, tid %u, needle '%s'\n", tg.path,
           (unsigned long long)tg.exec_id, tg.host, tg.tid, tg.needle);
    fflush(stdout);

    char p_ptb[600], p_ptb2[600], p_sq[600], p_js[600], p_mdb[640];
    snprintf(p_ptb, sizeof p_ptb, "%s/run.ptb", dir);
    snprintf(p_ptb2, sizeof p_ptb2, "%s/run2.ptb", dir);
    snprintf(p_sq, sizeof p_sq, "%s/run.sqlite", dir);
    snprintf(p_js, sizeof p_js, "%s/run.jsonl", dir);
    snprintf(p_mdb, sizeof p_mdb, "%s/data.mdb", p_ptb);
    bench_sqlite_opts so = {p_sq, events, seed, false, runs, &tg};
    int rc = 0;

    if (!fill)
        keep = true;
    if (!fill && !dir_opt) {
        fprintf(stderr, "bench_store: --no-fill needs --dir of a --keep run\n");
        return 2;
    }
    if (fill)
        gen_only(events, seed);
#define STEP(cond, expr, label)                                                                    \
    do {                                                                                           \
        if (rc == 0 && (cond)) {                                                                   \
            double t_ = bench_now();                                                               \
            fprintf(stderr, "bench_store: %s ...\n", label);                                       \
            rc = (expr);                                                                           \
            fprintf(stderr, "bench_store: %s done in %.1f s\n", label, bench_now() - t_);          \
        }                                                                                          \
    } while (0)
    if (fill) {
        rm_tree(p_ptb);
        rm_tree(p_ptb2);
    }
    STEP(do_ptb && fill, ptb_fill(p_ptb, events, seed, 1), "ptb append (1 producer)");
    if (do_ptb && fill && two) {
        STEP(true, ptb_fill(p_ptb2, events, seed, 2), "ptb append (2 producers)");
        rm_tree(p_ptb2);
    }
    STEP(do_sq && fill, bench_sqlite_fill(&so), "sqlite insert");
    if (do_sq && fill && late) {
        char p_late[640];
        snprintf(p_late, sizeof p_late, "%s/late.sqlite", dir);
        bench_sqlite_opts lo2 = so;
        lo2.path = p_late;
        lo2.late_index = true;
        STEP(true, bench_sqlite_fill(&lo2), "sqlite insert, indexes after");
        remove(p_late);
    }
    STEP(do_js && fill, bench_jsonl_fill(p_js, events, seed), "jsonl write");
    if (rc == 0 && do_ptb)
        size_of(p_mdb, "ptb", events);
    if (rc == 0 && do_sq)
        size_of(p_sq, "sqlite", events);
    if (rc == 0 && do_js)
        size_of(p_js, "jsonl", events);
    if (!queries)
        do_ptb = do_sq = do_js = false;
    STEP(do_ptb, ptb_queries(p_ptb, events, runs, &tg), "ptb queries");
    STEP(do_sq, bench_sqlite_query(&so), "sqlite queries");
    STEP(do_js, bench_jsonl_query(p_js, events, runs, &tg), "grep queries");

    print_report(events);
    if (json && write_json(json, events, seed, load[0], &tg))
        rc = -1;
    if (!keep) {
        rm_tree(p_ptb);
        remove(p_sq);
        char p_aux[640];
        snprintf(p_aux, sizeof p_aux, "%s-wal", p_sq);
        remove(p_aux);
        snprintf(p_aux, sizeof p_aux, "%s-shm", p_sq);
        remove(p_aux);
        remove(p_js);
        if (!dir_opt)
            remove(dir);
    }
    return rc ? 1 : 0;
}
