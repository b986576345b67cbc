/* The model (lm.h): parameter layout, activations, forward and backward through the reference
 * kernels of ref/lm_ref.h, GPT-2 initialisation, AdamW. After llm.c's train_gpt2.c. */
#include "lm.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ref/lm_ref.h"

/* ------------------------------------------------------------------ config, layout */

void lm_config_default(lm_config *c)
{
    c->vocab_size = LM_VOCAB;
    c->max_seq = 256;
    c->layers = 4;
    c->heads = 4;
    c->channels = 128;
}

int lm_config_check(const lm_config *c, ptb_errbuf *eb)
{
    if (c->vocab_size != LM_VOCAB)
        return ptb_errf(eb, PTB_EINVAL, "vocab_size %u: this model reads bytes (vocab %d)",
                        c->vocab_size, LM_VOCAB);
    if (c->max_seq < 1 || c->max_seq > LM_MAX_SEQ)
        return ptb_errf(eb, PTB_EINVAL, "max_seq %u: not in 1..%d", c->max_seq, LM_MAX_SEQ);
    if (c->layers < 1 || c->layers > LM_MAX_LAYERS)
        return ptb_errf(eb, PTB_EINVAL, "layers %u: not in 1..%d", c->layers, LM_MAX_LAYERS);
    if (c->channels < 1 || c->channels > LM_MAX_CHANNELS || c->heads < 1 || c->channels % c->heads)
        return ptb_errf(eb, PTB_EINVAL,
                        "channels %u, heads %u: channels must be 1..%d and a "
                        "multiple of heads",
                        c->channels, c->heads, LM_MAX_CHANNELS);
    return 0;
}

size_t lm_tensors(const lm_config *c, lm_tensor_info info[LM_NUM_TENSORS])
{
    const uint32_t V = c->vocab_size, P = c->max_seq, L = c->layers, C = c->channels;
    /* name, rank, shape (per layer tensors: L first), per-layer, decay */
    const struct {
        const char *name;
        uint32_t rank, s0, s1, s2;
        int per_layer, decay;
    } t[LM_NUM_TENSORS] = {
        {"wte", 2, V, C, 0, 0, 1},         {"wpe", 2, P, C, 0, 0, 1},
        {"ln1w", 2, L, C, 0, 1, 0},        {"ln1b", 2, L, C, 0, 1, 0},
        {"qkvw", 3, L, 3 * C, C, 1, 1},    {"qkvb", 2, L, 3 * C, 0, 1, 0},
        {"attprojw", 3, L, C, C, 1, 1},    {"attprojb", 2, L, C, 0, 1, 0},
        {"ln2w", 2, L, C, 0, 1, 0},        {"ln2b", 2, L, C, 0, 1, 0},
        {"fcw", 3, L, 4 * C, C, 1, 1},     {"fcb", 2, L, 4 * C, 0, 1, 0},
        {"fcprojw", 3, L, C, 4 * C, 1, 1}, {"fcprojb", 2, L, C, 0, 1, 0},
        {"lnfw", 1, C, 0, 0, 0, 0},        {"lnfb", 1, C, 0, 0, 0, 0},
    };
    size_t off = 0;
    for (int i = 0; i < LM_NUM_TENSORS; i++) {
        size_t n = t[i].s0;
        if (t[i].rank > 1)
            n *= t[i].s1;
        if (t[i].rank > 2)
            n *= t[i].s2;
        info[i] = (lm_tensor_info){.name = t[i].name,
                                   .offset = off,
                                   .count = n,
                                   .per_layer = t[i].per_layer ? (uint32_t)(n / L) : 0,
                                   .rank = t[i].rank,
                                   .shape = {t[i].s0, t[i].s1, t[i].s2},
                                   .decay = t[i].decay};
        off += n;
    }
    return off;
}

/* ------------------------------------------------------------------ activations */

/* One buffer per activation, each with the same shape in the gradient copy. */
enum {
    A_ENCODED,
    A_LN1,
    A_LN1_MEAN,
    A_LN1_RSTD,
    A_QKV,
    A_ATTY,
    A_PREATT,
    A_ATT,
    A_ATTPROJ,
    A_RESIDUAL2,
    A_LN2,
    A_LN2_MEAN,
    A_LN2_RSTD,
    A_FCH,
    A_FCH_GELU,
    A_FCPROJ,
    A_RESIDUAL3,
    A_LNF,
    A_LNF_MEAN,
    A_LNF_RSTD,
    A_LOGITS,
    A_PROBS,
    A_COUNT
};

