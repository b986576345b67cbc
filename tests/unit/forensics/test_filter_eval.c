/* Filter evaluation on hand-built events: every named field, every operator, multi-valued
 * fields, absent fields, the process table, light (undecoded) events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "filter_ast.h"
#include "ptb_error.h"

#define C(x) PTB__V1__EVENT__BODY_##x

/* the events */
static ptb_event ev_exec, ev_write, ev_rename, ev_link, ev_connect, ev_flow, ev_tool, ev_result,
    ev_kernel, ev_gap, ev_exit, ev_nobody, ev_ckpt;
static Ptb__V1__ProcExec pe = PTB__V1__PROC_EXEC__INIT;
static Ptb__V1__FileWrite fw = PTB__V1__FILE_WRITE__INIT;
static Ptb__V1__FileRename fr = PTB__V1__FILE_RENAME__INIT;
static Ptb__V1__FileLink fl = PTB__V1__FILE_LINK__INIT;
static Ptb__V1__NetConnect nc = PTB__V1__NET_CONNECT__INIT;
static Ptb__V1__SockAddr la = PTB__V1__SOCK_ADDR__INIT, ra = PTB__V1__SOCK_ADDR__INIT;
static Ptb__V1__NetFlow nf = PTB__V1__NET_FLOW__INIT;
static Ptb__V1__SockAddr fs = PTB__V1__SOCK_ADDR__INIT, fd = PTB__V1__SOCK_ADDR__INIT;
static Ptb__V1__ToolCall tc = PTB__V1__TOOL_CALL__INIT;
static Ptb__V1__ToolResult tr = PTB__V1__TOOL_RESULT__INIT;
static Ptb__V1__GpuKernel gk = PTB__V1__GPU_KERNEL__INIT;
static Ptb__V1__Gap gp = PTB__V1__GAP__INIT;
static Ptb__V1__ProcExit px = PTB__V1__PROC_EXIT__INIT;
static Ptb__V1__Checkpoint ck = PTB__V1__CHECKPOINT__INIT;
static Ptb__V1__CheckpointFile ckf1 = PTB__V1__CHECKPOINT_FILE__INIT,
                               ckf2 = PTB__V1__CHECKPOINT_FILE__INIT;
static Ptb__V1__CheckpointFile *ckfiles[2] = {&ckf1, &ckf2};
static char *argv_[] = {"python3", "train.py", "--data", "/data/test.jsonl"};
static uint8_t sha[32] = {0xab, 0xcd, 0xef, 0x01};

static void envelope(ptb_event *e, uint64_t seq, uint32_t bc, uint64_t exec_id)
{
    ptb__v1__event__init(e);
    e->seq = seq;
    e->ts_ns = 1795687200LL * 1000000000 + (int64_t)seq * 1000000000;
    e->mono_ns = (int64_t)seq;
    e->source = PTB__V1__SOURCE__SOURCE_TRACER;
    e->exec_id = exec_id;
    e->tid = exec_id ? (uint32_t)(100 + exec_id) : 0;
    e->body_case = (Ptb__V1__Event__BodyCase)bc;
}

