/*
 * api — the admin HTTP/JSON API of flagcast-publisher (docs/API.md).
 *
 * Each /api/v1 request becomes a req_t that lives until its reply is sent.
 * Validation happens before Redis is touched (JSON, types, names, limits),
 * so bad input changes nothing. Reads are one hiredis command; mutations
 * are one publish.lua call, preceded by HGET (to merge a partial update onto
 * the current record and learn its version) and, for creates, INCR of the
 * id sequence. Without If-Match an update that loses a race (412 from the
 * script) is recomputed from a fresh read, up to PUB_UPDATE_RETRIES times;
 * with If-Match the client's version is the one the script checks.
 *
 * Replies are JSON; errors are {"error":{"code":...,"message":...}}.
 * libevent keeps a request alive until we reply even if its client left
 * (evhttp_send_reply then just frees it), so a req_t never dangles.
 */
#include "publisher/pub.h"
#include "publisher/ab.h"
#include "publisher/route.h"
#include "publisher/store.h"
#include "common/jsonin.h"
#include "common/log.h"
#include "proto/event.h"
#include "proto/json.h"
#include "proto/names.h"

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

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

/* ==== helpers ==== */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int pub_key(const pub_t *p, char *out, size_t len, const char *kind, const char *name)
{
    int n = name ? snprintf(out, len, "%s:%s:%s", p->cfg.prefix, kind, name)
                 : snprintf(out, len, "%s:%s", p->cfg.prefix, kind);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

static void req_free(req_t *q)
{
    if (q->body)
        json_decref(q->body);
    flag_free(&q->next);
    for (size_t i = 0; i < q->nch; i++)
        free(q->channels[i]);
    free(q->channels);
    free(q->data);
    free(q->ab_key);
    for (size_t i = 0; i < q->nvars; i++) {
        free(q->vars[i].name);
        free(q->vars[i].data);
    }
    free(q->vars);
    free(q->picks);
    free(q);
}

/* Replies handed to evhttp but not yet written out; SIGTERM waits for them
 * (briefly) so a reply is not cut off by the exit. */
static void on_sent(struct evhttp_request *r, void *arg)
{
    pub_t *p = arg;
    p->sending--;
}

static void send_reply(pub_t *p, struct evhttp_request *r, int status, const char *reason,
                       struct evbuffer *eb)
{
    p->sending++;
    evhttp_request_set_on_complete_cb(r, on_sent, p);
    evhttp_send_reply(r, status, reason, eb);
}

static void count_status(pub_t *p, int status)
{
    if (status < 400)
        metric_inc(p->m.req_2xx);
    else if (status < 500)
        metric_inc(p->m.req_4xx);
    else
        metric_inc(p->m.req_5xx);
}

/* Sends a reply with a JSON body (b may be NULL for an empty body). */
static void send_json(pub_t *p, struct evhttp_request *r, int status, const buf_t *b)
{
    struct evbuffer *eb = evbuffer_new();
    struct evkeyvalq *h = evhttp_request_get_output_headers(r);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Cache-Control", "no-store");
    if (eb && b && b->len)
        evbuffer_add(eb, b->data, b->len);
    if (eb)
        evbuffer_add(eb, "\n", 1);
    count_status(p, status);
    send_reply(p, r, status, NULL, eb);
    if (eb)
        evbuffer_free(eb);
}

static const char *reason_code(int status)
{
    switch (status) {
    case 400: return "bad_request";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 409: return "conflict";
    case 412: return "precondition_failed";
    case 413: return "payload_too_large";
    case 503: return "redis_unavailable";
    default:  return "internal_error";
    }
}

static void send_error_r(pub_t *p, struct evhttp_request *r, int status, const char *code,
                         const char *extra, const char *fmt, va_list ap)
{
    buf_t b;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    buf_init(&b);
    buf_puts(&b, "{\"error\":{\"code\":");
    json_cstr(&b, code ? code : reason_code(status));
    buf_puts(&b, ",\"message\":");
    json_cstr(&b, msg);
    if (extra)
        buf_puts(&b, extra);
    buf_puts(&b, "}}");
    send_json(p, r, status, &b);
    buf_free(&b);
}

static void send_error(pub_t *p, struct evhttp_request *r, int status, const char *code,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void send_error(pub_t *p, struct evhttp_request *r, int status, const char *code,
                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_error_r(p, r, status, code, NULL, fmt, ap);
    va_end(ap);
}

/* Finishes a request: the reply was sent by the caller. */
static void req_end(req_t *q)
{
    struct timespec t1;
    pub_t *p = q->p;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - q->t0.tv_sec) + (double)(t1.tv_nsec - q->t0.tv_nsec) / 1e9;
    metric_observe(p->m.latency, secs);
    log_debug("request", "method=%s path=%s status=%d actor=%s ms=%.2f",
              q->method == EVHTTP_REQ_GET ? "GET" : q->method == EVHTTP_REQ_POST ? "POST"
              : q->method == EVHTTP_REQ_PUT ? "PUT" : q->method == EVHTTP_REQ_DELETE ? "DELETE"
              : "OTHER",
              q->qpath, q->status,
              q->who.name[0] ? q->who.name : "-", secs * 1000);
    p->inflight--;
    metric_set(p->m.inflight, p->inflight);
    req_free(q);
}

static void req_error(req_t *q, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void req_error(req_t *q, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    q->status = status;
    va_start(ap, fmt);
    send_error_r(q->p, q->r, status, code, NULL, fmt, ap);
    va_end(ap);
    req_end(q);
}

static void req_unavailable(req_t *q)
{
    req_error(q, 503, "redis_unavailable", "Redis is unavailable; nothing was changed, retry later");
}

static void req_reply(req_t *q, int status, buf_t *b)
{
    q->status = status;
    send_json(q->p, q->r, status, b);
    req_end(q);
}

/* A reply that means "Redis cannot serve writes right now" (replica after a
 * failover, dataset loading, busy script). Answered 503 like a lost
 * connection; after READONLY the connection is dropped so that it
 * reconnects (a DNS name may now point at the new primary).
 * @return 1 if the reply was such an error and q was answered. */
static int redis_unavailable_reply(req_t *q, const redisReply *reply)
{
    static const char *const transient[] = { "READONLY", "LOADING", "MASTERDOWN", "BUSY",
                                             "TRYAGAIN", "CLUSTERDOWN" };
    if (reply == NULL) {
        if (rconn_timed_out(q->p->rc))
            req_error(q, 503, "redis_timeout",
                      "Redis did not answer within %ld ms; the change may or may not have been "
                      "applied, check before retrying", q->p->cfg.redis_timeout_ms);
        else
            req_unavailable(q);
        return 1;
    }
    if (reply->type != REDIS_REPLY_ERROR)
        return 0;
    for (size_t i = 0; i < sizeof(transient) / sizeof(transient[0]); i++) {
        size_t n = strlen(transient[i]);
        if (strncmp(reply->str, transient[i], n) == 0 &&
            (reply->str[n] == ' ' || reply->str[n] == '\0')) {
            log_warn("redis cannot serve writes", "error=\"%.128s\"", reply->str);
            if (i == 0)
                rconn_drop(q->p->rc);
            req_unavailable(q);
            return 1;
        }
    }
    return 0;
}

/* {"channel":..,"epoch":..,"offset":N} of the script reply's i-th publication. */
static void put_publication(buf_t *b, const store_reply_t *sr, size_t i)
{
    redisReply *const *e = sr->pub + 3 * i;
    buf_puts(b, "{\"channel\":");
    json_str(b, e[0]->str ? e[0]->str : "", e[0]->str ? e[0]->len : 0);
    buf_puts(b, ",\"epoch\":");
    json_str(b, e[1]->str ? e[1]->str : "", e[1]->str ? e[1]->len : 0);
    buf_printf(b, ",\"offset\":%lld}", e[2]->integer);
}

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

/* ==== reads ==== */

static int cmp_flag_id(const void *a, const void *b)
{
    const flag_t *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static void on_list(redisAsyncContext *ac, void *r, void *priv)
{
    req_t *q = priv;
    redisReply *reply = r;
    flag_t *flags;
    size_t n = 0;
    buf_t b;

    if (redis_unavailable_reply(q, reply))
        return;
    if (reply->type != REDIS_REPLY_ARRAY)
        return req_error(q, 500, NULL, "unexpected reply from Redis");
    flags = calloc(reply->elements / 2 + 1, sizeof(*flags));
    if (flags == NULL)
        return req_error(q, 500, NULL, "out of memory");
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        char err[256];
        redisReply *v = reply->element[i + 1];
        if (v->type != REDIS_REPLY_STRING ||
            flag_decode(v->str, v->len, &flags[n], err, sizeof(err)) < 0) {
            log_error("stored flag record unreadable", "error=\"%s\"", err);
            continue;
        }
        n++;
    }
    qsort(flags, n, sizeof(*flags), cmp_flag_id);
    buf_init(&b);
    buf_puts(&b, "{\"flags\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_putc(&b, ',');
        flag_to_json(&flags[i], &b);
        flag_free(&flags[i]);
    }
    buf_printf(&b, "],\"count\":%zu}", n);
    free(flags);
    req_reply(q, 200, &b);
    buf_free(&b);
}

/* Decodes the HGET P:flags reply for the request's flag key into f.
 * @return 0, or -1 when q was answered (503 Redis unavailable, 404 no such
 * flag, 500 unreadable record); f is then left zeroed. */
static int stored_flag(req_t *q, const redisReply *reply, flag_t *f)
{
    char err[256];

    flag_init(f);
    if (redis_unavailable_reply(q, reply))
        return -1;
    if (reply->type == REDIS_REPLY_NIL) {
        req_error(q, 404, "not_found", "flag \"%s\" does not exist", q->rt.arg);
        return -1;
    }
    if (reply->type != REDIS_REPLY_STRING ||
        flag_decode(reply->str, reply->len, f, err, sizeof(err)) < 0) {
        req_error(q, 500, NULL, "stored flag record is unreadable");
        return -1;
    }
    return 0;
}

static void on_get(redisAsyncContext *ac, void *r, void *priv)
{
    req_t *q = priv;
    flag_t f;
    buf_t b;

    if (stored_flag(q, r, &f) != 0)
        return;
    buf_init(&b);
    buf_puts(&b, "{\"flag\":");
    flag_to_json(&f, &b);
    buf_printf(&b, ",\"version\":%llu}", (unsigned long long)f.version);
    {
        char etag[32];
        snprintf(etag, sizeof(etag), "\"%llu\"", (unsigned long long)f.version);
        evhttp_add_header(evhttp_request_get_output_headers(q->r), "ETag", etag);
    }
    flag_free(&f);
    req_reply(q, 200, &b);
    buf_free(&b);
}

/* ==== flag mutations ==== */

static void flag_step_read(req_t *q);

static void on_flag_script(pub_t *p, redisReply *reply, void *arg)
{
    req_t *q = arg;
    store_reply_t sr;
    buf_t b;
    long long st;

    if (redis_unavailable_reply(q, reply))
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        log_error("publish script failed", "error=\"%s\"", reply->str);
        return req_error(q, 500, NULL, "the publish script failed");
    }
    if (store_reply_parse(reply, &sr) < 0)
        return req_error(q, 500, NULL, "unexpected reply from the publish script");
    st = sr.status;
    if (st == 409)
        return req_error(q, 409, "conflict", "flag \"%s\" already exists", q->next.key);
    if (st == 404)
        return req_error(q, 404, "not_found", "flag \"%s\" does not exist", q->rt.arg);
    if (st == 412) {
        long long cur = sr.current;
        metric_inc(p->m.conflicts);
        if (!q->has_if_match && ++q->attempts < PUB_UPDATE_RETRIES) {
            flag_step_read(q);
            return;
        }
        char extra[64];
        snprintf(extra, sizeof(extra), ",\"currentVersion\":%lld", cur);
        buf_t eb;
        buf_init(&eb);
        buf_printf(&eb, "{\"error\":{\"code\":\"precondition_failed\",\"message\":");
        char msg[256];
        snprintf(msg, sizeof(msg), "flag \"%.128s\" is at version %lld, not %llu", q->rt.arg, cur,
                 (unsigned long long)(q->has_if_match ? q->if_match : q->next.version - 1));
        json_cstr(&eb, msg);
        buf_printf(&eb, "%s}}", extra);
        req_reply(q, 412, &eb);
        buf_free(&eb);
        return;
    }
    size_t npub = q->nch ? q->nch : 1;
    if (st != 200 || sr.npub != npub)
        return req_error(q, 500, NULL, "unexpected status from the publish script");
    metric_add(p->m.publications, (int64_t)npub);
    log_info(q->type == EV_FLAG_CREATED ? "flag created" : q->type == EV_FLAG_DELETED
                                                             ? "flag deleted" : "flag changed",
             "key=%s version=%llu event=%s actor=%s offset=%lld to=%zu", q->next.key,
             (unsigned long long)q->next.version, ev_type_name(q->type), q->who.name,
             sr.pub[2]->integer, q->nch);
    buf_init(&b);
    buf_puts(&b, "{\"flag\":");
    flag_to_json(&q->next, &b);
    buf_printf(&b, ",\"version\":%llu,\"event\":\"%s\",",
               (unsigned long long)q->next.version, ev_type_name(q->type));
    if (q->nch == 0) {
        buf_puts(&b, "\"publication\":");
        put_publication(&b, &sr, 0);
    } else {
        buf_puts(&b, "\"publications\":[");
        for (size_t i = 0; i < q->nch; i++) {
            if (i)
                buf_putc(&b, ',');
            put_publication(&b, &sr, i);
        }
        buf_putc(&b, ']');
    }
    buf_putc(&b, '}');
    {
        char etag[32];
        snprintf(etag, sizeof(etag), "\"%llu\"", (unsigned long long)q->next.version);
        if (q->type != EV_FLAG_DELETED)
            evhttp_add_header(evhttp_request_get_output_headers(q->r), "ETag", etag);
    }
    req_reply(q, q->type == EV_FLAG_CREATED ? 201 : 200, &b);
    buf_free(&b);
}

/* Encodes record and event body and calls the script. */
static void flag_step_publish(req_t *q, const char *mode, uint64_t expected)
{
    pub_t *p = q->p;
    buf_t rec, body;
    ev_t ev;
    const char *err;
    store_pub_t *pubs;
    int rc = -1;

    if (flag_validate(&q->next, &err) < 0)
        return req_error(q, 400, "invalid_flag", "%s", err);
    buf_init(&rec);
    buf_init(&body);
    ev_init(&ev);
    ev.type = q->type;
    ev.ts = q->next.updated_at;
    ev.flag = &q->next;
    ev.actor = q->who.name;
    if (flag_encode(&q->next, &rec) < 0 || ev_encode_body(&ev, &body) < 0 || rec.err || body.err) {
        buf_free(&rec);
        buf_free(&body);
        return req_error(q, 500, NULL, "cannot encode the flag record");
    }
    /* Publications: "flags", or the inboxes named by "to" (which expire
     * like any non-flag channel). */
    size_t npub = q->nch ? q->nch : 1;
    pubs = calloc(npub, sizeof(*pubs));
    if (pubs) {
        for (size_t i = 0; i < npub; i++)
            pubs[i].channel = q->nch ? q->channels[i] : "flags";
        store_call_t c = {
            .op = STORE_FLAG, .mode = mode, .key = q->next.key, .expected = expected,
            .id = q->next.id, .record = rec.data, .record_len = rec.len,
            .body = body.data, .body_len = body.len, .history_size = p->cfg.history_size,
            .ttl = q->nch ? p->cfg.history_ttl : 0, .pubs = pubs, .npub = npub,
        };
        rc = store_call(p, &c, on_flag_script, q);
    }
    buf_free(&rec);
    buf_free(&body);
    free(pubs);
    if (rc < 0)
        req_unavailable(q);
}

static void on_flag_read(redisAsyncContext *ac, void *r, void *priv)
{
    req_t *q = priv;
    flag_t cur;
    char err[256];
    unsigned present;

    if (stored_flag(q, r, &cur) != 0)
        return;
    if (q->has_if_match && cur.version != q->if_match) {
        buf_t eb;
        char msg[256];
        metric_inc(q->p->m.conflicts);
        snprintf(msg, sizeof(msg), "flag \"%.128s\" is at version %llu, not %llu", q->rt.arg,
                 (unsigned long long)cur.version, (unsigned long long)q->if_match);
        buf_init(&eb);
        buf_puts(&eb, "{\"error\":{\"code\":\"precondition_failed\",\"message\":");
        json_cstr(&eb, msg);
        buf_printf(&eb, ",\"currentVersion\":%llu}}", (unsigned long long)cur.version);
        flag_free(&cur);
        req_reply(q, 412, &eb);
        buf_free(&eb);
        return;
    }
    flag_free(&q->next);
    q->next = cur; /* takes ownership */
    if (q->body && jsonin_flag(q->body, q->mask, &q->next, &present, err, sizeof(err)) < 0)
        return req_error(q, 400, "invalid_field", "%s", err);
    uint64_t expected = q->next.version;
    q->next.version = expected + 1;
    q->next.updated_at = now_ms();
    flag_step_publish(q, q->type == EV_FLAG_DELETED ? "delete" : "update", expected);
}

static void flag_step_read(req_t *q)
{
    if (rconn_command(q->p->rc, on_flag_read, q, "HGET %s %b", q->p->k_flags, q->rt.arg,
                      q->rt.arglen) < 0)
        req_unavailable(q);
}

static void on_create_id(redisAsyncContext *ac, void *r, void *priv)
{
    req_t *q = priv;
    redisReply *reply = r;
    if (redis_unavailable_reply(q, reply))
        return;
    if (reply->type != REDIS_REPLY_INTEGER || reply->integer <= 0)
        return req_error(q, 500, NULL, "cannot allocate a flag id");
    q->next.id = (uint64_t)reply->integer;
    q->next.version = 1;
    q->next.updated_at = now_ms();
    flag_step_publish(q, "create", 0);
}

static void on_create_exists(redisAsyncContext *ac, void *r, void *priv)
{
    req_t *q = priv;
    redisReply *reply = r;
    if (redis_unavailable_reply(q, reply))
        return;
    if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 1)
        return req_error(q, 409, "conflict", "flag \"%s\" already exists", q->next.key);
    if (rconn_command(q->p->rc, on_create_id, q, "INCR %s", q->p->k_seq) < 0)
        req_unavailable(q);
}

