/*
 * ws_client — what a WebSocket client sends (ws_client.h): subscribe,
 * unsubscribe, ping, auth, evaluate; the replies, errors and the close they lead to.
 */
#include "gateway/lws/ws_client.h"
#include "gateway/lws/eval.h"
#include "gateway/lws/replay.h"
#include "gateway/evalapi.h"
#include "gateway/clock.h"
#include "gateway/ident.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ws_send_error(gw_conn_t *c, const char *code, const char *message)
{
    buf_t b;

    metric_inc(c->w->g->m.ws_errors);
    conn_ctl_buf(&b);
    wsmsg_render_error(conn_wsmsg_fmt(c), code, message, &b);
    conn_send_ctl(c, &b);
}

/* Replies "subscribed" with the effective subscription f and, after a
 * subscribe, a snapshot of the flags it selects (unless `since` covers
 * flags). The reply waits until every channel the request starts (not in
 * old; NULL: none) is subscribed on Redis and its position known, so that
 * everything published after the client saw `subscribed` reaches it; the
 * `since` positions are replayed after it (then live, without a newer
 * snapshot before the replay). */
static void ws_send_state(gw_conn_t *c, const filter_t *f, const filter_t *old, bool snapshot,
                          const wsmsg_since_t *since, size_t nsince)
{
    gw_resume_t *r;
    buf_t b;
    size_t i;

    conn_ctl_buf(&b);
    wsmsg_render_subscribed(conn_wsmsg_fmt(c), f, &b);
    if ((r = replay_ack_request(&b)) == NULL)
        return;
    for (i = 0; c->sub && i < nsince; i++)
        resume_add(r, f, since[i].channel, strlen(since[i].channel), since[i].epoch,
                   strlen(since[i].epoch), since[i].offset);
    r->snapshot = snapshot && f->flags != FILTER_FLAGS_NONE && !resume_has(r, "flags");
    if (c->sub)
        resume_add_starts(r, f, old);
    replay_start(c->w, c, r);
}

/* Applies a subscribe/unsubscribe request. @return 0, or -1 with *err. */
int ws_apply(gw_conn_t *c, const filter_req_t *req, bool subscribe,
                    const wsmsg_since_t *since, size_t nsince, const char **err, const char **code)
{
    static _Thread_local char ebuf[400];   /* a refusal naming the channel */
    gw_worker_t *w = c->w;
    access_error_t ae;
    filter_t f, old;

    *code = "bad_message";
    if (subscribe && c->auth_wait) {
        *code = "unauthorized";
        *err = "authentication required: send an auth message first";
        return -1;
    }
    filter_init(&f);
    filter_init(&old);
    if (c->sub && (filter_copy(&f, subidx_filter(c->sub)) != 0 ||
                   filter_copy(&old, subidx_filter(c->sub)) != 0)) {
        filter_free(&f);
        filter_free(&old);
        *err = "out of memory";
        return -1;
    }
    if (subscribe) {
        if (filter_subscribe(&f, req, FILTER_MAX_ITEMS, err) != 0) {
            filter_free(&f);
            filter_free(&old);
            return -1;
        }
        if (conn_check_channels(c->id, &f, &ae, ebuf, sizeof(ebuf)) != 0) {
            *code = ae.code;
            *err = ebuf;
            filter_free(&f);
            filter_free(&old);
            return -1;
        }
    } else {
        filter_unsubscribe(&f, req);
    }
    if (filter_is_empty(&f)) {
        subidx_remove(w->idx, c->sub);
        c->sub = NULL;
    } else if (c->sub) {
        if (subidx_update(w->idx, c->sub, &f) != 0) {
            filter_free(&f);
            filter_free(&old);
            *err = "out of memory";
            return -1;
        }
    } else {
        c->sub = subidx_add(w->idx, c, &f);
        if (c->sub == NULL) {
            filter_free(&f);
            filter_free(&old);
            *err = "out of memory";
            return -1;
        }
    }
    resume_starts_prune(c->starts, c->sub ? &f : NULL);
    ws_send_state(c, &f, &old, subscribe, since, nsince);
    filter_free(&f);
    filter_free(&old);
    return 0;
}

/* Sends `error` {code, message}, stops delivering to c and closes it with
 * close_code once the error is written (SERVER_WRITEABLE), or from the tick
 * if the client does not read within 2 s. */
