/* event_json: the JSON form of events. Every event kind round-trips exactly (protobuf bytes
 * equal after encode -> decode) with every field set; every rejection names its key; the
 * bundled example run decodes and is in canonical form.
 *
 * With PTB_WRITE_SEEDS=DIR set, also writes the fuzz seed corpora (DIR/fuzz_event_decode/ and
 * DIR/fuzz_jsonl_import/) from the filled events: that is how tests/fuzz/corpus/ was made. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "common/event_fill.h"
#include "event_json.h"

static uint8_t *pack(const ptb_event *ev, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(&ev->base);
    uint8_t *b = malloc(*len ? *len : 1);
    protobuf_c_message_pack(&ev->base, b);
    return b;
}

static void assert_roundtrip(const ptb_event *ev)
{
    char *line;
    size_t len;
    assert_int_equal(event_json_encode_line(ev, &line, &len), 0);
    assert_int_equal(strlen(line), len);
    assert_null(strstr(line, "_sid"));
    ptb_event *back = NULL;
    ptb_errbuf eb = {{0}};
    int rc = event_json_decode_line(line, len, &back, &eb);
    if (rc)
        fail_msg("%s: %s\n%s", event_type_name(ev->body_case), eb.msg, line);
    size_t la, lb;
    uint8_t *a = pack(ev, &la), *b = pack(back, &lb);
    if (la != lb || memcmp(a, b, la) != 0)
        fail_msg("%s: packed bytes differ after the round trip\n%s", event_type_name(ev->body_case),
                 line);
    /* the json_t path gives the same object */
    json_t *j = event_json_encode(ev);
    assert_non_null(j);
    ptb_event *back2 = NULL;
    assert_int_equal(event_json_decode(j, &back2, &eb), 0);
    size_t lc;
    uint8_t *c = pack(back2, &lc);
    assert_true(lc == la && memcmp(a, c, la) == 0);
    json_decref(j);
    free(a);
    free(b);
    free(c);
    free(line);
    event_json_free(back);
    event_json_free(back2);
}

static void test_init(void **state)
{
    ptb_errbuf eb = {{0}};
    int rc = event_json_init(&eb);
    if (rc)
        fail_msg("%s", eb.msg);
    assert_true(event_type_count() >= 29);
}

static void test_roundtrip_every_type_filled(void **state)
{
    for (size_t i = 0; i < event_type_count(); i++) {
        ptb_event *ev = test_event_filled(event_type_at(i), true);
        assert_roundtrip(ev);
        event_json_free(ev);
    }
}

static void test_roundtrip_every_type_empty(void **state)
{
    for (size_t i = 0; i < event_type_count(); i++) {
        ptb_event *ev = test_event_filled(event_type_at(i), false);
        assert_roundtrip(ev);
        char *line;
        assert_int_equal(event_json_encode_line(ev, &line, NULL), 0);
        char want[128];
        snprintf(want, sizeof want, "{\"seq\":1,\"ts_ns\":%lld,\"type\":\"%s\"}",
                 (long long)ev->ts_ns, event_type_name(ev->body_case));
        assert_string_equal(line, want);
        free(line);
        event_json_free(ev);
    }
}

static ptb_event *make_file_write(void)
{
    ptb_event *ev = test_event_filled(PTB__V1__EVENT__BODY_FILE_WRITE, false);
    ev->seq = 7;
    ev->ts_ns = 1718000000000000000;
    ev->source = PTB__V1__SOURCE__SOURCE_TRACER;
    ev->exec_id = 3;
    Ptb__V1__FileWrite *w = ev->file_write;
    w->path = strdup("/w/ck\xffpt\"");
    w->bytes = 10;
    w->sha256.len = 32;
    w->sha256.data = malloc(32);
    for (int i = 0; i < 32; i++)
        w->sha256.data[i] = (uint8_t)i;
    w->captured = 1;
    w->path_sid = 9;
    return ev;
}

