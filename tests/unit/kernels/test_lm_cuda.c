/* The model on the GPU (kernels/lm_cuda.h, kernels/cuda/) against the CPU reference:
 *   kernels   every lm_cu_* wrapper against its lm_ref_* twin on random data of a few shapes
 *             (odd T, C = 96, ...), forward and backward, FP32 and BF16, |gpu - ref| <=
 *             atol * rms(ref) + rtol * |ref| (atol in units of the tensor's RMS, so that one
 *             tolerance fits sums of many terms and single values alike): 2e-5 and 2e-5 in FP32
 *             (seen on an H200: errors under 1/20 of that), 5e-2 for BF16's matmuls and 1e-1
 *             for its attention (seen: under 1/3); the fused attention (out, dinp) likewise, on
 *             those shapes and on more head sizes (16, 33, 64, 128) and T up to 1024 (seen on
 *             an H100: err/tol at most 0.17 in FP32, 0.31 in BF16), FP32 in both thread layouts;
 *   model     loss and every gradient tensor after one forward/backward against lm_model.c on
 *             the same batch (with -1 targets), and the parameters after 20 AdamW steps
 *             (|gpu - cpu| / |cpu - start|: 1e-3 in FP32, 0.1 in BF16);
 *   determinism  two GPU models trained 20 steps from the same start: the same bits;
 *   generate  lm_cuda_generate = lm_generate for a trained tiny model;
 *   bad input token or T out of range: PTB_EINVAL.
 * Exits 77 (skipped) when lm_cuda_available says no (no CUDA in the build, no device). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm.h"
#include "lm_cuda.h"
#ifdef PTB_LM_HAVE_CUDA
#include "lm_kernels.h"
#include "ref/lm_ref.h"
#endif

#define V LM_VOCAB

static float *hdup(const float *a, size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    memcpy(p, a, n * sizeof *p);
    return p;
}

/* ------------------------------------------------------------------ kernels */

#ifdef PTB_LM_HAVE_CUDA

static uint64_t rng_state = 42;

static float frand(void) /* uniform in [-1, 1) */
{
    return (float)(lm_rng_next(&rng_state) >> 40) / (float)(1 << 23) - 1.0f;
}

static float *hrand(size_t n, float scale, float offset)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = offset + scale * frand();
    return p;
}

typedef struct tol {
    double atol, rtol;
} tol;
static const tol TOL_FP32 = {2e-5, 2e-5}; /* also every kernel of BF16 that has no product */
static const tol TOL_BF16 = {5e-2, 5e-2}; /* products of bf16-rounded operands */
/* the attention's backward chains three products and the softmax's difference in BF16 */
static const tol TOL_BF16_ATT = {1e-1, 1e-1};

static int nfail;

/* Compare n values; only the entries where mask (may be NULL) is set. Prints one line. */
static void cmp(const char *what, const float *gpu, const float *ref, size_t n, tol t,
                const unsigned char *mask)
{
    double ss = 0;
    size_t cnt = 0;
    for (size_t i = 0; i < n; i++)
        if (!mask || mask[i]) {
            ss += (double)ref[i] * ref[i];
            cnt++;
        }
    double rms = cnt ? sqrt(ss / cnt) : 0, worst = 0, maxerr = 0;
    size_t at = 0, bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (mask && !mask[i])
            continue;
        double e = fabs((double)gpu[i] - ref[i]), lim = t.atol * rms + t.rtol * fabs(ref[i]);
        if (!(e <= lim)) /* NaN too */
            bad++;
        if (e > maxerr || isnan(e)) {
            maxerr = e;
            at = i;
        }
        if (lim > 0 && e / lim > worst)
            worst = e / lim;
    }
    printf("    %-26s max|err| %-10.3g rms(ref) %-10.3g err/tol %-8.3g %s\n", what, maxerr, rms,
           worst, bad ? "FAIL" : "ok");
    if (bad) {
        printf("      %zu of %zu over; worst at %zu: gpu %.8g ref %.8g\n", bad, cnt, at,
               (double)gpu[at], (double)ref[at]);
        nfail++;
    }
}

static lm_cu_ctx *X;

static float *dput(const void *h, size_t bytes)
{
    void *d;
    assert_int_equal(lm_cu_alloc(X, &d, bytes), 0);
    assert_int_equal(lm_cu_upload(X, d, h, bytes), 0);
    return d;
}

/* the device array d (n floats) back into a new host array */
static float *dget(const float *d, size_t n)
{
    float *h = malloc((n ? n : 1) * sizeof *h);
    assert_non_null(h);
    assert_int_equal(lm_cu_sync(X), 0);
    assert_int_equal(lm_cu_download(X, h, d, n * sizeof *h), 0);
    return h;
}

