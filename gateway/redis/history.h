/*
 * history — history and recovery on the Redis thread (history.c), and the
 * Redis thread's per-channel record it shares with redis.c.
 *
 * Per subscribed channel the gateway keeps the position it delivered last
 * (epoch, offset) and
 *   * fills gaps: a live offset jump (a lost pub/sub message) or a
 *     re-SUBSCRIBE after a reconnect reads P:hist:<ch> from the last offset
 *     seen (paged XRANGE) and delivers the missing events in order before
 *     the live events that arrived meanwhile (held);
 *   * turns an epoch change, history that no longer reaches back, or a gap
 *     over FLAGCAST_RESUME_MAX_EVENTS into an explicit resync (a fresh
 *     snapshot on `flags`) for every local subscriber;
 *   * answers client resumes (SSE Last-Event-ID, WS since): requests of one
 *     channel share one history read, kept for a few seconds as a window
 *     that live deliveries extend, so a reconnect storm costs one XRANGE
 *     (or a few pages), not one per client.
 *
 * See docs/ARCHITECTURE.md, "Recovery".
 */
#ifndef FLAGCAST_GATEWAY_REDIS_HISTORY_H
#define FLAGCAST_GATEWAY_REDIS_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/rconn.h"
#include "gateway/gw.h"
#include "gateway/resync.h"

#define HIST_PAGE         1000   /* XRANGE COUNT per page */
#define HIST_WINDOW_IDLE  5      /* seconds a resume window outlives its last use */

/* ==== the Redis thread's channel table ====
 *
 * One record per logical channel, in one hash table kept by redis_glue.c
 * (gw_chan_get): the subscription refcount (redis_glue.c) and the channel's
 * history state (hist_glue.c) are parts of the same record, so a live
 * message costs one lookup. A record is in the table while service threads
 * want the channel (count > 0) or its history part is in use (`hist`: set
 * by hist_live on `flags`, hist_subscribed and hist_resume). When the last
 * local subscriber goes, redis_glue.c unlinks it, marks it `dead` and calls
 * hist_forget; history commands still in flight (`refs`) keep an unlinked
 * record alive and the last callback frees it (gw_chan_free). */

typedef struct hist_evvec {
    outq_ev_t **v;
    size_t      n, cap;
} hist_evvec_t;

struct hist_wait;   /* a resume waiting on the channel (hist_glue.c) */

typedef struct gw_chan {
    struct gw_chan *next;          /* hash chain */
    /* subscription (redis_glue.c) */
    long            count;         /* service threads that want it */
    bool            subscribed;    /* SUBSCRIBE sent on the current connection */
    /* history and recovery (hist_glue.c) */
    bool            hist;          /* the history part is in use */
    unsigned        refs;          /* history commands in flight */
    bool            dead;          /* unlinked; freed by the last callback */
    bool            confirmed;     /* SUBSCRIBE confirmed on the current connection */
    bool            known;         /* epoch/last hold the position delivered last
                                    * (epoch "": the channel had no history yet) */
    bool            filling, reading;
    bool            retry_fill, retry_read;
    bool            fill_check;    /* the fill waits for its P:meta check */
    unsigned        fill_gen;
    char            epoch[EV_MAX_EPOCH + 1];
    uint64_t        last;
    hist_evvec_t    held;          /* live events behind a fill */
    size_t          held_mark;     /* held before the fill's last page was asked */
    size_t          fill_n;
    /* the resume window */
    bool            wvalid, wtrunc;
    char            wepoch[EV_MAX_EPOCH + 1];      /* "" when the channel has no meta */
    uint64_t        wfrom, wmeta_off;
    hist_evvec_t    win;           /* consecutive offsets */
    uint64_t        wused_ns;
    uint64_t        rfrom;         /* the read under way */
    bool            pmeta_pending; /* the position read (P:meta) after the first SUBSCRIBE */
    struct hist_wait *waiters;
    char            name[];
} gw_chan_t;

/* Implemented by redis_glue.c (Redis thread): the record of channel name,
 * created (zeroed, count 0) if absent and create is set. @return it, or
 * NULL (absent, or out of memory). */
gw_chan_t *gw_chan_get(const char *name, bool create);
/* Implemented by redis_glue.c: frees an unlinked record (hist_clear first). */
void gw_chan_free(gw_chan_t *c);

/* ==== Redis-thread side (hist_glue.c); every function runs on the Redis
 * thread, except where noted. ==== */

/* Called once before the Redis thread starts. */
void hist_init(gw_t *g, rconn_t *cmd);
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
/* No local subscriber wants c any more; the caller has unlinked it and set
 * c->dead: waiting resumes are answered, held events go out. The caller
 * frees it if c->refs is 0. */
void hist_forget(gw_chan_t *c);
/* Frees c's history part (events, waiting resumes); for gw_chan_free and
 * at shutdown. */
void hist_clear(gw_chan_t *c);
/* A client resume request (takes r); answered through gw_lws_resume_done. */
void hist_resume(gw_resume_t *r);
/* The Redis thread has stopped: no more commands (records are then freed
 * by redis_glue.c). */
void hist_shutdown(void);

/* Implemented by redis_glue.c: applies a flag event to the mirror and hands
 * the event to every service thread (takes no reference). */
void gw_redis_deliver(outq_ev_t *oev);

/* Implemented by redis_glue.c: the `flags` history was lost or restarted:
 * reloads the mirror, then every flags connection gets a fresh snapshot
 * (gw_lws_resync). */
void gw_redis_flags_resync(const char *reason, const char *epoch, uint64_t pos);


#endif
