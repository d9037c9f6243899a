/*
 * redis — the gateway's Redis side, on its own thread: a libevent loop
 * with two self-reconnecting connections (common/rconn.h).
 *
 *   - "sub": SUBSCRIBE P:ch:<channel> for `flags` (always: the flags mirror
 *     is kept current from its events) and for every other logical channel
 *     that at least one local connection needs. The service threads report
 *     each channel's first and last local subscriber (gw_redis_want); this
 *     thread keeps a count per channel over all service threads and
 *     SUBSCRIBEs on 0→1, UNSUBSCRIBEs on 1→0 (hiredis 0.14.1 keeps a callback
 *     alive while a SUBSCRIBE is pending, so a quick off/on is safe). After a
 *     reconnect every channel with a count is subscribed again.
 *   - "cmd": reads: the flags mirror (flags.c) and history (history.c,
 *     replay.c).
 *
 * Each message is decoded once (ev_decode); a malformed one is counted and
 * dropped with a log line. The event is rendered once per output format
 * into a shared, refcounted outq_ev_t and handed to history.c, which
 * delivers each channel's events in offset order (filling gaps from
 * history) to its sink, flags.c: a flag event then updates the mirror
 * (under the write lock) and a reference goes to every service thread
 * (bus.dispatch). So a live message runs
 *     redis.c (message) → history.c (order) → flags.c (mirror) → bus.dispatch
 * and no file of this folder calls back into one before it.
 *
 * The service threads' requests (wants, resumes) come through a locked
 * queue and a libevent user event; resumes go to replay.c.
 *
 * This file's state (the base, the connections, the channel table, the
 * request queue, the process context) is one struct, R: the entry points
 * the bus calls (gw_redis_want, gw_redis_resume) take no context.
 */
#include "gateway/gw.h"
#include "common/log.h"
#include "gateway/redis/chan.h"
#include "gateway/redis/flags.h"
#include "gateway/redis/history.h"
#include "gateway/redis/redis.h"
#include "gateway/redis/replay.h"
#include "proto/names.h"

#include <libwebsockets.h>   /* LWS_PRE: the headroom of rendered events */
#include <event2/event.h>
#include <event2/thread.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RG_LOG_EVERY 100      /* malformed messages: log the first, then every Nth */

typedef struct rg_req {
    struct rg_req *next;
    bool           want;
    char           name[];
} rg_req_t;

/* A resume request on its way to the Redis thread (replay.c answers it). */
typedef struct rg_resume {
    struct rg_resume *next;
    gw_resume_t      *r;
} rg_resume_t;

/* The Redis thread's context. */
static struct {
    gw_t              *g;                /* the process context, from gw_redis_start */
    struct event_base *base;
    struct event      *wake_ev;
    pthread_t          tid;
    bool               started;
    rconn_t           *sub_rc, *cmd_rc;
    chan_table_t       chans;
    char               flags_chan[NAME_CHANNEL_MAX + 80];
    size_t             prefix_len;       /* strlen("P:ch:") */
    bool               sub_seen_once;
    unsigned long      malformed_seen;
    /* the service threads' requests */
    pthread_mutex_t    req_mu;
    rg_req_t          *req_head, **req_tail;
    rg_resume_t       *res_head, **res_tail;
    bool               req_closed;       /* set by gw_redis_stop */
} R = {
    .req_mu = PTHREAD_MUTEX_INITIALIZER,
    .req_tail = &R.req_head,
    .res_tail = &R.res_head,
};

/* The last local subscriber of c went: out of the table; its history part
 * answers what waits on it; freed now or by its last history callback. */
static void chan_forget(gw_chan_t *dead)
{
    chan_unlink(&R.chans, dead);
    hist_forget(dead);
}

/* ==== messages ==== */

/* Flag events belong on "flags", or on user:/role: inboxes when the
 * publisher addressed a change to them (`to`; docs/API.md) — those reach
 * the inbox's connections but never the mirror. Every other event type
 * belongs on any channel but "flags". */
static bool type_fits_channel(const ev_t *ev)
{
    chan_kind_t k = name_channel_kind(ev->channel, strlen(ev->channel), NULL);

    if (ev_type_is_flag(ev->type))
        return k == CHAN_FLAGS || k == CHAN_USER || k == CHAN_ROLE;
    return k != CHAN_FLAGS;
}

