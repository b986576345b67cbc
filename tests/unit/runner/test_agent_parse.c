/* The agent stream parsers (runner/agent/agent_parse.h):
 * - a table per format over the fixtures written from each format's documentation
 *   (tests/unit/runner/agent-fixtures/), with the counts and the events expected;
 * - the real Claude Code data in PTB_TEST_DATA/agent-streams: every fixture message (alone, with
 *   the format detected, and all together as one stream), the golden stream, and every session
 *   transcript, where the tool_use and tool_result ids found by walking the JSON here must all
 *   come out as tool.call events with their id and results paired with them;
 * - broken input: a truncated line, garbage, a line over line_max, blank lines; a multi-MB line
 *   fed in odd chunks into a real store, its output a blob; secrets redacted; ISO times. */
#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent_int.h"

/* ------------------------------------------------------------------ a sink that keeps events */

typedef struct rec {
    uint32_t type;
    int64_t ts;
    char *id, *name, *text, *role, *reason; /* as the event has them, strdup'd */
    bool is_error, blob;
    uint64_t bytes, in, out, cache_read, cache_write, count;
    bool total; /* agent.usage session_total */
    double cost;
} rec;

typedef struct recs {
    rec *r;
    size_t n, cap;
} recs;

static char *dup0(const char *s)
{
    return strdup(s ? s : "");
}

static int rec_sink(void *arg, const ptb_event *ev)
{
    recs *rs = arg;
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? rs->cap * 2 : 64;
        rs->r = realloc(rs->r, rs->cap * sizeof *rs->r);
        assert_non_null(rs->r);
    }
    rec *r = &rs->r[rs->n++];
    memset(r, 0, sizeof *r);
    r->type = ev->body_case;
    r->ts = ev->ts_ns;
    assert_int_equal(ev->source, PTB__V1__SOURCE__SOURCE_AGENT);
    switch (ev->body_case) {
    case PTB__V1__EVENT__BODY_TOOL_CALL:
        r->id = dup0(ev->tool_call->call_id);
        r->name = dup0(ev->tool_call->name);
        r->text = dup0(ev->tool_call->input);
        r->blob = ev->tool_call->input_blob.len == 32;
        break;
    case PTB__V1__EVENT__BODY_TOOL_RESULT:
        r->id = dup0(ev->tool_result->call_id);
        r->text = dup0(ev->tool_result->output);
        r->is_error = ev->tool_result->is_error;
        r->bytes = ev->tool_result->output_bytes;
        r->blob = ev->tool_result->output_blob.len == 32;
        break;
    case PTB__V1__EVENT__BODY_AGENT_MESSAGE:
        r->role = dup0(ev->agent_message->role);
        r->text = dup0(ev->agent_message->text);
        r->name = dup0(ev->agent_message->model);
        r->id = dup0(ev->agent_message->session_id);
        break;
    case PTB__V1__EVENT__BODY_AGENT_USAGE:
        r->name = dup0(ev->agent_usage->model);
        r->in = ev->agent_usage->input_tokens;
        r->out = ev->agent_usage->output_tokens;
        r->cache_read = ev->agent_usage->cache_read_tokens;
        r->cache_write = ev->agent_usage->cache_write_tokens;
        r->total = ev->agent_usage->session_total;
        r->cost = ev->agent_usage->cost_usd;
        break;
    case PTB__V1__EVENT__BODY_GAP:
        r->reason = dup0(ev->gap->reason);
        r->text = dup0(ev->gap->detail);
        r->count = ev->gap->count;
        r->bytes = ev->gap->bytes;
        break;
    default: fail_msg("unexpected event type %u", ev->body_case);
    }
    return 0;
}

static void recs_free(recs *rs)
{
    for (size_t i = 0; i < rs->n; i++) {
        free(rs->r[i].id);
        free(rs->r[i].name);
        free(rs->r[i].text);
        free(rs->r[i].role);
        free(rs->r[i].reason);
    }
    free(rs->r);
    memset(rs, 0, sizeof *rs);
}

/* The i-th event of a type (from 0), or fail. */
static const rec *recs_nth(const recs *rs, uint32_t type, size_t nth)
{
    for (size_t i = 0; i < rs->n; i++)
        if (rs->r[i].type == type && nth-- == 0)
            return &rs->r[i];
    fail_msg("no event %zu of type %u", nth, type);
    return NULL;
}

