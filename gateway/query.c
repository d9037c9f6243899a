/*
 * query — parsing of the SSE request's query string into a filter request.
 *
 * One pass over `name=value` pairs split at '&'. Name and value are
 * percent-decoded into one scratch buffer (the query is bounded, so is the
 * buffer); list values are split at ',' after decoding. Every value goes
 * through the same validators as WS subscriptions (filter_add_*, i.e.
 * names.h), so both transports accept exactly the same names. An unknown
 * parameter is an error naming it (a misspelt filter, `flagkey=`, would
 * otherwise widen the stream to every flag); the few names clients add on
 * their own (the cache-buster `_`) are skipped without looking at their
 * values beyond decoding. A malformed escape anywhere is an error: the query
 * as a whole must be well-formed.
 */
#include "gateway/query.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "proto/event.h"
#include "proto/names.h"

void query_init(query_t *q)
{
    memset(q, 0, sizeof *q);
    filter_req_init(&q->req);
}

void query_free(query_t *q)
{
    filter_req_free(&q->req);
    free(q->token);
    free(q->last_event_id);
    query_init(q);
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

long query_decode(const char *s, size_t n, bool plus_space, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= n || (hi = hexval((unsigned char)s[i + 1])) < 0 ||
                (lo = hexval((unsigned char)s[i + 2])) < 0)
                return -1;
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        if (c == '\0')
            return -1;
        out[o++] = (char)c;
    }
    return (long)o;
}

/* A short printable rendering of a value, for error messages. */
static void quote_val(char *dst, size_t dstlen, const char *v, size_t n)
{
    size_t o = 0, max = dstlen > 8 ? dstlen - 8 : 0;
    for (size_t i = 0; i < n && o < max; i++) {
        unsigned char c = (unsigned char)v[i];
        dst[o++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
    }
    if (o < n && o == max) {
        dst[o++] = '.'; dst[o++] = '.'; dst[o++] = '.';
    }
    dst[o] = '\0';
}

static int fail(char *errbuf, size_t errlen, const char *name, const char *what,
                const char *v, size_t n)
{
    if (errbuf && errlen) {
        if (v) {
            char q[64];
            quote_val(q, sizeof q, v, n);
            snprintf(errbuf, errlen, "%s: %s: \"%s\"", name, what, q);
        } else {
            snprintf(errbuf, errlen, "%s: %s", name, what);
        }
    }
    return -1;
}

/* Decimal uint64 > 0, digits only. */
static int parse_id(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 20)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (v == 0)
        return -1;
    *out = v;
    return 0;
}

typedef enum { P_KEY, P_ID, P_TAG, P_CHANNEL } item_kind_t;

static int add_item(query_t *q, item_kind_t k, const char *name, const char *v, size_t n,
                    size_t max_items, char *errbuf, size_t errlen)
{
    const char *err = NULL;
    int r;
    filter_t *f = &q->req.items;
    switch (k) {
    case P_KEY:
        r = filter_add_key(f, v, n, max_items, &err);
        break;
    case P_TAG:
        r = filter_add_tag(f, v, n, max_items, &err);
        break;
    case P_CHANNEL:
        r = filter_add_channel(f, v, n, max_items, &err);
        if (r == 1) {
            q->req.flags_listed = true;
            r = 0;
        }
        if (r == 0)
            q->channels_given = true;
        break;
    case P_ID: {
        uint64_t id;
        if (parse_id(v, n, &id) != 0)
            return fail(errbuf, errlen, name, "not a positive integer", v, n);
        r = filter_add_id(f, id, max_items, &err);
        break;
    }
    default:
        r = -1;
        err = "internal error";
    }
    if (r < 0)
        return fail(errbuf, errlen, name, err ? err : "invalid value", v, n);
    return 0;
}

/* Splits a decoded value at ',' (or takes it whole) and adds each non-empty
 * item. */
static int add_items(query_t *q, item_kind_t k, bool list, const char *name,
                     const char *v, size_t n, size_t max_items, char *errbuf, size_t errlen)
{
    if (!list)
        return n ? add_item(q, k, name, v, n, max_items, errbuf, errlen) : 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || v[i] == ',') {
            if (i > start && add_item(q, k, name, v + start, i - start, max_items,
                                      errbuf, errlen) != 0)
                return -1;
            start = i + 1;
        }
    }
    return 0;
}

static int set_str(char **dst, const char *v, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        return -1;
    memcpy(s, v, n);
    s[n] = '\0';
    free(*dst);
    *dst = s;
    return 0;
}

