/* The tracer: runs a command under ptrace with a seccomp-bpf filter and appends one event per
 * recorded action of every process of its tree to a store (`ptb record`, DESIGN.md "Recording").
 *
 *   tracer_options o; tracer_options_default(&o);
 *   tracer_result r;
 *   int rc = tracer_run(s, &o, argv, &r, &eb);   // returns when the whole tree has exited
 *
 * Mechanism: the command is forked, seized (PTRACE_SEIZE with TRACEFORK/VFORK/CLONE/EXEC/EXIT,
 * TRACESECCOMP and EXITKILL: if the recorder dies, the tree dies), then installs a seccomp filter
 * (tracer_filter.c) that stops it only on the syscalls recorded, and execs. One thread
 * (tracer_loop.c) waits for every stop of every thread of the tree, reads arguments with
 * PTRACE_GET_SYSCALL_INFO and tracee memory with process_vm_readv (tracer_mem.c), keeps the
 * process table (tracer_proc.c) and the descriptor tables (tracer_file.c), and appends events.
 * A full store queue makes the tracee wait: no tracer event is dropped. */
#ifndef PTB_TRACER_H
#define PTB_TRACER_H

#include <stdbool.h>
#include <stdint.h>

#include "ptb_error.h"
#include "store.h"

typedef struct tracer_options {
    /* absolute directories whose written files are stored as blobs (borrowed) */
    const char *const *capture_roots;
    size_t n_capture_roots;
    uint64_t capture_file_max;  /* larger files: hash and a gap event (default 256 MiB) */
    uint64_t capture_total_max; /* all captured content together (default 4 GiB) */
    /* before the command starts, what the snapshot roots hold, as file.state events (the
     * contents of files within capture_file_max, and capture_total_max counted apart from the
     * command's writes): what `ptb replay` starts from (default true) */
    bool snapshot;
    const char *const *snapshot_roots; /* NULL: the capture roots (borrowed) */
    size_t n_snapshot_roots;
    uint64_t snapshot_entries_max; /* entries walked at most; then a gap (default 1,000,000) */
    /* after the command's own process exits, wait this long for the rest of the tree (daemons
     * included), then kill what is left; < 0: wait for ever (default) */
    int grace_ms;
    /* > 0: the wall-time budget from the start of the command: when it runs out, SIGTERM to every
     * process of the tree, then SIGKILL to what is left term_grace_ms later (the budget of a
     * `ptb run` agent phase). 0: none (default). */
    int64_t budget_ms;
    int term_grace_ms;     /* default 10,000 */
    bool record_all_opens; /* also file.open under /usr, /lib, ... (default false) */
    /* before sleeping for the next stop, poll for it this long while the machine has a CPU no
     * one wants (tracer_loop.c, wait_stop); 0: sleep at once (default 200) */
    int spin_us;
    /* >= 0: the command runs in this network namespace (setns before exec; default -1) */
    int netns_fd;
    /* called (on the tracer's thread, before the tracee goes on) for every TCP/UDP socket whose
     * ends the tracer learnt at connect, accept, bind or sendto: what ties packets to exec_ids.
     * proto "tcp"/"udp"; remote_ip NULL when unconnected. NULL: not called. */
    void (*on_socket)(void *arg, uint64_t exec_id, const char *proto, const char *local_ip,
                      uint16_t local_port, const char *remote_ip, uint16_t remote_port);
    void *on_socket_arg;
    /* called (on the tracer's thread) when a process gets an exec_id: at each successful execve
     * (execve true; the process is stopped, its /proc shows the new image) and when a forked
     * process is first announced; parent_exec_id as in its proc.exec (0: none). What ties
     * records that other sources get by pid (the GPU library's) to exec_ids. NULL: not called. */
    void (*on_exec)(void *arg, int pid, uint64_t exec_id, uint64_t parent_exec_id, bool execve);
    void *on_exec_arg;
    /* called in the command's process after fork (and after entering netns_fd), before the
     * seccomp filter and the exec: a sandbox's namespaces and mounts. Only async-signal-safe
     * work: the recorder may have other threads. It may fork: whichever process returns 0 goes
     * on to exec the command (the others must never return). An error: -errno, with msg (cap
     * bytes) saying which step. NULL: none. */
    int (*child_setup)(void *arg, char *msg, size_t cap);
    void *child_setup_arg;
} tracer_options;

void tracer_options_default(tracer_options *o);

typedef struct tracer_result {
    int exit_code;      /* of the command's own process; 128+N when killed by signal N */
    int signal;         /* the signal that killed it, 0 when it exited */
    bool started;       /* false: the command could not be executed (exec_errno says why) */
    int exec_errno;     /* errno of the failed exec */
    uint64_t events;    /* events appended */
    uint64_t processes; /* processes seen */
    uint64_t execs;     /* successful execve */
    uint64_t files_written;
    uint64_t bytes_captured;      /* content stored as blobs (uncompressed) */
    uint64_t snapshot_entries;    /* file.state events */
    uint64_t snapshot_captured;   /* bytes of their content stored as blobs */
    uint64_t gaps;                /* gap events appended */
    uint64_t denied;              /* proc.denied events (io_uring, ptrace, 32-bit syscalls) */
    uint64_t killed_after_grace;  /* processes killed when the grace time ran out */
    bool budget_expired;          /* the budget ran out (the tree got SIGTERM) */
    uint64_t killed_after_budget; /* processes that outlived SIGTERM by term_grace_ms: SIGKILL */
} tracer_result;

/* Run argv[0] (looked up in PATH) with argv under the recorder, appending events to s (borrowed;
 * the caller opens and closes it). Returns 0 when the command ran (whatever its exit status:
 * see r), or an error with a message in eb: PTB_EINVAL (bad options), -errno when ptrace or
 * seccomp is not available, a store error when the store stopped (the tree is then killed).
 * When the command cannot be executed, returns 0 with r->started false. */
int tracer_run(store *s, const tracer_options *o, char *const argv[], tracer_result *r,
               ptb_errbuf *eb);

#endif
