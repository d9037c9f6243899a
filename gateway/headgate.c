/* headgate: see headgate.h. */
#include "gateway/headgate.h"

#include <string.h>

/* The end of the head within buf[0..len): the offset just past it, or 0. */
static size_t head_end(const char *buf, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (i + 1 < len && buf[i + 1] == '\n')
            return i + 2;
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

/* The request target (between the first and second space of the request
 * line) holds nothing lws drops silently: a %00 that decodes to NUL, a raw
 * control byte or DEL. */
static int target_ok(const char *buf, size_t len)
{
    const char *line_end = memchr(buf, '\n', len);
    const char *p = memchr(buf, ' ', len), *end;

    if (line_end == NULL || p == NULL || p > line_end)
        return 1;   /* not a request line lws will take: lws answers it */
    p++;
    end = memchr(p, ' ', (size_t)(line_end - p));
    if (end == NULL)
        end = line_end;
    for (; p < end; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch < 0x20 || ch == 0x7f)
            return 0;
        if (ch == '%' && end - p >= 3 && p[1] == '0' && p[2] == '0')
            return 0;
    }
    return 1;
}

headgate_t headgate_check(const char *buf, size_t len, size_t limit)
{
    size_t e = head_end(buf, len < limit ? len : limit);

    if (e == 0)
        return len >= limit ? HEADGATE_TOO_LARGE : HEADGATE_MORE;
    return target_ok(buf, e) ? HEADGATE_OK : HEADGATE_BAD;
}

const char *headgate_reason(headgate_t v)
{
    switch (v) {
    case HEADGATE_TOO_LARGE:
        return "request head too large";
    case HEADGATE_BAD:
        return "request target holds %00 or a control character";
    default:
        return "";
    }
}
