/* Query engine on a real store: for many random filters (fixed seed), the planned query gives
 * exactly the events a brute-force scan with indexes disabled gives, with 1 and 2 threads; and
 * the planner picks the expected index for the filters that have one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "query_contains.h"
#include "query_int.h"

#define C(x) PTB__V1__EVENT__BODY_##x
#define NEVENTS 30000
#define NEXEC 40

static const char *paths[] = {"/workspace/train.py",
                              "/workspace/data/train.jsonl",
                              "/workspace/data/test.jsonl",
                              "/data/eval/gsm8k_test.jsonl",
                              "/tmp/x",
                              "/home/agent/.netrc",
                              "/workspace/ckpt/model.safetensors",
                              "/usr/lib/python3/os.py"};
static const char *hosts[] = {"huggingface.co", "api.openai.com", "pypi.org", "github.com"};
static const char *ips[] = {"10.0.2.15", "18.244.202.73", "104.18.6.192", "127.0.0.1"};
static const char *tools[] = {"Bash", "Write", "Read", "Edit"};
static const char *kernels[] = {"ampere_gemm", "flash_fwd_kernel", "softmax_warp", "adam"};
static const char *exes[] = {"/usr/bin/bash", "/usr/bin/python3", "/usr/bin/curl", "/usr/bin/git"};
static const char *words[] = {"train", "test", "gsm8k", "secret", "hello world", "curl -O"};

/* Blobs that file.write events reference (every 7th event of that kind), so --contains has
 * text that only a blob holds */
static const char *blob_texts[] = {"weights of blob-only-needle-0\n", "blob-only-needle-1 here",
                                   "a\0binary\0blob-only-needle-2", "nothing to see"};
static size_t blob_lens[] = {30, 23, 27, 14};
static uint8_t blob_sha[4][32];

static char dir[64];
static store *S;
static store_txn *T;

/* Every GPU launch appended (single gpu.kernel events and launches of kernel batches), for the
 * reference counts of test_kernel_batches. */
typedef struct launch {
    int name; /* index into kernels */
    int64_t ts;
} launch;
static launch *launches;
static size_t n_launches, cap_launches;

static void launch_add(const char *name, int64_t ts)
{
    if (n_launches == cap_launches) {
        cap_launches = cap_launches ? cap_launches * 2 : 1024;
        launches = realloc(launches, cap_launches * sizeof *launches);
        assert_non_null(launches);
    }
    int k = 0;
    while (strcmp(kernels[k], name))
        k++;
    launches[n_launches++] = (launch){k, ts};
}

#define PICK(a) (a[(unsigned)rand() % (sizeof a / sizeof a[0])])

