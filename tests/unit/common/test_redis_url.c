/* Unit tests for common/redis_url: the three URL forms, their defaults, and
 * a refusal with a message for each way a URL can be wrong. */
#include "common/redis_url.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

START_TEST(test_single)
{
    redis_url_t u;
    const char *err;
    ck_assert_int_eq(redis_url_parse("redis://127.0.0.1:6379", &u, &err), 0);
    ck_assert_int_eq(u.kind, REDIS_URL_SINGLE);
    ck_assert_str_eq(u.host, "127.0.0.1");
    ck_assert_int_eq(u.port, 6379);
    ck_assert_str_eq(u.password, "");
    ck_assert_int_eq(u.db, 0);
    ck_assert_uint_eq(u.nnodes, 1);
    ck_assert_str_eq(u.nodes[0].host, "127.0.0.1");
    ck_assert_int_eq(redis_url_parse("redis://:s3cret@redis.local:7000/2", &u, &err), 0);
    ck_assert_str_eq(u.host, "redis.local");
    ck_assert_int_eq(u.port, 7000);
    ck_assert_str_eq(u.password, "s3cret");
    ck_assert_int_eq(u.db, 2);
    ck_assert_int_eq(redis_url_parse("redis://user:pw@h", &u, &err), 0);
    ck_assert_str_eq(u.password, "pw");
    ck_assert_int_eq(u.port, 6379);
    ck_assert_int_eq(redis_url_parse("redis://h/", &u, &err), 0);
    ck_assert_int_eq(redis_url_parse("redis://[::1]:6380/1", &u, &err), 0);
    ck_assert_str_eq(u.host, "::1");
    ck_assert_int_eq(u.port, 6380);
    ck_assert_int_eq(u.db, 1);
    ck_assert_int_eq(redis_url_parse("redis://[::1]", &u, &err), 0);
    ck_assert_int_eq(u.port, 6379);
    /* A password may hold ':' and '@'; the last '@' before the host ends it. */
    ck_assert_int_eq(redis_url_parse("redis://:a:b@h:1", &u, &err), 0);
    ck_assert_str_eq(u.password, "a:b");
    ck_assert_int_eq(redis_url_parse("redis://:a@b@h:1", &u, &err), 0);
    ck_assert_str_eq(u.password, "a@b");
    ck_assert_str_eq(u.host, "h");
    ck_assert_int_eq(redis_url_parse("redis://h:1/1000000", &u, &err), 0);
    ck_assert_int_eq(u.db, 1000000);
}
END_TEST

START_TEST(test_sentinel)
{
    redis_url_t u;
    const char *err;
    ck_assert_int_eq(redis_url_parse("redis+sentinel://10.0.0.1:26379,10.0.0.2:26380,"
                                     "[::1]/mymaster", &u, &err), 0);
    ck_assert_int_eq(u.kind, REDIS_URL_SENTINEL);
    ck_assert_uint_eq(u.nnodes, 3);
    ck_assert_str_eq(u.nodes[0].host, "10.0.0.1");
    ck_assert_int_eq(u.nodes[0].port, 26379);
    ck_assert_str_eq(u.nodes[1].host, "10.0.0.2");
    ck_assert_int_eq(u.nodes[1].port, 26380);
    ck_assert_str_eq(u.nodes[2].host, "::1");
    ck_assert_int_eq(u.nodes[2].port, 26379);   /* a sentinel's default port */
    ck_assert_str_eq(u.host, "10.0.0.1");
    ck_assert_str_eq(u.master, "mymaster");
    ck_assert_int_eq(u.db, 0);
    ck_assert_str_eq(u.password, "");
    ck_assert_str_eq(u.sentinel_password, "");
    ck_assert_int_eq(redis_url_parse("redis+sentinel://:pw@s1:1,s2:2/m.a-s_t/3", &u, &err), 0);
    ck_assert_str_eq(u.password, "pw");
    ck_assert_uint_eq(u.nnodes, 2);
    ck_assert_str_eq(u.master, "m.a-s_t");
    ck_assert_int_eq(u.db, 3);
    ck_assert_int_eq(redis_url_parse("redis+sentinel://s/m/", &u, &err), 0);
    ck_assert_int_eq(u.db, 0);
    ck_assert_str_eq(redis_url_kind_name(u.kind), "redis+sentinel");
}
END_TEST

START_TEST(test_cluster)
{
    redis_url_t u;
    const char *err;
    ck_assert_int_eq(redis_url_parse("redis+cluster://a:7000,b:7001,c", &u, &err), 0);
    ck_assert_int_eq(u.kind, REDIS_URL_CLUSTER);
    ck_assert_uint_eq(u.nnodes, 3);
    ck_assert_str_eq(u.nodes[2].host, "c");
    ck_assert_int_eq(u.nodes[2].port, 6379);
    ck_assert_int_eq(redis_url_parse("redis+cluster://:pw@a:7000/", &u, &err), 0);
    ck_assert_str_eq(u.password, "pw");
    ck_assert_uint_eq(u.nnodes, 1);
    ck_assert_str_eq(redis_url_kind_name(u.kind), "redis+cluster");
}
END_TEST

