/* ptb export --pcap FILE STORE: the stored packets (`net.packet` events) as a standard pcap file,
 * the inverse of `ptb import --pcap`. The page is docs/commands/ptb-export.md.
 *
 * Output: a classic pcap with nanosecond timestamps (magic a1b23c4d), written by libpcap
 * (pcap_open_dead_with_tstamp_precision + pcap_dump). Each record is one net.packet event in seq
 * order: ts from the envelope's ts_ns, caplen = the stored bytes (NetPacket.data, or the blob
 * NetPacket.blob names when it holds the whole packet), len = NetPacket.origlen.
 *
 * Two passes over the TYPE index postings of net.packet, in one read snapshot:
 *   1. scan: link types per interface, largest caplen, timestamps in range. A pcap file holds
 *      one link type and 32-bit unsigned seconds; a selection that does not fit is refused here,
 *      before a byte is written (a reader of a pipe would otherwise take a short file for a
 *      whole one).
 *   2. write: one record per event, streamed (one decoded event at a time).
 * A FILE is written as FILE.XXXXXX beside it and renamed over FILE at the end, so FILE is either
 * the whole export or untouched. Memory is bounded: the per-interface table of the scan holds at
 * most EXPORT_LINKS_MAX (iface, link type) pairs; the rest is counted together. */
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

#include <sys/stat.h>

#include <pcap/pcap.h>

#include "export_perfetto.h"
#include "ptb_cli.h"
#include "ptb_commands.h"
#include "store.h"

#define EXPORT_LINKS_MAX 64          /* distinct (iface, link type) pairs shown */
#define EXPORT_SNAPLEN_MIN 262144    /* header snaplen unless a packet is longer (tcpdump's) */
#define EXPORT_FLUSH_EVERY 4096      /* records between checks of the output for errors */
#define EXPORT_TS_MAX_S 4294967295LL /* pcap record seconds are 32-bit unsigned */
#define EXPORT_NS_PER_S 1000000000LL

enum { OPT_PCAP = 1, OPT_IFACE, OPT_FROM, OPT_TO, OPT_PERFETTO };

static const cli_option export_opts[] = {
    {"pcap", 0, "FILE", OPT_PCAP},         {"iface", 0, "N", OPT_IFACE},
    {"from", 0, "SEQ", OPT_FROM},          {"to", 0, "SEQ", OPT_TO},
    {"perfetto", 0, "FILE", OPT_PERFETTO}, {NULL, 0, NULL, 0},
};

typedef struct export_link {
    uint32_t iface, linktype;
    uint64_t packets;
} export_link;

typedef struct export_run {
    const char *dir;  /* the store, for messages */
    const char *file; /* the output as given ("-": stdout) */
    store *s;         /* owned */
    store_txn *t;     /* owned */
    store_range range;
    bool have_iface;
    uint32_t iface;

    /* scan */
    export_link links[EXPORT_LINKS_MAX];
    size_t nlinks;
    uint64_t links_other; /* packets of pairs beyond EXPORT_LINKS_MAX */
    uint64_t all;         /* net.packet events in the seq range, every iface */
    uint64_t selected;    /* ... of the chosen iface */
    uint32_t linktype;    /* of the first selected packet */
    bool mixed;           /* a selected packet has another link type */
    uint64_t max_caplen;
    uint64_t bad_ts, bad_ts_seq; /* timestamps a pcap cannot hold; the first one's seq */
    int64_t bad_ts_ns;
    uint64_t corrupt; /* events that did not decode (skipped, counted) */

    /* write */
    uint64_t written, bytes, from_blob, blob_missing;
    uint64_t first_seq, last_seq;

    bool tty;
    double t0, next_progress;
} export_run;

static double export_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void export_progress(export_run *er, const char *what, uint64_t done, uint64_t total)
{
    double now = export_now();
    if (!er->tty || now < er->next_progress)
        return;
    er->next_progress = now + 1.0;
    if (total)
        fprintf(stderr, "\r\033[Kptb export: %s %llu/%llu packets (%.0f%%)", what,
                (unsigned long long)done, (unsigned long long)total,
                100.0 * (double)done / (double)total);
    else
        fprintf(stderr, "\r\033[Kptb export: %s %llu packets", what, (unsigned long long)done);
}

