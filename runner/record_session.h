/* One recorded command: what `ptb record` does around the tracer (the GPU receiver, the packet
 * capture, the tracer, then stopping both), shared by `ptb record` and every recorded phase of
 * `ptb run` (record_session.c).
 *
 *   record_session_options o; record_session_options_default(&o);   // then o.to, o.net, o.gpu
 *   record_session_result r;
 *   int code = record_session_run(s, &o, argv, on_ready, arg, &r);
 *
 * The command inherits this process's environment (with the GPU library's variables added). */
#ifndef PTB_RECORD_SESSION_H
#define PTB_RECORD_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "gpu_recv.h"
#include "net_capture.h"
#include "record_net.h"
#include "store.h"
#include "tracer.h"

typedef struct record_session_options {
    tracer_options to;      /* capture roots, budget, grace ... */
    record_net_options net; /* mode "off" for none */
    bool gpu;               /* inject the CUPTI library (default true) */
    const char *gpu_lib;    /* its path; NULL: record_gpu_find_lib (which reads PTB_GPU_LIB) */
    bool quiet;
    /* called once the network is set up, just before the command starts: host_addr is the
     * host end of the run's network namespace ("100.64.X.1"), NULL without one. May set
     * to->child_setup. Nonzero stops the session (an error). NULL: not called. */
    int (*prepare)(void *arg, const char *host_addr, tracer_options *to);
    void *prepare_arg;
    /* told of every exec_id too (tracer_options.on_exec, besides the GPU recorder's) */
    void (*on_exec)(void *arg, int pid, uint64_t exec_id, uint64_t parent_exec_id, bool execve);
    void *on_exec_arg;
} record_session_options;

void record_session_options_default(record_session_options *o);

typedef struct record_session_result {
    tracer_result r;
    net_capture_stats net;
    gpu_recv_stats gpu;
    bool net_active, gpu_active;
    char net_desc[256];
    uint64_t other_events; /* events of the network and GPU sources */
    char error[512];       /* why, when record_session_run returned an error */
} record_session_result;

/* Start the GPU receiver, call on_ready(s, arg) (may be NULL: what is appended there sees the
 * final environment, e.g. run.start and proc.env), start the capture, run argv under the tracer,
 * stop everything. Returns 0 when the command ran (its status in res->r), a PTB_EXIT_* code when
 * setting up failed (already printed), or a negative code with res->error when the recording
 * itself failed (ptrace refused, the store or the capture stopped). */
int record_session_run(store *s, record_session_options *o, char *const argv[],
                       int (*on_ready)(store *s, void *arg), void *arg, record_session_result *res);

/* A proc.env event (source runner) with this process's environment, secrets as fingerprints:
 * what a command started now inherits. */
int record_session_append_env(store *s);

#endif
