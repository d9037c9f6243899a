/*
 * Unit tests for proto/names: channel kinds, flag keys and tags, with their
 * exact length limits and character classes.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "proto/names.h"

START_TEST(test_channel_kinds)
{
    const char *err = NULL;
    ck_assert_int_eq(name_channel_kind("flags", 5, &err), CHAN_FLAGS);
    ck_assert_int_eq(name_channel_kind("dashboard.metrics", 17, &err), CHAN_APP);
    ck_assert_int_eq(name_channel_kind("chat.room1", 10, &err), CHAN_APP);
    ck_assert_int_eq(name_channel_kind("flagsx", 6, &err), CHAN_APP);
    ck_assert_int_eq(name_channel_kind("flag", 4, &err), CHAN_APP);
    ck_assert_int_eq(name_channel_kind("user:42", 7, &err), CHAN_USER);
    ck_assert_int_eq(name_channel_kind("user:a:b", 8, &err), CHAN_USER);
    ck_assert_int_eq(name_channel_kind("role:admin", 10, &err), CHAN_ROLE);
    ck_assert_int_eq(name_channel_kind("user", 4, &err), CHAN_APP);
    ck_assert_int_eq(name_channel_kind("users:1", 7, &err), CHAN_APP);
    err = NULL;
    ck_assert_int_eq(name_channel_kind("user:", 5, &err), CHAN_INVALID);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(name_channel_kind("role:", 5, &err), CHAN_INVALID);
    ck_assert_int_eq(name_channel_valid("role:", 5, &err), -1);
    ck_assert_int_eq(name_channel_valid("role:x", 6, &err), 0);
    /* the length is what counts, not a NUL */
    ck_assert_int_eq(name_channel_kind("flags.x", 5, &err), CHAN_FLAGS);
    ck_assert_int_eq(name_channel_kind(NULL, 0, &err), CHAN_INVALID);
}
END_TEST

START_TEST(test_channel_chars_and_length)
{
    const char *err;
    char s[NAME_CHANNEL_MAX + 2];
    memset(s, 'c', sizeof(s));
    ck_assert_int_eq(name_channel_valid(s, NAME_CHANNEL_MAX, &err), 0);
    ck_assert_int_eq(name_channel_valid(s, NAME_CHANNEL_MAX + 1, &err), -1);
    ck_assert_str_eq(err, "channel must be 1-200 bytes of [A-Za-z0-9._:-]");
    ck_assert_int_eq(name_channel_valid(s, 0, &err), -1);
    ck_assert_int_eq(name_channel_valid("aZ09._:-", 8, &err), 0);
    for (int c = 0; c < 256; c++) {
        char one[1] = { (char)c };
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' || c == '-';
        ck_assert_int_eq(name_channel_valid(one, 1, &err), ok ? 0 : -1);
    }
    /* '/' is a key character but not a channel character; braces would
     * change Redis cluster hash slots */
    ck_assert_int_eq(name_channel_valid("a/b", 3, &err), -1);
    ck_assert_int_eq(name_channel_valid("{a}", 3, &err), -1);
    ck_assert_int_eq(name_channel_valid("a b", 3, &err), -1);
}
END_TEST

START_TEST(test_flag_keys)
{
    const char *err;
    char s[NAME_FLAG_KEY_MAX + 2];
    memset(s, 'k', sizeof(s));
    ck_assert_int_eq(name_flag_key_valid(s, NAME_FLAG_KEY_MAX, &err), 0);
    ck_assert_int_eq(name_flag_key_valid(s, NAME_FLAG_KEY_MAX + 1, &err), -1);
    ck_assert_str_eq(err, "flag key must be 1-128 bytes of [A-Za-z0-9_./:-]");
    ck_assert_int_eq(name_flag_key_valid("", 0, &err), -1);
    ck_assert_int_eq(name_flag_key_valid("a/b.c:d-e_f", 11, &err), 0);
    ck_assert_int_eq(name_flag_key_valid("a b", 3, &err), -1);
    ck_assert_int_eq(name_flag_key_valid("caf\xc3\xa9", 5, &err), -1);
    ck_assert_int_eq(name_flag_key_valid("a\0b", 3, &err), -1);
    ck_assert_int_eq(name_flag_key_valid(NULL, 0, NULL), -1);
}
END_TEST

START_TEST(test_tags)
{
    const char *err;
    char s[66];
    memset(s, 't', sizeof(s));
    ck_assert_int_eq(name_tag_valid(s, 64, &err), 0);
    ck_assert_int_eq(name_tag_valid(s, 65, &err), -1);
    ck_assert_str_eq(err, "tag must be 1-64 bytes of [A-Za-z0-9_./:-]");
    ck_assert_int_eq(name_tag_valid("", 0, &err), -1);
    ck_assert_int_eq(name_tag_valid("team:web/x", 10, &err), 0);
    ck_assert_int_eq(name_tag_valid("a,b", 3, &err), -1);
}
END_TEST

static Suite *names_suite(void)
{
    Suite *s = suite_create("names");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_channel_kinds);
    tcase_add_test(tc, test_channel_chars_and_length);
    tcase_add_test(tc, test_flag_keys);
    tcase_add_test(tc, test_tags);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(names_suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
