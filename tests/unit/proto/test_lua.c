/*
 * publish.lua and the proto decoders against a real redis-server (private
 * port, temp dir).
 *
 * The script itself: the real publish.lua (the text the publisher embeds)
 * is EVALed with the argument vector store_args_build makes, for every
 * event type and for offsets past 2^32, with one publication and with
 * several (per-publication A/B bodies); the bytes PUBLISHed on each channel
 * must decode with ev_decode to the event that was sent, under the epoch
 * and offset the script replied (store_reply_parse). A changed script or
 * vector that breaks the wire fails here. Its refusals (409, 404, 412 with
 * the current version) are checked too.
 *
 * cmsgpack's own ways: a body or a flag record decoded and re-packed by
 * cmsgpack (Lua numbers are doubles, nil drops out of arrays, tables lose
 * their key order) must still decode.
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
#include "publisher/store.c"   /* store_args_build, store_reply_parse, publish_lua */
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

/* EVALs the real publish.lua with the vector a (argv[0..1] filled here). */
static redisReply *eval_script(store_args_t *a)
{
    a->argv[0] = strdup("EVAL");
    a->argv[1] = strdup(publish_lua);
    a->lens[0] = 4;
    a->lens[1] = strlen(publish_lua);
    redisReply *r = redisCommandArgv(conn, a->argc, (const char **)a->argv, a->lens);
    ck_assert_msg(r && r->type != REDIS_REPLY_ERROR, "EVAL publish.lua failed: %s",
                  r ? r->str : conn->errstr);
    return r;
}

/* A connection subscribed to "<prefix>:ch:<channel>". */
static redisContext *subscribe(const char *prefix, const char *channel)
{
    struct timeval tv = { 2, 0 };
    redisContext *s = redis_connect();
    ck_assert(s && !s->err);
    redisSetTimeout(s, tv);
    redisReply *r = redisCommand(s, "SUBSCRIBE %s:ch:%s", prefix, channel);
    ck_assert(r && r->type == REDIS_REPLY_ARRAY);
    freeReplyObject(r);
    return s;
}

/* The next message on s: decodes it and checks it is ev under the epoch
 * and offset of the script reply's i-th publication. */
static void expect_published(redisContext *s, ev_t *ev, const store_reply_t *sr, size_t i)
{
    redisReply *m;
    ev_t back;
    char err[256];
    ck_assert_int_eq(redisGetReply(s, (void **)&m), REDIS_OK);
    ck_assert(m->type == REDIS_REPLY_ARRAY && m->elements == 3);
    ck_assert_str_eq(m->element[0]->str, "message");
    ck_assert_msg(ev_decode(m->element[2]->str, m->element[2]->len, &back, err,
                            sizeof(err)) == 0, "%s", err);
    ck_assert_str_eq(sr->pub[3 * i]->str, ev->channel);
    free(ev->epoch);
    ev->epoch = strdup(sr->pub[3 * i + 1]->str);
    ev->offset = (uint64_t)sr->pub[3 * i + 2]->integer;
    ck_assert(ev_eq(ev, &back));
    ev_free(&back);
    freeReplyObject(m);
}

START_TEST(test_lua_script_every_type)
{
    /* the offset before the call: none yet, 41, 2^40 - 1 */
    static const long long before[] = { -1, 41, 1099511627775LL };
    for (int t = 0; t < EV_TYPE_COUNT; t++) {
        for (int o = 0; o < 3; o++) {
            ev_t ev;
            buf_t body, rec;
            store_args_t a;
            store_reply_t sr;
            char prefix[32];
            snprintf(prefix, sizeof(prefix), "t%do%d", t, o);
            sample_event(&ev, (ev_type_t)t);
            buf_init(&body);
            buf_init(&rec);
            ck_assert_int_eq(ev_encode_body(&ev, &body), 0);
            if (before[o] >= 0)
                freeReplyObject(redisCommand(conn, "HSET %s:meta:%s offset %lld", prefix,
                                             ev.channel, before[o]));
            store_pub_t pub = { .channel = ev.channel };
            store_call_t c = { .body = body.data, .body_len = body.len, .history_size = 100,
                               .pubs = &pub, .npub = 1 };
            if (ev.flag) {
                ck_assert_int_eq(flag_encode(ev.flag, &rec), 0);
                c.op = STORE_FLAG;
                c.mode = "create";
                c.key = ev.flag->key;
                c.id = ev.flag->id;
                c.record = rec.data;
                c.record_len = rec.len;
            } else {
                c.op = STORE_MSG;
                c.ttl = 60;
            }
            ck_assert_int_eq(store_args_build(prefix, &c, &a), 0);
            redisContext *s = subscribe(prefix, ev.channel);
            redisReply *r = eval_script(&a);
            ck_assert_int_eq(store_reply_parse(r, &sr), 0);
            ck_assert_int_eq(sr.status, 200);
            ck_assert_uint_eq(sr.npub, 1);
            ck_assert_int_eq(sr.pub[2]->integer, before[o] < 0 ? 1 : before[o] + 1);
            expect_published(s, &ev, &sr, 0);
            if (ev.flag) {    /* the record was stored as sent */
                redisReply *h = redisCommand(conn, "HGET %s:flags %s", prefix, ev.flag->key);
                ck_assert(h && h->type == REDIS_REPLY_STRING && h->len == rec.len &&
                          memcmp(h->str, rec.data, rec.len) == 0);
                freeReplyObject(h);
            }
            freeReplyObject(r);
            redisFree(s);
            store_args_free(&a);
            buf_free(&body);
            buf_free(&rec);
            ev_free(&ev);
        }
    }
}
END_TEST

