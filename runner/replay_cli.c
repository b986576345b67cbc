/* `ptb replay fs | diff | exec | train` (docs/commands/ptb-replay.md): a recorded run's files
 * rebuilt at any event, what changed between two events, its tool calls and its training run
 * again (replay/replay.h). */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter_ast.h"
#include "ptb_cli.h"
#include "ptb_commands.h"
#include "replay.h"
#include "replay_run.h"

enum {
    OPT_AT = 1,
    OPT_TO,
    OPT_FROM,
    OPT_UNTIL,
    OPT_ROOT,
    OPT_CREATE_MISSING,
    OPT_FILL_FROM,
    OPT_JSON,
    OPT_QUIET,
    OPT_PROCESS,
    OPT_DEVICE,
    OPT_OUT,
    OPT_WORK,
    OPT_THREADS,
    OPT_TIMEOUT,
};
static const cli_option replay_opts[] = {
    {"at", 0, "SEQ|TIME", OPT_AT},          {"to", 0, "DIR|SEQ", OPT_TO},
    {"from", 0, "SEQ|TIME", OPT_FROM},      {"until", 0, "SEQ|TIME", OPT_UNTIL},
    {"root", 0, "PATH", OPT_ROOT},          {"create-missing", 0, NULL, OPT_CREATE_MISSING},
    {"fill-from", 0, "DIR", OPT_FILL_FROM}, {"json", 0, NULL, OPT_JSON},
    {"quiet", 'q', NULL, OPT_QUIET},        {"process", 0, "EXEC_ID", OPT_PROCESS},
    {"device", 0, "DEV", OPT_DEVICE},       {"out", 'o', "DIR", OPT_OUT},
    {"work", 0, "DIR", OPT_WORK},           {"threads", 0, "N", OPT_THREADS},
    {"timeout", 0, "SECONDS", OPT_TIMEOUT}, {NULL, 0, NULL, 0},
};

typedef struct replay_args {
    const char *verb, *store, *at, *to, *from, *until, *root, *fill, *device, *out, *work;
    bool create_missing, json, quiet;
    unsigned long long process, threads, timeout;
} replay_args;

static int fail(int rc, const ptb_errbuf *eb)
{
    fprintf(stderr, "ptb replay: %s\n", eb->msg[0] ? eb->msg : ptb_strerror(rc));
    return rc == PTB_EINVAL ? PTB_EXIT_USAGE : ptb_exit_code(rc);
}

static int open_store(const char *dir, store **s, store_txn **t)
{
    int rc = store_open(dir, NULL, STORE_RDONLY, s);
    if (!rc && (rc = store_txn_begin(*s, t)))
        store_close(*s);
    if (rc) {
        if (*s && *store_errmsg(*s)) /* it names the folder */
            fprintf(stderr, "ptb replay: %s\n", store_errmsg(*s));
        else
            fprintf(stderr, "ptb replay: %s: %s\n", dir, ptb_strerror(rc));
        if (*s)
            store_close(*s);
        *s = NULL;
        return ptb_exit_code(rc);
    }
    return 0;
}

/* A path in the JSON report: as a string, invalid UTF-8 bytes replaced by U+FFFD (JSON holds
 * only text), and then also as "path_hex", its bytes in hex. */
static void json_path(json_t *o, const char *key, const char *p)
{
    size_t n = strlen(p), i = 0;
    char *clean = malloc(3 * n + 1), *w = clean;
    if (!clean)
        return;
    bool bad = false;
    while (i < n) {
        size_t l = store_utf8_len((const unsigned char *)p + i, n - i);
        if (l) {
            memcpy(w, p + i, l);
            w += l, i += l;
        } else {
            memcpy(w, "\xEF\xBF\xBD", 3);
            w += 3, i++;
            bad = true;
        }
    }
    *w = 0;
    json_object_set_new(o, key, json_string(clean));
    if (bad) {
        char *h = malloc(2 * n + 1), hk[64];
        for (size_t k = 0; h && k < n; k++)
            sprintf(h + 2 * k, "%02x", (unsigned char)p[k]);
        snprintf(hk, sizeof hk, "%s_hex", key);
        if (h)
            json_object_set_new(o, hk, json_string(h));
        free(h);
    }
    free(clean);
}

