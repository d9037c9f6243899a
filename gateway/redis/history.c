/*
 * history — every live message of the Redis thread in offset order, with
 * gap fills and resyncs (see history.h and docs/ARCHITECTURE.md, "Recovery").
 *
 * Per logical channel with local subscribers the thread keeps the position
 * it delivered last, (epoch, last). Every live message goes through
 * hist_live():
 *   - offset == last + 1 (or the channel's first): delivered;
 *   - offset <= last: already delivered (by a fill): dropped;
 *   - offset  > last + 1: a pub/sub message was lost: the event is held and
 *     a *fill* reads P:hist:<ch> from last + 1 (XRANGE, pages of
 *     REPLAY_PAGE); the missing events are delivered in order, then the
 *     held ones;
 *   - another epoch: the channel's history restarted: every local
 *     subscriber gets a resync (flags: a fresh snapshot), then the event.
 * After the sub connection comes back, each re-SUBSCRIBE confirmation starts
 * the same fill from last + 1, so the outage's events arrive before the live
 * ones. A fill that finds history trimmed (the first entry is past last + 1)
 * or reads more than FLAGCAST_RESUME_MAX_EVENTS sends a resync instead of
 * the lost range. While a fill runs, live events of the channel are held
 * (bounded by the same knob: beyond, resync and go on live).
 *
 * Delivered events go to the sink given at hist_init (redis.c wires it to
 * flags.c, which updates the mirror and dispatches to the service threads);
 * a resync of `flags` goes to the sink too (a snapshot from a reloaded
 * mirror), any other to g->bus.resync. Client resumes are replay.c's; this
 * file tells it when a channel can answer (replay_serve) and extends its
 * window with each delivery.
 *
 * The state lives in the Redis thread's one channel record (gw_chan_t,
 * chan.h); redis.c looks each message's record up once (hist_live gets it).
 * Commands in flight keep their record alive (refs); a channel forgotten
 * meanwhile is freed by the last callback.
 */
#include "gateway/redis/history.h"
#include "gateway/redis/replay.h"
#include "gateway/resync.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct hcb {
    gw_chan_t *c;
    unsigned gen;
} hcb_t;

/* This file's state, set by hist_init. */
static struct {
    gw_t       *g;
    rconn_t    *cmd;
    hist_sink_t sink;
} H;

static hcb_t *cb_new(gw_chan_t *c)
{
    hcb_t *cb = malloc(sizeof(*cb));

    if (cb == NULL)
        return NULL;
    cb->c = c;
    cb->gen = c->fill_gen;
    return cb;
}

/* ==== delivery ==== */

static void resync_all(gw_chan_t *c, const char *reason, const char *epoch, uint64_t pos)
{
    log_warn("channel resync", "channel=%s reason=\"%s\" offset=%llu", c->name, reason,
             (unsigned long long)pos);
    metric_inc(H.g->m.resyncs);
    if (strcmp(c->name, "flags") == 0)
        H.sink.flags_resync(reason, epoch, pos);   /* snapshot from a reloaded mirror */
    else
        H.g->bus.resync(c->name, reason, epoch, pos);
}

/* Delivers oev (takes the reference) and moves the channel's position. */
static void deliver(gw_chan_t *c, outq_ev_t *oev)
{
    const ev_t *ev = outq_ev_event(oev);

    c->known = true;
    snprintf(c->epoch, sizeof(c->epoch), "%s", ev->epoch);
    c->last = ev->offset;
    replay_window_extend(c, oev);
    H.sink.deliver(oev);
    outq_ev_unref(oev);
}

/* The live rule of the file comment, without holding. @return false if
 * the event shows a gap (the caller holds it and fills). */
static bool live_step(gw_chan_t *c, outq_ev_t *oev)
{
    const ev_t *ev = outq_ev_event(oev);

    if (!c->known) {
        deliver(c, oev);
        return true;
    }
    if (c->epoch[0] && strcmp(ev->epoch, c->epoch) != 0) {
        resync_all(c, HIST_REASON_EPOCH, ev->epoch, ev->offset - 1);
        deliver(c, oev);
        return true;
    }
    if (ev->offset <= c->last) {
        outq_ev_unref(oev);   /* delivered already (a fill read it) */
        return true;
    }
    if (ev->offset == c->last + 1) {
        deliver(c, oev);
        return true;
    }
    return false;
}

static void start_fill(gw_chan_t *c);

/* After a fill: the held events in order; a gap among those held before
 * the fill's last read means history lost them (resync), a later one
 * starts another fill. */
