/* bench_lm_cuda: the model's CUDA kernels (kernels/cuda/) against the CPU reference and simple
 * alternatives, and training throughput.
 *
 *   bench_lm_cuda [--batch 8 --seq 256 --channels 768 --heads 12] [--reps 20] [--cpu-reps 3]
 *                 [--precision fp32|bf16] [--json FILE]
 *       one row per kernel, forward and backward: ptb's kernel (CUDA events around one call,
 *       median of --reps after 3 warm-ups), the lm_ref_* twin on the same data (wall clock,
 *       median of --cpu-reps; 0 skips it), and where there is an obvious simpler GPU version,
 *       that one: one thread per output for the cuBLAS matmuls and the attention, atomicAdd for
 *       the deterministic reductions (embedding and LayerNorm gradients), the materialised
 *       attention (cuBLAS products, a softmax kernel) for the fused one;
 *   bench_lm_cuda --train --layers 12 --channels 768 --heads 12 --batch 8 --seq 1024 --steps 20
 *                 --precision fp32|bf16 [--json FILE]
 *       forward + backward + AdamW steps of the whole model (lm_cuda.h) on random bytes:
 *       tokens/s over --steps after 3 warm-up steps (the figure compared with PyTorch).
 * Exits 77 when there is no CUDA device. */
#include <cuda_runtime.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern "C" {
#include "lm.h"
#include "lm_cuda.h"
#include "ref/lm_ref.h"
}
#include "lm_kernels.h"

#define V LM_VOCAB

/* ------------------------------------------------------------------ the simple alternatives */

/* one thread per output: out[bt][oc] = bias + inp[bt] . w[oc] */
__global__ void naive_matmul_forward(float *out, const float *inp, const float *w, const float *b,
                                     int BT, int C, int OC)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)BT * OC)
        return;
    int bt = (int)(i / OC), oc = (int)(i % OC);
    float s = b ? b[oc] : 0.0f;
    for (int k = 0; k < C; k++)
        s += inp[(size_t)bt * C + k] * w[(size_t)oc * C + k];
    out[i] = s;
}

__global__ void naive_matmul_backward_dinp(float *dinp, const float *dout, const float *w, int BT,
                                           int C, int OC)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)BT * C)
        return;
    int bt = (int)(i / C), c = (int)(i % C);
    float s = 0;
    for (int oc = 0; oc < OC; oc++)
        s += dout[(size_t)bt * OC + oc] * w[(size_t)oc * C + c];
    dinp[i] += s;
}

__global__ void naive_matmul_backward_dw(float *dw, float *db, const float *dout, const float *inp,
                                         int BT, int C, int OC)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)OC * C)
        return;
    int oc = (int)(i / C), c = (int)(i % C);
    float s = 0, sb = 0;
    for (int bt = 0; bt < BT; bt++) {
        float g = dout[(size_t)bt * OC + oc];
        s += g * inp[(size_t)bt * C + c];
        sb += g;
    }
    dw[i] += s;
    if (db && c == 0)
        db[oc] += sb;
}

/* one thread per (b, h, t), the ref's loops */
__global__ void naive_attention_forward(float *out, float *preatt, float *att, const float *inp,
                                        int B, int T, int C, int NH)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= B * NH * T)
        return;
    int t = i % T, h = (i / T) % NH, b = i / (T * NH), C3 = 3 * C, hs = C / NH;
    float scale = rsqrtf((float)hs);
    const float *q = inp + ((size_t)b * T + t) * C3 + h * hs;
    float *pre = preatt + (size_t)i * T, *a = att + (size_t)i * T;
    float maxv = -INFINITY;
    for (int t2 = 0; t2 <= t; t2++) {
        const float *k = inp + ((size_t)b * T + t2) * C3 + h * hs + C;
        float v = 0;
        for (int d = 0; d < hs; d++)
            v += q[d] * k[d];
        v *= scale;
        pre[t2] = v;
        maxv = fmaxf(maxv, v);
    }
    float sum = 0;
    for (int t2 = 0; t2 <= t; t2++) {
        a[t2] = expf(pre[t2] - maxv);
        sum += a[t2];
    }
    for (int t2 = 0; t2 < T; t2++)
        a[t2] = t2 <= t ? a[t2] / sum : 0.0f;
    float *o = out + ((size_t)b * T + t) * C + h * hs;
    for (int d = 0; d < hs; d++) {
        float s = 0;
        for (int t2 = 0; t2 <= t; t2++)
            s += a[t2] * inp[((size_t)b * T + t2) * C3 + h * hs + 2 * C + d];
        o[d] = s;
    }
}

