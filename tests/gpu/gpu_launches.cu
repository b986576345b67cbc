// gpu_launches: a CUDA program with a known number of launches, for the GPU recording proofs
// (issue 5). Recorded with `ptb record`, the store must hold exactly the launches and copies it
// reports, with the names below.
//
// What it does, in order (counts are fixed; --scale N multiplies the eager launches):
//   - eager kernels on STREAMS streams: on each, EAGER_PER_STREAM x ptb_add, then
//     EAGER_PER_STREAM x ptb_scale, then one ptb_fill<int> and one ptb_extern_c (not mangled);
//   - a CUDA graph captured on one stream (ptb_graph_a, a memset node, ptb_graph_b,
//     ptb_graph_c) and launched GRAPH_LAUNCHES times: every launch runs its 3 kernels and the
//     memset again, each record carrying the graph's id;
//   - GEMMS cuBLAS SGEMMs of GEMM_N x GEMM_N (cuBLAS chooses its kernels: at least one launch
//     per call, names not ours);
//   - memcpys: H2D_PAGEABLE + H2D_PINNED host to device, D2H device to host, D2D device to
//     device; memsets: MEMSETS eager (plus the graph's);
// then prints one JSON object on stdout: what it launched, per kind and per kernel name (the
// demangled name CUPTI reports, and a base name to match on). Exit status 0 when every CUDA
// call succeeded, 1 otherwise (the JSON then has "error").
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    STREAMS = 4,
    EAGER_PER_STREAM = 25,
    GRAPH_LAUNCHES = 5,
    GRAPH_KERNELS = 3,
    GEMMS = 4,
    GEMM_N = 256,
    H2D_PAGEABLE = 3,
    H2D_PINNED = 3,
    D2H = 4,
    D2D = 2,
    MEMSETS = 2,
    N = 1 << 18, // floats per buffer (1 MiB)
};

__global__ void ptb_add(float *x, float v, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        x[i] += v;
}

__global__ void ptb_scale(float *x, float a, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        x[i] *= a;
}

template <typename T> __global__ void ptb_fill(T *x, T v, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        x[i] = v;
}

extern "C" __global__ void ptb_extern_c(float *x, int n)
{
    __shared__ float tile[256];
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    tile[threadIdx.x] = i < n ? x[i] : 0.0f;
    __syncthreads();
    if (i < n)
        x[i] = tile[blockDim.x - 1 - threadIdx.x];
}

__global__ void ptb_graph_a(float *x, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        x[i] += 1.0f;
}

__global__ void ptb_graph_b(float *x, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        x[i] *= 0.5f;
}

__global__ void ptb_graph_c(float *x, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        x[i] -= 0.25f;
}

static const char *failed_call;
static int failed_code;

#define CK(call)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess && !failed_call) {                                                   \
            failed_call = #call;                                                                   \
            failed_code = (int)e_;                                                                 \
        }                                                                                          \
    } while (0)

#define CKB(call)                                                                                  \
    do {                                                                                           \
        cublasStatus_t s_ = (call);                                                                \
        if (s_ != CUBLAS_STATUS_SUCCESS && !failed_call) {                                         \
            failed_call = #call;                                                                   \
            failed_code = (int)s_;                                                                 \
        }                                                                                          \
    } while (0)

static void json_kernel(const char *base, const char *signature, long launches, bool graph,
                        bool last)
{
    printf("    {\"base\": \"%s\", \"name\": \"%s\", \"launches\": %ld, \"graph\": %s}%s\n", base,
           signature, launches, graph ? "true" : "false", last ? "" : ",");
}

