/*
 * replay — client resumes on the Redis thread (see replay.h and
 * docs/ARCHITECTURE.md, "Recovery").
 *
 * Each request (gw_resume_t: channels with an (epoch, offset) each, or
 * position-only) waits on every channel's record (a replay_wait) until that
 * channel can answer: its SUBSCRIBE confirmed, no fill (history.c) and no
 * read under way. It is then answered from the channel's *window*: the
 * result of one history read from the oldest offset asked, kept for
 * REPLAY_WINDOW_IDLE seconds after its last use and extended by every live
 * delivery, so the many clients of a reconnect storm share one read. What
 * the window cannot cover (another epoch, trimmed history, more than
 * FLAGCAST_RESUME_MAX_EVENTS) is answered with a resync reason. When every
 * channel of a request is answered it goes back through g->bus.resume_done.
 *
 * Commands in flight keep their record alive (refs); a channel forgotten
 * meanwhile is freed by the last callback (replay_release).
 */
#include "gateway/redis/replay.h"
#include "gateway/clock.h"
#include "gateway/resync.h"
#include "common/log.h"

#include <libwebsockets.h>   /* LWS_PRE */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FMT_ALL ((1u << OUTQ_FMT_SSE) | (1u << OUTQ_FMT_JSON) | (1u << OUTQ_FMT_MSGPACK))

typedef struct hreq {
    gw_resume_t *r;
    size_t       pending;
} hreq_t;

typedef struct replay_wait {
    struct replay_wait *next;
    hreq_t             *q;
    size_t              i;
} hwait_t;

/* This file's state, set by replay_init. */
static struct {
    gw_t         *g;
    rconn_t      *cmd;
    chan_table_t *chans;
} RP;

/* ==== helpers shared with history.c ==== */

static uint64_t ev_off(outq_ev_t *e)
{
    return outq_ev_event(e)->offset;
}

static uint64_t win_last(const gw_chan_t *c)
{
    return c->win.n ? ev_off(c->win.v[c->win.n - 1]) : c->wfrom - 1;
}

static void win_drop(gw_chan_t *c)
{
    chan_evvec_clear(&c->win);
    c->wvalid = false;
    c->wtrunc = false;
}

void replay_clear(gw_chan_t *c)
{
    hwait_t *w;

    while ((w = c->waiters) != NULL) {
        c->waiters = w->next;
        if (--w->q->pending == 0) {
            gw_resume_free(w->q->r);
            free(w->q);
        }
        free(w);
    }
}

bool replay_release(gw_chan_t *c)
{
    if (--c->refs == 0 && c->dead) {
        replay_clear(c);
        chan_free(c);
        return true;
    }
    return c->dead;
}

/* Decodes one XRANGE entry [id, [field, value]] of channel ch into a
 * rendered event. @return it, or NULL (counted as malformed). */
outq_ev_t *replay_entry_decode(const redisReply *ent, const char *ch)
{
    const redisReply *fv;
    char err[160];
    ev_t ev;
    outq_ev_t *oev;

    if (ent->type != REDIS_REPLY_ARRAY || ent->elements != 2)
        goto bad;
    fv = ent->element[1];
    if (fv->type != REDIS_REPLY_ARRAY || fv->elements != 2 ||
        fv->element[1]->type != REDIS_REPLY_STRING)
        goto bad;
    ev_init(&ev);
    if (ev_decode(fv->element[1]->str, fv->element[1]->len, &ev, err, sizeof(err)) != 0 ||
        strcmp(ev.channel, ch) != 0 ||
        (strcmp(ch, "flags") == 0 && !ev_type_is_flag(ev.type))) {
        ev_free(&ev);
        goto bad;
    }
    oev = outq_ev_new(&ev, LWS_PRE);
    if (oev == NULL)
        return NULL;
    outq_ev_prepare(oev, FMT_ALL);
    return oev;
bad:
    metric_inc(RP.g->m.events_malformed);
    return NULL;
}

/* The reply of `HMGET P:meta:<ch> epoch offset`: the channel's position
 * into epoch (n bytes; "" when the channel has no history) and *off.
 * @return false if the reply is not that (an error, a lost connection). */
bool replay_meta_parse(const redisReply *reply, char *epoch, size_t n, uint64_t *off)
{
    epoch[0] = '\0';
    *off = 0;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2)
        return false;
    if (reply->element[0]->type == REDIS_REPLY_STRING && reply->element[1]->type == REDIS_REPLY_STRING) {
        snprintf(epoch, n, "%s", reply->element[0]->str);
        *off = strtoull(reply->element[1]->str, NULL, 10);
    }
    return true;
}

