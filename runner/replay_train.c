/* `ptb replay train STORE` (docs/commands/ptb-replay.md, "train"): each recorded `ptb train`
 * command run again from its recorded inputs, and its checkpoint compared with the recorded one.
 *
 * For each command (replay_train.h says what counts as one), in WORK/exec-N/:
 *   1. its arguments, read with ptb train's own option names: an option replay does not know
 *      makes it not replayable (replay could not say what it meant);
 *   2. the recorded checkpoint: the files the command left under its --out, their bytes from
 *      the store's blobs into recorded/ (or only their hashes);
 *   3. its inputs (--base, --data) as they were when it started: the capture roots that hold
 *      them rebuilt into inputs/, the others checked in place (replay_train_inputs);
 *   4. ptb train run again (this binary) with the same arguments into new/, on the recorded
 *      device unless --device says otherwise;
 *   5. the files compared: SHA-256, then tensor by tensor (replay_train_file_compare).
 * Whatever the store cannot give makes the command "not replayable", with the list: nothing is
 * called verified that was not compared in full. The report is built as JSON and printed as
 * such (--json) or as text. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lm_cuda.h"
#include "ptb_cli.h"
#include "replay_run.h"
#include "replay_train.h"

/* ptb train's options (runner/train_cli.c), in the order of this enum, and what replay does
 * with each. */
enum { T_BASE = 1, T_INIT, T_DATA, T_OUT, T_DEVICE, T_THREADS, T_PRECISION, T_QUIET };
typedef enum {
    A_KEEP,    /* passed on as recorded */
    A_INPUT,   /* an input: rebuilt or checked, then named by where it is now */
    A_OUT,     /* replaced by WORK/exec-N/new */
    A_DEVICE,  /* the recorded device, unless --device */
    A_THREADS, /* recorded, unless --threads (the result does not depend on it) */
    A_QUIET,   /* replay's own -q decides */
} arg_kind;
static const struct topt {
    const char *name;
    int short_name;
    bool arg;
    arg_kind kind;
} topts[] = {
    {"base", 0, true, A_INPUT},        {"init", 0, false, A_KEEP},
    {"data", 0, true, A_INPUT},        {"out", 'o', true, A_OUT},
    {"device", 0, true, A_DEVICE},     {"threads", 0, true, A_THREADS},
    {"precision", 0, true, A_KEEP},    {"quiet", 'q', false, A_QUIET},
    {"steps", 0, true, A_KEEP},        {"batch", 0, true, A_KEEP},
    {"seq", 0, true, A_KEEP},          {"lr", 0, true, A_KEEP},
    {"weight-decay", 0, true, A_KEEP}, {"seed", 0, true, A_KEEP},
    {"layers", 0, true, A_KEEP},       {"heads", 0, true, A_KEEP},
    {"channels", 0, true, A_KEEP},     {"max-seq", 0, true, A_KEEP},
};
#define NTOPT (sizeof topts / sizeof topts[0])
#define OCC_MAX 256 /* options of one recorded command line */

typedef struct ctx {
    store_txn *t;
    const rt_execs *x;
    const char *device, *fill;
    int threads;
    bool quiet;
    int cuda; /* 0 not asked yet, 1 usable, -1 not (cuda_why says why) */
    char cuda_why[512];
    char self[PATH_MAX];
    uint8_t self_sha[32];
    bool self_known;
} ctx;

/* The recorded command line, read as ptb train reads it. */
typedef struct targs {
    struct {
        int id;
        const char *val; /* its value (borrowed from the exec's argv), NULL for a flag */
    } occ[OCC_MAX];      /* the options in their order */
    int nocc;
    const char *last[NTOPT + 1]; /* the value that counts (the last), "" for a flag */
    char *out;                   /* --out, absolute */
    rt_input in[2];
    size_t nin;
} targs;

/* One command's replay. */
typedef struct job {
    const rt_exec *e;
    char dir[PATH_MAX - 256]; /* WORK/exec-N */
    json_t *o;                /* its report */
    rt_notes reasons, notes;
    rt_run run;
    replay_state *st; /* the roots when it started (NULL: no snapshot) */
    targs a;
    const char *dev, *rec_dev;
    size_t changed_after; /* files of the checkpoint that other processes changed later */
} job;

