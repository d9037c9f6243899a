/*
 * resync — the `resync` event: what a client gets instead of silence when
 * the gateway cannot give it the events it missed (SSE `event: resync`, WS
 * {"type":"resync","channel":...,"reason":...,"epoch":...,"offset":...}),
 * and the names of positions and reasons that history and recovery use
 * (the Redis side decides them: redis/history.h). Pure.
 *
 * See docs/ARCHITECTURE.md, "Recovery".
 */
#ifndef FLAGCAST_GATEWAY_RESYNC_H
#define FLAGCAST_GATEWAY_RESYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "proto/buf.h"
#include "gateway/outq.h"

/* The epoch of a position taken before the channel had any history: a
 * cursor item <channel>/-/0 resumes from the channel's first event,
 * whatever epoch it starts. */
#define HIST_EPOCH_NONE      "-"

/* Reasons carried by a resync. */
#define HIST_REASON_EPOCH    "epoch changed"
#define HIST_REASON_TRIMMED  "history exceeded"
#define HIST_REASON_BEHIND   "too far behind"
#define HIST_REASON_ERROR    "history unavailable"
#define HIST_REASON_ROLLBACK "history rolled back"
#define HIST_REASON_OVERLOAD "gateway overloaded"

/* Appends a resync event in format fmt: for OUTQ_FMT_SSE a whole SSE frame
 * (`id: <sse_id>`, or `id: <channel>/<epoch>/<offset>` when sse_id is NULL
 * and epoch is given; `event: resync`; data JSON), for OUTQ_FMT_JSON the
 * JSON object, for OUTQ_FMT_MSGPACK the same map in msgpack. epoch may be
 * NULL (unknown position). @return 0 on success, -1 on failure. */
int resync_render(outq_fmt_t fmt, const char *channel, const char *reason,
                       const char *epoch, uint64_t offset, const char *sse_id, buf_t *out);

#endif
