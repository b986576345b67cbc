/* The wire format between the CUPTI injection library (libptbgpu.so, inside every recorded CUDA
 * process) and the recorder's GPU receiver (gpu_recv.h). Plain C, no CUDA: both ends and the
 * tests use this one codec (gpu_wire.c).
 *
 * Transport: one AF_UNIX SOCK_SEQPACKET connection per process; every message is one batch of
 * at most GPU_WIRE_BATCH_MAX bytes. All integers are little-endian, written byte by byte (no
 * struct is ever sent as is), so the layout below is the whole truth.
 *
 * Batch (16-byte header, then `count` records back to back, nothing after the last one):
 *
 *   off size
 *     0    4  magic "PTBG" (bytes 50 54 42 47)
 *     4    2  wire version, GPU_WIRE_VERSION
 *     6    2  flags, 0 (reserved)
 *     8    4  length of the batch in bytes, header included (= the message length)
 *    12    4  count of records
 *
 * Record: a 4-byte header (u16 kind, u16 size = the record's bytes, header included), then the
 * payload. A fixed kind has exactly its size; a kind with text has its fixed part, then the text
 * (u16 length in the fixed part; no NUL, none allowed inside), and its size is exactly that.
 *
 *   kind 1 hello   (once, the first record of the connection; payload 32)
 *        u32 wire_version  u32 pid  u32 cupti_version  u32 flags (0)
 *        i64 clock_offset_ns (CLOCK_REALTIME - CUPTI timestamp, measured at init)
 *        i64 init_ns (CLOCK_REALTIME at init)
 *   kind 2 name    (a kernel name, demangled, sent before the first kernel that uses it; 10 + n)
 *        u32 id (1..GPU_WIRE_NAME_ID_MAX, per process)  u32 full_len (length before a cut, >= n)
 *        u16 n (1..GPU_WIRE_NAME_MAX)  n bytes
 *   kind 3 kernel  (payload 80)
 *        u32 name_id (0 = no name)  u32 grid x y z  u32 block x y z  u32 shared_mem (static +
 *        dynamic)  u32 registers  u32 stream  u32 device  u32 context  u32 correlation
 *        u32 graph_id  u64 graph_node_id  i64 start_ns  i64 end_ns
 *   kind 4 memcpy  (payload 64)
 *        u64 bytes  u8 copy_kind  u8 src_kind  u8 dst_kind  u8 flags (bit 0: peer-to-peer record)
 *        u32 device  u32 context  u32 stream  u32 correlation  u32 src_device  u32 dst_device
 *        u32 graph_id  u64 graph_node_id  i64 start_ns  i64 end_ns
 *   kind 5 memset  (payload 60)
 *        u64 bytes  u32 value  u32 device  u32 context  u32 stream  u32 correlation
 *        u16 mem_kind  u16 reserved (0)  u32 graph_id  u64 graph_node_id  i64 start_ns  i64 end_ns
 *   kind 6 context (26 + n)
 *        u32 device  u32 context  16 bytes device UUID  u16 n (0..GPU_WIRE_DEVNAME_MAX)
 *        n bytes device name
 *   kind 7 gap     (14 + n)
 *        u32 reason (GPU_WIRE_GAP_*)  u64 count  u16 n (0..GPU_WIRE_TEXT_MAX)  n bytes text
 *   kind 8 end     (the process's final flush is done; payload 32)
 *        u64 kernels  u64 memcpys  u64 memsets (records sent, this one's batch included)
 *        u64 lost (records lost in total: CUPTI's drops and the library's)
 *
 * Times (start_ns, end_ns) are CLOCK_REALTIME nanoseconds, converted by the library; 0 when CUPTI
 * gave none. copy_kind and the memory kinds are CUPTI's numbering (CUpti_ActivityMemcpyKind,
 * CUpti_ActivityMemoryKind), frozen here as GPU_WIRE_COPY_* and GPU_WIRE_MEM_*; values this
 * version does not know are kept and shown as "other".
 *
 * Versioning: the version in the header changes when any layout changes; a reader rejects a
 * batch of another version. Kinds are only added (a reader rejects kinds it does not know: they
 * come with a new version).
 *
 * Trust: the reader treats every byte as hostile (it comes from the recorded process). It checks
 * the header, every record's kind, size and text lengths against the batch, the count, and that
 * nothing follows the last record; a batch that fails any check is rejected whole, with a
 * reason. Nothing a batch says can make the reader read outside it. */
#ifndef PTB_GPU_WIRE_H
#define PTB_GPU_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GPU_WIRE_MAGIC 0x47425450u /* "PTBG" read as a little-endian u32 */
#define GPU_WIRE_VERSION 1
#define GPU_WIRE_BATCH_MAX 65536 /* bytes in one batch (one message), header included */
#define GPU_WIRE_HEADER_SIZE 16
#define GPU_WIRE_REC_HEADER 4
#define GPU_WIRE_NAME_MAX 4096 /* bytes of a kernel name kept; longer names are cut */
#define GPU_WIRE_NAME_ID_MAX ((1u << 20) - 1) /* highest name id */
#define GPU_WIRE_DEVNAME_MAX 256
#define GPU_WIRE_TEXT_MAX 1024

