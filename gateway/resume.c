/*
 * resume — requests to the Redis thread and the pure rules of replays,
 * floors and starts (resume.h).
 */
#include "gateway/resume.h"
#include "gateway/resync.h"

#include <stdlib.h>
#include <string.h>

gw_resume_t *gw_resume_new(size_t n)
{
    gw_resume_t *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    if (n == 0)
        n = 1;
    r->channels = calloc(n, sizeof(*r->channels));
    r->epochs = calloc(n, sizeof(*r->epochs));
    r->offsets = calloc(n, sizeof(*r->offsets));
    r->ok = calloc(n, sizeof(*r->ok));
    r->reason = calloc(n, sizeof(*r->reason));
    r->pos_only = calloc(n, sizeof(*r->pos_only));
    r->last = calloc(n, sizeof(*r->last));
    r->capch = n;
    if (!r->channels || !r->epochs || !r->offsets || !r->ok || !r->reason || !r->pos_only ||
        !r->last) {
        gw_resume_free(r);
        return NULL;
    }
    return r;
}

#define GROW(a, n)                                       \
    do {                                                 \
        void *np_ = realloc((a), (n) * sizeof(*(a)));    \
        if (np_ == NULL)                                 \
            return -1;                                   \
        (a) = np_;                                       \
    } while (0)

static int resume_grow(gw_resume_t *r)
{
    size_t n = r->capch * 2;

    GROW(r->channels, n);
    GROW(r->epochs, n);
    GROW(r->offsets, n);
    GROW(r->ok, n);
    GROW(r->reason, n);
    GROW(r->pos_only, n);
    GROW(r->last, n);
    r->capch = n;
    return 0;
}
#undef GROW

long gw_resume_push(gw_resume_t *r, const char *ch, size_t chlen, const char *epoch,
                    size_t elen, uint64_t offset)
{
    size_t i = r->nch;

    if (i == r->capch && resume_grow(r) != 0)
        return -1;
    r->channels[i] = strndup(ch, chlen);
    r->epochs[i] = epoch ? strndup(epoch, elen) : NULL;
    if (r->channels[i] == NULL || (epoch && r->epochs[i] == NULL)) {
        free(r->channels[i]);
        free(r->epochs[i]);
        return -1;
    }
    r->offsets[i] = offset;
    r->ok[i] = false;
    r->reason[i] = NULL;
    r->pos_only[i] = false;
    r->last[i] = offset;
    r->nch++;
    return (long)i;
}

void gw_resume_free(gw_resume_t *r)
{
    size_t i;

    if (r == NULL)
        return;
    for (i = 0; i < r->nch; i++) {
        free(r->channels[i]);
        free(r->epochs[i]);
    }
    for (i = 0; i < r->nevs; i++)
        outq_ev_unref(r->evs[i]);
    if (r->prelude)
        outq_ev_unref(r->prelude);
    free(r->evs);
    free(r->channels);
    free(r->epochs);
    free(r->offsets);
    free(r->ok);
    free(r->reason);
    free(r->pos_only);
    free(r->last);
    free(r);
}

bool resume_has(const gw_resume_t *r, const char *ch)
{
    size_t i;

    for (i = 0; i < r->nch; i++)
        if (strcmp(r->channels[i], ch) == 0)
            return true;
    return false;
}

int resume_add(gw_resume_t *r, const filter_t *f, const char *ch, size_t chlen,
               const char *epoch, size_t elen, uint64_t offset)
{
    size_t i;

    if (!filter_wants_channel(f, ch, chlen))
        return -1;
    for (i = 0; i < r->nch; i++)
        if (strlen(r->channels[i]) == chlen && memcmp(r->channels[i], ch, chlen) == 0)
            return -1;
    return gw_resume_push(r, ch, chlen, epoch, elen, offset) < 0 ? -1 : 0;
}

void resume_add_starts(gw_resume_t *r, const filter_t *f, const filter_t *old)
{
    size_t i;

    if (f->flags != FILTER_FLAGS_NONE && (old == NULL || old->flags == FILTER_FLAGS_NONE) &&
        resume_add(r, f, "flags", 5, HIST_EPOCH_NONE, 1, 0) == 0)
        r->pos_only[r->nch - 1] = true;
    for (i = 0; i < f->nchannels; i++) {
        const char *ch = f->channels[i];
        size_t n = strlen(ch);
        if (old && filter_wants_channel(old, ch, n))
            continue;
        if (resume_add(r, f, ch, n, HIST_EPOCH_NONE, 1, 0) == 0)
            r->pos_only[r->nch - 1] = true;
    }
}