static void flush_held(gw_chan_t *c)
{
    size_t i, n = c->held.n, mark = c->held_mark;
    outq_ev_t **v = c->held.v;

    c->held.v = NULL;
    c->held.n = c->held.cap = 0;
    c->held_mark = 0;
    for (i = 0; i < n; i++) {
        if (live_step(c, v[i]))
            continue;
        if (i < mark) {
            /* It came before the fill's last read, so history has every
             * offset up to it (the publisher writes both at once), yet the
             * read ended before it: not the publisher's. Delivering it would
             * move the position past every genuine event that follows. */
            const ev_t *ev = outq_ev_event(v[i]);
            metric_inc(H.g->m.offsets_rejected);
            log_warn("live event not in history dropped", "channel=%s epoch=%s offset=%llu last=%llu",
                     c->name, ev->epoch, (unsigned long long)ev->offset, (unsigned long long)c->last);
            outq_ev_unref(v[i]);
            continue;
        }
        /* a newer loss: hold the rest and fill again */
        for (; i < n; i++)
            if (chan_evvec_push(&c->held, v[i]) != 0)
                outq_ev_unref(v[i]);
        free(v);
        start_fill(c);
        return;
    }
    free(v);
}

static void fill_end(gw_chan_t *c)
{
    c->filling = false;
    c->fill_check = false;
    c->retry_fill = false;
    c->fill_gen++;
    flush_held(c);
    if (!c->filling)
        replay_serve(c);
}

static void fill_give_up(gw_chan_t *c, const char *reason)
{
    /* what history cannot give is announced; live goes on from the held */
    c->known = false;
    resync_all(c, reason, NULL, 0);
    c->held_mark = 0;
    fill_end(c);
}

