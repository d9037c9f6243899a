/*
 * Unit tests for gateway/access: modes, admission, inboxes and channel
 * decisions for anonymous connections, identities with and without a
 * "channels" claim, roles, private channels; and one end-to-end case from a
 * real HS256 token through common/token.
 */
#include "gateway/access.h"

#include <check.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An identity built by hand (fields point at literals; never freed). */
static token_identity_t ident(const char *user, char **roles, size_t nroles,
                              char **chans, size_t nchans, bool has_channels)
{
    token_identity_t id;
    memset(&id, 0, sizeof id);
    id.user = (char *)user;
    id.roles = roles;
    id.nroles = nroles;
    id.channels = chans;
    id.nchannels = nchans;
    id.has_channels = has_channels;
    id.source = TOKEN_SRC_JWT;
    return id;
}

static access_t *mkaccess(access_mode_t m, const char *priv)
{
    const char *err = NULL;
    access_t *a = access_new(m, priv, &err);
    ck_assert_msg(a != NULL, "access_new: %s", err ? err : "?");
    return a;
}

static void ok(const access_t *a, const token_identity_t *id, const char *ch)
{
    access_error_t e = { 0, NULL, NULL };
    ck_assert_msg(access_check_channel(a, id, ch, strlen(ch), &e) == 0,
                  "%s refused: %s", ch, e.message ? e.message : "?");
}

static void no(const access_t *a, const token_identity_t *id, const char *ch, int status,
               const char *code)
{
    access_error_t e = { 0, NULL, NULL };
    ck_assert_msg(access_check_channel(a, id, ch, strlen(ch), &e) == -1, "%s allowed", ch);
    ck_assert_int_eq(e.status, status);
    ck_assert_str_eq(e.code, code);
    ck_assert_ptr_nonnull(e.message);
    ck_assert_uint_gt(strlen(e.message), 0);
}

START_TEST(test_modes)
{
    access_mode_t m;
    const char *err;
    ck_assert_int_eq(access_mode_parse("off", &m, &err), 0);
    ck_assert_int_eq(m, ACCESS_AUTH_OFF);
    ck_assert_int_eq(access_mode_parse("optional", &m, &err), 0);
    ck_assert_int_eq(m, ACCESS_AUTH_OPTIONAL);
    ck_assert_int_eq(access_mode_parse("required", &m, &err), 0);
    ck_assert_int_eq(m, ACCESS_AUTH_REQUIRED);
    ck_assert_int_eq(access_mode_parse("Required", &m, &err), -1);
    ck_assert_str_eq(err, "auth mode must be required, optional or off");
    ck_assert_int_eq(access_mode_parse("", &m, &err), -1);
    ck_assert_int_eq(access_mode_parse(NULL, &m, &err), -1);
    ck_assert_str_eq(access_mode_name(ACCESS_AUTH_OFF), "off");
    ck_assert_str_eq(access_mode_name(ACCESS_AUTH_OPTIONAL), "optional");
    ck_assert_str_eq(access_mode_name(ACCESS_AUTH_REQUIRED), "required");
    ck_assert_ptr_null(access_new((access_mode_t)7, NULL, &err));
}
END_TEST

START_TEST(test_admit)
{
    token_identity_t bob = ident("bob", NULL, 0, NULL, 0, false);
    access_error_t e;
    access_t *a;

    a = mkaccess(ACCESS_AUTH_REQUIRED, NULL);
    ck_assert(access_uses_tokens(a));
    ck_assert_int_eq(access_admit(a, NULL, &e), -1);
    ck_assert_int_eq(e.status, 401);
    ck_assert_str_eq(e.code, "unauthorized");
    ck_assert_str_eq(e.message, "authentication required");
    ck_assert_int_eq(access_admit(a, &bob, &e), 0);
    ck_assert_ptr_eq(access_effective(a, &bob), &bob);
    access_free(a);

    a = mkaccess(ACCESS_AUTH_OPTIONAL, NULL);
    ck_assert(access_uses_tokens(a));
    ck_assert_int_eq(access_admit(a, NULL, &e), 0);
    ck_assert_int_eq(access_admit(a, &bob, &e), 0);
    access_free(a);

    a = mkaccess(ACCESS_AUTH_OFF, NULL);
    ck_assert(!access_uses_tokens(a));
    ck_assert_int_eq(access_admit(a, NULL, &e), 0);
    ck_assert_ptr_null(access_effective(a, &bob));
    ck_assert_int_eq(access_mode(a), ACCESS_AUTH_OFF);
    access_free(a);

    ck_assert_int_eq(access_token_refused("token expired", &e), -1);
    ck_assert_int_eq(e.status, 401);
    ck_assert_str_eq(e.code, "unauthorized");
    ck_assert_str_eq(e.message, "token expired");
    ck_assert_int_eq(access_token_refused(NULL, &e), -1);
    ck_assert_str_eq(e.message, "invalid token");
}
END_TEST

