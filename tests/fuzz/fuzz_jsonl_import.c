/* Fuzz target: one line of `ptb import --jsonl` through event_json_decode_line. Whatever decodes
 * must survive the round trip exactly: encode it again, decode that, and the protobuf bytes of
 * the two events must be equal (the JSON form is the exact inverse of itself). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event_json.h"

static uint8_t *fuzz_pack(const ptb_event *ev, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(&ev->base);
    uint8_t *b = malloc(*len ? *len : 1);
    if (!b)
        abort();
    protobuf_c_message_pack(&ev->base, b);
    return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ptb_event *ev = NULL;
    ptb_errbuf eb;
    if (event_json_decode_line((const char *)data, size, &ev, &eb) != 0) {
        if (ev)
            abort(); /* an error leaves nothing behind */
        return 0;
    }
    char *line;
    size_t len;
    if (event_json_encode_line(ev, &line, &len) != 0)
        abort();
    ptb_event *back = NULL;
    if (event_json_decode_line(line, len, &back, &eb) != 0) {
        fprintf(stderr, "re-decode failed: %s\n%s\n", eb.msg, line);
        abort();
    }
    size_t la, lb;
    uint8_t *a = fuzz_pack(ev, &la), *b = fuzz_pack(back, &lb);
    if (la != lb || memcmp(a, b, la) != 0) {
        fprintf(stderr, "round trip changed the event:\n%s\n", line);
        abort();
    }
    free(a);
    free(b);
    free(line);
    event_json_free(back);
    event_json_free(ev);
    return 0;
}
