/* Stored reference checkpoints (audit_refs.h): `ptb refs add` hashes a reference's tensors and
 * files and sketches its change from a base; `ptb audit` opens what was kept. Layout and contract
 * in audit_refs.h. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit_ckpt_num.h"
#include "audit_refs.h"
#include "safetensors.h"
#include "store.h"

typedef struct refs_priv {
    json_t *j;
    safetensors_file *sk;
} refs_priv;

int audit_refs_dir(const char *opt, char *out, size_t cap, ptb_errbuf *eb)
{
    const char *e = getenv("PTB_REFS_DIR"), *x = getenv("XDG_DATA_HOME"), *h = getenv("HOME");
    int l;
    if (opt && *opt)
        l = snprintf(out, cap, "%s", opt);
    else if (e && *e)
        l = snprintf(out, cap, "%s", e);
    else if (x && *x == '/')
        l = snprintf(out, cap, "%s/ptb/refs", x);
    else if (h && *h)
        l = snprintf(out, cap, "%s/.local/share/ptb/refs", h);
    else
        return ptb_errf(eb, PTB_EINVAL,
                        "no folder for stored references: give --refs DIR or set "
                        "PTB_REFS_DIR (HOME is not set)");
    if (l < 0 || (size_t)l >= cap)
        return ptb_errf(eb, PTB_EINVAL, "the references' folder's path is too long");
    return 0;
}

bool audit_refs_name_ok(const char *name)
{
    size_t l = strlen(name);
    return l && l <= AUDIT_REFS_NAME_MAX && name[0] != '.' &&
           strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == l;
}

static bool refs_sha_file(const char *path, uint8_t out[32])
{
    enum { BUF = 1 << 20 };
    bool ok = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    EVP_MD_CTX *m = fd >= 0 ? EVP_MD_CTX_new() : NULL;
    unsigned char *b = m ? malloc(BUF) : NULL;
    if (b && EVP_DigestInit_ex(m, EVP_sha256(), NULL)) {
        ssize_t got;
        while ((got = read(fd, b, BUF)) > 0)
            EVP_DigestUpdate(m, b, (size_t)got);
        unsigned l;
        ok = got == 0 && EVP_DigestFinal_ex(m, out, &l);
    }
    free(b);
    EVP_MD_CTX_free(m);
    if (fd >= 0)
        close(fd);
    return ok;
}

static int refs_file_cmp(const void *a, const void *b)
{
    return strcmp(((const audit_ref_file *)a)->name, ((const audit_ref_file *)b)->name);
}

int audit_refs_hash_files(const char *dir, audit_ref_file **files, size_t *n)
{
    *files = NULL, *n = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d)) && *n < AUDIT_REFS_FILES_MAX;) {
        size_t l = strlen(e->d_name);
        if (l < 12 || l >= sizeof(*files)->name || strcmp(e->d_name + l - 12, ".safetensors"))
            continue;
        audit_ref_file *nf = realloc(*files, (*n + 1) * sizeof *nf);
        if (!nf) {
            closedir(d);
            return PTB_ENOMEM;
        }
        *files = nf;
        char p[PATH_MAX];
        snprintf(nf[*n].name, sizeof nf->name, "%s", e->d_name);
        if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) < (int)sizeof p &&
            refs_sha_file(p, nf[*n].sha))
            (*n)++;
    }
    if (d)
        closedir(d);
    if (*n)
        qsort(*files, *n, sizeof **files, refs_file_cmp);
    return 0;
}

static int refs_mkdirs(const char *path)
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

static int refs_rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

/* One tensor's record (and its sketch, into sk) while adding. */
typedef struct refs_new {
    const safetensors_tensor *x, *b;
    uint8_t sha[32], bsha[32];
    double ii;
    uint32_t k;
    float *sk;
} refs_new;

