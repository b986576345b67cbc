/* Codex `codex exec --json`: one JSON object ("thread event") per line.
 *
 * Documented by the types Codex serialises, codex-rs/exec/src/exec_events.rs in
 * github.com/openai/codex (ThreadEvent, ThreadItem, ThreadItemDetails), mirrored by the
 * TypeScript SDK's sdk/typescript/src/events.ts and items.ts:
 *
 *   thread.started {thread_id}              -> agent.message role "system" (the line); the id
 *                                              is the session of later messages
 *   turn.started, item.updated, item.plan.delta, request_user_input -> ignored
 *   turn.completed {usage: {input_tokens, cached_input_tokens, output_tokens}}
 *                                           -> agent.usage per turn (input_tokens include the
 *                                              cached ones: input = input_tokens - cached)
 *   turn.failed {error: {message}}, error {message} -> agent.message role "error"
 *   item.started / item.completed {item: {id, type, ...}}:
 *     agent_message {text}                  -> agent.message role "assistant" (completed)
 *     reasoning {text}                      -> agent.message role "thinking" (completed)
 *     plan {text}                           -> agent.message role "assistant" (completed)
 *     error {message}                       -> agent.message role "error" (completed)
 *     todo_list                             -> ignored
 *     command_execution {command, aggregated_output, exit_code, status}
 *     file_change {changes: [{path, kind}], status}
 *     mcp_tool_call {server, tool, arguments, result: {content, structured_content}, error}
 *     web_search {query, action}, collab_tool_call {tool, ...}
 *        -> tool.call when the item starts (call_id = item id, name = the item type, or
 *           "mcp__SERVER__TOOL"; input = the item's fields but its id, type, status and
 *           outputs, as JSON), tool.result when it completes (the call first when its start
 *           was not seen: file_change only completes). Output: aggregated_output; MCP result
 *           content (text blocks joined by '\n', others as JSON) or error message; the status
 *           otherwise. is_error: a status failed/declined, a non-zero exit code, an MCP error.
 * Unknown line and item types are counted. Times: the format has none; the caller's are used. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"

typedef struct agent_codex_state {
    char thread[AGENT_ID_MAX + 1];
} agent_codex_state;

static bool agent_eq(const char *a, const char *b)
{
    return a && strcmp(a, b) == 0;
}

static bool agent_codex_is_tool(const char *t)
{
    return agent_eq(t, "command_execution") || agent_eq(t, "file_change") ||
           agent_eq(t, "mcp_tool_call") || agent_eq(t, "web_search") ||
           agent_eq(t, "collab_tool_call");
}

/* The tool call of an item: name and input. */
static int agent_codex_call(agent_parser *p, const json_t *item, const char *type, int64_t ts)
{
    static const char *const outputs[] = {"id",        "type",   "status", "aggregated_output",
                                          "exit_code", "result", "error",  NULL};
    char name[AGENT_NAME_MAX + 1];
    if (strcmp(type, "mcp_tool_call") == 0) {
        const char *srv = agent_jstr(item, "server", NULL), *tool = agent_jstr(item, "tool", NULL);
        snprintf(name, sizeof name, "mcp__%s__%s", srv ? srv : "", tool ? tool : "");
    } else {
        snprintf(name, sizeof name, "%s", type);
    }
    json_t *input = json_object();
    if (!input)
        return PTB_ENOMEM;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)item, key, v)
    {
        bool skip = false;
        for (int i = 0; outputs[i] && !skip; i++)
            skip = strcmp(key, outputs[i]) == 0;
        if (!skip && json_object_set(input, key, v)) {
            json_decref(input);
            return PTB_ENOMEM;
        }
    }
    int rc = agent_call_json(p, ts, agent_jstr(item, "id", NULL), name, input);
    json_decref(input);
    return rc;
}

static int agent_codex_result(agent_parser *p, const json_t *item, const char *type, int64_t ts)
{
    const char *id = agent_jstr(item, "id", NULL);
    int rc = agent_call_seen(p, id) ? 0 : agent_codex_call(p, item, type, ts);
    if (rc)
        return rc;
    const char *status = agent_jstr(item, "status", NULL);
    bool err = agent_eq(status, "failed") || agent_eq(status, "declined");
    const json_t *ec = json_object_get(item, "exit_code");
    if (json_is_integer(ec) && json_integer_value(ec) != 0)
        err = true;
    size_t n = 0;
    const char *out = NULL;
    char *own = NULL;
    if (strcmp(type, "command_execution") == 0) {
        out = agent_jstr(item, "aggregated_output", &n);
    } else if (strcmp(type, "mcp_tool_call") == 0) {
        const json_t *e = agent_jobj(item, "error");
        if (e) {
            err = true;
            out = agent_jstr(e, "message", &n);
        } else if (agent_jobj(item, "result")) {
            const json_t *content = json_object_get(agent_jobj(item, "result"), "content");
            if (agent_jtext(content, &own, &n))
                return PTB_ENOMEM;
            out = own;
        }
    }
    if (!out)
        out = agent_jstr(item, "status", &n);
    rc = agent_result(p, ts, id, err, out, n);
    free(own);
    return rc;
}

