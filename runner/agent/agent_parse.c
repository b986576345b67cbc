/* The agent parser: lines in, events out (agent_parse.h). This file owns what every format
 * shares: splitting bytes into lines, the JSON parse of a line and the gap for a broken one,
 * format detection, pairing tool calls with results by id, and making the events. The backends
 * (agent_<format>.c) only map their line types onto agent_call/agent_result/agent_message/
 * agent_usage (agent_int.h).
 *
 * Pairing: call ids live in an open-addressing hash table (FNV-1a, linear probing, load <= 1/2),
 * each OPEN until its result comes, then DONE. It grows by doubling up to AGENT_CALLS_MAX ids;
 * calls past that are counted (untracked) and their results count as orphans. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"

enum { CALL_FREE = 0, CALL_OPEN = 1, CALL_DONE = 2 };

typedef struct agent_call_slot {
    char *id; /* owned */
    uint8_t state;
} agent_call_slot;

typedef struct agent_held {
    char *line; /* owned */
    size_t len;
    int64_t ts;
} agent_held;

struct agent_parser {
    agent_options o;
    const agent_backend *be; /* NULL while an auto format is undecided */
    void *state;             /* the backend's, be->state_size bytes */
    agent_stats st;
    int err; /* sticky store/sink error */
    bool finished;
    int64_t cur_ts;    /* the caller's time of the line being parsed */
    uint64_t cur_line; /* its number, from 1 */
    char errmsg[256];
    /* agent_parser_write: the partial line */
    char *buf;
    size_t len, cap;
    bool skipping; /* in a line over line_max: dropped up to its '\n' */
    uint64_t skip_bytes;
    /* auto: the lines held back and how they looked */
    agent_held held[AGENT_DETECT_LINES];
    size_t n_held;
    uint64_t held_first_line;
    unsigned votes[AGENT_FORMAT_COUNT];
    /* call ids */
    agent_call_slot *calls;
    size_t calls_cap, calls_n;
    /* what the finish reports */
    uint64_t broken_late, broken_late_bytes; /* broken lines past AGENT_GAPS_MAX */
    char orphan_ids[200];
    char unknown_names[256];
    unsigned n_unknown_names;
};

static const agent_backend *const agent_backends[AGENT_FORMAT_COUNT] = {
    [AGENT_FORMAT_CLAUDE] = &agent_claude_backend,
    [AGENT_FORMAT_CLAUDE_TRANSCRIPT] = &agent_claude_transcript_backend,
    [AGENT_FORMAT_CODEX] = &agent_codex_backend,
    [AGENT_FORMAT_GEMINI] = &agent_gemini_backend,
    [AGENT_FORMAT_OPENCODE] = &agent_opencode_backend,
};

static const char *const agent_format_names[AGENT_FORMAT_COUNT] = {
    "auto", "claude", "claude-transcript", "codex", "gemini", "opencode",
};

const char *agent_format_name(agent_format f)
{
    return (unsigned)f < AGENT_FORMAT_COUNT ? agent_format_names[f] : "?";
}

int agent_format_from_name(const char *name, agent_format *out)
{
    for (int f = 0; name && f < AGENT_FORMAT_COUNT; f++)
        if (strcmp(name, agent_format_names[f]) == 0) {
            *out = (agent_format)f;
            return 0;
        }
    return PTB_EINVAL;
}

void agent_options_default(agent_options *o)
{
    memset(o, 0, sizeof *o);
}

void *agent_state(agent_parser *p)
{
    return p->state;
}

/* ------------------------------------------------------------------ detection */

/* The format obj surely is (score 2), or AUTO; votes[] gets +1 for each format it may be. */
static agent_format agent_detect_obj(const json_t *obj, unsigned *votes)
{
    for (int f = 1; f < AGENT_FORMAT_COUNT; f++) {
        int score = agent_backends[f]->detect(obj);
        if (score == 2)
            return (agent_format)f;
        if (score == 1 && votes)
            votes[f]++;
    }
    return AGENT_FORMAT_AUTO;
}