void replay_window_extend(gw_chan_t *c, outq_ev_t *oev)
{
    const ev_t *ev = outq_ev_event(oev);

    if (c->wvalid && !c->reading) {
        if (gw_now_ns() - c->wused_ns > (uint64_t)REPLAY_WINDOW_IDLE * 1000000000ull ||
            strcmp(c->wepoch, ev->epoch) != 0 || ev->offset > win_last(c) + 1) {
            win_drop(c);
        } else if (ev->offset == win_last(c) + 1) {
            if (c->win.n >= (size_t)RP.g->cfg.resume_max) {
                win_drop(c);   /* capped: later resumes read again */
            } else if (chan_evvec_push(&c->win, oev) == 0) {
                outq_ev_ref(oev);   /* the window's own reference */
            } else {
                win_drop(c);
            }
        }
    }
}

/* ==== answers ==== */

static void req_done(hreq_t *q)
{
    if (--q->pending > 0)
        return;
    RP.g->bus.resume_done(q->r);
    free(q);
}


static void answer_resync(hreq_t *q, size_t i, const char *reason, const char *epoch, uint64_t pos)
{
    gw_resume_t *r = q->r;

    r->ok[i] = false;
    r->reason[i] = reason;
    metric_inc(RP.g->m.resyncs);
    free(r->epochs[i]);
    r->epochs[i] = epoch && *epoch ? strdup(epoch) : NULL;
    r->last[i] = pos;
    req_done(q);
}

static void answer_window(gw_chan_t *c, hreq_t *q, size_t i)
{
    gw_resume_t *r = q->r;
    uint64_t o = r->offsets[i];
    size_t k;

    r->ok[i] = true;
    r->last[i] = o;
    for (k = 0; k < c->win.n && ev_off(c->win.v[k]) <= o; k++)
        ;
    for (; k < c->win.n; k++) {
        if (r->nevs == r->cap) {
            size_t nc = r->cap ? r->cap * 2 : 16;
            outq_ev_t **ne = realloc(r->evs, nc * sizeof(*ne));
            if (ne == NULL) {
                /* nothing half-replayed for this channel */
                while (r->nevs > 0 && outq_ev_event(r->evs[r->nevs - 1]) &&
                       strcmp(outq_ev_event(r->evs[r->nevs - 1])->channel, c->name) == 0)
                    outq_ev_unref(r->evs[--r->nevs]);
                answer_resync(q, i, HIST_REASON_ERROR, c->wepoch, win_last(c));
                return;
            }
            r->evs = ne;
            r->cap = nc;
        }
        r->evs[r->nevs++] = outq_ev_ref(c->win.v[k]);
        r->last[i] = ev_off(c->win.v[k]);
    }
    req_done(q);
}

static void start_read(gw_chan_t *c, uint64_t from);

static void answer_pos(hreq_t *q, size_t i, const char *epoch, uint64_t last)
{
    gw_resume_t *r = q->r;

    free(r->epochs[i]);
    r->epochs[i] = strdup(epoch);
    r->ok[i] = r->epochs[i] != NULL;
    r->last[i] = last;
    req_done(q);
}


/* The channel's position when its first SUBSCRIBE was confirmed (P:meta,
 * read after the confirmation): from then on it is known, so a lost
 * subscriber connection is filled from there even before any live event
 * (a channel without history yet: epoch "", offset 0). A live event that
 * came first already gave it. */
static void on_pos_meta(redisAsyncContext *ac, void *rep, void *priv)
{
    gw_chan_t *c = priv;
    redisReply *reply = rep;
    char epoch[EV_MAX_EPOCH + 1];
    uint64_t off;

    (void)ac;
    if (replay_release(c))
        return;
    c->pmeta_pending = false;
    if (!replay_meta_parse(reply, epoch, sizeof(epoch), &off)) {
        if (reply && reply->type == REDIS_REPLY_ERROR)
            log_warn("channel position read failed", "channel=%s err=\"%s\"", c->name, reply->str);
        return;   /* again when the reader is back (replay_cmd_up) */
    }
    if (!c->known) {
        c->known = true;
        memcpy(c->epoch, epoch, sizeof(c->epoch));
        c->last = off;
    }
    replay_serve(c);
}

void replay_position(gw_chan_t *c)
{
    if (c->known || c->pmeta_pending || !rconn_ready(RP.cmd))
        return;
    if (rconn_command(RP.cmd, on_pos_meta, c, "HMGET %s:meta:%s epoch offset", RP.g->cfg.prefix,
                      c->name) == 0) {
        c->pmeta_pending = true;
        c->refs++;
    }
}

/* A position-only request (a stream starting on the channel): the
 * channel's position once its SUBSCRIBE is confirmed and the position is
 * known, so anything later comes live. */
