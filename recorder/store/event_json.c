/* The JSON form of events, generic over the protobuf-c descriptors. See event_json.h.
 *
 * Encoding writes the text directly (no json_t tree): `ptb query --format jsonl` prints millions
 * of events, and a direct writer is several times faster than building and dumping jansson
 * values. It also prints each double with the fewest digits that read back exactly.
 * event_json_encode() parses that text back into a json_t for callers that want a value.
 *
 * Decoding walks a jansson object and builds the message with malloc'd memory laid out as
 * protobuf-c's own unpacker would, so protobuf_c_message_free_unpacked(.., NULL) frees it. The
 * message is kept consistent after every step (a repeated field's count only ever counts filled
 * elements, a submessage is linked before it is filled), so an error anywhere frees cleanly. */
#include "event_json.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event_json_text.h"

/* ------------------------------------------------------------------ tables */

#define EJ_ENUMS_MAX 16
#define EJ_ENUM_NAMES_MAX 256
#define EJ_MSGS_MAX 128

static struct {
    const ProtobufCEnumDescriptor *d;
    unsigned first; /* index of values[0]'s name in ej_enum_names */
} ej_enums[EJ_ENUMS_MAX];
static unsigned ej_enums_n;
static char ej_enum_names[EJ_ENUM_NAMES_MAX][48];
static unsigned ej_enum_names_n;

/* Body fields named like an envelope key (or `type`) are shown as "<body case>_<field>" at the
 * top level: none today; Gap.origin was renamed from `source` for this. An alias that still collides fails event_json_init. */
#define EJ_ALIAS_MAX 16
static struct {
    uint32_t body_case;
    const ProtobufCFieldDescriptor *f;
    char key[96];
} ej_alias[EJ_ALIAS_MAX];
static unsigned ej_alias_n;

static pthread_once_t ej_once = PTHREAD_ONCE_INIT;
static ptb_errbuf ej_init_err;
static int ej_init_rc;

static const char *const ej_type_key = "type";

static bool ej_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

bool event_json_field_hidden(const ProtobufCFieldDescriptor *f)
{
    return ej_ends_with(f->name, "_sid");
}

bool event_json_field_hex(const ProtobufCFieldDescriptor *f)
{
    return strcmp(f->name, "sha256") == 0 || strcmp(f->name, "blob") == 0 ||
           ej_ends_with(f->name, "_blob");
}

/* "HttpMethod" -> "HTTP_METHOD_": the proto style guide's prefix of the enum's values. */
static void ej_enum_prefix(const char *name, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; name[i] && o + 3 < cap; i++) {
        unsigned char c = (unsigned char)name[i];
        bool up = isupper(c);
        if (up && i > 0 &&
            (islower((unsigned char)name[i - 1]) || isdigit((unsigned char)name[i - 1]) ||
             (isupper((unsigned char)name[i - 1]) && islower((unsigned char)name[i + 1]))))
            out[o++] = '_';
        out[o++] = (char)toupper(c);
    }
    out[o++] = '_';
    out[o] = 0;
}

static int ej_enum_add(const ProtobufCEnumDescriptor *e)
{
    for (unsigned i = 0; i < ej_enums_n; i++)
        if (ej_enums[i].d == e)
            return 0;
    if (ej_enums_n == EJ_ENUMS_MAX || ej_enum_names_n + e->n_values > EJ_ENUM_NAMES_MAX)
        return ptb_errf(&ej_init_err, PTB_EINVAL, "event_json: too many enums in the schema");
    char prefix[64];
    ej_enum_prefix(e->short_name, prefix, sizeof prefix);
    size_t pl = strlen(prefix);
    ej_enums[ej_enums_n].d = e;
    ej_enums[ej_enums_n].first = ej_enum_names_n;
    for (unsigned v = 0; v < e->n_values; v++) {
        const char *n = e->values[v].name;
        if (strncmp(n, prefix, pl) == 0 && n[pl])
            n += pl;
        char *dst = ej_enum_names[ej_enum_names_n + v];
        if (strlen(n) >= sizeof ej_enum_names[0])
            return ptb_errf(&ej_init_err, PTB_EINVAL, "event_json: enum value %s too long",
                            e->values[v].name);
        for (size_t i = 0;; i++) {
            dst[i] = (char)tolower((unsigned char)n[i]);
            if (!n[i])
                break;
        }
        for (unsigned w = 0; w < v; w++)
            if (strcmp(ej_enum_names[ej_enum_names_n + w], dst) == 0)
                return ptb_errf(&ej_init_err, PTB_EINVAL,
                                "event_json: enum %s: two values named '%s'", e->name, dst);
    }
    ej_enum_names_n += e->n_values;
    ej_enums_n++;
    return 0;
}

