/* Unit tests for gateway/drain: the pacing schedule and the retry jitter. */
#include <check.h>
#include <stdlib.h>
#include "gateway/drain.h"

#define S 1000000000ull

START_TEST(first_close_at_once_last_before_deadline)
{
    drain_t d;
    drain_begin(&d, 100 * S, 10 * S, 4, 1);
    ck_assert_uint_eq(drain_target(&d, 100 * S), 1);          /* i=0 at start */
    ck_assert_uint_eq(drain_target(&d, 100 * S + 2499999999ull), 1);
    ck_assert_uint_eq(drain_target(&d, 100 * S + 2500000000ull), 2);
    ck_assert_uint_eq(drain_target(&d, 105 * S), 3);
    ck_assert_uint_eq(drain_target(&d, 107 * S + S / 2), 4);  /* last at 7.5 s */
    ck_assert_uint_eq(drain_target(&d, 110 * S), 4);
    ck_assert_uint_eq(drain_target(&d, 500 * S), 4);
    ck_assert_uint_eq(drain_target(&d, 50 * S), 1);            /* clock before start */
}
END_TEST

START_TEST(due_and_next_follow_the_closes)
{
    drain_t d;
    drain_begin(&d, 0, 10 * S, 4, 1);
    ck_assert_uint_eq(drain_due(&d, 0), 1);
    ck_assert_uint_eq(drain_next_ns(&d), 0);
    drain_done(&d, 1);
    ck_assert_uint_eq(drain_due(&d, 0), 0);
    ck_assert_uint_eq(drain_next_ns(&d), 2500000000ull);
    ck_assert_uint_eq(drain_due(&d, 6 * S), 2);                /* a late tick catches up */
    drain_done(&d, 2);
    ck_assert_uint_eq(drain_next_ns(&d), 7500000000ull);
    drain_done(&d, 1);
    ck_assert_uint_eq(drain_next_ns(&d), 10 * S);
    ck_assert_uint_eq(drain_due(&d, 20 * S), 0);
    /* more closes than planned (clients that left) never underflow */
    drain_done(&d, 5);
    ck_assert_uint_eq(drain_due(&d, 20 * S), 0);
}
END_TEST

START_TEST(zero_window_or_zero_connections)
{
    drain_t d;
    drain_begin(&d, 5 * S, 0, 1000, 1);
    ck_assert_uint_eq(drain_due(&d, 5 * S), 1000);
    drain_begin(&d, 5 * S, 10 * S, 0, 1);
    ck_assert_uint_eq(drain_target(&d, 5 * S), 0);
    ck_assert_uint_eq(drain_due(&d, 100 * S), 0);
    ck_assert_uint_eq(drain_next_ns(&d), 15 * S);
}
END_TEST

START_TEST(evenly_spread_without_overflow)
{
    /* an hour's window over ten million connections: products pass 2^64 */
    drain_t d;
    uint64_t n = 10000000, w = 3600 * S, prev = 0;
    drain_begin(&d, 0, w, n, 7);
    for (int k = 0; k <= 100; k++) {
        uint64_t t = drain_target(&d, w / 100 * (uint64_t)k);
        ck_assert_uint_ge(t, prev);
        /* within one of the ideal k% */
        ck_assert_uint_le(t > n / 100 * (uint64_t)k ? t - n / 100 * (uint64_t)k
                                                    : n / 100 * (uint64_t)k - t, 1);
        prev = t;
    }
    ck_assert_uint_eq(prev, n);
    d.closed = n / 2;
    ck_assert_uint_eq(drain_next_ns(&d), w / 2);
}
END_TEST

START_TEST(pace_leaves_room_for_the_retry_hint)
{
    ck_assert_uint_eq(drain_pace_ns(10 * S, 3000), 10 * S - 4500000000ull);
    ck_assert_uint_eq(drain_pace_ns(4 * S, 500), 4 * S - 750000000ull);
    ck_assert_uint_eq(drain_pace_ns(4 * S, 3000), 2 * S);       /* at least half */
    ck_assert_uint_eq(drain_pace_ns(10 * S, 0), 10 * S);
    ck_assert_uint_eq(drain_pace_ns(0, 3000), 0);
    ck_assert_uint_eq(drain_pace_ns(3600 * S, 3600000), 1800 * S);
}
END_TEST

START_TEST(retry_jitter_stays_in_range_and_varies)
{
    drain_t d;
    unsigned lo = ~0u, hi = 0;
    int seen[4] = { 0 };
    drain_begin(&d, 0, S, 1, 42);
    for (int i = 0; i < 10000; i++) {
        unsigned r = drain_retry_ms(&d, 3000);
        ck_assert_uint_ge(r, 1500);
        ck_assert_uint_le(r, 4500);
        lo = r < lo ? r : lo;
        hi = r > hi ? r : hi;
        seen[(r - 1500) * 4 / 3001]++;
    }
    ck_assert_uint_lt(lo, 1600);
    ck_assert_uint_gt(hi, 4400);
    for (int i = 0; i < 4; i++)          /* roughly uniform: each quarter ~2500 */
        ck_assert_int_gt(seen[i], 2000);
    ck_assert_uint_eq(drain_retry_ms(&d, 0), 0);
    ck_assert_uint_eq(drain_retry_ms(&d, 1), 1);
    /* seed 0 still produces numbers; different seeds differ */
    drain_t a, b;
    drain_begin(&a, 0, S, 1, 0);
    drain_begin(&b, 0, S, 1, 1);
    ck_assert_uint_ne(a.rnd, 0);
    int differ = 0;
    for (int i = 0; i < 10; i++)
        differ += drain_retry_ms(&a, 3000) != drain_retry_ms(&b, 3000);
    ck_assert_int_gt(differ, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("drain");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, first_close_at_once_last_before_deadline);
    tcase_add_test(tc, due_and_next_follow_the_closes);
    tcase_add_test(tc, zero_window_or_zero_connections);
    tcase_add_test(tc, evenly_spread_without_overflow);
    tcase_add_test(tc, pace_leaves_room_for_the_retry_hint);
    tcase_add_test(tc, retry_jitter_stays_in_range_and_varies);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
