/*
 * token — JWT and API-key verification (see token.h for the rules).
 *
 * libjwt 1.10 verifies a token with whatever key it is given, according to
 * the alg named in the token's own header, and it checks no claim. So the
 * work is split: this file first checks the token's shape, decodes header
 * and payload itself (jansson, duplicates refused) and picks the one key
 * that belongs to the header's alg; libjwt then only checks the signature;
 * the claims are read from this file's own parse of the very bytes that
 * were signed. Nothing in the token can choose which key is used for what.
 *
 * API keys are compared like common/auth.c compares admin tokens: every key
 * in full, zero-padded to TOKEN_MAX_API_KEY, differences OR-ed together.
 */
#include "common/token.h"
#include "common/textlist.h"

#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct token_apikey {
    char   key[TOKEN_MAX_API_KEY];    /* zero-padded */
    size_t len;
    char   user[TOKEN_MAX_USER + 1];
    char   roles[TOKEN_MAX_ROLES][TOKEN_MAX_ROLE + 1];
    size_t nroles;
} token_apikey_t;

struct token_verifier {
    unsigned char  *secret;     /* HS256, or NULL */
    size_t          secret_len;
    unsigned char  *pubkey;     /* RS256 PEM, or NULL */
    size_t          pubkey_len;
    long            leeway;
    bool            require_exp;
    char           *issuer;     /* or NULL */
    char           *audience;   /* or NULL */
    token_apikey_t *keys;
    size_t          nkeys;
};

/* ==== small helpers ===================================================== */

static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

static int is_name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' || c == '-';
}

/* 1-max bytes of channel-name characters. */
static int name_ok(const char *s, size_t n, size_t max)
{
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_name_char((unsigned char)s[i]))
            return 0;
    return 1;
}

static int b64url_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

/* Decodes unpadded base64url into out (at least n*3/4+1 bytes).
 * @return the decoded length, or -1 on a bad character or length. */