START_TEST(test_inboxes)
{
    char *roles[] = { "admin", "beta-testers" };
    token_identity_t carol = ident("carol.x:1", roles, 2, NULL, 0, false);
    token_identity_t dave = ident("dave", NULL, 0, NULL, 0, false);
    char buf[ACCESS_INBOX_MAX];
    access_t *a = mkaccess(ACCESS_AUTH_OPTIONAL, NULL);

    ck_assert_uint_eq(access_inbox_count(a, &carol), 3);
    ck_assert_int_eq(access_inbox(a, &carol, 0, buf, sizeof buf), 14);
    ck_assert_str_eq(buf, "user:carol.x:1");
    ck_assert_int_eq(access_inbox(a, &carol, 1, buf, sizeof buf), 10);
    ck_assert_str_eq(buf, "role:admin");
    ck_assert_int_eq(access_inbox(a, &carol, 2, buf, sizeof buf), 17);
    ck_assert_str_eq(buf, "role:beta-testers");
    ck_assert_int_eq(access_inbox(a, &carol, 3, buf, sizeof buf), -1);
    ck_assert_int_eq(access_inbox(a, &carol, 0, buf, 5), -1);   /* too small */
    ck_assert_uint_eq(access_inbox_count(a, &dave), 1);
    ck_assert_int_eq(access_inbox(a, &dave, 0, buf, sizeof buf), 9);
    ck_assert_str_eq(buf, "user:dave");
    ck_assert_uint_eq(access_inbox_count(a, NULL), 0);
    ck_assert_int_eq(access_inbox(a, NULL, 0, buf, sizeof buf), -1);
    /* Every inbox may be read by its owner. */
    for (size_t i = 0; i < access_inbox_count(a, &carol); i++) {
        ck_assert_int_ge(access_inbox(a, &carol, i, buf, sizeof buf), 0);
        ok(a, &carol, buf);
    }
    access_free(a);

    /* Mode off: nobody has inboxes. */
    a = mkaccess(ACCESS_AUTH_OFF, NULL);
    ck_assert_uint_eq(access_inbox_count(a, &carol), 0);
    ck_assert_int_eq(access_inbox(a, &carol, 0, buf, sizeof buf), -1);
    access_free(a);

    /* The longest user fits ACCESS_INBOX_MAX. */
    char user[TOKEN_MAX_USER + 1];
    memset(user, 'u', TOKEN_MAX_USER);
    user[TOKEN_MAX_USER] = '\0';
    token_identity_t big = ident(user, NULL, 0, NULL, 0, false);
    a = mkaccess(ACCESS_AUTH_REQUIRED, NULL);
    ck_assert_int_eq(access_inbox(a, &big, 0, buf, sizeof buf), 5 + TOKEN_MAX_USER);
    ok(a, &big, buf);
    access_free(a);
}
END_TEST

START_TEST(test_anonymous)
{
    access_t *a = mkaccess(ACCESS_AUTH_OPTIONAL, "secret.*, ops, *.private");
    ok(a, NULL, "flags");
    ok(a, NULL, "chat.room1");
    ok(a, NULL, "dashboard.metrics");
    ok(a, NULL, "secret");          /* "secret.*" needs a non-empty rest */
    ok(a, NULL, "ops2");
    no(a, NULL, "secret.plans", 403, "forbidden");
    no(a, NULL, "ops", 403, "forbidden");
    no(a, NULL, "team.private", 403, "forbidden");
    no(a, NULL, "user:bob", 403, "forbidden");
    no(a, NULL, "role:admin", 403, "forbidden");
    no(a, NULL, "user:", 400, "bad_channel");
    no(a, NULL, "role:", 400, "bad_channel");
    no(a, NULL, "", 400, "bad_channel");
    no(a, NULL, "a b", 400, "bad_channel");
    no(a, NULL, "chat/*", 400, "bad_channel");
    ck_assert(access_is_private(a, "ops", 3));
    ck_assert(!access_is_private(a, "flags", 5));
    ck_assert(!access_is_private(a, "user:ops", 8));
    access_free(a);
    /* No private patterns: every application channel is public. */
    a = mkaccess(ACCESS_AUTH_OPTIONAL, "");
    ok(a, NULL, "secret.plans");
    ok(a, NULL, "ops");
    access_free(a);
}
END_TEST

