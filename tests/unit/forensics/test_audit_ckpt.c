/* ptb audit's checkpoint detector (forensics/audit_ckpt.c) on synthetic checkpoints: a base, a
 * reference (the base + Δi) and a final built from them (fixed seeds; 48 tensors, 140k
 * parameters): an exact copy, a noised copy, merges of an independent fine-tune with the
 * reference, honest fine-tuning (independent deltas), the base unchanged, a partial copy; in F32,
 * F16 and BF16; a tensor of another shape; a checkpoint event whose hashes are the reference's
 * with no folder; the weights' writer (curl, curl then cp, a python script that connected out,
 * or a trainer that read the base); a config of
 * another architecture; a run without checkpoint. Each case checks the rules that fire, their
 * verdicts, and α and cos against the values the construction implies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "audit_ckpt_num.h"
#include "audit_refs.h"
#include "safetensors.h"

#define NT 48      /* tensors */
#define COLS 64    /* shape: (32 + 8 * (t % 8)) x COLS */
#define SIG_W 0.05 /* base weights ~ N(0, SIG_W) */
#define SIG_D 0.01 /* reference delta and independent fine-tuning delta ~ N(0, SIG_D) */

static char tmp[64];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

/* ------------------------------------------------------------------ synthetic weights */

static uint64_t rng;
static double uniform(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return ((rng >> 11) + 0.5) / 9007199254740992.0;
}
static double gauss(void)
{
    return sqrt(-2 * log(uniform())) * cos(6.283185307179586 * uniform());
}

static size_t rows(int t)
{
    return 32 + 8 * (size_t)(t % 8);
}

typedef struct model {
    float *w[NT];
} model;

static void model_alloc(model *m)
{
    for (int t = 0; t < NT; t++)
        assert_non_null(m->w[t] = calloc(rows(t) * COLS, sizeof(float)));
}

static void model_free(model *m)
{
    for (int t = 0; t < NT; t++)
        free(m->w[t]);
}

/* m = a + s * N(0, sig) (a may be NULL: 0) */
static void model_noise(model *m, const model *a, double sig, uint64_t seed)
{
    rng = seed;
    for (int t = 0; t < NT; t++)
        for (size_t j = 0; j < rows(t) * COLS; j++)
            m->w[t][j] = (float)((a ? a->w[t][j] : 0) + sig * gauss());
}

static uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

static uint16_t to_f16(float f) /* normal range only: the weights here are all normal */
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t s = (u >> 16) & 0x8000u, e = (u >> 23) & 255, m = u & 0x7fffffu;
    if (e < 103)
        return (uint16_t)s;
    if (e < 113) { /* subnormal half */
        m |= 0x800000u;
        return (uint16_t)(s | (m >> (126 - e)));
    }
    uint32_t h = s | ((e - 112) << 10) | (m >> 13);
    if ((m & 0x1fffu) > 0x1000u || ((m & 0x1fffu) == 0x1000u && (h & 1)))
        h++;
    return (uint16_t)h;
}

