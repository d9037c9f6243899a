/*
 * lws — the gateway's libwebsockets side: FLAGCAST_THREADS service threads
 * serving SSE, WebSocket and plain HTTP on one port, and the fan-out of the
 * events the Redis thread hands over. The only folder that includes
 * libwebsockets.h (docs/ARCHITECTURE.md, "Layout"). Inside it:
 *
 *   worker.c    threads, the inbox, the tick, the paced drain, stop
 *   accept.c    listen socket, the head gate, the reaper of closed SSE peers
 *   callback.c  the one lws callback: routes and forwards to a transport
 *   http.c      replies, CORS, query and token of a request, health, metrics
 *   conn.c      a connection's lifecycle, write path, fan-out, admission
 *   eval.c      the evaluation API: POST bodies, evaluation under the mirror lock
 *   sse.c ws.c  each transport's operations (conn.h's gw_transport_t)
 *   replay.c    answers of the Redis thread: replay, snapshots, resyncs
 *
 * These entry points are what main.c wires into the bus (gw.h); each is
 * thread-safe.
 */
#ifndef FLAGCAST_GATEWAY_LWS_H
#define FLAGCAST_GATEWAY_LWS_H

#include <stdint.h>
#include "gateway/gw.h"

/* Starts g->cfg.threads service threads. @return 0, or -1 on failure. */
int  gw_lws_start(gw_t *g);
/* Hands a rendered event to every service thread (each takes its own
 * reference, the caller keeps its own). */
void gw_lws_dispatch(outq_ev_t *oev);
/* Hands a filled resume request back to its service thread (takes it). */
void gw_lws_resume_done(gw_resume_t *r);
/* Every local subscriber of ch lost events (flags: a fresh snapshot). */
void gw_lws_resync(const char *ch, const char *reason, const char *epoch, uint64_t offset);
/* Opens the drain window on every service thread: each closes its
 * connections paced over window_ns (drain.h). */
void gw_lws_drain(uint64_t window_ns);
/* Asks every service thread to close its clients and stop; joins them. */
void gw_lws_stop(void);

#endif
