/* ptb audit's test-set leakage detector, the index of the test split (lk_index_build): its items
 * read from JSONL, each prompt and answer tokenized as everything scanned is (lk_tokenize), the
 * template words dropped, and the keys of the 8-grams of long parts and of short parts whole, in
 * an open-addressing table with a bloom filter for a cheap "no". The design (Template, Matching)
 * is in audit_leak.c's top comment; the scan that looks keys up is audit_leak_scan.c. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_leak_int.h"
#include "ptb_error.h"

#define LK_TMPL_MIN_ITEMS 10      /* a template needs at least this many items */
#define LK_SPLIT_MAX (256u << 20) /* bytes of a test split */
#define LK_ITEMS_MAX (1u << 22)   /* items of a test split */

void lk_index_free(lk_index *ix)
{
    free(ix->tok), free(ix->part), free(ix->win_part), free(ix->key), free(ix->kstart),
        free(ix->kcount), free(ix->post), free(ix->bloom), free(ix->tmpl);
    for (size_t i = 0; ix->sample && i < ix->n_items; i++)
        free(ix->sample[i]);
    free(ix->sample);
    memset(ix, 0, sizeof *ix);
}

static const char *const prompt_keys[] = {"prompt",  "question",    "input",
                                          "problem", "instruction", NULL};
static const char *const answer_keys[] = {"answer",   "completion", "output", "response",
                                          "solution", "target",     NULL};

