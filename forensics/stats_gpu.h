/* The GPU part of `ptb stats` (issue 5): kernels summed per name, device and process; memcpy and
 * memset summed per kind. Reads the gpu.* events through the TYPE index. */
#ifndef PTB_STATS_GPU_H
#define PTB_STATS_GPU_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "store.h"

typedef struct stats_gpu stats_gpu;

/* Read and sum every gpu.kernel, gpu.memcpy and gpu.memset event of t. Rows are sorted by GPU
 * time, largest first. Returns 0, PTB_ENOMEM or a store error. */
int stats_gpu_read(store_txn *t, stats_gpu **out);
bool stats_gpu_empty(const stats_gpu *g);
/* Kernel launches counted (those stored in batches one by one). */
uint64_t stats_gpu_kernels(const stats_gpu *g);
/* The table form; at most top rows per sum. */
void stats_gpu_print(const stats_gpu *g, size_t top);
/* {"kernels", "kernel_ns", "by_name": [{name, count, gpu_ns}], "by_device": [{device, ...}],
 *  "by_process": [{exec_id, ...}], "copies": [{kind, count, gpu_ns, bytes}]} */
json_t *stats_gpu_json(const stats_gpu *g);
void stats_gpu_free(stats_gpu *g);

#endif
