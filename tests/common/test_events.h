/* Deterministic test events: event number i is always the same, so a test can write events and
 * later check what it reads back. Used by unit and integration tests of the store. */
#ifndef PTB_TEST_EVENTS_H
#define PTB_TEST_EVENTS_H

#include "store.h"

typedef struct test_event {
    ptb_event ev;
    Ptb__V1__FileWrite fw;
    Ptb__V1__GpuKernel gk;
    Ptb__V1__NetConnect nc;
    Ptb__V1__SockAddr remote;
    Ptb__V1__ToolCall tc;
    char s1[128], s2[64];
    uint8_t sha[32];
} test_event;

/* Event number i (0-based), built in b (which it points into). Kinds cycle file.write,
 * gpu.kernel, net.connect, tool.call; paths, kernels, hosts and tools repeat with small periods. */
const ptb_event *test_event_make(test_event *b, uint64_t i);

/* True when got equals event number i, written with seq i+1 (compares the protobuf bytes). */
int test_event_equal(const ptb_event *got, uint64_t i);

#endif
