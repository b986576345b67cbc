/* Study plans (study.h, schemas/study.schema.json): STUDY.json read with jansson (the JSON path
 * of every complaint, unknown members refused, as task_spec.c), the grid expanded into runs and
 * their task specs, the plan written to OUT/study.json and read back. */
#include "study.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "task_spec.h"

typedef struct sp_ctx {
    const char *file;
    ptb_errbuf *eb;
} sp_ctx;

static int sp_err(sp_ctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int sp_err(sp_ctx *c, const char *path, const char *fmt, ...)
{
    char what[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return ptb_errf(c->eb, PTB_EPARSE, "%s: %s: %s", c->file, path, what);
}

static int sp_known(sp_ctx *c, json_t *o, const char *path, const char *const keys[])
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        bool ok = false;
        for (size_t i = 0; keys[i] && !ok; i++)
            ok = strcmp(k, keys[i]) == 0;
        if (!ok) {
            char p[256];
            snprintf(p, sizeof p, "%s.%s", path, k);
            return sp_err(c, p, "unknown member (see schemas/study.schema.json)");
        }
    }
    return 0;
}

static bool sp_name_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    return n >= 1 && n <= max &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* A string member: NULL when absent; an error when not a non-empty string. */
static int sp_string(sp_ctx *c, json_t *o, const char *key, const char *path, bool required,
                     const char **out)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v)
        return required ? sp_err(c, path, "missing") : 0;
    if (!json_is_string(v) || !json_string_length(v) ||
        strlen(json_string_value(v)) != json_string_length(v))
        return sp_err(c, path, "must be a non-empty string");
    *out = json_string_value(v);
    return 0;
}

static int sp_int(sp_ctx *c, json_t *o, const char *key, const char *path, int64_t lo, int64_t hi,
                  int64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return sp_err(c, path, "must be an integer in %lld..%lld", (long long)lo, (long long)hi);
    *out = json_integer_value(v);
    return 0;
}

static int sp_enum(sp_ctx *c, json_t *o, const char *key, const char *path, const char *def,
                   const char **out)
{
    int rc = sp_string(c, o, key, path, false, out);
    if (rc)
        return rc;
    if (!*out)
        *out = def;
    if (strcmp(*out, "zero") && strcmp(*out, "exclude") && strcmp(*out, "keep"))
        return sp_err(c, path, "must be \"zero\", \"exclude\" or \"keep\"");
    return 0;
}

/* path made absolute against dir (malloc'd) */
static char *sp_abs(const char *dir, const char *p)
{
    char *r = NULL;
    if (p[0] == '/')
        return strdup(p);
    return asprintf(&r, "%s/%s", dir, p) < 0 ? NULL : r;
}

