/* Parser of the filter language: tokens (filter_lex.c) to a tree (filter_ast.h).
 *
 * Recursive descent over the grammar in filter.h, with a depth limit so that hostile input
 * ("((((…" or "not not not …") cannot exhaust the stack. Literals are checked against the field
 * type here, once, so that evaluation never parses text: numbers for integer fields, times for
 * evt.time, known names for evt.type and evt.source with = != in. AND/OR chains are flattened
 * into n-ary nodes, which is what the planner wants. Every error names the 1-based column of
 * the token it is about. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "filter_ast.h"
#include "ptb_error.h"

#define PARSE_DEPTH_MAX 200

typedef struct parser {
    filter_lex lx;
    filter_tok tok; /* current token */
    filter_error *err;
    int depth;
    int rc; /* first error */
} parser;

static const char *const op_names[] = {
    [FOP_EQ] = "=",
    [FOP_NE] = "!=",
    [FOP_LT] = "<",
    [FOP_LE] = "<=",
    [FOP_GT] = ">",
    [FOP_GE] = ">=",
    [FOP_CONTAINS] = "contains",
    [FOP_ICONTAINS] = "icontains",
    [FOP_STARTSWITH] = "startswith",
    [FOP_ENDSWITH] = "endswith",
    [FOP_GLOB] = "glob",
    [FOP_IN] = "in",
    [FOP_EXISTS] = "exists",
};

const char *filter_op_name(filter_op op)
{
    return (unsigned)op < sizeof op_names / sizeof op_names[0] ? op_names[op] : "?";
}

__attribute__((format(printf, 3, 4))) static int parse_fail(parser *p, int column, const char *fmt,
                                                            ...)
{
    if (p->rc)
        return p->rc;
    p->rc = PTB_EPARSE;
    if (p->err) {
        p->err->column = column;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err->msg, sizeof p->err->msg, fmt, ap);
        va_end(ap);
    }
    return p->rc;
}

static int parse_oom(parser *p)
{
    if (!p->rc) {
        p->rc = PTB_ENOMEM;
        if (p->err) {
            p->err->column = 0;
            snprintf(p->err->msg, sizeof p->err->msg, "out of memory");
        }
    }
    return p->rc;
}

static int parse_advance(parser *p)
{
    if (filter_lex_next(&p->lx, &p->tok) != 0)
        return parse_oom(p);
    if (p->tok.kind == TOK_ERROR)
        return parse_fail(p, p->tok.column, "%s", p->tok.err);
    return 0;
}

static bool tok_is_kw(const filter_tok *t, const char *kw)
{
    size_t n = strlen(kw);
    return t->kind == TOK_WORD && t->len == n && strncasecmp(t->text, kw, n) == 0;
}

/* Short printable rendering of a token for messages. */
static void tok_show(const filter_tok *t, char *buf, size_t cap)
{
    if (t->kind == TOK_END) {
        snprintf(buf, cap, "end of filter");
        return;
    }
    int n = t->len > 40 ? 40 : (int)t->len;
    snprintf(buf, cap, "'%.*s%s'", n, t->text, t->len > 40 ? "..." : "");
}

void filter_node_free(filter_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nkids; i++)
        filter_node_free(n->kids[i]);
    free(n->kids);
    for (size_t i = 0; i < n->nlits; i++)
        free(n->lits[i].text);
    free(n->lits);
    free(n);
}

void filter_free(filter *f)
{
    if (!f)
        return;
    filter_node_free(f->root);
    free(f);
}

/* Make an AND/OR of a and b, flattening children of the same kind. Takes ownership of a and b
 * (freed on failure). */
static filter_node *node_join(filter_kind kind, filter_node *a, filter_node *b, int column)
{
    if (!a || !b) {
        filter_node_free(a);
        filter_node_free(b);
        return NULL;
    }
    size_t na = a->kind == kind ? a->nkids : 1, nb = b->kind == kind ? b->nkids : 1;
    filter_node **kids = malloc((na + nb) * sizeof *kids);
    filter_node *n = calloc(1, sizeof *n);
    if (!kids || !n) {
        free(kids);
        free(n);
        filter_node_free(a);
        filter_node_free(b);
        return NULL;
    }
    size_t k = 0;
    filter_node *parts[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        filter_node *x = parts[i];
        if (x->kind == kind) {
            for (size_t j = 0; j < x->nkids; j++)
                kids[k++] = x->kids[j];
            x->nkids = 0;
            filter_node_free(x);
        } else {
            kids[k++] = x;
        }
    }
    n->kind = kind;
    n->column = column;
    n->kids = kids;
    n->nkids = k;
    return n;
}

