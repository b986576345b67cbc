/* Checkpoints: config.json + model.safetensors (lm_ckpt.h). */
#include "lm_ckpt.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safetensors.h"

#define CKPT_MODEL_TYPE "ptb-gpt"
#define CKPT_NAME_MAX 64

/* ------------------------------------------------------------------ names */

/* The checkpoint name of tensor info (layer l when per layer). */
static void tensor_name(const lm_tensor_info *t, uint32_t l, char out[CKPT_NAME_MAX])
{
    if (t->per_layer)
        snprintf(out, CKPT_NAME_MAX, "h.%u.%s", l, t->name);
    else
        snprintf(out, CKPT_NAME_MAX, "%s", t->name);
}

/* Shape of one checkpoint tensor: the per-layer ones without their leading L. */
static uint32_t tensor_shape(const lm_tensor_info *t, uint64_t shape[3])
{
    uint32_t r = t->per_layer ? t->rank - 1 : t->rank;
    for (uint32_t i = 0; i < r; i++)
        shape[i] = t->shape[t->per_layer ? i + 1 : i];
    return r;
}

/* ------------------------------------------------------------------ save */

static int mkdir_p(const char *dir)
{
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
        return -ENAMETOOLONG;
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            if (mkdir(p, 0755) && errno != EEXIST)
                return -errno;
            *s = '/';
        }
    if (mkdir(p, 0755) && errno != EEXIST)
        return -errno;
    return 0;
}

static int write_config(const lm_config *c, const char *dir, ptb_errbuf *eb)
{
    json_t *o =
        json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:s}", "model_type", CKPT_MODEL_TYPE,
                  "vocab_size", (json_int_t)c->vocab_size, "max_seq", (json_int_t)c->max_seq,
                  "layers", (json_int_t)c->layers, "heads", (json_int_t)c->heads, "channels",
                  (json_int_t)c->channels, "torch_dtype", "float32");
    if (!o)
        return ptb_errf(eb, PTB_ENOMEM, "out of memory");
    char path[4200], tmp[4210];
    snprintf(path, sizeof path, "%s/config.json", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int rc = json_dump_file(o, tmp, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(o);
    if (rc || rename(tmp, path)) {
        int e = errno;
        unlink(tmp);
        return ptb_errf(eb, -e, "%s: %s", path, strerror(e));
    }
    return 0;
}

int lm_ckpt_save(lm_model *m, const char *dir, const char *const *meta_kv, ptb_errbuf *eb)
{
    const lm_config *c = lm_model_config(m);
    int rc = mkdir_p(dir);
    if (rc)
        return ptb_errf(eb, rc, "%s: cannot create: %s", dir, strerror(-rc));
    lm_tensor_info info[LM_NUM_TENSORS];
    lm_tensors(c, info);
    size_t n = 0;
    for (int i = 0; i < LM_NUM_TENSORS; i++)
        n += info[i].per_layer ? c->layers : 1;
    safetensors_tensor *ts = calloc(n, sizeof *ts);
    char(*names)[CKPT_NAME_MAX] = calloc(n, CKPT_NAME_MAX);
    if (!ts || !names) {
        free(ts);
        free(names);
        return ptb_errf(eb, PTB_ENOMEM, "out of memory");
    }
    const float *p = lm_model_params(m);
    size_t k = 0;
    for (int i = 0; i < LM_NUM_TENSORS; i++)
        for (uint32_t l = 0; l < (info[i].per_layer ? c->layers : 1); l++, k++) {
            tensor_name(&info[i], l, names[k]);
            ts[k].name = names[k];
            ts[k].dtype = SAFETENSORS_F32;
            ts[k].rank = tensor_shape(&info[i], ts[k].shape);
            size_t cnt = info[i].per_layer ? info[i].per_layer : info[i].count;
            ts[k].nbytes = cnt * sizeof(float);
            ts[k].data = p + info[i].offset + (size_t)l * info[i].per_layer;
        }
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    rc = safetensors_write(path, ts, n, meta_kv, eb);
    free(ts);
    free(names);
    return rc ? rc : write_config(c, dir, eb);
}

/* ------------------------------------------------------------------ load */

static int config_u32(json_t *o, const char *key, uint32_t *out, const char *path, ptb_errbuf *eb)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX)
        return ptb_errf(eb, PTB_ECORRUPT, "%s: \"%s\" missing or not a count", path, key);
    *out = (uint32_t)json_integer_value(v);
    return 0;
}

