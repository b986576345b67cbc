/* Evaluation of a parsed filter on one event (three-valued, see filter.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "filter_ast.h"
#include "ptb_error.h"

void filter_ctx_init(filter_ctx *cx, filter_proc_fn proc, void *proc_arg)
{
    memset(cx, 0, sizeof *cx);
    cx->proc = proc;
    cx->proc_arg = proc_arg;
}

void filter_ctx_free(filter_ctx *cx)
{
    free(cx->scratch);
    cx->scratch = NULL;
    cx->scratch_cap = 0;
}

/* ------------------------------------------------------------------ glob */

/* Does one pattern element at pat[p] match c? *adv = length of the element. */
static bool glob_one(const char *pat, size_t plen, size_t p, char c, size_t *adv)
{
    char pc = pat[p];
    if (pc == '?') {
        *adv = 1;
        return true;
    }
    if (pc == '\\' && p + 1 < plen) {
        *adv = 2;
        return pat[p + 1] == c;
    }
    if (pc == '[') {
        size_t q = p + 1;
        bool neg = false;
        if (q < plen && (pat[q] == '!' || pat[q] == '^')) {
            neg = true;
            q++;
        }
        size_t first = q;
        bool hit = false;
        while (q < plen && (pat[q] != ']' || q == first)) {
            char lo = pat[q], hi = lo;
            if (q + 2 < plen && pat[q + 1] == '-' && pat[q + 2] != ']') {
                hi = pat[q + 2];
                q += 3;
            } else {
                q++;
            }
            if ((unsigned char)c >= (unsigned char)lo && (unsigned char)c <= (unsigned char)hi)
                hit = true;
        }
        if (q < plen) { /* found the closing ']' */
            *adv = q + 1 - p;
            return hit != neg;
        }
        /* no closing bracket: a literal '[' */
    }
    *adv = 1;
    return pc == c;
}

bool filter_glob_match(const char *pat, size_t plen, const char *s, size_t n)
{
    size_t p = 0, i = 0, star_p = (size_t)-1, star_i = 0;
    while (i < n) {
        if (p < plen) {
            if (pat[p] == '*') {
                star_p = ++p;
                star_i = i;
                continue;
            }
            size_t adv;
            if (glob_one(pat, plen, p, s[i], &adv)) {
                p += adv;
                i++;
                continue;
            }
        }
        if (star_p != (size_t)-1) {
            p = star_p;
            i = ++star_i;
            continue;
        }
        return false;
    }
    while (p < plen && pat[p] == '*')
        p++;
    return p == plen;
}

/* ------------------------------------------------------------------ comparisons */

static int str_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c)
        return c;
    return an < bn ? -1 : an > bn;
}

static bool str_icontains(const char *s, size_t n, const char *lit, size_t ln)
{
    if (ln == 0)
        return true;
    if (ln > n)
        return false;
    for (size_t i = 0; i + ln <= n; i++) {
        size_t k = 0;
        while (k < ln && tolower((unsigned char)s[i + k]) == (unsigned char)lit[k])
            k++;
        if (k == ln)
            return true;
    }
    return false;
}

static bool op_order(filter_op op, int c)
{
    switch (op) {
    case FOP_EQ:
    case FOP_IN: return c == 0;
    case FOP_NE: return c != 0;
    case FOP_LT: return c < 0;
    case FOP_LE: return c <= 0;
    case FOP_GT: return c > 0;
    case FOP_GE: return c >= 0;
    default: return false;
    }
}

static bool cmp_one(const filter_node *n, const filter_lit *l, const filter_val *v)
{
    switch (n->field.type) {
    case FT_UINT:
    case FT_INT:
    case FT_BOOL:
    case FT_TIME: return op_order(n->op, v->i < l->i ? -1 : v->i > l->i);
    case FT_DOUBLE:
        if (v->d != v->d || l->d != l->d) /* NaN: unequal to everything, unordered */
            return n->op == FOP_NE;
        return op_order(n->op, v->d < l->d ? -1 : v->d > l->d ? 1 : v->d == l->d ? 0 : 2);
    case FT_TYPE:
    case FT_SOURCE:
        if (n->op == FOP_EQ || n->op == FOP_NE || n->op == FOP_IN)
            return op_order(n->op, v->i == l->i ? 0 : 1);
        break;
    default: break;
    }
    switch (n->op) {
    case FOP_CONTAINS:
        return l->len == 0 || (v->n >= l->len && memmem(v->s, v->n, l->text, l->len) != NULL);
    case FOP_ICONTAINS: return str_icontains(v->s, v->n, l->text, l->len);
    case FOP_STARTSWITH: return v->n >= l->len && memcmp(v->s, l->text, l->len) == 0;
    case FOP_ENDSWITH: return v->n >= l->len && memcmp(v->s + v->n - l->len, l->text, l->len) == 0;
    case FOP_GLOB: return filter_glob_match(l->text, l->len, v->s, v->n);
    default: return op_order(n->op, str_cmp(v->s, v->n, l->text, l->len));
    }
}

bool filter_cmp_value(const filter_node *n, const filter_val *v)
{
    if (n->op == FOP_EXISTS)
        return true;
    for (size_t i = 0; i < n->nlits; i++)
        if (cmp_one(n, &n->lits[i], v))
            return true;
    return false;
}

static bool eval_val_cb(void *arg, const filter_field *f, const filter_val *v)
{
    (void)f;
    return filter_cmp_value(arg, v);
}

/* ------------------------------------------------------------------ tree */

int filter_node_eval(const filter_node *n, const ptb_event *ev, filter_ctx *cx)
{
    switch (n->kind) {
    case FN_TRUE: return FILTER_TRUE;
    case FN_CMP: {
        size_t count;
        int r = filter_field_visit(&n->field, ev, cx, eval_val_cb, (void *)n, &count);
        if (r == FILTER_VISIT_UNKNOWN)
            return FILTER_UNKNOWN;
        return r == FILTER_VISIT_STOPPED ? FILTER_TRUE : FILTER_FALSE;
    }
    case FN_NOT: {
        int r = filter_node_eval(n->kids[0], ev, cx);
        return r == FILTER_UNKNOWN ? r : r == FILTER_TRUE ? FILTER_FALSE : FILTER_TRUE;
    }
    case FN_AND:
    case FN_OR: {
        /* AND: false wins; OR: true wins */
        int win = n->kind == FN_AND ? FILTER_FALSE : FILTER_TRUE;
        bool unknown = false;
        for (size_t i = 0; i < n->nkids; i++) {
            int r = filter_node_eval(n->kids[i], ev, cx);
            if (r == win)
                return win;
            if (r == FILTER_UNKNOWN)
                unknown = true;
        }
        return unknown ? FILTER_UNKNOWN : (win == FILTER_FALSE ? FILTER_TRUE : FILTER_FALSE);
    }
    }
    return FILTER_FALSE;
}

int filter_eval(const filter *f, const ptb_event *ev, filter_ctx *cx)
{
    return filter_node_eval(f->root, ev, cx);
}

static bool node_needs_procs(const filter_node *n)
{
    if (n->kind == FN_CMP)
        return n->field.procs;
    for (size_t i = 0; i < n->nkids; i++)
        if (node_needs_procs(n->kids[i]))
            return true;
    return false;
}

bool filter_needs_procs(const filter *f)
{
    return node_needs_procs(f->root);
}
