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
#include <signal.h>

#include "common/metrics.h"
#include "common/rconn.h"
#include "common/token.h"
#include "proto/event.h"
#include "gateway/access.h"
#include "gateway/filter.h"
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
    long        redis_timeout_ms;  /* a Redis reply later than this fails the connection */
    long        redis_ping_ms;     /* health ping interval per Redis connection */
    const char *auth;
    long        max_conns;         /* resolved: never 0 after main() */
    long        sse_keepalive;     /* seconds */
    long        sse_retry;         /* ms, the retry: hint */
    long        queue_max_events;
    long        queue_max_bytes;
    long        inbox_max;         /* events waiting per service thread */
    long        max_header_bytes;  /* lws's header table: request line + headers */
    long        ws_max_frame;      /* bytes of one client frame */
    long        ws_ping;           /* seconds of silence before a ping */
    long        ws_idle_timeout;   /* seconds of silence before closing */
    long        ws_max_errors;     /* bad client messages before closing */
    const char *cors_origins;
    long        threads;
    const char *log_level;
    long        drain_delay;       /* s: /readyz 503 before the drain starts */
    long        drain_seconds;     /* s: window the clients are closed over */
    /* identity (ident_glue.c) */
    long        auth_timeout;      /* seconds a WS may take to send `auth` */
    const char *private_channels;  /* FLAGCAST_PRIVATE_CHANNELS */
    token_config_t tok;            /* FLAGCAST_JWT_*, FLAGCAST_API_KEYS */
    /* history and recovery (hist_glue.c) */
    long        resume_max;        /* events one gap fill or resume may replay */
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
    metric_t *auth_refused;                    /* 401: missing / invalid token */
    metric_t *auth_expired;                    /* closed when the token expired */
    metric_t *draining;                        /* gauge: 1 from SIGTERM on */
    metric_t *drained_sse, *drained_ws;        /* told to reconnect elsewhere */
    /* history and recovery (hist_glue.c) */
    metric_t *resumes;                         /* channel resumes asked by clients */
    metric_t *history_reads;                   /* XRANGE pages (resumes and gap fills) */
    metric_t *gap_fills;                       /* gaps in live traffic / after reconnects */
    metric_t *resyncs;                         /* resync events (channel-wide or per resume) */
    metric_t *offsets_rejected;                /* live offsets history contradicts: dropped */
    metric_t *rollbacks;                       /* history found behind what was delivered */
} gw_metrics_t;

extern gw_metrics_t gw_m;
void gw_metrics_init(void);

/* ==== process state shared by all threads ==== */

extern atomic_bool gw_ready;       /* Redis subscribed + mirror loaded */
extern atomic_bool gw_mirror_ever; /* the mirror was loaded once: snapshots are real */
extern atomic_bool gw_draining;    /* SIGTERM seen: /readyz answers 503 */
extern atomic_bool gw_stopping;    /* drain window open: new streams get 503 */
extern atomic_long gw_conns;       /* streaming connections, all threads */

/* The flags mirror: written by the Redis thread, read by service threads
 * for snapshots, under gw_mirror_lock. */
extern mirror_t        *gw_mirror;
extern pthread_rwlock_t gw_mirror_lock;

/* ==== resuming from history ==== */

#define GW_RESUME_MAX_EVENTS 10000 /* default FLAGCAST_RESUME_MAX_EVENTS: beyond, resync */
#define GW_RESUME_MAX_CHANNELS 16   /* items of one client cursor */

/* One connection's request to the Redis thread, and the answer: replay what
 * it missed (SSE Last-Event-ID, WS subscribe "since"), or only tell where a
 * channel it starts to receive stands (pos_only), so that its start is
 * acknowledged only once the channel's SUBSCRIBE is confirmed and nothing
 * published after the acknowledgement can be missed. Created by a service
 * thread, filled by the Redis thread (XRANGE P:hist:<ch> after checking
 * P:meta:<ch>), handed back to the same service thread. Whoever holds it
 * owns it. The per-channel arrays hold nch entries (room for capch). */
