/* ptb audit's test-set leakage scan of a large text in pieces: on several threads, or on the GPU
 * (audit_leak_cuda.h) with the CPU for what it does not read; the results are a single pass's.
 *
 * Why a piece gives what one pass gives. A text is cut at bytes for which lk_piece_cut holds: an
 * ASCII byte that is not a letter, digit, '.', '\\' or base64 character ('=', '+', '/', '-', '_',
 * line breaks). lk_tokenize reaches every such byte on its own (no escape, UTF-8 sequence or
 * "3.14" rule consumes or looks past it: an escape takes only letters and hex digits after its
 * backslashes, a UTF-8 sequence only bytes >= 0x80, and the '.' rule asks for a digit next), and
 * it is a separator: the tokenizer's state after it is the initial one. So the words of
 * [cut[k], cut[k+1]) are the words one pass gives between those bytes, and the base64 runs of a
 * piece (scan_b64's search) are the text's, since no run goes through a cut byte.
 *
 * The positions of a piece whose 8 words all lie in it (leak_scan looks 1..8 words ahead) get the
 * same hits in the piece as in the text; the last 7 of each piece are scanned again once the next
 * piece's words are there (scan_chunk: positions no piece covers go to leak_scan). The words are
 * then fed, in order, to the scanner's stream (lk_stream_feed), which applies the hits in position
 * order with the same context, epochs and run lengths as one pass (apply_hits), and the base64
 * runs are decoded and scanned after the text, in order, as scan_b64 does.
 *
 * Work is done a batch of pieces at a time (64 pieces of about 1 MiB on the CPU; on the GPU 1,024
 * of about 64 KiB, so that a byte it does not read sends little to the CPU): the GPU's pass over
 * the batch first, then the threads take the pieces the GPU left (all of them without a GPU), then
 * this thread feeds the stream. A piece ends at the first cut byte past its size, so a text
 * without one (a single base64 line) is one piece: memory then grows with it (its words, 8 bytes
 * each, a fraction of the text already in memory), and the GPU hashes its long words serially. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit_leak_cuda.h"
#include "audit_leak_int.h"
#include "ptb_error.h"

#define LK_BATCH 1024    /* pieces at a time, at most */
#define LK_BATCH_CPU 64  /* ... without a GPU */
#define LK_THREADS_MAX 8 /* threads of one scan */

_Static_assert(sizeof(lk_hit) == sizeof(audit_leak_cuda_hit), "the GPU's hits are lk_hits");

typedef struct lk_piece {
    size_t b0, b1;     /* bytes of the text */
    tok_out tok;       /* its words, when the CPU tokenizes it */
    const uint64_t *t; /* its words: tok.v or the GPU's */
    size_t n;          /* words */
    lk_hit *hit;       /* the CPU's hits */
    size_t nh, hcap;   /* ... */
    const lk_hit *h;   /* its hits: hit or the GPU's */
    size_t hn;         /* ... */
    lk_b64run *run;    /* its base64 runs (offsets in the text) */
    size_t nrun, rcap; /* ... */
    bool cpu, b64;     /* to do here: tokenize and scan; look for base64 runs */
    int rc;            /* of the work done here */
} lk_piece;

typedef struct lk_piecer {
    lk_piece pc[LK_BATCH];
    size_t cut[LK_BATCH + 1];
    audit_leak_cuda_piece gp[LK_BATCH];
    lk_pre pre[LK_BATCH];
    size_t rel[LK_BATCH + 1]; /* the GPU's cuts, from the batch's first byte */
    lk_b64run *run;           /* the text's runs, in order */
    size_t nrun, rcap;
    /* one batch's work */
    const lk_index *ix;
    const uint8_t *p;
    size_t np;
    atomic_size_t next;
} lk_piecer;

void lk_piecer_free(lk_piecer *pc)
{
    if (!pc)
        return;
    for (size_t k = 0; k < LK_BATCH; k++)
        free(pc->pc[k].tok.v), free(pc->pc[k].hit), free(pc->pc[k].run);
    free(pc->run);
    free(pc);
}

