/* Unit tests for common/config: defaults < env < flags, bad values, --help. */
#include "common/config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *listen_v, *name_v;
static long size_v;
static bool flag_v;

static const cfg_opt_t opts[] = {
    { "listen", "FCT_LISTEN", CFG_STR, "127.0.0.1:8081", "where to listen", &listen_v, 0, 0 },
    { "name", "FCT_NAME", CFG_STR, NULL, "a name", &name_v, 0, 0 },
    { "size", "FCT_SIZE", CFG_INT, "10", "a size", &size_v, 1, 100 },
    { "flag", "FCT_FLAG", CFG_BOOL, "false", "a flag", &flag_v, 0, 0 },
    { 0 }
};

static int parse(int argc, char **argv, char *err)
{
    return cfg_parse(opts, argc, argv, "prog", "summary", err, 256);
}

START_TEST(test_defaults)
{
    char err[256];
    char *argv[] = { "prog", NULL };
    unsetenv("FCT_LISTEN");
    ck_assert_int_eq(parse(1, argv, err), 0);
    ck_assert_str_eq(listen_v, "127.0.0.1:8081");
    ck_assert_ptr_null(name_v);
    ck_assert_int_eq(size_v, 10);
    ck_assert(!flag_v);
}
END_TEST

START_TEST(test_env_then_flags)
{
    char err[256];
    setenv("FCT_LISTEN", "0.0.0.0:1", 1);
    setenv("FCT_SIZE", "20", 1);
    setenv("FCT_FLAG", "yes", 1);
    char *argv1[] = { "prog", NULL };
    ck_assert_int_eq(parse(1, argv1, err), 0);
    ck_assert_str_eq(listen_v, "0.0.0.0:1");
    ck_assert_int_eq(size_v, 20);
    ck_assert(flag_v);
    char *argv2[] = { "prog", "--listen=1.2.3.4:5", "--size", "30", "--flag=false",
                      "--name", "x y", NULL };
    ck_assert_int_eq(parse(7, argv2, err), 0);
    ck_assert_str_eq(listen_v, "1.2.3.4:5");
    ck_assert_int_eq(size_v, 30);
    ck_assert(!flag_v);
    ck_assert_str_eq(name_v, "x y");
    char *argv3[] = { "prog", "--flag", NULL };
    ck_assert_int_eq(parse(2, argv3, err), 0);
    ck_assert(flag_v);
}
END_TEST

START_TEST(test_bad_values)
{
    char err[256];
    char *a1[] = { "prog", "--size=abc", NULL };
    ck_assert_int_eq(parse(2, a1, err), -1);
    ck_assert_ptr_nonnull(strstr(err, "--size"));
    char *a2[] = { "prog", "--size=1000", NULL };
    ck_assert_int_eq(parse(2, a2, err), -1);
    ck_assert_ptr_nonnull(strstr(err, "out of range"));
    char *a3[] = { "prog", "--size=12x", NULL };
    ck_assert_int_eq(parse(2, a3, err), -1);
    char *a4[] = { "prog", "--size=99999999999999999999999", NULL };
    ck_assert_int_eq(parse(2, a4, err), -1);
    char *a5[] = { "prog", "--size=", NULL };
    ck_assert_int_eq(parse(2, a5, err), -1);
    char *a6[] = { "prog", "--flag=maybe", NULL };
    ck_assert_int_eq(parse(2, a6, err), -1);
    char *a7[] = { "prog", "--nope=1", NULL };
    ck_assert_int_eq(parse(2, a7, err), -1);
    ck_assert_ptr_nonnull(strstr(err, "unknown option \"--nope\""));
    char *a8[] = { "prog", "stray", NULL };
    ck_assert_int_eq(parse(2, a8, err), -1);
    char *a9[] = { "prog", "--listen", NULL };
    ck_assert_int_eq(parse(2, a9, err), -1);
    ck_assert_ptr_nonnull(strstr(err, "needs a value"));
    setenv("FCT_SIZE", "-5", 1);
    char *a10[] = { "prog", NULL };
    ck_assert_int_eq(parse(1, a10, err), -1);
    ck_assert_ptr_nonnull(strstr(err, "FCT_SIZE"));
    /* A prefix of an option name is not that option. */
    unsetenv("FCT_SIZE");
    char *a11[] = { "prog", "--lis=1", NULL };
    ck_assert_int_eq(parse(2, a11, err), -1);
}
END_TEST

START_TEST(test_help_and_version)
{
    char err[256], out[4096];
    char tmpl[] = "/tmp/fct-XXXXXX";
    int fd = mkstemp(tmpl);
    int saved = dup(1);
    fflush(stdout);
    dup2(fd, 1);
    char *a1[] = { "prog", "--help", NULL };
    int r1 = parse(2, a1, err);
    char *a2[] = { "prog", "--version", NULL };
    int r2 = parse(2, a2, err);
    fflush(stdout);
    dup2(saved, 1);
    ck_assert_int_eq(r1, 1);
    ck_assert_int_eq(r2, 1);
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, out, sizeof(out) - 1);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(tmpl);
    ck_assert_ptr_nonnull(strstr(out, "--listen"));
    ck_assert_ptr_nonnull(strstr(out, "FCT_LISTEN"));
    ck_assert_ptr_nonnull(strstr(out, "127.0.0.1:8081"));
    ck_assert_ptr_nonnull(strstr(out, "--size=N"));
    ck_assert_ptr_nonnull(strstr(out, "prog "));
}
END_TEST

START_TEST(test_hostport)
{
    char host[64];
    int port;
    ck_assert_int_eq(cfg_parse_hostport("127.0.0.1:8080", host, sizeof(host), &port), 0);
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_int_eq(port, 8080);
    ck_assert_int_eq(cfg_parse_hostport(":9", host, sizeof(host), &port), 0);
    ck_assert_str_eq(host, "0.0.0.0");
    ck_assert_int_eq(port, 9);
    ck_assert_int_eq(cfg_parse_hostport("[::1]:443", host, sizeof(host), &port), 0);
    ck_assert_str_eq(host, "::1");
    ck_assert_int_eq(cfg_parse_hostport("localhost", host, sizeof(host), &port), -1);
    ck_assert_int_eq(cfg_parse_hostport("h:70000", host, sizeof(host), &port), -1);
    ck_assert_int_eq(cfg_parse_hostport("h:", host, sizeof(host), &port), -1);
    ck_assert_int_eq(cfg_parse_hostport("h:1x", host, sizeof(host), &port), -1);
    ck_assert_int_eq(cfg_parse_hostport("::1:80", host, sizeof(host), &port), -1);
    ck_assert_int_eq(cfg_parse_hostport("[]:80", host, sizeof(host), &port), -1);
    ck_assert_int_eq(cfg_parse_hostport("averyveryveryveryveryveryveryveryveryveryveryveryveryveryverylonghost:1",
                                        host, sizeof(host), &port), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_env_then_flags);
    tcase_add_test(tc, test_bad_values);
    tcase_add_test(tc, test_help_and_version);
    tcase_add_test(tc, test_hostport);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
