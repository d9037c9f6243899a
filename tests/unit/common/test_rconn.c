/* Unit tests for common/rconn: Redis URL parsing, and a connection that
 * keeps retrying against a closed port without ever becoming ready. */
#include "common/rconn.h"

#include <check.h>
#include <string.h>

START_TEST(test_url)
{
    redis_url_t u;
    const char *err;
    ck_assert_int_eq(redis_url_parse("redis://127.0.0.1:6379", &u, &err), 0);
    ck_assert_str_eq(u.host, "127.0.0.1");
    ck_assert_int_eq(u.port, 6379);
    ck_assert_str_eq(u.password, "");
    ck_assert_int_eq(u.db, 0);
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
    /* A password may hold ':' and '/'-free text; '@' ends it at the last one before the host. */
    ck_assert_int_eq(redis_url_parse("redis://:a:b@h:1", &u, &err), 0);
    ck_assert_str_eq(u.password, "a:b");
}
END_TEST

START_TEST(test_url_bad)
{
    redis_url_t u;
    const char *err = NULL;
    const char *bad[] = { NULL, "", "http://h:1", "redis://", "redis://:1", "redis://h:0",
                          "redis://h:65536", "redis://h:x", "redis://h:1/x", "redis://h:1/-1",
                          "redis://pw@h", "redis://[::1", "redis://[::1]x", "redis://h:" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err = NULL;
        ck_assert_msg(redis_url_parse(bad[i], &u, &err) == -1, "accepted %s", bad[i]);
        ck_assert_ptr_nonnull(err);
    }
}
END_TEST

static int states;
static void on_state(rconn_t *rc, int up, void *arg)
{
    states++;
}

static void stop(evutil_socket_t fd, short w, void *arg)
{
    event_base_loopbreak(arg);
}

START_TEST(test_not_ready_while_down)
{
    struct event_base *base = event_base_new();
    redis_url_t u;
    const char *err;
    /* Port 1 on loopback: refused at once. */
    ck_assert_int_eq(redis_url_parse("redis://127.0.0.1:1", &u, &err), 0);
    rconn_t *rc = rconn_new(base, &u, "test", on_state, NULL);
    ck_assert_ptr_nonnull(rc);
    ck_assert_int_eq(rconn_start(rc), 0);
    ck_assert_int_eq(rconn_start(rc), -1);
    struct event *t = evtimer_new(base, stop, base);
    struct timeval tv = { 0, 400000 };
    evtimer_add(t, &tv);
    event_base_dispatch(base);
    ck_assert(!rconn_ready(rc));
    ck_assert_ptr_null(rconn_ctx(rc));
    ck_assert_int_eq(rconn_command(rc, NULL, NULL, "PING"), -1);
    ck_assert_int_eq(states, 0);
    ck_assert_uint_eq(rconn_reconnects(rc), 0);
    rconn_free(rc);
    event_free(t);
    event_base_free(base);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rconn");
    TCase *tc = tcase_create("rconn");
    tcase_add_test(tc, test_url);
    tcase_add_test(tc, test_url_bad);
    tcase_add_test(tc, test_not_ready_while_down);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
