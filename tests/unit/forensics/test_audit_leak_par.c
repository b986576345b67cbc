/* The leakage scan in pieces (forensics/audit_leak_piece.c) gives what one pass gives: on many
 * generated texts -- copies of test items in JSONL with escapes, plain text, Unicode look-alikes,
 * "\u" escapes, base64 runs, numbers with '.', random punctuation, partial items, binary blobs,
 * long stretches without a hit (which the stream jumps over) --
 * lk_scan_unit's result (items in full, question-only, answer-only, longest run, samples, base64,
 * words scanned) is compared between one pass on one thread and pieces of 1 byte to 64 KiB on 2
 * threads (test_audit_leak_par), and, built with -DLK_TEST_CUDA, on the GPU (test_audit_leak_cuda:
 * the CUDA scan with the CPU for what it leaves, on 1 and 2 threads; skipped, exit 77, without a
 * GPU; PTB_AUDIT_CUDA_EMULATE=1 runs the kernels' code on the CPU). Fixed seeds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit_leak_cuda.h"
#include "audit_leak_int.h"

#define NITEMS 60
#define NTEXTS 48

static uint64_t rs;
static uint32_t rnd(void)
{
    rs = rs * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rs >> 33);
}

static const char *const vocab[] = {
    "alpha", "Beta", "gamma", "delta",   "ÉPSILON", "zêta", "ΘΗΤΑ",  "йота", "kappa",   "lambda",
    "mu",    "nu",   "ξι",    "omicron", "pi",      "rho",  "sigma", "tau",  "úpsilon", "phi",
    "chi",   "psi",  "ωμέγα", "東",      "京",      "x1",   "3.14",  "42",   "007",     "año"};
#define NV (sizeof vocab / sizeof vocab[0])

typedef struct item {
    char p[256], a[256];
} item;
static item items[NITEMS];
static char split[96];
static lk_index ix;
#ifdef LK_TEST_CUDA
static audit_leak_cuda *gpu;
#endif

static void phrase(char *out, size_t cap, int n)
{
    size_t k = strlen(out);
    for (int i = 0; i < n && k + 24 < cap; i++)
        k += (size_t)snprintf(out + k, cap - k, "%s%s", i ? " " : "", vocab[rnd() % NV]);
}

/* Items: long prompts and answers (8-gram matched), short numeric ones (exact), a template. */
static void make_split(void)
{
    rs = 7;
    for (int i = 0; i < NITEMS; i++) {
        if (i % 3 == 2) {
            snprintf(items[i].p, sizeof items[i].p, "Q: %u+%u=?", rnd() % 100, rnd() % 100);
            snprintf(items[i].a, sizeof items[i].a, "%u", rnd() % 200);
        } else {
            snprintf(items[i].p, sizeof items[i].p, "Question: ");
            phrase(items[i].p, sizeof items[i].p, 9 + (int)(rnd() % 5));
            items[i].a[0] = 0;
            phrase(items[i].a, sizeof items[i].a, i % 3 ? 2 : 9);
        }
    }
    snprintf(split, sizeof split, "/tmp/ptb-leakpar-%d.jsonl", (int)getpid());
    FILE *f = fopen(split, "w");
    assert_non_null(f);
    for (int i = 0; i < NITEMS; i++)
        fprintf(f, "{\"prompt\": \"%s\", \"answer\": \"%s\"}\n", items[i].p, items[i].a);
    fclose(f);
}

/* A generated text: written through a memory stream (open_memstream), then s[0..n). */
typedef struct buf {
    char *s;
    size_t n;
    FILE *f;
} buf;

static void puts_(buf *b, const char *s)
{
    fputs(s, b->f);
}

static void put(buf *b, const void *p, size_t n)
{
    fwrite(p, 1, n, b->f);
}

