/* `ptb query --lineage PATH`: where the content of a file came from, as far as the store holds
 * it so far. */
#ifndef PTB_QUERY_LINEAGE_H
#define PTB_QUERY_LINEAGE_H

#include <stdio.h>

#include "store.h"

/* Print the lineage tree of path (borrowed) to out: the events that wrote it (file.write, and
 * file.rename into it), the processes that did, what those processes read before writing (and,
 * recursively, who wrote that), and their network activity (connect, flows, DNS, TLS, HTTP), down
 * to depth levels of files. s and t borrowed. Returns 0 or a store error. */
int query_lineage_print(store *s, store_txn *t, const char *path, int depth, FILE *out);

#endif
