/* ptb audit's test-set leakage detector, the run's events (audit_leak_run.h): the agent phase's
 * processes (argv, training processes, fetches of a test split), files (opens, reads, writes,
 * renames; the test split's path opened), network, and tool calls, each read once by type; then
 * the content units -- captured files' blobs and tool calls' texts -- scanned against the test
 * split (audit_leak_scan.c). What is read and why is in audit_leak.c's top comment. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "audit_leak_run.h"

/* ------------------------------------------------------------------ small helpers */

void sb_printf(sb *b, const char *fmt, ...)
{
    if (b->oom || b->n >= LK_TEXT_MAX)
        return;
    if (!b->s) {
        if (!(b->s = malloc(LK_TEXT_MAX + 1))) {
            b->oom = true;
            return;
        }
        b->cap = LK_TEXT_MAX + 1;
        b->s[0] = 0;
    }
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    if (k > 0)
        b->n = b->n + (size_t)k < b->cap ? b->n + (size_t)k : b->cap - 1;
}

/* A shell word for s: as is when it has only safe characters, else in single quotes. */
void sb_shell(sb *b, const char *s)
{
    bool safe = *s != 0;
    for (const char *p = s; *p && safe; p++)
        safe = isalnum((unsigned char)*p) || strchr("_./:=+-,@%", *p);
    if (safe) {
        sb_printf(b, "%s", s);
        return;
    }
    sb_printf(b, "'");
    for (const char *p = s; *p; p++)
        if (*p == '\'')
            sb_printf(b, "'\\''");
        else
            sb_printf(b, "%c", *p);
    sb_printf(b, "'");
}

uint64_t fnv(const void *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ ((const uint8_t *)p)[i]) * LK_PRIME;
    return h;
}

static uint64_t *u64map_slot(u64map *m, uint64_t key, bool *found)
{
    size_t i = lk_mix64(key) & (m->cap - 1);
    while (m->k[i] && m->k[i] != key)
        i = (i + 1) & (m->cap - 1);
    *found = m->k[i] == key;
    return &m->k[i];
}

static int u64map_put(u64map *m, uint64_t key, uint32_t val)
{
    if (2 * (m->n + 1) > m->cap) {
        u64map g = {calloc(m->cap ? 2 * m->cap : 64, 8), NULL, m->cap ? 2 * m->cap : 64, 0};
        g.v = malloc(g.cap * sizeof *g.v);
        if (!g.k || !g.v) {
            free(g.k), free(g.v);
            return PTB_ENOMEM;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->k[i]) {
                bool f;
                uint64_t *s = u64map_slot(&g, m->k[i], &f);
                *s = m->k[i];
                g.v[s - g.k] = m->v[i];
                g.n++;
            }
        free(m->k), free(m->v);
        *m = g;
    }
    bool f;
    uint64_t *s = u64map_slot(m, key, &f);
    if (!f)
        m->n++;
    *s = key;
    m->v[s - m->k] = val;
    return 0;
}

bool u64map_get(const u64map *m, uint64_t key, uint32_t *val)
{
    if (!m->cap)
        return false;
    bool f;
    uint64_t *s = u64map_slot((u64map *)m, key, &f);
    if (f)
        *val = m->v[s - m->k];
    return f;
}

