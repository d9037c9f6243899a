/*
 * test_publisher — flagcast-publisher against a real redis-server.
 *
 * Each test (a forked child, Check's fork mode) starts its own redis-server
 * on a free port, the real publisher binary on another, and a hiredis
 * subscriber PSUBSCRIBEd to "<prefix>:ch:*". Every API call must produce
 * exactly one message (header + body, decoded with ev_decode) on the right
 * Redis channel, the same bytes in the channel's history stream, and for
 * flags the record in the state hash; every bad input must get the right
 * status and leave every Redis key byte-for-byte unchanged.
 */
#include "tests/integration/harness.h"
#include "proto/event.h"
#include "proto/flag.h"

#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define PREFIX "fctest"
#define TOKEN "s3cret-token"
#define AUTH "Authorization: Bearer " TOKEN "\r\n"

static h_pubfix_t fx; /* redis, the publisher, a subscriber to PREFIX:ch:* */

/* The publisher's environment with these admin tokens (static buffer). */
static const char *const *publisher_env(const char *tokens)
{
    static char env_tokens[256];
    static const char *env[] = { NULL, "FLAGCAST_REDIS_PREFIX=" PREFIX, "FLAGCAST_MAX_BODY=65536",
                                 "FLAGCAST_HISTORY_TTL=3600", "FLAGCAST_LOG_LEVEL=debug", NULL };
    snprintf(env_tokens, sizeof(env_tokens), "FLAGCAST_ADMIN_TOKENS=%s", tokens);
    env[0] = env_tokens;
    return env;
}

static void setup(void)
{
    ck_assert_int_eq(h_pubfix_start(&fx, publisher_env("ops:" TOKEN ",other-token"),
                                    PREFIX ":ch:*"), 0);
}

static void teardown(void)
{
    h_pubfix_stop(&fx);
}

/* ==== helpers ==== */

static int api(const char *method, const char *path, const char *body, const char *headers,
               h_resp_t *r)
{
    char hdr[512];
    snprintf(hdr, sizeof(hdr), "%s%s", AUTH, headers ? headers : "");
    ck_assert_int_eq(h_http(fx.port, method, path, hdr, body, body ? strlen(body) : 0, r), 0);
    return r->status;
}

static int api_status(const char *method, const char *path, const char *body,
                      const char *headers)
{
    h_resp_t r;
    int s = api(method, path, body, headers, &r);
    if (strstr(r.body, "\"error\"") == NULL && s >= 400)
        ck_abort_msg("%s %s: error status %d without a JSON error body: %s", method, path, s,
                     r.body);
    h_resp_free(&r);
    return s;
}

/* Takes the next publication; checks it came on <prefix>:ch:<channel>, that
 * it decodes, that its header names the channel, and that the history
 * stream holds the same bytes under <offset>-0. Caller ev_free()s ev. */
static void next_pub(const char *channel, ev_type_t type, ev_t *ev)
{
    char *ch = NULL, *msg = NULL, err[256], want[256];
    size_t len = 0;
    ck_assert_msg(h_sub_next(fx.sub, 3000, &ch, &msg, &len) == 1, "no publication for %s", channel);
    snprintf(want, sizeof(want), PREFIX ":ch:%s", channel);
    ck_assert_str_eq(ch, want);
    ck_assert_msg(ev_decode(msg, len, ev, err, sizeof(err)) == 0, "undecodable: %s", err);
    ck_assert_str_eq(ev->channel, channel);
    ck_assert_int_eq(ev->type, type);
    ck_assert_int_gt(ev->offset, 0);
    ck_assert_ptr_nonnull(ev->epoch);
    ck_assert_str_eq(ev->actor, "ops");

    redisContext *c = h_redis_connect(fx.redis.port);
    redisReply *r = redisCommand(c, "XRANGE " PREFIX ":hist:%s %llu-0 %llu-0", channel,
                                 (unsigned long long)ev->offset, (unsigned long long)ev->offset);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_int_eq(r->elements, 1);
    redisReply *fields = r->element[0]->element[1];
    ck_assert_int_eq(fields->elements, 2);
    ck_assert_str_eq(fields->element[0]->str, "m");
    ck_assert_int_eq(fields->element[1]->len, len);
    ck_assert(memcmp(fields->element[1]->str, msg, len) == 0);
    freeReplyObject(r);
    r = redisCommand(c, "HGET " PREFIX ":meta:%s offset", channel);
    ck_assert_int_ge(atoll(r->str), ev->offset); /* later ones may follow */
    freeReplyObject(r);
    r = redisCommand(c, "HGET " PREFIX ":meta:%s epoch", channel);
    ck_assert_str_eq(r->str, ev->epoch);
    freeReplyObject(r);
    redisFree(c);
    free(ch);
    free(msg);
}

static void no_more_pubs(void)
{
    char *ch = NULL, *msg = NULL;
    size_t len;
    int r = h_sub_next(fx.sub, 150, &ch, &msg, &len);
    ck_assert_msg(r == 0, "unexpected publication on %s", r == 1 ? ch : "?");
}

