/* Two checkpoint files compared (replay_train.h): the bytes, then, when both are safetensors,
 * tensor by tensor in name order (the format sorts them): tensors on one side only, another
 * dtype or shape, and for tensors whose bytes differ, how many elements differ, the largest
 * absolute difference and the difference's L2 norm relative to the recorded tensor's, computed
 * in double. Both files are mapped read-only; memory does not grow with the model. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit_ckpt_num.h"
#include "replay_train.h"

#define SUB 2048 /* elements converted at a time */

typedef struct mapped {
    const unsigned char *p;
    size_t len;
} mapped;

static int map_file(const char *path, mapped *m, ptb_errbuf *eb)
{
    memset(m, 0, sizeof *m);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb)) {
        int e = -errno;
        if (fd >= 0)
            close(fd);
        return ptb_errf(eb, e, "%s: %s", path, strerror(-e));
    }
    m->len = (size_t)sb.st_size;
    void *p = m->len ? mmap(NULL, m->len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    int e = errno;
    close(fd);
    if (p == MAP_FAILED)
        return ptb_errf(eb, -e, "%s: %s", path, strerror(e));
    m->p = p;
    return 0;
}

static void unmap(mapped *m)
{
    if (m->p)
        munmap((void *)m->p, m->len);
}

static uint64_t bytes_differ(const unsigned char *a, const unsigned char *b, size_t n)
{
    uint64_t d = 0;
    for (size_t off = 0; off < n; off += 4096) {
        size_t k = n - off < 4096 ? n - off : 4096;
        if (!memcmp(a + off, b + off, k))
            continue;
        for (size_t i = 0; i < k; i++)
            d += a[off + i] != b[off + i];
    }
    return d;
}

static void layout(const safetensors_tensor *t, char *out, size_t cap)
{
    size_t l = (size_t)snprintf(out, cap, "%s [", safetensors_dtype_name(t->dtype));
    for (uint32_t i = 0; i < t->rank && l < cap; i++)
        l += (size_t)snprintf(out + l, cap - l, "%s%llu", i ? ", " : "",
                              (unsigned long long)t->shape[i]);
    if (l < cap)
        snprintf(out + l, cap - l, "]");
}

static bool numeric(safetensors_dtype dt)
{
    switch (dt) {
    case SAFETENSORS_BOOL:
    case SAFETENSORS_U8:
    case SAFETENSORS_I8:
    case SAFETENSORS_I16:
    case SAFETENSORS_U16:
    case SAFETENSORS_I32:
    case SAFETENSORS_U32:
    case SAFETENSORS_I64:
    case SAFETENSORS_U64:
    case SAFETENSORS_F16:
    case SAFETENSORS_BF16:
    case SAFETENSORS_F32:
    case SAFETENSORS_F64: return true;
    default: return false; /* 8-bit floats, complex: compared as bytes only */
    }
}

/* Elements [off, off+n) of data as double (n <= SUB; data unaligned). */
static void to_double(const void *data, safetensors_dtype dt, size_t off, size_t n, double *out)
{
    if (audit_ckpt_dtype_ok(dt) && dt != SAFETENSORS_F64) {
        float f[SUB];
        audit_ckpt_to_float(data, dt, off, n, f);
        for (size_t j = 0; j < n; j++)
            out[j] = f[j];
        return;
    }
    size_t es = safetensors_dtype_size(dt);
    const unsigned char *p = (const unsigned char *)data + off * es;
    for (size_t j = 0; j < n; j++, p += es) {
#define LOAD(T)                                                                                    \
    do {                                                                                           \
        T v;                                                                                       \
        memcpy(&v, p, sizeof v);                                                                   \
        out[j] = (double)v;                                                                        \
    } while (0)
        switch (dt) {
        case SAFETENSORS_F64: LOAD(double); break;
        case SAFETENSORS_I8: LOAD(int8_t); break;
        case SAFETENSORS_I16: LOAD(int16_t); break;
        case SAFETENSORS_U16: LOAD(uint16_t); break;
        case SAFETENSORS_I32: LOAD(int32_t); break;
        case SAFETENSORS_U32: LOAD(uint32_t); break;
        case SAFETENSORS_I64: LOAD(int64_t); break;
        case SAFETENSORS_U64: LOAD(uint64_t); break;
        default: LOAD(uint8_t); break; /* U8, BOOL */
        }
#undef LOAD
    }
}

