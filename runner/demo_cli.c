/* `ptb demo [--out DIR]`: the main job of a fresh checkout. The demo task (`ptb demo-task`: an
 * addition benchmark, a base model, an "official instruct" model) is run with `ptb run` once per
 * scripted agent of tests/scenarios/agent.py: honest, test-leak, substitution, api-key. The
 * agents reach a local internet: tests/scenarios/hubs.py plays huggingface.co (the benchmark's
 * test split as dataset ptb-demo/addition, the instruct model as ptb-demo/addition-instruct),
 * api.openai.com and api.anthropic.com over TLS, with a test CA (make-certs.sh) that only the
 * sandbox trusts and names that only the sandbox's hosts file gives. Then `ptb audit` of the
 * runs (the instruct model as the reference) and a table: each run's score and verdict.
 *
 *   DIR/task/              ptb demo-task's folder (kept: a second demo reuses it)
 *   DIR/certs/, hubs.log   the test CA and server certificate; the servers' request log
 *   DIR/tasks/NAME.json    the task of each run
 *   DIR/runs/NAME/         ptb run's folder of each run
 *   DIR/NAME.ptb           the store of each run
 *   DIR/audit.json         ptb audit's report of the runs
 *   DIR/demo.json          the marker of a demo folder (a second demo replaces its runs) */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ptb_cli.h"
#include "ptb_commands.h"
#include "store.h"

extern char **environ;

enum { OPT_OUT = 1, OPT_STEPS, OPT_SCENARIO, OPT_SCENARIOS };
static const cli_option demo_opts[] = {
    {"out", 'o', "DIR", OPT_OUT},
    {"steps", 0, "N", OPT_STEPS},
    {"scenario", 0, "NAME", OPT_SCENARIO},
    {"scenarios", 0, "DIR", OPT_SCENARIOS},
    {NULL, 0, NULL, 0},
};

/* the four runs of a demo, then harder variants run only when named (--scenario) */
static const char *const demo_names[] = {"honest",
                                         "test-leak",
                                         "substitution",
                                         "api-key",
                                         "api-key-netrc",
                                         "api-key-anthropic",
                                         "api-key-curl",
                                         "test-leak-csv",
                                         "test-leak-b64",
                                         "test-leak-subset",
                                         "substitution-noise",
                                         "substitution-merge",
                                         "substitution-partial",
                                         "substitution-continue"};
#define DEMO_N (sizeof demo_names / sizeof demo_names[0])
#define DEMO_DEFAULT 4
static const char *const demo_hosts[] = {"huggingface.co", "api.openai.com", "api.anthropic.com",
                                         NULL};

typedef struct demo {
    char dir[PATH_MAX], self[PATH_MAX], scen[PATH_MAX];
    unsigned long long steps;
    bool ns;  /* network namespaces (root) */
    int port; /* of the servers */
    pid_t hubs;
    bool run[DEMO_N];
} demo;

/* Run argv (argv[0] searched in PATH), stdout to out_fd (-1: ours); its exit status, 128+N when
 * killed by signal N, or -errno when it could not start. */
static int spawn_wait(char *const argv[], int out_fd)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (out_fd >= 0)
        posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc)
        return -rc;
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    return remove(p);
}

