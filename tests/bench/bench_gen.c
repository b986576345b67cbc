/* The synthetic event stream of bench_store: a realistic mix of what ptb records during an agent
 * run that trains a model.
 *
 *   per mille  type          drawn from
 *   600        gpu.kernel    Zipf(1.1) over ~300 kernel names, on 8 GPU worker processes
 *    80        gpu.memcpy    HtoD / DtoH / DtoD, sizes 1 B .. 128 MiB
 *    80        file.open     Zipf(1.0) over ~20k paths
 *    70        file.read     same
 *    50        file.write    Zipf(1.0) over the ~2.8k writable paths (checkpoints, /tmp, repo)
 *    25 / 25   proc.exec / proc.exit   short-lived commands (new exec_id each), argv + 20 env vars
 *    15/10/8/7 net.connect / net.dns / net.tls / net.http   Zipf(1.2) over 42 hosts
 *    15 / 15   tool.call / tool.result  Zipf over 9 tools, JSON inputs of a few hundred bytes
 *
 * File and net events come from 300 long-lived processes (Zipf(1.0), exec_id = rank + 1) or,
 * one time in four, from the latest short-lived command. ts_ns grows by 0.5..1.5 us per event.
 * The generator owns every string and submessage an event points to. */
#include "bench.h"
#include "bench_vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GEN_ENV 20
#define GEN_LIVE 16

struct bench_gen {
    uint64_t rng[4];
    int64_t ts, mono;
    uint64_t next_exec;
    uint64_t live[GEN_LIVE]; /* running short-lived commands, oldest first */
    unsigned nlive;
    uint32_t corr;
    uint64_t flow;
    unsigned calls;
    ptb_event ev;
    Ptb__V1__GpuKernel k;
    Ptb__V1__GpuMemcpy m;
    Ptb__V1__FileOpen fo;
    Ptb__V1__FileRead fr;
    Ptb__V1__FileWrite fw;
    Ptb__V1__ProcExec pe;
    Ptb__V1__ProcExit px;
    Ptb__V1__NetConnect nc;
    Ptb__V1__SockAddr la, ra;
    Ptb__V1__NetDns dns;
    Ptb__V1__DnsAnswer ans;
    Ptb__V1__DnsAnswer *ansp[1];
    Ptb__V1__NetTls tls;
    char *alpn[2];
    Ptb__V1__NetHttp http;
    Ptb__V1__HttpHeader hh[3];
    Ptb__V1__HttpHeader *hhp[3];
    Ptb__V1__ToolCall tc;
    Ptb__V1__ToolResult tr;
    Ptb__V1__EnvVar env[GEN_ENV];
    Ptb__V1__EnvVar *envp[GEN_ENV];
    char *argv[8];
    char argbuf[8][128];
    uint8_t sha[32];
    char ip[BENCH_NHOSTS][16];
    char callid[40];
    char input[1024];
    char output[1024];
    char path[160];
};

static const char *const env_kv[GEN_ENV][2] = {
    {"PATH", "/opt/conda/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/bin:/bin"},
    {"HOME", "/root"},
    {"LANG", "C.UTF-8"},
    {"CUDA_VISIBLE_DEVICES", "0,1,2,3,4,5,6,7"},
    {"NCCL_DEBUG", "WARN"},
    {"PYTHONUNBUFFERED", "1"},
    {"HF_HOME", "/root/.cache/huggingface"},
    {"HF_TOKEN", ""},
    {"WANDB_PROJECT", "llama-sft"},
    {"OMP_NUM_THREADS", "8"},
    {"TORCH_CUDA_ARCH_LIST", "9.0"},
    {"MASTER_ADDR", "127.0.0.1"},
    {"MASTER_PORT", "29500"},
    {"WORLD_SIZE", "8"},
    {"LD_LIBRARY_PATH", "/usr/local/cuda/lib64:/usr/local/nvidia/lib64"},
    {"TERM", "xterm-256color"},
    {"SHELL", "/bin/bash"},
    {"PWD", "/workspace/repo"},
    {"ANTHROPIC_API_KEY", ""},
    {"CONDA_PREFIX", "/opt/conda"}};