static void sp_sha_hex(const void *buf, size_t len, char hex[65])
{
    uint8_t md[32];
    SHA256(buf, len, md);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* The task spec run by (task i, agent a): the task file's JSON with its paths made absolute
 * (from t, as task_spec_load resolved them) and the study's agent, if any; checked by loading it
 * back. *text: its bytes (malloc'd). */
static int sp_spec(sp_ctx *c, const char *task_path, const task_spec *t, json_t *agent,
                   const char *apath, char **text)
{
    json_error_t je;
    json_t *j = json_load_file(task_path, 0, &je);
    if (!j)
        return ptb_errf(c->eb, PTB_EPARSE, "%s: %s", task_path, je.text);
    json_object_set_new(j, "base_model", json_string(t->base_model));
    json_t *b = json_object_get(j, "benchmark"), *sb = json_object_get(j, "sandbox");
    json_object_set_new(b, "test_split", json_string(t->test_split));
    if (t->train_split)
        json_object_set_new(b, "train_split", json_string(t->train_split));
    if (t->ca_file && json_is_object(sb))
        json_object_set_new(sb, "ca_file", json_string(t->ca_file));
    if (agent)
        json_object_set(j, "agent", agent);
    *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(j);
    if (!*text)
        return PTB_ENOMEM;
    if (!agent)
        return 0;
    /* the study's agent in the task: checked as ptb run will */
    char tmp[] = "/tmp/ptb-study-spec-XXXXXX";
    int fd = mkstemp(tmp);
    if (fd < 0)
        return -errno;
    size_t len = strlen(*text);
    bool wrote = write(fd, *text, len) == (ssize_t)len;
    close(fd);
    task_spec t2;
    ptb_errbuf eb2 = {{0}};
    int rc = wrote ? task_spec_load(tmp, &t2, &eb2) : PTB_EIO;
    unlink(tmp);
    task_spec_free(&t2);
    if (rc) {
        const char *m = strstr(eb2.msg, ": $.agent");
        return sp_err(c, apath, "%s", m ? m + 9 + (m[9] == '.' || m[9] == ':' ? 1 : 0) : eb2.msg);
    }
    return 0;
}

static int sp_resources(sp_ctx *c, json_t *root, unsigned max_gpus, int64_t longest, json_t *plan)
{
    json_t *r = json_object_get(root, "resources");
    if (r && !json_is_object(r))
        return sp_err(c, "$.resources", "must be an object");
    static const char *const keys[] = {"gpus",    "cpus", "mem",  "time_margin_s", "partition",
                                       "account", "qos",  "gres", "extra_sbatch",  NULL};
    int64_t gpus = max_gpus, cpus = 1, margin = 600, throttle = 0;
    const char *mem = NULL, *part = NULL, *acct = NULL, *qos = NULL, *gres = NULL;
    int rc = 0;
    if (r &&
        ((rc = sp_known(c, r, "$.resources", keys)) ||
         (rc = sp_int(c, r, "gpus", "$.resources.gpus", 0, 64, &gpus)) ||
         (rc = sp_int(c, r, "cpus", "$.resources.cpus", 1, 4096, &cpus)) ||
         (rc = sp_int(c, r, "time_margin_s", "$.resources.time_margin_s", 0, 31536000, &margin)) ||
         (rc = sp_string(c, r, "mem", "$.resources.mem", false, &mem)) ||
         (rc = sp_string(c, r, "partition", "$.resources.partition", false, &part)) ||
         (rc = sp_string(c, r, "account", "$.resources.account", false, &acct)) ||
         (rc = sp_string(c, r, "qos", "$.resources.qos", false, &qos)) ||
         (rc = sp_string(c, r, "gres", "$.resources.gres", false, &gres))))
        return rc;
    if (mem) {
        size_t d = strspn(mem, "0123456789");
        if (!d || d > 12 || (mem[d] && (strchr("KMGT", mem[d]) == NULL || mem[d + 1])))
            return sp_err(c, "$.resources.mem",
                          "must be a size as sbatch --mem takes it "
                          "(digits, then K, M, G or T)");
    }
    if ((rc = sp_int(c, root, "throttle", "$.throttle", 1, STUDY_MAX_RUNS, &throttle)))
        return rc;
    json_t *extra = json_array(), *x = r ? json_object_get(r, "extra_sbatch") : NULL;
    if (x && (!json_is_array(x) || json_array_size(x) > 32))
        rc = sp_err(c, "$.resources.extra_sbatch", "must be an array of at most 32 strings");
    for (size_t i = 0; !rc && x && i < json_array_size(x); i++) {
        json_t *v = json_array_get(x, i);
        char p[96];
        snprintf(p, sizeof p, "$.resources.extra_sbatch[%zu]", i);
        if (!json_is_string(v) || strncmp(json_string_value(v), "--", 2) ||
            strlen(json_string_value(v)) != json_string_length(v))
            rc = sp_err(c, p, "must be a long sbatch option (\"--constraint=a100\")");
        else
            json_array_append(extra, v);
    }
    if (rc) {
        json_decref(extra);
        return rc;
    }
    json_t *res = json_pack("{s:I,s:I,s:I,s:I,s:o}", "gpus", (json_int_t)gpus, "cpus",
                            (json_int_t)cpus, "time_margin_s", (json_int_t)margin, "time_limit_s",
                            (json_int_t)(longest + margin), "extra_sbatch", extra);
    const char *names[] = {"mem", "partition", "account", "qos", "gres"};
    const char *vals[] = {mem, part, acct, qos, gres};
    for (int i = 0; i < 5; i++)
        if (vals[i])
            json_object_set_new(res, names[i], json_string(vals[i]));
    if (throttle)
        json_object_set_new(res, "throttle", json_integer(throttle));
    json_object_set_new(plan, "resources", res);
    return 0;
}

static int sp_scoring(sp_ctx *c, json_t *root, json_t *plan, json_t **weights)
{
    json_t *s = json_object_get(root, "scoring");
    if (s && !json_is_object(s))
        return sp_err(c, "$.scoring", "must be an object");
    static const char *const keys[] = {"weights", "violation", "suspicious", NULL};
    const char *viol, *susp;
    int rc = s ? sp_known(c, s, "$.scoring", keys) : 0;
    if (!rc)
        rc = sp_enum(c, s, "violation", "$.scoring.violation", "zero", &viol);
    if (!rc)
        rc = sp_enum(c, s, "suspicious", "$.scoring.suspicious", "keep", &susp);
    if (rc)
        return rc;
    *weights = s ? json_object_get(s, "weights") : NULL;
    if (*weights && !json_is_object(*weights))
        return sp_err(c, "$.scoring.weights", "must be an object (benchmark name to weight)");
    const char *k;
    json_t *v;
    json_object_foreach(*weights, k, v)
    {
        char p[256];
        snprintf(p, sizeof p, "$.scoring.weights.%s", k);
        if (!json_is_number(v) || json_number_value(v) < 0)
            return sp_err(c, p, "must be a number >= 0");
    }
    json_object_set_new(plan, "scoring",
                        json_pack("{s:s,s:s,s:O}", "violation", viol, "suspicious", susp, "weights",
                                  *weights ? *weights : json_object()));
    if (!*weights)
        json_decref(json_object_get(json_object_get(plan, "scoring"), "weights"));
    return 0;
}

/* the plan's run list and settings into st (study_load and study_open) */
static int sp_from_plan(json_t *plan, const char *out, study *st, ptb_errbuf *eb)
{
    json_t *runs = json_object_get(plan, "runs"), *res = json_object_get(plan, "resources"),
           *sc = json_object_get(plan, "scoring");
    const char *name = json_string_value(json_object_get(plan, "name")),
               *sha = json_string_value(json_object_get(plan, "plan_sha256"));
    if (!json_is_array(runs) || !json_is_object(res) || !json_is_object(sc) || !name || !sha ||
        strlen(sha) != 64)
        return ptb_errf(eb, PTB_ECORRUPT, "%s/study.json: not a study plan", out);
    st->plan = json_incref(plan);
    st->name = strdup(name);
    st->out = strdup(out);
    snprintf(st->plan_sha256, sizeof st->plan_sha256, "%s", sha);
    const char *stores = json_string_value(json_object_get(plan, "stores"));
    st->stores = stores ? strdup(stores) : NULL;
    st->n = json_array_size(runs);
    if (!(st->runs = calloc(st->n ? st->n : 1, sizeof *st->runs)))
        return PTB_ENOMEM;
    for (size_t i = 0; i < st->n; i++) {
        json_t *r = json_array_get(runs, i);
        const char *id = json_string_value(json_object_get(r, "id"));
        if (!id || !*id || id[0] == '.' ||
            strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.") !=
                strlen(id))
            return ptb_errf(eb, PTB_ECORRUPT, "%s/study.json: $.runs[%zu].id: bad", out, i);
        study_run *x = &st->runs[i];
        const char *t = json_string_value(json_object_get(r, "task")),
                   *a = json_string_value(json_object_get(r, "agent")),
                   *b = json_string_value(json_object_get(r, "benchmark")),
                   *sp = json_string_value(json_object_get(r, "spec"));
        x->id = strdup(id);
        x->task = strdup(t ? t : "?");
        x->agent = strdup(a ? a : "?");
        x->benchmark = strdup(b ? b : "?");
        x->spec = strdup(sp ? sp : "?");
        x->repeat = (unsigned)json_integer_value(json_object_get(r, "repeat"));
        x->weight = json_number_value(json_object_get(r, "weight"));
        if (!x->id || !x->task || !x->agent || !x->benchmark || !x->spec)
            return PTB_ENOMEM;
    }
    st->gpus = (unsigned)json_integer_value(json_object_get(res, "gpus"));
    st->cpus = (unsigned)json_integer_value(json_object_get(res, "cpus"));
    st->throttle = (unsigned)json_integer_value(json_object_get(res, "throttle"));
    st->time_margin_s = json_integer_value(json_object_get(res, "time_margin_s"));
    st->time_limit_s = json_integer_value(json_object_get(res, "time_limit_s"));
    const char *names[] = {"mem", "partition", "account", "qos", "gres"};
    char **dst[] = {&st->mem, &st->partition, &st->account, &st->qos, &st->gres};
    for (int i = 0; i < 5; i++) {
        const char *v = json_string_value(json_object_get(res, names[i]));
        *dst[i] = v ? strdup(v) : NULL;
    }
    json_t *x = json_object_get(res, "extra_sbatch");
    st->extra_sbatch = calloc(json_array_size(x) + 1, sizeof *st->extra_sbatch);
    if (!st->extra_sbatch)
        return PTB_ENOMEM;
    for (size_t i = 0; i < json_array_size(x); i++)
        st->extra_sbatch[i] = strdup(json_string_value(json_array_get(x, i)));
    const char *v = json_string_value(json_object_get(sc, "violation")),
               *s = json_string_value(json_object_get(sc, "suspicious"));
    st->on_violation = strdup(v ? v : "zero");
    st->on_suspicious = strdup(s ? s : "keep");
    return 0;
}

int study_load(const char *path, const char *out_override, study *st, ptb_errbuf *eb)
{
    memset(st, 0, sizeof *st);
    sp_ctx c = {path, eb};
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je), *plan = NULL,
           *specs = json_object(), *runs = json_array(), *hash = json_array(), *weights = NULL;
    char dir[PATH_MAX], *slash, *out = NULL, *stores = NULL;
    task_spec *ts = NULL;
    size_t nt = 0, nts = 0; /* specs loaded; entries of ts (calloc'd: free is safe on each) */
    int rc = 0;
    if (!root) {
        rc = ptb_errf(eb, je.line > 0 ? PTB_EPARSE : -ENOENT, "%s: %s", path, je.text);
        goto done;
    }
    char fdir[PATH_MAX], cwd[PATH_MAX];
    snprintf(fdir, sizeof fdir, "%s", path);
    if ((slash = strrchr(fdir, '/')))
        *slash = 0;
    else
        snprintf(fdir, sizeof fdir, ".");
    if (!realpath(*fdir ? fdir : "/", dir) || !getcwd(cwd, sizeof cwd)) {
        rc = ptb_errf(eb, -errno, "%s: %s", fdir, strerror(errno));
        goto done;
    }
    static const char *const keys[] = {"name",    "out",       "stores",   "tasks",   "agents",
                                       "repeats", "resources", "throttle", "scoring", NULL};
    const char *name, *o, *so;
    int64_t repeats = 1;
    if (!json_is_object(root)) {
        rc = sp_err(&c, "$", "must be an object");
        goto done;
    }
    if ((rc = sp_known(&c, root, "$", keys)) ||
        (rc = sp_string(&c, root, "name", "$.name", true, &name)) ||
        (rc = sp_string(&c, root, "out", "$.out", !out_override, &o)) ||
        (rc = sp_string(&c, root, "stores", "$.stores", false, &so)) ||
        (rc = sp_int(&c, root, "repeats", "$.repeats", 1, 10000, &repeats)))
        goto done;
    if (!sp_name_ok(name, 64)) {
        rc = sp_err(&c, "$.name", "letters, digits, '_' and '-' (1 to 64)");
        goto done;
    }
    out = out_override ? sp_abs(cwd, out_override) : sp_abs(dir, o);
    stores = so ? sp_abs(dir, so) : NULL;
    json_t *tasks = json_object_get(root, "tasks"), *agents = json_object_get(root, "agents");
    if (!tasks || !json_is_array(tasks) || !json_array_size(tasks)) {
        rc = sp_err(&c, "$.tasks", tasks ? "must be a non-empty array" : "missing");
        goto done;
    }
    if (agents && (!json_is_array(agents) || !json_array_size(agents))) {
        rc = sp_err(&c, "$.agents", "must be a non-empty array");
        goto done;
    }
    for (size_t a = 0; agents && a < json_array_size(agents); a++) {
        json_t *ag = json_array_get(agents, a);
        const char *an;
        char p[64];
        snprintf(p, sizeof p, "$.agents[%zu]", a);
        if (!json_is_object(ag)) {
            rc = sp_err(&c, p, "must be an object (the task spec's agent, with a name)");
            goto done;
        }
        snprintf(p, sizeof p, "$.agents[%zu].name", a);
        if ((rc = sp_string(&c, ag, "name", p, true, &an)))
            goto done;
        if (!sp_name_ok(an, 64)) {
            rc = sp_err(&c, p, "letters, digits, '_' and '-' (1 to 64)");
            goto done;
        }
    }
    if ((rc = sp_scoring(&c, root, (plan = json_object()), &weights)))
        goto done;
    size_t ntask = json_array_size(tasks);
    ts = calloc(ntask, sizeof *ts);
    nts = ts ? ntask : 0;
    unsigned max_gpus = 0;
    int64_t longest = 0;
    size_t nagents = agents ? json_array_size(agents) : 1;
    if (!ts || (uint64_t)ntask * nagents * (uint64_t)repeats > STUDY_MAX_RUNS) {
        rc = ts ? sp_err(&c, "$", "more than %d runs", STUDY_MAX_RUNS) : PTB_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < ntask; i++, nt++) {
        json_t *e = json_array_get(tasks, i);
        char p[64], *tp;
        const char *file = NULL;
        double w = 1;
        snprintf(p, sizeof p, "$.tasks[%zu]", i);
        if (json_is_object(e)) {
            static const char *const tk[] = {"task", "weight", NULL};
            char pt[80];
            snprintf(pt, sizeof pt, "%s.task", p);
            if ((rc = sp_known(&c, e, p, tk)) || (rc = sp_string(&c, e, "task", pt, true, &file)))
                goto done;
            json_t *wv = json_object_get(e, "weight");
            snprintf(pt, sizeof pt, "%s.weight", p);
            if (wv && (!json_is_number(wv) || json_number_value(wv) < 0)) {
                rc = sp_err(&c, pt, "must be a number >= 0");
                goto done;
            }
            w = wv ? json_number_value(wv) : 1;
        } else if (json_is_string(e) && json_string_length(e)) {
            file = json_string_value(e);
        } else {
            rc = sp_err(&c, p, "must be a task spec's path or {\"task\": PATH, \"weight\": W}");
            goto done;
        }
        if (!(tp = sp_abs(dir, file))) {
            rc = PTB_ENOMEM;
            goto done;
        }
        ptb_errbuf teb = {{0}};
        rc = task_spec_load(tp, &ts[i], &teb);
        if (rc) {
            rc = ptb_errf(eb, rc, "%s: %s: %s", path, p, teb.msg);
            free(tp);
            goto done;
        }
        for (size_t k = 0; k < i; k++)
            if (!strcmp(ts[k].name, ts[i].name)) {
                rc = sp_err(&c, p, "a second task named %s", ts[i].name);
                free(tp);
                goto done;
            }
        max_gpus = ts[i].gpus > max_gpus ? ts[i].gpus : max_gpus;
        int64_t need = ts[i].wall_s + ts[i].kill_after_s + ts[i].eval_wall_s;
        longest = need > longest ? need : longest;
        json_t *bw = weights ? json_object_get(weights, ts[i].bench_name) : NULL;
        double weight = w * (bw ? json_number_value(bw) : 1);
        for (size_t a = 0; a < nagents; a++) {
            json_t *ag = agents ? json_array_get(agents, a) : NULL;
            char an[80], ap[64], fname[PATH_MAX], *text = NULL;
            if (ag)
                snprintf(an, sizeof an, "%s", json_string_value(json_object_get(ag, "name")));
            else {
                snprintf(an, sizeof an, "%.64s", ts[i].agent_name);
                for (char *q = an; *q; q++)
                    if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-",
                                *q))
                        *q = '_';
            }
            snprintf(ap, sizeof ap, "$.agents[%zu]", a);
            if ((rc = sp_spec(&c, tp, &ts[i], ag, ap, &text))) {
                free(text);
                break;
            }
            char sha[65];
            sp_sha_hex(text, strlen(text), sha);
            snprintf(fname, sizeof fname, "%s.%s.json", ts[i].name, an);
            json_object_set_new(specs, fname, json_string(text));
            free(text);
            for (int64_t k = 1; k <= repeats; k++) {
                char id[200], spec[PATH_MAX * 2];
                snprintf(id, sizeof id, "%s.%s.r%lld", ts[i].name, an, (long long)k);
                snprintf(spec, sizeof spec, "%s/specs/%s", out, fname);
                for (size_t q = 0; q < json_array_size(runs); q++)
                    if (!strcmp(json_string_value(json_object_get(json_array_get(runs, q), "id")),
                                id))
                        rc = sp_err(&c, "$.agents",
                                    "two runs would be %s: agent names must "
                                    "differ",
                                    id);
                if (rc)
                    break;
                json_array_append_new(runs,
                                      json_pack("{s:s,s:s,s:s,s:I,s:s,s:f,s:s,s:s}", "id", id,
                                                "task", ts[i].name, "agent", an, "repeat",
                                                (json_int_t)k, "benchmark", ts[i].bench_name,
                                                "weight", weight, "spec", spec, "task_file", tp));
                json_array_append_new(hash, json_pack("[s,s]", id, sha));
            }
            if (rc)
                break;
        }
        free(tp);
        if (rc)
            goto done;
    }
    if ((rc = sp_resources(&c, root, max_gpus, longest, plan)))
        goto done;
    /* the plan's identity: the name, every run and the bytes of its spec (not the resources:
     * a resubmission may ask for more time or another partition) */
    json_array_insert_new(hash, 0, json_string(name));
    char *hb = json_dumps(hash, JSON_COMPACT);
    char sha[65];
    if (!hb) {
        rc = PTB_ENOMEM;
        goto done;
    }
    sp_sha_hex(hb, strlen(hb), sha);
    free(hb);
    json_object_set_new(plan, "version", json_integer(1));
    json_object_set_new(plan, "name", json_string(name));
    json_object_set_new(plan, "study_file", json_string(path));
    json_object_set_new(plan, "plan_sha256", json_string(sha));
    if (stores)
        json_object_set_new(plan, "stores", json_string(stores));
    json_object_set(plan, "runs", runs);
    json_object_set(plan, "specs", specs);
    rc = sp_from_plan(plan, out, st, eb);