START_TEST(test_identities)
{
    access_t *a = mkaccess(ACCESS_AUTH_REQUIRED, "secret.*");
    char *roles[] = { "admin", "ops" };
    token_identity_t bob = ident("bob", roles, 2, NULL, 0, false);
    char *chans[] = { "chat.*", "secret.plans", "team.*.news" };
    token_identity_t eve = ident("eve", NULL, 0, chans, 3, true);
    token_identity_t none = ident("nina", NULL, 0, NULL, 0, true);
    char *all[] = { "*" };
    token_identity_t star = ident("sam", NULL, 0, all, 1, true);

    /* Inboxes: own only. */
    ok(a, &bob, "user:bob");
    no(a, &bob, "user:bobby", 403, "forbidden");
    no(a, &bob, "user:bo", 403, "forbidden");
    no(a, &bob, "user:eve", 403, "forbidden");
    ok(a, &bob, "role:admin");
    ok(a, &bob, "role:ops");
    no(a, &bob, "role:op", 403, "forbidden");
    no(a, &bob, "role:opsx", 403, "forbidden");
    no(a, &bob, "role:beta", 403, "forbidden");
    no(a, &eve, "role:admin", 403, "forbidden");
    /* No channels claim: flags and public channels, not private ones. */
    ok(a, &bob, "flags");
    ok(a, &bob, "chat.room1");
    ok(a, &bob, "news");
    no(a, &bob, "secret.plans", 403, "forbidden");
    /* A channels claim restricts application channels and grants private
     * ones it names; flags stay readable. */
    ok(a, &eve, "flags");
    ok(a, &eve, "chat.room1");
    ok(a, &eve, "chat.a.b");
    ok(a, &eve, "secret.plans");
    ok(a, &eve, "team.x.news");
    no(a, &eve, "secret.other", 403, "forbidden");
    no(a, &eve, "news", 403, "forbidden");
    no(a, &eve, "chat", 403, "forbidden");
    no(a, &eve, "team.x.y.news", 403, "forbidden");
    ok(a, &eve, "user:eve");
    /* An empty claim allows no application channel at all. */
    ok(a, &none, "flags");
    ok(a, &none, "user:nina");
    no(a, &none, "chat.room1", 403, "forbidden");
    /* "*" allows every application channel, private included, but never
     * someone else's inbox or a role not held. */
    ok(a, &star, "chat.room1");
    ok(a, &star, "secret.x");
    no(a, &star, "user:bob", 403, "forbidden");
    no(a, &star, "role:admin", 403, "forbidden");
    /* Bad names are 400 whoever asks. */
    no(a, &star, "chat room", 400, "bad_channel");
    access_free(a);

    /* Mode off ignores identities: inboxes and private channels closed. */
    a = mkaccess(ACCESS_AUTH_OFF, "secret.*");
    no(a, &bob, "user:bob", 403, "forbidden");
    no(a, &bob, "role:admin", 403, "forbidden");
    no(a, &star, "secret.x", 403, "forbidden");
    ok(a, &eve, "news");     /* eve's claim does not apply either */
    ok(a, NULL, "flags");
    access_free(a);
}
END_TEST

START_TEST(test_bad_config)
{
    const char *err = NULL;
    ck_assert_ptr_null(access_new(ACCESS_AUTH_OPTIONAL, "ok,a*b", &err));
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_null(access_new(ACCESS_AUTH_OPTIONAL, "a b", &err));
    char list[ACCESS_MAX_PRIVATE * 4 + 16];
    size_t o = 0;
    for (int i = 0; i <= ACCESS_MAX_PRIVATE; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, "p%d,", i);
    ck_assert_ptr_null(access_new(ACCESS_AUTH_OPTIONAL, list, &err));
    ck_assert_str_eq(err, "too many private channel patterns (at most 64)");
    access_t *a = access_new(ACCESS_AUTH_OPTIONAL, " , a ,, b.* ,", &err);
    ck_assert_ptr_nonnull(a);
    ck_assert(access_is_private(a, "a", 1));
    ck_assert(access_is_private(a, "b.c", 3));
    ck_assert(!access_is_private(a, "b", 1));
    access_free(a);
    access_free(NULL);
}
END_TEST

