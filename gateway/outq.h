/*
 * outq — what a gateway writes to its connections: shared, refcounted
 * rendered events, and each connection's bounded queue of references.
 *
 * (a) outq_ev_t: one decoded event (ev_t) and its bytes in each output
 * format, rendered at most once per format (lazily, on first use, under a
 * mutex; afterwards read without locking) and shared by every connection
 * that receives it. The reference count is atomic: the Redis thread creates
 * an outq_ev_t and hands references to lws service threads, which drop them
 * when written. Each format's buffer starts `headroom` bytes before the
 * payload (lws needs LWS_PRE writable bytes there for the frame header; the
 * caller passes LWS_PRE, this module does not include lws). lws writes the
 * same header bytes for the same frame, so sharing the headroom between
 * connections of one thread is safe; across threads, writers store identical
 * bytes.
 *   OUTQ_FMT_SSE      render_event_sse with id "<channel>/<epoch>/<offset>"
 *                     (query_format_cursor); application-channel messages
 *                     get `event: message` (render_event_sse does that)
 *   OUTQ_FMT_JSON     render_event_json (a WS text frame)
 *   OUTQ_FMT_MSGPACK  render_event_msgpack (a WS binary frame)
 * A "raw" outq_ev_t holds caller-made bytes (a connected message, a snapshot,
 * a pong, an SSE comment) in one format, for one connection or for many
 * (e.g. a keep-alive comment shared by all SSE connections).
 * The flag key of a flag event on channel "flags" is its conflation key.
 *
 * (b) outq_t: one connection's FIFO of outq_ev_t references, in one format,
 * with a partial-write offset into the head. Limits in events and bytes
 * (outq_limits_t; bytes are payload bytes in the queue's format) apply to
 * events pushed with outq_push. Control items pushed with outq_push_ctl are
 * always accepted and not counted against the limits (a snapshot may be
 * larger than the byte limit); the caller bounds those itself (e.g. no pong
 * while outq_count() is high).
 * When an outq_push would pass a limit:
 *   - an event with a conflation key (a flag event): every queued event with
 *     the same key that is not partly written is removed (flags are state:
 *     only the newest matters) and the new one is appended at the tail, so
 *     the remaining events keep their order and offsets stay ascending; if
 *     the queue is still over a limit, OUTQ_OVERFLOW;
 *   - any other event: OUTQ_OVERFLOW.
 * OUTQ_OVERFLOW leaves the queue unchanged: the caller closes the connection
 * (the client resumes from history when it returns). Conflation happens only
 * at the limit, so a client that keeps up receives every event.
 *
 * An outq_t is embedded in the connection, holds no storage while empty, and
 * is used by one thread.
 */
#ifndef FLAGCAST_GW_OUTQ_H
#define FLAGCAST_GW_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "proto/event.h"

#define OUTQ_MAX_EVENTS 256            /* default count limit */
#define OUTQ_MAX_BYTES  (1024 * 1024)  /* default byte limit */

typedef enum outq_fmt {
    OUTQ_FMT_SSE = 0,
    OUTQ_FMT_JSON,
    OUTQ_FMT_MSGPACK,
    OUTQ_FMT_COUNT
} outq_fmt_t;

typedef struct outq_ev outq_ev_t;

/* Takes ownership of *ev's contents (ev is left zeroed, the ev_t itself stays
 * the caller's). @return the shared event with one reference, or NULL on
 * allocation failure (ev's contents are then freed). */
outq_ev_t *outq_ev_new(ev_t *ev, size_t headroom);
/* A raw buffer: copies n bytes after `headroom` bytes of room; its data is
 * the same whatever format is asked (the caller uses it on connections of
 * the right format). Tests only (the gateway adopts its buffers:
 * outq_ev_adopt_raw). @return it with one reference, or NULL. */
outq_ev_t *outq_ev_new_raw(const void *p, size_t n, size_t headroom);
/* Same, taking a buffer whose first `headroom` bytes are the room (e.g. a
 * buf_t filled after appending headroom bytes, then buf_steal'd): the
 * payload is p[headroom .. len). Takes ownership of p (free()d). */
outq_ev_t *outq_ev_adopt_raw(char *p, size_t len, size_t headroom);

outq_ev_t *outq_ev_ref(outq_ev_t *e);     /* +1, returns e; thread-safe */
void       outq_ev_unref(outq_ev_t *e);   /* -1, frees at 0; NULL ok; thread-safe */

