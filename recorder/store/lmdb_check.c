/* Structural check of an LMDB 0.9.x data file (64-bit builds, native byte order), so that liblmdb
 * never maps a file whose structure can crash it. See lmdb_check.h for the contract.
 *
 * On-disk layout relied on (from liblmdb 0.9 mdb.c, confirmed on files written by 0.9.24):
 *
 *   page header MDB_page, 16 bytes (PAGEHDRSZ):
 *     0  u64 mp_pgno      page number; must equal the page's index in the file
 *     8  u16 mp_pad       LEAF2 sub-pages: key size
 *    10  u16 mp_flags     P_BRANCH 1, P_LEAF 2, P_OVERFLOW 4, P_META 8, P_DIRTY 0x10,
 *                         P_LEAF2 0x20, P_SUBP 0x40, P_LOOSE 0x4000, P_KEEP 0x8000
 *    12  u16 mp_lower     end of the node-offset array; keys = (mp_lower - 16) / 2
 *    14  u16 mp_upper     start of the node area          (overflow: 12 u32 mp_pages)
 *    16  u16 mp_ptrs[]    node offsets from the page start, nodes lie in [mp_upper, psize)
 *   node MDB_node, 8 bytes then key then data:
 *     0  u16 mn_lo, 2 u16 mn_hi   data size (leaf) or child pgno bits 0-31 (branch)
 *     4  u16 mn_flags             F_BIGDATA 1, F_SUBDATA 2, F_DUPDATA 4; branch: pgno bits 32-47
 *     6  u16 mn_ksize, 8 key[mn_ksize], then data (F_BIGDATA: u64 overflow pgno;
 *        F_SUBDATA: an MDB_db; F_DUPDATA alone: an inline sub-page with its own MDB_page header)
 *   LEAF2 page: no nodes, keys of a fixed size packed from offset 16 (DUPFIXED dups)
 *   MDB_db, 48 bytes: u32 md_pad, u16 md_flags, u16 md_depth, u64 md_branch_pages,
 *     u64 md_leaf_pages, u64 md_overflow_pages, u64 md_entries, u64 md_root (~0: empty)
 *   MDB_meta at offset 16 of pages 0 and 1: u32 magic 0xBEEFC0DE, u32 version 1,
 *     u64 mm_address, u64 mm_mapsize, MDB_db mm_dbs[2] (free, main; mm_dbs[0].md_pad = psize,
 *     mm_dbs[0].md_flags = env flags), u64 mm_last_pg, u64 mm_txnid
 *   free DB: INTEGERKEY u64 txnid -> IDL: u64 count, then count page numbers, descending
 *
 * What liblmdb does with these that the checks below answer:
 *   - it picks the meta with the larger txnid (page 0 on a tie) and reads meta 1 at the offset
 *     given by meta 0's page size; a zero page size divides by zero, so both must agree;
 *     a reader with a lock file then uses meta (txnid & 1), so meta i must hold txnid = i mod 2
 *     (or 0, as a fresh file does);
 *   - it trusts every page number below mm_last_pg + 1 and maps it; a page past the end of the
 *     file raises SIGBUS, so (mm_last_pg + 1) * psize must fit in the file;
 *   - it asserts (abort) that a branch page has more than one key and pushes at most 32 pages;
 *   - it reads node offsets, key sizes and data sizes without bounds; F_BIGDATA sizes are
 *     trusted against the overflow page; F_SUBDATA records become cursor state, and a sub-DB
 *     whose flags say DUPSORT makes a cursor follow a NULL sub-cursor;
 *   - INTEGERKEY/INTEGERDUP comparators read 4 or 8 bytes whatever the key size;
 *   - a writer copies free-list IDLs by their count and writes in place to pages marked P_DIRTY.
 *
 * Checks, in order; the first failure is reported and ends the check:
 *   metas   both: mp_pgno = 0/1, flags exactly P_META, magic, version 1, same psize (a power of
 *           two in 512..65536), txnid parity; the picked one: 1 <= last_pg < file pages, free DB
 *           flags INTEGERKEY (+ FIXEDMAP/NOSUBDIR env bits), main DB flags within the six DB flags
 *   pages   number in [2, last_pg]; visited once (bitmap: no cycle, no shared page); mp_pgno;
 *           flags exactly P_BRANCH above the record's md_depth and P_LEAF (+P_LEAF2 in DUPFIXED
 *           dup sub-DBs) at it; 16 <= lower <= upper <= psize, lower even; >= 1 key, and >= 2 on
 *           branch pages; each node offset in [upper, psize) with header and key inside; LEAF2:
 *           n * key size fits
 *   keys    strictly ascending under the DB's own comparator (memcmp, reverse, or integer, where
 *           integer keys must be 4 or 8 bytes and alike), and within the separator keys of the
 *           parent (branch key 0 is never compared, as in liblmdb)
 *   nodes   leaf flags allowed by the tree: main DB 0/BIGDATA/SUBDATA; named 0/BIGDATA; DUPSORT
 *           0/DUPDATA/DUPDATA|SUBDATA; dups 0 with no data; free DB 0/BIGDATA; value inside the
 *           page, or an overflow run: page in range, mp_pgno, flags exactly P_OVERFLOW, mp_pages
 *           covers the value and stays <= last_pg, every page of it visited once
 *   sub-DBs F_SUBDATA record exactly 48 bytes; named DB flags within the six DB flags; dup
 *           sub-DB flags DUPFIXED iff the DB is DUPFIXED (+ INTEGERKEY), LEAF2 key size md_pad;
 *           inline sub-pages: >= 16 bytes, flags P_LEAF|P_SUBP (+P_LEAF2 when DUPFIXED, P_DIRTY
 *           tolerated: liblmdb writes it there), layout and dups as above, key size mp_pad
 *   counts  every tree's depth, branch/leaf/overflow pages and entries equal its MDB_db record;
 *           an empty tree (root ~0) has depth and counts 0
 *   free    each record 8*(1+k) bytes with count <= k; page numbers in [2, last_pg], strictly
 *           descending, none listed twice, none in use by the snapshot checked
 */
