/* ptb import --agent-log FILE [--format FMT] STORE: a saved agent stream or session transcript
 * becomes tool.call, tool.result, agent.message and agent.usage events (runner/agent/
 * agent_parse.h; the page is docs/commands/ptb-import.md).
 *
 * The file is read in chunks and handed to the parser as bytes (agent_parser_write), as
 * `ptb run` will hand it the agent's stdout; each line's time is its own when the format has
 * one, else the time it was read. Broken lines, unpaired calls and results are gap events, not
 * errors: a stream cut off mid-line is normal for an agent stopped at its budget. Only a file
 * in which no line at all is a JSON object is refused as not an agent log (exit 4); its store
 * still holds the gaps that say so. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent_parse.h"
#include "import_agent.h"
#include "import_io.h"
#include "ptb_cli.h"
#include "store.h"

#define IMPORT_AGENT_CHUNK ((size_t)1 << 20)

static double import_agent_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Read in and feed every byte to p. Returns 0, or an error (a read error is a gap too). */
static int import_agent_read(FILE *in, const char *name, agent_parser *p)
{
    char *buf = malloc(IMPORT_AGENT_CHUNK);
    if (!buf)
        return PTB_ENOMEM;
    int rc = 0;
    for (;;) {
        size_t n = fread(buf, 1, IMPORT_AGENT_CHUNK, in);
        if (n > 0 && (rc = agent_parser_write(p, buf, n, store_now_realtime_ns())) != 0)
            break;
        if (n < IMPORT_AGENT_CHUNK) {
            if (ferror(in)) {
                rc = errno ? -errno : PTB_EIO;
                char d[128];
                snprintf(d, sizeof d, "reading %s: %s; the rest of the file is not imported", name,
                         ptb_strerror(rc));
                fprintf(stderr, "ptb import: %s\n", d);
                agent_parser_skip(p, "read_error", 0, d, store_now_realtime_ns());
            }
            break;
        }
    }
    free(buf);
    return rc;
}

static void import_agent_summary(const agent_parser *p, const char *name, const char *dir,
                                 double secs)
{
    agent_stats st;
    agent_parser_stats(p, &st);
    fprintf(stderr,
            "ptb import: %llu events from %s (%s) imported into %s in %.2f s: %llu lines, "
            "%llu tool calls, %llu results (%llu paired), %llu messages, %llu usages\n",
            (unsigned long long)st.events, name, agent_format_name(agent_parser_format(p)), dir,
            secs, (unsigned long long)st.lines, (unsigned long long)st.calls,
            (unsigned long long)st.results, (unsigned long long)st.paired,
            (unsigned long long)st.messages, (unsigned long long)st.usages);
    if (st.unknown)
        fprintf(stderr, "ptb import: %llu lines or blocks of unknown types skipped (%s)\n",
                (unsigned long long)st.unknown, agent_parser_unknown_names(p));
    if (st.broken || st.orphan_results || st.unanswered || st.untracked)
        fprintf(stderr,
                "ptb import: recorded as gap events: %llu broken lines, %llu results without "
                "their call, %llu calls without a result%s\n",
                (unsigned long long)st.broken, (unsigned long long)st.orphan_results,
                (unsigned long long)st.unanswered, st.untracked ? " (and calls not tracked)" : "");
    if (st.redacted)
        fprintf(stderr, "ptb import: %llu secrets stored as fingerprints\n",
                (unsigned long long)st.redacted);
}

int import_agent_format(const char *name, agent_format *out)
{
    if (!agent_format_from_name(name ? name : "auto", out))
        return 0;
    return cli_usage_error("import",
                           "--format: '%s' is not one of auto, claude, claude-transcript, codex, "
                           "gemini, opencode",
                           name);
}

int import_agent(const char *file, const char *format, const char *dir, bool append)
{
    agent_options o;
    agent_options_default(&o);
    int code = import_agent_format(format, &o.format);
    if (code)
        return code;
    bool is_stdin = strcmp(file, "-") == 0;
    const char *name = is_stdin ? "<stdin>" : file;
    FILE *in = is_stdin ? stdin : fopen(file, "rb");
    if (!in) {
        fprintf(stderr, "ptb import: cannot open %s: %s\n", file, strerror(errno));
        return PTB_EXIT_ERROR;
    }
    double t0 = import_agent_now();
    code = import_store_open(dir, NULL, append, &o.s);
    if (code) {
        if (!is_stdin)
            fclose(in);
        return code;
    }
    o.name = name;
    agent_parser *p = NULL;
    int rc = store_meta_set(o.s, "import.agent_log", name);
    if (!rc)
        rc = agent_parser_new(&o, &p);
    bool read_failed = false;
    if (!rc) {
        rc = import_agent_read(in, name, p);
        read_failed = rc != 0 && !agent_parser_errmsg(p)[0];
    }
    if (!rc)
        rc = agent_parser_finish(p, store_now_realtime_ns());
    if (!rc)
        rc = store_meta_set(o.s, "import.agent_format", agent_format_name(agent_parser_format(p)));
    if (rc) {
        if (p && agent_parser_errmsg(p)[0]) /* the store's error, as the parser met it */
            fprintf(stderr, "ptb import: %s: %s\n", dir, agent_parser_errmsg(p));
        else if (!read_failed) /* (a read error is printed where it happens) */
            fprintf(stderr, "ptb import: %s: %s\n", dir, ptb_strerror(rc));
        code = ptb_exit_code(rc);
    }
    int frc = import_store_close(o.s, dir, rc != 0);
    if (frc && !rc)
        code = ptb_exit_code(frc);
    if (!is_stdin)
        fclose(in);
    if (p && !rc && !frc) {
        import_agent_summary(p, name, dir, import_agent_now() - t0);
        agent_stats st;
        agent_parser_stats(p, &st);
        if (st.broken > 0 && st.broken == st.lines - st.blank) {
            fprintf(stderr, "ptb import: %s: no line is a JSON object: not an agent log\n", name);
            code = PTB_EXIT_CORRUPT;
        }
    }
    agent_parser_free(p);
    return code;
}
