/* The ptb filter language: a sysdig-like boolean expression over event fields.
 *
 *   evt.type = file.write and file.path startswith "/data/" and not proc.exe glob "*python*"
 *
 * Grammar (keywords are case-insensitive):
 *   expr    := or
 *   or      := and ( "or" and )*
 *   and     := unary ( "and" unary )*
 *   unary   := "not" unary | "(" expr ")" | cmp
 *   cmp     := FIELD "exists" | FIELD OP value | FIELD "in" "(" value ( "," value )* ")"
 *   OP      := = == != < <= > >= contains icontains startswith endswith glob
 *   value   := 'single' | "double" (backslash escapes: \\ \' \" \n \t \xHH) | bare word | number
 *
 * Fields are listed in docs/query-language.md (filter_field_foreach() gives the same list).
 * Semantics: a field may have several values (net.ip of a connect has the local and the remote
 * address); a comparison is true when ANY value satisfies it. A field the event does not have
 * makes every comparison false (and `exists` false); `not` negates the whole comparison.
 *
 * Evaluation is three-valued so that the scanner can decide on the envelope alone (seq, time,
 * type, source, exec_id, tid) before decoding the body: an event whose body pointer is NULL
 * ("light" event, body_case set) gives FILTER_UNKNOWN where the body would be needed. */
#ifndef PTB_FILTER_H
#define PTB_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "event_type.h"

typedef struct filter filter;

/* A parse error: 1-based column (byte offset + 1) of the offending token and a message. */
typedef struct filter_error {
    int column;
    char msg[240];
} filter_error;

/* Parse text (NUL-terminated). An empty or all-blank text matches every event.
 * Returns 0 with *out set (caller frees with filter_free()), PTB_EPARSE with *err filled, or
 * PTB_ENOMEM. err may be NULL. */
int filter_parse(const char *text, filter **out, filter_error *err);
void filter_free(filter *f);

/* Canonical text of the filter into buf (always NUL-terminated when cap > 0): fully
 * parenthesised, keywords lower case, values double-quoted. Returns the length it needs (like
 * snprintf). */
size_t filter_print(const filter *f, char *buf, size_t cap);

/* argv of a proc.exec joined by single spaces into out (cap bytes, NUL-terminated, cut at cap);
 * returns the length the whole line needs (without the NUL), like snprintf. */
size_t filter_cmdline_join(const Ptb__V1__ProcExec *pe, char *out, size_t cap);

/* True when the filter uses fields resolved through the process table (proc.exe, proc.cmdline,
 * proc.cwd, proc.ppid, proc.parent_exe, proc.parent_exec_id, proc.pid of bodies without a pid). */
bool filter_needs_procs(const filter *f);

/* One process as the process table knows it (from its proc.exec event). */
typedef struct filter_proc {
    uint64_t exec_id;
    uint64_t parent_exec_id;
    int32_t pid, ppid;
    const char *exe;     /* borrowed from the table, NUL-terminated */
    const char *cmdline; /* argv joined by single spaces */
    const char *cwd;
} filter_proc;

/* Look a process up by exec_id; NULL when unknown. */
typedef const filter_proc *(*filter_proc_fn)(void *arg, uint64_t exec_id);

/* Per-thread evaluation state. */
typedef struct filter_ctx {
    filter_proc_fn proc; /* may be NULL: proc.* fields then come from proc.exec bodies only */
    void *proc_arg;
    char *scratch; /* owned, grown as needed (hex of bytes fields, joined argv) */
    size_t scratch_cap;
    bool oom; /* set when the scratch buffer could not grow (comparisons were false) */
} filter_ctx;

void filter_ctx_init(filter_ctx *cx, filter_proc_fn proc, void *proc_arg);
void filter_ctx_free(filter_ctx *cx);

enum { FILTER_FALSE = 0, FILTER_TRUE = 1, FILTER_UNKNOWN = 2 };

/* Evaluate f on ev (borrowed). Returns FILTER_TRUE/FILTER_FALSE, or FILTER_UNKNOWN when ev is a
 * light event (body not decoded) and the answer depends on the body. */
int filter_eval(const filter *f, const ptb_event *ev, filter_ctx *cx);

/* Every named field with its type and a one-line description (for --help tests and docs). */
void filter_field_foreach(void (*fn)(void *arg, const char *name, const char *type,
                                     const char *doc),
                          void *arg);

/* Match text (len bytes) against a shell glob (* ? [abc] [a-z] [!x], backslash escapes). */
bool filter_glob_match(const char *pat, size_t plen, const char *s, size_t n);

#endif