/* Check every message reachable from d: field types known, enums tabled. */
static int ej_walk(const ProtobufCMessageDescriptor *d, const ProtobufCMessageDescriptor **seen,
                   unsigned *n_seen)
{
    for (unsigned i = 0; i < *n_seen; i++)
        if (seen[i] == d)
            return 0;
    if (*n_seen == EJ_MSGS_MAX)
        return ptb_errf(&ej_init_err, PTB_EINVAL, "event_json: too many messages in the schema");
    seen[(*n_seen)++] = d;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        int rc = 0;
        if (f->type == PROTOBUF_C_TYPE_MESSAGE)
            rc = ej_walk(f->descriptor, seen, n_seen);
        else if (f->type == PROTOBUF_C_TYPE_ENUM)
            rc = ej_enum_add(f->descriptor);
        else if (f->type > PROTOBUF_C_TYPE_MESSAGE)
            rc = ptb_errf(&ej_init_err, PTB_EINVAL, "event_json: %s.%s: unknown field type %d",
                          d->name, f->name, (int)f->type);
        if (rc)
            return rc;
    }
    return 0;
}

/* Is name a top-level key of the envelope (a non-body field of Event, or `type`)? */
static bool ej_envelope_key(const ProtobufCMessageDescriptor *ed, const char *name)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(ed, name);
    return strcmp(name, ej_type_key) == 0 || (f && !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF));
}

static void ej_init_once(void)
{
    const ProtobufCMessageDescriptor *ed = &ptb__v1__event__descriptor;
    const ProtobufCMessageDescriptor *seen[EJ_MSGS_MAX];
    unsigned n_seen = 0;
    ej_init_rc = ej_walk(ed, seen, &n_seen);
    if (ej_init_rc)
        return;
    /* A body field flattened at the top level must not shadow an envelope key or `type`: such a
     * field gets an alias, which must be free. */
    for (unsigned i = 0; i < ed->n_fields; i++) {
        const ProtobufCFieldDescriptor *bf = &ed->fields[i];
        if (!(bf->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
            continue;
        if (bf->type != PROTOBUF_C_TYPE_MESSAGE) {
            ej_init_rc = ptb_errf(&ej_init_err, PTB_EINVAL,
                                  "event_json: body case %s is not a message", bf->name);
            return;
        }
        const ProtobufCMessageDescriptor *bd = bf->descriptor;
        for (unsigned j = 0; j < bd->n_fields; j++) {
            const char *n = bd->fields[j].name;
            if (!ej_envelope_key(ed, n))
                continue;
            char alias[96];
            snprintf(alias, sizeof alias, "%s_%s", bf->name, n);
            if (ej_alias_n == EJ_ALIAS_MAX || ej_envelope_key(ed, alias) ||
                protobuf_c_message_descriptor_get_field_by_name(bd, alias)) {
                ej_init_rc = ptb_errf(&ej_init_err, PTB_EINVAL,
                                      "event_json: field '%s' of %s (body %s) collides with the "
                                      "envelope key '%s' and its alias '%s' is taken; rename "
                                      "it in event.proto",
                                      n, bd->name, bf->name, n, alias);
                fprintf(stderr, "ptb: %s\n", ej_init_err.msg);
                return;
            }
            ej_alias[ej_alias_n].body_case = bf->id;
            ej_alias[ej_alias_n].f = &bd->fields[j];
            memcpy(ej_alias[ej_alias_n].key, alias, sizeof alias);
            ej_alias_n++;
        }
    }
}

int event_json_init(ptb_errbuf *eb)
{
    pthread_once(&ej_once, ej_init_once);
    if (ej_init_rc)
        return ptb_errf(eb, ej_init_rc, "%s", ej_init_err.msg);
    return 0;
}

const char *event_json_field_key(uint32_t body_case, const ProtobufCFieldDescriptor *f)
{
    if (body_case && event_json_init(NULL) == 0)
        for (unsigned i = 0; i < ej_alias_n; i++)
            if (ej_alias[i].f == f && ej_alias[i].body_case == body_case)
                return ej_alias[i].key;
    return f->name;
}

static const ProtobufCFieldDescriptor *ej_alias_find(uint32_t body_case, const char *key)
{
    for (unsigned i = 0; i < ej_alias_n; i++)
        if (ej_alias[i].body_case == body_case && strcmp(ej_alias[i].key, key) == 0)
            return ej_alias[i].f;
    return NULL;
}

static int ej_enum_index(const ProtobufCEnumDescriptor *e)
{
    for (unsigned i = 0; i < ej_enums_n; i++)
        if (ej_enums[i].d == e)
            return (int)i;
    return -1;
}

const char *event_json_enum_name(const ProtobufCEnumDescriptor *e, int value)
{
    if (event_json_init(NULL))
        return NULL;
    int t = ej_enum_index(e);
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(e, value);
    if (t < 0 || !v)
        return NULL;
    return ej_enum_names[ej_enums[t].first + (unsigned)(v - e->values)];
}

/* ------------------------------------------------------------------ field access */

static size_t ej_elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE: return 8;
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    default: return 4;
    }
}