#include "lmdb_check.h"

#include "ptb_error.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(sizeof(size_t) == 8, "lmdb_check reads the 64-bit LMDB layout");

enum {
    HDR = 16,     /* PAGEHDRSZ */
    NODE = 8,     /* NODESIZE */
    DBSZ = 48,    /* sizeof(MDB_db) */
    METASZ = 136, /* sizeof(MDB_meta) */
    MAXDEPTH = 32,
    P_BRANCH = 0x01,
    P_LEAF = 0x02,
    P_OVERFLOW = 0x04,
    P_META = 0x08,
    P_DIRTY = 0x10,
    P_LEAF2 = 0x20,
    P_SUBP = 0x40,
    F_BIGDATA = 0x01,
    F_SUBDATA = 0x02,
    F_DUPDATA = 0x04,
};
#define LMDB_MAGIC 0xBEEFC0DEu
#define PGNO_NONE UINT64_MAX
#define DB_FLAGS                                                                                   \
    (MDB_REVERSEKEY | MDB_DUPSORT | MDB_INTEGERKEY | MDB_DUPFIXED | MDB_INTEGERDUP | MDB_REVERSEDUP)

typedef struct chk_db {
    uint32_t pad;
    uint16_t flags, depth;
    uint64_t branch, leaf, overflow, entries, root;
} chk_db;

typedef struct chk_key {
    const uint8_t *p; /* borrowed from the map */
    size_t n;
} chk_key;

enum { CMP_MEM, CMP_MEMR, CMP_INT };
typedef enum { T_FREE, T_MAIN, T_NAMED, T_DUPS } tree_kind;

/* One B+tree being walked, with what it should contain and what was counted. */
typedef struct chk_tree {
    tree_kind kind;
    char what[96];  /* for messages: "main DB", "DB \"events\"", "dups of a key in ..." */
    uint16_t flags; /* the DB's flags; for T_DUPS the flags of the DB holding the dups */
    int cmp;        /* CMP_*: the order of keys in this tree */
    int leaf2;      /* leaves are LEAF2 (DUPFIXED dup sub-DB) */
    uint32_t ks;    /* LEAF2 key size */
    uint16_t depth;
    uint64_t branch, leaf, overflow, entries; /* counted during the walk */
} chk_tree;

typedef struct chk {
    const uint8_t *map; /* borrowed: the whole file */
    size_t len;
    uint32_t psize;
    uint64_t last_pg;
    uint8_t *seen;  /* owned: one bit per page, set when a tree or overflow page is visited */
    uint8_t *freed; /* owned: one bit per page, set when the free DB lists it */
    lmdb_check_report *rep;
} chk;

static uint16_t rd16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static void db_decode(const uint8_t *p, chk_db *d)
{
    d->pad = rd32(p);
    d->flags = rd16(p + 4);
    d->depth = rd16(p + 6);
    d->branch = rd64(p + 8);
    d->leaf = rd64(p + 16);
    d->overflow = rd64(p + 24);
    d->entries = rd64(p + 32);
    d->root = rd64(p + 40);
}

