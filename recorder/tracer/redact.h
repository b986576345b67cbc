/* Secret redaction: what the tracer reads from a tracee (its environment, its argv) never enters
 * the store in clear (DESIGN.md, "Events"). A secret is replaced by a fingerprint: a provider
 * tag, a short prefix, the SHA-256 of the whole secret and its length. The hash lets a detector
 * match a known value (the runner's canaries) without the store holding it.
 *
 * What counts as a secret (the rules; false positives are accepted on purpose: a harmless value
 * fingerprinted costs a little forensic detail, a secret stored in clear cannot be taken back):
 *
 * 1. Key shapes (redact_provider): a token that has the exact shape of a provider's credential.
 *    Prefixes are case-sensitive; "body" is the run of characters after the prefix, taken from
 *    one set: B = [A-Za-z0-9_-], AN = [A-Za-z0-9], UN = [A-Z0-9], W = [A-Za-z0-9_],
 *    S = [A-Za-z0-9-].
 *      anthropic   sk-ant-  + >= 20 B        (sk-ant-api03-..., sk-ant-admin01-...)
 *      openrouter  sk-or-   + >= 20 B        (sk-or-v1-<64 hex>)
 *      openai      sk-      + >= 20 B        (sk-<48>, sk-proj-..., sk-svcacct-..., sk-admin-...;
 *                                             also DeepSeek-style sk-<32 hex>: same shape)
 *      hf          hf_      + >= 30 AN
 *      github      ghp_ gho_ ghu_ ghs_ ghr_ + >= 36 AN (36 today; GitHub says it may grow),
 *                  github_pat_ + >= 22 W
 *      aws         AKIA ASIA + exactly 16 UN (access key ids; secret access keys have no shape
 *                                             and are caught by name, rule 2)
 *      google      AIza + exactly 35 B (API keys), ya29. + >= 20 B (OAuth access tokens)
 *      slack       xoxa- xoxb- xoxp- xoxr- xoxs- + >= 10 S
 *      groq        gsk_ + >= 20 AN;   replicate  r8_ + >= 20 AN;   gitlab  glpat- + >= 20 B
 *      npm         npm_ + >= 36 AN;   stripe  sk_live_ rk_live_ + >= 24 AN
 *      xai         xai- + >= 20 AN;   perplexity  pplx- + >= 20 AN
 *      jwt         eyJ + >= 5 B, '.', eyJ + >= 5 B, '.', >= 0 B (the signature is empty for
 *                  alg "none", still a bearer credential)
 *    A prefix decides alone: "sk-ant-" with a short body is no key, not an "openai" one.
 *    In free text a shape is found inside a word too ("xsk-ant-...", "ghp_<36>_TOKEN"), except
 *    "sk-", which needs the byte before it not to be [A-Za-z0-9] because it ends ordinary words
 *    ("mask-rcnn-resnet50-fpn-coco" is no key). A fixed-length body is taken whatever follows
 *    ("AKIA<16>x" redacts the id, keeps "x"); as a whole token (redact_provider) "AKIA<17>" is
 *    no key. Where a secret ends, a new word starts, as it does in the output. Providers whose
 *    keys have no prefix (Together, Mistral, Cohere, W&B: bare hex or base62) are found by name
 *    only.
 *
 * 2. Secret names (redact_name_is_secret): the name is split into parts on '_', '-', '.' and
 *    compared without case. Secret when
 *      - a part is KEY APIKEY TOKEN SECRET PASSWORD PASSWD PASS PASSPHRASE CREDENTIAL
 *        CREDENTIALS CREDS AUTH AUTHORIZATION COOKIE SESSION PRIVATE, or
 *      - a part ends with TOKEN SECRET PASSWORD PASSWD APIKEY ACCESSKEY SECRETKEY PRIVATEKEY
 *        PASSPHRASE CREDENTIALS (PGPASSWORD, apiKey, accessToken), or
 *      - the name is SSHPASS or MYSQL_PWD (secrets under names the parts do not catch);
 *    but not when
 *      - the last part is FILE PATH DIR SOCK SOCKET: the value names where a secret lives, and
 *        that path is worth keeping (a read of it is a file.open event). This is why
 *        SSH_AUTH_SOCK is not secret: it is the agent's socket, the keys stay in the agent;
 *      - the name is GOOGLE_APPLICATION_CREDENTIALS (a path too), SESSION_MANAGER,
 *        DBUS_SESSION_BUS_ADDRESS, DESKTOP_SESSION, XDG_SESSION_*, or JOBSERVER_AUTH (make's
 *        --jobserver-auth=R,W in MAKEFLAGS): desktop and build plumbing, no credential;
 *      - TOKEN is a tokenizer word: after PAD EOS BOS UNK SEP CLS MASK MAX MIN NUM, or before
 *        ID IDS LEN LENGTH LIMIT COUNT BUDGET TYPE SIZE (PAD_TOKEN_ID, --max-token-length).
 *    So KEYBOARD, MONKEY, KEYTIMEOUT, TOKENIZERS_PARALLELISM, PWD are not secret. The well-known
 *    names (OPENAI_API_KEY, ANTHROPIC_API_KEY, HF_TOKEN, HUGGING_FACE_HUB_TOKEN, GITHUB_TOKEN,
 *    GH_TOKEN, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, WANDB_API_KEY, GOOGLE_API_KEY,
 *    GEMINI_API_KEY, ...) are all caught by the part rules; the unit test lists them.
 *
 * 3. Labelled values in text (redact_text, and inside environment values): a label is a name
 *    (of [A-Za-z0-9_.-], leading dashes allowed) that starts the text or follows whitespace or
 *    one of ' " ` { ( [ , ; & ? |, then optionally a closing quote, spaces, '=' or ':', spaces.
 *    When the name is secret by rule 2, its value is: the text up to the matching quote if it
 *    opens with ' or ", else up to whitespace or one of ' " ` & ; | , ) ] } < > (to the end of
 *    the line for a COOKIE). An HTTP auth scheme (Bearer, Basic, Token, Bot) before it is kept.
 *    This covers "Authorization: Bearer X", "x-api-key: X", "--api-key=X", "--token=X",
 *    "--password='X'", "HF_TOKEN=X cmd", "?token=X&", {"api_key": "X"}. A value that starts
 *    with '$' is a shell reference ("Bearer $TOKEN"), not a secret, and is kept: which variable
 *    was used is evidence (a literal password starting with '$' is missed by this rule).
 *
 * 4. URL passwords: scheme://user:PASSWORD@host (the last '@' of the authority; a password
 *    starting with '$' is kept, as in rule 3).
 *
 * A text is read once, left to right; secrets never overlap. Key shapes inside a label's name or
 * a URL's user are redacted as well as the value or password that follows.
 *
 * Fingerprint prefix: the first min(4, len/4) bytes of the value, each byte outside 0x21..0x7E
 * and each ':' '<' '>' written as '?'. Values shorter than 16 bytes show fewer characters, so
 * a short password is not mostly spelt out. Short values are still fingerprinted: a SHA-256 of
 * a short or guessable value can be found by brute force, so the hash protects long random keys,
 * not 6-character passwords; storing it is still better than the value.
 *
 * In text a secret becomes <secret:PROVIDER:PREFIX:SHA256HEX> (64 lower-case hex digits). The
 * provider is the key shape of the secret when it has one, else the context: "bearer", "basic",
 * "auth" (another scheme), "url", "generic" (a secret name, rule 2/3). Placeholders already in
 * the text are left alone, so redacting twice changes nothing.
 *
 * Threads: every function is reentrant; no global state. */
