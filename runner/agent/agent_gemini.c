/* Gemini CLI `gemini -p PROMPT --output-format stream-json`: one JSON object per line.
 *
 * Documented by the types the CLI serialises, packages/core/src/output/types.ts in
 * github.com/google-gemini/gemini-cli (JsonStreamEventType, InitEvent, MessageEvent,
 * ToolUseEvent, ToolResultEvent, ErrorEvent, ResultEvent, StreamStats), and
 * docs/cli/headless.md there. Every line has "type" and "timestamp" (ISO 8601, the event time):
 *
 *   init {session_id, model}                  -> agent.message role "system" (the line)
 *   message {role, content, delta?}           -> agent.message of that role; consecutive
 *                                                assistant chunks with "delta": true are joined
 *                                                into one message, made at the next other line
 *                                                (or the finish), with the first chunk's time
 *   tool_use {tool_name, tool_id, parameters} -> tool.call (call_id = tool_id, input = parameters)
 *   tool_result {tool_id, status, output?, error?: {type, message}}
 *                                             -> tool.result (is_error: status "error"; output,
 *                                                or the error message)
 *   error {severity, message}                 -> agent.message role "error"
 *   result {status, error?, stats?: {total_tokens, input_tokens, output_tokens, cached, input,
 *           duration_ms, tool_calls}}         -> agent.message role "result" (the status, or
 *                                                the error message), and the session's totals as
 *                                                agent.usage (input = stats.input, the uncached
 *                                                part; cache_read = cached), the model of init
 * Unknown types are counted. */
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"

typedef struct agent_gemini_state {
    char session[AGENT_ID_MAX + 1];
    char model[AGENT_NAME_MAX + 1];
    char *delta; /* assistant chunks joined so far (owned) */
    size_t delta_len;
    int64_t delta_ts;
} agent_gemini_state;

/* The joined assistant chunks become one message. */
static int agent_gemini_flush(agent_parser *p, agent_gemini_state *gs)
{
    if (!gs->delta)
        return 0;
    int rc = agent_message(p, gs->delta_ts, "assistant", gs->delta, gs->delta_len, gs->model,
                           gs->session);
    free(gs->delta);
    gs->delta = NULL;
    gs->delta_len = 0;
    return rc;
}

/* One assistant chunk: joined to the others (bounded by AGENT_LINE_MAX: past it, the message so
 * far is made and a new one starts). */
static int agent_gemini_delta(agent_parser *p, agent_gemini_state *gs, const char *s, size_t n,
                              int64_t ts)
{
    int rc = 0;
    if (gs->delta && gs->delta_len + n > AGENT_LINE_MAX)
        rc = agent_gemini_flush(p, gs);
    if (rc)
        return rc;
    char *nb = realloc(gs->delta, gs->delta_len + n + 1);
    if (!nb)
        return PTB_ENOMEM;
    if (!gs->delta)
        gs->delta_ts = ts;
    gs->delta = nb;
    memcpy(gs->delta + gs->delta_len, s, n);
    gs->delta_len += n;
    gs->delta[gs->delta_len] = '\0';
    return 0;
}

static int agent_gemini_result(agent_parser *p, agent_gemini_state *gs, const json_t *obj,
                               int64_t ts)
{
    size_t n = 0;
    const char *text = agent_jstr(agent_jobj(obj, "error"), "message", &n);
    if (!text)
        text = agent_jstr(obj, "status", &n);
    int rc = agent_message(p, ts, "result", text, n, gs->model, gs->session);
    const json_t *st = agent_jobj(obj, "stats");
    if (rc || !st)
        return rc;
    uint64_t in = agent_juint(st, "input_tokens"), cached = agent_juint(st, "cached");
    agent_usage_in u = {
        .model = gs->model,
        .input = json_object_get(st, "input") ? agent_juint(st, "input")
                 : in > cached                ? in - cached
                                              : 0,
        .output = agent_juint(st, "output_tokens"),
        .cache_read = cached,
        .total = true,
    };
    return agent_usage(p, ts, &u);
}

