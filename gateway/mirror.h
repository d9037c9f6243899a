/*
 * mirror — the gateway's in-memory copy of P:flags, so that every snapshot
 * (on connect, after each WS subscribe, in a reconnect storm) is served from
 * memory and never costs a Redis query per client.
 *
 * Loaded from the values of `HGETALL P:flags` (msgpack flag records, decoded
 * with flag_decode), then kept current from flag events:
 *   flag.created / updated / toggled, segment.updated, variant.updated
 *       → upsert, if the record's version is newer than the stored one (or
 *         the key is new); an equal or older version is ignored, so a
 *         duplicate or late event never rolls a flag back;
 *   flag.deleted → remove, unless the stored version is newer than the
 *         event's record.
 * A load replaces the whole content (after a Redis reconnect the caller
 * loads again; deletions it missed disappear). Records that fail to decode
 * are skipped and counted, the rest still load.
 *
 * Storage: two sorted arrays of flag_t pointers, by key and by id; lookups
 * are binary searches, updates memmove pointers (fine for thousands of
 * flags, which change rarely), and snapshots come out sorted by key for free.
 *
 * Threads: a mirror_t is not locked. The API assumes ONE owner thread that
 * loads, applies events and renders snapshots (e.g. the thread that also
 * owns the subscription index; or the Redis thread, handing rendered
 * snapshots over). Every function marked read-only below changes nothing in
 * the mirror, so a caller that prefers a pthread rwlock may run those
 * concurrently under the read lock and the others under the write lock.
 * mirror_generation() changes on every modification: a caller may cache a
 * rendered snapshot (e.g. of mode ALL) per generation.
 *
 * Evaluation. Every stored record carries its prepared evaluator
 * (proto/eval.h), built when the record is stored (mirror_load, mirror_put,
 * so by the writer, under the write lock) and freed with it: readers
 * evaluate under the read lock with mirror_eval(flag) and no further work
 * per flag version. A record whose evaluator cannot be built (out of
 * memory) is not stored: the call fails as for any allocation failure.
 */
#ifndef FLAGCAST_GW_MIRROR_H
#define FLAGCAST_GW_MIRROR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "gateway/filter.h"
#include "proto/buf.h"
#include "proto/eval.h"
#include "proto/event.h"
#include "proto/flag.h"

typedef struct mirror mirror_t;

typedef enum mirror_fmt {
    MIRROR_FMT_JSON = 0,   /* render_snapshot_json */
    MIRROR_FMT_MSGPACK     /* render_snapshot_msgpack */
} mirror_fmt_t;

/* @return an empty mirror, or NULL on allocation failure. */
mirror_t *mirror_new(void);
void      mirror_free(mirror_t *m);

/* Replaces the content with the n records vals[i] (lens[i] bytes each).
 * Undecodable records, and a second record with the same key or id, are
 * skipped: *nbad (may be NULL) gets their count and errbuf the first
 * reason. @return 0 on success (even with skipped records), -1 on allocation
 * failure (the old content is kept). */
int  mirror_load(mirror_t *m, const char *const *vals, const size_t *lens, size_t n,
                 size_t *nbad, char *errbuf, size_t errlen);

/* Upsert a copy of f if newer (see above). @return 1 if stored, 0 if
 * ignored as not newer, -1 on allocation failure or an invalid record
 * (no key). */
int  mirror_put(mirror_t *m, const flag_t *f);
/* Applies a decoded event. @return 1 if the mirror changed, 0 if the event
 * was ignored (older version, unknown flag deleted, not a flag event), -1 on
 * allocation failure. */
int  mirror_apply(mirror_t *m, const ev_t *ev);
void mirror_clear(mirror_t *m);

/* Read-only. */
size_t        mirror_count(const mirror_t *m);
uint64_t      mirror_generation(const mirror_t *m);
const flag_t *mirror_get(const mirror_t *m, const char *key, size_t len);
const flag_t *mirror_get_id(const mirror_t *m, uint64_t id);

/* Read-only. The i-th flag in key order (i < mirror_count), or NULL. */
const flag_t *mirror_at(const mirror_t *m, size_t i);
/* Read-only. The prepared evaluator of a flag the mirror returned (never
 * NULL for such a flag; NULL for NULL); valid as long as the flag is. */
const eval_flag_t *mirror_eval(const flag_t *f);

/* Read-only. The flags f selects (filter_match_flag), sorted by key, as a
 * malloc'd array of pointers into the mirror (*out; free() it; valid until
 * the next modification). Mode NONE gives none. @return 0 and *n, or -1 on
 * allocation failure. */
int  mirror_snapshot(const mirror_t *m, const filter_t *f,
                     const flag_t ***out, size_t *n);
/* Read-only. Appends {"type":"snapshot","flags":[...]} for f in fmt.
 * @return 0 or -1. */
int  mirror_render_snapshot(const mirror_t *m, const filter_t *f,
                            mirror_fmt_t fmt, buf_t *out);

#endif
