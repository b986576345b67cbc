/* `ptb replay exec` (replay_run.h, docs/commands/ptb-replay.md): the recorded steps run again,
 * each in a fresh sandbox that holds the capture roots as the recording had them just before
 * the step, under the recorder, and compared with what the step did when recorded.
 *
 * A step is a tool call that started processes (its tool.result exec_ids), or, in a store
 * without tool calls (`ptb record`), the recorded command itself. What runs again is the
 * step's first process as recorded: its program, argv, cwd and environment (secrets were never
 * stored: they are left out, and said so). The sandbox is a mount and network namespace: each
 * capture root rebuilt (replay.h) and bound at its own path, a fresh /tmp, only loopback. A
 * step whose processes reached another host is not run (its replies are not in the store in a
 * form that can be served back): it is listed as not replayable, with the address.
 *
 * Compared: the exit code of the step's first process, the files written (path and SHA-256 of
 * the last write) and deleted under the capture roots, and the programs executed. The new run
 * is one store (--out), each step between run.phase events "step N". */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ptb_cli.h"
#include "record_session.h"
#include "replay.h"
#include "replay_net.h"
#include "replay_run.h"

#define STEP_ROOTS_MAX 16

/* ------------------------------------------------------------------ string sets */

typedef struct strs {
    char **v;
    size_t n, cap;
} strs;

static int strs_add(strs *s, const char *x)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 16;
        char **nv = realloc(s->v, nc * sizeof *nv);
        if (!nv)
            return PTB_ENOMEM;
        s->v = nv, s->cap = nc;
    }
    return (s->v[s->n] = strdup(x)) ? (s->n++, 0) : PTB_ENOMEM;
}

