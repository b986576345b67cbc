/* Agent stream parsers: the JSON lines an agent CLI prints (or a session transcript it saves)
 * become tool.call, tool.result, agent.message and agent.usage events (DESIGN.md, "Recording").
 *
 * Formats, one file each behind the agent_backend table (agent_int.h):
 *   claude             `claude -p --verbose --output-format stream-json`   agent_claude.c
 *   claude-transcript  Claude Code session files ~/.claude/projects/<dir>/<session>.jsonl
 *                                                                         agent_claude_transcript.c
 *   codex              `codex exec --json`                                 agent_codex.c
 *   gemini             `gemini -p ... --output-format stream-json`         agent_gemini.c
 *   opencode           `opencode run --format json`                        agent_opencode.c
 * Each backend's file says where its format is documented and what maps to what.
 *
 * Use: create a parser, then either hand it complete lines (agent_parser_feed) or raw bytes as
 * they arrive from a pipe (agent_parser_write splits them into lines itself, of any length up to
 * line_max), and call agent_parser_finish at the end. Events go to a store (store_append, long
 * texts as blobs) or to a sink callback. Nothing here blocks except the store's own
 * backpressure, so a live caller (`ptb run`) can feed the agent's stdout as it reads it.
 *
 * What every format shares:
 * - Times: an event takes the time its line states (transcripts, Gemini and OpenCode have one),
 *   else the ts_ns the caller passed with the line (the time of reading; 0: the store's now).
 * - Tool calls are paired with their results by call id. A result whose call was never seen and
 *   calls that have no result at agent_parser_finish are counted (agent_stats) and recorded as
 *   one `gap` event each kind at the finish (origin "agent", reason "result_without_call" /
 *   "call_without_result", count, the first ids in detail). A call id seen twice makes one
 *   tool.call (the repeat is counted in dup_calls). Tying calls to processes is the
 *   caller's job (the tracer knows them): with on_call/call_procs, tool.result gets exec_ids.
 * - A line that is not a JSON object is a `gap` event (origin "agent", reason "truncated_line"
 *   when the JSON ends early, as a stream cut off mid-line does, else "bad_line"; bytes = the
 *   line's length, detail = line number and the parser's message), never an error. The first
 *   AGENT_GAPS_MAX get one gap each; the rest are counted in one gap at the finish. A line over
 *   line_max (agent_parser_write) is dropped the same way, reason "line_too_long".
 * - Line types and content blocks a backend does not know are counted (unknown), the first
 *   names kept for the summary (agent_parser_unknown_names); they never fail the parse.
 * - Texts (tool inputs as compact JSON, tool outputs, messages) go through redact_text first:
 *   secrets become <secret:...> fingerprints, as everywhere in the store. A text longer than
 *   inline_max is stored whole as a blob (input_blob / output_blob / text_blob, SHA-256) and its
 *   first inline_max bytes (cut at a UTF-8 boundary) stay inline; tool.result output_bytes is
 *   always the whole length. Without a store (sink only) the inline prefix is all there is.
 * - agent.usage: input_tokens are the input tokens not read from a cache, cache_read_tokens
 *   those read from it (each backend converts: OpenAI-style counts include cached tokens in
 *   the input, Anthropic-style ones do not). Per-call or per-turn usages are increments; a
 *   session total that a format prints at its end (Claude's `result` line, Gemini's `result`
 *   stats) is an agent.usage with session_total set, preceded by an agent.message with role
 *   "result": a sum over a run takes either the totals or the increments, not both.
 *
 * Roles of agent.message: "user", "assistant", "system" (session start, system notices; the
 * line itself as compact JSON when it has no text), "thinking" (reasoning text), "result" (the
 * final answer or status of a run), "error" (errors the agent reports).
 *
 * Threads: a parser belongs to one thread at a time. */
#ifndef PTB_AGENT_PARSE_H
#define PTB_AGENT_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event_type.h"
#include "store.h"

