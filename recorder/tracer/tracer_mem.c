/* Reading a tracee: its memory (process_vm_readv, page by page so a string that ends before an
 * unmapped page is still read) and its /proc entries. Everything read here comes from a program
 * that may be hostile: lengths are bounded, strings are cut at the buffer, errors are returned. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "tracer_int.h"

int tracer_mem_read(pid_t pid, uint64_t addr, void *buf, size_t len)
{
    struct iovec local = {buf, len}, remote = {(void *)(uintptr_t)addr, len};
    ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (n < 0)
        return -errno;
    return (size_t)n == len ? 0 : -EFAULT;
}

int tracer_mem_string(pid_t pid, uint64_t addr, char *buf, size_t cap)
{
    if (cap < 2)
        return PTB_EINVAL;
    if (addr == 0)
        return -EFAULT;
    size_t got = 0;
    while (got < cap - 1) {
        /* up to the end of the page, so an unmapped next page does not fail the read */
        uint64_t a = addr + got;
        size_t chunk = 4096 - (size_t)(a & 4095);
        if (chunk > cap - 1 - got)
            chunk = cap - 1 - got;
        struct iovec local = {buf + got, chunk}, remote = {(void *)(uintptr_t)a, chunk};
        ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
        if (n <= 0) {
            buf[got] = 0;
            return n < 0 ? -errno : -EFAULT;
        }
        char *z = memchr(buf + got, 0, (size_t)n);
        if (z)
            return 0;
        got += (size_t)n;
    }
    buf[cap - 1] = 0;
    return PTB_ETOOBIG;
}

int tracer_proc_link(pid_t pid, int fd, const char *name, char *out, size_t cap)
{
    char p[64];
    if (fd >= 0)
        snprintf(p, sizeof p, "/proc/%d/fd/%d", (int)pid, fd);
    else
        snprintf(p, sizeof p, "/proc/%d/%s", (int)pid, name);
    ssize_t n = readlink(p, out, cap - 1);
    if (n < 0)
        return -errno;
    if ((size_t)n >= cap - 1)
        return PTB_ETOOBIG;
    out[n] = 0;
    return 0;
}

int tracer_proc_slurp(pid_t pid, const char *name, size_t max, char **out, size_t *len)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/%s", (int)pid, name);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap + 1);
    if (!b) {
        close(fd);
        return PTB_ENOMEM;
    }
    for (;;) {
        if (n == cap) {
            if (cap >= max)
                break;
            size_t nc = cap * 2 > max ? max : cap * 2;
            char *nb = realloc(b, nc + 1);
            if (!nb) {
                free(b);
                close(fd);
                return PTB_ENOMEM;
            }
            b = nb;
            cap = nc;
        }
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = -errno;
            free(b);
            close(fd);
            return e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    b[n] = 0;
    *out = b;
    *len = n;
    return 0;
}

/* Lexical normalisation of an absolute path in place: "//", "/./", "/x/../". */
static void path_normalise(char *p)
{
    char *out = p, *in = p;
    while (*in) {
        while (*in == '/')
            in++;
        char *seg = in;
        while (*in && *in != '/')
            in++;
        size_t sl = (size_t)(in - seg);
        if (sl == 0 || (sl == 1 && seg[0] == '.'))
            continue;
        if (sl == 2 && seg[0] == '.' && seg[1] == '.') {
            while (out > p && *--out != '/')
                ;
            continue;
        }
        *out++ = '/';
        memmove(out, seg, sl);
        out += sl;
    }
    if (out == p)
        *out++ = '/';
    *out = 0;
}

int tracer_path_at(pid_t pid, int dirfd, const char *path, char *out, size_t cap)
{
    if (path[0] == '/') {
        if (strlen(path) >= cap)
            return PTB_ETOOBIG;
        strcpy(out, path);
    } else {
        int rc = dirfd == AT_FDCWD ? tracer_proc_link(pid, -1, "cwd", out, cap)
                                   : tracer_proc_link(pid, dirfd, NULL, out, cap);
        if (rc)
            return rc;
        size_t bl = strlen(out), pl = strlen(path);
        if (bl + 1 + pl >= cap)
            return PTB_ETOOBIG;
        out[bl] = '/';
        memcpy(out + bl + 1, path, pl + 1);
    }
    path_normalise(out);
    /* /proc/self/fd/N (tar chmods folders through it), /proc/thread-self/fd/N: the file the
     * descriptor is, so that the event names the real path. Not /proc/PID/fd/N: in a sandbox's
     * PID namespace the tracee's PID is not the recorder's. */
    const char *q = NULL;
    if (!strncmp(out, "/proc/self/fd/", 14))
        q = out + 14;
    else if (!strncmp(out, "/proc/thread-self/fd/", 21))
        q = out + 21;
    if (q && *q >= '0' && *q <= '9') {
        char *end;
        long fd = strtol(q, &end, 10);
        char real[4096], rest[4096];
        if ((*end == 0 || *end == '/') && fd <= INT32_MAX && strlen(end) < sizeof rest) {
            strcpy(rest, end);
            if (tracer_proc_link(pid, (int)fd, NULL, real, sizeof real) == 0 && real[0] == '/' &&
                strlen(real) + strlen(rest) < cap) {
                strcpy(out, real);
                strcat(out, rest);
            }
        }
    }
    return 0;
}
