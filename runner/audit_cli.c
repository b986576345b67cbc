/* `ptb audit STORE... [--format text|json|html] [--out FILE]`: the detectors of forensics/audit.h
 * on each store (in parallel, one thread per store up to the cores), then one report: a verdict
 * table and every finding with its evidence and the `ptb query` command that shows it
 * (schemas/audit-report.schema.json for the JSON form; forensics/audit_html.h for the HTML one,
 * whose timeline each job reads while its store is open). */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "audit_refs.h"
#include "audit_html.h"
#include "audit_leak_cuda.h"
#include "ptb_cli.h"
#include "ptb_commands.h"

enum {
    OPT_FORMAT = 1,
    OPT_OUT,
    OPT_TEST_SET,
    OPT_REFERENCE,
    OPT_BASE,
    OPT_JOBS,
    OPT_REFS,
    OPT_REF,
    OPT_DEVICE /* where the leakage scan and the tensor comparison run */
};
static const cli_option audit_opts[] = {
    {"format", 'f', "FORMAT", OPT_FORMAT}, {"out", 'o', "FILE", OPT_OUT},
    {"test-set", 0, "FILE", OPT_TEST_SET}, {"reference", 0, "DIR", OPT_REFERENCE},
    {"base", 0, "DIR", OPT_BASE},          {"jobs", 'j', "N", OPT_JOBS},
    {"device", 0, "DEV", OPT_DEVICE},      {"refs", 0, "DIR", OPT_REFS},
    {"ref", 0, "NAME", OPT_REF},           {NULL, 0, NULL, 0},
};

#define AUDIT_MAX_REFS 64

typedef struct audit_job {
    const char *store;
    audit_report rep;
    audit_run info; /* kept open only while the detectors run; what the report needs is copied */
    char *task;
    bool have[6];     /* processes, files, network, tool calls, GPU, checkpoint */
    json_t *timeline; /* --format html: audit_timeline_read's */
    int rc;
    char err[512];
} audit_job;

typedef struct audit_pool {
    audit_job *jobs;
    size_t n;
    atomic_size_t next;
    const audit_options *o;
    bool timeline; /* read each run's timeline (--format html) */
} audit_pool;

static void audit_one(audit_job *j, const audit_options *o, bool timeline)
{
    ptb_errbuf eb = {{0}};
    audit_run r;
    if ((j->rc = audit_run_open(&r, j->store, o, &eb))) {
        snprintf(j->err, sizeof j->err, "%s", eb.msg);
        return;
    }
    j->task = r.task_path ? strdup(r.task_path) : NULL;
    bool have[6] = {r.n_exec > 0, r.n_file > 0, r.n_net > 0,
                    r.n_tool > 0, r.n_gpu > 0,  r.checkpoint_seq > 0};
    memcpy(j->have, have, sizeof have);
    int (*const detectors[])(audit_run *, audit_report *) = {audit_leak, audit_keys, audit_ckpt};
    const char *names[] = {"leak", "keys", "ckpt"};
    for (size_t i = 0; i < 3 && !j->rc; i++)
        if ((j->rc = detectors[i](&r, &j->rep)))
            snprintf(j->err, sizeof j->err, "%s: detector %s: %s", j->store, names[i],
                     ptb_strerror(j->rc));
    if (timeline && !j->rc && (j->rc = audit_timeline_read(&r, &j->rep, &j->timeline)))
        snprintf(j->err, sizeof j->err, "%s: timeline: %s", j->store, ptb_strerror(j->rc));
    audit_run_close(&r);
}

static void *audit_worker(void *arg)
{
    audit_pool *p = arg;
    for (size_t i; (i = atomic_fetch_add(&p->next, 1)) < p->n;)
        audit_one(&p->jobs[i], p->o, p->timeline);
    return NULL;
}

