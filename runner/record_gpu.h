/* The GPU part of `ptb record`: record_gpu.c. */
#ifndef PTB_RECORD_GPU_H
#define PTB_RECORD_GPU_H

#include <limits.h>
#include <stdbool.h>

#include "gpu_recv.h"
#include "store.h"
#include "tracer.h"

typedef struct record_pidmap record_pidmap;

typedef struct record_gpu {
    gpu_recv *recv;
    record_pidmap *pids;
    char dir[64]; /* private directory of the socket */
    bool active;  /* the library is injected and the receiver runs */
} record_gpu;

/* With enabled and the injection library (lib_path, or NULL: record_gpu_find_lib) found: start the receiver, set CUDA_INJECTION64_PATH
 * and PTB_GPU_SOCKET in this process's environment (CMD inherits it) and to->on_exec. Without the
 * library: nothing (a gap event when this machine has an NVIDIA driver). Returns 0 or a
 * PTB_EXIT_* code after printing why. */
int record_gpu_start(record_gpu *rg, store *s, bool enabled, const char *lib_path,
                     tracer_options *to, bool quiet);

/* The injection library: $PTB_GPU_LIB, else beside the ptb binary in the build tree
 * (runner/../recorder/gpu/), an installed tree (bin/../lib/ptb/) or a packed one (the same
 * folder). Its path into out; false when there is none. */
bool record_gpu_find_lib(char *out, size_t cap);

/* Drain and stop the receiver, remove the socket. st may be NULL. */
int record_gpu_stop(record_gpu *rg, gpu_recv_stats *st);

#endif
