/* The CUDA kernels of the reference model (lm_kernels.h), each the twin of a CPU reference
 * kernel of ../ref/lm_ref.c; the attention is in lm_kernels_attention.cu (the fused one in
 * lm_kernels_flash*.cu), the matrix products in lm_kernels_gemm.cu. After llm.c's
 * train_gpt2_fp32.cu and dev/cuda/ (Andrej Karpathy and contributors, MIT licence): the matmuls
 * through cuBLAS, one warp per row for the row-wise kernels. Unlike llm.c,
 * no kernel uses atomics: every sum across threads (bias and LayerNorm weight gradients, the
 * embedding gradients, the loss) is taken in an order fixed by the shapes alone, so the results
 * are the same bits run after run:
 *
 *   column sums (dbias, dweight/dbias of the LayerNorm): blocks of 32 columns x ROWS_PER_CHUNK
 *     rows write one partial per chunk (threads of a column summed in thread order), then one
 *     thread per column adds the chunks in order;
 *   dwte: a warp per 32 channels of one vocabulary row scans the tokens 32 at a time (ballot),
 *     adding the matching positions in increasing order; dwpe: one thread per (t, c) sums over b;
 *   the loss: one value per row (double), summed by one block in a fixed tree. */
#include "lm_kernels_int.cuh"

extern "C" int lm_cu_ctx_new(int prec, lm_cu_ctx **out, char *errmsg, size_t errlen)
{
    *out = NULL;
    lm_cu_ctx *x = (lm_cu_ctx *)calloc(1, sizeof *x);
    if (!x)
        return PTB_ENOMEM;
    x->prec = prec;
    int rc = 0;
    cudaError_t e;
    cublasStatus_t s;
    if ((e = cudaStreamCreateWithFlags(&x->stream, cudaStreamNonBlocking)) != cudaSuccess)
        rc = fail_cuda(x, e, "cudaStreamCreate");
    else if ((e = cudaMalloc(&x->workspace, WORKSPACE_BYTES)) != cudaSuccess)
        rc = fail_cuda(x, e, "cudaMalloc (cuBLAS workspace)");
    else if ((s = cublasCreate(&x->blas)) != CUBLAS_STATUS_SUCCESS)
        rc = fail_blas(x, s, "cublasCreate");
    else if ((s = cublasLtCreate(&x->lt)) != CUBLAS_STATUS_SUCCESS)
        rc = fail_blas(x, s, "cublasLtCreate");
    else if ((s = cublasSetStream(x->blas, x->stream)) != CUBLAS_STATUS_SUCCESS ||
             (s = cublasSetWorkspace(x->blas, x->workspace, WORKSPACE_BYTES)) !=
                 CUBLAS_STATUS_SUCCESS ||
             (s = cublasSetMathMode(x->blas, CUBLAS_DEFAULT_MATH)) != CUBLAS_STATUS_SUCCESS)
        rc = fail_blas(x, s, "cuBLAS setup");
    if (rc) {
        if (errmsg && errlen)
            snprintf(errmsg, errlen, "%s", x->err);
        lm_cu_ctx_free(x);
        return rc;
    }
    *out = x;
    return 0;
}

extern "C" void lm_cu_ctx_free(lm_cu_ctx *x)
{
    if (!x)
        return;
    if (x->stream)
        cudaStreamSynchronize(x->stream);
    if (x->blas)
        cublasDestroy(x->blas);
    if (x->lt)
        cublasLtDestroy(x->lt);
    cudaFree(x->workspace);
    cudaFree(x->scr);
    cudaFree(x->bfs);
    if (x->stream)
        cudaStreamDestroy(x->stream);
    free(x);
}

extern "C" int lm_cu_ctx_precision(const lm_cu_ctx *x)
{
    return x->prec;
}
extern "C" const char *lm_cu_ctx_errmsg(const lm_cu_ctx *x)
{
    return x->err;
}
extern "C" void *lm_cu_ctx_stream(lm_cu_ctx *x)
{
    return (void *)x->stream;
}