/* The CPU's part of one piece. */
static void piece_work(lk_piecer *pc, lk_piece *q)
{
    const lk_index *ix = pc->ix;
    q->rc = 0;
    if (q->cpu) {
        q->tok.n = 0, q->tok.rc = 0;
        q->tok.tmpl = ix->tmpl, q->tok.tmpl_mask = ix->tmpl_mask;
        lk_tokenize(&q->tok, pc->p + q->b0, q->b1 - q->b0);
        q->nh = 0;
        if (!(q->rc = q->tok.rc))
            q->rc = lk_scan_piece(ix, q->tok.v, q->tok.n, &q->hit, &q->nh, &q->hcap);
        q->t = q->tok.v, q->n = q->tok.n, q->h = q->hit, q->hn = q->nh;
    }
    q->nrun = 0;
    if (!q->rc && (q->b64 || q->cpu)) {
        q->rc = lk_b64_runs(pc->p + q->b0, q->b1 - q->b0, &q->run, &q->nrun, &q->rcap);
        for (size_t r = 0; r < q->nrun; r++)
            q->run[r].s += q->b0, q->run[r].e += q->b0;
    }
}

static void *piece_worker(void *arg)
{
    lk_piecer *pc = arg;
    for (size_t k; (k = atomic_fetch_add(&pc->next, 1)) < pc->np;)
        piece_work(pc, &pc->pc[k]);
    return NULL;
}

/* The CPU's part of the batch, on up to `threads` threads (this one included). */
static void batch_cpu(lk_piecer *pc, unsigned threads)
{
    size_t todo = 0;
    for (size_t k = 0; k < pc->np; k++)
        todo += pc->pc[k].cpu || pc->pc[k].b64;
    atomic_store(&pc->next, 0);
    pthread_t th[LK_THREADS_MAX];
    unsigned nt = 0;
    unsigned want = threads > LK_THREADS_MAX ? LK_THREADS_MAX : threads;
    while (nt + 1 < want && nt + 1 < todo && !pthread_create(&th[nt], NULL, piece_worker, pc))
        nt++;
    piece_worker(pc);
    for (unsigned i = 0; i < nt; i++)
        pthread_join(th[i], NULL);
}

/* The GPU's pass over the batch: false when it failed (the CPU then does it all). */
static bool batch_gpu(lk_scan *sc, lk_piecer *pc)
{
    char msg[256];
    size_t b0 = pc->cut[0];
    for (size_t k = 0; k <= pc->np; k++)
        pc->rel[k] = pc->cut[k] - b0;
    if (audit_leak_cuda_scan(sc->gpu, pc->p + b0, pc->cut[pc->np] - b0, pc->rel, pc->np, pc->gp,
                             msg, sizeof msg))
        return false;
    for (size_t k = 0; k < pc->np; k++) {
        lk_piece *q = &pc->pc[k];
        const audit_leak_cuda_piece *g = &pc->gp[k];
        q->cpu = g->cpu != 0;
        q->b64 = g->b64 != 0;
        if (!q->cpu) {
            q->t = g->tok, q->n = g->ntok;
            q->h = (const lk_hit *)g->hit, q->hn = g->nhit;
            sc->gpu_bytes += q->b1 - q->b0;
        }
    }
    return true;
}

