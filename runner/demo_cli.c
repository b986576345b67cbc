/* `ptb demo`: the main job of a fresh checkout, until `ptb run` exists. It imports the bundled
 * example run (tests/fixtures/example-events.jsonl) into a new store, then shows what ptb can
 * answer from that store alone: stats, a few filters, the lineage of the checkpoint, verify.
 * Then it records a small real run with `ptb record` (a script that prepares data, "trains"
 * with Python and moves its checkpoint into final_model/) and asks the same questions of it. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ptb_cli.h"
#include "ptb_commands.h"
#include "store.h"

enum { OPT_STORE = 1, OPT_EVENTS };
static const cli_option demo_opts[] = {
    {"store", 's', "DIR", OPT_STORE},
    {"events", 'e', "FILE", OPT_EVENTS},
    {NULL, 0, NULL, 0},
};

static int demo_step(const char *title, int argc, char **argv, int (*fn)(int, char **))
{
    printf("\n== %s\n$ ptb", title);
    for (int i = 0; i < argc; i++)
        printf(strchr(argv[i], ' ') ? " '%s'" : " %s", argv[i]);
    printf("\n");
    fflush(stdout);
    int rc = fn(argc, argv);
    fflush(stdout);
    return rc;
}

/* The checkpoint file to trace: the model.safetensors under final_model/ (written or renamed
 * there), else the last file written there. */
static int demo_checkpoint_path(const char *dir, char *out, size_t cap)
{
    store *s;
    int rc = store_open(dir, NULL, STORE_RDONLY, &s);
    if (rc) {
        store_close(s);
        return rc;
    }
    store_txn *t;
    if ((rc = store_txn_begin(s, &t))) {
        store_close(s);
        return rc;
    }
    out[0] = 0;
    bool model = false;
    static const uint32_t kinds[] = {PTB__V1__EVENT__BODY_FILE_WRITE,
                                     PTB__V1__EVENT__BODY_FILE_RENAME};
    for (size_t k = 0; k < 2 && rc == 0; k++) {
        store_range r = {.by_index = true, .index = STORE_IX_TYPE, .key = kinds[k]};
        store_cursor *c;
        if ((rc = store_cursor_open(t, &r, &c)))
            break;
        const ptb_event *ev;
        while ((rc = store_cursor_next(c, &ev)) == 0) {
            const char *p = ev->body_case == PTB__V1__EVENT__BODY_FILE_WRITE
                                ? ev->file_write->path
                                : ev->file_rename->new_path;
            if (!strstr(p, "final_model/") || (model && !strstr(p, "model.safetensors")))
                continue;
            snprintf(out, cap, "%s", p);
            model = model || strstr(p, "/model.safetensors") != NULL;
        }
        store_cursor_close(c);
        rc = rc == PTB_ENOTFOUND ? 0 : rc;
    }
    store_txn_end(t);
    store_close(s);
    return out[0] ? rc : PTB_ENOTFOUND;
}