static int refs_write(const char *tmp, const audit_ref *meta, const safetensors_set *xs,
                      refs_new *t, size_t n, const audit_ref_file *files, size_t nfiles,
                      ptb_errbuf *eb)
{
    json_t *jt = json_array(), *jf = json_array();
    char hex[65], p[PATH_MAX + 32];
    for (size_t i = 0; i < nfiles; i++) {
        store_hex(files[i].sha, 32, hex);
        json_array_append_new(jf, json_pack("{s:s,s:s}", "name", files[i].name, "sha256", hex));
    }
    size_t nsk = 0;
    for (size_t i = 0; i < n; i++) {
        const safetensors_tensor *x = safetensors_set_at(xs, i);
        json_t *shape = json_array();
        for (uint32_t d = 0; d < x->rank; d++)
            json_array_append_new(shape, json_integer((json_int_t)x->shape[d]));
        store_hex(t[i].sha, 32, hex);
        json_t *o = json_pack("{s:s,s:s,s:o,s:s}", "name", x->name, "dtype",
                              safetensors_dtype_name(x->dtype), "shape", shape, "sha256", hex);
        if (t[i].sk) {
            store_hex(t[i].bsha, 32, hex);
            json_object_set_new(o, "base_sha256", json_string(hex));
            json_object_set_new(o, "ii", json_real(t[i].ii));
            json_object_set_new(o, "k", json_integer(t[i].k));
            nsk++;
        }
        json_array_append_new(jt, o);
    }
    char seed[17];
    snprintf(seed, sizeof seed, "%016" PRIx64, meta->seed);
    json_t *j = json_pack("{s:i,s:s,s:s,s:s?,s:s,s:s,s:i,s:I,s:o,s:o}", "version", 1, "name",
                          meta->name, "path", meta->path, "base", meta->base, "created",
                          meta->created, "seed", seed, "sketch", (int)meta->sketch, "bytes",
                          (json_int_t)meta->bytes, "files", jf, "tensors", jt);
    snprintf(p, sizeof p, "%s/ref.json", tmp);
    if (!j || json_dump_file(j, p, JSON_INDENT(1) | JSON_SORT_KEYS)) {
        json_decref(j);
        return ptb_errf(eb, -EIO, "%s: cannot write", p);
    }
    json_decref(j);
    safetensors_tensor *st = calloc(nsk ? nsk : 1, sizeof *st);
    if (!st)
        return PTB_ENOMEM;
    nsk = 0;
    for (size_t i = 0; i < n; i++)
        if (t[i].sk)
            st[nsk++] = (safetensors_tensor){.name = safetensors_set_at(xs, i)->name,
                                             .dtype = SAFETENSORS_F32,
                                             .rank = 1,
                                             .shape = {t[i].k},
                                             .nbytes = (uint64_t)t[i].k * 4,
                                             .data = t[i].sk};
    snprintf(p, sizeof p, "%s/sketch.safetensors", tmp);
    int rc = safetensors_write(p, st, nsk, NULL, eb);
    free(st);
    return rc;
}