static void append_one(uint64_t i, int64_t ts)
{
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.ts_ns = ts;
    ev.mono_ns = ts - 1000;
    ev.source = (Ptb__V1__Source)(1 + rand() % 7);
    ev.exec_id = (uint64_t)(rand() % (NEXEC + 1)); /* 0: no process */
    ev.tid = (uint32_t)(rand() % 3 ? 100 + ev.exec_id : 0);
    Ptb__V1__ProcExec pe = PTB__V1__PROC_EXEC__INIT;
    Ptb__V1__ProcExit px = PTB__V1__PROC_EXIT__INIT;
    Ptb__V1__FileWrite fw = PTB__V1__FILE_WRITE__INIT;
    Ptb__V1__FileRead fr = PTB__V1__FILE_READ__INIT;
    Ptb__V1__FileOpen fo = PTB__V1__FILE_OPEN__INIT;
    Ptb__V1__FileRename fn = PTB__V1__FILE_RENAME__INIT;
    Ptb__V1__FileLink fl = PTB__V1__FILE_LINK__INIT;
    Ptb__V1__NetConnect nc = PTB__V1__NET_CONNECT__INIT;
    Ptb__V1__SockAddr la = PTB__V1__SOCK_ADDR__INIT, ra = PTB__V1__SOCK_ADDR__INIT;
    Ptb__V1__NetFlow nf = PTB__V1__NET_FLOW__INIT;
    Ptb__V1__NetDns nd = PTB__V1__NET_DNS__INIT;
    Ptb__V1__ToolCall tc = PTB__V1__TOOL_CALL__INIT;
    Ptb__V1__ToolResult tr = PTB__V1__TOOL_RESULT__INIT;
    Ptb__V1__GpuKernel gk = PTB__V1__GPU_KERNEL__INIT;
    Ptb__V1__GpuKernelBatch kb = PTB__V1__GPU_KERNEL_BATCH__INIT;
    Ptb__V1__GpuKernelName kn[4];
    Ptb__V1__GpuKernelName *pkn[4];
    uint32_t kname[12], kdev[12], kgrid[12];
    int64_t kdelta[12], kdur[12];
    Ptb__V1__Gap gp = PTB__V1__GAP__INIT;
    uint8_t sha[32];
    for (int k = 0; k < 32; k++)
        sha[k] = (uint8_t)rand();
    char *argv[3] = {(char *)PICK(exes), (char *)PICK(words), (char *)PICK(paths)};
    if (i <= NEXEC) { /* the processes first: exec_id i, parent i/2 */
        ev.exec_id = i;
        ev.body_case = C(PROC_EXEC);
        ev.proc_exec = &pe;
        pe.parent_exec_id = i / 2;
        pe.pid = (int32_t)(1000 + i);
        pe.ppid = (int32_t)(1000 + i / 2);
        pe.exe = argv[0];
        pe.argv = argv;
        pe.n_argv = 3;
        pe.cwd = (char *)"/workspace";
    } else {
        switch (rand() % 11) {
        case 0:
            ev.body_case = C(PROC_EXIT);
            ev.proc_exit = &px;
            px.pid = 1000 + (int32_t)ev.exec_id;
            px.exit_code = rand() % 3 - 1;
            break;
        case 1:
            ev.body_case = C(FILE_WRITE);
            ev.file_write = &fw;
            fw.path = (char *)PICK(paths);
            fw.bytes = (uint64_t)(rand() % 5000);
            fw.size = fw.bytes + 10;
            fw.sha256.data = i % 7 ? sha : blob_sha[i % 4];
            fw.sha256.len = rand() % 4 ? 32 : 0;
            break;
        case 2:
            ev.body_case = C(FILE_READ);
            ev.file_read = &fr;
            fr.path = (char *)PICK(paths);
            fr.bytes = (uint64_t)(rand() % 5000);
            break;
        case 3:
            ev.body_case = C(FILE_OPEN);
            ev.file_open = &fo;
            fo.path = (char *)PICK(paths);
            fo.flags = rand() % 3;
            break;
        case 4:
            ev.body_case = rand() % 2 ? C(FILE_RENAME) : C(FILE_LINK);
            if (ev.body_case == C(FILE_RENAME)) {
                ev.file_rename = &fn;
                fn.path = (char *)PICK(paths);
                fn.new_path = (char *)PICK(paths);
            } else {
                ev.file_link = &fl;
                fl.path = (char *)PICK(paths);
                fl.target = (char *)PICK(paths);
            }
            break;
        case 5:
            ev.body_case = rand() % 2 ? C(NET_CONNECT) : C(NET_ACCEPT);
            ev.net_connect = &nc;
            nc.pid = 1000 + (int32_t)ev.exec_id;
            nc.proto = (char *)"tcp";
            la.ip = (char *)PICK(ips);
            la.port = (uint32_t)(rand() % 3 ? 443 : 53);
            ra.ip = (char *)PICK(ips);
            ra.port = 40000 + (uint32_t)(rand() % 4);
            nc.local = &la;
            nc.remote = rand() % 4 ? &ra : NULL;
            nc.host = rand() % 2 ? (char *)PICK(hosts) : (char *)"";
            break;
        case 6:
            ev.body_case = rand() % 2 ? C(NET_FLOW) : C(NET_DNS);
            if (ev.body_case == C(NET_FLOW)) {
                ev.net_flow = &nf;
                la.ip = (char *)PICK(ips);
                ra.ip = (char *)PICK(ips);
                ra.port = 443;
                nf.src = &la;
                nf.dst = &ra;
                nf.host = (char *)PICK(hosts);
                nf.bytes_in = (uint64_t)rand();
            } else {
                ev.net_dns = &nd;
                nd.host = (char *)PICK(hosts);
                nd.qtype = (char *)"A";
            }
            break;
        case 7:
            ev.body_case = C(TOOL_CALL);
            ev.tool_call = &tc;
            tc.name = (char *)PICK(tools);
            tc.input = (char *)PICK(words);
            tc.call_id = (char *)(rand() % 2 ? "toolu_1" : "toolu_2");
            break;
        case 8:
            ev.body_case = C(TOOL_RESULT);
            ev.tool_result = &tr;
            tr.call_id = (char *)(rand() % 2 ? "toolu_1" : "toolu_2");
            tr.output = (char *)PICK(words);
            tr.is_error = rand() % 2;
            break;
        case 9:
            if (rand() % 2) {
                ev.body_case = C(GPU_KERNEL);
                ev.gpu_kernel = &gk;
                gk.name = (char *)PICK(kernels);
                gk.device = (uint32_t)(rand() % 2);
                gk.grid_x = (uint32_t)(rand() % 100);
                launch_add(gk.name, ev.ts_ns);
                break;
            }
            /* a batch of 1..12 launches as the GPU receiver stores them: start times up to
             * 50 µs before or after the batch's, some names shared, an empty device column */
            ev.body_case = C(GPU_KERNEL_BATCH);
            ev.gpu_kernel_batch = &kb;
            kb.count = 1 + (uint32_t)(rand() % 12);
            kb.n_names = 1 + (size_t)(rand() % 4);
            for (size_t k = 0; k < kb.n_names; k++) {
                ptb__v1__gpu_kernel_name__init(&kn[k]);
                kn[k].name = (char *)kernels[(i + k) % 4];
                pkn[k] = &kn[k];
            }
            kb.names = pkn;
            int64_t prev = ev.ts_ns;
            bool devs = rand() % 2;
            for (uint32_t k = 0; k < kb.count; k++) {
                kname[k] = 1 + (uint32_t)(rand() % (int)kb.n_names);
                kdev[k] = devs ? (uint32_t)(rand() % 2) : 0;
                kgrid[k] = (uint32_t)(rand() % 100);
                int64_t start = ev.ts_ns + (rand() % 100001) - 50000;
                kdelta[k] = start - prev;
                kdur[k] = rand() % 9000;
                prev = start;
                launch_add(kn[kname[k] - 1].name, start);
            }
            kb.n_name = kb.n_grid_x = kb.n_start_delta = kb.n_duration = kb.count;
            kb.name = kname;
            kb.grid_x = kgrid;
            kb.start_delta = kdelta;
            kb.duration = kdur;
            kb.n_device = devs ? kb.count : 0;
            kb.device = kdev;
            break;
        default:
            ev.body_case = C(GAP);
            ev.gap = &gp;
            gp.origin = (char *)(rand() % 2 ? "pcap" : "gpu");
            gp.reason = (char *)"drops";
            gp.count = (uint64_t)(rand() % 100);
            break;
        }
    }
    assert_int_equal(store_append(S, &ev, 0, NULL), 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/ptb-query-test-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char sdir[96];
    snprintf(sdir, sizeof sdir, "%s/run.ptb", dir);
    srand(12345);
    store_options opt;
    store_options_default(&opt);
    opt.sync = STORE_SYNC_NONE;
    opt.batch_events = 1000;
    assert_int_equal(store_open(sdir, &opt, STORE_CREATE, &S), 0);
    for (int k = 0; k < 4; k++)
        assert_int_equal(store_blob_put(S, blob_texts[k], blob_lens[k], NULL, blob_sha[k]), 0);
    int64_t ts = 1795687200LL * 1000000000;
    for (uint64_t i = 1; i <= NEVENTS; i++) {
        ts += 1000 + rand() % 100000;
        append_one(i, ts);
    }
    assert_int_equal(store_close(S), 0);
    assert_int_equal(store_open(sdir, NULL, STORE_RDONLY, &S), 0);
    assert_int_equal(store_txn_begin(S, &T), 0);
    assert_int_equal(store_txn_last_seq(T), NEVENTS);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    store_txn_end(T);
    store_close(S);
    free(launches);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return -1;
    return 0;
}

typedef struct seqs {
    uint64_t *v; /* seqs of the matches; the launches of one batch share theirs */
    size_t n, cap;
    uint32_t last_sub;
} seqs;

static int collect_cb(void *arg, uint64_t seq, const ptb_event *ev)
{
    seqs *s = arg;
    if (ev && ev->seq != seq)
        return PTB_EINVAL;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        assert_non_null(s->v);
    }
    if (s->n && s->v[s->n - 1] > seq)
        return PTB_EINVAL; /* not in seq order */
    if (ev) {              /* launches of a batch: each once, in order */
        if (ev->body_case == C(GPU_KERNEL_BATCH))
            return PTB_EINVAL;
        if (s->n && s->v[s->n - 1] == seq && (!ev->sub || ev->sub <= s->last_sub))
            return PTB_EINVAL;
        s->last_sub = ev->sub;
    }
    s->v[s->n++] = seq;
    return 0;
}

