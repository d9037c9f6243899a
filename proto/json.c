/*
 * json — JSON output for proto/ (see json.h).
 *
 * json_str is on the hot path of every render: runs of bytes that need no
 * escaping are copied with one append, and only the rare byte that does is
 * handled one at a time. UTF-8 is validated as it is copied (RFC 3629:
 * no overlong forms, no surrogates, nothing above U+10FFFF); each byte that
 * does not start a valid sequence becomes U+FFFD, so the output is valid
 * UTF-8 whatever the input. U+2028 and U+2029 are escaped because they end a
 * line in JavaScript source.
 *
 * json_msgpack recurses over a msgpack_object tree, bounded by EV_MAX_DEPTH;
 * json_msgpack_bytes first walks the raw bytes with mp_scan, so nothing is
 * unpacked that is too deep or claims more elements than it has bytes.
 */
#include "proto/json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/event.h"
#include "proto/mpscan.h"

static const char hexd[] = "0123456789abcdef";

/* The longest JSON text of a map key that is not a string. */
#define JSON_KEY_MAX 1024

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    if (c < 0xc2)                      /* continuation byte, or overlong C0/C1 */
        return 0;
    if (c < 0xe0) {
        return (n >= 2 && (s[1] & 0xc0) == 0x80) ? 2 : 0;
    }
    if (c < 0xf0) {
        if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if (c == 0xe0 && s[1] < 0xa0)  /* overlong */
            return 0;
        if (c == 0xed && s[1] >= 0xa0) /* surrogates U+D800-DFFF */
            return 0;
        return 3;
    }
    if (c < 0xf5) {
        if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 ||
            (s[3] & 0xc0) != 0x80)
            return 0;
        if (c == 0xf0 && s[1] < 0x90)  /* overlong */
            return 0;
        if (c == 0xf4 && s[1] >= 0x90) /* above U+10FFFF */
            return 0;
        return 4;
    }
    return 0;
}

int json_str(buf_t *b, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, run = 0;

    if (!str) {
        if (n)
            return buf_append(b, "null", 4);
        s = (const unsigned char *)"";
    }
    /* worst case is 6 bytes per input byte; reserve the common case */
    buf_reserve(b, n + 2);
    buf_putc(b, '"');
    while (i < n) {
        unsigned char c = s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t k = utf8_seq(s + i, n - i);
            if (k == 3 && c == 0xe2 && s[i + 1] == 0x80 &&
                (s[i + 2] == 0xa8 || s[i + 2] == 0xa9)) {
                buf_append(b, s + run, i - run);
                buf_puts(b, s[i + 2] == 0xa8 ? "\\u2028" : "\\u2029");
                i += 3;
                run = i;
            } else if (k) {
                i += k;
            } else {
                buf_append(b, s + run, i - run);
                buf_append(b, "\xef\xbf\xbd", 3);
                i++;
                run = i;
            }
            continue;
        }
        buf_append(b, s + run, i - run);
        char esc[7];
        switch (c) {
        case '"':  buf_append(b, "\\\"", 2); break;
        case '\\': buf_append(b, "\\\\", 2); break;
        case '\n': buf_append(b, "\\n", 2); break;
        case '\r': buf_append(b, "\\r", 2); break;
        case '\t': buf_append(b, "\\t", 2); break;
        case '\b': buf_append(b, "\\b", 2); break;
        case '\f': buf_append(b, "\\f", 2); break;
        default:
            memcpy(esc, "\\u00", 4);
            esc[4] = hexd[c >> 4];
            esc[5] = hexd[c & 15];
            buf_append(b, esc, 6);
        }
        i++;
        run = i;
    }
    buf_append(b, s + run, i - run);
    buf_putc(b, '"');
    return b->err ? -1 : 0;
}

int json_cstr(buf_t *b, const char *s)
{
    if (!s)
        return buf_append(b, "null", 4);
    return json_str(b, s, strlen(s));
}

/* ==== numbers ============================================================ */

/* Shortest "%.Ng" text that reads back as the same double. */
static int json_double(buf_t *b, double d, int is_float32)
{
    char tmp[40];
    if (!isfinite(d))
        return buf_append(b, "null", 4);
    int lo = is_float32 ? 6 : 15, hi = is_float32 ? 9 : 17;
    for (int prec = lo; prec <= hi; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
        double back = strtod(tmp, NULL);
        if (is_float32 ? (float)back == (float)d : back == d)
            break;
    }
    return buf_puts(b, tmp);
}