/* Name of a link type for messages: "EN10MB (1)". buf is returned. */
static const char *export_link_name(uint32_t linktype, char *buf, size_t cap)
{
    const char *n = linktype <= INT_MAX ? pcap_datalink_val_to_name((int)linktype) : NULL;
    snprintf(buf, cap, "%s (%" PRIu32 ")", n ? n : "unknown", linktype);
    return buf;
}

static const Ptb__V1__NetPacket *export_packet_of(const ptb_event *ev)
{
    return ev->body_case == PTB__V1__EVENT__BODY_NET_PACKET ? ev->net_packet : NULL;
}

/* Does ts_ns fit a pcap record (seconds 0 .. 2^32-1)? */
static bool export_ts_ok(int64_t ts_ns)
{
    return ts_ns >= 0 && ts_ns / EXPORT_NS_PER_S <= EXPORT_TS_MAX_S;
}

/* ------------------------------------------------------------------ pass 1: scan */

static void export_count_link(export_run *er, uint32_t iface, uint32_t linktype)
{
    for (size_t i = 0; i < er->nlinks; i++)
        if (er->links[i].iface == iface && er->links[i].linktype == linktype) {
            er->links[i].packets++;
            return;
        }
    if (er->nlinks == EXPORT_LINKS_MAX) {
        er->links_other++;
        return;
    }
    er->links[er->nlinks++] = (export_link){iface, linktype, 1};
}

/* Returns 0 or the store's error. */
static int export_scan(export_run *er)
{
    store_cursor *c = NULL;
    int rc = store_cursor_open(er->t, &er->range, &c);
    if (rc)
        return rc;
    const ptb_event *ev;
    while ((rc = store_cursor_next(c, &ev)) != PTB_ENOTFOUND) {
        if (rc == PTB_ECORRUPT) {
            er->corrupt++;
            continue;
        }
        if (rc)
            break;
        const Ptb__V1__NetPacket *p = export_packet_of(ev);
        if (!p)
            continue;
        er->all++;
        export_count_link(er, p->iface, p->linktype);
        if (er->have_iface && p->iface != er->iface)
            continue;
        if (er->selected++ == 0)
            er->linktype = p->linktype;
        else if (p->linktype != er->linktype)
            er->mixed = true;
        if (p->data.len > er->max_caplen)
            er->max_caplen = p->data.len;
        if (p->caplen > er->max_caplen && p->blob.len == 32)
            er->max_caplen = p->caplen; /* the blob may hold it whole */
        if (!export_ts_ok(ev->ts_ns) && er->bad_ts++ == 0) {
            er->bad_ts_seq = ev->seq;
            er->bad_ts_ns = ev->ts_ns;
        }
        if ((er->all & 1023) == 0)
            export_progress(er, "scanning", er->all, 0);
    }
    store_cursor_close(c);
    return rc == PTB_ENOTFOUND ? 0 : rc;
}

/* The link type of the selection, or false (with the message printed) when there are several. */
static bool export_one_link(export_run *er, uint32_t *linktype)
{
    if (!er->mixed) {
        *linktype = er->selected ? er->linktype : DLT_RAW;
        return true;
    }
    char name[96];
    fprintf(stderr,
            "ptb export: a pcap file holds one link type, and the %s packets have several:\n",
            er->have_iface ? "selected" : "stored");
    for (size_t i = 0; i < er->nlinks; i++) {
        if (er->have_iface && er->links[i].iface != er->iface)
            continue;
        fprintf(stderr, "  iface %" PRIu32 ": link type %s: %" PRIu64 " packet%s\n",
                er->links[i].iface, export_link_name(er->links[i].linktype, name, sizeof name),
                er->links[i].packets, er->links[i].packets == 1 ? "" : "s");
    }
    if (er->links_other)
        fprintf(stderr, "  (%" PRIu64 " more packets of other ifaces and link types)\n",
                er->links_other);
    if (er->have_iface)
        fprintf(stderr,
                "Export the packets of one link type at a time with --from SEQ and --to SEQ "
                "(ptb query %s 'evt.type = net.packet' shows their seqs).\n",
                er->dir);
    else
        fprintf(stderr, "Export one interface at a time with --iface N (and, where one interface "
                        "has several link types, --from SEQ/--to SEQ).\n");
    return false;
}

/* ------------------------------------------------------------------ pass 2: write */

/* The bytes of a packet to write: the stored prefix, or the blob when it holds the packet whole
 * (its bytes start with the stored ones and go on). *owned is set when the caller must free. */
