/* Claude Code session transcripts: ~/.claude/projects/<project>/<session>.jsonl, one JSON object
 * per line, written by Claude Code as a session goes (interactive or -p).
 *
 * Not documented by Anthropic as a format; the shapes here are those of the real transcripts in
 * ../shared/data/agent-streams/claude-code-transcripts/ (MIT, Entire Inc.; Claude Code 2.1.x),
 * which match the community descriptions (e.g. github.com/daaain/claude-code-log). Each line
 * carries "type", "uuid", "parentUuid", "sessionId", "timestamp" (ISO 8601, used as the event
 * time), "cwd", "version", "isSidechain" (a subagent's line). The message content is the
 * stream-json one (agent_claude.c), one content block per line for an assistant message:
 *
 *   user, assistant      -> as in stream-json (agent_claude_message): tool.call, tool.result,
 *                           agent.message roles "user" / "assistant" / "thinking", agent.usage
 *                           once per message id
 *   system               -> agent.message role "system": its "content" when it has one, else
 *                           the line as compact JSON (stop_hook_summary, turn_duration, ...)
 *   progress, file-history-snapshot, summary, queue-operation, custom-title, agent-name,
 *   last-prompt, pr-link, saved_hook_context -> ignored (UI progress and bookkeeping)
 * Anything else is counted as unknown. */
#include <string.h>

#include "agent_int.h"

static const char *const agent_transcript_ignored[] = {
    "progress",   "file-history-snapshot", "summary", "queue-operation",    "custom-title",
    "agent-name", "last-prompt",           "pr-link", "saved_hook_context", NULL,
};

static int agent_transcript_line(agent_parser *p, const json_t *obj, int64_t ts)
{
    agent_claude_state *cs = agent_state(p);
    const char *type = agent_jstr(obj, "type", NULL);
    int64_t own = agent_jtime(obj, "timestamp");
    if (own)
        ts = own;
    agent_copy(cs->session, sizeof cs->session, agent_jstr(obj, "sessionId", NULL));
    if (!type) {
        agent_unknown(p, NULL);
        return 0;
    }
    if (strcmp(type, "assistant") == 0 || strcmp(type, "user") == 0)
        return agent_claude_message(p, cs, obj, type, ts);
    if (strcmp(type, "system") == 0) {
        size_t n = 0;
        const char *content = agent_jstr(obj, "content", &n);
        if (content && n)
            return agent_message(p, ts, "system", content, n, NULL, cs->session);
        return agent_message_json(p, ts, "system", obj, NULL, cs->session);
    }
    for (int i = 0; agent_transcript_ignored[i]; i++)
        if (strcmp(type, agent_transcript_ignored[i]) == 0) {
            agent_ignored(p);
            return 0;
        }
    agent_unknown(p, type);
    return 0;
}

static int agent_transcript_detect(const json_t *obj)
{
    const char *type = agent_jstr(obj, "type", NULL);
    if (!type)
        return 0;
    if (json_object_get(obj, "sessionId") || json_object_get(obj, "parentUuid"))
        return 2;
    if (strcmp(type, "file-history-snapshot") == 0 || strcmp(type, "summary") == 0 ||
        strcmp(type, "queue-operation") == 0)
        return 2;
    return 0;
}

const agent_backend agent_claude_transcript_backend = {
    .format = AGENT_FORMAT_CLAUDE_TRANSCRIPT,
    .state_size = sizeof(agent_claude_state),
    .line = agent_transcript_line,
    .finish = agent_claude_finish,
    .detect = agent_transcript_detect,
};
