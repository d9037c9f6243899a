/*
 * hist_glue — history and recovery on the Redis thread (see hist.h and
 * docs/ARCHITECTURE.md, "Recovery").
 *
 * Per logical channel with local subscribers the thread keeps the position
 * it delivered last, (epoch, last). Every live message goes through
 * hist_live():
 *   - offset == last + 1 (or the channel's first): delivered;
 *   - offset <= last: already delivered (by a fill): dropped;
 *   - offset  > last + 1: a pub/sub message was lost: the event is held and
 *     a *fill* reads P:hist:<ch> from last + 1 (XRANGE, pages of HIST_PAGE);
 *     the missing events are delivered in order, then the held ones;
 *   - another epoch: the channel's history restarted: every local
 *     subscriber gets a resync (flags: a fresh snapshot), then the event.
 * After the sub connection comes back, each re-SUBSCRIBE confirmation starts
 * the same fill from last + 1, so the outage's events arrive before the live
 * ones. A fill that finds history trimmed (the first entry is past last + 1)
 * or reads more than FLAGCAST_RESUME_MAX_EVENTS sends a resync instead of
 * the lost range. While a fill runs, live events of the channel are held
 * (bounded by the same knob: beyond, resync and go on live).
 *
 * Client resumes (hist_resume) are answered per channel from a *window*: the
 * result of one history read (HMGET P:meta epoch offset + paged XRANGE from
 * the oldest offset asked), kept for HIST_WINDOW_IDLE seconds after its last
 * use and extended by every live delivery of the channel, so the many
 * clients of a reconnect storm share one read. A read only starts once the
 * channel's SUBSCRIBE is confirmed (so nothing falls between history and
 * live); live events that reach the connection meanwhile are queued by its
 * service thread and merged there without duplicates.
 *
 * The state lives in the Redis thread's one channel record (gw_chan_t,
 * hist.h), next to redis_glue.c's subscription count; redis_glue.c keeps the
 * table and looks each message's record up once (hist_live gets it).
 * Commands in flight keep their record alive (refs); a channel forgotten
 * meanwhile is freed by the last callback.
 */
#include "gateway/redis/history.h"
#include "gateway/clock.h"
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

typedef struct hist_wait {
    struct hist_wait *next;
    hreq_t           *q;
    size_t            i;
} hwait_t;

typedef hist_evvec_t evvec_t;

typedef struct hcb {
    gw_chan_t *c;
    unsigned gen;
} hcb_t;

static rconn_t *hcmd;
static gw_t    *G;   /* the process context, from hist_init */

/* ==== small helpers ==== */

static int vec_push(evvec_t *v, outq_ev_t *e)
{
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 16;
        outq_ev_t **nv = realloc(v->v, nc * sizeof(*nv));
        if (nv == NULL)
            return -1;
        v->v = nv;
        v->cap = nc;
    }
    v->v[v->n++] = e;
    return 0;
}

static void vec_clear(evvec_t *v)
{
    size_t i;

    for (i = 0; i < v->n; i++)
        outq_ev_unref(v->v[i]);
    free(v->v);
    v->v = NULL;
    v->n = v->cap = 0;
}

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
    vec_clear(&c->win);
    c->wvalid = false;
    c->wtrunc = false;
}

void hist_clear(gw_chan_t *c)
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
    vec_clear(&c->held);
    vec_clear(&c->win);
}

/* Decodes one XRANGE entry [id, [field, value]] of channel ch into a
 * rendered event. @return it, or NULL (counted as malformed). */
static outq_ev_t *entry_decode(const redisReply *ent, const char *ch)
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
    metric_inc(G->m.events_malformed);
    return NULL;
}

static hcb_t *cb_new(gw_chan_t *c)
{
    hcb_t *cb = malloc(sizeof(*cb));

    if (cb == NULL)
        return NULL;
    cb->c = c;
    cb->gen = c->fill_gen;
    return cb;
}

/* A callback's end: @return true if the channel was freed (stop using it). */
static bool cb_release(gw_chan_t *c)
{
    if (--c->refs == 0 && c->dead) {
        gw_chan_free(c);
        return true;
    }
    return c->dead;
}

/* ==== delivery ==== */

static void resync_all(gw_chan_t *c, const char *reason, const char *epoch, uint64_t pos)
{
    log_warn("channel resync", "channel=%s reason=\"%s\" offset=%llu", c->name, reason,
             (unsigned long long)pos);
    metric_inc(G->m.resyncs);
    if (strcmp(c->name, "flags") == 0)
        gw_redis_flags_resync(reason, epoch, pos);   /* snapshot from a reloaded mirror */
    else
        G->bus.resync(c->name, reason, epoch, pos);
}