static void cmpd(const char *what, const float *d, const float *ref, size_t n, tol t,
                 const unsigned char *mask)
{
    float *h = dget(d, n);
    cmp(what, h, ref, n, t, mask);
    free(h);
}

#define FREE_ALL(...)                                                                              \
    do {                                                                                           \
        void *p_[] = {__VA_ARGS__};                                                                \
        for (size_t i_ = 0; i_ < sizeof p_ / sizeof p_[0]; i_++)                                   \
            free(p_[i_]);                                                                          \
    } while (0)
#define DFREE_ALL(...)                                                                             \
    do {                                                                                           \
        void *p_[] = {__VA_ARGS__};                                                                \
        for (size_t i_ = 0; i_ < sizeof p_ / sizeof p_[0]; i_++)                                   \
            lm_cu_free(p_[i_]);                                                                    \
    } while (0)

typedef struct shape {
    int B, T, C, NH;
} shape;

static void kernels_encoder_layernorm(shape s, tol t)
{
    const int B = s.B, T = s.T, C = s.C, BT = B * T;
    const size_t n = (size_t)BT * C;
    int32_t *tok = malloc(BT * sizeof *tok);
    for (int i = 0; i < BT; i++)
        tok[i] = (int32_t)(lm_rng_next(&rng_state) % (i % 3 ? 8 : V)); /* repeats, like text */
    int32_t *dtok = (int32_t *)dput(tok, BT * sizeof *tok);
    /* encoder */
    float *wte = hrand((size_t)V * C, 1, 0), *wpe = hrand((size_t)T * C, 1, 0),
          *out = hrand(n, 1, 0);
    float *dwte_ = dput(wte, (size_t)V * C * 4), *dwpe_ = dput(wpe, (size_t)T * C * 4),
          *dout_ = dput(out, n * 4);
    lm_ref_encoder_forward(out, tok, wte, wpe, B, T, C);
    assert_int_equal(lm_cu_encoder_forward(X, dout_, dtok, dwte_, dwpe_, B, T, C), 0);
    cmpd("encoder_forward", dout_, out, n, t, NULL);
    float *g = hrand(n, 1, 0), *gwte = hrand((size_t)V * C, 1, 0),
          *gwpe = hrand((size_t)T * C, 1, 0);
    float *dg = dput(g, n * 4), *dgwte = dput(gwte, (size_t)V * C * 4),
          *dgwpe = dput(gwpe, (size_t)T * C * 4);
    lm_ref_encoder_backward(gwte, gwpe, g, tok, B, T, C);
    assert_int_equal(lm_cu_encoder_backward(X, dgwte, dgwpe, dg, dtok, B, T, C, V), 0);
    cmpd("encoder_backward dwte", dgwte, gwte, (size_t)V * C, t, NULL);
    cmpd("encoder_backward dwpe", dgwpe, gwpe, (size_t)T * C, t, NULL);
    /* layernorm, on inputs with an offset and a spread per row */
    float *inp = hrand(n, 2, 0.5f), *w = hrand(C, 0.5f, 1), *b = hrand(C, 0.5f, 0);
    float *mean = hrand(BT, 1, 0), *rstd = hrand(BT, 1, 0);
    float *dinp_ = dput(inp, n * 4), *dw_ = dput(w, C * 4), *db_ = dput(b, C * 4),
          *dmean = dput(mean, BT * 4), *drstd = dput(rstd, BT * 4);
    lm_ref_layernorm_forward(out, mean, rstd, inp, w, b, B, T, C);
    assert_int_equal(lm_cu_layernorm_forward(X, dout_, dmean, drstd, dinp_, dw_, db_, B, T, C), 0);
    cmpd("layernorm_forward out", dout_, out, n, t, NULL);
    cmpd("layernorm_forward mean", dmean, mean, BT, t, NULL);
    cmpd("layernorm_forward rstd", drstd, rstd, BT, t, NULL);
    /* backward from the ref's mean and rstd, into gradients that hold values (+=) */
    float *gin = hrand(n, 1, 0), *gw = hrand(C, 1, 0), *gb = hrand(C, 1, 0);
    float *dgin = dput(gin, n * 4), *dgw = dput(gw, C * 4), *dgb = dput(gb, C * 4);
    assert_int_equal(lm_cu_upload(X, dmean, mean, BT * 4), 0);
    assert_int_equal(lm_cu_upload(X, drstd, rstd, BT * 4), 0);
    lm_ref_layernorm_backward(gin, gw, gb, g, inp, w, mean, rstd, B, T, C);
    assert_int_equal(
        lm_cu_layernorm_backward(X, dgin, dgw, dgb, dg, dinp_, dw_, dmean, drstd, B, T, C), 0);
    cmpd("layernorm_backward dinp", dgin, gin, n, t, NULL);
    cmpd("layernorm_backward dweight", dgw, gw, C, t, NULL);
    cmpd("layernorm_backward dbias", dgb, gb, C, t, NULL);
    FREE_ALL(tok, wte, wpe, out, g, gwte, gwpe, inp, w, b, mean, rstd, gin, gw, gb);
    DFREE_ALL(dtok, dwte_, dwpe_, dout_, dg, dgwte, dgwpe, dinp_, dw_, db_, dmean, drstd, dgin, dgw,
              dgb);
}