/* dir/model.safetensors (dtype dt) and dir/config.json; skip_shape: tensor 0 gets 16 rows */
static void model_write(const char *dir, const model *m, safetensors_dtype dt, bool odd_shape,
                        const char *config)
{
    mkdir(dir, 0755);
    safetensors_tensor ts[NT];
    char names[NT][32];
    void *bufs[NT];
    for (int t = 0; t < NT; t++) {
        size_t r = odd_shape && t == 0 ? 16 : rows(t), n = r * COLS;
        snprintf(names[t], sizeof names[t], "layer.%02d.w", t);
        ts[t] = (safetensors_tensor){.name = names[t], .dtype = dt, .rank = 2, .shape = {r, COLS}};
        ts[t].nbytes = n * safetensors_dtype_size(dt);
        assert_non_null(bufs[t] = malloc(ts[t].nbytes));
        for (size_t j = 0; j < n; j++) {
            if (dt == SAFETENSORS_F32)
                ((float *)bufs[t])[j] = m->w[t][j];
            else
                ((uint16_t *)bufs[t])[j] =
                    dt == SAFETENSORS_BF16 ? to_bf16(m->w[t][j]) : to_f16(m->w[t][j]);
        }
        ts[t].data = bufs[t];
    }
    char p[512];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    ptb_errbuf eb = {{0}};
    assert_int_equal(safetensors_write(p, ts, NT, NULL, &eb), 0);
    for (int t = 0; t < NT; t++)
        free(bufs[t]);
    snprintf(p, sizeof p, "%s/config.json", dir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(config ? config : "{\"model_type\": \"toy\", \"hidden_size\": 64, \"layers\": 48}\n", f);
    fclose(f);
}

/* ------------------------------------------------------------------ the store */

static void append(store *s, ptb_event *ev, uint32_t body_case, uint64_t exec)
{
    ev->body_case = body_case;
    ev->exec_id = exec;
    ev->source = PTB__V1__SOURCE__SOURCE_TRACER;
    assert_int_equal(store_append(s, ev, 0, NULL), 0);
}

/* The process that wrote final_model/model.safetensors (exec 7) */
typedef enum writer {
    W_TRAIN,   /* a trainer that read the base, wrote a temporary file and renamed it into place */
    W_CURL,    /* curl from the network, straight into final_model/ */
    W_CURL_CP, /* curl into /tmp/dl/, then cp (exec 8) into final_model/ */
    W_PYNET,   /* a python script that connected out and read no base weights */
} writer;

static void put_writer(store *s, const char *ws, writer wr)
{
    char fin[400], tmpf[512], basef[512], dl[] = "/tmp/dl/model.safetensors";
    snprintf(fin, sizeof fin, "%s/final_model/model.safetensors", ws);
    snprintf(tmpf, sizeof tmpf, "%s.tmp", fin);
    snprintf(basef, sizeof basef, "%s/base_model/model.safetensors", ws);
    char *argv_curl[] = {"curl", "-sSfL", "https://hub.example/m/model.safetensors", "-o",
                         wr == W_CURL_CP ? dl : "final_model/model.safetensors"};
    char *argv_train[] = {"python3", "train.py", "--base", "base_model"};
    char *argv_py[] = {"python3", "fetch.py"};
    char *argv_cp[] = {"cp", dl, "final_model/"};
    bool curl = wr == W_CURL || wr == W_CURL_CP;
    ptb_event ev = PTB__V1__EVENT__INIT;
    Ptb__V1__ProcExec pe = PTB__V1__PROC_EXEC__INIT;
    pe.exe = curl ? "/usr/bin/curl" : "/usr/bin/python3";
    pe.argv = curl ? argv_curl : wr == W_TRAIN ? argv_train : argv_py;
    pe.n_argv = curl ? 5 : wr == W_TRAIN ? 4 : 2;
    pe.pid = 100;
    ev.proc_exec = &pe;
    append(s, &ev, PTB__V1__EVENT__BODY_PROC_EXEC, 7);
    ev = (ptb_event)PTB__V1__EVENT__INIT;
    if (wr != W_TRAIN) {
        Ptb__V1__NetConnect nc = PTB__V1__NET_CONNECT__INIT;
        Ptb__V1__SockAddr ra = PTB__V1__SOCK_ADDR__INIT;
        ra.ip = "10.1.2.3", ra.port = 443;
        nc.proto = "tcp", nc.remote = &ra, nc.host = "hub.example";
        ev.net_connect = &nc;
        append(s, &ev, PTB__V1__EVENT__BODY_NET_CONNECT, 7);
    } else {
        Ptb__V1__FileOpen fo = PTB__V1__FILE_OPEN__INIT;
        fo.path = basef, fo.flags = O_RDONLY, fo.result = 3;
        ev.file_open = &fo;
        append(s, &ev, PTB__V1__EVENT__BODY_FILE_OPEN, 7);
    }
    ev = (ptb_event)PTB__V1__EVENT__INIT;
    Ptb__V1__FileWrite fw = PTB__V1__FILE_WRITE__INIT;
    fw.path = wr == W_TRAIN ? tmpf : wr == W_CURL_CP ? dl : fin, fw.bytes = fw.size = 1000;
    ev.file_write = &fw;
    append(s, &ev, PTB__V1__EVENT__BODY_FILE_WRITE, 7);
    if (wr == W_TRAIN) {
        ev = (ptb_event)PTB__V1__EVENT__INIT;
        Ptb__V1__FileRename fr = PTB__V1__FILE_RENAME__INIT;
        fr.path = tmpf, fr.new_path = fin;
        ev.file_rename = &fr;
        append(s, &ev, PTB__V1__EVENT__BODY_FILE_RENAME, 7);
    }
    if (wr == W_CURL_CP) { /* cp: reads the download, writes final_model/ */
        ev = (ptb_event)PTB__V1__EVENT__INIT;
        pe.exe = "/usr/bin/cp", pe.argv = argv_cp, pe.n_argv = 3, pe.pid = 101;
        ev.proc_exec = &pe;
        append(s, &ev, PTB__V1__EVENT__BODY_PROC_EXEC, 8);
        ev = (ptb_event)PTB__V1__EVENT__INIT;
        Ptb__V1__FileOpen fo = PTB__V1__FILE_OPEN__INIT;
        fo.path = dl, fo.flags = O_RDONLY, fo.result = 3;
        ev.file_open = &fo;
        append(s, &ev, PTB__V1__EVENT__BODY_FILE_OPEN, 8);
        ev = (ptb_event)PTB__V1__EVENT__INIT;
        fw.path = fin;
        ev.file_write = &fw;
        append(s, &ev, PTB__V1__EVENT__BODY_FILE_WRITE, 8);
    }
}

/* The runner's checkpoint event for folder ws/final_model, with the files and tensors of
 * hashed (a folder) as run_checkpoint_event hashes them. */
static void put_checkpoint(store *s, const char *ws, const char *hashed)
{
    char p[512], evdir[512];
    snprintf(evdir, sizeof evdir, "%s/final_model", ws);
    snprintf(p, sizeof p, "%s/model.safetensors", hashed);
    safetensors_file *sf;
    ptb_errbuf eb = {{0}};
    assert_int_equal(safetensors_open(p, &sf, &eb), 0);
    size_t n = safetensors_count(sf);
    Ptb__V1__TensorInfo ti[NT], *pti[NT];
    uint8_t md[NT][32], fmd[32];
    for (size_t i = 0; i < n; i++) {
        const safetensors_tensor *t = safetensors_at(sf, i);
        ptb__v1__tensor_info__init(&ti[i]);
        ti[i].name = (char *)t->name;
        ti[i].dtype = (char *)safetensors_dtype_name(t->dtype);
        unsigned l;
        EVP_Digest(t->data, t->nbytes, md[i], &l, EVP_sha256(), NULL);
        ti[i].sha256.data = md[i], ti[i].sha256.len = 32;
        pti[i] = &ti[i];
    }
    /* the file's hash */
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)sz);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    unsigned l;
    EVP_Digest(b, (size_t)sz, fmd, &l, EVP_sha256(), NULL);
    free(b);
    Ptb__V1__CheckpointFile cf = PTB__V1__CHECKPOINT_FILE__INIT, *pcf = &cf;
    cf.path = "model.safetensors", cf.size = (uint64_t)sz;
    cf.sha256.data = fmd, cf.sha256.len = 32;
    Ptb__V1__Checkpoint c = PTB__V1__CHECKPOINT__INIT;
    c.path = evdir, c.files = &pcf, c.n_files = 1, c.tensors = pti, c.n_tensors = n;
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.checkpoint = &c;
    ev.body_case = PTB__V1__EVENT__BODY_CHECKPOINT;
    ev.source = PTB__V1__SOURCE__SOURCE_RUNNER;
    assert_int_equal(store_append(s, &ev, 0, NULL), 0);
    safetensors_close(sf);
}

