/* bench_audit_ckpt: the checkpoint detector's tensor comparison (forensics/audit_ckpt_num.h) in
 * GB/s, on the CPU (1, 2 and all threads) and the GPU (when libptbauditcuda.so loads and a GPU
 * answers), beside the floor a user would measure: `cat` and `sha256sum` of the same files.
 *
 *   bench_audit_ckpt [--dir DIR] [--mb M] [--sketch K] [--json FILE] [--keep]
 *
 * Generates three checkpoints of about M MB each (default 1100) in DIR (base, reference, final:
 * 3/4 of the bytes in BF16 tensors of 4096x4096, 1/4 in F32 tensors of 4096x2048; the final is
 * base + 0.5·Δi + an independent change, so α ≈ 0.5 and cos ≈ 0.45), reads them once (warm:
 * the numbers are from the page cache, as the audit's own SHA-256 pass leaves them), then times:
 *   floor      cat of the three files to /dev/null; sha256sum of them (one process)
 *   exact      every tensor's three sums, CPU at 1, 2, N threads; GPU (first call and best)
 *   hash       SHA-256 of every tensor of the three (what ptb audit also does, one thread)
 *   refs add   ptb refs add's work: hashes and the sketch of the reference (K per tensor)
 *   sketch     the comparison against the stored sketch (CPU, GPU), and its α, cos against the
 *              exact ones
 * GB/s counts the bytes of the three checkpoints' tensors (what is read). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "audit.h"
#include "audit_ckpt_cuda.h"
#include "audit_ckpt_num.h"
#include "audit_refs.h"
#include "safetensors.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static uint64_t mix(uint64_t z)
{
    return audit_ckpt_mix(z);
}

/* uniform in [-1, 1) of stream s, element j */
static float uni(uint64_t s, uint64_t j)
{
    return (float)((int64_t)mix(s * 0x100000000ull + j) >> 11) / 4503599627370496.0f;
}

static uint16_t bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

/* model m (0 base, 1 reference, 2 final), tensor t's value j */
static float value(int m, size_t t, uint64_t j)
{
    float b = 0.05f * uni(3 * t + 1, j);
    if (m == 0)
        return b;
    float di = 0.01f * uni(3 * t + 2, j);
    return m == 1 ? b + di : b + 0.5f * di + 0.01f * uni(3 * t + 3, j);
}

static int write_model(const char *dir, int m, size_t nt)
{
    mkdir(dir, 0755);
    safetensors_tensor *ts = calloc(nt, sizeof *ts);
    char(*names)[32] = calloc(nt, 32);
    if (!ts || !names)
        return PTB_ENOMEM;
    int rc = 0;
    for (size_t t = 0; t < nt && !rc; t++) {
        bool f32 = t % 4 == 3;
        uint64_t r = 4096, c = f32 ? 2048 : 4096, n = r * c;
        snprintf(names[t], 32, "layers.%03zu.%s", t, f32 ? "f32" : "bf16");
        ts[t] = (safetensors_tensor){.name = names[t],
                                     .dtype = f32 ? SAFETENSORS_F32 : SAFETENSORS_BF16,
                                     .rank = 2,
                                     .shape = {r, c},
                                     .nbytes = n * (f32 ? 4 : 2)};
        void *d = malloc(ts[t].nbytes);
        if (!d) {
            rc = PTB_ENOMEM;
            break;
        }
#pragma omp parallel for
        for (uint64_t j = 0; j < n; j++) {
            float v = value(m, t, j);
            if (f32)
                ((float *)d)[j] = v;
            else
                ((uint16_t *)d)[j] = bf16(v);
        }
        ts[t].data = d;
    }
    char p[4200];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    ptb_errbuf eb = {{0}};
    if (!rc && (rc = safetensors_write(p, ts, nt, NULL, &eb)))
        fprintf(stderr, "bench_audit_ckpt: %s\n", eb.msg);
    for (size_t t = 0; t < nt; t++)
        free((void *)ts[t].data);
    free(ts), free(names);
    return rc;
}

