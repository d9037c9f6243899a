/*
 * redis — the gateway's Redis side, on its own thread: a libevent loop with
 * two self-reconnecting connections (common/rconn.h): "sub" for pub/sub,
 * "cmd" for reads (the flags mirror, history). Inside the folder, in the
 * order a live message goes through them (none calls back into one above):
 *
 *   redis.c    the thread, its connections, subscriptions and the requests
 *              of the service threads (this header)
 *   history.c  every live message in offset order: gap fills, resyncs
 *              (history.h); its output goes to a sink redis.c fills with
 *   flags.c    the flags mirror: its load, each flag event applied (and its
 *              `prev` record) before it goes to the service threads, the
 *              flags resync, readiness (flags.h)
 *   replay.c   the answers to client resumes (replay.h)
 *   chan.c     the per-channel record and its table, a leaf (chan.h)
 *
 * These entry points are what main.c wires into the bus (gw.h).
 */
#ifndef FLAGCAST_GATEWAY_REDIS_H
#define FLAGCAST_GATEWAY_REDIS_H

#include <stdbool.h>
#include "gateway/gw.h"

/* Starts the Redis thread (creates g->mirror). @return 0, or -1. */
int  gw_redis_start(gw_t *g);
/* Channel refcounts from a service thread. Thread-safe. */
void gw_redis_want(const char *ch, bool want);
/* Queues a resume request (takes it). @return 0, or -1 if the Redis side
 * is stopped (r is then still the caller's). Thread-safe. */
int  gw_redis_resume(gw_resume_t *r);
void gw_redis_stop(void);

#endif
