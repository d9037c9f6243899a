/*
 * redis_glue — the gateway's Redis side, on its own thread: a libevent loop
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
 *   - "cmd": reads. `HGETALL P:flags` fills the mirror once `flags` is
 *     subscribed (subscribe first, so no change falls between the two; an
 *     event seen twice is ignored by version).
 *
 * Each message is decoded once (ev_decode); a malformed one is counted and
 * dropped with a log line. The event is rendered once per output format
 * into a shared, refcounted outq_ev_t and handed to hist_glue.c, which
 * delivers each channel's events in offset order (filling gaps from history,
 * see hist.h): a flag event then updates the mirror (under the write lock)
 * and a reference goes to every service thread (gw_redis_deliver).
 *
 * One hash table holds a record per channel (gw_chan_t, hist.h): the
 * subscription count here and hist_glue.c's history state share it, so a
 * message costs one lookup.
 *
 * Readiness (/readyz): the sub connection is up, `flags` is subscribed and
 * the mirror is loaded.
 */
#include "gateway/gw.h"
#include "common/log.h"
#include "gateway/redis/history.h"
#include "gateway/redis/redis.h"
#include "proto/names.h"

#include <libwebsockets.h>   /* LWS_PRE: the headroom of rendered events */
#include <event2/event.h>
#include <event2/thread.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RG_BUCKETS 4096
#define RG_LOG_EVERY 100      /* malformed messages: log the first, then every Nth */

static gw_t *G;   /* the process context, from gw_redis_start */

typedef struct rg_req {
    struct rg_req *next;
    bool           want;
    char           name[];
} rg_req_t;

static struct event_base *rbase;
static struct event      *wake_ev;
static pthread_t          rtid;
static bool               rthread_started;
static rconn_t           *sub_rc, *cmd_rc;
static gw_chan_t         *chans[RG_BUCKETS];
static char               flags_chan[NAME_CHANNEL_MAX + 80];
static size_t             prefix_len;        /* strlen("P:ch:") */

/* A resume request on its way to the Redis thread (hist_glue.c answers it). */
typedef struct rg_resume {
    struct rg_resume *next;
    gw_resume_t      *r;
} rg_resume_t;

static pthread_mutex_t    req_mu = PTHREAD_MUTEX_INITIALIZER;
static rg_req_t          *req_head, **req_tail = &req_head;
static rg_resume_t       *res_head, **res_tail = &res_head;
static bool               req_closed;        /* set by gw_redis_stop */

static bool flags_subscribed, mirror_loaded, load_pending, sub_seen_once;
/* A resync of `flags` waiting for a fresh mirror (hist.h) */
static struct {
    bool        pending, has_epoch;
    const char *reason;
    char        epoch[EV_MAX_EPOCH + 1];
    uint64_t    pos;
    /* flag events that came while the mirror reloads: applied to the fresh
     * mirror before the snapshot is posted, never written on their own
     * (the snapshot, at the position after them, holds them) */
    outq_ev_t **held;
    size_t      nheld, capheld;
} flags_resync;
static unsigned long malformed_seen;

/* ==== channel table ====
 *
 * The one table of the Redis thread's per-channel records (gw_chan_t in
 * hist.h): this file's subscription count and hist_glue.c's history state
 * share each record and this lookup. */

static unsigned long hash_str(const char *s)
{
    unsigned long h = 5381;
    while (*s)
        h = h * 33 + (unsigned char)*s++;
    return h;
}

gw_chan_t *gw_chan_get(const char *name, bool create)
{
    gw_chan_t **pp = &chans[hash_str(name) % RG_BUCKETS], *c;
    size_t n;

    for (c = *pp; c; c = c->next)
        if (strcmp(c->name, name) == 0)
            return c;
    if (!create)
        return NULL;
    n = strlen(name);
    c = calloc(1, sizeof(*c) + n + 1);
    if (c == NULL)
        return NULL;
    memcpy(c->name, name, n + 1);
    c->next = *pp;
    *pp = c;
    return c;
}

void gw_chan_free(gw_chan_t *c)
{
    hist_clear(c);
    free(c);
}

