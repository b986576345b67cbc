/* ptb audit's leakage detector (forensics/audit_leak.c) on small stores built here: a copy of the
 * test split, reformatted (JSONL, CSV, plain text, reordered fields, shuffled, Unicode look-alikes,
 * base64, inside a binary), partial (question-only, answer-only), in a tool call; a disjoint
 * split and random data of the same shape; short items matched only exactly; direct evidence
 * (the split opened, a hub's test split fetched); what a store without processes cannot say.
 * Items come from a fixed-seed generator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"

#define C(x) PTB__V1__EVENT__BODY_##x
#define NITEMS 40 /* bulk = 4 items (10%), significant = 3 */

static char dir[64];
static char long_split[128], short_split[128];
static int nstores;

/* ------------------------------------------------------------------ items */

typedef struct item {
    char prompt[256], answer[256];
} item;

static uint32_t rng;
static uint32_t rnd(void)
{
    rng = rng * 1103515245u + 12345u;
    return rng >> 8;
}

static char vocab[400][12];

static void make_vocab(void)
{
    const char *cons = "bdfgklmnprstvz", *vow = "aeiou";
    rng = 1;
    for (int i = 0; i < 400; i++) {
        int n = 0, syl = 2 + (int)(rnd() % 2);
        for (int s = 0; s < syl; s++) {
            vocab[i][n++] = cons[rnd() % 14];
            vocab[i][n++] = vow[rnd() % 5];
        }
        vocab[i][n] = 0;
    }
}

static void words(char *out, size_t cap, int n)
{
    size_t k = strlen(out);
    for (int i = 0; i < n && k + 14 < cap; i++)
        k += (size_t)snprintf(out + k, cap - k, "%s%s", i ? " " : "", vocab[rnd() % 400]);
}

/* Natural-language-like items: "Question: <10-13 words>?" => "<8-11 words>." */
static void long_items(item *it, size_t n, uint32_t seed)
{
    rng = seed;
    for (size_t i = 0; i < n; i++) {
        snprintf(it[i].prompt, sizeof it[i].prompt, "Question: ");
        words(it[i].prompt, sizeof it[i].prompt, 10 + (int)(rnd() % 4));
        strcat(it[i].prompt, "?");
        it[i].answer[0] = 0;
        words(it[i].answer, sizeof it[i].answer, 8 + (int)(rnd() % 4));
        strcat(it[i].answer, ".");
    }
}

static int sum_a[NITEMS], sum_b[NITEMS];

/* The demo's items: "Q: a+b=?\nA: " => "a+b", distinct pairs. */
static void short_items(item *it)
{
    rng = 7;
    for (int i = 0; i < NITEMS; i++) {
    again:
        sum_a[i] = 10 + (int)(rnd() % 90), sum_b[i] = 10 + (int)(rnd() % 90);
        for (int k = 0; k < i; k++)
            if (sum_a[k] == sum_a[i] && sum_b[k] == sum_b[i])
                goto again;
        snprintf(it[i].prompt, sizeof it[i].prompt, "Q: %d+%d=?\nA: ", sum_a[i], sum_b[i]);
        snprintf(it[i].answer, sizeof it[i].answer, "%d", sum_a[i] + sum_b[i]);
    }
}

static bool is_test_pair(int a, int b)
{
    for (int i = 0; i < NITEMS; i++)
        if (sum_a[i] == a && sum_b[i] == b)
            return true;
    return false;
}

static item L_items[NITEMS], S_items[NITEMS], T_items[NITEMS]; /* long test, short test, train */

/* ------------------------------------------------------------------ a growable text */

typedef struct buf {
    char *s;
    size_t n, cap;
} buf;

