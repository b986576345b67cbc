/* The agent's sandbox of `ptb run`: see run_sandbox.h.
 *
 * Everything the child does (run_sandbox_child) runs between fork and exec in a process whose
 * parent may have other threads: only system calls and the string helpers below, no malloc, no
 * stdio: the parent (run_sandbox_plan) formats every string the child needs. The child opens
 * every bind's source with O_PATH once in its mount namespace (a bind's source must be a mount
 * of the caller's namespace) and before hiding anything: a path under the run folder stays
 * reachable through /proc/self/fd/N once the run folder is hidden. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "run_sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

enum { SB_TMPFS, SB_MKDIR, SB_MKFILE, SB_BIND, SB_RO };

typedef struct sb_step {
    int kind;
    const char *what;    /* for the error message */
    const char *data;    /* SB_TMPFS: mount options */
    char src[PATH_MAX];  /* SB_BIND: the source */
    char path[PATH_MAX]; /* the target */
} sb_step;

#define SB_MAX_STEPS 64

struct run_sandbox {
    bool userns;
    char uid_map[64], gid_map[64];
    char cwd[PATH_MAX];
    size_t n;
    sb_step steps[SB_MAX_STEPS];
};

/* ------------------------------------------------------------------ child side (no malloc) */

static void msg_set(char *msg, size_t cap, const char *a, const char *b)
{
    size_t n = 0;
    for (const char *s = a; s && *s && n + 1 < cap; s++)
        msg[n++] = *s;
    for (const char *s = b; s && *s && n + 1 < cap; s++)
        msg[n++] = *s;
    if (cap)
        msg[n] = 0;
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = strlen(text);
    int rc = write(fd, text, len) == (ssize_t)len ? 0 : -errno;
    close(fd);
    return rc;
}

/* The namespaces: a user namespace first when not root, then mount and PID; nothing mounted
 * here propagates back to the machine. */
static int sb_enter(const run_sandbox *sb, char *msg, size_t cap)
{
    int rc;
    if (sb->userns) {
        if (unshare(CLONE_NEWUSER) != 0)
            return msg_set(msg, cap, "unshare(CLONE_NEWUSER)", ""), -errno;
        if ((rc = write_file("/proc/self/setgroups", "deny")) ||
            (rc = write_file("/proc/self/uid_map", sb->uid_map)) ||
            (rc = write_file("/proc/self/gid_map", sb->gid_map)))
            return msg_set(msg, cap, "mapping the user namespace's uid and gid", ""), rc;
    }
    if (unshare(CLONE_NEWNS | CLONE_NEWPID) != 0)
        return msg_set(msg, cap, "unshare(CLONE_NEWNS | CLONE_NEWPID)", ""), -errno;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return msg_set(msg, cap, "making / private", ""), -errno;
    return 0;
}

/* The flags a remount must keep (in a user namespace they are locked: leaving one out is
 * EPERM). */
static unsigned long kept_flags(const char *path)
{
    struct statvfs v;
    unsigned long f = 0;
    if (statvfs(path, &v) != 0)
        return 0;
    if (v.f_flag & ST_NOSUID)
        f |= MS_NOSUID;
    if (v.f_flag & ST_NODEV)
        f |= MS_NODEV;
    if (v.f_flag & ST_NOEXEC)
        f |= MS_NOEXEC;
    if (v.f_flag & ST_NOATIME)
        f |= MS_NOATIME;
    if (v.f_flag & ST_NODIRATIME)
        f |= MS_NODIRATIME;
    if (v.f_flag & ST_RELATIME)
        f |= MS_RELATIME;
    return f;
}

/* "/proc/self/fd/N" */
static void fd_path(char out[32], int fd)
{
    char digits[12];
    int n = 0;
    do
        digits[n++] = (char)('0' + fd % 10);
    while ((fd /= 10) > 0 && n < 11);
    memcpy(out, "/proc/self/fd/", 14);
    for (int i = 0; i < n; i++)
        out[14 + i] = digits[n - 1 - i];
    out[14 + n] = 0;
}

static int sb_step_run(const sb_step *s, int src_fd)
{
    char src[32];
    switch (s->kind) {
    case SB_TMPFS:
        return mount("tmpfs", s->path, "tmpfs", MS_NOSUID | MS_NODEV, s->data) ? -errno : 0;
    case SB_MKDIR: return mkdir(s->path, 0755) && errno != EEXIST ? -errno : 0;
    case SB_MKFILE: {
        int fd = open(s->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0444);
        if (fd < 0)
            return errno == EEXIST || errno == EROFS || errno == EISDIR ? 0 : -errno;
        close(fd);
        return 0;
    }
    case SB_BIND:
        fd_path(src, src_fd);
        return mount(src, s->path, NULL, MS_BIND | MS_REC, NULL) ? -errno : 0;
    case SB_RO:
        return mount(NULL, s->path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | kept_flags(s->path),
                     NULL)
                   ? -errno
                   : 0;
    }
    return -EINVAL;
}