static void run(const filter *f, bool no_index, int threads, seqs *out, bool *used_index)
{
    query_options o;
    query_options_default(&o);
    o.no_index = no_index;
    o.threads = threads;
    o.need_event = threads == 1;
    query *q;
    ptb_errbuf eb;
    assert_int_equal(query_plan(S, T, f, &o, &q, &eb), 0);
    memset(out, 0, sizeof *out);
    assert_int_equal(query_run(q, collect_cb, out), 0);
    if (used_index)
        *used_index = q->use_index;
    query_free(q);
}

/* ------------------------------------------------------------------ random filters */

static void rnd_value(char *buf, size_t cap, const char *field)
{
    if (!strcmp(field, "file.path"))
        snprintf(buf, cap, "'%s'", rand() % 8 ? PICK(paths) : "/nope");
    else if (!strcmp(field, "net.host"))
        snprintf(buf, cap, "'%s'", PICK(hosts));
    else if (!strcmp(field, "net.ip"))
        snprintf(buf, cap, "'%s'", PICK(ips));
    else if (!strcmp(field, "tool.name"))
        snprintf(buf, cap, "%s", PICK(tools));
    else if (!strcmp(field, "gpu.kernel"))
        snprintf(buf, cap, "%s", PICK(kernels));
    else if (!strcmp(field, "proc.exe") || !strcmp(field, "proc.parent_exe"))
        snprintf(buf, cap, "%s", PICK(exes));
    else if (!strcmp(field, "evt.type")) {
        static const char *t[] = {"file.write", "file.read", "proc.exec",  "net.connect",
                                  "tool.call",  "gap",       "gpu.kernel", "file.link"};
        snprintf(buf, cap, "%s", PICK(t));
    } else if (!strcmp(field, "evt.source")) {
        static const char *t[] = {"tracer", "pcap", "gpu", "agent"};
        snprintf(buf, cap, "%s", PICK(t));
    } else if (!strcmp(field, "evt.seq"))
        snprintf(buf, cap, "%d", rand() % NEVENTS);
    else if (!strcmp(field, "evt.time"))
        snprintf(buf, cap, "%lld",
                 1795687200LL * 1000000000 + (long long)(rand() % 1500) * 1000000);
    else if (!strcmp(field, "proc.exec_id") || !strcmp(field, "proc.parent_exec_id"))
        snprintf(buf, cap, "%d", rand() % (NEXEC + 2));
    else if (!strcmp(field, "proc.pid"))
        snprintf(buf, cap, "%d", 1000 + rand() % NEXEC);
    else if (!strcmp(field, "net.port"))
        snprintf(buf, cap, "%d", rand() % 2 ? 443 : 40001);
    else if (!strcmp(field, "file.bytes") || !strcmp(field, "gap.count"))
        snprintf(buf, cap, "%d", rand() % 5000);
    else if (!strcmp(field, "evt.sub"))
        snprintf(buf, cap, "%d", rand() % 6);
    else
        snprintf(buf, cap, "'%s'", PICK(words));
}