#define AGENT_LINE_MAX ((size_t)64 << 20) /* default line_max */
#define AGENT_INLINE_MAX 4096             /* default inline_max */
#define AGENT_GAPS_MAX 100                /* broken lines recorded one gap each */
#define AGENT_CALLS_MAX (1u << 20)        /* call ids tracked for pairing; more are counted */
#define AGENT_ID_MAX 256                  /* bytes of a call id kept (longer ones are cut) */
#define AGENT_NAME_MAX 256                /* bytes of a tool name or model kept */
#define AGENT_DETECT_LINES 64             /* auto: lines held back while the format is unknown */
#define AGENT_UNKNOWN_NAMES 8             /* unknown type names remembered for the summary */
#define AGENT_PROCS_MAX 4096              /* exec_ids kept on one tool.result */

typedef enum agent_format {
    AGENT_FORMAT_AUTO = 0,
    AGENT_FORMAT_CLAUDE,
    AGENT_FORMAT_CLAUDE_TRANSCRIPT,
    AGENT_FORMAT_CODEX,
    AGENT_FORMAT_GEMINI,
    AGENT_FORMAT_OPENCODE,
    AGENT_FORMAT_COUNT
} agent_format;

/* "auto", "claude", "claude-transcript", "codex", "gemini", "opencode"; static storage. */
const char *agent_format_name(agent_format f);

/* The format named name (as above). Returns 0, or PTB_EINVAL for an unknown name. */
int agent_format_from_name(const char *name, agent_format *out);

/* The format one line belongs to, when the line alone says so; AGENT_FORMAT_AUTO when it does
 * not (not JSON, or a shape several formats share). line (len bytes) is borrowed for the call. */
agent_format agent_format_detect(const char *line, size_t len);

/* Called with each event instead of appending it to a store; ev and everything it points to are
 * borrowed for the call. A non-zero return stops the parser and is returned by the call that
 * made the event. */
typedef int (*agent_sink_fn)(void *arg, const ptb_event *ev);

typedef struct agent_options {
    agent_format format; /* AGENT_FORMAT_AUTO: decided from the first lines (below) */
    store *s;            /* borrowed: events and blobs go here; or NULL with a sink */
    agent_sink_fn sink;  /* used when s is NULL */
    void *sink_arg;
    const char *name;  /* borrowed for the parser's life: the input's name for gap events (a
                         path), or NULL */
    size_t line_max;   /* longest line agent_parser_write keeps (0: AGENT_LINE_MAX) */
    size_t inline_max; /* bytes of a long text kept inline (0: AGENT_INLINE_MAX) */
    /* A live caller that knows the processes (ptb run, tool_procs.h): told of each call, asked
     * at its result for the exec_ids the call started (tool.result exec_ids; up to cap into
     * ids, returns how many). Called on the parser's thread. NULL: none. */
    void (*on_call)(void *arg, const char *call_id, const char *name, const char *input,
                    int64_t ts);
    size_t (*call_procs)(void *arg, const char *call_id, int64_t ts, uint64_t *ids, size_t cap);
    void *procs_arg;
} agent_options;

/* Fill *o with the defaults: auto format, no store, no sink. */
void agent_options_default(agent_options *o);

typedef struct agent_stats {
    uint64_t lines;          /* lines fed, blank ones included */
    uint64_t blank;          /* lines of white space only (skipped) */
    uint64_t broken;         /* not a JSON object, or over line_max (each one in a gap) */
    uint64_t unknown;        /* line types and content blocks the backend does not know */
    uint64_t ignored;        /* known lines that carry nothing to record (progress, snapshots) */
    uint64_t events;         /* events made, gaps included */
    uint64_t calls;          /* tool.call events */
    uint64_t calls_no_id;    /* ... of which had no call id (not paired) */
    uint64_t dup_calls;      /* call ids seen again (no second tool.call) */
    uint64_t results;        /* tool.result events */
    uint64_t paired;         /* ... whose call was seen */
    uint64_t orphan_results; /* ... whose call was not (recorded in a gap at the finish) */
    uint64_t unanswered;     /* calls without a result at the finish (in a gap) */
    uint64_t untracked;      /* calls past AGENT_CALLS_MAX, not paired */
    uint64_t messages;       /* agent.message events */
    uint64_t usages;         /* agent.usage events */
    uint64_t gaps;           /* gap events */
    uint64_t blobs;          /* texts stored as blobs */
    uint64_t redacted;       /* secrets replaced by fingerprints */
} agent_stats;

