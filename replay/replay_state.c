/* The capture roots' state after an event (replay.h): the snapshot's file.state events, then
 * every file.* event up to the seq, applied to a table of entries keyed by path. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter_ast.h"
#include "replay.h"

#define RP_TOMB ((rp_entry *)1)

/* SHA-256 of nothing: an empty file's content is known without a blob */
static const uint8_t sha_empty[32] = {
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};

int replay_note(rp_note **v, size_t *n, size_t *cap, const char *path, const char *fmt, ...)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        rp_note *nv = realloc(*v, nc * sizeof *nv);
        if (!nv)
            return PTB_ENOMEM;
        *v = nv, *cap = nc;
    }
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    rp_note *x = &(*v)[*n];
    x->path = strdup(path ? path : "");
    x->why = strdup(buf);
    if (!x->path || !x->why) {
        free(x->path);
        free(x->why);
        return PTB_ENOMEM;
    }
    (*n)++;
    return 0;
}

#define note(st, path, ...)                                                                        \
    replay_note(&(st)->notes, &(st)->nnotes, &(st)->notes_cap, path, __VA_ARGS__)

/* ------------------------------------------------------------------ the table */

static uint64_t hash_path(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static size_t find_slot(const replay_state *st, const char *path, bool *found)
{
    size_t mask = st->cap - 1, i = hash_path(path) & mask, tomb = SIZE_MAX;
    for (;; i = (i + 1) & mask) {
        rp_entry *e = st->slot[i];
        if (!e) {
            *found = false;
            return tomb != SIZE_MAX ? tomb : i;
        }
        if (e == RP_TOMB) {
            if (tomb == SIZE_MAX)
                tomb = i;
        } else if (!strcmp(e->path, path)) {
            *found = true;
            return i;
        }
    }
}

rp_entry *replay_state_get(const replay_state *st, const char *path)
{
    bool found;
    size_t i = find_slot(st, path, &found);
    return found ? st->slot[i] : NULL;
}

static int grow(replay_state *st)
{
    size_t nc = st->cap ? st->cap * 2 : 1024;
    while (st->n * 2 >= nc)
        nc *= 2;
    rp_entry **old = st->slot;
    size_t oc = st->cap;
    if (!(st->slot = calloc(nc, sizeof *st->slot))) {
        st->slot = old;
        return PTB_ENOMEM;
    }
    st->cap = nc;
    st->used = st->n;
    for (size_t i = 0; i < oc; i++)
        if (old[i] && old[i] != RP_TOMB) {
            bool found;
            st->slot[find_slot(st, old[i]->path, &found)] = old[i];
        }
    free(old);
    return 0;
}

static void node_unref(rp_node *n)
{
    if (n && --n->refs == 0)
        free(n);
}

static void entry_free(rp_entry *e)
{
    if (!e)
        return;
    node_unref(e->node);
    free(e->path);
    free(e->target);
    free(e);
}

/* Put e (owned) in the table, replacing what is at its path. */
static int put(replay_state *st, rp_entry *e)
{
    int rc;
    if ((st->used + 1) * 2 > st->cap && (rc = grow(st))) {
        entry_free(e);
        return rc;
    }
    bool found;
    size_t i = find_slot(st, e->path, &found);
    if (found)
        entry_free(st->slot[i]);
    else {
        if (!st->slot[i])
            st->used++;
        st->n++;
    }
    st->slot[i] = e;
    return 0;
}

static void del(replay_state *st, const char *path)
{
    bool found;
    size_t i = find_slot(st, path, &found);
    if (found) {
        entry_free(st->slot[i]);
        st->slot[i] = RP_TOMB;
        st->n--;
    }
}

static rp_entry *entry_new(const char *path, rp_kind kind, uint32_t mode, uint64_t seq)
{
    rp_entry *e = calloc(1, sizeof *e);
    if (!e || !(e->path = strdup(path))) {
        free(e);
        return NULL;
    }
    e->kind = kind;
    e->mode = mode & 07777;
    e->mode_known = true;
    e->seq = seq;
    return e;
}

static rp_node *node_new(rp_content c, const uint8_t *sha, uint64_t size)
{
    rp_node *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->refs = 1;
    n->content = c;
    if (sha)
        memcpy(n->sha, sha, 32);
    n->blob_size = n->size = size;
    return n;
}

/* ------------------------------------------------------------------ paths */

static bool under(const char *path, const char *dir)
{
    size_t l = strlen(dir);
    if (l == 1 && dir[0] == '/')
        return path[0] == '/';
    return !strncmp(path, dir, l) && (path[l] == 0 || path[l] == '/');
}

const rp_root *replay_state_root_of(const replay_state *st, const char *path)
{
    const rp_root *best = NULL;
    for (size_t i = 0; i < st->nroots; i++)
        if (under(path, st->roots[i].path) &&
            (!best || strlen(st->roots[i].path) > strlen(best->path)))
            best = &st->roots[i];
    return best;
}

/* The folders above path up to its root exist: implied ones are made (mode 0755). 1 (and a
 * note) when one of them is a symbolic link: the entry is left out. */
static int parents(replay_state *st, const char *path, uint64_t seq)
{
    const rp_root *r = replay_state_root_of(st, path);
    if (!r)
        return 0;
    size_t rl = strlen(r->path);
    if (strlen(path) <= rl) /* the root itself: nothing above it to make */
        return 0;
    char *p = strdup(path);
    if (!p)
        return PTB_ENOMEM;
    int rc = 0;
    for (char *s = p + (rl == 1 ? 1 : rl + 1); !rc && (s = strchr(s, '/')); s++) {
        *s = 0;
        rp_entry *e = replay_state_get(st, p);
        if (e && e->kind == RP_SYMLINK) { /* the events disagree (a crafted store): left out */
            *s = '/';
            rc =
                note(st, path, "under %.*s, a symbolic link: the store's events disagree; left out",
                     (int)(s - p), p);
            free(p);
            return rc ? rc : 1;
        }
        if (!e || e->kind != RP_DIR) {
            rp_entry *d = entry_new(p, RP_DIR, 0755, seq);
            if (!d)
                rc = PTB_ENOMEM;
            else {
                d->implied = true;
                d->mode_known = false;
                rc = put(st, d);
            }
        }
        *s = '/';
    }
    free(p);
    return rc;
}

/* Every entry whose path is p or under it, removed (what unlinking or replacing p does). */
static void del_tree(replay_state *st, const char *p)
{
    del(st, p);
    size_t l = strlen(p);
    for (size_t i = 0; i < st->cap; i++) {
        rp_entry *e = st->slot[i];
        if (e && e != RP_TOMB && !strncmp(e->path, p, l) && e->path[l] == '/') {
            entry_free(e);
            st->slot[i] = RP_TOMB;
            st->n--;
        }
    }
}

/* Move the entries at from and under it to to (rename). */
static int move_tree(replay_state *st, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to);
    rp_entry **moved = NULL;
    size_t nm = 0, cap = 0;
    for (size_t i = 0; i < st->cap; i++) {
        rp_entry *e = st->slot[i];
        if (!e || e == RP_TOMB || strncmp(e->path, from, fl) || (e->path[fl] && e->path[fl] != '/'))
            continue;
        if (nm == cap) {
            rp_entry **nv = realloc(moved, (cap = cap ? cap * 2 : 16) * sizeof *nv);
            if (!nv) {
                free(moved);
                return PTB_ENOMEM;
            }
            moved = nv;
        }
        moved[nm++] = e;
        st->slot[i] = RP_TOMB;
        st->n--;
    }
    int rc = 0;
    for (size_t k = 0; k < nm; k++) {
        rp_entry *e = moved[k];
        char *np = malloc(tl + strlen(e->path + fl) + 1);
        if (!np) {
            entry_free(e);
            rc = PTB_ENOMEM;
            continue;
        }
        memcpy(np, to, tl);
        strcpy(np + tl, e->path + fl);
        free(e->path);
        e->path = np;
        if (!rc)
            rc = put(st, e);
        else
            entry_free(e);
    }
    free(moved);
    return rc;
}

