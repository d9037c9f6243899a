/*
 * admit — the gateway's admission decisions at the protocol edge, as pure
 * functions: whether a new stream is taken or refused (and how, so that the
 * client's library retries), what the health endpoint says, which WebSocket
 * subprotocol an upgrade asks for, and which CORS origins are allowed.
 *
 * A refusal the client should retry must be sent in a form its library
 * retries (DESIGN.md): browsers' EventSource and npm `eventsource` give up
 * for good on any non-200 answer, so an SSE stream that is refused because
 * the gateway is draining, starting (flags not loaded yet) or at its
 * connection cap is answered `200 text/event-stream` with a comment naming
 * the reason and a jittered `retry:` hint, then ends; the client comes back
 * after the hint (through the balancer, usually on another gateway). A
 * WebSocket is upgraded and closed at once with 1012 (service restart:
 * draining) or 1013 (try again later: starting, full), codes WS clients
 * retry on. /readyz stays 503 for balancers.
 *
 * Nothing here does I/O or reads globals; gateway/lws/ passes the state in.
 */
#ifndef FLAGCAST_GW_ADMIT_H
#define FLAGCAST_GW_ADMIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "proto/buf.h"

typedef enum admit {
    ADMIT_OK = 0,
    ADMIT_DRAINING,   /* SIGTERM: the drain window is open */
    ADMIT_STARTING,   /* the flags were never loaded: a snapshot would be empty */
    ADMIT_FULL        /* at the connection cap (or beyond the fd table) */
} admit_t;

#define ADMIT_WS_SERVICE_RESTART 1012   /* RFC 6455 registry: draining */
#define ADMIT_WS_TRY_AGAIN_LATER 1013   /* starting, full */

/* The decision for a new stream, in this order: draining, starting, full. */
admit_t admit_stream(bool stopping, bool mirror_loaded, bool over_capacity);

/* The connection cap, atomically: takes one slot of *count if fewer than
 * cap are held (a compare-and-swap, so that threads admitting at once never
 * hold more than cap together). @return true if a slot was taken; it must be
 * given back exactly once with admit_release. */
bool admit_reserve(atomic_long *count, long cap);
void admit_release(atomic_long *count);

/* "draining", "starting", "full" ("" for ADMIT_OK): the X-Flagcast-Refused
 * header and the log's reason. */
const char *admit_reason(admit_t a);
/* A sentence for the client ("gateway is draining: reconnect elsewhere"...). */
const char *admit_message(admit_t a);
/* The WS close code for a refusal (1012 draining, 1013 otherwise). */
unsigned admit_ws_close(admit_t a);

/* A jittered retry hint: uniform in [base/2, 3*base/2] (base if < 2), so
 * that clients refused together do not return together. *rnd is xorshift64
 * state (0 is replaced by a constant). */
unsigned admit_retry_ms(uint64_t *rnd, unsigned base_ms);

/* The body of a refused SSE stream: ": <message>\n" then "retry: <ms>\n\n".
 * @return 0, or -1 (out->err). */
int admit_render_sse(admit_t a, unsigned retry_ms, buf_t *out);

/* Health (GET /api/v1/realtime/sse/health, /realtime/sse/health): healthy
 * only while the gateway takes and feeds new streams: Redis connected and
 * subscribed (ready), the flags loaded once, not draining. @return NULL when
 * healthy, else the reason ("draining", "starting: flags not loaded yet",
 * "redis unavailable"). */
const char *admit_health(bool ready, bool mirror_loaded, bool draining);

/* The WebSocket subprotocols served; the first one is the default. */
#define ADMIT_WS_PROTOCOLS "flagcast.json, flagcast.msgpack"

/* Checks a Sec-WebSocket-Protocol header value (n bytes; a comma list, as
 * RFC 6455 sends it): a missing or empty header is fine (the default), else
 * at least one listed name must be served. On refusal writes into bad
 * (badlen bytes, NUL-terminated, printable) the names asked for, for the
 * 400 answer. @return 0 if acceptable, -1 if not. */
int admit_ws_subprotocol(const char *hdr, size_t n, char *bad, size_t badlen);

/* CORS: whether origin (olen bytes) is allowed by list, FLAGCAST_CORS_ORIGINS:
 * "*" (any origin), or a comma list of origins compared case-insensitively
 * (scheme://host[:port]), an item "*" among them also allowing any; spaces
 * around items are ignored. An allowed origin is echoed with
 * Access-Control-Allow-Credentials: true (so that EventSource(url,
 * {withCredentials: true}) works: the browser refuses "*" with credentials).
 * An origin with a control character, a comma or over 255 bytes is never
 * allowed (it is echoed into a header). */
bool admit_origin_allowed(const char *list, const char *origin, size_t olen);

#endif
