/* libFuzzer target: net_dns_parse (recorder/net/net_dns.c).
 *
 * Input: one selector byte (bit 0: TCP framing with its 2-byte length prefix), then the message.
 * Whatever the bytes, the parser must return 0 or PTB_ECORRUPT (with a reason), never read
 * outside the input (ASan), keep its counts within their bounds, end every text field with a NUL
 * inside the field, and say how much of the input it used without going past the end. */
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
    if (size < 1)
        return 0;
    bool tcp = data[0] & 1;
    const uint8_t *msg = size > 1 ? data + 1 : NULL;
    net_dns d;
    int rc = net_dns_parse(msg, size - 1, tcp, &d);
    if (rc != 0 && rc != PTB_ECORRUPT)
        abort();
    if ((rc != 0) != (d.reason != NULL))
        abort();
    if (d.n_q > NET_DNS_MAX_QUESTIONS || d.n_an > NET_DNS_MAX_ANSWERS)
        abort();
    if (d.n_q + d.q_dropped > d.qdcount || d.n_an + d.an_dropped > d.ancount)
        abort();
    if (d.consumed > size - 1)
        abort();
    for (size_t i = 0; i < d.n_q; i++)
        fuzz_text(d.q[i].name, sizeof d.q[i].name);
    for (size_t i = 0; i < d.n_an; i++) {
        fuzz_text(d.an[i].name, sizeof d.an[i].name);
        fuzz_text(d.an[i].data, sizeof d.an[i].data);
    }
    char t[12];
    net_dns_type_str((uint16_t)size, t, sizeof t);
    fuzz_text(t, sizeof t);
    return 0;
}