typedef struct gw_resume {
    struct gw_resume *next;      /* the connection's requests after this one */
    int         worker;
    uint32_t    serial;          /* the connection, as the worker knows it */
    int         fd;
    size_t      nch, capch;
    char      **channels;        /* owned */
    char      **epochs;          /* owned */
    uint64_t   *offsets;         /* the client's position */
    /* answer */
    bool       *ok;              /* history covered the gap / position known */
    const char **reason;         /* !ok: why (static string) */
    bool       *pos_only;        /* only the channel's current position
                                  * (epoch, last) is asked: ok + epochs/last */
    uint64_t   *last;            /* last offset replayed, or the cursor */
    outq_ev_t **evs;             /* replayed events, channel by channel, in order */
    size_t      nevs, cap;
    /* service thread only: written first when the answer comes (the SSE
     * prelude, a WS `subscribed`), then a flags snapshot if asked */
    outq_ev_t  *prelude;
    bool        snapshot;
} gw_resume_t;

/* @return an empty request with room for n channels, or NULL. */
gw_resume_t *gw_resume_new(size_t n);
/* Appends a channel entry (copies ch and epoch). @return its index, or -1. */
long gw_resume_push(gw_resume_t *r, const char *ch, size_t chlen, const char *epoch,
                    size_t elen, uint64_t offset);
void gw_resume_free(gw_resume_t *r);

/* ==== identity (ident_glue.c) ==== */

/* Builds the token verifier and the access rules from gw_cfg (auth mode,
 * JWT settings, API keys, private channels). Call once before the threads
 * start; both are read-only afterwards and shared by every thread.
 * @return 0 on success, -1 with *err set (static message, no secret). */
int  gw_ident_init(const char **err);
void gw_ident_free(void);
/* The access rules (gateway/access.h); valid after gw_ident_init. */
const access_t *gw_access(void);
/* Verifies a token presented by a client (len bytes) and admits the
 * connection under the auth mode. tok NULL: no token was presented.
 * @return 0 with *id (owned by the caller; NULL: anonymous, or mode off),
 *         or -1 with *e filled (401) and *id NULL. */
int  gw_ident_admit(const char *tok, size_t len, token_identity_t **id, access_error_t *e);
/* Checks every channel f asks for against id's rights (NULL: anonymous).
 * @return 0, or -1 with *e filled and *bad pointing at the refused channel
 *         (inside f). */
int  gw_ident_check_filter(const token_identity_t *id, const filter_t *f,
                           access_error_t *e, const char **bad);
/* Drops from f every channel id may not read (after a change of identity),
 * then adds id's inboxes ("user:<id>", "role:<r>" ...).
 * @return 0, or -1 with *err set (f is then unchanged). */
int  gw_ident_apply(const token_identity_t *id, filter_t *f, const char **err);
/* Unix seconds after which id may no longer be served: exp + leeway
 * (the same rule token_verify applies), or 0 if it never expires. */
long long gw_ident_deadline(const token_identity_t *id);

/* ==== lws side (lws_glue.c) ==== */

/* Starts gw_cfg.threads service threads. @return 0 on success, -1 on failure. */
int  gw_lws_start(void);
/* Hands a rendered event (outq.h: the decoded ev_t plus its bytes in every
 * format, refcounted) to every service thread; each takes its own
 * reference, the caller keeps its own. Thread-safe. */
void gw_lws_dispatch(outq_ev_t *oev);
/* Hands a filled resume request back to its service thread (takes it). */
void gw_lws_resume_done(gw_resume_t *r);
/* Opens the drain window on every service thread: each closes its
 * connections paced over window_ns (drain.h). Thread-safe. */
void gw_lws_drain(uint64_t window_ns);
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

/* ==== graceful drain (drain_glue.c) ==== */

/* Called by main on the first stop signal sig (sigs: the blocked stop
 * signals): /readyz 503, FLAGCAST_DRAIN_DELAY, then the clients closed
 * paced over FLAGCAST_DRAIN_SECONDS until none is left, the deadline or a
 * second signal. Returns with gw_stopping set; main then stops. */
void gw_drain_run(const sigset_t *sigs, int sig);

/* monotonic clock in ns */
uint64_t gw_now_ns(void);

#endif
