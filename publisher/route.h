/*
 * route — the admin API's URL routing and header parsing, as pure functions
 * (no libevent), so unit tests reach them without a socket.
 *
 *   /healthz /readyz /metrics
 *   /api/v1/flags                       (GET list, POST create)
 *   /api/v1/flags/{key}                 (GET, PUT, DELETE)
 *   /api/v1/flags/{key}/enabled         (PUT)
 *   /api/v1/flags/{key}/segments        (PUT)
 *   /api/v1/flags/{key}/variants        (PUT)
 *   /api/v1/channels/{channel}/messages (POST)
 *   /api/v1/messages                    (POST)
 *
 * Path segments are percent-decoded after splitting, so a flag key holding
 * '/' is addressed as %2F. A trailing '/' is ignored.
 */
#ifndef FLAGCAST_ROUTE_H
#define FLAGCAST_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#define ROUTE_ARG_MAX 256   /* decoded {key} / {channel}, bytes */

typedef enum route_id {
    RT_NOT_FOUND = 0,
    RT_HEALTHZ,
    RT_READYZ,
    RT_METRICS,
    RT_FLAGS,
    RT_FLAG,
    RT_FLAG_ENABLED,
    RT_FLAG_SEGMENTS,
    RT_FLAG_VARIANTS,
    RT_CHANNEL_MESSAGES,
    RT_MESSAGES
} route_id_t;

typedef struct route {
    route_id_t id;
    char       arg[ROUTE_ARG_MAX + 1];  /* decoded {key} or {channel} */
    size_t     arglen;
} route_t;

/* Matches a request path (no query string; it is cut at '?' if present).
 * @return 0 with r filled (r->id may be RT_NOT_FOUND), or -1 if the path is
 * malformed (bad percent escape, NUL, argument too long). */
int route_match(const char *path, route_t *r);

/* Percent-decodes src[n] into dst[dstlen] (NUL-terminated).
 * @return the decoded length, or -1 on a bad escape, %00, or overflow. */
long route_pct_decode(const char *src, size_t n, char *dst, size_t dstlen);

/* Parses an If-Match value: 7, "7" or W/"7". @return 0 or -1. */
int route_if_match(const char *h, uint64_t *version);

#endif
