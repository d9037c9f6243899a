/*
 * sse — the Server-Sent Events transport (sse.c): a stream's start (the
 * filter from the query, the identity, the cursor to resume from), its
 * writes with the list cursor, keep-alives, token expiry, drain and stop.
 *
 * Closed SSE subscribers. lws does not read an HTTP/1 stream after the
 * request, so a peer's FIN stays readable and lws's poll loop would spin on
 * it. Every SSE socket is therefore also registered, edge-triggered for
 * EPOLLIN|EPOLLRDHUP, in the worker's reaper epoll set (accept.c).
 */
#ifndef FLAGCAST_GATEWAY_LWS_SSE_H
#define FLAGCAST_GATEWAY_LWS_SSE_H

#include "gateway/lws/conn.h"

extern const gw_transport_t gw_sse_transport;

/* The HTTP callback of an SSE path: refuses (in a form EventSource
 * retries) or starts the stream. @return what the HTTP callback returns. */
int sse_start(gw_worker_t *w, gw_conn_t *c, struct lws *wsi);

/* Renders what every SSE stream shares (the keep-alive comment); once,
 * before the service threads start. @return 0, or -1 (out of memory). */
int  sse_init(void);
/* Frees the calling service thread's write buffer (at its exit). */
void sse_thread_free(void);

#endif
