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
#define CODEC_MAX_FIELDS_PER_MSG 96
#define CODEC_PLAIN (-1)
#define CODEC_SID (-2)

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
    /* per field index: >= 0 the interned pair f[slot] whose string this is, CODEC_SID for a
     * `_sid` field (never encoded from the producer's struct), CODEC_PLAIN otherwise */
    int8_t slot[CODEC_MAX_FIELDS_PER_MSG];
    /* fields outside any oneof, in descriptor order, and the oneofs (by quantifier offset):
     * the encoder looks up the one member that is set instead of testing every member */
    uint8_t plain[CODEC_MAX_FIELDS_PER_MSG];
    unsigned nplain;
    unsigned oneof_q[4];
    unsigned noneofs;
} codec_msg;

static codec_msg codec_msgs[CODEC_MAX_MSGS];
static unsigned codec_nmsgs;
static pthread_once_t codec_once = PTHREAD_ONCE_INIT;

/* descriptor pointer -> entry, open addressing, filled once by codec_init */
#define CODEC_HASH 256
static codec_msg *codec_hash[CODEC_HASH];

static unsigned codec_slot_of(const ProtobufCMessageDescriptor *d)
{
    return (unsigned)(((uintptr_t)d >> 4) * 0x9e3779b1u) % CODEC_HASH;
}

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
    if ((d == &ptb__v1__gpu_kernel__descriptor || d == &ptb__v1__gpu_kernel_name__descriptor) &&
        !strcmp(name, "name"))
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
    if (d->n_fields > CODEC_MAX_FIELDS_PER_MSG)
        abort(); /* likewise */
    m = &codec_msgs[codec_nmsgs++];
    m->d = d;
    memset(m->slot, CODEC_PLAIN, sizeof m->slot);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)) {
            m->plain[m->nplain++] = (uint8_t)i;
            continue;
        }
        bool seen = false;
        for (unsigned k = 0; k < m->noneofs; k++)
            seen = seen || m->oneof_q[k] == f->quantifier_offset;
        if (!seen) {
            if (m->noneofs == 4)
                abort(); /* likewise */
            m->oneof_q[m->noneofs++] = f->quantifier_offset;
        }
    }
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
                m->slot[i] = (int8_t)m->nf;
                m->slot[sf - d->fields] = CODEC_SID;
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
    for (unsigned i = 0; i < codec_nmsgs; i++) {
        unsigned h = codec_slot_of(codec_msgs[i].d);
        while (codec_hash[h])
            h = (h + 1) % CODEC_HASH;
        codec_hash[h] = &codec_msgs[i];
    }
}

static bool codec_ready;

