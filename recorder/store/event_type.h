/* Event type names: the dotted names ("file.write") of the Event body oneof.
 *
 * The name of a body field is its proto field name with the first '_' replaced by '.'. The table
 * is built once from the protobuf-c descriptor, so a kind added to event.proto gets its name
 * without a change here. */
#ifndef PTB_EVENT_TYPE_H
#define PTB_EVENT_TYPE_H

#include <stddef.h>
#include <stdint.h>

#include "ptb/v1/event.pb-c.h"

typedef Ptb__V1__Event ptb_event;

/* Dotted name of a body case (the oneof field number); NULL for an unknown case.
 * Static storage. */
const char *event_type_name(uint32_t body_case);

/* Body case for a dotted name (length len, need not be NUL-terminated); 0 when unknown. */
uint32_t event_type_from_name(const char *name, size_t len);

/* Number of event kinds, and the i-th kind's body case (0 <= i < count), in field-number order. */
size_t event_type_count(void);
uint32_t event_type_at(size_t i);

/* The body submessage of ev (NULL when unset); borrowed from ev. */
const ProtobufCMessage *event_body(const ptb_event *ev);

/* The field descriptor of a body case; NULL when unknown. */
const ProtobufCFieldDescriptor *event_type_field(uint32_t body_case);

#endif
