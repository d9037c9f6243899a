/*
 * chan — the Redis thread's per-channel record and its hash table (chan.c),
 * a leaf: it calls nothing else in redis/.
 *
 * One record per logical channel: the subscription refcount (redis.c) and
 * the channel's history state (history.c: ordering and fills; replay.c:
 * client resumes) are parts of the same record, so a live message costs one
 * lookup. A record is in the table while service threads want the channel
 * (count > 0) or its history part is in use (`hist`: set by hist_live on
 * `flags`, hist_subscribed and replay_resume). When the last local
 * subscriber goes, redis.c unlinks it (chan_unlink, which marks it `dead`)
 * and calls hist_forget; history commands still in flight (`refs`) keep an
 * unlinked record alive and the last callback frees it (replay_release).
 *
 * Every function runs on the Redis thread.
 */
#ifndef FLAGCAST_GATEWAY_REDIS_CHAN_H
#define FLAGCAST_GATEWAY_REDIS_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "gateway/outq.h"
#include "proto/event.h"

#define CHAN_BUCKETS 4096

/* A growable array of event references (each element holds one). */
typedef struct chan_evvec {
    outq_ev_t **v;
    size_t      n, cap;
} chan_evvec_t;

struct replay_wait;   /* a resume waiting on the channel (replay.c) */

typedef struct gw_chan {
    struct gw_chan *next;          /* hash chain */
    /* subscription (redis.c) */
    long            count;         /* service threads that want it */
    bool            subscribed;    /* SUBSCRIBE sent on the current connection */
    /* history and recovery (history.c, replay.c) */
    bool            hist;          /* the history part is in use */
    unsigned        refs;          /* history commands in flight */
    bool            dead;          /* unlinked; freed by the last callback */
    bool            confirmed;     /* SUBSCRIBE confirmed on the current connection */
    bool            known;         /* epoch/last hold the position delivered last
                                    * (epoch "": the channel had no history yet) */
    bool            filling, reading;
    bool            retry_fill, retry_read;
    bool            fill_check;    /* the fill waits for its P:meta check */
    unsigned        fill_gen;
    char            epoch[EV_MAX_EPOCH + 1];
    uint64_t        last;
    chan_evvec_t    held;          /* live events behind a fill */
    size_t          held_mark;     /* held before the fill's last page was asked */
    size_t          fill_n;
    /* the resume window (replay.c) */
    bool            wvalid, wtrunc;
    char            wepoch[EV_MAX_EPOCH + 1];      /* "" when the channel has no meta */
    uint64_t        wfrom, wmeta_off;
    chan_evvec_t    win;           /* consecutive offsets */
    uint64_t        wused_ns;
    uint64_t        rfrom;         /* the read under way */
    bool            pmeta_pending; /* the position read (P:meta) after the first SUBSCRIBE */
    struct replay_wait *waiters;
    char            name[];
} gw_chan_t;

/* The table; zero-initialised is empty. */
typedef struct chan_table {
    gw_chan_t *b[CHAN_BUCKETS];
} chan_table_t;

/* The record of channel name, created (zeroed, count 0) if absent and
 * create is set. @return it, or NULL (absent, or out of memory). */
gw_chan_t *chan_get(chan_table_t *t, const char *name, bool create);
/* Takes c out of the table and marks it dead (it is not freed). */
void chan_unlink(chan_table_t *t, gw_chan_t *c);
/* Calls fn for every record in the table. */
void chan_each(chan_table_t *t, void (*fn)(gw_chan_t *));
/* Takes the first record out of the table. @return it, or NULL if empty. */
gw_chan_t *chan_pop(chan_table_t *t);
/* Frees a record and its event vectors (held, window); its waiters must be
 * gone already (replay_clear). */
void chan_free(gw_chan_t *c);

/* Appends e (takes the reference). @return 0, or -1 (out of memory: the
 * reference is still the caller's). */
int  chan_evvec_push(chan_evvec_t *v, outq_ev_t *e);
/* Drops every reference and the array. */
void chan_evvec_clear(chan_evvec_t *v);

#endif
