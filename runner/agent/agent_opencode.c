/* OpenCode `opencode run --format json`: one JSON object per line.
 *
 * Documented by the code that prints it, packages/opencode/src/cli/cmd/run.ts in
 * github.com/sst/opencode (now anomalyco/opencode): emit(type, data) writes
 * {type, timestamp (ms since 1970, the event time), sessionID, ...data} for the session's
 * message parts; the part shapes are the SDK's (packages/sdk/js, ToolPart, StepFinishPart,
 * TextPart, ReasoningPart):
 *
 *   step_start {part}                            -> ignored
 *   text {part: {text}}                          -> agent.message role "assistant"
 *   reasoning {part: {text}}                     -> agent.message role "thinking"
 *   tool_use {part: {callID, tool, state: {status, input, output | error, time: {start, end}}}}
 *        printed once, when the tool has completed or failed
 *                                                -> tool.call (call_id = callID, or the part id;
 *                                                   name = tool; input; time = state.time.start)
 *                                                   and its tool.result (output, or the error;
 *                                                   is_error: status "error"; time = time.end)
 *   step_finish {part: {cost, tokens: {input, output, reasoning, cache: {read, write}}}}
 *                                                -> agent.usage of the step (output includes
 *                                                   the reasoning tokens)
 *   error {error: {name, data: {message}}}       -> agent.message role "error"
 *   done                                         -> ignored
 * Unknown types are counted. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"

#define AGENT_MS 1000000LL

/* A time in ms since 1970 as ns; 0 when absent or out of range. */
static int64_t agent_ms(const json_t *obj, const char *key)
{
    uint64_t ms = agent_juint(obj, key);
    return ms > 0 && ms < (uint64_t)(INT64_MAX / AGENT_MS) ? (int64_t)ms * AGENT_MS : 0;
}

static int agent_opencode_tool(agent_parser *p, const json_t *part, int64_t ts)
{
    const json_t *state = agent_jobj(part, "state");
    const json_t *time = agent_jobj(state, "time");
    int64_t t0 = agent_ms(time, "start"), t1 = agent_ms(time, "end");
    const char *id = agent_jstr(part, "callID", NULL);
    if (!id)
        id = agent_jstr(part, "id", NULL);
    int rc = agent_call_seen(p, id)
                 ? 0
                 : agent_call_json(p, t0 ? t0 : ts, id, agent_jstr(part, "tool", NULL),
                                   json_object_get(state, "input"));
    const char *status = agent_jstr(state, "status", NULL);
    if (rc || !status || (strcmp(status, "completed") != 0 && strcmp(status, "error") != 0))
        return rc; /* pending or running: no result yet */
    bool err = strcmp(status, "error") == 0;
    const json_t *out = json_object_get(state, err ? "error" : "output");
    char *text = NULL;
    size_t n = 0;
    if (json_is_string(out) || json_is_array(out)) {
        if (agent_jtext(out, &text, &n))
            return PTB_ENOMEM;
    } else if (out && !json_is_null(out)) {
        text = agent_jdump(out, &n);
        if (!text)
            return PTB_ENOMEM;
    }
    rc = agent_result(p, t1 ? t1 : ts, id, err, text, n);
    free(text);
    return rc;
}

static int agent_opencode_line(agent_parser *p, const json_t *obj, int64_t ts)
{
    const char *type = agent_jstr(obj, "type", NULL);
    const char *session = agent_jstr(obj, "sessionID", NULL);
    const json_t *part = agent_jobj(obj, "part");
    int64_t own = agent_ms(obj, "timestamp");
    size_t n = 0;
    if (own)
        ts = own;
    if (!type) {
        agent_unknown(p, NULL);
        return 0;
    }
    if (strcmp(type, "tool_use") == 0 && part)
        return agent_opencode_tool(p, part, ts);
    if ((strcmp(type, "text") == 0 || strcmp(type, "reasoning") == 0) && part) {
        const char *text = agent_jstr(part, "text", &n);
        return agent_message(p, ts, type[0] == 't' ? "assistant" : "thinking", text, n, NULL,
                             session);
    }
    if (strcmp(type, "step_finish") == 0 && part) {
        const json_t *tok = agent_jobj(part, "tokens"), *cache = agent_jobj(tok, "cache");
        agent_usage_in u = {
            .input = agent_juint(tok, "input"),
            .output = agent_juint(tok, "output") + agent_juint(tok, "reasoning"),
            .cache_read = agent_juint(cache, "read"),
            .cache_write = agent_juint(cache, "write"),
            .cost_usd = agent_jreal(part, "cost"),
        };
        return agent_usage(p, ts, &u);
    }
    if (strcmp(type, "error") == 0) {
        const json_t *e = agent_jobj(obj, "error");
        const char *msg = agent_jstr(agent_jobj(e, "data"), "message", &n);
        if (!msg)
            msg = agent_jstr(e, "name", &n);
        if (msg && n)
            return agent_message(p, ts, "error", msg, n, NULL, session);
        return agent_message_json(p, ts, "error", obj, NULL, session);
    }
    if (strcmp(type, "step_start") == 0 || strcmp(type, "done") == 0) {
        agent_ignored(p);
        return 0;
    }
    agent_unknown(p, type);
    return 0;
}

static int agent_opencode_detect(const json_t *obj)
{
    const char *type = agent_jstr(obj, "type", NULL);
    if (!type)
        return 0;
    if (agent_jstr(obj, "sessionID", NULL) && (agent_jobj(obj, "part") || agent_jobj(obj, "error")))
        return 2;
    if (json_is_integer(json_object_get(obj, "timestamp")) &&
        (strcmp(type, "step_start") == 0 || strcmp(type, "step_finish") == 0))
        return 2;
    return 0;
}

const agent_backend agent_opencode_backend = {
    .format = AGENT_FORMAT_OPENCODE,
    .line = agent_opencode_line,
    .detect = agent_opencode_detect,
};
