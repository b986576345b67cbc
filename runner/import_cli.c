/* ptb import --jsonl FILE STORE: build a store from the JSONL form of events (event_json.h), the
 * inverse of `ptb query --format jsonl`. The page is docs/commands/ptb-import.md.
 *
 * One pass, in file order: each line is decoded and appended (the store assigns seqs from 1, or
 * after the last event with --append). Validating the whole file first would read a huge file
 * twice, so a bad line stops the import there: the store is flushed and closed holding the
 * events before it, and the command says how many (exit 4). With --skip-bad, bad lines are
 * counted and skipped, and a `gap` event (origin "import", reason "bad_line") at the end puts the
 * omission on record. Lines are at most 64 MiB; blank lines are skipped. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "event_json.h"
#include "ptb_cli.h"
#include "ptb_commands.h"
#include "store.h"

#define IMPORT_LINE_MAX ((size_t)64 << 20)
#define IMPORT_CHUNK ((size_t)1 << 20)
#define IMPORT_BAD_SHOWN 10 /* bad lines reported one by one with --skip-bad */

enum { OPT_JSONL = 1, OPT_APPEND, OPT_SKIP_BAD };

static const cli_option import_opts[] = {
    {"jsonl", 0, "FILE", OPT_JSONL},
    {"append", 0, NULL, OPT_APPEND},
    {"skip-bad", 0, NULL, OPT_SKIP_BAD},
    {NULL, 0, NULL, 0},
};

/* ------------------------------------------------------------------ line reader */

/* Reads lines of at most IMPORT_LINE_MAX bytes from f into one growing buffer. */
typedef struct import_reader {
    FILE *f;      /* borrowed */
    char *buf;    /* owned */
    size_t cap;   /* allocated bytes; grows up to IMPORT_LINE_MAX + 1 */
    size_t start; /* first unread byte */
    size_t end;   /* end of the data read */
    bool eof;
} import_reader;

/* Next line (without its '\n'): *line borrowed until the next call. Returns 1 for a line, 0 at
 * the end, -errno on a read error or PTB_ENOMEM. A line over the maximum is consumed and
 * returned with *too_long set (and *len 0). */
static int import_reader_next(import_reader *r, const char **line, size_t *len, bool *too_long)
{
    *too_long = false;
    bool skipping = false;
    size_t scanned = 0; /* bytes of the current line already searched for '\n' */
    for (;;) {
        char *nl = memchr(r->buf + r->start + scanned, '\n', r->end - r->start - scanned);
        if (nl) {
            *line = r->buf + r->start;
            *len = skipping ? 0 : (size_t)(nl - *line);
            *too_long = skipping;
            r->start = (size_t)(nl - r->buf) + 1;
            return 1;
        }
        scanned = r->end - r->start;
        if (r->eof) {
            if (r->start == r->end && !skipping)
                return 0;
            *line = r->buf + r->start;
            *len = skipping ? 0 : r->end - r->start;
            *too_long = skipping;
            r->start = r->end;
            return 1;
        }
        if (r->start > 0) { /* keep the partial line at the front */
            memmove(r->buf, r->buf + r->start, r->end - r->start);
            r->end -= r->start;
            r->start = 0;
        }
        if (scanned > IMPORT_LINE_MAX) { /* too long: drop what we have, look for its end */
            skipping = true;
            r->end = r->start = scanned = 0;
        }
        if (r->end == r->cap) {
            size_t cap = r->cap * 2 > IMPORT_LINE_MAX + 1 ? IMPORT_LINE_MAX + 1 : r->cap * 2;
            char *nb = cap > r->cap ? realloc(r->buf, cap) : NULL;
            if (!nb)
                return PTB_ENOMEM;
            r->buf = nb;
            r->cap = cap;
        }
        size_t n = fread(r->buf + r->end, 1, r->cap - r->end, r->f);
        r->end += n;
        if (n == 0) {
            if (ferror(r->f))
                return errno ? -errno : PTB_EIO;
            r->eof = true;
        }
    }
}

/* ------------------------------------------------------------------ the command */

typedef struct import_run {
    const char *file_name; /* for messages: the path, or "<stdin>" */
    store *s;              /* owned */
    uint64_t lines, events, bad, blank;
    uint64_t first_bad_line;
    char first_bad[512];
    bool seq_warned, skip_bad;
    int64_t last_ts, last_mono;
    double t0;
    bool tty;
    double next_progress;
} import_run;

static double import_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool import_blank(const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
            return false;
    return true;
}

