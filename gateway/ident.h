/*
 * ident — who a client is: the gateway's token verifier and access rules,
 * built once from the settings (common/token.h, gateway/access.h) and shared
 * read-only by every service thread.
 */
#ifndef FLAGCAST_GATEWAY_IDENT_H
#define FLAGCAST_GATEWAY_IDENT_H

#include "common/token.h"
#include "gateway/access.h"
#include "gateway/filter.h"
#include "gateway/gw.h"

/* Builds the token verifier and the access rules from g's settings (auth
 * mode, JWT settings, API keys, private channels); refusals are counted in
 * g's metrics. Call once before the threads
 * start; both are read-only afterwards and shared by every thread.
 * @return 0 on success, -1 with *err set (static message, no secret). */
int  gw_ident_init(gw_t *g, const char **err);
void gw_ident_free(void);
/* The access rules (gateway/access.h); valid after gw_ident_init. */
const access_t *gw_access(void);
/* Verifies a token presented by a client (len bytes) and admits the
 * connection under the auth mode. tok NULL: no token was presented.
 * @return 0 with *id (owned by the caller; NULL: anonymous, or mode off),
 *         or -1 with *e filled (401) and *id NULL. */
int  gw_ident_admit(const char *tok, size_t len, token_identity_t **id, access_error_t *e);
/* Checks every channel f asks for against id's rights (NULL: anonymous).
 * @return 0, or -1 with *e filled and *bad pointing at the refused channel
 *         (inside f). */
int  gw_ident_check_filter(const token_identity_t *id, const filter_t *f,
                           access_error_t *e, const char **bad);
/* Drops from f every channel id may not read (after a change of identity),
 * then adds id's inboxes ("user:<id>", "role:<r>" ...).
 * @return 0, or -1 with *err set (f is then unchanged). */
int  gw_ident_apply(const token_identity_t *id, filter_t *f, const char **err);
/* Unix seconds after which id may no longer be served: exp + leeway
 * (the same rule token_verify applies), or 0 if it never expires. */
long long gw_ident_deadline(const token_identity_t *id);

#endif
