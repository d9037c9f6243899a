/*
 * pub — the publisher daemon's shared state: configuration, the event base,
 * the HTTP server, the Redis connection and the Lua script's SHA.
 *
 * api.c routes and authenticates requests and dispatches them to flags.c
 * (flag reads and mutations) and msgs.c (messages, recipients, A/B); req.c
 * holds a request's life and the replies; store.c owns publish.lua's calls
 * (the argument vector and the reply); main.c wires them together and runs
 * the loop. All of it runs on one thread.
 */
#ifndef FLAGCAST_PUB_H
#define FLAGCAST_PUB_H

#include <stdbool.h>
#include <stdint.h>
#include <event2/event.h>
#include <event2/http.h>
#include "common/auth.h"
#include "common/token.h"
#include "common/metrics.h"
#include "common/rconn.h"

#define PUB_KEY_MAX 512        /* a Redis key built from prefix + channel */
#define PUB_MAX_TARGETS 1000   /* users + roles of one targeted message */
#define PUB_MAX_VARIANTS 64    /* variants of one A/B message */
#define PUB_MAX_WEIGHT 1000000 /* a variant's weight */
#define PUB_UPDATE_RETRIES 5   /* without If-Match, retries on a concurrent change */

/* The publisher's metrics, in one place: X(handle, kind, name, help) with
 * kind COUNTER, GAUGE or HISTOGRAM (the latency bounds are in main.c).
 * p->m.<handle> is the metric; main.c registers the list in this order.
 * Series of one family (same name before '{') share one # HELP, given on
 * the first series only. */
#define PUB_METRICS(X)                                                                    \
    X(req_2xx, COUNTER, "flagcast_publisher_http_requests_total{class=\"2xx\"}",          \
      "HTTP requests answered, by status class")                                          \
    X(req_4xx, COUNTER, "flagcast_publisher_http_requests_total{class=\"4xx\"}", "")      \
    X(req_5xx, COUNTER, "flagcast_publisher_http_requests_total{class=\"5xx\"}", "")      \
    X(publications, COUNTER, "flagcast_publisher_publications_total",                     \
      "messages published (one per channel)")                                             \
    X(conflicts, COUNTER, "flagcast_publisher_version_conflicts_total",                   \
      "updates refused or retried because the version moved")                             \
    X(noscript, COUNTER, "flagcast_publisher_script_reloads_total",                       \
      "NOSCRIPT answers that made the publisher reload the script")                       \
    X(redis_connected, GAUGE, "flagcast_publisher_redis_connected",                       \
      "1 while the Redis connection is up")                                               \
    X(redis_reconnects, GAUGE, "flagcast_publisher_redis_reconnects",                     \
      "Redis reconnects since start")                                                     \
    X(inflight, GAUGE, "flagcast_publisher_inflight_requests",                            \
      "admin requests waiting for Redis")                                                 \
    X(latency, HISTOGRAM, "flagcast_publisher_request_seconds", "admin request latency")

typedef struct pub_cfg {
    const char *listen;
    const char *redis_url;
    const char *prefix;
    const char *admin_tokens;
    const char *api_keys;        /* FLAGCAST_API_KEYS (entries with role admin) */
    const char *jwt_secret;      /* FLAGCAST_JWT_SECRET (HS256) */
    const char *jwt_pubkey;      /* FLAGCAST_JWT_PUBKEY (RS256 PEM file) */
    const char *jwt_issuer;
    const char *jwt_audience;
    long        jwt_leeway;
    const char *log_level;
    long        history_size;
    long        history_ttl;
    long        max_body;
    long        drain_timeout;
    long        redis_timeout_ms;
    long        redis_ping_ms;
} pub_cfg_t;

typedef struct pub {
    pub_cfg_t                   cfg;
    struct event_base          *base;
    struct evhttp              *http;
    struct evhttp_bound_socket *sock;
    rconn_t                    *rc;
    auth_t                     *auth;        /* static admin tokens */
    token_verifier_t           *tv;          /* API keys and JWTs (role "admin") */
    char                        sha[41];     /* "" until SCRIPT LOAD answered */
    bool                        draining;
    long                        inflight;    /* requests waiting on Redis */
    long                        sending;     /* replies not yet fully written (approx.:
                                              * a client that left is never counted down) */

    /* Redis key names read outside publish.lua (prefix applied); the
     * script's own keys are named by store.c. */
    char k_flags[PUB_KEY_MAX], k_seq[PUB_KEY_MAX];
    char k_part_seq[PUB_KEY_MAX]; /* variant and segment ids (flags.c) */

    struct {
#define PUB_METRIC_HANDLE(handle, kind, name, help) metric_t *handle;
        PUB_METRICS(PUB_METRIC_HANDLE)
#undef PUB_METRIC_HANDLE
    } m;
} pub_t;

/* api.c: installs the HTTP handlers on p->http. */
void api_install(pub_t *p);

/* store.c: (re)loads the Lua script; called on every Redis connect. */
void store_load_script(pub_t *p);

/* Builds "<prefix>:<kind>:<name>" into out. @return 0, -1 if too long. */
int  pub_key(const pub_t *p, char *out, size_t len, const char *kind, const char *name);

#endif
