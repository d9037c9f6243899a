/*
 * render — the bytes a gateway sends for an event, rendered once per format
 * and shared by every connection that receives it (DESIGN.md, "Client
 * protocols").
 *
 * SSE data JSON (Flagent-compatible), for a flag event:
 *   {"type":"flag.updated","flagID":7,"flagKey":"k","message":"Flag updated: k",
 *    "timestamp":1700000000000,"data":{"enabled":"true","version":"3",...},
 *    "channel":"flags","epoch":"…","offset":42,"flag":{…full record…}}
 * `data` holds only JSON strings (Flagent's Go and Kotlin clients drop the
 * event otherwise): enabled, version, key, id, description (if any) and
 * actor (if any).
 * For a message:
 *   {"type":"message","channel":"chat.room1","epoch":"…","offset":5,
 *    "timestamp":…,"data":<any>,"actor":"…"?}
 *
 * WS JSON: the same object as the SSE data (one text frame).
 * WS msgpack: the same object as a msgpack map (one binary frame).
 */
#ifndef FLAGCAST_RENDER_H
#define FLAGCAST_RENDER_H

#include "proto/buf.h"
#include "proto/event.h"

/* "Flag created: k", "Flag updated: k", "Flag deleted: k", "Flag toggled: k",
 * "Segments updated: k", "Variants updated: k". */
const char *render_message_verb(ev_type_t t);

/* The JSON object above. @return 0 or -1. */
int render_event_json(const ev_t *ev, buf_t *out);
/* The msgpack map above. */
int render_event_msgpack(const ev_t *ev, buf_t *out);
/* A complete SSE frame for the event: "id: <id>\nevent: <type>\ndata: <json>\n\n"
 * (id line omitted when id is NULL). */
int render_event_sse(const ev_t *ev, const char *id, buf_t *out);

/* A snapshot: {"type":"snapshot","flags":[…records…]} as JSON / msgpack. */
int render_snapshot_json(const flag_t *const *flags, size_t n, buf_t *out);
int render_snapshot_msgpack(const flag_t *const *flags, size_t n, buf_t *out);

#endif
