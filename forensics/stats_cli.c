/* `ptb stats STORE`: what a store holds, from its indexes and summary (no event scan): events
 * per type, time span, seqs, size, blobs, strings, the gaps it records (the gap events are
 * read through the TYPE index), and GPU kernels summed per name, device and process
 * (stats_gpu.c, also through the TYPE index). docs/commands/ptb-stats.md is the manual. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "filter_ast.h"
#include "ptb_cli.h"
#include "ptb_commands.h"
#include "stats_gpu.h"
#include "store.h"

enum { OPT_FORMAT = 1 };
static const cli_option stats_opts[] = {
    {"format", 'f', "FORMAT", OPT_FORMAT},
    {NULL, 0, NULL, 0},
};

#define STATS_TYPES_MAX 128
#define STATS_GAPS_MAX 256

typedef struct type_count {
    uint64_t key, count;
} type_count;

typedef struct gap_sum {
    char origin[64], reason[64];
    uint64_t count, bytes, events;
} gap_sum;

typedef struct stats {
    type_count types[STATS_TYPES_MAX];
    size_t ntypes;
    gap_sum gaps[STATS_GAPS_MAX];
    size_t ngaps;
    uint64_t gap_other; /* gap events beyond STATS_GAPS_MAX distinct (origin, reason) */
} stats;

static int type_cb(void *arg, uint64_t key, uint64_t count)
{
    stats *st = arg;
    if (st->ntypes < STATS_TYPES_MAX)
        st->types[st->ntypes++] = (type_count){key, count};
    return 0;
}

static int read_gaps(store_txn *t, stats *st)
{
    store_range r = {.by_index = true, .index = STORE_IX_TYPE, .key = PTB__V1__EVENT__BODY_GAP};
    store_cursor *c;
    int rc = store_cursor_open(t, &r, &c);
    if (rc)
        return rc;
    const ptb_event *ev;
    while ((rc = store_cursor_next(c, &ev)) != PTB_ENOTFOUND) {
        if (rc)
            break;
        if (ev->body_case != PTB__V1__EVENT__BODY_GAP || !ev->gap)
            continue;
        const char *src = ev->gap->origin ? ev->gap->origin : "";
        const char *rea = ev->gap->reason ? ev->gap->reason : "";
        gap_sum *g = NULL;
        for (size_t i = 0; i < st->ngaps && !g; i++)
            if (strncmp(st->gaps[i].origin, src, sizeof g->origin - 1) == 0 &&
                strncmp(st->gaps[i].reason, rea, sizeof g->reason - 1) == 0)
                g = &st->gaps[i];
        if (!g) {
            if (st->ngaps == STATS_GAPS_MAX) {
                st->gap_other++;
                continue;
            }
            g = &st->gaps[st->ngaps++];
            snprintf(g->origin, sizeof g->origin, "%s", src);
            snprintf(g->reason, sizeof g->reason, "%s", rea);
        }
        g->count += ev->gap->count;
        g->bytes += ev->gap->bytes;
        g->events++;
    }
    store_cursor_close(c);
    return rc == PTB_ENOTFOUND ? 0 : rc;
}