static const char *const exes[][4] = {
    {"/opt/conda/bin/python3.11", "python", "-m", "pytest"},
    {"/usr/bin/git", "git", "status", "--porcelain"},
    {"/usr/bin/bash", "bash", "-c", "nvidia-smi --query-gpu=memory.used --format=csv"},
    {"/usr/bin/grep", "grep", "-rn", "learning_rate"},
    {"/usr/bin/ls", "ls", "-la", "/workspace/repo/logs"},
    {"/opt/conda/bin/pip", "pip", "install", "flash-attn==2.6.3"},
    {"/usr/bin/nvidia-smi", "nvidia-smi", "-q", "-d"},
    {"/usr/bin/tail", "tail", "-n", "200"}};

static uint64_t rnd(bench_gen *g, uint64_t n)
{
    return bench_rng_next(g->rng) % n;
}

bench_gen *bench_gen_new(uint64_t seed, unsigned stream)
{
    if (bench_vocab_init())
        return NULL;
    bench_gen *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    bench_rng_seed(g->rng, seed ^ (0x51ed2701ULL * (stream + 1)));
    g->ts = 1750000000000000000LL + stream * 37;
    g->mono = 86400000000000LL + stream * 37;
    g->next_exec = 1000 + (uint64_t)stream * 1000000000ULL;
    ptb__v1__event__init(&g->ev);
    ptb__v1__gpu_kernel__init(&g->k);
    ptb__v1__gpu_memcpy__init(&g->m);
    ptb__v1__file_open__init(&g->fo);
    ptb__v1__file_read__init(&g->fr);
    ptb__v1__file_write__init(&g->fw);
    ptb__v1__proc_exec__init(&g->pe);
    ptb__v1__proc_exit__init(&g->px);
    ptb__v1__net_connect__init(&g->nc);
    ptb__v1__sock_addr__init(&g->la);
    ptb__v1__sock_addr__init(&g->ra);
    ptb__v1__net_dns__init(&g->dns);
    ptb__v1__dns_answer__init(&g->ans);
    ptb__v1__net_tls__init(&g->tls);
    ptb__v1__net_http__init(&g->http);
    ptb__v1__tool_call__init(&g->tc);
    ptb__v1__tool_result__init(&g->tr);
    for (int i = 0; i < GEN_ENV; i++) {
        ptb__v1__env_var__init(&g->env[i]);
        g->env[i].name = (char *)env_kv[i][0];
        g->env[i].value = (char *)env_kv[i][1];
        g->envp[i] = &g->env[i];
    }
    for (int i = 0; i < 8; i++)
        g->argv[i] = g->argbuf[i];
    for (int i = 0; i < BENCH_NHOSTS; i++) {
        unsigned h = (unsigned)i * 2654435761u;
        snprintf(g->ip[i], sizeof g->ip[i], "%u.%u.%u.%u", 13 + (h >> 26), (h >> 16) & 255,
                 (h >> 8) & 255, 1 + (h & 127));
    }
    g->ansp[0] = &g->ans;
    g->alpn[0] = "h2";
    g->alpn[1] = "http/1.1";
    static const char *const hn[3] = {"User-Agent", "Accept", "Accept-Encoding"};
    static const char *const hv[3] = {"pip/24.0 {\"python\":\"3.11.9\"}", "*/*", "gzip"};
    for (int i = 0; i < 3; i++) {
        ptb__v1__http_header__init(&g->hh[i]);
        g->hh[i].name = (char *)hn[i];
        g->hh[i].value = (char *)hv[i];
        g->hhp[i] = &g->hh[i];
    }
    return g;
}

void bench_gen_free(bench_gen *g)
{
    free(g);
}

