/* The SQLite side of bench_store: the same events in one indexed table.
 *
 *   events(seq INTEGER PRIMARY KEY, ts, type, exec_id, tid, path, host, tool, kernel, body)
 *
 * body is the protobuf encoding of the event (the bytes ptb would pack, before interning) with
 * the string held in path/host/tool/kernel blanked, so nothing is stored twice. Indexes on type,
 * exec_id, ts, and partial indexes (WHERE x IS NOT NULL) on path, host, tool, kernel, since most
 * events have none of those: a fair, fast setup. tid has no index (the unindexed filter).
 * Writing: prepared INSERT, one transaction per 8192 rows (ptb's group commit), WAL,
 * synchronous=NORMAL (no fsync per commit; ptb's default fdatasyncs each commit), 256 MiB page
 * cache. The clock runs from sqlite3_open to sqlite3_close (which checkpoints the WAL). */
#include "bench.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SQ_BATCH 8192

static const char *const sq_indexes[] = {
    "CREATE INDEX ix_type ON events(type)",
    "CREATE INDEX ix_exec ON events(exec_id)",
    "CREATE INDEX ix_ts ON events(ts)",
    "CREATE INDEX ix_path ON events(path) WHERE path IS NOT NULL",
    "CREATE INDEX ix_host ON events(host) WHERE host IS NOT NULL",
    "CREATE INDEX ix_tool ON events(tool) WHERE tool IS NOT NULL",
    "CREATE INDEX ix_kernel ON events(kernel) WHERE kernel IS NOT NULL",
};

static int sq_exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "bench_store: sqlite: %s: %s\n", sql, err ? err : "?");
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

static int sq_open(const char *path, sqlite3 **db)
{
    if (sqlite3_open(path, db) != SQLITE_OK) {
        fprintf(stderr, "bench_store: sqlite: open %s: %s\n", path, sqlite3_errmsg(*db));
        return -1;
    }
    return sq_exec(*db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                        "PRAGMA cache_size=-262144; PRAGMA temp_store=MEMORY");
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

int bench_sqlite_fill(const bench_sqlite_opts *o)
{
    remove(o->path);
    bench_gen *g = bench_gen_new(o->seed, 0);
    if (!g)
        return -1;
    uint8_t *buf = NULL;
    size_t cap = 0;
    sqlite3 *db = NULL;
    sqlite3_stmt *ins = NULL;
    int rc = -1;
    double t0 = bench_now(), t_rows = 0, io0 = bench_io_write_bytes(), c0 = bench_cpu_seconds();
    if (sq_open(o->path, &db) ||
        sq_exec(db, "CREATE TABLE events(seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, type TEXT "
                    "NOT NULL, exec_id INTEGER, tid INTEGER, path TEXT, host TEXT, tool TEXT, "
                    "kernel TEXT, body BLOB NOT NULL)"))
        goto out;
    if (!o->late_index)
        for (size_t i = 0; i < sizeof sq_indexes / sizeof sq_indexes[0]; i++)
            if (sq_exec(db, sq_indexes[i]))
                goto out;
    if (sqlite3_prepare_v2(db, "INSERT INTO events VALUES(?,?,?,?,?,?,?,?,?,?)", -1, &ins, NULL) !=
        SQLITE_OK) {
        fprintf(stderr, "bench_store: sqlite: prepare: %s\n", sqlite3_errmsg(db));
        goto out;
    }
    for (uint64_t n = 0; n < o->events; n++) {
        if (n % SQ_BATCH == 0 && sq_exec(db, "BEGIN"))
            goto out;
        ptb_event *ev = (ptb_event *)bench_gen_next(g);
        bench_keys k;
        bench_event_keys(ev, &k);
        size_t len = bench_event_pack_body(ev, &buf, &cap);
        if (!len)
            goto out;
        sqlite3_bind_int64(ins, 1, (sqlite3_int64)(n + 1));
        sqlite3_bind_int64(ins, 2, ev->ts_ns);
        sqlite3_bind_text(ins, 3, k.type, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 4, (sqlite3_int64)k.exec_id);
        sqlite3_bind_int64(ins, 5, ev->tid);
        bind_text(ins, 6, k.path);
        bind_text(ins, 7, k.host);
        bind_text(ins, 8, k.tool);
        bind_text(ins, 9, k.kernel);
        sqlite3_bind_blob(ins, 10, buf, (int)len, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE) {
            fprintf(stderr, "bench_store: sqlite: insert: %s\n", sqlite3_errmsg(db));
            goto out;
        }
        sqlite3_reset(ins);
        if ((n + 1) % SQ_BATCH == 0 || n + 1 == o->events)
            if (sq_exec(db, "COMMIT"))
                goto out;
    }
    t_rows = bench_now() - t0;
    if (o->late_index)
        for (size_t i = 0; i < sizeof sq_indexes / sizeof sq_indexes[0]; i++)
            if (sq_exec(db, sq_indexes[i]))
                goto out;
    rc = 0;
out:
    sqlite3_finalize(ins);
    sqlite3_close(db);
    double t = bench_now() - t0;
    free(buf);
    bench_gen_free(g);
    if (rc == 0) {
        const char *b = o->late_index ? "sqlite-late-index" : "sqlite";
        bench_result_add("append", "seconds", b, t, "s");
        bench_result_add("append", "events/s", b, (double)o->events / t, "ev/s");
        bench_result_add("append", "cpu seconds", b, bench_cpu_seconds() - c0, "s");
        bench_result_add("append", "disk write bytes/event", b,
                         (bench_io_write_bytes() - io0) / (double)o->events, "B");
        if (o->late_index)
            bench_result_add("append", "rows-only seconds", b, t_rows, "s");
    }
    return rc;
}

/* ------------------------------------------------------------ queries */

/* Run sql (one ? parameter: text or int) and touch every row: the body is unpacked, as ptb
 * decodes every event it returns. Returns the number of rows, or -1. */
static int64_t sq_run(sqlite3 *db, const char *sql, const char *text, int64_t num, bool decode)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "bench_store: sqlite: %s: %s\n", sql, sqlite3_errmsg(db));
        return -1;
    }
    if (text && strstr(sql, "instr(")) /* blob needle: instr() then compares bytes */
        sqlite3_bind_blob(st, 1, text, (int)strlen(text), SQLITE_STATIC);
    else if (text)
        sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 1, num);
    int64_t rows = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (decode) {
            const void *b = sqlite3_column_blob(st, 0);
            int len = sqlite3_column_bytes(st, 0);
            ptb_event *ev = ptb__v1__event__unpack(NULL, (size_t)len, b);
            if (!ev) {
                fprintf(stderr, "bench_store: sqlite: a body does not unpack\n");
                sqlite3_finalize(st);
                return -1;
            }
            ptb__v1__event__free_unpacked(ev, NULL);
            rows++;
        } else {
            rows += sqlite3_column_int64(st, 0);
        }
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE) {
        fprintf(stderr, "bench_store: sqlite: %s: %s\n", sql, sqlite3_errmsg(db));
        return -1;
    }
    return rows;
}