static void kernels_matmul(shape s, int C, int OC, int bias, tol t)
{
    const int B = s.B, T = s.T, BT = B * T;
    const size_t ni = (size_t)BT * C, no = (size_t)BT * OC, nw = (size_t)OC * C;
    char name[64];
    float *inp = hrand(ni, 1, 0), *w = hrand(nw, 1.0f / sqrtf((float)C), 0),
          *b = bias ? hrand(OC, 1, 0) : NULL, *out = hrand(no, 1, 0);
    float *di = dput(inp, ni * 4), *dw = dput(w, nw * 4), *db = bias ? dput(b, OC * 4) : NULL,
          *dout = dput(out, no * 4);
    lm_ref_matmul_forward(out, inp, w, b, B, T, C, OC);
    assert_int_equal(lm_cu_matmul_forward(X, dout, di, dw, db, B, T, C, OC), 0);
    snprintf(name, sizeof name, "matmul_forward %dx%d", C, OC);
    cmpd(name, dout, out, no, t, NULL);
    float *g = hrand(no, 1.0f / sqrtf((float)BT), 0), *gin = hrand(ni, 1, 0), *gw = hrand(nw, 1, 0),
          *gb = bias ? hrand(OC, 1, 0) : NULL;
    float *dg = dput(g, no * 4), *dgin = dput(gin, ni * 4), *dgw = dput(gw, nw * 4),
          *dgb = bias ? dput(gb, OC * 4) : NULL;
    lm_ref_matmul_backward(gin, gw, gb, g, inp, w, B, T, C, OC);
    assert_int_equal(lm_cu_matmul_backward(X, dgin, dgw, dgb, dg, di, dw, B, T, C, OC), 0);
    snprintf(name, sizeof name, "matmul_backward %dx%d dinp", C, OC);
    cmpd(name, dgin, gin, ni, t, NULL);
    snprintf(name, sizeof name, "matmul_backward %dx%d dw", C, OC);
    cmpd(name, dgw, gw, nw, t, NULL);
    if (bias) {
        snprintf(name, sizeof name, "matmul_backward %dx%d db", C, OC);
        cmpd(name, dgb, gb, OC, TOL_FP32, NULL); /* a sum, no product: fp32 in both modes */
    }
    FREE_ALL(inp, w, b, out, g, gin, gw, gb);
    DFREE_ALL(di, dw, db, dout, dg, dgin, dgw, dgb);
}

static void kernels_attention(shape s, tol t)
{
    const int B = s.B, T = s.T, C = s.C, NH = s.NH;
    const size_t ni = (size_t)B * T * 3 * C, no = (size_t)B * T * C, na = (size_t)B * NH * T * T;
    unsigned char *causal = malloc(na);
    for (size_t i = 0; i < na; i++)
        causal[i] = (i % T) <= (i / T) % T; /* t2 <= t */
    float *inp = hrand(ni, 1.5f, 0), *out = hrand(no, 1, 0), *pre = calloc(na, 4),
          *att = calloc(na, 4);
    float *di = dput(inp, ni * 4), *dout = dput(out, no * 4), *dpre = dput(pre, na * 4),
          *datt = dput(att, na * 4);
    lm_ref_attention_forward(out, pre, att, inp, B, T, C, NH);
    assert_int_equal(lm_cu_attention_forward(X, dout, dpre, datt, di, B, T, C, NH), 0);
    cmpd("attention_forward out", dout, out, no, t, NULL);
    cmpd("attention_forward preatt", dpre, pre, na, t, causal); /* the ref leaves t2 > t */
    cmpd("attention_forward att", datt, att, na, t, NULL);
    /* backward from the ref's att; dpreatt, datt zero for the ref (the GPU overwrites) */
    float *g = hrand(no, 1, 0), *gin = hrand(ni, 1, 0), *gpre = calloc(na, 4),
          *gatt = calloc(na, 4);
    float *dg = dput(g, no * 4), *dgin = dput(gin, ni * 4), *dgpre = dput(gpre, na * 4),
          *dgatt = dput(gatt, na * 4);
    assert_int_equal(lm_cu_upload(X, datt, att, na * 4), 0);
    lm_ref_attention_backward(gin, gpre, gatt, g, inp, att, B, T, C, NH);
    assert_int_equal(lm_cu_attention_backward(X, dgin, dgpre, dgatt, dg, di, datt, B, T, C, NH), 0);
    cmpd("attention_backward dinp", dgin, gin, ni, t, NULL);
    cmpd("attention_backward dpreatt", dgpre, gpre, na, t, NULL);
    cmpd("attention_backward datt", dgatt, gatt, na, t, causal);
    FREE_ALL(causal, inp, out, pre, att, g, gin, gpre, gatt);
    DFREE_ALL(di, dout, dpre, datt, dg, dgin, dgpre, dgatt);
}

