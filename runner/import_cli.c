/* ptb import --jsonl FILE STORE: build a store from the JSONL form of events (event_json.h), the
 * inverse of `ptb query --format jsonl`; ptb import --pcap FILE STORE: from a packet capture, the
 * inverse of `ptb export --pcap`. The page is docs/commands/ptb-import.md.
 *
 * One pass, in file order: each line is decoded and appended (the store assigns seqs from 1, or
 * after the last event with --append). Validating the whole file first would read a huge file
 * twice, so a bad line stops the import there: the store is flushed and closed holding the
 * events before it, and the command says how many (exit 4). With --skip-bad, bad lines are
 * counted and skipped, and a `gap` event (origin "import", reason "bad_line") at the end puts the
 * omission on record. Lines are at most 64 MiB; blank lines are skipped.
 *
 * --pcap: libpcap reads the file (pcap or pcapng, timestamps to the nanosecond) and every packet
 * goes through the flow engine (net_flow.h) as the live capture's do, kept whole (snaplen 0),
 * source SOURCE_IMPORT, on one interface: 0, or with --append the first number that the store's
 * meta keys `net.iface.N` do not name yet. A file whose header does not read is refused before
 * the store is created. A fault later on (a record cut off, a length that cannot be right, a
 * pcapng interface of a second link type) ends the import there: what came before is stored,
 * and a `gap` event (origin "import", reason "pcap_error", libpcap's message in `detail`, the
 * unread bytes of the file in `bytes`) records the rest (exit 4, as for a bad JSONL line).
 *
 * --agent-log: an agent's saved stream or transcript, in import_agent.c; --ptb-results: a
 * PostTrainBench result folder, in import_ptb.c. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libgen.h>
#include <sys/stat.h>

#include <pcap/pcap.h>

#include "event_json.h"
#include "import_agent.h"
#include "import_ptb.h"
#include "import_io.h"
#include "net_flow.h"
#include "ptb_cli.h"
#include "ptb_commands.h"
#include "store.h"

#define IMPORT_BAD_SHOWN 10 /* bad lines reported one by one with --skip-bad */

#define IMPORT_IFACE_MAX 4096                /* --append --pcap: interface numbers tried */
#define IMPORT_QUEUE_BYTES ((size_t)8 << 20) /* the store's queue for --pcap (default 64 MiB) */

enum {
    OPT_JSONL = 1,
    OPT_PCAP,
    OPT_AGENT_LOG,
    OPT_PTB_RESULTS,
    OPT_FORMAT,
    OPT_APPEND,
    OPT_SKIP_BAD
};

static const cli_option import_opts[] = {
    {"jsonl", 0, "FILE", OPT_JSONL},         {"pcap", 0, "FILE", OPT_PCAP},
    {"agent-log", 0, "FILE", OPT_AGENT_LOG}, {"ptb-results", 0, "DIR", OPT_PTB_RESULTS},
    {"format", 0, "FMT", OPT_FORMAT},        {"append", 0, NULL, OPT_APPEND},
    {"skip-bad", 0, NULL, OPT_SKIP_BAD},     {NULL, 0, NULL, 0},
};

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

/* ------------------------------------------------------------------ --pcap */

typedef struct import_pcap_run {
    const char *file_name; /* for messages and meta: the path, or "<stdin>" */
    const char *dir;       /* the store */
    store *s;              /* borrowed */
    pcap_t *p;             /* borrowed */
    net_flows *f;          /* borrowed */
    int64_t file_size;     /* of a regular file, else -1 */
    bool classic;          /* a pcap (not pcapng) file: see import_pcap_time */
    int frac_mul;          /* its fraction unit in ns: 1000 (us) or 1; 0 when unknown (a pipe) */
    uint32_t iface;
    int linktype;
    uint64_t packets, bytes;
    uint64_t bad_time; /* packets whose time is outside int64 ns (skipped, a gap records them) */
    bool fault;        /* the file could not be read to its end (a gap records it) */
    int64_t last_ts;
    bool tty;
    double t0, next_progress;
} import_pcap_run;

