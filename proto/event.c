/*
 * event — the publication message: body encoding (publisher), header+body
 * decoding (gateways). See event.h for the byte layout.
 *
 * ev_decode is where untrusted bytes enter a gateway, so it works in two
 * passes. mp_scan first walks the raw bytes without allocating: it finds the
 * end of the header, checks that exactly one body follows, and refuses
 * anything nested deeper than msgpack-c can unpack or any container that
 * claims more elements than there are bytes. Only then does msgpack-c unpack
 * each object, and the typed walk below checks every field, copying what it
 * keeps. On any error everything already copied is freed and the ev_t is left
 * zeroed, with a message naming the field ("body.type: unknown event type").
 *
 * "data" is kept as msgpack bytes. The decoder re-packs the unpacked value,
 * which yields msgpack-c's canonical (smallest) encoding: decoding the
 * output of ev_encode again gives the same bytes.
 */
#include "proto/event.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mpscan.h"
#include "proto/names.h"

static const char *const ev_names[EV_TYPE_COUNT] = {
    "flag.created", "flag.updated", "flag.deleted", "flag.toggled",
    "segment.updated", "variant.updated", "message"
};

const char *ev_type_name(ev_type_t t)
{
    return (unsigned)t < EV_TYPE_COUNT ? ev_names[t] : "unknown";
}

int ev_type_parse(const char *s, size_t len, ev_type_t *t)
{
    for (int i = 0; i < EV_TYPE_COUNT; i++) {
        if (strlen(ev_names[i]) == len && memcmp(ev_names[i], s, len) == 0) {
            *t = (ev_type_t)i;
            return 0;
        }
    }
    return -1;
}

void ev_init(ev_t *ev)
{
    memset(ev, 0, sizeof(*ev));
}

void ev_free(ev_t *ev)
{
    if (!ev)
        return;
    free(ev->channel);
    free(ev->epoch);
    if (ev->flag) {
        flag_free(ev->flag);
        free(ev->flag);
    }
    free(ev->data);
    free(ev->actor);
    ev_init(ev);
}

/* ==== value check ======================================================== */

int ev_value_check(const msgpack_object *o, int depth, const char **err)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
    case MSGPACK_OBJECT_BOOLEAN:
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
    case MSGPACK_OBJECT_STR:
    case MSGPACK_OBJECT_BIN:
        return 0;
    case MSGPACK_OBJECT_ARRAY:
        if (depth + 1 > EV_MAX_DEPTH)
            goto too_deep;
        for (uint32_t i = 0; i < o->via.array.size; i++)
            if (ev_value_check(&o->via.array.ptr[i], depth + 1, err) != 0)
                return -1;
        return 0;
    case MSGPACK_OBJECT_MAP:
        if (depth + 1 > EV_MAX_DEPTH)
            goto too_deep;
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            if (k->type != MSGPACK_OBJECT_STR && k->type != MSGPACK_OBJECT_BIN) {
                *err = "map keys must be strings";
                return -1;
            }
            if (ev_value_check(&o->via.map.ptr[i].val, depth + 1, err) != 0)
                return -1;
        }
        return 0;
    case MSGPACK_OBJECT_EXT:
    default:
        *err = "msgpack ext values have no JSON form";
        return -1;
    }
too_deep:
    *err = "nested deeper than 32 levels";
    return -1;
}

/* ==== encoding =========================================================== */

static int pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, s, n);
}

/* Checks what ev_encode_body needs. @return 0 or -1. */
static int body_ok(const ev_t *ev, size_t limit)
{
    const char *err;
    size_t end;
    if ((unsigned)ev->type >= EV_TYPE_COUNT)
        return -1;
    if (ev->actor && strlen(ev->actor) > EV_MAX_ACTOR)
        return -1;
    if (ev_type_is_flag(ev->type)) {
        if (!ev->flag || ev->data || flag_validate(ev->flag, &err) != 0)
            return -1;
    } else {
        if (!ev->data || ev->flag || ev->data_len > limit)
            return -1;
        /* data sits inside the body map: one level less to nest */
        if (mp_scan(ev->data, ev->data_len, EV_MAX_DATA_DEPTH, MP_SCAN_JSON,
                    &end, &err) != 0 || end != ev->data_len)
            return -1;
    }
    return 0;
}

/* The body, at most limit bytes. */
static int encode_body(const ev_t *ev, buf_t *out, size_t limit)
{
    if (out->err || body_ok(ev, limit) != 0)
        return -1;
    size_t start = out->len;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, buf_msgpack_write);
    int r = msgpack_pack_map(&pk, 3 + (ev->actor != NULL));
    r |= pack_str(&pk, "type") | pack_str(&pk, ev_type_name(ev->type));
    r |= pack_str(&pk, "ts") | msgpack_pack_uint64(&pk, ev->ts);
    if (ev_type_is_flag(ev->type)) {
        r |= pack_str(&pk, "flag") | flag_pack(ev->flag, &pk);
    } else {
        r |= pack_str(&pk, "data");
        r |= buf_append(out, ev->data, ev->data_len);
    }
    if (ev->actor)
        r |= pack_str(&pk, "actor") | pack_str(&pk, ev->actor);
    if (r == 0 && !out->err && out->len - start > limit)
        r = -1;
    if (r != 0 || out->err)
        return buf_rollback(out, start);
    return 0;
}

