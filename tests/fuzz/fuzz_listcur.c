/*
 * fuzz_listcur — libFuzzer target for the SSE list cursor
 * (gateway/listcur.c) and its round trip through query.h's cursor parser.
 *
 * Input: byte 0 picks the flags mode (low 2 bits, 3 = NONE) and the cap on
 * channels (high 6 bits, plus one: 1..64); then lines up to an empty line: a line
 * without '/' is a channel for the filter (invalid names are refused by
 * filter_add_channel), a line with '/' is a cursor item
 * "<channel>/<epoch>/<offset>" set on the cursor if query_parse_cursor
 * takes it; everything after the empty line is an SSE frame for
 * listcur_frame. Epochs are set only as events carry them (printable
 * ASCII without space or '/').
 *
 * Invariants checked: listcur_new is NULL exactly when the filter names
 * fewer than two channels, holds flags first and then the filter's
 * channels in order, capped; the formatted cursor walks back item by item
 * (query_cursor_next, query_parse_cursor) to exactly the known positions,
 * in cursor order; the framed output is "id: " + the cursor + "\n" followed
 * by the frame minus its leading "id: " line, or the whole frame if it has
 * none, byte for byte.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "gateway/filter.h"
#include "gateway/listcur.h"
#include "gateway/query.h"
#include "proto/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data, *err;
    filter_t f;
    size_t pos = 1, max;
    listcur_t *p;

    if (size < 1)
        return 0;
    filter_init(&f);
    switch (data[0] & 3) {
    case 0: f.flags = FILTER_FLAGS_ALL; break;
    case 1: f.flags = FILTER_FLAGS_SOME; break;
    default: f.flags = FILTER_FLAGS_NONE; break;
    }
    max = (size_t)(data[0] >> 2);   /* 0..63 */

    /* first pass: the channels */
    for (size_t q = pos; q < size;) {
        const char *nl = memchr(s + q, '\n', size - q);
        size_t n = nl ? (size_t)(nl - (s + q)) : size - q;
        if (n == 0)
            break;
        if (memchr(s + q, '/', n) == NULL)
            (void)filter_add_channel(&f, s + q, n, 64, &err);
        q += n + 1;
    }

    size_t want = (f.flags != FILTER_FLAGS_NONE) + f.nchannels;
    p = listcur_new(&f, max);
    if ((p == NULL) != ((want < max ? want : max) < 2))
        abort();
    if (p == NULL) {
        filter_free(&f);
        return 0;
    }
    if (p->n != (want < max ? want : max))
        abort();
    {
        uint32_t k = 0;
        if (f.flags != FILTER_FLAGS_NONE && p->n > 0 && strcmp(p->e[k++].ch, "flags") != 0)
            abort();
        for (uint32_t i = 0; k < p->n; i++, k++)
            if (p->e[k].ch != f.channels[i] || p->e[k].known)
                abort();
    }

    /* second pass: the positions */
    while (pos < size) {
        const char *nl = memchr(s + pos, '\n', size - pos);
        size_t n = nl ? (size_t)(nl - (s + pos)) : size - pos;
        const char *ch, *ep;
        size_t cl, el;
        uint64_t off;
        if (n == 0) {
            pos++;
            break;
        }
        if (memchr(s + pos, '/', n) &&
            query_parse_cursor(s + pos, n, &ch, &cl, &ep, &el, &off) == 0) {
            char chs[256], eps[EV_MAX_EPOCH + 1];
            /* epochs as events carry them (printable ASCII, no space) and
             * without '/' (query.h): others never reach a cursor */
            bool ep_ok = el < sizeof eps;
            for (size_t i = 0; ep_ok && i < el; i++)
                ep_ok = ep[i] > 0x20 && ep[i] < 0x7f && ep[i] != '/';
            if (cl < sizeof chs && ep_ok && !memchr(ch, 0, cl)) {
                memcpy(chs, ch, cl);
                chs[cl] = '\0';
                memcpy(eps, ep, el);
                eps[el] = '\0';
                listcur_set(p, chs, eps, off);
                /* a held channel is now at exactly that position */
                for (uint32_t i = 0; i < p->n; i++)
                    if (strcmp(p->e[i].ch, chs) == 0 &&
                        (!p->e[i].known || p->e[i].off != off || strcmp(p->e[i].epoch, eps) != 0))
                        abort();
            }
        }
        pos += n + (nl != NULL);
    }

    /* the formatted cursor parses back to the known positions, in order */
    buf_t b;
    buf_init(&b);
    listcur_format(p, &b);
    if (b.err)
        abort();
    {
        size_t cp = 0, il, cl, el;
        const char *item, *ch, *ep, *cs = b.len ? b.data : "";
        uint64_t off;
        uint32_t next = 0;
        while (query_cursor_next(cs, b.len, &cp, &item, &il) == 1) {
            while (next < p->n && !p->e[next].known)
                next++;
            if (next == p->n)
                abort();                       /* more items than known positions */
            if (query_parse_cursor(item, il, &ch, &cl, &ep, &el, &off) != 0)
                abort();
            if (cl != strlen(p->e[next].ch) || memcmp(ch, p->e[next].ch, cl) != 0 ||
                el != strlen(p->e[next].epoch) || memcmp(ep, p->e[next].epoch, el) != 0 ||
                off != p->e[next].off)
                abort();
            next++;
        }
        while (next < p->n && !p->e[next].known)
            next++;
        if (next != p->n)
            abort();                           /* a known position left out */
    }

    /* the frame: the id line replaced, the rest byte for byte */
    {
        const char *fr = s + pos;
        size_t fn = pos <= size ? size - pos : 0;
        const char *nl, *rest = fr;
        size_t rn = fn;
        buf_t out;
        buf_init(&out);
        listcur_frame(p, fr, fn, &out);
        if (out.err)
            abort();
        if (fn > 4 && memcmp(fr, "id: ", 4) == 0 && (nl = memchr(fr, '\n', fn)) != NULL) {
            rest = nl + 1;
            rn = fn - (size_t)(rest - fr);
        }
        if (out.len != 4 + b.len + 1 + rn || memcmp(out.data, "id: ", 4) != 0 ||
            (b.len && memcmp(out.data + 4, b.data, b.len) != 0) || out.data[4 + b.len] != '\n' ||
            (rn && memcmp(out.data + 5 + b.len, rest, rn) != 0))
            abort();
        buf_free(&out);
    }
    buf_free(&b);
    free(p);
    filter_free(&f);
    return 0;
}