static void human_bytes(uint64_t b, char *buf, size_t cap)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int i = 0;
    while (v >= 1024 && i < 4) {
        v /= 1024;
        i++;
    }
    snprintf(buf, cap, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

static void human_dur(int64_t ns, char *buf, size_t cap)
{
    int64_t s = ns / 1000000000;
    if (s >= 3600)
        snprintf(buf, cap, "%" PRId64 "h%02" PRId64 "m%02" PRId64 "s", s / 3600, s / 60 % 60,
                 s % 60);
    else if (s >= 60)
        snprintf(buf, cap, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
    else
        snprintf(buf, cap, "%.3fs", (double)ns / 1e9);
}

static void print_table(const char *dir, const store_summary *sum, const stats *st,
                        const stats_gpu *g)
{
    char a[48], b[48], d[48];
    printf("store:          %s\n", dir);
    printf("schema version: %u\n", sum->schema_version);
    if (sum->events)
        printf("events:         %" PRIu64 " (seq 1..%" PRIu64 ")\n", sum->events, sum->events);
    else
        printf("events:         0\n");
    if (sum->events) {
        query_time_format(sum->ts_min, 3, a, sizeof a);
        query_time_format(sum->ts_max, 3, b, sizeof b);
        human_dur(sum->ts_max - sum->ts_min, d, sizeof d);
        printf("time:           %s .. %s (%s)\n", a, b, d);
    }
    printf("batches:        %" PRIu64 "\n", sum->batches);
    human_bytes(sum->file_bytes, a, sizeof a);
    printf("size on disk:   %s (%" PRIu64 " bytes)\n", a, sum->file_bytes);
    human_bytes(sum->blob_zbytes, a, sizeof a);
    printf("blobs:          %" PRIu64 " (%s compressed)\n", sum->blobs, a);
    printf("strings:        %" PRIu64 "\n", sum->strings);
    char head[65];
    store_hex(sum->chain_head, 32, head);
    printf("chain head:     %s\n", head);
    printf("events by type:\n");
    for (size_t i = 0; i < st->ntypes; i++) {
        const char *n = event_type_name((uint32_t)st->types[i].key);
        if (n)
            printf("  %-16s %12" PRIu64 "\n", n, st->types[i].count);
        else
            printf("  (type %" PRIu64 ") %12" PRIu64 "\n", st->types[i].key, st->types[i].count);
    }
    if (st->ngaps == 0) {
        printf("gaps:           none recorded\n");
    } else {
        printf("gaps (origin/reason: total count, events):\n");
        for (size_t i = 0; i < st->ngaps; i++)
            printf("  %s/%s: %" PRIu64 " (%" PRIu64 " event%s)\n", st->gaps[i].origin,
                   st->gaps[i].reason, st->gaps[i].count, st->gaps[i].events,
                   st->gaps[i].events == 1 ? "" : "s");
        if (st->gap_other)
            printf("  (%" PRIu64 " more gap events of other kinds)\n", st->gap_other);
    }
    if (!stats_gpu_empty(g))
        stats_gpu_print(g, 20);
}

static int print_json(const char *dir, const store_summary *sum, const stats *st,
                      const stats_gpu *g)
{
    json_t *o = json_object(), *types = json_object(), *gaps = json_array();
    char a[48], head[65];
    if (!o || !types || !gaps) {
        json_decref(o);
        json_decref(types);
        json_decref(gaps);
        return PTB_ENOMEM;
    }
    json_object_set_new(o, "store", json_string(dir));
    json_object_set_new(o, "schema_version", json_integer(sum->schema_version));
    json_object_set_new(o, "events", json_integer((json_int_t)sum->events));
    json_object_set_new(o, "first_seq", json_integer(sum->events ? 1 : 0));
    json_object_set_new(o, "last_seq", json_integer((json_int_t)sum->events));
    json_object_set_new(o, "ts_min", json_integer(sum->ts_min));
    json_object_set_new(o, "ts_max", json_integer(sum->ts_max));
    if (sum->events) {
        query_time_format(sum->ts_min, 9, a, sizeof a);
        json_object_set_new(o, "time_first", json_string(a));
        query_time_format(sum->ts_max, 9, a, sizeof a);
        json_object_set_new(o, "time_last", json_string(a));
    }
    json_object_set_new(o, "batches", json_integer((json_int_t)sum->batches));
    json_object_set_new(o, "file_bytes", json_integer((json_int_t)sum->file_bytes));
    json_object_set_new(o, "blobs", json_integer((json_int_t)sum->blobs));
    json_object_set_new(o, "blob_zbytes", json_integer((json_int_t)sum->blob_zbytes));
    json_object_set_new(o, "strings", json_integer((json_int_t)sum->strings));
    store_hex(sum->chain_head, 32, head);
    json_object_set_new(o, "chain_head", json_string(head));
    for (size_t i = 0; i < st->ntypes; i++) {
        const char *n = event_type_name((uint32_t)st->types[i].key);
        char tmp[32];
        if (!n) {
            snprintf(tmp, sizeof tmp, "%" PRIu64, st->types[i].key);
            n = tmp;
        }
        json_object_set_new(types, n, json_integer((json_int_t)st->types[i].count));
    }
    json_object_set_new(o, "types", types);
    for (size_t i = 0; i < st->ngaps; i++)
        json_array_append_new(gaps, json_pack("{s:s, s:s, s:I, s:I, s:I}", "origin",
                                              st->gaps[i].origin, "reason", st->gaps[i].reason,
                                              "count", (json_int_t)st->gaps[i].count, "bytes",
                                              (json_int_t)st->gaps[i].bytes, "events",
                                              (json_int_t)st->gaps[i].events));
    json_object_set_new(o, "gaps", gaps);
    json_object_set_new(o, "gap_events_other", json_integer((json_int_t)st->gap_other));
    if (!stats_gpu_empty(g))
        json_object_set_new(o, "gpu", stats_gpu_json(g));
    int rc = json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0 ? 0 : -EIO;
    fputc('\n', stdout);
    json_decref(o);
    return rc;
}

int stats_main(int argc, char **argv)
{
    cli c;
    cli_init(&c, "stats", stats_opts, argc, argv);
    const char *dir = NULL;
    bool json = false;
    for (int o; (o = cli_next(&c)) != CLI_END;) {
        switch (o) {
        case CLI_HELP: cli_help("stats", stdout); return PTB_EXIT_OK;
        case CLI_LIST: cli_list_options(stats_opts, stdout); return PTB_EXIT_OK;
        case CLI_ERROR: return cli_usage_error("stats", "%s", c.err);
        case OPT_FORMAT:
            if (strcmp(c.optarg, "json") == 0)
                json = true;
            else if (strcmp(c.optarg, "table") == 0)
                json = false;
            else
                return cli_usage_error("stats", "--format: '%s' is not table or json", c.optarg);
            break;
        case CLI_POSITIONAL:
            if (dir)
                return cli_usage_error("stats", "one store at a time");
            dir = c.optarg;
            break;
        }
    }
    if (!dir)
        return cli_usage_error("stats", "which store? (ptb stats STORE)");
    store *s = NULL;
    store_txn *t = NULL;
    int rc = store_open(dir, NULL, STORE_RDONLY, &s);
    stats *st = calloc(1, sizeof *st);
    store_summary sum;
    if (!st)
        rc = PTB_ENOMEM;
    if (!rc)
        rc = store_txn_begin(s, &t);
    if (!rc)
        rc = store_summary_get(t, &sum);
    if (!rc)
        rc = store_index_foreach_key(t, STORE_IX_TYPE, type_cb, st);
    if (!rc)
        rc = read_gaps(t, st);
    stats_gpu *g = NULL;
    if (!rc)
        rc = stats_gpu_read(t, &g);
    for (size_t i = 0; !rc && i < st->ntypes; i++) /* the index counts batches: launches here */
        if (st->types[i].key == PTB__V1__EVENT__BODY_GPU_KERNEL)
            st->types[i].count = stats_gpu_kernels(g);
    if (!rc) {
        if (json)
            rc = print_json(dir, &sum, st, g);
        else
            print_table(dir, &sum, st, g);
        if (fflush(stdout) != 0 && !rc)
            rc = -EIO;
    }
    int code = PTB_EXIT_OK;
    if (rc) {
        const char *m = s ? store_errmsg(s) : NULL;
        if (rc == -ENOENT || rc == PTB_ENOSTORE || rc == -ENOTDIR)
            fprintf(stderr, "ptb stats: %s: not a ptb store (%s)\n", dir, ptb_strerror(rc));
        else
            fprintf(stderr, "ptb stats: %s: %s\n", dir, m && *m ? m : ptb_strerror(rc));
        code = ptb_exit_code(rc);
    }
    free(st);
    stats_gpu_free(g);
    store_txn_end(t);
    if (s)
        store_close(s);
    return code;
}
