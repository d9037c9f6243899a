/*
 * test_publisher_ident — identity and targeted delivery on the publisher
 * (issue 4), against a real redis-server and the real publisher binary:
 *
 *   - admin auth: static admin tokens, admin API keys and HS256 JWTs with
 *     role "admin" are accepted and become the event's actor; a missing,
 *     malformed, badly signed, expired or alg-none token is 401, a valid
 *     non-admin identity 403, each with a JSON error; no token ever shows
 *     up in the log or in /metrics;
 *   - "to" on flag mutations: the event goes to the user/role inboxes only
 *     (nothing on "flags") while P:flags is written in the same call; bad
 *     "to" input changes nothing;
 *   - per-user A/B: over 10,000 users a 70/30 split lands within 68-72 %,
 *     every user's variant is the documented hash's choice (publisher/ab.c
 *     is compiled in here), re-sending gives every user the same variant,
 *     and the event carries {"variant": name, "data": payload};
 *   - the CLI's send --key/--variant/--weight round trip.
 *
 * JWTs are made here with libjwt (jwt_new, jwt_add_grant, jwt_set_alg,
 * jwt_encode_str).
 */
#include "tests/integration/harness.h"
#include "proto/event.h"
#include "proto/flag.h"
#include "publisher/ab.c"

#include <check.h>
#include <jansson.h>
#include <jwt.h>
#include <msgpack.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#define PREFIX "fcid"
#define TOKEN "static-admin-tok-1"
#define KEY_ADMIN "apikey-admin-ffff0001"
#define KEY_USER "apikey-user-ffff0002"
#define SECRET "jwt-secret-0123456789abcdef-0123456789"
#define OTHER_SECRET "another-secret-0123456789abcdef-987654"

static h_pubfix_t fx; /* redis, the publisher, a subscriber to PREFIX:ch:* */

static void setup(void)
{
    const char *env[] = { "FLAGCAST_REDIS_PREFIX=" PREFIX, "FLAGCAST_ADMIN_TOKENS=ops:" TOKEN,
                          "FLAGCAST_API_KEYS=" KEY_ADMIN "=alice:admin+ops," KEY_USER "=bob:beta",
                          "FLAGCAST_JWT_SECRET=" SECRET, "FLAGCAST_LOG_LEVEL=debug",
                          "FLAGCAST_HISTORY_TTL=3600", NULL };
    ck_assert_int_eq(h_pubfix_start(&fx, env, PREFIX ":ch:*"), 0);
}

static void teardown(void)
{
    h_pubfix_stop(&fx);
}

/* ==== helpers ==== */

/* An HS256 JWT (caller frees). exp 0: none. roles: JSON array text or NULL. */
static char *make_jwt(const char *secret, const char *sub_, const char *roles, long exp)
{
    jwt_t *j = NULL;
    ck_assert_int_eq(jwt_new(&j), 0);
    ck_assert_int_eq(jwt_add_grant(j, "sub", sub_), 0);
    if (exp)
        ck_assert_int_eq(jwt_add_grant_int(j, "exp", exp), 0);
    if (roles) {
        char json[256];
        snprintf(json, sizeof(json), "{\"roles\":%s}", roles);
        ck_assert_int_eq(jwt_add_grants_json(j, json), 0);
    }
    if (secret)
        ck_assert_int_eq(jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)secret,
                                     (int)strlen(secret)), 0);
    else
        ck_assert_int_eq(jwt_set_alg(j, JWT_ALG_NONE, NULL, 0), 0);
    char *s = jwt_encode_str(j);
    ck_assert_ptr_nonnull(s);
    jwt_free(j);
    return s;
}

/* A request with "Authorization: Bearer tok" (tok NULL: no header). */
static int call(const char *tok, const char *method, const char *path, const char *body,
                h_resp_t *r)
{
    char hdr[9000] = "";
    if (tok)
        snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", tok);
    ck_assert_int_eq(h_http(fx.port, method, path, hdr, body, body ? strlen(body) : 0, r), 0);
    return r->status;
}

/* Asserts status and, for errors, a JSON error with the given code. */
static void expect(const char *tok, const char *method, const char *path, const char *body,
                   int status, const char *code)
{
    h_resp_t r;
    int s = call(tok, method, path, body, &r);
    ck_assert_msg(s == status, "%s %s: status %d, want %d: %s", method, path, s, status, r.body);
    if (code) {
        char want[128];
        snprintf(want, sizeof(want), "\"code\":\"%s\"", code);
        ck_assert_msg(strstr(r.body, want) != NULL, "%s %s: no %s in %s", method, path, want,
                      r.body);
        json_error_t e;
        json_t *j = json_loads(r.body, 0, &e);
        ck_assert_msg(j && json_is_string(json_object_get(json_object_get(j, "error"),
                                                          "message")),
                      "error body is not JSON {error:{code,message}}: %s", r.body);
        json_decref(j);
    }
    h_resp_free(&r);
}

