/*
 * gw — the process context every part of the gateway is handed: the
 * settings, the metric handles, the process state shared by all threads,
 * the flags mirror and the hand-off between the two sides.
 *
 * Threads (docs/ARCHITECTURE.md says why):
 *   - one Redis thread (redis/): libevent + hiredis via common/rconn.h;
 *     decodes each message once, orders it (redis/history.c), updates the
 *     flags mirror (redis/flags.c), renders the event once per output format
 *     into a refcounted outq_ev_t and hands a reference to every service
 *     thread through gw_bus_t;
 *   - FLAGCAST_THREADS lws service threads (lws/), each with its own
 *     lws_context, its own SO_REUSEPORT listen socket on the same port, its
 *     own subscription index and connections;
 *   - the main thread (main.c) parses settings, owns this context, wires
 *     the bus and waits for signals.
 *
 * Neither side calls the other by name: main.c fills the bus with each
 * side's entry points, so the files form no circle. Every bus call is
 * thread-safe: it takes a lock and wakes the other side (lws_cancel_service,
 * or a libevent user event).
 */
#ifndef FLAGCAST_GATEWAY_GW_H
#define FLAGCAST_GATEWAY_GW_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>

#include "gateway/config.h"
#include "gateway/metrics.h"
#include "gateway/mirror.h"
#include "gateway/outq.h"
#include "gateway/resume.h"

typedef struct gw_bus {
    /* service threads -> Redis thread */
    /* Channel refcounts: a service thread's index gained the first / lost
     * the last local subscriber of ch. */
    void (*want)(const char *ch, bool want);
    /* Queues a resume request (takes it); the answer comes back through
     * resume_done. @return 0, or -1 if the Redis side is stopped (r is then
     * still the caller's). */
    int  (*resume)(gw_resume_t *r);

    /* Redis thread -> service threads */
    /* A rendered event for every service thread; each takes its own
     * reference, the caller keeps its own. */
    void (*dispatch)(outq_ev_t *oev);
    /* A filled resume request back to its service thread (takes it). */
    void (*resume_done)(gw_resume_t *r);
    /* Every local subscriber of ch lost events (flags: a fresh snapshot). */
    void (*resync)(const char *ch, const char *reason, const char *epoch, uint64_t offset);
} gw_bus_t;

typedef struct gw {
    gw_config_t  cfg;
    gw_metrics_t m;
    gw_bus_t     bus;
    atomic_bool  ready;        /* Redis subscribed + mirror loaded */
    atomic_bool  mirror_ever;  /* the mirror was loaded once: snapshots are real */
    atomic_bool  draining;     /* SIGTERM seen: /readyz answers 503 */
    atomic_bool  stopping;     /* drain window open: new streams get 503 */
    atomic_long  conns;        /* streaming connections, all threads */
    /* The flags mirror: written by the Redis thread, read by service
     * threads for snapshots, under mirror_lock. */
    mirror_t        *mirror;
    pthread_rwlock_t mirror_lock;
} gw_t;

#endif
