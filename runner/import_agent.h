/* ptb import --agent-log (import_agent.c), called by import_main (import_cli.c); its --format
 * also serves --ptb-results (import_ptb.c). */
#ifndef PTB_IMPORT_AGENT_H
#define PTB_IMPORT_AGENT_H

#include <stdbool.h>

#include "agent_parse.h"

/* --format's value name (NULL: auto) as *out. Returns 0, or PTB_EXIT_USAGE with the message
 * printed. */
int import_agent_format(const char *name, agent_format *out);

/* Import the agent stream or transcript file ("-": standard input) in format (a name of
 * agent_format_name; NULL: auto) into the store dir (created, or with append an existing one).
 * Prints its messages and summary on stderr; returns a PTB_EXIT_* code. */
int import_agent(const char *file, const char *format, const char *dir, bool append);

#endif
