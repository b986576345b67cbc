/* ptb import --ptb-results (import_ptb.c), called by import_main (import_cli.c). */
#ifndef PTB_IMPORT_PTB_H
#define PTB_IMPORT_PTB_H

#include <stdbool.h>

/* Import the PostTrainBench result folder dir (borrowed) into the store store_dir (created, or
 * with append an existing one); format: the agent stream's format (a name of agent_format_name;
 * NULL: auto). Prints its messages and summary on stderr; returns a PTB_EXIT_* code:
 * PTB_EXIT_CORRUPT (and no store made) when dir holds none of the files of a result folder. */
int import_ptb(const char *dir, const char *format, const char *store_dir, bool append);

#endif
