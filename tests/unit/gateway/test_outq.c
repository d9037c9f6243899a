/* Unit tests for gateway/outq: shared events, queue accounting, conflation. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gateway/outq.h"
#include "gwtest.h"

#define HEAD 16   /* LWS_PRE on this platform */

static outq_ev_t *flag_oev(const char *key, uint64_t offset)
{
    flag_t f;
    ev_t ev;
    gwt_flag(&f, key, offset, offset, NULL);
    gwt_flag_ev(&ev, EV_FLAG_UPDATED, &f, offset);
    flag_free(&f);
    outq_ev_t *e = outq_ev_new(&ev, HEAD);
    ck_assert_ptr_nonnull(e);
    ck_assert_ptr_null(ev.channel);     /* ownership moved */
    return e;
}

static outq_ev_t *msg_oev(const char *ch, uint64_t offset)
{
    ev_t ev;
    gwt_msg_ev(&ev, ch, offset);
    outq_ev_t *e = outq_ev_new(&ev, HEAD);
    ck_assert_ptr_nonnull(e);
    return e;
}

/* The offsets of the queued events, in order, e.g. "1,3,4". */
static void order(outq_t *q, char *out, size_t outlen)
{
    out[0] = '\0';
    for (uint32_t i = 0; i < q->count; i++) {
        const ev_t *ev = outq_ev_event(q->ring[(q->head + i) % q->cap].ev);
        size_t n = strlen(out);
        snprintf(out + n, outlen - n, "%s%llu", i ? "," : "",
                 ev ? (unsigned long long)ev->offset : 0ull);
    }
}

START_TEST(render_once_per_format)
{
    outq_ev_t *e = flag_oev("alpha", 42);
    size_t n1, n2, n3;
    const char *sse = outq_ev_data(e, OUTQ_FMT_SSE, &n1);
    ck_assert_ptr_nonnull(sse);
    ck_assert_ptr_eq(outq_ev_data(e, OUTQ_FMT_SSE, &n2), sse);   /* same bytes */
    ck_assert_uint_eq(n1, n2);
    ck_assert(strncmp(sse, "id: flags/e1/42\nevent: flag.updated\ndata: {", 43) == 0);
    ck_assert(memcmp(sse + n1 - 2, "\n\n", 2) == 0);
    for (int i = 0; i < HEAD; i++)
        ck_assert_int_eq(sse[-HEAD + i], 0);                  /* headroom is ours */
    const char *js = outq_ev_data(e, OUTQ_FMT_JSON, &n3);
    ck_assert(js[0] == '{' && js[n3 - 1] == '}');
    ck_assert(strstr(js, "\"flagKey\":\"alpha\"") != NULL);
    const char *mp = outq_ev_data(e, OUTQ_FMT_MSGPACK, &n3);
    ck_assert((unsigned char)mp[0] >= 0x80);                  /* a map */
    ck_assert_str_eq(outq_ev_key(e), "alpha");
    ck_assert_uint_eq(outq_ev_refs(e), 1);
    outq_ev_ref(e);
    ck_assert_uint_eq(outq_ev_refs(e), 2);
    outq_ev_unref(e);
    outq_ev_unref(e);

    outq_ev_t *m = msg_oev("chat.room1", 5);
    ck_assert_ptr_null(outq_ev_key(m));
    const char *ms = outq_ev_data(m, OUTQ_FMT_SSE, &n1);
    ck_assert(strncmp(ms, "id: chat.room1/e1/5\nevent: message\n", 35) == 0);
    outq_ev_unref(m);

    outq_ev_t *r = outq_ev_new_raw(": ka\n\n", 6, HEAD);
    ck_assert_ptr_null(outq_ev_event(r));
    ck_assert(memcmp(outq_ev_data(r, OUTQ_FMT_JSON, &n1), ": ka\n\n", 6) == 0 && n1 == 6);
    ck_assert_int_eq(outq_ev_prepare(r, 7), 0);
    outq_ev_unref(r);
    outq_ev_unref(NULL);
}
END_TEST

struct race { outq_ev_t *e; const char *p; size_t n; };

static void *racer(void *arg)
{
    struct race *r = arg;
    r->p = outq_ev_data(r->e, OUTQ_FMT_JSON, &r->n);
    for (int i = 0; i < 1000; i++) {
        outq_ev_ref(r->e);
        outq_ev_unref(r->e);
    }
    return NULL;
}

