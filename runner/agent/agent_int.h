/* Internal header of the agent parsers: the backend table and the helpers the backends share
 * (agent_parse.c makes the events; agent_util.c reads JSON and times, and turns texts into
 * redacted inline prefixes and blobs). Not for use outside runner/agent/. */
#ifndef PTB_AGENT_INT_H
#define PTB_AGENT_INT_H

#include <jansson.h>

#include "agent_parse.h"

/* One format. line() gets each line parsed as a JSON object (borrowed for the call) and the
 * line's time (the caller's, or 0): it makes the events and returns 0 or a store/sink error. */
typedef struct agent_backend {
    agent_format format;
    size_t state_size; /* bytes of zeroed per-parser state (agent_state), 0 for none */
    int (*line)(agent_parser *p, const json_t *obj, int64_t ts);
    int (*finish)(agent_parser *p, int64_t ts); /* pending events; may be NULL */
    void (*fini)(agent_parser *p);              /* frees what the state owns; may be NULL */
    /* 2: the line is surely this format; 1: it may be; 0: it is not */
    int (*detect)(const json_t *obj);
} agent_backend;

extern const agent_backend agent_claude_backend;
extern const agent_backend agent_claude_transcript_backend;
extern const agent_backend agent_codex_backend;
extern const agent_backend agent_gemini_backend;
extern const agent_backend agent_opencode_backend;

/* The backend's state (state_size bytes, zeroed at the start), owned by the parser. */
void *agent_state(agent_parser *p);

/* ------------------------------------------------------------------ JSON helpers */

/* The string value of obj[key] and its length (*len may be NULL); NULL when absent or not a
 * string. Borrowed from obj. */
const char *agent_jstr(const json_t *obj, const char *key, size_t *len);

/* obj[key] as a non-negative integer (integers, and reals that are whole); 0 otherwise. */
uint64_t agent_juint(const json_t *obj, const char *key);

/* obj[key] as a number; 0 otherwise. */
double agent_jreal(const json_t *obj, const char *key);

/* obj[key] when it is an object, else NULL. Borrowed. */
const json_t *agent_jobj(const json_t *obj, const char *key);

/* Compact JSON text of v (malloc'd, caller frees; *len its length), or NULL on ENOMEM. */
char *agent_jdump(const json_t *v, size_t *len);

/* The text of a content value: a string as it is, an array of blocks as their texts (the "text"
 * of {"type":"text"} blocks, other blocks as compact JSON) joined by '\n'. *out is malloc'd
 * (caller frees), or NULL (and *len 0) when content is neither. Returns 0 or PTB_ENOMEM. */
int agent_jtext(const json_t *content, char **out, size_t *len);

/* obj[key] as an ISO 8601 time (agent_time_iso, agent_parse.h); 0 when absent or not one. */
int64_t agent_jtime(const json_t *obj, const char *key);

/* ------------------------------------------------------------------ events */

/* Count a line type or block the backend does not know (what: its type name, may be NULL). */
void agent_unknown(agent_parser *p, const char *what);

/* Count a known line that makes no event. */
void agent_ignored(agent_parser *p);

/* tool.call: id (may be NULL or empty: not paired), name, input text (JSON). Strings are borrowed
 * for the call. A call id already seen makes no event (dup_calls). */
int agent_call(agent_parser *p, int64_t ts, const char *id, const char *name, const char *input,
               size_t input_len);

/* Whether a tool.call with this id was made already. */
bool agent_call_seen(agent_parser *p, const char *id);

/* tool.call with a JSON input (NULL: "{}"). */
int agent_call_json(agent_parser *p, int64_t ts, const char *id, const char *name,
                    const json_t *input);

/* tool.result for call id, paired with its call. */
int agent_result(agent_parser *p, int64_t ts, const char *id, bool is_error, const char *out,
                 size_t out_len);

/* agent.message; model and session may be NULL. An empty text makes no event. */
int agent_message(agent_parser *p, int64_t ts, const char *role, const char *text, size_t len,
                  const char *model, const char *session);

/* agent.message whose text is the compact JSON of v (system lines without a text). */
int agent_message_json(agent_parser *p, int64_t ts, const char *role, const json_t *v,
                       const char *model, const char *session);

typedef struct agent_usage_in {
    const char *model; /* may be NULL */
    uint64_t input, output, cache_read, cache_write;
    double cost_usd;
    bool total; /* the session's totals (AgentUsage.session_total) */
} agent_usage_in;

/* agent.usage. */
int agent_usage(agent_parser *p, int64_t ts, const agent_usage_in *u);

/* ------------------------------------------------------------------ texts (agent_util.c) */

/* A text as an event holds it: redacted, its first inline_max bytes inline, all of it a blob. */
typedef struct agent_text {
    char *inline_text; /* malloc'd, NUL-terminated, valid UTF-8: the prefix */
    uint8_t sha256[32];
    bool blob;         /* the whole text is the blob sha256 */
    uint64_t bytes;    /* length of the whole redacted text */
    unsigned redacted; /* secrets replaced */
} agent_text;

/* Redact text (len bytes, borrowed; NULL when len is 0) and fill *out; when the result is over
 * inline_max and s is not NULL, store it whole as a blob named what. A blob over the store's
 * cap or budget is left out (the store records that gap itself): *out has the prefix only.
 * Returns 0, PTB_ENOMEM or the store's error; free *out with agent_text_free (also on error). */
int agent_text_make(store *s, size_t inline_max, const char *text, size_t len, const char *what,
                    agent_text *out);
void agent_text_free(agent_text *t);

/* A gap event, origin "agent". */
int agent_gap(agent_parser *p, int64_t ts, const char *reason, uint64_t count, uint64_t bytes,
              const char *detail);

/* ------------------------------------------------------------------ Claude Code (agent_claude.c) */

/* What the stream-json and transcript backends share: the content of `assistant` and `user`
 * lines, and the usage of an assistant message, which Claude Code repeats on every line of
 * the message (one line per content block): it is held under the message id and emitted once,
 * when another message's usage comes or at the finish; ids already emitted are remembered
 * (AGENT_CLAUDE_RECENT) so a message whose lines interleave with another's counts once. */
#define AGENT_CLAUDE_RECENT 16
typedef struct agent_claude_state {
    char session[AGENT_ID_MAX + 1];
    char model[AGENT_NAME_MAX + 1];
    char usage_id[AGENT_ID_MAX + 1]; /* message id of the held usage; "" when none */
    char usage_model[AGENT_NAME_MAX + 1];
    agent_usage_in usage;
    int64_t usage_ts;
    char recent[AGENT_CLAUDE_RECENT][AGENT_ID_MAX + 1];
    unsigned recent_next;
} agent_claude_state;

/* An `assistant` or `user` line (type says which). */
int agent_claude_message(agent_parser *p, agent_claude_state *cs, const json_t *obj,
                         const char *type, int64_t ts);

/* Emit the held usage, if any; agent_claude_finish does it for the backend's finish. */
int agent_claude_flush(agent_parser *p, agent_claude_state *cs);
int agent_claude_finish(agent_parser *p, int64_t ts);

/* Copy s (may be NULL: no change) into a state field of size cap. */
void agent_copy(char *dst, size_t cap, const char *s);

#endif
