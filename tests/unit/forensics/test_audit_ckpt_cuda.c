/* The checkpoint detector's tensor comparison on the GPU (forensics/cuda/audit_ckpt_dots.cu,
 * through ptb's loader) against the CPU reference (audit_ckpt_dots_cpu): exact jobs in F32, BF16,
 * F16 and F64 (mixed within a job too), one longer than the GPU's chunk, odd lengths and
 * unaligned data; sketch jobs with k < n (the buckets) and k == n (Δi itself). Every sum within
 * the stated tolerance (audit_ckpt_cuda.h): |gpu − cpu| <= 1e-9 · scale, scale = sqrt(cc·ii) for
 * the dot, cc and ii for themselves; α and cos then agree to ~1e-9, far below what decides a
 * verdict (thresholds 0.25, 0.65, 0.12). audit_ckpt_dots_run("cuda") gives the same; "auto"
 * picks the GPU. Skipped (77) without a GPU or the library (PTB_AUDIT_CUDA_LIB, or next to the
 * binary in lib/). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_ckpt_cuda.h"
#include "audit_ckpt_num.h"
#include "safetensors.h"

static uint64_t rng = 88172645463325252ull;
static double gauss(void)
{
    double u[2];
    for (int i = 0; i < 2; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        u[i] = ((rng >> 11) + 0.5) / 9007199254740992.0;
    }
    return sqrt(-2 * log(u[0])) * cos(6.283185307179586 * u[1]);
}

static uint16_t to16(float f, int dt)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if (dt == SAFETENSORS_BF16)
        return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
    uint32_t s = (u >> 16) & 0x8000u, e = (u >> 23) & 255, m = u & 0x7fffffu; /* F16, normal */
    if (e < 113)
        return (uint16_t)s;
    return (uint16_t)(s | ((e - 112) << 10) | (m >> 13));
}

/* n values v in dtype dt at byte offset skew of a new buffer (caller frees *base) */
static void *put(const float *v, size_t n, int dt, size_t skew, void **base)
{
    size_t es = safetensors_dtype_size(dt);
    unsigned char *b = malloc(n * es + skew), *p = b + skew;
    if (!b)
        exit(1);
    for (size_t j = 0; j < n; j++) {
        if (dt == SAFETENSORS_F32) {
            memcpy(p + 4 * j, &v[j], 4);
        } else if (dt == SAFETENSORS_F64) {
            double d = v[j];
            memcpy(p + 8 * j, &d, 8);
        } else {
            uint16_t h = to16(v[j], dt);
            memcpy(p + 2 * j, &h, 2);
        }
    }
    *base = b;
    return p;
}

static int fails;

static void near(const char *what, size_t i, double g, double c, double scale)
{
    double tol = 1e-9 * scale + 1e-300;
    if (!(fabs(g - c) <= tol)) {
        printf("FAIL job %zu %s: gpu %.17g cpu %.17g (|d| %.3g > %.3g)\n", i, what, g, c,
               fabs(g - c), tol);
        fails++;
    }
}