/* Part two: a real run, recorded. A workspace next to the store (dir/../workspace). */
static int demo_record(const char *dir)
{
    char base[4096], ws[4200], rec[4200], ck[4300];
    snprintf(base, sizeof base, "%s", dir);
    char *slash = strrchr(base, '/');
    if (slash)
        *slash = 0;
    else
        strcpy(base, ".");
    snprintf(ws, sizeof ws, "%s/workspace", base);
    snprintf(rec, sizeof rec, "%s/RECORDED.ptb", base);
    if (mkdir(ws, 0755) != 0) {
        fprintf(stderr, "ptb demo: %s: %s (skipping the recorded run)\n", ws, strerror(errno));
        return PTB_EXIT_OK;
    }
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd) || chdir(ws) != 0) {
        fprintf(stderr, "ptb demo: cannot enter %s (skipping the recorded run)\n", ws);
        return PTB_EXIT_OK;
    }
    printf("\n\nptb demo, part two: a small run recorded for real, in %s\n", ws);
    static char script[] = "mkdir -p data final_model && "
                           "printf '{\"q\": \"1+1\", \"a\": \"2\"}\\n' > data/train.jsonl && "
                           "python3 -c \"d = open('data/train.jsonl').read(); "
                           "open('final_model/weights.tmp', 'w').write(str(len(d)))\" && "
                           "mv final_model/weights.tmp final_model/model.safetensors";
    char *r[] = {"record", "--store", rec, "--capture-root", ws, "--", "sh", "-c", script, NULL};
    int rc = demo_step("record a script that prepares data, trains and saves a checkpoint", 9, r,
                       record_main);
    if (chdir(cwd) != 0)
        return PTB_EXIT_ERROR;
    if (rc == PTB_EXIT_ERROR || rc == PTB_EXIT_USAGE) {
        printf("(ptb record could not run here, see above: a container may forbid ptrace)\n");
        return PTB_EXIT_OK;
    }
    struct {
        const char *title, *filter;
    } qs[] = {
        {"the programs it ran", "evt.type = proc.exec"},
        {"the files it wrote, renamed or deleted",
         "evt.type in (file.write, file.rename, file.unlink)"},
    };
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        char *q[] = {"query", rec, (char *)qs[i].filter, NULL};
        if ((rc = demo_step(qs[i].title, 3, q, query_main)))
            return rc;
    }
    snprintf(ck, sizeof ck, "%s/final_model/model.safetensors", ws);
    char *l[] = {"query", rec, "--lineage", ck, NULL};
    if ((rc = demo_step("where its checkpoint came from", 4, l, query_main)))
        return rc;
    char *v[] = {"verify", rec, NULL};
    if ((rc = demo_step("check the recorded store", 2, v, verify_main)))
        return rc;
    printf("\nThe recorded store is %s.\n", rec);
    return PTB_EXIT_OK;
}

int demo_main(int argc, char **argv)
{
    cli c;
    cli_init(&c, "demo", demo_opts, argc, argv);
    const char *dir = NULL, *events = PTB_SOURCE_DIR "/tests/fixtures/example-events.jsonl";
    for (int o; (o = cli_next(&c)) != CLI_END;) {
        switch (o) {
        case CLI_HELP: cli_help("demo", stdout); return PTB_EXIT_OK;
        case CLI_LIST: cli_list_options(demo_opts, stdout); return PTB_EXIT_OK;
        case CLI_ERROR: return cli_usage_error("demo", "%s", c.err);
        case OPT_STORE: dir = c.optarg; break;
        case OPT_EVENTS: events = c.optarg; break;
        case CLI_POSITIONAL: return cli_usage_error("demo", "unexpected argument '%s'", c.optarg);
        }
    }
    char tmp[] = "/tmp/ptb-demo-XXXXXX";
    char path[4096];
    if (!dir) {
        if (!mkdtemp(tmp)) {
            perror("ptb demo: mkdtemp");
            return PTB_EXIT_ERROR;
        }
        snprintf(path, sizeof path, "%s/RUN.ptb", tmp);
        dir = path;
    }
    printf("ptb demo: the bundled example run (%s)\n", events);
    char *imp[] = {"import", "--jsonl", (char *)events, (char *)dir, NULL};
    int rc = demo_step("create a store from the example events", 4, imp, import_main);
    if (rc)
        return rc;
    char *st[] = {"stats", (char *)dir, NULL};
    if ((rc = demo_step("what the store holds", 2, st, stats_main)))
        return rc;
    struct {
        const char *title, *filter;
    } qs[] = {
        {"the agent's tool calls", "evt.type = tool.call"},
        {"programs the agent's tree ran", "evt.type = proc.exec"},
        {"network names the run contacted", "evt.type in (net.dns, net.tls, net.http)"},
        {"files written under final_model/", "evt.type = file.write and file.path contains "
                                             "\"final_model/\""},
        {"anything that could not be recorded", "evt.type = gap"},
    };
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        char *q[] = {"query", (char *)dir, (char *)qs[i].filter, NULL};
        if ((rc = demo_step(qs[i].title, 3, q, query_main)))
            return rc;
    }
    char ck[4096];
    if (demo_checkpoint_path(dir, ck, sizeof ck) == 0) {
        char *q[] = {"query", (char *)dir, "--lineage", ck, NULL};
        if ((rc = demo_step("where the checkpoint came from", 4, q, query_main)))
            return rc;
    }
    char *v[] = {"verify", (char *)dir, NULL};
    if ((rc = demo_step("check the store: structure, hash chain, blobs, indexes", 2, v,
                        verify_main)))
        return rc;
    printf("\nThe store is %s; try: ptb query %s 'proc.exe contains python'\n", dir, dir);
    return demo_record(dir);
}
