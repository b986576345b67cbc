/* `ptb study STUDY.json [--slurm]`, `ptb study status OUT`, `ptb study report OUT`, and
 * `ptb study exec OUT RUN` (what each Slurm array task runs): docs/commands/ptb-study.md,
 * study.h. ptb schedules nothing: runs go one by one here, or to Slurm as one job array. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "event_type.h"
#include "ptb_cli.h"
#include "ptb_commands.h"
#include "store.h"
#include "study.h"

enum { OPT_DIR = 1, OPT_SLURM, OPT_DRY, OPT_RETRY, OPT_FORMAT, OPT_OUT, OPT_PLAN, OPT_QUIET };
static const cli_option study_opts[] = {
    {"dir", 0, "DIR", OPT_DIR},
    {"slurm", 0, NULL, OPT_SLURM},
    {"dry-run", 0, NULL, OPT_DRY},
    {"retry-failed", 0, NULL, OPT_RETRY},
    {"format", 'f', "FORMAT", OPT_FORMAT},
    {"out", 'o', "FILE", OPT_OUT},
    {"plan", 0, "SHA256", OPT_PLAN},
    {"quiet", 'q', NULL, OPT_QUIET},
    {NULL, 0, NULL, 0},
};

static int study_fail(int rc, const ptb_errbuf *eb)
{
    fprintf(stderr, "ptb study: %s\n", eb->msg[0] ? eb->msg : ptb_strerror(rc));
    return rc == PTB_EPARSE || rc == PTB_EEXIST || rc == PTB_ELOCKED || rc == PTB_EINVAL
               ? PTB_EXIT_USAGE
           : rc == -ENOENT || rc == PTB_ENOTFOUND ? PTB_EXIT_NOSTORE
           : rc == PTB_ECORRUPT                   ? PTB_EXIT_CORRUPT
                                                  : PTB_EXIT_ERROR;
}

static int study_self(char *self, size_t cap)
{
    ssize_t n = readlink("/proc/self/exe", self, cap - 1);
    if (n <= 0)
        return -errno;
    self[n] = 0;
    return 0;
}

/* A study folder, or a STUDY.json whose folder is read. */
static int study_at(const char *arg, study *st, ptb_errbuf *eb)
{
    struct stat sb;
    if (stat(arg, &sb) == 0 && S_ISDIR(sb.st_mode))
        return study_open(arg, st, eb);
    study tmp;
    int rc = study_load(arg, NULL, &tmp, eb);
    if (!rc) {
        char out[PATH_MAX];
        snprintf(out, sizeof out, "%s", tmp.out);
        study_free(&tmp);
        rc = study_open(out, st, eb);
    }
    return rc;
}

/* ------------------------------------------------------------------ state of each run */

typedef struct srow {
    const char *state; /* done, failed, killed, running, pending, requeued, todo */
    char detail[256];
    char job[64];
    double score; /* < 0: none */
    bool base_score;
    char verdict[16], det[3][16];
    bool counted;
    double scored;
} srow;

static bool slurm_active(const char *s)
{
    static const char *const act[] = {"PENDING",       "RUNNING",   "CONFIGURING",  "COMPLETING",
                                      "SUSPENDED",     "REQUEUED",  "REQUEUE_HOLD", "REQUEUE_FED",
                                      "RESIZING",      "SIGNALING", "STAGE_OUT",    "STOPPED",
                                      "RESV_DEL_HOLD", NULL};
    for (int i = 0; act[i]; i++)
        if (!strcmp(s, act[i]))
            return true;
    return false;
}

/* what a store left by an attempt that did not end says: events, and run.end's reason */
static void store_note(const char *path, char *out, size_t cap)
{
    store *s = NULL;
    store_txn *t;
    if (access(path, F_OK)) {
        snprintf(out, cap, "no store");
        return;
    }
    if (store_open(path, NULL, STORE_RDONLY, &s) || store_txn_begin(s, &t)) {
        snprintf(out, cap, "the store does not open");
        store_close(s);
        return;
    }
    uint64_t last = store_txn_last_seq(t), seq = 0;
    store_range r = {.by_index = true,
                     .index = STORE_IX_TYPE,
                     .key = store_type_key(PTB__V1__EVENT__BODY_RUN_END)};
    store_cursor *cur;
    const ptb_event *ev;
    char why[160] = "no run.end";
    if (!store_cursor_open(t, &r, &cur)) {
        if (store_cursor_next_seq(cur, &seq) == 0 && !store_event_get(t, seq, &ev) &&
            ev->body_case == PTB__V1__EVENT__BODY_RUN_END)
            snprintf(why, sizeof why, "run.end: %s", ev->run_end->reason);
        store_cursor_close(cur);
    }
    snprintf(out, cap, "store opens: %llu events, %s", (unsigned long long)last, why);
    store_txn_end(t);
    store_close(s);
}

