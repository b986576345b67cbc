/* The `openai` backend of `ptb eval`: prompts sent to an OpenAI-compatible completions endpoint
 * (vLLM serving a real checkpoint, llama.cpp's server, OpenAI itself) over libcurl's multi
 * interface.
 *
 * Wire
 *   request:  POST {url}/completions, Content-Type: application/json,
 *             {"model": M, "prompt": P, "max_tokens": N, "temperature": 0}
 *             ("model" left out when the options give none: vLLM then uses the model it serves)
 *   answer:   choices[0].text of a 2xx reply whose body is JSON, at most OA_BODY_MAX bytes
 *
 * Event loop
 *   One complete() call runs on the calling thread with `concurrency` slots, each an easy handle
 *   that carries one item through its attempts. A slot is IDLE (takes the next item), RUNNING
 *   (its request is in the multi handle) or WAITING (backing off before the next attempt of its
 *   item). A slot that backs off keeps its place: a server that answers 429 or 503 sees fewer
 *   requests in flight, never more. Items finish in any order; slot->item says where the answer
 *   goes, so outs[i] always answers prompts[i].
 *
 * Retry policy (per item; `retries` retries after the first attempt)
 *   retried:     connection errors (refused, DNS, reset, empty reply), timeouts, HTTP 429, 5xx
 *   not retried: other HTTP statuses, TLS failures, replies that are not the expected JSON,
 *                replies over the body cap
 *   delay:       the reply's Retry-After (delta-seconds, capped at 30 s) when it has one; else
 *                0.5 s, 1 s, 2 s, ... capped at 8 s, plus up to 1/8 of it as jitter derived from
 *                the item's index and attempt (deterministic: the same run, the same schedule)
 *
 * Unreachable server
 *   When no attempt has ever reached the server (sent its request or got a status) and the first
 *   min(n, concurrency) items to finish all failed to connect, after their retries, complete()
 *   stops: it returns -ECONNREFUSED (PTB_EIO for DNS, TLS or a connect timeout) with "cannot
 *   reach <url>: <reason>" in eb, and leaves every outs[i] and errs[i] NULL. It does the same when
 *   all n items failed to connect. The caller reports the server instead of scoring n zeros.
 *
 * Secrets
 *   The API key goes only into the Authorization header. Reply bodies and messages are scrubbed
 *   of it before they are quoted (a server may echo headers), and URLs are shown without any
 *   user:password@. Redirects are not followed, so the header never goes to another host. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "eval_backend.h"

#define OA_BODY_MAX ((size_t)8 << 20) /* reply bytes kept; more fails the item */
#define OA_QUOTE_MAX 200              /* bytes of a reply quoted in a message */
#define OA_URL_MAX 2048
#define OA_KEY_MAX 1024
#define OA_MODEL_MAX 1024
#define OA_MAX_TOKENS_MAX ((size_t)1 << 24)
#define OA_CONCURRENCY_DEFAULT 8
#define OA_CONCURRENCY_MAX 256
#define OA_TIMEOUT_DEFAULT_S 60
#define OA_TIMEOUT_MAX_S 86400
#define OA_RETRIES_DEFAULT 3
#define OA_RETRIES_MAX 100
#define OA_CONNECT_TIMEOUT_MS 10000L
#define OA_BACKOFF_FIRST_MS 500
#define OA_BACKOFF_MAX_MS 8000
#define OA_RETRY_AFTER_MAX_S 30

typedef struct oa_backend {
    eval_backend base;
    char *url;   /* owned: {options->url}/completions */
    char *shown; /* owned: url without user:password@, for messages */
    char *model; /* owned; NULL: the field is left out */
    char *key;   /* owned; NULL: no Authorization header */
    int concurrency, timeout_s, retries;
} oa_backend;

enum { OA_IDLE, OA_RUNNING, OA_WAITING };

typedef struct oa_slot {
    CURL *easy; /* owned */
    int state;
    size_t item;    /* RUNNING, WAITING: index into prompts/outs/errs */
    int attempts;   /* attempts of this item finished so far */
    int64_t due_ms; /* WAITING: when the next attempt starts (oa_now_ms) */
    char *req;      /* owned: the JSON body of this item */
    char *body;     /* owned: the reply, body_len bytes and a NUL */
    size_t body_len, body_cap;
    int overflow;       /* the reply went over OA_BODY_MAX */
    int nomem;          /* growing body failed */
    long retry_after_s; /* Retry-After of the reply; -1: none */
    char cerr[CURL_ERROR_SIZE];
} oa_slot;

