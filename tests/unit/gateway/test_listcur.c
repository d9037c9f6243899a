/* Unit tests for gateway/listcur: the SSE list cursor (building, setting,
 * formatting, rewriting a frame's id line) and its round trip through
 * query.h's parser. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gateway/filter.h"
#include "gateway/listcur.h"
#include "gateway/query.h"
#include "gateway/resync.h"
#include "proto/buf.h"
#include "proto/render.h"
#include "gwtest.h"

static void mkfilter(filter_t *f, filter_flags_t flags, ...)
{
    va_list ap;
    const char *ch, *err;
    filter_init(f);
    f->flags = flags;
    va_start(ap, flags);
    while ((ch = va_arg(ap, const char *)) != NULL)
        ck_assert_int_eq(filter_add_channel(f, ch, strlen(ch), 256, &err), 0);
    va_end(ap);
}

/* p's formatted cursor, in a static buffer. */
static const char *fmt(const listcur_t *p)
{
    static char s[4096];
    buf_t b;
    buf_init(&b);
    listcur_format(p, &b);
    ck_assert_int_eq(b.err, 0);
    ck_assert_uint_lt(b.len, sizeof s);
    memcpy(s, b.len ? b.data : "", b.len);
    s[b.len] = '\0';
    buf_free(&b);
    return s;
}

START_TEST(new_needs_two_channels)
{
    filter_t f;
    mkfilter(&f, FILTER_FLAGS_ALL, NULL);                /* flags alone */
    ck_assert_ptr_null(listcur_new(&f, 16));
    filter_free(&f);
    mkfilter(&f, FILTER_FLAGS_NONE, "chat", NULL);       /* one channel */
    ck_assert_ptr_null(listcur_new(&f, 16));
    filter_free(&f);
    filter_init(&f);                                     /* nothing */
    ck_assert_ptr_null(listcur_new(&f, 16));
    filter_free(&f);

    mkfilter(&f, FILTER_FLAGS_SOME, "chat", NULL);       /* flags + one */
    listcur_t *p = listcur_new(&f, 16);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(p->n, 2);
    ck_assert_str_eq(p->e[0].ch, "flags");
    ck_assert_str_eq(p->e[1].ch, "chat");
    ck_assert(!p->e[0].known && !p->e[1].known);
    free(p);
    filter_free(&f);

    mkfilter(&f, FILTER_FLAGS_NONE, "b", "a", NULL);     /* two channels, no flags */
    p = listcur_new(&f, 16);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(p->n, 2);
    ck_assert_str_eq(p->e[0].ch, "a");                   /* the filter's (sorted) order */
    ck_assert_str_eq(p->e[1].ch, "b");
    ck_assert_ptr_eq(p->e[0].ch, f.channels[0]);         /* points into f */
    free(p);
    filter_free(&f);
}
END_TEST

START_TEST(new_flags_first_and_capped)
{
    filter_t f;
    mkfilter(&f, FILTER_FLAGS_ALL, "c3", "c1", "c2", "c4", NULL);
    listcur_t *p = listcur_new(&f, 3);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(p->n, 3);                          /* max counts flags too */
    ck_assert_str_eq(p->e[0].ch, "flags");
    ck_assert_str_eq(p->e[1].ch, "c1");
    ck_assert_str_eq(p->e[2].ch, "c2");
    listcur_set(p, "c4", "e1", 9);                       /* left out: ignored */
    listcur_set(p, "c2", "e1", 9);
    ck_assert_str_eq(fmt(p), "c2/e1/9");
    free(p);

    p = listcur_new(&f, 5);                              /* exactly all */
    ck_assert_uint_eq(p->n, 5);
    ck_assert_str_eq(p->e[4].ch, "c4");
    free(p);
    p = listcur_new(&f, 100);
    ck_assert_uint_eq(p->n, 5);
    free(p);
    filter_free(&f);
}
END_TEST

/* FAILING: with max 0 and flags in the filter, listcur_new allocates no
 * entry but still writes e[0] ("flags") past the allocation and returns
 * n = 1 (gateway/listcur.c:22-23: the flags entry is not bounded by n; valgrind: invalid write of size 8 at listcur.c:23). */
