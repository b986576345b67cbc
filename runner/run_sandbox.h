/* The agent's sandbox of `ptb run` (run_sandbox.c): mount and PID namespaces set up in the
 * recorded command's own process, between fork and exec (tracer_options.child_setup).
 *
 *   run_sandbox_caps caps;
 *   run_sandbox_probe(&caps);                 // what this machine allows, and why not
 *   run_sandbox *sb;
 *   run_sandbox_plan(&spec, &caps, &sb, &eb); // in the parent: the steps
 *   to.child_setup = run_sandbox_child; to.child_setup_arg = sb;
 *   ... tracer_run ...
 *   run_sandbox_free(sb);
 *
 * What the agent then sees: the machine's filesystem, except that
 *   - the run folder (the store, logs, the frozen checkpoint, the eval phase's files) is an empty
 *     read-only folder holding only the workspace, the home and the temp folder (read-write);
 *   - workspace/base_model is read-only (a read-only mount: root cannot write it either);
 *   - the paths of spec.hide are gone: a folder is an empty read-only tmpfs, a file is empty;
 *   - /tmp is the run's temp folder, /dev/shm an empty tmpfs of its own;
 *   - /proc shows only its own processes (a PID namespace whose init is ptb's: the recorder, the
 *     runner, other runs are invisible, with their environments and open files);
 *   - /etc/hosts and the system's CA bundle are the run's when given;
 *   - the files the command names (spec.expose) are where they were, read-only.
 * Without root, an unprivileged user namespace (uid and gid mapped to themselves) gives the
 * same; run_sandbox_probe says when neither works, and the runner records a gap.
 *
 * Process tree under the recorder: the command's process P (ptb, never execs) enters the
 * namespaces and forks the namespace's init (ptb, never execs), which mounts /proc and forks the
 * process that execs the command. init reaps every orphan of the namespace and exits when none
 * is left; P passes on the command's status (its exit code, or dies of its signal). */
#ifndef PTB_RUN_SANDBOX_H
#define PTB_RUN_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>

#include "ptb_error.h"

typedef struct run_sandbox_caps {
    bool ok;       /* mount + PID namespaces and a new /proc work here */
    bool userns;   /* ... through a user namespace (not root) */
    char why[256]; /* when !ok: which step failed and how */
} run_sandbox_caps;

/* Try, in a throw-away child, what run_sandbox_child will do. */
void run_sandbox_probe(run_sandbox_caps *caps);

typedef struct run_sandbox_spec {
    const char *run_root;        /* hidden, but for ws, home and tmp */
    const char *ws, *home, *tmp; /* read-write; tmp is also /tmp */
    const char *read_only;       /* a folder under ws made read-only (base_model), or NULL */
    const char *const *hide;     /* NULL-terminated, or NULL: more paths to hide */
    const char *const *expose;   /* NULL-terminated, or NULL: absolute paths the command names
                                    * (its program, a script), bound back read-only where hidden */
    const char *hosts_file;      /* bound over /etc/hosts, or NULL */
    const char *ca_bundle;       /* bound over /etc/ssl/certs/ca-certificates.crt, or NULL */
    const char *gpu_socket;      /* a socket under /tmp whose folder stays reachable, or NULL */
    const char *empty_file;      /* an empty file (what a hidden file shows) */
} run_sandbox_spec;

typedef struct run_sandbox run_sandbox;

/* List the steps. Paths that do not exist are skipped (hide) or an error (the rest). 0, or
 * -errno / PTB_ENOMEM with eb saying which path. */
int run_sandbox_plan(const run_sandbox_spec *spec, const run_sandbox_caps *caps, run_sandbox **out,
                     ptb_errbuf *eb);

/* tracer_options.child_setup: arg is the run_sandbox. */
int run_sandbox_child(void *arg, char *msg, size_t cap);

void run_sandbox_free(run_sandbox *sb);

#endif