/* Delivers oev (takes the reference) and moves the channel's position. */
static void deliver(gw_chan_t *c, outq_ev_t *oev)
{
    const ev_t *ev = outq_ev_event(oev);

    c->known = true;
    snprintf(c->epoch, sizeof(c->epoch), "%s", ev->epoch);
    c->last = ev->offset;
    if (c->wvalid && !c->reading) {
        if (gw_now_ns() - c->wused_ns > (uint64_t)HIST_WINDOW_IDLE * 1000000000ull ||
            strcmp(c->wepoch, ev->epoch) != 0 || ev->offset > win_last(c) + 1) {
            win_drop(c);
        } else if (ev->offset == win_last(c) + 1) {
            if (c->win.n >= (size_t)G->cfg.resume_max) {
                win_drop(c);   /* capped: later resumes read again */
            } else if (vec_push(&c->win, oev) == 0) {
                outq_ev_ref(oev);   /* the window's own reference */
            } else {
                win_drop(c);
            }
        }
    }
    gw_redis_deliver(oev);
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
static void serve_waiters(gw_chan_t *c);

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
            metric_inc(G->m.offsets_rejected);
            log_warn("live event not in history dropped", "channel=%s epoch=%s offset=%llu last=%llu",
                     c->name, ev->epoch, (unsigned long long)ev->offset, (unsigned long long)c->last);
            outq_ev_unref(v[i]);
            continue;
        }
        /* a newer loss: hold the rest and fill again */
        for (; i < n; i++)
            if (vec_push(&c->held, v[i]) != 0)
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
        serve_waiters(c);
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
    if (cb_release(c))
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
        outq_ev_t *oev = entry_decode(reply->element[i], c->name);
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
    if (c->fill_n >= (size_t)G->cfg.resume_max) {
        fill_give_up(c, HIST_REASON_BEHIND);
        return;
    }
    if (reply->elements >= HIST_PAGE) {
        start_fill(c);   /* next page */
        return;
    }
    log_info("history gap filled", "channel=%s events=%zu held=%zu", c->name, c->fill_n, c->held.n);
    fill_end(c);
}

/* The reply of `HMGET P:meta:<ch> epoch offset`: the channel's position
 * into epoch (n bytes; "" when the channel has no history) and *off.
 * @return false if the reply is not that (an error, a lost connection). */
