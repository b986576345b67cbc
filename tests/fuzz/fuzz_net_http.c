/* libFuzzer target: net_http_parse (recorder/net/net_http.c).
 *
 * Input: the first bytes of an HTTP/1.x stream. The parser must return 0, PTB_ENOTFOUND,
 * PTB_ECORRUPT or PTB_ETOOBIG (PTB_ENOMEM only if libcrypto fails), give a reason for every code
 * but 0, never read outside the input (ASan), keep counts within bounds, end every text inside
 * its field, put the body start within the input, and keep each credential's fingerprint
 * protobuf pointing into its own struct. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net_app.h"
#include "ptb_error.h"

static void fuzz_text(const char *s, size_t cap)
{
    if (!memchr(s, '\0', cap))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static net_http h; /* ~3 kB of text fields: keep it off the fuzzer's stack */
    int rc = net_http_parse(size ? data : NULL, size, &h);
    if (rc != 0 && rc != PTB_ENOTFOUND && rc != PTB_ECORRUPT && rc != PTB_ETOOBIG &&
        rc != PTB_ENOMEM)
        abort();
    if ((rc != 0) != (h.reason != NULL))
        abort();
    if (h.need_more && rc != PTB_ENOTFOUND)
        abort();
    if (h.n_creds > NET_HTTP_CREDS_MAX || h.n_headers > NET_HTTP_HEADERS_MAX || h.head_len > size)
        abort();
    if (rc == 0 && (h.head_len == 0 || (h.response && (h.status < 100 || h.status > 999))))
        abort();
    fuzz_text(h.method, sizeof h.method);
    fuzz_text(h.path, sizeof h.path);
    fuzz_text(h.reason_phrase, sizeof h.reason_phrase);
    fuzz_text(h.host, sizeof h.host);
    fuzz_text(h.user_agent, sizeof h.user_agent);
    fuzz_text(h.content_type, sizeof h.content_type);
    for (size_t i = 0; i < h.n_creds; i++) {
        fuzz_text(h.creds[i].name, sizeof h.creds[i].name);
        fuzz_text(h.creds[i].scheme, sizeof h.creds[i].scheme);
        if (h.creds[i].fp.pb.sha256.data != h.creds[i].fp.sha256 ||
            h.creds[i].fp.pb.sha256.len != 32)
            abort();
    }
    return 0;
}
