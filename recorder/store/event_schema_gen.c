/* ptb-event-schema: print the JSON Schema (draft 2020-12) of the JSONL form of events, generated
 * from the protobuf-c descriptors with the same rules as event_json.c, so the schema and the
 * codec cannot drift apart. The output is committed as schemas/event.schema.json.
 *
 *   ptb-event-schema                 print the schema
 *   ptb-event-schema --check FILE    exit 1 (saying how to regenerate) when FILE differs
 *
 * Layout: the envelope keys and `type` are top-level properties; each event type is one
 * `oneOf` branch that fixes `type` and lists the body's fields; submessages are in `$defs`;
 * `unevaluatedProperties: false` rejects any other key, as the importer does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "event_json.h"
#include "event_type.h"

static json_t *schema_field(const ProtobufCFieldDescriptor *f, json_t *defs);

static json_t *schema_message(const ProtobufCMessageDescriptor *d, json_t *defs)
{
    json_t *props = json_object();
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (!event_json_field_hidden(f))
            json_object_set_new(props, f->name, schema_field(f, defs));
    }
    return json_pack("{s:s, s:o, s:b}", "type", "object", "properties", props,
                     "additionalProperties", 0);
}

static json_t *schema_scalar(const ProtobufCFieldDescriptor *f, json_t *defs)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_pack("{s:s, s:I, s:I}", "type", "integer", "minimum", (json_int_t)INT32_MIN,
                         "maximum", (json_int_t)INT32_MAX);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_pack("{s:s, s:I, s:I}", "type", "integer", "minimum", (json_int_t)0, "maximum",
                         (json_int_t)UINT32_MAX);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: return json_pack("{s:s}", "$ref", "#/$defs/int64");
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: return json_pack("{s:s}", "$ref", "#/$defs/uint64");
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE: return json_pack("{s:s}", "$ref", "#/$defs/double");
    case PROTOBUF_C_TYPE_BOOL: return json_pack("{s:s}", "type", "boolean");
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *e = f->descriptor;
        json_t *names = json_array();
        for (unsigned i = 0; i < e->n_values; i++)
            json_array_append_new(names, json_string(event_json_enum_name(e, e->values[i].value)));
        return json_pack("{s:s, s:o}", "type", "string", "enum", names);
    }
    case PROTOBUF_C_TYPE_STRING: return json_pack("{s:s}", "type", "string");
    case PROTOBUF_C_TYPE_BYTES:
        return json_pack("{s:s}", "$ref",
                         event_json_field_hex(f) ? "#/$defs/hex" : "#/$defs/base64");
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *d = f->descriptor;
        if (!json_object_get(defs, d->short_name)) {
            json_object_set_new(defs, d->short_name, json_null()); /* reserve the order slot */
            json_object_set_new(defs, d->short_name, schema_message(d, defs));
        }
        char ref[160];
        snprintf(ref, sizeof ref, "#/$defs/%s", d->short_name);
        return json_pack("{s:s}", "$ref", ref);
    }
    }
    return json_object();
}

static json_t *schema_field(const ProtobufCFieldDescriptor *f, json_t *defs)
{
    json_t *s = schema_scalar(f, defs);
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return json_pack("{s:s, s:o}", "type", "array", "items", s);
    return s;
}