#define IMPORT_NS 1000000000LL
#define IMPORT_2_32 4294967296LL

/* The time of a record in ns since 1970; false when it is outside int64 ns (1677..2262, only a
 * pcapng can say that). A pcap record's seconds and fraction are unsigned 32-bit numbers (the
 * format: up to 2106), but libpcap 1.10 reads them as signed, so that 2038..2106 comes out as
 * 1901..1969 and an invalid fraction of 2^31 or more as a negative one; undo that here. With
 * nanosecond precision libpcap has multiplied a microsecond fraction by 1000 already: where the
 * file's unit is unknown (a pipe; its magic number could not be read ahead), a negative fraction
 * that is a multiple of 1000 is taken as microseconds. */
static bool import_pcap_time(const import_pcap_run *ir, const struct pcap_pkthdr *h, int64_t *ns)
{
    int64_t sec = (int64_t)h->ts.tv_sec, frac = (int64_t)h->ts.tv_usec;
    if (ir->classic) {
        if (sec < 0)
            sec += IMPORT_2_32;
        if (frac < 0) {
            int mul = ir->frac_mul ? ir->frac_mul : frac % 1000 == 0 ? 1000 : 1;
            frac += IMPORT_2_32 * mul;
        }
        *ns = sec * IMPORT_NS + frac; /* < 2^32 * 10^9 + 2^32 * 10^3: fits */
        return true;
    }
    if (sec > INT64_MAX / IMPORT_NS - 1 || sec < -(INT64_MAX / IMPORT_NS - 1))
        return false;
    *ns = sec * IMPORT_NS + frac; /* |frac| < 10^9 for a pcapng */
    return true;
}

/* --append: the first interface number that no `net.iface.N` meta key names yet (0 for a new
 * store). Returns 0 or the store's error. */
static int import_pcap_iface(store *s, uint32_t *iface)
{
    store_txn *t = NULL;
    int rc = store_txn_begin(s, &t);
    if (rc)
        return rc;
    rc = PTB_ETOOBIG; /* every number taken */
    for (uint32_t i = 0; i < IMPORT_IFACE_MAX; i++) {
        char key[32];
        const char *v;
        size_t n;
        snprintf(key, sizeof key, "net.iface.%" PRIu32, i);
        int r = store_meta_get(t, key, &v, &n);
        if (r == PTB_ENOTFOUND) {
            *iface = i;
            rc = 0;
            break;
        }
        if (r) {
            rc = r;
            break;
        }
    }
    store_txn_end(t);
    return rc;
}

static void import_pcap_progress(import_pcap_run *ir)
{
    double now = import_now();
    if (now < ir->next_progress)
        return;
    ir->next_progress = now + 1.0;
    fprintf(stderr, "\rptb import: %llu packets, %.1f MB, %.0f packets/s   ",
            (unsigned long long)ir->packets, (double)ir->bytes / 1e6,
            (double)ir->packets / (now - ir->t0 > 0 ? now - ir->t0 : 1));
}

/* A `gap` event: origin "import", the reason, count, bytes and detail. */
static int import_pcap_gap(import_pcap_run *ir, const char *reason, uint64_t count, uint64_t bytes,
                           const char *detail)
{
    Ptb__V1__Gap gap = PTB__V1__GAP__INIT;
    ptb_event ev = PTB__V1__EVENT__INIT;
    gap.origin = (char *)"import";
    gap.reason = (char *)reason;
    gap.count = count;
    gap.bytes = bytes;
    gap.path = (char *)ir->file_name;
    gap.detail = (char *)detail;
    ev.source = PTB__V1__SOURCE__SOURCE_IMPORT;
    ev.ts_ns = ir->last_ts; /* 0 (no packet imported): the store puts the current time */
    ev.body_case = PTB__V1__EVENT__BODY_GAP;
    ev.gap = &gap;
    return store_append(ir->s, &ev, 0, NULL);
}

