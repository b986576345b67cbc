/* Threads and processes of the recorded tree, and the process events.
 *
 * exec_id: every successful execve gives the process a new one (proc.exec read from /proc at the
 * PTRACE_EVENT_EXEC stop: the new image's exe, argv, cwd, ids, environment). A forked child that
 * has not exec'd yet gets one only when it first needs it (its first event other than a
 * successful execve), announced by a proc.exec with first_seen = true: the common fork+exec pair
 * costs one event, and a child that works without exec'ing (a subshell, a Python worker) is
 * still told apart from its parent. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "redact.h"
#include "tracer_int.h"

#define PROC_ARGV_MAX (256u << 10) /* bytes of /proc/PID/cmdline kept */
#define PROC_ENV_MAX (1u << 20)    /* bytes of /proc/PID/environ read */

/* ------------------------------------------------------------------ the thread table */

static size_t slot_of(const tracer *t, pid_t tid)
{
    return ((uint32_t)tid * 2654435761u) & (t->thr_cap - 1);
}

tracer_thread *tracer_thread_find(tracer *t, pid_t tid)
{
    if (!t->thr_cap)
        return NULL;
    for (size_t i = slot_of(t, tid);; i = (i + 1) & (t->thr_cap - 1)) {
        if (!t->thr[i])
            return NULL;
        if (t->thr[i]->tid == tid)
            return t->thr[i];
    }
}

static int table_put(tracer *t, tracer_thread *th)
{
    if ((t->thr_n + 1) * 2 > t->thr_cap) {
        size_t nc = t->thr_cap ? t->thr_cap * 2 : 256;
        tracer_thread **nt = calloc(nc, sizeof *nt);
        if (!nt)
            return PTB_ENOMEM;
        tracer_thread **old = t->thr;
        size_t oc = t->thr_cap;
        t->thr = nt;
        t->thr_cap = nc;
        for (size_t i = 0; i < oc; i++)
            if (old[i]) {
                size_t j = slot_of(t, old[i]->tid);
                while (nt[j])
                    j = (j + 1) & (nc - 1);
                nt[j] = old[i];
            }
        free(old);
    }
    size_t j = slot_of(t, th->tid);
    while (t->thr[j])
        j = (j + 1) & (t->thr_cap - 1);
    t->thr[j] = th;
    t->thr_n++;
    return 0;
}

static void table_del(tracer *t, pid_t tid)
{
    size_t m = t->thr_cap - 1, i = slot_of(t, tid);
    while (t->thr[i] && t->thr[i]->tid != tid)
        i = (i + 1) & m;
    if (!t->thr[i])
        return;
    t->thr[i] = NULL;
    t->thr_n--;
    /* backward shift: re-place the entries of the cluster after the hole */
    for (size_t j = (i + 1) & m; t->thr[j]; j = (j + 1) & m) {
        tracer_thread *e = t->thr[j];
        t->thr[j] = NULL;
        size_t k = slot_of(t, e->tid);
        while (t->thr[k])
            k = (k + 1) & m;
        t->thr[k] = e;
    }
}

/* Tgid and PPid of tid from /proc (0 when unknown). */
static void status_ids(pid_t tid, pid_t *tgid, pid_t *ppid)
{
    *tgid = *ppid = 0;
    char *b;
    size_t n;
    if (tracer_proc_slurp(tid, "status", 64 << 10, &b, &n))
        return;
    const char *s = strstr(b, "\nTgid:");
    if (s)
        *tgid = (pid_t)atoi(s + 6);
    s = strstr(b, "\nPPid:");
    if (s)
        *ppid = (pid_t)atoi(s + 6);
    free(b);
}

static tracer_proc *proc_of_pid(tracer *t, pid_t pid)
{
    tracer_thread *th = tracer_thread_find(t, pid);
    if (th)
        return th->p;
    for (size_t i = 0; i < t->thr_cap; i++) /* the leader is gone: any thread of the group */
        if (t->thr[i] && t->thr[i]->p->pid == pid)
            return t->thr[i]->p;
    return NULL;
}

tracer_thread *tracer_thread_add(tracer *t, pid_t tid)
{
    tracer_thread *th = calloc(1, sizeof *th);
    if (!th)
        return NULL;
    th->tid = tid;
    pid_t tgid, ppid;
    status_ids(tid, &tgid, &ppid);
    tracer_proc *p = tgid && tgid != tid ? proc_of_pid(t, tgid) : NULL;
    if (!p) { /* a new process */
        p = calloc(1, sizeof *p);
        if (!p) {
            free(th);
            return NULL;
        }
        p->pid = tid;
        tracer_proc *parent = ppid ? proc_of_pid(t, ppid) : NULL;
        if (parent) {
            /* find a thread of the parent for the envelope of a first_seen announcement */
            p->parent_exec_id = tracer_proc_id(t, parent);
            p->env_hash = parent->env_hash;
            tracer_fds_clone(p, parent);
        }
        t->r->processes++;
    }
    p->threads++;
    th->p = p;
    if (table_put(t, th)) {
        p->threads--;
        free(th);
        return NULL;
    }
    return th;
}

