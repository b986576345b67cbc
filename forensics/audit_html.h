/* `ptb audit --format html`: one self-contained HTML file (inline CSS and JS, nothing fetched)
 * with, per store, a summary, the verdict table, every finding with its evidence, and a timeline
 * of the run drawn from its events, the evidence of each finding marked on it.
 *
 *   json_t *tl;  audit_timeline_read(&r, &rep, &tl);   // while the store is open (audit_timeline.c)
 *   audit_html_run run = {.store = "RUN.ptb", .rep = &rep, .timeline = tl};
 *   audit_html_write(stdout, &run, 1);                 // audit_html.c
 *
 * Everything from the store is attacker-controlled (tool inputs, argv, file and host names): the
 * static parts are HTML-escaped; the timeline goes in as JSON in a non-executed script element
 * (every '<', '>' and '&' escaped), which the page's script reads and draws with textContent
 * only; a Content-Security-Policy lets only the page's own script (by its hash) run.
 *
 * Bounded for stores of millions of events: at most AUDIT_TL_TOOLS tool calls, AUDIT_TL_PROCS
 * processes, AUDIT_TL_NET network events and AUDIT_TL_EVIDENCE evidence events are drawn (each
 * lane says how many more it had), GPU kernels and copies are summed into AUDIT_TL_BUCKETS time
 * buckets, and strings are cut to AUDIT_TL_TEXT bytes. */
#ifndef PTB_AUDIT_HTML_H
#define PTB_AUDIT_HTML_H

#include <stdio.h>

#include <jansson.h>

#include "audit.h"

#define AUDIT_TL_TOOLS 2000
#define AUDIT_TL_PROCS 1500
#define AUDIT_TL_NET 1500
#define AUDIT_TL_EVIDENCE 1000
#define AUDIT_TL_BUCKETS 400
#define AUDIT_TL_TEXT 240

/* The timeline of r's run and its summary (run.start, the last eval.result, the evidence kinds
 * the store has), the findings of rep marked (their evidence seqs and the processes of those
 * events). *out: a JSON object, the caller frees with json_decref. 0, PTB_ENOMEM or a store
 * error. The layout is the page script's (audit_html.js), not a documented format. */
int audit_timeline_read(audit_run *r, const audit_report *rep, json_t **out);

typedef struct audit_html_run {
    const char *store;       /* borrowed */
    const char *error;       /* why the store could not be audited, or NULL; borrowed */
    const audit_report *rep; /* borrowed; NULL with error */
    const json_t *timeline;  /* audit_timeline_read's, or NULL; borrowed */
} audit_html_run;

/* Write the report of n runs to f. 0, or PTB_EIO when f reports a write error, PTB_ENOMEM. */
int audit_html_write(FILE *f, const audit_html_run *runs, size_t n);

/* s (NULL: nothing) as HTML text or a quoted attribute's value: & < > " ' as references, control
 * bytes other than tab and newline as U+FFFD, at most max bytes of s (0: all), "…" when cut. */
void audit_html_text(FILE *f, const char *s, size_t max);

#endif