static void handle_message(const char *pchan, size_t pchan_len, const char *p, size_t n)
{
    ev_t ev;
    char err[200];
    outq_ev_t *oev;
    const char *ch;

    metric_inc(R.g->m.events_received);
    ev_init(&ev);
    if (ev_decode(p, n, &ev, err, sizeof(err)) != 0 ||
        pchan_len <= R.prefix_len || strlen(ev.channel) != pchan_len - R.prefix_len ||
        memcmp(ev.channel, pchan + R.prefix_len, pchan_len - R.prefix_len) != 0 ||
        !type_fits_channel(&ev)) {
        char q[240];
        if (err[0] == '\0' || ev.channel)
            snprintf(err, sizeof(err), "header channel does not match the pub/sub channel or type");
        metric_inc(R.g->m.events_malformed);
        if (R.malformed_seen++ % RG_LOG_EVERY == 0)
            log_warn("malformed message dropped", "channel=%.*s bytes=%zu err=%s seen=%lu",
                     (int)(pchan_len > 200 ? 200 : pchan_len), pchan, n,
                     log_q(q, sizeof(q), err), R.malformed_seen);
        ev_free(&ev);
        return;
    }
    oev = outq_ev_new(&ev, LWS_PRE);
    if (oev == NULL) {
        metric_inc(R.g->m.drops);
        return;
    }
    /* Render every format here, once, so service threads never render. */
    if (outq_ev_prepare(oev, (1u << OUTQ_FMT_SSE) | (1u << OUTQ_FMT_JSON) |
                             (1u << OUTQ_FMT_MSGPACK)) != 0)
        log_warn("rendering an event failed", NULL);
    /* history.c delivers it in offset order, filling gaps (takes the ref);
     * the one lookup of the message: `flags` keeps its position from its
     * first event, other channels once their SUBSCRIBE is confirmed */
    ch = outq_ev_event(oev)->channel;
    hist_live(chan_get(&R.chans, ch, strcmp(ch, "flags") == 0), oev);
}

static void on_sub_reply(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *reply = r, *kind, *ch;

    (void)ac;
    (void)priv;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3)
        return;
    kind = reply->element[0];
    ch = reply->element[1];
    if (kind->type != REDIS_REPLY_STRING || ch->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(kind->str, "message") == 0) {
        redisReply *payload = reply->element[2];
        if (payload->type == REDIS_REPLY_STRING)
            handle_message(ch->str, ch->len, payload->str, payload->len);
    } else if (strcmp(kind->str, "subscribe") == 0) {
        if (ch->len > R.prefix_len) {
            gw_chan_t *c = chan_get(&R.chans, ch->str + R.prefix_len, true);
            if (c)
                hist_subscribed(c);
        }
        if (strcmp(ch->str, R.flags_chan) == 0) {
            flags_subscribed();
        }
    }
}

/* ==== subscriptions ==== */

static void send_sub(gw_chan_t *c, bool on)
{
    if (!rconn_ready(R.sub_rc))
        return;
    if (rconn_command(R.sub_rc, on_sub_reply, NULL, on ? "SUBSCRIBE %s:ch:%s" : "UNSUBSCRIBE %s:ch:%s",
                      R.g->cfg.prefix, c->name) == 0)
        c->subscribed = on;
}

/* ==== resume from history ==== */

int gw_redis_resume(gw_resume_t *r)
{
    rg_resume_t *rr = calloc(1, sizeof(*rr));

    if (rr == NULL)
        return -1;
    rr->r = r;
    pthread_mutex_lock(&R.req_mu);
    if (R.req_closed) {
        pthread_mutex_unlock(&R.req_mu);
        free(rr);
        return -1;
    }
    *R.res_tail = rr;
    R.res_tail = &rr->next;
    event_active(R.wake_ev, EV_READ, 0);
    pthread_mutex_unlock(&R.req_mu);
    return 0;
}

static void apply_requests(evutil_socket_t fd, short what, void *arg)
{
    rg_req_t *r, *next;
    rg_resume_t *rr, *rnext;

    (void)fd;
    (void)what;
    (void)arg;
    pthread_mutex_lock(&R.req_mu);
    r = R.req_head;
    R.req_head = NULL;
    R.req_tail = &R.req_head;
    rr = R.res_head;
    R.res_head = NULL;
    R.res_tail = &R.res_head;
    pthread_mutex_unlock(&R.req_mu);

    /* wants first: a resume's channel is then known (and being subscribed) */
    for (; r; r = next) {
        gw_chan_t *c;
        next = r->next;
        c = chan_get(&R.chans, r->name, r->want);
        /* a record held only by its history part has no count to drop */
        if (c && (r->want || c->count > 0)) {
            c->count += r->want ? 1 : -1;
            if (strcmp(c->name, "flags") == 0) {
                /* always subscribed */
            } else if (c->count > 0 && !c->subscribed) {
                send_sub(c, true);
            } else if (c->count <= 0) {
                if (c->subscribed)
                    send_sub(c, false);
                chan_forget(c);
            }
        }
        free(r);
    }

    for (; rr; rr = rnext) {
        rnext = rr->next;
        replay_resume(rr->r);
        free(rr);
    }
}

