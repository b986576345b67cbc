/* The language model's CPU reference (kernels/lm.h): gradients against central differences of
 * the loss for parameters of every tensor, training that lowers the loss, bit-identical results
 * for the same seed (and for 1 and 2 threads), and the checks on configs and batches. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "lm.h"
#include "lm_data.h"

#define NB 2
#define NT 6

static lm_config tiny(void)
{
    lm_config c;
    lm_config_default(&c);
    c.max_seq = 8;
    c.layers = 2;
    c.heads = 2;
    c.channels = 8;
    return c;
}

/* A fixed batch: bytes of two strings, targets the next byte, the first two positions of each
 * sequence not scored (a "prompt"). */
static void batch_fill(int32_t tok[NB * NT], int32_t tgt[NB * NT], lm_batch *b)
{
    static const char *s[NB] = {"hello w", "gsm8k: "};
    for (int i = 0; i < NB; i++)
        for (int t = 0; t < NT; t++) {
            tok[i * NT + t] = (unsigned char)s[i][t];
            tgt[i * NT + t] = t < 2 ? -1 : (unsigned char)s[i][t + 1];
        }
    tgt[NT - 1] = LM_EOT;
    *b = (lm_batch){.B = NB, .T = NT, .tokens = tok, .targets = tgt};
}

static float loss_at(lm_model *m, const lm_batch *b)
{
    float l;
    assert_int_equal(lm_forward(m, b, &l), 0);
    return l;
}

static void test_gradients(void **state)
{
    (void)state;
    lm_config c = tiny();
    lm_model *m;
    assert_int_equal(lm_model_new(&c, &m, NULL), 0);
    lm_model_init(m, 42);
    float *p = lm_model_params(m), *g = lm_model_grads(m);
    /* larger weights than the initialisation's, so every path carries gradient */
    for (size_t i = 0; i < lm_model_num_params(m); i++)
        p[i] += 0.3f * sinf((float)i * 1.7f);
    int32_t tok[NB * NT], tgt[NB * NT];
    lm_batch b;
    batch_fill(tok, tgt, &b);
    float l0 = loss_at(m, &b);
    assert_true(l0 > 0 && isfinite(l0));
    lm_zero_grad(m);
    assert_int_equal(lm_backward(m, &b), 0);
    float *ana = malloc(lm_model_num_params(m) * sizeof *ana);
    memcpy(ana, g, lm_model_num_params(m) * sizeof *ana);

    lm_tensor_info info[LM_NUM_TENSORS];
    lm_tensors(&c, info);
    double dot = 0, na = 0, nn = 0;
    int checked = 0, bad = 0;
    for (int k = 0; k < LM_NUM_TENSORS; k++) {
        /* 12 parameters spread over each tensor (for wte: rows of the bytes in the batch) */
        for (int j = 0; j < 12; j++) {
            size_t i;
            if (k == 0)
                i = info[k].offset + (size_t)(unsigned char)"hello gsm8k"[j % 11] * c.channels +
                    (size_t)j % c.channels;
            else
                i = info[k].offset +
                    (info[k].count * (size_t)j * 7 / 83 + (size_t)j) % info[k].count;
            const float eps = 1e-2f;
            float save = p[i];
            p[i] = save + eps;
            float lp = loss_at(m, &b);
            p[i] = save - eps;
            float lm = loss_at(m, &b);
            p[i] = save;
            double num = ((double)lp - (double)lm) / (2.0 * eps);
            double an = ana[i];
            dot += num * an;
            na += an * an;
            nn += num * num;
            if (fabs(num - an) > 2e-3 + 0.05 * fabs(an)) {
                bad++;
                print_message("%s[%zu]: analytic %.6g numeric %.6g\n", info[k].name,
                              i - info[k].offset, an, num);
            }
            checked++;
        }
    }
    double cosine = dot / (sqrt(na) * sqrt(nn) + 1e-30);
    print_message("gradient check: %d parameters, %d off, cosine %.6f\n", checked, bad, cosine);
    assert_int_equal(bad, 0);
    assert_true(cosine > 0.999);
    free(ana);
    lm_model_free(m);
}

