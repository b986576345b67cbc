/* The fused attention's FP32 kernels (lm_kernels_flash.cu says what they compute): plain fp32
 * FMA on CUDA cores (no TF32), the operands in shared memory in fp32. */
#include "lm_kernels_flash.cuh"

/* ------------------------------------------------------------------ FP32 products */

/* Thread (ty, tx) = (tid / TX, tid % TX) of 16 TX threads owns rows ty + 16 i (i < 4) of a
 * tile; of a 64-wide score tile the CN = 64/TX columns tx + TX j, of an HS-wide output tile
 * NC = HS/TX columns, f32_col(tx, c): 4 consecutive ones every 4 TX (16-byte loads without bank
 * conflicts). TX = 8 (128 threads, 4 x 8 scores each) in the model; TX = 16 (256 threads, 4 x 4)
 * for comparison (lm_cu_ctx_flash_layout). */
template <int NC, int TX> __device__ __forceinline__ int f32_col(int tx, int c)
{
    return NC >= 4 ? (c / 4) * (4 * TX) + tx * 4 + (c % 4) : tx * NC + c;
}

/* acc[i][j] += sum_k A[ty + 16 i][k] B[tx + TX j][k], k < K (A, B row-major, strides lda, ldb
 * multiples of 4 floats); every acc summed over k in order */
template <int K, int TX>
__device__ __forceinline__ void f32_nt(float acc[4][FT / TX], const float *A, int lda,
                                       const float *B, int ldb, int ty, int tx)
{
    constexpr int CN = FT / TX;
#pragma unroll 1
    for (int k = 0; k < K; k += 4) {
        float4 a[4], b[CN];
#pragma unroll
        for (int i = 0; i < 4; i++)
            a[i] = *(const float4 *)&A[(ty + 16 * i) * lda + k];
#pragma unroll
        for (int j = 0; j < CN; j++)
            b[j] = *(const float4 *)&B[(tx + TX * j) * ldb + k];
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int j = 0; j < CN; j++) {
                float s = acc[i][j];
                s = fmaf(a[i].x, b[j].x, s);
                s = fmaf(a[i].y, b[j].y, s);
                s = fmaf(a[i].z, b[j].z, s);
                s = fmaf(a[i].w, b[j].w, s);
                acc[i][j] = s;
            }
    }
}

/* acc[i][c] += sum_k A[ty + 16 i][k] B[k][f32_col(tx, c)], k < FT */
template <int NC, int TX>
__device__ __forceinline__ void f32_nn(float acc[4][NC], const float *A, int lda, const float *B,
                                       int ldb, int ty, int tx)
{
#pragma unroll 2
    for (int k = 0; k < FT; k += 4) {
        float4 a4[4];
#pragma unroll
        for (int i = 0; i < 4; i++)
            a4[i] = *(const float4 *)&A[(ty + 16 * i) * lda + k];
#pragma unroll
        for (int kk = 0; kk < 4; kk++) {
            float b[NC];
            const float *row = B + (k + kk) * ldb;
            if constexpr (NC >= 4) {
#pragma unroll
                for (int c = 0; c < NC; c += 4) {
                    float4 v = *(const float4 *)&row[f32_col<NC, TX>(tx, c)];
                    b[c] = v.x;
                    b[c + 1] = v.y;
                    b[c + 2] = v.z;
                    b[c + 3] = v.w;
                }
            } else if constexpr (NC == 2) {
                float2 v = *(const float2 *)&row[tx * 2];
                b[0] = v.x;
                b[1] = v.y;
            } else {
                b[0] = row[tx];
            }
#pragma unroll
            for (int i = 0; i < 4; i++) {
                float a = kk == 0 ? a4[i].x : kk == 1 ? a4[i].y : kk == 2 ? a4[i].z : a4[i].w;
#pragma unroll
                for (int c = 0; c < NC; c++)
                    acc[i][c] = fmaf(a, b[c], acc[i][c]);
            }
        }
    }
}

/* acc[i][c] += sum_k At[k][ty + 16 i] B[k][f32_col(tx, c)], k < FT (A given transposed) */
template <int NC, int TX>
__device__ __forceinline__ void f32_tn(float acc[4][NC], const float *At, int lda, const float *B,
                                       int ldb, int ty, int tx)
{
#pragma unroll 4
    for (int k = 0; k < FT; k++) {
        float a[4], b[NC];
        const float *row = B + k * ldb;
#pragma unroll
        for (int i = 0; i < 4; i++)
            a[i] = At[k * lda + ty + 16 * i];
        if constexpr (NC >= 4) {
#pragma unroll
            for (int c = 0; c < NC; c += 4) {
                float4 v = *(const float4 *)&row[f32_col<NC, TX>(tx, c)];
                b[c] = v.x;
                b[c + 1] = v.y;
                b[c + 2] = v.z;
                b[c + 3] = v.w;
            }
        } else {
#pragma unroll
            for (int c = 0; c < NC; c++)
                b[c] = row[f32_col<NC, TX>(tx, c)];
        }
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int c = 0; c < NC; c++)
                acc[i][c] = fmaf(a[i], b[c], acc[i][c]);
    }
}

