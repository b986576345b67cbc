/* File syscalls and the descriptor tables.
 *
 * The tracer does not stop on read(2)/write(2) (a `dd bs=1` would stop a million times).
 * Instead it follows descriptors: an open for writing of a regular file is remembered, and when
 * the descriptor is closed (close, close_range, dup2 over it, close-on-exec at execve, the
 * process's exit) or its file is renamed, the file is hashed through /proc/PID/fd/FD and a
 * file.write is recorded with its final size and SHA-256 (and its bytes as a blob under a
 * capture root). So `bytes` of a file.write is the growth of the file through the descriptor
 * (size at close minus size at open), and `reads` of a file.read is not counted: `bytes` there
 * is the descriptor's offset at close (exact for sequential reads).
 * Reads of files in the system's read-only areas (/usr, /lib, ...) are not recorded unless
 * record_all_opens is set; their opens do not even wait for the syscall's exit. */
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/openat2.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tracer_int.h"

#define COPY_CHUNK (1u << 20)

/* ------------------------------------------------------------------ areas */

static const char *const system_areas[] = {"/usr/",    "/lib/", "/lib32/",          "/lib64/",
                                           "/libx32/", "/bin/", "/sbin/",           "/proc/",
                                           "/sys/",    "/dev/", "/etc/ld.so.cache", "/nix/store/"};

/* /dev/ is a system area but for its writable shared-memory folder: a program can keep any file
 * there (data moved through /dev/shm stays out of sight otherwise) */
static bool in_system_area(const char *path)
{
    if (!strncmp(path, "/dev/shm/", 9))
        return false;
    for (size_t i = 0; i < sizeof system_areas / sizeof system_areas[0]; i++)
        if (!strncmp(path, system_areas[i], strlen(system_areas[i])))
            return true;
    return false;
}

bool tracer_under_capture(const tracer *t, const char *path)
{
    for (size_t i = 0; i < t->o.n_capture_roots; i++) {
        const char *r = t->o.capture_roots[i];
        size_t rl = strlen(r);
        while (rl > 1 && r[rl - 1] == '/')
            rl--;
        if (!strncmp(path, r, rl) && (path[rl] == '/' || path[rl] == 0 || rl == 1))
            return true;
    }
    return false;
}

/* ------------------------------------------------------------------ the table */

static tracer_fd *fd_find(tracer_proc *p, int fd)
{
    for (size_t i = 0; i < p->nfds; i++)
        if (p->fds[i].fd == fd)
            return &p->fds[i];
    return NULL;
}

/* fd now refers to d (one more reference). */
static int fd_add(tracer_proc *p, int fd, tracer_desc *d)
{
    if (p->nfds == p->capfds) {
        size_t nc = p->capfds ? p->capfds * 2 : 8;
        tracer_fd *n = realloc(p->fds, nc * sizeof *n);
        if (!n)
            return PTB_ENOMEM;
        p->fds = n;
        p->capfds = nc;
    }
    d->refs++;
    p->fds[p->nfds++] = (tracer_fd){.fd = fd, .d = d};
    return 0;
}

static tracer_desc *desc_new(bool write, uint64_t size, const char *path)
{
    tracer_desc *d = calloc(1, sizeof *d);
    if (d && !(d->path = strdup(path))) {
        free(d);
        return NULL;
    }
    if (d) {
        d->write = write;
        d->size_open = size;
    }
    return d;
}

static void desc_unref(tracer_desc *d)
{
    if (--d->refs == 0) {
        free(d->path);
        free(d);
    }
}

/* Forget descriptor f (f and pointers into the table are invalid afterwards). */
static void fd_del(tracer_proc *p, tracer_fd *f)
{
    desc_unref(f->d);
    *f = p->fds[--p->nfds];
}

void tracer_fds_free(tracer_proc *p)
{
    for (size_t i = 0; i < p->nfds; i++)
        desc_unref(p->fds[i].d);
    free(p->fds);
    p->fds = NULL;
    p->nfds = p->capfds = 0;
    for (size_t i = 0; i < p->nmaps; i++)
        free(p->maps[i]);
    free(p->maps);
    p->maps = NULL;
    p->nmaps = 0;
}