static int32_t pid_of(uint64_t exec_id)
{
    return exec_id < 1000 ? (int32_t)(4000 + exec_id * 13) : (int32_t)(20000 + exec_id % 30000);
}

/* A process for a file / net event: a long-lived one, or the latest short-lived command. */
static uint64_t pick_proc(bench_gen *g)
{
    if (g->nlive && rnd(g, 4) == 0)
        return g->live[g->nlive - 1];
    return bench_zipf_draw(&bench_vocab_g.zproc, g->rng) + 1;
}

static void fill_sha(bench_gen *g)
{
    for (int i = 0; i < 32; i += 8) {
        uint64_t r = bench_rng_next(g->rng);
        memcpy(g->sha + i, &r, 8);
    }
}

static void gen_kernel(bench_gen *g, ptb_event *ev)
{
    const bench_vocab *v = &bench_vocab_g;
    size_t i = bench_zipf_draw(&v->zkernel, g->rng);
    const bench_kparam *kp = &v->kparam[i];
    uint32_t dev = (uint32_t)rnd(g, 8);
    Ptb__V1__GpuKernel *k = &g->k;
    k->name = (char *)v->kernels[i];
    k->grid_x = kp->grid_x * (1 + (uint32_t)rnd(g, 4));
    k->grid_y = kp->grid_y;
    k->grid_z = 1;
    k->block_x = kp->block_x;
    k->block_y = 1;
    k->block_z = 1;
    k->shared_mem = kp->shared_mem;
    k->registers = kp->registers;
    k->stream = 7 + (uint32_t)rnd(g, 3);
    k->device = dev;
    k->start_ns = g->ts - 50000 + (int64_t)rnd(g, 20000);
    k->end_ns = k->start_ns + kp->dur_ns + (int64_t)rnd(g, kp->dur_ns / 8 + 1);
    k->correlation_id = ++g->corr;
    ev->source = PTB__V1__SOURCE__SOURCE_GPU;
    ev->exec_id = 2 + dev;
    ev->tid = (uint32_t)pid_of(ev->exec_id);
    ev->body_case = PTB__V1__EVENT__BODY_GPU_KERNEL;
    ev->gpu_kernel = k;
}

static void gen_memcpy(bench_gen *g, ptb_event *ev)
{
    static const char *const kinds[4] = {"HtoD", "DtoH", "DtoD", "HtoD"};
    uint32_t dev = (uint32_t)rnd(g, 8);
    Ptb__V1__GpuMemcpy *m = &g->m;
    m->bytes = 1ULL << rnd(g, 28);
    m->kind = (char *)kinds[rnd(g, 4)];
    m->device = dev;
    m->stream = 7 + (uint32_t)rnd(g, 3);
    m->start_ns = g->ts - 40000 + (int64_t)rnd(g, 20000);
    m->end_ns = m->start_ns + 1000 + (int64_t)(m->bytes / 20);
    m->correlation_id = ++g->corr;
    ev->source = PTB__V1__SOURCE__SOURCE_GPU;
    ev->exec_id = 2 + dev;
    ev->tid = (uint32_t)pid_of(ev->exec_id);
    ev->body_case = PTB__V1__EVENT__BODY_GPU_MEMCPY;
    ev->gpu_memcpy = m;
}

