/* The input and the output of `ptb import`, shared by its importers (import_cli.c,
 * import_agent.c, import_ptb.c): lines of a file, each of any length up to IMPORT_LINE_MAX, read
 * through one growing buffer; the store the events go to, opened and closed with the command's
 * messages. */
#ifndef PTB_IMPORT_IO_H
#define PTB_IMPORT_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "store.h"

#define IMPORT_LINE_MAX ((size_t)64 << 20) /* a longer line is skipped (too_long) */
#define IMPORT_CHUNK ((size_t)1 << 20)     /* the buffer's first size and smallest read */

typedef struct import_reader {
    FILE *f;      /* borrowed */
    char *buf;    /* owned */
    size_t cap;   /* allocated bytes; grows up to IMPORT_LINE_MAX + 1 */
    size_t start; /* first unread byte */
    size_t end;   /* end of the data read */
    bool eof;
} import_reader;

/* A reader of f (borrowed, open for reading, until import_reader_free). Returns 0 or
 * PTB_ENOMEM. */
int import_reader_init(import_reader *r, FILE *f);

/* Next line (without its '\n'): *line borrowed until the next call. Returns 1 for a line, 0 at
 * the end, -errno on a read error or PTB_ENOMEM. A line over IMPORT_LINE_MAX is consumed and
 * returned with *too_long set (and *len 0). */
int import_reader_next(import_reader *r, const char **line, size_t *len, bool *too_long);

/* Free the buffer (not f); a reader that failed to init is fine. */
void import_reader_free(import_reader *r);

/* Open the store dir (borrowed) an import writes to: created (it must not exist yet), or with
 * append an existing one; o may be NULL (the defaults). Returns 0 and *out (close it with
 * import_store_close), or the exit code, the message printed on stderr. */
int import_store_open(const char *dir, const store_options *o, bool append, store **out);

/* Flush and close s (NULL is a no-op; dir names it in the message). Returns 0, or the first
 * error of the two, printed on stderr unless quiet (the import has reported an error of its
 * own already). */
int import_store_close(store *s, const char *dir, bool quiet);

#endif