static double shell_time(const char *cmd)
{
    double t0 = now();
    if (system(cmd) != 0)
        return -1;
    return now() - t0;
}

typedef struct res {
    double alpha, cos;
} res;

static res total(const audit_ckpt_dots *d, size_t n)
{
    audit_ckpt_dots a = {0};
    for (size_t i = 0; i < n; i++)
        a.dot += d[i].dot, a.cc += d[i].cc, a.ii += d[i].ii;
    return (res){a.dot / a.ii, a.dot / sqrt(a.cc * a.ii)};
}

int main(int argc, char **argv)
{
    const char *dir = "/tmp/ptb-bench-ckpt", *json = NULL;
    double mb = 1100;
    unsigned k = AUDIT_REFS_SKETCH_DEFAULT;
    bool keep = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--mb") && i + 1 < argc)
            mb = atof(argv[++i]);
        else if (!strcmp(argv[i], "--sketch") && i + 1 < argc)
            k = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json") && i + 1 < argc)
            json = argv[++i];
        else if (!strcmp(argv[i], "--keep"))
            keep = true;
        else {
            fprintf(stderr, "usage: bench_audit_ckpt [--dir DIR] [--mb M] [--sketch K] "
                            "[--json FILE] [--keep]\n");
            return 2;
        }
    }
    size_t nt = (size_t)(mb / 32 + 0.5);
    if (nt < 1)
        nt = 1;
    const char *names[3] = {"base", "reference", "final_model"}; /* final_model: beside run.ptb */
    char dirs[3][4096], files[3][4200], cmd[13000];
    mkdir(dir, 0755);
    double tgen = now();
    for (int m = 0; m < 3; m++) {
        snprintf(dirs[m], sizeof dirs[m], "%s/%s", dir, names[m]);
        snprintf(files[m], sizeof files[m], "%s/model.safetensors", dirs[m]);
        struct stat sb;
        char want[64];
        snprintf(want, sizeof want, "%s/.n%zu", dirs[m], nt);
        if (stat(want, &sb) == 0 && stat(files[m], &sb) == 0)
            continue;
        if (write_model(dirs[m], m, nt))
            return 1;
        FILE *f = fopen(want, "w");
        if (f)
            fclose(f);
    }
    tgen = now() - tgen;
    safetensors_set *s[3];
    ptb_errbuf eb = {{0}};
    for (int m = 0; m < 3; m++)
        if (safetensors_dir_open(dirs[m], &s[m], &eb)) {
            fprintf(stderr, "bench_audit_ckpt: %s\n", eb.msg);
            return 1;
        }
    size_t n = safetensors_set_count(s[0]);
    uint64_t bytes = 0;
    audit_ckpt_job *jobs = calloc(n, sizeof *jobs), *skj = calloc(n, sizeof *skj);
    audit_ckpt_dots *d = calloc(n, sizeof *d);
    double *sii = calloc(n, sizeof *sii); /* the stored ‖Δi‖² per tensor */
    if (!jobs || !skj || !d || !sii)
        return 1;
    for (size_t i = 0; i < n; i++) {
        const safetensors_tensor *b = safetensors_set_at(s[0], i), *x = safetensors_set_at(s[1], i),
                                 *f = safetensors_set_at(s[2], i);
        jobs[i] = (audit_ckpt_job){.f = f->data,
                                   .b = b->data,
                                   .x = x->data,
                                   .fdt = f->dtype,
                                   .bdt = b->dtype,
                                   .xdt = x->dtype,
                                   .n = b->nbytes / safetensors_dtype_size(b->dtype)};
        bytes += b->nbytes + x->nbytes + f->nbytes;
    }
    double gb = bytes / 1e9;
    /* warm: read once, as the audit's hashing pass does */
    snprintf(cmd, sizeof cmd, "env -u LD_LIBRARY_PATH cat '%s' '%s' '%s' >/dev/null", files[0],
             files[1], files[2]);
    shell_time(cmd);
    double tcat = shell_time(cmd);
    snprintf(cmd, sizeof cmd, "env -u LD_LIBRARY_PATH sha256sum '%s' '%s' '%s' >/dev/null",
             files[0], files[1], files[2]);
    double tsha = shell_time(cmd);
    int maxt = 1;
