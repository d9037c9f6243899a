/*
 * resync — the `resync` event (see resync.h): what a client gets instead of
 * silence when the gateway cannot give it the events it missed.
 *
 * Pure: appends to a buf_t. The SSE form carries the position the stream
 * continues from as its id, so a client that reconnects after a resync does
 * not ask for the lost range again.
 */
#include "gateway/resync.h"
#include "gateway/query.h"
#include "proto/json.h"
#include "proto/sse.h"

#include <msgpack.h>
#include <string.h>

static int mp_cstr(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    return msgpack_pack_str(pk, n) | msgpack_pack_str_body(pk, s, n);
}

static void resync_json(buf_t *b, const char *channel, const char *reason,
                        const char *epoch, uint64_t offset)
{
    buf_puts(b, "{\"type\":\"resync\",\"channel\":");
    json_cstr(b, channel);
    buf_puts(b, ",\"reason\":");
    json_cstr(b, reason);
    if (epoch) {
        buf_puts(b, ",\"epoch\":");
        json_cstr(b, epoch);
        buf_printf(b, ",\"offset\":%llu", (unsigned long long)offset);
    }
    buf_puts(b, ",\"message\":\"events were lost: resynchronise this channel\"}");
}

int resync_render(outq_fmt_t fmt, const char *channel, const char *reason,
                       const char *epoch, uint64_t offset, const char *sse_id, buf_t *out)
{
    if (channel == NULL || reason == NULL)
        return -1;
    if (fmt == OUTQ_FMT_MSGPACK) {
        msgpack_packer pk;
        int r;

        msgpack_packer_init(&pk, out, buf_msgpack_write);
        r = msgpack_pack_map(&pk, epoch ? 6 : 4);
        r |= mp_cstr(&pk, "type") | mp_cstr(&pk, "resync");
        r |= mp_cstr(&pk, "channel") | mp_cstr(&pk, channel);
        r |= mp_cstr(&pk, "reason") | mp_cstr(&pk, reason);
        if (epoch) {
            r |= mp_cstr(&pk, "epoch") | mp_cstr(&pk, epoch);
            r |= mp_cstr(&pk, "offset") | msgpack_pack_uint64(&pk, offset);
        }
        r |= mp_cstr(&pk, "message") |
             mp_cstr(&pk, "events were lost: resynchronise this channel");
        return r || out->err ? -1 : 0;
    }
    if (fmt == OUTQ_FMT_JSON) {
        resync_json(out, channel, reason, epoch, offset);
        return out->err ? -1 : 0;
    }
    if (fmt == OUTQ_FMT_SSE) {
        char id[QUERY_MAX_CURSOR + 1];
        buf_t data;
        int rc;

        if (!sse_id && epoch && query_format_cursor(id, sizeof(id), channel, epoch, offset) < 0)
            return -1;
        buf_init(&data);
        resync_json(&data, channel, reason, epoch, offset);
        rc = data.err ? -1 : sse_frame(out, sse_id ? sse_id : epoch ? id : NULL, "resync",
                                       data.data, data.len);
        buf_free(&data);
        return rc || out->err ? -1 : 0;
    }
    return -1;
}