struct lm_model {
    lm_config c;
    lm_tensor_info t[LM_NUM_TENSORS];
    size_t nparams;
    float *params, *grads, *m, *v; /* m, v: AdamW moments, allocated on the first step */
    uint32_t B, T;                 /* activations are sized for B x T */
    float *act[A_COUNT], *dact[A_COUNT];
    size_t act_n[A_COUNT];
    int ntargets; /* scored positions of the last forward */
    bool has_forward;
};

static void act_sizes(const lm_config *c, uint32_t B, uint32_t T, size_t n[A_COUNT])
{
    size_t L = c->layers, C = c->channels, NH = c->heads, V = c->vocab_size, BT = (size_t)B * T;
    n[A_ENCODED] = BT * C;
    n[A_LN1] = L * BT * C;
    n[A_LN1_MEAN] = n[A_LN1_RSTD] = L * BT;
    n[A_QKV] = L * BT * 3 * C;
    n[A_ATTY] = L * BT * C;
    n[A_PREATT] = n[A_ATT] = L * B * NH * T * T;
    n[A_ATTPROJ] = n[A_RESIDUAL2] = n[A_LN2] = L * BT * C;
    n[A_LN2_MEAN] = n[A_LN2_RSTD] = L * BT;
    n[A_FCH] = n[A_FCH_GELU] = L * BT * 4 * C;
    n[A_FCPROJ] = n[A_RESIDUAL3] = L * BT * C;
    n[A_LNF] = BT * C;
    n[A_LNF_MEAN] = n[A_LNF_RSTD] = BT;
    n[A_LOGITS] = n[A_PROBS] = BT * V;
}

static void act_free(lm_model *m)
{
    for (int i = 0; i < A_COUNT; i++) {
        free(m->act[i]);
        free(m->dact[i]);
        m->act[i] = m->dact[i] = NULL;
    }
    m->B = m->T = 0;
}

static int act_ensure(lm_model *m, uint32_t B, uint32_t T)
{
    if (m->B == B && m->T == T)
        return 0;
    act_free(m);
    act_sizes(&m->c, B, T, m->act_n);
    for (int i = 0; i < A_COUNT; i++) {
        m->act[i] = malloc(m->act_n[i] * sizeof(float));
        m->dact[i] = malloc(m->act_n[i] * sizeof(float));
        if (!m->act[i] || !m->dact[i]) {
            act_free(m);
            return PTB_ENOMEM;
        }
    }
    m->B = B;
    m->T = T;
    return 0;
}

/* ------------------------------------------------------------------ new, free */

int lm_model_new(const lm_config *c, lm_model **out, ptb_errbuf *eb)
{
    *out = NULL;
    int rc = lm_config_check(c, eb);
    if (rc)
        return rc;
    lm_model *m = calloc(1, sizeof *m);
    if (!m)
        return ptb_errf(eb, PTB_ENOMEM, "out of memory");
    m->c = *c;
    m->nparams = lm_tensors(c, m->t);
    m->params = calloc(m->nparams, sizeof(float));
    m->grads = calloc(m->nparams, sizeof(float));
    if (!m->params || !m->grads) {
        size_t n = m->nparams;
        lm_model_free(m);
        return ptb_errf(eb, PTB_ENOMEM, "out of memory for %zu parameters", n);
    }
    *out = m;
    return 0;
}

void lm_model_free(lm_model *m)
{
    if (!m)
        return;
    act_free(m);
    free(m->params);
    free(m->grads);
    free(m->m);
    free(m->v);
    free(m);
}

const lm_config *lm_model_config(const lm_model *m)
{
    return &m->c;
}
float *lm_model_params(lm_model *m)
{
    return m->params;
}
float *lm_model_grads(lm_model *m)
{
    return m->grads;
}
size_t lm_model_num_params(const lm_model *m)
{
    return m->nparams;
}

/* ------------------------------------------------------------------ initialisation */