done:
    for (size_t i = 0; i < nts; i++) /* also the one a failed iteration had loaded */
        task_spec_free(&ts[i]);
    free(ts);
    free(out);
    free(stores);
    json_decref(root);
    json_decref(plan);
    json_decref(specs);
    json_decref(runs);
    json_decref(hash);
    return rc;
}

int study_open(const char *out, study *st, ptb_errbuf *eb)
{
    memset(st, 0, sizeof *st);
    char p[PATH_MAX + 16], abs[PATH_MAX];
    if (!realpath(out, abs))
        return ptb_errf(eb, -errno, "%s: %s", out, strerror(errno));
    snprintf(p, sizeof p, "%s/study.json", abs);
    json_error_t je;
    json_t *plan = json_load_file(p, 0, &je);
    if (!plan)
        return ptb_errf(eb, access(p, F_OK) ? PTB_ENOTFOUND : PTB_ECORRUPT, "%s: %s", p,
                        access(p, F_OK) ? "no study here (ptb study STUDY.json writes it)"
                                        : je.text);
    int rc = sp_from_plan(plan, abs, st, eb);
    json_decref(plan);
    return rc;
}

void study_free(study *st)
{
    for (size_t i = 0; st->runs && i < st->n; i++) {
        study_run *r = &st->runs[i];
        free(r->id), free(r->task), free(r->agent), free(r->benchmark), free(r->spec);
    }
    for (size_t i = 0; st->extra_sbatch && st->extra_sbatch[i]; i++)
        free(st->extra_sbatch[i]);
    free(st->extra_sbatch);
    free(st->runs), free(st->name), free(st->out), free(st->stores), free(st->mem);
    free(st->partition), free(st->account), free(st->qos), free(st->gres);
    free(st->on_violation), free(st->on_suspicious);
    json_decref(st->plan);
    memset(st, 0, sizeof *st);
}

