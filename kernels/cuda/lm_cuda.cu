/* The reference model on the GPU (../lm_cuda.h): lm_model.c's forward, backward and AdamW with
 * the kernels of lm_kernels.cu in the same order, on one stream. After llm.c's
 * train_gpt2_fp32.cu (MIT licence).
 *
 * Memory: the parameters, gradients and AdamW moments (4 x nparams floats); the activations
 * that the backward reads, per layer as lm_model.c keeps them (ln1, its mean and rstd, qkv,
 * atty, att, residual2, ln2, its mean and rstd, fch, fch_gelu, residual3), but the attention's
 * scores (preatt) and the two projections' outputs in one scratch buffer each, since nothing
 * reads them later; the gradients of the activations for one layer at a time, reused from the
 * top layer down (as llm.c). Those buffers are sized for the largest batch seen.
 *
 * Attention: the fused kernels (lm_cu_attention_fused_*) wherever the head size allows (up to
 * 128): then no att, preatt or their gradients, but a row's log-sum-exp per layer (lse); else
 * the materialised one (lm_cu_attention_*).
 *
 * BF16: every matrix product's operands are rounded to bf16 (lm_cuda.h), and each is rounded once
 * where it is made rather than by every product that reads it: a bf16 copy of the parameters
 * (p16, written at upload and by every AdamW step), and the activations and gradients that feed
 * products get their bf16 copy from the kernel that computes them (the h16 buffers: ln1, atty,
 * ln2, fch_gelu, lnf; dlogits, dfch, dqkv, dres). The activations read by nothing but products
 * (ln1, ln2, fch_gelu, lnf, dlogits) are then kept in bf16 alone. The same roundings of the same
 * fp32 values as rounding at each product: the numbers do not change.
 *
 * The backward follows lm_backward exactly, where the CPU's += into a zeroed buffer becomes
 * an = (the *_ex kernels with acc 0), and the residual stream's gradient stays in one buffer
 * (dres): the residual backward adds the same dout into two zeroed buffers, so both are dres. */
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "lm_cuda.h"
}
#include "lm_kernels.h"

/* device buffers: activations kept for the backward (per layer where lm_model.c has them per
 * layer), scratch, and the activation gradients of one layer */
enum {
    A_ENCODED,
    A_LN1,
    A_LN1_MEAN,
    A_LN1_RSTD,
    A_QKV,
    A_ATTY,
    A_ATT,
    A_RESIDUAL2,
    A_LN2,
    A_LN2_MEAN,
    A_LN2_RSTD,
    A_FCH,
    A_FCH_GELU,
    A_RESIDUAL3,
    A_LNF,
    A_LNF_MEAN,
    A_LNF_RSTD,
    A_LOGITS,
    A_PROBS,
    A_LSE,    /* per layer, fused attention */
    S_PREATT, /* scores of one layer; dpreatt in the backward */
    S_PROJ,   /* attproj, fcproj of one layer */
    D_RES,    /* the residual stream's gradient */
    D_LN,     /* dln1, dln2, dlnf */
    D_QKV,
    D_ATTY,
    D_FCH,
    D_GELU,
    D_ATT,
    D_LOGITS,
    A_COUNT
};

/* bf16 copies (BF16 only): per layer, or of one layer (the gradients) */
enum { H_LN1, H_ATTY, H_LN2, H_GELU, H_LNF, H_DLOGITS, H_DFCH, H_DQKV, H_DRES, H_COUNT };

struct lm_cuda {
    lm_config c;
    int bf16, fused;    /* BF16 precision; the fused attention */
    __nv_bfloat16 *p16; /* BF16: the parameters rounded */
    __nv_bfloat16 *h16[H_COUNT];
    size_t hcap[H_COUNT];
    lm_tensor_info t[LM_NUM_TENSORS];
    size_t nparams;
    lm_cu_ctx *x;
    float *params, *grads, *m, *v;
    float *act[A_COUNT];
    size_t cap[A_COUNT]; /* floats allocated */
    int32_t *tokens, *targets;
    size_t tok_cap;
    double *dloss; /* sum, count */
    uint32_t B, T; /* of the last forward */
    int ntargets;
    int has_forward;
    char err[512];
};

static const char NO_DEVICE[] = "no usable CUDA device";