/* The last local subscriber of c went: out of the table; its history part
 * answers what waits on it; freed now or by its last history callback. */
static void chan_forget(gw_chan_t *dead)
{
    gw_chan_t **pp = &chans[hash_str(dead->name) % RG_BUCKETS];

    for (; *pp; pp = &(*pp)->next)
        if (*pp == dead) {
            *pp = dead->next;
            break;
        }
    dead->next = NULL;
    dead->dead = true;
    hist_forget(dead);
    if (dead->refs == 0)
        gw_chan_free(dead);
}

/* Calls fn for every record in the table. */
static void chan_each(void (*fn)(gw_chan_t *))
{
    size_t i;
    gw_chan_t *c;

    for (i = 0; i < RG_BUCKETS; i++)
        for (c = chans[i]; c; c = c->next)
            fn(c);
}

/* ==== readiness ==== */

static void update_ready(void)
{
    bool r = rconn_ready(sub_rc) && flags_subscribed && mirror_loaded;

    if (r != atomic_load(&G->ready)) {
        atomic_store(&G->ready, r);
        log_info(r ? "gateway ready" : "gateway not ready", NULL);
    }
}

/* ==== mirror load ==== */

static void on_hgetall(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *reply = r;
    const char **vals = NULL;
    size_t *lens = NULL, n = 0, i, nbad = 0;
    char err[160] = "";

    (void)ac;
    (void)priv;
    load_pending = false;
    if (reply == NULL)
        return;   /* connection lost; retried on reconnect */
    if (reply->type != REDIS_REPLY_ARRAY) {
        log_error("loading flags failed", "err=%s",
                  reply->type == REDIS_REPLY_ERROR ? reply->str : "\"unexpected reply\"");
        return;
    }
    n = reply->elements / 2;
    vals = calloc(n ? n : 1, sizeof(*vals));
    lens = calloc(n ? n : 1, sizeof(*lens));
    if (vals == NULL || lens == NULL) {
        free(vals);
        free(lens);
        return;
    }
    for (i = 0; i < n; i++) {
        redisReply *v = reply->element[2 * i + 1];
        vals[i] = v->type == REDIS_REPLY_STRING ? v->str : "";
        lens[i] = v->type == REDIS_REPLY_STRING ? v->len : 0;
    }
    pthread_rwlock_wrlock(&G->mirror_lock);
    if (mirror_load(G->mirror, vals, lens, n, &nbad, err, sizeof(err)) == 0) {
        mirror_loaded = true;
        atomic_store(&G->mirror_ever, true);
    }
    pthread_rwlock_unlock(&G->mirror_lock);
    free(vals);
    free(lens);
    if (nbad) {
        char q[200];
        log_warn("flag records skipped in mirror load", "count=%zu first_error=%s", nbad,
                 log_q(q, sizeof(q), err));
    }
    log_info("flags mirror loaded", "flags=%zu", n - nbad);
    update_ready();
    if (flags_resync.pending && mirror_loaded) {
        /* The snapshot's id is where flags stand now, not where the resync
         * was decided: the events that came while the mirror reloaded are
         * applied to it first (the reload may have read Redis before some
         * of them), so the snapshot holds them and a cursor never goes
         * back (after FLUSHALL the new epoch's first event comes before the
         * reload ends); none of them is written before the snapshot. */
        gw_chan_t *fc = gw_chan_get("flags", false);
        bool now = fc && fc->known && fc->epoch[0];
        pthread_rwlock_wrlock(&G->mirror_lock);
        for (i = 0; i < flags_resync.nheld; i++)
            mirror_apply(G->mirror, outq_ev_event(flags_resync.held[i]));
        pthread_rwlock_unlock(&G->mirror_lock);
        for (i = 0; i < flags_resync.nheld; i++)
            outq_ev_unref(flags_resync.held[i]);
        flags_resync.nheld = 0;
        flags_resync.pending = false;
        G->bus.resync("flags", flags_resync.reason,
                      now ? fc->epoch : flags_resync.has_epoch ? flags_resync.epoch : NULL,
                      now ? fc->last : flags_resync.pos);
    }
}