START_TEST(new_max_zero)
{
    filter_t f;
    mkfilter(&f, FILTER_FLAGS_ALL, "a", "b", NULL);
    /* a cap below two leaves one position at most: the shared id */
    ck_assert_ptr_null(listcur_new(&f, 0));
    ck_assert_ptr_null(listcur_new(&f, 1));
    filter_free(&f);
}
END_TEST

START_TEST(set_and_format)
{
    filter_t f;
    mkfilter(&f, FILTER_FLAGS_ALL, "chat.room1", "user:u1", NULL);
    listcur_t *p = listcur_new(&f, 16);
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(fmt(p), "");                        /* nothing known yet */

    listcur_set(p, "user:u1", "e2", 7);
    ck_assert_str_eq(fmt(p), "user:u1/e2/7");
    listcur_set(p, "flags", "e1", 42);
    ck_assert_str_eq(fmt(p), "flags/e1/42 user:u1/e2/7");   /* cursor order, not set order */
    listcur_set(p, "chat.room1", HIST_EPOCH_NONE, 0);
    ck_assert_str_eq(fmt(p), "flags/e1/42 chat.room1/-/0 user:u1/e2/7");
    listcur_set(p, "flags", "e3", 1);                    /* moved (another epoch) */
    ck_assert_str_eq(fmt(p), "flags/e3/1 chat.room1/-/0 user:u1/e2/7");
    listcur_set(p, "user:u1", "e2", UINT64_MAX);
    ck_assert_str_eq(fmt(p), "flags/e3/1 chat.room1/-/0 user:u1/e2/18446744073709551615");

    /* ignored: a channel not held, NULL arguments, a prefix of a held name */
    listcur_set(p, "chat", "e9", 9);
    listcur_set(p, "user:u", "e9", 9);
    listcur_set(p, NULL, "e9", 9);
    listcur_set(p, "flags", NULL, 9);
    listcur_set(NULL, "flags", "e9", 9);
    ck_assert_str_eq(fmt(p), "flags/e3/1 chat.room1/-/0 user:u1/e2/18446744073709551615");

    /* the longest epoch fits */
    char ep[EV_MAX_EPOCH + 1];
    memset(ep, 'x', EV_MAX_EPOCH);
    ep[EV_MAX_EPOCH] = '\0';
    listcur_set(p, "flags", ep, 5);
    ck_assert_str_eq(p->e[0].epoch, ep);
    free(p);
    filter_free(&f);
}
END_TEST

START_TEST(format_appends)
{
    filter_t f;
    mkfilter(&f, FILTER_FLAGS_NONE, "a", "b", NULL);
    listcur_t *p = listcur_new(&f, 16);
    listcur_set(p, "b", "e1", 2);
    buf_t b;
    buf_init(&b);
    buf_puts(&b, "id: ");
    listcur_format(p, &b);
    ck_assert_str_eq(b.data, "id: b/e1/2");
    buf_free(&b);
    free(p);
    filter_free(&f);
}
END_TEST

/* The round trip: every item of the formatted cursor parses back to what
 * was set, in order, and unknown channels do not appear. */
START_TEST(format_parses_back)
{
    filter_t f;
    const char *err;
    char name[32];
    filter_init(&f);
    f.flags = FILTER_FLAGS_SOME;
    for (int i = 0; i < 15; i++) {
        snprintf(name, sizeof name, i % 2 ? "user:u%d" : "chat.r-%d_x", i);
        ck_assert_int_eq(filter_add_channel(&f, name, strlen(name), 256, &err), 0);
    }
    listcur_t *p = listcur_new(&f, 16);
    ck_assert_uint_eq(p->n, 16);
    for (uint32_t i = 0; i < p->n; i++) {
        if (i % 3 == 2)
            continue;                                    /* left unknown */
        snprintf(name, sizeof name, i % 4 ? "E%u.x" : "-", i);
        listcur_set(p, p->e[i].ch, name, i == 0 ? 0 : (uint64_t)i * 1000003u);
    }
    const char *s = fmt(p);
    ck_assert_uint_le(strlen(s), QUERY_MAX_CURSOR);
    size_t pos = 0, len = strlen(s), ilen, cl, el;
    const char *item, *ch, *ep;
    uint64_t off;
    uint32_t next = 0, items = 0;
    while (query_cursor_next(s, len, &pos, &item, &ilen) == 1) {
        ck_assert_int_eq(query_parse_cursor(item, ilen, &ch, &cl, &ep, &el, &off), 0);
        while (next < p->n && !p->e[next].known)
            next++;
        ck_assert_uint_lt(next, p->n);
        ck_assert_uint_eq(cl, strlen(p->e[next].ch));
        ck_assert(memcmp(ch, p->e[next].ch, cl) == 0);
        ck_assert_uint_eq(el, strlen(p->e[next].epoch));
        ck_assert(memcmp(ep, p->e[next].epoch, el) == 0);
        ck_assert_uint_eq(off, p->e[next].off);
        next++;
        items++;
    }
    while (next < p->n && !p->e[next].known)
        next++;
    ck_assert_uint_eq(next, p->n);                       /* every known one seen */
    ck_assert_uint_eq(items, 11);                        /* 16 minus 5 unknown */
    free(p);
    filter_free(&f);
}
END_TEST