static void build(void)
{
    envelope(&ev_exec, 1, C(PROC_EXEC), 7);
    pe.parent_exec_id = 3;
    pe.pid = 4242;
    pe.ppid = 4000;
    pe.exe = "/usr/bin/python3.11";
    pe.argv = argv_;
    pe.n_argv = 4;
    pe.cwd = "/workspace";
    ev_exec.proc_exec = &pe;

    envelope(&ev_write, 2, C(FILE_WRITE), 7);
    fw.path = "/workspace/data/Train.jsonl";
    fw.bytes = 4096;
    fw.size = 8192;
    fw.sha256.data = sha;
    fw.sha256.len = 32;
    fw.captured = 1;
    fw.trigger = "close";
    ev_write.file_write = &fw;

    envelope(&ev_rename, 3, C(FILE_RENAME), 7);
    fr.path = "/w/model.tmp";
    fr.new_path = "/w/model.safetensors";
    ev_rename.file_rename = &fr;

    envelope(&ev_link, 4, C(FILE_LINK), 7);
    fl.path = "/w/link";
    fl.target = "/data/test.jsonl";
    ev_link.file_link = &fl;

    envelope(&ev_connect, 5, C(NET_CONNECT), 7);
    nc.pid = 4243;
    nc.proto = "tcp";
    la.ip = "10.0.2.15";
    la.port = 52814;
    ra.ip = "18.244.202.73";
    ra.port = 443;
    nc.local = &la;
    nc.remote = &ra;
    nc.host = "huggingface.co";
    ev_connect.net_connect = &nc;

    envelope(&ev_flow, 6, C(NET_FLOW), 0);
    ev_flow.source = PTB__V1__SOURCE__SOURCE_PCAP;
    fs.ip = "10.0.2.15";
    fs.port = 40000;
    fd.ip = "1.1.1.1";
    fd.port = 53;
    nf.src = &fs;
    nf.dst = &fd;
    nf.proto = "udp";
    nf.host = "";
    ev_flow.net_flow = &nf;

    envelope(&ev_tool, 7, C(TOOL_CALL), 1);
    ev_tool.source = PTB__V1__SOURCE__SOURCE_AGENT;
    tc.call_id = "toolu_01";
    tc.name = "Bash";
    tc.input = "{\"command\":\"curl -O https://x/test.jsonl\"}";
    ev_tool.tool_call = &tc;

    envelope(&ev_result, 8, C(TOOL_RESULT), 1);
    tr.call_id = "toolu_01";
    tr.output = "done";
    ev_result.tool_result = &tr;

    envelope(&ev_kernel, 9, C(GPU_KERNEL), 7);
    ev_kernel.source = PTB__V1__SOURCE__SOURCE_GPU;
    gk.name = "void flash_fwd_kernel<64>";
    gk.device = 1;
    gk.grid_x = 128;
    ev_kernel.gpu_kernel = &gk;

    envelope(&ev_gap, 10, C(GAP), 0);
    gp.origin = "pcap";
    gp.reason = "drops";
    gp.count = 12;
    ev_gap.gap = &gp;

    envelope(&ev_exit, 11, C(PROC_EXIT), 7);
    px.pid = 4242;
    px.exit_code = -1;
    ev_exit.proc_exit = &px;

    envelope(&ev_nobody, 12, PTB__V1__EVENT__BODY__NOT_SET, 0);

    envelope(&ev_ckpt, 13, C(CHECKPOINT), 7);
    ck.path = "/w/ckpt";
    ckf1.path = "a.bin";
    ckf1.sha256.data = sha;
    ckf1.sha256.len = 32;
    ckf2.path = "b.bin";
    ck.files = ckfiles;
    ck.n_files = 2;
    ev_ckpt.checkpoint = &ck;
}

/* a process table: 3 = bash (parent 1), 7 = python (parent 3) */
static filter_proc procs[] = {
    {1, 0, 100, 1, "/usr/local/bin/claude", "claude -p", "/"},
    {3, 1, 4000, 100, "/usr/bin/bash", "bash -c python3 train.py", "/workspace"},
    {7, 3, 4242, 4000, "/usr/bin/python3.11", "python3 train.py --data /data/test.jsonl",
     "/workspace"},
};

static const filter_proc *proc_find(void *arg, uint64_t id)
{
    (void)arg;
    for (size_t i = 0; i < sizeof procs / sizeof procs[0]; i++)
        if (procs[i].exec_id == id)
            return &procs[i];
    return NULL;
}

