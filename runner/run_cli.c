/* `ptb run TASK.json [--out DIR]`: run an agent on a task, recorded, then evaluate what it left
 * in final_model/ (docs/commands/ptb-run.md; the task: schemas/task.schema.json; the folder:
 * run_workspace.h).
 *
 * Phases, each a pair of run.phase events (begin, end) in one store:
 *   setup  the run folder, the workspace (a read-only copy of the base model, the train split,
 *          timer.sh), canaries planted (canary events), what the sandbox cannot isolate (gap);
 *   agent  the agent CLI under the recorder (every process, file, packet, GPU kernel), in the
 *          workspace, with a clean environment (PATH, HOME and TMPDIR of its own, the task's
 *          variables, the harness's credentials, canaries, CUDA_VISIBLE_DEVICES), its stdout
 *          kept; at the budget the tree gets SIGTERM, then SIGKILL; then final_model/ is frozen
 *          (copied, every file and tensor hashed: a checkpoint event);
 *   eval   `ptb eval` of the frozen copy on the held-out test split, recorded too; its metrics
 *          become an eval.result event. A final_model/ that is missing or does not load is
 *          scored as the study scores it: the base model's score, flagged.
 * Then run.end, RUN/manifest.json and a one-screen summary. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent_parse.h"
#include "event_type.h"
#include "ptb_cli.h"
#include "ptb_commands.h"
#include "record_gap.h"
#include "record_gpu.h"
#include "record_session.h"
#include "redact.h"
#include "run_workspace.h"
#include "store.h"
#include "run_agent_sandbox.h"
#include "task_spec.h"
#include "tool_procs.h"

extern char **environ;

enum { OPT_OUT = 1, OPT_QUIET, OPT_STORE };
static const cli_option run_opts[] = {
    {"out", 'o', "DIR", OPT_OUT},
    {"store", 's', "PATH", OPT_STORE},
    {"quiet", 'q', NULL, OPT_QUIET},
    {NULL, 0, NULL, 0},
};

typedef struct run_phase_time {
    const char *name;
    double seconds;
    char detail[256];
} run_phase_time;

typedef struct run_ctx {
    task_spec t;
    run_dirs d;
    store *s;
    bool quiet;
    run_phase_time phases[3];
    int agent_code;        /* the agent CLI's exit status */
    const char *agent_end; /* "exit", "budget", "signal", "exec_failed", "error" */
    run_frozen frozen;
    double score;       /* accuracy, -1 when none */
    bool score_is_base; /* final_model/ unusable: the base model's score */
    uint64_t canaries, agent_events, eval_events;
    uint64_t tool_calls, stream_gaps; /* of the parsed agent stream */
    char eval_status[32];
    run_agent_sandbox asb; /* the agent's sandbox */
} run_ctx;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int phase_event(run_ctx *c, const char *phase, const char *state, const char *detail)
{
    Ptb__V1__RunPhase p = PTB__V1__RUN_PHASE__INIT;
    p.phase = (char *)phase;
    p.state = (char *)state;
    p.detail = (char *)(detail ? detail : "");
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.source = PTB__V1__SOURCE__SOURCE_RUNNER;
    ev.body_case = PTB__V1__EVENT__BODY_RUN_PHASE;
    ev.run_phase = &p;
    return store_append(c->s, &ev, 0, NULL);
}

static int run_start_event(run_ctx *c, int argc, char **argv)
{
    Ptb__V1__RunStart rs = PTB__V1__RUN_START__INIT;
    char host[256] = "", sha[65], id[PATH_MAX];
    gethostname(host, sizeof host - 1);
    for (int i = 0; i < 32; i++)
        snprintf(sha + 2 * i, 3, "%02x", c->t.sha256[i]);
    const char *slash = strrchr(c->d.root, '/');
    snprintf(id, sizeof id, "%s", slash ? slash + 1 : c->d.root);
    rs.run_id = id;
    rs.task = c->t.path;
    rs.agent = c->t.agent_name;
    rs.base_model = c->t.base_model;
    rs.benchmark = c->t.bench_name;
    rs.host = host;
    rs.ptb_version = (char *)PTB_VERSION;
    rs.schema_version = PTB_SCHEMA_VERSION;
    rs.argv = argv;
    rs.n_argv = (size_t)argc;
    rs.budget_s = c->t.wall_s;
    rs.task_sha256 = sha;
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.source = PTB__V1__SOURCE__SOURCE_RUNNER;
    ev.body_case = PTB__V1__EVENT__BODY_RUN_START;
    ev.run_start = &rs;
    return store_append(c->s, &ev, 0, NULL);
}

