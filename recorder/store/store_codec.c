/* The codec between a ptb_event and the bytes stored in `events` (schemas/store.md).
 *
 * Stored bytes are the protobuf encoding of ptb.v1.Event with two changes: seq is left out (it is
 * the key), and every string field `x` that has a sibling `uint32 x_sid` is replaced by the id of
 * an interned string (database `strings`) when it is not empty and at most STORE_STRING_MAX
 * bytes. Which fields are interned, and which index each one feeds, is derived once from the
 * protobuf-c descriptors, so a field added to event.proto with a `_sid` sibling is interned
 * without a change here. Decoding allocates from an arena, so a scan does no malloc per event. */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ descriptor tables */

#define CODEC_MAX_MSGS 96
#define CODEC_MAX_FIELDS 8

typedef struct codec_field {
    const ProtobufCFieldDescriptor *str; /* the string field */
    const ProtobufCFieldDescriptor *sid; /* its uint32 `_sid` sibling */
    int ix;                              /* store_index it feeds, or -1 */
} codec_field;

typedef struct codec_msg {
    const ProtobufCMessageDescriptor *d;
    codec_field f[CODEC_MAX_FIELDS];
    unsigned nf;
    const ProtobufCFieldDescriptor *sub[CODEC_MAX_FIELDS]; /* message fields that intern */
    unsigned nsub;
    bool interns; /* this message or one below it has interned fields */
} codec_msg;

static codec_msg codec_msgs[CODEC_MAX_MSGS];
static unsigned codec_nmsgs;
static pthread_once_t codec_once = PTHREAD_ONCE_INIT;

static codec_msg *codec_find(const ProtobufCMessageDescriptor *d)
{
    for (unsigned i = 0; i < codec_nmsgs; i++)
        if (codec_msgs[i].d == d)
            return &codec_msgs[i];
    return NULL;
}

/* Which index a string field feeds, by message and field name. */
static int codec_index_of(const ProtobufCMessageDescriptor *d, const char *name)
{
    if (!strcmp(name, "path") || !strcmp(name, "new_path") || !strcmp(name, "exe"))
        return STORE_IX_PATH;
    if (!strcmp(name, "host") || !strcmp(name, "ip"))
        return STORE_IX_HOST;
    if (d == &ptb__v1__tool_call__descriptor && !strcmp(name, "name"))
        return STORE_IX_TOOL;
    if (d == &ptb__v1__gpu_kernel__descriptor && !strcmp(name, "name"))
        return STORE_IX_KERNEL;
    return -1;
}

static codec_msg *codec_build(const ProtobufCMessageDescriptor *d, int depth)
{
    codec_msg *m = codec_find(d);
    if (m || depth > 8)
        return m;
    if (codec_nmsgs == CODEC_MAX_MSGS)
        abort(); /* our own schema outgrew the table: a build-time invariant */
    m = &codec_msgs[codec_nmsgs++];
    m->d = d;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type == PROTOBUF_C_TYPE_STRING && f->label != PROTOBUF_C_LABEL_REPEATED) {
            char sidname[128];
            snprintf(sidname, sizeof sidname, "%s_sid", f->name);
            const ProtobufCFieldDescriptor *sf =
                protobuf_c_message_descriptor_get_field_by_name(d, sidname);
            if (sf && sf->type == PROTOBUF_C_TYPE_UINT32 && m->nf < CODEC_MAX_FIELDS) {
                m->f[m->nf].str = f;
                m->f[m->nf].sid = sf;
                m->f[m->nf].ix = codec_index_of(d, f->name);
                m->nf++;
            }
        } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            codec_msg *sub = codec_build(f->descriptor, depth + 1);
            m = codec_find(d); /* the table does not move, but keep it obvious */
            if (sub && sub->interns && m->nsub < CODEC_MAX_FIELDS)
                m->sub[m->nsub++] = f;
        }
    }
    m->interns = m->nf > 0 || m->nsub > 0;
    return m;
}

static void codec_init(void)
{
    codec_build(&ptb__v1__event__descriptor, 0);
}

static const codec_msg *codec_msg_of(const ProtobufCMessageDescriptor *d)
{
    pthread_once(&codec_once, codec_init);
    return codec_find(d);
}

