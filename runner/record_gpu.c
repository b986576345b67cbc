/* The GPU part of `ptb record` (issue 5): the CUPTI injection library (recorder/gpu/) is named in
 * CUDA_INJECTION64_PATH for the whole tree, and a receiver (gpu_recv.h) listens on a unix socket
 * in a private directory, named to the library by PTB_GPU_SOCKET. Every CUDA process of the tree
 * connects and streams its kernel, memcpy and memset records; the receiver ties them to exec_ids
 * through the pid map below, which the tracer fills at each exec (tracer_options.on_exec). */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event_type.h"
#include "ptb_cli.h"
#include "record_gap.h"
#include "record_gpu.h"

#define PIDMAP_CAP 65536 /* open addressing; pids are reused, the latest exec wins */

typedef struct pid_ent {
    int pid;
    uint64_t exec_id;
} pid_ent;

struct record_pidmap {
    pthread_mutex_t mu;
    pid_ent *tab;
    size_t cap, n;
};

static size_t pid_slot(const record_pidmap *m, int pid)
{
    size_t i = ((size_t)(unsigned)pid * 2654435761u) & (m->cap - 1);
    while (m->tab[i].pid && m->tab[i].pid != pid)
        i = (i + 1) & (m->cap - 1);
    return i;
}

static void on_exec(void *arg, int pid, uint64_t exec_id, uint64_t parent_exec_id, bool execve)
{
    (void)parent_exec_id, (void)execve;
    record_pidmap *m = arg;
    pthread_mutex_lock(&m->mu);
    if (m->n + 1 >= m->cap / 2) { /* grow: rehash into twice the table */
        pid_ent *old = m->tab;
        size_t oc = m->cap;
        pid_ent *nt = calloc(oc * 2, sizeof *nt);
        if (nt) {
            m->tab = nt;
            m->cap = oc * 2;
            for (size_t i = 0; i < oc; i++)
                if (old[i].pid)
                    m->tab[pid_slot(m, old[i].pid)] = old[i];
            free(old);
        }
    }
    size_t i = pid_slot(m, pid);
    if (!m->tab[i].pid && m->n + 1 < m->cap) {
        m->tab[i].pid = pid;
        m->n++;
    }
    if (m->tab[i].pid == pid)
        m->tab[i].exec_id = exec_id;
    pthread_mutex_unlock(&m->mu);
}

static uint64_t pid_lookup(record_pidmap *m, int pid)
{
    pthread_mutex_lock(&m->mu);
    size_t i = pid_slot(m, pid);
    uint64_t id = m->tab[i].pid == pid ? m->tab[i].exec_id : 0;
    pthread_mutex_unlock(&m->mu);
    return id;
}

/* The parent of pid, from /proc/PID/status; 0 when unknown. */
static int parent_of(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int pp = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "PPid: %d", &pp) == 1)
            break;
    fclose(f);
    return pp;
}

/* exec_id of pid: its own, else (a forked process that never exec'd nor did anything the tracer
 * records) that of its nearest ancestor that has one. */
static uint64_t exec_of(void *arg, int pid)
{
    record_pidmap *m = arg;
    for (int depth = 0; pid > 1 && depth < 64; depth++) {
        uint64_t id = pid_lookup(m, pid);
        if (id)
            return id;
        pid = parent_of(pid);
    }
    return 0;
}

bool record_gpu_find_lib(char *out, size_t cap)
{
    static const char *const rel[] = {"../recorder/gpu/libptbgpu.so", "../lib/ptb/libptbgpu.so",
                                      "libptbgpu.so", NULL};
    return ptb_find_lib("PTB_GPU_LIB", rel, out, cap);
}

int record_gpu_start(record_gpu *rg, store *s, bool enabled, const char *lib_path,
                     tracer_options *to, bool quiet)
{
    memset(rg, 0, sizeof *rg);
    if (!enabled)
        return 0;
    char lib[PATH_MAX];
    if (lib_path)
        snprintf(lib, sizeof lib, "%s", lib_path);
    if (!lib_path && !record_gpu_find_lib(lib, sizeof lib)) {
        /* a build without CUPTI: nothing to inject; say so only when CUDA could be used */
        if (access("/dev/nvidiactl", F_OK) == 0) {
            record_gap(s, PTB__V1__SOURCE__SOURCE_GPU, "gpu", "no_library",
                       "the CUPTI injection library (libptbgpu.so) is not installed: GPU kernels "
                       "are not recorded");
            if (!quiet)
                fprintf(stderr, "ptb record: no libptbgpu.so: GPU kernels are not recorded\n");
        }
        return 0;
    }
    record_pidmap *m = calloc(1, sizeof *m);
    if (!m || !(m->tab = calloc(PIDMAP_CAP, sizeof *m->tab))) {
        free(m);
        fprintf(stderr, "ptb record: out of memory\n");
        return PTB_EXIT_ERROR;
    }
    m->cap = PIDMAP_CAP;
    pthread_mutex_init(&m->mu, NULL);
    rg->pids = m;
    snprintf(rg->dir, sizeof rg->dir, "/tmp/ptb-gpu-XXXXXX");
    if (!mkdtemp(rg->dir)) {
        fprintf(stderr, "ptb record: cannot make a directory for the GPU socket: %s\n",
                strerror(errno));
        record_gpu_stop(rg, NULL);
        return PTB_EXIT_ERROR;
    }
    char sock[sizeof rg->dir + 8];
    snprintf(sock, sizeof sock, "%s/sock", rg->dir);
    ptb_errbuf eb = {{0}};
    int rc = gpu_recv_start(s, sock, exec_of, m, &rg->recv, &eb);
    if (rc) {
        fprintf(stderr, "ptb record: GPU recording: %s\n", eb.msg);
        record_gpu_stop(rg, NULL);
        return PTB_EXIT_ERROR;
    }
    const char *prev = getenv("CUDA_INJECTION64_PATH");
    if (prev && *prev && strcmp(prev, lib)) {
        char d[PATH_MAX + 128];
        snprintf(d, sizeof d, "CUDA_INJECTION64_PATH was %s; replaced by ptb's library", prev);
        record_gap(s, PTB__V1__SOURCE__SOURCE_GPU, "gpu", "injection_replaced", d);
    }
    setenv("CUDA_INJECTION64_PATH", lib, 1);
    setenv("PTB_GPU_SOCKET", sock, 1);
    store_meta_set(s, "gpu.library", lib);
    to->on_exec = on_exec;
    to->on_exec_arg = m;
    rg->active = true;
    return 0;
}

int record_gpu_stop(record_gpu *rg, gpu_recv_stats *st)
{
    if (st)
        memset(st, 0, sizeof *st);
    int rc = gpu_recv_stop(rg->recv, st);
    rg->recv = NULL;
    if (rg->dir[0]) {
        char sock[sizeof rg->dir + 8];
        snprintf(sock, sizeof sock, "%s/sock", rg->dir);
        unlink(sock);
        rmdir(rg->dir);
        rg->dir[0] = 0;
    }
    if (rg->pids) {
        pthread_mutex_destroy(&rg->pids->mu);
        free(rg->pids->tab);
        free(rg->pids);
        rg->pids = NULL;
    }
    return rc;
}