filter_node *filter_node_and(filter_node *a, filter_node *b)
{
    if (a && a->kind == FN_TRUE) {
        filter_node_free(a);
        return b;
    }
    if (b && b->kind == FN_TRUE) {
        filter_node_free(b);
        return a;
    }
    return node_join(FN_AND, a, b, a ? a->column : 0);
}

void filter_and(filter *f, filter_node *n)
{
    f->root = filter_node_and(f->root, n);
}

/* ------------------------------------------------------------------ literals */

static bool lit_int(const char *s, size_t len, bool is_signed, __int128 *out)
{
    if (len == 0 || len > 40)
        return false;
    char tmp[48];
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    const char *p = tmp;
    bool neg = false;
    if (*p == '-' || *p == '+') {
        neg = *p == '-';
        p++;
    }
    if (!isdigit((unsigned char)*p))
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(p, &end, 0);
    if (errno || *end)
        return false;
    if (neg) {
        if (!is_signed || v > (unsigned long long)INT64_MAX + 1)
            return false;
        *out = -(__int128)v;
    } else {
        if (is_signed && v > INT64_MAX)
            return false;
        *out = v;
    }
    return true;
}

static const char *ftype_name(filter_ftype t)
{
    switch (t) {
    case FT_UINT:
    case FT_INT: return "a number";
    case FT_DOUBLE: return "a decimal number";
    case FT_BOOL: return "true or false";
    case FT_TIME: return "a time (ns since the epoch or ISO-8601 like 2026-11-26T10:00:00Z)";
    default: return "text";
    }
}

static bool ftype_numeric(filter_ftype t)
{
    return t == FT_UINT || t == FT_INT || t == FT_DOUBLE || t == FT_BOOL || t == FT_TIME;
}

/* Convert the current token into a literal of node n; reports errors at the token. */
static int parse_lit(parser *p, filter_node *n, filter_lit *lit)
{
    const filter_tok *t = &p->tok;
    const char *s = t->kind == TOK_STRING ? t->value : t->text;
    size_t len = t->kind == TOK_STRING ? t->vlen : t->len;
    lit->text = malloc(len + 1);
    if (!lit->text)
        return parse_oom(p);
    memcpy(lit->text, s, len);
    lit->text[len] = '\0';
    lit->len = len;
    const filter_field *f = &n->field;
    bool ok = true;
    switch (f->type) {
    case FT_UINT:
    case FT_INT: ok = lit_int(s, len, f->type == FT_INT, &lit->i); break;
    case FT_TIME: {
        int64_t ns;
        ok = lit_int(s, len, true, &lit->i);
        if (!ok && query_time_parse(s, len, &ns) == 0) {
            lit->i = ns;
            ok = true;
        }
        break;
    }
    case FT_BOOL:
        if ((len == 4 && strncasecmp(s, "true", 4) == 0) || (len == 1 && s[0] == '1'))
            lit->i = 1;
        else if ((len == 5 && strncasecmp(s, "false", 5) == 0) || (len == 1 && s[0] == '0'))
            lit->i = 0;
        else
            ok = false;
        break;
    case FT_DOUBLE: {
        char *end;
        errno = 0;
        lit->d = strtod(lit->text, &end);
        ok = len > 0 && *end == '\0' && errno == 0;
        break;
    }
    case FT_HEX:
        for (size_t i = 0; i < len; i++)
            lit->text[i] = (char)tolower((unsigned char)lit->text[i]);
        break;
    case FT_TYPE:
        if (n->op == FOP_EQ || n->op == FOP_NE || n->op == FOP_IN) {
            lit->i = event_type_from_name(s, len);
            if (lit->i == 0)
                return parse_fail(p, t->column, "unknown event type '%.*s'",
                                  (int)(len > 60 ? 60 : len), s);
        }
        break;
    case FT_SOURCE:
        if (n->op == FOP_EQ || n->op == FOP_NE || n->op == FOP_IN) {
            int src = filter_source_from_name(s, len);
            if (src < 0)
                return parse_fail(p, t->column,
                                  "unknown source '%.*s' (tracer, pcap, gpu, agent, runner, eval, "
                                  "import, store)",
                                  (int)(len > 60 ? 60 : len), s);
            lit->i = src;
        }
        break;
    case FT_STR: break;
    }
    if (!ok)
        return parse_fail(p, t->column, "'%.*s' is not %s (the type of %s)",
                          (int)(len > 60 ? 60 : len), s, ftype_name(f->type), f->name);
    if (n->op == FOP_ICONTAINS)
        for (size_t i = 0; i < len; i++)
            lit->text[i] = (char)tolower((unsigned char)lit->text[i]);
    return 0;
}