#define FIELD_PTR(msg, f) ((char *)(msg) + (f)->offset)
#define QUANT_PTR(msg, f) ((size_t *)((char *)(msg) + (f)->quantifier_offset))

/* ------------------------------------------------------------ varints */

size_t store_varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

int store_varint_get(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return PTB_ECORRUPT;
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return PTB_ECORRUPT;
}

/* ------------------------------------------------------------ encode */

typedef struct codec_enc {
    store_intern_fn intern;
    void *arg;
    store_postings *post;
    uint8_t *scratch; /* copies of messages with strings replaced */
    size_t scratch_used, scratch_cap;
} codec_enc;

static void codec_post(store_postings *p, int ix, uint64_t key)
{
    if (!p || ix < 0 || key == 0)
        return;
    for (uint32_t i = 0; i < p->n; i++)
        if (p->ix[i] == ix && p->key[i] == key)
            return;
    if (p->n < STORE_CODEC_MAX_POSTINGS) {
        p->ix[p->n] = (uint8_t)ix;
        p->key[p->n++] = key;
    }
}

/* Return a copy of msg (in the scratch area) with interned strings replaced by ids, or msg
 * itself when nothing in it is interned. NULL when the scratch area is exhausted. */
static const ProtobufCMessage *codec_intern_copy(codec_enc *e, const ProtobufCMessage *msg)
{
    const codec_msg *m = codec_msg_of(msg->descriptor);
    if (!m || !m->interns)
        return msg;
    size_t sz = (msg->descriptor->sizeof_message + 15) & ~(size_t)15;
    if (e->scratch_used + sz > e->scratch_cap)
        return NULL;
    ProtobufCMessage *c = (ProtobufCMessage *)(e->scratch + e->scratch_used);
    e->scratch_used += sz;
    memcpy(c, msg, msg->descriptor->sizeof_message);
    for (unsigned i = 0; i < m->nf; i++) {
        char **sp = (char **)FIELD_PTR(c, m->f[i].str);
        uint32_t *sidp = (uint32_t *)FIELD_PTR(c, m->f[i].sid);
        *sidp = 0;
        const char *s = *sp;
        size_t n = s ? strlen(s) : 0;
        if (n == 0 || n > STORE_STRING_MAX)
            continue;
        uint32_t sid = e->intern ? e->intern(e->arg, s, n) : 0;
        if (sid) {
            *sidp = sid;
            *sp = (char *)protobuf_c_empty_string;
            codec_post(e->post, m->f[i].ix, sid);
        }
    }
    for (unsigned i = 0; i < m->nsub; i++) {
        const ProtobufCFieldDescriptor *f = m->sub[i];
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *QUANT_PTR(c, f);
            ProtobufCMessage **arr = *(ProtobufCMessage ***)FIELD_PTR(c, f);
            if (n == 0 || !arr)
                continue;
            size_t asz = (n * sizeof *arr + 15) & ~(size_t)15;
            if (e->scratch_used + asz > e->scratch_cap)
                return NULL;
            ProtobufCMessage **na = (ProtobufCMessage **)(e->scratch + e->scratch_used);
            e->scratch_used += asz;
            for (size_t k = 0; k < n; k++) {
                na[k] = arr[k] ? (ProtobufCMessage *)codec_intern_copy(e, arr[k]) : NULL;
                if (arr[k] && !na[k])
                    return NULL;
            }
            *(ProtobufCMessage ***)FIELD_PTR(c, f) = na;
        } else {
            ProtobufCMessage **sub = (ProtobufCMessage **)FIELD_PTR(c, f);
            if (!*sub)
                continue;
            const ProtobufCMessage *nc = codec_intern_copy(e, *sub);
            if (!nc)
                return NULL;
            *sub = (ProtobufCMessage *)nc;
        }
    }
    return c;
}

typedef struct codec_sink {
    ProtobufCBuffer base;
    uint8_t *buf;
    size_t cap, len;
} codec_sink;

static void codec_sink_append(ProtobufCBuffer *b, size_t n, const uint8_t *data)
{
    codec_sink *s = (codec_sink *)b;
    if (s->len + n <= s->cap)
        memcpy(s->buf + s->len, data, n);
    s->len += n;
}