/* one thread per (b, h, t); dk and dv of earlier positions through atomicAdd */
__global__ void naive_attention_backward(float *dinp, float *dpreatt, float *datt,
                                         const float *dout, const float *inp, const float *att,
                                         int B, int T, int C, int NH)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= B * NH * T)
        return;
    int t = i % T, h = (i / T) % NH, b = i / (T * NH), C3 = 3 * C, hs = C / NH;
    float scale = rsqrtf((float)hs);
    const float *a = att + (size_t)i * T, *q = inp + ((size_t)b * T + t) * C3 + h * hs;
    float *da = datt + (size_t)i * T, *dp = dpreatt + (size_t)i * T;
    float *dq = dinp + ((size_t)b * T + t) * C3 + h * hs;
    const float *d = dout + ((size_t)b * T + t) * C + h * hs;
    float s = 0;
    for (int t2 = 0; t2 <= t; t2++) {
        const float *v = inp + ((size_t)b * T + t2) * C3 + h * hs + 2 * C;
        float *dv = dinp + ((size_t)b * T + t2) * C3 + h * hs + 2 * C;
        float x = 0;
        for (int k = 0; k < hs; k++) {
            x += v[k] * d[k];
            atomicAdd(&dv[k], a[t2] * d[k]);
        }
        da[t2] = x;
        s += a[t2] * x;
    }
    for (int t2 = 0; t2 <= t; t2++) {
        dp[t2] = a[t2] * (da[t2] - s);
        const float *k = inp + ((size_t)b * T + t2) * C3 + h * hs + C;
        float *dk = dinp + ((size_t)b * T + t2) * C3 + h * hs + C;
        for (int j = 0; j < hs; j++) {
            dq[j] += k[j] * dp[t2] * scale;
            atomicAdd(&dk[j], q[j] * dp[t2] * scale);
        }
    }
}

/* llm.c's naive embedding backward: one thread per (b, t, c), atomicAdd */
__global__ void atomic_encoder_backward(float *dwte, float *dwpe, const float *dout,
                                        const int32_t *tokens, int B, int T, int C)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)B * T * C)
        return;
    size_t bt = i / C;
    int c = (int)(i % C), t = (int)(bt % T);
    atomicAdd(&dwte[(size_t)tokens[bt] * C + c], dout[i]);
    atomicAdd(&dwpe[(size_t)t * C + c], dout[i]);
}

/* one warp per row, dweight and dbias through atomicAdd */
__global__ void atomic_layernorm_backward(float *dinp, float *dweight, float *dbias,
                                          const float *dout, const float *inp, const float *w,
                                          const float *mean, const float *rstd, int N, int C)
{
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x & 31;
    if (row >= N)
        return;
    const float *d = dout + (size_t)row * C, *xr = inp + (size_t)row * C;
    float *dx = dinp + (size_t)row * C, m = mean[row], s = rstd[row], a = 0, bb = 0;
    for (int i = lane; i < C; i += 32) {
        float norm = (xr[i] - m) * s, dn = w[i] * d[i];
        a += dn;
        bb += dn * norm;
    }
    for (int o = 16; o > 0; o >>= 1) {
        a += __shfl_xor_sync(0xffffffffu, a, o);
        bb += __shfl_xor_sync(0xffffffffu, bb, o);
    }
    a /= (float)C;
    bb /= (float)C;
    for (int i = lane; i < C; i += 32) {
        float norm = (xr[i] - m) * s, dn = w[i] * d[i];
        atomicAdd(&dbias[i], d[i]);
        atomicAdd(&dweight[i], norm * d[i]);
        dx[i] += (dn - a - norm * bb) * s;
    }
}

/* ------------------------------------------------------------------ timing */