static bool name_is(const char *name, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(name, lit, n) == 0;
}

/* Names a client may send that are not filters: ignored. */
static bool ignored_param(const char *name, size_t nlen)
{
    return name_is(name, nlen, "_");   /* jQuery's and others' cache-buster */
}

/* @return 0 on success, 1 if the name is unknown (value not looked at),
 * -1 on error (errbuf set). */
static int param(query_t *q, const char *name, size_t nlen, const char *v, size_t n,
                 size_t max_items, char *errbuf, size_t errlen)
{
    char nm[32];
    if (ignored_param(name, nlen))
        return 0;
    if (nlen >= sizeof nm)
        return 1;                      /* unknown: no known name is this long */
    memcpy(nm, name, nlen);
    nm[nlen] = '\0';

    if (name_is(name, nlen, "flagKey"))
        return add_items(q, P_KEY, false, nm, v, n, max_items, errbuf, errlen);
    if (name_is(name, nlen, "flagKeys") || name_is(name, nlen, "flags"))
        return add_items(q, P_KEY, true, nm, v, n, max_items, errbuf, errlen);
    if (name_is(name, nlen, "flagID") || name_is(name, nlen, "flagId"))
        return add_items(q, P_ID, false, nm, v, n, max_items, errbuf, errlen);
    if (name_is(name, nlen, "flagIDs") || name_is(name, nlen, "flagIds"))
        return add_items(q, P_ID, true, nm, v, n, max_items, errbuf, errlen);
    if (name_is(name, nlen, "tags"))
        return add_items(q, P_TAG, true, nm, v, n, max_items, errbuf, errlen);
    if (name_is(name, nlen, "channels"))
        return add_items(q, P_CHANNEL, true, nm, v, n, max_items, errbuf, errlen);
    if (name_is(name, nlen, "subscribeAll")) {
        if (n == 0)
            return 0;
        if ((n == 4 && memcmp(v, "true", 4) == 0) || (n == 1 && v[0] == '1'))
            q->req.subscribe_all = true;
        else if ((n == 5 && memcmp(v, "false", 5) == 0) || (n == 1 && v[0] == '0'))
            q->req.subscribe_all = false;
        else
            return fail(errbuf, errlen, nm, "expected true or false", v, n);
        return 0;
    }
    if (name_is(name, nlen, "token")) {
        if (n == 0)
            return 0;
        if (n > QUERY_MAX_TOKEN)
            return fail(errbuf, errlen, nm, "too long", NULL, 0);
        if (set_str(&q->token, v, n) != 0)
            return fail(errbuf, errlen, nm, "out of memory", NULL, 0);
        return 0;
    }
    if (name_is(name, nlen, "lastEventId") || name_is(name, nlen, "lastEventID")) {
        if (n == 0)
            return 0;
        if (n > QUERY_MAX_CURSOR)
            return fail(errbuf, errlen, nm, "too long", NULL, 0);
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
                return fail(errbuf, errlen, nm, "control character in value", NULL, 0);
        if (set_str(&q->last_event_id, v, n) != 0)
            return fail(errbuf, errlen, nm, "out of memory", NULL, 0);
        return 0;
    }
    return 1;
}

/* Appends a quoted rendering of an unknown name to the list in u (ulen
 * bytes, NUL-terminated), ", "-separated; a full list ends in "...". */
static void note_unknown(char *u, size_t ulen, const char *name, size_t nlen)
{
    size_t used = strlen(u);
    char q[40];

    if (used + 8 >= ulen)
        return;
    quote_val(q, sizeof q, name, nlen);
    if (used + strlen(q) + 6 >= ulen) {
        snprintf(u + used, ulen - used, "%s...", used ? ", " : "");
        u[ulen - 1] = '\0';
        return;
    }
    snprintf(u + used, ulen - used, "%s\"%s\"", used ? ", " : "", q);
}