static const struct {
    const char *filter;
    const ptb_event *ev;
    int want; /* with the process table */
} cases[] = {
    /* evt.* */
    {"evt.seq = 2", &ev_write, 1},
    {"evt.seq != 2", &ev_write, 0},
    {"evt.seq < 3", &ev_write, 1},
    {"evt.seq <= 2", &ev_write, 1},
    {"evt.seq > 2", &ev_write, 0},
    {"evt.seq >= 2", &ev_write, 1},
    {"evt.seq in (1, 2, 3)", &ev_write, 1},
    {"evt.seq in (5, 6)", &ev_write, 0},
    {"evt.time = 2026-11-26T10:00:02Z", &ev_write, 1},
    {"evt.time >= '2026-11-26T10:00:02.000000001Z'", &ev_write, 0},
    {"evt.time < 1795687203000000000", &ev_write, 1},
    {"evt.mono = 2", &ev_write, 1},
    {"evt.type = file.write", &ev_write, 1},
    {"evt.type != file.write", &ev_write, 0},
    {"evt.type startswith file.", &ev_rename, 1},
    {"evt.type glob 'net.*'", &ev_flow, 1},
    {"evt.type in (file.read, file.write)", &ev_write, 1},
    {"evt.type contains ile", &ev_write, 1},
    {"evt.type endswith write", &ev_write, 1},
    {"evt.type exists", &ev_nobody, 1},
    {"evt.source = pcap", &ev_flow, 1},
    {"evt.source = tracer", &ev_flow, 0},
    {"evt.source in (agent, gpu)", &ev_kernel, 1},
    {"evt.source icontains TRAC", &ev_write, 1},
    /* proc.* */
    {"proc.exec_id = 7", &ev_write, 1},
    {"proc.exec_id exists", &ev_flow, 0},
    {"proc.exec_id != 7", &ev_flow, 0},
    {"not proc.exec_id = 7", &ev_flow, 1},
    {"proc.tid = 107", &ev_write, 1},
    {"proc.tid exists", &ev_gap, 0},
    {"proc.pid = 4242", &ev_exec, 1},
    {"proc.pid = 4243", &ev_connect, 1}, /* body pid */
    {"proc.pid = 4242", &ev_write, 1},   /* table pid */
    {"proc.pid = 4242", &ev_exit, 1},
    {"proc.ppid = 4000", &ev_write, 1},
    {"proc.exe = /usr/bin/python3.11", &ev_write, 1},
    {"proc.exe endswith python3.11", &ev_exec, 1},
    {"proc.exe exists", &ev_flow, 0},
    {"proc.cmdline contains 'train.py --data'", &ev_kernel, 1},
    {"proc.cmdline glob '*test*'", &ev_exec, 1},
    {"proc.cwd = /workspace", &ev_write, 1},
    {"proc.parent_exe = /usr/bin/bash", &ev_write, 1},
    {"proc.parent_exe = /usr/bin/bash", &ev_tool, 0}, /* exec 1 has no parent */
    {"proc.parent_exec_id = 3", &ev_connect, 1},
    {"proc.parent_exec_id exists", &ev_tool, 0},
    /* file.* */
    {"file.path = /workspace/data/Train.jsonl", &ev_write, 1},
    {"file.path icontains train.JSONL", &ev_write, 1},
    {"file.path contains train", &ev_write, 0}, /* case-sensitive */
    {"file.path = /w/model.safetensors", &ev_rename, 1},
    {"file.path = /w/model.tmp", &ev_rename, 1},
    {"file.path != /w/model.tmp", &ev_rename, 1}, /* any value: the new path differs */
    {"not file.path = /w/model.tmp", &ev_rename, 0},
    {"file.path = /data/test.jsonl", &ev_link, 1},
    {"file.path = /w/ckpt", &ev_ckpt, 1},
    {"file.path exists", &ev_exec, 0},
    {"file.path = x", &ev_exec, 0},
    {"file.path != x", &ev_exec, 0}, /* absent: every comparison false */
    {"file.sha256 startswith abcdef01", &ev_write, 1},
    {"file.sha256 = ABCDEF010000000000000000000000000000000000000000000000000000000000", &ev_write,
     0},
    {"file.sha256 = abcdef0100000000000000000000000000000000000000000000000000000000", &ev_write,
     1},
    {"file.bytes = 4096", &ev_write, 1},
    {"file.size > 8000", &ev_write, 1},
    {"file.size exists", &ev_rename, 0},
    /* net.* */
    {"net.host = huggingface.co", &ev_connect, 1},
    {"net.host exists", &ev_flow, 0}, /* empty host */
    {"net.ip = 10.0.2.15", &ev_connect, 1},
    {"net.ip = 18.244.202.73", &ev_connect, 1},
    {"net.ip != 18.244.202.73", &ev_connect, 1},
    {"net.ip glob '1.1.*'", &ev_flow, 1},
    {"net.ip in (8.8.8.8, 1.1.1.1)", &ev_flow, 1},
    {"net.port = 443", &ev_connect, 1},
    {"net.port < 100", &ev_flow, 1},
    {"net.port > 60000", &ev_flow, 0},
    {"net.proto = udp", &ev_flow, 1},
    /* tool.* */
    {"tool.name = Bash", &ev_tool, 1},
    {"tool.name = bash", &ev_tool, 0},
    {"tool.name icontains bash", &ev_tool, 1},
    {"tool.input contains 'curl -O'", &ev_tool, 1},
    {"tool.call_id = toolu_01", &ev_result, 1},
    {"tool.call_id = toolu_01", &ev_tool, 1},
    {"tool.name exists", &ev_result, 0},
    /* gpu.* */
    {"gpu.kernel glob '*flash*'", &ev_kernel, 1},
    {"gpu.kernel startswith void", &ev_kernel, 1},
    {"gpu.device = 1", &ev_kernel, 1},
    {"gpu.device = 1", &ev_write, 0},
    /* generic */
    {"gap.reason = drops", &ev_gap, 1},
    {"gap.count >= 12", &ev_gap, 1},
    {"gap.count >= 12", &ev_write, 0},
    {"file.write.trigger = close", &ev_write, 1},
    {"file.write.captured = true", &ev_write, 1},
    {"file.write.captured = false", &ev_write, 0},
    {"net.connect.remote.port = 443", &ev_connect, 1},
    {"net.connect.local.port = 443", &ev_connect, 0},
    {"proc.exit.exit_code < 0", &ev_exit, 1},
    {"proc.exec.argv = --data", &ev_exec, 1},
    {"proc.exec.argv = --nope", &ev_exec, 0},
    {"checkpoint.files.path = b.bin", &ev_ckpt, 1},
    {"checkpoint.files.sha256 startswith abcd", &ev_ckpt, 1},
    {"gpu.kernel.grid_x = 128", &ev_kernel, 1},
    /* boolean structure */
    {"evt.type = file.write and file.bytes > 100", &ev_write, 1},
    {"evt.type = file.write and file.bytes > 10000", &ev_write, 0},
    {"evt.type = gap or file.bytes > 10000", &ev_write, 0},
    {"evt.type = gap or file.bytes > 100", &ev_write, 1},
    {"not (evt.type = gap or file.bytes > 100)", &ev_write, 0},
    {"", &ev_nobody, 1},
};

