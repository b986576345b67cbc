/* Internals of ptb audit's leakage detector shared by audit_leak.c (lineage, findings,
 * audit_leak()) and audit_leak_events.c (the run's events read once: processes, files, network,
 * tool calls; the content units scanned). Not for use outside them; the design is in
 * audit_leak.c's top comment. */
#ifndef PTB_AUDIT_LEAK_RUN_H
#define PTB_AUDIT_LEAK_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "audit_leak_int.h"

#define C(x) PTB__V1__EVENT__BODY_##x
#define LK_DEPTH 4          /* levels of lineage followed */
#define LK_SEQS_MAX 32      /* evidence seqs of one finding */
#define LK_TEXT_MAX 4096    /* bytes of a summary or matched text */
#define LK_TCALL_MAX 65536u /* tool calls' texts kept for the lineage by text (4 KiB each) */

enum { U_FILE, U_TOOL, U_HTTP }; /* a content unit's kind */

typedef struct sb {
    char *s;
    size_t n, cap;
    bool oom;
} sb;

/* u64 -> u32 map, open addressing; key 0 is reserved (callers map 0 to 1). */
typedef struct u64map {
    uint64_t *k;
    uint32_t *v;
    size_t cap, n;
} u64map;

typedef struct lk_proc {
    uint64_t exec_id, parent, seq;
    char *cmd; /* argv joined, at most 200 bytes */
    uint64_t net_seq;
    char *host;
    bool host_is_name;
    uint64_t train_seq; /* the proc.exec or file.open that says it trains; 0: not training */
    int32_t first_write;
} lk_proc;

typedef struct lk_read {
    uint64_t seq, exec;
    int32_t next; /* of the same path */
} lk_read;

typedef struct lk_write {
    uint64_t seq, exec;
    uint32_t path;
    int32_t next_exec; /* of the same exec */
} lk_write;

typedef struct lk_rename {
    uint64_t seq, exec;
    uint32_t to;
    int32_t next; /* of the same old path */
} lk_rename;

typedef struct lk_path {
    char *path;
    int32_t first_read, first_rename;
    int32_t unit;    /* its content unit, -1 */
    bool split_copy; /* written or read with the test split's SHA-256 */
} lk_path;

typedef struct lk_unit {
    int kind;
    int32_t path;     /* U_FILE */
    uint64_t seq;     /* the write (or tool call, result, HTTP event) of the best version */
    uint64_t exec;    /* its writer (0: the agent's Write tool, or none) */
    uint64_t seqs[8]; /* further evidence events */
    size_t n_seqs;
    uint8_t sha[32];
    bool has_sha;
    char call_id[64]; /* U_TOOL */
    bool by_tool;     /* U_FILE: the best version came from a Write-like tool call */
    lk_res res;
} lk_unit;

typedef struct lk_tcall {
    uint64_t seq;
    char *text; /* a tool input (for imports' lineage), at most 4 KiB: every call's when the store
                 * has no processes, else only those naming a training word */
    bool train; /* it names a training word */
} lk_tcall;

typedef struct lk_fetch {
    uint64_t seq, exec;
    char call_id[64];
    char what[160];
} lk_fetch;

typedef struct leak {
    audit_run *r;
    audit_report *rep;
    lk_index ix;
    lk_scan sc;
    bool have_ix;
    lk_proc *proc;
    size_t nproc, cproc;
    u64map proc_map; /* exec_id -> proc */
    lk_path *path;
    size_t npath, cpath;
    u64map path_map; /* fnv(path) -> path */
    lk_read *read;
    size_t nread, cread;
    lk_write *write;
    size_t nwrite, cwrite;
    lk_rename *ren;
    size_t nren, cren;
    lk_unit *unit;
    size_t nunit, cunit;
    u64map blob_map; /* blob sha prefix -> its result in bres */
    lk_res *bres;
    size_t nbres, cbres;
    u64map agent_map; /* exec_ids of the agent CLI (parents of the tool calls' processes) */
    lk_tcall *tcall;
    size_t ntcall, ctcall;
    uint64_t tcall_over; /* texts past LK_TCALL_MAX, not kept */
    lk_fetch *fetch;
    size_t nfetch, cfetch;
    u64map result_map; /* fnv(call_id) -> index in results */
    struct {
        uint64_t seq;
        uint64_t execs[8];
        size_t n;
    } * results;
    size_t nresults, cresults;
    struct {
        uint64_t seq, exec;
        int32_t result;
        int32_t path;
        bool exact;
    } * split_opens;
    size_t nsplit, csplit;
    uint64_t blobs, blob_bytes, texts, missing, uncaptured;
    int rc;
} leak;

/* audit_leak_events.c: small helpers */
void sb_printf(sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3))); /* append */
void sb_shell(sb *b, const char *s);   /* append s quoted for a shell */
uint64_t fnv(const void *p, size_t n); /* FNV-1a of p[0..n) */
bool u64map_get(const u64map *m, uint64_t key, uint32_t *val);
void u64map_free(u64map *m);
bool is_agent(leak *L, uint64_t exec);        /* exec is the agent CLI (a tool's parent) */
lk_proc *proc_get(leak *L, uint64_t exec_id); /* NULL: not a process of the run */
const char *base_name(const char *p);         /* the part after the last '/' */

/* audit_leak_events.c: the run's events into L (each 0 or a store / memory error) */
int collect_procs(leak *L); /* proc.exec: commands, training processes, test-split fetches */
int collect_net(leak *L);   /* the network events of each process */
int collect_files(leak *L); /* file opens, reads, writes, renames; the test split opened */
/* ... and the content units scanned against the split (audit_leak_scan.c) */
int scan_files(leak *L); /* the captured blobs of files written */
int scan_tools(leak *L); /* tool calls' inputs and results */

#endif