/* Record the first problem; always returns PTB_ECORRUPT. off is a byte offset in the file. */
__attribute__((format(printf, 5, 6))) static int chk_fail(chk *c, uint64_t pgno, size_t off,
                                                          const chk_tree *t, const char *fmt, ...)
{
    lmdb_check_report *rep = c->rep;
    if (rep->problems++ == 0) {
        char why[320];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof why, fmt, ap);
        va_end(ap);
        snprintf(rep->first, sizeof rep->first, "page %llu, file offset %zu%s%s: %s",
                 (unsigned long long)pgno, off, t ? ", in " : "", t ? t->what : "", why);
    }
    return PTB_ECORRUPT;
}

static int bit_test_set(uint8_t *bits, uint64_t i)
{
    int was = (bits[i >> 3] >> (i & 7)) & 1;
    bits[i >> 3] |= (uint8_t)(1u << (i & 7));
    return was;
}

/* The comparators of liblmdb's mdb_default_cmp, for keys already known to be well-sized. */
static int key_cmp(int how, const chk_key *a, const chk_key *b)
{
    if (how == CMP_INT) {
        uint64_t x = a->n == 4 ? rd32(a->p) : rd64(a->p);
        uint64_t y = b->n == 4 ? rd32(b->p) : rd64(b->p);
        return x < y ? -1 : x > y;
    }
    if (how == CMP_MEMR) {
        size_t i = a->n, j = b->n;
        while (i > 0 && j > 0) {
            int d = (int)a->p[--i] - (int)b->p[--j];
            if (d)
                return d;
        }
        return i ? 1 : j ? -1 : 0;
    }
    size_t n = a->n < b->n ? a->n : b->n;
    int d = n ? memcmp(a->p, b->p, n) : 0;
    if (d)
        return d;
    return a->n < b->n ? -1 : a->n > b->n;
}

/* Key k of tree t must be well-sized, after prev, not below lo, below hi (each may be NULL). */
static int chk_key_order(chk *c, const chk_tree *t, uint64_t pgno, size_t off, const chk_key *k,
                         const chk_key *prev, const chk_key *lo, const chk_key *hi)
{
    if (t->cmp == CMP_INT) {
        if (k->n != 4 && k->n != 8)
            return chk_fail(c, pgno, off, t, "integer key of %zu bytes", k->n);
        if ((prev && prev->n != k->n) || (lo && lo->n != k->n) || (hi && hi->n != k->n))
            return chk_fail(c, pgno, off, t, "integer keys of different sizes");
    }
    if (prev && key_cmp(t->cmp, prev, k) >= 0)
        return chk_fail(c, pgno, off, t, "key not greater than the key before it");
    if (lo && key_cmp(t->cmp, lo, k) > 0)
        return chk_fail(c, pgno, off, t, "key below its parent's separator key");
    if (hi && key_cmp(t->cmp, k, hi) >= 0)
        return chk_fail(c, pgno, off, t, "key not below the next separator key");
    return 0;
}

/* The node-offset header of a page or sub-page of size bytes at base (file offset fo).
 * Checks lower/upper and, for LEAF2, that n keys of ks bytes fit. Sets *n, the key count. */
static int chk_layout(chk *c, const chk_tree *t, const uint8_t *base, size_t size, uint64_t pgno,
                      size_t fo, int leaf2, uint32_t ks, unsigned *n)
{
    unsigned lower = rd16(base + 12), upper = rd16(base + 14);
    if (lower < HDR || (lower - HDR) % 2 || lower > upper || upper > size)
        return chk_fail(c, pgno, fo + 12, t, "mp_lower %u / mp_upper %u invalid for %zu bytes",
                        lower, upper, size);
    *n = (lower - HDR) / 2;
    if (*n == 0)
        return chk_fail(c, pgno, fo + 12, t, "page holds no keys");
    if (leaf2 && HDR + (uint64_t)*n * ks > size)
        return chk_fail(c, pgno, fo + 8, t, "%u LEAF2 keys of %u bytes overflow the page", *n, ks);
    return 0;
}

/* Node i of a page: its offset must lie in [upper, size) with header and key inside. */
static int chk_node(chk *c, const chk_tree *t, const uint8_t *base, size_t size, uint64_t pgno,
                    size_t fo, unsigned i, const uint8_t **node, chk_key *k)
{
    unsigned off = rd16(base + HDR + 2 * i);
    if (off < rd16(base + 14) || (size_t)off + NODE > size)
        return chk_fail(c, pgno, fo + HDR + 2 * i, t, "node %u at offset %u outside the page", i,
                        off);
    *node = base + off;
    k->n = rd16(*node + 6);
    k->p = *node + NODE;
    if ((size_t)off + NODE + k->n > size)
        return chk_fail(c, pgno, fo + off + 6, t, "key of node %u (%zu bytes) overflows the page",
                        i, k->n);
    return 0;
}