static void test_golden_line(void **state)
{
    ptb_event *ev = make_file_write();
    char *line;
    assert_int_equal(event_json_encode_line(ev, &line, NULL), 0);
    assert_string_equal(line,
                        "{\"seq\":7,\"ts_ns\":1718000000000000000,\"source\":\"tracer\","
                        "\"exec_id\":3,\"type\":\"file.write\",\"path\":\"/w/ck\xef\xbf\xbdpt"
                        "\\\"\",\"bytes\":10,\"sha256\":\"000102030405060708090a0b0c0d0e0f1011"
                        "12131415161718191a1b1c1d1e1f\",\"captured\":true}");
    free(line);
    event_json_free(ev);

    ev = test_event_filled(PTB__V1__EVENT__BODY_AGENT_USAGE, false);
    ev->seq = UINT64_MAX;
    ev->agent_usage->cost_usd = 0.1;
    ev->agent_usage->input_tokens = 3;
    assert_int_equal(event_json_encode_line(ev, &line, NULL), 0);
    assert_non_null(strstr(line, "\"seq\":\"18446744073709551615\""));
    assert_non_null(strstr(line, "\"input_tokens\":3,\"cost_usd\":0.1}"));
    free(line);
    ev->agent_usage->cost_usd = 3;
    assert_int_equal(event_json_encode_line(ev, &line, NULL), 0);
    assert_non_null(strstr(line, "\"cost_usd\":3.0}"));
    free(line);
    event_json_free(ev);

    /* Gap.origin next to the envelope source */
    ev = test_event_filled(PTB__V1__EVENT__BODY_GAP, false);
    ev->source = PTB__V1__SOURCE__SOURCE_IMPORT;
    ev->gap->origin = strdup("pcap");
    ev->gap->count = 5;
    assert_int_equal(event_json_encode_line(ev, &line, NULL), 0);
    assert_non_null(strstr(line, "\"source\":\"import\",\"type\":\"gap\",\"origin\":\"pcap\""));
    free(line);
    assert_roundtrip(ev);
    event_json_free(ev);
}

static void test_lenient_forms(void **state)
{
    static const char *ok[] = {
        "{\"type\":\"file.write\",\"size\":\"18446744073709551615\",\"bytes\":\"12\"}",
        "{\"type\":\"run.start\",\"budget_s\":\"-9223372036854775808\"}",
        "{\"type\":\"file.write\",\"sha256\":\"ABCDEF\"}",
        "{\"type\":\"agent.usage\",\"cost_usd\":\"NaN\"}",
        "{\"type\":\"agent.usage\",\"cost_usd\":\"-Infinity\"}",
        "{\"type\":\"agent.usage\",\"cost_usd\":2}",
        "{\"type\":\"net.packet\",\"data\":\"AQ==\",\"blob\":\"00ff\"}",
        "{\"type\":\"net.packet\",\"data\":\"\"}",
        "{\"type\":\"gap\",\"source\":7,\"origin\":\"x\"}",
        "  {\"type\":\"net.connect\",\"remote\":{}, \"local\":{\"port\":1}}\n",
        "{\"type\":\"proc.exec\",\"argv\":[],\"env\":[{\"name\":\"K\",\"redacted\":{}}]}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ptb_event *ev;
        ptb_errbuf eb = {{0}};
        if (event_json_decode_line(ok[i], strlen(ok[i]), &ev, &eb))
            fail_msg("%s: %s", ok[i], eb.msg);
        assert_roundtrip(ev);
        event_json_free(ev);
    }
}

