/*
 * api — the admin HTTP/JSON API of flagcast-publisher (docs/API.md): the
 * evhttp entry point, authentication and dispatch.
 *
 * on_request routes the path (route.c), answers /healthz, /readyz and
 * /metrics itself, and turns every /api/v1 request into a req_t (req.h):
 * credentials, If-Match, the body (parsed, bounded) and the path's names
 * are checked here, before any module or Redis sees the request, so bad
 * input changes nothing. flags.c then serves flag reads and mutations,
 * msgs.c channel and targeted messages.
 */
#include "publisher/pub.h"
#include "publisher/flags.h"
#include "publisher/msgs.h"
#include "publisher/req.h"
#include "publisher/route.h"
#include "common/jsonin.h"
#include "common/log.h"
#include "proto/names.h"

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ==== authentication ==== */

/* Who is calling: a static admin token (FLAGCAST_ADMIN_TOKENS), else an API
 * key or a JWT (common/token.h) whose identity holds the role "admin". The
 * token itself is never logged or echoed; token_verify's messages are static
 * and safe to send back.
 * @return 0 with q->who set, or -1 after answering 401 / 403. */
static int authenticate(req_t *q, const char *header)
{
    pub_t *p = q->p;
    const char *tok, *err = NULL;
    size_t len;
    token_identity_t *id = NULL;

    if (auth_count(p->auth) == 0 && !token_verifier_enabled(p->tv)) {
        req_error(q, 401, "unauthorized", "no admin credentials are configured (set "
                  "FLAGCAST_ADMIN_TOKENS, FLAGCAST_API_KEYS or FLAGCAST_JWT_SECRET)");
        return -1;
    }
    if (header == NULL) {
        req_error(q, 401, "unauthorized", "missing Authorization: Bearer <token>");
        return -1;
    }
    if (token_bearer(header, &tok, &len) < 0 || len == 0) {
        req_error(q, 401, "unauthorized", "the Authorization header must be Bearer <token>");
        return -1;
    }
    if (auth_check_token(p->auth, tok, len, &q->who) == 0)
        return 0;
    if (!token_verifier_enabled(p->tv) ||
        token_verify(p->tv, tok, len, &id, &err) < 0) {
        if (err && token_verifier_enabled(p->tv))
            req_error(q, 401, "unauthorized", "invalid token: %s", err);
        else
            req_error(q, 401, "unauthorized", "invalid admin token");
        return -1;
    }
    if (token_identity_admin(id, &q->who) < 0) {
        bool admin = token_identity_has_role(id, "admin");
        token_identity_free(id);
        if (admin)
            req_error(q, 403, "forbidden", "an admin's user id must be at most %d bytes to "
                      "act as an event's actor", AUTH_MAX_NAME_LEN);
        else
            req_error(q, 403, "forbidden", "this identity does not hold the role \"admin\"");
        return -1;
    }
    token_identity_free(id);
    return 0;
}

/* ==== dispatch ==== */

static void reply_health(pub_t *p, struct evhttp_request *r, route_id_t id)
{
    buf_t b;
    buf_init(&b);
    if (id == RT_HEALTHZ) {
        buf_puts(&b, "{\"status\":\"ok\"}");
        req_send_json(p, r, 200, &b);
    } else {
        bool ready = rconn_ready(p->rc) && !p->draining;
        buf_printf(&b, "{\"ready\":%s,\"redis\":%s,\"draining\":%s}", ready ? "true" : "false",
                   rconn_ready(p->rc) ? "true" : "false", p->draining ? "true" : "false");
        req_send_json(p, r, ready ? 200 : 503, &b);
    }
    buf_free(&b);
}

static void reply_metrics(pub_t *p, struct evhttp_request *r)
{
    buf_t b;
    struct evbuffer *eb = evbuffer_new();
    metric_set(p->m.redis_connected, rconn_ready(p->rc));
    metric_set(p->m.redis_reconnects, (int64_t)rconn_reconnects(p->rc));
    buf_init(&b);
    metrics_render(&b);
    if (eb)
        evbuffer_add(eb, b.data, b.len);
    evhttp_add_header(evhttp_request_get_output_headers(r), "Content-Type",
                      "text/plain; version=0.0.4");
    req_send(p, r, 200, "OK", eb);
    if (eb)
        evbuffer_free(eb);
    buf_free(&b);
}

static int method_allowed(route_id_t id, enum evhttp_cmd_type m, const char **allow)
{
    switch (id) {
    case RT_HEALTHZ:
    case RT_READYZ:
    case RT_METRICS:
        *allow = "GET, HEAD";
        return m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD;
    case RT_FLAGS:
        *allow = "GET, POST";
        return m == EVHTTP_REQ_GET || m == EVHTTP_REQ_POST;
    case RT_FLAG:
        *allow = "GET, PUT, DELETE";
        return m == EVHTTP_REQ_GET || m == EVHTTP_REQ_PUT || m == EVHTTP_REQ_DELETE;
    case RT_FLAG_ENABLED:
    case RT_FLAG_SEGMENTS:
    case RT_FLAG_VARIANTS:
        *allow = "PUT";
        return m == EVHTTP_REQ_PUT;
    case RT_CHANNEL_MESSAGES:
    case RT_MESSAGES:
        *allow = "POST";
        return m == EVHTTP_REQ_POST;
    default:
        *allow = NULL;
        return 0;
    }
}

