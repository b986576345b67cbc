/* Secret redaction: the rules are in redact.h. Here: the character classes and the key-shape
 * table (rule 1), the name rule (2), one scanner that finds the next secret in a text (rules 1,
 * 3, 4; used by redact_text and to test environment values), fingerprints, UTF-8 cleaning and
 * the environment block parser.
 *
 * The scanner is one left-to-right pass. At each position it skips a placeholder it wrote
 * earlier, then tries a label (rule 3) where one may start, a URL password at "://" (rule 4),
 * and a key shape where a word starts (rule 1). The first hit is the next secret; the caller
 * resumes after it. Every test looks at a bounded window or a run it consumes, so a text of n
 * bytes costs O(n) apart from the fingerprints. */
#include "redact.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

/* ------------------------------------------------------------------ characters */

/* Character classes as curl's curl_ctype.h has them: locale-free, because a tracee's bytes are
 * not text in our locale. c is an unsigned char (or a plain char for the ASCII-only tests). */
#define IS_UPPER(c) ((c) >= 'A' && (c) <= 'Z')
#define IS_LOWER(c) ((c) >= 'a' && (c) <= 'z')
#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define IS_ALPHA(c) (IS_UPPER(c) || IS_LOWER(c))
#define IS_ALNUM(c) (IS_ALPHA(c) || IS_DIGIT(c))
#define IS_HEXL(c) (IS_DIGIT(c) || ((c) >= 'a' && (c) <= 'f'))
#define IS_SPACE(c) ((c) == ' ' || ((c) >= '\t' && (c) <= '\r'))
#define IS_BLANK(c) ((c) == ' ' || (c) == '\t')
#define IS_QUOTE(c) ((c) == '\'' || (c) == '"' || (c) == '`')
#define IS_NAME_SEP(c) ((c) == '_' || (c) == '-' || (c) == '.')
#define IS_NAME(c) (IS_ALNUM(c) || IS_NAME_SEP(c))
#define IS_ONE_OF(c, set) ((c) != '\0' && strchr(set, (c)) != NULL)
#define UPPER(c) ((char)(IS_LOWER(c) ? (c)-32 : (c)))
/* Bytes shown in a fingerprint prefix: graphic ASCII but the placeholder's own delimiters. */
#define IS_PREFIX(c) ((c) >= 0x21 && (c) <= 0x7e && (c) != ':' && (c) != '<' && (c) != '>')

enum { CS_B, CS_AN, CS_UN, CS_W, CS_S }; /* the body sets of redact.h, rule 1 */

static bool in_set(int cs, unsigned char c)
{
    switch (cs) {
    case CS_B: return IS_ALNUM(c) || c == '_' || c == '-';
    case CS_AN: return IS_ALNUM(c);
    case CS_UN: return IS_UPPER(c) || IS_DIGIT(c);
    case CS_W: return IS_ALNUM(c) || c == '_';
    default: return IS_ALNUM(c) || c == '-';
    }
}

/* ------------------------------------------------------------------ rule 1: key shapes */

typedef struct shape {
    const char *prefix;
    int cs;
    unsigned min, max; /* body length; max 0 = no upper bound */
    bool word;         /* only at the start of a word: the byte before is not [A-Za-z0-9] */
    const char *provider;
} shape;

/* A prefix that starts another one comes first (sk-ant-, sk-or- before sk-): the first
 * matching prefix decides alone. Prefixes match inside a word too ("xsk-ant-..." is still the
 * key), except "sk-", which ends ordinary words ("mask-rcnn-resnet50-fpn-coco" is no key). */
