/* Fuzz target: the agent stream parsers (runner/agent/agent_parse.h). The first byte picks the
 * format (its value mod AGENT_FORMAT_COUNT, 0 = auto), the second how the rest is cut into
 * writes (1 + its value bytes at a time, as a pipe delivers them); the rest is the stream. The
 * parser must take anything without an error (a broken line is a gap, not a failure) and its
 * counters must agree with the events it made. */
#include <stdint.h>
#include <stdlib.h>

#include "agent_parse.h"

typedef struct fuzz_count {
    uint64_t calls, results, messages, usages, gaps;
} fuzz_count;

static int fuzz_sink(void *arg, const ptb_event *ev)
{
    fuzz_count *c = arg;
    switch (ev->body_case) {
    case PTB__V1__EVENT__BODY_TOOL_CALL: c->calls++; break;
    case PTB__V1__EVENT__BODY_TOOL_RESULT: c->results++; break;
    case PTB__V1__EVENT__BODY_AGENT_MESSAGE: c->messages++; break;
    case PTB__V1__EVENT__BODY_AGENT_USAGE: c->usages++; break;
    case PTB__V1__EVENT__BODY_GAP: c->gaps++; break;
    default: abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    fuzz_count c = {0};
    agent_options o;
    agent_options_default(&o);
    o.format = (agent_format)(data[0] % AGENT_FORMAT_COUNT);
    o.sink = fuzz_sink;
    o.sink_arg = &c;
    o.line_max = 1 << 16;
    o.inline_max = 64;
    size_t step = 1 + data[1];
    data += 2;
    size -= 2;
    agent_parser *p = NULL;
    if (agent_parser_new(&o, &p) != 0)
        abort();
    for (size_t at = 0; at < size; at += step)
        if (agent_parser_write(p, data + at, at + step > size ? size - at : step, 1) != 0)
            abort();
    if (agent_parser_finish(p, 2) != 0)
        abort();
    agent_stats st;
    agent_parser_stats(p, &st);
    if (st.calls != c.calls || st.results != c.results || st.messages != c.messages ||
        st.usages != c.usages || st.gaps != c.gaps || st.paired > st.results ||
        st.paired + st.orphan_results != st.results || st.blank + st.broken > st.lines)
        abort();
    agent_parser_free(p);
    return 0;
}