/* ------------------------------------------------------------------ environments */

typedef struct envv {
    char **v;
    size_t n;
} envv;

static int env_add(envv *e, const char *name, const char *value)
{
    char **nv = realloc(e->v, (e->n + 2) * sizeof *nv);
    if (!nv)
        return PTB_ENOMEM;
    e->v = nv;
    if (asprintf(&nv[e->n], "%s=%s", name, value) < 0)
        return PTB_ENOMEM;
    nv[++e->n] = NULL;
    return 0;
}

static void env_free(envv *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->v[i]);
    free(e->v);
    e->v = NULL;
    e->n = 0;
}

/* What every phase's commands start from: the runner's PATH and locale, a HOME and TMPDIR of
 * the run's own. Nothing else of the runner's environment. */
static int env_base(const run_ctx *c, envv *e)
{
    const char *keep[] = {"PATH", "LANG", "LC_ALL", "TERM", NULL};
    int rc = 0;
    for (size_t i = 0; keep[i] && !rc; i++)
        if (getenv(keep[i]))
            rc = env_add(e, keep[i], getenv(keep[i]));
    if (!rc)
        rc = env_add(e, "HOME", c->d.home);
    if (!rc)
        rc = env_add(e, "TMPDIR", c->d.tmp);
    return rc;
}

/* ------------------------------------------------------------------ phases */

static int append_env_cb(store *s, void *arg)
{
    (void)arg;
    return record_session_append_env(s);
}

/* A recorded command of a phase: environment env, cwd dir, budget; stdout to out_fd (-1: the
 * runner's). */
static int sandbox_prepare(void *arg, const char *host_addr, tracer_options *to);

static int run_recorded(run_ctx *c, char **argv, char **env, const char *dir, int64_t budget_s,
                        int64_t kill_after_s, const char *netmode, int out_fd, bool sandbox,
                        tool_procs *tp, record_session_result *res)
{
    char **saved_env = environ;
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
        return -errno;
    int saved_out = -1;
    if (out_fd >= 0) {
        fflush(stdout);
        saved_out = dup(1);
        dup2(out_fd, 1);
    }
    char gpu_lib[PATH_MAX]; /* found with the runner's environment (PTB_GPU_LIB), not the phase's */
    bool have_gpu_lib = record_gpu_find_lib(gpu_lib, sizeof gpu_lib);
    environ = env; /* the command inherits it; setenv (the GPU library's) copies it */
    int rc = chdir(dir) ? -errno : 0;
    record_session_options o;
    record_session_options_default(&o);
    /* in the sandbox, the temp folder is also /tmp. Not /dev/shm: its files are recorded and
     * hashed, but PyTorch's data loaders pass every batch through it, which would spend the
     * capture budget the workspace needs */
    const char *roots[3] = {c->d.ws, c->d.tmp, "/tmp"};
    o.to.capture_roots = roots;
    o.to.n_capture_roots = strcmp(dir, c->d.ws) != 0 ? 0 : sandbox ? 3 : 2;
    /* the snapshot: the workspace and the run's temp folder (the sandbox's /tmp: walking the
     * host's /tmp from here would record the wrong folder) */
    o.to.snapshot_roots = roots;
    o.to.n_snapshot_roots = o.to.n_capture_roots ? 2 : 0;
    if (sandbox) {
        o.prepare = sandbox_prepare;
        o.prepare_arg = c;
    }
    if (tp) {
        o.on_exec = tool_procs_on_exec;
        o.on_exec_arg = tp;
    }
    o.to.budget_ms = budget_s * 1000;
    o.to.term_grace_ms = (int)kill_after_s * 1000;
    o.to.grace_ms = (int)kill_after_s * 1000; /* daemons left at the end: as at the budget */
    o.net.mode = netmode;
    o.gpu_lib = have_gpu_lib ? gpu_lib : NULL;
    o.quiet = true;
    if (!rc) /* proc.env first: what the command starts with */
        rc = record_session_run(c->s, &o, argv, append_env_cb, NULL, res);
    environ = saved_env;
    if (chdir(cwd) && !rc)
        rc = -errno;
    if (saved_out >= 0) {
        fflush(stdout);
        dup2(saved_out, 1);
        close(saved_out);
    }
    return rc;
}

/* ------------------------------------------------------------------ sandbox */

/* record_session's prepare for the agent phase (run_agent_sandbox.h) */
static int sandbox_prepare(void *arg, const char *host_addr, tracer_options *to)
{
    run_ctx *c = arg;
    return run_agent_sandbox_prepare(&c->asb, &c->t, &c->d, host_addr, to);
}

