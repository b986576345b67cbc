/* Structural check of an LMDB data file before liblmdb is allowed to map it.
 *
 * LMDB keeps no checksums: a data.mdb with flipped bytes can send liblmdb's page walk out of
 * bounds (SIGSEGV/SIGBUS), into an assert (abort) or into a cycle. ptb promises that a damaged
 * store gives a clear error from `ptb verify` and from every reader, never a crash, so readers
 * and the verifier run lmdb_check_file() on data.mdb first and refuse the store when it fails.
 *
 * The check reads the raw file (LMDB 0.9.x format, 64-bit little-endian builds only): both meta
 * pages, then every tree reachable from the meta that liblmdb would pick (free DB, main DB, every
 * named DB, every DUPSORT sub-page and sub-DB), every overflow page, and the free list. It checks
 * bounds, page numbers, flags, key order, depth and the counts in each MDB_db record; see
 * lmdb_check.c for the full list. It never reads outside the file, recursion is bounded by the
 * trees' depth (at most 32, liblmdb's cursor stack), and it allocates two bitmaps of one bit per
 * page of the file, nothing else.
 *
 * What it does not do: it does not check the bytes of values (ptb's hash chain does), and it
 * checks only the snapshot liblmdb will open (the meta with the larger txnid), not the older one.
 * The file must not be written while it is checked (a live writer can make the check report
 * damage that is not there; a writer that shrinks the file would raise SIGBUS). */
#ifndef PTB_LMDB_CHECK_H
#define PTB_LMDB_CHECK_H

#include <stddef.h>
#include <stdint.h>

typedef struct lmdb_check_report {
    uint32_t psize;          /* page size from the meta, 0 if the meta is unusable */
    int meta;                /* 0 or 1: the meta page that liblmdb would use; -1 if none */
    uint64_t txnid;          /* txnid of that meta */
    uint64_t last_pg;        /* mm_last_pg of that meta */
    uint64_t pages_checked;  /* tree and overflow pages visited */
    uint64_t branch_pages;   /* over all trees, sub-DBs included */
    uint64_t leaf_pages;     /* over all trees, sub-DBs included */
    uint64_t overflow_pages; /* over all trees */
    uint64_t sub_pages;      /* inline DUPSORT sub-pages */
    uint64_t free_pages;     /* page numbers listed in the free DB */
    uint64_t named_dbs;      /* F_SUBDATA records in the main DB */
    uint64_t entries;        /* data items in the main DB and all named DBs */
    int problems;            /* 0 when sound; the check stops at the first problem, so 0 or 1 */
    char first[512];         /* the first problem: page, file offset, what is wrong; "" if none */
} lmdb_check_report;

/* Check the LMDB data file at path (the data.mdb file itself, not its directory).
 * Returns 0 when the file is sound, PTB_ECORRUPT when it is not (rep->first says why), -errno
 * when it cannot be opened, stat'ed or mapped, PTB_EINVAL on NULL arguments.
 * path: borrowed, read during the call. rep: borrowed, filled in on every return but EINVAL. */
int lmdb_check_file(const char *path, lmdb_check_report *rep);

/* The same check over a file image in memory (len bytes at map), e.g. for the fuzzer.
 * Returns 0 or PTB_ECORRUPT; PTB_ENOMEM if the page bitmaps cannot be allocated; PTB_EINVAL on
 * NULL arguments. map: borrowed, only read, during the call. rep: borrowed, filled in. */
int lmdb_check_mem(const void *map, size_t len, lmdb_check_report *rep);

#endif