/* Train n steps from seed; the parameters after (caller frees). */
static float *train(uint64_t seed, int steps, float *first, float *last)
{
    lm_config c = tiny();
    lm_model *m;
    assert_int_equal(lm_model_new(&c, &m, NULL), 0);
    lm_model_init(m, seed);
    int32_t tok[NB * NT], tgt[NB * NT];
    lm_batch b;
    batch_fill(tok, tgt, &b);
    lm_adamw o;
    lm_adamw_default(&o);
    o.lr = 1e-2f;
    o.weight_decay = 0.01f;
    for (int s = 1; s <= steps; s++) {
        float l;
        assert_int_equal(lm_forward(m, &b, &l), 0);
        if (s == 1 && first)
            *first = l;
        if (last)
            *last = l;
        lm_zero_grad(m);
        assert_int_equal(lm_backward(m, &b), 0);
        assert_int_equal(lm_adamw_step(m, &o, (uint64_t)s), 0);
    }
    size_t n = lm_model_num_params(m);
    float *out = malloc(n * sizeof *out);
    memcpy(out, lm_model_params(m), n * sizeof *out);
    lm_model_free(m);
    return out;
}

static void test_training_and_determinism(void **state)
{
    (void)state;
    lm_config c = tiny();
    lm_tensor_info info[LM_NUM_TENSORS];
    size_t n = lm_tensors(&c, info);
    float first, last;
    float *a = train(7, 60, &first, &last);
    print_message("loss %.4f -> %.4f in 60 steps\n", first, last);
    assert_true(first > 5.0f);        /* ~ln(257) at initialisation */
    assert_true(last < first * 0.3f); /* it learns the batch */
    float *b2 = train(7, 60, NULL, NULL);
    assert_memory_equal(a, b2, n * sizeof *a); /* bit-identical */
#ifdef _OPENMP
    int th = omp_get_max_threads();
    omp_set_num_threads(th > 1 ? 1 : 2);
    float *c1 = train(7, 60, NULL, NULL);
    omp_set_num_threads(th);
    assert_memory_equal(a, c1, n * sizeof *a); /* whatever the thread count */
    free(c1);
#endif
    float *d = train(8, 60, NULL, NULL);
    assert_memory_not_equal(a, d, n * sizeof *a); /* another seed, other weights */
    free(a);
    free(b2);
    free(d);
}

static void test_checks(void **state)
{
    (void)state;
    ptb_errbuf eb = {{0}};
    lm_config c = tiny();
    lm_model *m;
    c.channels = 9; /* not a multiple of heads */
    assert_int_equal(lm_model_new(&c, &m, &eb), PTB_EINVAL);
    assert_null(m);
    assert_non_null(strstr(eb.msg, "multiple of heads"));
    c = tiny();
    c.vocab_size = 50000;
    assert_int_equal(lm_model_new(&c, &m, &eb), PTB_EINVAL);
    c = tiny();
    c.layers = 0;
    assert_int_equal(lm_model_new(&c, &m, &eb), PTB_EINVAL);
    c = tiny();
    assert_int_equal(lm_model_new(&c, &m, &eb), 0);
    int32_t tok[NB * NT], tgt[NB * NT];
    lm_batch b;
    batch_fill(tok, tgt, &b);
    tok[3] = LM_VOCAB; /* out of range */
    assert_int_equal(lm_forward(m, &b, NULL), PTB_EINVAL);
    tok[3] = 'a';
    tgt[4] = -2;
    assert_int_equal(lm_forward(m, &b, NULL), PTB_EINVAL);
    tgt[4] = 'b';
    b.T = 9; /* over max_seq */
    assert_int_equal(lm_forward(m, &b, NULL), PTB_EINVAL);
    b.T = NT;
    assert_int_equal(lm_backward(m, &b), PTB_EINVAL); /* no forward yet */
    lm_adamw o;
    lm_adamw_default(&o);
    assert_int_equal(lm_adamw_step(m, &o, 0), PTB_EINVAL);
    /* nothing scored: loss 0, zero gradients */
    for (int i = 0; i < NB * NT; i++)
        tgt[i] = -1;
    float l = -1;
    assert_int_equal(lm_forward(m, &b, &l), 0);
    assert_true(l == 0.0f);
    lm_zero_grad(m);
    assert_int_equal(lm_backward(m, &b), 0);
    for (size_t i = 0; i < lm_model_num_params(m); i++)
        assert_true(lm_model_grads(m)[i] == 0.0f);
    lm_model_free(m);
}

/* ------------------------------------------------------------------ data */