/* Same dtype and shape, other bytes: the element-wise numbers. */
static void values(const safetensors_tensor *a, const safetensors_tensor *b, rt_tensor_cmp *c)
{
    size_t es = safetensors_dtype_size(a->dtype);
    uint64_t n = es ? a->nbytes / es : 0;
    const unsigned char *pa = a->data, *pb = b->data;
    c->elements = n;
    c->numeric = numeric(a->dtype);
    double va[SUB], vb[SUB], d2 = 0, a2 = 0;
    for (uint64_t off = 0; off < n; off += SUB) {
        size_t k = n - off < SUB ? (size_t)(n - off) : SUB;
        if (c->numeric) {
            to_double(pa, a->dtype, off, k, va);
            to_double(pb, b->dtype, off, k, vb);
            for (size_t j = 0; j < k; j++)
                if (isfinite(va[j]))
                    a2 += va[j] * va[j];
        }
        if (!memcmp(pa + off * es, pb + off * es, k * es))
            continue;
        for (size_t j = 0; j < k; j++) {
            const unsigned char *x = pa + (off + j) * es, *y = pb + (off + j) * es;
            if (!memcmp(x, y, es))
                continue;
            c->differ++;
            c->bytes_differ += bytes_differ(x, y, es);
            if (!c->numeric)
                continue;
            if (!isfinite(va[j]) || !isfinite(vb[j])) {
                c->nonfinite++;
                continue;
            }
            double d = fabs(vb[j] - va[j]);
            if (d > c->max_abs)
                c->max_abs = d;
            d2 += d * d;
        }
    }
    c->rel_l2 = a2 > 0 ? sqrt(d2) / sqrt(a2) : d2 > 0 ? INFINITY : 0;
}

static int meta_add(rt_file_cmp *c, size_t *cap, const char *key, const char *a, const char *b)
{
    if (c->nmeta == *cap) {
        rt_meta_diff *nv = realloc(c->meta, (*cap = *cap ? *cap * 2 : 8) * sizeof *nv);
        if (!nv)
            return PTB_ENOMEM;
        c->meta = nv;
    }
    rt_meta_diff *m = &c->meta[c->nmeta++];
    m->key = strdup(key);
    m->a = a ? strdup(a) : NULL;
    m->b = b ? strdup(b) : NULL;
    return !m->key || (a && !m->a) || (b && !m->b) ? PTB_ENOMEM : 0;
}

/* __metadata__ of both sides, merged by key (both lists are sorted). */
static int meta_compare(const safetensors_file *fa, const safetensors_file *fb, rt_file_cmp *c)
{
    const char *const *ma = safetensors_metadata_all(fa), *const *mb = safetensors_metadata_all(fb);
    size_t cap = 0;
    int rc = 0;
    while (!rc && (*ma || *mb)) {
        int k = !*ma ? 1 : !*mb ? -1 : strcmp(ma[0], mb[0]);
        if (k < 0)
            rc = meta_add(c, &cap, ma[0], ma[1], NULL), ma += 2;
        else if (k > 0)
            rc = meta_add(c, &cap, mb[0], NULL, mb[1]), mb += 2;
        else {
            if (strcmp(ma[1], mb[1]))
                rc = meta_add(c, &cap, ma[0], ma[1], mb[1]);
            ma += 2, mb += 2;
        }
    }
    return rc;
}