static void test_cases(void **state)
{
    (void)state;
    build();
    filter_ctx cx;
    filter_ctx_init(&cx, proc_find, NULL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        filter *f;
        filter_error err;
        if (filter_parse(cases[i].filter, &f, &err) != 0)
            fail_msg("'%s' does not parse: %d %s", cases[i].filter, err.column, err.msg);
        int r = filter_eval(f, cases[i].ev, &cx);
        if (r != cases[i].want)
            fail_msg("'%s' on seq %llu: %d, want %d", cases[i].filter,
                     (unsigned long long)cases[i].ev->seq, r, cases[i].want);
        filter_free(f);
    }
    filter_ctx_free(&cx);
}

/* Without a process table, proc.* table fields come from proc.exec bodies only. */
static void test_no_table(void **state)
{
    (void)state;
    build();
    filter_ctx cx;
    filter_ctx_init(&cx, NULL, NULL);
    const struct {
        const char *f;
        const ptb_event *ev;
        int want;
    } c[] = {
        {"proc.exe = /usr/bin/python3.11", &ev_exec, 1},
        {"proc.exe = /usr/bin/python3.11", &ev_write, 0},
        {"proc.cmdline = 'python3 train.py --data /data/test.jsonl'", &ev_exec, 1},
        {"proc.parent_exec_id = 3", &ev_exec, 1},
        {"proc.parent_exe exists", &ev_exec, 0},
        {"proc.pid = 4242", &ev_exec, 1},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        filter *f;
        assert_int_equal(filter_parse(c[i].f, &f, NULL), 0);
        if (filter_eval(f, c[i].ev, &cx) != c[i].want)
            fail_msg("'%s'", c[i].f);
        filter_free(f);
    }
    filter_ctx_free(&cx);
}

