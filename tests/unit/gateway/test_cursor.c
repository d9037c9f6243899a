/*
 * Unit tests of the SSE list cursor (gateway/query.h: query_cursor_next,
 * with query_parse_cursor per item) and the resync event (gateway/resync.h).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/resync.h"
#include "gateway/query.h"

START_TEST(list_walk)
{
    const char *s = "flags/e1/42 chat.room1/e2/7  user:9/e3/0 ";
    size_t pos = 0, n = strlen(s), il, cl, el;
    const char *it, *ch, *ep;
    uint64_t off;
    int k = 0;
    const char *want_ch[] = { "flags", "chat.room1", "user:9" };
    const uint64_t want_off[] = { 42, 7, 0 };

    while (query_cursor_next(s, n, &pos, &it, &il)) {
        ck_assert_int_lt(k, 3);
        ck_assert_int_eq(query_parse_cursor(it, il, &ch, &cl, &ep, &el, &off), 0);
        ck_assert_uint_eq(cl, strlen(want_ch[k]));
        ck_assert(memcmp(ch, want_ch[k], cl) == 0);
        ck_assert_uint_eq(off, want_off[k]);
        k++;
    }
    ck_assert_int_eq(k, 3);
    ck_assert_uint_eq(pos, n);
    pos = 0;
    ck_assert_int_eq(query_cursor_next("   ", 3, &pos, &it, &il), 0);
    pos = 0;
    ck_assert_int_eq(query_cursor_next("", 0, &pos, &it, &il), 0);
    /* a single cursor is a list of one */
    pos = 0;
    ck_assert_int_eq(query_cursor_next("flags/e/1", 9, &pos, &it, &il), 1);
    ck_assert_uint_eq(il, 9);
    ck_assert_int_eq(query_cursor_next("flags/e/1", 9, &pos, &it, &il), 0);
}
END_TEST

START_TEST(list_bad_items)
{
    const char *s = "garbage flags/e/1";
    size_t pos = 0, il, cl, el;
    const char *it, *ch, *ep;
    uint64_t off;

    ck_assert_int_eq(query_cursor_next(s, strlen(s), &pos, &it, &il), 1);
    ck_assert_int_eq(query_parse_cursor(it, il, &ch, &cl, &ep, &el, &off), -1);
    ck_assert_int_eq(query_cursor_next(s, strlen(s), &pos, &it, &il), 1);
    ck_assert_int_eq(query_parse_cursor(it, il, &ch, &cl, &ep, &el, &off), 0);
}
END_TEST

START_TEST(resync_renders_each_format)
{
    buf_t b;

    buf_init(&b);
    ck_assert_int_eq(resync_render(OUTQ_FMT_JSON, "chat", HIST_REASON_TRIMMED, "e1", 9, NULL, &b), 0);
    buf_putc(&b, '\0');
    ck_assert_str_eq(b.data, "{\"type\":\"resync\",\"channel\":\"chat\",\"reason\":\"history exceeded\","
                             "\"epoch\":\"e1\",\"offset\":9,"
                             "\"message\":\"events were lost: resynchronise this channel\"}");
    buf_reset(&b);
    ck_assert_int_eq(resync_render(OUTQ_FMT_SSE, "chat", HIST_REASON_EPOCH, "e1", 9, NULL, &b), 0);
    buf_putc(&b, '\0');
    ck_assert(strncmp(b.data, "id: chat/e1/9\nevent: resync\ndata: {\"type\":\"resync\"", 50) == 0);
    ck_assert(strcmp(b.data + strlen(b.data) - 2, "\n\n") == 0);
    buf_reset(&b);
    /* a list cursor given by the caller replaces the id */
    ck_assert_int_eq(resync_render(OUTQ_FMT_SSE, "chat", HIST_REASON_EPOCH, "e1", 9,
                                        "flags/f/3 chat/e1/9", &b), 0);
    buf_putc(&b, '\0');
    ck_assert(strncmp(b.data, "id: flags/f/3 chat/e1/9\nevent: resync\n", 38) == 0);
    buf_reset(&b);
    /* unknown position: no id, no epoch */
    ck_assert_int_eq(resync_render(OUTQ_FMT_SSE, "chat", HIST_REASON_BEHIND, NULL, 0, NULL, &b), 0);
    buf_putc(&b, '\0');
    ck_assert(strncmp(b.data, "event: resync\n", 14) == 0);
    ck_assert(strstr(b.data, "epoch") == NULL);
    buf_reset(&b);
    ck_assert_int_eq(resync_render(OUTQ_FMT_MSGPACK, "chat", HIST_REASON_BEHIND, "e", 1, NULL, &b), 0);
    ck_assert_uint_gt(b.len, 10);
    ck_assert_uint_eq((unsigned char)b.data[0], 0x86);   /* fixmap of 6 */
    buf_reset(&b);
    ck_assert_int_eq(resync_render(OUTQ_FMT_JSON, NULL, "x", NULL, 0, NULL, &b), -1);
    buf_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cursor");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, list_walk);
    tcase_add_test(tc, list_bad_items);
    tcase_add_test(tc, resync_renders_each_format);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
