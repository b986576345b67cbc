/* Lineage of a file (query_lineage.h).
 *
 *   file F, before seq S:   writers = PATH postings of F before S that are file.write of F or
 *                           file.rename with new_path F (then: the lineage of the old path)
 *   each writer's process X: its events before the write, through the EXEC index:
 *                           file.read / read-only file.open -> the files it read; those that
 *                           some recorded process wrote are followed (one level deeper), the
 *                           others are summed up; net.* events -> listed (downloads)
 * Every file and process is expanded once (later mentions say "see above"); lists and the
 * total output are bounded and say when they were cut. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "filter_ast.h"
#include "query.h"
#include "query_format.h"
#include "query_lineage.h"

#define C(x) PTB__V1__EVENT__BODY_##x
#define LIN_WRITERS_MAX 16   /* writers shown per file (the latest) */
#define LIN_READS_MAX 32     /* followed reads per process */
#define LIN_NET_MAX 16       /* network events shown per process */
#define LIN_LINES_MAX 4000   /* total output */
#define LIN_SCAN_MAX 1000000 /* events of one process looked at */

typedef struct lin {
    store_txn *t;
    FILE *out;
    query_procs *procs;
    char **files; /* expanded files, owned */
    size_t nfiles, cfiles;
    uint64_t *execs; /* expanded processes */
    size_t nexecs, cexecs;
    size_t lines;
    bool cut;
} lin;

typedef struct lin_ev {
    uint64_t seq;
    uint32_t type;
    uint64_t exec_id;
    char *path; /* owned: the path read, or the old path of a rename */
    char summary[400];
} lin_ev;

static void lin_line(lin *L, int indent, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void lin_line(lin *L, int indent, const char *fmt, ...)
{
    if (L->lines >= LIN_LINES_MAX) {
        if (!L->cut)
            fprintf(L->out, "(output cut at %d lines)\n", LIN_LINES_MAX);
        L->cut = true;
        return;
    }
    L->lines++;
    fprintf(L->out, "%*s", indent * 2, "");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(L->out, fmt, ap);
    va_end(ap);
    fputc('\n', L->out);
}

static bool seen_file(lin *L, const char *path, bool add)
{
    for (size_t i = 0; i < L->nfiles; i++)
        if (strcmp(L->files[i], path) == 0)
            return true;
    if (add && L->nfiles < 100000) {
        if (L->nfiles == L->cfiles) {
            size_t cap = L->cfiles ? L->cfiles * 2 : 32;
            char **nf = realloc(L->files, cap * sizeof *nf);
            if (!nf)
                return false;
            L->files = nf;
            L->cfiles = cap;
        }
        char *d = strdup(path);
        if (d)
            L->files[L->nfiles++] = d;
    }
    return false;
}

static bool seen_exec(lin *L, uint64_t x, bool add)
{
    for (size_t i = 0; i < L->nexecs; i++)
        if (L->execs[i] == x)
            return true;
    if (add) {
        if (L->nexecs == L->cexecs) {
            size_t cap = L->cexecs ? L->cexecs * 2 : 32;
            uint64_t *ne = realloc(L->execs, cap * sizeof *ne);
            if (!ne)
                return false;
            L->execs = ne;
            L->cexecs = cap;
        }
        L->execs[L->nexecs++] = x;
    }
    return false;
}

static void proc_words(lin *L, uint64_t x, char *buf, size_t cap)
{
    const filter_proc *p = L->procs ? query_procs_find(L->procs, x) : NULL;
    if (!p)
        snprintf(buf, cap, "exec %" PRIu64 " (no proc.exec recorded)", x);
    else
        snprintf(buf, cap, "exec %" PRIu64 " %.300s", x, p->cmdline[0] ? p->cmdline : p->exe);
}

static void lev_free(lin_ev *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].path);
    free(v);
}

/* The writers of path before seq `before` (0 = no bound): the latest LIN_WRITERS_MAX in *out,
 * the total in *total. */
