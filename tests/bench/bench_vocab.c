/* The vocabularies of the synthetic run: GPU kernel names, file paths, hosts, programs.
 *
 * Built once (pthread_once), the same for every seed: ~300 demangled kernel names of the kinds
 * a PyTorch training step launches (ATen elementwise and reduce templates, cuBLAS/CUTLASS GEMMs,
 * flash-attention, softmax, Triton, NCCL), ~20,000 paths (site-packages sources and bytecode,
 * dataset shards, checkpoints, /tmp, the workspace, system files), ~40 hosts. Each list is
 * shuffled with a fixed seed, so that the Zipf ranks the generator draws do not follow the order
 * in which the names were made. */
#include "bench_vocab.h"

/* The name templates below are tables of printf formats, each used with its own arguments. */
#pragma GCC diagnostic ignored "-Wformat-nonliteral"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bench_vocab bench_vocab_g;
static pthread_once_t vocab_once = PTHREAD_ONCE_INIT;
static int vocab_err;

/* ------------------------------------------------------------ small helpers */

uint64_t bench_rng_next(uint64_t s[4])
{
    /* xoshiro256** */
    uint64_t r = s[1] * 5;
    r = ((r << 7) | (r >> 57)) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return r;
}

void bench_rng_seed(uint64_t s[4], uint64_t seed)
{
    for (int i = 0; i < 4; i++) { /* splitmix64 */
        uint64_t z = (seed += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        s[i] = z ^ (z >> 31);
    }
}

int bench_zipf_init(bench_zipf *z, size_t n, double s)
{
    z->n = n;
    z->cdf = malloc(n * sizeof *z->cdf);
    if (!z->cdf)
        return -1;
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += 1.0 / pow((double)(i + 1), s);
    double acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc += 1.0 / pow((double)(i + 1), s) / sum;
        z->cdf[i] = acc;
    }
    z->cdf[n - 1] = 1.0;
    return 0;
}

