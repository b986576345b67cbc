/* `ptb query --contains TEXT`: does an event hold TEXT in any of its string fields, or in the
 * decompressed content of a blob it references (bytes fields named sha256, blob or *_blob of
 * 32 bytes)? Each blob is read and searched once per query (the answer is cached by hash). */
#ifndef PTB_QUERY_CONTAINS_H
#define PTB_QUERY_CONTAINS_H

#include "store.h"

typedef struct query_contains query_contains;

/* t and text are borrowed and must outlive the matcher. Returns NULL when out of memory. */
query_contains *query_contains_new(store_txn *t, const char *text, size_t len);
void query_contains_free(query_contains *qc);

/* 1 when ev holds the text, 0 when not, or a negative error from reading a blob (a blob that is
 * missing or corrupt counts as not holding it; query_contains_blob_errors() counts them). */
int query_contains_match(query_contains *qc, const ptb_event *ev);
uint64_t query_contains_blob_errors(const query_contains *qc);

#endif
