/* Tool calls tied to the processes they started: see tool_procs.h.
 *
 * exec_ids are given in order from 1, so the processes are an array indexed by exec_id. Each
 * knows its parent, whether it is in the harness, and its "top": the tool's process (a child of
 * the harness) it descends from, 0 when none. A call claims tops; its exec_ids are the processes
 * whose top it claimed. One mutex: the tracer's thread adds processes, the reader's thread
 * claims them. */
#include "tool_procs.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct tp_proc {
    bool known, harness, execve;
    int pid;
    uint64_t parent, top;
    int64_t ts;    /* wall time it got its exec_id */
    char *cmdline; /* a tool process's arguments, joined by spaces (tops only) */
    int claimed;   /* index + 1 of the call that claimed it (tops only) */
} tp_proc;

typedef struct tp_call {
    char *id;
    char *command; /* the input's "command", when it has one */
    int64_t ts;
    bool open;
} tp_call;

struct tool_procs {
    pthread_mutex_t mu;
    tp_proc *p;
    uint64_t cap;
    tp_call *calls;
    size_t n_calls, cap_calls, open_calls;
    int64_t first_call_ts;    /* the harness's children started before it are the harness */
    bool command_seen;        /* classify() has passed the command's first execve */
    uint64_t end, classified; /* exec_ids below end are known, below classified classified */
};

#define TP_CMDLINE_MAX 8192
/* the harness's children started this long before the first call are its own (a wrapper's
 * CLI, its helpers), unless they run a call's command (the reader saw the call late: a loaded
 * machine delays it by more than this) */
#define TP_HARNESS_NS 1000000000LL

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

tool_procs *tool_procs_new(void)
{
    tool_procs *tp = calloc(1, sizeof *tp);
    if (tp)
        pthread_mutex_init(&tp->mu, NULL);
    return tp;
}

void tool_procs_free(tool_procs *tp)
{
    if (!tp)
        return;
    for (uint64_t i = 0; i < tp->cap; i++)
        free(tp->p[i].cmdline);
    for (size_t i = 0; i < tp->n_calls; i++) {
        free(tp->calls[i].id);
        free(tp->calls[i].command);
    }
    free(tp->p);
    free(tp->calls);
    pthread_mutex_destroy(&tp->mu);
    free(tp);
}

static char *read_cmdline(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char *b = malloc(TP_CMDLINE_MAX + 1);
    size_t n = b ? fread(b, 1, TP_CMDLINE_MAX, f) : 0;
    fclose(f);
    if (!b)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (b[i] == 0)
            b[i] = ' ';
    b[n] = 0;
    return b;
}

void tool_procs_on_exec(void *arg, int pid, uint64_t exec_id, uint64_t parent_exec_id, bool execve)
{
    tool_procs *tp = arg;
    char *cmdline = execve ? read_cmdline(pid) : NULL; /* the process is stopped at its exec */
    pthread_mutex_lock(&tp->mu);
    if (exec_id >= tp->cap) {
        uint64_t cap = tp->cap ? tp->cap : 256;
        while (cap <= exec_id)
            cap *= 2;
        tp_proc *np = realloc(tp->p, cap * sizeof *np);
        if (!np) {
            pthread_mutex_unlock(&tp->mu);
            free(cmdline);
            return; /* this process stays unknown: its call's exec_ids miss it */
        }
        memset(np + tp->cap, 0, (cap - tp->cap) * sizeof *np);
        tp->p = np;
        tp->cap = cap;
    }
    tp_proc *p = &tp->p[exec_id];
    p->known = true;
    p->execve = execve;
    p->pid = pid;
    p->parent = parent_exec_id;
    p->ts = wall_ns();
    p->cmdline = cmdline;
    if (exec_id >= tp->end)
        tp->end = exec_id + 1;
    pthread_mutex_unlock(&tp->mu);
}

/* Whether the arguments hold the command (its first 200 bytes: shells quote, CLIs wrap). */
static bool holds(const char *cmdline, const char *command)
{
    if (!cmdline || !command)
        return false;
    size_t n = strlen(command);
    if (n > 200)
        n = 200;
    for (const char *s = cmdline; (s = strchr(s, command[0])); s++)
        if (strncmp(s, command, n) == 0)
            return true;
    return false;
}

/* Whether cmdline holds the command of a call seen so far. */
static bool holds_a_command(const tool_procs *tp, const char *cmdline)
{
    for (size_t i = 0; cmdline && i < tp->n_calls; i++)
        if (holds(cmdline, tp->calls[i].command))
            return true;
    return false;
}

/* The arguments e runs: its own, or, for a fork, those of its first exec (a later entry of the
 * same pid whose parent it is). */
static const char *first_cmdline(const tool_procs *tp, uint64_t e)
{
    const tp_proc *p = &tp->p[e];
    for (uint64_t j = e + 1; !p->cmdline && !p->execve && j < tp->end && j < e + 256; j++)
        if (tp->p[j].known && tp->p[j].execve && tp->p[j].pid == p->pid && tp->p[j].parent == e)
            return tp->p[j].cmdline;
    return p->cmdline;
}

/* Harness or tool's process, for the processes not yet classified (in exec_id order: a parent
 * has a smaller id than its children). Needs the first call's time. */