static void on_request(struct evhttp_request *r, void *arg)
{
    pub_t *p = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type m = evhttp_request_get_command(r);
    struct evkeyvalq *in = evhttp_request_get_input_headers(r);
    struct evbuffer *body = evhttp_request_get_input_buffer(r);
    const char *allow, *h;
    route_t rt;
    req_t *q;
    char err[512];

    if (path == NULL || route_match(path, &rt) < 0)
        return req_send_error(p, r, 400, "bad_request", "malformed request path");
    if (rt.id == RT_NOT_FOUND)
        return req_send_error(p, r, 404, "not_found", "no such endpoint");
    if (!method_allowed(rt.id, m, &allow)) {
        evhttp_add_header(evhttp_request_get_output_headers(r), "Allow", allow);
        return req_send_error(p, r, 405, "method_not_allowed", "method not allowed here (allowed: %s)",
                          allow);
    }
    if (rt.id == RT_HEALTHZ || rt.id == RT_READYZ)
        return reply_health(p, r, rt.id);
    if (rt.id == RT_METRICS)
        return reply_metrics(p, r);

    /* Everything below is the admin API. */
    q = req_new(p, r, &rt, m, path);
    if (q == NULL)
        return req_send_error(p, r, 500, NULL, "out of memory");

    if (authenticate(q, evhttp_find_header(in, "Authorization")) < 0)
        return;
    if (p->draining)
        return req_error(q, 503, "shutting_down", "the publisher is shutting down");

    if ((h = evhttp_find_header(in, "If-Match")) != NULL) {
        if (m == EVHTTP_REQ_GET || m == EVHTTP_REQ_POST)
            return req_error(q, 400, "bad_request", "If-Match applies to PUT and DELETE only");
        if (route_if_match(h, &q->if_match) < 0)
            return req_error(q, 400, "bad_request",
                             "If-Match must be a flag version (a positive integer)");
        q->has_if_match = true;
    }

    /* Body: bounded by evhttp (413 before we get here) and checked again. */
    size_t blen = evbuffer_get_length(body);
    if (blen > (size_t)p->cfg.max_body)
        return req_error(q, 413, "payload_too_large", "request body larger than %ld bytes",
                         p->cfg.max_body);
    if (m == EVHTTP_REQ_PUT || m == EVHTTP_REQ_POST) {
        const char *data = (const char *)evbuffer_pullup(body, -1);
        q->body = jsonin_parse(data ? data : "", blen, err, sizeof(err));
        if (q->body == NULL)
            return req_error(q, 400, "invalid_json", "%s", err);
    } else if (m == EVHTTP_REQ_DELETE && blen > 0) {
        const char *data = (const char *)evbuffer_pullup(body, -1);
        q->body = jsonin_parse(data ? data : "", blen, err, sizeof(err));
        if (q->body == NULL)
            return req_error(q, 400, "invalid_json", "%s", err);
    } else if (blen > 0) {
        return req_error(q, 400, "bad_request", "this request takes no body");
    }

    /* Names in the path. */
    if (rt.id >= RT_FLAG && rt.id <= RT_FLAG_VARIANTS &&
        name_flag_key_valid(rt.arg, rt.arglen, &allow) < 0)
        return req_error(q, 400, "invalid_key", "bad flag key: %s", allow);

    /* A flag mutation may be addressed to users and roles ("to"). */
    if (rt.id >= RT_FLAGS && rt.id <= RT_FLAG_VARIANTS && m != EVHTTP_REQ_GET &&
        msgs_take_to(q, uri ? evhttp_uri_get_query(uri) : NULL, err, sizeof(err)) < 0)
        return req_error(q, 400, "invalid_field", "%s", err);

    switch (rt.id) {
    case RT_FLAGS:
        return m == EVHTTP_REQ_GET ? flags_list(q) : flags_create(q);
    case RT_FLAG:
        if (m == EVHTTP_REQ_GET)
            return flags_get(q);
        if (m == EVHTTP_REQ_DELETE)
            return flags_delete(q);
        q->type = EV_FLAG_UPDATED;
        q->mask = JSONIN_ALL;
        break;
    case RT_FLAG_ENABLED:
        q->type = EV_FLAG_TOGGLED;
        q->mask = JSONIN_ENABLED;
        if (!json_is_object(q->body) || !json_is_boolean(json_object_get(q->body, "enabled")))
            return req_error(q, 400, "invalid_field",
                             "the body must be {\"enabled\": true} or {\"enabled\": false}");
        break;
    case RT_FLAG_SEGMENTS:
        q->type = EV_SEGMENT_UPDATED;
        q->mask = JSONIN_SEGMENTS;
        if (!json_is_object(q->body) || json_object_get(q->body, "segments") == NULL)
            return req_error(q, 400, "invalid_field", "the body must be {\"segments\": [...]}");
        break;
    case RT_FLAG_VARIANTS:
        q->type = EV_VARIANT_UPDATED;
        q->mask = JSONIN_VARIANTS;
        if (!json_is_object(q->body) || json_object_get(q->body, "variants") == NULL)
            return req_error(q, 400, "invalid_field", "the body must be {\"variants\": [...]}");
        break;
    case RT_CHANNEL_MESSAGES:
        return msgs_channel(q);
    case RT_MESSAGES:
        return msgs_targeted(q);
    default:
        return req_error(q, 404, "not_found", "no such endpoint");
    }
    flags_update(q);
}

void api_install(pub_t *p)
{
    evhttp_set_gencb(p->http, on_request, p);
}

