/* ptb import --ptb-results DIR STORE: a PostTrainBench result folder becomes a store, so that
 * runs made before ptb can be searched and audited like recorded ones. The page is
 * docs/commands/ptb-import.md ("PostTrainBench result folders"), with the table of what maps
 * to what.
 *
 * The folder, as the harness writes it (github.com/aisa-group/PostTrainBench):
 *   DIR          RESULTS/<agent>_<config>_<hours>h[_<n>gpu]<experiment>/
 *                <benchmark>_<model with '/' ':' '[' ']' as '_'>_<cluster id>   (src/run_task.sh,
 *                EVAL_DIR; scripts/utils.py walk_latest_runs splits the name at '_')
 *   solve_out.txt  all the agent container printed (CUDA checks, the CLI's update, the agent
 *                CLI's JSON stream, stderr), each line as "[2026-04-03T14:05:32Z] LINE": UTC,
 *                whole seconds, empty lines dropped (src/utils/timestamp_lines.py, piped to by
 *                run_task.sh solve_task). Older runs have no prefix. The CLIs and their flags:
 *                agents/<agent>/solve.sh (claude --output-format stream-json, codex exec --json,
 *                gemini --output-format stream-json, opencode run --format json).
 *   prompt.txt   the prompt: src/eval/general/get_prompt.py fills src/eval/general/prompt.txt,
 *                whose first line is "We want to train the small LLM `{model}` to excel at
 *                {benchmark}." and which says "You have a maximum of {num_hours} hours".
 *   time_taken.txt  the agent phase's wall time, "HH:MM:SS" (hours may pass 99): run_task.sh
 *                with_record_the_time; scripts/utils.py parse_time_hms reads ^\d+:\d{1,2}:\d{1,2}$.
 *   metrics.json the final evaluation: a JSON object of the Inspect metrics, numbers (e.g.
 *                {"accuracy": 0.61, "stderr": 0.013}): src/eval/tasks/<b>/evaluate.py
 *                --json-output-file; scripts/utils.py load_metrics reads "accuracy".
 *   final_model/ the checkpoint the agent left (cp -r of the workspace's final_model).
 *   output.log   the harness's stdout, with "exit_code: N" (124: the time limit) and
 *                "hostname: H" after the agent phase (run_task.sh, SOLVE DIAGNOSTICS).
 *   others       error.log, solve_parsed.txt, *_sanitized.txt, cli_version.txt,
 *                system_monitor.log, judgement*.json, judge_output_*.json, final_eval_N.txt
 *                (dev_utils/extract_traces.py lists them); task/, the workspace at the end.
 *
 * The import reads, never writes, the folder: final_model/ is hashed in place
 * (run_checkpoint_event, the code `ptb run` freezes its checkpoint with). Nothing a folder
 * lacks stops it: a missing or bad file is a `gap` event and a message. Only a folder with none
 * of solve_out.txt, prompt.txt, time_taken.txt, metrics.json and final_model/ is refused (exit
 * 4, before a store is made). */
#include "import_ptb.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "agent_parse.h"
#include "import_agent.h"
#include "import_io.h"
#include "ptb_cli.h"
#include "run_workspace.h"
#include "store.h"

#define IMPORT_PTB_TEXT_MAX ((size_t)16 << 20)  /* prompt, time, metrics, output.log read whole */
#define IMPORT_PTB_BLOB_MAX ((size_t)256 << 20) /* a file kept as a blob; larger: its hash only */
#define IMPORT_PTB_SCAN_LINES 256   /* solve_out.txt lines read ahead for the time and format */
#define IMPORT_PTB_ENTRIES_MAX 4096 /* entries of the folder looked at; the rest are one gap */
#define IMPORT_PTB_NS 1000000000LL

/* The files that make a folder a result folder, and what their absence costs. */
enum { PART_SOLVE, PART_PROMPT, PART_TIME, PART_METRICS, PART_MODEL, PART_COUNT };
static const char *const import_ptb_part[PART_COUNT] = {
    "solve_out.txt", "prompt.txt", "time_taken.txt", "metrics.json", "final_model"};
static const char *const import_ptb_lost[PART_COUNT] = {
    "no agent stream: no tool calls, results or messages",
    "no prompt",
    "no duration: run.end has none",
    "no evaluation: no eval.result",
    "no checkpoint: the checkpoint event lists no files",
};