static void classify(tool_procs *tp)
{
    for (uint64_t e = tp->classified; e < tp->end; e++) {
        tp_proc *p = &tp->p[e];
        if (!p->known)
            continue;
        tp_proc *par =
            p->parent && p->parent < tp->cap && tp->p[p->parent].known ? &tp->p[p->parent] : NULL;
        if (!tp->command_seen) {
            /* up to the command's first execve: the recorder's own forks (the sandbox's P and
             * init) and the agent CLI itself */
            p->harness = true;
            tp->command_seen = p->execve;
        } else if (!par)
            p->harness = true; /* a root */
        else if (par->harness && p->ts < tp->first_call_ts - TP_HARNESS_NS) {
            if (holds_a_command(tp, first_cmdline(tp, e)))
                p->top = e; /* a call's process, its call read late */
            else
                p->harness = true; /* started by the harness before the first call */
        } else if (par->harness && p->execve && par->pid == p->pid)
            p->harness = true; /* the harness re-execs */
        else if (par->harness)
            p->top = e; /* a tool's process */
        else
            p->top = par->top;
        tp_proc *top = p->top ? &tp->p[p->top] : NULL;
        if (top && top != p && !top->cmdline && p->execve && top->pid == p->pid) {
            top->cmdline = p->cmdline; /* a forked top: known by its first exec */
            p->cmdline = NULL;
        }
        if (top != p) { /* only tops are matched by their arguments */
            free(p->cmdline);
            p->cmdline = NULL;
        }
    }
    tp->classified = tp->end;
}

void tool_procs_on_call(void *arg, const char *call_id, const char *name, const char *input,
                        int64_t ts)
{
    (void)name;
    tool_procs *tp = arg;
    char *command = NULL;
    json_t *in = input ? json_loads(input, 0, NULL) : NULL;
    const char *c = json_string_value(json_object_get(in, "command"));
    if (!c) /* Codex: "command" may be an argv array; the last element is the script */
        c = json_string_value(json_array_get(json_object_get(in, "command"),
                                             json_array_size(json_object_get(in, "command")) - 1));
    if (c && *c)
        command = strdup(c);
    json_decref(in);
    pthread_mutex_lock(&tp->mu);
    if (!tp->first_call_ts)
        tp->first_call_ts = ts ? ts : wall_ns();
    if (tp->n_calls == tp->cap_calls) {
        size_t cap = tp->cap_calls ? 2 * tp->cap_calls : 64;
        tp_call *nc = realloc(tp->calls, cap * sizeof *nc);
        if (!nc) {
            pthread_mutex_unlock(&tp->mu);
            free(command);
            return;
        }
        tp->calls = nc;
        tp->cap_calls = cap;
    }
    tp_call *k = &tp->calls[tp->n_calls];
    if (!(k->id = strdup(call_id))) {
        pthread_mutex_unlock(&tp->mu);
        free(command);
        return;
    }
    k->command = command;
    k->ts = ts ? ts : wall_ns();
    k->open = true;
    tp->n_calls++;
    tp->open_calls++;
    pthread_mutex_unlock(&tp->mu);
}

size_t tool_procs_for_result(void *arg, const char *call_id, int64_t ts, uint64_t *ids, size_t cap)
{
    tool_procs *tp = arg;
    size_t n = 0;
    pthread_mutex_lock(&tp->mu);
    size_t ci = tp->n_calls;
    for (size_t i = tp->n_calls; i-- > 0;)
        if (tp->calls[i].open && strcmp(tp->calls[i].id, call_id) == 0) {
            ci = i;
            break;
        }
    if (ci == tp->n_calls) {
        pthread_mutex_unlock(&tp->mu);
        return 0;
    }
    tp_call *k = &tp->calls[ci];
    int64_t until = ts ? ts : wall_ns();
    classify(tp);
    /* the tops this call started: in its window, unclaimed. First those that run its command
     * (a process may start just before the reader sees its call; long before only by its
     * command: the reader can lag by seconds on a loaded machine, and the command is specific).
     * Only when none does (and the call has a command: Read, Write, a subagent run inside the
     * agent CLI), what started after the call and runs no other open call's command;
     * with several calls open, not a process whose arguments we could have matched (a shell
     * wrapping the command in quotes of its own stays unclaimed). When one does, only what
     * started before it (a harness that runs a call's steps as its own children): the next
     * call's process may already run when the reader gets to this result (both lines read at
     * once), and its call is not read yet. */
    bool by_command = false;
    int64_t last_cmd_ts = 0; /* the latest start of a process that runs the command */
    for (int pass = 0; pass < 2; pass++)
        for (uint64_t e = 1; e < tp->cap; e++) {
            tp_proc *p = &tp->p[e];
            if (!p->known || p->top != e || p->claimed || p->ts > until)
                continue;
            bool mine = false;
            if (pass == 0)
                mine = holds(p->cmdline, k->command);
            else if (k->command && p->ts >= k->ts && (!by_command || p->ts <= last_cmd_ts)) {
                bool other = false;
                for (size_t j = 0; j < tp->n_calls && !other; j++)
                    other = j != ci && tp->calls[j].open && holds(p->cmdline, tp->calls[j].command);
                mine = !other && (tp->open_calls == 1 || !p->cmdline);
            }
            if (mine) {
                p->claimed = (int)ci + 1;
                if (pass == 0) {
                    by_command = true;
                    if (p->ts > last_cmd_ts)
                        last_cmd_ts = p->ts;
                }
            }
        }
    for (uint64_t e = 1; e < tp->cap && n < cap; e++) {
        tp_proc *p = &tp->p[e];
        if (p->known && p->top && tp->p[p->top].claimed == (int)ci + 1)
            ids[n++] = e;
    }
    k->open = false;
    tp->open_calls--;
    pthread_mutex_unlock(&tp->mu);
    return n;
}
