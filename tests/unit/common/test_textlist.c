/* Unit tests for common/textlist: comma-list walking and constant-time compare. */
#include "common/textlist.h"

#include <check.h>
#include <string.h>

static int collect(const char *list, char out[][32], int max)
{
    const char *p = list, *item;
    size_t len;
    int n = 0;
    while (n < max && textlist_next(&p, &item, &len)) {
        ck_assert_uint_lt(len, 32);
        memcpy(out[n], item, len);
        out[n][len] = '\0';
        n++;
    }
    return n;
}

START_TEST(test_list)
{
    char it[8][32];
    ck_assert_int_eq(collect("a,b,c", it, 8), 3);
    ck_assert_str_eq(it[0], "a");
    ck_assert_str_eq(it[2], "c");
    ck_assert_int_eq(collect("  x y , ,,\tz\t,", it, 8), 2);
    ck_assert_str_eq(it[0], "x y");
    ck_assert_str_eq(it[1], "z");
    ck_assert_int_eq(collect("", it, 8), 0);
    ck_assert_int_eq(collect(" , ,", it, 8), 0);
    ck_assert_int_eq(collect(NULL, it, 8), 0);
    ck_assert_int_eq(collect("k=u:r1+r2", it, 8), 1);
    ck_assert_str_eq(it[0], "k=u:r1+r2");
}
END_TEST

START_TEST(test_secret_equal)
{
    char padded[16] = { 0 };
    memcpy(padded, "secret", 6);
    ck_assert_int_eq(textlist_secret_equal("secret", 6, padded, 6, sizeof(padded)), 1);
    ck_assert_int_eq(textlist_secret_equal("secreT", 6, padded, 6, sizeof(padded)), 0);
    ck_assert_int_eq(textlist_secret_equal("secre", 5, padded, 6, sizeof(padded)), 0);
    /* a prefix padded with NULs must not match the shorter secret's padding */
    ck_assert_int_eq(textlist_secret_equal("secret\0", 7, padded, 6, sizeof(padded)), 0);
    ck_assert_int_eq(textlist_secret_equal("", 0, padded, 6, sizeof(padded)), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("textlist");
    TCase *tc = tcase_create("textlist");
    tcase_add_test(tc, test_list);
    tcase_add_test(tc, test_secret_equal);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
