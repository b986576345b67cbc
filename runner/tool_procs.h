/* Which processes a tool call of a live agent started (`ptb run`): tool.result exec_ids.
 *
 * The tracer tells it of every exec_id as it is given (tracer_options.on_exec, tracer's thread);
 * the agent stream's parser tells it of every tool call and asks, at the call's result, which
 * processes the call started (agent_options.on_call / call_procs, the reader's thread).
 *
 * The agent harness is the command itself (the agent CLI: the tree's first execve, and the
 * sandbox's P and init before it), what it re-execs into, and the children it started before
 * the first tool call (by more than 100 ms: a tool's process may start before the reader sees
 * its call) with theirs: a wrapper script's CLI, the CLI's helpers.
 * A process whose parent is in the harness and that starts later is a tool's process (Claude
 * Code's Bash tool runs `bash -c ...` as a child of the CLI); it belongs to the call whose
 * input's "command" its arguments hold (however late the reader saw the call), or else to the
 * call with a command that was open when it started, holding no other open call's command (a
 * shell that quotes the command its own way; a harness's other children), and, when a process
 * of the call runs its command, started before that one (a later one is the next call's, whose
 * line the reader has not reached). A
 * tool's process and all its descendants (forks, execs, as known when the result comes) are the
 * call's exec_ids. Processes that start when no call is open, and calls without a command (Read,
 * Write: done inside the agent CLI), get none. */
#ifndef PTB_TOOL_PROCS_H
#define PTB_TOOL_PROCS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tool_procs tool_procs;

tool_procs *tool_procs_new(void);
void tool_procs_free(tool_procs *tp);

/* tracer_options.on_exec (arg: the tool_procs) */
void tool_procs_on_exec(void *arg, int pid, uint64_t exec_id, uint64_t parent_exec_id, bool execve);
/* agent_options.on_call / call_procs (procs_arg: the tool_procs) */
void tool_procs_on_call(void *arg, const char *call_id, const char *name, const char *input,
                        int64_t ts);
size_t tool_procs_for_result(void *arg, const char *call_id, int64_t ts, uint64_t *ids, size_t cap);

#endif