void u64map_free(u64map *m)
{
    free(m->k), free(m->v);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------ the run's events */

static bool in_phase(leak *L, uint64_t seq)
{
    return !L->r->agent_begin ||
           (seq > L->r->agent_begin && (!L->r->agent_end || seq < L->r->agent_end));
}

/* The agent CLI: the harness, or a process whose children a tool call started. Its network
 * traffic is the model's API, and its argv the task's prompt: neither a download nor training. */
bool is_agent(leak *L, uint64_t exec)
{
    uint32_t v;
    return exec && (exec == L->r->harness_exec || u64map_get(&L->agent_map, exec, &v));
}

lk_proc *proc_get(leak *L, uint64_t exec_id)
{
    uint32_t i;
    return exec_id && u64map_get(&L->proc_map, exec_id, &i) ? &L->proc[i] : NULL;
}

static int32_t path_find(leak *L, const char *p)
{
    uint64_t h = fnv(p, strlen(p)) | 1;
    uint32_t i;
    return u64map_get(&L->path_map, h, &i) && !strcmp(L->path[i].path, p) ? (int32_t)i : -1;
}

static int32_t path_add(leak *L, const char *p)
{
    int32_t i = path_find(L, p);
    if (i >= 0)
        return i;
    if (lk_grow(&L->path, &L->cpath, L->npath, sizeof *L->path) || !(p = strdup(p))) {
        L->rc = PTB_ENOMEM;
        return -1;
    }
    L->path[L->npath] = (lk_path){(char *)p, -1, -1, -1, false};
    if (u64map_put(&L->path_map, fnv(p, strlen(p)) | 1, (uint32_t)L->npath)) {
        free((char *)p);
        L->rc = PTB_ENOMEM;
        return -1;
    }
    return (int32_t)L->npath++;
}

const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Is s[i..] the word "test" (no letter on either side)? */
static bool test_word(const char *s, size_t n, size_t i)
{
    return i + 4 <= n && !strncasecmp(s + i, "test", 4) &&
           (i == 0 || !isalpha((unsigned char)s[i - 1])) &&
           (i + 4 == n || !isalpha((unsigned char)s[i + 4]));
}

/* A dataset hub download of a test split named in s[0..n): a URL with /datasets/ and a word
 * "test" in its path, or split = "test". What matched goes to what. */
static bool names_test_fetch(const char *s, size_t n, char *what, size_t cap)
{
    for (size_t i = 0; i < n; i++) {
        if (i + 10 <= n && !strncasecmp(s + i, "/datasets/", 10)) {
            size_t e = i + 10;
            while (e < n && !isspace((unsigned char)s[e]) && !strchr("\"'<>`|;)\\", s[e]))
                e++;
            for (size_t k = i + 10; k < e; k++)
                if (test_word(s, e, k)) {
                    size_t b = i, o = 0;
                    while (b > 0 && !isspace((unsigned char)s[b - 1]) &&
                           !strchr("\"'<>`|;(\\", s[b - 1]))
                        b--;
                    for (size_t h = b; h + 4 <= i; h++)
                        if (!strncasecmp(s + h, "http", 4)) {
                            b = h; /* ${HF_ENDPOINT:-https://...}/datasets/...: from the URL */
                            break;
                        }
                    for (size_t c = b; c < e && o + 1 < cap; c++)
                        if (s[c] != '}')
                            what[o++] = s[c];
                    what[o] = 0;
                    return true;
                }
        }
        if (i + 5 <= n && !strncasecmp(s + i, "split", 5)) {
            size_t k = i + 5;
            while (k < n && (s[k] == ' ' || s[k] == '\\' || s[k] == '"' || s[k] == '\''))
                k++;
            if (k < n && (s[k] == '=' || s[k] == ':')) {
                k++;
                while (k < n && (s[k] == ' ' || s[k] == '\\' || s[k] == '"' || s[k] == '\''))
                    k++;
                if (test_word(s, n, k)) {
                    size_t b = i > 40 ? i - 40 : 0;
                    snprintf(what, cap, "%.*s", (int)(k + 4 - b), s + b);
                    for (char *c = what; *c; c++)
                        if (*c == '\n' || *c == '\r')
                            *c = ' ';
                    return true;
                }
            }
        }
    }
    return false;
}

/* Does a word of s (a command line, a tool input) name a training program? */
static bool names_training(const char *s)
{
    static const char *const kws[] = {"train",    "pretrain", "posttrain", "finetun", "fine-tun",
                                      "fine_tun", "sft",      "dpo",       "grpo",    NULL};
    static const char *const data[] = {".jsonl",   ".json",  ".csv", ".tsv", ".txt",
                                       ".parquet", ".arrow", ".gz",  NULL};
    const char *sep = " \t\r\n\"'`;|&(){}[],=<>:";
    for (const char *p = s; *p;) {
        size_t l = strcspn(p, sep);
        if (l && p[0] != '-' && l < 512) {
            char w[512];
            memcpy(w, p, l);
            w[l] = 0;
            const char *b = base_name(w);
            size_t bl = strlen(b);
            bool is_data = false;
            for (size_t d = 0; data[d] && !is_data; d++) {
                size_t dl = strlen(data[d]);
                is_data = bl > dl && !strcasecmp(b + bl - dl, data[d]);
            }
            for (size_t k = 0; !is_data && k < bl; k++)
                if (k == 0 || !isalpha((unsigned char)b[k - 1]))
                    for (size_t q = 0; kws[q]; q++)
                        if (!strncasecmp(b + k, kws[q], strlen(kws[q])))
                            return true;
        }
        p += l;
        p += strspn(p, sep);
    }
    return false;
}

static bool loopback(const char *ip)
{
    return !ip || !*ip || !strncmp(ip, "127.", 4) || !strcmp(ip, "::1") || !strcmp(ip, "0.0.0.0");
}

static void proc_net(leak *L, uint64_t exec, uint64_t seq, const char *host, bool is_name)
{
    lk_proc *p = proc_get(L, exec);
    if (!p || !host || !*host)
        return;
    if (!p->net_seq || seq < p->net_seq)
        p->net_seq = seq;
    if (!p->host || (is_name && !p->host_is_name)) {
        free(p->host);
        p->host = strdup(host);
        p->host_is_name = is_name;
    }
}

static int cur_open(leak *L, uint32_t body, bool phase, store_cursor **c)
{
    store_range rg = {.by_index = true, .index = STORE_IX_TYPE, .key = store_type_key(body)};
    if (phase && L->r->agent_begin) {
        rg.seq_from = L->r->agent_begin;
        rg.seq_to = L->r->agent_end;
    }
    return store_cursor_open(L->r->t, &rg, c);
}

/* Processes: argv, parent, whether they train (by argv). */
int collect_procs(leak *L)
{
    store_cursor *c;
    int rc = cur_open(L, C(PROC_EXEC), false, &c);
    if (rc)
        return rc;
    const ptb_event *ev;
    while ((rc = store_cursor_next(c, &ev)) != PTB_ENOTFOUND) {
        if (rc)
            continue; /* an event that does not decode */
        const Ptb__V1__ProcExec *pe = ev->proc_exec;
        if (!ev->exec_id || proc_get(L, ev->exec_id))
            continue;
        char cmd[201];
        size_t n = 0;
        cmd[0] = 0;
        for (size_t a = 0; a < pe->n_argv && n < 200; a++)
            n += (size_t)snprintf(cmd + n, sizeof cmd - n, "%s%s", a ? " " : "",
                                  pe->argv[a] ? pe->argv[a] : "");
        if (n > 200)
            n = 200;
        for (size_t k = 0; k < n; k++)
            if ((unsigned char)cmd[k] < 0x20)
                cmd[k] = ' ';
        if (lk_grow(&L->proc, &L->cproc, L->nproc, sizeof *L->proc)) {
            rc = PTB_ENOMEM;
            break;
        }
        lk_proc *p = &L->proc[L->nproc];
        memset(p, 0, sizeof *p);
        p->exec_id = ev->exec_id;
        p->parent = pe->parent_exec_id;
        p->seq = ev->seq;
        p->first_write = -1;
        if (!(p->cmd = strdup(*cmd      ? cmd
                              : pe->exe ? pe->exe
                                        : "?")) ||
            u64map_put(&L->proc_map, ev->exec_id, (uint32_t)L->nproc)) {
            free(p->cmd);
            rc = PTB_ENOMEM;
            break;
        }
        L->nproc++;
        /* training: judged on the whole argv (the joined copy may be cut) */
        for (size_t a = 0; a < pe->n_argv && !p->train_seq; a++)
            if (pe->argv[a] && names_training(pe->argv[a]))
                p->train_seq = ev->seq;
        /* a dataset hub's test split named in the argv */
        char what[160];
        for (size_t a = 0; a < pe->n_argv; a++)
            if (pe->argv[a] && in_phase(L, ev->seq) &&
                names_test_fetch(pe->argv[a], strlen(pe->argv[a]), what, sizeof what)) {
                if (lk_grow(&L->fetch, &L->cfetch, L->nfetch, sizeof *L->fetch)) {
                    rc = PTB_ENOMEM;
                    break;
                }
                lk_fetch *f = &L->fetch[L->nfetch++];
                memset(f, 0, sizeof *f);
                f->seq = ev->seq;
                f->exec = ev->exec_id;
                snprintf(f->what, sizeof f->what, "%s", what);
                break;
            }
        if (rc == PTB_ENOMEM)
            break;
    }
    store_cursor_close(c);
    return rc == PTB_ENOTFOUND ? 0 : rc;
}

/* Network events of each process (any time: a flow is recorded when it ends). */
int collect_net(leak *L)
{
    const uint32_t kinds[] = {C(NET_CONNECT), C(NET_TLS), C(NET_FLOW), C(NET_HTTP)};
    for (size_t k = 0; k < 4; k++) {
        store_cursor *c;
        int rc = cur_open(L, kinds[k], false, &c);
        if (rc)
            return rc;
        const ptb_event *ev;
        while ((rc = store_cursor_next(c, &ev)) != PTB_ENOTFOUND) {
            if (rc || !ev->exec_id)
                continue;
            if (ev->body_case == C(NET_CONNECT)) {
                const Ptb__V1__NetConnect *nc = ev->net_connect;
                if (!nc->proto || !strncmp(nc->proto, "unix", 4) || !nc->remote ||
                    loopback(nc->remote->ip) || nc->remote->port == 53 ||
                    (nc->result < 0 && nc->result != -EINPROGRESS))
                    continue;
                bool named = nc->host && *nc->host;
                proc_net(L, ev->exec_id, ev->seq, named ? nc->host : nc->remote->ip, named);
            } else if (ev->body_case == C(NET_TLS))
                proc_net(L, ev->exec_id, ev->seq, ev->net_tls->host, true);
            else if (ev->body_case == C(NET_FLOW)) {
                const Ptb__V1__NetFlow *nf = ev->net_flow;
                if (nf->host && *nf->host)
                    proc_net(L, ev->exec_id, ev->seq, nf->host, true);
                else if (nf->dst && !loopback(nf->dst->ip) && nf->dst->port != 53)
                    proc_net(L, ev->exec_id, ev->seq, nf->dst->ip, false);
            } else if (ev->body_case == C(NET_HTTP))
                proc_net(L, ev->exec_id, ev->seq, ev->net_http->host, true);
        }
        store_cursor_close(c);
        if (rc != PTB_ENOTFOUND)
            return rc;
    }
    return 0;
}

static bool under_base_model(leak *L, const char *p)
{
    size_t l = strlen(p);
    if (l < 12 || strcmp(p + l - 12, ".safetensors"))
        return false;
    const char *b = L->r->base_model;
    size_t bl = b ? strlen(b) : 0;
    return (bl && !strncmp(p, b, bl) && p[bl] == '/') || strstr(p, "/base_model/");
}

/* An open or read of the test split, or of a file of the same name. */
static int note_split_open(leak *L, const ptb_event *ev, const char *p, int32_t result)
{
    if (!L->r->test_split || !in_phase(L, ev->seq))
        return 0;
    bool exact = !strcmp(p, L->r->test_split);
    if (!exact && strcmp(base_name(p), base_name(L->r->test_split)))
        return 0;
    if (lk_grow(&L->split_opens, &L->csplit, L->nsplit, sizeof *L->split_opens))
        return PTB_ENOMEM;
    L->split_opens[L->nsplit].seq = ev->seq;
    L->split_opens[L->nsplit].exec = ev->exec_id;
    L->split_opens[L->nsplit].result = result;
    L->split_opens[L->nsplit].exact = exact;
    L->split_opens[L->nsplit].path = exact ? -1 : path_add(L, p);
    L->nsplit++;
    return L->rc;
}

/* Writes and renames (the paths they make), then the opens and reads of those paths, of the
 * base model's weights, and of the test split. */
int collect_files(leak *L)
{
    store_cursor *c;
    const ptb_event *ev;
    int rc = cur_open(L, C(FILE_WRITE), true, &c);
    if (rc)
        return rc;
    while ((rc = store_cursor_next(c, &ev)) != PTB_ENOTFOUND && !L->rc) {
        if (rc || !ev->file_write->path)
            continue;
        int32_t pi = path_add(L, ev->file_write->path);
        if (pi < 0 || lk_grow(&L->write, &L->cwrite, L->nwrite, sizeof *L->write)) {
            L->rc = PTB_ENOMEM;
            break;
        }
        lk_proc *p = proc_get(L, ev->exec_id);
        L->write[L->nwrite] =
            (lk_write){ev->seq, ev->exec_id, (uint32_t)pi, p ? p->first_write : -1};
        if (p)
            p->first_write = (int32_t)L->nwrite;
        L->nwrite++;
        if (ev->file_write->sha256.len == 32 &&
            !memcmp(ev->file_write->sha256.data, L->ix.sha, 32) && L->have_ix)
            L->path[pi].split_copy = true;
    }
    store_cursor_close(c);
    if (L->rc)
        return L->rc;
    if ((rc = cur_open(L, C(FILE_RENAME), true, &c)))
        return rc;
    while ((rc = store_cursor_next(c, &ev)) != PTB_ENOTFOUND && !L->rc) {
        const Ptb__V1__FileRename *fr = rc ? NULL : ev->file_rename;
        if (!fr || !fr->path || !fr->new_path || fr->result < 0)
            continue;
        int32_t from = path_add(L, fr->path), to = path_add(L, fr->new_path);
        if (from < 0 || to < 0 || lk_grow(&L->ren, &L->cren, L->nren, sizeof *L->ren)) {
            L->rc = PTB_ENOMEM;
            break;
        }
        L->ren[L->nren] =
            (lk_rename){ev->seq, ev->exec_id, (uint32_t)to, L->path[from].first_rename};
        L->path[from].first_rename = (int32_t)L->nren++;
    }
    store_cursor_close(c);
    if (L->rc)
        return L->rc;
    const uint32_t kinds[] = {C(FILE_OPEN), C(FILE_READ)};
    for (size_t k = 0; k < 2 && !L->rc; k++) {
        if ((rc = cur_open(L, kinds[k], true, &c)))
            return rc;
        while ((rc = store_cursor_next(c, &ev)) != PTB_ENOTFOUND && !L->rc) {
            if (rc)
                continue;
            const char *p;
            int32_t result = 0;
            if (ev->body_case == C(FILE_OPEN)) {
                p = ev->file_open->path;
                result = ev->file_open->result;
                if (!p || (ev->file_open->flags & O_ACCMODE) == O_WRONLY)
                    continue;
            } else {
                p = ev->file_read->path;
                if (p && ev->file_read->sha256.len == 32 && L->have_ix &&
                    !memcmp(ev->file_read->sha256.data, L->ix.sha, 32) && path_find(L, p) >= 0)
                    L->path[path_find(L, p)].split_copy = true;
            }
            if (!p)
                continue;
            /* the base model's weights: the process loads the base (training, or inference) */
            lk_proc *pr = proc_get(L, ev->exec_id);
            if (result >= 0 && pr && !pr->train_seq && under_base_model(L, p))
                pr->train_seq = ev->seq;
            if (!in_phase(L, ev->seq))
                continue;
            if ((L->rc = note_split_open(L, ev, p, result)))
                break;
            int32_t pi = result >= 0 ? path_find(L, p) : -1;
            if (pi < 0)
                continue;
            if (lk_grow(&L->read, &L->cread, L->nread, sizeof *L->read)) {
                L->rc = PTB_ENOMEM;
                break;
            }
            L->read[L->nread] = (lk_read){ev->seq, ev->exec_id, L->path[pi].first_read};
            L->path[pi].first_read = (int32_t)L->nread++;
        }
        store_cursor_close(c);
    }
    return L->rc;
}

/* ------------------------------------------------------------------ content units */

static lk_unit *unit_new(leak *L, int kind, int32_t path)
{
    if (kind == U_FILE && L->path[path].unit >= 0)
        return &L->unit[L->path[path].unit];
    if (lk_grow(&L->unit, &L->cunit, L->nunit, sizeof *L->unit)) {
        L->rc = PTB_ENOMEM;
        return NULL;
    }
    lk_unit *u = &L->unit[L->nunit];
    memset(u, 0, sizeof *u);
    u->kind = kind;
    u->path = path;
    if (kind == U_FILE)
        L->path[path].unit = (int32_t)L->nunit;
    L->nunit++;
    return u;
}

static bool res_better(const lk_res *a, const lk_res *b)
{
    return a->full != b->full ? a->full > b->full : a->qonly + a->aonly > b->qonly + b->aonly;
}

static bool res_any(const lk_res *r)
{
    return r->full || r->qonly || r->aonly;
}

/* Record one version's result in unit u (the best version is kept). */
static void unit_result(lk_unit *u, const lk_res *res, uint64_t seq, uint64_t exec,
                        const uint8_t *sha, bool by_tool)
{
    if (!res_any(res))
        return;
    if (!res_any(&u->res) || res_better(res, &u->res)) {
        if (u->seq && u->n_seqs < 8)
            u->seqs[u->n_seqs++] = u->seq;
        u->res = *res;
        u->seq = seq;
        u->exec = exec;
        u->has_sha = sha != NULL;
        u->by_tool = by_tool;
        if (sha)
            memcpy(u->sha, sha, 32);
    } else if (u->n_seqs < 8)
        u->seqs[u->n_seqs++] = seq;
}

/* A blob's result: scanned once per blob (the first 8 bytes of its SHA-256 as the key). */
static int blob_result(leak *L, const uint8_t sha[32], lk_res *res)
{
    uint64_t k;
    memcpy(&k, sha, 8);
    k |= 1;
    uint32_t i;
    memset(res, 0, sizeof *res);
    if (u64map_get(&L->blob_map, k, &i)) {
        *res = L->bres[i];
        return 0;
    }
    void *data;
    size_t len;
    int rc = store_blob_get(L->r->t, sha, &data, &len);
    if (rc == PTB_ENOTFOUND || rc == PTB_ECORRUPT) {
        L->missing++; /* a gap (blob cap, budget) or damage: not content */
        return 0;
    }
    if (rc)
        return rc;
    L->blobs++;
    L->blob_bytes += len;
    rc = lk_scan_unit(&L->sc, data, len, res);
    free(data);
    if (!rc && !(rc = lk_grow(&L->bres, &L->cbres, L->nbres, sizeof *L->bres))) {
        L->bres[L->nbres] = *res;
        rc = u64map_put(&L->blob_map, k, (uint32_t)L->nbres++);
    }
    return rc;
}

/* The content of captured file writes. */
int scan_files(leak *L)
{
    store_cursor *c;
    int rc = cur_open(L, C(FILE_WRITE), true, &c);
    if (rc)
        return rc;
    const ptb_event *ev;
    while ((rc = store_cursor_next(c, &ev)) != PTB_ENOTFOUND) {
        if (rc)
            continue;
        const Ptb__V1__FileWrite *fw = ev->file_write;
        /* the runner's copy of the agent's stream: its tool events are scanned on their own */
        if (!fw->path || (!ev->exec_id && ev->source == PTB__V1__SOURCE__SOURCE_AGENT))
            continue;
        if (!fw->captured || fw->sha256.len != 32) {
            L->uncaptured += fw->size > 0;
            continue;
        }
        uint8_t sha[32];
        memcpy(sha, fw->sha256.data, 32);
        uint64_t seq = ev->seq, exec = ev->exec_id;
        char path[4096];
        snprintf(path, sizeof path, "%s", fw->path);
        lk_res res;
        if ((rc = blob_result(L, sha, &res)))
            break;
        int32_t pi = path_find(L, path);
        if (!res_any(&res) || pi < 0)
            continue;
        lk_unit *u = unit_new(L, U_FILE, pi);
        if (!u) {
            rc = PTB_ENOMEM;
            break;
        }
        unit_result(u, &res, seq, exec, sha, false);
    }
    store_cursor_close(c);
    return rc == PTB_ENOTFOUND ? 0 : rc;
}

/* The file a Write-like tool input names. */
static int32_t tool_path(leak *L, const char *name, const char *input)
{
    if (!input || !name || !strcmp(name, "Read"))
        return -1;
    json_t *j = json_loads(input, 0, NULL);
    const char *p = json_string_value(json_object_get(j, "file_path"));
    if (!p)
        p = json_string_value(json_object_get(j, "path"));
    bool content = json_object_get(j, "content") || json_object_get(j, "new_string") ||
                   json_object_get(j, "edits");
    int32_t pi = p && content && *p == '/' ? path_add(L, p) : -1;
    json_decref(j);
    return pi;
}

/* Tool calls and results, net.http bodies: their text and blobs. */
int scan_tools(leak *L)
{
    const uint32_t kinds[] = {C(TOOL_RESULT), C(TOOL_CALL), C(NET_HTTP)};
    for (size_t k = 0; k < 3; k++) {
        store_cursor *c;
        int rc = cur_open(L, kinds[k], true, &c);
        if (rc)
            return rc;
        const ptb_event *ev;
        while ((rc = store_cursor_next(c, &ev)) != PTB_ENOTFOUND) {
            if (rc)
                continue;
            const char *text = NULL, *call_id = NULL;
            const ProtobufCBinaryData *blob = NULL;
            int kind = U_TOOL;
            int32_t pi = -1;
            if (ev->body_case == C(TOOL_CALL)) {
                const Ptb__V1__ToolCall *tc = ev->tool_call;
                text = tc->input;
                blob = &tc->input_blob;
                call_id = tc->call_id;
                pi = tool_path(L, tc->name, text);
                if (L->rc) {
                    rc = L->rc;
                    break;
                }
                char what[160];
                if (text && names_test_fetch(text, strlen(text), what, sizeof what)) {
                    if (lk_grow(&L->fetch, &L->cfetch, L->nfetch, sizeof *L->fetch)) {
                        rc = PTB_ENOMEM;
                        break;
                    }
                    lk_fetch *f = &L->fetch[L->nfetch++];
                    memset(f, 0, sizeof *f);
                    f->seq = ev->seq;
                    snprintf(f->call_id, sizeof f->call_id, "%s", call_id ? call_id : "");
                    snprintf(f->what, sizeof f->what, "%s", what);
                }
                bool train = text && names_training(text);
                if (text && (train || !L->r->n_exec) && L->ntcall == LK_TCALL_MAX)
                    L->tcall_over++;
                else if (text && (train || !L->r->n_exec)) {
                    if (lk_grow(&L->tcall, &L->ctcall, L->ntcall, sizeof *L->tcall)) {
                        rc = PTB_ENOMEM;
                        break;
                    }
                    L->tcall[L->ntcall] = (lk_tcall){ev->seq, strndup(text, 4096), train};
                    if (!L->tcall[L->ntcall++].text) {
                        rc = PTB_ENOMEM;
                        break;
                    }
                }
            } else if (ev->body_case == C(TOOL_RESULT)) {
                const Ptb__V1__ToolResult *tr = ev->tool_result;
                text = tr->output;
                blob = &tr->output_blob;
                call_id = tr->call_id;
                /* the agent CLI: the parent of the call's first process */
                for (size_t e = 0; e < tr->n_exec_ids && !rc; e++) {
                    const lk_proc *p = proc_get(L, tr->exec_ids[e]);
                    bool inner = false;
                    for (size_t f = 0; p && f < tr->n_exec_ids; f++)
                        inner |= tr->exec_ids[f] == p->parent;
                    if (p && p->parent && !inner)
                        rc = u64map_put(&L->agent_map, p->parent, 1);
                }
                if (rc)
                    break;
                if (call_id && *call_id) {
                    if (lk_grow(&L->results, &L->cresults, L->nresults, sizeof *L->results)) {
                        rc = PTB_ENOMEM;
                        break;
                    }
                    L->results[L->nresults].seq = ev->seq;
                    L->results[L->nresults].n = tr->n_exec_ids < 8 ? tr->n_exec_ids : 8;
                    for (size_t e = 0; e < L->results[L->nresults].n; e++)
                        L->results[L->nresults].execs[e] = tr->exec_ids[e];
                    if ((rc = u64map_put(&L->result_map, fnv(call_id, strlen(call_id)) | 1,
                                         (uint32_t)L->nresults++)))
                        break;
                }
            } else {
                blob = &ev->net_http->body_blob;
                kind = U_HTTP;
            }
            if (!L->have_ix)
                continue;
            lk_res res;
            const uint8_t *sha = NULL;
            uint8_t shab[32];
            if (blob && blob->len == 32) {
                memcpy(shab, blob->data, 32);
                sha = shab;
                if ((rc = blob_result(L, sha, &res)))
                    break;
            } else if (text && *text) {
                L->texts++;
                if ((rc = lk_scan_unit(&L->sc, text, strlen(text), &res)))
                    break;
            } else
                continue;
            if (!res_any(&res))
                continue;
            lk_unit *u = unit_new(L, pi >= 0 ? U_FILE : kind, pi);
            if (!u) {
                rc = PTB_ENOMEM;
                break;
            }
            if (u->kind != U_FILE && call_id)
                snprintf(u->call_id, sizeof u->call_id, "%s", call_id);
            unit_result(u, &res, ev->seq, 0, sha, true);
        }
        store_cursor_close(c);
        if (rc != PTB_ENOTFOUND)
            return rc;
    }
    return 0;
}
