/* The checkpoint detector's tensor comparison on the GPU (audit_ckpt_cuda.h): the three sums of
 * audit_ckpt_dots_add (audit_ckpt_num.c, the CPU reference) and the count sketch's update, per
 * job, with double accumulation.
 *
 * Streaming: each job is cut into chunks of CH elements. A chunk's raw bytes (f, b, and x or
 * the stored sketch) are copied from the mapping into one of two pinned host slots, uploaded on
 * that slot's stream and reduced there; before a slot is refilled its event says the upload and
 * kernel of its previous chunk are done, so the host's copy of chunk i+1 overlaps the GPU's work
 * on chunk i. Kernels convert the dtypes themselves (bf16, f16 and f64 to float, as the CPU
 * does), so the bus carries the checkpoint's own bytes.
 *
 * Reduction: per thread in double over a grid-stride loop, then the warp (shuffles), the block
 * (shared memory), and one atomicAdd per block and sum into the job's three doubles on the
 * device. Sketch jobs with k < n add ±Δc_j into k double buckets with atomicAdd, then one kernel
 * gives ⟨buckets, sketch⟩. */
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <thread>

#include "audit_ckpt_cuda.h"
#include "safetensors.h"

#define CH (8u << 20) /* elements per chunk */
#define THREADS 256

/* ptb_errf's contract without linking it: the message into eb, the code back */
static int errf(ptb_errbuf *eb, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int errf(ptb_errbuf *eb, int code, const char *fmt, ...)
{
    if (eb) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(eb->msg, sizeof eb->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

static size_t dt_size(int dt)
{
    return dt == SAFETENSORS_F64 ? 8 : dt == SAFETENSORS_F32 ? 4 : 2;
}

__device__ __forceinline__ float ld(const void *p, int dt, size_t j)
{
    switch (dt) {
    case SAFETENSORS_F32: return ((const float *)p)[j];
    case SAFETENSORS_F64: return (float)((const double *)p)[j];
    case SAFETENSORS_BF16: return __uint_as_float((unsigned)((const unsigned short *)p)[j] << 16);
    default: return __half2float(((const __half *)p)[j]);
    }
}

__device__ __forceinline__ double warp_sum(double v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}

/* Block-reduce up to three values and add them to out[0..nv). */
__device__ void block_add(double a, double b, double c, double *out, int nv)
{
    __shared__ double sh[3][THREADS / 32];
    a = warp_sum(a), b = warp_sum(b), c = warp_sum(c);
    int w = threadIdx.x / 32, l = threadIdx.x % 32;
    if (!l)
        sh[0][w] = a, sh[1][w] = b, sh[2][w] = c;
    __syncthreads();
    if (w == 0) {
        a = l < THREADS / 32 ? sh[0][l] : 0;
        b = l < THREADS / 32 ? sh[1][l] : 0;
        c = l < THREADS / 32 ? sh[2][l] : 0;
        a = warp_sum(a), b = warp_sum(b), c = warp_sum(c);
        if (!l) {
            atomicAdd(&out[0], a);
            atomicAdd(&out[1], b);
            if (nv > 2)
                atomicAdd(&out[2], c);
        }
    }
}

/* Exact jobs (delta 0): dot, cc, ii of Δc = f − b and Δi = x − b. Sketch jobs with k == n
 * (delta 1): x is Δi itself (F32): dot and cc. out: the job's three doubles. */
__global__ void k_dots(const void *f, int fdt, const void *b, int bdt, const void *x, int xdt,
                       size_t n, int delta, double *out)
{
    double dot = 0, cc = 0, ii = 0;
    for (size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x; j < n;
         j += (size_t)gridDim.x * blockDim.x) {
        float fv = ld(f, fdt, j), bv = ld(b, bdt, j), xv = ld(x, xdt, j);
        double dc = (double)fv - bv, di = delta ? (double)xv : (double)xv - bv;
        dot += dc * di;
        cc += dc * dc;
        ii += di * di;
    }
    block_add(dot, cc, ii, out, delta ? 2 : 3);
}

__device__ __forceinline__ unsigned long long mix(unsigned long long z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Sketch jobs with k < n: acc[h(j)] += s(j)·Δc_j for the chunk's elements j = off + i, and cc. */
__global__ void k_sketch(const void *f, int fdt, const void *b, int bdt, size_t n,
                         unsigned long long off, unsigned long long key, unsigned k, double *acc,
                         double *out)
{
    double cc = 0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        double dc = (double)ld(f, fdt, i) - ld(b, bdt, i);
        cc += dc * dc;
        unsigned long long h = mix(key + off + i);
        unsigned bkt = (unsigned)(((h >> 32) * (unsigned long long)k) >> 32);
        atomicAdd(&acc[bkt], h & 1 ? -dc : dc);
    }
    block_add(0, cc, 0, out, 2);
}

/* out[0] += Σ acc[i]·sk[i] */
__global__ void k_finish(const double *acc, const float *sk, unsigned k, double *out)
{
    double dot = 0;
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < k; i += gridDim.x * blockDim.x)
        dot += acc[i] * (double)sk[i];
    block_add(dot, 0, 0, out, 1);
}

typedef struct slot {
    cudaStream_t st;
    cudaEvent_t done;
    unsigned char *h[3], *d[3]; /* pinned host and device buffers: f, b, x */
    bool used;
} slot;

typedef struct gpu {
    slot s[2];
    int blocks;
    size_t cap; /* bytes of each buffer */
    double *dout, *acc;
    float *dsk;
    size_t acccap;
} gpu;

#define CK(call)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            rc = errf(eb, PTB_EIO, "CUDA: %s: %s", #call, cudaGetErrorString(e_));                 \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

extern "C" int audit_ckpt_cuda_available(ptb_errbuf *eb)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n < 1)
        return errf(eb, -ENOTSUP, "no CUDA device: %s",
                    e != cudaSuccess ? cudaGetErrorString(e) : "none found");
    return 0;
}