static void bput(buf *b, const void *p, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->s = realloc(b->s, b->cap);
        assert_non_null(b->s);
    }
    memcpy(b->s + b->n, p, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void bprintf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bprintf(buf *b, const char *fmt, ...)
{
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    bput(b, tmp, (size_t)k);
}

static void jsonl_line(buf *b, const char *k1, const char *v1, const char *k2, const char *v2)
{
    json_t *o = json_object();
    json_object_set_new(o, k1, json_string(v1));
    if (k2)
        json_object_set_new(o, k2, json_string(v2));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    bprintf(b, "%s\n", s);
    free(s);
    json_decref(o);
}

static void write_split(const char *path, const item *it, size_t n)
{
    buf b = {0};
    for (size_t i = 0; i < n; i++)
        jsonl_line(&b, "prompt", it[i].prompt, "completion", it[i].answer);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fwrite(b.s, 1, b.n, f);
    fclose(f);
    free(b.s);
}

static void b64(buf *b, const char *s, size_t n, int line)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    int col = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(uint8_t)s[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)(uint8_t)s[i + 1] << 8;
        if (i + 2 < n)
            v |= (uint8_t)s[i + 2];
        char q[4] = {a[v >> 18], a[v >> 12 & 63], i + 1 < n ? a[v >> 6 & 63] : '=',
                     i + 2 < n ? a[v & 63] : '='};
        bput(b, q, 4);
        if (line && (col += 4) >= line) {
            bput(b, "\n", 1);
            col = 0;
        }
    }
}

/* ------------------------------------------------------------------ stores */

typedef struct st {
    char path[128];
    store *s;
} st;

static void st_open(st *t)
{
    snprintf(t->path, sizeof t->path, "%s/s%d.ptb", dir, nstores++);
    store_options opt;
    store_options_default(&opt);
    opt.sync = STORE_SYNC_NONE;
    opt.queue_bytes = 1 << 20; /* small stores: the default queue costs more than the test */
    opt.map_size_initial = 16 << 20;
    assert_int_equal(store_open(t->path, &opt, STORE_CREATE, &t->s), 0);
}

static uint64_t append(st *t, ptb_event *ev)
{
    uint64_t seq;
    assert_int_equal(store_append(t->s, ev, 0, &seq), 0);
    return seq;
}

static void add_exec(st *t, uint64_t exec, uint64_t parent, const char *cmd)
{
    char copy[1024], *argv[32];
    size_t n = 0;
    snprintf(copy, sizeof copy, "%s", cmd);
    for (char *sv, *w = strtok_r(copy, " ", &sv); w && n < 32; w = strtok_r(NULL, " ", &sv))
        argv[n++] = w;
    Ptb__V1__ProcExec pe = PTB__V1__PROC_EXEC__INIT;
    pe.parent_exec_id = parent;
    pe.pid = (int32_t)(1000 + exec);
    pe.exe = argv[0];
    pe.argv = argv;
    pe.n_argv = n;
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.source = PTB__V1__SOURCE__SOURCE_TRACER;
    ev.exec_id = exec;
    ev.body_case = C(PROC_EXEC);
    ev.proc_exec = &pe;
    append(t, &ev);
}

static void add_write(st *t, uint64_t exec, const char *path, const void *data, size_t len)
{
    uint8_t sha[32];
    assert_int_equal(store_blob_put(t->s, data, len, path, sha), 0);
    Ptb__V1__FileWrite fw = PTB__V1__FILE_WRITE__INIT;
    fw.path = (char *)path;
    fw.bytes = fw.size = len;
    fw.sha256 = (ProtobufCBinaryData){32, sha};
    fw.captured = true;
    fw.trigger = (char *)"close";
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.source = PTB__V1__SOURCE__SOURCE_TRACER;
    ev.exec_id = exec;
    ev.body_case = C(FILE_WRITE);
    ev.file_write = &fw;
    append(t, &ev);
}

static void add_open(st *t, uint64_t exec, const char *path, int flags, int result)
{
    Ptb__V1__FileOpen fo = PTB__V1__FILE_OPEN__INIT;
    fo.path = (char *)path;
    fo.flags = flags;
    fo.result = result;
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.source = PTB__V1__SOURCE__SOURCE_TRACER;
    ev.exec_id = exec;
    ev.body_case = C(FILE_OPEN);
    ev.file_open = &fo;
    append(t, &ev);
}

static void add_tls(st *t, uint64_t exec, const char *host)
{
    Ptb__V1__NetTls tl = PTB__V1__NET_TLS__INIT;
    tl.host = (char *)host;
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.source = PTB__V1__SOURCE__SOURCE_PCAP;
    ev.exec_id = exec;
    ev.body_case = C(NET_TLS);
    ev.net_tls = &tl;
    append(t, &ev);
}

