/* Running a study's runs (study.h): one run here (`ptb run`, then `ptb audit`, then the marker,
 * what each Slurm array task does through `ptb study exec`), the job array submitted with
 * sbatch, and Slurm's view of it read back with squeue (sacct where squeue has forgotten). */
#include "study.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "event_type.h"
#include "store.h"

/* ------------------------------------------------------------------ children */

static volatile sig_atomic_t sx_term; /* SIGTERM/SIGINT seen (Slurm: time limit, scancel) */
static volatile pid_t sx_child;

static void sx_on_term(int sig)
{
    sx_term = sig;
    if (sx_child > 0)
        kill(sx_child, SIGTERM);
}

/* Run argv; its status as waitpid gives it (-errno when it could not start). out_fd >= 0:
 * its stdout. */
static int sx_spawn(char *const argv[], int out_fd)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        if (out_fd >= 0)
            dup2(out_fd, 1);
        execvp(argv[0], argv);
        fprintf(stderr, "ptb study: %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    sx_child = pid;
    if (sx_term) /* a signal that came before the child's pid was known */
        kill(pid, SIGTERM);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) {
            sx_child = 0;
            return -errno;
        }
    sx_child = 0;
    return st;
}

/* Run argv and keep its stdout (at most 64 MiB, malloc'd into *out); its exit status, or -1 when
 * it did not exit normally, -errno when it could not start; quiet: its stderr to /dev/null. */
static int sx_capture(char *const argv[], bool quiet, char **out)
{
    *out = NULL;
    char tmpl[] = "/tmp/ptb-study-out-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0)
        return -errno;
    unlink(tmpl);
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    int saved = dup(2);
    if (devnull >= 0 && quiet)
        dup2(devnull, 2); /* squeue's "Invalid job id" is ours to interpret */
    int st = sx_spawn(argv, fd);
    dup2(saved, 2);
    close(saved);
    if (devnull >= 0)
        close(devnull);
    off_t len = lseek(fd, 0, SEEK_END);
    if (len > 64 << 20)
        len = 64 << 20;
    if (len >= 0 && (*out = malloc((size_t)len + 1))) {
        ssize_t n = pread(fd, *out, (size_t)len, 0);
        (*out)[n > 0 ? n : 0] = 0;
    }
    close(fd);
    if (st < 0)
        return st;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ------------------------------------------------------------------ one run */

static void sx_iso_now(char *buf, size_t cap)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* the store of a run that ptb run did not end: run.end appended, saying how it ended (the store
 * holds every batch committed before the kill: DESIGN.md) */
static void sx_end_store(const char *path, const char *reason, int code)
{
    store *s = NULL;
    store_options so;
    store_options_default(&so);
    if (access(path, F_OK) || store_open(path, &so, 0, &s)) {
        store_close(s);
        return;
    }
    store_txn *t;
    bool ended = false;
    if (!store_txn_begin(s, &t)) {
        store_range r = {.by_index = true,
                         .index = STORE_IX_TYPE,
                         .key = store_type_key(PTB__V1__EVENT__BODY_RUN_END)};
        store_cursor *cur;
        uint64_t seq;
        if (!store_cursor_open(t, &r, &cur)) {
            ended = store_cursor_next_seq(cur, &seq) == 0;
            store_cursor_close(cur);
        }
        store_txn_end(t);
    }
    if (!ended) {
        Ptb__V1__RunEnd re = PTB__V1__RUN_END__INIT;
        re.exit_code = code;
        re.reason = (char *)reason;
        ptb_event ev = PTB__V1__EVENT__INIT;
        ev.source = PTB__V1__SOURCE__SOURCE_RUNNER;
        ev.body_case = PTB__V1__EVENT__BODY_RUN_END;
        ev.run_end = &re;
        store_append(s, &ev, 0, NULL);
    }
    store_close(s);
}

/* an earlier attempt's folder, store, marker and audit set aside as OUT/attempts/ID.N* */
static int sx_set_aside(const study *st, const study_run *r, int *attempt)
{
    char dir[PATH_MAX], sto[PATH_MAX], res[PATH_MAX], aud[PATH_MAX], dst[PATH_MAX + 64];
    study_run_dir(st, r, dir, sizeof dir);
    study_run_store(st, r, sto, sizeof sto);
    study_run_file(st, r, "results", res, sizeof res);
    study_run_file(st, r, "audit", aud, sizeof aud);
    bool any = !access(dir, F_OK) || !access(sto, F_OK) || !access(res, F_OK);
    int n = 1;
    for (;; n++) {
        snprintf(dst, sizeof dst, "%s/attempts/%s.%d", st->out, r->id, n);
        if (access(dst, F_OK) && errno == ENOENT)
            break;
    }
    *attempt = any ? n + 1 : 1;
    if (!any)
        return 0;
    if (mkdir(dst, 0755))
        return -errno;
    const char *src[] = {dir, st->stores ? sto : NULL, res, aud};
    const char *name[] = {"run", "run.ptb", "result.json", "audit.json"};
    for (int i = 0; i < 4; i++) {
        char to[PATH_MAX + 80];
        snprintf(to, sizeof to, "%s/%s", dst, name[i]);
        if (src[i] && rename(src[i], to) && errno != ENOENT)
            return -errno;
    }
    return 0;
}

static const char *sx_env(const char *name)
{
    const char *v = getenv(name);
    return v ? v : "";
}

bool study_run_busy(const study *st, const study_run *r)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/results/%s.lock", st->out, r->id);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool held = flock(fd, LOCK_SH | LOCK_NB) != 0;
    close(fd);
    return held;
}