static const shape shapes[] = {
    {"sk-ant-", CS_B, 20, 0, false, "anthropic"}, {"sk-or-", CS_B, 20, 0, false, "openrouter"},
    {"sk-", CS_B, 20, 0, true, "openai"},         {"hf_", CS_AN, 30, 0, false, "hf"},
    {"ghp_", CS_AN, 36, 0, false, "github"},      {"gho_", CS_AN, 36, 0, false, "github"},
    {"ghu_", CS_AN, 36, 0, false, "github"},      {"ghs_", CS_AN, 36, 0, false, "github"},
    {"ghr_", CS_AN, 36, 0, false, "github"},      {"github_pat_", CS_W, 22, 0, false, "github"},
    {"AKIA", CS_UN, 16, 16, false, "aws"},        {"ASIA", CS_UN, 16, 16, false, "aws"},
    {"AIza", CS_B, 35, 35, false, "google"},      {"ya29.", CS_B, 20, 0, false, "google"},
    {"xoxa-", CS_S, 10, 0, false, "slack"},       {"xoxb-", CS_S, 10, 0, false, "slack"},
    {"xoxp-", CS_S, 10, 0, false, "slack"},       {"xoxr-", CS_S, 10, 0, false, "slack"},
    {"xoxs-", CS_S, 10, 0, false, "slack"},       {"gsk_", CS_AN, 20, 0, false, "groq"},
    {"r8_", CS_AN, 20, 0, false, "replicate"},    {"glpat-", CS_B, 20, 0, false, "gitlab"},
    {"npm_", CS_AN, 36, 0, false, "npm"},         {"sk_live_", CS_AN, 24, 0, false, "stripe"},
    {"rk_live_", CS_AN, 24, 0, false, "stripe"},  {"xai-", CS_AN, 20, 0, false, "xai"},
    {"pplx-", CS_AN, 20, 0, false, "perplexity"},
};

/* Length of "eyJ" + >= 5 B at s, 0 if none. */
static size_t jwt_part(const char *s, size_t n)
{
    if (n < 3 || memcmp(s, "eyJ", 3) != 0)
        return 0;
    size_t i = 3;
    while (i < n && in_set(CS_B, (unsigned char)s[i]))
        i++;
    return i >= 8 ? i : 0;
}

/* The key shape that starts at s[0] (n bytes available): its provider and, in *mlen, its
 * length, or NULL. word: a word starts here (needed by "sk-"); jwt: a JWT may start here. A body
 * with a maximum is read up to it, whatever follows: in text "AKIA<16>x" is taken as a key and
 * "x" ("AKIA<17>" is still no key as a whole token, in redact_provider). Were the byte after it
 * to decide, redacting that byte's own key would change the answer on a second pass. Other
 * bodies are maximal runs. */
static const char *shape_at(const char *s, size_t n, bool word, bool jwt, size_t *mlen)
{
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const shape *sh = &shapes[k];
        if (s[0] != sh->prefix[0])
            continue;
        size_t pl = strlen(sh->prefix), b;
        if (n < pl || memcmp(s, sh->prefix, pl) != 0)
            continue;
        for (b = pl;
             b < n && (!sh->max || b - pl < sh->max) && in_set(sh->cs, (unsigned char)s[b]);)
            b++;
        if (b - pl < sh->min || (sh->word && !word))
            return NULL;
        *mlen = b;
        return sh->provider;
    }
    size_t a = jwt ? jwt_part(s, n) : 0, b;
    if (!a || a >= n || s[a] != '.' || !(b = jwt_part(s + a + 1, n - a - 1)))
        return NULL;
    size_t i = a + 1 + b;
    if (i >= n || s[i] != '.')
        return NULL;
    for (i++; i < n && in_set(CS_B, (unsigned char)s[i]);)
        i++;
    *mlen = i;
    return "jwt";
}

const char *redact_provider(const char *value, size_t len)
{
    size_t m;
    const char *p = value && len ? shape_at(value, len, true, true, &m) : NULL;
    return p && m == len ? p : NULL;
}

/* ------------------------------------------------------------------ rule 2: names */

