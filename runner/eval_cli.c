/* `ptb eval`: generate answers to a benchmark's prompts with a backend (eval_backend.h), score
 * them by exact match after normalisation, write metrics.json (docs/commands/ptb-eval.md). */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval_backend.h"
#include "ptb_cli.h"
#include "ptb_commands.h"
#include "redact.h"

#define EVAL_ITEMS_MAX 1000000
#define EVAL_TEXT_MAX (1u << 20)

enum {
    OPT_MODEL = 1,
    OPT_BENCHMARK,
    OPT_OUT,
    OPT_LIMIT,
    OPT_BACKEND,
    OPT_URL,
    OPT_API_MODEL,
    OPT_API_KEY_ENV,
    OPT_MAX_TOKENS,
    OPT_CONCURRENCY,
    OPT_TIMEOUT,
    OPT_RETRIES,
    OPT_DEVICE,
    OPT_QUIET,
};
static const cli_option eval_opts[] = {
    {"model", 0, "DIR", OPT_MODEL},
    {"benchmark", 0, "FILE", OPT_BENCHMARK},
    {"out", 'o', "FILE", OPT_OUT},
    {"limit", 'n', "N", OPT_LIMIT},
    {"backend", 0, "NAME", OPT_BACKEND},
    {"url", 0, "URL", OPT_URL},
    {"api-model", 0, "NAME", OPT_API_MODEL},
    {"api-key-env", 0, "VAR", OPT_API_KEY_ENV},
    {"max-tokens", 0, "N", OPT_MAX_TOKENS},
    {"concurrency", 0, "N", OPT_CONCURRENCY},
    {"timeout", 0, "S", OPT_TIMEOUT},
    {"retries", 0, "N", OPT_RETRIES},
    {"device", 0, "DEV", OPT_DEVICE},
    {"quiet", 'q', NULL, OPT_QUIET},
    {NULL, 0, NULL, 0},
};

/* ------------------------------------------------------------------ the benchmark */

typedef struct bench {
    char **prompt, **answer;
    size_t n;
} bench;

static void bench_free(bench *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->prompt[i]);
        free(b->answer[i]);
    }
    free(b->prompt);
    free(b->answer);
}

static char *member(json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(o, a);
    if (!v && b)
        v = json_object_get(o, b);
    if (!json_is_string(v) || json_string_length(v) > EVAL_TEXT_MAX ||
        strlen(json_string_value(v)) != json_string_length(v)) /* no NUL inside */
        return NULL;
    return strdup(json_string_value(v));
}

/* Lines {"prompt": ..., "answer": ...} ("completion" for "answer" too); limit 0 = all. */
static int bench_read(const char *path, size_t limit, bench *b, char *err, size_t errcap)
{
    memset(b, 0, sizeof *b);
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = -errno;
        snprintf(err, errcap, "%s: %s", path, strerror(-e));
        return e;
    }
    size_t cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    unsigned long no = 0;
    int rc = 0;
    ssize_t len;
    while (!rc && (!limit || b->n < limit) && (len = getline(&line, &lcap, f)) >= 0) {
        no++;
        size_t k = (size_t)len;
        while (k && isspace((unsigned char)line[k - 1]))
            k--;
        if (!k)
            continue;
        json_error_t je;
        json_t *o = json_loadb(line, k, 0, &je);
        char *p = o ? member(o, "prompt", NULL) : NULL;
        char *a = o ? member(o, "answer", "completion") : NULL;
        json_decref(o);
        if (!p || !a || b->n == EVAL_ITEMS_MAX) {
            snprintf(err, errcap, "%s:%lu: %s", path, no,
                     !o                       ? "not JSON"
                     : b->n == EVAL_ITEMS_MAX ? "too many items"
                                              : "an item needs string members \"prompt\" and "
                                                "\"answer\"");
            free(p);
            free(a);
            rc = PTB_EPARSE;
            break;
        }
        if (b->n == cap) {
            cap = cap ? cap * 2 : 256;
            char **np = realloc(b->prompt, cap * sizeof *np);
            if (np)
                b->prompt = np;
            char **na = np ? realloc(b->answer, cap * sizeof *na) : NULL;
            if (!np || !na) {
                free(p);
                free(a);
                snprintf(err, errcap, "out of memory");
                rc = PTB_ENOMEM;
                break;
            }
            b->answer = na;
        }
        b->prompt[b->n] = p;
        b->answer[b->n++] = a;
    }
    free(line);
    fclose(f);
    if (!rc && b->n == 0) {
        snprintf(err, errcap, "%s: no items", path);
        rc = PTB_EPARSE;
    }
    if (rc)
        bench_free(b);
    return rc;
}