static int json_base64(buf_t *b, const unsigned char *p, size_t n)
{
    static const char tbl[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (buf_reserve(b, (n + 2) / 3 * 4 + 2) != 0)
        return -1;
    char *o = b->data + b->len;
    *o++ = '"';
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = tbl[v >> 18];
        *o++ = tbl[(v >> 12) & 63];
        *o++ = tbl[(v >> 6) & 63];
        *o++ = tbl[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = tbl[v >> 18];
        *o++ = tbl[(v >> 12) & 63];
        *o++ = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
    return 0;
}

/* ==== msgpack values ===================================================== */

static int json_value(buf_t *b, const msgpack_object *o, int depth);

static int json_key(buf_t *b, const msgpack_object *k, int depth)
{
    if (k->type == MSGPACK_OBJECT_STR)
        return json_str(b, k->via.str.ptr, k->via.str.size);
    if (k->type == MSGPACK_OBJECT_BIN)   /* Lua's cmsgpack: strings as bin */
        return json_str(b, k->via.bin.ptr, k->via.bin.size);
    /* A container key: its JSON text, bounded. Each level of such keys
     * escapes the text of the one inside it again, so without the bound the
     * text would double with every level. */
    buf_t tmp;
    buf_init(&tmp);
    tmp.limit = JSON_KEY_MAX;
    int r = json_value(&tmp, k, depth);
    if (r == 0 && !tmp.err)
        r = json_str(b, tmp.data, tmp.len);
    else
        r = -1;
    buf_free(&tmp);
    return r;
}

static int json_value(buf_t *b, const msgpack_object *o, int depth)
{
    char tmp[24];
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return buf_append(b, "null", 4);
    case MSGPACK_OBJECT_BOOLEAN:
        return o->via.boolean ? buf_append(b, "true", 4) : buf_append(b, "false", 5);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        snprintf(tmp, sizeof(tmp), "%" PRIu64, o->via.u64);
        return buf_puts(b, tmp);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        snprintf(tmp, sizeof(tmp), "%" PRId64, o->via.i64);
        return buf_puts(b, tmp);
    case MSGPACK_OBJECT_FLOAT32:
        return json_double(b, o->via.f64, 1);
    case MSGPACK_OBJECT_FLOAT64:
        return json_double(b, o->via.f64, 0);
    case MSGPACK_OBJECT_STR:
        return json_str(b, o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN:
        return json_base64(b, (const unsigned char *)o->via.bin.ptr, o->via.bin.size);
    case MSGPACK_OBJECT_ARRAY:
        if (depth >= EV_MAX_DEPTH)
            goto too_deep;
        buf_putc(b, '[');
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i)
                buf_putc(b, ',');
            if (json_value(b, &o->via.array.ptr[i], depth + 1) != 0)
                return -1;
        }
        return buf_putc(b, ']');
    case MSGPACK_OBJECT_MAP:
        if (depth >= EV_MAX_DEPTH)
            goto too_deep;
        buf_putc(b, '{');
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            if (i)
                buf_putc(b, ',');
            if (json_key(b, &o->via.map.ptr[i].key, depth + 1) != 0)
                return -1;
            buf_putc(b, ':');
            if (json_value(b, &o->via.map.ptr[i].val, depth + 1) != 0)
                return -1;
        }
        return buf_putc(b, '}');
    case MSGPACK_OBJECT_EXT:
    default:
        /* no JSON rendering; ev_value_check keeps these out of events */
        return buf_append(b, "null", 4);
    }
too_deep:
    return -1;
}

int json_msgpack(buf_t *b, const msgpack_object *o)
{
    size_t start = b->len;
    if (b->err)
        return -1;
    if (json_value(b, o, 0) != 0 || b->err)
        return buf_rollback(b, start);  /* too deep or a key too long */
    return 0;
}

/* ==== msgpack bytes, streamed ========================================== */

/* Big-endian integer of n bytes. */
static uint64_t be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

#define STREAM_FALLBACK (-2)

/* Renders one msgpack value straight from its bytes, with an explicit stack
 * and no allocation. @return 0, -1 on bad bytes, or STREAM_FALLBACK for a
 * map key that is a container or ext (rendered by the tree path instead). */
