/*
 * flags — the Redis thread's flags mirror (flags.c): its load, each flag
 * event applied before it goes to the service threads, the flags resync,
 * and the gateway's readiness.
 *
 * Calls chan.c only (for the `flags` record's position) and the bus;
 * history.c reaches it through its sink (flags_deliver, flags_resync), as
 * wired by redis.c. Every function runs on the Redis thread.
 */
#ifndef FLAGCAST_GATEWAY_REDIS_FLAGS_H
#define FLAGCAST_GATEWAY_REDIS_FLAGS_H

#include <stdbool.h>
#include <stdint.h>
#include "common/rconn.h"
#include "gateway/gw.h"
#include "gateway/redis/chan.h"

/* Called once before the Redis thread starts: the process context (its
 * mirror exists), both connections and the channel table. */
void flags_init(gw_t *g, rconn_t *sub, rconn_t *cmd, chan_table_t *chans);
/* Frees the held flag events (after the thread stopped). */
void flags_shutdown(void);

/* An event in its channel's order (history.c's sink; takes no reference):
 * a flag event of `flags` updates the mirror (its `prev` record set when
 * the change selects other connections than the new record), or is held
 * while a flags resync reloads; then it goes to every service thread
 * (g->bus.dispatch). */
void flags_deliver(outq_ev_t *oev);
/* The `flags` history was lost or restarted (history.c's sink): reloads
 * the mirror, then every flags connection gets a fresh snapshot
 * (g->bus.resync) at where the flags stand after the reload. */
void flags_resync(const char *reason, const char *epoch, uint64_t pos);

/* SUBSCRIBE P:ch:flags confirmed: the mirror loads if it has to. */
void flags_subscribed(void);
/* The sub connection was lost. */
void flags_sub_lost(void);
/* The cmd connection came up (connected) or went down. */
void flags_cmd_state(bool connected);

#endif
