/*
 * replay — answers of the Redis thread on a service thread (replay.h).
 */
#include "gateway/lws/replay.h"
#include "gateway/resync.h"
#include "gateway/query.h"
#include "gateway/wsmsg.h"
#include "common/log.h"
#include "proto/sse.h"

#include <stdlib.h>
#include <string.h>

/* Records that c streams ch live from (epoch, offset) on: only WS
 * connections keep their starts (resume.h). */
static void conn_start_set(gw_conn_t *c, const char *ch, const char *epoch, uint64_t offset)
{
    if (c->kind == CK_WS)
        resume_start_set(&c->starts, ch, epoch, offset);
}

static int render_snapshot(gw_t *g, const filter_t *f, mirror_fmt_t fmt, buf_t *out)
{
    int rc;

    pthread_rwlock_rdlock(&g->mirror_lock);
    rc = mirror_render_snapshot(g->mirror, f, fmt, out);
    pthread_rwlock_unlock(&g->mirror_lock);
    return rc;
}

/* c's list cursor with ch moved to (epoch, offset), NUL-terminated in
 * *lid, for a control item of a list-cursor SSE stream; else lid is left
 * empty (lid->data NULL). */
static void ctl_cursor(gw_conn_t *c, const char *ch, const char *epoch, uint64_t offset, buf_t *lid)
{
    buf_init(lid);
    if (c->pos == NULL || c->fmt != OUTQ_FMT_SSE)
        return;
    listcur_set(c->pos, ch, epoch, offset);
    listcur_format(c->pos, lid);
    buf_putc(lid, '\0');
    if (lid->err || lid->len <= 1)
        buf_free(lid);
}

/* A snapshot of what c's filter selects, in c's format; on SSE with the id
 * of the flags position it reflects (epoch NULL: none). @return a control
 * item with one reference, or NULL. */
static outq_ev_t *snapshot_item(gw_conn_t *c, const char *epoch, uint64_t offset)
{
    const filter_t *f = c->sub ? subidx_filter(c->sub) : NULL;
    buf_t b, data, lid;
    int rc;

    if (f == NULL)
        return NULL;
    conn_ctl_buf(&b);
    if (c->fmt != OUTQ_FMT_SSE && epoch == NULL) {
        rc = render_snapshot(c->w->g, f, c->fmt == OUTQ_FMT_MSGPACK ? MIRROR_FMT_MSGPACK : MIRROR_FMT_JSON, &b);
    } else if (c->fmt != OUTQ_FMT_SSE) {
        /* WS: the snapshot says where it stands ("channel", "epoch",
         * "offset", as events do), so a client resumes flags from it */
        buf_init(&data);
        rc = render_snapshot(c->w->g, f, c->fmt == OUTQ_FMT_MSGPACK ? MIRROR_FMT_MSGPACK : MIRROR_FMT_JSON, &data);
        if (rc == 0)
            rc = wsmsg_add_position(conn_wsmsg_fmt(c), data.data, data.len, "flags", epoch, offset, &b);
        buf_free(&data);
    } else {
        char id[QUERY_MAX_CURSOR + 1];
        ctl_cursor(c, "flags", epoch, offset, &lid);
        buf_init(&data);
        rc = render_snapshot(c->w->g, f, MIRROR_FMT_JSON, &data);
        if (rc == 0 && !lid.data && epoch && query_format_cursor(id, sizeof(id), "flags", epoch, offset) < 0)
            rc = -1;
        if (rc == 0)
            rc = sse_frame(&b, lid.data ? lid.data : epoch ? id : NULL, "snapshot", data.data, data.len);
        buf_free(&data);
        buf_free(&lid);
    }
    if (rc != 0) {
        buf_free(&b);
        return NULL;
    }
    return conn_ctl_item(&b);
}

/* For an SSE start without a snapshot: `id: <cursor>` and a blank line (no
 * data, so no event is dispatched, but the last event id is set): the list
 * cursor of a multi-channel stream, or the one channel's position. @return
 * a control item, or NULL (no position answered). */
