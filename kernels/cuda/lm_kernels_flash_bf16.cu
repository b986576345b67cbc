/* The fused attention's BF16 kernels (lm_kernels_flash.cu says what they compute): the operands
 * rounded to bf16 into shared memory, the products on the tensor cores (mma.sync m16n8k16, fp32
 * accumulation), a warp per 16 rows of a tile. */
#include "lm_kernels_flash.cuh"

#define BF_THREADS 128

/* ------------------------------------------------------------------ BF16 products (mma.sync) */

__device__ __forceinline__ void mma16816(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, "
                 "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi)
{
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *(uint32_t *)&v;
}

__device__ __forceinline__ uint32_t ld32(const bf16 *p)
{
    return *(const uint32_t *)p;
}

/* The fragments (PTX ISA, mma.m16n8k16): g = lane / 4, t = lane % 4; A (16 x 16) registers
 * {rows g, g+8} x {cols 2t, 2t+8} (+0, +1 in each), B (16 x 8) {k 2t, 2t+8} (+0, +1) x col g,
 * C (16 x 8) c0, c1 row g, c2, c3 row g+8, cols 2t, 2t+1. */

/* s[n] (16 x 8 each, n < 8) += A[r0..r0+15][0..HS) . B[8n..8n+7][0..HS)^T, both row-major bf16
 * with row stride ld (elements) */
template <int HS>
__device__ __forceinline__ void bf_nt(float s[8][4], const bf16 *A, int r0, const bf16 *B, int ld)
{
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int kk = 0; kk < HS / 16; kk++) {
        uint32_t a[4];
        const bf16 *pa = A + (r0 + g) * ld + kk * 16 + 2 * t;
        a[0] = ld32(pa);
        a[1] = ld32(pa + 8 * ld);
        a[2] = ld32(pa + 8);
        a[3] = ld32(pa + 8 * ld + 8);
#pragma unroll
        for (int n = 0; n < 8; n++) {
            const bf16 *pb = B + (n * 8 + g) * ld + kk * 16 + 2 * t;
            mma16816(s[n], a, ld32(pb), ld32(pb + 8));
        }
    }
}

/* o[n] (16 x 8 each, n < HS/8) += P (16 x 64: the accumulators p of a bf_nt, rounded to bf16) .
 * B[0..64)[8n..8n+7] (row-major bf16, row stride ld; through ldmatrix.trans) */
template <int HS>
__device__ __forceinline__ void bf_pn(float o[HS / 8][4], const float p[8][4], const bf16 *B,
                                      int ld)
{
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int kk = 0; kk < FT / 16; kk++) {
        uint32_t a[4] = {pack_bf16(p[2 * kk][0], p[2 * kk][1]),
                         pack_bf16(p[2 * kk][2], p[2 * kk][3]),
                         pack_bf16(p[2 * kk + 1][0], p[2 * kk + 1][1]),
                         pack_bf16(p[2 * kk + 1][2], p[2 * kk + 1][3])};
        const bf16 *row = B + (kk * 16 + (lane & 15)) * ld;
#pragma unroll
        for (int n = 0; n < HS / 8; n++) {
            uint32_t b0, b1;
            unsigned addr = (unsigned)__cvta_generic_to_shared(row + n * 8);
            asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
                         : "=r"(b0), "=r"(b1)
                         : "r"(addr));
            mma16816(o[n], a, b0, b1);
        }
    }
}

