/* Claude Code `--output-format stream-json` (with `-p --verbose`): one JSON object per line.
 *
 * Documented in the Agent SDK's message types (docs.claude.com/en/docs/agent-sdk/typescript,
 * "Message Types": SDKSystemMessage, SDKAssistantMessage, SDKUserMessage, SDKResultMessage,
 * SDKPartialAssistantMessage) and the Messages API content blocks (text, thinking, tool_use,
 * tool_result); the shapes here were checked against the captured messages in
 * ../shared/data/agent-streams/claude-code-fixtures/ (MIT, Charlie You).
 *
 *   {"type":"system","subtype":"init","session_id","model","tools",...}
 *       -> agent.message role "system", text = the line as compact JSON (any subtype)
 *   {"type":"assistant","message":{"id","model","content":[blocks],"usage":{...}},"session_id"}
 *       text       -> agent.message role "assistant"
 *       thinking   -> agent.message role "thinking"
 *       tool_use, server_tool_use, mcp_tool_use -> tool.call (call_id = id, name, input JSON)
 *       *_tool_result (server tools' results)   -> tool.result
 *       usage      -> agent.usage, once per message id (agent_int.h)
 *       "is_partial": true lines are skipped (the complete message follows)
 *   {"type":"user","message":{"content": "text" | [blocks]}}
 *       tool_result -> tool.result (call_id = tool_use_id, is_error; content a string, or text
 *                      blocks joined by '\n', other blocks as compact JSON)
 *       text        -> agent.message role "user"
 *   {"type":"result","subtype","is_error","result","usage","total_cost_usd","modelUsage"}
 *       -> agent.message role "result" (the result text, or the subtype when it is empty), then
 *          the session's totals: one agent.usage per model of modelUsage (its costUSD), or one
 *          from usage and total_cost_usd when modelUsage is empty
 *   {"type":"stream_event"} (--include-partial-messages deltas), {"type":"keep_alive"}: ignored
 * Anything else is counted as unknown. Times: this format has none; the caller's are used. */
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"

