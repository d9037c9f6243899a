/*
 * ws — the WebSocket transport (ws.h).
 */
#include "gateway/lws/ws.h"
#include "gateway/lws/ws_client.h"
#include "gateway/lws/http.h"
#include "gateway/lws/replay.h"
#include "gateway/clock.h"
#include "gateway/ident.h"
#include "gateway/query.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int ws_established(gw_worker_t *w, gw_conn_t *c, struct lws *wsi)
{
    const struct lws_protocols *pr = lws_get_protocol(wsi);
    char qs[GW_QUERY_MAX], err[256], tokbuf[TOKEN_MAX_BYTES + 1];
    const char *tok = NULL, *ierr = NULL;
    token_identity_t *id = NULL;
    access_error_t ae;
    query_t q;
    buf_t b;
    int n;

    /* The identity was verified when the upgrade was filtered; verify again
     * only if that was another wsi's (never expected). */
    n = http_query(wsi, qs, sizeof(qs), tokbuf, sizeof(tokbuf), &tok);
    if (w->pending_wsi == wsi) {
        id = w->pending_id;
        w->pending_id = NULL;
        w->pending_wsi = NULL;
    } else if (http_identity(wsi, n >= 0 ? tok : NULL, true, &id, &ae) != 0) {
        explicit_bzero(tokbuf, sizeof(tokbuf));
        memset(c, 0, sizeof(*c));
        return -1;
    }
    explicit_bzero(tokbuf, sizeof(tokbuf));

    memset(c, 0, sizeof(*c));
    /* The cap slot, atomically (the check in FILTER_PROTOCOL_CONNECTION is
     * only an early answer): full is closed 1013 like a refusal there. */
    if (!conn_reserve(w)) {
        const char *msg = admit_message(ADMIT_FULL);
        token_identity_free(id);
        metric_inc(w->g->m.conns_rejected);
        log_debug("stream refused", "transport=ws reason=%s", admit_reason(ADMIT_FULL));
        lws_close_reason(wsi, (enum lws_close_status)admit_ws_close(ADMIT_FULL),
                         (unsigned char *)msg, strlen(msg));
        return -1;
    }
    c->fmt = pr && pr->id == PROTO_MSGPACK ? OUTQ_FMT_MSGPACK : OUTQ_FMT_JSON;
    outq_init(&c->q, (outq_fmt_t)c->fmt);
    conn_register(w, c, wsi, CK_WS);
    c->last_rx_ns = gw_now_ns();

    /* Who it is: its inboxes now; without a token under auth=required it
     * gets nothing until an `auth` message, within FLAGCAST_AUTH_TIMEOUT. */
    if (id) {
        if (conn_set_identity(c, id, &ierr) != 0)
            return -1;
    } else if (access_mode(gw_access()) == ACCESS_AUTH_REQUIRED) {
        c->auth_wait = 1;
        c->auth_deadline_ns = gw_now_ns() + (uint64_t)w->g->cfg.auth_timeout * 1000000000ull;
    }

    /* `connected` once the inboxes are subscribed (see ws_send_state) */
    conn_ctl_buf(&b);
    wsmsg_render_connected(conn_wsmsg_fmt(c), "Connected to flagcast WebSocket", NULL,
                           c->fmt == OUTQ_FMT_MSGPACK ? "flagcast.msgpack" : "flagcast.json", &b);
    {
        gw_resume_t *r = replay_ack_request(&b);

        if (r == NULL)
            return -1;
        if (c->sub)
            resume_add_starts(r, subidx_filter(c->sub), NULL);
        replay_start(w, c, r);
    }

    /* Filters in the upgrade URL subscribe at once, like SSE's. */
    if (n > 0) {
        const char *ferr = NULL, *code = NULL;
        query_init(&q);
        if (query_parse(qs, (size_t)n, NULL, &q, err, sizeof(err)) != 0) {
            ws_send_error(c, "bad_message", err);
        } else if (q.channels_given || q.req.subscribe_all || q.req.items.nkeys ||
                   q.req.items.nids || q.req.items.ntags) {
            if (ws_apply(c, &q.req, true, NULL, 0, &ferr, &code) != 0)
                ws_send_error(c, code, ferr ? ferr : "subscription failed");
        }
        query_free(&q);
    }
    return 0;
}

/* FILTER_PROTOCOL_CONNECTION of a WS upgrade: a token in the header or the
 * query must verify (401 otherwise); its identity waits in the worker for
 * ESTABLISHED of the same wsi. @return 0, or -1 after answering. */