/* ------------------------------------------------------------------ the cases */

typedef enum fkind { F_COPY, F_NOISE, F_MERGE, F_HONEST, F_BASE, F_PARTLY } fkind;

typedef struct ckcase {
    const char *name;
    fkind kind;
    double t;             /* merge weight of the reference; noise scale (× SIG_D) for F_NOISE */
    safetensors_dtype dt; /* of base, reference and final */
    writer wr;            /* who wrote the weights */
    bool no_ref;          /* audit without --reference */
    bool odd_shape;       /* the final's tensor 0 has another shape */
    bool no_folder;       /* no frozen folder: the event (hashes of the reference) only */
    bool no_checkpoint;   /* no checkpoint event, no folder */
    const char *config;   /* the final's config.json, NULL: the base's */
    const char *const *rules; /* rule=verdict (c, s, v), every ckpt finding, in any order */
    double alpha, cos, tol;   /* expected on the weights finding; tol < 0: not checked */
} ckcase;

static const char *const R_COPY[] = {"ckpt.identical_to_reference=v",
                                     "ckpt.derived_from_reference=v", NULL};
static const char *const R_COPY_CURL[] = {"ckpt.identical_to_reference=v",
                                          "ckpt.derived_from_reference=v",
                                          "ckpt.weights_downloaded=v", NULL};
static const char *const R_DERIVED[] = {"ckpt.derived_from_reference=v", NULL};
static const char *const R_CLEAN[] = {"ckpt.weights=c", NULL};
static const char *const R_BASE[] = {"ckpt.unchanged_from_base=s", "ckpt.weights=c", NULL};
static const char *const R_PARTLY[] = {"ckpt.partly_identical_to_reference=v",
                                       "ckpt.derived_from_reference=v", NULL};
static const char *const R_CURL_NOREF[] = {"ckpt.weights=c", "ckpt.weights_downloaded=s", NULL};
static const char *const R_EVENT_ONLY[] = {"ckpt.identical_to_reference=v", "ckpt.weights=c", NULL};
static const char *const R_ARCH[] = {"ckpt.weights=c", "ckpt.architecture_changed=s", NULL};
static const char *const R_NONE[] = {"ckpt.no_checkpoint=c", NULL};

/* cos of (1-t)·Δft + t·Δi with Δi, Δft independent of equal norm */
/* cos of a merge t·reference + (1-t)·independent fine-tuning of the same norm:
 * t / sqrt((1 - t)^2 + t^2), written out (clang does not fold sqrt in an initializer) */

