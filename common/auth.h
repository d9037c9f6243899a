/*
 * auth — who is calling: static admin bearer tokens from a comma
 * list (FLAGCAST_ADMIN_TOKENS), each either "token" or "name:token". A token
 * given without a name is known as "admin#<n>" (1-based position). The
 * identity, never the token, is what callers log and put into events.
 *
 * Comparisons are constant-time in the token's content: every configured
 * token is compared in full whatever matches, so timing does not reveal a
 * prefix. API keys and JWTs are verified by common/token.h, whose
 * token_identity_admin() fills the same auth_identity_t for an identity
 * holding the role "admin" (the publisher tries the static tokens first).
 *
 * Ownership: auth_t owns copies of the tokens and wipes them on free.
 */
#ifndef FLAGCAST_AUTH_H
#define FLAGCAST_AUTH_H

#include <stddef.h>

#define AUTH_MAX_TOKENS     256
#define AUTH_MAX_TOKEN_LEN  512
#define AUTH_MAX_NAME_LEN   64

typedef struct auth auth_t;

typedef struct auth_identity {
    char name[AUTH_MAX_NAME_LEN + 8];  /* "ops" or "admin#2" */
    int  admin;                        /* 1 for an admin token */
} auth_identity_t;

/* Parses a comma list; spaces around items are ignored; an empty or NULL
 * list gives an auth_t that refuses everything. A name is the text before
 * the first ':' when it is 1-64 bytes of [A-Za-z0-9_.-]; otherwise the whole
 * item is the token.
 * @return a new auth_t, or NULL with *err set (static message). */
auth_t *auth_new(const char *tokens, const char **err);
void    auth_free(auth_t *a);
/* Number of configured tokens. */
size_t  auth_count(const auth_t *a);

/* Checks a token. @return 0 and fills id on a match, -1 otherwise. */
int auth_check_token(const auth_t *a, const char *tok, size_t len, auth_identity_t *id);
/* The token of an Authorization header comes from token_bearer
 * (common/token.h), the one Bearer parser of both daemons. */

#endif
