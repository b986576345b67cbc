/* Opening and closing a store: the directory, the LMDB environment, the named databases, the
 * writer's lock and reserve file, the meta keys the store keeps (schemas/store.md). */
#include "lmdb_check.h"
#include "store_write_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const store_db_names[STORE_DB_COUNT] = {
    "meta",    "events",  "blobs",   "strings", "strings_r", "batches",   "chain",
    "ix_type", "ix_exec", "ix_path", "ix_host", "ix_tool",   "ix_kernel",
};

const char *store_index_name(store_index ix)
{
    return ix < STORE_IX_COUNT ? store_db_names[STORE_DB_IX_FIRST + ix] + 3 : "?";
}

#define STORE_RESERVE_BYTES (8u << 20)

static int rc_of(int mdb_rc)
{
    return mdb_rc > 0 ? -mdb_rc : mdb_rc; /* LMDB returns errno values positive */
}

static int meta_get_u64(MDB_txn *txn, MDB_dbi dbi, const char *key, uint64_t *out)
{
    MDB_val k = {strlen(key), (void *)key}, v;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc)
        return rc == MDB_NOTFOUND ? PTB_ENOTFOUND : rc_of(rc);
    char buf[32];
    if (v.mv_size == 0 || v.mv_size >= sizeof buf)
        return PTB_ECORRUPT;
    memcpy(buf, v.mv_data, v.mv_size);
    buf[v.mv_size] = 0;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(buf, &end, 10);
    if (*end || errno || buf[0] < '0' || buf[0] > '9')
        return PTB_ECORRUPT;
    *out = x;
    return 0;
}

static bool meta_is(MDB_txn *txn, MDB_dbi dbi, const char *key, const char *want)
{
    MDB_val k = {strlen(key), (void *)key}, v;
    return mdb_get(txn, dbi, &k, &v) == 0 && v.mv_size == strlen(want) &&
           memcmp(v.mv_data, want, v.mv_size) == 0;
}

static int meta_put(MDB_txn *txn, MDB_dbi dbi, const char *key, const char *val)
{
    MDB_val k = {strlen(key), (void *)key}, v = {strlen(val), (void *)val};
    return rc_of(mdb_put(txn, dbi, &k, &v, 0));
}

/* liblmdb's assertions abort() on some damaged files; inside a guarded read, leave the read
 * with PTB_ECORRUPT instead (the guard's jump). Outside, liblmdb aborts as it always did. */
static void store_lmdb_assert(MDB_env *env, const char *msg)
{
    (void)env, (void)msg;
    if (store_guard_jmp)
        siglongjmp(*store_guard_jmp, 1);
}

/* True when a writer holds the store (writer.lock is flock'd). */
static bool store_writer_live(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/writer.lock", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool live = flock(fd, LOCK_SH | LOCK_NB) != 0;
    close(fd);
    return live;
}

/* The structural check of a read-only open, skipped when `checked` says the file passed it as
 * it is now (size, mtime). The note is a shortcut for readers only; verify never uses it. */
