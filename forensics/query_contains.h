/* `ptb query --contains TEXT`: does an event hold TEXT in any of its string fields, or in the
 * decompressed content of a blob it references (bytes fields named sha256, blob or *_blob of
 * 32 bytes)? Each blob is read and searched once per query (the answer is cached by hash, shared by the threads of a query). */
#ifndef PTB_QUERY_CONTAINS_H
#define PTB_QUERY_CONTAINS_H

#include <stdbool.h>

#include "store.h"

typedef struct query_contains query_contains;

/* text is borrowed and must outlive the matcher. Returns NULL when out of memory. */
query_contains *query_contains_new(const char *text, size_t len);
void query_contains_free(query_contains *qc);

/* 1 when ev holds the text, 0 when not, or a negative error from reading a blob (a blob that is
 * missing or corrupt counts as not holding it; query_contains_blob_errors() counts them). Blobs
 * are read through t. qc is a query_contains *: the signature is query_accept_fn's (query.h), so
 * the query's workers run it; it may be called from several threads at once. */
int query_contains_match(void *qc, store_txn *t, const ptb_event *ev);
/* The stored-bytes pre-check (query_options.accept_maybe): false when an event of this body
 * case whose stored bytes are data/len cannot hold the text. That is so when the bytes do not
 * hold it (strings are stored as they are, or as ids of interned strings), no interned string
 * holds it, and the body has no blob field. Needs query_contains_prepare() first. */
bool query_contains_maybe(void *qc, uint32_t body_case, const void *data, size_t len);

/* Look through the interned strings of t once, for query_contains_maybe. Returns 0 or a store
 * error. */
int query_contains_prepare(query_contains *qc, store_txn *t);

uint64_t query_contains_blob_errors(const query_contains *qc);

#endif