/* Record kinds. */
enum {
    GPU_WIRE_HELLO = 1,
    GPU_WIRE_NAME = 2,
    GPU_WIRE_KERNEL = 3,
    GPU_WIRE_MEMCPY = 4,
    GPU_WIRE_MEMSET = 5,
    GPU_WIRE_CONTEXT = 6,
    GPU_WIRE_GAP = 7,
    GPU_WIRE_END = 8,
    GPU_WIRE_KIND_LAST = 8,
};

/* Encoded sizes of the fixed kinds (record header included), and of the fixed parts of the
 * others. */
#define GPU_WIRE_HELLO_SIZE (GPU_WIRE_REC_HEADER + 32)
#define GPU_WIRE_NAME_FIXED (GPU_WIRE_REC_HEADER + 10)
#define GPU_WIRE_KERNEL_SIZE (GPU_WIRE_REC_HEADER + 80)
#define GPU_WIRE_MEMCPY_SIZE (GPU_WIRE_REC_HEADER + 64)
#define GPU_WIRE_MEMSET_SIZE (GPU_WIRE_REC_HEADER + 60)
#define GPU_WIRE_CONTEXT_FIXED (GPU_WIRE_REC_HEADER + 26)
#define GPU_WIRE_GAP_FIXED (GPU_WIRE_REC_HEADER + 14)
#define GPU_WIRE_END_SIZE (GPU_WIRE_REC_HEADER + 32)

/* Gap reasons sent by the library. Stable numbers; the receiver names them
 * (gpu_wire_gap_reason_name) and shows unknown ones as "unknown". */
enum {
    GPU_WIRE_GAP_SUBSCRIBER = 1,     /* another CUPTI subscriber (profiler, Nsight): not recorded */
    GPU_WIRE_GAP_NO_DEVICE = 2,      /* no usable device or driver */
    GPU_WIRE_GAP_CUPTI_ERROR = 3,    /* a CUPTI call failed (text: which, and why) */
    GPU_WIRE_GAP_CUPTI_DROPPED = 4,  /* records CUPTI dropped (count) */
    GPU_WIRE_GAP_SEND_DROPPED = 5,   /* records the library could not send in time (count) */
    GPU_WIRE_GAP_BUFFER_REFUSED = 6, /* activity buffers refused at the library's bound (count) */
    GPU_WIRE_GAP_CUPTI_VERSION = 7,  /* libcupti older than the headers the library was built on */
    GPU_WIRE_GAP_NAME_TABLE_FULL = 8, /* kernels sent without a name: the name table is full */
    GPU_WIRE_GAP_LAST = 8,
};

/* CUPTI's copy kinds (CUpti_ActivityMemcpyKind) and memory kinds (CUpti_ActivityMemoryKind). */
enum {
    GPU_WIRE_COPY_UNKNOWN = 0,
    GPU_WIRE_COPY_HTOD = 1,
    GPU_WIRE_COPY_DTOH = 2,
    GPU_WIRE_COPY_HTOA = 3,
    GPU_WIRE_COPY_ATOH = 4,
    GPU_WIRE_COPY_ATOA = 5,
    GPU_WIRE_COPY_ATOD = 6,
    GPU_WIRE_COPY_DTOA = 7,
    GPU_WIRE_COPY_DTOD = 8,
    GPU_WIRE_COPY_HTOH = 9,
    GPU_WIRE_COPY_PTOP = 10,
};
enum {
    GPU_WIRE_MEM_UNKNOWN = 0,
    GPU_WIRE_MEM_PAGEABLE = 1,
    GPU_WIRE_MEM_PINNED = 2,
    GPU_WIRE_MEM_DEVICE = 3,
    GPU_WIRE_MEM_ARRAY = 4,
    GPU_WIRE_MEM_MANAGED = 5,
    GPU_WIRE_MEM_DEVICE_STATIC = 6,
    GPU_WIRE_MEM_MANAGED_STATIC = 7,
};
#define GPU_WIRE_MEMCPY_F_P2P 0x01

/* ------------------------------------------------------------------ records */

typedef struct gpu_wire_hello {
    uint32_t wire_version;
    uint32_t pid; /* as the process sees itself; the receiver trusts SO_PEERCRED over it */
    uint32_t cupti_version;
    uint32_t flags;
    int64_t clock_offset_ns;
    int64_t init_ns;
} gpu_wire_hello;

typedef struct gpu_wire_name {
    uint32_t id;
    uint32_t full_len; /* length before the cut; > len when the name was cut */
    const char *name;  /* len bytes, no NUL; decoded: borrowed from the batch */
    uint16_t len;
} gpu_wire_name;

typedef struct gpu_wire_kernel {
    uint32_t name_id;
    uint32_t grid[3], block[3];
    uint32_t shared_mem, registers;
    uint32_t stream, device, context, correlation;
    uint32_t graph_id;
    uint64_t graph_node_id;
    int64_t start_ns, end_ns;
} gpu_wire_kernel;