extern "C" int lm_cu_sync(lm_cu_ctx *x)
{
    CU(cudaStreamSynchronize(x->stream));
    CU(cudaGetLastError());
    return 0;
}

extern "C" int lm_cu_alloc(lm_cu_ctx *x, void **p, size_t n)
{
    *p = NULL;
    CU(cudaMalloc(p, n ? n : 1));
    cudaError_t e = cudaMemsetAsync(*p, 0, n, x->stream);
    if (e == cudaSuccess)
        e = cudaStreamSynchronize(x->stream);
    if (e != cudaSuccess) {
        cudaFree(*p);
        *p = NULL;
        return fail_cuda(x, e, "cudaMemset");
    }
    return 0;
}

extern "C" void lm_cu_free(void *p)
{
    cudaFree(p);
}

extern "C" int lm_cu_upload(lm_cu_ctx *x, void *dst, const void *src, size_t n)
{
    CU(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, x->stream));
    CU(cudaStreamSynchronize(x->stream));
    return 0;
}

extern "C" int lm_cu_download(lm_cu_ctx *x, void *dst, const void *src, size_t n)
{
    CU(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, x->stream));
    CU(cudaStreamSynchronize(x->stream));
    return 0;
}

extern "C" int lm_cu_zero(lm_cu_ctx *x, void *p, size_t n)
{
    CU(cudaMemsetAsync(p, 0, n, x->stream));
    return 0;
}

/* ------------------------------------------------------------------ deterministic column sums */

/* partial[chunk][col] = sum over the chunk's rows of a (rows, ncols) matrix: block (32, 8), the
 * 8 threads of a column summed in order. */
__global__ void colsum_partial_kernel(float *partial, const float *a, int rows, int ncols)
{
    __shared__ float s[8][33];
    int c = blockIdx.x * 32 + threadIdx.x, r0 = blockIdx.y * ROWS_PER_CHUNK;
    int r1 = min(rows, r0 + ROWS_PER_CHUNK);
    float acc = 0;
    if (c < ncols)
        for (int r = r0 + threadIdx.y; r < r1; r += 8)
            acc += a[(size_t)r * ncols + c];
    s[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && c < ncols) {
        float t = 0;
        for (int j = 0; j < 8; j++)
            t += s[j][threadIdx.x];
        partial[(size_t)blockIdx.y * ncols + c] = t;
    }
}

/* dst0[c] (c < n0) or dst1[c - n0] += the sum of partial[0..nchunk-1][c], in chunk order */
__global__ void colsum_finish_kernel(float *dst0, float *dst1, int n0, const float *partial,
                                     int nchunk, int ncols)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= ncols)
        return;
    float t = 0;
    for (int k = 0; k < nchunk; k++)
        t += partial[(size_t)k * ncols + c];
    if (c < n0)
        dst0[c] += t;
    else
        dst1[c - n0] += t;
}

/* ------------------------------------------------------------------ encoder */

__global__ void encoder_forward_kernel(float *out, const int32_t *tokens, const float *wte,
                                       const float *wpe, int T, int C, size_t n)
{
    FOR_EACH(i, n)
    {
        size_t bt = i / C;
        int c = (int)(i % C), t = (int)(bt % T);
        out[i] = wte[(size_t)tokens[bt] * C + c] + wpe[(size_t)t * C + c];
    }
}

extern "C" int lm_cu_encoder_forward(lm_cu_ctx *x, float *out, const int32_t *tokens,
                                     const float *wte, const float *wpe, int B, int T, int C)
{
    size_t n = (size_t)B * T * C;
    encoder_forward_kernel<<<blocks_for(n, 256), 256, 0, x->stream>>>(out, tokens, wte, wpe, T, C,
                                                                      n);
    LAUNCHED("encoder_forward");
    return 0;
}

/* dwte[v][c]: a warp per (v, 32 channels) reads the tokens 32 at a time; the lanes' ballot says
 * which of them are v, and each lane adds those positions of its channel in increasing order. */
