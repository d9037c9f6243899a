/*
 * hist — history and recovery on the gateway (issue 5).
 *
 * Two parts:
 *
 *   - hist.c (pure): rendering of the `resync` event that tells a client
 *     events of a channel were lost (SSE `event: resync`, WS
 *     {"type":"resync","channel":...,"reason":...,"epoch":...,"offset":...}).
 *
 *   - hist_glue.c (the Redis thread only): per subscribed channel the
 *     gateway keeps the position it delivered last (epoch, offset) and
 *       * fills gaps: a live offset jump (a lost pub/sub message) or a
 *         re-SUBSCRIBE after a reconnect reads P:hist:<ch> from the last
 *         offset seen (paged XRANGE) and delivers the missing events in
 *         order before the live events that arrived meanwhile (held);
 *       * turns an epoch change, history that no longer reaches back, or a
 *         gap over FLAGCAST_RESUME_MAX_EVENTS into an explicit resync (a
 *         fresh snapshot on `flags`) for every local subscriber;
 *       * answers client resumes (SSE Last-Event-ID, WS since): requests of
 *         one channel share one history read, kept for a few seconds as a
 *         window that live deliveries extend, so a reconnect storm costs one
 *         XRANGE (or a few pages), not one per client.
 *
 * See docs/ARCHITECTURE.md, "Recovery".
 */
#ifndef FLAGCAST_GW_HIST_H
#define FLAGCAST_GW_HIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "proto/buf.h"
#include "gateway/outq.h"
#include "gateway/gateway.h"

#define HIST_PAGE         1000   /* XRANGE COUNT per page */
#define HIST_WINDOW_IDLE  5      /* seconds a resume window outlives its last use */

/* The epoch of a position taken before the channel had any history: a
 * cursor item <channel>/-/0 resumes from the channel's first event,
 * whatever epoch it starts. */
#define HIST_EPOCH_NONE      "-"

/* Reasons carried by a resync. */
#define HIST_REASON_EPOCH    "epoch changed"
#define HIST_REASON_TRIMMED  "history exceeded"
#define HIST_REASON_BEHIND   "too far behind"
#define HIST_REASON_ERROR    "history unavailable"

/* Appends a resync event in format fmt: for OUTQ_FMT_SSE a whole SSE frame
 * (`id: <sse_id>`, or `id: <channel>/<epoch>/<offset>` when sse_id is NULL
 * and epoch is given; `event: resync`; data JSON), for OUTQ_FMT_JSON the
 * JSON object, for OUTQ_FMT_MSGPACK the same map in msgpack. epoch may be
 * NULL (unknown position). @return 0 on success, -1 on failure. */
int hist_render_resync(outq_fmt_t fmt, const char *channel, const char *reason,
                       const char *epoch, uint64_t offset, const char *sse_id, buf_t *out);

/* ==== Redis-thread side (hist_glue.c); every function runs on the Redis
 * thread, except where noted. ==== */

/* Called once before the Redis thread starts. */
void hist_init(rconn_t *cmd);
/* A decoded, rendered live event from pub/sub (takes the reference):
 * delivered now, held behind a fill, or dropped as already delivered. */
void hist_live(outq_ev_t *oev);
/* SUBSCRIBE of logical channel ch confirmed on the current sub connection. */
void hist_subscribed(const char *ch);
/* The sub connection was lost: every channel needs a new SUBSCRIBE. */
void hist_sub_lost(void);
/* The cmd connection is (again) up: reads that failed are retried. */
void hist_cmd_up(void);
/* No local subscriber wants ch any more: forget its state. */
void hist_forget(const char *ch);
/* A client resume request (takes r); answered through gw_lws_resume_done. */
void hist_resume(gw_resume_t *r);
/* Frees everything (the Redis thread has stopped). */
void hist_shutdown(void);

/* Implemented by redis_glue.c: applies a flag event to the mirror and hands
 * the event to every service thread (takes no reference). */
void gw_redis_deliver(outq_ev_t *oev);

/* Implemented by redis_glue.c: the `flags` history was lost or restarted:
 * reloads the mirror, then every flags connection gets a fresh snapshot
 * (gw_lws_resync). */
void gw_redis_flags_resync(const char *reason, const char *epoch, uint64_t pos);

/* Implemented by lws_glue.c: tells every local subscriber of ch that its
 * events were lost (flags: a fresh snapshot). Thread-safe. */
void gw_lws_resync(const char *ch, const char *reason, const char *epoch, uint64_t offset);

#endif
