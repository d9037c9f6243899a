/*
 * eval — the evaluation API's lws glue (eval.h).
 *
 * A POST goes through three callbacks: LWS_CALLBACK_HTTP (eval_start: the
 * method, the token, the announced Content-Length; the path's request kind
 * and the If-None-Match header are kept, since the request's headers are
 * read here and only here), LWS_CALLBACK_HTTP_BODY (eval_body: bytes appended
 * to a buffer bounded by FLAGCAST_MAX_BODY_BYTES) and
 * LWS_CALLBACK_HTTP_BODY_COMPLETION (eval_complete). The parse happens
 * outside any lock; the evaluation and the rendering happen under the
 * mirror's read lock (the Redis thread writes it); the answer is kept and
 * written from LWS_CALLBACK_HTTP_WRITEABLE (eval_writable), the keep-alive
 * connection then serving the next request. A request pipelined behind a
 * body makes lws 4.1 repeat the completion and then loop on that request
 * (a core at 100%): the answer is then sent with Connection: close and the
 * connection ends, so the client sends the rest again.
 *
 * A request refused before its body is read (405, 401, 411, 413) is answered
 * and its connection closed: the unread body would otherwise be taken for
 * the next request.
 */
#include "gateway/lws/eval.h"
#include "gateway/lws/http.h"
#include "gateway/evalapi.h"
#include "common/log.h"
#include "proto/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One evaluation request being read (gw_conn_t.ereq). */
struct gw_evreq {
    evalapi_kind_t    kind;
    char              key[EVALAPI_KEY_MAX + 1];
    size_t            klen;
    buf_t             body;
    size_t            expect;        /* Content-Length */
    token_identity_t *id;            /* NULL: anonymous */
    bool              has_inm;
    char              inm[512];      /* If-None-Match */
    /* the answer, once evaluated: written from the writable callback */
    bool              ready;
    bool              close;         /* more bytes followed: close after the answer */
    evalapi_reply_t   out;
};

static void evreq_free(struct gw_evreq *r)
{
    if (!r)
        return;
    buf_free(&r->body);
    token_identity_free(r->id);
    evalapi_reply_free(&r->out);
    free(r);
}

void eval_release(gw_conn_t *c)
{
    if (c && c->ereq) {
        evreq_free(c->ereq);
        c->ereq = NULL;
    }
}

bool eval_is_path(const char *path)
{
    evalapi_kind_t k;
    const char *key;
    size_t kl;
    return evalapi_route(path, &k, &key, &kl);
}

static bool is_ofrep(evalapi_kind_t k)
{
    return k == EVALAPI_OFREP_ONE || k == EVALAPI_OFREP_BULK;
}

/* Writes a complete answer: status, JSON body (none for 204/304 or an
 * empty one), the ETag if any, CORS. close: the connection ends after it.
 * @return what the HTTP callback returns. */
