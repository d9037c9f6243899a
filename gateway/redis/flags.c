/*
 * flags — the Redis thread's flags mirror (see flags.h).
 *
 * `HGETALL P:flags` (on the cmd connection) fills the mirror once `flags`
 * is subscribed (subscribe first, so no change falls between the two; an
 * event seen twice is ignored by version). After that every flag event of
 * `flags`, in offset order from history.c, updates the mirror under the
 * write lock; when the change selects other connections than the new record
 * (tags changed, or the flag is gone), the record before it is attached to
 * the event (`prev`), so the filters the flag leaves get the change too.
 * Every event then goes to the service threads (g->bus.dispatch).
 *
 * A flags resync (history lost, restarted, rolled back) reloads the mirror;
 * flag events that come meanwhile are held, applied to the fresh mirror and
 * never written on their own: the snapshot, at the position after them,
 * holds them.
 *
 * Readiness (/readyz): the sub connection is up, `flags` is subscribed and
 * the mirror is loaded.
 */
#include "gateway/redis/flags.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* This file's state, set by flags_init. */
static struct {
    gw_t         *g;
    rconn_t      *sub_rc, *cmd_rc;
    chan_table_t *chans;
    bool          flags_subscribed, mirror_loaded, load_pending;
    /* A resync of `flags` waiting for a fresh mirror */
    struct {
        bool        pending, has_epoch;
        const char *reason;
        char        epoch[EV_MAX_EPOCH + 1];
        uint64_t    pos;
        /* flag events that came while the mirror reloads: applied to the
         * fresh mirror before the snapshot is posted, never written on their
         * own (the snapshot, at the position after them, holds them) */
        outq_ev_t **held;
        size_t      nheld, capheld;
    } resync;
} F;

/* ==== readiness ==== */