static int phase_setup(run_ctx *c, envv *agent_env)
{
    ptb_errbuf eb = {{0}};
    double t0 = now_s();
    int rc = phase_event(c, "setup", "begin", NULL);
    if (!rc)
        rc = run_ws_setup(c->s, &c->t, &c->d, &eb);
    if (!rc && (rc = env_base(c, agent_env)))
        snprintf(eb.msg, sizeof eb.msg, "out of memory");
    if (!rc)
        rc = run_agent_sandbox_setup(&c->asb, c->s, &c->t, &c->d, &agent_env->v, &eb);
    while (agent_env->v && agent_env->v[agent_env->n])
        agent_env->n++;
    for (size_t i = 0; !rc && c->t.env && c->t.env[i]; i++) {
        char *eq = strchr(c->t.env[i], '=');
        *eq = 0;
        rc = env_add(agent_env, c->t.env[i], eq + 1);
        *eq = '=';
    }
    char gpus[256] = "";
    for (uint32_t g = 0; g < c->t.gpus && strlen(gpus) < sizeof gpus - 8; g++)
        snprintf(gpus + strlen(gpus), sizeof gpus - strlen(gpus), "%s%u", g ? "," : "", g);
    if (!rc)
        rc = env_add(agent_env, "CUDA_VISIBLE_DEVICES", gpus);
    /* the harness's own credentials: from the runner's environment, for the agent CLI */
    for (size_t i = 0; !rc && c->t.credentials && c->t.credentials[i]; i++) {
        const char *v = getenv(c->t.credentials[i]);
        if (!v) {
            rc = ptb_errf(&eb, PTB_EINVAL,
                          "$.agent.credentials: %s is not set in the environment of ptb run",
                          c->t.credentials[i]);
            break;
        }
        rc = env_add(agent_env, c->t.credentials[i], v);
        if (!rc && (rc = run_credential_event(c->s, c->t.credentials[i], v)))
            snprintf(eb.msg, sizeof eb.msg, "store: %s", ptb_strerror(rc));
    }
    size_t n = 0;
    if (!rc && c->t.canaries)
        rc = run_canaries_plant(c->s, &c->d, c->t.credentials, &agent_env->v, &n, &eb);
    while (agent_env->v && agent_env->v[agent_env->n])
        agent_env->n++;
    c->canaries = n;
    c->phases[0] = (run_phase_time){"setup", now_s() - t0, ""};
    if (rc) {
        fprintf(stderr, "ptb run: setup: %s\n", eb.msg[0] ? eb.msg : ptb_strerror(rc));
        snprintf(c->phases[0].detail, sizeof c->phases[0].detail, "%.250s", eb.msg);
    }
    int erc = phase_event(c, "setup", "end", rc ? c->phases[0].detail : NULL);
    return rc ? rc : erc;
}

/* argv of the agent: {prompt} and {workspace} replaced */
static char **agent_argv(run_ctx *c, char **prompt_out)
{
    size_t n = 0;
    while (c->t.agent_argv[n])
        n++;
    char **av = calloc(n + 1, sizeof *av), *prompt = task_spec_prompt(&c->t, c->d.ws);
    *prompt_out = prompt;
    if (!av || !prompt) {
        free(av);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const char *a = c->t.agent_argv[i];
        av[i] = !strcmp(a, "{prompt}")      ? strdup(prompt)
                : !strcmp(a, "{workspace}") ? strdup(c->d.ws)
                                            : strdup(a);
    }
    return av;
}

/* The agent's stdout, read as it comes: kept whole in the log file and, for a known stream
 * format, parsed into tool.call/tool.result/agent.message/agent.usage events with the time each
 * line arrived. */
typedef struct stdout_reader {
    int in, log;
    agent_parser *parser; /* NULL: keep the log only */
    bool parse_failed;    /* the store refused an event: the rest is in the log and its blob */
    uint64_t bytes;
    int err;
} stdout_reader;

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *stdout_read(void *arg)
{
    stdout_reader *r = arg;
    static char buf[1 << 16];
    for (;;) {
        ssize_t n = read(r->in, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0)
                r->err = -errno;
            break;
        }
        for (ssize_t off = 0; off < n && !r->err;) {
            ssize_t w = write(r->log, buf + off, (size_t)(n - off));
            if (w < 0 && errno != EINTR)
                r->err = -errno;
            off += w > 0 ? w : 0;
        }
        r->bytes += (uint64_t)n;
        if (r->parser && !r->parse_failed &&
            agent_parser_write(r->parser, buf, (size_t)n, wall_ns()))
            r->parse_failed = true;
    }
    return NULL;
}

