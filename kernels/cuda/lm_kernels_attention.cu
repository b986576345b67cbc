/* The attention of the reference model (lm_kernels.h), twin of lm_ref_attention_*: after
 * llm.c's train_gpt2_fp32.cu (MIT licence), q, k, v permuted to (B, NH, T, hs), the four
 * products through cuBLAS's strided batches (lm_cu_gemm, so rounded to bf16 in BF16), a causal
 * softmax kernel (one warp per row) between them. The products cover the whole T x T square;
 * the softmax writes zeros above the diagonal, so the masked part adds nothing. */
#include "lm_kernels_int.cuh"

/* ------------------------------------------------------------------ attention */

/* (B, T, 3, NH, hs) -> q, k, v each (B, NH, T, hs) */
__global__ void permute_kernel(float *q, float *k, float *v, const float *inp, int T, int NH,
                               int hs, size_t n)
{
    FOR_EACH(i, n)
    {
        int d = (int)(i % hs);
        size_t r = i / hs;
        int t = (int)(r % T);
        r /= T;
        int h = (int)(r % NH);
        size_t b = r / NH, C = (size_t)NH * hs;
        size_t src = (b * T + t) * 3 * C + (size_t)h * hs + d;
        q[i] = inp[src];
        k[i] = inp[src + C];
        v[i] = inp[src + 2 * C];
    }
}

/* dinp (B, T, 3C) (+)= dq, dk, dv (B, NH, T, hs) */
__global__ void permute_backward_kernel(float *dinp, const float *dq, const float *dk,
                                        const float *dv, int T, int NH, int hs, size_t n, int acc)
{
    FOR_EACH(i, n)
    {
        int d = (int)(i % hs);
        size_t r = i / hs;
        int t = (int)(r % T);
        r /= T;
        int h = (int)(r % NH);
        size_t b = r / NH, C = (size_t)NH * hs;
        size_t dst = (b * T + t) * 3 * C + (size_t)h * hs + d;
        if (acc) {
            dinp[dst] += dq[i];
            dinp[dst + C] += dk[i];
            dinp[dst + 2 * C] += dv[i];
        } else {
            dinp[dst] = dq[i];
            dinp[dst + C] = dk[i];
            dinp[dst + 2 * C] = dv[i];
        }
    }
}

/* (B, NH, T, hs) <-> (B, T, NH*hs), i indexing the first, o the second. dir 0: dst[o] = src[i]
 * (the attention's output); dir 1: dst[i] = src[o] (its gradient, the other way) */
__global__ void unpermute_kernel(float *dst, const float *src, int T, int NH, int hs, size_t n,
                                 int dir)
{
    FOR_EACH(i, n)
    {
        int d = (int)(i % hs);
        size_t r = i / hs;
        int t = (int)(r % T);
        r /= T;
        int h = (int)(r % NH);
        size_t b = r / NH;
        size_t o = (b * T + t) * NH * hs + (size_t)h * hs + d;
        if (dir == 0)
            dst[o] = src[i];
        else
            dst[i] = src[o];
    }
}

/* one warp per row (bh, t) of the scaled scores: att = softmax over t2 <= t, 0 after */
__global__ void softmax_forward_kernel(float *att, const float *pre, int rows, int T)
{
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x & 31;
    if (row >= rows)
        return;
    int t = row % T;
    const float *p = pre + (size_t)row * T;
    float *a = att + (size_t)row * T;
    float m = -INFINITY;
    for (int i = lane; i <= t; i += 32)
        m = fmaxf(m, p[i]);
    m = warp_max(m);
    float s = 0;
    for (int i = lane; i <= t; i += 32)
        s += expf(p[i] - m);
    float inv = 1.0f / warp_sum(s);
    for (int i = lane; i < T; i += 32)
        a[i] = i <= t ? expf(p[i] - m) * inv : 0.0f;
}

/* dpre[t3] = att[t3] (datt[t3] - sum_t2 att[t2] datt[t2]) for t3 <= t, else 0 */
__global__ void softmax_backward_kernel(float *dpre, const float *att, const float *datt, int rows,
                                        int T)
{
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x & 31;
    if (row >= rows)
        return;
    int t = row % T;
    const float *a = att + (size_t)row * T, *da = datt + (size_t)row * T;
    float *dp = dpre + (size_t)row * T;
    float s = 0;
    for (int i = lane; i <= t; i += 32)
        s += a[i] * da[i];
    s = warp_sum(s);
    for (int i = lane; i < T; i += 32)
        dp[i] = i <= t ? a[i] * (da[i] - s) : 0.0f;
}

