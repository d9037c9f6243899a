/*
 * worker — the service threads (worker.c).
 *
 * FLAGCAST_THREADS workers each run their own lws_context (lws 4.1.6 here is
 * built with LWS_MAX_SMP 1, so one context serves one thread), with its own
 * listen socket (accept.h), subscription index and connections; no lock is
 * taken on the delivery path except the one that swaps its inbox.
 *
 * Hand-off. The Redis thread appends a reference to each rendered event to
 * every worker's inbox (gw_lws_dispatch) and calls lws_cancel_service(); the
 * worker drains the inbox in LWS_CALLBACK_EVENT_WAIT_CANCELLED (worker_inbox)
 * and fans each event out (conn.h). Resume answers and channel-wide resyncs
 * come the same way (replay.h).
 *
 * Timers. One lws_sul per worker ticks once a second: each transport's tick
 * (SSE keep-alives, WS pings and idle timeout, token deadlines) and the head
 * gate's deadlines. No per-connection timers (lws's sorted timer list is
 * linear). The paced drain has a sul of its own.
 */
#ifndef FLAGCAST_GATEWAY_LWS_WORKER_H
#define FLAGCAST_GATEWAY_LWS_WORKER_H

#include "gateway/lws/conn.h"

/* Starts g->cfg.threads workers serving protocols. @return 0, or -1. */
int  workers_start(gw_t *g, const struct lws_protocols *protocols);
/* The worker was woken (EVENT_WAIT_CANCELLED): its inbox is applied. */
void worker_inbox(gw_worker_t *w);

#endif
