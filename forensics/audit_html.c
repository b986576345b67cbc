/* The HTML report of `ptb audit` (audit_html.h): one file, nothing fetched.
 *
 *   <head>  a Content-Security-Policy: no source of any kind but the inline style and the one
 *           script whose SHA-256 it names; the style (audit_html.css)
 *   <body>  the verdict table (store, verdict, each detector's); per store a <section
 *           class="run"> with the summary (run, task, agent, verdict, score, the evidence kinds
 *           the store has), the timeline's box and its data (<script type="application/json"
 *           class="tl-data">, audit_timeline.c), and every finding (rule, verdict, confidence,
 *           summary, evidence seqs as links to the timeline, blobs, matched text, unavailable
 *           evidence, the `ptb query` command with a copy button); then the script
 *           (audit_html.js), which draws the timelines.
 * Both files are embedded at build time (embed_assets.cmake -> audit_html_assets.c). The static
 * parts need no script: without it the page still shows every verdict and finding. */
#include <inttypes.h>
#include <string.h>

#include <openssl/evp.h>

#include "audit_html.h"

#define HTML_SEQS_MAX 200 /* evidence seqs listed per finding */
#define HTML_BLOBS_MAX 50 /* blobs listed per finding */
#define HTML_MATCHED_MAX 4096

extern const char audit_html_css[], audit_html_js[]; /* audit_html_assets.c */

void audit_html_text(FILE *f, const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t i = 0;
    for (; p[i] && (!max || i < max); i++) {
        switch (p[i]) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        case '\t':
        case '\n': fputc(p[i], f); break;
        default:
            if (p[i] < 0x20 || p[i] == 0x7f)
                fputs("\xef\xbf\xbd", f);
            else
                fputc(p[i], f);
        }
    }
    if (p[i]) {
        /* cut inside a UTF-8 sequence: finish it, so the "…" is a character of its own */
        for (; (p[i] & 0xc0) == 0x80; i++)
            fputc(p[i], f);
        fputs("\xe2\x80\xa6", f);
    }
}

/* j as JSON fit for a <script> element's text: '<', '>' and '&' (only ever inside strings) as
 * \u escapes, so no "</script" or "<!--" can appear. */
static int html_json(FILE *f, const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    if (!s)
        return PTB_ENOMEM;
    for (const char *p = s; *p; p++) {
        if (*p == '<')
            fputs("\\u003c", f);
        else if (*p == '>')
            fputs("\\u003e", f);
        else if (*p == '&')
            fputs("\\u0026", f);
        else
            fputc(*p, f);
    }
    free(s);
    return 0;
}

static void html_verdict(FILE *f, const char *v)
{
    fprintf(f, "<span class=\"verdict %s\">%s</span>", v, v);
}

static const char *const html_detectors[] = {"leak", "keys", "ckpt"};

static void html_table(FILE *f, const audit_html_run *runs, size_t n)
{
    fputs("<table class=\"verdicts\"><thead><tr><th>run</th><th>verdict</th><th>leak</th>"
          "<th>keys</th><th>ckpt</th></tr></thead><tbody>\n",
          f);
    for (size_t i = 0; i < n; i++) {
        const audit_html_run *r = &runs[i];
        fprintf(f, "<tr><td><a href=\"#run-%zu\">", i);
        audit_html_text(f, r->store, 0);
        fputs("</a></td><td>", f);
        if (r->error || !r->rep) {
            html_verdict(f, "error");
            fputs("</td><td colspan=\"3\">", f);
            audit_html_text(f, r->error, 0);
            fputs("</td></tr>\n", f);
            continue;
        }
        html_verdict(f, audit_verdict_name(audit_report_verdict(r->rep)));
        for (size_t d = 0; d < 3; d++) {
            bool ran;
            audit_verdict v = audit_report_detector_verdict(r->rep, html_detectors[d], &ran);
            fputs("</td><td>", f);
            if (ran)
                html_verdict(f, audit_verdict_name(v));
            else
                fputs("-", f);
        }
        fputs("</td></tr>\n", f);
    }
    fputs("</tbody></table>\n", f);
}