__global__ void encoder_backward_wte_kernel(float *dwte, const float *dout, const int32_t *tokens,
                                            int BT, int C)
{
    int v = blockIdx.x, lane = threadIdx.x & 31;
    int c = (blockIdx.y * (blockDim.x / 32) + threadIdx.x / 32) * 32 + lane;
    if ((c - lane) >= C) /* the whole warp is past the channels */
        return;
    float acc = 0;
    for (int bt0 = 0; bt0 < BT; bt0 += 32) {
        int bt = bt0 + lane;
        unsigned hit = __ballot_sync(0xffffffffu, bt < BT && tokens[bt] == v);
        while (hit) {
            int j = __ffs(hit) - 1;
            hit &= hit - 1;
            if (c < C)
                acc += dout[(size_t)(bt0 + j) * C + c];
        }
    }
    if (c < C)
        dwte[(size_t)v * C + c] += acc;
}

__global__ void encoder_backward_wpe_kernel(float *dwpe, const float *dout, int B, int T, int C)
{
    size_t n = (size_t)T * C;
    FOR_EACH(i, n)
    {
        float acc = 0;
        for (int b = 0; b < B; b++)
            acc += dout[(size_t)b * n + i];
        dwpe[i] += acc;
    }
}

extern "C" int lm_cu_encoder_backward(lm_cu_ctx *x, float *dwte, float *dwpe, const float *dout,
                                      const int32_t *tokens, int B, int T, int C, int V)
{
    dim3 g((unsigned)V, (unsigned)((C + 255) / 256));
    encoder_backward_wte_kernel<<<g, 256, 0, x->stream>>>(dwte, dout, tokens, B * T, C);
    encoder_backward_wpe_kernel<<<blocks_for((size_t)T * C, 256), 256, 0, x->stream>>>(dwpe, dout,
                                                                                       B, T, C);
    LAUNCHED("encoder_backward");
    return 0;
}

/* ------------------------------------------------------------------ layernorm */

/* one warp per row */
__global__ void layernorm_forward_kernel(float *out, __nv_bfloat16 *out16, float *mean, float *rstd,
                                         const float *inp, const float *w, const float *b, int N,
                                         int C)
{
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x & 31;
    if (row >= N)
        return;
    const float *xr = inp + (size_t)row * C;
    float s = 0;
    for (int i = lane; i < C; i += 32)
        s += xr[i];
    float m = warp_sum(s) / (float)C;
    s = 0;
    for (int i = lane; i < C; i += 32) {
        float d = xr[i] - m;
        s += d * d;
    }
    float r = 1.0f / sqrtf(warp_sum(s) / (float)C + 1e-5f);
    for (int i = lane; i < C; i += 32) {
        float v = (xr[i] - m) * r * w[i] + b[i];
        if (out)
            out[(size_t)row * C + i] = v;
        if (out16)
            out16[(size_t)row * C + i] = __float2bfloat16_rn(v);
    }
    if (lane == 0) {
        mean[row] = m;
        rstd[row] = r;
    }
}

extern "C" int lm_cu_layernorm_forward_ex(lm_cu_ctx *x, float *out, void *out16, float *mean,
                                          float *rstd, const float *inp, const float *weight,
                                          const float *bias, int B, int T, int C)
{
    int N = B * T;
    layernorm_forward_kernel<<<(N + 7) / 8, 256, 0, x->stream>>>(out, (__nv_bfloat16 *)out16, mean,
                                                                 rstd, inp, weight, bias, N, C);
    LAUNCHED("layernorm_forward");
    return 0;
}

extern "C" int lm_cu_layernorm_forward(lm_cu_ctx *x, float *out, float *mean, float *rstd,
                                       const float *inp, const float *weight, const float *bias,
                                       int B, int T, int C)
{
    return lm_cu_layernorm_forward_ex(x, out, NULL, mean, rstd, inp, weight, bias, B, T, C);
}