static const rec *recs_gap(const recs *rs, const char *reason)
{
    for (size_t i = 0; i < rs->n; i++)
        if (rs->r[i].type == PTB__V1__EVENT__BODY_GAP && strcmp(rs->r[i].reason, reason) == 0)
            return &rs->r[i];
    return NULL;
}

static agent_parser *parser_new(agent_format f, recs *rs)
{
    agent_options o;
    agent_options_default(&o);
    o.format = f;
    o.sink = rec_sink;
    o.sink_arg = rs;
    o.name = "test";
    agent_parser *p = NULL;
    assert_int_equal(agent_parser_new(&o, &p), 0);
    return p;
}

/* Parse a whole text (lines separated by '\n') with format f. */
static void parse_text(agent_format f, const char *text, size_t len, recs *rs, agent_stats *st,
                       agent_format *detected)
{
    agent_parser *p = parser_new(f, rs);
    assert_int_equal(agent_parser_write(p, text, len, 1000), 0);
    assert_int_equal(agent_parser_finish(p, 2000), 0);
    agent_parser_stats(p, st);
    if (detected)
        *detected = agent_parser_format(p);
    agent_parser_free(p);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* ------------------------------------------------------------------ per format, table-driven */

typedef struct format_case {
    const char *file;
    agent_format format;
    uint64_t lines, calls, results, paired, messages, usages, unknown, ignored;
    const char *call_ids;   /* the calls' ids in order, space-separated */
    const char *call_names; /* their names */
    const char *errors;     /* is_error of the results in order: "01" */
    const char *roles;      /* the messages' roles in order, space-separated */
    uint64_t usage_in, usage_out, usage_cache_read; /* of the first usage */
} format_case;

static const format_case format_cases[] = {
    {"codex.jsonl", AGENT_FORMAT_CODEX, 20, 5, 5, 5, 5, 1, 2, 3,
     "item_1 item_2 item_3 item_4 item_5",
     "command_execution command_execution file_change mcp__docs__search web_search", "01000",
     "system thinking assistant error error", 24763 - 24448, 122, 24448},
    {"gemini.jsonl", AGENT_FORMAT_GEMINI, 12, 2, 2, 2, 6, 1, 1, 0,
     "run_shell_command-1760097602000-1 read_file-1760097603000-2", "run_shell_command read_file",
     "01", "system user assistant error assistant result", 500, 300, 1000},
    {"opencode.jsonl", AGENT_FORMAT_OPENCODE, 9, 2, 2, 2, 3, 1, 1, 2, "toolu_01Oc1 toolu_01Oc2",
     "bash read", "01", "thinking assistant error", 1200, 100, 9000},
};

static void join_field(const recs *rs, uint32_t type, size_t off, char *out, size_t cap)
{
    out[0] = '\0';
    for (size_t i = 0; i < rs->n; i++) {
        if (rs->r[i].type != type)
            continue;
        const char *v = *(char *const *)((const char *)&rs->r[i] + off);
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "%s%s", l ? " " : "", v);
    }
}

static const char *fixture_dir(void)
{
    static char dir[4096];
    const char *src = getenv("PTB_SOURCE_DIR");
    snprintf(dir, sizeof dir, "%s/tests/unit/runner/agent-fixtures", src ? src : ".");
    return dir;
}

static void test_formats(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof format_cases / sizeof format_cases[0]; k++) {
        const format_case *c = &format_cases[k];
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", fixture_dir(), c->file);
        size_t len;
        char *text = read_file(path, &len);
        assert_non_null(text);
        /* given the format, and detected from the lines */
        for (int pass = 0; pass < 2; pass++) {
            recs rs = {0};
            agent_stats st;
            agent_format det;
            parse_text(pass ? AGENT_FORMAT_AUTO : c->format, text, len, &rs, &st, &det);
            print_message("%s (%s): %llu lines, %llu calls, %llu results, %llu messages, %llu "
                          "unknown\n",
                          c->file, pass ? "auto" : "given", (unsigned long long)st.lines,
                          (unsigned long long)st.calls, (unsigned long long)st.results,
                          (unsigned long long)st.messages, (unsigned long long)st.unknown);
            assert_int_equal(det, c->format);
            assert_int_equal(st.lines, c->lines);
            assert_int_equal(st.calls, c->calls);
            assert_int_equal(st.results, c->results);
            assert_int_equal(st.paired, c->paired);
            assert_int_equal(st.messages, c->messages);
            assert_int_equal(st.usages, c->usages);
            assert_int_equal(st.unknown, c->unknown);
            assert_int_equal(st.ignored, c->ignored);
            assert_int_equal(st.broken, 0);
            assert_int_equal(st.orphan_results + st.unanswered, 0);
            char got[1024];
            join_field(&rs, PTB__V1__EVENT__BODY_TOOL_CALL, offsetof(rec, id), got, sizeof got);
            assert_string_equal(got, c->call_ids);
            join_field(&rs, PTB__V1__EVENT__BODY_TOOL_CALL, offsetof(rec, name), got, sizeof got);
            assert_string_equal(got, c->call_names);
            join_field(&rs, PTB__V1__EVENT__BODY_AGENT_MESSAGE, offsetof(rec, role), got,
                       sizeof got);
            assert_string_equal(got, c->roles);
            for (size_t i = 0; c->errors[i]; i++)
                assert_int_equal(recs_nth(&rs, PTB__V1__EVENT__BODY_TOOL_RESULT, i)->is_error,
                                 c->errors[i] == '1');
            const rec *u = recs_nth(&rs, PTB__V1__EVENT__BODY_AGENT_USAGE, 0);
            assert_int_equal(u->in, c->usage_in);
            assert_int_equal(u->out, c->usage_out);
            assert_int_equal(u->cache_read, c->usage_cache_read);
            /* each call comes before its result */
            for (size_t i = 0; i < rs.n; i++)
                if (rs.r[i].type == PTB__V1__EVENT__BODY_TOOL_RESULT) {
                    bool before = false;
                    for (size_t j = 0; j < i && !before; j++)
                        before = rs.r[j].type == PTB__V1__EVENT__BODY_TOOL_CALL &&
                                 strcmp(rs.r[j].id, rs.r[i].id) == 0;
                    assert_true(before);
                }
            recs_free(&rs);
        }
        free(text);
    }
}

/* Format-specific details the table does not hold. */
static void test_format_details(void **state)
{
    (void)state;
    char path[4200];
    size_t len;
    recs rs = {0};
    agent_stats st;
    /* Gemini: deltas joined, the line's own times, the error's message as the output */
    snprintf(path, sizeof path, "%s/gemini.jsonl", fixture_dir());
    char *text = read_file(path, &len);
    assert_non_null(text);
    parse_text(AGENT_FORMAT_GEMINI, text, len, &rs, &st, NULL);
    const rec *m = recs_nth(&rs, PTB__V1__EVENT__BODY_AGENT_MESSAGE, 2);
    assert_string_equal(m->text, "I will look at the data first.");
    assert_string_equal(m->name, "gemini-2.5-pro");
    assert_int_equal(m->ts, 1760097601000000000LL); /* 2025-10-10T12:00:01Z, the first chunk */
    assert_string_equal(recs_nth(&rs, PTB__V1__EVENT__BODY_TOOL_RESULT, 1)->text,
                        "File not found: /work/nope.txt");
    assert_string_equal(recs_nth(&rs, PTB__V1__EVENT__BODY_TOOL_CALL, 0)->text,
                        "{\"command\":\"ls data\"}");
    recs_free(&rs);
    free(text);
    /* OpenCode: a call at its start, its result at its end; cost */
    snprintf(path, sizeof path, "%s/opencode.jsonl", fixture_dir());
    text = read_file(path, &len);
    parse_text(AGENT_FORMAT_OPENCODE, text, len, &rs, &st, NULL);
    assert_int_equal(recs_nth(&rs, PTB__V1__EVENT__BODY_TOOL_CALL, 0)->ts,
                     1767036060000LL * 1000000);
    assert_int_equal(recs_nth(&rs, PTB__V1__EVENT__BODY_TOOL_RESULT, 0)->ts,
                     1767036060900LL * 1000000);
    assert_string_equal(recs_nth(&rs, PTB__V1__EVENT__BODY_TOOL_RESULT, 1)->text,
                        "File not found: /work/nope");
    const rec *u = recs_nth(&rs, PTB__V1__EVENT__BODY_AGENT_USAGE, 0);
    assert_true(u->cost > 0.0122 && u->cost < 0.0124);
    assert_int_equal(u->cache_write, 300);
    recs_free(&rs);
    free(text);
    /* Codex: the caller's time; the input without the outputs; the exit code */
    snprintf(path, sizeof path, "%s/codex.jsonl", fixture_dir());
    text = read_file(path, &len);
    parse_text(AGENT_FORMAT_CODEX, text, len, &rs, &st, NULL);
    const rec *c = recs_nth(&rs, PTB__V1__EVENT__BODY_TOOL_CALL, 0);
    assert_int_equal(c->ts, 1000);
    assert_string_equal(c->text, "{\"command\":\"bash -lc ls data\"}");
    assert_string_equal(recs_nth(&rs, PTB__V1__EVENT__BODY_TOOL_RESULT, 0)->text,
                        "train.jsonl\ntest.jsonl\n");
    assert_string_equal(recs_nth(&rs, PTB__V1__EVENT__BODY_TOOL_RESULT, 3)->text,
                        "LoRA: low-rank adaptation");
    recs_free(&rs);
    free(text);
}

