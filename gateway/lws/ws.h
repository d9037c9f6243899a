/*
 * ws — the WebSocket transport (ws.c): the upgrade (subprotocol, token,
 * admission), the stream's start, pings and the idle timeout, token expiry,
 * the close codes, drain and stop. What the client sends is ws_client.h's.
 */
#ifndef FLAGCAST_GATEWAY_LWS_WS_H
#define FLAGCAST_GATEWAY_LWS_WS_H

#include "gateway/lws/conn.h"

/* lws allocates this much per WS connection for reading; client messages
 * are small and longer ones arrive in chunks that ws_receive reassembles. */
#define GW_WS_RX_CHUNK    128

extern const gw_transport_t gw_ws_transport;

/* HTTP_CONFIRM_UPGRADE: a Sec-WebSocket-Protocol naming none we serve is
 * answered 400 (lws would drop it without a word). @return 0, or -1. */
int  ws_confirm_upgrade(struct lws *wsi);
/* FILTER_PROTOCOL_CONNECTION: the path, the token (401), and a refusal
 * the client should retry, kept for ESTABLISHED (close 1012/1013).
 * @return what the callback returns (non-zero: refused). */
int  ws_filter(gw_worker_t *w, struct lws *wsi);
/* ESTABLISHED: the stream starts (or the refusal is closed). @return 0, or
 * -1 to close. */
int  ws_establish(gw_worker_t *w, gw_conn_t *c, struct lws *wsi);
/* RECEIVE_PONG */
void ws_pong(gw_conn_t *c);

#endif