/* ------------------------------------------------------------------ errors */

static int errf(lm_cuda *g, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int errf(lm_cuda *g, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->err, sizeof g->err, fmt, ap);
    va_end(ap);
    return rc;
}

/* a kernel wrapper's failure: its message into g */
static int kfail(lm_cuda *g, int rc)
{
    if (rc)
        snprintf(g->err, sizeof g->err, "%s", lm_cu_ctx_errmsg(g->x));
    return rc;
}
#define K(call)                                                                                    \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_)                                                                                   \
            return kfail(g, rc_);                                                                  \
    } while (0)

extern "C" int lm_cuda_available(ptb_errbuf *eb)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess)
        return ptb_errf(eb, -ENOTSUP, "%s: %s", NO_DEVICE, cudaGetErrorString(e));
    if (n < 1)
        return ptb_errf(eb, -ENOTSUP, "%s: no device found", NO_DEVICE);
    return 0;
}

/* ------------------------------------------------------------------ new, free */

/* elements of each buffer for a B x T batch (0: not used in this precision or attention) */
static void sizes(const lm_cuda *g, uint32_t B, uint32_t T, size_t n[A_COUNT], size_t h[H_COUNT])
{
    const lm_config *c = &g->c;
    size_t L = c->layers, C = c->channels, NH = c->heads, V = c->vocab_size, BT = (size_t)B * T;
    size_t att = g->fused ? 0 : (size_t)B * NH * T * T;
    n[A_ENCODED] = BT * C;
    n[A_LN1] = n[A_ATTY] = n[A_RESIDUAL2] = n[A_LN2] = n[A_RESIDUAL3] = L * BT * C;
    n[A_LN1_MEAN] = n[A_LN1_RSTD] = n[A_LN2_MEAN] = n[A_LN2_RSTD] = L * BT;
    n[A_QKV] = L * BT * 3 * C;
    n[A_ATT] = L * att;
    n[A_FCH] = n[A_FCH_GELU] = L * BT * 4 * C;
    n[A_LNF] = BT * C;
    n[A_LNF_MEAN] = n[A_LNF_RSTD] = BT;
    n[A_LOGITS] = n[A_PROBS] = n[D_LOGITS] = BT * V;
    n[S_PREATT] = n[D_ATT] = att;
    n[S_PROJ] = n[D_RES] = n[D_LN] = n[D_ATTY] = BT * C;
    n[D_QKV] = BT * 3 * C;
    n[D_FCH] = n[D_GELU] = BT * 4 * C;
    n[A_LSE] = g->fused ? L * B * NH * T : 0;
    for (int i = 0; i < H_COUNT; i++)
        h[i] = 0;
    if (!g->bf16)
        return;
    h[H_LN1] = h[H_LN2] = n[A_LN1];
    h[H_ATTY] = g->fused ? n[A_ATTY] : 0; /* the materialised attention writes no copy */
    h[H_GELU] = n[A_FCH_GELU];
    h[H_LNF] = n[A_LNF];
    h[H_DLOGITS] = n[D_LOGITS];
    h[H_DFCH] = n[D_FCH];
    h[H_DQKV] = g->fused ? n[D_QKV] : 0;
    h[H_DRES] = n[D_RES];
    n[A_LN1] = n[A_LN2] = n[A_FCH_GELU] = n[A_LNF] = n[D_LOGITS] = 0; /* in bf16 alone */
}

static void act_free(lm_cuda *g)
{
    for (int i = 0; i < A_COUNT; i++) {
        lm_cu_free(g->act[i]);
        g->act[i] = NULL;
        g->cap[i] = 0;
    }
    for (int i = 0; i < H_COUNT; i++) {
        lm_cu_free(g->h16[i]);
        g->h16[i] = NULL;
        g->hcap[i] = 0;
    }
    lm_cu_free(g->tokens);
    lm_cu_free(g->targets);
    g->tokens = g->targets = NULL;
    g->tok_cap = 0;
}

