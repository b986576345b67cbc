/* Application-layer parsers: DNS, TLS ClientHello, HTTP/1.x (issue 4, "Decoding").
 *
 * Each is a pure function over one byte buffer: the payload of one UDP datagram, or a prefix of
 * one direction of a reassembled TCP stream. They allocate nothing that outlives the call, keep
 * no state, and are reentrant. The bytes come from the network, so nothing is trusted: every
 * length is checked against the buffer, every output is bounded, and what a bound cuts off is
 * counted (a *_dropped field), never dropped in silence.
 *
 * Results are written into a caller-provided struct that owns all of its text (fixed arrays,
 * NUL-terminated) and borrows nothing from the input, so the input may be freed at once. Text
 * taken from the wire is made printable ASCII (each byte outside 0x20..0x7E becomes '?'), so it
 * is valid UTF-8 for a protobuf string field as it is.
 *
 * Return codes, common to the three:
 *   0             the message was read whole;
 *   PTB_ENOTFOUND not this protocol, or not yet: need_more says the bytes so far are a valid
 *                 prefix and more of the stream is needed;
 *   PTB_ECORRUPT  malformed; reason says what, and what was read before the fault is kept;
 *   PTB_ETOOBIG   (TLS, HTTP) the message is over a bound below; partial results kept;
 *   PTB_EINVAL    a NULL out, or NULL data with len > 0.
 * reason is a static string (NULL on success); partial results are valid on every code except
 * PTB_EINVAL.
 *
 * Secrets (DESIGN.md, "Events"): HTTP credential headers are never copied; they become a
 * fingerprint (redact.h). Text that is kept (path, reason phrase, header names, Host, User-Agent,
 * Content-Type) goes through redact_text first, so a key in a query string ("?api_key=X") is a
 * placeholder, not the key. */
#ifndef NET_APP_H
#define NET_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "redact.h"

/* ---- DNS (RFC 1035; EDNS and DNSSEC records are counted, not decoded) ---------------------- */

#define NET_DNS_NAME_MAX 256 /* text of one name, NUL included: wire names are <= 255 bytes */
#define NET_DNS_DATA_MAX 256 /* text of one answer's data, NUL included (TXT string <= 255) */
#define NET_DNS_MAX_QUESTIONS 4
#define NET_DNS_MAX_ANSWERS 16
#define NET_DNS_MAX_JUMPS 16 /* compression pointers followed in one name */

typedef struct net_dns_question {
    char name[NET_DNS_NAME_MAX]; /* dotted, no trailing dot; "." for the root */
    uint16_t qtype, qclass;
} net_dns_question;

typedef struct net_dns_answer {
    char name[NET_DNS_NAME_MAX];
    uint16_t type, rclass;
    uint32_t ttl;
    /* A, AAAA: the address; CNAME, PTR, NS: the name; MX: "PREF name"; TXT: the first string.
     * Empty for other types (their rdata is skipped, only its length is checked). */
    char data[NET_DNS_DATA_MAX];
} net_dns_answer;

typedef struct net_dns {
    uint16_t id;
    uint16_t flags; /* the whole flags word */
    bool qr;        /* a response */
    uint8_t opcode; /* flags bits 11..14 */
    uint8_t rcode;  /* flags bits 0..3 (extended rcode from OPT not applied) */
    bool tc;        /* truncated by the server (retry over TCP) */
    uint16_t qdcount, ancount, nscount, arcount; /* as in the header */
    net_dns_question q[NET_DNS_MAX_QUESTIONS];
    size_t n_q;       /* questions kept */
    size_t q_dropped; /* read and valid but over NET_DNS_MAX_QUESTIONS */
    net_dns_answer an[NET_DNS_MAX_ANSWERS];
    size_t n_an;        /* answers kept */
    size_t an_dropped;  /* read and valid but over NET_DNS_MAX_ANSWERS */
    size_t consumed;    /* bytes of the buffer that made up the message (TCP: prefix included) */
    bool truncated;     /* the buffer ended before the message did (with PTB_ECORRUPT) */
    const char *reason; /* static; NULL when 0 is returned */
} net_dns;

/* Parse one DNS message from msg (len bytes, borrowed for the call). With tcp, the message is
 * preceded by its 2-byte big-endian length (RFC 7766); bytes after it are left alone (consumed
 * says where the next message starts). The header, questions and answer section are read;
 * authority and additional sections are only counted in the header fields.
 *
 * Names: compression pointers must point strictly before the start of the labels that
 * contained the previous jump (so every chain ends), at most NET_DNS_MAX_JUMPS of them; labels
 * are 1..63 bytes; the name's wire length (uncompressed) is <= 255. A '.' or a non-printable
 * byte inside a label is written as '?'.
 *
 * Returns 0 or PTB_ECORRUPT (reason; truncated set when the buffer simply ended, which in a
 * TCP stream means more bytes are needed), PTB_EINVAL. */
int net_dns_parse(const uint8_t *msg, size_t len, bool tcp, net_dns *out);

/* Mnemonic of a DNS type ("A", "AAAA", "CNAME", ..., "TYPE65" for others, as RFC 3597 writes
 * them) into buf (cap >= 12 always suffices). Returns buf. */
const char *net_dns_type_str(uint16_t type, char *buf, size_t cap);

/* ---- TLS ClientHello (RFC 8446 4.1.2; also TLS 1.0-1.2 hellos) --------------------------- */