static void on_fill(redisAsyncContext *ac, void *rep, void *priv)
{
    hcb_t *cb = priv;
    gw_chan_t *c = cb->c;
    redisReply *reply = rep;
    unsigned gen = cb->gen;
    size_t i;

    (void)ac;
    free(cb);
    if (replay_release(c))
        return;
    if (gen != c->fill_gen || !c->filling)
        return;   /* given up meanwhile */
    if (reply == NULL) {
        c->retry_fill = true;   /* the reader is down: again when it is back */
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY) {
        log_warn("history read failed", "channel=%s err=\"%s\"", c->name,
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        fill_give_up(c, HIST_REASON_ERROR);
        return;
    }
    for (i = 0; i < reply->elements; i++) {
        outq_ev_t *oev = replay_entry_decode(reply->element[i], c->name);
        const ev_t *ev;

        if (oev == NULL)
            continue;
        ev = outq_ev_event(oev);
        if (c->known && (!c->epoch[0] || strcmp(ev->epoch, c->epoch) == 0) && ev->offset <= c->last) {
            outq_ev_unref(oev);
            continue;
        }
        if (c->known && c->epoch[0] && strcmp(ev->epoch, c->epoch) != 0)
            resync_all(c, HIST_REASON_EPOCH, ev->epoch, ev->offset - 1);
        else if (c->known && ev->offset > c->last + 1)
            resync_all(c, HIST_REASON_TRIMMED, ev->epoch, ev->offset - 1);
        deliver(c, oev);
        c->fill_n++;
    }
    if (c->fill_n >= (size_t)H.g->cfg.resume_max) {
        fill_give_up(c, HIST_REASON_BEHIND);
        return;
    }
    if (reply->elements >= REPLAY_PAGE) {
        start_fill(c);   /* next page */
        return;
    }
    log_info("history gap filled", "channel=%s events=%zu held=%zu", c->name, c->fill_n, c->held.n);
    fill_end(c);
}


/* After a reconnect: P:meta first. The same epoch at an offset below the
 * position delivered means Redis came back with older data (a restart from
 * an older RDB, the last second of an everysec AOF): the offsets delivered
 * since will be used again by other events. Every local subscriber is
 * resynced at what Redis has (its cursor then names an offset that exists),
 * and the fill goes on from there. Live events are held meanwhile. */
static void on_fill_meta(redisAsyncContext *ac, void *rep, void *priv)
{
    hcb_t *cb = priv;
    gw_chan_t *c = cb->c;
    redisReply *reply = rep;
    unsigned gen = cb->gen;
    char epoch[EV_MAX_EPOCH + 1];
    uint64_t off;

    (void)ac;
    free(cb);
    if (replay_release(c))
        return;
    if (gen != c->fill_gen || !c->filling)
        return;
    if (reply == NULL) {
        c->retry_fill = true;   /* the reader went: check again when it is back */
        return;
    }
    c->fill_check = false;
    if (replay_meta_parse(reply, epoch, sizeof(epoch), &off) && c->known && c->epoch[0] &&
        strcmp(epoch, c->epoch) == 0) {
        if (off < c->last) {
            metric_inc(H.g->m.rollbacks);
            log_warn("history rolled back", "channel=%s epoch=%s delivered=%llu redis=%llu", c->name,
                     c->epoch, (unsigned long long)c->last, (unsigned long long)off);
            c->last = off;
            resync_all(c, HIST_REASON_ROLLBACK, c->epoch, off);
        }
    }
    start_fill(c);   /* also when the read failed: the fill reports its own errors */
}

static void send_fill_check(gw_chan_t *c)
{
    hcb_t *cb;

    c->fill_check = true;
    if (!rconn_ready(H.cmd) || (cb = cb_new(c)) == NULL) {
        c->retry_fill = true;   /* hist_cmd_up sends it */
        return;
    }
    if (rconn_command(H.cmd, on_fill_meta, cb, "HMGET %s:meta:%s epoch offset", H.g->cfg.prefix,
                      c->name) != 0) {
        free(cb);
        c->retry_fill = true;
        return;
    }
    c->retry_fill = false;
    c->refs++;
}

static void start_fill_checked(gw_chan_t *c)
{
    c->filling = true;
    c->fill_n = 0;
    c->fill_gen++;
    metric_inc(H.g->m.gap_fills);
    c->held_mark = c->held.n;
    send_fill_check(c);
}

/* Reads history from last + 1 (one page); live events are held meanwhile. */
static void start_fill(gw_chan_t *c)
{
    hcb_t *cb;

    if (!c->filling) {
        c->filling = true;
        c->fill_n = 0;
        c->fill_gen++;
        metric_inc(H.g->m.gap_fills);
    }
    c->held_mark = c->held.n;
    if (!rconn_ready(H.cmd) || (cb = cb_new(c)) == NULL) {
        c->retry_fill = true;
        return;
    }
    if (rconn_command(H.cmd, on_fill, cb, "XRANGE %s:hist:%s %llu-0 + COUNT %d", H.g->cfg.prefix,
                      c->name, (unsigned long long)c->last + 1, REPLAY_PAGE) != 0) {
        free(cb);
        c->retry_fill = true;
        return;
    }
    c->retry_fill = false;
    c->refs++;
    metric_inc(H.g->m.history_reads);
}

void hist_live(gw_chan_t *c, outq_ev_t *oev)
{
    const ev_t *ev = outq_ev_event(oev);

    if (c != NULL && !c->hist && strcmp(c->name, "flags") == 0)
        c->hist = true;   /* flags' position is kept from its first event */
    if (c == NULL || !c->hist) {
        H.sink.deliver(oev);
        outq_ev_unref(oev);
        return;
    }
    if (c->filling) {
        if (c->held.n >= (size_t)H.g->cfg.resume_max) {
            /* the fill cannot keep up (the reader is away): go on live */
            if (chan_evvec_push(&c->held, oev) != 0)
                outq_ev_unref(oev);
            fill_give_up(c, HIST_REASON_BEHIND);
            return;
        }
        if (chan_evvec_push(&c->held, oev) != 0)
            outq_ev_unref(oev);
        return;
    }
    if (live_step(c, oev))
        return;
    log_info("gap in live traffic, reading history", "channel=%s last=%llu got=%llu",
             c->name, (unsigned long long)c->last, (unsigned long long)ev->offset);
    if (chan_evvec_push(&c->held, oev) != 0)
        outq_ev_unref(oev);
    start_fill(c);
}


/* ==== connection events ==== */

void hist_subscribed(gw_chan_t *c)
{
    c->hist = true;
    c->confirmed = true;
    if (c->known && !c->filling)
        start_fill_checked(c);   /* whatever the outage took, before live */
    else
        replay_position(c);
    if (!c->filling)
        replay_serve(c);
}

void hist_sub_lost(gw_chan_t *c)
{
    c->confirmed = false;
}

void hist_cmd_up(gw_chan_t *c)
{
    if (c->filling && c->retry_fill) {
        if (c->fill_check)
            send_fill_check(c);
        else
            start_fill(c);
    }
    replay_cmd_up(c);
}

void hist_forget(gw_chan_t *c)
{
    size_t i;

    replay_forget(c);
    /* held events still go out (in order) to whoever gets them */
    for (i = 0; i < c->held.n; i++) {
        H.sink.deliver(c->held.v[i]);
        outq_ev_unref(c->held.v[i]);
    }
    c->held.n = 0;
    if (c->refs == 0) {
        replay_clear(c);
        chan_free(c);
    }
}

void hist_init(gw_t *g, rconn_t *cmd, const hist_sink_t *sink)
{
    H.g = g;
    H.cmd = cmd;
    H.sink = *sink;
}

void hist_shutdown(void)
{
    H.cmd = NULL;
}