/* OUT/results/ID.lock, held (flock) for the whole attempt: one attempt of a run at a time,
 * whoever starts it (a local ptb study, a Slurm task, a scheduler that restarts jobs) */
static int sx_run_lock(const study *st, const study_run *r, int *fd, ptb_errbuf *eb)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/results/%s.lock", st->out, r->id);
    if ((*fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0)
        return ptb_errf(eb, -errno, "%s: %s", p, strerror(errno));
    if (flock(*fd, LOCK_EX | LOCK_NB) == 0)
        return 0;
    int e = errno;
    close(*fd);
    *fd = -1;
    return e == EWOULDBLOCK
               ? ptb_errf(eb, PTB_ELOCKED, "%s: another attempt of this run is running", r->id)
               : ptb_errf(eb, -e, "%s: %s", p, strerror(e));
}

static int sx_exec_locked(const study *st, const study_run *r, const char *self, ptb_errbuf *eb);

int study_exec_run(const study *st, const study_run *r, const char *self, ptb_errbuf *eb)
{
    int fd, rc = sx_run_lock(st, r, &fd, eb);
    if (rc)
        return rc;
    rc = sx_exec_locked(st, r, self, eb);
    close(fd);
    return rc;
}

static int sx_exec_locked(const study *st, const study_run *r, const char *self, ptb_errbuf *eb)
{
    json_t *old = study_result(st, r);
    bool done = old && study_result_status(old) && !strcmp(study_result_status(old), "done");
    json_decref(old);
    if (done)
        return 0;
    int attempt, rc = sx_set_aside(st, r, &attempt);
    if (rc)
        return ptb_errf(eb, rc, "%s: cannot set the earlier attempt aside: %s", r->id,
                        strerror(-rc));
    char dir[PATH_MAX], sto[PATH_MAX], aud[PATH_MAX], res[PATH_MAX], started[32], ended[32];
    study_run_dir(st, r, dir, sizeof dir);
    study_run_store(st, r, sto, sizeof sto);
    study_run_file(st, r, "audit", aud, sizeof aud);
    study_run_file(st, r, "results", res, sizeof res);
    sx_iso_now(started, sizeof started);
    struct sigaction sa = {.sa_handler = sx_on_term}, old_term, old_int;
    sigemptyset(&sa.sa_mask);
    sx_term = 0;
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGINT, &sa, &old_int);
    fprintf(stderr, "ptb study: %s: ptb run %s (attempt %d)\n", r->id, r->spec, attempt);
    char *run_argv[] = {(char *)self, "run",     r->spec, "--out", dir,
                        "--quiet",    "--store", sto,     NULL};
    if (!st->stores)
        run_argv[6] = NULL;
    int rs = sx_spawn(run_argv, -1);
    int run_exit = rs >= 0 && WIFEXITED(rs) ? WEXITSTATUS(rs) : -1;
    int run_sig = rs >= 0 && WIFSIGNALED(rs) ? WTERMSIG(rs) : 0;
    int audit_exit = -1;
    if (!sx_term && run_exit == 0) {
        char *audit_argv[] = {(char *)self, "audit", sto, "--format", "json", "--out", aud, NULL};
        int as = sx_spawn(audit_argv, -1);
        audit_exit = as >= 0 && WIFEXITED(as) ? WEXITSTATUS(as) : -1;
    }
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGINT, &old_int, NULL);
    const char *status = sx_term ? "killed"
                         : run_exit == 0 && (audit_exit == 0 || audit_exit == 1 || audit_exit == 6)
                             ? "done"
                             : "failed";
    char why[256], sj[96] = "";
    if (*sx_env("SLURM_ARRAY_JOB_ID"))
        snprintf(sj, sizeof sj, " in Slurm job %.30s_%.30s", sx_env("SLURM_ARRAY_JOB_ID"),
                 sx_env("SLURM_ARRAY_TASK_ID"));
    else if (*sx_env("SLURM_JOB_ID"))
        snprintf(sj, sizeof sj, " in Slurm job %.30s", sx_env("SLURM_JOB_ID"));
    if (sx_term)
        snprintf(why, sizeof why, "killed: %s%s (a time limit, scancel or preemption)",
                 strsignal(sx_term), sj);
    else if (run_sig)
        snprintf(why, sizeof why, "ptb run ended by %s", strsignal(run_sig));
    else if (run_exit)
        snprintf(why, sizeof why, "ptb run exit %d", run_exit);
    else if (strcmp(status, "done"))
        snprintf(why, sizeof why, "ptb audit exit %d", audit_exit);
    else
        snprintf(why, sizeof why, "ok");
    if (sx_term || run_sig)
        sx_end_store(sto, why, 128 + (sx_term ? (int)sx_term : run_sig));
    sx_iso_now(ended, sizeof ended);
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    json_t *m = json_pack(
        "{s:i,s:s,s:s,s:s,s:i,s:i,s:i,s:s,s:s,s:s,s:i,s:s,s:s,s:s,s:s}", "version", 1, "run", r->id,
        "plan_sha256", st->plan_sha256, "status", status, "run_exit", run_exit, "run_signal",
        run_sig, "audit_exit", audit_exit, "reason", why, "started", started, "ended", ended,
        "attempt", attempt, "host", host, "slurm_job_id", sx_env("SLURM_JOB_ID"), "slurm_array",
        sx_env("SLURM_ARRAY_JOB_ID"), "slurm_task", sx_env("SLURM_ARRAY_TASK_ID"));
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", res, (int)getpid());
    rc = !m || json_dump_file(m, tmp, JSON_INDENT(2) | JSON_SORT_KEYS) || rename(tmp, res)
             ? (errno ? -errno : PTB_EIO)
             : 0;
    json_decref(m);
    if (rc) {
        unlink(tmp);
        return ptb_errf(eb, rc, "%s: %s", res, strerror(-rc));
    }
    fprintf(stderr, "ptb study: %s: %s (%s)\n", r->id, status, why);
    return sx_term ? 2 : strcmp(status, "done") ? 1 : 0;
}

