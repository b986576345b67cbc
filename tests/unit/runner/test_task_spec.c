/* Task specs (runner/task_spec.h): a good spec read whole, paths resolved, defaults; every kind
 * of bad spec refused with the JSON path at fault named in the message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "task_spec.h"

static char dir[] = "/tmp/ptb-task-spec-XXXXXX";

static void put(const char *name, const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    char p[256];
    snprintf(p, sizeof p, "%s/base", dir);
    mkdir(p, 0755);
    put("base/config.json", "{}");
    put("test.jsonl", "{\"prompt\":\"1+1=\",\"answer\":\"2\"}\n");
    put("train.jsonl", "{\"prompt\":\"1+2=\",\"completion\":\"3\"}\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

#define GOOD_AGENT "\"agent\": {\"command\": [\"sh\", \"-c\", \"echo {prompt}\"]}"
#define GOOD_REST                                                                                  \
    "\"base_model\": \"base\", \"benchmark\": {\"name\": \"add\", \"test_split\": "                \
    "\"test.jsonl\"}, "                                                                            \
    "\"budget\": {\"wall_s\": 60}"

static void test_good(void **state)
{
    (void)state;
    put("good.json",
        "{\"name\": \"demo-1\", \"agent\": {\"name\": \"scripted\", \"command\": [\"agent\", "
        "\"{prompt}\"], \"stream\": \"claude\", \"credentials\": [\"ANTHROPIC_API_KEY\"], \"env\": "
        "{\"A\": \"b\"}}, \"base_model\": \"base\", \"benchmark\": {\"name\": \"add\", "
        "\"test_split\": \"test.jsonl\", \"train_split\": \"train.jsonl\", \"max_tokens\": 8}, "
        "\"prompt\": \"train {model} on {benchmark} for {num_hours} h in {workspace}, {other}\", "
        "\"budget\": {\"wall_s\": 5400, \"gpus\": 1, \"kill_after_s\": 3}, \"network\": "
        "{\"mode\": \"off\"}, \"canaries\": false}");
    char p[256];
    snprintf(p, sizeof p, "%s/good.json", dir);
    task_spec t;
    ptb_errbuf eb = {{0}};
    assert_int_equal(task_spec_load(p, &t, &eb), 0);
    assert_string_equal(t.name, "demo-1");
    assert_string_equal(t.agent_name, "scripted");
    assert_string_equal(t.agent_argv[0], "agent");
    assert_null(t.agent_argv[2]);
    assert_string_equal(t.stream, "claude");
    assert_string_equal(t.credentials[0], "ANTHROPIC_API_KEY");
    assert_string_equal(t.env[0], "A=b");
    char want[300];
    snprintf(want, sizeof want, "%s/base", dir);
    char *rd = realpath(dir, NULL);
    snprintf(want, sizeof want, "%s/base", rd);
    assert_string_equal(t.base_model, want);
    snprintf(want, sizeof want, "%s/train.jsonl", rd);
    assert_string_equal(t.train_split, want);
    free(rd);
    assert_int_equal(t.max_tokens, 8);
    assert_int_equal(t.wall_s, 5400);
    assert_int_equal(t.kill_after_s, 3);
    assert_int_equal(t.eval_wall_s, 3600);
    assert_int_equal(t.gpus, 1);
    assert_string_equal(t.net_mode, "off");
    assert_false(t.canaries);
    char *prompt = task_spec_prompt(&t, "/w");
    assert_string_equal(prompt, "train base_model/ on add for 1.5 h in /w, {other}");
    free(prompt);
    task_spec_free(&t);

    /* the smallest spec: defaults */
    put("min.json", "{\"name\": \"m\", " GOOD_AGENT ", " GOOD_REST "}");
    snprintf(p, sizeof p, "%s/min.json", dir);
    assert_int_equal(task_spec_load(p, &t, &eb), 0);
    assert_string_equal(t.stream, "none");
    assert_string_equal(t.net_mode, "ns");
    assert_true(t.canaries);
    assert_null(t.train_split);
    assert_int_equal(t.max_tokens, 32);
    assert_non_null(strstr(t.prompt, "final_model/"));
    task_spec_free(&t);
}

