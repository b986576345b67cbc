/* The store's side of a training replay (replay_train.h): the processes of a run and which of
 * them are `ptb train` commands; what a command (a process and everything it started) read,
 * wrote, renamed and deleted, and who changed its files afterwards. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "replay_train.h"

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static bool is_shell(const char *p)
{
    static const char *const shells[] = {"sh", "bash", "dash", "zsh", "ksh", "busybox", NULL};
    for (int i = 0; shells[i]; i++)
        if (!strcmp(base_name(p), shells[i]))
            return true;
    return false;
}

/* Where `train` is in argv when this is a ptb train command, else -1. A script named ptb runs
 * as "interpreter [option] script train ...", named so by the kernel (filename is the script)
 * or by hand ("sh ptb train ..."). */
static int train_index(const rt_exec *e)
{
    if (e->argc >= 2 && !strcmp(e->argv[1], "train") &&
        (!strcmp(base_name(e->argv[0]), "ptb") || !strcmp(base_name(e->exe), "ptb")))
        return 1;
    bool script = !strcmp(base_name(e->filename), "ptb");
    for (size_t i = 1; i <= 2 && i + 1 < e->argc; i++)
        if (!strcmp(base_name(e->argv[i]), "ptb") && !strcmp(e->argv[i + 1], "train") &&
            (script || (i == 1 && is_shell(e->argv[0]))))
            return (int)i + 1;
    return -1;
}

static void exec_free(rt_exec *e)
{
    for (size_t i = 0; i < e->argc; i++)
        free(e->argv[i]);
    free(e->argv);
    free(e->exe);
    free(e->filename);
    free(e->cwd);
}

static int exec_copy(const ptb_event *ev, rt_exec *e)
{
    const Ptb__V1__ProcExec *p = ev->proc_exec;
    memset(e, 0, sizeof *e);
    e->exec_id = ev->exec_id;
    e->parent = p->parent_exec_id;
    e->seq = ev->seq;
    e->pid = p->pid;
    e->exe = strdup(p->exe ? p->exe : "");
    e->filename = strdup(p->filename ? p->filename : "");
    e->cwd = strdup(p->cwd ? p->cwd : "");
    e->argv = calloc(p->n_argv ? p->n_argv : 1, sizeof *e->argv);
    if (!e->exe || !e->filename || !e->cwd || !e->argv)
        return PTB_ENOMEM;
    for (; e->argc < p->n_argv; e->argc++)
        if (!(e->argv[e->argc] = strdup(p->argv[e->argc])))
            return PTB_ENOMEM;
    e->train_at = train_index(e);
    return 0;
}

