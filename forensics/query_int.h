/* Internals of the query engine shared by the planner and the executor. */
#ifndef PTB_QUERY_INT_H
#define PTB_QUERY_INT_H

#include "filter_ast.h"
#include "query.h"

/* One posting list: the events under (index, key). */
typedef struct plan_key {
    store_index ix;
    uint64_t key;
    uint64_t count;
} plan_key;

/* What one condition of the filter contributed, in words (for --explain). */
typedef struct plan_term {
    char desc[240];
    size_t nkeys;
    uint64_t count;
} plan_term;

/* A superset of the matching events: the union of posting lists (or every event when all),
 * within seq bounds and (coarsely, by batch) time bounds. */
typedef struct plan_set {
    bool all;
    plan_key *keys; /* owned */
    size_t nkeys, kcap;
    plan_term *terms; /* owned */
    size_t nterms, tcap;
    uint64_t count; /* sum of the posting counts (an upper bound of the candidates) */
    uint64_t seq_lo, seq_hi;
    int64_t ts_lo, ts_hi;
} plan_set;

struct query {
    store *s;        /* borrowed */
    store_txn *t;    /* borrowed */
    const filter *f; /* borrowed */
    query_options o;
    query_procs *procs; /* owned, NULL when the filter needs none */
    uint64_t last_seq;
    plan_set plan;
    bool use_index;
    char why[240]; /* why this plan */
    int threads;
    /* results of query_run */
    uint64_t corrupt, corrupt_first, checked;
};

/* Candidates above this many are scanned instead (the index path sorts them in memory). */
#define QUERY_INDEX_MAX ((uint64_t)64 << 20)

void plan_set_free(plan_set *p);

#endif