agent_format agent_format_detect(const char *line, size_t len)
{
    json_t *j = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
    agent_format f = json_is_object(j) ? agent_detect_obj(j, NULL) : AGENT_FORMAT_AUTO;
    json_decref(j);
    return f;
}

static int agent_set_backend(agent_parser *p, agent_format f)
{
    p->be = agent_backends[f];
    if (p->be->state_size) {
        p->state = calloc(1, p->be->state_size);
        if (!p->state) {
            p->be = NULL;
            return PTB_ENOMEM;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ new / free */

int agent_parser_new(const agent_options *opt, agent_parser **out)
{
    *out = NULL;
    if (!opt || (!opt->s && !opt->sink) || (unsigned)opt->format >= AGENT_FORMAT_COUNT)
        return PTB_EINVAL;
    agent_parser *p = calloc(1, sizeof *p);
    if (!p)
        return PTB_ENOMEM;
    p->o = *opt;
    if (!p->o.line_max)
        p->o.line_max = AGENT_LINE_MAX;
    if (!p->o.inline_max)
        p->o.inline_max = AGENT_INLINE_MAX;
    if (opt->format != AGENT_FORMAT_AUTO && agent_set_backend(p, opt->format)) {
        free(p);
        return PTB_ENOMEM;
    }
    *out = p;
    return 0;
}

void agent_parser_free(agent_parser *p)
{
    if (!p)
        return;
    if (p->be && p->be->fini)
        p->be->fini(p);
    free(p->state);
    for (size_t i = 0; i < p->n_held; i++)
        free(p->held[i].line);
    for (size_t i = 0; i < p->calls_cap; i++)
        free(p->calls[i].id);
    free(p->calls);
    free(p->buf);
    free(p);
}

/* ------------------------------------------------------------------ emitting */

static int agent_emit(agent_parser *p, ptb_event *ev, int64_t ts)
{
    if (p->err)
        return p->err;
    ev->source = PTB__V1__SOURCE__SOURCE_AGENT;
    ev->ts_ns = ts ? ts : p->cur_ts;
    int rc;
    if (p->o.s) {
        rc = store_append(p->o.s, ev, 0, NULL);
        if (rc == PTB_ETOOBIG) { /* an inline_max the caller set too big: say so, go on */
            char d[96];
            snprintf(d, sizeof d, "line %llu: a %s event over the store's event_max",
                     (unsigned long long)p->cur_line, event_type_name(ev->body_case));
            return agent_gap(p, ts, "event_too_big", 1, 0, d);
        }
        if (rc)
            snprintf(p->errmsg, sizeof p->errmsg, "%s", store_errmsg(p->o.s));
    } else {
        rc = p->o.sink(p->o.sink_arg, ev);
        if (rc)
            snprintf(p->errmsg, sizeof p->errmsg, "the sink stopped: %s", ptb_strerror(rc));
    }
    if (rc) {
        p->err = rc;
        return rc;
    }
    p->st.events++;
    return 0;
}

int agent_gap(agent_parser *p, int64_t ts, const char *reason, uint64_t count, uint64_t bytes,
              const char *detail)
{
    Ptb__V1__Gap g = PTB__V1__GAP__INIT;
    g.origin = (char *)"agent";
    g.reason = (char *)reason;
    g.count = count;
    g.bytes = bytes;
    g.path = (char *)(p->o.name ? p->o.name : "");
    g.detail = (char *)(detail ? detail : "");
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.body_case = PTB__V1__EVENT__BODY_GAP;
    ev.gap = &g;
    int rc = agent_emit(p, &ev, ts);
    if (!rc)
        p->st.gaps++;
    return rc;
}

/* A text of an event: redacted, prefix inline, blob. */
static int agent_text_of(agent_parser *p, const char *kind, const char *id, const char *text,
                         size_t len, agent_text *t)
{
    char what[AGENT_ID_MAX + 64];
    snprintf(what, sizeof what, "agent %s %s", kind, id ? id : "");
    int rc = agent_text_make(p->o.s, p->o.inline_max, text, len, what, t);
    if (rc) {
        snprintf(p->errmsg, sizeof p->errmsg, "%s text: %s", kind, ptb_strerror(rc));
        p->err = rc;
        agent_text_free(t);
        return rc;
    }
    p->st.blobs += t->blob;
    p->st.redacted += t->redacted;
    return 0;
}

/* The blob field of a text: its SHA-256, or empty when it has no blob. */
static ProtobufCBinaryData agent_blob(agent_text *t)
{
    return t->blob ? (ProtobufCBinaryData){32, t->sha256} : (ProtobufCBinaryData){0, NULL};
}

/* Emit ev, whose text is t (freed here), and count it in *counter. */
static int agent_emit_text(agent_parser *p, ptb_event *ev, int64_t ts, agent_text *t,
                           uint64_t *counter)
{
    int rc = agent_emit(p, ev, ts);
    agent_text_free(t);
    if (!rc)
        (*counter)++;
    return rc;
}

/* A copy of s cut to max bytes (at a UTF-8 boundary) into buf (max + 1 bytes). */
static char *agent_cut(const char *s, size_t max, char *buf)
{
    size_t n = s ? strnlen(s, max + 1) : 0;
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    if (n)
        memcpy(buf, s, n);
    buf[n] = '\0';
    return buf;
}

static uint64_t agent_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* The slot of id (its own, or the free one where it would go); NULL when the table is empty. */
static agent_call_slot *agent_call_find(agent_parser *p, const char *id)
{
    if (!p->calls_cap)
        return NULL;
    size_t mask = p->calls_cap - 1;
    for (size_t i = agent_hash(id) & mask;; i = (i + 1) & mask)
        if (!p->calls[i].id || strcmp(p->calls[i].id, id) == 0)
            return &p->calls[i];
}

/* Room for one more id: false when the table is at AGENT_CALLS_MAX (or out of memory). */
static bool agent_call_room(agent_parser *p)
{
    if ((p->calls_n + 1) * 2 <= p->calls_cap)
        return true;
    size_t cap = p->calls_cap ? p->calls_cap * 2 : 256;
    if (p->calls_n >= AGENT_CALLS_MAX)
        return false;
    agent_call_slot *old = p->calls, *nw = calloc(cap, sizeof *nw);
    if (!nw)
        return false;
    size_t old_cap = p->calls_cap;
    p->calls = nw;
    p->calls_cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].id)
            *agent_call_find(p, old[i].id) = old[i];
    free(old);
    return true;
}

bool agent_call_seen(agent_parser *p, const char *id)
{
    char idb[AGENT_ID_MAX + 1];
    agent_cut(id, AGENT_ID_MAX, idb);
    agent_call_slot *sl = idb[0] ? agent_call_find(p, idb) : NULL;
    return sl && sl->id;
}

int agent_call(agent_parser *p, int64_t ts, const char *id, const char *name, const char *input,
               size_t input_len)
{
    char idb[AGENT_ID_MAX + 1], nameb[AGENT_NAME_MAX + 1];
    agent_cut(id, AGENT_ID_MAX, idb);
    if (idb[0]) {
        agent_call_slot *sl = agent_call_find(p, idb);
        if (sl && sl->id) {
            p->st.dup_calls++;
            return 0;
        }
        char *copy = agent_call_room(p) ? strdup(idb) : NULL;
        if (copy) {
            sl = agent_call_find(p, idb);
            sl->id = copy;
            sl->state = CALL_OPEN;
            p->calls_n++;
        } else {
            p->st.untracked++;
        }
    } else {
        p->st.calls_no_id++;
    }
    agent_text t;
    int rc = agent_text_of(p, "tool.call", idb, input, input_len, &t);
    if (rc)
        return rc;
    Ptb__V1__ToolCall tc = PTB__V1__TOOL_CALL__INIT;
    tc.call_id = idb;
    tc.name = agent_cut(name, AGENT_NAME_MAX, nameb);
    if (p->o.on_call && idb[0])
        p->o.on_call(p->o.procs_arg, idb, tc.name, input, ts);
    tc.input = t.inline_text;
    tc.input_blob = agent_blob(&t);
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.body_case = PTB__V1__EVENT__BODY_TOOL_CALL;
    ev.tool_call = &tc;
    return agent_emit_text(p, &ev, ts, &t, &p->st.calls);
}

int agent_call_json(agent_parser *p, int64_t ts, const char *id, const char *name,
                    const json_t *input)
{
    if (!input)
        return agent_call(p, ts, id, name, "{}", 2);
    size_t n = 0;
    char *s = agent_jdump(input, &n);
    if (!s) {
        p->err = PTB_ENOMEM;
        snprintf(p->errmsg, sizeof p->errmsg, "out of memory");
        return PTB_ENOMEM;
    }
    int rc = agent_call(p, ts, id, name, s, n);
    free(s);
    return rc;
}

int agent_result(agent_parser *p, int64_t ts, const char *id, bool is_error, const char *out,
                 size_t out_len)
{
    char idb[AGENT_ID_MAX + 1];
    agent_cut(id, AGENT_ID_MAX, idb);
    agent_call_slot *sl = idb[0] ? agent_call_find(p, idb) : NULL;
    if (sl && sl->id) {
        p->st.paired++;
        sl->state = CALL_DONE;
    } else {
        if (p->st.orphan_results == 0 ||
            strlen(p->orphan_ids) + strlen(idb) + 3 < sizeof p->orphan_ids) {
            size_t l = strlen(p->orphan_ids);
            snprintf(p->orphan_ids + l, sizeof p->orphan_ids - l, "%s%s", l ? ", " : "",
                     idb[0] ? idb : "(no id)");
        }
        p->st.orphan_results++;
    }
    agent_text t;
    int rc = agent_text_of(p, "tool.result", idb, out, out_len, &t);
    if (rc)
        return rc;
    Ptb__V1__ToolResult tr = PTB__V1__TOOL_RESULT__INIT;
    tr.call_id = idb;
    tr.is_error = is_error;
    tr.output = t.inline_text;
    tr.output_bytes = t.bytes;
    tr.output_blob = agent_blob(&t);
    uint64_t ids[AGENT_PROCS_MAX];
    if (p->o.call_procs && idb[0]) {
        tr.n_exec_ids = p->o.call_procs(p->o.procs_arg, idb, ts, ids, AGENT_PROCS_MAX);
        tr.exec_ids = ids;
    }
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.body_case = PTB__V1__EVENT__BODY_TOOL_RESULT;
    ev.tool_result = &tr;
    return agent_emit_text(p, &ev, ts, &t, &p->st.results);
}

int agent_message(agent_parser *p, int64_t ts, const char *role, const char *text, size_t len,
                  const char *model, const char *session)
{
    if (!text || !len)
        return 0;
    agent_text t;
    int rc = agent_text_of(p, "agent.message", role, text, len, &t);
    if (rc)
        return rc;
    char modelb[AGENT_NAME_MAX + 1], sessb[AGENT_ID_MAX + 1];
    Ptb__V1__AgentMessage m = PTB__V1__AGENT_MESSAGE__INIT;
    m.role = (char *)role;
    m.text = t.inline_text;
    m.model = agent_cut(model, AGENT_NAME_MAX, modelb);
    m.session_id = agent_cut(session, AGENT_ID_MAX, sessb);
    m.text_blob = agent_blob(&t);
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.body_case = PTB__V1__EVENT__BODY_AGENT_MESSAGE;
    ev.agent_message = &m;
    return agent_emit_text(p, &ev, ts, &t, &p->st.messages);
}

int agent_message_json(agent_parser *p, int64_t ts, const char *role, const json_t *v,
                       const char *model, const char *session)
{
    size_t n = 0;
    char *s = agent_jdump(v, &n);
    if (!s) {
        p->err = PTB_ENOMEM;
        return PTB_ENOMEM;
    }
    int rc = agent_message(p, ts, role, s, n, model, session);
    free(s);
    return rc;
}

int agent_usage(agent_parser *p, int64_t ts, const agent_usage_in *u)
{
    char modelb[AGENT_NAME_MAX + 1];
    Ptb__V1__AgentUsage au = PTB__V1__AGENT_USAGE__INIT;
    au.model = agent_cut(u->model, AGENT_NAME_MAX, modelb);
    au.input_tokens = u->input;
    au.output_tokens = u->output;
    au.cache_read_tokens = u->cache_read;
    au.cache_write_tokens = u->cache_write;
    au.cost_usd = u->cost_usd == u->cost_usd && u->cost_usd > 0 ? u->cost_usd : 0;
    au.session_total = u->total;
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.body_case = PTB__V1__EVENT__BODY_AGENT_USAGE;
    ev.agent_usage = &au;
    int rc = agent_emit(p, &ev, ts);
    if (!rc)
        p->st.usages++;
    return rc;
}

void agent_unknown(agent_parser *p, const char *what)
{
    p->st.unknown++;
    if (!what || !*what)
        what = "(no type)";
    if (p->n_unknown_names >= AGENT_UNKNOWN_NAMES)
        return;
    char cut[41];
    agent_cut(what, 40, cut);
    /* each name once */
    size_t l = strlen(p->unknown_names), cl = strlen(cut);
    for (const char *q = p->unknown_names; (q = strstr(q, cut)) != NULL; q += cl)
        if ((q == p->unknown_names || q[-1] == ' ') && (q[cl] == ',' || q[cl] == '\0'))
            return;
    if (l + cl + 3 >= sizeof p->unknown_names)
        return;
    snprintf(p->unknown_names + l, sizeof p->unknown_names - l, "%s%s", l ? ", " : "", cut);
    p->n_unknown_names++;
}

void agent_ignored(agent_parser *p)
{
    p->st.ignored++;
}

/* ------------------------------------------------------------------ lines */

/* A line that is not a JSON object: a gap (the first AGENT_GAPS_MAX), counted. */
static int agent_broken(agent_parser *p, size_t len, const json_error_t *je, bool not_object)
{
    p->st.broken++;
    if (p->st.broken > AGENT_GAPS_MAX) {
        p->broken_late++;
        p->broken_late_bytes += len;
        return 0;
    }
    bool cut = !not_object && json_error_code(je) == json_error_premature_end_of_input;
    char d[256];
    if (not_object)
        snprintf(d, sizeof d, "line %llu: JSON but not an object", (unsigned long long)p->cur_line);
    else
        snprintf(d, sizeof d, "line %llu, column %d: %s", (unsigned long long)p->cur_line,
                 je->column, je->text);
    return agent_gap(p, 0, cut ? "truncated_line" : "bad_line", 1, len, d);
}

/* Parse one non-blank line with the backend. */
static int agent_parse_line(agent_parser *p, const char *line, size_t len, int64_t ts)
{
    p->cur_ts = ts;
    json_error_t je;
    json_t *j = json_loadb(line, len, JSON_ALLOW_NUL, &je);
    if (!json_is_object(j)) {
        int rc = agent_broken(p, len, &je, j != NULL);
        json_decref(j);
        return rc;
    }
    int rc = p->be->line(p, j, ts);
    json_decref(j);
    return rc;
}

/* Auto: settle on the format most held lines looked like (Claude stream-json when none), and
 * parse the held lines with it. */
static int agent_settle(agent_parser *p, agent_format f)
{
    if (f == AGENT_FORMAT_AUTO) {
        f = AGENT_FORMAT_CLAUDE;
        for (int k = 1; k < AGENT_FORMAT_COUNT; k++)
            if (p->votes[k] > p->votes[f])
                f = (agent_format)k;
    }
    int rc = agent_set_backend(p, f);
    uint64_t line = p->cur_line;
    for (size_t i = 0; i < p->n_held; i++) {
        p->cur_line = p->held_first_line + i;
        if (!rc)
            rc = agent_parse_line(p, p->held[i].line, p->held[i].len, p->held[i].ts);
        free(p->held[i].line);
        p->held[i].line = NULL;
    }
    p->n_held = 0;
    p->cur_line = line;
    if (rc && !p->err)
        p->err = rc;
    return rc;
}

/* Auto, undecided: hold the line, and settle when it (or the count of held lines) decides. */
static int agent_hold(agent_parser *p, const char *line, size_t len, int64_t ts)
{
    char *copy = malloc(len + 1);
    if (!copy)
        return p->err = PTB_ENOMEM;
    memcpy(copy, line, len);
    copy[len] = '\0';
    if (p->n_held == 0)
        p->held_first_line = p->cur_line;
    p->held[p->n_held++] = (agent_held){copy, len, ts};
    json_t *j = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
    agent_format f = json_is_object(j) ? agent_detect_obj(j, p->votes) : AGENT_FORMAT_AUTO;
    json_decref(j);
    if (f != AGENT_FORMAT_AUTO || p->n_held == AGENT_DETECT_LINES)
        return agent_settle(p, f);
    return 0;
}

static bool agent_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    return true;
}

