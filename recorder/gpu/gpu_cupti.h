/* CUPTI activity records to wire records (gpu_wire.h), inside the injection library.
 *
 * This part calls no CUPTI function: it reads the record structs of the headers it is built
 * against (CUpti_ActivityKernel10, CUpti_ActivityMemcpy6, CUpti_ActivityMemcpyPtoP4,
 * CUpti_ActivityMemset4, CUpti_ActivityContext3, CUpti_ActivityDevice5 for CUPTI 13.0), so the
 * unit tests feed it synthetic records on machines without a GPU.
 *
 *   kernel   -> a name record the first time its (mangled) name is seen, then a kernel record.
 *               Names are demangled with __cxa_demangle (libstdc++, found at run time; a name
 *               stays mangled where it is missing or fails) and cut at GPU_WIRE_NAME_MAX bytes
 *               on a UTF-8 boundary (full_len says how long it was).
 *   memcpy, peer-to-peer memcpy, memset -> one record each.
 *   device   -> remembered (name, UUID); nothing sent.
 *   context  -> a context record with its device's name and UUID. A context whose device record
 *               has not come yet waits, until that record comes or until the end of the next
 *               buffer (gpu_cupti_buffer_end), then goes without them.
 *   others   -> ignored.
 * Times become CLOCK_REALTIME by adding the caller's clock offset; a time CUPTI left at 0 (not
 * collected) stays 0.
 *
 * Bounds: at most GPU_CUPTI_NAMES_MAX names and GPU_CUPTI_NAME_BYTES bytes of them; a kernel
 * whose name does not fit is sent with name id 0 and counted (stats.unnamed). At most
 * GPU_CUPTI_DEVICES devices and GPU_CUPTI_PENDING waiting contexts (more go out at once).
 *
 * Not thread-safe: the caller serialises (the injection library holds its lock). */
#ifndef PTB_GPU_CUPTI_H
#define PTB_GPU_CUPTI_H

#include <stdint.h>

#include <cupti_activity.h>

#include "gpu_wire.h"

#define GPU_CUPTI_NAMES_MAX (1u << 17)
#define GPU_CUPTI_NAME_BYTES ((size_t)64 << 20)
#define GPU_CUPTI_DEVICES 64
#define GPU_CUPTI_PENDING 256

typedef struct gpu_cupti gpu_cupti;

/* Receives each wire record the converter makes; rec (and its texts) are borrowed for the
 * call. A name record is always followed by the kernel record that needs it. */
typedef void (*gpu_cupti_put_fn)(void *arg, const gpu_wire_rec *rec);

typedef struct gpu_cupti_stats {
    uint64_t kernels, memcpys, memsets, contexts, devices;
    uint64_t ignored;   /* records of other kinds */
    uint64_t names;     /* distinct names in the table */
    uint64_t names_cut; /* of them, cut at GPU_WIRE_NAME_MAX */
    uint64_t unnamed;   /* kernels sent with name id 0: the table was full */
} gpu_cupti_stats;

/* New converter; free with gpu_cupti_free. Returns 0 or PTB_ENOMEM. */
int gpu_cupti_new(gpu_cupti **out);
void gpu_cupti_free(gpu_cupti *c);

/* Convert one record (borrowed for the call), passing what it makes to put(arg, ...).
 * clock_offset_ns is added to every CUPTI timestamp. Returns 1 when the record was of a kind
 * that is recorded, 0 when it was ignored. */
int gpu_cupti_record(gpu_cupti *c, const CUpti_Activity *rec, int64_t clock_offset_ns,
                     gpu_cupti_put_fn put, void *arg);

/* End of one activity buffer: contexts that waited since before it go out without a device
 * name. */
void gpu_cupti_buffer_end(gpu_cupti *c, gpu_cupti_put_fn put, void *arg);

/* Every waiting context goes out now (at exit). */
void gpu_cupti_flush(gpu_cupti *c, gpu_cupti_put_fn put, void *arg);

/* The batch that carried name id was not delivered: send the name again before the next kernel
 * that uses it. Unknown ids are ignored. */
void gpu_cupti_name_lost(gpu_cupti *c, uint32_t id);

void gpu_cupti_stats_get(const gpu_cupti *c, gpu_cupti_stats *out);

/* Demangle a C++ name with libstdc++'s __cxa_demangle when it is there. Returns a malloc'd
 * string the caller frees, or NULL (not a mangled name, no demangler, out of memory). */
char *gpu_cupti_demangle(const char *mangled);

#endif
