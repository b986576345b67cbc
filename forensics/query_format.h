/* Human-readable output of events: the table rows of `ptb query` and the one-line summaries
 * that `--lineage` also uses. */
#ifndef PTB_QUERY_FORMAT_H
#define PTB_QUERY_FORMAT_H

#include <stdio.h>

#include "event_type.h"

/* One-line summary of the body of ev into buf (always NUL-terminated when cap > 0): control
 * characters become spaces, long texts are cut with "...". */
void query_format_summary(const ptb_event *ev, char *buf, size_t cap);

/* Column widths of a table. */
typedef struct query_table {
    int seq_w, exec_w;
} query_table;

/* Widths for a store whose last seq is last_seq. */
void query_table_init(query_table *tb, uint64_t last_seq);
void query_table_header(const query_table *tb, FILE *out);
void query_table_row(const query_table *tb, const ptb_event *ev, FILE *out);

#endif