static lm_cu_ctx *X;
static cudaEvent_t E0, E1;
static int REPS = 20, CPU_REPS = 3;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void check(int rc, const char *what)
{
    if (rc) {
        fprintf(stderr, "bench_lm_cuda: %s: %s\n", what, lm_cu_ctx_errmsg(X));
        exit(1);
    }
}

#define CUCHECK(call)                                                                              \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            fprintf(stderr, "bench_lm_cuda: %s: %s\n", #call, cudaGetErrorString(e_));             \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* median ms of one call of fn (GPU, on X's stream), after 3 warm-ups */
#define GPU_MS(out, ...)                                                                           \
    do {                                                                                           \
        cudaStream_t st_ = (cudaStream_t)lm_cu_ctx_stream(X);                                      \
        double v_[256];                                                                            \
        for (int r_ = -3; r_ < REPS; r_++) {                                                       \
            CUCHECK(cudaEventRecord(E0, st_));                                                     \
            __VA_ARGS__;                                                                           \
            CUCHECK(cudaEventRecord(E1, st_));                                                     \
            CUCHECK(cudaEventSynchronize(E1));                                                     \
            float ms_;                                                                             \
            CUCHECK(cudaEventElapsedTime(&ms_, E0, E1));                                           \
            if (r_ >= 0)                                                                           \
                v_[r_] = ms_;                                                                      \
        }                                                                                          \
        check(lm_cu_sync(X), "kernel");                                                            \
        out = median(v_, REPS);                                                                    \
    } while (0)

#define CPU_MS(out, ...)                                                                           \
    do {                                                                                           \
        double v_[64];                                                                             \
        for (int r_ = 0; r_ < CPU_REPS; r_++) {                                                    \
            double t0_ = now();                                                                    \
            __VA_ARGS__;                                                                           \
            v_[r_] = (now() - t0_) * 1e3;                                                          \
        }                                                                                          \
        out = CPU_REPS ? median(v_, CPU_REPS) : NAN;                                               \
    } while (0)

typedef struct row {
    const char *name;
    double gpu, cpu, alt;
    const char *alt_name;
} row;
static row ROWS[64];
static int NROWS;

static void add(const char *name, double gpu, double cpu, double alt, const char *alt_name)
{
    ROWS[NROWS++] = (row){strdup(name), gpu, cpu, alt, alt_name}; /* name may be on the stack */
    char cpums[32] = "-", cpux[32] = "-", altms[32] = "-", altx[32] = "";
    if (!isnan(cpu)) {
        snprintf(cpums, sizeof cpums, "%.3f", cpu);
        snprintf(cpux, sizeof cpux, "%.1fx", cpu / gpu);
    }
    if (!isnan(alt)) {
        snprintf(altms, sizeof altms, "%.4f", alt);
        snprintf(altx, sizeof altx, "%.1fx", alt / gpu);
    }
    printf("%-28s %9.4f %11s %10s %10s %8s  %s\n", name, gpu, cpums, cpux, altms, altx,
           alt_name ? alt_name : "");
    fflush(stdout);
}

/* host random array and its device copy */
static uint64_t SEED = 1;
static float *hr(size_t n, float scale)
{
    float *p = (float *)malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = scale * ((float)(lm_rng_next(&SEED) >> 40) / (float)(1 << 23) - 1.0f);
    return p;
}
static float *dev(const float *h, size_t n)
{
    void *d;
    check(lm_cu_alloc(X, &d, n * sizeof(float)), "alloc");
    check(lm_cu_upload(X, d, h, n * sizeof(float)), "upload");
    return (float *)d;
}
static float *dz(size_t n)
{
    void *d;
    check(lm_cu_alloc(X, &d, n * sizeof(float)), "alloc");
    return (float *)d;
}

static unsigned nb(size_t n)
{
    return (unsigned)((n + 255) / 256);
}

/* ------------------------------------------------------------------ the kernel table */

