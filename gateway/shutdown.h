/*
 * shutdown — the graceful stop main.c runs on SIGTERM/SIGINT: out of the
 * balancer's rotation, then the clients told to go elsewhere, paced
 * (drain.h does the arithmetic, the service threads the closing).
 */
#ifndef FLAGCAST_GATEWAY_SHUTDOWN_H
#define FLAGCAST_GATEWAY_SHUTDOWN_H

#include <signal.h>
#include "gateway/gw.h"

/* Called by main on the first stop signal sig (sigs: the blocked stop
 * signals): /readyz 503, FLAGCAST_DRAIN_DELAY, then the clients closed
 * paced over FLAGCAST_DRAIN_SECONDS until none is left, the deadline or a
 * second signal. Returns with g->stopping set; main then stops. */
void gw_drain_run(gw_t *g, const sigset_t *sigs, int sig);

#endif