/* The fused attention against the ref: out, and dinp from the fused backward (which reads the
 * fused forward's out and lse; += into dinp, as the ref). */
static void kernels_attention_fused(shape s, tol t)
{
    const int B = s.B, T = s.T, C = s.C, NH = s.NH;
    const size_t ni = (size_t)B * T * 3 * C, no = (size_t)B * T * C, na = (size_t)B * NH * T * T;
    char name[96];
    float *inp = hrand(ni, 1.5f, 0), *out = hrand(no, 1, 0), *pre = calloc(na, 4),
          *att = calloc(na, 4), *lse = calloc((size_t)B * NH * T, 4);
    assert_non_null(pre);
    assert_non_null(att);
    float *di = dput(inp, ni * 4), *dout = dput(out, no * 4), *dlse = dput(lse, B * NH * T * 4);
    lm_ref_attention_forward(out, pre, att, inp, B, T, C, NH);
    assert_int_equal(lm_cu_attention_fused_forward(X, dout, dlse, di, B, T, C, NH), 0);
    snprintf(name, sizeof name, "fused_forward out hs=%d", C / NH);
    cmpd(name, dout, out, no, t, NULL);
    float *g = hrand(no, 1, 0), *gin = hrand(ni, 1, 0), *gpre = calloc(na, 4),
          *gatt = calloc(na, 4);
    float *dg = dput(g, no * 4), *dgin = dput(gin, ni * 4);
    lm_ref_attention_backward(gin, gpre, gatt, g, inp, att, B, T, C, NH);
    assert_int_equal(lm_cu_attention_fused_backward(X, dgin, dg, di, dout, dlse, B, T, C, NH), 0);
    snprintf(name, sizeof name, "fused_backward dinp hs=%d", C / NH);
    cmpd(name, dgin, gin, ni, t, NULL);
    FREE_ALL(inp, out, pre, att, lse, g, gin, gpre, gatt);
    DFREE_ALL(di, dout, dlse, dg, dgin);
}