/* Feed every packet to the flow engine. Returns 0 (after a fault of the file too: ir->fault set,
 * the message printed, the gap event appended) or the store's error. */
static int import_pcap_packets(import_pcap_run *ir)
{
    struct pcap_pkthdr *h;
    const u_char *data;
    int r, rc;
    while ((r = pcap_next_ex(ir->p, &h, &data)) == 1) {
        int64_t ts;
        if (!import_pcap_time(ir, h, &ts)) {
            ir->bad_time++;
            continue;
        }
        rc = net_flows_packet(ir->f, ts, ir->iface, ir->linktype, data, h->caplen, h->len);
        if (rc)
            return rc;
        ir->packets++;
        ir->bytes += h->caplen;
        ir->last_ts = ts;
        if (ir->tty && (ir->packets & 1023) == 0)
            import_pcap_progress(ir);
    }
    if (r == PCAP_ERROR_BREAK) /* -2: the end of the file */
        return 0;

    /* a fault: what is left of the file is not read */
    char detail[PCAP_ERRBUF_SIZE + 64];
    snprintf(detail, sizeof detail, "after packet %llu: %s", (unsigned long long)ir->packets,
             pcap_geterr(ir->p));
    uint64_t left = 0;
    FILE *in = pcap_file(ir->p);
    long pos = in && ir->file_size >= 0 ? ftell(in) : -1;
    if (pos >= 0 && pos <= ir->file_size)
        left = (uint64_t)(ir->file_size - pos);
    if (ir->tty)
        fputc('\r', stderr);
    fprintf(stderr, "%s: %s\n", ir->file_name, detail);
    ir->fault = true;
    return import_pcap_gap(ir, "pcap_error", 1, left, detail);
}

/* Open FILE with libpcap: ir->p, file_size, classic and frac_mul set, or an exit code (the
 * message printed). */
static int import_pcap_open(import_pcap_run *ir, const char *file)
{
    bool is_stdin = strcmp(file, "-") == 0;
    FILE *in = is_stdin ? stdin : fopen(file, "rb");
    if (!in) {
        fprintf(stderr, "ptb import: cannot open %s: %s\n", file, strerror(errno));
        return PTB_EXIT_ERROR;
    }
    struct stat st;
    bool reg = fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode);
    ir->file_size = reg ? (int64_t)st.st_size : -1;
    /* the magic number, read ahead where the file can be rewound: the fraction's unit */
    unsigned char m[4];
    if (reg && ftell(in) == 0 && fread(m, 1, 4, in) == 4) {
        uint32_t le =
            (uint32_t)m[0] | (uint32_t)m[1] << 8 | (uint32_t)m[2] << 16 | (uint32_t)m[3] << 24;
        uint32_t be = __builtin_bswap32(le);
        if (le == 0xa1b23c4d || be == 0xa1b23c4d)
            ir->frac_mul = 1;
        else if (le == 0xa1b2c3d4 || be == 0xa1b2c3d4 || le == 0xa1b2cd34 || be == 0xa1b2cd34)
            ir->frac_mul = 1000;
    }
    if (reg && fseek(in, 0, SEEK_SET) != 0) {
        fprintf(stderr, "ptb import: cannot read %s: %s\n", file, strerror(errno));
        if (!is_stdin)
            fclose(in);
        return PTB_EXIT_ERROR;
    }
    char err[PCAP_ERRBUF_SIZE] = "";
    ir->p = pcap_fopen_offline_with_tstamp_precision(in, PCAP_TSTAMP_PRECISION_NANO, err);
    if (!ir->p) {
        /* the file opened, so what failed is its header: not a capture libpcap reads */
        fprintf(stderr, "ptb import: %s: not a pcap or pcapng file libpcap reads: %s\n",
                ir->file_name, err);
        if (!is_stdin)
            fclose(in);
        return PTB_EXIT_CORRUPT;
    }
    /* pcap files are version 2.x; libpcap gives a pcapng's section version, 1.x */
    ir->classic = ir->frac_mul != 0 || pcap_major_version(ir->p) == 2;
    return PTB_EXIT_OK;
}

