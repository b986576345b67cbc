/* --contains: a walk over every field of an event through the protobuf-c descriptors, with a
 * per-query cache of blob answers (query_contains.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "query_contains.h"

#define CONTAINS_DEPTH_MAX 8

typedef struct blob_ans {
    uint8_t sha[32];
    int8_t state; /* 0 empty, 1 holds the text, 2 does not */
} blob_ans;

struct query_contains {
    const char *text;
    size_t len;
    blob_ans *tab; /* open addressing, power-of-two size */
    size_t cap, used;
    uint64_t blob_errors;
    pthread_mutex_t mu;        /* guards tab, cap, used, blob_errors */
    bool prepared, any_string; /* an interned string holds the text */
};

query_contains *query_contains_new(const char *text, size_t len)
{
    query_contains *qc = calloc(1, sizeof *qc);
    if (!qc)
        return NULL;
    qc->text = text;
    qc->len = len;
    qc->cap = 256;
    qc->tab = calloc(qc->cap, sizeof *qc->tab);
    if (!qc->tab) {
        free(qc);
        return NULL;
    }
    pthread_mutex_init(&qc->mu, NULL);
    return qc;
}

void query_contains_free(query_contains *qc)
{
    if (!qc)
        return;
    pthread_mutex_destroy(&qc->mu);
    free(qc->tab);
    free(qc);
}

uint64_t query_contains_blob_errors(const query_contains *qc)
{
    return qc->blob_errors; /* read after the query: its threads have ended */
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

/* Blobs are read and searched under the lock: each one once per query, and few events
 * reference one, so the threads hardly wait on each other here. */
static int blob_holds_locked(query_contains *qc, store_txn *t, const uint8_t sha[32])
{
    blob_ans *a = ans_slot(qc->tab, qc->cap, sha);
    if (a->state)
        return a->state == 1;
    void *data;
    size_t len;
    int rc = store_blob_get(t, sha, &data, &len);
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

static int blob_holds(query_contains *qc, store_txn *t, const uint8_t sha[32])
{
    pthread_mutex_lock(&qc->mu);
    int r = blob_holds_locked(qc, t, sha);
    pthread_mutex_unlock(&qc->mu);
    return r;
}

static bool is_blob_field(const ProtobufCFieldDescriptor *f)
{
    size_t n = strlen(f->name);
    return strcmp(f->name, "sha256") == 0 || strcmp(f->name, "blob") == 0 ||
           (n > 5 && strcmp(f->name + n - 5, "_blob") == 0);
}

static int walk(query_contains *qc, store_txn *t, const ProtobufCMessage *m, int depth)
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
                    r = blob_holds(qc, t, b->data);
            } else {
                r = walk(qc, t, *(const ProtobufCMessage *const *)p, depth + 1);
            }
            if (r)
                return r;
        }
    }
    return 0;
}

/* Body cases (oneof field numbers of Event) whose message has a blob field at any depth, bit c
 * of case_blob[c / 64]; cases not below 256 count as having one. */
static uint64_t case_blob[4];
static pthread_once_t case_blob_once = PTHREAD_ONCE_INIT;

static bool has_blob_field(const ProtobufCMessageDescriptor *d, int depth)
{
    if (depth > CONTAINS_DEPTH_MAX)
        return true;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if ((f->type == PROTOBUF_C_TYPE_BYTES && is_blob_field(f)) ||
            (f->type == PROTOBUF_C_TYPE_MESSAGE && has_blob_field(f->descriptor, depth + 1)))
            return true;
    }
    return false;
}

static void case_blob_init(void)
{
    const ProtobufCMessageDescriptor *d = &ptb__v1__event__descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->id < 256 && f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF &&
            f->type == PROTOBUF_C_TYPE_MESSAGE && has_blob_field(f->descriptor, 1))
            case_blob[f->id / 64] |= (uint64_t)1 << (f->id % 64);
    }
}

int query_contains_prepare(query_contains *qc, store_txn *t)
{
    pthread_once(&case_blob_once, case_blob_init);
    qc->any_string = qc->len == 0;
    uint32_t n = store_string_count(t);
    for (uint32_t id = 1; id <= n && !qc->any_string; id++) {
        const char *str;
        size_t sl;
        int rc = store_string_get(t, id, &str, &sl);
        if (rc == PTB_ENOTFOUND)
            continue;
        if (rc)
            return rc;
        qc->any_string = sl >= qc->len && memmem(str, sl, qc->text, qc->len);
    }
    qc->prepared = true;
    return 0;
}

bool query_contains_maybe(void *arg, uint32_t body_case, const void *data, size_t len)
{
    const query_contains *qc = arg;
    if (!qc->prepared || qc->any_string)
        return true;
    if (body_case >= 256 || (case_blob[body_case / 64] >> (body_case % 64)) & 1)
        return true;
    return len >= qc->len && memmem(data, len, qc->text, qc->len);
}

int query_contains_match(void *qc, store_txn *t, const ptb_event *ev)
{
    return walk(qc, t, &ev->base, 0);
}