/* ==== messages ==== */

static void on_msg_script(pub_t *p, redisReply *reply, void *arg)
{
    req_t *q = arg;
    store_reply_t sr;
    buf_t b;

    if (redis_unavailable_reply(q, reply))
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        log_error("publish script failed", "error=\"%s\"", reply->str);
        return req_error(q, 500, NULL, "the publish script failed");
    }
    if (store_reply_parse(reply, &sr) < 0 || sr.status != 200 || sr.npub != q->nch)
        return req_error(q, 500, NULL, "unexpected reply from the publish script");
    metric_add(p->m.publications, (int64_t)q->nch);
    buf_init(&b);
    if (q->rt.id == RT_CHANNEL_MESSAGES) {
        buf_puts(&b, "{\"publication\":");
        put_publication(&b, &sr, 0);
        buf_putc(&b, '}');
        log_info("message published", "channel=%s offset=%lld actor=%s", q->channels[0],
                 sr.pub[2]->integer, q->who.name);
    } else {
        buf_puts(&b, "{\"publications\":[");
        for (size_t i = 0; i < q->nch; i++) {
            if (i)
                buf_putc(&b, ',');
            put_publication(&b, &sr, i);
            if (q->nvars) {
                b.len--; /* reopen the object for the variant's name */
                buf_puts(&b, ",\"variant\":");
                json_cstr(&b, q->vars[q->picks[i]].name);
                buf_putc(&b, '}');
            }
        }
        buf_puts(&b, "]}");
        log_info("targeted message published", "inboxes=%zu variants=%zu actor=%s", q->nch,
                 q->nvars, q->who.name);
    }
    req_reply(q, 200, &b);
    buf_free(&b);
}

