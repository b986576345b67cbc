/* ptb error codes: names and messages. See ptb_error.h. */
#include "ptb_error.h"

#include <errno.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
    int code;
    const char *name;
    const char *msg;
} ptb_codes[] = {
    {PTB_OK, "PTB_OK", "success"},
    {PTB_ENOTFOUND, "PTB_ENOTFOUND", "not found"},
    {PTB_ECORRUPT, "PTB_ECORRUPT", "store data is corrupt"},
    {PTB_EINVAL, "PTB_EINVAL", "invalid argument"},
    {PTB_ENOMEM, "PTB_ENOMEM", "out of memory"},
    {PTB_ETOOBIG, "PTB_ETOOBIG", "over the size cap"},
    {PTB_EBUDGET, "PTB_EBUDGET", "blob budget spent"},
    {PTB_ECLOSED, "PTB_ECLOSED", "store is stopped"},
    {PTB_ESCHEMA, "PTB_ESCHEMA", "incompatible schema version"},
    {PTB_ECHAIN, "PTB_ECHAIN", "hash chain does not verify"},
    {PTB_EPARSE, "PTB_EPARSE", "syntax error"},
    {PTB_ENOSPC, "PTB_ENOSPC", "disk full, store stopped cleanly"},
    {PTB_ENOSTORE, "PTB_ENOSTORE", "not a ptb store"},
    {PTB_EEXIST, "PTB_EEXIST", "already exists"},
    {PTB_EREADONLY, "PTB_EREADONLY", "store is read-only"},
    {PTB_ELOCKED, "PTB_ELOCKED", "store is locked by another writer"},
    {PTB_EIO, "PTB_EIO", "I/O error"},
};

/* The symbolic name of an errno value ("ECONNREFUSED"), from glibc; "errno" for one it does
 * not name. */
static const char *ptb_errno_name(int e)
{
    const char *n = strerrorname_np(e);
    return n ? n : "errno";
}

const char *ptb_strerror(int code)
{
    for (size_t i = 0; i < sizeof ptb_codes / sizeof ptb_codes[0]; i++)
        if (ptb_codes[i].code == code)
            return ptb_codes[i].msg;
    if (code >= MDB_KEYEXIST && code <= MDB_LAST_ERRCODE)
        return mdb_strerror(code);
    if (code < 0 && code > -4096)
        return strerror(-code);
    return "unknown error";
}

const char *ptb_errname(int code)
{
    for (size_t i = 0; i < sizeof ptb_codes / sizeof ptb_codes[0]; i++)
        if (ptb_codes[i].code == code)
            return ptb_codes[i].name;
    switch (code) {
    case MDB_KEYEXIST: return "MDB_KEYEXIST";
    case MDB_NOTFOUND: return "MDB_NOTFOUND";
    case MDB_CORRUPTED: return "MDB_CORRUPTED";
    case MDB_PANIC: return "MDB_PANIC";
    case MDB_VERSION_MISMATCH: return "MDB_VERSION_MISMATCH";
    case MDB_INVALID: return "MDB_INVALID";
    case MDB_MAP_FULL: return "MDB_MAP_FULL";
    case MDB_DBS_FULL: return "MDB_DBS_FULL";
    case MDB_READERS_FULL: return "MDB_READERS_FULL";
    case MDB_TXN_FULL: return "MDB_TXN_FULL";
    case MDB_PAGE_NOTFOUND: return "MDB_PAGE_NOTFOUND";
    case MDB_MAP_RESIZED: return "MDB_MAP_RESIZED";
    case MDB_INCOMPATIBLE: return "MDB_INCOMPATIBLE";
    case MDB_BAD_TXN: return "MDB_BAD_TXN";
    default: break;
    }
    if (code < 0 && code > -4096)
        return ptb_errno_name(-code);
    return "UNKNOWN";
}

int ptb_errf(ptb_errbuf *eb, int code, const char *fmt, ...)
{
    if (eb) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(eb->msg, sizeof eb->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}
