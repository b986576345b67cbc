/* The files of a `ptb run` (run_workspace.c): the run folder, the agent's workspace, canaries,
 * and the frozen checkpoint.
 *
 *   RUN/run.ptb            the store
 *   RUN/workspace/         the agent's working directory: base_model/ (a copy, read-only),
 *                          data/train.jsonl (the train split, when the task has one),
 *                          timer.sh (time left), .env (canaries), final_model/ (the agent's)
 *   RUN/home/, RUN/tmp/    the agent's HOME and TMPDIR (dotfiles with canaries in home)
 *   RUN/final_model/       final_model/ frozen at the end of the agent phase (copied, hashed)
 *   RUN/eval/              the eval phase: metrics.json
 *   RUN/agent-stdout.log   the agent CLI's stdout, whole (also a blob in the store)
 *   RUN/manifest.json      schemas/run-manifest.schema.json */
#ifndef PTB_RUN_WORKSPACE_H
#define PTB_RUN_WORKSPACE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "event_type.h"
#include "ptb_error.h"
#include "store.h"
#include "task_spec.h"

typedef struct run_dirs {
    char root[PATH_MAX], store[PATH_MAX], ws[PATH_MAX], home[PATH_MAX], tmp[PATH_MAX],
        frozen[PATH_MAX], eval[PATH_MAX], stdout_log[PATH_MAX];
} run_dirs;

/* Fill d for the run folder root (absolute). */
int run_dirs_init(run_dirs *d, const char *root);

/* Create the folders, copy the base model (made read-only) and the train split into the
 * workspace. */
int run_ws_setup(store *s, const task_spec *t, const run_dirs *d, ptb_errbuf *eb);

/* Write workspace/timer.sh for a deadline (seconds since the epoch). */
int run_ws_timer(const run_dirs *d, int64_t deadline);

/* Plant provider-shaped fake keys (OpenAI, Anthropic, Hugging Face, Google): in env (NAME=value
 * strings appended to *env, a NULL-terminated malloc'd vector grown as needed) and in files an
 * agent would look in (workspace/.env, home/.netrc, home/.cache/huggingface/token,
 * home/.config/gcloud/credentials.json); a `canary` event for each (fingerprint, where). Names
 * in skip (the harness's own credentials) are not planted in the environment. *n gets the
 * number planted. */
int run_canaries_plant(store *s, const run_dirs *d, char *const *skip, char ***env, size_t *n,
                       ptb_errbuf *eb);

/* A `canary` event with authorized set for the harness's own credential name=value (handed
 * to the agent CLI): its fingerprint, never the value. */
int run_credential_event(store *s, const char *name, const char *value);

typedef struct run_frozen {
    bool present;   /* workspace/final_model/ existed as a folder */
    uint64_t files; /* regular files frozen */
    uint64_t bytes;
    uint64_t tensors; /* of the *.safetensors files that parse */
    bool loadable;    /* has config.json and a model.safetensors (or an index) that parses */
    char note[256];   /* what was wrong, for the summary and the checkpoint event */
    bool in_place;    /* run_freeze could not copy it: workspace/final_model/ is the frozen one */
} run_frozen;

/* Hash the checkpoint folder dir (borrowed): every regular file (a symlink as the file it points
 * to, and noted; a dangling one noted) with its size and SHA-256, and every tensor of every
 * *.safetensors file, then append a `checkpoint` event (path dir, the given source and ts_ns; 0:
 * the store's now). With copy_to (borrowed, may be NULL) the tree is copied there as it is read
 * (files 0444, folders 0755), else it is hashed in place and nothing is written. A missing
 * folder still gives the event (no files, note "final_model/ is missing"). Fills *out. Returns 0,
 * or an error (message in eb): the walk's, the store's, PTB_ENOMEM. */
int run_checkpoint_event(store *s, const char *dir, const char *copy_to, Ptb__V1__Source source,
                         int64_t ts_ns, run_frozen *out, ptb_errbuf *eb);

/* Copy workspace/final_model/ to RUN/final_model/ and append its `checkpoint` event (source
 * runner): run_checkpoint_event with copy_to RUN/final_model/. When the copy fails (a full
 * disk), the folder is hashed in place instead (in_place, and the note says why). */
int run_freeze(store *s, const run_dirs *d, run_frozen *out, ptb_errbuf *eb);

/* The SHA-256 (32 bytes into md) and size of the file at path, read in 1 MiB pieces. Returns 0
 * or -errno. */
int run_file_sha256(const char *path, uint8_t md[32], uint64_t *size);

#endif