static void test_rejections(void **state)
{
    static const struct {
        const char *line, *msg;
    } bad[] = {
        {"{\"seq\":1,\"type\":\"file.write\",\"bytes\":\"x\"}",
         "field 'bytes': expected integer or decimal string"},
        {"{\"type\":\"file.write\",\"bytes\":true}",
         "field 'bytes': expected integer, got boolean"},
        {"{\"type\":\"file.write\",\"nope\":1}", "field 'nope': unknown key"},
        {"{\"type\":\"gap\",\"gap\":{}}", "field 'gap': unknown key"},
        {"{\"type\":\"file.write\",\"path\":5}", "field 'path': expected string, got integer"},
        {"{\"type\":\"file.write\",\"path\":null}", "field 'path': expected string, got null"},
        {"{\"type\":\"proc.exit\",\"pid\":2147483648}",
         "field 'pid': integer out of range for int32"},
        {"{\"type\":\"proc.exit\",\"pid\":1.5}", "field 'pid': expected integer, got real"},
        {"{\"type\":\"file.open\",\"mode\":-1}", "field 'mode': integer out of range for uint32"},
        {"{\"type\":\"file.open\",\"mode\":4294967296}", "out of range for uint32"},
        {"{\"type\":\"file.write\",\"size\":-1}", "field 'size': integer out of range for uint64"},
        {"{\"type\":\"file.write\",\"size\":\"18446744073709551616\"}", "out of range for uint64"},
        {"{\"type\":\"file.write\",\"size\":\"-1\"}", "expected integer or decimal string"},
        {"{\"type\":\"run.start\",\"budget_s\":\"9223372036854775808\"}", "out of range for int64"},
        {"{\"type\":\"file.write\",\"size\":\"\"}", "expected integer or decimal string"},
        {"{\"type\":\"file.write\",\"size\":\" 1\"}", "expected integer or decimal string"},
        {"{\"ts_ns\":99999999999999999999,\"type\":\"gap\"}", "invalid JSON"},
        {"{\"type\":\"file.write\",\"sha256\":\"zz\"}", "field 'sha256': invalid hex"},
        {"{\"type\":\"file.write\",\"sha256\":\"abc\"}", "field 'sha256': invalid hex"},
        {"{\"type\":\"file.write\",\"sha256\":7}", "field 'sha256': expected hex string"},
        {"{\"type\":\"net.packet\",\"data\":\"abc\"}", "field 'data': invalid base64"},
        {"{\"type\":\"net.packet\",\"data\":\"ab=c\"}", "field 'data': invalid base64"},
        {"{\"type\":\"net.packet\",\"data\":\"AB==\"}", "field 'data': invalid base64"},
        {"{\"type\":\"net.packet\",\"data\":\"====\"}", "field 'data': invalid base64"},
        {"{\"type\":\"net.packet\",\"data\":\"QU-=\"}", "field 'data': invalid base64"},
        {"{\"type\":\"file.nope\"}", "field 'type': unknown event type 'file.nope'"},
        {"{\"type\":\"file\"}", "unknown event type"},
        {"{\"seq\":1}", "missing key 'type'"},
        {"{\"type\":3}", "field 'type': expected string"},
        {"{\"type\":\"gap\",\"source\":\"martian\"}", "field 'source': unknown Source 'martian'"},
        {"{\"type\":\"gap\",\"source\":\"SOURCE_PCAP\"}", "unknown Source"},
        {"{\"type\":\"gap\",\"source\":true}", "field 'source': expected string (enum Source)"},
        {"{\"type\":\"gap\",\"origin\":5}", "field 'origin': expected string"},
        {"{\"type\":\"file.write\",\"path_sid\":3}", "field 'path_sid': store-internal field"},
        {"{\"type\":\"net.connect\",\"remote\":{\"ip_sid\":3}}", "field 'remote.ip_sid'"},
        {"{\"type\":\"file.write\",\"captured\":1}", "field 'captured': expected boolean"},
        {"{\"type\":\"net.connect\",\"remote\":{\"port\":\"x\"}}",
         "field 'remote.port': expected integer, got string"},
        {"{\"type\":\"net.connect\",\"remote\":{\"zz\":1}}", "field 'remote.zz': unknown key"},
        {"{\"type\":\"net.connect\",\"remote\":[]}", "field 'remote': expected object, got array"},
        {"{\"type\":\"proc.exec\",\"argv\":[\"a\",1]}", "field 'argv[1]': expected string"},
        {"{\"type\":\"proc.exec\",\"argv\":\"a\"}", "field 'argv': expected array, got string"},
        {"{\"type\":\"proc.exec\",\"env\":[{\"name\":\"A\"},{\"redacted\":{\"length\":-2}}]}",
         "field 'env[1].redacted.length': integer out of range for uint64"},
        {"{\"type\":\"agent.usage\",\"cost_usd\":\"nan\"}", "field 'cost_usd': expected number"},
        {"{\"type\":\"agent.usage\",\"cost_usd\":[]}", "field 'cost_usd': expected number"},
        {"{\"type\":", "invalid JSON"},
        {"", "invalid JSON"},
        {"[1]", "expected a JSON object, got array"},
        {"{\"type\":\"gap\"} x", "invalid JSON"},
        {"{\"type\":\"gap\",\"type\":\"gap\"}", "invalid JSON"},
        {"{\"type\":\"gap\",\"path\":\"a\\u0000b\"}", "invalid JSON"},
        {"{\"type\":\"gap\",\"path\":\"\xff\"}", "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ptb_event *ev = (ptb_event *)1;
        ptb_errbuf eb = {{0}};
        int rc = event_json_decode_line(bad[i].line, strlen(bad[i].line), &ev, &eb);
        if (rc != PTB_EPARSE || ev != NULL || !strstr(eb.msg, bad[i].msg))
            fail_msg("%s: rc %d, message '%s', wanted '%s'", bad[i].line, rc, eb.msg, bad[i].msg);
    }
    ptb_event *ev;
    ptb_errbuf eb;
    assert_int_equal(event_json_decode(NULL, &ev, &eb), PTB_EPARSE);
    ptb_event none = PTB__V1__EVENT__INIT;
    char *line = (char *)1;
    assert_int_equal(event_json_encode_line(&none, &line, NULL), PTB_EINVAL);
    assert_null(line);
    assert_null(event_json_encode(&none));
}

/* The bundled example run: every line decodes, every kind appears, seqs are dense from 1, time
 * does not go back, and each line is exactly what the encoder writes (canonical form). */
static void test_example_fixture(void **state)
{
    const char *src = getenv("PTB_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/example-events.jsonl", src ? src : ".");
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s", path);
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t seq = 0;
    int64_t ts = 0;
    bool seen[256] = {false};
    while ((n = getline(&buf, &cap, f)) > 0) {
        ptb_event *ev;
        ptb_errbuf eb = {{0}};
        if (event_json_decode_line(buf, (size_t)n, &ev, &eb))
            fail_msg("%s:%llu: %s", path, (unsigned long long)seq + 1, eb.msg);
        assert_int_equal(ev->seq, ++seq);
        assert_true(ev->ts_ns >= ts);
        ts = ev->ts_ns;
        assert_true(ev->body_case < 256);
        seen[ev->body_case] = true;
        char *line;
        assert_int_equal(event_json_encode_line(ev, &line, NULL), 0);
        if (buf[n - 1] == '\n')
            buf[n - 1] = 0;
        if (strcmp(line, buf) != 0)
            fail_msg("line %llu is not canonical:\n  %s\n  %s", (unsigned long long)seq, buf, line);
        free(line);
        event_json_free(ev);
    }
    free(buf);
    fclose(f);
    /* every kind a reader can see: a kernel batch is shown as its launches (gpu.kernel) */
    for (size_t i = 0; i < event_type_count(); i++)
        if (!seen[event_type_at(i)] && event_type_at(i) != PTB__V1__EVENT__BODY_GPU_KERNEL_BATCH)
            fail_msg("example run lacks a %s event", event_type_name(event_type_at(i)));
}

/* PTB_WRITE_SEEDS=DIR: write the fuzz seed corpora. */
static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void test_write_seeds(void **state)
{
    const char *dir = getenv("PTB_WRITE_SEEDS");
    if (!dir)
        skip();
    char pbdir[4096], jdir[4096];
    snprintf(pbdir, sizeof pbdir, "%s/fuzz_event_decode", dir);
    snprintf(jdir, sizeof jdir, "%s/fuzz_jsonl_import", dir);
    mkdir(pbdir, 0755);
    mkdir(jdir, 0755);
    for (size_t i = 0; i < event_type_count(); i++) {
        if (i % 2 != 0 && i != event_type_count() - 1)
            continue;
        ptb_event *ev = test_event_filled(event_type_at(i), true);
        ev->seq = 0; /* the store keeps seq out of the stored value */
        size_t len;
        uint8_t *b = pack(ev, &len);
        char name[64];
        snprintf(name, sizeof name, "%s.pb", event_type_name(ev->body_case));
        write_file(pbdir, name, b, len);
        char *line;
        size_t ll;
        assert_int_equal(event_json_encode_line(ev, &line, &ll), 0);
        snprintf(name, sizeof name, "%s.json", event_type_name(ev->body_case));
        write_file(jdir, name, line, ll);
        free(line);
        free(b);
        event_json_free(ev);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_roundtrip_every_type_filled),
        cmocka_unit_test(test_roundtrip_every_type_empty),
        cmocka_unit_test(test_golden_line),
        cmocka_unit_test(test_lenient_forms),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_example_fixture),
        cmocka_unit_test(test_write_seeds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
