// launch_bench: the cost of one eager kernel launch, for the GPU recording proofs (issue 5).
// Launches an empty kernel N times back to back on one stream (the CPU side of a launch is what
// recording can slow down), synchronises, and prints one JSON object: launches, the best of
// --runs wall times per launch in microseconds, and every run's. Run natively and under
// `ptb record` side by side (tests/gpu/run.sh).
//
// With --graph K: the launch rate instead. K empty kernels, independent of each other, make one
// CUDA graph, which is launched until N kernels ran (N rounded up to a multiple of K), once; it prints the
// kernels run (warm-up and capture included: every one is a kernel record) and kernels per
// second. A graph runs kernels far faster than eager launches do, so this is what can reach the
// rate the recorder must keep up with (a million kernels a second).
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

/* --graph K: kernels per second through a graph of K empty kernels. */
static int graph_rate(long n, int k)
{
    cudaStream_t st;
    cudaGraph_t g;
    cudaGraphExec_t ge;
    /* K kernel nodes without dependencies: the GPU may run them side by side */
    cudaKernelNodeParams kp = {};
    kp.func = (void *)ptb_empty;
    kp.gridDim = dim3(1);
    kp.blockDim = dim3(1);
    if (cudaStreamCreate(&st) != cudaSuccess || cudaGraphCreate(&g, 0) != cudaSuccess) {
        printf("{\"error\": \"%s\"}\n", cudaGetErrorString(cudaGetLastError()));
        return 1;
    }
    for (int i = 0; i < k; i++) {
        cudaGraphNode_t node;
        if (cudaGraphAddKernelNode(&node, g, NULL, 0, &kp) != cudaSuccess) {
            printf("{\"error\": \"%s\"}\n", cudaGetErrorString(cudaGetLastError()));
            return 1;
        }
    }
    if (cudaGraphInstantiate(&ge, g, 0) != cudaSuccess || cudaGraphLaunch(ge, st) != cudaSuccess ||
        cudaStreamSynchronize(st) != cudaSuccess) {
        printf("{\"error\": \"%s\"}\n", cudaGetErrorString(cudaGetLastError()));
        return 1;
    }
    long launches = (n + k - 1) / k;
    struct timespec w0, w1; /* wall clock of the timed part, to sum the rates of processes */
    clock_gettime(CLOCK_REALTIME, &w0);
    double t0 = now_s();
    for (long i = 0; i < launches; i++)
        cudaGraphLaunch(ge, st);
    cudaError_t e = cudaStreamSynchronize(st);
    double dt = now_s() - t0;
    clock_gettime(CLOCK_REALTIME, &w1);
    if (e != cudaSuccess) {
        printf("{\"error\": \"%s\"}\n", cudaGetErrorString(e));
        return 1;
    }
    long ran = launches * k;
    /* kernel records: main's first eager launch, the warm-up graph launch, the timed ones */
    printf("{\"graph_nodes\": %d, \"kernels\": %ld, \"timed_kernels\": %ld, \"seconds\": %.4f, "
           "\"kernels_per_s\": %.0f, \"t0\": %.6f, \"t1\": %.6f}\n",
           k, 1 + k + ran, ran, dt, (double)ran / dt, (double)w0.tv_sec + w0.tv_nsec / 1e9,
           (double)w1.tv_sec + w1.tv_nsec / 1e9);
    return 0;
}

int main(int argc, char **argv)
{
    long n = 100000;
    int runs = 5, graph = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--launches") && i + 1 < argc)
            n = atol(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--graph") && i + 1 < argc)
            graph = atoi(argv[++i]);
    }
    if (n < 1 || runs < 1 || runs > 64 || graph < 0 || graph > 100000) {
        fprintf(stderr, "usage: launch_bench [--launches N] [--runs R] [--graph K]\n");
        return 2;
    }
    ptb_empty<<<1, 1>>>(); // context, module load
    if (cudaDeviceSynchronize() != cudaSuccess) {
        printf("{\"error\": \"%s\"}\n", cudaGetErrorString(cudaGetLastError()));
        return 1;
    }
    if (graph)
        return graph_rate(n, graph);
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