int query_parse(const char *qs, size_t len, const query_limits_t *lim,
                query_t *q, char *errbuf, size_t errlen)
{
    size_t max_bytes = lim && lim->max_bytes ? lim->max_bytes : QUERY_MAX_BYTES;
    size_t max_items = lim && lim->max_items ? lim->max_items : QUERY_MAX_ITEMS;
    char *scratch = NULL;
    char unknown[160] = "";

    query_free(q);
    if (errbuf && errlen)
        errbuf[0] = '\0';
    if (len && qs[0] == '?') {
        qs++;
        len--;
    }
    if (len > max_bytes) {
        if (errbuf && errlen)
            snprintf(errbuf, errlen, "query string too long (%zu bytes, max %zu)", len, max_bytes);
        return -1;
    }
    if (len == 0)
        return 0;
    if (!(scratch = malloc(len))) {
        fail(errbuf, errlen, "query", "out of memory", NULL, 0);
        goto err;
    }

    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && qs[i] != '&')
            continue;
        const char *pair = qs + start;
        size_t plen = i - start;
        start = i + 1;
        if (plen == 0)
            continue;
        const char *eq = memchr(pair, '=', plen);
        size_t nraw = eq ? (size_t)(eq - pair) : plen;
        long nl = query_decode(pair, nraw, true, scratch);
        if (nl < 0) {
            fail(errbuf, errlen, "query", "bad percent-encoding in parameter name", pair, nraw);
            goto err;
        }
        if (!eq) {                     /* a bare name has no value */
            if (!ignored_param(scratch, (size_t)nl) &&
                param(q, scratch, (size_t)nl, "", 0, max_items, errbuf, errlen) == 1)
                note_unknown(unknown, sizeof unknown, scratch, (size_t)nl);
            continue;
        }
        char *val = scratch + nl;
        long vl = query_decode(eq + 1, plen - nraw - 1, true, val);
        if (vl < 0) {
            char nm[40];
            quote_val(nm, sizeof nm, scratch, (size_t)nl);
            fail(errbuf, errlen, nm, "bad percent-encoding", eq + 1, plen - nraw - 1);
            goto err;
        }
        int pr = param(q, scratch, (size_t)nl, val, (size_t)vl, max_items, errbuf, errlen);
        if (pr < 0)
            goto err;
        if (pr == 1)
            note_unknown(unknown, sizeof unknown, scratch, (size_t)nl);
    }
    if (unknown[0]) {
        if (errbuf && errlen)
            snprintf(errbuf, errlen, "unknown parameter %s (known: %s; ignored: %s)", unknown,
                     QUERY_KNOWN_PARAMS, QUERY_IGNORED_PARAMS);
        goto err;
    }
    free(scratch);
    return 0;
err:
    free(scratch);
    query_free(q);
    return -1;
}

int query_parse_cursor(const char *s, size_t n,
                       const char **channel, size_t *channel_len,
                       const char **epoch, size_t *epoch_len, uint64_t *offset)
{
    const char *p2 = NULL, *p1 = NULL;
    for (size_t i = n; i-- > 0;) {
        if (s[i] == '/') {
            if (!p2)
                p2 = s + i;
            else {
                p1 = s + i;
                break;
            }
        }
    }
    if (!p1 || !p2)
        return -1;
    size_t clen = (size_t)(p1 - s), elen = (size_t)(p2 - p1 - 1);
    const char *off = p2 + 1;
    size_t olen = (size_t)(s + n - off);
    if (name_channel_valid(s, clen, NULL) != 0)
        return -1;
    if (elen == 0 || elen > EV_MAX_EPOCH)
        return -1;
    for (size_t i = 0; i < elen; i++)
        if ((unsigned char)p1[1 + i] <= 0x20 || p1[1 + i] == 0x7f)
            return -1;
    uint64_t v = 0;
    if (olen == 0 || olen > 20)
        return -1;
    for (size_t i = 0; i < olen; i++) {
        if (off[i] < '0' || off[i] > '9')
            return -1;
        unsigned d = (unsigned)(off[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *channel = s;
    *channel_len = clen;
    *epoch = p1 + 1;
    *epoch_len = elen;
    *offset = v;
    return 0;
}

int query_format_cursor(char *out, size_t outlen, const char *channel,
                        const char *epoch, uint64_t offset)
{
    int n = snprintf(out, outlen, "%s/%s/%llu", channel ? channel : "",
                     epoch ? epoch : "", (unsigned long long)offset);
    if (n < 0 || (size_t)n >= outlen)
        return -1;
    return n;
}

int query_cursor_next(const char *s, size_t n, size_t *pos, const char **item, size_t *item_len)
{
    size_t i = *pos, start;

    while (i < n && s[i] == ' ')
        i++;
    if (i >= n) {
        *pos = n;
        return 0;
    }
    start = i;
    while (i < n && s[i] != ' ')
        i++;
    *item = s + start;
    *item_len = i - start;
    *pos = i;
    return 1;
}
