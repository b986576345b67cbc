/* libFuzzer target: net_decode (recorder/net: link, IP and transport layers).
 *
 * Input: one selector byte, then the captured packet bytes. The selector's low 4 bits pick the
 * link type from fuzz_links[] (the last entry is unsupported, to exercise the PTB_EINVAL path);
 * its high 4 bits times 97 are added to the wire length, so that the same bytes are tried both
 * as a whole packet and as one cut short by the snap length. A corpus file is easy to make from
 * a capture: the selector byte of its link type followed by one packet.
 *
 * Whatever the bytes, net_decode must return 0 (or PTB_EINVAL for the unsupported type only),
 * never read outside the packet (ASan), keep the payload inside the packet, give a reason for
 * every truncation or malformation, and have addresses printable when the IP layer was read. */
#include <stdint.h>
#include <stdlib.h>

#include "net_decode.h"
#include "ptb_error.h"

static const int fuzz_links[] = {
    NET_LINK_EN10MB,
    NET_LINK_SLL,
    NET_LINK_SLL2,
    NET_LINK_NULL,
    NET_LINK_LOOP,
    NET_LINK_RAW,
    12,
    14,
    NET_LINK_IPV4,
    NET_LINK_IPV6,
    147 /* unsupported */,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t nlinks = sizeof fuzz_links / sizeof fuzz_links[0];
    int lt = fuzz_links[(data[0] & 0x0F) % nlinks];
    const uint8_t *pkt = size > 1 ? data + 1 : NULL;
    size_t caplen = size - 1;
    size_t wirelen = caplen + (size_t)(data[0] >> 4) * 97;
    net_pkt k;
    int rc = net_decode(lt, pkt, caplen, wirelen, &k);
    if (rc != 0) {
        if (rc != PTB_EINVAL || lt != 147)
            abort();
        return 0;
    }
    if (k.layer > NET_LAYER_L4)
        abort();
    if (k.payload && k.payload_len &&
        (k.payload < pkt || k.payload_len > caplen || k.payload > pkt + (caplen - k.payload_len)))
        abort();
    if (k.payload_len > k.payload_wirelen)
        abort();
    if ((k.flags & (NET_PKT_TRUNC | NET_PKT_MALFORMED)) && !k.reason)
        abort();
    char buf[46];
    if (k.layer >= NET_LAYER_IP && !net_ip_str(&k, NET_ADDR_DST, buf, sizeof buf))
        abort();
    if (k.layer < NET_LAYER_IP && net_ip_str(&k, NET_ADDR_SRC, buf, sizeof buf))
        abort();
    return 0;
}