int audit_refs_add(const char *refs_dir, const char *name, const char *dir, const char *base_dir,
                   uint32_t k, uint64_t seed, audit_refs_added *out, ptb_errbuf *eb)
{
    audit_refs_added st = {0};
    if (!audit_refs_name_ok(name))
        return ptb_errf(
            eb, PTB_EINVAL,
            "name '%s': 1 to %d letters, digits, '.', '_' or '-', not starting with '.'", name,
            AUDIT_REFS_NAME_MAX);
    if (!k)
        k = AUDIT_REFS_SKETCH_DEFAULT;
    if (k > AUDIT_CKPT_SKETCH_MAX)
        return ptb_errf(eb, PTB_EINVAL, "sketch %u: at most %u floats per tensor", k,
                        AUDIT_CKPT_SKETCH_MAX);
    char final[PATH_MAX], tmp[PATH_MAX], absdir[PATH_MAX], absbase[PATH_MAX];
    struct stat sb;
    if (snprintf(final, sizeof final, "%s/%s", refs_dir, name) >= (int)sizeof final)
        return ptb_errf(eb, PTB_EINVAL, "%s: path too long", refs_dir);
    if (lstat(final, &sb) == 0)
        return ptb_errf(eb, PTB_EEXIST,
                        "a reference named %s is already stored in %s (ptb refs rm %s first)", name,
                        refs_dir, name);
    if (!realpath(dir, absdir))
        return ptb_errf(eb, -errno, "%s: %s", dir, strerror(errno));
    if (base_dir && !realpath(base_dir, absbase))
        return ptb_errf(eb, -errno, "--base %s: %s", base_dir, strerror(errno));
    safetensors_set *xs = NULL, *bs = NULL;
    int rc = safetensors_dir_open(absdir, &xs, eb);
    if (rc == PTB_ENOTFOUND)
        return ptb_errf(eb, rc,
                        "%s: not a safetensors checkpoint folder (no model.safetensors or "
                        "model.safetensors.index.json)",
                        dir);
    if (rc)
        return rc;
    if (base_dir && (rc = safetensors_dir_open(absbase, &bs, eb))) {
        safetensors_set_close(xs);
        return rc == PTB_ENOTFOUND ? ptb_errf(eb, rc,
                                              "--base %s: not a safetensors checkpoint folder (no "
                                              "model.safetensors or model.safetensors.index.json)",
                                              base_dir)
                                   : rc;
    }
    if (!seed && getrandom(&seed, sizeof seed, 0) != sizeof seed)
        seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    size_t n = safetensors_set_count(xs);
    refs_new *t = calloc(n ? n : 1, sizeof *t);
    audit_ref_file *files = NULL;
    size_t nfiles = 0;
    if (!t || (rc = audit_refs_hash_files(absdir, &files, &nfiles))) {
        rc = PTB_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const safetensors_tensor *x = safetensors_set_at(xs, i), *b = NULL;
        t[i].x = x;
        st.bytes += x->nbytes;
        b = bs ? safetensors_set_find(bs, x->name) : NULL;
        if (b && b->rank == x->rank && !memcmp(b->shape, x->shape, x->rank * sizeof *x->shape) &&
            audit_ckpt_dtype_ok(x->dtype) && audit_ckpt_dtype_ok(b->dtype)) {
            t[i].b = b;
            uint64_t ne = x->nbytes / safetensors_dtype_size(x->dtype);
            t[i].k = audit_ckpt_sketch_len(ne, k);
            if (!(t[i].sk = calloc(t[i].k, sizeof(float)))) { /* an empty tensor's one slot: 0 */
                rc = PTB_ENOMEM;
                goto out;
            }
            st.compared++, st.sketch_bytes += (uint64_t)t[i].k * 4;
        } else if (bs) {
            st.not_in_base++;
        }
    }
    st.tensors = n;
    /* hashes and sketches, a tensor per thread */
    int fail = 0;
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t i = 0; i < n; i++) {
        unsigned l;
        EVP_Digest(t[i].x->data, t[i].x->nbytes, t[i].sha, &l, EVP_sha256(), NULL);
        if (!t[i].b)
            continue;
        EVP_Digest(t[i].b->data, t[i].b->nbytes, t[i].bsha, &l, EVP_sha256(), NULL);
        if (audit_ckpt_sketch_delta(t[i].x->data, t[i].x->dtype, t[i].b->data, t[i].b->dtype,
                                    t[i].x->nbytes / safetensors_dtype_size(t[i].x->dtype),
                                    audit_ckpt_sketch_key(seed, t[i].x->name), t[i].k, t[i].sk,
                                    &t[i].ii)) {
#pragma omp atomic write
            fail = 1;
        }
    }
    if (fail) {
        rc = PTB_ENOMEM;
        goto out;
    }
    if ((rc = refs_mkdirs(refs_dir))) {
        rc = ptb_errf(eb, rc, "%s: cannot create: %s", refs_dir, strerror(-rc));
        goto out;
    }
    snprintf(tmp, sizeof tmp, "%s/.%s.XXXXXX", refs_dir, name);
    if (!mkdtemp(tmp)) {
        rc = ptb_errf(eb, -errno, "%s: cannot write: %s", refs_dir, strerror(errno));
        goto out;
    }
    char created[32];
    time_t now = time(NULL);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    audit_ref meta = {.path = absdir,
                      .base = base_dir ? absbase : NULL,
                      .created = created,
                      .seed = seed,
                      .bytes = st.bytes,
                      .sketch = k};
    snprintf(meta.name, sizeof meta.name, "%s", name);
    rc = refs_write(tmp, &meta, xs, t, n, files, nfiles, eb);
    if (!rc && rename(tmp, final)) {
        rc = errno == EEXIST || errno == ENOTEMPTY
                 ? ptb_errf(eb, PTB_EEXIST, "a reference named %s is already stored in %s", name,
                            refs_dir)
                 : ptb_errf(eb, -errno, "%s: %s", final, strerror(errno));
    }
    if (rc)
        nftw(tmp, refs_rm_one, 8, FTW_DEPTH | FTW_PHYS);
