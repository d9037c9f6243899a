/*
 * callback — the one lws callback of the gateway: every lws reason, routed
 * to the worker (wake-ups, raw descriptors), the HTTP routes, or the
 * connection's transport (sse.h, ws.h); the protocols it serves; the start
 * of the service threads that serve them.
 */
#include "gateway/lws/lws.h"
#include "gateway/lws/accept.h"
#include "gateway/lws/conn.h"
#include "gateway/lws/eval.h"
#include "gateway/lws/http.h"
#include "gateway/lws/sse.h"
#include "gateway/lws/worker.h"
#include "gateway/lws/ws.h"
#include "gateway/lws/ws_client.h"
#include "common/log.h"

#include <stdio.h>
#include <string.h>

#define GW_TX_PACKET      (2u * 1024 * 1024)

static int gw_callback(struct lws *wsi, enum lws_callback_reasons reason,
                       void *user, void *in, size_t len);

static const struct lws_protocols gw_protocols[] = {
    /* protocols[0] serves plain HTTP and SSE and is the WS default. */
    { "flagcast.json", gw_callback, sizeof(gw_conn_t), GW_WS_RX_CHUNK, PROTO_JSON, NULL, GW_TX_PACKET },
    { "flagcast.msgpack", gw_callback, sizeof(gw_conn_t), GW_WS_RX_CHUNK, PROTO_MSGPACK, NULL, GW_TX_PACKET },
    { "flagcast-raw", gw_callback, 0, 0, PROTO_RAW, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* The HTTP routes (docs/API.md): streams, evaluation, health, readiness,
 * metrics. */
static int http_route(gw_worker_t *w, gw_conn_t *c, struct lws *wsi, const char *path)
{
    gw_t *g = w->g;

    /* a request pipelined behind an evaluation not answered yet: answer
     * that one and close; the client sends this one again */
    if (eval_pending(c))
        return eval_writable(c, wsi, true);
    if (lws_hdr_total_length(wsi, WSI_TOKEN_OPTIONS_URI) > 0)
        return http_preflight(wsi);
    /* POST (and any other method there) is the evaluation paths' own */
    if (eval_is_path(path))
        return eval_start(w, c, wsi, path);
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0) {
        /* a body may follow that we will not read: answer, then close */
        http_reply_json_error(wsi, 405, "method not allowed");
        return -1;
    }

    if (http_is_sse_path(path))
        return sse_start(w, c, wsi);
    if (strcmp(path, "/healthz") == 0)
        return http_reply(wsi, 200, "application/json", "{\"status\":\"ok\"}\n", 16);
    if (strcmp(path, "/readyz") == 0) {
        if (atomic_load(&g->ready) && !atomic_load(&g->draining) && !atomic_load(&g->stopping))
            return http_reply(wsi, 200, "application/json", "{\"status\":\"ready\"}\n", 19);
        return http_reply(wsi, 503, "application/json", "{\"status\":\"not ready\"}\n", 23);
    }
    if (strcmp(path, "/api/v1/realtime/sse/health") == 0 || strcmp(path, "/realtime/sse/health") == 0) {
        /* Flagent's shape; unhealthy (503, with the reason) while new
         * streams would be refused or get no live events. */
        const char *why = admit_health(atomic_load(&g->ready), atomic_load(&g->mirror_ever),
                                       atomic_load(&g->draining) || atomic_load(&g->stopping));
        char body[200];
        int n = snprintf(body, sizeof(body),
                         "{\"status\":\"%s\",%s%s%s\"activeConnections\":%lld,\"protocol\":\"SSE\"}\n",
                         why ? "unhealthy" : "healthy", why ? "\"reason\":\"" : "", why ? why : "",
                         why ? "\"," : "", (long long)metric_get(g->m.conns_sse));
        return http_reply(wsi, why ? 503 : 200, "application/json", body, (size_t)n);
    }
    if (strcmp(path, "/metrics") == 0) {
        buf_t b;
        int rc;

        buf_init(&b);
        if (metrics_render(&b) != 0 || b.err) {
            buf_free(&b);
            return http_reply_json_error(wsi, 500, "metrics rendering failed");
        }
        rc = http_reply(wsi, 200, "text/plain; version=0.0.4", b.data, b.len);
        buf_free(&b);
        return rc;
    }
    if (http_is_ws_path(path))
        return http_reply_json_error(wsi, 426, "WebSocket upgrade required");
    return http_reply_json_error(wsi, 404, "not found");
}

static int gw_callback(struct lws *wsi, enum lws_callback_reasons reason,
                       void *user, void *in, size_t len)
{
    gw_conn_t *c = user;
    const gw_transport_t *t;
    gw_worker_t *w;

    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED: {
        const struct lws_protocols *pr = lws_get_protocol(wsi);
        /* delivered once per protocol: act on the first only */
        if (pr && pr->id != PROTO_JSON)
            return 0;
        w = lws_context_user(lws_get_context(wsi));
        if (w)
            worker_inbox(w);
        return 0;
    }

    case LWS_CALLBACK_RAW_RX_FILE:
        w = wsi_worker(wsi);
        if (wsi == w->listen_wsi)
            accept_ready(w);
        else if (wsi == w->ep_wsi)
            reap_ready(w);
        else if (wsi == w->hg_wsi)
            gate_ready(w);
        return 0;

    case LWS_CALLBACK_RAW_CLOSE_FILE:
        w = wsi_worker(wsi);
        if (wsi == w->listen_wsi)
            w->listen_wsi = NULL;
        if (wsi == w->ep_wsi)
            w->ep_wsi = NULL;
        if (wsi == w->hg_wsi)
            w->hg_wsi = NULL;
        return 0;

    case LWS_CALLBACK_HTTP: {
        char path[256];
        size_t n = len < sizeof(path) - 1 ? len : sizeof(path) - 1;

        w = wsi_worker(wsi);
        memcpy(path, in ? in : "", in ? n : 0);
        path[in ? n : 0] = '\0';
        return http_route(w, c, wsi, path) ? -1 : 0;
    }

    case LWS_CALLBACK_HTTP_BODY:
        return eval_body(c, wsi, in, len) ? -1 : 0;

    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return eval_complete(c, wsi) ? -1 : 0;

    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return ws_confirm_upgrade(wsi);

    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return ws_filter(wsi_worker(wsi), wsi);

    case LWS_CALLBACK_ESTABLISHED:
        return ws_establish(wsi_worker(wsi), c, wsi);

    case LWS_CALLBACK_RECEIVE:
        if (c == NULL || c->kind != CK_WS || c->closing)
            return 0;
        if (ws_receive(c, wsi, in, len) != 0) {
            static const char bye[] = "too many bad messages";
            lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, (unsigned char *)bye, sizeof(bye) - 1);
            return -1;
        }
        return 0;

    case LWS_CALLBACK_RECEIVE_PONG:
        if (c && c->kind == CK_WS)
            ws_pong(c);
        return 0;

    /* writable: SSE streams (HTTP) and WS connections alike */
    case LWS_CALLBACK_HTTP_WRITEABLE:
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (reason == LWS_CALLBACK_HTTP_WRITEABLE && eval_pending(c))
            return eval_writable(c, wsi, false) ? -1 : 0;
        if (c == NULL || (t = conn_transport(c)) == NULL)
            return 0;
        return t->writable(c);

    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_CLOSED:
        if (c) {
            eval_release(c);
            conn_release(c);
        }
        return 0;

    default:
        return 0;
    }
}

int gw_lws_start(gw_t *g)
{
    conn_transports[CK_SSE] = &gw_sse_transport;
    conn_transports[CK_WS] = &gw_ws_transport;
    if (sse_init() != 0)
        return -1;
    return workers_start(g, gw_protocols);
}
