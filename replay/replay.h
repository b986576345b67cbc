/* Replay (DESIGN.md "Replay"): what a recorded run's capture roots held after any event, rebuilt
 * from the store alone; what changed between two events; the recorded tool calls and training
 * run again and compared.
 *
 *   replay_state *st;
 *   replay_state_build(txn, seq, NULL, 0, &st, &eb);   // the roots as they were after seq
 *   replay_fs_write(txn, st, &fo, &fr, &eb);            // ... as files under a folder
 *
 * The state starts from the snapshot the recorder takes before the command starts (file.state
 * events, one per entry of each capture root) and applies every file.* event up to the seq:
 * writes (content = the blob captured at close, or only its hash), opens that create or
 * truncate, truncate, rename (folders with what they hold; RENAME_EXCHANGE), unlink, mkdir, hard
 * and symbolic links (hard links share their content), chmod. What the store cannot give is kept
 * as such (content not captured, first state unknown, a walk cut short) and listed, never
 * filled in silently. */
#ifndef PTB_REPLAY_H
#define PTB_REPLAY_H

#include <stdbool.h>
#include <stdint.h>

#include "ptb_error.h"
#include "store.h"

typedef enum rp_kind { RP_FILE, RP_DIR, RP_SYMLINK, RP_OTHER } rp_kind;

/* what is known of a file's bytes */
typedef enum rp_content {
    RP_KNOWN,   /* a blob in the store (sha), cut or extended with zeros to size */
    RP_HASHED,  /* only the hash: not captured (over a cap) or the blob is gone */
    RP_UNKNOWN, /* neither: unreadable when recorded, or its first state was not recorded */
} rp_content;

/* A file's content, shared by its hard links. */
typedef struct rp_node {
    uint8_t sha[32];    /* the blob (RP_KNOWN) or the hash (RP_HASHED) the content comes from */
    uint64_t blob_size; /* size of that content */
    uint64_t size;      /* the file's size: blob_size unless truncated since */
    rp_content content;
    int refs;
} rp_node;

typedef struct rp_entry {
    char *path; /* absolute, as recorded */
    rp_kind kind;
    uint32_t mode;   /* permission bits */
    rp_node *node;   /* RP_FILE */
    char *target;    /* RP_SYMLINK */
    uint64_t seq;    /* the event that last changed it (0: none) */
    bool writing;    /* opened for writing and not closed yet at the seq: content as of the open */
    bool implied;    /* a folder no event described: made because something under it was */
    bool mode_known; /* false: a file created by open whose close was not reached, an implied
                        folder (mode 0755 then) */
} rp_entry;

typedef struct rp_root {
    char *path;
    bool snapshot; /* its first state was recorded (file.state root) */
    bool cut;      /* the snapshot walk stopped early or skipped an unreadable folder */
} rp_root;

/* Something the rebuilt state cannot give, with the reason in words. */
typedef struct rp_note {
    char *path;
    char *why;
} rp_note;

typedef struct replay_state {
    rp_entry **slot; /* open addressing by path; NULL empty, RP_TOMB removed */
    size_t cap, n, used;
    rp_root *roots;
    size_t nroots;
    rp_note *notes; /* state-level omissions (walks cut, unreadable folders, roots without a
                       snapshot, files unreadable when recorded) */
    size_t nnotes, notes_cap;
    uint64_t at;      /* the seq the state is after */
    int64_t at_ts;    /* its time */
    uint64_t last;    /* the store's last seq */
    uint64_t applied; /* file events applied */
} replay_state;

/* The state of the capture roots after event at (1..last seq). extra_roots: folders to rebuild
 * besides the store's snapshot roots (a root recorded without a snapshot, an older store):
 * their first state is unknown, only what the run wrote under them is known (a note says so).
 * PTB_EINVAL (message) when at is past the end or there is nothing to rebuild. */
int replay_state_build(store_txn *t, uint64_t at, const char *const *extra_roots, size_t nextra,
                       replay_state **out, ptb_errbuf *eb);
void replay_state_free(replay_state *st);

/* The entry at path, or NULL. */
rp_entry *replay_state_get(const replay_state *st, const char *path);

/* The entries sorted by path (folders before what they hold); *out malloc'd, entries borrowed. */
int replay_state_sorted(const replay_state *st, rp_entry ***out, size_t *n);

/* in ("/" and relative parts), absolute, with "", "." and ".." resolved textually (no link
 * followed) into out (cap bytes; strlen(in) + 2 always suffice). Returns its length. */
size_t replay_path_normalise(const char *in, char *out, size_t cap);

/* The root path is under (or equal to), or NULL. */
const rp_root *replay_state_root_of(const replay_state *st, const char *path);

/* The seq to rebuild at from a --at argument: a seq (digits), or a time (ISO 8601, as in the
 * query language): the last event at or before it. PTB_EINVAL with a message when it is past the
 * end, before the first event or not understood. */
int replay_parse_at(store_txn *t, const char *arg, uint64_t *seq, ptb_errbuf *eb);

/* ------------------------------------------------------------------ writing a tree */

typedef struct replay_fs_options {
    const char *to;        /* the folder to write into: created, or empty */
    const char *root;      /* NULL: every root, each at to + its absolute path; else only what is
                            under this folder, written at to itself */
    bool create_missing;   /* files whose content is not known: created empty (listed still) */
    const char *fill_from; /* a folder with the same layout as root (or as "/" when root is NULL)
                              whose files give the content the store lacks, when their SHA-256
                              matches the recorded one */
    bool progress;         /* progress on stderr */
} replay_fs_options;

typedef struct replay_fs_result {
    uint64_t dirs, files, symlinks, links, bytes;
    uint64_t filled;  /* files whose content came from fill_from */
    rp_note *missing; /* files not written (or written empty with create_missing), why */
    size_t nmissing, missing_cap;
} replay_fs_result;

/* Write the state under o->to. Returns 0 when every entry was written (r->nmissing says what is
 * missing: the tree is complete only when it is 0 and st->nnotes is 0), or an error: PTB_EINVAL
 * (to not empty, root not in the state), -errno, a store error. */
int replay_fs_write(store_txn *t, const replay_state *st, const replay_fs_options *o,
                    replay_fs_result *r, ptb_errbuf *eb);
void replay_fs_result_free(replay_fs_result *r);

/* A folder to write into: dir made (with its parents) when missing, refused when it is not an
 * empty folder (PTB_EINVAL: "WHAT DIR is not empty"); dir NULL: a new folder
 * $TMPDIR/PREFIX-XXXXXX. Its absolute path into out. 0, or an error with eb's message. */
int replay_new_dir(const char *dir, const char *what, const char *prefix, char *out, size_t cap,
                   ptb_errbuf *eb);

/* Add a note (path, why printf-style) to a list; 0 or PTB_ENOMEM. */
int replay_note(rp_note **v, size_t *n, size_t *cap, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif
