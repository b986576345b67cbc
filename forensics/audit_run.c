/* The audit's context of one run (audit.h): what the store says about the run, read once; the
 * report's findings. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "audit.h"

const char *audit_verdict_name(audit_verdict v)
{
    return v == AUDIT_VIOLATION ? "violation" : v == AUDIT_SUSPICIOUS ? "suspicious" : "clean";
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int audit_add(audit_report *rep, const char *detector, const char *rule, audit_verdict v,
              double confidence, const char *summary, const uint64_t *seqs, size_t n_seqs,
              const char *matched, const char *query, const char *unavailable)
{
    if (rep->n == rep->cap) {
        size_t cap = rep->cap ? 2 * rep->cap : 16;
        audit_finding *nf = realloc(rep->f, cap * sizeof *nf);
        if (!nf)
            return PTB_ENOMEM;
        rep->f = nf;
        rep->cap = cap;
    }
    audit_finding *f = &rep->f[rep->n];
    memset(f, 0, sizeof *f);
    f->verdict = v;
    f->confidence = confidence < 0 ? 0 : confidence > 1 ? 1 : confidence;
    f->detector = dup_or_null(detector);
    f->rule = dup_or_null(rule);
    f->summary = dup_or_null(summary);
    f->matched = dup_or_null(matched);
    f->query = dup_or_null(query);
    f->unavailable = dup_or_null(unavailable);
    if (n_seqs && (f->seqs = malloc(n_seqs * sizeof *seqs))) {
        memcpy(f->seqs, seqs, n_seqs * sizeof *seqs);
        f->n_seqs = n_seqs;
        qsort(f->seqs, n_seqs, sizeof *f->seqs, cmp_u64); /* evidence in store order */
    }
    rep->n++;
    bool oom = !f->detector || !f->rule || !f->summary || (matched && !f->matched) ||
               (query && !f->query) || (unavailable && !f->unavailable) || (n_seqs && !f->seqs);
    if (oom) {
        rep->n--;
        free(f->detector), free(f->rule), free(f->summary), free(f->matched), free(f->query),
            free(f->unavailable), free(f->seqs);
        return PTB_ENOMEM;
    }
    return 0;
}

int audit_add_blob(audit_report *rep, const uint8_t sha256[32])
{
    if (!rep->n)
        return PTB_EINVAL;
    audit_finding *f = &rep->f[rep->n - 1];
    char **nb = realloc(f->blobs, (f->n_blobs + 1) * sizeof *nb);
    if (!nb)
        return PTB_ENOMEM;
    f->blobs = nb;
    if (!(nb[f->n_blobs] = malloc(65)))
        return PTB_ENOMEM;
    for (int i = 0; i < 32; i++)
        snprintf(nb[f->n_blobs] + 2 * i, 3, "%02x", sha256[i]);
    f->n_blobs++;
    return 0;
}

void audit_report_free(audit_report *rep)
{
    for (size_t i = 0; i < rep->n; i++) {
        audit_finding *f = &rep->f[i];
        free(f->detector), free(f->rule), free(f->summary), free(f->matched), free(f->query),
            free(f->unavailable), free(f->seqs);
        for (size_t b = 0; b < f->n_blobs; b++)
            free(f->blobs[b]);
        free(f->blobs);
    }
    free(rep->f);
    memset(rep, 0, sizeof *rep);
}

audit_verdict audit_report_verdict(const audit_report *rep)
{
    audit_verdict v = AUDIT_CLEAN;
    for (size_t i = 0; i < rep->n; i++)
        if (rep->f[i].verdict > v)
            v = rep->f[i].verdict;
    return v;
}

audit_verdict audit_report_detector_verdict(const audit_report *rep, const char *detector,
                                            bool *ran)
{
    audit_verdict v = AUDIT_CLEAN;
    *ran = false;
    for (size_t i = 0; i < rep->n; i++)
        if (!strcmp(rep->f[i].detector, detector)) {
            *ran = true;
            if (rep->f[i].verdict > v)
                v = rep->f[i].verdict;
        }
    return v;
}

