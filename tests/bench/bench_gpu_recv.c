/* bench_gpu_recv: how many GPU kernel records per second the recorder stores (issue 5: "so that
 * 1,000,000 launches/s can be stored without loss").
 *
 *   bench_gpu_recv [--kernels N] [--rate R] [--processes P] [--names K] [--dir DIR] [--json]
 *
 * Senders are separate processes that speak the wire protocol exactly as libptbgpu.so does
 * (hello, name table, 64 KiB batches of kernel records, end record) over the AF_UNIX socket of
 * a real receiver (gpu_recv) on a real store; no GPU is involved, so this measures the
 * recorder's side alone. Like the library, a sender waits at most 50 ms for room in the socket
 * and counts a batch it could not send as dropped.
 *
 * Measures, side by side:
 *   receiver   P senders, N kernels in all, offered at R kernels/s in all (0 = as fast as the
 *              receiver takes them): kernels stored per second (first send to the store closed:
 *              everything committed and indexed),
 *              batches the senders dropped, bytes on disk per kernel;
 *   per-event  the same N kernels appended one gpu.kernel event each through store_append in one
 *              thread, no socket (what a recorder without kernel batches does at best): kernels
 *              per second (to the store closed), bytes per kernel.
 * The kernels are a training loop's: steps of 275 launches over K names (120 to 200 bytes, as
 * demangled PyTorch kernels are), times 1 µs apart. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "event_type.h"
#include "gpu_recv.h"
#include "gpu_wire.h"
#include "store.h"

static const int64_t T0 = 1800000000000000000LL;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_gpu_recv: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* The i-th name: a plausible demangled kernel name of 120..200 bytes. */
static void name_of(int i, char *out, size_t cap)
{
    int n = snprintf(out, cap,
                     "void at::native::vectorized_elementwise_kernel<4, at::native::"
                     "BinaryFunctor<float, float, float, at::native::binary_internal::"
                     "MulFunctor<float> >, std::array<char*, 3ul> >(int, op%d",
                     i);
    for (int k = 0; k < i % 80 && n + 2 < (int)cap; k++)
        out[n++] = (char)('a' + k % 26);
    out[n++] = ')';
    out[n] = 0;
}

static gpu_wire_rec kernel_rec(uint64_t i, int names)
{
    gpu_wire_rec r = {.kind = GPU_WIRE_KERNEL};
    gpu_wire_kernel *k = &r.u.kernel;
    k->name_id = 1 + (uint32_t)((i % 275) % (uint64_t)names); /* a step: 275 launches */
    k->grid[0] = 128u << (i % 5);
    k->grid[1] = k->grid[2] = 1;
    k->block[0] = 256;
    k->block[1] = k->block[2] = 1;
    k->shared_mem = (uint32_t)(i % 3) * 16384;
    k->registers = 32 + (uint32_t)(i % 4) * 8;
    k->stream = 7;
    k->device = 0;
    k->context = 1;
    k->correlation = (uint32_t)(i + 1);
    k->start_ns = T0 + (int64_t)i * 1000;
    k->end_ns = k->start_ns + 800 + (int64_t)(i % 17) * 40;
    return r;
}

/* ------------------------------------------------------------------ a sender (child) */

static int send_bounded(int fd, const uint8_t *buf, size_t len)
{
    double deadline = now_s() + 0.050;
    for (;;) {
        ssize_t n = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n == (ssize_t)len)
            return 0;
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        double left = deadline - now_s();
        if (left <= 0)
            return 1;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        (void)poll(&p, 1, (int)(left * 1000) + 1);
    }
}

/* Send n kernels at `rate` per second (0 = unpaced; a blocking socket then), then the end
 * record. Exit status 0; the dropped batch count goes to the pipe. */
