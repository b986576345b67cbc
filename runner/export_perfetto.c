/* ptb export --perfetto FILE STORE: one timeline of a run in the Chrome trace event format (JSON),
 * which ui.perfetto.dev and chrome://tracing open. export_perfetto.h.
 *
 * Tracks: every process (its exec_id; named by its program, exec_id and pid) has a slice from its
 * proc.exec to its proc.exit; its GPU kernels, copies and memsets sit on one thread track per
 * (device, stream) of that process, at their GPU start and end; its network flows on a "network"
 * track. Tool calls of the agent are async slices from tool.call to the tool.result with the same
 * call id, on a process track "agent". Times are microseconds from the store's first event.
 * One pass over the store in seq order; the file is written as it goes, so memory stays small
 * (only the start time of each exec_id is kept). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event_type.h"
#include "export_perfetto.h"
#include "ptb_cli.h"
#include "store.h"

#define TRACK_GPU_BASE 1000000u /* tid of (device, stream): base + device * 100000 + stream */
#define TRACK_NET 999999u
#define AGENT_PID 0

typedef struct pf {
    FILE *f;
    int64_t t0;
    uint64_t n;
    int64_t *start; /* exec_id -> proc.exec ts_ns */
    size_t cap;
    uint8_t *named;   /* exec_id -> bit 1: process named, bit 2: network track named */
    uint64_t *tracks; /* GPU tracks named: (exec_id, device, stream) keys, open addressing */
    size_t tcap, tn;
} pf;

/* s as a JSON string (quotes included); bytes < 0x20 escaped, invalid UTF-8 passed on as the
 * store has it (the store keeps strings valid). */