static int find_writers(lin *L, const char *path, uint64_t before, lin_ev **out, size_t *n,
                        uint64_t *total)
{
    *out = NULL;
    *n = 0;
    *total = 0;
    uint32_t sid;
    int rc = store_string_lookup(L->t, path, strlen(path), &sid);
    if (rc == PTB_ENOTFOUND)
        return 0;
    if (rc)
        return rc;
    lin_ev *v = calloc(LIN_WRITERS_MAX, sizeof *v);
    if (!v)
        return PTB_ENOMEM;
    store_range r = {
        .seq_to = before ? before - 1 : 0, .by_index = true, .index = STORE_IX_PATH, .key = sid};
    if (before == 1) {
        free(v);
        return 0;
    }
    store_cursor *c;
    if ((rc = store_cursor_open(L->t, &r, &c))) {
        free(v);
        return rc;
    }
    const ptb_event *ev;
    while ((rc = store_cursor_next(c, &ev)) != PTB_ENOTFOUND) {
        if (rc == PTB_ECORRUPT)
            continue;
        if (rc)
            break;
        const char *old = NULL;
        if (ev->body_case == C(FILE_WRITE) && ev->file_write->path &&
            strcmp(ev->file_write->path, path) == 0) {
        } else if (ev->body_case == C(FILE_RENAME) && ev->file_rename->new_path &&
                   strcmp(ev->file_rename->new_path, path) == 0 && ev->file_rename->result >= 0) {
            old = ev->file_rename->path;
        } else {
            continue;
        }
        /* keep the latest LIN_WRITERS_MAX: a ring */
        lin_ev *e = &v[*total % LIN_WRITERS_MAX];
        free(e->path);
        e->path = old ? strdup(old) : NULL;
        e->seq = ev->seq;
        e->type = ev->body_case;
        e->exec_id = ev->exec_id;
        query_format_summary(ev, e->summary, sizeof e->summary);
        (*total)++;
    }
    store_cursor_close(c);
    if (rc != PTB_ENOTFOUND) {
        lev_free(v, LIN_WRITERS_MAX);
        return rc;
    }
    /* unroll the ring into seq order */
    size_t k = *total < LIN_WRITERS_MAX ? (size_t)*total : LIN_WRITERS_MAX;
    lin_ev *o = calloc(k ? k : 1, sizeof *o);
    if (!o) {
        lev_free(v, LIN_WRITERS_MAX);
        return PTB_ENOMEM;
    }
    size_t start = *total < LIN_WRITERS_MAX ? 0 : (size_t)(*total % LIN_WRITERS_MAX);
    for (size_t i = 0; i < k; i++) {
        o[i] = v[(start + i) % LIN_WRITERS_MAX];
        v[(start + i) % LIN_WRITERS_MAX].path = NULL;
    }
    lev_free(v, LIN_WRITERS_MAX);
    *out = o;
    *n = k;
    return 0;
}

static int lineage_file(lin *L, const char *path, uint64_t before, int depth, int indent);