static const ckcase cases[] = {
    {"copy", F_COPY, 0, SAFETENSORS_F32, W_TRAIN, false, false, false, false, NULL, R_COPY, 1, 1,
     1e-9},
    {"copy, downloaded by curl", F_COPY, 0, SAFETENSORS_F32, W_CURL, false, false, false, false,
     NULL, R_COPY_CURL, 1, 1, 1e-9},
    /* noise of 1.5 ‖Δi‖: cos = 1/sqrt(1 + 1.5²) = 0.555, below CKPT_COS_MIN: the spread decides */
    {"noised copy", F_NOISE, 1.5, SAFETENSORS_F32, W_TRAIN, false, false, false, false, NULL,
     R_DERIVED, 1, 0.5547, 0.03},
    {"noised copy, small noise", F_NOISE, 0.3, SAFETENSORS_F32, W_TRAIN, false, false, false, false,
     NULL, R_DERIVED, 1, 0.9578, 0.02},
    {"merge 0.3", F_MERGE, 0.3, SAFETENSORS_F32, W_TRAIN, false, false, false, false, NULL,
     R_DERIVED, 0.3, 0.393919, 0.02},
    {"merge 0.5", F_MERGE, 0.5, SAFETENSORS_F32, W_TRAIN, false, false, false, false, NULL,
     R_DERIVED, 0.5, 0.707107, 0.02},
    {"merge 0.7", F_MERGE, 0.7, SAFETENSORS_F32, W_TRAIN, false, false, false, false, NULL,
     R_DERIVED, 0.7, 0.919145, 0.02},
    {"merge 0.1 (below the threshold)", F_MERGE, 0.1, SAFETENSORS_F32, W_TRAIN, false, false, false,
     false, NULL, R_CLEAN, 0.1, 0.110432, 0.02},
    {"honest fine-tuning", F_HONEST, 0, SAFETENSORS_F32, W_TRAIN, false, false, false, false, NULL,
     R_CLEAN, 0, 0, 0.02},
    {"unchanged base", F_BASE, 0, SAFETENSORS_F32, W_TRAIN, false, false, false, false, NULL,
     R_BASE, 0, 0, 1e-9},
    {"partial copy", F_PARTLY, 0, SAFETENSORS_F32, W_TRAIN, false, false, false, false, NULL,
     R_PARTLY, -1, -1, -1},
    {"merge 0.5, BF16", F_MERGE, 0.5, SAFETENSORS_BF16, W_TRAIN, false, false, false, false, NULL,
     R_DERIVED, 0.5, 0.707107, 0.03},
    {"merge 0.5, F16", F_MERGE, 0.5, SAFETENSORS_F16, W_TRAIN, false, false, false, false, NULL,
     R_DERIVED, 0.5, 0.707107, 0.03},
    {"honest, BF16", F_HONEST, 0, SAFETENSORS_BF16, W_TRAIN, false, false, false, false, NULL,
     R_CLEAN, 0, 0, 0.03},
    {"copy, F16", F_COPY, 0, SAFETENSORS_F16, W_TRAIN, false, false, false, false, NULL, R_COPY, 1,
     1, 1e-9},
    {"honest, a tensor of another shape", F_HONEST, 0, SAFETENSORS_F32, W_TRAIN, false, true, false,
     false, NULL, R_CLEAN, 0, 0, 0.02},
    {"downloaded, no reference", F_HONEST, 0, SAFETENSORS_F32, W_CURL, true, false, false, false,
     NULL, R_CURL_NOREF, -1, -1, -1},
    {"checkpoint event of the reference, no folder", F_COPY, 0, SAFETENSORS_F32, W_TRAIN, false,
     false, true, false, NULL, R_EVENT_ONLY, -1, -1, -1},
    {"another architecture", F_HONEST, 0, SAFETENSORS_F32, W_TRAIN, false, false, false, false,
     "{\"model_type\": \"other\", \"hidden_size\": 128, \"layers\": 48}\n", R_ARCH, 0, 0, 0.02},
    {"copy, downloaded to /tmp, then cp", F_COPY, 0, SAFETENSORS_F32, W_CURL_CP, false, false,
     false, false, NULL, R_COPY_CURL, 1, 1, 1e-9},
    {"fetched by a python script, no reference", F_HONEST, 0, SAFETENSORS_F32, W_PYNET, true, false,
     false, false, NULL, R_CURL_NOREF, -1, -1, -1},
    {"no checkpoint", F_HONEST, 0, SAFETENSORS_F32, W_TRAIN, false, false, false, true, NULL,
     R_NONE, -1, -1, -1},
};

static char verdict_char(audit_verdict v)
{
    return v == AUDIT_VIOLATION ? 'v' : v == AUDIT_SUSPICIOUS ? 's' : 'c';
}

static const audit_finding *find_rule(const audit_report *rep, const char *rule)
{
    for (size_t i = 0; i < rep->n; i++)
        if (!strcmp(rep->f[i].rule, rule))
            return &rep->f[i];
    return NULL;
}

static void check_stored(const ckcase *c, const char *dir, const char *base, const char *ref,
                         const char *st, const audit_report *exact);

/* stored: also keep the reference with ptb refs (a sketch of SKETCH_K per tensor), move its
 * folder away and audit again from what was kept (check_stored) */