bool resume_dup(const gw_resume_t *r, const ev_t *ev)
{
    size_t i;

    for (i = 0; i < r->nch; i++)
        if (r->ok[i] && ev->offset <= r->last[i] && strcmp(ev->channel, r->channels[i]) == 0 &&
            r->epochs[i] && ev->epoch && strcmp(ev->epoch, r->epochs[i]) == 0)
            return true;
    return false;
}

bool resume_floor_dup(gw_resume_t **floor, const ev_t *ev)
{
    gw_resume_t *r = *floor;
    bool left = false;
    size_t i;

    if (resume_dup(r, ev))
        return true;
    for (i = 0; i < r->nch; i++) {
        if (r->ok[i] && strcmp(ev->channel, r->channels[i]) == 0)
            r->ok[i] = false;
        left |= r->ok[i];
    }
    if (!left) {
        gw_resume_free(r);
        *floor = NULL;
    }
    return false;
}

gw_resume_t *resume_floor_next(gw_resume_t *r, bool any_ok, gw_resume_t *old)
{
    size_t i;

    for (i = 0; old && i < old->nch; i++) {
        long k;
        if (!old->ok[i] || old->epochs[i] == NULL || resume_has(r, old->channels[i]))
            continue;
        k = gw_resume_push(r, old->channels[i], strlen(old->channels[i]), old->epochs[i],
                           strlen(old->epochs[i]), old->offsets[i]);
        if (k >= 0) {
            r->ok[k] = true;
            r->last[k] = old->last[i];
            any_ok = true;
        }
    }
    gw_resume_free(old);
    if (!any_ok) {
        gw_resume_free(r);
        return NULL;
    }
    return r;
}

long resume_start_find(const gw_resume_t *starts, const char *ch)
{
    size_t i;

    for (i = 0; starts && i < starts->nch; i++)
        if (starts->ok[i] && strcmp(starts->channels[i], ch) == 0)
            return (long)i;
    return -1;
}

void resume_start_set(gw_resume_t **starts, const char *ch, const char *epoch, uint64_t offset)
{
    gw_resume_t *s = *starts;
    long i = -1;
    size_t k;
    char *e;

    if (epoch == NULL)
        return;
    for (k = 0; s && k < s->nch; k++)   /* a forgotten one too */
        if (strcmp(s->channels[k], ch) == 0)
            i = (long)k;
    if (i >= 0) {
        s->ok[i] = true;
        if ((e = strdup(epoch)) == NULL) {
            s->ok[i] = false;
            return;
        }
        free(s->epochs[i]);
        s->epochs[i] = e;
        s->last[i] = offset;
        return;
    }
    if (s == NULL && (s = *starts = gw_resume_new(2)) == NULL)
        return;
    i = gw_resume_push(s, ch, strlen(ch), epoch, strlen(epoch), offset);
    if (i >= 0) {
        s->ok[i] = true;
        s->last[i] = offset;
    }
}

void resume_starts_prune(gw_resume_t *starts, const filter_t *f)
{
    size_t i;

    for (i = 0; starts && i < starts->nch; i++)
        if (f == NULL || !filter_wants_channel(f, starts->channels[i], strlen(starts->channels[i])))
            starts->ok[i] = false;
}

bool resume_streamed(const gw_resume_t *starts, const gw_resume_t *r, const char *ch)
{
    size_t i;

    if (resume_start_find(starts, ch) < 0)
        return false;
    for (i = 0; i < r->nch; i++)
        if (!r->pos_only[i] && strcmp(r->channels[i], ch) == 0)
            return true;
    return false;
}

bool resume_start_covers(const gw_resume_t *starts, const ev_t *ev)
{
    long i = resume_start_find(starts, ev->channel);

    /* "-": it began before the channel had history, so all of it came live */
    return i >= 0 && (strcmp(starts->epochs[i], HIST_EPOCH_NONE) == 0 ||
                      (strcmp(starts->epochs[i], ev->epoch) == 0 && ev->offset > starts->last[i]));
}

bool resume_before_unknown(const filter_t *f, const ev_t *ev)
{
    return f->flags == FILTER_FLAGS_SOME && f->ntags > 0 && ev->flag && ev->type != EV_FLAG_CREATED &&
           strcmp(ev->channel, "flags") == 0 && !filter_match_event(f, ev);
}

const flag_t *resume_replay_prev(const gw_resume_t *r, size_t i, uint64_t id)
{
    while (i-- > 0) {
        const ev_t *ev = outq_ev_event(r->evs[i]);
        if (ev && ev->flag && ev->flag->id == id && strcmp(ev->channel, "flags") == 0)
            return ev->flag;
    }
    return NULL;
}
