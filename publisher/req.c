/*
 * req — a request's life and the admin API's replies (see req.h).
 *
 * Every reply goes through req_send, which counts its status class and
 * tracks it until evhttp has written it (p->sending: SIGTERM waits, briefly,
 * for those). A request answered through req_reply / req_error is logged
 * at debug level with its latency and freed here.
 */
#include "publisher/req.h"
#include "common/log.h"
#include "proto/json.h"

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t req_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
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

static void count_status(pub_t *p, int status)
{
    if (status < 400)
        metric_inc(p->m.req_2xx);
    else if (status < 500)
        metric_inc(p->m.req_4xx);
    else
        metric_inc(p->m.req_5xx);
}

req_t *req_new(pub_t *p, struct evhttp_request *r, const route_t *rt,
               enum evhttp_cmd_type m, const char *path)
{
    req_t *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return NULL;
    q->p = p;
    q->r = r;
    q->rt = *rt;
    q->method = m;
    /* The path only: a query string could carry a credential by mistake
     * (?token=...), and tokens never reach the logs. */
    log_q(q->qpath, sizeof(q->qpath), path);
    clock_gettime(CLOCK_MONOTONIC, &q->t0);
    flag_init(&q->next);
    p->inflight++;
    metric_set(p->m.inflight, p->inflight);
    return q;
}

/* Replies handed to evhttp but not yet written out; SIGTERM waits for them
 * (briefly) so a reply is not cut off by the exit. */
static void on_sent(struct evhttp_request *r, void *arg)
{
    pub_t *p = arg;
    p->sending--;
}

void req_send(pub_t *p, struct evhttp_request *r, int status, const char *reason,
              struct evbuffer *eb)
{
    count_status(p, status);
    p->sending++;
    evhttp_request_set_on_complete_cb(r, on_sent, p);
    evhttp_send_reply(r, status, reason, eb);
}

/* Sends a reply with a JSON body (b may be NULL for an empty body). */
void req_send_json(pub_t *p, struct evhttp_request *r, int status, const buf_t *b)
{
    struct evbuffer *eb = evbuffer_new();
    struct evkeyvalq *h = evhttp_request_get_output_headers(r);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Cache-Control", "no-store");
    if (eb && b && b->len)
        evbuffer_add(eb, b->data, b->len);
    if (eb)
        evbuffer_add(eb, "\n", 1);
    req_send(p, r, status, NULL, eb);
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
    req_send_json(p, r, status, &b);
    buf_free(&b);
}

void req_send_error(pub_t *p, struct evhttp_request *r, int status, const char *code,
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

void req_error(req_t *q, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    q->status = status;
    va_start(ap, fmt);
    send_error_r(q->p, q->r, status, code, NULL, fmt, ap);
    va_end(ap);
    req_end(q);
}

void req_unavailable(req_t *q)
{
    req_error(q, 503, "redis_unavailable", "Redis is unavailable; nothing was changed, retry later");
}

void req_reply(req_t *q, int status, buf_t *b)
{
    q->status = status;
    req_send_json(q->p, q->r, status, b);
    req_end(q);
}

/* A reply that means "Redis cannot serve writes right now" (replica after a
 * failover, dataset loading, busy script). Answered 503 like a lost
 * connection; after READONLY the connection is dropped so that it
 * reconnects (a DNS name may now point at the new primary).
 * @return 1 if the reply was such an error and q was answered. */
int req_redis_failed(req_t *q, const redisReply *reply)
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
    if (strncmp(reply->str, STORE_NOTACKED, strlen(STORE_NOTACKED)) == 0) {
        metric_inc(q->p->m.not_acked);
        req_error(q, 503, "not_acknowledged",
                  "the change was applied on the Redis master and published, but %s within "
                  "%ld ms, so it is not acknowledged: a failover now may lose it; read it back "
                  "before retrying", reply->str + strlen(STORE_NOTACKED) + 1,
                  q->p->cfg.wait_ms);
        return 1;
    }
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
void req_put_publication(buf_t *b, const store_reply_t *sr, size_t i)
{
    redisReply *const *e = sr->pub + 3 * i;
    buf_puts(b, "{\"channel\":");
    json_str(b, e[0]->str ? e[0]->str : "", e[0]->str ? e[0]->len : 0);
    buf_puts(b, ",\"epoch\":");
    json_str(b, e[1]->str ? e[1]->str : "", e[1]->str ? e[1]->len : 0);
    buf_printf(b, ",\"offset\":%lld}", e[2]->integer);
}

