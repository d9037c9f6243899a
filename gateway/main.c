/*
 * flagcast-gateway — settings, signals and wiring.
 *
 * main() reads the settings (defaults, FLAGCAST_* environment, long options;
 * --help lists them), resolves the connection cap from the open-file limit
 * when it is not set, registers the metrics, starts the Redis thread and the
 * lws service threads, then waits for SIGTERM/SIGINT with sigwait(): every
 * other thread has those signals blocked, so no handler runs inside lws or
 * libevent. On the signal it drains (shutdown.c: /readyz 503, the drain
 * delay, then clients told to go elsewhere spread over the drain window:
 * SSE retry: + close, WS close 1001), stops the threads and exits.
 */
#include "gateway/gw.h"
#include "gateway/ident.h"
#include "gateway/shutdown.h"
#include "gateway/lws/lws.h"
#include "gateway/redis/redis.h"
#include "common/config.h"
#include "common/log.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* The process context (gw.h): handed to every part at start, never read
 * as a global. */
static gw_t gw = { .mirror_lock = PTHREAD_RWLOCK_INITIALIZER };

/* File descriptors kept out of the connection cap: listeners, the reaper's
 * epoll fd, lws's own pipes, Redis, a spare per thread for EMFILE. */
#define GW_FD_RESERVE_BASE       64
#define GW_FD_RESERVE_PER_THREAD 16

static long default_max_conns(void)
{
    struct rlimit rl;
    long reserve = GW_FD_RESERVE_BASE + GW_FD_RESERVE_PER_THREAD * gw.cfg.threads;
    long n;

    /* Without a usable finite limit, a worker's fd table has 65536 slots
     * (lws/worker.c, worker_setup): the default cap must fit in it. */
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur >= 4194304)
        rl.rlim_cur = 65536;
    n = (long)rl.rlim_cur - reserve;
    return n < 16 ? 16 : n;
}