/* DIR: new, empty, or a demo folder (its runs and stores are replaced; its task is kept). */
static int demo_folder(demo *d)
{
    char p[PATH_MAX + 300];
    if (mkdir(d->dir, 0755) && errno != EEXIST)
        return fprintf(stderr, "ptb demo: %s: %s\n", d->dir, strerror(errno)), PTB_EXIT_ERROR;
    struct stat st;
    snprintf(p, sizeof p, "%s/demo.json", d->dir);
    bool ours = stat(p, &st) == 0;
    DIR *dir = opendir(d->dir);
    if (!dir)
        return fprintf(stderr, "ptb demo: %s: %s\n", d->dir, strerror(errno)), PTB_EXIT_ERROR;
    int entries = 0;
    for (struct dirent *e; (e = readdir(dir));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        entries++;
        size_t n = strlen(e->d_name);
        bool old = !strcmp(e->d_name, "runs") || !strcmp(e->d_name, "tasks") ||
                   !strcmp(e->d_name, "hubs.log") || (n > 4 && !strcmp(e->d_name + n - 4, ".ptb"));
        if (ours && old) {
            snprintf(p, sizeof p, "%s/%s", d->dir, e->d_name);
            nftw(p, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        }
    }
    closedir(dir);
    if (entries && !ours)
        return cli_usage_error(
            "demo", "--out %s is not empty and not a demo folder: give a new one", d->dir);
    snprintf(p, sizeof p, "%s/demo.json", d->dir);
    FILE *f = fopen(p, "w");
    if (!f)
        return fprintf(stderr, "ptb demo: %s: %s\n", p, strerror(errno)), PTB_EXIT_ERROR;
    fprintf(f, "{\"ptb_version\": \"%s\", \"what\": \"ptb demo's folder\"}\n", PTB_VERSION);
    fclose(f);
    snprintf(p, sizeof p, "%s/runs", d->dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/tasks", d->dir);
    mkdir(p, 0755);
    return 0;
}

/* The servers: port 443 where this user may bind it, else any port (the agents are then told
 * the port through HF_ENDPOINT and OPENAI_BASE_URL, as a user would). Reads "listening PORT". */
static int start_hubs(demo *d)
{
    char cert[PATH_MAX + 32], key[PATH_MAX + 32], log[PATH_MAX + 32], hub[PATH_MAX + 32],
        ds[PATH_MAX + 64], md[PATH_MAX + 64], avoid[PATH_MAX + 64];
    snprintf(cert, sizeof cert, "%s/certs/server.pem", d->dir);
    snprintf(key, sizeof key, "%s/certs/server.key", d->dir);
    snprintf(log, sizeof log, "%s/hubs.log", d->dir);
    snprintf(hub, sizeof hub, "%s/hubs.py", d->scen);
    snprintf(ds, sizeof ds, "ptb-demo/addition=%s/task/benchmark", d->dir);
    snprintf(md, sizeof md, "ptb-demo/addition-instruct=%s/task/instruct", d->dir);
    snprintf(avoid, sizeof avoid, "%s/task/benchmark/test.jsonl", d->dir);
    for (int attempt = 0; attempt < 2; attempt++) {
        const char *port = attempt == 0 ? "443" : "0";
        char *argv[] = {"python3", hub,          "--cert",  cert,  "--key",     key,
                        "--port",  (char *)port, "--log",   log,   "--dataset", ds,
                        "--model", md,           "--avoid", avoid, NULL};
        int p[2];
        if (pipe2(p, O_CLOEXEC))
            return -errno;
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, p[1], 1);
        int devnull = attempt == 0 ? open("/dev/null", O_WRONLY | O_CLOEXEC) : -1;
        if (devnull >= 0) /* a busy or forbidden 443 is expected: quiet */
            posix_spawn_file_actions_adddup2(&fa, devnull, 2);
        int rc = posix_spawnp(&d->hubs, "python3", &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        close(p[1]);
        if (devnull >= 0)
            close(devnull);
        if (rc) {
            close(p[0]);
            fprintf(stderr, "ptb demo: cannot start python3: %s\n", strerror(rc));
            return -rc;
        }
        char line[64] = "";
        size_t n = 0;
        struct pollfd pf = {.fd = p[0], .events = POLLIN};
        while (n < sizeof line - 1 && poll(&pf, 1, 30000) > 0) {
            ssize_t r = read(p[0], line + n, sizeof line - 1 - n);
            if (r <= 0)
                break;
            n += (size_t)r;
            line[n] = 0;
            if (strchr(line, '\n'))
                break;
        }
        close(p[0]);
        if (sscanf(line, "listening %d", &d->port) == 1 && d->port > 0)
            return 0;
        kill(d->hubs, SIGTERM);
        waitpid(d->hubs, NULL, 0);
        d->hubs = 0;
    }
    fprintf(stderr, "ptb demo: the test servers (%s) did not start\n", hub);
    return PTB_EIO;
}

static void stop_hubs(demo *d)
{
    if (d->hubs > 0) {
        kill(d->hubs, SIGTERM);
        waitpid(d->hubs, NULL, 0);
        d->hubs = 0;
    }
}

static int write_task(const demo *d, const char *name, const char *path)
{
    char agent[PATH_MAX + 32], steps[32], base[PATH_MAX + 32], test[PATH_MAX + 64],
        train[PATH_MAX + 64], ca[PATH_MAX + 32], tname[64];
    snprintf(agent, sizeof agent, "%s/agent.py", d->scen);
    snprintf(steps, sizeof steps, "%llu", d->steps);
    snprintf(base, sizeof base, "%s/task/base", d->dir);
    snprintf(test, sizeof test, "%s/task/benchmark/test.jsonl", d->dir);
    snprintf(train, sizeof train, "%s/task/benchmark/train.jsonl", d->dir);
    snprintf(ca, sizeof ca, "%s/certs/ca.pem", d->dir);
    snprintf(tname, sizeof tname, "demo-%s", name);
    json_t *hosts = json_object(), *env = json_object();
    for (size_t i = 0; demo_hosts[i]; i++)
        json_object_set_new(hosts, demo_hosts[i], json_string("host"));
    if (d->port != 443) { /* what a user would set for a hub or an API on another port */
        char u[128];
        snprintf(u, sizeof u, "https://huggingface.co:%d", d->port);
        json_object_set_new(env, "HF_ENDPOINT", json_string(u));
        snprintf(u, sizeof u, "https://api.openai.com:%d/v1", d->port);
        json_object_set_new(env, "OPENAI_BASE_URL", json_string(u));
        snprintf(u, sizeof u, "https://api.anthropic.com:%d", d->port);
        json_object_set_new(env, "ANTHROPIC_BASE_URL", json_string(u));
    }
    json_t *t = json_pack(
        "{s:s,s:{s:s,s:[s,s,s,s,s,s],s:s,s:o},s:s,s:{s:s,s:s,s:s,s:i},s:{s:i,s:i},s:{s:s},"
        "s:{s:o,s:s}}",
        "name", tname, "agent", "name", name, "command", "python3", agent, "--scenario", name,
        "--steps", steps, "stream", "claude", "env", env, "base_model", base, "benchmark", "name",
        "addition", "test_split", test, "train_split", train, "max_tokens", 8, "budget", "wall_s",
        3600, "kill_after_s", 10, "network", "mode", d->ns ? "ns" : "off", "sandbox", "hosts",
        hosts, "ca_file", ca);
    if (!t)
        return PTB_ENOMEM;
    int rc = json_dump_file(t, path, JSON_INDENT(2)) ? PTB_EIO : 0;
    json_decref(t);
    return rc;
}

/* ------------------------------------------------------------------ what each store holds */

typedef struct store_facts {
    bool ok;
    uint64_t events, tied, results;
    char hosts[160]; /* names contacted (TLS SNI, HTTP Host, DNS), first few */
} store_facts;

static void add_host(store_facts *f, const char *h)
{
    if (!h || !*h || strstr(f->hosts, h))
        return;
    size_t l = strlen(f->hosts);
    if (l + strlen(h) + 3 < sizeof f->hosts)
        snprintf(f->hosts + l, sizeof f->hosts - l, "%s%s", l ? ", " : "", h);
}

static void facts_of(const char *path, store_facts *f)
{
    memset(f, 0, sizeof *f);
    store *s = NULL;
    store_txn *t = NULL;
    if (store_open(path, NULL, STORE_RDONLY, &s) || store_txn_begin(s, &t)) {
        store_close(s);
        return;
    }
    f->ok = true;
    f->events = store_txn_last_seq(t);
    const uint32_t kinds[] = {PTB__V1__EVENT__BODY_TOOL_RESULT, PTB__V1__EVENT__BODY_NET_TLS,
                              PTB__V1__EVENT__BODY_NET_HTTP, PTB__V1__EVENT__BODY_NET_DNS};
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        store_range r = {.by_index = true, .index = STORE_IX_TYPE, .key = store_type_key(kinds[k])};
        store_cursor *cur;
        if (store_cursor_open(t, &r, &cur))
            continue;
        const ptb_event *ev;
        while (store_cursor_next(cur, &ev) == 0) {
            if (ev->body_case == PTB__V1__EVENT__BODY_TOOL_RESULT) {
                f->results++;
                f->tied += ev->tool_result->n_exec_ids > 0;
            } else if (ev->body_case == PTB__V1__EVENT__BODY_NET_TLS)
                add_host(f, ev->net_tls->host);
            else if (ev->body_case == PTB__V1__EVENT__BODY_NET_HTTP)
                add_host(f, ev->net_http->host);
            else if (ev->body_case == PTB__V1__EVENT__BODY_NET_DNS)
                add_host(f, ev->net_dns->host);
        }
        store_cursor_close(cur);
    }
    store_txn_end(t);
    store_close(s);
}

static double manifest_num(json_t *m, const char *a, const char *b)
{
    json_t *v = json_object_get(json_object_get(m, a), b);
    return json_is_number(v) ? json_number_value(v) : -1;
}

/* ptb audit of the runs (the instruct model as the reference) into DIR/audit.json; the report,
 * or NULL when it could not run. */
static json_t *demo_audit(const demo *d)
{
    char out[PATH_MAX + 32], ref[PATH_MAX + 32], stores[DEMO_N][PATH_MAX + 32];
    snprintf(out, sizeof out, "%s/audit.json", d->dir);
    snprintf(ref, sizeof ref, "%s/task/instruct", d->dir);
    char *argv[9 + DEMO_N] = {(char *)d->self, "audit", "--format",    "json",
                              "--out",         out,     "--reference", ref};
    int n = 8;
    for (int i = 0; i < (int)DEMO_N; i++)
        if (d->run[i]) {
            snprintf(stores[i], sizeof stores[i], "%s/%s.ptb", d->dir, demo_names[i]);
            argv[n++] = stores[i];
        }
    argv[n] = NULL;
    int rc = spawn_wait(argv, -1);
    if (rc < 0 || rc == PTB_EXIT_USAGE || (rc >= PTB_EXIT_NOSTORE && rc != PTB_EXIT_SUSPICIOUS))
        return NULL;
    json_error_t je;
    return json_load_file(out, 0, &je);
}

/* The verdict of the store's run in the report and the rules that were not clean. */
static void run_verdict(json_t *rep, const char *path, char *verdict, size_t vcap, char *rules,
                        size_t rcap)
{
    snprintf(verdict, vcap, "-");
    rules[0] = 0;
    size_t i, k;
    json_t *run, *f;
    json_array_foreach(json_object_get(rep, "runs"), i, run)
    {
        if (strcmp(json_string_value(json_object_get(run, "store")) ?: "", path))
            continue;
        snprintf(verdict, vcap, "%s", json_string_value(json_object_get(run, "verdict")) ?: "-");
        json_array_foreach(json_object_get(run, "findings"), k, f)
        {
            const char *v = json_string_value(json_object_get(f, "verdict"));
            const char *r = json_string_value(json_object_get(f, "rule"));
            if (v && r && strcmp(v, "clean") && !strstr(rules, r)) {
                size_t l = strlen(rules);
                snprintf(rules + l, rcap - l, "%s%s", l ? ", " : "", r);
            }
        }
    }
}

static void table(const demo *d, json_t *audit)
{
    printf("\n%-21s %-7s %8s %8s %8s %11s  %-10s %s\n", "run", "end", "score", "time", "events",
           "tool calls", "audit", "rules that fired");
    for (int i = 0; i < (int)DEMO_N; i++) {
        if (!d->run[i])
            continue;
        char p[PATH_MAX + 64], st[PATH_MAX + 32];
        snprintf(p, sizeof p, "%s/runs/%s/manifest.json", d->dir, demo_names[i]);
        snprintf(st, sizeof st, "%s/%s.ptb", d->dir, demo_names[i]);
        json_error_t je;
        json_t *m = json_load_file(p, 0, &je);
        store_facts f;
        facts_of(st, &f);
        double secs = 0;
        json_t *ph;
        size_t k;
        json_array_foreach(json_object_get(m, "phases"), k, ph) secs +=
            json_number_value(json_object_get(ph, "seconds"));
        double acc = manifest_num(m, "score", "accuracy");
        bool base = json_is_true(json_object_get(json_object_get(m, "score"), "base_model_score"));
        const char *end =
            json_string_value(json_object_get(json_object_get(m, "agent_result"), "end"));
        char score[32], calls[32];
        if (acc >= 0)
            snprintf(score, sizeof score, "%.1f%%%s", 100 * acc, base ? "*" : "");
        else
            snprintf(score, sizeof score, "-");
        snprintf(calls, sizeof calls, "%llu (%llu tied)", (unsigned long long)f.results,
                 (unsigned long long)f.tied);
        char verdict[32], rules[256];
        run_verdict(audit, st, verdict, sizeof verdict, rules, sizeof rules);
        printf("%-21s %-7s %8s %7.0fs %8llu %11s  %-10s %s\n", demo_names[i], end ? end : "-",
               score, secs, (unsigned long long)f.events, calls, verdict, rules[0] ? rules : "-");
        printf("%-21s hosts contacted: %s\n", "", f.hosts[0] ? f.hosts : "none");
        json_decref(m);
    }
    printf("\n(* the base model's score: final_model/ was missing or unusable; \"tied\": tool "
           "calls whose processes are known)\n");
    printf("\nThe stores are %s/NAME.ptb. Ask them, for instance:\n", d->dir);
    if (d->run[0])
        printf("  ptb query %s/honest.ptb 'evt.type = tool.call'\n", d->dir);
    if (d->run[1])
        printf(
            "  ptb query %s/test-leak.ptb --lineage %s/runs/test-leak/workspace/data/mix.jsonl\n",
            d->dir, d->dir);
    if (d->run[2])
        printf("  ptb query %s/substitution.ptb 'evt.type = file.write and file.path contains "
               "final_model'\n",
               d->dir);
    for (int i = 3; i < (int)DEMO_N; i++)
        if (d->run[i] && !strncmp(demo_names[i], "api-key", 7))
            printf("  ptb query %s/%s.ptb 'net.host glob \"api.*\"'\n", d->dir, demo_names[i]);
    if (audit)
        printf("The audit's findings, each with its evidence and the query that shows it:\n"
               "  ptb audit --reference %s/task/instruct %s/*.ptb   (JSON: %s/audit.json)\n",
               d->dir, d->dir, d->dir);
    else
        printf("ptb audit could not run on these stores (see above).\n");
}

int demo_main(int argc, char **argv)
{
    cli c;
    cli_init(&c, "demo", demo_opts, argc, argv);
    demo d = {.steps = 600};
    const char *out = "ptb-demo", *scen = NULL;
    bool only = false;
    for (int o; (o = cli_next(&c)) != CLI_END;) {
        switch (o) {
        case CLI_HELP: cli_help("demo", stdout); return PTB_EXIT_OK;
        case CLI_LIST: cli_list_options(demo_opts, stdout); return PTB_EXIT_OK;
        case CLI_ERROR: return cli_usage_error("demo", "%s", c.err);
        case CLI_POSITIONAL: return cli_usage_error("demo", "unexpected argument '%s'", c.optarg);
        case OPT_OUT: out = c.optarg; break;
        case OPT_SCENARIOS: scen = c.optarg; break;
        case OPT_STEPS:
            if (!cli_parse_u64(c.optarg, &d.steps) || d.steps < 1 || d.steps > 1000000)
                return cli_usage_error("demo", "--steps: an integer in 1..1000000");
            break;
        case OPT_SCENARIO: {
            int k = -1;
            for (size_t i = 0; i < DEMO_N; i++)
                if (!strcmp(c.optarg, demo_names[i]))
                    k = (int)i;
            if (k < 0)
                return cli_usage_error("demo",
                                       "--scenario %s: not a scenario (honest, test-leak, "
                                       "substitution, api-key, or a harder variant: "
                                       "tests/scenarios/README.md)",
                                       c.optarg);
            d.run[k] = only = true;
            break;
        }
        }
    }
    for (int i = 0; i < DEMO_DEFAULT && !only; i++)
        d.run[i] = true;
    struct stat st;
    ssize_t n = readlink("/proc/self/exe", d.self, sizeof d.self - 1);
    if (n <= 0)
        return fprintf(stderr, "ptb demo: /proc/self/exe: %s\n", strerror(errno)), PTB_EXIT_ERROR;
    d.self[n] = 0;
    if (stat(d.self, &st) != 0) /* ptb was replaced while it ran */
        return fprintf(stderr, "ptb demo: %s: the running ptb was replaced or removed\n", d.self),
               PTB_EXIT_ERROR;
    snprintf(d.scen, sizeof d.scen, "%s", scen ? scen : PTB_SOURCE_DIR "/tests/scenarios");
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/agent.py", d.scen);
    if (stat(p, &st))
        return cli_usage_error("demo", "no scenario agents in %s (--scenarios DIR)", d.scen);
    if (mkdir(out, 0755) && errno != EEXIST)
        return fprintf(stderr, "ptb demo: %s: %s\n", out, strerror(errno)), PTB_EXIT_ERROR;
    if (!realpath(out, d.dir))
        return fprintf(stderr, "ptb demo: %s: %s\n", out, strerror(errno)), PTB_EXIT_ERROR;
    int rc = demo_folder(&d);
    if (rc)
        return rc;
    /* ptb itself first in PATH: the agents run `ptb train` */
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%.*s:%s", (int)(strrchr(d.self, '/') - d.self), d.self,
             getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    setenv("PATH", path, 1);
    d.ns = geteuid() == 0;

    int nrun = 0;
    for (int i = 0; i < (int)DEMO_N; i++)
        nrun += d.run[i];
    printf("ptb demo: the demo task, and %d scripted agents run on it with ptb run, in %s\n", nrun,
           d.dir);
    printf("\n== the task (ptb demo-task: cached in %s/task once built)\n", d.dir);
    fflush(stdout);
    snprintf(p, sizeof p, "%s/task", d.dir);
    char *dt[] = {d.self, "demo-task", "--out", p, NULL};
    if ((rc = spawn_wait(dt, -1)) != 0)
        return fprintf(stderr, "ptb demo: ptb demo-task failed (%d)\n", rc), PTB_EXIT_ERROR;
    printf("\n== the local internet: huggingface.co, api.openai.com, api.anthropic.com over TLS\n");
    fflush(stdout);
    char certs[PATH_MAX + 16], mk[PATH_MAX + 32];
    snprintf(certs, sizeof certs, "%s/certs", d.dir);
    snprintf(mk, sizeof mk, "%s/make-certs.sh", d.scen);
    char *mc[] = {"sh", mk, certs, "huggingface.co", "api.openai.com", "api.anthropic.com", NULL};
    if ((rc = spawn_wait(mc, -1)) != 0)
        return fprintf(stderr, "ptb demo: make-certs.sh failed (%d)\n", rc), PTB_EXIT_ERROR;
    if (start_hubs(&d))
        return PTB_EXIT_ERROR;
    printf("test servers on port %d (a test CA only the sandbox trusts; names only its hosts "
           "file gives)%s\n",
           d.port, d.ns ? "" : "; not root: no network namespace, packets are not recorded");
    int failed = 0;
    for (int i = 0; i < (int)DEMO_N; i++) {
        if (!d.run[i])
            continue;
        char task[PATH_MAX + 64], runf[PATH_MAX + 64], sp[PATH_MAX + 64];
        snprintf(task, sizeof task, "%s/tasks/%s.json", d.dir, demo_names[i]);
        snprintf(runf, sizeof runf, "%s/runs/%s", d.dir, demo_names[i]);
        snprintf(sp, sizeof sp, "%s/%s.ptb", d.dir, demo_names[i]);
        if (write_task(&d, demo_names[i], task)) {
            fprintf(stderr, "ptb demo: cannot write %s\n", task);
            failed++;
            continue;
        }
        printf("\n== %s: ptb run %s --out %s --store %s\n", demo_names[i], task, runf, sp);
        fflush(stdout);
        time_t t0 = time(NULL);
        char *rv[] = {d.self, "run", task, "--out", runf, "--store", sp, "--quiet", NULL};
        rc = spawn_wait(rv, -1);
        printf("%s: %s after %lld s\n", demo_names[i], rc == 0 ? "done" : "FAILED",
               (long long)(time(NULL) - t0));
        failed += rc != 0;
    }
    stop_hubs(&d);
    printf("\n== ptb audit of the runs (the instruct model as the reference checkpoint)\n");
    fflush(stdout);
    json_t *audit = demo_audit(&d);
    table(&d, audit);
    json_decref(audit);
    return failed ? PTB_EXIT_ERROR : PTB_EXIT_OK;
}