/* What a result folder cannot hold: one `gap` (reason "not_recorded") each. */
static const char *const import_ptb_unrecorded[] = {
    "processes: a result folder has no process events (proc.exec, proc.exit); what ran is known "
    "only from the agent's tool calls",
    "files: a result folder has no file events of the run (file.open, file.read, file.write, "
    "file.rename); what the agent read and wrote is known only from its tool calls (the "
    "folder's own files are file.write events of the import)",
    "packets: a result folder has no network events (net.*); connections, DNS names and HTTP "
    "hosts are unknown",
    "gpu: a result folder has no GPU events (gpu.*); kernels and copies are unknown "
    "(system_monitor.log, when the folder has one, holds utilisation samples)",
};

typedef struct import_ptb_run {
    char path[PATH_MAX];       /* the folder, absolute */
    char solve[PATH_MAX];      /* its solve_out.txt */
    char name[NAME_MAX + 1];   /* its name: the run id */
    char method[NAME_MAX + 1]; /* the folder above: agent, config, hours */
    char benchmark[128];
    char model[256];
    char host[256];
    int64_t budget_s;
    bool has[PART_COUNT];
    store *s;        /* owned */
    agent_parser *p; /* owned */
    int64_t t_start, t_end, duration_ns;
    int exit_code;
    bool exit_known;
    uint64_t events, lines, stamped, kept, gaps, metrics;
    run_frozen frozen;
    char metrics_text[200]; /* for the summary: "accuracy 0.61, stderr 0.013" */
} import_ptb_run;

static int import_ptb_join(char *out, const char *dir, const char *name)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
    return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

static int64_t import_ptb_mtime(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * IMPORT_PTB_NS + st->st_mtim.tv_nsec;
}

/* The whole file at path, up to max bytes: *buf malloc'd (caller frees), NUL-terminated.
 * Returns 0, -errno, PTB_ENOMEM or PTB_ETOOBIG. */