int tracer_thread_rekey(tracer *t, tracer_thread *th, pid_t tid)
{
    table_del(t, th->tid);
    th->tid = tid;
    return table_put(t, th);
}

void tracer_thread_remove(tracer *t, tracer_thread *th)
{
    table_del(t, th->tid);
    tracer_proc *p = th->p;
    if (th->exiting)
        p->exiting--;
    free(th->path1);
    free(th->path2);
    free(th);
    if (--p->threads == 0) {
        tracer_fds_free(p);
        free(p);
    }
}

/* ------------------------------------------------------------------ events */

void tracer_emit(tracer *t, tracer_thread *th, ptb_event *ev)
{
    if (t->store_err)
        return;
    ev->source = PTB__V1__SOURCE__SOURCE_TRACER;
    if (th) {
        if (!ev->exec_id)
            ev->exec_id = tracer_proc_id(t, th->p);
        ev->tid = (uint32_t)th->tid;
    }
    int rc = store_append(t->s, ev, 0, NULL);
    if (rc) {
        t->store_err = rc;
        ptb_errf(t->eb, rc, "the store stopped: %s", ptb_strerror(rc));
        return;
    }
    t->r->events++;
}

void tracer_gap(tracer *t, tracer_thread *th, uint64_t exec_id, const char *reason,
                const char *path, const char *detail, uint64_t count, uint64_t bytes,
                const uint8_t *sha256)
{
    ptb_event ev = PTB__V1__EVENT__INIT;
    Ptb__V1__Gap g = PTB__V1__GAP__INIT;
    g.origin = (char *)"tracer";
    g.reason = (char *)reason;
    g.path = (char *)(path ? path : "");
    g.detail = (char *)(detail ? detail : "");
    g.count = count;
    g.bytes = bytes;
    if (sha256) {
        g.sha256.data = (uint8_t *)sha256;
        g.sha256.len = 32;
    }
    ev.exec_id = exec_id;
    ev.body_case = PTB__V1__EVENT__BODY_GAP;
    ev.gap = &g;
    tracer_emit(t, th, &ev);
    t->r->gaps++;
}

/* proc.exec of p from /proc: first_seen for a fork's child, else the new image. */
static void announce(tracer *t, tracer_proc *p, pid_t tid, bool first_seen, const char *filename)
{
    ptb_event ev = PTB__V1__EVENT__INIT;
    Ptb__V1__ProcExec pe = PTB__V1__PROC_EXEC__INIT;
    char exe[TRACER_PATH_MAX], cwd[TRACER_PATH_MAX];
    if (tracer_proc_link(p->pid, -1, "exe", exe, sizeof exe))
        exe[0] = 0;
    if (tracer_proc_link(p->pid, -1, "cwd", cwd, sizeof cwd))
        cwd[0] = 0;
    pe.parent_exec_id = p->parent_exec_id;
    pe.pid = p->pid;
    pe.exe = exe;
    pe.cwd = cwd;
    pe.first_seen = first_seen;
    pe.filename = (char *)(filename ? filename : "");
    char *b = NULL, *env = NULL, **argv = NULL;
    size_t n = 0, envn = 0;
    if (tracer_proc_slurp(p->pid, "status", 64 << 10, &b, &n) == 0) {
        const char *s = strstr(b, "\nPPid:");
        if (s)
            pe.ppid = atoi(s + 6);
        s = strstr(b, "\nUid:");
        if (s)
            pe.uid = (uint32_t)strtoul(s + 5, NULL, 10);
        s = strstr(b, "\nGid:");
        if (s)
            pe.gid = (uint32_t)strtoul(s + 5, NULL, 10);
        free(b);
        b = NULL;
    }
    /* argv: NUL-separated; each argument with secrets replaced (redact.h) */
    bool argv_cut = false;
    unsigned redact_failed = 0;
    if (tracer_proc_slurp(p->pid, "cmdline", PROC_ARGV_MAX, &b, &n) == 0 && n) {
        argv_cut = n >= PROC_ARGV_MAX;
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            k += b[i] == 0;
        k += b[n - 1] != 0;
        argv = calloc(k, sizeof *argv);
        for (size_t i = 0, a = 0; argv && i < n && a < k; a++) {
            size_t l = strnlen(b + i, n - i);
            if (redact_text(b + i, l, &argv[a], NULL, NULL)) {
                argv[a] = NULL; /* shown as "", with a gap below */
                redact_failed++;
            }
            pe.n_argv = a + 1;
            i += l + 1;
        }
        pe.argv = argv;
    }
    redact_env *re = NULL;
    if (!first_seen && tracer_proc_slurp(p->pid, "environ", PROC_ENV_MAX, &env, &envn) == 0) {
        /* most programs get their parent's environment unchanged: say so instead of storing
         * (and redacting) it again */
        uint64_t h = 1469598103934665603ull; /* FNV-1a */
        for (size_t i = 0; i < envn; i++)
            h = (h ^ (uint8_t)env[i]) * 1099511628211ull;
        if (p->env_hash && h == p->env_hash) {
            pe.env_inherited = true;
        } else if (redact_env_block(env, envn, &re) == 0) {
            pe.env = re->env;
            pe.n_env = re->n_env;
        }
        p->env_hash = h;
    }
    static char empty[] = "";
    for (size_t i = 0; i < pe.n_argv; i++)
        if (!pe.argv[i])
            pe.argv[i] = empty;
    ev.exec_id = p->exec_id;
    ev.tid = (uint32_t)tid;
    ev.body_case = PTB__V1__EVENT__BODY_PROC_EXEC;
    ev.proc_exec = &pe;
    ev.source = PTB__V1__SOURCE__SOURCE_TRACER;
    p->announced = true;
    tracer_emit(t, NULL, &ev);
    if (argv_cut)
        tracer_gap(t, NULL, p->exec_id, "argv_cut", exe, "arguments over 256 KiB were cut", 1, n,
                   NULL);
    if (re && re->truncated)
        tracer_gap(t, NULL, p->exec_id, "env_cut", exe, "environment over its bound was cut",
                   re->truncated, 0, NULL);
    if (redact_failed)
        tracer_gap(t, NULL, p->exec_id, "unreadable_args", exe,
                   "arguments that could not be redacted were left out", redact_failed, 0, NULL);
    for (size_t i = 0; i < pe.n_argv; i++)
        if (argv[i] != empty)
            free(argv[i]);
    free(argv);
    free(b);
    free(env);
    redact_env_free(re);
}