static int chk_tree_walk(chk *c, chk_tree *t, const chk_db *db, uint64_t pgno, size_t off);

/* The overflow run holding dsz bytes of an F_BIGDATA value, starting at page ovpg. */
static int chk_overflow(chk *c, chk_tree *t, uint64_t ovpg, uint64_t dsz, uint64_t pgno, size_t off,
                        const uint8_t **data)
{
    if (ovpg < 2 || ovpg > c->last_pg)
        return chk_fail(c, pgno, off, t, "overflow page number %llu outside [2, %llu]",
                        (unsigned long long)ovpg, (unsigned long long)c->last_pg);
    const uint8_t *p = c->map + ovpg * c->psize;
    size_t fo = (size_t)(ovpg * c->psize);
    if (rd64(p) != ovpg)
        return chk_fail(c, ovpg, fo, t, "overflow page header says page %llu",
                        (unsigned long long)rd64(p));
    if (rd16(p + 10) != P_OVERFLOW)
        return chk_fail(c, ovpg, fo + 10, t, "overflow page has flags 0x%x", rd16(p + 10));
    uint64_t pages = rd32(p + 12);
    uint64_t need = (HDR + dsz + c->psize - 1) / c->psize;
    if (pages < need || pages > c->last_pg - ovpg + 1)
        return chk_fail(c, ovpg, fo + 12, t,
                        "overflow run of %llu pages: value needs %llu, file has %llu after it",
                        (unsigned long long)pages, (unsigned long long)need,
                        (unsigned long long)(c->last_pg - ovpg + 1));
    for (uint64_t i = 0; i < pages; i++)
        if (bit_test_set(c->seen, ovpg + i))
            return chk_fail(c, ovpg + i, (size_t)((ovpg + i) * c->psize), t,
                            "page reached twice (overflow run overlaps another page)");
    t->overflow += pages;
    c->rep->overflow_pages += pages;
    c->rep->pages_checked += pages;
    *data = p + HDR;
    return 0;
}

/* A free-list record: u64 count, then count page numbers in descending order. */
static int chk_idl(chk *c, const chk_tree *t, const uint8_t *d, uint64_t dsz, uint64_t pgno,
                   size_t off)
{
    if (dsz < 8 || dsz % 8)
        return chk_fail(c, pgno, off, t, "free list record of %llu bytes", (unsigned long long)dsz);
    uint64_t n = rd64(d);
    if (n > dsz / 8 - 1)
        return chk_fail(c, pgno, off, t, "free list count %llu exceeds its record",
                        (unsigned long long)n);
    uint64_t prev = UINT64_MAX;
    for (uint64_t i = 1; i <= n; i++) {
        uint64_t pg = rd64(d + 8 * i);
        if (pg < 2 || pg > c->last_pg || pg >= prev)
            return chk_fail(c, pgno, off, t, "free list entry %llu is page %llu",
                            (unsigned long long)i, (unsigned long long)pg);
        if (bit_test_set(c->freed, pg))
            return chk_fail(c, pgno, off, t, "page %llu is listed free twice",
                            (unsigned long long)pg);
        prev = pg;
        c->rep->free_pages++;
    }
    return 0;
}

static int cmp_of_dups(uint16_t f)
{
    return (f & MDB_INTEGERDUP) ? CMP_INT : (f & MDB_REVERSEDUP) ? CMP_MEMR : CMP_MEM;
}

static int cmp_of_keys(uint16_t f)
{
    return (f & MDB_REVERSEKEY) ? CMP_MEMR : (f & MDB_INTEGERKEY) ? CMP_INT : CMP_MEM;
}

