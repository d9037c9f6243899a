/* Unit tests for common/log: quoting, levels, one line per call. */
#include "common/log.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

START_TEST(test_quote)
{
    char b[64];
    ck_assert_str_eq(log_q(b, sizeof(b), "plain"), "plain");
    ck_assert_str_eq(log_q(b, sizeof(b), ""), "\"\"");
    ck_assert_str_eq(log_q(b, sizeof(b), NULL), "\"\"");
    ck_assert_str_eq(log_q(b, sizeof(b), "two words"), "\"two words\"");
    ck_assert_str_eq(log_q(b, sizeof(b), "a=b"), "\"a=b\"");
    ck_assert_str_eq(log_q(b, sizeof(b), "say \"hi\""), "\"say \\\"hi\\\"\"");
    ck_assert_str_eq(log_q(b, sizeof(b), "back\\slash"), "\"back\\\\slash\"");
    ck_assert_str_eq(log_q(b, sizeof(b), "line\nbreak\t\x01"), "\"line\\nbreak\\t\\x01\"");
}
END_TEST

START_TEST(test_truncate)
{
    char b[16];
    char longs[200];
    memset(longs, 'x', sizeof(longs) - 1);
    longs[sizeof(longs) - 1] = '\0';
    log_q(b, sizeof(b), longs);
    ck_assert_uint_lt(strlen(b), sizeof(b));
    ck_assert_ptr_nonnull(strstr(b, "\xe2\x80\xa6"));
    ck_assert_int_eq(b[0], '"');
    ck_assert_int_eq(b[strlen(b) - 1], '"');
    /* Never cut a UTF-8 sequence: only whole "é" (2 bytes) before the … */
    const char *e = "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9 x";
    log_q(b, sizeof(b), e);
    size_t n = strlen(b);
    ck_assert_str_eq(b + n - 4, "\xe2\x80\xa6\"");
    ck_assert_int_eq((n - 1 - 4) % 2, 0);
    char tiny[4];
    log_q(tiny, sizeof(tiny), "a b c d e");
    ck_assert_uint_lt(strlen(tiny), sizeof(tiny));
}
END_TEST

START_TEST(test_levels_and_lines)
{
    log_level_t l;
    ck_assert_int_eq(log_level_parse("debug", &l), 0);
    ck_assert_int_eq(l, LOG_DEBUG);
    ck_assert_int_eq(log_level_parse("error", &l), 0);
    ck_assert_int_eq(l, LOG_ERROR);
    ck_assert_int_eq(log_level_parse("loud", &l), -1);
    ck_assert_int_eq(log_level_parse(NULL, &l), -1);

    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    int saved = dup(2);
    dup2(p[1], 2);
    log_set_component("test");
    log_set_level(LOG_WARN);
    log_info("hidden", NULL);
    log_warn("shown here", "k=%d s=%s", 7, "v");
    log_error("second", NULL);
    dup2(saved, 2);
    close(p[1]);
    char buf[1024];
    ssize_t n = read(p[0], buf, sizeof(buf) - 1);
    buf[n > 0 ? n : 0] = '\0';
    ck_assert_ptr_null(strstr(buf, "hidden"));
    ck_assert_ptr_nonnull(strstr(buf, "level=warn component=test msg=\"shown here\" k=7 s=v\n"));
    ck_assert_ptr_nonnull(strstr(buf, "level=error component=test msg=second\n"));
    ck_assert(strncmp(buf, "ts=", 3) == 0);
    int lines = 0;
    for (char *c = buf; *c; c++)
        lines += *c == '\n';
    ck_assert_int_eq(lines, 2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("log");
    tcase_add_test(tc, test_quote);
    tcase_add_test(tc, test_truncate);
    tcase_add_test(tc, test_levels_and_lines);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