uint64_t tracer_proc_id(tracer *t, tracer_proc *p)
{
    if (!p->exec_id) {
        p->exec_id = ++t->next_exec_id;
        if (t->o.on_exec)
            t->o.on_exec(t->o.on_exec_arg, p->pid, p->exec_id, p->parent_exec_id, false);
        announce(t, p, p->pid, true, NULL);
    }
    return p->exec_id;
}

void tracer_proc_exec(tracer *t, tracer_thread *th)
{
    tracer_proc *p = th->p;
    /* the new image's parent: the process it was (when it had an identity), else the one that
     * forked it */
    if (p->exec_id)
        p->parent_exec_id = p->exec_id;
    p->exec_id = ++t->next_exec_id;
    if (t->o.on_exec)
        t->o.on_exec(t->o.on_exec_arg, p->pid, p->exec_id, p->parent_exec_id, true);
    t->r->execs++;
    /* descriptors with close-on-exec were flushed at the execve entry and are gone now */
    announce(t, p, th->tid, false, th->path1);
}

/* utime + stime (µs) of the whole group, and max RSS (kB), from /proc */
static void proc_usage(pid_t pid, Ptb__V1__ProcExit *px)
{
    char *b;
    size_t n;
    if (tracer_proc_slurp(pid, "stat", 64 << 10, &b, &n) == 0) {
        const char *s = strrchr(b, ')'); /* comm may hold spaces and parentheses */
        unsigned long long ut = 0, st = 0;
        if (s &&
            sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2) {
            long hz = sysconf(_SC_CLK_TCK);
            if (hz > 0) {
                px->utime_us = ut * 1000000ull / (unsigned long long)hz;
                px->stime_us = st * 1000000ull / (unsigned long long)hz;
            }
        }
        free(b);
    }
    if (tracer_proc_slurp(pid, "status", 64 << 10, &b, &n) == 0) {
        const char *s = strstr(b, "\nVmHWM:");
        if (s)
            px->max_rss_kb = strtoull(s + 7, NULL, 10);
        free(b);
    }
}

void tracer_proc_exit(tracer *t, tracer_proc *p, int status, bool can_read_proc)
{
    if (p->exit_recorded)
        return;
    p->exit_recorded = true;
    tracer_thread *th = NULL;
    for (size_t i = 0; i < t->thr_cap && !th; i++)
        if (t->thr[i] && t->thr[i]->p == p)
            th = t->thr[i];
    if (th)
        tracer_file_flush_all(t, th, can_read_proc);
    ptb_event ev = PTB__V1__EVENT__INIT;
    Ptb__V1__ProcExit px = PTB__V1__PROC_EXIT__INIT;
    px.pid = p->pid;
    if (WIFEXITED(status)) {
        px.exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        px.signal = WTERMSIG(status);
        px.exit_code = 128 + px.signal;
        px.core_dumped = WCOREDUMP(status) != 0;
    }
    if (can_read_proc)
        proc_usage(p->pid, &px);
    ev.body_case = PTB__V1__EVENT__BODY_PROC_EXIT;
    ev.proc_exit = &px;
    ev.exec_id = tracer_proc_id(t, p);
    ev.tid = (uint32_t)p->pid;
    tracer_emit(t, NULL, &ev);
    if (p->pid == t->root) {
        t->root_done = true;
        t->r->exit_code = px.exit_code;
        t->r->signal = px.signal;
    }
}