out:
    for (size_t i = 0; t && i < n; i++)
        free(t[i].sk);
    free(t);
    free(files);
    safetensors_set_close(xs);
    safetensors_set_close(bs);
    if (out)
        *out = st;
    return rc;
}

static int refs_tensor_cmp(const void *a, const void *b)
{
    return strcmp(((const audit_ref_tensor *)a)->name, ((const audit_ref_tensor *)b)->name);
}

const audit_ref_tensor *audit_ref_find(const audit_ref *r, const char *name)
{
    audit_ref_tensor key = {.name = name};
    return r->n ? bsearch(&key, r->t, r->n, sizeof *r->t, refs_tensor_cmp) : NULL;
}

void audit_ref_close(audit_ref *r)
{
    if (!r)
        return;
    refs_priv *p = r->priv;
    if (p) {
        json_decref(p->j);
        safetensors_close(p->sk);
        free(p);
    }
    free(r->t);
    free(r->files);
    free(r);
}

/* One entry of "tensors" into t; false when it is malformed. */
static bool refs_read_tensor(json_t *o, safetensors_file *skf, audit_ref_tensor *t)
{
    json_t *shape = json_object_get(o, "shape"), *v;
    const char *dt = json_string_value(json_object_get(o, "dtype"));
    safetensors_dtype d;
    size_t i;
    t->name = json_string_value(json_object_get(o, "name"));
    if (!t->name || !*t->name || !dt || safetensors_dtype_parse(dt, &d) || !json_is_array(shape) ||
        json_array_size(shape) > 16 ||
        !store_unhex(json_string_value(json_object_get(o, "sha256")), t->sha, 32))
        return false;
    t->dtype = (int)d, t->rank = (uint32_t)json_array_size(shape), t->n = 1;
    json_array_foreach(shape, i, v)
    {
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return false;
        t->shape[i] = (uint64_t)json_integer_value(v);
        if (t->shape[i] && t->n > UINT64_MAX / t->shape[i])
            return false;
        t->n *= t->shape[i];
    }
    json_t *bsha = json_object_get(o, "base_sha256");
    if (!bsha)
        return true;
    json_t *ii = json_object_get(o, "ii"), *k = json_object_get(o, "k");
    if (!store_unhex(json_string_value(bsha), t->base_sha, 32) || !json_is_number(ii) ||
        !json_is_integer(k) || json_integer_value(k) < 1 ||
        json_integer_value(k) > AUDIT_CKPT_SKETCH_MAX ||
        (uint64_t)json_integer_value(k) !=
            audit_ckpt_sketch_len(t->n, (uint32_t)json_integer_value(k)))
        return false;
    t->ii = json_number_value(ii);
    t->k = (uint32_t)json_integer_value(k);
    const safetensors_tensor *s = safetensors_find(skf, t->name);
    if (!s || s->dtype != SAFETENSORS_F32 || s->rank != 1 || s->shape[0] != t->k ||
        ((uintptr_t)s->data & 3) || !(t->ii >= 0))
        return false;
    t->sk = s->data;
    t->has_delta = true;
    return true;
}

