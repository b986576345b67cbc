/* Fuzz target: stored event bytes as the store's readers decode them (protobuf-c unpack), then
 * shown as JSON (event_json_encode_line, what `ptb query --format jsonl` prints). Whatever
 * unpacks must print, and what prints must import again and print identically (after one trip
 * the JSON form is a fixed point: `_sid` fields, unknown fields and invalid UTF-8 are gone).
 * A kernel batch is also read launch by launch (store_kernels_*), as cursors show it: each launch
 * must print too. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event_json.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ptb_event *ev = ptb__v1__event__unpack(NULL, size, data);
    if (!ev)
        return 0;
    store_kernels it;
    if (ev->body_case == PTB__V1__EVENT__BODY_GPU_KERNEL_BATCH &&
        store_kernels_begin(ev, &it) == 0) {
        const ptb_event *k;
        uint32_t n = 0;
        while (store_kernels_next(&it, &k) == 0) {
            char *kl;
            size_t kn;
            if (k->sub != ++n || k->body_case != PTB__V1__EVENT__BODY_GPU_KERNEL ||
                event_json_encode_line(k, &kl, &kn) != 0)
                abort();
            free(kl);
        }
        if (n != ev->gpu_kernel_batch->count)
            abort();
    }
    char *line = NULL;
    size_t len;
    int rc = event_json_encode_line(ev, &line, &len);
    if (rc != 0) {
        /* only an event without a known body has no JSON form */
        if (rc != PTB_EINVAL || event_body(ev) != NULL)
            abort();
        event_json_free(ev);
        return 0;
    }
    json_t *j = event_json_encode(ev);
    if (!j)
        abort();
    json_decref(j);
    ptb_event *back = NULL;
    ptb_errbuf eb;
    if (event_json_decode_line(line, len, &back, &eb) != 0) {
        fprintf(stderr, "printed event does not import: %s\n%s\n", eb.msg, line);
        abort();
    }
    char *line2;
    size_t len2;
    if (event_json_encode_line(back, &line2, &len2) != 0 || len2 != len ||
        memcmp(line, line2, len) != 0) {
        fprintf(stderr, "not a fixed point:\n%s\n", line);
        abort();
    }
    free(line);
    free(line2);
    event_json_free(back);
    event_json_free(ev);
    return 0;
}
