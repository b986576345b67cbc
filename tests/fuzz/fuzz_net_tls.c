/* libFuzzer target: net_tls_client_hello (recorder/net/net_tls.c).
 *
 * Input: the first bytes of a TLS stream. The parser must return 0, PTB_ENOTFOUND,
 * PTB_ECORRUPT or PTB_ETOOBIG, give a reason for every code but 0, set need_more only with
 * PTB_ENOTFOUND, never read outside the input (ASan), keep counts within bounds and every text
 * NUL-terminated inside its field. A whole hello must still parse the same when the input is
 * cut just after it (nothing past `consumed` is read). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net_app.h"
#include "ptb_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    net_tls t;
    int rc = net_tls_client_hello(size ? data : NULL, size, &t);
    if (rc != 0 && rc != PTB_ENOTFOUND && rc != PTB_ECORRUPT && rc != PTB_ETOOBIG)
        abort();
    if ((rc != 0) != (t.reason != NULL))
        abort();
    if (t.need_more && rc != PTB_ENOTFOUND)
        abort();
    if (t.n_alpn > NET_TLS_ALPN_MAX || t.n_versions > NET_TLS_VERSIONS_MAX || t.consumed > size)
        abort();
    if (!memchr(t.sni, '\0', sizeof t.sni) || (t.has_sni && !t.sni[0]))
        abort();
    for (size_t i = 0; i < t.n_alpn; i++)
        if (!memchr(t.alpn[i], '\0', NET_TLS_ALPN_LEN) || !t.alpn[i][0])
            abort();
    if (rc == 0) {
        net_tls u;
        uint8_t *c = malloc(t.consumed);
        if (!c)
            return 0;
        memcpy(c, data, t.consumed);
        if (net_tls_client_hello(c, t.consumed, &u) != 0 || strcmp(u.sni, t.sni) != 0 ||
            u.n_alpn != t.n_alpn)
            abort();
        free(c);
    }
    return 0;
}
