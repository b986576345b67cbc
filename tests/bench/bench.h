/* bench_store: the store benchmark (docs/BENCHMARKS.md), shared declarations.
 *
 * bench_gen.c    the synthetic event generator (deterministic for a seed)
 * bench_sqlite.c the same events in an indexed SQLite table
 * bench_jsonl.c  the same events as JSONL, queried with grep
 * bench_store.c  main: the ptb store, the queries, the report */
#ifndef PTB_BENCH_H
#define PTB_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event_type.h"

/* ------------------------------------------------------------------ generator */

typedef struct bench_gen bench_gen;

/* A generator of one event stream. Every generator made with the same seed and stream yields
 * the same events; a different stream (the second producer) yields a different sequence over
 * the same vocabularies. Returns NULL when out of memory. Free with bench_gen_free(). */
bench_gen *bench_gen_new(uint64_t seed, unsigned stream);
void bench_gen_free(bench_gen *g);

/* The next event. Borrowed from g, valid until the next call on g. */
const ptb_event *bench_gen_next(bench_gen *g);

/* The indexed columns of an event, as the SQLite table holds them (NULL / 0 when absent).
 * Borrowed from ev. */
typedef struct bench_keys {
    const char *type; /* dotted type name */
    uint64_t exec_id;
    const char *path, *host, *tool, *kernel;
} bench_keys;
void bench_event_keys(const ptb_event *ev, bench_keys *k);

/* Blank the string fields that bench_event_keys() returns (so a table that holds them in their
 * own columns does not hold them twice), pack the event into buf (grown as needed, *cap its
 * size) and restore the fields. Returns the packed length, 0 when out of memory. */
size_t bench_event_pack_body(ptb_event *ev, uint8_t **buf, size_t *cap);

/* The query targets: a mid-frequency file path, a mid-frequency process, a mid-frequency host,
 * a thread id, and a needle that only a few tool inputs hold. Static storage. */
typedef struct bench_targets {
    const char *path;
    uint64_t exec_id;
    const char *host;
    uint32_t tid;
    const char *needle;
} bench_targets;
void bench_gen_targets(uint64_t seed, bench_targets *t);

/* ------------------------------------------------------------------ timing and results */

double bench_now(void); /* CLOCK_MONOTONIC seconds */
double bench_median(double *v, int n);
double bench_cpu_seconds(void);    /* user + system CPU of the process */
double bench_io_write_bytes(void); /* /proc/self/io write_bytes, -1 if unknown */

/* One measured number. */
void bench_result_add(const char *section, const char *what, const char *backend, double value,
                      const char *unit);
/* The value recorded under (section, what, backend), or -1. */
double bench_result_get(const char *section, const char *what, const char *backend);

/* ------------------------------------------------------------------ SQLite */

typedef struct bench_sqlite_opts {
    const char *path; /* database file */
    uint64_t events;
    uint64_t seed;
    bool late_index; /* create the indexes after the inserts */
    int runs;
    const bench_targets *tg;
} bench_sqlite_opts;

/* Fill, then query (results through bench_result_add). Returns 0 or -1 (message on stderr). */
int bench_sqlite_fill(const bench_sqlite_opts *o);
int bench_sqlite_query(const bench_sqlite_opts *o);

/* ------------------------------------------------------------------ JSONL */

int bench_jsonl_fill(const char *path, uint64_t events, uint64_t seed);
int bench_jsonl_query(const char *path, uint64_t events, int runs, const bench_targets *tg);

#endif