/* s[0..n) equals the upper-case word w, ignoring case. */
static bool word_eq(const char *s, size_t n, const char *w)
{
    if (strlen(w) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (UPPER((unsigned char)s[i]) != w[i])
            return false;
    return true;
}

static bool word_in(const char *s, size_t n, const char *const *list)
{
    for (; *list; list++)
        if (word_eq(s, n, *list))
            return true;
    return false;
}

static bool ends_with_any(const char *s, size_t n, const char *const *list)
{
    for (; *list; list++) {
        size_t l = strlen(*list);
        if (n >= l && word_eq(s + n - l, l, *list))
            return true;
    }
    return false;
}

static const char *const secret_parts[] = {
    "KEY",           "APIKEY",     "TOKEN",      "SECRET",      "PASSWORD", "PASSWD",
    "PASS",          "PASSPHRASE", "CREDENTIAL", "CREDENTIALS", "CREDS",    "AUTH",
    "AUTHORIZATION", "COOKIE",     "SESSION",    "PRIVATE",     NULL};
static const char *const secret_suffixes[] = {
    "TOKEN",     "SECRET",     "PASSWORD",   "PASSWD",      "APIKEY", "ACCESSKEY",
    "SECRETKEY", "PRIVATEKEY", "PASSPHRASE", "CREDENTIALS", NULL};
static const char *const secret_names[] = {"SSHPASS", "MYSQL_PWD", NULL};
static const char *const path_parts[] = {"FILE", "PATH", "DIR", "SOCK", "SOCKET", NULL};
static const char *const plain_names[] = {"GOOGLE_APPLICATION_CREDENTIALS",
                                          "SESSION_MANAGER",
                                          "DBUS_SESSION_BUS_ADDRESS",
                                          "DESKTOP_SESSION",
                                          "JOBSERVER_AUTH",
                                          NULL};
static const char *const tok_before[] = {"PAD",  "EOS", "BOS", "UNK", "SEP", "CLS",
                                         "MASK", "MAX", "MIN", "NUM", NULL};
static const char *const tok_after[] = {"ID",    "IDS",    "LEN",  "LENGTH", "LIMIT",
                                        "COUNT", "BUDGET", "TYPE", "SIZE",   NULL};

/* The next part of s[0..n) from *i on: false when there is none. */
static bool name_part(const char *s, size_t n, size_t *i, const char **p, size_t *pn)
{
    size_t j = *i;
    while (j < n && IS_NAME_SEP(s[j]))
        j++;
    size_t a = j;
    while (j < n && !IS_NAME_SEP(s[j]))
        j++;
    *i = j;
    *p = s + a;
    *pn = j - a;
    return j > a;
}

/* Rule 2 on s[0..n): a variable, option ("--api-key") or header name. */
static bool name_secret(const char *s, size_t n)
{
    while (n && *s == '-') /* "--api-key" is the name "api-key" */
        s++, n--;
    /* The whole-name lists, compared in upper case with '_' for every separator. */
    char norm[64];
    if (n < sizeof norm) {
        for (size_t i = 0; i < n; i++)
            norm[i] = IS_NAME_SEP(s[i]) ? '_' : UPPER((unsigned char)s[i]);
        if (word_in(norm, n, secret_names))
            return true;
        if (word_in(norm, n, plain_names) || (n >= 12 && memcmp(norm, "XDG_SESSION_", 12) == 0))
            return false;
    }
    size_t last = n;
    while (last && IS_NAME_SEP(s[last - 1]))
        last--;
    size_t first = last;
    while (first && !IS_NAME_SEP(s[first - 1]))
        first--;
    if (first == last || word_in(s + first, last - first, path_parts))
        return false;
    /* Parts in order, with the one before and the one after for the TOKEN exception. */
    const char *prev = NULL, *cur, *next;
    size_t prevn = 0, curn, nextn, i = 0;
    bool have = name_part(s, n, &i, &cur, &curn);
    while (have) {
        bool more = name_part(s, n, &i, &next, &nextn);
        bool tokenizer =
            word_eq(cur, curn, "TOKEN") && ((prev && word_in(prev, prevn, tok_before)) ||
                                            (more && word_in(next, nextn, tok_after)));
        if (!tokenizer &&
            (word_in(cur, curn, secret_parts) || ends_with_any(cur, curn, secret_suffixes)))
            return true;
        prev = cur, prevn = curn;
        cur = next, curn = nextn;
        have = more;
    }
    return false;
}

bool redact_name_is_secret(const char *name)
{
    return name && name_secret(name, strlen(name));
}

/* ------------------------------------------------------------------ the scanner */

typedef struct finding {
    size_t start, end;    /* the secret is s[start..end) */
    const char *provider; /* static tag */
} finding;

size_t redact_placeholder_len(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    if (n < 8 || memcmp(s, "<secret:", 8) != 0)
        return 0;
    size_t i = 8, a = i;
    while (i < n && i - a < 15 && (IS_ALNUM(u[i]) || u[i] == '_' || u[i] == '-'))
        i++;
    if (i == a || i >= n || u[i++] != ':')
        return 0;
    for (a = i; i < n && i - a < 4 && IS_PREFIX(u[i]);)
        i++;
    if (i >= n || u[i++] != ':' || n - i < 65)
        return 0;
    for (a = i; i - a < 64; i++)
        if (!IS_HEXL(u[i]))
            return 0;
    return u[i] == '>' ? i + 1 : 0;
}

/* Where a label may start: after these, or at the start of the text (rule 3). A NUL counts:
 * argv strings joined with NULs are separate words. */
static bool is_label_prev(unsigned char c)
{
    return c == '\0' || IS_SPACE(c) || IS_QUOTE(c) || IS_ONE_OF(c, "{([,;&?|");
}

static bool is_value_end(unsigned char c, bool to_eol)
{
    if (c == '\0')
        return true;
    if (to_eol)
        return c == '\n' || c == '\r' || IS_QUOTE(c);
    return IS_SPACE(c) || IS_QUOTE(c) || IS_ONE_OF(c, "&;|,)]}<>");
}

/* Rule 3 at s[i], a possible label start. */
static bool label_match(const char *s, size_t n, size_t i, finding *f)
{
    size_t j = i;
    while (j < n && IS_NAME((unsigned char)s[j]))
        j++;
    size_t name_end = j;
    if (j < n && (s[j] == '"' || s[j] == '\''))
        j++;
    while (j < n && IS_BLANK(s[j]))
        j++;
    if (j >= n || (s[j] != '=' && s[j] != ':'))
        return false;
    if (s[j] == ':' && n - j >= 3 && s[j + 1] == '/' && s[j + 2] == '/')
        return false; /* "scheme://": rule 4's */
    if (!name_secret(s + i, name_end - i))
        return false;
    for (j++; j < n && IS_BLANK(s[j]);)
        j++;
    char q = 0;
    if (j < n && (s[j] == '"' || s[j] == '\''))
        q = s[j++];
    const char *provider = "generic";
    size_t w = j;
    while (w < n && IS_ALPHA((unsigned char)s[w]))
        w++;
    if (w < n && IS_BLANK(s[w])) {
        static const char *const schemes[] = {"BEARER", "BASIC", "TOKEN", "BOT", NULL};
        if (word_in(s + j, w - j, schemes)) {
            provider = word_eq(s + j, w - j, "BEARER")  ? "bearer"
                       : word_eq(s + j, w - j, "BASIC") ? "basic"
                                                        : "auth";
            for (j = w; j < n && IS_BLANK(s[j]);)
                j++;
        }
    }
    if (j < n && s[j] == '$')
        return false; /* a shell reference, see redact.h */
    bool to_eol = false;
    for (size_t k = i; k + 6 <= name_end && !to_eol; k++)
        to_eol = word_eq(s + k, 6, "COOKIE");
    size_t e = j;
    while (e < n && (q ? s[e] != q : !is_value_end((unsigned char)s[e], to_eol)))
        e++;
    if (e == j || redact_placeholder_len(s + j, e - j) == e - j)
        return false;
    const char *shaped = redact_provider(s + j, e - j);
    f->start = j;
    f->end = e;
    f->provider = shaped ? shaped : provider;
    return true;
}

static bool is_authority_end(unsigned char c)
{
    return c == '\0' || IS_SPACE(c) || IS_QUOTE(c) || IS_ONE_OF(c, "/?#<>\\");
}

/* Rule 4 at s[i] == ':'. */
static bool url_match(const char *s, size_t n, size_t i, finding *f)
{
    if (i == 0 || !IS_ALPHA((unsigned char)s[i - 1]) || n - i < 3 || s[i + 1] != '/' ||
        s[i + 2] != '/')
        return false;
    size_t a = i + 3, at = 0, e;
    for (e = a; e < n && !is_authority_end((unsigned char)s[e]); e++)
        if (s[e] == '@')
            at = e;
    if (!at)
        return false;
    const char *colon = memchr(s + a, ':', at - a);
    if (!colon)
        return false;
    size_t p = (size_t)(colon - s) + 1;
    if (p == at || s[p] == '$')
        return false;
    const char *shaped = redact_provider(s + p, at - p);
    f->start = p;
    f->end = at;
    f->provider = shaped ? shaped : "url";
    return true;
}

/* A scan of s[0..n). A label's name, or a URL's user, may hold a key shape of its own
 * ("ghp_<36>_TOKEN=x", "https://xoxb-<..>:pw@h"): the shapes in it are returned first, then the
 * value or password, kept meanwhile in `value`. */
typedef struct scan {
    const char *s;
    size_t n, i;     /* the next byte to look at; where the last secret ended */
    bool pending;    /* value is found, due after the shapes before it */
    finding value;   /* a label's value or a URL's password */
    size_t jwt_fail; /* no JWT starts before this byte (see scan_shape) */
} scan;

/* The key shape at s[k]. A word starts where the byte before is not [A-Za-z0-9], and also where
 * a secret just ended (at sc->i), as it will in the output (a placeholder ends with '>'): so
 * "AKIA<16>sk-proj-..." is two keys, and a second pass finds nothing new. A JWT starts where
 * the byte before is not B; when one fails, every later start in the same run of B bytes fails
 * the same way (its first part ends where this one's did), so none is tried again: the scan of
 * "AKIA<16>eyJAKIA<16>eyJ..." stays linear. */
static bool scan_shape(scan *sc, size_t k, finding *f)
{
    const char *s = sc->s;
    unsigned char prev = k && k != sc->i ? (unsigned char)s[k - 1] : ' ';
    bool jwt = !in_set(CS_B, prev) && k >= sc->jwt_fail;
    size_t m;
    const char *p = shape_at(s + k, sc->n - k, !IS_ALNUM(prev), jwt, &m);
    if (p) {
        *f = (finding){k, k + m, p};
        return true;
    }
    if (jwt && sc->n - k >= 3 && memcmp(s + k, "eyJ", 3) == 0) {
        for (m = k + 3; m < sc->n && in_set(CS_B, (unsigned char)s[m]);)
            m++;
        sc->jwt_fail = m;
    }
    return false;
}

/* The next secret, in text order; false at the end. */
static bool scan_next(scan *sc, finding *f)
{
    const char *s = sc->s;
    size_t n = sc->n, i;
    if (sc->pending) {
        /* the shapes in s[sc->i .. value.start) first: they end before it (no body set holds
         * the byte that ends a name or a user) */
        for (i = sc->i; i < sc->value.start; i++)
            if (scan_shape(sc, i, f) && f->end <= sc->value.start)
                break;
        if (i == sc->value.start) {
            *f = sc->value;
            sc->pending = false;
        }
        sc->i = f->end;
        return true;
    }
    for (i = sc->i; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t m;
        if (c == '<' && (m = redact_placeholder_len(s + i, n - i)) > 0) {
            i += m - 1;
            continue;
        }
        /* labels see the byte really before: a name run is read once */
        unsigned char prev = i ? (unsigned char)s[i - 1] : ' ';
        if ((IS_NAME(c) && is_label_prev(prev) && label_match(s, n, i, &sc->value)) ||
            (c == ':' && url_match(s, n, i, &sc->value))) {
            sc->pending = true;
            sc->i = i;
            return scan_next(sc, f);
        }
        if (scan_shape(sc, i, f)) {
            sc->i = f->end;
            return true;
        }
    }
    sc->i = n;
    return false;
}

/* Whether s[0..n) holds a secret; *provider gets the first one's tag. */
static bool scan_any(const char *s, size_t n, const char **provider)
{
    scan sc = {s, n, 0, false, {0, 0, NULL}, 0};
    finding f;
    if (!scan_next(&sc, &f))
        return false;
    *provider = f.provider;
    return true;
}

/* ------------------------------------------------------------------ fingerprints */

int redact_fingerprint(const char *provider, const char *value, size_t len, redact_fp *out)
{
    memset(out, 0, sizeof *out);
    if (!EVP_Digest(len ? value : "", len, out->sha256, NULL, EVP_sha256(), NULL)) {
        memset(out, 0, sizeof *out);
        return PTB_ENOMEM;
    }
    snprintf(out->provider, sizeof out->provider, "%s", provider ? provider : "generic");
    size_t np = len / 4 < 4 ? len / 4 : 4;
    for (size_t i = 0; i < np; i++)
        out->prefix[i] = IS_PREFIX((unsigned char)value[i]) ? value[i] : '?';
    out->length = len;
    Ptb__V1__Fingerprint init = PTB__V1__FINGERPRINT__INIT;
    out->pb = init;
    out->pb.provider = out->provider;
    out->pb.prefix = out->prefix;
    out->pb.sha256.len = sizeof out->sha256;
    out->pb.sha256.data = out->sha256;
    out->pb.length = len;
    return 0;
}

/* ------------------------------------------------------------------ UTF-8 */

size_t redact_utf8_clean(const char *s, size_t len, char *out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, o = 0;
    while (i < len) {
        unsigned char c = p[i], lo = 0x80, hi = 0xbf;
        size_t need = 0; /* continuation bytes; 0 for ASCII and for bytes that never lead */
        if (c < 0x80) {
            if (out)
                out[o] = (char)c;
            o++, i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            need = 1;
        else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            lo = c == 0xe0 ? 0xa0 : 0x80; /* no overlongs */
            hi = c == 0xed ? 0x9f : 0xbf; /* no surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            lo = c == 0xf0 ? 0x90 : 0x80;
            hi = c == 0xf4 ? 0x8f : 0xbf; /* nothing over U+10FFFF */
        }
        size_t k = 1;
        while (k <= need && i + k < len && p[i + k] >= lo && p[i + k] <= hi) {
            lo = 0x80, hi = 0xbf;
            k++;
        }
        if (need && k == need + 1) {
            if (out)
                memcpy(out + o, p + i, k);
            o += k;
        } else {
            if (out)
                memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
        }
        i += k;
    }
    return o;
}

/* ------------------------------------------------------------------ redact_text */

typedef struct tbuf {
    char *p;
    size_t len, cap;
} tbuf;

static int tbuf_put(tbuf *b, const char *s, size_t n)
{
    if (n > REDACT_TEXT_OUT_MAX - b->len)
        return PTB_ETOOBIG;
    if (b->len + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 64;
        while (c < b->len + n + 1)
            c *= 2;
        char *np = realloc(b->p, c);
        if (!np)
            return PTB_ENOMEM;
        b->p = np;
        b->cap = c;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

/* Write the placeholder of s[0..n) under provider into ph (REDACT_PLACEHOLDER_MAX bytes). */
static int placeholder(const char *provider, const char *s, size_t n, char *ph, size_t *phlen)
{
    redact_fp fp;
    int rc = redact_fingerprint(provider, s, n, &fp);
    if (rc)
        return rc;
    char hex[65];
    for (int k = 0; k < 32; k++)
        snprintf(hex + 2 * k, 3, "%02x", fp.sha256[k]);
    int w = snprintf(ph, REDACT_PLACEHOLDER_MAX, "<secret:%s:%s:%s>", fp.provider, fp.prefix, hex);
    *phlen = (size_t)w;
    return 0;
}

int redact_text(const char *s, size_t len, char **out, size_t *out_len, unsigned *n_redacted)
{
    if (!out)
        return PTB_EINVAL;
    *out = NULL;
    if (!s && len)
        return PTB_EINVAL;
    if (len > REDACT_TEXT_MAX)
        return PTB_ETOOBIG;
    tbuf b = {0};
    unsigned nr = 0;
    size_t i = 0, phlen;
    char ph[REDACT_PLACEHOLDER_MAX];
    scan sc = {s, len, 0, false, {0, 0, NULL}, 0};
    finding f;
    int rc = tbuf_put(&b, "", 0);
    while (!rc && scan_next(&sc, &f)) {
        rc = tbuf_put(&b, s + i, f.start - i);
        if (!rc)
            rc = placeholder(f.provider, s + f.start, f.end - f.start, ph, &phlen);
        if (!rc)
            rc = tbuf_put(&b, ph, phlen);
        i = f.end;
        nr++;
    }
    if (!rc && len)
        rc = tbuf_put(&b, s + i, len - i);
    if (rc) {
        free(b.p);
        return rc;
    }
    *out = b.p;
    if (out_len)
        *out_len = b.len;
    if (n_redacted)
        *n_redacted = nr;
    return 0;
}

/* ------------------------------------------------------------------ environment blocks */

/* One entry of the block, between the two passes. */
typedef struct env_ent {
    const char *name, *value; /* name: in the block, or own */
    size_t name_len, value_len;
    const char *provider; /* non-NULL: the value is a secret */
    char *own;            /* malloc'd redact_text of a name that holds a secret, else NULL */
} env_ent;

void redact_env_free(redact_env *e)
{
    if (!e)
        return;
    free(e->env);
    free(e->vars_);
    free(e->fps_);
    free(e->arena_);
    free(e);
}

/* Pass 1: split the block into ents (room for nents), count what is past the bounds, classify
 * each value (rules 1, 3, 4 on the value, then rule 2 on the name), redact names. */
static int env_split(const char *block, size_t len, env_ent *ents, size_t nents, redact_env *e)
{
    for (size_t pos = 0, end; pos < len; pos = end + 1) {
        const char *z = memchr(block + pos, '\0', len - pos);
        end = z ? (size_t)(z - block) : len;
        if (end == pos)
            continue;
        if (e->truncated || e->n_env == nents || end > REDACT_ENV_MAX_BYTES) {
            if (!e->truncated)
                e->truncated_bytes = len - pos;
            e->truncated++;
            continue;
        }
        env_ent *t = &ents[e->n_env++];
        const char *eq = memchr(block + pos, '=', end - pos);
        t->name = block + pos;
        t->name_len = eq ? (size_t)(eq - t->name) : end - pos;
        t->value = eq ? eq + 1 : block + end;
        t->value_len = eq ? (size_t)(block + end - t->value) : 0;
        t->provider = redact_provider(t->value, t->value_len);
        if (!t->provider)
            scan_any(t->value, t->value_len, &t->provider);
        if (!t->provider && name_secret(t->name, t->name_len))
            t->provider = "generic";
        e->n_redacted += t->provider != NULL;
        const char *unused;
        if (scan_any(t->name, t->name_len, &unused)) {
            int rc = redact_text(t->name, t->name_len, &t->own, &t->name_len, NULL);
            if (rc)
                return rc;
            t->name = t->own;
        }
    }
    return 0;
}

/* Write s[0..n) cleaned and NUL-terminated at a (NULL: measure); returns the bytes. */
static size_t env_str(char *a, const char *s, size_t n)
{
    size_t w = redact_utf8_clean(s, n, a);
    if (a)
        a[w] = '\0';
    return w + 1;
}

/* Pass 2: build the messages; the arena holds every name and kept value. */
static int env_build(const env_ent *ents, redact_env *e)
{
    size_t arena = 0, nfp = 0;
    for (size_t k = 0; k < e->n_env; k++)
        arena += env_str(NULL, ents[k].name, ents[k].name_len) +
                 (ents[k].provider ? 0 : env_str(NULL, ents[k].value, ents[k].value_len));
    e->env = calloc(e->n_env, sizeof *e->env);
    e->vars_ = calloc(e->n_env, sizeof *e->vars_);
    e->fps_ = calloc(e->n_redacted ? e->n_redacted : 1, sizeof *e->fps_);
    e->arena_ = malloc(arena);
    if (!e->env || !e->vars_ || !e->fps_ || !e->arena_)
        return PTB_ENOMEM;
    char *a = e->arena_;
    for (size_t k = 0; k < e->n_env; k++) {
        const env_ent *t = &ents[k];
        Ptb__V1__EnvVar init = PTB__V1__ENV_VAR__INIT, *v = &e->vars_[k];
        *v = init;
        e->env[k] = v;
        v->name = a;
        a += env_str(a, t->name, t->name_len);
        if (t->provider) {
            redact_fp *fp = &e->fps_[nfp++];
            int rc = redact_fingerprint(t->provider, t->value, t->value_len, fp);
            if (rc)
                return rc;
            v->redacted = &fp->pb;
        } else {
            v->value = a;
            a += env_str(a, t->value, t->value_len);
        }
    }
    return 0;
}

int redact_env_block(const char *block, size_t len, redact_env **out)
{
    if (!out || (!block && len))
        return PTB_EINVAL;
    *out = NULL;
    /* Room for every entry up to the bound: count the NULs (cheap next to the scan). */
    size_t nents = 1;
    for (size_t p = 0; p < len && nents < REDACT_ENV_MAX_VARS; nents++) {
        const char *z = memchr(block + p, '\0', len - p);
        if (!z)
            break;
        p = (size_t)(z - block) + 1;
    }
    redact_env *e = calloc(1, sizeof *e);
    env_ent *ents = calloc(nents, sizeof *ents);
    int rc = e && ents ? 0 : PTB_ENOMEM;
    if (!rc)
        rc = env_split(block, len, ents, nents, e);
    if (!rc && e->n_env)
        rc = env_build(ents, e);
    for (size_t k = 0; ents && k < nents; k++)
        free(ents[k].own);
    free(ents);
    if (rc) {
        redact_env_free(e);
        return rc;
    }
    *out = e;
    return 0;
}
