/* The GPU part of `ptb stats`: gpu.kernel events (read through the TYPE index) summed per
 * kernel name, per device and per process (exec_id): launches and GPU time (end - start);
 * gpu.memcpy / gpu.memset summed per kind: operations, bytes, time. stats_gpu.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats_gpu.h"

/* One row of a sum: a key (a name, or a number printed as text) and its totals. */
typedef struct gsum {
    char *key;
    uint64_t n, bytes;
    int64_t ns;
} gsum;

typedef struct gtab {
    gsum *rows;
    size_t n, cap;
    size_t *idx; /* open addressing over rows, cap*2 slots */
    size_t icap;
} gtab;

struct stats_gpu {
    gtab by_name, by_device, by_process, copies;
    uint64_t kernels;
    int64_t kernel_ns;
};

static uint64_t hstr(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static int gtab_grow(gtab *t)
{
    size_t icap = t->icap ? t->icap * 2 : 256;
    size_t *idx = malloc(icap * sizeof *idx);
    gsum *rows = realloc(t->rows, icap / 2 * sizeof *rows);
    if (!idx || !rows) {
        free(idx);
        if (rows)
            t->rows = rows;
        return PTB_ENOMEM;
    }
    t->rows = rows;
    t->cap = icap / 2;
    for (size_t i = 0; i < icap; i++)
        idx[i] = SIZE_MAX;
    for (size_t r = 0; r < t->n; r++) {
        size_t i = hstr(t->rows[r].key) & (icap - 1);
        while (idx[i] != SIZE_MAX)
            i = (i + 1) & (icap - 1);
        idx[i] = r;
    }
    free(t->idx);
    t->idx = idx;
    t->icap = icap;
    return 0;
}

static int gtab_add(gtab *t, const char *key, uint64_t bytes, int64_t ns)
{
    if (t->n >= t->cap && gtab_grow(t))
        return PTB_ENOMEM;
    size_t i = hstr(key) & (t->icap - 1);
    while (t->idx[i] != SIZE_MAX && strcmp(t->rows[t->idx[i]].key, key))
        i = (i + 1) & (t->icap - 1);
    if (t->idx[i] == SIZE_MAX) {
        char *k = strdup(key);
        if (!k)
            return PTB_ENOMEM;
        t->rows[t->n] = (gsum){.key = k};
        t->idx[i] = t->n++;
    }
    gsum *g = &t->rows[t->idx[i]];
    g->n++;
    g->bytes += bytes;
    g->ns += ns > 0 ? ns : 0;
    return 0;
}

static void gtab_free(gtab *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->rows[i].key);
    free(t->rows);
    free(t->idx);
}

static int by_time_desc(const void *a, const void *b)
{
    const gsum *x = a, *y = b;
    if (x->ns != y->ns)
        return x->ns < y->ns ? 1 : -1;
    return x->n < y->n ? 1 : x->n > y->n ? -1 : strcmp(x->key, y->key);
}

static int scan(store_txn *t, int body, stats_gpu *g)
{
    store_range r = {.by_index = true, .index = STORE_IX_TYPE, .key = (uint64_t)body};
    store_cursor *c;
    int rc = store_cursor_open(t, &r, &c);
    if (rc)
        return rc;
    const ptb_event *ev;
    char k[32];
    while (!rc && (rc = store_cursor_next(c, &ev)) == 0) {
        if (ev->body_case == PTB__V1__EVENT__BODY_GPU_KERNEL && ev->gpu_kernel) {
            const Ptb__V1__GpuKernel *kn = ev->gpu_kernel;
            int64_t ns = kn->end_ns - kn->start_ns;
            g->kernels++;
            g->kernel_ns += ns > 0 ? ns : 0;
            rc = gtab_add(&g->by_name, kn->name && *kn->name ? kn->name : "?", 0, ns);
            snprintf(k, sizeof k, "%" PRIu32, kn->device);
            rc = rc ? rc : gtab_add(&g->by_device, k, 0, ns);
            snprintf(k, sizeof k, "%" PRIu64, ev->exec_id);
            rc = rc ? rc : gtab_add(&g->by_process, k, 0, ns);
        } else {
            const Ptb__V1__GpuMemcpy *m =
                ev->body_case == PTB__V1__EVENT__BODY_GPU_MEMCPY ? ev->gpu_memcpy : ev->gpu_memset;
            if (!m)
                continue;
            const char *kind = ev->body_case == PTB__V1__EVENT__BODY_GPU_MEMSET ? "memset"
                               : m->kind && *m->kind                            ? m->kind
                                                                                : "?";
            rc = gtab_add(&g->copies, kind, m->bytes, m->end_ns - m->start_ns);
        }
    }
    store_cursor_close(c);
    return rc == PTB_ENOTFOUND ? 0 : rc;
}