static void export_bytes(export_run *er, const Ptb__V1__NetPacket *p, const uint8_t **data,
                         size_t *len, void **owned)
{
    *data = p->data.data;
    *len = p->data.len;
    *owned = NULL;
    if (p->blob.len != 32 || p->caplen <= p->data.len)
        return;
    void *b = NULL;
    size_t blen = 0;
    if (store_blob_get(er->t, p->blob.data, &b, &blen) != 0) {
        er->blob_missing++;
        return;
    }
    if (blen > p->data.len && blen <= UINT32_MAX &&
        (p->data.len == 0 || memcmp(b, p->data.data, p->data.len) == 0)) {
        *data = b;
        *len = blen;
        *owned = b;
        er->from_blob++;
        return;
    }
    free(b);
    er->blob_missing++;
}

/* Returns 0 or an error: the output's (*out_err set) or the store's. */
static int export_write(export_run *er, pcap_dumper_t *d, FILE *out, bool *out_err)
{
    *out_err = false;
    store_cursor *c = NULL;
    int rc = store_cursor_open(er->t, &er->range, &c);
    if (rc)
        return rc;
    const ptb_event *ev;
    while ((rc = store_cursor_next(c, &ev)) != PTB_ENOTFOUND) {
        if (rc == PTB_ECORRUPT)
            continue; /* counted by the scan */
        if (rc)
            break;
        const Ptb__V1__NetPacket *p = export_packet_of(ev);
        if (!p || (er->have_iface && p->iface != er->iface))
            continue;
        const uint8_t *data;
        size_t len;
        void *owned;
        export_bytes(er, p, &data, &len, &owned);
        struct pcap_pkthdr h;
        memset(&h, 0, sizeof h);
        /* nanosecond pcap_t: pcap_dump writes tv_usec as the nanoseconds (checked range: scan) */
        h.ts.tv_sec = (time_t)(ev->ts_ns / EXPORT_NS_PER_S);
        h.ts.tv_usec = (suseconds_t)(ev->ts_ns % EXPORT_NS_PER_S);
        h.caplen = (bpf_u_int32)len;
        /* a 32-bit field: an origlen beyond it (only a hand-made event has one) is clamped */
        h.len = p->origlen > UINT32_MAX ? UINT32_MAX : (bpf_u_int32)p->origlen;
        pcap_dump((u_char *)d, &h, data);
        free(owned);
        if (er->written++ == 0)
            er->first_seq = ev->seq;
        er->last_seq = ev->seq;
        er->bytes += len;
        if ((er->written % EXPORT_FLUSH_EVERY) == 0) {
            if (ferror(out)) {
                rc = errno ? -errno : PTB_EIO;
                *out_err = true;
                break;
            }
            export_progress(er, "writing", er->written, er->selected);
        }
    }
    store_cursor_close(c);
    if (rc != PTB_ENOTFOUND)
        return rc;
    if (pcap_dump_flush(d) != 0 || ferror(out)) {
        *out_err = true;
        return errno ? -errno : PTB_EIO;
    }
    return 0;
}

/* ------------------------------------------------------------------ output file */

/* Open the output: stdout; FILE itself when it is there and not a regular file (a FIFO,
 * /dev/stdout, a link: what it is stays); else a temporary file beside FILE (*tmp, caller frees),
 * renamed over FILE at the end. */
static int export_out_open(const char *file, FILE **out, char **tmp)
{
    *tmp = NULL;
    if (strcmp(file, "-") == 0) {
        *out = stdout;
        return 0;
    }
    struct stat st;
    if (lstat(file, &st) == 0 && !S_ISREG(st.st_mode)) {
        *out = fopen(file, "wb");
        return *out ? 0 : -errno;
    }
    size_t n = strlen(file);
    char *t = malloc(n + 8);
    if (!t)
        return PTB_ENOMEM;
    memcpy(t, file, n);
    memcpy(t + n, ".XXXXXX", 8);
    int fd = mkstemp(t);
    if (fd < 0) {
        int e = -errno;
        free(t);
        return e;
    }
    /* mkstemp makes it 0600: give it the mode a new file gets (0666 less the umask) */
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0) {
        int e = -errno;
        close(fd);
        unlink(t);
        free(t);
        return e;
    }
    *out = fdopen(fd, "wb");
    if (!*out) {
        int e = -errno;
        close(fd);
        unlink(t);
        free(t);
        return e;
    }
    *tmp = t;
    return 0;
}