static const codec_msg *codec_msg_of(const ProtobufCMessageDescriptor *d)
{
    if (!__atomic_load_n(&codec_ready, __ATOMIC_ACQUIRE)) {
        pthread_once(&codec_once, codec_init);
        __atomic_store_n(&codec_ready, true, __ATOMIC_RELEASE);
    }
    for (unsigned h = codec_slot_of(d);; h = (h + 1) % CODEC_HASH) {
        if (!codec_hash[h] || codec_hash[h]->d == d)
            return codec_hash[h];
    }
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

/* The encoder. It writes the protobuf wire format itself, walking the descriptors, instead of
 * calling protobuf_c_message_pack: that lets it intern strings on the way (no copy of the event
 * with strings swapped for ids) and it is several times faster, which matters at a million
 * events a second. The output is ordinary protobuf that protobuf-c (and any other decoder)
 * reads; a unit test checks it decodes to the same message as protobuf-c's own encoding for
 * every event kind. Fields are written in descriptor order; an interned string is written as its
 * `_sid` field in the string's place. */

typedef struct codec_enc {
    store_intern_fn intern;
    void *arg;
    store_postings *post;
    uint8_t *buf;
    size_t cap, pos;
    bool over; /* ran past cap: keep counting, stop writing */
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

static void enc_bytes(codec_enc *e, const void *p, size_t n)
{
    if (e->pos + n <= e->cap)
        memcpy(e->buf + e->pos, p, n);
    else
        e->over = true;
    e->pos += n;
}

static inline void enc_varint(codec_enc *e, uint64_t v)
{
    if (v < 0x80 && e->pos < e->cap) {
        e->buf[e->pos++] = (uint8_t)v;
        return;
    }
    if (e->pos + 10 <= e->cap) {
        e->pos += store_varint_put(e->buf + e->pos, v);
        return;
    }
    uint8_t tmp[10];
    enc_bytes(e, tmp, store_varint_put(tmp, v));
}

static void enc_tag(codec_enc *e, uint32_t id, unsigned wt)
{
    enc_varint(e, (uint64_t)id << 3 | wt);
}

static void enc_fixed(codec_enc *e, const void *p, size_t n)
{
    enc_bytes(e, p, n); /* x86-64 and arm64 are little-endian, like the wire format */
}

static int enc_message(codec_enc *e, const ProtobufCMessage *msg, int depth);

/* Length-delimited values are written once: 4 bytes reserved for the length at `at` (events are
 * < 256 MiB), the value, then the length put in and the gap closed if it needed fewer. */
static size_t enc_len_open(codec_enc *e, uint32_t id)
{
    enc_tag(e, id, 2);
    e->pos += 4;
    return e->pos - 4;
}

static int enc_len_close(codec_enc *e, size_t at)
{
    size_t n = e->pos - at - 4;
    if (n >= (1u << 28))
        return PTB_ETOOBIG;
    uint8_t lb[10];
    size_t ln = store_varint_put(lb, n);
    if (!e->over && e->pos <= e->cap) {
        memmove(e->buf + at + ln, e->buf + at + 4, n);
        memcpy(e->buf + at, lb, ln);
    }
    e->pos -= 4 - ln;
    return 0;
}

/* Length-delimited submessage. */
static int enc_sub(codec_enc *e, uint32_t id, const ProtobufCMessage *sub, int depth)
{
    size_t at = enc_len_open(e, id);
    int rc = enc_message(e, sub, depth + 1);
    return rc ? rc : enc_len_close(e, at);
}

/* One value of a scalar field at p (not a message). Zigzag and sign extension as protobuf. */
static void enc_scalar(codec_enc *e, ProtobufCType t, const void *p)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_ENUM: enc_varint(e, (uint64_t)(int64_t) * (const int32_t *)p); break;
    case PROTOBUF_C_TYPE_SINT32: {
        int32_t v = *(const int32_t *)p;
        enc_varint(e, (uint32_t)((uint32_t)v << 1) ^ (uint32_t)(v >> 31));
        break;
    }
    case PROTOBUF_C_TYPE_UINT32: enc_varint(e, *(const uint32_t *)p); break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_UINT64: enc_varint(e, *(const uint64_t *)p); break;
    case PROTOBUF_C_TYPE_SINT64: {
        int64_t v = *(const int64_t *)p;
        enc_varint(e, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
        break;
    }
    case PROTOBUF_C_TYPE_BOOL: enc_varint(e, *(const protobuf_c_boolean *)p ? 1 : 0); break;
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FLOAT: enc_fixed(e, p, 4); break;
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_DOUBLE: enc_fixed(e, p, 8); break;
    default: break;
    }
}

static unsigned wire_type(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FLOAT: return 5;
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_DOUBLE: return 1;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE: return 2;
    default: return 0;
    }
}

static size_t scalar_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_DOUBLE: return 8;
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    default: return 4;
    }
}

static bool scalar_zero(ProtobufCType t, const void *p)
{
    switch (scalar_size(t)) {
    case 8: return *(const uint64_t *)p == 0;
    case 4: return *(const uint32_t *)p == 0;
    default: return *(const protobuf_c_boolean *)p == 0;
    }
}

/* A string field: interned (written as its `_sid` field) when the message has a sid sibling for
 * it and the intern callback gives an id; inline otherwise. */
static void enc_string(codec_enc *e, const codec_msg *m, int slot,
                       const ProtobufCFieldDescriptor *f, const char *s)
{
    size_t n = strlen(s);
    if (slot >= 0 && n <= STORE_STRING_MAX && e->intern) {
        uint32_t sid = e->intern(e->arg, s, n);
        if (sid) {
            enc_tag(e, m->f[slot].sid->id, 0);
            enc_varint(e, sid);
            codec_post(e->post, m->f[slot].ix, sid);
            return;
        }
    }
    enc_tag(e, f->id, 2);
    enc_varint(e, n);
    enc_bytes(e, s, n);
}

