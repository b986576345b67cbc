/* The process table of a snapshot: exec_id -> parent, pid, exe, argv, cwd, from the proc.exec
 * events (read through the TYPE index, so its cost is the number of processes, not events).
 * Entries are kept sorted by exec_id for binary search.
 * Strings live in one pool owned by the table. */
#include <stdlib.h>
#include <string.h>

#include "query.h"

struct query_procs {
    filter_proc *v; /* sorted by exec_id */
    size_t n, cap;
    char **pool; /* owned string blocks */
    size_t npool, pool_cap;
};

static char *procs_strdup(query_procs *p, const char *s)
{
    if (p->npool == p->pool_cap) {
        size_t cap = p->pool_cap ? p->pool_cap * 2 : 64;
        char **np = realloc(p->pool, cap * sizeof *np);
        if (!np)
            return NULL;
        p->pool = np;
        p->pool_cap = cap;
    }
    char *d = strdup(s ? s : "");
    if (d)
        p->pool[p->npool++] = d;
    return d;
}

static char *procs_join(query_procs *p, const Ptb__V1__ProcExec *pe)
{
    size_t n = filter_cmdline_join(pe, NULL, 0) + 1;
    char *s = malloc(n);
    if (!s)
        return NULL;
    filter_cmdline_join(pe, s, n);
    char *d = procs_strdup(p, s);
    free(s);
    return d;
}

static int procs_cmp(const void *a, const void *b)
{
    const filter_proc *x = a, *y = b;
    return x->exec_id < y->exec_id ? -1 : x->exec_id > y->exec_id;
}

void query_procs_free(query_procs *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->npool; i++)
        free(p->pool[i]);
    free(p->pool);
    free(p->v);
    free(p);
}

int query_procs_build(store_txn *t, query_procs **out)
{
    *out = NULL;
    query_procs *p = calloc(1, sizeof *p);
    if (!p)
        return PTB_ENOMEM;
    store_range r = {
        .by_index = true, .index = STORE_IX_TYPE, .key = PTB__V1__EVENT__BODY_PROC_EXEC};
    store_cursor *c;
    int rc = store_cursor_open(t, &r, &c);
    if (rc) {
        query_procs_free(p);
        return rc;
    }
    const ptb_event *ev;
    bool sorted = true;
    while ((rc = store_cursor_next(c, &ev)) != PTB_ENOTFOUND) {
        if (rc == PTB_ECORRUPT)
            continue; /* the scan that meets it reports it */
        if (rc)
            break;
        if (ev->body_case != PTB__V1__EVENT__BODY_PROC_EXEC || !ev->proc_exec || !ev->exec_id)
            continue;
        if (p->n == p->cap) {
            size_t cap = p->cap ? p->cap * 2 : 256;
            filter_proc *nv = realloc(p->v, cap * sizeof *nv);
            if (!nv) {
                rc = PTB_ENOMEM;
                break;
            }
            p->v = nv;
            p->cap = cap;
        }
        const Ptb__V1__ProcExec *pe = ev->proc_exec;
        filter_proc *e = &p->v[p->n];
        e->exec_id = ev->exec_id;
        e->parent_exec_id = pe->parent_exec_id;
        e->pid = pe->pid;
        e->ppid = pe->ppid;
        e->exe = procs_strdup(p, pe->exe);
        e->cmdline = procs_join(p, pe);
        e->cwd = procs_strdup(p, pe->cwd);
        if (!e->exe || !e->cmdline || !e->cwd) {
            rc = PTB_ENOMEM;
            break;
        }
        if (p->n && p->v[p->n - 1].exec_id >= e->exec_id)
            sorted = false;
        p->n++;
    }
    store_cursor_close(c);
    if (rc != PTB_ENOTFOUND) {
        query_procs_free(p);
        return rc;
    }
    if (!sorted) {
        /* exec_ids are unique by design; hostile duplicates keep one of them */
        qsort(p->v, p->n, sizeof *p->v, procs_cmp);
        size_t k = 0;
        for (size_t i = 0; i < p->n; i++)
            if (k == 0 || p->v[k - 1].exec_id != p->v[i].exec_id)
                p->v[k++] = p->v[i];
        p->n = k;
    }
    *out = p;
    return 0;
}

const filter_proc *query_procs_find(void *arg, uint64_t exec_id)
{
    const query_procs *p = arg;
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->v[mid].exec_id < exec_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < p->n && p->v[lo].exec_id == exec_id ? &p->v[lo] : NULL;
}

size_t query_procs_count(const query_procs *p)
{
    return p->n;
}

const filter_proc *query_procs_at(const query_procs *p, size_t i)
{
    return i < p->n ? &p->v[i] : NULL;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int query_procs_tree(const query_procs *p, uint64_t root, uint64_t **ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    if (!query_procs_find((void *)p, root))
        return PTB_ENOTFOUND;
    /* breadth first over (parent, child) edges sorted by parent: O(n log n) */
    typedef struct {
        uint64_t parent, child;
    } edge;
    edge *e = malloc((p->n ? p->n : 1) * sizeof *e);
    uint64_t *out = malloc((p->n + 1) * sizeof *out);
    if (!e || !out) {
        free(e);
        free(out);
        return PTB_ENOMEM;
    }
    for (size_t i = 0; i < p->n; i++) {
        e[i].parent = p->v[i].parent_exec_id;
        e[i].child = p->v[i].exec_id;
    }
    qsort(e, p->n, sizeof *e, u64_cmp); /* sorts by parent (first member) */
    size_t k = 0, head = 0;
    out[k++] = root;
    while (head < k) {
        uint64_t par = out[head++];
        size_t lo = 0, hi = p->n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (e[mid].parent < par)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (size_t i = lo; i < p->n && e[i].parent == par; i++) {
            /* each exec_id is a child in one edge only, so only a cycle back to the root (in
             * hostile data) could visit one twice */
            if (e[i].child != root && k <= p->n)
                out[k++] = e[i].child;
        }
    }
    free(e);
    qsort(out, k, sizeof *out, u64_cmp);
    *ids = out;
    *n = k;
    return 0;
}