/* An inline sub-page of dsz bytes at d: the dups of one key of t. Adds the dups to *entries. */
static int chk_subpage(chk *c, chk_tree *t, const uint8_t *d, uint64_t dsz, uint64_t pgno,
                       size_t fo, uint64_t *entries)
{
    chk_tree s = {.kind = T_DUPS, .flags = t->flags, .cmp = cmp_of_dups(t->flags)};
    snprintf(s.what, sizeof s.what, "dup sub-page of %.70s", t->what);
    if (dsz < HDR)
        return chk_fail(c, pgno, fo, &s, "sub-page of %llu bytes", (unsigned long long)dsz);
    int fixed = (t->flags & MDB_DUPFIXED) != 0;
    unsigned want = P_LEAF | P_SUBP | (fixed ? P_LEAF2 : 0);
    if ((rd16(d + 10) & ~P_DIRTY) != want)
        return chk_fail(c, pgno, fo + 10, &s, "sub-page flags 0x%x, expected 0x%x", rd16(d + 10),
                        want);
    unsigned n, ks = rd16(d + 8);
    int rc = chk_layout(c, &s, d, (size_t)dsz, pgno, fo, fixed, ks, &n);
    if (rc)
        return rc;
    chk_key prev = {0}, k;
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *node = NULL;
        if (fixed) {
            k.p = d + HDR + (size_t)i * ks;
            k.n = ks;
        } else if ((rc = chk_node(c, &s, d, (size_t)dsz, pgno, fo, i, &node, &k))) {
            return rc;
        }
        size_t ko = fo + (size_t)(k.p - d);
        if ((rc = chk_key_order(c, &s, pgno, ko, &k, i ? &prev : NULL, NULL, NULL)))
            return rc;
        if (node && (rd16(node + 4) != 0 || rd16(node) != 0 || rd16(node + 2) != 0))
            return chk_fail(c, pgno, ko - NODE, &s, "dup node with flags or data");
        prev = k;
    }
    c->rep->sub_pages++;
    *entries += n;
    return 0;
}

/* A leaf node's value: inline or on overflow pages. Sets *data (in the map) and *dsz. */
static int chk_value(chk *c, chk_tree *t, const uint8_t *node, const chk_key *k, size_t lim,
                     uint64_t pgno, size_t fo, const uint8_t **data, uint64_t *dsz)
{
    *dsz = (uint64_t)rd16(node) | (uint64_t)rd16(node + 2) << 16;
    const uint8_t *v = k->p + k->n;
    size_t used = (size_t)(v - node);
    if (rd16(node + 4) & F_BIGDATA) {
        if (used + 8 > lim)
            return chk_fail(c, pgno, fo, t, "overflow page number outside the page");
        return chk_overflow(c, t, rd64(v), *dsz, pgno, fo, data);
    }
    if (used + *dsz > lim)
        return chk_fail(c, pgno, fo, t, "value of %llu bytes overflows the page",
                        (unsigned long long)*dsz);
    *data = v;
    return 0;
}

/* An MDB_db record of a named DB (T_NAMED) or of a dup sub-DB (T_DUPS) found in tree t. */
static int chk_subdb(chk *c, chk_tree *t, tree_kind kind, const chk_key *name, const uint8_t *rec,
                     uint64_t pgno, size_t fo, uint64_t *entries)
{
    chk_db db;
    db_decode(rec, &db);
    chk_tree s = {.kind = kind};
    if (kind == T_NAMED) {
        char nm[48];
        size_t n = name->n < sizeof nm - 1 ? name->n : sizeof nm - 1;
        for (size_t i = 0; i < n; i++)
            nm[i] = name->p[i] >= 0x20 && name->p[i] < 0x7f ? (char)name->p[i] : '?';
        nm[n] = 0;
        snprintf(s.what, sizeof s.what, "DB \"%s\"", nm);
        if (db.flags & ~DB_FLAGS)
            return chk_fail(c, pgno, fo + 4, &s, "DB flags 0x%x", db.flags);
        s.flags = db.flags;
        s.cmp = cmp_of_keys(db.flags);
        c->rep->named_dbs++;
    } else {
        snprintf(s.what, sizeof s.what, "dup sub-DB of %.70s", t->what);
        uint16_t want = (t->flags & MDB_DUPFIXED) ? MDB_DUPFIXED : 0;
        if ((db.flags & ~MDB_INTEGERKEY) != want)
            return chk_fail(c, pgno, fo + 4, &s, "sub-DB flags 0x%x", db.flags);
        s.flags = t->flags;
        s.cmp = cmp_of_dups(t->flags);
        s.leaf2 = want != 0;
        s.ks = db.pad;
    }
    int rc = chk_tree_walk(c, &s, &db, pgno, fo);
    if (rc)
        return rc;
    if (kind == T_DUPS)
        *entries += db.entries; /* dups are items of the DB that holds them */
    else
        c->rep->entries += db.entries;
    return 0;
}