static void html_dd(FILE *f, const char *dt, const char *dd)
{
    fprintf(f, "<dt>%s</dt><dd>", dt);
    audit_html_text(f, dd, 0);
    fputs("</dd>\n", f);
}

static void html_summary(FILE *f, const audit_html_run *r)
{
    const json_t *tl = r->timeline, *run = json_object_get(tl, "run");
    fputs("<dl class=\"summary\">\n", f);
    html_dd(f, "store", r->store);
    if (run) {
        html_dd(f, "run", json_string_value(json_object_get(run, "run_id")));
        html_dd(f, "task", json_string_value(json_object_get(run, "task")));
        html_dd(f, "agent", json_string_value(json_object_get(run, "agent")));
    } else
        html_dd(f, "run", "no run.start (an imported or recorded store)");
    fputs("<dt>verdict</dt><dd>", f);
    html_verdict(f, audit_verdict_name(audit_report_verdict(r->rep)));
    fputs("</dd>\n", f);
    const json_t *sc = json_object_get(tl, "score");
    fputs("<dt>score</dt><dd class=\"score\">", f);
    if (sc) {
        fprintf(f, "%.4g ", json_real_value(json_object_get(sc, "value")));
        audit_html_text(f, json_string_value(json_object_get(sc, "metric")), 0);
        fputs(" on ", f);
        audit_html_text(f, json_string_value(json_object_get(sc, "benchmark")), 0);
        fprintf(f,
                " (%" JSON_INTEGER_FORMAT " of %" JSON_INTEGER_FORMAT
                " items, seq %" JSON_INTEGER_FORMAT ")",
                json_integer_value(json_object_get(sc, "correct")),
                json_integer_value(json_object_get(sc, "items")),
                json_integer_value(json_object_get(sc, "seq")));
    } else
        fputs("none in the store", f);
    fputs("</dd>\n", f);
    if (tl) {
        double s = (double)json_integer_value(json_object_get(tl, "span_us")) / 1e6;
        fprintf(f, "<dt>events</dt><dd>%" JSON_INTEGER_FORMAT " over %.*f %s</dd>\n",
                json_integer_value(json_object_get(tl, "events")), s < 10 ? 1 : 0,
                s < 10 ? s * 1e3 : s, s < 10 ? "ms" : "s");
        fputs("<dt>evidence kinds</dt><dd>", f);
        const char *key;
        json_t *v;
        bool first = true;
        json_object_foreach((json_t *)json_object_get(tl, "have"), key, v)
        {
            fprintf(f, "%s%s%s", first ? "" : ", ", json_is_true(v) ? "" : "no ", key);
            first = false;
        }
        fputs("</dd>\n", f);
    }
    fputs("</dl>\n", f);
}

static void html_finding(FILE *f, size_t k, const audit_finding *x)
{
    const char *v = audit_verdict_name(x->verdict);
    fprintf(f, "<div class=\"finding f-%s\" data-finding=\"%zu\" data-verdict=\"%s\" data-rule=\"",
            v, k, v);
    audit_html_text(f, x->rule, 0);
    fputs("\">\n<h4>", f);
    html_verdict(f, v);
    fputs(" <code class=\"rule\">", f);
    audit_html_text(f, x->rule, 0);
    fprintf(f, "</code><span class=\"conf\">confidence %.2f</span><span class=\"det\">",
            x->confidence);
    audit_html_text(f, x->detector, 0);
    fputs("</span></h4>\n<p class=\"fsummary\">", f);
    audit_html_text(f, x->summary, 0);
    fputs("</p>\n<dl>\n", f);
    if (x->n_seqs) {
        fputs("<dt>evidence</dt><dd class=\"seqs\">", f);
        for (size_t s = 0; s < x->n_seqs && s < HTML_SEQS_MAX; s++)
            fprintf(f, "<a class=\"seq\" href=\"#\" data-seq=\"%" PRIu64 "\">seq %" PRIu64 "</a>",
                    x->seqs[s], x->seqs[s]);
        if (x->n_seqs > HTML_SEQS_MAX)
            fprintf(f, " <span class=\"note\">%zu more not shown</span>",
                    x->n_seqs - HTML_SEQS_MAX);
        fputs("</dd>\n", f);
    }
    if (x->n_blobs) {
        fputs("<dt>blobs</dt><dd>", f);
        for (size_t b = 0; b < x->n_blobs && b < HTML_BLOBS_MAX; b++) {
            fputs(b ? "<br><code class=\"blob\">" : "<code class=\"blob\">", f);
            audit_html_text(f, x->blobs[b], 0);
            fputs("</code>", f);
        }
        if (x->n_blobs > HTML_BLOBS_MAX)
            fprintf(f, " <span class=\"note\">%zu more not shown</span>",
                    x->n_blobs - HTML_BLOBS_MAX);
        fputs("</dd>\n", f);
    }
    if (x->matched) {
        fputs("<dt>matched</dt><dd><pre class=\"matched\">", f);
        audit_html_text(f, x->matched, HTML_MATCHED_MAX);
        fputs("</pre></dd>\n", f);
    }
    if (x->unavailable) {
        fputs("<dt>unavailable</dt><dd class=\"unavailable\">", f);
        audit_html_text(f, x->unavailable, 0);
        fputs("</dd>\n", f);
    }
    if (x->query) {
        fputs("<dt>show</dt><dd><code class=\"q\">", f);
        audit_html_text(f, x->query, 0);
        fputs("</code><button class=\"copy\" type=\"button\">copy</button></dd>\n", f);
    }
    fputs("</dl>\n</div>\n", f);
}