static int cmp_exec(const void *a, const void *b)
{
    const rt_exec *x = a, *y = b;
    if (x->exec_id != y->exec_id)
        return x->exec_id < y->exec_id ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int replay_train_execs_read(store_txn *t, rt_execs *out, ptb_errbuf *eb)
{
    memset(out, 0, sizeof *out);
    store_range r = {.by_index = true,
                     .index = STORE_IX_TYPE,
                     .key = store_type_key(PTB__V1__EVENT__BODY_PROC_EXEC)};
    store_cursor *c;
    int rc = store_cursor_open(t, &r, &c);
    size_t cap = 0;
    const ptb_event *ev;
    while (!rc && !(rc = store_cursor_next(c, &ev))) {
        if (out->n == cap) {
            rt_exec *nv = realloc(out->v, (cap = cap ? cap * 2 : 64) * sizeof *nv);
            if (!nv) {
                rc = PTB_ENOMEM;
                break;
            }
            out->v = nv;
        }
        rc = exec_copy(ev, &out->v[out->n]);
        out->n++; /* freed with the rest, even half copied */
    }
    store_cursor_close(c);
    if (rc == PTB_ENOTFOUND)
        rc = 0;
    if (rc) {
        replay_train_execs_free(out);
        return ptb_errf(eb, rc, "reading the store's processes: %s", ptb_strerror(rc));
    }
    if (out->n)
        qsort(out->v, out->n, sizeof *out->v, cmp_exec);
    /* an exec_id recorded twice (should not happen): the first one counts */
    size_t k = 0;
    for (size_t i = 0; i < out->n; i++) {
        if (k && out->v[k - 1].exec_id == out->v[i].exec_id)
            exec_free(&out->v[i]);
        else
            out->v[k++] = out->v[i];
    }
    out->n = k;
    return 0;
}

void replay_train_execs_free(rt_execs *x)
{
    for (size_t i = 0; i < x->n; i++)
        exec_free(&x->v[i]);
    free(x->v);
    memset(x, 0, sizeof *x);
}

const rt_exec *replay_train_exec_find(const rt_execs *x, uint64_t exec_id)
{
    size_t lo = 0, hi = x->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (x->v[mid].exec_id < exec_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < x->n && x->v[lo].exec_id == exec_id ? &x->v[lo] : NULL;
}

/* ------------------------------------------------------------------ what the command did */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

bool replay_train_run_has(const rt_run *r, uint64_t id)
{
    return bsearch(&id, r->ids, r->nids, sizeof id, cmp_u64) != NULL;
}

/* The command's exec_ids: exec_id and every exec whose parent chain reaches it. Parents are
 * recorded before their children, but a pass per generation makes no assumption about it. */
static int descendants(const rt_execs *x, uint64_t exec_id, rt_run *r)
{
    bool *in = calloc(x->n ? x->n : 1, sizeof *in);
    if (!in)
        return PTB_ENOMEM;
    size_t n = 0;
    in[replay_train_exec_find(x, exec_id) - x->v] = true, n = 1;
    for (bool grew = true; grew;) {
        grew = false;
        for (size_t i = 0; i < x->n; i++) {
            const rt_exec *p = in[i] ? NULL : replay_train_exec_find(x, x->v[i].parent);
            if (p && in[p - x->v] && x->v[i].parent != x->v[i].exec_id)
                in[i] = true, n++, grew = true;
        }
    }
    r->ids = malloc(n * sizeof *r->ids);
    if (r->ids)
        for (size_t i = 0; i < x->n; i++)
            if (in[i])
                r->ids[r->nids++] = x->v[i].exec_id;
    free(in);
    return r->ids ? 0 : PTB_ENOMEM;
}

/* One file event of the command, copied out of the cursor. */
typedef struct fev {
    uint64_t seq, exec_id;
    uint32_t type;
    char *path, *new_path;
    uint8_t sha[32];
    bool hashed, captured, exchange;
    uint64_t size;
    int32_t pid, code, sig;
} fev;

static int cmp_fev(const void *a, const void *b)
{
    uint64_t x = ((const fev *)a)->seq, y = ((const fev *)b)->seq;
    return x < y ? -1 : x > y;
}

bool replay_train_under(const char *path, const char *dir)
{
    size_t l = strlen(dir);
    if (l == 1 && dir[0] == '/')
        return path[0] == '/';
    return !strncmp(path, dir, l) && (path[l] == 0 || path[l] == '/');
}

char *replay_train_abs_path(const char *cwd, const char *p)
{
    size_t n = strlen(cwd) + strlen(p) + 3;
    char *in = malloc(n), *out = malloc(n);
    if (!in || !out) {
        free(in);
        free(out);
        return NULL;
    }
    snprintf(in, n, "%s/%s", p[0] == '/' ? "" : cwd, p);
    replay_path_normalise(in, out, n);
    free(in);
    return out;
}

int replay_train_file_sha256(const char *path, uint8_t sha[32], uint64_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    char *buf = malloc(1 << 20);
    int rc = md && buf && EVP_DigestInit_ex(md, EVP_sha256(), NULL) ? 0 : PTB_ENOMEM;
    *size = 0;
    while (!rc) {
        ssize_t n = read(fd, buf, 1 << 20);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = -errno;
        if (n <= 0)
            break;
        EVP_DigestUpdate(md, buf, (size_t)n);
        *size += (uint64_t)n;
    }
    unsigned len = 0;
    if (!rc && (!EVP_DigestFinal_ex(md, sha, &len) || len != 32))
        rc = PTB_ENOMEM;
    EVP_MD_CTX_free(md);
    free(buf);
    close(fd);
    return rc;
}

void replay_train_notes_free(rt_notes *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].path);
        free(l->v[i].why);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

static void files_del(rt_run *r, const char *path)
{
    size_t k = 0;
    for (size_t i = 0; i < r->nfiles; i++) {
        if (replay_train_under(r->files[i].path, path))
            free(r->files[i].path);
        else
            r->files[k++] = r->files[i];
    }
    r->nfiles = k;
}

/* Paths at from and under it renamed to to. */
static int files_move(rt_run *r, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to);
    for (size_t i = 0; i < r->nfiles; i++) {
        rt_file *f = &r->files[i];
        if (!replay_train_under(f->path, from))
            continue;
        char *np = malloc(tl + strlen(f->path + fl) + 1);
        if (!np)
            return PTB_ENOMEM;
        memcpy(np, to, tl);
        strcpy(np + tl, f->path + fl);
        free(f->path);
        f->path = np;
    }
    return 0;
}