#define NET_TLS_HELLO_MAX 16384  /* bytes of the handshake message reassembled from records */
#define NET_TLS_RECORD_MAX 18432 /* largest record length accepted (2^14 + 2048, RFC 5246) */
#define NET_TLS_HOST_MAX 256     /* SNI text, NUL included */
#define NET_TLS_ALPN_MAX 8       /* ALPN protocol ids kept */
#define NET_TLS_ALPN_LEN 256     /* one id's text, NUL included (ids are <= 255 bytes) */
#define NET_TLS_VERSIONS_MAX 16  /* supported_versions entries kept */

typedef struct net_tls {
    uint16_t record_version; /* of the first record (0x0301 from most clients) */
    uint16_t legacy_version; /* ClientHello.legacy_version (0x0303 for TLS 1.2 and 1.3) */
    bool has_sni;
    char sni[NET_TLS_HOST_MAX]; /* first host_name of server_name; other name types skipped */
    char alpn[NET_TLS_ALPN_MAX][NET_TLS_ALPN_LEN];
    size_t n_alpn, alpn_dropped;
    uint16_t versions[NET_TLS_VERSIONS_MAX]; /* supported_versions, GREASE values included */
    size_t n_versions, versions_dropped;
    size_t n_records;   /* records that carried the message */
    size_t consumed;    /* bytes of data up to the end of the last of those records */
    bool need_more;     /* with PTB_ENOTFOUND: a valid prefix of a ClientHello, read on */
    const char *reason; /* static; NULL when 0 is returned */
} net_tls;

/* Read the ClientHello at the start of a TLS stream from data (len bytes, borrowed for the
 * call): one or more consecutive handshake records whose fragments are joined, up to
 * NET_TLS_HELLO_MAX bytes of message. Returns 0; PTB_ENOTFOUND when the stream does not start
 * with a handshake record or the message is not a ClientHello (need_more false), or the bytes
 * end before the message does (need_more true); PTB_ECORRUPT on a malformed record or hello;
 * PTB_ETOOBIG for a hello over NET_TLS_HELLO_MAX; PTB_EINVAL. */
int net_tls_client_hello(const uint8_t *data, size_t len, net_tls *out);

/* ---- HTTP/1.x request and response heads (RFC 9112) ------------------------------------- */

#define NET_HTTP_HEAD_MAX 65536  /* bytes of start line + header block read */
#define NET_HTTP_LINE_MAX 8192   /* bytes of one start line or header line */
#define NET_HTTP_HEADERS_MAX 128 /* header lines read */
#define NET_HTTP_CREDS_MAX 8     /* credential headers fingerprinted */
#define NET_HTTP_PATH_MAX 2048   /* text of the (redacted) target, NUL included */
#define NET_HTTP_TEXT_MAX 512    /* text of one kept header value, NUL included */

/* A credential header: its name and, for Authorization, the scheme, but never the value. */
typedef struct net_http_cred {
    char name[64];   /* header name as sent, through redact_text, cut to 63 bytes */
    char scheme[16]; /* Authorization / Proxy-Authorization: a known scheme ("Bearer"), else "" */
    redact_fp fp;    /* fingerprint of the credential (after the scheme); fp.pb points into fp */
} net_http_cred;

typedef struct net_http {
    bool response;
    uint8_t version_minor;        /* HTTP/1.x */
    char method[24];              /* request: the method token */
    char path[NET_HTTP_PATH_MAX]; /* request: the target, redacted (redact_text) */
    bool path_cut;           /* the redacted target was longer than the field (path_len says) */
    size_t path_len;         /* length of the redacted target before any cut */
    uint16_t status;         /* response: 100..999 */
    char reason_phrase[128]; /* response: cut to fit */
    /* kept headers (the first of each), values redacted; empty when absent */
    char host[NET_HTTP_TEXT_MAX];
    char user_agent[NET_HTTP_TEXT_MAX];
    char content_type[NET_HTTP_TEXT_MAX];
    bool has_content_length;
    uint64_t content_length;
    bool transfer_chunked; /* Transfer-Encoding ends with "chunked": the body is in chunks
                              (RFC 9112 7.1); it then wins over Content-Length */
    net_http_cred creds[NET_HTTP_CREDS_MAX];
    size_t n_creds, creds_dropped; /* dropped: credential headers past NET_HTTP_CREDS_MAX,
                                      neither kept nor fingerprinted */
    size_t n_headers;              /* header lines read */
    size_t headers_dropped;        /* never read: past NET_HTTP_HEADERS_MAX (then PTB_ETOOBIG) */
    size_t head_len;    /* bytes of start line + headers + blank line: the body starts here */
    bool need_more;     /* with PTB_ENOTFOUND: the head so far is valid, read on */
    const char *reason; /* static; NULL when 0 is returned */
} net_http;

/* Whether a header name (n bytes) is a credential header: Authorization, Proxy-Authorization,
 * Cookie, Set-Cookie, X-Api-Key, Api-Key, a name containing "token", "key" or "secret" (any
 * case), or one that redact_name_is_secret() calls secret (password, auth, session, ...). */
bool net_http_header_is_secret(const char *name, size_t n);

/* Parse an HTTP/1.x request or response head from data (len bytes, borrowed for the call):
 * the start line, then header lines up to the blank line (CRLF or bare LF). Returns 0;
 * PTB_ENOTFOUND when the bytes are not HTTP/1.x (need_more false) or the head is incomplete
 * (need_more true); PTB_ECORRUPT on a malformed line; PTB_ETOOBIG past NET_HTTP_HEAD_MAX,
 * NET_HTTP_LINE_MAX or NET_HTTP_HEADERS_MAX; PTB_ENOMEM when hashing or redacting failed;
 * PTB_EINVAL. out->creds[i].fp.pb points into out: use out where it was filled. */
int net_http_parse(const uint8_t *data, size_t len, net_http *out);

#endif
