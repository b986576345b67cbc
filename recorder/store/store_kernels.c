/* Kernel batches (gpu.kernel_batch): many launches of one process in one stored event, shown to
 * readers launch by launch. The layout is GpuKernelBatch in event.proto; what is checked before
 * a batch is read is in store.h (store_kernels_begin). */
#include "store_int.h"

#include <string.h>

_Static_assert(STORE_KERNELS_NAMES_MAX + 2 <= STORE_CODEC_MAX_POSTINGS,
               "every name of a kernel batch must get its index posting");

uint64_t store_type_key(uint32_t body_case)
{
    return body_case == PTB__V1__EVENT__BODY_GPU_KERNEL_BATCH ? PTB__V1__EVENT__BODY_GPU_KERNEL
                                                              : body_case;
}

/* The columns, in one table so that checking and reading walk them alike. */
#define KB_U32_COLS 12
static size_t *kb_u32_n(Ptb__V1__GpuKernelBatch *b, int i, uint32_t ***v)
{
    static const size_t off_n[KB_U32_COLS] = {
        offsetof(Ptb__V1__GpuKernelBatch, n_name),
        offsetof(Ptb__V1__GpuKernelBatch, n_grid_x),
        offsetof(Ptb__V1__GpuKernelBatch, n_grid_y),
        offsetof(Ptb__V1__GpuKernelBatch, n_grid_z),
        offsetof(Ptb__V1__GpuKernelBatch, n_block_x),
        offsetof(Ptb__V1__GpuKernelBatch, n_block_y),
        offsetof(Ptb__V1__GpuKernelBatch, n_block_z),
        offsetof(Ptb__V1__GpuKernelBatch, n_shared_mem),
        offsetof(Ptb__V1__GpuKernelBatch, n_registers),
        offsetof(Ptb__V1__GpuKernelBatch, n_stream),
        offsetof(Ptb__V1__GpuKernelBatch, n_device),
        offsetof(Ptb__V1__GpuKernelBatch, n_context_id),
    };
    static const size_t off_v[KB_U32_COLS] = {
        offsetof(Ptb__V1__GpuKernelBatch, name),      offsetof(Ptb__V1__GpuKernelBatch, grid_x),
        offsetof(Ptb__V1__GpuKernelBatch, grid_y),    offsetof(Ptb__V1__GpuKernelBatch, grid_z),
        offsetof(Ptb__V1__GpuKernelBatch, block_x),   offsetof(Ptb__V1__GpuKernelBatch, block_y),
        offsetof(Ptb__V1__GpuKernelBatch, block_z),   offsetof(Ptb__V1__GpuKernelBatch, shared_mem),
        offsetof(Ptb__V1__GpuKernelBatch, registers), offsetof(Ptb__V1__GpuKernelBatch, stream),
        offsetof(Ptb__V1__GpuKernelBatch, device),    offsetof(Ptb__V1__GpuKernelBatch, context_id),
    };
    *v = (uint32_t **)((char *)b + off_v[i]);
    return (size_t *)((char *)b + off_n[i]);
}

static bool col_ok(size_t n, uint32_t count)
{
    return n == 0 || n == count;
}