static void bench_matmul(const char *tag, int B, int T, int C, int OC, int bias)
{
    const int BT = B * T;
    const size_t ni = (size_t)BT * C, no = (size_t)BT * OC, nw = (size_t)OC * C;
    float *inp = hr(ni, 1), *w = hr(nw, 0.03f), *b = bias ? hr(OC, 1) : NULL, *out = hr(no, 1);
    float *g = hr(no, 0.01f), *gin = hr(ni, 0), *gw = hr(nw, 0), *gb = hr(OC, 0);
    float *di = dev(inp, ni), *dw = dev(w, nw), *db = bias ? dev(b, OC) : NULL, *dout = dz(no);
    float *dg = dev(g, no), *dgi = dz(ni), *dgw = dz(nw), *dgb = dz(OC);
    double gm, cm, am;
    char n1[64], n2[64];
    snprintf(n1, sizeof n1, "matmul_forward %s", tag);
    snprintf(n2, sizeof n2, "matmul_backward %s", tag);
    GPU_MS(gm, check(lm_cu_matmul_forward(X, dout, di, dw, db, B, T, C, OC), n1));
    CPU_MS(cm, lm_ref_matmul_forward(out, inp, w, b, B, T, C, OC));
    GPU_MS(am, (naive_matmul_forward<<<nb(no), 256, 0, (cudaStream_t)lm_cu_ctx_stream(X)>>>(
                   dout, di, dw, db, BT, C, OC)));
    add(n1, gm, cm, am, "naive: 1 thread per output");
    GPU_MS(gm, check(lm_cu_matmul_backward(X, dgi, dgw, bias ? dgb : NULL, dg, di, dw, B, T, C, OC),
                     n2));
    CPU_MS(cm, lm_ref_matmul_backward(gin, gw, bias ? gb : NULL, g, inp, w, B, T, C, OC));
    cudaStream_t st = (cudaStream_t)lm_cu_ctx_stream(X);
    GPU_MS(am, naive_matmul_backward_dinp<<<nb(ni), 256, 0, st>>>(dgi, dg, dw, BT, C, OC);
           naive_matmul_backward_dw<<<nb(nw), 256, 0, st>>>(dgw, bias ? dgb : NULL, dg, di, BT, C,
                                                            OC));
    add(n2, gm, cm, am, "naive: 1 thread per output");
    free(inp), free(w), free(b), free(out), free(g), free(gin), free(gw), free(gb);
    lm_cu_free(di), lm_cu_free(dw), lm_cu_free(db), lm_cu_free(dout);
    lm_cu_free(dg), lm_cu_free(dgi), lm_cu_free(dgw), lm_cu_free(dgb);
}