#define note(l, path, ...) replay_note(&(l)->v, &(l)->n, &(l)->cap, path, __VA_ARGS__)

static json_t *notes_json(const rt_notes *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++)
        json_array_append_new(a, json_pack("{s:o,s:o}", "path", replay_train_json_str(l->v[i].path),
                                           "why", replay_train_json_str(l->v[i].why)));
    return a;
}

static int mkdirs(const char *path)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", path);
    for (char *q = p + 1; *q; q++)
        if (*q == '/') {
            *q = 0;
            int e = mkdir(p, 0755) && errno != EEXIST ? -errno : 0;
            *q = '/';
            if (e)
                return e;
        }
    return mkdir(p, 0755) && errno != EEXIST ? -errno : 0;
}

/* data written to path (new), its folders made */
static int write_new(const char *path, const void *data, size_t len)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    int rc = 0;
    if (slash && slash != dir) {
        *slash = 0;
        rc = mkdirs(dir);
    }
    FILE *f = rc ? NULL : fopen(path, "wbx");
    if (!f)
        return rc ? rc : -errno;
    rc = len && fwrite(data, 1, len, f) != len ? -EIO : 0;
    if (fclose(f) && !rc)
        rc = -errno;
    return rc;
}

static void argv_str(const rt_exec *e, char *out, size_t cap)
{
    size_t l = 0;
    out[0] = 0;
    for (size_t a = 0; a < e->argc && l + 1 < cap; a++)
        l += (size_t)snprintf(out + l, cap - l, "%s%s", a ? " " : "", e->argv[a]);
}

/* ------------------------------------------------------------------ 1. the arguments */

static int parse_args(job *j)
{
    const rt_exec *e = j->e;
    targs *a = &j->a;
    cli_option co[NTOPT + 1];
    for (size_t i = 0; i < NTOPT; i++)
        co[i] =
            (cli_option){topts[i].name, topts[i].short_name, topts[i].arg ? "X" : NULL, (int)i + 1};
    co[NTOPT] = (cli_option){NULL, 0, NULL, 0};
    cli c;
    cli_init(&c, "train", co, (int)(e->argc - (size_t)e->train_at), e->argv + e->train_at);
    for (int o; (o = cli_next(&c)) != CLI_END;) {
        if (o < 0 || a->nocc == OCC_MAX)
            return note(&j->reasons, "", "its command line is not one replay can read: %s",
                        o == CLI_ERROR        ? c.err
                        : o == CLI_POSITIONAL ? "an argument that is not an option"
                        : o >= 0              ? "more than 256 options"
                                              : "--help or --list-options, not a training");
        a->occ[a->nocc].id = o, a->occ[a->nocc++].val = c.optarg;
        a->last[o] = c.optarg ? c.optarg : "";
    }
    if (!a->last[T_OUT] || !a->last[T_DATA])
        return note(&j->reasons, "", "no --out or no --data: ptb train refused this command");
    if (!(a->out = replay_train_abs_path(e->cwd, a->last[T_OUT])))
        return PTB_ENOMEM;
    static const int ins[] = {T_BASE, T_DATA};
    for (size_t k = 0; k < 2; k++) {
        if (!a->last[ins[k]])
            continue;
        rt_input *in = &a->in[a->nin++];
        in->opt = ins[k] == T_BASE ? "--base" : "--data";
        in->dir = ins[k] == T_BASE;
        if (!(in->path = replay_train_abs_path(e->cwd, a->last[ins[k]])))
            return PTB_ENOMEM;
    }
    return 0;
}

/* ------------------------------------------------------------------ 2. the recorded checkpoint */