static const char *verdict_rank[] = {"clean", "suspicious", "violation", NULL};
static int vrank(const char *v)
{
    for (int i = 0; verdict_rank[i]; i++)
        if (!strcmp(v, verdict_rank[i]))
            return i;
    return -1;
}

static int study_rows(const study *st, srow *rows)
{
    char(*state)[64] = calloc(st->n ? st->n : 1, 64), (*reason)[64] = calloc(st->n ? st->n : 1, 64),
    (*job)[64] = calloc(st->n ? st->n : 1, 64);
    if (!state || !reason || !job) {
        free(state), free(reason), free(job);
        return PTB_ENOMEM;
    }
    study_slurm_states(st, state, reason, job);
    for (size_t i = 0; i < st->n; i++) {
        const study_run *r = &st->runs[i];
        srow *w = &rows[i];
        memset(w, 0, sizeof *w);
        w->score = -1;
        snprintf(w->job, sizeof w->job, "%s", job[i]);
        json_t *res = study_result(st, r);
        const char *s = study_result_status(res);
        char p[PATH_MAX], note[200];
        if (s && !strcmp(s, "done")) {
            w->state = "done";
        } else if (*state[i] && slurm_active(state[i])) {
            bool rq = !strncmp(state[i], "REQUEUE", 7) || !strcmp(reason[i], "BeginTime");
            w->state =
                !strcmp(state[i], "PENDING") || rq ? (rq ? "requeued" : "pending") : "running";
            snprintf(w->detail, sizeof w->detail, "Slurm %s%s%s", state[i], *reason[i] ? ": " : "",
                     reason[i]);
        } else if (study_run_busy(st, r)) {
            w->state = "running";
            snprintf(w->detail, sizeof w->detail, "%s%s (its attempt holds its lock)",
                     *state[i] ? "Slurm " : "not under Slurm", state[i]);
        } else if (s) {
            w->state = !strcmp(s, "failed") ? "failed" : "killed";
            study_run_store(st, r, p, sizeof p);
            store_note(p, note, sizeof note);
            snprintf(w->detail, sizeof w->detail, "%s%s%s; %s",
                     json_string_value(json_object_get(res, "reason")), *state[i] ? "; Slurm " : "",
                     state[i], note);
        } else if (*state[i]) {
            w->state = !strcmp(state[i], "COMPLETED") ? "failed" : "killed";
            study_run_store(st, r, p, sizeof p);
            store_note(p, note, sizeof note);
            snprintf(w->detail, sizeof w->detail, "Slurm %s, no result; %s", state[i], note);
        } else {
            study_run_dir(st, r, p, sizeof p);
            if (access(p, F_OK)) {
                w->state = "todo";
            } else {
                w->state = "killed";
                study_run_store(st, r, p, sizeof p);
                store_note(p, note, sizeof note);
                snprintf(w->detail, sizeof w->detail, "no result (its ptb study was killed); %s",
                         note);
            }
        }
        json_decref(res);
        /* the score (the run's manifest) and the verdicts (its audit report) */
        study_run_dir(st, r, p, sizeof p);
        strncat(p, "/manifest.json", sizeof p - strlen(p) - 1);
        json_error_t je;
        json_t *m = json_load_file(p, 0, &je), *sc = json_object_get(m, "score");
        if (json_is_number(json_object_get(sc, "accuracy")))
            w->score = json_number_value(json_object_get(sc, "accuracy"));
        w->base_score = json_is_true(json_object_get(sc, "base_model_score"));
        json_decref(m);
        study_run_file(st, r, "audit", p, sizeof p);
        json_t *a = json_load_file(p, 0, &je), *run = json_array_get(json_object_get(a, "runs"), 0);
        snprintf(w->verdict, sizeof w->verdict, "%s",
                 json_string_value(json_object_get(run, "verdict"))
                     ? json_string_value(json_object_get(run, "verdict"))
                     : "-");
        static const char *dets[] = {"leak", "keys", "ckpt"};
        for (int d = 0; d < 3; d++) {
            int best = -1;
            json_t *f;
            size_t k;
            json_array_foreach(json_object_get(run, "findings"), k, f)
            {
                const char *dn = json_string_value(json_object_get(f, "detector"));
                const char *v = json_string_value(json_object_get(f, "verdict"));
                if (dn && v && !strcmp(dn, dets[d]) && vrank(v) > best)
                    best = vrank(v);
            }
            snprintf(w->det[d], sizeof w->det[d], "%s", best >= 0 ? verdict_rank[best] : "-");
        }
        json_decref(a);
        /* what counts in the aggregate */
        const char *rule = !strcmp(w->verdict, "violation")    ? st->on_violation
                           : !strcmp(w->verdict, "suspicious") ? st->on_suspicious
                                                               : "keep";
        w->counted = !strcmp(w->state, "done") && w->score >= 0 && strcmp(rule, "exclude");
        w->scored = !strcmp(rule, "zero") ? 0 : w->score;
    }
    free(state), free(reason), free(job);
    return 0;
}