/* A tool call and its result (output may be NULL). */
static void add_tool(st *t, const char *name, const char *input, const char *output)
{
    static int calls;
    char id[32];
    snprintf(id, sizeof id, "toolu_%d", ++calls);
    Ptb__V1__ToolCall tc = PTB__V1__TOOL_CALL__INIT;
    tc.call_id = id;
    tc.name = (char *)name;
    tc.input = (char *)input;
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.source = PTB__V1__SOURCE__SOURCE_AGENT;
    ev.body_case = C(TOOL_CALL);
    ev.tool_call = &tc;
    append(t, &ev);
    Ptb__V1__ToolResult tr = PTB__V1__TOOL_RESULT__INIT;
    tr.call_id = id;
    tr.output = (char *)(output ? output : "");
    ptb_event er = PTB__V1__EVENT__INIT;
    er.source = PTB__V1__SOURCE__SOURCE_AGENT;
    er.body_case = C(TOOL_RESULT);
    er.tool_result = &tr;
    append(t, &er);
}

/* A data file written by `python3 prep.py` (exec 2) and read by `python3 train.py` (exec 3). */
static void prep_and_train(st *t, const char *path, const buf *data)
{
    add_exec(t, 1, 0, "claude -p post-train");
    add_exec(t, 2, 1, "python3 prep.py");
    add_write(t, 2, path, data->s, data->n);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "python3 train.py --data %s", path);
    add_exec(t, 3, 1, cmd);
    add_open(t, 3, path, O_RDONLY, 5);
}

static void audit_store(st *t, const char *split, audit_report *rep)
{
    assert_int_equal(store_close(t->s), 0);
    t->s = NULL;
    audit_options o = {.test_set = split};
    audit_run r;
    ptb_errbuf eb = {{0}};
    assert_int_equal(audit_run_open(&r, t->path, &o, &eb), 0);
    memset(rep, 0, sizeof *rep);
    assert_int_equal(audit_leak(&r, rep), 0);
    audit_run_close(&r);
    for (size_t i = 0; i < rep->n; i++) {
        assert_string_equal(rep->f[i].detector, "leak");
        assert_non_null(rep->f[i].summary);
    }
}

static const audit_finding *rule(const audit_report *rep, const char *id)
{
    for (size_t i = 0; i < rep->n; i++)
        if (!strcmp(rep->f[i].rule, id))
            return &rep->f[i];
    return NULL;
}

static size_t count_rule(const audit_report *rep, const char *id)
{
    size_t n = 0;
    for (size_t i = 0; i < rep->n; i++)
        n += !strcmp(rep->f[i].rule, id);
    return n;
}

/* Only a clean leak.content: nothing found. */
static void assert_clean(const audit_report *rep)
{
    for (size_t i = 0; i < rep->n; i++)
        if (rep->f[i].verdict != AUDIT_CLEAN)
            fail_msg("unexpected %s: %s", rep->f[i].rule, rep->f[i].summary);
    assert_non_null(rule(rep, "leak.content"));
}

/* ------------------------------------------------------------------ formats */

typedef enum fmt {
    F_JSONL,
    F_REORDERED,
    F_CSV,
    F_PLAIN,
    F_SHUFFLED,
    F_UNICODE,
    F_B64,
    F_B64_LINES,
    F_BINARY,
    F_QONLY,
    F_AONLY,
} fmt;

static void csv_field(buf *b, const char *s)
{
    bput(b, "\"", 1);
    for (; *s; s++)
        bput(b, *s == '"' ? "\"\"" : s, *s == '"' ? 2 : 1);
    bput(b, "\"", 1);
}

/* Upper case letters as fullwidth forms, spaces as NBSP, a zero-width space inside words. */
static void unicode_copy(buf *b, const char *s)
{
    for (int k = 0; *s; s++, k++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 'a' && c <= 'z' && k % 3 == 0) { /* fullwidth capital: U+FF21 + (c - 'a') */
            unsigned cp = 0xFF21 + (c - 'a');
            char u[3] = {(char)(0xE0 | cp >> 12), (char)(0x80 | (cp >> 6 & 0x3F)),
                         (char)(0x80 | (cp & 0x3F))};
            bput(b, u, 3);
        } else if (c == ' ')
            bput(b, "\xC2\xA0", 2);
        else
            bput(b, s, 1);
        if (k % 7 == 3 && c >= 'a' && c <= 'z')
            bput(b, "\xE2\x80\x8B", 3);
    }
}