/* Write the whole pcap (header and records) to a new output. Returns an exit code. */
static int export_to_file(export_run *er, uint32_t linktype)
{
    int snaplen = EXPORT_SNAPLEN_MIN;
    if (er->max_caplen > (uint64_t)snaplen)
        snaplen = er->max_caplen > INT_MAX ? INT_MAX : (int)er->max_caplen;
    pcap_t *p =
        pcap_open_dead_with_tstamp_precision((int)linktype, snaplen, PCAP_TSTAMP_PRECISION_NANO);
    if (!p) {
        fprintf(stderr, "ptb export: out of memory\n");
        return PTB_EXIT_ERROR;
    }
    FILE *out = NULL;
    char *tmp = NULL;
    int rc = export_out_open(er->file, &out, &tmp);
    if (rc) {
        fprintf(stderr, "ptb export: cannot create %s: %s\n", er->file, ptb_strerror(rc));
        pcap_close(p);
        return PTB_EXIT_ERROR;
    }
    pcap_dumper_t *d = pcap_dump_fopen(p, out);
    if (!d) {
        fprintf(stderr, "ptb export: %s: %s\n", er->file, pcap_geterr(p));
        if (out != stdout)
            fclose(out);
        if (tmp)
            unlink(tmp);
        free(tmp);
        pcap_close(p);
        return PTB_EXIT_ERROR;
    }
    bool out_err;
    rc = export_write(er, d, out, &out_err);
    if (er->tty)
        fprintf(stderr, "\r\033[K");
    int code = PTB_EXIT_OK;
    if (rc && out_err) {
        fprintf(stderr, "ptb export: writing %s: %s\n", er->file, ptb_strerror(rc));
        code = PTB_EXIT_ERROR;
    } else if (rc) {
        fprintf(stderr, "ptb export: reading %s: %s\n", er->dir, ptb_strerror(rc));
        code = ptb_exit_code(rc);
    }
    if (tmp) {
        /* pcap_dump_close closes out; its fclose error is lost, so check before */
        if (!code && (fflush(out) != 0 || fsync(fileno(out)) != 0)) {
            fprintf(stderr, "ptb export: writing %s: %s\n", er->file, strerror(errno));
            code = PTB_EXIT_ERROR;
        }
        pcap_dump_close(d);
        if (!code && rename(tmp, er->file) != 0) {
            fprintf(stderr, "ptb export: cannot rename %s to %s: %s\n", tmp, er->file,
                    strerror(errno));
            code = PTB_EXIT_ERROR;
        }
        if (code)
            unlink(tmp);
        free(tmp);
    } else {
        if (!code && fflush(out) != 0) {
            fprintf(stderr, "ptb export: writing %s: %s\n",
                    out == stdout ? "to standard output" : er->file, strerror(errno));
            code = PTB_EXIT_ERROR;
        }
        pcap_dump_close(d); /* closes out, stdout too: nothing is written to it after this */
    }
    pcap_close(p);
    return code;
}

/* ------------------------------------------------------------------ the command */