size_t store_codec_size(const ptb_event *ev)
{
    return protobuf_c_message_get_packed_size(&ev->base);
}

int store_codec_encode(const ptb_event *ev, store_intern_fn intern, void *arg, uint8_t *buf,
                       size_t cap, size_t *len, store_postings *postings)
{
    uint8_t scratch[8192] __attribute__((aligned(16)));
    codec_enc e = {intern, arg, postings, scratch, 0, sizeof scratch};
    if (postings) {
        postings->n = 0;
        codec_post(postings, STORE_IX_TYPE, ev->body_case);
        codec_post(postings, STORE_IX_EXEC, ev->exec_id);
    }
    ptb_event copy = *ev;
    copy.seq = 0;
    const ProtobufCFieldDescriptor *bf = event_type_field(ev->body_case);
    if (ev->body_case != PTB__V1__EVENT__BODY__NOT_SET && !bf)
        return PTB_EINVAL;
    if (bf) {
        ProtobufCMessage **bp = (ProtobufCMessage **)FIELD_PTR(&copy, bf);
        if (!*bp)
            return PTB_EINVAL;
        const ProtobufCMessage *nb = codec_intern_copy(&e, *bp);
        if (!nb)
            return PTB_ETOOBIG; /* more nested messages than any event kind has */
        *bp = (ProtobufCMessage *)nb;
    }
    /* one pass: pack into buf while it fits, count the rest */
    codec_sink sink = {{codec_sink_append}, buf, cap, 0};
    protobuf_c_message_pack_to_buffer(&copy.base, &sink.base);
    *len = sink.len;
    return sink.len > cap ? PTB_ETOOBIG : 0;
}

/* ------------------------------------------------------------ arena */

typedef struct store_arena_big {
    struct store_arena_big *next;
    max_align_t data[];
} store_arena_big;

static void *arena_alloc(void *ad, size_t size)
{
    store_arena *a = ad;
    size = (size + 15) & ~(size_t)15;
    if (a->used + size <= a->cap) {
        void *p = a->buf + a->used;
        a->used += size;
        return p;
    }
    if (size < (1u << 20) && a->used == 0) { /* first use, or buffer too small: grow it */
        size_t ncap = a->cap ? a->cap * 2 : 65536;
        while (ncap < size)
            ncap *= 2;
        uint8_t *nb = realloc(a->buf, ncap);
        if (nb) {
            a->buf = nb;
            a->cap = ncap;
            a->used = size;
            return nb;
        }
    }
    store_arena_big *b = malloc(sizeof *b + size);
    if (!b)
        return NULL;
    b->next = a->big;
    a->big = b;
    return b->data;
}

static void arena_free(void *ad, void *p)
{
    (void)ad, (void)p; /* freed all at once by store_arena_reset */
}

void store_arena_init(store_arena *a)
{
    memset(a, 0, sizeof *a);
    a->pa.alloc = arena_alloc;
    a->pa.free = arena_free;
    a->pa.allocator_data = a;
}

void store_arena_reset(store_arena *a)
{
    /* When the last event spilled into big blocks, grow the buffer for the next one. */
    bool spilled = a->big != NULL;
    while (a->big) {
        store_arena_big *n = a->big->next;
        free(a->big);
        a->big = n;
    }
    if (spilled && a->cap < (64u << 20)) {
        free(a->buf);
        a->cap *= 2;
        a->buf = malloc(a->cap);
        if (!a->buf)
            a->cap = 0;
    }
    a->used = 0;
}

void store_arena_free(store_arena *a)
{
    store_arena_reset(a);
    free(a->buf);
    a->buf = NULL;
    a->cap = 0;
}

/* ------------------------------------------------------------ decode */

