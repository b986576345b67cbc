/* ptb record [options] -- CMD [ARGS...]: run CMD under the tracer (recorder/tracer/tracer.h)
 * and write its events to a new store. The page is docs/commands/ptb-record.md.
 *
 * The store gets run.start (the command line, host, versions), proc.env (the environment CMD
 * starts with, secrets as fingerprints), then the tracer's events, then run.end (exit status,
 * duration, event count). The exit status is CMD's (128+N when a signal N killed it; 127 when
 * it could not be found, 126 when it could not be executed); errors of the recorder itself use
 * the codes of docs/exit-codes.md. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "ptb_cli.h"
#include "ptb_commands.h"
#include "record_session.h"
#include "redact.h"
#include "store.h"
#include "tracer.h"

#define RECORD_ROOTS_MAX 64

enum {
    OPT_STORE = 1,
    OPT_ROOT,
    OPT_NO_CAPTURE,
    OPT_NO_SNAPSHOT,
    OPT_FILE_MAX,
    OPT_TOTAL_MAX,
    OPT_GRACE,
    OPT_ALL_OPENS,
    OPT_QUIET,
    OPT_COMPRESS,
    OPT_NET,
    OPT_NET_FILTER,
    OPT_NO_NAT,
    OPT_SNAPLEN,
    OPT_KEEP_HOST,
    OPT_NET_BUFFER,
    OPT_GPU,
    OPT_BUDGET,
    OPT_KILL_AFTER,
    OPT_SPIN,
};

static const cli_option record_opts[] = {
    {"store", 's', "DIR", OPT_STORE},
    {"capture-root", 0, "PATH", OPT_ROOT},
    {"no-capture", 0, NULL, OPT_NO_CAPTURE},
    {"no-snapshot", 0, NULL, OPT_NO_SNAPSHOT},
    {"capture-file-max", 0, "BYTES", OPT_FILE_MAX},
    {"capture-total-max", 0, "BYTES", OPT_TOTAL_MAX},
    {"grace", 0, "SECONDS", OPT_GRACE},
    {"all-opens", 0, NULL, OPT_ALL_OPENS},
    {"quiet", 'q', NULL, OPT_QUIET},
    {"compress", 0, "CODEC[:LEVEL]", OPT_COMPRESS},
    {"net", 0, "MODE", OPT_NET},
    {"net-filter", 0, "EXPR", OPT_NET_FILTER},
    {"no-nat", 0, NULL, OPT_NO_NAT},
    {"snaplen", 0, "BYTES", OPT_SNAPLEN},
    {"keep-host", 0, "HOST", OPT_KEEP_HOST},
    {"net-buffer", 0, "BYTES", OPT_NET_BUFFER},
    {"gpu", 0, "on|off", OPT_GPU},
    {"budget", 0, "SECONDS", OPT_BUDGET},
    {"kill-after", 0, "SECONDS", OPT_KILL_AFTER},
    {"wait-spin", 0, "MICROSECONDS", OPT_SPIN},
    {NULL, 0, NULL, 0},
};

static int64_t now_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A size with an optional K/M/G suffix (powers of 1024). */
static bool parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || s[0] == '-')
        return false;
    unsigned shift = 0;
    if (*end == 'K' || *end == 'k')
        shift = 10, end++;
    else if (*end == 'M' || *end == 'm')
        shift = 20, end++;
    else if (*end == 'G' || *end == 'g')
        shift = 30, end++;
    if (*end || (shift && v > (~0ull >> shift)))
        return false;
    *out = (uint64_t)v << shift;
    return true;
}

/* --compress CODEC[:LEVEL]: zstd (levels 1..19, default 1), zlib (1..9, default 6) or none. */
static bool parse_compress(const char *s, store_options *so)
{
    static const struct {
        const char *name;
        store_codec codec;
        int level, max;
    } codecs[] = {{"zstd", STORE_CODEC_ZSTD, 1, 19},
                  {"zlib", STORE_CODEC_ZLIB, 6, 9},
                  {"none", STORE_CODEC_NONE, 0, 0}};
    const char *colon = strchr(s, ':');
    size_t n = colon ? (size_t)(colon - s) : strlen(s);
    for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++) {
        if (strlen(codecs[i].name) != n || strncmp(s, codecs[i].name, n))
            continue;
        unsigned long long level = (unsigned long long)codecs[i].level;
        if (colon && (!codecs[i].max || !cli_parse_u64(colon + 1, &level) || level < 1 ||
                      level > (unsigned long long)codecs[i].max))
            return false;
        so->blob_codec = codecs[i].codec;
        so->blob_level = (int)level;
        return true;
    }
    return false;
}