static int export_run_all(export_run *er)
{
    int rc = store_open(er->dir, NULL, STORE_RDONLY, &er->s);
    if (!rc)
        rc = store_txn_begin(er->s, &er->t);
    if (rc) {
        fprintf(stderr, "ptb export: %s: %s\n", er->dir,
                er->s && store_errmsg(er->s)[0] ? store_errmsg(er->s) : ptb_strerror(rc));
        return ptb_exit_code(rc);
    }
    rc = export_scan(er);
    if (er->tty)
        fprintf(stderr, "\r\033[K");
    if (rc) {
        fprintf(stderr, "ptb export: reading %s: %s\n", er->dir, ptb_strerror(rc));
        return ptb_exit_code(rc);
    }

    uint32_t linktype;
    if (!export_one_link(er, &linktype))
        return PTB_EXIT_USAGE;
    if (er->bad_ts) {
        fprintf(stderr,
                "ptb export: %" PRIu64 " packet%s with a time a pcap file cannot hold (seconds "
                "since 1970 from 0 to 2^32-1, up to 2106-02-07); the first is seq %" PRIu64
                " (ts_ns %" PRId64 "). Leave %s out with --from SEQ/--to SEQ.\n",
                er->bad_ts, er->bad_ts == 1 ? "" : "s", er->bad_ts_seq, er->bad_ts_ns,
                er->bad_ts == 1 ? "it" : "them");
        return PTB_EXIT_USAGE;
    }

    int code = export_to_file(er, linktype);
    if (code)
        return code;

    char name[96];
    const char *where = strcmp(er->file, "-") == 0 ? "standard output" : er->file;
    if (er->selected == 0) {
        if (er->have_iface && er->all)
            fprintf(stderr,
                    "ptb export: no net.packet events on iface %" PRIu32 " in %s (%" PRIu64
                    " on other ifaces); wrote an empty pcap (link type RAW) to %s\n",
                    er->iface, er->dir, er->all, where);
        else
            fprintf(stderr,
                    "ptb export: no net.packet events in %s; wrote an empty pcap (link type "
                    "RAW) to %s\n",
                    er->dir, where);
    } else {
        fprintf(stderr,
                "ptb export: %" PRIu64 " packets (%" PRIu64 " bytes, seq %" PRIu64 "..%" PRIu64
                ", link type %s) from %s written to %s in %.2f s\n",
                er->written, er->bytes, er->first_seq, er->last_seq,
                export_link_name(linktype, name, sizeof name), er->dir, where,
                export_now() - er->t0);
    }
    if (er->from_blob)
        fprintf(stderr, "ptb export: %" PRIu64 " packets written whole from their blobs\n",
                er->from_blob);
    if (er->blob_missing)
        fprintf(stderr,
                "ptb export: warning: %" PRIu64 " packets name a blob that is missing or does "
                "not match; their stored prefix was written\n",
                er->blob_missing);
    if (er->corrupt) {
        fprintf(stderr,
                "ptb export: %" PRIu64 " events of %s do not decode and were left out (run ptb "
                "verify)\n",
                er->corrupt, er->dir);
        return PTB_EXIT_CORRUPT;
    }
    return PTB_EXIT_OK;
}

int export_main(int argc, char **argv)
{
    export_run er = {.range = {.by_index = true,
                               .index = STORE_IX_TYPE,
                               .key = PTB__V1__EVENT__BODY_NET_PACKET}};
    unsigned long long v;
    const char *perfetto = NULL;
    cli c;
    cli_init(&c, "export", export_opts, argc, argv);
    for (int o; (o = cli_next(&c)) != CLI_END;) {
        switch (o) {
        case CLI_HELP: cli_help("export", stdout); return PTB_EXIT_OK;
        case CLI_LIST: cli_list_options(export_opts, stdout); return PTB_EXIT_OK;
        case CLI_ERROR: return cli_usage_error("export", "%s", c.err);
        case OPT_PCAP: er.file = c.optarg; break;
        case OPT_PERFETTO: perfetto = c.optarg; break;
        case OPT_IFACE:
            if (!cli_parse_u64(c.optarg, &v) || v > UINT32_MAX)
                return cli_usage_error("export", "--iface: '%s' is not an interface number",
                                       c.optarg);
            er.have_iface = true;
            er.iface = (uint32_t)v;
            break;
        case OPT_FROM:
        case OPT_TO:
            if (!cli_parse_u64(c.optarg, &v) || v == 0)
                return cli_usage_error("export", "--%s: '%s' is not a seq (1, 2, ...)",
                                       o == OPT_FROM ? "from" : "to", c.optarg);
            if (o == OPT_FROM)
                er.range.seq_from = v;
            else
                er.range.seq_to = v;
            break;
        case CLI_POSITIONAL:
            if (er.dir)
                return cli_usage_error("export", "one STORE only (got '%s' and '%s')", er.dir,
                                       c.optarg);
            er.dir = c.optarg;
            break;
        }
    }
    if (!er.file == !perfetto)
        return cli_usage_error("export", "one of --pcap FILE or --perfetto FILE is required");
    if (perfetto && er.have_iface)
        return cli_usage_error("export", "--iface goes with --pcap");
    if (!er.dir)
        return cli_usage_error("export", "missing STORE");
    if (er.range.seq_from && er.range.seq_to && er.range.seq_from > er.range.seq_to)
        return cli_usage_error("export", "--from %llu is after --to %llu",
                               (unsigned long long)er.range.seq_from,
                               (unsigned long long)er.range.seq_to);
    if (perfetto)
        return export_perfetto(er.dir, perfetto, er.range.seq_from, er.range.seq_to);
    er.tty = isatty(STDERR_FILENO);
    er.t0 = export_now();
    er.next_progress = er.t0 + 1.0;
    int code = export_run_all(&er);
    store_txn_end(er.t);
    store_close(er.s);
    return code;
}