static void gen_file(bench_gen *g, ptb_event *ev, int which)
{
    const bench_vocab *v = &bench_vocab_g;
    ev->source = PTB__V1__SOURCE__SOURCE_TRACER;
    ev->exec_id = pick_proc(g);
    ev->tid = (uint32_t)pid_of(ev->exec_id) + (rnd(g, 4) ? 0 : (uint32_t)rnd(g, 8));
    if (which == 0) {
        Ptb__V1__FileOpen *o = &g->fo;
        o->path = (char *)v->paths[bench_zipf_draw(&v->zpath, g->rng)];
        o->flags = 0x80000; /* O_RDONLY|O_CLOEXEC */
        o->fd = 3 + (int32_t)rnd(g, 60);
        o->result = rnd(g, 20) ? o->fd : -2;
        ev->body_case = PTB__V1__EVENT__BODY_FILE_OPEN;
        ev->file_open = o;
    } else if (which == 1) {
        Ptb__V1__FileRead *r = &g->fr;
        r->path = (char *)v->paths[bench_zipf_draw(&v->zpath, g->rng)];
        r->bytes = 1 + rnd(g, 1 << 20);
        r->reads = 1 + rnd(g, 20);
        bool hashed = rnd(g, 10) < 3;
        if (hashed)
            fill_sha(g);
        r->sha256.data = hashed ? g->sha : NULL;
        r->sha256.len = hashed ? 32 : 0;
        ev->body_case = PTB__V1__EVENT__BODY_FILE_READ;
        ev->file_read = r;
    } else {
        Ptb__V1__FileWrite *w = &g->fw;
        w->path = (char *)v->wpaths[bench_zipf_draw(&v->zwpath, g->rng)];
        w->bytes = 1 + rnd(g, 1 << 22);
        w->size = w->bytes + rnd(g, 1 << 12);
        fill_sha(g);
        w->sha256.data = g->sha;
        w->sha256.len = 32;
        w->trigger = "close";
        w->mode = 0644;
        ev->body_case = PTB__V1__EVENT__BODY_FILE_WRITE;
        ev->file_write = w;
    }
}

static void gen_proc(bench_gen *g, ptb_event *ev, bool exec)
{
    ev->source = PTB__V1__SOURCE__SOURCE_TRACER;
    if (exec || g->nlive == 0) {
        uint64_t id = g->next_exec++;
        if (g->nlive == GEN_LIVE) {
            memmove(g->live, g->live + 1, (GEN_LIVE - 1) * sizeof g->live[0]);
            g->nlive--;
        }
        g->live[g->nlive++] = id;
        size_t e = rnd(g, sizeof exes / sizeof exes[0]);
        Ptb__V1__ProcExec *p = &g->pe;
        p->parent_exec_id = 1;
        p->pid = pid_of(id);
        p->ppid = pid_of(1);
        p->exe = (char *)exes[e][0];
        p->n_argv = 3 + rnd(g, 4);
        for (size_t i = 0; i < p->n_argv; i++)
            snprintf(g->argbuf[i], sizeof g->argbuf[i], "%s", i < 4 ? exes[e][i] : "--verbose");
        if (p->n_argv > 4)
            snprintf(g->argbuf[4], sizeof g->argbuf[4], "tests/test_part_%02u.py",
                     (unsigned)rnd(g, 40));
        p->argv = g->argv;
        p->cwd = "/workspace/repo";
        p->uid = 0;
        p->gid = 0;
        p->n_env = GEN_ENV;
        p->env = g->envp;
        ev->exec_id = id;
        ev->tid = (uint32_t)p->pid;
        ev->body_case = PTB__V1__EVENT__BODY_PROC_EXEC;
        ev->proc_exec = p;
        return;
    }
    uint64_t id = g->live[0];
    memmove(g->live, g->live + 1, (GEN_LIVE - 1) * sizeof g->live[0]);
    g->nlive--;
    Ptb__V1__ProcExit *x = &g->px;
    x->pid = pid_of(id);
    x->exit_code = rnd(g, 10) ? 0 : 1;
    x->utime_us = rnd(g, 5000000);
    x->stime_us = rnd(g, 500000);
    x->max_rss_kb = 2000 + rnd(g, 4000000);
    ev->exec_id = id;
    ev->tid = (uint32_t)x->pid;
    ev->body_case = PTB__V1__EVENT__BODY_PROC_EXIT;
    ev->proc_exit = x;
}