START_TEST(threads_share_one_rendering)
{
    outq_ev_t *e = flag_oev("k", 1);
    pthread_t t[8];
    struct race r[8];
    for (int i = 0; i < 8; i++) {
        r[i].e = e;
        pthread_create(&t[i], NULL, racer, &r[i]);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    for (int i = 1; i < 8; i++)
        ck_assert_ptr_eq(r[i].p, r[0].p);
    ck_assert_uint_eq(outq_ev_refs(e), 1);
    outq_ev_unref(e);
}
END_TEST

START_TEST(count_limit_exact)
{
    outq_t q;
    outq_limits_t lim = { .max_events = 3, .max_bytes = 0 };
    outq_init(&q, OUTQ_FMT_JSON);
    outq_ev_t *m[5];
    for (int i = 0; i < 5; i++)
        m[i] = msg_oev("chat", (uint64_t)i + 1);
    ck_assert_int_eq(outq_push(&q, m[0], &lim, NULL), OUTQ_OK);
    ck_assert_int_eq(outq_push(&q, m[1], &lim, NULL), OUTQ_OK);
    ck_assert_int_eq(outq_push(&q, m[2], &lim, NULL), OUTQ_OK);
    ck_assert_uint_eq(outq_count(&q), 3);
    ck_assert_int_eq(outq_push(&q, m[3], &lim, NULL), OUTQ_OVERFLOW);
    ck_assert_uint_eq(outq_count(&q), 3);                 /* unchanged */
    ck_assert_uint_eq(outq_ev_refs(m[3]), 1);
    ck_assert_uint_eq(outq_ev_refs(m[0]), 2);
    /* Control items are outside the limits. */
    ck_assert_int_eq(outq_push_ctl(&q, m[4]), OUTQ_OK);
    ck_assert_uint_eq(outq_count(&q), 4);
    ck_assert_uint_eq(outq_ev_count(&q), 3);
    outq_pop(&q);
    ck_assert_int_eq(outq_push(&q, m[3], &lim, NULL), OUTQ_OK);
    outq_clear(&q);
    ck_assert(outq_empty(&q));
    ck_assert_ptr_null(q.ring);
    for (int i = 0; i < 5; i++) {
        ck_assert_uint_eq(outq_ev_refs(m[i]), 1);
        outq_ev_unref(m[i]);
    }
}
END_TEST

START_TEST(byte_limit_exact_and_partial_writes)
{
    outq_t q;
    outq_init(&q, OUTQ_FMT_SSE);
    outq_ev_t *a = msg_oev("chat", 1), *b = msg_oev("chat", 2), *c = msg_oev("chat", 3);
    size_t la, lb, lc;
    outq_ev_data(a, OUTQ_FMT_SSE, &la);
    outq_ev_data(b, OUTQ_FMT_SSE, &lb);
    outq_ev_data(c, OUTQ_FMT_SSE, &lc);
    outq_limits_t lim = { .max_events = 100, .max_bytes = la + lb };
    ck_assert_int_eq(outq_push(&q, a, &lim, NULL), OUTQ_OK);
    ck_assert_int_eq(outq_push(&q, b, &lim, NULL), OUTQ_OK);   /* exactly at the limit */
    ck_assert_uint_eq(outq_bytes(&q), la + lb);
    ck_assert_int_eq(outq_push(&q, c, &lim, NULL), OUTQ_OVERFLOW);

    /* Partial writes: peek gives the unwritten tail of the head. */
    const char *p, *full = outq_ev_data(a, OUTQ_FMT_SSE, NULL);
    size_t n;
    ck_assert_ptr_eq(outq_peek(&q, &p, &n), a);
    ck_assert_ptr_eq(p, full);
    ck_assert_uint_eq(n, la);
    outq_consume(&q, 10);
    ck_assert_uint_eq(outq_head_offset(&q), 10);
    ck_assert_ptr_eq(outq_peek(&q, &p, &n), a);
    ck_assert_ptr_eq(p, full + 10);
    ck_assert_uint_eq(n, la - 10);
    ck_assert_uint_eq(outq_bytes(&q), la + lb - 10);
    outq_consume(&q, la);                                  /* clamped, pops a */
    ck_assert_ptr_eq(outq_peek(&q, &p, &n), b);
    ck_assert_uint_eq(outq_head_offset(&q), 0);
    ck_assert_uint_eq(outq_bytes(&q), lb);
    ck_assert_int_eq(outq_push(&q, c, &lim, NULL), OUTQ_OK);
    outq_consume(&q, lb);
    outq_consume(&q, lc);
    ck_assert(outq_empty(&q));
    ck_assert_uint_eq(outq_bytes(&q), 0);
    ck_assert_uint_eq(outq_ev_bytes(&q), 0);
    ck_assert_ptr_null(outq_peek(&q, &p, &n));
    outq_consume(&q, 5);                                   /* empty: no-op */

    /* One event larger than the byte limit still fits an event-less queue. */
    outq_limits_t tiny = { .max_events = 10, .max_bytes = 1 };
    ck_assert_int_eq(outq_push(&q, a, &tiny, NULL), OUTQ_OK);
    ck_assert_int_eq(outq_push(&q, b, &tiny, NULL), OUTQ_OVERFLOW);
    outq_clear(&q);
    outq_ev_unref(a);
    outq_ev_unref(b);
    outq_ev_unref(c);
}
END_TEST

START_TEST(conflation_keeps_order)
{
    outq_t q;
    outq_limits_t lim = { .max_events = 4, .max_bytes = 0 };
    char buf[128];
    size_t removed;
    outq_init(&q, OUTQ_FMT_JSON);
    /* offsets: 1:a 2:b 3:chat 4:a */
    outq_ev_t *e1 = flag_oev("a", 1), *e2 = flag_oev("b", 2), *e3 = msg_oev("chat", 3),
              *e4 = flag_oev("a", 4), *e5 = flag_oev("a", 5), *e6 = flag_oev("c", 6),
              *e7 = msg_oev("chat", 7), *e8 = flag_oev("b", 8);
    ck_assert_int_eq(outq_push(&q, e1, &lim, NULL), OUTQ_OK);
    ck_assert_int_eq(outq_push(&q, e2, &lim, NULL), OUTQ_OK);
    ck_assert_int_eq(outq_push(&q, e3, &lim, NULL), OUTQ_OK);
    ck_assert_int_eq(outq_push(&q, e4, &lim, NULL), OUTQ_OK);  /* under the limit: kept */
    order(&q, buf, sizeof buf);
    ck_assert_str_eq(buf, "1,2,3,4");
    /* Full: a new "a" replaces both older "a" events, the rest keep order. */
    ck_assert_int_eq(outq_push(&q, e5, &lim, &removed), OUTQ_CONFLATED);
    ck_assert_uint_eq(removed, 2);
    order(&q, buf, sizeof buf);
    ck_assert_str_eq(buf, "2,3,5");
    ck_assert_uint_eq(outq_ev_refs(e1), 1);                 /* reference dropped */
    ck_assert_int_eq(outq_push(&q, e6, &lim, NULL), OUTQ_OK);
    /* Full, and "chat" has no key: overflow, nothing changes. */
    ck_assert_int_eq(outq_push(&q, e7, &lim, NULL), OUTQ_OVERFLOW);
    order(&q, buf, sizeof buf);
    ck_assert_str_eq(buf, "2,3,5,6");
    /* A partly written head is never conflated: b(2) at the head is kept
     * while writing, so b(8) has nothing to replace → overflow. */
    outq_consume(&q, 1);
    ck_assert_int_eq(outq_push(&q, e8, &lim, NULL), OUTQ_OVERFLOW);
    /* Once the head is done, b(8) appends (under the limit again). */
    outq_pop(&q);
    ck_assert_int_eq(outq_push(&q, e8, &lim, NULL), OUTQ_OK);
    order(&q, buf, sizeof buf);
    ck_assert_str_eq(buf, "3,5,6,8");
    outq_clear(&q);
    outq_ev_t *all[] = { e1, e2, e3, e4, e5, e6, e7, e8 };
    for (int i = 0; i < 8; i++) {
        ck_assert_uint_eq(outq_ev_refs(all[i]), 1);
        outq_ev_unref(all[i]);
    }
}
END_TEST

START_TEST(conflation_by_bytes)
{
    outq_t q;
    outq_init(&q, OUTQ_FMT_MSGPACK);
    outq_ev_t *a1 = flag_oev("a", 1), *b2 = flag_oev("b", 2), *a3 = flag_oev("a", 3);
    size_t l1, l2;
    outq_ev_data(a1, OUTQ_FMT_MSGPACK, &l1);
    outq_ev_data(b2, OUTQ_FMT_MSGPACK, &l2);
    outq_limits_t lim = { .max_events = 100, .max_bytes = l1 + l2 };
    ck_assert_int_eq(outq_push(&q, a1, &lim, NULL), OUTQ_OK);
    ck_assert_int_eq(outq_push(&q, b2, &lim, NULL), OUTQ_OK);
    ck_assert_int_eq(outq_push(&q, a3, &lim, NULL), OUTQ_CONFLATED);
    ck_assert_uint_eq(outq_count(&q), 2);
    ck_assert_ptr_eq(outq_peek(&q, NULL, NULL), b2);
    outq_clear(&q);
    outq_ev_unref(a1);
    outq_ev_unref(b2);
    outq_ev_unref(a3);
}
END_TEST

START_TEST(ring_wraps_and_grows)
{
    outq_t q;
    outq_init(&q, OUTQ_FMT_JSON);
    outq_ev_t *e = msg_oev("chat", 1);
    outq_limits_t lim = { .max_events = 1000, .max_bytes = 100 * 1024 * 1024 };
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < round; i++)
            ck_assert_int_eq(outq_push(&q, e, &lim, NULL), OUTQ_OK);
        for (int i = 0; i < round / 2; i++)
            outq_pop(&q);
    }
    size_t expect = 0;
    for (int round = 0; round < 50; round++)
        expect += (size_t)round - (size_t)round / 2;
    ck_assert_uint_eq(outq_count(&q), expect);
    ck_assert_uint_eq(outq_ev_refs(e), expect + 1);
    while (!outq_empty(&q))
        outq_pop(&q);
    ck_assert_ptr_null(q.ring);
    ck_assert_uint_eq(outq_ev_refs(e), 1);
    outq_ev_unref(e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("outq");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, render_once_per_format);
    tcase_add_test(tc, threads_share_one_rendering);
    tcase_add_test(tc, count_limit_exact);
    tcase_add_test(tc, byte_limit_exact_and_partial_writes);
    tcase_add_test(tc, conflation_keeps_order);
    tcase_add_test(tc, conflation_by_bytes);
    tcase_add_test(tc, ring_wraps_and_grows);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
