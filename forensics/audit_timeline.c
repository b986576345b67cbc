/* The timeline of one run for the HTML report (audit_html.h): what happened when, read from the
 * store through the TYPE index, so each lane costs the number of its own events.
 *
 * Lanes (times in microseconds from the store's first event):
 *   phases    run.phase begin/end pairs
 *   tools     tool.call, ended by the tool.result with its call id
 *   procs     proc.exec to proc.exit: the harness's (the agent CLI's exec chain) and the others
 *   net       net.connect, net.flow, net.tls, net.http, DNS queries: host or destination
 *   gpu       gpu.kernel launches (batches expanded by the cursor) and copies, summed per bucket
 *   evidence  every evidence seq of the findings, with the findings that name it
 * Lanes over their bound keep the evidence first, then the harness, then (processes) the longest
 * or (others) the first, and say how many they left out; the page says "N more not shown". */
#include <stdlib.h>
#include <string.h>

#include "audit_html.h"
#include "event_type.h"
#include "filter.h"

#define TL_PROCS_READ (1u << 20) /* processes read at all; past it only counted */

typedef struct tl {
    audit_run *r;
    const audit_report *rep;
    int64_t t0, t1;
    uint64_t *ev_seqs, *ev_execs; /* evidence seqs and their events' exec_ids, sorted */
    size_t n_ev_seqs, n_ev_execs;
} tl;

typedef struct tl_proc {
    uint64_t exec_id, seq, exit_seq;
    int64_t ts, end;
    int32_t code, sig;
    bool harness, evidence, exited;
} tl_proc;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool has_u64(const uint64_t *v, size_t n, uint64_t x)
{
    return n && bsearch(&x, v, n, sizeof *v, cmp_u64);
}

static json_int_t tl_us(const tl *t, int64_t ts)
{
    if (ts < t->t0)
        ts = t->t0;
    return (json_int_t)((ts - t->t0) / 1000);
}

/* s as a JSON string: at most AUDIT_TL_TEXT bytes cut at a character boundary, bytes that are
 * not UTF-8 as '?' (jansson takes valid UTF-8 only). */
static json_t *tl_str(const char *s)
{
    char buf[AUDIT_TL_TEXT + 8];
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p && o < AUDIT_TL_TEXT) {
        size_t len = store_utf8_len(p, strnlen((const char *)p, 4));
        if (!len) {
            buf[o++] = '?';
            p++;
            continue;
        }
        if (o + len > AUDIT_TL_TEXT)
            break;
        memcpy(buf + o, p, len);
        o += len;
        p += len;
    }
    if (*p) /* cut: say so */
        memcpy(buf + o, "\xe2\x80\xa6", 3), o += 3;
    return json_stringn_nocheck(buf, o);
}

static bool is_evidence(const tl *t, const ptb_event *ev)
{
    return has_u64(t->ev_seqs, t->n_ev_seqs, ev->seq) ||
           (ev->exec_id && has_u64(t->ev_execs, t->n_ev_execs, ev->exec_id));
}

typedef int (*tl_fn)(tl *t, const ptb_event *ev, void *arg);

/* fn on every event of the n types, type by type, each in seq order. Events that do not decode
 * are passed over (the detectors' scans report them). 0, or fn's or the store's error. */
static int tl_each(tl *t, const uint32_t *kinds, size_t n, tl_fn fn, void *arg)
{
    int rc = 0;
    for (size_t k = 0; k < n && !rc; k++) {
        store_range rg = {
            .by_index = true, .index = STORE_IX_TYPE, .key = store_type_key(kinds[k])};
        store_cursor *c;
        if ((rc = store_cursor_open(t->r->t, &rg, &c)))
            break;
        const ptb_event *ev;
        while ((rc = store_cursor_next(c, &ev)) == 0 || rc == PTB_ECORRUPT)
            if (!rc && (rc = fn(t, ev, arg)))
                break;
        store_cursor_close(c);
        rc = rc == PTB_ENOTFOUND ? 0 : rc;
    }
    return rc;
}