size_t bench_zipf_draw(const bench_zipf *z, uint64_t s[4])
{
    double u = (double)(bench_rng_next(s) >> 11) * 0x1.0p-53;
    size_t lo = 0, hi = z->n - 1;
    while (lo < hi) { /* first i with cdf[i] >= u */
        size_t mid = lo + (hi - lo) / 2;
        if (z->cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

typedef struct strlist {
    char **v;
    size_t n, cap;
} strlist;

static int sl_addf(strlist *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sl_addf(strlist *l, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    for (size_t i = 0; i < l->n; i++) /* names must be distinct; lists are small enough */
        if (l->n < 400 && !strcmp(l->v[i], buf))
            return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        char **nv = realloc(l->v, cap * sizeof *nv);
        if (!nv)
            return -1;
        l->v = nv;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(buf)))
        return -1;
    l->n++;
    return 0;
}

static void sl_shuffle(strlist *l, uint64_t seed)
{
    uint64_t s[4];
    bench_rng_seed(s, seed);
    for (size_t i = l->n; i > 1; i--) {
        size_t j = bench_rng_next(s) % i;
        char *t = l->v[i - 1];
        l->v[i - 1] = l->v[j];
        l->v[j] = t;
    }
}

/* ------------------------------------------------------------ kernels */

static int make_kernels(strlist *l)
{
    static const char *dt[] = {"float", "c10::BFloat16", "c10::Half"};
    static const char *ew[] = {
        "at::native::CUDAFunctor_add<%s>",
        "at::native::BinaryFunctor<%s, %s, %s, at::native::binary_internal::MulFunctor<float> >",
        "at::native::AUnaryFunctor<%s, %s, %s, at::native::binary_internal::MulFunctor<float> >",
        "at::native::FillFunctor<%s>",
        "at::native::(anonymous namespace)::silu_kernel(at::TensorIteratorBase&)::{lambda()#1}::"
        "operator()() const::{lambda()#3}::operator()() const::{lambda(%s)#1}",
        "at::native::GeluCUDAKernelImpl(at::TensorIteratorBase&, at::native::GeluType)::{lambda()"
        "#1}::operator()() const::{lambda()#2}::operator()() const::{lambda(%s)#1}",
        "at::native::direct_copy_kernel_cuda(at::TensorIteratorBase&)::{lambda()#3}::operator()() "
        "const::{lambda()#7}::operator()() const::{lambda(%s)#1}",
        "at::native::(anonymous namespace)::pow_tensor_scalar_kernel_impl<%s, float>(at::"
        "TensorIteratorBase&, float)::{lambda(%s)#1}",
        "at::native::rsqrt_kernel_cuda(at::TensorIteratorBase&)::{lambda()#1}::operator()() "
        "const::{lambda()#3}::operator()() const::{lambda(%s)#1}",
        "at::native::neg_kernel_cuda(at::TensorIteratorBase&)::{lambda()#2}::operator()() const::"
        "{lambda()#8}::operator()() const::{lambda(%s)#1}",
        "at::native::(anonymous namespace)::where_kernel_impl(at::TensorIterator&)::{lambda()#1}::"
        "operator()() const::{lambda()#9}::operator()() const::{lambda(bool, %s, %s)#1}",
        "at::native::compare_scalar_kernel<%s>(at::TensorIteratorBase&, at::native::(anonymous "
        "namespace)::OpType, %s)::{lambda(%s)#1}",
        "at::native::sigmoid_kernel_cuda(at::TensorIteratorBase&)::{lambda()#2}::operator()() "
        "const::{lambda()#3}::operator()() const::{lambda(%s)#1}",
        "at::native::CUDAFunctorOnSelf_add<%s>",
    };
    for (size_t f = 0; f < sizeof ew / sizeof ew[0]; f++)
        for (size_t d = 0; d < 3; d++) {
            char fn[512];
            snprintf(fn, sizeof fn, ew[f], dt[d], dt[d], dt[d]);
            if (sl_addf(l,
                        "void at::native::vectorized_elementwise_kernel<4, %s, at::detail::"
                        "Array<char*, %d> >(int, %s, at::detail::Array<char*, %d>)",
                        fn, 2 + (int)(f % 2), fn, 2 + (int)(f % 2)) ||
                sl_addf(l,
                        "void at::native::unrolled_elementwise_kernel<%s, at::detail::Array<"
                        "char*, 2>, TrivialOffsetCalculator<1, unsigned int>, "
                        "TrivialOffsetCalculator<1, unsigned int>, at::native::memory::"
                        "LoadWithCast<1>, at::native::memory::StoreWithCast<1> >(int, %s, "
                        "at::detail::Array<char*, 2>, TrivialOffsetCalculator<1, unsigned "
                        "int>, TrivialOffsetCalculator<1, unsigned int>, at::native::memory::"
                        "LoadWithCast<1>, at::native::memory::StoreWithCast<1>)",
                        fn, fn))
                return -1;
        }
    static const char *red[] = {"sum_functor<%s, float, float>",
                                "MeanOps<%s, float, float, float>",
                                "MaxOps<%s>",
                                "MinOps<%s>",
                                "NormTwoOps<%s, float, float>",
                                "ArgMaxOps<%s>"};
    for (size_t f = 0; f < 6; f++)
        for (size_t d = 0; d < 3; d++)
            for (int vt = 1; vt <= 4; vt *= 4) {
                char op[256];
                snprintf(op, sizeof op, red[f], dt[d]);
                if (sl_addf(l,
                            "void at::native::reduce_kernel<%d, %d, at::native::ReduceOp<%s, "
                            "at::native::%s, unsigned int, %s, %d> >(at::native::ReduceOp<%s, "
                            "at::native::%s, unsigned int, %s, %d>)",
                            vt == 1 ? 512 : 128, vt, dt[d], op, dt[d], vt, dt[d], op, dt[d], vt))
                    return -1;
            }
    static const char *tiles[] = {"128x128x64", "128x256x64", "256x128x64", "64x128x64",
                                  "128x64x64"};
    static const char *lay[] = {"tn", "nn", "nt"};
    for (size_t t = 0; t < 5; t++)
        for (size_t y = 0; y < 3; y++)
            if (sl_addf(l,
                        "sm90_xmma_gemm_bf16bf16_bf16f32_f32_%s_n_tilesize%s_warpgroupsize%s_"
                        "execute_segment_k_off_kernel__5x_cublas",
                        lay[y], tiles[t], t % 2 ? "2x1x1" : "1x1x1") ||
                sl_addf(l, "ampere_bf16_s16816gemm_bf16_%.*s_ldg8_f2f_stages_64x%d_%s",
                        (int)strcspn(tiles[t], "x") * 2 + 1, tiles[t], 3 + (int)(t % 3), lay[y]) ||
                sl_addf(l,
                        "void cutlass::Kernel2<cutlass_80_tensorop_bf16_s16816gemm_relu_bf16_"
                        "%.7s_64x%d_%s_align8>(cutlass_80_tensorop_bf16_s16816gemm_relu_bf16_"
                        "%.7s_64x%d_%s_align8::Params)",
                        tiles[t], 3 + (int)(t % 3), lay[y], tiles[t], 3 + (int)(t % 3), lay[y]))
                return -1;
    static const char *fl[] = {"flash_fwd_kernel", "flash_fwd_splitkv_kernel",
                               "flash_bwd_dq_dk_dv_loop_seqk_parallel_kernel",
                               "flash_bwd_dot_do_o_kernel", "flash_bwd_convert_dq_kernel"};
    static const char *ct[] = {"cutlass::bfloat16_t", "cutlass::half_t"};
    static const int hd[] = {64, 96, 128, 256};
    for (size_t f = 0; f < 5; f++)
        for (size_t h = 0; h < 4; h++)
            for (size_t c = 0; c < 2; c++) {
                int bm = hd[h] <= 128 ? 128 : 64;
                if (sl_addf(l,
                            "void %s<Flash_%s_kernel_traits<%d, %d, %d, 4, false, false, %s, "
                            "Flash_kernel_traits<%d, %d, %d, 4, %s> >, false, true, false, "
                            "false, true, true, false, false>(Flash_%s_params)",
                            fl[f], f < 2 ? "fwd" : "bwd", hd[h], bm, hd[h] <= 64 ? 128 : 64, ct[c],
                            hd[h], bm, 64, ct[c], f < 2 ? "fwd" : "bwd"))
                    return -1;
            }
    for (int lg = 5; lg <= 11; lg++)
        for (size_t d = 1; d < 3; d++)
            if (sl_addf(l,
                        "void (anonymous namespace)::softmax_warp_forward<%s, %s, float, %d, "
                        "false, false>(%s*, %s const*, int, int, int, bool const*, int, bool)",
                        dt[d], dt[d], lg, dt[d], dt[d]) ||
                sl_addf(l,
                        "void (anonymous namespace)::softmax_warp_backward<%s, %s, float, %d, "
                        "false, false>(%s*, %s const*, %s const*, int, int, int, bool const*)",
                        dt[d], dt[d], lg, dt[d], dt[d], dt[d]))
                return -1;
    static const char *tri[] = {"triton_poi_fused__to_copy_add_mul_%d",
                                "triton_red_fused__to_copy_add_mean_mul_pow_rsqrt_%d",
                                "triton_per_fused__log_softmax__to_copy_nll_loss_forward_%d",
                                "triton_poi_fused_cat_clone_mul_neg_slice_%d"};
    for (size_t t = 0; t < 4; t++)
        for (int i = 0; i < 12; i++) {
            char nm[128];
            snprintf(nm, sizeof nm, tri[t], i);
            if (sl_addf(l, "%s", nm))
                return -1;
        }
    static const char *coll[] = {"AllReduce_Sum", "ReduceScatter_Sum", "AllGather", "Broadcast"};
    static const char *algo[] = {"RING_LL", "RING_LL128", "TREE_LL", "RING_SIMPLE"};
    for (size_t c = 0; c < 4; c++)
        for (size_t a = 0; a < 4; a++)
            for (int d = 0; d < 2; d++)
                if (sl_addf(l, "ncclDevKernel_%s_%s_%s(ncclDevKernelArgsStorage<4096ul>)", coll[c],
                            c < 2 ? (d ? "bf16" : "f32") : (d ? "RING_LL" : "TREE_LL"), algo[a]))
                    return -1;
    static const char *misc[] = {
        "void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<%s, float>(int, "
        "float, %s const*, %s const*, %s const*, float*, float*, %s*)",
        "void at::native::(anonymous namespace)::multi_tensor_apply_kernel<at::native::(anonymous "
        "namespace)::TensorListMetadata<4>, at::native::(anonymous namespace)::FusedAdamMath"
        "Functor<%s, 4, (at::native::ADAM_MODE)1, false>, double*, double, double, double, "
        "double, double, bool, float*, float*>(%s, ...)",
        "void at::native::indexSelectLargeIndex<%s, long, unsigned int, 2, 2, -2, true>(at::cuda::"
        "detail::TensorInfo<%s, unsigned int>, at::cuda::detail::TensorInfo<%s const, unsigned "
        "int>, at::cuda::detail::TensorInfo<long const, unsigned int>, int, int, unsigned int, "
        "unsigned int, long)",
        "void at::native::(anonymous namespace)::CatArrayBatchedCopy<%s, unsigned int, 4, 64, "
        "64>(%s*, at::native::(anonymous namespace)::CatArrInputTensorMetadata<%s, unsigned int, "
        "64, 64>, at::native::(anonymous namespace)::TensorSizeStride<unsigned int, 4u>, int, "
        "unsigned int)",
        "void at::native::(anonymous namespace)::embedding_backward_feature_kernel<%s, float, "
        "long>(long const*, %s const*, %s*, int, long, int, int)",
        "void at::native::(anonymous namespace)::nll_loss_forward_reduce_cuda_kernel_2d<%s, float, "
        "long>(%s*, %s*, %s const*, long const*, %s const*, bool, long, long, long, long)",
    };
    for (size_t m = 0; m < sizeof misc / sizeof misc[0]; m++)
        for (size_t d = 0; d < 3; d++)
            if (sl_addf(l, misc[m], dt[d], dt[d], dt[d], dt[d], dt[d]))
                return -1;
    return 0;
}

/* ------------------------------------------------------------ paths */

static int make_paths(strlist *all, strlist *wr)
{
    static const char *pkgs[] = {
        "torch",       "transformers", "numpy",           "datasets", "accelerate",
        "safetensors", "tokenizers",   "huggingface_hub", "triton",   "flash_attn",
        "pandas",      "pyarrow",      "requests",        "urllib3",  "tqdm",
        "jinja2",      "yaml",         "regex",           "filelock", "fsspec",
        "sympy",       "networkx",     "packaging",       "einops",   "wandb",
        "peft",        "trl",          "deepspeed",       "scipy",    "aiohttp"};
    static const char *subs[] = {"",        "utils/",  "nn/",   "nn/modules/",  "_internal/",
                                 "models/", "ops/",    "data/", "distributed/", "io/",
                                 "core/",   "testing/"};
    static const char *mods[] = {"__init__", "utils", "base",     "functional", "module",
                                 "config",   "api",   "types",    "common",     "helpers",
                                 "_compat",  "core",  "registry", "loader",     "tensor",
                                 "ops",      "hooks", "logging",  "errors",     "constants"};
    const char *sp = "/opt/conda/lib/python3.11/site-packages";
    for (size_t p = 0; p < 30; p++)
        for (size_t s = 0; s < 12; s++)
            for (size_t m = 0; m < 20; m++)
                if (sl_addf(all, "%s/%s/%s%s.py", sp, pkgs[p], subs[s], mods[m]) ||
                    sl_addf(all, "%s/%s/%s__pycache__/%s.cpython-311.pyc", sp, pkgs[p], subs[s],
                            mods[m]))
                    return -1;
    for (int i = 0; i < 1024; i++)
        if (sl_addf(all, "/data/fineweb-edu/sample-100BT/train-%05d-of-01024.parquet", i))
            return -1;
    for (int i = 0; i < 64; i++)
        if (sl_addf(all, "/data/fineweb-edu/sample-100BT/val-%05d-of-00064.parquet", i))
            return -1;
    for (int i = 0; i < 2000; i++)
        if (sl_addf(all, "/data/tokenized/llama3-8k/shard_%04d.bin", i))
            return -1;
    static const char *ck[] = {"model-00001-of-00004.safetensors",
                               "model-00002-of-00004.safetensors",
                               "model-00003-of-00004.safetensors",
                               "model-00004-of-00004.safetensors",
                               "optimizer.pt",
                               "config.json",
                               "trainer_state.json",
                               "rng_state_0.pth"};
    for (int r = 0; r < 4; r++)
        for (int s = 1; s <= 40; s++)
            for (size_t c = 0; c < 8; c++)
                if (sl_addf(all, "/ckpt/run-%d/checkpoint-%d/%s", 17 + r, s * 250, ck[c]) ||
                    sl_addf(wr, "/ckpt/run-%d/checkpoint-%d/%s", 17 + r, s * 250, ck[c]))
                    return -1;
    uint64_t rs[4];
    bench_rng_seed(rs, 4242);
    static const char b36[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    for (int i = 0; i < 1000; i++) {
        char nm[9];
        for (int k = 0; k < 8; k++)
            nm[k] = b36[bench_rng_next(rs) % 36];
        nm[8] = 0;
        static const char *leaf[] = {"pip-req.txt", "out.json", "build.log", "a.out", "x.npy"};
        if (sl_addf(all, "/tmp/tmp%s/%s", nm, leaf[i % 5]) ||
            sl_addf(wr, "/tmp/tmp%s/%s", nm, leaf[i % 5]))
            return -1;
    }
    for (int i = 0; i < 500; i++) {
        char h[53];
        for (int k = 0; k < 52; k++)
            h[k] = b36[bench_rng_next(rs) % 36];
        h[52] = 0;
        if (sl_addf(all, "/tmp/torchinductor_root/%.2s/c%s.py", h + 10, h) ||
            sl_addf(wr, "/tmp/torchinductor_root/%.2s/c%s.py", h + 10, h))
            return -1;
    }
    static const char *ws[] = {"src/model", "src/data", "src/train", "src/eval",
                               "tests",     "configs",  "scripts",   "logs"};
    for (size_t d = 0; d < 8; d++)
        for (int i = 0; i < 40; i++) {
            const char *ext = d == 5 ? "yaml" : d == 7 ? "log" : "py";
            if (sl_addf(all, "/workspace/repo/%s/part_%02d.%s", ws[d], i, ext) ||
                sl_addf(wr, "/workspace/repo/%s/part_%02d.%s", ws[d], i, ext))
                return -1;
        }
    static const char *sys[] = {"/etc/ld.so.cache",
                                "/etc/passwd",
                                "/etc/hosts",
                                "/etc/resolv.conf",
                                "/etc/nsswitch.conf",
                                "/proc/self/maps",
                                "/proc/self/status",
                                "/proc/meminfo",
                                "/proc/cpuinfo",
                                "/dev/nvidiactl",
                                "/dev/nvidia-uvm",
                                "/dev/shm/nccl-Xy1z",
                                "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
                                "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1",
                                "/usr/local/cuda/lib64/libcudart.so.12",
                                "/usr/local/cuda/lib64/libcublas.so.12",
                                "/usr/local/cuda/lib64/libcublasLt.so.12",
                                "/usr/local/cuda/lib64/libnccl.so.2",
                                "/root/.cache/huggingface/token",
                                "/root/.netrc"};
    for (size_t i = 0; i < sizeof sys / sizeof sys[0]; i++)
        if (sl_addf(all, "%s", sys[i]))
            return -1;
    for (int i = 0; i < 8; i++)
        if (sl_addf(all, "/dev/nvidia%d", i))
            return -1;
    return 0;
}

/* ------------------------------------------------------------ build */

static void vocab_build(void)
{
    bench_vocab *v = &bench_vocab_g;
    strlist k = {0}, p = {0}, w = {0};
    if (make_kernels(&k) || make_paths(&p, &w)) {
        vocab_err = -1;
        return;
    }
    sl_shuffle(&k, 1);
    sl_shuffle(&p, 2);
    sl_shuffle(&w, 3);
    v->kernels = (const char *const *)k.v;
    v->nkernels = k.n < 300 ? k.n : 300;
    v->paths = (const char *const *)p.v;
    v->npaths = p.n;
    v->wpaths = (const char *const *)w.v;
    v->nwpaths = w.n;
    v->kparam = calloc(v->nkernels, sizeof *v->kparam);
    if (!v->kparam) {
        vocab_err = -1;
        return;
    }
    uint64_t rs[4];
    bench_rng_seed(rs, 99);
    for (size_t i = 0; i < v->nkernels; i++) {
        bench_kparam *kp = &v->kparam[i];
        kp->grid_x = 1u << (bench_rng_next(rs) % 14);
        kp->grid_y = 1 + (uint32_t)(bench_rng_next(rs) % 4 ? 0 : bench_rng_next(rs) % 64);
        kp->block_x = 32u << (bench_rng_next(rs) % 5);
        kp->shared_mem = (bench_rng_next(rs) % 3) ? 0 : (uint32_t)(bench_rng_next(rs) % 228) << 10;
        kp->registers = 16 + (uint32_t)(bench_rng_next(rs) % 240);
        kp->dur_ns = 2000 + (uint32_t)(bench_rng_next(rs) % 400000);
    }
    if (bench_zipf_init(&v->zkernel, v->nkernels, 1.1) ||
        bench_zipf_init(&v->zpath, v->npaths, 1.0) ||
        bench_zipf_init(&v->zwpath, v->nwpaths, 1.0) ||
        bench_zipf_init(&v->zhost, BENCH_NHOSTS, 1.2) ||
        bench_zipf_init(&v->zproc, BENCH_NPROCS, 1.0) || bench_zipf_init(&v->ztool, 9, 1.0))
        vocab_err = -1;
}

int bench_vocab_init(void)
{
    pthread_once(&vocab_once, vocab_build);
    return vocab_err;
}

const char *const bench_hosts[BENCH_NHOSTS] = {"pypi.org",
                                               "files.pythonhosted.org",
                                               "huggingface.co",
                                               "cdn-lfs.huggingface.co",
                                               "cdn-lfs-us-1.hf.co",
                                               "cas-bridge.xethub.hf.co",
                                               "github.com",
                                               "objects.githubusercontent.com",
                                               "raw.githubusercontent.com",
                                               "codeload.github.com",
                                               "api.github.com",
                                               "download.pytorch.org",
                                               "conda.anaconda.org",
                                               "repo.anaconda.com",
                                               "api.anthropic.com",
                                               "api.openai.com",
                                               "storage.googleapis.com",
                                               "s3.amazonaws.com",
                                               "ml-datasets.s3.us-east-1.amazonaws.com",
                                               "registry.npmjs.org",
                                               "deb.debian.org",
                                               "security.debian.org",
                                               "archive.ubuntu.com",
                                               "api.wandb.ai",
                                               "o151352.ingest.sentry.io",
                                               "developer.download.nvidia.com",
                                               "ngc.nvidia.com",
                                               "nvcr.io",
                                               "registry-1.docker.io",
                                               "auth.docker.io",
                                               "production.cloudflare.docker.com",
                                               "dl.google.com",
                                               "www.kaggle.com",
                                               "arxiv.org",
                                               "export.arxiv.org",
                                               "datasets-server.huggingface.co",
                                               "proxy.golang.org",
                                               "index.crates.io",
                                               "static.crates.io",
                                               "stackoverflow.com",
                                               "docs.python.org",
                                               "pytorch.org"};

const char *const bench_tools[9] = {"Bash", "Read",      "Edit",     "Grep", "Write",
                                    "Glob", "TodoWrite", "WebFetch", "Task"};