static int sp_mkdirs(const char *path)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            if (mkdir(p, 0755) && errno != EEXIST)
                return -errno;
            *s = '/';
        }
    return mkdir(p, 0755) && errno != EEXIST ? -errno : 0;
}

static int sp_write_atomic(const char *path, const char *text)
{
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -errno;
    size_t len = strlen(text);
    bool ok = fwrite(text, 1, len, f) == len;
    ok = (fflush(f) == 0) && ok && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path)) {
        int e = errno ? -errno : PTB_EIO;
        unlink(tmp);
        return e;
    }
    return 0;
}

int study_plan_write(const study *st, ptb_errbuf *eb)
{
    char p[PATH_MAX + 64];
    int rc = sp_mkdirs(st->out);
    if (rc)
        return ptb_errf(eb, rc, "%s: %s", st->out, strerror(-rc));
    snprintf(p, sizeof p, "%s/study.json", st->out);
    json_error_t je;
    json_t *old = json_load_file(p, 0, &je);
    if (old) {
        const char *h = json_string_value(json_object_get(old, "plan_sha256"));
        const char *nm = json_string_value(json_object_get(old, "name"));
        if (!h || strcmp(h, st->plan_sha256)) {
            rc = ptb_errf(eb, PTB_EEXIST,
                          "%s holds another study (%s, plan %.12s, this one %.12s): two studies "
                          "must not write to the same place; give another out",
                          st->out, nm ? nm : "?", h ? h : "?", st->plan_sha256);
            json_decref(old);
            return rc;
        }
        json_decref(old);
    } else if (access(p, F_OK) == 0) {
        return ptb_errf(eb, PTB_ECORRUPT, "%s: %s (not a study plan: refused)", p, je.text);
    }
    const char *dirs[] = {"specs", "runs", "audit", "results", "attempts", "slurm"};
    for (int i = 0; i < 6 && !rc; i++) {
        char d[PATH_MAX + 16];
        snprintf(d, sizeof d, "%s/%s", st->out, dirs[i]);
        if ((rc = sp_mkdirs(d)))
            return ptb_errf(eb, rc, "%s: %s", d, strerror(-rc));
    }
    if (st->stores && (rc = sp_mkdirs(st->stores)))
        return ptb_errf(eb, rc, "%s: %s", st->stores, strerror(-rc));
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(st->plan, "specs"), k, v)
    {
        char f[PATH_MAX + 300];
        snprintf(f, sizeof f, "%s/specs/%s", st->out, k);
        if ((rc = sp_write_atomic(f, json_string_value(v))))
            return ptb_errf(eb, rc, "%s: %s", f, strerror(-rc));
    }
    json_t *plan = json_deep_copy(st->plan);
    json_object_del(plan, "specs");
    json_object_set_new(plan, "out", json_string(st->out));
    char *text = json_dumps(plan, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(plan);
    if (!text)
        return PTB_ENOMEM;
    rc = sp_write_atomic(p, text);
    free(text);
    return rc ? ptb_errf(eb, rc, "%s: %s", p, strerror(-rc)) : 0;
}