static void gen_net(bench_gen *g, ptb_event *ev, int which)
{
    size_t h = bench_zipf_draw(&bench_vocab_g.zhost, g->rng);
    char *host = (char *)bench_hosts[h];
    ev->source = which == 0 ? PTB__V1__SOURCE__SOURCE_TRACER : PTB__V1__SOURCE__SOURCE_PCAP;
    ev->exec_id = pick_proc(g);
    ev->tid = (uint32_t)pid_of(ev->exec_id);
    uint64_t flow = ++g->flow;
    if (which == 0) {
        Ptb__V1__NetConnect *c = &g->nc;
        c->pid = pid_of(ev->exec_id);
        c->fd = 3 + (int32_t)rnd(g, 60);
        c->proto = "tcp";
        g->la.ip = "10.0.3.17";
        g->la.port = 32768 + (uint32_t)rnd(g, 28000);
        g->ra.ip = g->ip[h];
        g->ra.port = 443;
        c->local = &g->la;
        c->remote = &g->ra;
        c->result = rnd(g, 3) ? 0 : -115;
        c->host = host;
        ev->body_case = PTB__V1__EVENT__BODY_NET_CONNECT;
        ev->net_connect = c;
    } else if (which == 1) {
        Ptb__V1__NetDns *d = &g->dns;
        d->flow_id = flow;
        d->id = (uint32_t)rnd(g, 65536);
        d->response = true;
        d->host = host;
        d->qtype = "A";
        g->ans.name = host;
        g->ans.type = "A";
        g->ans.data = g->ip[h];
        g->ans.ttl = 300;
        d->n_answers = 1;
        d->answers = g->ansp;
        ev->body_case = PTB__V1__EVENT__BODY_NET_DNS;
        ev->net_dns = d;
    } else if (which == 2) {
        Ptb__V1__NetTls *t = &g->tls;
        t->flow_id = flow;
        t->host = host;
        t->n_alpn = 2;
        t->alpn = g->alpn;
        t->version = 0x0304;
        ev->body_case = PTB__V1__EVENT__BODY_NET_TLS;
        ev->net_tls = t;
    } else {
        Ptb__V1__NetHttp *p = &g->http;
        static const char *const up[4] = {"/simple/torch/", "/api/models/meta-llama/Llama-3.1-8B",
                                          "/v1/messages", "/repos/huggingface/transformers"};
        p->flow_id = flow;
        p->method = "GET";
        p->host = host;
        p->path = (char *)up[rnd(g, 4)];
        p->n_headers = 3;
        p->headers = g->hhp;
        p->body_bytes = rnd(g, 100000);
        ev->body_case = PTB__V1__EVENT__BODY_NET_HTTP;
        ev->net_http = p;
    }
}