/* dinp: one warp per row */
__global__ void layernorm_backward_dinp_kernel(float *dinp, __nv_bfloat16 *dinp16,
                                               const float *dout, const float *inp, const float *w,
                                               const float *mean, const float *rstd, int N, int C,
                                               int acc)
{
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x & 31;
    if (row >= N)
        return;
    const float *d = dout + (size_t)row * C, *xr = inp + (size_t)row * C;
    float *dx = dinp + (size_t)row * C;
    float m = mean[row], s = rstd[row], a = 0, b = 0;
    for (int i = lane; i < C; i += 32) {
        float norm = (xr[i] - m) * s, dnorm = w[i] * d[i];
        a += dnorm;
        b += dnorm * norm;
    }
    a = warp_sum(a) / (float)C;
    b = warp_sum(b) / (float)C;
    for (int i = lane; i < C; i += 32) {
        float norm = (xr[i] - m) * s, dnorm = w[i] * d[i];
        float g = (dnorm - a - norm * b) * s;
        g = acc ? dx[i] + g : g;
        dx[i] = g;
        if (dinp16)
            dinp16[(size_t)row * C + i] = __float2bfloat16_rn(g);
    }
}

/* partial[chunk][c] = sum of dout, partial[chunk][C + c] = sum of norm * dout */
__global__ void layernorm_backward_partial_kernel(float *partial, const float *dout,
                                                  const float *inp, const float *mean,
                                                  const float *rstd, int N, int C)
{
    __shared__ float sb[8][33], sw[8][33];
    int c = blockIdx.x * 32 + threadIdx.x, r0 = blockIdx.y * ROWS_PER_CHUNK;
    int r1 = min(N, r0 + ROWS_PER_CHUNK);
    float db = 0, dw = 0;
    if (c < C)
        for (int r = r0 + threadIdx.y; r < r1; r += 8) {
            size_t i = (size_t)r * C + c;
            float g = dout[i];
            db += g;
            dw += (inp[i] - mean[r]) * rstd[r] * g;
        }
    sb[threadIdx.y][threadIdx.x] = db;
    sw[threadIdx.y][threadIdx.x] = dw;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        float tb = 0, tw = 0;
        for (int j = 0; j < 8; j++) {
            tb += sb[j][threadIdx.x];
            tw += sw[j][threadIdx.x];
        }
        partial[(size_t)blockIdx.y * 2 * C + c] = tb;
        partial[(size_t)blockIdx.y * 2 * C + C + c] = tw;
    }
}

extern "C" int lm_cu_layernorm_backward_ex(lm_cu_ctx *x, float *dinp, void *dinp16, float *dweight,
                                           float *dbias, const float *dout, const float *inp,
                                           const float *weight, const float *mean,
                                           const float *rstd, int B, int T, int C, int acc)
{
    int N = B * T, nchunk = (N + ROWS_PER_CHUNK - 1) / ROWS_PER_CHUNK;
    TRY(reserve(x, &x->scr, &x->scr_bytes, (size_t)nchunk * 2 * C * sizeof(float)));
    layernorm_backward_dinp_kernel<<<(N + 7) / 8, 256, 0, x->stream>>>(
        dinp, (__nv_bfloat16 *)dinp16, dout, inp, weight, mean, rstd, N, C, acc);
    layernorm_backward_partial_kernel<<<dim3((C + 31) / 32, nchunk), dim3(32, 8), 0, x->stream>>>(
        x->scr, dout, inp, mean, rstd, N, C);
    colsum_finish_kernel<<<(2 * C + 255) / 256, 256, 0, x->stream>>>(dbias, dweight, C, x->scr,
                                                                     nchunk, 2 * C);
    LAUNCHED("layernorm_backward");
    return 0;
}

extern "C" int lm_cu_layernorm_backward(lm_cu_ctx *x, float *dinp, float *dweight, float *dbias,
                                        const float *dout, const float *inp, const float *weight,
                                        const float *mean, const float *rstd, int B, int T, int C)
{
    return lm_cu_layernorm_backward_ex(x, dinp, NULL, dweight, dbias, dout, inp, weight, mean, rstd,
                                       B, T, C, 1);
}