/* ------------------------------------------------------------------ scoring */

/* The answer of an output: its first line, trimmed, whitespace runs as one space, ASCII lower
 * case, one trailing '.' dropped. Into out (strlen(s) + 1 bytes). */
static void eval_normalise(const char *s, char *out)
{
    size_t n = 0;
    bool space = false;
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    for (; *s && *s != '\n'; s++) {
        if (isspace((unsigned char)*s)) {
            space = n > 0;
            continue;
        }
        if (space)
            out[n++] = ' ';
        space = false;
        out[n++] = (char)tolower((unsigned char)*s);
    }
    if (n && out[n - 1] == '.')
        n--;
    out[n] = 0;
}

static bool eval_match(const char *output, const char *expected)
{
    char *a = malloc(strlen(output) + 1), *b = malloc(strlen(expected) + 1);
    bool ok = a && b;
    if (ok) {
        eval_normalise(output, a);
        eval_normalise(expected, b);
        ok = strcmp(a, b) == 0;
    }
    free(a);
    free(b);
    return ok;
}

/* A JSON string of text that may not be UTF-8 (a byte-level model's output). */
static json_t *jtext(const char *s)
{
    size_t n = strlen(s);
    char *c = malloc(3 * n + 1);
    if (!c)
        return NULL;
    size_t m = redact_utf8_clean(s, n, c);
    json_t *j = json_stringn(c, m);
    free(c);
    return j;
}

/* ------------------------------------------------------------------ output */

static int write_json(const char *path, json_t *j, char *err, size_t errcap)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (json_dump_file(j, tmp, JSON_INDENT(1) | JSON_SORT_KEYS) || rename(tmp, path)) {
        int e = errno;
        unlink(tmp);
        snprintf(err, errcap, "%s: %s", path, strerror(e));
        return -e;
    }
    return 0;
}

/* metrics.json of a run that could not score: says why. */
static int write_failure(const char *path, const char *what, const char *why)
{
    json_t *j = json_pack("{s:s, s:s, s:s, s:i, s:n}", "status", "error", "stage", what, "error",
                          why, "items", 0, "accuracy");
    char err[512];
    int rc = j ? write_json(path, j, err, sizeof err) : PTB_ENOMEM;
    json_decref(j);
    if (rc)
        fprintf(stderr, "ptb eval: %s\n", err);
    return rc;
}

static void progress_cb(void *arg, size_t done, size_t total)
{
    cli_progress("eval", *(bool *)arg, done, total, "items");
}