#define EJ_AT(type, base, off) (*(type *)((char *)(base) + (off)))
#define EJ_CAT(type, base, off) (*(const type *)((const char *)(base) + (off)))

static bool ej_is_zero(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_FLOAT: return *(const float *)p == 0;
    case PROTOBUF_C_TYPE_DOUBLE: return *(const double *)p == 0;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)p;
        return !s || !*s;
    }
    case PROTOBUF_C_TYPE_BYTES: return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE: return *(const void *const *)p == NULL;
    default:
        return ej_elem_size(f->type) == 8 ? *(const uint64_t *)p == 0 : *(const uint32_t *)p == 0;
    }
}

/* Is a singular field of m present (to be shown)? */
static bool ej_present(const ProtobufCFieldDescriptor *f, const void *m)
{
    const void *p = (const char *)m + f->offset;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return EJ_CAT(uint32_t, m, f->quantifier_offset) == f->id;
    if (f->label == PROTOBUF_C_LABEL_REQUIRED)
        return true;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
        f->type != PROTOBUF_C_TYPE_MESSAGE && f->quantifier_offset)
        return EJ_CAT(protobuf_c_boolean, m, f->quantifier_offset) != 0;
    return !ej_is_zero(f, p);
}

/* ------------------------------------------------------------------ encoding */

static void ej_put_value(event_json_buf *b, const ProtobufCFieldDescriptor *f, const void *p);

static void ej_put_fields(event_json_buf *b, const ProtobufCMessage *m, bool *first,
                          uint32_t body_case)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (event_json_field_hidden(f))
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = EJ_CAT(size_t, m, f->quantifier_offset);
            if (n == 0)
                continue;
            const char *arr = EJ_CAT(char *, m, f->offset);
            event_json_buf_key(b, ej_alias_n ? event_json_field_key(body_case, f) : f->name, first);
            event_json_buf_putc(b, '[');
            size_t es = ej_elem_size(f->type);
            for (size_t k = 0; k < n; k++) {
                if (k)
                    event_json_buf_putc(b, ',');
                ej_put_value(b, f, arr + k * es);
            }
            event_json_buf_putc(b, ']');
        } else if (ej_present(f, m)) {
            event_json_buf_key(b, ej_alias_n ? event_json_field_key(body_case, f) : f->name, first);
            ej_put_value(b, f, (const char *)m + f->offset);
        }
    }
}