/* ------------------------------------------------------------------ evidence */

static int tl_evidence(tl *t, json_t *root)
{
    size_t n = 0;
    for (size_t i = 0; i < t->rep->n; i++)
        n += t->rep->f[i].n_seqs;
    if (!n)
        return json_object_set_new(root, "evidence", json_array()) ? PTB_ENOMEM : 0;
    if (!(t->ev_seqs = malloc(n * sizeof *t->ev_seqs)) ||
        !(t->ev_execs = malloc(n * sizeof *t->ev_execs)))
        return PTB_ENOMEM;
    for (size_t i = 0; i < t->rep->n; i++)
        for (size_t k = 0; k < t->rep->f[i].n_seqs; k++)
            t->ev_seqs[t->n_ev_seqs++] = t->rep->f[i].seqs[k];
    qsort(t->ev_seqs, t->n_ev_seqs, sizeof *t->ev_seqs, cmp_u64);
    size_t u = 0;
    for (size_t i = 0; i < t->n_ev_seqs; i++)
        if (!u || t->ev_seqs[i] != t->ev_seqs[u - 1])
            t->ev_seqs[u++] = t->ev_seqs[i];
    t->n_ev_seqs = u;
    json_t *arr = json_array();
    json_object_set_new(root, "evidence", arr);
    for (size_t i = 0; i < t->n_ev_seqs; i++) {
        const ptb_event *ev;
        if (store_event_get(t->r->t, t->ev_seqs[i], &ev))
            continue; /* a seq the store does not have: the finding lists it, nothing to draw */
        if (ev->exec_id)
            t->ev_execs[t->n_ev_execs++] = ev->exec_id;
        if (i >= AUDIT_TL_EVIDENCE)
            continue;
        json_t *fs = json_array();
        for (size_t k = 0; k < t->rep->n; k++)
            if (has_u64(t->rep->f[k].seqs, t->rep->f[k].n_seqs, t->ev_seqs[i]))
                json_array_append_new(fs, json_integer((json_int_t)k));
        const char *type = event_type_name(ev->body_case);
        json_array_append_new(arr, json_pack("{s:I,s:I,s:s,s:I,s:o}", "seq", (json_int_t)ev->seq,
                                             "t", tl_us(t, ev->ts_ns), "type", type ? type : "?",
                                             "exec", (json_int_t)ev->exec_id, "f", fs));
    }
    qsort(t->ev_execs, t->n_ev_execs, sizeof *t->ev_execs, cmp_u64);
    json_object_set_new(root, "evidence_more",
                        json_integer(t->n_ev_seqs > AUDIT_TL_EVIDENCE
                                         ? (json_int_t)(t->n_ev_seqs - AUDIT_TL_EVIDENCE)
                                         : 0));
    return 0;
}

/* ------------------------------------------------------------------ run, phases, score */

typedef struct tl_runctx {
    json_t *root, *phases, *open; /* open: phases begun, by name */
} tl_runctx;