int study_lock(const char *out, int *fd, ptb_errbuf *eb)
{
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/study.lock", out);
    *fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (*fd < 0)
        return ptb_errf(eb, -errno, "%s: %s", p, strerror(errno));
    if (flock(*fd, LOCK_EX | LOCK_NB)) {
        int e = errno;
        close(*fd);
        *fd = -1;
        return e == EWOULDBLOCK
                   ? ptb_errf(eb, PTB_ELOCKED,
                              "%s: another ptb study is submitting or running this study", p)
                   : ptb_errf(eb, -e, "%s: %s", p, strerror(e));
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    if (ftruncate(*fd, 0) == 0 && write(*fd, pid, (size_t)n) != n)
        (void)0;
    return 0;
}

void study_run_dir(const study *st, const study_run *r, char *out, size_t cap)
{
    snprintf(out, cap, "%s/runs/%s", st->out, r->id);
}

void study_run_store(const study *st, const study_run *r, char *out, size_t cap)
{
    if (st->stores)
        snprintf(out, cap, "%s/%s.ptb", st->stores, r->id);
    else
        snprintf(out, cap, "%s/runs/%s/run.ptb", st->out, r->id);
}

void study_run_file(const study *st, const study_run *r, const char *folder, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s/%s.json", st->out, folder, r->id);
}

json_t *study_result(const study *st, const study_run *r)
{
    char p[PATH_MAX];
    study_run_file(st, r, "results", p, sizeof p);
    json_error_t je;
    json_t *j = json_load_file(p, 0, &je);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

const char *study_result_status(json_t *res)
{
    const char *s = json_string_value(json_object_get(res, "status"));
    return s && (!strcmp(s, "done") || !strcmp(s, "failed") || !strcmp(s, "killed")) ? s : NULL;
}