static void bench_kernels(int B, int T, int C, int NH)
{
    const int BT = B * T;
    const size_t n = (size_t)BT * C, n3 = 3 * n, n4 = 4 * n, na = (size_t)B * NH * T * T,
                 nl = (size_t)BT * V;
    cudaStream_t st = (cudaStream_t)lm_cu_ctx_stream(X);
    printf("%-28s %9s %11s %10s %10s %8s  %s\n", "kernel", "ptb ms", "cpu ref ms", "cpu/ptb",
           "alt ms", "alt/ptb", "alternative");
    double gm, cm, am;
    int32_t *tok = (int32_t *)malloc(BT * sizeof *tok), *tgt = (int32_t *)malloc(BT * sizeof *tgt);
    for (int i = 0; i < BT; i++) {
        tok[i] = (int32_t)(lm_rng_next(&SEED) % (i % 4 ? 64 : V)); /* a skewed distribution */
        tgt[i] = i % 5 == 0 ? -1 : (int32_t)(lm_rng_next(&SEED) % V);
    }
    int32_t *dtok, *dtgt;
    check(lm_cu_alloc(X, (void **)&dtok, BT * 4), "alloc");
    check(lm_cu_alloc(X, (void **)&dtgt, BT * 4), "alloc");
    check(lm_cu_upload(X, dtok, tok, BT * 4), "upload");
    check(lm_cu_upload(X, dtgt, tgt, BT * 4), "upload");
    /* encoder */
    float *wte = hr((size_t)V * C, 1), *wpe = hr((size_t)T * C, 1), *out = hr(n4, 1),
          *g = hr(n4, 0.1f), *gwte = hr((size_t)V * C, 0), *gwpe = hr((size_t)T * C, 0);
    float *dwte = dev(wte, (size_t)V * C), *dwpe = dev(wpe, (size_t)T * C), *dout = dz(n4),
          *dg = dev(g, n4), *dgwte = dz((size_t)V * C), *dgwpe = dz((size_t)T * C);
    GPU_MS(gm, check(lm_cu_encoder_forward(X, dout, dtok, dwte, dwpe, B, T, C), "encoder"));
    CPU_MS(cm, lm_ref_encoder_forward(out, tok, wte, wpe, B, T, C));
    add("encoder_forward", gm, cm, NAN, NULL);
    GPU_MS(gm, check(lm_cu_encoder_backward(X, dgwte, dgwpe, dg, dtok, B, T, C, V), "encoder_b"));
    CPU_MS(cm, lm_ref_encoder_backward(gwte, gwpe, g, tok, B, T, C));
    GPU_MS(am, (atomic_encoder_backward<<<nb(n), 256, 0, st>>>(dgwte, dgwpe, dg, dtok, B, T, C)));
    add("encoder_backward", gm, cm, am, "atomicAdd (llm.c naive)");
    /* layernorm */
    float *inp = hr(n4, 2), *w = hr(C, 1), *bb = hr(C, 1), *mean = hr(BT, 1), *rstd = hr(BT, 1);
    float *gin = hr(n4, 0), *gw = hr(C, 0), *gb = hr(C, 0);
    float *dinp = dev(inp, n4), *dw = dev(w, C), *db = dev(bb, C), *dmean = dz(BT), *drstd = dz(BT),
          *dgin = dz(n4), *dgw = dz(C), *dgb = dz(C);
    GPU_MS(gm, check(lm_cu_layernorm_forward(X, dout, dmean, drstd, dinp, dw, db, B, T, C), "ln"));
    CPU_MS(cm, lm_ref_layernorm_forward(out, mean, rstd, inp, w, bb, B, T, C));
    add("layernorm_forward", gm, cm, NAN, NULL);
    GPU_MS(gm,
           check(lm_cu_layernorm_backward(X, dgin, dgw, dgb, dg, dinp, dw, dmean, drstd, B, T, C),
                 "ln_b"));
    CPU_MS(cm, lm_ref_layernorm_backward(gin, gw, gb, g, inp, w, mean, rstd, B, T, C));
    GPU_MS(am, (atomic_layernorm_backward<<<(BT + 7) / 8, 256, 0, st>>>(dgin, dgw, dgb, dg, dinp,
                                                                        dw, dmean, drstd, BT, C)));
    add("layernorm_backward", gm, cm, am, "atomicAdd for dweight, dbias");
    /* matmuls */
    bench_matmul("qkv C->3C", B, T, C, 3 * C, 1);
    bench_matmul("attproj C->C", B, T, C, C, 1);
    bench_matmul("fc C->4C", B, T, C, 4 * C, 1);
    bench_matmul("fcproj 4C->C", B, T, 4 * C, C, 1);
    bench_matmul("logits C->V", B, T, C, V, 0);
    /* attention */
    float *pre = (float *)calloc(na, 4), *att = (float *)calloc(na, 4),
          *gpre = (float *)calloc(na, 4), *gatt = (float *)calloc(na, 4), *qkv = hr(n3, 1.5f),
          *gq = hr(n3, 0);
    float *dqkv = dev(qkv, n3), *dpre = dz(na), *datt = dz(na), *dgq = dz(n3), *dgpre = dz(na),
          *dgatt = dz(na);
    GPU_MS(gm, check(lm_cu_attention_forward(X, dout, dpre, datt, dqkv, B, T, C, NH), "attn"));
    CPU_MS(cm, lm_ref_attention_forward(out, pre, att, qkv, B, T, C, NH));
    GPU_MS(am, (naive_attention_forward<<<(B * NH * T + 127) / 128, 128, 0, st>>>(
                   dout, dgpre, dgatt, dqkv, B, T, C, NH)));
    add("attention_forward", gm, cm, am, "naive: 1 thread per (b,h,t)");
    check(lm_cu_upload(X, datt, att, na * 4), "upload");
    GPU_MS(gm, check(lm_cu_attention_backward(X, dgq, dgpre, dgatt, dg, dqkv, datt, B, T, C, NH),
                     "attn_b"));
    CPU_MS(cm, lm_ref_attention_backward(gq, gpre, gatt, g, qkv, att, B, T, C, NH));
    GPU_MS(am, (naive_attention_backward<<<(B * NH * T + 127) / 128, 128, 0, st>>>(
                   dgq, dgpre, dgatt, dg, dqkv, datt, B, T, C, NH)));
    add("attention_backward", gm, cm, am, "naive + atomicAdd for dk, dv");
    /* the fused attention (same CPU twin); the alternative: the materialised one above */
    double cm_f = ROWS[NROWS - 2].cpu, cm_b = ROWS[NROWS - 1].cpu;
    float *dlse = dz((size_t)B * NH * T);
    GPU_MS(gm, check(lm_cu_attention_fused_forward(X, dout, dlse, dqkv, B, T, C, NH), "fused"));
    GPU_MS(am, check(lm_cu_attention_forward(X, dout, dpre, datt, dqkv, B, T, C, NH), "attn"));
    add("attention_fused_forward", gm, cm_f, am, "materialised: cuBLAS + softmax");
    GPU_MS(gm, check(lm_cu_attention_fused_backward(X, dgq, dg, dqkv, dout, dlse, B, T, C, NH),
                     "fused_b"));
    GPU_MS(am, check(lm_cu_attention_backward(X, dgq, dgpre, dgatt, dg, dqkv, datt, B, T, C, NH),
                     "attn_b"));
    add("attention_fused_backward", gm, cm_b, am, "materialised: cuBLAS + softmax");
    if (lm_cu_ctx_precision(X) == 0) { /* FP32: the other thread layout (lm_kernels.h) */
        lm_cu_ctx_flash_layout(X, 16);
        GPU_MS(am, check(lm_cu_attention_fused_forward(X, dout, dlse, dqkv, B, T, C, NH), "f16"));
        add("attention_fused_forward", ROWS[NROWS - 2].gpu, cm_f, am, "layout 4x4 per thread");
        GPU_MS(am, check(lm_cu_attention_fused_backward(X, dgq, dg, dqkv, dout, dlse, B, T, C, NH),
                         "f16_b"));
        add("attention_fused_backward", ROWS[NROWS - 2].gpu, cm_b, am, "4x4 per thread, dq kernel");
        lm_cu_ctx_flash_layout(X, 8);
    }
    /* pointwise on (B, T, 4C) */
    GPU_MS(gm, check(lm_cu_gelu_forward(X, dout, dinp, (int)n4), "gelu"));
    CPU_MS(cm, lm_ref_gelu_forward(out, inp, (int)n4));
    add("gelu_forward 4C", gm, cm, NAN, NULL);
    GPU_MS(gm, check(lm_cu_gelu_backward(X, dgin, dinp, dg, (int)n4), "gelu_b"));
    CPU_MS(cm, lm_ref_gelu_backward(gin, inp, g, (int)n4));
    add("gelu_backward 4C", gm, cm, NAN, NULL);
    GPU_MS(gm, check(lm_cu_residual_forward(X, dout, dinp, dg, (int)n), "residual"));
    CPU_MS(cm, lm_ref_residual_forward(out, inp, g, (int)n));
    add("residual_forward", gm, cm, NAN, NULL);
    GPU_MS(gm, check(lm_cu_residual_backward(X, dgin, dout, dg, (int)n), "residual_b"));
    CPU_MS(cm, lm_ref_residual_backward(gin, out, g, (int)n));
    add("residual_backward", gm, cm, NAN, NULL);
    /* loss */
    float *logits = hr(nl, 4), *probs = (float *)calloc(nl, 4), *dl = (float *)calloc(nl, 4);
    float *dlog = dev(logits, nl), *dprobs = dz(nl), *ddl = dz(nl);
    int cnt = 0;
    double *dsum;
    check(lm_cu_alloc(X, (void **)&dsum, 2 * sizeof(double)), "alloc");
    GPU_MS(gm, check(lm_cu_crossentropy_forward_sum(X, dprobs, dlog, dtgt, B, T, V, dsum), "ce"));
    CPU_MS(cm, lm_ref_crossentropy_forward(probs, logits, tgt, B, T, V, &cnt));
    add("crossentropy_forward", gm, cm, NAN, NULL);
    GPU_MS(gm, check(lm_cu_crossentropy_backward(X, ddl, dprobs, dtgt, B, T, V, cnt), "ce_b"));
    CPU_MS(cm, lm_ref_crossentropy_backward(dl, probs, tgt, B, T, V, cnt));
    add("crossentropy_backward", gm, cm, NAN, NULL);
    /* the host arrays and device buffers stay until exit: one table per run */
}