typedef struct oa_run {
    oa_backend *b;              /* borrowed */
    CURLM *multi;               /* owned */
    struct curl_slist *headers; /* owned */
    oa_slot *slots;             /* owned, nslots */
    size_t nslots;
    const char *const *prompts; /* borrowed, n */
    char **outs, **errs;        /* borrowed arrays of n; the strings go to the caller */
    size_t n, max_tokens, next, done;
    eval_progress_fn progress;
    void *arg;
    int reached;        /* some attempt reached the server */
    size_t unreached;   /* items that failed without ever connecting */
    int unreached_code; /* code to return when the server is unreachable */
    char unreached_why[CURL_ERROR_SIZE + 64];
    int nomem;
} oa_run;

static pthread_once_t oa_once = PTHREAD_ONCE_INIT;
static CURLcode oa_global_rc = CURLE_FAILED_INIT;

static void oa_global_init(void)
{
    oa_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int64_t oa_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Replace each copy of key in p[0..len) by up to three '*'; returns the new length. */
static size_t oa_scrub(char *p, size_t len, const char *key /* borrowed, may be NULL */)
{
    size_t klen = key ? strlen(key) : 0, at = 0;
    if (klen == 0 || !p)
        return len;
    size_t rlen = klen < 3 ? klen : 3;
    char *hit;
    while (at < len && (hit = memmem(p + at, len - at, key, klen))) {
        size_t h = (size_t)(hit - p);
        memset(hit, '*', rlen);
        memmove(hit + rlen, hit + klen, len - h - klen);
        len -= klen - rlen;
        at = h + rlen;
    }
    return len;
}

/* The start of a reply, printable: at most OA_QUOTE_MAX bytes, control and non-ASCII bytes as
 * '?', "..." when cut. Returns q (or a static string for an empty body). */
static const char *oa_quote(const char *p /* borrowed */, size_t len, char q[OA_QUOTE_MAX + 4])
{
    if (len == 0)
        return "(empty body)";
    size_t i, k = 0;
    for (i = 0; i < len && k < OA_QUOTE_MAX; i++) {
        unsigned char c = (unsigned char)p[i];
        q[k++] = c >= 0x20 && c < 0x7f                   ? (char)c
                 : (c == '\n' || c == '\r' || c == '\t') ? ' '
                                                         : '?';
    }
    if (i < len) {
        memcpy(q + k, "...", 3);
        k += 3;
    }
    q[k] = '\0';
    return q;
}

/* ---- one item ------------------------------------------------------------------------------- */

static void oa_item_finish(oa_run *r, oa_slot *s, char *answer /* owned, to outs */,
                           char *err /* owned, to errs */)
{
    r->outs[s->item] = answer;
    r->errs[s->item] = err;
    free(s->req);
    s->req = NULL;
    s->state = OA_IDLE;
    r->done++;
    if (r->progress)
        r->progress(r->arg, r->done, r->n);
}

__attribute__((format(printf, 3, 4))) static void oa_item_failf(oa_run *r, oa_slot *s,
                                                                const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (len < 0) {
        msg = NULL;
        r->nomem = 1; /* complete() gives up with PTB_ENOMEM */
    } else {
        msg[oa_scrub(msg, (size_t)len, r->b->key)] = '\0';
    }
    oa_item_finish(r, s, NULL, msg);
}

static const char *oa_plural(int k)
{
    return k == 1 ? "" : "s";
}

/* A 2xx reply: choices[0].text, or the item fails quoting the body. */
static void oa_reply_parse(oa_run *r, oa_slot *s, long status)
{
    char q[OA_QUOTE_MAX + 4];
    json_error_t je;
    json_t *root = json_loadb(s->body, s->body_len, 0, &je);
    if (!root) {
        oa_item_failf(r, s, "HTTP %ld reply is not JSON (%s): %s", status, je.text,
                      oa_quote(s->body, s->body_len, q));
        return;
    }
    json_t *text = json_object_get(json_array_get(json_object_get(root, "choices"), 0), "text");
    if (!json_is_string(text)) {
        json_decref(root);
        oa_item_failf(r, s, "HTTP %ld reply has no choices[0].text: %s", status,
                      oa_quote(s->body, s->body_len, q));
        return;
    }
    char *answer = strdup(json_string_value(text));
    json_decref(root);
    if (!answer) {
        r->nomem = 1;
        return;
    }
    oa_item_finish(r, s, answer, NULL);
}

/* Delay before attempt `attempts + 1` of item. */
static int64_t oa_backoff_ms(size_t item, int attempts, long retry_after_s)
{
    if (retry_after_s >= 0)
        return (int64_t)(retry_after_s < OA_RETRY_AFTER_MAX_S ? retry_after_s
                                                              : OA_RETRY_AFTER_MAX_S) *
               1000;
    int shift = attempts - 1 < 5 ? attempts - 1 : 5;
    int64_t d = (int64_t)OA_BACKOFF_FIRST_MS << shift;
    if (d > OA_BACKOFF_MAX_MS)
        d = OA_BACKOFF_MAX_MS;
    uint32_t h = (uint32_t)item * 2654435761u ^ (uint32_t)attempts * 40503u;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    return d + (int64_t)(h % (uint32_t)(d / 8 + 1));
}

static void oa_item_retry(oa_run *r, oa_slot *s)
{
    s->state = OA_WAITING;
    s->due_ms = oa_now_ms() + oa_backoff_ms(s->item, s->attempts, s->retry_after_s);
}

/* Curl errors that mean "the server was not reached". */
static int oa_is_connect_error(CURLcode rc)
{
    return rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
           rc == CURLE_COULDNT_RESOLVE_PROXY || rc == CURLE_SSL_CONNECT_ERROR ||
           rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_OPERATION_TIMEDOUT;
}

/* A transfer failed before a status came back (rc != CURLE_OK, not the body cap). */
static void oa_transport_failed(oa_run *r, oa_slot *s, CURLcode rc, int sent)
{
    int conn = !sent && oa_is_connect_error(rc);
    int retryable = rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_COULDNT_CONNECT ||
                    rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY ||
                    rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR || rc == CURLE_GOT_NOTHING ||
                    rc == CURLE_PARTIAL_FILE || rc == CURLE_HTTP2 || rc == CURLE_HTTP2_STREAM;
    if (retryable && s->attempts <= r->b->retries) {
        oa_item_retry(r, s);
        return;
    }
    const char *why = s->cerr[0] ? s->cerr : curl_easy_strerror(rc);
    long oserr = 0;
    curl_easy_getinfo(s->easy, CURLINFO_OS_ERRNO, &oserr);
    if (conn) {
        r->unreached++;
        r->unreached_code =
            rc == CURLE_COULDNT_CONNECT && oserr == ECONNREFUSED ? -ECONNREFUSED : PTB_EIO;
        snprintf(r->unreached_why, sizeof r->unreached_why, "%s (%d attempt%s)", why, s->attempts,
                 oa_plural(s->attempts));
    }
    if (rc == CURLE_OPERATION_TIMEDOUT && sent)
        oa_item_failf(r, s, "timeout after %d s (%d attempt%s)", r->b->timeout_s, s->attempts,
                      oa_plural(s->attempts));
    else if (rc == CURLE_COULDNT_CONNECT && oserr == ECONNREFUSED)
        oa_item_failf(r, s, "connection refused: %s (%d attempt%s)", r->b->shown, s->attempts,
                      oa_plural(s->attempts));
    else
        oa_item_failf(r, s, "%s: %s: %s (%d attempt%s)", r->b->shown, curl_easy_strerror(rc), why,
                      s->attempts, oa_plural(s->attempts));
}

/* One attempt of slot s finished with rc: the item succeeds, fails, or waits for a retry. */
static void oa_attempt_done(oa_run *r, oa_slot *s, CURLcode rc)
{
    long status = 0, req_size = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(s->easy, CURLINFO_REQUEST_SIZE, &req_size); /* 0: never connected */
    int reached = status > 0 || req_size > 0;
    if (reached)
        r->reached = 1;
    s->attempts++;
    if (s->nomem) {
        r->nomem = 1;
        return;
    }
    s->body_len = oa_scrub(s->body, s->body_len, r->b->key);
    if (s->body)
        s->body[s->body_len] = '\0';
    if (s->overflow) {
        oa_item_failf(r, s, "HTTP %ld reply over the %zu MiB cap", status, OA_BODY_MAX >> 20);
        return;
    }
    if (rc != CURLE_OK) {
        oa_transport_failed(r, s, rc, reached);
        return;
    }
    if (status >= 200 && status < 300) {
        oa_reply_parse(r, s, status);
        return;
    }
    char q[OA_QUOTE_MAX + 4];
    if (status == 429 || status >= 500) {
        if (s->attempts <= r->b->retries) {
            oa_item_retry(r, s);
            return;
        }
        oa_item_failf(r, s, "HTTP %ld after %d attempt%s: %s", status, s->attempts,
                      oa_plural(s->attempts), oa_quote(s->body, s->body_len, q));
        return;
    }
    oa_item_failf(r, s, "HTTP %ld: %s", status, oa_quote(s->body, s->body_len, q));
}

/* ---- libcurl callbacks ---------------------------------------------------------------------- */

static size_t oa_on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    oa_slot *s = ud;
    size_t len = size * nmemb; /* size is 1 (libcurl's contract) */
    if (len > OA_BODY_MAX - s->body_len) {
        s->overflow = 1;
        return 0; /* CURLE_WRITE_ERROR ends the transfer */
    }
    if (s->body_len + len + 1 > s->body_cap) {
        size_t cap = s->body_cap ? s->body_cap : 4096;
        while (cap < s->body_len + len + 1)
            cap *= 2;
        if (cap > OA_BODY_MAX + 1)
            cap = OA_BODY_MAX + 1;
        char *nb = realloc(s->body, cap);
        if (!nb) {
            s->nomem = 1;
            return 0;
        }
        s->body = nb;
        s->body_cap = cap;
    }
    memcpy(s->body + s->body_len, data, len);
    s->body_len += len;
    s->body[s->body_len] = '\0';
    return len;
}