static int agent_gemini_line(agent_parser *p, const json_t *obj, int64_t ts)
{
    agent_gemini_state *gs = agent_state(p);
    const char *type = agent_jstr(obj, "type", NULL);
    size_t n = 0;
    int64_t own = agent_jtime(obj, "timestamp");
    if (own)
        ts = own;
    const char *role = agent_jstr(obj, "role", NULL);
    bool delta = type && strcmp(type, "message") == 0 && role && strcmp(role, "assistant") == 0 &&
                 json_is_true(json_object_get(obj, "delta"));
    if (delta) {
        const char *s = agent_jstr(obj, "content", &n);
        return s ? agent_gemini_delta(p, gs, s, n, ts) : 0;
    }
    int rc = agent_gemini_flush(p, gs);
    if (rc)
        return rc;
    if (!type) {
        agent_unknown(p, NULL);
        return 0;
    }
    if (strcmp(type, "message") == 0) {
        const char *s = agent_jstr(obj, "content", &n);
        return agent_message(p, ts, role ? role : "assistant", s, n, gs->model, gs->session);
    }
    if (strcmp(type, "tool_use") == 0)
        return agent_call_json(p, ts, agent_jstr(obj, "tool_id", NULL),
                               agent_jstr(obj, "tool_name", NULL),
                               json_object_get(obj, "parameters"));
    if (strcmp(type, "tool_result") == 0) {
        const char *status = agent_jstr(obj, "status", NULL);
        const char *out = agent_jstr(obj, "output", &n);
        if (!out)
            out = agent_jstr(agent_jobj(obj, "error"), "message", &n);
        return agent_result(p, ts, agent_jstr(obj, "tool_id", NULL),
                            status && strcmp(status, "error") == 0, out, n);
    }
    if (strcmp(type, "init") == 0) {
        agent_copy(gs->session, sizeof gs->session, agent_jstr(obj, "session_id", NULL));
        agent_copy(gs->model, sizeof gs->model, agent_jstr(obj, "model", NULL));
        return agent_message_json(p, ts, "system", obj, gs->model, gs->session);
    }
    if (strcmp(type, "error") == 0) {
        const char *s = agent_jstr(obj, "message", &n);
        return agent_message(p, ts, "error", s, n, gs->model, gs->session);
    }
    if (strcmp(type, "result") == 0)
        return agent_gemini_result(p, gs, obj, ts);
    agent_unknown(p, type);
    return 0;
}

static int agent_gemini_finish(agent_parser *p, int64_t ts)
{
    (void)ts;
    return agent_gemini_flush(p, agent_state(p));
}

static void agent_gemini_fini(agent_parser *p)
{
    agent_gemini_state *gs = agent_state(p);
    free(gs->delta);
    gs->delta = NULL;
}

static int agent_gemini_detect(const json_t *obj)
{
    const char *type = agent_jstr(obj, "type", NULL);
    if (!type || !agent_jstr(obj, "timestamp", NULL) || json_object_get(obj, "sessionId"))
        return 0;
    if (strcmp(type, "init") == 0 ||
        (strcmp(type, "tool_use") == 0 && agent_jstr(obj, "tool_id", NULL)) ||
        (strcmp(type, "tool_result") == 0 && agent_jstr(obj, "tool_id", NULL)) ||
        (strcmp(type, "message") == 0 && agent_jstr(obj, "role", NULL)) ||
        (strcmp(type, "error") == 0 && agent_jstr(obj, "severity", NULL)) ||
        (strcmp(type, "result") == 0 && agent_jstr(obj, "status", NULL)))
        return 2;
    return 0;
}

const agent_backend agent_gemini_backend = {
    .format = AGENT_FORMAT_GEMINI,
    .state_size = sizeof(agent_gemini_state),
    .line = agent_gemini_line,
    .finish = agent_gemini_finish,
    .fini = agent_gemini_fini,
    .detect = agent_gemini_detect,
};