extern "C" int lm_cu_attention_forward(lm_cu_ctx *x, float *out, float *preatt, float *att,
                                       const float *inp, int B, int T, int C, int NH)
{
    const int hs = C / NH, BH = B * NH;
    const size_t n = (size_t)B * T * C, nat = (size_t)BH * T * T;
    const float scale = 1.0f / sqrtf((float)hs);
    TRY(reserve(x, &x->scr, &x->scr_bytes, 4 * n * sizeof(float)));
    float *q = x->scr, *k = q + n, *v = k + n, *y = v + n;
    permute_kernel<<<blocks_for(n, 256), 256, 0, x->stream>>>(q, k, v, inp, T, NH, hs, n);
    LAUNCHED("permute");
    /* preatt (T, T) per head = scale q k^T: column-major preatt^T = k . q^T */
    TRY(lm_cu_gemm(x, CUBLAS_OP_T, CUBLAS_OP_N, T, T, hs, scale, k, hs, (long long)T * hs, n, q, hs,
                   (long long)T * hs, n, 0.0f, preatt, T, (long long)T * T, BH));
    softmax_forward_kernel<<<(unsigned)((BH * (size_t)T + 7) / 8), 256, 0, x->stream>>>(att, preatt,
                                                                                        BH * T, T);
    LAUNCHED("softmax_forward");
    /* y (T, hs) = att (T, T) . v (T, hs): y^T = v^T . att^T */
    TRY(lm_cu_gemm(x, CUBLAS_OP_N, CUBLAS_OP_N, hs, T, T, 1.0f, v, hs, (long long)T * hs, n, att, T,
                   (long long)T * T, nat, 0.0f, y, hs, (long long)T * hs, BH));
    unpermute_kernel<<<blocks_for(n, 256), 256, 0, x->stream>>>(out, y, T, NH, hs, n, 0);
    LAUNCHED("unpermute");
    return 0;
}

extern "C" int lm_cu_attention_backward_ex(lm_cu_ctx *x, float *dinp, float *dpreatt, float *datt,
                                           const float *dout, const float *inp, const float *att,
                                           int B, int T, int C, int NH, int acc)
{
    const int hs = C / NH, BH = B * NH;
    const size_t n = (size_t)B * T * C, nat = (size_t)BH * T * T;
    const long long sh = (long long)T * hs, st = (long long)T * T;
    const float scale = 1.0f / sqrtf((float)hs);
    TRY(reserve(x, &x->scr, &x->scr_bytes, 7 * n * sizeof(float)));
    float *q = x->scr, *k = q + n, *v = k + n, *dy = v + n, *dq = dy + n, *dk = dq + n,
          *dv = dk + n;
    permute_kernel<<<blocks_for(n, 256), 256, 0, x->stream>>>(q, k, v, inp, T, NH, hs, n);
    unpermute_kernel<<<blocks_for(n, 256), 256, 0, x->stream>>>(dy, dout, T, NH, hs, n, 1);
    LAUNCHED("permute");
    /* datt (T, T) = dy (T, hs) . v^T: column-major datt^T = v . dy^T */
    TRY(lm_cu_gemm(x, CUBLAS_OP_T, CUBLAS_OP_N, T, T, hs, 1.0f, v, hs, sh, n, dy, hs, sh, n, 0.0f,
                   datt, T, st, BH));
    /* dv (T, hs) = att^T (T, T) . dy (T, hs): dv^T = dy^T . att */
    TRY(lm_cu_gemm(x, CUBLAS_OP_N, CUBLAS_OP_T, hs, T, T, 1.0f, dy, hs, sh, n, att, T, st, nat,
                   0.0f, dv, hs, sh, BH));
    softmax_backward_kernel<<<(unsigned)((BH * (size_t)T + 7) / 8), 256, 0, x->stream>>>(
        dpreatt, att, datt, BH * T, T);
    LAUNCHED("softmax_backward");
    /* dq (T, hs) = scale dpre (T, T) . k (T, hs): dq^T = k^T . dpre^T */
    TRY(lm_cu_gemm(x, CUBLAS_OP_N, CUBLAS_OP_N, hs, T, T, scale, k, hs, sh, n, dpreatt, T, st, nat,
                   0.0f, dq, hs, sh, BH));
    /* dk (T, hs) = scale dpre^T . q: dk^T = q^T . dpre */
    TRY(lm_cu_gemm(x, CUBLAS_OP_N, CUBLAS_OP_T, hs, T, T, scale, q, hs, sh, n, dpreatt, T, st, nat,
                   0.0f, dk, hs, sh, BH));
    permute_backward_kernel<<<blocks_for(n, 256), 256, 0, x->stream>>>(dinp, dq, dk, dv, T, NH, hs,
                                                                       n, acc);
    LAUNCHED("permute_backward");
    return 0;
}

extern "C" int lm_cu_attention_backward(lm_cu_ctx *x, float *dinp, float *dpreatt, float *datt,
                                        const float *dout, const float *inp, const float *att,
                                        int B, int T, int C, int NH)
{
    return lm_cu_attention_backward_ex(x, dinp, dpreatt, datt, dout, inp, att, B, T, C, NH, 1);
}
