/*
 * Unit tests for common/token: JWT verification (HS256, RS256, time claims,
 * iss/aud, algorithm confusion, alg none, malformed tokens, claim types),
 * API keys, configuration errors and channel patterns.
 *
 * Tokens are made with libjwt's encoder; RSA test keys are generated at
 * start-up with the openssl CLI into a private temp dir (removed at exit).
 * Tokens the encoder cannot make (bad JSON, duplicate members, odd headers)
 * are assembled by hand: they are refused before any signature check.
 */
#include "common/token.h"

#include <check.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SECRET  "0123456789abcdef0123456789abcdef-test-only"
#define SECRET2 "fedcba9876543210fedcba9876543210-test-only"
#define NOW     ((time_t)1700000000)

static char keydir[64];
static char *priv1, *pub1, *priv2, *pub1_path;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = calloc(1, 65536);
    if (f == NULL || buf == NULL) {
        fprintf(stderr, "test_token: cannot read %s\n", path);
        exit(1);
    }
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void keys_setup(void)
{
    char cmd[512];
    snprintf(keydir, sizeof keydir, "/tmp/flagcast-token-XXXXXX");
    if (mkdtemp(keydir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(cmd, sizeof cmd,
             "cd %s && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out priv1.pem 2>/dev/null"
             " && openssl pkey -in priv1.pem -pubout -out pub1.pem"
             " && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out priv2.pem 2>/dev/null"
             " && openssl pkey -in priv2.pem -pubout -out pub2.pem", keydir);
    if (system(cmd) != 0) {
        fprintf(stderr, "test_token: openssl could not make the test keys\n");
        exit(1);
    }
    char p[128];
    snprintf(p, sizeof p, "%s/priv1.pem", keydir); priv1 = slurp(p);
    snprintf(p, sizeof p, "%s/pub1.pem", keydir);  pub1 = slurp(p);
    pub1_path = strdup(p);
    snprintf(p, sizeof p, "%s/priv2.pem", keydir); priv2 = slurp(p);
}

static void keys_teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", keydir);
    if (system(cmd) != 0)
        fprintf(stderr, "test_token: could not remove %s\n", keydir);
}

/* A token with the given claims (JSON object text) signed with alg/key. */
static char *mk(jwt_alg_t alg, const char *key, const char *claims)
{
    jwt_t *j;
    ck_assert_int_eq(jwt_new(&j), 0);
    ck_assert_msg(jwt_add_grants_json(j, claims) == 0, "libjwt refused %s", claims);
    ck_assert_int_eq(jwt_set_alg(j, alg, (const unsigned char *)key, key ? (int)strlen(key) : 0), 0);
    char *s = jwt_encode_str(j);
    ck_assert_ptr_nonnull(s);
    jwt_free(j);
    return s;
}

static void b64url(const char *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        if (i + 1 < n) v |= (unsigned char)in[i + 1] << 8;
        if (i + 2 < n) v |= (unsigned char)in[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        if (i + 1 < n) out[o++] = tab[(v >> 6) & 63];
        if (i + 2 < n) out[o++] = tab[v & 63];
    }
    out[o] = '\0';
}

/* header.payload.sig from raw JSON texts (sig given already encoded). */
static char *raw(const char *hdr, const char *pl, const char *sig)
{
    char *s = malloc(4096);
    b64url(hdr, strlen(hdr), s);
    strcat(s, ".");
    b64url(pl, strlen(pl), s + strlen(s));
    strcat(s, ".");
    strcat(s, sig);
    return s;
}

static token_verifier_t *ver(const char *secret, const char *pem, const char *keys)
{
    token_config_t c;
    const char *err = NULL;
    token_config_init(&c);
    c.jwt_secret = secret;
    c.jwt_pubkey_pem = pem;
    c.api_keys = keys;
    token_verifier_t *v = token_verifier_new(&c, &err);
    ck_assert_msg(v != NULL, "verifier: %s", err ? err : "?");
    return v;
}

/* Expects tok to be refused with exactly msg. */
static void refused(const token_verifier_t *v, const char *tok, const char *msg)
{
    token_identity_t *id = (token_identity_t *)1;
    const char *err = NULL;
    ck_assert_int_eq(token_verify_at(v, tok, strlen(tok), NOW, &id, &err), -1);
    ck_assert_ptr_null(id);
    ck_assert_ptr_nonnull(err);
    ck_assert_str_eq(err, msg);
    /* No error message ever carries the token. */
    if (strlen(tok) >= 8) {
        char part[9];
        memcpy(part, tok + strlen(tok) - 8, 8);
        part[8] = '\0';
        ck_assert_ptr_null(strstr(err, part));
    }
}

static token_identity_t *accepted(const token_verifier_t *v, const char *tok, time_t now)
{
    token_identity_t *id = NULL;
    const char *err = NULL;
    int rc = token_verify_at(v, tok, strlen(tok), now, &id, &err);
    ck_assert_msg(rc == 0, "refused: %s", err ? err : "?");
    ck_assert_ptr_nonnull(id);
    return id;
}

/* ==== tests ============================================================== */

START_TEST(test_hs256_valid)
{
    token_verifier_t *v = ver(SECRET, NULL, NULL);
    char *t = mk(JWT_ALG_HS256, SECRET,
                 "{\"sub\":\"alice\",\"roles\":[\"admin\",\"ops\",\"admin\"],"
                 "\"channels\":[\"chat.*\",\"news\"],\"exp\":1700000100}");
    token_identity_t *id = accepted(v, t, NOW);
    ck_assert_str_eq(id->user, "alice");
    ck_assert_uint_eq(id->nroles, 2);
    ck_assert_str_eq(id->roles[0], "admin");
    ck_assert_str_eq(id->roles[1], "ops");
    ck_assert(id->has_channels);
    ck_assert_uint_eq(id->nchannels, 2);
    ck_assert_str_eq(id->channels[0], "chat.*");
    ck_assert_str_eq(id->channels[1], "news");
    ck_assert_int_eq(id->expires, 1700000100);
    ck_assert_int_eq(id->source, TOKEN_SRC_JWT);
    ck_assert(token_identity_has_role(id, "ops"));
    ck_assert(!token_identity_has_role(id, "op"));
    token_identity_free(id);
    free(t);

    /* No optional claim at all; exp absent means no expiry. */
    t = mk(JWT_ALG_HS256, SECRET, "{\"sub\":\"user:42.b_c-d\"}");
    id = accepted(v, t, NOW);
    ck_assert_str_eq(id->user, "user:42.b_c-d");
    ck_assert_uint_eq(id->nroles, 0);
    ck_assert(!id->has_channels);
    ck_assert_int_eq(id->expires, 0);
    token_identity_free(id);
    free(t);

    /* An empty channels claim is present and allows nothing. */
    t = mk(JWT_ALG_HS256, SECRET, "{\"sub\":\"bob\",\"channels\":[],\"roles\":[]}");
    id = accepted(v, t, NOW);
    ck_assert(id->has_channels);
    ck_assert_uint_eq(id->nchannels, 0);
    token_identity_free(id);
    free(t);

    /* token_verify uses the real clock. */
    t = mk(JWT_ALG_HS256, SECRET, "{\"sub\":\"bob\"}");
    const char *err;
    ck_assert_int_eq(token_verify(v, t, strlen(t), &id, &err), 0);
    token_identity_free(id);
    free(t);
    token_verifier_free(v);
}
END_TEST

START_TEST(test_rs256_valid_and_wrong_key)
{
    token_verifier_t *v = ver(NULL, pub1, NULL);
    char *t = mk(JWT_ALG_RS256, priv1, "{\"sub\":\"carol\",\"roles\":[\"beta\"]}");
    token_identity_t *id = accepted(v, t, NOW);
    ck_assert_str_eq(id->user, "carol");
    ck_assert_str_eq(id->roles[0], "beta");
    token_identity_free(id);
    free(t);
    /* Signed with another RSA key. */
    t = mk(JWT_ALG_RS256, priv2, "{\"sub\":\"carol\"}");
    refused(v, t, "bad signature");
    free(t);
    token_verifier_free(v);

    /* The key from a file works the same. */
    token_config_t c;
    const char *err;
    token_config_init(&c);
    c.jwt_pubkey_file = pub1_path;
    v = token_verifier_new(&c, &err);
    ck_assert_ptr_nonnull(v);
    t = mk(JWT_ALG_RS256, priv1, "{\"sub\":\"carol\"}");
    id = accepted(v, t, NOW);
    token_identity_free(id);
    free(t);
    token_verifier_free(v);
}
END_TEST

START_TEST(test_time_claims)
{
    token_verifier_t *v = ver(SECRET, NULL, NULL);
    char *t;
    char claims[128];
    /* exp: valid until exp + leeway (30 s). */
    snprintf(claims, sizeof claims, "{\"sub\":\"a\",\"exp\":%ld}", (long)NOW - 31);
    t = mk(JWT_ALG_HS256, SECRET, claims);
    refused(v, t, "token expired");
    token_identity_free(accepted(v, t, NOW - 2));
    free(t);
    snprintf(claims, sizeof claims, "{\"sub\":\"a\",\"exp\":%ld}", (long)NOW - 30);
    t = mk(JWT_ALG_HS256, SECRET, claims);
    refused(v, t, "token expired");
    free(t);
    snprintf(claims, sizeof claims, "{\"sub\":\"a\",\"exp\":%ld}", (long)NOW - 29);
    t = mk(JWT_ALG_HS256, SECRET, claims);
    token_identity_free(accepted(v, t, NOW)); /* within leeway */
    free(t);
    /* nbf: valid from nbf - leeway. */
    snprintf(claims, sizeof claims, "{\"sub\":\"a\",\"nbf\":%ld}", (long)NOW + 31);
    t = mk(JWT_ALG_HS256, SECRET, claims);
    refused(v, t, "token not yet valid");
    free(t);
    snprintf(claims, sizeof claims, "{\"sub\":\"a\",\"nbf\":%ld}", (long)NOW + 30);
    t = mk(JWT_ALG_HS256, SECRET, claims);
    token_identity_free(accepted(v, t, NOW));
    free(t);
    /* A fractional NumericDate is fine; a string is not. */
    snprintf(claims, sizeof claims, "{\"sub\":\"a\",\"exp\":%ld.5}", (long)NOW + 100);
    t = mk(JWT_ALG_HS256, SECRET, claims);
    token_identity_t *id = accepted(v, t, NOW);
    ck_assert_int_eq(id->expires, (long long)NOW + 100);
    token_identity_free(id);
    free(t);
    t = mk(JWT_ALG_HS256, SECRET, "{\"sub\":\"a\",\"exp\":\"2099-01-01\"}");
    refused(v, t, "malformed exp claim");
    free(t);
    t = mk(JWT_ALG_HS256, SECRET, "{\"sub\":\"a\",\"nbf\":true}");
    refused(v, t, "malformed nbf claim");
    free(t);
    token_verifier_free(v);

    /* Leeway 0: expired at exp. */
    token_config_t c;
    const char *err;
    token_config_init(&c);
    c.jwt_secret = SECRET;
    c.leeway = 0;
    v = token_verifier_new(&c, &err);
    snprintf(claims, sizeof claims, "{\"sub\":\"a\",\"exp\":%ld}", (long)NOW);
    t = mk(JWT_ALG_HS256, SECRET, claims);
    refused(v, t, "token expired");
    token_identity_free(accepted(v, t, NOW - 1));
    free(t);
    token_verifier_free(v);
}
END_TEST

START_TEST(test_bad_signature)
{
    token_verifier_t *v = ver(SECRET, NULL, NULL);
    char *t = mk(JWT_ALG_HS256, SECRET2, "{\"sub\":\"a\"}");
    refused(v, t, "bad signature");
    free(t);
    t = mk(JWT_ALG_HS256, SECRET, "{\"sub\":\"a\"}");
    char *last = t + strlen(t) - 2;
    *last = *last == 'A' ? 'B' : 'A';
    refused(v, t, "bad signature");
    /* The payload changed under a valid signature. */
    free(t);
    t = mk(JWT_ALG_HS256, SECRET, "{\"sub\":\"a\"}");
    char *u = mk(JWT_ALG_HS256, SECRET, "{\"sub\":\"b\"}");
    char forged[1024];
    const char *d1 = strchr(u, '.'), *d2 = strrchr(u, '.');
    const char *s2 = strrchr(t, '.');
    snprintf(forged, sizeof forged, "%.*s%s", (int)(d2 - u), u, s2);
    (void)d1;
    refused(v, forged, "bad signature");
    /* No signature at all. */
    snprintf(forged, sizeof forged, "%.*s.", (int)(d2 - u), u);
    refused(v, forged, "bad signature");
    free(t);
    free(u);
    token_verifier_free(v);
}
END_TEST

START_TEST(test_algorithms)
{
    /* Only RS256 configured: HS256 tokens are refused whatever their key,
     * in particular one signed with the public key PEM as HMAC secret. */
    token_verifier_t *v = ver(NULL, pub1, NULL);
    char *t = mk(JWT_ALG_HS256, pub1, "{\"sub\":\"mallory\",\"roles\":[\"admin\"]}");
    refused(v, t, "algorithm not allowed");
    token_verifier_free(v);
    /* Both configured: the HS256 token is checked with the secret only. */
    v = ver(SECRET, pub1, NULL);
    refused(v, t, "bad signature");
    free(t);
    /* Only HS256 configured: an RS256 token is refused. */
    token_verifier_free(v);
    v = ver(SECRET, NULL, NULL);
    t = mk(JWT_ALG_RS256, priv1, "{\"sub\":\"a\"}");
    refused(v, t, "algorithm not allowed");
    free(t);
    /* Other algorithms libjwt knows are not allowed. */
    t = mk(JWT_ALG_HS512, SECRET, "{\"sub\":\"a\"}");
    refused(v, t, "algorithm not allowed");
    free(t);
    t = mk(JWT_ALG_HS384, SECRET, "{\"sub\":\"a\"}");
    refused(v, t, "algorithm not allowed");
    free(t);
    /* alg none, as libjwt writes it and by hand, with or without a
     * signature part, in any case. */
    t = mk(JWT_ALG_NONE, NULL, "{\"sub\":\"a\"}");
    refused(v, t, "algorithm none refused");
    free(t);
    t = raw("{\"alg\":\"none\",\"typ\":\"JWT\"}", "{\"sub\":\"a\"}", "");
    refused(v, t, "algorithm none refused");
    free(t);
    t = raw("{\"alg\":\"None\"}", "{\"sub\":\"a\"}", "c2ln");
    refused(v, t, "algorithm none refused");
    free(t);
    t = raw("{\"alg\":\"hs256\"}", "{\"sub\":\"a\"}", "c2ln");
    refused(v, t, "algorithm not allowed");
    free(t);
    t = raw("{\"alg\":\"XX999\"}", "{\"sub\":\"a\"}", "c2ln");
    refused(v, t, "algorithm not allowed");
    free(t);
    /* A critical header extension is not understood, so refused. */
    jwt_t *j;
    jwt_new(&j);
    jwt_add_grant(j, "sub", "a");
    jwt_add_headers_json(j, "{\"crit\":[\"exp\"]}");
    jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)SECRET, (int)strlen(SECRET));
    t = jwt_encode_str(j);
    jwt_free(j);
    refused(v, t, "unsupported critical header");
    free(t);
    token_verifier_free(v);
}
END_TEST