static void frame_of(const listcur_t *p, const char *frame, size_t n, buf_t *out)
{
    buf_init(out);
    listcur_frame(p, frame, n, out);
    ck_assert_int_eq(out->err, 0);
}

START_TEST(frame_replaces_id_line)
{
    filter_t f;
    flag_t fl;
    ev_t ev;
    buf_t in, out, exp;
    mkfilter(&f, FILTER_FLAGS_ALL, "chat", NULL);
    listcur_t *p = listcur_new(&f, 16);
    listcur_set(p, "flags", "e1", 4);
    listcur_set(p, "chat", "e2", 9);

    /* a real shared frame, rendered with the one-channel id */
    gwt_flag(&fl, "k", 1, 4, "beta", NULL);
    gwt_flag_ev(&ev, EV_FLAG_UPDATED, &fl, 4);
    buf_init(&in);
    ck_assert_int_eq(render_event_sse(&ev, "flags/e1/4", &in), 0);
    ck_assert(strncmp(in.data, "id: flags/e1/4\n", 15) == 0);
    frame_of(p, in.data, in.len, &out);
    buf_init(&exp);
    buf_puts(&exp, "id: flags/e1/4 chat/e2/9\n");
    buf_append(&exp, in.data + 15, in.len - 15);
    ck_assert_uint_eq(out.len, exp.len);
    ck_assert(memcmp(out.data, exp.data, exp.len) == 0);
    buf_free(&out);
    buf_free(&exp);

    /* the same event without an id: one in front, the frame whole after it */
    buf_reset(&in);
    ck_assert_int_eq(render_event_sse(&ev, NULL, &in), 0);
    ck_assert(strncmp(in.data, "event: ", 7) == 0);
    frame_of(p, in.data, in.len, &out);
    ck_assert(strncmp(out.data, "id: flags/e1/4 chat/e2/9\n", 25) == 0);
    ck_assert_uint_eq(out.len, 25 + in.len);
    ck_assert(memcmp(out.data + 25, in.data, in.len) == 0);
    buf_free(&out);
    buf_free(&in);
    ev_free(&ev);
    flag_free(&fl);
    free(p);
    filter_free(&f);
}
END_TEST