static const char *rnd_fields[] = {
    "evt.type",  "evt.seq",    "evt.time",     "evt.source",      "proc.exec_id",
    "proc.pid",  "proc.exe",   "proc.cmdline", "proc.parent_exe", "proc.parent_exec_id",
    "file.path", "file.bytes", "net.host",     "net.ip",          "net.port",
    "tool.name", "tool.input", "gpu.kernel",   "gap.count",       "tool.result.output",
    "evt.sub",   "gpu.kernel", "evt.type",
};

static size_t rnd_cond(char *buf, size_t cap)
{
    const char *f = PICK(rnd_fields);
    bool num = !strcmp(f, "evt.seq") || !strcmp(f, "evt.time") || !strcmp(f, "proc.exec_id") ||
               !strcmp(f, "proc.pid") || !strcmp(f, "proc.parent_exec_id") ||
               !strcmp(f, "net.port") || !strcmp(f, "file.bytes") || !strcmp(f, "gap.count") ||
               !strcmp(f, "evt.sub");
    static const char *nops[] = {"=", "!=", "<", "<=", ">", ">=", "=", "="};
    static const char *sops[] = {"=",          "=",        "!=",   "contains", "icontains",
                                 "startswith", "endswith", "glob", "<",        ">="};
    char v[128], v2[128];
    int kind = rand() % 10;
    if (kind == 0)
        return (size_t)snprintf(buf, cap, "%s exists", f);
    rnd_value(v, sizeof v, f);
    if (kind == 1) {
        rnd_value(v2, sizeof v2, f);
        return (size_t)snprintf(buf, cap, "%s in (%s, %s)", f, v, v2);
    }
    const char *op = num ? PICK(nops) : PICK(sops);
    if (!num && (!strcmp(op, "contains") || !strcmp(op, "startswith") || !strcmp(op, "glob"))) {
        /* shorter patterns so that they match something */
        static const char *pats[] = {"'/workspace/'", "'data'", "'*.jsonl'", "'*train*'", "'h'",
                                     "'api'",         "'1'",    "'B*'",      "'s'"};
        snprintf(v, sizeof v, "%s", PICK(pats));
    }
    if (!strcmp(f, "evt.type") && strcmp(op, "=") && strcmp(op, "!="))
        snprintf(v, sizeof v, "%s", rand() % 2 ? "'file.*'" : "'net'");
    return (size_t)snprintf(buf, cap, "%s %s %s", f, op, v);
}