int main(int argc, char **argv)
{
    long scale = 1;
    if (argc == 3 && !strcmp(argv[1], "--scale"))
        scale = strtol(argv[2], NULL, 10);
    if (scale < 1 || scale > 100000) {
        fprintf(stderr, "usage: gpu_launches [--scale N]\n");
        return 2;
    }
    const long per_stream = EAGER_PER_STREAM * scale;
    const int threads = 256, blocks = (N + threads - 1) / threads;

    cudaDeviceProp prop;
    memset(&prop, 0, sizeof prop);
    int dev = 0;
    CK(cudaGetDevice(&dev));
    CK(cudaGetDeviceProperties(&prop, dev));

    float *d[STREAMS], *dg = NULL, *dd = NULL;
    cudaStream_t st[STREAMS];
    for (int s = 0; s < STREAMS; s++) {
        CK(cudaStreamCreateWithFlags(&st[s], cudaStreamNonBlocking));
        CK(cudaMalloc(&d[s], N * sizeof(float)));
    }
    int *di = NULL;
    CK(cudaMalloc(&di, N * sizeof(int)));
    CK(cudaMalloc(&dg, N * sizeof(float)));
    CK(cudaMalloc(&dd, N * sizeof(float)));
    float *pageable = (float *)calloc(N, sizeof(float));
    float *pinned = NULL;
    CK(cudaMallocHost(&pinned, N * sizeof(float)));
    if (!pageable)
        failed_call = "calloc";

    // memcpys host -> device, memsets
    long h2d = 0, d2h = 0, d2d = 0, memsets = 0;
    for (int i = 0; i < H2D_PAGEABLE; i++, h2d++)
        CK(cudaMemcpy(d[i % STREAMS], pageable, N * sizeof(float), cudaMemcpyHostToDevice));
    for (int i = 0; i < H2D_PINNED; i++, h2d++)
        CK(cudaMemcpyAsync(d[i % STREAMS], pinned, N * sizeof(float), cudaMemcpyHostToDevice,
                           st[i % STREAMS]));
    CK(cudaMemset(dg, 0, N * sizeof(float)));
    memsets++;
    CK(cudaMemsetAsync(dd, 0x7f, N * sizeof(float), st[0]));
    memsets++;
    CK(cudaDeviceSynchronize());

    // eager kernels on several streams
    for (int s = 0; s < STREAMS; s++) {
        for (long k = 0; k < per_stream; k++)
            ptb_add<<<blocks, threads, 0, st[s]>>>(d[s], 1.0f, N);
        for (long k = 0; k < per_stream; k++)
            ptb_scale<<<blocks, threads, 0, st[s]>>>(d[s], 0.5f, N);
        ptb_fill<int><<<blocks, threads, 0, st[s]>>>(di, s, N);
        ptb_extern_c<<<blocks, threads, 0, st[s]>>>(d[s], N);
        CK(cudaGetLastError());
    }
    CK(cudaDeviceSynchronize());

    // a graph: captured once, launched GRAPH_LAUNCHES times
    cudaGraph_t graph = NULL;
    cudaGraphExec_t exec = NULL;
    CK(cudaStreamBeginCapture(st[0], cudaStreamCaptureModeGlobal));
    ptb_graph_a<<<blocks, threads, 0, st[0]>>>(dg, N);
    CK(cudaMemsetAsync(dd, 0, N * sizeof(float), st[0]));
    ptb_graph_b<<<blocks, threads, 0, st[0]>>>(dg, N);
    ptb_graph_c<<<blocks, threads, 0, st[0]>>>(dg, N);
    CK(cudaStreamEndCapture(st[0], &graph));
    CK(cudaGraphInstantiate(&exec, graph, 0));
    for (int i = 0; i < GRAPH_LAUNCHES; i++)
        CK(cudaGraphLaunch(exec, st[0]));
    CK(cudaStreamSynchronize(st[0]));

    // cuBLAS
    cublasHandle_t h = NULL;
    CKB(cublasCreate(&h));
    float *A = NULL, *B = NULL, *C = NULL;
    size_t mat = (size_t)GEMM_N * GEMM_N * sizeof(float);
    CK(cudaMalloc(&A, mat));
    CK(cudaMalloc(&B, mat));
    CK(cudaMalloc(&C, mat));
    CK(cudaMemcpy(A, dg, mat, cudaMemcpyDeviceToDevice));
    d2d++;
    CK(cudaMemcpy(B, dd, mat, cudaMemcpyDeviceToDevice));
    d2d++;
    const float alpha = 1.0f, beta = 0.0f;
    if (h)
        for (int i = 0; i < GEMMS; i++)
            CKB(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, GEMM_N, GEMM_N, GEMM_N, &alpha, A, GEMM_N,
                            B, GEMM_N, &beta, C, GEMM_N));
    CK(cudaDeviceSynchronize());

    // device -> host
    for (int i = 0; i < D2H; i++, d2h++)
        CK(cudaMemcpy(i % 2 ? pinned : pageable, d[i % STREAMS], N * sizeof(float),
                      cudaMemcpyDeviceToHost));
    CK(cudaDeviceSynchronize());

    if (h)
        cublasDestroy(h);
    if (exec)
        cudaGraphExecDestroy(exec);
    if (graph)
        cudaGraphDestroy(graph);
    for (int s = 0; s < STREAMS; s++) {
        cudaFree(d[s]);
        cudaStreamDestroy(st[s]);
    }
    cudaFree(di);
    cudaFree(dg);
    cudaFree(dd);
    cudaFree(A);
    cudaFree(B);
    cudaFree(C);
    cudaFreeHost(pinned);
    free(pageable);

    long own_eager = STREAMS * (2 * per_stream + 2);
    long own_graph = (long)GRAPH_LAUNCHES * GRAPH_KERNELS;
    printf("{\n");
    printf("  \"program\": \"gpu_launches\",\n");
    printf("  \"pid\": %d,\n", (int)getpid());
    printf("  \"device\": {\"index\": %d, \"name\": \"%s\"},\n", dev, prop.name);
    printf("  \"scale\": %ld,\n", scale);
    printf("  \"streams\": %d,\n", STREAMS);
    printf("  \"kernels\": [\n");
    json_kernel("ptb_add", "ptb_add(float*, float, int)", STREAMS * per_stream, false, false);
    json_kernel("ptb_scale", "ptb_scale(float*, float, int)", STREAMS * per_stream, false, false);
    json_kernel("ptb_fill", "void ptb_fill<int>(int*, int, int)", STREAMS, false, false);
    json_kernel("ptb_extern_c", "ptb_extern_c", STREAMS, false, false);
    json_kernel("ptb_graph_a", "ptb_graph_a(float*, int)", GRAPH_LAUNCHES, true, false);
    json_kernel("ptb_graph_b", "ptb_graph_b(float*, int)", GRAPH_LAUNCHES, true, false);
    json_kernel("ptb_graph_c", "ptb_graph_c(float*, int)", GRAPH_LAUNCHES, true, true);
    printf("  ],\n");
    printf("  \"own_kernels\": {\"eager\": %ld, \"graph\": %ld, \"total\": %ld},\n", own_eager,
           own_graph, own_eager + own_graph);
    printf("  \"graph\": {\"launches\": %d, \"kernels_per_launch\": %d, "
           "\"memsets_per_launch\": 1},\n",
           GRAPH_LAUNCHES, GRAPH_KERNELS);
    printf("  \"cublas\": {\"sgemm_calls\": %d, \"n\": %d, \"kernels_at_least\": %d},\n", GEMMS,
           GEMM_N, GEMMS);
    printf("  \"memcpy\": {\"HtoD\": %ld, \"DtoH\": %ld, \"DtoD\": %ld, \"bytes_each\": %zu, "
           "\"DtoD_bytes_each\": %zu},\n",
           h2d, d2h, d2d, (size_t)N * sizeof(float), mat);
    printf("  \"memset\": {\"eager\": %ld, \"graph\": %d, \"total\": %ld},\n", memsets,
           GRAPH_LAUNCHES, memsets + GRAPH_LAUNCHES);
    printf("  \"kernel_records_at_least\": %ld,\n", own_eager + own_graph + GEMMS);
    if (failed_call)
        printf("  \"error\": {\"call\": \"%s\", \"code\": %d},\n", failed_call, failed_code);
    printf("  \"ok\": %s\n}\n", failed_call ? "false" : "true");
    return failed_call ? 1 : 0;
}