/* buffers for a B x T batch: each grown to what it needs (what it has is kept otherwise) */
static int act_ensure(lm_cuda *g, uint32_t B, uint32_t T)
{
    size_t n[A_COUNT], h[H_COUNT];
    sizes(g, B, T, n, h);
    for (int i = 0; i < H_COUNT; i++) {
        if (g->hcap[i] >= h[i])
            continue;
        lm_cu_free(g->h16[i]);
        g->h16[i] = NULL;
        g->hcap[i] = 0;
        int rc = lm_cu_alloc(g->x, (void **)&g->h16[i], h[i] * sizeof(__nv_bfloat16));
        if (rc)
            return errf(g, rc, "bf16 activations for B=%u T=%u: %s", B, T, lm_cu_ctx_errmsg(g->x));
        g->hcap[i] = h[i];
    }
    for (int i = 0; i < A_COUNT; i++) {
        if (g->cap[i] >= n[i])
            continue;
        lm_cu_free(g->act[i]);
        g->act[i] = NULL;
        g->cap[i] = 0;
        int rc = lm_cu_alloc(g->x, (void **)&g->act[i], n[i] * sizeof(float));
        if (rc)
            return errf(g, rc, "activations for B=%u T=%u: %s", B, T, lm_cu_ctx_errmsg(g->x));
        g->cap[i] = n[i];
    }
    size_t bt = (size_t)B * T;
    if (g->tok_cap < bt) {
        lm_cu_free(g->tokens);
        lm_cu_free(g->targets);
        g->tokens = g->targets = NULL;
        g->tok_cap = 0;
        K(lm_cu_alloc(g->x, (void **)&g->tokens, bt * sizeof(int32_t)));
        K(lm_cu_alloc(g->x, (void **)&g->targets, bt * sizeof(int32_t)));
        g->tok_cap = bt;
    }
    return 0;
}

extern "C" int lm_cuda_new(const lm_model *m, lm_cuda_precision prec, lm_cuda **out, ptb_errbuf *eb)
{
    *out = NULL;
    int rc = lm_cuda_available(eb);
    if (rc)
        return rc;
    if (prec != LM_CUDA_FP32 && prec != LM_CUDA_BF16)
        return ptb_errf(eb, PTB_EINVAL, "precision %d: not LM_CUDA_FP32 or LM_CUDA_BF16",
                        (int)prec);
    lm_cuda *g = (lm_cuda *)calloc(1, sizeof *g);
    if (!g)
        return ptb_errf(eb, PTB_ENOMEM, "out of memory");
    g->c = *lm_model_config(m);
    g->nparams = lm_tensors(&g->c, g->t);
    g->bf16 = prec == LM_CUDA_BF16;
    g->fused = lm_cu_attention_fused_supported((int)g->c.channels, (int)g->c.heads);
    char msg[512] = "";
    if ((rc = lm_cu_ctx_new(prec == LM_CUDA_BF16, &g->x, msg, sizeof msg))) {
        free(g);
        return ptb_errf(eb, rc, "CUDA: %s", msg);
    }
    size_t bytes = g->nparams * sizeof(float);
    if ((rc = lm_cu_alloc(g->x, (void **)&g->params, bytes)) ||
        (rc = lm_cu_alloc(g->x, (void **)&g->grads, bytes)) ||
        (rc = lm_cu_alloc(g->x, (void **)&g->m, bytes)) ||
        (rc = lm_cu_alloc(g->x, (void **)&g->v, bytes)) ||
        (rc = lm_cu_alloc(g->x, (void **)&g->dloss, 2 * sizeof(double))) ||
        (rc = lm_cu_upload(g->x, g->params, lm_model_params((lm_model *)m), bytes)) ||
        (g->bf16 && ((rc = lm_cu_alloc(g->x, (void **)&g->p16, g->nparams * 2)) ||
                     (rc = lm_cu_to_bf16(g->x, g->p16, g->params, g->nparams))))) {
        ptb_errf(eb, rc, "%zu parameters on the GPU: %s", g->nparams, lm_cu_ctx_errmsg(g->x));
        lm_cuda_free(g);
        return rc;
    }
    *out = g;
    return 0;
}

extern "C" void lm_cuda_free(lm_cuda *g)
{
    if (!g)
        return;
    if (g->x)
        lm_cu_sync(g->x);
    act_free(g);
    lm_cu_free(g->params);
    lm_cu_free(g->grads);
    lm_cu_free(g->m);
    lm_cu_free(g->v);
    lm_cu_free(g->dloss);
    lm_cu_free(g->p16);
    lm_cu_ctx_free(g->x);
    free(g);
}