/* The stored record of key (decoded), or -1 if absent. */
static int stored_flag(const char *key, flag_t *f)
{
    char err[256];
    redisContext *c = h_redis_connect(fx.redis.port);
    redisReply *r = redisCommand(c, "HGET " PREFIX ":flags %s", key);
    int rc = -1;
    if (r->type == REDIS_REPLY_STRING) {
        ck_assert_msg(flag_decode(r->str, r->len, f, err, sizeof(err)) == 0, "%s", err);
        rc = 0;
    }
    freeReplyObject(r);
    redisFree(c);
    return rc;
}

static char *redis_str(const char *fmt, const char *arg)
{
    redisContext *c = h_redis_connect(fx.redis.port);
    redisReply *r = redisCommand(c, fmt, arg);
    char *s = r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    freeReplyObject(r);
    redisFree(c);
    return s;
}

static void create_flag(const char *key)
{
    char body[256];
    ev_t ev;
    snprintf(body, sizeof(body), "{\"key\":\"%s\",\"description\":\"test flag\","
                                 "\"tags\":[\"web\"]}", key);
    ck_assert_int_eq(api_status("POST", "/api/v1/flags", body, NULL), 201);
    next_pub("flags", EV_FLAG_CREATED, &ev);
    ev_free(&ev);
}

/* ==== tests ==== */

START_TEST(test_create_get_list)
{
    h_resp_t r;
    ev_t ev;
    flag_t f;

    ck_assert_int_eq(api("POST", "/api/v1/flags",
                         "{\"key\":\"new-ui\",\"enabled\":true,\"description\":\"New UI\","
                         "\"tags\":[\"web\",\"beta\"],"
                         "\"variants\":[{\"key\":\"on\",\"attachment\":{\"color\":\"red\"}}],"
                         "\"segments\":[{\"rank\":0,\"rolloutPercent\":50,"
                         "\"constraints\":[{\"property\":\"country\",\"operator\":\"EQ\","
                         "\"value\":\"FR\"}],"
                         "\"distributions\":[{\"variantKey\":\"on\",\"percent\":100}]}]}",
                         NULL, &r), 201);
    ck_assert_ptr_nonnull(strstr(r.body, "\"version\":1"));
    ck_assert_ptr_nonnull(strstr(r.body, "\"publication\":{\"channel\":\"flags\""));
    ck_assert_ptr_nonnull(strstr(r.body, "\"offset\":1}"));
    h_resp_free(&r);

    next_pub("flags", EV_FLAG_CREATED, &ev);
    ck_assert_int_eq(ev.offset, 1);
    ck_assert_str_eq(ev.flag->key, "new-ui");
    ck_assert_int_eq(ev.flag->version, 1);
    ck_assert(ev.flag->enabled);
    ck_assert_int_eq(ev.flag->ntags, 2);
    ck_assert_int_eq(ev.flag->nvariants, 1);
    ck_assert_int_eq(ev.flag->nsegments, 1);
    ck_assert_int_eq(ev.flag->segments[0].rollout_percent, 50);
    ck_assert_int_gt(ev.flag->id, 0);
    uint64_t id = ev.flag->id;
    ev_free(&ev);
    no_more_pubs();

    ck_assert_int_eq(stored_flag("new-ui", &f), 0);
    ck_assert_int_eq(f.version, 1);
    ck_assert_int_eq(f.id, id);
    flag_free(&f);
    char idbuf[24];
    snprintf(idbuf, sizeof(idbuf), "%llu", (unsigned long long)id);
    char *k = redis_str("HGET " PREFIX ":flag-ids %s", idbuf);
    ck_assert_str_eq(k, "new-ui");
    free(k);

    ck_assert_int_eq(api("GET", "/api/v1/flags/new-ui", NULL, NULL, &r), 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"key\":\"new-ui\""));
    ck_assert_ptr_nonnull(strstr(r.body, "\"attachment\":{\"color\":\"red\"}"));
    char etag[32];
    ck_assert_int_eq(h_resp_header(&r, "ETag", etag, sizeof(etag)), 0);
    ck_assert_str_eq(etag, "\"1\"");
    h_resp_free(&r);

    create_flag("second");
    ck_assert_int_eq(api("GET", "/api/v1/flags", NULL, NULL, &r), 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"count\":2"));
    ck_assert(strstr(r.body, "new-ui") < strstr(r.body, "second")); /* by id */
    h_resp_free(&r);
    ck_assert_int_eq(api_status("GET", "/api/v1/flags/nope", NULL, NULL), 404);
    no_more_pubs();
}
END_TEST