static int run_one(tl *t, const ptb_event *ev, void *arg)
{
    tl_runctx *x = arg;
    if (ev->body_case == PTB__V1__EVENT__BODY_RUN_START && !json_object_get(x->root, "run")) {
        const Ptb__V1__RunStart *s = ev->run_start;
        json_object_set_new(x->root, "run",
                            json_pack("{s:o,s:o,s:o,s:o,s:I}", "run_id", tl_str(s->run_id), "task",
                                      tl_str(s->task), "agent", tl_str(s->agent), "host",
                                      tl_str(s->host), "seq", (json_int_t)ev->seq));
    } else if (ev->body_case == PTB__V1__EVENT__BODY_RUN_PHASE) {
        const Ptb__V1__RunPhase *p = ev->run_phase;
        const char *name = p->phase && *p->phase ? p->phase : "?";
        json_t *ph = json_object_get(x->open, name);
        if (p->state && !strcmp(p->state, "end") && ph) {
            json_object_set_new(ph, "end", json_integer(tl_us(t, ev->ts_ns)));
            json_object_del(x->open, name);
        } else if (json_array_size(x->phases) < 64) {
            ph = json_pack("{s:o,s:I,s:I,s:I}", "name", tl_str(name), "t", tl_us(t, ev->ts_ns),
                           "end", tl_us(t, t->t1), "seq", (json_int_t)ev->seq);
            json_array_append_new(x->phases, ph);
            json_object_set(x->open, name, ph);
        }
    } else if (ev->body_case == PTB__V1__EVENT__BODY_EVAL_RESULT) {
        const Ptb__V1__EvalResult *e = ev->eval_result;
        json_object_set_new(x->root, "score",
                            json_pack("{s:o,s:o,s:f,s:I,s:I,s:I}", "benchmark",
                                      tl_str(e->benchmark), "metric", tl_str(e->metric), "value",
                                      e->value, "items", (json_int_t)e->items, "correct",
                                      (json_int_t)e->correct, "seq", (json_int_t)ev->seq));
    }
    return 0;
}

static int tl_run(tl *t, json_t *root)
{
    const uint32_t kinds[] = {PTB__V1__EVENT__BODY_RUN_START, PTB__V1__EVENT__BODY_RUN_PHASE,
                              PTB__V1__EVENT__BODY_EVAL_RESULT};
    tl_runctx x = {.root = root, .phases = json_array(), .open = json_object()};
    json_object_set_new(root, "phases", x.phases);
    int rc = tl_each(t, kinds, 3, run_one, &x);
    json_decref(x.open);
    return rc;
}

/* ------------------------------------------------------------------ tool calls */

typedef struct tl_call {
    const char *id;
    json_t *obj;
} tl_call;

static int cmp_call(const void *a, const void *b)
{
    return strcmp(((const tl_call *)a)->id, ((const tl_call *)b)->id);
}

typedef struct tl_tools_ctx {
    json_t *arr;
    tl_call *calls; /* sorted by id once read */
    char **ids;
    size_t n, cap;
    uint64_t more;
} tl_tools_ctx;

static int call_one(tl *t, const ptb_event *ev, void *arg)
{
    tl_tools_ctx *x = arg;
    if (x->n >= x->cap || (x->n >= AUDIT_TL_TOOLS && !is_evidence(t, ev))) {
        x->more++;
        return 0;
    }
    const Ptb__V1__ToolCall *tc = ev->tool_call;
    json_t *o = json_pack("{s:I,s:I,s:o,s:o}", "seq", (json_int_t)ev->seq, "t", tl_us(t, ev->ts_ns),
                          "name", tl_str(tc->name), "input", tl_str(tc->input));
    if (!o || !(x->ids[x->n] = strdup(tc->call_id ? tc->call_id : ""))) {
        json_decref(o);
        return PTB_ENOMEM;
    }
    x->calls[x->n] = (tl_call){.id = x->ids[x->n], .obj = o};
    x->n++;
    return json_array_append_new(x->arr, o) ? PTB_ENOMEM : 0;
}

/* A result ends the first call of its id. */
static int result_one(tl *t, const ptb_event *ev, void *arg)
{
    tl_tools_ctx *x = arg;
    tl_call key = {.id = ev->tool_result->call_id ? ev->tool_result->call_id : ""};
    tl_call *m = bsearch(&key, x->calls, x->n, sizeof *x->calls, cmp_call);
    if (!m || json_object_get(m->obj, "end"))
        return 0;
    json_object_set_new(m->obj, "end", json_integer(tl_us(t, ev->ts_ns)));
    json_object_set_new(m->obj, "rseq", json_integer((json_int_t)ev->seq));
    json_object_set_new(m->obj, "error", json_boolean(ev->tool_result->is_error));
    return 0;
}

