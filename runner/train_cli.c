/* `ptb train`: fine-tune (or pretrain) the reference model on prompt/completion JSONL and write
 * a checkpoint folder (kernels/lm.h, lm_data.h, lm_ckpt.h; docs/commands/ptb-train.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "lm.h"
#include "lm_ckpt.h"
#include "lm_cuda.h"
#include "lm_data.h"
#include "ptb_cli.h"
#include "ptb_commands.h"

enum {
    OPT_BASE = 1,
    OPT_INIT,
    OPT_DATA,
    OPT_OUT,
    OPT_STEPS,
    OPT_BATCH,
    OPT_SEQ,
    OPT_LR,
    OPT_WD,
    OPT_SEED,
    OPT_DEVICE,
    OPT_THREADS,
    OPT_LAYERS,
    OPT_HEADS,
    OPT_CHANNELS,
    OPT_MAX_SEQ,
    OPT_PRECISION,
    OPT_QUIET,
};
static const cli_option train_opts[] = {
    {"base", 0, "DIR", OPT_BASE},
    {"init", 0, NULL, OPT_INIT},
    {"data", 0, "FILE", OPT_DATA},
    {"out", 'o', "DIR", OPT_OUT},
    {"steps", 0, "N", OPT_STEPS},
    {"batch", 0, "N", OPT_BATCH},
    {"seq", 0, "N", OPT_SEQ},
    {"lr", 0, "RATE", OPT_LR},
    {"weight-decay", 0, "W", OPT_WD},
    {"seed", 0, "N", OPT_SEED},
    {"device", 0, "DEV", OPT_DEVICE},
    {"threads", 0, "N", OPT_THREADS},
    {"layers", 0, "N", OPT_LAYERS},
    {"heads", 0, "N", OPT_HEADS},
    {"channels", 0, "N", OPT_CHANNELS},
    {"max-seq", 0, "N", OPT_MAX_SEQ},
    {"precision", 0, "P", OPT_PRECISION},
    {"quiet", 'q', NULL, OPT_QUIET},
    {NULL, 0, NULL, 0},
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    unsigned long long v;
    if (!cli_parse_u64(s, &v) || v < lo || v > hi)
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool parse_float(const char *s, float *out)
{
    char *end;
    float v = strtof(s, &end);
    if (end == s || *end || !isfinite(v) || v < 0)
        return false;
    *out = v;
    return true;
}

int train_main(int argc, char **argv)
{
    cli c;
    cli_init(&c, "train", train_opts, argc, argv);
    const char *base = NULL, *data = NULL, *outdir = NULL, *device = "cpu", *precision = "fp32";
    bool init = false, quiet = false;
    uint32_t steps = 100, batch = 8, seq = 0, threads = 0;
    unsigned long long seed = 1;
    lm_config cfg;
    lm_config_default(&cfg);
    bool shape_given = false;
    lm_adamw opt;
    lm_adamw_default(&opt);
    for (int o; (o = cli_next(&c)) != CLI_END;) {
        const char *a = c.optarg;
        bool ok = true;
        switch (o) {
        case CLI_HELP: cli_help("train", stdout); return PTB_EXIT_OK;
        case CLI_LIST: cli_list_options(train_opts, stdout); return PTB_EXIT_OK;
        case CLI_ERROR: return cli_usage_error("train", "%s", c.err);
        case CLI_POSITIONAL: return cli_usage_error("train", "unexpected argument '%s'", a);
        case OPT_BASE: base = a; break;
        case OPT_INIT: init = true; break;
        case OPT_DATA: data = a; break;
        case OPT_OUT: outdir = a; break;
        case OPT_STEPS: ok = parse_u32(a, 1, 100000000, &steps); break;
        case OPT_BATCH: ok = parse_u32(a, 1, 65536, &batch); break;
        case OPT_SEQ: ok = parse_u32(a, 1, LM_MAX_SEQ, &seq); break;
        case OPT_LR: ok = parse_float(a, &opt.lr); break;
        case OPT_WD: ok = parse_float(a, &opt.weight_decay); break;
        case OPT_SEED: ok = cli_parse_u64(a, &seed); break;
        case OPT_DEVICE: device = a; break;
        case OPT_THREADS: ok = parse_u32(a, 1, 1024, &threads); break;
        case OPT_LAYERS:
            ok = parse_u32(a, 1, LM_MAX_LAYERS, &cfg.layers), shape_given = true;
            break;
        case OPT_HEADS:
            ok = parse_u32(a, 1, LM_MAX_CHANNELS, &cfg.heads), shape_given = true;
            break;
        case OPT_CHANNELS:
            ok = parse_u32(a, 1, LM_MAX_CHANNELS, &cfg.channels), shape_given = true;
            break;
        case OPT_MAX_SEQ: ok = parse_u32(a, 1, LM_MAX_SEQ, &cfg.max_seq), shape_given = true; break;
        case OPT_PRECISION: precision = a; break;
        case OPT_QUIET: quiet = true; break;
        }
        if (!ok)
            return cli_usage_error("train", "bad value '%s' for --%s", a, train_opts[o - 1].name);
    }
    if (!data || !outdir)
        return cli_usage_error("train", "--data FILE and --out DIR are required");
    if (!base == !init)
        return cli_usage_error("train", "give --base DIR (fine-tune a checkpoint) or --init "
                                        "(a new model), not both or neither");
    if (base && shape_given)
        return cli_usage_error("train", "--layers, --heads, --channels and --max-seq are for "
                                        "--init: a --base checkpoint has its own");
    bool cuda = strcmp(device, "cuda") == 0, bf16 = strcmp(precision, "bf16") == 0;
    if (!cuda && strcmp(device, "cpu") != 0)
        return cli_usage_error("train", "--device %s: cpu or cuda", device);
    if (!bf16 && strcmp(precision, "fp32") != 0)
        return cli_usage_error("train", "--precision %s: fp32 or bf16", precision);
    if (bf16 && !cuda)
        return cli_usage_error("train", "--precision bf16 is for --device cuda (the cpu "
                                        "reference computes in fp32)");
#ifdef _OPENMP
    if (threads)
        omp_set_num_threads((int)threads);
#endif

    ptb_errbuf eb = {{0}};
    lm_model *m = NULL;
    lm_data *d = NULL;
    int rc;
    if (base)
        rc = lm_ckpt_load(base, &m, &eb);
    else if ((rc = lm_model_new(&cfg, &m, &eb)) == 0)
        lm_model_init(m, seed);
    if (rc) {
        fprintf(stderr, "ptb train: %s\n", eb.msg);
        return rc == PTB_ENOTFOUND ? PTB_EXIT_NOSTORE : ptb_exit_code(rc);
    }
    lm_cuda *g = NULL;
    if (cuda && (rc = lm_cuda_new(m, bf16 ? LM_CUDA_BF16 : LM_CUDA_FP32, &g, &eb))) {
        fprintf(stderr, "ptb train: --device cuda: %s\n", eb.msg);
        lm_model_free(m);
        return ptb_exit_code(rc);
    }
    const lm_config *mc = lm_model_config(m);
    if (!seq)
        seq = mc->max_seq;
    if (seq > mc->max_seq) {
        uint32_t have = mc->max_seq;
        lm_cuda_free(g);
        lm_model_free(m);
        return cli_usage_error("train", "--seq %u: the model has %u positions", seq, have);
    }
    if ((rc = lm_data_read(data, &d, &eb))) {
        fprintf(stderr, "ptb train: %s\n", eb.msg);
        lm_cuda_free(g);
        lm_model_free(m);
        return rc == PTB_EPARSE || rc == PTB_ETOOBIG ? PTB_EXIT_CORRUPT : ptb_exit_code(rc);
    }
    lm_sampler s;
    int32_t *tok = malloc((size_t)batch * seq * sizeof *tok);
    int32_t *tgt = malloc((size_t)batch * seq * sizeof *tgt);
    rc = !tok || !tgt ? PTB_ENOMEM : lm_sampler_init(&s, d, seed);
    if (!quiet)
        fprintf(stderr,
                "ptb train: %zu parameters (%u layers, %u heads, %u channels), %zu "
                "examples, %u steps of %u x %u tokens, lr %g, seed %llu, %s%s%s\n",
                lm_model_num_params(m), mc->layers, mc->heads, mc->channels, lm_data_count(d),
                steps, batch, seq, (double)opt.lr, seed, device, cuda ? " " : "",
                cuda ? precision : "");
    bool tty = !quiet && isatty(2);
    double t0 = now_s();
    uint64_t scored_total = 0;
    float loss = 0;
    for (uint32_t st = 1; st <= steps && !rc; st++) {
        int scored = lm_sampler_next(&s, batch, seq, tok, tgt);
        lm_batch b = {.B = batch, .T = seq, .tokens = tok, .targets = tgt};
        if (g) { /* lm_cuda_backward zeroes the gradients itself */
            if (!(rc = lm_cuda_forward(g, &b, &loss)) && !(rc = lm_cuda_backward(g, &b)))
                rc = lm_cuda_adamw_step(g, &opt, st);
            if (rc == PTB_EIO)
                fprintf(stderr, "ptb train: step %u: %s\n", st, lm_cuda_errmsg(g));
        } else {
            rc = lm_forward(m, &b, &loss);
            if (!rc) {
                lm_zero_grad(m);
                rc = lm_backward(m, &b);
            }
            if (!rc)
                rc = lm_adamw_step(m, &opt, st);
        }
        if (!rc && !isfinite(loss)) {
            fprintf(stderr, "ptb train: step %u: the loss is %f: try a lower --lr\n", st,
                    (double)loss);
            rc = PTB_EINVAL;
        }
        scored_total += (uint64_t)scored;
        if (!rc && !quiet) {
            char what[96];
            snprintf(what, sizeof what, "steps  loss %.4f  %.0f tok/s", (double)loss,
                     (double)st * batch * seq / (now_s() - t0));
            cli_progress("train", tty, st, steps, what);
        }
    }
    if (!rc && g && (rc = lm_cuda_download(g, m, NULL, &eb)))
        fprintf(stderr, "ptb train: %s\n", eb.msg);
    if (!rc) {
        char steps_s[24], seed_s[24], loss_s[32];
        snprintf(steps_s, sizeof steps_s, "%u", steps);
        snprintf(seed_s, sizeof seed_s, "%llu", seed);
        snprintf(loss_s, sizeof loss_s, "%.6f", (double)loss);
        const char *meta[] = {"format",
                              "pt",
                              "ptb.train.steps",
                              steps_s,
                              "ptb.train.seed",
                              seed_s,
                              "ptb.train.final_loss",
                              loss_s,
                              "ptb.train.device",
                              device,
                              "ptb.train.precision",
                              precision,
                              NULL};
        rc = lm_ckpt_save(m, outdir, meta, &eb);
        if (rc)
            fprintf(stderr, "ptb train: %s\n", eb.msg);
        else if (!quiet)
            fprintf(stderr, "ptb train: wrote %s (final loss %.4f, %.1f s, %llu scored tokens)\n",
                    outdir, (double)loss, now_s() - t0, (unsigned long long)scored_total);
    } else if (rc == PTB_ENOMEM) {
        fprintf(stderr, "ptb train: out of memory\n");
    }
    lm_sampler_free(&s);
    free(tok);
    free(tgt);
    lm_data_free(d);
    lm_cuda_free(g);
    lm_model_free(m);
    return rc ? ptb_exit_code(rc) : PTB_EXIT_OK;
}