static void print_notes(const char *title, const rp_note *v, size_t n, json_t *arr)
{
    if (arr) {
        for (size_t i = 0; i < n; i++) {
            json_t *o = json_pack("{s:s}", "why", v[i].why);
            json_path(o, "path", v[i].path);
            json_array_append_new(arr, o);
        }
        return;
    }
    if (n)
        printf("%s (%zu):\n", title, n);
    for (size_t i = 0; i < n; i++)
        printf("  %s: %s\n", v[i].path, v[i].why);
}

static void time_str(int64_t ns, char *buf, size_t cap)
{
    query_time_format(ns, 3, buf, cap);
}

/* The state after at; with --root a folder outside the store's snapshot roots (or a store with
 * no snapshot) is taken as a root of unknown first state. *extra: whether it was. */
static int build_state(store_txn *t, uint64_t at, const char *root, replay_state **st, bool *extra,
                       ptb_errbuf *eb)
{
    const char *roots[1] = {root};
    *extra = false;
    int rc = replay_state_build(t, at, NULL, 0, st, eb);
    if (!root || (!rc && replay_state_root_of(*st, root)) || (rc && rc != PTB_EINVAL))
        return rc;
    replay_state_free(*st);
    memset(eb, 0, sizeof *eb);
    *extra = true;
    return replay_state_build(t, at, roots, 1, st, eb);
}

/* ------------------------------------------------------------------ fs */

