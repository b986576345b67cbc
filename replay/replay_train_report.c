/* The report of a training replay (replay_train.h): a replayed checkpoint folder compared with
 * the recorded one file by file (SHA-256) and, where both sides' bytes are here, tensor by
 * tensor (replay_train_cmp.c), as the JSON of `ptb replay train --json`; and that JSON as text.
 * Building the report once and printing it either way keeps the two forms the same. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "replay_train.h"

json_t *replay_train_json_str(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    json_t *j = json_stringn(s, n);
    char *b = j ? NULL : malloc(4 * n + 1);
    if (j || !b)
        return j;
    size_t o = 0; /* not UTF-8: the bytes outside valid sequences as \xHH */
    for (size_t i = 0; i < n;) {
        size_t l = store_utf8_len((const unsigned char *)s + i, n - i);
        if (l)
            memcpy(b + o, s + i, l), o += l, i += l;
        else
            o += (size_t)snprintf(b + o, 5, "\\x%02x", (unsigned char)s[i++]);
    }
    j = json_stringn(b, o);
    free(b);
    return j;
}

/* ------------------------------------------------------------------ comparing */

/* The relative paths of the files under dir/rel, appended to *v. */
static int list_files(const char *dir, const char *rel, char ***v, size_t *n, size_t *cap)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s%s%s", dir, *rel ? "/" : "", rel);
    DIR *d = opendir(p);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    int rc = 0;
    struct dirent *de;
    while (!rc && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char r[PATH_MAX], full[2 * PATH_MAX];
        snprintf(r, sizeof r, "%s%s%s", rel, *rel ? "/" : "", de->d_name);
        snprintf(full, sizeof full, "%s/%s", dir, r);
        struct stat sb;
        if (lstat(full, &sb))
            rc = -errno;
        else if (S_ISDIR(sb.st_mode))
            rc = list_files(dir, r, v, n, cap);
        else if (*n == *cap && !(*v = realloc(*v, (*cap = *cap ? *cap * 2 : 8) * sizeof **v)))
            rc = PTB_ENOMEM;
        else if (!((*v)[(*n)++] = strdup(r)))
            rc = PTB_ENOMEM;
    }
    closedir(d);
    return rc;
}

static json_t *tensor_json(const rt_tensor_cmp *t)
{
    static const char *const states[] = {"same", "values", "layout", "only_recorded",
                                         "only_replayed"};
    json_t *o =
        json_pack("{s:o,s:s}", "name", replay_train_json_str(t->name), "state", states[t->state]);
    if (t->layout_a[0])
        json_object_set_new(o, "recorded", json_string(t->layout_a));
    if (t->layout_b[0])
        json_object_set_new(o, "replayed", json_string(t->layout_b));
    if (t->state != RT_VALUES)
        return o;
    json_object_set_new(o, "elements", json_integer((json_int_t)t->elements));
    json_object_set_new(o, "differ", json_integer((json_int_t)t->differ));
    json_object_set_new(o, "bytes_differ", json_integer((json_int_t)t->bytes_differ));
    if (t->numeric) {
        json_object_set_new(o, "max_abs_diff", json_real(t->max_abs));
        json_object_set_new(o, "rel_l2", isfinite(t->rel_l2) ? json_real(t->rel_l2) : json_null());
        json_object_set_new(o, "nonfinite", json_integer((json_int_t)t->nonfinite));
    }
    return o;
}