int tracer_fds_clone(tracer_proc *to, const tracer_proc *from)
{
    for (size_t i = 0; i < from->nfds; i++) {
        int rc = fd_add(to, from->fds[i].fd, from->fds[i].d);
        if (rc)
            return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------ hashing and capture */

int tracer_content(tracer *t, int fd, const char *path, bool capture, uint64_t *size,
                   uint8_t sha[32], bool *captured)
{
    *captured = false;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    char *all = NULL;
    size_t have = 0;
    bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    bool nomem = false;
    if (ok && capture && !(all = malloc(*size ? *size : 1)))
        capture = false, nomem = true;
    for (;;) {
        char *dst = capture ? all + have : t->buf;
        size_t want = capture ? (size_t)*size - have : COPY_CHUNK;
        if (capture && want == 0)
            break;
        if (want > COPY_CHUNK)
            want = COPY_CHUNK;
        ssize_t n = pread(fd, dst, want, (off_t)have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            ok = ok && n == 0;
            break;
        }
        ok = ok && EVP_DigestUpdate(md, dst, (size_t)n);
        have += (size_t)n;
    }
    unsigned int hl = 0;
    ok = ok && EVP_DigestFinal_ex(md, sha, &hl) && hl == 32;
    EVP_MD_CTX_free(md);
    *size = have;
    if (ok && capture) {
        /* the buffer and its hash go to the store as they are: compressed on its threads while
         * the tracee goes on */
        int rc = store_blob_give(t->s, all, have, sha, path);
        all = NULL; /* the store's now, whatever it returned */
        if (rc == 0)
            *captured = true;
        else if (rc != PTB_ETOOBIG && rc != PTB_EBUDGET) /* those two make their own gap */
            t->store_err = rc;
    }
    free(all);
    return !ok ? -EIO : nomem ? PTB_ENOMEM : 0;
}

/* Hash (and capture) the file of d, read through descriptor fdnum of th's process (when
 * via_fd), or at its path when that fails. */
static void record_write(tracer *t, tracer_thread *th, int fdnum, const tracer_desc *f,
                         const char *trigger, bool via_fd)
{
    char src[64];
    snprintf(src, sizeof src, "/proc/%d/fd/%d", (int)th->p->pid, fdnum);
    int fd = via_fd && fdnum >= 0 ? open(src, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK) : -1;
    if (fd < 0)
        fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    ptb_event ev = PTB__V1__EVENT__INIT;
    Ptb__V1__FileWrite fw = PTB__V1__FILE_WRITE__INIT;
    fw.path = f->path;
    fw.trigger = (char *)trigger;
    uint8_t sha[32];
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = fd < 0 ? errno : EINVAL;
        if (fd >= 0)
            close(fd);
        char d[96];
        snprintf(d, sizeof d, "cannot read the written file: %s", strerror(e));
        tracer_gap(t, th, 0, "unreadable_file", f->path, d, 1, 0, NULL);
        return;
    }
    fw.size = (uint64_t)st.st_size;
    fw.mode = st.st_mode & 07777;
    fw.bytes = fw.size > f->size_open ? fw.size - f->size_open : 0;
    bool under = tracer_under_capture(t, f->path);
    const char *why = NULL;
    if (under && fw.size > t->o.capture_file_max)
        why = "capture_cap";
    else if (under && t->captured_total + fw.size > t->o.capture_total_max)
        why = "capture_budget";
    bool capture = under && !why;
    uint64_t have = fw.size;
    bool captured = false;
    int rc = tracer_content(t, fd, f->path, capture, &have, sha, &captured);
    close(fd);
    if (rc == PTB_ENOMEM)
        why = "capture_nomem";
    else if (rc) {
        tracer_gap(t, th, 0, "unreadable_file", f->path, "read error while hashing", 1, have, NULL);
        return;
    }
    fw.size = have; /* what was read: the file may have changed since the fstat */
    fw.sha256.data = sha;
    fw.sha256.len = 32;
    if (captured) {
        fw.captured = true;
        t->captured_total += have;
        t->r->bytes_captured += have;
    }
    ev.body_case = PTB__V1__EVENT__BODY_FILE_WRITE;
    ev.file_write = &fw;
    tracer_emit(t, th, &ev);
    t->r->files_written++;
    if (why) {
        char d[128];
        snprintf(d, sizeof d,
                 "content not stored (%s): file %llu bytes, per-file cap %llu, "
                 "total cap %llu",
                 why, (unsigned long long)fw.size, (unsigned long long)t->o.capture_file_max,
                 (unsigned long long)t->o.capture_total_max);
        tracer_gap(t, th, 0, why, f->path, d, 1, fw.size, sha);
    }
}

/* file.read summary: bytes = the offset of descriptor fdnum now. */
static void record_read(tracer *t, tracer_thread *th, int fdnum, const tracer_desc *f)
{
    char name[48];
    snprintf(name, sizeof name, "fdinfo/%d", fdnum);
    char *b;
    size_t n;
    ptb_event ev = PTB__V1__EVENT__INIT;
    Ptb__V1__FileRead fr = PTB__V1__FILE_READ__INIT;
    fr.path = f->path;
    if (tracer_proc_slurp(th->p->pid, name, 4096, &b, &n) == 0) {
        if (!strncmp(b, "pos:", 4))
            fr.bytes = strtoull(b + 4, NULL, 10);
        free(b);
    }
    ev.body_case = PTB__V1__EVENT__BODY_FILE_READ;
    ev.file_read = &fr;
    tracer_emit(t, th, &ev);
}

/* Descriptor f of th's process goes away: when it was the last one of its description, the
 * file is final: file.write or file.read. Removes f from the table. */
static void fd_close(tracer *t, tracer_thread *th, tracer_fd *f, const char *trigger, bool via_fd)
{
    if (f->d->refs == 1) {
        if (f->d->write)
            record_write(t, th, f->fd, f->d, trigger, via_fd);
        else
            record_read(t, th, f->fd, f->d);
    }
    fd_del(th->p, f);
}

void tracer_file_flush_all(tracer *t, tracer_thread *th, bool can_read_proc)
{
    tracer_proc *p = th->p;
    /* shared writable mappings: the file as it is now, unless its last descriptor does it */
    for (size_t i = 0; i < p->nmaps; i++) {
        bool done = false;
        for (size_t k = 0; k < p->nfds && !done; k++)
            done = p->fds[k].d->write && p->fds[k].d->refs == 1 &&
                   !strcmp(p->fds[k].d->path, p->maps[i]);
        if (!done) {
            tracer_desc d = {.write = true, .path = p->maps[i]};
            record_write(t, th, -1, &d, "mmap", false);
        }
    }
    while (p->nfds)
        fd_close(t, th, &p->fds[p->nfds - 1], "exit", can_read_proc);
    tracer_fds_free(p);
}

void tracer_file_flush_cloexec(tracer *t, tracer_thread *th)
{
    tracer_proc *p = th->p;
    for (size_t i = 0; i < p->nfds;) {
        char name[48], *b;
        size_t n;
        snprintf(name, sizeof name, "fdinfo/%d", p->fds[i].fd);
        unsigned long flags = 0;
        if (tracer_proc_slurp(p->pid, name, 4096, &b, &n) == 0) {
            const char *fl = strstr(b, "flags:");
            flags = fl ? strtoul(fl + 6, NULL, 8) : 0;
            free(b);
        }
        if (flags & O_CLOEXEC) /* closes with the exec (a failed exec keeps it, untracked) */
            fd_close(t, th, &p->fds[i], "exec", true);
        else
            i++;
    }
}

void tracer_file_after_exec(tracer *t, tracer_thread *th)
{
    tracer_proc *p = th->p;
    char buf[TRACER_PATH_MAX];
    for (size_t i = 0; i < p->nfds;) {
        if (tracer_proc_link(p->pid, p->fds[i].fd, NULL, buf, sizeof buf) != 0)
            fd_close(t, th, &p->fds[i], "exec", false); /* closed by the exec after all */
        else
            i++;
    }
    /* mappings do not survive an exec: hash them now */
    for (size_t i = 0; i < p->nmaps; i++) {
        tracer_desc d = {.write = true, .path = p->maps[i]};
        record_write(t, th, -1, &d, "mmap", false);
        free(p->maps[i]);
    }
    p->nmaps = 0;
}

/* ------------------------------------------------------------------ syscalls */

/* Read the path argument at addr, resolved against dirfd, into a malloc'd string. A path the
 * tracer cannot read is a gap (unreadable_args), and NULL. */
static char *arg_path(tracer *t, tracer_thread *th, int dirfd, uint64_t addr)
{
    char raw[TRACER_PATH_MAX], abs[TRACER_PATH_MAX];
    int rc = tracer_mem_string(th->tid, addr, raw, sizeof raw);
    if (rc == 0)
        rc = tracer_path_at(th->p->pid, dirfd, raw, abs, sizeof abs);
    if (rc) {
        char d[96];
        snprintf(d, sizeof d, "syscall %d: path argument: %s", th->nr, ptb_strerror(rc));
        tracer_gap(t, th, 0, "unreadable_args", NULL, d, 1, 0, NULL);
        return NULL;
    }
    return strdup(abs);
}

static char *arg_string(tracer_thread *th, uint64_t addr)
{
    char raw[TRACER_PATH_MAX];
    if (tracer_mem_string(th->tid, addr, raw, sizeof raw) != 0)
        return NULL;
    return strdup(raw);
}

static bool want_exit(tracer_thread *th, int nr, const uint64_t args[6])
{
    th->in_sys = true;
    th->nr = nr;
    memcpy(th->args, args, sizeof th->args);
    return true;
}

/* Writers of path in any process of the tree: hashed before a rename moves the file (once per
 * description, through one of its descriptors). */
static void flush_writers_of(tracer *t, const char *path)
{
    uint64_t stamp = ++t->visit_stamp;
    for (size_t i = 0; i < t->thr_cap; i++) {
        tracer_thread *o = t->thr[i];
        if (!o || o->p->visit == stamp) /* once per process, through any of its threads */
            continue;
        o->p->visit = stamp;
        for (size_t k = 0; k < o->p->nfds; k++) {
            tracer_desc *d = o->p->fds[k].d;
            if (d->write && d->stamp != stamp && !strcmp(d->path, path)) {
                d->stamp = stamp;
                record_write(t, o, o->p->fds[k].fd, d, "rename", true);
            }
        }
    }
}

/* After a rename: followed paths equal to from, or below it, now live under to. */
static void rename_tracked(tracer *t, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to);
    uint64_t stamp = ++t->visit_stamp;
    for (size_t i = 0; i < t->thr_cap; i++) {
        tracer_thread *o = t->thr[i];
        if (!o || o->p->visit == stamp)
            continue;
        o->p->visit = stamp;
        for (size_t k = 0; k < o->p->nfds; k++) {
            tracer_desc *d = o->p->fds[k].d;
            char *p = d->path;
            if (strncmp(p, from, fl) || (p[fl] && p[fl] != '/'))
                continue;
            if (!strncmp(p, to, tl) && (p[tl] == 0 || p[tl] == '/') && tl >= fl)
                continue; /* a description shared with an earlier descriptor: moved already */
            char *np = malloc(tl + strlen(p + fl) + 1);
            if (!np)
                continue;
            memcpy(np, to, tl);
            strcpy(np + tl, p + fl);
            free(p);
            d->path = np;
        }
    }
}

