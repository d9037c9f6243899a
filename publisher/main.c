/*
 * flagcast-publisher — the admin HTTP/JSON API that stores flag changes and
 * channel messages in Redis and publishes them, atomically, via publish.lua.
 *
 * One thread, one libevent loop: evhttp serves the API, rconn keeps the
 * Redis connection (reloading the script after every connect). SIGTERM and
 * SIGINT drain: stop accepting, answer /readyz 503, let requests that wait on
 * Redis finish (bounded by --drain-timeout), then exit 0.
 */
#include "publisher/pub.h"
#include "publisher/store.h"
#include "common/config.h"
#include "common/log.h"

#include <event2/http.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pub_t P;

static const cfg_opt_t opts[] = {
    { "listen", "FLAGCAST_LISTEN", CFG_STR, "127.0.0.1:8081",
      "host:port the admin API listens on", &P.cfg.listen, 0, 0 },
    { "redis-url", "FLAGCAST_REDIS_URL", CFG_STR, "redis://127.0.0.1:6379",
      "Redis server, redis://[:password@]host:port[/db] (redis+sentinel://, "
      "redis+cluster:// see the README)", &P.cfg.redis_url, 0, 0 },
    { "redis-prefix", "FLAGCAST_REDIS_PREFIX", CFG_STR, "flagcast",
      "prefix of every Redis key and channel", &P.cfg.prefix, 0, 0 },
    { "admin-tokens", "FLAGCAST_ADMIN_TOKENS", CFG_STR, NULL,
      "comma list of admin bearer tokens, each TOKEN or NAME:TOKEN (none: refuse all)",
      &P.cfg.admin_tokens, 0, 0 },
    { "api-keys", "FLAGCAST_API_KEYS", CFG_STR, NULL,
      "API keys, key=user[:role1+role2],...; keys whose identity holds role admin may "
      "use the admin API", &P.cfg.api_keys, 0, 0 },
    { "jwt-secret", "FLAGCAST_JWT_SECRET", CFG_STR, NULL,
      "HS256 secret (at least 32 bytes) for admin JWTs (role admin)", &P.cfg.jwt_secret, 0, 0 },
    { "jwt-pubkey", "FLAGCAST_JWT_PUBKEY", CFG_STR, NULL,
      "RS256 public key file (PEM) for admin JWTs (role admin)", &P.cfg.jwt_pubkey, 0, 0 },
    { "jwt-leeway", "FLAGCAST_JWT_LEEWAY", CFG_INT, "30",
      "seconds of clock skew tolerated on exp and nbf", &P.cfg.jwt_leeway, 0, 3600 },
    { "jwt-issuer", "FLAGCAST_JWT_ISSUER", CFG_STR, NULL,
      "required iss claim of JWTs (none: not checked)", &P.cfg.jwt_issuer, 0, 0 },
    { "jwt-audience", "FLAGCAST_JWT_AUDIENCE", CFG_STR, NULL,
      "required aud claim of JWTs (none: not checked)", &P.cfg.jwt_audience, 0, 0 },
    { "history-size", "FLAGCAST_HISTORY_SIZE", CFG_INT, "10000",
      "entries kept in each channel's history stream", &P.cfg.history_size, 1, 100000000 },
    { "history-ttl", "FLAGCAST_HISTORY_TTL", CFG_INT, "86400",
      "seconds an idle non-flag channel's history is kept (0: forever)",
      &P.cfg.history_ttl, 0, 100000000 },
    { "max-body", "FLAGCAST_MAX_BODY", CFG_INT, "1048576",
      "largest accepted request body, bytes", &P.cfg.max_body, 64, 64 * 1024 * 1024 },
    { "drain-timeout", "FLAGCAST_DRAIN_TIMEOUT", CFG_INT, "10",
      "seconds to wait for in-flight requests on SIGTERM", &P.cfg.drain_timeout, 0, 3600 },
    { "redis-timeout-ms", "FLAGCAST_REDIS_TIMEOUT_MS", CFG_INT, "2000",
      "a Redis reply or health ping later than this fails the connection (0: off)",
      &P.cfg.redis_timeout_ms, 0, 3600000 },
    { "redis-ping-ms", "FLAGCAST_REDIS_PING_MS", CFG_INT, "1000",
      "health ping interval on the Redis connection (0: off)", &P.cfg.redis_ping_ms, 0, 3600000 },
    { "redis-sentinel-password", "FLAGCAST_REDIS_SENTINEL_PASSWORD", CFG_STR, NULL,
      "password of the sentinels (redis+sentinel://; the URL's is the master's)",
      &P.cfg.sentinel_password, 0, 0 },
    { "redis-min-replicas", "FLAGCAST_REDIS_MIN_REPLICAS", CFG_INT, "-1",
      "replicas that must acknowledge a write (WAIT) before it is answered 2xx; "
      "-1: 1 with redis+sentinel://, 0 otherwise", &P.cfg.min_replicas, -1, 16 },
    { "redis-wait-ms", "FLAGCAST_REDIS_WAIT_MS", CFG_INT, "1000",
      "how long a write waits for those replicas before it is answered 503 "
      "not_acknowledged (below --redis-timeout-ms)", &P.cfg.wait_ms, 1, 3600000 },
    { "log-level", "FLAGCAST_LOG_LEVEL", CFG_STR, "info",
      "debug, info, warn or error", &P.cfg.log_level, 0, 0 },
    { 0 }
};