/* ------------------------------------------------------------------ status */

static int study_status(const study *st)
{
    srow *rows = calloc(st->n ? st->n : 1, sizeof *rows);
    if (!rows || study_rows(st, rows)) {
        free(rows);
        fprintf(stderr, "ptb study: out of memory\n");
        return PTB_EXIT_ERROR;
    }
    static const char *const states[] = {"done",    "failed",   "killed", "running",
                                         "pending", "requeued", "todo",   NULL};
    printf("study %s (%s): %zu runs:", st->name, st->out, st->n);
    size_t notdone = 0;
    for (int k = 0; states[k]; k++) {
        size_t c = 0;
        for (size_t i = 0; i < st->n; i++)
            c += !strcmp(rows[i].state, states[k]);
        if (c)
            printf(" %zu %s", c, states[k]);
        if (k)
            notdone += c;
    }
    printf("\n\n%-40s %-9s %-14s %s\n", "RUN", "STATE", "SLURM JOB", "DETAIL");
    for (size_t i = 0; i < st->n; i++)
        printf("%-40s %-9s %-14s %s\n", st->runs[i].id, rows[i].state,
               *rows[i].job ? rows[i].job : "-", rows[i].detail);
    free(rows);
    return notdone ? PTB_EXIT_FAIL : PTB_EXIT_OK;
}

/* ------------------------------------------------------------------ report */

typedef struct agg {
    const char *agent;
    double ws, w;
    size_t counted, runs;
} agg;

static void html_esc(FILE *f, const char *s)
{
    for (; *s; s++)
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
}

static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void fmt_score(char *b, size_t cap, double v)
{
    if (v < 0)
        snprintf(b, cap, "-");
    else
        snprintf(b, cap, "%.4f", v);
}

