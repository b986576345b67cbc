/* The tracer's internals: the process and thread tables, the descriptor tables, and the
 * functions the loop calls (tracer.h has the design). */
#ifndef PTB_TRACER_INT_H
#define PTB_TRACER_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "tracer.h"

#define TRACER_PATH_MAX 4096

#include <sys/syscall.h>
#ifndef SYS_fchmodat2 /* Linux 6.6; the same number on every architecture */
#define SYS_fchmodat2 452
#endif

/* An open file description the tracer follows: a regular file opened for writing (file.write
 * when its last descriptor is closed), or one opened for reading outside the system areas
 * (file.read summary). Shared by the descriptors that dup and fork make of it. */
typedef struct tracer_desc {
    int refs; /* descriptors pointing here, in all processes */
    bool write;
    uint64_t size_open; /* size when opened (file.write bytes = growth through it) */
    uint64_t stamp;     /* last rename pass that flushed it */
    char *path;         /* canonical path at open, moved by renames; malloc'd */
} tracer_desc;

typedef struct tracer_fd {
    int fd;
    tracer_desc *d; /* one reference */
} tracer_fd;

/* A process (thread group). Threads point to it; freed when its last thread is gone. */
typedef struct tracer_proc {
    pid_t pid;               /* thread group id */
    uint64_t exec_id;        /* run-local identity; 0 until given (lazily for a fork's child) */
    uint64_t parent_exec_id; /* exec_id of the process that forked it */
    bool announced;          /* its proc.exec is in the store */
    uint64_t env_hash;       /* hash of the environment of its image (inherited by forks) */
    uint64_t visit;          /* last pass over all processes that saw it (once per process) */
    bool exit_recorded;      /* its proc.exit is in the store */
    int threads;             /* live threads */
    int exiting;             /* of those, threads that reached their exit stop */
    tracer_fd *fds;
    size_t nfds, capfds;
    char **maps; /* paths of shared writable mappings (hashed at exit) */
    size_t nmaps;
} tracer_proc;

/* A thread: its process, and the syscall it is in when its exit stop was asked for. */
typedef struct tracer_thread {
    pid_t tid;
    tracer_proc *p;
    bool exiting; /* its exit stop came */
    bool in_sys;
    int nr;
    uint64_t args[6];
    char *path1, *path2; /* resolved at entry; malloc'd */
    int64_t aux;         /* per-syscall state between entry and exit */
} tracer_thread;

typedef struct tracer {
    store *s;
    tracer_options o;
    tracer_result *r;
    ptb_errbuf *eb;
    pid_t root; /* the command's own process */
    bool root_done;
    /* deadlines on CLOCK_MONOTONIC (ms; 0 = none): the budget, the SIGKILL after it, the end of
     * the grace after the root's exit. One ITIMER_REAL wakes the loop for the earliest. */
    int64_t budget_at, term_kill_at, grace_at, armed_at;
    int store_err; /* first store error: the run stops */
    int exec_err;  /* errno of the command's failed exec, from the child */
    /* threads, open addressing by tid */
    tracer_thread **thr;
    size_t thr_cap, thr_n;
    uint64_t next_exec_id;
    uint64_t captured_total;
    uint64_t visit_stamp;  /* passes over all processes (tracer_proc.visit) */
    struct sockdiag *diag; /* sock_diag handle, opened at the first socket event */
    bool diag_failed;
    char *buf;      /* scratch for file contents, TRACER_COPY_BUF */
    int loadavg_fd; /* /proc/loadavg, for wait_stop's runnable count (-1: not open) */
    long ncpus;     /* CPUs the tracer may run on */
    bool spare;     /* a CPU to spare, as last read (at spare_checked_ns) */
    int64_t spare_checked_ns;
} tracer;

/* ---- tracer_filter.c */
int tracer_filter_install(void);
bool tracer_filter_traces(int nr);

/* ---- tracer_mem.c: tracee memory and /proc */
/* Read a NUL-terminated string at addr into buf (cap >= 2): 0, PTB_ETOOBIG when longer than cap-1
 * (buf holds the truncated start), -errno when unreadable. */