static void rnd_filter(char *buf, size_t cap, int depth)
{
    int r = rand() % 6;
    if (depth > 2 || r < 2) {
        rnd_cond(buf, cap);
        return;
    }
    char a[512], b[512];
    rnd_filter(a, sizeof a, depth + 1);
    rnd_filter(b, sizeof b, depth + 1);
    int n;
    if (r == 2)
        n = snprintf(buf, cap, "not (%s) and %s", a, b);
    else if (r == 3)
        n = snprintf(buf, cap, "(%s) or (%s)", a, b);
    else
        n = snprintf(buf, cap, "%s and %s", a, b);
    if (n < 0 || (size_t)n >= cap) /* too long for buf: a plain condition instead */
        rnd_cond(buf, cap);
}

static void test_random_filters(void **state)
{
    (void)state;
    srand(777);
    int used = 0, nonempty = 0;
    for (int i = 0; i < 300; i++) {
        char text[2048];
        rnd_filter(text, sizeof text, 0);
        filter *f;
        filter_error err;
        if (filter_parse(text, &f, &err) != 0)
            fail_msg("generated filter does not parse: %s: col %d %s", text, err.column, err.msg);
        seqs a, b, c;
        bool ix;
        run(f, false, 2, &a, &ix);
        run(f, true, 2, &b, NULL);
        run(f, false, 1, &c, NULL);
        if (a.n != b.n || (a.n && memcmp(a.v, b.v, a.n * sizeof *a.v) != 0))
            fail_msg("filter %s: plan gives %zu events, scan %zu (index %d)", text, a.n, b.n, ix);
        if (a.n != c.n || (a.n && memcmp(a.v, c.v, a.n * sizeof *a.v) != 0))
            fail_msg("filter %s: 1 thread differs", text);
        used += ix;
        nonempty += a.n > 0;
        free(a.v);
        free(b.v);
        free(c.v);
        filter_free(f);
    }
    print_message("random filters: 300, %d planned with indexes, %d with matches\n", used,
                  nonempty);
    assert_true(used > 50);
    assert_true(nonempty > 100);
}