static void print_text(FILE *out, audit_job *jobs, size_t n)
{
    fprintf(out, "%-32s %-11s %-11s %-11s %-11s\n", "RUN", "VERDICT", "LEAK", "KEYS", "CKPT");
    for (size_t i = 0; i < n; i++) {
        const audit_job *j = &jobs[i];
        const char *name = strrchr(j->store, '/') ? strrchr(j->store, '/') + 1 : j->store;
        if (j->rc) {
            fprintf(out, "%-32.32s %-11s %s\n", name, "ERROR", j->err);
            continue;
        }
        fprintf(out, "%-32.32s %-11s", name, audit_verdict_name(audit_report_verdict(&j->rep)));
        const char *dets[] = {"leak", "keys", "ckpt"};
        for (int d = 0; d < 3; d++) {
            bool ran;
            audit_verdict v = audit_report_detector_verdict(&j->rep, dets[d], &ran);
            fprintf(out, " %-11s", ran ? audit_verdict_name(v) : "-");
        }
        fprintf(out, "\n");
    }
    for (size_t i = 0; i < n; i++) {
        const audit_job *j = &jobs[i];
        /* what the store could not give the rules that found nothing, said once */
        char lacked[1024] = "";
        for (size_t k = 0; k < j->rep.n; k++) {
            const audit_finding *f = &j->rep.f[k];
            if (f->verdict != AUDIT_CLEAN || !f->unavailable || strstr(lacked, f->unavailable))
                continue;
            size_t l = strlen(lacked);
            snprintf(lacked + l, sizeof lacked - l, "%s%s (%s)", l ? "; " : "", f->unavailable,
                     f->rule);
        }
        if (lacked[0] && !j->rc)
            fprintf(out, "\n%s: clean rules could not use: %s\n", j->store, lacked);
        for (size_t k = 0; k < j->rep.n; k++) {
            const audit_finding *f = &j->rep.f[k];
            if (f->verdict == AUDIT_CLEAN)
                continue;
            fprintf(out, "\n[%s] %s: %s (confidence %.2f)\n  %s\n", audit_verdict_name(f->verdict),
                    j->store, f->rule, f->confidence, f->summary);
            if (f->n_seqs) {
                fprintf(out, "  evidence: seq");
                for (size_t s = 0; s < f->n_seqs && s < 20; s++)
                    fprintf(out, "%s %llu", s ? "," : "", (unsigned long long)f->seqs[s]);
                fprintf(out, "%s\n", f->n_seqs > 20 ? ", ..." : "");
            }
            for (size_t b = 0; b < f->n_blobs && b < 4; b++)
                fprintf(out, "  blob: %s\n", f->blobs[b]);
            if (f->matched)
                fprintf(out, "  matched: %.300s\n", f->matched);
            if (f->unavailable)
                fprintf(out, "  unavailable: %s\n", f->unavailable);
            if (f->query)
                fprintf(out, "  show: %s\n", f->query);
        }
    }
}

static json_t *report_json(audit_job *jobs, size_t n)
{
    json_t *runs = json_array();
    for (size_t i = 0; i < n; i++) {
        const audit_job *j = &jobs[i];
        json_t *run = json_pack("{s:s}", "store", j->store);
        if (j->rc) {
            json_object_set_new(run, "verdict", json_string("error"));
            json_object_set_new(run, "error", json_string(j->err));
            json_array_append_new(runs, run);
            continue;
        }
        json_object_set_new(run, "task", j->task ? json_string(j->task) : json_null());
        json_object_set_new(run, "verdict",
                            json_string(audit_verdict_name(audit_report_verdict(&j->rep))));
        json_object_set_new(run, "evidence_available",
                            json_pack("{s:b,s:b,s:b,s:b,s:b,s:b}", "processes", j->have[0], "files",
                                      j->have[1], "network", j->have[2], "tool_calls", j->have[3],
                                      "gpu", j->have[4], "checkpoint", j->have[5]));
        json_t *fs = json_array();
        for (size_t k = 0; k < j->rep.n; k++) {
            const audit_finding *f = &j->rep.f[k];
            json_t *seqs = json_array(), *blobs = json_array();
            for (size_t s = 0; s < f->n_seqs; s++)
                json_array_append_new(seqs, json_integer((json_int_t)f->seqs[s]));
            for (size_t b = 0; b < f->n_blobs; b++)
                json_array_append_new(blobs, json_string(f->blobs[b]));
            json_t *jf =
                json_pack("{s:s,s:s,s:s,s:f,s:s,s:o,s:o}", "detector", f->detector, "rule", f->rule,
                          "verdict", audit_verdict_name(f->verdict), "confidence", f->confidence,
                          "summary", f->summary, "seqs", seqs, "blobs", blobs);
            if (f->matched)
                json_object_set_new(jf, "matched", json_string(f->matched));
            if (f->query)
                json_object_set_new(jf, "query", json_string(f->query));
            if (f->unavailable)
                json_object_set_new(jf, "unavailable", json_string(f->unavailable));
            json_array_append_new(fs, jf);
        }
        json_object_set_new(run, "findings", fs);
        json_array_append_new(runs, run);
    }
    return json_pack("{s:i,s:s,s:o}", "version", 1, "ptb_version", PTB_VERSION, "runs", runs);
}