/* One "msg" script call: the same body to every channel, or (A/B) each
 * user's variant body, encoded once per variant. */
static void msg_publish(req_t *q)
{
    pub_t *p = q->p;
    ev_t ev;
    size_t nb = q->nvars ? q->nvars : 1;
    store_pub_t *pubs = calloc(q->nch, sizeof(*pubs));
    buf_t *bodies = calloc(nb, sizeof(buf_t));
    int rc = -1;

    if (!pubs || !bodies)
        goto done;
    for (size_t i = 0; i < nb; i++) {
        buf_init(&bodies[i]);
        ev_init(&ev);
        ev.type = EV_MESSAGE;
        ev.ts = now_ms();
        ev.data = q->nvars ? q->vars[i].data : q->data;
        ev.data_len = q->nvars ? q->vars[i].len : q->data_len;
        ev.actor = q->who.name;
        if (ev_encode_body(&ev, &bodies[i]) < 0 || bodies[i].err)
            goto done;
    }
    for (size_t i = 0; i < q->nch; i++) {
        pubs[i].channel = q->channels[i];
        if (q->nvars) {
            pubs[i].body = bodies[q->picks[i]].data;
            pubs[i].body_len = bodies[q->picks[i]].len;
        }
    }
    store_call_t c = {
        .op = STORE_MSG, .body = q->nvars ? NULL : bodies[0].data,
        .body_len = q->nvars ? 0 : bodies[0].len, .history_size = p->cfg.history_size,
        .ttl = p->cfg.history_ttl, .pubs = pubs, .npub = q->nch,
    };
    rc = store_call(p, &c, on_msg_script, q);
done:
    if (bodies)
        for (size_t i = 0; i < nb; i++)
            buf_free(&bodies[i]);
    free(bodies);
    free(pubs);
    if (rc < 0)
        req_unavailable(q);
}