static void ej_put_value(event_json_buf *b, const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: event_json_buf_i64(b, *(const int32_t *)p); break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: event_json_buf_u64(b, *(const uint32_t *)p); break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: event_json_buf_i64(b, *(const int64_t *)p); break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        uint64_t v = *(const uint64_t *)p;
        if (v > INT64_MAX) {
            event_json_buf_putc(b, '"');
            event_json_buf_u64(b, v);
            event_json_buf_putc(b, '"');
        } else {
            event_json_buf_u64(b, v);
        }
        break;
    }
    case PROTOBUF_C_TYPE_FLOAT: event_json_buf_double(b, *(const float *)p, true); break;
    case PROTOBUF_C_TYPE_DOUBLE: event_json_buf_double(b, *(const double *)p, false); break;
    case PROTOBUF_C_TYPE_BOOL:
        event_json_buf_puts(b, *(const protobuf_c_boolean *)p ? "true" : "false");
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        const char *n = event_json_enum_name(f->descriptor, v);
        if (n)
            event_json_buf_string(b, n, strlen(n));
        else
            event_json_buf_i64(b, v);
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)p;
        event_json_buf_string(b, s ? s : "", s ? strlen(s) : 0);
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *bd = p;
        if (event_json_field_hex(f))
            event_json_buf_hex(b, bd->data, bd->len);
        else
            event_json_buf_base64(b, bd->data, bd->len);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)p;
        bool first = true;
        event_json_buf_putc(b, '{');
        if (sub)
            ej_put_fields(b, sub, &first, 0);
        event_json_buf_putc(b, '}');
        break;
    }
    }
}

int event_json_encode_line(const ptb_event *ev, char **out, size_t *len)
{
    *out = NULL;
    if (event_json_init(NULL))
        return PTB_EINVAL;
    const char *type = event_type_name(ev->body_case);
    const ProtobufCMessage *body = event_body(ev);
    if (!type || !body)
        return PTB_EINVAL;
    const ProtobufCMessageDescriptor *ed = ev->base.descriptor;
    event_json_buf b;
    event_json_buf_init(&b, 512);
    bool first = true;
    event_json_buf_putc(&b, '{');
    for (unsigned i = 0; i < ed->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &ed->fields[i];
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) || event_json_field_hidden(f))
            continue;
        bool always = strcmp(f->name, "seq") == 0 || strcmp(f->name, "ts_ns") == 0;
        if (f->label == PROTOBUF_C_LABEL_REPEATED || (!always && !ej_present(f, ev)))
            continue; /* the envelope has no repeated fields; a future one would be a body's */
        event_json_buf_key(&b, f->name, &first);
        ej_put_value(&b, f, (const char *)ev + f->offset);
    }
    event_json_buf_key(&b, ej_type_key, &first);
    event_json_buf_string(&b, type, strlen(type));
    ej_put_fields(&b, body, &first, ev->body_case);
    event_json_buf_putc(&b, '}');
    return event_json_buf_finish(&b, out, len);
}

json_t *event_json_encode(const ptb_event *ev)
{
    char *line;
    size_t len;
    if (event_json_encode_line(ev, &line, &len))
        return NULL;
    json_t *j = json_loadb(line, len, 0, NULL);
    free(line);
    return j;
}

/* ------------------------------------------------------------------ decoding */

#define EJ_DEPTH_MAX 32

typedef struct ej_dec {
    ptb_errbuf *eb;
    int depth;
} ej_dec;

/* Error naming the key path (path may be "local.port", "env[1].name"). */
__attribute__((format(printf, 3, 4))) static int ej_fail(ej_dec *dc, const char *path,
                                                         const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ptb_errf(dc->eb, PTB_EPARSE, "field '%s': %s", path, msg);
}

static const char *ej_json_type(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "real";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    default: return "null";
    }
}

