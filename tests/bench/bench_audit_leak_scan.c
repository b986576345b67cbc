/* bench_audit_leak_scan: the leakage scan alone (forensics/audit_leak_scan.c), on a file in
 * memory: its bytes through lk_scan_unit on 1 and 2 threads of the CPU and, when a GPU is there,
 * on the GPU (the CPU reading what the GPU leaves). tests/bench/bench_audit_leak.sh sets it beside
 * the whole `ptb audit` and `grep -F -f` (docs/BENCHMARKS.md).
 *
 *   bench_audit_leak_scan --test-set FILE --data FILE [--threads 1,2] [--reps N] [--device
 *                         cpu|cuda|auto]
 *
 * The data is read once (not timed); each configuration is timed --reps times (best kept) and
 * its result -- items found in full, question-only, answer-only, longest run, samples, words --
 * must equal the first's, else exit 1. Prints one JSON line per configuration: the bytes, the
 * seconds, GB/s of bytes scanned, what was found. The GPU's library: $PTB_AUDIT_CUDA_LIB, else
 * lib/ next to this program. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit_leak_cuda.h"
#include "audit_leak_int.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *b = sz >= 0 ? malloc((size_t)sz + 1) : NULL;
    if (b && fread(b, 1, (size_t)sz, f) != (size_t)sz)
        free(b), b = NULL;
    fclose(f);
    *n = (size_t)sz;
    return b;
}

int main(int argc, char **argv)
{
    const char *test = NULL, *data = NULL, *threads = "1,2", *device = "auto";
    unsigned reps = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--test-set"))
            test = argv[i + 1];
        else if (!strcmp(argv[i], "--data"))
            data = argv[i + 1];
        else if (!strcmp(argv[i], "--threads"))
            threads = argv[i + 1];
        else if (!strcmp(argv[i], "--reps"))
            reps = (unsigned)strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--device"))
            device = argv[i + 1];
    }
    if (!test || !data) {
        fprintf(stderr, "usage: bench_audit_leak_scan --test-set FILE --data FILE [--threads 1,2] "
                        "[--reps N] [--device cpu|cuda|auto]\n");
        return 2;
    }
    size_t n;
    uint8_t *buf = slurp(data, &n);
    if (!buf) {
        perror(data);
        return 2;
    }
    lk_index ix = {0};
    char err[512];
    lk_scan sc;
    if (lk_index_build(&ix, test, err, sizeof err) || lk_scanner_init(&sc, &ix)) {
        fprintf(stderr, "bench_audit_leak_scan: %s\n", err);
        return 2;
    }
    /* the configurations: threads..., then the GPU */
    unsigned cfg[9];
    size_t ncfg = 0;
    for (const char *s = threads; *s && ncfg < 8;) {
        cfg[ncfg++] = (unsigned)strtoul(s, (char **)&s, 10);
        s += *s == ',';
    }
    audit_leak_cuda *g = NULL;
    char msg[4600] = "";
    if (strcmp(device, "cpu")) {
        if (lk_gpu_open(&ix, &g, msg, sizeof msg) == 0)
            cfg[ncfg++] = 0; /* 0: the GPU */
        else if (!strcmp(device, "cuda")) {
            fprintf(stderr, "bench_audit_leak_scan: no GPU: %s\n", msg);
            return 2;
        }
    }
    lk_res first = {0};
    uint64_t first_words = 0;
    int rc = 0;
    for (size_t c = 0; c < ncfg; c++) {
        double best = 1e30;
        lk_res res = {0};
        uint64_t words = 0;
        for (unsigned r = 0; r < reps; r++) {
            sc.threads = cfg[c] ? cfg[c] : 2;
            sc.gpu = cfg[c] ? NULL : g;
            sc.words = 0, sc.gpu_bytes = 0;
            double t0 = now_s();
            if (lk_scan_unit(&sc, buf, n, &res)) {
                fprintf(stderr, "bench_audit_leak_scan: scan failed\n");
                return 1;
            }
            double t = now_s() - t0;
            best = t < best ? t : best;
            words = sc.words;
        }
        if (c == 0)
            first = res, first_words = words;
        bool same = !memcmp(&res, &first, sizeof res) && words == first_words;
        rc |= !same;
        printf("{\"device\": \"%s\", \"threads\": %u, \"bytes\": %zu, \"gpu_bytes\": %llu, "
               "\"s\": %.4f, \"gb_per_s\": %.3f, \"words\": %llu, \"full\": %u, \"qonly\": %u, "
               "\"aonly\": %u, \"span\": %u, \"same_as_first\": %s}\n",
               cfg[c] ? "cpu" : "cuda", cfg[c] ? cfg[c] : 2, n, (unsigned long long)sc.gpu_bytes,
               best, (double)n / best / 1e9, (unsigned long long)words, res.full, res.qonly,
               res.aonly, res.span, same ? "true" : "false");
        fflush(stdout);
    }
    audit_leak_cuda_free(g);
    lk_scanner_free(&sc);
    lk_index_free(&ix);
    free(buf);
    return rc;
}