bool tracer_file_enter(tracer *t, tracer_thread *th, int nr, const uint64_t args[6])
{
    tracer_proc *p = th->p;
    int dirfd = (int)args[0];
    free(th->path1);
    free(th->path2);
    th->path1 = th->path2 = NULL;
    th->nr = nr;
    uint64_t flags = 0, paddr = 0;
    switch (nr) {
#ifdef SYS_open
    case SYS_open: dirfd = AT_FDCWD, paddr = args[0], flags = args[1]; goto open;
    case SYS_creat:
        dirfd = AT_FDCWD, paddr = args[0], flags = O_CREAT | O_WRONLY | O_TRUNC;
        goto open;
#endif
    case SYS_openat: paddr = args[1], flags = args[2]; goto open;
    case SYS_openat2: {
        struct open_how how;
        size_t sz = args[3] < sizeof how ? args[3] : sizeof how;
        memset(&how, 0, sizeof how);
        if (sz < 8 || tracer_mem_read(th->tid, args[2], &how, sz))
            return false; /* the kernel refuses it too */
        paddr = args[1];
        flags = how.flags;
        goto open;
    }
    open : {
        bool write = (flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC));
        if (flags & O_PATH)
            write = false;
        th->path1 = arg_path(t, th, dirfd, paddr);
        if (!th->path1)
            return false;
        if (!write && !t->o.record_all_opens && in_system_area(th->path1))
            return false;
        th->aux = (int64_t)flags;
        return want_exit(th, nr, args);
    }
    case SYS_close: {
        tracer_fd *f = fd_find(p, (int)args[0]);
        if (f)
            fd_close(t, th, f, "close", true);
        return false;
    }
    case SYS_close_range: {
        if (args[2] & CLOSE_RANGE_CLOEXEC)
            return false; /* marks only; the exec flushes them */
        for (size_t i = 0; i < p->nfds;) {
            tracer_fd *f = &p->fds[i];
            if ((uint64_t)f->fd >= args[0] && (uint64_t)f->fd <= args[1]) {
                fd_close(t, th, f, "close", true);
            } else {
                i++;
            }
        }
        return false;
    }
#ifdef SYS_dup2
    case SYS_dup2:
#endif
    case SYS_dup3: {
        tracer_fd *f = (int)args[0] != (int)args[1] ? fd_find(p, (int)args[1]) : NULL;
        if (f) /* the dup closes what newfd was */
            fd_close(t, th, f, "close", true);
        return fd_find(p, (int)args[0]) ? want_exit(th, nr, args) : false;
    }
    case SYS_dup:
    case SYS_fcntl: return fd_find(p, (int)args[0]) ? want_exit(th, nr, args) : false;
#ifdef SYS_rename
    case SYS_rename:
        th->path1 = arg_path(t, th, AT_FDCWD, args[0]);
        th->path2 = arg_path(t, th, AT_FDCWD, args[1]);
        goto rename;
#endif
    case SYS_renameat:
    case SYS_renameat2:
        th->path1 = arg_path(t, th, (int)args[0], args[1]);
        th->path2 = arg_path(t, th, (int)args[2], args[3]);
#ifdef SYS_rename
    rename:
#endif
        if (!th->path1 || !th->path2)
            return false;
        flush_writers_of(t, th->path1);
        return want_exit(th, nr, args);
#ifdef SYS_unlink
    case SYS_unlink:
    case SYS_rmdir: th->path1 = arg_path(t, th, AT_FDCWD, args[0]); break;
    case SYS_mkdir: th->path1 = arg_path(t, th, AT_FDCWD, args[0]); break;
    case SYS_link:
        th->path2 = arg_path(t, th, AT_FDCWD, args[0]);
        th->path1 = arg_path(t, th, AT_FDCWD, args[1]);
        break;
    case SYS_symlink:
        th->path2 = arg_string(th, args[0]);
        th->path1 = arg_path(t, th, AT_FDCWD, args[1]);
        break;
    case SYS_chmod: th->path1 = arg_path(t, th, AT_FDCWD, args[0]); break;
#endif
    case SYS_fchmodat:
    case SYS_fchmodat2:
        if (args[1] == 0 || ((args[3] & AT_EMPTY_PATH) && nr == SYS_fchmodat2)) {
            char buf[TRACER_PATH_MAX]; /* an empty path: the descriptor itself */
            if (tracer_proc_link(p->pid, dirfd, NULL, buf, sizeof buf) == 0)
                th->path1 = strdup(buf);
        } else {
            th->path1 = arg_path(t, th, dirfd, args[1]);
        }
        break;
    case SYS_unlinkat:
    case SYS_mkdirat: th->path1 = arg_path(t, th, dirfd, args[1]); break;
    case SYS_linkat:
        th->path2 = arg_path(t, th, (int)args[0], args[1]);
        th->path1 = arg_path(t, th, (int)args[2], args[3]);
        break;
    case SYS_symlinkat:
        th->path2 = arg_string(th, args[0]);
        th->path1 = arg_path(t, th, (int)args[1], args[2]);
        break;
    case SYS_truncate: th->path1 = arg_path(t, th, AT_FDCWD, args[0]); break;
    case SYS_fchmod:
    case SYS_ftruncate: {
        char buf[TRACER_PATH_MAX];
        if (tracer_proc_link(p->pid, (int)args[0], NULL, buf, sizeof buf) == 0)
            th->path1 = strdup(buf);
        break;
    }
    case SYS_mmap: { /* shared, writable, of a file (the filter checked): hash it at exit */
        tracer_fd *f = fd_find(p, (int)args[4]);
        char buf[TRACER_PATH_MAX];
        const char *path = f ? f->d->path : NULL;
        if (!path && tracer_proc_link(p->pid, (int)args[4], NULL, buf, sizeof buf) == 0)
            path = buf;
        if (!path || path[0] != '/' || !strncmp(path, "/dev/", 5))
            return false;
        for (size_t i = 0; i < p->nmaps; i++)
            if (!strcmp(p->maps[i], path))
                return false;
        char **nm = realloc(p->maps, (p->nmaps + 1) * sizeof *nm);
        if (nm) {
            p->maps = nm;
            if ((nm[p->nmaps] = strdup(path)))
                p->nmaps++;
        }
        return false;
    }
    default: return false;
    }
    if (!th->path1)
        return false;
    return want_exit(th, nr, args);
}

