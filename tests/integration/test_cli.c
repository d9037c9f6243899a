/*
 * test_cli — the flagcast CLI against a real publisher and redis-server:
 * each command's human and --json output, its exit status, and that the
 * change really reached Redis (the subscriber sees the publication).
 */
#include "tests/integration/harness.h"
#include "proto/event.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static h_pubfix_t fx; /* redis, the publisher, a subscriber to flagcast:ch:* */
static char env_url[64], env_token[64] = "FLAGCAST_TOKEN=cli-token";

static void setup(void)
{
    const char *env[] = { "FLAGCAST_ADMIN_TOKENS=cli:cli-token", NULL };
    ck_assert_int_eq(h_pubfix_start(&fx, env, "flagcast:ch:*"), 0);
    snprintf(env_url, sizeof(env_url), "FLAGCAST_URL=http://127.0.0.1:%d", fx.port);
}

static void teardown(void)
{
    h_pubfix_stop(&fx);
}

/* Runs bin/flagcast with args (NULL-terminated); returns the exit code. */
static int cli(char **out, char **err, ...)
{
    const char *argv[24];
    int n = 0;
    va_list ap;
    argv[n++] = h_bin("flagcast");
    va_start(ap, err);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 23)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    const char *env[] = { env_url, env_token, NULL };
    return h_run(argv, env, out, err, 10000);
}

static void expect_pub(const char *channel, ev_type_t type, const char *flag_key)
{
    char *ch, *msg, want[256], e[256];
    size_t len;
    ev_t ev;
    ck_assert_int_eq(h_sub_next(fx.sub, 3000, &ch, &msg, &len), 1);
    snprintf(want, sizeof(want), "flagcast:ch:%s", channel);
    ck_assert_str_eq(ch, want);
    ck_assert_msg(ev_decode(msg, len, &ev, e, sizeof(e)) == 0, "%s", e);
    ck_assert_int_eq(ev.type, type);
    ck_assert_str_eq(ev.actor, "cli");
    if (flag_key)
        ck_assert_str_eq(ev.flag->key, flag_key);
    ev_free(&ev);
    free(ch);
    free(msg);
}

#define FREE2() do { free(out); free(err); out = err = NULL; } while (0)

START_TEST(test_flag_round_trip)
{
    char *out = NULL, *err = NULL;

    ck_assert_int_eq(cli(&out, &err, "flags", "create", "new-ui", "--description", "New UI",
                         "--tag", "web", "--enabled", NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "flag.created: new-ui (version 1, enabled true)"));
    ck_assert_ptr_nonnull(strstr(out, "published on flags at offset 1"));
    FREE2();
    expect_pub("flags", EV_FLAG_CREATED, "new-ui");

    /* A key with '/' and ':' travels percent-encoded. */
    ck_assert_int_eq(cli(&out, &err, "flags", "create", "team/a:b",
                         "{\"segments\":[{\"rolloutPercent\":10}]}", NULL), 0);
    FREE2();
    expect_pub("flags", EV_FLAG_CREATED, "team/a:b");
    ck_assert_int_eq(cli(&out, &err, "flags", "disable", "new-ui", NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "flag.toggled: new-ui (version 2, enabled false)"));
    FREE2();
    expect_pub("flags", EV_FLAG_TOGGLED, "new-ui");
    ck_assert_int_eq(cli(&out, &err, "flags", "enable", "team/a:b", NULL), 0);
    FREE2();
    expect_pub("flags", EV_FLAG_TOGGLED, "team/a:b");
    ck_assert_int_eq(cli(&out, &err, "flags", "update", "new-ui", "--if-match", "2",
                         "{\"description\":\"Newer\"}", NULL), 0);
    FREE2();
    expect_pub("flags", EV_FLAG_UPDATED, "new-ui");

    ck_assert_int_eq(cli(&out, &err, "flags", "list", NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "new-ui"));
    ck_assert_ptr_nonnull(strstr(out, "team/a:b"));
    ck_assert_ptr_nonnull(strstr(out, "2 flags"));
    FREE2();
    ck_assert_int_eq(cli(&out, &err, "flags", "get", "team/a:b", NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "enabled:     true"));
    ck_assert_ptr_nonnull(strstr(out, "\"rolloutPercent\": 10"));
    FREE2();
    ck_assert_int_eq(cli(&out, &err, "--json", "flags", "get", "new-ui", NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "\"description\":\"Newer\""));
    ck_assert_ptr_nonnull(strstr(out, "\"version\":3"));
    FREE2();

    /* Failures: the server's message and exit 1; nothing published. */
    ck_assert_int_eq(cli(&out, &err, "flags", "update", "new-ui", "--if-match", "1",
                         "{\"description\":\"late\"}", NULL), 1);
    ck_assert_ptr_nonnull(strstr(err, "is at version 3, not 1"));
    ck_assert_ptr_nonnull(strstr(err, "412"));
    FREE2();
    ck_assert_int_eq(cli(&out, &err, "flags", "create", "new-ui", NULL), 1);
    ck_assert_ptr_nonnull(strstr(err, "already exists"));
    FREE2();
    ck_assert_int_eq(cli(&out, &err, "flags", "get", "nope", NULL), 1);
    ck_assert_ptr_nonnull(strstr(err, "does not exist"));
    FREE2();
    ck_assert_int_eq(cli(&out, &err, "--token", "wrong", "flags", "list", NULL), 1);
    ck_assert_ptr_nonnull(strstr(err, "invalid admin token"));
    FREE2();

    ck_assert_int_eq(cli(&out, &err, "flags", "delete", "new-ui", NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "flag.deleted: new-ui"));
    FREE2();
    expect_pub("flags", EV_FLAG_DELETED, "new-ui");
    char *ch, *msg;
    size_t len;
    ck_assert_int_eq(h_sub_next(fx.sub, 150, &ch, &msg, &len), 0);
}
END_TEST

