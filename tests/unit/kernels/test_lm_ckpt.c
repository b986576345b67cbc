/* Checkpoints of the language model (kernels/lm_ckpt.h): save and load give the same bits, the
 * same model gives the same files, BF16 weights load, and every kind of bad checkpoint is refused
 * with a message that names the problem. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lm_ckpt.h"
#include "safetensors.h"

static char tmp[64];

static int setup(void **state)
{
    (void)state;
    snprintf(tmp, sizeof tmp, "/tmp/ptb-test-ckpt-XXXXXX");
    return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

static lm_model *small(uint64_t seed)
{
    lm_config c;
    lm_config_default(&c);
    c.layers = 2;
    c.channels = 16;
    c.heads = 2;
    c.max_seq = 12;
    lm_model *m;
    assert_int_equal(lm_model_new(&c, &m, NULL), 0);
    lm_model_init(m, seed);
    return m;
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    rewind(f);
    char *b = malloc(*n + 1);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    b[*n] = 0;
    return b;
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_round_trip(void **state)
{
    (void)state;
    lm_model *m = small(5);
    char a[128], b[128], p1[160], p2[160];
    snprintf(a, sizeof a, "%s/a/nested", tmp);
    snprintf(b, sizeof b, "%s/b", tmp);
    const char *meta[] = {"format", "pt", NULL};
    ptb_errbuf eb = {{0}};
    assert_int_equal(lm_ckpt_save(m, a, meta, &eb), 0);
    assert_int_equal(lm_ckpt_save(m, b, meta, &eb), 0);
    /* the same model, the same bytes */
    const char *files[] = {"model.safetensors", "config.json"};
    for (int i = 0; i < 2; i++) {
        snprintf(p1, sizeof p1, "%s/%s", a, files[i]);
        snprintf(p2, sizeof p2, "%s/%s", b, files[i]);
        size_t n1, n2;
        char *x = slurp(p1, &n1), *y = slurp(p2, &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(x, y, n1);
        free(x);
        free(y);
    }
    lm_model *back;
    assert_int_equal(lm_ckpt_load(a, &back, &eb), 0);
    assert_int_equal(lm_model_num_params(back), lm_model_num_params(m));
    assert_memory_equal(lm_model_params(back), lm_model_params(m),
                        lm_model_num_params(m) * sizeof(float));
    assert_int_equal(lm_model_config(back)->channels, 16);
    lm_model_free(back);

    /* the file holds what lm_ckpt.h says: per-layer tensors by name, F32 */
    snprintf(p1, sizeof p1, "%s/model.safetensors", a);
    safetensors_file *f;
    assert_int_equal(safetensors_open(p1, &f, &eb), 0);
    const safetensors_tensor *t = safetensors_find(f, "h.1.qkvw");
    assert_non_null(t);
    assert_int_equal(t->rank, 2);
    assert_int_equal(t->shape[0], 48);
    assert_int_equal(t->shape[1], 16);
    assert_int_equal(t->dtype, SAFETENSORS_F32);
    assert_non_null(safetensors_find(f, "wte"));
    assert_string_equal(safetensors_metadata(f, "format"), "pt");
    assert_int_equal(safetensors_count(f), 4 + 2 * 12);

    /* the same tensors in BF16 (weights rounded to bf16 first, so the load is exact) */
    size_t n = safetensors_count(f);
    safetensors_tensor *ts = calloc(n, sizeof *ts);
    uint16_t **bufs = calloc(n, sizeof *bufs);
    for (size_t i = 0; i < n; i++) {
        const safetensors_tensor *s = safetensors_at(f, i);
        size_t cnt = s->nbytes / 4;
        bufs[i] = malloc(cnt * 2);
        for (size_t k = 0; k < cnt; k++) {
            uint32_t u;
            memcpy(&u, (const char *)s->data + 4 * k, 4);
            bufs[i][k] = (uint16_t)(u >> 16);
        }
        ts[i] = *s;
        ts[i].dtype = SAFETENSORS_BF16;
        ts[i].nbytes = cnt * 2;
        ts[i].data = bufs[i];
    }
    snprintf(b, sizeof b, "%s/bf16", tmp);
    assert_int_equal(lm_ckpt_save(m, b, NULL, &eb), 0); /* for config.json */
    snprintf(p2, sizeof p2, "%s/model.safetensors", b);
    assert_int_equal(safetensors_write(p2, ts, n, NULL, &eb), 0);
    assert_int_equal(lm_ckpt_load(b, &back, &eb), 0);
    const lm_tensor_info *unused = NULL;
    (void)unused;
    float *pb = lm_model_params(back), *pm = lm_model_params(m);
    for (size_t i = 0; i < lm_model_num_params(m); i++) {
        uint32_t u;
        memcpy(&u, &pm[i], 4);
        u &= 0xffff0000u;
        float want;
        memcpy(&want, &u, 4);
        assert_true(pb[i] == want);
    }
    lm_model_free(back);
    for (size_t i = 0; i < n; i++)
        free(bufs[i]);
    free(bufs);
    free(ts);
    safetensors_close(f);
    lm_model_free(m);
}