uint64_t lm_rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* N(0, 1) by Box-Muller, in double so that the bits do not depend on float contraction */
static float rng_normal(uint64_t *s)
{
    double u1 = ((double)(lm_rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
    double u2 = (double)(lm_rng_next(s) >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void lm_model_init(lm_model *m, uint64_t seed)
{
    uint64_t s = seed;
    const float std = 0.02f, res_std = 0.02f / sqrtf(2.0f * (float)m->c.layers);
    for (int i = 0; i < LM_NUM_TENSORS; i++) {
        float *p = m->params + m->t[i].offset;
        size_t n = m->t[i].count;
        if (i == LM_T_LN1W || i == LM_T_LN2W || i == LM_T_LNFW) {
            for (size_t k = 0; k < n; k++)
                p[k] = 1.0f;
        } else if (m->t[i].rank == (m->t[i].per_layer ? 3u : 2u) && m->t[i].decay) {
            float sd = i == LM_T_ATTPROJW || i == LM_T_FCPROJW ? res_std : std;
            for (size_t k = 0; k < n; k++)
                p[k] = sd * rng_normal(&s);
        } else {
            memset(p, 0, n * sizeof *p);
        }
    }
}

/* ------------------------------------------------------------------ forward */

/* Pointer to layer l of parameter tensor i. */
static float *lp(lm_model *m, float *base, int i, int l)
{
    return base + m->t[i].offset + (size_t)l * m->t[i].per_layer;
}

int lm_forward(lm_model *m, const lm_batch *b, float *loss)
{
    const lm_config *c = &m->c;
    if (b->B < 1 || b->T < 1 || b->T > c->max_seq || (uint64_t)b->B * b->T > (1u << 26))
        return PTB_EINVAL;
    for (size_t i = 0; i < (size_t)b->B * b->T; i++)
        if (b->tokens[i] < 0 || b->tokens[i] >= (int32_t)c->vocab_size || b->targets[i] < -1 ||
            b->targets[i] >= (int32_t)c->vocab_size)
            return PTB_EINVAL;
    int rc = act_ensure(m, b->B, b->T);
    if (rc)
        return rc;
    const int B = (int)b->B, T = (int)b->T, C = (int)c->channels, NH = (int)c->heads,
              L = (int)c->layers, V = (int)c->vocab_size;
    const size_t BTC = (size_t)B * T * C, BT = (size_t)B * T, att_n = (size_t)B * NH * T * T;
    float *p = m->params, **a = m->act;
    lm_ref_encoder_forward(a[A_ENCODED], b->tokens, p + m->t[LM_T_WTE].offset,
                           p + m->t[LM_T_WPE].offset, B, T, C);
    for (int l = 0; l < L; l++) {
        const float *residual = l == 0 ? a[A_ENCODED] : a[A_RESIDUAL3] + (size_t)(l - 1) * BTC;
        float *ln1 = a[A_LN1] + l * BTC, *ln1m = a[A_LN1_MEAN] + l * BT,
              *ln1r = a[A_LN1_RSTD] + l * BT, *qkv = a[A_QKV] + l * BTC * 3,
              *atty = a[A_ATTY] + l * BTC, *pre = a[A_PREATT] + l * att_n,
              *att = a[A_ATT] + l * att_n, *attproj = a[A_ATTPROJ] + l * BTC,
              *res2 = a[A_RESIDUAL2] + l * BTC, *ln2 = a[A_LN2] + l * BTC,
              *ln2m = a[A_LN2_MEAN] + l * BT, *ln2r = a[A_LN2_RSTD] + l * BT,
              *fch = a[A_FCH] + l * BTC * 4, *gelu = a[A_FCH_GELU] + l * BTC * 4,
              *fcproj = a[A_FCPROJ] + l * BTC, *res3 = a[A_RESIDUAL3] + l * BTC;
        lm_ref_layernorm_forward(ln1, ln1m, ln1r, residual, lp(m, p, LM_T_LN1W, l),
                                 lp(m, p, LM_T_LN1B, l), B, T, C);
        lm_ref_matmul_forward(qkv, ln1, lp(m, p, LM_T_QKVW, l), lp(m, p, LM_T_QKVB, l), B, T, C,
                              3 * C);
        lm_ref_attention_forward(atty, pre, att, qkv, B, T, C, NH);
        lm_ref_matmul_forward(attproj, atty, lp(m, p, LM_T_ATTPROJW, l), lp(m, p, LM_T_ATTPROJB, l),
                              B, T, C, C);
        lm_ref_residual_forward(res2, residual, attproj, (int)BTC);
        lm_ref_layernorm_forward(ln2, ln2m, ln2r, res2, lp(m, p, LM_T_LN2W, l),
                                 lp(m, p, LM_T_LN2B, l), B, T, C);
        lm_ref_matmul_forward(fch, ln2, lp(m, p, LM_T_FCW, l), lp(m, p, LM_T_FCB, l), B, T, C,
                              4 * C);
        lm_ref_gelu_forward(gelu, fch, (int)(BTC * 4));
        lm_ref_matmul_forward(fcproj, gelu, lp(m, p, LM_T_FCPROJW, l), lp(m, p, LM_T_FCPROJB, l), B,
                              T, 4 * C, C);
        lm_ref_residual_forward(res3, res2, fcproj, (int)BTC);
    }
    lm_ref_layernorm_forward(a[A_LNF], a[A_LNF_MEAN], a[A_LNF_RSTD],
                             a[A_RESIDUAL3] + (size_t)(L - 1) * BTC, p + m->t[LM_T_LNFW].offset,
                             p + m->t[LM_T_LNFB].offset, B, T, C);
    lm_ref_matmul_forward(a[A_LOGITS], a[A_LNF], p + m->t[LM_T_WTE].offset, NULL, B, T, C, V);
    float l =
        lm_ref_crossentropy_forward(a[A_PROBS], a[A_LOGITS], b->targets, B, T, V, &m->ntargets);
    if (loss)
        *loss = l;
    m->has_forward = true;
    return 0;
}

const float *lm_logits(const lm_model *m)
{
    return m->act[A_LOGITS];
}

/* ------------------------------------------------------------------ backward */

void lm_zero_grad(lm_model *m)
{
    memset(m->grads, 0, m->nparams * sizeof(float));
}

int lm_backward(lm_model *m, const lm_batch *b)
{
    if (!m->has_forward || b->B != m->B || b->T != m->T)
        return PTB_EINVAL;
    const lm_config *c = &m->c;
    const int B = (int)b->B, T = (int)b->T, C = (int)c->channels, NH = (int)c->heads,
              L = (int)c->layers, V = (int)c->vocab_size;
    const size_t BTC = (size_t)B * T * C, BT = (size_t)B * T, att_n = (size_t)B * NH * T * T;
    float *p = m->params, *g = m->grads, **a = m->act, **d = m->dact;
    for (int i = 0; i < A_COUNT; i++) /* the kernels add into these */
        memset(d[i], 0, m->act_n[i] * sizeof(float));
    lm_ref_crossentropy_backward(d[A_LOGITS], a[A_PROBS], b->targets, B, T, V, m->ntargets);
    lm_ref_matmul_backward(d[A_LNF], g + m->t[LM_T_WTE].offset, NULL, d[A_LOGITS], a[A_LNF],
                           p + m->t[LM_T_WTE].offset, B, T, C, V);
    lm_ref_layernorm_backward(d[A_RESIDUAL3] + (size_t)(L - 1) * BTC, g + m->t[LM_T_LNFW].offset,
                              g + m->t[LM_T_LNFB].offset, d[A_LNF],
                              a[A_RESIDUAL3] + (size_t)(L - 1) * BTC, p + m->t[LM_T_LNFW].offset,
                              a[A_LNF_MEAN], a[A_LNF_RSTD], B, T, C);
    for (int l = L - 1; l >= 0; l--) {
        const float *residual = l == 0 ? a[A_ENCODED] : a[A_RESIDUAL3] + (size_t)(l - 1) * BTC;
        float *dresidual = l == 0 ? d[A_ENCODED] : d[A_RESIDUAL3] + (size_t)(l - 1) * BTC;
        size_t o = l * BTC;
        lm_ref_residual_backward(d[A_RESIDUAL2] + o, d[A_FCPROJ] + o, d[A_RESIDUAL3] + o, (int)BTC);
        lm_ref_matmul_backward(d[A_FCH_GELU] + 4 * o, lp(m, g, LM_T_FCPROJW, l),
                               lp(m, g, LM_T_FCPROJB, l), d[A_FCPROJ] + o, a[A_FCH_GELU] + 4 * o,
                               lp(m, p, LM_T_FCPROJW, l), B, T, 4 * C, C);
        lm_ref_gelu_backward(d[A_FCH] + 4 * o, a[A_FCH] + 4 * o, d[A_FCH_GELU] + 4 * o,
                             (int)(4 * BTC));
        lm_ref_matmul_backward(d[A_LN2] + o, lp(m, g, LM_T_FCW, l), lp(m, g, LM_T_FCB, l),
                               d[A_FCH] + 4 * o, a[A_LN2] + o, lp(m, p, LM_T_FCW, l), B, T, C,
                               4 * C);
        lm_ref_layernorm_backward(d[A_RESIDUAL2] + o, lp(m, g, LM_T_LN2W, l),
                                  lp(m, g, LM_T_LN2B, l), d[A_LN2] + o, a[A_RESIDUAL2] + o,
                                  lp(m, p, LM_T_LN2W, l), a[A_LN2_MEAN] + l * BT,
                                  a[A_LN2_RSTD] + l * BT, B, T, C);
        lm_ref_residual_backward(dresidual, d[A_ATTPROJ] + o, d[A_RESIDUAL2] + o, (int)BTC);
        lm_ref_matmul_backward(d[A_ATTY] + o, lp(m, g, LM_T_ATTPROJW, l),
                               lp(m, g, LM_T_ATTPROJB, l), d[A_ATTPROJ] + o, a[A_ATTY] + o,
                               lp(m, p, LM_T_ATTPROJW, l), B, T, C, C);
        lm_ref_attention_backward(d[A_QKV] + 3 * o, d[A_PREATT] + l * att_n, d[A_ATT] + l * att_n,
                                  d[A_ATTY] + o, a[A_QKV] + 3 * o, a[A_ATT] + l * att_n, B, T, C,
                                  NH);
        lm_ref_matmul_backward(d[A_LN1] + o, lp(m, g, LM_T_QKVW, l), lp(m, g, LM_T_QKVB, l),
                               d[A_QKV] + 3 * o, a[A_LN1] + o, lp(m, p, LM_T_QKVW, l), B, T, C,
                               3 * C);
        lm_ref_layernorm_backward(dresidual, lp(m, g, LM_T_LN1W, l), lp(m, g, LM_T_LN1B, l),
                                  d[A_LN1] + o, residual, lp(m, p, LM_T_LN1W, l),
                                  a[A_LN1_MEAN] + l * BT, a[A_LN1_RSTD] + l * BT, B, T, C);
    }
    lm_ref_encoder_backward(g + m->t[LM_T_WTE].offset, g + m->t[LM_T_WPE].offset, d[A_ENCODED],
                            b->tokens, B, T, C);
    return 0;
}

/* ------------------------------------------------------------------ AdamW */

void lm_adamw_default(lm_adamw *o)
{
    *o = (lm_adamw){.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0};
}

int lm_adamw_step(lm_model *m, const lm_adamw *o, uint64_t step)
{
    if (step < 1)
        return PTB_EINVAL;
    if (!m->m) {
        m->m = calloc(m->nparams, sizeof(float));
        m->v = calloc(m->nparams, sizeof(float));
        if (!m->m || !m->v)
            return PTB_ENOMEM;
    }
    float c1 = 1.0f - powf(o->beta1, (float)step), c2 = 1.0f - powf(o->beta2, (float)step);
    for (int i = 0; i < LM_NUM_TENSORS; i++) {
        float wd = m->t[i].decay ? o->weight_decay : 0.0f;
        size_t a = m->t[i].offset, e = a + m->t[i].count;
        for (size_t k = a; k < e; k++) {
            float gk = m->grads[k];
            float mk = o->beta1 * m->m[k] + (1.0f - o->beta1) * gk;
            float vk = o->beta2 * m->v[k] + (1.0f - o->beta2) * gk * gk;
            m->m[k] = mk;
            m->v[k] = vk;
            float mh = mk / c1, vh = vk / c2;
            m->params[k] -= o->lr * (mh / (sqrtf(vh) + o->eps) + wd * m->params[k]);
        }
    }
    return 0;
}
