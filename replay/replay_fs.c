/* A rebuilt state written as files (replay.h): folders first (their modes set last, deepest
 * first, so that read-only folders can be filled), files from their blobs (hard links as links),
 * symbolic links as they were recorded. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ptb_cli.h"
#include "replay.h"

static bool under(const char *path, const char *dir)
{
    size_t l = strlen(dir);
    if (l == 1 && dir[0] == '/')
        return path[0] == '/';
    return !strncmp(path, dir, l) && (path[l] == 0 || path[l] == '/');
}

static int mkdir_p(char *p, mode_t mode)
{
    for (char *q = p + 1; *q; q++)
        if (*q == '/') {
            *q = 0;
            int e = mkdir(p, 0755) && errno != EEXIST ? -errno : 0;
            *q = '/';
            if (e)
                return e;
        }
    return mkdir(p, mode) && errno != EEXIST ? -errno : 0;
}

static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        p += w, n -= (size_t)w;
    }
    return 0;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

/* Copy src into fd while hashing it: 1 when its SHA-256 and size are the node's, 0 when not,
 * -errno on a read or write error. */
static int fill_copy(const char *src, int fd, const rp_node *n)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    static __thread char buf[1 << 20];
    uint64_t total = 0;
    int rc = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) ? 0 : PTB_ENOMEM;
    while (!rc) {
        ssize_t r = read(in, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = -errno;
        if (r <= 0)
            break;
        EVP_DigestUpdate(md, buf, (size_t)r);
        total += (uint64_t)r;
        rc = write_all(fd, buf, (size_t)r);
    }
    close(in);
    uint8_t sha[32];
    unsigned hl = 0;
    bool same = !rc && EVP_DigestFinal_ex(md, sha, &hl) && hl == 32 && total == n->blob_size &&
                !memcmp(sha, n->sha, 32);
    EVP_MD_CTX_free(md);
    return rc ? rc : same;
}

typedef struct written {
    const rp_node *node;
    char *dst;
} written;

#define missing(r, path, ...)                                                                      \
    replay_note(&(r)->missing, &(r)->nmissing, &(r)->missing_cap, path, __VA_ARGS__)

/* The file e as name in the folder pfd: its content from the store or fill_from. */
static int write_file(store_txn *t, const rp_entry *e, int pfd, const char *name, const char *fill,
                      const replay_fs_options *o, replay_fs_result *r)
{
    const rp_node *n = e->node;
    char shx[65];
    hex(n->sha, 32, shx);
    int fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    int rc = 0;
    bool have = false;
    void *data = NULL;
    size_t len = 0;
    if (n->content == RP_KNOWN && n->blob_size == 0) {
        have = true;
    } else if (n->content == RP_KNOWN) {
        int g = store_blob_get(t, n->sha, &data, &len);
        if (g == 0 && len == n->blob_size) {
            size_t w = n->size < len ? (size_t)n->size : len;
            rc = write_all(fd, data, w);
            have = !rc;
        } else if (g && g != PTB_ENOTFOUND && g != PTB_ECORRUPT) {
            rc = g;
        }
        free(data);
    }
    if (!rc && !have && n->content != RP_UNKNOWN && fill) {
        int f = fill_copy(fill, fd, n);
        if (f < 0)
            rc = f;
        else if (f == 1)
            have = true, r->filled++;
        else if (ftruncate(fd, 0) || lseek(fd, 0, SEEK_SET))
            rc = -errno;
        if (have && n->size < n->blob_size && ftruncate(fd, (off_t)n->size))
            rc = -errno;
    }
    if (!rc && have && n->size > n->blob_size && ftruncate(fd, (off_t)n->size))
        rc = -errno;
    if (!rc && have && fchmod(fd, e->mode))
        rc = -errno;
    if (close(fd) && !rc)
        rc = -errno;
    if (rc)
        return rc;
    if (have) {
        r->files++;
        r->bytes += n->size;
        if (e->writing)
            rc = missing(r, e->path,
                         "open for writing at this seq: its bytes are as of the open (the recorder "
                         "reads a file when it is closed)");
        return rc;
    }
    if (n->content == RP_UNKNOWN)
        rc = missing(r, e->path, "its content was not recorded");
    else
        rc = missing(r, e->path, "%s: SHA-256 %s, %llu bytes%s",
                     n->content == RP_HASHED ? "its content was not captured (over a capture cap)"
                                             : "its blob is not in the store",
                     shx, (unsigned long long)n->blob_size,
                     fill ? "; no file of that hash under --fill-from" : "");
    if (!rc && o->create_missing) {
        if (fchmodat(pfd, name, e->mode, 0))
            rc = -errno;
        r->files++;
    } else if (!rc && unlinkat(pfd, name, 0)) {
        rc = -errno;
    }
    return rc;
}