static outq_ev_t *position_item(gw_conn_t *c, const gw_resume_t *r)
{
    char id[QUERY_MAX_CURSOR + 1];
    buf_t b;
    size_t i;

    for (i = 0; i < r->nch && !(r->pos_only[i] && r->ok[i] && r->epochs[i]); i++)
        ;
    if (i == r->nch)
        return NULL;
    conn_ctl_buf(&b);
    buf_puts(&b, "id: ");
    if (c->pos) {
        listcur_format(c->pos, &b);
    } else {
        if (query_format_cursor(id, sizeof(id), r->channels[i], r->epochs[i], r->last[i]) < 0) {
            buf_free(&b);
            return NULL;
        }
        buf_puts(&b, id);
    }
    buf_puts(&b, "\n\n");
    return conn_ctl_item(&b);
}

/* A resync for c in its format (hist.h), or on `flags` a fresh snapshot of
 * what c's filter selects (flags are state: that makes the client whole).
 * @return a control item with one reference, or NULL. */
static outq_ev_t *resync_item(gw_conn_t *c, const char *ch, const char *reason,
                              const char *epoch, uint64_t offset)
{
    const filter_t *f = c->sub ? subidx_filter(c->sub) : NULL;
    buf_t b, lid;
    int rc;

    if (f == NULL || !filter_wants_channel(f, ch, strlen(ch)))
        return NULL;
    if (strcmp(ch, "flags") == 0)
        return snapshot_item(c, epoch, offset);
    conn_ctl_buf(&b);
    ctl_cursor(c, ch, epoch, offset, &lid);
    rc = resync_render((outq_fmt_t)c->fmt, ch, reason, epoch, offset, lid.data, &b);
    buf_free(&lid);
    if (rc != 0) {
        buf_free(&b);
        return NULL;
    }
    return conn_ctl_item(&b);
}

/* A channel-wide resync from the Redis thread (r->fd < 0): every local
 * subscriber of the channel gets it, after what it already has queued. */
static void resync_all(gw_worker_t *w, gw_resume_t *r)
{
    gw_conn_t *lists[2] = { w->sse, w->ws }, *c, *next;
    size_t k;

    for (k = 0; k < 2; k++)
        for (c = lists[k]; c; c = next) {
            outq_ev_t *e;
            next = c->next;
            if (c->closing || c->resuming)
                continue;   /* a resuming one gets its own answer */
            e = resync_item(c, r->channels[0], r->reason[0], r->epochs[0], r->last[0]);
            if (e == NULL)
                continue;
            if (resume_start_find(c->starts, r->channels[0]) >= 0)   /* live again from there */
                conn_start_set(c, r->channels[0], r->epochs[0], r->last[0]);
            if (outq_push_ctl(&c->q, e) == OUTQ_OK)
                conn_flush(c);
            outq_ev_unref(e);
        }
    gw_resume_free(r);
}

/* The Redis thread's answer for c: resyncs (or fresh snapshots) for the
 * channels history could not honour, then the replayed events that c's
 * filter selects, then what was queued live meanwhile, minus what the
 * replay already covered. The replayed positions stay as c's floor, so a
 * live event that the replay already gave is never written twice. */
