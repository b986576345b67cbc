/* `ptb run`'s use of the sandbox (run_agent_sandbox.c): what the agent phase hides and gives
 * for a task — the policy; run_sandbox.h is the mechanism.
 *
 *   run_agent_sandbox a = {0};
 *   run_agent_sandbox_setup(&a, s, &t, &d, &env, &eb);   // setup phase: probe, gaps, CA bundle
 *   ... record_session prepare callback:
 *       run_agent_sandbox_prepare(&a, &t, &d, host_addr, to);   // hosts file, the plan
 *   run_agent_sandbox_release(&a);                       // after the agent phase */
#ifndef PTB_RUN_AGENT_SANDBOX_H
#define PTB_RUN_AGENT_SANDBOX_H

#include <limits.h>
#include <stdbool.h>

#include "run_sandbox.h"
#include "run_workspace.h"
#include "store.h"
#include "task_spec.h"
#include "tracer.h"

typedef struct run_agent_sandbox {
    run_sandbox_caps caps;
    bool on;                 /* the agent phase runs in namespaces */
    char dir[PATH_MAX + 16]; /* RUN/sandbox: hosts, ca-bundle.crt, empty */
    run_sandbox *sb;         /* the plan, between prepare and release */
} run_agent_sandbox;

/* Decide (the task's sandbox.isolation, run_sandbox_probe), record a `gap` (origin "sandbox")
 * for each isolation not given, make RUN/sandbox, and with the task's ca_file write the system
 * bundle plus that CA there and name it in the agent's environment (*env: NAME=value strings,
 * a NULL-terminated malloc'd vector, grown). 0, or an error with eb saying why. */
int run_agent_sandbox_setup(run_agent_sandbox *a, store *s, const task_spec *t, const run_dirs *d,
                            char ***env, ptb_errbuf *eb);

/* Once the network is set up (host_addr: its host end, or NULL): the sandbox's hosts file, and
 * the plan that the agent's process carries out (to->child_setup). 0 or an error (printed). */
int run_agent_sandbox_prepare(run_agent_sandbox *a, const task_spec *t, const run_dirs *d,
                              const char *host_addr, tracer_options *to);

/* Free the plan. */
void run_agent_sandbox_release(run_agent_sandbox *a);

#endif
