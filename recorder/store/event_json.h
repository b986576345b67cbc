/* The JSON form of events: one JSON object per event, used by `ptb query --format jsonl` and
 * `ptb import --jsonl`. Encoding and decoding are exact inverses on every event kind: for any
 * event whose strings are valid UTF-8, decode(encode(ev)) packs to the same protobuf bytes as ev
 * (fields ending in `_sid` excepted: they are store-internal and never shown).
 *
 * The form, generic over the protobuf-c descriptors (schemas/event.schema.json is generated from
 * the same descriptors by ptb-event-schema):
 *
 *   {"seq":12,"ts_ns":1718000000123456789,"mono_ns":..,"source":"tracer","exec_id":3,"tid":..,
 *    "type":"file.write","path":"/w/train.py","bytes":120,"size":120,"sha256":"9f86..",..}
 *
 * - Envelope keys first (seq, ts_ns, mono_ns, source, exec_id, tid), then `type` (the dotted name
 *   of the body case, event_type.h), then the body's fields flattened at the top level. A body field
 *   named like an envelope key is shown as "<body case>_<field>" (none today);
 *   event_json_init() fails if such an alias is itself taken.
 * - Fields equal to their proto3 default (0, "", false, empty) are omitted, except seq, ts_ns and
 *   type. A submessage is shown when present, even if empty ({}), so presence round-trips.
 * - Fields whose name ends in `_sid` are never shown and are rejected on input.
 * - 64-bit integers are JSON integers; a uint64 above INT64_MAX is a decimal string. Input may
 *   give any 64-bit integer as a JSON integer or as a decimal string.
 * - double/float: JSON numbers; non-finite values as the strings "NaN", "Infinity", "-Infinity".
 * - Enums by name, lower case, without the enum's prefix (SOURCE_TRACER -> "tracer"); a number
 *   with no name is shown (and accepted) as a JSON integer.
 * - bytes: fields named `sha256` or `blob`, or ending in `_blob`, as lower-case hex (upper case
 *   accepted on input); all other bytes as standard base64 with padding, strictly checked.
 * - Submessages as objects, repeated fields as arrays.
 * - Strings that are not valid UTF-8 (possible only from a producer that broke the proto3 rule)
 *   are shown with each invalid byte replaced by U+FFFD; that is the one lossy case.
 *
 * Input is untrusted: every check failure is an error naming the key ("field 'bytes': expected
 * integer", "field 'local.port': integer out of range for uint32"), never a crash.
 *
 * Thread-safe: the tables are built once (pthread_once). */
#ifndef PTB_EVENT_JSON_H
#define PTB_EVENT_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "event_type.h"
#include "ptb_error.h"

/* Build the tables and check the schema (no body field named like an envelope key, only field
 * types the codec knows). Called by every function below; call it directly to get the reason.
 * Returns 0 or PTB_EINVAL with the message in eb (may be NULL). */
int event_json_init(ptb_errbuf *eb);

/* The JSON object of ev (borrowed for the call). Returns a new reference (caller json_decref()s
 * it), or NULL when ev has no known body or memory ran out. */
json_t *event_json_encode(const ptb_event *ev);

/* The compact one-line form of ev, without a trailing newline: *out is malloc'd (caller free()s
 * it), NUL-terminated, *len its length (len may be NULL). Returns 0, PTB_EINVAL (no known body),
 * or PTB_ENOMEM. */
int event_json_encode_line(const ptb_event *ev, char **out, size_t *len);

/* Decode one JSON object (borrowed) into a freshly allocated event: *out is freed with
 * event_json_free(). Returns 0, or PTB_EPARSE with the reason in eb (may be NULL) and *out NULL,
 * or PTB_ENOMEM. seq is taken as given (the store ignores it on append). */
int event_json_decode(const json_t *obj, ptb_event **out, ptb_errbuf *eb);

/* Decode one line of JSONL (line[0..len), need not be NUL-terminated; a trailing newline and
 * surrounding white space are allowed). Duplicate keys are rejected. As event_json_decode. */
int event_json_decode_line(const char *line, size_t len, ptb_event **out, ptb_errbuf *eb);

/* Free an event from event_json_decode*() (or any event unpacked with the default protobuf-c
 * allocator). ev may be NULL. */
void event_json_free(ptb_event *ev);

/* ------------------------------------------------------------------ for ptb-event-schema */

/* True for a field never shown in JSON (name ending in `_sid`). */
bool event_json_field_hidden(const ProtobufCFieldDescriptor *f);

/* True for a bytes field shown as hex (named `sha256` or `blob`, or ending in `_blob`); other
 * bytes fields are base64. */
bool event_json_field_hex(const ProtobufCFieldDescriptor *f);

/* JSON key of a field of the body of body_case at the top level: f->name, or its alias when f is
 * named like an envelope key . body_case 0: f->name. Static storage. */
const char *event_json_field_key(uint32_t body_case, const ProtobufCFieldDescriptor *f);

/* JSON name of an enum value ("tracer"), NULL when the value has no name. Static storage. */
const char *event_json_enum_name(const ProtobufCEnumDescriptor *e, int value);

#endif