/* r's fields from its JSON and sketch (pv->j, pv->sk, set); what: the name for messages. */
static int refs_fill(audit_ref *r, const char *name, const char *what, ptb_errbuf *eb)
{
    refs_priv *pv = r->priv;
    json_t *j = pv->j, *jt = json_object_get(j, "tensors"), *jf = json_object_get(j, "files"), *v;
    const char *seed = json_string_value(json_object_get(j, "seed"));
    const char *nm = json_string_value(json_object_get(j, "name"));
    json_t *base = json_object_get(j, "base"), *sk = json_object_get(j, "sketch");
    char *end;
    if (json_integer_value(json_object_get(j, "version")) != 1 || !nm || strcmp(nm, name) ||
        !json_string_value(json_object_get(j, "path")) ||
        !json_string_value(json_object_get(j, "created")) || !seed || strlen(seed) != 16 ||
        (base && !json_is_null(base) && !json_is_string(base)) || !json_is_integer(sk) ||
        !json_is_array(jt) || !json_is_array(jf) || json_array_size(jf) > AUDIT_REFS_FILES_MAX)
        goto corrupt;
    r->seed = strtoull(seed, &end, 16);
    if (*end || !isxdigit((unsigned char)seed[0]))
        goto corrupt;
    snprintf(r->name, sizeof r->name, "%s", name);
    r->path = (char *)json_string_value(json_object_get(j, "path"));
    r->base = (char *)json_string_value(base);
    r->created = (char *)json_string_value(json_object_get(j, "created"));
    r->sketch = (uint32_t)json_integer_value(sk);
    r->bytes = (uint64_t)json_integer_value(json_object_get(j, "bytes"));
    r->t = calloc(json_array_size(jt) ? json_array_size(jt) : 1, sizeof *r->t);
    r->files = calloc(json_array_size(jf) ? json_array_size(jf) : 1, sizeof *r->files);
    if (!r->t || !r->files)
        return PTB_ENOMEM;
    size_t i;
    json_array_foreach(jt, i, v)
    {
        if (!json_is_object(v) || !refs_read_tensor(v, pv->sk, &r->t[r->n++]))
            goto corrupt;
        if (i && strcmp(r->t[i - 1].name, r->t[i].name) >= 0)
            goto corrupt; /* sorted and unique: audit_ref_find */
    }
    json_array_foreach(jf, i, v)
    {
        const char *fn = json_string_value(json_object_get(v, "name"));
        if (!fn || strlen(fn) >= sizeof r->files->name ||
            !store_unhex(json_string_value(json_object_get(v, "sha256")), r->files[i].sha, 32))
            goto corrupt;
        snprintf(r->files[i].name, sizeof r->files->name, "%s", fn);
        r->nfiles++;
    }
    return 0;
corrupt:
    return ptb_errf(eb, PTB_ECORRUPT,
                    "%s: not a reference kept by ptb refs (a field is missing or wrong, or the "
                    "sketch does not match)",
                    what);
}

static audit_ref *refs_new_ref(void)
{
    audit_ref *r = calloc(1, sizeof *r);
    if (r && !(r->priv = calloc(1, sizeof(refs_priv)))) {
        free(r);
        r = NULL;
    }
    return r;
}

