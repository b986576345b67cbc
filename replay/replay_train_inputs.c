/* The inputs of a recorded training command, made available as they were when it started
 * (replay_train.h): the capture roots that hold them rebuilt from the store, the others checked
 * in place against the hashes the store has. What cannot be had is a reason, never a guess:
 * ptb train reads its --base folder and its --data file and nothing else, so only what lies
 * under them stops the replay. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replay_train.h"

#define reason(l, path, ...) replay_note(&(l)->v, &(l)->n, &(l)->cap, path, __VA_ARGS__)

/* An input outside the capture roots, checked against st2 (the state with the input's parent
 * folder as an extra root: what the run wrote there). */
static int check_in_place(const rt_run *r, const rt_input *in, const replay_state *st2,
                          rt_notes *reasons)
{
    const char **files = NULL;
    size_t n = 0;
    rp_entry **v = NULL;
    size_t nv = 0;
    int rc = in->dir ? replay_state_sorted(st2, &v, &nv) : 0;
    if (rc)
        return rc;
    if (!(files = malloc((nv + r->nreads + 1) * sizeof *files))) {
        free(v);
        return PTB_ENOMEM;
    }
    if (!in->dir)
        files[n++] = in->path;
    for (size_t i = 0; i < nv; i++)
        if (v[i]->kind == RP_FILE && replay_train_under(v[i]->path, in->path))
            files[n++] = v[i]->path;
    for (size_t i = 0; in->dir && i < r->nreads; i++)
        if (replay_train_under(r->reads[i], in->path) && !replay_state_get(st2, r->reads[i]))
            files[n++] = r->reads[i];
    if (!n)
        rc = reason(reasons, in->path,
                    "%s: outside the capture roots, and the store knows no file in it", in->opt);
    for (size_t i = 0; !rc && i < n; i++) {
        const rp_entry *e = replay_state_get(st2, files[i]);
        const rp_node *nd = e && e->kind == RP_FILE ? e->node : NULL;
        if (!nd || nd->content == RP_UNKNOWN || nd->size != nd->blob_size) {
            rc = reason(reasons, files[i],
                        "%s: outside the capture roots, and the store has no hash of it (ptb "
                        "record hashes what is written, not what is read): record with "
                        "--capture-root over it",
                        in->opt);
            continue;
        }
        uint8_t sha[32];
        uint64_t size;
        char want[65], got[65];
        store_hex(nd->sha, 32, want);
        int h = replay_train_file_sha256(files[i], sha, &size);
        if (h)
            rc = reason(reasons, files[i],
                        "%s: outside the capture roots and not readable here (%s); it was "
                        "SHA-256 %s",
                        in->opt, strerror(-h), want);
        else if (memcmp(sha, nd->sha, 32)) {
            store_hex(sha, 32, got);
            rc = reason(reasons, files[i],
                        "%s: outside the capture roots, and the file here is not the recorded "
                        "one (SHA-256 %s here, %s recorded)",
                        in->opt, got, want);
        }
    }
    free(files);
    free(v);
    return rc;
}

/* Rebuild root under o->to; what it lacks under an input is a reason. */
static int rebuild_root(store_txn *t, const replay_state *st, const char *root, rt_input *in,
                        size_t nin, const rt_inputs_options *o, rt_notes *reasons, rt_notes *notes,
                        ptb_errbuf *eb)
{
    char to[PATH_MAX];
    if (snprintf(to, sizeof to, "%s%s", o->to, root) >= (int)sizeof to)
        return ptb_errf(eb, PTB_EINVAL, "%s%s: the path is too long", o->to, root);
    replay_fs_options fo = {.to = to, .root = root, .fill_from = o->fill_from};
    replay_fs_result fr;
    if (o->progress)
        fprintf(stderr, "ptb replay train: rebuilding %s as it was at seq %llu into %s\n", root,
                (unsigned long long)st->at, to);
    int rc = replay_fs_write(t, st, &fo, &fr, eb);
    if (!rc && fr.filled)
        rc = reason(notes, root, "%llu files taken from --fill-from %s (their SHA-256 checked)",
                    (unsigned long long)fr.filled, o->fill_from);
    size_t other = 0;
    for (size_t m = 0; !rc && m < fr.nmissing; m++) {
        const rt_input *hit = NULL;
        for (size_t i = 0; i < nin && !hit; i++)
            if (replay_train_under(fr.missing[m].path, in[i].path))
                hit = &in[i];
        if (!hit) {
            other++;
            continue;
        }
        bool hint = strstr(fr.missing[m].why, "captured") && !o->fill_from;
        rc = reason(reasons, fr.missing[m].path, "%s: %s%s", hit->opt, fr.missing[m].why,
                    hint ? ": give --fill-from DIR, a folder laid out as the capture root that "
                           "holds the file (the original folder, if it is unchanged: the file's "
                           "SHA-256 is checked)"
                         : "");
    }
    if (!rc && other)
        rc = reason(notes, root,
                    "%zu files of this capture root could not be rebuilt; ptb train reads none "
                    "of them",
                    other);
    replay_fs_result_free(&fr);
    return rc;
}

