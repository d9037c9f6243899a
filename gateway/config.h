/*
 * config — the gateway's settings, as main.c resolved them (every knob is
 * listed by `flagcast-gateway --help` and in the README, "Configuration").
 * Read-only once the threads start.
 */
#ifndef FLAGCAST_GATEWAY_CONFIG_H
#define FLAGCAST_GATEWAY_CONFIG_H

#include "common/redis_url.h"
#include "common/token.h"

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
    long        max_body_bytes;    /* a POST body (evaluation); over it: 413 */
    const char *evaluator_role;    /* a token holding it may evaluate any entity */
    long        threads;
    const char *log_level;
    long        drain_delay;       /* s: /readyz 503 before the drain starts */
    long        drain_seconds;     /* s: window the clients are closed over */
    /* identity (ident.c) */
    long        auth_timeout;      /* seconds a WS may take to send `auth` */
    const char *private_channels;  /* FLAGCAST_PRIVATE_CHANNELS */
    token_config_t tok;            /* FLAGCAST_JWT_*, FLAGCAST_API_KEYS */
    /* history and recovery (redis/history.c) */
    long        resume_max;        /* events one gap fill or resume may replay */
} gw_config_t;

#endif
