/* Helpers of the agent parsers: JSON access that never trusts the shape, ISO 8601 times, and
 * long texts turned into a redacted inline prefix plus a blob (agent_text_make). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent_int.h"
#include "redact.h"

/* ------------------------------------------------------------------ JSON */

const char *agent_jstr(const json_t *obj, const char *key, size_t *len)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    if (!json_is_string(v))
        return NULL;
    if (len)
        *len = json_string_length(v);
    return json_string_value(v);
}

uint64_t agent_juint(const json_t *obj, const char *key)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        return i > 0 ? (uint64_t)i : 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        return d >= 1 && d < 1.8e19 ? (uint64_t)d : 0;
    }
    return 0;
}

double agent_jreal(const json_t *obj, const char *key)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_number(v) ? json_number_value(v) : 0;
}

const json_t *agent_jobj(const json_t *obj, const char *key)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_object(v) ? v : NULL;
}

char *agent_jdump(const json_t *v, size_t *len)
{
    /* JSON_ENCODE_ANY: a scalar input ("input": "ls") is dumped too */
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s && len)
        *len = strlen(s); /* json_dumps escapes NUL as \u0000: no NUL inside */
    return s;
}

int agent_jtext(const json_t *content, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (json_is_string(content)) {
        size_t n = json_string_length(content);
        *out = malloc(n + 1);
        if (!*out)
            return PTB_ENOMEM;
        memcpy(*out, json_string_value(content), n);
        (*out)[n] = '\0';
        *len = n;
        return 0;
    }
    if (!json_is_array(content))
        return 0;
    size_t i;
    const json_t *b;
    char *acc = NULL;
    size_t al = 0;
    json_array_foreach(content, i, b)
    {
        size_t n = 0;
        const char *t = json_is_object(b) ? agent_jstr(b, "type", NULL) : NULL;
        const char *s = t && strcmp(t, "text") == 0 ? agent_jstr(b, "text", &n) : NULL;
        char *dump = NULL;
        if (!s) {
            dump = agent_jdump(b, &n);
            if (!dump) {
                free(acc);
                return PTB_ENOMEM;
            }
            s = dump;
        }
        char *nb = realloc(acc, al + n + 2);
        if (!nb) {
            free(dump);
            free(acc);
            return PTB_ENOMEM;
        }
        acc = nb;
        if (al)
            acc[al++] = '\n';
        memcpy(acc + al, s, n);
        al += n;
        acc[al] = '\0';
        free(dump);
    }
    *out = acc;
    *len = al;
    return 0;
}

/* ------------------------------------------------------------------ times */

static bool agent_digits(const char *s, size_t len, size_t at, size_t n, int *out)
{
    if (at + n > len)
        return false;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[at + i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *out = v;
    return true;
}

int64_t agent_time_iso(const char *s, size_t len)
{
    int y, mo, d, h, mi, se;
    if (!s || len < 19 || !agent_digits(s, len, 0, 4, &y) || s[4] != '-' ||
        !agent_digits(s, len, 5, 2, &mo) || s[7] != '-' || !agent_digits(s, len, 8, 2, &d) ||
        (s[10] != 'T' && s[10] != ' ') || !agent_digits(s, len, 11, 2, &h) || s[13] != ':' ||
        !agent_digits(s, len, 14, 2, &mi) || s[16] != ':' || !agent_digits(s, len, 17, 2, &se))
        return 0;
    if (y < 1970 || y > 2200 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        se > 60)
        return 0;
    size_t i = 19;
    int64_t frac = 0, scale = 1000000000;
    if (i < len && s[i] == '.') {
        i++;
        size_t start = i;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (scale > 1) {
                scale /= 10;
                frac += (s[i] - '0') * scale;
            }
            i++;
        }
        if (i == start)
            return 0;
    }
    int64_t off = 0; /* seconds east of UTC */
    if (i < len && (s[i] == '+' || s[i] == '-')) {
        int oh, om;
        bool colon = i + 3 < len && s[i + 3] == ':';
        if (!agent_digits(s, len, i + 1, 2, &oh) ||
            !agent_digits(s, len, i + (colon ? 4 : 3), 2, &om) || oh > 23 || om > 59)
            return 0;
        off = (s[i] == '-' ? -1 : 1) * (int64_t)(oh * 3600 + om * 60);
        i += colon ? 6 : 5;
    } else if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    }
    if (i != len)
        return 0;
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return 0;
    return ((int64_t)t - off) * 1000000000 + frac;
}

