/* The checkpoint detector's numbers on the CPU, and the choice of device (audit_ckpt_num.h).
 *
 * Exact jobs are cut into blocks of AUDIT_CKPT_CHUNK elements; OpenMP hands the blocks of all
 * jobs to the threads (a 4B-parameter model is thousands of blocks: both cores stay busy even
 * when one tensor holds a fifth of the model). A block converts SUB elements at a time into
 * buffers on the stack (they stay in L1) and gives its three sums; each job's blocks are added in
 * order afterwards, so the result is the same for any number of threads. Sketch jobs take one
 * thread each (their k buckets are the thread's). Nothing is read but the mapped tensors: memory
 * does not grow with the model. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "audit_ckpt_cuda.h"
#include "audit_ckpt_num.h"
#include "safetensors.h"

#define SUB 2048 /* elements converted at a time */

bool audit_ckpt_dtype_ok(int dt)
{
    return dt == SAFETENSORS_F32 || dt == SAFETENSORS_F16 || dt == SAFETENSORS_BF16 ||
           dt == SAFETENSORS_F64;
}

static float num_half(uint16_t h)
{
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023u, u;
    if (e == 31)
        u = s | 0x7f800000u | (m << 13);
    else if (e)
        u = s | ((e + 112) << 23) | (m << 13);
    else if (!m)
        u = s;
    else { /* subnormal: normalise */
        e = 113;
        while (!(m & 1024u))
            m <<= 1, e--;
        u = s | (e << 23) | ((m & 1023u) << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

void audit_ckpt_to_float(const void *data, int dt, size_t off, size_t n, float *out)
{
    const unsigned char *p = (const unsigned char *)data + off * safetensors_dtype_size(dt);
    switch (dt) {
    case SAFETENSORS_F32: memcpy(out, p, n * 4); break;
    case SAFETENSORS_F64:
        for (size_t j = 0; j < n; j++) {
            double v;
            memcpy(&v, p + 8 * j, 8);
            out[j] = (float)v;
        }
        break;
    case SAFETENSORS_BF16:
        for (size_t j = 0; j < n; j++) {
            uint16_t h;
            memcpy(&h, p + 2 * j, 2);
            uint32_t u = (uint32_t)h << 16;
            memcpy(&out[j], &u, 4);
        }
        break;
    default: /* F16 */
        for (size_t j = 0; j < n; j++) {
            uint16_t h;
            memcpy(&h, p + 2 * j, 2);
            out[j] = num_half(h);
        }
    }
}

void audit_ckpt_dots_add(const float *f, const float *b, const float *x, size_t n,
                         audit_ckpt_dots *d)
{
    /* four partial sums each (elements j mod 4), added at the end: the same order for the same
     * n, and four times the additions in flight of one chain */
    double dot[4] = {0}, cc[4] = {0}, ii[4] = {0};
    size_t j = 0;
    for (; j + 4 <= n; j += 4)
        for (int u = 0; u < 4; u++) {
            double dc = (double)f[j + u] - b[j + u], di = (double)x[j + u] - b[j + u];
            dot[u] += dc * di;
            cc[u] += dc * dc;
            ii[u] += di * di;
        }
    for (; j < n; j++) {
        double dc = (double)f[j] - b[j], di = (double)x[j] - b[j];
        dot[0] += dc * di;
        cc[0] += dc * dc;
        ii[0] += di * di;
    }
    d->dot += (dot[0] + dot[1]) + (dot[2] + dot[3]);
    d->cc += (cc[0] + cc[1]) + (cc[2] + cc[3]);
    d->ii += (ii[0] + ii[1]) + (ii[2] + ii[3]);
}

uint64_t audit_ckpt_sketch_key(uint64_t seed, const char *name)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    return audit_ckpt_mix(seed ^ h);
}

uint32_t audit_ckpt_sketch_len(uint64_t n, uint32_t k)
{
    if (k > AUDIT_CKPT_SKETCH_MAX)
        k = AUDIT_CKPT_SKETCH_MAX;
    return n < k ? (uint32_t)(n ? n : 1) : (k ? k : 1);
}

/* acc[h(j)] += s(j)·v[j - off] for j in [off, off+n): the count sketch's update */
static void num_sketch_add(const double *v, uint64_t off, size_t n, uint64_t key, uint32_t k,
                           double *acc)
{
    for (size_t j = 0; j < n; j++) {
        uint64_t h = audit_ckpt_mix(key + off + j), u;
        uint32_t bkt = (uint32_t)(((h >> 32) * (uint64_t)k) >> 32);
        double sv;
        memcpy(&u, &v[j], 8);
        u ^= h << 63; /* the sign s(j), without a branch that would miss half the time */
        memcpy(&sv, &u, 8);
        acc[bkt] += sv;
    }
}

int audit_ckpt_sketch_delta(const void *x, int xdt, const void *b, int bdt, uint64_t n,
                            uint64_t key, uint32_t k, float *sk, double *ii)
{
    float fx[SUB], fb[SUB];
    double d[SUB];
    double *acc = k < n ? calloc(k, sizeof *acc) : NULL;
    if (k < n && !acc)
        return PTB_ENOMEM;
    double s = 0;
    for (uint64_t off = 0; off < n; off += SUB) {
        size_t c = n - off < SUB ? (size_t)(n - off) : SUB;
        audit_ckpt_to_float(x, xdt, off, c, fx);
        audit_ckpt_to_float(b, bdt, off, c, fb);
        for (size_t j = 0; j < c; j++) {
            d[j] = (double)fx[j] - fb[j];
            s += d[j] * d[j];
            if (!acc)
                sk[off + j] = (float)d[j];
        }
        if (acc)
            num_sketch_add(d, off, c, key, k, acc);
    }
    for (uint32_t i = 0; acc && i < k; i++)
        sk[i] = (float)acc[i];
    free(acc);
    *ii = s;
    return 0;
}

/* The three sums of elements [off, off+n) of an exact job. */
static void num_block(const audit_ckpt_job *jb, uint64_t off, size_t n, audit_ckpt_dots *d)
{
    float f[SUB], b[SUB], x[SUB];
    for (size_t o = 0; o < n; o += SUB) {
        size_t c = n - o < SUB ? n - o : SUB;
        audit_ckpt_to_float(jb->f, jb->fdt, off + o, c, f);
        audit_ckpt_to_float(jb->b, jb->bdt, off + o, c, b);
        audit_ckpt_to_float(jb->x, jb->xdt, off + o, c, x);
        audit_ckpt_dots_add(f, b, x, c, d);
    }
}

/* A sketch job: ‖Δc‖² exactly and ⟨S(Δc), sk⟩ (acc: k doubles of the thread, or NULL when
 * k == n). */
static void num_sketch_job(const audit_ckpt_job *jb, double *acc)
{
    float f[SUB], b[SUB], s[SUB];
    double d[SUB], cc = 0, dot = 0;
    if (acc)
        memset(acc, 0, jb->k * sizeof *acc);
    for (uint64_t off = 0; off < jb->n; off += SUB) {
        size_t c = jb->n - off < SUB ? (size_t)(jb->n - off) : SUB;
        audit_ckpt_to_float(jb->f, jb->fdt, off, c, f);
        audit_ckpt_to_float(jb->b, jb->bdt, off, c, b);
        if (!acc)
            memcpy(s, jb->sk + off, c * sizeof *s);
        for (size_t j = 0; j < c; j++) {
            d[j] = (double)f[j] - b[j];
            cc += d[j] * d[j];
            if (!acc)
                dot += d[j] * s[j];
        }
        if (acc)
            num_sketch_add(d, off, c, jb->key, jb->k, acc);
    }
    for (uint32_t i = 0; acc && i < jb->k; i++) {
        float v;
        memcpy(&v, jb->sk + i, sizeof v);
        dot += acc[i] * v;
    }
    jb->out->dot += dot, jb->out->cc += cc;
}

int audit_ckpt_dots_cpu(const audit_ckpt_job *jobs, size_t n, int threads)
{
    size_t nb = 0, nsk = 0, kmax = 0;
    for (size_t i = 0; i < n; i++) {
        if (jobs[i].x)
            nb += (size_t)((jobs[i].n + AUDIT_CKPT_CHUNK - 1) / AUDIT_CKPT_CHUNK);
        else if (nsk++, jobs[i].k < jobs[i].n && jobs[i].k > kmax)
            kmax = jobs[i].k;
    }
    /* block b: job blk[b], elements from off[b] */
    uint32_t *blk = malloc((nb ? nb : 1) * sizeof *blk);
    uint64_t *off = malloc((nb ? nb : 1) * sizeof *off);
    audit_ckpt_dots *part = calloc(nb ? nb : 1, sizeof *part);
    size_t *sk = malloc((nsk ? nsk : 1) * sizeof *sk);
    if (!blk || !off || !part || !sk || n > UINT32_MAX) {
        free(blk), free(off), free(part), free(sk);
        return PTB_ENOMEM;
    }
    nb = nsk = 0;
    for (size_t i = 0; i < n; i++) {
        if (!jobs[i].x)
            sk[nsk++] = i;
        for (uint64_t o = 0; jobs[i].x && o < jobs[i].n; o += AUDIT_CKPT_CHUNK)
            blk[nb] = (uint32_t)i, off[nb++] = o;
    }
#ifdef _OPENMP
    int nt = threads > 0 ? threads : omp_get_max_threads();
#else
    int nt = 1;
    (void)threads;
#endif
    int rc = 0;
#pragma omp parallel num_threads(nt)
    {
#pragma omp for schedule(dynamic, 1) nowait
        for (size_t i = 0; i < nb; i++) {
            const audit_ckpt_job *jb = &jobs[blk[i]];
            uint64_t left = jb->n - off[i];
            num_block(jb, off[i], left < AUDIT_CKPT_CHUNK ? (size_t)left : AUDIT_CKPT_CHUNK,
                      &part[i]);
        }
        double *acc = kmax ? malloc(kmax * sizeof *acc) : NULL;
        if (kmax && !acc) {
#pragma omp atomic write
            rc = PTB_ENOMEM;
        }
#pragma omp for schedule(dynamic, 1)
        for (size_t i = 0; i < nsk; i++) {
            const audit_ckpt_job *jb = &jobs[sk[i]];
            if (jb->k >= jb->n)
                num_sketch_job(jb, NULL);
            else if (acc)
                num_sketch_job(jb, acc);
        }
        free(acc);
    }
    for (size_t i = 0; i < nb; i++) { /* in order: the same sums for any number of threads */
        audit_ckpt_dots *o = jobs[blk[i]].out;
        o->dot += part[i].dot, o->cc += part[i].cc, o->ii += part[i].ii;
    }
    free(blk), free(off), free(part), free(sk);
    return rc;
}

int audit_ckpt_dots_run(const audit_ckpt_job *jobs, size_t n, const char *device, const char **used,
                        ptb_errbuf *eb)
{
    const char *dev = device ? device : "auto";
    if (used)
        *used = "cpu";
    if (strcmp(dev, "cpu") && strcmp(dev, "cuda") && strcmp(dev, "auto"))
        return ptb_errf(eb, PTB_EINVAL, "device %s: cpu, cuda or auto", dev);
    if (strcmp(dev, "cpu") && n) {
        ptb_errbuf why = {{0}};
        int rc = audit_ckpt_cuda_available(&why);
        if (!rc) {
            if (used)
                *used = "cuda";
            /* an error in mid-run leaves the outputs half-added: they are zeroed for the CPU */
            if (!(rc = audit_ckpt_cuda_dots(jobs, n, &why)))
                return 0;
            for (size_t i = 0; i < n; i++)
                memset(jobs[i].out, 0, sizeof *jobs[i].out);
        }
        if (!strcmp(dev, "cuda"))
            return ptb_errf(eb, rc, "%s", why.msg);
        if (used)
            *used = "cpu";
    }
    return audit_ckpt_dots_cpu(jobs, n, 0);
}