/* Retry-After in delta-seconds; the HTTP-date form is ignored (the default backoff applies). */
static size_t oa_on_header(char *buf, size_t size, size_t nitems, void *ud)
{
    oa_slot *s = ud;
    size_t len = size * nitems;
    static const char name[] = "retry-after:";
    if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        s->retry_after_s = -1; /* a new response (after a 100 Continue): its headers count */
    } else if (len > sizeof name - 1 && strncasecmp(buf, name, sizeof name - 1) == 0) {
        size_t i = sizeof name - 1;
        while (i < len && (buf[i] == ' ' || buf[i] == '\t'))
            i++;
        long v = 0;
        size_t digits = 0;
        while (i < len && buf[i] >= '0' && buf[i] <= '9' && digits < 9) {
            v = v * 10 + (buf[i++] - '0');
            digits++;
        }
        while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
            i++;
        if (digits > 0 && i == len)
            s->retry_after_s = v;
    }
    return len;
}

/* ---- the run ------------------------------------------------------------------------------- */

static int oa_slot_init(oa_run *r, oa_slot *s)
{
    CURL *e = curl_easy_init();
    if (!e)
        return PTB_ENOMEM;
    s->easy = e;
    s->retry_after_s = -1;
    const oa_backend *b = r->b;
    CURLcode c = CURLE_OK;
    c |= curl_easy_setopt(e, CURLOPT_URL, b->url);
    c |= curl_easy_setopt(e, CURLOPT_POST, 1L);
    c |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    c |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, oa_on_body);
    c |= curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)s);
    c |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, oa_on_header);
    c |= curl_easy_setopt(e, CURLOPT_HEADERDATA, (void *)s);
    c |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->cerr);
    c |= curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)s);
    c |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)b->timeout_s * 1000L);
    long ct = (long)b->timeout_s * 1000L;
    c |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                          ct < OA_CONNECT_TIMEOUT_MS ? ct : OA_CONNECT_TIMEOUT_MS);
    c |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    c |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    c |= curl_easy_setopt(e, CURLOPT_USERAGENT, "ptb-eval/" PTB_VERSION);
