/* A `gap` event of ptb record's own sources (network, GPU): what could not be recorded, said. */
#ifndef PTB_RECORD_GAP_H
#define PTB_RECORD_GAP_H

#include "event_type.h"
#include "store.h"

static inline int record_gap(store *s, Ptb__V1__Source source, const char *origin,
                             const char *reason, const char *detail)
{
    Ptb__V1__Gap g = PTB__V1__GAP__INIT;
    g.origin = (char *)origin;
    g.reason = (char *)reason;
    g.count = 1;
    g.detail = (char *)detail;
    ptb_event ev = PTB__V1__EVENT__INIT;
    ev.source = source;
    ev.body_case = PTB__V1__EVENT__BODY_GAP;
    ev.gap = &g;
    return store_append(s, &ev, 0, NULL);
}

#endif