/* A bad line: with --skip-bad count it (true: go on), else report it (false: stop). */
static bool import_bad_line(import_run *ir, const char *msg)
{
    if (ir->bad == 0) {
        ir->first_bad_line = ir->lines;
        snprintf(ir->first_bad, sizeof ir->first_bad, "%s", msg);
    }
    ir->bad++;
    if (ir->tty)
        fputc('\r', stderr);
    if (!ir->skip_bad) {
        fprintf(stderr, "%s:%llu: %s\n", ir->file_name, (unsigned long long)ir->lines, msg);
        return false;
    }
    if (ir->bad <= IMPORT_BAD_SHOWN)
        fprintf(stderr, "%s:%llu: %s (skipped)\n", ir->file_name, (unsigned long long)ir->lines,
                msg);
    if (ir->bad == IMPORT_BAD_SHOWN)
        fprintf(stderr, "ptb import: further bad lines are counted, not shown\n");
    return true;
}

static void import_progress(import_run *ir)
{
    double now = import_now();
    if (now < ir->next_progress)
        return;
    ir->next_progress = now + 1.0;
    fprintf(stderr, "\rptb import: %llu events, %llu lines, %.0f events/s   ",
            (unsigned long long)ir->events, (unsigned long long)ir->lines,
            (double)ir->events / (now - ir->t0 > 0 ? now - ir->t0 : 1));
}

/* The `gap` event that records the skipped lines. */
static int import_append_gap(import_run *ir)
{
    Ptb__V1__Gap gap = PTB__V1__GAP__INIT;
    ptb_event ev = PTB__V1__EVENT__INIT;
    char detail[640];
    snprintf(detail, sizeof detail, "first bad line %llu: %s",
             (unsigned long long)ir->first_bad_line, ir->first_bad);
    gap.origin = (char *)"import";
    gap.reason = (char *)"bad_line";
    gap.count = ir->bad;
    gap.path = (char *)ir->file_name;
    gap.detail = detail;
    ev.source = PTB__V1__SOURCE__SOURCE_IMPORT;
    ev.ts_ns = ir->last_ts; /* 0 (no event imported): the store puts the current time */
    ev.mono_ns = ir->last_mono;
    ev.body_case = PTB__V1__EVENT__BODY_GAP;
    ev.gap = &gap;
    return store_append(ir->s, &ev, 0, NULL);
}

/* Decode and append every line. Returns 0, or the exit code to stop with. */
static int import_lines(import_run *ir, import_reader *r)
{
    const char *line = NULL;
    size_t len = 0;
    bool too_long = false;
    int rc;
    while ((rc = import_reader_next(r, &line, &len, &too_long)) == 1) {
        ir->lines++;
        if (ir->tty && (ir->lines & 255) == 0)
            import_progress(ir);
        if (too_long) {
            if (!import_bad_line(ir, "line longer than 64 MiB"))
                return PTB_EXIT_CORRUPT;
            continue;
        }
        if (import_blank(line, len)) {
            ir->blank++;
            continue;
        }
        ptb_event *ev = NULL;
        ptb_errbuf eb = {{0}};
        rc = event_json_decode_line(line, len, &ev, &eb);
        if (rc == PTB_ENOMEM) {
            fprintf(stderr, "ptb import: out of memory\n");
            return PTB_EXIT_ERROR;
        }
        if (rc) {
            if (!import_bad_line(ir, eb.msg))
                return PTB_EXIT_CORRUPT;
            continue;
        }
        uint64_t seq = 0;
        uint64_t in_seq = ev->seq;
        int64_t ts = ev->ts_ns, mono = ev->mono_ns;
        rc = store_append(ir->s, ev, 0, &seq);
        event_json_free(ev);
        if (rc == PTB_ETOOBIG) {
            char msg[128];
            snprintf(msg, sizeof msg, "event too big for the store (%s)", ptb_strerror(rc));
            if (!import_bad_line(ir, msg))
                return PTB_EXIT_CORRUPT;
            continue;
        }
        if (rc) {
            fprintf(stderr, "\nptb import: %s: %s\n", store_dir(ir->s), store_errmsg(ir->s));
            return ptb_exit_code(rc);
        }
        ir->events++;
        if (ts)
            ir->last_ts = ts;
        if (mono)
            ir->last_mono = mono;
        if (in_seq && in_seq != seq && !ir->seq_warned) {
            ir->seq_warned = true;
            fprintf(stderr,
                    "ptb import: warning: %s:%llu has seq %llu, stored as %llu: seqs are "
                    "reassigned by the store (dense from 1)\n",
                    ir->file_name, (unsigned long long)ir->lines, (unsigned long long)in_seq,
                    (unsigned long long)seq);
        }
    }
    if (rc < 0) {
        fprintf(stderr, "ptb import: reading %s: %s\n", ir->file_name, ptb_strerror(rc));
        return PTB_EXIT_ERROR;
    }
    return 0;
}

