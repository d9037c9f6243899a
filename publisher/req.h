/*
 * req — one admin API request, from its arrival to its reply.
 *
 * api.c makes a req_t for each /api/v1 request (req_new); flags.c and
 * msgs.c fill it and send Redis calls with it as their argument; exactly one
 * of req_reply / req_error / req_unavailable answers it, logs it and frees
 * it. libevent keeps a request alive until we reply even if its client
 * left (evhttp_send_reply then just frees it), so a req_t never dangles.
 *
 * Replies are JSON; errors are {"error":{"code":...,"message":...}}.
 * req_send* answer an evhttp request that has no req_t (health, metrics,
 * refusals before the admin API).
 */
#ifndef FLAGCAST_REQ_H
#define FLAGCAST_REQ_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <event2/http.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include "publisher/pub.h"
#include "publisher/route.h"
#include "publisher/store.h"
#include "proto/buf.h"
#include "proto/event.h"
#include "proto/flag.h"

/* One variant of a per-user A/B message. */
typedef struct ab_variant {
    char     *name;
    char     *data;      /* msgpack of {"variant": name, "data": payload} */
    size_t    len;
    uint64_t  weight;
} ab_variant_t;

typedef struct req {
    pub_t                 *p;
    struct evhttp_request *r;
    route_t                rt;
    enum evhttp_cmd_type   method;
    ev_type_t              type;
    unsigned               mask;        /* JSON fields the route accepts */
    json_t                *body;
    auth_identity_t        who;
    bool                   has_if_match;
    uint64_t               if_match;
    int                    attempts;
    size_t                 fresh_ids; /* variant/segment ids being allocated */
    int                    status;      /* of the reply, for the access log */
    char                   qpath[256];  /* request path, quoted for the log (the
                                         * evhttp request may be gone at the end) */
    struct timespec        t0;
    flag_t                 next;        /* the record being written */
    uint64_t               id;
    /* messages, and the inboxes of a flag change addressed with "to" */
    char                 **channels;    /* "user:<id>" / "role:<name>" */
    size_t                 nch;
    size_t                 nroles;      /* how many of channels are roles */
    char                  *data;        /* msgpack of "data" */
    size_t                 data_len;
    /* per-user A/B: variants sorted by name */
    char                  *ab_key;
    ab_variant_t          *vars;
    size_t                 nvars;
    uint64_t               var_total;
    size_t                *picks;       /* variant index per channel */
} req_t;

/* A new request for r on route rt (path: for the log, without the query).
 * Counts it in flight. @return the request, or NULL out of memory. */
req_t *req_new(pub_t *p, struct evhttp_request *r, const route_t *rt,
               enum evhttp_cmd_type m, const char *path);

/* Each answers q, logs it and frees it: q must not be used after. */
void req_reply(req_t *q, int status, buf_t *b);
void req_error(req_t *q, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void req_unavailable(req_t *q);   /* 503 redis_unavailable */

/* A reply that means "Redis cannot serve this now": NULL (connection lost
 * or timed out), or an error such as READONLY, LOADING, BUSY. Answered
 * 503; after READONLY the connection is dropped so that it reconnects.
 * @return 1 if q was answered (and freed), 0 if reply is something else. */
int  req_redis_failed(req_t *q, const redisReply *reply);

/* Appends {"channel":..,"epoch":..,"offset":N} of the i-th publication. */
void req_put_publication(buf_t *b, const store_reply_t *sr, size_t i);

/* Replies without a req_t: eb / b may be NULL for an empty body. The status
 * is counted in the request metrics. */
void req_send(pub_t *p, struct evhttp_request *r, int status, const char *reason,
              struct evbuffer *eb);
void req_send_json(pub_t *p, struct evhttp_request *r, int status, const buf_t *b);
void req_send_error(pub_t *p, struct evhttp_request *r, int status, const char *code,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Wall-clock milliseconds since the epoch (flag updatedAt, event ts). */
uint64_t req_now_ms(void);

#endif