static void update_ready(void)
{
    bool r = rconn_ready(F.sub_rc) && F.flags_subscribed && F.mirror_loaded;

    if (r != atomic_load(&F.g->ready)) {
        atomic_store(&F.g->ready, r);
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
    F.load_pending = false;
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
    pthread_rwlock_wrlock(&F.g->mirror_lock);
    if (mirror_load(F.g->mirror, vals, lens, n, &nbad, err, sizeof(err)) == 0) {
        F.mirror_loaded = true;
        atomic_store(&F.g->mirror_ever, true);
    }
    pthread_rwlock_unlock(&F.g->mirror_lock);
    free(vals);
    free(lens);
    if (nbad) {
        char q[200];
        log_warn("flag records skipped in mirror load", "count=%zu first_error=%s", nbad,
                 log_q(q, sizeof(q), err));
    }
    log_info("flags mirror loaded", "flags=%zu", n - nbad);
    update_ready();
    if (F.resync.pending && F.mirror_loaded) {
        /* The snapshot's id is where flags stand now, not where the resync
         * was decided: the events that came while the mirror reloaded are
         * applied to it first (the reload may have read Redis before some
         * of them), so the snapshot holds them and a cursor never goes
         * back (after FLUSHALL the new epoch's first event comes before the
         * reload ends); none of them is written before the snapshot. */
        gw_chan_t *fc = chan_get(F.chans, "flags", false);
        bool now = fc && fc->known && fc->epoch[0];
        pthread_rwlock_wrlock(&F.g->mirror_lock);
        for (i = 0; i < F.resync.nheld; i++)
            mirror_apply(F.g->mirror, outq_ev_event(F.resync.held[i]));
        pthread_rwlock_unlock(&F.g->mirror_lock);
        for (i = 0; i < F.resync.nheld; i++)
            outq_ev_unref(F.resync.held[i]);
        F.resync.nheld = 0;
        F.resync.pending = false;
        F.g->bus.resync("flags", F.resync.reason,
                      now ? fc->epoch : F.resync.has_epoch ? F.resync.epoch : NULL,
                      now ? fc->last : F.resync.pos);
    }
}

static void maybe_load(void)
{
    if (F.mirror_loaded || F.load_pending || !F.flags_subscribed || !rconn_ready(F.cmd_rc))
        return;
    if (rconn_command(F.cmd_rc, on_hgetall, NULL, "HGETALL %s:flags", F.g->cfg.prefix) == 0)
        F.load_pending = true;
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
    if (F.resync.nheld == F.resync.capheld) {
        size_t cap = F.resync.capheld ? F.resync.capheld * 2 : 64;
        outq_ev_t **p = realloc(F.resync.held, cap * sizeof(*p));
        if (p == NULL)
            return false;
        F.resync.held = p;
        F.resync.capheld = cap;
    }
    F.resync.held[F.resync.nheld++] = outq_ev_ref(oev);
    return true;
}

void flags_deliver(outq_ev_t *oev)
{
    const ev_t *ev = outq_ev_event(oev);

    if (ev && ev_type_is_flag(ev->type) && strcmp(ev->channel, "flags") == 0) {
        const flag_t *old;
        flag_t *prev = NULL;

        /* a flags resync waits for the reload: its snapshot holds this */
        if (F.resync.pending && hold_flag_event(oev))
            return;

        pthread_rwlock_wrlock(&F.g->mirror_lock);
        /* what the flag was, when that selects other connections than the
         * new record (tags changed, or gone): they get the change too */
        old = ev->flag && ev->flag->key ? mirror_get(F.g->mirror, ev->flag->key, strlen(ev->flag->key)) : NULL;
        if (old && !outq_ev_prev(oev) && (ev->type == EV_FLAG_DELETED || !same_selection(old, ev->flag)) &&
            (prev = calloc(1, sizeof(*prev))) != NULL && flag_copy(prev, old) != 0) {
            free(prev);
            prev = NULL;
        }
        mirror_apply(F.g->mirror, ev);
        pthread_rwlock_unlock(&F.g->mirror_lock);
        if (prev)
            outq_ev_set_prev(oev, prev);
    }
    F.g->bus.dispatch(oev);
}

void flags_resync(const char *reason, const char *epoch, uint64_t pos)
{
    F.resync.pending = true;
    F.resync.reason = reason;
    F.resync.has_epoch = epoch != NULL;
    snprintf(F.resync.epoch, sizeof(F.resync.epoch), "%s", epoch ? epoch : "");
    F.resync.pos = pos;
    F.mirror_loaded = false;   /* what the mirror holds may be gone: reload */
    maybe_load();
}

void flags_subscribed(void)
{
    F.flags_subscribed = true;
    maybe_load();
    update_ready();
}

void flags_sub_lost(void)
{
    gw_chan_t *fc = chan_get(F.chans, "flags", false);

    F.flags_subscribed = false;
    /* With a known flags position the fill after the resubscribe
     * brings the mirror up to date in order, and each filled change is
     * compared with the record just before it (a flag leaving a filter
     * is told). A reload now would put a newer record there, so a
     * filled change that moved the flag out of a filter would look
     * like no move (the chaos checker found it). Without a position,
     * or when the fill cannot cover the gap (resync), it is reloaded. */
    if (!(fc && fc->known && fc->epoch[0]))
        F.mirror_loaded = false;
    F.load_pending = false;
    update_ready();
}

void flags_cmd_state(bool connected)
{
    if (connected)
        maybe_load();
    else
        F.load_pending = false;
}

void flags_init(gw_t *g, rconn_t *sub, rconn_t *cmd, chan_table_t *chans)
{
    F.g = g;
    F.sub_rc = sub;
    F.cmd_rc = cmd;
    F.chans = chans;
}

void flags_shutdown(void)
{
    size_t i;

    for (i = 0; i < F.resync.nheld; i++)
        outq_ev_unref(F.resync.held[i]);
    free(F.resync.held);
    F.resync.held = NULL;
    F.resync.nheld = F.resync.capheld = 0;
}
