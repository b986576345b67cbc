/* The recorder's GPU receiver: the other end of libptbgpu.so (gpu_inject.c).
 *
 *   gpu_recv *r;
 *   gpu_recv_start(store, "/run/ptb.XXXX/gpu.sock", exec_of, arg, &r, &eb);
 *   ... the recorded tree runs with PTB_GPU_SOCKET=/run/ptb.XXXX/gpu.sock and
 *       CUDA_INJECTION64_PATH=.../libptbgpu.so ...
 *   gpu_recv_stop(r, &stats);
 *
 * It listens on an AF_UNIX SOCK_SEQPACKET socket (created mode 0600; the caller puts it in a
 * directory of its own, mode 0700, that the recorded processes cannot replace). One thread
 * accepts connections and reads batches (epoll). Each connection is one CUDA process: its pid
 * comes from SO_PEERCRED (the hello's pid is only compared with it), its exec_id from exec_of.
 * Every batch is checked whole (gpu_wire_reader_open) and then turned into events, appended
 * with source SOURCE_GPU and the process's exec_id:
 *
 *   context -> gpu.context  (device, name, UUID as "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
 *                            pid, context_id; ts_ns = when it arrived)
 *   kernel  -> gpu.kernel_batch: the kernels of one batch (up to RECV_KB_NAMES distinct names
 *              each) as one event, which readers see as one gpu.kernel per launch (the name
 *              from the process's name table; ts_ns = start_ns; store.h, "Kernel batches")
 *   memcpy  -> gpu.memcpy   (kind "HtoD", "DtoH", "DtoD", "HtoH", "PtoP" or "other", memory
 *                            kinds, devices; ts_ns = start_ns)
 *   memset  -> gpu.memset   (GpuMemcpy with kind "memset", value, dst_kind; ts_ns = start_ns)
 *   gap     -> gap          (origin "gpu", reason by name, count, text as detail)
 *   name    -> the table only (bounded per process: GPU_RECV_NAMES_MAX ids,
 *              GPU_RECV_NAME_BYTES bytes); a cut name is a gap "name_truncated" (once per name)
 *   end     -> compared with what arrived: a difference is a gap "count_mismatch"
 *
 * And gaps of its own (origin "gpu", exec_id of the process when known):
 *   "malformed_batch"  a batch failed the checks (detail: why) and was dropped whole; the
 *                      first GPU_RECV_MALFORMED_EVENTS per process each, then one with the
 *                      count of the rest when the connection ends
 *   "pid_mismatch"     the hello's pid is not the socket's (a pid namespace, or a lie)
 *   "unknown_name"     kernels that named an id never defined (count, when the connection ends)
 *   "no_final_flush"   the process went away without its end record: records still in its
 *                      CUPTI buffers are lost (killed, _exit, exec after CUDA started)
 *   "open_at_stop"     still connected when gpu_recv_stop's deadline passed
 *   "too_many_processes" a connection over GPU_RECV_CONNS_MAX, refused
 * Texts from the process are made valid UTF-8 before they are stored.
 *
 * Appends wait when the store's queue is full (the process then waits a bounded time and
 * reports what it could not send). */
#ifndef PTB_GPU_RECV_H
#define PTB_GPU_RECV_H

#include <stdint.h>

#include "ptb_error.h"
#include "store.h"

#define GPU_RECV_CONNS_MAX 4096         /* processes connected at once */
#define GPU_RECV_NAMES_MAX (1u << 20)   /* name ids per process (GPU_WIRE_NAME_ID_MAX + 1) */
#define GPU_RECV_NAME_BYTES (64u << 20) /* bytes of names per process */
#define GPU_RECV_MALFORMED_EVENTS 8     /* malformed batches per process with their own gap */
#define GPU_RECV_DRAIN_MS 2000          /* gpu_recv_stop waits this long for connections */

typedef struct gpu_recv gpu_recv;

typedef struct gpu_recv_stats {
    uint64_t connections;                         /* accepted */
    uint64_t processes;                           /* connections that said hello */
    uint64_t batches;                             /* batches read (malformed ones included) */
    uint64_t kernels, memcpys, memsets, contexts; /* events appended */
    uint64_t gaps;                                /* gap events appended, the processes' and ours */
    uint64_t malformed;                           /* batches rejected */
    uint64_t lost;        /* records the processes said they lost (sum of their drop counts) */
    uint64_t events_lost; /* events the store refused (over its size cap, or it stopped) */
} gpu_recv_stats;

/* exec_of(arg, pid): the exec_id of the live process pid, 0 when not known (yet). Called on the
 * receiver's thread, at accept and then with every batch until it answers; must be
 * thread-safe with respect to the caller's other threads. */
typedef uint64_t (*gpu_recv_exec_fn)(void *arg, int pid);

/* Create the socket at socket_path (copied; must not exist; at most 107 bytes), mode 0600, and
 * start the receiver thread. s is borrowed until gpu_recv_stop returns; exec_of may be NULL
 * (exec_id 0), arg is passed to it. On success *out is the receiver (end it with
 * gpu_recv_stop); on failure *out is NULL, eb (may be NULL) says why, and the return is a
 * negative code: PTB_EINVAL (path), -errno (socket, bind, thread), PTB_ENOMEM. */
int gpu_recv_start(store *s, const char *socket_path, gpu_recv_exec_fn exec_of, void *arg,
                   gpu_recv **out, ptb_errbuf *eb);

/* Counters so far; thread-safe, approximate while the receiver runs. */
void gpu_recv_stats_get(gpu_recv *r, gpu_recv_stats *out);

/* Stop accepting (connections already queued are still taken), read every connection until it
 * closes or GPU_RECV_DRAIN_MS pass, join the thread, remove the socket file and free r.
 * *st (may be NULL) gets the final counters. Returns 0, or the first error of the store
 * (events after it were counted in events_lost). r may be NULL. */
int gpu_recv_stop(gpu_recv *r, gpu_recv_stats *st);

#endif