/* The files the command left under its --out into the report, their bytes into recorded/. */
static int recorded_files(ctx *c, job *j, json_t *files, ptb_errbuf *eb)
{
    const char *out = j->a.out;
    size_t ol = strlen(out);
    uint64_t writers[8];
    size_t nw = 0;
    int rc = 0;
    for (size_t i = 0; !rc && i < j->run.nfiles; i++) {
        const rt_file *f = &j->run.files[i];
        if (!replay_train_under(f->path, out) || !f->path[ol])
            continue;
        const char *rel = f->path + ol + 1;
        /* the store is not trusted: a ".." in a path must not write outside WORK */
        bool dots = !strcmp(rel, "..") || !strncmp(rel, "../", 3) || strstr(rel, "/../") ||
                    (strlen(rel) >= 3 && !strcmp(rel + strlen(rel) - 3, "/.."));
        char sha[65] = "", dst[PATH_MAX];
        if (f->hashed)
            store_hex(f->sha, 32, sha);
        snprintf(dst, sizeof dst, "%s/recorded/%s", j->dir, rel);
        bool have = false;
        void *data = NULL;
        size_t len = 0;
        int g = f->captured && !dots ? store_blob_get(c->t, f->sha, &data, &len) : PTB_ENOTFOUND;
        if (g == 0) {
            rc = write_new(dst, data, len);
            have = !rc;
            if (rc)
                ptb_errf(eb, rc, "%s: %s", dst, ptb_strerror(rc));
        } else if (g != PTB_ENOTFOUND && g != PTB_ECORRUPT) {
            rc = ptb_errf(eb, g, "reading the blob of %s: %s", f->path, ptb_strerror(g));
        }
        free(data);
        if (!rc && !have)
            rc = note(&j->notes, f->path, "%s: compared by SHA-256 only, not tensor by tensor",
                      dots          ? "a path with \"..\" in the store"
                      : !f->hashed  ? "its content was not readable when it was written"
                      : f->captured ? "its blob is not in the store (or is damaged)"
                                    : "its bytes were not captured (outside the capture roots "
                                      "or over a capture cap)");
        json_array_append_new(files, json_pack("{s:o,s:{s:s?,s:I,s:b,s:I,s:I}}", "path",
                                               replay_train_json_str(rel), "recorded", "sha256",
                                               f->hashed ? sha : NULL, "size", (json_int_t)f->size,
                                               "bytes", have, "exec_id", (json_int_t)f->exec_id,
                                               "seq", (json_int_t)f->seq));
        /* a file written by a program the command started, not by it: say which */
        bool seen = f->exec_id == j->e->exec_id;
        for (size_t k = 0; k < nw; k++)
            seen |= writers[k] == f->exec_id;
        if (!rc && !seen && nw < 8) {
            writers[nw++] = f->exec_id;
            const rt_exec *w = replay_train_exec_find(c->x, f->exec_id);
            char args[512];
            if (w)
                argv_str(w, args, sizeof args);
            rc = note(&j->notes, out, "files written by exec %llu, which the command started: %s",
                      (unsigned long long)f->exec_id, w ? args : "?");
        }
    }
    return rc;
}

/* ------------------------------------------------------------------ 3. the device, the program */

/* Whether this machine can run --device cuda: lm_cuda_available in a child, so that replay
 * holds no CUDA context while the training runs. */
static bool cuda_usable(ctx *c)
{
    if (c->cuda)
        return c->cuda > 0;
    c->cuda = -1;
    int p[2];
    if (pipe(p)) {
        snprintf(c->cuda_why, sizeof c->cuda_why, "pipe: %s", strerror(errno));
        return false;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        ptb_errbuf eb = {{0}};
        int rc = lm_cuda_available(&eb);
        if (rc && write(p[1], eb.msg, strlen(eb.msg)) < 0)
            _exit(2);
        _exit(rc ? 1 : 0);
    }
    close(p[1]);
    size_t n = 0;
    ssize_t r;
    while (pid > 0 && n + 1 < sizeof c->cuda_why &&
           (r = read(p[0], c->cuda_why + n, sizeof c->cuda_why - 1 - n)) > 0)
        n += (size_t)r;
    c->cuda_why[n] = 0;
    close(p[0]);
    int status = 0;
    if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && !WEXITSTATUS(status))
        c->cuda = 1;
    if (c->cuda < 0 && !c->cuda_why[0])
        snprintf(c->cuda_why, sizeof c->cuda_why, "the CUDA backend could not be asked");
    return c->cuda > 0;
}