/* The meta keys of an imported capture. */
static int import_pcap_meta(import_pcap_run *ir)
{
    char key[32], val[PATH_MAX + 16], base[PATH_MAX];
    snprintf(base, sizeof base, "%s", ir->file_name);
    snprintf(val, sizeof val, "import:%s",
             strcmp(ir->file_name, "<stdin>") ? basename(base) : "stdin");
    snprintf(key, sizeof key, "net.iface.%" PRIu32, ir->iface);
    int rc = store_meta_set(ir->s, key, val);
    if (!rc)
        rc = store_meta_set(ir->s, "import.pcap", ir->file_name);
    return rc;
}

static int import_pcap(const char *file, const char *dir, bool append)
{
    import_pcap_run ir = {.file_name = strcmp(file, "-") == 0 ? "<stdin>" : file, .dir = dir};
    int code = import_pcap_open(&ir, file);
    if (code)
        return code;
    ir.linktype = pcap_datalink(ir.p);
    ir.t0 = import_now();
    ir.tty = isatty(STDERR_FILENO);
    ir.next_progress = ir.t0 + 1.0;

    /* one producer that may block: a short queue is as fast, and it is faulted in at open */
    store_options so;
    store_options_default(&so);
    so.queue_bytes = IMPORT_QUEUE_BYTES;
    code = import_store_open(dir, &so, append, &ir.s);
    if (code) {
        pcap_close(ir.p);
        return code;
    }
    int rc = append ? import_pcap_iface(ir.s, &ir.iface) : 0;
    if (!rc)
        rc = import_pcap_meta(&ir);
    net_flows_options o;
    net_flows_options_default(&o);
    o.source = PTB__V1__SOURCE__SOURCE_IMPORT;
    o.snaplen = 0; /* an imported capture is kept whole */
    if (!rc)
        rc = net_flows_new(ir.s, &o, &ir.f);
    if (!rc) {
        rc = import_pcap_packets(&ir);
        int frc = net_flows_finish(ir.f); /* also after a fault: the flows so far end "open" */
        if (!rc)
            rc = frc;
    }
    if (!rc && ir.bad_time) {
        char detail[128];
        snprintf(detail, sizeof detail,
                 "%llu packets with a time before 1678 or after 2261 skipped",
                 (unsigned long long)ir.bad_time);
        rc = import_pcap_gap(&ir, "bad_time", ir.bad_time, 0, detail);
    }
    net_flows_stats st = {0};
    if (ir.f)
        net_flows_stats_get(ir.f, &st);
    net_flows_free(ir.f);
    if (rc)
        fprintf(stderr, "%sptb import: %s: %s\n", ir.tty ? "\r" : "", dir,
                store_errmsg(ir.s)[0] ? store_errmsg(ir.s) : ptb_strerror(rc));
    code = rc ? ptb_exit_code(rc) : ir.fault ? PTB_EXIT_CORRUPT : PTB_EXIT_OK;
    int frc = import_store_close(ir.s, dir, rc != 0);
    if (frc && !rc) {
        rc = frc;
        code = ptb_exit_code(frc);
    }
    pcap_close(ir.p);

    if (ir.tty)
        fprintf(stderr, "\r%60s\r", "");
    if (!rc) {
        char name[64];
        const char *ln = pcap_datalink_val_to_name(ir.linktype);
        snprintf(name, sizeof name, "%s (%d)", ln ? ln : "unknown", ir.linktype);
        fprintf(stderr,
                "ptb import: %llu packets (%llu bytes, link type %s, iface %" PRIu32
                ") imported into %s in %.2f s: %llu flows, %llu dns, %llu tls, %llu http, "
                "%llu without an IP layer; %llu events\n",
                (unsigned long long)ir.packets, (unsigned long long)ir.bytes, name, ir.iface, dir,
                import_now() - ir.t0, (unsigned long long)st.flows, (unsigned long long)st.dns,
                (unsigned long long)st.tls, (unsigned long long)st.http,
                (unsigned long long)st.undecoded, (unsigned long long)st.events);
        if (ir.bad_time)
            fprintf(stderr,
                    "ptb import: %llu packets with a time before 1678 or after 2261 skipped "
                    "(a gap event records them)\n",
                    (unsigned long long)ir.bad_time);
        if (ir.fault)
            fprintf(stderr,
                    "ptb import: %s is damaged: the packets before the fault are in %s, "
                    "a gap event records the rest\n",
                    ir.file_name, dir);
    }
    return code;
}