/* The folder holding rel (a path under the folder tofd, no leading '/'), opened beneath tofd
 * with no symbolic link on the way: a recorded link (a crafted store, or an agent's `ln -s /etc
 * x` then `mkdir x/y`) must never make replay write outside the tree. *name: rel's last part.
 * Returns the folder's descriptor, or -errno (-ELOOP / -EXDEV: a link on the way). */
static int parent_beneath(int tofd, const char *rel, const char **name)
{
    const char *slash = strrchr(rel, '/');
    *name = slash ? slash + 1 : rel;
    char dir[PATH_MAX + 8192];
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - rel), rel);
    struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                           .resolve =
                               RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
    long fd = syscall(SYS_openat2, tofd, dir, &how, sizeof how);
    return fd < 0 ? -errno : (int)fd;
}

/* mkdir -p of rel beneath tofd (the folders above a root, when every root is written). */
static int mkdirs_beneath(int tofd, const char *rel)
{
    char p[PATH_MAX + 8192];
    snprintf(p, sizeof p, "%s", rel);
    for (char *q = p;; q++) {
        if (*q != '/' && *q)
            continue;
        char ch = *q;
        *q = 0;
        const char *name;
        int pfd = *p ? parent_beneath(tofd, p, &name) : -1;
        if (pfd >= 0) {
            int e = mkdirat(pfd, name, 0755) && errno != EEXIST ? -errno : 0;
            close(pfd);
            if (e)
                return e;
        } else if (*p) {
            return pfd;
        }
        *q = ch;
        if (!ch)
            return 0;
    }
}