static bool serve_pos(gw_chan_t *c, hreq_t *q, size_t i)
{
    if (!c->confirmed || c->filling)
        return false;
    if (c->known) {
        answer_pos(q, i, c->epoch[0] ? c->epoch : HIST_EPOCH_NONE, c->epoch[0] ? c->last : 0);
        return true;
    }
    replay_position(c);
    return false;
}

/* Answers one waiter if the channel's state allows. @return true if done. */
static bool serve_one(gw_chan_t *c, hreq_t *q, size_t i)
{
    gw_resume_t *r = q->r;
    const char *E = r->epochs[i];
    uint64_t o = r->offsets[i];

    if (c->dead) {
        r->ok[i] = false;   /* nobody here wants it any more */
        req_done(q);
        return true;
    }
    if (r->pos_only[i])
        return serve_pos(c, q, i);
    if (!c->confirmed || c->filling || c->reading)
        return false;
    if (strcmp(E, HIST_EPOCH_NONE) == 0) {
        /* taken before the channel had history: from its first event on,
         * under whatever epoch it has now */
        const char *now = c->known ? c->epoch : c->wvalid && o + 1 >= c->wfrom ? c->wepoch : NULL;
        if (now == NULL) {
            start_read(c, o + 1);
            return false;
        }
        if (*now == '\0') {
            r->ok[i] = true;   /* still no history: nothing missed */
            r->last[i] = o;
            req_done(q);
            return true;
        }
        free(r->epochs[i]);
        r->epochs[i] = strdup(now);
        if (r->epochs[i] == NULL) {
            answer_resync(q, i, HIST_REASON_ERROR, NULL, 0);
            return true;
        }
        E = r->epochs[i];
    }
    if (c->known && strcmp(E, c->epoch) != 0) {
        answer_resync(q, i, HIST_REASON_EPOCH, c->epoch, c->last);
        return true;
    }
    if (c->known && o >= c->last) {
        r->ok[i] = true;
        r->last[i] = o;
        req_done(q);
        return true;
    }
    if (c->known && c->last - o > (uint64_t)RP.g->cfg.resume_max) {
        answer_resync(q, i, HIST_REASON_BEHIND, c->epoch, c->last);
        return true;
    }
    if (c->wvalid && c->wtrunc && o + 1 > c->wfrom) {
        start_read(c, o + 1);   /* the capped window stops short: read from here */
        return false;
    }
    if (c->wvalid && o + 1 >= c->wfrom) {
        c->wused_ns = gw_now_ns();
        if (c->wepoch[0] == '\0')
            answer_resync(q, i, HIST_REASON_TRIMMED, NULL, 0);
        else if (strcmp(E, c->wepoch) != 0)
            answer_resync(q, i, HIST_REASON_EPOCH, c->wepoch, win_last(c));
        else if (c->win.n ? o + 1 < ev_off(c->win.v[0]) : c->wmeta_off > o)
            answer_resync(q, i, HIST_REASON_TRIMMED, c->wepoch, win_last(c));
        else if (c->wtrunc)
            answer_resync(q, i, HIST_REASON_BEHIND, c->wepoch, win_last(c));
        else
            answer_window(c, q, i);
        return true;
    }
    start_read(c, o + 1);
    return false;
}

void replay_serve(gw_chan_t *c)
{
    hwait_t **pp = &c->waiters, *w;

    while ((w = *pp) != NULL) {
        if (serve_one(c, w->q, w->i)) {
            *pp = w->next;
            free(w);
        } else {
            pp = &w->next;
        }
    }
}

static void read_fail(gw_chan_t *c, const char *why)
{
    hwait_t *w;

    log_warn("history read failed", "channel=%s err=\"%s\"", c->name, why);
    c->reading = false;
    c->retry_read = false;
    win_drop(c);
    while ((w = c->waiters) != NULL) {
        c->waiters = w->next;
        answer_resync(w->q, w->i, HIST_REASON_ERROR, c->known ? c->epoch : NULL, c->last);
        free(w);
    }
}

static void on_read_meta(redisAsyncContext *ac, void *rep, void *priv)
{
    gw_chan_t *c = priv;
    redisReply *reply = rep;

    (void)ac;
    if (replay_release(c))
        return;
    if (!c->reading || reply == NULL)
        return;
    replay_meta_parse(reply, c->wepoch, sizeof(c->wepoch), &c->wmeta_off);
}

static int send_page(gw_chan_t *c, uint64_t from);