#if LIBCURL_VERSION_NUM >= 0x075500
    c |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    c |= curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    return c == CURLE_OK ? 0 : PTB_EIO;
}

/* The JSON body for prompt, or NULL: *bad = 1 when the prompt is not UTF-8, else ENOMEM. */
static char *oa_request_json(const oa_backend *b, const char *prompt, size_t max_tokens, int *bad)
{
    *bad = 0;
    json_t *p = json_string(prompt);
    if (!p) {
        json_t *raw = json_string_nocheck(prompt); /* succeeds: the prompt is not UTF-8 */
        *bad = raw != NULL;
        json_decref(raw);
        return NULL;
    }
    json_t *o = json_object();
    if (!o) {
        json_decref(p);
        return NULL;
    }
    int err = 0; /* json_object_set_new takes the value even when it fails */
    if (b->model)
        err |= json_object_set_new(o, "model", json_string(b->model));
    err |= json_object_set_new(o, "prompt", p);
    err |= json_object_set_new(o, "max_tokens", json_integer((json_int_t)max_tokens));
    err |= json_object_set_new(o, "temperature", json_integer(0));
    char *out = err ? NULL : json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return out;
}

static int oa_slot_start(oa_run *r, oa_slot *s)
{
    s->body_len = 0;
    s->overflow = 0;
    s->retry_after_s = -1;
    s->cerr[0] = '\0';
    CURLcode c = curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->req);
    c |= curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(s->req));
    if (c != CURLE_OK || curl_multi_add_handle(r->multi, s->easy) != CURLM_OK)
        return PTB_EIO;
    s->state = OA_RUNNING;
    return 0;
}

