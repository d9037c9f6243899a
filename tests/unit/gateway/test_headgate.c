/* Unit tests for gateway/headgate: the check of a request head before lws
 * parses it (lws drops heads over its table, and %00 in the target, with
 * no answer). */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include "gateway/headgate.h"

static headgate_t gate(const char *s, size_t limit)
{
    return headgate_check(s, strlen(s), limit);
}

START_TEST(complete_heads_pass)
{
    ck_assert_int_eq(gate("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n", 1024), HEADGATE_OK);
    ck_assert_int_eq(gate("GET / HTTP/1.1\r\n\r\n", 1024), HEADGATE_OK);
    /* bare LFs, as lws accepts them */
    ck_assert_int_eq(gate("GET / HTTP/1.1\nHost: x\n\n", 1024), HEADGATE_OK);
    /* what follows the head (a pipelined request, a body) is not looked at */
    ck_assert_int_eq(gate("GET /a HTTP/1.1\r\n\r\nGET /%00 HTTP/1.1\r\n\r\n", 1024), HEADGATE_OK);
    /* escapes other than %00 are lws's to judge */
    ck_assert_int_eq(gate("GET /x?c=a%20b%2C%0a HTTP/1.1\r\n\r\n", 1024), HEADGATE_OK);
    /* %00 in a header value is not the target */
    ck_assert_int_eq(gate("GET / HTTP/1.1\r\nX-A: %00\r\n\r\n", 1024), HEADGATE_OK);
}
END_TEST

START_TEST(incomplete_heads_wait)
{
    ck_assert_int_eq(gate("", 1024), HEADGATE_MORE);
    ck_assert_int_eq(gate("GET / HTTP/1.1\r\n", 1024), HEADGATE_MORE);
    ck_assert_int_eq(gate("GET / HTTP/1.1\r\nHost: x\r\n\r", 1024), HEADGATE_MORE);
    ck_assert_int_eq(gate("GET /%0", 1024), HEADGATE_MORE);
}
END_TEST

START_TEST(limit_is_the_whole_head)
{
    const char *h = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";   /* 27 bytes */
    size_t n = strlen(h);

    ck_assert_int_eq(headgate_check(h, n, n), HEADGATE_OK);
    ck_assert_int_eq(headgate_check(h, n, n - 1), HEADGATE_TOO_LARGE);
    /* limit bytes without an end: too large, whatever comes after */
    char *big = malloc(20000);
    memcpy(big, "GET / HTTP/1.1\r\nX-Big: ", 23);
    memset(big + 23, 'a', 20000 - 23);
    ck_assert_int_eq(headgate_check(big, 20000, 16384), HEADGATE_TOO_LARGE);
    ck_assert_int_eq(headgate_check(big, 16383, 16384), HEADGATE_MORE);
    ck_assert_int_eq(headgate_check(big, 16384, 16384), HEADGATE_TOO_LARGE);
    free(big);
    ck_assert_str_eq(headgate_reason(HEADGATE_TOO_LARGE), "request head too large");
}
END_TEST

START_TEST(nul_and_controls_in_target_refused)
{
    ck_assert_int_eq(gate("GET /api/v1/realtime/sse?channels=a%00b HTTP/1.1\r\n\r\n", 1024), HEADGATE_BAD);
    ck_assert_int_eq(gate("GET /%00 HTTP/1.1\r\n\r\n", 1024), HEADGATE_BAD);
    ck_assert_int_eq(gate("GET /x?token=%00 HTTP/1.1\r\n\r\n", 1024), HEADGATE_BAD);
    ck_assert_int_eq(gate("GET /a\x01 HTTP/1.1\r\n\r\n", 1024), HEADGATE_BAD);
    ck_assert_int_eq(gate("GET /a\x7f HTTP/1.1\r\n\r\n", 1024), HEADGATE_BAD);
    /* a target that runs to the end of the line (no version) too */
    ck_assert_int_eq(gate("GET /a%00\r\n\r\n", 1024), HEADGATE_BAD);
    ck_assert_str_eq(headgate_reason(HEADGATE_BAD), "request target holds %00 or a control character");
    /* a NUL byte itself */
    ck_assert_int_eq(headgate_check("GET /a\0b HTTP/1.1\r\n\r\n", 22, 1024), HEADGATE_BAD);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("headgate");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, complete_heads_pass);
    tcase_add_test(tc, incomplete_heads_wait);
    tcase_add_test(tc, limit_is_the_whole_head);
    tcase_add_test(tc, nul_and_controls_in_target_refused);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