static void kernels_pointwise_loss(shape s, tol t)
{
    const int B = s.B, T = s.T, BT = B * T, N = BT * 4 * s.C;
    float *inp = hrand(N, 3, 0), *out = hrand(N, 1, 0), *o2 = hrand(N, 1, 0), *g = hrand(N, 1, 0),
          *gin = hrand(N, 1, 0);
    float *di = dput(inp, N * 4), *dout = dput(out, N * 4), *d2 = dput(o2, N * 4),
          *dg = dput(g, N * 4), *dgin = dput(gin, N * 4);
    lm_ref_gelu_forward(out, inp, N);
    assert_int_equal(lm_cu_gelu_forward(X, dout, di, N), 0);
    cmpd("gelu_forward", dout, out, N, t, NULL);
    lm_ref_gelu_backward(gin, inp, g, N);
    assert_int_equal(lm_cu_gelu_backward(X, dgin, di, dg, N), 0);
    cmpd("gelu_backward", dgin, gin, N, t, NULL);
    lm_ref_residual_forward(out, inp, g, N);
    assert_int_equal(lm_cu_residual_forward(X, dout, di, dg, N), 0);
    cmpd("residual_forward", dout, out, N, t, NULL);
    assert_int_equal(lm_cu_upload(X, dout, out, (size_t)N * 4), 0);
    lm_ref_residual_backward(out, o2, g, N);
    assert_int_equal(lm_cu_residual_backward(X, dout, d2, dg, N), 0);
    cmpd("residual_backward da", dout, out, N, t, NULL);
    cmpd("residual_backward db", d2, o2, N, t, NULL);
    /* cross-entropy: logits spread over a few units, a third of the targets -1 */
    int32_t *tg = malloc(BT * sizeof *tg);
    for (int i = 0; i < BT; i++)
        tg[i] = i % 3 == 1 ? -1 : (int32_t)(lm_rng_next(&rng_state) % V);
    int32_t *dtg = (int32_t *)dput(tg, BT * sizeof *tg);
    const size_t nl = (size_t)BT * V;
    float *logits = hrand(nl, 4, 0), *probs = calloc(nl, 4), *dl = calloc(nl, 4);
    float *dlog = dput(logits, nl * 4), *dprobs = dput(probs, nl * 4), *ddl = dput(dl, nl * 4);
    int n = 0, gn = -1;
    float loss = lm_ref_crossentropy_forward(probs, logits, tg, B, T, V, &n), gloss = 0;
    assert_int_equal(lm_cu_crossentropy_forward(X, dprobs, dlog, dtg, B, T, V, &gn, &gloss), 0);
    cmpd("crossentropy_forward probs", dprobs, probs, nl, t, NULL);
    cmp("crossentropy_forward loss", &gloss, &loss, 1, t, NULL);
    assert_int_equal(gn, n);
    lm_ref_crossentropy_backward(dl, probs, tg, B, T, V, n);
    assert_int_equal(lm_cu_upload(X, dprobs, probs, nl * 4), 0);
    assert_int_equal(lm_cu_crossentropy_backward(X, ddl, dprobs, dtg, B, T, V, n), 0);
    cmpd("crossentropy_backward", ddl, dl, nl, t, NULL);
    FREE_ALL(inp, out, o2, g, gin, tg, logits, probs, dl);
    DFREE_ALL(di, dout, d2, dg, dgin, dtg, dlog, dprobs, ddl);
}

static void test_kernels(void **state)
{
    (void)state;
    static const shape shapes[] = {{2, 37, 96, 4}, {1, 64, 64, 2}, {3, 5, 24, 3}, {4, 33, 48, 6}};
    nfail = 0;
    for (int prec = 0; prec < 2; prec++) {
        char msg[512];
        assert_int_equal(lm_cu_ctx_new(prec, &X, msg, sizeof msg), 0);
        tol mm = prec ? TOL_BF16 : TOL_FP32;
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            shape s = shapes[i];
            printf("  %s B=%d T=%d C=%d NH=%d\n", prec ? "BF16" : "FP32", s.B, s.T, s.C, s.NH);
            kernels_encoder_layernorm(s, TOL_FP32);
            kernels_matmul(s, s.C, 3 * s.C, 1, mm);
            kernels_matmul(s, 4 * s.C, s.C, 1, mm);
            kernels_matmul(s, s.C, V, 0, mm); /* the logits: odd OC, no bias */
            kernels_attention(s, prec ? TOL_BF16_ATT : TOL_FP32);
            kernels_attention_fused(s, prec ? TOL_BF16_ATT : TOL_FP32);
            kernels_pointwise_loss(s, TOL_FP32);
        }
        /* the fused attention on more head sizes (hs 33: no 16-byte loads) and longer rows */
        static const shape fused[] = {{1, 1024, 128, 2}, {2, 100, 256, 2}, {2, 70, 32, 2},
                                      {1, 33, 99, 3},    {3, 5, 72, 3},    {1, 129, 192, 3}};
        for (size_t i = 0; i < sizeof fused / sizeof fused[0]; i++) {
            shape s = fused[i];
            printf("  %s fused attention B=%d T=%d C=%d NH=%d\n", prec ? "BF16" : "FP32", s.B, s.T,
                   s.C, s.NH);
            kernels_attention_fused(s, prec ? TOL_BF16_ATT : TOL_FP32);
        }
        if (prec == 0) { /* the FP32 kernels' other thread layout, which the benchmark compares */
            lm_cu_ctx_flash_layout(X, 16);
            for (size_t i = 0; i < 4; i++) {
                printf("  FP32 fused attention, layout 4x4, B=%d T=%d C=%d NH=%d\n", fused[i].B,
                       fused[i].T, fused[i].C, fused[i].NH);
                kernels_attention_fused(fused[i], TOL_FP32);
            }
            lm_cu_ctx_flash_layout(X, 8);
        }
        assert_int_equal(lm_cu_sync(X), 0);
        lm_cu_ctx_free(X);
        X = NULL;
    }
    printf("  kernels: %d comparisons over tolerance\n", nfail);
    assert_int_equal(nfail, 0);
}

#endif /* PTB_LM_HAVE_CUDA */

/* ------------------------------------------------------------------ the whole model */

