/*
 * The proto decoders against what Redis's Lua actually produces: a real
 * redis-server (private port, temp dir) runs cmsgpack the way the publish
 * script does — header packed in Lua and prepended to the body bytes — and
 * the stricter case of a body or a flag record decoded and re-packed by
 * cmsgpack (Lua numbers are doubles, nil drops out of arrays, tables lose
 * their key order). Everything must still decode.
 */
#include <check.h>
#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto/event.h"
#include "proto/flag.h"
#include "sample.h"

static pid_t redis_pid = -1;
static pid_t owner_pid;          /* only the process that started it stops it */
static int redis_port;
static char redis_dir[64];

static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        perror("free_port");
        exit(1);
    }
    close(fd);
    return ntohs(a.sin_port);
}

static void redis_stop(void)
{
    if (redis_pid > 0 && getpid() == owner_pid) {
        kill(redis_pid, SIGTERM);
        waitpid(redis_pid, NULL, 0);
        redis_pid = -1;
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", redis_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", redis_dir);
    }
}

static redisContext *redis_connect(void)
{
    struct timeval tv = { 1, 0 };
    return redisConnectWithTimeout("127.0.0.1", redis_port, tv);
}

/* Starts redis-server and waits (5 s at most) until it answers PING. */
static void redis_start(void)
{
    char port[16];
    strcpy(redis_dir, "/tmp/flagcast-test-lua.XXXXXX");
    if (!mkdtemp(redis_dir)) {
        perror("mkdtemp");
        exit(1);
    }
    redis_port = free_port();
    snprintf(port, sizeof(port), "%d", redis_port);
    owner_pid = getpid();
    redis_pid = fork();
    if (redis_pid == 0) {
        if (!freopen("/dev/null", "w", stdout))
            _exit(127);
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--dir", redis_dir,
               "--daemonize", "no", "--loglevel", "warning", (char *)NULL);
        perror("redis-server");
        _exit(127);
    }
    atexit(redis_stop);
    struct timespec start, now, pause = { 0, 20 * 1000 * 1000 };
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        redisContext *c = redis_connect();
        if (c && !c->err) {
            redisReply *r = redisCommand(c, "PING");
            int ok = r && r->type == REDIS_REPLY_STATUS;
            freeReplyObject(r);
            redisFree(c);
            if (ok)
                return;
        } else if (c) {
            redisFree(c);
        }
        int st;
        if (waitpid(redis_pid, &st, WNOHANG) == redis_pid) {
            fprintf(stderr, "redis-server exited (is it installed?)\n");
            redis_pid = -1;
            exit(1);
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > 5) {
            fprintf(stderr, "redis-server did not answer within 5 s\n");
            exit(1);
        }
        nanosleep(&pause, NULL);
    }
}

static redisContext *conn;

static void per_test_setup(void)
{
    conn = redis_connect();
    ck_assert_msg(conn && !conn->err, "cannot connect to redis-server");
}

static void per_test_teardown(void)
{
    redisFree(conn);
}

/* EVAL script with the given binary arguments; returns the reply. */
static redisReply *eval(const char *script, int argc, const char **argv, const size_t *lens)
{
    const char *av[16];
    size_t al[16];
    av[0] = "EVAL"; al[0] = 4;
    av[1] = script; al[1] = strlen(script);
    av[2] = "0"; al[2] = 1;
    for (int i = 0; i < argc; i++) {
        av[3 + i] = argv[i];
        al[3 + i] = lens[i];
    }
    redisReply *r = redisCommandArgv(conn, 3 + argc, av, al);
    ck_assert_msg(r && r->type != REDIS_REPLY_ERROR, "EVAL failed: %s",
                  r ? r->str : conn->errstr);
    return r;
}

/* The publish script's way: header packed by Lua, body bytes appended. */
static const char *const HEADER_LUA =
    "return cmsgpack.pack({1, ARGV[2], ARGV[3], tonumber(ARGV[4])}) .. ARGV[1]";