static void put_b64(buf *b, const char *s, bool breaks)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(s), col = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(uint8_t)s[i] << 16;
        v |= i + 1 < n ? (uint32_t)(uint8_t)s[i + 1] << 8 : 0;
        v |= i + 2 < n ? (uint8_t)s[i + 2] : 0;
        char q[4] = {al[v >> 18], al[v >> 12 & 63], i + 1 < n ? al[v >> 6 & 63] : '=',
                     i + 2 < n ? al[v & 63] : '='};
        put(b, q, 4);
        if (breaks && (col += 4) >= 60)
            puts_(b, "\\n"), col = 0;
    }
}

/* A text of about `size` bytes from the pieces listed in the file's top comment. */
static void make_text(buf *b, size_t size, unsigned kind)
{
    static const char *const seps[] = {
        " ", "\n",       ", ", "\\n", "\\\\n", "\t", "\": \"",  " -- ",
        "…", "\xc2\xa0", "; ", "\\t", "!!",    ". ", "\\u00e9", "\\ud83d\\ude00",
        "=", "+",        "/",  "_",   "\r\n",  "\\"};
    free(b->s);
    b->s = NULL, b->n = 0;
    b->f = open_memstream(&b->s, &b->n);
    assert_non_null(b->f);
    while ((size_t)ftell(b->f) < size) {
        unsigned r = rnd() % (kind % 7 == 6 ? 20000 : 20); /* 6: long stretches without a hit */
        item *it = &items[rnd() % NITEMS];
        char tmp[640];
        if (r < 4) { /* an item in JSONL */
            snprintf(tmp, sizeof tmp, "{\"prompt\": \"%s\\nA: \", \"completion\": \"%s\"}\n", it->p,
                     it->a);
            puts_(b, tmp);
        } else if (r < 6) { /* plain text, other case */
            snprintf(tmp, sizeof tmp, "%s %s\n", it->p, it->a);
            for (char *c = tmp; *c; c++)
                if (*c >= 'a' && *c <= 'z' && rnd() % 2)
                    *c = (char)(*c - 32);
            puts_(b, tmp);
        } else if (r < 7) { /* half a prompt */
            snprintf(tmp, sizeof tmp, "%s", it->p);
            tmp[strlen(tmp) / 2] = 0;
            puts_(b, tmp);
        } else if (r < 8 && kind % 2) { /* base64 of an item */
            snprintf(tmp, sizeof tmp, "Question and answer: %s %s", it->p, it->a);
            puts_(b, " data:");
            put_b64(b, tmp, rnd() % 2);
            puts_(b, " ");
        } else if (r < 9) { /* numbers */
            snprintf(tmp, sizeof tmp, " %u.%u %u..%u %u.x 1.2.3 %u+%u=%u ", rnd() % 1000,
                     rnd() % 100, rnd() % 10, rnd() % 10, rnd() % 10, rnd() % 100, rnd() % 100,
                     rnd() % 200);
            puts_(b, tmp);
        } else { /* words and separators */
            puts_(b, vocab[rnd() % NV]);
            puts_(b, seps[rnd() % (sizeof seps / sizeof seps[0])]);
        }
    }
    assert_int_equal(fclose(b->f), 0);
    if (kind % 3 == 0) /* ASCII without "\u": what the GPU reads all of */
        for (size_t i = 0; i < b->n; i++) {
            if ((uint8_t)b->s[i] >= 0x80)
                b->s[i] = 'z';
            else if (b->s[i] == 'u' && i && b->s[i - 1] == '\\')
                b->s[i] = 'n';
        }
    if (kind % 5 == 4) /* a binary blob: control bytes in it */
        for (size_t i = 0; i < b->n; i += 1 + rnd() % 40)
            b->s[i] = (char)(rnd() % 8);
}

typedef struct outcome {
    lk_res r;
    uint64_t words;
} outcome;

static outcome scan(lk_scan *sc, const buf *b)
{
    outcome o;
    sc->words = 0;
    assert_int_equal(lk_scan_unit(sc, b->s, b->n, &o.r), 0);
    o.words = sc->words;
    return o;
}

