/*
 * resume — a connection's request to the Redis thread and its answer, and
 * the pure rules a service thread applies with them (no I/O, no lws):
 * duplicates against a replay, the floor a replay leaves, and where each
 * channel a WS connection streams began.
 *
 * A request asks to replay what a client missed (SSE Last-Event-ID, WS
 * subscribe "since"), or only where a channel it starts to receive stands
 * (pos_only), so that its start is acknowledged only once the channel's
 * SUBSCRIBE is confirmed and nothing published after the acknowledgement
 * can be missed. Created by a service thread, filled by the Redis thread
 * (XRANGE P:hist:<ch> after checking P:meta:<ch>), handed back to the same
 * service thread. Whoever holds it owns it. The per-channel arrays hold nch
 * entries (room for capch).
 *
 * The same type serves as a connection's *floor* (after a replay, per
 * channel the last offset replayed: live events at or below are dropped)
 * and its *starts* (WS: per channel, where it began streaming live).
 */
#ifndef FLAGCAST_GATEWAY_RESUME_H
#define FLAGCAST_GATEWAY_RESUME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "gateway/filter.h"
#include "gateway/outq.h"
#include "proto/event.h"

#define GW_RESUME_MAX_EVENTS   10000 /* default FLAGCAST_RESUME_MAX_EVENTS: beyond, resync */
#define GW_RESUME_MAX_CHANNELS 16    /* items of one client cursor */

typedef struct gw_resume {
    struct gw_resume *next;      /* the connection's requests after this one */
    int         worker;
    uint32_t    serial;          /* the connection, as the worker knows it */
    int         fd;              /* < 0: a channel-wide resync, no connection */
    size_t      nch, capch;
    char      **channels;        /* owned */
    char      **epochs;          /* owned */
    uint64_t   *offsets;         /* the client's position */
    /* answer */
    bool       *ok;              /* history covered the gap / position known */
    const char **reason;         /* !ok: why (static string) */
    bool       *pos_only;        /* only the channel's current position
                                  * (epoch, last) is asked: ok + epochs/last */
    uint64_t   *last;            /* last offset replayed, or the cursor */
    outq_ev_t **evs;             /* replayed events, channel by channel, in order */
    size_t      nevs, cap;
    /* service thread only: written first when the answer comes (the SSE
     * prelude, a WS `subscribed`), then a flags snapshot if asked */
    outq_ev_t  *prelude;
    bool        snapshot;
} gw_resume_t;

/* @return an empty request with room for n channels, or NULL. */
gw_resume_t *gw_resume_new(size_t n);
/* Appends a channel entry (copies ch and epoch; epoch may be NULL).
 * @return its index, or -1. */
long gw_resume_push(gw_resume_t *r, const char *ch, size_t chlen, const char *epoch,
                    size_t elen, uint64_t offset);
void gw_resume_free(gw_resume_t *r);

/* True if r names ch. */
bool resume_has(const gw_resume_t *r, const char *ch);
/* Adds a channel position to r if f wants the channel and r does not name
 * it yet. @return 0, or -1 if it was skipped. */
int  resume_add(gw_resume_t *r, const filter_t *f, const char *ch, size_t chlen,
                const char *epoch, size_t elen, uint64_t offset);
/* Asks the position (pos_only) of every channel f wants that r does not
 * name yet and `old` (NULL: none) did not want: the channels a request
 * starts. */
void resume_add_starts(gw_resume_t *r, const filter_t *f, const filter_t *old);

/* True if a live event was already replayed by r (same channel, same
 * epoch — a restarted history starts again at offset 1 —, offset not above
 * the last one replayed). */
bool resume_dup(const gw_resume_t *r, const ev_t *ev);
/* resume_dup against a connection's floor (*floor not NULL); a channel
 * whose live events have passed the floor (or moved to another epoch)
 * leaves it, and the floor is freed (*floor NULL) once no channel is left,
 * so only connections still at the seam pay. */
bool resume_floor_dup(gw_resume_t **floor, const ev_t *ev);
/* The floor after answer r: r's replayed positions plus the positions of
 * the previous floor `old` (taken, freed) still at the seam that r does not
 * name. @return r as the new floor, or NULL (nothing left: r freed). */
gw_resume_t *resume_floor_next(gw_resume_t *r, bool any_ok, gw_resume_t *old);

/* The starts of a WS connection: where each channel it streams began (or
 * was last resynced), live ever since. */
/* @return the index of ch in starts (NULL: none), or -1. */
long resume_start_find(const gw_resume_t *starts, const char *ch);
/* Records that ch is streamed live from (epoch, offset) on (epoch NULL:
 * nothing recorded); *starts is created on first use. */
void resume_start_set(gw_resume_t **starts, const char *ch, const char *epoch, uint64_t offset);
/* Forgets the starts of channels f (NULL: none) no longer streams (a later
 * `since` for them must replay everything after it). */
void resume_starts_prune(gw_resume_t *starts, const filter_t *f);
/* True if ch is a `since` channel of r (not a new start) already streamed
 * before r (started by an earlier answer: r's own are recorded after it is
 * applied). */
bool resume_streamed(const gw_resume_t *starts, const gw_resume_t *r, const char *ch);
/* True if the connection already got ev live: it streams ev's channel since
 * a start at or before it, in the same epoch. */
bool resume_start_covers(const gw_resume_t *starts, const ev_t *ev);

/* A replayed flag change whose record before it matters (f selects flags by
 * tag, the change is no create, and the record after it does not match: it
 * may have left the filter) but that a history read cannot carry. */
bool resume_before_unknown(const filter_t *f, const ev_t *ev);
/* The record before replayed event i of r: the flag as an earlier event of
 * the same replay left it, or NULL (its last change is before the gap). */
const flag_t *resume_replay_prev(const gw_resume_t *r, size_t i, uint64_t id);

#endif