int stats_gpu_read(store_txn *t, stats_gpu **out)
{
    stats_gpu *g = calloc(1, sizeof *g);
    if (!g)
        return PTB_ENOMEM;
    int rc = scan(t, PTB__V1__EVENT__BODY_GPU_KERNEL, g);
    rc = rc ? rc : scan(t, PTB__V1__EVENT__BODY_GPU_MEMCPY, g);
    rc = rc ? rc : scan(t, PTB__V1__EVENT__BODY_GPU_MEMSET, g);
    if (rc) {
        stats_gpu_free(g);
        return rc;
    }
    gtab *tabs[] = {&g->by_name, &g->by_device, &g->by_process, &g->copies};
    for (size_t i = 0; i < 4; i++)
        if (tabs[i]->n)
            qsort(tabs[i]->rows, tabs[i]->n, sizeof *tabs[i]->rows, by_time_desc);
    *out = g;
    return 0;
}

uint64_t stats_gpu_kernels(const stats_gpu *g)
{
    return g ? g->kernels : 0;
}

bool stats_gpu_empty(const stats_gpu *g)
{
    return !g->kernels && !g->copies.n;
}

static void print_rows(const char *title, const char *what, const gtab *t, size_t max)
{
    if (!t->n)
        return;
    printf("%s\n", title);
    for (size_t i = 0; i < t->n && i < max; i++)
        printf("  %-10" PRIu64 " %12.3f ms  %s%s\n", t->rows[i].n, (double)t->rows[i].ns / 1e6,
               what, t->rows[i].key);
    if (t->n > max)
        printf("  (%zu more)\n", t->n - max);
}

void stats_gpu_print(const stats_gpu *g, size_t top)
{
    printf("gpu kernels:    %" PRIu64 " launches, %.3f ms of GPU time\n", g->kernels,
           (double)g->kernel_ns / 1e6);
    print_rows("gpu kernels by name (launches, GPU time):", "", &g->by_name, top);
    print_rows("gpu kernels by device:", "device ", &g->by_device, top);
    print_rows("gpu kernels by process:", "exec_id ", &g->by_process, top);
    if (g->copies.n) {
        printf("gpu copies (operations, bytes, time):\n");
        for (size_t i = 0; i < g->copies.n; i++)
            printf("  %-10" PRIu64 " %14" PRIu64 " B %10.3f ms  %s\n", g->copies.rows[i].n,
                   g->copies.rows[i].bytes, (double)g->copies.rows[i].ns / 1e6,
                   g->copies.rows[i].key);
    }
}

static json_t *rows_json(const gtab *t, const char *keyname, bool numeric, bool bytes)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < t->n; i++) {
        json_t *o = json_object();
        if (numeric)
            json_object_set_new(o, keyname, json_integer(strtoll(t->rows[i].key, NULL, 10)));
        else
            json_object_set_new(o, keyname, json_string(t->rows[i].key));
        json_object_set_new(o, "count", json_integer((json_int_t)t->rows[i].n));
        json_object_set_new(o, "gpu_ns", json_integer(t->rows[i].ns));
        if (bytes)
            json_object_set_new(o, "bytes", json_integer((json_int_t)t->rows[i].bytes));
        json_array_append_new(a, o);
    }
    return a;
}

json_t *stats_gpu_json(const stats_gpu *g)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "kernels", json_integer((json_int_t)g->kernels));
    json_object_set_new(o, "kernel_ns", json_integer(g->kernel_ns));
    json_object_set_new(o, "by_name", rows_json(&g->by_name, "name", false, false));
    json_object_set_new(o, "by_device", rows_json(&g->by_device, "device", true, false));
    json_object_set_new(o, "by_process", rows_json(&g->by_process, "exec_id", true, false));
    json_object_set_new(o, "copies", rows_json(&g->copies, "kind", false, true));
    return o;
}

void stats_gpu_free(stats_gpu *g)
{
    if (!g)
        return;
    gtab_free(&g->by_name);
    gtab_free(&g->by_device);
    gtab_free(&g->by_process);
    gtab_free(&g->copies);
    free(g);
}