typedef struct agent_parser agent_parser;

/* A parser for opt->format (opt may not be NULL; it is copied). With AGENT_FORMAT_AUTO the
 * parser holds lines back until one says which format it is (agent_format_detect), up to
 * AGENT_DETECT_LINES lines; past that, or at the finish, it takes the format that the held lines
 * looked most like, and Claude stream-json when none did. Returns 0 and *out (caller frees with
 * agent_parser_free), PTB_EINVAL (no store and no sink, an unknown format) or PTB_ENOMEM. */
int agent_parser_new(const agent_options *opt, agent_parser **out);

/* One complete line, without its '\n' (a trailing '\r' is fine); any length. line (len bytes,
 * need not be NUL-terminated) is borrowed for the call. ts_ns: when it was read. Returns 0, or
 * the error of the store or sink (the parser then refuses further input with it); a broken line
 * is not an error (a gap). */
int agent_parser_feed(agent_parser *p, const char *line, size_t len, int64_t ts_ns);

/* Bytes as they arrive (any split): each complete line is fed with ts_ns; a partial line is kept
 * until its '\n' (or agent_parser_finish). data borrowed for the call. Returns as _feed, or
 * PTB_ENOMEM. */
int agent_parser_write(agent_parser *p, const void *data, size_t n, int64_t ts_ns);

/* The end of the input: feeds a last line without '\n', settles an undecided format, emits what
 * is pending (a usage, streamed text) and the gaps for unpaired calls and results and broken
 * lines past AGENT_GAPS_MAX. Further input is refused (PTB_EINVAL). */
int agent_parser_finish(agent_parser *p, int64_t ts_ns);

/* A line the caller could not feed (a read error, a line it cut): a gap event with reason (a
 * static or borrowed string, e.g. "read_error"), bytes lost and detail (may be NULL). */
int agent_parser_skip(agent_parser *p, const char *reason, uint64_t bytes, const char *detail,
                      int64_t ts_ns);

/* An agent.message the caller knows itself, not read from the stream (the prompt it gave the
 * agent: role "user"): text (len bytes, borrowed for the call) redacted and, when long, stored
 * as a blob like every text of the stream; ts_ns as for _feed. An empty text makes no event.
 * Returns 0, or the error of the store or sink. */
int agent_parser_message(agent_parser *p, const char *role, const char *text, size_t len,
                         int64_t ts_ns);

/* Counters so far. */
void agent_parser_stats(const agent_parser *p, agent_stats *out);

/* The format in use: AGENT_FORMAT_AUTO while it is not decided yet. */
agent_format agent_parser_format(const agent_parser *p);

/* The first unknown type names seen, ", "-separated ("" when none); borrowed, valid until the
 * next call on p. */
const char *agent_parser_unknown_names(const agent_parser *p);

/* The last error message (store or sink failure); borrowed, valid until the next call on p. */
const char *agent_parser_errmsg(const agent_parser *p);

/* Time of an ISO 8601 string "YYYY-MM-DDTHH:MM:SS[.frac][Z|+HH:MM|-HH:MM]" (a ' ' for the 'T'
 * is fine; no zone is UTC) in ns since 1970; 0 when it does not parse. s (len bytes, need not be
 * NUL-terminated) is borrowed for the call. */
int64_t agent_time_iso(const char *s, size_t len);

/* Free p; NULL is a no-op. Does not finish it: call agent_parser_finish first to get the gaps
 * and pending events. */
void agent_parser_free(agent_parser *p);

#endif