static int eval_reply(struct lws *wsi, unsigned status, const char *body, size_t blen,
                      const char *etag, bool close)
{
    unsigned char hdr[LWS_PRE + 1024], *start = hdr + LWS_PRE, *p = start,
                  *end = hdr + sizeof(hdr) - 1;

    if (lws_add_http_common_headers(wsi, status, blen ? "application/json" : NULL, blen,
                                    &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end) ||
        (etag && etag[0] &&
         lws_add_http_header_by_name(wsi, (const unsigned char *)"etag:",
                                     (const unsigned char *)etag, (int)strlen(etag), &p, end)) ||
        (close &&
         lws_add_http_header_by_name(wsi, (const unsigned char *)"connection:",
                                     (const unsigned char *)"close", 5, &p, end)) ||
        http_add_cors(wsi, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    if (blen) {
        unsigned char *out = malloc(LWS_PRE + blen);
        if (out == NULL)
            return -1;
        memcpy(out + LWS_PRE, body, blen);
        int n = lws_write(wsi, out + LWS_PRE, blen, LWS_WRITE_HTTP_FINAL);
        free(out);
        if (n != (int)blen)
            return -1;
    }
    if (close)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* An error answer in the kind's shape (evalapi_reply_error). */
static int eval_error(struct lws *wsi, evalapi_kind_t kind, const char *key, unsigned status,
                      const char *code, const char *msg, bool close)
{
    evalapi_reply_t r;
    int rc;

    evalapi_reply_init(&r);
    evalapi_reply_error(&r, kind, key, status, code, msg);
    rc = r.body.err ? -1 : eval_reply(wsi, status, r.body.data, r.body.len, NULL, close);
    evalapi_reply_free(&r);
    return rc;
}

/* The announced body length: 0 when none; -1 when unusable. */
static long long content_length(struct lws *wsi)
{
    char v[32], *e;
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    long long len;

    if (n <= 0)
        return 0;
    if ((size_t)n >= sizeof(v) || lws_hdr_copy(wsi, v, sizeof(v), WSI_TOKEN_HTTP_CONTENT_LENGTH) != n)
        return -1;
    len = strtoll(v, &e, 10);
    if (e == v || *e != '\0' || len < 0)
        return -1;
    return len;
}

int eval_start(gw_worker_t *w, gw_conn_t *c, struct lws *wsi, const char *path)
{
    char qs[GW_QUERY_MAX], tokbuf[TOKEN_MAX_BYTES + 1];
    const char *tok = NULL, *key;
    access_error_t ae;
    token_identity_t *id = NULL;
    struct gw_evreq *r;
    evalapi_kind_t kind;
    size_t klen;
    long long len;
    int n;

    if (!evalapi_route(path, &kind, &key, &klen))
        return http_reply_json_error(wsi, 404, "not found");
    if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) <= 0)
        /* GET and the rest: a body may follow that we will not read */
        return eval_error(wsi, kind, NULL, 405, "GENERAL", "method not allowed: use POST", true);
    if (c == NULL)
        return -1;
    eval_release(c);   /* a request left over on a keep-alive connection */

    n = http_query(wsi, qs, sizeof(qs), tokbuf, sizeof(tokbuf), &tok);
    if (n < 0) {
        explicit_bzero(tokbuf, sizeof(tokbuf));
        return eval_error(wsi, kind, NULL, 400, "GENERAL", "query string too long", true);
    }
    if (http_identity(wsi, tok, false, &id, &ae) != 0) {
        explicit_bzero(tokbuf, sizeof(tokbuf));
        if (is_ofrep(kind))   /* OFREP: 401/403 carry no body */
            return eval_reply(wsi, (unsigned)ae.status, NULL, 0, NULL, true);
        return eval_error(wsi, kind, NULL, (unsigned)ae.status, "GENERAL", ae.message, true);
    }
    explicit_bzero(tokbuf, sizeof(tokbuf));

    len = content_length(wsi);
    if (len < 0 || (len == 0 && lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0)) {
        token_identity_free(id);
        return eval_error(wsi, kind, NULL, 411, "GENERAL",
                          "a body needs a valid Content-Length (no chunked bodies)", true);
    }
    if (len > w->g->cfg.max_body_bytes) {
        char msg[120];
        token_identity_free(id);
        snprintf(msg, sizeof(msg), "request body over %ld bytes (FLAGCAST_MAX_BODY_BYTES)",
                 w->g->cfg.max_body_bytes);
        return eval_error(wsi, kind, NULL, 413, "GENERAL", msg, true);
    }

    if ((r = calloc(1, sizeof(*r))) == NULL) {
        token_identity_free(id);
        return eval_error(wsi, kind, NULL, 500, "GENERAL", "out of memory", true);
    }
    r->kind = kind;
    memcpy(r->key, key ? key : "", klen);
    r->key[klen] = '\0';
    r->klen = klen;
    r->id = id;
    r->expect = (size_t)len;
    buf_init(&r->body);
    evalapi_reply_init(&r->out);
    r->body.limit = (size_t)w->g->cfg.max_body_bytes;
    n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_IF_NONE_MATCH);
    if (n > 0 && (size_t)n < sizeof(r->inm) &&
        lws_hdr_copy(wsi, r->inm, sizeof(r->inm), WSI_TOKEN_HTTP_IF_NONE_MATCH) == n)
        r->has_inm = true;
    c->ereq = r;
    if (len == 0)   /* lws announces no body: answer now */
        return eval_complete(c, wsi);
    return 0;       /* LWS_CALLBACK_HTTP_BODY follows */
}