static int study_report(const study *st, const char *format, FILE *f)
{
    srow *rows = calloc(st->n ? st->n : 1, sizeof *rows);
    agg *ag = calloc(st->n + 1, sizeof *ag);
    size_t na = 1;
    if (!rows || !ag || study_rows(st, rows)) {
        free(rows), free(ag);
        fprintf(stderr, "ptb study: out of memory\n");
        return PTB_EXIT_ERROR;
    }
    ag[0].agent = "(all)";
    for (size_t i = 0; i < st->n; i++) {
        size_t a = 1;
        while (a < na && strcmp(ag[a].agent, st->runs[i].agent))
            a++;
        if (a == na)
            ag[na++].agent = st->runs[i].agent;
        size_t both[2] = {0, a};
        for (int k = 0; k < 2; k++) {
            ag[both[k]].runs++;
            if (rows[i].counted) {
                ag[both[k]].counted++;
                ag[both[k]].ws += st->runs[i].weight * rows[i].scored;
                ag[both[k]].w += st->runs[i].weight;
            }
        }
    }
    bool html = !strcmp(format, "html"), csv = !strcmp(format, "csv");
    static const char *const cols[] = {
        "run",     "task", "agent", "repeat", "benchmark", "state",   "score",  "base_score",
        "verdict", "leak", "keys",  "ckpt",   "weight",    "counted", "scored", NULL};
    if (html) {
        fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\n<meta "
              "http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src "
              "'unsafe-inline'\">\n<title>ptb study ",
              f);
        html_esc(f, st->name);
        fputs("</title>\n<style>body{font:14px sans-serif;margin:2em}table{border-collapse:"
              "collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}"
              ".violation{background:#fcc}.suspicious{background:#ffd}</style></head><body>\n<h1>"
              "Study ",
              f);
        html_esc(f, st->name);
        fputs("</h1>\n<p>", f);
        html_esc(f, st->out);
        fprintf(f, ": %zu runs; violations scored: ", st->n);
        html_esc(f, st->on_violation);
        fputs(", suspicious: ", f);
        html_esc(f, st->on_suspicious);
        fputs("</p>\n<h2>Aggregate</h2>\n<table><tr><th>agent</th><th>weighted score</th><th>"
              "runs counted</th><th>runs</th></tr>\n",
              f);
    } else if (csv) {
        for (int c = 0; cols[c]; c++)
            fprintf(f, "%s%s", c ? "," : "", cols[c]);
        fputc('\n', f);
    } else {
        fprintf(f, "study %s: %zu runs (%s); violations scored: %s, suspicious: %s\n\n", st->name,
                st->n, st->out, st->on_violation, st->on_suspicious);
        fprintf(f, "%-36s %-8s %-8s %-5s %-10s %-10s %-10s %-10s %6s %s\n", "RUN", "STATE", "SCORE",
                "BASE", "VERDICT", "LEAK", "KEYS", "CKPT", "WEIGHT", "COUNTED");
    }
    if (html)
        for (size_t a = 0; a < na; a++) {
            char s[32];
            fmt_score(s, sizeof s, ag[a].w > 0 ? ag[a].ws / ag[a].w : -1);
            fputs("<tr><td>", f);
            html_esc(f, ag[a].agent);
            fprintf(f, "</td><td>%s</td><td>%zu</td><td>%zu</td></tr>\n", s, ag[a].counted,
                    ag[a].runs);
        }
    if (html) {
        fputs("</table>\n<h2>Runs</h2>\n<table><tr>", f);
        for (int c = 0; cols[c]; c++)
            fprintf(f, "<th>%s</th>", cols[c]);
        fputs("</tr>\n", f);
    }
    for (size_t i = 0; i < st->n; i++) {
        const study_run *r = &st->runs[i];
        const srow *w = &rows[i];
        char score[32], scored[32], rep[16], weight[32];
        fmt_score(score, sizeof score, w->score);
        fmt_score(scored, sizeof scored, w->counted ? w->scored : -1);
        snprintf(rep, sizeof rep, "%u", r->repeat);
        snprintf(weight, sizeof weight, "%g", r->weight);
        const char *vals[] = {r->id,        r->task,
                              r->agent,     rep,
                              r->benchmark, w->state,
                              score,        w->base_score ? "yes" : "no",
                              w->verdict,   w->det[0],
                              w->det[1],    w->det[2],
                              weight,       w->counted ? "yes" : "no",
                              scored};
        if (html) {
            fprintf(f, "<tr class=\"%s\">", vrank(w->verdict) > 0 ? w->verdict : "");
            for (int c = 0; cols[c]; c++) {
                fputs("<td>", f);
                html_esc(f, vals[c]);
                fputs("</td>", f);
            }
            fputs("</tr>\n", f);
        } else if (csv) {
            for (int c = 0; cols[c]; c++) {
                if (c)
                    fputc(',', f);
                csv_field(f, vals[c]);
            }
            fputc('\n', f);
        } else {
            fprintf(f, "%-36s %-8s %-8s %-5s %-10s %-10s %-10s %-10s %6s %s\n", r->id, w->state,
                    score, w->base_score ? "yes" : "no", w->verdict, w->det[0], w->det[1],
                    w->det[2], weight, w->counted ? scored : "no");
        }
    }
    if (html) {
        fputs("</table>\n</body></html>\n", f);
    } else if (csv) {
        for (size_t a = 0; a < na; a++) { /* aggregate rows: run "(aggregate)", agent, scored */
            char s[32];
            fmt_score(s, sizeof s, ag[a].w > 0 ? ag[a].ws / ag[a].w : -1);
            fputs("(aggregate),,", f);
            csv_field(f, ag[a].agent);
            fprintf(f, ",,,,,,,,,,,%zu/%zu,%s\n", ag[a].counted, ag[a].runs, s);
        }
    } else {
        fprintf(f, "\n%-24s %-15s %s\n", "AGENT", "WEIGHTED SCORE", "RUNS COUNTED");
        for (size_t a = 0; a < na; a++) {
            char s[32];
            fmt_score(s, sizeof s, ag[a].w > 0 ? ag[a].ws / ag[a].w : -1);
            fprintf(f, "%-24s %-15s %zu of %zu\n", ag[a].agent, s, ag[a].counted, ag[a].runs);
        }
    }
    free(rows), free(ag);
    return PTB_EXIT_OK;
}