/* A member's text: a string, or a number written out. */
static const char *member_text(json_t *o, const char *const *keys, char *num, size_t cap)
{
    for (size_t i = 0; keys[i]; i++) {
        json_t *v = json_object_get(o, keys[i]);
        if (json_is_string(v))
            return json_string_value(v);
        if (json_is_integer(v)) {
            snprintf(num, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            return num;
        }
        if (json_is_real(v)) {
            snprintf(num, cap, "%g", json_real_value(v));
            return num;
        }
    }
    return NULL;
}

static void sample_copy(char *d, size_t cap, const char *s)
{
    size_t n = 0;
    bool sp = false;
    for (; *s && n + 6 < cap; s++) { /* room for a space, a byte, "..." and the NUL */
        unsigned char c = (unsigned char)*s;
        if (isspace(c)) {
            sp = n > 0;
            continue;
        }
        if (sp)
            d[n++] = ' ';
        sp = false;
        d[n++] = (char)(c < 0x20 ? '?' : c);
    }
    if (*s)
        memcpy(d + n, "...", 3), n += 3;
    d[n] = 0;
}

typedef struct kw {
    uint64_t key;
    uint32_t win;
} kw;

static int cmp_kw(const void *a, const void *b)
{
    const kw *x = a, *y = b;
    return x->key < y->key ? -1 : x->key > y->key ? 1 : x->win < y->win ? -1 : x->win > y->win;
}

/* Read the test split (JSONL) and build the index. 0; PTB_ENOTFOUND (why in err) when the
 * split is unreadable or holds no item; PTB_ENOMEM. */
int lk_index_build(lk_index *ix, const char *path, char *err, size_t errcap)
{
    memset(ix, 0, sizeof *ix);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errcap, "cannot read the test split %s: %s", path, strerror(errno));
        return PTB_ENOTFOUND;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (len + 65536 > cap) {
            if (cap >= LK_SPLIT_MAX) {
                snprintf(err, errcap, "the test split %s is over %u MiB", path, LK_SPLIT_MAX >> 20);
                rc = PTB_ENOTFOUND;
                break;
            }
            char *nb = realloc(buf, cap = cap ? 2 * cap : 1 << 20);
            if (!nb) {
                rc = PTB_ENOMEM;
                break;
            }
            buf = nb;
        }
        size_t k = fread(buf + len, 1, cap - len - 1, f);
        len += k;
        if (k == 0)
            break;
    }
    fclose(f);
    if (rc) {
        free(buf);
        return rc;
    }
    SHA256((const unsigned char *)buf, len, ix->sha);
    /* the items: words of prompt and answer, kept as [prompt words][answer words] */
    tok_out o = {0};
    uint32_t *plen = NULL, *alen = NULL;
    size_t nitems = 0, pcap = 0, acap = 0, scap = 0;
    for (size_t at = 0; at < len && !rc && !o.rc;) {
        char *nl = memchr(buf + at, '\n', len - at);
        size_t ll = nl ? (size_t)(nl - (buf + at)) : len - at;
        json_t *j = ll ? json_loadb(buf + at, ll, 0, NULL) : NULL;
        at += ll + 1;
        char pn[64], an[64];
        const char *pt = j ? member_text(j, prompt_keys, pn, sizeof pn) : NULL;
        const char *as = j ? member_text(j, answer_keys, an, sizeof an) : NULL;
        if ((pt && *pt) || (as && *as)) {
            if (nitems == LK_ITEMS_MAX) {
                json_decref(j);
                break;
            }
            if ((rc = lk_grow(&plen, &pcap, nitems, sizeof *plen)) ||
                (rc = lk_grow(&alen, &acap, nitems, sizeof *alen)) ||
                (rc = lk_grow(&ix->sample, &scap, nitems, sizeof *ix->sample))) {
                json_decref(j);
                break;
            }
            size_t n0 = o.n;
            lk_tokenize(&o, (const uint8_t *)(pt ? pt : ""), pt ? strlen(pt) : 0);
            plen[nitems] = (uint32_t)(o.n - n0);
            n0 = o.n;
            lk_tokenize(&o, (const uint8_t *)(as ? as : ""), as ? strlen(as) : 0);
            alen[nitems] = (uint32_t)(o.n - n0);
            char s1[72], s2[40], s[128];
            sample_copy(s1, sizeof s1, pt ? pt : "");
            sample_copy(s2, sizeof s2, as ? as : "");
            snprintf(s, sizeof s, "%s => %s", s1, s2);
            ix->sample[nitems] = strdup(s);
            nitems++;
        }
        json_decref(j);
    }
    free(buf);
    ix->n_items = nitems;
    if (!rc)
        rc = o.rc;
    if (!rc && !nitems) {
        snprintf(err, errcap, "the test split %s has no JSONL record with a prompt or an answer",
                 path);
        rc = PTB_ENOTFOUND;
    }
    for (size_t i = 0; !rc && i < nitems; i++)
        if (!ix->sample[i])
            rc = PTB_ENOMEM;
    /* the template: non-numeric words in more than half of the items */
    if (!rc && nitems >= LK_TMPL_MIN_ITEMS) {
        uint64_t *u = malloc((o.n + 1) * sizeof *u);
        size_t nu = 0, at = 0;
        if (!u)
            rc = PTB_ENOMEM;
        for (size_t i = 0; !rc && i < nitems; i++) {
            size_t l = plen[i] + alen[i], n0 = nu;
            memcpy(u + nu, o.v + at, l * sizeof *u);
            at += l;
            qsort(u + n0, l, sizeof *u, lk_cmp_u64);
            for (size_t k = 0; k < l; k++)
                if (nu == n0 || u[nu - 1] != u[n0 + k])
                    u[nu++] = u[n0 + k];
        }
        if (!rc)
            qsort(u, nu, sizeof *u, lk_cmp_u64);
        uint64_t tw[256];
        size_t nt = 0;
        for (size_t i = 0; !rc && i < nu;) {
            size_t j = i;
            while (j < nu && u[j] == u[i])
                j++;
            if (!LK_TOK_NUM(u[i]) && 2 * (j - i) > nitems && nt < 256)
                tw[nt++] = u[i];
            i = j;
        }
        free(u);
        if (nt) {
            ix->tmpl_mask = 1;
            while (ix->tmpl_mask + 1 < 4 * nt)
                ix->tmpl_mask = 2 * ix->tmpl_mask + 1;
            if (!(ix->tmpl = calloc(ix->tmpl_mask + 1, sizeof *ix->tmpl)))
                rc = PTB_ENOMEM;
            for (size_t i = 0; !rc && i < nt; i++) {
                size_t s = LK_TMPL_SLOT(tw[i], ix->tmpl_mask);
                while (ix->tmpl[s])
                    s = (s + 1) & ix->tmpl_mask;
                ix->tmpl[s] = tw[i];
            }
            ix->n_tmpl = nt;
        }
    }
    /* the parts, template dropped */
    if (!rc && !(ix->part = calloc(2 * nitems, sizeof *ix->part)))
        rc = PTB_ENOMEM;
    if (!rc && !(ix->tok = malloc((o.n + 1) * sizeof *ix->tok)))
        rc = PTB_ENOMEM;
    tok_out keep = {.tmpl = ix->tmpl, .tmpl_mask = ix->tmpl_mask};
    for (size_t i = 0, at = 0; !rc && i < nitems; i++)
        for (int a = 0; a < 2; a++) {
            lk_part *pt = &ix->part[2 * i + (size_t)a];
            size_t l = a ? alen[i] : plen[i];
            pt->off = (uint32_t)ix->ntok;
            for (size_t k = 0; k < l; k++, at++)
                if (!ix->tmpl || !lk_tmpl_has(&keep, o.v[at]))
                    ix->tok[ix->ntok++] = o.v[at];
            pt->len = (uint32_t)(ix->ntok - pt->off);
        }
    free(o.v), free(plen), free(alen);
    if (rc)
        return rc;
    /* windows: every 8-gram of a long part; a short prompt whole (the answer when the prompt is
     * empty); a short answer next to a prompt is checked from the prompt's hits */
    for (size_t i = 0; i < nitems; i++) {
        lk_part *p = &ix->part[2 * i];
        for (int k = 0; k < 2; k++) {
            lk_part *pt = p + k;
            pt->win0 = (uint32_t)ix->nwin;
            pt->nwin = PART_LONG(pt) ? pt->len - LK_N + 1 : pt->len && (!k || !p->len) ? 1 : 0;
            ix->nwin += pt->nwin;
        }
    }
    kw *e = malloc((ix->nwin + 1) * sizeof *e);
    if (!e || !(ix->win_part = malloc((ix->nwin + 1) * sizeof *ix->win_part)) ||
        !(ix->post = malloc((ix->nwin + 1) * sizeof *ix->post))) {
        free(e);
        return PTB_ENOMEM;
    }
    for (size_t p = 0; p < 2 * nitems; p++) {
        lk_part *pt = &ix->part[p];
        size_t wl = PART_LONG(pt) ? LK_N : pt->len;
        for (uint32_t w = 0; w < pt->nwin; w++) {
            e[pt->win0 + w] =
                (kw){lk_seq_key(lk_seq_hash(ix->tok + pt->off + w, wl), wl), pt->win0 + w};
            ix->win_part[pt->win0 + w] = (uint32_t)p;
            ix->len_mask |= 1u << wl;
        }
    }
    qsort(e, ix->nwin, sizeof *e, cmp_kw);
    size_t nkeys = 0;
    for (size_t i = 0; i < ix->nwin; i++)
        nkeys += !i || e[i].key != e[i - 1].key;
    size_t tcap = 16;
    while (tcap < 2 * nkeys)
        tcap *= 2;
    ix->kmask = tcap - 1;
    size_t bwords = 1;
    while (bwords < nkeys / 4)
        bwords *= 2;
    ix->bloom_mask = bwords - 1;
    ix->key = calloc(tcap, sizeof *ix->key);
    ix->kstart = malloc(tcap * sizeof *ix->kstart);
    ix->kcount = malloc(tcap * sizeof *ix->kcount);
    ix->bloom = calloc(bwords, sizeof *ix->bloom);
    if (!ix->key || !ix->kstart || !ix->kcount || !ix->bloom) {
        free(e);
        return PTB_ENOMEM;
    }
    for (size_t i = 0; i < ix->nwin;) {
        size_t j = i;
        while (j < ix->nwin && e[j].key == e[i].key)
            ix->post[j] = e[j].win, j++;
        size_t s = lk_mix64(e[i].key) & ix->kmask;
        while (ix->key[s])
            s = (s + 1) & ix->kmask;
        ix->key[s] = e[i].key;
        ix->kstart[s] = (uint32_t)i;
        ix->kcount[s] = (uint32_t)(j - i);
        ix->bloom[lk_bloom_word(ix, e[i].key)] |= lk_bloom_bits(e[i].key);
        i = j;
    }
    free(e);
    return 0;
}