START_TEST(test_node_limit)
{
    redis_url_t u;
    const char *err = NULL;
    char s[512];
    int n = snprintf(s, sizeof(s), "redis+cluster://");
    for (int i = 0; i < REDIS_URL_MAX_NODES; i++)
        n += snprintf(s + n, sizeof(s) - (size_t)n, "%sh%d:%d", i ? "," : "", i, 7000 + i);
    ck_assert_int_eq(redis_url_parse(s, &u, &err), 0);
    ck_assert_uint_eq(u.nnodes, REDIS_URL_MAX_NODES);
    ck_assert_str_eq(u.nodes[15].host, "h15");
    snprintf(s + n, sizeof(s) - (size_t)n, ",one-more");
    ck_assert_int_eq(redis_url_parse(s, &u, &err), -1);
    ck_assert_ptr_nonnull(strstr(err, "more than 16"));
}
END_TEST

/* Every refusal has a message, none quotes the input (a password must
 * never reach a log through it). */
START_TEST(test_bad)
{
    static const struct { const char *url, *says; } bad[] = {
        { NULL, "missing" },
        { "", "must start with" },
        { "http://h:1", "must start with" },
        { "rediss://h:1", "must start with" },
        { "redis://", "no host" },
        { "redis://:1", "host is empty" },
        { "redis://h:0", "1-65535" },
        { "redis://h:65536", "1-65535" },
        { "redis://h:x", "1-65535" },
        { "redis://h:+1", "1-65535" },
        { "redis://h:", "port is empty" },
        { "redis://h:1/x", "database" },
        { "redis://h:1/-1", "database" },
        { "redis://h:1/1000001", "database" },
        { "redis://h:1/1/2", "database" },
        { "redis://pw@h", "credentials" },
        { "redis://[::1", "unterminated" },
        { "redis://[::1]x", "after ]" },
        { "redis://[]:1", "host is empty" },
        { "redis://a b:1", "space" },
        { "redis://a,b", "one host" },
        { "redis+cluster://a,,b", "empty host" },
        { "redis+cluster://a,", "empty host" },
        { "redis+cluster://,a", "empty host" },
        { "redis+cluster://a/0", "no path" },
        { "redis+sentinel://s1,s2", "master's name" },
        { "redis+sentinel://s1/", "master's name" },
        { "redis+sentinel://s1//1", "master's name" },
        { "redis+sentinel://s1/m x", "space" },
        { "redis+sentinel://s1/m/x", "database" },
        { "redis+sentinel://:secretpw@s1:0/m", "1-65535" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        redis_url_t u;
        const char *err = NULL;
        ck_assert_msg(redis_url_parse(bad[i].url, &u, &err) == -1, "accepted %s", bad[i].url);
        ck_assert_ptr_nonnull(err);
        ck_assert_msg(strstr(err, bad[i].says) != NULL, "%s: \"%s\" does not say \"%s\"",
                      bad[i].url, err, bad[i].says);
        ck_assert(strstr(err, "secretpw") == NULL);
    }
}
END_TEST

START_TEST(test_too_long)
{
    redis_url_t u;
    const char *err;
    char s[1024];
    memset(s, 'a', sizeof(s));
    memcpy(s, "redis://", 8);
    s[8 + REDIS_URL_HOST_MAX - 1] = '\0';   /* a host of 255 bytes fits */
    ck_assert_int_eq(redis_url_parse(s, &u, &err), 0);
    memset(s, 'a', sizeof(s));
    memcpy(s, "redis://", 8);
    s[8 + REDIS_URL_HOST_MAX] = '\0';
    ck_assert_int_eq(redis_url_parse(s, &u, &err), -1);
    ck_assert_ptr_nonnull(strstr(err, "too long"));
    memset(s, 'm', sizeof(s));
    memcpy(s, "redis+sentinel://h/", 19);
    s[19 + REDIS_URL_NAME_MAX] = '\0';
    ck_assert_int_eq(redis_url_parse(s, &u, &err), -1);
    ck_assert_ptr_nonnull(strstr(err, "too long"));
    memset(s, 'p', sizeof(s));
    memcpy(s, "redis://:", 9);
    memcpy(s + 9 + 300, "@h", 3);
    ck_assert_int_eq(redis_url_parse(s, &u, &err), -1);
    ck_assert_ptr_nonnull(strstr(err, "password too long"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("redis_url");
    TCase *tc = tcase_create("redis_url");
    tcase_add_test(tc, test_single);
    tcase_add_test(tc, test_sentinel);
    tcase_add_test(tc, test_cluster);
    tcase_add_test(tc, test_node_limit);
    tcase_add_test(tc, test_bad);
    tcase_add_test(tc, test_too_long);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
