/*
 * access — what a gateway connection may read, given its identity
 * (common/token.h) or none, and the auth mode (DESIGN.md, "Identity" and
 * "Logical channels"). Pure decisions, no I/O; the glue asks, then acts.
 *
 * Modes (FLAGCAST_AUTH):
 *   off       tokens are not looked at, not even verified; every connection
 *             is anonymous (an identity passed in is ignored).
 *   optional  a connection without a token is anonymous; a token that is
 *             given must verify, else the connection is refused (401) —
 *             a bad token never silently downgrades to anonymous.
 *   required  a connection must present a valid token (401 otherwise). A
 *             WebSocket may send it as its first `auth` message within the
 *             glue's deadline; until then it is served nothing.
 *
 * What may be read (access_check_channel):
 *   flags        everyone admitted, anonymous included. The "channels"
 *                claim does not apply to it.
 *   user:<id>    only an identity whose user is <id>.
 *   role:<name>  only an identity holding role <name>.
 *   application  - when the identity carries a "channels" claim, exactly the
 *                  channels one of its patterns matches (an empty claim:
 *                  none), private or not: the claim is both a restriction
 *                  and the way to grant private channels;
 *                - otherwise (anonymous, API key, token without the claim)
 *                  every public channel. A channel is private when one of
 *                  the FLAGCAST_PRIVATE_CHANNELS patterns matches it
 *                  (comma list, token.h pattern syntax); none by default,
 *                  so all application channels are public unless
 *                  configured otherwise.
 * A claim pattern never grants user:/role: inboxes, even "*".
 *
 * Inboxes: an admitted identity is subscribed to "user:<id>" and to
 * "role:<r>" for each role it holds, in that order (access_inbox);
 * access_apply_filter puts them into a connection's filter (filter.h).
 *
 * Refusals fill an access_error_t with static strings: an HTTP status for
 * SSE (400 bad channel name, 401 no/invalid token, 403 not allowed), the WS
 * `error` code ("bad_channel", "unauthorized", "forbidden") and a message.
 * Messages name the rule, never a token.
 */
#ifndef FLAGCAST_GW_ACCESS_H
#define FLAGCAST_GW_ACCESS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/token.h"
#include "gateway/filter.h"

#define ACCESS_MAX_PRIVATE 64              /* FLAGCAST_PRIVATE_CHANNELS patterns */
#define ACCESS_INBOX_MAX   (5 + TOKEN_MAX_USER + 1)  /* "user:<id>" + NUL */

typedef enum access_mode {
    ACCESS_AUTH_OFF = 0,
    ACCESS_AUTH_OPTIONAL,
    ACCESS_AUTH_REQUIRED
} access_mode_t;

typedef struct access_error {
    int         status;    /* 400, 401 or 403 */
    const char *code;      /* "bad_channel", "unauthorized", "forbidden" */
    const char *message;
} access_error_t;

typedef struct access access_t;

/* "off" | "optional" | "required" (exact, lower case).
 * @return 0 and *mode, -1 with *err set. */
int access_mode_parse(const char *s, access_mode_t *mode, const char **err);
const char *access_mode_name(access_mode_t mode);

/* private_patterns: FLAGCAST_PRIVATE_CHANNELS, a comma list of patterns
 * (spaces around items ignored); NULL or "" for none.
 * @return a new access_t, or NULL with *err set (static message). */
access_t *access_new(access_mode_t mode, const char *private_patterns, const char **err);
void access_free(access_t *a);
access_mode_t access_mode(const access_t *a);

/* true unless the mode is off: the glue should look for a token. */
bool access_uses_tokens(const access_t *a);
/* The identity the rules see: id, or NULL in mode off. */
const token_identity_t *access_effective(const access_t *a, const token_identity_t *id);
/* true when ch is an application channel matched by a private pattern. */
bool access_is_private(const access_t *a, const char *ch, size_t len);

/* May a connection with this identity (NULL: none) be served?
 * @return 0, or -1 with *e filled (401 in mode required without identity). */
int access_admit(const access_t *a, const token_identity_t *id, access_error_t *e);
/* Fills *e for a token that failed verification (401, "unauthorized",
 * message = why, token.c's static message). @return -1. */
int access_token_refused(const char *why, access_error_t *e);

/* Number of inboxes of the identity (0 for anonymous or mode off). */
size_t access_inbox_count(const access_t *a, const token_identity_t *id);
/* Writes the i-th inbox name, NUL-terminated, into buf (len bytes;
 * ACCESS_INBOX_MAX is always enough). @return its length, or -1 if i is
 * out of range or buf too small. */
int access_inbox(const access_t *a, const token_identity_t *id, size_t i,
                 char *buf, size_t len);

/* May this identity (NULL: anonymous) read channel ch (len bytes)?
 * @return 0, or -1 with *e filled. */
int access_check_channel(const access_t *a, const token_identity_t *id,
                         const char *ch, size_t len, access_error_t *e);

/* access_check_channel for every channel of f (the flags part needs no
 * check). @return 0, or -1 with *e filled and *bad pointing at the first
 * refused channel (inside f). */
int access_check_filter(const access_t *a, const token_identity_t *id,
                        const filter_t *f, access_error_t *e, const char **bad);

/* Makes f fit id (NULL: anonymous): drops every channel id may not read
 * (what a WS connection keeps when its identity changes), then adds id's
 * inboxes. The channel list may grow past FILTER_MAX_ITEMS by the inboxes
 * (ACCESS_FILTER_MAX_CHANNELS in all). All or nothing.
 * @return 0, or -1 with *err set (static message; f unchanged). */
#define ACCESS_FILTER_MAX_CHANNELS (FILTER_MAX_ITEMS + TOKEN_MAX_ROLES + 1)
int access_apply_filter(const access_t *a, const token_identity_t *id, filter_t *f,
                        const char **err);

#endif
