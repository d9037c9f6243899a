/*
 * subidx — the subscription index of one gateway event loop: given an event,
 * find the connections that want it with work in proportion to the
 * candidates, not to every connection.
 *
 * Each subscription (one connection, an opaque owner pointer) holds a copy of
 * its filter (filter.h) and is registered in buckets of one hash table:
 *   - ("c", name)  for every logical channel it needs, "flags" included when
 *                  its flags mode is not NONE: the per-channel reference
 *                  count (number of subscriptions in the bucket);
 *   - ("a")        every subscription in mode ALL;
 *   - mode SOME: in ONE dimension only, the first non-empty of keys, ids,
 *     tags: ("k", key) for each key, or ("i", id) for each id, or ("t", tag)
 *     for each tag. The other dimensions are checked by filter_match_flag on
 *     the candidates, which gives the AND-across-dimensions rule.
 * A lookup of a flag event visits "a", ("k", flag key), ("i", flag id) and
 * ("t", tag) for each of the flag's tags; a per-lookup generation stamp on
 * each subscription dedupes (no allocation). A lookup of an event on another
 * channel visits ("c", channel). A flag-less event on "flags" goes to the
 * whole ("c", "flags") bucket.
 *
 * Removal is O(registrations of that subscription): each registration is a
 * node in a doubly linked list of its bucket; an emptied bucket is freed.
 *
 * Channel reference counting: the channel callback is called with on=true
 * when a logical channel gets its first subscription in this index (the
 * caller SUBSCRIBEs P:ch:{ch}) and on=false when it loses its last (the
 * caller UNSUBSCRIBEs). On an update, new registrations are made before old
 * ones are dropped, so a channel kept by the update does not flap. The
 * callback runs synchronously inside subidx_add/update/remove and must not
 * call back into the index.
 *
 * Not thread-safe: one index per event-loop thread (or the caller locks).
 */
#ifndef FLAGCAST_GW_SUBIDX_H
#define FLAGCAST_GW_SUBIDX_H

#include <stdbool.h>
#include <stddef.h>
#include "gateway/filter.h"
#include "proto/event.h"

typedef struct subidx subidx_t;
typedef struct subidx_sub subidx_sub_t;   /* one subscription */

/* name is NUL-terminated and valid only during the call. */
typedef void (*subidx_chan_cb)(void *arg, const char *channel, bool on);
/* Called once per matching subscription during subidx_lookup. */
typedef void (*subidx_visit_cb)(void *arg, void *owner);

/* @return a new empty index, or NULL on allocation failure. chan_cb may be
 * NULL. */
subidx_t *subidx_new(subidx_chan_cb chan_cb, void *chan_arg);
/* Frees the index and every subscription still in it (no callbacks). */
void      subidx_free(subidx_t *idx);

/* Adds a subscription for owner with a copy of f. @return the subscription
 * (owned by the index until subidx_remove), or NULL on allocation failure
 * (nothing changed, no callback). */
subidx_sub_t *subidx_add(subidx_t *idx, void *owner, const filter_t *f);
/* Replaces the subscription's filter with a copy of f. @return 0 on success,
 * -1 on allocation failure (the old filter and registrations stay). */
int       subidx_update(subidx_t *idx, subidx_sub_t *s, const filter_t *f);
/* Removes and frees the subscription (callbacks for channels it was the last
 * one of). NULL is a no-op. */
void      subidx_remove(subidx_t *idx, subidx_sub_t *s);

/* The subscription's current filter (owned by the index; valid until the
 * next update/remove of s) and its owner (subidx_owner: tests only; the
 * lookups hand the owner to their callback). */
const filter_t *subidx_filter(const subidx_sub_t *s);
void           *subidx_owner(const subidx_sub_t *s);

/* Calls visit once for every subscription whose filter matches ev
 * (filter_match_event). Not re-entrant: visit must not add, update or
 * remove subscriptions (collect, then act). Tests only: the gateway uses
 * subidx_lookup_change. @return the number of matches. */
size_t    subidx_lookup(subidx_t *idx, const ev_t *ev, subidx_visit_cb visit, void *arg);
/* The same for a flag change whose flag was prev before (NULL: unknown or
 * new): a subscription also matches if its filter selected prev, so a
 * connection whose filter the flag leaves (a tag removed, a delete) gets
 * the event with the new record and sees it go. */
size_t    subidx_lookup_change(subidx_t *idx, const ev_t *ev, const flag_t *prev,
                               subidx_visit_cb visit, void *arg);

/* Calls fn for every logical channel that currently has subscribers, with
 * its count. Tests only (the Redis thread keeps its own counts). */
void      subidx_foreach_channel(const subidx_t *idx,
                                 void (*fn)(void *arg, const char *channel, size_t count),
                                 void *arg);
/* Number of subscriptions of logical channel ch (0 if none). Tests only. */
size_t    subidx_channel_count(const subidx_t *idx, const char *ch);

typedef struct subidx_stats {
    size_t subs;          /* subscriptions in the index */
    size_t channels;      /* logical channels with at least one subscription */
    size_t buckets;       /* non-empty buckets of every kind */
    size_t last_visited;  /* subscriptions examined by the last lookup */
} subidx_stats_t;
/* Tests and benchmarks only. */
void      subidx_get_stats(const subidx_t *idx, subidx_stats_t *st);

#endif