static int store_check_structure(store *s)
{
    char data[4096], note[4096], want[128], have[128] = "";
    snprintf(data, sizeof data, "%s/data.mdb", s->dir);
    snprintf(note, sizeof note, "%s/checked", s->dir);
    struct stat st;
    if (stat(data, &st) != 0)
        return ptb_errf(&s->err, -errno, "%s: %s", data, strerror(errno));
    snprintf(want, sizeof want, "ptb-lmdb-check-1 %lld %lld.%09ld\n", (long long)st.st_size,
             (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    int fd = open(note, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, have, sizeof have - 1);
        have[n > 0 ? n : 0] = 0;
        close(fd);
        if (strcmp(have, want) == 0)
            return 0;
    }
    lmdb_check_report rep;
    int rc = lmdb_check_file(data, &rep);
    if (rc == PTB_ECORRUPT)
        return ptb_errf(&s->err, rc, "%s: damaged LMDB file: %.400s", s->dir, rep.first);
    if (rc)
        return ptb_errf(&s->err, rc, "%s: %s", data, ptb_strerror(rc));
    fd = open(note, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) { /* best effort: a read-only store is checked each time */
        if (write(fd, want, strlen(want)) < 0)
            unlink(note);
        close(fd);
    }
    return 0;
}

__attribute__((noinline)) static int dbi_open_guarded(MDB_txn *txn, const char *name,
                                                      unsigned flags, MDB_dbi *dbi)
{
    int rc;
    STORE_GUARDED(rc, mdb_dbi_open(txn, name, flags, dbi));
    return rc;
}

int store_env_open(store *s, bool create)
{
    int rc = rc_of(mdb_env_create(&s->env));
    if (rc)
        return ptb_errf(&s->err, rc, "lmdb: %s", ptb_strerror(rc));
    mdb_env_set_maxdbs(s->env, STORE_DB_COUNT + 4);
    mdb_env_set_assert(s->env, store_lmdb_assert);
    mdb_env_set_maxreaders(s->env, 256);
    bool rdonly = s->flags & STORE_RDONLY;
    unsigned fl = MDB_NOTLS;
    if (rdonly) {
        fl |= MDB_RDONLY;
    } else {
        mdb_env_set_mapsize(s->env, s->opt.map_size_initial);
        fl |= s->opt.sync == STORE_SYNC_NONE   ? MDB_NOSYNC
              : s->opt.sync == STORE_SYNC_DATA ? MDB_NOMETASYNC
                                               : 0;
    }
    rc = rc_of(mdb_env_open(s->env, s->dir, fl, 0644));
    if (rc == -EACCES && rdonly) /* lock file not creatable: a read-only copy of a store */
        rc = rc_of(mdb_env_open(s->env, s->dir, fl | MDB_NOLOCK, 0644));
    if (rc == -EINVAL || rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH)
        return ptb_errf(&s->err, PTB_ECORRUPT, "%s: not a valid LMDB environment (%s)", s->dir,
                        ptb_strerror(rc));
    if (rc)
        return ptb_errf(&s->err, rc, "%s: %s", s->dir, ptb_strerror(rc));

    MDB_txn *txn;
    rc = rc_of(mdb_txn_begin(s->env, NULL, rdonly ? MDB_RDONLY : 0, &txn));
    if (rc)
        return ptb_errf(&s->err, rc, "%s: %s", s->dir, ptb_strerror(rc));
    for (int i = 0; i < STORE_DB_COUNT && !rc; i++) {
        unsigned df = create ? MDB_CREATE : 0;
        if (i == STORE_DB_STRINGS_R)
            df |= MDB_DUPSORT;
        int r = dbi_open_guarded(txn, store_db_names[i], df, &s->dbi[i]);
        rc = rc_of(r);
        if (rc == MDB_NOTFOUND)
            rc = ptb_errf(&s->err, PTB_ENOSTORE, "%s: no database '%s': not a ptb store", s->dir,
                          store_db_names[i]);
        else if (rc == MDB_INCOMPATIBLE || rc == PTB_ECORRUPT || rc == MDB_CORRUPTED)
            rc = ptb_errf(&s->err, PTB_ECORRUPT, "%s: database '%s' is corrupt", s->dir,
                          store_db_names[i]);
        else if (rc)
            rc = ptb_errf(&s->err, rc, "%s: database '%s': %s", s->dir, store_db_names[i],
                          ptb_strerror(rc));
    }
    MDB_dbi meta = s->dbi[STORE_DB_META];
    if (!rc && create) {
        MDB_val k = {10, "ptb.format"}, v;
        if (mdb_get(txn, meta, &k, &v) == MDB_NOTFOUND) {
            char buf[64];
            snprintf(buf, sizeof buf, "%lld", (long long)store_now_realtime_ns());
            if ((rc = meta_put(txn, meta, "ptb.format", STORE_FORMAT)) ||
                (rc = meta_put(txn, meta, "ptb.schema_version", PTB_STR(PTB_SCHEMA_VERSION))) ||
                (rc = meta_put(txn, meta, "ptb.created_ns", buf)) ||
                (rc = meta_put(txn, meta, "ptb.last_seq", "0")) ||
                (rc = meta_put(txn, meta, "ptb.batches", "0")) ||
                (rc = meta_put(txn, meta, "ptb.indexed_seq", "0")) ||
                (rc = meta_put(txn, meta, "ptb.strings", "0")))
                ptb_errf(&s->err, rc, "%s: %s", s->dir, ptb_strerror(rc));
        }
    }
    if (!rc && !meta_is(txn, meta, "ptb.format", STORE_FORMAT))
        rc = ptb_errf(&s->err, PTB_ENOSTORE, "%s: meta 'ptb.format' is not '%s'", s->dir,
                      STORE_FORMAT);
    uint64_t sv = 0;
    if (!rc && (meta_get_u64(txn, meta, "ptb.schema_version", &sv) || sv == 0))
        rc = ptb_errf(&s->err, PTB_ECORRUPT, "%s: bad meta 'ptb.schema_version'", s->dir);
    if (!rc && sv > PTB_SCHEMA_VERSION && !rdonly)
        rc = ptb_errf(&s->err, PTB_ESCHEMA,
                      "%s: written with schema %llu, this ptb has %d: refusing to append", s->dir,
                      (unsigned long long)sv, PTB_SCHEMA_VERSION);
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    rc = rc_of(mdb_txn_commit(txn)); /* also read-only: an abort would close the dbi handles */
    if (rc)
        return ptb_errf(&s->err, rc, "%s: %s", s->dir, ptb_strerror(rc));
    return 0;
}

/* ------------------------------------------------------------ writer set-up */

static int queue_open(store *s)
{
    store_queue *q = calloc(1, sizeof *q);
    if (!q)
        return PTB_ENOMEM;
    s->q = q;
    q->s = s;
    q->lock_fd = -1;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cond_writer, NULL);
    pthread_cond_init(&q->cond_space, NULL);
    pthread_cond_init(&q->cond_committed, NULL);
    pthread_cond_init(&q->cond_jobs, NULL);
    q->cap = s->opt.queue_bytes & ~(uint64_t)7;
    if (q->cap < (1u << 16))
        q->cap = 1u << 16;
    q->wake_bytes = q->cap / 16 < (256u << 10) ? q->cap / 16 : (256u << 10);
    q->buf = malloc(q->cap);
    if (!q->buf)
        return PTB_ENOMEM;
    memset(q->buf, 0, q->cap); /* fault the ring in now, not one page per append */
    return store_blobset_init(&q->blobs);
}

