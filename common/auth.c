/*
 * auth — static bearer tokens, compared in constant time.
 *
 * The check walks every configured token and compares AUTH_MAX_TOKEN_LEN
 * bytes each time (both sides zero-padded), OR-ing the differences, so the
 * time taken depends only on the number of tokens, not on how much of a
 * guess is right.
 */
#include "common/auth.h"
#include "common/textlist.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct auth_token {
    char   name[AUTH_MAX_NAME_LEN + 8];
    char   tok[AUTH_MAX_TOKEN_LEN];   /* zero-padded */
    size_t len;
} auth_token_t;

struct auth {
    auth_token_t *tokens;
    size_t        n;
};

static int name_ok(const char *s, size_t n)
{
    if (n == 0 || n > AUTH_MAX_NAME_LEN)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '_' && c != '.' && c != '-')
            return 0;
    }
    return 1;
}

auth_t *auth_new(const char *list, const char **err)
{
    auth_t *a = calloc(1, sizeof(*a));
    const char *p = list;

    if (a == NULL) {
        *err = "out of memory";
        return NULL;
    }
    if (list == NULL)
        return a;
    a->tokens = calloc(AUTH_MAX_TOKENS, sizeof(*a->tokens));
    if (a->tokens == NULL) {
        free(a);
        *err = "out of memory";
        return NULL;
    }
    const char *start;
    size_t ilen;
    while (textlist_next(&p, &start, &ilen)) {
        const char *end = start + ilen, *colon;
        size_t len;
        if (a->n == AUTH_MAX_TOKENS) {
            *err = "too many admin tokens (at most 256)";
            auth_free(a);
            return NULL;
        }
        auth_token_t *t = &a->tokens[a->n];
        colon = memchr(start, ':', (size_t)(end - start));
        if (colon && colon + 1 < end && name_ok(start, (size_t)(colon - start))) {
            snprintf(t->name, sizeof(t->name), "%.*s", (int)(colon - start), start);
            start = colon + 1;
        } else {
            snprintf(t->name, sizeof(t->name), "admin#%zu", a->n + 1);
        }
        len = (size_t)(end - start);
        if (len == 0 || len > AUTH_MAX_TOKEN_LEN) {
            *err = len ? "an admin token is longer than 512 bytes" : "an admin token is empty";
            auth_free(a);
            return NULL;
        }
        for (size_t i = 0; i < len; i++) {
            if ((unsigned char)start[i] <= ' ' || (unsigned char)start[i] == 0x7f) {
                *err = "an admin token contains a space or control character";
                auth_free(a);
                return NULL;
            }
        }
        memcpy(t->tok, start, len);
        t->len = len;
        a->n++;
    }
    return a;
}

void auth_free(auth_t *a)
{
    if (a == NULL)
        return;
    if (a->tokens) {
        /* volatile: keep the compiler from dropping the wipe. */
        volatile char *v = (volatile char *)a->tokens;
        for (size_t i = 0; i < AUTH_MAX_TOKENS * sizeof(auth_token_t); i++)
            v[i] = 0;
    }
    free(a->tokens);
    free(a);
}

size_t auth_count(const auth_t *a)
{
    return a ? a->n : 0;
}

int auth_check_token(const auth_t *a, const char *tok, size_t len, auth_identity_t *id)
{
    int found = -1;
    if (a == NULL || tok == NULL || len == 0 || len > AUTH_MAX_TOKEN_LEN)
        return -1;
    for (size_t i = 0; i < a->n; i++) {
        const auth_token_t *t = &a->tokens[i];
        int match = textlist_secret_equal(tok, len, t->tok, t->len, AUTH_MAX_TOKEN_LEN);
        /* Branch-free select of the first match. */
        found = (found < 0 && match) ? (int)i : found;
    }
    if (found < 0)
        return -1;
    if (id) {
        snprintf(id->name, sizeof(id->name), "%s", a->tokens[found].name);
        id->admin = 1;
    }
    return 0;
}
