/* A generic event filler for tests: any event kind, every field set (see event_fill.h). */
#include "event_fill.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event_json.h"

static const char *const fill_strings[] = {
    "h\xc3\xa9llo \"quoted\" \\back\\ slash/",
    "line\nbreak\ttab\r\x01\x1f\x7f end",
    "\xe2\x9c\x93 \xf0\x9f\x98\x80 <\xe6\x97\xa5\xe6\x9c\xac> \xe2\x80\xa8",
    "/workspace/data/train.jsonl",
};

static void fill_message(ProtobufCMessage *m, unsigned seed, int depth);

static void fill_value(const ProtobufCFieldDescriptor *f, void *p, unsigned seed, unsigned k)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: *(int32_t *)p = k ? INT32_MIN : -(int32_t)(seed * 7 + 3); break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: *(uint32_t *)p = k ? UINT32_MAX : 4000000000u - seed; break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        *(int64_t *)p = (seed + k) % 2 ? INT64_MIN + seed : 1718000000123456789 + seed;
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        *(uint64_t *)p = (seed + k) % 2 ? UINT64_MAX - seed : 9007199254740993ull + seed;
        break;
    case PROTOBUF_C_TYPE_FLOAT: *(float *)p = 0.1f * (float)(seed + 1); break;
    case PROTOBUF_C_TYPE_DOUBLE:
        *(double *)p = seed % 2 ? 1e-300 * seed : 3.141592653589793 * (seed + 1) / 7;
        break;
    case PROTOBUF_C_TYPE_BOOL: *(protobuf_c_boolean *)p = 1; break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *e = f->descriptor;
        *(int *)p = e->values[e->n_values - 1 - (seed + k) % e->n_values / 2].value;
        if (*(int *)p == 0)
            *(int *)p = e->values[e->n_values - 1].value;
        break;
    }
    case PROTOBUF_C_TYPE_STRING: *(char **)p = strdup(fill_strings[(seed + k) % 4]); break;
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *bd = p;
        bd->len = event_json_field_hex(f) ? 32 : 1 + (seed + k) % 7;
        bd->data = malloc(bd->len);
        for (size_t i = 0; i < bd->len; i++)
            bd->data[i] = (uint8_t)(i * 37 + seed * 11 + k + (i == 0 ? 0 : 0xf0));
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *d = f->descriptor;
        ProtobufCMessage *sub = calloc(1, d->sizeof_message);
        protobuf_c_message_init(d, sub);
        fill_message(sub, seed + k + 1, 1);
        *(ProtobufCMessage **)p = sub;
        break;
    }
    }
}

static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE: return 8;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    default: return 4;
    }
}

/* Every field of m set to a non-default value (repeated: 2 elements), `_sid` fields left 0. */
static void fill_message(ProtobufCMessage *m, unsigned seed, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (event_json_field_hidden(f) || (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
            continue;
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && depth > 3)
            continue;
        char *at = (char *)m + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t es = elem_size(f->type);
            char *arr = calloc(2, es);
            for (unsigned k = 0; k < 2; k++)
                fill_value(f, arr + k * es, seed + i, k);
            *(char **)at = arr;
            *(size_t *)((char *)m + f->quantifier_offset) = 2;
        } else {
            fill_value(f, at, seed + i, 0);
        }
    }
}

/* An event of kind body_case; filled: every field set; else the body is empty. */
ptb_event *test_event_filled(uint32_t body_case, bool filled)
{
    ptb_event *ev = calloc(1, sizeof *ev);
    ptb__v1__event__init(ev);
    const ProtobufCFieldDescriptor *bf = event_type_field(body_case);
    const ProtobufCMessageDescriptor *bd = bf->descriptor;
    ProtobufCMessage *body = calloc(1, bd->sizeof_message);
    protobuf_c_message_init(bd, body);
    *(ProtobufCMessage **)((char *)ev + bf->offset) = body;
    ev->body_case = body_case;
    ev->seq = filled ? body_case : 1;
    ev->ts_ns = 1718000000000000000 + body_case;
    if (filled) {
        ev->mono_ns = 123456789 + body_case;
        ev->source = PTB__V1__SOURCE__SOURCE_TRACER + body_case % 8;
        ev->exec_id = body_case % 2 ? UINT64_MAX : 42;
        ev->tid = 4242;
        fill_message(body, body_case, 0);
    }
    return ev;
}
