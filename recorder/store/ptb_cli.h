/* What every ptb command shares: exit codes, option tables, --help from docs/.
 *
 * Each command declares its options once, in a table; the same table drives getopt_long,
 * `--help` (which prints the command's page from docs/commands/, embedded at build time), and
 * the test that fails when an option has no documentation (`ptb CMD --list-options`). */
#ifndef PTB_CLI_H
#define PTB_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes of every ptb command (docs/exit-codes.md). Stable. */
enum {
    PTB_EXIT_OK = 0,         /* success (verify: the store verifies) */
    PTB_EXIT_FAIL = 1,       /* the check ran and failed (verify: problems found) */
    PTB_EXIT_USAGE = 2,      /* bad command line or bad filter */
    PTB_EXIT_NOSTORE = 3,    /* store missing or not a ptb store */
    PTB_EXIT_CORRUPT = 4,    /* store corrupt (readers), input file corrupt (import) */
    PTB_EXIT_ERROR = 5,      /* any other runtime error (I/O, memory, disk full) */
    PTB_EXIT_SUSPICIOUS = 6, /* ptb audit: a suspicious finding, no violation */
};

/* Map a PTB_E* / -errno / LMDB code to an exit code. */
int ptb_exit_code(int err);

typedef struct cli_option {
    const char *name; /* long name without "--" */
    int short_name;   /* single-letter alias, or 0 */
    const char *arg;  /* argument placeholder ("N", "FILE"), NULL for a flag */
    int id;           /* returned by cli_next() */
} cli_option;

typedef struct cli {
    const char *cmd;        /* "query", "import", ... */
    const cli_option *opts; /* terminated by {NULL} */
    int argc;
    char **argv;
    int index;     /* next argv index */
    bool dashdash; /* "--" seen: the rest is positional */
    const char *optarg;
    char err[256];
} cli;

/* Start parsing argv (argv[0] is the command name). */
void cli_init(cli *c, const char *cmd, const cli_option *opts, int argc, char **argv);

/* Next option: its id, with c->optarg set for options with an argument; CLI_POSITIONAL with
 * c->optarg = the argument for a positional argument (everything after "--" is positional);
 * CLI_END at the end; CLI_HELP for -h/--help; CLI_LIST for --list-options; CLI_ERROR with c->err
 * set for an unknown option or a missing argument. */
enum { CLI_END = -1, CLI_POSITIONAL = -2, CLI_HELP = -3, CLI_LIST = -4, CLI_ERROR = -5 };
int cli_next(cli *c);

/* Print the command's documentation page (docs/commands/ptb-CMD.md) to out. */
void cli_help(const char *cmd, FILE *out);

/* Print one line per option ("--name ARG") for the documentation test. */
void cli_list_options(const cli_option *opts, FILE *out);

/* Report a usage error on stderr ("ptb CMD: message\nTry 'ptb CMD --help'.") and return
 * PTB_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Progress of long work on stderr: on a terminal (tty) a bar "[####    ] done/total what",
 * redrawn in place and ended with a newline at done == total; otherwise a line
 * "ptb CMD: done/total what" per tenth of the work. what (may be NULL) is the rest of the line. */
void cli_progress(const char *cmd, bool tty, uint64_t done, uint64_t total, const char *what);

/* A library that ptb loads at run time (dlopen, CUDA_INJECTION64_PATH): the path in environment
 * variable env when set (true if it is readable), else the first readable one of rel[] (paths
 * relative to the directory of the running ptb binary, NULL-terminated), resolved, into out.
 * False when there is none. */
bool ptb_find_lib(const char *env, const char *const rel[], char *out, size_t cap);

/* A symbol ptb_load_lib looks up: its name and where its address goes. */
typedef struct ptb_sym {
    void **fn;
    const char *name;
} ptb_sym;

/* Load the library ptb_find_lib(env, rel) finds (dlopen, RTLD_NOW | RTLD_LOCAL) and look up its
 * n symbols: 0; -ENOTSUP with msg saying why (none found, what = the build's reason, e.g. "this
 * ptb has no CUDA backend: nvcc was not found"; not loadable; a symbol missing). The library is
 * never closed once loaded. For the CUDA libraries that only some commands need (lm_cuda_load.c,
 * forensics/audit_cuda_load.c): ptb itself does not link CUDA. */
int ptb_load_lib(const char *env, const char *const rel[], const ptb_sym *syms, size_t n,
                 const char *what, char *msg, size_t cap);

/* Parse an unsigned integer option strictly (all digits, no overflow); false on bad input. */
bool cli_parse_u64(const char *s, unsigned long long *out);

#endif