/* In the namespace's init: its own /proc. */
static int sb_mount_proc(char *msg, size_t cap)
{
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
        return msg_set(msg, cap, "mounting /proc for the PID namespace", ""), -errno;
    return 0;
}

static void quiet_stdio(void)
{
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
        dup2(fd, 0), dup2(fd, 1), dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
}

/* P: wait for init, then end as the command ended (its code, or its signal). */
static void __attribute__((noreturn)) sb_outer(pid_t init, int status_fd)
{
    const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        signal(sigs[i], SIG_IGN); /* the recorder stops the tree: the command decides */
    quiet_stdio();
    int st = 0, ist = 0;
    ssize_t n;
    do
        n = read(status_fd, &st, sizeof st);
    while (n < 0 && errno == EINTR);
    while (waitpid(init, &ist, 0) < 0 && errno == EINTR)
        ;
    if (n != (ssize_t)sizeof st) /* init died before it could say: its own end */
        st = ist;
    if (WIFSIGNALED(st)) {
        int sig = WTERMSIG(st);
        struct rlimit no = {0, 0};
        setrlimit(RLIMIT_CORE, &no);
        signal(sig, SIG_DFL);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, sig);
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        raise(sig);
        _exit(128 + sig);
    }
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
}

/* init of the PID namespace: reap every process until none is left, then tell P how the
 * command ended. */
static void __attribute__((noreturn)) sb_init(pid_t cmd, int status_fd)
{
    quiet_stdio();
    int st, cmd_st = 0;
    for (;;) {
        pid_t w = waitpid(-1, &st, __WALL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            break; /* ECHILD: the namespace is empty */
        }
        if (w == cmd)
            cmd_st = st;
    }
    ssize_t n = write(status_fd, &cmd_st, sizeof cmd_st);
    (void)n;
    _exit(0);
}

static const int dropped_caps[] = {
    CAP_SYS_ADMIN,       CAP_DAC_READ_SEARCH, CAP_SYS_PTRACE, CAP_SYS_MODULE, CAP_SYS_RAWIO,
    CAP_MKNOD,           CAP_SYS_BOOT,        CAP_NET_ADMIN,  CAP_SYS_TIME,   CAP_SYSLOG,
    CAP_MAC_ADMIN,       CAP_MAC_OVERRIDE,    CAP_BPF,        CAP_PERFMON,    CAP_AUDIT_CONTROL,
    CAP_LINUX_IMMUTABLE, CAP_SETPCAP,
};

