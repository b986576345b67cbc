/* The input and output of `ptb import` (import_io.h): lines of a file, the store. */
#include "import_io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ptb_cli.h"
#include "ptb_error.h"

int import_reader_init(import_reader *r, FILE *f)
{
    memset(r, 0, sizeof *r);
    r->f = f;
    r->cap = IMPORT_CHUNK;
    r->buf = malloc(r->cap);
    return r->buf ? 0 : PTB_ENOMEM;
}

int import_reader_next(import_reader *r, const char **line, size_t *len, bool *too_long)
{
    *too_long = false;
    bool skipping = false;
    size_t scanned = 0; /* bytes of the current line already searched for '\n' */
    for (;;) {
        char *nl = memchr(r->buf + r->start + scanned, '\n', r->end - r->start - scanned);
        if (nl) {
            *line = r->buf + r->start;
            *len = skipping ? 0 : (size_t)(nl - *line);
            *too_long = skipping;
            r->start = (size_t)(nl - r->buf) + 1;
            return 1;
        }
        scanned = r->end - r->start;
        if (r->eof) {
            if (r->start == r->end && !skipping)
                return 0;
            *line = r->buf + r->start;
            *len = skipping ? 0 : r->end - r->start;
            *too_long = skipping;
            r->start = r->end;
            return 1;
        }
        if (r->start > 0) { /* keep the partial line at the front */
            memmove(r->buf, r->buf + r->start, r->end - r->start);
            r->end -= r->start;
            r->start = 0;
        }
        if (scanned > IMPORT_LINE_MAX) { /* too long: drop what we have, look for its end */
            skipping = true;
            r->end = r->start = scanned = 0;
        }
        if (r->end == r->cap) {
            size_t cap = r->cap * 2 > IMPORT_LINE_MAX + 1 ? IMPORT_LINE_MAX + 1 : r->cap * 2;
            char *nb = cap > r->cap ? realloc(r->buf, cap) : NULL;
            if (!nb)
                return PTB_ENOMEM;
            r->buf = nb;
            r->cap = cap;
        }
        size_t n = fread(r->buf + r->end, 1, r->cap - r->end, r->f);
        r->end += n;
        if (n == 0) {
            if (ferror(r->f))
                return errno ? -errno : PTB_EIO;
            r->eof = true;
        }
    }
}

void import_reader_free(import_reader *r)
{
    free(r->buf);
    r->buf = NULL;
}

int import_store_open(const char *dir, const store_options *o, bool append, store **out)
{
    *out = NULL;
    int rc = store_open(dir, o, append ? 0 : STORE_CREATE | STORE_EXCL, out);
    if (!rc)
        return 0;
    if (rc == PTB_EEXIST)
        fprintf(stderr, "ptb import: %s already exists (use --append to add to it)\n", dir);
    else
        fprintf(stderr, "ptb import: %s\n", *out ? store_errmsg(*out) : ptb_strerror(rc));
    store_close(*out);
    *out = NULL;
    return ptb_exit_code(rc);
}

int import_store_close(store *s, const char *dir, bool quiet)
{
    if (!s)
        return 0;
    int rc = store_flush(s);
    int crc = store_close(s);
    if (!rc)
        rc = crc;
    if (rc && !quiet)
        fprintf(stderr, "ptb import: %s: %s\n", dir, ptb_strerror(rc));
    return rc;
}