/* 64-bit integers: a JSON integer, or a string of decimal digits (optional '-' when signed). */
static int ej_get_i64(ej_dec *dc, const char *path, const json_t *v, bool is_signed, int64_t *s,
                      uint64_t *u)
{
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        if (!is_signed && x < 0)
            return ej_fail(dc, path, "integer out of range for uint64");
        *s = x;
        *u = (uint64_t)x;
        return 0;
    }
    if (!json_is_string(v))
        return ej_fail(dc, path, "expected integer, got %s", ej_json_type(v));
    int rc = event_json_parse_decimal(json_string_value(v), json_string_length(v), is_signed, s, u);
    if (rc == PTB_EPARSE)
        return ej_fail(dc, path, "expected integer or decimal string");
    if (rc)
        return ej_fail(dc, path, "integer out of range for %s", is_signed ? "int64" : "uint64");
    return 0;
}

static int ej_get_int32(ej_dec *dc, const char *path, const json_t *v, int64_t lo, int64_t hi,
                        const char *tname, int64_t *out)
{
    if (!json_is_integer(v))
        return ej_fail(dc, path, "expected integer, got %s", ej_json_type(v));
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return ej_fail(dc, path, "integer out of range for %s", tname);
    *out = x;
    return 0;
}

static int ej_get_double(ej_dec *dc, const char *path, const json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (strcmp(s, "NaN") == 0)
            *out = NAN;
        else if (strcmp(s, "Infinity") == 0)
            *out = INFINITY;
        else if (strcmp(s, "-Infinity") == 0)
            *out = -INFINITY;
        else
            return ej_fail(dc, path, "expected number, \"NaN\", \"Infinity\" or \"-Infinity\"");
        return 0;
    }
    return ej_fail(dc, path, "expected number, got %s", ej_json_type(v));
}

static int ej_get_message(ej_dec *dc, const char *path, const json_t *obj,
                          const ProtobufCMessageDescriptor *d, ProtobufCMessage **slot);

/* Decode one value v of field f into the element at p (already zeroed / default). */
static int ej_get_value(ej_dec *dc, const char *path, const ProtobufCFieldDescriptor *f,
                        const json_t *v, void *p)
{
    int64_t s = 0;
    uint64_t u = 0;
    int rc;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if ((rc = ej_get_int32(dc, path, v, INT32_MIN, INT32_MAX, "int32", &s)))
            return rc;
        *(int32_t *)p = (int32_t)s;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if ((rc = ej_get_int32(dc, path, v, 0, UINT32_MAX, "uint32", &s)))
            return rc;
        *(uint32_t *)p = (uint32_t)s;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if ((rc = ej_get_i64(dc, path, v, true, &s, &u)))
            return rc;
        *(int64_t *)p = s;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if ((rc = ej_get_i64(dc, path, v, false, &s, &u)))
            return rc;
        *(uint64_t *)p = u;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT: {
        double d;
        if ((rc = ej_get_double(dc, path, v, &d)))
            return rc;
        if (isfinite(d) && fabs(d) > FLT_MAX)
            return ej_fail(dc, path, "number out of range for float");
        *(float *)p = (float)d;
        return 0;
    }
    case PROTOBUF_C_TYPE_DOUBLE: return ej_get_double(dc, path, v, (double *)p);
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v))
            return ej_fail(dc, path, "expected boolean, got %s", ej_json_type(v));
        *(protobuf_c_boolean *)p = json_is_true(v);
        return 0;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *e = f->descriptor;
        if (json_is_integer(v)) {
            if ((rc = ej_get_int32(dc, path, v, INT32_MIN, INT32_MAX, "enum", &s)))
                return rc;
            *(int *)p = (int)s;
            return 0;
        }
        if (!json_is_string(v))
            return ej_fail(dc, path, "expected string (enum %s), got %s", e->short_name,
                           ej_json_type(v));
        int t = ej_enum_index(e);
        const char *name = json_string_value(v);
        for (unsigned i = 0; t >= 0 && i < e->n_values; i++)
            if (strcmp(ej_enum_names[ej_enums[t].first + i], name) == 0) {
                *(int *)p = e->values[i].value;
                return 0;
            }
        return ej_fail(dc, path, "unknown %s '%.64s'", e->short_name, name);
    }
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_is_string(v))
            return ej_fail(dc, path, "expected string, got %s", ej_json_type(v));
        size_t n = json_string_length(v);
        const char *str = json_string_value(v);
        if (memchr(str, 0, n))
            return ej_fail(dc, path, "string contains NUL");
        char *copy = malloc(n + 1);
        if (!copy)
            return ptb_errf(dc->eb, PTB_ENOMEM, "out of memory");
        memcpy(copy, str, n + 1);
        *(char **)p = copy;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        if (!json_is_string(v))
            return ej_fail(dc, path, "expected %s string, got %s",
                           event_json_field_hex(f) ? "hex" : "base64", ej_json_type(v));
        ProtobufCBinaryData *bd = p;
        const char *str = json_string_value(v);
        size_t n = json_string_length(v);
        rc = event_json_field_hex(f) ? event_json_hex_decode(str, n, &bd->data, &bd->len)
                                     : event_json_base64_decode(str, n, &bd->data, &bd->len);
        if (rc == PTB_ENOMEM)
            return ptb_errf(dc->eb, PTB_ENOMEM, "out of memory");
        if (rc)
            return ej_fail(dc, path, "invalid %s", event_json_field_hex(f) ? "hex" : "base64");
        return 0;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        return ej_get_message(dc, path, v, f->descriptor, (ProtobufCMessage **)p);
    }
    return ej_fail(dc, path, "unsupported field type");
}

