/* Reference checkpoints kept by `ptb refs` (docs/commands/ptb-refs.md), so that `ptb audit`
 * can compare a final checkpoint with, say, the base's official instruct model without that
 * model's folder.
 *
 * What is kept, in REFS/NAME/ (REFS: audit_refs_dir):
 *   ref.json            {"version": 1, "name", "path": the folder's absolute path, "base": the
 *                       base's absolute path or null, "created", "seed" (16 hex digits),
 *                       "sketch": K, "bytes": the reference's tensor bytes,
 *                       "files": [{"name", "sha256"}] (its top-level *.safetensors),
 *                       "tensors": [{"name", "dtype", "shape", "sha256", and when it could be
 *                       compared with the base's tensor of that name: "base_sha256", "ii"
 *                       (‖Δi‖² exact, Δi = reference − base), "k"}], sorted by name}
 *   sketch.safetensors  per compared tensor, F32 [k]: the count sketch of Δi in
 *                       k = min(n, K) floats (Δi itself when n <= K), audit_ckpt_num.h
 * Identity (ckpt.identical_to_reference) needs only the hashes; α and cos need ⟨Δc, Δi⟩,
 * which the sketch estimates (‖Δc‖² is computed from the final and the base; ‖Δi‖² is stored).
 * The audit checks that its base is the one the sketch was made against (base_sha256 per
 * tensor), and uses the folder itself (exact numbers) when it is still at `path` with the same
 * tensors. A 4B-parameter model of ~400 tensors keeps ~26 MB with K = 16384.
 *
 * Data read back is not trusted: a ref.json or sketch that fails a check is PTB_ECORRUPT. */
#ifndef PTB_AUDIT_REFS_H
#define PTB_AUDIT_REFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ptb_error.h"

#define AUDIT_REFS_SKETCH_DEFAULT 16384u /* floats per tensor */
#define AUDIT_REFS_NAME_MAX 64           /* bytes of a name */
#define AUDIT_REFS_FILES_MAX 4096        /* weight files listed */

/* A file of a checkpoint folder and its SHA-256. */
typedef struct audit_ref_file {
    char name[256]; /* relative to the folder */
    uint8_t sha[32];
} audit_ref_file;

/* One tensor of a stored reference. */
typedef struct audit_ref_tensor {
    const char *name; /* borrowed from the audit_ref */
    int dtype;        /* safetensors_dtype */
    uint32_t rank;
    uint64_t shape[16];
    uint64_t n; /* elements */
    uint8_t sha[32];
    bool has_delta; /* compared with the base: base_sha, ii, k and sk hold */
    uint8_t base_sha[32];
    double ii;
    uint32_t k;
    const float *sk; /* k floats, borrowed from the audit_ref */
} audit_ref_tensor;

typedef struct audit_ref {
    char name[AUDIT_REFS_NAME_MAX + 1];
    char *path, *base, *created; /* base NULL: kept without a base (identity only) */
    uint64_t seed, bytes;
    uint32_t sketch;
    audit_ref_tensor *t; /* sorted by name */
    size_t n;
    audit_ref_file *files;
    size_t nfiles;
    void *priv; /* the JSON and the sketch file */
} audit_ref;

/* The folder of the stored references: opt (--refs) when not NULL, else $PTB_REFS_DIR, else
 * $XDG_DATA_HOME/ptb/refs, else $HOME/.local/share/ptb/refs. PTB_EINVAL when none applies or
 * the path does not fit cap. */
int audit_refs_dir(const char *opt, char *out, size_t cap, ptb_errbuf *eb);

/* Whether name is a valid reference name: 1..AUDIT_REFS_NAME_MAX of letters, digits, '.', '_',
 * '-', not starting with '.'. */
bool audit_refs_name_ok(const char *name);

/* What audit_refs_add did. */
typedef struct audit_refs_added {
    size_t tensors, compared, not_in_base; /* not_in_base: absent, other shape or dtype */
    uint64_t bytes, sketch_bytes;
} audit_refs_added;

/* Keep the reference in folder dir as refs_dir/name (refs_dir is created when missing):
 * hashes of its tensors and files and, with base_dir, the sketch of Δi with k floats per
 * tensor (0: AUDIT_REFS_SKETCH_DEFAULT) and seed (0: a random one). The new folder appears whole
 * or not at all. Errors: PTB_EINVAL (bad name, k over AUDIT_CKPT_SKETCH_MAX), PTB_EEXIST (name
 * taken), PTB_ENOTFOUND (dir or base_dir is not a safetensors checkpoint), PTB_ECORRUPT,
 * -errno (unreadable, cannot write), PTB_ENOMEM; eb says which. */
int audit_refs_add(const char *refs_dir, const char *name, const char *dir, const char *base_dir,
                   uint32_t k, uint64_t seed, audit_refs_added *st, ptb_errbuf *eb);

/* Open refs_dir/name: *out is the caller's, freed with audit_ref_close. PTB_ENOTFOUND when not
 * stored, PTB_ECORRUPT, -errno, PTB_ENOMEM. */
int audit_ref_open(const char *refs_dir, const char *name, audit_ref **out, ptb_errbuf *eb);
void audit_ref_close(audit_ref *r);

/* The same from bytes: ref.json's text (json, len) and sketch.safetensors' (sk, sklen; borrowed:
 * they must outlive *out). 0, PTB_ECORRUPT (eb: why) or PTB_ENOMEM. For the fuzzer. */
int audit_ref_parse(const char *name, const char *json, size_t len, const void *sk, size_t sklen,
                    audit_ref **out, ptb_errbuf *eb);

/* The stored tensor called name, or NULL. Borrowed from r. */
const audit_ref_tensor *audit_ref_find(const audit_ref *r, const char *name);

/* The names stored in refs_dir, sorted; *names is the caller's (audit_refs_names_free). A
 * missing folder is an empty list. */
int audit_refs_names(const char *refs_dir, char ***names, size_t *n, ptb_errbuf *eb);
void audit_refs_names_free(char **names, size_t n);

/* Remove refs_dir/name. PTB_ENOTFOUND when not stored. */
int audit_refs_rm(const char *refs_dir, const char *name, ptb_errbuf *eb);

/* The SHA-256 of the top-level *.safetensors files of dir (at most AUDIT_REFS_FILES_MAX, by
 * name): *files is the caller's (free). Unreadable files are left out. 0 or PTB_ENOMEM. */
int audit_refs_hash_files(const char *dir, audit_ref_file **files, size_t *n);

#endif