/* ------------------------------------------------------------------ the run's context */

static uint64_t type_count(store_txn *t, uint32_t body_case)
{
    uint64_t n = 0;
    store_index_count(t, STORE_IX_TYPE, store_type_key(body_case), &n);
    return n;
}

/* The task file's members the audit needs (paths relative to the task's folder). */
static char *task_path_member(json_t *task, const char *task_path, const char *a, const char *b)
{
    json_t *v = json_object_get(task, a);
    if (b)
        v = json_object_get(v, b);
    const char *s = json_string_value(v);
    if (!s)
        return NULL;
    if (s[0] == '/')
        return strdup(s);
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", task_path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    char *out = NULL;
    return asprintf(&out, "%s/%s", dir, s) < 0 ? NULL : out;
}

bool audit_is_harness(const audit_run *r, uint64_t exec_id)
{
    for (size_t i = 0; exec_id && i < r->n_harness; i++)
        if (r->harness_execs[i] == exec_id)
            return true;
    return false;
}

int audit_run_open(audit_run *r, const char *store_path, const audit_options *o, ptb_errbuf *eb)
{
    memset(r, 0, sizeof *r);
    r->o = o;
    if (!(r->store_path = strdup(store_path)))
        return ptb_errf(eb, PTB_ENOMEM, "out of memory");
    int rc = store_open(store_path, NULL, STORE_RDONLY, &r->s);
    if (!rc)
        rc = store_txn_begin(r->s, &r->t);
    if (rc) {
        audit_run_close(r);
        return ptb_errf(eb, rc, "%s: %s", store_path, ptb_strerror(rc));
    }
    r->n_exec = type_count(r->t, PTB__V1__EVENT__BODY_PROC_EXEC);
    r->n_file = type_count(r->t, PTB__V1__EVENT__BODY_FILE_WRITE) +
                type_count(r->t, PTB__V1__EVENT__BODY_FILE_OPEN);
    r->n_net = type_count(r->t, PTB__V1__EVENT__BODY_NET_FLOW) +
               type_count(r->t, PTB__V1__EVENT__BODY_NET_CONNECT) +
               type_count(r->t, PTB__V1__EVENT__BODY_NET_TLS);
    r->n_tool = type_count(r->t, PTB__V1__EVENT__BODY_TOOL_CALL);
    r->n_gpu = type_count(r->t, PTB__V1__EVENT__BODY_GPU_KERNEL_BATCH) +
               type_count(r->t, PTB__V1__EVENT__BODY_GPU_KERNEL);
    /* run.start (the task), run.phase (the agent phase), checkpoint (the frozen one) */
    const uint32_t kinds[] = {PTB__V1__EVENT__BODY_RUN_START, PTB__V1__EVENT__BODY_RUN_PHASE,
                              PTB__V1__EVENT__BODY_CHECKPOINT};
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds && !rc; k++) {
        store_range rg = {
            .by_index = true, .index = STORE_IX_TYPE, .key = store_type_key(kinds[k])};
        store_cursor *cur;
        if ((rc = store_cursor_open(r->t, &rg, &cur)))
            break;
        const ptb_event *ev;
        while (store_cursor_next(cur, &ev) == 0) {
            if (ev->body_case == PTB__V1__EVENT__BODY_RUN_START && !r->task_path &&
                ev->run_start->task && *ev->run_start->task)
                r->task_path = strdup(ev->run_start->task);
            else if (ev->body_case == PTB__V1__EVENT__BODY_RUN_PHASE && ev->run_phase->phase &&
                     !strcmp(ev->run_phase->phase, "agent")) {
                if (ev->run_phase->state && !strcmp(ev->run_phase->state, "begin"))
                    r->agent_begin = ev->seq;
                else
                    r->agent_end = ev->seq;
            } else if (ev->body_case == PTB__V1__EVENT__BODY_CHECKPOINT &&
                       (ev->source == PTB__V1__SOURCE__SOURCE_RUNNER ||
                        ev->source == PTB__V1__SOURCE__SOURCE_IMPORT)) {
                /* ptb run's frozen checkpoint, or an imported folder's final_model/ */
                r->checkpoint_seq = ev->seq;
                free(r->checkpoint_dir);
                r->checkpoint_dir = dup_or_null(ev->checkpoint->path);
            }
        }
        store_cursor_close(cur);
    }
    if (rc) {
        audit_run_close(r);
        return ptb_errf(eb, rc, "%s: %s", store_path, ptb_strerror(rc));
    }
    /* the harness: the first execve after the agent phase began */
    store_range rg = {.by_index = true,
                      .index = STORE_IX_TYPE,
                      .key = store_type_key(PTB__V1__EVENT__BODY_PROC_EXEC)};
    store_cursor *cur;
    if (r->agent_begin && store_cursor_open(r->t, &rg, &cur) == 0) {
        const ptb_event *ev;
        int pid = 0;
        while (store_cursor_next(cur, &ev) == 0) {
            if (ev->seq <= r->agent_begin || (r->agent_end && ev->seq > r->agent_end) ||
                ev->proc_exec->first_seen)
                continue;
            if (!r->harness_exec) {
                r->harness_exec = ev->exec_id;
                pid = ev->proc_exec->pid;
            }
            /* the same process's execve chain (its parent the exec it was before) */
            if (ev->proc_exec->pid == pid && r->n_harness < 16 &&
                (r->n_harness == 0 ||
                 ev->proc_exec->parent_exec_id == r->harness_execs[r->n_harness - 1]))
                r->harness_execs[r->n_harness++] = ev->exec_id;
        }
        store_cursor_close(cur);
    }
    /* the task file: the test split and base model it names */
    json_error_t je;
    json_t *task = r->task_path ? json_load_file(r->task_path, 0, &je) : NULL;
    r->test_split = o && o->test_set ? strdup(o->test_set)
                    : task ? task_path_member(task, r->task_path, "benchmark", "test_split")
                           : NULL;
    r->base_model = o && o->base ? strdup(o->base)
                    : task       ? task_path_member(task, r->task_path, "base_model", NULL)
                                 : NULL;
    json_decref(task);
    /* RUN/final_model: beside the store when the store is RUN/run.ptb */
    char fz[PATH_MAX + 32];
    snprintf(fz, sizeof fz, "%s", store_path);
    char *slash = strrchr(fz, '/');
    if (slash)
        snprintf(slash + 1, sizeof fz - (size_t)(slash + 1 - fz), "final_model");
    else
        snprintf(fz, sizeof fz, "final_model");
    struct stat st;
    if (stat(fz, &st) == 0 && S_ISDIR(st.st_mode))
        r->frozen_dir = strdup(fz);
    /* ... or beside the workspace the checkpoint event names (ptb run --store elsewhere) */
    const char *ws_fm = "/workspace/final_model";
    size_t l = r->checkpoint_dir ? strlen(r->checkpoint_dir) : 0;
    if (!r->frozen_dir && l > strlen(ws_fm) &&
        !strcmp(r->checkpoint_dir + l - strlen(ws_fm), ws_fm)) {
        snprintf(fz, sizeof fz, "%.*s/final_model", (int)(l - strlen(ws_fm)), r->checkpoint_dir);
        if (stat(fz, &st) == 0 && S_ISDIR(st.st_mode))
            r->frozen_dir = strdup(fz);
    }
    return 0;
}

void audit_run_close(audit_run *r)
{
    if (r->t)
        store_txn_end(r->t);
    if (r->s)
        store_close(r->s);
    free(r->store_path);
    free(r->task_path);
    free(r->test_split);
    free(r->base_model);
    free(r->checkpoint_dir);
    free(r->frozen_dir);
    memset(r, 0, sizeof *r);
}
