/*
 * fuzz_query — libFuzzer target for the SSE query-string parser
 * (gateway/query.c) and what the gateway does with its result: the filter
 * built from it, its echo, and the cursor splitter. Invariants checked: a
 * successful parse yields sets within their bounds, sorted and unique; a
 * failed parse leaves the query empty with a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "gateway/filter.h"
#include "gateway/query.h"
#include "gateway/wsmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    query_t q;
    char err[256];
    const char *s = (const char *)data;
    query_limits_t lim = { .max_bytes = 0, .max_items = 16 };

    query_init(&q);
    if (query_parse(s, size, &lim, &q, err, sizeof err) == 0) {
        const filter_t *it = &q.req.items;
        if (it->nkeys > 16 || it->nids > 16 || it->ntags > 16 || it->nchannels > 16)
            abort();
        for (uint32_t i = 1; i < it->nkeys; i++)
            if (strcmp(it->keys[i - 1], it->keys[i]) >= 0)
                abort();
        for (uint32_t i = 1; i < it->nids; i++)
            if (it->ids[i - 1] >= it->ids[i])
                abort();
        filter_t f;
        const char *e;
        filter_init(&f);
        if (filter_from_req(&f, &q.req, true, 16, &e) == 0) {
            buf_t b;
            buf_init(&b);
            wsmsg_render_subscribed(WSMSG_FMT_JSON, &f, &b);
            buf_free(&b);
            filter_unsubscribe(&f, &q.req);
            if (f.flags == FILTER_FLAGS_SOME && !f.nkeys && !f.nids && !f.ntags)
                abort();
        }
        filter_free(&f);
    } else if (q.req.items.nkeys || q.token || !err[0]) {
        abort();
    }
    query_free(&q);

    const char *ch, *ep;
    size_t cl, el;
    uint64_t off;
    if (query_parse_cursor(s, size, &ch, &cl, &ep, &el, &off) == 0) {
        if (cl + el + 2 > size || ch != s)
            abort();
    }
    if (size <= 4096) {
        char *out = malloc(size + 1);
        long n = query_decode(s, size, true, out);
        if (n > (long)size)
            abort();
        free(out);
    }
    return 0;
}