static int import_ptb_read(const char *path, size_t max, char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    struct stat st;
    int rc = fstat(fileno(f), &st) ? -errno : (uint64_t)st.st_size > max ? PTB_ETOOBIG : 0;
    char *b = rc ? NULL : malloc((size_t)st.st_size + 1);
    if (!rc && !b)
        rc = PTB_ENOMEM;
    size_t n = b ? fread(b, 1, (size_t)st.st_size, f) : 0;
    if (!rc && ferror(f))
        rc = errno ? -errno : PTB_EIO;
    fclose(f);
    if (rc) {
        free(b);
        return rc;
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return 0;
}

static int import_ptb_append(import_ptb_run *ir, ptb_event *ev, int64_t ts)
{
    ev->source = PTB__V1__SOURCE__SOURCE_IMPORT;
    ev->ts_ns = ts;
    int rc = store_append(ir->s, ev, 0, NULL);
    if (rc)
        fprintf(stderr, "ptb import: %s: %s\n", store_dir(ir->s), store_errmsg(ir->s));
    else
        ir->events++;
    return rc;
}

/* A `gap` event, origin "import". */
static int import_ptb_gap(import_ptb_run *ir, int64_t ts, const char *reason, const char *path,
                          uint64_t bytes, const char *detail)
{
    Ptb__V1__Gap g = PTB__V1__GAP__INIT;
    g.origin = (char *)"import";
    g.reason = (char *)reason;
    g.count = 1;
    g.bytes = bytes;
    g.path = (char *)path;
    g.detail = (char *)detail;
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.body_case = PTB__V1__EVENT__BODY_GAP;
    ev.gap = &g;
    ir->gaps++;
    return import_ptb_append(ir, &ev, ts);
}

/* A file of the folder that could not be read or made no sense: said on stderr and as a gap. */
static int import_ptb_bad(import_ptb_run *ir, int64_t ts, const char *reason, const char *path,
                          const char *what)
{
    fprintf(stderr, "ptb import: %s: %s (a gap event records it)\n", path, what);
    return import_ptb_gap(ir, ts, reason, path, 0, what);
}

/* ------------------------------------------------------------------ what the folder says */

/* The "[ISO-time] " prefix of a solve_out.txt line (timestamp_lines.py): its time, *skip the
 * bytes it takes; 0 (and *skip 0) when the line has none. */
static int64_t import_ptb_stamp(const char *line, size_t len, size_t *skip)
{
    *skip = 0;
    if (len < 3 || line[0] != '[')
        return 0;
    const char *close = memchr(line, ']', len < 64 ? len : 64);
    int64_t ts = close ? agent_time_iso(line + 1, (size_t)(close - line) - 1) : 0;
    if (!ts)
        return 0;
    size_t n = (size_t)(close - line) + 1;
    *skip = n < len && line[n] == ' ' ? n + 1 : n;
    return ts;
}

/* Benchmark and model from the folder's name (<benchmark>_<model>_<cluster id>: the model's
 * '/' was made '_', which cannot be undone here; prompt.txt has it whole), the budget from the
 * name of the folder above (a "_<N>h" part). */
static void import_ptb_names(import_ptb_run *ir)
{
    const char *u = strchr(ir->name, '_');
    if (u) {
        snprintf(ir->benchmark, sizeof ir->benchmark, "%.*s", (int)(u - ir->name), ir->name);
        const char *mid = u + 1, *end = strrchr(mid, '_');
        if (!end || !end[1] || strspn(end + 1, "0123456789") != strlen(end + 1))
            end = mid + strlen(mid);
        snprintf(ir->model, sizeof ir->model, "%.*s", (int)(end - mid), mid);
    }
    for (const char *t = ir->method; (t = strchr(t, '_')) != NULL;) {
        t++;
        size_t d = strspn(t, "0123456789");
        if (d > 0 && d < 6 && t[d] == 'h' && (t[d + 1] == '_' || t[d + 1] == '\0')) {
            ir->budget_s = strtoll(t, NULL, 10) * 3600;
            break;
        }
    }
}

/* The model and the hours the prompt names: the first `...` of its first line, and "a maximum
 * of N hours" (src/eval/general/prompt.txt). They take precedence over the folder names. */
static void import_ptb_prompt_facts(import_ptb_run *ir, const char *text, size_t len)
{
    const char *eol = memchr(text, '\n', len);
    size_t first = eol ? (size_t)(eol - text) : len;
    const char *a = memchr(text, '`', first);
    const char *b = a ? memchr(a + 1, '`', first - (size_t)(a + 1 - text)) : NULL;
    size_t n = b ? (size_t)(b - a - 1) : 0;
    if (n > 0 && n < sizeof ir->model && !memchr(a + 1, ' ', n))
        snprintf(ir->model, sizeof ir->model, "%.*s", (int)n, a + 1);
    const char *m = memmem(text, len, "maximum of ", 11);
    if (m) {
        m += 11;
        size_t d = strspn(m, "0123456789");
        if (d > 0 && d < 6 && !strncmp(m + d, " hour", 5))
            ir->budget_s = strtoll(m, NULL, 10) * 3600;
    }
}

/* time_taken.txt, "H:MM:SS" with white space around it (as scripts/utils.py parse_time_hms
 * reads it): seconds, or -1. */
static int64_t import_ptb_hms(const char *s, size_t len)
{
    while (len && strchr(" \t\r\n", s[len - 1]))
        len--;
    while (len && strchr(" \t\r\n", *s))
        s++, len--;
    int64_t v[3] = {0, 0, 0};
    size_t i = 0;
    for (int k = 0; k < 3; k++) {
        size_t d = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9' && d < (k ? 2u : 9u))
            v[k] = v[k] * 10 + (s[i++] - '0'), d++;
        if (d == 0 || (k < 2 && (i >= len || s[i++] != ':')))
            return -1;
    }
    if (i != len || v[1] >= 60 || v[2] >= 60)
        return -1;
    return v[0] * 3600 + v[1] * 60 + v[2];
}

/* output.log's "exit_code: N" and "hostname: H" lines (run_task.sh, SOLVE DIAGNOSTICS). */
static void import_ptb_output_log(import_ptb_run *ir)
{
    char path[PATH_MAX], *buf;
    size_t len;
    if (import_ptb_join(path, ir->path, "output.log") ||
        import_ptb_read(path, IMPORT_PTB_TEXT_MAX, &buf, &len))
        return;
    for (char *l = buf, *nl; l < buf + len; l = nl + 1) {
        nl = memchr(l, '\n', (size_t)(buf + len - l));
        if (!nl)
            nl = buf + len;
        *nl = '\0';
        if (!strncmp(l, "exit_code: ", 11) && l[11] >= '0' && l[11] <= '9') {
            ir->exit_code = atoi(l + 11);
            ir->exit_known = true;
        } else if (!strncmp(l, "hostname: ", 10)) {
            snprintf(ir->host, sizeof ir->host, "%s", l + 10);
        }
    }
    free(buf);
}

/* Read ahead in solve_out.txt: the time of its first stamped line, and (unless given) the
 * stream's format from the first line that says it (agent_format_detect, the rule the parser
 * follows), so that run.start can name both. */
static void import_ptb_scan(const char *file, int64_t *first, agent_format *fmt)
{
    FILE *f = fopen(file, "rb");
    import_reader r;
    if (!f || import_reader_init(&r, f)) {
        if (f)
            fclose(f);
        return;
    }
    const char *line;
    size_t len, skip;
    bool too_long;
    for (unsigned n = 0; n < IMPORT_PTB_SCAN_LINES && (!*first || *fmt == AGENT_FORMAT_AUTO); n++) {
        if (import_reader_next(&r, &line, &len, &too_long) != 1)
            break;
        int64_t ts = import_ptb_stamp(line, len, &skip);
        if (ts && !*first)
            *first = ts;
        if (*fmt == AGENT_FORMAT_AUTO && !too_long)
            *fmt = agent_format_detect(line + skip, len - skip);
    }
    import_reader_free(&r);
    fclose(f);
}

/* ------------------------------------------------------------------ events */

static int import_ptb_start(import_ptb_run *ir, agent_format fmt)
{
    Ptb__V1__RunStart rs = PTB__V1__RUN_START__INIT;
    rs.run_id = ir->name;
    rs.task = ir->path;
    rs.agent = (char *)(fmt != AGENT_FORMAT_AUTO ? agent_format_name(fmt) : "");
    rs.base_model = ir->model;
    rs.benchmark = ir->benchmark;
    rs.host = ir->host;
    rs.ptb_version = (char *)PTB_VERSION;
    rs.schema_version = PTB_SCHEMA_VERSION;
    rs.budget_s = ir->budget_s;
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.body_case = PTB__V1__EVENT__BODY_RUN_START;
    ev.run_start = &rs;
    return import_ptb_append(ir, &ev, ir->t_start);
}

/* Every line of solve_out.txt to the parser, its prefix taken off and its time given; a line
 * without one gets the time of the line before (the run's start for the first). */
static int import_ptb_stream(import_ptb_run *ir, const char *file, int64_t *last)
{
    *last = ir->t_start;
    FILE *f = fopen(file, "rb");
    import_reader r;
    int rc = f ? import_reader_init(&r, f) : -errno;
    if (rc) {
        char d[128];
        snprintf(d, sizeof d, "cannot read it: %s", ptb_strerror(rc));
        if (f)
            fclose(f);
        return rc == PTB_ENOMEM ? rc : import_ptb_bad(ir, ir->t_start, "unreadable", file, d);
    }
    const char *line;
    size_t len, skip;
    bool too_long;
    int k = 0;
    int64_t ts = ir->t_start;
    while (!rc && (k = import_reader_next(&r, &line, &len, &too_long)) == 1) {
        ir->lines++;
        if (too_long) {
            char d[96];
            snprintf(d, sizeof d, "solve_out.txt line %" PRIu64 ": longer than %zu bytes",
                     ir->lines, IMPORT_LINE_MAX);
            rc = agent_parser_skip(ir->p, "line_too_long", 0, d, ts);
            continue;
        }
        int64_t t = import_ptb_stamp(line, len, &skip);
        if (t) {
            ts = t;
            ir->stamped++;
        }
        rc = agent_parser_feed(ir->p, line + skip, len - skip, ts);
    }
    if (!rc && k < 0) {
        char d[160];
        snprintf(d, sizeof d, "reading it after line %" PRIu64 ": %s; the rest is not imported",
                 ir->lines, ptb_strerror(k));
        fprintf(stderr, "ptb import: %s: %s\n", file, d);
        rc = k == PTB_ENOMEM ? k : agent_parser_skip(ir->p, "read_error", 0, d, ts);
    }
    import_reader_free(&r);
    fclose(f);
    *last = ts;
    return rc;
}

/* metrics.json: one eval.result per number of its object, the file as their details blob. */
static int import_ptb_metrics(import_ptb_run *ir, const char *file)
{
    struct stat st;
    int64_t ts = stat(file, &st) == 0 ? import_ptb_mtime(&st) : ir->t_end;
    if (ts < ir->t_end)
        ts = ir->t_end;
    char *buf = NULL, d[256];
    size_t len = 0;
    int rc = import_ptb_read(file, IMPORT_PTB_TEXT_MAX, &buf, &len);
    if (rc) {
        snprintf(d, sizeof d, "cannot read it: %s", ptb_strerror(rc));
        return rc == PTB_ENOMEM ? rc : import_ptb_bad(ir, ts, "unreadable", file, d);
    }
    json_error_t je;
    json_t *j = json_loadb(buf, len, 0, &je);
    uint8_t md[32];
    rc = json_is_object(j) ? store_blob_put(ir->s, buf, len, file, md) : 0;
    bool blob = json_is_object(j) && rc == 0;
    if (rc == PTB_ETOOBIG || rc == PTB_EBUDGET) /* the store records that gap itself */
        rc = 0;
    free(buf);
    if (!json_is_object(j)) {
        snprintf(d, sizeof d, "not a JSON object%s%.160s", j ? "" : ": ", j ? "" : je.text);
        json_decref(j);
        return import_ptb_bad(ir, ts, "bad_file", file, d);
    }
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v)
    {
        if (rc || !json_is_number(v))
            continue;
        Ptb__V1__EvalResult er = PTB__V1__EVAL_RESULT__INIT;
        er.benchmark = ir->benchmark;
        er.metric = (char *)key;
        er.value = json_number_value(v);
        if (blob) {
            er.details_blob.data = md;
            er.details_blob.len = 32;
        }
        ptb_event ev = PTB__V1__EVENT__INIT;
        ev.body_case = PTB__V1__EVENT__BODY_EVAL_RESULT;
        ev.eval_result = &er;
        rc = import_ptb_append(ir, &ev, ts);
        size_t l = strlen(ir->metrics_text);
        if (!rc && l + 48 < sizeof ir->metrics_text)
            snprintf(ir->metrics_text + l, sizeof ir->metrics_text - l, "%s%.24s %g",
                     ir->metrics++ ? ", " : "", key, er.value);
    }
    json_decref(j);
    if (!rc && ir->metrics == 0)
        rc = import_ptb_bad(ir, ts, "bad_file", file, "no metric: the object has no number");
    return rc;
}