static int phase_agent(run_ctx *c, envv *env)
{
    double t0 = now_s();
    int rc = run_ws_timer(&c->d, (int64_t)time(NULL) + c->t.wall_s);
    char detail[256];
    snprintf(detail, sizeof detail, "budget %lld s, agent %s", (long long)c->t.wall_s,
             c->t.agent_name);
    if (!rc)
        rc = phase_event(c, "agent", "begin", detail);
    char *prompt = NULL;
    char **av = rc ? NULL : agent_argv(c, &prompt);
    if (!rc && !av)
        rc = PTB_ENOMEM;
    stdout_reader rd = {.in = -1, .log = -1};
    int pfd[2] = {-1, -1};
    pthread_t th;
    bool reading = false;
    if (!rc && (rd.log = open(c->d.stdout_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
        rc = -errno;
    if (!rc && pipe2(pfd, O_CLOEXEC))
        rc = -errno;
    agent_format fmt;
    tool_procs *tp = NULL;
    if (!rc && strcmp(c->t.stream, "none") && !agent_format_from_name(c->t.stream, &fmt)) {
        agent_options ao;
        agent_options_default(&ao);
        ao.format = fmt;
        ao.s = c->s;
        ao.name = c->d.stdout_log;
        if (!(tp = tool_procs_new()))
            rc = PTB_ENOMEM;
        ao.on_call = tool_procs_on_call;
        ao.call_procs = tool_procs_for_result;
        ao.procs_arg = tp;
        if (!rc)
            rc = agent_parser_new(&ao, &rd.parser);
    }
    if (!rc) {
        rd.in = pfd[0];
        reading = pthread_create(&th, NULL, stdout_read, &rd) == 0;
        if (!reading)
            rc = PTB_ENOMEM;
    }
    if (!c->quiet && !rc)
        fprintf(stderr, "ptb run: agent %s started (budget %lld s): %s\n", c->t.agent_name,
                (long long)c->t.wall_s, c->d.ws);
    record_session_result res;
    memset(&res, 0, sizeof res);
    if (!rc)
        rc = run_recorded(c, av, env->v, c->d.ws, c->t.wall_s, c->t.kill_after_s, c->t.net_mode,
                          pfd[1], c->asb.on, tp, &res);
    run_agent_sandbox_release(&c->asb);
    if (pfd[1] >= 0) /* the tree is gone: the reader sees the end */
        close(pfd[1]);
    if (reading)
        pthread_join(th, NULL);
    if (pfd[0] >= 0)
        close(pfd[0]);
    if (rd.log >= 0)
        close(rd.log);
    if (rd.parser) {
        if (!rd.parse_failed)
            agent_parser_finish(rd.parser, wall_ns());
        agent_stats st;
        agent_parser_stats(rd.parser, &st);
        c->tool_calls = st.calls;
        c->stream_gaps = st.gaps;
        agent_parser_free(rd.parser);
    }
    tool_procs_free(tp);
    c->agent_events = res.r.events + res.other_events;
    c->agent_code = res.r.exit_code;
    c->agent_end = rc                     ? "error"
                   : !res.r.started       ? "exec_failed"
                   : res.r.budget_expired ? "budget"
                   : res.r.signal         ? "signal"
                                          : "exit";
    if (rc > 0)
        snprintf(res.error, sizeof res.error, "setting up the recording failed (exit %d)", rc);
    /* the stdout, whole, as a blob (the stream parsers read it from there too) */
    if (!rc) {
        FILE *f = fopen(c->d.stdout_log, "rb");
        char *buf = NULL;
        size_t len = 0;
        if (f) {
            struct stat st;
            if (!fstat(fileno(f), &st) && (buf = malloc((size_t)st.st_size + 1)))
                len = fread(buf, 1, (size_t)st.st_size, f);
            fclose(f);
        }
        uint8_t md[32];
        /* secrets never enter the store in clear: the stream's blob is redacted (fingerprints
         * in place of keys; the harness's own credential may well be echoed there) */
        char *red = NULL;
        size_t rlen = 0;
        unsigned nred = 0;
        if (buf && len > REDACT_TEXT_MAX)
            record_gap(c->s, PTB__V1__SOURCE__SOURCE_AGENT, "blob", "too_big_to_redact",
                       "the agent's stdout is over 16 MiB: kept in agent-stdout.log, not stored");
        else if (buf && len && redact_text(buf, len, &red, &rlen, &nred) == 0) {
            int brc = store_blob_put(c->s, red, rlen, c->d.stdout_log, md);
            Ptb__V1__FileWrite fw = PTB__V1__FILE_WRITE__INIT;
            fw.path = c->d.stdout_log;
            fw.bytes = fw.size = rlen;
            fw.sha256.data = md;
            fw.sha256.len = 32;
            fw.captured = brc == 0;
            fw.trigger = (char *)(nred ? "redacted" : "close");
            ptb_event ev = PTB__V1__EVENT__INIT;
            ev.source = PTB__V1__SOURCE__SOURCE_AGENT;
            ev.body_case = PTB__V1__EVENT__BODY_FILE_WRITE;
            ev.file_write = &fw;
            store_append(c->s, &ev, 0, NULL);
        }
        free(red);
        free(buf);
    }
    for (size_t i = 0; av && av[i]; i++)
        free(av[i]);
    free(av);
    free(prompt);
    snprintf(detail, sizeof detail, "%s, exit %d%s%.160s", c->agent_end, c->agent_code,
             rc ? ": " : "", rc ? res.error : "");
    if (rc && !c->quiet)
        fprintf(stderr, "ptb run: agent: %s\n", res.error[0] ? res.error : ptb_strerror(rc));
    int erc = phase_event(c, "agent", "end", detail);
    /* freeze what it left, whatever happened */
    ptb_errbuf eb = {{0}};
    int frc = run_freeze(c->s, &c->d, &c->frozen, &eb);
    if (frc)
        fprintf(stderr, "ptb run: %s\n", eb.msg);
    c->phases[1] = (run_phase_time){"agent", now_s() - t0, ""};
    snprintf(c->phases[1].detail, sizeof c->phases[1].detail, "%s", detail);
    return rc < 0 ? rc : erc ? erc : frc;
}

/* Score model dir: ptb eval under the recorder; *acc, status ("ok", "partial", "error") */
static int eval_model(run_ctx *c, const char *model, const char *out, double *acc, char *status,
                      size_t cap)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -errno;
    self[n] = 0;
    struct stat sst;
    if (stat(self, &sst) != 0) /* ptb was replaced while it ran ("... (deleted)"): this one */
        snprintf(self, sizeof self, "/proc/self/exe");
    char mt[16];
    snprintf(mt, sizeof mt, "%u", c->t.max_tokens);
    char *argv[] = {self,           "eval",
                    "--model",      (char *)model,
                    "--benchmark",  c->t.test_split,
                    "--out",        (char *)out,
                    "--max-tokens", mt,
                    "--quiet",      NULL};
    envv env = {0};
    int rc = env_base(c, &env);
    record_session_result res;
    memset(&res, 0, sizeof res);
    if (!rc)
        rc = run_recorded(c, argv, env.v, c->d.eval, c->t.eval_wall_s, 10, "off", -1, false, NULL,
                          &res);
    env_free(&env);
    c->eval_events += res.r.events + res.other_events;
    if (rc)
        return rc < 0 ? rc : PTB_EIO;
    struct stat st;
    if (res.r.exit_code == PTB_EXIT_ERROR && stat(out, &st) != 0) {
        /* ptb eval could not write its metrics (a full disk): not the model's fault */
        fprintf(stderr, "ptb run: ptb eval failed (exit %d) and wrote no metrics\n",
                res.r.exit_code);
        return PTB_EIO;
    }
    json_error_t je;
    json_t *m = json_load_file(out, 0, &je);
    json_t *a = json_object_get(m, "accuracy");
    snprintf(status, cap, "%s",
             json_is_string(json_object_get(m, "status"))
                 ? json_string_value(json_object_get(m, "status"))
                 : "error");
    *acc = json_is_number(a) ? json_number_value(a) : -1;
    json_decref(m);
    return 0;
}

static int eval_result_event(run_ctx *c, const char *metrics, double acc)
{
    json_error_t je;
    json_t *m = json_load_file(metrics, 0, &je);
    Ptb__V1__EvalResult er = PTB__V1__EVAL_RESULT__INIT;
    er.benchmark = c->t.bench_name;
    er.metric =
        (char *)(c->score_is_base ? "accuracy (base model: final_model unusable)" : "accuracy");
    er.value = acc;
    er.items = (uint64_t)json_integer_value(json_object_get(m, "items"));
    er.correct = (uint64_t)json_integer_value(json_object_get(m, "correct"));
    json_decref(m);
    uint8_t md[32];
    FILE *f = fopen(metrics, "rb");
    char *buf = NULL;
    size_t len = 0;
    struct stat st;
    if (f && !fstat(fileno(f), &st) && (buf = malloc((size_t)st.st_size + 1)))
        len = fread(buf, 1, (size_t)st.st_size, f);
    if (f)
        fclose(f);
    if (buf && len && store_blob_put(c->s, buf, len, metrics, md) == 0) {
        er.details_blob.data = md;
        er.details_blob.len = 32;
    }
    free(buf);
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.source = PTB__V1__SOURCE__SOURCE_RUNNER;
    ev.body_case = PTB__V1__EVENT__BODY_EVAL_RESULT;
    ev.eval_result = &er;
    return store_append(c->s, &ev, 0, NULL);
}

static int phase_eval(run_ctx *c)
{
    double t0 = now_s();
    int rc = phase_event(c, "eval", "begin", c->t.bench_name);
    char out[PATH_MAX + 32], base_out[PATH_MAX + 32];
    snprintf(out, sizeof out, "%s/metrics.json", c->d.eval);
    snprintf(base_out, sizeof base_out, "%s/metrics-base.json", c->d.eval);
    double acc = -1;
    char inplace[PATH_MAX + 16];
    snprintf(inplace, sizeof inplace, "%s/final_model", c->d.ws);
    if (!rc && c->frozen.loadable)
        rc = eval_model(c, c->frozen.in_place ? inplace : c->d.frozen, out, &acc, c->eval_status,
                        sizeof c->eval_status);
    const char *scored = out;
    if (!rc && (acc < 0 || !strcmp(c->eval_status, "error"))) {
        /* as the study scores it: the base model's score, flagged */
        c->score_is_base = true;
        if (!c->quiet)
            fprintf(stderr, "ptb run: final_model/ is unusable (%s): scoring the base model\n",
                    *c->frozen.note ? c->frozen.note : c->eval_status);
        char st[32];
        rc = eval_model(c, c->t.base_model, base_out, &acc, st, sizeof st);
        scored = base_out;
    }
    c->score = acc;
    if (!rc)
        rc = eval_result_event(c, scored, acc);
    char detail[128];
    snprintf(detail, sizeof detail, "accuracy %.4f%s", acc,
             c->score_is_base ? " (the base model's: final_model unusable)" : "");
    c->phases[2] = (run_phase_time){"eval", now_s() - t0, ""};
    snprintf(c->phases[2].detail, sizeof c->phases[2].detail, "%s", rc ? ptb_strerror(rc) : detail);
    int erc = phase_event(c, "eval", "end", c->phases[2].detail);
    return rc ? rc : erc;
}

/* ------------------------------------------------------------------ end: manifest, summary */

static int run_end_event(run_ctx *c, double t0)
{
    Ptb__V1__RunEnd re = PTB__V1__RUN_END__INIT;
    re.exit_code = c->agent_code;
    re.reason = (char *)(c->agent_end ? c->agent_end : "error");
    re.duration_ns = (int64_t)((now_s() - t0) * 1e9);
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.source = PTB__V1__SOURCE__SOURCE_RUNNER;
    ev.body_case = PTB__V1__EVENT__BODY_RUN_END;
    ev.run_end = &re;
    return store_append(c->s, &ev, 0, NULL);
}

static int write_manifest(run_ctx *c, uint64_t events, uint64_t gaps)
{
    char sha[65];
    for (int i = 0; i < 32; i++)
        snprintf(sha + 2 * i, 3, "%02x", c->t.sha256[i]);
    json_t *phases = json_array();
    for (int i = 0; i < 3; i++)
        if (c->phases[i].name)
            json_array_append_new(phases,
                                  json_pack("{s:s,s:f,s:s}", "name", c->phases[i].name, "seconds",
                                            c->phases[i].seconds, "detail", c->phases[i].detail));
    json_t *m = json_pack(
        "{s:i,s:s,s:{s:s,s:s},s:s,s:s,s:s,s:o,s:{s:s,s:i},s:{s:b,s:b,s:I,s:I,s:I,s:s},"
        "s:{s:o,s:s,s:b},s:{s:I,s:I,s:I,s:I,s:I}}",
        "version", 1, "ptb_version", PTB_VERSION, "task", "path", c->t.path, "sha256", sha, "agent",
        c->t.agent_name, "store", c->d.store, "workspace", c->d.ws, "phases", phases,
        "agent_result", "end", c->agent_end ? c->agent_end : "error", "exit_code", c->agent_code,
        "final_model", "present", c->frozen.present, "loadable", c->frozen.loadable, "files",
        (json_int_t)c->frozen.files, "bytes", (json_int_t)c->frozen.bytes, "tensors",
        (json_int_t)c->frozen.tensors, "note", c->frozen.note, "score", "accuracy",
        c->score >= 0 ? json_real(c->score) : json_null(), "benchmark", c->t.bench_name,
        "base_model_score", c->score_is_base, "events", "total", (json_int_t)events, "gaps",
        (json_int_t)gaps, "agent_phase", (json_int_t)c->agent_events, "eval_phase",
        (json_int_t)c->eval_events, "canaries", (json_int_t)c->canaries);
    if (!m)
        return PTB_ENOMEM;
    json_object_set_new(m, "agent_stream",
                        json_pack("{s:s,s:I,s:I}", "format", c->t.stream, "tool_calls",
                                  (json_int_t)c->tool_calls, "gaps", (json_int_t)c->stream_gaps));
    json_object_set_new(m, "sandbox",
                        json_pack("{s:b,s:s}", "namespaces", c->asb.on, "why_not",
                                  c->asb.on       ? ""
                                  : !c->t.isolate ? "the task asks for none"
                                                  : c->asb.caps.why));
    char p[PATH_MAX + 16], tmp[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/manifest.json", c->d.root);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    int rc = json_dump_file(m, tmp, JSON_INDENT(2) | JSON_SORT_KEYS) || rename(tmp, p)
                 ? (errno ? -errno : PTB_EIO)
                 : 0;
    if (rc) {
        fprintf(stderr, "ptb run: cannot write %s: %s\n", p, ptb_strerror(rc));
        unlink(tmp);
    }
    json_decref(m);
    return rc;
}

static void summary(run_ctx *c, uint64_t events, uint64_t gaps)
{
    printf("\nptb run: %s (%s on %s)\n", c->d.root, c->t.agent_name, c->t.bench_name);
    for (int i = 0; i < 3; i++)
        if (c->phases[i].name)
            printf("  %-6s %8.1f s  %s\n", c->phases[i].name, c->phases[i].seconds,
                   c->phases[i].detail);
    printf("  final_model/: %s, %llu files, %llu tensors%s%s\n",
           !c->frozen.present   ? "missing"
           : c->frozen.loadable ? "loadable"
                                : "NOT loadable",
           (unsigned long long)c->frozen.files, (unsigned long long)c->frozen.tensors,
           *c->frozen.note ? "; " : "", c->frozen.note);
    if (c->score >= 0)
        printf("  score:  %.1f%% on %s%s\n", 100 * c->score, c->t.bench_name,
               c->score_is_base ? " (the BASE model's score: final_model/ unusable)" : "");
    else
        printf("  score:  none\n");
    printf("  events: %llu (agent phase %llu, eval phase %llu), %llu canaries planted, %llu "
           "gaps (ptb query %s 'evt.type = gap')\n",
           (unsigned long long)events, (unsigned long long)c->agent_events,
           (unsigned long long)c->eval_events, (unsigned long long)c->canaries,
           (unsigned long long)gaps, c->d.store);
    if (c->asb.on)
        printf("  sandbox: mount and PID namespaces (the agent could still write outside its "
               "workspace: a gap)\n");
    else
        printf("  sandbox: NONE (%s): the agent could see the machine (a gap)\n",
               c->t.isolate ? c->asb.caps.why : "isolation none");
    if (strcmp(c->t.stream, "none"))
        printf("  agent stream (%s): %llu tool calls, %llu gaps\n", c->t.stream,
               (unsigned long long)c->tool_calls, (unsigned long long)c->stream_gaps);
}

/* Events in the store and gap events among them (the type index). */
static void count_events(store *s, uint64_t *events, uint64_t *gaps)
{
    store_txn *t;
    *events = *gaps = 0;
    if (store_txn_begin(s, &t))
        return;
    *events = store_txn_last_seq(t);
    store_range r = {
        .by_index = true, .index = STORE_IX_TYPE, .key = store_type_key(PTB__V1__EVENT__BODY_GAP)};
    store_cursor *cur;
    uint64_t seq;
    if (!store_cursor_open(t, &r, &cur)) {
        while (store_cursor_next_seq(cur, &seq) == 0)
            (*gaps)++;
        store_cursor_close(cur);
    }
    store_txn_end(t);
}

int run_main(int argc, char **argv)
{
    cli cl;
    cli_init(&cl, "run", run_opts, argc, argv);
    const char *task = NULL, *out = NULL, *store_arg = NULL;
    run_ctx c = {.score = -1};
    for (int o; (o = cli_next(&cl)) != CLI_END;) {
        switch (o) {
        case CLI_HELP: cli_help("run", stdout); return PTB_EXIT_OK;
        case CLI_LIST: cli_list_options(run_opts, stdout); return PTB_EXIT_OK;
        case CLI_ERROR: return cli_usage_error("run", "%s", cl.err);
        case CLI_POSITIONAL:
            if (task)
                return cli_usage_error("run", "one task at a time ('%s')", cl.optarg);
            task = cl.optarg;
            break;
        case OPT_OUT: out = cl.optarg; break;
        case OPT_STORE: store_arg = cl.optarg; break;
        case OPT_QUIET: c.quiet = true; break;
        }
    }
    if (!task)
        return cli_usage_error("run", "missing TASK.json (ptb run TASK.json [--out DIR])");
    ptb_errbuf eb = {{0}};
    int rc = task_spec_load(task, &c.t, &eb);
    if (rc) {
        fprintf(stderr, "ptb run: %s\n", eb.msg);
        task_spec_free(&c.t);
        return rc == PTB_EPARSE ? PTB_EXIT_USAGE : ptb_exit_code(rc);
    }
    /* the run folder: new, or an empty one */
    char def[PATH_MAX], root[PATH_MAX];
    if (!out) {
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        char stamp[32];
        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
        snprintf(def, sizeof def, "runs/%s-%s", c.t.name, stamp);
        mkdir("runs", 0755);
        out = def;
    }
    if (mkdir(out, 0755) && errno != EEXIST) {
        fprintf(stderr, "ptb run: %s: %s\n", out, strerror(errno));
        task_spec_free(&c.t);
        return PTB_EXIT_ERROR;
    }
    if (!realpath(out, root) || run_dirs_init(&c.d, root)) {
        fprintf(stderr, "ptb run: %s: %s\n", out, strerror(errno ? errno : ENAMETOOLONG));
        task_spec_free(&c.t);
        return PTB_EXIT_ERROR;
    }
    DIR *dir = opendir(root);
    int entries = 0;
    for (struct dirent *e; dir && (e = readdir(dir));)
        entries += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (dir)
        closedir(dir);
    if (entries) {
        task_spec_free(&c.t);
        return cli_usage_error("run", "--out %s is not empty: give a new folder", out);
    }
    if (store_arg) { /* elsewhere than RUN/run.ptb: a new path in an existing folder */
        char sdir[PATH_MAX], sabs[PATH_MAX];
        snprintf(sdir, sizeof sdir, "%s", store_arg);
        char *slash = strrchr(sdir, '/');
        const char *base = slash ? slash + 1 : sdir;
        if (slash)
            *slash = 0;
        struct stat st;
        if (!*base || !strcmp(base, ".") || !strcmp(base, "..") ||
            !realpath(slash ? (*sdir ? sdir : "/") : ".", sabs) ||
            snprintf(c.d.store, sizeof c.d.store, "%s/%s", strcmp(sabs, "/") ? sabs : "",
                     slash ? slash + 1 : store_arg) >= (int)sizeof c.d.store) {
            task_spec_free(&c.t);
            return cli_usage_error("run", "--store %s: not a path in an existing folder",
                                   store_arg);
        }
        if (lstat(c.d.store, &st) == 0) {
            task_spec_free(&c.t);
            return cli_usage_error("run", "--store %s exists: give a new path", store_arg);
        }
    }
    store_options so;
    store_options_default(&so);
    if ((rc = store_open(c.d.store, &so, STORE_CREATE | STORE_EXCL, &c.s))) {
        fprintf(stderr, "ptb run: cannot create the store %s: %s\n", c.d.store, ptb_strerror(rc));
        store_close(c.s);
        task_spec_free(&c.t);
        return PTB_EXIT_ERROR;
    }
    double t0 = now_s();
    envv env = {0};
    rc = run_start_event(&c, argc, argv);
    if (!rc)
        rc = phase_setup(&c, &env);
    int arc = rc ? rc : phase_agent(&c, &env);
    int erc = arc && arc != PTB_EIO ? arc : phase_eval(&c);
    env_free(&env);
    int xrc = run_end_event(&c, t0);
    store_flush(c.s);
    uint64_t events, gaps;
    count_events(c.s, &events, &gaps);
    int crc = store_close(c.s);
    int mrc = write_manifest(&c, events, gaps);
    if (!c.quiet || rc || arc || erc)
        summary(&c, events, gaps);
    task_spec_free(&c.t);
    int bad = rc ? rc : arc ? arc : erc ? erc : xrc ? xrc : crc ? crc : mrc;
    if (bad) {
        fprintf(stderr, "ptb run: %s\n", ptb_strerror(bad));
        return bad > 0 ? bad : ptb_exit_code(bad);
    }
    return PTB_EXIT_OK;
}