static void queue_free(store *s)
{
    store_queue *q = s->q;
    if (!q)
        return;
    if (q->strings.slots)
        store_intern_free(&q->strings);
    if (q->blobs.keys)
        store_blobset_free(&q->blobs);
    free(q->buf);
    if (q->lock_fd >= 0)
        close(q->lock_fd);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cond_writer);
    pthread_cond_destroy(&q->cond_space);
    pthread_cond_destroy(&q->cond_committed);
    pthread_cond_destroy(&q->cond_jobs);
    free(q);
    s->q = NULL;
}

/* Read where the last session stopped: last seq, chain head, strings, blob bytes. */
static int writer_resume(store *s, bool *crashed)
{
    store_queue *q = s->q;
    MDB_txn *txn;
    int rc = rc_of(mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn));
    if (rc)
        return rc;
    MDB_dbi meta = s->dbi[STORE_DB_META];
    uint64_t last = 0, strings = 0, batches = 0;
    rc = meta_get_u64(txn, meta, "ptb.last_seq", &last);
    if (!rc)
        rc = meta_get_u64(txn, meta, "ptb.strings", &strings);
    if (!rc)
        rc = meta_get_u64(txn, meta, "ptb.batches", &batches);
    if (!rc && strings >= UINT32_MAX)
        rc = PTB_ECORRUPT;
    uint64_t indexed = last;
    if (!rc) {
        int r = meta_get_u64(txn, meta, "ptb.indexed_seq", &indexed);
        if (r == PTB_ENOTFOUND)
            indexed = last;
        else if (r || indexed > last)
            rc = PTB_ECORRUPT;
    }
    q->indexed_seq = indexed;
    *crashed = meta_is(txn, meta, "ptb.writer", "open");
    if (!rc && batches) {
        uint8_t kb[8];
        store_put_u64(kb, batches);
        MDB_val k = {8, kb}, v;
        rc = mdb_get(txn, s->dbi[STORE_DB_CHAIN], &k, &v);
        if (rc || v.mv_size < STORE_CHAIN_FIXED)
            rc = PTB_ECORRUPT;
        else
            memcpy(q->chain_head, (uint8_t *)v.mv_data + 64, 32);
    }
    MDB_stat st;
    if (!rc && mdb_stat(txn, s->dbi[STORE_DB_BLOBS], &st) == 0 && st.ms_entries) {
        MDB_cursor *c;
        MDB_val k, v;
        rc = rc_of(mdb_cursor_open(txn, s->dbi[STORE_DB_BLOBS], &c));
        for (int r = rc ? 1 : mdb_cursor_get(c, &k, &v, MDB_FIRST); r == 0;
             r = mdb_cursor_get(c, &k, &v, MDB_NEXT))
            q->blob_zbytes += v.mv_size;
        if (!rc)
            mdb_cursor_close(c);
    }
    mdb_txn_abort(txn);
    if (rc)
        return ptb_errf(&s->err, rc, "%s: cannot resume: %s", s->dir, ptb_strerror(rc));
    q->next_seq = q->committed_seq = last;
    q->stats.batches = batches;
    return store_intern_init(&q->strings, s->env, s->dbi[STORE_DB_STRINGS], (uint32_t)strings);
}