/* A regular file of the folder: a blob (whole, up to IMPORT_PTB_BLOB_MAX) and a file.write
 * event (trigger "import", its time the file's mtime). */
static int import_ptb_keep(import_ptb_run *ir, const char *path, const struct stat *st)
{
    int64_t ts = import_ptb_mtime(st);
    uint8_t md[32];
    uint64_t size = (uint64_t)st->st_size;
    bool captured = false;
    char d[160];
    int rc;
    if (size <= IMPORT_PTB_BLOB_MAX) {
        char *buf;
        size_t len;
        rc = import_ptb_read(path, IMPORT_PTB_BLOB_MAX, &buf, &len);
        if (!rc) {
            size = len;
            rc = store_blob_put(ir->s, buf, len, path, md);
            captured = rc == 0;
            free(buf);
            if (rc && rc != PTB_ETOOBIG && rc != PTB_EBUDGET)
                return rc;
            rc = 0; /* over the store's cap or budget: the store's own gap says so */
        }
    } else if (!(rc = run_file_sha256(path, md, &size))) {
        snprintf(d, sizeof d,
                 "%" PRIu64 " bytes, over the %zu MiB a file of the folder is kept "
                 "up to: its hash is in the file.write event, its bytes are not",
                 size, IMPORT_PTB_BLOB_MAX >> 20);
        rc = import_ptb_gap(ir, ts, "too_big", path, size, d);
        if (rc)
            return rc;
    }
    if (rc) {
        snprintf(d, sizeof d, "cannot read it: %s", ptb_strerror(rc));
        return rc == PTB_ENOMEM ? rc : import_ptb_bad(ir, ts, "unreadable", path, d);
    }
    Ptb__V1__FileWrite fw = PTB__V1__FILE_WRITE__INIT;
    fw.path = (char *)path;
    fw.bytes = fw.size = size;
    fw.sha256.data = md;
    fw.sha256.len = 32;
    fw.captured = captured;
    fw.trigger = (char *)"import";
    fw.mode = st->st_mode & 07777;
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.body_case = PTB__V1__EVENT__BODY_FILE_WRITE;
    ev.file_write = &fw;
    rc = import_ptb_append(ir, &ev, ts);
    ir->kept += rc == 0;
    return rc;
}

