/* Task specs (task_spec.h, schemas/task.schema.json): jansson, with the JSON path of every
 * complaint, strict about types and unknown members. */
#include "task_spec.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TS_DEFAULT_PROMPT                                                                          \
    "You are given the base language model in {model} and the benchmark {benchmark}. Make the "    \
    "model as good as you can on this benchmark within {num_hours} hours: fine-tune it (the "      \
    "training data you may use is in data/ when there is any) and save the result, as a "          \
    "folder with config.json and model.safetensors, to final_model/ in {workspace}. Do not use "   \
    "the benchmark's test data for training."

typedef struct ts_ctx {
    const char *file;
    char dir[PATH_MAX];
    ptb_errbuf *eb;
} ts_ctx;

static int ts_err(ts_ctx *c, int code, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int ts_err(ts_ctx *c, int code, const char *path, const char *fmt, ...)
{
    char what[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return ptb_errf(c->eb, code, "%s: %s: %s", c->file, path, what);
}

/* Every member of o is one of keys (NULL-terminated). */
static int ts_known(ts_ctx *c, json_t *o, const char *path, const char *const keys[])
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        bool ok = false;
        for (size_t i = 0; keys[i] && !ok; i++)
            ok = strcmp(k, keys[i]) == 0;
        if (!ok) {
            char p[256];
            snprintf(p, sizeof p, "%s.%s", path, k);
            return ts_err(c, PTB_EPARSE, p, "unknown member (see schemas/task.schema.json)");
        }
    }
    return 0;
}

static int ts_object(ts_ctx *c, json_t *parent, const char *key, const char *path, bool required,
                     json_t **out)
{
    *out = json_object_get(parent, key);
    if (!*out)
        return required ? ts_err(c, PTB_EPARSE, path, "missing") : 0;
    return json_is_object(*out) ? 0 : ts_err(c, PTB_EPARSE, path, "must be an object");
}

static int ts_string(ts_ctx *c, json_t *o, const char *key, const char *path, bool required,
                     char **out)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return required ? ts_err(c, PTB_EPARSE, path, "missing") : 0;
    if (!json_is_string(v) || !json_string_length(v))
        return ts_err(c, PTB_EPARSE, path, "must be a non-empty string");
    if (strlen(json_string_value(v)) != json_string_length(v))
        return ts_err(c, PTB_EPARSE, path, "must not hold a NUL character");
    return (*out = strdup(json_string_value(v))) ? 0 : PTB_ENOMEM;
}

static int ts_int(ts_ctx *c, json_t *o, const char *key, const char *path, int64_t lo, int64_t hi,
                  int64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0; /* *out keeps its default */
    char range[96];
    snprintf(range, sizeof range, "must be an integer in %lld..%lld", (long long)lo, (long long)hi);
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return ts_err(c, PTB_EPARSE, path, "%s", range);
    *out = json_integer_value(v);
    return 0;
}

/* An array of strings into a NULL-terminated malloc'd vector; pattern_env: NAME checks. */
static int ts_strings(ts_ctx *c, json_t *o, const char *key, const char *path, bool required,
                      bool names, char ***out)
{
    json_t *a = json_object_get(o, key);
    if (!a)
        return required ? ts_err(c, PTB_EPARSE, path, "missing") : 0;
    if (!json_is_array(a) || (required && json_array_size(a) == 0))
        return ts_err(c, PTB_EPARSE, path, "must be a%s array of strings",
                      required ? " non-empty" : "n");
    size_t n = json_array_size(a);
    if (!(*out = calloc(n + 1, sizeof **out)))
        return PTB_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(a, i);
        char p[256];
        snprintf(p, sizeof p, "%s[%zu]", path, i);
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
            return ts_err(c, PTB_EPARSE, p, "must be a string");
        const char *s = json_string_value(v);
        if (names && (!*s ||
                      strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                "0123456789_") != strlen(s) ||
                      (*s >= '0' && *s <= '9')))
            return ts_err(c, PTB_EPARSE, p, "'%s' is not an environment variable name", s);
        if (!((*out)[i] = strdup(s)))
            return PTB_ENOMEM;
    }
    return 0;
}

/* *p (malloc'd) made absolute against the task's folder, and checked to exist as a folder (dir)
 * or a regular file. */
