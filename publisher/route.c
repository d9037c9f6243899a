/*
 * route — splitting and matching admin API paths. See route.h.
 */
#include "publisher/route.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

long route_pct_decode(const char *src, size_t n, char *dst, size_t dstlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)src[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= n)
                return -1;
            hi = hexval((unsigned char)src[i + 1]);
            lo = hexval((unsigned char)src[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = hi * 16 + lo;
            i += 2;
        }
        if (c == 0 || o + 1 >= dstlen)
            return -1;
        dst[o++] = (char)c;
    }
    if (dstlen == 0)
        return -1;
    dst[o] = '\0';
    return (long)o;
}

#define MAX_SEGS 8

int route_match(const char *path, route_t *r)
{
    const char *seg[MAX_SEGS];
    size_t len[MAX_SEGS];
    size_t nseg = 0;
    size_t plen = strcspn(path, "?#");
    const char *p = path, *end = path + plen;

    memset(r, 0, sizeof(*r));
    r->id = RT_NOT_FOUND;
    if (plen == 0 || *p != '/')
        return 0;
    while (p < end) {
        const char *s;
        p++; /* skip '/' */
        s = p;
        while (p < end && *p != '/')
            p++;
        if (p == s && p == end)
            break;            /* trailing slash */
        if (nseg == MAX_SEGS)
            return 0;         /* too many segments: no such route */
        seg[nseg] = s;
        len[nseg] = (size_t)(p - s);
        nseg++;
    }
#define IS(i, lit) (len[i] == sizeof(lit) - 1 && memcmp(seg[i], lit, sizeof(lit) - 1) == 0)
    if (nseg == 1) {
        if (IS(0, "healthz")) r->id = RT_HEALTHZ;
        else if (IS(0, "readyz")) r->id = RT_READYZ;
        else if (IS(0, "metrics")) r->id = RT_METRICS;
        return 0;
    }
    if (nseg < 3 || !IS(0, "api") || !IS(1, "v1"))
        return 0;
    if (IS(2, "flags")) {
        if (nseg == 3) {
            r->id = RT_FLAGS;
            return 0;
        }
        if (len[3] == 0)
            return 0;
        long n = route_pct_decode(seg[3], len[3], r->arg, sizeof(r->arg));
        if (n < 0)
            return -1;
        r->arglen = (size_t)n;
        if (nseg == 4)
            r->id = RT_FLAG;
        else if (nseg == 5 && IS(4, "enabled"))
            r->id = RT_FLAG_ENABLED;
        else if (nseg == 5 && IS(4, "segments"))
            r->id = RT_FLAG_SEGMENTS;
        else if (nseg == 5 && IS(4, "variants"))
            r->id = RT_FLAG_VARIANTS;
        return 0;
    }
    if (IS(2, "channels") && nseg == 5 && IS(4, "messages") && len[3] > 0) {
        long n = route_pct_decode(seg[3], len[3], r->arg, sizeof(r->arg));
        if (n < 0)
            return -1;
        r->arglen = (size_t)n;
        r->id = RT_CHANNEL_MESSAGES;
        return 0;
    }
    if (IS(2, "messages") && nseg == 3)
        r->id = RT_MESSAGES;
    return 0;
#undef IS
}

int route_if_match(const char *h, uint64_t *version)
{
    char *e;
    unsigned long long v;
    int quoted = 0;

    if (h == NULL)
        return -1;
    while (*h == ' ')
        h++;
    if (strncmp(h, "W/", 2) == 0)
        h += 2;
    if (*h == '"') {
        quoted = 1;
        h++;
    }
    if (!isdigit((unsigned char)*h))
        return -1;
    errno = 0;
    v = strtoull(h, &e, 10);
    if (errno || v == 0)
        return -1;
    if (quoted) {
        if (*e != '"')
            return -1;
        e++;
    }
    while (*e == ' ')
        e++;
    if (*e != '\0')
        return -1;
    *version = (uint64_t)v;
    return 0;
}