static int writer_mark(store *s, const char *state)
{
    MDB_txn *txn;
    int rc = rc_of(mdb_txn_begin(s->env, NULL, 0, &txn));
    if (rc)
        return rc;
    rc = meta_put(txn, s->dbi[STORE_DB_META], "ptb.writer", state);
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    return rc_of(mdb_txn_commit(txn));
}

static int store_open_writer(store *s)
{
    int rc = queue_open(s);
    if (rc)
        return ptb_errf(&s->err, rc, "out of memory");
    char path[4096];
    snprintf(path, sizeof path, "%s/writer.lock", s->dir);
    s->q->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->q->lock_fd < 0)
        return ptb_errf(&s->err, -errno, "%s: %s", path, strerror(errno));
    if (flock(s->q->lock_fd, LOCK_EX | LOCK_NB) != 0)
        return ptb_errf(&s->err, PTB_ELOCKED, "%s: another process is writing this store", s->dir);
    rc = store_env_open(s, true);
    if (rc)
        return rc;
    bool crashed = false;
    if ((rc = writer_resume(s, &crashed)))
        return rc;
    if ((rc = writer_mark(s, "open")))
        return ptb_errf(&s->err, rc, "%s: %s", s->dir, ptb_strerror(rc));
    /* the reserve: freed on a full disk so the store can record the error and stop */
    snprintf(path, sizeof path, "%s/reserve", s->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
        if (posix_fallocate(fd, 0, STORE_RESERVE_BYTES) != 0)
            unlink(path);
        close(fd);
    }
    if ((rc = store_writer_start(s)))
        return ptb_errf(&s->err, rc, "cannot start the writer thread");
    if (crashed) {
        Ptb__V1__Gap g = PTB__V1__GAP__INIT;
        g.origin = (char *)"store";
        g.reason = (char *)"writer_crashed";
        g.count = 1;
        g.detail = (char *)"the previous writer stopped without closing the store; events it "
                           "had not committed are lost";
        ptb_event ev = PTB__V1__EVENT__INIT;
        ev.source = PTB__V1__SOURCE__SOURCE_STORE;
        ev.body_case = PTB__V1__EVENT__BODY_GAP;
        ev.gap = &g;
        store_append(s, &ev, 0, NULL);
    }
    return 0;
}