int replay_fs_write(store_txn *t, const replay_state *st, const replay_fs_options *o,
                    replay_fs_result *r, ptb_errbuf *eb)
{
    memset(r, 0, sizeof *r);
    if (o->root && !replay_state_root_of(st, o->root))
        return ptb_errf(eb, PTB_EINVAL, "--root %s is not under a capture root of the store",
                        o->root);
    char to[PATH_MAX];
    int nrc = replay_new_dir(o->to, "", NULL, to, sizeof to, eb);
    if (nrc)
        return nrc;
    rp_entry **v;
    size_t n;
    int rc = replay_state_sorted(st, &v, &n);
    if (rc)
        return rc;
    written *wr = calloc(n ? n : 1, sizeof *wr);
    size_t nwr = 0;
    const rp_entry **dirs = calloc(n ? n : 1, sizeof *dirs);
    char **dir_dst = calloc(n ? n : 1, sizeof *dir_dst);
    size_t ndirs = 0;
    if (!wr || !dirs || !dir_dst)
        rc = PTB_ENOMEM;
    size_t rl = o->root ? strlen(o->root) : 0;
    if (rl == 1)
        rl = 0;
    int tofd = open(to, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (tofd < 0)
        rc = ptb_errf(eb, -errno, "%s: %s", to, strerror(errno));
    bool tty = isatty(2);
    char fill[PATH_MAX + 8192];
    for (size_t i = 0; !rc && i < n; i++) {
        const rp_entry *e = v[i];
        if (o->root && !under(e->path, o->root))
            continue;
        const char *rel = o->root ? e->path + rl : e->path;
        while (*rel == '/')
            rel++;
        snprintf(fill, sizeof fill, "%s/%s", o->fill_from ? o->fill_from : "", rel);
        if (!*rel) { /* --root itself: the folder `to` */
            dirs[ndirs] = e;
            if (!(dir_dst[ndirs++] = strdup("")))
                rc = PTB_ENOMEM;
            r->dirs++;
            continue;
        }
        const rp_root *root = replay_state_root_of(st, e->path);
        if (!o->root && root && !strcmp(root->path, e->path)) {
            const char *slash = strrchr(rel, '/'); /* the root's own parents: plain folders */
            if (slash) {
                char up[PATH_MAX + 8192];
                snprintf(up, sizeof up, "%.*s", (int)(slash - rel), rel);
                if ((rc = mkdirs_beneath(tofd, up)))
                    break;
            }
        }
        const char *name;
        int pfd = parent_beneath(tofd, rel, &name);
        if (pfd == -ELOOP || pfd == -EXDEV || pfd == -ENOENT || pfd == -ENOTDIR) {
            rc = missing(r, e->path,
                         "not written: a symbolic link or a file is where its folder would be "
                         "(writing through it would leave the tree)");
            continue;
        }
        if (pfd < 0) {
            rc = pfd;
            ptb_errf(eb, rc, "%s/%s: %s", to, rel, ptb_strerror(rc));
            break;
        }
        switch (e->kind) {
        case RP_DIR:
            if (mkdirat(pfd, name, 0700) && errno != EEXIST) {
                rc = -errno;
                break;
            }
            dirs[ndirs] = e;
            if (!(dir_dst[ndirs++] = strdup(rel)))
                rc = PTB_ENOMEM;
            r->dirs++;
            break;
        case RP_FILE: {
            const char *first = NULL;
            for (size_t k = 0; k < nwr && !first; k++)
                if (wr[k].node == e->node)
                    first = wr[k].dst;
            if (first) {
                const char *fname;
                int ffd = parent_beneath(tofd, first, &fname);
                if (ffd < 0 || linkat(ffd, fname, pfd, name, 0))
                    rc = ffd < 0 ? ffd : -errno;
                if (ffd >= 0)
                    close(ffd);
                r->links++;
                break;
            }
            rc = write_file(t, e, pfd, name, o->fill_from ? fill : NULL, o, r);
            if (!rc && e->node->refs > 1 && faccessat(pfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
                wr[nwr].node = e->node;
                if (!(wr[nwr++].dst = strdup(rel)))
                    rc = PTB_ENOMEM;
            }
            break;
        }
        case RP_SYMLINK:
            if (symlinkat(e->target, pfd, name))
                rc = -errno;
            r->symlinks++;
            break;
        case RP_OTHER: rc = missing(r, e->path, "a fifo, socket or device: not rebuilt"); break;
        }
        close(pfd);
        if (rc && !eb->msg[0])
            ptb_errf(eb, rc, "%s/%s: %s", to, rel, ptb_strerror(rc));
        if (o->progress && (i % 1000 == 999 || i + 1 == n))
            cli_progress("replay", tty, i + 1, n, "entries");
    }
    /* folder modes last, deepest first */
    for (size_t k = ndirs; k-- > 0;) {
        if (!dir_dst[k])
            continue;
        const char *name;
        int pfd = dir_dst[k][0] ? parent_beneath(tofd, dir_dst[k], &name) : -1;
        int e = pfd >= 0             ? (fchmodat(pfd, name, dirs[k]->mode, 0) ? -errno : 0)
                : dir_dst[k][0] == 0 ? (chmod(to, dirs[k]->mode) ? -errno : 0)
                                     : pfd;
        if (pfd >= 0)
            close(pfd);
        if (e && !rc) {
            rc = e;
            ptb_errf(eb, rc, "%s/%s: %s", to, dir_dst[k], ptb_strerror(rc));
        }
    }
    if (tofd >= 0)
        close(tofd);
    for (size_t k = 0; k < ndirs; k++)
        free(dir_dst[k]);
    for (size_t k = 0; k < nwr; k++)
        free(wr[k].dst);
    free(dir_dst);
    free(dirs);
    free(wr);
    free(v);
    return rc;
}

int replay_new_dir(const char *dir, const char *what, const char *prefix, char *out, size_t cap,
                   ptb_errbuf *eb)
{
    if (!dir) {
        const char *tmp = getenv("TMPDIR");
        snprintf(out, cap, "%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
        return mkdtemp(out) ? 0 : ptb_errf(eb, -errno, "%s: %s", out, strerror(errno));
    }
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
        return ptb_errf(eb, PTB_EINVAL, "%s%s: the path is too long", what, dir);
    struct stat sb;
    if (stat(p, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode))
            return ptb_errf(eb, PTB_EINVAL, "%s%s exists and is not a folder", what, dir);
        DIR *d = opendir(p);
        if (!d)
            return ptb_errf(eb, -errno, "%s%s: %s", what, dir, strerror(errno));
        struct dirent *de;
        bool empty = true;
        while (empty && (de = readdir(d)))
            empty = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
        closedir(d);
        if (!empty)
            return ptb_errf(eb, PTB_EINVAL,
                            "%s%s is not empty: give a new or empty folder (nothing was written)",
                            what, dir);
    } else if (errno != ENOENT || mkdir_p(p, 0755)) {
        return ptb_errf(eb, -errno, "%s%s: %s", what, dir, strerror(errno));
    }
    if (!realpath(p, out) || strlen(out) >= cap)
        return ptb_errf(eb, -errno, "%s%s: %s", what, dir, strerror(errno));
    return 0;
}

void replay_fs_result_free(replay_fs_result *r)
{
    for (size_t i = 0; i < r->nmissing; i++) {
        free(r->missing[i].path);
        free(r->missing[i].why);
    }
    free(r->missing);
    memset(r, 0, sizeof *r);
}
