/*
 * replay — client resumes on the Redis thread (replay.c): SSE Last-Event-ID,
 * WS since, and the position-only requests of streams starting on a channel.
 *
 * Requests of one channel share one history read (HMGET P:meta epoch offset
 * + paged XRANGE from the oldest offset asked), kept for REPLAY_WINDOW_IDLE
 * seconds after its last use as a *window* that live deliveries extend
 * (replay_window_extend), so a reconnect storm costs one XRANGE (or a few
 * pages), not one per client. A read only starts once the channel's
 * SUBSCRIBE is confirmed (so nothing falls between history and live); live
 * events that reach the connection meanwhile are queued by its service
 * thread and merged there without duplicates. Answers go back through the
 * bus (gw_bus_t.resume_done).
 *
 * Also the two hiredis reply readers history.c shares (a history entry, a
 * P:meta position) and the release of a record's in-flight reference.
 * Calls only chan.c; every function runs on the Redis thread.
 */
#ifndef FLAGCAST_GATEWAY_REDIS_REPLAY_H
#define FLAGCAST_GATEWAY_REDIS_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/rconn.h"
#include "gateway/gw.h"
#include "gateway/redis/chan.h"

#define REPLAY_PAGE         1000   /* XRANGE COUNT per page */
#define REPLAY_WINDOW_IDLE  5      /* seconds a resume window outlives its last use */

/* Called once before the Redis thread starts: the process context, the
 * reader connection and the channel table (all outlive the thread). */
void replay_init(gw_t *g, rconn_t *cmd, chan_table_t *chans);
/* The Redis thread has stopped: no more commands. */
void replay_shutdown(void);

/* A client resume request (takes r); answered through g->bus.resume_done. */
void replay_resume(gw_resume_t *r);
/* Answers every waiter of c that its state allows now. */
void replay_serve(gw_chan_t *c);
/* Reads c's position (P:meta) if it is not known yet and no read is under
 * way (after its first SUBSCRIBE confirmation). */
void replay_position(gw_chan_t *c);
/* The cmd connection is (again) up: c's read that failed is retried. */
void replay_cmd_up(gw_chan_t *c);
/* c was forgotten (dead): every waiter is answered. */
void replay_forget(gw_chan_t *c);
/* oev (just delivered live on c, the caller keeps its reference) extends
 * c's window, or drops a window it no longer continues. */
void replay_window_extend(gw_chan_t *c, outq_ev_t *oev);

/* Frees c's waiting resumes (before chan_free). */
void replay_clear(gw_chan_t *c);
/* The end of a history callback on c (refs--): frees a dead record whose
 * last command this was. @return true if c is dead (stop using it). */
bool replay_release(gw_chan_t *c);

/* Decodes one XRANGE entry [id, [field, value]] of channel ch into a
 * rendered event. @return it, or NULL (counted as malformed). */
outq_ev_t *replay_entry_decode(const redisReply *ent, const char *ch);
/* The reply of `HMGET P:meta:<ch> epoch offset`: the channel's position
 * into epoch (n bytes; "" when the channel has no history) and *off.
 * @return false if the reply is not that (an error, a lost connection). */
bool replay_meta_parse(const redisReply *reply, char *epoch, size_t n, uint64_t *off);

#endif
