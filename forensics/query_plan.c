/* The query planner: from a filter tree to a superset of its matches that is cheap to read.
 *
 * Each condition is mapped to a candidate set (plan_set):
 *   evt.type OP x         -> TYPE postings of every type whose name satisfies the condition
 *   proc.exec_id OP n     -> EXEC postings of every exec_id of the index that satisfies it
 *   proc.exe, proc.cmdline, proc.cwd, proc.ppid, proc.parent_exe, proc.parent_exec_id
 *                         -> EXEC postings of the processes of the table that satisfy it
 *   file.path = / in      -> PATH postings of the interned string (absent string: no events)
 *   file.path other text ops (startswith, glob, contains, ...)
 *                         -> PATH postings of every interned string that satisfies it
 *   net.host, net.ip      -> HOST postings, the same way; tool.name -> TOOL; gpu.kernel -> KERNEL
 *   any field of some event types only (file.bytes, gap.reason ...)
 *                         -> TYPE postings of those types
 *   evt.seq, evt.time ranges -> seq bounds, time bounds
 * whichever of these is smallest. file.path also takes the TYPE postings of file.link, whose
 * target is not indexed. `and` keeps the smallest candidate set of its children and intersects
 * the bounds; `or` unions the postings of its children (when every child has some); `not` and
 * conditions without an index give every event. The full filter is evaluated on each
 * candidate afterwards, so a plan only has to be a superset.
 *
 * Interned strings are at most STORE_STRING_MAX (65536) bytes; longer values are not indexed, so
 * text patterns through the index do not see them (no path from a system call is that long). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "query_int.h"

#define PLAN_STRING_KEYS_MAX 200000 /* more matching strings than this: use another plan */

void plan_set_free(plan_set *p)
{
    free(p->keys);
    free(p->terms);
    memset(p, 0, sizeof *p);
}

static void set_all(plan_set *p, uint64_t last)
{
    memset(p, 0, sizeof *p);
    p->all = true;
    p->seq_lo = 1;
    p->seq_hi = last;
    p->ts_lo = INT64_MIN;
    p->ts_hi = INT64_MAX;
}

static int set_key(plan_set *p, store_index ix, uint64_t key, uint64_t count)
{
    if (p->nkeys == p->kcap) {
        size_t cap = p->kcap ? p->kcap * 2 : 16;
        plan_key *nk = realloc(p->keys, cap * sizeof *nk);
        if (!nk)
            return PTB_ENOMEM;
        p->keys = nk;
        p->kcap = cap;
    }
    p->keys[p->nkeys++] = (plan_key){ix, key, count};
    p->count += count;
    return 0;
}

static int set_term(plan_set *p, const char *desc, size_t nkeys, uint64_t count)
{
    if (p->nterms == p->tcap) {
        size_t cap = p->tcap ? p->tcap * 2 : 4;
        plan_term *nt = realloc(p->terms, cap * sizeof *nt);
        if (!nt)
            return PTB_ENOMEM;
        p->terms = nt;
        p->tcap = cap;
    }
    plan_term *t = &p->terms[p->nterms++];
    snprintf(t->desc, sizeof t->desc, "%s", desc);
    t->nkeys = nkeys;
    t->count = count;
    return 0;
}

/* Move the postings of src into dst (union). */
static int set_union(plan_set *dst, plan_set *src)
{
    for (size_t i = 0; i < src->nkeys; i++) {
        int rc = set_key(dst, src->keys[i].ix, src->keys[i].key, src->keys[i].count);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < src->nterms; i++) {
        int rc = set_term(dst, src->terms[i].desc, src->terms[i].nkeys, src->terms[i].count);
        if (rc)
            return rc;
    }
    return 0;
}

static int add_key_counted(query *q, plan_set *p, store_index ix, uint64_t key)
{
    uint64_t n = 0;
    int rc = store_index_count(q->t, ix, key, &n);
    if (rc == PTB_ENOTFOUND)
        return 0;
    if (rc)
        return rc;
    return n ? set_key(p, ix, key, n) : 0;
}

/* ------------------------------------------------------------------ conditions */

