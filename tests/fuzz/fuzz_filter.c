/* libFuzzer target: the filter parser (and printer and evaluator).
 *
 * Any input must either fail to parse with a column inside the text, or parse to a filter whose
 * canonical form parses again to the same canonical form; evaluating it on a decoded and on a
 * light event must not crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "filter_ast.h"
#include "ptb_error.h"

static const filter_proc fuzz_proc = {7, 3, 42, 1, "/usr/bin/python3", "python3 x.py", "/w"};

static const filter_proc *fuzz_find(void *arg, uint64_t id)
{
    (void)arg;
    return id == 7 ? &fuzz_proc : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    filter *f = NULL;
    filter_error err;
    int rc = filter_parse(text, &f, &err);
    if (rc == PTB_EPARSE) {
        size_t len = strlen(text);
        if (err.column < 1 || (size_t)err.column > len + 1)
            abort(); /* the column must point into the text (or just past it) */
    } else if (rc == 0) {
        size_t need = filter_print(f, NULL, 0);
        char *a = malloc(need + 1), *b = malloc(need + 1);
        if (a && b) {
            filter_print(f, a, need + 1);
            filter *g = NULL;
            if (filter_parse(a, &g, &err) != 0)
                abort(); /* the canonical form must parse */
            if (filter_print(g, b, need + 1) != need || strcmp(a, b) != 0)
                abort(); /* ... to itself */
            filter_free(g);
        }
        free(a);
        free(b);
        /* evaluate on a decoded and a light event */
        Ptb__V1__FileWrite fw = PTB__V1__FILE_WRITE__INIT;
        fw.path = "/w/data.jsonl";
        fw.bytes = 10;
        ptb_event ev = PTB__V1__EVENT__INIT;
        ev.seq = 5;
        ev.ts_ns = 1795687200LL * 1000000000;
        ev.exec_id = 7;
        ev.body_case = PTB__V1__EVENT__BODY_FILE_WRITE;
        ev.file_write = &fw;
        filter_ctx cx;
        filter_ctx_init(&cx, fuzz_find, NULL);
        (void)filter_eval(f, &ev, &cx);
        ev.file_write = NULL;
        (void)filter_eval(f, &ev, &cx);
        filter_ctx_free(&cx);
        filter_free(f);
    }
    free(text);
    return 0;
}