/* Next publication: on PREFIX:ch:<channel>, of the given type; caller frees. */
static void next_pub(const char *channel, ev_type_t type, ev_t *ev)
{
    char *ch = NULL, *msg = NULL, err[256], want[256];
    size_t len = 0;
    ck_assert_msg(h_sub_next(fx.sub, 3000, &ch, &msg, &len) == 1, "no publication for %s", channel);
    snprintf(want, sizeof(want), PREFIX ":ch:%s", channel);
    ck_assert_str_eq(ch, want);
    ev_init(ev);
    ck_assert_msg(ev_decode(msg, len, ev, err, sizeof(err)) == 0, "undecodable: %s", err);
    ck_assert_str_eq(ev->channel, channel);
    ck_assert_int_eq(ev->type, type);
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

static char *read_file(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", h_tmpdir(), name);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t cap = 1 << 20, n;
    char *buf = malloc(cap);
    n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static long long redis_int(const char *cmd)
{
    redisContext *c = h_redis_connect(fx.redis.port);
    redisReply *r = redisCommand(c, cmd);
    ck_assert_ptr_nonnull(r);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    redisFree(c);
    return v;
}

/* Stops the publisher with SIGTERM: it must exit 0, and a sanitizer build
 * (make SAN=1) must have reported nothing, leaks included, in its log. */
static void stop_clean(void)
{
    int st = h_stop(fx.pid, SIGTERM, 5000);
    ck_assert_msg(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "publisher did not exit cleanly (status %d)", st);
    char *log = read_file("publisher.log");
    ck_assert_msg(strstr(log, "Sanitizer") == NULL && strstr(log, "runtime error") == NULL,
                  "sanitizer report in the publisher log:\n%s", log);
    free(log);
}

/* ==== admin auth ==== */

START_TEST(test_admin_auth)
{
    long now = (long)time(NULL);
    char *jwt_admin = make_jwt(SECRET, "dave", "[\"admin\"]", now + 600);
    char *jwt_user = make_jwt(SECRET, "carol", "[\"beta\"]", now + 600);
    char *jwt_noroles = make_jwt(SECRET, "erin", NULL, now + 600);
    char *jwt_badsig = make_jwt(OTHER_SECRET, "dave", "[\"admin\"]", now + 600);
    char *jwt_expired = make_jwt(SECRET, "dave", "[\"admin\"]", now - 3600);
    char *jwt_none = make_jwt(NULL, "dave", "[\"admin\"]", now + 600);
    ev_t ev;

    /* Refused: nothing reaches Redis. */
    expect(NULL, "GET", "/api/v1/flags", NULL, 401, "unauthorized");
    expect(NULL, "POST", "/api/v1/flags", "{\"key\":\"a\"}", 401, "unauthorized");
    expect("", "GET", "/api/v1/flags", NULL, 401, "unauthorized");
    expect("not-a-token", "GET", "/api/v1/flags", NULL, 401, "unauthorized");
    expect(jwt_badsig, "POST", "/api/v1/flags", "{\"key\":\"a\"}", 401, "unauthorized");
    expect(jwt_expired, "POST", "/api/v1/flags", "{\"key\":\"a\"}", 401, "unauthorized");
    expect(jwt_none, "POST", "/api/v1/flags", "{\"key\":\"a\"}", 401, "unauthorized");
    expect(jwt_user, "POST", "/api/v1/flags", "{\"key\":\"a\"}", 403, "forbidden");
    expect(jwt_noroles, "GET", "/api/v1/flags", NULL, 403, "forbidden");
    expect(KEY_USER, "POST", "/api/v1/messages", "{\"users\":[\"x\"],\"data\":1}", 403,
           "forbidden");
    {
        h_resp_t r;
        call(jwt_expired, "GET", "/api/v1/flags", NULL, &r);
        ck_assert_ptr_nonnull(strstr(r.body, "expired"));
        h_resp_free(&r);
        call(jwt_badsig, "GET", "/api/v1/flags", NULL, &r);
        ck_assert_ptr_nonnull(strstr(r.body, "signature"));
        h_resp_free(&r);
        call("Basic abc", "GET", "/api/v1/flags", NULL, &r); /* "Bearer Basic abc" */
        ck_assert_int_eq(r.status, 401);
        h_resp_free(&r);
    }
    no_more_pubs();
    ck_assert_int_eq(redis_int("EXISTS " PREFIX ":flags"), 0);

    /* Accepted, each identity the actor of its event. */
    expect(jwt_admin, "POST", "/api/v1/flags", "{\"key\":\"by-jwt\"}", 201, NULL);
    next_pub("flags", EV_FLAG_CREATED, &ev);
    ck_assert_str_eq(ev.actor, "dave");
    ev_free(&ev);
    expect(KEY_ADMIN, "PUT", "/api/v1/flags/by-jwt/enabled", "{\"enabled\":true}", 200, NULL);
    next_pub("flags", EV_FLAG_TOGGLED, &ev);
    ck_assert_str_eq(ev.actor, "alice");
    ev_free(&ev);
    expect(TOKEN, "POST", "/api/v1/channels/news/messages", "{\"data\":\"hi\"}", 200, NULL);
    next_pub("news", EV_MESSAGE, &ev);
    ck_assert_str_eq(ev.actor, "ops");
    ev_free(&ev);
    expect(jwt_admin, "GET", "/api/v1/flags", NULL, 200, NULL);
    no_more_pubs();

    /* No token anywhere in the log or the metrics. */
    h_resp_t m;
    ck_assert_int_eq(h_http(fx.port, "GET", "/metrics", NULL, NULL, 0, &m), 0);
    ck_assert_int_eq(m.status, 200);
    char *log = read_file("publisher.log");
    ck_assert_ptr_nonnull(strstr(log, "actor=dave"));   /* the log does name the caller */
    const char *secrets[] = { TOKEN, KEY_ADMIN, KEY_USER, SECRET, jwt_admin, jwt_user,
                              jwt_badsig, jwt_expired, jwt_none, jwt_noroles };
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
        /* A JWT's signature part is what must never leak; check it alone too. */
        const char *sig = strrchr(secrets[i], '.');
        ck_assert_msg(strstr(log, secrets[i]) == NULL, "secret %zu in the log", i);
        ck_assert_msg(strstr(m.body, secrets[i]) == NULL, "secret %zu in /metrics", i);
        if (sig && strlen(sig) > 8)
            ck_assert_msg(strstr(log, sig) == NULL, "JWT signature %zu in the log", i);
    }
    free(log);
    h_resp_free(&m);
    free(jwt_admin);
    free(jwt_user);
    free(jwt_noroles);
    free(jwt_badsig);
    free(jwt_expired);
    free(jwt_none);
    stop_clean();
}
END_TEST

/* ==== flag mutations addressed with "to" ==== */

static void stored_enabled(const char *key, int want)
{
    char err[256];
    flag_t f;
    redisContext *c = h_redis_connect(fx.redis.port);
    redisReply *r = redisCommand(c, "HGET " PREFIX ":flags %s", key);
    if (want < 0) {
        ck_assert_int_eq(r->type, REDIS_REPLY_NIL);
    } else {
        ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
        ck_assert_msg(flag_decode(r->str, r->len, &f, err, sizeof(err)) == 0, "%s", err);
        ck_assert_int_eq(f.enabled, want);
        flag_free(&f);
    }
    freeReplyObject(r);
    redisFree(c);
}

START_TEST(test_flag_to_inboxes)
{
    h_resp_t r;
    ev_t ev;

    /* create, addressed: inboxes only, state written. */
    ck_assert_int_eq(call(TOKEN, "POST", "/api/v1/flags",
                          "{\"key\":\"preview\",\"to\":{\"users\":[\"u1\",\"u2\",\"u1\"],"
                          "\"roles\":[\"beta\"]}}", &r), 201);
    ck_assert_ptr_nonnull(strstr(r.body, "\"publications\":[{\"channel\":\"user:u1\""));
    ck_assert_ptr_null(strstr(r.body, "\"channel\":\"flags\""));
    h_resp_free(&r);
    const char *inboxes[] = { "user:u1", "user:u2", "role:beta" };
    for (int i = 0; i < 3; i++) {
        next_pub(inboxes[i], EV_FLAG_CREATED, &ev);
        ck_assert_str_eq(ev.flag->key, "preview");
        ck_assert_str_eq(ev.actor, "ops");
        ev_free(&ev);
    }
    no_more_pubs();
    stored_enabled("preview", 0);
    ck_assert_int_eq(redis_int("EXISTS " PREFIX ":meta:flags"), 0);
    ck_assert_int_eq(redis_int("EXISTS " PREFIX ":hist:flags"), 0);
    ck_assert_int_gt(redis_int("TTL " PREFIX ":hist:user:u1"), 0); /* inboxes expire */

    /* toggle, addressed: the same record, the next version. */
    expect(TOKEN, "PUT", "/api/v1/flags/preview/enabled",
           "{\"enabled\":true,\"to\":{\"users\":[\"u1\"]}}", 200, NULL);
    next_pub("user:u1", EV_FLAG_TOGGLED, &ev);
    ck_assert_int_eq(ev.flag->version, 2);
    ck_assert(ev.flag->enabled);
    ck_assert_int_eq(ev.offset, 2);
    ev_free(&ev);
    no_more_pubs();
    stored_enabled("preview", 1);

    /* the other mutations take "to" as well */
    expect(TOKEN, "PUT", "/api/v1/flags/preview",
           "{\"description\":\"d\",\"to\":{\"roles\":[\"qa\"]}}", 200, NULL);
    next_pub("role:qa", EV_FLAG_UPDATED, &ev);
    ev_free(&ev);
    expect(TOKEN, "PUT", "/api/v1/flags/preview/variants",
           "{\"variants\":[{\"key\":\"on\"}],\"to\":{\"users\":[\"u9\"]}}", 200, NULL);
    next_pub("user:u9", EV_VARIANT_UPDATED, &ev);
    ev_free(&ev);
    expect(TOKEN, "PUT", "/api/v1/flags/preview/segments",
           "{\"segments\":[{\"rolloutPercent\":5}],\"to\":{\"users\":[\"u9\"]}}", 200, NULL);
    next_pub("user:u9", EV_SEGMENT_UPDATED, &ev);
    ev_free(&ev);
    no_more_pubs();

    /* An ordinary change still goes to "flags". */
    expect(TOKEN, "PUT", "/api/v1/flags/preview/enabled", "{\"enabled\":false}", 200, NULL);
    next_pub("flags", EV_FLAG_TOGGLED, &ev);
    ck_assert_int_eq(ev.flag->version, 6);
    ev_free(&ev);
    no_more_pubs();

    /* Bad "to": 400, nothing changed anywhere. */
    char *before = h_redis_dump(fx.redis.port);
    expect(TOKEN, "PUT", "/api/v1/flags/preview/enabled",
           "{\"enabled\":true,\"to\":{\"users\":[]}}", 400, "invalid_field");
    expect(TOKEN, "PUT", "/api/v1/flags/preview/enabled",
           "{\"enabled\":true,\"to\":[\"u1\"]}", 400, "invalid_field");
    expect(TOKEN, "PUT", "/api/v1/flags/preview/enabled",
           "{\"enabled\":true,\"to\":{\"users\":[\"bad id\"]}}", 400, "invalid_field");
    expect(TOKEN, "PUT", "/api/v1/flags/preview/enabled",
           "{\"enabled\":true,\"to\":{\"groups\":[\"x\"]}}", 400, "invalid_field");
    expect(TOKEN, "PUT", "/api/v1/flags/preview/enabled",
           "{\"enabled\":true,\"to\":{\"users\":[7]}}", 400, "invalid_field");
    expect(TOKEN, "DELETE", "/api/v1/flags/preview?to.users=", NULL, 400, "invalid_field");
    expect(TOKEN, "DELETE", "/api/v1/flags/preview?to.users=a,,b", NULL, 400, "invalid_field");
    expect(TOKEN, "DELETE", "/api/v1/flags/preview?other=1", NULL, 400, "invalid_field");
    expect(TOKEN, "DELETE", "/api/v1/flags/preview", "{\"enabled\":true}", 400,
           "invalid_field");
    expect(TOKEN, "POST", "/api/v1/flags", "{\"key\":\"x2\",\"to\":{\"roles\":[\"a b\"]}}", 400,
           "invalid_field");
    char *after = h_redis_dump(fx.redis.port);
    ck_assert_str_eq(before, after);
    free(before);
    free(after);
    no_more_pubs();

    /* DELETE addressed by query (and by body): the record is gone. */
    expect(TOKEN, "DELETE", "/api/v1/flags/preview?to.users=u1,u2&to.roles=beta", NULL, 200,
           NULL);
    next_pub("user:u1", EV_FLAG_DELETED, &ev);
    ev_free(&ev);
    next_pub("user:u2", EV_FLAG_DELETED, &ev);
    ev_free(&ev);
    next_pub("role:beta", EV_FLAG_DELETED, &ev);
    ck_assert_str_eq(ev.flag->key, "preview");
    ev_free(&ev);
    no_more_pubs();
    stored_enabled("preview", -1);

    expect(TOKEN, "POST", "/api/v1/flags", "{\"key\":\"gone\"}", 201, NULL);
    next_pub("flags", EV_FLAG_CREATED, &ev);
    ev_free(&ev);
    expect(TOKEN, "DELETE", "/api/v1/flags/gone", "{\"to\":{\"users\":[\"u3\"]}}", 200, NULL);
    next_pub("user:u3", EV_FLAG_DELETED, &ev);
    ev_free(&ev);
    no_more_pubs();
    stored_enabled("gone", -1);
    stop_clean();
}
END_TEST

/* ==== per-user A/B ==== */

#define AB_USERS 10000
#define AB_BATCH 1000

/* Sends one A/B message (70/30) to users [from, from+AB_BATCH) and records
 * each user's variant from the reply (0: A, 1: B). */
static void ab_send(const char *key, int from, signed char *got)
{
    size_t cap = 32 * AB_BATCH + 512, n = 0;
    char *body = malloc(cap);
    n += (size_t)snprintf(body + n, cap - n, "{\"key\":\"%s\",\"users\":[", key);
    for (int i = from; i < from + AB_BATCH; i++)
        n += (size_t)snprintf(body + n, cap - n, "%s\"user-%d\"", i > from ? "," : "", i);
    snprintf(body + n, cap - n, "],\"variants\":{\"B\":{\"color\":\"blue\"},\"A\":\"red\"},"
                                "\"weights\":{\"A\":70,\"B\":30}}");
    h_resp_t r;
    ck_assert_int_eq(call(TOKEN, "POST", "/api/v1/messages", body, &r), 200);
    json_error_t e;
    json_t *j = json_loads(r.body, 0, &e), *p;
    ck_assert_ptr_nonnull(j);
    json_t *pubs = json_object_get(j, "publications");
    ck_assert_int_eq(json_array_size(pubs), AB_BATCH);
    size_t i;
    json_array_foreach(pubs, i, p) {
        const char *ch = json_string_value(json_object_get(p, "channel"));
        const char *v = json_string_value(json_object_get(p, "variant"));
        ck_assert_ptr_nonnull(ch);
        ck_assert_ptr_nonnull(v);
        int u = atoi(ch + strlen("user:user-"));
        ck_assert_int_ge(u, from);
        ck_assert_int_lt(u, from + AB_BATCH);
        ck_assert(strcmp(v, "A") == 0 || strcmp(v, "B") == 0);
        got[u] = v[0] == 'A' ? 0 : 1;
    }
    json_decref(j);
    h_resp_free(&r);
    free(body);
}

/* The data of the last message in user's inbox, unpacked. */
static void inbox_data(const char *user, char *variant, size_t vlen, char *payload, size_t plen)
{
    char err[256];
    ev_t ev;
    redisContext *c = h_redis_connect(fx.redis.port);
    redisReply *r = redisCommand(c, "XREVRANGE " PREFIX ":hist:user:%s + - COUNT 1", user);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_int_eq(r->elements, 1);
    redisReply *m = r->element[0]->element[1]->element[1];
    ev_init(&ev);
    ck_assert_msg(ev_decode(m->str, m->len, &ev, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(ev.type, EV_MESSAGE);
    ck_assert_str_eq(ev.actor, "ops");
    msgpack_unpacked u;
    size_t off = 0;
    msgpack_unpacked_init(&u);
    ck_assert_int_eq(msgpack_unpack_next(&u, ev.data, ev.data_len, &off), MSGPACK_UNPACK_SUCCESS);
    ck_assert_int_eq(u.data.type, MSGPACK_OBJECT_MAP);
    ck_assert_int_eq(u.data.via.map.size, 2);
    variant[0] = payload[0] = '\0';
    for (uint32_t i = 0; i < 2; i++) {
        msgpack_object_kv *kv = &u.data.via.map.ptr[i];
        ck_assert_int_eq(kv->key.type, MSGPACK_OBJECT_STR);
        if (kv->key.via.str.size == 7 && memcmp(kv->key.via.str.ptr, "variant", 7) == 0) {
            ck_assert_int_eq(kv->val.type, MSGPACK_OBJECT_STR);
            snprintf(variant, vlen, "%.*s", (int)kv->val.via.str.size, kv->val.via.str.ptr);
        } else {
            ck_assert_int_eq(kv->key.via.str.size, 4);
            ck_assert(memcmp(kv->key.via.str.ptr, "data", 4) == 0);
            msgpack_object_print_buffer(payload, plen, kv->val);
        }
    }
    msgpack_unpacked_destroy(&u);
    ev_free(&ev);
    freeReplyObject(r);
    redisFree(c);
}

START_TEST(test_ab_split)
{
    static signed char first[AB_USERS], again[AB_USERS];
    const uint64_t w[2] = { 70, 30 };   /* A, B in name order */
    int a = 0;

    h_sub_free(fx.sub);   /* 20,000 publications: read them from history instead */
    fx.sub = NULL;
    memset(first, -1, sizeof(first));
    memset(again, -1, sizeof(again));
    for (int from = 0; from < AB_USERS; from += AB_BATCH)
        ab_send("exp-42", from, first);
    for (int u = 0; u < AB_USERS; u++) {
        char id[32];
        ck_assert_int_ge(first[u], 0);
        a += first[u] == 0;
        /* the documented formula, from publisher/ab.c */
        snprintf(id, sizeof(id), "user-%d", u);
        ck_assert_int_eq((int)ab_pick("exp-42", 6, id, strlen(id), w, 2, 100), first[u]);
    }
    fprintf(stderr, "A/B 70/30 over %d users: A %d (%.2f%%), B %d\n", AB_USERS, a,
            100.0 * a / AB_USERS, AB_USERS - a);
    ck_assert_msg(a >= AB_USERS * 68 / 100 && a <= AB_USERS * 72 / 100,
                  "A got %d of %d users", a, AB_USERS);

    /* Same key again: every user gets the same variant. */
    for (int from = 0; from < AB_USERS; from += AB_BATCH)
        ab_send("exp-42", from, again);
    ck_assert(memcmp(first, again, sizeof(first)) == 0);

    /* A different key reshuffles (about half the users change). */
    int moved = 0;
    for (int from = 0; from < AB_USERS; from += AB_BATCH)
        ab_send("exp-43", from, again);
    for (int u = 0; u < AB_USERS; u++)
        moved += first[u] != again[u];
    ck_assert_msg(moved > AB_USERS / 5, "only %d users changed variant with a new key", moved);

    /* The event carries {"variant": name, "data": payload}. */
    char variant[16], payload[128];
    for (int u = 0; u < 20; u++) {
        char id[32];
        snprintf(id, sizeof(id), "user-%d", u);
        inbox_data(id, variant, sizeof(variant), payload, sizeof(payload));
        ck_assert_str_eq(variant, again[u] == 0 ? "A" : "B");
        /* msgpack-c prints maps as {k=>v} */
        ck_assert_str_eq(payload, again[u] == 0 ? "\"red\"" : "{\"color\"=>\"blue\"}");
    }
    /* Three sends, three entries in each inbox's history. */
    ck_assert_int_eq(redis_int("XLEN " PREFIX ":hist:user:user-9999"), 3);
    stop_clean();
}
END_TEST

START_TEST(test_ab_rules)
{
    ev_t ev;
    h_resp_t r;

    /* Equal weights when none are given; one variant is allowed. */
    ck_assert_int_eq(call(TOKEN, "POST", "/api/v1/messages",
                          "{\"key\":\"k\",\"users\":[\"a\"],\"variants\":{\"only\":[1,2]}}", &r),
                     200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"variant\":\"only\""));
    h_resp_free(&r);
    next_pub("user:a", EV_MESSAGE, &ev);
    ev_free(&ev);
    /* A weight of 0 is never chosen. */
    ck_assert_int_eq(call(TOKEN, "POST", "/api/v1/messages",
                          "{\"key\":\"k\",\"users\":[\"a\",\"b\",\"c\",\"d\",\"e\"],"
                          "\"variants\":{\"x\":1,\"y\":2},\"weights\":{\"x\":0,\"y\":5}}", &r),
                     200);
    ck_assert_ptr_null(strstr(r.body, "\"variant\":\"x\""));
    h_resp_free(&r);
    for (int i = 0; i < 5; i++) {
        next_pub(i == 0 ? "user:a" : i == 1 ? "user:b" : i == 2 ? "user:c" : i == 3 ? "user:d"
                                                                                    : "user:e",
                 EV_MESSAGE, &ev);
        ev_free(&ev);
    }
    no_more_pubs();

    char *before = h_redis_dump(fx.redis.port);
    const char *bad[] = {
        "{\"key\":\"k\",\"users\":[\"a\"],\"roles\":[\"r\"],\"variants\":{\"x\":1}}",
        "{\"key\":\"k\",\"roles\":[\"r\"],\"variants\":{\"x\":1}}",
        "{\"users\":[\"a\"],\"variants\":{\"x\":1}}",
        "{\"key\":\"\",\"users\":[\"a\"],\"variants\":{\"x\":1}}",
        "{\"key\":\"k\",\"users\":[\"a\"],\"variants\":{}}",
        "{\"key\":\"k\",\"users\":[\"a\"],\"variants\":[1]}",
        "{\"key\":\"k\",\"users\":[\"a\"],\"variants\":{\"x\":1},\"data\":1}",
        "{\"key\":\"k\",\"users\":[\"a\"],\"variants\":{\"x\":1},\"weights\":{\"x\":-1}}",
        "{\"key\":\"k\",\"users\":[\"a\"],\"variants\":{\"x\":1},\"weights\":{\"x\":1.5}}",
        "{\"key\":\"k\",\"users\":[\"a\"],\"variants\":{\"x\":1},\"weights\":{\"x\":0}}",
        "{\"key\":\"k\",\"users\":[\"a\"],\"variants\":{\"x\":1,\"y\":1},\"weights\":{\"x\":1}}",
        "{\"key\":\"k\",\"users\":[\"a\"],\"variants\":{\"x\":1},\"weights\":{\"x\":1,\"z\":1}}",
        "{\"key\":\"k\",\"users\":[\"a\"],\"variants\":{\"bad name\":1}}",
        "{\"key\":\"k\",\"users\":[\"a\"],\"data\":1}",
        "{\"weights\":{\"x\":1},\"users\":[\"a\"],\"data\":1}",
        "{\"key\":7,\"users\":[\"a\"],\"variants\":{\"x\":1}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect(TOKEN, "POST", "/api/v1/messages", bad[i], 400, "invalid_field");
    char *after = h_redis_dump(fx.redis.port);
    ck_assert_str_eq(before, after);
    free(before);
    free(after);
    no_more_pubs();
    stop_clean();
}
END_TEST

/* ==== CLI ==== */

static int cli(char **out, char **err, const char *const *args)
{
    static char env_url[64];
    const char *argv[32];
    size_t n = 0;
    snprintf(env_url, sizeof(env_url), "FLAGCAST_URL=http://127.0.0.1:%d", fx.port);
    const char *env[] = { env_url, "FLAGCAST_TOKEN=" KEY_ADMIN, NULL };
    argv[n++] = h_bin("flagcast");
    static char bin[512];
    snprintf(bin, sizeof(bin), "%s", argv[0]);
    argv[0] = bin;
    for (; *args && n < 31; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    return h_run(argv, env, out, err, 10000);
}

START_TEST(test_cli_ab)
{
    char *out = NULL, *err = NULL;
    ev_t ev;
    const uint64_t w[2] = { 1, 3 };   /* ctl, new */

    const char *send[] = { "--json", "send", "--key", "banner-7", "--user", "u1", "--user", "u2",
                           "--variant", "new={\"text\":\"Hello\"}", "--variant", "ctl=null",
                           "--weight", "new=3", "--weight", "ctl=1", NULL };
    ck_assert_msg(cli(&out, &err, send) == 0, "cli failed: %s", err);
    json_error_t e;
    json_t *j = json_loads(out, 0, &e), *p;
    ck_assert_ptr_nonnull(j);
    size_t i;
    json_array_foreach(json_object_get(j, "publications"), i, p) {
        const char *ch = json_string_value(json_object_get(p, "channel"));
        const char *v = json_string_value(json_object_get(p, "variant"));
        const char *u = ch + 5;
        size_t pick = ab_pick("banner-7", 8, u, strlen(u), w, 2, 4);
        ck_assert_str_eq(v, pick == 0 ? "ctl" : "new");
    }
    ck_assert_int_eq(json_array_size(json_object_get(j, "publications")), 2);
    json_decref(j);
    free(out);
    free(err);
    for (int k = 0; k < 2; k++) {
        next_pub(k == 0 ? "user:u1" : "user:u2", EV_MESSAGE, &ev);
        ck_assert_str_eq(ev.actor, "alice");
        ev_free(&ev);
    }
    no_more_pubs();

    /* Text output names the variant. */
    const char *send2[] = { "send", "--key", "banner-7", "--user", "u1", "--variant", "a=1",
                            NULL };
    ck_assert_int_eq(cli(&out, &err, send2), 0);
    ck_assert_ptr_nonnull(strstr(out, "variant a: published on user:u1"));
    free(out);
    free(err);
    next_pub("user:u1", EV_MESSAGE, &ev);
    ev_free(&ev);

    /* Usage errors: exit 2, nothing sent. */
    const char *bad[][12] = {
        { "send", "--user", "u1", "--variant", "a=1", NULL },                  /* no --key */
        { "send", "--key", "k", "--user", "u1", "--variant", "a=1", "{}", NULL },
        { "send", "--key", "k", "--role", "r", "--variant", "a=1", NULL },
        { "send", "--key", "k", "--user", "u1", "--variant", "a=nope", NULL },
        { "send", "--key", "k", "--user", "u1", "--variant", "a1", NULL },
        { "send", "--key", "k", "--user", "u1", "--variant", "a=1", "--weight", "b=1", NULL },
        { "send", "--key", "k", "--user", "u1", "--variant", "a=1", "--weight", "a=x", NULL },
        { "send", "--key", "k", "--user", "u1", "1", NULL },                    /* no --variant */
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        int rc = cli(&out, &err, bad[k]);
        ck_assert_msg(rc == 2, "case %zu: exit %d, want 2 (%s)", k, rc, err ? err : "");
        free(out);
        free(err);
    }
    /* A server-side refusal (weights add up to 0): exit 1 with the message. */
    const char *zero[] = { "send", "--key", "k", "--user", "u1", "--variant", "a=1", "--weight",
                           "a=0", NULL };
    ck_assert_int_eq(cli(&out, &err, zero), 1);
    ck_assert_ptr_nonnull(strstr(err, "add up to 0"));
    free(out);
    free(err);
    no_more_pubs();
    stop_clean();
}
END_TEST

START_TEST(test_cli_flags_to)
{
    char *out = NULL, *err = NULL;
    ev_t ev;

    const char *create[] = { "flags", "create", "beta-ui", "--user", "u1", "--role", "qa",
                             NULL };
    ck_assert_msg(cli(&out, &err, create) == 0, "cli failed: %s", err);
    ck_assert_ptr_nonnull(strstr(out, "published on user:u1"));
    ck_assert_ptr_nonnull(strstr(out, "published on role:qa"));
    free(out);
    free(err);
    next_pub("user:u1", EV_FLAG_CREATED, &ev);
    ck_assert_str_eq(ev.actor, "alice");
    ev_free(&ev);
    next_pub("role:qa", EV_FLAG_CREATED, &ev);
    ev_free(&ev);
    no_more_pubs();
    stored_enabled("beta-ui", 0);

    const char *enable[] = { "flags", "enable", "beta-ui", "--user", "u1", "--user", "u:2",
                             NULL };
    ck_assert_msg(cli(&out, &err, enable) == 0, "cli failed: %s", err);
    free(out);
    free(err);
    next_pub("user:u1", EV_FLAG_TOGGLED, &ev);
    ev_free(&ev);
    next_pub("user:u:2", EV_FLAG_TOGGLED, &ev);
    ev_free(&ev);
    no_more_pubs();
    stored_enabled("beta-ui", 1);

    const char *del[] = { "flags", "delete", "beta-ui", "--role", "qa", NULL };
    ck_assert_msg(cli(&out, &err, del) == 0, "cli failed: %s", err);
    free(out);
    free(err);
    next_pub("role:qa", EV_FLAG_DELETED, &ev);
    ev_free(&ev);
    no_more_pubs();
    stored_enabled("beta-ui", -1);

    const char *get[] = { "flags", "get", "beta-ui", "--user", "u1", NULL };
    ck_assert_int_eq(cli(&out, &err, get), 2);
    free(out);
    free(err);
    stop_clean();
}
END_TEST

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char *buf = calloc(1, 16384);
    size_t n = fread(buf, 1, 16383, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* A JWT signed with alg (RS256 with a private key PEM, or HS256). */
static char *sign(jwt_alg_t alg, const char *key, const char *sub_, long nbf)
{
    jwt_t *j = NULL;
    ck_assert_int_eq(jwt_new(&j), 0);
    ck_assert_int_eq(jwt_add_grant(j, "sub", sub_), 0);
    ck_assert_int_eq(jwt_add_grants_json(j, "{\"roles\":[\"admin\"]}"), 0);
    if (nbf)
        ck_assert_int_eq(jwt_add_grant_int(j, "nbf", nbf), 0);
    ck_assert_int_eq(jwt_set_alg(j, alg, (const unsigned char *)key, (int)strlen(key)), 0);
    char *s = jwt_encode_str(j);
    ck_assert_ptr_nonnull(s);
    jwt_free(j);
    return s;
}

START_TEST(test_admin_rs256)
{
    char priv[512], pub[512], env_key[600];
    ev_t ev;
    snprintf(priv, sizeof(priv), "%s/admin.key", h_tmpdir());
    snprintf(pub, sizeof(pub), "%s/admin.pub", h_tmpdir());
    const char *gen[] = { "/usr/bin/openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                          "rsa_keygen_bits:2048", "-out", priv, NULL };
    const char *exp[] = { "/usr/bin/openssl", "pkey", "-in", priv, "-pubout", "-out", pub, NULL };
    ck_assert_int_eq(h_run(gen, NULL, NULL, NULL, 30000), 0);
    ck_assert_int_eq(h_run(exp, NULL, NULL, NULL, 10000), 0);

    h_stop(fx.pid, SIGTERM, 5000);
    snprintf(env_key, sizeof(env_key), "FLAGCAST_JWT_PUBKEY=%s", pub);
    const char *env[] = { env_key, "FLAGCAST_REDIS_PREFIX=" PREFIX, "FLAGCAST_LOG_LEVEL=debug",
                          NULL };
    fx.pid = h_daemon_start("publisher", fx.port, fx.redis.url, env, "publisher.log", "/readyz",
                            5000);
    ck_assert_int_gt(fx.pid, 0);

    char *priv_pem = slurp(priv), *pub_pem = slurp(pub);
    char *good = sign(JWT_ALG_RS256, priv_pem, "rsa-admin", 0);
    char *confused = sign(JWT_ALG_HS256, pub_pem, "rsa-admin", 0); /* public key as HMAC key */
    char *early = sign(JWT_ALG_RS256, priv_pem, "rsa-admin", (long)time(NULL) + 3600);

    expect(confused, "GET", "/api/v1/flags", NULL, 401, "unauthorized");
    expect(early, "GET", "/api/v1/flags", NULL, 401, "unauthorized");
    expect(TOKEN, "GET", "/api/v1/flags", NULL, 401, "unauthorized"); /* not configured here */
    no_more_pubs();
    expect(good, "POST", "/api/v1/flags", "{\"key\":\"rsa\"}", 201, NULL);
    next_pub("flags", EV_FLAG_CREATED, &ev);
    ck_assert_str_eq(ev.actor, "rsa-admin");
    ev_free(&ev);

    char *log = read_file("publisher.log");
    ck_assert_ptr_null(strstr(log, strrchr(good, '.')));
    ck_assert_ptr_null(strstr(log, strrchr(confused, '.')));
    free(log);
    free(good);
    free(confused);
    free(early);
    free(priv_pem);
    free(pub_pem);
    stop_clean();
}
END_TEST

START_TEST(test_bad_identity_settings)
{
    /* Bad identity settings stop the start with status 2 and a message,
     * without echoing the secret. */
    const char *argv[] = { h_bin("flagcast-publisher"), NULL };
    const char *cases[][2] = {
        { "FLAGCAST_JWT_SECRET=short-secret-xyz", "at least 32 bytes" },
        { "FLAGCAST_API_KEYS=lonely-key-xyz", "key=user" },
        { "FLAGCAST_JWT_PUBKEY=/nonexistent/key.pem", "JWT" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = NULL, *err = NULL;
        const char *env[] = { cases[i][0], NULL };
        ck_assert_int_eq(h_run(argv, env, &out, &err, 5000), 2);
        ck_assert_msg(err && strstr(err, cases[i][1]), "case %zu: %s", i, err ? err : "");
        ck_assert_ptr_null(strstr(err, "xyz"));
        free(out);
        free(err);
    }
    stop_clean();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("publisher-ident");
    TCase *tc = tcase_create("ident");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_admin_auth);
    tcase_add_test(tc, test_flag_to_inboxes);
    tcase_add_test(tc, test_ab_split);
    tcase_add_test(tc, test_ab_rules);
    tcase_add_test(tc, test_cli_ab);
    tcase_add_test(tc, test_cli_flags_to);
    tcase_add_test(tc, test_bad_identity_settings);
    tcase_add_test(tc, test_admin_rs256);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