static int import_ptb_entry(const struct dirent *e)
{
    return strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
}

/* Every entry of the folder but final_model/: regular files kept, the rest a gap each. */
static int import_ptb_files(import_ptb_run *ir)
{
    struct dirent **e = NULL;
    int n = scandir(ir->path, &e, import_ptb_entry, alphasort);
    if (n < 0)
        return import_ptb_bad(ir, ir->t_end, "unreadable", ir->path, strerror(errno));
    int rc = 0;
    if (n > IMPORT_PTB_ENTRIES_MAX) {
        char d[128];
        snprintf(d, sizeof d, "%d entries of the folder past the first %d (by name): not imported",
                 n - IMPORT_PTB_ENTRIES_MAX, IMPORT_PTB_ENTRIES_MAX);
        rc = import_ptb_bad(ir, ir->t_end, "not_imported", ir->path, d);
    }
    for (int i = 0; i < n && i < IMPORT_PTB_ENTRIES_MAX; i++) {
        const char *name = e[i]->d_name;
        char path[PATH_MAX];
        struct stat st;
        if (rc || !strcmp(name, import_ptb_part[PART_MODEL]))
            continue;
        if (import_ptb_join(path, ir->path, name))
            rc = import_ptb_bad(ir, ir->t_end, "unreadable", name, "a name too long: not imported");
        else if (stat(path, &st)) {
            char d[128];
            snprintf(d, sizeof d, "%s (a dangling link?): not imported", strerror(errno));
            rc = import_ptb_bad(ir, ir->t_end, "unreadable", path, d);
        } else if (S_ISREG(st.st_mode))
            rc = import_ptb_keep(ir, path, &st);
        else
            rc = import_ptb_gap(ir, ir->t_end, "not_imported", path, 0,
                                !S_ISDIR(st.st_mode) ? "not a regular file: not imported"
                                : !strcmp(name, "task")
                                    ? "the agent's workspace at the end of the run (its models "
                                      "deleted by the harness): not imported"
                                    : "a folder: not imported");
    }
    for (int i = 0; i < n; i++)
        free(e[i]);
    free(e);
    return rc;
}