static int apply(rt_run *r, const fev *e, size_t *cap)
{
    switch (e->type) {
    case PTB__V1__EVENT__BODY_FILE_WRITE: {
        rt_file *f = NULL;
        for (size_t i = 0; i < r->nfiles && !f; i++)
            if (!strcmp(r->files[i].path, e->path))
                f = &r->files[i];
        if (!f) {
            if (r->nfiles == *cap) {
                rt_file *nv = realloc(r->files, (*cap = *cap ? *cap * 2 : 16) * sizeof *nv);
                if (!nv)
                    return PTB_ENOMEM;
                r->files = nv;
            }
            f = &r->files[r->nfiles];
            memset(f, 0, sizeof *f);
            if (!(f->path = strdup(e->path)))
                return PTB_ENOMEM;
            r->nfiles++;
        }
        memcpy(f->sha, e->sha, 32);
        f->hashed = e->hashed;
        f->captured = e->captured && e->hashed;
        f->size = e->size;
        f->seq = e->seq;
        f->exec_id = e->exec_id;
        return 0;
    }
    case PTB__V1__EVENT__BODY_FILE_RENAME:
        if (e->exchange) {
            char tmp[64];
            snprintf(tmp, sizeof tmp, "\x01replay-exchange-%llu", (unsigned long long)e->seq);
            int rc = files_move(r, e->path, tmp);
            if (!rc)
                rc = files_move(r, e->new_path, e->path);
            return rc ? rc : files_move(r, tmp, e->new_path);
        }
        files_del(r, e->new_path);
        return files_move(r, e->path, e->new_path);
    case PTB__V1__EVENT__BODY_FILE_UNLINK: files_del(r, e->path); return 0;
    default: return 0;
    }
}