void replay_answer(gw_worker_t *w, gw_resume_t *r)
{
    gw_conn_t *c;
    const filter_t *f;
    outq_t nq;
    outq_ev_t *e;
    size_t i, replayed = 0;
    bool overflow = false, any_ok = false, flags_unsure = false;

    if (r->fd < 0) {
        resync_all(w, r);
        return;
    }
    c = (size_t)r->fd < w->nfd ? w->by_fd[r->fd] : NULL;
    if (c == NULL || c->serial != r->serial || !c->resuming || c->closing) {
        gw_resume_free(r);
        return;
    }
    f = c->sub ? subidx_filter(c->sub) : NULL;
    outq_init(&nq, (outq_fmt_t)c->fmt);
    /* the acknowledgement first (SSE prelude, WS subscribed), then the
     * snapshot: both only now that every new channel is subscribed */
    if (r->prelude && conn_transport(c)->ack)
        conn_transport(c)->ack(c, r);
    if (r->prelude)
        outq_push_ctl(&nq, r->prelude);
    /* where the stream starts on each channel it had no cursor for: live
     * events up to there are before its start (the floor) */
    for (i = 0; i < r->nch; i++)
        if (r->pos_only[i] && r->ok[i] && r->epochs[i] && c->pos)
            listcur_set(c->pos, r->channels[i], r->epochs[i], r->last[i]);
    /* A `since` for a channel the connection already streams (its inboxes,
     * started at `connected`): what came after its start came live, so the
     * replay stops there, and what is queued live is kept. */
    for (i = 0; i < r->nevs; i++) {
        const ev_t *dev = outq_ev_event(r->evs[i]);
        if (dev && resume_start_covers(c->starts, dev) && resume_streamed(c->starts, r, dev->channel)) {
            outq_ev_unref(r->evs[i]);
            memmove(r->evs + i, r->evs + i + 1, (r->nevs - i - 1) * sizeof(*r->evs));
            r->nevs--;
            i--;
        }
    }
    if (r->snapshot && f) {
        size_t k;
        for (k = 0; k < r->nch && !(r->pos_only[k] && strcmp(r->channels[k], "flags") == 0); k++)
            ;
        e = snapshot_item(c, k < r->nch && r->ok[k] ? r->epochs[k] : NULL, k < r->nch ? r->last[k] : 0);
        if (e) {
            outq_push_ctl(&nq, e);
            outq_ev_unref(e);
        }
    } else if (c->fmt == OUTQ_FMT_SSE && (e = position_item(c, r)) != NULL) {
        /* no snapshot carries the position: an id-only frame gives the
         * client a cursor before its first event (EventSource keeps it), so
         * a reconnect before then misses nothing either */
        outq_push_ctl(&nq, e);
        outq_ev_unref(e);
    }
    for (i = 0; i < r->nch; i++) {
        if (r->pos_only[i]) {
            any_ok |= r->ok[i];
            continue;
        }
        any_ok |= r->ok[i];
        if (!r->ok[i] && r->reason[i] &&
            (e = resync_item(c, r->channels[i], r->reason[i], r->epochs[i], r->last[i])) != NULL) {
            outq_push_ctl(&nq, e);
            outq_ev_unref(e);
        }
    }
    /* A change in the gap may have moved a flag out of the filter while
     * history does not say what it was before: then the flags part of the
     * replay is replaced by a snapshot at its end, which makes the flags
     * view whole (the other channels are replayed as usual). */
    for (i = 0; f && i < r->nevs && !flags_unsure; i++) {
        const ev_t *dev = outq_ev_event(r->evs[i]);
        flags_unsure = dev && outq_ev_prev(r->evs[i]) == NULL && resume_before_unknown(f, dev) &&
                       resume_replay_prev(r, i, dev->flag->id) == NULL;
    }
    if (flags_unsure) {
        size_t k;
        for (k = 0; k < r->nch && strcmp(r->channels[k], "flags") != 0; k++)
            ;
        e = snapshot_item(c, k < r->nch && r->ok[k] ? r->epochs[k] : NULL, k < r->nch ? r->last[k] : 0);
        if (e) {
            outq_push_ctl(&nq, e);
            outq_ev_unref(e);
        }
    }
    for (i = 0; i < r->nevs; i++) {
        const ev_t *dev = outq_ev_event(r->evs[i]);
        const flag_t *pv = outq_ev_prev(r->evs[i]);
        if (f && dev && pv == NULL && resume_before_unknown(f, dev))
            pv = resume_replay_prev(r, i, dev->flag->id);
        if (flags_unsure && dev && strcmp(dev->channel, "flags") == 0)
            continue;   /* the snapshot holds it */
        if (f && dev && (filter_match_event(f, dev) ||
                         (pv && filter_wants_channel(f, "flags", 5) && filter_match_flag(f, pv))) &&
            outq_ev_data(r->evs[i], (outq_fmt_t)c->fmt, NULL) != NULL &&
            outq_push_ctl(&nq, r->evs[i]) == OUTQ_OK)
            replayed++;
    }
    for (i = 0; i < r->nch; i++)
        if (!r->pos_only[i] && r->ok[i] && resume_streamed(c->starts, r, r->channels[i]))
            r->ok[i] = false;   /* live all along: no floor, nothing queued is a repeat */
    while ((e = outq_peek(&c->q, NULL, NULL)) != NULL) {
        const ev_t *dev = outq_ev_event(e);
        if (dev == NULL)
            outq_push_ctl(&nq, e);
        else if (!resume_dup(r, dev) && outq_push(&nq, e, &w->lim, NULL) == OUTQ_OVERFLOW)
            overflow = true;
        outq_pop(&c->q);
    }
    outq_clear(&c->q);
    c->q = nq;
    c->resuming = 0;
    /* from the answer on, each channel of it comes live (after its replay,
     * its resync, or from its start) */
    for (i = 0; i < r->nch; i++)
        if (r->epochs[i] && (r->ok[i] || r->reason[i]) && resume_start_find(c->starts, r->channels[i]) < 0)
            conn_start_set(c, r->channels[i], r->epochs[i], r->last[i]);

    metric_add(w->g->m.deliveries, (int64_t)replayed);
    for (i = 0; i < r->nch; i++)
        log_debug("resumed", "conn=%u channel=%s from=%llu recovered=%s to=%llu reason=\"%s\"", c->serial,
                  r->channels[i], (unsigned long long)r->offsets[i], r->ok[i] ? "true" : "false",
                  (unsigned long long)r->last[i], r->reason[i] ? r->reason[i] : "");
    /* keep the positions (not the events) as the floor */
    for (i = 0; i < r->nevs; i++)
        outq_ev_unref(r->evs[i]);
    free(r->evs);
    r->evs = NULL;
    r->nevs = r->cap = 0;
    if (r->prelude) {
        outq_ev_unref(r->prelude);
        r->prelude = NULL;
    }
    /* the replayed positions are the floor; those of the previous floor
     * still at the seam stay */
    c->floor = resume_floor_next(r, any_ok, c->floor);
    if (c->rq) {
        /* the connection's next request: the answer of this one is
         * queued (written once that one is answered too) */
        gw_resume_t *n = c->rq;
        c->rq = n->next;
        n->next = NULL;
        replay_start(w, c, n);
    }
    if (overflow) {
        metric_inc(w->g->m.slow_disconnects);
        log_warn("slow consumer disconnected", "conn=%u transport=%s reason=\"queue over limit during replay\"",
                 c->serial, conn_kind_name(c));
        conn_kill(c, "slow consumer");
        return;
    }
    conn_flush(c);
}

