/* The tracer's loop: start the command seized and filtered, then wait for every stop of every
 * thread of the tree and answer it (tracer.h has the design).
 *
 * Stops and what they mean (PTRACE_SEIZE semantics, ptrace(2)):
 * - PTRACE_EVENT_SECCOMP: a filtered syscall's entry; the tracer records what it needs, then
 *   resumes with PTRACE_SYSCALL when it wants the result (a syscall-exit stop follows) or with
 *   PTRACE_CONT. Refused syscalls get nr -1 (skipped by the kernel) and their errno at the exit.
 * - PTRACE_EVENT_FORK/VFORK/CLONE: a new thread or process; it is already traced and may have
 *   stopped before this event arrives (then it was added at its own first stop).
 * - PTRACE_EVENT_EXEC: a successful execve (the exec_id changes); from a non-leader thread, that
 *   thread now has the leader's id and the other threads are gone.
 * - PTRACE_EVENT_EXIT: a thread about to exit, its descriptors still open; the last thread of a
 *   process to get here flushes the process's files and records proc.exit.
 * - PTRACE_EVENT_STOP: a group-stop (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU: left stopped with
 *   PTRACE_LISTEN, as job control expects) or the first stop of a new thread.
 * - any other signal stop: the signal is delivered unchanged.
 * A thread that vanishes without an exit stop (SIGKILL) is finished from its wait status. */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sockdiag.h"
#include "tracer_int.h"

#define NR_DENIED (-1)