int lk_scan_pieces(lk_scan *sc, const uint8_t *p, size_t n)
{
    if (!sc->pc && !(sc->pc = calloc(1, sizeof *sc->pc)))
        return PTB_ENOMEM;
    lk_piecer *pc = sc->pc;
    pc->ix = sc->ix;
    pc->p = p;
    pc->nrun = 0;
    size_t step = sc->piece_bytes ? sc->piece_bytes : sc->gpu ? LK_PIECE_GPU : LK_PIECE;
    size_t batch = sc->gpu ? LK_BATCH : LK_BATCH_CPU;
    int rc = 0;
    for (size_t at = 0; at < n && !rc && !sc->out.rc;) {
        /* the batch's cuts */
        pc->np = 0;
        pc->cut[0] = at;
        while (pc->np < batch && at < n) {
            size_t c = n - at > step ? at + step : n;
            while (c < n && !lk_piece_cut(p[c]))
                c++;
            lk_piece *q = &pc->pc[pc->np];
            q->b0 = at, q->b1 = c;
            q->cpu = true, q->b64 = true;
            pc->cut[++pc->np] = at = c;
        }
        if (sc->gpu && !batch_gpu(sc, pc))
            for (size_t k = 0; k < pc->np; k++)
                pc->pc[k].cpu = pc->pc[k].b64 = true;
        batch_cpu(pc, sc->threads ? sc->threads : 1);
        /* the stream, in order: piece k's words start at stream position g */
        uint64_t g = sc->base + sc->out.n;
        for (size_t k = 0; k < pc->np && !rc; k++) {
            lk_piece *q = &pc->pc[k];
            if ((rc = q->rc))
                break;
            pc->pre[k] = (lk_pre){g, g + (q->n >= 8 ? q->n - 7 : 0), q->h, q->hn, 0, 0};
            g += q->n;
            for (size_t r = 0; r < q->nrun && !rc; r++) {
                if ((rc = lk_grow(&pc->run, &pc->rcap, pc->nrun, sizeof *pc->run)))
                    break;
                pc->run[pc->nrun++] = q->run[r];
            }
        }
        sc->pre = pc->pre, sc->npre = pc->np, sc->pre_at = sc->pre_feed = 0;
        for (size_t k = 0; k < pc->np && !rc; k++)
            lk_stream_feed(sc, pc->pc[k].t, pc->pc[k].n);
        sc->pre = NULL, sc->npre = sc->pre_at = sc->pre_feed = 0; /* the rest: leak_scan */
    }
    if (!rc)
        lk_stream_end(sc, p, pc->run, pc->nrun);
    return rc ? rc : sc->out.rc;
}

int lk_gpu_open(const lk_index *ix, struct audit_leak_cuda **g, char *msg, size_t cap)
{
    audit_leak_cuda_tables t = {.key = ix->key,
                                .kmask = ix->kmask,
                                .bloom = ix->bloom,
                                .bloom_mask = ix->bloom_mask,
                                .len_mask = ix->len_mask,
                                .tmpl = ix->tmpl,
                                .tmpl_mask = ix->tmpl_mask};
    int rc = audit_leak_cuda_available(msg, cap);
    return rc ? rc : audit_leak_cuda_new(&t, g, msg, cap);
}

int lk_scanner_device(lk_scan *sc, const char *dev, char *msg, size_t cap)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    sc->threads = cpus < 1 ? 1 : cpus > LK_THREADS_MAX ? LK_THREADS_MAX : (unsigned)cpus;
    if (!dev || !strcmp(dev, "auto")) {
        sc->gpu_auto = true;
        return 0;
    }
    if (!strcmp(dev, "cpu"))
        return 0;
    if (strcmp(dev, "cuda")) {
        snprintf(msg, cap, "--device %s: cpu, cuda or auto", dev);
        return PTB_EINVAL;
    }
    int rc = lk_gpu_open(sc->ix, &sc->gpu, msg, cap);
    sc->gpu_own = rc == 0;
    sc->gpu_tried = true;
    return rc;
}

void lk_scanner_device_say(const lk_scan *sc, char *out, size_t cap)
{
    if (sc->gpu_bytes)
        snprintf(out, cap, "n-gram scan on cuda (%.1f MB of the text on the GPU)",
                 (double)sc->gpu_bytes / 1e6);
    else
        snprintf(out, cap, "n-gram scan on the cpu (%u thread%s)", sc->threads ? sc->threads : 1,
                 sc->threads > 1 ? "s" : "");
}