START_TEST(test_lua_script_per_publication_bodies)
{
    /* an A/B message: two inboxes, each its own body */
    static const char *const chans[] = { "user:u1", "user:u2" };
    ev_t ev[2];
    buf_t body[2];
    store_pub_t pubs[2];
    redisContext *s[2];
    store_args_t a;
    store_reply_t sr;
    for (int i = 0; i < 2; i++) {
        sample_event(&ev[i], EV_MESSAGE);
        free(ev[i].channel);
        ev[i].channel = strdup(chans[i]);
        ev[i].ts += (uint64_t)i;          /* two different bodies */
        buf_init(&body[i]);
        ck_assert_int_eq(ev_encode_body(&ev[i], &body[i]), 0);
        pubs[i] = (store_pub_t){ chans[i], body[i].data, body[i].len };
        s[i] = subscribe("ab", chans[i]);
    }
    store_call_t c = { .op = STORE_MSG, .history_size = 100, .ttl = 60, .pubs = pubs,
                       .npub = 2 };
    ck_assert_int_eq(store_args_build("ab", &c, &a), 0);
    redisReply *r = eval_script(&a);
    ck_assert_int_eq(store_reply_parse(r, &sr), 0);
    ck_assert_int_eq(sr.status, 200);
    ck_assert_uint_eq(sr.npub, 2);
    for (int i = 0; i < 2; i++) {
        expect_published(s[i], &ev[i], &sr, (size_t)i);
        redisFree(s[i]);
        buf_free(&body[i]);
        ev_free(&ev[i]);
    }
    freeReplyObject(r);
    store_args_free(&a);
}
END_TEST

START_TEST(test_lua_script_refusals)
{
    flag_t f;
    buf_t rec;
    store_args_t a;
    store_reply_t sr;
    redisReply *r;
    store_pub_t pub = { .channel = "flags" };
    sample_flag(&f);
    buf_init(&rec);
    ck_assert_int_eq(flag_encode(&f, &rec), 0);     /* version 3 */
    store_call_t c = { .op = STORE_FLAG, .mode = "update", .key = f.key, .expected = 2,
                       .id = f.id, .record = rec.data, .record_len = rec.len,
                       .body = "\x80", .body_len = 1, .history_size = 100, .pubs = &pub,
                       .npub = 1 };
    /* update of a flag that does not exist */
    ck_assert_int_eq(store_args_build("refuse", &c, &a), 0);
    r = eval_script(&a);
    ck_assert_int_eq(store_reply_parse(r, &sr), 0);
    ck_assert_int_eq(sr.status, 404);
    freeReplyObject(r);
    store_args_free(&a);
    /* create, then create again */
    c.mode = "create";
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(store_args_build("refuse", &c, &a), 0);
        r = eval_script(&a);
        ck_assert_int_eq(store_reply_parse(r, &sr), 0);
        ck_assert_int_eq(sr.status, i == 0 ? 200 : 409);
        freeReplyObject(r);
        store_args_free(&a);
    }
    /* update expecting version 2 of a record at version 3 */
    c.mode = "update";
    ck_assert_int_eq(store_args_build("refuse", &c, &a), 0);
    r = eval_script(&a);
    ck_assert_int_eq(store_reply_parse(r, &sr), 0);
    ck_assert_int_eq(sr.status, 412);
    ck_assert_int_eq(sr.current, 3);
    freeReplyObject(r);
    store_args_free(&a);
    buf_free(&rec);
    flag_free(&f);
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
    TCase *tc = tcase_create("publish_lua");
    tcase_add_checked_fixture(tc, per_test_setup, per_test_teardown);
    tcase_add_test(tc, test_lua_script_every_type);
    tcase_add_test(tc, test_lua_script_per_publication_bodies);
    tcase_add_test(tc, test_lua_script_refusals);
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