int eval_main(int argc, char **argv)
{
    cli c;
    cli_init(&c, "eval", eval_opts, argc, argv);
    const char *model = NULL, *benchmark = NULL, *out = NULL, *backend = "local", *key_env = NULL,
               *device = NULL;
    unsigned long long limit = 0, max_tokens = 32, v;
    bool quiet = false;
    eval_openai_options oo = {.concurrency = 8, .timeout_s = 60, .retries = 3};
    for (int o; (o = cli_next(&c)) != CLI_END;) {
        const char *a = c.optarg;
        bool ok = true;
        switch (o) {
        case CLI_HELP: cli_help("eval", stdout); return PTB_EXIT_OK;
        case CLI_LIST: cli_list_options(eval_opts, stdout); return PTB_EXIT_OK;
        case CLI_ERROR: return cli_usage_error("eval", "%s", c.err);
        case CLI_POSITIONAL: return cli_usage_error("eval", "unexpected argument '%s'", a);
        case OPT_MODEL: model = a; break;
        case OPT_BENCHMARK: benchmark = a; break;
        case OPT_OUT: out = a; break;
        case OPT_LIMIT: ok = cli_parse_u64(a, &limit); break;
        case OPT_BACKEND: backend = a; break;
        case OPT_URL: oo.url = a; break;
        case OPT_API_MODEL: oo.model = a; break;
        case OPT_API_KEY_ENV: key_env = a; break;
        case OPT_MAX_TOKENS:
            ok = cli_parse_u64(a, &max_tokens) && max_tokens >= 1 && max_tokens <= 65536;
            break;
        case OPT_CONCURRENCY:
            ok = cli_parse_u64(a, &v) && v >= 1 && v <= 256, oo.concurrency = (int)v;
            break;
        case OPT_TIMEOUT:
            ok = cli_parse_u64(a, &v) && v >= 1 && v <= 86400, oo.timeout_s = (int)v;
            break;
        case OPT_RETRIES: ok = cli_parse_u64(a, &v) && v <= 100, oo.retries = (int)v; break;
        case OPT_DEVICE: device = a; break;
        case OPT_QUIET: quiet = true; break;
        }
        if (!ok)
            return cli_usage_error("eval", "bad value '%s' for --%s", a, eval_opts[o - 1].name);
    }
    if (!benchmark || !out)
        return cli_usage_error("eval", "--benchmark FILE and --out FILE are required");
    bool local = strcmp(backend, "local") == 0;
    if (!local && strcmp(backend, "openai") != 0)
        return cli_usage_error("eval", "--backend %s: local or openai", backend);
    if (local && !model)
        return cli_usage_error("eval", "--backend local needs --model DIR");
    if (device && !local)
        return cli_usage_error("eval", "--device is for --backend local");
    if (device && strcmp(device, "cpu") != 0 && strcmp(device, "cuda") != 0)
        return cli_usage_error("eval", "--device %s: cpu or cuda", device);
    if (!local && (!oo.url || !oo.model))
        return cli_usage_error("eval", "--backend openai needs --url URL and --api-model NAME");
    if (key_env && !(oo.api_key = getenv(key_env)))
        return cli_usage_error("eval", "--api-key-env %s: no such environment variable", key_env);

    char err[1024];
    bench b;
    int rc = bench_read(benchmark, (size_t)limit, &b, err, sizeof err);
    if (rc) {
        fprintf(stderr, "ptb eval: %s\n", err);
        write_failure(out, "benchmark", err);
        return rc == PTB_EPARSE ? PTB_EXIT_CORRUPT : ptb_exit_code(rc);
    }
    ptb_errbuf eb = {{0}};
    eval_backend *be = NULL;
    rc = local ? eval_backend_local(model, device && strcmp(device, "cuda") == 0, &be, &eb)
               : eval_backend_openai(&oo, &be, &eb);
    if (rc) {
        fprintf(stderr, "ptb eval: %s\n", eb.msg);
        write_failure(out, "model", eb.msg);
        bench_free(&b);
        return rc == PTB_ENOTFOUND ? PTB_EXIT_NOSTORE : ptb_exit_code(rc);
    }
    char **outs = calloc(b.n, sizeof *outs), **errs = calloc(b.n, sizeof *errs);
    bool tty = !quiet && isatty(2);
    if (!outs || !errs)
        rc = ptb_errf(&eb, PTB_ENOMEM, "out of memory");
    else
        rc = be->complete(be, (const char *const *)b.prompt, b.n, (size_t)max_tokens, outs, errs,
                          quiet ? NULL : progress_cb, &tty, &eb);
    int code = PTB_EXIT_OK;
    if (rc) {
        fprintf(stderr, "ptb eval: %s\n", eb.msg);
        write_failure(out, "generate", eb.msg);
        code = ptb_exit_code(rc);
    } else {
        json_t *res = json_array();
        size_t correct = 0, failed = 0;
        for (size_t i = 0; i < b.n; i++) {
            bool okk = outs[i] && eval_match(outs[i], b.answer[i]);
            correct += okk;
            failed += !outs[i];
            json_t *r =
                json_pack("{s:I, s:o, s:o, s:b}", "index", (json_int_t)i, "prompt",
                          jtext(b.prompt[i]), "expected", jtext(b.answer[i]), "correct", okk);
            json_object_set_new(r, "output", outs[i] ? jtext(outs[i]) : json_null());
            if (errs[i])
                json_object_set_new(r, "error", jtext(errs[i]));
            json_array_append_new(res, r);
        }
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:f, s:I, s:o}", "status",
                              failed ? "partial" : "ok", "benchmark", benchmark, "backend",
                              be->name, "model", local ? model : oo.model, "items", (json_int_t)b.n,
                              "correct", (json_int_t)correct, "failed", (json_int_t)failed,
                              "accuracy", (double)correct / (double)b.n, "max_tokens",
                              (json_int_t)max_tokens, "results", res);
        rc = j ? write_json(out, j, err, sizeof err) : PTB_ENOMEM;
        json_decref(j);
        if (rc) {
            fprintf(stderr, "ptb eval: %s\n", rc == PTB_ENOMEM ? "out of memory" : err);
            code = ptb_exit_code(rc);
        } else if (!quiet) {
            fprintf(stderr, "ptb eval: %zu/%zu correct (%.1f%%)%s%s; wrote %s\n", correct, b.n,
                    100.0 * (double)correct / (double)b.n, failed ? ", items failed: " : "",
                    failed ? "see \"error\" in the results" : "", out);
        }
        if (!rc && failed == b.n)
            code = PTB_EXIT_ERROR; /* nothing answered: not a score of zero */
    }
    for (size_t i = 0; i < b.n && outs && errs; i++) {
        free(outs[i]);
        free(errs[i]);
    }
    free(outs);
    free(errs);
    be->free(be);
    bench_free(&b);
    return code;
}