static bool tok_is_value(const filter_tok *t)
{
    return t->kind == TOK_WORD || t->kind == TOK_STRING;
}

/* ------------------------------------------------------------------ grammar */

static filter_node *parse_or(parser *p);

static const struct {
    const char *word;
    filter_op op;
} word_ops[] = {
    {"contains", FOP_CONTAINS}, {"icontains", FOP_ICONTAINS}, {"startswith", FOP_STARTSWITH},
    {"endswith", FOP_ENDSWITH}, {"glob", FOP_GLOB},           {"in", FOP_IN},
    {"exists", FOP_EXISTS},
};

static bool parse_op(const filter_tok *t, filter_op *op)
{
    if (t->kind == TOK_OP) {
        char a = t->text[0], b = t->len > 1 ? t->text[1] : '\0';
        if (a == '=')
            *op = FOP_EQ;
        else if (a == '!')
            *op = FOP_NE;
        else if (a == '<')
            *op = b == '=' ? FOP_LE : FOP_LT;
        else
            *op = b == '=' ? FOP_GE : FOP_GT;
        return true;
    }
    for (size_t i = 0; i < sizeof word_ops / sizeof word_ops[0]; i++)
        if (tok_is_kw(t, word_ops[i].word)) {
            *op = word_ops[i].op;
            return true;
        }
    return false;
}

static filter_node *parse_cmp(parser *p)
{
    char show[64];
    if (p->tok.kind != TOK_WORD) {
        tok_show(&p->tok, show, sizeof show);
        parse_fail(p, p->tok.column, "expected a field name, found %s", show);
        return NULL;
    }
    filter_node *n = calloc(1, sizeof *n);
    if (!n) {
        parse_oom(p);
        return NULL;
    }
    n->kind = FN_CMP;
    n->column = p->tok.column;
    if (filter_field_lookup(p->tok.text, p->tok.len, &n->field) != 0) {
        tok_show(&p->tok, show, sizeof show);
        parse_fail(p, p->tok.column, "unknown field %s (the fields are listed in ptb query --help)",
                   show);
        goto fail;
    }
    if (parse_advance(p))
        goto fail;
    if (!parse_op(&p->tok, &n->op)) {
        tok_show(&p->tok, show, sizeof show);
        parse_fail(p, p->tok.column, "expected an operator after '%s', found %s", n->field.name,
                   show);
        goto fail;
    }
    filter_tok optok = p->tok;
    if (ftype_numeric(n->field.type) && n->op >= FOP_CONTAINS && n->op <= FOP_GLOB) {
        parse_fail(p, optok.column, "'%s' needs a text field; %s is %s", filter_op_name(n->op),
                   n->field.name, ftype_name(n->field.type));
        goto fail;
    }
    if (parse_advance(p))
        goto fail;
    if (n->op == FOP_EXISTS)
        return n;
    if (n->op == FOP_IN) {
        if (p->tok.kind != TOK_LPAREN) {
            parse_fail(p, p->tok.column, "expected '(' after 'in'");
            goto fail;
        }
        if (parse_advance(p))
            goto fail;
        size_t cap = 0;
        for (;;) {
            if (!tok_is_value(&p->tok)) {
                parse_fail(p, p->tok.column, "expected a value in the list of 'in'");
                goto fail;
            }
            if (n->nlits == cap) {
                cap = cap ? cap * 2 : 4;
                filter_lit *nl = realloc(n->lits, cap * sizeof *nl);
                if (!nl) {
                    parse_oom(p);
                    goto fail;
                }
                n->lits = nl;
            }
            memset(&n->lits[n->nlits], 0, sizeof n->lits[0]);
            n->nlits++;
            if (parse_lit(p, n, &n->lits[n->nlits - 1]) || parse_advance(p))
                goto fail;
            if (p->tok.kind == TOK_RPAREN)
                break;
            if (p->tok.kind != TOK_COMMA) {
                parse_fail(p, p->tok.column, "expected ',' or ')' in the list of 'in'");
                goto fail;
            }
            if (parse_advance(p))
                goto fail;
        }
        if (parse_advance(p))
            goto fail;
        return n;
    }
    if (!tok_is_value(&p->tok)) {
        parse_fail(p, p->tok.column, "expected a value after '%.*s'", (int)optok.len, optok.text);
        goto fail;
    }
    n->lits = calloc(1, sizeof *n->lits);
    if (!n->lits) {
        parse_oom(p);
        goto fail;
    }
    n->nlits = 1;
    if (parse_lit(p, n, &n->lits[0]) || parse_advance(p))
        goto fail;
    return n;
fail:
    filter_node_free(n);
    return NULL;
}