#define RP_PATH 8192

size_t replay_path_normalise(const char *in, char *out, size_t cap)
{
    size_t ol = 0;
    for (const char *s = in; *s;) {
        const char *end = strchr(s, '/');
        size_t cl = end ? (size_t)(end - s) : strlen(s);
        if (cl == 0 || (cl == 1 && s[0] == '.')) {
        } else if (cl == 2 && s[0] == '.' && s[1] == '.') {
            while (ol > 0 && out[--ol] != '/')
                ;
        } else if (ol + cl + 2 < cap) {
            out[ol++] = '/';
            memcpy(out + ol, s, cl);
            ol += cl;
        }
        s += cl + (end ? 1 : 0);
    }
    if (!ol && cap > 1)
        out[ol++] = '/';
    out[ol] = 0;
    return ol;
}

/* Where link entry e points, plus rest ("" or "/more"), as a normalised absolute path. */
static void link_target(const rp_entry *e, const char *rest, char out[RP_PATH])
{
    char buf[2 * RP_PATH];
    const char *t = e->target;
    if (t[0] == '/')
        snprintf(buf, sizeof buf, "%s%s", t, rest);
    else {
        const char *slash = strrchr(e->path, '/');
        snprintf(buf, sizeof buf, "%.*s/%s%s", (int)(slash - e->path), e->path, t, rest);
    }
    replay_path_normalise(buf, out, RP_PATH);
}