static int write_html(FILE *out, const audit_job *jobs, size_t n)
{
    audit_html_run *runs = calloc(n, sizeof *runs);
    if (!runs)
        return PTB_ENOMEM;
    for (size_t i = 0; i < n; i++)
        runs[i] = (audit_html_run){.store = jobs[i].store,
                                   .error = jobs[i].rc ? jobs[i].err : NULL,
                                   .rep = jobs[i].rc ? NULL : &jobs[i].rep,
                                   .timeline = jobs[i].timeline};
    int rc = audit_html_write(out, runs, n);
    free(runs);
    return rc;
}

int audit_main(int argc, char **argv)
{
    cli c;
    cli_init(&c, "audit", audit_opts, argc, argv);
    const char *format = "text", *outp = NULL, *refs[AUDIT_MAX_REFS + 1] = {0};
    size_t nrefs = 0, nnames = 0;
    const char *refs_opt = NULL, *names[AUDIT_MAX_REFS + 1] = {0}; /* --refs, --ref */
    char refs_dir[4096];
    audit_options o = {0};
    unsigned long long jobs_max = 0;
    const char **stores = calloc((size_t)argc + 1, sizeof *stores);
    size_t n = 0;
    if (!stores)
        return PTB_EXIT_ERROR;
    for (int opt; (opt = cli_next(&c)) != CLI_END;) {
        switch (opt) {
        case CLI_HELP:
            free(stores);
            cli_help("audit", stdout);
            return PTB_EXIT_OK;
        case CLI_LIST:
            free(stores);
            cli_list_options(audit_opts, stdout);
            return PTB_EXIT_OK;
        case CLI_ERROR: free(stores); return cli_usage_error("audit", "%s", c.err);
        case CLI_POSITIONAL: stores[n++] = c.optarg; break;
        case OPT_FORMAT: format = c.optarg; break;
        case OPT_OUT: outp = c.optarg; break;
        case OPT_TEST_SET: o.test_set = c.optarg; break;
        case OPT_DEVICE:
            if (strcmp(c.optarg, "cpu") && strcmp(c.optarg, "cuda") && strcmp(c.optarg, "auto")) {
                free(stores);
                return cli_usage_error("audit", "--device %s: cpu, cuda or auto", c.optarg);
            }
            o.device = c.optarg;
            break;
        case OPT_BASE: o.base = c.optarg; break;
        case OPT_REFERENCE:
            if (nrefs == AUDIT_MAX_REFS) {
                free(stores);
                return cli_usage_error("audit", "at most %d --reference", AUDIT_MAX_REFS);
            }
            refs[nrefs++] = c.optarg;
            break;
        case OPT_REFS: refs_opt = c.optarg; break;
        case OPT_REF:
            if (nnames == AUDIT_MAX_REFS) {
                free(stores);
                return cli_usage_error("audit", "at most %d --ref", AUDIT_MAX_REFS);
            }
            names[nnames++] = c.optarg;
            break;
        case OPT_JOBS:
            if (!cli_parse_u64(c.optarg, &jobs_max) || jobs_max < 1 || jobs_max > 1024) {
                free(stores);
                return cli_usage_error("audit", "--jobs: an integer in 1..1024");
            }
            break;
        }
    }
    if (strcmp(format, "text") && strcmp(format, "json") && strcmp(format, "html")) {
        free(stores);
        return cli_usage_error("audit", "--format %s: text, json or html", format);
    }
    if (!n) {
        free(stores);
        return cli_usage_error("audit", "no store to audit (ptb audit STORE...)");
    }
    if (o.device && !strcmp(o.device, "cuda")) { /* asked for: say now, and why, if it cannot */
        char why[4700];
        if (audit_leak_cuda_available(why, sizeof why)) {
            free(stores);
            fprintf(stderr, "ptb audit: --device cuda: %s\n", why);
            return PTB_EXIT_ERROR;
        }
    }
    o.references = nrefs ? refs : NULL;
    /* the references kept by ptb refs: every one in the folder, or those --ref names */
    ptb_errbuf reb = {{0}};
    if (!audit_refs_dir(refs_opt, refs_dir, sizeof refs_dir, &reb))
        o.refs_dir = refs_dir;
    else if (refs_opt || nnames) {
        free(stores);
        return cli_usage_error("audit", "%s", reb.msg);
    }
    for (size_t i = 0; i < nnames; i++) {
        audit_ref *kr;
        int rc = audit_ref_open(refs_dir, names[i], &kr, &reb);
        if (rc == PTB_ENOTFOUND || rc == PTB_EINVAL) { /* not kept: the command line's fault */
            free(stores);
            return cli_usage_error("audit", "--ref %s: %s", names[i], reb.msg);
        }
        if (rc) {
            free(stores);
            fprintf(stderr, "ptb audit: --ref %s: %s\n", names[i], reb.msg);
            return rc == PTB_ECORRUPT ? PTB_EXIT_CORRUPT : PTB_EXIT_ERROR;
        }
        audit_ref_close(kr);
    }
    o.ref_names = nnames ? names : NULL;
    audit_job *jobs = calloc(n, sizeof *jobs);
    if (!jobs) {
        free(stores);
        return PTB_EXIT_ERROR;
    }
    for (size_t i = 0; i < n; i++)
        jobs[i].store = stores[i];
    audit_pool pool = {.jobs = jobs, .n = n, .o = &o, .timeline = !strcmp(format, "html")};
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t nt = jobs_max ? (size_t)jobs_max : cores > 0 ? (size_t)cores : 1;
    if (nt > n)
        nt = n;
    /* each store's detectors (the scan's threads, OpenMP) get a share of the cores */
    o.threads = cores > (long)nt ? (unsigned)(cores / (long)nt) : 1;
    pthread_t *th = calloc(nt, sizeof *th);
    size_t started = 0;
    for (size_t i = 0; th && i < nt; i++)
        started += pthread_create(&th[i], NULL, audit_worker, &pool) == 0;
    if (!started) /* no thread: do it here */
        audit_worker(&pool);
    for (size_t i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    free(th);
    FILE *out = outp ? fopen(outp, "w") : stdout;
    int rc = PTB_EXIT_OK;
    if (!out) {
        fprintf(stderr, "ptb audit: %s: %s\n", outp, strerror(errno));
        rc = PTB_EXIT_ERROR;
    } else if (!strcmp(format, "json")) {
        json_t *j = report_json(jobs, n);
        if (!j || json_dumpf(j, out, JSON_INDENT(2)) != 0) {
            fprintf(stderr, "ptb audit: cannot write the report\n");
            rc = PTB_EXIT_ERROR;
        }
        fputc('\n', out);
        json_decref(j);
    } else if (!strcmp(format, "html")) {
        int hrc = write_html(out, jobs, n);
        if (hrc) {
            fprintf(stderr, "ptb audit: cannot write the report: %s\n", ptb_strerror(hrc));
            rc = PTB_EXIT_ERROR;
        }
    } else
        print_text(out, jobs, n);
    if (out && out != stdout && fclose(out) && rc == PTB_EXIT_OK) {
        fprintf(stderr, "ptb audit: %s: %s\n", outp, strerror(errno));
        rc = PTB_EXIT_ERROR;
    }
    /* exit status: an error, else the worst verdict (violation 1, suspicious 6, clean 0) */
    audit_verdict worst = AUDIT_CLEAN;
    int err = 0;
    for (size_t i = 0; i < n; i++) {
        if (jobs[i].rc) {
            fprintf(stderr, "ptb audit: %s\n", jobs[i].err);
            if (!err)
                err = ptb_exit_code(jobs[i].rc);
        } else if (audit_report_verdict(&jobs[i].rep) > worst)
            worst = audit_report_verdict(&jobs[i].rep);
        audit_report_free(&jobs[i].rep);
        json_decref(jobs[i].timeline);
        free(jobs[i].task);
    }
    free(jobs);
    free(stores);
    if (rc != PTB_EXIT_OK)
        return rc;
    if (err)
        return err;
    return worst == AUDIT_VIOLATION    ? PTB_EXIT_FAIL
           : worst == AUDIT_SUSPICIOUS ? PTB_EXIT_SUSPICIOUS
                                       : PTB_EXIT_OK;
}
