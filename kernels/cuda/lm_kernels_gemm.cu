/* The matrix products of the kernels (lm_kernels_int.cuh): cuBLAS, and cuBLASLt for the matmuls
 * with a bias.
 *
 * BF16 (lm_cuda.h): lm_cu_gemm() rounds both operands to bf16 (round to nearest even, as
 * torch.autocast) into the context's bf16 scratch, unless the caller has their bf16 copies
 * (lm_cu_gemm_ex), and multiplies in fp32.
 *
 * The matmuls with a bias add it in cuBLASLt's epilogue (one pass over the output, not two),
 * with an algorithm that splits no sum across blocks (reduction scheme NONE): as deterministic
 * as the rest. */
#include "lm_kernels_int.cuh"

/* ------------------------------------------------------------------ bf16 and cuBLAS */

__global__ void to_bf16_kernel(__nv_bfloat16 *out, const float *in, size_t n)
{
    FOR_EACH(i, n)
    out[i] = __float2bfloat16_rn(in[i]);
}

extern "C" int lm_cu_to_bf16(lm_cu_ctx *x, void *dst, const float *src, size_t n)
{
    to_bf16_kernel<<<blocks_for(n, 256), 256, 0, x->stream>>>((__nv_bfloat16 *)dst, src, n);
    LAUNCHED("to_bf16");
    return 0;
}

int lm_cu_gemm(lm_cu_ctx *x, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
               float alpha, const float *A, int lda, long long sA, size_t nA, const float *Bm,
               int ldb, long long sB, size_t nB, float beta, float *Cm, int ldc, long long sC,
               int batch)
{
    return lm_cu_gemm_ex(x, ta, tb, m, n, k, alpha, A, NULL, lda, sA, nA, Bm, NULL, ldb, sB, nB,
                         beta, Cm, ldc, sC, batch);
}

int lm_cu_gemm_ex(lm_cu_ctx *x, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                  float alpha, const float *A, const __nv_bfloat16 *A16, int lda, long long sA,
                  size_t nA, const float *Bm, const __nv_bfloat16 *B16, int ldb, long long sB,
                  size_t nB, float beta, float *Cm, int ldc, long long sC, int batch)
{
    if (x->prec == 0) {
        if (batch == 1)
            BL(cublasSgemm(x->blas, ta, tb, m, n, k, &alpha, A, lda, Bm, ldb, &beta, Cm, ldc));
        else
            BL(cublasSgemmStridedBatched(x->blas, ta, tb, m, n, k, &alpha, A, lda, sA, Bm, ldb, sB,
                                         &beta, Cm, ldc, sC, batch));
        return 0;
    }
    /* the operands that have no bf16 copy yet are rounded into the scratch */
    size_t na = A16 ? 0 : (nA + 63) & ~(size_t)63, nb = B16 ? 0 : nB; /* 128-byte aligned */
    if (na + nb)
        TRY(reserve(x, &x->bfs, &x->bfs_bytes, (na + nb) * sizeof(__nv_bfloat16)));
    const __nv_bfloat16 *a16 = A16, *b16 = B16;
    if (!A16) {
        to_bf16_kernel<<<blocks_for(nA, 256), 256, 0, x->stream>>>(x->bfs, A, nA);
        a16 = x->bfs;
    }
    if (!B16) {
        to_bf16_kernel<<<blocks_for(nB, 256), 256, 0, x->stream>>>(x->bfs + na, Bm, nB);
        b16 = x->bfs + na;
    }
    LAUNCHED("to_bf16");
    BL(cublasGemmStridedBatchedEx(x->blas, ta, tb, m, n, k, &alpha, a16, CUDA_R_16BF, lda, sA, b16,
                                  CUDA_R_16BF, ldb, sB, &beta, Cm, CUDA_R_32F, ldc, sC, batch,
                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return 0;
}

/* out^T (OC, BT) = weight (OC, C) . inp^T (C, BT) + bias, column-major, in cuBLASLt with the
 * bias in the epilogue; A, Bm fp32 (FP32) or bf16 (BF16). *done = 0 when cuBLASLt has no
 * algorithm for it (the caller then takes the plain path). */
int lm_cu_gemm_bias_lt(lm_cu_ctx *x, float *out, const void *weight, const void *inp,
                       const float *bias, int BT, int C, int OC, int *done)
{
    *done = 0;
    cudaDataType ab = x->prec ? CUDA_R_16BF : CUDA_R_32F, f32 = CUDA_R_32F;
    cublasLtMatmulDesc_t op = NULL;
    cublasLtMatrixLayout_t la = NULL, lb = NULL, lc = NULL;
    cublasLtMatmulPreference_t pref = NULL;
    cublasOperation_t tA = CUBLAS_OP_T, tB = CUBLAS_OP_N;
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    uint32_t red = CUBLASLT_REDUCTION_SCHEME_NONE;
    size_t ws = WORKSPACE_BYTES;
    cublasLtMatmulHeuristicResult_t h;
    int nh = 0;
    const float one = 1.0f, zero = 0.0f;
    cublasStatus_t st = cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &tA, sizeof tA);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tB, sizeof tB);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                            sizeof bias);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &f32,
                                            sizeof f32);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatrixLayoutCreate(&la, ab, C, OC, C);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatrixLayoutCreate(&lb, ab, C, BT, C);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, OC, BT, OC);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulPreferenceCreate(&pref);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                  &ws, sizeof ws);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK,
                                                  &red, sizeof red);
    if (st == CUBLAS_STATUS_SUCCESS &&
        cublasLtMatmulAlgoGetHeuristic(x->lt, op, la, lb, lc, lc, pref, 1, &h, &nh) ==
            CUBLAS_STATUS_SUCCESS &&
        nh > 0) {
        st = cublasLtMatmul(x->lt, op, &one, weight, la, inp, lb, &zero, out, lc, out, lc, &h.algo,
                            x->workspace, WORKSPACE_BYTES, x->stream);
        *done = st == CUBLAS_STATUS_SUCCESS;
    }
    if (pref)
        cublasLtMatmulPreferenceDestroy(pref);
    if (lc)
        cublasLtMatrixLayoutDestroy(lc);
    if (lb)
        cublasLtMatrixLayoutDestroy(lb);
    if (la)
        cublasLtMatrixLayoutDestroy(la);
    if (op)
        cublasLtMatmulDescDestroy(op);
    if (st != CUBLAS_STATUS_SUCCESS)
        return fail_blas(x, st, "cublasLtMatmul (bias epilogue)");
    return 0;
}
