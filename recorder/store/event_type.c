/* Event type names, derived once from the Event descriptor. See event_type.h. */
#include "event_type.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define EVENT_TYPE_MAX 64

static struct {
    uint32_t body_case;
    char name[48];
    const ProtobufCFieldDescriptor *field;
} event_types[EVENT_TYPE_MAX];
static size_t event_types_n;
/* body case -> index + 1 in event_types, for O(1) lookups on the hot paths */
#define EVENT_CASE_MAX 256
static uint8_t event_by_case[EVENT_CASE_MAX];
static pthread_once_t event_types_once = PTHREAD_ONCE_INIT;

static void event_types_init(void)
{
    const ProtobufCMessageDescriptor *d = &ptb__v1__event__descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) || event_types_n == EVENT_TYPE_MAX)
            continue;
        if (f->id < EVENT_CASE_MAX)
            event_by_case[f->id] = (uint8_t)(event_types_n + 1);
        event_types[event_types_n].body_case = f->id;
        event_types[event_types_n].field = f;
        char *n = event_types[event_types_n].name;
        snprintf(n, sizeof event_types[0].name, "%s", f->name);
        char *u = strchr(n, '_');
        if (u)
            *u = '.';
        event_types_n++;
    }
}

static void event_types_ready(void)
{
    pthread_once(&event_types_once, event_types_init);
}

const char *event_type_name(uint32_t body_case)
{
    event_types_ready();
    if (body_case >= EVENT_CASE_MAX || !event_by_case[body_case])
        return NULL;
    return event_types[event_by_case[body_case] - 1].name;
}

uint32_t event_type_from_name(const char *name, size_t len)
{
    event_types_ready();
    for (size_t i = 0; i < event_types_n; i++)
        if (strlen(event_types[i].name) == len && memcmp(event_types[i].name, name, len) == 0)
            return event_types[i].body_case;
    return 0;
}

size_t event_type_count(void)
{
    event_types_ready();
    return event_types_n;
}

uint32_t event_type_at(size_t i)
{
    event_types_ready();
    return i < event_types_n ? event_types[i].body_case : 0;
}

const ProtobufCFieldDescriptor *event_type_field(uint32_t body_case)
{
    event_types_ready();
    if (body_case >= EVENT_CASE_MAX || !event_by_case[body_case])
        return NULL;
    return event_types[event_by_case[body_case] - 1].field;
}

const ProtobufCMessage *event_body(const ptb_event *ev)
{
    const ProtobufCFieldDescriptor *f = event_type_field(ev->body_case);
    if (!f)
        return NULL;
    return *(const ProtobufCMessage *const *)((const char *)ev + f->offset);
}