static int tl_tools(tl *t, json_t *root)
{
    tl_tools_ctx x = {.arr = json_array(), .cap = AUDIT_TL_TOOLS + AUDIT_TL_EVIDENCE};
    json_object_set_new(root, "tools", x.arr);
    x.calls = malloc(x.cap * sizeof *x.calls);
    x.ids = calloc(x.cap, sizeof *x.ids);
    const uint32_t call = PTB__V1__EVENT__BODY_TOOL_CALL, result = PTB__V1__EVENT__BODY_TOOL_RESULT;
    int rc = !x.calls || !x.ids ? PTB_ENOMEM : tl_each(t, &call, 1, call_one, &x);
    if (!rc && x.n) {
        qsort(x.calls, x.n, sizeof *x.calls, cmp_call);
        rc = tl_each(t, &result, 1, result_one, &x);
    }
    for (size_t i = 0; x.ids && i < x.n; i++)
        free(x.ids[i]);
    free(x.ids);
    free(x.calls);
    json_object_set_new(root, "tools_more", json_integer((json_int_t)x.more));
    return rc;
}

/* ------------------------------------------------------------------ processes */

static int cmp_proc_id(const void *a, const void *b)
{
    const tl_proc *x = a, *y = b;
    return x->exec_id < y->exec_id ? -1 : x->exec_id > y->exec_id;
}

/* What is drawn first: evidence, the harness, then the longest lived. */
static int cmp_proc_keep(const void *a, const void *b)
{
    const tl_proc *x = a, *y = b;
    if (x->evidence != y->evidence)
        return x->evidence ? -1 : 1;
    if (x->harness != y->harness)
        return x->harness ? -1 : 1;
    int64_t dx = x->end - x->ts, dy = y->end - y->ts;
    return dx > dy ? -1 : dx < dy ? 1 : cmp_proc_id(a, b);
}

static int cmp_proc_seq(const void *a, const void *b)
{
    const tl_proc *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

typedef struct tl_procs_ctx {
    tl_proc *v;
    size_t n, cap;
    uint64_t more;
} tl_procs_ctx;

static int exec_one(tl *t, const ptb_event *ev, void *arg)
{
    tl_procs_ctx *x = arg;
    if (x->n == TL_PROCS_READ) {
        x->more++;
        return 0;
    }
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 256;
        tl_proc *v = realloc(x->v, cap * sizeof *v);
        if (!v)
            return PTB_ENOMEM;
        x->v = v;
        x->cap = cap;
    }
    x->v[x->n++] = (tl_proc){.exec_id = ev->exec_id,
                             .seq = ev->seq,
                             .ts = ev->ts_ns,
                             .end = t->t1,
                             .harness = audit_is_harness(t->r, ev->exec_id),
                             .evidence = is_evidence(t, ev)};
    return 0;
}

static int exit_one(tl *t, const ptb_event *ev, void *arg)
{
    tl_procs_ctx *x = arg;
    tl_proc key = {.exec_id = ev->exec_id};
    tl_proc *p = bsearch(&key, x->v, x->n, sizeof *x->v, cmp_proc_id);
    if (!p || p->exited)
        return 0;
    p->exited = true;
    p->end = ev->ts_ns > p->ts ? ev->ts_ns : p->ts; /* clocks of two sources can disagree */
    p->exit_seq = ev->seq;
    p->code = ev->proc_exit->exit_code;
    p->sig = ev->proc_exit->signal;
    p->evidence |= has_u64(t->ev_seqs, t->n_ev_seqs, ev->seq);
    return 0;
}

