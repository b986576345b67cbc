/* ptb run's sandbox policy: see run_agent_sandbox.h. */
#include "run_agent_sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ptb_error.h"
#include "record_gap.h"

/* Append NAME=value to a NULL-terminated malloc'd vector. */
static int env_push(char ***env, const char *name, const char *value)
{
    size_t n = 0;
    while (*env && (*env)[n])
        n++;
    char **nv = realloc(*env, (n + 2) * sizeof *nv);
    if (!nv)
        return PTB_ENOMEM;
    *env = nv;
    if (asprintf(&nv[n], "%s=%s", name, value) < 0)
        return PTB_ENOMEM;
    nv[n + 1] = NULL;
    return 0;
}

static bool path_under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return n == 1 || (strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == 0));
}

static int write_text(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    size_t w = fwrite(text, 1, len, f);
    int rc = fclose(f);
    return w != len || rc ? -EIO : 0;
}

/* What setup decides about the sandbox: namespaces or not (a gap says why not), RUN/sandbox
 * with an empty file and, with a ca_file, the system bundle plus that CA; the variables that
 * name the bundle. */
int run_agent_sandbox_setup(run_agent_sandbox *a, store *s, const task_spec *t, const run_dirs *d,
                            char ***env, ptb_errbuf *eb)
{
    int rc;
    if (t->isolate)
        run_sandbox_probe(&a->caps);
    a->on = t->isolate && a->caps.ok;
    char why[512];
    if (!t->isolate)
        snprintf(why, sizeof why,
                 "the task asks for no isolation (sandbox.isolation none): the "
                 "agent sees the machine's files (the test split, the store, "
                 "other runs) and processes, protected only by their location");
    else if (!a->on)
        snprintf(why, sizeof why,
                 "no mount and PID namespaces here (%s): the agent sees the "
                 "machine's files (the test split, the store, other runs) and "
                 "processes, protected only by their location",
                 a->caps.why);
    if (!a->on && (rc = record_gap(s, PTB__V1__SOURCE__SOURCE_RUNNER, "sandbox",
                                   t->isolate ? "no_namespaces" : "disabled", why)))
        return ptb_errf(eb, rc, "store: %s", ptb_strerror(rc));
    if (a->on &&
        (rc = record_gap(s, PTB__V1__SOURCE__SOURCE_RUNNER, "sandbox", "host_writable",
                         geteuid() == 0
                             ? "the agent runs as root (without the capabilities to mount, "
                               "trace, load modules or open files by handle): it can write the "
                               "machine's files outside its workspace"
                             : "the agent can write what this user can outside its workspace")))
        return ptb_errf(eb, rc, "store: %s", ptb_strerror(rc));
    /* no cgroups: nothing bounds what the agent takes of the machine */
    if ((rc = record_gap(s, PTB__V1__SOURCE__SOURCE_RUNNER, "sandbox", "no_resource_limits",
                         "no memory or CPU limits (no cgroups), and CUDA_VISIBLE_DEVICES only "
                         "asks: the agent can take all of the machine's memory, cores and GPUs")))
        return ptb_errf(eb, rc, "store: %s", ptb_strerror(rc));
    if (t->hosts && !a->on &&
        (rc = record_gap(s, PTB__V1__SOURCE__SOURCE_RUNNER, "sandbox", "hosts_not_applied",
                         "the task's sandbox.hosts need the sandbox's own /etc/hosts: the "
                         "agent resolves names as the machine does")))
        return ptb_errf(eb, rc, "store: %s", ptb_strerror(rc));
    snprintf(a->dir, sizeof a->dir, "%s/sandbox", d->root);
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/empty", a->dir);
    if (mkdir(a->dir, 0755) || (rc = write_text(p, "", 0)))
        return ptb_errf(eb, -errno, "%s: %s", a->dir, strerror(errno));
    if (!t->ca_file)
        return 0;
    /* the system's bundle and the task's CA, one file */
    const char *sys = "/etc/ssl/certs/ca-certificates.crt";
    snprintf(p, sizeof p, "%s/ca-bundle.crt", a->dir);
    FILE *out = fopen(p, "w");
    if (!out)
        return ptb_errf(eb, -errno, "%s: %s", p, strerror(errno));
    const char *parts[2] = {sys, t->ca_file};
    rc = 0;
    for (int i = 0; i < 2 && !rc; i++) {
        FILE *in = fopen(parts[i], "r");
        if (!in) {
            if (i == 1)
                rc = ptb_errf(eb, -errno, "$.sandbox.ca_file %s: %s", parts[i], strerror(errno));
            continue;
        }
        char buf[65536];
        for (size_t n; (n = fread(buf, 1, sizeof buf, in)) > 0;)
            fwrite(buf, 1, n, out);
        fputc('\n', out);
        fclose(in);
    }
    if (fclose(out) && !rc)
        rc = ptb_errf(eb, PTB_EIO, "%s: cannot write", p);
    struct stat st;
    const char *named = a->on && stat(sys, &st) == 0 ? sys : p;
    const char *vars[] = {"SSL_CERT_FILE", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE",
                          "NODE_EXTRA_CA_CERTS", NULL};
    for (size_t i = 0; vars[i] && !rc; i++)
        rc = env_push(env, vars[i], named);
    return rc;
}