int lm_ckpt_config(const char *dir, lm_config *c, ptb_errbuf *eb)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_error_t je;
    json_t *o = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        if (access(path, F_OK) != 0)
            return ptb_errf(eb, PTB_ENOTFOUND, "%s: no such file (not a checkpoint folder?)", path);
        return ptb_errf(eb, PTB_ECORRUPT, "%s: not JSON: %s (line %d)", path, je.text, je.line);
    }
    int rc = 0;
    json_t *mt = json_object_get(o, "model_type");
    if (!json_is_object(o))
        rc = ptb_errf(eb, PTB_ECORRUPT, "%s: not a JSON object", path);
    else if (!json_is_string(mt) || strcmp(json_string_value(mt), CKPT_MODEL_TYPE) != 0)
        rc = ptb_errf(eb, PTB_ECORRUPT, "%s: model_type is not \"%s\": not a ptb model", path,
                      CKPT_MODEL_TYPE);
    if (!rc)
        rc = config_u32(o, "vocab_size", &c->vocab_size, path, eb);
    if (!rc)
        rc = config_u32(o, "max_seq", &c->max_seq, path, eb);
    if (!rc)
        rc = config_u32(o, "layers", &c->layers, path, eb);
    if (!rc)
        rc = config_u32(o, "heads", &c->heads, path, eb);
    if (!rc)
        rc = config_u32(o, "channels", &c->channels, path, eb);
    json_decref(o);
    ptb_errbuf why = {{0}};
    if (!rc && lm_config_check(c, &why))
        rc = ptb_errf(eb, PTB_ECORRUPT, "%s: %s", path, why.msg);
    return rc;
}

/* IEEE half to float, subnormals, infinities and NaN included. */
static float half_to_float(uint16_t h)
{
    uint32_t s = (uint32_t)(h >> 15), e = (h >> 10) & 0x1f, m = h & 0x3ff;
    float v;
    if (e == 0)
        v = ldexpf((float)m, -24);
    else if (e == 31)
        v = m ? NAN : INFINITY;
    else
        v = ldexpf((float)(m | 0x400), (int)e - 25);
    return s ? -v : v;
}

/* Copy tensor t (F32, BF16 or F16; data unaligned) into dst as floats. */
static int copy_floats(float *dst, const safetensors_tensor *t, size_t cnt)
{
    const uint8_t *src = t->data;
    for (size_t i = 0; i < cnt; i++) {
        if (t->dtype == SAFETENSORS_F32) {
            memcpy(&dst[i], src + 4 * i, 4);
        } else {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            if (t->dtype == SAFETENSORS_BF16) {
                uint32_t b = (uint32_t)h << 16;
                memcpy(&dst[i], &b, 4);
            } else {
                dst[i] = half_to_float(h);
            }
        }
    }
    return 0;
}

int lm_ckpt_load(const char *dir, lm_model **out, ptb_errbuf *eb)
{
    *out = NULL;
    lm_config c;
    int rc = lm_ckpt_config(dir, &c, eb);
    if (rc)
        return rc;
    safetensors_set *set;
    if ((rc = safetensors_dir_open(dir, &set, eb)))
        return rc == PTB_ENOTFOUND
                   ? ptb_errf(eb, PTB_ECORRUPT, "%s: no model.safetensors (nor an index)", dir)
                   : rc;
    lm_model *m;
    if ((rc = lm_model_new(&c, &m, eb))) {
        safetensors_set_close(set);
        return rc;
    }
    lm_tensor_info info[LM_NUM_TENSORS];
    lm_tensors(&c, info);
    float *p = lm_model_params(m);
    size_t expected = 0;
    for (int i = 0; i < LM_NUM_TENSORS && !rc; i++)
        for (uint32_t l = 0; l < (info[i].per_layer ? c.layers : 1) && !rc; l++) {
            char name[CKPT_NAME_MAX];
            tensor_name(&info[i], l, name);
            expected++;
            const safetensors_tensor *t = safetensors_set_find(set, name);
            uint64_t shape[3];
            uint32_t r = tensor_shape(&info[i], shape);
            if (!t) {
                rc = ptb_errf(eb, PTB_ECORRUPT, "%s: tensor %s missing", dir, name);
                break;
            }
            bool same = t->rank == r;
            for (uint32_t k = 0; same && k < r; k++)
                same = t->shape[k] == shape[k];
            if (!same)
                rc = ptb_errf(eb, PTB_ECORRUPT,
                              "%s: tensor %s has another shape than config.json "
                              "gives",
                              dir, name);
            else if (t->dtype != SAFETENSORS_F32 && t->dtype != SAFETENSORS_BF16 &&
                     t->dtype != SAFETENSORS_F16)
                rc = ptb_errf(eb, PTB_ECORRUPT, "%s: tensor %s is %s (F32, BF16 or F16 wanted)",
                              dir, name, safetensors_dtype_name(t->dtype));
            else
                copy_floats(p + info[i].offset + (size_t)l * info[i].per_layer, t,
                            info[i].per_layer ? info[i].per_layer : info[i].count);
        }
    if (!rc && safetensors_set_count(set) != expected)
        rc = ptb_errf(eb, PTB_ECORRUPT,
                      "%s: %zu tensors, the model has %zu: tensors it does not "
                      "know",
                      dir, safetensors_set_count(set), expected);
    safetensors_set_close(set);
    if (rc) {
        lm_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}