int store_open(const char *dir, const store_options *opt, unsigned flags, store **out)
{
    *out = NULL;
    if (!dir || !*dir)
        return PTB_EINVAL;
    store *s = calloc(1, sizeof *s);
    if (!s)
        return PTB_ENOMEM;
    *out = s;
    s->dir = strdup(dir);
    s->flags = flags;
    pthread_rwlock_init(&s->map_lock, NULL);
    if (opt && !(flags & STORE_RDONLY))
        s->opt = *opt;
    else
        store_options_default(&s->opt);
    if (!s->dir)
        return PTB_ENOMEM;
    if (s->opt.batch_events == 0 || s->opt.event_max == 0 || s->opt.queue_bytes < 4096)
        return ptb_errf(&s->err, PTB_EINVAL, "bad store options");
    int lmax = s->opt.blob_codec == STORE_CODEC_ZLIB   ? 9
               : s->opt.blob_codec == STORE_CODEC_ZSTD ? 19
                                                       : 0;
    if ((unsigned)s->opt.blob_codec > STORE_CODEC_ZSTD ||
        (lmax && (s->opt.blob_level < 1 || s->opt.blob_level > lmax)))
        return ptb_errf(&s->err, PTB_EINVAL, "bad store options: blob codec %d, level %d",
                        (int)s->opt.blob_codec, s->opt.blob_level);
    store_guard_install();

    struct stat st;
    char data[4096];
    snprintf(data, sizeof data, "%s/data.mdb", dir);
    bool exists = stat(data, &st) == 0;
    if (flags & STORE_RDONLY || !(flags & STORE_CREATE)) {
        if (stat(dir, &st) != 0)
            return ptb_errf(&s->err, -errno, "%s: %s", dir, strerror(errno));
        if (!S_ISDIR(st.st_mode))
            return ptb_errf(&s->err, PTB_ENOSTORE, "%s: not a directory", dir);
        if (!exists)
            return ptb_errf(&s->err, PTB_ENOSTORE, "%s: no data.mdb: not a ptb store", dir);
    } else {
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            return ptb_errf(&s->err, -errno, "%s: %s", dir, strerror(errno));
        if (exists && (flags & STORE_EXCL))
            return ptb_errf(&s->err, PTB_EEXIST, "%s: a store already exists there", dir);
    }
    if (flags & STORE_RDONLY) {
        if (!(flags & STORE_NOCHECK) && !store_writer_live(dir)) {
            int rc = store_check_structure(s);
            if (rc)
                return rc;
        }
        return store_env_open(s, false);
    }
    return store_open_writer(s);
}

int store_close(store *s)
{
    if (!s)
        return 0;
    int rc = 0;
    if (s->q) {
        bool was_running = s->q->thread_started;
        rc = store_writer_stop(s);
        if (was_running) {
            /* also after a writer error: the store on disk is consistent, say it was closed */
            int r = writer_mark(s, "closed");
            if (r && !rc)
                rc = r;
            r = rc_of(mdb_env_sync(s->env, 1));
            if (r && !rc)
                rc = r;
            if (rc)
                ptb_errf(&s->err, rc, "%s",
                         s->q->state_msg[0] ? s->q->state_msg : ptb_strerror(rc));
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/reserve", s->dir);
        unlink(path);
        queue_free(s);
    }
    if (s->env)
        mdb_env_close(s->env);
    pthread_rwlock_destroy(&s->map_lock);
    free(s->dir);
    free(s);
    return rc;
}

const char *store_errmsg(const store *s)
{
    return s ? s->err.msg : "no store";
}

const char *store_dir(const store *s)
{
    return s ? s->dir : NULL;
}