/* ------------------------------------------------------------------ matmul */

__global__ void add_bias_kernel(float *out, const float *bias, int OC, size_t n)
{
    FOR_EACH(i, n)
    out[i] += bias[i % OC];
}

extern "C" int lm_cu_matmul_forward_ex(lm_cu_ctx *x, float *out, const float *inp,
                                       const void *inp16, const float *weight, const void *weight16,
                                       const float *bias, int B, int T, int C, int OC)
{
    int BT = B * T;
    if (bias) { /* in cuBLASLt's epilogue, the operands in bf16 first in BF16 */
        const void *w = weight, *in = inp;
        if (x->prec) {
            size_t nw = weight16 ? 0 : ((size_t)OC * C + 63) & ~(size_t)63,
                   ni = inp16 ? 0 : (size_t)BT * C;
            if (nw + ni)
                TRY(reserve(x, &x->bfs, &x->bfs_bytes, (nw + ni) * sizeof(__nv_bfloat16)));
            w = weight16 ? weight16 : x->bfs;
            in = inp16 ? inp16 : x->bfs + nw;
            if (!weight16)
                TRY(lm_cu_to_bf16(x, x->bfs, weight, (size_t)OC * C));
            if (!inp16)
                TRY(lm_cu_to_bf16(x, x->bfs + nw, inp, (size_t)BT * C));
        }
        int done = 0;
        TRY(lm_cu_gemm_bias_lt(x, out, w, in, bias, BT, C, OC, &done));
        if (done)
            return 0;
    }
    /* out^T (OC, BT) = weight (OC, C) . inp^T (C, BT), column-major */
    TRY(lm_cu_gemm_ex(x, CUBLAS_OP_T, CUBLAS_OP_N, OC, BT, C, 1.0f, weight,
                      (const __nv_bfloat16 *)weight16, C, 0, (size_t)OC * C, inp,
                      (const __nv_bfloat16 *)inp16, C, 0, (size_t)BT * C, 0.0f, out, OC, 0, 1));
    if (bias) {
        size_t n = (size_t)BT * OC;
        add_bias_kernel<<<blocks_for(n, 256), 256, 0, x->stream>>>(out, bias, OC, n);
        LAUNCHED("add_bias");
    }
    return 0;
}

extern "C" int lm_cu_matmul_forward(lm_cu_ctx *x, float *out, const float *inp, const float *weight,
                                    const float *bias, int B, int T, int C, int OC)
{
    return lm_cu_matmul_forward_ex(x, out, inp, NULL, weight, NULL, bias, B, T, C, OC);
}

extern "C" int lm_cu_matmul_backward_ex(lm_cu_ctx *x, float *dinp, float *dweight, float *dbias,
                                        const float *dout, const void *dout16, const float *inp,
                                        const void *inp16, const float *weight,
                                        const void *weight16, int B, int T, int C, int OC, int acc)
{
    int BT = B * T;
    const __nv_bfloat16 *d16 = (const __nv_bfloat16 *)dout16, *i16 = (const __nv_bfloat16 *)inp16,
                        *w16 = (const __nv_bfloat16 *)weight16;
    /* dinp^T (C, BT) (+)= weight^T (C, OC) . dout^T (OC, BT) */
    TRY(lm_cu_gemm_ex(x, CUBLAS_OP_N, CUBLAS_OP_N, C, BT, OC, 1.0f, weight, w16, C, 0,
                      (size_t)OC * C, dout, d16, OC, 0, (size_t)BT * OC, acc ? 1.0f : 0.0f, dinp, C,
                      0, 1));
    /* dweight^T (C, OC) += inp^T (C, BT) . dout (BT, OC) */
    TRY(lm_cu_gemm_ex(x, CUBLAS_OP_N, CUBLAS_OP_T, C, OC, BT, 1.0f, inp, i16, C, 0, (size_t)BT * C,
                      dout, d16, OC, 0, (size_t)BT * OC, 1.0f, dweight, C, 0, 1));
    if (dbias) {
        int nchunk = (BT + ROWS_PER_CHUNK - 1) / ROWS_PER_CHUNK;
        TRY(reserve(x, &x->scr, &x->scr_bytes, (size_t)nchunk * OC * sizeof(float)));
        colsum_partial_kernel<<<dim3((OC + 31) / 32, nchunk), dim3(32, 8), 0, x->stream>>>(
            x->scr, dout, BT, OC);
        colsum_finish_kernel<<<(OC + 255) / 256, 256, 0, x->stream>>>(dbias, NULL, OC, x->scr,
                                                                      nchunk, OC);
        LAUNCHED("matmul_backward_bias");
    }
    return 0;
}