/* The event's part that matters here, copied (the cursor's memory goes at the next event). */
static int fev_copy(const ptb_event *ev, fev *e)
{
    memset(e, 0, sizeof *e);
    e->seq = ev->seq;
    e->exec_id = ev->exec_id;
    e->type = ev->body_case;
    const char *p = NULL, *np = NULL;
    switch (ev->body_case) {
    case PTB__V1__EVENT__BODY_FILE_WRITE: {
        const Ptb__V1__FileWrite *w = ev->file_write;
        p = w->path;
        e->hashed = w->sha256.len == 32;
        if (e->hashed)
            memcpy(e->sha, w->sha256.data, 32);
        e->captured = w->captured;
        e->size = w->size;
        break;
    }
    case PTB__V1__EVENT__BODY_FILE_RENAME:
        if (ev->file_rename->result != 0)
            return 1;
        p = ev->file_rename->path, np = ev->file_rename->new_path;
        e->exchange = ev->file_rename->exchange;
        break;
    case PTB__V1__EVENT__BODY_FILE_UNLINK:
        if (ev->file_unlink->result != 0)
            return 1;
        p = ev->file_unlink->path;
        break;
    case PTB__V1__EVENT__BODY_FILE_READ: p = ev->file_read->path; break;
    case PTB__V1__EVENT__BODY_PROC_EXIT:
        e->pid = ev->proc_exit->pid;
        e->code = ev->proc_exit->exit_code;
        e->sig = ev->proc_exit->signal;
        return 0;
    default: return 1;
    }
    if (!p || !*p || (e->type == PTB__V1__EVENT__BODY_FILE_RENAME && (!np || !*np)))
        return 1;
    e->path = strdup(p);
    e->new_path = np ? strdup(np) : NULL;
    return !e->path || (np && !e->new_path) ? PTB_ENOMEM : 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_file(const void *a, const void *b)
{
    return strcmp(((const rt_file *)a)->path, ((const rt_file *)b)->path);
}

/* What another process did later to a file the command left: the first change, as a note. */
static int later_changes(store_txn *t, rt_run *r, const rt_file *f)
{
    uint32_t sid;
    if (store_string_lookup(t, f->path, strlen(f->path), &sid))
        return 0; /* a path too long to be interned: not indexed, not looked for */
    store_range rg = {.seq_from = f->seq + 1, .by_index = true, .index = STORE_IX_PATH, .key = sid};
    store_cursor *c;
    int rc = store_cursor_open(t, &rg, &c);
    const ptb_event *ev;
    while (!rc && !(rc = store_cursor_next(c, &ev))) {
        if (replay_train_run_has(r, ev->exec_id))
            continue;
        const char *how = NULL, *other = "";
        switch (ev->body_case) {
        case PTB__V1__EVENT__BODY_FILE_WRITE:
            how = !strcmp(ev->file_write->path, f->path) ? "written" : NULL;
            break;
        case PTB__V1__EVENT__BODY_FILE_RENAME:
            if (ev->file_rename->result)
                break;
            if (!strcmp(ev->file_rename->new_path, f->path))
                how = "replaced by a rename of ", other = ev->file_rename->path;
            else if (!strcmp(ev->file_rename->path, f->path))
                how = "renamed to ", other = ev->file_rename->new_path;
            break;
        case PTB__V1__EVENT__BODY_FILE_UNLINK:
            how = ev->file_unlink->result == 0 ? "deleted" : NULL;
            break;
        case PTB__V1__EVENT__BODY_FILE_TRUNCATE:
            how = ev->file_truncate->result == 0 ? "truncated" : NULL;
            break;
        default: break;
        }
        if (!how)
            continue;
        rc = replay_note(&r->later.v, &r->later.n, &r->later.cap, f->path,
                         "%s%s by exec %llu (seq %llu), after the training command wrote it", how,
                         other, (unsigned long long)ev->exec_id, (unsigned long long)ev->seq);
        break;
    }
    store_cursor_close(c);
    return rc == PTB_ENOTFOUND ? 0 : rc;
}

int replay_train_run_read(store_txn *t, const rt_execs *x, uint64_t exec_id, rt_run *r,
                          ptb_errbuf *eb)
{
    memset(r, 0, sizeof *r);
    const rt_exec *top = replay_train_exec_find(x, exec_id);
    if (!top)
        return ptb_errf(eb, PTB_EINVAL, "exec %llu is not in the store",
                        (unsigned long long)exec_id);
    int rc = descendants(x, exec_id, r);
    /* by type, not by exec_id: a GPU training's process has millions of kernel launches */
    static const uint32_t types[] = {
        PTB__V1__EVENT__BODY_FILE_WRITE, PTB__V1__EVENT__BODY_FILE_RENAME,
        PTB__V1__EVENT__BODY_FILE_UNLINK, PTB__V1__EVENT__BODY_FILE_READ,
        PTB__V1__EVENT__BODY_PROC_EXIT};
    fev *v = NULL;
    size_t n = 0, cap = 0;
    for (size_t k = 0; !rc && k < sizeof types / sizeof types[0]; k++) {
        store_range rg = {.seq_from = top->seq,
                          .by_index = true,
                          .index = STORE_IX_TYPE,
                          .key = store_type_key(types[k])};
        store_cursor *c;
        if ((rc = store_cursor_open(t, &rg, &c)))
            break;
        const ptb_event *ev;
        while (!(rc = store_cursor_next(c, &ev))) {
            if (!replay_train_run_has(r, ev->exec_id))
                continue;
            if (n == cap) {
                fev *nv = realloc(v, (cap = cap ? cap * 2 : 64) * sizeof *nv);
                if (!nv) {
                    rc = PTB_ENOMEM;
                    break;
                }
                v = nv;
            }
            int c2 = fev_copy(ev, &v[n]);
            if (c2 < 0) {
                free(v[n].path);
                free(v[n].new_path);
                rc = c2;
                break;
            }
            if (c2 == 0)
                n++;
        }
        store_cursor_close(c);
        if (rc == PTB_ENOTFOUND)
            rc = 0;
    }
    if (n)
        qsort(v, n, sizeof *v, cmp_fev);
    size_t fcap = 0, rcap = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        const fev *e = &v[i];
        if (e->type == PTB__V1__EVENT__BODY_PROC_EXIT) {
            if (e->pid == top->pid)
                r->exited = true, r->exit_code = e->code, r->signal = e->sig;
        } else if (e->type == PTB__V1__EVENT__BODY_FILE_READ) {
            if (r->nreads == rcap) {
                char **nv = realloc(r->reads, (rcap = rcap ? rcap * 2 : 16) * sizeof *nv);
                if (!nv) {
                    rc = PTB_ENOMEM;
                    break;
                }
                r->reads = nv;
            }
            if (!(r->reads[r->nreads] = strdup(e->path)))
                rc = PTB_ENOMEM;
            else
                r->nreads++;
        } else {
            rc = apply(r, e, &fcap);
        }
    }
    for (size_t i = 0; i < n; i++) {
        free(v[i].path);
        free(v[i].new_path);
    }
    free(v);
    if (!rc) {
        if (r->nfiles)
            qsort(r->files, r->nfiles, sizeof *r->files, cmp_file);
        if (r->nreads)
            qsort(r->reads, r->nreads, sizeof *r->reads, cmp_str);
        size_t k = 0; /* unique */
        for (size_t i = 0; i < r->nreads; i++) {
            if (k && !strcmp(r->reads[k - 1], r->reads[i]))
                free(r->reads[i]);
            else
                r->reads[k++] = r->reads[i];
        }
        r->nreads = k;
    }
    for (size_t i = 0; !rc && i < r->nfiles; i++)
        rc = later_changes(t, r, &r->files[i]);
    if (rc && !eb->msg[0])
        ptb_errf(eb, rc, "reading the events of exec %llu: %s", (unsigned long long)exec_id,
                 ptb_strerror(rc));
    return rc;
}

void replay_train_run_free(rt_run *r)
{
    free(r->ids);
    for (size_t i = 0; i < r->nfiles; i++)
        free(r->files[i].path);
    free(r->files);
    for (size_t i = 0; i < r->nreads; i++)
        free(r->reads[i]);
    free(r->reads);
    replay_train_notes_free(&r->later);
    memset(r, 0, sizeof *r);
}