static int ws_identify(gw_worker_t *w, struct lws *wsi)
{
    char qs[GW_QUERY_MAX], tokbuf[TOKEN_MAX_BYTES + 1];
    const char *tok = NULL;
    token_identity_t *id = NULL;
    access_error_t ae;
    int rc = 0;

    token_identity_free(w->pending_id);
    w->pending_id = NULL;
    w->pending_wsi = NULL;
    if (!access_uses_tokens(gw_access()))
        return 0;
    if (http_query(wsi, qs, sizeof(qs), tokbuf, sizeof(tokbuf), &tok) < 0) {
        http_reply_json_error(wsi, 400, "query string too long");
        rc = -1;
    } else if (http_identity(wsi, tok, true, &id, &ae) != 0) {
        http_reply_json_error(wsi, (unsigned)ae.status, ae.message);
        rc = -1;
    } else {
        w->pending_wsi = wsi;
        w->pending_id = id;
    }
    explicit_bzero(tokbuf, sizeof(tokbuf));
    return rc;
}

/* A WS acknowledgement (connected, subscribed) tells where each channel it
 * started begins ("positions", the shape `since` takes), so a client that
 * reconnects before its first event there resumes from its start, as an
 * SSE client does with the id-only frame. */
static void ws_ack_positions(gw_conn_t *c, gw_resume_t *r)
{
    wsmsg_since_t *pos;
    const char *msg;
    size_t i, n = 0, len;
    outq_ev_t *e;
    buf_t b;

    for (i = 0; i < r->nch; i++)
        n += r->pos_only[i] && r->ok[i] && r->epochs[i];
    if (n == 0 || (msg = outq_ev_data(r->prelude, (outq_fmt_t)c->fmt, &len)) == NULL ||
        (pos = calloc(n, sizeof(*pos))) == NULL)
        return;
    for (i = 0, n = 0; i < r->nch; i++)
        if (r->pos_only[i] && r->ok[i] && r->epochs[i]) {
            pos[n].channel = r->channels[i];
            pos[n].epoch = r->epochs[i];
            pos[n++].offset = r->last[i];
        }
    conn_ctl_buf(&b);
    if (wsmsg_add_positions(conn_wsmsg_fmt(c), msg, len, pos, n, &b) == 0 && (e = conn_ctl_item(&b)) != NULL) {
        outq_ev_unref(r->prelude);
        r->prelude = e;
    } else {
        buf_free(&b);
    }
    free(pos);
}

/* ==== the upgrade ==== */

int ws_confirm_upgrade(struct lws *wsi)
{
    /* lws drops an upgrade naming no protocol it serves without an
     * answer: say which ones are (400), and log it. */
    char proto[512], bad[160], msg[256];
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_PROTOCOL);

    if (n <= 0)
        return 0;
    if ((size_t)n >= sizeof(proto) || lws_hdr_copy(wsi, proto, sizeof(proto), WSI_TOKEN_PROTOCOL) < 0) {
        http_reply_json_error(wsi, 400, "Sec-WebSocket-Protocol too long");
        return -1;
    }
    if (admit_ws_subprotocol(proto, strlen(proto), bad, sizeof(bad)) == 0)
        return 0;
    snprintf(msg, sizeof(msg), "unsupported WebSocket subprotocol %s (supported: %s)", bad,
             ADMIT_WS_PROTOCOLS);
    log_info("websocket upgrade refused", "reason=\"unsupported subprotocol\" asked=\"%s\"", bad);
    http_reply_json_error(wsi, 400, msg);
    return -1;
}

int ws_filter(gw_worker_t *w, struct lws *wsi)
{
    char path[64];
    int n = lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI);
    admit_t a;

    if (n <= 0 || !http_is_ws_path(path))
        return 1;
    /* A refusal the client should retry is upgraded and closed at once
     * with 1012 / 1013 from ESTABLISHED (admit.h): a 503 to the upgrade
     * reads as a failure, not as "come back". The token is checked before
     * the cap. */
    a = conn_admit(w, wsi, false);
    if (a == ADMIT_OK && ws_identify(w, wsi) != 0)
        return 1;
    if (a == ADMIT_OK)
        a = conn_admit(w, wsi, true);
    if (a != ADMIT_OK) {
        if (a == ADMIT_FULL)
            metric_inc(w->g->m.conns_rejected);
        token_identity_free(w->pending_id);
        w->pending_id = NULL;
        w->pending_wsi = NULL;
        w->refuse_wsi = wsi;
        w->refuse = (uint8_t)a;
    }
    return 0;
}

int ws_establish(gw_worker_t *w, gw_conn_t *c, struct lws *wsi)
{
    if (w->refuse_wsi == wsi) {   /* refused in FILTER_PROTOCOL_CONNECTION */
        admit_t a = (admit_t)w->refuse;
        const char *msg = admit_message(a);
        w->refuse_wsi = NULL;
        if (c)
            memset(c, 0, sizeof(*c));
        log_debug("stream refused", "transport=ws reason=%s", admit_reason(a));
        lws_close_reason(wsi, (enum lws_close_status)admit_ws_close(a),
                         (unsigned char *)msg, strlen(msg));
        return -1;
    }
    return ws_established(w, c, wsi) ? -1 : 0;
}