static int json_stream(buf_t *b, const unsigned char *s, size_t n)
{
    struct { uint64_t count, idx; int map; } st[EV_MAX_DEPTH + 1];
    int top = 0;
    size_t i = 0;
    char tmp[32];

    do {
        if (i >= n)
            return -1;
        int is_key = 0;
        if (top > 0) {
            if (st[top].idx > 0)
                buf_putc(b, st[top].map && (st[top].idx & 1) ? ':' : ',');
            is_key = st[top].map && !(st[top].idx & 1);
        }
        unsigned char c = s[i++];
        uint64_t len = 0, count = 0;
        int kind = 0;   /* 1 str, 2 bin, 3 array, 4 map, 5 ext */
        int hl = 0;
        size_t mark = b->len;

        if (c <= 0x7f) {
            snprintf(tmp, sizeof(tmp), "%u", c);
            buf_puts(b, tmp);
        } else if (c >= 0xe0) {
            snprintf(tmp, sizeof(tmp), "%d", (int)(int8_t)c);
            buf_puts(b, tmp);
        } else if (c <= 0x8f) {
            kind = 4; count = c & 0x0f;
        } else if (c <= 0x9f) {
            kind = 3; count = c & 0x0f;
        } else if (c <= 0xbf) {
            kind = 1; len = c & 0x1f;
        } else {
            int w = 0;
            switch (c) {
            case 0xc0: buf_append(b, "null", 4); break;
            case 0xc2: buf_append(b, "false", 5); break;
            case 0xc3: buf_append(b, "true", 4); break;
            case 0xc4: kind = 2; hl = 1; break;
            case 0xc5: kind = 2; hl = 2; break;
            case 0xc6: kind = 2; hl = 4; break;
            case 0xc7: kind = 5; hl = 1; len = 1; break;
            case 0xc8: kind = 5; hl = 2; len = 1; break;
            case 0xc9: kind = 5; hl = 4; len = 1; break;
            case 0xd4: kind = 5; len = 2; break;
            case 0xd5: kind = 5; len = 3; break;
            case 0xd6: kind = 5; len = 5; break;
            case 0xd7: kind = 5; len = 9; break;
            case 0xd8: kind = 5; len = 17; break;
            case 0xd9: kind = 1; hl = 1; break;
            case 0xda: kind = 1; hl = 2; break;
            case 0xdb: kind = 1; hl = 4; break;
            case 0xdc: kind = 3; hl = 2; break;
            case 0xdd: kind = 3; hl = 4; break;
            case 0xde: kind = 4; hl = 2; break;
            case 0xdf: kind = 4; hl = 4; break;
            case 0xca: case 0xcb: {
                w = c == 0xca ? 4 : 8;
                if (n - i < (size_t)w)
                    return -1;
                uint64_t v = be(s + i, w);
                i += (size_t)w;
                double d;
                if (w == 4) {
                    uint32_t v32 = (uint32_t)v;
                    float f;
                    memcpy(&f, &v32, 4);
                    d = f;
                } else {
                    memcpy(&d, &v, 8);
                }
                json_double(b, d, w == 4);
                break;
            }
            case 0xcc: case 0xcd: case 0xce: case 0xcf:
                w = 1 << (c - 0xcc);
                if (n - i < (size_t)w)
                    return -1;
                snprintf(tmp, sizeof(tmp), "%" PRIu64, be(s + i, w));
                i += (size_t)w;
                buf_puts(b, tmp);
                break;
            case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
                w = 1 << (c - 0xd0);
                if (n - i < (size_t)w)
                    return -1;
                uint64_t v = be(s + i, w);
                i += (size_t)w;
                int64_t sv = w == 1 ? (int8_t)v : w == 2 ? (int16_t)v :
                             w == 4 ? (int32_t)v : (int64_t)v;
                snprintf(tmp, sizeof(tmp), "%" PRId64, sv);
                buf_puts(b, tmp);
                break;
            }
            default:   /* 0xc1 */
                return -1;
            }
        }
        if (hl) {
            if (n - i < (size_t)hl)
                return -1;
            uint64_t v = be(s + i, hl);
            i += (size_t)hl;
            if (kind == 3 || kind == 4)
                count = v;
            else
                len += v;
        }
        if (is_key && kind != 1 && kind != 2) {
            if (kind >= 3)
                return STREAM_FALLBACK;
            /* a scalar key: its JSON text, quoted */
            size_t kl = b->len - mark;
            if (kl >= sizeof(tmp))
                return -1;
            memcpy(tmp, b->data + mark, kl);
            b->len = mark;
            json_str(b, tmp, kl);
        }
        if (kind == 1 || kind == 2 || kind == 5) {
            if (len > n - i)
                return -1;
            if (kind == 1 || (kind == 2 && is_key))
                json_str(b, (const char *)s + i, (size_t)len);
            else if (kind == 2)
                json_base64(b, s + i, (size_t)len);
            else
                buf_append(b, "null", 4);
            i += (size_t)len;
        } else if (kind == 3 || kind == 4) {
            if (top >= EV_MAX_DEPTH)
                return -1;
            buf_putc(b, kind == 3 ? '[' : '{');
            if (count > 0) {
                if (count > n - i)
                    return -1;
                top++;
                st[top].count = kind == 4 ? 2 * count : count;
                st[top].idx = 0;
                st[top].map = kind == 4;
                continue;
            }
            buf_putc(b, kind == 3 ? ']' : '}');
        }
        /* one element done: close the containers it completes */
        while (top > 0 && ++st[top].idx == st[top].count) {
            buf_putc(b, st[top].map ? '}' : ']');
            top--;
        }
    } while (top > 0);
    return i == n ? 0 : -1;
}

int json_msgpack_bytes(buf_t *b, const char *p, size_t n)
{
    if (b->err)
        return -1;
    size_t start = b->len;
    int r = json_stream(b, (const unsigned char *)p, n);
    if (r == 0 && !b->err)
        return 0;
    if (b->err)
        return -1;
    buf_rollback(b, start);      /* undo the partial output */
    if (r != STREAM_FALLBACK)
        return -1;

    /* rare: a map key that is itself a container; render via the tree */
    const char *err;
    size_t end, off = 0;
    if (mp_scan(p, n, EV_MAX_DEPTH, 0, &end, &err) != 0 || end != n)
        return -1;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    r = -1;
    if (msgpack_unpack_next(&u, p, n, &off) == MSGPACK_UNPACK_SUCCESS && off == n)
        r = json_msgpack(b, &u.data);
    msgpack_unpacked_destroy(&u);
    if (r != 0)
        buf_rollback(b, start);
    return r;
}
