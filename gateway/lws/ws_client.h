/*
 * ws_client — what a WebSocket client sends (ws_client.c): the messages of
 * DESIGN.md "WebSocket" (subscribe with its filter and `since` positions,
 * unsubscribe, ping, auth), reassembled from fragments within
 * FLAGCAST_WS_MAX_FRAME, answered in the connection's format; bad ones are
 * answered with `error` and counted against FLAGCAST_WS_MAX_ERRORS.
 */
#ifndef FLAGCAST_GATEWAY_LWS_WS_CLIENT_H
#define FLAGCAST_GATEWAY_LWS_WS_CLIENT_H

#include "gateway/lws/conn.h"

/* WS close code for a missing, invalid or expired token (4000-4999 are the
 * application's; 4401 reads as HTTP's 401). */
#define GW_CLOSE_UNAUTHORIZED 4401

/* RECEIVE: a fragment of a client message. @return 0, or -1 to close. */
int  ws_receive(gw_conn_t *c, struct lws *wsi, const char *in, size_t len);
/* Sends `error` {code, message} (counted in ws_client_errors). */
void ws_send_error(gw_conn_t *c, const char *code, const char *message);
/* Applies a subscribe/unsubscribe request (since: positions to replay
 * from). @return 0, or -1 with *err and *code. */
int  ws_apply(gw_conn_t *c, const filter_req_t *req, bool subscribe,
              const wsmsg_since_t *since, size_t nsince, const char **err, const char **code);
/* Sends `error` {code, message}, stops delivering to c and closes it with
 * close_code once the error is written, or after 2 s if the client does not
 * read. */
void ws_close_with(gw_conn_t *c, const char *code, const char *message, uint16_t close_code);

#endif
