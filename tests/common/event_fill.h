/* A generic event filler for tests, driven by the protobuf-c descriptors: an event of any kind
 * with every field of its body set to a non-default value (strings with quotes, control bytes and
 * non-ASCII UTF-8; repeated fields with two elements; nested messages filled), `_sid` fields left
 * at 0. Free with protobuf_c_message_free_unpacked(&ev->base, NULL). */
#ifndef PTB_TEST_EVENT_FILL_H
#define PTB_TEST_EVENT_FILL_H

#include <stdbool.h>

#include "event_type.h"

/* An event of kind body_case; filled: every field set; else the body is empty. */
ptb_event *test_event_filled(uint32_t body_case, bool filled);

#endif
