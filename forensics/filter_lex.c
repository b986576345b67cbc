/* Lexer of the filter language (filter.h has the grammar).
 *
 * Tokens: ( ) , the comparison symbols = == != < <= > >=, quoted strings ('…' or "…", with
 * backslash escapes \\ \' \" \n \t \r \0 \xHH), and bare words: any run of characters that are
 * not blanks, quotes, parentheses, commas or one of = ! < >. A bare word therefore holds paths
 * ("/data/x.jsonl"), globs ("*.py"), dotted names, times ("2026-11-26T10:00:00Z") and
 * numbers. Columns are 1-based byte offsets. */
#include <stdlib.h>
#include <string.h>

#include "filter_ast.h"
#include "ptb_error.h"

void filter_lex_init(filter_lex *lx, const char *src)
{
    memset(lx, 0, sizeof *lx);
    lx->src = src;
    lx->len = strlen(src);
}

void filter_lex_free(filter_lex *lx)
{
    free(lx->buf);
    lx->buf = NULL;
    lx->cap = 0;
}

static bool lex_is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool lex_is_word(char c)
{
    return !lex_is_blank(c) && c != '\'' && c != '"' && c != '(' && c != ')' && c != ',' &&
           c != '=' && c != '!' && c != '<' && c != '>' && c != '\0';
}

static int lex_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int lex_string(filter_lex *lx, filter_tok *t)
{
    char q = lx->src[lx->pos];
    size_t i = lx->pos + 1;
    /* the unescaped value is never longer than the raw text */
    size_t need = lx->len - lx->pos + 1;
    if (need > lx->cap) {
        char *nb = realloc(lx->buf, need);
        if (!nb)
            return PTB_ENOMEM;
        lx->buf = nb;
        lx->cap = need;
    }
    size_t n = 0;
    while (i < lx->len && lx->src[i] != q) {
        char c = lx->src[i];
        if (c != '\\') {
            lx->buf[n++] = c;
            i++;
            continue;
        }
        if (i + 1 >= lx->len) {
            t->kind = TOK_ERROR;
            t->column = (int)i + 1;
            t->err = "unterminated string";
            return 0;
        }
        char e = lx->src[i + 1];
        switch (e) {
        case 'n':
            lx->buf[n++] = '\n';
            i += 2;
            break;
        case 't':
            lx->buf[n++] = '\t';
            i += 2;
            break;
        case 'r':
            lx->buf[n++] = '\r';
            i += 2;
            break;
        case '0':
            lx->buf[n++] = '\0';
            i += 2;
            break;
        case 'x': {
            int h = i + 2 < lx->len ? lex_hex(lx->src[i + 2]) : -1;
            int l = i + 3 < lx->len ? lex_hex(lx->src[i + 3]) : -1;
            if (h < 0 || l < 0) {
                t->kind = TOK_ERROR;
                t->column = (int)i + 1;
                t->err = "\\x needs two hex digits";
                return 0;
            }
            lx->buf[n++] = (char)(h * 16 + l);
            i += 4;
            break;
        }
        case '\\':
        case '\'':
        case '"':
            lx->buf[n++] = e;
            i += 2;
            break;
        default:
            t->kind = TOK_ERROR;
            t->column = (int)i + 1;
            t->err = "unknown escape in string (use \\\\ \\' \\\" \\n \\t \\r \\0 \\xHH)";
            return 0;
        }
    }
    if (i >= lx->len) {
        t->kind = TOK_ERROR;
        t->column = (int)lx->pos + 1;
        t->err = "unterminated string";
        return 0;
    }
    lx->buf[n] = '\0';
    t->kind = TOK_STRING;
    t->text = lx->src + lx->pos;
    t->len = i + 1 - lx->pos;
    t->value = lx->buf;
    t->vlen = n;
    lx->pos = i + 1;
    return 0;
}

int filter_lex_next(filter_lex *lx, filter_tok *t)
{
    memset(t, 0, sizeof *t);
    while (lx->pos < lx->len && lex_is_blank(lx->src[lx->pos]))
        lx->pos++;
    t->column = (int)lx->pos + 1;
    t->text = lx->src + lx->pos;
    if (lx->pos >= lx->len) {
        t->kind = TOK_END;
        return 0;
    }
    char c = lx->src[lx->pos];
    char d = lx->pos + 1 < lx->len ? lx->src[lx->pos + 1] : '\0';
    switch (c) {
    case '(':
        t->kind = TOK_LPAREN;
        t->len = 1;
        lx->pos++;
        return 0;
    case ')':
        t->kind = TOK_RPAREN;
        t->len = 1;
        lx->pos++;
        return 0;
    case ',':
        t->kind = TOK_COMMA;
        t->len = 1;
        lx->pos++;
        return 0;
    case '\'':
    case '"': return lex_string(lx, t);
    case '=':
    case '<':
    case '>':
        t->kind = TOK_OP;
        t->len = d == '=' ? 2 : 1;
        lx->pos += t->len;
        return 0;
    case '!':
        if (d != '=') {
            t->kind = TOK_ERROR;
            t->err = "'!' must be followed by '=' (use 'not' to negate)";
            return 0;
        }
        t->kind = TOK_OP;
        t->len = 2;
        lx->pos += 2;
        return 0;
    default: break;
    }
    if (c == '\0') {
        t->kind = TOK_ERROR;
        t->err = "NUL byte in filter";
        return 0;
    }
    size_t s = lx->pos;
    while (lx->pos < lx->len && lex_is_word(lx->src[lx->pos]))
        lx->pos++;
    t->kind = TOK_WORD;
    t->len = lx->pos - s;
    return 0;
}