/* The payload in format fmt, rendering it on first use (thread-safe).
 * *len gets the payload length; the headroom lies just before the returned
 * pointer. @return the payload, or NULL if rendering failed (the event is
 * then not deliverable in that format). */
const char *outq_ev_data(outq_ev_t *e, outq_fmt_t fmt, size_t *len);
/* Renders the given formats now (bit 1<<fmt each), e.g. on the Redis thread
 * so lws threads never render. @return 0, or -1 if one failed. */
int         outq_ev_prepare(outq_ev_t *e, unsigned fmt_mask);
/* The decoded event (NULL for a raw buffer); read-only, lives as long as e. */
const ev_t *outq_ev_event(const outq_ev_t *e);
/* The flag as it was before a flag event changed it (for matching the
 * connections it leaves; set on the Redis thread before the event is handed
 * on, takes ownership of a malloc'd, flag_copy'd record), or NULL. */
void          outq_ev_set_prev(outq_ev_t *e, flag_t *prev);
const flag_t *outq_ev_prev(const outq_ev_t *e);
/* The conflation key (the flag key of a flag event on "flags"), or NULL.
 * Tests only (the queue reads it itself). */
const char *outq_ev_key(const outq_ev_t *e);
unsigned    outq_ev_refs(const outq_ev_t *e);  /* current count; tests only */

typedef struct outq_limits {
    uint32_t max_events;  /* 0: OUTQ_MAX_EVENTS */
    size_t   max_bytes;   /* 0: OUTQ_MAX_BYTES */
} outq_limits_t;

typedef struct outq_item {
    outq_ev_t *ev;
    uint32_t   len;    /* payload bytes in the queue's format */
    bool       ctl;    /* pushed with outq_push_ctl */
} outq_item_t;

/* Fields are private; use the functions. */
typedef struct outq {
    outq_item_t *ring;
    uint32_t     cap, head, count;
    uint32_t     ev_count;    /* non-control items */
    size_t       ev_bytes;    /* their bytes */
    size_t       bytes;       /* all items' bytes, minus what was written */
    size_t       off;         /* bytes of the head already written */
    outq_fmt_t   fmt;
} outq_t;

typedef enum outq_res {
    OUTQ_OK = 0,         /* appended */
    OUTQ_CONFLATED,      /* appended after removing older events of its key */
    OUTQ_OVERFLOW,       /* over a limit: nothing changed, close the client */
    OUTQ_ERROR           /* allocation or rendering failure: nothing changed */
} outq_res_t;

void outq_init(outq_t *q, outq_fmt_t fmt);
/* Drops every reference and frees the storage; q stays usable (empty). */
void outq_clear(outq_t *q);

/* Appends a new reference to e (the caller keeps its own). lim may be NULL
 * for the defaults. *nremoved (may be NULL) gets the number of conflated
 * events. */
outq_res_t outq_push(outq_t *q, outq_ev_t *e, const outq_limits_t *lim, size_t *nremoved);
/* Appends a control item, outside the limits. */
outq_res_t outq_push_ctl(outq_t *q, outq_ev_t *e);

/* The unwritten bytes of the head item: *p and *n, and the head's event.
 * While nothing of the head was written (outq_head_offset() == 0) the
 * headroom lies before *p. @return the head event, or NULL if empty. */
outq_ev_t *outq_peek(const outq_t *q, const char **p, size_t *n);
/* Bytes of the head already consumed. Tests only: the gateway consumes
 * every item whole (lws buffers the rest of a short write itself). */
size_t     outq_head_offset(const outq_t *q);
/* n more bytes of the head were written; the head is popped (and its
 * reference dropped) once complete. n larger than what is left is clamped. */
void       outq_consume(outq_t *q, size_t n);
/* Pops the head whatever was written of it. */
void       outq_pop(outq_t *q);

static inline bool   outq_empty(const outq_t *q) { return q->count == 0; }
static inline size_t outq_count(const outq_t *q) { return q->count; }
static inline size_t outq_bytes(const outq_t *q) { return q->bytes; }
/* Events (non-control items) and their bytes, as the limits see them. */
static inline size_t outq_ev_count(const outq_t *q) { return q->ev_count; }
static inline size_t outq_ev_bytes(const outq_t *q) { return q->ev_bytes; }

#endif