/* A checkpoint with one tensor changed (dropped, reshaped, retyped) or one added. */
static void write_variant(const char *dir, const char *drop, const char *reshape,
                          const char *retype, bool add)
{
    lm_model *m = small(1);
    ptb_errbuf eb;
    assert_int_equal(lm_ckpt_save(m, dir, NULL, &eb), 0);
    char p[200];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    safetensors_file *f;
    assert_int_equal(safetensors_open(p, &f, &eb), 0);
    size_t n = safetensors_count(f), k = 0;
    safetensors_tensor *ts = calloc(n + 1, sizeof *ts);
    static const float extra[2] = {1, 2};
    for (size_t i = 0; i < n; i++) {
        const safetensors_tensor *s = safetensors_at(f, i);
        if (drop && !strcmp(s->name, drop))
            continue;
        ts[k] = *s;
        if (reshape && !strcmp(s->name, reshape)) {
            ts[k].shape[0] = s->shape[1];
            ts[k].shape[1] = s->shape[0];
            if (s->shape[0] == s->shape[1]) /* square: another rank instead */
                ts[k].rank = 1, ts[k].shape[0] = s->shape[0] * s->shape[1];
        }
        if (retype && !strcmp(s->name, retype)) {
            ts[k].dtype = SAFETENSORS_I32; /* same size, wrong type */
        }
        k++;
    }
    if (add)
        ts[k++] = (safetensors_tensor){.name = "zz.extra",
                                       .dtype = SAFETENSORS_F32,
                                       .rank = 1,
                                       .shape = {2},
                                       .nbytes = 8,
                                       .data = extra};
    char tmpp[220];
    snprintf(tmpp, sizeof tmpp, "%s.new", p);
    assert_int_equal(safetensors_write(tmpp, ts, k, NULL, &eb), 0);
    safetensors_close(f);
    assert_int_equal(rename(tmpp, p), 0);
    free(ts);
    lm_model_free(m);
}

static void test_bad_checkpoints(void **state)
{
    (void)state;
    ptb_errbuf eb = {{0}};
    lm_model *m;
    char d[128], p[200];
    snprintf(d, sizeof d, "%s/none", tmp);
    assert_int_equal(lm_ckpt_load(d, &m, &eb), PTB_ENOTFOUND);
    assert_null(m);
    assert_non_null(strstr(eb.msg, "config.json"));

    static const struct {
        const char *drop, *reshape, *retype;
        bool add;
        const char *want;
    } cases[] = {
        {"h.1.fcw", NULL, NULL, false, "tensor h.1.fcw missing"},
        {NULL, "h.0.qkvw", NULL, false, "h.0.qkvw has another shape"},
        {NULL, NULL, "wpe", false, "wpe is I32"},
        {NULL, NULL, NULL, true, "tensors it does not know"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(d, sizeof d, "%s/v%zu", tmp, i);
        write_variant(d, cases[i].drop, cases[i].reshape, cases[i].retype, cases[i].add);
        assert_int_equal(lm_ckpt_load(d, &m, &eb), PTB_ECORRUPT);
        if (!strstr(eb.msg, cases[i].want))
            fail_msg("case %zu: '%s' lacks '%s'", i, eb.msg, cases[i].want);
    }

    /* config.json: not JSON, another model, a value out of range, a missing key; and no weights */
    static const struct {
        const char *config, *want;
    } configs[] = {
        {"{\"model_type\": \"ptb-gpt\", ", "not JSON"},
        {"{\"model_type\": \"llama\", \"vocab_size\": 257}", "not a ptb model"},
        {"{\"model_type\": \"ptb-gpt\", \"vocab_size\": 257, \"max_seq\": 12, \"layers\": 2, "
         "\"heads\": 3, \"channels\": 16}",
         "multiple of heads"},
        {"{\"model_type\": \"ptb-gpt\", \"vocab_size\": 257, \"max_seq\": 12, \"layers\": 2, "
         "\"heads\": 2}",
         "\"channels\" missing"},
        {"{\"model_type\": \"ptb-gpt\", \"vocab_size\": 257, \"max_seq\": 12, \"layers\": -2, "
         "\"heads\": 2, \"channels\": 16}",
         "\"layers\" missing or not a count"},
    };
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) {
        snprintf(d, sizeof d, "%s/v0", tmp); /* a checkpoint folder with weights */
        snprintf(p, sizeof p, "%s/config.json", d);
        put(p, configs[i].config);
        assert_int_equal(lm_ckpt_load(d, &m, &eb), PTB_ECORRUPT);
        if (!strstr(eb.msg, configs[i].want))
            fail_msg("config %zu: '%s' lacks '%s'", i, eb.msg, configs[i].want);
    }
    snprintf(d, sizeof d, "%s/noweights", tmp);
    lm_model *s = small(1);
    assert_int_equal(lm_ckpt_save(s, d, NULL, &eb), 0);
    lm_model_free(s);
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    unlink(p);
    assert_int_equal(lm_ckpt_load(d, &m, &eb), PTB_ECORRUPT);
    assert_non_null(strstr(eb.msg, "no model.safetensors"));
    put(p, "garbage that is not a safetensors file");
    assert_int_equal(lm_ckpt_load(d, &m, &eb), PTB_ECORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bad_checkpoints),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
