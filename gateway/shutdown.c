/*
 * shutdown — the main thread's side of a graceful drain on SIGTERM/SIGINT.
 *
 * Phases (times from the first signal):
 *   1. out of rotation: /readyz answers 503 at once (g->draining), streams
 *      are still accepted; wait FLAGCAST_DRAIN_DELAY seconds so that the
 *      load balancer's health check sees it (haproxy marks a server down
 *      after `fall` failed checks: the first within `inter`, the next ones
 *      `fastinter` apart; deploy/haproxy.cfg has inter 1s fastinter 250ms
 *      fall 2, i.e. at most ~1.3 s plus the check's latency, under the
 *      default delay of 2 s);
 *   2. drain window: new streams get 503 (g->stopping), and every service
 *      thread closes its connections paced evenly over
 *      FLAGCAST_DRAIN_SECONDS less the longest retry hint (gw_lws_drain,
 *      drain_pace_ns): SSE with a jittered `retry:` hint, WS with close
 *      1001. The window ends when no stream is
 *      left or at its deadline;
 *   3. stop (main.c): Redis, then the service threads, which close whatever
 *      is left.
 * A second signal in phase 1 or 2 goes to phase 3 at once. A window of 0
 * skips phases 1 and 2 (the old immediate stop). The signals are blocked in
 * every thread; this waits for them with sigtimedwait, so no handler runs.
 */
#include "gateway/shutdown.h"
#include "gateway/clock.h"
#include "gateway/lws/lws.h"
#include "gateway/drain.h"
#include "common/log.h"

#include <errno.h>
#include <signal.h>
#include <time.h>

#define GW_DRAIN_POLL_NS (50 * 1000000ull)   /* how often the window checks for empty */

static const char *sig_name(int sig)
{
    return sig == SIGTERM ? "TERM" : sig == SIGINT ? "INT" : "other";
}

/* Waits until deadline_ns (monotonic) for a stop signal.
 * @return the signal, or 0 at the deadline. */
static int wait_signal(const sigset_t *sigs, uint64_t deadline_ns)
{
    for (;;) {
        uint64_t now = gw_now_ns();
        struct timespec ts;
        int sig;

        if (now >= deadline_ns)
            return 0;
        ts.tv_sec = (time_t)((deadline_ns - now) / 1000000000ull);
        ts.tv_nsec = (long)((deadline_ns - now) % 1000000000ull);
        sig = sigtimedwait(sigs, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT)
            return sig;
        if (sig < 0 && errno != EAGAIN && errno != EINTR)
            return 0;
    }
}

void gw_drain_run(gw_t *g, const sigset_t *sigs, int sig)
{
    uint64_t t0 = gw_now_ns(), t1 = t0, deadline, end;
    uint64_t window_ns = (uint64_t)g->cfg.drain_seconds * 1000000000ull;
    long before = atomic_load(&g->conns);
    const char *how = "empty";
    int sig2 = 0;

    atomic_store(&g->draining, true);
    metric_set(g->m.draining, 1);
    if (window_ns == 0) {
        log_info("gateway stopping", "signal=%s connections=%ld drain=off", sig_name(sig), before);
        atomic_store(&g->stopping, true);
        return;
    }
    log_info("gateway draining: not ready, waiting for the load balancer",
             "signal=%s connections=%ld drain_delay_s=%ld drain_seconds=%ld",
             sig_name(sig), before, g->cfg.drain_delay, g->cfg.drain_seconds);

    sig2 = wait_signal(sigs, t0 + (uint64_t)g->cfg.drain_delay * 1000000000ull);
    if (sig2 == 0) {
        t1 = gw_now_ns();
        before = atomic_load(&g->conns);
        atomic_store(&g->stopping, true);
        log_info("gateway draining: telling clients to reconnect elsewhere",
                 "connections=%ld drain_seconds=%ld", before, g->cfg.drain_seconds);
        gw_lws_drain(drain_pace_ns(window_ns, (unsigned)g->cfg.sse_retry));
        deadline = t1 + window_ns;
        while (atomic_load(&g->conns) > 0) {
            uint64_t now = gw_now_ns();
            if (now >= deadline) {
                how = "deadline";
                break;
            }
            sig2 = wait_signal(sigs, now + GW_DRAIN_POLL_NS < deadline ? now + GW_DRAIN_POLL_NS : deadline);
            if (sig2 != 0)
                break;
        }
    }
    if (sig2 != 0) {
        how = "signal";
        log_info("second signal: stopping now", "signal=%s", sig_name(sig2));
    }
    atomic_store(&g->stopping, true);
    end = gw_now_ns();
    log_info("gateway drained",
             "how=%s drained_sse=%lld drained_ws=%lld left=%ld drain_ms=%llu total_ms=%llu",
             how, (long long)metric_get(g->m.drained_sse), (long long)metric_get(g->m.drained_ws),
             atomic_load(&g->conns), (unsigned long long)((end - t1) / 1000000),
             (unsigned long long)((end - t0) / 1000000));
}