static void maybe_load(void)
{
    if (mirror_loaded || load_pending || !flags_subscribed || !rconn_ready(cmd_rc))
        return;
    if (rconn_command(cmd_rc, on_hgetall, NULL, "HGETALL %s:flags", G->cfg.prefix) == 0)
        load_pending = true;
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

    metric_inc(G->m.events_received);
    ev_init(&ev);
    if (ev_decode(p, n, &ev, err, sizeof(err)) != 0 ||
        pchan_len <= prefix_len || strlen(ev.channel) != pchan_len - prefix_len ||
        memcmp(ev.channel, pchan + prefix_len, pchan_len - prefix_len) != 0 ||
        !type_fits_channel(&ev)) {
        char q[240];
        if (err[0] == '\0' || ev.channel)
            snprintf(err, sizeof(err), "header channel does not match the pub/sub channel or type");
        metric_inc(G->m.events_malformed);
        if (malformed_seen++ % RG_LOG_EVERY == 0)
            log_warn("malformed message dropped", "channel=%.*s bytes=%zu err=%s seen=%lu",
                     (int)(pchan_len > 200 ? 200 : pchan_len), pchan, n,
                     log_q(q, sizeof(q), err), malformed_seen);
        ev_free(&ev);
        return;
    }
    oev = outq_ev_new(&ev, LWS_PRE);
    if (oev == NULL) {
        metric_inc(G->m.drops);
        return;
    }
    /* Render every format here, once, so service threads never render. */
    if (outq_ev_prepare(oev, (1u << OUTQ_FMT_SSE) | (1u << OUTQ_FMT_JSON) |
                             (1u << OUTQ_FMT_MSGPACK)) != 0)
        log_warn("rendering an event failed", NULL);
    /* hist_glue delivers it in offset order, filling gaps (takes the ref);
     * the one lookup of the message: `flags` keeps its position from its
     * first event, other channels once their SUBSCRIBE is confirmed */
    ch = outq_ev_event(oev)->channel;
    hist_live(gw_chan_get(ch, strcmp(ch, "flags") == 0), oev);
}

void gw_redis_flags_resync(const char *reason, const char *epoch, uint64_t pos)
{
    flags_resync.pending = true;
    flags_resync.reason = reason;
    flags_resync.has_epoch = epoch != NULL;
    snprintf(flags_resync.epoch, sizeof(flags_resync.epoch), "%s", epoch ? epoch : "");
    flags_resync.pos = pos;
    mirror_loaded = false;   /* what the mirror holds may be gone: reload */
    maybe_load();
}

/* True if a filter selects a and b alike: same key, id and tag set. */
static bool same_selection(const flag_t *a, const flag_t *b)
{
    size_t i, j;

    if (a->id != b->id || !a->key != !b->key || (a->key && strcmp(a->key, b->key) != 0) ||
        a->ntags != b->ntags)
        return false;
    for (i = 0; i < a->ntags; i++) {
        for (j = 0; j < b->ntags && !(a->tags[i] && b->tags[j] && strcmp(a->tags[i], b->tags[j]) == 0); j++)
            ;
        if (j == b->ntags)
            return false;
    }
    return true;
}

/* Keeps a flag event until the mirror reload of a flags resync ends. */
static bool hold_flag_event(outq_ev_t *oev)
{
    if (flags_resync.nheld == flags_resync.capheld) {
        size_t cap = flags_resync.capheld ? flags_resync.capheld * 2 : 64;
        outq_ev_t **p = realloc(flags_resync.held, cap * sizeof(*p));
        if (p == NULL)
            return false;
        flags_resync.held = p;
        flags_resync.capheld = cap;
    }
    flags_resync.held[flags_resync.nheld++] = outq_ev_ref(oev);
    return true;
}

