/* Studies (`ptb study`, docs/commands/ptb-study.md, schemas/study.schema.json): a grid of
 * `ptb run`s (tasks x agents x repeats), each followed by `ptb audit`, run here one by one or
 * submitted to Slurm as one job array. ptb schedules nothing itself.
 *
 * The study folder OUT (a shared filesystem path on a cluster):
 *   OUT/study.json          the expanded plan (study_plan_write): runs, resources, scoring, and
 *                           plan_sha256 = SHA-256 over the runs and their task specs' bytes
 *   OUT/study.lock          flock'd (exclusive, non-blocking) by a ptb study that submits or runs
 *   OUT/specs/TASK.AGENT.json  the task spec each run gets (paths absolute, the study's agent)
 *   OUT/runs/ID/            ptb run's --out (ID = TASK.AGENT.rN); its store OUT/runs/ID/run.ptb
 *                           unless the study names a stores folder (then STORES/ID.ptb)
 *   OUT/audit/ID.json       ptb audit --format json of the run's store
 *   OUT/results/ID.json     the marker, written atomically at the end of each attempt: status
 *                           done | failed | killed, exit codes, host, Slurm job, times
 *   OUT/results/ID.lock     flock'd by the attempt running the run
 *   OUT/attempts/ID.N/      an unfinished attempt's run folder (and store), set aside before a
 *                           run is tried again
 *   OUT/slurm/array.sh, OUT/slurm/todo-K.txt (run ids, line i = array task i),
 *   OUT/slurm/jobs.json (every submitted array), OUT/slurm/%A_%a.log */
#ifndef PTB_STUDY_H
#define PTB_STUDY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "ptb_error.h"

#define STUDY_MAX_RUNS 100000

/* One run of the grid. */
typedef struct study_run {
    char *id;        /* TASK.AGENT.rN: letters, digits, '.', '_', '-' */
    char *task;      /* the task name */
    char *agent;     /* the agent's name */
    unsigned repeat; /* 1.. */
    char *benchmark;
    double weight; /* the task's weight x the benchmark's (scoring.weights) */
    char *spec;    /* absolute path of OUT/specs/... */
} study_run;

typedef struct study {
    char *name;
    char *out;    /* absolute */
    char *stores; /* absolute folder of the stores, or NULL (OUT/runs/ID/run.ptb) */
    study_run *runs;
    size_t n;
    char plan_sha256[65];
    /* resources of each array task */
    unsigned gpus, cpus, throttle;
    char *mem, *partition, *account, *qos, *gres; /* NULL when not given */
    char **extra_sbatch;                          /* NULL-terminated or NULL */
    int64_t time_margin_s, time_limit_s; /* time_limit_s: the longest run's budget + kill_after
                                            + eval budget, + the margin */
    /* scoring */
    char *on_violation, *on_suspicious; /* "zero", "exclude" or "keep" */
    json_t *plan;                       /* the plan as written to OUT/study.json */
} study;

/* Read STUDY.json, check it (every error names its JSON path: "study.json: $.tasks[1].weight:
 * must be a number > 0"), load each task spec (task_spec_load), expand the grid and write the
 * specs under out (created). out_override (may be NULL) replaces the study's "out". 0,
 * PTB_EPARSE (a bad study or task spec), -errno, PTB_ENOMEM; eb says why. */
int study_load(const char *path, const char *out_override, study *st, ptb_errbuf *eb);

/* Read OUT/study.json back (what status, report and exec use). */
int study_open(const char *out, study *st, ptb_errbuf *eb);

void study_free(study *st);

/* Write OUT/study.json (atomically). PTB_EEXIST when OUT holds another study (a different
 * plan_sha256): two studies writing to the same place are refused. */
int study_plan_write(const study *st, ptb_errbuf *eb);

/* Take OUT/study.lock (flock, exclusive, not waiting): *fd is held until closed. PTB_ELOCKED
 * when another ptb study holds it. */
int study_lock(const char *out, int *fd, ptb_errbuf *eb);

/* Paths of run r (into buffers of PATH_MAX). */
void study_run_dir(const study *st, const study_run *r, char *out, size_t cap);
void study_run_store(const study *st, const study_run *r, char *out, size_t cap);
void study_run_file(const study *st, const study_run *r, const char *folder, char *out,
                    size_t cap); /* OUT/folder/ID.json */

/* The marker OUT/results/ID.json (NULL when none; caller json_decref's) and its status. */
json_t *study_result(const study *st, const study_run *r);
const char *study_result_status(json_t *res); /* "done", "failed", "killed" or NULL */

/* Run r now: set aside an unfinished earlier attempt, `ptb run` then `ptb audit`, the marker.
 * SIGTERM (Slurm's time limit, scancel, preemption) is passed on to ptb run and ends the
 * attempt as killed. self: the ptb binary. Returns the marker's status as 0 (done), 1 (failed),
 * 2 (killed), or a negative code when the attempt could not even start. */
int study_exec_run(const study *st, const study_run *r, const char *self, ptb_errbuf *eb);

/* Whether an attempt of run r holds its lock OUT/results/ID.lock now (study_exec_run holds it
 * while it runs: a second attempt of the same run is refused, PTB_ELOCKED). */
bool study_run_busy(const study *st, const study_run *r);

/* What Slurm says of each run (the latest array that held it): state, reason and job
 * "ARRAY_TASK", or "" when Slurm does not know it (never submitted, or forgotten: squeue, then
 * sacct where it works). Arrays of n strings each of 64 bytes. */
int study_slurm_states(const study *st, char (*state)[64], char (*reason)[64], char (*job)[64]);

/* Submit the runs in todo[0..n) as one job array (sbatch --array=0-(n-1)%throttle
 * --no-requeue ...); dry_run: print the command instead. *jobid (64 bytes) the array's id. */
int study_slurm_submit(const study *st, const size_t *todo, size_t n, const char *self,
                       bool dry_run, char *jobid, ptb_errbuf *eb);

#endif