static int import_ptb_end(import_ptb_run *ir)
{
    agent_stats st;
    agent_parser_stats(ir->p, &st);
    Ptb__V1__RunEnd re = PTB__V1__RUN_END__INIT;
    re.exit_code = ir->exit_known ? ir->exit_code : 0;
    re.signal = ir->exit_known && ir->exit_code > 128 ? ir->exit_code - 128 : 0;
    re.reason = (char *)(!ir->exit_known        ? "unknown"
                         : ir->exit_code == 124 ? "budget"
                         : ir->exit_code > 128  ? "signal"
                                                : "exit");
    re.duration_ns = ir->duration_ns;
    re.events = ir->events + st.events;
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.body_case = PTB__V1__EVENT__BODY_RUN_END;
    ev.run_end = &re;
    return import_ptb_append(ir, &ev, ir->t_end);
}

/* ------------------------------------------------------------------ the command */

/* The folder's facts before any event: names, prompt, time taken, output.log, the times of
 * the run. Returns the seconds of time_taken.txt, -1 when it is missing or bad. */
static int64_t import_ptb_facts(import_ptb_run *ir, agent_format *fmt, char **prompt,
                                size_t *prompt_len)
{
    char path[PATH_MAX], *buf;
    size_t len;
    struct stat st;
    import_ptb_names(ir);
    import_ptb_output_log(ir);
    if (ir->has[PART_PROMPT] && !import_ptb_join(path, ir->path, "prompt.txt") &&
        !import_ptb_read(path, IMPORT_PTB_TEXT_MAX, prompt, prompt_len))
        import_ptb_prompt_facts(ir, *prompt, *prompt_len);
    int64_t secs = -1;
    if (ir->has[PART_TIME] && !import_ptb_join(path, ir->path, "time_taken.txt") &&
        !import_ptb_read(path, IMPORT_PTB_TEXT_MAX, &buf, &len)) {
        secs = import_ptb_hms(buf, len);
        free(buf);
    }
    /* the start: the first stamped line; else, for an older run, solve_out.txt's last write
     * less the time taken; else the folder's own time */
    int64_t first = 0, mt_solve = 0;
    if (ir->has[PART_SOLVE] && !import_ptb_join(path, ir->path, "solve_out.txt")) {
        import_ptb_scan(path, &first, fmt);
        if (!stat(path, &st))
            mt_solve = import_ptb_mtime(&st);
    }
    ir->duration_ns = secs >= 0 ? secs * IMPORT_PTB_NS : 0;
    ir->t_start = first                   ? first
                  : mt_solve && secs >= 0 ? mt_solve - ir->duration_ns
                  : mt_solve              ? mt_solve
                  : !stat(ir->path, &st)  ? import_ptb_mtime(&st)
                                          : store_now_realtime_ns();
    ir->t_end = ir->t_start + ir->duration_ns;
    return secs;
}

