/* `ptb refs add NAME DIR [--base DIR] | list | rm NAME` (docs/commands/ptb-refs.md): the
 * reference checkpoints that `ptb audit` compares final checkpoints with, kept as hashes and
 * sketches (forensics/audit_refs.h) in --refs DIR, $PTB_REFS_DIR or ~/.local/share/ptb/refs. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "audit_refs.h"
#include "ptb_cli.h"
#include "ptb_commands.h"

enum { OPT_REFS = 1, OPT_BASE, OPT_SKETCH };
static const cli_option refs_opts[] = {
    {"refs", 0, "DIR", OPT_REFS},
    {"base", 0, "DIR", OPT_BASE},
    {"sketch", 0, "K", OPT_SKETCH},
    {NULL, 0, NULL, 0},
};

static int refs_fail(int rc, const ptb_errbuf *eb)
{
    fprintf(stderr, "ptb refs: %s\n", eb->msg[0] ? eb->msg : ptb_strerror(rc));
    return rc == PTB_EINVAL                          ? PTB_EXIT_USAGE
           : rc == PTB_ENOTFOUND || rc == PTB_EEXIST ? PTB_EXIT_FAIL
           : rc == PTB_ECORRUPT                      ? PTB_EXIT_CORRUPT
                                                     : PTB_EXIT_ERROR;
}

static int refs_list(const char *dir)
{
    char **names;
    size_t n;
    ptb_errbuf eb = {{0}};
    int rc = audit_refs_names(dir, &names, &n, &eb);
    if (rc)
        return refs_fail(rc, &eb);
    printf("%-20s %8s %8s %10s %-6s %-20s %s\n", "NAME", "TENSORS", "SKETCH", "KEPT", "FOLDER",
           "CREATED", "PATH (BASE)");
    for (size_t i = 0; i < n; i++) {
        audit_ref *r;
        if ((rc = audit_ref_open(dir, names[i], &r, &eb))) {
            printf("%-20s unreadable: %s\n", names[i], eb.msg);
            continue;
        }
        size_t comp = 0;
        uint64_t kept = 0;
        for (size_t t = 0; t < r->n; t++)
            if (r->t[t].has_delta)
                comp++, kept += (uint64_t)r->t[t].k * 4;
        struct stat sb;
        char sk[24];
        snprintf(sk, sizeof sk, "%u", r->sketch);
        printf("%-20s %8zu %8s %9.1fM %-6s %-20s %s (%s)\n", r->name, r->n, comp ? sk : "-",
               kept / 1e6, stat(r->path, &sb) == 0 ? "yes" : "gone", r->created, r->path,
               r->base ? r->base : "no base: identity only");
        audit_ref_close(r);
    }
    audit_refs_names_free(names, n);
    return PTB_EXIT_OK;
}

int refs_main(int argc, char **argv)
{
    cli c;
    cli_init(&c, "refs", refs_opts, argc, argv);
    const char *refs = NULL, *base = NULL, *pos[4] = {0};
    unsigned long long k = 0;
    size_t np = 0;
    for (int opt; (opt = cli_next(&c)) != CLI_END;) {
        switch (opt) {
        case CLI_HELP: cli_help("refs", stdout); return PTB_EXIT_OK;
        case CLI_LIST: cli_list_options(refs_opts, stdout); return PTB_EXIT_OK;
        case CLI_ERROR: return cli_usage_error("refs", "%s", c.err);
        case CLI_POSITIONAL:
            if (np == 4)
                return cli_usage_error("refs", "too many arguments");
            pos[np++] = c.optarg;
            break;
        case OPT_REFS: refs = c.optarg; break;
        case OPT_BASE: base = c.optarg; break;
        case OPT_SKETCH:
            if (!cli_parse_u64(c.optarg, &k) || k < 1 || k > 16777216)
                return cli_usage_error("refs", "--sketch: an integer in 1..16777216");
            break;
        }
    }
    const char *verb = pos[0];
    size_t want = !verb                   ? 0
                  : !strcmp(verb, "add")  ? 3
                  : !strcmp(verb, "rm")   ? 2
                  : !strcmp(verb, "list") ? 1
                                          : 0;
    if (!want)
        return cli_usage_error("refs", "%s%s: ptb refs add NAME DIR | list | rm NAME",
                               verb ? "unknown action " : "no action", verb ? verb : "");
    if (np != want)
        return cli_usage_error("refs", "ptb refs %s takes %s", verb,
                               want == 3   ? "NAME DIR"
                               : want == 2 ? "NAME"
                                           : "no argument");
    if ((base || k) && strcmp(verb, "add"))
        return cli_usage_error("refs", "--base and --sketch are options of ptb refs add");
    char dir[4096];
    ptb_errbuf eb = {{0}};
    int rc = audit_refs_dir(refs, dir, sizeof dir, &eb);
    if (rc)
        return refs_fail(rc, &eb);
    if (!strcmp(verb, "list"))
        return refs_list(dir);
    if (!strcmp(verb, "rm")) {
        if ((rc = audit_refs_rm(dir, pos[1], &eb)))
            return refs_fail(rc, &eb);
        printf("removed %s from %s\n", pos[1], dir);
        return PTB_EXIT_OK;
    }
    audit_refs_added st;
    if ((rc = audit_refs_add(dir, pos[1], pos[2], base, (uint32_t)k, 0, &st, &eb)))
        return refs_fail(rc, &eb);
    printf("kept %s in %s/%s: %zu tensors (%.1f MB) hashed", pos[1], dir, pos[1], st.tensors,
           st.bytes / 1e6);
    if (base)
        printf(", %zu sketched against %s (%.1f MB kept)", st.compared, base,
               st.sketch_bytes / 1e6);
    else
        printf("; no --base: identity only (no alpha/cos without the folder)");
    printf("\n");
    if (st.not_in_base)
        printf("%zu tensors are not in the base with this shape and a float dtype: identity "
               "only\n",
               st.not_in_base);
    return PTB_EXIT_OK;
}