static int device(ctx *c, job *j)
{
    const char *prec = j->a.last[T_PRECISION] ? j->a.last[T_PRECISION] : "fp32";
    j->rec_dev = j->a.last[T_DEVICE] ? j->a.last[T_DEVICE] : "cpu";
    j->dev = c->device ? c->device : j->rec_dev;
    json_object_set_new(j->o, "device",
                        json_pack("{s:o,s:o}", "recorded", replay_train_json_str(j->rec_dev),
                                  "replayed", replay_train_json_str(j->dev)));
    if (strcmp(j->dev, "cpu") && strcmp(j->dev, "cuda"))
        return note(&j->reasons, "", "--device %s: replay knows cpu and cuda", j->dev);
    if (!strcmp(j->dev, "cuda") && !cuda_usable(c))
        return note(&j->reasons, "", "%s; this machine cannot run --device cuda: %s%s",
                    c->device ? "--device cuda was asked for" : "recorded on cuda", c->cuda_why,
                    c->device ? ""
                              : ". `--device cpu` replays it on the CPU, as a comparison "
                                "across devices, not a verification");
    if (!strcmp(j->dev, "cpu") && !strcmp(prec, "bf16"))
        return note(&j->reasons, "", "recorded with --precision bf16, which runs on cuda only");
    return 0;
}

/* The program the command ran as `ptb`, against this one; a train command it runs inside. */
static int program(ctx *c, job *j)
{
    const rt_exec *e = j->e;
    bool script = e->train_at >= 2;
    char *prog = script ? replay_train_abs_path(e->cwd, e->argv[e->train_at - 1]) : strdup(e->exe);
    if (!prog)
        return PTB_ENOMEM;
    const rp_entry *pe = j->st ? replay_state_get(j->st, prog) : NULL;
    const rp_node *nd = pe && pe->kind == RP_FILE ? pe->node : NULL;
    json_t *same = json_null();
    if (nd && nd->content != RP_UNKNOWN && nd->size == nd->blob_size && c->self_known)
        same = json_boolean(!memcmp(nd->sha, c->self_sha, 32));
    json_object_set_new(j->o, "program",
                        json_pack("{s:o,s:o?,s:o}", "path", replay_train_json_str(prog), "run_by",
                                  replay_train_json_str(script ? e->exe : NULL), "same_as_this_ptb",
                                  same));
    int rc = 0;
    if (script)
        rc = note(&j->notes, prog, "the `ptb` this command ran is a script, run by %s", e->exe);
    else if (json_is_false(same))
        rc = note(&j->notes, prog,
                  "another build than this ptb (another SHA-256): a difference may come from "
                  "the version");
    for (const rt_exec *p = replay_train_exec_find(c->x, e->parent); !rc && p;
         p = p->parent != p->exec_id ? replay_train_exec_find(c->x, p->parent) : NULL)
        if (p->train_at >= 0) {
            json_object_set_new(j->o, "inside", json_integer((json_int_t)p->exec_id));
            rc = note(&j->notes, "", "started by exec %llu, itself a ptb train command",
                      (unsigned long long)p->exec_id);
            break;
        }
    free(prog);
    return rc;
}

/* ------------------------------------------------------------------ 4. running */

typedef struct strv {
    char *v[2 * OCC_MAX + 16];
    int n;
} strv;

static int push(strv *s, const char *x)
{
    return (s->v[s->n] = strdup(x)) ? (s->n++, 0) : PTB_ENOMEM;
}

/* ptb train's command line for the replay: the recorded options in their order (inputs named
 * where they are now), then --out, --device and the replay's own. */