/* Tensor by tensor, into the file's report. */
static int compare_tensors(const char *a, const char *b, json_t *f, uint64_t *total, ptb_errbuf *eb)
{
    rt_file_cmp cmp;
    int rc = replay_train_file_compare(a, b, &cmp, eb);
    if (rc) {
        replay_train_file_compare_free(&cmp);
        return rc;
    }
    json_object_set_new(f, "bytes_differ", json_integer((json_int_t)cmp.bytes_differ));
    *total += cmp.bytes_differ;
    if (cmp.why_not[0])
        json_object_set_new(f, "no_tensors", json_string(cmp.why_not));
    if (cmp.tensors) {
        json_t *diffs = json_array(), *meta = json_array();
        for (size_t i = 0; i < cmp.n; i++)
            if (cmp.v[i].state != RT_SAME)
                json_array_append_new(diffs, tensor_json(&cmp.v[i]));
        for (size_t i = 0; i < cmp.nmeta; i++)
            json_array_append_new(
                meta, json_pack("{s:o,s:o?,s:o?}", "key", replay_train_json_str(cmp.meta[i].key),
                                "recorded", replay_train_json_str(cmp.meta[i].a), "replayed",
                                replay_train_json_str(cmp.meta[i].b)));
        json_object_set_new(
            f, "tensors",
            json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:o}", "compared", (json_int_t)cmp.n,
                      "same", (json_int_t)cmp.same, "values", (json_int_t)cmp.values, "layout",
                      (json_int_t)cmp.layout, "only_recorded", (json_int_t)cmp.only_a,
                      "only_replayed", (json_int_t)cmp.only_b, "bytes_differ",
                      (json_int_t)cmp.tensor_bytes_differ, "differing", diffs, "metadata", meta));
    }
    replay_train_file_compare_free(&cmp);
    return 0;
}

/* One file: recorded (f's "recorded", may be absent) against replayed (rel under new/, when
 * in_new). Its "state" set; returns 0 identical, 1 different, 2 not comparable, or an error. */
static int compare_file(const char *dir, json_t *f, const char *rel, bool in_new, uint64_t *total,
                        ptb_errbuf *eb)
{
    char a[PATH_MAX], b[PATH_MAX], got[65] = "";
    snprintf(a, sizeof a, "%s/recorded/%s", dir, rel);
    snprintf(b, sizeof b, "%s/new/%s", dir, rel);
    json_t *rec = json_object_get(f, "recorded");
    uint64_t size = 0;
    if (in_new) {
        uint8_t sha[32];
        int rc = replay_train_file_sha256(b, sha, &size);
        if (rc)
            return ptb_errf(eb, rc, "%s: %s", b, strerror(-rc));
        store_hex(sha, 32, got);
        json_object_set_new(f, "replayed",
                            json_pack("{s:s,s:I}", "sha256", got, "size", (json_int_t)size));
    }
    const char *state;
    int rc = 1;
    const char *want = rec ? json_string_value(json_object_get(rec, "sha256")) : NULL;
    if (!rec || !in_new) {
        state = rec ? "only_recorded" : "only_replayed";
        *total += rec ? (uint64_t)json_integer_value(json_object_get(rec, "size")) : size;
    } else if (!want) {
        state = "unknown", rc = 2;
    } else if (!strcmp(want, got)) {
        state = "identical", rc = 0;
    } else {
        state = "differs";
        if (json_is_true(json_object_get(rec, "bytes"))) {
            int e = compare_tensors(a, b, f, total, eb);
            if (e)
                return e;
        }
    }
    json_object_set_new(f, "state", json_string(state));
    return rc;
}

