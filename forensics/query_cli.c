/* `ptb query STORE [FILTER...]` (also run as `ptb-query`): print the events of a store that
 * match a filter, or the lineage of a file. docs/commands/ptb-query.md is the manual. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "event_json.h"
#include "filter_ast.h"
#include "ptb_cli.h"
#include "ptb_commands.h"
#include "query.h"
#include "query_contains.h"
#include "query_format.h"
#include "query_lineage.h"

enum {
    OPT_SINCE = 1,
    OPT_UNTIL,
    OPT_LIMIT,
    OPT_FORMAT,
    OPT_CONTAINS,
    OPT_TREE,
    OPT_LINEAGE,
    OPT_DEPTH,
    OPT_EXPLAIN,
    OPT_THREADS,
};

static const cli_option query_opts[] = {
    {"since", 0, "TIME", OPT_SINCE},
    {"until", 0, "TIME", OPT_UNTIL},
    {"limit", 'n', "N", OPT_LIMIT},
    {"format", 'f', "FORMAT", OPT_FORMAT},
    {"contains", 0, "TEXT", OPT_CONTAINS},
    {"tree", 0, "EXEC_ID", OPT_TREE},
    {"lineage", 0, "PATH", OPT_LINEAGE},
    {"depth", 0, "N", OPT_DEPTH},
    {"explain", 0, NULL, OPT_EXPLAIN},
    {"threads", 0, "N", OPT_THREADS},
    {NULL, 0, NULL, 0},
};

typedef enum { FMT_TABLE, FMT_JSONL, FMT_COUNT } out_format;

typedef struct run_state {
    out_format fmt;
    uint64_t limit, n;
    query_table tb;
    int err;
} run_state;

static int query_emit(void *arg, uint64_t seq, const ptb_event *ev)
{
    run_state *st = arg;
    (void)seq;
    st->n++;
    if (st->fmt == FMT_TABLE) {
        query_table_row(&st->tb, ev, stdout);
    } else if (st->fmt == FMT_JSONL) {
        char *line;
        size_t len;
        int rc = event_json_encode_line(ev, &line, &len);
        if (rc == 0) {
            fwrite(line, 1, len, stdout);
            fputc('\n', stdout);
            free(line);
        } else if (rc != PTB_EINVAL) {
            return rc;
        }
    }
    if (ferror(stdout))
        return -EIO;
    return st->limit && st->n >= st->limit ? 1 : 0;
}

/* --since / --until: absolute time, ns, or +DURATION from the first event. */
static int parse_when(store_txn *t, const char *s, int64_t *ns)
{
    if (s[0] == '+') {
        int64_t d;
        if (query_duration_parse(s, strlen(s), &d))
            return PTB_EINVAL;
        const ptb_event *first;
        int rc = store_event_get(t, 1, &first);
        if (rc == PTB_ENOTFOUND) {
            *ns = d;
            return 0;
        }
        if (rc)
            return rc;
        *ns = first->ts_ns + d;
        return 0;
    }
    return query_time_parse(s, strlen(s), ns) ? PTB_EINVAL : 0;
}

static void print_filter_error(const char *text, const filter_error *err)
{
    fprintf(stderr, "ptb query: filter:%d: %s\n", err->column, err->msg);
    if (strlen(text) < 300 && !strpbrk(text, "\n\t\r")) {
        fprintf(stderr, "  %s\n  %*s^\n", text, err->column > 0 ? err->column - 1 : 0, "");
    }
}

static int store_error(const char *dir, int rc, store *s)
{
    const char *m = s ? store_errmsg(s) : NULL;
    if (rc == -ENOENT || rc == PTB_ENOSTORE || rc == -ENOTDIR)
        fprintf(stderr, "ptb query: %s: not a ptb store (%s)\n", dir, ptb_strerror(rc));
    else
        fprintf(stderr, "ptb query: %s: %s\n", dir, m && *m ? m : ptb_strerror(rc));
    return ptb_exit_code(rc);
}