int pub_key(const pub_t *p, char *out, size_t len, const char *kind, const char *name)
{
    int n = name ? snprintf(out, len, "%s:%s:%s", p->cfg.prefix, kind, name)
                 : snprintf(out, len, "%s:%s", p->cfg.prefix, kind);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

static void on_redis_state(rconn_t *rc, int connected, void *arg)
{
    pub_t *p = arg;
    metric_set(p->m.redis_connected, connected);
    if (connected)
        store_load_script(p);
    else
        p->sha[0] = '\0';
}

static struct event *drain_timer;
static struct timeval drain_started;
static long long idle_since_ms = -1;   /* when in-flight requests reached 0 */

#define DRAIN_FLUSH_MS 500   /* at most this long for the last replies to go out */

/* Drain: wait for requests waiting on Redis, then (briefly) for their
 * replies to be written, then leave the loop. */
static void drain_check(evutil_socket_t fd, short what, void *arg)
{
    pub_t *p = arg;
    struct timeval now;
    long long now_ms;
    event_base_gettimeofday_cached(p->base, &now);
    now_ms = (long long)now.tv_sec * 1000 + now.tv_usec / 1000;
    if (p->inflight <= 0 && idle_since_ms < 0)
        idle_since_ms = now_ms;
    if ((p->inflight <= 0 && (p->sending <= 0 || now_ms - idle_since_ms >= DRAIN_FLUSH_MS)) ||
        now.tv_sec - drain_started.tv_sec >= p->cfg.drain_timeout) {
        if (p->inflight > 0)
            log_warn("drain timeout, exiting with requests in flight", "inflight=%ld",
                     p->inflight);
        event_base_loopexit(p->base, NULL);
        return;
    }
    struct timeval tv = { 0, 10000 };
    evtimer_add(drain_timer, &tv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    pub_t *p = arg;
    if (p->draining)
        return;
    p->draining = true;
    log_info("shutting down", "signal=%d inflight=%ld", (int)sig, p->inflight);
    if (p->sock) {
        evhttp_del_accept_socket(p->http, p->sock);
        p->sock = NULL;
    }
    event_base_gettimeofday_cached(p->base, &drain_started);
    drain_timer = evtimer_new(p->base, drain_check, p);
    drain_check(-1, 0, p);
}

/* Registers PUB_METRICS (pub.h). */
static void metrics_init(pub_t *p)
{
    static const double lat[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                  0.25, 0.5, 1 };
#define NEW_COUNTER(name, help)   metrics_counter(name, help)
#define NEW_GAUGE(name, help)     metrics_gauge(name, help)
#define NEW_HISTOGRAM(name, help) metrics_histogram(name, help, lat, sizeof(lat) / sizeof(lat[0]))
#define REGISTER(handle, kind, name, help) p->m.handle = NEW_##kind(name, help);
    PUB_METRICS(REGISTER)
#undef REGISTER
#undef NEW_COUNTER
#undef NEW_GAUGE
#undef NEW_HISTOGRAM
}

int main(int argc, char **argv)
{
    pub_t *p = &P;
    char err[256], host[256];
    const char *e;
    redis_url_t url;
    log_level_t lvl;
    int port, rc;

    rc = cfg_parse(opts, argc, argv, "flagcast-publisher",
                   "flagcast admin API: stores flag changes and channel messages in Redis "
                   "and publishes them.", err, sizeof(err));
    if (rc != 0) {
        if (rc < 0)
            fprintf(stderr, "flagcast-publisher: %s\n", err);
        return rc < 0 ? 2 : 0;
    }
    log_set_component("publisher");
    if (log_level_parse(p->cfg.log_level, &lvl) < 0) {
        fprintf(stderr, "flagcast-publisher: --log-level must be debug, info, warn or error\n");
        return 2;
    }
    log_set_level(lvl);
    if (cfg_parse_hostport(p->cfg.listen, host, sizeof(host), &port) < 0) {
        fprintf(stderr, "flagcast-publisher: --listen must be host:port, got \"%s\"\n",
                p->cfg.listen);
        return 2;
    }
    if (redis_url_parse(p->cfg.redis_url, &url, &e) < 0) {
        fprintf(stderr, "flagcast-publisher: --redis-url: %s\n", e);
        return 2;
    }
    if (rconn_url_supported(&url, &e) != 0) {
        fprintf(stderr, "flagcast-publisher: --redis-url: %s\n", e);
        return 2;
    }
    if (p->cfg.sentinel_password && *p->cfg.sentinel_password) {
        if (strlen(p->cfg.sentinel_password) >= sizeof(url.sentinel_password)) {
            fprintf(stderr, "flagcast-publisher: --redis-sentinel-password is too long\n");
            return 2;
        }
        strcpy(url.sentinel_password, p->cfg.sentinel_password);
    }
    if (p->cfg.min_replicas < 0)
        p->cfg.min_replicas = url.kind == REDIS_URL_SENTINEL ? 1 : 0;
    if (p->cfg.min_replicas > 0 && p->cfg.redis_timeout_ms > 0 &&
        p->cfg.wait_ms >= p->cfg.redis_timeout_ms) {
        fprintf(stderr, "flagcast-publisher: --redis-wait-ms (%ld) must be below "
                "--redis-timeout-ms (%ld), or the wait would fail the connection\n",
                p->cfg.wait_ms, p->cfg.redis_timeout_ms);
        return 2;
    }
    if (p->cfg.prefix == NULL || !*p->cfg.prefix || strlen(p->cfg.prefix) > 64 ||
        strpbrk(p->cfg.prefix, " \t\r\n{}")) {
        fprintf(stderr, "flagcast-publisher: --redis-prefix must be 1-64 bytes without spaces or braces\n");
        return 2;
    }
    p->auth = auth_new(p->cfg.admin_tokens, &e);
    if (p->auth == NULL) {
        fprintf(stderr, "flagcast-publisher: --admin-tokens: %s\n", e);
        return 2;
    }
    {
        token_config_t tc;
        token_config_init(&tc);
        tc.jwt_secret = p->cfg.jwt_secret;
        tc.jwt_pubkey_file = p->cfg.jwt_pubkey;
        tc.leeway = p->cfg.jwt_leeway;
        tc.issuer = p->cfg.jwt_issuer;
        tc.audience = p->cfg.jwt_audience;
        tc.api_keys = p->cfg.api_keys;
        p->tv = token_verifier_new(&tc, &e);
        if (p->tv == NULL) {
            fprintf(stderr, "flagcast-publisher: JWT / API key settings: %s\n", e);
            return 2;
        }
    }
    pub_key(p, p->k_flags, sizeof(p->k_flags), "flags", NULL);
    pub_key(p, p->k_seq, sizeof(p->k_seq), "flag-seq", NULL);
    pub_key(p, p->k_part_seq, sizeof(p->k_part_seq), "part-seq", NULL);
    metrics_init(p);
    signal(SIGPIPE, SIG_IGN);

    p->base = event_base_new();
    p->http = p->base ? evhttp_new(p->base) : NULL;
    if (p->http == NULL) {
        log_error("cannot create the event loop", NULL);
        return 1;
    }
    evhttp_set_max_body_size(p->http, (ev_ssize_t)p->cfg.max_body);
    evhttp_set_max_headers_size(p->http, 16 * 1024);
    evhttp_set_timeout(p->http, 60);
    evhttp_set_allowed_methods(p->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
                                            EVHTTP_REQ_OPTIONS);
    api_install(p);
    p->sock = evhttp_bind_socket_with_handle(p->http, host, (ev_uint16_t)port);
    if (p->sock == NULL) {
        log_error("cannot listen", "listen=%s", p->cfg.listen);
        return 1;
    }
    p->rc = rconn_new(p->base, &url, "publisher", on_redis_state, p);
    if (p->rc)
        rconn_set_timeouts(p->rc, (unsigned)p->cfg.redis_timeout_ms, (unsigned)p->cfg.redis_ping_ms);
    if (p->rc == NULL || rconn_start(p->rc) < 0) {
        log_error("cannot start the Redis connection", NULL);
        return 1;
    }
    /* libevent restores the disposition it found when the signal events are
     * freed: make that "ignore", so that a second SIGTERM arriving during the
     * teardown after the drain (docker stop, a supervisor's retry) cannot
     * kill the process by signal instead of letting it exit 0. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    struct event *sigterm = evsignal_new(p->base, SIGTERM, on_signal, p);
    struct event *sigint = evsignal_new(p->base, SIGINT, on_signal, p);
    evsignal_add(sigterm, NULL);
    evsignal_add(sigint, NULL);

    if (auth_count(p->auth) == 0 && !token_verifier_enabled(p->tv))
        log_warn("no admin credentials configured: every admin API call will be refused "
                 "with 401", "hint=\"set FLAGCAST_ADMIN_TOKENS, FLAGCAST_API_KEYS or "
                 "FLAGCAST_JWT_SECRET / FLAGCAST_JWT_PUBKEY\"");
    log_info("publisher listening", "listen=%s:%d redis=%s:%d redis_kind=%s min_replicas=%ld "
             "prefix=%s admin_tokens=%zu jwt_hs256=%s jwt_rs256=%s api_keys=%s version=%s",
             host, port, url.host, url.port, redis_url_kind_name(url.kind), p->cfg.min_replicas,
             p->cfg.prefix, auth_count(p->auth),
             p->cfg.jwt_secret && *p->cfg.jwt_secret ? "on" : "off",
             p->cfg.jwt_pubkey && *p->cfg.jwt_pubkey ? "on" : "off",
             p->cfg.api_keys && *p->cfg.api_keys ? "on" : "off", FLAGCAST_VERSION);

    event_base_dispatch(p->base);

    log_info("publisher stopped", NULL);
    event_free(sigterm);
    event_free(sigint);
    if (drain_timer)
        event_free(drain_timer);
    rconn_free(p->rc);
    evhttp_free(p->http);
    event_base_free(p->base);
    auth_free(p->auth);
    token_verifier_free(p->tv);
    metrics_free_all();
    return 0;
}