/* The drawn processes, with their program, argv and exit, into root's "procs". */
static void procs_json(tl *t, json_t *root, const tl_proc *v, size_t n)
{
    json_t *arr = json_array();
    json_object_set_new(root, "procs", arr);
    char line[AUDIT_TL_TEXT + 1];
    for (size_t i = 0; i < n; i++) {
        const ptb_event *ev;
        if (store_event_get(t->r->t, v[i].seq, &ev) ||
            ev->body_case != PTB__V1__EVENT__BODY_PROC_EXEC)
            continue;
        const Ptb__V1__ProcExec *pe = ev->proc_exec;
        const char *exe = pe->exe && *pe->exe ? pe->exe : pe->n_argv ? pe->argv[0] : "?";
        const char *base = strrchr(exe, '/');
        filter_cmdline_join(pe, line, sizeof line);
        json_t *o = json_pack("{s:I,s:I,s:I,s:I,s:o,s:o,s:i,s:b}", "id", (json_int_t)v[i].exec_id,
                              "seq", (json_int_t)v[i].seq, "t", tl_us(t, v[i].ts), "end",
                              tl_us(t, v[i].end), "name", tl_str(base && base[1] ? base + 1 : exe),
                              "argv", tl_str(line), "pid", (int)pe->pid, "harness", v[i].harness);
        if (v[i].exited) {
            json_object_set_new(o, "xseq", json_integer((json_int_t)v[i].exit_seq));
            json_object_set_new(o, "exit", json_integer(v[i].code));
            if (v[i].sig)
                json_object_set_new(o, "signal", json_integer(v[i].sig));
        }
        if (pe->parent_exec_id)
            json_object_set_new(o, "parent", json_integer((json_int_t)pe->parent_exec_id));
        json_array_append_new(arr, o);
    }
}

static int tl_procs(tl *t, json_t *root)
{
    tl_procs_ctx x = {0};
    const uint32_t exec = PTB__V1__EVENT__BODY_PROC_EXEC, exit = PTB__V1__EVENT__BODY_PROC_EXIT;
    int rc = tl_each(t, &exec, 1, exec_one, &x);
    if (!rc && x.n) {
        qsort(x.v, x.n, sizeof *x.v, cmp_proc_id);
        rc = tl_each(t, &exit, 1, exit_one, &x);
    }
    size_t keep = x.n < AUDIT_TL_PROCS ? x.n : AUDIT_TL_PROCS;
    if (!rc && x.n > keep) {
        qsort(x.v, x.n, sizeof *x.v, cmp_proc_keep);
        x.more += x.n - keep;
    }
    if (!rc && keep) {
        qsort(x.v, keep, sizeof *x.v, cmp_proc_seq);
        procs_json(t, root, x.v, keep);
    }
    free(x.v);
    json_object_set_new(root, "procs_more", json_integer((json_int_t)x.more));
    return rc;
}

/* ------------------------------------------------------------------ network */

static void net_dst(const Ptb__V1__SockAddr *a, char *out, size_t cap)
{
    if (a && a->ip && *a->ip)
        snprintf(out, cap, strchr(a->ip, ':') ? "[%s]:%u" : "%s:%u", a->ip, a->port);
    else
        snprintf(out, cap, "?");
}

typedef struct tl_net_ctx {
    json_t *arr;
    uint64_t more;
} tl_net_ctx;

