/*
 * sse — the SSE transport (sse.h).
 */
#include "gateway/lws/sse.h"
#include "gateway/lws/accept.h"
#include "gateway/lws/http.h"
#include "gateway/lws/replay.h"
#include "gateway/clock.h"
#include "gateway/ident.h"
#include "gateway/query.h"
#include "common/log.h"
#include "proto/sse.h"

#include <stdlib.h>
#include <string.h>

/* The keep-alive comment, rendered once by sse_init (LWS_PRE bytes of room
 * first), then written as it is to every idle stream. */
static buf_t keepalive;

static _Thread_local buf_t frame_buf;   /* one per service thread, reused */

/* The bytes to write for event e (shared frame p/n) on c: the shared ones,
 * or for a list-cursor stream the frame with c's own id line. */
static void sse_frame_for(gw_conn_t *c, outq_ev_t *e, const char **p, size_t *n)
{
    static const char room[LWS_PRE];
    const ev_t *ev = outq_ev_event(e);

    if (c->pos == NULL || ev == NULL || ev->channel == NULL)
        return;
    listcur_set(c->pos, ev->channel, ev->epoch, ev->offset);
    buf_reset(&frame_buf);
    buf_append(&frame_buf, room, LWS_PRE);
    listcur_frame(c->pos, *p, *n, &frame_buf);
    if (frame_buf.err)
        return;   /* the shared bytes, then */
    *p = frame_buf.data + LWS_PRE;
    *n = frame_buf.len - LWS_PRE;
}

static _Thread_local uint64_t refuse_rnd;   /* jitter of refusals' retry hints */

/* Refuses a new SSE stream in a form EventSource retries (admit.h): 200
 * text/event-stream, a comment with the reason and a jittered retry: hint,
 * then the end of the response. A 5xx would end the EventSource for good. */