void ws_close_with(gw_conn_t *c, const char *code, const char *message, uint16_t close_code)
{
    if (c->closing || c->close_code)
        return;
    if (c->sub) {
        subidx_remove(c->w->idx, c->sub);
        c->sub = NULL;
    }
    c->auth_wait = 0;
    c->close_code = close_code;
    c->auth_deadline_ns = gw_now_ns() + 2000000000ull;
    ws_send_error(c, code, message);
    if (!c->closing)
        lws_callback_on_writable(c->wsi);
}

/* The `auth` message: a token that does not verify closes the connection
 * (4401); a valid one gives the connection its identity (inboxes included)
 * and is answered with `subscribed`. A later `auth` may refresh the token of
 * the same user (a new expiry, roles, channels); another user is refused. */
static void ws_auth(gw_conn_t *c, char *tok)
{
    token_identity_t *id = NULL;
    access_error_t ae;
    const char *err = NULL;
    size_t len = tok ? strlen(tok) : 0;
    int rc;

    if (!access_uses_tokens(gw_access()) || tok == NULL) {
        if (tok)
            explicit_bzero(tok, len);
        return;   /* FLAGCAST_AUTH=off: tokens are not looked at */
    }
    rc = gw_ident_admit(tok, len, &id, &ae);
    explicit_bzero(tok, len);
    if (rc != 0) {
        ws_close_with(c, ae.code, ae.message, GW_CLOSE_UNAUTHORIZED);
        return;
    }
    if (c->id && strcmp(c->id->user, id->user) != 0) {
        token_identity_free(id);
        ws_send_error(c, "forbidden", "a connection cannot change its user");
        c->errors++;
        return;
    }
    {
        /* the inboxes the identity adds start like subscribed channels */
        filter_t none, before;
        filter_init(&none);
        filter_init(&before);
        if (c->sub && filter_copy(&before, subidx_filter(c->sub)) != 0) {
            token_identity_free(id);
            ws_send_error(c, "internal", "out of memory");
            return;
        }
        if (conn_set_identity(c, id, &err) != 0) {
            filter_free(&before);
            ws_send_error(c, "internal", err);
            return;
        }
        ws_send_state(c, c->sub ? subidx_filter(c->sub) : &none, &before, false, NULL, 0);
        filter_free(&before);
    }
}

/* The `evaluate` message: its batch body (wsmsg) goes through evalapi as
 * POST /api/v1/evaluation/batch does, under the mirror's read lock, with
 * the connection's identity (no evaluator role: its own subject); the
 * answer's evaluationResults become `evaluation`.results. */
static void ws_evaluate(gw_conn_t *c, const wsmsg_t *m)
{
    static const char pre[] = "{\"evaluationResults\":", post[] = "}\n";
    gw_t *g = c->w->g;
    const char *role = g->cfg.evaluator_role;
    evalapi_req_t req;
    evalapi_reply_t out;
    buf_t b;

    if (c->auth_wait) {
        ws_send_error(c, "unauthorized", "authentication required: send an auth message first");
        c->errors++;
        return;
    }
    if (!atomic_load(&g->mirror_ever)) {
        ws_send_error(c, "unavailable", "flags not loaded yet");
        return;
    }
    evalapi_reply_init(&out);
    if (evalapi_parse(EVALAPI_FLAGENT_BATCH, NULL, 0, m->eval_body, m->eval_body_len, &req,
                      &out) != 0) {
        /* wsmsg checked the fields: only memory is left to fail here */
        ws_send_error(c, "internal", "evaluation request refused");
        evalapi_reply_free(&out);
        return;
    }
    evalapi_env_t env = {
        .now_ms = eval_now_ms(),
        .seed = eval_seed(),
        .who = { .id = c->id,
                 .evaluator = c->id && role && role[0] && token_identity_has_role(c->id, role) },
    };
    pthread_rwlock_rdlock(&g->mirror_lock);
    evalapi_run(g->mirror, &req, &env, &out);
    pthread_rwlock_unlock(&g->mirror_lock);
    evalapi_req_free(&req);
    size_t n = out.body.len;
    if (out.status != 200 || out.body.err || n < sizeof(pre) - 1 + sizeof(post) - 1 ||
        memcmp(out.body.data, pre, sizeof(pre) - 1) != 0 ||
        memcmp(out.body.data + n - (sizeof(post) - 1), post, sizeof(post) - 1) != 0) {
        log_warn("evaluation failed", "conn=%u status=%u", c->serial, out.status);
        ws_send_error(c, "internal", "evaluation failed");
        evalapi_reply_free(&out);
        return;
    }
    conn_ctl_buf(&b);
    if (wsmsg_render_evaluation(conn_wsmsg_fmt(c), m, out.body.data + sizeof(pre) - 1,
                                n - (sizeof(pre) - 1) - (sizeof(post) - 1), &b) != 0) {
        buf_free(&b);
        ws_send_error(c, "internal", "evaluation could not be encoded");
    } else {
        conn_send_ctl(c, &b);
    }
    evalapi_reply_free(&out);
}

