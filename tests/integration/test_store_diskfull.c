/* A full disk is an error event and a clean stop, never a corrupt store.
 *
 * The store is written to a small tmpfs (mounted here; the test is skipped, exit 77, where
 * mounting is not allowed) until the disk fills. The writer must stop with PTB_ENOSPC, the store
 * must open and verify, its last event must be a `store.error` that counts the lost events, and
 * every event before it must be one the producer appended.
 *
 * usage: test_store_diskfull PTB_BINARY */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/test_events.h"
#include "store.h"

static char mnt[64];
static const char *ptb_bin;

static void test_disk_full(void **state)
{
    (void)state;
    char dir[128];
    snprintf(dir, sizeof dir, "%s/RUN.ptb", mnt);
    store_options o;
    store_options_default(&o);
    o.map_size_initial = 1 << 20;
    o.batch_events = 200;
    store *s;
    assert_int_equal(store_open(dir, &o, STORE_CREATE, &s), 0);
    int rc = 0;
    uint64_t i, appended = 0;
    uint8_t blob[8192];
    for (i = 0; i < 10000000 && rc == 0; i++) {
        test_event b;
        rc = store_append(s, test_event_make(&b, i), 0, NULL);
        if (rc == 0)
            appended++;
        if (rc == 0 && i % 50 == 0) {
            for (size_t k = 0; k < sizeof blob; k++)
                blob[k] = (uint8_t)(k * 31 + i * 7 + (k >> 5) * i);
            uint8_t sha[32];
            rc = store_blob_put(s, blob, sizeof blob, "blob", sha);
        }
    }
    if (rc == 0)
        rc = store_flush(s);
    assert_int_equal(rc, PTB_ENOSPC);
    assert_non_null(strstr(store_errmsg(s), "disk full"));
    int crc = store_close(s);
    assert_true(crc == PTB_ENOSPC || crc == 0 || crc == -28);

    store_verify_report rep;
    rc = store_verify(dir, &rep, NULL, NULL);
    if (rc)
        fprintf(stderr, "verify: %s\n", rep.first);
    assert_int_equal(rc, 0);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "'%s' verify '%s'", ptb_bin, dir);
    assert_int_equal(system(cmd), 0);

    assert_int_equal(store_open(dir, NULL, STORE_RDONLY, &s), 0);
    store_txn *t;
    assert_int_equal(store_txn_begin(s, &t), 0);
    uint64_t last = store_txn_last_seq(t);
    assert_true(last > 1000);
    const ptb_event *ev;
    assert_int_equal(store_event_get(t, last, &ev), 0);
    assert_int_equal(ev->body_case, PTB__V1__EVENT__BODY_STORE_ERROR);
    assert_int_equal(ev->store_error->code, PTB_ENOSPC);
    uint64_t lost = ev->store_error->events_lost;
    assert_int_equal(lost, appended - (last - 1));
    /* every event before it is a test event, in order (i-th appended event is seq i+1) */
    for (uint64_t seq = 1; seq < last; seq += 97) {
        assert_int_equal(store_event_get(t, seq, &ev), 0);
        if (!test_event_equal(ev, seq - 1))
            fail_msg("seq %llu: type %u, not test event %llu", (unsigned long long)seq,
                     ev->body_case, (unsigned long long)(seq - 1));
    }
    printf("# disk full after %llu appended events: %llu stored, %llu reported lost\n",
           (unsigned long long)appended, (unsigned long long)(last - 1), (unsigned long long)lost);
    store_txn_end(t);
    store_close(s);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    ptb_bin = argv[1];
    snprintf(mnt, sizeof mnt, "/tmp/ptb-full-XXXXXX");
    if (!mkdtemp(mnt))
        return 1;
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=3m") != 0) {
        printf("SKIP: cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN)\n");
        rmdir(mnt);
        return 77;
    }
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_disk_full)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    umount(mnt);
    rmdir(mnt);
    return rc;
}