/* max / sum over the 4 threads of a row (lanes t) */
__device__ __forceinline__ float max4(float v)
{
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
    return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float sum4(float v)
{
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

/* ------------------------------------------------------------------ BF16 kernels */

template <int HS> struct BF {
    static constexpr int LD = HS + 8; /* 16 bytes of padding: conflict-free fragments */
};

template <int HS>
__global__ void __launch_bounds__(BF_THREADS)
    flash_fwd_bf16(float *out, bf16 *out16, float *lse, const float *inp, int T, int NH, int hs,
                   float scale2, int vec)
{
    constexpr int LD = BF<HS>::LD;
    extern __shared__ float4 smem4[];
    bf16 *Qs = (bf16 *)smem4, *Ks = Qs + FT * LD, *Vs = Ks + FT * LD;
    const int bh = blockIdx.x, b = bh / NH, h = bh % NH, C = NH * hs;
    const int q0 = (int)(gridDim.y - 1 - blockIdx.y) * FT;
    const int w = threadIdx.x / 32, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const size_t C3 = 3 * (size_t)C;
    const float *base = inp + (size_t)b * T * C3 + (size_t)h * hs;
    tile_load<HS, BF_THREADS>(Qs, LD, base, C3, q0, T, hs, vec);
    const int r0 = q0 + w * 16 + g, r1 = r0 + 8;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0, l1 = 0, o[HS / 8][4] = {};
    for (int k0 = 0; k0 <= q0; k0 += FT) {
        __syncthreads();
        tile_load<HS, BF_THREADS>(Ks, LD, base + C, C3, k0, T, hs, vec);
        tile_load<HS, BF_THREADS>(Vs, LD, base + 2 * C, C3, k0, T, hs, vec);
        __syncthreads();
        float s[8][4] = {};
        bf_nt<HS>(s, Qs, w * 16, Ks, LD);
        float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
        for (int n = 0; n < 8; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int col = k0 + n * 8 + 2 * t + (e & 1), row = e < 2 ? r0 : r1;
                s[n][e] = col <= row && col < T ? s[n][e] * scale2 : -INFINITY;
                if (e < 2)
                    mx0 = fmaxf(mx0, s[n][e]);
                else
                    mx1 = fmaxf(mx1, s[n][e]);
            }
        float mn0 = fmaxf(m0, max4(mx0)), mn1 = fmaxf(m1, max4(mx1));
        float a0 = exp2f(m0 - mn0), a1 = exp2f(m1 - mn1);
        m0 = mn0;
        m1 = mn1;
        l0 *= a0;
        l1 *= a1;
#pragma unroll
        for (int n = 0; n < HS / 8; n++) {
            o[n][0] *= a0;
            o[n][1] *= a0;
            o[n][2] *= a1;
            o[n][3] *= a1;
        }
#pragma unroll
        for (int n = 0; n < 8; n++) {
            s[n][0] = exp2f(s[n][0] - m0);
            s[n][1] = exp2f(s[n][1] - m0);
            s[n][2] = exp2f(s[n][2] - m1);
            s[n][3] = exp2f(s[n][3] - m1);
            l0 += s[n][0] + s[n][1];
            l1 += s[n][2] + s[n][3];
        }
        bf_pn<HS>(o, s, Vs, LD);
    }
    l0 = sum4(l0);
    l1 = sum4(l1);
    float inv0 = 1.0f / l0, inv1 = 1.0f / l1;
#pragma unroll
    for (int n = 0; n < HS / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int row = e < 2 ? r0 : r1, d = n * 8 + 2 * t + (e & 1);
            if (row < T && d < hs) {
                size_t i = ((size_t)b * T + row) * C + (size_t)h * hs + d;
                float v = o[n][e] * (e < 2 ? inv0 : inv1);
                out[i] = v;
                if (out16)
                    out16[i] = __float2bfloat16_rn(v);
            }
        }
    if (t == 0) {
        if (r0 < T)
            lse[(size_t)bh * T + r0] = m0 + log2f(l0);
        if (r1 < T)
            lse[(size_t)bh * T + r1] = m1 + log2f(l1);
    }
}

template <int HS>
__global__ void __launch_bounds__(BF_THREADS)
    flash_bwd_dkdv_bf16(float *dinp, bf16 *dinp16, const float *dout, const float *inp,
                        const float *lse, const float *Dd, int T, int NH, int hs, float scale,
                        float scale2, int vec, int acc)
{
    constexpr int LD = BF<HS>::LD;
    extern __shared__ float4 smem4[];
    bf16 *Ks = (bf16 *)smem4, *Vs = Ks + FT * LD, *Qs = Vs + FT * LD, *dOs = Qs + FT * LD;
    float *ls = (float *)(dOs + FT * LD), *Ds = ls + FT;
    const int bh = blockIdx.x, b = bh / NH, h = bh % NH, C = NH * hs;
    const int k0 = (int)blockIdx.y * FT;
    const int w = threadIdx.x / 32, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const size_t C3 = 3 * (size_t)C;
    const float *base = inp + (size_t)b * T * C3 + (size_t)h * hs;
    const float *dbase = dout + (size_t)b * T * C + (size_t)h * hs;
    tile_load<HS, BF_THREADS>(Ks, LD, base + C, C3, k0, T, hs, vec);
    tile_load<HS, BF_THREADS>(Vs, LD, base + 2 * C, C3, k0, T, hs, vec);
    const int key0 = k0 + w * 16 + g, key1 = key0 + 8;
    float dk[HS / 8][4] = {}, dv[HS / 8][4] = {};
    for (int q0 = k0; q0 < T; q0 += FT) {
        __syncthreads();
        tile_load<HS, BF_THREADS>(Qs, LD, base, C3, q0, T, hs, vec);
        tile_load<HS, BF_THREADS>(dOs, LD, dbase, C, q0, T, hs, vec);
        row_load(ls, lse + (size_t)bh * T, q0, T);
        row_load(Ds, Dd + (size_t)bh * T, q0, T);
        __syncthreads();
        /* transposed: rows are keys, columns queries */
        float st[8][4] = {}, dpt[8][4] = {};
        bf_nt<HS>(st, Ks, w * 16, Qs, LD);
        bf_nt<HS>(dpt, Vs, w * 16, dOs, LD);
#pragma unroll
        for (int n = 0; n < 8; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int qi = n * 8 + 2 * t + (e & 1), q = q0 + qi, key = e < 2 ? key0 : key1;
                float p = key <= q && q < T ? exp2f(st[n][e] * scale2 - ls[qi]) : 0.0f;
                st[n][e] = p;
                dpt[n][e] = p * (dpt[n][e] - Ds[qi]);
            }
        bf_pn<HS>(dv, st, dOs, LD);
        bf_pn<HS>(dk, dpt, Qs, LD);
    }
#pragma unroll
    for (int n = 0; n < HS / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int key = e < 2 ? key0 : key1, d = n * 8 + 2 * t + (e & 1);
            if (key < T && d < hs) {
                size_t o = ((size_t)b * T + key) * C3 + (size_t)h * hs + d;
                put(dinp, dinp16, o + C, dk[n][e] * scale, acc);
                put(dinp, dinp16, o + 2 * C, dv[n][e], acc);
            }
        }
}

template <int HS>
__global__ void __launch_bounds__(BF_THREADS)
    flash_bwd_dq_bf16(float *dinp, bf16 *dinp16, const float *dout, const float *inp,
                      const float *lse, const float *Dd, int T, int NH, int hs, float scale,
                      float scale2, int vec, int acc)
{
    constexpr int LD = BF<HS>::LD;
    extern __shared__ float4 smem4[];
    bf16 *Qs = (bf16 *)smem4, *dOs = Qs + FT * LD, *Ks = dOs + FT * LD, *Vs = Ks + FT * LD;
    const int bh = blockIdx.x, b = bh / NH, h = bh % NH, C = NH * hs;
    const int q0 = (int)(gridDim.y - 1 - blockIdx.y) * FT;
    const int w = threadIdx.x / 32, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const size_t C3 = 3 * (size_t)C;
    const float *base = inp + (size_t)b * T * C3 + (size_t)h * hs;
    tile_load<HS, BF_THREADS>(Qs, LD, base, C3, q0, T, hs, vec);
    tile_load<HS, BF_THREADS>(dOs, LD, dout + (size_t)b * T * C + (size_t)h * hs, C, q0, T, hs,
                              vec);
    const int r0 = q0 + w * 16 + g, r1 = r0 + 8;
    const float l0 = r0 < T ? lse[(size_t)bh * T + r0] : 0.0f,
                l1 = r1 < T ? lse[(size_t)bh * T + r1] : 0.0f,
                d0 = r0 < T ? Dd[(size_t)bh * T + r0] : 0.0f,
                d1 = r1 < T ? Dd[(size_t)bh * T + r1] : 0.0f;
    float dq[HS / 8][4] = {};
    for (int k0 = 0; k0 <= q0; k0 += FT) {
        __syncthreads();
        tile_load<HS, BF_THREADS>(Ks, LD, base + C, C3, k0, T, hs, vec);
        tile_load<HS, BF_THREADS>(Vs, LD, base + 2 * C, C3, k0, T, hs, vec);
        __syncthreads();
        float s[8][4] = {}, dp[8][4] = {};
        bf_nt<HS>(s, Qs, w * 16, Ks, LD);
        bf_nt<HS>(dp, dOs, w * 16, Vs, LD);
#pragma unroll
        for (int n = 0; n < 8; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int col = k0 + n * 8 + 2 * t + (e & 1), row = e < 2 ? r0 : r1;
                float p =
                    col <= row && row < T ? exp2f(s[n][e] * scale2 - (e < 2 ? l0 : l1)) : 0.0f;
                s[n][e] = p * (dp[n][e] - (e < 2 ? d0 : d1));
            }
        bf_pn<HS>(dq, s, Ks, LD);
    }
#pragma unroll
    for (int n = 0; n < HS / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int row = e < 2 ? r0 : r1, d = n * 8 + 2 * t + (e & 1);
            if (row < T && d < hs)
                put(dinp, dinp16, ((size_t)b * T + row) * C3 + (size_t)h * hs + d, dq[n][e] * scale,
                    acc);
        }
}

/* ------------------------------------------------------------------ launchers */

template <int HS>
static int bf16_forward(lm_cu_ctx *x, float *out, bf16 *out16, float *lse, const float *inp, int B,
                        int T, int C, int NH, int vec, float scale2)
{
    dim3 grid((unsigned)(B * NH), (unsigned)((T + FT - 1) / FT));
    size_t smem = 3 * FT * BF<HS>::LD * sizeof(bf16);
    return flash_launch(x, flash_fwd_bf16<HS>, grid, BF_THREADS, smem, out, out16, lse, inp, T, NH,
                        C / NH, scale2, vec);
}

template <int HS>
static int bf16_backward(lm_cu_ctx *x, float *dinp, bf16 *dinp16, const float *dout,
                         const float *inp, const float *D, const float *lse, int B, int T, int C,
                         int NH, int acc, int vec, float scale, float scale2)
{
    constexpr int LD = BF<HS>::LD;
    const int hs = C / NH;
    dim3 grid((unsigned)(B * NH), (unsigned)((T + FT - 1) / FT));
    size_t s1 = 4 * FT * LD * sizeof(bf16) + 2 * FT * sizeof(float),
           s2 = 4 * FT * LD * sizeof(bf16);
    TRY(flash_launch(x, flash_bwd_dkdv_bf16<HS>, grid, BF_THREADS, s1, dinp, dinp16, dout, inp, lse,
                     D, T, NH, hs, scale, scale2, vec, acc));
    return flash_launch(x, flash_bwd_dq_bf16<HS>, grid, BF_THREADS, s2, dinp, dinp16, dout, inp,
                        lse, D, T, NH, hs, scale, scale2, vec, acc);
}

int flash_bf16_forward(lm_cu_ctx *x, int HS, float *out, bf16 *out16, float *lse, const float *inp,
                       int B, int T, int C, int NH, int vec, float scale2)
{
    switch (HS) {
    case 16: return bf16_forward<16>(x, out, out16, lse, inp, B, T, C, NH, vec, scale2);
    case 32: return bf16_forward<32>(x, out, out16, lse, inp, B, T, C, NH, vec, scale2);
    case 64: return bf16_forward<64>(x, out, out16, lse, inp, B, T, C, NH, vec, scale2);
    default: return bf16_forward<128>(x, out, out16, lse, inp, B, T, C, NH, vec, scale2);
    }
}

int flash_bf16_backward(lm_cu_ctx *x, int HS, float *dinp, bf16 *dinp16, const float *dout,
                        const float *inp, const float *D, const float *lse, int B, int T, int C,
                        int NH, int acc, int vec, float scale, float scale2)
{
    switch (HS) {
    case 16:
        return bf16_backward<16>(x, dinp, dinp16, dout, inp, D, lse, B, T, C, NH, acc, vec, scale,
                                 scale2);
    case 32:
        return bf16_backward<32>(x, dinp, dinp16, dout, inp, D, lse, B, T, C, NH, acc, vec, scale,
                                 scale2);
    case 64:
        return bf16_backward<64>(x, dinp, dinp16, dout, inp, D, lse, B, T, C, NH, acc, vec, scale,
                                 scale2);
    default:
        return bf16_backward<128>(x, dinp, dinp16, dout, inp, D, lse, B, T, C, NH, acc, vec, scale,
                                  scale2);
    }
}