/* The events, in the order a recorded run has them. */
static int import_ptb_events(import_ptb_run *ir, agent_format fmt, const char *prompt,
                             size_t prompt_len, int64_t secs)
{
    char path[PATH_MAX];
    int rc = import_ptb_start(ir, fmt);
    for (size_t i = 0; !rc && i < sizeof import_ptb_unrecorded / sizeof *import_ptb_unrecorded; i++)
        rc = import_ptb_gap(ir, ir->t_start, "not_recorded", ir->path, 0, import_ptb_unrecorded[i]);
    for (int i = 0; !rc && i < PART_COUNT; i++) {
        if (ir->has[i] || (rc = import_ptb_join(path, ir->path, import_ptb_part[i])))
            continue;
        char d[128];
        snprintf(d, sizeof d, "%s%s is not in the folder: %s", import_ptb_part[i],
                 i == PART_MODEL ? "/" : "", import_ptb_lost[i]);
        rc = import_ptb_bad(ir, ir->t_start, "missing", path, d);
    }
    if (!rc && ir->has[PART_TIME] && secs < 0 &&
        !(rc = import_ptb_join(path, ir->path, "time_taken.txt")))
        rc = import_ptb_bad(ir, ir->t_start, "bad_file", path,
                            "not H:MM:SS: run.end has no duration");
    if (!rc && ir->has[PART_PROMPT] && !prompt &&
        !(rc = import_ptb_join(path, ir->path, "prompt.txt")))
        rc = import_ptb_bad(ir, ir->t_start, "unreadable", path, "cannot read it: no prompt");
    if (!rc && prompt)
        rc = agent_parser_message(ir->p, "user", prompt, prompt_len, ir->t_start);
    int64_t last = ir->t_start;
    if (!rc && ir->has[PART_SOLVE] && !(rc = import_ptb_join(path, ir->path, "solve_out.txt")))
        rc = import_ptb_stream(ir, path, &last);
    if (!ir->duration_ns && last > ir->t_end)
        ir->t_end = last;
    if (!rc)
        rc = agent_parser_finish(ir->p, last);
    if (rc && agent_parser_errmsg(ir->p)[0])
        fprintf(stderr, "ptb import: %s: %s\n", store_dir(ir->s), agent_parser_errmsg(ir->p));
    if (!rc && !(rc = import_ptb_join(path, ir->path, "final_model"))) {
        ptb_errbuf eb = {{0}};
        rc = run_checkpoint_event(ir->s, path, NULL, PTB__V1__SOURCE__SOURCE_IMPORT, ir->t_end,
                                  &ir->frozen, &eb);
        if (rc)
            rc = import_ptb_bad(ir, ir->t_end, "unreadable", path, eb.msg);
        else
            ir->events++;
    }
    if (!rc && ir->has[PART_METRICS] && !(rc = import_ptb_join(path, ir->path, "metrics.json")))
        rc = import_ptb_metrics(ir, path);
    if (!rc)
        rc = import_ptb_files(ir);
    if (!rc)
        rc = import_ptb_end(ir);
    return rc;
}

