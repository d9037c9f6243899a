/*
 * mpscan — see mpscan.h. One loop over the bytes with an explicit stack of
 * "elements still expected" per open container; it never recurses, so the
 * C stack is bounded whatever the input.
 */
#include "proto/mpscan.h"

#include <stdint.h>

static uint64_t be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

int mp_scan(const char *p, size_t n, int max_depth, unsigned flags,
            size_t *end, const char **err)
{
    const unsigned char *s = (const unsigned char *)p;
    uint64_t left[MP_MAX_DEPTH + 1];   /* elements still expected per level */
    unsigned char is_map[MP_MAX_DEPTH + 1];
    int top = 0;                       /* open containers */
    size_t i = 0;

    if (max_depth > MP_MAX_DEPTH)
        max_depth = MP_MAX_DEPTH;
    if (max_depth < 0)
        max_depth = 0;
    do {
        if (i >= n)
            goto truncated;
        unsigned char c = s[i++];
        int want_key = (flags & MP_SCAN_JSON) && top > 0 && is_map[top] &&
                       left[top] % 2 == 0;
        if (want_key && !((c >= 0xa0 && c <= 0xbf) || c == 0xd9 || c == 0xda ||
                          c == 0xdb || c == 0xc4 || c == 0xc5 || c == 0xc6)) {
            *err = "msgpack: map key is not a string";
            return -1;
        }
        if ((flags & MP_SCAN_JSON) && ((c >= 0xc7 && c <= 0xc9) ||
                                       (c >= 0xd4 && c <= 0xd8))) {
            *err = "msgpack: ext values have no JSON form";
            return -1;
        }
        uint64_t skip = 0;      /* payload bytes after the header */
        uint64_t count = 0;     /* elements, for containers */
        int container = 0;
        int hl = 0;             /* length-field bytes */

        if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
            /* fixint, nil, bool */
        } else if (c <= 0x8f) {
            container = 1; count = 2u * (c & 0x0f);
        } else if (c <= 0x9f) {
            container = 1; count = c & 0x0f;
        } else if (c <= 0xbf) {
            skip = c & 0x1f;
        } else {
            switch (c) {
            case 0xc4: case 0xd9: hl = 1; break;           /* bin8, str8 */
            case 0xc5: case 0xda: hl = 2; break;
            case 0xc6: case 0xdb: hl = 4; break;
            case 0xc7: hl = 1; skip = 1; break;            /* ext8 + type */
            case 0xc8: hl = 2; skip = 1; break;
            case 0xc9: hl = 4; skip = 1; break;
            case 0xca: skip = 4; break;
            case 0xcb: skip = 8; break;
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xce: case 0xd2: skip = 4; break;
            case 0xcf: case 0xd3: skip = 8; break;
            case 0xd4: skip = 2; break;                    /* fixext: type + data */
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xdc: container = 1; hl = 2; break;
            case 0xdd: container = 1; hl = 4; break;
            case 0xde: container = 2; hl = 2; break;
            case 0xdf: container = 2; hl = 4; break;
            default:
                *err = "msgpack: invalid type byte 0xc1";
                return -1;
            }
            if (hl) {
                if (n - i < (size_t)hl)
                    goto truncated;
                uint64_t v = be(s + i, hl);
                i += (size_t)hl;
                if (container)
                    count = container == 2 ? 2 * v : v;
                else
                    skip += v;
            }
        }
        if (skip) {
            if (skip > n - i)
                goto truncated;
            i += (size_t)skip;
        }
        if (container && count > 0) {
            /* every element takes at least one byte */
            if (count > n - i)
                goto truncated;
            if (top >= max_depth) {
                *err = "msgpack: nesting too deep";
                return -1;
            }
            left[++top] = count;
            is_map[top] = c <= 0x8f || c >= 0xde;
            continue;
        }
        if (container && top >= max_depth) {
            *err = "msgpack: nesting too deep";
            return -1;
        }
        /* one complete element: close every container it completes */
        while (top > 0 && --left[top] == 0)
            top--;
    } while (top > 0);

    *end = i;
    return 0;

truncated:
    *err = "msgpack: truncated or oversized data";
    return -1;
}