int eval_body(gw_conn_t *c, struct lws *wsi, const void *in, size_t len)
{
    struct gw_evreq *r = c ? c->ereq : NULL;

    if (r == NULL)
        return -1;
    if (r->body.len + len > r->expect || buf_append(&r->body, in, len) != 0) {
        evalapi_kind_t kind = r->kind;
        eval_release(c);
        eval_error(wsi, kind, NULL, 413, "GENERAL",
                   "request body over its Content-Length or FLAGCAST_MAX_BODY_BYTES", true);
        return -1;
    }
    return 0;
}

/* A random seed per service thread, for entities without an id. */
uint64_t eval_seed(void)
{
    static __thread uint64_t s;
    if (s == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)&s;
    }
    s += 0x9e3779b97f4a7c15ull;
    return s;
}

uint64_t eval_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int eval_complete(gw_conn_t *c, struct lws *wsi)
{
    struct gw_evreq *r = c ? c->ereq : NULL;
    gw_t *g;
    evalapi_req_t req;
    evalapi_reply_t *out;

    if (r == NULL)
        return -1;
    if (r->ready) {
        /* lws 4.1 repeats the completion when bytes follow the body (a
         * pipelined request); it then loops on that request, spinning a
         * core. Answer this one with Connection: close and end there: the
         * client sends the rest again on a new connection. */
        r->close = true;
        return 0;
    }
    g = wsi_worker(wsi)->g;
    out = &r->out;
    if (!atomic_load(&g->mirror_ever)) {
        evalapi_reply_error(out, r->kind, r->klen ? r->key : NULL, 503, "GENERAL",
                            "flags not loaded yet");
    } else if (evalapi_parse(r->kind, r->key, r->klen, r->body.data, r->body.len, &req,
                             out) == 0) {
        const char *role = g->cfg.evaluator_role;
        evalapi_env_t env = {
            .now_ms = eval_now_ms(),
            .seed = eval_seed(),
            .who = { .id = r->id,
                     .evaluator = r->id && role && role[0] && token_identity_has_role(r->id, role) },
            .if_none_match = r->has_inm ? r->inm : NULL,
        };
        pthread_rwlock_rdlock(&g->mirror_lock);
        evalapi_run(g->mirror, &req, &env, out);
        pthread_rwlock_unlock(&g->mirror_lock);
        evalapi_req_free(&req);
        if (out->status >= 500)
            log_warn("evaluation failed", "path_kind=%d status=%u", (int)r->kind, out->status);
    }
    if (out->body.err)
        return -1;
    /* The answer is written from the writable callback, not from inside the
     * body callbacks, so that a repeated completion (above) is seen first. */
    buf_free(&r->body);
    r->ready = true;
    lws_callback_on_writable(wsi);
    return 0;
}

bool eval_pending(const gw_conn_t *c)
{
    return c && c->ereq && c->ereq->ready;
}

int eval_writable(gw_conn_t *c, struct lws *wsi, bool close)
{
    struct gw_evreq *r = c->ereq;
    evalapi_reply_t *out = &r->out;
    int rc;

    c->ereq = NULL;
    rc = eval_reply(wsi, out->status, out->body.data, out->status == 304 ? 0 : out->body.len,
                    out->etag, close || r->close);
    evreq_free(r);
    return rc;
}