static int enc_message(codec_enc *e, const ProtobufCMessage *msg, int depth)
{
    if (depth > 16)
        return PTB_EINVAL;
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    const codec_msg *m = codec_msg_of(d);
    if (!m)
        return PTB_EINVAL; /* not a message of the event schema */
    /* the plain fields, then the set member of each oneof */
    unsigned total = m->nplain + m->noneofs;
    for (unsigned j = 0; j < total; j++) {
        unsigned i;
        if (j < m->nplain) {
            i = m->plain[j];
        } else {
            uint32_t id = *(const uint32_t *)((const char *)msg + m->oneof_q[j - m->nplain]);
            const ProtobufCFieldDescriptor *of =
                id ? protobuf_c_message_descriptor_get_field(d, id) : NULL;
            if (!of || !(of->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
                of->quantifier_offset != m->oneof_q[j - m->nplain])
                continue;
            i = (unsigned)(of - d->fields);
        }
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const void *p = (const char *)msg + f->offset;
        int slot = m->slot[i];
        if (slot == CODEC_SID)
            continue;
        if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && f->label == PROTOBUF_C_LABEL_OPTIONAL &&
            f->quantifier_offset && f->type != PROTOBUF_C_TYPE_STRING &&
            f->type != PROTOBUF_C_TYPE_MESSAGE &&
            !*(const protobuf_c_boolean *)((const char *)msg + f->quantifier_offset))
            continue; /* proto2-style optional scalar not present */
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const char *)msg + f->quantifier_offset);
            const void *arr = *(const void *const *)p;
            if (n == 0 || !arr)
                continue;
            if (f->type == PROTOBUF_C_TYPE_STRING) {
                for (size_t k = 0; k < n; k++) {
                    const char *s = ((const char *const *)arr)[k];
                    enc_string(e, m, CODEC_PLAIN, f, s ? s : "");
                }
            } else if (f->type == PROTOBUF_C_TYPE_BYTES) {
                for (size_t k = 0; k < n; k++) {
                    const ProtobufCBinaryData *b = &((const ProtobufCBinaryData *)arr)[k];
                    enc_tag(e, f->id, 2);
                    enc_varint(e, b->len);
                    enc_bytes(e, b->data, b->len);
                }
            } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
                for (size_t k = 0; k < n; k++) {
                    const ProtobufCMessage *sub = ((const ProtobufCMessage *const *)arr)[k];
                    if (!sub)
                        return PTB_EINVAL;
                    int rc = enc_sub(e, f->id, sub, depth);
                    if (rc)
                        return rc;
                }
            } else { /* packed scalars (proto3) */
                size_t sz = scalar_size(f->type);
                size_t at = enc_len_open(e, f->id);
                for (size_t k = 0; k < n; k++)
                    enc_scalar(e, f->type, (const char *)arr + k * sz);
                int rc = enc_len_close(e, at);
                if (rc)
                    return rc;
            }
            continue;
        }
        switch (f->type) {
        case PROTOBUF_C_TYPE_STRING: {
            const char *s = *(const char *const *)p;
            bool oneof = f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF;
            if (!s || (!*s && !oneof && f->label != PROTOBUF_C_LABEL_REQUIRED))
                continue;
            enc_string(e, m, slot, f, s);
            break;
        }
        case PROTOBUF_C_TYPE_BYTES: {
            const ProtobufCBinaryData *b = p;
            if (b->len == 0 && !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
                continue;
            enc_tag(e, f->id, 2);
            enc_varint(e, b->len);
            enc_bytes(e, b->data, b->len);
            break;
        }
        case PROTOBUF_C_TYPE_MESSAGE: {
            const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)p;
            if (!sub)
                continue;
            int rc = enc_sub(e, f->id, sub, depth);
            if (rc)
                return rc;
            break;
        }
        default:
            if (f->label == PROTOBUF_C_LABEL_NONE && !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
                scalar_zero(f->type, p))
                continue;
            enc_tag(e, f->id, wire_type(f->type));
            enc_scalar(e, f->type, p);
            break;
        }
    }
    return 0;
}

size_t store_codec_size(const ptb_event *ev)
{
    return protobuf_c_message_get_packed_size(&ev->base);
}