/* path with the symbolic links of its folders followed (the recorder names a path as it was
 * given: `mkdir link/x` makes x where link points), into out. The last part is not followed. */
static const char *canon(const replay_state *st, const char *path, char out[RP_PATH])
{
    snprintf(out, RP_PATH, "%s", path);
    for (int hops = 0; hops < 40; hops++) {
        bool moved = false;
        for (char *q = out + 1; (q = strchr(q, '/')); q++) {
            *q = 0;
            rp_entry *e = replay_state_get(st, out);
            *q = '/';
            if (e && e->kind == RP_SYMLINK) {
                char rest[RP_PATH];
                snprintf(rest, sizeof rest, "%s", q);
                link_target(e, rest, out);
                moved = true;
                break;
            }
        }
        if (!moved)
            break;
    }
    return out;
}

/* The entry a chmod or write reaches: symbolic links followed (relative to their folder). */
static rp_entry *follow(replay_state *st, const char *path)
{
    char buf[RP_PATH];
    rp_entry *e = replay_state_get(st, canon(st, path, buf));
    for (int hops = 0; e && e->kind == RP_SYMLINK && hops < 40; hops++) {
        link_target(e, "", buf);
        e = replay_state_get(st, canon(st, buf, buf));
    }
    return e && e->kind != RP_SYMLINK ? e : NULL;
}

/* ------------------------------------------------------------------ events */

static int on_state(replay_state *st, const Ptb__V1__FileState *fs, uint64_t seq)
{
    if (fs->root) {
        /* a (new) snapshot of this root: what it says replaces what was known */
        rp_root *r = NULL;
        for (size_t i = 0; i < st->nroots; i++)
            if (!strcmp(st->roots[i].path, fs->path))
                r = &st->roots[i];
        if (!r) {
            rp_root *nr = realloc(st->roots, (st->nroots + 1) * sizeof *nr);
            if (!nr)
                return PTB_ENOMEM;
            st->roots = nr;
            r = &st->roots[st->nroots];
            memset(r, 0, sizeof *r);
            if (!(r->path = strdup(fs->path)))
                return PTB_ENOMEM;
            st->nroots++;
        } else {
            del_tree(st, fs->path);
        }
        r->snapshot = !fs->unwalked;
        r->cut = false;
        if (fs->unwalked)
            return 0; /* only a name: what is under it comes with the events */
    }
    if (!replay_state_root_of(st, fs->path))
        return 0;
    rp_kind k = !strcmp(fs->kind, "file")      ? RP_FILE
                : !strcmp(fs->kind, "dir")     ? RP_DIR
                : !strcmp(fs->kind, "symlink") ? RP_SYMLINK
                                               : RP_OTHER;
    rp_entry *e = entry_new(fs->path, k, fs->mode, seq);
    if (!e)
        return PTB_ENOMEM;
    if (k == RP_SYMLINK && !(e->target = strdup(fs->target ? fs->target : ""))) {
        entry_free(e);
        return PTB_ENOMEM;
    }
    if (k == RP_FILE) {
        bool hashed = fs->sha256.len == 32;
        e->node = node_new(!hashed        ? RP_UNKNOWN
                           : fs->captured ? RP_KNOWN
                                          : RP_HASHED,
                           hashed ? fs->sha256.data : NULL, fs->size);
        if (!e->node) {
            entry_free(e);
            return PTB_ENOMEM;
        }
    }
    int rc = parents(st, fs->path, seq);
    if (rc)
        entry_free(e);
    return rc ? (rc > 0 ? 0 : rc) : put(st, e);
}