/* Decode value v of field f (singular or repeated) into message m. */
static int ej_get_field(ej_dec *dc, const char *path, const ProtobufCFieldDescriptor *f,
                        const json_t *v, ProtobufCMessage *m)
{
    if (f->label != PROTOBUF_C_LABEL_REPEATED) {
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t *qc = &EJ_AT(uint32_t, m, f->quantifier_offset);
            if (*qc && *qc != f->id)
                return ej_fail(dc, path, "another field of the same oneof is set");
            memset((char *)m + f->offset, 0, ej_elem_size(f->type));
            *qc = f->id;
        } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
                   f->type != PROTOBUF_C_TYPE_MESSAGE && f->quantifier_offset) {
            EJ_AT(protobuf_c_boolean, m, f->quantifier_offset) = 1;
        }
        if (f->type == PROTOBUF_C_TYPE_STRING) {
            /* the default "" is static: free_unpacked skips it, so replace it only on success */
            char *s = NULL;
            int rc = ej_get_value(dc, path, f, v, &s);
            if (rc)
                return rc;
            EJ_AT(char *, m, f->offset) = s;
            return 0;
        }
        return ej_get_value(dc, path, f, v, (char *)m + f->offset);
    }
    if (!json_is_array(v))
        return ej_fail(dc, path, "expected array, got %s", ej_json_type(v));
    size_t n = json_array_size(v);
    if (n == 0)
        return 0;
    size_t es = ej_elem_size(f->type);
    char *arr = calloc(n, es);
    if (!arr)
        return ptb_errf(dc->eb, PTB_ENOMEM, "out of memory");
    EJ_AT(char *, m, f->offset) = arr;
    size_t *count = &EJ_AT(size_t, m, f->quantifier_offset);
    *count = 0;
    for (size_t i = 0; i < n; i++) {
        char ep[300];
        snprintf(ep, sizeof ep, "%.250s[%zu]", path, i);
        int rc = ej_get_value(dc, ep, f, json_array_get(v, i), arr + i * es);
        /* a submessage is linked before it is filled: count it so the free reaches it */
        if (rc == 0 || (f->type == PROTOBUF_C_TYPE_MESSAGE && *(void **)(arr + i * es)))
            (*count)++;
        if (rc)
            return rc;
    }
    return 0;
}

/* Decode the keys of obj into m. On the top level (ev != NULL) keys naming envelope fields go
 * to ev, `type` is skipped, and the rest go to m (the body). */