int agent_parser_feed(agent_parser *p, const char *line, size_t len, int64_t ts_ns)
{
    if (p->err)
        return p->err;
    if (p->finished)
        return PTB_EINVAL;
    p->st.lines++;
    p->cur_line = p->st.lines;
    if (agent_blank(line, len)) {
        p->st.blank++;
        return 0;
    }
    if (!p->be)
        return agent_hold(p, line, len, ts_ns);
    return agent_parse_line(p, line, len, ts_ns);
}

/* The end of a line over line_max: counted as a broken line. */
static int agent_too_long(agent_parser *p, int64_t ts)
{
    p->st.lines++;
    p->cur_line = p->st.lines;
    p->st.broken++;
    uint64_t bytes = p->skip_bytes;
    p->skipping = false;
    p->skip_bytes = 0;
    if (p->st.broken > AGENT_GAPS_MAX) {
        p->broken_late++;
        p->broken_late_bytes += bytes;
        return 0;
    }
    char d[128];
    snprintf(d, sizeof d, "line %llu: %llu bytes, over the limit of %zu",
             (unsigned long long)p->cur_line, (unsigned long long)bytes, p->o.line_max);
    return agent_gap(p, ts, "line_too_long", 1, bytes, d);
}

int agent_parser_write(agent_parser *p, const void *data, size_t n, int64_t ts_ns)
{
    if (p->err)
        return p->err;
    if (p->finished)
        return PTB_EINVAL;
    const char *d = data;
    while (n > 0) {
        const char *nl = memchr(d, '\n', n);
        size_t take = nl ? (size_t)(nl - d) : n;
        if (p->skipping || p->len + take > p->o.line_max) {
            if (!p->skipping) { /* the line goes over: drop what was kept of it */
                p->skipping = true;
                p->skip_bytes = p->len;
                p->len = 0;
            }
            p->skip_bytes += take;
        } else if (take) {
            if (p->len + take > p->cap) {
                size_t cap = p->cap ? p->cap : 4096;
                while (cap < p->len + take)
                    cap *= 2;
                if (cap > p->o.line_max)
                    cap = p->o.line_max;
                char *nb = realloc(p->buf, cap);
                if (!nb)
                    return p->err = PTB_ENOMEM;
                p->buf = nb;
                p->cap = cap;
            }
            memcpy(p->buf + p->len, d, take);
            p->len += take;
        }
        if (!nl)
            break;
        int rc;
        if (p->skipping) {
            rc = agent_too_long(p, ts_ns);
        } else {
            rc = agent_parser_feed(p, p->buf ? p->buf : "", p->len, ts_ns);
            p->len = 0;
        }
        if (rc)
            return rc;
        d = nl + 1;
        n -= take + 1;
    }
    return 0;
}