int run_sandbox_child(void *arg, char *msg, size_t cap)
{
    const run_sandbox *sb = arg;
    int rc = sb_enter(sb, msg, cap), fds[SB_MAX_STEPS];
    for (size_t i = 0; i < sb->n; i++)
        fds[i] = -1;
    for (size_t i = 0; !rc && i < sb->n; i++)
        if (sb->steps[i].kind == SB_BIND &&
            (fds[i] = open(sb->steps[i].src, O_PATH | O_CLOEXEC)) < 0)
            rc = -errno, msg_set(msg, cap, "opening ", sb->steps[i].src);
    for (size_t i = 0; !rc && i < sb->n; i++)
        if ((rc = sb_step_run(&sb->steps[i], fds[i])))
            msg_set(msg, cap, sb->steps[i].what, sb->steps[i].path);
    if (!rc && chdir(sb->cwd) != 0) /* the workspace as mounted now */
        rc = -errno, msg_set(msg, cap, "chdir ", sb->cwd);
    for (size_t i = 0; i < sb->n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (rc)
        return rc;
    int st[2];
    if (pipe2(st, O_CLOEXEC) != 0)
        return msg_set(msg, cap, "pipe", ""), -errno;
    pid_t init = fork();
    if (init < 0)
        return msg_set(msg, cap, "fork (the namespace's init)", ""), -errno;
    if (init > 0) {
        close(st[1]);
        sb_outer(init, st[0]);
    }
    close(st[0]);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if ((rc = sb_mount_proc(msg, cap)))
        return rc;
    pid_t cmd = fork();
    if (cmd < 0)
        return msg_set(msg, cap, "fork (the command)", ""), -errno;
    if (cmd == 0) {
        close(st[1]);
        /* root keeps no power over the sandbox itself: no mount or umount (which would
         * reveal what is hidden), no open_by_handle_at, ptrace of others, raw devices or
         * modules. What it execs gets this bounding set. */
        for (size_t i = 0; i < sizeof dropped_caps / sizeof *dropped_caps; i++)
            if (prctl(PR_CAPBSET_DROP, dropped_caps[i], 0, 0, 0) != 0 && errno != EINVAL)
                return msg_set(msg, cap, "dropping capabilities", ""), -errno;
        return 0; /* goes on to exec the command */
    }
    sb_init(cmd, st[1]);
}

/* ------------------------------------------------------------------ probe */

void run_sandbox_probe(run_sandbox_caps *caps)
{
    memset(caps, 0, sizeof *caps);
    run_sandbox *sb = calloc(1, sizeof *sb);
    if (!sb) {
        snprintf(caps->why, sizeof caps->why, "out of memory");
        return;
    }
    sb->userns = geteuid() != 0;
    snprintf(sb->uid_map, sizeof sb->uid_map, "%u %u 1\n", (unsigned)geteuid(),
             (unsigned)geteuid());
    snprintf(sb->gid_map, sizeof sb->gid_map, "%u %u 1\n", (unsigned)getegid(),
             (unsigned)getegid());
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        snprintf(caps->why, sizeof caps->why, "pipe: %s", strerror(errno));
        free(sb);
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        char msg[200] = "";
        int rc = sb_enter(sb, msg, sizeof msg);
        pid_t g = rc ? -1 : fork();
        if (g == 0)
            _exit(sb_mount_proc(msg, sizeof msg) ? 1 : 0);
        int gst = 0;
        if (g > 0)
            waitpid(g, &gst, 0);
        else if (!rc)
            rc = -errno, msg_set(msg, sizeof msg, "fork", "");
        if (!rc && !(WIFEXITED(gst) && WEXITSTATUS(gst) == 0))
            rc = -EPERM, msg_set(msg, sizeof msg, "mounting /proc for the PID namespace", "");
        int e = -rc;
        ssize_t n = write(p[1], &e, sizeof e);
        n += write(p[1], msg, sizeof msg);
        _exit(n > 0 ? 0 : 1);
    }
    close(p[1]);
    int e = -1;
    char msg[200] = "";
    if (pid > 0 && read(p[0], &e, sizeof e) == (ssize_t)sizeof e &&
        read(p[0], msg, sizeof msg) == (ssize_t)sizeof msg) {
        msg[sizeof msg - 1] = 0;
        caps->ok = e == 0;
        caps->userns = sb->userns;
        if (e)
            snprintf(caps->why, sizeof caps->why, "%s: %s", msg, strerror(e));
    } else
        snprintf(caps->why, sizeof caps->why, "the probe did not report (%s)",
                 pid < 0 ? strerror(errno) : "it died");
    close(p[0]);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    free(sb);
}

/* ------------------------------------------------------------------ plan (parent side) */

static sb_step *add(run_sandbox *sb, int kind, const char *what, const char *path)
{
    if (sb->n == SB_MAX_STEPS || strlen(path) >= PATH_MAX)
        return NULL;
    sb_step *s = &sb->steps[sb->n++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->what = what;
    memcpy(s->path, path, strlen(path) + 1);
    return s;
}

/* A bind of path onto target (the path must exist now). */
static int add_bind(run_sandbox *sb, const char *what, const char *path, const char *target,
                    bool ro, ptb_errbuf *eb)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return ptb_errf(eb, -errno, "sandbox: %s: %s", path, strerror(errno));
    if (strlen(path) >= PATH_MAX)
        return ptb_errf(eb, -ENAMETOOLONG, "sandbox: %s: %s", path, strerror(ENAMETOOLONG));
    sb_step *s = add(sb, SB_BIND, what, target);
    if (!s || (ro && !add(sb, SB_RO, "making read-only ", target)))
        return ptb_errf(eb, PTB_ENOMEM, "sandbox: too many steps");
    memcpy(s->src, path, strlen(path) + 1);
    return 0;
}

static bool under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == 0);
}

