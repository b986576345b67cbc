/* The fused causal attention (lm_kernels.h, lm_cu_attention_fused_*): the same function as
 * lm_ref_attention_forward/backward, FlashAttention-2 style (Tri Dao, 2023), without the T x T
 * scores in memory. q, k, v are read straight from the (B, T, 3, NH, hs) input, the output
 * written straight into (B, T, NH*hs), the gradients into (B, T, 3, NH, hs).
 *
 * Tiles of 64 queries x 64 keys; the head size is padded with zeros to the kernel's HS (16, 32,
 * 64 or 128: every hs <= 128; larger ones are refused and the model keeps the materialised
 * path). Scores are kept in base 2: s2 = (q . k) * scale * log2(e), p = exp2(s2 - m).
 *
 *   forward   one block per (b, h, 64 queries), looping over the key tiles up to the diagonal:
 *             scores, running row maximum m and row sum l (online softmax), out += p v rescaled
 *             as m grows; at the end out /= l and lse2 = m + log2(l) per row (B*NH*T floats,
 *             what the backward needs instead of the probabilities);
 *   backward  D = rowsum(dout * out) first (one warp per row); then two kernels, no atomics:
 *             dk, dv: one block per (b, h, 64 keys), looping over the query tiles from the
 *               diagonal on: p = exp2(s2 - lse2) recomputed, dv += p^T dout,
 *               ds = p (dout v^T - D), dk += ds^T q;
 *             dq: BF16 (and FP32 where the shares below would not fit in FLASH_PART_MAX): one
 *               block per (b, h, 64 queries), looping over the key tiles up to the diagonal:
 *               p and ds recomputed likewise, dq += ds k (7 tile products per tile pair
 *               instead of 5, the price of no atomics); FP32: the dk, dv kernel also writes each
 *               key tile's share ds k of dq into scratch (B*NH*nT*T*HS floats) and one thread per
 *               dq element adds the shares in key-tile order (5 products, no recomputation).
 *             Every output element is summed by one thread in a fixed order: bit-identical runs.
 *
 * FP32 (lm_kernels_flash_f32.cu): plain fp32 FMA on CUDA cores (no TF32), 128 threads, each
 * owning 4 x 8 of a score tile (rows ty + 16 i, columns tx + 8 j) and 4 x HS/8 of an output
 * tile; operands in shared memory in fp32.
 * BF16 (lm_kernels_flash_bf16.cu; lm_cuda.h: as torch.autocast): the operands of the four products are rounded to bf16 and
 * multiplied on the tensor cores (mma.sync m16n8k16, fp32 accumulation): q, k, v and dout when
 * loaded; the probabilities p before p v and p^T dout; ds before ds k and ds^T q. As
 * FlashAttention does, the forward's p is the unnormalised exp2(s2 - m) of the running maximum
 * (the row sum l is taken of the fp32 values, the division by l is in fp32 at the end), the
 * backward's p the normalised exp2(s2 - lse2); the scores, the softmax, D and every sum are fp32.
 * 128 threads, a warp per 16 rows of a tile; p and ds go from the accumulators to the next
 * product in registers. */
#include "lm_kernels_flash.cuh"

#define FLASH_PART_MAX (1ull << 30) /* bytes of FP32 dq shares, else the dq kernel */

/* ------------------------------------------------------------------ D = rowsum(dout * out) */

/* one warp per (b, t, h), in memory order; D is (B, NH, T) */
__global__ void flash_d_kernel(float *D, const float *dout, const float *out, int T, int NH, int hs,
                               size_t rows)
{
    const int lane = threadIdx.x & 31;
    const size_t nw = (size_t)gridDim.x * blockDim.x / 32;
    for (size_t r = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) / 32; r < rows; r += nw) {
        int h = (int)(r % NH);
        size_t bt = r / NH, b = bt / T, t = bt % T;
        const float *a = dout + bt * NH * hs + (size_t)h * hs,
                    *o = out + bt * NH * hs + (size_t)h * hs;
        float s = 0;
        for (int d = lane; d < hs; d += 32)
            s += a[d] * o[d];
        s = warp_sum(s);
        if (lane == 0)
            D[(b * NH + h) * T + t] = s;
    }
}

/* ------------------------------------------------------------------ host wrappers */

/* the kernels' head size for hs: 16, 32, 64, 128; 0 when too large */
static int flash_hs(int hs)
{
    return hs <= 16 ? 16 : hs <= 32 ? 32 : hs <= 64 ? 64 : hs <= 128 ? 128 : 0;
}