static long b64url_decode(const char *s, size_t n, unsigned char *out)
{
    uint32_t acc = 0;
    int bits = 0;
    long o = 0;
    if (n % 4 == 1)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_val((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    /* Leftover bits must be zero (canonical encoding). */
    if (bits && (acc & ((1u << bits) - 1)))
        return -1;
    return o;
}

/* Decodes one base64url part into a JSON object (duplicates refused). */
static json_t *part_json(const char *s, size_t n)
{
    unsigned char *buf = malloc(n * 3 / 4 + 1);
    json_t *js;
    long len;
    if (buf == NULL)
        return NULL;
    len = b64url_decode(s, n, buf);
    if (len <= 0) {
        free(buf);
        return NULL;
    }
    js = json_loadb((const char *)buf, (size_t)len,
                    JSON_REJECT_DUPLICATES, NULL);
    free(buf);
    if (js && !json_is_object(js)) {
        json_decref(js);
        return NULL;
    }
    return js;
}

static char *dupn(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* ==== identity =========================================================== */

void token_identity_free(token_identity_t *id)
{
    if (id == NULL)
        return;
    free(id->user);
    for (size_t i = 0; i < id->nroles; i++)
        free(id->roles[i]);
    free(id->roles);
    for (size_t i = 0; i < id->nchannels; i++)
        free(id->channels[i]);
    free(id->channels);
    free(id);
}

bool token_identity_has_role(const token_identity_t *id, const char *role)
{
    if (id == NULL || role == NULL)
        return false;
    for (size_t i = 0; i < id->nroles; i++)
        if (strcmp(id->roles[i], role) == 0)
            return true;
    return false;
}

int token_identity_admin(const token_identity_t *id, auth_identity_t *out)
{
    size_t n;
    if (id == NULL || id->user == NULL || !token_identity_has_role(id, "admin"))
        return -1;
    n = strlen(id->user);
    if (n == 0 || n > AUTH_MAX_NAME_LEN)
        return -1;
    if (out) {
        memcpy(out->name, id->user, n + 1);
        out->admin = 1;
    }
    return 0;
}

/* Adds a role unless already held. @return 0, -1 on ENOMEM. */
static int add_role(token_identity_t *id, const char *r, size_t n)
{
    for (size_t i = 0; i < id->nroles; i++)
        if (strlen(id->roles[i]) == n && memcmp(id->roles[i], r, n) == 0)
            return 0;
    if ((id->roles[id->nroles] = dupn(r, n)) == NULL)
        return -1;
    id->nroles++;
    return 0;
}

static token_identity_t *identity_new(const char *user, size_t n, token_source_t src)
{
    token_identity_t *id = calloc(1, sizeof(*id));
    if (id == NULL)
        return NULL;
    id->source = src;
    id->user = dupn(user, n);
    id->roles = calloc(TOKEN_MAX_ROLES, sizeof(char *));
    if (id->user == NULL || id->roles == NULL) {
        token_identity_free(id);
        return NULL;
    }
    return id;
}

/* ==== channel patterns =================================================== */

static int is_sep(char c)
{
    return c == '.' || c == ':';
}

int token_pattern_valid(const char *p, size_t len, const char **err)
{
    if (len == 0 || len > TOKEN_MAX_PATTERN) {
        *err = "a channel pattern must be 1-200 bytes";
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '*') {
            if (i + 1 == len)
                continue;
            if ((i == 0 || is_sep(p[i - 1])) && is_sep(p[i + 1]))
                continue;
            *err = "'*' in a channel pattern must be last or a whole segment";
            return -1;
        }
        if (!is_name_char((unsigned char)p[i])) {
            *err = "a channel pattern has a character outside [A-Za-z0-9._:-*]";
            return -1;
        }
    }
    return 0;
}

bool token_pattern_match(const char *p, size_t plen, const char *c, size_t clen)
{
    size_t i = 0, j = 0;
    while (i < plen) {
        if (p[i] == '*') {
            if (i + 1 == plen)
                return j < clen;           /* any non-empty rest */
            size_t k = j;
            while (k < clen && !is_sep(c[k]))
                k++;
            if (k == j)
                return false;              /* a segment is non-empty */
            j = k;
            i++;
            continue;
        }
        if (j >= clen || p[i] != c[j])
            return false;
        i++;
        j++;
    }
    return j == clen;
}

/* ==== configuration ====================================================== */

void token_config_init(token_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->leeway = TOKEN_DEFAULT_LEEWAY;
}

static int set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static int read_file(const char *path, unsigned char **out, size_t *outlen, const char **err)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    size_t n;
    if (f == NULL) {
        *err = "cannot read the JWT public key file";
        return -1;
    }
    buf = malloc(TOKEN_MAX_PUBKEY + 1);
    if (buf == NULL) {
        fclose(f);
        *err = "out of memory";
        return -1;
    }
    n = fread(buf, 1, TOKEN_MAX_PUBKEY + 1, f);
    if (ferror(f)) {
        fclose(f);
        free(buf);
        *err = "cannot read the JWT public key file";
        return -1;
    }
    fclose(f);
    if (n > TOKEN_MAX_PUBKEY) {
        free(buf);
        *err = "the JWT public key file is larger than 64 KiB";
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    *outlen = n;
    return 0;
}

static int pem_check(const unsigned char *pem, size_t n, const char **err)
{
    if (memchr(pem, '\0', n) != NULL) {
        *err = "the JWT public key is not PEM text";
        return -1;
    }
    if (strstr((const char *)pem, "PRIVATE KEY-----")) {
        *err = "the JWT public key file holds a private key; give the public key";
        return -1;
    }
    if (!strstr((const char *)pem, "-----BEGIN PUBLIC KEY-----") &&
        !strstr((const char *)pem, "-----BEGIN RSA PUBLIC KEY-----")) {
        *err = "the JWT public key file holds no PEM public key";
        return -1;
    }
    return 0;
}

/* Parses "user[:role1+role2]" (n bytes) into k. */
static int apikey_identity(token_apikey_t *k, const char *s, size_t n, const char **err)
{
    const char *colon = memchr(s, ':', n);
    size_t ulen = colon ? (size_t)(colon - s) : n;
    /* A user may contain ':' in a JWT sub, but here the first ':' starts
     * the roles; say so rather than guess. */
    if (!name_ok(s, ulen, TOKEN_MAX_USER)) {
        *err = "an API key's user must be 1-128 bytes of [A-Za-z0-9._-]";
        return -1;
    }
    memcpy(k->user, s, ulen);
    k->user[ulen] = '\0';
    if (colon == NULL)
        return 0;
    const char *p = colon + 1, *end = s + n;
    if (p == end) {
        *err = "an API key has ':' but no roles";
        return -1;
    }
    while (p <= end) {
        const char *plus = memchr(p, '+', (size_t)(end - p));
        const char *re = plus ? plus : end;
        size_t rl = (size_t)(re - p);
        if (!name_ok(p, rl, TOKEN_MAX_ROLE)) {
            *err = "an API key's role must be 1-64 bytes of [A-Za-z0-9._:-]";
            return -1;
        }
        int dup = 0;
        for (size_t i = 0; i < k->nroles; i++)
            if (strlen(k->roles[i]) == rl && memcmp(k->roles[i], p, rl) == 0)
                dup = 1;
        if (!dup) {
            if (k->nroles == TOKEN_MAX_ROLES) {
                *err = "an API key has more than 32 roles";
                return -1;
            }
            memcpy(k->roles[k->nroles], p, rl);
            k->roles[k->nroles][rl] = '\0';
            k->nroles++;
        }
        p = re + 1;
    }
    return 0;
}

static int parse_api_keys(token_verifier_t *v, const char *list, const char **err)
{
    const char *p = list;
    v->keys = calloc(TOKEN_MAX_API_KEYS, sizeof(*v->keys));
    if (v->keys == NULL) {
        *err = "out of memory";
        return -1;
    }
    const char *start;
    size_t ilen;
    while (textlist_next(&p, &start, &ilen)) {
        const char *end = start + ilen, *eq;
        if (v->nkeys == TOKEN_MAX_API_KEYS) {
            *err = "too many API keys (at most 1024)";
            return -1;
        }
        eq = memchr(start, '=', (size_t)(end - start));
        if (eq == NULL) {
            *err = "an API key item is not key=user[:role1+role2]";
            return -1;
        }
        size_t klen = (size_t)(eq - start);
        if (klen == 0 || klen > TOKEN_MAX_API_KEY) {
            *err = "an API key must be 1-256 bytes";
            return -1;
        }
        for (size_t i = 0; i < klen; i++) {
            unsigned char c = (unsigned char)start[i];
            if (c <= ' ' || c >= 0x7f) {
                *err = "an API key contains a space, control or non-ASCII byte";
                return -1;
            }
        }
        for (size_t i = 0; i < v->nkeys; i++) {
            if (v->keys[i].len == klen && memcmp(v->keys[i].key, start, klen) == 0) {
                *err = "an API key is listed twice";
                return -1;
            }
        }
        token_apikey_t *k = &v->keys[v->nkeys];
        if (apikey_identity(k, eq + 1, (size_t)(end - eq - 1), err) < 0)
            return -1;
        memcpy(k->key, start, klen);
        k->len = klen;
        v->nkeys++;
    }
    return 0;
}

token_verifier_t *token_verifier_new(const token_config_t *cfg, const char **err)
{
    token_verifier_t *v = calloc(1, sizeof(*v));
    if (v == NULL) {
        *err = "out of memory";
        return NULL;
    }
    if (cfg->leeway < 0 || cfg->leeway > TOKEN_MAX_LEEWAY) {
        *err = "the JWT leeway must be 0-3600 seconds";
        goto fail;
    }
    v->leeway = cfg->leeway;
    v->require_exp = cfg->require_exp;
    if (set(cfg->jwt_secret)) {
        v->secret_len = strlen(cfg->jwt_secret);
        if (v->secret_len < TOKEN_MIN_SECRET) {
            *err = "the JWT secret must be at least 32 bytes (HS256 needs 256 bits)";
            goto fail;
        }
        if ((v->secret = (unsigned char *)dupn(cfg->jwt_secret, v->secret_len)) == NULL) {
            *err = "out of memory";
            goto fail;
        }
    }
    if (set(cfg->jwt_pubkey_pem)) {
        v->pubkey_len = strlen(cfg->jwt_pubkey_pem);
        if (v->pubkey_len > TOKEN_MAX_PUBKEY) {
            *err = "the JWT public key is larger than 64 KiB";
            goto fail;
        }
        if ((v->pubkey = (unsigned char *)dupn(cfg->jwt_pubkey_pem, v->pubkey_len)) == NULL) {
            *err = "out of memory";
            goto fail;
        }
    } else if (set(cfg->jwt_pubkey_file)) {
        if (read_file(cfg->jwt_pubkey_file, &v->pubkey, &v->pubkey_len, err) < 0)
            goto fail;
    }
    if (v->pubkey && pem_check(v->pubkey, v->pubkey_len, err) < 0)
        goto fail;
    if (set(cfg->issuer) && (v->issuer = strdup(cfg->issuer)) == NULL) {
        *err = "out of memory";
        goto fail;
    }
    if (set(cfg->audience) && (v->audience = strdup(cfg->audience)) == NULL) {
        *err = "out of memory";
        goto fail;
    }
    if (set(cfg->api_keys) && parse_api_keys(v, cfg->api_keys, err) < 0)
        goto fail;
    return v;
fail:
    token_verifier_free(v);
    return NULL;
}

void token_verifier_free(token_verifier_t *v)
{
    if (v == NULL)
        return;
    if (v->secret) {
        wipe(v->secret, v->secret_len);
        free(v->secret);
    }
    free(v->pubkey);
    free(v->issuer);
    free(v->audience);
    if (v->keys) {
        wipe(v->keys, TOKEN_MAX_API_KEYS * sizeof(*v->keys));
        free(v->keys);
    }
    free(v);
}

bool token_verifier_enabled(const token_verifier_t *v)
{
    return v != NULL && (v->secret || v->pubkey || v->nkeys);
}

/* ==== verification ======================================================= */

int token_bearer(const char *h, const char **tok, size_t *len)
{
    size_t n;
    if (h == NULL)
        return -1;
    while (*h == ' ' || *h == '\t')
        h++;
    if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
        return -1;
    h += 6;
    while (*h == ' ' || *h == '\t')
        h++;
    n = strlen(h);
    while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
        n--;
    if (n == 0)
        return -1;
    *tok = h;
    *len = n;
    return 0;
}

/* Constant-time lookup. @return the key's index or -1. */
static long apikey_find(const token_verifier_t *v, const char *tok, size_t len)
{
    long found = -1;
    if (len == 0 || len > TOKEN_MAX_API_KEY)
        return -1;
    for (size_t i = 0; i < v->nkeys; i++) {
        const token_apikey_t *k = &v->keys[i];
        int match = textlist_secret_equal(tok, len, k->key, k->len, TOKEN_MAX_API_KEY);
        found = (found < 0 && match) ? (long)i : found;
    }
    return found;
}

static token_identity_t *apikey_identity_new(const token_apikey_t *k)
{
    token_identity_t *id = identity_new(k->user, strlen(k->user), TOKEN_SRC_API_KEY);
    if (id == NULL)
        return NULL;
    for (size_t i = 0; i < k->nroles; i++) {
        if (add_role(id, k->roles[i], strlen(k->roles[i])) < 0) {
            token_identity_free(id);
            return NULL;
        }
    }
    return id;
}

/* A NumericDate: an integer or a finite real, in seconds. */
static int numeric_date(json_t *j, long long *out)
{
    if (json_is_integer(j)) {
        *out = (long long)json_integer_value(j);
        return 0;
    }
    if (json_is_real(j)) {
        double d = json_real_value(j);
        if (!(d > -9.2e18 && d < 9.2e18))
            return -1;
        *out = (long long)d;
        return 0;
    }
    return -1;
}

/* Checks the claims of a verified payload and builds the identity. */
static int claims(const token_verifier_t *v, json_t *pl, time_t now,
                  token_identity_t **out, const char **err)
{
    json_t *j;
    long long exp = 0, nbf = 0;
    long long t = (long long)now;

    if ((j = json_object_get(pl, "exp")) != NULL) {
        if (numeric_date(j, &exp) < 0) {
            *err = "malformed exp claim";
            return -1;
        }
        if (t - v->leeway >= exp) {
            *err = "token expired";
            return -1;
        }
    } else if (v->require_exp) {
        *err = "token has no exp claim";
        return -1;
    }
    if ((j = json_object_get(pl, "nbf")) != NULL) {
        if (numeric_date(j, &nbf) < 0) {
            *err = "malformed nbf claim";
            return -1;
        }
        if (t + v->leeway < nbf) {
            *err = "token not yet valid";
            return -1;
        }
    }
    if (v->issuer) {
        j = json_object_get(pl, "iss");
        if (!json_is_string(j) || strcmp(json_string_value(j), v->issuer) != 0) {
            *err = "wrong issuer";
            return -1;
        }
    }
    if (v->audience) {
        int ok = 0;
        j = json_object_get(pl, "aud");
        if (json_is_string(j)) {
            ok = strcmp(json_string_value(j), v->audience) == 0;
        } else if (json_is_array(j)) {
            size_t i;
            json_t *a;
            json_array_foreach(j, i, a) {
                if (json_is_string(a) && strcmp(json_string_value(a), v->audience) == 0)
                    ok = 1;
            }
        }
        if (!ok) {
            *err = "wrong audience";
            return -1;
        }
    }

    j = json_object_get(pl, "sub");
    if (j == NULL || json_is_null(j)) {
        *err = "missing sub";
        return -1;
    }
    if (!json_is_string(j) ||
        !name_ok(json_string_value(j), json_string_length(j), TOKEN_MAX_USER)) {
        *err = "invalid sub: must be 1-128 bytes of [A-Za-z0-9._:-]";
        return -1;
    }
    token_identity_t *id = identity_new(json_string_value(j), json_string_length(j),
                                        TOKEN_SRC_JWT);
    if (id == NULL) {
        *err = "out of memory";
        return -1;
    }
    id->expires = exp;

    if ((j = json_object_get(pl, "roles")) != NULL) {
        size_t i;
        json_t *r;
        if (!json_is_array(j) || json_array_size(j) > TOKEN_MAX_ROLES) {
            *err = "invalid roles claim: must be an array of at most 32 role names";
            goto fail;
        }
        json_array_foreach(j, i, r) {
            if (!json_is_string(r) ||
                !name_ok(json_string_value(r), json_string_length(r), TOKEN_MAX_ROLE)) {
                *err = "invalid roles claim: a role must be 1-64 bytes of [A-Za-z0-9._:-]";
                goto fail;
            }
            if (add_role(id, json_string_value(r), json_string_length(r)) < 0) {
                *err = "out of memory";
                goto fail;
            }
        }
    }
    if ((j = json_object_get(pl, "channels")) != NULL) {
        size_t i, n;
        json_t *c;
        if (!json_is_array(j) || (n = json_array_size(j)) > TOKEN_MAX_PATTERNS) {
            *err = "invalid channels claim: must be an array of at most 64 patterns";
            goto fail;
        }
        id->has_channels = true;
        if (n && (id->channels = calloc(n, sizeof(char *))) == NULL) {
            *err = "out of memory";
            goto fail;
        }
        json_array_foreach(j, i, c) {
            const char *perr;
            if (!json_is_string(c) ||
                token_pattern_valid(json_string_value(c), json_string_length(c), &perr) < 0) {
                *err = "invalid channels claim: a pattern is not a valid channel pattern";
                goto fail;
            }
            if ((id->channels[i] = dupn(json_string_value(c), json_string_length(c))) == NULL) {
                *err = "out of memory";
                goto fail;
            }
            id->nchannels++;
        }
    }
    *out = id;
    return 0;
fail:
    token_identity_free(id);
    return -1;
}

static int verify_jwt(const token_verifier_t *v, const char *tok, size_t len,
                      time_t now, token_identity_t **out, const char **err)
{
    const char *d1, *d2;
    json_t *hdr = NULL, *pl = NULL, *a;
    const unsigned char *key;
    size_t keylen;
    jwt_alg_t alg;
    jwt_t *jwt = NULL;
    char *copy = NULL;
    int rc = -1;

    for (size_t i = 0; i < len; i++) {
        if (tok[i] != '.' && b64url_val((unsigned char)tok[i]) < 0) {
            *err = "malformed token";
            return -1;
        }
    }
    d1 = memchr(tok, '.', len);
    d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok)) : NULL;
    if (d1 == NULL || d2 == NULL || d1 == tok || d2 == d1 + 1 ||
        memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)) != NULL) {
        *err = "malformed token";
        return -1;
    }
    hdr = part_json(tok, (size_t)(d1 - tok));
    if (hdr == NULL) {
        *err = "malformed token";
        goto done;
    }
    a = json_object_get(hdr, "alg");
    if (!json_is_string(a)) {
        *err = "malformed token";
        goto done;
    }
    if (strcasecmp(json_string_value(a), "none") == 0) {
        *err = "algorithm none refused";
        goto done;
    }
    if (strcmp(json_string_value(a), "HS256") == 0 && v->secret) {
        alg = JWT_ALG_HS256;
        key = v->secret;
        keylen = v->secret_len;
    } else if (strcmp(json_string_value(a), "RS256") == 0 && v->pubkey) {
        alg = JWT_ALG_RS256;
        key = v->pubkey;
        keylen = v->pubkey_len;
    } else {
        *err = "algorithm not allowed";
        goto done;
    }
    if (json_object_get(hdr, "crit") != NULL) {
        *err = "unsupported critical header";
        goto done;
    }
    pl = part_json(d1 + 1, (size_t)(d2 - d1 - 1));
    if (pl == NULL) {
        *err = "malformed token";
        goto done;
    }
    if (d2 + 1 == tok + len) {
        *err = "bad signature";
        goto done;
    }
    if ((copy = dupn(tok, len)) == NULL) {
        *err = "out of memory";
        goto done;
    }
    errno = 0;
    if (jwt_decode(&jwt, copy, key, (int)keylen) != 0 || jwt == NULL) {
        *err = errno == ENOMEM ? "out of memory" : "bad signature";
        goto done;
    }
    if (jwt_get_alg(jwt) != alg) {
        *err = "algorithm not allowed";
        goto done;
    }
    rc = claims(v, pl, now, out, err);