void ws_pong(gw_conn_t *c)
{
    c->last_rx_ns = gw_now_ns();
    c->ping_out = 0;
}

/* ==== the transport's operations ==== */

static gw_conn_t **ws_list(gw_worker_t *w)
{
    return &w->ws;
}

static metric_t *ws_gauge(const gw_t *g)
{
    return g->m.conns_ws;
}

/* SERVER_WRITEABLE: the queue, or the close a drain, a stop or an error
 * asked for. */
static int ws_writable(gw_conn_t *c)
{
    struct lws *wsi = c->wsi;

    if (c->closing)
        return -1;
    if (c->w->stopping || c->going_away) {
        static const char bye[] = "server shutting down";
        lws_close_reason(wsi, LWS_CLOSE_STATUS_GOINGAWAY, (unsigned char *)bye, sizeof(bye) - 1);
        return -1;
    }
    if (c->errors >= c->w->g->cfg.ws_max_errors) {
        static const char bye[] = "too many bad messages";
        lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, (unsigned char *)bye, sizeof(bye) - 1);
        return -1;
    }
    if (c->close_code) {   /* unauthorized / token expired: error first, then close */
        static const char bye[] = "unauthorized";
        if (conn_flush(c))
            return -1;
        if (!outq_empty(&c->q) || lws_partial_buffered(wsi))
            return 0;
        lws_close_reason(wsi, (enum lws_close_status)c->close_code, (unsigned char *)bye, sizeof(bye) - 1);
        return -1;
    }
    return conn_flush(c) ? -1 : 0;
}

/* Pings after FLAGCAST_WS_PING s of silence, closes after
 * FLAGCAST_WS_IDLE_TIMEOUT; identity deadlines (no per-connection timers):
 * a token past its exp (+ leeway) gets `error token_expired` and close
 * 4401, a connection that owes an `auth` message past FLAGCAST_AUTH_TIMEOUT
 * is closed the same way, and one whose close waits on a client that does
 * not read is killed after 2 s. */
static void ws_tick(gw_worker_t *w, uint64_t now)
{
    const gw_config_t *cfg = &w->g->cfg;
    long long wall = (long long)time(NULL);
    gw_conn_t *c, *next;

    for (c = w->ws; c; c = next) {
        uint64_t idle = now - c->last_rx_ns;
        next = c->next;
        if (c->closing)
            continue;
        if (idle >= (uint64_t)cfg->ws_idle_timeout * 1000000000ull) {
            conn_kill(c, "idle timeout");
            continue;
        } else if (idle >= (uint64_t)cfg->ws_ping * 1000000000ull && !c->ping_out &&
                   !lws_partial_buffered(c->wsi) && outq_empty(&c->q)) {
            /* lws 4.1.6 does not report a pong with an empty payload
             * (ops-ws.c skips the callback), so the ping carries one. */
            unsigned char pb[LWS_PRE + 8];
            memcpy(pb + LWS_PRE, "flagcast", 8);
            c->ping_out = 1;
            if (lws_write(c->wsi, pb + LWS_PRE, 8, LWS_WRITE_PING) < 0) {
                conn_kill(c, "write failed");
                continue;
            }
        }
        if (c->close_code) {
            if (now >= c->auth_deadline_ns)
                conn_kill(c, "close not taken");
        } else if (c->auth_wait) {
            if (now >= c->auth_deadline_ns) {
                metric_inc(w->g->m.auth_refused);
                ws_close_with(c, "unauthorized", "authentication required: no auth message in time",
                              GW_CLOSE_UNAUTHORIZED);
            }
        } else if (c->id && gw_ident_deadline(c->id) && wall >= gw_ident_deadline(c->id)) {
            log_debug("token expired", "conn=%u transport=ws", c->serial);
            metric_inc(w->g->m.auth_expired);
            ws_close_with(c, "token_expired", "the token expired", GW_CLOSE_UNAUTHORIZED);
        }
    }
}

/* Drained: close 1001 from its writable callback. */
static void ws_drain(gw_worker_t *w, gw_conn_t *c)
{
    c->going_away = 1;
    metric_inc(w->g->m.drained_ws);
    lws_callback_on_writable(c->wsi);
}

/* Stopping: close 1001 from the writable callback. */
static void ws_stop(gw_worker_t *w)
{
    gw_conn_t *c;

    for (c = w->ws; c; c = c->next)
        lws_callback_on_writable(c->wsi);
}

const gw_transport_t gw_ws_transport = {
    .name = "ws",
    .list = ws_list,
    .gauge = ws_gauge,
    .writable = ws_writable,
    .ack = ws_ack_positions,
    .tick = ws_tick,
    .drain = ws_drain,
    .stop = ws_stop,
};