START_TEST(test_every_mutation_publishes_once)
{
    static const struct {
        const char *method, *path, *body;
        ev_type_t type;
    } steps[] = {
        { "PUT", "/api/v1/flags/k1", "{\"description\":\"changed\",\"tags\":[\"a\"]}",
          EV_FLAG_UPDATED },
        { "PUT", "/api/v1/flags/k1/enabled", "{\"enabled\":true}", EV_FLAG_TOGGLED },
        { "PUT", "/api/v1/flags/k1/segments",
          "{\"segments\":[{\"rank\":1,\"rolloutPercent\":20}]}", EV_SEGMENT_UPDATED },
        { "PUT", "/api/v1/flags/k1/variants",
          "{\"variants\":[{\"key\":\"a\"},{\"key\":\"b\",\"attachment\":[1,2]}]}",
          EV_VARIANT_UPDATED },
        { "PUT", "/api/v1/flags/k1/enabled", "{\"enabled\":false}", EV_FLAG_TOGGLED },
        { "DELETE", "/api/v1/flags/k1", NULL, EV_FLAG_DELETED },
    };
    ev_t ev;
    flag_t f;

    create_flag("k1");
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        h_resp_t r;
        ck_assert_int_eq(api(steps[i].method, steps[i].path, steps[i].body, NULL, &r), 200);
        h_resp_free(&r);
        next_pub("flags", steps[i].type, &ev);
        ck_assert_int_eq(ev.offset, i + 2);
        ck_assert_str_eq(ev.flag->key, "k1");
        ck_assert_int_eq(ev.flag->version, i + 2);
        switch (steps[i].type) {
        case EV_FLAG_UPDATED:
            ck_assert_str_eq(ev.flag->description, "changed");
            ck_assert_int_eq(ev.flag->ntags, 1);
            break;
        case EV_FLAG_TOGGLED:
            ck_assert_int_eq(ev.flag->enabled, i == 1);
            break;
        case EV_SEGMENT_UPDATED:
            ck_assert_int_eq(ev.flag->nsegments, 1);
            ck_assert_int_eq(ev.flag->segments[0].rollout_percent, 20);
            break;
        case EV_VARIANT_UPDATED:
            ck_assert_int_eq(ev.flag->nvariants, 2);
            ck_assert_ptr_nonnull(ev.flag->variants[1].attachment);
            break;
        default:
            break;
        }
        if (steps[i].type != EV_FLAG_DELETED) {
            ck_assert_int_eq(stored_flag("k1", &f), 0);
            ck_assert_int_eq(f.version, i + 2);
            ck_assert_str_eq(f.description, "changed");
            flag_free(&f);
        }
        ev_free(&ev);
        no_more_pubs();
    }
    ck_assert_int_eq(stored_flag("k1", &f), -1);
    char *k = redis_str("HGET " PREFIX ":flag-ids %s", "1");
    ck_assert_ptr_null(k);
    ck_assert_int_eq(api_status("GET", "/api/v1/flags/k1", NULL, NULL), 404);

    /* If-Match with the right version wins; the flags channel has no TTL. */
    create_flag("k2");
    ck_assert_int_eq(api_status("PUT", "/api/v1/flags/k2/enabled", "{\"enabled\":true}",
                                "If-Match: \"1\"\r\n"), 200);
    next_pub("flags", EV_FLAG_TOGGLED, &ev);
    ck_assert_int_eq(ev.flag->version, 2);
    ev_free(&ev);
    redisContext *c = h_redis_connect(fx.redis.port);
    redisReply *r = redisCommand(c, "TTL " PREFIX ":hist:flags");
    ck_assert_int_eq(r->integer, -1);
    freeReplyObject(r);
    redisFree(c);
}
END_TEST

START_TEST(test_messages)
{
    h_resp_t r;
    ev_t ev;
    char err[256];

    ck_assert_int_eq(api("POST", "/api/v1/channels/chat.room1/messages",
                         "{\"data\":{\"text\":\"hello\",\"n\":[1,2.5,null,true]}}", NULL, &r),
                     200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"publication\":{\"channel\":\"chat.room1\""));
    h_resp_free(&r);
    next_pub("chat.room1", EV_MESSAGE, &ev);
    ck_assert_int_eq(ev.offset, 1);
    ck_assert_ptr_nonnull(ev.data);
    {
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        ck_assert_int_eq(msgpack_unpack_next(&u, ev.data, ev.data_len, NULL),
                         MSGPACK_UNPACK_SUCCESS);
        ck_assert_int_eq(u.data.type, MSGPACK_OBJECT_MAP);
        ck_assert_int_eq(u.data.via.map.size, 2);
        msgpack_unpacked_destroy(&u);
    }
    ev_free(&ev);
    ck_assert_int_eq(api_status("POST", "/api/v1/channels/chat.room1/messages",
                                "{\"data\":\"second\"}", NULL), 200);
    next_pub("chat.room1", EV_MESSAGE, &ev);
    ck_assert_int_eq(ev.offset, 2);
    ev_free(&ev);
    no_more_pubs();

    /* "data" at the deepest nesting allowed is accepted and decodes. */
    {
        char body[128];
        size_t o = (size_t)sprintf(body, "{\"data\":");
        for (int i = 0; i < EV_MAX_DATA_DEPTH; i++) body[o++] = '[';
        for (int i = 0; i < EV_MAX_DATA_DEPTH; i++) body[o++] = ']';
        strcpy(body + o, "}");
        ck_assert_int_eq(api_status("POST", "/api/v1/channels/deep/messages", body, NULL), 200);
        next_pub("deep", EV_MESSAGE, &ev);
        ev_free(&ev);
    }
    /* Non-flag channels expire. */
    redisContext *c = h_redis_connect(fx.redis.port);
    redisReply *t = redisCommand(c, "TTL " PREFIX ":hist:chat.room1");
    ck_assert_int_gt(t->integer, 3000);
    freeReplyObject(t);
    t = redisCommand(c, "TTL " PREFIX ":meta:chat.room1");
    ck_assert_int_gt(t->integer, 3000);
    freeReplyObject(t);

    /* Targeted: one publication per inbox, duplicates folded. */
    ck_assert_int_eq(api("POST", "/api/v1/messages",
                         "{\"users\":[\"42\",\"alice\",\"42\"],\"roles\":[\"admin\"],"
                         "\"data\":{\"notice\":\"maintenance\"}}", NULL, &r), 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"publications\":["));
    h_resp_free(&r);
    const char *inboxes[] = { "user:42", "user:alice", "role:admin" };
    for (int i = 0; i < 3; i++) {
        next_pub(inboxes[i], EV_MESSAGE, &ev);
        ck_assert_int_eq(ev.offset, 1);
        ck_assert_ptr_nonnull(ev.data);
        ev_free(&ev);
    }
    no_more_pubs();

    /* A channel whose meta expired but whose history survived restarts
     * cleanly: the stale history is dropped, offsets begin at 1 again under
     * a new epoch. */
    freeReplyObject(redisCommand(c, "DEL " PREFIX ":meta:chat.room1"));
    ck_assert_int_eq(api_status("POST", "/api/v1/channels/chat.room1/messages",
                                "{\"data\":3}", NULL), 200);
    next_pub("chat.room1", EV_MESSAGE, &ev);
    ck_assert_int_eq(ev.offset, 1);
    ev_free(&ev);
    t = redisCommand(c, "XLEN " PREFIX ":hist:chat.room1");
    ck_assert_int_eq(t->integer, 1);
    freeReplyObject(t);
    redisFree(c);
    (void)err;
}
END_TEST