int main(int argc, char **argv)
{
    static char errbuf[256];
    long max_conns = 0;
    sigset_t sigs;
    log_level_t lvl;
    const char *err;
    int sig;

    const cfg_opt_t opts[] = {
        { "listen", "FLAGCAST_LISTEN", CFG_STR, "0.0.0.0:8080",
          "host:port to serve SSE, WebSocket and HTTP on", &gw.cfg.listen, 0, 0 },
        { "redis-url", "FLAGCAST_REDIS_URL", CFG_STR, "redis://127.0.0.1:6379",
          "redis://[:password@]host:port[/db], or redis+sentinel://[:password@]host:port[,host:port...]/master[/db] "
          "(the sentinels' own password: FLAGCAST_REDIS_SENTINEL_PASSWORD; see the README's Deploy)",
          &gw.cfg.redis_url, 0, 0 },
        { "redis-prefix", "FLAGCAST_REDIS_PREFIX", CFG_STR, "flagcast",
          "Redis key prefix", &gw.cfg.prefix, 0, 0 },
        { "auth", "FLAGCAST_AUTH", CFG_STR, "optional",
          "client tokens: required, optional (anonymous allowed, a given token must be valid) or off",
          &gw.cfg.auth, 0, 0 },
        { "auth-timeout", "FLAGCAST_AUTH_TIMEOUT", CFG_INT, "5",
          "seconds a WebSocket without a token may take to send its auth message (auth required)",
          &gw.cfg.auth_timeout, 1, 3600 },
        { "private-channels", "FLAGCAST_PRIVATE_CHANNELS", CFG_STR, NULL,
          "comma list of channel patterns only tokens whose channels claim allows them may read",
          &gw.cfg.private_channels, 0, 0 },
        TOKEN_CFG_OPTS(gw.cfg.tok),
        { "max-connections", "FLAGCAST_MAX_CONNECTIONS", CFG_INT, "0",
          "streaming connection cap, 503 above it (0: open-file limit minus a reserve)",
          &max_conns, 0, 10000000 },
        { "sse-keepalive", "FLAGCAST_SSE_KEEPALIVE", CFG_INT, "15",
          "seconds between SSE keep-alive comments", &gw.cfg.sse_keepalive, 1, 3600 },
        { "sse-retry", "FLAGCAST_SSE_RETRY", CFG_INT, "3000",
          "SSE retry: hint to clients, in ms", &gw.cfg.sse_retry, 0, 3600000 },
        { "redis-timeout-ms", "FLAGCAST_REDIS_TIMEOUT_MS", CFG_INT, "2000",
          "a Redis reply or health ping later than this fails the connection (0: off)",
          &gw.cfg.redis_timeout_ms, 0, 3600000 },
        { "redis-ping-ms", "FLAGCAST_REDIS_PING_MS", CFG_INT, "1000",
          "health ping interval on each Redis connection (0: off)", &gw.cfg.redis_ping_ms, 0,
          3600000 },
        { "queue-max-events", "FLAGCAST_QUEUE_MAX_EVENTS", CFG_INT, "1024",
          "events queued per connection before it counts as slow", &gw.cfg.queue_max_events, 1, 1000000 },
        { "queue-max-bytes", "FLAGCAST_QUEUE_MAX_BYTES", CFG_INT, "4194304",
          "bytes queued per connection before it counts as slow", &gw.cfg.queue_max_bytes, 256, 1073741824 },
        { "resume-max-events", "FLAGCAST_RESUME_MAX_EVENTS", CFG_INT, "10000",
          "events one history read may replay (client resume or gap fill); beyond it: resync",
          &gw.cfg.resume_max, 1, 1000000 },
        { "inbox-max", "FLAGCAST_INBOX_MAX", CFG_INT, "65536",
          "events waiting per service thread; past it an event is dropped and its subscribers resynced",
          &gw.cfg.inbox_max, 1, 16777216 },
        { "max-header-bytes", "FLAGCAST_MAX_HEADER_BYTES", CFG_INT, "16384",
          "largest request head (request line and headers), in bytes; over it: 431",
          &gw.cfg.max_header_bytes, 10240, 32768 },
        { "ws-max-frame", "FLAGCAST_WS_MAX_FRAME", CFG_INT, "65536",
          "largest WebSocket client message, in bytes", &gw.cfg.ws_max_frame, 128, 16777216 },
        { "ws-ping", "FLAGCAST_WS_PING", CFG_INT, "25",
          "seconds of WebSocket silence before the gateway pings", &gw.cfg.ws_ping, 1, 3600 },
        { "ws-idle-timeout", "FLAGCAST_WS_IDLE_TIMEOUT", CFG_INT, "60",
          "seconds without any client frame (pongs count) before closing", &gw.cfg.ws_idle_timeout, 2, 86400 },
        { "ws-max-errors", "FLAGCAST_WS_MAX_ERRORS", CFG_INT, "10",
          "bad WebSocket client messages tolerated before closing", &gw.cfg.ws_max_errors, 1, 1000000 },
        { "cors-origins", "FLAGCAST_CORS_ORIGINS", CFG_STR, "*",
          "allowed CORS origins (echoed with credentials allowed): * or a comma list of scheme://host[:port]",
          &gw.cfg.cors_origins, 0, 0 },
        { "max-body-bytes", "FLAGCAST_MAX_BODY_BYTES", CFG_INT, "1048576",
          "largest request body (the evaluation API's POSTs), in bytes; over it: 413",
          &gw.cfg.max_body_bytes, 1024, 67108864 },
        { "evaluator-role", "FLAGCAST_EVALUATOR_ROLE", CFG_STR, "evaluator",
          "token role that may evaluate any entity (others evaluate their own sub)",
          &gw.cfg.evaluator_role, 0, 0 },
        { "threads", "FLAGCAST_THREADS", CFG_INT, "0",
          "lws service threads (0: one per CPU, at most 16)", &gw.cfg.threads, 0, 64 },
        { "drain-delay", "FLAGCAST_DRAIN_DELAY", CFG_INT, "2",
          "seconds between SIGTERM (/readyz turns 503) and the drain; above the balancer's health-check detection time",
          &gw.cfg.drain_delay, 0, 3600 },
        { "drain-seconds", "FLAGCAST_DRAIN_SECONDS", CFG_INT, "10",
          "window the clients are told to reconnect over on SIGTERM (0: all at once, no delay)",
          &gw.cfg.drain_seconds, 0, 3600 },
        { "log-level", "FLAGCAST_LOG_LEVEL", CFG_STR, "info",
          "debug, info, warn or error", &gw.cfg.log_level, 0, 0 },
        { 0 },
    };

    token_config_init(&gw.cfg.tok);
    switch (cfg_parse(opts, argc, argv, "flagcast-gateway",
                      "flagcast-gateway: pushes flag events and channel messages to SSE and WebSocket clients.",
                      errbuf, sizeof(errbuf))) {
    case 1:
        return 0;
    case -1:
        fprintf(stderr, "flagcast-gateway: %s\n", errbuf);
        return 2;
    }

    log_set_component("gateway");
    if (log_level_parse(gw.cfg.log_level, &lvl) != 0) {
        fprintf(stderr, "flagcast-gateway: bad log level \"%s\" (debug, info, warn, error)\n",
                gw.cfg.log_level);
        return 2;
    }
    log_set_level(lvl);
    if (cfg_parse_hostport(gw.cfg.listen, gw.cfg.host, sizeof(gw.cfg.host), &gw.cfg.port) != 0) {
        fprintf(stderr, "flagcast-gateway: bad listen address \"%s\" (want host:port)\n",
                gw.cfg.listen);
        return 2;
    }
    if (redis_url_parse(gw.cfg.redis_url, &gw.cfg.rurl, &err) != 0) {
        fprintf(stderr, "flagcast-gateway: bad Redis URL: %s\n", err);
        return 2;
    }
    if (strcmp(gw.cfg.auth, "required") != 0 && strcmp(gw.cfg.auth, "optional") != 0 &&
        strcmp(gw.cfg.auth, "off") != 0) {
        fprintf(stderr, "flagcast-gateway: bad auth mode \"%s\" (required, optional, off)\n",
                gw.cfg.auth);
        return 2;
    }
    if (gw.cfg.prefix[0] == '\0' || strlen(gw.cfg.prefix) > 64) {
        fprintf(stderr, "flagcast-gateway: Redis prefix must be 1-64 bytes\n");
        return 2;
    }
    if (gw.cfg.ws_idle_timeout <= gw.cfg.ws_ping) {
        fprintf(stderr, "flagcast-gateway: ws-idle-timeout must be longer than ws-ping\n");
        return 2;
    }
    if (gw.cfg.threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        gw.cfg.threads = n < 1 ? 1 : n > 16 ? 16 : n;
    }
    gw.cfg.max_conns = max_conns > 0 ? max_conns : default_max_conns();
    if (gw_ident_init(&gw, &err) != 0) {
        fprintf(stderr, "flagcast-gateway: %s\n", err);
        return 2;
    }

    /* Block the stop signals in every thread we start; main waits for them.
     * SIGPIPE is ignored: a write to a closed client is an error return. */
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    gw_metrics_init(&gw.m);
    /* the bus: each side reaches the other only through it */
    gw.bus.want = gw_redis_want;
    gw.bus.resume = gw_redis_resume;
    gw.bus.dispatch = gw_lws_dispatch;
    gw.bus.resume_done = gw_lws_resume_done;
    gw.bus.resync = gw_lws_resync;
    log_info("gateway starting", "listen=%s threads=%ld max_connections=%ld version=%s",
             gw.cfg.listen, gw.cfg.threads, gw.cfg.max_conns, FLAGCAST_VERSION);

    if (gw_redis_start(&gw) != 0)
        return 1;
    if (gw_lws_start(&gw) != 0) {
        gw_redis_stop();
        return 1;
    }

    for (;;) {
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGTERM || sig == SIGINT)
            break;
    }
    gw_drain_run(&gw, &sigs, sig);   /* shutdown.c: not ready, delay, paced drain */
    atomic_store(&gw.ready, false);
    /* Redis first: no event is handed over while the workers close. */
    gw_redis_stop();
    gw_lws_stop();
    gw_ident_free();
    log_info("gateway stopped", NULL);
    return 0;
}