static void run_case(const ckcase *c, int idx, bool stored)
{
    char dir[256], ws[300], base[300], ref[300], fin[300], st[300];
    snprintf(dir, sizeof dir, "%s/case%02d", tmp, idx);
    snprintf(ws, sizeof ws, "%s/workspace", dir);
    snprintf(base, sizeof base, "%s/base", dir);
    snprintf(ref, sizeof ref, "%s/ref", dir);
    snprintf(fin, sizeof fin, "%s/final_model", dir);
    snprintf(st, sizeof st, "%s/run.ptb", dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    mkdir(ws, 0755);
    /* base, reference = base + Δi, the final */
    model b, r, f, d;
    model_alloc(&b), model_alloc(&r), model_alloc(&f), model_alloc(&d);
    model_noise(&b, NULL, SIG_W, 1000 + (uint64_t)idx);
    model_noise(&r, &b, SIG_D, 2000 + (uint64_t)idx);
    model_noise(&d, &b, SIG_D, 3000 + (uint64_t)idx); /* base + an independent fine-tune */
    for (int t = 0; t < NT; t++)
        for (size_t j = 0; j < rows(t) * COLS; j++) {
            float v = d.w[t][j];
            switch (c->kind) {
            case F_COPY: v = r.w[t][j]; break;
            case F_NOISE: v = r.w[t][j] + (d.w[t][j] - b.w[t][j]) * (float)c->t; break;
            case F_MERGE: v = (float)((1 - c->t) * d.w[t][j] + c->t * r.w[t][j]); break;
            case F_HONEST: break;
            case F_BASE: v = b.w[t][j]; break;
            case F_PARTLY: v = t % 4 ? r.w[t][j] : d.w[t][j]; break;
            }
            f.w[t][j] = v;
        }
    model_write(base, &b, c->dt, false, NULL);
    model_write(ref, &r, c->dt, false, NULL);
    if (!c->no_folder && !c->no_checkpoint)
        model_write(fin, &f, c->dt, c->odd_shape, c->config);
    model_free(&b), model_free(&r), model_free(&f), model_free(&d);
    /* the store */
    store *s;
    assert_int_equal(store_open(st, NULL, STORE_CREATE, &s), 0);
    if (!c->no_checkpoint) {
        put_writer(s, ws, c->wr);
        put_checkpoint(s, ws, c->no_folder ? ref : fin);
    }
    assert_int_equal(store_close(s), 0);
    /* the audit */
    const char *refs[] = {ref, NULL};
    audit_options o = {.base = base, .references = c->no_ref ? NULL : refs};
    audit_run run;
    ptb_errbuf eb = {{0}};
    assert_int_equal(audit_run_open(&run, st, &o, &eb), 0);
    audit_report rep = {0};
    assert_int_equal(audit_ckpt(&run, &rep), 0);
    audit_run_close(&run);
    printf("-- %s\n", c->name);
    for (size_t i = 0; i < rep.n; i++)
        printf("   %s %s: %s\n      matched: %s\n      unavailable: %s\n", rep.f[i].rule,
               audit_verdict_name(rep.f[i].verdict), rep.f[i].summary,
               rep.f[i].matched ? rep.f[i].matched : "-",
               rep.f[i].unavailable ? rep.f[i].unavailable : "-");
    /* exactly the expected rules */
    size_t n = 0;
    for (const char *const *e = c->rules; *e; e++, n++) {
        char rule[128];
        snprintf(rule, sizeof rule, "%s", *e);
        char *eq = strchr(rule, '=');
        *eq = 0;
        const audit_finding *fd = find_rule(&rep, rule);
        if (!fd)
            fail_msg("%s: no finding %s", c->name, rule);
        assert_int_equal(verdict_char(fd->verdict), eq[1]);
        assert_string_equal(fd->detector, "ckpt");
    }
    if (rep.n != n)
        fail_msg("%s: %zu findings, expected %zu", c->name, rep.n, n);
    /* α and cos of the weights finding */
    const audit_finding *w = find_rule(&rep, "ckpt.derived_from_reference");
    if (!w)
        w = find_rule(&rep, "ckpt.weights");
    if (c->tol >= 0) {
        assert_non_null(w);
        assert_non_null(w->matched);
        const char *a = strstr(w->matched, ": alpha ");
        assert_non_null(a);
        double alpha, cs, spread, neff;
        assert_int_equal(
            sscanf(a, ": alpha %lf cos %lf spread %lf n_eff %lf", &alpha, &cs, &spread, &neff), 4);
        printf("   alpha %.4f (expected %.4f) cos %.4f (expected %.4f) spread %.3f n_eff %.1f\n",
               alpha, c->alpha, cs, c->cos, spread, neff);
        assert_true(fabs(alpha - c->alpha) <= c->tol);
        assert_true(fabs(cs - c->cos) <= c->tol);
        assert_true(neff > 30);
    }
    /* what each case must also say */
    if (c->odd_shape) {
        assert_non_null(strstr(w->matched, "1 tensors not compared: layer.00.w (shape 16x64"));
        assert_non_null(strstr(w->summary, "some not compared"));
    }
    if (c->no_ref)
        assert_non_null(strstr(w->unavailable, "no reference checkpoint (give --reference DIR, "
                                               "or keep one with ptb refs add)"));
    if (c->no_folder)
        assert_non_null(strstr(w->unavailable, "the frozen checkpoint's weights"));
    if (c->no_checkpoint)
        assert_string_equal(rep.f[0].unavailable, "the final checkpoint");
    static const char *const cmd[] = {"(python3 train.py", "(curl -sSfL", "(curl -sSfL",
                                      "(python3 fetch.py"};
    if (!c->no_checkpoint && w) {
        assert_non_null(strstr(w->summary, c->wr == W_TRAIN ? "which read the base weights"
                                                            : "did not read the base weights"));
        assert_non_null(strstr(w->summary, cmd[c->wr]));
        if (c->wr == W_CURL_CP)
            assert_non_null(strstr(
                w->summary, "into /tmp/dl/model.safetensors (then copied into final_model/)"));
    }
    const audit_finding *dl = find_rule(&rep, "ckpt.weights_downloaded");
    assert_true(!dl == (c->wr == W_TRAIN || c->no_checkpoint));
    if (dl) {
        assert_non_null(strstr(dl->summary, c->wr == W_PYNET
                                                ? "written by exec 7 (a process that connected "
                                                  "out: python3 fetch.py)"
                                                : "written by exec 7 (curl)"));
        assert_non_null(strstr(dl->summary, "from hub.example"));
        assert_non_null(strstr(dl->query, "--lineage "));
    }
    const audit_finding *ar = find_rule(&rep, "ckpt.architecture_changed");
    if (ar)
        assert_non_null(strstr(ar->matched, "model_type: base \"toy\", final \"other\"; "
                                            "hidden_size: base 64, final 128"));
    const audit_finding *id = find_rule(&rep, "ckpt.identical_to_reference");
    if (id) {
        assert_true(id->confidence == 1);
        assert_non_null(strstr(id->matched, "48 of 48 tensors"));
        assert_non_null(strstr(id->matched, "file model.safetensors sha256 "));
        assert_int_equal(id->n_seqs, 1);
    }
    if (stored)
        check_stored(c, dir, base, ref, st, &rep);
    audit_report_free(&rep);
}

static void test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        run_case(&cases[i], (int)i, false);
}