int query_main(int argc, char **argv)
{
    cli c;
    cli_init(&c, "query", query_opts, argc, argv);
    const char *dir = NULL, *since = NULL, *until = NULL, *contains = NULL, *lineage = NULL;
    unsigned long long limit = 0, tree = 0, depth = 6, threads = 0;
    bool have_tree = false, explain = false;
    out_format fmt = FMT_TABLE;
    char *ftext = NULL;
    size_t flen = 0;
    int code = PTB_EXIT_OK;
    for (int o; (o = cli_next(&c)) != CLI_END;) {
        switch (o) {
        case CLI_HELP:
            cli_help("query", stdout);
            free(ftext);
            return PTB_EXIT_OK;
        case CLI_LIST:
            cli_list_options(query_opts, stdout);
            free(ftext);
            return PTB_EXIT_OK;
        case CLI_ERROR: free(ftext); return cli_usage_error("query", "%s", c.err);
        case OPT_SINCE: since = c.optarg; break;
        case OPT_UNTIL: until = c.optarg; break;
        case OPT_LIMIT:
            if (!cli_parse_u64(c.optarg, &limit)) {
                free(ftext);
                return cli_usage_error("query", "--limit: '%s' is not a number", c.optarg);
            }
            break;
        case OPT_DEPTH:
            if (!cli_parse_u64(c.optarg, &depth) || depth > 64) {
                free(ftext);
                return cli_usage_error("query", "--depth: '%s' is not a number <= 64", c.optarg);
            }
            break;
        case OPT_THREADS:
            if (!cli_parse_u64(c.optarg, &threads) || threads > 64) {
                free(ftext);
                return cli_usage_error("query", "--threads: '%s' is not a number <= 64", c.optarg);
            }
            break;
        case OPT_TREE:
            if (!cli_parse_u64(c.optarg, &tree) || tree == 0) {
                free(ftext);
                return cli_usage_error("query", "--tree: '%s' is not an exec_id", c.optarg);
            }
            have_tree = true;
            break;
        case OPT_FORMAT:
            if (strcmp(c.optarg, "table") == 0)
                fmt = FMT_TABLE;
            else if (strcmp(c.optarg, "jsonl") == 0)
                fmt = FMT_JSONL;
            else if (strcmp(c.optarg, "count") == 0)
                fmt = FMT_COUNT;
            else {
                free(ftext);
                return cli_usage_error("query", "--format: '%s' is not table, jsonl or count",
                                       c.optarg);
            }
            break;
        case OPT_CONTAINS: contains = c.optarg; break;
        case OPT_LINEAGE: lineage = c.optarg; break;
        case OPT_EXPLAIN: explain = true; break;
        case CLI_POSITIONAL:
            if (!dir) {
                dir = c.optarg;
                break;
            }
            /* the filter: every further argument, joined by spaces */
            {
                size_t al = strlen(c.optarg);
                char *nf = realloc(ftext, flen + al + 2);
                if (!nf) {
                    free(ftext);
                    fprintf(stderr, "ptb query: out of memory\n");
                    return PTB_EXIT_ERROR;
                }
                ftext = nf;
                if (flen)
                    ftext[flen++] = ' ';
                memcpy(ftext + flen, c.optarg, al + 1);
                flen += al;
            }
            break;
        }
    }
    if (!dir) {
        free(ftext);
        return cli_usage_error("query", "which store? (ptb query STORE [FILTER])");
    }
    filter *f = NULL;
    filter_error ferr;
    int rc = filter_parse(ftext ? ftext : "", &f, &ferr);
    if (rc == PTB_EPARSE) {
        print_filter_error(ftext, &ferr);
        free(ftext);
        return PTB_EXIT_USAGE;
    }
    if (rc) {
        free(ftext);
        fprintf(stderr, "ptb query: %s\n", ptb_strerror(rc));
        return PTB_EXIT_ERROR;
    }
    if (lineage && (ftext || have_tree || contains || since || until)) {
        filter_free(f);
        free(ftext);
        return cli_usage_error("query", "--lineage takes no filter, --tree, --contains, --since "
                                        "or --until");
    }
    free(ftext);
    store *s = NULL;
    store_txn *t = NULL;
    query *q = NULL;
    query_contains *qc = NULL;
    ptb_errbuf eb = {{0}};
    rc = store_open(dir, NULL, STORE_RDONLY, &s);
    if (rc) {
        code = store_error(dir, rc, s);
        goto out;
    }
    if ((rc = store_txn_begin(s, &t))) {
        code = store_error(dir, rc, s);
        goto out;
    }
    if (lineage) {
        rc = query_lineage_print(s, t, lineage, (int)depth, stdout);
        if (rc) {
            fprintf(stderr, "ptb query: --lineage %s: %s\n", lineage, ptb_strerror(rc));
            code = ptb_exit_code(rc);
        }
        goto out;
    }
    int64_t ns;
    if (since) {
        if ((rc = parse_when(t, since, &ns))) {
            code = rc == PTB_EINVAL ? cli_usage_error("query", "--since: '%s' is not a time", since)
                                    : store_error(dir, rc, s);
            goto out;
        }
        filter_and(f, filter_node_cmp_int("evt.time", FOP_GE, &ns, 1));
    }
    if (until) {
        if ((rc = parse_when(t, until, &ns))) {
            code = rc == PTB_EINVAL ? cli_usage_error("query", "--until: '%s' is not a time", until)
                                    : store_error(dir, rc, s);
            goto out;
        }
        filter_and(f, filter_node_cmp_int("evt.time", FOP_LT, &ns, 1));
    }
    if (have_tree) {
        query_procs *procs;
        if ((rc = query_procs_build(t, &procs))) {
            code = store_error(dir, rc, s);
            goto out;
        }
        uint64_t *ids = NULL, one = tree;
        size_t n = 0;
        rc = query_procs_tree(procs, tree, &ids, &n);
        query_procs_free(procs);
        if (rc == PTB_ENOTFOUND) {
            fprintf(stderr, "ptb query: --tree: no proc.exec for exec_id %llu in the store\n",
                    tree);
            ids = &one;
            n = 1;
        } else if (rc) {
            code = store_error(dir, rc, s);
            goto out;
        }
        filter_and(f, filter_node_cmp_int("proc.exec_id", FOP_EQ, (const int64_t *)ids, n));
        if (ids != &one)
            free(ids);
    }
    if (!f->root) {
        fprintf(stderr, "ptb query: out of memory\n");
        code = PTB_EXIT_ERROR;
        goto out;
    }
    if (contains && !(qc = query_contains_new(contains, strlen(contains)))) {
        fprintf(stderr, "ptb query: out of memory\n");
        code = PTB_EXIT_ERROR;
        goto out;
    }
    if (qc && (rc = query_contains_prepare(qc, t))) {
        code = store_error(dir, rc, s);
        goto out;
    }
    query_options qo;
    query_options_default(&qo);
    qo.threads = (int)threads;
    qo.need_event = fmt != FMT_COUNT;
    if (qc) { /* checked in the workers, on each event the filter kept */
        qo.accept = query_contains_match;
        qo.accept_maybe = query_contains_maybe;
        qo.accept_arg = qc;
    }
    if ((rc = query_plan(s, t, f, &qo, &q, &eb))) {
        fprintf(stderr, "ptb query: %s: %s\n", dir, eb.msg);
        code = ptb_exit_code(rc);
        goto out;
    }
    if (explain) {
        query_explain(q, stdout);
        if (contains)
            printf("then: --contains '%s' on every match (string fields and blobs)\n", contains);
        goto out;
    }
    run_state st = {.fmt = fmt, .limit = limit};
    query_table_init(&st.tb, store_txn_last_seq(t));
    if (fmt == FMT_TABLE)
        query_table_header(&st.tb, stdout);
    rc = query_run(q, query_emit, &st);
    if (fmt == FMT_COUNT)
        printf("%" PRIu64 "\n", st.n);
    if (fflush(stdout) != 0 && !rc)
        rc = -EIO;
    if (rc) {
        fprintf(stderr, "ptb query: %s: %s\n", dir, ptb_strerror(rc));
        code = ptb_exit_code(rc);
        goto out;
    }
    uint64_t first, bad = query_corrupt(q, &first);
    if (bad) {
        fprintf(stderr,
                "ptb query: %s: %" PRIu64 " event%s did not decode (first: seq %" PRIu64
                "); results exclude them\n",
                dir, bad, bad == 1 ? "" : "s", first);
        code = PTB_EXIT_CORRUPT;
    }
    uint64_t bad_blobs = qc ? query_contains_blob_errors(qc) : 0;
    if (bad_blobs) {
        fprintf(stderr,
                "ptb query: %s: %" PRIu64 " blob%s did not read back (corrupt); --contains did "
                "not search them\n",
                dir, bad_blobs, bad_blobs == 1 ? "" : "s");
        code = PTB_EXIT_CORRUPT;
    }
out:
    query_contains_free(qc);
    query_free(q);
    store_txn_end(t);
    if (s)
        store_close(s);
    filter_free(f);
    return code;
}