extern "C" int lm_cu_matmul_backward(lm_cu_ctx *x, float *dinp, float *dweight, float *dbias,
                                     const float *dout, const float *inp, const float *weight,
                                     int B, int T, int C, int OC)
{
    return lm_cu_matmul_backward_ex(x, dinp, dweight, dbias, dout, NULL, inp, NULL, weight, NULL, B,
                                    T, C, OC, 1);
}

/* ------------------------------------------------------------------ GELU, residual */

__global__ void gelu_forward_kernel(float *out, __nv_bfloat16 *out16, const float *inp, size_t n)
{
    FOR_EACH(i, n)
    {
        float xv = inp[i];
        float cube = 0.044715f * xv * xv * xv;
        float v = 0.5f * xv * (1.0f + tanhf(GELU_S * (xv + cube)));
        if (out)
            out[i] = v;
        if (out16)
            out16[i] = __float2bfloat16_rn(v);
    }
}

__global__ void gelu_backward_kernel(float *dinp, __nv_bfloat16 *dinp16, const float *inp,
                                     const float *dout, size_t n, int acc)
{
    FOR_EACH(i, n)
    {
        float xv = inp[i];
        float cube = 0.044715f * xv * xv * xv;
        float arg = GELU_S * (xv + cube);
        float th = tanhf(arg), ch = coshf(arg);
        float sech2 = 1.0f / (ch * ch);
        float g =
            0.5f * (1.0f + th) + xv * 0.5f * sech2 * GELU_S * (1.0f + 3.0f * 0.044715f * xv * xv);
        float v = acc ? dinp[i] + g * dout[i] : g * dout[i];
        dinp[i] = v;
        if (dinp16)
            dinp16[i] = __float2bfloat16_rn(v);
    }
}

__global__ void residual_forward_kernel(float *out, const float *a, const float *b, size_t n)
{
    FOR_EACH(i, n)
    out[i] = a[i] + b[i];
}

__global__ void residual_backward_kernel(float *da, float *db, const float *dout, size_t n)
{
    FOR_EACH(i, n)
    {
        da[i] += dout[i];
        db[i] += dout[i];
    }
}

extern "C" int lm_cu_gelu_forward_ex(lm_cu_ctx *x, float *out, void *out16, const float *inp, int N)
{
    gelu_forward_kernel<<<blocks_for((size_t)N, 256), 256, 0, x->stream>>>(
        out, (__nv_bfloat16 *)out16, inp, (size_t)N);
    LAUNCHED("gelu_forward");
    return 0;
}

extern "C" int lm_cu_gelu_forward(lm_cu_ctx *x, float *out, const float *inp, int N)
{
    return lm_cu_gelu_forward_ex(x, out, NULL, inp, N);
}

extern "C" int lm_cu_gelu_backward_ex(lm_cu_ctx *x, float *dinp, void *dinp16, const float *inp,
                                      const float *dout, int N, int acc)
{
    gelu_backward_kernel<<<blocks_for((size_t)N, 256), 256, 0, x->stream>>>(
        dinp, (__nv_bfloat16 *)dinp16, inp, dout, (size_t)N, acc);
    LAUNCHED("gelu_backward");
    return 0;
}

extern "C" int lm_cu_gelu_backward(lm_cu_ctx *x, float *dinp, const float *inp, const float *dout,
                                   int N)
{
    return lm_cu_gelu_backward_ex(x, dinp, NULL, inp, dout, N, 1);
}