int replay_train_compare_dir(const char *dir, json_t *files, rt_totals *t, ptb_errbuf *eb)
{
    memset(t, 0, sizeof *t);
    char newdir[PATH_MAX];
    snprintf(newdir, sizeof newdir, "%s/new", dir);
    char **nv = NULL;
    size_t nn = 0, ncap = 0, nrec = json_array_size(files), differ = 0, unknown = 0;
    uint64_t total = 0;
    int rc = list_files(newdir, "", &nv, &nn, &ncap);
    if (rc)
        ptb_errf(eb, rc, "%s: %s", newdir, ptb_strerror(rc));
    bool *matched = calloc(nn + 1, sizeof *matched);
    if (!rc && !matched)
        rc = PTB_ENOMEM;
    for (size_t i = 0; !rc && i < nrec + nn; i++) {
        json_t *f;
        bool in_new = i >= nrec;
        if (i < nrec) {
            f = json_array_get(files, i);
            const char *rel = json_string_value(json_object_get(f, "path"));
            for (size_t k = 0; k < nn && !in_new; k++)
                if (!strcmp(nv[k], rel))
                    in_new = matched[k] = true;
        } else if (matched[i - nrec]) {
            continue;
        } else {
            json_array_append_new(
                files, f = json_pack("{s:o}", "path", replay_train_json_str(nv[i - nrec])));
        }
        int r =
            compare_file(dir, f, json_string_value(json_object_get(f, "path")), in_new, &total, eb);
        if (r < 0)
            rc = r;
        differ += r == 1, unknown += r == 2;
    }
    for (size_t k = 0; k < nn; k++)
        free(nv[k]);
    free(nv);
    free(matched);
    if (rc)
        return rc;
    t->files = json_array_size(files), t->differ = differ, t->unknown = unknown;
    t->bytes_differ = total;
    for (size_t i = 0; i < t->files; i++) {
        json_t *x = json_object_get(json_array_get(files, i), "tensors");
        t->tensors += (size_t)json_integer_value(json_object_get(x, "compared"));
        t->tensors_differ += json_array_size(json_object_get(x, "differing"));
    }
    return 0;
}

/* ------------------------------------------------------------------ the report as text */