static int ej_get_fields(ej_dec *dc, const char *prefix, const json_t *obj, ProtobufCMessage *m,
                         ptb_event *ev)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        char path[256];
        snprintf(path, sizeof path, "%.120s%s%.120s", prefix, *prefix ? "." : "", key);
        ProtobufCMessage *dst = m;
        const ProtobufCFieldDescriptor *f = NULL;
        if (ev && strcmp(key, ej_type_key) == 0)
            continue;
        if (ev && (f = ej_alias_find(ev->body_case, key))) {
            /* a body field under its alias */
        } else if (ev &&
                   (f = protobuf_c_message_descriptor_get_field_by_name(ev->base.descriptor,
                                                                        key)) &&
                   !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)) {
            dst = &ev->base;
        } else {
            f = protobuf_c_message_descriptor_get_field_by_name(d, key);
            if (f && ev && ej_alias_n && event_json_field_key(ev->body_case, f) != f->name)
                f = NULL; /* shown under its alias only */
        }
        if (!f)
            return ej_fail(dc, path, "unknown key%s", ev ? " for this type" : "");
        if (event_json_field_hidden(f))
            return ej_fail(dc, path, "store-internal field, not accepted");
        int rc = ej_get_field(dc, path, f, v, dst);
        if (rc)
            return rc;
    }
    return 0;
}

static int ej_get_message(ej_dec *dc, const char *path, const json_t *obj,
                          const ProtobufCMessageDescriptor *d, ProtobufCMessage **slot)
{
    if (!json_is_object(obj))
        return ej_fail(dc, path, "expected object, got %s", ej_json_type(obj));
    if (dc->depth >= EJ_DEPTH_MAX)
        return ej_fail(dc, path, "nested too deeply");
    ProtobufCMessage *sub = calloc(1, d->sizeof_message);
    if (!sub)
        return ptb_errf(dc->eb, PTB_ENOMEM, "out of memory");
    protobuf_c_message_init(d, sub);
    *slot = sub; /* linked first: the parent's free frees it on error */
    dc->depth++;
    int rc = ej_get_fields(dc, path, obj, sub, NULL);
    dc->depth--;
    return rc;
}

int event_json_decode(const json_t *obj, ptb_event **out, ptb_errbuf *eb)
{
    *out = NULL;
    int rc = event_json_init(eb);
    if (rc)
        return rc;
    if (!obj || !json_is_object(obj))
        return ptb_errf(eb, PTB_EPARSE, "expected a JSON object, got %s",
                        obj ? ej_json_type(obj) : "nothing");
    const json_t *t = json_object_get(obj, ej_type_key);
    if (!t)
        return ptb_errf(eb, PTB_EPARSE, "missing key 'type'");
    if (!json_is_string(t))
        return ptb_errf(eb, PTB_EPARSE, "field 'type': expected string, got %s", ej_json_type(t));
    uint32_t bc = event_type_from_name(json_string_value(t), json_string_length(t));
    const ProtobufCFieldDescriptor *bf = bc ? event_type_field(bc) : NULL;
    if (!bf)
        return ptb_errf(eb, PTB_EPARSE, "field 'type': unknown event type '%.64s'",
                        json_string_value(t));

    ptb_event *ev = malloc(sizeof *ev);
    if (!ev)
        return ptb_errf(eb, PTB_ENOMEM, "out of memory");
    ptb__v1__event__init(ev);
    ej_dec dc = {.eb = eb};
    const ProtobufCMessageDescriptor *bd = bf->descriptor;
    ProtobufCMessage *body = calloc(1, bd->sizeof_message);
    if (!body) {
        free(ev);
        return ptb_errf(eb, PTB_ENOMEM, "out of memory");
    }
    protobuf_c_message_init(bd, body);
    EJ_AT(ProtobufCMessage *, ev, bf->offset) = body;
    ev->body_case = bc;
    rc = ej_get_fields(&dc, "", obj, body, ev);
    if (rc) {
        event_json_free(ev);
        return rc;
    }
    *out = ev;
    return 0;
}

int event_json_decode_line(const char *line, size_t len, ptb_event **out, ptb_errbuf *eb)
{
    *out = NULL;
    json_error_t je;
    json_t *j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return ptb_errf(eb, PTB_EPARSE, "invalid JSON at column %d: %s", je.column, je.text);
    int rc = event_json_decode(j, out, eb);
    json_decref(j);
    return rc;
}

void event_json_free(ptb_event *ev)
{
    if (ev)
        protobuf_c_message_free_unpacked(&ev->base, NULL);
}