static int ts_path(ts_ctx *c, char **p, const char *path, bool dir)
{
    if (!*p)
        return 0;
    char *abs = NULL;
    if ((*p)[0] == '/')
        abs = strdup(*p);
    else if (asprintf(&abs, "%s/%s", c->dir, *p) < 0)
        abs = NULL;
    if (!abs)
        return PTB_ENOMEM;
    free(*p);
    *p = abs;
    struct stat st;
    if (stat(abs, &st) != 0)
        return ptb_errf(c->eb, -errno, "%s: %s: %s: %s", c->file, path, abs, strerror(errno));
    if (dir != !!S_ISDIR(st.st_mode))
        return ptb_errf(c->eb, dir ? -ENOTDIR : -EISDIR, "%s: %s: %s is %s", c->file, path, abs,
                        dir ? "not a folder" : "a folder, not a file");
    return 0;
}

/* An object of strings (key: value) at parent.key into "KEY<sep>VALUE" strings, NULL-terminated
 * (*out stays NULL when the member is absent). bad() says what is wrong with an entry, or
 * NULL: the error names the entry's JSON path. */
static int ts_string_map(ts_ctx *c, json_t *parent, const char *key, const char *path, char sep,
                         const char *(*bad)(const char *k, json_t *v), char ***out)
{
    json_t *o = json_object_get(parent, key);
    if (!o)
        return 0;
    if (!json_is_object(o))
        return ts_err(c, PTB_EPARSE, path, "must be an object of strings");
    if (!(*out = calloc(json_object_size(o) + 1, sizeof **out)))
        return PTB_ENOMEM;
    const char *k;
    json_t *v;
    size_t i = 0;
    json_object_foreach(o, k, v)
    {
        const char *why = json_is_string(v) ? bad(k, v) : "must be a string";
        if (why) {
            char p[320];
            snprintf(p, sizeof p, "%s.%.256s", path, k);
            return ts_err(c, PTB_EPARSE, p, "%s", why);
        }
        if (asprintf(&(*out)[i++], "%s%c%s", k, sep, json_string_value(v)) < 0)
            return PTB_ENOMEM;
    }
    return 0;
}

static const char *env_entry_bad(const char *k, json_t *v)
{
    (void)v;
    return !*k || strchr(k, '=') ? "a name without '=' and a string value" : NULL;
}

