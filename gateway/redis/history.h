/*
 * history — the Redis thread's live events in offset order (history.c).
 *
 * Per subscribed channel the gateway keeps the position it delivered last
 * (epoch, offset) and
 *   * fills gaps: a live offset jump (a lost pub/sub message) or a
 *     re-SUBSCRIBE after a reconnect reads P:hist:<ch> from the last offset
 *     seen (paged XRANGE) and delivers the missing events in order before
 *     the live events that arrived meanwhile (held);
 *   * turns an epoch change, history that no longer reaches back, a
 *     rollback (P:meta behind what was delivered), or a gap over
 *     FLAGCAST_RESUME_MAX_EVENTS into an explicit resync (a fresh snapshot
 *     on `flags`) for every local subscriber.
 * Client resumes are replay.h's. Calls replay.c and chan.c, and hands what
 * it delivers to the sink it is given (no call back into redis.c).
 *
 * See docs/ARCHITECTURE.md, "Recovery". Every function runs on the Redis
 * thread.
 */
#ifndef FLAGCAST_GATEWAY_REDIS_HISTORY_H
#define FLAGCAST_GATEWAY_REDIS_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/rconn.h"
#include "gateway/gw.h"
#include "gateway/redis/chan.h"

/* Where history.c's ordered output goes (redis.c wires flags.c here). */
typedef struct hist_sink {
    /* An event in its channel's order (takes no reference). */
    void (*deliver)(outq_ev_t *oev);
    /* The `flags` history was lost or restarted: every flags connection
     * needs a fresh snapshot at (epoch, pos) (epoch NULL: unknown). */
    void (*flags_resync)(const char *reason, const char *epoch, uint64_t pos);
} hist_sink_t;

/* Called once before the Redis thread starts (sink is copied). */
void hist_init(gw_t *g, rconn_t *cmd, const hist_sink_t *sink);
/* A decoded, rendered live event from pub/sub (takes the reference) and
 * its channel's record (NULL if none): delivered now, held behind a fill,
 * or dropped as already delivered. */
void hist_live(gw_chan_t *c, outq_ev_t *oev);
/* SUBSCRIBE of channel c confirmed on the current sub connection. */
void hist_subscribed(gw_chan_t *c);
/* The sub connection was lost: c needs a new SUBSCRIBE (called for every
 * record). */
void hist_sub_lost(gw_chan_t *c);
/* The cmd connection is (again) up: c's reads that failed are retried
 * (called for every record). */
void hist_cmd_up(gw_chan_t *c);
/* No local subscriber wants c any more; the caller has unlinked it
 * (chan_unlink): waiting resumes are answered, held events go out, and c
 * is freed now if no command is in flight (else by the last callback).
 * The caller must not use c afterwards. */
void hist_forget(gw_chan_t *c);
/* The Redis thread has stopped: no more commands (records are then freed
 * by redis.c). */
void hist_shutdown(void);

#endif
