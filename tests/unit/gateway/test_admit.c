/* Unit tests for gateway/admit: refusals clients retry, health, WS
 * subprotocols, CORS origins. */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "gateway/admit.h"

START_TEST(stream_refusals_in_order)
{
    ck_assert_int_eq(admit_stream(false, true, false), ADMIT_OK);
    ck_assert_int_eq(admit_stream(true, false, true), ADMIT_DRAINING);
    ck_assert_int_eq(admit_stream(false, false, true), ADMIT_STARTING);
    ck_assert_int_eq(admit_stream(false, true, true), ADMIT_FULL);
    ck_assert_str_eq(admit_reason(ADMIT_DRAINING), "draining");
    ck_assert_str_eq(admit_reason(ADMIT_STARTING), "starting");
    ck_assert_str_eq(admit_reason(ADMIT_FULL), "full");
    ck_assert_str_eq(admit_reason(ADMIT_OK), "");
    /* WS: codes clients retry on */
    ck_assert_uint_eq(admit_ws_close(ADMIT_DRAINING), 1012);
    ck_assert_uint_eq(admit_ws_close(ADMIT_STARTING), 1013);
    ck_assert_uint_eq(admit_ws_close(ADMIT_FULL), 1013);
}
END_TEST

START_TEST(sse_refusal_body_and_jitter)
{
    buf_t b;
    uint64_t rnd = 0;
    unsigned lo = ~0u, hi = 0;

    buf_init(&b);
    ck_assert_int_eq(admit_render_sse(ADMIT_FULL, 1234, &b), 0);
    buf_putc(&b, '\0');
    ck_assert_str_eq(b.data, ": refused: too many connections: retry later\nretry: 1234\n\n");
    buf_free(&b);
    for (int i = 0; i < 2000; i++) {
        unsigned r = admit_retry_ms(&rnd, 3000);
        ck_assert_uint_ge(r, 1500);
        ck_assert_uint_le(r, 4500);
        lo = r < lo ? r : lo;
        hi = r > hi ? r : hi;
    }
    ck_assert_uint_ne(rnd, 0);
    ck_assert_uint_lt(lo, 1700);   /* spread over the range, not one value */
    ck_assert_uint_gt(hi, 4300);
    ck_assert_uint_eq(admit_retry_ms(&rnd, 1), 1);
    ck_assert_uint_eq(admit_retry_ms(&rnd, 0), 0);
}
END_TEST

START_TEST(health)
{
    ck_assert_ptr_null(admit_health(true, true, false));
    ck_assert_str_eq(admit_health(true, true, true), "draining");
    ck_assert_str_eq(admit_health(false, false, false), "starting: flags not loaded yet");
    ck_assert_str_eq(admit_health(false, true, false), "redis unavailable");
}
END_TEST

static int sp(const char *h, char *bad, size_t badlen)
{
    return admit_ws_subprotocol(h, strlen(h), bad, badlen);
}

START_TEST(ws_subprotocols)
{
    char bad[64];

    ck_assert_int_eq(sp("", bad, sizeof bad), 0);
    ck_assert_int_eq(sp(" , ", bad, sizeof bad), 0);
    ck_assert_int_eq(sp("flagcast.json", bad, sizeof bad), 0);
    ck_assert_int_eq(sp("graphql-ws, flagcast.msgpack", bad, sizeof bad), 0);
    ck_assert_int_eq(sp("flagcast.jsonx", bad, sizeof bad), -1);
    ck_assert_str_eq(bad, "flagcast.jsonx");
    ck_assert_int_eq(sp("mqtt ,\tflagcast-raw", bad, sizeof bad), -1);   /* not a WS protocol */
    ck_assert_str_eq(bad, "mqtt, flagcast-raw");
    ck_assert_int_eq(sp("a\"b", bad, sizeof bad), -1);
    ck_assert_str_eq(bad, "a?b");
    /* a long list is cut to the buffer */
    char big[300];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(sp(big, bad, 16), -1);
    ck_assert_uint_lt(strlen(bad), 16);
}
END_TEST

static bool oa(const char *list, const char *o)
{
    return admit_origin_allowed(list, o, strlen(o));
}

START_TEST(cors_origins)
{
    ck_assert(oa("*", "https://app.example.com"));
    ck_assert(oa(" https://a.example , HTTPS://B.example:8443 ", "https://b.example:8443"));
    ck_assert(oa("https://a.example", "https://a.example"));
    ck_assert(!oa("https://a.example", "https://a.example.evil"));
    ck_assert(!oa("https://a.example", "http://a.example"));
    ck_assert(!oa("", "https://a.example"));
    ck_assert(!oa(NULL, "https://a.example"));
    ck_assert(oa("https://a.example,*", "null"));
    /* never echoed into a header: control characters, commas, huge */
    ck_assert(!oa("*", "https://a.example\r\nx: y"));
    ck_assert(!oa("*", "https://a, https://b"));
    ck_assert(!oa("*", ""));
    char big[300];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert(!oa("*", big));
}
END_TEST

START_TEST(reserve_basic)
{
    atomic_long n = 0;
    ck_assert(admit_reserve(&n, 2));
    ck_assert(admit_reserve(&n, 2));
    ck_assert(!admit_reserve(&n, 2));   /* full: nothing taken */
    ck_assert_int_eq(atomic_load(&n), 2);
    admit_release(&n);
    ck_assert(admit_reserve(&n, 2));
    ck_assert(!admit_reserve(&n, 0));
    ck_assert_int_eq(atomic_load(&n), 2);
}
END_TEST

/* Two threads admit and release at once: the count never goes past the
 * cap (a separate check then increment did, by one). */
#define RES_CAP 3
#define RES_ITERS 200000
static atomic_long res_count, res_max, res_held_over;

static void *res_worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < RES_ITERS; i++) {
        if (!admit_reserve(&res_count, RES_CAP))
            continue;
        long now = atomic_load(&res_count);
        long m = atomic_load(&res_max);
        while (now > m && !atomic_compare_exchange_weak(&res_max, &m, now))
            ;
        if (now > RES_CAP)
            atomic_fetch_add(&res_held_over, 1);
        admit_release(&res_count);
    }
    return NULL;
}

START_TEST(reserve_two_threads_never_over_cap)
{
    pthread_t t[4];
    atomic_store(&res_count, 0);
    atomic_store(&res_max, 0);
    atomic_store(&res_held_over, 0);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, res_worker, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(atomic_load(&res_held_over), 0);
    ck_assert_int_le(atomic_load(&res_max), RES_CAP);
    ck_assert_int_eq(atomic_load(&res_count), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("admit");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, stream_refusals_in_order);
    tcase_add_test(tc, sse_refusal_body_and_jitter);
    tcase_add_test(tc, health);
    tcase_add_test(tc, ws_subprotocols);
    tcase_add_test(tc, cors_origins);
    tcase_add_test(tc, reserve_basic);
    tcase_add_test(tc, reserve_two_threads_never_over_cap);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