static int agent_codex_item(agent_parser *p, agent_codex_state *cs, const json_t *obj,
                            bool completed, int64_t ts)
{
    const json_t *item = agent_jobj(obj, "item");
    const char *type = agent_jstr(item, "type", NULL);
    char what[64];
    if (!type) {
        agent_unknown(p, "item without type");
        return 0;
    }
    if (agent_codex_is_tool(type)) {
        if (completed)
            return agent_codex_result(p, item, type, ts);
        return agent_call_seen(p, agent_jstr(item, "id", NULL))
                   ? 0
                   : agent_codex_call(p, item, type, ts);
    }
    const char *role = agent_eq(type, "agent_message") || agent_eq(type, "plan") ? "assistant"
                       : agent_eq(type, "reasoning")                             ? "thinking"
                       : agent_eq(type, "error")                                 ? "error"
                                                                                 : NULL;
    if (role) {
        if (!completed) {
            agent_ignored(p);
            return 0;
        }
        size_t n = 0;
        const char *text = agent_jstr(item, agent_eq(type, "error") ? "message" : "text", &n);
        return agent_message(p, ts, role, text, n, NULL, cs->thread);
    }
    if (agent_eq(type, "todo_list")) {
        agent_ignored(p);
        return 0;
    }
    snprintf(what, sizeof what, "item %.40s", type);
    agent_unknown(p, what);
    return 0;
}

static int agent_codex_line(agent_parser *p, const json_t *obj, int64_t ts)
{
    agent_codex_state *cs = agent_state(p);
    const char *type = agent_jstr(obj, "type", NULL);
    if (!type) {
        agent_unknown(p, NULL);
        return 0;
    }
    if (strcmp(type, "item.started") == 0 || strcmp(type, "item.completed") == 0)
        return agent_codex_item(p, cs, obj, type[5] == 'c', ts);
    if (strcmp(type, "thread.started") == 0) {
        agent_copy(cs->thread, sizeof cs->thread, agent_jstr(obj, "thread_id", NULL));
        return agent_message_json(p, ts, "system", obj, NULL, cs->thread);
    }
    if (strcmp(type, "turn.completed") == 0) {
        const json_t *u = agent_jobj(obj, "usage");
        uint64_t in = agent_juint(u, "input_tokens"),
                 cached = agent_juint(u, "cached_input_tokens");
        agent_usage_in au = {
            .input = in > cached ? in - cached : 0,
            .cache_read = cached,
            .output = agent_juint(u, "output_tokens"),
        };
        return agent_usage(p, ts, &au);
    }
    if (strcmp(type, "turn.failed") == 0 || strcmp(type, "error") == 0) {
        const json_t *e = strcmp(type, "error") == 0 ? obj : agent_jobj(obj, "error");
        size_t n = 0;
        const char *msg = agent_jstr(e, "message", &n);
        if (msg && n)
            return agent_message(p, ts, "error", msg, n, NULL, cs->thread);
        return agent_message_json(p, ts, "error", obj, NULL, cs->thread);
    }
    if (strcmp(type, "turn.started") == 0 || strcmp(type, "item.updated") == 0 ||
        strcmp(type, "item.plan.delta") == 0 || strcmp(type, "request_user_input") == 0) {
        agent_ignored(p);
        return 0;
    }
    agent_unknown(p, type);
    return 0;
}

static int agent_codex_detect(const json_t *obj)
{
    const char *type = agent_jstr(obj, "type", NULL);
    if (!type)
        return 0;
    if (strncmp(type, "thread.", 7) == 0 || strncmp(type, "turn.", 5) == 0 ||
        strncmp(type, "item.", 5) == 0)
        return 2;
    return strcmp(type, "error") == 0 && json_object_size(obj) == 2 ? 1 : 0;
}

const agent_backend agent_codex_backend = {
    .format = AGENT_FORMAT_CODEX,
    .state_size = sizeof(agent_codex_state),
    .line = agent_codex_line,
    .detect = agent_codex_detect,
};