START_TEST(test_malformed)
{
    token_verifier_t *v = ver(SECRET, pub1, NULL);
    char big[TOKEN_MAX_BYTES + 2];
    const char *err;
    token_identity_t *id;
    refused(v, "garbage", "malformed token");
    refused(v, "abc.def", "malformed token");
    refused(v, "a.b.c.d", "malformed token");
    refused(v, ".e30.c2ln", "malformed token");
    refused(v, "e30..c2ln", "malformed token");
    refused(v, "!!!!.e30.c2ln", "malformed token");
    refused(v, "eyJhbGciOiJIUzI1NiJ9.e30=.c2ln", "malformed token");
    refused(v, "eyJhbGciOiJIUzI1NiJ9 .e30.c2ln", "malformed token");
    refused(v, "e.e30.c2ln", "malformed token");      /* 1 char: bad base64 length */
    refused(v, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0x.c2ln", "malformed token"); /* trailing bits */
    char *t;
    t = raw("{not json", "{\"sub\":\"a\"}", "c2ln");
    refused(v, t, "malformed token");
    free(t);
    t = raw("[\"HS256\"]", "{\"sub\":\"a\"}", "c2ln");
    refused(v, t, "malformed token");
    free(t);
    t = raw("{\"typ\":\"JWT\"}", "{\"sub\":\"a\"}", "c2ln");
    refused(v, t, "malformed token");
    free(t);
    t = raw("{\"alg\":256}", "{\"sub\":\"a\"}", "c2ln");
    refused(v, t, "malformed token");
    free(t);
    t = raw("{\"alg\":\"HS256\"}", "{\"sub\":\"a\"", "c2ln");
    refused(v, t, "malformed token");
    free(t);
    t = raw("{\"alg\":\"HS256\"}", "\"a\"", "c2ln");
    refused(v, t, "malformed token");
    free(t);
    t = raw("{\"alg\":\"HS256\"}", "{\"sub\":\"a\"} x", "c2ln");
    refused(v, t, "malformed token");
    free(t);
    /* A NUL escape is refused by the JSON parser. */
    t = raw("{\"alg\":\"HS256\"}", "{\"sub\":\"a\\u0000b\"}", "c2ln");
    refused(v, t, "malformed token");
    free(t);
    /* Duplicate members: two parsers could read different claims. */
    t = raw("{\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"sub\":\"admin\"}", "c2ln");
    refused(v, t, "malformed token");
    free(t);
    t = raw("{\"alg\":\"HS256\",\"alg\":\"none\"}", "{\"sub\":\"a\"}", "c2ln");
    refused(v, t, "malformed token");
    free(t);
    /* Size bound, before any parsing. */
    memset(big, 'a', sizeof big);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(token_verify_at(v, big, TOKEN_MAX_BYTES + 1, NOW, &id, &err), -1);
    ck_assert_str_eq(err, "token too large");
    ck_assert_int_eq(token_verify_at(v, "", 0, NOW, &id, &err), -1);
    ck_assert_str_eq(err, "missing token");
    ck_assert_int_eq(token_verify_at(v, NULL, 3, NOW, &id, &err), -1);
    /* A NUL inside the given length is not part of any valid token. */
    ck_assert_int_eq(token_verify_at(v, "a.b\0.c", 6, NOW, &id, &err), -1);
    ck_assert_str_eq(err, "malformed token");
    token_verifier_free(v);
}
END_TEST

START_TEST(test_claims)
{
    token_verifier_t *v = ver(SECRET, NULL, NULL);
    static const struct { const char *claims, *err; } bad[] = {
        { "{}", "missing sub" },
        { "{\"sub\":null}", "missing sub" },
        { "{\"sub\":\"\"}", "invalid sub: must be 1-128 bytes of [A-Za-z0-9._:-]" },
        { "{\"sub\":42}", "invalid sub: must be 1-128 bytes of [A-Za-z0-9._:-]" },
        { "{\"sub\":\"a/b\"}", "invalid sub: must be 1-128 bytes of [A-Za-z0-9._:-]" },
        { "{\"sub\":\"a b\"}", "invalid sub: must be 1-128 bytes of [A-Za-z0-9._:-]" },
        { "{\"sub\":\"a\",\"roles\":\"admin\"}", "invalid roles claim: must be an array of at most 32 role names" },
        { "{\"sub\":\"a\",\"roles\":{\"admin\":true}}", "invalid roles claim: must be an array of at most 32 role names" },
        { "{\"sub\":\"a\",\"roles\":[1]}", "invalid roles claim: a role must be 1-64 bytes of [A-Za-z0-9._:-]" },
        { "{\"sub\":\"a\",\"roles\":[\"\"]}", "invalid roles claim: a role must be 1-64 bytes of [A-Za-z0-9._:-]" },
        { "{\"sub\":\"a\",\"roles\":[\"ad min\"]}", "invalid roles claim: a role must be 1-64 bytes of [A-Za-z0-9._:-]" },
        { "{\"sub\":\"a\",\"roles\":[[\"admin\"]]}", "invalid roles claim: a role must be 1-64 bytes of [A-Za-z0-9._:-]" },
        { "{\"sub\":\"a\",\"channels\":\"chat.*\"}", "invalid channels claim: must be an array of at most 64 patterns" },
        { "{\"sub\":\"a\",\"channels\":null}", "invalid channels claim: must be an array of at most 64 patterns" },
        { "{\"sub\":\"a\",\"channels\":[3]}", "invalid channels claim: a pattern is not a valid channel pattern" },
        { "{\"sub\":\"a\",\"channels\":[\"a*b\"]}", "invalid channels claim: a pattern is not a valid channel pattern" },
        { "{\"sub\":\"a\",\"channels\":[\"ok\",\"\"]}", "invalid channels claim: a pattern is not a valid channel pattern" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *t = mk(JWT_ALG_HS256, SECRET, bad[i].claims);
        refused(v, t, bad[i].err);
        free(t);
    }
    /* Bounds: 128-byte sub ok, 129 not; 32 roles ok, 33 not. */
    char claims[4096], sub[140];
    memset(sub, 'u', 129);
    sub[128] = '\0';
    snprintf(claims, sizeof claims, "{\"sub\":\"%s\"}", sub);
    char *t = mk(JWT_ALG_HS256, SECRET, claims);
    token_identity_free(accepted(v, t, NOW));
    free(t);
    sub[128] = 'u';
    sub[129] = '\0';
    snprintf(claims, sizeof claims, "{\"sub\":\"%s\"}", sub);
    t = mk(JWT_ALG_HS256, SECRET, claims);
    refused(v, t, "invalid sub: must be 1-128 bytes of [A-Za-z0-9._:-]");
    free(t);
    for (int n = 32; n <= 33; n++) {
        size_t o = (size_t)snprintf(claims, sizeof claims, "{\"sub\":\"a\",\"roles\":[");
        for (int i = 0; i < n; i++)
            o += (size_t)snprintf(claims + o, sizeof claims - o, "%s\"r%d\"", i ? "," : "", i);
        snprintf(claims + o, sizeof claims - o, "]}");
        t = mk(JWT_ALG_HS256, SECRET, claims);
        if (n == 32) {
            token_identity_t *id = accepted(v, t, NOW);
            ck_assert_uint_eq(id->nroles, 32);
            token_identity_free(id);
        } else {
            refused(v, t, "invalid roles claim: must be an array of at most 32 role names");
        }
        free(t);
    }
    token_verifier_free(v);
}
END_TEST

START_TEST(test_iss_aud)
{
    token_config_t c;
    const char *err;
    token_config_init(&c);
    c.jwt_secret = SECRET;
    c.issuer = "https://id.example";
    c.audience = "flagcast";
    token_verifier_t *v = token_verifier_new(&c, &err);
    ck_assert_ptr_nonnull(v);
    static const struct { const char *claims, *err; } cases[] = {
        { "{\"sub\":\"a\",\"iss\":\"https://id.example\",\"aud\":\"flagcast\"}", NULL },
        { "{\"sub\":\"a\",\"iss\":\"https://id.example\",\"aud\":[\"x\",\"flagcast\"]}", NULL },
        { "{\"sub\":\"a\",\"aud\":\"flagcast\"}", "wrong issuer" },
        { "{\"sub\":\"a\",\"iss\":\"https://evil.example\",\"aud\":\"flagcast\"}", "wrong issuer" },
        { "{\"sub\":\"a\",\"iss\":[\"https://id.example\"],\"aud\":\"flagcast\"}", "wrong issuer" },
        { "{\"sub\":\"a\",\"iss\":\"https://id.example\"}", "wrong audience" },
        { "{\"sub\":\"a\",\"iss\":\"https://id.example\",\"aud\":\"flagcast2\"}", "wrong audience" },
        { "{\"sub\":\"a\",\"iss\":\"https://id.example\",\"aud\":[\"x\",1]}", "wrong audience" },
        { "{\"sub\":\"a\",\"iss\":\"https://id.example\",\"aud\":[]}", "wrong audience" },
        { "{\"sub\":\"a\",\"iss\":\"https://id.example\",\"aud\":{\"flagcast\":1}}", "wrong audience" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *t = mk(JWT_ALG_HS256, SECRET, cases[i].claims);
        if (cases[i].err)
            refused(v, t, cases[i].err);
        else
            token_identity_free(accepted(v, t, NOW));
        free(t);
    }
    token_verifier_free(v);
    /* Not configured: not checked. */
    v = ver(SECRET, NULL, NULL);
    char *t = mk(JWT_ALG_HS256, SECRET, "{\"sub\":\"a\",\"iss\":\"whoever\",\"aud\":5}");
    token_identity_free(accepted(v, t, NOW));
    free(t);
    token_verifier_free(v);
}
END_TEST

START_TEST(test_api_keys)
{
    token_verifier_t *v = ver(NULL, NULL,
        " k-live-1=svc1 , s3cr.et.key=bob:admin+ops+admin,x=carol:beta ");
    token_identity_t *id;
    const char *err;
    id = accepted(v, "k-live-1", NOW);
    ck_assert_str_eq(id->user, "svc1");
    ck_assert_uint_eq(id->nroles, 0);
    ck_assert(!id->has_channels);
    ck_assert_int_eq(id->expires, 0);
    ck_assert_int_eq(id->source, TOKEN_SRC_API_KEY);
    token_identity_free(id);
    /* A key shaped like a JWT is still a key. */
    id = accepted(v, "s3cr.et.key", NOW);
    ck_assert_str_eq(id->user, "bob");
    ck_assert_uint_eq(id->nroles, 2);
    ck_assert_str_eq(id->roles[0], "admin");
    ck_assert_str_eq(id->roles[1], "ops");
    auth_identity_t aid;
    ck_assert_int_eq(token_identity_admin(id, &aid), 0);
    ck_assert_str_eq(aid.name, "bob");
    ck_assert_int_eq(aid.admin, 1);
    token_identity_free(id);
    id = accepted(v, "x", NOW);
    ck_assert_int_eq(token_identity_admin(id, &aid), -1);
    token_identity_free(id);
    refused(v, "k-live-", "unknown API key");
    refused(v, "k-live-12", "unknown API key");
    refused(v, "K-LIVE-1", "unknown API key");
    refused(v, "svc1", "unknown API key");
    /* JWTs are not configured here. */
    refused(v, "s3cr.et.key2", "JWT authentication is not configured");
    ck_assert_int_eq(token_verify_at(v, "k-live-1\0", 9, NOW, &id, &err), -1);
    token_verifier_free(v);

    /* Keys and JWTs together. */
    v = ver(SECRET, NULL, "key1=dave");
    id = accepted(v, "key1", NOW);
    ck_assert_str_eq(id->user, "dave");
    token_identity_free(id);
    char *t = mk(JWT_ALG_HS256, SECRET, "{\"sub\":\"erin\"}");
    id = accepted(v, t, NOW);
    ck_assert_str_eq(id->user, "erin");
    token_identity_free(id);
    free(t);
    token_verifier_free(v);

    /* Bad lists. */
    static const char *badlists[] = {
        "justakey", "=bob", "k=", "k=bob:", "k=bob:admin+", "k=bob:+admin",
        "k=bo b", "k=b/ob", "k=bob:ad/min", "a=b,a=c", "k\x01=bob",
    };
    for (size_t i = 0; i < sizeof badlists / sizeof badlists[0]; i++) {
        token_config_t c;
        token_config_init(&c);
        c.api_keys = badlists[i];
        err = NULL;
        ck_assert_msg(token_verifier_new(&c, &err) == NULL, "accepted %s", badlists[i]);
        ck_assert_ptr_nonnull(err);
    }
    char longkey[300];
    memset(longkey, 'k', 257);
    strcpy(longkey + 257, "=bob");
    token_config_t c;
    token_config_init(&c);
    c.api_keys = longkey;
    ck_assert_ptr_null(token_verifier_new(&c, &err));
    ck_assert_str_eq(err, "an API key must be 1-256 bytes");
}
END_TEST

START_TEST(test_config)
{
    token_config_t c;
    const char *err;
    token_verifier_t *v;

    token_config_init(&c);
    ck_assert_int_eq(c.leeway, TOKEN_DEFAULT_LEEWAY);
    v = token_verifier_new(&c, &err);
    ck_assert_ptr_nonnull(v);
    ck_assert(!token_verifier_enabled(v));
    refused(v, "anything", "malformed token");
    refused(v, "a.b.c", "JWT authentication is not configured");
    token_verifier_free(v);

    token_config_init(&c);
    c.jwt_secret = "short-secret";
    ck_assert_ptr_null(token_verifier_new(&c, &err));
    ck_assert_str_eq(err, "the JWT secret must be at least 32 bytes (HS256 needs 256 bits)");

    token_config_init(&c);
    c.leeway = -1;
    ck_assert_ptr_null(token_verifier_new(&c, &err));
    c.leeway = TOKEN_MAX_LEEWAY + 1;
    ck_assert_ptr_null(token_verifier_new(&c, &err));

    token_config_init(&c);
    c.jwt_pubkey_file = "/nonexistent/flagcast/pub.pem";
    ck_assert_ptr_null(token_verifier_new(&c, &err));
    ck_assert_str_eq(err, "cannot read the JWT public key file");

    token_config_init(&c);
    c.jwt_pubkey_pem = priv1;
    ck_assert_ptr_null(token_verifier_new(&c, &err));
    ck_assert_str_eq(err, "the JWT public key file holds a private key; give the public key");

    token_config_init(&c);
    c.jwt_pubkey_pem = "hello";
    ck_assert_ptr_null(token_verifier_new(&c, &err));
    ck_assert_str_eq(err, "the JWT public key file holds no PEM public key");

    token_config_init(&c);
    c.jwt_secret = "";
    c.jwt_pubkey_file = "";
    c.api_keys = "";
    v = token_verifier_new(&c, &err);
    ck_assert_ptr_nonnull(v);
    ck_assert(!token_verifier_enabled(v));
    token_verifier_free(v);
    v = ver(SECRET, NULL, NULL);
    ck_assert(token_verifier_enabled(v));
    token_verifier_free(v);
    token_verifier_free(NULL);
}
END_TEST

START_TEST(test_bearer)
{
    const char *t;
    size_t n;
    ck_assert_int_eq(token_bearer("Bearer abc.def", &t, &n), 0);
    ck_assert_uint_eq(n, 7);
    ck_assert_int_eq(strncmp(t, "abc.def", n), 0);
    ck_assert_int_eq(token_bearer("  bearer \t xyz  ", &t, &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(strncmp(t, "xyz", n), 0);
    ck_assert_int_eq(token_bearer("Bearer", &t, &n), -1);
    ck_assert_int_eq(token_bearer("Bearer   ", &t, &n), -1);
    ck_assert_int_eq(token_bearer("Bearerxyz", &t, &n), -1);
    ck_assert_int_eq(token_bearer("Basic eHl6", &t, &n), -1);
    ck_assert_int_eq(token_bearer(NULL, &t, &n), -1);
}
END_TEST

START_TEST(test_admin_adapter)
{
    token_verifier_t *v = ver(SECRET, NULL, NULL);
    auth_identity_t aid;
    char claims[256], user[80];
    char *t = mk(JWT_ALG_HS256, SECRET, "{\"sub\":\"ops-1\",\"roles\":[\"x\",\"admin\"]}");
    token_identity_t *id = accepted(v, t, NOW);
    ck_assert_int_eq(token_identity_admin(id, &aid), 0);
    ck_assert_str_eq(aid.name, "ops-1");
    ck_assert_int_eq(aid.admin, 1);
    token_identity_free(id);
    free(t);
    t = mk(JWT_ALG_HS256, SECRET, "{\"sub\":\"ops-1\",\"roles\":[\"Admin\"]}");
    id = accepted(v, t, NOW);
    ck_assert_int_eq(token_identity_admin(id, &aid), -1);
    token_identity_free(id);
    free(t);
    /* A user that would not fit auth's name unchanged is refused. */
    memset(user, 'a', 65);
    user[65] = '\0';
    snprintf(claims, sizeof claims, "{\"sub\":\"%s\",\"roles\":[\"admin\"]}", user);
    t = mk(JWT_ALG_HS256, SECRET, claims);
    id = accepted(v, t, NOW);
    ck_assert_int_eq(token_identity_admin(id, &aid), -1);
    token_identity_free(id);
    free(t);
    ck_assert_int_eq(token_identity_admin(NULL, &aid), -1);
    ck_assert(!token_identity_has_role(NULL, "admin"));
    token_identity_free(NULL);
    token_verifier_free(v);
}
END_TEST

START_TEST(test_patterns)
{
    const char *err;
    static const char *valid[] = { "*", "chat", "chat.*", "chat*", "team.*.news",
                                   "*:inbox", "a:*:b.*", "*.*", "x-y_z.1" };
    static const char *invalid[] = { "", "a*b", "**", "*a", "a.*b", "chat/*", "a b",
                                     "a.**" };
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
        ck_assert_msg(token_pattern_valid(valid[i], strlen(valid[i]), &err) == 0, "%s", valid[i]);
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        err = NULL;
        ck_assert_msg(token_pattern_valid(invalid[i], strlen(invalid[i]), &err) == -1, "%s", invalid[i]);
        ck_assert_ptr_nonnull(err);
    }
    char big[TOKEN_MAX_PATTERN + 2];
    memset(big, 'a', sizeof big);
    ck_assert_int_eq(token_pattern_valid(big, TOKEN_MAX_PATTERN, &err), 0);
    ck_assert_int_eq(token_pattern_valid(big, TOKEN_MAX_PATTERN + 1, &err), -1);

    static const struct { const char *p, *c; bool m; } cases[] = {
        { "*", "anything.at:all", true },
        { "chat", "chat", true },
        { "chat", "chat2", false },
        { "chat", "cha", false },
        { "chat.*", "chat.room1", true },
        { "chat.*", "chat.a.b", true },
        { "chat.*", "chat.", false },
        { "chat.*", "chat", false },
        { "chat.*", "chatx", false },
        { "chat*", "chat", false },
        { "chat*", "chat2", true },
        { "chat*", "chat.x", true },
        { "team.*.news", "team.a.news", true },
        { "team.*.news", "team.a.b.news", false },
        { "team.*.news", "team..news", false },
        { "team.*.news", "team.a.news2", false },
        { "*:inbox", "x:inbox", true },
        { "*:inbox", "x.y:inbox", false },
        { "*.*", "a.b", true },
        { "*.*", "a.b.c", true },
        { "*.*", "ab", false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(token_pattern_match(cases[i].p, strlen(cases[i].p), cases[i].c,
                                          strlen(cases[i].c)) == cases[i].m,
                      "%s ~ %s", cases[i].p, cases[i].c);
}
END_TEST

/* The option table macro works with common/config: env, then argv. */
START_TEST(test_cfg_opts)
{
    token_config_t c;
    token_config_init(&c);
    const cfg_opt_t opts[] = { TOKEN_CFG_OPTS(c), { 0 } };
    char errbuf[256];
    char *argv[] = { "prog", "--jwt-secret=" SECRET, "--api-keys", "k1=u1", NULL };
    setenv("FLAGCAST_JWT_LEEWAY", "5", 1);
    setenv("FLAGCAST_JWT_AUDIENCE", "aud1", 1);
    ck_assert_int_eq(cfg_parse(opts, 4, argv, "prog", "test", errbuf, sizeof errbuf), 0);
    ck_assert_str_eq(c.jwt_secret, SECRET);
    ck_assert_str_eq(c.api_keys, "k1=u1");
    ck_assert_str_eq(c.audience, "aud1");
    ck_assert_ptr_null(c.issuer);
    ck_assert_int_eq(c.leeway, 5);
    const char *err;
    token_verifier_t *v = token_verifier_new(&c, &err);
    ck_assert_ptr_nonnull(v);
    token_identity_free(accepted(v, "k1", NOW));
    /* FLAGCAST_JWT_REQUIRE_EXP defaults to true: a JWT without exp would
     * never expire and is refused; one with exp is taken. */
    ck_assert(c.require_exp);
    char *noexp = mk(JWT_ALG_HS256, SECRET, "{\"sub\":\"a\",\"aud\":\"aud1\"}"), claims[96];
    snprintf(claims, sizeof claims, "{\"sub\":\"a\",\"aud\":\"aud1\",\"exp\":%ld}", (long)NOW + 60);
    char *withexp = mk(JWT_ALG_HS256, SECRET, claims);
    refused(v, noexp, "token has no exp claim");
    token_identity_free(accepted(v, withexp, NOW));
    token_verifier_free(v);
    setenv("FLAGCAST_JWT_REQUIRE_EXP", "0", 1);
    ck_assert_int_eq(cfg_parse(opts, 4, argv, "prog", "test", errbuf, sizeof errbuf), 0);
    ck_assert(!c.require_exp);
    v = token_verifier_new(&c, &err);
    ck_assert_ptr_nonnull(v);
    token_identity_free(accepted(v, noexp, NOW));
    token_verifier_free(v);
    unsetenv("FLAGCAST_JWT_REQUIRE_EXP");
    free(noexp);
    free(withexp);
    setenv("FLAGCAST_JWT_LEEWAY", "3601", 1);
    ck_assert_int_eq(cfg_parse(opts, 1, argv, "prog", "test", errbuf, sizeof errbuf), -1);
    unsetenv("FLAGCAST_JWT_LEEWAY");
    unsetenv("FLAGCAST_JWT_AUDIENCE");
}
END_TEST

int main(void)
{
    keys_setup();
    Suite *s = suite_create("token");
    TCase *tc = tcase_create("token");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_hs256_valid);
    tcase_add_test(tc, test_rs256_valid_and_wrong_key);
    tcase_add_test(tc, test_time_claims);
    tcase_add_test(tc, test_bad_signature);
    tcase_add_test(tc, test_algorithms);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_claims);
    tcase_add_test(tc, test_iss_aud);
    tcase_add_test(tc, test_api_keys);
    tcase_add_test(tc, test_config);
    tcase_add_test(tc, test_bearer);
    tcase_add_test(tc, test_admin_adapter);
    tcase_add_test(tc, test_patterns);
    tcase_add_test(tc, test_cfg_opts);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    keys_teardown();
    return failed ? 1 : 0;
}