static bool meta_parse(const redisReply *reply, char *epoch, size_t n, uint64_t *off)
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
    if (cb_release(c))
        return;
    if (gen != c->fill_gen || !c->filling)
        return;
    if (reply == NULL) {
        c->retry_fill = true;   /* the reader went: check again when it is back */
        return;
    }
    c->fill_check = false;
    if (meta_parse(reply, epoch, sizeof(epoch), &off) && c->known && c->epoch[0] &&
        strcmp(epoch, c->epoch) == 0) {
        if (off < c->last) {
            metric_inc(G->m.rollbacks);
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
    if (!rconn_ready(hcmd) || (cb = cb_new(c)) == NULL) {
        c->retry_fill = true;   /* hist_cmd_up sends it */
        return;
    }
    if (rconn_command(hcmd, on_fill_meta, cb, "HMGET %s:meta:%s epoch offset", G->cfg.prefix,
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
    metric_inc(G->m.gap_fills);
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
        metric_inc(G->m.gap_fills);
    }
    c->held_mark = c->held.n;
    if (!rconn_ready(hcmd) || (cb = cb_new(c)) == NULL) {
        c->retry_fill = true;
        return;
    }
    if (rconn_command(hcmd, on_fill, cb, "XRANGE %s:hist:%s %llu-0 + COUNT %d", G->cfg.prefix,
                      c->name, (unsigned long long)c->last + 1, HIST_PAGE) != 0) {
        free(cb);
        c->retry_fill = true;
        return;
    }
    c->retry_fill = false;
    c->refs++;
    metric_inc(G->m.history_reads);
}

void hist_live(gw_chan_t *c, outq_ev_t *oev)
{
    const ev_t *ev = outq_ev_event(oev);

    if (c != NULL && !c->hist && strcmp(c->name, "flags") == 0)
        c->hist = true;   /* flags' position is kept from its first event */
    if (c == NULL || !c->hist) {
        gw_redis_deliver(oev);
        outq_ev_unref(oev);
        return;
    }
    if (c->filling) {
        if (c->held.n >= (size_t)G->cfg.resume_max) {
            /* the fill cannot keep up (the reader is away): go on live */
            if (vec_push(&c->held, oev) != 0)
                outq_ev_unref(oev);
            fill_give_up(c, HIST_REASON_BEHIND);
            return;
        }
        if (vec_push(&c->held, oev) != 0)
            outq_ev_unref(oev);
        return;
    }
    if (live_step(c, oev))
        return;
    log_info("gap in live traffic, reading history", "channel=%s last=%llu got=%llu",
             c->name, (unsigned long long)c->last, (unsigned long long)ev->offset);
    if (vec_push(&c->held, oev) != 0)
        outq_ev_unref(oev);
    start_fill(c);
}

/* ==== client resumes ==== */

static void req_done(hreq_t *q)
{
    if (--q->pending > 0)
        return;
    G->bus.resume_done(q->r);
    free(q);
}

static void answer_resync(hreq_t *q, size_t i, const char *reason, const char *epoch, uint64_t pos)
{
    gw_resume_t *r = q->r;

    r->ok[i] = false;
    r->reason[i] = reason;
    metric_inc(G->m.resyncs);
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
static void serve_waiters(gw_chan_t *c);

static void answer_pos(hreq_t *q, size_t i, const char *epoch, uint64_t last)
{
    gw_resume_t *r = q->r;

    free(r->epochs[i]);
    r->epochs[i] = strdup(epoch);
    r->ok[i] = r->epochs[i] != NULL;
    r->last[i] = last;
    req_done(q);
}

static void read_position(gw_chan_t *c);

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
    if (cb_release(c))
        return;
    c->pmeta_pending = false;
    if (!meta_parse(reply, epoch, sizeof(epoch), &off)) {
        if (reply && reply->type == REDIS_REPLY_ERROR)
            log_warn("channel position read failed", "channel=%s err=\"%s\"", c->name, reply->str);
        return;   /* again when the reader is back (hist_cmd_up) */
    }
    if (!c->known) {
        c->known = true;
        memcpy(c->epoch, epoch, sizeof(c->epoch));
        c->last = off;
    }
    serve_waiters(c);
}

static void read_position(gw_chan_t *c)
{
    if (c->known || c->pmeta_pending || !rconn_ready(hcmd))
        return;
    if (rconn_command(hcmd, on_pos_meta, c, "HMGET %s:meta:%s epoch offset", G->cfg.prefix,
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
    read_position(c);
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
    if (c->known && c->last - o > (uint64_t)G->cfg.resume_max) {
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

static void serve_waiters(gw_chan_t *c)
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
    if (cb_release(c))
        return;
    if (!c->reading || reply == NULL)
        return;
    meta_parse(reply, c->wepoch, sizeof(c->wepoch), &c->wmeta_off);
}

static int send_page(gw_chan_t *c, uint64_t from);

static void on_read_page(redisAsyncContext *ac, void *rep, void *priv)
{
    gw_chan_t *c = priv;
    redisReply *reply = rep;
    size_t i;

    (void)ac;
    if (cb_release(c))
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
        outq_ev_t *oev = entry_decode(reply->element[i], c->name);
        const ev_t *ev;

        if (oev == NULL)
            continue;
        ev = outq_ev_event(oev);
        if (strcmp(ev->epoch, c->wepoch) != 0 ||
            (c->win.n && ev->offset != win_last(c) + 1)) {
            outq_ev_unref(oev);   /* a restart under way: the next read sees it */
            continue;
        }
        if (vec_push(&c->win, oev) != 0) {
            outq_ev_unref(oev);
            c->wtrunc = true;
            break;
        }
    }
    if (c->win.n > (size_t)G->cfg.resume_max)
        c->wtrunc = true;
    if (!c->wtrunc && (reply->elements >= HIST_PAGE ||
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
    serve_waiters(c);
}

static int send_page(gw_chan_t *c, uint64_t from)
{
    if (!rconn_ready(hcmd))
        return -1;
    if (rconn_command(hcmd, on_read_page, c, "XRANGE %s:hist:%s %llu-0 + COUNT %d", G->cfg.prefix,
                      c->name, (unsigned long long)from, HIST_PAGE) != 0)
        return -1;
    c->refs++;
    metric_inc(G->m.history_reads);
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
    if (!rconn_ready(hcmd)) {
        c->retry_read = true;
        return;
    }
    c->retry_read = false;
    if (rconn_command(hcmd, on_read_meta, c, "HMGET %s:meta:%s epoch offset", G->cfg.prefix,
                      c->name) == 0)
        c->refs++;
    else
        c->retry_read = true;
    if (!c->retry_read && send_page(c, from) != 0)
        c->retry_read = true;
}

void hist_resume(gw_resume_t *r)
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
        gw_chan_t *c = gw_chan_get(r->channels[i], true);
        hwait_t *w;

        r->ok[i] = false;
        r->last[i] = r->offsets[i];
        q->pending++;
        metric_inc(G->m.resumes);
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

/* ==== connection events ==== */

void hist_subscribed(gw_chan_t *c)
{
    c->hist = true;
    c->confirmed = true;
    if (c->known && !c->filling)
        start_fill_checked(c);   /* whatever the outage took, before live */
    else
        read_position(c);
    if (!c->filling)
        serve_waiters(c);
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
    if (c->reading && c->retry_read)
        start_read(c, c->rfrom);
    if (c->confirmed && !c->known)
        read_position(c);   /* lost with the reader */
    if (c->waiters && !c->filling && !c->reading)
        serve_waiters(c);
}

void hist_forget(gw_chan_t *c)
{
    hwait_t *w;
    size_t i;

    while ((w = c->waiters) != NULL) {
        c->waiters = w->next;
        serve_one(c, w->q, w->i);
        free(w);
    }
    /* held events still go out (in order) to whoever gets them */
    for (i = 0; i < c->held.n; i++) {
        gw_redis_deliver(c->held.v[i]);
        outq_ev_unref(c->held.v[i]);
    }
    c->held.n = 0;
}

void hist_init(gw_t *g, rconn_t *cmd)
{
    G = g;
    hcmd = cmd;
}

void hist_shutdown(void)
{
    hcmd = NULL;
}
