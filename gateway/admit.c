/*
 * admit — admission decisions at the protocol edge (see admit.h): refusals
 * in a form clients retry, health, WebSocket subprotocols, CORS origins.
 * Pure: the glue passes in the process state and sends what is decided.
 */
#include "gateway/admit.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

admit_t admit_stream(bool stopping, bool mirror_loaded, bool over_capacity)
{
    if (stopping)
        return ADMIT_DRAINING;
    if (!mirror_loaded)
        return ADMIT_STARTING;
    if (over_capacity)
        return ADMIT_FULL;
    return ADMIT_OK;
}

bool admit_reserve(atomic_long *count, long cap)
{
    long n = atomic_load(count);

    while (n < cap)
        if (atomic_compare_exchange_weak(count, &n, n + 1))
            return true;
    return false;
}

void admit_release(atomic_long *count)
{
    atomic_fetch_sub(count, 1);
}

const char *admit_reason(admit_t a)
{
    switch (a) {
    case ADMIT_DRAINING: return "draining";
    case ADMIT_STARTING: return "starting";
    case ADMIT_FULL:     return "full";
    default:             return "";
    }
}

const char *admit_message(admit_t a)
{
    switch (a) {
    case ADMIT_DRAINING: return "gateway is draining: reconnect elsewhere";
    case ADMIT_STARTING: return "gateway is starting: flags not loaded yet, retry";
    case ADMIT_FULL:     return "too many connections: retry later";
    default:             return "";
    }
}

unsigned admit_ws_close(admit_t a)
{
    return a == ADMIT_DRAINING ? ADMIT_WS_SERVICE_RESTART : ADMIT_WS_TRY_AGAIN_LATER;
}

unsigned admit_retry_ms(uint64_t *rnd, unsigned base_ms)
{
    uint64_t x = *rnd ? *rnd : 0x9e3779b97f4a7c15ull;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *rnd = x;
    if (base_ms < 2)
        return base_ms;
    /* base/2 + [0, base] */
    return base_ms / 2 + (unsigned)(x % ((uint64_t)base_ms + 1));
}

int admit_render_sse(admit_t a, unsigned retry_ms, buf_t *out)
{
    buf_printf(out, ": refused: %s\nretry: %u\n\n", admit_message(a), retry_ms);
    return out->err ? -1 : 0;
}

const char *admit_health(bool ready, bool mirror_loaded, bool draining)
{
    if (draining)
        return "draining";
    if (!mirror_loaded)
        return "starting: flags not loaded yet";
    if (!ready)
        return "redis unavailable";
    return NULL;
}

static bool served_protocol(const char *s, size_t n)
{
    return (n == 13 && memcmp(s, "flagcast.json", 13) == 0) ||
           (n == 16 && memcmp(s, "flagcast.msgpack", 16) == 0);
}

int admit_ws_subprotocol(const char *hdr, size_t n, char *bad, size_t badlen)
{
    size_t i = 0, o = 0;
    bool any = false;

    if (bad && badlen)
        bad[0] = '\0';
    while (i < n) {
        size_t s, e;
        while (i < n && (hdr[i] == ' ' || hdr[i] == '\t' || hdr[i] == ','))
            i++;
        s = i;
        while (i < n && hdr[i] != ',')
            i++;
        e = i;
        while (e > s && (hdr[e - 1] == ' ' || hdr[e - 1] == '\t'))
            e--;
        if (e == s)
            continue;
        any = true;
        if (served_protocol(hdr + s, e - s))
            return 0;
        /* note the name for the answer, printable only, bounded */
        if (bad && o + 4 < badlen) {
            if (o)
                bad[o++] = ',', bad[o++] = ' ';
            for (size_t k = s; k < e && o + 4 < badlen; k++) {
                unsigned char c = (unsigned char)hdr[k];
                bad[o++] = c >= 0x20 && c < 0x7f && c != '"' && c != '\\' ? (char)c : '?';
            }
            bad[o] = '\0';
        }
    }
    return any ? -1 : 0;
}

bool admit_origin_allowed(const char *list, const char *origin, size_t olen)
{
    const char *s = list ? list : "";

    if (olen == 0 || olen > 255)
        return false;
    for (size_t i = 0; i < olen; i++)
        if ((unsigned char)origin[i] < 0x21 || origin[i] == 0x7f || origin[i] == ',')
            return false;
    while (*s) {
        const char *e = strchr(s, ',');
        size_t n = e ? (size_t)(e - s) : strlen(s);

        while (n && (*s == ' ' || *s == '\t')) {
            s++;
            n--;
        }
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        if ((n == 1 && *s == '*') || (n == olen && strncasecmp(s, origin, n) == 0))
            return true;
        if (!e)
            break;
        s = e + 1;
    }
    return false;
}