/* ------------------------------------------------------------------ submit / run */

static int study_submit(const char *path, const char *dir, bool slurm, bool dry, bool retry,
                        bool quiet)
{
    study st;
    ptb_errbuf eb = {{0}};
    int rc = study_load(path, dir, &st, &eb), lock = -1, ret = PTB_EXIT_OK;
    char self[PATH_MAX];
    if (!rc && (rc = study_self(self, sizeof self)))
        snprintf(eb.msg, sizeof eb.msg, "cannot find the ptb binary: %s", strerror(-rc));
    if (!rc) {
        char ob[PATH_MAX];
        snprintf(ob, sizeof ob, "%s", st.out);
        if (mkdir(ob, 0755) && errno != EEXIST)
            rc = ptb_errf(&eb, -errno, "%s: %s", ob, strerror(errno));
        if (!rc)
            rc = study_lock(st.out, &lock, &eb);
    }
    if (!rc)
        rc = study_plan_write(&st, &eb);
    if (rc) {
        int x = study_fail(rc, &eb);
        if (lock >= 0)
            close(lock);
        study_free(&st);
        return x;
    }
    char(*state)[64] = calloc(st.n, 64), (*reason)[64] = calloc(st.n, 64),
    (*job)[64] = calloc(st.n, 64);
    size_t *todo = calloc(st.n, sizeof *todo), nt = 0, ndone = 0, nfailed = 0, nactive = 0;
    if (!state || !reason || !job || !todo) {
        ret = PTB_EXIT_ERROR;
        goto out;
    }
    study_slurm_states(&st, state, reason, job);
    for (size_t i = 0; i < st.n; i++) {
        json_t *res = study_result(&st, &st.runs[i]);
        const char *s = study_result_status(res);
        if (s && !strcmp(s, "done"))
            ndone++;
        else if (*state[i] && slurm_active(state[i]))
            nactive++;
        else if (s && !strcmp(s, "failed") && !retry)
            nfailed++;
        else
            todo[nt++] = i;
        json_decref(res);
    }
    if (!quiet)
        printf("study %s: %zu runs: %zu done, %zu failed (not retried%s), %zu pending or running "
               "in Slurm, %zu to run\n",
               st.name, st.n, ndone, nfailed, nfailed ? ": --retry-failed" : "", nactive, nt);
    if (!nt)
        goto out;
    if (dry && !slurm) { /* the runs to do, one id a line (e.g. for another scheduler) */
        for (size_t k = 0; k < nt; k++)
            printf("%s\n", st.runs[todo[k]].id);
        goto out;
    }
    if (slurm) {
        char jobid[64];
        if ((rc = study_slurm_submit(&st, todo, nt, self, dry, jobid, &eb))) {
            ret = study_fail(rc, &eb);
            goto out;
        }
        if (!quiet && !dry)
            printf("submitted job array %s: %zu runs%s%u at once (ptb study status %s)\n", jobid,
                   nt, st.throttle ? ", at most " : "", st.throttle, st.out);
        goto out;
    }
    for (size_t k = 0; k < nt; k++) {
        rc = study_exec_run(&st, &st.runs[todo[k]], self, &eb);
        if (rc < 0) {
            ret = study_fail(rc, &eb);
            break;
        }
        if (rc == 2) { /* killed: stop here; the next ptb study goes on */
            ret = PTB_EXIT_ERROR;
            break;
        }
        if (rc)
            ret = PTB_EXIT_FAIL;
    }
out:
    free(state), free(reason), free(job), free(todo);
    if (lock >= 0)
        close(lock);
    study_free(&st);
    return ret;
}

