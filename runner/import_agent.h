/* ptb import --agent-log (import_agent.c), called by import_main (import_cli.c). */
#ifndef PTB_IMPORT_AGENT_H
#define PTB_IMPORT_AGENT_H

#include <stdbool.h>

/* Import the agent stream or transcript file ("-": standard input) in format (a name of
 * agent_format_name; NULL: auto) into the store dir (created, or with append an existing one).
 * Prints its messages and summary on stderr; returns a PTB_EXIT_* code. */
int import_agent(const char *file, const char *format, const char *dir, bool append);

#endif