int agent_parser_skip(agent_parser *p, const char *reason, uint64_t bytes, const char *detail,
                      int64_t ts_ns)
{
    if (p->err)
        return p->err;
    return agent_gap(p, ts_ns, reason, 1, bytes, detail);
}

int agent_parser_message(agent_parser *p, const char *role, const char *text, size_t len,
                         int64_t ts_ns)
{
    if (p->err)
        return p->err;
    if (p->finished)
        return PTB_EINVAL;
    return agent_message(p, ts_ns, role, text, len, NULL, NULL);
}

/* The gap for the calls still open at the finish. */
static int agent_gap_unanswered(agent_parser *p, int64_t ts)
{
    char ids[200] = "";
    uint64_t n = 0;
    for (size_t i = 0; i < p->calls_cap; i++) {
        if (!p->calls[i].id || p->calls[i].state != CALL_OPEN)
            continue;
        size_t l = strlen(ids);
        if (l + strlen(p->calls[i].id) + 3 < sizeof ids)
            snprintf(ids + l, sizeof ids - l, "%s%s", l ? ", " : "", p->calls[i].id);
        n++;
    }
    p->st.unanswered = n;
    if (!n)
        return 0;
    char d[256];
    snprintf(d, sizeof d, "%llu tool calls without a result: %s", (unsigned long long)n, ids);
    return agent_gap(p, ts, "call_without_result", n, 0, d);
}

