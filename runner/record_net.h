/* The network part of `ptb record`: record_net.c. */
#ifndef PTB_RECORD_NET_H
#define PTB_RECORD_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "net_capture.h"
#include "net_flow.h"
#include "net_ns.h"
#include "store.h"
#include "tracer.h"

typedef struct record_net_options {
    const char *mode;   /* "ns" (default), "off", "iface:NAME" */
    bool explicit_mode; /* --net was given: failing to set it up is an error */
    bool nat;           /* ns mode: NAT to the host's network (default true) */
    const char *filter; /* BPF filter, or NULL */
    uint32_t snaplen;   /* bytes of each packet stored (default 256; 0: whole) */
    uint32_t buffer;    /* kernel capture ring in bytes (0: net_capture's default) */
    const char *const *keep_hosts;
    size_t n_keep_hosts;
} record_net_options;

typedef struct record_net {
    net_ns *ns;
    net_capture *cap;
    net_owners *owners;
    bool active;    /* packets are being captured */
    char desc[256]; /* what was set up, for the summary: links, addresses, the NAT table */
} record_net;

void record_net_options_default(record_net_options *o);

/* Set up the mode and start the capture; sets to->netns_fd and to->on_socket. Returns 0 (also
 * when the default mode could not be set up: then a gap event and a message; record_net_stop
 * is due either way) or a PTB_EXIT_* code after printing why (everything already released). */
int record_net_start(record_net *rn, store *s, const record_net_options *o, tracer_options *to,
                     bool quiet);

/* Stop the capture (drain, end flows), remove the namespace. st may be NULL. Returns the error
 * that stopped the capture, 0 if none. */
int record_net_stop(record_net *rn, net_capture_stats *st);

#endif