/* Copy a chunk's arrays (src[i], bytes[i]; bytes 0: none) into slot s's pinned buffers with up
 * to COPY_THREADS threads, each a contiguous share (reading the mapping is the host's part of the
 * work, and one thread alone is slower than the bus), then upload them on the slot's stream. */
#define COPY_THREADS 8
static cudaError_t put(slot *s, const void *const src[3], const size_t bytes[3])
{
    unsigned hw = std::thread::hardware_concurrency(), nt = hw < 1              ? 1
                                                            : hw > COPY_THREADS ? COPY_THREADS
                                                                                : hw;
    struct piece {
        void *dst;
        const void *src;
        size_t n;
    } pc[3 * COPY_THREADS];
    int np = 0;
    for (int i = 0; i < 3; i++)
        for (unsigned t = 0; bytes[i] && t < nt; t++) {
            size_t a = bytes[i] * t / nt, b = bytes[i] * (t + 1) / nt;
            if (b > a)
                pc[np++] = {s->h[i] + a, (const unsigned char *)src[i] + a, b - a};
        }
    std::thread th[3 * COPY_THREADS];
    int started = 0;
    /* pieces 1..np-1 on threads (as many as nt), the rest here */
    for (int p = 1; p < np && started < (int)nt - 1; p++) {
        try {
            th[started] = std::thread([=] {
                for (int q = p; q < np; q += (int)nt - 1)
                    memcpy(pc[q].dst, pc[q].src, pc[q].n);
            });
            started++;
        } catch (...) {
            break;
        }
    }
    /* the pieces no thread took: 0, and all when no thread started */
    for (int q = 0; q < np; q++)
        if (q == 0 || !started || (q - 1) % ((int)nt - 1) >= started)
            memcpy(pc[q].dst, pc[q].src, pc[q].n);
    for (int t = 0; t < started; t++)
        th[t].join();
    for (int i = 0; i < 3; i++) {
        cudaError_t e =
            bytes[i] ? cudaMemcpyAsync(s->d[i], s->h[i], bytes[i], cudaMemcpyHostToDevice, s->st)
                     : cudaSuccess;
        if (e != cudaSuccess)
            return e;
    }
    return cudaSuccess;
}