static int cmd_fs(const replay_args *a)
{
    if (!a->to)
        return cli_usage_error("replay", "ptb replay fs needs --to DIR");
    store *s;
    store_txn *t;
    int code = open_store(a->store, &s, &t);
    if (code)
        return code;
    ptb_errbuf eb = {{0}};
    uint64_t at = 0;
    replay_state *st = NULL;
    replay_fs_result r = {0};
    int rc = replay_parse_at(t, a->at ? a->at : "end", &at, &eb);
    bool extra_root;
    if (!rc)
        rc = build_state(t, at, a->root, &st, &extra_root, &eb);
    replay_fs_options fo = {.to = a->to,
                            .root = a->root,
                            .create_missing = a->create_missing,
                            .fill_from = a->fill,
                            .progress = !a->quiet};
    if (!rc)
        rc = replay_fs_write(t, st, &fo, &r, &eb);
    if (rc) {
        code = fail(rc, &eb);
        goto out;
    }
    /* the state's notes that concern what was written (--root: the ones above or under it) */
    size_t nnotes = 0;
    for (size_t i = 0; i < st->nnotes; i++) {
        const char *np = st->notes[i].path;
        size_t la = a->root ? strlen(a->root) : 0, b = strlen(np);
        if (!a->root || (!strncmp(np, a->root, la < b ? la : b) &&
                         (la == b || (la < b ? np[la] : a->root[b]) == '/')))
            st->notes[nnotes++] = st->notes[i];
        else {
            free(st->notes[i].path);
            free(st->notes[i].why);
        }
    }
    st->nnotes = nnotes;
    size_t omissions = r.nmissing + st->nnotes;
    char ts[64];
    time_str(st->at_ts, ts, sizeof ts);
    if (a->json) {
        json_t *roots = json_array(), *notes = json_array(), *miss = json_array();
        for (size_t i = 0; i < st->nroots; i++) {
            json_t *ro =
                json_pack("{s:b,s:b}", "snapshot", st->roots[i].snapshot, "cut", st->roots[i].cut);
            json_path(ro, "path", st->roots[i].path);
            json_array_append_new(roots, ro);
        }
        print_notes("", st->notes, st->nnotes, notes);
        print_notes("", r.missing, r.nmissing, miss);
        json_t *o = json_pack("{s:s,s:I,s:s,s:s,s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:o,s:o}", "store",
                              a->store, "seq", (json_int_t)at, "time", ts, "to", a->to, "roots",
                              roots, "dirs", (json_int_t)r.dirs, "files", (json_int_t)r.files,
                              "bytes", (json_int_t)r.bytes, "symlinks", (json_int_t)r.symlinks,
                              "hard_links", (json_int_t)r.links, "filled", (json_int_t)r.filled,
                              "complete", omissions == 0, "notes", notes, "missing", miss);
        char *txt = json_dumps(o, JSON_INDENT(2));
        printf("%s\n", txt);
        free(txt);
        json_decref(o);
    } else {
        printf("rebuilt at seq %" PRIu64 " of %" PRIu64 " (%s) into %s\n", at, st->last, ts, a->to);
        for (size_t i = 0; i < st->nroots; i++)
            if (!a->root || replay_state_root_of(st, a->root) == &st->roots[i])
                printf("  root %s%s%s\n", st->roots[i].path,
                       st->roots[i].snapshot ? "" : " (no snapshot: first state unknown)",
                       st->roots[i].cut ? " (snapshot cut short)" : "");
        printf("  %" PRIu64 " folders, %" PRIu64 " files (%.1f MB), %" PRIu64
               " symbolic links, %" PRIu64 " hard links",
               r.dirs, r.files, r.bytes / 1e6, r.symlinks, r.links);
        if (r.filled)
            printf(", %" PRIu64 " files from --fill-from", r.filled);
        printf("\n");
        print_notes("not known from the store", st->notes, st->nnotes, NULL);
        print_notes(a->create_missing ? "missing content (created empty)" : "missing (not written)",
                    r.missing, r.nmissing, NULL);
        printf("%s\n", omissions ? "INCOMPLETE: the tree lacks what is listed above"
                                 : "complete: every entry byte for byte, with its mode");
    }
    code = omissions ? PTB_EXIT_FAIL : PTB_EXIT_OK;
out:
    replay_fs_result_free(&r);
    replay_state_free(st);
    store_txn_end(t);
    store_close(s);
    return code;
}

/* ------------------------------------------------------------------ diff */