/* From a real token through the verifier to the decisions. */
START_TEST(test_end_to_end)
{
    const char *secret = "0123456789abcdef0123456789abcdef-test-only";
    token_config_t c;
    const char *err;
    token_config_init(&c);
    c.jwt_secret = secret;
    c.api_keys = "svc-key-1=svc:ops";
    token_verifier_t *v = token_verifier_new(&c, &err);
    ck_assert_ptr_nonnull(v);
    jwt_t *j;
    jwt_new(&j);
    jwt_add_grants_json(j, "{\"sub\":\"u1\",\"roles\":[\"beta\"],\"channels\":[\"chat.*\"]}");
    jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)secret, (int)strlen(secret));
    char *t = jwt_encode_str(j);
    jwt_free(j);
    token_identity_t *id = NULL, *svc = NULL;
    ck_assert_int_eq(token_verify(v, t, strlen(t), &id, &err), 0);
    ck_assert_int_eq(token_verify(v, "svc-key-1", 9, &svc, &err), 0);
    free(t);

    access_t *a = mkaccess(ACCESS_AUTH_REQUIRED, "private.*");
    access_error_t e;
    ck_assert_int_eq(access_admit(a, id, &e), 0);
    ck_assert_uint_eq(access_inbox_count(a, id), 2);
    ok(a, id, "user:u1");
    ok(a, id, "role:beta");
    ok(a, id, "chat.lobby");
    no(a, id, "news", 403, "forbidden");
    no(a, id, "user:u2", 403, "forbidden");
    ok(a, svc, "role:ops");
    ok(a, svc, "news");
    no(a, svc, "private.x", 403, "forbidden");
    no(a, svc, "user:u1", 403, "forbidden");

    /* A refused token becomes a 401 with the verifier's message. */
    token_identity_t *bad = NULL;
    ck_assert_int_eq(token_verify(v, "nope", 4, &bad, &err), -1);
    ck_assert_int_eq(access_token_refused(err, &e), -1);
    ck_assert_int_eq(e.status, 401);
    ck_assert_str_eq(e.message, "unknown API key");
    access_free(a);
    token_identity_free(id);
    token_identity_free(svc);
    token_verifier_free(v);
}
END_TEST

/* A filter from a list of channels (flags mode as given). */
static filter_t mkfilter(filter_flags_t flags, const char **chans, size_t n)
{
    filter_t f;
    const char *err = NULL;
    filter_init(&f);
    f.flags = flags;
    for (size_t i = 0; i < n; i++)
        ck_assert_int_ge(filter_add_channel(&f, chans[i], strlen(chans[i]), 512, &err), 0);
    return f;
}

static void has_channels(const filter_t *f, const char *want)
{
    char got[1024] = "";
    for (uint32_t i = 0; i < f->nchannels; i++) {
        if (i)
            strcat(got, ",");
        strcat(got, f->channels[i]);
    }
    ck_assert_str_eq(got, want);
}

