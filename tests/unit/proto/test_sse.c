/*
 * Unit tests for proto/sse: framing with CR, LF and CRLF in data, id/event
 * cut at line ends, comments and retry; every frame is parsed back with a
 * small WHATWG-conformant event-stream parser to check what a browser sees.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/sse.h"

/* A minimal parser per the HTML spec "event stream interpretation": fills
 * the last event's id/event/data; @return the number of events dispatched. */
typedef struct parsed {
    char id[256], event[256], data[4096];
    int events, comments;
} parsed_t;

static void field(parsed_t *p, char *dbuf, size_t *dlen, const char *line, size_t n)
{
    if (n == 0)
        return;
    if (line[0] == ':') {
        p->comments++;
        return;
    }
    const char *colon = memchr(line, ':', n);
    size_t nl = colon ? (size_t)(colon - line) : n;
    const char *v = colon ? colon + 1 : line + n;
    size_t vl = colon ? n - nl - 1 : 0;
    if (vl && *v == ' ') {
        v++;
        vl--;
    }
    if (nl == 4 && memcmp(line, "data", 4) == 0) {
        memcpy(dbuf + *dlen, v, vl);
        *dlen += vl;
        dbuf[(*dlen)++] = '\n';
    } else if (nl == 2 && memcmp(line, "id", 2) == 0) {
        memcpy(p->id, v, vl);
        p->id[vl] = 0;
    } else if (nl == 5 && memcmp(line, "event", 5) == 0) {
        memcpy(p->event, v, vl);
        p->event[vl] = 0;
    }
}

static void parse(const char *s, size_t n, parsed_t *p)
{
    char dbuf[4096];
    size_t dlen = 0, i = 0;
    memset(p, 0, sizeof(*p));
    while (i < n) {
        size_t j = i;
        while (j < n && s[j] != '\r' && s[j] != '\n')
            j++;
        ck_assert_msg(j < n, "stream does not end with a line end");
        if (j == i) {                       /* blank line: dispatch */
            if (dlen) {
                memcpy(p->data, dbuf, dlen - 1);   /* drop the last LF */
                p->data[dlen - 1] = 0;
                p->events++;
            }
            dlen = 0;
        } else {
            field(p, dbuf, &dlen, s + i, j - i);
        }
        i = j + ((s[j] == '\r' && j + 1 < n && s[j + 1] == '\n') ? 2 : 1);
    }
}

static void roundtrip(const char *data, size_t n)
{
    buf_t b;
    parsed_t p;
    buf_init(&b);
    ck_assert_int_eq(sse_frame(&b, "7", "message", data, n), 0);
    parse(b.data, b.len, &p);
    ck_assert_int_eq(p.events, 1);
    ck_assert_str_eq(p.id, "7");
    ck_assert_str_eq(p.event, "message");
    /* the browser sees the data with every line end normalised to LF */
    char want[4096];
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (data[i] == '\r') {
            want[w++] = '\n';
            if (i + 1 < n && data[i + 1] == '\n')
                i++;
        } else {
            want[w++] = data[i];
        }
    }
    want[w] = 0;
    ck_assert_msg(strcmp(p.data, want) == 0, "got \"%s\" want \"%s\" from %s",
                  p.data, want, b.data);
    buf_free(&b);
}

START_TEST(test_frame_basic)
{
    buf_t b;
    buf_init(&b);
    ck_assert_int_eq(sse_frame(&b, "1", "flag.updated", "{\"a\":1}", 7), 0);
    ck_assert_str_eq(b.data, "id: 1\nevent: flag.updated\ndata: {\"a\":1}\n\n");
    buf_reset(&b);
    ck_assert_int_eq(sse_frame(&b, NULL, NULL, "x", 1), 0);
    ck_assert_str_eq(b.data, "data: x\n\n");
    buf_reset(&b);
    ck_assert_int_eq(sse_frame(&b, NULL, NULL, "", 0), 0);
    ck_assert_str_eq(b.data, "data: \n\n");
    buf_reset(&b);
    ck_assert_int_eq(sse_frame(&b, NULL, NULL, "a\nb", 3), 0);
    ck_assert_str_eq(b.data, "data: a\ndata: b\n\n");
    buf_reset(&b);
    ck_assert_int_eq(sse_frame(&b, NULL, NULL, "a\r\nb\rc\n", 7), 0);
    ck_assert_str_eq(b.data, "data: a\ndata: b\ndata: c\ndata: \n\n");
    buf_free(&b);
}
END_TEST

START_TEST(test_frame_line_ends)
{
    static const char *const cases[] = {
        "line1\nline2", "line1\rline2", "line1\r\nline2", "\n", "\r", "\r\n",
        "\n\n", "\r\r", "\r\n\r\n", "\n\r", "a\n", "\nb", " leading space",
        "x\r\n\ry\n\r\nz", "data: inside", ": not a comment", ""
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        roundtrip(cases[i], strlen(cases[i]));
}
END_TEST

START_TEST(test_frame_id_event_cut)
{
    buf_t b;
    parsed_t p;
    buf_init(&b);
    ck_assert_int_eq(sse_frame(&b, "5\ndata: injected", "ev\r\nid: 9", "real", 4), 0);
    ck_assert_str_eq(b.data, "id: 5\nevent: ev\ndata: real\n\n");
    parse(b.data, b.len, &p);
    ck_assert_int_eq(p.events, 1);
    ck_assert_str_eq(p.id, "5");
    ck_assert_str_eq(p.data, "real");
    buf_free(&b);
}
END_TEST

START_TEST(test_comment_and_retry)
{
    buf_t b;
    parsed_t p;
    buf_init(&b);
    ck_assert_int_eq(sse_comment(&b, "keep-alive"), 0);
    ck_assert_int_eq(sse_comment(&b, NULL), 0);
    ck_assert_int_eq(sse_comment(&b, "two\nlines"), 0);
    ck_assert_int_eq(sse_retry(&b, 3000), 0);
    ck_assert_str_eq(b.data, ": keep-alive\n\n:\n\n: two\n\nretry: 3000\n\n");
    parse(b.data, b.len, &p);
    ck_assert_int_eq(p.events, 0);
    ck_assert_int_eq(p.comments, 3);
    buf_free(&b);
}
END_TEST

START_TEST(test_limit)
{
    buf_t b;
    buf_init(&b);
    b.limit = 10;
    ck_assert_int_eq(sse_frame(&b, NULL, NULL, "0123456789", 10), -1);
    ck_assert_int_eq(b.err, 1);
    ck_assert_int_eq(sse_comment(&b, "x"), -1);
    ck_assert_int_eq(sse_retry(&b, 1), -1);
    buf_free(&b);
}
END_TEST

static Suite *sse_suite(void)
{
    Suite *s = suite_create("sse");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_frame_basic);
    tcase_add_test(tc, test_frame_line_ends);
    tcase_add_test(tc, test_frame_id_event_cut);
    tcase_add_test(tc, test_comment_and_retry);
    tcase_add_test(tc, test_limit);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(sse_suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