/* ------------------------------------------------------------------ Slurm */

static json_t *sx_jobs(const study *st)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/slurm/jobs.json", st->out);
    json_error_t je;
    json_t *j = json_load_file(p, 0, &je);
    if (!json_is_array(json_object_get(j, "jobs"))) {
        json_decref(j);
        j = json_pack("{s:[]}", "jobs");
    }
    return j;
}

typedef struct sx_idx {
    const char *id;
    size_t i;
} sx_idx;

static int sx_idx_cmp(const void *a, const void *b)
{
    return strcmp(((const sx_idx *)a)->id, ((const sx_idx *)b)->id);
}

int study_slurm_states(const study *st, char (*state)[64], char (*reason)[64], char (*job)[64])
{
    for (size_t i = 0; i < st->n; i++)
        state[i][0] = reason[i][0] = job[i][0] = 0;
    json_t *jobs = sx_jobs(st);
    sx_idx *ix = malloc((st->n ? st->n : 1) * sizeof *ix);
    if (!ix) {
        json_decref(jobs);
        return PTB_ENOMEM;
    }
    for (size_t i = 0; i < st->n; i++)
        ix[i] = (sx_idx){st->runs[i].id, i};
    qsort(ix, st->n, sizeof *ix, sx_idx_cmp);
    json_t *arr = json_object_get(jobs, "jobs");
    for (size_t k = 0; k < json_array_size(arr); k++) {
        json_t *jb = json_array_get(arr, k);
        const char *id = json_string_value(json_object_get(jb, "id")),
                   *list = json_string_value(json_object_get(jb, "list"));
        if (!id || !list)
            continue;
        /* the runs of this array: line i = task i */
        char lp[PATH_MAX + 300];
        snprintf(lp, sizeof lp, "%s/%s", st->out, list);
        FILE *f = fopen(lp, "r");
        if (!f)
            continue;
        size_t cap = 0, nl = 0;
        ssize_t *map = NULL;
        char line[512];
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\n")] = 0;
            if (nl == cap) {
                cap = cap ? cap * 2 : 64;
                ssize_t *nm = realloc(map, cap * sizeof *map);
                if (!nm)
                    break;
                map = nm;
            }
            sx_idx key = {line, 0}, *hit = bsearch(&key, ix, st->n, sizeof *ix, sx_idx_cmp);
            map[nl++] = hit ? (ssize_t)hit->i : -1;
        }
        fclose(f);
        char *outp = NULL;
        char *sq[] = {"squeue", "-h", "-r", "-t", "all", "-j", (char *)id, "-o", "%K|%T|%r", NULL};
        int rc = sx_capture(sq, true, &outp);
        bool sacct = false;
        if (rc != 0 || !outp || !*outp) { /* forgotten by slurmctld: accounting, if any */
            free(outp);
            char *sa[] = {"sacct", "-n", "-P", "-X", "-j", (char *)id, "--format=JobID,State",
                          NULL};
            rc = sx_capture(sa, true, &outp);
            sacct = rc == 0;
        }
        for (char *save = NULL, *l = rc == 0 && outp ? strtok_r(outp, "\n", &save) : NULL; l;
             l = strtok_r(NULL, "\n", &save)) {
            char *f1 = l, *f2 = strchr(l, '|'), *f3;
            if (!f2)
                continue;
            *f2++ = 0;
            if ((f3 = strchr(f2, '|')))
                *f3++ = 0;
            if (sacct) { /* JobID = ARRAY_TASK; State may be "CANCELLED by 0" */
                char *us = strchr(f1, '_');
                if (!us)
                    continue;
                f1 = us + 1;
                f2[strcspn(f2, " ")] = 0;
            }
            char *end;
            unsigned long t = strtoul(f1, &end, 10);
            if (*end || end == f1 || t >= nl || map[t] < 0)
                continue;
            size_t i = (size_t)map[t];
            snprintf(state[i], 64, "%s", f2);
            snprintf(reason[i], 64, "%s", f3 && strcmp(f3, "None") ? f3 : "");
            snprintf(job[i], 64, "%s_%lu", id, t);
        }
        free(outp);
        free(map);
    }
    free(ix);
    json_decref(jobs);
    return 0;
}

