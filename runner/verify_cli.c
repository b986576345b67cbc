/* `ptb verify STORE...`: check stores end to end (store_verify). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ptb_cli.h"
#include "ptb_commands.h"
#include "store.h"

enum { OPT_QUIET = 1 };
static const cli_option verify_opts[] = {
    {"quiet", 'q', NULL, OPT_QUIET},
    {NULL, 0, NULL, 0},
};

static void verify_progress(void *arg, uint64_t done, uint64_t total)
{
    (void)arg;
    if (total)
        fprintf(stderr, "\rverify: %llu/%llu events (%.0f%%)", (unsigned long long)done,
                (unsigned long long)total, 100.0 * (double)done / (double)total);
}

int verify_main(int argc, char **argv)
{
    cli c;
    cli_init(&c, "verify", verify_opts, argc, argv);
    bool quiet = false;
    const char *stores[64];
    int n = 0;
    for (int o; (o = cli_next(&c)) != CLI_END;) {
        switch (o) {
        case CLI_HELP: cli_help("verify", stdout); return PTB_EXIT_OK;
        case CLI_LIST: cli_list_options(verify_opts, stdout); return PTB_EXIT_OK;
        case CLI_ERROR: return cli_usage_error("verify", "%s", c.err);
        case OPT_QUIET: quiet = true; break;
        case CLI_POSITIONAL:
            if (n == 64)
                return cli_usage_error("verify", "at most 64 stores at a time");
            stores[n++] = c.optarg;
            break;
        }
    }
    if (n == 0)
        return cli_usage_error("verify", "which store? (ptb verify STORE...)");
    int worst = PTB_EXIT_OK;
    bool tty = isatty(2) && !quiet;
    for (int i = 0; i < n; i++) {
        store_verify_report rep;
        int rc = store_verify(stores[i], &rep, tty ? verify_progress : NULL, NULL);
        if (tty)
            fprintf(stderr, "\r\033[K");
        int code;
        if (rc == 0) {
            code = PTB_EXIT_OK;
            if (!quiet)
                printf("%s: ok: %llu events, %llu batches, %llu blobs, %llu strings, "
                       "%llu index postings\n",
                       stores[i], (unsigned long long)rep.events, (unsigned long long)rep.batches,
                       (unsigned long long)rep.blobs, (unsigned long long)rep.strings,
                       (unsigned long long)rep.postings);
        } else if (rc == PTB_ECORRUPT || rc == PTB_ECHAIN) {
            code = PTB_EXIT_FAIL;
            printf("%s: FAILED: %llu problem%s; first: %s\n", stores[i],
                   (unsigned long long)rep.problems, rep.problems == 1 ? "" : "s", rep.first);
        } else {
            code = ptb_exit_code(rc);
            fprintf(stderr, "ptb verify: %s: %s%s%s\n", stores[i], ptb_strerror(rc),
                    rep.first[0] ? ": " : "", rep.first);
        }
        if (code > worst)
            worst = code;
    }
    return worst;
}