static void gen_tool(bench_gen *g, ptb_event *ev, bool call)
{
    static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    const bench_vocab *v = &bench_vocab_g;
    ev->source = PTB__V1__SOURCE__SOURCE_AGENT;
    ev->exec_id = 1;
    ev->tid = (uint32_t)pid_of(1);
    if (call) {
        memcpy(g->callid, "toolu_01", 8);
        for (int i = 8; i < 32; i++)
            g->callid[i] = b62[rnd(g, 62)];
        g->callid[32] = 0;
        size_t t = bench_zipf_draw(&v->ztool, g->rng);
        const char *p = v->wpaths[rnd(g, v->nwpaths)];
        unsigned n = (unsigned)rnd(g, 1000);
        g->calls++;
        switch (t) {
        case 0:
            if (rnd(g, 200) == 0)
                snprintf(g->input, sizeof g->input,
                         "{\"command\":\"ssh-keygen -t ed25519 -N '' -f /root/.ssh/id_%u && cat "
                         "/root/.ssh/id_%u.pub\",\"description\":\"Create a deploy key\"}",
                         n, n);
            else
                snprintf(g->input, sizeof g->input,
                         "{\"command\":\"cd /workspace/repo && python -m pytest "
                         "tests/test_part_%02u.py -x -q 2>&1 | tail -%u\",\"description\":\"Run "
                         "the part %u tests after the change to the data loader\",\"timeout\":"
                         "%u}",
                         n % 40, 20 + n % 80, n % 40, 60000 + n * 1000);
            break;
        case 1:
        case 5:
            snprintf(g->input, sizeof g->input, "{\"file_path\":\"%s\",\"offset\":%u,\"limit\":%u}",
                     p, n, 200 + n % 300);
            break;
        case 2:
            snprintf(g->input, sizeof g->input,
                     "{\"file_path\":\"%s\",\"old_string\":\"    lr = %u.0e-5\\n    warmup_steps "
                     "= %u\",\"new_string\":\"    lr = %u.0e-5\\n    warmup_steps = %u\\n    "
                     "weight_decay = 0.1\",\"replace_all\":false}",
                     p, 1 + n % 9, n, 1 + (n + 3) % 9, n * 2);
            break;
        case 4:
            snprintf(g->input, sizeof g->input,
                     "{\"file_path\":\"%s\",\"content\":\"import torch\\nimport torch.nn as "
                     "nn\\n\\n\\nclass Block%u(nn.Module):\\n    def __init__(self, dim: int = "
                     "%u):\\n        super().__init__()\\n        self.norm = nn.RMSNorm(dim)\\n  "
                     "      self.proj = nn.Linear(dim, dim, bias=False)\\n\\n    def forward("
                     "self, x):\\n        return x + self.proj(self.norm(x))\\n\"}",
                     p, n, 1024 + 128 * (n % 32));
            break;
        default:
            snprintf(g->input, sizeof g->input,
                     "{\"pattern\":\"def (forward|step_%u)\\\\(\",\"path\":\"/workspace/repo/"
                     "src\",\"output_mode\":\"content\",\"-n\":true,\"head_limit\":%u}",
                     n, 50 + n % 100);
            break;
        }
        Ptb__V1__ToolCall *c = &g->tc;
        c->call_id = g->callid;
        c->name = (char *)bench_tools[t];
        c->input = g->input;
        ev->body_case = PTB__V1__EVENT__BODY_TOOL_CALL;
        ev->tool_call = c;
        return;
    }
    unsigned n = (unsigned)rnd(g, 500);
    int len = snprintf(g->output, sizeof g->output,
                       "============================= test session starts "
                       "==============================\nplatform linux -- Python 3.11.9, "
                       "pytest-8.2.0, pluggy-1.5.0\nrootdir: /workspace/repo\ncollected %u "
                       "items\n\ntests/test_part_%02u.py ......................... [100%%]\n\n"
                       "============================== %u passed in %u.%02us "
                       "===============================\n",
                       n, n % 40, n, 1 + n % 50, n % 100);
    Ptb__V1__ToolResult *r = &g->tr;
    r->call_id = g->callid[0] ? g->callid : "toolu_01";
    r->is_error = n % 25 == 0;
    r->output = g->output;
    r->output_bytes = (uint64_t)len;
    ev->body_case = PTB__V1__EVENT__BODY_TOOL_RESULT;
    ev->tool_result = r;
}

const ptb_event *bench_gen_next(bench_gen *g)
{
    ptb_event *ev = &g->ev;
    g->ts += 500 + (int64_t)rnd(g, 1000);
    g->mono += 500 + (int64_t)rnd(g, 1000);
    ev->seq = 0;
    ev->ts_ns = g->ts;
    ev->mono_ns = g->mono;
    unsigned u = (unsigned)rnd(g, 1000);
    if (u < 600)
        gen_kernel(g, ev);
    else if (u < 680)
        gen_memcpy(g, ev);
    else if (u < 760)
        gen_file(g, ev, 0);
    else if (u < 830)
        gen_file(g, ev, 1);
    else if (u < 880)
        gen_file(g, ev, 2);
    else if (u < 930)
        gen_proc(g, ev, u < 905);
    else if (u < 945)
        gen_net(g, ev, 0);
    else if (u < 955)
        gen_net(g, ev, 1);
    else if (u < 963)
        gen_net(g, ev, 2);
    else if (u < 970)
        gen_net(g, ev, 3);
    else
        gen_tool(g, ev, u < 985);
    return ev;
}