/* A file's content set at path: in place when a file is there (its hard links see it too). */
static int set_content(replay_state *st, const char *path, rp_content c, const uint8_t *sha,
                       uint64_t size, uint32_t mode, bool mode_known, uint64_t seq)
{
    rp_entry *e = follow(st, path);
    if (e && e->kind == RP_FILE) {
        e->node->content = c;
        if (sha)
            memcpy(e->node->sha, sha, 32);
        e->node->blob_size = e->node->size = size;
        if (mode_known)
            e->mode = mode, e->mode_known = true;
        e->seq = seq;
        e->writing = false;
        return 0;
    }
    if (e) /* a folder where a file was written: the events disagree; the write wins */
        del_tree(st, e->path);
    const char *p = path;
    rp_entry *l = replay_state_get(st, path);
    if (l && l->kind == RP_SYMLINK) /* a dangling link: the file is made where it points */
        return 0;
    if (!replay_state_root_of(st, p))
        return 0;
    rp_entry *n = entry_new(p, RP_FILE, mode, seq);
    if (!n || !(n->node = node_new(c, sha, size))) {
        entry_free(n);
        return PTB_ENOMEM;
    }
    n->mode_known = mode_known;
    int rc = parents(st, p, seq);
    if (rc)
        entry_free(n);
    return rc ? (rc > 0 ? 0 : rc) : put(st, n);
}

