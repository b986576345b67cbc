/* ptb export --perfetto: export_perfetto.c. */
#ifndef PTB_EXPORT_PERFETTO_H
#define PTB_EXPORT_PERFETTO_H

#include <stdint.h>

/* Write the events of store dir with seqs in [from, to] (0: unbounded) as a Chrome/Perfetto trace
 * JSON to file ("-": standard output). Returns a PTB_EXIT_* code, after printing why. */
int export_perfetto(const char *dir, const char *file, uint64_t from, uint64_t to);

#endif