/* ------------------------------------------------------------------ the real Claude data */

static const char *data_dir(void)
{
    static char dir[4096];
    const char *d = getenv("PTB_TEST_DATA");
    snprintf(dir, sizeof dir, "%s/agent-streams", d ? d : "../shared/data");
    return dir;
}

/* The fixtures are pretty-printed single messages: each compacted to one line. */
static char *compact_file(const char *path, size_t *len)
{
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j)
        return NULL;
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    *len = strlen(s);
    return s;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_claude_fixtures(void **state)
{
    (void)state;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/claude-code-fixtures", data_dir());
    DIR *d = opendir(dir);
    if (!d) {
        print_message("SKIP: no %s (set PTB_TEST_DATA)\n", dir);
        skip();
    }
    char *names[64];
    size_t nn = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && nn < 64)
        if (strstr(e->d_name, ".json") && !strstr(e->d_name, ".ndjson"))
            names[nn++] = strdup(e->d_name);
    closedir(d);
    qsort(names, nn, sizeof *names, cmp_str);
    assert_true(nn >= 20);
    /* all of them as one stream; and each alone, the format detected */
    char *all = NULL;
    size_t all_len = 0;
    for (size_t i = 0; i < nn; i++) {
        char path[4500];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        size_t len = 0;
        char *line = compact_file(path, &len);
        assert_non_null(line);
        all = realloc(all, all_len + len + 2);
        memcpy(all + all_len, line, len);
        all_len += len;
        all[all_len++] = '\n';
        recs rs = {0};
        agent_stats st;
        agent_format det;
        parse_text(AGENT_FORMAT_AUTO, line, len, &rs, &st, &det);
        assert_int_equal(det, AGENT_FORMAT_CLAUDE); /* or the fallback for fragments */
        assert_int_equal(st.broken, 0);
        free(line);
        recs_free(&rs);
    }
    recs rs = {0};
    agent_stats st;
    parse_text(AGENT_FORMAT_CLAUDE, all, all_len, &rs, &st, NULL);
    print_message("claude fixtures: %zu messages, %llu calls (%llu without id), %llu results "
                  "(%llu paired), %llu messages, %llu usages, %llu unknown\n",
                  nn, (unsigned long long)st.calls, (unsigned long long)st.calls_no_id,
                  (unsigned long long)st.results, (unsigned long long)st.paired,
                  (unsigned long long)st.messages, (unsigned long long)st.usages,
                  (unsigned long long)st.unknown);
    /* assistant_message, nested_content_blocks (2), tool_use_block_missing_id */
    assert_int_equal(st.calls, 4);
    assert_int_equal(st.calls_no_id, 1);
    assert_int_equal(st.results, 1); /* user_message answers assistant_message's call */
    assert_int_equal(st.paired, 1);
    assert_int_equal(st.orphan_results, 0);
    assert_int_equal(st.unanswered, 2); /* toolu_01First, toolu_02Second: no result there */
    assert_non_null(recs_gap(&rs, "call_without_result"));
    assert_true(st.unknown >= 3); /* future_block_type, unknown_future_type, future_message_type */
    assert_int_equal(st.broken, 0);
    const rec *r = recs_nth(&rs, PTB__V1__EVENT__BODY_TOOL_RESULT, 0);
    assert_string_equal(r->id, "toolu_01BeipFBP3sUY3EAwVg3qQnE");
    assert_non_null(strstr(r->text, "total 1976"));
    recs_free(&rs);
    free(all);
    for (size_t i = 0; i < nn; i++)
        free(names[i]);
}

