/*
 * event — the publication message of DESIGN.md, "Message bytes": two msgpack
 * objects back to back,
 *
 *   1. header: array [1, channel (str), epoch (str), offset (uint)]
 *   2. body:   map {"type": str, "ts": uint ms, "flag": map?, "data": any?,
 *                   "actor": str?}
 *
 * The publisher builds the body (ev_encode_body); the Lua script prepends the
 * header; gateways decode both (ev_decode). The decoder is the boundary with
 * untrusted bytes: it bounds sizes and nesting depth, rejects unknown fields
 * and wrong types with a message, and never reads out of bounds.
 *
 * Ownership: an ev_t owns its strings, its flag and its data bytes;
 * ev_free() releases them (not the ev_t itself).
 */
#ifndef FLAGCAST_EVENT_H
#define FLAGCAST_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "proto/buf.h"
#include "proto/flag.h"

#define EV_MAX_BYTES     (1024 * 1024) /* a whole message */
#define EV_MAX_DEPTH     32            /* nesting of "data" and attachments */
/* Containers "data" may nest: it sits inside the body map, and msgpack-c
 * unpacks at most EV_MAX_DEPTH levels in all. ev_encode_body refuses more. */
#define EV_MAX_DATA_DEPTH (EV_MAX_DEPTH - 1)
#define EV_MAX_EPOCH     64            /* bytes */
#define EV_MAX_ACTOR     256           /* bytes */
#define EV_HEADER_VERSION 1
/* A body leaves room for the largest header within EV_MAX_BYTES. */
#define EV_MAX_BODY      (EV_MAX_BYTES - 512)

typedef enum ev_type {
    EV_FLAG_CREATED = 0,
    EV_FLAG_UPDATED,
    EV_FLAG_DELETED,
    EV_FLAG_TOGGLED,
    EV_SEGMENT_UPDATED,
    EV_VARIANT_UPDATED,
    EV_MESSAGE,
    EV_TYPE_COUNT
} ev_type_t;

typedef struct ev {
    /* header (absent in a body-only encoding) */
    char     *channel;
    char     *epoch;
    uint64_t  offset;
    /* body */
    ev_type_t type;
    uint64_t  ts;          /* ms since the epoch */
    flag_t   *flag;        /* set for every type but EV_MESSAGE; owned */
    char     *data;        /* msgpack bytes of "data", or NULL; owned */
    size_t    data_len;
    char     *actor;       /* may be NULL */
} ev_t;

/* "flag.created", ... "message". */
const char *ev_type_name(ev_type_t t);
/* @return 0 and *t, or -1 if s is not a known type. */
int  ev_type_parse(const char *s, size_t len, ev_type_t *t);
static inline bool ev_type_is_flag(ev_type_t t) { return t != EV_MESSAGE; }

void ev_init(ev_t *ev);
void ev_free(ev_t *ev);

/* Appends the body map. The type decides what must be set: flag types need
 * ev->flag (valid, see flag_validate) and no data, EV_MESSAGE needs ev->data
 * (one JSON-able msgpack value, at most EV_MAX_DATA_DEPTH levels) and no
 * flag; actor at most EV_MAX_ACTOR bytes; the body at most EV_MAX_BODY
 * bytes. Anything else appends nothing and returns -1. @return 0 or -1. */
int  ev_encode_body(const ev_t *ev, buf_t *out);
/* Appends header + body (what the Lua script produces). Tests, fuzz seeds
 * and tools only: the daemons never build a header in C. */
int  ev_encode(const ev_t *ev, buf_t *out);

/* Decodes header + body from exactly n bytes (trailing bytes are an error).
 * The header's channel must pass name_channel_valid and its epoch be 1-64
 * bytes of printable ASCII without spaces; the body needs type and ts, a
 * flag for flag types and data (no flag) for "message"; unknown or
 * duplicate fields are refused. Strings may be str or bin, integers doubles
 * holding an exact non-negative integer (Lua). "data" is kept re-packed in
 * msgpack-c's canonical form. On error ev is left zeroed and errbuf holds a
 * message. @return 0 or -1. */
int  ev_decode(const char *p, size_t n, ev_t *ev, char *errbuf, size_t errlen);
/* Decodes a body alone (no header). Tests and fuzz targets only. */
int  ev_decode_body(const char *p, size_t n, ev_t *ev, char *errbuf, size_t errlen);

/* Checks that a msgpack value is within EV_MAX_DEPTH and uses only types that
 * have a JSON rendering (nil, bool, int, float, str, bin, array, map with str
 * keys; bin keys are accepted as strings, as Lua's cmsgpack may write them).
 * depth is the number of containers around o in the whole message: msgpack-c
 * cannot unpack more than EV_MAX_DEPTH levels in total, so an event's "data"
 * (inside the body map) is checked with depth 1 and may nest 31 levels.
 * @return 0 or -1 with *err set. */
int  ev_value_check(const msgpack_object *o, int depth, const char **err);

#endif