START_TEST(test_bad_input_changes_nothing)
{
    static const struct {
        const char *method, *path, *body, *headers;
        int status;
    } cases[] = {
        { "POST", "/api/v1/flags", "{\"key\":", NULL, 400 },
        { "POST", "/api/v1/flags", "", NULL, 400 },
        { "POST", "/api/v1/flags", "[1,2]", NULL, 400 },
        { "POST", "/api/v1/flags", "{\"key\":\"a\"} trailing", NULL, 400 },
        { "POST", "/api/v1/flags", "{\"key\":42}", NULL, 400 },
        { "POST", "/api/v1/flags", "{\"key\":\"a\",\"enabled\":\"yes\"}", NULL, 400 },
        { "POST", "/api/v1/flags", "{\"key\":\"a\",\"colour\":1}", NULL, 400 },
        { "POST", "/api/v1/flags", "{\"key\":\"a\",\"version\":3}", NULL, 400 },
        { "POST", "/api/v1/flags", "{\"key\":\"bad key!\"}", NULL, 400 },
        { "POST", "/api/v1/flags", "{\"description\":\"no key\"}", NULL, 400 },
        { "POST", "/api/v1/flags", "{\"key\":\"a\",\"key\":\"b\"}", NULL, 400 },
        { "POST", "/api/v1/flags", "{\"key\":\"a\",\"segments\":[{\"rolloutPercent\":101}]}",
          NULL, 400 },
        { "POST", "/api/v1/flags", "{\"key\":\"a\",\"segments\":[{\"constraints\":"
          "[{\"property\":\"p\",\"operator\":\"LIKE\",\"value\":\"v\"}]}]}", NULL, 400 },
        { "POST", "/api/v1/flags", "{\"key\":\"a\",\"variants\":[{\"key\":\"v\"},"
          "{\"key\":\"v\"}]}", NULL, 400 },
        { "POST", "/api/v1/flags", "{\"key\":\"a\",\"variants\":[{\"key\":\"v\","
          "\"attachment\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}]}",
          NULL, 400 },
        { "POST", "/api/v1/flags", "{\"key\":\"a\",\"tags\":[\"x\",7]}", NULL, 400 },
        { "POST", "/api/v1/flags", "{\"key\":\"exists\"}", NULL, 409 },
        { "PUT", "/api/v1/flags/missing", "{\"description\":\"x\"}", NULL, 404 },
        { "PUT", "/api/v1/flags/missing/enabled", "{\"enabled\":true}", NULL, 404 },
        { "DELETE", "/api/v1/flags/missing", NULL, NULL, 404 },
        { "PUT", "/api/v1/flags/exists", "{\"key\":\"other\"}", NULL, 400 },
        { "PUT", "/api/v1/flags/exists", "{\"enabled\":1}", NULL, 400 },
        { "PUT", "/api/v1/flags/exists", "{}", NULL, 400 },
        { "PUT", "/api/v1/flags/exists", "{\"key\":\"exists\"}", NULL, 400 },
        { "PUT", "/api/v1/flags/exists/enabled", "{\"enabled\":\"true\"}", NULL, 400 },
        { "PUT", "/api/v1/flags/exists/enabled", "{\"enabled\":true,\"x\":1}", NULL, 400 },
        { "PUT", "/api/v1/flags/exists/segments", "{\"variants\":[]}", NULL, 400 },
        { "PUT", "/api/v1/flags/exists/variants", "{\"variants\":{}}", NULL, 400 },
        { "PUT", "/api/v1/flags/exists/enabled", "{\"enabled\":true}", "If-Match: 7\r\n", 412 },
        { "DELETE", "/api/v1/flags/exists", NULL, "If-Match: 2\r\n", 412 },
        { "PUT", "/api/v1/flags/exists/enabled", "{\"enabled\":true}", "If-Match: x\r\n", 400 },
        { "PUT", "/api/v1/flags/bad%20key", "{\"enabled\":true}", NULL, 400 },
        { "PUT", "/api/v1/flags/exists/enabled", "{\"enabled\":true}",
          "Authorization: Bearer wrong\r\n", 401 },
        { "POST", "/api/v1/channels/flags/messages", "{\"data\":1}", NULL, 400 },
        { "POST", "/api/v1/channels/bad%20name/messages", "{\"data\":1}", NULL, 400 },
        { "POST", "/api/v1/channels/ok/messages", "{\"dat\":1}", NULL, 400 },
        { "POST", "/api/v1/channels/ok/messages", "{}", NULL, 400 },
        { "POST", "/api/v1/channels/ok/messages", "{\"data\":123456789012345678901234567890}",
          NULL, 400 },
        { "POST", "/api/v1/channels/ok/messages", "{\"data\":1e999}", NULL, 400 },
        { "POST", "/api/v1/messages", "{\"data\":1}", NULL, 400 },
        { "POST", "/api/v1/messages", "{\"users\":[],\"roles\":[],\"data\":1}", NULL, 400 },
        { "POST", "/api/v1/messages", "{\"users\":[\"ok\",\"bad user\"],\"data\":1}", NULL, 400 },
        { "POST", "/api/v1/messages", "{\"users\":\"42\",\"data\":1}", NULL, 400 },
        { "PATCH", "/api/v1/flags/exists", "{}", NULL, 405 },
        { "GET", "/api/v1/nothing", NULL, NULL, 404 },
    };
    char *before, *after;
    create_flag("exists");
    before = h_redis_dump(fx.redis.port);
    ck_assert_ptr_nonnull(before);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int s;
        if (cases[i].headers && strncmp(cases[i].headers, "Authorization", 13) == 0) {
            h_resp_t r;
            ck_assert_int_eq(h_http(fx.port, cases[i].method, cases[i].path, cases[i].headers,
                                    cases[i].body, strlen(cases[i].body), &r), 0);
            s = r.status;
            h_resp_free(&r);
        } else {
            s = api_status(cases[i].method, cases[i].path, cases[i].body, cases[i].headers);
        }
        ck_assert_msg(s == cases[i].status, "case %zu: %s %s %s: got %d, want %d", i,
                      cases[i].method, cases[i].path, cases[i].body ? cases[i].body : "", s,
                      cases[i].status);
    }
    /* Deep nesting, past the parser's own limit too. */
    {
        size_t n = 5000;
        char *deep = malloc(2 * n + 32);
        size_t o = (size_t)sprintf(deep, "{\"data\":");
        for (size_t i = 0; i < n; i++) deep[o++] = '[';
        for (size_t i = 0; i < n; i++) deep[o++] = ']';
        deep[o++] = '}';
        deep[o] = '\0';
        ck_assert_int_eq(api_status("POST", "/api/v1/channels/ok/messages", deep, NULL), 400);
        free(deep);
    }
    /* "data" may nest EV_MAX_DATA_DEPTH containers (test_messages), not one more. */
    {
        char body[128];
        size_t o = (size_t)sprintf(body, "{\"data\":");
        for (int i = 0; i <= EV_MAX_DATA_DEPTH; i++) body[o++] = '[';
        for (int i = 0; i <= EV_MAX_DATA_DEPTH; i++) body[o++] = ']';
        strcpy(body + o, "}");
        ck_assert_int_eq(api_status("POST", "/api/v1/channels/ok/messages", body, NULL), 400);
    }
    /* No token at all. */
    {
        h_resp_t r;
        ck_assert_int_eq(h_http(fx.port, "GET", "/api/v1/flags", NULL, NULL, 0, &r), 0);
        ck_assert_int_eq(r.status, 401);
        ck_assert_ptr_nonnull(strstr(r.body, "\"code\":\"unauthorized\""));
        h_resp_free(&r);
    }
    /* Over FLAGCAST_MAX_BODY (65536 here). */
    {
        size_t n = 70000;
        char *big = malloc(n + 32);
        size_t o = (size_t)sprintf(big, "{\"data\":\"");
        memset(big + o, 'x', n);
        o += n;
        strcpy(big + o, "\"}");
        h_resp_t r;
        api("POST", "/api/v1/channels/ok/messages", big, NULL, &r);
        ck_assert_int_eq(r.status, 413);
        h_resp_free(&r);
        free(big);
    }
    after = h_redis_dump(fx.redis.port);
    ck_assert_ptr_nonnull(after);
    ck_assert_str_eq(before, after);
    free(before);
    free(after);
    no_more_pubs();
    /* The publisher is still healthy after all that. */
    ck_assert_int_eq(api_status("PUT", "/api/v1/flags/exists/enabled", "{\"enabled\":true}",
                                "If-Match: 1\r\n"), 200);
}
END_TEST