static int sse_refuse(gw_worker_t *w, struct lws *wsi, admit_t a)
{
    unsigned char hdr[LWS_PRE + 1024], *start = hdr + LWS_PRE, *p = start,
                  *end = hdr + sizeof(hdr) - 1;
    const char *why = admit_reason(a);
    unsigned char *out;
    buf_t b;
    int rc = -1;

    if (a == ADMIT_FULL)
        metric_inc(w->g->m.conns_rejected);
    if (refuse_rnd == 0)
        refuse_rnd = gw_now_ns() ^ (uint64_t)(uintptr_t)&refuse_rnd;
    buf_init(&b);
    admit_render_sse(a, admit_retry_ms(&refuse_rnd, (unsigned)w->g->cfg.sse_retry), &b);
    log_debug("stream refused", "transport=sse reason=%s", why);
    if (b.err ||
        lws_add_http_common_headers(wsi, HTTP_STATUS_OK, "text/event-stream", b.len, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-cache", 8, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"x-flagcast-refused:",
                                    (const unsigned char *)why, (int)strlen(why), &p, end) ||
        http_add_cors(wsi, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        goto out;
    out = malloc(LWS_PRE + b.len);
    if (out == NULL)
        goto out;
    memcpy(out + LWS_PRE, b.data, b.len);
    rc = lws_write(wsi, out + LWS_PRE, b.len, LWS_WRITE_HTTP_FINAL) == (int)b.len ? 0 : -1;
    free(out);
    if (rc == 0 && lws_http_transaction_completed(wsi))
        rc = -1;
out:
    buf_free(&b);
    return rc;
}

/* Starts an SSE stream: headers, retry hint, connection event, snapshot. */
int sse_start(gw_worker_t *w, gw_conn_t *c, struct lws *wsi)
{
    unsigned char hdr[LWS_PRE + 1024], *start = hdr + LWS_PRE, *p = start,
                  *end = hdr + sizeof(hdr) - 1;
    char qs[GW_QUERY_MAX], err[400], tokbuf[TOKEN_MAX_BYTES + 1];
    const char *ferr = NULL, *tok = NULL;
    token_identity_t *id = NULL;
    access_error_t ae;
    query_t q;
    filter_t f;
    buf_t b, data;
    int n, rc = -1;
    bool held = false;   /* a cap slot, until conn_register hands it to c */

    {
        admit_t a = conn_admit(w, wsi, true);
        if (a == ADMIT_OK && !(held = conn_reserve(w)))
            a = ADMIT_FULL;
        if (a != ADMIT_OK)
            return sse_refuse(w, wsi, a);
    }
    n = http_query(wsi, qs, sizeof(qs), tokbuf, sizeof(tokbuf), &tok);
    if (n >= 0 && http_identity(wsi, tok, false, &id, &ae) != 0) {
        explicit_bzero(tokbuf, sizeof(tokbuf));
        conn_unreserve(w);
        return http_reply_json_error(wsi, (unsigned)ae.status, ae.message);
    }
    explicit_bzero(tokbuf, sizeof(tokbuf));
    if (n < 0) {
        conn_unreserve(w);
        return http_reply_json_error(wsi, 400, "query string too long");
    }
    query_init(&q);
    filter_init(&f);
    if (query_parse(qs, (size_t)n, NULL, &q, err, sizeof(err)) != 0) {
        rc = http_reply_json_error(wsi, 400, err);
        goto out;
    }
    if (filter_from_req(&f, &q.req, true, FILTER_MAX_ITEMS, &ferr) != 0) {
        rc = http_reply_json_error(wsi, 400, ferr ? ferr : "bad filter");
        goto out;
    }
    if (conn_check_channels(id, &f, &ae, err, sizeof(err)) != 0) {
        rc = http_reply_json_error(wsi, (unsigned)ae.status, err);
        goto out;
    }
    if (gw_ident_apply(id, &f, &ferr) != 0) {   /* the identity's inboxes */
        rc = http_reply_json_error(wsi, 500, ferr);
        goto out;
    }

    if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, "text/event-stream",
                                    LWS_ILLEGAL_HTTP_CONTENT_LEN, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-cache", 8, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"x-accel-buffering:",
                                    (const unsigned char *)"no", 2, &p, end) ||
        http_add_cors(wsi, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        goto out;

    /* The prelude: retry hint, connection event; the snapshot follows. */
    buf_init(&b);
    buf_init(&data);
    buf_append(&b, hdr, LWS_PRE);   /* room, unused for HTTP */
    sse_retry(&b, (unsigned)w->g->cfg.sse_retry);
    wsmsg_render_connected(WSMSG_FMT_JSON, "Connected to flagcast SSE stream", NULL, "SSE", &data);
    sse_frame(&b, NULL, "connection", data.data, data.len);
    buf_free(&data);
    if (b.err) {
        buf_free(&b);
        goto out;
    }

    memset(c, 0, sizeof(*c));
    outq_init(&c->q, OUTQ_FMT_SSE);
    c->fmt = OUTQ_FMT_SSE;
    held = false;   /* c holds the slot now: conn_release gives it back */
    conn_register(w, c, wsi, CK_SSE);
    c->id = id;   /* conn_release frees it */
    id = NULL;
    if (gw_ident_deadline(c->id))
        w->nexpiring++;
    if (!filter_is_empty(&f)) {
        c->sub = subidx_add(w->idx, c, &f);
        if (c->sub == NULL) {
            buf_free(&b);
            goto out;   /* CLOSED_HTTP releases c */
        }
    }

    /* One request to the Redis thread answers the stream's start: resume
     * from history what the cursor names (the Last-Event-ID header from
     * browsers, or the lastEventId parameter: a cursor or a list cursor,
     * one item per channel; an item that does not parse, or names a channel
     * this stream does not want, is ignored: that channel starts live), and
     * the position of every other channel once its SUBSCRIBE is confirmed.
     * The prelude is written with the answer, so everything published after
     * the client saw `connection` reaches it; the snapshot comes with it
     * when the cursor does not cover flags (a replay is never preceded by a
     * newer snapshot). */
    if (c->sub)
        c->pos = listcur_new(subidx_filter(c->sub), GW_RESUME_MAX_CHANNELS);
    {
        char *curp = malloc(QUERY_MAX_CURSOR + 1);
        const char *cs = NULL, *ch, *ep, *it;
        size_t chlen, eplen, ilen, ipos = 0;
        uint64_t off;
        int cl = curp ? lws_hdr_custom_copy(wsi, curp, QUERY_MAX_CURSOR + 1, "last-event-id:", 14) : -1;
        gw_resume_t *r = replay_ack_request(&b);

        if (r == NULL) {
            free(curp);
            goto out;
        }
        if (cl > 0)
            cs = curp;
        else if (q.last_event_id)
            cs = q.last_event_id;
        while (cs && c->sub && query_cursor_next(cs, strlen(cs), &ipos, &it, &ilen)) {
            if (query_parse_cursor(it, ilen, &ch, &chlen, &ep, &eplen, &off) != 0)
                continue;
            if (resume_add(r, subidx_filter(c->sub), ch, chlen, ep, eplen, off) == 0 && c->pos)
                listcur_set(c->pos, r->channels[r->nch - 1], r->epochs[r->nch - 1], off);
        }
        r->snapshot = !resume_has(r, "flags");
        if (c->sub)
            resume_add_starts(r, subidx_filter(c->sub), NULL);
        free(curp);
        replay_start(w, c, r);
    }

    /* Keep ~1 KB per idle stream: drop the header table, no timeout. */
    lws_http_headers_detach(wsi);
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);

    reap_watch(w, c);   /* a peer's close is noticed by the reaper (accept.h) */

    rc = c->closing ? -1 : 0;
out:
    if (held)
        conn_unreserve(w);
    token_identity_free(id);
    query_free(&q);
    filter_free(&f);
    return rc;
}

/* ==== the transport's operations ==== */

static gw_conn_t **sse_list(gw_worker_t *w)
{
    return &w->sse;
}

static metric_t *sse_gauge(const gw_t *g)
{
    return g->m.conns_sse;
}

static int sse_writable(gw_conn_t *c)
{
    if (c->closing)
        return -1;
    return conn_flush(c) ? -1 : 0;
}

/* Writes bytes of its own (a retry: hint) to c unless lws holds some. */
static void sse_write_own(gw_conn_t *c, const buf_t *b)
{
    if (!c->closing && !b->err && !lws_partial_buffered(c->wsi))
        lws_write(c->wsi, (unsigned char *)b->data + LWS_PRE, b->len - LWS_PRE, LWS_WRITE_HTTP);
}

/* Keep-alive comments every FLAGCAST_SSE_KEEPALIVE s; a token past its exp
 * (+ leeway, as token_verify counts it) closes its connection. */
static void sse_tick(gw_worker_t *w, uint64_t now)
{
    gw_conn_t *c, *next;

    if (now >= w->next_keepalive_ns) {
        w->next_keepalive_ns = now + (uint64_t)w->g->cfg.sse_keepalive * 1000000000ull;
        for (c = w->sse; c; c = next) {
            next = c->next;
            if (c->closing || !outq_empty(&c->q) || lws_partial_buffered(c->wsi))
                continue;   /* busy streams need no keep-alive */
            if (lws_write(c->wsi, (unsigned char *)keepalive.data + LWS_PRE, keepalive.len - LWS_PRE,
                          LWS_WRITE_HTTP) < 0)
                conn_kill(c, "write failed");
        }
    }
    if (w->nexpiring > 0) {
        long long wall = (long long)time(NULL);
        for (c = w->sse; c; c = next) {
            long long dl = gw_ident_deadline(c->id);
            next = c->next;
            if (!c->closing && dl && wall >= dl) {
                log_debug("token expired", "conn=%u transport=sse", c->serial);
                metric_inc(w->g->m.auth_expired);
                conn_kill(c, "token expired");
            }
        }
    }
}

/* Drained: a jittered retry: hint, then close. */
static void sse_drain(gw_worker_t *w, gw_conn_t *c)
{
    buf_t b;

    conn_ctl_buf(&b);
    sse_retry(&b, drain_retry_ms(&w->drain, (unsigned)w->g->cfg.sse_retry));
    sse_write_own(c, &b);
    buf_free(&b);
    metric_inc(w->g->m.drained_sse);
    conn_kill(c, "draining");
}

/* One last retry hint, then close; the client reconnects elsewhere. */
static void sse_stop(gw_worker_t *w)
{
    gw_conn_t *c, *next;
    buf_t b;

    conn_ctl_buf(&b);
    sse_retry(&b, (unsigned)w->g->cfg.sse_retry);
    for (c = w->sse; c; c = next) {
        next = c->next;
        sse_write_own(c, &b);
        conn_kill(c, "shutting down");
    }
    buf_free(&b);
}

int sse_init(void)
{
    if (keepalive.data == NULL) {
        conn_ctl_buf(&keepalive);
        sse_comment(&keepalive, NULL);
    }
    return keepalive.err ? -1 : 0;
}

void sse_thread_free(void)
{
    buf_free(&frame_buf);
}

const gw_transport_t gw_sse_transport = {
    .name = "sse",
    .list = sse_list,
    .gauge = sse_gauge,
    .writable = sse_writable,
    .frame = sse_frame_for,
    .tick = sse_tick,
    .drain = sse_drain,
    .stop = sse_stop,
};