void tracer_options_default(tracer_options *o)
{
    memset(o, 0, sizeof *o);
    o->capture_file_max = 256ull << 20;
    o->capture_total_max = 4ull << 30;
    o->grace_ms = -1;
    o->netns_fd = -1;
    o->term_grace_ms = 10000;
    o->snapshot = true;
    o->snapshot_entries_max = 1000000;
    o->spin_us = 200;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t mono_ms(void)
{
    return mono_ns() / 1000000;
}

static volatile sig_atomic_t got_signal, alarm_fired;

static void on_signal(int sig)
{
    got_signal = sig;
}

static void on_alarm(int sig)
{
    (void)sig;
    alarm_fired = 1;
}

/* ------------------------------------------------------------------ refusing a syscall */

/* Skip the syscall now (nr -1); its result is set at the exit stop. */
static int deny_enter(tracer_thread *th, int err)
{
#if defined(__x86_64__)
    struct user_regs_struct regs;
    if (ptrace(PTRACE_GETREGS, th->tid, 0, &regs) != 0)
        return -errno;
    regs.orig_rax = (unsigned long long)-1;
    if (ptrace(PTRACE_SETREGS, th->tid, 0, &regs) != 0)
        return -errno;
#else
    int nr = -1;
    struct iovec iov = {&nr, sizeof nr};
    if (ptrace(PTRACE_SETREGSET, th->tid, 0x404 /* NT_ARM_SYSTEM_CALL */, &iov) != 0)
        return -errno;
#endif
    th->in_sys = true;
    th->nr = NR_DENIED;
    th->aux = -err;
    return 0;
}

static void deny_exit(tracer_thread *th)
{
    th->in_sys = false;
#if defined(__x86_64__)
    struct user_regs_struct regs;
    if (ptrace(PTRACE_GETREGS, th->tid, 0, &regs) == 0) {
        regs.rax = (unsigned long long)th->aux;
        ptrace(PTRACE_SETREGS, th->tid, 0, &regs);
    }
#else
    struct user_pt_regs regs;
    struct iovec iov = {&regs, sizeof regs};
    if (ptrace(PTRACE_GETREGSET, th->tid, 1 /* NT_PRSTATUS */, &iov) == 0) {
        regs.regs[0] = (unsigned long long)th->aux;
        ptrace(PTRACE_SETREGSET, th->tid, 1, &iov);
    }
#endif
}

static void record_denied(tracer *t, tracer_thread *th, const char *what, int err, int target,
                          const char *detail)
{
    ptb_event ev = PTB__V1__EVENT__INIT;
    Ptb__V1__ProcDenied pd = PTB__V1__PROC_DENIED__INIT;
    pd.pid = th->p->pid;
    pd.syscall = (char *)what;
    pd.errno_returned = err;
    pd.target_pid = target;
    pd.detail = (char *)detail;
    ev.body_case = PTB__V1__EVENT__BODY_PROC_DENIED;
    ev.proc_denied = &pd;
    tracer_emit(t, th, &ev);
    t->r->denied++;
}

/* ------------------------------------------------------------------ stops */

/* A seccomp stop: returns the ptrace request to resume with. */
static int on_seccomp(tracer *t, tracer_thread *th)
{
    struct __ptrace_syscall_info si;
    memset(&si, 0, sizeof si);
    long n = ptrace(PTRACE_GET_SYSCALL_INFO, th->tid, sizeof si, &si);
    if (n <= 0 || si.op != PTRACE_SYSCALL_INFO_SECCOMP)
        return PTRACE_CONT;
    int nr = (int)si.entry.nr;
#if defined(__x86_64__)
    const uint32_t arch = AUDIT_ARCH_X86_64;
#else
    const uint32_t arch = AUDIT_ARCH_AARCH64;
#endif
    if (si.arch != arch || (unsigned)nr >= 0x40000000u) {
        char d[96];
        snprintf(d, sizeof d, "syscall %u of architecture 0x%x refused (only native %s)",
                 (unsigned)nr, si.arch, arch == AUDIT_ARCH_X86_64 ? "x86_64" : "aarch64");
        record_denied(t, th, si.arch != arch ? "compat32" : "x32", ENOSYS, 0, d);
        return deny_enter(th, ENOSYS) ? PTRACE_CONT : PTRACE_SYSCALL;
    }
    const uint64_t *a = (const uint64_t *)si.seccomp.args;
    switch (nr) {
    case SYS_execve:
    case SYS_execveat: {
        /* close-on-exec descriptors close during the exec: their files are final now */
        tracer_file_flush_cloexec(t, th);
        /* the path as given, for the proc.exec of a successful exec */
        char fn[TRACER_PATH_MAX];
        free(th->path1);
        th->path1 = NULL;
        if (tracer_mem_string(th->tid, nr == SYS_execve ? a[0] : a[1], fn, sizeof fn) == 0)
            th->path1 = strdup(fn);
        return PTRACE_CONT;
    }
    case SYS_io_uring_setup:
    case SYS_io_uring_enter:
    case SYS_io_uring_register:
        record_denied(t, th,
                      nr == SYS_io_uring_setup   ? "io_uring_setup"
                      : nr == SYS_io_uring_enter ? "io_uring_enter"
                                                 : "io_uring_register",
                      ENOSYS, 0, "io_uring would bypass syscall tracing");
        return deny_enter(th, ENOSYS) ? PTRACE_CONT : PTRACE_SYSCALL;
    case SYS_ptrace:
    case SYS_process_vm_writev: {
        char d[96];
        bool pt = nr == SYS_ptrace;
        int target = pt ? (int)a[1] : (int)a[0];
        if (pt)
            snprintf(d, sizeof d, "ptrace request %lld on pid %d refused: the tree is traced",
                     (long long)a[0], target);
        else
            snprintf(d, sizeof d, "writing the memory of pid %d refused", target);
        record_denied(t, th, pt ? "ptrace" : "process_vm_writev", EPERM, target, d);
        return deny_enter(th, EPERM) ? PTRACE_CONT : PTRACE_SYSCALL;
    }
    default:
        if (tracer_net_is(nr))
            return tracer_net_enter(t, th, nr, a) ? PTRACE_SYSCALL : PTRACE_CONT;
        return tracer_file_enter(t, th, nr, a) ? PTRACE_SYSCALL : PTRACE_CONT;
    }
}

static void on_syscall_exit(tracer *t, tracer_thread *th)
{
    if (!th->in_sys)
        return;
    if (th->nr == NR_DENIED) {
        deny_exit(th);
        return;
    }
    struct __ptrace_syscall_info si;
    memset(&si, 0, sizeof si);
    long n = ptrace(PTRACE_GET_SYSCALL_INFO, th->tid, sizeof si, &si);
    if (n <= 0 || si.op != PTRACE_SYSCALL_INFO_EXIT) {
        th->in_sys = false;
        return;
    }
    if (tracer_net_is(th->nr))
        tracer_net_exit(t, th, si.exit.rval);
    else
        tracer_file_exit(t, th, si.exit.rval);
}

static void on_exec(tracer *t, tracer_thread *th)
{
    unsigned long former = 0;
    ptrace(PTRACE_GETEVENTMSG, th->tid, 0, &former);
    if ((pid_t)former != th->tid) {
        /* exec from a non-leader thread: that thread is now the leader; the entry found under
         * the leader's id is the old leader, which is gone */
        tracer_thread *f = tracer_thread_find(t, (pid_t)former);
        if (f && f != th) {
            pid_t leader = th->tid;
            tracer_thread_remove(t, th);
            tracer_thread_rekey(t, f, leader);
            th = f;
        }
    }
    th->in_sys = false;
    tracer_file_after_exec(t, th);
    tracer_proc_exec(t, th);
}

static void on_exit_stop(tracer *t, tracer_thread *th)
{
    unsigned long status = 0;
    ptrace(PTRACE_GETEVENTMSG, th->tid, 0, &status);
    if (!th->exiting) {
        th->exiting = true;
        th->p->exiting++;
    }
    if (th->p->exiting >= th->p->threads) /* the last thread of the process */
        tracer_proc_exit(t, th->p, (int)status, true);
}

/* A thread is gone (its wait status). */
static void on_gone(tracer *t, tracer_thread *th, int status)
{
    if (th->p->threads == 1 && !th->p->exit_recorded)
        tracer_proc_exit(t, th->p, status, false);
    tracer_thread_remove(t, th);
}

/* ------------------------------------------------------------------ start */

/* sig to every process of the tree; *count (may be NULL) += the processes not yet exited. */
static void signal_tree(tracer *t, int sig, uint64_t *count)
{
    uint64_t stamp = ++t->visit_stamp;
    for (size_t i = 0; i < t->thr_cap; i++) {
        tracer_thread *th = t->thr[i];
        if (!th || th->p->visit == stamp) /* once per process, through any of its threads */
            continue;
        th->p->visit = stamp;
        kill(th->tid, sig); /* a thread's id names its whole group for kill(2) */
        if (count && !th->p->exit_recorded)
            (*count)++;
    }
}

static void kill_tree(tracer *t)
{
    signal_tree(t, SIGKILL, NULL);
}

/* The deadlines that have passed act; the timer is set for the next one. */
static void deadlines(tracer *t)
{
    int64_t now = mono_ms();
    if (t->budget_at && now >= t->budget_at) {
        t->budget_at = 0;
        t->r->budget_expired = true;
        signal_tree(t, SIGTERM, NULL);
        t->term_kill_at = now + (t->o.term_grace_ms > 0 ? t->o.term_grace_ms : 0) + 1;
    }
    if (t->term_kill_at && now >= t->term_kill_at) {
        t->term_kill_at = 0;
        signal_tree(t, SIGKILL, &t->r->killed_after_budget);
    }
    if (t->grace_at && now >= t->grace_at) {
        t->grace_at = 0;
        signal_tree(t, SIGKILL, &t->r->killed_after_grace);
    }
    int64_t next = 0;
    const int64_t at[3] = {t->budget_at, t->term_kill_at, t->grace_at};
    for (int i = 0; i < 3; i++)
        if (at[i] && (!next || at[i] < next))
            next = at[i];
    if (next == t->armed_at)
        return;
    t->armed_at = next;
    int64_t in = next ? (next > now ? next - now : 1) : 0;
    struct itimerval it = {{0, 0}, {in / 1000, (in % 1000) * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

/* What the child reports through errfd (closed by a successful exec): stage 1 the filter could
 * not be installed, 2 the exec failed, 3 the network namespace not entered, 4 the sandbox not
 * set up (msg says which step). */
typedef struct child_failure {
    int stage, err;
    char msg[256];
} child_failure;

/* The child: wait until seized, then sandbox, filter and exec. */
static void child_main(char *const argv[], int gofd, int errfd, const tracer_options *o)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    char c;
    ssize_t n;
    do
        n = read(gofd, &c, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1)
        _exit(127);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGQUIT, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    child_failure why = {3, 0, ""};
    int rc = o->netns_fd >= 0 && setns(o->netns_fd, CLONE_NEWNET) != 0 ? -errno : 0;
    if (rc == 0 && o->netns_fd >= 0)
        close(o->netns_fd);
    if (rc == 0 && o->child_setup) {
        why.stage = 4;
        rc = o->child_setup(o->child_setup_arg, why.msg, sizeof why.msg);
    }
    if (rc == 0) {
        why.stage = 1;
        rc = tracer_filter_install();
    }
    why.err = -rc;
    if (rc == 0) {
        execvp(argv[0], argv);
        why.stage = 2;
        why.err = errno;
    }
    ssize_t w = write(errfd, &why, sizeof why);
    (void)w;
    _exit(why.err == ENOENT && why.stage == 2 ? 127 : 126);
}

/* Whether the machine has a CPU that no runnable task wants: /proc/loadavg's fourth field is
 * "runnable/threads" now, the tracer itself included. */
static bool cpu_to_spare(tracer *t)
{
    char b[128];
    ssize_t n = t->loadavg_fd >= 0 ? pread(t->loadavg_fd, b, sizeof b - 1, 0) : -1;
    if (n <= 0)
        return false;
    b[n] = 0;
    const char *p = b;
    for (int field = 0; field < 3 && p; field++)
        if ((p = strchr(p, ' ')))
            p++;
    return p && strtol(p, NULL, 10) <= t->ncpus;
}

/* The next stop of any thread of the tree (waitpid(-1, __WALL)). A stop wakes the sleeping
 * tracer, and the tracer's resume wakes the tracee, each on another CPU: where waking a
 * sleeping CPU is dear (a virtual machine: an inter-processor interrupt, a VM exit), those two
 * wake-ups are most of what a stop costs (tar of /usr/include under ptb record on this project's
 * 2-CPU VM: 2.5-4.4 s sleeping at once, 1.3 s polling; docs/BENCHMARKS.md). So, while no
 * runnable task waits for a CPU, the tracer first polls for up to spin_us, and catches the next
 * stop of a tree that stops every few microseconds without sleeping. On a busy machine it sleeps
 * at once: the poll would take a CPU from the tree. Returns as waitpid, or 0 when a signal
 * arrived during the poll (the loop looks at it first). */
static pid_t wait_stop(tracer *t, int *st)
{
    int64_t now = t->o.spin_us > 0 ? mono_ns() : 0;
    if (now && now - t->spare_checked_ns > 1000000) { /* /proc/loadavg at most once a ms */
        t->spare_checked_ns = now;
        t->spare = cpu_to_spare(t);
    }
    if (now && t->spare) {
        int64_t end = now + (int64_t)t->o.spin_us * 1000;
        do {
            pid_t tid = waitpid(-1, st, __WALL | WNOHANG);
            if (tid != 0)
                return tid;
            if (got_signal || alarm_fired)
                return 0;
            sched_yield(); /* a task that wants this CPU gets it */
        } while (mono_ns() < end);
    }
    return waitpid(-1, st, __WALL);
}

static int loop(tracer *t)
{
    bool grace_armed = false;
    for (;;) {
        if (got_signal && !t->store_err) {
            /* ptb record itself was asked to stop: stop the tree, keep what was recorded */
            char d[64];
            snprintf(d, sizeof d, "the recorder got signal %d: the tree was killed",
                     (int)got_signal);
            tracer_gap(t, NULL, 0, "recorder_signal", NULL, d, 1, 0, NULL);
            got_signal = 0;
            kill_tree(t);
        }
        if (t->store_err) /* the store stopped: nothing more can be recorded */
            kill_tree(t);
        if (t->root_done && t->o.grace_ms >= 0 && !grace_armed && t->thr_n > 0) {
            grace_armed = true;
            t->grace_at = mono_ms() + t->o.grace_ms + 1;
            alarm_fired = 1; /* arm the timer below */
        }
        if (alarm_fired) {
            alarm_fired = 0;
            deadlines(t);
        }
        int st;
        pid_t tid = wait_stop(t, &st);
        if (tid == 0)
            continue;
        if (tid < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ECHILD)
                break;
            return ptb_errf(t->eb, -errno, "waitpid: %s", strerror(errno));
        }
        tracer_thread *th = tracer_thread_find(t, tid);
        if (!th && (WIFEXITED(st) || WIFSIGNALED(st)))
            continue; /* a thread already accounted for (an exec from another thread) */
        if (!th && !(th = tracer_thread_add(t, tid))) {
            kill_tree(t);
            return ptb_errf(t->eb, PTB_ENOMEM, "out of memory for the process table");
        }
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            on_gone(t, th, st);
            continue;
        }
        if (!WIFSTOPPED(st))
            continue;
        int sig = WSTOPSIG(st), event = (unsigned)st >> 16, req = PTRACE_CONT, deliver = 0;
        switch (event) {
        case PTRACE_EVENT_SECCOMP: req = on_seccomp(t, th); break;
        case PTRACE_EVENT_FORK:
        case PTRACE_EVENT_VFORK:
        case PTRACE_EVENT_CLONE: {
            unsigned long child = 0;
            if (ptrace(PTRACE_GETEVENTMSG, tid, 0, &child) == 0 &&
                !tracer_thread_find(t, (pid_t)child))
                tracer_thread_add(t, (pid_t)child);
            break;
        }
        case PTRACE_EVENT_EXEC: on_exec(t, th); break;
        case PTRACE_EVENT_EXIT: on_exit_stop(t, th); break;
        case PTRACE_EVENT_STOP:
            if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU)
                req = PTRACE_LISTEN; /* a group-stop: stay stopped, as job control wants */
            break;
        case 0:
            if (sig == (SIGTRAP | 0x80))
                on_syscall_exit(t, th);
            else
                deliver = sig; /* a signal for the tracee: passed on unchanged */
            break;
        default: break;
        }
        if (ptrace(req, tid, 0, deliver) != 0 && errno != ESRCH)
            ptb_errf(t->eb, -errno, "ptrace resume of %d: %s", (int)tid, strerror(errno));
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    return 0;
}

int tracer_run(store *s, const tracer_options *o, char *const argv[], tracer_result *r,
               ptb_errbuf *eb)
{
    memset(r, 0, sizeof *r);
    if (!argv || !argv[0])
        return ptb_errf(eb, PTB_EINVAL, "no command to run");
    tracer t = {.s = s, .o = *o, .r = r, .eb = eb, .loadavg_fd = -1};
    if (!(t.buf = malloc(1u << 20)))
        return ptb_errf(eb, PTB_ENOMEM, "out of memory");
    if (o->snapshot && tracer_snapshot(&t)) {
        free(t.buf);
        return ptb_errf(eb, t.store_err, "the store stopped: %s", ptb_strerror(t.store_err));
    }
    int go[2], err[2];
    if (pipe2(go, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) {
        free(t.buf);
        return ptb_errf(eb, -errno, "pipe: %s", strerror(errno));
    }
    /* SIGTERM/SIGHUP to the recorder: stop the tree, keep the store. Ctrl-C and Ctrl-\ reach
     * the command through the terminal; the recorder ignores them and records what follows. */
    struct sigaction sa = {.sa_handler = on_signal}, ign = {.sa_handler = SIG_IGN}, old[4],
                     sal = {.sa_handler = on_alarm}, oldal;
    const int sigs[4] = {SIGTERM, SIGHUP, SIGINT, SIGQUIT};
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(go[0]), close(go[1]), close(err[0]), close(err[1]);
        free(t.buf);
        return ptb_errf(eb, -e, "fork: %s", strerror(e));
    }
    if (pid == 0) {
        close(go[1]);
        close(err[0]);
        child_main(argv, go[0], err[1], o);
    }
    close(go[0]);
    close(err[1]);
    long opts = PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |
                PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC | PTRACE_O_TRACEEXIT |
                PTRACE_O_TRACESECCOMP | PTRACE_O_EXITKILL;
    if (ptrace(PTRACE_SEIZE, pid, 0, opts) != 0) {
        int e = errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(go[1]), close(err[0]);
        free(t.buf);
        return ptb_errf(eb, -e, "cannot trace the command (ptrace: %s)%s", strerror(e),
                        e == EPERM ? "; a container may forbid ptrace (seccomp profile, "
                                     "kernel.yama.ptrace_scope)"
                                   : "");
    }
    t.root = pid;
    tracer_thread_add(&t, pid);
    if (o->spin_us > 0) {
        cpu_set_t cs;
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        t.ncpus = sched_getaffinity(0, sizeof cs, &cs) == 0 ? CPU_COUNT(&cs) : online;
        if (online > 0 && online < t.ncpus)
            t.ncpus = online;
        t.loadavg_fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
    }
    for (int i = 0; i < 4; i++)
        sigaction(sigs[i], i < 2 ? &sa : &ign, &old[i]);
    sigaction(SIGALRM, &sal, &oldal);
    alarm_fired = 0;
    if (o->budget_ms > 0) {
        t.budget_at = mono_ms() + o->budget_ms;
        alarm_fired = 1; /* the loop arms the timer */
    }
    ssize_t w = write(go[1], "g", 1);
    close(go[1]);
    int rc = w == 1 ? loop(&t) : ptb_errf(eb, -EIO, "cannot start the command");
    for (int i = 0; i < 4; i++)
        sigaction(sigs[i], &old[i], NULL);
    sigaction(SIGALRM, &oldal, NULL);
    child_failure why;
    r->started = true;
    if (read(err[0], &why, sizeof why) == (ssize_t)sizeof why) {
        r->started = false;
        r->exec_errno = why.err;
        why.msg[sizeof why.msg - 1] = 0;
        if (why.stage == 1 && !rc)
            rc =
                ptb_errf(eb, -why.err, "cannot install the seccomp filter: %s%s", strerror(why.err),
                         why.err == EINVAL ? " (a kernel without CONFIG_SECCOMP_FILTER?)" : "");
        if (why.stage == 3 && !rc)
            rc = ptb_errf(eb, -why.err, "cannot enter the run's network namespace: %s",
                          strerror(why.err));
        if (why.stage == 4 && !rc)
            rc = ptb_errf(eb, -why.err, "cannot set up the sandbox: %s: %s", why.msg,
                          strerror(why.err));
    }
    close(err[0]);
    for (size_t i = 0; i < t.thr_cap; i++) /* only after an error: threads left behind */
        if (t.thr[i])
            tracer_thread_remove(&t, t.thr[i]), i = (size_t)-1;
    free(t.thr);
    free(t.buf);
    if (t.loadavg_fd >= 0)
        close(t.loadavg_fd);
    sockdiag_close(t.diag);
    if (!rc && t.store_err)
        rc = t.store_err;
    return rc;
}