static int html_run(FILE *f, size_t i, const audit_html_run *r)
{
    fprintf(f, "<section class=\"run\" id=\"run-%zu\">\n<h2>", i);
    audit_html_text(f, r->store, 0);
    fputs("</h2>\n", f);
    if (r->error || !r->rep) {
        fputs("<p class=\"error-msg\">", f);
        html_verdict(f, "error");
        fputc(' ', f);
        audit_html_text(f, r->error ? r->error : "not audited", 0);
        fputs("</p>\n</section>\n", f);
        return 0;
    }
    html_summary(f, r);
    int rc = 0;
    if (r->timeline) {
        fputs("<h3>Timeline</h3>\n<div class=\"timeline\"></div>\n"
              "<div class=\"tl-detail\">Click an element, a mark or an evidence seq.</div>\n"
              "<script type=\"application/json\" class=\"tl-data\">",
              f);
        rc = html_json(f, r->timeline);
        fputs("</script>\n", f);
    }
    fprintf(f, "<h3>Findings (%zu)</h3>\n", r->rep->n);
    for (size_t k = 0; k < r->rep->n; k++)
        html_finding(f, k, &r->rep->f[k]);
    fputs("</section>\n", f);
    return rc;
}

int audit_html_write(FILE *f, const audit_html_run *runs, size_t n)
{
    /* the script's hash, for the policy: nothing else may run */
    unsigned char md[32];
    unsigned int mdlen = 0;
    unsigned char b64[64];
    if (!EVP_Digest(audit_html_js, strlen(audit_html_js), md, &mdlen, EVP_sha256(), NULL))
        return PTB_ENOMEM;
    EVP_EncodeBlock(b64, md, (int)mdlen);
    audit_verdict worst = AUDIT_CLEAN;
    bool error = false;
    for (size_t i = 0; i < n; i++) {
        if (runs[i].error || !runs[i].rep)
            error = true;
        else if (audit_report_verdict(runs[i].rep) > worst)
            worst = audit_report_verdict(runs[i].rep);
    }
    fprintf(f,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            "style-src 'unsafe-inline'; script-src 'sha256-%s'\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            "<title>ptb audit report</title>\n<style>\n%s</style>\n</head>\n<body>\n"
            "<h1>ptb audit</h1>\n<p class=\"note\">ptb %s; %zu store%s; worst verdict ",
            b64, audit_html_css, PTB_VERSION, n, n == 1 ? "" : "s");
    html_verdict(f, error ? "error" : audit_verdict_name(worst));
    fputs(". Rules and thresholds: docs/AUDIT.md.</p>\n", f);
    html_table(f, runs, n);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++)
        rc = html_run(f, i, &runs[i]);
    fprintf(f, "<script>%s</script>\n</body>\n</html>\n", audit_html_js);
    if (!rc && ferror(f))
        rc = PTB_EIO;
    return rc;
}
