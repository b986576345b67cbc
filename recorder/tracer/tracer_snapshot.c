/* What the snapshot roots hold before the command starts (tracer_options.snapshot): one
 * file.state event per entry, the root first, folders before what they hold, names in byte
 * order; the contents of regular files stored as blobs within the capture caps (the snapshot's
 * total counted apart from the command's writes), larger ones hashed. `ptb replay` starts from
 * these events; a walk cut short says so in a gap with origin "snapshot". */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tracer_int.h"

typedef struct snap {
    tracer *t;
    char store[TRACER_PATH_MAX]; /* the store's folder: never walked */
    uint64_t captured;           /* content stored so far */
    bool cut;                    /* the entry cap was reached */
} snap;

static void snap_gap(snap *sn, const char *reason, const char *path, const char *detail,
                     uint64_t bytes, const uint8_t *sha)
{
    ptb_event ev = PTB__V1__EVENT__INIT;
    Ptb__V1__Gap g = PTB__V1__GAP__INIT;
    g.origin = (char *)"snapshot";
    g.reason = (char *)reason;
    g.path = (char *)path;
    g.detail = (char *)detail;
    g.count = 1;
    g.bytes = bytes;
    if (sha) {
        g.sha256.data = (uint8_t *)sha;
        g.sha256.len = 32;
    }
    ev.body_case = PTB__V1__EVENT__BODY_GAP;
    ev.gap = &g;
    tracer_emit(sn->t, NULL, &ev);
    sn->t->r->gaps++;
}

static void emit_state(snap *sn, Ptb__V1__FileState *fs)
{
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.body_case = PTB__V1__EVENT__BODY_FILE_STATE;
    ev.file_state = fs;
    tracer_emit(sn->t, NULL, &ev);
    sn->t->r->snapshot_entries++;
}

/* A regular file at dirfd/name (path): hashed, captured within the caps. */
static void state_file(snap *sn, int dirfd, const char *name, const char *path,
                       const struct stat *st, Ptb__V1__FileState *fs)
{
    tracer *t = sn->t;
    uint8_t sha[32];
    fs->kind = (char *)"file";
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        char d[128];
        snprintf(d, sizeof d, "cannot read the file: %s", strerror(errno));
        emit_state(sn, fs);
        snap_gap(sn, "unreadable_file", path, d, (uint64_t)st->st_size, NULL);
        return;
    }
    const char *why = NULL;
    uint64_t size = (uint64_t)st->st_size;
    if (size > t->o.capture_file_max)
        why = "capture_cap";
    else if (sn->captured + size > t->o.capture_total_max)
        why = "capture_budget";
    bool captured = false;
    int rc = tracer_content(t, fd, path, !why, &size, sha, &captured);
    close(fd);
    fs->size = size;
    if (rc == -EIO) {
        emit_state(sn, fs);
        snap_gap(sn, "unreadable_file", path, "read error while hashing", size, NULL);
        return;
    }
    if (rc == PTB_ENOMEM)
        why = "capture_nomem";
    fs->sha256.data = sha;
    fs->sha256.len = 32;
    fs->captured = captured;
    if (captured) {
        sn->captured += size;
        t->r->snapshot_captured += size;
    }
    emit_state(sn, fs);
    if (why) {
        char d[160];
        snprintf(d, sizeof d,
                 "content not stored (%s): file %llu bytes, per-file cap %llu, total cap %llu", why,
                 (unsigned long long)size, (unsigned long long)t->o.capture_file_max,
                 (unsigned long long)t->o.capture_total_max);
        snap_gap(sn, why, path, d, size, sha);
    }
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of the folder open at dirfd (path; plen bytes of path[] used), recursively. */
static void walk(snap *sn, int dirfd, char *path, size_t plen)
{
    DIR *d = fdopendir(dirfd);
    if (!d) {
        close(dirfd);
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (n == cap) {
            char **nn = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof *nn);
            if (!nn)
                break;
            names = nn;
        }
        if (!(names[n] = strdup(de->d_name)))
            break;
        n++;
    }
    if (n) /* names is NULL for an empty folder */
        qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n && !sn->t->store_err; i++) {
        const char *name = names[i];
        size_t nl = strlen(name);
        if (sn->cut || plen + 1 + nl >= TRACER_PATH_MAX) {
            if (!sn->cut) {
                path[plen] = 0;
                snap_gap(sn, "path_too_long", path, name, 0, NULL);
            }
            continue;
        }
        path[plen] = '/';
        memcpy(path + plen + 1, name, nl + 1);
        size_t l = plen + 1 + nl;
        if (!strcmp(path, sn->store))
            continue;
        if (sn->t->r->snapshot_entries >= sn->t->o.snapshot_entries_max) {
            char det[96];
            snprintf(det, sizeof det, "the snapshot stopped after %llu entries",
                     (unsigned long long)sn->t->r->snapshot_entries);
            snap_gap(sn, "snapshot_cap", path, det, 0, NULL);
            sn->cut = true;
            continue;
        }
        struct stat st;
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue; /* gone since readdir */
        Ptb__V1__FileState fs = PTB__V1__FILE_STATE__INIT;
        fs.path = path;
        fs.mode = st.st_mode & 07777;
        char target[TRACER_PATH_MAX];
        if (S_ISREG(st.st_mode)) {
            state_file(sn, dirfd, name, path, &st, &fs);
        } else if (S_ISDIR(st.st_mode)) {
            fs.kind = (char *)"dir";
            emit_state(sn, &fs);
            int sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                char det[128];
                snprintf(det, sizeof det, "cannot read the folder: %s", strerror(errno));
                snap_gap(sn, "unreadable_dir", path, det, 0, NULL);
            } else {
                walk(sn, sub, path, l);
            }
        } else if (S_ISLNK(st.st_mode)) {
            ssize_t tl = readlinkat(dirfd, name, target, sizeof target - 1);
            fs.kind = (char *)"symlink";
            target[tl > 0 ? tl : 0] = 0;
            fs.target = target;
            fs.size = (uint64_t)(tl > 0 ? tl : 0);
            emit_state(sn, &fs);
        } else {
            fs.kind = (char *)"other";
            emit_state(sn, &fs);
        }
        path[plen] = 0;
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
}

