/* --contains: a walk over every field of an event through the protobuf-c descriptors, with a
 * per-query cache of blob answers (query_contains.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <stdlib.h>
#include <string.h>

#include "query_contains.h"

#define CONTAINS_DEPTH_MAX 8

typedef struct blob_ans {
    uint8_t sha[32];
    int8_t state; /* 0 empty, 1 holds the text, 2 does not */
} blob_ans;

struct query_contains {
    store_txn *t;
    const char *text;
    size_t len;
    blob_ans *tab; /* open addressing, power-of-two size */
    size_t cap, used;
    uint64_t blob_errors;
};

query_contains *query_contains_new(store_txn *t, const char *text, size_t len)
{
    query_contains *qc = calloc(1, sizeof *qc);
    if (!qc)
        return NULL;
    qc->t = t;
    qc->text = text;
    qc->len = len;
    qc->cap = 256;
    qc->tab = calloc(qc->cap, sizeof *qc->tab);
    if (!qc->tab) {
        free(qc);
        return NULL;
    }
    return qc;
}

void query_contains_free(query_contains *qc)
{
    if (!qc)
        return;
    free(qc->tab);
    free(qc);
}

uint64_t query_contains_blob_errors(const query_contains *qc)
{
    return qc->blob_errors;
}

static blob_ans *ans_slot(blob_ans *tab, size_t cap, const uint8_t sha[32])
{
    size_t h;
    memcpy(&h, sha, sizeof h); /* SHA-256 bytes are uniform */
    for (size_t i = h & (cap - 1);; i = (i + 1) & (cap - 1))
        if (tab[i].state == 0 || memcmp(tab[i].sha, sha, 32) == 0)
            return &tab[i];
}

static int ans_grow(query_contains *qc)
{
    size_t cap = qc->cap * 2;
    blob_ans *nt = calloc(cap, sizeof *nt);
    if (!nt)
        return PTB_ENOMEM;
    for (size_t i = 0; i < qc->cap; i++)
        if (qc->tab[i].state)
            *ans_slot(nt, cap, qc->tab[i].sha) = qc->tab[i];
    free(qc->tab);
    qc->tab = nt;
    qc->cap = cap;
    return 0;
}

static int blob_holds(query_contains *qc, const uint8_t sha[32])
{
    blob_ans *a = ans_slot(qc->tab, qc->cap, sha);
    if (a->state)
        return a->state == 1;
    void *data;
    size_t len;
    int rc = store_blob_get(qc->t, sha, &data, &len);
    int holds = 0;
    if (rc == 0) {
        holds = qc->len == 0 || (len >= qc->len && memmem(data, len, qc->text, qc->len));
        free(data);
    } else if (rc == PTB_ENOTFOUND || rc == PTB_ECORRUPT) {
        qc->blob_errors += rc == PTB_ECORRUPT;
    } else {
        return rc;
    }
    if ((qc->used + 1) * 2 > qc->cap) {
        if ((rc = ans_grow(qc)))
            return rc;
        a = ans_slot(qc->tab, qc->cap, sha);
    }
    memcpy(a->sha, sha, 32);
    a->state = holds ? 1 : 2;
    qc->used++;
    return holds;
}

static bool is_blob_field(const ProtobufCFieldDescriptor *f)
{
    size_t n = strlen(f->name);
    return strcmp(f->name, "sha256") == 0 || strcmp(f->name, "blob") == 0 ||
           (n > 5 && strcmp(f->name + n - 5, "_blob") == 0);
}

static int walk(query_contains *qc, const ProtobufCMessage *m, int depth)
{
    if (!m || depth > CONTAINS_DEPTH_MAX)
        return 0;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *)m;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF &&
            *(const uint32_t *)(base + f->quantifier_offset) != f->id)
            continue;
        size_t n = 1;
        const char *arr = base + f->offset;
        size_t es = 0;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            n = *(const size_t *)(base + f->quantifier_offset);
            arr = *(const char *const *)(base + f->offset);
            if (!arr)
                continue;
        }
        switch (f->type) {
        case PROTOBUF_C_TYPE_STRING: es = sizeof(char *); break;
        case PROTOBUF_C_TYPE_BYTES: es = sizeof(ProtobufCBinaryData); break;
        case PROTOBUF_C_TYPE_MESSAGE: es = sizeof(ProtobufCMessage *); break;
        default: continue;
        }
        for (size_t k = 0; k < n; k++) {
            const void *p = arr + k * es;
            int r = 0;
            if (f->type == PROTOBUF_C_TYPE_STRING) {
                const char *s = *(char *const *)p;
                size_t sl = s ? strlen(s) : 0;
                r = s && (qc->len == 0 || (sl >= qc->len && memmem(s, sl, qc->text, qc->len)));
            } else if (f->type == PROTOBUF_C_TYPE_BYTES) {
                const ProtobufCBinaryData *b = p;
                if (b->len == 32 && is_blob_field(f))
                    r = blob_holds(qc, b->data);
            } else {
                r = walk(qc, *(const ProtobufCMessage *const *)p, depth + 1);
            }
            if (r)
                return r;
        }
    }
    return 0;
}

int query_contains_match(query_contains *qc, const ptb_event *ev)
{
    return walk(qc, &ev->base, 0);
}