void agent_copy(char *dst, size_t cap, const char *s)
{
    if (!s)
        return;
    size_t n = strnlen(s, cap - 1);
    while (n > 0 && n == cap - 1 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

int agent_claude_flush(agent_parser *p, agent_claude_state *cs)
{
    if (!cs->usage_id[0])
        return 0;
    cs->usage.model = cs->usage_model;
    int rc = agent_usage(p, cs->usage_ts, &cs->usage);
    memcpy(cs->recent[cs->recent_next], cs->usage_id, sizeof cs->usage_id);
    cs->recent_next = (cs->recent_next + 1) % AGENT_CLAUDE_RECENT;
    cs->usage_id[0] = '\0';
    return rc;
}

/* The token counts of a usage object: the Messages API's snake_case keys, or the camelCase ones
 * of a result's modelUsage. */
static agent_usage_in agent_claude_counts(const json_t *u, const char *model, bool camel)
{
    return (agent_usage_in){
        .model = model,
        .input = agent_juint(u, camel ? "inputTokens" : "input_tokens"),
        .output = agent_juint(u, camel ? "outputTokens" : "output_tokens"),
        .cache_read = agent_juint(u, camel ? "cacheReadInputTokens" : "cache_read_input_tokens"),
        .cache_write =
            agent_juint(u, camel ? "cacheCreationInputTokens" : "cache_creation_input_tokens"),
    };
}

/* Hold the usage of message id (replacing the held one of the same id: the last is the most
 * complete), emitting the one held before when it is another message's. */
static int agent_claude_usage(agent_parser *p, agent_claude_state *cs, const char *id,
                              const char *model, const json_t *u, int64_t ts)
{
    agent_usage_in now = agent_claude_counts(u, model, false);
    char idb[AGENT_ID_MAX + 1] = "";
    agent_copy(idb, sizeof idb, id);
    if (!idb[0]) { /* no id: a message of its own */
        int rc = agent_claude_flush(p, cs);
        return rc ? rc : agent_usage(p, ts, &now);
    }
    for (unsigned i = 0; i < AGENT_CLAUDE_RECENT; i++)
        if (strcmp(cs->recent[i], idb) == 0)
            return 0;
    int rc = 0;
    if (strcmp(cs->usage_id, idb) != 0)
        rc = agent_claude_flush(p, cs);
    memcpy(cs->usage_id, idb, sizeof idb);
    cs->usage_model[0] = '\0';
    agent_copy(cs->usage_model, sizeof cs->usage_model, model);
    cs->usage = now;
    cs->usage_ts = ts;
    return rc;
}

static int agent_claude_result_block(agent_parser *p, const json_t *b, int64_t ts)
{
    char *text;
    size_t n;
    int rc = agent_jtext(json_object_get(b, "content"), &text, &n);
    if (rc)
        return rc;
    rc = agent_result(p, ts, agent_jstr(b, "tool_use_id", NULL),
                      json_is_true(json_object_get(b, "is_error")), text, n);
    free(text);
    return rc;
}

static bool agent_ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* One content block of a message whose role is role ("assistant" or "user"). */
static int agent_claude_block(agent_parser *p, agent_claude_state *cs, const json_t *b,
                              const char *role, const char *model, int64_t ts)
{
    const char *type = agent_jstr(b, "type", NULL);
    size_t n = 0;
    const char *s;
    if (!type) {
        agent_unknown(p, "(block without type)");
        return 0;
    }
    if (strcmp(type, "text") == 0) {
        s = agent_jstr(b, "text", &n);
        return agent_message(p, ts, role, s, n, model, cs->session);
    }
    if (strcmp(type, "thinking") == 0) {
        s = agent_jstr(b, "thinking", &n);
        return agent_message(p, ts, "thinking", s, n, model, cs->session);
    }
    if (strcmp(type, "tool_use") == 0 || strcmp(type, "server_tool_use") == 0 ||
        strcmp(type, "mcp_tool_use") == 0)
        return agent_call_json(p, ts, agent_jstr(b, "id", NULL), agent_jstr(b, "name", NULL),
                               json_object_get(b, "input"));
    if (strcmp(type, "tool_result") == 0 || agent_ends_with(type, "_tool_result"))
        return agent_claude_result_block(p, b, ts);
    if (strcmp(type, "redacted_thinking") == 0 || strcmp(type, "image") == 0 ||
        strcmp(type, "document") == 0) {
        agent_ignored(p);
        return 0;
    }
    agent_unknown(p, type);
    return 0;
}

int agent_claude_message(agent_parser *p, agent_claude_state *cs, const json_t *obj,
                         const char *type, int64_t ts)
{
    if (json_is_true(json_object_get(obj, "is_partial"))) {
        agent_ignored(p);
        return 0;
    }
    const json_t *m = agent_jobj(obj, "message");
    if (!m) {
        agent_unknown(p, type);
        return 0;
    }
    bool assistant = strcmp(type, "assistant") == 0;
    const char *role = assistant ? "assistant" : "user";
    const char *model = agent_jstr(m, "model", NULL);
    if (assistant && model)
        agent_copy(cs->model, sizeof cs->model, model);
    const json_t *content = json_object_get(m, "content");
    int rc = 0;
    if (json_is_string(content)) {
        rc = agent_message(p, ts, role, json_string_value(content), json_string_length(content),
                           model, cs->session);
    } else if (json_is_array(content)) {
        size_t i;
        const json_t *b;
        json_array_foreach(content, i, b)
        {
            rc = json_is_object(b) ? agent_claude_block(p, cs, b, role, model, ts) : 0;
            if (rc)
                return rc;
        }
    }
    const json_t *u = agent_jobj(m, "usage");
    if (!rc && assistant && u)
        rc = agent_claude_usage(p, cs, agent_jstr(m, "id", NULL), model, u, ts);
    return rc;
}

/* ------------------------------------------------------------------ stream-json lines */

/* The `result` line: the final text and the session's totals. */
static int agent_claude_result(agent_parser *p, agent_claude_state *cs, const json_t *obj,
                               int64_t ts)
{
    int rc = agent_claude_flush(p, cs);
    size_t n = 0;
    const char *text = agent_jstr(obj, "result", &n);
    if (!n)
        text = agent_jstr(obj, "subtype", &n);
    if (!rc)
        rc = agent_message(p, ts, "result", text, n, cs->model, cs->session);
    const json_t *mu = agent_jobj(obj, "modelUsage");
    if (!rc && mu && json_object_size(mu) > 0) {
        const char *name;
        const json_t *v;
        json_object_foreach((json_t *)mu, name, v)
        {
            agent_usage_in u = agent_claude_counts(v, name, true);
            u.cost_usd = agent_jreal(v, "costUSD");
            u.total = true;
            if (rc || (rc = agent_usage(p, ts, &u)))
                break;
        }
        return rc;
    }
    const json_t *us = agent_jobj(obj, "usage");
    if (!rc && (us || json_object_get(obj, "total_cost_usd"))) {
        agent_usage_in u = agent_claude_counts(us, cs->model, false);
        u.cost_usd = agent_jreal(obj, "total_cost_usd");
        u.total = true;
        rc = agent_usage(p, ts, &u);
    }
    return rc;
}

static int agent_claude_line(agent_parser *p, const json_t *obj, int64_t ts)
{
    agent_claude_state *cs = agent_state(p);
    const char *type = agent_jstr(obj, "type", NULL);
    agent_copy(cs->session, sizeof cs->session, agent_jstr(obj, "session_id", NULL));
    if (!type) {
        agent_unknown(p, NULL);
        return 0;
    }
    if (strcmp(type, "assistant") == 0 || strcmp(type, "user") == 0)
        return agent_claude_message(p, cs, obj, type, ts);
    if (strcmp(type, "system") == 0) {
        agent_copy(cs->model, sizeof cs->model, agent_jstr(obj, "model", NULL));
        return agent_message_json(p, ts, "system", obj, cs->model, cs->session);
    }
    if (strcmp(type, "result") == 0)
        return agent_claude_result(p, cs, obj, ts);
    if (strcmp(type, "stream_event") == 0 || strcmp(type, "keep_alive") == 0) {
        agent_ignored(p);
        return 0;
    }
    agent_unknown(p, type);
    return 0;
}

int agent_claude_finish(agent_parser *p, int64_t ts)
{
    (void)ts;
    return agent_claude_flush(p, agent_state(p));
}

static int agent_claude_detect(const json_t *obj)
{
    const char *type = agent_jstr(obj, "type", NULL);
    if (!type)
        return 0;
    bool ours = strcmp(type, "system") == 0 || strcmp(type, "assistant") == 0 ||
                strcmp(type, "user") == 0 || strcmp(type, "result") == 0 ||
                strcmp(type, "stream_event") == 0;
    if (!ours || json_object_get(obj, "sessionId") || json_object_get(obj, "timestamp"))
        return 0;
    if (json_object_get(obj, "session_id"))
        return 2;
    return agent_jobj(obj, "message") ? 1 : 0;
}

const agent_backend agent_claude_backend = {
    .format = AGENT_FORMAT_CLAUDE,
    .state_size = sizeof(agent_claude_state),
    .line = agent_claude_line,
    .finish = agent_claude_finish,
    .detect = agent_claude_detect,
};
