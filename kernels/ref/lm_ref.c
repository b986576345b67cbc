/* CPU reference kernels (lm_ref.h). Written for reading: one loop nest per formula, the shapes
 * in the comments, accumulation in float in a fixed order. */
#include "lm_ref.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------ encoder */

void lm_ref_encoder_forward(float *out, const int32_t *tokens, const float *wte, const float *wpe,
                            int B, int T, int C)
{
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            float *o = out + ((size_t)b * T + t) * C;
            const float *te = wte + (size_t)tokens[b * T + t] * C;
            const float *pe = wpe + (size_t)t * C;
            for (int i = 0; i < C; i++)
                o[i] = te[i] + pe[i];
        }
}

void lm_ref_encoder_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tokens,
                             int B, int T, int C)
{
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const float *d = dout + ((size_t)b * T + t) * C;
            float *dte = dwte + (size_t)tokens[b * T + t] * C;
            float *dpe = dwpe + (size_t)t * C;
            for (int i = 0; i < C; i++) {
                dte[i] += d[i];
                dpe[i] += d[i];
            }
        }
}

/* ------------------------------------------------------------------ layernorm */

void lm_ref_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                              const float *weight, const float *bias, int B, int T, int C)
{
    const float eps = 1e-5f;
    for (int bt = 0; bt < B * T; bt++) {
        const float *x = inp + (size_t)bt * C;
        float m = 0;
        for (int i = 0; i < C; i++)
            m += x[i];
        m /= (float)C;
        float v = 0;
        for (int i = 0; i < C; i++) {
            float d = x[i] - m;
            v += d * d;
        }
        v /= (float)C;
        float s = 1.0f / sqrtf(v + eps);
        float *o = out + (size_t)bt * C;
        for (int i = 0; i < C; i++)
            o[i] = (x[i] - m) * s * weight[i] + bias[i];
        mean[bt] = m;
        rstd[bt] = s;
    }
}

void lm_ref_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *weight, const float *mean,
                               const float *rstd, int B, int T, int C)
{
    for (int bt = 0; bt < B * T; bt++) {
        const float *d = dout + (size_t)bt * C;
        const float *x = inp + (size_t)bt * C;
        float *dx = dinp + (size_t)bt * C;
        float m = mean[bt], s = rstd[bt];
        /* the two means of the normalisation's backward */
        float dnorm_mean = 0, dnorm_norm_mean = 0;
        for (int i = 0; i < C; i++) {
            float norm = (x[i] - m) * s;
            float dnorm = weight[i] * d[i];
            dnorm_mean += dnorm;
            dnorm_norm_mean += dnorm * norm;
        }
        dnorm_mean /= (float)C;
        dnorm_norm_mean /= (float)C;
        for (int i = 0; i < C; i++) {
            float norm = (x[i] - m) * s;
            float dnorm = weight[i] * d[i];
            dbias[i] += d[i];
            dweight[i] += norm * d[i];
            dx[i] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
        }
    }
}

/* ------------------------------------------------------------------ matmul */

/* x . w over n values in eight interleaved partial sums, added in a fixed tree: the compiler can
 * vectorise it without reordering float additions, and the bits never depend on the machine. */