/* ------------------------------------------------------------------ stored references */

#define SKETCH_K                                                                                   \
    2048 /* floats per tensor: tensor 0 (2048 elements) kept exactly, the others
                         (2560..5632) sketched */

/* "alpha A cos C" of the weights finding (after "): alpha "), and the sketch's errors */
static void weights_numbers(const audit_report *rep, double *a, double *cs, double *sa, double *sc)
{
    const audit_finding *w = find_rule(rep, "ckpt.derived_from_reference");
    if (!w)
        w = find_rule(rep, "ckpt.weights");
    assert_non_null(w);
    assert_non_null(w->matched);
    const char *p = strstr(w->matched, "): alpha ");
    if (!p)
        p = strstr(w->matched, ": alpha ");
    assert_non_null(p);
    assert_int_equal(sscanf(strstr(p, "alpha "), "alpha %lf cos %lf", a, cs), 2);
    *sa = *sc = 0;
    const char *e = strstr(w->matched, "alpha +-");
    if (e)
        assert_int_equal(sscanf(e, "alpha +-%lf cos +-%lf", sa, sc), 2);
}

static audit_report audit_with(const char *st, const audit_options *o)
{
    audit_run run;
    ptb_errbuf eb = {{0}};
    assert_int_equal(audit_run_open(&run, st, o, &eb), 0);
    audit_report rep = {0};
    assert_int_equal(audit_ckpt(&run, &rep), 0);
    audit_run_close(&run);
    return rep;
}

/* The same rules and verdicts from the stored reference as from its folder; α and cos within
 * 4 standard errors of the sketch (as the finding states them) of the exact ones. */
static void check_stored(const ckcase *c, const char *dir, const char *base, const char *ref,
                         const char *st, const audit_report *exact)
{
    char refs[300], gone[320];
    snprintf(refs, sizeof refs, "%s/refs", dir);
    audit_refs_added ad;
    ptb_errbuf eb = {{0}};
    assert_int_equal(audit_refs_add(refs, "instruct", ref, base, SKETCH_K, 42, &ad, &eb), 0);
    assert_int_equal(ad.tensors, NT);
    assert_int_equal(ad.compared, NT);
    /* the folder still there: exact, the very numbers of --reference */
    audit_options o = {.base = base, .refs_dir = refs};
    audit_report rep = audit_with(st, &o);
    double a0, c0, sa, sc, a1, c1;
    weights_numbers(exact, &a0, &c0, &sa, &sc);
    weights_numbers(&rep, &a1, &c1, &sa, &sc);
    assert_true(a1 == a0 && c1 == c0 && sa == 0);
    audit_report_free(&rep);
    /* gone: the hashes and the sketch */
    snprintf(gone, sizeof gone, "%s.gone", ref);
    assert_int_equal(rename(ref, gone), 0);
    rep = audit_with(st, &o);
    for (size_t i = 0; i < exact->n; i++) {
        const audit_finding *f = find_rule(&rep, exact->f[i].rule);
        if (!f)
            fail_msg("%s, stored: no finding %s", c->name, exact->f[i].rule);
        assert_int_equal(f->verdict, exact->f[i].verdict);
    }
    assert_int_equal(rep.n, exact->n);
    weights_numbers(&rep, &a1, &c1, &sa, &sc);
    printf("   stored (sketch %d): alpha %.4f (exact %.4f, +-%.4f) cos %.4f (exact %.4f, +-%.4f)\n",
           SKETCH_K, a1, a0, sa, c1, c0, sc);
    assert_true(sa > 0 && sc > 0);
    assert_true(fabs(a1 - a0) <= 4 * sa + 1e-6);
    assert_true(fabs(c1 - c0) <= 4 * sc + 1e-6);
    const audit_finding *w = find_rule(&rep, "ckpt.derived_from_reference");
    assert_non_null(strstr((w ? w : find_rule(&rep, "ckpt.weights"))->summary, "instruct ("));
    audit_report_free(&rep);
    /* the same base only: another base's tensors are not compared with the sketch */
    assert_int_equal(rename(gone, ref), 0);
}