int import_main(int argc, char **argv)
{
    const char *file = NULL, *dir = NULL;
    bool append = false, skip_bad = false;
    cli c;
    cli_init(&c, "import", import_opts, argc, argv);
    int o;
    while ((o = cli_next(&c)) != CLI_END) {
        switch (o) {
        case OPT_JSONL: file = c.optarg; break;
        case OPT_APPEND: append = true; break;
        case OPT_SKIP_BAD: skip_bad = true; break;
        case CLI_POSITIONAL:
            if (dir)
                return cli_usage_error("import", "one STORE only (got '%s' and '%s')", dir,
                                       c.optarg);
            dir = c.optarg;
            break;
        case CLI_HELP: cli_help("import", stdout); return PTB_EXIT_OK;
        case CLI_LIST: cli_list_options(import_opts, stdout); return PTB_EXIT_OK;
        default: return cli_usage_error("import", "%s", c.err);
        }
    }
    if (!file)
        return cli_usage_error("import", "--jsonl FILE is required");
    if (!dir)
        return cli_usage_error("import", "missing STORE");

    ptb_errbuf ieb;
    if (event_json_init(&ieb)) {
        fprintf(stderr, "ptb import: %s\n", ieb.msg);
        return PTB_EXIT_ERROR;
    }
    bool is_stdin = strcmp(file, "-") == 0;
    FILE *in = is_stdin ? stdin : fopen(file, "rb");
    if (!in) {
        fprintf(stderr, "ptb import: cannot open %s: %s\n", file, strerror(errno));
        return PTB_EXIT_ERROR;
    }
    import_reader r = {.f = in, .cap = IMPORT_CHUNK};
    r.buf = malloc(r.cap);
    if (!r.buf) {
        if (!is_stdin)
            fclose(in);
        fprintf(stderr, "ptb import: out of memory\n");
        return PTB_EXIT_ERROR;
    }

    import_run ir = {.file_name = is_stdin ? "<stdin>" : file, .skip_bad = skip_bad};
    ir.t0 = import_now();
    ir.tty = isatty(STDERR_FILENO);
    ir.next_progress = ir.t0 + 1.0;
    int rc = store_open(dir, NULL, append ? 0 : STORE_CREATE | STORE_EXCL, &ir.s);
    if (rc) {
        if (rc == PTB_EEXIST)
            fprintf(stderr, "ptb import: %s already exists (use --append to add to it)\n", dir);
        else
            fprintf(stderr, "ptb import: %s\n", ir.s ? store_errmsg(ir.s) : ptb_strerror(rc));
        store_close(ir.s);
        free(r.buf);
        if (!is_stdin)
            fclose(in);
        return ptb_exit_code(rc);
    }

    int code = import_lines(&ir, &r);
    if (code == 0 && ir.bad) {
        rc = import_append_gap(&ir);
        if (rc) {
            fprintf(stderr, "ptb import: %s: %s\n", dir, store_errmsg(ir.s));
            code = ptb_exit_code(rc);
        }
    }
    rc = store_flush(ir.s);
    int crc = store_close(ir.s);
    if (!rc)
        rc = crc;
    if (rc && code == 0) {
        fprintf(stderr, "ptb import: %s: %s\n", dir, ptb_strerror(rc));
        code = ptb_exit_code(rc);
    }
    free(r.buf);
    if (!is_stdin)
        fclose(in);

    if (ir.tty)
        fprintf(stderr, "\r%60s\r", "");
    double secs = import_now() - ir.t0;
    if (code == PTB_EXIT_CORRUPT)
        fprintf(stderr, "ptb import: stopped at line %llu; %llu events before it are in %s\n",
                (unsigned long long)ir.lines, (unsigned long long)ir.events, dir);
    else if (code == 0)
        fprintf(stderr,
                "ptb import: %llu events imported into %s in %.2f s (%llu lines, %llu blank, "
                "%llu bad skipped%s)\n",
                (unsigned long long)ir.events, dir, secs, (unsigned long long)ir.lines,
                (unsigned long long)ir.blank, (unsigned long long)ir.bad,
                ir.bad ? ", recorded as a gap event" : "");
    return code;
}
