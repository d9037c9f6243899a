/* Unit tests for common/auth: token lists, names, bearer parsing. */
#include "common/auth.h"
#include "common/token.h"

#include <check.h>
#include <string.h>

START_TEST(test_tokens)
{
    const char *err = NULL;
    auth_identity_t id;
    auth_t *a = auth_new(" ops:alpha-1 , beta2,  ,x.y:gamma:3", &err);
    ck_assert_ptr_nonnull(a);
    ck_assert_uint_eq(auth_count(a), 3);
    ck_assert_int_eq(auth_check_token(a, "alpha-1", 7, &id), 0);
    ck_assert_str_eq(id.name, "ops");
    ck_assert_int_eq(id.admin, 1);
    ck_assert_int_eq(auth_check_token(a, "beta2", 5, &id), 0);
    ck_assert_str_eq(id.name, "admin#2");
    ck_assert_int_eq(auth_check_token(a, "gamma:3", 7, &id), 0);
    ck_assert_str_eq(id.name, "x.y");
    ck_assert_int_eq(auth_check_token(a, "ops:alpha-1", 11, &id), -1);
    ck_assert_int_eq(auth_check_token(a, "alpha-", 6, &id), -1);
    ck_assert_int_eq(auth_check_token(a, "alpha-12", 8, &id), -1);
    ck_assert_int_eq(auth_check_token(a, "", 0, &id), -1);
    ck_assert_int_eq(auth_check_token(a, NULL, 3, &id), -1);
    auth_free(a);
}
END_TEST

/* The publisher's path for a header: token_bearer (the one Bearer parser,
 * common/token.h), then auth_check_token. */
static int bearer(const auth_t *a, const char *header, auth_identity_t *id)
{
    const char *tok;
    size_t len;
    if (token_bearer(header, &tok, &len) < 0)
        return -1;
    return auth_check_token(a, tok, len, id);
}

START_TEST(test_bearer)
{
    const char *err;
    auth_identity_t id;
    auth_t *a = auth_new("tok", &err);
    ck_assert_int_eq(bearer(a, "Bearer tok", &id), 0);
    ck_assert_str_eq(id.name, "admin#1");
    ck_assert_int_eq(bearer(a, "bearer   tok  ", &id), 0);
    ck_assert_int_eq(bearer(a, "\tBearer\ttok\t", &id), 0);
    ck_assert_int_eq(bearer(a, "Basic tok", &id), -1);
    ck_assert_int_eq(bearer(a, "Bearer", &id), -1);
    ck_assert_int_eq(bearer(a, "Bearertok", &id), -1);
    ck_assert_int_eq(bearer(a, "Bearer tok2", &id), -1);
    ck_assert_int_eq(bearer(a, "tok", &id), -1);
    ck_assert_int_eq(bearer(a, NULL, &id), -1);
    auth_free(a);
}
END_TEST

START_TEST(test_empty_and_bad)
{
    const char *err = NULL;
    auth_identity_t id;
    auth_t *a = auth_new(NULL, &err);
    ck_assert_ptr_nonnull(a);
    ck_assert_uint_eq(auth_count(a), 0);
    ck_assert_int_eq(bearer(a, "Bearer x", &id), -1);
    auth_free(a);
    a = auth_new("", &err);
    ck_assert_uint_eq(auth_count(a), 0);
    auth_free(a);
    /* "name:" alone is a token, not an empty token with a name. */
    a = auth_new("ops:", &err);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(auth_check_token(a, "ops:", 4, &id), 0);
    auth_free(a);
    char big[600];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_ptr_null(auth_new(big, &err));
    ck_assert_ptr_nonnull(strstr(err, "longer"));
    ck_assert_ptr_null(auth_new("a\tb", &err));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("auth");
    TCase *tc = tcase_create("auth");
    tcase_add_test(tc, test_tokens);
    tcase_add_test(tc, test_bearer);
    tcase_add_test(tc, test_empty_and_bad);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
