/*
 * ident — who a gateway client is, and what that lets it read
 * (issue 4; DESIGN.md "Identity" and "Logical channels").
 *
 * One token verifier (common/token.h) and one access_t (gateway/access.h)
 * are built from the settings before the service threads start and are
 * read-only afterwards, so every service thread verifies and decides with
 * them without a lock. This file holds no per-connection state: gateway/lws/
 * keeps each connection's identity and calls in here to
 *   - verify the token a client presented (Authorization: Bearer, ?token=,
 *     or a WS `auth` message) and admit the connection under FLAGCAST_AUTH
 *     (gw_ident_admit);
 *   - check the channels a request asks for (gw_ident_check_filter): the
 *     first refused one answers 400/403 (SSE) or `error` (WS);
 *   - subscribe the identity's inboxes and drop what a new identity may no
 *     longer read (gw_ident_apply);
 *   - know when a connection's token runs out (gw_ident_deadline), which the
 *     worker's one-second tick enforces.
 *
 * Tokens are secrets: nothing here logs or returns one, and every refusal
 * message is one of token.c's / access.c's static strings.
 */
#include "gateway/ident.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static token_verifier_t *verifier;
static access_t         *rules;
static long              leeway;
static gw_t             *G;   /* the process context, from gw_ident_init */

int gw_ident_init(gw_t *g, const char **err)
{
    G = g;
    access_mode_t mode;

    if (access_mode_parse(G->cfg.auth, &mode, err) != 0)
        return -1;
    rules = access_new(mode, G->cfg.private_channels, err);
    if (rules == NULL)
        return -1;
    leeway = G->cfg.tok.leeway;
    if (mode == ACCESS_AUTH_OFF)
        return 0;   /* tokens are not looked at: the settings are unused */
    verifier = token_verifier_new(&G->cfg.tok, err);
    if (verifier == NULL) {
        access_free(rules);
        rules = NULL;
        return -1;
    }
    if (!token_verifier_enabled(verifier)) {
        if (mode == ACCESS_AUTH_REQUIRED)
            log_warn("no JWT key or API key configured: every client is refused (auth required)",
                     "auth=%s", access_mode_name(mode));
        else
            log_info("no JWT key or API key configured: anonymous clients only, a presented token is refused",
                     "auth=%s", access_mode_name(mode));
    }
    return 0;
}

void gw_ident_free(void)
{
    token_verifier_free(verifier);
    verifier = NULL;
    access_free(rules);
    rules = NULL;
}

const access_t *gw_access(void)
{
    return rules;
}

int gw_ident_admit(const char *tok, size_t len, token_identity_t **id, access_error_t *e)
{
    const char *why = NULL;

    *id = NULL;
    if (!access_uses_tokens(rules))
        return 0;
    if (tok != NULL) {
        if (len == 0)
            return access_token_refused("empty token", e);
        if (token_verify(verifier, tok, len, id, &why) != 0) {
            *id = NULL;
            metric_inc(G->m.auth_refused);
            return access_token_refused(why, e);
        }
    }
    if (access_admit(rules, *id, e) != 0) {
        token_identity_free(*id);
        *id = NULL;
        metric_inc(G->m.auth_refused);
        return -1;
    }
    return 0;
}

int gw_ident_check_filter(const token_identity_t *id, const filter_t *f,
                          access_error_t *e, const char **bad)
{
    return access_check_filter(rules, id, f, e, bad);
}

int gw_ident_apply(const token_identity_t *id, filter_t *f, const char **err)
{
    return access_apply_filter(rules, id, f, err);
}

long long gw_ident_deadline(const token_identity_t *id)
{
    if (id == NULL || id->expires <= 0)
        return 0;
    return id->expires + leeway;
}