typedef struct {
    const char *headers;
    int status;
} race_t;

static void *race_put(void *arg)
{
    race_t *a = arg;
    h_resp_t r;
    char hdr[256];
    snprintf(hdr, sizeof(hdr), "%s%s", AUTH, a->headers ? a->headers : "");
    if (h_http(fx.port, "PUT", "/api/v1/flags/race", hdr, "{\"description\":\"x\"}", 19, &r) == 0) {
        a->status = r.status;
        h_resp_free(&r);
    }
    return NULL;
}

START_TEST(test_concurrent_if_match)
{
    ev_t ev;
    flag_t f;
    create_flag("race");
    for (int round = 1; round <= 20; round++) {
        char im[64];
        pthread_t t[2];
        race_t a[2];
        snprintf(im, sizeof(im), "If-Match: %d\r\n", round);
        for (int i = 0; i < 2; i++) {
            a[i].headers = im;
            a[i].status = 0;
            pthread_create(&t[i], NULL, race_put, &a[i]);
        }
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        ck_assert_msg((a[0].status == 200 && a[1].status == 412) ||
                      (a[0].status == 412 && a[1].status == 200),
                      "round %d: statuses %d and %d", round, a[0].status, a[1].status);
        next_pub("flags", EV_FLAG_UPDATED, &ev);
        ck_assert_int_eq(ev.flag->version, round + 1);
        ev_free(&ev);
    }
    no_more_pubs();
    /* Without If-Match both concurrent updates apply, one after the other. */
    pthread_t t[2];
    race_t a[2] = { { NULL, 0 }, { NULL, 0 } };
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, race_put, &a[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(a[0].status, 200);
    ck_assert_int_eq(a[1].status, 200);
    for (int i = 0; i < 2; i++) {
        next_pub("flags", EV_FLAG_UPDATED, &ev);
        ev_free(&ev);
    }
    ck_assert_int_eq(stored_flag("race", &f), 0);
    ck_assert_int_eq(f.version, 23);
    flag_free(&f);
}
END_TEST

START_TEST(test_redis_down_and_back)
{
    h_resp_t r;
    ev_t ev;
    int port = fx.redis.port;

    create_flag("before");
    h_sub_free(fx.sub);
    fx.sub = NULL;
    ck_assert_int_eq(h_redis_stop(&fx.redis), 0);
    ck_assert_int_eq(h_wait_status(fx.port, "/readyz", 503, 3000), 0);
    ck_assert_int_eq(api("POST", "/api/v1/flags", "{\"key\":\"during\"}", NULL, &r), 503);
    ck_assert_ptr_nonnull(strstr(r.body, "\"code\":\"redis_unavailable\""));
    h_resp_free(&r);
    ck_assert_int_eq(api_status("POST", "/api/v1/channels/c/messages", "{\"data\":1}", NULL), 503);
    ck_assert_int_eq(api_status("GET", "/api/v1/flags", NULL, NULL), 503);
    /* /healthz stays up: the process is alive. */
    ck_assert_int_eq(h_wait_status(fx.port, "/healthz", 200, 1000), 0);

    ck_assert_int_eq(h_redis_start(&fx.redis, port), 0); /* empty: no data, no script */
    fx.sub = h_sub_new(fx.redis.port, PREFIX ":ch:*");
    ck_assert_ptr_nonnull(fx.sub);
    ck_assert_int_eq(h_wait_status(fx.port, "/readyz", 200, 8000), 0);
    create_flag("after");

    /* The script cache flushed behind our back: NOSCRIPT → EVAL, reload. */
    redisContext *c = h_redis_connect(fx.redis.port);
    freeReplyObject(redisCommand(c, "SCRIPT FLUSH"));
    redisFree(c);
    ck_assert_int_eq(api_status("PUT", "/api/v1/flags/after/enabled", "{\"enabled\":true}",
                                NULL), 200);
    next_pub("flags", EV_FLAG_TOGGLED, &ev);
    ev_free(&ev);
    ck_assert_int_eq(api_status("PUT", "/api/v1/flags/after/enabled", "{\"enabled\":false}",
                                NULL), 200);
    next_pub("flags", EV_FLAG_TOGGLED, &ev);
    ev_free(&ev);
    ck_assert_int_eq(api("GET", "/metrics", NULL, NULL, &r), 200);
    ck_assert_ptr_nonnull(strstr(r.body, "flagcast_publisher_script_reloads_total 1"));
    ck_assert_ptr_nonnull(strstr(r.body, "flagcast_publisher_redis_reconnects 1"));
    ck_assert_ptr_nonnull(strstr(r.body, "flagcast_publisher_redis_connected 1"));
    h_resp_free(&r);
}
END_TEST

START_TEST(test_no_tokens_refuses_everything)
{
    h_resp_t r;
    h_stop(fx.pid, SIGTERM, 3000);
    fx.pid = h_daemon_start("publisher", fx.port, fx.redis.url, publisher_env(""),
                            "publisher-notokens.log", "/readyz", 5000);
    ck_assert_int_gt(fx.pid, 0);
    ck_assert_int_eq(api("GET", "/api/v1/flags", NULL, NULL, &r), 401);
    ck_assert_ptr_nonnull(strstr(r.body, "FLAGCAST_ADMIN_TOKENS"));
    h_resp_free(&r);
    ck_assert_int_eq(api_status("POST", "/api/v1/flags", "{\"key\":\"a\"}", NULL), 401);
    ck_assert_int_eq(h_wait_status(fx.port, "/metrics", 200, 1000), 0);
    /* The log says why, and never contains a token. */
    char path[512], buf[8192];
    snprintf(path, sizeof(path), "%s/publisher-notokens.log", h_tmpdir());
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    ck_assert_ptr_nonnull(strstr(buf, "no admin credentials configured"));
    snprintf(path, sizeof(path), "%s/publisher.log", h_tmpdir());
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    ck_assert_ptr_null(strstr(buf, TOKEN));
    ck_assert_ptr_null(strstr(buf, "other-token"));
}
END_TEST

START_TEST(test_sigterm_exits_zero)
{
    create_flag("x");
    int st = h_stop(fx.pid, SIGTERM, 5000);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 0);
}
END_TEST