/* ------------------------------------------------------------------ kernel batches */

static size_t count_matches(const char *text, bool no_index, int threads)
{
    filter *f;
    filter_error err;
    if (filter_parse(text, &f, &err) != 0)
        fail_msg("%s: col %d %s", text, err.column, err.msg);
    seqs a;
    run(f, no_index, threads, &a, NULL);
    free(a.v);
    filter_free(f);
    return a.n;
}

/* Launches stored in batches are found one by one, by type, name and time, with and without
 * indexes, as many as were appended; a plain cursor and an index cursor agree. */
static void test_kernel_batches(void **state)
{
    (void)state;
    size_t by_name[4] = {0}, in_window = 0;
    int64_t lo = 1795687200LL * 1000000000 + 400000000, hi = lo + 300000000;
    for (size_t i = 0; i < n_launches; i++) {
        by_name[launches[i].name]++;
        in_window += launches[i].ts >= lo && launches[i].ts <= hi;
    }
    assert_true(n_launches > 2000);
    for (int no_index = 0; no_index < 2; no_index++) {
        for (int threads = 1; threads <= 2; threads++) {
            assert_int_equal(count_matches("evt.type = gpu.kernel", no_index, threads), n_launches);
            char text[256];
            for (int k = 0; k < 4; k++) {
                snprintf(text, sizeof text, "gpu.kernel = %s", kernels[k]);
                assert_int_equal(count_matches(text, no_index, threads), by_name[k]);
            }
            snprintf(text, sizeof text,
                     "evt.type = gpu.kernel and evt.time >= %lld and evt.time <= %lld",
                     (long long)lo, (long long)hi);
            assert_int_equal(count_matches(text, no_index, threads), in_window);
        }
    }
    assert_int_equal(count_matches("evt.type = gpu.kernel_batch", false, 1), 0);
    /* cursors: plain (every event) and by the kernel-name index */
    store_range all = {0};
    store_cursor *c;
    assert_int_equal(store_cursor_open(T, &all, &c), 0);
    const ptb_event *ev;
    size_t n = 0, adam = 0;
    int rc;
    while ((rc = store_cursor_next(c, &ev)) == 0) {
        assert_int_not_equal(ev->body_case, C(GPU_KERNEL_BATCH));
        if (ev->body_case == C(GPU_KERNEL)) {
            n++;
            adam += !strcmp(ev->gpu_kernel->name, "adam");
        }
    }
    assert_int_equal(rc, PTB_ENOTFOUND);
    store_cursor_close(c);
    assert_int_equal(n, n_launches);
    assert_int_equal(adam, by_name[3]);
    uint32_t sid;
    assert_int_equal(store_string_lookup(T, "adam", 4, &sid), 0);
    store_range r = {.by_index = true, .index = STORE_IX_KERNEL, .key = sid};
    assert_int_equal(store_cursor_open(T, &r, &c), 0);
    n = 0;
    while (store_cursor_next(c, &ev) == 0) {
        assert_string_equal(ev->gpu_kernel->name, "adam");
        n++;
    }
    store_cursor_close(c);
    assert_int_equal(n, by_name[3]);
}

/* ------------------------------------------------------------------ planner choices */