static int build_argv(ctx *c, job *j, strv *s)
{
    char newdir[PATH_MAX], thr[16];
    snprintf(newdir, sizeof newdir, "%s/new", j->dir);
    snprintf(thr, sizeof thr, "%d", c->threads);
    int rc = push(s, c->self);
    if (!rc)
        rc = push(s, "train");
    for (int k = 0; !rc && k < j->a.nocc; k++) {
        const struct topt *t = &topts[j->a.occ[k].id - 1];
        if (t->kind == A_OUT || t->kind == A_DEVICE || t->kind == A_QUIET ||
            (t->kind == A_THREADS && c->threads))
            continue;
        char opt[64];
        snprintf(opt, sizeof opt, "--%s", t->name);
        const char *v = j->a.occ[k].val;
        if ((rc = push(s, opt)) || !v)
            continue;
        char *p = t->kind == A_INPUT ? replay_train_abs_path(j->e->cwd, v) : NULL;
        for (size_t i = 0; p && i < j->a.nin; i++)
            if (!strcmp(p, j->a.in[i].path))
                v = j->a.in[i].used;
        rc = push(s, v);
        free(p);
    }
    const char *tail[] = {"--out", newdir, "--device", j->dev, "--threads", thr, "-q"};
    for (size_t k = 0; !rc && k < 7; k++)
        if ((k < 4) || (k < 6 && c->threads) || (k == 6 && c->quiet))
            rc = push(s, tail[k]);
    s->v[s->n] = NULL;
    return rc;
}

/* Run argv in cwd, its output on stderr (in log when quiet). Its exit status (128 + signal), or
 * -errno when it could not start. */
static int run_child(char *const *argv, const char *cwd, const char *log, double *secs)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        int fd = log ? open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : 2;
        if (fd < 0 || dup2(fd, 2) < 0 || dup2(2, 1) < 0 || chdir(cwd))
            _exit(127);
        for (int k = 3; k < 1024; k++) /* the store's descriptors are not the training's */
            close(k);
        execv(argv[0], argv);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    *secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ------------------------------------------------------------------ 5. the verdict */

/* Every file of the recorded checkpoint and of the new one (replay_train_compare_dir); the
 * verdict. */
static int compare_all(job *j, ptb_errbuf *eb)
{
    rt_totals t;
    int rc = replay_train_compare_dir(j->dir, json_object_get(j->o, "files"), &t, eb);
    if (rc)
        return rc;
    json_object_set_new(j->o, "bytes_differ", json_integer((json_int_t)t.bytes_differ));
    size_t differ = t.differ, unknown = t.unknown;
    char what[256] = "bit-identical all the same";
    if (differ) {
        int l = snprintf(what, sizeof what, "%zu of %zu files differ", differ, t.files);
        if (t.tensors)
            l += snprintf(what + l, sizeof what - (size_t)l, ", %zu of %zu tensors",
                          t.tensors_differ, t.tensors);
        snprintf(what + l, sizeof what - (size_t)l, ", %llu bytes",
                 (unsigned long long)t.bytes_differ);
    }
    const char *status;
    char buf[512];
    if (strcmp(j->dev, j->rec_dev))
        status = "across_devices",
        snprintf(buf, sizeof buf,
                 "ACROSS DEVICES (recorded on %s, replayed on %s): not a verification; %s",
                 j->rec_dev, j->dev, what);
    else if (differ)
        status = "differs",
        snprintf(buf, sizeof buf,
                 "DIFFERENT: this command does not give the recorded checkpoint (%s)", what);
    else if (unknown)
        status = "incomplete", snprintf(buf, sizeof buf,
                                        "INCOMPLETE: no difference found, but the content of "
                                        "%zu recorded files is not known",
                                        unknown);
    else
        status = "verified",
        snprintf(buf, sizeof buf, "bit-identical: the checkpoint comes from this training run%s",
                 j->changed_after ? " (but other processes changed it afterwards: see the notes)"
                                  : "");
    json_object_set_new(j->o, "changed_after", json_integer((json_int_t)j->changed_after));
    json_object_set_new(j->o, "status", json_string(status));
    json_object_set_new(j->o, "summary", replay_train_json_str(buf));
    return 0;
}

/* ------------------------------------------------------------------ one command */

