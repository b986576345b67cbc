/* The network of a replayed step (`ptb replay exec`, replay_exec.c): the replies the step got
 * when it was recorded, served again from the stored packets inside the step's own network
 * namespace, where that is possible.
 *
 * A step's flows (net.flow events of its exec_ids) can be served when each one is either
 * loopback (made again by the step itself), DNS over UDP (the recorded answer to the same name
 * and type, with the new query's id), or TCP whose server sent plain bytes that the store holds
 * whole: every packet of the flow captured to its full length (`ptb record --keep-host HOST`
 * stores them so; the default snap length cuts bodies), no byte missing, not TLS. A connection
 * to a recorded server gets the recorded server's bytes of the flow whose first request line is
 * the same (else the next one not served yet), after the client's request head. */
#ifndef PTB_REPLAY_NET_H
#define PTB_REPLAY_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "store.h"

typedef struct replay_net replay_net;

/* The flows of exec_ids ids[0..n) (sorted). Returns 0 with *out set (free with replay_net_free;
 * it may serve nothing), or PTB_EINVAL with why (cap bytes) saying which flow cannot be served
 * and why, or a store error. */
int replay_net_plan(store_txn *t, const uint64_t *ids, size_t n, replay_net **out, char *why,
                    size_t cap);

/* Servers and addresses planned (0: the step had no network). */
size_t replay_net_servers(const replay_net *rn);

/* A DNS server address the step used, for a resolv.conf in the sandbox (NULL: none). */
const char *replay_net_resolver(const replay_net *rn);

/* Start a process in a new network namespace (loopback up, the recorded servers' addresses on
 * it, the servers listening): *pid, *life (a pipe's end: the server ends when it is closed, or
 * when this process dies), and *netns_fd (open, for tracer_options.netns_fd; the caller closes
 * it after the tracer). The server is not a child of this process (the tracer waits for all
 * of its children). rn may be NULL: an empty namespace. 0 or -errno with err. */
int replay_net_start(const replay_net *rn, pid_t *pid, int *life, int *netns_fd, char *err,
                     size_t cap);

/* Stop the server process of replay_net_start. */
void replay_net_stop(pid_t pid, int life);

void replay_net_free(replay_net *rn);

#endif