extern "C" const char *lm_cuda_errmsg(const lm_cuda *g)
{
    return g->err;
}

/* ------------------------------------------------------------------ forward */

/* layer l of parameter tensor i in base (params or grads) */
static float *lp(lm_cuda *g, float *base, int i, int l)
{
    return base + g->t[i].offset + (size_t)l * g->t[i].per_layer;
}

/* its bf16 copy (NULL in FP32) */
static const __nv_bfloat16 *lp16(lm_cuda *g, int i, int l)
{
    return g->p16 ? g->p16 + g->t[i].offset + (size_t)l * g->t[i].per_layer : NULL;
}

/* base + off, NULL where the buffer is not used */
static float *at(float *base, size_t off)
{
    return base ? base + off : NULL;
}
static __nv_bfloat16 *at16(lm_cuda *g, int i, size_t off)
{
    return g->h16[i] ? g->h16[i] + off : NULL;
}

static int check_batch(lm_cuda *g, const lm_batch *b)
{
    const lm_config *c = &g->c;
    if (b->B < 1 || b->T < 1 || b->T > c->max_seq || (uint64_t)b->B * b->T > (1u << 26))
        return errf(g, PTB_EINVAL, "batch %u x %u: T must be 1..%u (max_seq), B*T at most 2^26",
                    b->B, b->T, c->max_seq);
    for (size_t i = 0; i < (size_t)b->B * b->T; i++)
        if (b->tokens[i] < 0 || b->tokens[i] >= (int32_t)c->vocab_size || b->targets[i] < -1 ||
            b->targets[i] >= (int32_t)c->vocab_size)
            return errf(g, PTB_EINVAL, "position %zu: token %d or target %d out of range", i,
                        b->tokens[i], b->targets[i]);
    return 0;
}

