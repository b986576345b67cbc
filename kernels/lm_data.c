/* Training data: JSONL prompt/completion records, windows, a seeded sampler (lm_data.h). */
#include "lm_data.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct example {
    size_t off, plen, clen; /* prompt at off, completion right after it, in text */
} example;

struct lm_data {
    uint8_t *text; /* every prompt and completion, back to back */
    size_t len, cap;
    example *ex;
    size_t n, ncap;
};

void lm_data_free(lm_data *d)
{
    if (!d)
        return;
    free(d->text);
    free(d->ex);
    free(d);
}

static int data_add(lm_data *d, const char *p, size_t pl, const char *c, size_t cl)
{
    if (d->n == LM_DATA_MAX_EXAMPLES)
        return PTB_ETOOBIG;
    if (d->len + pl + cl > d->cap) {
        size_t nc = d->cap ? d->cap : 1 << 16;
        while (nc < d->len + pl + cl)
            nc *= 2;
        uint8_t *nt = realloc(d->text, nc);
        if (!nt)
            return PTB_ENOMEM;
        d->text = nt;
        d->cap = nc;
    }
    if (d->n == d->ncap) {
        size_t nc = d->ncap ? d->ncap * 2 : 1024;
        example *ne = realloc(d->ex, nc * sizeof *ne);
        if (!ne)
            return PTB_ENOMEM;
        d->ex = ne;
        d->ncap = nc;
    }
    d->ex[d->n++] = (example){d->len, pl, cl};
    memcpy(d->text + d->len, p, pl);
    memcpy(d->text + d->len + pl, c, cl);
    d->len += pl + cl;
    return 0;
}

/* The string member name of o, or NULL. */
static const char *member(json_t *o, const char *name, size_t *len)
{
    json_t *v = json_object_get(o, name);
    if (!json_is_string(v))
        return NULL;
    *len = json_string_length(v);
    return json_string_value(v);
}

int lm_data_read(const char *path, lm_data **out, ptb_errbuf *eb)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f)
        return ptb_errf(eb, -errno, "%s: %s", path, strerror(errno));
    lm_data *d = calloc(1, sizeof *d);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned long no = 0;
    int rc = d ? 0 : ptb_errf(eb, PTB_ENOMEM, "out of memory");
    while (!rc && (n = getline(&line, &cap, f)) >= 0) {
        no++;
        size_t k = (size_t)n;
        while (k && (line[k - 1] == '\n' || line[k - 1] == '\r' || line[k - 1] == ' '))
            k--;
        if (k == 0)
            continue;
        json_error_t je;
        json_t *o = json_loadb(line, k, 0, &je);
        size_t pl = 0, cl = 0;
        const char *p = o ? member(o, "prompt", &pl) : NULL;
        const char *c = o ? member(o, "completion", &cl) : NULL;
        if (!o)
            rc = ptb_errf(eb, PTB_EPARSE, "%s:%lu: not JSON: %s", path, no, je.text);
        else if (!p || !c)
            rc = ptb_errf(eb, PTB_EPARSE,
                          "%s:%lu: a record needs string members \"prompt\" and \"completion\"",
                          path, no);
        else if (pl > LM_DATA_MAX_TEXT || cl > LM_DATA_MAX_TEXT)
            rc = ptb_errf(eb, PTB_ETOOBIG, "%s:%lu: prompt or completion over %u bytes", path, no,
                          LM_DATA_MAX_TEXT);
        else if ((rc = data_add(d, p, pl, c, cl)))
            rc = ptb_errf(eb, rc, "%s:%lu: %s", path, no,
                          rc == PTB_ETOOBIG ? "too many examples" : ptb_strerror(rc));
        json_decref(o);
    }
    if (!rc && ferror(f))
        rc = ptb_errf(eb, PTB_EIO, "%s: read error", path);
    if (!rc && d->n == 0)
        rc = ptb_errf(eb, PTB_EPARSE, "%s: no records", path);
    free(line);
    fclose(f);
    if (rc) {
        lm_data_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

size_t lm_data_count(const lm_data *d)
{
    return d->n;
}

void lm_data_example(const lm_data *d, size_t i, const uint8_t **prompt, size_t *plen,
                     const uint8_t **completion, size_t *clen)
{
    const example *e = &d->ex[i];
    *prompt = d->text + e->off;
    *plen = e->plen;
    *completion = d->text + e->off + e->plen;
    *clen = e->clen;
}

int lm_data_window(const lm_data *d, size_t i, uint32_t T, int32_t *tokens, int32_t *targets)
{
    const example *e = &d->ex[i];
    /* the sequence is prompt[pskip..], completion[..ckeep], EOT: at most T + 1 tokens */
    size_t total = e->plen + e->clen + 1, pskip = 0, ckeep = e->clen, n = total;
    if (total > (size_t)T + 1) { /* the start of the prompt goes, then the end of the rest */
        size_t over = total - (T + 1);
        pskip = over < e->plen ? over : e->plen;
        n = total - pskip > (size_t)T + 1 ? (size_t)T + 1 : total - pskip;
        if (n < e->plen - pskip + ckeep)
            ckeep = n - (e->plen - pskip);
    }
    size_t plen = e->plen - pskip; /* tokens: plen of prompt, ckeep of completion, EOT if room */
    const uint8_t *p = d->text + e->off + pskip, *c = d->text + e->off + e->plen;
    int scored = 0;
    for (uint32_t t = 0; t < T; t++) {
        int32_t tok = LM_EOT, next = -1;
        if (t < n)
            tok = t < plen ? p[t] : t < plen + ckeep ? c[t - plen] : LM_EOT;
        if (t + 1 < n && t + 1 >= plen)
            next = t + 1 < plen + ckeep ? c[t + 1 - plen] : LM_EOT;
        tokens[t] = tok;
        targets[t] = next;
        scored += next >= 0;
    }
    return scored;
}

int lm_sampler_init(lm_sampler *s, const lm_data *d, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->d = d;
    s->rng = seed ^ 0x5eed5eed5eed5eedULL;
    s->order = malloc(d->n * sizeof *s->order);
    if (!s->order)
        return PTB_ENOMEM;
    s->next = d->n; /* shuffle on the first call */
    return 0;
}

void lm_sampler_free(lm_sampler *s)
{
    free(s->order);
    s->order = NULL;
}

int lm_sampler_next(lm_sampler *s, uint32_t B, uint32_t T, int32_t *tokens, int32_t *targets)
{
    int scored = 0;
    for (uint32_t b = 0; b < B; b++) {
        if (s->next == s->d->n) { /* a new epoch: Fisher-Yates with the seeded PRNG */
            for (size_t i = 0; i < s->d->n; i++)
                s->order[i] = i;
            for (size_t i = s->d->n; i > 1; i--) {
                size_t j = (size_t)(lm_rng_next(&s->rng) % i);
                size_t t = s->order[i - 1];
                s->order[i - 1] = s->order[j];
                s->order[j] = t;
            }
            s->next = 0;
            s->epoch++;
        }
        scored += lm_data_window(s->d, s->order[s->next++], T, tokens + (size_t)b * T,
                                 targets + (size_t)b * T);
    }
    return scored;
}