/* An input under a root: there when the command started, of the right kind, and nothing the
 * state says it does not know lies under it. */
static int check_rebuilt(const replay_state *st, const rt_input *in, rt_notes *reasons)
{
    const rp_entry *e = replay_state_get(st, in->path);
    int rc = 0;
    if (!e)
        rc = reason(reasons, in->path,
                    "%s: not in its capture root when the command started (seq %llu)", in->opt,
                    (unsigned long long)st->at);
    else if ((e->kind == RP_DIR) != in->dir)
        rc = reason(reasons, in->path, "%s: a %s when the command started", in->opt,
                    e->kind == RP_DIR ? "folder, not a file" : "file, not a folder");
    for (size_t k = 0; !rc && k < st->nnotes; k++) {
        const rp_note *nt = &st->notes[k];
        if (replay_train_under(nt->path, in->path) ||
            (!e && replay_train_under(in->path, nt->path)))
            rc = reason(reasons, nt->path, "%s: %s", in->opt, nt->why);
    }
    return rc;
}

int replay_train_inputs(store_txn *t, uint64_t seq, const rt_run *r, rt_input *in, size_t nin,
                        const rt_inputs_options *o, replay_state **stp, rt_notes *reasons,
                        rt_notes *notes, ptb_errbuf *eb)
{
    replay_state *st = NULL;
    *stp = NULL;
    int rc = replay_state_build(t, seq, NULL, 0, &st, eb);
    if (rc == PTB_EINVAL) { /* no snapshot of a root: every input is outside the roots */
        memset(eb, 0, sizeof *eb);
        rc = 0;
    }
    if (rc)
        return rc;
    *stp = st;
    const rp_root *roots[8];
    size_t nroots = 0, nout = 0;
    char *parents[8];
    for (size_t i = 0; !rc && i < nin && i < 8; i++) {
        const rp_root *root = st ? replay_state_root_of(st, in[i].path) : NULL;
        in[i].rebuilt = root != NULL;
        if (!root) {
            /* its folder as a root of unknown first state: the hashes of what the run wrote */
            char *p = strdup(in[i].path), *s = p ? strrchr(p, '/') : NULL;
            if (s)
                s[s == p] = 0;
            parents[nout++] = p;
            in[i].used = strdup(in[i].path);
        } else if (asprintf(&in[i].used, "%s%s", o->to, in[i].path) < 0) {
            in[i].used = NULL;
        }
        if (!in[i].used || (!root && !parents[nout - 1]))
            rc = PTB_ENOMEM;
        bool have = false;
        for (size_t k = 0; root && k < nroots; k++)
            have |= roots[k] == root;
        if (root && !have)
            roots[nroots++] = root;
    }
    /* one rebuild per root; an outer root holds the inner ones */
    for (size_t k = 0; !rc && k < nroots; k++) {
        bool inner = false;
        for (size_t m = 0; m < nroots; m++)
            inner |= m != k && replay_train_under(roots[k]->path, roots[m]->path);
        if (!inner)
            rc = rebuild_root(t, st, roots[k]->path, in, nin, o, reasons, notes, eb);
    }
    for (size_t i = 0; !rc && i < nin; i++)
        if (in[i].rebuilt)
            rc = check_rebuilt(st, &in[i], reasons);
    if (!rc && nout) {
        replay_state *st2 = NULL;
        rc = replay_state_build(t, seq, (const char *const *)parents, nout, &st2, eb);
        for (size_t i = 0; !rc && i < nin; i++)
            if (!in[i].rebuilt)
                rc = check_in_place(r, &in[i], st2, reasons);
        replay_state_free(st2);
    }
    for (size_t i = 0; i < nout; i++)
        free(parents[i]);
    if (rc && !eb->msg[0])
        ptb_errf(eb, rc, "the inputs: %s", ptb_strerror(rc));
    return rc;
}