static int add_channel(req_t *q, const char *kind, const char *name, size_t len,
                       char *err, size_t errlen)
{
    char ch[NAME_CHANNEL_MAX + 2];
    const char *e;
    int n = snprintf(ch, sizeof(ch), "%s%.*s", kind, (int)len, name);
    if (n < 0 || (size_t)n >= sizeof(ch) || memchr(name, '\0', len) ||
        name_channel_kind(ch, (size_t)n, &e) == CHAN_INVALID) {
        snprintf(err, errlen, "bad %s \"%.64s\": %s", *kind == 'u' ? "user id" : "role",
                 name, (size_t)n >= sizeof(ch) ? "too long" : "must be [A-Za-z0-9._:-]");
        return -1;
    }
    for (size_t i = 0; i < q->nch; i++)
        if (strcmp(q->channels[i], ch) == 0)
            return 0; /* duplicate: one publication per inbox */
    if (q->nch == PUB_MAX_TARGETS) {
        snprintf(err, errlen, "too many recipients (at most %d users and roles)", PUB_MAX_TARGETS);
        return -1;
    }
    q->channels[q->nch] = strdup(ch);
    if (q->channels[q->nch] == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    q->nch++;
    if (*kind == 'r')
        q->nroles++;
    return 0;
}

/* Adds the recipients of a JSON array of strings (field: its name in
 * messages, e.g. "users" or "to.users"). @return 0 or -1 with err set. */
static int add_recipients(req_t *q, const char *field, const json_t *v, char *err,
                          size_t errlen)
{
    size_t i;
    json_t *x;
    const char *kind = strstr(field, "users") ? "user:" : "role:";
    if (!json_is_array(v)) {
        snprintf(err, errlen, "%s must be an array of strings", field);
        return -1;
    }
    json_array_foreach(v, i, x) {
        if (!json_is_string(x)) {
            snprintf(err, errlen, "%s[%zu] must be a string", field, i);
            return -1;
        }
        if (add_channel(q, kind, json_string_value(x), json_string_length(x), err, errlen) < 0)
            return -1;
    }
    return 0;
}

/* Adds the recipients of a comma list from the query string. */
static int add_recipient_list(req_t *q, const char *kind, const char *list, char *err,
                              size_t errlen)
{
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == 0) {
            snprintf(err, errlen, "to.%s has an empty item", *kind == 'u' ? "users" : "roles");
            return -1;
        }
        if (add_channel(q, kind, p, n, err, errlen) < 0)
            return -1;
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* The "to" of a flag mutation: a body field {"users": [...], "roles": [...]}
 * (removed from the body, so jsonin_flag never sees it) and/or the query
 * parameters to.users=a,b and to.roles=r (the form for DELETE); both forms
 * add up. With recipients the event goes to their inboxes instead of
 * "flags". @return 0 or -1 with err set. */
static int take_to(req_t *q, const char *query, char *err, size_t errlen)
{
    int given = 0;
    q->channels = calloc(PUB_MAX_TARGETS, sizeof(char *));
    if (q->channels == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (q->body && q->method == EVHTTP_REQ_DELETE) {
        const char *k;
        json_t *v;
        if (!json_is_object(q->body)) {
            snprintf(err, errlen, "the body of DELETE, if any, must be {\"to\": {...}}");
            return -1;
        }
        json_object_foreach(q->body, k, v) {
            if (strcmp(k, "to") != 0) {
                snprintf(err, errlen, "unknown field \"%.64s\" (DELETE takes only \"to\")", k);
                return -1;
            }
        }
    }
    json_t *to = json_is_object(q->body) ? json_object_get(q->body, "to") : NULL;
    if (to) {
        const char *k;
        json_t *v;
        if (!json_is_object(to)) {
            snprintf(err, errlen, "to must be an object {\"users\": [...], \"roles\": [...]}");
            return -1;
        }
        json_object_foreach(to, k, v) {
            if (strcmp(k, "users") && strcmp(k, "roles")) {
                snprintf(err, errlen, "unknown field \"to.%.64s\"", k);
                return -1;
            }
            char field[16];
            snprintf(field, sizeof(field), "to.%s", k);
            if (add_recipients(q, field, v, err, errlen) < 0)
                return -1;
        }
        given = 1;
        json_object_del(q->body, "to");
    }
    if (query && *query) {
        struct evkeyvalq kv;
        struct evkeyval *e;
        int bad = 0;
        TAILQ_INIT(&kv);
        if (evhttp_parse_query_str(query, &kv) < 0) {
            snprintf(err, errlen, "malformed query string");
            return -1;
        }
        TAILQ_FOREACH(e, &kv, next) {
            if (bad)
                break;
            if (!strcmp(e->key, "to.users") || !strcmp(e->key, "to.roles")) {
                given = 1;
                bad = add_recipient_list(q, e->key[3] == 'u' ? "user:" : "role:", e->value,
                                         err, errlen) < 0;
            } else {
                snprintf(err, errlen, "unknown query parameter \"%.64s\"", e->key);
                bad = 1;
            }
        }
        evhttp_clear_headers(&kv);
        if (bad)
            return -1;
    }
    if (given && q->nch == 0) {
        snprintf(err, errlen, "to names no user and no role");
        return -1;
    }
    return 0;
}

static int cmp_variant(const void *a, const void *b)
{
    return strcmp(((const ab_variant_t *)a)->name, ((const ab_variant_t *)b)->name);
}

/* Reads "variants" and "weights" of an A/B message into q->vars (sorted by
 * name), each payload packed once as {"variant": name, "data": payload}.
 * @return 0 or -1 with err set. */
static int parse_variants(req_t *q, json_t *variants, json_t *weights, char *err,
                          size_t errlen)
{
    const char *k, *e;
    json_t *v;
    size_t n = json_is_object(variants) ? json_object_size(variants) : 0;

    if (!json_is_object(variants) || n == 0 || n > PUB_MAX_VARIANTS) {
        snprintf(err, errlen, "variants must be an object of 1-%d {\"name\": payload}",
                 PUB_MAX_VARIANTS);
        return -1;
    }
    if (weights && !json_is_object(weights)) {
        snprintf(err, errlen, "weights must be an object {\"name\": integer}");
        return -1;
    }
    q->vars = calloc(n, sizeof(*q->vars));
    if (q->vars == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    json_object_foreach(variants, k, v) {
        ab_variant_t *a = &q->vars[q->nvars];
        size_t klen = strlen(k);
        if (name_flag_key_valid(k, klen, &e) < 0 || klen > 64) {
            snprintf(err, errlen, "bad variant name \"%.64s\": 1-64 bytes of [A-Za-z0-9_./:-]",
                     k);
            return -1;
        }
        if (jsonin_nesting(v, EV_MAX_DATA_DEPTH) > EV_MAX_DATA_DEPTH - 1) {
            snprintf(err, errlen, "variants.%s nests deeper than %d levels", k,
                     EV_MAX_DATA_DEPTH - 1);
            return -1;
        }
        a->weight = 1;
        if (weights) {
            json_t *w = json_object_get(weights, k);
            if (!json_is_integer(w) || json_integer_value(w) < 0 ||
                json_integer_value(w) > PUB_MAX_WEIGHT) {
                snprintf(err, errlen, "weights.%s must be an integer 0-%d (give every variant "
                         "a weight, or none)", k, PUB_MAX_WEIGHT);
                return -1;
            }
            a->weight = (uint64_t)json_integer_value(w);
        }
        a->name = strdup(k);
        json_t *wrap = json_pack("{s:s,s:O}", "variant", k, "data", v);
        buf_t b;
        buf_init(&b);
        b.limit = EV_MAX_BYTES - 4096;
        int bad = a->name == NULL || wrap == NULL || jsonin_to_msgpack(wrap, &b, &e) < 0;
        if (wrap)
            json_decref(wrap);
        q->nvars++;
        if (bad) {
            buf_free(&b);
            snprintf(err, errlen, "variants.%s: %s", k, a->name && wrap ? e : "out of memory");
            return -1;
        }
        a->data = buf_steal(&b, &a->len);
        q->var_total += a->weight;
    }
    if (weights) {
        json_object_foreach(weights, k, v) {
            if (json_object_get(variants, k) == NULL) {
                snprintf(err, errlen, "weights.%.64s names no variant", k);
                return -1;
            }
        }
    }
    if (q->var_total == 0) {
        snprintf(err, errlen, "the weights add up to 0");
        return -1;
    }
    qsort(q->vars, q->nvars, sizeof(*q->vars), cmp_variant);
    return 0;
}

/* Reads "data" (or, for a per-user A/B message, "key", "variants" and
 * "weights") and, for targeted messages, "users"/"roles".
 * @return 0 or -1 with err set. */
static int parse_message(req_t *q, char *err, size_t errlen)
{
    const char *k;
    json_t *v, *data = NULL, *variants = NULL, *weights = NULL, *key = NULL;
    buf_t b;
    const char *e;

    if (!json_is_object(q->body)) {
        snprintf(err, errlen, "the request body must be a JSON object");
        return -1;
    }
    q->channels = calloc(PUB_MAX_TARGETS, sizeof(char *));
    if (q->channels == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    json_object_foreach(q->body, k, v) {
        if (strcmp(k, "data") == 0) {
            data = v;
        } else if (q->rt.id == RT_MESSAGES && (!strcmp(k, "users") || !strcmp(k, "roles"))) {
            if (add_recipients(q, k, v, err, errlen) < 0)
                return -1;
        } else if (q->rt.id == RT_MESSAGES && !strcmp(k, "variants")) {
            variants = v;
        } else if (q->rt.id == RT_MESSAGES && !strcmp(k, "weights")) {
            weights = v;
        } else if (q->rt.id == RT_MESSAGES && !strcmp(k, "key")) {
            key = v;
        } else {
            snprintf(err, errlen, "unknown field \"%.64s\"", k);
            return -1;
        }
    }
    if (q->rt.id == RT_MESSAGES && q->nch == 0) {
        snprintf(err, errlen, "give at least one recipient in \"users\" or \"roles\"");
        return -1;
    }
    if (variants) {
        if (data) {
            snprintf(err, errlen, "give either \"data\" or \"variants\", not both");
            return -1;
        }
        if (q->nroles) {
            snprintf(err, errlen, "variants go to users only: a role inbox is shared by all "
                     "its members, so it cannot carry a per-user variant");
            return -1;
        }
        if (!json_is_string(key) || json_string_length(key) == 0 ||
            json_string_length(key) > 256) {
            snprintf(err, errlen, "an A/B message needs \"key\": a string of 1-256 bytes "
                     "(the same key gives each user the same variant)");
            return -1;
        }
        if (parse_variants(q, variants, weights, err, errlen) < 0)
            return -1;
        q->ab_key = strdup(json_string_value(key));
        q->picks = calloc(q->nch, sizeof(*q->picks));
        if (q->ab_key == NULL || q->picks == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        uint64_t *w = calloc(q->nvars, sizeof(*w));
        if (w == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        for (size_t i = 0; i < q->nvars; i++)
            w[i] = q->vars[i].weight;
        for (size_t i = 0; i < q->nch; i++) {
            const char *user = q->channels[i] + 5; /* after "user:" */
            q->picks[i] = ab_pick(q->ab_key, strlen(q->ab_key), user, strlen(user), w,
                                  q->nvars, q->var_total);
        }
        free(w);
        return 0;
    }
    if (key || weights) {
        snprintf(err, errlen, "\"%s\" is only used with \"variants\"", key ? "key" : "weights");
        return -1;
    }
    if (data == NULL) {
        snprintf(err, errlen, "field \"data\" is required");
        return -1;
    }
    if (jsonin_nesting(data, EV_MAX_DATA_DEPTH) > EV_MAX_DATA_DEPTH) {
        snprintf(err, errlen, "data nests deeper than %d levels", EV_MAX_DATA_DEPTH);
        return -1;
    }
    buf_init(&b);
    b.limit = EV_MAX_BYTES - 4096;
    if (jsonin_to_msgpack(data, &b, &e) < 0) {
        buf_free(&b);
        snprintf(err, errlen, "data: %s", e);
        return -1;
    }
    q->data = buf_steal(&b, &q->data_len);
    return 0;
}

/* ==== dispatch ==== */

static void reply_health(pub_t *p, struct evhttp_request *r, route_id_t id)
{
    buf_t b;
    buf_init(&b);
    if (id == RT_HEALTHZ) {
        buf_puts(&b, "{\"status\":\"ok\"}");
        send_json(p, r, 200, &b);
    } else {
        bool ready = rconn_ready(p->rc) && !p->draining;
        buf_printf(&b, "{\"ready\":%s,\"redis\":%s,\"draining\":%s}", ready ? "true" : "false",
                   rconn_ready(p->rc) ? "true" : "false", p->draining ? "true" : "false");
        send_json(p, r, ready ? 200 : 503, &b);
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
    count_status(p, 200);
    send_reply(p, r, 200, "OK", eb);
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
        return send_error(p, r, 400, "bad_request", "malformed request path");
    if (rt.id == RT_NOT_FOUND)
        return send_error(p, r, 404, "not_found", "no such endpoint");
    if (!method_allowed(rt.id, m, &allow)) {
        evhttp_add_header(evhttp_request_get_output_headers(r), "Allow", allow);
        return send_error(p, r, 405, "method_not_allowed", "method not allowed here (allowed: %s)",
                          allow);
    }
    if (rt.id == RT_HEALTHZ || rt.id == RT_READYZ)
        return reply_health(p, r, rt.id);
    if (rt.id == RT_METRICS)
        return reply_metrics(p, r);

    /* Everything below is the admin API. */
    q = calloc(1, sizeof(*q));
    if (q == NULL)
        return send_error(p, r, 500, NULL, "out of memory");
    q->p = p;
    q->r = r;
    q->rt = rt;
    q->method = m;
    /* The path only: a query string could carry a credential by mistake
     * (?token=...), and tokens never reach the logs. */
    log_q(q->qpath, sizeof(q->qpath), path);
    clock_gettime(CLOCK_MONOTONIC, &q->t0);
    flag_init(&q->next);
    p->inflight++;
    metric_set(p->m.inflight, p->inflight);

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
        take_to(q, uri ? evhttp_uri_get_query(uri) : NULL, err, sizeof(err)) < 0)
        return req_error(q, 400, "invalid_field", "%s", err);

    switch (rt.id) {
    case RT_FLAGS:
        if (m == EVHTTP_REQ_GET) {
            if (rconn_command(p->rc, on_list, q, "HGETALL %s", p->k_flags) < 0)
                req_unavailable(q);
            return;
        } else {
            unsigned present;
            const char *e;
            q->type = EV_FLAG_CREATED;
            if (jsonin_flag(q->body, JSONIN_ALL, &q->next, &present, err, sizeof(err)) < 0)
                return req_error(q, 400, "invalid_field", "%s", err);
            if (!(present & JSONIN_KEY))
                return req_error(q, 400, "invalid_field", "field \"key\" is required");
            q->next.id = 1;
            q->next.version = 1;
            if (flag_validate(&q->next, &e) < 0)
                return req_error(q, 400, "invalid_flag", "%s", e);
            q->rt.arglen = strlen(q->next.key);
            snprintf(q->rt.arg, sizeof(q->rt.arg), "%s", q->next.key);
            if (rconn_command(p->rc, on_create_exists, q, "HEXISTS %s %s", p->k_flags,
                              q->next.key) < 0)
                req_unavailable(q);
            return;
        }
    case RT_FLAG:
        if (m == EVHTTP_REQ_GET) {
            if (rconn_command(p->rc, on_get, q, "HGET %s %b", p->k_flags, rt.arg, rt.arglen) < 0)
                req_unavailable(q);
            return;
        }
        if (m == EVHTTP_REQ_DELETE) {
            q->type = EV_FLAG_DELETED;
            flag_step_read(q);
            return;
        }
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
    case RT_CHANNEL_MESSAGES: {
        const char *e;
        chan_kind_t kind = name_channel_kind(rt.arg, rt.arglen, &e);
        if (kind == CHAN_INVALID)
            return req_error(q, 400, "invalid_channel", "bad channel name: %s", e);
        if (kind == CHAN_FLAGS)
            return req_error(q, 400, "invalid_channel",
                             "channel \"flags\" is reserved for flag events");
        if (parse_message(q, err, sizeof(err)) < 0)
            return req_error(q, 400, "invalid_field", "%s", err);
        q->channels[q->nch++] = strdup(rt.arg);
        if (q->channels[0] == NULL)
            return req_error(q, 500, NULL, "out of memory");
        msg_publish(q);
        return;
    }
    case RT_MESSAGES:
        if (parse_message(q, err, sizeof(err)) < 0)
            return req_error(q, 400, "invalid_field", "%s", err);
        msg_publish(q);
        return;
    default:
        return req_error(q, 404, "not_found", "no such endpoint");
    }

    /* An update: check the body's fields and types against an empty record
     * first, so a bad body is refused before Redis is asked anything. */
    {
        flag_t probe;
        unsigned present;
        flag_init(&probe);
        int bad = jsonin_flag(q->body, q->mask, &probe, &present, err, sizeof(err)) < 0;
        flag_free(&probe);
        if (bad)
            return req_error(q, 400, "invalid_field", "%s", err);
        if ((present & ~(unsigned)JSONIN_KEY) == 0)
            return req_error(q, 400, "invalid_field",
                             "nothing to change: give description, enabled, tags, variants "
                             "or segments");
        json_t *k = json_object_get(q->body, "key");
        if (k && strcmp(json_string_value(k), rt.arg) != 0)
            return req_error(q, 400, "invalid_field",
                             "field \"key\" cannot change a flag's key (it is \"%s\")", rt.arg);
    }
    flag_step_read(q);
}

void api_install(pub_t *p)
{
    evhttp_set_gencb(p->http, on_request, p);
}
