/* Internals of the filter language shared by the lexer, parser, evaluator and query planner.
 * Not for use outside forensics/. */
#ifndef PTB_FILTER_AST_H
#define PTB_FILTER_AST_H

#include "filter.h"

/* ------------------------------------------------------------------ fields */

typedef enum filter_ftype {
    FT_UINT,   /* unsigned integer */
    FT_INT,    /* signed integer */
    FT_DOUBLE, /* floating point */
    FT_BOOL,   /* true/false, also 1/0 */
    FT_STR,    /* text */
    FT_HEX,    /* bytes, compared as lower-case hex text */
    FT_TIME,   /* ns since the epoch; literals may be ISO-8601 times */
    FT_TYPE,   /* event type, compared as its dotted name */
    FT_SOURCE, /* Source enum, compared as its short name ("tracer") */
} filter_ftype;

typedef enum filter_field_id {
    FF_GENERIC = 0, /* <type>.<proto field>[.<sub field>...] */
    FF_EVT_SEQ,
    FF_EVT_SUB,
    FF_EVT_TIME,
    FF_EVT_MONO,
    FF_EVT_TYPE,
    FF_EVT_SOURCE,
    FF_PROC_EXEC_ID,
    FF_PROC_TID,
    FF_PROC_PID,
    FF_PROC_PPID,
    FF_PROC_EXE,
    FF_PROC_CMDLINE,
    FF_PROC_CWD,
    FF_PROC_PARENT_EXE,
    FF_PROC_PARENT_EXEC_ID,
    FF_FILE_PATH,
    FF_FILE_SHA256,
    FF_FILE_BYTES,
    FF_FILE_SIZE,
    FF_NET_HOST,
    FF_NET_IP,
    FF_NET_PORT,
    FF_NET_PROTO,
    FF_TOOL_NAME,
    FF_TOOL_INPUT,
    FF_TOOL_CALL_ID,
    FF_GPU_KERNEL,
    FF_GPU_DEVICE,
} filter_field_id;

#define FILTER_PATH_MAX 6

typedef struct filter_field {
    filter_field_id id;
    filter_ftype type;
    char name[80];
    /* Body cases that can carry a value of this field; bit c of mask[c / 64]. Fields of the
     * envelope or of the process table have every bit set (FILTER_MASK_ALL). */
    uint64_t mask[2];
    bool procs; /* resolved through the process table */
    /* FF_GENERIC: the body case and the chain of field descriptors below the body. */
    uint32_t body_case;
    const ProtobufCFieldDescriptor *path[FILTER_PATH_MAX];
    unsigned depth;
} filter_field;

static inline bool filter_mask_has(const uint64_t mask[2], uint32_t body_case)
{
    return body_case >= 128 || (mask[body_case / 64] >> (body_case % 64)) & 1;
}

static inline bool filter_mask_all(const uint64_t mask[2])
{
    return mask[0] == ~(uint64_t)0 && mask[1] == ~(uint64_t)0;
}

/* Resolve a field name (len bytes). Returns 0 and fills *out, or PTB_ENOTFOUND. */
int filter_field_lookup(const char *name, size_t len, filter_field *out);

/* Short name of a Source value ("tracer"); "unknown" when out of range. Static storage. */
const char *filter_source_name(int source);
/* Source value of a short name (case-insensitive), -1 when unknown. */
int filter_source_from_name(const char *s, size_t len);

/* One value of a field on one event. */
typedef struct filter_val {
    const char *s; /* text kinds: borrowed from the event or the context scratch */
    size_t n;
    __int128 i; /* integer kinds (UINT INT BOOL TIME) */
    double d;   /* FT_DOUBLE */
} filter_val;

/* Visitor: return true to stop (a value matched). */
typedef bool (*filter_val_fn)(void *arg, const filter_field *f, const filter_val *v);

enum { FILTER_VISIT_DONE = 0, FILTER_VISIT_STOPPED = 1, FILTER_VISIT_UNKNOWN = 2 };

/* Call fn for every value of field f on ev. Returns FILTER_VISIT_STOPPED when fn returned true,
 * FILTER_VISIT_UNKNOWN when ev is light and the body is needed, FILTER_VISIT_DONE otherwise
 * (*count = values visited; 0 means the field is absent). */
int filter_field_visit(const filter_field *f, const ptb_event *ev, filter_ctx *cx, filter_val_fn fn,
                       void *arg, size_t *count);

/* ------------------------------------------------------------------ the tree */