extern "C" int lm_cu_residual_forward(lm_cu_ctx *x, float *out, const float *a, const float *b,
                                      int N)
{
    residual_forward_kernel<<<blocks_for((size_t)N, 256), 256, 0, x->stream>>>(out, a, b,
                                                                               (size_t)N);
    LAUNCHED("residual_forward");
    return 0;
}

extern "C" int lm_cu_residual_backward(lm_cu_ctx *x, float *da, float *db, const float *dout, int N)
{
    residual_backward_kernel<<<blocks_for((size_t)N, 256), 256, 0, x->stream>>>(da, db, dout,
                                                                                (size_t)N);
    LAUNCHED("residual_backward");
    return 0;
}

/* ------------------------------------------------------------------ loss */

/* one block (CE_THREADS) per row: probs, and the row's loss (double; 0 when not scored) */
#define CE_THREADS 128
__global__ void crossentropy_forward_kernel(float *probs, double *rowloss, const float *logits,
                                            const int32_t *targets, int V)
{
    __shared__ float red[CE_THREADS / 32];
    int row = blockIdx.x, lane = threadIdx.x & 31, w = threadIdx.x / 32;
    const float *l = logits + (size_t)row * V;
    float *p = probs + (size_t)row * V;
    float m = -INFINITY;
    for (int i = threadIdx.x; i < V; i += CE_THREADS)
        m = fmaxf(m, l[i]);
    m = warp_max(m);
    if (lane == 0)
        red[w] = m;
    __syncthreads();
    m = red[0];
    for (int j = 1; j < CE_THREADS / 32; j++)
        m = fmaxf(m, red[j]);
    __syncthreads();
    float s = 0;
    for (int i = threadIdx.x; i < V; i += CE_THREADS)
        s += expf(l[i] - m);
    s = warp_sum(s);
    if (lane == 0)
        red[w] = s;
    __syncthreads();
    s = 0;
    for (int j = 0; j < CE_THREADS / 32; j++)
        s += red[j];
    for (int i = threadIdx.x; i < V; i += CE_THREADS)
        p[i] = expf(l[i] - m) / s;
    if (threadIdx.x == 0) {
        int32_t tg = targets[row];
        double pt = tg >= 0 ? (double)(expf(l[tg] - m) / s) : 1.0;
        rowloss[row] = tg >= 0 ? -log(pt > 1e-30 ? pt : 1e-30) : 0.0;
    }
}

/* one block of 1024: out[0] = the sum of the row losses, out[1] = the count of scored rows */
__global__ void loss_sum_kernel(double *out, const double *rowloss, const int32_t *targets, int N)
{
    __shared__ double sl[1024];
    __shared__ int sc[1024];
    double a = 0;
    int c = 0;
    for (int i = threadIdx.x; i < N; i += 1024) {
        a += rowloss[i];
        c += targets[i] >= 0;
    }
    sl[threadIdx.x] = a;
    sc[threadIdx.x] = c;
    __syncthreads();
    for (int s = 512; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) {
            sl[threadIdx.x] += sl[threadIdx.x + s];
            sc[threadIdx.x] += sc[threadIdx.x + s];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        out[0] = sl[0];
        out[1] = (double)sc[0];
    }
}

extern "C" int lm_cu_crossentropy_forward_sum(lm_cu_ctx *x, float *probs, const float *logits,
                                              const int32_t *targets, int B, int T, int V,
                                              double *dsum)
{
    int N = B * T;
    TRY(reserve(x, &x->scr, &x->scr_bytes, (size_t)N * sizeof(double)));
    double *rowloss = (double *)x->scr;
    crossentropy_forward_kernel<<<N, CE_THREADS, 0, x->stream>>>(probs, rowloss, logits, targets,
                                                                 V);
    loss_sum_kernel<<<1, 1024, 0, x->stream>>>(dsum, rowloss, targets, N);
    LAUNCHED("crossentropy_forward");
    return 0;
}