int64_t agent_jtime(const json_t *obj, const char *key)
{
    size_t n = 0;
    const char *s = agent_jstr(obj, key, &n);
    return agent_time_iso(s, n);
}

/* ------------------------------------------------------------------ texts */

/* Redact text (len bytes) into *out (malloc'd, NUL-terminated). redact_text takes at most
 * REDACT_TEXT_MAX bytes: a longer text is redacted in pieces that end at a newline where one is
 * near the piece's end (a secret cut by a piece boundary is only missed when a piece is one
 * line of 16 MiB). */
static int agent_redact(const char *text, size_t len, char **out, size_t *out_len, unsigned *nr)
{
    if (len <= REDACT_TEXT_MAX)
        return redact_text(text, len, out, out_len, nr);
    char *all = NULL;
    size_t all_len = 0;
    *nr = 0;
    for (size_t at = 0; at < len;) {
        size_t n = len - at > REDACT_TEXT_MAX ? REDACT_TEXT_MAX : len - at;
        if (at + n < len) {
            const char *nl = NULL;
            for (size_t k = n; k > n - (n / 16) && !nl; k--)
                if (text[at + k - 1] == '\n')
                    nl = text + at + k - 1;
            if (nl)
                n = (size_t)(nl - (text + at)) + 1;
        }
        char *piece = NULL;
        size_t pl = 0;
        unsigned pn = 0;
        int rc = redact_text(text + at, n, &piece, &pl, &pn);
        char *nb = rc ? NULL : realloc(all, all_len + pl + 1);
        if (!nb) {
            free(piece);
            free(all);
            return rc ? rc : PTB_ENOMEM;
        }
        all = nb;
        memcpy(all + all_len, piece, pl);
        all_len += pl;
        all[all_len] = '\0';
        free(piece);
        *nr += pn;
        at += n;
    }
    *out = all;
    *out_len = all_len;
    return 0;
}

int agent_text_make(store *s, size_t inline_max, const char *text, size_t len, const char *what,
                    agent_text *out)
{
    memset(out, 0, sizeof *out);
    char *red = NULL;
    size_t rl = 0;
    int rc = agent_redact(text ? text : "", text ? len : 0, &red, &rl, &out->redacted);
    if (rc)
        return rc;
    out->bytes = rl;
    size_t n = rl;
    if (n > inline_max) {
        n = inline_max;
        while (n > 0 && ((unsigned char)red[n] & 0xC0) == 0x80) /* a UTF-8 boundary */
            n--;
        if (s) {
            rc = store_blob_put(s, red, rl, what, out->sha256);
            if (rc == 0)
                out->blob = true;
            else if (rc != PTB_ETOOBIG && rc != PTB_EBUDGET) { /* those two make their own gap */
                free(red);
                return rc;
            }
        }
    }
    n = strnlen(red, n); /* a protobuf string ends at a NUL; the blob keeps all */
    out->inline_text = malloc(3 * n + 1);
    if (!out->inline_text) {
        free(red);
        return PTB_ENOMEM;
    }
    size_t cl = redact_utf8_clean(red, n, out->inline_text);
    out->inline_text[cl] = '\0';
    free(red);
    return 0;
}

void agent_text_free(agent_text *t)
{
    free(t->inline_text);
    t->inline_text = NULL;
}