static int replay_one(ctx *c, job *j, ptb_errbuf *eb)
{
    const rt_exec *e = j->e;
    json_t *files = json_array();
    json_object_set_new(j->o, "files", files);
    int rc = parse_args(j);
    if (!rc && j->a.out)
        json_object_set_new(j->o, "out", replay_train_json_str(j->a.out));
    if (!rc && (rc = replay_train_run_read(c->t, c->x, e->exec_id, &j->run, eb)))
        return rc;
    if (j->run.exited)
        json_object_set_new(j->o, "recorded_exit",
                            json_integer(j->run.signal ? 128 + j->run.signal : j->run.exit_code));
    for (size_t i = 0; !rc && j->a.out && i < j->run.later.n; i++)
        if (replay_train_under(j->run.later.v[i].path, j->a.out) && ++j->changed_after)
            rc = note(&j->notes, j->run.later.v[i].path,
                      "%s: what the folder held at the end is not what is compared here",
                      j->run.later.v[i].why);
    if (!rc && j->a.out && !(rc = recorded_files(c, j, files, eb)) && !json_array_size(files))
        rc = note(&j->reasons, j->a.out, "the command left no file under its --out%s",
                  !j->run.exited          ? " (it did not exit in the recording)"
                  : j->run.exit_code != 0 ? " (it failed)"
                                          : "");
    char inputs[PATH_MAX];
    snprintf(inputs, sizeof inputs, "%s/inputs", j->dir);
    rt_inputs_options io = {.to = inputs, .fill_from = c->fill, .progress = !c->quiet};
    if (!rc && !j->reasons.n)
        rc = replay_train_inputs(c->t, e->seq, &j->run, j->a.in, j->a.nin, &io, &j->st, &j->reasons,
                                 &j->notes, eb);
    if (!rc)
        rc = program(c, j);
    json_t *ins = json_array();
    for (size_t i = 0; i < j->a.nin; i++)
        json_array_append_new(ins, json_pack("{s:s,s:o,s:o?,s:b}", "option", j->a.in[i].opt,
                                             "recorded", replay_train_json_str(j->a.in[i].path),
                                             "used", replay_train_json_str(j->a.in[i].used),
                                             "rebuilt", j->a.in[i].rebuilt));
    json_object_set_new(j->o, "inputs", ins);
    if (!rc && !j->reasons.n)
        rc = device(c, j);
    if (rc)
        return rc;
    if (j->reasons.n) {
        const rp_note *r = &j->reasons.v[0];
        char buf[1024];
        if (j->reasons.n > 1)
            snprintf(buf, sizeof buf, "NOT REPLAYABLE for the %zu reasons listed", j->reasons.n);
        else
            snprintf(buf, sizeof buf, "NOT REPLAYABLE: %s%s%s", r->path, *r->path ? ": " : "",
                     r->why);
        json_object_set_new(j->o, "status", json_string("not_replayable"));
        json_object_set_new(j->o, "summary", replay_train_json_str(buf));
        return 0;
    }
    strv av = {.n = 0};
    if ((rc = build_argv(c, j, &av))) {
        for (int k = 0; k < av.n; k++)
            free(av.v[k]);
        return rc;
    }
    json_t *aj = json_array();
    for (int k = 0; k < av.n; k++)
        json_array_append_new(aj, replay_train_json_str(av.v[k]));
    if (!c->quiet) {
        fprintf(stderr, "ptb replay train: exec %llu: running", (unsigned long long)e->exec_id);
        for (int k = 0; k < av.n; k++)
            fprintf(stderr, " %s", av.v[k]);
        fprintf(stderr, "\n");
    }
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/train.log", j->dir);
    double secs = 0;
    int ex = run_child(av.v, j->dir, c->quiet ? log : NULL, &secs);
    for (int k = 0; k < av.n; k++)
        free(av.v[k]);
    json_object_set_new(j->o, "replay",
                        json_pack("{s:o,s:i,s:f}", "argv", aj, "exit", ex, "seconds", secs));
    if (ex < 0)
        return ptb_errf(eb, ex, "running %s: %s", c->self, strerror(-ex));
    if (ex != 0) {
        char buf[PATH_MAX + 128];
        snprintf(buf, sizeof buf, "REPLAY FAILED: ptb train exited with %d (its messages: %s)", ex,
                 c->quiet ? log : "above");
        json_object_set_new(j->o, "status", json_string("replay_failed"));
        json_object_set_new(j->o, "summary", replay_train_json_str(buf));
        return 0;
    }
    return compare_all(j, eb);
}

