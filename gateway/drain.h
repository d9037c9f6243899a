/*
 * drain — the pacing of a graceful drain, as pure arithmetic.
 *
 * On SIGTERM a gateway first turns /readyz false and waits
 * FLAGCAST_DRAIN_DELAY seconds, long enough for the load balancer's health
 * check to take it out of rotation (haproxy: inter + (fall - 1) * fastinter,
 * plus the check's own latency). Then it tells its clients to reconnect
 * elsewhere, not all at once but spread evenly over FLAGCAST_DRAIN_SECONDS:
 * if a worker held n connections when the window opened, its i-th close
 * (0-based) is due at start + window * i / n, so the first goes at once and
 * the last at window * (n - 1) / n, leaving it time to reconnect before the
 * deadline (drain_pace_ns shortens the paced part by the longest retry
 * hint, for the same reason). Each SSE client also gets a jittered `retry:` hint (uniform in
 * [base/2, 3*base/2]) so that those closed in the same tick do not come back
 * in the same millisecond. Other gateways thus see a steady trickle of
 * reconnects instead of a storm.
 *
 * Each service thread owns one drain_t; nothing here is shared or locked.
 */
#ifndef FLAGCAST_GATEWAY_DRAIN_H
#define FLAGCAST_GATEWAY_DRAIN_H

#include <stdbool.h>
#include <stdint.h>

typedef struct drain {
    uint64_t start_ns;     /* when the window opened (monotonic ns) */
    uint64_t window_ns;    /* its length; 0 closes everyone at once */
    uint64_t total;        /* connections held when it opened */
    uint64_t closed;       /* closes done so far (drain_done) */
    uint64_t rnd;          /* xorshift64 state for the jitter, never 0 */
} drain_t;

/* Opens the window at now_ns for total connections. seed varies the
 * jitter between threads (any value; 0 is replaced). */
void drain_begin(drain_t *d, uint64_t now_ns, uint64_t window_ns, uint64_t total,
                 uint64_t seed);

/* How many closes should have happened by now_ns (0..total): all of them
 * once the window has passed or if it is 0. */
uint64_t drain_target(const drain_t *d, uint64_t now_ns);

/* How many more connections to close now: drain_target - closed, or 0. */
uint64_t drain_due(const drain_t *d, uint64_t now_ns);

/* Records n closes. */
void drain_done(drain_t *d, uint64_t n);

/* When the next close is due after the ones done so far (monotonic ns);
 * start_ns + window_ns once all are done. */
uint64_t drain_next_ns(const drain_t *d);

/* The part of a drain window over which closes are paced: the window less
 * the longest jittered retry hint (3*retry_ms/2), so that the last SSE
 * client closed is back on another gateway before the window ends; but at
 * least half the window, so that a long hint does not bunch the closes. */
uint64_t drain_pace_ns(uint64_t window_ns, unsigned retry_ms);

/* A jittered retry hint around base_ms: uniform in [base/2, base*3/2]
 * (base_ms itself if 0 or 1). Advances the generator. */
unsigned drain_retry_ms(drain_t *d, unsigned base_ms);

#endif