START_TEST(test_check_filter)
{
    access_t *a = mkaccess(ACCESS_AUTH_OPTIONAL, "secret.*");
    char *roles[] = { "beta" };
    token_identity_t alice = ident("alice", roles, 1, NULL, 0, false);
    const char *ok1[] = { "news", "role:beta", "user:alice" };
    const char *bad1[] = { "news", "user:bob" };
    const char *bad2[] = { "secret.plans" };
    access_error_t e = { 0, NULL, NULL };
    const char *bad = NULL;

    filter_t f = mkfilter(FILTER_FLAGS_ALL, ok1, 3);
    ck_assert_int_eq(access_check_filter(a, &alice, &f, &e, &bad), 0);
    /* the same channels anonymously: the first inbox is refused */
    ck_assert_int_eq(access_check_filter(a, NULL, &f, &e, &bad), -1);
    ck_assert_str_eq(bad, "role:beta");
    ck_assert_int_eq(e.status, 403);
    ck_assert_str_eq(e.code, "forbidden");
    filter_free(&f);

    f = mkfilter(FILTER_FLAGS_NONE, bad1, 2);
    ck_assert_int_eq(access_check_filter(a, &alice, &f, &e, &bad), -1);
    ck_assert_str_eq(bad, "user:bob");
    filter_free(&f);

    f = mkfilter(FILTER_FLAGS_NONE, bad2, 1);
    ck_assert_int_eq(access_check_filter(a, &alice, &f, &e, &bad), -1);
    ck_assert_str_eq(bad, "secret.plans");
    filter_free(&f);

    /* flags alone needs no check, even anonymously under required */
    access_t *r = mkaccess(ACCESS_AUTH_REQUIRED, NULL);
    f = mkfilter(FILTER_FLAGS_ALL, NULL, 0);
    ck_assert_int_eq(access_check_filter(r, NULL, &f, &e, &bad), 0);
    filter_free(&f);
    access_free(r);
    access_free(a);
}
END_TEST

START_TEST(test_apply_filter)
{
    access_t *a = mkaccess(ACCESS_AUTH_OPTIONAL, "secret.*");
    char *roles[] = { "beta", "ops" };
    char *chans[] = { "chat.*" };
    token_identity_t alice = ident("alice", roles, 2, NULL, 0, false);
    token_identity_t alice2 = ident("alice", roles + 1, 1, chans, 1, true);
    const char *start[] = { "news", "chat.room1" };
    const char *err = NULL;

    filter_t f = mkfilter(FILTER_FLAGS_SOME, start, 2);
    ck_assert_int_eq(filter_add_key(&f, "k1", 2, 16, &err), 0);
    ck_assert_int_eq(access_apply_filter(a, &alice, &f, &err), 0);
    has_channels(&f, "chat.room1,news,role:beta,role:ops,user:alice");
    ck_assert_int_eq(f.flags, FILTER_FLAGS_SOME);      /* flag part kept */
    ck_assert(filter_has_key(&f, "k1", 2));
    /* idempotent */
    ck_assert_int_eq(access_apply_filter(a, &alice, &f, &err), 0);
    has_channels(&f, "chat.room1,news,role:beta,role:ops,user:alice");
    /* a refreshed identity: lost role beta, claim limits to chat.* */
    ck_assert_int_eq(access_apply_filter(a, &alice2, &f, &err), 0);
    has_channels(&f, "chat.room1,role:ops,user:alice");
    /* anonymous: every inbox goes, public channels stay */
    ck_assert_int_eq(access_apply_filter(a, NULL, &f, &err), 0);
    has_channels(&f, "chat.room1");
    filter_free(&f);

    /* mode off: identities are ignored, no inbox */
    access_t *off = mkaccess(ACCESS_AUTH_OFF, NULL);
    f = mkfilter(FILTER_FLAGS_ALL, start, 2);
    ck_assert_int_eq(access_apply_filter(off, &alice, &f, &err), 0);
    has_channels(&f, "chat.room1,news");
    filter_free(&f);
    access_free(off);

    /* a full channel list still takes every inbox */
    filter_init(&f);
    for (int i = 0; i < FILTER_MAX_ITEMS; i++) {
        char ch[32];
        int n = snprintf(ch, sizeof ch, "c%d", i);
        ck_assert_int_eq(filter_add_channel(&f, ch, (size_t)n, FILTER_MAX_ITEMS, &err), 0);
    }
    ck_assert_int_eq(access_apply_filter(a, &alice, &f, &err), 0);
    ck_assert_uint_eq(f.nchannels, FILTER_MAX_ITEMS + 3);
    ck_assert(filter_has_channel(&f, "user:alice", 10));
    filter_free(&f);
    access_free(a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("access");
    TCase *tc = tcase_create("access");
    tcase_add_test(tc, test_modes);
    tcase_add_test(tc, test_admit);
    tcase_add_test(tc, test_inboxes);
    tcase_add_test(tc, test_anonymous);
    tcase_add_test(tc, test_identities);
    tcase_add_test(tc, test_bad_config);
    tcase_add_test(tc, test_end_to_end);
    tcase_add_test(tc, test_check_filter);
    tcase_add_test(tc, test_apply_filter);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