/* record_session's prepare for the agent phase: the hosts file (the network's host end is known
 * now) and the plan that the command's process carries out (run_sandbox_child). */
int run_agent_sandbox_prepare(run_agent_sandbox *a, const task_spec *t, const run_dirs *d,
                              const char *host_addr, tracer_options *to)
{
    char hosts[PATH_MAX + 32], empty[PATH_MAX + 32], bundle[PATH_MAX + 32], host[256] = "";
    snprintf(hosts, sizeof hosts, "%s/hosts", a->dir);
    snprintf(empty, sizeof empty, "%s/empty", a->dir);
    snprintf(bundle, sizeof bundle, "%s/ca-bundle.crt", a->dir);
    gethostname(host, sizeof host - 1);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return PTB_ENOMEM;
    fprintf(f, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if (*host)
        fprintf(f, "127.0.1.1\t%s\n", host);
    fprintf(f, "# the task's test hosts (ptb run, sandbox.hosts)\n");
    for (size_t i = 0; t->hosts && t->hosts[i]; i++) {
        const char *sp = strchr(t->hosts[i], ' ');
        const char *addr = strcmp(sp + 1, "host") ? sp + 1 : host_addr ? host_addr : "127.0.0.1";
        fprintf(f, "%s\t%.*s\n", addr, (int)(sp - t->hosts[i]), t->hosts[i]);
    }
    fclose(f);
    int rc = write_text(hosts, text, len);
    free(text);
    if (rc)
        return rc;
    /* hidden besides the run folder: the test split (and its folder when nothing the agent
     * needs is in it), other runs next to this one */
    char **hide = calloc(1024, sizeof *hide);
    size_t nh = 0;
    if (!hide)
        return PTB_ENOMEM;
    hide[nh++] = strdup(t->test_split);
    char dir[PATH_MAX], self[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", t->test_split);
    *strrchr(dir, '/') = 0;
    ssize_t sn = readlink("/proc/self/exe", self, sizeof self - 1);
    self[sn > 0 ? sn : 0] = 0;
    bool needed = strchr(dir + 1, '/') == NULL || path_under(d->root, dir) || path_under(self, dir);
    for (size_t i = 0; t->agent_argv[i] && !needed; i++)
        needed = t->agent_argv[i][0] == '/' && path_under(t->agent_argv[i], dir);
    if (!needed)
        hide[nh++] = strdup(dir);
    hide[nh++] = strdup(d->store);         /* when --store put it outside the run folder */
    for (int pass = 0; pass < 2; pass++) { /* next to the run folder, next to the store */
        snprintf(dir, sizeof dir, "%s", pass ? d->store : d->root);
        *strrchr(dir, '/') = 0;
        DIR *od = opendir(*dir ? dir : "/");
        for (struct dirent *e; od && (e = readdir(od)) && nh < 1023;) {
            char other[PATH_MAX], mark[PATH_MAX + 32];
            struct stat st;
            if (e->d_name[0] == '.' ||
                snprintf(other, sizeof other, "%s/%s", dir, e->d_name) >= (int)sizeof other ||
                !strcmp(other, d->root))
                continue;
            snprintf(mark, sizeof mark, "%s/run.ptb", other);
            bool is_run = stat(mark, &st) == 0;
            snprintf(mark, sizeof mark, "%s/data.mdb", other);
            if (is_run || stat(mark, &st) == 0)
                hide[nh++] = strdup(other);
        }
        if (od)
            closedir(od);
    }
    char ro[PATH_MAX + 16];
    snprintf(ro, sizeof ro, "%s/base_model", d->ws);
    struct stat st;
    run_sandbox_spec spec = {
        .run_root = d->root,
        .ws = d->ws,
        .home = d->home,
        .tmp = d->tmp,
        .read_only = ro,
        .hide = (const char *const *)hide,
        .expose = (const char *const *)t->agent_argv,
        .hosts_file = stat("/etc/hosts", &st) == 0 ? hosts : NULL,
        .ca_bundle =
            t->ca_file && stat("/etc/ssl/certs/ca-certificates.crt", &st) == 0 ? bundle : NULL,
        .gpu_socket = getenv("PTB_GPU_SOCKET"),
        .empty_file = empty,
    };
    ptb_errbuf eb = {{0}};
    rc = run_sandbox_plan(&spec, &a->caps, &a->sb, &eb);
    for (size_t i = 0; i < nh; i++)
        free(hide[i]);
    free(hide);
    if (rc) {
        fprintf(stderr, "ptb run: %s\n", eb.msg);
        return rc;
    }
    to->child_setup = run_sandbox_child;
    to->child_setup_arg = a->sb;
    return 0;
}

void run_agent_sandbox_release(run_agent_sandbox *a)
{
    run_sandbox_free(a->sb);
    a->sb = NULL;
}
