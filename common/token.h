/*
 * token — who a client is: JWTs (HS256, RS256 via libjwt) and static API
 * keys, verified into a token_identity_t (DESIGN.md, "Identity").
 *
 * A token_verifier_t is configured once from a token_config_t and is then
 * read-only, so several threads may verify with it at the same time.
 *
 * JWT rules (what token_verify enforces, in this order):
 *   - at most TOKEN_MAX_BYTES bytes, only base64url characters and exactly
 *     two dots, a non-empty header and payload: else "malformed token";
 *   - the header is a JSON object with a string "alg". "none" is refused
 *     ("algorithm none refused"). "HS256" is accepted only when a secret is
 *     configured, "RS256" only when a public key is; anything else is
 *     "algorithm not allowed". The key is chosen from the header's alg
 *     BEFORE libjwt sees the token, and only the key of that algorithm is
 *     passed, so the RSA public key is never used as an HMAC secret
 *     (algorithm confusion); after verification libjwt's alg is checked
 *     again against the one chosen. A "crit" header is refused;
 *   - header and payload JSON are parsed with duplicate members refused,
 *     so no claim can be read differently by two parsers;
 *   - the signature must verify ("bad signature");
 *   - "exp" and "nbf" (numbers, seconds) are enforced with `leeway`
 *     seconds of tolerance: expired when now >= exp + leeway, not yet
 *     valid when now + leeway < nbf. A token without "exp" is refused when
 *     cfg.require_exp (FLAGCAST_JWT_REQUIRE_EXP, the gateway's default),
 *     else it does not expire;
 *   - "iss" must equal cfg.issuer when one is configured; "aud" (a string
 *     or an array of strings) must contain cfg.audience when configured.
 *
 * Claims → identity:
 *   - "sub" (required): the user id, 1-TOKEN_MAX_USER bytes of
 *     [A-Za-z0-9._:-], so that "user:<sub>" is a valid channel name;
 *   - "roles" (optional): an array of at most TOKEN_MAX_ROLES role names,
 *     each 1-TOKEN_MAX_ROLE bytes of [A-Za-z0-9._:-] (duplicates collapse);
 *   - "channels" (optional): an array of at most TOKEN_MAX_PATTERNS channel
 *     patterns (see token_pattern_valid). When present it restricts the
 *     application channels the identity may read (gateway/access.h);
 *   - "exp": kept as the identity's expiry.
 * A claim of the wrong type is an error, never silently ignored.
 *
 * API keys: cfg.api_keys is "key=user[:role1+role2],..." (spaces around
 * items ignored). A key is 1-TOKEN_MAX_API_KEY bytes of printable ASCII but
 * ',' and '='; user and roles follow the claim rules above. A presented
 * token is compared with every configured key in full (constant time in
 * its content) before a JWT is considered, so timing tells nothing.
 *
 * Error messages are static strings and never contain the token or any
 * part of it; log them freely.
 *
 * Ownership: the verifier owns copies of secret, key and API keys and wipes
 * them on free. token_verify returns an identity the caller owns and frees
 * with token_identity_free.
 */
#ifndef FLAGCAST_TOKEN_H
#define FLAGCAST_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "common/auth.h"
#include "common/config.h"

#define TOKEN_MAX_BYTES        8192   /* a token, bytes */
#define TOKEN_MAX_USER         128    /* sub, bytes */
#define TOKEN_MAX_ROLE         64     /* a role name, bytes */
#define TOKEN_MAX_ROLES        32     /* roles per identity */
#define TOKEN_MAX_PATTERN      200    /* a channel pattern, bytes */
#define TOKEN_MAX_PATTERNS     64     /* channel patterns per identity */
#define TOKEN_MAX_API_KEY      256    /* an API key, bytes */
#define TOKEN_MAX_API_KEYS     1024   /* configured API keys */
#define TOKEN_MIN_SECRET       32     /* HS256 secret, bytes (256 bits) */
#define TOKEN_MAX_PUBKEY       65536  /* PEM file, bytes */
#define TOKEN_DEFAULT_LEEWAY   30     /* seconds */
#define TOKEN_MAX_LEEWAY       3600   /* seconds */

typedef enum token_source {
    TOKEN_SRC_JWT = 1,
    TOKEN_SRC_API_KEY = 2
} token_source_t;

/* A verified identity. All strings are NUL-terminated and owned by it. */
typedef struct token_identity {
    char          *user;          /* "sub", or the API key's user */
    char         **roles;         /* nroles role names */
    size_t         nroles;
    char         **channels;      /* nchannels patterns (claim "channels") */
    size_t         nchannels;
    bool           has_channels;  /* the claim was present (even if empty) */
    long long      expires;       /* "exp", unix seconds; 0: never */
    token_source_t source;
} token_identity_t;

typedef struct token_config {
    const char *jwt_secret;       /* FLAGCAST_JWT_SECRET; NULL/"": no HS256 */
    const char *jwt_pubkey_file;  /* FLAGCAST_JWT_PUBKEY (PEM); NULL/"": no RS256 */
    const char *jwt_pubkey_pem;   /* or the PEM text itself (wins over the file) */
    long        leeway;           /* FLAGCAST_JWT_LEEWAY, 0-3600 seconds */
    const char *issuer;           /* FLAGCAST_JWT_ISSUER; NULL/"": not checked */
    const char *audience;         /* FLAGCAST_JWT_AUDIENCE; NULL/"": not checked */
    const char *api_keys;         /* FLAGCAST_API_KEYS; NULL/"": none */
    bool        require_exp;      /* FLAGCAST_JWT_REQUIRE_EXP: a JWT without exp
                                   * is refused (it would never expire);
                                   * token_config_init: false, the gateway's
                                   * option default: true */
} token_config_t;