/* Light events: the envelope decides when it can, else FILTER_UNKNOWN. */
static void test_light(void **state)
{
    (void)state;
    build();
    ptb_event light = ev_write;
    light.file_write = NULL;
    filter_ctx cx;
    filter_ctx_init(&cx, proc_find, NULL);
    const struct {
        const char *f;
        int want;
    } c[] = {
        {"evt.type = file.write", FILTER_TRUE},
        {"evt.type = gap", FILTER_FALSE},
        {"file.bytes > 1", FILTER_UNKNOWN},
        {"gap.count > 1", FILTER_FALSE}, /* other type: absent */
        {"tool.name = Bash", FILTER_FALSE},
        {"proc.exe = /usr/bin/python3.11", FILTER_TRUE}, /* from the table */
        {"proc.pid = 4242", FILTER_TRUE},
        {"evt.type = gap and file.bytes > 1", FILTER_FALSE},
        {"evt.type = file.write or file.bytes > 1", FILTER_TRUE},
        {"evt.type = gap or file.bytes > 1", FILTER_UNKNOWN},
        {"not file.bytes > 1", FILTER_UNKNOWN},
        {"evt.seq = 2 and proc.exec_id = 7 and evt.source = tracer", FILTER_TRUE},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        filter *f;
        assert_int_equal(filter_parse(c[i].f, &f, NULL), 0);
        int r = filter_eval(f, &light, &cx);
        if (r != c[i].want)
            fail_msg("light '%s': %d, want %d", c[i].f, r, c[i].want);
        filter_free(f);
    }
    /* a light net.connect: proc.pid comes from the body */
    ptb_event lc = ev_connect;
    lc.net_connect = NULL;
    filter *f;
    assert_int_equal(filter_parse("proc.pid = 4243", &f, NULL), 0);
    assert_int_equal(filter_eval(f, &lc, &cx), FILTER_UNKNOWN);
    filter_free(f);
    filter_ctx_free(&cx);
}

/* Builders used by --since/--until/--tree. */
static void test_builders(void **state)
{
    (void)state;
    build();
    filter *f;
    assert_int_equal(filter_parse("evt.type = file.write", &f, NULL), 0);
    int64_t ids[] = {3, 7};
    filter_and(f, filter_node_cmp_int("proc.exec_id", FOP_EQ, ids, 2));
    int64_t t0 = 1795687200LL * 1000000000;
    filter_and(f, filter_node_cmp_int("evt.time", FOP_GE, &t0, 1));
    char buf[256];
    filter_print(f, buf, sizeof buf);
    assert_string_equal(buf, "(evt.type = \"file.write\" and proc.exec_id in (3, 7) and evt.time "
                             ">= 1795687200000000000)");
    filter_ctx cx;
    filter_ctx_init(&cx, NULL, NULL);
    assert_int_equal(filter_eval(f, &ev_write, &cx), FILTER_TRUE);
    filter_free(f);
    assert_int_equal(filter_parse("", &f, NULL), 0);
    filter_and(f, filter_node_cmp_int("evt.seq", FOP_EQ, ids, 1));
    filter_print(f, buf, sizeof buf);
    assert_string_equal(buf, "evt.seq = 3");
    filter_free(f);
    filter_ctx_free(&cx);
}

static void field_cb(void *arg, const char *name, const char *type, const char *doc)
{
    (void)type;
    assert_non_null(doc);
    filter_field ff;
    assert_int_equal(filter_field_lookup(name, strlen(name), &ff), 0);
    (*(int *)arg)++;
}

static void test_fields_listed(void **state)
{
    (void)state;
    int n = 0;
    filter_field_foreach(field_cb, &n);
    assert_true(n >= 27);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),         cmocka_unit_test(test_no_table),
        cmocka_unit_test(test_light),         cmocka_unit_test(test_builders),
        cmocka_unit_test(test_fields_listed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