static void node_text(const filter_node *n, char *buf, size_t cap)
{
    size_t len = filter_node_print(n, buf, cap);
    if (len >= cap && cap > 4)
        memcpy(buf + cap - 4, "...", 4);
}

/* TYPE postings of every type in the field's mask. */
static int cmp_by_types(query *q, const filter_node *n, plan_set *p)
{
    if (filter_mask_all(n->field.mask))
        return 1;
    size_t nt = event_type_count();
    for (size_t i = 0; i < nt; i++) {
        uint32_t bc = event_type_at(i);
        if (filter_mask_has(n->field.mask, bc)) {
            int rc = add_key_counted(q, p, STORE_IX_TYPE, bc);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* TYPE postings of the types whose name satisfies n. */
static int cmp_evt_type(query *q, const filter_node *n, plan_set *p)
{
    size_t nt = event_type_count();
    for (size_t i = 0; i < nt; i++) {
        uint32_t bc = event_type_at(i);
        const char *name = event_type_name(bc);
        filter_val v = {.s = name, .n = strlen(name), .i = bc};
        if (filter_cmp_value(n, &v)) {
            int rc = add_key_counted(q, p, STORE_IX_TYPE, bc);
            if (rc)
                return rc;
        }
    }
    return 0;
}

typedef struct exec_keys {
    query *q;
    const filter_node *n;
    plan_set *p;
    int rc;
} exec_keys;

static int exec_key_cb(void *arg, uint64_t key, uint64_t count)
{
    exec_keys *e = arg;
    filter_val v = {.i = key, .d = (double)key};
    if (key == 0 || !filter_cmp_value(e->n, &v))
        return 0;
    e->rc = set_key(e->p, STORE_IX_EXEC, key, count);
    return e->rc ? 1 : 0;
}

/* EXEC postings of the processes whose table entry satisfies n (n uses a table field). */
static int cmp_procs(query *q, const filter_node *n, plan_set *p)
{
    if (!q->procs)
        return 1;
    filter_ctx cx;
    filter_ctx_init(&cx, query_procs_find, q->procs);
    int rc = 0;
    size_t np = query_procs_count(q->procs);
    for (size_t i = 0; i < np && !rc; i++) {
        const filter_proc *pr = query_procs_at(q->procs, i);
        ptb_event light = PTB__V1__EVENT__INIT;
        light.exec_id = pr->exec_id;
        if (filter_node_eval(n, &light, &cx) == FILTER_TRUE)
            rc = add_key_counted(q, p, STORE_IX_EXEC, pr->exec_id);
    }
    filter_ctx_free(&cx);
    return rc;
}

/* Postings of the interned strings that satisfy n, under index ix. Returns 1 when the strings
 * cannot answer (too many matches, or a literal too long to be interned). */
static int cmp_strings(query *q, const filter_node *n, plan_set *p, store_index ix)
{
    if (n->op == FOP_NE || n->op == FOP_EXISTS)
        return 1;
    if (n->op == FOP_EQ || n->op == FOP_IN) {
        for (size_t i = 0; i < n->nlits; i++) {
            uint32_t sid;
            if (n->lits[i].len > STORE_STRING_MAX)
                return 1;
            int rc = store_string_lookup(q->t, n->lits[i].text, n->lits[i].len, &sid);
            if (rc == PTB_ENOTFOUND)
                continue;
            if (rc)
                return rc;
            if ((rc = add_key_counted(q, p, ix, sid)))
                return rc;
        }
        return 0;
    }
    uint32_t ns = store_string_count(q->t);
    size_t matched = 0;
    for (uint32_t sid = 1; sid <= ns; sid++) {
        const char *s;
        size_t len;
        int rc = store_string_get(q->t, sid, &s, &len);
        if (rc == PTB_ENOTFOUND)
            continue;
        if (rc)
            return rc;
        filter_val v = {.s = s, .n = len};
        if (!filter_cmp_value(n, &v))
            continue;
        if (++matched > PLAN_STRING_KEYS_MAX)
            return 1;
        if ((rc = add_key_counted(q, p, ix, sid)))
            return rc;
    }
    return 0;
}

/* Candidate set of one comparison; p starts as "all". */
static int plan_cmp(query *q, const filter_node *n, plan_set *p)
{
    const filter_field *f = &n->field;
    char text[160];
    node_text(n, text, sizeof text);
    /* bounds */
    if (f->id == FF_EVT_SEQ || f->id == FF_EVT_TIME) {
        __int128 lo = INT64_MIN, hi = (__int128)UINT64_MAX;
        switch (n->op) {
        case FOP_EQ: lo = hi = n->lits[0].i; break;
        case FOP_IN:
            lo = hi = n->lits[0].i;
            for (size_t i = 1; i < n->nlits; i++) {
                lo = n->lits[i].i < lo ? n->lits[i].i : lo;
                hi = n->lits[i].i > hi ? n->lits[i].i : hi;
            }
            break;
        case FOP_LT: hi = n->lits[0].i - 1; break;
        case FOP_LE: hi = n->lits[0].i; break;
        case FOP_GT: lo = n->lits[0].i + 1; break;
        case FOP_GE: lo = n->lits[0].i; break;
        default: return 0;
        }
        if (f->id == FF_EVT_SEQ) {
            if (lo > (__int128)p->seq_lo)
                p->seq_lo = lo > (__int128)UINT64_MAX ? UINT64_MAX : (uint64_t)lo;
            if (hi < (__int128)p->seq_hi)
                p->seq_hi = hi < 0 ? 0 : (uint64_t)hi;
        } else {
            if (lo > p->ts_lo)
                p->ts_lo = lo > INT64_MAX ? INT64_MAX : (int64_t)lo;
            if (hi < p->ts_hi)
                p->ts_hi = hi < INT64_MIN ? INT64_MIN : (int64_t)hi;
        }
        return 0;
    }
    /* postings: try the specific index, then the types of the field, keep the smaller */
    plan_set a, b;
    set_all(&a, q->last_seq);
    set_all(&b, q->last_seq);
    a.all = b.all = false;
    int ra = 1, rb = 1, rc = 0;
    char desc[240];
    desc[0] = '\0';
    switch (f->id) {
    case FF_EVT_TYPE:
        if (n->op != FOP_EXISTS) {
            ra = cmp_evt_type(q, n, &a);
            snprintf(desc, sizeof desc, "type index: %s", text);
        }
        break;
    case FF_PROC_EXEC_ID:
        if (n->op != FOP_EXISTS && n->op != FOP_NE) {
            exec_keys e = {q, n, &a, 0};
            if (n->op == FOP_EQ || n->op == FOP_IN) {
                ra = 0;
                for (size_t i = 0; i < n->nlits && !ra; i++)
                    if (n->lits[i].i > 0)
                        ra = add_key_counted(q, &a, STORE_IX_EXEC, (uint64_t)n->lits[i].i);
            } else {
                ra = store_index_foreach_key(q->t, STORE_IX_EXEC, exec_key_cb, &e);
                if (ra == 1 || ra == 0)
                    ra = e.rc;
            }
            snprintf(desc, sizeof desc, "exec index: %s", text);
        }
        break;
    case FF_PROC_EXE:
    case FF_PROC_CMDLINE:
    case FF_PROC_CWD:
    case FF_PROC_PPID:
    case FF_PROC_PARENT_EXE:
    case FF_PROC_PARENT_EXEC_ID:
        if (n->op != FOP_NE) {
            ra = cmp_procs(q, n, &a);
            snprintf(desc, sizeof desc, "exec index, processes where %s", text);
        }
        break;
    case FF_FILE_PATH:
        ra = cmp_strings(q, n, &a, STORE_IX_PATH);
        if (ra == 0) /* the target of file.link is not indexed */
            ra = add_key_counted(q, &a, STORE_IX_TYPE, PTB__V1__EVENT__BODY_FILE_LINK);
        snprintf(desc, sizeof desc, "path index: %s", text);
        break;
    case FF_NET_HOST:
    case FF_NET_IP:
        ra = cmp_strings(q, n, &a, STORE_IX_HOST);
        snprintf(desc, sizeof desc, "host index: %s", text);
        break;
    case FF_TOOL_NAME:
        ra = cmp_strings(q, n, &a, STORE_IX_TOOL);
        snprintf(desc, sizeof desc, "tool index: %s", text);
        break;
    case FF_GPU_KERNEL:
        ra = cmp_strings(q, n, &a, STORE_IX_KERNEL);
        snprintf(desc, sizeof desc, "kernel index: %s", text);
        break;
    default: break;
    }
    if (ra < 0) {
        rc = ra;
        goto out;
    }
    /* the type postings can only win over a field index that is not already small */
    rb = ra == 0 && a.count <= 4096 ? 1 : cmp_by_types(q, n, &b);
    if (rb < 0) {
        rc = rb;
        goto out;
    }
    plan_set *best = NULL;
    if (ra == 0)
        best = &a;
    if (rb == 0 && (!best || b.count < best->count)) {
        best = &b;
        snprintf(desc, sizeof desc, "type index, types that have %.40s: %.160s", f->name, text);
    }
    if (!best)
        goto out; /* p stays "all" */
    p->all = false;
    if ((rc = set_union(p, best)) == 0)
        rc = set_term(p, desc, best->nkeys, best->count);
out:
    plan_set_free(&a);
    plan_set_free(&b);
    return rc;
}

static int plan_node(query *q, const filter_node *n, plan_set *p)
{
    set_all(p, q->last_seq);
    switch (n->kind) {
    case FN_TRUE:
    case FN_NOT: return 0;
    case FN_CMP: return plan_cmp(q, n, p);
    case FN_AND: {
        /* bounds: intersection; postings: the smallest child's */
        plan_set best;
        bool have = false;
        int rc = 0;
        for (size_t i = 0; i < n->nkids && !rc; i++) {
            plan_set k;
            rc = plan_node(q, n->kids[i], &k);
            if (rc) {
                plan_set_free(&k);
                break;
            }
            p->seq_lo = k.seq_lo > p->seq_lo ? k.seq_lo : p->seq_lo;
            p->seq_hi = k.seq_hi < p->seq_hi ? k.seq_hi : p->seq_hi;
            p->ts_lo = k.ts_lo > p->ts_lo ? k.ts_lo : p->ts_lo;
            p->ts_hi = k.ts_hi < p->ts_hi ? k.ts_hi : p->ts_hi;
            if (!k.all && (!have || k.count < best.count)) {
                if (have)
                    plan_set_free(&best);
                best = k;
                have = true;
            } else {
                plan_set_free(&k);
            }
        }
        if (have) {
            if (!rc) {
                p->all = false;
                rc = set_union(p, &best);
            }
            plan_set_free(&best);
        }
        return rc;
    }
    case FN_OR: {
        /* postings: union when every child has some; bounds: the hull */
        bool all = false;
        int rc = 0;
        p->seq_lo = UINT64_MAX;
        p->seq_hi = 0;
        p->ts_lo = INT64_MAX;
        p->ts_hi = INT64_MIN;
        p->all = false;
        for (size_t i = 0; i < n->nkids && !rc; i++) {
            plan_set k;
            rc = plan_node(q, n->kids[i], &k);
            if (!rc) {
                p->seq_lo = k.seq_lo < p->seq_lo ? k.seq_lo : p->seq_lo;
                p->seq_hi = k.seq_hi > p->seq_hi ? k.seq_hi : p->seq_hi;
                p->ts_lo = k.ts_lo < p->ts_lo ? k.ts_lo : p->ts_lo;
                p->ts_hi = k.ts_hi > p->ts_hi ? k.ts_hi : p->ts_hi;
                if (k.all)
                    all = true;
                else if (!all)
                    rc = set_union(p, &k);
            }
            plan_set_free(&k);
        }
        if (all) {
            free(p->keys);
            free(p->terms);
            p->keys = NULL;
            p->terms = NULL;
            p->nkeys = p->kcap = p->nterms = p->tcap = 0;
            p->count = 0;
            p->all = true;
        }
        return rc;
    }
    }
    return 0;
}

void query_options_default(query_options *o)
{
    memset(o, 0, sizeof *o);
    o->need_event = true;
}

int query_plan(store *s, store_txn *t, const filter *f, const query_options *o, query **out,
               ptb_errbuf *eb)
{
    *out = NULL;
    query *q = calloc(1, sizeof *q);
    if (!q)
        return ptb_errf(eb, PTB_ENOMEM, "out of memory");
    q->s = s;
    q->t = t;
    q->f = f;
    if (o)
        q->o = *o;
    else
        query_options_default(&q->o);
    q->last_seq = store_txn_last_seq(t);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    q->threads = q->o.threads > 0 ? q->o.threads : (int)(cpus > 0 ? cpus : 1);
    if (q->threads > 8)
        q->threads = 8;
    int rc = 0;
    if (filter_needs_procs(f) && (rc = query_procs_build(t, &q->procs))) {
        ptb_errf(eb, rc, "reading the process table: %s", ptb_strerror(rc));
        query_free(q);
        return rc;
    }
    if (q->o.no_index) {
        set_all(&q->plan, q->last_seq);
        snprintf(q->why, sizeof q->why, "indexes disabled");
    } else {
        rc = plan_node(q, f->root, &q->plan);
        if (rc) {
            ptb_errf(eb, rc, "planning the query: %s", ptb_strerror(rc));
            query_free(q);
            return rc;
        }
    }
    plan_set *p = &q->plan;
    if (p->seq_hi > q->last_seq)
        p->seq_hi = q->last_seq;
    uint64_t range = p->seq_hi >= p->seq_lo ? p->seq_hi - p->seq_lo + 1 : 0;
    if (!p->all && p->count <= QUERY_INDEX_MAX && p->count <= range - range / 4) {
        q->use_index = true;
        snprintf(q->why, sizeof q->why, "indexes give at most %" PRIu64 " candidates", p->count);
    } else if (!p->all) {
        snprintf(q->why, sizeof q->why,
                 "the best index gives %" PRIu64 " candidates of %" PRIu64
                 " events: scanning is cheaper",
                 p->count, range);
    } else if (!q->o.no_index) {
        snprintf(q->why, sizeof q->why, "no index applies to the filter");
    }
    *out = q;
    return 0;
}

void query_explain(const query *q, FILE *out)
{
    const plan_set *p = &q->plan;
    char ftext[4096];
    filter_print(q->f, ftext, sizeof ftext);
    fprintf(out, "filter: %s\n", ftext[0] ? ftext : "(every event)");
    fprintf(out, "store: %" PRIu64 " events\n", q->last_seq);
    if (q->procs)
        fprintf(out, "process table: %zu processes (from proc.exec events)\n",
                query_procs_count(q->procs));
    if (q->use_index) {
        fprintf(out, "plan: index union, %zu posting lists, at most %" PRIu64 " candidates (%s)\n",
                p->nkeys, p->count, q->why);
        for (size_t i = 0; i < p->nterms; i++)
            fprintf(out, "  %s -> %zu posting lists, %" PRIu64 " events\n", p->terms[i].desc,
                    p->terms[i].nkeys, p->terms[i].count);
    } else {
        fprintf(out, "plan: full scan in %d threads (%s)\n", q->threads, q->why);
    }
    if (p->seq_lo > 1 || p->seq_hi < q->last_seq)
        fprintf(out, "  seq bounds: %" PRIu64 "..%" PRIu64 "\n", p->seq_lo, p->seq_hi);
    if (p->ts_lo != INT64_MIN || p->ts_hi != INT64_MAX) {
        char a[48] = "-", b[48] = "-";
        if (p->ts_lo != INT64_MIN)
            query_time_format(p->ts_lo, 9, a, sizeof a);
        if (p->ts_hi != INT64_MAX)
            query_time_format(p->ts_hi, 9, b, sizeof b);
        fprintf(out, "  time bounds (by batch): %s .. %s\n", a, b);
    }
    fprintf(out, "each candidate: envelope checked first, body decoded only when needed, "
                 "full filter re-evaluated\n");
}

void query_free(query *q)
{
    if (!q)
        return;
    plan_set_free(&q->plan);
    query_procs_free(q->procs);
    free(q);
}

uint64_t query_corrupt(const query *q, uint64_t *first_seq)
{
    if (first_seq)
        *first_seq = q->corrupt_first;
    return q->corrupt;
}

uint64_t query_checked(const query *q)
{
    return q->checked;
}

const query_procs *query_procs_of(const query *q)
{
    return q->procs;
}
