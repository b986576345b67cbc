/* store_codec: the store's own protobuf encoder. For every event kind, filled and empty, with and
 * without interning, the stored bytes decode (protobuf-c, then ids resolved) to exactly the event
 * that went in; a too-small buffer gives PTB_ETOOBIG and a size that is enough. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/event_fill.h"
#include "store_int.h"

/* A tiny intern table: ids 1..n in order of first sight. */
static char *tab[256];
static size_t tab_len[256];
static uint32_t ntab;

static uint32_t intern(void *arg, const char *s, size_t n)
{
    (void)arg;
    for (uint32_t i = 1; i <= ntab; i++)
        if (tab_len[i] == n && memcmp(tab[i], s, n) == 0)
            return i;
    if (ntab == 255)
        return 0;
    tab[++ntab] = malloc(n);
    memcpy(tab[ntab], s, n);
    tab_len[ntab] = n;
    return ntab;
}

static int resolve(void *arg, uint32_t sid, const char **s, size_t *n)
{
    (void)arg;
    if (sid == 0 || sid > ntab)
        return PTB_ENOTFOUND;
    *s = tab[sid];
    *n = tab_len[sid];
    return 0;
}

static uint8_t *pack(const ptb_event *ev, size_t *len)
{
    ptb_event c = *ev;
    c.seq = 0;
    *len = protobuf_c_message_get_packed_size(&c.base);
    uint8_t *b = malloc(*len ? *len : 1);
    protobuf_c_message_pack(&c.base, b);
    return b;
}

static void roundtrip(const ptb_event *ev, bool interned)
{
    uint8_t buf[1 << 16];
    size_t len;
    store_postings post;
    assert_int_equal(
        store_codec_encode(ev, interned ? intern : NULL, NULL, buf, sizeof buf, &len, &post), 0);
    assert_true(post.n >= 1);
    assert_int_equal(post.ix[0], STORE_IX_TYPE);
    assert_int_equal(post.key[0], store_type_key(ev->body_case));
    store_arena a;
    store_arena_init(&a);
    const ptb_event *back;
    assert_int_equal(store_codec_decode(buf, len, 77, &a, resolve, NULL, &back), 0);
    assert_int_equal(back->seq, 77);
    size_t l1, l2;
    uint8_t *p1 = pack(ev, &l1), *p2 = pack(back, &l2);
    assert_int_equal(l1, l2);
    assert_memory_equal(p1, p2, l1);
    free(p1);
    free(p2);
    /* too small a buffer: PTB_ETOOBIG and a size that is enough */
    size_t small = len / 2, need;
    if (small > 0) {
        assert_int_equal(
            store_codec_encode(ev, interned ? intern : NULL, NULL, buf, small, &need, NULL),
            PTB_ETOOBIG);
        assert_true(need >= len);
    }
    store_arena_free(&a);
}

static void test_every_kind(void **state)
{
    (void)state;
    for (size_t i = 0; i < event_type_count(); i++) {
        for (int filled = 0; filled < 2; filled++) {
            ptb_event *ev = test_event_filled(event_type_at(i), filled);
            roundtrip(ev, false);
            roundtrip(ev, true);
            protobuf_c_message_free_unpacked(&ev->base, NULL);
        }
    }
    assert_true(ntab >= 3); /* the filler's strings were interned */
}

/* Corrupt stored bytes: unknown ids, both a string and its id, seq present. */
static void test_decode_rejects(void **state)
{
    (void)state;
    store_arena a;
    store_arena_init(&a);
    const ptb_event *ev;
    /* file.write (31) { path_sid (8) = 200 } : id 200 is unknown */
    uint8_t unknown_sid[] = {0xfa, 0x01, 0x03, 0x40, 0xc8, 0x01};
    assert_int_equal(store_codec_decode(unknown_sid, sizeof unknown_sid, 1, &a, resolve, NULL, &ev),
                     PTB_ECORRUPT);
    /* seq (field 1) set in the stored value */
    uint8_t with_seq[] = {0x08, 0x05};
    assert_int_equal(store_codec_decode(with_seq, sizeof with_seq, 1, &a, resolve, NULL, &ev),
                     PTB_ECORRUPT);
    /* truncated */
    uint8_t trunc[] = {0xfa, 0x01, 0x09, 0x0a};
    assert_int_equal(store_codec_decode(trunc, sizeof trunc, 1, &a, resolve, NULL, &ev),
                     PTB_ECORRUPT);
    store_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_every_kind),
                                       cmocka_unit_test(test_decode_rejects)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    for (uint32_t i = 1; i <= ntab; i++)
        free(tab[i]);
    return rc;
}
