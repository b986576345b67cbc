/* Deterministic test events; see test_events.h. */
#include "test_events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const ptb_event *test_event_make(test_event *b, uint64_t i)
{
    ptb__v1__event__init(&b->ev);
    b->ev.ts_ns = 1700000000000000000LL + (int64_t)i * 1000;
    b->ev.mono_ns = (int64_t)i + 1; /* 0 would be filled in by the store */
    b->ev.exec_id = 1 + i % 7;
    b->ev.source = PTB__V1__SOURCE__SOURCE_TRACER;
    switch (i % 4) {
    case 0:
        ptb__v1__file_write__init(&b->fw);
        snprintf(b->s1, sizeof b->s1, "/work/data/file-%llu.jsonl", (unsigned long long)(i % 13));
        b->fw.path = b->s1;
        b->fw.bytes = i;
        memset(b->sha, (int)i, 32);
        b->fw.sha256.data = b->sha;
        b->fw.sha256.len = 32;
        b->ev.body_case = PTB__V1__EVENT__BODY_FILE_WRITE;
        b->ev.file_write = &b->fw;
        break;
    case 1:
        ptb__v1__gpu_kernel__init(&b->gk);
        snprintf(b->s1, sizeof b->s1, "void gemm_kernel<%llu>(float*)",
                 (unsigned long long)(i % 5));
        b->gk.name = b->s1;
        b->gk.grid_x = (uint32_t)i;
        b->ev.body_case = PTB__V1__EVENT__BODY_GPU_KERNEL;
        b->ev.gpu_kernel = &b->gk;
        b->ev.source = PTB__V1__SOURCE__SOURCE_GPU;
        break;
    case 2:
        ptb__v1__net_connect__init(&b->nc);
        ptb__v1__sock_addr__init(&b->remote);
        snprintf(b->s2, sizeof b->s2, "10.0.0.%llu", (unsigned long long)(i % 3));
        b->remote.ip = b->s2;
        b->remote.port = 443;
        b->nc.remote = &b->remote;
        b->nc.host = (i % 8 == 2) ? "huggingface.co" : "";
        b->nc.proto = "tcp";
        b->ev.body_case = PTB__V1__EVENT__BODY_NET_CONNECT;
        b->ev.net_connect = &b->nc;
        break;
    default:
        ptb__v1__tool_call__init(&b->tc);
        b->tc.name = (i % 8 == 3) ? "Bash" : "Write";
        snprintf(b->s1, sizeof b->s1, "{\"command\":\"echo %llu\"}", (unsigned long long)i);
        b->tc.input = b->s1;
        b->ev.body_case = PTB__V1__EVENT__BODY_TOOL_CALL;
        b->ev.tool_call = &b->tc;
        b->ev.source = PTB__V1__SOURCE__SOURCE_AGENT;
        break;
    }
    return &b->ev;
}

int test_event_equal(const ptb_event *got, uint64_t i)
{
    test_event b;
    const ptb_event *want = test_event_make(&b, i);
    if (got->seq != i + 1 || got->body_case != want->body_case)
        return 0;
    ptb_event g = *got;
    g.seq = 0;
    size_t n1 = protobuf_c_message_get_packed_size(&g.base);
    size_t n2 = protobuf_c_message_get_packed_size(&want->base);
    if (n1 != n2)
        return 0;
    uint8_t *x = malloc(n1 ? n1 : 1), *y = malloc(n2 ? n2 : 1);
    protobuf_c_message_pack(&g.base, x);
    protobuf_c_message_pack(&want->base, y);
    int same = memcmp(x, y, n1) == 0;
    free(x);
    free(y);
    return same;
}