/* max / sum over the TX threads of a row (lanes tx) */
template <int TX> __device__ __forceinline__ float maxtx(float v)
{
    for (int o = TX / 2; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
template <int TX> __device__ __forceinline__ float sumtx(float v)
{
    for (int o = TX / 2; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* ------------------------------------------------------------------ FP32 kernels */

template <int HS, int TX> struct F32 {
    static constexpr int LD = HS + 4; /* row stride of the (FT, HS) tiles */
    static constexpr int LP = FT + 4; /* of the (FT, FT) tiles */
    static constexpr int NC = HS / TX, CN = FT / TX, NTH = 16 * TX;
};

/* q, k, v of (b, h): inp + b*T*3C + h*hs (+C, +2C), rows 3C apart */
template <int HS, int TX>
__global__ void __launch_bounds__(16 * TX)
    flash_fwd_f32(float *out, float *lse, const float *inp, int T, int NH, int hs, float scale2,
                  int vec)
{
    constexpr int LD = F32<HS, TX>::LD, LP = F32<HS, TX>::LP, NC = F32<HS, TX>::NC,
                  CN = F32<HS, TX>::CN, NTH = F32<HS, TX>::NTH;
    extern __shared__ float4 smem4[];
    float *Qs = (float *)smem4, *Ks = Qs + FT * LD, *Vs = Ks + FT * LD, *Ps = Vs + FT * LD;
    const int bh = blockIdx.x, b = bh / NH, h = bh % NH, C = NH * hs;
    const int q0 = (int)(gridDim.y - 1 - blockIdx.y) * FT; /* the longest first */
    const int ty = threadIdx.x / TX, tx = threadIdx.x % TX;
    const size_t C3 = 3 * (size_t)C;
    const float *base = inp + (size_t)b * T * C3 + (size_t)h * hs;
    tile_load<HS, NTH>(Qs, LD, base, C3, q0, T, hs, vec);
    float m[4], l[4], o[4][NC];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        m[i] = -INFINITY;
        l[i] = 0;
#pragma unroll
        for (int c = 0; c < NC; c++)
            o[i][c] = 0;
    }
    for (int k0 = 0; k0 <= q0; k0 += FT) {
        __syncthreads();
        tile_load<HS, NTH>(Ks, LD, base + C, C3, k0, T, hs, vec);
        tile_load<HS, NTH>(Vs, LD, base + 2 * C, C3, k0, T, hs, vec);
        __syncthreads();
        float s[4][CN] = {};
        f32_nt<HS, TX>(s, Qs, LD, Ks, LD, ty, tx);
#pragma unroll
        for (int i = 0; i < 4; i++) {
            int row = q0 + ty + 16 * i;
            float mx = -INFINITY;
#pragma unroll
            for (int j = 0; j < CN; j++) {
                int col = k0 + tx + TX * j;
                s[i][j] = col <= row && col < T ? s[i][j] * scale2 : -INFINITY;
                mx = fmaxf(mx, s[i][j]);
            }
            /* finite: key k0 <= row is in every row's tile */
            float mn = fmaxf(m[i], maxtx<TX>(mx)), alpha = exp2f(m[i] - mn);
            m[i] = mn;
            l[i] *= alpha;
#pragma unroll
            for (int c = 0; c < NC; c++)
                o[i][c] *= alpha;
#pragma unroll
            for (int j = 0; j < CN; j++) {
                float p = exp2f(s[i][j] - mn);
                l[i] += p;
                Ps[(ty + 16 * i) * LP + tx + TX * j] = p;
            }
        }
        __syncthreads();
        f32_nn<NC, TX>(o, Ps, LP, Vs, LD, ty, tx);
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float lt = sumtx<TX>(l[i]);
        int row = q0 + ty + 16 * i;
        if (row >= T)
            continue;
        float inv = 1.0f / lt;
        float *op = out + ((size_t)b * T + row) * C + (size_t)h * hs;
#pragma unroll
        for (int c = 0; c < NC; c++) {
            int d = f32_col<NC, TX>(tx, c);
            if (d < hs)
                op[d] = o[i][c] * inv;
        }
        if (tx == 0)
            lse[(size_t)bh * T + row] = m[i] + log2f(lt);
    }
}

template <int HS, int TX>
__global__ void __launch_bounds__(16 * TX)
    flash_bwd_dkdv_f32(float *dinp, float *part, const float *dout, const float *inp,
                       const float *lse, const float *Dd, int T, int NH, int hs, float scale,
                       float scale2, int vec, int acc)
{
    constexpr int LD = F32<HS, TX>::LD, LP = F32<HS, TX>::LP, NC = F32<HS, TX>::NC,
                  CN = F32<HS, TX>::CN, NTH = F32<HS, TX>::NTH;
    extern __shared__ float4 smem4[];
    float *Ks = (float *)smem4, *Vs = Ks + FT * LD, *Qs = Vs + FT * LD, *dOs = Qs + FT * LD,
          *PTs = dOs + FT * LD, *dSTs = PTs + FT * LP, *ls = dSTs + FT * LP, *Ds = ls + FT;
    const int bh = blockIdx.x, b = bh / NH, h = bh % NH, C = NH * hs;
    const int k0 = (int)blockIdx.y * FT; /* the first keys have the most queries */
    const int ty = threadIdx.x / TX, tx = threadIdx.x % TX;
    const size_t C3 = 3 * (size_t)C;
    const float *base = inp + (size_t)b * T * C3 + (size_t)h * hs;
    const float *dbase = dout + (size_t)b * T * C + (size_t)h * hs;
    tile_load<HS, NTH>(Ks, LD, base + C, C3, k0, T, hs, vec);
    tile_load<HS, NTH>(Vs, LD, base + 2 * C, C3, k0, T, hs, vec);
    float dk[4][NC] = {}, dv[4][NC] = {};
    for (int q0 = k0; q0 < T; q0 += FT) {
        __syncthreads();
        tile_load<HS, NTH>(Qs, LD, base, C3, q0, T, hs, vec);
        tile_load<HS, NTH>(dOs, LD, dbase, C, q0, T, hs, vec);
        row_load(ls, lse + (size_t)bh * T, q0, T);
        row_load(Ds, Dd + (size_t)bh * T, q0, T);
        __syncthreads();
        /* transposed: rows are keys, columns queries */
        float st[4][CN] = {}, dpt[4][CN] = {};
        f32_nt<HS, TX>(st, Ks, LD, Qs, LD, ty, tx);
        f32_nt<HS, TX>(dpt, Vs, LD, dOs, LD, ty, tx);
#pragma unroll
        for (int i = 0; i < 4; i++) {
            int key = k0 + ty + 16 * i;
#pragma unroll
            for (int j = 0; j < CN; j++) {
                int qi = tx + TX * j, q = q0 + qi;
                float p = key <= q && q < T ? exp2f(st[i][j] * scale2 - ls[qi]) : 0.0f;
                PTs[(ty + 16 * i) * LP + qi] = p;
                dSTs[(ty + 16 * i) * LP + qi] = p * (dpt[i][j] - Ds[qi]);
            }
        }
        __syncthreads();
        f32_nn<NC, TX>(dv, PTs, LP, dOs, LD, ty, tx);
        f32_nn<NC, TX>(dk, dSTs, LP, Qs, LD, ty, tx);
        if (part) { /* this key tile's share of dq (unscaled): part[bh][k0 / FT][q][0..HS) */
            float dq[4][NC] = {};
            f32_tn<NC, TX>(dq, dSTs, LP, Ks, LD, ty, tx);
            float *pp = part + ((size_t)bh * gridDim.y + blockIdx.y) * T * HS;
#pragma unroll
            for (int i = 0; i < 4; i++) {
                int q = q0 + ty + 16 * i;
                if (q < T)
#pragma unroll
                    for (int c = 0; c < NC; c++)
                        pp[(size_t)q * HS + f32_col<NC, TX>(tx, c)] = dq[i][c];
            }
        }
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        int key = k0 + ty + 16 * i;
        if (key >= T)
            continue;
        size_t o = ((size_t)b * T + key) * C3 + (size_t)h * hs;
#pragma unroll
        for (int c = 0; c < NC; c++) {
            int d = f32_col<NC, TX>(tx, c);
            if (d < hs) {
                put(dinp, NULL, o + C + d, dk[i][c] * scale, acc);
                put(dinp, NULL, o + 2 * C + d, dv[i][c], acc);
            }
        }
    }
}

template <int HS, int TX>
__global__ void __launch_bounds__(16 * TX)
    flash_bwd_dq_f32(float *dinp, const float *dout, const float *inp, const float *lse,
                     const float *Dd, int T, int NH, int hs, float scale, float scale2, int vec,
                     int acc)
{
    constexpr int LD = F32<HS, TX>::LD, LP = F32<HS, TX>::LP, NC = F32<HS, TX>::NC,
                  CN = F32<HS, TX>::CN, NTH = F32<HS, TX>::NTH;
    extern __shared__ float4 smem4[];
    float *Qs = (float *)smem4, *dOs = Qs + FT * LD, *Ks = dOs + FT * LD, *Vs = Ks + FT * LD,
          *dSs = Vs + FT * LD;
    const int bh = blockIdx.x, b = bh / NH, h = bh % NH, C = NH * hs;
    const int q0 = (int)(gridDim.y - 1 - blockIdx.y) * FT;
    const int ty = threadIdx.x / TX, tx = threadIdx.x % TX;
    const size_t C3 = 3 * (size_t)C;
    const float *base = inp + (size_t)b * T * C3 + (size_t)h * hs;
    tile_load<HS, NTH>(Qs, LD, base, C3, q0, T, hs, vec);
    tile_load<HS, NTH>(dOs, LD, dout + (size_t)b * T * C + (size_t)h * hs, C, q0, T, hs, vec);
    float lr[4], dr[4], dq[4][NC] = {};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        int row = q0 + ty + 16 * i;
        lr[i] = row < T ? lse[(size_t)bh * T + row] : 0.0f;
        dr[i] = row < T ? Dd[(size_t)bh * T + row] : 0.0f;
    }
    for (int k0 = 0; k0 <= q0; k0 += FT) {
        __syncthreads();
        tile_load<HS, NTH>(Ks, LD, base + C, C3, k0, T, hs, vec);
        tile_load<HS, NTH>(Vs, LD, base + 2 * C, C3, k0, T, hs, vec);
        __syncthreads();
        float s[4][CN] = {}, dp[4][CN] = {};
        f32_nt<HS, TX>(s, Qs, LD, Ks, LD, ty, tx);
        f32_nt<HS, TX>(dp, dOs, LD, Vs, LD, ty, tx);
#pragma unroll
        for (int i = 0; i < 4; i++) {
            int row = q0 + ty + 16 * i;
#pragma unroll
            for (int j = 0; j < CN; j++) {
                int col = k0 + tx + TX * j;
                float p = col <= row && row < T ? exp2f(s[i][j] * scale2 - lr[i]) : 0.0f;
                dSs[(ty + 16 * i) * LP + tx + TX * j] = p * (dp[i][j] - dr[i]);
            }
        }
        __syncthreads();
        f32_nn<NC, TX>(dq, dSs, LP, Ks, LD, ty, tx);
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        int row = q0 + ty + 16 * i;
        if (row >= T)
            continue;
        size_t o = ((size_t)b * T + row) * C3 + (size_t)h * hs;
#pragma unroll
        for (int c = 0; c < NC; c++) {
            int d = f32_col<NC, TX>(tx, c);
            if (d < hs)
                put(dinp, NULL, o + d, dq[i][c] * scale, acc);
        }
    }
}

/* dq = scale * the sum of the key tiles' shares, in tile order (FP32 with partials) */
__global__ void flash_dq_reduce_kernel(float *dinp, const float *part, int T, int NH, int hs,
                                       int HS, int nT, float scale, int acc, size_t n)
{
    FOR_EACH(i, n)
    {
        int d = (int)(i % hs);
        size_t r = i / hs;
        int t = (int)(r % T);
        size_t bh = r / T, b = bh / NH, h = bh % NH;
        const float *p = part + (bh * nT * T + t) * HS + d;
        float s = 0;
        for (int kt = 0; kt <= t / FT; kt++)
            s += p[(size_t)kt * T * HS];
        put(dinp, NULL, (b * T + t) * 3 * (size_t)NH * hs + h * hs + d, s * scale, acc);
    }
}

/* ------------------------------------------------------------------ launchers */

template <int HS, int TX>
static int flash_fwd_f32_launch(lm_cu_ctx *x, float *out, float *lse, const float *inp, int B,
                                int T, int C, int NH, int vec, float scale2)
{
    constexpr int LD = F32<HS, TX>::LD, LP = F32<HS, TX>::LP;
    dim3 grid((unsigned)(B * NH), (unsigned)((T + FT - 1) / FT));
    size_t smem = (3 * FT * LD + FT * LP) * sizeof(float);
    return flash_launch(x, flash_fwd_f32<HS, TX>, grid, 16 * TX, smem, out, lse, inp, T, NH, C / NH,
                        scale2, vec);
}

/* part (may be NULL): scratch for the key tiles' shares of dq, B*NH*nT*T*HS floats; then dq is
 * their sum (flash_dq_reduce_kernel) instead of the dq kernel's (which recomputes the scores) */
template <int HS, int TX>
static int flash_bwd_f32_launch(lm_cu_ctx *x, float *dinp, float *part, const float *dout,
                                const float *inp, const float *D, const float *lse, int B, int T,
                                int C, int NH, int acc, int vec, float scale, float scale2)
{
    constexpr int LD = F32<HS, TX>::LD, LP = F32<HS, TX>::LP;
    const int nT = (T + FT - 1) / FT, hs = C / NH;
    dim3 grid((unsigned)(B * NH), (unsigned)nT);
    size_t s1 = (4 * FT * LD + 2 * FT * LP + 2 * FT) * sizeof(float),
           s2 = (4 * FT * LD + FT * LP) * sizeof(float);
    TRY(flash_launch(x, flash_bwd_dkdv_f32<HS, TX>, grid, 16 * TX, s1, dinp, part, dout, inp, lse,
                     D, T, NH, hs, scale, scale2, vec, acc));
    if (part) {
        size_t n = (size_t)B * NH * T * hs;
        flash_dq_reduce_kernel<<<blocks_for(n, 256), 256, 0, x->stream>>>(dinp, part, T, NH, hs, HS,
                                                                          nT, scale, acc, n);
        LAUNCHED("flash_dq_reduce");
        return 0;
    }
    return flash_launch(x, flash_bwd_dq_f32<HS, TX>, grid, 16 * TX, s2, dinp, dout, inp, lse, D, T,
                        NH, hs, scale, scale2, vec, acc);
}

template <int HS>
static int f32_forward(lm_cu_ctx *x, float *out, float *lse, const float *inp, int B, int T, int C,
                       int NH, int vec, float scale2)
{
    if (x->flash_tx == 16)
        return flash_fwd_f32_launch<HS, 16>(x, out, lse, inp, B, T, C, NH, vec, scale2);
    return flash_fwd_f32_launch<HS, 8>(x, out, lse, inp, B, T, C, NH, vec, scale2);
}

template <int HS>
static int f32_backward(lm_cu_ctx *x, float *dinp, float *part, const float *dout, const float *inp,
                        const float *D, const float *lse, int B, int T, int C, int NH, int acc,
                        int vec, float scale, float scale2)
{
    if (x->flash_tx == 16)
        return flash_bwd_f32_launch<HS, 16>(x, dinp, part, dout, inp, D, lse, B, T, C, NH, acc, vec,
                                            scale, scale2);
    return flash_bwd_f32_launch<HS, 8>(x, dinp, part, dout, inp, D, lse, B, T, C, NH, acc, vec,
                                       scale, scale2);
}

int flash_f32_forward(lm_cu_ctx *x, int HS, float *out, float *lse, const float *inp, int B, int T,
                      int C, int NH, int vec, float scale2)
{
    switch (HS) {
    case 16: return f32_forward<16>(x, out, lse, inp, B, T, C, NH, vec, scale2);
    case 32: return f32_forward<32>(x, out, lse, inp, B, T, C, NH, vec, scale2);
    case 64: return f32_forward<64>(x, out, lse, inp, B, T, C, NH, vec, scale2);
    default: return f32_forward<128>(x, out, lse, inp, B, T, C, NH, vec, scale2);
    }
}

int flash_f32_backward(lm_cu_ctx *x, int HS, float *dinp, float *part, const float *dout,
                       const float *inp, const float *D, const float *lse, int B, int T, int C,
                       int NH, int acc, int vec, float scale, float scale2)
{
    switch (HS) {
    case 16:
        return f32_backward<16>(x, dinp, part, dout, inp, D, lse, B, T, C, NH, acc, vec, scale,
                                scale2);
    case 32:
        return f32_backward<32>(x, dinp, part, dout, inp, D, lse, B, T, C, NH, acc, vec, scale,
                                scale2);
    case 64:
        return f32_backward<64>(x, dinp, part, dout, inp, D, lse, B, T, C, NH, acc, vec, scale,
                                scale2);
    default:
        return f32_backward<128>(x, dinp, part, dout, inp, D, lse, B, T, C, NH, acc, vec, scale,
                                 scale2);
    }
}