done:
    if (jwt)
        jwt_free(jwt);
    if (copy) {
        wipe(copy, len);
        free(copy);
    }
    json_decref(hdr);
    json_decref(pl);
    return rc;
}

int token_verify_at(const token_verifier_t *v, const char *tok, size_t len,
                    time_t now, token_identity_t **out, const char **err)
{
    long k;
    *out = NULL;
    if (v == NULL || tok == NULL || len == 0) {
        *err = "missing token";
        return -1;
    }
    if (len > TOKEN_MAX_BYTES) {
        *err = "token too large";
        return -1;
    }
    if (v->nkeys && (k = apikey_find(v, tok, len)) >= 0) {
        if ((*out = apikey_identity_new(&v->keys[k])) == NULL) {
            *err = "out of memory";
            return -1;
        }
        return 0;
    }
    if (memchr(tok, '.', len) == NULL) {
        *err = v->nkeys ? "unknown API key" : "malformed token";
        return -1;
    }
    if (!v->secret && !v->pubkey) {
        *err = "JWT authentication is not configured";
        return -1;
    }
    return verify_jwt(v, tok, len, now, out, err);
}

int token_verify(const token_verifier_t *v, const char *tok, size_t len,
                 token_identity_t **out, const char **err)
{
    return token_verify_at(v, tok, len, time(NULL), out, err);
}