START_TEST(test_lua_header_every_type)
{
    for (int t = 0; t < EV_TYPE_COUNT; t++) {
        ev_t ev, back;
        buf_t body;
        char err[256];
        const char *offs[] = { "0", "42", "1099511627776" };   /* 2^40 */
        sample_event(&ev, (ev_type_t)t);
        buf_init(&body);
        ck_assert_int_eq(ev_encode_body(&ev, &body), 0);
        for (int o = 0; o < 3; o++) {
            const char *argv[] = { body.data, ev.channel, ev.epoch, offs[o] };
            size_t lens[] = { body.len, strlen(ev.channel), strlen(ev.epoch),
                              strlen(offs[o]) };
            redisReply *r = eval(HEADER_LUA, 4, argv, lens);
            ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
            ck_assert_msg(ev_decode(r->str, r->len, &back, err, sizeof(err)) == 0,
                          "type %d: %s", t, err);
            ev.offset = strtoull(offs[o], NULL, 10);
            ck_assert(ev_eq(&ev, &back));
            ev_free(&back);
            freeReplyObject(r);
        }
        buf_free(&body);
        ev_free(&ev);
    }
}
END_TEST

START_TEST(test_lua_repacked_body)
{
    /* a body that went through cmsgpack.unpack/pack still decodes */
    for (int t = 0; t < EV_TYPE_COUNT; t++) {
        ev_t ev, back;
        buf_t body;
        char err[256];
        sample_event(&ev, (ev_type_t)t);
        buf_init(&body);
        ck_assert_int_eq(ev_encode_body(&ev, &body), 0);
        const char *argv[] = { body.data };
        size_t lens[] = { body.len };
        redisReply *r = eval("return cmsgpack.pack(cmsgpack.unpack(ARGV[1]))", 1, argv, lens);
        ck_assert_msg(ev_decode_body(r->str, r->len, &back, err, sizeof(err)) == 0,
                      "type %d: %s", t, err);
        ck_assert_int_eq(back.type, ev.type);
        ck_assert_uint_eq(back.ts, ev.ts);
        ck_assert_str_eq(back.actor, ev.actor);
        if (ev.flag) {
            ck_assert_str_eq(back.flag->key, ev.flag->key);
            ck_assert_uint_eq(back.flag->nsegments, ev.flag->nsegments);
            ck_assert_uint_eq(back.flag->segments[0].distributions[1].percent, 70);
        }
        ev_free(&back);
        freeReplyObject(r);
        buf_free(&body);
        ev_free(&ev);
    }
}
END_TEST

START_TEST(test_lua_built_flag)
{
    /* a record written by Lua itself, numbers as Lua numbers */
    static const char *const script =
        "return cmsgpack.pack({id = 3, key = 'from-lua', enabled = false,"
        " tags = {'a', 'b'}, variants = {{key = 'v', attachment = {x = 1.5}}},"
        " segments = {{rank = 0, rolloutPercent = 100, constraints = {},"
        " distributions = {{variantKey = 'v', percent = 100}}}},"
        " version = 2, updatedAt = 1700000000000})";
    flag_t f;
    char err[256];
    redisReply *r = eval(script, 0, NULL, NULL);
    ck_assert_msg(flag_decode(r->str, r->len, &f, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(f.id, 3);
    ck_assert_str_eq(f.key, "from-lua");
    ck_assert(!f.enabled);
    ck_assert_uint_eq(f.ntags, 2);
    ck_assert_uint_eq(f.segments[0].rollout_percent, 100);
    ck_assert_uint_eq(f.updated_at, 1700000000000ULL);
    ck_assert_ptr_nonnull(f.variants[0].attachment);
    flag_free(&f);
    freeReplyObject(r);

    /* a fractional number where an integer belongs is refused */
    r = eval("return cmsgpack.pack({id = 1.5, key = 'k', enabled = true,"
             " version = 1, updatedAt = 1})", 0, NULL, NULL);
    ck_assert_int_eq(flag_decode(r->str, r->len, &f, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "flag.id") != NULL, "%s", err);
    freeReplyObject(r);
}
END_TEST

static Suite *lua_suite(void)
{
    Suite *s = suite_create("lua");
    TCase *tc = tcase_create("cmsgpack");
    tcase_add_checked_fixture(tc, per_test_setup, per_test_teardown);
    tcase_add_test(tc, test_lua_header_every_type);
    tcase_add_test(tc, test_lua_repacked_body);
    tcase_add_test(tc, test_lua_built_flag);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    redis_start();
    SRunner *sr = srunner_create(lua_suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    redis_stop();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