static int codec_resolve(ProtobufCMessage *msg, store_arena *a, store_resolve_fn resolve,
                         void *arg, int depth)
{
    if (depth > 8)
        return PTB_ECORRUPT;
    const codec_msg *m = codec_msg_of(msg->descriptor);
    if (!m || !m->interns)
        return 0;
    for (unsigned i = 0; i < m->nf; i++) {
        uint32_t *sidp = (uint32_t *)FIELD_PTR(msg, m->f[i].sid);
        if (!*sidp)
            continue;
        char **sp = (char **)FIELD_PTR(msg, m->f[i].str);
        if (*sp && **sp)
            return PTB_ECORRUPT; /* both the string and an id: not written by a store */
        const char *s;
        size_t n;
        int rc = resolve(arg, *sidp, &s, &n);
        if (rc)
            return rc == PTB_ENOTFOUND ? PTB_ECORRUPT : rc;
        char *c = arena_alloc(a, n + 1);
        if (!c)
            return PTB_ENOMEM;
        memcpy(c, s, n);
        c[n] = 0;
        *sp = c;
        *sidp = 0;
    }
    for (unsigned i = 0; i < m->nsub; i++) {
        const ProtobufCFieldDescriptor *f = m->sub[i];
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *QUANT_PTR(msg, f);
            ProtobufCMessage **arr = *(ProtobufCMessage ***)FIELD_PTR(msg, f);
            for (size_t k = 0; k < n && arr; k++) {
                int rc = arr[k] ? codec_resolve(arr[k], a, resolve, arg, depth + 1) : 0;
                if (rc)
                    return rc;
            }
        } else {
            ProtobufCMessage *sub = *(ProtobufCMessage **)FIELD_PTR(msg, f);
            int rc = sub ? codec_resolve(sub, a, resolve, arg, depth + 1) : 0;
            if (rc)
                return rc;
        }
    }
    return 0;
}

int store_codec_decode(const void *data, size_t len, uint64_t seq, store_arena *a,
                       store_resolve_fn resolve, void *arg, const ptb_event **out)
{
    ptb_event *ev = ptb__v1__event__unpack(&a->pa, len, data);
    if (!ev)
        return PTB_ECORRUPT;
    if (ev->seq != 0)
        return PTB_ECORRUPT; /* the store never writes seq into the value */
    ev->seq = seq;
    const ProtobufCFieldDescriptor *bf = event_type_field(ev->body_case);
    if (bf) {
        ProtobufCMessage *body = *(ProtobufCMessage **)FIELD_PTR(ev, bf);
        if (body) {
            int rc = codec_resolve(body, a, resolve, arg, 0);
            if (rc)
                return rc;
        }
    }
    *out = ev;
    return 0;
}

/* ------------------------------------------------------------ postings of a decoded event */

static void codec_postings_walk(const ProtobufCMessage *msg, store_lookup_fn lookup, void *arg,
                                store_postings *out, int depth)
{
    const codec_msg *m = codec_msg_of(msg->descriptor);
    if (!m || !m->interns || depth > 8)
        return;
    for (unsigned i = 0; i < m->nf; i++) {
        const char *s = *(const char *const *)FIELD_PTR(msg, m->f[i].str);
        size_t n = s ? strlen(s) : 0;
        if (n == 0 || n > STORE_STRING_MAX || m->f[i].ix < 0)
            continue;
        codec_post(out, m->f[i].ix, lookup(arg, s, n));
    }
    for (unsigned i = 0; i < m->nsub; i++) {
        const ProtobufCFieldDescriptor *f = m->sub[i];
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *QUANT_PTR(msg, f);
            ProtobufCMessage *const *arr = *(ProtobufCMessage *const **)FIELD_PTR(msg, f);
            for (size_t k = 0; k < n && arr; k++)
                if (arr[k])
                    codec_postings_walk(arr[k], lookup, arg, out, depth + 1);
        } else {
            const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)FIELD_PTR(msg, f);
            if (sub)
                codec_postings_walk(sub, lookup, arg, out, depth + 1);
        }
    }
}

void store_codec_postings(const ptb_event *ev, store_lookup_fn lookup, void *arg,
                          store_postings *out)
{
    out->n = 0;
    codec_post(out, STORE_IX_TYPE, ev->body_case);
    codec_post(out, STORE_IX_EXEC, ev->exec_id);
    const ProtobufCMessage *body = event_body(ev);
    if (body)
        codec_postings_walk(body, lookup, arg, out, 0);
}
