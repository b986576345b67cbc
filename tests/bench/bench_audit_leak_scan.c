/* bench_audit_leak_scan: the leakage scan alone (forensics/audit_leak_scan.c), on a file in
 * memory: its bytes through lk_scan_unit on 1 and 2 threads of the CPU and, when a GPU is there,
 * on the GPU (the CPU reading what the GPU leaves). tests/bench/bench_audit_leak.sh sets it beside
 * the whole `ptb audit` and `grep -F -f` (docs/BENCHMARKS.md).
 *
 *   bench_audit_leak_scan --test-set FILE --data FILE [--threads 1,2] [--reps N] [--device
 *                         cpu|cuda|auto] [--non-ascii-every N]
 *
 * The data is read once (not timed); each configuration is timed --reps times (best kept) and
 * its result -- items found in full, question-only, answer-only, longest run, samples, words --
 * must equal the first's, else exit 1. Prints one JSON line per configuration: the bytes, the
 * seconds, GB/s of bytes scanned, what was found; with a GPU, also the GPU's part alone
 * (audit_leak_cuda_scan over the whole file: copies, kernels, copies back; no CPU merge). The GPU's library: $PTB_AUDIT_CUDA_LIB, else
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
    unsigned long long dirty = 0;
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
        else if (!strcmp(argv[i], "--non-ascii-every"))
            dirty = strtoull(argv[i + 1], NULL, 10);
    }
    if (!test || !data) {
        fprintf(stderr, "usage: bench_audit_leak_scan --test-set FILE --data FILE [--threads 1,2] "
                        "[--reps N] [--device cpu|cuda|auto] [--non-ascii-every N]\n");
        return 2;
    }
    size_t n;
    uint8_t *buf = slurp(data, &n);
    if (!buf) {
        perror(data);
        return 2;
    }
    /* --non-ascii-every N: a space every N bytes becomes 0xA0 (a byte the GPU leaves to the CPU) */
    for (size_t i = dirty; dirty && i < n; i += dirty) {
        while (i < n && buf[i] != ' ')
            i++;
        if (i < n)
            buf[i] = 0xA0;
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
    if (g) { /* the GPU's part alone: pieces of 64 KiB and 1 MiB, no CPU merge */
        static const size_t kib[] = {64, 1024}, batch[] = {1024, 64};
        static size_t cut[1025];
        static audit_leak_cuda_piece pc[1024];
        for (size_t m = 0; m < 2; m++) {
            double best = 1e30;
            size_t cpu_pieces = 0;
            for (unsigned r = 0; r < reps; r++) {
                double t0 = now_s();
                cpu_pieces = 0;
                for (size_t at = 0; at < n;) {
                    size_t np = 0, b0 = at;
                    cut[0] = 0;
                    while (np < batch[m] && at < n) {
                        size_t c = n - at > (kib[m] << 10) ? at + (kib[m] << 10) : n;
                        while (c < n && !lk_piece_cut(buf[c]))
                            c++;
                        cut[++np] = c - b0;
                        at = c;
                    }
                    if (audit_leak_cuda_scan(g, buf + b0, at - b0, cut, np, pc, msg, sizeof msg)) {
                        fprintf(stderr, "bench_audit_leak_scan: %s\n", msg);
                        return 1;
                    }
                    for (size_t k = 0; k < np; k++)
                        cpu_pieces += pc[k].cpu != 0;
                }
                double t = now_s() - t0;
                best = t < best ? t : best;
            }
            printf("{\"device\": \"cuda-alone\", \"piece_kib\": %zu, \"bytes\": %zu, \"s\": %.4f, "
                   "\"gb_per_s\": %.3f, \"pieces_left_to_cpu\": %zu}\n",
                   kib[m], n, best, (double)n / best / 1e9, cpu_pieces);
        }
    }
    audit_leak_cuda_free(g);
    lk_scanner_free(&sc);
    lk_index_free(&ix);
    free(buf);
    return rc;
}