static int on_event(replay_state *st, const ptb_event *ev)
{
    uint64_t seq = ev->seq;
    switch (ev->body_case) {
    case PTB__V1__EVENT__BODY_FILE_STATE: return on_state(st, ev->file_state, seq);
    case PTB__V1__EVENT__BODY_FILE_WRITE: {
        Ptb__V1__FileWrite wc = *ev->file_write;
        char b1[RP_PATH];
        wc.path = (char *)canon(st, wc.path, b1);
        const Ptb__V1__FileWrite *w = &wc;
        if (!replay_state_root_of(st, w->path))
            return 0;
        bool hashed = w->sha256.len == 32;
        return set_content(st, w->path,
                           !hashed       ? RP_UNKNOWN
                           : w->captured ? RP_KNOWN
                                         : RP_HASHED,
                           hashed ? w->sha256.data : NULL, w->size, w->mode, true, seq);
    }
    case PTB__V1__EVENT__BODY_FILE_OPEN: {
        const Ptb__V1__FileOpen *o = ev->file_open;
        bool write = (o->flags & O_ACCMODE) != O_RDONLY || (o->flags & (O_CREAT | O_TRUNC));
        if (o->result < 0 || !write || !replay_state_root_of(st, o->path))
            return 0;
        rp_entry *e = follow(st, o->path);
        if (e && e->kind == RP_FILE) {
            if (o->flags & O_TRUNC) {
                e->node->content = RP_KNOWN;
                memcpy(e->node->sha, sha_empty, 32);
                e->node->blob_size = e->node->size = 0;
                e->seq = seq;
            }
            e->writing = true;
            return 0;
        }
        if (!(o->flags & O_CREAT) || e)
            return 0;
        /* created here; its mode comes with the file.write at close */
        int rc = set_content(st, o->path, RP_KNOWN, sha_empty, 0, o->mode & 0777, false, seq);
        if (!rc && (e = replay_state_get(st, o->path)))
            e->writing = true;
        return rc;
    }
    case PTB__V1__EVENT__BODY_FILE_TRUNCATE: {
        const Ptb__V1__FileTruncate *tr = ev->file_truncate;
        rp_entry *e = tr->result == 0 ? follow(st, tr->path) : NULL;
        if (e && e->kind == RP_FILE) {
            e->node->size = tr->length;
            e->seq = seq;
        }
        return 0;
    }
    case PTB__V1__EVENT__BODY_FILE_CHMOD: {
        const Ptb__V1__FileChmod *c = ev->file_chmod;
        rp_entry *e = c->result == 0 ? follow(st, c->path) : NULL;
        if (e) {
            e->mode = c->mode & 07777;
            e->mode_known = true;
            e->seq = seq;
        }
        return 0;
    }
    case PTB__V1__EVENT__BODY_FILE_MKDIR: {
        Ptb__V1__FileMkdir mc = *ev->file_mkdir;
        char b1[RP_PATH];
        mc.path = (char *)canon(st, mc.path, b1);
        const Ptb__V1__FileMkdir *m = &mc;
        if (m->result != 0 || !replay_state_root_of(st, m->path))
            return 0;
        rp_entry *d = entry_new(m->path, RP_DIR, m->mode, seq);
        if (!d)
            return PTB_ENOMEM;
        int rc = parents(st, m->path, seq);
        if (rc)
            entry_free(d);
        return rc ? (rc > 0 ? 0 : rc) : put(st, d);
    }
    case PTB__V1__EVENT__BODY_FILE_UNLINK: {
        char b1[RP_PATH];
        if (ev->file_unlink->result == 0)
            del_tree(st, canon(st, ev->file_unlink->path, b1));
        return 0;
    }
    case PTB__V1__EVENT__BODY_FILE_RENAME: {
        Ptb__V1__FileRename rc0 = *ev->file_rename;
        char b1[RP_PATH], b2[RP_PATH];
        rc0.path = (char *)canon(st, rc0.path, b1);
        rc0.new_path = (char *)canon(st, rc0.new_path, b2);
        const Ptb__V1__FileRename *r = &rc0;
        if (r->result != 0 || !strcmp(r->path, r->new_path))
            return 0;
        bool from_in = replay_state_root_of(st, r->path) != NULL;
        bool to_in = replay_state_root_of(st, r->new_path) != NULL;
        int rc = 0;
        if (r->exchange) {
            char tmp[64];
            snprintf(tmp, sizeof tmp, "\x01replay-exchange-%llu", (unsigned long long)seq);
            if (!(rc = move_tree(st, r->path, tmp)) && !(rc = move_tree(st, r->new_path, r->path)))
                rc = move_tree(st, tmp, r->new_path);
        } else {
            del_tree(st, r->new_path);
            if (from_in && to_in) {
                rc = move_tree(st, r->path, r->new_path);
            } else if (from_in) {
                del_tree(st, r->path); /* moved out of the roots */
            } else if (to_in) {        /* moved in from outside: its content was not recorded */
                rp_entry *e = entry_new(r->new_path, RP_FILE, 0644, seq);
                if (!e || !(e->node = node_new(RP_UNKNOWN, NULL, 0))) {
                    entry_free(e);
                    return PTB_ENOMEM;
                }
                e->mode_known = false;
                if ((rc = note(st, r->new_path,
                               "moved in from %s, outside the capture roots: "
                               "content not recorded",
                               r->path)))
                    return rc;
                rc = put(st, e);
            }
        }
        rp_entry *e = !rc ? replay_state_get(st, r->new_path) : NULL;
        if (e)
            e->seq = seq;
        if (!rc && to_in)
            rc = parents(st, r->new_path, seq);
        return rc > 0 ? 0 : rc;
    }
    case PTB__V1__EVENT__BODY_FILE_LINK: {
        Ptb__V1__FileLink lc = *ev->file_link;
        char b1[RP_PATH], b2[RP_PATH];
        lc.path = (char *)canon(st, lc.path, b1);
        if (!lc.symbolic)
            lc.target = (char *)canon(st, lc.target, b2);
        const Ptb__V1__FileLink *l = &lc;
        if (l->result != 0 || !replay_state_root_of(st, l->path))
            return 0;
        rp_entry *e;
        if (l->symbolic) {
            if (!(e = entry_new(l->path, RP_SYMLINK, 0777, seq)) ||
                !(e->target = strdup(l->target))) {
                entry_free(e);
                return PTB_ENOMEM;
            }
        } else {
            rp_entry *src = replay_state_get(st, l->target);
            if (!(e = entry_new(l->path, RP_FILE, src ? src->mode : 0644, seq)))
                return PTB_ENOMEM;
            if (src && src->kind == RP_FILE) {
                e->node = src->node;
                e->node->refs++;
                e->mode_known = src->mode_known;
            } else if (!(e->node = node_new(RP_UNKNOWN, NULL, 0))) {
                entry_free(e);
                return PTB_ENOMEM;
            } else {
                e->mode_known = false;
                int rc = note(st, l->path, "a hard link to %s, whose content was not recorded",
                              l->target);
                if (rc) {
                    entry_free(e);
                    return rc;
                }
            }
        }
        int rc = parents(st, l->path, seq);
        if (rc)
            entry_free(e);
        return rc ? (rc > 0 ? 0 : rc) : put(st, e);
    }
    case PTB__V1__EVENT__BODY_GAP: {
        const Ptb__V1__Gap *g = ev->gap;
        if (!g->path || !g->path[0] || !replay_state_root_of(st, g->path))
            return 0;
        bool snap = !strcmp(g->origin, "snapshot");
        if (snap && (!strcmp(g->reason, "snapshot_cap") || !strcmp(g->reason, "unreadable_dir") ||
                     !strcmp(g->reason, "path_too_long"))) {
            rp_root *r = (rp_root *)replay_state_root_of(st, g->path);
            r->cut = true;
            return note(st, g->path, "the snapshot did not walk it: %s", g->detail);
        }
        if (!strcmp(g->reason, "unreadable_file")) {
            rp_entry *e = replay_state_get(st, g->path);
            if (e && e->kind == RP_FILE) {
                e->node->content = RP_UNKNOWN;
                e->seq = seq;
            } else if (!e) {
                int rc = set_content(st, g->path, RP_UNKNOWN, NULL, g->bytes, 0644, false, seq);
                if (rc)
                    return rc;
            }
        }
        return 0;
    }
    default: return 0;
    }
}