static json_t *schema_build(void)
{
    const ProtobufCMessageDescriptor *ed = &ptb__v1__event__descriptor;
    json_t *defs = json_object();
    json_object_set_new(
        defs, "uint64",
        json_pack("{s:s, s:[{s:s, s:i}, {s:s, s:s}]}", "description",
                  "unsigned 64-bit integer: a JSON integer, or a decimal string above 2^63-1",
                  "anyOf", "type", "integer", "minimum", 0, "type", "string", "pattern",
                  "^[0-9]{1,20}$"));
    json_object_set_new(defs, "int64",
                        json_pack("{s:s, s:[{s:s}, {s:s, s:s}]}", "description",
                                  "signed 64-bit integer: a JSON integer or a decimal string",
                                  "anyOf", "type", "integer", "type", "string", "pattern",
                                  "^-?[0-9]{1,19}$"));
    json_object_set_new(defs, "double",
                        json_pack("{s:[{s:s}, {s:[s,s,s]}]}", "anyOf", "type", "number", "enum",
                                  "NaN", "Infinity", "-Infinity"));
    json_object_set_new(defs, "hex",
                        json_pack("{s:s, s:s, s:s}", "description",
                                  "bytes as hex (SHA-256 digests, blob keys)", "type", "string",
                                  "pattern", "^([0-9a-fA-F]{2})*$"));
    json_object_set_new(defs, "base64",
                        json_pack("{s:s, s:s, s:s, s:s}", "description", "bytes as standard base64",
                                  "type", "string", "contentEncoding", "base64", "pattern",
                                  "^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"));

    json_t *props = json_object();
    for (unsigned i = 0; i < ed->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &ed->fields[i];
        if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && !event_json_field_hidden(f))
            json_object_set_new(props, f->name, schema_field(f, defs));
    }
    json_t *names = json_array();
    json_t *branches = json_array();
    for (size_t k = 0; k < event_type_count(); k++) {
        uint32_t bc = event_type_at(k);
        const ProtobufCFieldDescriptor *bf = event_type_field(bc);
        const ProtobufCMessageDescriptor *bd = bf->descriptor;
        json_array_append_new(names, json_string(event_type_name(bc)));
        json_t *bp = json_object();
        json_object_set_new(bp, "type", json_pack("{s:s}", "const", event_type_name(bc)));
        for (unsigned i = 0; i < bd->n_fields; i++) {
            const ProtobufCFieldDescriptor *f = &bd->fields[i];
            if (!event_json_field_hidden(f))
                json_object_set_new(bp, event_json_field_key(bc, f), schema_field(f, defs));
        }
        json_array_append_new(branches, json_pack("{s:s, s:o, s:[s]}", "title", bd->name,
                                                  "properties", bp, "required", "type"));
    }
    json_object_set_new(props, "type", json_pack("{s:s, s:o}", "type", "string", "enum", names));

    return json_pack(
        "{s:s, s:s, s:s, s:s, s:o, s:[s,s,s], s:o, s:b, s:o}", "$schema",
        "https://json-schema.org/draft/2020-12/schema", "title", "ptb event (JSONL form)",
        "description",
        "One event of a ptb store as printed by `ptb query --format jsonl` and read by "
        "`ptb import --jsonl`. Generated by ptb-event-schema from proto/ptb/v1/event.proto; do "
        "not edit. Fields equal to their proto3 default are omitted; enums may also be given as "
        "their integer value on input.",
        "type", "object", "properties", props, "required", "seq", "ts_ns", "type", "oneOf",
        branches, "unevaluatedProperties", 0, "$defs", defs);
}

int main(int argc, char **argv)
{
    ptb_errbuf eb;
    if (event_json_init(&eb)) {
        fprintf(stderr, "ptb-event-schema: %s\n", eb.msg);
        return 1;
    }
    json_t *schema = schema_build();
    char *text = schema ? json_dumps(schema, JSON_INDENT(2)) : NULL;
    json_decref(schema);
    if (!text) {
        fprintf(stderr, "ptb-event-schema: out of memory\n");
        return 1;
    }
    int rc = 0;
    if (argc == 3 && strcmp(argv[1], "--check") == 0) {
        FILE *f = fopen(argv[2], "rb");
        char *old = NULL;
        size_t n = 0;
        if (f) {
            fseek(f, 0, SEEK_END);
            long sz = ftell(f);
            fseek(f, 0, SEEK_SET);
            old = sz >= 0 ? calloc(1, (size_t)sz + 1) : NULL;
            n = old ? fread(old, 1, (size_t)sz, f) : 0;
            fclose(f);
        }
        size_t tl = strlen(text);
        if (!old || n != tl + 1 || memcmp(old, text, tl) != 0 || old[tl] != '\n') {
            fprintf(stderr,
                    "%s is out of date with proto/ptb/v1/event.proto.\n"
                    "Regenerate it with:\n"
                    "  cmake --build BUILD --target ptb-event-schema && "
                    "BUILD/recorder/store/ptb-event-schema > schemas/event.schema.json\n",
                    argv[2]);
            rc = 1;
        }
        free(old);
    } else if (argc == 1) {
        printf("%s\n", text);
    } else {
        fprintf(stderr, "usage: ptb-event-schema [--check FILE]\n");
        rc = 2;
    }
    free(text);
    return rc;
}