extern "C" int audit_ckpt_cuda_dots(const audit_ckpt_job *jobs, size_t n, ptb_errbuf *eb)
{
    int rc = 0, sms = 0, dev = 0;
    gpu g;
    memset(&g, 0, sizeof g);
    double *hout = (double *)calloc(n ? 3 * n : 1, sizeof *hout);
    size_t maxk = 0, next = 0;
    if (!hout)
        return errf(eb, PTB_ENOMEM, "out of memory");
    g.cap = CH * 4;
    for (size_t i = 0; i < n; i++) {
        if (!jobs[i].x && jobs[i].k < jobs[i].n && jobs[i].k > maxk)
            maxk = jobs[i].k;
        size_t es[3] = {dt_size(jobs[i].fdt), dt_size(jobs[i].bdt),
                        jobs[i].x ? dt_size(jobs[i].xdt) : 4};
        for (int e = 0; e < 3; e++)
            g.cap = CH * es[e] > g.cap ? CH * es[e] : g.cap;
    }
    CK(cudaGetDevice(&dev));
    CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    g.blocks = sms * 8;
    for (int s = 0; s < 2; s++) {
        CK(cudaStreamCreateWithFlags(&g.s[s].st, cudaStreamNonBlocking));
        CK(cudaEventCreateWithFlags(&g.s[s].done, cudaEventDisableTiming));
        for (int i = 0; i < 3; i++) {
            CK(cudaMallocHost((void **)&g.s[s].h[i], g.cap));
            CK(cudaMalloc((void **)&g.s[s].d[i], g.cap));
        }
    }
    CK(cudaMalloc((void **)&g.dout, (n ? 3 * n : 1) * sizeof(double)));
    CK(cudaMemset(g.dout, 0, (n ? 3 * n : 1) * sizeof(double)));
    CK(cudaDeviceSynchronize()); /* the streams do not wait for the default one */
    if (maxk) {
        CK(cudaMalloc((void **)&g.acc, maxk * sizeof(double)));
        CK(cudaMalloc((void **)&g.dsk, maxk * sizeof(float)));
    }
    for (size_t i = 0; i < n; i++) {
        const audit_ckpt_job *jb = &jobs[i];
        bool sk = !jb->x, bucket = sk && jb->k < jb->n;
        double *o = g.dout + 3 * i;
        if (bucket) { /* the buckets are shared by the job's chunks: both streams wait */
            for (int s = 0; s < 2; s++)
                CK(cudaStreamSynchronize(g.s[s].st));
            CK(cudaMemset(g.acc, 0, jb->k * sizeof(double)));
            CK(cudaDeviceSynchronize());
        }
        for (uint64_t off = 0; off < jb->n; off += CH) {
            slot *s = &g.s[next++ % 2];
            size_t c = jb->n - off < CH ? (size_t)(jb->n - off) : CH;
            const void *src[3] = {
                (const unsigned char *)jb->f + off * dt_size(jb->fdt),
                (const unsigned char *)jb->b + off * dt_size(jb->bdt),
                !sk ? (const void *)((const unsigned char *)jb->x + off * dt_size(jb->xdt))
                    : (const void *)(jb->sk + off)};
            const size_t bytes[3] = {c * dt_size(jb->fdt), c * dt_size(jb->bdt),
                                     !sk      ? c * dt_size(jb->xdt)
                                     : bucket ? 0
                                              : c * sizeof(float)};
            CK(cudaEventSynchronize(s->done));
            CK(put(s, src, bytes));
            if (bucket)
                k_sketch<<<g.blocks, THREADS, 0, s->st>>>(s->d[0], jb->fdt, s->d[1], jb->bdt, c,
                                                          off, jb->key, jb->k, g.acc, o);
            else
                k_dots<<<g.blocks, THREADS, 0, s->st>>>(s->d[0], jb->fdt, s->d[1], jb->bdt, s->d[2],
                                                        sk ? SAFETENSORS_F32 : jb->xdt, c,
                                                        sk ? 1 : 0, o);
            CK(cudaGetLastError());
            CK(cudaEventRecord(s->done, s->st));
        }
        if (bucket) {
            for (int s = 0; s < 2; s++)
                CK(cudaStreamSynchronize(g.s[s].st));
            CK(cudaMemcpy(g.dsk, jb->sk, jb->k * sizeof(float), cudaMemcpyHostToDevice));
            unsigned fb = (jb->k + THREADS - 1) / THREADS;
            if (fb > 1024)
                fb = 1024;
            k_finish<<<fb, THREADS>>>(g.acc, g.dsk, jb->k, o);
            CK(cudaGetLastError());
            CK(cudaDeviceSynchronize());
        }
    }
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(hout, g.dout, (n ? 3 * n : 1) * sizeof(double), cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < n; i++) {
        jobs[i].out->dot += hout[3 * i];
        jobs[i].out->cc += hout[3 * i + 1];
        if (jobs[i].x)
            jobs[i].out->ii += hout[3 * i + 2];
    }
done:
    for (int s = 0; s < 2; s++) {
        if (g.s[s].st)
            cudaStreamSynchronize(g.s[s].st), cudaStreamDestroy(g.s[s].st);
        if (g.s[s].done)
            cudaEventDestroy(g.s[s].done);
        for (int i = 0; i < 3; i++) {
            cudaFreeHost(g.s[s].h[i]);
            cudaFree(g.s[s].d[i]);
        }
    }
    cudaFree(g.dout), cudaFree(g.acc), cudaFree(g.dsk);
    free(hout);
    return rc;
}