static void test_claude_golden(void **state)
{
    (void)state;
    char path[4200];
    snprintf(path, sizeof path, "%s/claude-code-fixtures/golden/basic_query.ndjson", data_dir());
    size_t len;
    char *text = read_file(path, &len);
    if (!text) {
        print_message("SKIP: no %s\n", path);
        skip();
    }
    recs rs = {0};
    agent_stats st;
    agent_format det;
    parse_text(AGENT_FORMAT_AUTO, text, len, &rs, &st, &det);
    assert_int_equal(det, AGENT_FORMAT_CLAUDE);
    assert_int_equal(st.messages, 3); /* system, assistant "4", result "4" */
    const rec *m = recs_nth(&rs, PTB__V1__EVENT__BODY_AGENT_MESSAGE, 1);
    assert_string_equal(m->role, "assistant");
    assert_string_equal(m->text, "4");
    assert_string_equal(m->name, "claude-opus-4-5-20251101");
    assert_string_equal(m->id, "1d1e46f9-35c7-4834-b529-846d5bb82288");
    assert_string_equal(recs_nth(&rs, PTB__V1__EVENT__BODY_AGENT_MESSAGE, 2)->role, "result");
    assert_int_equal(st.usages, 2); /* the message's, then the session's total with its cost */
    const rec *u = recs_nth(&rs, PTB__V1__EVENT__BODY_AGENT_USAGE, 0);
    assert_int_equal(u->out, 5);
    assert_int_equal(u->cache_write, 21570);
    assert_false(u->total);
    u = recs_nth(&rs, PTB__V1__EVENT__BODY_AGENT_USAGE, 1);
    assert_int_equal(u->out, 25);
    assert_true(u->total);
    assert_true(u->cost > 0.1354 && u->cost < 0.1355);
    recs_free(&rs);
    free(text);
}

/* The tool_use and tool_result ids of a transcript, found by walking its JSON here. */
static void transcript_ids(const char *text, size_t len, char ***uses, size_t *nu, char ***res,
                           size_t *nr)
{
    *nu = *nr = 0;
    *uses = *res = NULL;
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t l = nl ? (size_t)(nl - (text + at)) : len - at;
        json_t *j = json_loadb(text + at, l, 0, NULL);
        json_t *content = json_object_get(json_object_get(j, "message"), "content");
        size_t i;
        json_t *b;
        json_array_foreach(content, i, b)
        {
            const char *t = json_string_value(json_object_get(b, "type"));
            if (t && strcmp(t, "tool_use") == 0) {
                *uses = realloc(*uses, (*nu + 1) * sizeof **uses);
                (*uses)[(*nu)++] = strdup(json_string_value(json_object_get(b, "id")));
            } else if (t && strcmp(t, "tool_result") == 0) {
                *res = realloc(*res, (*nr + 1) * sizeof **res);
                (*res)[(*nr)++] = strdup(json_string_value(json_object_get(b, "tool_use_id")));
            }
        }
        json_decref(j);
        at += l + 1;
    }
}

static void test_claude_transcripts(void **state)
{
    (void)state;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/claude-code-transcripts", data_dir());
    DIR *d = opendir(dir);
    if (!d) {
        print_message("SKIP: no %s (set PTB_TEST_DATA)\n", dir);
        skip();
    }
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d)) != NULL) {
        if (!strstr(e->d_name, ".jsonl"))
            continue;
        char path[4500];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len;
        char *text = read_file(path, &len);
        assert_non_null(text);
        char **uses, **res;
        size_t nu, nr;
        transcript_ids(text, len, &uses, &nu, &res, &nr);
        recs rs = {0};
        agent_stats st;
        agent_format det;
        parse_text(AGENT_FORMAT_AUTO, text, len, &rs, &st, &det);
        print_message("%s: %llu lines, %llu tool calls, %llu results, %llu paired, %llu "
                      "messages, %llu usages, %llu ignored, %llu unknown, %llu broken\n",
                      e->d_name, (unsigned long long)st.lines, (unsigned long long)st.calls,
                      (unsigned long long)st.results, (unsigned long long)st.paired,
                      (unsigned long long)st.messages, (unsigned long long)st.usages,
                      (unsigned long long)st.ignored, (unsigned long long)st.unknown,
                      (unsigned long long)st.broken);
        assert_int_equal(det, AGENT_FORMAT_CLAUDE_TRANSCRIPT);
        assert_int_equal(st.broken, 0);
        assert_int_equal(st.unknown, 0);
        assert_int_equal(st.calls, nu);
        assert_int_equal(st.results, nr);
        assert_int_equal(st.paired, nr);
        assert_int_equal(st.orphan_results, 0);
        for (size_t i = 0; i < nu; i++) {
            bool found = false;
            for (size_t k = 0; k < rs.n && !found; k++)
                found = rs.r[k].type == PTB__V1__EVENT__BODY_TOOL_CALL &&
                        strcmp(rs.r[k].id, uses[i]) == 0 && rs.r[k].name[0];
            assert_true(found);
            free(uses[i]);
        }
        for (size_t i = 0; i < nr; i++)
            free(res[i]);
        free(uses);
        free(res);
        /* every event has the line's own time (2026), not the caller's */
        for (size_t k = 0; k < rs.n; k++)
            if (rs.r[k].type != PTB__V1__EVENT__BODY_GAP)
                assert_true(rs.r[k].ts > 1767225600LL * 1000000000);
        assert_true(st.usages > 0 && st.usages < st.lines);
        recs_free(&rs);
        free(text);
        files++;
    }
    closedir(d);
    assert_true(files >= 3);
}