/* The nodes of a full (non-LEAF2) leaf page of t. */
static int chk_leaf(chk *c, chk_tree *t, const uint8_t *p, unsigned n, uint64_t pgno, size_t fo,
                    const chk_key *lo, const chk_key *hi)
{
    chk_key prev = {0}, k;
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *node = NULL, *data = NULL;
        int rc = chk_node(c, t, p, c->psize, pgno, fo, i, &node, &k);
        if (rc)
            return rc;
        size_t no = fo + (size_t)(node - p), lim = c->psize - (size_t)(node - p);
        if ((rc = chk_key_order(c, t, pgno, no + NODE, &k, i ? &prev : NULL, lo, hi)))
            return rc;
        prev = k;
        unsigned fl = rd16(node + 4);
        int dupsort = t->kind != T_DUPS && t->kind != T_FREE && (t->flags & MDB_DUPSORT);
        int ok = t->kind == T_DUPS   ? fl == 0
                 : t->kind == T_FREE ? (fl & ~F_BIGDATA) == 0
                 : dupsort           ? fl == 0 || fl == F_DUPDATA || fl == (F_DUPDATA | F_SUBDATA)
                 : t->kind == T_MAIN ? fl == 0 || fl == F_BIGDATA || fl == F_SUBDATA
                                     : fl == 0 || fl == F_BIGDATA;
        if (!ok)
            return chk_fail(c, pgno, no + 4, t, "node %u has flags 0x%x", i, fl);
        uint64_t dsz;
        if ((rc = chk_value(c, t, node, &k, lim, pgno, no, &data, &dsz)))
            return rc;
        size_t dfo = fo + (size_t)(data - p); /* valid only for inline data */
        if (t->kind == T_DUPS) {
            if (dsz != 0)
                return chk_fail(c, pgno, no, t, "dup node carries %llu bytes of data",
                                (unsigned long long)dsz);
            t->entries++;
        } else if (t->kind == T_FREE) {
            if ((rc = chk_idl(c, t, data, dsz, pgno, no)))
                return rc;
            t->entries++;
        } else if (fl & F_SUBDATA) {
            if (dsz != DBSZ)
                return chk_fail(c, pgno, no, t, "sub-DB record of %llu bytes",
                                (unsigned long long)dsz);
            rc = chk_subdb(c, t, (fl & F_DUPDATA) ? T_DUPS : T_NAMED, &k, data, pgno, dfo,
                           &t->entries);
            if (!(fl & F_DUPDATA))
                t->entries++; /* a named DB's record is one item of the main DB */
            if (rc)
                return rc;
        } else if (fl & F_DUPDATA) {
            if ((rc = chk_subpage(c, t, data, dsz, pgno, dfo, &t->entries)))
                return rc;
        } else {
            t->entries++;
        }
    }
    return 0;
}

/* Page pgno at level (1 = root) of t; keys must lie in [lo, hi). */
static int chk_page(chk *c, chk_tree *t, uint64_t pgno, unsigned level, const chk_key *lo,
                    const chk_key *hi, uint64_t from, size_t from_off)
{
    if (pgno < 2 || pgno > c->last_pg)
        return chk_fail(c, from, from_off, t, "page number %llu outside [2, %llu]",
                        (unsigned long long)pgno, (unsigned long long)c->last_pg);
    size_t fo = (size_t)(pgno * c->psize);
    if (bit_test_set(c->seen, pgno))
        return chk_fail(c, pgno, fo, t, "page reached twice (cycle or shared page)");
    c->rep->pages_checked++;
    const uint8_t *p = c->map + fo;
    if (rd64(p) != pgno)
        return chk_fail(c, pgno, fo, t, "page header says page %llu", (unsigned long long)rd64(p));
    int leaf = level == t->depth;
    unsigned want = leaf ? P_LEAF | (t->leaf2 ? P_LEAF2 : 0) : P_BRANCH;
    if (rd16(p + 10) != want)
        return chk_fail(c, pgno, fo + 10, t, "flags 0x%x at level %u of %u, expected 0x%x",
                        rd16(p + 10), level, t->depth, want);
    unsigned n;
    int rc = chk_layout(c, t, p, c->psize, pgno, fo, t->leaf2 && leaf, t->ks, &n);
    if (rc)
        return rc;
    if (leaf) {
        t->leaf++;
        c->rep->leaf_pages++;
        if (!t->leaf2)
            return chk_leaf(c, t, p, n, pgno, fo, lo, hi);
        chk_key prev = {0}, k = {.n = t->ks};
        for (unsigned i = 0; i < n; i++, prev = k) {
            k.p = p + HDR + (size_t)i * t->ks;
            rc = chk_key_order(c, t, pgno, fo + (size_t)(k.p - p), &k, i ? &prev : NULL, lo, hi);
            if (rc)
                return rc;
        }
        t->entries += n;
        return 0;
    }
    t->branch++;
    c->rep->branch_pages++;
    if (n < 2)
        return chk_fail(c, pgno, fo + 12, t, "branch page with %u child", n);
    /* Keys first (all of them, so that each child gets both of its bounds), then children. */
    chk_key keys[2];
    const uint8_t *node = NULL;
    for (unsigned i = 1; i < n; i++) {
        if ((rc = chk_node(c, t, p, c->psize, pgno, fo, i, &node, &keys[i & 1])))
            return rc;
        rc = chk_key_order(c, t, pgno, fo + (size_t)(node - p) + NODE, &keys[i & 1],
                           i > 1 ? &keys[(i - 1) & 1] : NULL, lo, hi);
        if (rc)
            return rc;
    }
    for (unsigned i = 0; i < n; i++) {
        chk_key k, next, *clo = NULL, *chi = NULL;
        if ((rc = chk_node(c, t, p, c->psize, pgno, fo, i, &node, &k)))
            return rc;
        uint64_t child =
            (uint64_t)rd16(node) | (uint64_t)rd16(node + 2) << 16 | (uint64_t)rd16(node + 4) << 32;
        if (i > 0)
            clo = &k;
        if (i + 1 < n) {
            const uint8_t *nn;
            if ((rc = chk_node(c, t, p, c->psize, pgno, fo, i + 1, &nn, &next)))
                return rc;
            chi = &next;
        }
        rc = chk_page(c, t, child, level + 1, clo ? clo : lo, chi ? chi : hi, pgno,
                      fo + (size_t)(node - p));
        if (rc)
            return rc;
    }
    return 0;
}

