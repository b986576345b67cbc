/* Shared command-line machinery of ptb commands. See ptb_cli.h. */
#include "ptb_cli.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ptb_error.h"

/* docs/commands/ pages embedded at build time (ptb_docs.c, generated). */
typedef struct ptb_doc {
    const char *name; /* "ptb-query" */
    const unsigned char *text;
    size_t len;
} ptb_doc;
extern const ptb_doc ptb_docs[];
extern const size_t ptb_docs_count;

int ptb_exit_code(int err)
{
    switch (err) {
    case 0: return PTB_EXIT_OK;
    case PTB_EINVAL:
    case PTB_EPARSE: return PTB_EXIT_USAGE;
    case PTB_ENOSTORE:
    case -ENOENT:
    case -ENOTDIR: return PTB_EXIT_NOSTORE;
    case PTB_ECORRUPT:
    case PTB_ECHAIN:
    case PTB_ESCHEMA: return PTB_EXIT_CORRUPT;
    default: return PTB_EXIT_ERROR;
    }
}

void cli_init(cli *c, const char *cmd, const cli_option *opts, int argc, char **argv)
{
    memset(c, 0, sizeof *c);
    c->cmd = cmd;
    c->opts = opts;
    c->argc = argc;
    c->argv = argv;
    c->index = 1;
}

int cli_next(cli *c)
{
    c->optarg = NULL;
    if (c->index >= c->argc)
        return CLI_END;
    const char *a = c->argv[c->index++];
    if (c->dashdash) {
        c->optarg = a;
        return CLI_POSITIONAL;
    }
    if (strcmp(a, "--") == 0) {
        c->dashdash = true;
        return cli_next(c);
    }
    if (a[0] != '-' || a[1] == 0) {
        c->optarg = a;
        return CLI_POSITIONAL;
    }
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
        return CLI_HELP;
    if (strcmp(a, "--list-options") == 0)
        return CLI_LIST;
    const cli_option *o = NULL;
    const char *inl = NULL;
    if (a[1] == '-') {
        const char *name = a + 2;
        size_t nl = strcspn(name, "=");
        for (const cli_option *p = c->opts; p && p->name; p++)
            if (strlen(p->name) == nl && strncmp(p->name, name, nl) == 0)
                o = p;
        if (name[nl] == '=')
            inl = name + nl + 1;
    } else if (a[2] == 0) {
        for (const cli_option *p = c->opts; p && p->name; p++)
            if (p->short_name == a[1])
                o = p;
    }
    if (!o) {
        /* a negative number is a positional argument, e.g. a filter value */
        if ((a[1] >= '0' && a[1] <= '9')) {
            c->optarg = a;
            return CLI_POSITIONAL;
        }
        snprintf(c->err, sizeof c->err, "unknown option '%s'", a);
        return CLI_ERROR;
    }
    if (o->arg) {
        if (inl) {
            c->optarg = inl;
        } else if (c->index < c->argc) {
            c->optarg = c->argv[c->index++];
        } else {
            snprintf(c->err, sizeof c->err, "option '--%s' needs an argument %s", o->name, o->arg);
            return CLI_ERROR;
        }
    } else if (inl) {
        snprintf(c->err, sizeof c->err, "option '--%s' takes no argument", o->name);
        return CLI_ERROR;
    }
    return o->id;
}

void cli_help(const char *cmd, FILE *out)
{
    char name[128];
    snprintf(name, sizeof name, "ptb-%s", cmd);
    for (size_t i = 0; i < ptb_docs_count; i++)
        if (strcmp(ptb_docs[i].name, name) == 0) {
            fwrite(ptb_docs[i].text, 1, ptb_docs[i].len, out);
            return;
        }
    fprintf(out, "ptb %s: no documentation page (docs/commands/%s.md)\n", cmd, name);
}

void cli_list_options(const cli_option *opts, FILE *out)
{
    for (const cli_option *p = opts; p && p->name; p++)
        fprintf(out, "--%s%s%s\n", p->name, p->arg ? " " : "", p->arg ? p->arg : "");
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ptb %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'ptb %s --help'.\n", cmd);
    return PTB_EXIT_USAGE;
}

bool cli_parse_u64(const char *s, unsigned long long *out)
{
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    errno = 0;
    char *end;
    *out = strtoull(s, &end, 10);
    return errno == 0 && *end == 0;
}

void cli_progress(const char *cmd, bool tty, uint64_t done, uint64_t total, const char *what)
{
    if (!total)
        return;
    if (!what)
        what = "";
    if (tty) {
        int w = 30, full = (int)((uint64_t)w * (done < total ? done : total) / total);
        fprintf(stderr, "\r[%.*s%*s] %llu/%llu %s\033[K", full, "##############################",
                w - full, "", (unsigned long long)done, (unsigned long long)total, what);
        if (done == total)
            fputc('\n', stderr);
    } else if (done == total || done % (total / 10 ? total / 10 : 1) == 0) {
        fprintf(stderr, "ptb %s: %llu/%llu %s\n", cmd, (unsigned long long)done,
                (unsigned long long)total, what);
    }
}

bool ptb_find_lib(const char *env, const char *const rel[], char *out, size_t cap)
{
    const char *e = getenv(env);
    if (e && *e) {
        snprintf(out, cap, "%s", e);
        return access(out, R_OK) == 0;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return false;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash)
        return false;
    *slash = 0;
    for (size_t i = 0; rel[i]; i++) {
        char p[PATH_MAX + 64];
        snprintf(p, sizeof p, "%s/%s", exe, rel[i]);
        char *rp = realpath(p, NULL);
        bool found = rp && access(rp, R_OK) == 0;
        if (found)
            snprintf(out, cap, "%s", rp);
        free(rp);
        if (found)
            return true;
    }
    return false;
}

int ptb_load_lib(const char *env, const char *const rel[], const ptb_sym *syms, size_t n,
                 const char *what, char *msg, size_t cap)
{
    char path[PATH_MAX];
    if (!ptb_find_lib(env, rel, path, sizeof path)) {
        const char *e = getenv(env);
        if (e && *e)
            snprintf(msg, cap, "%s=%s: cannot read it", env, e);
        else
            snprintf(msg, cap, "%s", what);
        return -ENOTSUP;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(msg, cap, "cannot load %s: %s", path, dlerror());
        return -ENOTSUP;
    }
    for (size_t i = 0; i < n; i++)
        if (!(*syms[i].fn = dlsym(h, syms[i].name))) {
            snprintf(msg, cap, "%s: no %s (a library of another version?)", path, syms[i].name);
            dlclose(h);
            return -ENOTSUP;
        }
    return 0;
}