START_TEST(test_sigterm_finishes_inflight)
{
    h_resp_t r;
    ev_t ev;
    create_flag("race");
    /* Hold writes in Redis so the update stays in flight. */
    redisContext *c = h_redis_connect(fx.redis.port);
    redisReply *pr = redisCommand(c, "CLIENT PAUSE 1000 WRITE");
    ck_assert_int_eq(pr->type, REDIS_REPLY_STATUS);
    freeReplyObject(pr);
    redisFree(c);
    pthread_t t;
    race_t a = { NULL, 0 };
    pthread_create(&t, NULL, race_put, &a);
    long long deadline = h_now_ms() + 3000;
    int seen = 0;
    while (!seen && h_now_ms() < deadline) {
        ck_assert_int_eq(h_http(fx.port, "GET", "/metrics", NULL, NULL, 0, &r), 0);
        seen = strstr(r.body, "flagcast_publisher_inflight_requests 1\n") != NULL;
        h_resp_free(&r);
    }
    ck_assert_msg(seen, "the update never became in-flight");
    kill(fx.pid, SIGTERM);
    /* It stops accepting ... */
    deadline = h_now_ms() + 3000;
    int refused = 0;
    while (!refused && h_now_ms() < deadline) {
        if (h_http(fx.port, "GET", "/healthz", NULL, NULL, 0, &r) < 0)
            refused = 1;
        else
            h_resp_free(&r);
    }
    ck_assert_msg(refused, "still accepting after SIGTERM");
    /* ... but the request in flight completes, then the process exits 0. */
    pthread_join(t, NULL);
    ck_assert_int_eq(a.status, 200);
    next_pub("flags", EV_FLAG_UPDATED, &ev);
    ck_assert_int_eq(ev.flag->version, 2);
    ev_free(&ev);
    int st = h_stop(fx.pid, SIGTERM, 5000);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 0);
}
END_TEST

