/*
 * render — the bytes a gateway sends for an event (see render.h).
 *
 * A gateway renders each event once per format and shares the bytes with
 * every receiving connection, so this runs once per publish, not once per
 * subscriber; still, it sits on the publish path of a 10k-subscriber
 * fan-out, so it appends straight into the output buffer: numbers go through
 * a small stack buffer, strings through json_str, and msgpack "data" and
 * attachments are streamed from their bytes without being unpacked. The only
 * allocations are the output buffer's own growth.
 *
 * The JSON and msgpack renderings carry the same fields in the same order
 * (the unit tests check that one converts to the other).
 */
#include "proto/render.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "proto/json.h"
#include "proto/names.h"

/* "Variants updated: " + the longest flag key. */
#define NAME_MSG_MAX (32 + NAME_FLAG_KEY_MAX)

const char *render_message_verb(ev_type_t t)
{
    switch (t) {
    case EV_FLAG_CREATED:    return "Flag created";
    case EV_FLAG_UPDATED:    return "Flag updated";
    case EV_FLAG_DELETED:    return "Flag deleted";
    case EV_FLAG_TOGGLED:    return "Flag toggled";
    case EV_SEGMENT_UPDATED: return "Segments updated";
    case EV_VARIANT_UPDATED: return "Variants updated";
    default:                 return "Message";
    }
}

/* "<verb>: <key>" into tmp. @return its length. */
static size_t message_text(const ev_t *ev, char *tmp, size_t n)
{
    int r = snprintf(tmp, n, "%s: %s", render_message_verb(ev->type),
                     ev->flag && ev->flag->key ? ev->flag->key : "");
    if (r < 0)
        return 0;
    return (size_t)r < n ? (size_t)r : n - 1;
}

/* ==== JSON =============================================================== */

static void put_u64(buf_t *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%" PRIu64, v);
    buf_append(b, tmp, (size_t)n);
}

/* ,"name":"<decimal>" — a number as a JSON string, for Flagent's data map. */
static void put_u64_str(buf_t *b, const char *lit, uint64_t v)
{
    buf_puts(b, lit);
    buf_putc(b, '"');
    put_u64(b, v);
    buf_putc(b, '"');
}

static int json_flag_event(const ev_t *ev, buf_t *out)
{
    const flag_t *f = ev->flag;
    char msg[NAME_MSG_MAX];
    if (!f)
        return -1;
    buf_puts(out, "{\"type\":");
    json_cstr(out, ev_type_name(ev->type));
    buf_puts(out, ",\"flagID\":");
    put_u64(out, f->id);
    buf_puts(out, ",\"flagKey\":");
    json_cstr(out, f->key);
    buf_puts(out, ",\"message\":");
    json_str(out, msg, message_text(ev, msg, sizeof(msg)));
    buf_puts(out, ",\"timestamp\":");
    put_u64(out, ev->ts);
    /* Flagent's clients want every value of "data" to be a JSON string */
    buf_puts(out, f->enabled ? ",\"data\":{\"enabled\":\"true\""
                             : ",\"data\":{\"enabled\":\"false\"");
    put_u64_str(out, ",\"version\":", f->version);
    buf_puts(out, ",\"key\":");
    json_cstr(out, f->key);
    put_u64_str(out, ",\"id\":", f->id);
    if (f->description) {
        buf_puts(out, ",\"description\":");
        json_cstr(out, f->description);
    }
    if (ev->actor) {
        buf_puts(out, ",\"actor\":");
        json_cstr(out, ev->actor);
    }
    buf_puts(out, "},\"channel\":");
    json_cstr(out, ev->channel);
    buf_puts(out, ",\"epoch\":");
    json_cstr(out, ev->epoch);
    buf_puts(out, ",\"offset\":");
    put_u64(out, ev->offset);
    buf_puts(out, ",\"flag\":");
    if (flag_to_json(f, out) != 0)
        return -1;
    buf_putc(out, '}');
    return out->err ? -1 : 0;
}

static int json_message_event(const ev_t *ev, buf_t *out)
{
    buf_puts(out, "{\"type\":\"message\",\"channel\":");
    json_cstr(out, ev->channel);
    buf_puts(out, ",\"epoch\":");
    json_cstr(out, ev->epoch);
    buf_puts(out, ",\"offset\":");
    put_u64(out, ev->offset);
    buf_puts(out, ",\"timestamp\":");
    put_u64(out, ev->ts);
    buf_puts(out, ",\"data\":");
    if (!ev->data)
        buf_puts(out, "null");
    else if (json_msgpack_bytes(out, ev->data, ev->data_len) != 0)
        return -1;
    if (ev->actor) {
        buf_puts(out, ",\"actor\":");
        json_cstr(out, ev->actor);
    }
    buf_putc(out, '}');
    return out->err ? -1 : 0;
}

int render_event_json(const ev_t *ev, buf_t *out)
{
    size_t start = out->len;
    if (out->err)
        return -1;
    int r = ev_type_is_flag(ev->type) ? json_flag_event(ev, out)
                                      : json_message_event(ev, out);
    return r == 0 ? 0 : buf_rollback(out, start);
}