static void import_ptb_summary(const import_ptb_run *ir, const char *dir, double secs)
{
    agent_stats st;
    agent_parser_stats(ir->p, &st);
    fprintf(stderr,
            "ptb import: %s imported into %s in %.2f s: run %s (benchmark %s, model %s); "
            "%" PRIu64 " stream lines (%" PRIu64 " with a time, format %s), %" PRIu64
            " tool calls, %" PRIu64 " results (%" PRIu64 " paired), %" PRIu64 " messages\n",
            ir->path, dir, secs, ir->name, ir->benchmark[0] ? ir->benchmark : "?",
            ir->model[0] ? ir->model : "?", ir->lines, ir->stamped,
            agent_format_name(agent_parser_format(ir->p)), st.calls, st.results, st.paired,
            st.messages);
    fprintf(stderr,
            "ptb import: eval: %s; final_model: %" PRIu64 " files, %" PRIu64 " tensors, %" PRIu64
            " bytes%s%s%s; %" PRIu64 " files of the folder kept; %" PRIu64 " gap events\n",
            ir->metrics_text[0] ? ir->metrics_text : "none", ir->frozen.files, ir->frozen.tensors,
            ir->frozen.bytes, ir->frozen.note[0] ? " (" : "",
            ir->frozen.note[0] ? ir->frozen.note : "", ir->frozen.note[0] ? ")" : "", ir->kept,
            ir->gaps + st.gaps);
    if (ir->lines && st.broken == st.lines - st.blank)
        fprintf(stderr, "ptb import: no line of solve_out.txt is a JSON object (an agent CLI "
                        "without a JSON mode?): the stream gave no events\n");
}

int import_ptb(const char *dir, const char *format, const char *store_dir, bool append)
{
    agent_options o;
    agent_options_default(&o);
    int code = import_agent_format(format, &o.format);
    if (code)
        return code;
    import_ptb_run ir;
    memset(&ir, 0, sizeof ir);
    struct stat st;
    if (stat(dir, &st) || !realpath(dir, ir.path)) {
        fprintf(stderr, "ptb import: cannot open %s: %s\n", dir, strerror(errno));
        return PTB_EXIT_ERROR;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "ptb import: %s is not a folder: not a PostTrainBench result folder\n",
                dir);
        return PTB_EXIT_CORRUPT;
    }
    char *slash = strrchr(ir.path, '/');
    snprintf(ir.name, sizeof ir.name, "%.*s", NAME_MAX, slash ? slash + 1 : ir.path);
    if (slash && slash > ir.path) {
        *slash = '\0';
        const char *up = strrchr(ir.path, '/');
        snprintf(ir.method, sizeof ir.method, "%.*s", NAME_MAX, up ? up + 1 : ir.path);
        *slash = '/';
    }
    int found = 0;
    for (int i = 0; i < PART_COUNT; i++) {
        char path[PATH_MAX];
        ir.has[i] = !import_ptb_join(path, ir.path, import_ptb_part[i]) && !stat(path, &st) &&
                    (i == PART_MODEL ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode));
        found += ir.has[i];
    }
    if (import_ptb_join(ir.solve, ir.path, "solve_out.txt"))
        found = 0; /* (a path that long has no parts either) */
    if (!found) {
        fprintf(stderr,
                "ptb import: %s is not a PostTrainBench result folder: it has none of "
                "solve_out.txt, prompt.txt, time_taken.txt, metrics.json and final_model/\n",
                dir);
        return PTB_EXIT_CORRUPT;
    }

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char *prompt = NULL;
    size_t prompt_len = 0;
    int64_t secs = import_ptb_facts(&ir, &o.format, &prompt, &prompt_len);
    agent_format fmt = o.format;
    code = import_store_open(store_dir, NULL, append, &ir.s);
    if (code) {
        free(prompt);
        return code;
    }
    o.s = ir.s;
    o.name = ir.solve;
    int rc = store_meta_set(ir.s, "import.ptb_results", ir.path);
    if (!rc && ir.method[0])
        rc = store_meta_set(ir.s, "import.ptb_method", ir.method);
    if (!rc)
        rc = agent_parser_new(&o, &ir.p);
    if (!rc)
        rc = import_ptb_events(&ir, fmt, prompt, prompt_len, secs);
    if (!rc && ir.has[PART_SOLVE])
        rc = store_meta_set(ir.s, "import.agent_format",
                            agent_format_name(agent_parser_format(ir.p)));
    free(prompt);
    if (rc == PTB_ENOMEM)
        fprintf(stderr, "ptb import: out of memory\n");
    code = rc ? ptb_exit_code(rc) : PTB_EXIT_OK;
    int frc = import_store_close(ir.s, store_dir, rc != 0);
    if (frc && !rc)
        code = ptb_exit_code(frc);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (!rc && !frc)
        import_ptb_summary(&ir, store_dir,
                           (double)(t1.tv_sec - t0.tv_sec) +
                               (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    agent_parser_free(ir.p);
    return code;
}
