/* bench_lm_cpu: training tokens/s of the reference model on the CPU (kernels/lm.h), the number
 * that tests/bench/bench_lm_cpu.sh sets beside PyTorch's on the same configuration
 * (tests/gpu/torch_lm.py --device cpu) for docs/BENCHMARKS.md.
 *
 *   bench_lm_cpu [--layers L] [--heads H] [--channels C] [--batch B] [--seq T] [--steps N]
 *
 * Random tokens, every position scored (as torch_lm.py), one forward, backward and AdamW step per
 * batch; the threads are OpenMP's (OMP_NUM_THREADS). Prints one JSON line: the configuration, the
 * parameter count, tokens/s (the median of five timed windows after two warm-up steps). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "lm.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    lm_config c;
    lm_config_default(&c);
    unsigned B = 8, T = 128, steps = 20;
    for (int i = 1; i + 1 < argc; i += 2) {
        unsigned v = (unsigned)strtoul(argv[i + 1], NULL, 10);
        if (!strcmp(argv[i], "--layers"))
            c.layers = v;
        else if (!strcmp(argv[i], "--heads"))
            c.heads = v;
        else if (!strcmp(argv[i], "--channels"))
            c.channels = v;
        else if (!strcmp(argv[i], "--batch"))
            B = v;
        else if (!strcmp(argv[i], "--seq"))
            T = v;
        else if (!strcmp(argv[i], "--steps"))
            steps = v;
        else {
            fprintf(stderr, "bench_lm_cpu: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    c.max_seq = T;
    ptb_errbuf eb = {{0}};
    lm_model *m;
    if (B < 1 || T < 1 || steps < 5 || lm_model_new(&c, &m, &eb)) {
        fprintf(stderr, "bench_lm_cpu: bad configuration %s\n", eb.msg);
        return 2;
    }
    lm_model_init(m, 1);
    int32_t *tok = malloc((size_t)B * T * sizeof *tok), *tgt = malloc((size_t)B * T * sizeof *tgt);
    if (!tok || !tgt)
        return 1;
    uint64_t s = 1;
    for (size_t i = 0; i < (size_t)B * T; i++) {
        tok[i] = (int32_t)(lm_rng_next(&s) % LM_VOCAB);
        tgt[i] = (int32_t)(lm_rng_next(&s) % LM_VOCAB);
    }
    lm_batch b = {.B = B, .T = T, .tokens = tok, .targets = tgt};
    lm_adamw o;
    lm_adamw_default(&o);
    o.lr = 1e-4f;
    float loss = 0;
    uint64_t step = 0;
    double w[5];
    unsigned per = steps / 5;
    for (int k = -1; k < 5; k++) {
        double t0 = now_s();
        for (unsigned i = 0; i < (k < 0 ? 2 : per); i++) {
            if (lm_forward(m, &b, &loss))
                return 1;
            lm_zero_grad(m);
            if (lm_backward(m, &b) || lm_adamw_step(m, &o, ++step))
                return 1;
        }
        if (k >= 0)
            w[k] = (double)B * T * per / (now_s() - t0);
    }
    qsort(w, 5, sizeof w[0], cmp_double);
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    printf("{\"impl\": \"ptb-cpu\", \"device\": \"cpu\", \"threads\": %d, \"layers\": %u, "
           "\"heads\": %u, \"channels\": %u, \"batch\": %u, \"seq\": %u, \"precision\": "
           "\"fp32\", \"params\": %zu, \"tokens_per_s\": %.0f, \"loss\": %.4f}\n",
           threads, c.layers, c.heads, c.channels, B, T, lm_model_num_params(m), w[2],
           (double)loss);
    lm_model_free(m);
    free(tok);
    free(tgt);
    return 0;
}
