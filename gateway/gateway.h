/*
 * gateway — what the gateway's glue files share: the settings, the metrics,
 * the hand-off between the Redis thread and the lws service threads, and the
 * entry points of each side.
 *
 * Threads (docs/ARCHITECTURE.md says why):
 *   - one Redis thread (redis_glue.c): libevent + hiredis via common/rconn.h;
 *     decodes each message once, updates the flags mirror, renders the event
 *     once per output format into a refcounted gw_event_t and hands a
 *     reference to every service thread;
 *   - FLAGCAST_THREADS lws service threads (lws_glue.c), each with its own
 *     lws_context, its own SO_REUSEPORT listen socket on the same port, its
 *     own subscription index and connections;
 *   - the main thread (main.c) parses settings and waits for signals.
 *
 * Only gw_worker_post() / gw_redis_*() cross threads; each takes a lock and
 * wakes the other side (lws_cancel_service, or a libevent user event).
 */
#ifndef FLAGCAST_GATEWAY_H
#define FLAGCAST_GATEWAY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

#include "common/metrics.h"
#include "common/rconn.h"
#include "proto/event.h"
#include "gateway/mirror.h"
#include "gateway/outq.h"

/* ==== settings ==== */

typedef struct gw_config {
    const char *listen;
    char        host[256];
    int         port;
    const char *redis_url;
    redis_url_t rurl;
    const char *prefix;
    const char *auth;
    long        max_conns;         /* resolved: never 0 after main() */
    long        sse_keepalive;     /* seconds */
    long        sse_retry;         /* ms, the retry: hint */
    long        queue_max_events;
    long        queue_max_bytes;
    long        ws_max_frame;      /* bytes of one client frame */
    long        ws_ping;           /* seconds of silence before a ping */
    long        ws_idle_timeout;   /* seconds of silence before closing */
    long        ws_max_errors;     /* bad client messages before closing */
    const char *cors_origins;
    long        threads;
    const char *log_level;
} gw_config_t;

extern gw_config_t gw_cfg;

/* ==== metrics (registered once by gw_metrics_init) ==== */

typedef struct gw_metrics {
    metric_t *conns_sse, *conns_ws;            /* gauges */
    metric_t *conns_rejected;                  /* 503 over the cap */
    metric_t *events_received, *events_malformed;
    metric_t *deliveries, *conflations, *drops;
    metric_t *slow_disconnects;
    metric_t *redis_reconnects;
    metric_t *ws_errors;
    metric_t *fanout_seconds;                  /* histogram */
} gw_metrics_t;

extern gw_metrics_t gw_m;
void gw_metrics_init(void);

/* ==== process state shared by all threads ==== */

extern atomic_bool gw_ready;       /* Redis subscribed + mirror loaded */
extern atomic_bool gw_mirror_ever; /* the mirror was loaded once: snapshots are real */
extern atomic_bool gw_stopping;    /* SIGTERM seen */
extern atomic_long gw_conns;       /* streaming connections, all threads */

/* The flags mirror: written by the Redis thread, read by service threads
 * for snapshots, under gw_mirror_lock. */
extern mirror_t        *gw_mirror;
extern pthread_rwlock_t gw_mirror_lock;

/* ==== resuming from history ==== */

#define GW_RESUME_MAX_EVENTS 1000  /* a client further behind starts live */
#define GW_RESUME_MAX_CHANNELS 16

/* One connection's request to replay what it missed (SSE Last-Event-ID,
 * WS subscribe "since"), and the answer. Created by a service thread, filled
 * by the Redis thread (XRANGE P:hist:<ch> after checking P:meta:<ch> epoch),
 * handed back to the same service thread. Whoever holds it owns it. */
typedef struct gw_resume {
    int         worker;
    uint32_t    serial;          /* the connection, as the worker knows it */
    int         fd;
    size_t      nch;
    char       *channels[GW_RESUME_MAX_CHANNELS];   /* owned */
    char       *epochs[GW_RESUME_MAX_CHANNELS];     /* owned */
    uint64_t    offsets[GW_RESUME_MAX_CHANNELS];    /* the client's position */
    /* answer */
    bool        ok[GW_RESUME_MAX_CHANNELS];         /* history covered the gap */
    uint64_t    last[GW_RESUME_MAX_CHANNELS];       /* last offset replayed, or the cursor */
    outq_ev_t **evs;             /* replayed events, channel by channel, in order */
    size_t      nevs, cap;
} gw_resume_t;

void gw_resume_free(gw_resume_t *r);

/* ==== lws side (lws_glue.c) ==== */

/* Starts gw_cfg.threads service threads. @return 0 on success, -1 on failure. */
int  gw_lws_start(void);
/* Hands a rendered event (outq.h: the decoded ev_t plus its bytes in every
 * format, refcounted) to every service thread; each takes its own
 * reference, the caller keeps its own. Thread-safe. */
void gw_lws_dispatch(outq_ev_t *oev);
/* Hands a filled resume request back to its service thread (takes it). */
void gw_lws_resume_done(gw_resume_t *r);
/* Asks every service thread to close its clients and stop; joins them. */
void gw_lws_stop(void);

/* ==== Redis side (redis_glue.c) ==== */

/* Starts the Redis thread. @return 0 on success, -1 on failure. */
int  gw_redis_start(void);
/* Channel refcounts from a service thread: called when its own index gains
 * the first / loses the last local subscriber of ch. Thread-safe. */
void gw_redis_want(const char *ch, bool want);
/* Queues a resume request (takes it); the answer comes back through
 * gw_lws_resume_done. @return 0, or -1 if the Redis side is stopped (r is
 * then still the caller's). Thread-safe. */
int  gw_redis_resume(gw_resume_t *r);
void gw_redis_stop(void);

/* monotonic clock in ns */
uint64_t gw_now_ns(void);

#endif