static float dot8(const float *x, const float *w, int n)
{
    float s[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            s[k] += x[i + k] * w[i + k];
    for (; i < n; i++)
        s[i & 7] += x[i] * w[i];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

void lm_ref_matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
                           int B, int T, int C, int OC)
{
    const int BT = B * T;
#pragma omp parallel for
    for (int bt = 0; bt < BT; bt++) {
        const float *x = inp + (size_t)bt * C;
        float *o = out + (size_t)bt * OC;
        for (int oc = 0; oc < OC; oc++)
            o[oc] = (bias ? bias[oc] : 0.0f) + dot8(x, weight + (size_t)oc * C, C);
    }
}

void lm_ref_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, int B, int T, int C, int OC)
{
    const int BT = B * T;
    /* dinp (B,T,C) += dout (B,T,OC) @ weight (OC,C): one row of dinp per thread */
#pragma omp parallel for
    for (int bt = 0; bt < BT; bt++) {
        const float *d = dout + (size_t)bt * OC;
        float *dx = dinp + (size_t)bt * C;
        for (int oc = 0; oc < OC; oc++) {
            const float *w = weight + (size_t)oc * C;
            float g = d[oc];
            for (int i = 0; i < C; i++)
                dx[i] += w[i] * g;
        }
    }
    /* dweight (OC,C) += dout^T @ inp, dbias (OC) += sum of dout: one output channel per thread,
     * summed over bt in order */
#pragma omp parallel for
    for (int oc = 0; oc < OC; oc++) {
        float *dw = dweight + (size_t)oc * C;
        float db = 0;
        for (int bt = 0; bt < BT; bt++) {
            const float *x = inp + (size_t)bt * C;
            float g = dout[(size_t)bt * OC + oc];
            db += g;
            for (int i = 0; i < C; i++)
                dw[i] += x[i] * g;
        }
        if (dbias)
            dbias[oc] += db;
    }
}

/* ------------------------------------------------------------------ attention */

void lm_ref_attention_forward(float *out, float *preatt, float *att, const float *inp, int B, int T,
                              int C, int NH)
{
    const int C3 = 3 * C, hs = C / NH;
    const float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                const float *q = inp + ((size_t)b * T + t) * C3 + h * hs;
                float *pre = preatt + (((size_t)b * NH + h) * T + t) * T;
                float *a = att + (((size_t)b * NH + h) * T + t) * T;
                /* scores against keys 0..t, and their maximum */
                float maxv = -INFINITY;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *k = inp + ((size_t)b * T + t2) * C3 + h * hs + C;
                    float v = 0;
                    for (int i = 0; i < hs; i++)
                        v += q[i] * k[i];
                    v *= scale;
                    pre[t2] = v;
                    if (v > maxv)
                        maxv = v;
                }
                float sum = 0;
                for (int t2 = 0; t2 <= t; t2++) {
                    float e = expf(pre[t2] - maxv);
                    a[t2] = e;
                    sum += e;
                }
                float inv = 1.0f / sum;
                for (int t2 = 0; t2 < T; t2++)
                    a[t2] = t2 <= t ? a[t2] * inv : 0.0f;
                /* weighted sum of the values */
                float *o = out + ((size_t)b * T + t) * C + h * hs;
                for (int i = 0; i < hs; i++)
                    o[i] = 0;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *v = inp + ((size_t)b * T + t2) * C3 + h * hs + 2 * C;
                    for (int i = 0; i < hs; i++)
                        o[i] += a[t2] * v[i];
                }
            }
}

void lm_ref_attention_backward(float *dinp, float *dpreatt, float *datt, const float *dout,
                               const float *inp, const float *att, int B, int T, int C, int NH)
{
    const int C3 = 3 * C, hs = C / NH;
    const float scale = 1.0f / sqrtf((float)hs);
    /* keys and values of t2 get gradient from every t >= t2: one (b, h) per thread keeps that
     * sum in one order */
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                const float *a = att + (((size_t)b * NH + h) * T + t) * T;
                float *da = datt + (((size_t)b * NH + h) * T + t) * T;
                float *dpre = dpreatt + (((size_t)b * NH + h) * T + t) * T;
                const float *q = inp + ((size_t)b * T + t) * C3 + h * hs;
                float *dq = dinp + ((size_t)b * T + t) * C3 + h * hs;
                const float *d = dout + ((size_t)b * T + t) * C + h * hs;
                /* out = att @ v: into datt and dv */
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *v = inp + ((size_t)b * T + t2) * C3 + h * hs + 2 * C;
                    float *dv = dinp + ((size_t)b * T + t2) * C3 + h * hs + 2 * C;
                    for (int i = 0; i < hs; i++) {
                        da[t2] += v[i] * d[i];
                        dv[i] += a[t2] * d[i];
                    }
                }
                /* softmax: dpre[t3] += sum over t2 of att[t2] (1[t2 = t3] - att[t3]) datt[t2] */
                for (int t2 = 0; t2 <= t; t2++)
                    for (int t3 = 0; t3 <= t; t3++) {
                        float ind = t2 == t3 ? 1.0f : 0.0f;
                        dpre[t3] += a[t2] * (ind - a[t3]) * da[t2];
                    }
                /* scores = q . k * scale: into dq and dk */
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *k = inp + ((size_t)b * T + t2) * C3 + h * hs + C;
                    float *dk = dinp + ((size_t)b * T + t2) * C3 + h * hs + C;
                    for (int i = 0; i < hs; i++) {
                        dq[i] += k[i] * dpre[t2] * scale;
                        dk[i] += q[i] * dpre[t2] * scale;
                    }
                }
            }
}