static void strs_free(strs *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void strs_sort(strs *s)
{
    if (s->n > 1) /* qsort of a NULL array is undefined, also for no element */
        qsort(s->v, s->n, sizeof *s->v, cmp_str);
}

/* ------------------------------------------------------------------ what a step did */

typedef struct facts {
    strs written; /* "PATH\tSHA256HEX", last write per path, sorted */
    strs deleted; /* paths, sorted */
    strs progs;   /* exe of every execve, sorted (a multiset) */
    strs net;     /* remote ends other than loopback */
    int exit_code;
    bool exited;
} facts;

static void facts_free(facts *f)
{
    strs_free(&f->written);
    strs_free(&f->deleted);
    strs_free(&f->progs);
    strs_free(&f->net);
}

static bool loopback(const char *ip)
{
    return !strncmp(ip, "127.", 4) || !strcmp(ip, "::1") || !strncmp(ip, "::ffff:127.", 11) ||
           !ip[0];
}

static void hex32(const uint8_t *b, size_t n, char *out)
{
    out[0] = 0;
    for (size_t i = 0; i < n && i < 32; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

/* The facts of events ev of a step, in seq order; first_pid = the step's first process (its
 * exit: under the exec_id of the last program it ran, `bash -c CMD` execs CMD). */
static int facts_add(facts *f, const ptb_event *ev, int32_t first_pid, const replay_state *roots)
{
    char line[8192], h[65];
    switch (ev->body_case) {
    case PTB__V1__EVENT__BODY_PROC_EXEC:
        if (!ev->proc_exec->first_seen)
            return strs_add(&f->progs, ev->proc_exec->exe ? ev->proc_exec->exe : "");
        return 0;
    case PTB__V1__EVENT__BODY_PROC_EXIT:
        if (ev->proc_exit->pid == first_pid) {
            f->exited = true;
            f->exit_code =
                ev->proc_exit->signal ? 128 + ev->proc_exit->signal : ev->proc_exit->exit_code;
        }
        return 0;
    case PTB__V1__EVENT__BODY_FILE_WRITE: {
        const Ptb__V1__FileWrite *w = ev->file_write;
        if (!replay_state_root_of(roots, w->path))
            return 0;
        hex32(w->sha256.data, w->sha256.len, h);
        snprintf(line, sizeof line, "%s\t%s", w->path, h[0] ? h : "unhashed");
        size_t pl = strlen(w->path);
        for (size_t i = 0; i < f->written.n; i++) /* the last write of a path counts */
            if (!strncmp(f->written.v[i], w->path, pl) && f->written.v[i][pl] == '\t') {
                free(f->written.v[i]);
                return (f->written.v[i] = strdup(line)) ? 0 : PTB_ENOMEM;
            }
        return strs_add(&f->written, line);
    }
    case PTB__V1__EVENT__BODY_FILE_RENAME: { /* a file written, then renamed: its new name */
        const Ptb__V1__FileRename *r = ev->file_rename;
        size_t pl = strlen(r->path);
        for (size_t i = 0; r->result == 0 && i < f->written.n; i++)
            if (!strncmp(f->written.v[i], r->path, pl) && f->written.v[i][pl] == '\t') {
                snprintf(line, sizeof line, "%s%s", r->new_path, f->written.v[i] + pl);
                free(f->written.v[i]);
                return (f->written.v[i] = strdup(line)) ? 0 : PTB_ENOMEM;
            }
        return 0;
    }
    case PTB__V1__EVENT__BODY_FILE_UNLINK:
        if (ev->file_unlink->result == 0 && replay_state_root_of(roots, ev->file_unlink->path))
            return strs_add(&f->deleted, ev->file_unlink->path);
        return 0;
    case PTB__V1__EVENT__BODY_NET_CONNECT:
    case PTB__V1__EVENT__BODY_NET_SEND: {
        const Ptb__V1__NetConnect *c =
            ev->body_case == PTB__V1__EVENT__BODY_NET_CONNECT ? ev->net_connect : ev->net_send;
        if (!c->remote || !c->remote->ip || loopback(c->remote->ip) || !strcmp(c->proto, "unix"))
            return 0;
        snprintf(line, sizeof line, "%s %s:%u%s%s", c->proto, c->remote->ip, c->remote->port,
                 c->host && c->host[0] ? " " : "", c->host ? c->host : "");
        return strs_add(&f->net, line);
    }
    default: return 0;
    }
}

/* ------------------------------------------------------------------ the steps */

typedef struct proc_rec {
    uint64_t exec_id, parent, seq;
} proc_rec;

typedef struct step {
    uint64_t seq;    /* the tool.call (or the first process's proc.exec) */
    uint64_t before; /* the state the step starts from: after this seq */
    char *label;     /* "Bash: COMMAND" */
    uint64_t *ids;   /* the step's exec_ids, descendants included, sorted */
    size_t nids;
    uint64_t top;     /* the process that runs again */
    uint64_t top_seq; /* its proc.exec */
    int32_t top_pid;
    facts rec, now;
    int state; /* 0 same, 1 diverged, 2 not replayable, 3 failed to run */
    char why[512];
    strs diffs;
} step;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_proc(const void *a, const void *b)
{
    return cmp_u64(&((const proc_rec *)a)->exec_id, &((const proc_rec *)b)->exec_id);
}

static const proc_rec *proc_find(const proc_rec *v, size_t n, uint64_t id)
{
    proc_rec key = {.exec_id = id};
    return bsearch(&key, v, n, sizeof *v, cmp_proc);
}

/* Every proc.exec of the store (exec_id, parent, seq), sorted by exec_id. */
static int read_procs(store_txn *t, proc_rec **out, size_t *n)
{
    store_range r = {.by_index = true,
                     .index = STORE_IX_TYPE,
                     .key = store_type_key(PTB__V1__EVENT__BODY_PROC_EXEC)};
    store_cursor *c;
    int rc = store_cursor_open(t, &r, &c);
    if (rc)
        return rc;
    proc_rec *v = NULL;
    size_t k = 0, cap = 0;
    const ptb_event *ev;
    while ((rc = store_cursor_next(c, &ev)) == 0) {
        if (k == cap) {
            proc_rec *nv = realloc(v, (cap = cap ? cap * 2 : 256) * sizeof *nv);
            if (!nv) {
                rc = PTB_ENOMEM;
                break;
            }
            v = nv;
        }
        v[k++] = (proc_rec){ev->exec_id, ev->proc_exec->parent_exec_id, ev->seq};
    }
    store_cursor_close(c);
    if (rc != PTB_ENOTFOUND) {
        free(v);
        return rc;
    }
    if (k > 1)
        qsort(v, k, sizeof *v, cmp_proc);
    *out = v;
    *n = k;
    return 0;
}

/* ids plus their descendants (through parent), sorted, unique. */
static int close_tree(const proc_rec *p, size_t np, uint64_t **ids, size_t *n)
{
    bool grew = true;
    while (grew) {
        grew = false;
        for (size_t i = 0; i < np; i++) {
            bool in = bsearch(&p[i].exec_id, *ids, *n, sizeof **ids, cmp_u64) != NULL;
            bool parent_in = bsearch(&p[i].parent, *ids, *n, sizeof **ids, cmp_u64) != NULL;
            if (!in && parent_in) {
                uint64_t *nv = realloc(*ids, (*n + 1) * sizeof *nv);
                if (!nv)
                    return PTB_ENOMEM;
                *ids = nv;
                (*ids)[(*n)++] = p[i].exec_id;
                qsort(*ids, *n, sizeof **ids, cmp_u64);
                grew = true;
            }
        }
    }
    return 0;
}

typedef struct exec_ctx {
    store *s;
    store_txn *t;
    proc_rec *procs;
    size_t nprocs;
    step *steps;
    size_t nsteps, cap;
    uint64_t from, until;
    const char *work;
    bool quiet, json;
    int timeout_s;
} exec_ctx;

static step *step_new(exec_ctx *x)
{
    if (x->nsteps == x->cap) {
        size_t nc = x->cap ? x->cap * 2 : 16;
        step *nv = realloc(x->steps, nc * sizeof *nv);
        if (!nv)
            return NULL;
        x->steps = nv, x->cap = nc;
    }
    step *s = &x->steps[x->nsteps++];
    memset(s, 0, sizeof *s);
    return s;
}

/* The steps: tool calls with processes, else the recorded command. */
static int find_steps(exec_ctx *x, ptb_errbuf *eb)
{
    store_range r = {.seq_from = x->from,
                     .seq_to = x->until,
                     .by_index = true,
                     .index = STORE_IX_TYPE,
                     .key = store_type_key(PTB__V1__EVENT__BODY_TOOL_RESULT)};
    store_cursor *c;
    int rc = store_cursor_open(x->t, &r, &c);
    if (rc)
        return rc;
    const ptb_event *ev;
    while ((rc = store_cursor_next(c, &ev)) == 0) {
        const Ptb__V1__ToolResult *tr = ev->tool_result;
        if (!tr->n_exec_ids)
            continue;
        step *s = step_new(x);
        if (!s || !(s->ids = malloc(tr->n_exec_ids * sizeof *s->ids))) {
            rc = PTB_ENOMEM;
            break;
        }
        memcpy(s->ids, tr->exec_ids, tr->n_exec_ids * sizeof *s->ids);
        s->nids = tr->n_exec_ids;
        s->seq = ev->seq; /* the call's seq below, when found */
        s->label = strdup(tr->call_id ? tr->call_id : "");
    }
    store_cursor_close(c);
    if (rc != PTB_ENOTFOUND)
        return rc;
    rc = 0;
    /* the calls: their names and inputs, by call_id */
    r.key = store_type_key(PTB__V1__EVENT__BODY_TOOL_CALL);
    r.seq_from = 1;
    if (x->nsteps && !(rc = store_cursor_open(x->t, &r, &c))) {
        while ((rc = store_cursor_next(c, &ev)) == 0) {
            const Ptb__V1__ToolCall *tc = ev->tool_call;
            for (size_t i = 0; i < x->nsteps; i++) {
                step *s = &x->steps[i];
                if (s->label && tc->call_id && !strcmp(s->label, tc->call_id) && s->seq > ev->seq) {
                    /* "Bash: COMMAND" when the input has a command, else the input */
                    char buf[200];
                    json_t *in = tc->input ? json_loads(tc->input, 0, NULL) : NULL;
                    json_t *cm = in ? json_object_get(in, "command") : NULL;
                    snprintf(buf, sizeof buf, "%s: %s", tc->name ? tc->name : "?",
                             json_is_string(cm) ? json_string_value(cm)
                             : tc->input        ? tc->input
                                                : "");
                    json_decref(in);
                    free(s->label);
                    s->label = strdup(buf);
                    s->seq = ev->seq;
                }
            }
        }
        store_cursor_close(c);
        rc = rc == PTB_ENOTFOUND ? 0 : rc;
    }
    if (rc)
        return rc;
    if (!x->nsteps) { /* no tool calls: the recorded command */
        for (size_t i = 0; i < x->nprocs; i++) {
            const proc_rec *p = &x->procs[i];
            if (p->parent != 0 || p->seq < x->from || (x->until && p->seq > x->until))
                continue;
            step *s = step_new(x);
            if (!s || !(s->ids = malloc(sizeof *s->ids)))
                return PTB_ENOMEM;
            s->ids[0] = p->exec_id;
            s->nids = 1;
            s->seq = p->seq;
            s->label = strdup("the recorded command");
            break;
        }
    }
    if (!x->nsteps)
        return ptb_errf(eb, PTB_EINVAL,
                        "no step to replay in the range: no tool call started a process, and no "
                        "recorded command");
    for (size_t i = 0; i < x->nsteps; i++) {
        step *s = &x->steps[i];
        if (!s->label)
            return PTB_ENOMEM;
        qsort(s->ids, s->nids, sizeof *s->ids, cmp_u64);
        if ((rc = close_tree(x->procs, x->nprocs, &s->ids, &s->nids)))
            return rc;
        /* the process that runs again: the earliest whose parent is not the step's */
        uint64_t first_seq = UINT64_MAX;
        for (size_t k = 0; k < s->nids; k++) {
            const proc_rec *p = proc_find(x->procs, x->nprocs, s->ids[k]);
            if (!p)
                continue;
            if (!bsearch(&p->parent, s->ids, s->nids, sizeof *s->ids, cmp_u64) &&
                p->seq < first_seq)
                first_seq = p->seq, s->top = p->exec_id, s->top_seq = p->seq;
        }
        if (!s->top)
            return ptb_errf(eb, PTB_ECORRUPT, "step %zu: its processes have no proc.exec", i + 1);
        s->before = (s->seq < s->top_seq ? s->seq : s->top_seq) - 1;
    }
    return 0;
}

/* The recorded facts of a step: the events of its exec_ids. */
static int step_facts(exec_ctx *x, step *s, const replay_state *roots)
{
    const ptb_event *top;
    int trc = store_event_get(x->t, s->top_seq, &top);
    if (trc)
        return trc;
    s->top_pid = top->proc_exec->pid;
    for (size_t k = 0; k < s->nids; k++) {
        store_range r = {.by_index = true, .index = STORE_IX_EXEC, .key = s->ids[k]};
        store_cursor *c;
        int rc = store_cursor_open(x->t, &r, &c);
        if (rc)
            return rc;
        const ptb_event *ev;
        while ((rc = store_cursor_next(c, &ev)) == 0)
            if ((rc = facts_add(&s->rec, ev, s->top_pid, roots)))
                break;
        store_cursor_close(c);
        if (rc != PTB_ENOTFOUND)
            return rc;
    }
    strs_sort(&s->rec.written);
    strs_sort(&s->rec.deleted);
    strs_sort(&s->rec.progs);
    return 0;
}

/* ------------------------------------------------------------------ the sandbox */

typedef struct sandbox {
    size_t n;
    char src[STEP_ROOTS_MAX][PATH_MAX]; /* rebuilt trees */
    char dst[STEP_ROOTS_MAX][PATH_MAX]; /* the roots' own paths */
    char cwd[PATH_MAX];                 /* the step's recorded cwd */
    char resolv[PATH_MAX];              /* "": none; else bound at /etc/resolv.conf */
} sandbox;

/* mkdir -p without allocation (in the child) */
static int mkdirs(const char *path)
{
    char p[PATH_MAX];
    size_t l = strlen(path);
    if (l >= sizeof p)
        return -ENAMETOOLONG;
    memcpy(p, path, l + 1);
    for (size_t i = 1; i <= l; i++)
        if (p[i] == '/' || p[i] == 0) {
            char ch = p[i];
            p[i] = 0;
            if (mkdir(p, 0755) && errno != EEXIST)
                return -errno;
            p[i] = ch;
        }
    return 0;
}

static int fail_msg(char *msg, size_t cap, const char *what, const char *path)
{
    int e = errno;
    snprintf(msg, cap, "%s %s: %s", what, path, strerror(e));
    return -e;
}

/* In the step's process, before the seccomp filter and exec: its own mounts and network. */
static int sandbox_child(void *arg, char *msg, size_t cap)
{
    const sandbox *sb = arg;
    if (unshare(CLONE_NEWNS))
        return fail_msg(msg, cap, "unshare", "(a mount namespace)");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
        return fail_msg(msg, cap, "making the mounts private:", "/");
    /* the rebuilt trees may be under /tmp: held open before the fresh /tmp hides them */
    int src[STEP_ROOTS_MAX];
    for (size_t i = 0; i < sb->n; i++)
        if ((src[i] = open(sb->src[i], O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
            return fail_msg(msg, cap, "opening the rebuilt root", sb->src[i]);
    /* the GPU recorder's socket folder (/tmp/ptb-gpu-...), kept visible in the fresh /tmp */
    char gdir[PATH_MAX] = "";
    int gfd = -1;
    const char *gs = getenv("PTB_GPU_SOCKET");
    const char *gslash = gs ? strrchr(gs, '/') : NULL;
    if (gs && !strncmp(gs, "/tmp/", 5) && gslash && (size_t)(gslash - gs) < sizeof gdir) {
        memcpy(gdir, gs, (size_t)(gslash - gs));
        gdir[gslash - gs] = 0;
        gfd = open(gdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    }
    if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"))
        return fail_msg(msg, cap, "a fresh /tmp:", "/tmp");
    if (gfd >= 0) {
        char via[64];
        snprintf(via, sizeof via, "/proc/self/fd/%d", gfd);
        if (mkdirs(gdir) || mount(via, gdir, NULL, MS_BIND, NULL))
            return fail_msg(msg, cap, "binding the GPU recorder's socket folder at", gdir);
    }
    for (size_t i = 0; i < sb->n; i++) {
        int rc = mkdirs(sb->dst[i]);
        if (rc) {
            errno = -rc;
            return fail_msg(msg, cap, "making the mount point", sb->dst[i]);
        }
        char via[64];
        snprintf(via, sizeof via, "/proc/self/fd/%d", src[i]);
        if (mount(via, sb->dst[i], NULL, MS_BIND | MS_REC, NULL))
            return fail_msg(msg, cap, "binding the rebuilt root at", sb->dst[i]);
    }
    if (sb->resolv[0] && mount(sb->resolv, "/etc/resolv.conf", NULL, MS_BIND, NULL))
        return fail_msg(msg, cap, "binding a resolv.conf at", "/etc/resolv.conf");
    if (chdir(sb->cwd))
        return fail_msg(msg, cap, "the recorded working folder", sb->cwd);
    return 0;
}

/* ------------------------------------------------------------------ one step */

typedef struct step_cmd {
    char **argv, **env;
    char *cwd;
    strs dropped; /* environment variables left out (secrets) */
} step_cmd;

static void step_cmd_free(step_cmd *c)
{
    for (size_t i = 0; c->argv && c->argv[i]; i++)
        free(c->argv[i]);
    for (size_t i = 0; c->env && c->env[i]; i++)
        free(c->env[i]);
    free(c->argv);
    free(c->env);
    free(c->cwd);
    strs_free(&c->dropped);
}

/* The top process's argv, cwd and environment (an inherited one from its parents). */
static int step_command(exec_ctx *x, const step *s, step_cmd *c)
{
    const ptb_event *ev;
    int rc = store_event_get(x->t, s->top_seq, &ev);
    if (rc)
        return rc;
    const Ptb__V1__ProcExec *pe = ev->proc_exec;
    if (!pe->n_argv)
        return PTB_ECORRUPT;
    if (!(c->argv = calloc(pe->n_argv + 1, sizeof *c->argv)) || !(c->cwd = strdup(pe->cwd)))
        return PTB_ENOMEM;
    for (size_t i = 0; i < pe->n_argv; i++)
        if (!(c->argv[i] = strdup(pe->argv[i])))
            return PTB_ENOMEM;
    if (pe->exe && pe->exe[0] == '/') { /* the program as it ran, not as PATH finds it now */
        free(c->argv[0]);
        if (!(c->argv[0] = strdup(pe->exe)))
            return PTB_ENOMEM;
    }
    /* the environment: this exec's, or the nearest parent's that is stored */
    uint64_t id = s->top;
    for (int hops = 0; hops < 1000; hops++) {
        if (!pe->env_inherited && (pe->n_env || !pe->parent_exec_id))
            break;
        const proc_rec *p = proc_find(x->procs, x->nprocs, pe->parent_exec_id);
        if (!p || (rc = store_event_get(x->t, p->seq, &ev)))
            break;
        pe = ev->proc_exec;
        id = p->exec_id;
    }
    (void)id;
    if (!(c->env = calloc(pe->n_env + 1, sizeof *c->env)))
        return PTB_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < pe->n_env; i++) {
        const Ptb__V1__EnvVar *v = pe->env[i];
        if (v->redacted) {
            if ((rc = strs_add(&c->dropped, v->name)))
                return rc;
            continue;
        }
        size_t l = strlen(v->name) + strlen(v->value ? v->value : "") + 2;
        if (!(c->env[k] = malloc(l)))
            return PTB_ENOMEM;
        snprintf(c->env[k++], l, "%s=%s", v->name, v->value ? v->value : "");
    }
    return 0;
}

/* The key of a set entry: a written file's path (before the tab), else the whole entry. */
static size_t key_len(const char *e)
{
    const char *tab = strchr(e, '\t');
    return tab ? (size_t)(tab - e) : strlen(e);
}

static int cmp_key(const char *x, const char *y)
{
    size_t a = key_len(x), b = key_len(y);
    int c = memcmp(x, y, a < b ? a : b);
    return c ? c : a < b ? -1 : a > b;
}

static void diff_sets(step *s, const char *what, const strs *a, const strs *b)
{
    size_t i = 0, k = 0;
    char line[8300];
    while (i < a->n || k < b->n) {
        int cmp = i == a->n ? 1 : k == b->n ? -1 : cmp_key(a->v[i], b->v[k]);
        if (cmp < 0)
            snprintf(line, sizeof line, "%s only when recorded: %.*s", what, (int)key_len(a->v[i]),
                     a->v[i]);
        else if (cmp > 0)
            snprintf(line, sizeof line, "%s only in the replay: %.*s", what, (int)key_len(b->v[k]),
                     b->v[k]);
        else if (strcmp(a->v[i], b->v[k])) /* a file written with other bytes */
            snprintf(line, sizeof line,
                     "%s with other content: %.*s (SHA-256 %.12s... when "
                     "recorded, %.12s... in the replay)",
                     what, (int)key_len(a->v[i]), a->v[i], a->v[i] + key_len(a->v[i]) + 1,
                     b->v[k] + key_len(b->v[k]) + 1);
        if (cmp || strcmp(a->v[i], b->v[k]))
            strs_add(&s->diffs, line);
        i += cmp <= 0, k += cmp >= 0;
    }
}

extern char **environ;

static int run_step(exec_ctx *x, step *s, size_t idx, const char *sdir, ptb_errbuf *eb)
{
    /* the state before the step, one folder per root */
    replay_state *st = NULL;
    int rc = replay_state_build(x->t, s->before ? s->before : 1, NULL, 0, &st, eb);
    if (rc)
        return rc;
    if (st->nroots > STEP_ROOTS_MAX) {
        replay_state_free(st);
        return ptb_errf(eb, PTB_EINVAL, "more than %d capture roots", STEP_ROOTS_MAX);
    }
    sandbox sb = {0};
    const char *roots[STEP_ROOTS_MAX];
    strs incomplete = {0};
    /* bound shortest path first: a root inside another (the workspace under /tmp) comes after */
    size_t order[STEP_ROOTS_MAX];
    for (size_t i = 0; i < st->nroots; i++) {
        size_t k = i;
        for (; k > 0 && strlen(st->roots[order[k - 1]].path) > strlen(st->roots[i].path); k--)
            order[k] = order[k - 1];
        order[k] = i;
    }
    for (size_t j = 0; !rc && j < st->nroots; j++) {
        size_t i = j;
        const rp_root *ro = &st->roots[order[j]];
        snprintf(sb.src[i], PATH_MAX, "%s/root%zu", sdir, i);
        snprintf(sb.dst[i], PATH_MAX, "%s", ro->path);
        roots[i] = sb.dst[i];
        replay_fs_options fo = {.to = sb.src[i], .root = ro->path, .create_missing = true};
        replay_fs_result fr;
        rc = replay_fs_write(x->t, st, &fo, &fr, eb);
        for (size_t k = 0; !rc && k < fr.nmissing; k++)
            rc = strs_add(&incomplete, fr.missing[k].path);
        replay_fs_result_free(&fr);
        sb.n++;
    }
    replay_net *rn = NULL;
    if (!rc && (rc = step_facts(x, s, st)) == 0 && s->rec.net.n) {
        char why[400] = "";
        rc = replay_net_plan(x->t, s->ids, s->nids, &rn, why, sizeof why);
        if (rc == PTB_EINVAL || (!rc && !replay_net_servers(rn))) {
            s->state = 2;
            snprintf(s->why, sizeof s->why, "it used the network (%s%s): %s", s->rec.net.v[0],
                     s->rec.net.n > 1 ? ", ..." : "",
                     why[0] ? why
                            : "no packet of its flows is in the store (recorded without a "
                              "packet capture)");
            rc = 0;
        } else if (rc) {
            ptb_errf(eb, rc, "step %zu: %s", idx + 1, why);
        }
    }
    step_cmd cmd = {0};
    if (!rc && s->state == 0)
        rc = step_command(x, s, &cmd);
    if (!rc && s->state == 0) {
        char detail[64];
        snprintf(detail, sizeof detail, "step %zu: seq %" PRIu64, idx + 1, s->seq);
        Ptb__V1__RunPhase ph = PTB__V1__RUN_PHASE__INIT;
        ph.phase = (char *)"replay";
        ph.state = (char *)"begin";
        ph.detail = detail;
        ptb_event pev = PTB__V1__EVENT__INIT;
        pev.source = PTB__V1__SOURCE__SOURCE_RUNNER;
        pev.body_case = PTB__V1__EVENT__BODY_RUN_PHASE;
        pev.run_phase = &ph;
        uint64_t first = 0, last = 0;
        rc = store_append(x->s, &pev, 0, &first);
        record_session_options o;
        record_session_options_default(&o);
        o.to.capture_roots = roots;
        o.to.n_capture_roots = sb.n;
        o.to.snapshot = false; /* the roots are what replay rebuilt, not the host's folders */
        o.to.child_setup = sandbox_child;
        o.to.child_setup_arg = &sb;
        o.to.budget_ms = (int64_t)x->timeout_s * 1000;
        o.to.grace_ms = 5000;
        o.to.term_grace_ms = 5000;
        o.net.mode = "off"; /* its own namespace: loopback and the recorded servers */
        pid_t srv = -1;
        int nsfd = -1, life = -1;
        char nerr[320];
        if (!rc && (rc = replay_net_start(rn, &srv, &life, &nsfd, nerr, sizeof nerr)))
            ptb_errf(eb, rc, "step %zu: %s", idx + 1, nerr);
        o.to.netns_fd = nsfd;
        const char *resolver = replay_net_resolver(rn);
        if (!rc && resolver) {
            snprintf(sb.resolv, sizeof sb.resolv, "%s.resolv", sdir);
            FILE *rf = fopen(sb.resolv, "w");
            if (!rf || fprintf(rf, "nameserver %s\n", resolver) < 0 || fclose(rf))
                rc = ptb_errf(eb, -EIO, "step %zu: writing %s", idx + 1, sb.resolv);
        }
        o.gpu = true;
        o.quiet = true;
        record_session_result res;
        memset(&res, 0, sizeof res);
        char saved_cwd[PATH_MAX];
        char **saved_env = environ;
        if (!rc && !getcwd(saved_cwd, sizeof saved_cwd))
            rc = -errno;
        int out = -1, saved_out = -1, saved_err = -1;
        char logp[PATH_MAX];
        snprintf(logp, sizeof logp, "%s.log", sdir);
        if (!rc && (out = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) >= 0) {
            fflush(stdout), fflush(stderr);
            saved_out = dup(1), saved_err = dup(2);
            dup2(out, 1), dup2(out, 2);
        }
        if (!rc)
            snprintf(sb.cwd, sizeof sb.cwd, "%s", cmd.cwd);
        if (!rc) {
            environ = cmd.env;
            rc = chdir("/") ? -errno : 0;
            if (!rc)
                rc = record_session_run(x->s, &o, cmd.argv, NULL, NULL, &res);
            environ = saved_env;
            if (chdir(saved_cwd) && !rc)
                rc = -errno;
        }
        if (saved_out >= 0) {
            fflush(stdout), fflush(stderr);
            dup2(saved_out, 1), dup2(saved_err, 2);
            close(saved_out), close(saved_err);
        }
        if (out >= 0)
            close(out);
        replay_net_stop(srv, life);
        if (nsfd >= 0) /* the tracer's child closed its own copy */
            close(nsfd);
        ph.state = (char *)"end";
        if (!rc)
            rc = store_append(x->s, &pev, 0, &last);
        if (!rc)
            rc = store_flush(x->s);
        if (rc) {
            if (!eb->msg[0])
                ptb_errf(eb, rc, "step %zu: %s", idx + 1,
                         res.error[0] ? res.error : ptb_strerror(rc));
        } else if (!res.r.started) {
            s->state = 3;
            snprintf(s->why, sizeof s->why, "could not start: %s (log %.400s)",
                     strerror(res.r.exec_errno), logp);
        } else {
            /* the new facts: everything of the step's run */
            store_txn *nt;
            if (!(rc = store_txn_begin(x->s, &nt))) {
                store_range r = {.seq_from = first, .seq_to = last};
                store_cursor *c;
                if (!(rc = store_cursor_open(nt, &r, &c))) {
                    const ptb_event *ev;
                    int32_t top = 0;
                    while ((rc = store_cursor_next(c, &ev)) == 0) {
                        if (ev->body_case == PTB__V1__EVENT__BODY_PROC_EXEC && !top)
                            top = ev->proc_exec->pid; /* the command's own process */
                        if ((rc = facts_add(&s->now, ev, top, st)))
                            break;
                    }
                    store_cursor_close(c);
                    rc = rc == PTB_ENOTFOUND ? 0 : rc;
                }
                store_txn_end(nt);
            }
            if (!s->now.exited && res.r.signal == 0) {
                s->now.exited = true;
                s->now.exit_code = res.r.exit_code;
            }
            strs_sort(&s->now.written);
            strs_sort(&s->now.deleted);
            strs_sort(&s->now.progs);
            if (s->rec.exit_code != s->now.exit_code || s->rec.exited != s->now.exited) {
                char line[128];
                snprintf(line, sizeof line, "exit code %d when recorded, %d in the replay",
                         s->rec.exited ? s->rec.exit_code : -1,
                         s->now.exited ? s->now.exit_code : -1);
                strs_add(&s->diffs, line);
            }
            diff_sets(s, "file written", &s->rec.written, &s->now.written);
            diff_sets(s, "file deleted", &s->rec.deleted, &s->now.deleted);
            diff_sets(s, "program run", &s->rec.progs, &s->now.progs);
            s->state = s->diffs.n ? 1 : 0;
            if (replay_net_servers(rn))
                snprintf(s->why, sizeof s->why,
                         "its network replies were served from the stored packets (%s%s)",
                         s->rec.net.v[0], s->rec.net.n > 1 ? ", ..." : "");
            if (res.r.budget_expired)
                snprintf(s->why, sizeof s->why, "stopped after --timeout %d s", x->timeout_s);
            if (cmd.dropped.n && s->state) {
                size_t l = strlen(s->why);
                snprintf(s->why + l, sizeof s->why - l,
                         "%sran without %zu secret variable(s) the recording redacted (%s%s)",
                         l ? "; " : "", cmd.dropped.n, cmd.dropped.v[0],
                         cmd.dropped.n > 1 ? ", ..." : "");
            }
            if (incomplete.n && s->state) {
                size_t l = strlen(s->why);
                snprintf(s->why + l, sizeof s->why - l,
                         "%sstarted from a tree lacking %zu file(s) the store did not hold (%s%s)",
                         l ? "; " : "", incomplete.n, incomplete.v[0],
                         incomplete.n > 1 ? ", ..." : "");
            }
        }
    }
    replay_net_free(rn);
    step_cmd_free(&cmd);
    strs_free(&incomplete);
    replay_state_free(st);
    return rc;
}

/* ------------------------------------------------------------------ the report */

static const char *state_name(int st)
{
    return st == 0 ? "same" : st == 1 ? "diverged" : st == 2 ? "not replayable" : "failed";
}

static json_t *strs_json(const strs *s)
{
    json_t *a = json_array();
    for (size_t i = 0; i < s->n; i++) {
        json_t *j = json_string(s->v[i]); /* NULL: not UTF-8 */
        json_array_append_new(a, j ? j : json_string("(not UTF-8)"));
    }
    return a;
}

static int rm_rf(const char *path)
{
    pid_t pid = fork();
    if (pid == 0) {
        execlp("rm", "rm", "-rf", "--", path, (char *)NULL);
        _exit(127);
    }
    int st;
    return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && !WEXITSTATUS(st) ? 0 : -EIO;
}

int replay_exec_main(const char *store_dir, const char *from, const char *until, const char *work,
                     const char *out, bool json, bool quiet, int timeout_s)
{
    exec_ctx x = {.json = json, .quiet = quiet, .timeout_s = timeout_s ? timeout_s : 3600};
    ptb_errbuf eb = {{0}};
    store *src = NULL;
    int rc = store_open(store_dir, NULL, STORE_RDONLY, &src);
    if (rc) {
        if (src && *store_errmsg(src)) /* it names the folder */
            fprintf(stderr, "ptb replay: %s\n", store_errmsg(src));
        else
            fprintf(stderr, "ptb replay: %s: %s\n", store_dir, ptb_strerror(rc));
        store_close(src);
        return ptb_exit_code(rc);
    }
    int code = PTB_EXIT_OK;
    char wdir[PATH_MAX - 64], outp[PATH_MAX];
    if ((rc = store_txn_begin(src, &x.t)))
        goto fail;
    if ((from && (rc = replay_parse_at(x.t, from, &x.from, &eb))) ||
        (until && (rc = replay_parse_at(x.t, until, &x.until, &eb))))
        goto fail;
    if ((rc = read_procs(x.t, &x.procs, &x.nprocs)) || (rc = find_steps(&x, &eb)))
        goto fail;
    /* the work folder: new or empty */
    if ((rc = replay_new_dir(work, "--work ", "ptb-replay", wdir, sizeof wdir, &eb)))
        goto fail;
    snprintf(outp, sizeof outp, "%s", out ? out : "");
    if (!out)
        snprintf(outp, sizeof outp, "%s/replay.ptb", wdir);
    if ((rc = store_open(outp, NULL, STORE_CREATE | STORE_EXCL, &x.s))) {
        ptb_errf(&eb, rc, "the new store %s: %s", outp,
                 x.s && *store_errmsg(x.s) ? store_errmsg(x.s) : ptb_strerror(rc));
        store_close(x.s);
        x.s = NULL;
        goto fail;
    }
    if (!quiet && !json)
        fprintf(stderr, "ptb replay: %zu steps of %s; work folder %s\n", x.nsteps, store_dir, wdir);
    size_t counts[4] = {0};
    for (size_t i = 0; i < x.nsteps; i++) {
        step *s = &x.steps[i];
        char sdir[PATH_MAX - 32];
        snprintf(sdir, sizeof sdir, "%s/step-%zu", wdir, i + 1);
        if ((rc = run_step(&x, s, i, sdir, &eb)))
            goto fail;
        rm_rf(sdir); /* the rebuilt trees: the new store has what the step did */
        counts[s->state]++;
        if (!json) {
            printf("step %zu (seq %" PRIu64 ", %.80s): %s%s%s\n", i + 1, s->seq, s->label,
                   state_name(s->state), s->why[0] ? ": " : "", s->why);
            for (size_t k = 0; k < s->diffs.n && k < 20; k++)
                printf("    %s\n", s->diffs.v[k]);
            if (s->diffs.n > 20)
                printf("    ... %zu more\n", s->diffs.n - 20);
            fflush(stdout);
        }
    }
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < x.nsteps; i++) {
            step *s = &x.steps[i];
            json_t *o =
                json_pack("{s:I,s:I,s:s,s:s,s:s,s:o}", "step", (json_int_t)(i + 1), "seq",
                          (json_int_t)s->seq, "label", s->label, "state", state_name(s->state),
                          "why", s->why, "differences", strs_json(&s->diffs));
            if (!o)
                o = json_pack("{s:I,s:s}", "step", (json_int_t)(i + 1), "state",
                              state_name(s->state));
            json_array_append_new(arr, o);
        }
        json_t *o = json_pack("{s:s,s:s,s:o,s:I,s:I,s:I,s:I}", "store", store_dir, "replay_store",
                              outp, "steps", arr, "same", (json_int_t)counts[0], "diverged",
                              (json_int_t)counts[1], "not_replayable", (json_int_t)counts[2],
                              "failed", (json_int_t)counts[3]);
        char *txt = json_dumps(o, JSON_INDENT(2));
        printf("%s\n", txt);
        free(txt);
        json_decref(o);
    } else {
        printf("%zu steps: %zu same, %zu diverged, %zu not replayable, %zu failed to start; new "
               "run in %s\n",
               x.nsteps, counts[0], counts[1], counts[2], counts[3], outp);
    }
    code = counts[0] == x.nsteps ? PTB_EXIT_OK : PTB_EXIT_FAIL;
    goto done;
fail:
    fprintf(stderr, "ptb replay: %s\n", eb.msg[0] ? eb.msg : ptb_strerror(rc));
    code = rc == PTB_EINVAL ? PTB_EXIT_USAGE : ptb_exit_code(rc);
done:
    for (size_t i = 0; i < x.nsteps; i++) {
        facts_free(&x.steps[i].rec);
        facts_free(&x.steps[i].now);
        strs_free(&x.steps[i].diffs);
        free(x.steps[i].ids);
        free(x.steps[i].label);
    }
    free(x.steps);
    free(x.procs);
    if (x.s && (rc = store_close(x.s)) && code == PTB_EXIT_OK)
        code = ptb_exit_code(rc);
    if (x.t)
        store_txn_end(x.t);
    store_close(src);
    return code;
}
