/*
 * http — plain HTTP on the service threads: complete replies, CORS, the
 * query string and token of a request (http.c). The routes are callback.c's.
 */
#ifndef FLAGCAST_GATEWAY_LWS_HTTP_H
#define FLAGCAST_GATEWAY_LWS_HTTP_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>
#include "common/token.h"
#include "gateway/access.h"

/* Adds the CORS headers for the request's Origin, if allowed.
 * @return 0, or 1 if the headers did not fit. */
int  http_add_cors(struct lws *wsi, unsigned char **p, unsigned char *end);
/* A complete response with a body. @return what the HTTP callback returns. */
int  http_reply(struct lws *wsi, unsigned status, const char *ctype, const char *body, size_t blen);
/* A complete {"error": msg} response. */
int  http_reply_json_error(struct lws *wsi, unsigned status, const char *msg);
/* The answer to a CORS preflight (OPTIONS). */
int  http_preflight(struct lws *wsi);
/* The query string as lws split it (decoded args), joined with '&'; a
 * token=... argument is set aside into tokbuf (*tok). @return its length,
 * or -1 if it (or the token) is longer than the buffer. */
int  http_query(struct lws *wsi, char *out, size_t outlen, char *tokbuf, size_t toklen,
                const char **tok);
/* The token of a request (Authorization: Bearer first, else qtok),
 * verified and admitted under FLAGCAST_AUTH; a WebSocket (ws) without any
 * token is let through (it may still send `auth`).
 * @return 0 with *id (owned by the caller; NULL: anonymous), or -1 with *e. */
int  http_identity(struct lws *wsi, const char *qtok, bool ws, token_identity_t **id,
                   access_error_t *e);
/* The stream paths. */
bool http_is_sse_path(const char *path);
bool http_is_ws_path(const char *path);

#endif