/* ------------------------------------------------------------------ broken input */

static void test_broken_lines(void **state)
{
    (void)state;
    static const char text[] =
        "{\"type\":\"assistant\",\"message\":{\"id\":\"m1\",\"content\":[{\"type\":\"tool_use\","
        "\"id\":\"t1\",\"name\":\"Bash\",\"input\":{\"command\":\"ls\"}}]},\"session_id\":\"s\"}\n"
        "\n   \r\n"
        "not json at all\n"
        "[1,2,3]\n"
        "{\"type\":\"user\",\"message\":{\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":"
        "\"t9\","
        "\"content\":\"orphan\"}]}}\n"
        "{\"type\":\"user\",\"message\":{\"content\":[{\"type\":\"tool_res"; /* cut, no '\n' */
    recs rs = {0};
    agent_stats st;
    parse_text(AGENT_FORMAT_CLAUDE, text, sizeof text - 1, &rs, &st, NULL);
    assert_int_equal(st.lines, 7);
    assert_int_equal(st.blank, 2);
    assert_int_equal(st.broken, 3);
    const rec *g = recs_gap(&rs, "truncated_line");
    assert_non_null(g);
    assert_non_null(strstr(g->text, "line 7"));
    assert_int_equal(g->bytes, strlen(strrchr(text, '\n') + 1));
    g = recs_gap(&rs, "bad_line");
    assert_non_null(g);
    assert_non_null(strstr(g->text, "line 4"));
    assert_non_null(recs_gap(&rs, "result_without_call"));
    g = recs_gap(&rs, "call_without_result");
    assert_non_null(g);
    assert_int_equal(g->count, 1);
    assert_non_null(strstr(g->text, "t1"));
    assert_int_equal(st.gaps, 5);
    recs_free(&rs);

    /* a line over line_max is dropped, the next one parsed */
    agent_options o;
    agent_options_default(&o);
    o.format = AGENT_FORMAT_CLAUDE;
    o.sink = rec_sink;
    o.sink_arg = &rs;
    o.line_max = 100;
    agent_parser *p = NULL;
    assert_int_equal(agent_parser_new(&o, &p), 0);
    char big[300];
    memset(big, 'x', sizeof big);
    assert_int_equal(agent_parser_write(p, big, sizeof big, 1), 0);
    assert_int_equal(agent_parser_write(p, big, sizeof big, 1), 0);
    static const char ok[] = "\n{\"type\":\"system\",\"subtype\":\"init\"}\n";
    assert_int_equal(agent_parser_write(p, ok, sizeof ok - 1, 1), 0);
    assert_int_equal(agent_parser_finish(p, 2), 0);
    agent_parser_stats(p, &st);
    assert_int_equal(st.lines, 2);
    assert_int_equal(st.broken, 1);
    assert_int_equal(st.messages, 1);
    g = recs_gap(&rs, "line_too_long");
    assert_non_null(g);
    assert_int_equal(g->bytes, 600);
    assert_int_equal(agent_parser_feed(p, "{}", 2, 3), PTB_EINVAL); /* finished */
    agent_parser_free(p);
    recs_free(&rs);

    /* many broken lines: AGENT_GAPS_MAX gaps, then one for the rest */
    size_t n = AGENT_GAPS_MAX + 50;
    char *junk = malloc(n * 4);
    for (size_t i = 0; i < n; i++)
        memcpy(junk + 4 * i, "{{{\n", 4);
    parse_text(AGENT_FORMAT_AUTO, junk, n * 4, &rs, &st, NULL);
    assert_int_equal(st.broken, n);
    assert_int_equal(st.gaps, AGENT_GAPS_MAX + 1);
    assert_int_equal(rs.r[rs.n - 1].count, 50);
    recs_free(&rs);
    free(junk);
}