static void sender(const char *sock, uint64_t first, uint64_t n, double rate, int names, int out)
{
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(sock) >= sizeof a.sun_path) {
        errno = ENAMETOOLONG;
        die(sock);
    }
    memcpy(a.sun_path, sock, strlen(sock) + 1);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a))
        die("connect");
    static uint8_t buf[GPU_WIRE_BATCH_MAX];
    gpu_wire_writer w;
    gpu_wire_writer_init(&w, buf, sizeof buf);
    gpu_wire_rec h = {.kind = GPU_WIRE_HELLO};
    h.u.hello.wire_version = GPU_WIRE_VERSION;
    h.u.hello.pid = (uint32_t)getpid();
    h.u.hello.cupti_version = 130001;
    h.u.hello.init_ns = T0;
    gpu_wire_put(&w, &h);
    gpu_wire_rec c = {.kind = GPU_WIRE_CONTEXT};
    c.u.context.context = 1;
    c.u.context.name = "NVIDIA H100 80GB HBM3";
    c.u.context.len = (uint16_t)strlen(c.u.context.name);
    gpu_wire_put(&w, &c);
    uint64_t dropped = 0, sent = 0, nbatch = 0;
    double t0 = now_s();
    char name[256];
    for (int i = 1; i <= names; i++) {
        name_of(i, name, sizeof name);
        gpu_wire_rec r = {.kind = GPU_WIRE_NAME};
        r.u.name.id = (uint32_t)i;
        r.u.name.name = name;
        r.u.name.len = (uint16_t)strlen(name);
        r.u.name.full_len = r.u.name.len;
        if (gpu_wire_put(&w, &r) == -ENOSPC) {
            size_t len = gpu_wire_writer_finish(&w);
            if (send(fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len)
                die("send");
            gpu_wire_writer_reset(&w);
            gpu_wire_put(&w, &r);
        }
    }
    for (uint64_t i = 0; i <= n; i++) {
        gpu_wire_rec r;
        if (i < n)
            r = kernel_rec(first + i, names);
        if (i == n || gpu_wire_put(&w, &r) == -ENOSPC) {
            size_t len = gpu_wire_writer_finish(&w);
            if (rate > 0) {
                double due = t0 + (double)sent / rate;
                double wait = due - now_s();
                if (wait > 0) {
                    struct timespec ts = {(time_t)wait,
                                          (long)((wait - (double)(time_t)wait) * 1e9)};
                    nanosleep(&ts, NULL);
                }
                int rc = send_bounded(fd, buf, len);
                if (rc < 0)
                    die("send");
                dropped += rc;
            } else if (send(fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len) {
                die("send");
            }
            sent += w.count;
            nbatch++;
            gpu_wire_writer_reset(&w);
            if (i < n)
                gpu_wire_put(&w, &r);
        }
    }
    /* the end record counts what was sent: dropped batches are reported as a mismatch */
    gpu_wire_rec e = {.kind = GPU_WIRE_END};
    e.u.end.kernels = n;
    gpu_wire_put(&w, &e);
    size_t len = gpu_wire_writer_finish(&w);
    if (send(fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len)
        die("send");
    if (write(out, &dropped, sizeof dropped) != sizeof dropped)
        die("pipe");
    close(fd);
    (void)nbatch;
    _exit(0);
}

/* ------------------------------------------------------------------ measures */

static uint64_t du_bytes(const char *dir)
{
    char path[600];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

/* Kernels read back from the store in dir as gpu.kernel events (what `ptb query` shows). */
static uint64_t count_kernels(const char *dir)
{
    store *s;
    store_txn *t;
    if (store_open(dir, NULL, STORE_RDONLY, &s) || store_txn_begin(s, &t)) {
        store_close(s);
        return 0;
    }
    store_range r = {0};
    r.by_index = true;
    r.index = STORE_IX_TYPE;
    r.key = PTB__V1__EVENT__BODY_GPU_KERNEL;
    store_cursor *c;
    uint64_t n = 0;
    if (store_cursor_open(t, &r, &c) == 0) {
        const ptb_event *ev;
        while (store_cursor_next(c, &ev) == 0)
            n += ev->body_case == PTB__V1__EVENT__BODY_GPU_KERNEL;
        store_cursor_close(c);
    }
    store_txn_end(t);
    store_close(s);
    return n;
}

typedef struct result {
    double seconds, rate, bytes_per_kernel;
    uint64_t stored, dropped, read_back;
} result;

static void run_receiver(const char *dir, uint64_t n, double rate, int procs, int names,
                         result *res)
{
    char sd[600], sock[600];
    snprintf(sd, sizeof sd, "%s/recv.ptb", dir);
    snprintf(sock, sizeof sock, "%s/gpu.sock", dir);
    store *s;
    if (store_open(sd, NULL, STORE_CREATE, &s))
        die("store_open");
    gpu_recv *r;
    ptb_errbuf eb = {{0}};
    if (gpu_recv_start(s, sock, NULL, NULL, &r, &eb))
        die("gpu_recv_start");
    int p[2];
    if (pipe(p))
        die("pipe");
    double t0 = now_s();
    for (int i = 0; i < procs; i++) {
        uint64_t share = n / (uint64_t)procs + ((uint64_t)i < n % (uint64_t)procs);
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0) {
            close(p[0]);
            sender(sock, (uint64_t)i << 40, share, rate / procs, names, p[1]);
        }
    }
    close(p[1]);
    res->dropped = 0;
    for (int i = 0; i < procs; i++) {
        uint64_t d;
        if (read(p[0], &d, sizeof d) == sizeof d)
            res->dropped += d;
        int st;
        wait(&st);
    }
    close(p[0]);
    gpu_recv_stats gs;
    gpu_recv_stop(r, &gs);
    if (store_close(s)) /* everything committed and indexed */
        die("store_close");
    res->seconds = now_s() - t0;
    res->stored = gs.kernels;
    res->rate = (double)gs.kernels / res->seconds;
    res->read_back = count_kernels(sd);
    res->bytes_per_kernel = (double)du_bytes(sd) / (double)(gs.kernels ? gs.kernels : 1);
}

static void run_per_event(const char *dir, uint64_t n, int names, result *res)
{
    char sd[600];
    snprintf(sd, sizeof sd, "%s/event.ptb", dir);
    store *s;
    if (store_open(sd, NULL, STORE_CREATE, &s))
        die("store_open");
    char(*nm)[256] = malloc((size_t)(names + 1) * 256);
    for (int i = 1; i <= names; i++)
        name_of(i, nm[i], 256);
    double t0 = now_s();
    for (uint64_t i = 0; i < n; i++) {
        gpu_wire_rec w = kernel_rec(i, names);
        const gpu_wire_kernel *k = &w.u.kernel;
        Ptb__V1__GpuKernel m = PTB__V1__GPU_KERNEL__INIT;
        m.name = nm[k->name_id];
        m.grid_x = k->grid[0];
        m.grid_y = k->grid[1];
        m.grid_z = k->grid[2];
        m.block_x = k->block[0];
        m.block_y = k->block[1];
        m.block_z = k->block[2];
        m.shared_mem = k->shared_mem;
        m.registers = k->registers;
        m.stream = k->stream;
        m.context_id = k->context;
        m.start_ns = k->start_ns;
        m.end_ns = k->end_ns;
        m.correlation_id = k->correlation;
        ptb_event ev = PTB__V1__EVENT__INIT;
        ev.source = PTB__V1__SOURCE__SOURCE_GPU;
        ev.exec_id = 1;
        ev.ts_ns = k->start_ns;
        ev.body_case = PTB__V1__EVENT__BODY_GPU_KERNEL;
        ev.gpu_kernel = &m;
        if (store_append(s, &ev, 0, NULL))
            die("store_append");
    }
    if (store_close(s))
        die("store_close");
    res->seconds = now_s() - t0;
    res->stored = n;
    res->rate = (double)n / res->seconds;
    res->dropped = 0;
    res->read_back = count_kernels(sd);
    res->bytes_per_kernel = (double)du_bytes(sd) / (double)n;
    free(nm);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_gpu_recv [--kernels N] [--rate R] [--processes P] [--names K] "
               "[--dir DIR] [--json]\n"
               "  --kernels N    kernel records in all (default 10000000)\n"
               "  --rate R       kernels/s offered in all, 0 = as fast as taken (default 0)\n"
               "  --processes P  sending processes (default 1)\n"
               "  --names K      distinct kernel names (default 100)\n"
               "  --dir DIR      where the stores go (default: a new directory in /tmp)\n"
               "  --skip-per-event  measure the receiver only\n");
}

int main(int argc, char **argv)
{
    uint64_t n = 10000000;
    double rate = 0;
    int procs = 1, names = 100;
    bool json = false, per_event = true;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--skip-per-event")) {
            per_event = false;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (v && !strcmp(a, "--kernels")) {
            n = strtoull(v, NULL, 10), i++;
        } else if (v && !strcmp(a, "--rate")) {
            rate = strtod(v, NULL), i++;
        } else if (v && !strcmp(a, "--processes")) {
            procs = atoi(v), i++;
        } else if (v && !strcmp(a, "--names")) {
            names = atoi(v), i++;
        } else if (v && !strcmp(a, "--dir")) {
            dir = v, i++;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (n == 0 || procs < 1 || procs > 64 || names < 1 || names > 100000 || rate < 0) {
        usage(stderr);
        return 2;
    }
    char tmp[] = "/tmp/ptb-bench-gpu-XXXXXX";
    if (!dir && !(dir = mkdtemp(tmp)))
        die("mkdtemp");
    if (mkdir(dir, 0700) && errno != EEXIST)
        die(dir);
    signal(SIGPIPE, SIG_IGN);
    result rr, re = {0};
    run_receiver(dir, n, rate, procs, names, &rr);
    if (per_event)
        run_per_event(dir, n, names, &re);
    if (json) {
        printf("{\"kernels\": %llu, \"offered_rate\": %.0f, \"processes\": %d, \"names\": %d,\n"
               " \"receiver\": {\"seconds\": %.3f, \"kernels_per_s\": %.0f, \"stored\": %llu, "
               "\"read_back\": %llu, \"batches_dropped\": %llu, \"bytes_per_kernel\": %.1f}",
               (unsigned long long)n, rate, procs, names, rr.seconds, rr.rate,
               (unsigned long long)rr.stored, (unsigned long long)rr.read_back,
               (unsigned long long)rr.dropped, rr.bytes_per_kernel);
        if (per_event)
            printf(",\n \"per_event\": {\"seconds\": %.3f, \"kernels_per_s\": %.0f, \"read_back\": "
                   "%llu, \"bytes_per_kernel\": %.1f}",
                   re.seconds, re.rate, (unsigned long long)re.read_back, re.bytes_per_kernel);
        printf("}\n");
    } else {
        printf("%-10s %12s %10s %14s %12s %10s %9s\n", "path", "kernels", "seconds", "kernels/s",
               "read back", "dropped", "B/kernel");
        printf("%-10s %12llu %10.3f %14.0f %12llu %10llu %9.1f\n", "receiver",
               (unsigned long long)rr.stored, rr.seconds, rr.rate, (unsigned long long)rr.read_back,
               (unsigned long long)rr.dropped, rr.bytes_per_kernel);
        if (per_event)
            printf("%-10s %12llu %10.3f %14.0f %12llu %10s %9.1f\n", "per-event",
                   (unsigned long long)re.stored, re.seconds, re.rate,
                   (unsigned long long)re.read_back, "-", re.bytes_per_kernel);
        if (per_event)
            printf("receiver / per-event: %.2fx kernels/s, %.2fx bytes\n", rr.rate / re.rate,
                   rr.bytes_per_kernel / re.bytes_per_kernel);
    }
    if (dir == tmp) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_gpu_recv: could not remove %s\n", tmp);
    }
    return rr.read_back == rr.stored ? 0 : 1;
}
