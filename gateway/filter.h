/*
 * filter — what one gateway connection wants to receive, and whether an
 * event matches it.
 *
 * A filter has two parts:
 *
 *   - the `flags` channel, in one of three modes:
 *       FILTER_FLAGS_NONE  the connection does not receive flag events;
 *       FILTER_FLAGS_ALL   every flag event (subscribeAll, or no flag filter);
 *       FILTER_FLAGS_SOME  flag events selected by keys / ids / tags, with
 *                          Flagent's semantics: within one dimension any
 *                          listed value matches (OR); across dimensions all
 *                          given dimensions must match (AND). So flagKey=a
 *                          and flagID=7 both given means the flag must be
 *                          key a AND id 7. An empty dimension does not
 *                          constrain. A deleted flag matches by the key, id
 *                          and tags of the record carried in the event.
 *     While the mode is ALL the key/id/tag sets are kept (ignored), so that
 *     leaving subscribeAll goes back to the earlier selection.
 *   - a set of other logical channels (application channels, user:/role:
 *     inboxes), never containing "flags" itself.
 *
 * Every set is a sorted array without duplicates (bsearch for membership),
 * bounded by a max_items argument (FILTER_MAX_ITEMS by default, per list).
 *
 * A request (filter_req_t) is what a client asked for in one SSE query or
 * one WS subscribe/unsubscribe message; it is applied to a filter with the
 * rules below.
 *
 * filter_subscribe(f, r):
 *   - r's channels are added; keys/ids/tags are added to f's sets;
 *   - r.subscribe_all                 → mode ALL;
 *   - else r has keys, ids or tags    → mode SOME (unless already ALL);
 *   - else "flags" listed in channels → mode ALL if it was NONE.
 * filter_unsubscribe(f, r):
 *   - r's channels are removed; "flags" listed → mode NONE and f's key/id/
 *     tag sets are cleared;
 *   - r's keys/ids/tags are removed from f's sets;
 *   - r.subscribe_all and mode ALL    → SOME if sets remain, else NONE;
 *   - mode SOME with every set empty  → NONE (never widens to "all").
 *   Note that removing the last value of one dimension widens the match
 *   (AND of fewer dimensions), as Flagent's rule implies.
 * filter_from_req(f, r, default_flags) = filter_subscribe on an empty filter,
 *   then, if default_flags and the request named no channel at all and gave
 *   no flag filter, mode ALL. SSE passes default_flags=true: an SSE request
 *   with no `channels=` gets `flags` (all of them, or those its flag filters
 *   select); with `channels=` it gets those channels, plus `flags` only if
 *   `flags` is listed or flag filters were given. A WS connection passes
 *   false if it should start with nothing until its first subscribe.
 *
 * Pure, single-threaded per filter, no I/O.
 */
#ifndef FLAGCAST_GW_FILTER_H
#define FLAGCAST_GW_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "proto/event.h"
#include "proto/flag.h"

#define FILTER_MAX_ITEMS 256   /* default bound of each list (keys, ids, tags, channels) */

typedef enum filter_flags {
    FILTER_FLAGS_NONE = 0,
    FILTER_FLAGS_ALL,
    FILTER_FLAGS_SOME
} filter_flags_t;

typedef struct filter {
    filter_flags_t flags;
    char     **channels; uint32_t nchannels;  /* sorted (strcmp), unique, owned */
    char     **keys;     uint32_t nkeys;      /* sorted, unique, owned */
    uint64_t  *ids;      uint32_t nids;       /* sorted ascending, unique */
    char     **tags;     uint32_t ntags;      /* sorted, unique, owned */
} filter_t;

typedef struct filter_req {
    filter_t items;        /* the listed channels (without "flags"), keys, ids,
                            * tags; items.flags is unused */
    bool     flags_listed; /* "flags" appeared among the channels */
    bool     subscribe_all;
} filter_req_t;

void filter_init(filter_t *f);                 /* empty, mode NONE */
void filter_free(filter_t *f);                 /* frees the sets, leaves f empty */
/* Deep copy into dst (dst's old contents are not freed: init it first).
 * @return 0 on success, -1 on allocation failure (dst left empty). */
int  filter_copy(filter_t *dst, const filter_t *src);

void filter_req_init(filter_req_t *r);
void filter_req_free(filter_req_t *r);

/* Set insertions with validation (names.h rules). A value already present is
 * not an error. @return 0 on success, -1 with *err set to a static message
 * (invalid value, too many items for max_items, out of memory).
 * filter_add_channel does not store "flags": it returns 1 for it, so the
 * caller can set flags_listed. */
int  filter_add_channel(filter_t *f, const char *s, size_t n, size_t max_items, const char **err);
int  filter_add_key(filter_t *f, const char *s, size_t n, size_t max_items, const char **err);
int  filter_add_id(filter_t *f, uint64_t id, size_t max_items, const char **err);
int  filter_add_tag(filter_t *f, const char *s, size_t n, size_t max_items, const char **err);

/* Membership (bsearch). */
bool filter_has_channel(const filter_t *f, const char *s, size_t n);
bool filter_has_key(const filter_t *f, const char *s, size_t n);
bool filter_has_id(const filter_t *f, uint64_t id);
bool filter_has_tag(const filter_t *f, const char *s, size_t n);

/* The rules in the file comment. filter_subscribe and filter_from_req are
 * all-or-nothing: on error (a list over max_items, out of memory) f is left
 * as it was and *err says why. @return 0 on success, -1 on failure.
 * filter_unsubscribe cannot fail. */
int  filter_subscribe(filter_t *f, const filter_req_t *r, size_t max_items, const char **err);
void filter_unsubscribe(filter_t *f, const filter_req_t *r);
int  filter_from_req(filter_t *f, const filter_req_t *r, bool default_flags,
                     size_t max_items, const char **err);

/* True if f's flags mode selects this flag record (mode NONE: false). */
bool filter_match_flag(const filter_t *f, const flag_t *flag);
/* True if f wants the event: on channel "flags", filter_match_flag on
 * ev->flag (a flag-less event on "flags" matches every mode but NONE); on
 * any other channel, membership of ev->channel. An event without a channel
 * matches nothing. */
bool filter_match_event(const filter_t *f, const ev_t *ev);
/* True if f needs logical channel ch (n bytes): "flags" when the mode is
 * not NONE, any other name when it is in the channel set. */
bool filter_wants_channel(const filter_t *f, const char *ch, size_t n);
/* True if f wants nothing at all (mode NONE and no channel). */
bool filter_is_empty(const filter_t *f);

#endif