START_TEST(frame_bytes_kept)
{
    filter_t f;
    buf_t out;
    mkfilter(&f, FILTER_FLAGS_NONE, "a", "b", NULL);
    listcur_t *p = listcur_new(&f, 16);

    /* nothing known yet: an empty id (which EventSource takes as a reset) */
    frame_of(p, "id: a/e1/1\ndata: x\n\n", 20, &out);
    ck_assert_str_eq(out.data, "id: \ndata: x\n\n");
    buf_free(&out);

    listcur_set(p, "a", "e1", 1);
    /* data with a NUL, a CR and an "id: " further on: kept byte for byte */
    static const char fr[] = "id: a/e1/1\nevent: message\ndata: a\0b\r\nid: not-this\n\n";
    size_t n = sizeof fr - 1;
    frame_of(p, fr, n, &out);
    ck_assert_uint_eq(out.len, strlen("id: a/e1/1\n") + n - 11);
    ck_assert(memcmp(out.data, "id: a/e1/1\n", 11) == 0);
    ck_assert(memcmp(out.data + 11, fr + 11, n - 11) == 0);
    buf_free(&out);

    /* an id line that is only "id: " and its newline */
    frame_of(p, "id: \ndata: y\n\n", 14, &out);
    ck_assert_str_eq(out.data, "id: a/e1/1\ndata: y\n\n");
    buf_free(&out);

    /* a frame that is only its id line (the id-only frame): the id replaced */
    listcur_set(p, "b", "e5", 3);
    frame_of(p, "id: a/e1/1\n\n", 12, &out);
    ck_assert_str_eq(out.data, "id: a/e1/1 b/e5/3\n\n");
    buf_free(&out);

    /* a comment frame (no id line): the id in front */
    frame_of(p, ":\n\n", 3, &out);
    ck_assert_str_eq(out.data, "id: a/e1/1 b/e5/3\n:\n\n");
    buf_free(&out);

    /* "idx: " is not an id line */
    frame_of(p, "idx: 1\n\n", 8, &out);
    ck_assert_str_eq(out.data, "id: a/e1/1 b/e5/3\nidx: 1\n\n");
    buf_free(&out);

    /* an empty frame: just the id line */
    frame_of(p, "", 0, &out);
    ck_assert_str_eq(out.data, "id: a/e1/1 b/e5/3\n");
    buf_free(&out);

    /* appends to what out holds */
    buf_init(&out);
    buf_puts(&out, "PRE");
    listcur_frame(p, "data: z\n\n", 9, &out);
    ck_assert_str_eq(out.data, "PREid: a/e1/1 b/e5/3\ndata: z\n\n");
    buf_free(&out);
    free(p);
    filter_free(&f);
}
END_TEST

START_TEST(frame_id_parses_back)
{
    /* the id line the client gets back as Last-Event-ID parses item by item */
    filter_t f;
    buf_t out;
    mkfilter(&f, FILTER_FLAGS_ALL, "chat.room1", "role:admin", NULL);
    listcur_t *p = listcur_new(&f, 16);
    listcur_set(p, "flags", "1700000000000-0", 123);
    listcur_set(p, "role:admin", "-", 0);
    frame_of(p, "id: flags/1700000000000-0/123\ndata: {}\n\n", 40, &out);
    const char *nl = memchr(out.data, '\n', out.len);
    ck_assert_ptr_nonnull(nl);
    ck_assert(strncmp(out.data, "id: ", 4) == 0);
    const char *s = out.data + 4;
    size_t len = (size_t)(nl - s), pos = 0, il, cl, el;
    const char *item, *ch, *ep;
    uint64_t off;
    ck_assert_int_eq(query_cursor_next(s, len, &pos, &item, &il), 1);
    ck_assert_int_eq(query_parse_cursor(item, il, &ch, &cl, &ep, &el, &off), 0);
    ck_assert(cl == 5 && memcmp(ch, "flags", 5) == 0);
    ck_assert(el == 15 && memcmp(ep, "1700000000000-0", 15) == 0);
    ck_assert_uint_eq(off, 123);
    ck_assert_int_eq(query_cursor_next(s, len, &pos, &item, &il), 1);
    ck_assert_int_eq(query_parse_cursor(item, il, &ch, &cl, &ep, &el, &off), 0);
    ck_assert(cl == 10 && memcmp(ch, "role:admin", 10) == 0);
    ck_assert(el == 1 && ep[0] == '-');
    ck_assert_uint_eq(off, 0);
    ck_assert_int_eq(query_cursor_next(s, len, &pos, &item, &il), 0);
    ck_assert_str_eq(nl + 1, "data: {}\n\n");
    buf_free(&out);
    free(p);
    filter_free(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("listcur");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, new_needs_two_channels);
    tcase_add_test(tc, new_flags_first_and_capped);
    tcase_add_test(tc, new_max_zero);
    tcase_add_test(tc, set_and_format);
    tcase_add_test(tc, format_appends);
    tcase_add_test(tc, format_parses_back);
    tcase_add_test(tc, frame_replaces_id_line);
    tcase_add_test(tc, frame_bytes_kept);
    tcase_add_test(tc, frame_id_parses_back);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