extern "C" int lm_cuda_forward(lm_cuda *g, const lm_batch *b, float *loss)
{
    int rc = check_batch(g, b);
    if (rc)
        return rc;
    g->has_forward = 0;
    if ((rc = act_ensure(g, b->B, b->T)))
        return rc;
    const int B = (int)b->B, T = (int)b->T, C = (int)g->c.channels, NH = (int)g->c.heads,
              L = (int)g->c.layers, V = (int)g->c.vocab_size;
    const size_t BTC = (size_t)B * T * C, BT = (size_t)B * T, att_n = (size_t)B * NH * T * T;
    K(lm_cu_upload(g->x, g->tokens, b->tokens, BT * sizeof(int32_t)));
    K(lm_cu_upload(g->x, g->targets, b->targets, BT * sizeof(int32_t)));
    int nt = 0;
    for (size_t i = 0; i < BT; i++)
        nt += b->targets[i] >= 0;
    lm_cu_ctx *x = g->x;
    float *p = g->params, **a = g->act;
    K(lm_cu_encoder_forward(x, a[A_ENCODED], g->tokens, p + g->t[LM_T_WTE].offset,
                            p + g->t[LM_T_WPE].offset, B, T, C));
    for (int l = 0; l < L; l++) {
        const float *residual = l == 0 ? a[A_ENCODED] : a[A_RESIDUAL3] + (size_t)(l - 1) * BTC;
        const size_t o = l * BTC;
        float *ln1 = at(a[A_LN1], o), *ln1m = a[A_LN1_MEAN] + l * BT,
              *ln1r = a[A_LN1_RSTD] + l * BT, *qkv = a[A_QKV] + 3 * o, *atty = a[A_ATTY] + o,
              *res2 = a[A_RESIDUAL2] + o, *ln2 = at(a[A_LN2], o), *ln2m = a[A_LN2_MEAN] + l * BT,
              *ln2r = a[A_LN2_RSTD] + l * BT, *fch = a[A_FCH] + 4 * o,
              *gelu = at(a[A_FCH_GELU], 4 * o), *res3 = a[A_RESIDUAL3] + o, *proj = a[S_PROJ];
        __nv_bfloat16 *ln1_16 = at16(g, H_LN1, o), *atty16 = at16(g, H_ATTY, o),
                      *ln2_16 = at16(g, H_LN2, o), *gelu16 = at16(g, H_GELU, 4 * o);
        K(lm_cu_layernorm_forward_ex(x, ln1, ln1_16, ln1m, ln1r, residual, lp(g, p, LM_T_LN1W, l),
                                     lp(g, p, LM_T_LN1B, l), B, T, C));
        K(lm_cu_matmul_forward_ex(x, qkv, ln1, ln1_16, lp(g, p, LM_T_QKVW, l),
                                  lp16(g, LM_T_QKVW, l), lp(g, p, LM_T_QKVB, l), B, T, C, 3 * C));
        if (g->fused)
            K(lm_cu_attention_fused_forward_ex(x, atty, atty16, a[A_LSE] + (size_t)l * BT * NH, qkv,
                                               B, T, C, NH));
        else
            K(lm_cu_attention_forward(x, atty, a[S_PREATT], a[A_ATT] + l * att_n, qkv, B, T, C,
                                      NH));
        K(lm_cu_matmul_forward_ex(x, proj, atty, atty16, lp(g, p, LM_T_ATTPROJW, l),
                                  lp16(g, LM_T_ATTPROJW, l), lp(g, p, LM_T_ATTPROJB, l), B, T, C,
                                  C));
        K(lm_cu_residual_forward(x, res2, residual, proj, (int)BTC));
        K(lm_cu_layernorm_forward_ex(x, ln2, ln2_16, ln2m, ln2r, res2, lp(g, p, LM_T_LN2W, l),
                                     lp(g, p, LM_T_LN2B, l), B, T, C));
        K(lm_cu_matmul_forward_ex(x, fch, ln2, ln2_16, lp(g, p, LM_T_FCW, l), lp16(g, LM_T_FCW, l),
                                  lp(g, p, LM_T_FCB, l), B, T, C, 4 * C));
        K(lm_cu_gelu_forward_ex(x, gelu, gelu16, fch, (int)(BTC * 4)));
        K(lm_cu_matmul_forward_ex(x, proj, gelu, gelu16, lp(g, p, LM_T_FCPROJW, l),
                                  lp16(g, LM_T_FCPROJW, l), lp(g, p, LM_T_FCPROJB, l), B, T, 4 * C,
                                  C));
        K(lm_cu_residual_forward(x, res3, res2, proj, (int)BTC));
    }
    K(lm_cu_layernorm_forward_ex(x, a[A_LNF], at16(g, H_LNF, 0), a[A_LNF_MEAN], a[A_LNF_RSTD],
                                 a[A_RESIDUAL3] + (size_t)(L - 1) * BTC, p + g->t[LM_T_LNFW].offset,
                                 p + g->t[LM_T_LNFB].offset, B, T, C));
    K(lm_cu_matmul_forward_ex(x, a[A_LOGITS], a[A_LNF], at16(g, H_LNF, 0),
                              p + g->t[LM_T_WTE].offset, lp16(g, LM_T_WTE, 0), NULL, B, T, C, V));
    K(lm_cu_crossentropy_forward_sum(x, a[A_PROBS], a[A_LOGITS], g->targets, B, T, V, g->dloss));
    g->B = b->B;
    g->T = b->T;
    g->ntargets = nt;
    if (loss) {
        double h[2];
        K(lm_cu_download(x, h, g->dloss, sizeof h));
        *loss = nt ? (float)(h[0] / nt) : 0.0f;
    }
    g->has_forward = 1;
    return 0;
}

extern "C" int lm_cuda_logits_row(lm_cuda *g, size_t row, float *out)
{
    if (!g->has_forward || row >= (size_t)g->B * g->T)
        return errf(g, PTB_EINVAL, "logits row %zu: no forward of that many rows", row);
    size_t V = g->c.vocab_size;
    K(lm_cu_download(g->x, out, g->act[A_LOGITS] + row * V, V * sizeof(float)));
    return 0;
}

/* ------------------------------------------------------------------ backward */

