/* Unit tests for publisher/ab (included: it is not in the library). The
 * formula is documented in docs/API.md so other tools can reproduce it;
 * these pin it down with reference values. */
#include "publisher/ab.c"

#include <check.h>
#include <stdio.h>
#include <string.h>

START_TEST(test_fnv1a_reference)
{
    /* Published FNV-1a 64 test vectors. */
    ck_assert_uint_eq(fnv1a(FNV_OFFSET, "", 0), 0xcbf29ce484222325ull);
    ck_assert_uint_eq(fnv1a(FNV_OFFSET, "a", 1), 0xaf63dc4c8601ec8cull);
    ck_assert_uint_eq(fnv1a(FNV_OFFSET, "foobar", 6), 0x85944171f73967e8ull);
    /* fmix64 is a bijection fixing 0. */
    ck_assert_uint_eq(fmix64(0), 0);
    ck_assert_uint_ne(fmix64(1), 1);
}
END_TEST

START_TEST(test_hash_is_key_nul_user)
{
    /* key "ab" + user "c" and key "a" + user "bc" differ: the 0x00 separates. */
    ck_assert_uint_ne(ab_hash("ab", 2, "c", 1), ab_hash("a", 1, "bc", 2));
    ck_assert_uint_eq(ab_hash("ab", 2, "c", 1), fmix64(fnv1a(FNV_OFFSET, "ab\0c", 4)));
    /* Stable: a pinned value, so a change of the formula fails here (and
     * every user's variant of every running experiment would move). */
    ck_assert_uint_eq(ab_hash("exp-42", 6, "user-1", 6), 0xa343e85fcb938b54ull);
}
END_TEST

START_TEST(test_pick_rules)
{
    const uint64_t one[1] = { 5 }, zero_first[3] = { 0, 2, 0 };
    char u[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(u, sizeof(u), "u%d", i);
        ck_assert_uint_eq(ab_pick("k", 1, u, strlen(u), one, 1, 5), 0);
        ck_assert_uint_eq(ab_pick("k", 1, u, strlen(u), zero_first, 3, 2), 1);
        /* Deterministic. */
        ck_assert_uint_eq(ab_pick("k", 1, u, strlen(u), zero_first, 3, 2),
                          ab_pick("k", 1, u, strlen(u), zero_first, 3, 2));
    }
}
END_TEST

START_TEST(test_pick_split)
{
    /* 100,000 sequential ids, weights 1/2/7: each share within 0.5 points. */
    const uint64_t w[3] = { 1, 2, 7 };
    long n[3] = { 0, 0, 0 };
    char u[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(u, sizeof(u), "%d", i);
        n[ab_pick("exp", 3, u, strlen(u), w, 3, 10)]++;
    }
    ck_assert_int_ge(n[0], 9500);
    ck_assert_int_le(n[0], 10500);
    ck_assert_int_ge(n[1], 19500);
    ck_assert_int_le(n[1], 20500);
    ck_assert_int_ge(n[2], 69500);
    ck_assert_int_le(n[2], 70500);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ab");
    TCase *tc = tcase_create("ab");
    tcase_add_test(tc, test_fnv1a_reference);
    tcase_add_test(tc, test_hash_is_key_nul_user);
    tcase_add_test(tc, test_pick_rules);
    tcase_add_test(tc, test_pick_split);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