static void on_read_page(redisAsyncContext *ac, void *rep, void *priv)
{
    gw_chan_t *c = priv;
    redisReply *reply = rep;
    size_t i;

    (void)ac;
    if (replay_release(c))
        return;
    if (!c->reading)
        return;
    if (reply == NULL) {
        c->retry_read = true;
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY) {
        read_fail(c, reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        return;
    }
    for (i = 0; i < reply->elements; i++) {
        outq_ev_t *oev = replay_entry_decode(reply->element[i], c->name);
        const ev_t *ev;

        if (oev == NULL)
            continue;
        ev = outq_ev_event(oev);
        if (strcmp(ev->epoch, c->wepoch) != 0 ||
            (c->win.n && ev->offset != win_last(c) + 1)) {
            outq_ev_unref(oev);   /* a restart under way: the next read sees it */
            continue;
        }
        if (chan_evvec_push(&c->win, oev) != 0) {
            outq_ev_unref(oev);
            c->wtrunc = true;
            break;
        }
    }
    if (c->win.n > (size_t)RP.g->cfg.resume_max)
        c->wtrunc = true;
    if (!c->wtrunc && (reply->elements >= REPLAY_PAGE ||
                       (c->known && strcmp(c->epoch, c->wepoch) == 0 && win_last(c) < c->last))) {
        if (send_page(c, win_last(c) + 1) != 0)
            read_fail(c, "reader down");
        return;
    }
    c->reading = false;
    c->wvalid = true;
    c->wused_ns = gw_now_ns();
    log_debug("history window read", "channel=%s from=%llu events=%zu", c->name,
              (unsigned long long)c->wfrom, c->win.n);
    replay_serve(c);
}

static int send_page(gw_chan_t *c, uint64_t from)
{
    if (!rconn_ready(RP.cmd))
        return -1;
    if (rconn_command(RP.cmd, on_read_page, c, "XRANGE %s:hist:%s %llu-0 + COUNT %d", RP.g->cfg.prefix,
                      c->name, (unsigned long long)from, REPLAY_PAGE) != 0)
        return -1;
    c->refs++;
    metric_inc(RP.g->m.history_reads);
    return 0;
}

/* One shared read for every waiter of c, from `from` on. */
static void start_read(gw_chan_t *c, uint64_t from)
{
    win_drop(c);
    c->reading = true;
    c->wfrom = from;
    c->rfrom = from;
    c->wepoch[0] = '\0';
    c->wmeta_off = 0;
    if (!rconn_ready(RP.cmd)) {
        c->retry_read = true;
        return;
    }
    c->retry_read = false;
    if (rconn_command(RP.cmd, on_read_meta, c, "HMGET %s:meta:%s epoch offset", RP.g->cfg.prefix,
                      c->name) == 0)
        c->refs++;
    else
        c->retry_read = true;
    if (!c->retry_read && send_page(c, from) != 0)
        c->retry_read = true;
}

void replay_resume(gw_resume_t *r)
{
    hreq_t *q = calloc(1, sizeof(*q));
    size_t i;

    if (q == NULL) {
        gw_resume_free(r);
        return;
    }
    q->r = r;
    q->pending = 1;   /* held until every channel is queued */
    for (i = 0; i < r->nch; i++) {
        gw_chan_t *c = chan_get(RP.chans, r->channels[i], true);
        hwait_t *w;

        r->ok[i] = false;
        r->last[i] = r->offsets[i];
        q->pending++;
        metric_inc(RP.g->m.resumes);
        if (c == NULL) {
            answer_resync(q, i, HIST_REASON_ERROR, NULL, 0);
            continue;
        }
        c->hist = true;
        if (c->waiters == NULL && serve_one(c, q, i))
            continue;
        w = malloc(sizeof(*w));
        if (w == NULL) {
            answer_resync(q, i, HIST_REASON_ERROR, NULL, 0);
            continue;
        }
        w->q = q;
        w->i = i;
        w->next = c->waiters;
        c->waiters = w;
    }
    req_done(q);
}

void replay_cmd_up(gw_chan_t *c)
{
    if (c->reading && c->retry_read)
        start_read(c, c->rfrom);
    if (c->confirmed && !c->known)
        replay_position(c);   /* lost with the reader */
    if (c->waiters && !c->filling && !c->reading)
        replay_serve(c);
}

void replay_forget(gw_chan_t *c)
{
    hwait_t *w;

    while ((w = c->waiters) != NULL) {
        c->waiters = w->next;
        serve_one(c, w->q, w->i);
        free(w);
    }
}

void replay_init(gw_t *g, rconn_t *cmd, chan_table_t *chans)
{
    RP.g = g;
    RP.cmd = cmd;
    RP.chans = chans;
}

void replay_shutdown(void)
{
    RP.cmd = NULL;
}
