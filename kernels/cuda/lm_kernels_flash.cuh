/* Internal to the fused attention (lm_kernels_flash*.cu): the tiles' loads and stores shared by
 * the FP32 kernels (lm_kernels_flash_f32.cu) and the BF16 ones (lm_kernels_flash_bf16.cu), and the
 * launchers that lm_kernels_flash.cu calls. lm_kernels_flash.cu says what the kernels compute. */
#ifndef PTB_LM_KERNELS_FLASH_CUH
#define PTB_LM_KERNELS_FLASH_CUH

#include "lm_kernels_int.cuh"

#include <stdint.h>

#define FT 64 /* rows of a query tile and of a key tile */
#define LOG2E 1.4426950408889634f

typedef __nv_bfloat16 bf16;

/* ------------------------------------------------------------------ tiles */

__device__ __forceinline__ void st4(float *s, float4 v)
{
    *(float4 *)s = v;
}
__device__ __forceinline__ void st4(__nv_bfloat16 *s, float4 v)
{
    __nv_bfloat162 a = __floats2bfloat162_rn(v.x, v.y), b = __floats2bfloat162_rn(v.z, v.w);
    uint2 u;
    u.x = *(uint32_t *)&a;
    u.y = *(uint32_t *)&b;
    *(uint2 *)s = u;
}
__device__ __forceinline__ void st1(float *s, float v)
{
    *s = v;
}
__device__ __forceinline__ void st1(__nv_bfloat16 *s, float v)
{
    *s = __float2bfloat16_rn(v);
}

/* s[r][d] (row stride ld) = g[(r0 + r) * gs + d] for r < FT, d < HS; 0 where r0 + r >= T or
 * d >= hs. vec: hs, gs and g allow 16-byte loads. */
template <int HS, int NTH, typename Tp>
__device__ __forceinline__ void tile_load(Tp *s, int ld, const float *g, size_t gs, int r0, int T,
                                          int hs, int vec)
{
    const int tid = threadIdx.x;
    if (vec) {
        constexpr int Q = HS / 4, N = (FT * Q + NTH - 1) / NTH;
        float4 v[N]; /* every load in flight before the first store */
#pragma unroll
        for (int it = 0; it < N; it++) {
            int i = it * NTH + tid, r = i / Q, d = (i % Q) * 4;
            v[it] = make_float4(0.f, 0.f, 0.f, 0.f);
            if (i < FT * Q && r0 + r < T && d < hs)
                v[it] = *(const float4 *)&g[(size_t)(r0 + r) * gs + d];
        }
#pragma unroll
        for (int it = 0; it < N; it++) {
            int i = it * NTH + tid, r = i / Q, d = (i % Q) * 4;
            if (i < FT * Q)
                st4(&s[r * ld + d], v[it]);
        }
    } else {
        for (int i = tid; i < FT * HS; i += NTH) {
            int r = i / HS, d = i % HS;
            st1(&s[r * ld + d], r0 + r < T && d < hs ? g[(size_t)(r0 + r) * gs + d] : 0.0f);
        }
    }
}

/* v[r] = a[r0 + r] for r < FT (0 past T) */
__device__ __forceinline__ void row_load(float *v, const float *a, int r0, int T)
{
    for (int r = threadIdx.x; r < FT; r += blockDim.x)
        v[r] = r0 + r < T ? a[r0 + r] : 0.0f;
}

/* dst = v or dst += v; and its bf16 copy when dst16 is set */
__device__ __forceinline__ void put(float *dst, __nv_bfloat16 *dst16, size_t i, float v, int acc)
{
    if (acc)
        v += dst[i];
    dst[i] = v;
    if (dst16)
        dst16[i] = __float2bfloat16_rn(v);
}

/* ------------------------------------------------------------------ launchers */

/* k<<<grid, threads, smem>>>(args) on x's stream, the dynamic shared memory allowed first */
template <typename... P, typename... A>
static int flash_launch(lm_cu_ctx *x, void (*k)(P...), dim3 grid, int threads, size_t smem,
                        A... args)
{
    if (smem > 48 * 1024)
        CU(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    k<<<grid, threads, smem, x->stream>>>(args...);
    LAUNCHED("flash attention");
    return 0;
}

/* The kernels for head size HS (16, 32, 64, 128; hs <= HS, zero-padded), q, k, v in inp
 * (B, T, 3, NH, hs); vec: 16-byte loads allowed (flash_vec); scale2 = log2(e) / sqrt(hs), scale
 * = 1 / sqrt(hs). Forward: out, lse (and out16, BF16, may be NULL). Backward: dinp (+)= (acc),
 * from D = rowsum(dout * out) (B, NH, T); FP32: part, scratch for the key tiles' shares of dq
 * (B*NH*nT*T*HS floats) or NULL (then the dq kernel); BF16: dinp16 the bf16 copy or NULL. */
int flash_f32_forward(lm_cu_ctx *x, int HS, float *out, float *lse, const float *inp, int B, int T,
                      int C, int NH, int vec, float scale2);
int flash_f32_backward(lm_cu_ctx *x, int HS, float *dinp, float *part, const float *dout,
                       const float *inp, const float *D, const float *lse, int B, int T, int C,
                       int NH, int acc, int vec, float scale, float scale2);
int flash_bf16_forward(lm_cu_ctx *x, int HS, float *out, bf16 *out16, float *lse, const float *inp,
                       int B, int T, int C, int NH, int vec, float scale2);
int flash_bf16_backward(lm_cu_ctx *x, int HS, float *dinp, bf16 *dinp16, const float *dout,
                        const float *inp, const float *D, const float *lse, int B, int T, int C,
                        int NH, int acc, int vec, float scale, float scale2);

#endif
