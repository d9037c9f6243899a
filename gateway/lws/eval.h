/*
 * eval — the evaluation API on the service threads (eval.c): Flagent's
 * POST /api/v1/evaluation[/batch] and OFREP's POST /ofrep/v1/evaluate/flags
 * [/{key}]. The request body is read with lws (LWS_CALLBACK_HTTP_BODY,
 * bounded by FLAGCAST_MAX_BODY_BYTES: 413 beyond), parsed and answered by
 * the pure gateway/evalapi.h from the flags mirror under its read lock: no
 * Redis round trip.
 */
#ifndef FLAGCAST_GATEWAY_LWS_EVAL_H
#define FLAGCAST_GATEWAY_LWS_EVAL_H

#include <stdbool.h>
#include "gateway/lws/conn.h"

/* Whether path is an evaluation path (the route is then eval_start's). */
bool eval_is_path(const char *path);
/* LWS_CALLBACK_HTTP on an evaluation path: checks the method, the token and
 * the announced length; answers at once (405, 401, 413, an empty body) or
 * waits for the body. @return what the HTTP callback returns. */
int  eval_start(gw_worker_t *w, gw_conn_t *c, struct lws *wsi, const char *path);
/* LWS_CALLBACK_HTTP_BODY: len more bytes. @return 0, or -1 to close (413). */
int  eval_body(gw_conn_t *c, struct lws *wsi, const void *in, size_t len);
/* LWS_CALLBACK_HTTP_BODY_COMPLETION: evaluates, and asks for a writable
 * callback to write the answer. @return 0, or -1 to close. */
int  eval_complete(gw_conn_t *c, struct lws *wsi);
/* Whether c has an evaluated answer waiting for LWS_CALLBACK_HTTP_WRITEABLE. */
bool eval_pending(const gw_conn_t *c);
/* LWS_CALLBACK_HTTP_WRITEABLE with eval_pending(c): writes the answer;
 * close: with Connection: close, and the connection ends (a pipelined
 * request arrived before the answer was written: the client repeats it).
 * @return what the callback returns. */
int  eval_writable(gw_conn_t *c, struct lws *wsi, bool close);
/* The connection closes: frees a request still being read. */
void eval_release(gw_conn_t *c);
/* The clock and the per-thread random seed of an evaluation (evalapi_env_t),
 * also used by the WebSocket `evaluate` message (ws_client.c). */
uint64_t eval_now_ms(void);
uint64_t eval_seed(void);

#endif