static void format_items(buf *b, const item *it, size_t n, fmt f)
{
    size_t order[NITEMS * 2];
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    if (f == F_SHUFFLED) {
        rng = 99;
        for (size_t i = n - 1; i > 0; i--) {
            size_t j = rnd() % (i + 1), x = order[i];
            order[i] = order[j], order[j] = x;
        }
    }
    if (f == F_CSV)
        bprintf(b, "question,answer\n");
    buf inner = {0};
    for (size_t k = 0; k < n; k++) {
        const item *x = &it[order[k]];
        switch (f) {
        case F_JSONL:
        case F_SHUFFLED: jsonl_line(b, "prompt", x->prompt, "completion", x->answer); break;
        case F_REORDERED: jsonl_line(b, "answer", x->answer, "question", x->prompt); break;
        case F_CSV:
            csv_field(b, x->prompt), bput(b, ",", 1), csv_field(b, x->answer), bput(b, "\n", 1);
            break;
        case F_PLAIN: bprintf(b, "%s\n%s\n\n", x->prompt, x->answer); break;
        case F_UNICODE:
            unicode_copy(b, x->prompt), bput(b, "\xE3\x80\x80", 3), unicode_copy(b, x->answer);
            bput(b, "\n", 1);
            break;
        case F_B64: jsonl_line(&inner, "prompt", x->prompt, "completion", x->answer); break;
        case F_B64_LINES: {
            buf line = {0};
            jsonl_line(&line, "prompt", x->prompt, "completion", x->answer);
            b64(b, line.s, line.n - 1, 0);
            bput(b, "\n", 1);
            free(line.s);
            break;
        }
        case F_BINARY: /* like an Arrow or pickle file: strings between binary */
            bput(b, "\x00\x01\x94\x8c\x10", 5), bput(b, x->prompt, strlen(x->prompt));
            bput(b, "\x00\x94\x02\x00", 4), bput(b, x->answer, strlen(x->answer));
            bput(b, "\x00\x00\x00\x7f\x03\x00", 6);
            break;
        case F_QONLY: bprintf(b, "%s\n", x->prompt); break;
        case F_AONLY: bprintf(b, "- %s\n", x->answer); break;
        }
    }
    if (f == F_B64) {
        b64(b, inner.s, inner.n, 76);
        free(inner.s);
    }
}

/* ------------------------------------------------------------------ tests */

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/ptb-leak-test-XXXXXX");
    assert_non_null(mkdtemp(dir));
    make_vocab();
    long_items(L_items, NITEMS, 11);
    long_items(T_items, NITEMS, 22);
    short_items(S_items);
    snprintf(long_split, sizeof long_split, "%s/long-test.jsonl", dir);
    snprintf(short_split, sizeof short_split, "%s/test.jsonl", dir);
    write_split(long_split, L_items, NITEMS);
    write_split(short_split, S_items, NITEMS);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* An exact copy of the split, read by a training process: a violation, with the file's lineage. */
static void test_exact_copy(void **state)
{
    (void)state;
    st t;
    st_open(&t);
    buf b = {0};
    format_items(&b, L_items, NITEMS, F_JSONL);
    prep_and_train(&t, "/w/data/extra.jsonl", &b);
    free(b.s);
    audit_report rep;
    audit_store(&t, long_split, &rep);
    const audit_finding *f = rule(&rep, "leak.test_items_in_training_data");
    assert_non_null(f);
    assert_int_equal(f->verdict, AUDIT_VIOLATION);
    assert_true(f->confidence > 0.99);
    assert_non_null(strstr(f->summary, "/w/data/extra.jsonl holds 40 of the 40 test items"));
    assert_non_null(strstr(f->summary, "python3 prep.py"));
    assert_non_null(strstr(f->summary, "read by training exec 3"));
    assert_int_equal(f->n_blobs, 1);
    assert_non_null(strstr(f->matched, "40 of 40 test items in full"));
    assert_non_null(strstr(f->query, "--lineage /w/data/extra.jsonl"));
    assert_true(f->n_seqs >= 3); /* the write, the writer, the reader's open and exec */
    for (size_t i = 1; i < f->n_seqs; i++)
        assert_true(f->seqs[i] > f->seqs[i - 1]);
    assert_string_equal(f->unavailable, "network, tool calls");
    assert_null(rule(&rep, "leak.content"));
    audit_report_free(&rep);
}