static char *write_tmp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/ptb-test-lm-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_data(void **state)
{
    (void)state;
    ptb_errbuf eb = {{0}};
    lm_data *d;
    char *p = write_tmp("{\"prompt\": \"Q: 2+2=\", \"completion\": \"4\"}\n\n"
                        "{\"prompt\": \"abcdefgh\", \"completion\": \"XYZ\", \"id\": 7}\r\n"
                        "{\"prompt\": \"\", \"completion\": \"\\u00e9t\\u00e9\"}\n");
    assert_int_equal(lm_data_read(p, &d, &eb), 0);
    unlink(p);
    assert_int_equal(lm_data_count(d), 3);
    int32_t tok[8], tgt[8];
    /* fits: Q: 2+2= 4 EOT, padded; targets on the completion and the EOT only */
    assert_int_equal(lm_data_window(d, 0, 8, tok, tgt), 2);
    static const int32_t t0[8] = {'Q', ':', ' ', '2', '+', '2', '=', '4'};
    static const int32_t g0[8] = {-1, -1, -1, -1, -1, -1, '4', LM_EOT};
    assert_memory_equal(tok, t0, sizeof t0);
    assert_memory_equal(tgt, g0, sizeof g0);
    /* too long: the prompt loses its start (12 tokens into 9) */
    assert_int_equal(lm_data_window(d, 1, 8, tok, tgt), 4);
    static const int32_t t1[8] = {'d', 'e', 'f', 'g', 'h', 'X', 'Y', 'Z'};
    static const int32_t g1[8] = {-1, -1, -1, -1, 'X', 'Y', 'Z', LM_EOT};
    assert_memory_equal(tok, t1, sizeof t1);
    assert_memory_equal(tgt, g1, sizeof g1);
    /* a window shorter than the completion: the end of the completion goes, no EOT */
    assert_int_equal(lm_data_window(d, 1, 2, tok, tgt), 2);
    assert_int_equal(tok[0], 'X');
    assert_int_equal(tgt[0], 'Y');
    assert_int_equal(tgt[1], 'Z');
    /* UTF-8 bytes, empty prompt: every target scored */
    assert_int_equal(lm_data_window(d, 2, 8, tok, tgt), 5);
    assert_int_equal(tok[0], 0xc3);
    assert_int_equal(tgt[4], LM_EOT);
    assert_int_equal(tok[5], LM_EOT);
    assert_int_equal(tgt[5], -1);
    /* the sampler: every example once per epoch, the same order for the same seed */
    lm_sampler s1, s2;
    assert_int_equal(lm_sampler_init(&s1, d, 3), 0);
    assert_int_equal(lm_sampler_init(&s2, d, 3), 0);
    int32_t a[6 * 8], at[6 * 8], b[6 * 8], bt[6 * 8];
    lm_sampler_next(&s1, 6, 8, a, at);
    lm_sampler_next(&s2, 6, 8, b, bt);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_equal(at, bt, sizeof at);
    int seen[3] = {0};
    for (int i = 0; i < 3; i++)
        seen[a[i * 8] == 'Q' ? 0 : a[i * 8] == 'd' ? 1 : 2]++;
    assert_true(seen[0] == 1 && seen[1] == 1 && seen[2] == 1);
    assert_int_equal(s1.epoch, 2);
    lm_sampler_free(&s1);
    lm_sampler_free(&s2);
    lm_data_free(d);

    /* bad input: the line number and why */
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"{\"prompt\": \"a\", \"completion\": \"b\"}\nnot json\n", ":2: not JSON"},
        {"{\"prompt\": \"a\"}\n", ":1: a record needs"},
        {"{\"prompt\": 1, \"completion\": \"b\"}\n", ":1: a record needs"},
        {"[1, 2]\n", ":1: a record needs"},
        {"\n\n", "no records"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = write_tmp(bad[i].text);
        assert_int_equal(lm_data_read(p, &d, &eb), PTB_EPARSE);
        unlink(p);
        assert_null(d);
        if (!strstr(eb.msg, bad[i].want))
            fail_msg("case %zu: '%s' lacks '%s'", i, eb.msg, bad[i].want);
    }
    assert_true(lm_data_read("/nonexistent/x.jsonl", &d, &eb) < 0);
    assert_non_null(strstr(eb.msg, "No such file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradients),
        cmocka_unit_test(test_training_and_determinism),
        cmocka_unit_test(test_checks),
        cmocka_unit_test(test_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