/* ------------------------------------------------------------------ building */

static const uint32_t file_types[] = {
    PTB__V1__EVENT__BODY_FILE_STATE,  PTB__V1__EVENT__BODY_FILE_WRITE,
    PTB__V1__EVENT__BODY_FILE_OPEN,   PTB__V1__EVENT__BODY_FILE_RENAME,
    PTB__V1__EVENT__BODY_FILE_UNLINK, PTB__V1__EVENT__BODY_FILE_MKDIR,
    PTB__V1__EVENT__BODY_FILE_LINK,   PTB__V1__EVENT__BODY_FILE_TRUNCATE,
    PTB__V1__EVENT__BODY_FILE_CHMOD,  PTB__V1__EVENT__BODY_GAP,
};
#define NTYPES (sizeof file_types / sizeof file_types[0])

int replay_state_build(store_txn *t, uint64_t at, const char *const *extra_roots, size_t nextra,
                       replay_state **out, ptb_errbuf *eb)
{
    *out = NULL;
    uint64_t last = store_txn_last_seq(t);
    if (at == 0 || at > last)
        return ptb_errf(eb, PTB_EINVAL, "seq %llu is outside the store (events 1..%llu)",
                        (unsigned long long)at, (unsigned long long)last);
    replay_state *st = calloc(1, sizeof *st);
    if (!st)
        return PTB_ENOMEM;
    st->at = at;
    st->last = last;
    int rc = grow(st);
    for (size_t i = 0; !rc && i < nextra; i++) {
        rp_root *nr = realloc(st->roots, (st->nroots + 1) * sizeof *nr);
        if (!nr) {
            rc = PTB_ENOMEM;
            break;
        }
        st->roots = nr;
        memset(&nr[st->nroots], 0, sizeof *nr);
        if (!(nr[st->nroots].path = strdup(extra_roots[i])))
            rc = PTB_ENOMEM;
        else
            st->nroots++;
    }
    /* one cursor per event type, merged by seq */
    store_cursor *cur[NTYPES] = {0};
    const ptb_event *head[NTYPES] = {0};
    for (size_t k = 0; !rc && k < NTYPES; k++) {
        store_range r = {.seq_from = 1,
                         .seq_to = at,
                         .by_index = true,
                         .index = STORE_IX_TYPE,
                         .key = store_type_key(file_types[k])};
        if ((rc = store_cursor_open(t, &r, &cur[k])))
            break;
        int n = store_cursor_next(cur[k], &head[k]);
        if (n == PTB_ENOTFOUND)
            head[k] = NULL;
        else if (n)
            rc = n;
    }
    while (!rc) {
        size_t best = NTYPES;
        for (size_t k = 0; k < NTYPES; k++)
            if (head[k] && (best == NTYPES || head[k]->seq < head[best]->seq))
                best = k;
        if (best == NTYPES)
            break;
        if ((rc = on_event(st, head[best])))
            break;
        st->applied++;
        int n = store_cursor_next(cur[best], &head[best]);
        if (n == PTB_ENOTFOUND)
            head[best] = NULL;
        else if (n)
            rc = n;
    }
    for (size_t k = 0; k < NTYPES; k++)
        store_cursor_close(cur[k]);
    const ptb_event *ev;
    if (!rc && !(rc = store_event_get(t, at, &ev)))
        st->at_ts = ev->ts_ns;
    for (size_t i = 0; !rc && i < st->nroots; i++)
        if (!st->roots[i].snapshot)
            rc = note(st, st->roots[i].path,
                      "%s: its first state was not recorded (no snapshot): only what the run "
                      "wrote under it is rebuilt",
                      "root");
    if (!rc && st->nroots == 0)
        rc = ptb_errf(eb, PTB_EINVAL,
                      "the store has no snapshot of a capture root before seq %llu (recorded "
                      "with --no-snapshot or by an older ptb): name a folder with --root to "
                      "rebuild what the run wrote under it",
                      (unsigned long long)at);
    if (rc) {
        if (!eb->msg[0])
            ptb_errf(eb, rc, "reading the store: %s", ptb_strerror(rc));
        replay_state_free(st);
        return rc;
    }
    *out = st;
    return 0;
}