int run_sandbox_plan(const run_sandbox_spec *spec, const run_sandbox_caps *caps, run_sandbox **out,
                     ptb_errbuf *eb)
{
    *out = NULL;
    run_sandbox *sb = calloc(1, sizeof *sb);
    if (!sb)
        return ptb_errf(eb, PTB_ENOMEM, "out of memory");
    sb->userns = caps->userns;
    snprintf(sb->uid_map, sizeof sb->uid_map, "%u %u 1\n", (unsigned)geteuid(),
             (unsigned)geteuid());
    snprintf(sb->gid_map, sizeof sb->gid_map, "%u %u 1\n", (unsigned)getegid(),
             (unsigned)getegid());
    snprintf(sb->cwd, sizeof sb->cwd, "%s", spec->ws);
    int rc = 0;
#define STEP(k, what, p)                                                                           \
    do {                                                                                           \
        if (!rc && !add(sb, k, what, p))                                                           \
            rc = ptb_errf(eb, PTB_ENOMEM, "sandbox: too many steps");                              \
    } while (0)
    /* a private /tmp first (the run folder may be under /tmp) */
    rc = add_bind(sb, "binding the temp folder at ", spec->tmp, "/tmp", false, eb);
    if (!rc && spec->gpu_socket && under(spec->gpu_socket, "/tmp")) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", spec->gpu_socket);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir + 4) { /* a folder of its own under /tmp */
            *slash = 0;
            STEP(SB_MKDIR, "making a mount point ", dir);
            if (!rc)
                rc = add_bind(sb, "binding the GPU recorder's socket folder at ", dir, dir, false,
                              eb);
        }
    }
    /* the run folder: an empty tmpfs holding mount points for ws, home, tmp, then read-only */
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", spec->run_root);
    for (char *s = p + 1; !rc && (s = strchr(s, '/')); s++) { /* it may be under /tmp */
        *s = 0;
        STEP(SB_MKDIR, "making a mount point ", p);
        *s = '/';
    }
    STEP(SB_MKDIR, "making a mount point ", spec->run_root);
    const char *keep[3] = {spec->ws, spec->home, spec->tmp};
    const char *keep_what[3] = {"binding the workspace at ", "binding the home at ",
                                "binding the temp folder at "};
    sb_step *t = rc ? NULL : add(sb, SB_TMPFS, "hiding the run folder ", spec->run_root);
    if (!t && !rc)
        rc = ptb_errf(eb, PTB_ENOMEM, "sandbox: too many steps");
    else if (t)
        t->data = "mode=0755,size=64k";
    for (int i = 0; i < 3 && !rc; i++) {
        if (!under(keep[i], spec->run_root)) {
            rc = ptb_errf(eb, PTB_EINVAL, "sandbox: %s is not under %s", keep[i], spec->run_root);
            break;
        }
        /* mount points for each level below the run folder */
        snprintf(p, sizeof p, "%s", keep[i]);
        for (char *s = p + strlen(spec->run_root) + 1; !rc && (s = strchr(s, '/')); s++) {
            *s = 0;
            STEP(SB_MKDIR, "making a mount point ", p);
            *s = '/';
        }
        STEP(SB_MKDIR, "making a mount point ", keep[i]);
        if (!rc)
            rc = add_bind(sb, keep_what[i], keep[i], keep[i], false, eb);
    }
    STEP(SB_RO, "making read-only ", spec->run_root);
    if (!rc && spec->read_only)
        rc = add_bind(sb, "binding read-only ", spec->read_only, spec->read_only, true, eb);
    for (size_t i = 0; !rc && spec->hide && spec->hide[i]; i++) {
        struct stat st;
        const char *h = spec->hide[i];
        if (stat(h, &st) != 0 || under(h, spec->run_root) || under(h, "/tmp"))
            continue; /* nothing there, or hidden already */
        if (S_ISDIR(st.st_mode)) {
            sb_step *s = add(sb, SB_TMPFS, "hiding ", h);
            if (!s)
                rc = ptb_errf(eb, PTB_ENOMEM, "sandbox: too many steps");
            else
                s->data = "mode=0755,size=4k";
            STEP(SB_RO, "making read-only ", h);
        } else
            rc = add_bind(sb, "hiding ", spec->empty_file, h, true, eb);
    }
    /* what the command names stays where it was, read-only */
    for (size_t i = 0; !rc && spec->expose && spec->expose[i]; i++) {
        struct stat st;
        const char *x = spec->expose[i];
        if (x[0] != '/' || stat(x, &st) != 0 || under(x, spec->run_root))
            continue;
        snprintf(p, sizeof p, "%s", x);
        for (char *s = p + 1; !rc && (s = strchr(s, '/')); s++) {
            *s = 0;
            STEP(SB_MKDIR, "making a mount point ", p);
            *s = '/';
        }
        STEP(S_ISDIR(st.st_mode) ? SB_MKDIR : SB_MKFILE, "making a mount point ", x);
        if (!rc)
            rc = add_bind(sb, "binding what the command names at ", x, x, true, eb);
    }
    /* a private /dev/shm */
    struct stat st;
    if (!rc && stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode)) {
        sb_step *s = add(sb, SB_TMPFS, "a private ", "/dev/shm");
        if (!s)
            rc = ptb_errf(eb, PTB_ENOMEM, "sandbox: too many steps");
        else
            s->data = "mode=1777";
    }
    if (!rc && spec->hosts_file)
        rc = add_bind(sb, "binding the run's hosts file at ", spec->hosts_file, "/etc/hosts", true,
                      eb);
    if (!rc && spec->ca_bundle)
        rc = add_bind(sb, "binding the run's CA bundle at ", spec->ca_bundle,
                      "/etc/ssl/certs/ca-certificates.crt", true, eb);
#undef STEP
    if (rc) {
        run_sandbox_free(sb);
        return rc;
    }
    *out = sb;
    return 0;
}

void run_sandbox_free(run_sandbox *sb)
{
    free(sb);
}