/* Walk the tree of db from its root and compare what was found with the record's counts.
 * pgno/off: where the record lies, for messages. */
static int chk_tree_walk(chk *c, chk_tree *t, const chk_db *db, uint64_t pgno, size_t off)
{
    if (db->root == PGNO_NONE) {
        if (db->depth || db->branch || db->leaf || db->overflow || db->entries)
            return chk_fail(c, pgno, off, t, "empty tree with nonzero depth or counts");
        return 0;
    }
    if (db->depth < 1 || db->depth > MAXDEPTH)
        return chk_fail(c, pgno, off + 6, t, "depth %u", db->depth);
    t->depth = db->depth;
    int rc = chk_page(c, t, db->root, 1, NULL, NULL, pgno, off + 40);
    if (rc)
        return rc;
    if (t->branch != db->branch || t->leaf != db->leaf || t->overflow != db->overflow)
        return chk_fail(c, pgno, off, t,
                        "record counts %llu branch, %llu leaf, %llu overflow pages; tree has "
                        "%llu, %llu, %llu",
                        (unsigned long long)db->branch, (unsigned long long)db->leaf,
                        (unsigned long long)db->overflow, (unsigned long long)t->branch,
                        (unsigned long long)t->leaf, (unsigned long long)t->overflow);
    if (t->entries != db->entries)
        return chk_fail(c, pgno, off + 32, t, "record counts %llu entries; tree has %llu",
                        (unsigned long long)db->entries, (unsigned long long)t->entries);
    return 0;
}

/* Meta page i: header and the fields liblmdb reads before it picks one. */
static int chk_meta(chk *c, unsigned i, size_t fo, uint32_t psize)
{
    const uint8_t *p = c->map + fo, *m = p + HDR;
    if (rd64(p) != i || rd16(p + 10) != P_META)
        return chk_fail(c, i, fo, NULL, "meta page header: page %llu, flags 0x%x",
                        (unsigned long long)rd64(p), rd16(p + 10));
    if (rd32(m) != LMDB_MAGIC)
        return chk_fail(c, i, fo + HDR, NULL, "meta magic 0x%08x, not an LMDB file", rd32(m));
    if (rd32(m + 4) != 1)
        return chk_fail(c, i, fo + HDR + 4, NULL, "meta version %u, expected 1", rd32(m + 4));
    /* txn N writes meta N % 2, and a reader with a lock file uses meta (txnid & 1) */
    uint64_t txnid = rd64(m + 128);
    if (txnid != 0 && (txnid & 1) != i)
        return chk_fail(c, i, fo + HDR + 128, NULL, "txnid %llu in meta page %u",
                        (unsigned long long)txnid, i);
    if (rd32(m + 24) != psize)
        return chk_fail(c, i, fo + HDR + 24, NULL, "page size %u, expected %u", rd32(m + 24),
                        psize);
    return 0;
}