extern "C" int lm_cuda_backward(lm_cuda *g, const lm_batch *b)
{
    if (!g->has_forward || b->B != g->B || b->T != g->T)
        return errf(g, PTB_EINVAL, "backward of batch %u x %u without its forward", b->B, b->T);
    const int B = (int)b->B, T = (int)b->T, C = (int)g->c.channels, NH = (int)g->c.heads,
              L = (int)g->c.layers, V = (int)g->c.vocab_size;
    const size_t BTC = (size_t)B * T * C, BT = (size_t)B * T, att_n = (size_t)B * NH * T * T;
    lm_cu_ctx *x = g->x;
    float *p = g->params, *gr = g->grads, **a = g->act;
    float *dres = a[D_RES], *dln = a[D_LN];
    K(lm_cu_zero(x, gr, g->nparams * sizeof(float)));
    __nv_bfloat16 *dres16 = at16(g, H_DRES, 0), *dfch16 = at16(g, H_DFCH, 0),
                  *dqkv16 = at16(g, H_DQKV, 0), *dlog16 = at16(g, H_DLOGITS, 0);
    K(lm_cu_crossentropy_backward_ex(x, a[D_LOGITS], dlog16, a[A_PROBS], g->targets, B, T, V,
                                     g->ntargets));
    K(lm_cu_matmul_backward_ex(x, dln, gr + g->t[LM_T_WTE].offset, NULL, a[D_LOGITS], dlog16,
                               a[A_LNF], at16(g, H_LNF, 0), p + g->t[LM_T_WTE].offset,
                               lp16(g, LM_T_WTE, 0), B, T, C, V, 0));
    K(lm_cu_layernorm_backward_ex(
        x, dres, dres16, gr + g->t[LM_T_LNFW].offset, gr + g->t[LM_T_LNFB].offset, dln,
        a[A_RESIDUAL3] + (size_t)(L - 1) * BTC, p + g->t[LM_T_LNFW].offset, a[A_LNF_MEAN],
        a[A_LNF_RSTD], B, T, C, 0));
    for (int l = L - 1; l >= 0; l--) {
        const float *residual = l == 0 ? a[A_ENCODED] : a[A_RESIDUAL3] + (size_t)(l - 1) * BTC;
        size_t o = l * BTC;
        /* dres is d residual3 = d fcproj (and, after the LayerNorm below, d residual2) */
        K(lm_cu_matmul_backward_ex(
            x, a[D_GELU], lp(g, gr, LM_T_FCPROJW, l), lp(g, gr, LM_T_FCPROJB, l), dres, dres16,
            at(a[A_FCH_GELU], 4 * o), at16(g, H_GELU, 4 * o), lp(g, p, LM_T_FCPROJW, l),
            lp16(g, LM_T_FCPROJW, l), B, T, 4 * C, C, 0));
        K(lm_cu_gelu_backward_ex(x, a[D_FCH], dfch16, a[A_FCH] + 4 * o, a[D_GELU], (int)(4 * BTC),
                                 0));
        K(lm_cu_matmul_backward_ex(x, dln, lp(g, gr, LM_T_FCW, l), lp(g, gr, LM_T_FCB, l), a[D_FCH],
                                   dfch16, at(a[A_LN2], o), at16(g, H_LN2, o),
                                   lp(g, p, LM_T_FCW, l), lp16(g, LM_T_FCW, l), B, T, C, 4 * C, 0));
        K(lm_cu_layernorm_backward_ex(x, dres, dres16, lp(g, gr, LM_T_LN2W, l),
                                      lp(g, gr, LM_T_LN2B, l), dln, a[A_RESIDUAL2] + o,
                                      lp(g, p, LM_T_LN2W, l), a[A_LN2_MEAN] + l * BT,
                                      a[A_LN2_RSTD] + l * BT, B, T, C, 1));
        /* dres is d residual2 = d attproj = d residual (so far) */
        K(lm_cu_matmul_backward_ex(x, a[D_ATTY], lp(g, gr, LM_T_ATTPROJW, l),
                                   lp(g, gr, LM_T_ATTPROJB, l), dres, dres16, a[A_ATTY] + o,
                                   at16(g, H_ATTY, o), lp(g, p, LM_T_ATTPROJW, l),
                                   lp16(g, LM_T_ATTPROJW, l), B, T, C, C, 0));
        if (g->fused)
            K(lm_cu_attention_fused_backward_ex(x, a[D_QKV], dqkv16, a[D_ATTY], a[A_QKV] + 3 * o,
                                                a[A_ATTY] + o, a[A_LSE] + (size_t)l * BT * NH, B, T,
                                                C, NH, 0));
        else
            K(lm_cu_attention_backward_ex(x, a[D_QKV], a[S_PREATT], a[D_ATT], a[D_ATTY],
                                          a[A_QKV] + 3 * o, a[A_ATT] + l * att_n, B, T, C, NH, 0));
        K(lm_cu_matmul_backward_ex(x, dln, lp(g, gr, LM_T_QKVW, l), lp(g, gr, LM_T_QKVB, l),
                                   a[D_QKV], dqkv16, at(a[A_LN1], o), at16(g, H_LN1, o),
                                   lp(g, p, LM_T_QKVW, l), lp16(g, LM_T_QKVW, l), B, T, C, 3 * C,
                                   0));
        K(lm_cu_layernorm_backward_ex(
            x, dres, dres16, lp(g, gr, LM_T_LN1W, l), lp(g, gr, LM_T_LN1B, l), dln, residual,
            lp(g, p, LM_T_LN1W, l), a[A_LN1_MEAN] + l * BT, a[A_LN1_RSTD] + l * BT, B, T, C, 1));
    }
    K(lm_cu_encoder_backward(x, gr + g->t[LM_T_WTE].offset, gr + g->t[LM_T_WPE].offset, dres,
                             g->tokens, B, T, C, V));
    return 0;
}