static void same(const outcome *a, const outcome *b, size_t text, const char *how)
{
    if (memcmp(&a->r, &b->r, sizeof a->r) || a->words != b->words) {
        print_error("text %zu, %s: full %u/%u qonly %u/%u aonly %u/%u span %u/%u words %llu/%llu "
                    "b64 %d/%d\n",
                    text, how, a->r.full, b->r.full, a->r.qonly, b->r.qonly, a->r.aonly, b->r.aonly,
                    a->r.span, b->r.span, (unsigned long long)a->words,
                    (unsigned long long)b->words, a->r.b64, b->r.b64);
        fail();
    }
}

static void test_pieces_equal_one_pass(void **state)
{
    (void)state;
    lk_scan one, par;
    assert_int_equal(lk_scanner_init(&one, &ix), 0);
    assert_int_equal(lk_scanner_init(&par, &ix), 0);
    one.threads = 1;
    static const size_t piece[] = {1, 7, 64, 333, 4096, 65536};
    buf b = {0};
    rs = 11;
    uint32_t found = 0;
    uint64_t gpu_bytes = 0;
    for (size_t t = 0; t < NTEXTS; t++) {
        size_t size = t < 4 ? t * 3 : t % 4 == 0 ? 200000 + rnd() % 200000 : rnd() % 30000;
        make_text(&b, size, (unsigned)t);
        outcome ref = scan(&one, &b);
        found += ref.r.full;
        for (size_t k = 0; k < sizeof piece / sizeof piece[0]; k++) {
            if (piece[k] < 64 && b.n > 40000)
                continue; /* a byte a piece: the small texts are enough */
#ifdef LK_TEST_CUDA
            for (unsigned th = 1; th <= 2; th++) {
                par.gpu = gpu;
#else
            {
                unsigned th = 2;
#endif
                par.threads = th;
                par.piece_bytes = piece[k];
                par.par_min = 1;
                outcome o = scan(&par, &b);
                char how[64];
                snprintf(how, sizeof how, "pieces of %zu bytes, %u threads", piece[k], th);
                same(&ref, &o, t, how);
#ifdef LK_TEST_CUDA
                if (b.n > 1000 && t % 3 == 0 && t % 5 != 4)
                    assert_true(par.gpu_bytes >= b.n / 2); /* the GPU read most of it */
                gpu_bytes += par.gpu_bytes;
                par.gpu_bytes = 0;
#endif
            }
        }
    }
    assert_true(found > 100); /* the texts do hold test items */
#ifdef LK_TEST_CUDA
    printf("bytes read on the GPU: %llu\n", (unsigned long long)gpu_bytes);
#else
    (void)gpu_bytes;
#endif
    free(b.s);
    lk_scanner_free(&one);
    lk_scanner_free(&par);
}

/* The same scanner, unit after unit, pieces or not: nothing carries over. */
static void test_units_in_a_row(void **state)
{
    (void)state;
    lk_scan a, p;
    assert_int_equal(lk_scanner_init(&a, &ix), 0);
    assert_int_equal(lk_scanner_init(&p, &ix), 0);
    p.threads = 2, p.piece_bytes = 500, p.par_min = 20000;
#ifdef LK_TEST_CUDA
    p.gpu = gpu;
#endif
    buf b = {0};
    rs = 99;
    for (int t = 0; t < 12; t++) {
        make_text(&b, t % 2 ? 50000 : 3000, (unsigned)t);
        outcome x = scan(&a, &b), y = scan(&p, &b);
        same(&x, &y, (size_t)t, "in a row");
    }
    free(b.s);
    lk_scanner_free(&a);
    lk_scanner_free(&p);
}

int main(void)
{
    make_split();
    char err[512];
    if (lk_index_build(&ix, split, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
#ifdef LK_TEST_CUDA
    char msg[4600];
    if (lk_gpu_open(&ix, &gpu, msg, sizeof msg)) {
        printf("test_audit_leak_cuda: skipped: %s\n", msg);
        lk_index_free(&ix);
        unlink(split);
        return 77;
    }
#endif
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pieces_equal_one_pass),
        cmocka_unit_test(test_units_in_a_row),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
#ifdef LK_TEST_CUDA
    audit_leak_cuda_free(gpu);
#endif
    lk_index_free(&ix);
    unlink(split);
    return rc;
}