int tracer_mem_string(pid_t pid, uint64_t addr, char *buf, size_t cap);
int tracer_mem_read(pid_t pid, uint64_t addr, void *buf, size_t len);
/* Absolute path of path as the process would resolve it relative to dirfd (AT_FDCWD: its cwd),
 * lexically normalised (".", "..", "//"), without following symlinks. */
int tracer_path_at(pid_t pid, int dirfd, const char *path, char *out, size_t cap);
/* readlink of /proc/PID/fd/FD (or /proc/PID/NAME when fd < 0 and name given). */
int tracer_proc_link(pid_t pid, int fd, const char *name, char *out, size_t cap);
/* Whole /proc/PID/NAME into a malloc'd buffer (at most max bytes; *len). */
int tracer_proc_slurp(pid_t pid, const char *name, size_t max, char **out, size_t *len);

/* ---- tracer_proc.c: threads, processes, process events */
tracer_thread *tracer_thread_find(tracer *t, pid_t tid);
/* A new thread tid. When its process is not known, it is a new process whose parent is read
 * from /proc (parent may be NULL: the root). */
tracer_thread *tracer_thread_add(tracer *t, pid_t tid);
void tracer_thread_remove(tracer *t, tracer_thread *th);
/* th gets the id tid (exec from a non-leader thread: it becomes the leader). */
int tracer_thread_rekey(tracer *t, tracer_thread *th, pid_t tid);
/* The exec_id of p, announcing it (proc.exec with first_seen) when it has none yet. */
uint64_t tracer_proc_id(tracer *t, tracer_proc *p);
/* PTRACE_EVENT_EXEC: a new exec_id and its proc.exec from /proc. */
void tracer_proc_exec(tracer *t, tracer_thread *th);
/* The process's last thread is exiting (status as from waitpid): flush files, proc.exit. */
void tracer_proc_exit(tracer *t, tracer_proc *p, int status, bool can_read_proc);
/* Append ev (envelope filled here: source, exec_id of th's process, tid). */
void tracer_emit(tracer *t, tracer_thread *th, ptb_event *ev);
/* A gap of origin "tracer" (th may be NULL: then exec_id is used; sha256 may be NULL). */
/* Hash what fd holds (a regular file of *size bytes; *size becomes the bytes read) into sha, and
 * store it as a blob named path when capture (*captured tells: a blob over the store's caps is
 * not, and makes its own gap). 0; PTB_ENOMEM (hashed, not captured); -EIO (read error). */
int tracer_content(tracer *t, int fd, const char *path, bool capture, uint64_t *size,
                   uint8_t sha[32], bool *captured);

/* tracer_snapshot.c: the snapshot roots as file.state events (tracer_options.snapshot). 0, or
 * the store's error (t->store_err). */
int tracer_snapshot(tracer *t);

void tracer_gap(tracer *t, tracer_thread *th, uint64_t exec_id, const char *reason,
                const char *path, const char *detail, uint64_t count, uint64_t bytes,
                const uint8_t *sha256);

/* ---- tracer_net.c: connect, accept, bind, sendto (always want the exit stop) */
bool tracer_net_enter(tracer *t, tracer_thread *th, int nr, const uint64_t args[6]);
void tracer_net_exit(tracer *t, tracer_thread *th, int64_t ret);
bool tracer_net_is(int nr);

/* ---- tracer_file.c: file syscalls and descriptor tables */
/* Seccomp stop of th for syscall nr: true when the exit stop is wanted (th->in_sys set). */
bool tracer_file_enter(tracer *t, tracer_thread *th, int nr, const uint64_t args[6]);
void tracer_file_exit(tracer *t, tracer_thread *th, int64_t ret);
/* Before exec: flush descriptors with close-on-exec. At exit: flush all, and mappings. */
void tracer_file_flush_cloexec(tracer *t, tracer_thread *th);
void tracer_file_flush_all(tracer *t, tracer_thread *th, bool can_read_proc);
/* After a successful exec: forget the descriptors that close-on-exec closed. */
void tracer_file_after_exec(tracer *t, tracer_thread *th);
/* Capture roots and system areas (tracer_file.c) */
bool tracer_under_capture(const tracer *t, const char *path);
void tracer_fds_free(tracer_proc *p);
/* Copy of the parent's table for a forked child. */
int tracer_fds_clone(tracer_proc *to, const tracer_proc *from);

#endif