/* ------------------------------------------------------------------ the command */

static int list_trains(const rt_execs *x, char *buf, size_t cap)
{
    size_t l = 0;
    int n = 0;
    buf[0] = 0;
    for (size_t i = 0; i < x->n && l + 1 < cap; i++) {
        if (x->v[i].train_at < 0)
            continue;
        char a[160];
        argv_str(&x->v[i], a, sizeof a);
        l += (size_t)snprintf(buf + l, cap - l, "\n  exec %llu: %s",
                              (unsigned long long)x->v[i].exec_id, a);
        n++;
    }
    return n;
}

static int work_dir(const char *work, char *out, size_t cap)
{
    ptb_errbuf eb = {{0}};
    int rc = replay_new_dir(work, "--work ", "ptb-replay-train", out, cap, &eb);
    if (!rc)
        return 0;
    if (rc == PTB_EINVAL || rc == -ENOENT || rc == -ENOTDIR)
        return cli_usage_error("replay", "%s", eb.msg);
    fprintf(stderr, "ptb replay: %s\n", eb.msg);
    return PTB_EXIT_ERROR;
}

static void job_free(job *j)
{
    replay_train_notes_free(&j->reasons);
    replay_train_notes_free(&j->notes);
    replay_train_run_free(&j->run);
    replay_state_free(j->st);
    for (size_t i = 0; i < j->a.nin; i++) {
        free(j->a.in[i].path);
        free(j->a.in[i].used);
    }
    free(j->a.out);
}