void gw_redis_deliver(outq_ev_t *oev)
{
    const ev_t *ev = outq_ev_event(oev);

    if (ev && ev_type_is_flag(ev->type) && strcmp(ev->channel, "flags") == 0) {
        const flag_t *old;
        flag_t *prev = NULL;

        /* a flags resync waits for the reload: its snapshot holds this */
        if (flags_resync.pending && hold_flag_event(oev))
            return;

        pthread_rwlock_wrlock(&G->mirror_lock);
        /* what the flag was, when that selects other connections than the
         * new record (tags changed, or gone): they get the change too */
        old = ev->flag && ev->flag->key ? mirror_get(G->mirror, ev->flag->key, strlen(ev->flag->key)) : NULL;
        if (old && !outq_ev_prev(oev) && (ev->type == EV_FLAG_DELETED || !same_selection(old, ev->flag)) &&
            (prev = calloc(1, sizeof(*prev))) != NULL && flag_copy(prev, old) != 0) {
            free(prev);
            prev = NULL;
        }
        mirror_apply(G->mirror, ev);
        pthread_rwlock_unlock(&G->mirror_lock);
        if (prev)
            outq_ev_set_prev(oev, prev);
    }
    G->bus.dispatch(oev);
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
        if (ch->len > prefix_len) {
            gw_chan_t *c = gw_chan_get(ch->str + prefix_len, true);
            if (c)
                hist_subscribed(c);
        }
        if (strcmp(ch->str, flags_chan) == 0) {
            flags_subscribed = true;
            maybe_load();
            update_ready();
        }
    }
}

/* ==== subscriptions ==== */

static void send_sub(gw_chan_t *c, bool on)
{
    if (!rconn_ready(sub_rc))
        return;
    if (rconn_command(sub_rc, on_sub_reply, NULL, on ? "SUBSCRIBE %s:ch:%s" : "UNSUBSCRIBE %s:ch:%s",
                      G->cfg.prefix, c->name) == 0)
        c->subscribed = on;
}

/* ==== resume from history ==== */

int gw_redis_resume(gw_resume_t *r)
{
    rg_resume_t *rr = calloc(1, sizeof(*rr));

    if (rr == NULL)
        return -1;
    rr->r = r;
    pthread_mutex_lock(&req_mu);
    if (req_closed) {
        pthread_mutex_unlock(&req_mu);
        free(rr);
        return -1;
    }
    *res_tail = rr;
    res_tail = &rr->next;
    event_active(wake_ev, EV_READ, 0);
    pthread_mutex_unlock(&req_mu);
    return 0;
}