void replay_state_free(replay_state *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->cap; i++)
        if (st->slot[i] && st->slot[i] != RP_TOMB)
            entry_free(st->slot[i]);
    free(st->slot);
    for (size_t i = 0; i < st->nroots; i++)
        free(st->roots[i].path);
    free(st->roots);
    for (size_t i = 0; i < st->nnotes; i++) {
        free(st->notes[i].path);
        free(st->notes[i].why);
    }
    free(st->notes);
    free(st);
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp((*(rp_entry *const *)a)->path, (*(rp_entry *const *)b)->path);
}

int replay_state_sorted(const replay_state *st, rp_entry ***out, size_t *n)
{
    rp_entry **v = malloc((st->n ? st->n : 1) * sizeof *v);
    if (!v)
        return PTB_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < st->cap; i++)
        if (st->slot[i] && st->slot[i] != RP_TOMB)
            v[k++] = st->slot[i];
    qsort(v, k, sizeof *v, cmp_entry);
    *out = v;
    *n = k;
    return 0;
}

int replay_parse_at(store_txn *t, const char *arg, uint64_t *seq, ptb_errbuf *eb)
{
    uint64_t last = store_txn_last_seq(t);
    if (last == 0)
        return ptb_errf(eb, PTB_EINVAL, "the store has no events");
    if (!strcmp(arg, "end") || !strcmp(arg, "last")) {
        *seq = last;
        return 0;
    }
    size_t len = strlen(arg), d = strspn(arg, "0123456789");
    if (len && d == len) {
        errno = 0;
        unsigned long long v = strtoull(arg, NULL, 10);
        if (errno || v == 0 || v > last)
            return ptb_errf(eb, PTB_EINVAL, "seq %s is outside the store (events 1..%llu)", arg,
                            (unsigned long long)last);
        *seq = v;
        return 0;
    }
    int64_t ns;
    if (query_time_parse(arg, len, &ns))
        return ptb_errf(eb, PTB_EINVAL,
                        "'%s' is neither a seq nor a time (2026-11-27T17:10:43Z, or with "
                        "fractions of a second)",
                        arg);
    /* the last event at or before ns: events are appended in time order, up to the jitter of
     * their sources, so a binary search on ts_ns */
    const ptb_event *ev;
    int rc = store_event_get(t, 1, &ev);
    if (rc)
        return ptb_errf(eb, rc, "reading seq 1: %s", ptb_strerror(rc));
    if (ev->ts_ns > ns)
        return ptb_errf(eb, PTB_EINVAL, "%s is before the first event", arg);
    uint64_t lo = 1, hi = last;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo + 1) / 2;
        if ((rc = store_event_get(t, mid, &ev)))
            return ptb_errf(eb, rc, "reading seq %llu: %s", (unsigned long long)mid,
                            ptb_strerror(rc));
        if (ev->ts_ns <= ns)
            lo = mid;
        else
            hi = mid - 1;
    }
    *seq = lo;
    return 0;
}