int replay_train_main(const char *store_dir, uint64_t exec_id, const char *work, const char *dev,
                      int threads, const char *fill_from, bool json, bool quiet)
{
    if (dev && strcmp(dev, "cpu") && strcmp(dev, "cuda"))
        return cli_usage_error("replay", "--device %s: cpu or cuda", dev);
    struct stat sb;
    if (fill_from && (stat(fill_from, &sb) || !S_ISDIR(sb.st_mode)))
        return cli_usage_error("replay", "--fill-from %s is not a folder", fill_from);
    store *s = NULL;
    store_txn *t = NULL;
    int rc = store_open(store_dir, NULL, STORE_RDONLY, &s);
    if (!rc)
        rc = store_txn_begin(s, &t);
    if (rc) {
        if (s && *store_errmsg(s)) /* it names the folder */
            fprintf(stderr, "ptb replay: %s\n", store_errmsg(s));
        else
            fprintf(stderr, "ptb replay: %s: %s\n", store_dir, ptb_strerror(rc));
        store_close(s);
        return ptb_exit_code(rc);
    }
    ptb_errbuf eb = {{0}};
    rt_execs x;
    ctx c = {.t = t, .x = &x, .device = dev, .fill = fill_from, .threads = threads, .quiet = quiet};
    char wdir[PATH_MAX - 512], list[4096];
    int code = PTB_EXIT_OK;
    if ((rc = replay_train_execs_read(t, &x, &eb))) {
        fprintf(stderr, "ptb replay: %s: %s\n", store_dir, eb.msg);
        code = ptb_exit_code(rc);
        goto out_store;
    }
    int ntrain = list_trains(&x, list, sizeof list);
    const rt_exec *only = exec_id ? replay_train_exec_find(&x, exec_id) : NULL;
    if (exec_id && (!only || only->train_at < 0)) {
        char a[300] = "";
        if (only)
            argv_str(only, a, sizeof a);
        fprintf(stderr, "ptb replay: --process %llu: %s%s%s; %s%s\n", (unsigned long long)exec_id,
                only ? "not a ptb train command (it ran: " : "no such exec_id in the store", a,
                only ? ")" : "",
                ntrain ? "the store's ptb train commands:" : "the store has no ptb train command",
                list);
        code = PTB_EXIT_USAGE;
        goto out_execs;
    }
    if (!ntrain) {
        fprintf(stderr,
                "ptb replay: %s: no ptb train command was recorded in it: nothing to "
                "replay\n",
                store_dir);
        code = PTB_EXIT_FAIL;
        goto out_execs;
    }
    if ((code = work_dir(work, wdir, sizeof wdir)))
        goto out_execs;
    ssize_t sl = readlink("/proc/self/exe", c.self, sizeof c.self - 1);
    if (sl <= 0) {
        fprintf(stderr, "ptb replay: /proc/self/exe: %s\n", strerror(errno));
        code = PTB_EXIT_ERROR;
        goto out_execs;
    }
    c.self[sl] = 0;
    uint64_t size;
    c.self_known = replay_train_file_sha256(c.self, c.self_sha, &size) == 0;
    json_t *procs = json_array(), *counts = json_object();
    size_t nver = 0, nall = 0;
    for (size_t i = 0; i < x.n && !rc; i++) {
        const rt_exec *e = &x.v[i];
        if (e->train_at < 0 || (only && e != only))
            continue;
        job j = {.e = e};
        snprintf(j.dir, sizeof j.dir, "%s/exec-%llu", wdir, (unsigned long long)e->exec_id);
        json_t *argv = json_array();
        for (size_t k = 0; k < e->argc; k++)
            json_array_append_new(argv, replay_train_json_str(e->argv[k]));
        j.o = json_pack("{s:I,s:I,s:i,s:o,s:o,s:o}", "exec_id", (json_int_t)e->exec_id, "seq",
                        (json_int_t)e->seq, "pid", e->pid, "argv", argv, "cwd",
                        replay_train_json_str(e->cwd), "work", replay_train_json_str(j.dir));
        if ((rc = mkdirs(j.dir)))
            ptb_errf(&eb, rc, "%s: %s", j.dir, strerror(-rc));
        else
            rc = replay_one(&c, &j, &eb);
        if (!rc) {
            json_object_set_new(j.o, "reasons", notes_json(&j.reasons));
            json_object_set_new(j.o, "notes", notes_json(&j.notes));
            const char *st = json_string_value(json_object_get(j.o, "status"));
            json_int_t was = json_integer_value(json_object_get(counts, st));
            json_object_set_new(counts, st, json_integer(was + 1));
            nver += !strcmp(st, "verified"), nall++;
            if (!json) {
                replay_train_print(j.o, stdout);
                fflush(stdout);
            }
            json_array_append(procs, j.o);
        }
        json_decref(j.o);
        job_free(&j);
    }
    if (rc) {
        fprintf(stderr, "ptb replay: %s\n", eb.msg[0] ? eb.msg : ptb_strerror(rc));
        code = rc == PTB_EINVAL ? PTB_EXIT_USAGE : ptb_exit_code(rc);
    } else {
        code = nver == nall ? PTB_EXIT_OK : PTB_EXIT_FAIL;
    }
    if (!rc && json) {
        json_t *o = json_pack(
            "{s:o,s:o,s:b,s:I,s:I,s:O,s:O}", "store", replay_train_json_str(store_dir), "work",
            replay_train_json_str(wdir), "verified", nver == nall, "commands", (json_int_t)nall,
            "verified_count", (json_int_t)nver, "counts", counts, "processes", procs);
        char *txt = json_dumps(o, JSON_INDENT(2));
        printf("%s\n", txt);
        free(txt);
        json_decref(o);
    } else if (!rc) {
        printf("%zu training command%s: %zu verified", nall, nall == 1 ? "" : "s", nver);
        const char *k;
        json_t *v;
        json_object_foreach(counts, k, v) if (strcmp(k, "verified"))
        {
            printf(", %lld ", (long long)json_integer_value(v));
            for (const char *q = k; *q; q++) /* the key, words apart */
                putchar(*q == '_' ? ' ' : *q);
        }
        printf("; work folder %s (kept)\n", wdir);
    }
    json_decref(procs);
    json_decref(counts);
out_execs:
    replay_train_execs_free(&x);
out_store:
    store_txn_end(t);
    store_close(s);
    return code;
}