/* ------------------------------------------------------------------ training throughput */

static int bench_train(int L, int C, int NH, int B, int T, int steps, lm_cuda_precision prec,
                       FILE *json)
{
    lm_config c = {LM_VOCAB, (uint32_t)T, (uint32_t)L, (uint32_t)NH, (uint32_t)C};
    ptb_errbuf eb = {{0}};
    lm_model *m;
    lm_cuda *g;
    if (lm_model_new(&c, &m, &eb) != 0) {
        fprintf(stderr, "bench_lm_cuda: %s\n", eb.msg);
        return 2;
    }
    lm_model_init(m, 1);
    if (lm_cuda_new(m, prec, &g, &eb) != 0) {
        fprintf(stderr, "bench_lm_cuda: %s\n", eb.msg);
        return 1;
    }
    size_t BT = (size_t)B * T;
    int32_t *tok = (int32_t *)malloc(BT * 4), *tgt = (int32_t *)malloc(BT * 4);
    uint64_t s = 5;
    for (size_t i = 0; i < BT; i++)
        tok[i] = (int32_t)(lm_rng_next(&s) % 256);
    for (size_t i = 0; i < BT; i++)
        tgt[i] = (i + 1) % T ? tok[i + 1] : LM_EOT;
    lm_batch b = {(uint32_t)B, (uint32_t)T, tok, tgt};
    lm_adamw o;
    lm_adamw_default(&o);
    float loss0 = 0, loss = 0, row[V];
    double t0 = 0;
    for (int i = 0; i < 3 + steps; i++) {
        if (i == 3) {
            if (lm_cuda_logits_row(g, 0, row)) /* waits for the warm-up steps */
                break;
            t0 = now();
        }
        int rc = lm_cuda_forward(g, &b, i == 0 || i == 2 + steps ? &loss : NULL);
        if (!rc)
            rc = lm_cuda_backward(g, &b);
        if (!rc)
            rc = lm_cuda_adamw_step(g, &o, (uint64_t)i + 1);
        if (rc) {
            fprintf(stderr, "bench_lm_cuda: step %d: %s\n", i, lm_cuda_errmsg(g));
            return 1;
        }
        if (i == 0)
            loss0 = loss;
    }
    if (lm_cuda_logits_row(g, 0, row)) {
        fprintf(stderr, "bench_lm_cuda: %s\n", lm_cuda_errmsg(g));
        return 1;
    }
    double dt = now() - t0, tps = (double)BT * steps / dt;
    const char *pn = prec == LM_CUDA_BF16 ? "bf16" : "fp32";
    printf("train L=%d C=%d H=%d B=%d T=%d %s: %zu parameters, %d steps, %.2f ms/step, "
           "%.0f tokens/s (loss %.4f -> %.4f)\n",
           L, C, NH, B, T, pn, lm_model_num_params(m), steps, dt / steps * 1e3, tps, loss0, loss);
    if (json)
        fprintf(json,
                "{\"mode\": \"train\", \"layers\": %d, \"channels\": %d, \"heads\": %d, \"batch\": "
                "%d, \"seq\": %d, \"precision\": \"%s\", \"steps\": %d, \"ms_per_step\": %.4f, "
                "\"tokens_per_s\": %.1f, \"loss_first\": %.6f, \"loss_last\": %.6f}\n",
                L, C, NH, B, T, pn, steps, dt / steps * 1e3, tps, loss0, loss);
    lm_cuda_free(g);
    lm_model_free(m);
    free(tok);
    free(tgt);
    return 0;
}