extern "C" void lm_cu_ctx_flash_layout(lm_cu_ctx *x, int tx)
{
    x->flash_tx = tx == 16 ? 16 : 8;
}

extern "C" int lm_cu_attention_fused_supported(int C, int NH)
{
    return NH > 0 && C % NH == 0 && flash_hs(C / NH) != 0;
}

static int flash_vec(const void *a, const void *b, int hs, int C)
{
    return hs % 4 == 0 && C % 4 == 0 && ((uintptr_t)a | (uintptr_t)b) % 16 == 0;
}

static int flash_check(lm_cu_ctx *x, int B, int T, int C, int NH)
{
    if (B < 1 || T < 1 || !lm_cu_attention_fused_supported(C, NH) || (size_t)B * NH > 0x7fffffff ||
        (T + FT - 1) / FT > 65535) {
        snprintf(x->err, sizeof x->err,
                 "fused attention: B=%d T=%d C=%d NH=%d (head size at most 128, T < 2^22)", B, T, C,
                 NH);
        return PTB_EINVAL;
    }
    return 0;
}

extern "C" int lm_cu_attention_fused_forward_ex(lm_cu_ctx *x, float *out, void *out16, float *lse,
                                                const float *inp, int B, int T, int C, int NH)
{
    TRY(flash_check(x, B, T, C, NH));
    const int hs = C / NH, HS = flash_hs(hs), vec = flash_vec(inp, inp, hs, C);
    const float scale2 = LOG2E / sqrtf((float)hs);
    if (x->prec)
        return flash_bf16_forward(x, HS, out, (bf16 *)out16, lse, inp, B, T, C, NH, vec, scale2);
    TRY(flash_f32_forward(x, HS, out, lse, inp, B, T, C, NH, vec, scale2));
    if (out16) /* not asked for in FP32; converted for completeness */
        return lm_cu_to_bf16(x, out16, out, (size_t)B * T * C);
    return 0;
}

extern "C" int lm_cu_attention_fused_forward(lm_cu_ctx *x, float *out, float *lse, const float *inp,
                                             int B, int T, int C, int NH)
{
    return lm_cu_attention_fused_forward_ex(x, out, NULL, lse, inp, B, T, C, NH);
}

extern "C" int lm_cu_attention_fused_backward_ex(lm_cu_ctx *x, float *dinp, void *dinp16,
                                                 const float *dout, const float *inp,
                                                 const float *out, const float *lse, int B, int T,
                                                 int C, int NH, int acc)
{
    TRY(flash_check(x, B, T, C, NH));
    const int hs = C / NH, HS = flash_hs(hs), nT = (T + FT - 1) / FT;
    const size_t rows = (size_t)B * T * NH, rows64 = (rows + 63) & ~(size_t)63;
    /* FP32, layout 8: dq from the key tiles' shares when they fit in FLASH_PART_MAX bytes */
    size_t npart = (size_t)B * NH * nT * T * HS;
    if (x->prec != 0 || x->flash_tx == 16 || npart * sizeof(float) > FLASH_PART_MAX)
        npart = 0;
    TRY(reserve(x, &x->scr, &x->scr_bytes, (rows64 + npart) * sizeof(float)));
    float *D = x->scr, *part = npart ? x->scr + rows64 : NULL;
    flash_d_kernel<<<blocks_for(rows * 32, 256), 256, 0, x->stream>>>(D, dout, out, T, NH, hs,
                                                                      rows);
    LAUNCHED("flash_d");
    const int vec = flash_vec(inp, dout, hs, C);
    const float scale = 1.0f / sqrtf((float)hs), scale2 = LOG2E * scale;
    if (x->prec)
        return flash_bf16_backward(x, HS, dinp, (bf16 *)dinp16, dout, inp, D, lse, B, T, C, NH, acc,
                                   vec, scale, scale2);
    TRY(flash_f32_backward(x, HS, dinp, part, dout, inp, D, lse, B, T, C, NH, acc, vec, scale,
                           scale2));
    if (dinp16)
        return lm_cu_to_bf16(x, dinp16, dinp, (size_t)B * T * 3 * C);
    return 0;
}

extern "C" int lm_cu_attention_fused_backward(lm_cu_ctx *x, float *dinp, const float *dout,
                                              const float *inp, const float *out, const float *lse,
                                              int B, int T, int C, int NH)
{
    return lm_cu_attention_fused_backward_ex(x, dinp, NULL, dout, inp, out, lse, B, T, C, NH, 1);
}