static bool under(const char *path, const char *root)
{
    size_t l = strlen(root);
    if (l == 1 && root[0] == '/')
        return true;
    return !strncmp(path, root, l) && (path[l] == 0 || path[l] == '/');
}

int tracer_snapshot(tracer *t)
{
    snap sn = {.t = t};
    const char *sd = store_dir(t->s);
    if (!sd || !realpath(sd, sn.store))
        sn.store[0] = 0;
    const char *const *roots = t->o.snapshot_roots ? t->o.snapshot_roots : t->o.capture_roots;
    size_t n = t->o.snapshot_roots ? t->o.n_snapshot_roots : t->o.n_capture_roots;
    char *path = malloc(TRACER_PATH_MAX);
    if (!path)
        return t->store_err = PTB_ENOMEM;
    for (size_t i = 0; i < n && !t->store_err; i++) {
        /* a root inside another one (or named twice) is walked with it */
        bool covered = false;
        for (size_t k = 0; k < n && !covered; k++)
            covered =
                k != i && under(roots[i], roots[k]) && (strcmp(roots[i], roots[k]) != 0 || k < i);
        struct stat st;
        if (lstat(roots[i], &st) != 0 || !S_ISDIR(st.st_mode))
            continue; /* replay lists a capture root with no state as unknown */
        snprintf(path, TRACER_PATH_MAX, "%s", roots[i]);
        Ptb__V1__FileState fs = PTB__V1__FILE_STATE__INIT;
        fs.path = path;
        fs.kind = (char *)"dir";
        fs.mode = st.st_mode & 07777;
        fs.root = true;
        emit_state(&sn, &fs);
        if (covered)
            continue;
        int fd = open(roots[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            char det[128];
            snprintf(det, sizeof det, "cannot read the folder: %s", strerror(errno));
            snap_gap(&sn, "unreadable_dir", path, det, 0, NULL);
            continue;
        }
        size_t l = strlen(path);
        if (l == 1) /* "/" */
            l = 0;
        walk(&sn, fd, path, l);
    }
    /* capture roots not walked: named, so that replay knows them (their first state unknown) */
    for (size_t i = 0; roots != t->o.capture_roots && i < t->o.n_capture_roots; i++) {
        const char *c = t->o.capture_roots[i];
        bool walked = false;
        for (size_t k = 0; k < n && !walked; k++)
            walked = under(c, roots[k]);
        struct stat st;
        if (walked || t->store_err || lstat(c, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        Ptb__V1__FileState fs = PTB__V1__FILE_STATE__INIT;
        fs.path = (char *)c;
        fs.kind = (char *)"dir";
        fs.mode = st.st_mode & 07777;
        fs.root = true;
        fs.unwalked = true;
        emit_state(&sn, &fs);
    }
    free(path);
    return t->store_err;
}