/* ------------------------------------------------------------------ AdamW, download */

extern "C" int lm_cuda_adamw_step(lm_cuda *g, const lm_adamw *o, uint64_t step)
{
    if (step < 1)
        return errf(g, PTB_EINVAL, "AdamW step 0: steps count from 1");
    float c1 = 1.0f - powf(o->beta1, (float)step), c2 = 1.0f - powf(o->beta2, (float)step);
    for (int i = 0; i < LM_NUM_TENSORS; i++) {
        float wd = g->t[i].decay ? o->weight_decay : 0.0f;
        size_t off = g->t[i].offset;
        K(lm_cu_adamw_ex(g->x, g->params + off, g->p16 ? g->p16 + off : NULL, g->grads + off,
                         g->m + off, g->v + off, g->t[i].count, o->lr, o->beta1, o->beta2, o->eps,
                         wd, c1, c2));
    }
    return 0;
}

extern "C" int lm_cuda_download(lm_cuda *g, lm_model *m, float *grads, ptb_errbuf *eb)
{
    const lm_config *c = lm_model_config(m);
    if (c->vocab_size != g->c.vocab_size || c->max_seq != g->c.max_seq ||
        c->layers != g->c.layers || c->heads != g->c.heads || c->channels != g->c.channels)
        return ptb_errf(eb, PTB_EINVAL, "download into a model of another config");
    size_t bytes = g->nparams * sizeof(float);
    int rc = lm_cu_download(g->x, lm_model_params(m), g->params, bytes);
    if (!rc && grads)
        rc = lm_cu_download(g->x, grads, g->grads, bytes);
    if (rc)
        return ptb_errf(eb, rc, "download: %s", lm_cu_ctx_errmsg(g->x));
    return 0;
}

/* ------------------------------------------------------------------ generation */

/* lm_generate (lm_generate.c) line for line, with the forward on the GPU */
/* lm_generate_greedy's step on the GPU: the forward, then the row's logits copied back */
typedef struct cuda_step {
    lm_cuda *g;
    float *l; /* vocab_size floats */
} cuda_step;

static int cuda_step_fn(void *arg, const lm_batch *b, size_t row, const float **logits)
{
    cuda_step *cs = (cuda_step *)arg;
    int rc = lm_cuda_forward(cs->g, b, NULL);
    if (!rc)
        rc = lm_cuda_logits_row(cs->g, row, cs->l);
    *logits = cs->l;
    return rc;
}

extern "C" int lm_cuda_generate(lm_cuda *g, const uint8_t *prompt, size_t plen, size_t max_new,
                                uint8_t *out, size_t cap, size_t *out_len)
{
    cuda_step cs = {g, (float *)malloc(g->c.vocab_size * sizeof(float))};
    *out_len = 0;
    if (!cs.l)
        return errf(g, PTB_ENOMEM, "out of memory");
    int rc = lm_generate_greedy(&g->c, cuda_step_fn, &cs, prompt, plen, max_new, out, cap, out_len);
    free(cs.l);
    return rc;
}
