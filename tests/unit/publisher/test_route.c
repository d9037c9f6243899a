/* Unit tests for publisher/route (included: it is not in the library). */
#include "publisher/route.c"

#include <check.h>

START_TEST(test_routes)
{
    route_t r;
    static const struct { const char *path; route_id_t id; const char *arg; } cases[] = {
        { "/healthz", RT_HEALTHZ, "" },
        { "/readyz?x=1", RT_READYZ, "" },
        { "/metrics", RT_METRICS, "" },
        { "/api/v1/flags", RT_FLAGS, "" },
        { "/api/v1/flags/", RT_FLAGS, "" },
        { "/api/v1/flags/new-ui", RT_FLAG, "new-ui" },
        { "/api/v1/flags/a%2Fb%3Ac", RT_FLAG, "a/b:c" },
        { "/api/v1/flags/k/enabled", RT_FLAG_ENABLED, "k" },
        { "/api/v1/flags/k/segments", RT_FLAG_SEGMENTS, "k" },
        { "/api/v1/flags/k/variants", RT_FLAG_VARIANTS, "k" },
        { "/api/v1/flags/k/other", RT_NOT_FOUND, "" },
        { "/api/v1/channels/chat.room1/messages", RT_CHANNEL_MESSAGES, "chat.room1" },
        { "/api/v1/channels/user%3A42/messages", RT_CHANNEL_MESSAGES, "user:42" },
        { "/api/v1/channels//messages", RT_NOT_FOUND, "" },
        { "/api/v1/messages", RT_MESSAGES, "" },
        { "/api/v2/flags", RT_NOT_FOUND, "" },
        { "/", RT_NOT_FOUND, "" },
        { "", RT_NOT_FOUND, "" },
        { "/a/b/c/d/e/f/g/h/i/j", RT_NOT_FOUND, "" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_int_eq(route_match(cases[i].path, &r), 0);
        ck_assert_msg(r.id == cases[i].id, "%s: id %d", cases[i].path, r.id);
        if (cases[i].id != RT_NOT_FOUND)
            ck_assert_str_eq(r.arg, cases[i].arg);
    }
    ck_assert_int_eq(route_match("/api/v1/flags/a%2", &r), -1);
    ck_assert_int_eq(route_match("/api/v1/flags/a%zz", &r), -1);
    ck_assert_int_eq(route_match("/api/v1/flags/a%00b", &r), -1);
    char longp[600] = "/api/v1/flags/";
    memset(longp + strlen(longp), 'k', 400);
    ck_assert_int_eq(route_match(longp, &r), -1);
}
END_TEST

START_TEST(test_if_match)
{
    uint64_t v;
    ck_assert_int_eq(route_if_match("7", &v), 0);
    ck_assert_uint_eq(v, 7);
    ck_assert_int_eq(route_if_match("\"12\"", &v), 0);
    ck_assert_uint_eq(v, 12);
    ck_assert_int_eq(route_if_match("W/\"3\"", &v), 0);
    ck_assert_uint_eq(v, 3);
    const char *bad[] = { "", "0", "-1", "x", "\"4", "4\"", "4 5", "*", "99999999999999999999999" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(route_if_match(bad[i], &v) == -1, "accepted %s", bad[i]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("route");
    TCase *tc = tcase_create("route");
    tcase_add_test(tc, test_routes);
    tcase_add_test(tc, test_if_match);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