int audit_ref_open(const char *refs_dir, const char *name, audit_ref **out, ptb_errbuf *eb)
{
    *out = NULL;
    char p[PATH_MAX], q[PATH_MAX];
    if (!audit_refs_name_ok(name))
        return ptb_errf(eb, PTB_EINVAL, "'%s' is not a reference name", name);
    if (snprintf(p, sizeof p, "%s/%s/ref.json", refs_dir, name) >= (int)sizeof p ||
        snprintf(q, sizeof q, "%s/%s/sketch.safetensors", refs_dir, name) >= (int)sizeof q)
        return ptb_errf(eb, PTB_EINVAL, "%s: path too long", refs_dir);
    struct stat sb;
    if (stat(p, &sb))
        return errno == ENOENT ? ptb_errf(eb, PTB_ENOTFOUND,
                                          "no reference %s in %s (ptb refs list)", name, refs_dir)
                               : ptb_errf(eb, -errno, "%s: %s", p, strerror(errno));
    audit_ref *r = refs_new_ref();
    if (!r)
        return PTB_ENOMEM;
    refs_priv *pv = r->priv;
    json_error_t je;
    int rc = 0;
    if (!(pv->j = json_load_file(p, 0, &je)))
        rc = ptb_errf(eb, PTB_ECORRUPT, "%s: %s (line %d)", p, je.text, je.line);
    else if (!(rc = safetensors_open(q, &pv->sk, eb)))
        rc = refs_fill(r, name, p, eb);
    if (rc)
        audit_ref_close(r);
    else
        *out = r;
    return rc;
}

int audit_ref_parse(const char *name, const char *json, size_t len, const void *sk, size_t sklen,
                    audit_ref **out, ptb_errbuf *eb)
{
    *out = NULL;
    audit_ref *r = refs_new_ref();
    if (!r)
        return PTB_ENOMEM;
    refs_priv *pv = r->priv;
    json_error_t je;
    int rc = 0;
    if (!(pv->j = json_loadb(json, len, 0, &je)))
        rc = ptb_errf(eb, PTB_ECORRUPT, "ref.json: %s (line %d)", je.text, je.line);
    else if (!(rc = safetensors_parse(sk, sklen, &pv->sk, eb)))
        rc = refs_fill(r, name, "ref.json", eb);
    if (rc)
        audit_ref_close(r);
    else
        *out = r;
    return rc == PTB_ENOMEM ? rc : rc ? PTB_ECORRUPT : 0;
}

static int refs_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int audit_refs_names(const char *refs_dir, char ***names, size_t *n, ptb_errbuf *eb)
{
    *names = NULL, *n = 0;
    DIR *d = opendir(refs_dir);
    if (!d)
        return errno == ENOENT ? 0 : ptb_errf(eb, -errno, "%s: %s", refs_dir, strerror(errno));
    int rc = 0;
    for (struct dirent *e; (e = readdir(d));) {
        char p[PATH_MAX];
        struct stat sb;
        if (!audit_refs_name_ok(e->d_name) ||
            snprintf(p, sizeof p, "%s/%s/ref.json", refs_dir, e->d_name) >= (int)sizeof p ||
            stat(p, &sb))
            continue;
        char **nn = realloc(*names, (*n + 1) * sizeof *nn);
        if (!nn || !(nn[*n] = strdup(e->d_name))) {
            if (nn)
                *names = nn;
            rc = PTB_ENOMEM;
            break;
        }
        *names = nn, (*n)++;
    }
    closedir(d);
    if (*n)
        qsort(*names, *n, sizeof **names, refs_name_cmp);
    return rc;
}

void audit_refs_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int audit_refs_rm(const char *refs_dir, const char *name, ptb_errbuf *eb)
{
    char p[PATH_MAX];
    struct stat sb;
    if (!audit_refs_name_ok(name))
        return ptb_errf(eb, PTB_EINVAL, "'%s' is not a reference name", name);
    if (snprintf(p, sizeof p, "%s/%s/ref.json", refs_dir, name) >= (int)sizeof p)
        return ptb_errf(eb, PTB_EINVAL, "%s: path too long", refs_dir);
    if (stat(p, &sb))
        return ptb_errf(eb, PTB_ENOTFOUND, "no reference %s in %s (ptb refs list)", name, refs_dir);
    snprintf(p, sizeof p, "%s/%s", refs_dir, name);
    if (nftw(p, refs_rm_one, 8, FTW_DEPTH | FTW_PHYS))
        return ptb_errf(eb, -errno, "%s: cannot remove: %s", p, strerror(errno));
    return 0;
}