/* The opened descriptor: its canonical path, and whether to follow it. */
static void opened(tracer *t, tracer_thread *th, int fd)
{
    char path[TRACER_PATH_MAX];
    if (tracer_proc_link(th->p->pid, fd, NULL, path, sizeof path) != 0 || path[0] != '/')
        return;
    free(th->path1);
    th->path1 = strdup(path);
    char src[64];
    snprintf(src, sizeof src, "/proc/%d/fd/%d", (int)th->p->pid, fd);
    struct stat st;
    if (stat(src, &st) != 0 || !S_ISREG(st.st_mode))
        return;
    uint64_t flags = (uint64_t)th->aux;
    bool write = (flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC));
    if (!write && !t->o.record_all_opens && in_system_area(path))
        return;
    tracer_fd *old = fd_find(th->p, fd); /* a stale entry (missed close): replace it */
    if (old)
        fd_del(th->p, old);
    tracer_desc *d = desc_new(write, (uint64_t)st.st_size, path);
    if (d && fd_add(th->p, fd, d) != 0) {
        d->refs = 1;
        desc_unref(d);
    }
}

void tracer_file_exit(tracer *t, tracer_thread *th, int64_t ret)
{
    th->in_sys = false;
    ptb_event ev = PTB__V1__EVENT__INIT;
    int nr = th->nr;
    int res = ret < 0 ? (int)ret : 0;
    switch (nr) {
#ifdef SYS_open
    case SYS_open:
    case SYS_creat:
#endif
    case SYS_openat:
    case SYS_openat2: {
        if (ret >= 0)
            opened(t, th, (int)ret);
        if (!th->path1)
            return;
        Ptb__V1__FileOpen fo = PTB__V1__FILE_OPEN__INIT;
        fo.path = th->path1;
        fo.flags = (int32_t)th->aux;
        fo.fd = ret >= 0 ? (int32_t)ret : -1;
        fo.result = (int32_t)ret;
        ev.body_case = PTB__V1__EVENT__BODY_FILE_OPEN;
        ev.file_open = &fo;
        tracer_emit(t, th, &ev);
        return;
    }
#ifdef SYS_dup2
    case SYS_dup2:
#endif
    case SYS_dup:
    case SYS_dup3:
    case SYS_fcntl: {
        tracer_fd *f = fd_find(th->p, (int)th->args[0]);
        if (ret >= 0 && f && ret != f->fd && !fd_find(th->p, (int)ret))
            fd_add(th->p, (int)ret, f->d);
        return;
    }
#ifdef SYS_rename
    case SYS_rename:
#endif
    case SYS_renameat:
    case SYS_renameat2: {
        Ptb__V1__FileRename fr = PTB__V1__FILE_RENAME__INIT;
        fr.path = th->path1;
        fr.new_path = th->path2;
        fr.result = res;
        fr.exchange = nr == SYS_renameat2 && (th->args[4] & RENAME_EXCHANGE);
        ev.body_case = PTB__V1__EVENT__BODY_FILE_RENAME;
        ev.file_rename = &fr;
        tracer_emit(t, th, &ev);
        if (ret == 0)
            rename_tracked(t, th->path1, th->path2);
        return;
    }
#ifdef SYS_unlink
    case SYS_unlink:
    case SYS_rmdir:
#endif
    case SYS_unlinkat: {
        Ptb__V1__FileUnlink fu = PTB__V1__FILE_UNLINK__INIT;
        fu.path = th->path1;
        fu.result = res;
#ifdef SYS_rmdir
        fu.is_dir = nr == SYS_rmdir;
#endif
        if (nr == SYS_unlinkat)
            fu.is_dir = (th->args[2] & AT_REMOVEDIR) != 0;
        ev.body_case = PTB__V1__EVENT__BODY_FILE_UNLINK;
        ev.file_unlink = &fu;
        tracer_emit(t, th, &ev);
        return;
    }
#ifdef SYS_mkdir
    case SYS_mkdir:
#endif
    case SYS_mkdirat: {
        Ptb__V1__FileMkdir fm = PTB__V1__FILE_MKDIR__INIT;
        fm.path = th->path1;
        fm.mode = (uint32_t)(nr == SYS_mkdirat ? th->args[2] : th->args[1]) & 07777;
        /* the mode it got (the umask applied), what replay rebuilds; seen from the tracee's
         * root, which a sandbox's mount namespace makes other than the recorder's */
        struct stat st;
        char in_root[TRACER_PATH_MAX + 32];
        snprintf(in_root, sizeof in_root, "/proc/%d/root%s", (int)th->p->pid, th->path1);
        if (ret == 0 && lstat(in_root, &st) == 0 && S_ISDIR(st.st_mode))
            fm.mode = st.st_mode & 07777;
        fm.result = res;
        ev.body_case = PTB__V1__EVENT__BODY_FILE_MKDIR;
        ev.file_mkdir = &fm;
        tracer_emit(t, th, &ev);
        return;
    }
#ifdef SYS_link
    case SYS_link:
    case SYS_symlink:
#endif
    case SYS_linkat:
    case SYS_symlinkat: {
        Ptb__V1__FileLink fl = PTB__V1__FILE_LINK__INIT;
        fl.path = th->path1;
        fl.target = th->path2 ? th->path2 : (char *)"";
#ifdef SYS_symlink
        fl.symbolic = nr == SYS_symlink;
#endif
        fl.symbolic = fl.symbolic || nr == SYS_symlinkat;
        fl.result = res;
        ev.body_case = PTB__V1__EVENT__BODY_FILE_LINK;
        ev.file_link = &fl;
        tracer_emit(t, th, &ev);
        return;
    }
#ifdef SYS_chmod
    case SYS_chmod:
#endif
    case SYS_fchmod:
    case SYS_fchmodat:
    case SYS_fchmodat2: {
        Ptb__V1__FileChmod fc = PTB__V1__FILE_CHMOD__INIT;
        fc.path = th->path1;
        fc.mode =
            (uint32_t)(nr == SYS_fchmodat || nr == SYS_fchmodat2 ? th->args[2] : th->args[1]) &
            07777;
        fc.result = res;
        ev.body_case = PTB__V1__EVENT__BODY_FILE_CHMOD;
        ev.file_chmod = &fc;
        tracer_emit(t, th, &ev);
        return;
    }
    case SYS_truncate:
    case SYS_ftruncate: {
        Ptb__V1__FileTruncate ft = PTB__V1__FILE_TRUNCATE__INIT;
        ft.path = th->path1;
        ft.length = th->args[1];
        ft.result = res;
        ev.body_case = PTB__V1__EVENT__BODY_FILE_TRUNCATE;
        ev.file_truncate = &ft;
        tracer_emit(t, th, &ev);
        return;
    }
    default: return;
    }
}