static const struct {
    const char *filter;
    bool index;
    int ix;       /* expected index of the first posting list, -1: any */
    int64_t keys; /* expected number of posting lists, -1: any */
} plans[] = {
    {"evt.type = tool.call", true, STORE_IX_TYPE, 1},
    {"evt.type in (tool.call, gap)", true, STORE_IX_TYPE, 2},
    {"tool.name = Bash", true, STORE_IX_TOOL, 1},
    {"tool.name = Nope", true, -1, 0},
    {"file.path = '/nope'", true, STORE_IX_TYPE, 1}, /* only file.link (target not indexed) */
    {"file.path = '/tmp/x'", true, STORE_IX_PATH, 2},
    {"file.path startswith '/workspace/data/'", true, STORE_IX_PATH, 3},
    {"net.host = pypi.org", true, STORE_IX_HOST, 1},
    {"net.ip glob '10.*'", true, STORE_IX_HOST, 1},
    {"gpu.kernel glob 'a*'", true, STORE_IX_KERNEL, 2},
    {"proc.exec_id = 7", true, STORE_IX_EXEC, 1},
    {"proc.exec_id in (7, 8, 999)", true, STORE_IX_EXEC, 2},
    {"proc.parent_exec_id = 3", true, STORE_IX_EXEC, 2},
    {"proc.cmdline contains 'python3'", true, STORE_IX_EXEC, -1},
    {"file.bytes > 100", true, STORE_IX_TYPE, 2},
    {"gap.count > 1", true, STORE_IX_TYPE, 1},
    {"tool.name = Bash and proc.exec_id = 3", true, -1, 1},
    {"tool.name = Bash or gpu.kernel = adam", true, -1, 2},
    {"evt.seq <= 20", false, -1, -1}, /* a bounded scan */
    {"evt.source = pcap", false, -1, -1},
    {"not evt.type = gap", false, -1, -1},
    {"tool.name = Bash or evt.source = pcap", false, -1, -1},
    {"", false, -1, -1},
};

/* ------------------------------------------------------------------ --contains */

/* --contains through the engine (workers, the stored-bytes pre-check, 1 and 2 threads) against
 * query_contains_match on every event read by a plain cursor. The texts are in inline strings,
 * interned strings, blobs only, or nowhere. */
static void test_contains(void **state)
{
    (void)state;
    static const struct {
        const char *text, *filter;
        bool some; /* matches expected */
    } cases[] = {
        {"hello wor", "", true},          /* tool input/output: inline strings */
        {"gsm8k", "", true},              /* interned paths and inline words */
        {"flash_fwd", "", true},          /* kernel names: interned only */
        {"blob-only-needle", "", true},   /* three blobs */
        {"blob-only-needle-2", "", true}, /* one blob, after a NUL */
        {"blob-only-needle", "evt.type = file.write and proc.exec_id < 20", true},
        {"zzz-nowhere", "", false},
        {"", "evt.type = gap", true},          /* the empty text is in every event */
        {"10.0.2.15", "net.port = 443", true}, /* nested message strings */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        query_contains *qc = query_contains_new(cases[c].text, strlen(cases[c].text));
        assert_non_null(qc);
        filter *f;
        filter_error fe;
        assert_int_equal(filter_parse(cases[c].filter, &f, &fe), 0);
        /* the brute force: every event, decoded by a cursor, filter and text checked here */
        seqs want = {0};
        store_cursor *cur;
        store_range all = {0};
        assert_int_equal(store_cursor_open(T, &all, &cur), 0);
        const ptb_event *ev;
        filter_ctx cx;
        query_procs *procs;
        assert_int_equal(query_procs_build(T, &procs), 0);
        filter_ctx_init(&cx, query_procs_find, procs);
        int rc;
        while ((rc = store_cursor_next(cur, &ev)) == 0) {
            if (filter_eval(f, ev, &cx) != FILTER_TRUE)
                continue;
            int m = query_contains_match(qc, T, ev);
            assert_true(m >= 0);
            if (m)
                assert_int_equal(collect_cb(&want, ev->seq, ev), 0);
        }
        assert_int_equal(rc, PTB_ENOTFOUND);
        store_cursor_close(cur);
        filter_ctx_free(&cx);
        query_procs_free(procs);
        if (cases[c].some)
            assert_true(want.n > 0);
        else
            assert_int_equal(want.n, 0);
        for (int pass = 0; pass < 3; pass++) {
            if (pass == 1) /* the pre-check too */
                assert_int_equal(query_contains_prepare(qc, T), 0);
            query_options o;
            query_options_default(&o);
            o.threads = pass == 2 ? 1 : 2;
            o.need_event = pass != 0;
            o.accept = query_contains_match;
            o.accept_maybe = query_contains_maybe;
            o.accept_arg = qc;
            query *q;
            ptb_errbuf eb;
            assert_int_equal(query_plan(S, T, f, &o, &q, &eb), 0);
            seqs got = {0};
            assert_int_equal(query_run(q, collect_cb, &got), 0);
            query_free(q);
            if (got.n != want.n)
                print_error("contains '%s' filter '%s' pass %d: %zu events, wanted %zu\n",
                            cases[c].text, cases[c].filter, pass, got.n, want.n);
            assert_int_equal(got.n, want.n);
            if (want.n)
                assert_memory_equal(got.v, want.v, want.n * sizeof *want.v);
            free(got.v);
        }
        assert_int_equal(query_contains_blob_errors(qc), 0);
        free(want.v);
        filter_free(f);
        query_contains_free(qc);
    }
}