/* ------------------------------------------------------------------ GELU, residual */

#define GELU_S 0.7978845608028654f /* sqrt(2 / pi) */

void lm_ref_gelu_forward(float *out, const float *inp, int N)
{
    for (int i = 0; i < N; i++) {
        float x = inp[i];
        float cube = 0.044715f * x * x * x;
        out[i] = 0.5f * x * (1.0f + tanhf(GELU_S * (x + cube)));
    }
}

void lm_ref_gelu_backward(float *dinp, const float *inp, const float *dout, int N)
{
    for (int i = 0; i < N; i++) {
        float x = inp[i];
        float cube = 0.044715f * x * x * x;
        float arg = GELU_S * (x + cube);
        float th = tanhf(arg);
        float ch = coshf(arg);
        float sech2 = 1.0f / (ch * ch);
        float g =
            0.5f * (1.0f + th) + x * 0.5f * sech2 * GELU_S * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] += g * dout[i];
    }
}

void lm_ref_residual_forward(float *out, const float *a, const float *b, int N)
{
    for (int i = 0; i < N; i++)
        out[i] = a[i] + b[i];
}

void lm_ref_residual_backward(float *da, float *db, const float *dout, int N)
{
    for (int i = 0; i < N; i++) {
        da[i] += dout[i];
        db[i] += dout[i];
    }
}

/* ------------------------------------------------------------------ loss */

float lm_ref_crossentropy_forward(float *probs, const float *logits, const int32_t *targets, int B,
                                  int T, int V, int *n)
{
    double loss = 0; /* summed in double, in order: the mean does not depend on the batch split */
    int cnt = 0;
    for (int bt = 0; bt < B * T; bt++) {
        const float *l = logits + (size_t)bt * V;
        float *p = probs + (size_t)bt * V;
        float maxv = -INFINITY;
        for (int i = 0; i < V; i++)
            if (l[i] > maxv)
                maxv = l[i];
        float sum = 0;
        for (int i = 0; i < V; i++) {
            p[i] = expf(l[i] - maxv);
            sum += p[i];
        }
        for (int i = 0; i < V; i++)
            p[i] /= sum;
        int32_t tg = targets[bt];
        if (tg >= 0) {
            loss += -log((double)p[tg] > 1e-30 ? (double)p[tg] : 1e-30);
            cnt++;
        }
    }
    *n = cnt;
    return cnt ? (float)(loss / cnt) : 0.0f;
}

void lm_ref_crossentropy_backward(float *dlogits, const float *probs, const int32_t *targets, int B,
                                  int T, int V, int n)
{
    float inv = n ? 1.0f / (float)n : 0.0f;
    for (int bt = 0; bt < B * T; bt++) {
        float *d = dlogits + (size_t)bt * V;
        const float *p = probs + (size_t)bt * V;
        int32_t tg = targets[bt];
        if (tg < 0) {
            memset(d, 0, (size_t)V * sizeof *d);
            continue;
        }
        for (int i = 0; i < V; i++)
            d[i] = (p[i] - (i == tg ? 1.0f : 0.0f)) * inv;
    }
}
