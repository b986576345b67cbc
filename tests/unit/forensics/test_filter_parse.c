/* Filter parser: valid filters print canonically; invalid ones fail at the expected column
 * with the expected message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "filter_ast.h"
#include "ptb_error.h"

static const struct {
    const char *in, *out;
} valid[] = {
    {"", ""},
    {"   ", ""},
    {"evt.type = file.write", "evt.type = \"file.write\""},
    {"evt.type == file.write", "evt.type = \"file.write\""},
    {"evt.seq > 10 and evt.seq <= 0x20", "(evt.seq > 10 and evt.seq <= 32)"},
    {"a.b = 1", NULL}, /* unknown field: invalid, checked below */
    {"file.path startswith '/data/' or file.path endswith \".py\"",
     "(file.path startswith \"/data/\" or file.path endswith \".py\")"},
    {"not proc.exe glob '*python*'", "not proc.exe glob \"*python*\""},
    {"NOT (evt.type in (file.read, file.write)) AND proc.exec_id exists",
     "(not evt.type in (\"file.read\", \"file.write\") and proc.exec_id exists)"},
    {"a = 1 or b = 2", NULL},
    {"evt.seq = 1 or evt.seq = 2 and evt.seq = 3",
     "(evt.seq = 1 or (evt.seq = 2 and evt.seq = 3))"},
    {"(evt.seq = 1 or evt.seq = 2) and evt.seq = 3",
     "((evt.seq = 1 or evt.seq = 2) and evt.seq = 3)"},
    {"evt.seq=1 and (evt.seq=2 and evt.seq=3)", "(evt.seq = 1 and evt.seq = 2 and evt.seq = 3)"},
    {"tool.input contains 'it\\'s \\\"q\\\" \\x41\\n'",
     "tool.input contains \"it's \\\"q\\\" A\\n\""},
    {"tool.input icontains HeLLo", "tool.input icontains \"hello\""},
    {"file.sha256 startswith ABCD", "file.sha256 startswith \"abcd\""},
    {"evt.time >= 2026-11-26T10:00:00Z", "evt.time >= 1795687200000000000"},
    {"evt.time < '2026-11-26T10:00:00.5+01:00'", "evt.time < 1795683600500000000"},
    {"evt.time > 1795687200000000000", "evt.time > 1795687200000000000"},
    {"evt.source = pcap", "evt.source = \"pcap\""},
    {"gap.reason = drops", "gap.reason = \"drops\""},
    {"net.flow.dst.port = 443", "net.flow.dst.port = 443"},
    {"proc.exit.exit_code != -1", "proc.exit.exit_code != -1"},
    {"checkpoint.files.sha256 exists", "checkpoint.files.sha256 exists"},
    {"agent.usage.cost_usd > 0.5", "agent.usage.cost_usd > 0.5"},
    {"proc.exec.first_seen = true", "proc.exec.first_seen = true"},
    {"net.ip in ('10.0.0.1',\"1.2.3.4\" , 8.8.8.8)",
     "net.ip in (\"10.0.0.1\", \"1.2.3.4\", \"8.8.8.8\")"},
    {"evt.type glob 'file.*'", "evt.type glob \"file.*\""},
    {"proc.cmdline contains 'and'", "proc.cmdline contains \"and\""},
    {"tool.name = and", "tool.name = \"and\""},
    {"not not evt.seq = 1", "not not evt.seq = 1"},
};

static void test_valid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        if (!valid[i].out)
            continue;
        filter *f = NULL;
        filter_error err;
        int rc = filter_parse(valid[i].in, &f, &err);
        if (rc != 0)
            fail_msg("'%s': col %d: %s", valid[i].in, err.column, err.msg);
        char buf[512];
        filter_print(f, buf, sizeof buf);
        if (strcmp(buf, valid[i].out) != 0)
            fail_msg("'%s' printed as '%s', want '%s'", valid[i].in, buf, valid[i].out);
        /* the canonical form parses to itself */
        filter *g = NULL;
        assert_int_equal(filter_parse(buf, &g, &err), 0);
        char buf2[512];
        filter_print(g, buf2, sizeof buf2);
        assert_string_equal(buf, buf2);
        filter_free(g);
        filter_free(f);
    }
}

static const struct {
    const char *in;
    int column;
    const char *msg; /* expected prefix */
} invalid[] = {
    {"evt.seq =", 10, "expected a value after '='"},
    {"evt.seq = and", 0, NULL}, /* "and" is a value here: not a number */
    {"file.path = ", 13, "expected a value after '='"},
    {"foo.bar = 1", 1, "unknown field 'foo.bar'"},
    {"evt.type = file.wrote", 12, "unknown event type 'file.wrote'"},
    {"evt.source = disk", 14, "unknown source 'disk'"},
    {"evt.seq = abc", 11, "'abc' is not a number"},
    {"evt.seq contains 1", 9, "'contains' needs a text field"},
    {"evt.seq = 1 evt.seq = 2", 13, "unexpected 'evt.seq'"},
    {"(evt.seq = 1", 13, "expected ')' to close the '(' at column 1"},
    {"evt.seq = 1)", 12, "unexpected ')'"},
    {"evt.seq = 1 and", 16, "expected a condition after 'and'"},
    {"file.path = 'abc", 13, "unterminated string"},
    {"file.path = 'a\\qb'", 15, "unknown escape"},
    {"file.path ! 'a'", 11, "'!' must be followed by '='"},
    {"file.path in 'a'", 14, "expected '(' after 'in'"},
    {"file.path in ('a' 'b')", 19, "expected ',' or ')'"},
    {"file.path in ()", 15, "expected a value in the list"},
    {"file.path", 10, "expected an operator after 'file.path'"},
    {"= 3", 1, "expected a field name"},
    {"gap.reason.x = 1", 1, "unknown field"},
    {"file.write.path_sid = 1", 1, "unknown field"},
    {"net.flow.dst = 1", 1, "unknown field"},
    {"evt.time > yesterday", 12, "'yesterday' is not a time"},
    {"proc.exec.first_seen = maybe", 24, "'maybe' is not true or false"},
};