/* Give idle slot s the next item and start it; an item whose prompt cannot be sent fails. */
static int oa_slot_take(oa_run *r, oa_slot *s)
{
    s->item = r->next++;
    s->attempts = 0;
    int bad = 0;
    s->req = oa_request_json(r->b, r->prompts[s->item], r->max_tokens, &bad);
    if (!s->req) {
        if (!bad)
            return PTB_ENOMEM;
        oa_item_failf(r, s, "prompt is not valid UTF-8: not sent");
        return r->nomem ? PTB_ENOMEM : 0;
    }
    return oa_slot_start(r, s);
}

static void oa_run_fini(oa_run *r)
{
    for (size_t k = 0; r->slots && k < r->nslots; k++) {
        oa_slot *s = &r->slots[k];
        if (s->state == OA_RUNNING)
            curl_multi_remove_handle(r->multi, s->easy);
        if (s->easy)
            curl_easy_cleanup(s->easy);
        free(s->req);
        free(s->body);
    }
    free(r->slots);
    if (r->multi)
        curl_multi_cleanup(r->multi);
    curl_slist_free_all(r->headers);
}

static int oa_run_init(oa_run *r, ptb_errbuf *eb)
{
    const oa_backend *b = r->b;
    r->multi = curl_multi_init();
    /* curl_slist_append returns the head of the list, or NULL leaving the list as it was */
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    r->headers = h;
    if (h)
        h = curl_slist_append(r->headers, "Expect:"); /* no 100-continue round trip */
    if (h && b->key) {
        char *auth = NULL;
        if (asprintf(&auth, "Authorization: Bearer %s", b->key) < 0)
            h = NULL;
        else
            h = curl_slist_append(r->headers, auth);
        if (auth) { /* the key does not outlive its use in memory we own */
            explicit_bzero(auth, strlen(auth));
            free(auth);
        }
    }
    r->nslots = r->n < (size_t)b->concurrency ? r->n : (size_t)b->concurrency;
    r->slots = calloc(r->nslots, sizeof *r->slots);
    if (!r->multi || !h || !r->slots)
        return ptb_errf(eb, PTB_ENOMEM, "eval openai: out of memory");
    for (size_t k = 0; k < r->nslots; k++) {
        int rc = oa_slot_init(r, &r->slots[k]);
        if (rc < 0)
            return ptb_errf(eb, rc, "eval openai: cannot set up a curl handle");
    }
    return 0;
}

static int oa_unreachable(oa_run *r, ptb_errbuf *eb)
{
    return ptb_errf(eb, r->unreached_code, "cannot reach %s: %s", r->b->shown, r->unreached_why);
}