typedef enum filter_op {
    FOP_EQ,
    FOP_NE,
    FOP_LT,
    FOP_LE,
    FOP_GT,
    FOP_GE,
    FOP_CONTAINS,
    FOP_ICONTAINS,
    FOP_STARTSWITH,
    FOP_ENDSWITH,
    FOP_GLOB,
    FOP_IN,
    FOP_EXISTS,
} filter_op;

const char *filter_op_name(filter_op op);

typedef struct filter_lit {
    char *text; /* owned, NUL-terminated, unescaped; lower-cased for FT_HEX and icontains */
    size_t len;
    __int128 i; /* integer kinds: the parsed value */
    double d;   /* FT_DOUBLE */
} filter_lit;

typedef enum filter_kind { FN_TRUE, FN_AND, FN_OR, FN_NOT, FN_CMP } filter_kind;

typedef struct filter_node filter_node;
struct filter_node {
    filter_kind kind;
    int column; /* 1-based column of the field (CMP) or keyword */
    /* FN_AND, FN_OR: n >= 2 children; FN_NOT: 1 child */
    filter_node **kids; /* owned */
    size_t nkids;
    /* FN_CMP */
    filter_field field;
    filter_op op;
    filter_lit *lits; /* owned; 1 for a comparison, >= 1 for in, 0 for exists */
    size_t nlits;
};

struct filter {
    filter_node *root; /* owned */
};

void filter_node_free(filter_node *n);

/* Build nodes (for the query CLI: --since, --until, --tree). NULL on allocation failure.
 * filter_node_cmp_u64 makes `FIELD OP v0` (n == 1) or `FIELD in (v0, ...)` (n > 1) for an
 * integer field; filter_node_and takes ownership of a and b. */
filter_node *filter_node_cmp_int(const char *field, filter_op op, const int64_t *v, size_t n);
filter_node *filter_node_and(filter_node *a, filter_node *b);

/* AND an extra condition into f (takes ownership of n). */
void filter_and(filter *f, filter_node *n);

/* Print one node (canonical form) into buf; returns the length needed. */
size_t filter_node_print(const filter_node *n, char *buf, size_t cap);

/* Test one value against a comparison node (op and literals). */
bool filter_cmp_value(const filter_node *n, const filter_val *v);

/* Evaluate one node. */
int filter_node_eval(const filter_node *n, const ptb_event *ev, filter_ctx *cx);

/* ------------------------------------------------------------------ lexer */

typedef enum filter_tok_kind {
    TOK_END,
    TOK_WORD,   /* bare word (field, keyword, value) */
    TOK_STRING, /* quoted string */
    TOK_OP,     /* = == != < <= > >= */
    TOK_LPAREN,
    TOK_RPAREN,
    TOK_COMMA,
    TOK_ERROR,
} filter_tok_kind;

typedef struct filter_tok {
    filter_tok_kind kind;
    int column;       /* 1-based */
    const char *text; /* into the source (raw token text) */
    size_t len;
    char *value; /* TOK_STRING: unescaped, owned by the lexer (freed by filter_lex_free) */
    size_t vlen;
    const char *err; /* TOK_ERROR: message (static) */
} filter_tok;

typedef struct filter_lex {
    const char *src;
    size_t pos, len;
    char *buf; /* owned: unescaped value of the last string token */
    size_t cap;
} filter_lex;

void filter_lex_init(filter_lex *lx, const char *src);
/* Next token into *t; t->value borrowed until the next call. Returns 0 or PTB_ENOMEM. */
int filter_lex_next(filter_lex *lx, filter_tok *t);
void filter_lex_free(filter_lex *lx);

/* ------------------------------------------------------------------ times (query_time.c) */

/* Parse an absolute time: ISO-8601/RFC 3339 ("2026-11-26T10:00:00Z", fraction and +hh:mm
 * offset optional; no zone means UTC; 'T' may be a space) or integer ns since the epoch.
 * Returns 0 or PTB_EINVAL. */
int query_time_parse(const char *s, size_t len, int64_t *ns);

/* Parse a duration: "+2h", "90s", "1h30m", "500ms", "10us", "7ns", "1d"; the leading '+' is
 * optional. Returns 0 or PTB_EINVAL. */
int query_duration_parse(const char *s, size_t len, int64_t *ns);

/* Format ns since the epoch as "2026-11-26T10:00:00.123Z" (digits = 3 ms, 9 ns). */
void query_time_format(int64_t ns, int digits, char *buf, size_t cap);

#endif