#ifndef PTB_REDACT_H
#define PTB_REDACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ptb/v1/event.pb-c.h"
#include "ptb_error.h"

#define REDACT_ENV_MAX_VARS 4096        /* entries parsed from one environment block */
#define REDACT_ENV_MAX_BYTES (1u << 20) /* bytes parsed from one environment block */
#define REDACT_TEXT_MAX (16u << 20)     /* largest input of redact_text */
#define REDACT_TEXT_OUT_MAX (64u << 20) /* largest output of redact_text (placeholders grow) */
#define REDACT_PLACEHOLDER_MAX 96       /* bytes of one placeholder, NUL included */

/* Provider tag of a value that is exactly one key shape (rule 1), else NULL. value need not be
 * NUL-terminated; borrowed for the call. The tag is static storage. */
const char *redact_provider(const char *value, size_t len);

/* Length of a placeholder "<secret:PROVIDER:PREFIX:SHA256HEX>" at s[0..n) (PROVIDER 1-15 of
 * [A-Za-z0-9_-], PREFIX 0-4 bytes, 64 lowercase hex digits, then '>'), 0 if there is none. */
size_t redact_placeholder_len(const char *s, size_t n);

/* Whether an environment variable (or option, or header) name holds a secret whatever its value
 * looks like (rule 2). name is NUL-terminated, borrowed for the call; NULL is not secret. */
bool redact_name_is_secret(const char *name);

/* A fingerprint and the storage its protobuf message points into. pb.provider, pb.prefix and
 * pb.sha256.data point into this struct: pass it by pointer; a copy's pb still points into the
 * original. Valid as long as the struct. */
typedef struct redact_fp {
    char provider[16];  /* NUL-terminated tag, cut to 15 bytes */
    char prefix[5];     /* NUL-terminated, see "Fingerprint prefix" above */
    uint8_t sha256[32]; /* SHA-256 of all len bytes of the value */
    uint64_t length;    /* len */
    Ptb__V1__Fingerprint pb;
} redact_fp;