static lm_config small(void)
{
    lm_config c;
    lm_config_default(&c);
    c.max_seq = 64;
    c.layers = 2;
    c.heads = 4;
    c.channels = 96;
    return c;
}

#define MB 3
#define MT 37

/* A batch of step `step`: random bytes (a few runs so the model has something to learn), the
 * targets the next token, the first 5 positions of each row and every 7th not scored. */
static void batch_make(uint64_t step, int32_t *tok, int32_t *tgt, lm_batch *b)
{
    uint64_t s = 1000 + step;
    for (int i = 0; i < MB; i++) {
        int32_t row[MT + 1];
        for (int t = 0; t <= MT; t++)
            row[t] = t % 4 ? (int32_t)('a' + t % 7) : (int32_t)(lm_rng_next(&s) % 256);
        for (int t = 0; t < MT; t++) {
            tok[i * MT + t] = row[t];
            tgt[i * MT + t] = t < 5 || (t % 7) == 3 ? -1 : row[t + 1];
        }
    }
    tgt[MT - 1] = LM_EOT;
    *b = (lm_batch){.B = MB, .T = MT, .tokens = tok, .targets = tgt};
}

static lm_model *model_new(const lm_config *c, uint64_t seed)
{
    lm_model *m;
    assert_int_equal(lm_model_new(c, &m, NULL), 0);
    lm_model_init(m, seed);
    return m;
}

static void train_gpu(lm_cuda *g, int steps, float *last_loss)
{
    lm_adamw o;
    lm_adamw_default(&o);
    int32_t tok[MB * MT], tgt[MB * MT];
    lm_batch b;
    for (int s = 1; s <= steps; s++) {
        batch_make((uint64_t)s, tok, tgt, &b);
        assert_int_equal(lm_cuda_forward(g, &b, last_loss), 0);
        assert_int_equal(lm_cuda_backward(g, &b), 0);
        assert_int_equal(lm_cuda_adamw_step(g, &o, (uint64_t)s), 0);
    }
}

static void model_vs_cpu(lm_cuda_precision prec, double tol_loss, double tol_grad, double tol_move)
{
    const char *pn = prec == LM_CUDA_BF16 ? "BF16" : "FP32";
    lm_config c = small();
    lm_model *m = model_new(&c, 7), *mg = model_new(&c, 0);
    size_t np = lm_model_num_params(m);
    float *p0 = hdup(lm_model_params(m), np), *gg = malloc(np * sizeof *gg);
    lm_cuda *g;
    ptb_errbuf eb = {{0}};
    assert_int_equal(lm_cuda_new(m, prec, &g, &eb), 0);
    int32_t tok[MB * MT], tgt[MB * MT];
    lm_batch b;
    batch_make(1, tok, tgt, &b);
    float lc, lg;
    assert_int_equal(lm_forward(m, &b, &lc), 0);
    lm_zero_grad(m);
    assert_int_equal(lm_backward(m, &b), 0);
    assert_int_equal(lm_cuda_forward(g, &b, &lg), 0);
    assert_int_equal(lm_cuda_backward(g, &b), 0);
    assert_int_equal(lm_cuda_download(g, mg, gg, &eb), 0);
    printf("  %s loss cpu %.7f gpu %.7f (rel err %.3g)\n", pn, lc, lg, fabs(lg - lc) / lc);
    assert_true(fabs(lg - lc) <= tol_loss * lc);
    /* gradients: per tensor, max |gpu - cpu| / max |cpu| */
    lm_tensor_info ti[LM_NUM_TENSORS];
    lm_tensors(&c, ti);
    const float *gc = lm_model_grads(m);
    int bad = 0;
    for (int i = 0; i < LM_NUM_TENSORS; i++) {
        double me = 0, mx = 0;
        for (size_t k = ti[i].offset; k < ti[i].offset + ti[i].count; k++) {
            double e = fabs((double)gg[k] - gc[k]);
            me = e > me || isnan(e) ? e : me;
            mx = fabs(gc[k]) > mx ? fabs(gc[k]) : mx;
        }
        double r = mx > 0 ? me / mx : me;
        int ok = r <= tol_grad;
        bad += !ok;
        printf("    grad %-9s max|cpu| %-10.3g max|err| %-10.3g rel %-10.3g %s\n", ti[i].name, mx,
               me, r, ok ? "ok" : "FAIL");
    }
    assert_int_equal(bad, 0);
    /* 20 AdamW steps on both */
    lm_adamw o;
    lm_adamw_default(&o);
    float lgpu = 0, lcpu = 0;
    for (int s = 1; s <= 20; s++) {
        batch_make((uint64_t)s, tok, tgt, &b);
        assert_int_equal(lm_forward(m, &b, &lcpu), 0);
        lm_zero_grad(m);
        assert_int_equal(lm_backward(m, &b), 0);
        assert_int_equal(lm_adamw_step(m, &o, (uint64_t)s), 0);
    }
    lm_cuda_free(g); /* a fresh GPU model from the same start (m0: seed 7, as m was) */
    lm_model *m0 = model_new(&c, 7);
    assert_int_equal(lm_cuda_new(m0, prec, &g, &eb), 0);
    lm_model_free(m0);
    train_gpu(g, 20, &lgpu);
    assert_int_equal(lm_cuda_download(g, mg, NULL, &eb), 0);
    const float *pc = lm_model_params(m), *pg = lm_model_params(mg);
    double dd = 0, mv = 0, me = 0;
    for (size_t k = 0; k < np; k++) {
        double e = (double)pg[k] - pc[k], d = (double)pc[k] - p0[k];
        dd += e * e;
        mv += d * d;
        me = fabs(e) > me ? fabs(e) : me;
    }
    double rel = sqrt(dd / mv);
    printf("  %s after 20 steps: loss cpu %.6f gpu %.6f; params max|err| %.3g, |gpu - cpu| / "
           "|cpu - start| %.3g (tol %.3g)\n",
           pn, lcpu, lgpu, me, rel, tol_move);
    assert_true(rel <= tol_move);
    assert_true(fabs(lgpu - lcpu) <= 10 * tol_loss * lcpu + 1e-3);
    lm_cuda_free(g);
    lm_model_free(m);
    lm_model_free(mg);
    free(p0);
    free(gg);
}