static void test_plans(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof plans / sizeof plans[0]; i++) {
        filter *f;
        assert_int_equal(filter_parse(plans[i].filter, &f, NULL), 0);
        query *q;
        assert_int_equal(query_plan(S, T, f, NULL, &q, NULL), 0);
        if (q->use_index != plans[i].index)
            fail_msg("'%s': index %d, want %d (%s)", plans[i].filter, q->use_index, plans[i].index,
                     q->why);
        if (plans[i].ix >= 0 && (q->plan.nkeys == 0 || (int)q->plan.keys[0].ix != plans[i].ix))
            fail_msg("'%s': first index %d, want %d", plans[i].filter,
                     q->plan.nkeys ? (int)q->plan.keys[0].ix : -1, plans[i].ix);
        if (plans[i].keys >= 0 && (int64_t)q->plan.nkeys != plans[i].keys)
            fail_msg("'%s': %zu posting lists, want %lld", plans[i].filter, q->plan.nkeys,
                     (long long)plans[i].keys);
        query_free(q);
        filter_free(f);
    }
    /* seq bounds narrow a scan */
    filter *f;
    assert_int_equal(filter_parse("evt.seq > 100 and evt.seq <= 200", &f, NULL), 0);
    query *q;
    assert_int_equal(query_plan(S, T, f, NULL, &q, NULL), 0);
    assert_int_equal(q->plan.seq_lo, 101);
    assert_int_equal(q->plan.seq_hi, 200);
    seqs out = {0};
    assert_int_equal(query_run(q, collect_cb, &out), 0);
    size_t distinct = 0; /* launches of a batch share its seq */
    for (size_t i = 0; i < out.n; i++)
        distinct += i == 0 || out.v[i] != out.v[i - 1];
    assert_int_equal(distinct, 100);
    assert_int_equal(query_checked(q), 100);
    free(out.v);
    query_free(q);
    filter_free(f);
}

/* the process tree of --tree */
static void test_tree(void **state)
{
    (void)state;
    query_procs *p;
    assert_int_equal(query_procs_build(T, &p), 0);
    assert_int_equal(query_procs_count(p), NEXEC);
    uint64_t *ids;
    size_t n;
    assert_int_equal(query_procs_tree(p, 5, &ids, &n), 0);
    /* parent = i/2: 5 -> 10, 11 -> 20..23 -> 40 */
    uint64_t want[] = {5, 10, 11, 20, 21, 22, 23, 40};
    assert_int_equal(n, sizeof want / sizeof want[0]);
    assert_memory_equal(ids, want, sizeof want);
    free(ids);
    assert_int_equal(query_procs_tree(p, 999, &ids, &n), PTB_ENOTFOUND);
    query_procs_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plans),          cmocka_unit_test(test_tree),
        cmocka_unit_test(test_random_filters), cmocka_unit_test(test_contains),
        cmocka_unit_test(test_kernel_batches),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