static const char *host_entry_bad(const char *k, json_t *v)
{
    const char *a = json_string_value(v);
    unsigned char bin[16];
    if (!*k || strlen(k) > 253 ||
        strspn(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != strlen(k))
        return "not a host name";
    if (strcmp(a, "host") && inet_pton(AF_INET, a, bin) != 1 && inet_pton(AF_INET6, a, bin) != 1)
        return "an IPv4 or IPv6 address, or \"host\"";
    return NULL;
}

/* $.sandbox: isolation, hosts, ca_file */
static int ts_sandbox(ts_ctx *c, json_t *root, task_spec *t)
{
    static const char *const keys[] = {"isolation", "hosts", "ca_file", NULL};
    json_t *sb;
    char *iso = NULL;
    int rc;
    t->isolate = true;
    if ((rc = ts_object(c, root, "sandbox", "$.sandbox", false, &sb)) || !sb)
        return rc;
    if ((rc = ts_known(c, sb, "$.sandbox", keys)) ||
        (rc = ts_string(c, sb, "isolation", "$.sandbox.isolation", false, &iso)))
        return rc;
    if (iso && strcmp(iso, "auto") && strcmp(iso, "none")) {
        rc = ts_err(c, PTB_EPARSE, "$.sandbox.isolation", "'%s': auto or none", iso);
        free(iso);
        return rc;
    }
    t->isolate = !iso || strcmp(iso, "none");
    free(iso);
    if ((rc = ts_string(c, sb, "ca_file", "$.sandbox.ca_file", false, &t->ca_file)) ||
        (rc = ts_path(c, &t->ca_file, "$.sandbox.ca_file", false)))
        return rc;
    return ts_string_map(c, sb, "hosts", "$.sandbox.hosts", ' ', host_entry_bad, &t->hosts);
}

static int ts_parse(ts_ctx *c, json_t *root, task_spec *t)
{
    static const char *const top[] = {"name",   "agent",   "base_model", "benchmark", "prompt",
                                      "budget", "network", "canaries",   "sandbox",   NULL};
    static const char *const agent_keys[] = {"name",        "command", "stream",
                                             "credentials", "env",     NULL};
    static const char *const bench_keys[] = {"name", "test_split", "train_split", "max_tokens",
                                             NULL};
    static const char *const budget_keys[] = {"wall_s", "kill_after_s", "gpus", "eval_wall_s",
                                              NULL};
    static const char *const net_keys[] = {"mode", NULL};
    json_t *agent, *bench, *budget, *net;
    int rc;
    if (!json_is_object(root))
        return ts_err(c, PTB_EPARSE, "$", "the task must be a JSON object");
    if ((rc = ts_known(c, root, "$", top)) ||
        (rc = ts_string(c, root, "name", "$.name", true, &t->name)))
        return rc;
    if (strlen(t->name) > 64 ||
        strspn(t->name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                        "0123456789._-") != strlen(t->name))
        return ts_err(c, PTB_EPARSE, "$.name", "'%s': letters, digits, '.', '_', '-' (1..64)",
                      t->name);
    /* agent */
    if ((rc = ts_object(c, root, "agent", "$.agent", true, &agent)) ||
        (rc = ts_known(c, agent, "$.agent", agent_keys)) ||
        (rc = ts_string(c, agent, "name", "$.agent.name", false, &t->agent_name)) ||
        (rc = ts_strings(c, agent, "command", "$.agent.command", true, false, &t->agent_argv)) ||
        (rc = ts_string(c, agent, "stream", "$.agent.stream", false, &t->stream)) ||
        (rc = ts_strings(c, agent, "credentials", "$.agent.credentials", false, true,
                         &t->credentials)))
        return rc;
    if (!t->agent_name && !(t->agent_name = strdup("agent")))
        return PTB_ENOMEM;
    if (!t->stream && !(t->stream = strdup("none")))
        return PTB_ENOMEM;
    static const char *const streams[] = {"claude", "codex", "gemini", "opencode", "none", NULL};
    bool known = false;
    for (size_t i = 0; streams[i] && !known; i++)
        known = strcmp(t->stream, streams[i]) == 0;
    if (!known)
        return ts_err(c, PTB_EPARSE, "$.agent.stream",
                      "'%s': claude, codex, gemini, opencode or none", t->stream);
    if ((rc = ts_string_map(c, agent, "env", "$.agent.env", '=', env_entry_bad, &t->env)))
        return rc;
    /* base model, benchmark */
    if ((rc = ts_string(c, root, "base_model", "$.base_model", true, &t->base_model)) ||
        (rc = ts_path(c, &t->base_model, "$.base_model", true)))
        return rc;
    int64_t mt = 32;
    if ((rc = ts_object(c, root, "benchmark", "$.benchmark", true, &bench)) ||
        (rc = ts_known(c, bench, "$.benchmark", bench_keys)) ||
        (rc = ts_string(c, bench, "name", "$.benchmark.name", true, &t->bench_name)) ||
        (rc = ts_string(c, bench, "test_split", "$.benchmark.test_split", true, &t->test_split)) ||
        (rc = ts_path(c, &t->test_split, "$.benchmark.test_split", false)) ||
        (rc = ts_string(c, bench, "train_split", "$.benchmark.train_split", false,
                        &t->train_split)) ||
        (rc = ts_path(c, &t->train_split, "$.benchmark.train_split", false)) ||
        (rc = ts_int(c, bench, "max_tokens", "$.benchmark.max_tokens", 1, 65536, &mt)))
        return rc;
    t->max_tokens = (uint32_t)mt;
    if ((rc = ts_string(c, root, "prompt", "$.prompt", false, &t->prompt)))
        return rc;
    if (!t->prompt && !(t->prompt = strdup(TS_DEFAULT_PROMPT)))
        return PTB_ENOMEM;
    /* budget */
    int64_t gpus = 0;
    t->kill_after_s = 10;
    t->eval_wall_s = 3600;
    if ((rc = ts_object(c, root, "budget", "$.budget", true, &budget)) ||
        (rc = ts_known(c, budget, "$.budget", budget_keys)))
        return rc;
    if (!json_object_get(budget, "wall_s"))
        return ts_err(c, PTB_EPARSE, "$.budget.wall_s", "missing");
    if ((rc = ts_int(c, budget, "wall_s", "$.budget.wall_s", 1, 365 * 86400, &t->wall_s)) ||
        (rc = ts_int(c, budget, "kill_after_s", "$.budget.kill_after_s", 0, 86400,
                     &t->kill_after_s)) ||
        (rc = ts_int(c, budget, "gpus", "$.budget.gpus", 0, 64, &gpus)) ||
        (rc = ts_int(c, budget, "eval_wall_s", "$.budget.eval_wall_s", 1, 365 * 86400,
                     &t->eval_wall_s)))
        return rc;
    t->gpus = (uint32_t)gpus;
    /* network, canaries */
    if ((rc = ts_object(c, root, "network", "$.network", false, &net)))
        return rc;
    if (net && ((rc = ts_known(c, net, "$.network", net_keys)) ||
                (rc = ts_string(c, net, "mode", "$.network.mode", false, &t->net_mode))))
        return rc;
    if (!t->net_mode && !(t->net_mode = strdup("ns")))
        return PTB_ENOMEM;
    if (strcmp(t->net_mode, "ns") && strcmp(t->net_mode, "off"))
        return ts_err(c, PTB_EPARSE, "$.network.mode", "'%s': ns or off", t->net_mode);
    json_t *can = json_object_get(root, "canaries");
    if (can && !json_is_boolean(can))
        return ts_err(c, PTB_EPARSE, "$.canaries", "must be true or false");
    t->canaries = !can || json_is_true(can);
    return ts_sandbox(c, root, t);
}

int task_spec_load(const char *path, task_spec *t, ptb_errbuf *eb)
{
    memset(t, 0, sizeof *t);
    ts_ctx c = {.file = path, .eb = eb};
    if (!(t->path = strdup(path)))
        return PTB_ENOMEM;
    FILE *f = fopen(path, "rb");
    if (!f)
        return ptb_errf(eb, -errno, "%s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            if (cap >= (16u << 20)) {
                fclose(f);
                free(buf);
                return ptb_errf(eb, PTB_ETOOBIG, "%s: over 16 MiB: not a task spec", path);
            }
            char *nb = realloc(buf, cap = cap ? cap * 2 : 65536);
            if (!nb) {
                fclose(f);
                free(buf);
                return PTB_ENOMEM;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    int ferr = ferror(f);
    fclose(f);
    if (ferr) {
        free(buf);
        return ptb_errf(eb, -EIO, "%s: read error", path);
    }
    SHA256((const unsigned char *)buf, len, t->sha256);
    json_error_t je;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    free(buf);
    if (!root)
        return ptb_errf(eb, PTB_EPARSE, "%s:%d:%d: not JSON: %s", path, je.line, je.column,
                        je.text);
    /* relative paths: against the task file's folder */
    char *rp = realpath(path, NULL);
    char *slash = rp ? strrchr(rp, '/') : NULL;
    if (slash)
        *slash = 0;
    snprintf(c.dir, sizeof c.dir, "%s", rp && slash && *rp ? rp : "/");
    free(rp);
    int rc = ts_parse(&c, root, t);
    json_decref(root);
    if (rc == PTB_ENOMEM)
        ptb_errf(eb, rc, "out of memory");
    return rc;
}

static void ts_free_vec(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

void task_spec_free(task_spec *t)
{
    if (!t)
        return;
    ts_free_vec(t->agent_argv);
    ts_free_vec(t->credentials);
    ts_free_vec(t->env);
    free(t->path);
    free(t->name);
    free(t->agent_name);
    free(t->stream);
    free(t->base_model);
    free(t->bench_name);
    free(t->test_split);
    free(t->train_split);
    free(t->prompt);
    free(t->net_mode);
    ts_free_vec(t->hosts);
    free(t->ca_file);
    memset(t, 0, sizeof *t);
}

char *task_spec_prompt(const task_spec *t, const char *workspace)
{
    char hours[32];
    snprintf(hours, sizeof hours, "%g", (double)t->wall_s / 3600.0);
    const char *keys[][2] = {{"{model}", "base_model/"},
                             {"{benchmark}", t->bench_name},
                             {"{num_hours}", hours},
                             {"{workspace}", workspace}};
    size_t cap = strlen(t->prompt) + 1;
    for (const char *p = t->prompt; (p = strchr(p, '{')); p++)
        for (size_t k = 0; k < 4; k++)
            if (!strncmp(p, keys[k][0], strlen(keys[k][0])))
                cap += strlen(keys[k][1]);
    char *out = malloc(cap), *o = out;
    if (!out)
        return NULL;
    for (const char *p = t->prompt; *p;) {
        size_t k = 0;
        while (k < 4 && strncmp(p, keys[k][0], strlen(keys[k][0])))
            k++;
        if (k < 4) {
            o = stpcpy(o, keys[k][1]);
            p += strlen(keys[k][0]);
        } else {
            *o++ = *p++;
        }
    }
    *o = 0;
    return out;
}