int main(int argc, char **argv)
{
    int B = 8, T = 256, C = 768, NH = 12, L = 12, steps = 20, train = 0;
    lm_cuda_precision prec = LM_CUDA_FP32;
    const char *json_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--train")) {
            train = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "bench_lm_cuda: %s needs a value (or unknown option)\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--batch"))
            B = atoi(v);
        else if (!strcmp(a, "--seq"))
            T = atoi(v);
        else if (!strcmp(a, "--channels"))
            C = atoi(v);
        else if (!strcmp(a, "--heads"))
            NH = atoi(v);
        else if (!strcmp(a, "--layers"))
            L = atoi(v);
        else if (!strcmp(a, "--steps"))
            steps = atoi(v);
        else if (!strcmp(a, "--reps"))
            REPS = atoi(v);
        else if (!strcmp(a, "--cpu-reps"))
            CPU_REPS = atoi(v);
        else if (!strcmp(a, "--json"))
            json_path = v;
        else if (!strcmp(a, "--precision") && (!strcmp(v, "fp32") || !strcmp(v, "bf16")))
            prec = !strcmp(v, "bf16") ? LM_CUDA_BF16 : LM_CUDA_FP32;
        else {
            fprintf(stderr, "bench_lm_cuda: bad option %s %s\n", a, v);
            return 2;
        }
    }
    if (B < 1 || T < 1 || C < 1 || NH < 1 || C % NH || L < 1 || steps < 1 || REPS < 1 ||
        REPS > 256 || CPU_REPS < 0 || CPU_REPS > 64) {
        fprintf(stderr, "bench_lm_cuda: bad sizes\n");
        return 2;
    }
    ptb_errbuf eb = {{0}};
    if (lm_cuda_available(&eb) != 0) {
        printf("bench_lm_cuda: skipped: %s\n", eb.msg);
        return 77;
    }
    cudaDeviceProp p;
    CUCHECK(cudaGetDeviceProperties(&p, 0));
    printf("device: %s, %d SMs\n", p.name, p.multiProcessorCount);
    FILE *json = NULL;
    if (json_path && !(json = fopen(json_path, "w"))) {
        perror(json_path);
        return 2;
    }
    if (train) {
        int rc = bench_train(L, C, NH, B, T, steps, prec, json);
        if (json)
            fclose(json);
        return rc;
    }
    char msg[512];
    if (lm_cu_ctx_new(prec == LM_CUDA_BF16, &X, msg, sizeof msg)) {
        fprintf(stderr, "bench_lm_cuda: %s\n", msg);
        return 1;
    }
    CUCHECK(cudaEventCreate(&E0));
    CUCHECK(cudaEventCreate(&E1));
    printf("kernels, B=%d T=%d C=%d NH=%d V=%d, %s; ptb: median of %d, cpu: median of %d\n", B, T,
           C, NH, V, prec == LM_CUDA_BF16 ? "bf16" : "fp32", REPS, CPU_REPS);
    bench_kernels(B, T, C, NH);
    if (json) {
        fprintf(json,
                "{\"mode\": \"kernels\", \"device\": \"%s\", \"B\": %d, \"T\": %d, \"C\": %d, "
                "\"NH\": %d, \"precision\": \"%s\", \"rows\": [\n",
                p.name, B, T, C, NH, prec == LM_CUDA_BF16 ? "bf16" : "fp32");
        for (int i = 0; i < NROWS; i++) {
            row *r = &ROWS[i];
            fprintf(json, "  {\"kernel\": \"%s\", \"ptb_ms\": %.5f", r->name, r->gpu);
            if (!isnan(r->cpu))
                fprintf(json, ", \"cpu_ms\": %.4f", r->cpu);
            if (!isnan(r->alt))
                fprintf(json, ", \"alt_ms\": %.5f, \"alt\": \"%s\"", r->alt, r->alt_name);
            fprintf(json, "}%s\n", i + 1 < NROWS ? "," : "");
        }
        fprintf(json, "]}\n");
        fclose(json);
    }
    lm_cu_ctx_free(X);
    return 0;
}