static int study_exec(const char *out, const char *id, const char *plan)
{
    study st;
    ptb_errbuf eb = {{0}};
    int rc = study_open(out, &st, &eb);
    if (rc)
        return study_fail(rc, &eb);
    if (plan && strcmp(plan, st.plan_sha256)) {
        fprintf(stderr, "ptb study exec: %s holds another plan (%.12s, not %.12s): refused\n", out,
                st.plan_sha256, plan);
        study_free(&st);
        return PTB_EXIT_USAGE;
    }
    size_t i = 0;
    while (i < st.n && strcmp(st.runs[i].id, id))
        i++;
    char self[PATH_MAX];
    if (i == st.n) {
        fprintf(stderr, "ptb study exec: no run %s in %s\n", id, out);
        rc = PTB_EXIT_USAGE;
    } else if ((rc = study_self(self, sizeof self))) {
        rc = PTB_EXIT_ERROR;
    } else {
        rc = study_exec_run(&st, &st.runs[i], self, &eb);
        rc = rc < 0 ? study_fail(rc, &eb) : rc ? PTB_EXIT_FAIL : PTB_EXIT_OK;
    }
    study_free(&st);
    return rc;
}

int study_main(int argc, char **argv)
{
    cli c;
    cli_init(&c, "study", study_opts, argc, argv);
    const char *pos[3] = {0}, *dir = NULL, *format = "text", *outf = NULL, *plan = NULL;
    bool slurm = false, dry = false, retry = false, quiet = false;
    size_t np = 0;
    for (int opt; (opt = cli_next(&c)) != CLI_END;) {
        switch (opt) {
        case CLI_HELP: cli_help("study", stdout); return PTB_EXIT_OK;
        case CLI_LIST: cli_list_options(study_opts, stdout); return PTB_EXIT_OK;
        case CLI_ERROR: return cli_usage_error("study", "%s", c.err);
        case CLI_POSITIONAL:
            if (np == 3)
                return cli_usage_error("study", "too many arguments");
            pos[np++] = c.optarg;
            break;
        case OPT_DIR: dir = c.optarg; break;
        case OPT_SLURM: slurm = true; break;
        case OPT_DRY: dry = true; break;
        case OPT_RETRY: retry = true; break;
        case OPT_FORMAT: format = c.optarg; break;
        case OPT_OUT: outf = c.optarg; break;
        case OPT_PLAN: plan = c.optarg; break;
        case OPT_QUIET: quiet = true; break;
        }
    }
    if (!np)
        return cli_usage_error("study", "ptb study STUDY.json [--slurm] | status DIR | report DIR");
    const char *verb = pos[0];
    bool is_status = !strcmp(verb, "status"), is_report = !strcmp(verb, "report"),
         is_exec = !strcmp(verb, "exec");
    if (!is_status && !is_report && !is_exec) {
        if (np != 1)
            return cli_usage_error("study", "ptb study STUDY.json takes one study");
        if (outf || plan || strcmp(format, "text"))
            return cli_usage_error("study", "--format, --out and --plan are for report and exec");
        return study_submit(verb, dir, slurm, dry, retry, quiet);
    }
    if (dir || slurm || dry || retry)
        return cli_usage_error("study", "--dir, --slurm, --dry-run and --retry-failed are for "
                                        "ptb study STUDY.json");
    if (is_exec) {
        if (np != 3)
            return cli_usage_error("study", "ptb study exec DIR RUN [--plan SHA256]");
        return study_exec(pos[1], pos[2], plan);
    }
    if (np != 2)
        return cli_usage_error("study", "ptb study %s takes a study folder or STUDY.json", verb);
    if (is_report && strcmp(format, "text") && strcmp(format, "csv") && strcmp(format, "html"))
        return cli_usage_error("study", "--format %s: text, csv or html", format);
    if (is_status && (outf || strcmp(format, "text") || plan))
        return cli_usage_error("study", "ptb study status takes no --format, --out or --plan");
    study st;
    ptb_errbuf eb = {{0}};
    int rc = study_at(pos[1], &st, &eb);
    if (rc)
        return study_fail(rc, &eb);
    if (is_status) {
        rc = study_status(&st);
    } else {
        FILE *f = outf ? fopen(outf, "w") : stdout;
        if (!f) {
            fprintf(stderr, "ptb study: %s: %s\n", outf, strerror(errno));
            rc = PTB_EXIT_ERROR;
        } else {
            rc = study_report(&st, format, f);
            if (outf && fclose(f)) {
                fprintf(stderr, "ptb study: %s: %s\n", outf, strerror(errno));
                rc = PTB_EXIT_ERROR;
            }
        }
    }
    study_free(&st);
    return rc;
}