/* A start request whose answer is written after the acknowledgement in b
 * (takes b's storage). @return it, or NULL. */
gw_resume_t *replay_ack_request(buf_t *b)
{
    gw_resume_t *r = b->err ? NULL : gw_resume_new(4);

    if (r == NULL || (r->prelude = conn_ctl_item(b)) == NULL) {
        buf_free(b);
        gw_resume_free(r);
        return NULL;
    }
    return r;
}

/* Sends r for c (takes r): c queues live events until the answer. A
 * request while another is under way waits for it (answers stay in the
 * order of the requests); one naming no channel only writes its prelude. */
void replay_start(gw_worker_t *w, gw_conn_t *c, gw_resume_t *r)
{
    if (c->resuming) {
        gw_resume_t **pp = &c->rq;
        while (*pp)
            pp = &(*pp)->next;
        *pp = r;
        return;
    }
    if (r->nch > 0) {
        r->worker = w->id;
        r->serial = c->serial;
        r->fd = c->fd;
        c->resuming = 1;
        if (w->g->bus.resume(r) == 0)
            return;
        c->resuming = 0;   /* the Redis thread is gone: what can be said now */
    }
    if (r->prelude)
        outq_push_ctl(&c->q, r->prelude);
    if (r->snapshot) {
        outq_ev_t *e = snapshot_item(c, NULL, 0);
        if (e) {
            outq_push_ctl(&c->q, e);
            outq_ev_unref(e);
        }
    }
    gw_resume_free(r);
    conn_flush(c);
}