/* ------------------------------------------------------------ keys, packing, targets */

void bench_event_keys(const ptb_event *ev, bench_keys *k)
{
    memset(k, 0, sizeof *k);
    k->type = event_type_name(ev->body_case);
    k->exec_id = ev->exec_id;
    switch (ev->body_case) {
    case PTB__V1__EVENT__BODY_GPU_KERNEL: k->kernel = ev->gpu_kernel->name; break;
    case PTB__V1__EVENT__BODY_FILE_OPEN: k->path = ev->file_open->path; break;
    case PTB__V1__EVENT__BODY_FILE_READ: k->path = ev->file_read->path; break;
    case PTB__V1__EVENT__BODY_FILE_WRITE: k->path = ev->file_write->path; break;
    case PTB__V1__EVENT__BODY_PROC_EXEC: k->path = ev->proc_exec->exe; break;
    case PTB__V1__EVENT__BODY_NET_CONNECT: k->host = ev->net_connect->host; break;
    case PTB__V1__EVENT__BODY_NET_DNS: k->host = ev->net_dns->host; break;
    case PTB__V1__EVENT__BODY_NET_TLS: k->host = ev->net_tls->host; break;
    case PTB__V1__EVENT__BODY_NET_HTTP: k->host = ev->net_http->host; break;
    case PTB__V1__EVENT__BODY_TOOL_CALL: k->tool = ev->tool_call->name; break;
    default: break;
    }
}

/* The field bench_event_keys() took its string from, so it can be blanked. */
static char **key_field(ptb_event *ev)
{
    switch (ev->body_case) {
    case PTB__V1__EVENT__BODY_GPU_KERNEL: return &ev->gpu_kernel->name;
    case PTB__V1__EVENT__BODY_FILE_OPEN: return &ev->file_open->path;
    case PTB__V1__EVENT__BODY_FILE_READ: return &ev->file_read->path;
    case PTB__V1__EVENT__BODY_FILE_WRITE: return &ev->file_write->path;
    case PTB__V1__EVENT__BODY_PROC_EXEC: return &ev->proc_exec->exe;
    case PTB__V1__EVENT__BODY_NET_CONNECT: return &ev->net_connect->host;
    case PTB__V1__EVENT__BODY_NET_DNS: return &ev->net_dns->host;
    case PTB__V1__EVENT__BODY_NET_TLS: return &ev->net_tls->host;
    case PTB__V1__EVENT__BODY_NET_HTTP: return &ev->net_http->host;
    case PTB__V1__EVENT__BODY_TOOL_CALL: return &ev->tool_call->name;
    default: return NULL;
    }
}

size_t bench_event_pack_body(ptb_event *ev, uint8_t **buf, size_t *cap)
{
    char **f = key_field(ev);
    char *saved = f ? *f : NULL;
    if (f)
        *f = "";
    size_t n = ptb__v1__event__get_packed_size(ev);
    if (n > *cap) {
        size_t nc = n * 2;
        uint8_t *nb = realloc(*buf, nc);
        if (!nb) {
            if (f)
                *f = saved;
            return 0;
        }
        *buf = nb;
        *cap = nc;
    }
    ptb__v1__event__pack(ev, *buf);
    if (f)
        *f = saved;
    return n;
}

void bench_gen_targets(uint64_t seed, bench_targets *t)
{
    (void)seed; /* the vocabularies and their ranks do not depend on the seed */
    bench_vocab_init();
    const bench_vocab *v = &bench_vocab_g;
    t->path = v->paths[300];           /* Zipf rank 300 of ~20k */
    t->exec_id = 21;                   /* long-lived process of Zipf rank 20 of 300 */
    t->host = bench_hosts[6];          /* Zipf rank 6 of 42 */
    t->tid = (uint32_t)pid_of(21) + 3; /* one of its threads */
    t->needle = "ssh-keygen";
}