extern "C" int lm_cu_crossentropy_forward(lm_cu_ctx *x, float *probs, const float *logits,
                                          const int32_t *targets, int B, int T, int V, int *n,
                                          float *loss)
{
    double *d = NULL, h[2];
    CU(cudaMalloc((void **)&d, 2 * sizeof(double)));
    int rc = lm_cu_crossentropy_forward_sum(x, probs, logits, targets, B, T, V, d);
    if (!rc)
        rc = lm_cu_download(x, h, d, sizeof h);
    cudaFree(d);
    if (rc)
        return rc;
    *n = (int)h[1];
    *loss = *n ? (float)(h[0] / *n) : 0.0f;
    return 0;
}

__global__ void crossentropy_backward_kernel(float *dlogits, __nv_bfloat16 *dlogits16,
                                             const float *probs, const int32_t *targets, int V,
                                             float inv, size_t n)
{
    FOR_EACH(i, n)
    {
        size_t bt = i / V;
        int v = (int)(i % V);
        int32_t tg = targets[bt];
        float d = tg < 0 ? 0.0f : (probs[i] - (v == tg ? 1.0f : 0.0f)) * inv;
        if (dlogits)
            dlogits[i] = d;
        if (dlogits16)
            dlogits16[i] = __float2bfloat16_rn(d);
    }
}

extern "C" int lm_cu_crossentropy_backward_ex(lm_cu_ctx *x, float *dlogits, void *dlogits16,
                                              const float *probs, const int32_t *targets, int B,
                                              int T, int V, int n)
{
    size_t N = (size_t)B * T * V;
    float inv = n ? 1.0f / (float)n : 0.0f;
    crossentropy_backward_kernel<<<blocks_for(N, 256), 256, 0, x->stream>>>(
        dlogits, (__nv_bfloat16 *)dlogits16, probs, targets, V, inv, N);
    LAUNCHED("crossentropy_backward");
    return 0;
}

extern "C" int lm_cu_crossentropy_backward(lm_cu_ctx *x, float *dlogits, const float *probs,
                                           const int32_t *targets, int B, int T, int V, int n)
{
    return lm_cu_crossentropy_backward_ex(x, dlogits, NULL, probs, targets, B, T, V, n);
}

/* ------------------------------------------------------------------ AdamW */

__global__ void adamw_kernel(float *p, __nv_bfloat16 *p16, const float *g, float *m, float *v,
                             size_t n, float lr, float b1, float b2, float eps, float wd, float c1,
                             float c2)
{
    FOR_EACH(i, n)
    {
        float gk = g[i];
        float mk = b1 * m[i] + (1.0f - b1) * gk;
        float vk = b2 * v[i] + (1.0f - b2) * gk * gk;
        m[i] = mk;
        v[i] = vk;
        float mh = mk / c1, vh = vk / c2;
        float pk = p[i];
        pk -= lr * (mh / (sqrtf(vh) + eps) + wd * pk);
        p[i] = pk;
        if (p16)
            p16[i] = __float2bfloat16_rn(pk);
    }
}

extern "C" int lm_cu_adamw_ex(lm_cu_ctx *x, float *params, void *params16, const float *grads,
                              float *m, float *v, size_t n, float lr, float beta1, float beta2,
                              float eps, float wd, float c1, float c2)
{
    adamw_kernel<<<blocks_for(n, 256), 256, 0, x->stream>>>(
        params, (__nv_bfloat16 *)params16, grads, m, v, n, lr, beta1, beta2, eps, wd, c1, c2);
    LAUNCHED("adamw");
    return 0;
}

extern "C" int lm_cu_adamw(lm_cu_ctx *x, float *params, const float *grads, float *m, float *v,
                           size_t n, float lr, float beta1, float beta2, float eps, float wd,
                           float c1, float c2)
{
    adamw_kernel<<<blocks_for(n, 256), 256, 0, x->stream>>>(params, NULL, grads, m, v, n, lr, beta1,
                                                            beta2, eps, wd, c1, c2);
    LAUNCHED("adamw");
    return 0;
}