/* Fill *out with the fingerprint of value (len bytes, need not be NUL-terminated, borrowed for
 * the call) under tag provider (NULL means "generic"). Returns 0, or PTB_ENOMEM when libcrypto
 * could not hash (it allocates); *out is then zeroed, never half filled. */
int redact_fingerprint(const char *provider, const char *value, size_t len, redact_fp *out);

/* Replace each invalid UTF-8 sequence of s (len bytes, borrowed) with U+FFFD (EF BF BD), one per
 * maximal invalid subpart as Unicode recommends (overlongs, surrogates, > U+10FFFF, stray
 * continuation bytes and truncated sequences are invalid; NUL is kept). Writes to out, which
 * must hold 3 * len bytes (the result is never longer), without a NUL; out NULL only measures.
 * Returns the length of the result. protobuf-c does not check that strings are UTF-8, but the
 * readers of other languages reject a message that is not. */
size_t redact_utf8_clean(const char *s, size_t len, char *out);

/* An environment, parsed and redacted, ready for ProcExec.env / ProcEnv.env:
 *   exec.n_env = e->n_env; exec.env = e->env;
 * Everything the pointers reach is owned by the redact_env (freed by redact_env_free); an event
 * that uses them must be appended (store_append copies) before that. */
typedef struct redact_env {
    Ptb__V1__EnvVar **env;  /* n_env pointers in block order; NULL when n_env is 0 */
    size_t n_env;           /* entries kept, duplicates included (the process sees them all) */
    size_t n_redacted;      /* entries whose value is a fingerprint */
    size_t truncated;       /* entries past the bounds, not parsed: the caller records a gap */
    size_t truncated_bytes; /* bytes of the block not parsed */
    /* private: the storage of the above */
    Ptb__V1__EnvVar *vars_;
    redact_fp *fps_;
    char *arena_;
} redact_env;

/* Parse an environment block as read from /proc/PID/environ: NAME=VALUE entries separated by
 * NUL bytes, the last one possibly without its NUL. The name is what precedes the first '=';
 * an entry without '=' is a name with an empty value; empty entries (two NULs in a row) carry
 * nothing and are skipped. Names and values are made valid UTF-8 (redact_utf8_clean); the
 * secret tests and the fingerprint use the original bytes.
 *
 * A value is replaced by a fingerprint (value "", redacted set) when it has a key shape as a
 * whole (rule 1, that provider), contains a secret anywhere (rules 1, 3, 4: "Bearer sk-ant-...",
 * "https://u:pw@host", "--token=X"; the provider of the first one found, the fingerprint of the
 * whole value: a canary inside "Bearer CANARY" is not matched by this hash; redact_text on the
 * value gives the canary's own), or its name is secret (rule 2, "generic"; empty and short
 * values included). A name that itself contains a secret (an entry without '=' that is a key)
 * is written as redact_text writes it.
 *
 * Bounds: at most REDACT_ENV_MAX_VARS entries and the entries that end within the first
 * REDACT_ENV_MAX_BYTES bytes are parsed; the rest is counted in truncated / truncated_bytes,
 * never silently dropped. If the caller's own read of the block was cut short, the last entry
 * may be partial: the caller knows and records it.
 *
 * block (len bytes; NULL when len is 0) is borrowed for the call. On success *out is owned by
 * the caller, who frees it with redact_env_free(). Errors: PTB_EINVAL, PTB_ENOMEM (*out NULL). */
int redact_env_block(const char *block, size_t len, redact_env **out);

/* Free e and everything it owns; NULL is a no-op. */
void redact_env_free(redact_env *e);

/* Redact free text (one argv string, a command line, a header): every secret found by rules 1,
 * 3 and 4 becomes <secret:PROVIDER:PREFIX:SHA256HEX>. Text without secrets comes back byte for
 * byte. s (len bytes, need not be NUL-terminated; NULL when len is 0) is borrowed for the call.
 * *out is malloc'd, NUL-terminated, owned by the caller (free()); *out_len (may be NULL) gets
 * its length without the NUL, *n_redacted (may be NULL) the number of placeholders written.
 * The output is not made UTF-8: for a protobuf string, clean it afterwards (redact_utf8_clean),
 * so that the hashes are of the original bytes.
 * Errors: PTB_EINVAL, PTB_ETOOBIG (len over REDACT_TEXT_MAX or the output over
 * REDACT_TEXT_OUT_MAX), PTB_ENOMEM; *out is NULL on error. */
int redact_text(const char *s, size_t len, char **out, size_t *out_len, unsigned *n_redacted);

#endif
