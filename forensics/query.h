/* The query engine: plan a filter over a store snapshot, then stream the matching events in
 * seq order.
 *
 * Planning (query_plan.c) picks index cursors where the filter allows (docs/query-language.md,
 * "How a query runs"); execution (query_exec.c) evaluates the full filter on every candidate,
 * because indexes give supersets. Candidates are checked in chunks by worker threads, each with
 * its own read transaction, and handed back to the calling thread in seq order. A check first
 * looks at the envelope of the stored bytes (seq, time, type, source, exec_id, tid) and decodes
 * the body only when the answer depends on it.
 *
 *   store_txn *t; store_txn_begin(s, &t);
 *   query *q; query_plan(s, t, f, &opt, &q, &eb);
 *   query_run(q, emit, arg);        // emit(arg, seq, ev) for each match, in seq order
 *   query_free(q); store_txn_end(t);
 */
#ifndef PTB_QUERY_H
#define PTB_QUERY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "filter.h"
#include "store.h"

typedef struct query query;
typedef struct query_procs query_procs;

/* A further check of a match, made in a worker thread on the decoded event (t is that worker's
 * snapshot): 1 keeps the match, 0 drops it, a negative PTB_E* code stops the query with it. */
typedef int (*query_accept_fn)(void *arg, store_txn *t, const ptb_event *ev);

typedef struct query_options {
    int threads;            /* worker threads; 0 = online CPUs, at most 8 */
    bool need_event;        /* emit gets the decoded event (false: ev is NULL, e.g. for counting) */
    bool no_index;          /* always scan (tests compare plans against this) */
    query_accept_fn accept; /* optional (--contains); called from several threads at once */
    /* optional, with accept: a check on the stored bytes first, false when accept would drop the
     * event anyway (saves decoding it); body_case from the envelope */
    bool (*accept_maybe)(void *arg, uint32_t body_case, const void *data, size_t len);
    void *accept_arg;
} query_options;

void query_options_default(query_options *o);

/* Called for each match in increasing seq order. ev: borrowed until emit returns (NULL unless
 * need_event). Return 0 to go on, 1 to stop (query_run then returns 0), or a negative PTB_E*
 * code to stop with that error. */
typedef int (*query_emit_fn)(void *arg, uint64_t seq, const ptb_event *ev);

/* Plan f over the snapshot t of s (both borrowed; they and f must outlive *out). Builds the
 * process table when the filter needs it. Returns 0 with *out (free with query_free()), or an
 * error with the message in eb (may be NULL). */
int query_plan(store *s, store_txn *t, const filter *f, const query_options *o, query **out,
               ptb_errbuf *eb);

/* Describe the plan in words (several lines, for --explain). */
void query_explain(const query *q, FILE *out);

/* Run the plan. Returns 0, the first error of emit, or a store error. Events that do not decode
 * are skipped and counted (query_corrupt()); the caller decides what that means. */
int query_run(query *q, query_emit_fn emit, void *arg);

/* Number of events that did not decode during query_run, and the first such seq. */
uint64_t query_corrupt(const query *q, uint64_t *first_seq);

/* Candidate events checked by the last query_run (for tests and benchmarks). */
uint64_t query_checked(const query *q);

/* The process table used by the query (NULL when the filter needs none); borrowed. */
const query_procs *query_procs_of(const query *q);

void query_free(query *q);

/* ------------------------------------------------------------------ process table */

/* Every process of the snapshot, from its proc.exec event (query_procs.c). Returns 0 with *out
 * (free with query_procs_free()), or a store error. */
int query_procs_build(store_txn *t, query_procs **out);
void query_procs_free(query_procs *p);

/* filter_proc_fn over a table (arg is the const query_procs *). */
const filter_proc *query_procs_find(void *arg, uint64_t exec_id);

/* Number of processes, and the i-th in exec_id order. */
size_t query_procs_count(const query_procs *p);
const filter_proc *query_procs_at(const query_procs *p, size_t i);

/* exec_id and every descendant of it (through parent_exec_id): *ids malloc'd (caller frees), in
 * increasing order. Returns 0, PTB_ENOTFOUND when root is not in the table, PTB_ENOMEM. */
int query_procs_tree(const query_procs *p, uint64_t root, uint64_t **ids, size_t *n);

#endif