int store_kernels_begin(const ptb_event *ev, store_kernels *it)
{
    memset(it, 0, sizeof *it);
    if (ev->body_case != PTB__V1__EVENT__BODY_GPU_KERNEL_BATCH || !ev->gpu_kernel_batch)
        return PTB_EINVAL;
    Ptb__V1__GpuKernelBatch *b = ev->gpu_kernel_batch;
    if (b->count == 0 || b->count > STORE_KERNELS_MAX)
        return PTB_ECORRUPT;
    for (int i = 0; i < KB_U32_COLS; i++) {
        uint32_t **v;
        if (!col_ok(*kb_u32_n(b, i, &v), b->count))
            return PTB_ECORRUPT;
    }
    if (!col_ok(b->n_start_delta, b->count) || !col_ok(b->n_duration, b->count) ||
        !col_ok(b->n_correlation_delta, b->count) || !col_ok(b->n_graph_id, b->count) ||
        !col_ok(b->n_graph_node_id, b->count))
        return PTB_ECORRUPT;
    if (b->n_names > STORE_KERNELS_NAMES_MAX)
        return PTB_ECORRUPT;
    for (size_t i = 0; i < b->n_names; i++)
        if (!b->names[i] || !b->names[i]->name)
            return PTB_ECORRUPT;
    for (size_t i = 0; i < b->n_name; i++)
        if (b->name[i] > b->n_names)
            return PTB_ECORRUPT;
    it->batch = ev;
    it->start = ev->ts_ns;
    return 0;
}

static uint32_t col(const uint32_t *v, size_t n, uint32_t i)
{
    return n ? v[i] : 0;
}

int store_kernels_next(store_kernels *it, const ptb_event **out)
{
    const ptb_event *ev = it->batch;
    if (!ev || it->i >= ev->gpu_kernel_batch->count)
        return PTB_ENOTFOUND;
    const Ptb__V1__GpuKernelBatch *b = ev->gpu_kernel_batch;
    uint32_t i = it->i++;
    Ptb__V1__GpuKernel *k = &it->kernel;
    ptb__v1__gpu_kernel__init(k);
    uint32_t nm = col(b->name, b->n_name, i);
    k->name = nm ? b->names[nm - 1]->name : (char *)"";
    k->grid_x = col(b->grid_x, b->n_grid_x, i);
    k->grid_y = col(b->grid_y, b->n_grid_y, i);
    k->grid_z = col(b->grid_z, b->n_grid_z, i);
    k->block_x = col(b->block_x, b->n_block_x, i);
    k->block_y = col(b->block_y, b->n_block_y, i);
    k->block_z = col(b->block_z, b->n_block_z, i);
    k->shared_mem = col(b->shared_mem, b->n_shared_mem, i);
    k->registers = col(b->registers, b->n_registers, i);
    k->stream = col(b->stream, b->n_stream, i);
    k->device = col(b->device, b->n_device, i);
    k->context_id = col(b->context_id, b->n_context_id, i);
    /* wrapping arithmetic: a hostile batch gives odd times, never undefined behaviour */
    it->start =
        (int64_t)((uint64_t)it->start + (uint64_t)(b->n_start_delta ? b->start_delta[i] : 0));
    it->corr += (uint32_t)(b->n_correlation_delta ? b->correlation_delta[i] : 0);
    k->start_ns = it->start;
    k->end_ns = (int64_t)((uint64_t)it->start + (uint64_t)(b->n_duration ? b->duration[i] : 0));
    k->correlation_id = it->corr;
    k->graph_id = b->n_graph_id ? b->graph_id[i] : 0;
    k->graph_node_id = b->n_graph_node_id ? b->graph_node_id[i] : 0;
    it->ev = *ev;
    it->ev.body_case = PTB__V1__EVENT__BODY_GPU_KERNEL;
    it->ev.gpu_kernel = k;
    it->ev.ts_ns = k->start_ns;
    it->ev.sub = i + 1;
    *out = &it->ev;
    return 0;
}

int store_event_span(const ptb_event *ev, int64_t *lo, int64_t *hi)
{
    *lo = *hi = ev->ts_ns;
    if (ev->body_case != PTB__V1__EVENT__BODY_GPU_KERNEL_BATCH)
        return 0;
    store_kernels it;
    int rc = store_kernels_begin(ev, &it);
    if (rc)
        return rc;
    const ptb_event *k;
    while (store_kernels_next(&it, &k) == 0) {
        if (k->ts_ns < *lo)
            *lo = k->ts_ns;
        if (k->ts_ns > *hi)
            *hi = k->ts_ns;
    }
    return 0;
}