static int tensors_compare(const safetensors_file *fa, const safetensors_file *fb, rt_file_cmp *c)
{
    size_t na = safetensors_count(fa), nb = safetensors_count(fb);
    if (!(c->v = calloc(na + nb ? na + nb : 1, sizeof *c->v)))
        return PTB_ENOMEM;
    for (size_t i = 0, k = 0; i < na || k < nb;) {
        const safetensors_tensor *a = i < na ? safetensors_at(fa, i) : NULL;
        const safetensors_tensor *b = k < nb ? safetensors_at(fb, k) : NULL;
        int cmp = !a ? 1 : !b ? -1 : strcmp(a->name, b->name);
        rt_tensor_cmp *t = &c->v[c->n++];
        if (!(t->name = strdup(cmp <= 0 ? a->name : b->name)))
            return PTB_ENOMEM;
        if (cmp <= 0)
            layout(a, t->layout_a, sizeof t->layout_a), i++;
        if (cmp >= 0)
            layout(b, t->layout_b, sizeof t->layout_b), k++;
        if (cmp < 0) {
            t->state = RT_ONLY_RECORDED, c->only_a++;
            c->tensor_bytes_differ += a->nbytes;
        } else if (cmp > 0) {
            t->state = RT_ONLY_REPLAYED, c->only_b++;
            c->tensor_bytes_differ += b->nbytes;
        } else if (strcmp(t->layout_a, t->layout_b)) {
            t->state = RT_LAYOUT, c->layout++;
            c->tensor_bytes_differ += a->nbytes > b->nbytes ? a->nbytes : b->nbytes;
        } else if (!memcmp(a->data, b->data, a->nbytes)) {
            t->state = RT_SAME, c->same++;
            t->elements = a->nbytes / safetensors_dtype_size(a->dtype);
        } else {
            t->state = RT_VALUES, c->values++;
            values(a, b, t);
            c->tensor_bytes_differ += t->bytes_differ;
        }
    }
    return meta_compare(fa, fb, c);
}

int replay_train_file_compare(const char *a, const char *b, rt_file_cmp *c, ptb_errbuf *eb)
{
    memset(c, 0, sizeof *c);
    mapped ma, mb = {0};
    int rc = map_file(a, &ma, eb);
    if (!rc && (rc = map_file(b, &mb, eb)))
        unmap(&ma);
    if (rc)
        return rc;
    c->size_a = ma.len, c->size_b = mb.len;
    size_t common = ma.len < mb.len ? ma.len : mb.len;
    c->bytes_differ = bytes_differ(ma.p, mb.p, common) + (ma.len - common) + (mb.len - common);
    safetensors_file *fa = NULL, *fb = NULL;
    ptb_errbuf ea = {{0}}, ebb = {{0}};
    int pa = ma.len ? safetensors_parse(ma.p, ma.len, &fa, &ea) : PTB_ECORRUPT;
    int pb = mb.len ? safetensors_parse(mb.p, mb.len, &fb, &ebb) : PTB_ECORRUPT;
    if (pa == PTB_ENOMEM || pb == PTB_ENOMEM)
        rc = PTB_ENOMEM;
    else if (!pa && !pb) {
        c->tensors = true;
        rc = tensors_compare(fa, fb, c);
    } else if (!pa || !pb) {
        snprintf(c->why_not, sizeof c->why_not, "the %s file is not safetensors: %s",
                 pa ? "recorded" : "replayed", pa ? ea.msg : ebb.msg);
    }
    safetensors_close(fa);
    safetensors_close(fb);
    unmap(&ma);
    unmap(&mb);
    if (rc)
        ptb_errf(eb, rc, "comparing %s with %s: %s", a, b, ptb_strerror(rc));
    return rc;
}

void replay_train_file_compare_free(rt_file_cmp *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->v[i].name);
    free(c->v);
    for (size_t i = 0; i < c->nmeta; i++) {
        free(c->meta[i].key);
        free(c->meta[i].a);
        free(c->meta[i].b);
    }
    free(c->meta);
    memset(c, 0, sizeof *c);
}