static int oa_run_loop(oa_run *r, ptb_errbuf *eb)
{
    size_t first = r->nslots; /* this many failures to connect, nothing reached: unreachable */
    while (r->done < r->n) {
        int64_t now = oa_now_ms(), wait_ms = 1000;
        for (size_t k = 0; k < r->nslots; k++) {
            oa_slot *s = &r->slots[k];
            int rc = 0;
            if (s->state == OA_IDLE && r->next < r->n)
                rc = oa_slot_take(r, s);
            else if (s->state == OA_WAITING && s->due_ms <= now)
                rc = oa_slot_start(r, s);
            if (rc < 0)
                return ptb_errf(eb, rc, "eval openai: cannot start a request: %s",
                                ptb_strerror(rc));
            if (s->state == OA_WAITING && s->due_ms - now < wait_ms)
                wait_ms = s->due_ms - now;
            if (s->state == OA_IDLE && r->next < r->n)
                wait_ms = 0; /* its item failed before it was sent: take another now */
        }
        int running = 0;
        CURLMcode mc = curl_multi_perform(r->multi, &running);
        if (mc != CURLM_OK)
            return ptb_errf(eb, PTB_EIO, "eval openai: curl: %s", curl_multi_strerror(mc));
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(r->multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            CURL *e = m->easy_handle;
            CURLcode res = m->data.result; /* m is invalid after remove_handle */
            char *p = NULL;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, &p);
            oa_slot *s = (oa_slot *)(void *)p;
            curl_multi_remove_handle(r->multi, e);
            s->state = OA_IDLE;
            oa_attempt_done(r, s, res);
            if (r->nomem)
                return ptb_errf(eb, PTB_ENOMEM, "eval openai: out of memory");
            if (!r->reached && r->unreached >= first)
                return oa_unreachable(r, eb);
            wait_ms = 0; /* refill or schedule the slot at the top of the loop */
        }
        if (r->done >= r->n)
            break;
        if (wait_ms > 0) {
            mc = curl_multi_poll(r->multi, NULL, 0, (int)wait_ms, NULL);
            if (mc != CURLM_OK)
                return ptb_errf(eb, PTB_EIO, "eval openai: curl: %s", curl_multi_strerror(mc));
        }
    }
    if (r->unreached == r->n)
        return oa_unreachable(r, eb);
    return 0;
}

static int oa_complete(eval_backend *base, const char *const *prompts, size_t n, size_t max_tokens,
                       char **outs, char **errs, eval_progress_fn progress, void *arg,
                       ptb_errbuf *eb)
{
    oa_backend *b = (oa_backend *)base;
    if (n > 0 && (!prompts || !outs || !errs))
        return ptb_errf(eb, PTB_EINVAL, "eval openai: NULL prompts, outs or errs");
    if (max_tokens < 1 || max_tokens > OA_MAX_TOKENS_MAX)
        return ptb_errf(eb, PTB_EINVAL, "eval openai: max_tokens %zu not in 1..%zu", max_tokens,
                        OA_MAX_TOKENS_MAX);
    for (size_t i = 0; i < n; i++) {
        if (!prompts[i])
            return ptb_errf(eb, PTB_EINVAL, "eval openai: prompt %zu is NULL", i);
        outs[i] = errs[i] = NULL;
    }
    if (n == 0)
        return 0;
    oa_run r = {.b = b,
                .prompts = prompts,
                .n = n,
                .max_tokens = max_tokens,
                .outs = outs,
                .errs = errs,
                .progress = progress,
                .arg = arg,
                .unreached_code = PTB_EIO};
    int rc = oa_run_init(&r, eb);
    if (rc == 0)
        rc = oa_run_loop(&r, eb);
    oa_run_fini(&r);
    if (rc < 0)
        for (size_t i = 0; i < n; i++) {
            free(outs[i]);
            free(errs[i]);
            outs[i] = errs[i] = NULL;
        }
    return rc;
}

/* ---- the backend ---------------------------------------------------------------------------- */

static void oa_free(eval_backend *base)
{
    oa_backend *b = (oa_backend *)base;
    if (!b)
        return;
    if (b->key) {
        explicit_bzero(b->key, strlen(b->key));
        free(b->key);
    }
    free(b->url);
    free(b->shown);
    free(b->model);
    free(b);
}

/* url without a user:password@ in its authority; caller frees. */
static char *oa_url_shown(const char *url /* borrowed */)
{
    const char *auth = strstr(url, "://") + 3; /* checked by the caller */
    size_t alen = strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *p = auth; p < auth + alen; p++)
        if (*p == '@')
            at = p;
    if (!at)
        return strdup(url);
    char *out = NULL;
    if (asprintf(&out, "%.*s%s", (int)(auth - url), url, at + 1) < 0)
        return NULL;
    return out;
}

