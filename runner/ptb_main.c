/* The ptb program: one binary, subcommands. Called as `ptb-query` it is `ptb query`
 * (argv[0] dispatch; the build installs ptb-query as a link to ptb). */
#include <libgen.h>
#include <stdio.h>
#include <string.h>

#include "ptb_cli.h"
#include "ptb_commands.h"

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *what;
} ptb_subcommands[] = {
    {"audit", audit_main, "detect test-set leakage, API key use, checkpoint substitution"},
    {"demo", demo_main, "run the demo task with four scripted agents (honest and cheating)"},
    {"demo-task", demo_task_main, "generate the demo task: benchmark, base and instruct models"},
    {"eval", eval_main, "score a model's answers to a benchmark (exact match)"},
    {"export", export_main, "write the stored packets as a pcap file"},
    {"import", import_main, "create a store from events in JSONL form or a pcap file"},
    {"query", query_main, "search a store with a filter (also run as ptb-query)"},
    {"record", record_main, "run a command and record what its process tree does"},
    {"refs", refs_main, "keep reference checkpoints (hashes, sketches) for ptb audit"},
    {"replay", replay_main,
     "rebuild a run's files at any event, re-run its tool calls and training"},
    {"run", run_main, "run an agent on a task (TASK.json), recorded, then evaluate it"},
    {"stats", stats_main, "counts per event type, time span, size, gaps"},
    {"study", study_main,
     "run a grid of ptb runs (and audits) here or through Slurm; status, report"},
    {"train", train_main, "fine-tune the reference model on prompt/completion JSONL"},
    {"verify", verify_main, "check a store: structure, hash chain, blobs, indexes"},
};
#define NSUB (sizeof ptb_subcommands / sizeof ptb_subcommands[0])

static void ptb_usage(FILE *out)
{
    fprintf(out, "usage: ptb COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < NSUB; i++)
        fprintf(out, "  %-10s %s\n", ptb_subcommands[i].name, ptb_subcommands[i].what);
    fprintf(out, "\n'ptb COMMAND --help' shows a command's page (docs/commands/ptb-COMMAND.md).\n"
                 "Exit codes: docs/exit-codes.md.\n");
}

int main(int argc, char **argv)
{
    const char *self = argc > 0 ? argv[0] : "ptb";
    const char *base = strrchr(self, '/');
    base = base ? base + 1 : self;
    if (strcmp(base, "ptb-query") == 0)
        return query_main(argc, argv);
    if (argc < 2) {
        ptb_usage(stderr);
        return PTB_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        if (argc > 2 && strcmp(argv[1], "help") == 0) {
            cli_help(argv[2], stdout);
            return PTB_EXIT_OK;
        }
        ptb_usage(stdout);
        return PTB_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("ptb %s (schema %d)\n", PTB_VERSION, PTB_SCHEMA_VERSION);
        return PTB_EXIT_OK;
    }
    for (size_t i = 0; i < NSUB; i++)
        if (strcmp(argv[1], ptb_subcommands[i].name) == 0)
            return ptb_subcommands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "ptb: unknown command '%s'\n", argv[1]);
    ptb_usage(stderr);
    return PTB_EXIT_USAGE;
}