/* Handles one complete client message. @return 0, or -1 to close. */
static int ws_message(gw_conn_t *c, const char *p, size_t n, bool binary)
{
    wsmsg_t m;
    wsmsg_error_t e;
    const char *err = NULL, *code = NULL;
    int rc = 0;

    if (c->close_code)
        return 0;   /* being closed: nothing more is served */
    wsmsg_init(&m);
    if (wsmsg_parse(binary ? WSMSG_FMT_MSGPACK : WSMSG_FMT_JSON, p, n,
                    (size_t)c->w->g->cfg.ws_max_frame, 0, &m, &e) != 0) {
        ws_send_error(c, wsmsg_err_code(e.code), e.message);
        c->errors++;
        goto out;
    }
    switch (m.type) {
    case WSMSG_SUBSCRIBE:
    case WSMSG_UNSUBSCRIBE:
        if (ws_apply(c, &m.req, m.type == WSMSG_SUBSCRIBE, m.since,
                     m.type == WSMSG_SUBSCRIBE ? m.nsince : 0, &err, &code) != 0) {
            ws_send_error(c, code, err ? err : "subscription failed");
            c->errors++;
        }
        break;
    case WSMSG_PING: {
        buf_t b;
        if (outq_count(&c->q) > GW_CTL_QUEUE_MAX)
            break;   /* behind: the pong would only pile up */
        conn_ctl_buf(&b);
        wsmsg_render_pong(conn_wsmsg_fmt(c), &m, &b);
        conn_send_ctl(c, &b);
        break;
    }
    case WSMSG_AUTH:
        ws_auth(c, m.token);
        break;
    case WSMSG_EVALUATE:
        ws_evaluate(c, &m);
        break;
    }
out:
    if (c->errors >= c->w->g->cfg.ws_max_errors) {
        log_info("closing abusive WebSocket client", "conn=%u errors=%u", c->serial, c->errors);
        rc = -1;
    }
    wsmsg_free(&m);
    return rc;
}

/* Collects fragments of one message, bounded by FLAGCAST_WS_MAX_FRAME.
 * @return 0, or -1 to close. */
int ws_receive(gw_conn_t *c, struct lws *wsi, const char *in, size_t len)
{
    bool first = lws_is_first_fragment(wsi), final = lws_is_final_fragment(wsi);
    int rc = 0;

    c->last_rx_ns = gw_now_ns();
    c->ping_out = 0;
    if (first) {
        c->rx_len = 0;
        c->rx_too_big = 0;
    }
    if (!c->rx_too_big) {
        if (c->rx_len + len > (size_t)c->w->g->cfg.ws_max_frame) {
            c->rx_too_big = 1;
            free(c->rx);
            c->rx = NULL;
            c->rx_len = 0;
        } else if (first && final) {
            return ws_message(c, in, len, lws_frame_is_binary(wsi));
        } else {
            char *nb = realloc(c->rx, c->rx_len + len + 1);
            if (nb == NULL)
                return -1;
            c->rx = nb;
            memcpy(c->rx + c->rx_len, in, len);
            c->rx_len += len;
        }
    }
    if (!final)
        return 0;
    if (c->rx_too_big) {
        char msg[96];
        snprintf(msg, sizeof(msg), "message over %ld bytes", c->w->g->cfg.ws_max_frame);
        ws_send_error(c, "too_large", msg);
        c->errors++;
        c->rx_too_big = 0;
        if (c->errors >= c->w->g->cfg.ws_max_errors)
            rc = -1;
    } else {
        rc = ws_message(c, c->rx, c->rx_len, lws_frame_is_binary(wsi));
    }
    free(c->rx);
    c->rx = NULL;
    c->rx_len = 0;
    return rc;
}