static void test_stored(void **state)
{
    (void)state;
    static const size_t which[] = {0, 2, 3, 4, 5, 6, 7, 8, 11, 13};
    for (size_t i = 0; i < sizeof which / sizeof *which; i++)
        run_case(&cases[which[i]], 100 + (int)which[i], true);
}

/* ptb refs add, list (names), open, rm, and their errors */
static void test_refs(void **state)
{
    (void)state;
    char d[200], refs[300], base[300], ref[300], notst[300];
    snprintf(d, sizeof d, "%s/refs-cli", tmp);
    snprintf(refs, sizeof refs, "%s/kept/a/b", d);
    snprintf(base, sizeof base, "%s/base", d);
    snprintf(ref, sizeof ref, "%s/ref", d);
    snprintf(notst, sizeof notst, "%s/empty", d);
    assert_int_equal(mkdir(d, 0755), 0);
    assert_int_equal(mkdir(notst, 0755), 0);
    model b, r;
    model_alloc(&b), model_alloc(&r);
    model_noise(&b, NULL, SIG_W, 1);
    model_noise(&r, &b, SIG_D, 2);
    model_write(base, &b, SAFETENSORS_BF16, false, NULL);
    model_write(ref, &r, SAFETENSORS_BF16, false, NULL);
    model_free(&b), model_free(&r);
    ptb_errbuf eb = {{0}};
    audit_refs_added ad;
    char **names;
    size_t n;
    assert_int_equal(audit_refs_names(refs, &names, &n, &eb), 0); /* no folder yet: empty */
    assert_int_equal(n, 0);
    assert_int_equal(audit_refs_add(refs, "a", ref, base, 0, 7, &ad, &eb), 0);
    assert_int_equal(ad.compared, NT);
    assert_int_equal(audit_refs_add(refs, "b-1.x", ref, NULL, 0, 0, &ad, &eb), 0);
    assert_int_equal(ad.compared, 0);
    assert_int_equal(audit_refs_add(refs, "a", ref, base, 0, 0, &ad, &eb), PTB_EEXIST);
    assert_non_null(strstr(eb.msg, "already stored"));
    assert_int_equal(audit_refs_add(refs, ".x", ref, base, 0, 0, &ad, &eb), PTB_EINVAL);
    assert_int_equal(audit_refs_add(refs, "a/b", ref, base, 0, 0, &ad, &eb), PTB_EINVAL);
    assert_int_equal(audit_refs_add(refs, "c", notst, base, 0, 0, &ad, &eb), PTB_ENOTFOUND);
    assert_non_null(strstr(eb.msg, "not a safetensors checkpoint folder"));
    assert_int_equal(audit_refs_add(refs, "c", ref, notst, 0, 0, &ad, &eb), PTB_ENOTFOUND);
    assert_non_null(strstr(eb.msg, "--base"));
    assert_int_equal(audit_refs_add(refs, "c", "/nonexistent/x", base, 0, 0, &ad, &eb), -ENOENT);
    assert_int_equal(audit_refs_names(refs, &names, &n, &eb), 0);
    assert_int_equal(n, 2);
    assert_string_equal(names[0], "a");
    assert_string_equal(names[1], "b-1.x");
    audit_refs_names_free(names, n);
    audit_ref *kr;
    assert_int_equal(audit_ref_open(refs, "a", &kr, &eb), 0);
    assert_int_equal(kr->n, NT);
    assert_int_equal(kr->seed, 7);
    assert_non_null(kr->base);
    const audit_ref_tensor *t = audit_ref_find(kr, "layer.07.w");
    assert_non_null(t);
    assert_true(t->has_delta && t->k == AUDIT_REFS_SKETCH_DEFAULT - 16384 + rows(7) * COLS);
    assert_true(t->ii > 0);
    audit_ref_close(kr);
    /* the same from bytes (the fuzzer's entry): accepted whole, refused cut */
    char *jb = NULL, *sb = NULL;
    size_t jl = 0, sl = 0;
    char p2[400];
    snprintf(p2, sizeof p2, "%s/a/ref.json", refs);
    FILE *jf = fopen(p2, "rb");
    assert_non_null(jf);
    assert_int_equal(getdelim(&jb, &jl, 0, jf) > 0, 1);
    jl = strlen(jb);
    fclose(jf);
    snprintf(p2, sizeof p2, "%s/a/sketch.safetensors", refs);
    FILE *sf = fopen(p2, "rb");
    assert_non_null(sf);
    fseek(sf, 0, SEEK_END);
    sl = (size_t)ftell(sf);
    rewind(sf);
    assert_non_null(sb = malloc(sl));
    assert_int_equal(fread(sb, 1, sl, sf), sl);
    fclose(sf);
    assert_int_equal(audit_ref_parse("a", jb, jl, sb, sl, &kr, &eb), 0);
    assert_int_equal(kr->n, NT);
    audit_ref_close(kr);
    assert_int_equal(audit_ref_parse("b", jb, jl, sb, sl, &kr, &eb), PTB_ECORRUPT); /* its name */
    assert_int_equal(audit_ref_parse("a", jb, jl / 2, sb, sl, &kr, &eb), PTB_ECORRUPT);
    assert_int_equal(audit_ref_parse("a", jb, jl, sb, sl / 2, &kr, &eb), PTB_ECORRUPT);
    free(jb), free(sb);
    assert_int_equal(audit_ref_open(refs, "b-1.x", &kr, &eb), 0);
    assert_null(kr->base);
    assert_false(kr->t[0].has_delta);
    audit_ref_close(kr);
    /* a damaged ref.json is corrupt, not trusted */
    char p[400];
    snprintf(p, sizeof p, "%s/a/ref.json", refs);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("{\"version\": 1, \"name\": \"a\", \"tensors\": 3}", f);
    fclose(f);
    assert_int_equal(audit_ref_open(refs, "a", &kr, &eb), PTB_ECORRUPT);
    assert_int_equal(audit_refs_rm(refs, "a", &eb), 0);
    assert_int_equal(audit_refs_rm(refs, "a", &eb), PTB_ENOTFOUND);
    assert_int_equal(audit_ref_open(refs, "a", &kr, &eb), PTB_ENOTFOUND);
    assert_int_equal(audit_refs_names(refs, &names, &n, &eb), 0);
    assert_int_equal(n, 1);
    audit_refs_names_free(names, n);
    /* the folder: --refs, else PTB_REFS_DIR, else XDG_DATA_HOME, else HOME */
    char out[512];
    assert_int_equal(audit_refs_dir("/x", out, sizeof out, &eb), 0);
    assert_string_equal(out, "/x");
    setenv("PTB_REFS_DIR", "/y", 1);
    assert_int_equal(audit_refs_dir(NULL, out, sizeof out, &eb), 0);
    assert_string_equal(out, "/y");
    unsetenv("PTB_REFS_DIR");
    setenv("XDG_DATA_HOME", "/z", 1);
    assert_int_equal(audit_refs_dir(NULL, out, sizeof out, &eb), 0);
    assert_string_equal(out, "/z/ptb/refs");
    unsetenv("XDG_DATA_HOME");
    setenv("HOME", "/h", 1);
    assert_int_equal(audit_refs_dir(NULL, out, sizeof out, &eb), 0);
    assert_string_equal(out, "/h/.local/share/ptb/refs");
}

