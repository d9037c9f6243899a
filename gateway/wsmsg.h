/*
 * wsmsg — WebSocket messages: parsing what clients send, rendering the
 * server's control messages (DESIGN.md, "Client protocols").
 *
 * Two encodings of the same objects: JSON text frames (subprotocol
 * flagcast.json) and msgpack binary frames (flagcast.msgpack).
 *
 * Client → server:
 *   {"type":"subscribe"|"unsubscribe", "flags":[key...], "flagIDs":[id...],
 *    (aliases: "flagKeys" for "flags", "flagIds" for "flagIDs", as on SSE)
 *    "tags":[tag...], "channels":[name...], "subscribeAll":bool,
 *    "since":{channel:{"epoch":str,"offset":uint}}}
 *   {"type":"auth","token":str}
 *   {"type":"ping","id"?:any}
 *   {"type":"evaluate","id"?:any,"flagKeys":[key...],"entityID"?:str,
 *    "entityType"?:str,"entityContext"?:object}
 *   (flagKeys required, 1..max_items strings; kept as eval_body, the
 *    equivalent POST /api/v1/evaluation/batch body with one entity)
 * Every field but "type" is optional; "id" (a correlation id) is allowed in
 * every message and echoed by pong. A field the type does not take is a
 * bad_message naming it and the known ones (a misspelt filter must not
 * answer `subscribed` with empty lists); known fields of the wrong type are
 * errors. flagIDs items may be
 * positive integers or strings of decimal digits. "flags" listed among the
 * channels sets flags_listed (see filter.h for how a request is applied).
 *
 * Errors carry a code (the `code` of the error message sent back) and a
 * human message:
 *   too_large     frame over the size limit
 *   bad_json      not JSON / not msgpack (or trailing bytes)
 *   bad_message   not an object, missing/invalid "type", wrong field type
 *   unknown_type  "type" is a string but not one of the above
 *   bad_channel   an invalid channel name
 *   bad_key       an invalid flag key
 *   bad_tag       an invalid tag
 *   bad_id        an id that is not a positive integer
 *   too_many      a list over max_items, or "since" over WSMSG_MAX_SINCE
 *
 * Server → client (wsmsg_render_*), one object per frame:
 *   {"type":"connected","message":str,"connectionId":str?,"protocol":str?}
 *   {"type":"subscribed","channels":[..."flags" if wanted],"flags":[...],
 *    "flagIDs":[...],"tags":[...],"subscribeAll":bool,
 *    "positions":{channel:{"epoch":str,"offset":uint}}?}
 *   (connected, too, carries "positions" for the inboxes it started)
 *   {"type":"pong","id":<the ping's id, if any>}
 *   {"type":"evaluation","id":<the request's id, if any>,"results":[...]}
 *   (results: the evaluationResults of the batch API's answer)
 *   {"type":"error","code":str,"message":str}
 * The SSE `connection` event carries the same "connected" JSON.
 * Renderers append to a buf_t: to leave lws's LWS_PRE headroom before the
 * payload, append that many bytes to the buf first.
 *
 * Pure, no I/O; a wsmsg_t is owned by the caller.
 */
#ifndef FLAGCAST_GW_WSMSG_H
#define FLAGCAST_GW_WSMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "gateway/filter.h"
#include "proto/buf.h"

#define WSMSG_MAX_FRAME   (64 * 1024)  /* default client frame limit (bytes) */
#define WSMSG_MAX_ITEMS   FILTER_MAX_ITEMS
#define WSMSG_MAX_SINCE   256          /* entries of "since" */
#define WSMSG_MAX_TOKEN   4096         /* bytes */
#define WSMSG_MAX_PING_ID 256          /* encoded bytes of a ping id */
#define WSMSG_MAX_DEPTH   16           /* nesting of a client message */

typedef enum wsmsg_fmt {
    WSMSG_FMT_JSON = 0,
    WSMSG_FMT_MSGPACK
} wsmsg_fmt_t;

typedef enum wsmsg_type {
    WSMSG_SUBSCRIBE = 0,
    WSMSG_UNSUBSCRIBE,
    WSMSG_AUTH,
    WSMSG_PING,
    WSMSG_EVALUATE
} wsmsg_type_t;