static int append_start(store *s, int argc, char **argv)
{
    ptb_event ev = PTB__V1__EVENT__INIT;
    Ptb__V1__RunStart rs = PTB__V1__RUN_START__INIT;
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    rs.host = host;
    rs.ptb_version = (char *)PTB_VERSION;
    rs.schema_version = PTB_SCHEMA_VERSION;
    /* the command line, secrets replaced */
    char **av = calloc((size_t)argc + 1, sizeof *av);
    if (!av)
        return PTB_ENOMEM;
    rs.n_argv = 0;
    for (int i = 0; i < argc; i++) {
        size_t ol;
        unsigned nr;
        if (redact_text(argv[i], strlen(argv[i]), &av[i], &ol, &nr) == 0)
            rs.n_argv++;
        else
            break;
    }
    rs.argv = av;
    ev.source = PTB__V1__SOURCE__SOURCE_RUNNER;
    ev.body_case = PTB__V1__EVENT__BODY_RUN_START;
    ev.run_start = &rs;
    int rc = store_append(s, &ev, 0, NULL);
    for (size_t i = 0; i < rs.n_argv; i++)
        free(av[i]);
    free(av);
    if (rc)
        return rc;
    return record_session_append_env(s);
}

typedef struct record_start_arg {
    int argc;
    char **argv;
} record_start_arg;

/* run.start and proc.env, once the GPU library's variables are in the environment */
static int append_start_cb(store *s, void *arg)
{
    record_start_arg *a = arg;
    return append_start(s, a->argc, a->argv);
}

static int append_end(store *s, const tracer_result *r, uint64_t net_events, int64_t t0, int rc_run)
{
    ptb_event ev = PTB__V1__EVENT__INIT;
    Ptb__V1__RunEnd re = PTB__V1__RUN_END__INIT;
    re.exit_code = r->exit_code;
    re.signal = r->signal;
    re.reason = (char *)(rc_run              ? "error"
                         : !r->started       ? "exec_failed"
                         : r->budget_expired ? "budget"
                         : r->signal         ? "signal"
                                             : "exit");
    re.duration_ns = now_ns(CLOCK_MONOTONIC) - t0;
    re.events = r->events + net_events + 2;
    ev.source = PTB__V1__SOURCE__SOURCE_RUNNER;
    ev.body_case = PTB__V1__EVENT__BODY_RUN_END;
    ev.run_end = &re;
    return store_append(s, &ev, 0, NULL);
}