int render_event_sse(const ev_t *ev, const char *id, buf_t *out)
{
    size_t start = out->len;
    if (out->err)
        return -1;
    if (id) {
        buf_append(out, "id: ", 4);
        buf_append(out, id, strcspn(id, "\r\n"));
        buf_putc(out, '\n');
    }
    buf_puts(out, "event: ");
    buf_puts(out, ev_type_name(ev->type));
    /* the JSON escapes every control character: it is one line */
    buf_puts(out, "\ndata: ");
    if (render_event_json(ev, out) != 0)
        return buf_rollback(out, start);
    buf_append(out, "\n\n", 2);
    return out->err ? -1 : 0;
}

int render_snapshot_json(const flag_t *const *flags, size_t n, buf_t *out)
{
    size_t start = out->len;
    if (out->err)
        return -1;
    buf_puts(out, "{\"type\":\"snapshot\",\"flags\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_putc(out, ',');
        if (flag_to_json(flags[i], out) != 0)
            return buf_rollback(out, start);
    }
    buf_puts(out, "]}");
    return out->err ? buf_rollback(out, start) : 0;
}

/* ==== msgpack ============================================================ */

static int mp_str(msgpack_packer *pk, const char *s, size_t n)
{
    return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, s, n);
}

static int mp_cstr(msgpack_packer *pk, const char *s)
{
    return s ? mp_str(pk, s, strlen(s)) : msgpack_pack_nil(pk);
}

#define MP_LIT(pk, lit) mp_str(pk, lit, sizeof(lit) - 1)

static int mp_u64_str(msgpack_packer *pk, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%" PRIu64, v);
    return mp_str(pk, tmp, (size_t)n);
}

static int mp_flag_event(const ev_t *ev, msgpack_packer *pk)
{
    const flag_t *f = ev->flag;
    char msg[NAME_MSG_MAX];
    if (!f)
        return -1;
    int r = msgpack_pack_map(pk, 10);
    r |= MP_LIT(pk, "type") | mp_cstr(pk, ev_type_name(ev->type));
    r |= MP_LIT(pk, "flagID") | msgpack_pack_uint64(pk, f->id);
    r |= MP_LIT(pk, "flagKey") | mp_cstr(pk, f->key);
    r |= MP_LIT(pk, "message") | mp_str(pk, msg, message_text(ev, msg, sizeof(msg)));
    r |= MP_LIT(pk, "timestamp") | msgpack_pack_uint64(pk, ev->ts);
    r |= MP_LIT(pk, "data") |
         msgpack_pack_map(pk, 4 + (f->description != NULL) + (ev->actor != NULL));
    r |= MP_LIT(pk, "enabled") | (f->enabled ? MP_LIT(pk, "true") : MP_LIT(pk, "false"));
    r |= MP_LIT(pk, "version") | mp_u64_str(pk, f->version);
    r |= MP_LIT(pk, "key") | mp_cstr(pk, f->key);
    r |= MP_LIT(pk, "id") | mp_u64_str(pk, f->id);
    if (f->description)
        r |= MP_LIT(pk, "description") | mp_cstr(pk, f->description);
    if (ev->actor)
        r |= MP_LIT(pk, "actor") | mp_cstr(pk, ev->actor);
    r |= MP_LIT(pk, "channel") | mp_cstr(pk, ev->channel);
    r |= MP_LIT(pk, "epoch") | mp_cstr(pk, ev->epoch);
    r |= MP_LIT(pk, "offset") | msgpack_pack_uint64(pk, ev->offset);
    r |= MP_LIT(pk, "flag") | flag_pack(f, pk);
    return r ? -1 : 0;
}

static int mp_message_event(const ev_t *ev, msgpack_packer *pk, buf_t *out)
{
    int r = msgpack_pack_map(pk, 6 + (ev->actor != NULL));
    r |= MP_LIT(pk, "type") | MP_LIT(pk, "message");
    r |= MP_LIT(pk, "channel") | mp_cstr(pk, ev->channel);
    r |= MP_LIT(pk, "epoch") | mp_cstr(pk, ev->epoch);
    r |= MP_LIT(pk, "offset") | msgpack_pack_uint64(pk, ev->offset);
    r |= MP_LIT(pk, "timestamp") | msgpack_pack_uint64(pk, ev->ts);
    r |= MP_LIT(pk, "data");
    /* data is already msgpack: its bytes go in as they are */
    r |= ev->data ? buf_append(out, ev->data, ev->data_len) : msgpack_pack_nil(pk);
    if (ev->actor)
        r |= MP_LIT(pk, "actor") | mp_cstr(pk, ev->actor);
    return r ? -1 : 0;
}

int render_event_msgpack(const ev_t *ev, buf_t *out)
{
    size_t start = out->len;
    msgpack_packer pk;
    if (out->err)
        return -1;
    msgpack_packer_init(&pk, out, buf_msgpack_write);
    int r = ev_type_is_flag(ev->type) ? mp_flag_event(ev, &pk)
                                      : mp_message_event(ev, &pk, out);
    return r == 0 && !out->err ? 0 : buf_rollback(out, start);
}

int render_snapshot_msgpack(const flag_t *const *flags, size_t n, buf_t *out)
{
    size_t start = out->len;
    msgpack_packer pk;
    if (out->err)
        return -1;
    msgpack_packer_init(&pk, out, buf_msgpack_write);
    int r = msgpack_pack_map(&pk, 2);
    r |= MP_LIT(&pk, "type") | MP_LIT(&pk, "snapshot");
    r |= MP_LIT(&pk, "flags") | msgpack_pack_array(&pk, n);
    for (size_t i = 0; i < n && r == 0; i++)
        r |= flag_pack(flags[i], &pk);
    return r == 0 && !out->err ? 0 : buf_rollback(out, start);
}
