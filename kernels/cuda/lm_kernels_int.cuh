/* Internal to kernels/cuda/: the context that lm_kernels.h keeps opaque, error and launch
 * helpers, and the product helper that every matmul and the attention go through. */
#ifndef PTB_LM_KERNELS_INT_CUH
#define PTB_LM_KERNELS_INT_CUH

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "ptb_error.h"
}
#include "lm_kernels.h"

#define ROWS_PER_CHUNK 128 /* rows of one partial sum of the column reductions */
#define WORKSPACE_BYTES (32u << 20)
#define GELU_S 0.7978845608028654f /* sqrt(2 / pi), as the ref */

struct lm_cu_ctx {
    cudaStream_t stream;
    cublasHandle_t blas;
    cublasLtHandle_t lt; /* the matmuls with a bias (its epilogue); the same workspace */
    void *workspace;
    int prec;
    int flash_tx; /* FP32 fused attention: threads per row of a tile, 8 (0) or 16 */
    float *scr;   /* fp32 temporaries of one call */
    size_t scr_bytes;
    __nv_bfloat16 *bfs; /* bf16 copies of one product's operands */
    size_t bfs_bytes;
    char err[512];
};

/* ------------------------------------------------------------------ errors, memory */

inline int fail_cuda(lm_cu_ctx *x, cudaError_t e, const char *what)
{
    snprintf(x->err, sizeof x->err, "%s: %s (%s)", what, cudaGetErrorString(e),
             cudaGetErrorName(e));
    return e == cudaErrorMemoryAllocation ? PTB_ENOMEM : PTB_EIO;
}

inline int fail_blas(lm_cu_ctx *x, cublasStatus_t s, const char *what)
{
    snprintf(x->err, sizeof x->err, "%s: cuBLAS %s", what, cublasGetStatusString(s));
    return s == CUBLAS_STATUS_ALLOC_FAILED ? PTB_ENOMEM : PTB_EIO;
}

#define CU(call)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess)                                                                     \
            return fail_cuda(x, e_, #call);                                                        \
    } while (0)
#define BL(call)                                                                                   \
    do {                                                                                           \
        cublasStatus_t s_ = (call);                                                                \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                           \
            return fail_blas(x, s_, #call);                                                        \
    } while (0)
#define LAUNCHED(name)                                                                             \
    do {                                                                                           \
        cudaError_t e_ = cudaGetLastError();                                                       \
        if (e_ != cudaSuccess)                                                                     \
            return fail_cuda(x, e_, "launch of " name);                                            \
    } while (0)
#define TRY(call)                                                                                  \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_)                                                                                   \
            return rc_;                                                                            \
    } while (0)

/* *buf holds at least n bytes afterwards (grown, never shrunk; cudaFree waits for the device,
 * so work still queued on the old buffer finishes first). */
template <typename Tp> inline int reserve(lm_cu_ctx *x, Tp **buf, size_t *have, size_t n)
{
    if (*have >= n)
        return 0;
    if (*buf)
        CU(cudaFree(*buf));
    *buf = NULL;
    *have = 0;
    CU(cudaMalloc((void **)buf, n));
    *have = n;
    return 0;
}

/* ------------------------------------------------------------------ helpers */

inline unsigned blocks_for(size_t n, unsigned threads)
{
    size_t b = (n + threads - 1) / threads;
    return (unsigned)(b < 1 ? 1 : b > (1u << 20) ? (1u << 20) : b); /* grid-stride beyond */
}

#define FOR_EACH(i, n)                                                                             \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                        \
         i += (size_t)gridDim.x * blockDim.x)

__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* C = alpha op(A) op(B) + beta C, column-major as cuBLAS, `batch` products strided by sA, sB,
 * sC; nA and nB are the elements of A and B over the whole batch (what BF16 rounds to bf16). */
int lm_cu_gemm(lm_cu_ctx *x, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
               float alpha, const float *A, int lda, long long sA, size_t nA, const float *Bm,
               int ldb, long long sB, size_t nB, float beta, float *Cm, int ldc, long long sC,
               int batch);
/* The same, with bf16 copies of A and B (either may be NULL: rounded into the scratch then); in
 * FP32 the copies are not read. */
int lm_cu_gemm_ex(lm_cu_ctx *x, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                  float alpha, const float *A, const __nv_bfloat16 *A16, int lda, long long sA,
                  size_t nA, const float *Bm, const __nv_bfloat16 *B16, int ldb, long long sB,
                  size_t nB, float beta, float *Cm, int ldc, long long sC, int batch);
/* out^T (OC, BT) = weight (OC, C) . inp^T (C, BT) + bias (column-major) in cuBLASLt, the bias in
 * its epilogue; weight and inp fp32 (FP32) or bf16 (BF16). *done = 0 when cuBLASLt has no
 * algorithm for it (nothing queued then: the caller takes lm_cu_gemm and a bias kernel). */
int lm_cu_gemm_bias_lt(lm_cu_ctx *x, float *out, const void *weight, const void *inp,
                       const float *bias, int BT, int C, int OC, int *done);

#endif
