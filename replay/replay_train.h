/* Training replay (DESIGN.md "Replay", docs/commands/ptb-replay.md "train"): the parts of
 * `ptb replay train` that read the store and compare checkpoints; the command itself (inputs
 * rebuilt, the training run again, the report) is runner/replay_train.c.
 *
 *   rt_execs x;   replay_train_execs_read(txn, &x, &eb);        // every proc.exec of the store
 *   rt_run r;     replay_train_run_read(txn, &x, exec_id, &r, &eb);  // what it did with files
 *   rt_file_cmp c; replay_train_file_compare(recorded, replayed, &c, &eb); // tensor by tensor
 *
 * A training command is the process that ran `ptb train ...` and everything it started: a
 * process that executes another program keeps its pid but gets a new exec_id, so a `ptb` that
 * is a script calling the real one (with other arguments) is one command whose checkpoint is
 * written by its descendant. What the command left is followed through renames (ptb train
 * writes NAME.tmp and renames it), so the recorded checkpoint is the files as the command left
 * them, each with the exec_id that wrote it. */
#ifndef PTB_REPLAY_TRAIN_H
#define PTB_REPLAY_TRAIN_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "replay.h"
#include "safetensors.h"

/* ------------------------------------------------------------------ paths, notes */

/* path made absolute against cwd and cleaned textually (".", "..", "//"), as the recorder
 * writes paths: how a recorded argument names a recorded file. NULL when out of memory; caller
 * frees. */
char *replay_train_abs_path(const char *cwd, const char *path);

/* Whether path is dir or under it. */
bool replay_train_under(const char *path, const char *dir);

/* SHA-256 and size of the file at path, read in 1 MiB pieces: 0 or -errno. */
int replay_train_file_sha256(const char *path, uint8_t sha[32], uint64_t *size);

/* A growable list of notes (replay_note adds to it). */
typedef struct rt_notes {
    rp_note *v;
    size_t n, cap;
} rt_notes;
void replay_train_notes_free(rt_notes *l);

/* ------------------------------------------------------------------ processes */

typedef struct rt_exec {
    uint64_t exec_id, parent, seq; /* seq: its proc.exec event */
    int32_t pid;
    char *exe, *filename, *cwd; /* as recorded; filename may be "" */
    char **argv;                /* argc strings */
    size_t argc;
    int train_at; /* argv index of "train" when the process is a `ptb train` command, else -1 */
} rt_exec;

typedef struct rt_execs {
    rt_exec *v; /* sorted by exec_id */
    size_t n;
} rt_execs;

/* Every proc.exec of the store (first_seen ones included), sorted by exec_id. A process is a
 * `ptb train` command when argv[0] (or exe) has basename `ptb` and argv[1] is `train`, or when
 * it is a script named `ptb` (filename basename `ptb`, argv = interpreter [option] script
 * train ...): train_at says where `train` is; the recorded arguments follow it. *out is freed
 * with replay_train_execs_free. Store errors with a message. */
int replay_train_execs_read(store_txn *t, rt_execs *out, ptb_errbuf *eb);
void replay_train_execs_free(rt_execs *x);

/* The exec with that id, or NULL. Borrowed from x. */
const rt_exec *replay_train_exec_find(const rt_execs *x, uint64_t exec_id);

/* ------------------------------------------------------------------ what a command did */

/* A file as the command left it. */
typedef struct rt_file {
    char *path;
    uint8_t sha[32];
    bool hashed;   /* sha is the content's SHA-256 (false: unreadable when it was closed) */
    bool captured; /* the bytes are a blob in the store */
    uint64_t size, seq, exec_id; /* the file.write that gave its content, by whom */
} rt_file;

typedef struct rt_run {
    uint64_t *ids; /* the command's exec_ids: itself and its descendants, sorted */
    size_t nids;
    rt_file *files; /* written files as the command left them (renames and unlinks of the
                       command followed), sorted by path */
    size_t nfiles;
    char **reads; /* paths it read (file.read), sorted, unique */
    size_t nreads;
    bool exited;           /* a proc.exit of the command's first process was recorded */
    int exit_code, signal; /* of the last program that process ran */
    rt_notes later; /* files it left that another process changed afterwards (path, who, how) */
} rt_run;

/* What exec_id and its descendants did with files. PTB_EINVAL when exec_id is not in x; store
 * errors with a message. r is freed with replay_train_run_free (also after an error). */
int replay_train_run_read(store_txn *t, const rt_execs *x, uint64_t exec_id, rt_run *r,
                          ptb_errbuf *eb);
void replay_train_run_free(rt_run *r);

/* Whether id is one of the command's exec_ids. */
bool replay_train_run_has(const rt_run *r, uint64_t id);

/* ------------------------------------------------------------------ inputs */

typedef struct rt_input {
    const char *opt; /* the option that names it ("--base", "--data"); borrowed */
    char *path;      /* absolute, as the command named it */
    bool dir;        /* a folder is expected (--base) */
    char *used;      /* set by replay_train_inputs: what to give ptb train */
    bool rebuilt;    /* used is a copy rebuilt from the store, not path in place */
} rt_input;