typedef struct gpu_wire_memcpy {
    uint64_t bytes;
    uint8_t copy_kind, src_kind, dst_kind, flags;
    uint32_t device, context, stream, correlation;
    uint32_t src_device, dst_device;
    uint32_t graph_id;
    uint64_t graph_node_id;
    int64_t start_ns, end_ns;
} gpu_wire_memcpy;

typedef struct gpu_wire_memset {
    uint64_t bytes;
    uint32_t value;
    uint32_t device, context, stream, correlation;
    uint16_t mem_kind;
    uint32_t graph_id;
    uint64_t graph_node_id;
    int64_t start_ns, end_ns;
} gpu_wire_memset;

typedef struct gpu_wire_context {
    uint32_t device, context;
    uint8_t uuid[16];
    const char *name; /* len bytes, no NUL; decoded: borrowed from the batch */
    uint16_t len;
} gpu_wire_context;

typedef struct gpu_wire_gap {
    uint32_t reason;
    uint64_t count;
    const char *text; /* len bytes, no NUL; decoded: borrowed from the batch */
    uint16_t len;
} gpu_wire_gap;

typedef struct gpu_wire_end {
    uint64_t kernels, memcpys, memsets, lost;
} gpu_wire_end;

/* One record of any kind. */
typedef struct gpu_wire_rec {
    uint16_t kind; /* GPU_WIRE_HELLO .. GPU_WIRE_END */
    union {
        gpu_wire_hello hello;
        gpu_wire_name name;
        gpu_wire_kernel kernel;
        gpu_wire_memcpy copy;
        gpu_wire_memset set;
        gpu_wire_context context;
        gpu_wire_gap gap;
        gpu_wire_end end;
    } u;
} gpu_wire_rec;

/* ------------------------------------------------------------------ writing */

/* A batch being built in a caller's buffer. */
typedef struct gpu_wire_writer {
    uint8_t *buf;   /* borrowed, cap bytes */
    size_t cap;     /* GPU_WIRE_HEADER_SIZE .. GPU_WIRE_BATCH_MAX */
    size_t len;     /* bytes used, header included */
    uint32_t count; /* records */
} gpu_wire_writer;

/* Start an empty batch in buf (cap bytes, borrowed while the writer is used; cap is clamped to
 * GPU_WIRE_BATCH_MAX). Returns 0, or PTB_EINVAL when cap cannot hold the header. */
int gpu_wire_writer_init(gpu_wire_writer *w, uint8_t *buf, size_t cap);

/* Empty the batch again (same buffer). */
void gpu_wire_writer_reset(gpu_wire_writer *w);

/* Encoded size of a record (header included); 0 when the record cannot be encoded (unknown
 * kind, a text over its bound, name id 0 or over GPU_WIRE_NAME_ID_MAX, an empty name,
 * full_len < len, a NUL inside a text). */
size_t gpu_wire_rec_size(const gpu_wire_rec *r);

/* Append a record. Returns 0; -ENOSPC when it does not fit in what is left (the batch is
 * unchanged: send it and put the record in the next); PTB_EINVAL when it cannot be encoded
 * (gpu_wire_rec_size says 0). */
int gpu_wire_put(gpu_wire_writer *w, const gpu_wire_rec *r);

/* Write the header's length and count; returns the batch's length in bytes (send buf[0..n)). */
size_t gpu_wire_writer_finish(gpu_wire_writer *w);

/* ------------------------------------------------------------------ reading */

/* A checked batch. */
typedef struct gpu_wire_reader {
    const uint8_t *buf; /* borrowed: the batch */
    size_t len, off;
    uint32_t count, next;
} gpu_wire_reader;

/* Check a whole batch (len bytes from buf, borrowed while the reader is used): header, every
 * record, the count, nothing left over. Returns 0, or PTB_ECORRUPT with *why (may be NULL) set
 * to a static text that says what is wrong; a rejected batch yields no record. */
int gpu_wire_reader_open(gpu_wire_reader *r, const void *buf, size_t len, const char **why);

/* Next record of a checked batch into *rec; its texts point into the batch. Returns 0, or
 * PTB_ENOTFOUND after the last record. */
int gpu_wire_reader_next(gpu_wire_reader *r, gpu_wire_rec *rec);

/* ------------------------------------------------------------------ names of numbers */

/* "HtoD", "DtoH", "DtoD", "HtoH", "PtoP", else "other". Static storage. */
const char *gpu_wire_copy_kind_name(uint8_t copy_kind);

/* "unknown", "pageable", "pinned", "device", "array", "managed", "device_static",
 * "managed_static", else "other". Static storage. */
const char *gpu_wire_mem_kind_name(uint16_t mem_kind);

/* "subscriber_conflict", "no_device", "cupti_error", "cupti_dropped", "send_dropped",
 * "buffer_refused", "cupti_version", "name_table_full", else "unknown". Static storage. */
const char *gpu_wire_gap_reason_name(uint32_t reason);

#endif