START_TEST(test_publish_and_send)
{
    char *out = NULL, *err = NULL;
    ck_assert_int_eq(cli(&out, &err, "publish", "chat.room1", "{\"text\":\"hi\"}", NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "published on chat.room1 at offset 1"));
    FREE2();
    expect_pub("chat.room1", EV_MESSAGE, NULL);
    ck_assert_int_eq(cli(&out, &err, "--json", "send", "--user", "42", "--role", "ops",
                         "\"maintenance at 5\"", NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "\"publications\":["));
    FREE2();
    expect_pub("user:42", EV_MESSAGE, NULL);
    expect_pub("role:ops", EV_MESSAGE, NULL);
    ck_assert_int_eq(cli(&out, &err, "publish", "flags", "1", NULL), 1);
    ck_assert_ptr_nonnull(strstr(err, "reserved"));
    FREE2();
    ck_assert_int_eq(cli(&out, &err, "publish", "chat", "{not json", NULL), 2);
    FREE2();
    ck_assert_int_eq(cli(&out, &err, "send", "1", NULL), 2);
    ck_assert_ptr_nonnull(strstr(err, "--user or --role"));
    FREE2();
}
END_TEST

START_TEST(test_usage)
{
    char *out = NULL, *err = NULL;
    ck_assert_int_eq(cli(&out, &err, "--help", NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "FLAGCAST_URL"));
    ck_assert_ptr_nonnull(strstr(out, "FLAGCAST_TOKEN"));
    FREE2();
    ck_assert_int_eq(cli(&out, &err, "flags", "--help", NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "--if-match"));
    FREE2();
    ck_assert_int_eq(cli(&out, &err, "publish", "--help", NULL), 0);
    FREE2();
    ck_assert_int_eq(cli(&out, &err, "send", "--help", NULL), 0);
    FREE2();
    ck_assert_int_eq(cli(&out, &err, "--version", NULL), 0);
    FREE2();
    ck_assert_int_eq(cli(&out, &err, "frobnicate", NULL), 2);
    FREE2();
    ck_assert_int_eq(cli(&out, &err, "flags", "list", "--bogus", NULL), 2);
    FREE2();
    ck_assert_int_eq(cli(&out, &err, "--url", "http://127.0.0.1:1", "flags", "list", NULL), 1);
    ck_assert_ptr_nonnull(strstr(err, "no answer"));
    FREE2();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_flag_round_trip);
    tcase_add_test(tc, test_publish_and_send);
    tcase_add_test(tc, test_usage);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