static filter_node *parse_unary(parser *p)
{
    if (++p->depth > PARSE_DEPTH_MAX) {
        parse_fail(p, p->tok.column, "filter nested too deeply (more than %d levels)",
                   PARSE_DEPTH_MAX);
        return NULL;
    }
    filter_node *r = NULL;
    if (tok_is_kw(&p->tok, "not")) {
        int col = p->tok.column;
        if (parse_advance(p))
            goto out;
        filter_node *k = parse_unary(p);
        if (!k)
            goto out;
        r = calloc(1, sizeof *r);
        filter_node **kids = malloc(sizeof *kids);
        if (!r || !kids) {
            free(r);
            free(kids);
            filter_node_free(k);
            r = NULL;
            parse_oom(p);
            goto out;
        }
        r->kind = FN_NOT;
        r->column = col;
        r->kids = kids;
        r->kids[0] = k;
        r->nkids = 1;
    } else if (p->tok.kind == TOK_LPAREN) {
        int col = p->tok.column;
        if (parse_advance(p))
            goto out;
        r = parse_or(p);
        if (!r)
            goto out;
        if (p->tok.kind != TOK_RPAREN) {
            char show[64];
            tok_show(&p->tok, show, sizeof show);
            parse_fail(p, p->tok.column, "expected ')' to close the '(' at column %d, found %s",
                       col, show);
            filter_node_free(r);
            r = NULL;
            goto out;
        }
        if (parse_advance(p)) {
            filter_node_free(r);
            r = NULL;
        }
    } else {
        r = parse_cmp(p);
    }
out:
    p->depth--;
    return r;
}

static filter_node *parse_chain(parser *p, filter_kind kind)
{
    const char *kw = kind == FN_AND ? "and" : "or";
    filter_node *a = kind == FN_AND ? parse_unary(p) : parse_chain(p, FN_AND);
    while (a && tok_is_kw(&p->tok, kw)) {
        int col = p->tok.column;
        if (parse_advance(p)) {
            filter_node_free(a);
            return NULL;
        }
        if (p->tok.kind == TOK_END) {
            parse_fail(p, p->tok.column, "expected a condition after '%s'", kw);
            filter_node_free(a);
            return NULL;
        }
        filter_node *b = kind == FN_AND ? parse_unary(p) : parse_chain(p, FN_AND);
        if (!b) {
            filter_node_free(a);
            return NULL;
        }
        a = node_join(kind, a, b, col);
        if (!a)
            parse_oom(p);
    }
    return a;
}

static filter_node *parse_or(parser *p)
{
    return parse_chain(p, FN_OR);
}

int filter_parse(const char *text, filter **out, filter_error *err)
{
    *out = NULL;
    if (err) {
        err->column = 0;
        err->msg[0] = '\0';
    }
    filter *f = calloc(1, sizeof *f);
    if (!f)
        return PTB_ENOMEM;
    parser p = {.err = err};
    filter_lex_init(&p.lx, text);
    if (parse_advance(&p) == 0) {
        if (p.tok.kind == TOK_END) {
            f->root = calloc(1, sizeof *f->root);
            if (!f->root)
                parse_oom(&p);
            else
                f->root->kind = FN_TRUE;
        } else {
            f->root = parse_or(&p);
            if (f->root && p.tok.kind != TOK_END) {
                char show[64];
                tok_show(&p.tok, show, sizeof show);
                parse_fail(&p, p.tok.column, "unexpected %s (missing 'and' or 'or'?)", show);
            }
        }
    }
    filter_lex_free(&p.lx);
    if (p.rc) {
        filter_free(f);
        return p.rc;
    }
    *out = f;
    return 0;
}