typedef enum wsmsg_err {
    WSERR_NONE = 0,
    WSERR_TOO_LARGE,
    WSERR_BAD_JSON,
    WSERR_BAD_MESSAGE,
    WSERR_UNKNOWN_TYPE,
    WSERR_BAD_CHANNEL,
    WSERR_BAD_KEY,
    WSERR_BAD_TAG,
    WSERR_BAD_ID,
    WSERR_TOO_MANY,
    WSERR_COUNT
} wsmsg_err_t;

typedef struct wsmsg_since {
    char    *channel;   /* owned, validated channel name */
    char    *epoch;     /* owned, 1..EV_MAX_EPOCH bytes */
    uint64_t offset;
} wsmsg_since_t;

typedef struct wsmsg {
    wsmsg_type_t   type;
    filter_req_t   req;          /* subscribe / unsubscribe */
    wsmsg_since_t *since;        /* owned array, or NULL */
    size_t         nsince;
    char          *token;        /* auth: owned, NUL-terminated */
    char          *ping_id;      /* ping, evaluate: the id's encoded bytes (JSON
                                  * text or msgpack, the format parsed), or NULL */
    size_t         ping_id_len;
    wsmsg_fmt_t    ping_id_fmt;
    char          *eval_body;    /* evaluate: owned JSON text, a batch request
                                  * {"flagKeys":[...],"entities":[{...}]} */
    size_t         eval_body_len;
} wsmsg_t;

typedef struct wsmsg_error {
    wsmsg_err_t code;
    char        message[160];
} wsmsg_error_t;

void wsmsg_init(wsmsg_t *m);
void wsmsg_free(wsmsg_t *m);     /* frees the contents, leaves m initialized */

/* "too_large", "bad_json", ... ; "" for WSERR_NONE. */
const char *wsmsg_err_code(wsmsg_err_t e);

/* Parses one client frame of n bytes in format fmt into m (initialized;
 * reset first). max_frame 0 means WSMSG_MAX_FRAME; max_items 0 means
 * WSMSG_MAX_ITEMS. On error m is left empty and *e says why.
 * @return 0 on success, -1 on failure. Never crashes on any input. */
int wsmsg_parse(wsmsg_fmt_t fmt, const char *p, size_t n, size_t max_frame,
                size_t max_items, wsmsg_t *m, wsmsg_error_t *e);

/* Control messages, appended to out. connection_id and protocol may be NULL
 * (field omitted). @return 0 on success, -1 on failure (out->err). */
int wsmsg_render_connected(wsmsg_fmt_t fmt, const char *message,
                           const char *connection_id, const char *protocol,
                           buf_t *out);
/* Echo of the effective subscription: channels lists "flags" first when the
 * mode is not NONE; subscribeAll is true for mode ALL. */
int wsmsg_render_subscribed(wsmsg_fmt_t fmt, const filter_t *f, buf_t *out);
/* Writes msg (a rendered connected / subscribed object, len bytes) to out
 * with a "positions" field added: {channel: {"epoch":str,"offset":uint}},
 * the start position of each channel the request started, in the shape a
 * `subscribe` takes as "since" (a client that reconnects before any event
 * on a channel sends it back and misses nothing). npos 0: msg unchanged.
 * @return 0, or -1 (msg is not an object these renderers made). */
int wsmsg_add_positions(wsmsg_fmt_t fmt, const char *msg, size_t len,
                        const wsmsg_since_t *pos, size_t npos, buf_t *out);
/* Writes msg (a rendered object: a snapshot) to out with "channel",
 * "epoch" and "offset" added, the position it stands at, as every event
 * carries them (a client keeps its cursor from it). @return 0, or -1. */
int wsmsg_add_position(wsmsg_fmt_t fmt, const char *msg, size_t len, const char *channel,
                       const char *epoch, uint64_t offset, buf_t *out);
/* Echoes ping->ping_id when present and encoded in fmt; ping may be NULL. */
int wsmsg_render_pong(wsmsg_fmt_t fmt, const wsmsg_t *ping, buf_t *out);
/* {"type":"evaluation","id"?,"results":results}: results is JSON text (an
 * array, len bytes: the batch answer's evaluationResults), converted for
 * msgpack; the id is req's (as pong echoes it). @return 0, or -1. */
int wsmsg_render_evaluation(wsmsg_fmt_t fmt, const wsmsg_t *req, const char *results,
                            size_t len, buf_t *out);
int wsmsg_render_error(wsmsg_fmt_t fmt, const char *code, const char *message,
                       buf_t *out);

#endif