int agent_parser_finish(agent_parser *p, int64_t ts_ns)
{
    if (p->err)
        return p->err;
    if (p->finished)
        return PTB_EINVAL;
    int rc = 0;
    if (p->skipping)
        rc = agent_too_long(p, ts_ns);
    else if (p->len) /* a last line without its '\n' */
        rc = agent_parser_feed(p, p->buf, p->len, ts_ns);
    p->len = 0;
    if (!rc && !p->be)
        rc = agent_settle(p, AGENT_FORMAT_AUTO);
    p->finished = true;
    p->cur_ts = ts_ns;
    if (!rc && p->be && p->be->finish)
        rc = p->be->finish(p, ts_ns);
    if (!rc)
        rc = agent_gap_unanswered(p, ts_ns);
    if (!rc && p->st.orphan_results) {
        char d[256];
        snprintf(d, sizeof d, "%llu tool results without their call: %s",
                 (unsigned long long)p->st.orphan_results, p->orphan_ids);
        rc = agent_gap(p, ts_ns, "result_without_call", p->st.orphan_results, 0, d);
    }
    if (!rc && p->broken_late) {
        char d[128];
        snprintf(d, sizeof d, "%llu more broken lines after the first %d",
                 (unsigned long long)p->broken_late, AGENT_GAPS_MAX);
        rc = agent_gap(p, ts_ns, "bad_line", p->broken_late, p->broken_late_bytes, d);
    }
    return rc;
}

void agent_parser_stats(const agent_parser *p, agent_stats *out)
{
    *out = p->st;
}

agent_format agent_parser_format(const agent_parser *p)
{
    return p->be ? p->be->format : AGENT_FORMAT_AUTO;
}

const char *agent_parser_unknown_names(const agent_parser *p)
{
    return p->unknown_names;
}

const char *agent_parser_errmsg(const agent_parser *p)
{
    return p->errmsg;
}