static void apply_requests(evutil_socket_t fd, short what, void *arg)
{
    rg_req_t *r, *next;
    rg_resume_t *rr, *rnext;

    (void)fd;
    (void)what;
    (void)arg;
    pthread_mutex_lock(&req_mu);
    r = req_head;
    req_head = NULL;
    req_tail = &req_head;
    rr = res_head;
    res_head = NULL;
    res_tail = &res_head;
    pthread_mutex_unlock(&req_mu);

    /* wants first: a resume's channel is then known (and being subscribed) */
    for (; r; r = next) {
        gw_chan_t *c;
        next = r->next;
        c = gw_chan_get(r->name, r->want);
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
        hist_resume(rr->r);
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
    pthread_mutex_lock(&req_mu);
    if (req_closed) {
        pthread_mutex_unlock(&req_mu);
        free(r);
        return;
    }
    *req_tail = r;
    req_tail = &r->next;
    event_active(wake_ev, EV_READ, 0);
    pthread_mutex_unlock(&req_mu);
}

/* ==== connection states ==== */

static void sub_lost(gw_chan_t *c)
{
    c->subscribed = false;
    hist_sub_lost(c);
}

static void on_sub_state(rconn_t *rc, int connected, void *arg)
{
    size_t i;

    (void)arg;
    if (!connected) {
        gw_chan_t *fc = gw_chan_get("flags", false);

        flags_subscribed = false;
        /* With a known flags position the fill after the resubscribe
         * brings the mirror up to date in order, and each filled change is
         * compared with the record just before it (a flag leaving a filter
         * is told). A reload now would put a newer record there, so a
         * filled change that moved the flag out of a filter would look
         * like no move (the chaos checker found it). Without a position,
         * or when the fill cannot cover the gap (resync), it is reloaded. */
        if (!(fc && fc->known && fc->epoch[0]))
            mirror_loaded = false;
        load_pending = false;
        chan_each(sub_lost);
        update_ready();
        return;
    }
    if (sub_seen_once)
        metric_inc(G->m.redis_reconnects);
    sub_seen_once = true;
    log_info("redis subscriber connected", "reconnects=%lu", rconn_reconnects(rc));
    /* flags first: readiness and the mirror depend on it */
    rconn_command(rc, on_sub_reply, NULL, "SUBSCRIBE %s", flags_chan);
    for (i = 0; i < RG_BUCKETS; i++) {
        gw_chan_t *c;
        for (c = chans[i]; c; c = c->next)
            if (c->count > 0 && strcmp(c->name, "flags") != 0)
                send_sub(c, true);
    }
}

static void on_cmd_state(rconn_t *rc, int connected, void *arg)
{
    (void)rc;
    (void)arg;
    if (connected) {
        maybe_load();
        chan_each(hist_cmd_up);
    } else {
        load_pending = false;
    }
}

static void *redis_main(void *arg)
{
    (void)arg;
    event_base_loop(rbase, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

int gw_redis_start(gw_t *g)
{
    G = g;
    evthread_use_pthreads();
    G->mirror = mirror_new();
    rbase = event_base_new();
    if (G->mirror == NULL || rbase == NULL)
        return -1;
    if (evthread_make_base_notifiable(rbase) != 0)
        return -1;
    snprintf(flags_chan, sizeof(flags_chan), "%s:ch:flags", G->cfg.prefix);
    prefix_len = strlen(G->cfg.prefix) + 4;
    wake_ev = event_new(rbase, -1, 0, apply_requests, NULL);
    sub_rc = rconn_new(rbase, &G->cfg.rurl, "subscriber", on_sub_state, NULL);
    cmd_rc = rconn_new(rbase, &G->cfg.rurl, "reader", on_cmd_state, NULL);
    if (wake_ev == NULL || sub_rc == NULL || cmd_rc == NULL)
        return -1;
    rconn_set_timeouts(sub_rc, (unsigned)G->cfg.redis_timeout_ms, (unsigned)G->cfg.redis_ping_ms);
    rconn_set_ping_prefix(sub_rc, G->cfg.prefix);
    rconn_set_timeouts(cmd_rc, (unsigned)G->cfg.redis_timeout_ms, (unsigned)G->cfg.redis_ping_ms);
    hist_init(g, cmd_rc);
    if (rconn_start(sub_rc) != 0 || rconn_start(cmd_rc) != 0)
        return -1;
    if (pthread_create(&rtid, NULL, redis_main, NULL) != 0)
        return -1;
    rthread_started = true;
    return 0;
}

void gw_redis_stop(void)
{
    size_t i;

    pthread_mutex_lock(&req_mu);
    req_closed = true;
    pthread_mutex_unlock(&req_mu);
    if (rthread_started) {
        event_base_loopbreak(rbase);
        pthread_join(rtid, NULL);
        rthread_started = false;
    }
    if (sub_rc)
        rconn_free(sub_rc);
    if (cmd_rc)
        rconn_free(cmd_rc);
    sub_rc = cmd_rc = NULL;
    hist_shutdown();
    if (wake_ev)
        event_free(wake_ev);
    wake_ev = NULL;
    while (req_head) {
        rg_req_t *r = req_head;
        req_head = r->next;
        free(r);
    }
    while (res_head) {
        rg_resume_t *rr = res_head;
        res_head = rr->next;
        gw_resume_free(rr->r);
        free(rr);
    }
    for (i = 0; i < RG_BUCKETS; i++)
        while (chans[i]) {
            gw_chan_t *c = chans[i];
            chans[i] = c->next;
            gw_chan_free(c);
        }
    for (i = 0; i < flags_resync.nheld; i++)
        outq_ev_unref(flags_resync.held[i]);
    free(flags_resync.held);
    flags_resync.held = NULL;
    flags_resync.nheld = flags_resync.capheld = 0;
    if (rbase)
        event_base_free(rbase);
    rbase = NULL;
}