static void test_bad(void **state)
{
    (void)state;
    static const struct {
        const char *json, *want; /* want: in the message */
        int code;
    } cases[] = {
        {"[1]", "$: the task must be a JSON object", PTB_EPARSE},
        {"{\"name\": \"x\",", "not JSON", PTB_EPARSE},
        {"{" GOOD_AGENT ", " GOOD_REST "}", "$.name: missing", PTB_EPARSE},
        {"{\"name\": \"a b\", " GOOD_AGENT ", " GOOD_REST "}", "$.name: 'a b'", PTB_EPARSE},
        {"{\"name\": \"x\", \"agnet\": 1, " GOOD_AGENT ", " GOOD_REST "}",
         "$.agnet: unknown member", PTB_EPARSE},
        {"{\"name\": \"x\", " GOOD_REST "}", "$.agent: missing", PTB_EPARSE},
        {"{\"name\": \"x\", \"agent\": {\"command\": []}, " GOOD_REST "}",
         "$.agent.command: must be a non-empty array", PTB_EPARSE},
        {"{\"name\": \"x\", \"agent\": {\"command\": [\"a\", 2]}, " GOOD_REST "}",
         "$.agent.command[1]: must be a string", PTB_EPARSE},
        {"{\"name\": \"x\", \"agent\": {\"command\": [\"a\"], \"stream\": \"cursor\"}, " GOOD_REST
         "}",
         "$.agent.stream: 'cursor'", PTB_EPARSE},
        {"{\"name\": \"x\", \"agent\": {\"command\": [\"a\"], \"credentials\": "
         "[\"A-B\"]}, " GOOD_REST "}",
         "$.agent.credentials[0]: 'A-B' is not", PTB_EPARSE},
        {"{\"name\": \"x\", \"agent\": {\"command\": [\"a\"], \"env\": {\"A\": 1}}, " GOOD_REST "}",
         "$.agent.env.A", PTB_EPARSE},
        {"{\"name\": \"x\", " GOOD_AGENT ", \"base_model\": \"nope\", \"benchmark\": {\"name\": "
         "\"b\", \"test_split\": \"test.jsonl\"}, \"budget\": {\"wall_s\": 1}}",
         "$.base_model: ", -2 /* -ENOENT */},
        {"{\"name\": \"x\", " GOOD_AGENT ", \"base_model\": \"test.jsonl\", \"benchmark\": "
         "{\"name\": \"b\", \"test_split\": \"test.jsonl\"}, \"budget\": {\"wall_s\": 1}}",
         "is not a folder", -20 /* -ENOTDIR */},
        {"{\"name\": \"x\", " GOOD_AGENT ", \"base_model\": \"base\", \"benchmark\": {\"name\": "
         "\"b\"}, \"budget\": {\"wall_s\": 1}}",
         "$.benchmark.test_split: missing", PTB_EPARSE},
        {"{\"name\": \"x\", " GOOD_AGENT ", \"base_model\": \"base\", \"benchmark\": {\"name\": "
         "\"b\", \"test_split\": \"base\"}, \"budget\": {\"wall_s\": 1}}",
         "a folder, not a file", -21 /* -EISDIR */},
        {"{\"name\": \"x\", " GOOD_AGENT ", \"base_model\": \"base\", \"benchmark\": {\"name\": "
         "\"b\", \"test_split\": \"test.jsonl\"}, \"budget\": {}}",
         "$.budget.wall_s: missing", PTB_EPARSE},
        {"{\"name\": \"x\", " GOOD_AGENT ", \"base_model\": \"base\", \"benchmark\": {\"name\": "
         "\"b\", \"test_split\": \"test.jsonl\"}, \"budget\": {\"wall_s\": \"10h\"}}",
         "$.budget.wall_s: must be an integer in 1..", PTB_EPARSE},
        {"{\"name\": \"x\", " GOOD_AGENT ", \"base_model\": \"base\", \"benchmark\": {\"name\": "
         "\"b\", \"test_split\": \"test.jsonl\"}, \"budget\": {\"wall_s\": 0}}",
         "$.budget.wall_s: must be an integer in 1..", PTB_EPARSE},
        {"{\"name\": \"x\", " GOOD_AGENT ", " GOOD_REST ", \"network\": {\"mode\": \"host\"}}",
         "$.network.mode: 'host'", PTB_EPARSE},
        {"{\"name\": \"x\", " GOOD_AGENT ", " GOOD_REST ", \"canaries\": \"yes\"}",
         "$.canaries: must be true or false", PTB_EPARSE},
        {"{\"name\": \"x\", " GOOD_AGENT ", " GOOD_REST
         ", \"sandbox\": {\"hosts\": {\"a b\": \"host\"}}}",
         "$.sandbox.hosts.a b: not a host name", PTB_EPARSE},
        {"{\"name\": \"x\", " GOOD_AGENT ", " GOOD_REST
         ", \"sandbox\": {\"hosts\": {\"huggingface.co\": \"10.0.0.300\"}}}",
         "$.sandbox.hosts.huggingface.co: an IPv4 or IPv6 address", PTB_EPARSE},
        {"{\"name\": \"x\", " GOOD_AGENT ", " GOOD_REST
         ", \"sandbox\": {\"hosts\": {\"huggingface.co\": 3}}}",
         "$.sandbox.hosts.huggingface.co: must be a string", PTB_EPARSE},
        {"{\"name\": \"x\", " GOOD_AGENT ", " GOOD_REST ", \"sandbox\": {\"isolation\": \"x\"}}",
         "$.sandbox.isolation: 'x': auto or none", PTB_EPARSE},
        {"{\"name\": \"x\", \"name\": \"y\", " GOOD_AGENT ", " GOOD_REST "}", "duplicate",
         PTB_EPARSE},
    };
    char p[256];
    snprintf(p, sizeof p, "%s/bad.json", dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        put("bad.json", cases[i].json);
        task_spec t;
        ptb_errbuf eb = {{0}};
        int rc = task_spec_load(p, &t, &eb);
        if (rc != cases[i].code || !strstr(eb.msg, cases[i].want) || !strstr(eb.msg, "bad.json"))
            fail_msg("case %zu: rc %d, message '%s'; wanted %d and '%s'", i, rc, eb.msg,
                     cases[i].code, cases[i].want);
        task_spec_free(&t);
    }
    task_spec t;
    ptb_errbuf eb = {{0}};
    assert_int_equal(task_spec_load("/nonexistent/task.json", &t, &eb), -2);
    assert_non_null(strstr(eb.msg, "/nonexistent/task.json"));
    task_spec_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_good), cmocka_unit_test(test_bad)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