typedef struct rt_inputs_options {
    const char *to;        /* where capture roots are rebuilt: to + the root's absolute path */
    const char *fill_from; /* replay_fs_options.fill_from, for each root rebuilt (NULL: none) */
    bool progress;         /* a line on stderr per root rebuilt */
} rt_inputs_options;

/* Make the inputs of the command whose proc.exec is at seq available as they were then. An
 * input under a capture root: its root rebuilt (replay_fs_write) under o->to; what the rebuild
 * lacks under the input (content not captured, not in the snapshot) goes to reasons. An input
 * outside the roots: used in place when every file of it that the store knows a hash of (what
 * the run wrote there), or that the command read (r->reads), is here with that SHA-256; else a
 * reason. notes: remarks that do not stop the replay (files taken from fill_from, files of a
 * root that could not be rebuilt but that the training does not read). *st: the roots' state
 * at seq (NULL when the store has no snapshot); the caller frees it with replay_state_free.
 * Returns 0 (the replay may go on when reasons is empty) or an error with a message. */
int replay_train_inputs(store_txn *t, uint64_t seq, const rt_run *r, rt_input *in, size_t nin,
                        const rt_inputs_options *o, replay_state **st, rt_notes *reasons,
                        rt_notes *notes, ptb_errbuf *eb);

/* ------------------------------------------------------------------ comparing checkpoints */

typedef enum rt_tensor_state {
    RT_SAME,          /* same dtype, shape and bytes */
    RT_VALUES,        /* same dtype and shape, other values */
    RT_LAYOUT,        /* another dtype or shape */
    RT_ONLY_RECORDED, /* in the recorded file only */
    RT_ONLY_REPLAYED, /* in the replayed file only */
} rt_tensor_state;

typedef struct rt_tensor_cmp {
    char *name;
    rt_tensor_state state;
    char layout_a[128], layout_b[128]; /* "F32 [48, 16]" of each side ("" where absent) */
    uint64_t elements;                 /* of the recorded side (RT_SAME, RT_VALUES) */
    uint64_t differ;                   /* elements whose bytes differ */
    uint64_t bytes_differ;
    bool numeric;   /* max_abs and rel_l2 are set (a float or integer dtype) */
    double max_abs; /* max |replayed - recorded| over elements where both are finite */
    double rel_l2;  /* ||replayed - recorded|| / ||recorded|| (INFINITY when ||recorded|| = 0) */
    uint64_t nonfinite; /* differing elements where one side is NaN or infinite */
} rt_tensor_cmp;

typedef struct rt_meta_diff {
    char *key, *a, *b; /* a/b NULL where the key is absent on that side */
} rt_meta_diff;

typedef struct rt_file_cmp {
    uint64_t size_a, size_b;
    uint64_t bytes_differ; /* bytes at the same offset that differ, plus the size difference */
    bool tensors;          /* both sides read as safetensors: v holds every tensor */
    char why_not[600];     /* why not, when a side is safetensors and the other not */
    rt_tensor_cmp *v;      /* sorted by name */
    size_t n;
    uint64_t same, values, layout, only_a, only_b;
    uint64_t tensor_bytes_differ; /* sum over tensors of bytes_differ (and the size of those on
                                     one side only) */
    rt_meta_diff *meta;           /* safetensors metadata that differ */
    size_t nmeta;
} rt_file_cmp;

/* Compare recorded file a with replayed file b: bytes, and when both are safetensors files,
 * tensor by tensor (names, dtype, shape, values) and metadata. A file that is not safetensors
 * is compared as bytes (tensors false). Errors: -errno reading a file, PTB_ENOMEM. c is freed
 * with replay_train_file_compare_free (also after an error). */
int replay_train_file_compare(const char *a, const char *b, rt_file_cmp *c, ptb_errbuf *eb);
void replay_train_file_compare_free(rt_file_cmp *c);

/* ------------------------------------------------------------------ the report */

typedef struct rt_totals {
    size_t files;   /* in the report, both sides */
    size_t differ;  /* that differ (or are on one side only) */
    size_t unknown; /* recorded with no known content: not compared */
    size_t tensors, tensors_differ;
    uint64_t bytes_differ; /* bytes that differ, files on one side counted whole */
} rt_totals;

/* Compare dir/recorded/ with dir/new/. files: the report's array of recorded files, each
 * {"path": relative, "recorded": {"sha256": hex or null, "size", "bytes": true when
 * dir/recorded/PATH holds its bytes, ...}}; the files of dir/new/ that are not in it are
 * appended. Each gets "state" (identical, differs, only_recorded, only_replayed, unknown),
 * "replayed" {"sha256", "size"} when it is in new/, and when it differs with its bytes on both
 * sides "bytes_differ" and, for safetensors, "tensors" (counts, "differing", "metadata"). 0 or
 * an error with a message. */
int replay_train_compare_dir(const char *dir, json_t *files, rt_totals *t, ptb_errbuf *eb);

/* s as a JSON string (new reference; NULL for NULL): bytes outside valid UTF-8 as "\xHH"
 * (paths and arguments from the store need not be UTF-8; jansson refuses them). */
json_t *replay_train_json_str(const char *s);

/* One command's report (an element of "processes" in the JSON of `ptb replay train --json`)
 * as text. */
void replay_train_print(const json_t *proc, FILE *out);

#endif