int main(void)
{
    ptb_errbuf eb = {{0}};
    if (audit_ckpt_cuda_available(&eb)) {
        printf("SKIP: %s\n", eb.msg);
        return 77;
    }
    /* {n, final, base, ref dtypes, sketch k (0: exact)} */
    static const struct {
        size_t n;
        int fdt, bdt, xdt;
        uint32_t k;
    } spec[] = {
        {1000003, SAFETENSORS_F32, SAFETENSORS_F32, SAFETENSORS_F32, 0},
        {9000001, SAFETENSORS_BF16, SAFETENSORS_BF16, SAFETENSORS_BF16, 0}, /* > one chunk */
        {777777, SAFETENSORS_F16, SAFETENSORS_F16, SAFETENSORS_F16, 0},
        {300001, SAFETENSORS_F64, SAFETENSORS_F32, SAFETENSORS_BF16, 0},
        {1, SAFETENSORS_F32, SAFETENSORS_F32, SAFETENSORS_F32, 0},
        {2000000, SAFETENSORS_BF16, SAFETENSORS_BF16, 0, 16384}, /* sketch, buckets */
        {9000001, SAFETENSORS_F32, SAFETENSORS_F32, 0, 4096},    /* sketch over two chunks */
        {5000, SAFETENSORS_F16, SAFETENSORS_F16, 0, 16384},      /* sketch = Δi itself */
    };
    enum { NJ = sizeof spec / sizeof *spec };
    audit_ckpt_job jobs[NJ];
    audit_ckpt_dots cpu[NJ], gpu[NJ], run[NJ];
    void *bufs[NJ][3];
    float *sks[NJ];
    double sknorm[NJ] = {0}; /* ‖sketch‖²: the scale of a sketch job's dot */
    memset(bufs, 0, sizeof bufs);
    memset(sks, 0, sizeof sks);
    for (size_t i = 0; i < NJ; i++) {
        size_t n = spec[i].n;
        float *b = malloc(n * 4), *x = malloc(n * 4), *f = malloc(n * 4);
        if (!b || !x || !f)
            return 1;
        for (size_t j = 0; j < n; j++) { /* a merge 0.5 of the reference and a fine-tune */
            b[j] = (float)(0.05 * gauss());
            x[j] = b[j] + (float)(0.01 * gauss());
            f[j] = 0.5f * x[j] + 0.5f * (b[j] + (float)(0.01 * gauss()));
        }
        jobs[i] = (audit_ckpt_job){.n = n, .fdt = spec[i].fdt, .bdt = spec[i].bdt};
        jobs[i].f = put(f, n, spec[i].fdt, i % 3, &bufs[i][0]);
        jobs[i].b = put(b, n, spec[i].bdt, (i + 1) % 3, &bufs[i][1]);
        if (!spec[i].k) {
            jobs[i].x = put(x, n, spec[i].xdt, 2 * (i % 2), &bufs[i][2]);
            jobs[i].xdt = spec[i].xdt;
        } else {
            jobs[i].k = audit_ckpt_sketch_len(n, spec[i].k);
            jobs[i].key = audit_ckpt_sketch_key(42, "t");
            double ii;
            if (!(sks[i] = malloc(jobs[i].k * sizeof(float))))
                return 1;
            /* the sketch of Δi, as ptb refs add makes it (from the reference in the final's
             * dtype) */
            void *xb;
            const void *xd = put(x, n, spec[i].fdt, 0, &xb);
            if (audit_ckpt_sketch_delta(xd, spec[i].fdt, jobs[i].b, spec[i].bdt, n, jobs[i].key,
                                        jobs[i].k, sks[i], &ii))
                return 1;
            free(xb);
            jobs[i].sk = sks[i];
            for (uint32_t b2 = 0; b2 < jobs[i].k; b2++)
                sknorm[i] += (double)sks[i][b2] * sks[i][b2];
        }
        free(b), free(x), free(f);
    }
    memset(cpu, 0, sizeof cpu), memset(gpu, 0, sizeof gpu), memset(run, 0, sizeof run);
    for (size_t i = 0; i < NJ; i++)
        jobs[i].out = &cpu[i];
    if (audit_ckpt_dots_cpu(jobs, NJ, 0))
        return 1;
    for (size_t i = 0; i < NJ; i++)
        jobs[i].out = &gpu[i];
    if (audit_ckpt_cuda_dots(jobs, NJ, &eb)) {
        printf("FAIL: audit_ckpt_cuda_dots: %s\n", eb.msg);
        return 1;
    }
    for (size_t i = 0; i < NJ; i++)
        jobs[i].out = &run[i];
    const char *used = NULL;
    if (audit_ckpt_dots_run(jobs, NJ, "auto", &used, &eb) || strcmp(used, "cuda")) {
        printf("FAIL: audit_ckpt_dots_run auto: %s (%s)\n", eb.msg, used ? used : "-");
        return 1;
    }
    for (size_t i = 0; i < NJ; i++) {
        const audit_ckpt_dots *c = &cpu[i], *g = &gpu[i];
        double sc = sqrt(c->cc * (spec[i].k ? sknorm[i] : c->ii));
        printf("job %zu n %zu %s: dot %.12g / %.12g  cc %.12g / %.12g  ii %.12g / %.12g\n", i,
               spec[i].n, spec[i].k ? "sketch" : "exact", g->dot, c->dot, g->cc, c->cc, g->ii,
               c->ii);
        near("dot", i, g->dot, c->dot, sc);
        near("cc", i, g->cc, c->cc, c->cc);
        near("ii", i, g->ii, c->ii, c->ii);
        near("dot (run)", i, run[i].dot, c->dot, sc);
        if (!spec[i].k) {
            double ac = c->dot / c->ii, ag = g->dot / g->ii;
            double cc = c->dot / sqrt(c->cc * c->ii), cg = g->dot / sqrt(g->cc * g->ii);
            printf("   alpha %.12f / %.12f  cos %.12f / %.12f\n", ag, ac, cg, cc);
            near("alpha", i, ag, ac, 1);
            near("cos", i, cg, cc, 1);
        }
    }
    for (size_t i = 0; i < NJ; i++) {
        for (int b = 0; b < 3; b++)
            free(bufs[i][b]);
        free(sks[i]);
    }
    printf("%s: %d failures\n", fails ? "FAIL" : "OK", fails);
    return fails ? 1 : 0;
}