int import_main(int argc, char **argv)
{
    const char *file = NULL, *pcap = NULL, *agent_log = NULL, *results = NULL, *format = NULL,
               *dir = NULL;
    bool append = false, skip_bad = false;
    cli c;
    cli_init(&c, "import", import_opts, argc, argv);
    int o;
    while ((o = cli_next(&c)) != CLI_END) {
        switch (o) {
        case OPT_JSONL: file = c.optarg; break;
        case OPT_PCAP: pcap = c.optarg; break;
        case OPT_AGENT_LOG: agent_log = c.optarg; break;
        case OPT_PTB_RESULTS: results = c.optarg; break;
        case OPT_FORMAT: format = c.optarg; break;
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
    if (!!file + !!pcap + !!agent_log + !!results > 1)
        return cli_usage_error("import", "--jsonl, --pcap, --agent-log and --ptb-results: one "
                                         "input at a time");
    if (!file && !pcap && !agent_log && !results)
        return cli_usage_error("import", "--jsonl FILE, --pcap FILE, --agent-log FILE or "
                                         "--ptb-results DIR is required");
    if (pcap && skip_bad)
        return cli_usage_error("import", "--skip-bad is for --jsonl (a pcap cannot be read past "
                                         "a fault)");
    if (agent_log && skip_bad)
        return cli_usage_error("import", "--skip-bad is for --jsonl (--agent-log records broken "
                                         "lines as gap events by itself)");
    if (results && skip_bad)
        return cli_usage_error("import", "--skip-bad is for --jsonl (--ptb-results records "
                                         "what it cannot read as gap events by itself)");
    if (format && !agent_log && !results)
        return cli_usage_error("import", "--format is for --agent-log and --ptb-results");
    if (!dir)
        return cli_usage_error("import", "missing STORE");
    if (pcap)
        return import_pcap(pcap, dir, append);
    if (agent_log)
        return import_agent(agent_log, format, dir, append);
    if (results)
        return import_ptb(results, format, dir, append);

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
    import_reader r;
    if (import_reader_init(&r, in)) {
        if (!is_stdin)
            fclose(in);
        fprintf(stderr, "ptb import: out of memory\n");
        return PTB_EXIT_ERROR;
    }

    import_run ir = {.file_name = is_stdin ? "<stdin>" : file, .skip_bad = skip_bad};
    ir.t0 = import_now();
    ir.tty = isatty(STDERR_FILENO);
    ir.next_progress = ir.t0 + 1.0;
    int code = import_store_open(dir, NULL, append, &ir.s);
    if (code) {
        import_reader_free(&r);
        if (!is_stdin)
            fclose(in);
        return code;
    }

    code = import_lines(&ir, &r);
    if (code == 0 && ir.bad) {
        int rc = import_append_gap(&ir);
        if (rc) {
            fprintf(stderr, "ptb import: %s: %s\n", dir, store_errmsg(ir.s));
            code = ptb_exit_code(rc);
        }
    }
    int rc = import_store_close(ir.s, dir, code != 0);
    if (rc && code == 0)
        code = ptb_exit_code(rc);
    import_reader_free(&r);
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
