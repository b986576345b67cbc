/* ptb error codes and per-handle error messages.
 *
 * Every fallible function in ptb returns int: 0 on success, a negative PTB_E* code on failure.
 * Codes from errno (as -errno) and from LMDB (MDB_* codes, which are negative and in the range
 * -30799..-30780) are passed through unchanged; ptb's own codes live in -31000..-31099 so they
 * collide with neither. ptb_strerror() names every code. The numbers are stable: they appear in
 * docs/errors.md and may be printed in logs that outlive a release. */
#ifndef PTB_ERROR_H
#define PTB_ERROR_H

#include <stddef.h>

enum {
    PTB_OK = 0,
    PTB_EBASE = -31000,
    PTB_ENOTFOUND = -31001, /* no such key / end of iteration */
    PTB_ECORRUPT = -31002,  /* data on disk fails a check */
    PTB_EINVAL = -31003,    /* bad argument from the caller */
    PTB_ENOMEM = -31004,    /* allocation failed */
    PTB_ETOOBIG = -31005,   /* an event or blob over its size cap */
    PTB_EBUDGET = -31006,   /* the blob budget of the store is spent */
    PTB_ECLOSED = -31007,   /* the store stopped (after an error, or closed) */
    PTB_ESCHEMA = -31008,   /* store written by an incompatible schema version */
    PTB_ECHAIN = -31009,    /* hash chain does not verify */
    PTB_EPARSE = -31010,    /* syntax error in a filter or input line */
    PTB_ENOSPC = -31011,    /* disk full: the store stopped cleanly */
    PTB_ENOSTORE = -31012,  /* the directory is not a ptb store */
    PTB_EEXIST = -31013,    /* already exists */
    PTB_EREADONLY = -31014, /* write on a store opened read-only */
    PTB_ELOCKED = -31015,   /* another writer holds the store */
    PTB_EIO = -31016,       /* I/O error not covered by errno */
    PTB_ELAST = -31017,
};

/* Message for any code: ptb's own, -errno, or an LMDB code. Never NULL; static storage. */
const char *ptb_strerror(int code);

/* Symbolic name of a code ("PTB_ECORRUPT", "ENOENT", "MDB_MAP_FULL"); static storage. */
const char *ptb_errname(int code);

/* The last error message of a handle. Handles embed one of these. */
typedef struct ptb_errbuf {
    char msg[512];
} ptb_errbuf;

/* Format into eb (if not NULL) and return code, so callers write `return ptb_errf(...)`. */
int ptb_errf(ptb_errbuf *eb, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