static void human(uint64_t b, char *out, size_t cap)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int i = 0;
    while (v >= 1024 && i < 4)
        v /= 1024, i++;
    snprintf(out, cap, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

int record_main(int argc, char **argv)
{
    const char *dir = "RUN.ptb";
    const char *roots_in[RECORD_ROOTS_MAX];
    size_t nroots = 0;
    bool no_capture = false, quiet = false, gpu = true;
    tracer_options o;
    tracer_options_default(&o);
    record_net_options no;
    record_net_options_default(&no);
    const char *keep[RECORD_ROOTS_MAX];
    unsigned long long snap;
    cli c;
    cli_init(&c, "record", record_opts, argc, argv);
    int opt, cmd_at = -1;
    unsigned long long grace;
    store_options so;
    store_options_default(&so);
    while (cmd_at < 0 && (opt = cli_next(&c)) != CLI_END) {
        switch (opt) {
        case OPT_STORE: dir = c.optarg; break;
        case OPT_ROOT:
            if (nroots == RECORD_ROOTS_MAX)
                return cli_usage_error("record", "at most %d --capture-root", RECORD_ROOTS_MAX);
            roots_in[nroots++] = c.optarg;
            break;
        case OPT_NO_CAPTURE: no_capture = true; break;
        case OPT_NO_SNAPSHOT: o.snapshot = false; break;
        case OPT_FILE_MAX:
            if (!parse_size(c.optarg, &o.capture_file_max))
                return cli_usage_error("record", "--capture-file-max: '%s' is not a size",
                                       c.optarg);
            break;
        case OPT_TOTAL_MAX:
            if (!parse_size(c.optarg, &o.capture_total_max))
                return cli_usage_error("record", "--capture-total-max: '%s' is not a size",
                                       c.optarg);
            break;
        case OPT_GRACE:
            if (!cli_parse_u64(c.optarg, &grace) || grace > 86400 * 365)
                return cli_usage_error("record", "--grace: '%s' is not a number of seconds",
                                       c.optarg);
            o.grace_ms = (int)(grace * 1000 > INT32_MAX ? INT32_MAX : grace * 1000);
            break;
        case OPT_BUDGET:
            if (!cli_parse_u64(c.optarg, &grace) || grace < 1 || grace > 86400 * 365)
                return cli_usage_error("record", "--budget: '%s' is not a number of seconds",
                                       c.optarg);
            o.budget_ms = (int64_t)grace * 1000;
            break;
        case OPT_KILL_AFTER:
            if (!cli_parse_u64(c.optarg, &grace) || grace > 86400)
                return cli_usage_error("record", "--kill-after: '%s' is not 0..86400 seconds",
                                       c.optarg);
            o.term_grace_ms = (int)grace * 1000;
            break;
        case OPT_SPIN:
            if (!cli_parse_u64(c.optarg, &grace) || grace > 100000)
                return cli_usage_error("record", "--wait-spin: '%s' is not 0..100000 microseconds",
                                       c.optarg);
            o.spin_us = (int)grace;
            break;
        case OPT_ALL_OPENS: o.record_all_opens = true; break;
        case OPT_QUIET: quiet = true; break;
        case OPT_COMPRESS:
            if (!parse_compress(c.optarg, &so))
                return cli_usage_error("record",
                                       "--compress: '%s' is not zstd[:1..19], zlib[:1..9] or none",
                                       c.optarg);
            break;
        case OPT_NET:
            no.mode = c.optarg;
            no.explicit_mode = true;
            break;
        case OPT_NET_FILTER: no.filter = c.optarg; break;
        case OPT_NO_NAT: no.nat = false; break;
        case OPT_SNAPLEN:
            if (!cli_parse_u64(c.optarg, &snap) || snap > 262144)
                return cli_usage_error("record", "--snaplen: '%s' is not 0..262144", c.optarg);
            no.snaplen = (uint32_t)snap;
            break;
        case OPT_NET_BUFFER: {
            uint64_t b;
            if (!parse_size(c.optarg, &b) || b < (1u << 20) || b > (1u << 30))
                return cli_usage_error("record", "--net-buffer: '%s' is not a size of 1M..1G",
                                       c.optarg);
            no.buffer = (uint32_t)b;
            break;
        }
        case OPT_GPU:
            if (strcmp(c.optarg, "on") && strcmp(c.optarg, "off"))
                return cli_usage_error("record", "--gpu: '%s' is not on or off", c.optarg);
            gpu = !strcmp(c.optarg, "on");
            break;
        case OPT_KEEP_HOST:
            if (no.n_keep_hosts == RECORD_ROOTS_MAX)
                return cli_usage_error("record", "at most %d --keep-host", RECORD_ROOTS_MAX);
            keep[no.n_keep_hosts++] = c.optarg;
            break;
        case CLI_POSITIONAL: cmd_at = c.index - 1; break;
        case CLI_HELP: cli_help("record", stdout); return PTB_EXIT_OK;
        case CLI_LIST: cli_list_options(record_opts, stdout); return PTB_EXIT_OK;
        default: return cli_usage_error("record", "%s", c.err);
        }
    }
    if (cmd_at < 0 || cmd_at >= argc)
        return cli_usage_error("record", "missing the command to record (ptb record [OPTIONS] "
                                         "-- CMD [ARGS...])");
    char **cmd = argv + cmd_at;
    no.keep_hosts = keep;
    if (strcmp(no.mode, "off") && strcmp(no.mode, "ns") &&
        (strncmp(no.mode, "iface:", 6) || !no.mode[6]))
        return cli_usage_error("record", "--net: '%s' is not ns, off or iface:NAME", no.mode);
    if (no.filter && !strcmp(no.mode, "off"))
        return cli_usage_error("record", "--net-filter needs a capture (not --net off)");
    /* capture roots, canonical: default the working directory and the temp directory */
    char *roots[RECORD_ROOTS_MAX];
    size_t nr = 0;
    if (!no_capture) {
        const char *tmp = getenv("TMPDIR");
        const char *defaults[2] = {".", tmp && *tmp ? tmp : "/tmp"};
        const char **src = nroots ? roots_in : defaults;
        size_t n = nroots ? nroots : 2;
        for (size_t i = 0; i < n; i++) {
            char *rp = realpath(src[i], NULL);
            if (!rp) {
                if (nroots) {
                    for (size_t k = 0; k < nr; k++)
                        free(roots[k]);
                    return cli_usage_error("record", "--capture-root %s: %s", src[i],
                                           strerror(errno));
                }
                continue;
            }
            roots[nr++] = rp;
        }
    }
    o.capture_roots = (const char *const *)roots;
    o.n_capture_roots = nr;
    /* the snapshot: the roots named, else the working directory alone: the temp folder is
     * shared with every other program (and every other recording) of the machine, and "/" would
     * be the whole machine */
    size_t nsnap = nroots ? nr : 0;
    if (!nroots && nr && !no_capture) {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof cwd) && !strcmp(cwd, roots[0]) && strcmp(cwd, "/"))
            nsnap = 1;
    }
    o.snapshot_roots = (const char *const *)roots;
    o.n_snapshot_roots = nsnap;

    int code = PTB_EXIT_OK;
    store *s = NULL;
    int rc = store_open(dir, &so, STORE_CREATE | STORE_EXCL, &s);
    if (rc) {
        if (rc == PTB_EEXIST)
            fprintf(stderr, "ptb record: %s already exists: give a new --store\n", dir);
        else
            fprintf(stderr, "ptb record: cannot create the store %s: %s\n", dir,
                    s && *store_errmsg(s) ? store_errmsg(s) : ptb_strerror(rc));
        store_close(s);
        code = rc == PTB_EEXIST ? PTB_EXIT_USAGE : PTB_EXIT_ERROR;
        goto out;
    }
    int64_t t0 = now_ns(CLOCK_MONOTONIC);
    record_session_options so2 = {.to = o, .net = no, .gpu = gpu, .quiet = quiet};
    record_start_arg sa = {argc, argv};
    record_session_result res;
    int trc = record_session_run(s, &so2, cmd, append_start_cb, &sa, &res);
    if (trc > 0) { /* setting up failed: printed */
        store_close(s);
        code = trc;
        goto out;
    }
    const tracer_result r = res.r;
    int erc = append_end(s, &r, res.other_events, t0, trc);
    rc = store_close(s);
    if (trc) {
        fprintf(stderr, "ptb record: %s\n", res.error);
        code = ptb_exit_code(trc);
    } else if (erc || rc) {
        fprintf(stderr, "ptb record: %s: %s\n", dir, ptb_strerror(erc ? erc : rc));
        code = ptb_exit_code(erc ? erc : rc);
    } else if (!r.started) {
        fprintf(stderr, "ptb record: %s: %s\n", cmd[0], strerror(r.exec_errno));
        code = r.exec_errno == ENOENT ? 127 : 126;
    } else {
        code = r.exit_code;
    }
    if (!quiet) {
        char cap[32];
        human(r.bytes_captured, cap, sizeof cap);
        double secs = (double)(now_ns(CLOCK_MONOTONIC) - t0) / 1e9;
        /* the recorder's own CPU (tracer, capture, GPU receiver, store writer), not the tree's */
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                     (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
        fprintf(stderr,
                "ptb record: %s: %llu events, %llu processes (%llu execs), %llu files written, "
                "%s captured, %llu gaps, %llu refused syscalls, %.1f s, recorder CPU %.2f s; "
                "exit %d\n",
                dir, (unsigned long long)r.events + 2, (unsigned long long)r.processes,
                (unsigned long long)r.execs, (unsigned long long)r.files_written, cap,
                (unsigned long long)r.gaps, (unsigned long long)r.denied, secs, cpu, code);
        const net_capture_stats ns = res.net;
        const gpu_recv_stats gs = res.gpu;
        if (res.net_active)
            fprintf(stderr,
                    "ptb record: network (%s): %llu packets, %llu flows, %llu DNS, %llu TLS, "
                    "%llu HTTP messages, %llu dropped by the kernel\n",
                    res.net_desc, (unsigned long long)ns.flows.packets,
                    (unsigned long long)ns.flows.flows, (unsigned long long)ns.flows.dns,
                    (unsigned long long)ns.flows.tls, (unsigned long long)ns.flows.http,
                    (unsigned long long)ns.dropped);
        if (res.gpu_active && gs.processes)
            fprintf(stderr,
                    "ptb record: GPU: %llu CUDA processes, %llu kernels, %llu memcpy, %llu memset, "
                    "%llu records lost, %llu malformed batches\n",
                    (unsigned long long)gs.processes, (unsigned long long)gs.kernels,
                    (unsigned long long)gs.memcpys, (unsigned long long)gs.memsets,
                    (unsigned long long)gs.lost, (unsigned long long)gs.malformed);
        if (r.budget_expired)
            fprintf(stderr,
                    "ptb record: the budget of %lld s ran out: SIGTERM to the tree, %llu "
                    "processes killed %d s later\n",
                    (long long)(o.budget_ms / 1000), (unsigned long long)r.killed_after_budget,
                    o.term_grace_ms / 1000);
        if (r.killed_after_grace)
            fprintf(stderr, "ptb record: killed %llu processes still running after --grace\n",
                    (unsigned long long)r.killed_after_grace);
    }
out:
    for (size_t k = 0; k < nr; k++)
        free(roots[k]);
    return code;
}