static void test_model_fp32(void **state)
{
    (void)state;
    model_vs_cpu(LM_CUDA_FP32, 1e-5, 1e-5, 1e-3);
}

static void test_model_bf16(void **state)
{
    (void)state;
    model_vs_cpu(LM_CUDA_BF16, 1e-3, 3e-2, 0.1);
}

/* ------------------------------------------------------------------ determinism */

static void test_determinism(void **state)
{
    (void)state;
    lm_config c = small();
    for (int prec = 0; prec < 2; prec++) {
        lm_model *m = model_new(&c, 11), *a = model_new(&c, 0), *b = model_new(&c, 0);
        size_t np = lm_model_num_params(m);
        ptb_errbuf eb = {{0}};
        lm_cuda *g1, *g2;
        float l1, l2;
        assert_int_equal(lm_cuda_new(m, (lm_cuda_precision)prec, &g1, &eb), 0);
        train_gpu(g1, 20, &l1);
        assert_int_equal(lm_cuda_download(g1, a, NULL, &eb), 0);
        lm_cuda_free(g1);
        assert_int_equal(lm_cuda_new(m, (lm_cuda_precision)prec, &g2, &eb), 0);
        train_gpu(g2, 20, &l2);
        assert_int_equal(lm_cuda_download(g2, b, NULL, &eb), 0);
        lm_cuda_free(g2);
        size_t diff = 0;
        for (size_t k = 0; k < np; k++)
            diff += memcmp(&lm_model_params(a)[k], &lm_model_params(b)[k], sizeof(float)) != 0;
        printf("  %s determinism: losses %.9g %.9g, %zu of %zu parameters differ\n",
               prec ? "BF16" : "FP32", l1, l2, diff, np);
        assert_int_equal(diff, 0);
        assert_memory_equal(&l1, &l2, sizeof l1);
        lm_model_free(m);
        lm_model_free(a);
        lm_model_free(b);
    }
}

/* ------------------------------------------------------------------ generation */