/* ------------------------------------------------------------------ builders */

filter_node *filter_node_cmp_int(const char *field, filter_op op, const int64_t *v, size_t n)
{
    filter_node *node = calloc(1, sizeof *node);
    if (!node)
        return NULL;
    node->kind = FN_CMP;
    node->op = n > 1 ? FOP_IN : op;
    if (filter_field_lookup(field, strlen(field), &node->field) != 0 || n == 0)
        goto fail;
    node->lits = calloc(n, sizeof *node->lits);
    if (!node->lits)
        goto fail;
    node->nlits = n;
    for (size_t i = 0; i < n; i++) {
        char tmp[32];
        int len = snprintf(tmp, sizeof tmp, "%lld", (long long)v[i]);
        node->lits[i].text = strdup(tmp);
        if (!node->lits[i].text)
            goto fail;
        node->lits[i].len = (size_t)len;
        node->lits[i].i = node->field.type == FT_UINT ? (__int128)(uint64_t)v[i] : v[i];
        node->lits[i].d = (double)v[i];
    }
    return node;
fail:
    filter_node_free(node);
    return NULL;
}

/* ------------------------------------------------------------------ printing */

typedef struct pbuf {
    char *buf;
    size_t cap, len;
} pbuf;

__attribute__((format(printf, 2, 3))) static void pb_add(pbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = b->len < b->cap ? b->cap - b->len : 0;
    int n = vsnprintf(room ? b->buf + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        b->len += (size_t)n;
}

static void pb_int(pbuf *b, __int128 v)
{
    if (v < 0)
        pb_add(b, "-%llu", (unsigned long long)(-v));
    else
        pb_add(b, "%llu", (unsigned long long)v);
}

static void pb_lit(pbuf *b, const filter_node *n, const filter_lit *l)
{
    switch (n->field.type) {
    case FT_UINT:
    case FT_INT:
    case FT_TIME: pb_int(b, l->i); return;
    case FT_BOOL: pb_add(b, "%s", l->i ? "true" : "false"); return;
    case FT_DOUBLE: pb_add(b, "%.17g", l->d); return;
    default: break;
    }
    pb_add(b, "\"");
    for (size_t i = 0; i < l->len; i++) {
        unsigned char c = (unsigned char)l->text[i];
        if (c == '"' || c == '\\')
            pb_add(b, "\\%c", c);
        else if (c == '\n')
            pb_add(b, "\\n");
        else if (c == '\t')
            pb_add(b, "\\t");
        else if (c < 0x20 || c == 0x7f)
            pb_add(b, "\\x%02x", c);
        else
            pb_add(b, "%c", c);
    }
    pb_add(b, "\"");
}

static void pb_node(pbuf *b, const filter_node *n)
{
    switch (n->kind) {
    case FN_TRUE: return;
    case FN_AND:
    case FN_OR:
        pb_add(b, "(");
        for (size_t i = 0; i < n->nkids; i++) {
            if (i)
                pb_add(b, n->kind == FN_AND ? " and " : " or ");
            pb_node(b, n->kids[i]);
        }
        pb_add(b, ")");
        return;
    case FN_NOT:
        pb_add(b, "not ");
        pb_node(b, n->kids[0]);
        return;
    case FN_CMP:
        pb_add(b, "%s %s", n->field.name, filter_op_name(n->op));
        if (n->op == FOP_EXISTS)
            return;
        if (n->op == FOP_IN) {
            pb_add(b, " (");
            for (size_t i = 0; i < n->nlits; i++) {
                if (i)
                    pb_add(b, ", ");
                pb_lit(b, n, &n->lits[i]);
            }
            pb_add(b, ")");
            return;
        }
        pb_add(b, " ");
        pb_lit(b, n, &n->lits[0]);
        return;
    }
}

size_t filter_node_print(const filter_node *n, char *buf, size_t cap)
{
    pbuf b = {buf, cap, 0};
    if (cap)
        buf[0] = '\0';
    pb_node(&b, n);
    if (cap)
        buf[b.len < cap ? b.len : cap - 1] = '\0';
    return b.len;
}

size_t filter_print(const filter *f, char *buf, size_t cap)
{
    return filter_node_print(f->root, buf, cap);
}