void gw_redis_want(const char *ch, bool want)
{
    size_t n = strlen(ch);
    rg_req_t *r = malloc(sizeof(*r) + n + 1);

    if (r == NULL)
        return;
    r->next = NULL;
    r->want = want;
    memcpy(r->name, ch, n + 1);
    pthread_mutex_lock(&R.req_mu);
    if (R.req_closed) {
        pthread_mutex_unlock(&R.req_mu);
        free(r);
        return;
    }
    *R.req_tail = r;
    R.req_tail = &r->next;
    event_active(R.wake_ev, EV_READ, 0);
    pthread_mutex_unlock(&R.req_mu);
}

/* ==== connection states ==== */

static void sub_lost(gw_chan_t *c)
{
    c->subscribed = false;
    hist_sub_lost(c);
}

static void resubscribe(gw_chan_t *c)
{
    if (c->count > 0 && strcmp(c->name, "flags") != 0)
        send_sub(c, true);
}

static void on_sub_state(rconn_t *rc, int connected, void *arg)
{
    (void)arg;
    if (!connected) {
        flags_sub_lost();
        chan_each(&R.chans, sub_lost);
        return;
    }
    if (R.sub_seen_once)
        metric_inc(R.g->m.redis_reconnects);
    R.sub_seen_once = true;
    log_info("redis subscriber connected", "reconnects=%lu", rconn_reconnects(rc));
    /* flags first: readiness and the mirror depend on it */
    rconn_command(rc, on_sub_reply, NULL, "SUBSCRIBE %s", R.flags_chan);
    chan_each(&R.chans, resubscribe);
}

static void on_cmd_state(rconn_t *rc, int connected, void *arg)
{
    (void)rc;
    (void)arg;
    flags_cmd_state(connected);
    if (connected)
        chan_each(&R.chans, hist_cmd_up);
}

static void *redis_main(void *arg)
{
    (void)arg;
    event_base_loop(R.base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

int gw_redis_start(gw_t *g)
{
    hist_sink_t sink = { .deliver = flags_deliver, .flags_resync = flags_resync };

    R.g = g;
    evthread_use_pthreads();
    g->mirror = mirror_new();
    R.base = event_base_new();
    if (g->mirror == NULL || R.base == NULL)
        return -1;
    if (evthread_make_base_notifiable(R.base) != 0)
        return -1;
    snprintf(R.flags_chan, sizeof(R.flags_chan), "%s:ch:flags", g->cfg.prefix);
    R.prefix_len = strlen(g->cfg.prefix) + 4;
    R.wake_ev = event_new(R.base, -1, 0, apply_requests, NULL);
    R.sub_rc = rconn_new(R.base, &g->cfg.rurl, "subscriber", on_sub_state, NULL);
    R.cmd_rc = rconn_new(R.base, &g->cfg.rurl, "reader", on_cmd_state, NULL);
    if (R.wake_ev == NULL || R.sub_rc == NULL || R.cmd_rc == NULL)
        return -1;
    rconn_set_timeouts(R.sub_rc, (unsigned)g->cfg.redis_timeout_ms, (unsigned)g->cfg.redis_ping_ms);
    rconn_set_ping_prefix(R.sub_rc, g->cfg.prefix);
    rconn_set_timeouts(R.cmd_rc, (unsigned)g->cfg.redis_timeout_ms, (unsigned)g->cfg.redis_ping_ms);
    flags_init(g, R.sub_rc, R.cmd_rc, &R.chans);
    replay_init(g, R.cmd_rc, &R.chans);
    hist_init(g, R.cmd_rc, &sink);
    if (rconn_start(R.sub_rc) != 0 || rconn_start(R.cmd_rc) != 0)
        return -1;
    if (pthread_create(&R.tid, NULL, redis_main, NULL) != 0)
        return -1;
    R.started = true;
    return 0;
}

void gw_redis_stop(void)
{
    gw_chan_t *c;

    pthread_mutex_lock(&R.req_mu);
    R.req_closed = true;
    pthread_mutex_unlock(&R.req_mu);
    if (R.started) {
        event_base_loopbreak(R.base);
        pthread_join(R.tid, NULL);
        R.started = false;
    }
    if (R.sub_rc)
        rconn_free(R.sub_rc);
    if (R.cmd_rc)
        rconn_free(R.cmd_rc);
    R.sub_rc = R.cmd_rc = NULL;
    hist_shutdown();
    replay_shutdown();
    if (R.wake_ev)
        event_free(R.wake_ev);
    R.wake_ev = NULL;
    while (R.req_head) {
        rg_req_t *r = R.req_head;
        R.req_head = r->next;
        free(r);
    }
    while (R.res_head) {
        rg_resume_t *rr = R.res_head;
        R.res_head = rr->next;
        gw_resume_free(rr->r);
        free(rr);
    }
    while ((c = chan_pop(&R.chans)) != NULL) {
        replay_clear(c);
        chan_free(c);
    }
    flags_shutdown();
    if (R.base)
        event_base_free(R.base);
    R.base = NULL;
}
