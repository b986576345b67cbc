/* `ptb audit`: detectors that read one run's store and give findings with evidence
 * (DESIGN.md, Forensics; schemas/audit-report.schema.json).
 *
 *   audit_run r;  audit_run_open(&r, "RUN.ptb", &opts, &eb);   // the run's context
 *   audit_report rep = {0};
 *   audit_keys(&r, &rep);  audit_leak(&r, &rep);  audit_ckpt(&r, &rep);   // one file each
 *   audit_report_json(&rep, ...);  audit_report_free(&rep);  audit_run_close(&r);
 *
 * A finding: rule id ("keys.canary_used", "leak.test_split_fetched", ...), verdict, confidence,
 * a one-line summary, and evidence: event seqs, blob hashes, the matched text or numbers, and
 * the `ptb query` command that shows them. Each detector also says which kinds of evidence the
 * store could not give it (an imported run has no processes, files or packets): `unavailable`.
 * A detector that found nothing adds one finding with verdict clean, so that every rule that ran
 * is in the report. */
#ifndef PTB_AUDIT_H
#define PTB_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ptb_error.h"
#include "store.h"

typedef enum audit_verdict {
    AUDIT_CLEAN = 0,
    AUDIT_SUSPICIOUS = 1,
    AUDIT_VIOLATION = 2,
} audit_verdict;

const char *audit_verdict_name(audit_verdict v); /* "clean", "suspicious", "violation" */

typedef struct audit_finding {
    char *detector; /* "keys", "leak", "ckpt" */
    char *rule;     /* "keys.canary_used" ... */
    audit_verdict verdict;
    double confidence; /* 0..1 */
    char *summary;     /* one line */
    uint64_t *seqs;    /* evidence events */
    size_t n_seqs;
    char **blobs; /* SHA-256 hex of evidence blobs */
    size_t n_blobs;
    char *matched;     /* the matched text or numbers, or NULL */
    char *query;       /* a ptb query command line that shows the evidence, or NULL */
    char *unavailable; /* kinds of evidence the store did not have, or NULL */
} audit_finding;

typedef struct audit_report {
    audit_finding *f;
    size_t n, cap;
} audit_report;

/* Add a finding (every string copied; seqs copied; NULLs allowed). Returns 0 or PTB_ENOMEM. */
int audit_add(audit_report *rep, const char *detector, const char *rule, audit_verdict v,
              double confidence, const char *summary, const uint64_t *seqs, size_t n_seqs,
              const char *matched, const char *query, const char *unavailable);
/* Add a blob (hex) to the last finding. */
int audit_add_blob(audit_report *rep, const uint8_t sha256[32]);
void audit_report_free(audit_report *rep);
/* The worst verdict of the report (clean when empty). */
audit_verdict audit_report_verdict(const audit_report *rep);
/* The worst verdict of one detector's findings ("leak", "keys", "ckpt"); *ran: whether it gave
 * any (clean and false when none). */
audit_verdict audit_report_detector_verdict(const audit_report *rep, const char *detector,
                                            bool *ran);

typedef struct audit_options {
    const char *test_set;          /* --test-set FILE (JSONL prompt/answer|completion), or NULL */
    const char *const *references; /* --reference DIR..., NULL-terminated, or NULL */
    const char *base;              /* --base DIR, or NULL */
    const char *refs_dir; /* ptb refs' folder (references kept by `ptb refs add`), or NULL */
    const char *const *ref_names; /* --ref NAME...: those of refs_dir (NULL-terminated); NULL:
                                   * every one kept there */
    const char *device; /* --device cpu|cuda|auto: where the GPU-capable parts run; NULL: auto */
    unsigned threads;   /* CPU threads a detector may use (0: every core): ptb audit gives each of
                         * the stores it audits at once its share of the cores */
} audit_options;

/* What the detectors need to know about one run, read from its store once. */
typedef struct audit_run {
    store *s;
    store_txn *t;
    char *store_path;
    const audit_options *o;
    /* from run.start and the task file it names (when it still exists), or the options */
    char *task_path;  /* NULL: not a ptb run (recorded with ptb record, or imported) */
    char *test_split; /* the held-out split: --test-set, else the task's; NULL when unknown */
    char *base_model; /* the base checkpoint folder: --base, else the task's; NULL */
    /* the frozen checkpoint: the last `checkpoint` event of source runner (or import: an imported
     * folder's final_model/) */
    uint64_t checkpoint_seq; /* 0: none */
    char *checkpoint_dir;    /* the folder it was hashed in; NULL */
    char *frozen_dir;        /* RUN/final_model next to the store when it exists; NULL */
    /* what kinds of events the store holds at all */
    uint64_t n_exec, n_file, n_net, n_tool, n_gpu;
    uint64_t harness_exec;      /* exec_id of the agent CLI (the first execve of the agent phase);
                            * 0 when unknown */
    uint64_t harness_execs[16]; /* ... and what its process re-execs into (env -> node, a
                                 * shell's exec): the same pid's later execve */
    size_t n_harness;
    uint64_t agent_begin, agent_end; /* seqs of the agent phase's run.phase events (0: none) */
} audit_run;

/* Whether exec_id is the agent CLI (harness_execs). */
bool audit_is_harness(const audit_run *r, uint64_t exec_id);

/* Open the store read-only and fill r. 0, or a PTB_E* code with eb saying why. */
int audit_run_open(audit_run *r, const char *store_path, const audit_options *o, ptb_errbuf *eb);
void audit_run_close(audit_run *r);

/* The detectors (one file each). Each appends its findings; returns 0 or an error (store,
 * memory) with nothing half-added. */
int audit_keys(audit_run *r, audit_report *rep); /* audit_keys.c: API key use */
int audit_leak(audit_run *r, audit_report *rep); /* audit_leak.c: test-set leakage */
int audit_ckpt(audit_run *r, audit_report *rep); /* audit_ckpt.c: checkpoint substitution */

#endif