int ev_encode_body(const ev_t *ev, buf_t *out)
{
    return encode_body(ev, out, EV_MAX_BODY);
}

static int epoch_valid(const char *s, size_t n)
{
    if (n == 0 || n > EV_MAX_EPOCH)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return -1;
    return 0;
}

int ev_encode(const ev_t *ev, buf_t *out)
{
    const char *err;
    if (out->err || !ev->channel || !ev->epoch ||
        name_channel_valid(ev->channel, strlen(ev->channel), &err) != 0 ||
        epoch_valid(ev->epoch, strlen(ev->epoch)) != 0)
        return -1;
    size_t start = out->len;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, buf_msgpack_write);
    int r = msgpack_pack_array(&pk, 4);
    r |= msgpack_pack_uint32(&pk, EV_HEADER_VERSION);
    r |= pack_str(&pk, ev->channel) | pack_str(&pk, ev->epoch);
    r |= msgpack_pack_uint64(&pk, ev->offset);
    if (r != 0 || out->err ||
        encode_body(ev, out, EV_MAX_BYTES - (out->len - start)) != 0) {
        return buf_rollback(out, start);
    }
    return 0;
}

/* ==== decoding =========================================================== */

static int derr(char *eb, size_t el, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int derr(char *eb, size_t el, const char *fmt, ...)
{
    if (eb && el) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(eb, el, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* str or bin (Lua's cmsgpack may write either). */
static int str_of(const msgpack_object *o, const char **p, size_t *n)
{
    if (o->type == MSGPACK_OBJECT_STR) {
        *p = o->via.str.ptr;
        *n = o->via.str.size;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_BIN) {
        *p = o->via.bin.ptr;
        *n = o->via.bin.size;
        return 0;
    }
    return -1;
}

/* A positive integer, or a double holding an exact non-negative integer
 * (Lua numbers are doubles). */
static int uint_of(const msgpack_object *o, uint64_t *v)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        *v = o->via.u64;
        return 0;
    }
    if ((o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32) &&
        o->via.f64 >= 0 && o->via.f64 < 18446744073709551616.0 &&
        o->via.f64 == floor(o->via.f64)) {
        *v = (uint64_t)o->via.f64;
        return 0;
    }
    return -1;
}

static char *dup_n(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        if (n)
            memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

static int decode_header(const msgpack_object *o, ev_t *ev, char *eb, size_t el)
{
    const char *p, *err;
    size_t n;
    uint64_t v;

    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 4)
        return derr(eb, el, "header: must be an array of 4 elements");
    const msgpack_object *a = o->via.array.ptr;
    if (uint_of(&a[0], &v) != 0 || v != EV_HEADER_VERSION)
        return derr(eb, el, "header[0]: unsupported version (want %d)", EV_HEADER_VERSION);
    if (str_of(&a[1], &p, &n) != 0)
        return derr(eb, el, "header[1] (channel): must be a string");
    if (name_channel_valid(p, n, &err) != 0)
        return derr(eb, el, "header[1] (channel): %s", err);
    if (!(ev->channel = dup_n(p, n)))
        return derr(eb, el, "out of memory");
    if (str_of(&a[2], &p, &n) != 0 || epoch_valid(p, n) != 0)
        return derr(eb, el, "header[2] (epoch): must be 1-%d bytes of printable ASCII",
                    EV_MAX_EPOCH);
    if (!(ev->epoch = dup_n(p, n)))
        return derr(eb, el, "out of memory");
    if (uint_of(&a[3], &ev->offset) != 0)
        return derr(eb, el, "header[3] (offset): must be a non-negative integer");
    return 0;
}

enum { B_TYPE, B_TS, B_FLAG, B_DATA, B_ACTOR, B_COUNT };

static int decode_body(const msgpack_object *o, ev_t *ev, char *eb, size_t el)
{
    static const char *const names[B_COUNT] = { "type", "ts", "flag", "data", "actor" };
    unsigned seen = 0;
    const char *p, *err;
    size_t n;

    if (o->type != MSGPACK_OBJECT_MAP)
        return derr(eb, el, "body: must be a map");
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        int fi = -1;
        if (str_of(k, &p, &n) != 0)
            return derr(eb, el, "body: map key is not a string");
        for (int j = 0; j < B_COUNT; j++)
            if (strlen(names[j]) == n && memcmp(names[j], p, n) == 0)
                fi = j;
        if (fi < 0) {
            int shown = n > 40 ? 40 : (int)n;
            for (int j = 0; j < shown; j++)
                if ((unsigned char)p[j] < 0x20 || (unsigned char)p[j] >= 0x7f)
                    shown = j;
            return derr(eb, el, "body: unknown field \"%.*s%s\"", shown, p,
                        shown < (int)n ? "..." : "");
        }
        if (seen & (1u << fi))
            return derr(eb, el, "body.%s: duplicate field", names[fi]);
        seen |= 1u << fi;
        switch (fi) {
        case B_TYPE:
            if (str_of(v, &p, &n) != 0)
                return derr(eb, el, "body.type: must be a string");
            if (ev_type_parse(p, n, &ev->type) != 0)
                return derr(eb, el, "body.type: unknown event type");
            break;
        case B_TS:
            if (uint_of(v, &ev->ts) != 0)
                return derr(eb, el, "body.ts: must be a non-negative integer");
            break;
        case B_FLAG:
            if (!(ev->flag = malloc(sizeof(*ev->flag))))
                return derr(eb, el, "out of memory");
            if (flag_unpack(v, ev->flag, eb, el) != 0) {
                free(ev->flag);
                ev->flag = NULL;
                return -1;
            }
            break;
        case B_DATA: {
            if (ev_value_check(v, 1, &err) != 0)
                return derr(eb, el, "body.data: %s", err);
            buf_t b;
            msgpack_packer pk;
            buf_init(&b);
            b.limit = EV_MAX_BYTES;
            msgpack_packer_init(&pk, &b, buf_msgpack_write);
            if (msgpack_pack_object(&pk, *v) != 0 || b.err) {
                buf_free(&b);
                return derr(eb, el, "body.data: too large");
            }
            ev->data = buf_steal(&b, &ev->data_len);
            if (!ev->data)
                return derr(eb, el, "out of memory");
            break;
        }
        case B_ACTOR:
            if (v->type == MSGPACK_OBJECT_NIL)
                break;
            if (str_of(v, &p, &n) != 0 || n > EV_MAX_ACTOR || (n && memchr(p, 0, n)))
                return derr(eb, el, "body.actor: must be a string of at most %d bytes",
                            EV_MAX_ACTOR);
            if (!(ev->actor = dup_n(p, n)))
                return derr(eb, el, "out of memory");
            break;
        }
    }
    if (!(seen & (1u << B_TYPE)))
        return derr(eb, el, "body: missing field \"type\"");
    if (!(seen & (1u << B_TS)))
        return derr(eb, el, "body: missing field \"ts\"");
    if (ev_type_is_flag(ev->type)) {
        if (!ev->flag)
            return derr(eb, el, "body: type %s needs a \"flag\"", ev_type_name(ev->type));
        if (ev->data)
            return derr(eb, el, "body.data: only allowed for type message");
    } else {
        if (!ev->data)
            return derr(eb, el, "body: type message needs \"data\"");
        if (ev->flag)
            return derr(eb, el, "body.flag: not allowed for type message");
    }
    return 0;
}

/* Unpacks the one object in p[0..n) (already checked by mp_scan). */
static int unpack_one(msgpack_unpacked *u, const char *p, size_t n)
{
    size_t off = 0;
    return msgpack_unpack_next(u, p, n, &off) == MSGPACK_UNPACK_SUCCESS && off == n ? 0 : -1;
}

static int decode(const char *p, size_t n, ev_t *ev, int with_header,
                  char *eb, size_t el)
{
    const char *err;
    size_t hlen = 0, blen;

    ev_init(ev);
    if (eb && el)
        eb[0] = '\0';
    if (!p || n == 0)
        return derr(eb, el, "empty message");
    if (n > EV_MAX_BYTES)
        return derr(eb, el, "message larger than %d bytes", EV_MAX_BYTES);
    if (with_header && mp_scan(p, n, MP_MAX_DEPTH, 0, &hlen, &err) != 0)
        return derr(eb, el, "header: %s", err);
    if (hlen == n)
        return derr(eb, el, "body: missing");
    if (mp_scan(p + hlen, n - hlen, MP_MAX_DEPTH, 0, &blen, &err) != 0)
        return derr(eb, el, "body: %s", err);
    if (hlen + blen != n)
        return derr(eb, el, "%zu trailing bytes after the body", n - hlen - blen);

    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    int r = 0;
    if (with_header) {
        if (unpack_one(&u, p, hlen) != 0)
            r = derr(eb, el, "header: malformed msgpack");
        else
            r = decode_header(&u.data, ev, eb, el);
    }
    if (r == 0) {
        msgpack_unpacked_destroy(&u);
        msgpack_unpacked_init(&u);
        if (unpack_one(&u, p + hlen, blen) != 0)
            r = derr(eb, el, "body: malformed msgpack");
        else
            r = decode_body(&u.data, ev, eb, el);
    }
    msgpack_unpacked_destroy(&u);
    if (r != 0)
        ev_free(ev);
    return r;
}

int ev_decode(const char *p, size_t n, ev_t *ev, char *errbuf, size_t errlen)
{
    return decode(p, n, ev, 1, errbuf, errlen);
}

int ev_decode_body(const char *p, size_t n, ev_t *ev, char *errbuf, size_t errlen)
{
    return decode(p, n, ev, 0, errbuf, errlen);
}