int eval_backend_openai(const eval_openai_options *o, eval_backend **out, ptb_errbuf *eb)
{
    if (!out)
        return ptb_errf(eb, PTB_EINVAL, "eval openai: NULL out");
    *out = NULL;
    if (!o || !o->url)
        return ptb_errf(eb, PTB_EINVAL, "eval openai: no URL");
    const char *u = o->url;
    size_t ulen = strnlen(u, OA_URL_MAX + 1);
    size_t scheme = strncasecmp(u, "http://", 7) == 0    ? 7
                    : strncasecmp(u, "https://", 8) == 0 ? 8
                                                         : 0;
    if (scheme == 0)
        return ptb_errf(eb, PTB_EINVAL, "eval openai: the URL must start with http:// or https://");
    if (ulen > OA_URL_MAX)
        return ptb_errf(eb, PTB_EINVAL, "eval openai: URL longer than %d bytes", OA_URL_MAX);
    for (size_t i = 0; i < ulen; i++)
        if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f)
            return ptb_errf(eb, PTB_EINVAL, "eval openai: URL has a space or control character");
    if (u[scheme] == '\0' || strchr("/?#", u[scheme]))
        return ptb_errf(eb, PTB_EINVAL, "eval openai: URL has no host");
    int conc = o->concurrency == 0 ? OA_CONCURRENCY_DEFAULT : o->concurrency;
    if (conc < 1 || conc > OA_CONCURRENCY_MAX)
        return ptb_errf(eb, PTB_EINVAL, "eval openai: concurrency %d not in 1..%d", o->concurrency,
                        OA_CONCURRENCY_MAX);
    int tmo = o->timeout_s == 0 ? OA_TIMEOUT_DEFAULT_S : o->timeout_s;
    if (tmo < 1 || tmo > OA_TIMEOUT_MAX_S)
        return ptb_errf(eb, PTB_EINVAL, "eval openai: timeout %d s not in 1..%d", o->timeout_s,
                        OA_TIMEOUT_MAX_S);
    int retries = o->retries < 0 ? OA_RETRIES_DEFAULT : o->retries;
    if (retries > OA_RETRIES_MAX)
        return ptb_errf(eb, PTB_EINVAL, "eval openai: retries %d over %d", retries, OA_RETRIES_MAX);
    const char *key = o->api_key && o->api_key[0] ? o->api_key : NULL;
    if (key) {
        size_t klen = strnlen(key, OA_KEY_MAX + 1);
        if (klen > OA_KEY_MAX)
            return ptb_errf(eb, PTB_EINVAL, "eval openai: API key longer than %d bytes",
                            OA_KEY_MAX);
        for (size_t i = 0; i < klen; i++) /* printable ASCII: no header injection */
            if ((unsigned char)key[i] <= 0x20 || (unsigned char)key[i] >= 0x7f)
                return ptb_errf(eb, PTB_EINVAL,
                                "eval openai: API key has a space or control character");
    }
    if (o->model) {
        json_t *m = json_string(o->model);
        int ok = m && strlen(o->model) <= OA_MODEL_MAX;
        json_decref(m);
        if (!ok)
            return ptb_errf(eb, PTB_EINVAL,
                            "eval openai: model name not UTF-8 or longer than %d bytes",
                            OA_MODEL_MAX);
    }
    pthread_once(&oa_once, oa_global_init);
    if (oa_global_rc != CURLE_OK)
        return ptb_errf(eb, PTB_EIO, "eval openai: curl_global_init: %s",
                        curl_easy_strerror(oa_global_rc));

    oa_backend *b = calloc(1, sizeof *b);
    if (!b)
        return ptb_errf(eb, PTB_ENOMEM, "eval openai: out of memory");
    b->base.name = "openai";
    b->base.complete = oa_complete;
    b->base.free = oa_free;
    b->concurrency = conc;
    b->timeout_s = tmo;
    b->retries = retries;
    size_t blen = ulen;
    while (blen > scheme && u[blen - 1] == '/')
        blen--;
    int bad = asprintf(&b->url, "%.*s/completions", (int)blen, u) < 0;
    if (bad)
        b->url = NULL;
    b->shown = b->url ? oa_url_shown(b->url) : NULL;
    b->model = o->model ? strdup(o->model) : NULL;
    b->key = key ? strdup(key) : NULL;
    if (bad || !b->shown || (o->model && !b->model) || (key && !b->key)) {
        oa_free(&b->base);
        return ptb_errf(eb, PTB_ENOMEM, "eval openai: out of memory");
    }
    *out = &b->base;
    return 0;
}