static void sx_shell_quote(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++)
        if (*s == '\'')
            fputs("'\\''", f);
        else
            fputc(*s, f);
    fputc('\'', f);
}

int study_slurm_submit(const study *st, const size_t *todo, size_t n, const char *self,
                       bool dry_run, char *jobid, ptb_errbuf *eb)
{
    json_t *jobs = sx_jobs(st);
    size_t k = json_array_size(json_object_get(jobs, "jobs"));
    char list[PATH_MAX], script[PATH_MAX], tmp[PATH_MAX + 32], logs[PATH_MAX];
    snprintf(list, sizeof list, "%s/slurm/todo-%zu.txt", st->out, k);
    snprintf(script, sizeof script, "%s/slurm/array.sh", st->out);
    snprintf(logs, sizeof logs, "%s/slurm/%%A_%%a.log", st->out);
    int rc = 0;
    FILE *f = dry_run ? NULL : fopen(list, "w");
    for (size_t i = 0; f && i < n; i++)
        fprintf(f, "%s\n", st->runs[todo[i]].id);
    if (!dry_run && (!f || fclose(f)))
        rc = ptb_errf(eb, -errno, "%s: %s", list, strerror(errno));
    snprintf(tmp, sizeof tmp, "%s.tmp", script);
    if (!rc && !dry_run && !(f = fopen(tmp, "w")))
        rc = ptb_errf(eb, -errno, "%s: %s", tmp, strerror(errno));
    if (!rc && !dry_run) {
        fprintf(f, "#!/bin/sh\n# written by ptb study (docs/commands/ptb-study.md): array task "
                   "$SLURM_ARRAY_TASK_ID runs\n# the run on line $SLURM_ARRAY_TASK_ID + 1 of the "
                   "list given as $1: ptb run, then ptb audit\n"
                   "id=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" \"$1\")\n"
                   "[ -n \"$id\" ] || { echo \"ptb study: no run $SLURM_ARRAY_TASK_ID in $1\" "
                   ">&2; exit 2; }\nexec ");
        sx_shell_quote(f, self);
        fprintf(f, " study exec ");
        sx_shell_quote(f, st->out);
        fprintf(f, " \"$id\" --plan %s\n", st->plan_sha256);
        if (fclose(f) || chmod(tmp, 0755) || rename(tmp, script))
            rc = ptb_errf(eb, -errno, "%s: %s", script, strerror(errno));
    }
    /* sbatch's command line */
    char *av[64];
    char bufs[16][PATH_MAX + 64];
    int na = 0, nb = 0;
    av[na++] = "sbatch";
    av[na++] = "--parsable";
    snprintf(bufs[nb], sizeof bufs[nb], "--job-name=ptb-%s", st->name);
    av[na++] = bufs[nb++];
    if (st->throttle)
        snprintf(bufs[nb], sizeof bufs[nb], "--array=0-%zu%%%u", n - 1, st->throttle);
    else
        snprintf(bufs[nb], sizeof bufs[nb], "--array=0-%zu", n - 1);
    av[na++] = bufs[nb++];
    av[na++] = "--no-requeue";
    snprintf(bufs[nb], sizeof bufs[nb], "--time=%lld", (long long)((st->time_limit_s + 59) / 60));
    av[na++] = bufs[nb++];
    snprintf(bufs[nb], sizeof bufs[nb], "--cpus-per-task=%u", st->cpus ? st->cpus : 1);
    av[na++] = bufs[nb++];
    const char *opt[] = {"--mem=", "--partition=", "--account=", "--qos=", "--gres="};
    const char *val[] = {st->mem, st->partition, st->account, st->qos, st->gres};
    char gres[32];
    if (!st->gres && st->gpus) {
        snprintf(gres, sizeof gres, "gpu:%u", st->gpus);
        val[4] = gres;
    }
    for (int i = 0; i < 5; i++)
        if (val[i]) {
            snprintf(bufs[nb], sizeof bufs[nb], "%s%s", opt[i], val[i]);
            av[na++] = bufs[nb++];
        }
    for (size_t i = 0; st->extra_sbatch && st->extra_sbatch[i] && na < 58; i++) /* <= 32 */
        av[na++] = st->extra_sbatch[i];
    snprintf(bufs[nb], sizeof bufs[nb], "--output=%s", logs);
    av[na++] = bufs[nb++];
    av[na++] = script;
    av[na++] = list;
    av[na] = NULL;
    if (rc) {
        json_decref(jobs);
        return rc;
    }
    if (dry_run) {
        for (int i = 0; i < na; i++) {
            if (i)
                fputc(' ', stdout);
            sx_shell_quote(stdout, av[i]);
        }
        fputc('\n', stdout);
        snprintf(jobid, 64, "dry-run");
        json_decref(jobs);
        return 0;
    }
    char *out = NULL;
    int xs = sx_capture(av, false, &out);
    if (xs != 0 || !out || !*out || (out[0] < '0' || out[0] > '9')) {
        rc = ptb_errf(eb, PTB_EIO, "sbatch %s (%s): the array was not submitted",
                      xs < 0 ? "could not run" : "failed",
                      xs == 127 ? "not found"
                                : "its "
                                  "message is above");
        free(out);
        json_decref(jobs);
        return rc;
    }
    out[strspn(out, "0123456789")] = 0; /* "ID" or "ID;CLUSTER" */
    snprintf(jobid, 64, "%s", out);
    free(out);
    char when[32], rel[64];
    sx_iso_now(when, sizeof when);
    snprintf(rel, sizeof rel, "slurm/todo-%zu.txt", k);
    json_array_append_new(json_object_get(jobs, "jobs"),
                          json_pack("{s:s,s:s,s:I,s:s}", "id", jobid, "list", rel, "runs",
                                    (json_int_t)n, "submitted", when));
    char jp[PATH_MAX];
    snprintf(jp, sizeof jp, "%s/slurm/jobs.json", st->out);
    snprintf(tmp, sizeof tmp, "%s.tmp", jp);
    if (json_dump_file(jobs, tmp, JSON_INDENT(2)) || rename(tmp, jp))
        rc = ptb_errf(eb, PTB_EIO, "%s: cannot record job %s (submitted)", jp, jobid);
    json_decref(jobs);
    return rc;
}
