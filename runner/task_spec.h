/* Task specs of `ptb run` (schemas/task.schema.json): read, checked, paths resolved.
 *
 *   task_spec t;
 *   if (task_spec_load("TASK.json", &t, &eb)) ... eb.msg: "TASK.json: $.budget.wall_s: ..."
 *   task_spec_free(&t);
 *
 * Every error names the JSON path at fault. Unknown members are refused: a misspelt member must
 * not be silently ignored. Relative paths are resolved against the folder of the task file and
 * must exist (base_model a folder, the splits files). */
#ifndef PTB_TASK_SPEC_H
#define PTB_TASK_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ptb_error.h"

typedef struct task_spec {
    char *path;         /* the task file as given */
    uint8_t sha256[32]; /* of its bytes */
    char *name;
    char *agent_name;   /* "agent" when not given */
    char **agent_argv;  /* NULL-terminated; {prompt} and {workspace} not yet replaced */
    char *stream;       /* "claude", "codex", "gemini", "opencode" or "none" */
    char **credentials; /* NULL-terminated names of the runner's variables for the agent CLI */
    char **env;         /* NULL-terminated "NAME=value" */
    char *base_model;   /* absolute paths from here on */
    char *bench_name;
    char *test_split;
    char *train_split; /* NULL when none */
    uint32_t max_tokens;
    char *prompt; /* the template */
    int64_t wall_s, kill_after_s, eval_wall_s;
    uint32_t gpus;
    char *net_mode; /* "ns" or "off" */
    bool canaries;
    /* sandbox */
    bool isolate;  /* "isolation": "auto" (true: namespaces where the machine allows) or "none" */
    char **hosts;  /* NULL-terminated "NAME ADDR" for the sandbox's /etc/hosts ("host": the
                         * runner's side of the network) */
    char *ca_file; /* a PEM CA the sandbox trusts besides the system's (absolute), or NULL */
} task_spec;

/* 0, or PTB_EPARSE (not JSON, or a member of the wrong type or value), -ENOENT / -ENOTDIR (a
 * path that does not exist), PTB_ENOMEM; eb says which JSON path and why. t is zeroed first and
 * always safe to task_spec_free. */
int task_spec_load(const char *path, task_spec *t, ptb_errbuf *eb);
void task_spec_free(task_spec *t);

/* The prompt with {model}, {benchmark}, {num_hours} and {workspace} replaced (malloc'd, caller
 * frees), NULL when out of memory. */
char *task_spec_prompt(const task_spec *t, const char *workspace);

#endif