static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static long long jint(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

static void print_tensors(const json_t *t, FILE *out)
{
    const json_t *m;
    size_t i;
    json_array_foreach(json_object_get(t, "metadata"), i, m)
    {
        fprintf(out, "      metadata %s: recorded %s, replayed %s\n", jstr(m, "key"),
                json_is_string(json_object_get(m, "recorded")) ? jstr(m, "recorded") : "(none)",
                json_is_string(json_object_get(m, "replayed")) ? jstr(m, "replayed") : "(none)");
    }
    const json_t *d = json_object_get(t, "differing");
    if (json_array_size(d))
        fprintf(out, "      %-28s %10s %10s %11s %10s\n", "tensor", "elements", "differ",
                "max |diff|", "rel. L2");
    json_array_foreach(d, i, m)
    {
        const char *st = jstr(m, "state");
        if (!strcmp(st, "values")) {
            const json_t *rl = json_object_get(m, "rel_l2");
            char rel[32] = "-", mx[32] = "-";
            if (json_object_get(m, "max_abs_diff"))
                snprintf(mx, sizeof mx, "%.3g",
                         json_real_value(json_object_get(m, "max_abs_diff")));
            if (json_is_real(rl))
                snprintf(rel, sizeof rel, "%.3g", json_real_value(rl));
            else if (json_is_null(rl))
                snprintf(rel, sizeof rel, "inf");
            fprintf(out, "      %-28s %10lld %10lld %11s %10s%s\n", jstr(m, "name"),
                    jint(m, "elements"), jint(m, "differ"), mx, rel,
                    jint(m, "nonfinite") ? "  (NaN or inf on a side)" : "");
        } else if (!strcmp(st, "layout")) {
            fprintf(out, "      %-28s recorded %s, replayed %s\n", jstr(m, "name"),
                    jstr(m, "recorded"), jstr(m, "replayed"));
        } else {
            bool rec = !strcmp(st, "only_recorded");
            fprintf(out, "      %-28s only in the %s checkpoint (%s)\n", jstr(m, "name"),
                    rec ? "recorded" : "replayed", jstr(m, rec ? "recorded" : "replayed"));
        }
    }
}

static void print_file(const json_t *f, FILE *out)
{
    const char *st = jstr(f, "state");
    const json_t *rec = json_object_get(f, "recorded"), *rep = json_object_get(f, "replayed");
    fprintf(out, "    %-24s ", jstr(f, "path"));
    if (!strcmp(st, "identical"))
        fprintf(out, "identical (%lld bytes, SHA-256 %.16s...)\n", jint(rep, "size"),
                jstr(rep, "sha256"));
    else if (!strcmp(st, "only_recorded"))
        fprintf(out, "only in the recorded checkpoint (%lld bytes)\n", jint(rec, "size"));
    else if (!strcmp(st, "only_replayed"))
        fprintf(out, "only in the replayed checkpoint (%lld bytes)\n", jint(rep, "size"));
    else if (!strcmp(st, "unknown"))
        fprintf(out, "not compared: its recorded content is not known\n");
    else if (!strcmp(st, "differs")) {
        const json_t *t = json_object_get(f, "tensors");
        fprintf(out, "DIFFERS");
        if (json_object_get(f, "bytes_differ"))
            fprintf(out, ": %lld bytes differ (recorded %lld bytes, replayed %lld)",
                    jint(f, "bytes_differ"), jint(rec, "size"), jint(rep, "size"));
        else
            fprintf(out, " (SHA-256 %.16s... recorded, %.16s... replayed)", jstr(rec, "sha256"),
                    jstr(rep, "sha256"));
        if (t) {
            fprintf(out, "; %lld of %lld tensors differ (", jint(t, "compared") - jint(t, "same"),
                    jint(t, "compared"));
            static const char *const parts[][2] = {{"values", "in values"},
                                                   {"layout", "in dtype or shape"},
                                                   {"only_recorded", "only recorded"},
                                                   {"only_replayed", "only replayed"}};
            const char *sep = "";
            for (size_t k = 0; k < 4; k++)
                if (jint(t, parts[k][0])) {
                    fprintf(out, "%s%lld %s", sep, jint(t, parts[k][0]), parts[k][1]);
                    sep = ", ";
                }
            fprintf(out, "), %lld bytes of tensor data", jint(t, "bytes_differ"));
        } else if (json_object_get(f, "no_tensors"))
            fprintf(out, "; %s", jstr(f, "no_tensors"));
        fprintf(out, "\n");
        if (t)
            print_tensors(t, out);
    } else {
        fprintf(out, "not compared\n");
    }
}

static void print_notes(const char *title, const json_t *a, FILE *out)
{
    const json_t *n;
    size_t i;
    if (json_array_size(a) && title)
        fprintf(out, "  %s:\n", title);
    json_array_foreach(a, i, n)
    {
        const char *p = jstr(n, "path");
        fprintf(out, "  %s%s%s%s\n", title ? "  " : "note: ", p, *p ? ": " : "", jstr(n, "why"));
    }
}

void replay_train_print(const json_t *o, FILE *out)
{
    const json_t *v, *dev = json_object_get(o, "device");
    size_t i;
    fprintf(out, "exec %lld (seq %lld):", jint(o, "exec_id"), jint(o, "seq"));
    json_array_foreach(json_object_get(o, "argv"), i, v) fprintf(out, " %s", json_string_value(v));
    fprintf(out, "\n  cwd %s; work folder %s", jstr(o, "cwd"), jstr(o, "work"));
    if (dev)
        fprintf(out, "; device %s (recorded %s)", jstr(dev, "replayed"), jstr(dev, "recorded"));
    fprintf(out, "\n");
    json_array_foreach(json_object_get(o, "inputs"), i, v) if (json_object_get(v, "used"))
        fprintf(out, "  %s %s: %s%s\n", jstr(v, "option"), jstr(v, "recorded"),
                json_is_true(json_object_get(v, "rebuilt")) ? "from its capture root, at "
                                                            : "outside the capture roots, in place",
                json_is_true(json_object_get(v, "rebuilt")) ? jstr(v, "used") : "");
    print_notes(NULL, json_object_get(o, "notes"), out);
    const json_t *files = json_object_get(o, "files");
    if (json_object_get(o, "replay") && json_array_size(files)) {
        fprintf(out, "  the checkpoint under %s:\n", jstr(o, "out"));
        json_array_foreach(files, i, v) print_file(v, out);
    }
    const json_t *why = json_object_get(o, "reasons");
    if (json_array_size(why) > 1) /* a single one is the summary */
        print_notes("why", why, out);
    fprintf(out, "  %s\n", jstr(o, "summary"));
}