/* What process x did before seq `before` that could feed a write. */
static int lineage_proc(lin *L, uint64_t x, uint64_t before, int depth, int indent)
{
    if (x == 0)
        return 0;
    if (seen_exec(L, x, true)) {
        lin_line(L, indent, "(inputs of exec %" PRIu64 ": see above)", x);
        return 0;
    }
    store_range r = {
        .seq_to = before > 1 ? before - 1 : 1, .by_index = true, .index = STORE_IX_EXEC, .key = x};
    store_cursor *c;
    int rc = store_cursor_open(L->t, &r, &c);
    if (rc)
        return rc;
    lin_ev *reads = NULL;
    size_t nreads = 0, creads = 0, net = 0, looked = 0;
    uint64_t unwritten = 0;
    const ptb_event *ev;
    while ((rc = store_cursor_next(c, &ev)) != PTB_ENOTFOUND && looked++ < LIN_SCAN_MAX) {
        if (rc == PTB_ECORRUPT)
            continue;
        if (rc)
            break;
        const char *rp = NULL;
        if (ev->body_case == C(FILE_READ))
            rp = ev->file_read->path;
        else if (ev->body_case == C(FILE_OPEN) && (ev->file_open->flags & O_ACCMODE) == O_RDONLY &&
                 ev->file_open->result >= 0)
            rp = ev->file_open->path;
        if (rp && *rp) {
            bool dup = false;
            for (size_t i = 0; i < nreads && !dup; i++)
                dup = strcmp(reads[i].path, rp) == 0;
            if (dup)
                continue;
            if (nreads == creads) {
                size_t cap = creads ? creads * 2 : 16;
                lin_ev *nr = realloc(reads, cap * sizeof *nr);
                if (!nr) {
                    rc = PTB_ENOMEM;
                    break;
                }
                reads = nr;
                creads = cap;
            }
            lin_ev *e = &reads[nreads];
            memset(e, 0, sizeof *e);
            e->path = strdup(rp);
            if (!e->path) {
                rc = PTB_ENOMEM;
                break;
            }
            e->seq = ev->seq;
            e->type = ev->body_case;
            nreads++;
            continue;
        }
        const char *tn = event_type_name(ev->body_case);
        if (tn && strncmp(tn, "net.", 4) == 0 && ev->body_case != C(NET_PACKET)) {
            if (net++ < LIN_NET_MAX) {
                char sum[400];
                query_format_summary(ev, sum, sizeof sum);
                lin_line(L, indent, "seq %" PRIu64 " %s %s", ev->seq, tn, sum);
            }
        }
    }
    store_cursor_close(c);
    if (rc != PTB_ENOTFOUND && rc != 0) {
        lev_free(reads, nreads);
        return rc;
    }
    rc = 0;
    if (net > LIN_NET_MAX)
        lin_line(L, indent, "... and %zu more network events of exec %" PRIu64, net - LIN_NET_MAX,
                 x);
    /* follow the reads of files some recorded process wrote before the read */
    size_t followed = 0;
    char examples[400] = "";
    for (size_t i = 0; i < nreads && !rc; i++) {
        lin_ev *w;
        size_t nw;
        uint64_t total;
        if ((rc = find_writers(L, reads[i].path, reads[i].seq, &w, &nw, &total)))
            break;
        lev_free(w, nw);
        if (total == 0) {
            if (unwritten++ < 3) {
                size_t el = strlen(examples);
                snprintf(examples + el, sizeof examples - el, "%s%.120s", el ? ", " : "",
                         reads[i].path);
            }
            continue;
        }
        if (followed++ >= LIN_READS_MAX)
            continue;
        if (seen_file(L, reads[i].path, true)) {
            lin_line(L, indent, "seq %" PRIu64 " %s %s (see above)", reads[i].seq,
                     event_type_name(reads[i].type), reads[i].path);
            continue;
        }
        lin_line(L, indent, "seq %" PRIu64 " %s %s", reads[i].seq, event_type_name(reads[i].type),
                 reads[i].path);
        rc = lineage_file(L, reads[i].path, reads[i].seq, depth, indent + 1);
    }
    if (!rc && followed > LIN_READS_MAX)
        lin_line(L, indent, "... and %zu more files read that recorded processes wrote",
                 followed - LIN_READS_MAX);
    if (!rc && unwritten)
        lin_line(L, indent, "read %" PRIu64 " file%s no recorded process wrote (%s%s)", unwritten,
                 unwritten == 1 ? "" : "s", examples, unwritten > 3 ? ", ..." : "");
    lev_free(reads, nreads);
    return rc;
}

static int lineage_file(lin *L, const char *path, uint64_t before, int depth, int indent)
{
    if (depth <= 0) {
        lin_line(L, indent, "(depth limit: use --depth to go further)");
        return 0;
    }
    lin_ev *w;
    size_t nw;
    uint64_t total;
    int rc = find_writers(L, path, before, &w, &nw, &total);
    if (rc)
        return rc;
    if (total == 0) {
        lin_line(L, indent,
                 "(no recorded write: the file predates the run or was written "
                 "outside it)");
        lev_free(w, nw);
        return 0;
    }
    if (total > nw)
        lin_line(L, indent, "(%" PRIu64 " earlier writes not shown)", total - nw);
    for (size_t i = 0; i < nw && !rc; i++) {
        char who[400];
        proc_words(L, w[i].exec_id, who, sizeof who);
        lin_line(L, indent, "seq %" PRIu64 " %s %s  by %s", w[i].seq, event_type_name(w[i].type),
                 w[i].summary, who);
        if (w[i].path) { /* renamed into place: where the old name came from */
            if (!seen_file(L, w[i].path, true))
                rc = lineage_file(L, w[i].path, w[i].seq, depth - 1, indent + 1);
            else
                lin_line(L, indent + 1, "%s: see above", w[i].path);
        }
        if (!rc)
            rc = lineage_proc(L, w[i].exec_id, w[i].seq, depth - 1, indent + 1);
    }
    lev_free(w, nw);
    return rc;
}

int query_lineage_print(store *s, store_txn *t, const char *path, int depth, FILE *out)
{
    (void)s;
    lin L = {.t = t, .out = out};
    int rc = query_procs_build(t, &L.procs);
    if (rc)
        return rc;
    fprintf(out, "lineage of %s (shows what the store holds so far: %" PRIu64 " events)\n", path,
            store_txn_last_seq(t));
    seen_file(&L, path, true);
    rc = lineage_file(&L, path, 0, depth > 0 ? depth : 1, 1);
    for (size_t i = 0; i < L.nfiles; i++)
        free(L.files[i]);
    free(L.files);
    free(L.execs);
    query_procs_free(L.procs);
    return rc;
}
