/* The escaping of ptb audit's HTML report (forensics/audit_html.c): audit_html_text on a table of
 * hostile strings, and a whole report whose findings and timeline hold <script>, quotes and
 * "</script>": no tag of theirs survives, the JSON cannot end its script element, and the policy
 * names the hash of the page's own script. (test_audit_html.py checks the page in Chromium.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_html.h"

/* What f wrote, NUL-terminated; the caller frees. */
static char *render_text(const char *s, size_t max)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    audit_html_text(f, s, max);
    fclose(f);
    return buf;
}

static void test_text(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t max;
        const char *out;
    } cases[] = {
        {"plain", 0, "plain"},
        {NULL, 0, ""},
        {"<script>alert(1)</script>", 0, "&lt;script&gt;alert(1)&lt;/script&gt;"},
        {"a\"b'c&d", 0, "a&quot;b&#39;c&amp;d"},
        {"<img src=x onerror=\"x()\">", 0, "&lt;img src=x onerror=&quot;x()&quot;&gt;"},
        {"tab\tnl\ncr\rbel\x07", 0,
         "tab\tnl\ncr\xef\xbf\xbd"
         "bel\xef\xbf\xbd"},
        {"&amp;", 0, "&amp;amp;"},
        {"abcdef", 3, "abc\xe2\x80\xa6"},
        {"ab\xc3\xa9z", 3, "ab\xc3\xa9\xe2\x80\xa6"}, /* cut inside é: the character kept whole */
        {"abc", 3, "abc"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *got = render_text(cases[i].in, cases[i].max);
        assert_string_equal(got, cases[i].out);
        free(got);
    }
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static void test_report(void **state)
{
    (void)state;
    const char *evil = "</script><script>document.title='x'</script><!--\"'&";
    audit_report rep = {0};
    uint64_t seqs[] = {7, 3};
    assert_int_equal(audit_add(&rep, "keys", "keys.canary_used", AUDIT_VIOLATION, 1, evil, seqs, 2,
                               evil, evil, evil),
                     0);
    uint8_t sha[32] = {0xab};
    assert_int_equal(audit_add_blob(&rep, sha), 0);
    json_t *tl = json_pack("{s:I,s:[{s:s,s:s,s:I,s:I}],s:{s:s,s:s}}", "span_us", (json_int_t)10,
                           "tools", "name", evil, "input", evil, "t", (json_int_t)1, "seq",
                           (json_int_t)3, "run", "run_id", evil, "task", evil);
    assert_non_null(tl);
    audit_html_run runs[] = {{.store = evil, .rep = &rep, .timeline = tl},
                             {.store = "missing<b>.ptb", .error = evil}};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_int_equal(audit_html_write(f, runs, 2), 0);
    fclose(f);
    /* the two script elements of the page, no other tag from the strings */
    assert_int_equal(count(buf, "<script"), 2);
    assert_int_equal(count(buf, "</script>"), 2);
    assert_null(strstr(buf, "<!--"));
    assert_null(strstr(buf, "<b>"));
    assert_non_null(strstr(buf, "&lt;/script&gt;&lt;script&gt;document.title="));
    assert_non_null(strstr(buf, "\\u003c/script\\u003e")); /* in the JSON */
    assert_non_null(strstr(buf, "data-seq=\"3\""));
    assert_non_null(strstr(buf, "data-seq=\"7\""));
    assert_non_null(strstr(buf, "<code class=\"blob\">ab00"));
    assert_non_null(strstr(buf, "class=\"verdict error\""));
    /* no URL to fetch, and the policy's hash is the script's */
    assert_null(strstr(buf, "https://"));
    const char *js = strstr(buf, "<script>"), *end = js ? strstr(js, "</script>") : NULL;
    assert_non_null(end);
    js += strlen("<script>");
    unsigned char md[32], b64[64];
    unsigned int mdlen = 0;
    assert_true(EVP_Digest(js, (size_t)(end - js), md, &mdlen, EVP_sha256(), NULL));
    EVP_EncodeBlock(b64, md, (int)mdlen);
    char want[128];
    snprintf(want, sizeof want, "script-src 'sha256-%s'", b64);
    assert_non_null(strstr(buf, want));
    free(buf);
    json_decref(tl);
    audit_report_free(&rep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_report),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