/* Reformatted and partial copies: each one found, with the verdict its kind deserves. */
static void test_reformatted(void **state)
{
    (void)state;
    static const struct {
        fmt f;
        const char *name;
        const char *rule;
        const char *matched; /* expected in the matched text */
    } cases[] = {
        {F_REORDERED, "reordered", "leak.test_items_in_training_data", "40 of 40 test items"},
        {F_CSV, "csv", "leak.test_items_in_training_data", "40 of 40 test items"},
        {F_PLAIN, "plain", "leak.test_items_in_training_data", "40 of 40 test items"},
        {F_SHUFFLED, "shuffled", "leak.test_items_in_training_data", "40 of 40 test items"},
        {F_UNICODE, "unicode", "leak.test_items_in_training_data", "40 of 40 test items"},
        {F_B64, "base64", "leak.test_items_in_training_data", "base64"},
        {F_B64_LINES, "base64-lines", "leak.test_items_in_training_data", "base64"},
        {F_BINARY, "binary", "leak.test_items_in_training_data", "40 of 40 test items"},
        {F_QONLY, "question-only", "leak.test_items_seen", "40 question-only"},
        {F_AONLY, "answer-only", "leak.test_items_seen", "40 answer-only"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        st t;
        st_open(&t);
        buf b = {0};
        format_items(&b, L_items, NITEMS, cases[c].f);
        char path[64];
        snprintf(path, sizeof path, "/w/data/%s.txt", cases[c].name);
        prep_and_train(&t, path, &b);
        free(b.s);
        audit_report rep;
        audit_store(&t, long_split, &rep);
        const audit_finding *f = rule(&rep, cases[c].rule);
        if (!f || !strstr(f->matched, cases[c].matched))
            fail_msg("%s: no %s with \"%s\" (%zu findings, first %s: %s)", cases[c].name,
                     cases[c].rule, cases[c].matched, rep.n, rep.n ? rep.f[0].rule : "-",
                     rep.n ? rep.f[0].matched ? rep.f[0].matched : rep.f[0].summary : "-");
        assert_non_null(strstr(f->summary, path));
        assert_int_equal(count_rule(&rep, "leak.test_items_in_training_data") +
                             count_rule(&rep, "leak.test_items_seen"),
                         1);
        audit_report_free(&rep);
    }
}

/* The same copy inside a JSON tool input (escaped twice) of an imported run: found, its lineage
 * from the tool calls; the store says it has no processes, file contents or network. */
static void test_tool_calls_only(void **state)
{
    (void)state;
    st t;
    st_open(&t);
    buf data = {0};
    format_items(&data, L_items, NITEMS, F_JSONL);
    json_t *in = json_pack("{s:s,s:s}", "file_path", "/w/data/more.jsonl", "content", data.s);
    char *input = json_dumps(in, JSON_COMPACT);
    add_tool(&t, "Bash", "{\"command\":\"ls /w\"}", "data\n");
    add_tool(&t, "Write", input, "ok");
    add_tool(&t, "Bash",
             "{\"command\":\"python train.py --data /w/data/more.jsonl --out /w/final_model\"}",
             "done");
    free(input), json_decref(in), free(data.s);
    audit_report rep;
    audit_store(&t, long_split, &rep);
    const audit_finding *f = rule(&rep, "leak.test_items_in_training_data");
    assert_non_null(f);
    assert_non_null(strstr(f->summary, "/w/data/more.jsonl holds 40 of the 40"));
    assert_non_null(strstr(f->summary, "training tool call"));
    assert_string_equal(f->unavailable, "processes, file contents, network");
    audit_report_free(&rep);

    /* nothing to find: one clean finding that still says what the store lacks */
    st_open(&t);
    add_tool(&t, "Bash", "{\"command\":\"ls /w\"}", "data\n");
    audit_store(&t, long_split, &rep);
    assert_clean(&rep);
    assert_int_equal(rep.n, 1);
    assert_string_equal(rep.f[0].unavailable, "processes, file contents, network");
    assert_non_null(strstr(rep.f[0].summary, "2 tool-call inputs and outputs"));
    audit_report_free(&rep);
}

/* A disjoint train split and random data of the same shape hold no test item. */
static void test_disjoint_and_random(void **state)
{
    (void)state;
    st t;
    st_open(&t);
    buf b = {0};
    format_items(&b, T_items, NITEMS, F_JSONL);
    prep_and_train(&t, "/w/data/train.jsonl", &b);
    b.n = 0;
    format_items(&b, T_items, NITEMS, F_CSV); /* and the train split's prompts next to it */
    add_write(&t, 2, "/w/data/train.csv", b.s, b.n);
    audit_report rep;
    audit_store(&t, long_split, &rep);
    assert_clean(&rep);
    audit_report_free(&rep);

    /* 1,500 random sums, none a test item, in the demo's JSONL and as a header-less CSV */
    st_open(&t);
    buf j = {0}, c = {0};
    rng = 4242;
    for (int k = 0; k < 1500;) {
        int x = (int)(rnd() % 100), y = (int)(rnd() % 100);
        if (is_test_pair(x, y))
            continue;
        char p[64], a[16];
        snprintf(p, sizeof p, "Q: %d+%d=?\nA: ", x, y);
        snprintf(a, sizeof a, "%d", x + y);
        jsonl_line(&j, "prompt", p, "completion", a);
        bprintf(&c, "%d+%d,%d\n", x, y, x + y);
        k++;
    }
    prep_and_train(&t, "/w/data/synth.jsonl", &j);
    add_write(&t, 2, "/w/data/synth.csv", c.s, c.n);
    audit_store(&t, short_split, &rep);
    assert_clean(&rep);
    audit_report_free(&rep);
    free(b.s), free(j.s), free(c.s);
}

/* Short items (under 8 words) count only when prompt and answer are there whole, next to each
 * other; the rest is not evidence. */
static void test_short_items_exact(void **state)
{
    (void)state;
    st t;
    st_open(&t);
    add_exec(&t, 2, 0, "python3 prep.py");
    buf wrong = {0}, gap = {0}, prompts = {0}, near = {0}, exact = {0}, demo = {0}, few = {0};
    for (int i = 0; i < NITEMS; i++) {
        int a = sum_a[i], b = sum_b[i];
        bprintf(&wrong, "Q: %d+%d=?\nA: %d\n", a, b, a + b + 1); /* wrong answers */
        bprintf(&gap, "%d+%d %d %d\n", a, b, i, a + b);          /* a number in between */
        bprintf(&prompts, "%d+%d\n", a, b);                      /* prompts alone */
        bprintf(&near, "%d+%d=%d\n", a, b + 100, a + b);         /* one operand off */
        bprintf(&exact, "%d+%d,%d\n", a, b, a + b);              /* CSV */
        jsonl_line(&demo, "completion", S_items[i].answer, "prompt", S_items[i].prompt);
        if (i < 3)
            bprintf(&few, "%d + %d = %d\n", a, b, a + b);
    }
    add_write(&t, 2, "/w/wrong.txt", wrong.s, wrong.n);
    add_write(&t, 2, "/w/gap.txt", gap.s, gap.n);
    add_write(&t, 2, "/w/prompts.txt", prompts.s, prompts.n);
    add_write(&t, 2, "/w/near.txt", near.s, near.n);
    add_write(&t, 2, "/w/exact.csv", exact.s, exact.n);
    add_write(&t, 2, "/w/demo.jsonl", demo.s, demo.n);
    add_write(&t, 2, "/w/few.txt", few.s, few.n);
    audit_report rep;
    audit_store(&t, short_split, &rep);
    const char *found[] = {"/w/exact.csv holds 40", "/w/demo.jsonl holds 40", "/w/few.txt holds 3"};
    for (size_t k = 0; k < 3; k++) {
        bool seen = false;
        for (size_t i = 0; i < rep.n; i++)
            seen |= strstr(rep.f[i].summary, found[k]) != NULL;
        if (!seen)
            fail_msg("no finding \"%s\"", found[k]);
    }
    for (size_t i = 0; i < rep.n; i++) {
        assert_null(strstr(rep.f[i].summary, "/w/wrong.txt"));
        assert_null(strstr(rep.f[i].summary, "/w/gap.txt"));
        assert_null(strstr(rep.f[i].summary, "/w/prompts.txt"));
        assert_null(strstr(rep.f[i].summary, "/w/near.txt"));
        /* nothing trained on them: seen, not a violation */
        assert_int_equal(rep.f[i].verdict, AUDIT_SUSPICIOUS);
    }
    assert_int_equal(rep.n, 3);
    audit_report_free(&rep);
    free(wrong.s), free(gap.s), free(prompts.s), free(near.s), free(exact.s), free(demo.s),
        free(few.s);

    /* two items are below what chance gives a short item: nothing */
    st_open(&t);
    buf two = {0};
    bprintf(&two, "%d+%d,%d\n%d+%d,%d\n", sum_a[0], sum_b[0], sum_a[0] + sum_b[0], sum_a[5],
            sum_b[5], sum_a[5] + sum_b[5]);
    prep_and_train(&t, "/w/two.csv", &two);
    audit_store(&t, short_split, &rep);
    assert_clean(&rep);
    audit_report_free(&rep);
    free(two.s);
}

/* The demo's test-leak: the split downloaded by curl, mixed three times into the train data by
 * cat, trained on by ptb train; the download named a hub's test split. */
static void test_download_and_mix(void **state)
{
    (void)state;
    st t;
    st_open(&t);
    buf data = {0}, mix = {0};
    format_items(&data, S_items, NITEMS, F_JSONL);
    format_items(&mix, T_items, NITEMS, F_JSONL);
    for (int k = 0; k < 3; k++)
        bput(&mix, data.s, data.n);
    const char *url = "https://huggingface.co/datasets/org/addition/resolve/main/test.jsonl";
    char in[256], cmd[256];
    snprintf(in, sizeof in, "{\"command\":\"curl -sSfL %s -o data/extra.jsonl\"}", url);
    add_exec(&t, 1, 0, "claude -p post-train");
    add_tool(&t, "Bash", in, "");
    snprintf(cmd, sizeof cmd, "curl -sSfL %s -o data/extra.jsonl", url);
    add_exec(&t, 5, 1, cmd);
    add_tls(&t, 5, "huggingface.co");
    add_write(&t, 5, "/w/data/extra.jsonl", data.s, data.n);
    add_exec(&t, 6, 1, "cat data/train.jsonl data/extra.jsonl data/extra.jsonl data/extra.jsonl");
    add_open(&t, 6, "/w/data/extra.jsonl", O_RDONLY, 3);
    add_write(&t, 6, "/w/data/mix.jsonl", mix.s, mix.n);
    add_exec(&t, 7, 1, "ptb train --base base_model --data data/mix.jsonl --out final_model");
    add_open(&t, 7, "/w/data/mix.jsonl", O_RDONLY, 3);
    free(data.s), free(mix.s);
    audit_report rep;
    audit_store(&t, short_split, &rep);
    assert_int_equal(count_rule(&rep, "leak.test_items_in_training_data"), 2);
    const audit_finding *f = rule(&rep, "leak.test_items_in_training_data");
    assert_non_null(strstr(f->summary, "/w/data/extra.jsonl holds 40 of the 40"));
    assert_non_null(strstr(f->summary, "connected to huggingface.co"));
    assert_non_null(strstr(f->summary, "into /w/data/mix.jsonl, read by training exec 7"));
    f = rule(&rep, "leak.test_split_fetched");
    assert_non_null(f);
    assert_int_equal(f->verdict, AUDIT_VIOLATION);
    assert_string_equal(f->matched, url);
    assert_non_null(strstr(f->summary, "/w/data/extra.jsonl"));
    assert_non_null(strstr(f->query, "'evt.seq in ("));
    audit_report_free(&rep);
}

/* Direct evidence: the split's path opened; a file of its name elsewhere; a hub's test split
 * named with nothing found from it; split="test". */
static void test_direct_evidence(void **state)
{
    (void)state;
    st t;
    st_open(&t);
    add_exec(&t, 3, 0, "python3 peek.py");
    add_open(&t, 3, long_split, O_RDONLY, 4);
    audit_report rep;
    audit_store(&t, long_split, &rep);
    const audit_finding *f = rule(&rep, "leak.test_split_opened");
    assert_non_null(f);
    assert_int_equal(f->verdict, AUDIT_VIOLATION);
    assert_non_null(strstr(f->summary, "the test split itself"));
    assert_non_null(strstr(f->summary, "python3 peek.py"));
    assert_non_null(rule(&rep, "leak.content")); /* no content: still a clean content finding */
    audit_report_free(&rep);

    /* same name, other content; a failed open of the split: suspicious */
    st_open(&t);
    add_exec(&t, 3, 0, "python3 split.py");
    add_write(&t, 3, "/w/own/long-test.jsonl", "{\"prompt\":\"x\"}\n", 15);
    add_open(&t, 3, "/w/own/long-test.jsonl", O_RDONLY, 4);
    add_open(&t, 3, long_split, O_RDONLY, -2);
    audit_store(&t, long_split, &rep);
    f = rule(&rep, "leak.test_split_opened");
    assert_non_null(f);
    assert_int_equal(f->verdict, AUDIT_SUSPICIOUS);
    audit_report_free(&rep);

    /* a copy of the split under another folder, opened: a violation */
    st_open(&t);
    buf b = {0};
    FILE *fp = fopen(long_split, "r");
    char line[2048];
    while (fgets(line, sizeof line, fp))
        bput(&b, line, strlen(line));
    fclose(fp);
    add_exec(&t, 3, 0, "python3 eval.py");
    add_write(&t, 3, "/w/copy/long-test.jsonl", b.s, b.n);
    add_open(&t, 3, "/w/copy/long-test.jsonl", O_RDONLY, 4);
    free(b.s);
    audit_store(&t, long_split, &rep);
    f = rule(&rep, "leak.test_split_opened");
    assert_non_null(f);
    assert_int_equal(f->verdict, AUDIT_VIOLATION);
    assert_non_null(strstr(f->summary, "a copy of the test split"));
    audit_report_free(&rep);

    /* named fetches with no content from them: suspicious; a hub file named "latest": nothing */
    st_open(&t);
    add_tool(&t, "Bash",
             "{\"command\":\"python -c \\\"from datasets import load_dataset; "
             "load_dataset('org/bench', split='test')\\\"\"}",
             "");
    add_tool(
        &t, "Bash",
        "{\"command\":\"curl -O https://huggingface.co/datasets/org/b/resolve/main/latest.json\"}",
        "");
    audit_store(&t, long_split, &rep);
    f = rule(&rep, "leak.test_split_fetched");
    assert_non_null(f);
    assert_int_equal(f->verdict, AUDIT_SUSPICIOUS);
    assert_non_null(strstr(f->matched, "test"));
    assert_non_null(strstr(f->summary, "1 command or tool call names"));
    audit_report_free(&rep);
}

/* No test split: one clean finding that asks for one. */
static void test_no_split(void **state)
{
    (void)state;
    st t;
    st_open(&t);
    add_tool(&t, "Bash", "{\"command\":\"ls\"}", "");
    audit_report rep;
    audit_store(&t, NULL, &rep);
    assert_int_equal(rep.n, 1);
    assert_string_equal(rep.f[0].rule, "leak.no_test_split");
    assert_int_equal(rep.f[0].verdict, AUDIT_CLEAN);
    assert_string_equal(rep.f[0].unavailable, "the test split (give --test-set FILE)");
    audit_report_free(&rep);

    /* a split that cannot be read: the same, saying why */
    st_open(&t);
    add_tool(&t, "Bash", "{\"command\":\"ls\"}", "");
    char missing[160];
    snprintf(missing, sizeof missing, "%s/missing.jsonl", dir);
    audit_store(&t, missing, &rep);
    const audit_finding *f = rule(&rep, "leak.no_test_split");
    assert_non_null(f);
    assert_non_null(strstr(f->summary, "cannot read"));
    audit_report_free(&rep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_copy),        cmocka_unit_test(test_reformatted),
        cmocka_unit_test(test_tool_calls_only),   cmocka_unit_test(test_disjoint_and_random),
        cmocka_unit_test(test_short_items_exact), cmocka_unit_test(test_download_and_mix),
        cmocka_unit_test(test_direct_evidence),   cmocka_unit_test(test_no_split),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