START_TEST(test_redis_password_and_db)
{
    h_redis_t secured;
    char url[256];
    h_resp_t r;
    int port = h_free_port();
    ck_assert_int_eq(h_redis_start_auth(&secured, 0, "pw-123"), 0);
    snprintf(url, sizeof(url), "%s/3", secured.url);
    const char *env[] = { "FLAGCAST_ADMIN_TOKENS=ops:" TOKEN, NULL };
    pid_t p = h_daemon_start("publisher", port, url, env, "publisher-auth.log", "/readyz", 5000);
    ck_assert_int_gt(p, 0);
    ck_assert_int_eq(h_http(port, "POST", "/api/v1/flags", AUTH, "{\"key\":\"in-db3\"}", 16, &r), 0);
    ck_assert_int_eq(r.status, 201);
    h_resp_free(&r);
    redisContext *c = h_redis_connect_auth(secured.port, "pw-123");
    ck_assert_ptr_nonnull(c);
    freeReplyObject(redisCommand(c, "SELECT 3"));
    redisReply *x = redisCommand(c, "HEXISTS flagcast:flags in-db3");
    ck_assert_int_eq(x->integer, 1);
    freeReplyObject(x);
    redisFree(c);
    h_stop(p, SIGTERM, 3000);

    /* A wrong password: alive, never ready, and the log says why. */
    snprintf(url, sizeof(url), "redis://:wrong@127.0.0.1:%d", secured.port);
    p = h_daemon_start("publisher", port, url, env, "publisher-badpw.log", "/healthz", 5000);
    ck_assert_int_gt(p, 0);
    ck_assert_int_eq(h_wait_status(port, "/readyz", 503, 1000), 0);
    ck_assert_int_eq(h_http(port, "GET", "/api/v1/flags", AUTH, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 503);
    h_resp_free(&r);
    char path[512], buf[8192];
    snprintf(path, sizeof(path), "%s/publisher-badpw.log", h_tmpdir());
    long long deadline = h_now_ms() + 3000;
    int found = 0;
    while (!found && h_now_ms() < deadline) {
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
        if (f)
            fclose(f);
        buf[n] = '\0';
        found = strstr(buf, "redis handshake failed") != NULL;
    }
    ck_assert_msg(found, "no handshake error in the log");
    ck_assert_ptr_null(strstr(buf, "wrong"));
}
END_TEST

START_TEST(test_readonly_replica_is_503)
{
    h_resp_t r;
    create_flag("f");
    char *before = h_redis_dump(fx.redis.port);
    redisContext *c = h_redis_connect(fx.redis.port);
    freeReplyObject(redisCommand(c, "REPLICAOF 127.0.0.1 1")); /* a primary that never answers */
    ck_assert_int_eq(api("POST", "/api/v1/flags", "{\"key\":\"g\"}", NULL, &r), 503);
    ck_assert_ptr_nonnull(strstr(r.body, "redis_unavailable"));
    h_resp_free(&r);
    ck_assert_int_eq(h_wait_status(fx.port, "/readyz", 200, 5000), 0);
    ck_assert_int_eq(api_status("PUT", "/api/v1/flags/f/enabled", "{\"enabled\":true}", NULL),
                     503);
    char *after = h_redis_dump(fx.redis.port);
    ck_assert_str_eq(before, after);
    free(before);
    free(after);
    freeReplyObject(redisCommand(c, "REPLICAOF NO ONE"));
    redisFree(c);
    ck_assert_int_eq(h_wait_status(fx.port, "/readyz", 200, 5000), 0);
    ck_assert_int_eq(api_status("PUT", "/api/v1/flags/f/enabled", "{\"enabled\":true}", NULL),
                     200);
    ev_t ev;
    next_pub("flags", EV_FLAG_TOGGLED, &ev);
    ev_free(&ev);
}
END_TEST

START_TEST(test_help_and_bad_options)
{
    char *out = NULL, *err = NULL;
    const char *help[] = { h_bin("flagcast-publisher"), "--help", NULL };
    ck_assert_int_eq(h_run(help, NULL, &out, &err, 5000), 0);
    const char *names[] = { "FLAGCAST_LISTEN", "FLAGCAST_REDIS_URL", "FLAGCAST_REDIS_PREFIX",
                            "FLAGCAST_ADMIN_TOKENS", "FLAGCAST_HISTORY_SIZE",
                            "FLAGCAST_HISTORY_TTL", "FLAGCAST_MAX_BODY", "FLAGCAST_LOG_LEVEL",
                            "--listen", "--history-ttl", "127.0.0.1:8081" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        ck_assert_msg(strstr(out, names[i]) != NULL, "--help lacks %s", names[i]);
    free(out);
    free(err);
    const char *ver[] = { h_bin("flagcast-publisher"), "--version", NULL };
    ck_assert_int_eq(h_run(ver, NULL, &out, &err, 5000), 0);
    ck_assert_ptr_nonnull(strstr(out, "flagcast-publisher"));
    free(out);
    free(err);
    const char *bad[] = { h_bin("flagcast-publisher"), "--no-such-option", NULL };
    ck_assert_int_eq(h_run(bad, NULL, &out, &err, 5000), 2);
    ck_assert_ptr_nonnull(strstr(err, "no-such-option"));
    free(out);
    free(err);
    const char *env[] = { "FLAGCAST_HISTORY_SIZE=lots", NULL };
    const char *plain[] = { h_bin("flagcast-publisher"), NULL };
    ck_assert_int_eq(h_run(plain, env, &out, &err, 5000), 2);
    ck_assert_ptr_nonnull(strstr(err, "FLAGCAST_HISTORY_SIZE"));
    free(out);
    free(err);
    const char *badurl[] = { h_bin("flagcast-publisher"), "--redis-url=http://x", NULL };
    ck_assert_int_eq(h_run(badurl, NULL, &out, &err, 5000), 2);
    free(out);
    free(err);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("publisher");
    TCase *tc = tcase_create("api");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_create_get_list);
    tcase_add_test(tc, test_every_mutation_publishes_once);
    tcase_add_test(tc, test_messages);
    tcase_add_test(tc, test_bad_input_changes_nothing);
    tcase_add_test(tc, test_concurrent_if_match);
    tcase_add_test(tc, test_redis_down_and_back);
    tcase_add_test(tc, test_no_tokens_refuses_everything);
    tcase_add_test(tc, test_sigterm_exits_zero);
    tcase_add_test(tc, test_sigterm_finishes_inflight);
    tcase_add_test(tc, test_redis_password_and_db);
    tcase_add_test(tc, test_readonly_replica_is_503);
    suite_add_tcase(s, tc);
    TCase *tc2 = tcase_create("cli-options");
    tcase_add_test(tc2, test_help_and_bad_options);
    suite_add_tcase(s, tc2);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