/* The settings as cfg_opt_t entries (common/config.h) pointing into a
 * token_config_t, for a daemon's option table: call token_config_init(&c)
 * first, then list TOKEN_CFG_OPTS(c) among the daemon's entries. Leaves
 * FLAGCAST_AUTH and FLAGCAST_PRIVATE_CHANNELS (gateway only) to the daemon. */
#define TOKEN_CFG_OPTS(c)                                                          \
    { "jwt-secret", "FLAGCAST_JWT_SECRET", CFG_STR, NULL,                          \
      "HS256 shared secret for client JWTs (at least 32 bytes)",                   \
      &(c).jwt_secret, 0, 0 },                                                     \
    { "jwt-pubkey", "FLAGCAST_JWT_PUBKEY", CFG_STR, NULL,                          \
      "PEM public key file for RS256 client JWTs", &(c).jwt_pubkey_file, 0, 0 },   \
    { "jwt-leeway", "FLAGCAST_JWT_LEEWAY", CFG_INT, "30",                          \
      "seconds of clock skew allowed on exp and nbf", &(c).leeway, 0, 3600 },      \
    { "jwt-issuer", "FLAGCAST_JWT_ISSUER", CFG_STR, NULL,                          \
      "required JWT iss (unset: not checked)", &(c).issuer, 0, 0 },                \
    { "jwt-audience", "FLAGCAST_JWT_AUDIENCE", CFG_STR, NULL,                      \
      "required JWT aud (unset: not checked)", &(c).audience, 0, 0 },              \
    { "api-keys", "FLAGCAST_API_KEYS", CFG_STR, NULL,                              \
      "static API keys: key=user[:role1+role2],...", &(c).api_keys, 0, 0 },        \
    { "jwt-require-exp", "FLAGCAST_JWT_REQUIRE_EXP", CFG_BOOL, "true",             \
      "refuse a JWT without an exp claim (it would never expire)",                 \
      &(c).require_exp, 0, 0 }

typedef struct token_verifier token_verifier_t;

/* Sets cfg to the defaults: nothing configured, leeway 30 s. */
void token_config_init(token_config_t *cfg);

/* Builds a verifier. Refuses a secret shorter than TOKEN_MIN_SECRET, a key
 * file that cannot be read or holds no PEM public key (a private key is
 * refused with its own message), a bad leeway, a malformed or duplicate API
 * key. A verifier with nothing configured refuses every token.
 * @return a new verifier, or NULL with *err set (static message). */
token_verifier_t *token_verifier_new(const token_config_t *cfg, const char **err);
void token_verifier_free(token_verifier_t *v);
/* true when at least one way of authenticating is configured. */
bool token_verifier_enabled(const token_verifier_t *v);

/* Verifies len bytes of tok (no NUL needed) at the current time.
 * @return 0 and *out (caller frees), or -1 with *err set and *out NULL. */
int token_verify(const token_verifier_t *v, const char *tok, size_t len,
                 token_identity_t **out, const char **err);
/* Same, at the given unix time (tests). */
int token_verify_at(const token_verifier_t *v, const char *tok, size_t len,
                    time_t now, token_identity_t **out, const char **err);

/* Finds the token in an Authorization header value "Bearer <token>"
 * (scheme case-insensitive, spaces around ignored).
 * @return 0 with *tok and *len pointing into header, -1 if not a bearer value. */
int token_bearer(const char *header, const char **tok, size_t *len);

void token_identity_free(token_identity_t *id);
/* @return true if id holds role (exact match). */
bool token_identity_has_role(const token_identity_t *id, const char *role);
/* Adapter to the admin auth (common/auth.h): an identity holding the role
 * "admin" is an admin named after its user.
 * @return 0 and fills out, -1 if id is not an admin or its user is longer
 *         than AUTH_MAX_NAME_LEN (the name would not fit unchanged). */
int token_identity_admin(const token_identity_t *id, auth_identity_t *out);

/* Channel patterns (the "channels" claim, FLAGCAST_PRIVATE_CHANNELS):
 * 1-TOKEN_MAX_PATTERN bytes of [A-Za-z0-9._:-*] where each '*' is either
 *   - the last byte: it matches any non-empty rest ("chat.*" matches
 *     "chat.room1" and "chat.a.b", not "chat." or "chat"; "news*" matches
 *     "news2"; "*" alone matches every channel), or
 *   - a whole segment between '.'/':' separators ("team.*.news",
 *     "*:inbox"): it matches one non-empty run without '.' or ':'.
 * Any other '*' ("a*b", "**") makes the pattern invalid. A pattern without
 * '*' matches exactly itself.
 * @return 0 if valid, -1 with *err set. */
int  token_pattern_valid(const char *p, size_t len, const char **err);
/* @return true if the (valid) pattern p matches channel c. */
bool token_pattern_match(const char *p, size_t plen, const char *c, size_t clen);

#endif