static void test_generate(void **state)
{
    (void)state;
    lm_config c;
    lm_config_default(&c);
    c.max_seq = 48;
    c.layers = 2;
    c.heads = 2;
    c.channels = 32;
    lm_model *m = model_new(&c, 3);
    static const char text[] = "the quick brown fox jumps over the lazy dog. the quick brown";
    const int T = 40;
    int32_t tok[2 * 40], tgt[2 * 40];
    for (int r = 0; r < 2; r++)
        for (int t = 0; t < T; t++) {
            tok[r * T + t] = (unsigned char)text[r * 5 + t];
            tgt[r * T + t] = (unsigned char)text[r * 5 + t + 1];
        }
    lm_batch b = {.B = 2, .T = (uint32_t)T, .tokens = tok, .targets = tgt};
    lm_adamw o;
    lm_adamw_default(&o);
    o.lr = 1e-2f;
    float loss = 0;
    for (int s = 1; s <= 80; s++) {
        assert_int_equal(lm_forward(m, &b, &loss), 0);
        lm_zero_grad(m);
        assert_int_equal(lm_backward(m, &b), 0);
        assert_int_equal(lm_adamw_step(m, &o, (uint64_t)s), 0);
    }
    lm_cuda *g;
    ptb_errbuf eb = {{0}};
    assert_int_equal(lm_cuda_new(m, LM_CUDA_FP32, &g, &eb), 0);
    static const uint8_t prompt[] = "the quick";
    uint8_t oc[64], og[64];
    size_t nc = 0, ng = 0;
    assert_int_equal(lm_generate(m, prompt, sizeof prompt - 1, 45, oc, sizeof oc, &nc), 0);
    assert_int_equal(lm_cuda_generate(g, prompt, sizeof prompt - 1, 45, og, sizeof og, &ng), 0);
    printf(
        "  generate (train loss %.4f): cpu \"%.*s\"\n                              gpu \"%.*s\"\n",
        loss, (int)nc, (const char *)oc, (int)ng, (const char *)og);
    assert_int_equal(ng, nc);
    assert_memory_equal(og, oc, nc);
    /* an empty prompt starts from the end-of-text token, as the CPU's */
    assert_int_equal(lm_generate(m, NULL, 0, 10, oc, sizeof oc, &nc), 0);
    assert_int_equal(lm_cuda_generate(g, NULL, 0, 10, og, sizeof og, &ng), 0);
    assert_int_equal(ng, nc);
    assert_memory_equal(og, oc, nc);
    lm_cuda_free(g);
    lm_model_free(m);
}

/* ------------------------------------------------------------------ bad input */

static void test_bad_input(void **state)
{
    (void)state;
    lm_config c = small();
    lm_model *m = model_new(&c, 5);
    lm_cuda *g;
    ptb_errbuf eb = {{0}};
    assert_int_equal(lm_cuda_new(m, LM_CUDA_FP32, &g, &eb), 0);
    int32_t tok[MB * MT], tgt[MB * MT];
    lm_batch b;
    batch_make(1, tok, tgt, &b);
    tok[5] = 300;
    assert_int_equal(lm_cuda_forward(g, &b, NULL), PTB_EINVAL);
    printf("  token 300: %s\n", lm_cuda_errmsg(g));
    tok[5] = -1;
    assert_int_equal(lm_cuda_forward(g, &b, NULL), PTB_EINVAL);
    tok[5] = 'a';
    tgt[6] = -2;
    assert_int_equal(lm_cuda_forward(g, &b, NULL), PTB_EINVAL);
    tgt[6] = 'a';
    int32_t *big = calloc(65, sizeof *big);
    lm_batch bb = {.B = 1, .T = 65, .tokens = big, .targets = big};
    assert_int_equal(lm_cuda_forward(g, &bb, NULL), PTB_EINVAL);
    printf("  T=65 > max_seq: %s\n", lm_cuda_errmsg(g));
    /* backward without a forward of that batch */
    assert_int_equal(lm_cuda_backward(g, &b), PTB_EINVAL);
    assert_int_equal(lm_cuda_forward(g, &b, NULL), 0);
    assert_int_equal(lm_cuda_backward(g, &b), 0);
    lm_adamw o;
    lm_adamw_default(&o);
    assert_int_equal(lm_cuda_adamw_step(g, &o, 0), PTB_EINVAL);
    float row[V];
    assert_int_equal(lm_cuda_logits_row(g, MB * MT, row), PTB_EINVAL);
    assert_int_equal(lm_cuda_logits_row(g, MB * MT - 1, row), 0);
    /* a model of another config */
    lm_config c2 = c;
    c2.layers = 1;
    lm_model *m2 = model_new(&c2, 1);
    assert_int_equal(lm_cuda_download(g, m2, NULL, &eb), PTB_EINVAL);
    lm_model_free(m2);
    free(big);
    lm_cuda_free(g);
    lm_model_free(m);
}

int main(void)
{
    ptb_errbuf eb = {{0}};
    if (lm_cuda_available(&eb) != 0) {
        printf("test_lm_cuda: skipped: %s\n", eb.msg);
        return 77;
    }
    const struct CMUnitTest tests[] = {
#ifdef PTB_LM_HAVE_CUDA
        cmocka_unit_test(test_kernels),
#endif
        cmocka_unit_test(test_model_fp32),  cmocka_unit_test(test_model_bf16),
        cmocka_unit_test(test_determinism), cmocka_unit_test(test_generate),
        cmocka_unit_test(test_bad_input),
    };
    setvbuf(stdout, NULL, _IOLBF, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