/* The CPU's sums do not depend on the number of threads (blocks added in order). */
static void test_threads(void **state)
{
    (void)state;
    size_t n = 3 * AUDIT_CKPT_CHUNK + 12345;
    float *f = malloc(n * 4), *b = malloc(n * 4), *x = malloc(n * 4);
    assert_true(f && b && x);
    rng = 5;
    for (size_t j = 0; j < n; j++)
        b[j] = (float)gauss(), x[j] = b[j] + (float)(0.01 * gauss()),
        f[j] = b[j] + (float)(0.01 * gauss());
    audit_ckpt_dots d1 = {0}, d2 = {0};
    audit_ckpt_job j = {.f = f,
                        .b = b,
                        .x = x,
                        .fdt = SAFETENSORS_F32,
                        .bdt = SAFETENSORS_F32,
                        .xdt = SAFETENSORS_F32,
                        .n = n,
                        .out = &d1};
    assert_int_equal(audit_ckpt_dots_cpu(&j, 1, 1), 0);
    j.out = &d2;
    assert_int_equal(audit_ckpt_dots_cpu(&j, 1, 2), 0);
    assert_memory_equal(&d1, &d2, sizeof d1);
    free(f), free(b), free(x);
}

/* A finding that is not added leaves the report as it was: the detector's findings are appended
 * after those already there. */
static void test_appends(void **state)
{
    (void)state;
    char st[300];
    snprintf(st, sizeof st, "%s/empty.ptb", tmp);
    store *s;
    assert_int_equal(store_open(st, NULL, STORE_CREATE, &s), 0);
    assert_int_equal(store_close(s), 0);
    audit_options o = {0};
    audit_run run;
    ptb_errbuf eb = {{0}};
    assert_int_equal(audit_run_open(&run, st, &o, &eb), 0);
    audit_report rep = {0};
    assert_int_equal(
        audit_add(&rep, "keys", "keys.clean", AUDIT_CLEAN, 1, "x", NULL, 0, NULL, NULL, NULL), 0);
    assert_int_equal(audit_ckpt(&run, &rep), 0);
    audit_run_close(&run);
    assert_int_equal(rep.n, 2);
    assert_string_equal(rep.f[0].rule, "keys.clean");
    assert_string_equal(rep.f[1].rule, "ckpt.no_checkpoint");
    audit_report_free(&rep);
}

static int setup(void **state)
{
    (void)state;
    strcpy(tmp, "/tmp/test_audit_ckpt.XXXXXX");
    return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases), cmocka_unit_test(test_appends), cmocka_unit_test(test_stored),
        cmocka_unit_test(test_refs),  cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