static void test_invalid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        filter *f = NULL;
        filter_error err;
        int rc = filter_parse(invalid[i].in, &f, &err);
        if (rc != PTB_EPARSE)
            fail_msg("'%s' parsed (rc %d)", invalid[i].in, rc);
        assert_null(f);
        if (!invalid[i].msg)
            continue;
        if (err.column != invalid[i].column ||
            strncmp(err.msg, invalid[i].msg, strlen(invalid[i].msg)) != 0)
            fail_msg("'%s': got col %d '%s', want col %d '%s'", invalid[i].in, err.column, err.msg,
                     invalid[i].column, invalid[i].msg);
    }
}

static void test_depth(void **state)
{
    (void)state;
    char buf[4096];
    size_t n = 0;
    for (int i = 0; i < 1000; i++)
        buf[n++] = '(';
    buf[n] = '\0';
    filter *f;
    filter_error err;
    assert_int_equal(filter_parse(buf, &f, &err), PTB_EPARSE);
    assert_non_null(strstr(err.msg, "nested too deeply"));
    n = 0;
    for (int i = 0; i < 500; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "not ");
    snprintf(buf + n, sizeof buf - n, "evt.seq = 1");
    assert_int_equal(filter_parse(buf, &f, &err), PTB_EPARSE);
}

static const struct {
    const char *in;
    int64_t ns;
} times[] = {
    {"1970-01-01T00:00:00Z", 0},
    {"1970-01-01", 0},
    {"2000-03-01T00:00:00Z", 951868800LL * 1000000000},
    {"2026-11-26T10:00:00Z", 1795687200LL * 1000000000},
    {"2026-11-26 10:00:00.000000001Z", 1795687200LL * 1000000000 + 1},
    {"2026-11-26T12:00:00+02:00", 1795687200LL * 1000000000},
    {"2026-11-26T10:00:00.25", 1795687200LL * 1000000000 + 250000000},
    {"123", 123},
};

static void test_times(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        int64_t ns = -1;
        assert_int_equal(query_time_parse(times[i].in, strlen(times[i].in), &ns), 0);
        if (ns != times[i].ns)
            fail_msg("%s: %lld", times[i].in, (long long)ns);
    }
    const char *bad[] = {"",
                         "2026-13-01",
                         "2026-11-26T25:00",
                         "2026-11-26T10:00:00Zx",
                         "2026-11-26T10:00:00.",
                         "tomorrow"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ns;
        if (query_time_parse(bad[i], strlen(bad[i]), &ns) == 0)
            fail_msg("'%s' parsed", bad[i]);
    }
    char buf[64];
    query_time_format(1795687200LL * 1000000000 + 123456789, 3, buf, sizeof buf);
    assert_string_equal(buf, "2026-11-26T10:00:00.123Z");
    query_time_format(-1, 9, buf, sizeof buf);
    assert_string_equal(buf, "1969-12-31T23:59:59.999999999Z");

    const struct {
        const char *in;
        int64_t ns;
    } durs[] = {{"+2h", 7200000000000LL}, {"90s", 90000000000LL},   {"1h30m", 5400000000000LL},
                {"+500ms", 500000000LL},  {"1d", 86400000000000LL}, {"7ns", 7}};
    for (size_t i = 0; i < sizeof durs / sizeof durs[0]; i++) {
        int64_t ns;
        assert_int_equal(query_duration_parse(durs[i].in, strlen(durs[i].in), &ns), 0);
        assert_int_equal(ns, durs[i].ns);
    }
    const char *bad_d[] = {"", "+", "2", "2x", "h", "99999999999999999999s", "1h-2m"};
    for (size_t i = 0; i < sizeof bad_d / sizeof bad_d[0]; i++) {
        int64_t ns;
        if (query_duration_parse(bad_d[i], strlen(bad_d[i]), &ns) == 0)
            fail_msg("duration '%s' parsed", bad_d[i]);
    }
}

static void test_glob(void **state)
{
    (void)state;
    const struct {
        const char *pat, *s;
        bool want;
    } g[] = {
        {"*", "", true},
        {"*", "abc", true},
        {"a*c", "abbbc", true},
        {"a*c", "abbb", false},
        {"?b", "ab", true},
        {"?b", "b", false},
        {"*.py", "/x/y.py", true},
        {"[a-c]x", "bx", true},
        {"[!a-c]x", "bx", false},
        {"[]]", "]", true},
        {"\\*", "*", true},
        {"\\*", "a", false},
        {"a[", "a[", true},
        {"*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaa", false},
        {"/data/**/test*", "/data/x/y/test.jsonl", true},
    };
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++)
        if (filter_glob_match(g[i].pat, strlen(g[i].pat), g[i].s, strlen(g[i].s)) != g[i].want)
            fail_msg("glob '%s' on '%s'", g[i].pat, g[i].s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid), cmocka_unit_test(test_invalid), cmocka_unit_test(test_depth),
        cmocka_unit_test(test_times), cmocka_unit_test(test_glob),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