static void hexs(const uint8_t *b, char *out)
{
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static const char *kind_name(rp_kind k)
{
    return k == RP_FILE ? "file" : k == RP_DIR ? "dir" : k == RP_SYMLINK ? "symlink" : "other";
}

/* A file's content in words: "SIZE bytes sha256 HEX" or "unknown". */
static void content_str(const rp_node *n, char *out, size_t cap)
{
    char h[65];
    hexs(n->sha, h);
    if (n->content == RP_UNKNOWN)
        snprintf(out, cap, "unknown content, %" PRIu64 " bytes", n->size);
    else if (n->size != n->blob_size)
        snprintf(out, cap, "%" PRIu64 " bytes (%.12s... cut to size)", n->size, h);
    else
        snprintf(out, cap, "%" PRIu64 " bytes %.12s%s", n->size, h,
                 n->content == RP_HASHED ? " (not captured)" : "");
}

static bool same_content(const rp_node *x, const rp_node *y)
{
    if (x->content == RP_UNKNOWN || y->content == RP_UNKNOWN)
        return x == y;
    return x->size == y->size && x->blob_size == y->blob_size && !memcmp(x->sha, y->sha, 32);
}

static void diff_line(json_t *arr, const char *op, const rp_entry *e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void diff_line(json_t *arr, const char *op, const rp_entry *e, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (arr) {
        json_t *o = json_pack("{s:s,s:I}", "change", op, "seq", (json_int_t)e->seq);
        json_path(o, "path", e->path);
        json_path(o, "detail", buf);
        json_array_append_new(arr, o);
    } else
        printf("%s %s  %s (seq %" PRIu64 ")\n", op, e->path, buf, e->seq);
}

static int cmd_diff(const replay_args *a)
{
    if (!a->from || !a->to)
        return cli_usage_error("replay", "ptb replay diff needs --from SEQ|TIME and --to SEQ|TIME");
    store *s;
    store_txn *t;
    int code = open_store(a->store, &s, &t);
    if (code)
        return code;
    ptb_errbuf eb = {{0}};
    uint64_t sa = 0, sb = 0;
    replay_state *A = NULL, *B = NULL;
    rp_entry **va = NULL, **vb = NULL;
    size_t na = 0, nb = 0;
    const char *extra[1] = {a->root};
    int rc = replay_parse_at(t, a->from, &sa, &eb);
    if (!rc)
        rc = replay_parse_at(t, a->to, &sb, &eb);
    if (!rc && sa > sb)
        rc = ptb_errf(&eb, PTB_EINVAL, "--from (seq %" PRIu64 ") is after --to (seq %" PRIu64 ")",
                      sa, sb);
    bool extra_root = false;
    if (!rc)
        rc = build_state(t, sb, a->root, &B, &extra_root, &eb);
    size_t nextra = extra_root;
    if (!rc && (rc = replay_state_build(t, sa, extra, nextra, &A, &eb)) == PTB_EINVAL) {
        /* A before the snapshot: nothing under the roots yet */
        memset(&eb, 0, sizeof eb);
        rc = 0;
    }
    if (!rc && A)
        rc = replay_state_sorted(A, &va, &na);
    if (!rc)
        rc = replay_state_sorted(B, &vb, &nb);
    if (rc) {
        code = fail(rc, &eb);
        goto out;
    }
    json_t *arr = a->json ? json_array() : NULL;
    size_t added = 0, removed = 0, changed = 0;
    char c1[128], c2[128];
    for (size_t i = 0, k = 0; i < na || k < nb;) {
        int cmp = i == na ? 1 : k == nb ? -1 : strcmp(va[i]->path, vb[k]->path);
        const rp_entry *x = cmp <= 0 ? va[i] : NULL, *y = cmp >= 0 ? vb[k] : NULL;
        const char *path = x ? x->path : y->path;
        i += cmp <= 0, k += cmp >= 0;
        if (a->root && strncmp(path, a->root, strlen(a->root)))
            continue;
        if (!x) {
            added++;
            if (y->kind == RP_FILE)
                content_str(y->node, c2, sizeof c2);
            diff_line(arr, "A", y, "%s %04o%s%s", kind_name(y->kind), y->mode,
                      y->kind == RP_FILE      ? " "
                      : y->kind == RP_SYMLINK ? " -> "
                                              : "",
                      y->kind == RP_FILE      ? c2
                      : y->kind == RP_SYMLINK ? y->target
                                              : "");
        } else if (!y) {
            removed++;
            diff_line(arr, "D", x, "%s", kind_name(x->kind));
        } else if (x->kind != y->kind) {
            changed++;
            diff_line(arr, "T", y, "%s -> %s", kind_name(x->kind), kind_name(y->kind));
        } else {
            if (x->kind == RP_FILE && !same_content(x->node, y->node)) {
                changed++;
                content_str(x->node, c1, sizeof c1);
                content_str(y->node, c2, sizeof c2);
                diff_line(arr, "M", y, "%s -> %s", c1, c2);
            }
            if (x->kind == RP_SYMLINK && strcmp(x->target, y->target)) {
                changed++;
                diff_line(arr, "L", y, "-> %s was -> %s", y->target, x->target);
            }
            if (x->mode != y->mode) {
                changed++;
                diff_line(arr, "P", y, "mode %04o -> %04o", x->mode, y->mode);
            }
        }
    }
    if (arr) {
        json_t *o = json_pack("{s:I,s:I,s:o,s:I,s:I,s:I}", "from", (json_int_t)sa, "to",
                              (json_int_t)sb, "changes", arr, "added", (json_int_t)added, "removed",
                              (json_int_t)removed, "changed", (json_int_t)changed);
        char *txt = json_dumps(o, JSON_INDENT(2));
        printf("%s\n", txt);
        free(txt);
        json_decref(o);
    } else {
        printf("seq %" PRIu64 " -> %" PRIu64 ": %zu added, %zu removed, %zu changed\n", sa, sb,
               added, removed, changed);
    }
out:
    free(va);
    free(vb);
    replay_state_free(A);
    replay_state_free(B);
    store_txn_end(t);
    store_close(s);
    return code;
}

/* ------------------------------------------------------------------ main */

int replay_main(int argc, char **argv)
{
    cli c;
    cli_init(&c, "replay", replay_opts, argc, argv);
    replay_args a = {0};
    for (int opt; (opt = cli_next(&c)) != CLI_END;) {
        switch (opt) {
        case CLI_HELP: cli_help("replay", stdout); return PTB_EXIT_OK;
        case CLI_LIST: cli_list_options(replay_opts, stdout); return PTB_EXIT_OK;
        case CLI_ERROR: return cli_usage_error("replay", "%s", c.err);
        case CLI_POSITIONAL:
            if (!a.verb)
                a.verb = c.optarg;
            else if (!a.store)
                a.store = c.optarg;
            else
                return cli_usage_error("replay", "unexpected argument '%s'", c.optarg);
            break;
        case OPT_AT: a.at = c.optarg; break;
        case OPT_TO: a.to = c.optarg; break;
        case OPT_FROM: a.from = c.optarg; break;
        case OPT_UNTIL: a.until = c.optarg; break;
        case OPT_ROOT: a.root = c.optarg; break;
        case OPT_CREATE_MISSING: a.create_missing = true; break;
        case OPT_FILL_FROM: a.fill = c.optarg; break;
        case OPT_JSON: a.json = true; break;
        case OPT_QUIET: a.quiet = true; break;
        case OPT_DEVICE: a.device = c.optarg; break;
        case OPT_OUT: a.out = c.optarg; break;
        case OPT_WORK: a.work = c.optarg; break;
        case OPT_PROCESS:
            if (!cli_parse_u64(c.optarg, &a.process) || !a.process)
                return cli_usage_error("replay", "--process: '%s' is not an exec_id", c.optarg);
            break;
        case OPT_THREADS:
            if (!cli_parse_u64(c.optarg, &a.threads) || a.threads > 1024)
                return cli_usage_error("replay", "--threads: '%s' is not 0..1024", c.optarg);
            break;
        case OPT_TIMEOUT:
            if (!cli_parse_u64(c.optarg, &a.timeout) || a.timeout > 86400 * 7)
                return cli_usage_error("replay", "--timeout: '%s' is not a number of seconds",
                                       c.optarg);
            break;
        }
    }
    if (!a.verb)
        return cli_usage_error("replay", "no action: ptb replay fs|diff|exec|train STORE ...");
    if (!a.store)
        return cli_usage_error("replay", "ptb replay %s needs a STORE", a.verb);
    if (!strcmp(a.verb, "fs"))
        return cmd_fs(&a);
    if (!strcmp(a.verb, "diff"))
        return cmd_diff(&a);
    if (!strcmp(a.verb, "exec"))
        return replay_exec_main(a.store, a.from, a.until, a.work, a.out, a.json, a.quiet,
                                (int)a.timeout);
    if (!strcmp(a.verb, "train"))
        return replay_train_main(a.store, a.process, a.work, a.device, (int)a.threads, a.fill,
                                 a.json, a.quiet);
    return cli_usage_error("replay", "unknown action '%s': fs, diff, exec or train", a.verb);
}