int store_codec_encode(const ptb_event *ev, store_intern_fn intern, void *arg, uint8_t *buf,
                       size_t cap, size_t *len, store_postings *postings)
{
    if (postings) {
        postings->n = 0;
        codec_post(postings, STORE_IX_TYPE, store_type_key(ev->body_case));
        codec_post(postings, STORE_IX_EXEC, ev->exec_id);
    }
    if (ev->body_case != PTB__V1__EVENT__BODY__NOT_SET) {
        const ProtobufCFieldDescriptor *bf = event_type_field(ev->body_case);
        if (!bf || !*(ProtobufCMessage *const *)((const char *)ev + bf->offset))
            return PTB_EINVAL;
    }
    ptb_event copy = *ev;
    copy.seq = 0;
    codec_enc e = {intern, arg, postings, buf, cap, 0, false};
    int rc = enc_message(&e, &copy.base, 0);
    if (rc)
        return rc;
    *len = e.pos;
    if (e.over || e.pos > cap) {
        /* the caller retries with *len bytes; room for the 4-byte length reservations */
        *len = e.pos + 64;
        return PTB_ETOOBIG;
    }
    return 0;
}

/* ------------------------------------------------------------ arena */

typedef struct store_arena_big {
    struct store_arena_big *next;
    size_t cap, used;
    max_align_t data[];
} store_arena_big;

/* Bump allocation from the main buffer, then from the newest overflow block; a full block makes
 * a new one. Everything lives until store_arena_reset. */
static void *arena_alloc(void *ad, size_t size)
{
    store_arena *a = ad;
    size = (size + 15) & ~(size_t)15;
    if (a->used + size <= a->cap) {
        void *p = a->buf + a->used;
        a->used += size;
        return p;
    }
    if (a->cap == 0 && size < (1u << 20)) { /* first use */
        a->buf = malloc(65536);
        if (a->buf) {
            a->cap = 65536;
            return arena_alloc(ad, size);
        }
    }
    store_arena_big *b = a->big;
    if (b && b->used + size <= b->cap) {
        void *p = (uint8_t *)b->data + b->used;
        b->used += size;
        return p;
    }
    size_t cap = size > 65536 ? size : 65536;
    b = malloc(sizeof *b + cap);
    if (!b)
        return NULL;
    b->next = a->big;
    b->cap = cap;
    b->used = size;
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

static int codec_resolve(ProtobufCMessage *msg, store_arena *a, store_resolve_fn resolve, void *arg,
                         int depth)
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
    codec_post(out, STORE_IX_TYPE, store_type_key(ev->body_case));
    codec_post(out, STORE_IX_EXEC, ev->exec_id);
    const ProtobufCMessage *body = event_body(ev);
    if (body)
        codec_postings_walk(body, lookup, arg, out, 0);
}

/* ------------------------------------------------------------ postings of stored bytes */

static void codec_postings_sids(const ProtobufCMessage *msg, store_postings *out, int depth)
{
    const codec_msg *m = codec_msg_of(msg->descriptor);
    if (!m || !m->interns || depth > 8)
        return;
    for (unsigned i = 0; i < m->nf; i++)
        if (m->f[i].ix >= 0)
            codec_post(out, m->f[i].ix, *(const uint32_t *)FIELD_PTR(msg, m->f[i].sid));
    for (unsigned i = 0; i < m->nsub; i++) {
        const ProtobufCFieldDescriptor *f = m->sub[i];
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *QUANT_PTR(msg, f);
            ProtobufCMessage *const *arr = *(ProtobufCMessage *const **)FIELD_PTR(msg, f);
            for (size_t k = 0; k < n && arr; k++)
                if (arr[k])
                    codec_postings_sids(arr[k], out, depth + 1);
        } else {
            const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)FIELD_PTR(msg, f);
            if (sub)
                codec_postings_sids(sub, out, depth + 1);
        }
    }
}

int store_codec_postings_stored(const void *data, size_t len, store_arena *a, store_postings *out)
{
    ptb_event *ev = ptb__v1__event__unpack(&a->pa, len, data);
    if (!ev)
        return PTB_ECORRUPT;
    out->n = 0;
    codec_post(out, STORE_IX_TYPE, store_type_key(ev->body_case));
    codec_post(out, STORE_IX_EXEC, ev->exec_id);
    const ProtobufCMessage *body = event_body(ev);
    if (body)
        codec_postings_sids(body, out, 0);
    return 0;
}