static int chk_run(chk *c)
{
    lmdb_check_report *rep = c->rep;
    if (c->len < HDR + METASZ)
        return chk_fail(c, 0, 0, NULL, "file of %zu bytes is too small for LMDB", c->len);
    uint32_t psize = rd32(c->map + HDR + 24);
    if (psize < 512 || psize > 65536 || (psize & (psize - 1)))
        return chk_fail(c, 0, HDR + 24, NULL, "page size %u", psize);
    if (c->len < 2 * (size_t)psize)
        return chk_fail(c, 0, 0, NULL, "file of %zu bytes is shorter than two %u-byte pages",
                        c->len, psize);
    c->psize = psize;
    int rc;
    if ((rc = chk_meta(c, 0, 0, psize)) || (rc = chk_meta(c, 1, psize, psize)))
        return rc;
    /* liblmdb's mdb_env_pick_meta: the larger txnid, page 0 on a tie */
    int pick = rd64(c->map + psize + HDR + 128) > rd64(c->map + HDR + 128);
    size_t mo = (size_t)pick * psize + HDR;
    const uint8_t *m = c->map + mo;
    rep->psize = psize;
    rep->meta = pick;
    rep->txnid = rd64(m + 128);
    c->last_pg = rep->last_pg = rd64(m + 120);
    if (c->last_pg < 1 || c->last_pg >= c->len / psize)
        return chk_fail(c, (uint64_t)pick, mo + 120, NULL,
                        "last page %llu, but the file holds %zu pages",
                        (unsigned long long)c->last_pg, c->len / psize);
    chk_db fdb, mdb;
    db_decode(m + 24, &fdb);
    db_decode(m + 72, &mdb);
    if (!(fdb.flags & MDB_INTEGERKEY) || (fdb.flags & ~(MDB_INTEGERKEY | MDB_FIXEDMAP | 0x4000)))
        return chk_fail(c, (uint64_t)pick, mo + 28, NULL, "free DB flags 0x%x", fdb.flags);
    if (mdb.flags & ~DB_FLAGS)
        return chk_fail(c, (uint64_t)pick, mo + 76, NULL, "main DB flags 0x%x", mdb.flags);

    size_t bytes = (size_t)(c->last_pg / 8 + 1);
    c->seen = calloc(1, bytes);
    c->freed = calloc(1, bytes);
    if (!c->seen || !c->freed)
        return PTB_ENOMEM;
    chk_tree ft = {.kind = T_FREE, .what = "free DB", .flags = fdb.flags, .cmp = CMP_INT};
    if ((rc = chk_tree_walk(c, &ft, &fdb, (uint64_t)pick, mo + 24)))
        return rc;
    chk_tree mt = {.kind = T_MAIN, .what = "main DB", .flags = mdb.flags};
    mt.cmp = cmp_of_keys(mdb.flags);
    if ((rc = chk_tree_walk(c, &mt, &mdb, (uint64_t)pick, mo + 72)))
        return rc;
    rep->entries += mt.entries;
    /* A page listed free in this snapshot must not be in use by it: a writer would reuse it. */
    for (size_t i = 0; i < bytes; i++) {
        if (c->seen[i] & c->freed[i]) {
            uint64_t pg = (uint64_t)i * 8 + (unsigned)__builtin_ctz(c->seen[i] & c->freed[i]);
            return chk_fail(c, pg, (size_t)(pg * psize), NULL,
                            "page is in use and also listed in the free DB");
        }
    }
    return 0;
}

int lmdb_check_mem(const void *map, size_t len, lmdb_check_report *rep)
{
    if (!map || !rep)
        return PTB_EINVAL;
    memset(rep, 0, sizeof *rep);
    rep->meta = -1;
    chk c = {.map = map, .len = len, .rep = rep};
    int rc = chk_run(&c);
    free(c.seen);
    free(c.freed);
    if (rc == PTB_ENOMEM)
        snprintf(rep->first, sizeof rep->first, "out of memory for the page bitmaps");
    return rc;
}

int lmdb_check_file(const char *path, lmdb_check_report *rep)
{
    if (!path || !rep)
        return PTB_EINVAL;
    memset(rep, 0, sizeof *rep);
    rep->meta = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(rep->first, sizeof rep->first, "%s: %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        snprintf(rep->first, sizeof rep->first, "%s: %s", path, strerror(e));
        return -e;
    }
    size_t len = (size_t)st.st_size;
    if (len < HDR + METASZ) { /* mmap of 0 bytes fails; let the check say what is wrong */
        close(fd);
        static const uint8_t none[HDR + METASZ];
        return lmdb_check_mem(none, len, rep);
    }
    void *map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) {
        snprintf(rep->first, sizeof rep->first, "%s: mmap: %s", path, strerror(e));
        return -e;
    }
    int rc = lmdb_check_mem(map, len, rep);
    munmap(map, len);
    return rc;
}