/* A tool result of several MB, fed in odd-sized chunks into a real store: the output is a blob,
 * the inline prefix bounded, and the blob holds it all. */
static void test_big_line_store(void **state)
{
    (void)state;
    char dir[] = "/tmp/ptb-agent-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char sdir[64];
    snprintf(sdir, sizeof sdir, "%s/s.ptb", dir);
    store *s = NULL;
    assert_int_equal(store_open(sdir, NULL, STORE_CREATE, &s), 0);
    size_t big = (size_t)6 << 20;
    char *out = malloc(big + 1);
    for (size_t i = 0; i < big; i++)
        out[i] = (char)('a' + i % 23);
    for (size_t i = 4000; i < big; i += 4000)
        out[i] = '\n';
    out[big] = '\0';
    json_t *line = json_pack("{s:s, s:{s:[{s:s, s:s, s:s}]}}", "type", "user", "message", "content",
                             "type", "tool_result", "tool_use_id", "t1", "content", out);
    char *l = json_dumps(line, JSON_COMPACT);
    json_decref(line);
    char pre[512];
    int pl = snprintf(pre, sizeof pre,
                      "{\"type\":\"assistant\",\"message\":{\"id\":\"m\",\"content\":[{\"type\":"
                      "\"tool_use\",\"id\":\"t1\",\"name\":\"Read\",\"input\":{\"k\":"
                      "\"sk-ant-api03-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}}]}}\n");
    agent_options o;
    agent_options_default(&o);
    o.s = s;
    agent_parser *p = NULL;
    assert_int_equal(agent_parser_new(&o, &p), 0);
    assert_int_equal(agent_parser_write(p, pre, (size_t)pl, 5), 0);
    size_t ll = strlen(l), step = 1;
    for (size_t at = 0; at < ll; at += step, step = step * 3 + 1)
        assert_int_equal(agent_parser_write(p, l + at, at + step > ll ? ll - at : step, 5), 0);
    assert_int_equal(agent_parser_write(p, "\n", 1, 5), 0);
    assert_int_equal(agent_parser_finish(p, 6), 0);
    agent_stats st;
    agent_parser_stats(p, &st);
    assert_int_equal(st.paired, 1);
    assert_int_equal(st.blobs, 1);
    assert_int_equal(st.redacted, 1);
    agent_parser_free(p);
    assert_int_equal(store_flush(s), 0);
    store_txn *t = NULL;
    assert_int_equal(store_txn_begin(s, &t), 0);
    const ptb_event *ev = NULL;
    assert_int_equal(store_event_get(t, 1, &ev), 0);
    assert_int_equal(ev->body_case, PTB__V1__EVENT__BODY_TOOL_CALL);
    assert_null(strstr(ev->tool_call->input, "AAAAAAAAAAAAAAAAAAAA")); /* redacted */
    assert_non_null(strstr(ev->tool_call->input, "<secret:anthropic:"));
    assert_int_equal(store_event_get(t, 2, &ev), 0);
    assert_int_equal(ev->body_case, PTB__V1__EVENT__BODY_TOOL_RESULT);
    assert_int_equal(ev->tool_result->output_bytes, big);
    assert_int_equal(strlen(ev->tool_result->output), AGENT_INLINE_MAX);
    assert_int_equal(ev->tool_result->output_blob.len, 32);
    void *blob = NULL;
    size_t bl = 0;
    assert_int_equal(store_blob_get(t, ev->tool_result->output_blob.data, &blob, &bl), 0);
    assert_int_equal(bl, big);
    assert_memory_equal(blob, out, big);
    free(blob);
    store_txn_end(t);
    assert_int_equal(store_close(s), 0);
    free(l);
    free(out);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* The same stream fed whole, line by line, and byte by byte gives the same events. */
static void test_split_anywhere(void **state)
{
    (void)state;
    char path[4200];
    snprintf(path, sizeof path, "%s/opencode.jsonl", fixture_dir());
    size_t len = 0;
    char *text = read_file(path, &len);
    assert_non_null(text);
    recs whole = {0}, bytes = {0};
    agent_stats st;
    parse_text(AGENT_FORMAT_AUTO, text, len, &whole, &st, NULL);
    agent_parser *p = parser_new(AGENT_FORMAT_AUTO, &bytes);
    for (size_t i = 0; i < len; i++)
        assert_int_equal(agent_parser_write(p, text + i, 1, 1000), 0);
    assert_int_equal(agent_parser_finish(p, 2000), 0);
    agent_parser_free(p);
    assert_int_equal(whole.n, bytes.n);
    for (size_t i = 0; i < whole.n; i++) {
        assert_int_equal(whole.r[i].type, bytes.r[i].type);
        assert_int_equal(whole.r[i].ts, bytes.r[i].ts);
        if (whole.r[i].text)
            assert_string_equal(whole.r[i].text, bytes.r[i].text);
    }
    recs_free(&whole);
    recs_free(&bytes);
    free(text);
}

static void test_iso_time(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t ns;
    } cases[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"2026-02-08T05:37:27.044Z", 1770529047044000000LL},
        {"2026-02-08T05:37:27Z", 1770529047000000000LL},
        {"2026-02-08T07:37:27.5+02:00", 1770529047500000000LL},
        {"2026-02-08T00:37:27-0500", 1770529047000000000LL},
        {"2026-02-08T05:37:27.123456789123Z", 1770529047123456789LL},
        {"2026-02-08 05:37:27", 1770529047000000000LL},
        {"2026-13-08T05:37:27Z", 0},
        {"2026-02-08T05:37", 0},
        {"2026-02-08T05:37:27Zjunk", 0},
        {"2026-02-08T05:37:27.Z", 0},
        {"", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(agent_time_iso(cases[i].s, strlen(cases[i].s)), cases[i].ns);
}

static void test_names_and_options(void **state)
{
    (void)state;
    for (int f = 0; f < AGENT_FORMAT_COUNT; f++) {
        agent_format back;
        assert_int_equal(agent_format_from_name(agent_format_name((agent_format)f), &back), 0);
        assert_int_equal(back, f);
    }
    agent_format x;
    assert_int_equal(agent_format_from_name("claude-code", &x), PTB_EINVAL);
    agent_options o;
    agent_options_default(&o);
    agent_parser *p = NULL;
    assert_int_equal(agent_parser_new(&o, &p), PTB_EINVAL); /* no store, no sink */
    assert_null(p);
    static const struct {
        const char *line;
        agent_format f;
    } det[] = {
        {"{\"type\":\"thread.started\",\"thread_id\":\"x\"}", AGENT_FORMAT_CODEX},
        {"{\"type\":\"init\",\"timestamp\":\"2025-01-01T00:00:00Z\",\"session_id\":\"s\"}",
         AGENT_FORMAT_GEMINI},
        {"{\"type\":\"text\",\"sessionID\":\"s\",\"part\":{}}", AGENT_FORMAT_OPENCODE},
        {"{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"s\"}", AGENT_FORMAT_CLAUDE},
        {"{\"type\":\"user\",\"sessionId\":\"s\",\"message\":{}}", AGENT_FORMAT_CLAUDE_TRANSCRIPT},
        {"{\"type\":\"user\",\"message\":{}}", AGENT_FORMAT_AUTO},
        {"nonsense", AGENT_FORMAT_AUTO},
    };
    for (size_t i = 0; i < sizeof det / sizeof det[0]; i++)
        assert_int_equal(agent_format_detect(det[i].line, strlen(det[i].line)), det[i].f);
}

/* A sink that fails stops the parser with its error. */
static int failing_sink(void *arg, const ptb_event *ev)
{
    (void)arg;
    (void)ev;
    return PTB_ENOSPC;
}

static void test_sink_error(void **state)
{
    (void)state;
    agent_options o;
    agent_options_default(&o);
    o.format = AGENT_FORMAT_CLAUDE;
    o.sink = failing_sink;
    agent_parser *p = NULL;
    assert_int_equal(agent_parser_new(&o, &p), 0);
    static const char l[] = "{\"type\":\"system\"}\n";
    assert_int_equal(agent_parser_write(p, l, sizeof l - 1, 1), PTB_ENOSPC);
    assert_int_equal(agent_parser_feed(p, l, sizeof l - 2, 1), PTB_ENOSPC);
    assert_int_equal(agent_parser_finish(p, 1), PTB_ENOSPC);
    assert_non_null(strstr(agent_parser_errmsg(p), "sink"));
    agent_parser_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_format_details),
        cmocka_unit_test(test_claude_fixtures),
        cmocka_unit_test(test_claude_golden),
        cmocka_unit_test(test_claude_transcripts),
        cmocka_unit_test(test_broken_lines),
        cmocka_unit_test(test_big_line_store),
        cmocka_unit_test(test_split_anywhere),
        cmocka_unit_test(test_iso_time),
        cmocka_unit_test(test_names_and_options),
        cmocka_unit_test(test_sink_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