static int net_one(tl *t, const ptb_event *ev, void *arg)
{
    tl_net_ctx *x = arg;
    size_t have = json_array_size(x->arr);
    bool dns_answer = ev->body_case == PTB__V1__EVENT__BODY_NET_DNS && ev->net_dns->response;
    if (dns_answer || have >= AUDIT_TL_NET + AUDIT_TL_EVIDENCE ||
        (have >= AUDIT_TL_NET && !is_evidence(t, ev))) {
        x->more++;
        return 0;
    }
    char dst[96] = "", what[AUDIT_TL_TEXT] = "";
    const char *host = NULL;
    int64_t end = ev->ts_ns, ts = ev->ts_ns;
    switch (ev->body_case) {
    case PTB__V1__EVENT__BODY_NET_CONNECT: {
        const Ptb__V1__NetConnect *c = ev->net_connect;
        host = c->host;
        if (c->unix_path && *c->unix_path)
            snprintf(dst, sizeof dst, "unix:%.80s", c->unix_path);
        else
            net_dst(c->remote, dst, sizeof dst);
        snprintf(what, sizeof what, "connect %s%s", c->proto ? c->proto : "",
                 c->result < 0 ? " (failed)" : "");
        break;
    }
    case PTB__V1__EVENT__BODY_NET_FLOW: {
        const Ptb__V1__NetFlow *f = ev->net_flow;
        host = f->host;
        net_dst(f->dst, dst, sizeof dst);
        ts = f->start_ns ? f->start_ns : ts;
        end = f->end_ns > ts ? f->end_ns : ts;
        snprintf(what, sizeof what, "flow %s, %llu B out, %llu B in", f->proto ? f->proto : "",
                 (unsigned long long)f->bytes_out, (unsigned long long)f->bytes_in);
        break;
    }
    case PTB__V1__EVENT__BODY_NET_TLS:
        host = ev->net_tls->host;
        snprintf(what, sizeof what, "TLS (SNI)");
        break;
    case PTB__V1__EVENT__BODY_NET_HTTP: {
        const Ptb__V1__NetHttp *h = ev->net_http;
        host = h->host;
        if (h->response)
            snprintf(what, sizeof what, "HTTP response %u", h->status);
        else
            snprintf(what, sizeof what, "HTTP %.16s %.180s", h->method ? h->method : "",
                     h->path ? h->path : "");
        break;
    }
    default: /* net.dns: queries only */
        host = ev->net_dns->host;
        snprintf(what, sizeof what, "DNS %s", ev->net_dns->qtype ? ev->net_dns->qtype : "");
        break;
    }
    json_t *o = json_pack("{s:I,s:I,s:I,s:I,s:o,s:o,s:o}", "seq", (json_int_t)ev->seq, "exec",
                          (json_int_t)ev->exec_id, "t", tl_us(t, ts), "end", tl_us(t, end), "host",
                          tl_str(host), "dst", tl_str(dst), "what", tl_str(what));
    return json_array_append_new(x->arr, o) ? PTB_ENOMEM : 0;
}

static int tl_net(tl *t, json_t *root)
{
    const uint32_t kinds[] = {PTB__V1__EVENT__BODY_NET_CONNECT, PTB__V1__EVENT__BODY_NET_FLOW,
                              PTB__V1__EVENT__BODY_NET_TLS, PTB__V1__EVENT__BODY_NET_HTTP,
                              PTB__V1__EVENT__BODY_NET_DNS};
    tl_net_ctx x = {.arr = json_array()};
    json_object_set_new(root, "net", x.arr);
    int rc = tl_each(t, kinds, sizeof kinds / sizeof *kinds, net_one, &x);
    json_object_set_new(root, "net_more", json_integer((json_int_t)x.more));
    return rc;
}

/* ------------------------------------------------------------------ GPU */

typedef struct tl_gpu_ctx {
    uint64_t n[AUDIT_TL_BUCKETS], busy[AUDIT_TL_BUCKETS], copies[AUDIT_TL_BUCKETS];
    int64_t width; /* of a bucket, ns */
    uint64_t kernels, ncopies;
} tl_gpu_ctx;

static int gpu_one(tl *t, const ptb_event *ev, void *arg)
{
    tl_gpu_ctx *x = arg;
    bool kernel = ev->body_case == PTB__V1__EVENT__BODY_GPU_KERNEL;
    int64_t s, e;
    if (kernel)
        s = ev->gpu_kernel->start_ns, e = ev->gpu_kernel->end_ns;
    else if (ev->body_case == PTB__V1__EVENT__BODY_GPU_MEMCPY)
        s = ev->gpu_memcpy->start_ns, e = ev->gpu_memcpy->end_ns;
    else if (ev->body_case == PTB__V1__EVENT__BODY_GPU_MEMSET)
        s = ev->gpu_memset->start_ns, e = ev->gpu_memset->end_ns;
    else
        return 0;
    if (!s)
        s = e = ev->ts_ns;
    int64_t b = (s - t->t0) / x->width;
    b = b < 0 ? 0 : b >= AUDIT_TL_BUCKETS ? AUDIT_TL_BUCKETS - 1 : b;
    if (kernel) {
        x->n[b]++;
        x->busy[b] += e > s ? (uint64_t)(e - s) : 0;
        x->kernels++;
    } else {
        x->copies[b]++;
        x->ncopies++;
    }
    return 0;
}

static int tl_gpu(tl *t, json_t *root)
{
    tl_gpu_ctx *x = calloc(1, sizeof *x);
    if (!x)
        return PTB_ENOMEM;
    x->width = (t->t1 > t->t0 ? t->t1 - t->t0 : 1) / AUDIT_TL_BUCKETS + 1;
    const uint32_t kinds[] = {PTB__V1__EVENT__BODY_GPU_KERNEL, PTB__V1__EVENT__BODY_GPU_MEMCPY,
                              PTB__V1__EVENT__BODY_GPU_MEMSET};
    int rc = tl_each(t, kinds, 3, gpu_one, x);
    json_t *jn = json_array(), *jb = json_array(), *jc = json_array();
    for (size_t b = 0; b < AUDIT_TL_BUCKETS && (x->kernels || x->ncopies); b++) {
        json_array_append_new(jn, json_integer((json_int_t)x->n[b]));
        json_array_append_new(jb, json_integer((json_int_t)(x->busy[b] / 1000)));
        json_array_append_new(jc, json_integer((json_int_t)x->copies[b]));
    }
    json_t *g = json_pack("{s:I,s:I,s:I,s:o,s:o,s:o}", "bucket_us", (json_int_t)(x->width / 1000),
                          "kernels", (json_int_t)x->kernels, "copies", (json_int_t)x->ncopies,
                          "launches", jn, "busy_us", jb, "copy_ops", jc);
    free(x);
    if (json_object_set_new(root, "gpu", g) && !rc)
        rc = PTB_ENOMEM;
    return rc;
}

int audit_timeline_read(audit_run *r, const audit_report *rep, json_t **out)
{
    *out = NULL;
    store_summary sum;
    int rc = store_summary_get(r->t, &sum);
    if (rc)
        return rc;
    tl t = {.r = r, .rep = rep, .t0 = sum.ts_min, .t1 = sum.ts_max};
    json_t *root = json_object();
    if (!root)
        return PTB_ENOMEM;
    json_object_set_new(root, "span_us", json_integer(tl_us(&t, t.t1)));
    json_object_set_new(root, "t0_ns", json_integer((json_int_t)t.t0));
    json_object_set_new(root, "events", json_integer((json_int_t)sum.events));
    json_object_set_new(root, "have",
                        json_pack("{s:b,s:b,s:b,s:b,s:b,s:b}", "processes", r->n_exec > 0, "files",
                                  r->n_file > 0, "network", r->n_net > 0, "tool_calls",
                                  r->n_tool > 0, "gpu", r->n_gpu > 0, "checkpoint",
                                  r->checkpoint_seq > 0));
    int (*const lanes[])(tl *, json_t *) = {tl_evidence, tl_run, tl_tools,
                                            tl_procs,    tl_net, tl_gpu};
    for (size_t i = 0; i < sizeof lanes / sizeof *lanes && !rc; i++)
        rc = lanes[i](&t, root);
    free(t.ev_seqs);
    free(t.ev_execs);
    if (rc) {
        json_decref(root);
        return rc;
    }
    *out = root;
    return 0;
}