static int sq_time(sqlite3 *db, const char *section, const char *what, const char *sql,
                   const char *text, int64_t num, bool decode, int runs, uint64_t events)
{
    double v[64];
    int64_t rows = 0;
    if (runs > 64)
        runs = 64;
    for (int i = -1; i < runs; i++) { /* one warm-up */
        double t0 = bench_now();
        rows = sq_run(db, sql, text, num, decode);
        if (rows < 0)
            return -1;
        if (i >= 0)
            v[i] = bench_now() - t0;
    }
    double med = bench_median(v, runs);
    bench_result_add(section, what, "sqlite", med * 1e3, "ms");
    bench_result_add(section, what, "sqlite-matches", (double)rows, "events");
    if (events)
        bench_result_add(section, what, "sqlite-rate", (double)events / med, "ev/s");
    return 0;
}

int bench_sqlite_query(const bench_sqlite_opts *o)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(o->path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sq_exec(db, "PRAGMA cache_size=-262144")) {
        fprintf(stderr, "bench_store: sqlite: open %s\n", o->path);
        sqlite3_close(db);
        return -1;
    }
    const bench_targets *tg = o->tg;
    int rc = sq_time(db, "selective", "path", "SELECT body FROM events WHERE path = ?", tg->path, 0,
                     true, o->runs, 0) ||
             sq_time(db, "selective", "exec_id", "SELECT body FROM events WHERE exec_id = ?", NULL,
                     (int64_t)tg->exec_id, true, o->runs, 0) ||
             sq_time(db, "selective", "host", "SELECT body FROM events WHERE host = ?", tg->host, 0,
                     true, o->runs, 0) ||
             sq_time(db, "scan", "tid", "SELECT count(*) FROM events WHERE tid = ?", NULL, tg->tid,
                     false, o->runs, o->events) ||
             sq_time(db, "scan", "contains", "SELECT count(*) FROM events WHERE instr(body, ?) > 0",
                     tg->needle, 0, false, o->runs, o->events);
    sqlite3_close(db);
    return rc ? -1 : 0;
}
