// launch_bench: the cost of one eager kernel launch, for the GPU recording proofs (issue 5).
// Launches an empty kernel N times back to back on one stream (the CPU side of a launch is what
// recording can slow down), synchronises, and prints one JSON object: launches, the best of
// --runs wall times per launch in microseconds, and every run's. Run natively and under
// `ptb record` side by side (tests/gpu/run.sh).
#include <cuda_runtime.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

__global__ void ptb_empty(void) {}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    long n = 100000;
    int runs = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--launches") && i + 1 < argc)
            n = atol(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
    }
    if (n < 1 || runs < 1 || runs > 64) {
        fprintf(stderr, "usage: launch_bench [--launches N] [--runs R]\n");
        return 2;
    }
    ptb_empty<<<1, 1>>>(); // context, module load
    if (cudaDeviceSynchronize() != cudaSuccess) {
        printf("{\"error\": \"%s\"}\n", cudaGetErrorString(cudaGetLastError()));
        return 1;
    }
    double best = 1e30, us[64];
    for (int r = 0; r < runs; r++) {
        double t0 = now_s();
        for (long i = 0; i < n; i++)
            ptb_empty<<<1, 1>>>();
        cudaError_t e = cudaDeviceSynchronize();
        double dt = now_s() - t0;
        if (e != cudaSuccess) {
            printf("{\"error\": \"%s\"}\n", cudaGetErrorString(e));
            return 1;
        }
        us[r] = dt / (double)n * 1e6;
        if (us[r] < best)
            best = us[r];
    }
    printf("{\"launches\": %ld, \"runs\": %d, \"best_us_per_launch\": %.4f, \"us_per_launch\": [",
           n * runs + 1, runs, best);
    for (int r = 0; r < runs; r++)
        printf("%s%.4f", r ? ", " : "", us[r]);
    printf("]}\n");
    return 0;
}