#ifdef _OPENMP
    maxt = omp_get_num_procs();
#endif
    int threads[3] = {1, 2, maxt};
    double tcpu[3] = {0};
    res rc_exact = {0};
    for (int ti = 0; ti < 3; ti++) {
        if (ti == 2 && maxt <= 2)
            break;
        for (int rep = 0; rep < 2; rep++) {
            memset(d, 0, n * sizeof *d);
            for (size_t i = 0; i < n; i++)
                jobs[i].out = &d[i];
            double t0 = now();
            if (audit_ckpt_dots_cpu(jobs, n, threads[ti]))
                return 1;
            double t = now() - t0;
            if (!tcpu[ti] || t < tcpu[ti])
                tcpu[ti] = t;
        }
        rc_exact = total(d, n);
    }
    /* the audit's own hashing of the three checkpoints, one thread */
    double th = now();
    for (int m = 0; m < 3; m++)
        for (size_t i = 0; i < n; i++) {
            const safetensors_tensor *t = safetensors_set_at(s[m], i);
            unsigned char md[32];
            unsigned l;
            EVP_Digest(t->data, t->nbytes, md, &l, EVP_sha256(), NULL);
        }
    th = now() - th;
    /* the GPU */
    ptb_errbuf geb = {{0}};
    bool gpu = audit_ckpt_cuda_available(&geb) == 0;
    double tg1 = 0, tg = 0;
    res rg = {0};
    for (int rep = 0; gpu && rep < 3; rep++) {
        memset(d, 0, n * sizeof *d);
        for (size_t i = 0; i < n; i++)
            jobs[i].out = &d[i];
        double t0 = now();
        if (audit_ckpt_cuda_dots(jobs, n, &geb)) {
            fprintf(stderr, "bench_audit_ckpt: GPU: %s\n", geb.msg);
            gpu = false;
            break;
        }
        double t = now() - t0;
        if (!rep)
            tg1 = t;
        if (!tg || t < tg)
            tg = t;
        rg = total(d, n);
    }
    /* ptb refs add, then the comparison with the sketch */
    char refs[4200];
    snprintf(refs, sizeof refs, "%s/refs", dir);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", refs);
    shell_time(cmd);
    audit_refs_added ad;
    double tadd = now();
    if (audit_refs_add(refs, "ref", dirs[1], dirs[0], k, 42, &ad, &eb)) {
        fprintf(stderr, "bench_audit_ckpt: refs add: %s\n", eb.msg);
        return 1;
    }
    tadd = now() - tadd;
    audit_ref *r;
    if (audit_ref_open(refs, "ref", &r, &eb))
        return 1;
    for (size_t i = 0; i < n; i++) {
        const audit_ref_tensor *st = audit_ref_find(r, safetensors_set_at(s[0], i)->name);
        if (!st || !st->has_delta)
            return 1;
        skj[i] = jobs[i];
        skj[i].x = NULL;
        skj[i].sk = st->sk, skj[i].k = st->k;
        skj[i].key = audit_ckpt_sketch_key(r->seed, st->name);
        sii[i] = st->ii;
    }
    double tsk[2] = {0}, var = 0;
    res rs[2] = {{0}};
    for (int dev = 0; dev < (gpu ? 2 : 1); dev++) {
        memset(d, 0, n * sizeof *d);
        for (size_t i = 0; i < n; i++)
            skj[i].out = &d[i];
        double t0 = now();
        int e = dev ? audit_ckpt_cuda_dots(skj, n, &geb) : audit_ckpt_dots_cpu(skj, n, 0);
        tsk[dev] = now() - t0;
        if (e)
            return 1;
        var = 0;
        for (size_t i = 0; i < n; i++) {
            d[i].ii = sii[i];
            var += (d[i].cc * d[i].ii + d[i].dot * d[i].dot) / skj[i].k;
        }
        rs[dev] = total(d, n);
    }
    audit_ckpt_dots a = {0};
    for (size_t i = 0; i < n; i++)
        a.cc += d[i].cc, a.ii += d[i].ii;
    double sd_alpha = sqrt(var) / a.ii, sd_cos = sqrt(var) / sqrt(a.cc * a.ii);
    /* the whole detector, as ptb audit runs it (an empty store beside final_model/): the SHA-256
     * of the three checkpoints' tensors, then the comparison, on each device */
    char stp[4200];
    snprintf(stp, sizeof stp, "%s/run.ptb", dir);
    store *st;
    if (store_open(stp, NULL, STORE_CREATE, &st) || store_close(st))
        return 1;
    double taud[2] = {0};
    const char *devs[2] = {"cpu", "cuda"}, *refl[2] = {dirs[1], NULL};
    for (int dv = 0; dv < (gpu ? 2 : 1); dv++) {
        audit_options o = {.base = dirs[0], .references = refl, .device = devs[dv]};
        audit_run ar;
        audit_report rep = {0};
        double t0 = now();
        if (audit_run_open(&ar, stp, &o, &eb) || audit_ckpt(&ar, &rep))
            return 1;
        taud[dv] = now() - t0;
        audit_run_close(&ar);
        const audit_finding *w = NULL;
        for (size_t i = 0; i < rep.n; i++)
            if (!strcmp(rep.f[i].rule, "ckpt.derived_from_reference") ||
                !strcmp(rep.f[i].rule, "ckpt.weights"))
                w = &rep.f[i];
        printf("detector (%s): %s %s: %.160s\n", devs[dv], w ? w->rule : "-",
               w ? audit_verdict_name(w->verdict) : "-", w && w->matched ? w->matched : "-");
        audit_report_free(&rep);
    }
    /* the report */
    char cpu[256] = "?";
    FILE *ci = fopen("/proc/cpuinfo", "r");
    for (char line[512]; ci && fgets(line, sizeof line, ci);)
        if (!strncmp(line, "model name", 10)) {
            snprintf(cpu, sizeof cpu, "%.200s", strchr(line, ':') ? strchr(line, ':') + 2 : line);
            cpu[strcspn(cpu, "\n")] = 0;
            break;
        }
    if (ci)
        fclose(ci);
    printf("checkpoints: 3 x %zu tensors, %.2f GB read in all (generated in %.1f s); %s, %d "
           "cores\n",
           n, gb, tgen, cpu, maxt);
    printf("%-44s %8s %8s\n", "what", "seconds", "GB/s");
    printf("%-44s %8.3f %8.2f\n", "cat (page cache)", tcat, gb / tcat);
    printf("%-44s %8.3f %8.2f\n", "sha256sum (one process)", tsha, gb / tsha);
    printf("%-44s %8.3f %8.2f\n", "SHA-256 of every tensor (the audit's, 1 thread)", th, gb / th);
    for (int ti = 0; ti < 3; ti++)
        if (tcpu[ti] > 0) {
            char w[64];
            snprintf(w, sizeof w, "exact comparison, CPU %d thread%s", threads[ti],
                     threads[ti] > 1 ? "s" : "");
            printf("%-44s %8.3f %8.2f\n", w, tcpu[ti], gb / tcpu[ti]);
        }
    if (gpu) {
        printf("%-44s %8.3f %8.2f\n", "exact comparison, GPU (first call)", tg1, gb / tg1);
        printf("%-44s %8.3f %8.2f\n", "exact comparison, GPU (best of 3)", tg, gb / tg);
    } else {
        printf("GPU: %s\n", geb.msg);
    }
    printf("%-44s %8.3f %8.2f\n", "ckpt detector (hashes + comparison), --device cpu", taud[0],
           gb / taud[0]);
    if (gpu)
        printf("%-44s %8.3f %8.2f\n", "ckpt detector (hashes + comparison), --device cuda", taud[1],
               gb / taud[1]);
    double skgb = gb * 2 / 3; /* the final and the base only */
    printf("%-44s %8.3f %8.2f\n", "ptb refs add (hash + sketch the reference)", tadd,
           gb * 2 / 3 / tadd);
    printf("%-44s %8.3f %8.2f\n", "sketch comparison, CPU", tsk[0], skgb / tsk[0]);
    if (gpu)
        printf("%-44s %8.3f %8.2f\n", "sketch comparison, GPU", tsk[1], skgb / tsk[1]);
    printf("alpha / cos: exact CPU %.9f / %.9f", rc_exact.alpha, rc_exact.cos);
    if (gpu)
        printf(", exact GPU %.9f / %.9f (|d| %.2g / %.2g)", rg.alpha, rg.cos,
               fabs(rg.alpha - rc_exact.alpha), fabs(rg.cos - rc_exact.cos));
    printf("\nsketch (K %u, %.1f MB kept): alpha %.5f cos %.5f (error %.5f / %.5f; stated 1 "
           "sigma %.5f / %.5f)\n",
           k, ad.sketch_bytes / 1e6, rs[0].alpha, rs[0].cos, rs[0].alpha - rc_exact.alpha,
           rs[0].cos - rc_exact.cos, sd_alpha, sd_cos);
    if (json) {
        FILE *j = fopen(json, "w");
        if (!j)
            return 1;
        fprintf(j,
                "{\"tensors\": %zu, \"gb\": %.4f, \"cpu\": \"%s\", \"cores\": %d, "
                "\"cat_s\": %.4f, \"sha256sum_s\": %.4f, \"tensor_sha256_s\": %.4f, "
                "\"cpu1_s\": %.4f, \"cpu2_s\": %.4f, \"cpuN_s\": %.4f, \"gpu\": %s, "
                "\"gpu_first_s\": %.4f, \"gpu_s\": %.4f, \"refs_add_s\": %.4f, "
                "\"sketch_cpu_s\": %.4f, \"sketch_gpu_s\": %.4f, \"alpha\": %.12f, \"cos\": "
                "%.12f, \"alpha_gpu\": %.12f, \"cos_gpu\": %.12f, \"sketch_k\": %u, "
                "\"sketch_alpha\": %.6f, \"sketch_cos\": %.6f, \"sketch_alpha_gpu\": %.6f, "
                "\"sketch_sd_alpha\": %.6f, \"sketch_sd_cos\": %.6f, \"detector_cpu_s\": %.4f, "
                "\"detector_cuda_s\": %.4f}\n",
                n, gb, cpu, maxt, tcat, tsha, th, tcpu[0], tcpu[1], tcpu[2], gpu ? "true" : "false",
                tg1, tg, tadd, tsk[0], tsk[1], rc_exact.alpha, rc_exact.cos, rg.alpha, rg.cos, k,
                rs[0].alpha, rs[0].cos, rs[1].alpha, sd_alpha, sd_cos, taud[0], taud[1]);
        fclose(j);
    }
    audit_ref_close(r);
    for (int m = 0; m < 3; m++)
        safetensors_set_close(s[m]);
    free(jobs), free(skj), free(d), free(sii);
    if (!keep) {
        snprintf(cmd, sizeof cmd,
                 "rm -rf '%s/base' '%s/reference' '%s/final_model' '%s/refs' '%s/run.ptb'", dir,
                 dir, dir, dir, dir);
        shell_time(cmd);
    }
    return 0;
}
