/* `ptb replay exec` and `ptb replay train` (docs/commands/ptb-replay.md): the recorded tool calls
 * and a recorded training run executed again, compared with the recording. Each returns a
 * PTB_EXIT_* code and prints its report. */
#ifndef PTB_REPLAY_RUN_H
#define PTB_REPLAY_RUN_H

#include <stdbool.h>
#include <stdint.h>

/* runner/replay_exec.c: the tool calls (or top-level commands) between from and until (seq or
 * time; NULL: all) run again under the recorder, each from the state rebuilt before it; work:
 * the folder for the rebuilt trees and the new store (NULL: a new folder under $TMPDIR); out:
 * the new run's store (NULL: WORK/replay.ptb); timeout_s per step (0: 3600). */
int replay_exec_main(const char *store, const char *from, const char *until, const char *work,
                     const char *out, bool json, bool quiet, int timeout_s);

/* runner/replay_train.c: the `ptb train` process exec_id (0: each one of the store) run again
 * from its recorded inputs; its checkpoint compared with the recorded one, tensor by tensor. */
int replay_train_main(const char *store, uint64_t exec_id, const char *work, const char *device,
                      int threads, const char *fill_from, bool json, bool quiet);

#endif