static void jstr(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static double us(const pf *p, int64_t ts)
{
    return (double)(ts - p->t0) / 1e3;
}

static void sep(pf *p)
{
    fputs(p->n++ ? ",\n" : "\n", p->f);
}

static int grow(pf *p, uint64_t id)
{
    if (id < p->cap)
        return 0;
    size_t cap = p->cap ? p->cap : 1024;
    while (cap <= id)
        cap *= 2;
    int64_t *s = realloc(p->start, cap * sizeof *s);
    if (!s)
        return PTB_ENOMEM;
    p->start = s;
    uint8_t *nm = realloc(p->named, cap);
    if (!nm)
        return PTB_ENOMEM;
    p->named = nm;
    memset(p->start + p->cap, 0, (cap - p->cap) * sizeof *s);
    memset(p->named + p->cap, 0, cap - p->cap);
    p->cap = cap;
    return 0;
}

static void meta(pf *p, const char *what, uint64_t pid, uint64_t tid, const char *name)
{
    sep(p);
    fprintf(p->f,
            "{\"ph\":\"M\",\"name\":\"%s\",\"pid\":%" PRIu64 ",\"tid\":%" PRIu64
            ",\"args\":{\"name\":",
            what, pid, tid);
    jstr(p->f, name);
    fputs("}}", p->f);
}

static void slice(pf *p, uint64_t pid, uint64_t tid, const char *name, const char *cat,
                  int64_t start, int64_t end)
{
    sep(p);
    fprintf(p->f,
            "{\"ph\":\"X\",\"cat\":\"%s\",\"pid\":%" PRIu64 ",\"tid\":%" PRIu64
            ",\"ts\":%.3f,\"dur\":%.3f,\"name\":",
            cat, pid, tid, us(p, start), end > start ? (double)(end - start) / 1e3 : 0.0);
    jstr(p->f, name);
    fputc('}', p->f);
}

/* Whether key was in the set; adds it. Keys are never 0 (exec_id + 1 in the top bits). */
static bool seen(pf *p, uint64_t key)
{
    if (p->tn * 2 >= p->tcap) {
        size_t cap = p->tcap ? p->tcap * 2 : 256;
        uint64_t *t = calloc(cap, sizeof *t);
        if (!t)
            return true; /* out of memory: the track goes unnamed, nothing else is lost */
        for (size_t i = 0; i < p->tcap; i++)
            if (p->tracks[i]) {
                size_t j = (p->tracks[i] * 0x9E3779B97F4A7C15ull) >> 40 & (cap - 1);
                while (t[j])
                    j = (j + 1) & (cap - 1);
                t[j] = p->tracks[i];
            }
        free(p->tracks);
        p->tracks = t;
        p->tcap = cap;
    }
    size_t j = (key * 0x9E3779B97F4A7C15ull) >> 40 & (p->tcap - 1);
    while (p->tracks[j] && p->tracks[j] != key)
        j = (j + 1) & (p->tcap - 1);
    if (p->tracks[j])
        return true;
    p->tracks[j] = key;
    p->tn++;
    return false;
}

static void gpu_track(pf *p, uint64_t exec_id, uint32_t device, uint32_t stream, uint64_t *tid)
{
    *tid = TRACK_GPU_BASE + (uint64_t)device * 100000u + stream % 100000u;
    if (!seen(p, (exec_id + 1) << 32 ^ (uint64_t)(device & 0xff) << 24 ^ (stream & 0xffffff))) {
        char n[64];
        snprintf(n, sizeof n, "GPU %u stream %u", device, stream);
        meta(p, "thread_name", exec_id, *tid, n);
    }
}

static int one(pf *p, const ptb_event *ev)
{
    uint64_t id = ev->exec_id;
    if (grow(p, id))
        return PTB_ENOMEM;
    switch (ev->body_case) {
    case PTB__V1__EVENT__BODY_PROC_EXEC: {
        const Ptb__V1__ProcExec *x = ev->proc_exec;
        const char *exe = x->exe && *x->exe ? x->exe : x->n_argv ? x->argv[0] : "?";
        const char *base = strrchr(exe, '/');
        char n[512];
        snprintf(n, sizeof n, "%s (exec_id %" PRIu64 ", pid %d)", base ? base + 1 : exe, id,
                 x->pid);
        meta(p, "process_name", id, 0, n);
        p->named[id] |= 1;
        p->start[id] = ev->ts_ns;
        break;
    }
    case PTB__V1__EVENT__BODY_PROC_EXIT: {
        const Ptb__V1__ProcExit *x = ev->proc_exit;
        char n[96];
        if (x->signal)
            snprintf(n, sizeof n, "killed by signal %d", x->signal);
        else
            snprintf(n, sizeof n, "exit %d", x->exit_code);
        slice(p, id, 0, n, "process", p->start[id] ? p->start[id] : ev->ts_ns, ev->ts_ns);
        break;
    }
    case PTB__V1__EVENT__BODY_GPU_KERNEL: {
        const Ptb__V1__GpuKernel *k = ev->gpu_kernel;
        uint64_t tid;
        gpu_track(p, id, k->device, k->stream, &tid);
        slice(p, id, tid, k->name, "gpu.kernel", k->start_ns, k->end_ns);
        break;
    }
    case PTB__V1__EVENT__BODY_GPU_MEMCPY:
    case PTB__V1__EVENT__BODY_GPU_MEMSET: {
        bool set = ev->body_case == PTB__V1__EVENT__BODY_GPU_MEMSET;
        const Ptb__V1__GpuMemcpy *m = set ? ev->gpu_memset : ev->gpu_memcpy;
        uint64_t tid;
        gpu_track(p, id, m->device, m->stream, &tid);
        char n[96];
        snprintf(n, sizeof n, "%s %s %" PRIu64 " B", set ? "memset" : "memcpy",
                 set ? "" : (m->kind ? m->kind : ""), m->bytes);
        slice(p, id, tid, n, set ? "gpu.memset" : "gpu.memcpy", m->start_ns, m->end_ns);
        break;
    }
    case PTB__V1__EVENT__BODY_NET_FLOW: {
        const Ptb__V1__NetFlow *fl = ev->net_flow;
        if (!(p->named[id] & 2)) {
            meta(p, "thread_name", id, TRACK_NET, "network");
            p->named[id] |= 2;
        }
        char n[384];
        snprintf(n, sizeof n, "%s %s:%u (%" PRIu64 " B out, %" PRIu64 " B in)",
                 fl->proto ? fl->proto : "",
                 fl->host && *fl->host    ? fl->host
                 : fl->dst && fl->dst->ip ? fl->dst->ip
                                          : "?",
                 fl->dst ? fl->dst->port : 0, fl->bytes_out, fl->bytes_in);
        slice(p, id, TRACK_NET, n, "net.flow", fl->start_ns, fl->end_ns);
        break;
    }
    case PTB__V1__EVENT__BODY_TOOL_CALL:
    case PTB__V1__EVENT__BODY_TOOL_RESULT: {
        bool call = ev->body_case == PTB__V1__EVENT__BODY_TOOL_CALL;
        const char *cid = call ? ev->tool_call->call_id : ev->tool_result->call_id;
        sep(p);
        fprintf(p->f, "{\"ph\":\"%s\",\"cat\":\"tool\",\"pid\":%d,\"tid\":0,\"ts\":%.3f,\"id\":",
                call ? "b" : "e", AGENT_PID, us(p, ev->ts_ns));
        jstr(p->f, cid);
        fputs(",\"name\":", p->f);
        jstr(p->f, call ? ev->tool_call->name : "tool");
        if (call) {
            fputs(",\"args\":{\"input\":", p->f);
            jstr(p->f, ev->tool_call->input);
            fputc('}', p->f);
        }
        fputc('}', p->f);
        break;
    }
    default: break;
    }
    return 0;
}

int export_perfetto(const char *dir, const char *file, uint64_t from, uint64_t to)
{
    store *s = NULL;
    store_txn *t = NULL;
    store_cursor *c = NULL;
    pf p = {0};
    int rc = store_open(dir, NULL, STORE_RDONLY, &s);
    if (rc) {
        fprintf(stderr, "ptb export: %s: %s\n", dir,
                s && *store_errmsg(s) ? store_errmsg(s) : ptb_strerror(rc));
        store_close(s);
        return ptb_exit_code(rc);
    }
    store_summary sum;
    store_range r = {.seq_from = from, .seq_to = to};
    if (!(rc = store_txn_begin(s, &t)) && !(rc = store_summary_get(t, &sum)))
        rc = store_cursor_open(t, &r, &c);
    bool to_stdout = !strcmp(file, "-");
    if (!rc && !(p.f = to_stdout ? stdout : fopen(file, "w"))) {
        fprintf(stderr, "ptb export: %s: %s\n", file, strerror(errno));
        store_cursor_close(c);
        store_txn_end(t);
        store_close(s);
        return PTB_EXIT_ERROR;
    }
    uint64_t events = 0;
    if (!rc) {
        p.t0 = sum.ts_min;
        fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[", p.f);
        meta(&p, "process_name", AGENT_PID, 0, "agent (tool calls)");
        const ptb_event *ev;
        while ((rc = store_cursor_next(c, &ev)) == 0) {
            events++;
            if ((rc = one(&p, ev)))
                break;
        }
        if (rc == PTB_ENOTFOUND)
            rc = 0;
        fputs("\n]}\n", p.f);
    }
    int code = PTB_EXIT_OK;
    if (p.f && (ferror(p.f) || (!to_stdout ? fclose(p.f) : fflush(p.f))) && !rc) {
        fprintf(stderr, "ptb export: %s: write error\n", file);
        code = PTB_EXIT_ERROR;
    }
    if (rc) {
        fprintf(stderr, "ptb export: %s: %s\n", dir, ptb_strerror(rc));
        code = ptb_exit_code(rc);
    } else if (code == PTB_EXIT_OK) {
        fprintf(stderr,
                "ptb export: %" PRIu64 " trace events from %" PRIu64
                " events of %s written to %s\n",
                p.n, events, dir, file);
    }
    free(p.start);
    free(p.named);
    free(p.tracks);
    store_cursor_close(c);
    store_txn_end(t);
    store_close(s);
    return code;
}
