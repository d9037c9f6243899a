/* Unit tests for common/metrics: Prometheus text rendering. */
#include "common/metrics.h"

#include <check.h>
#include <string.h>

START_TEST(test_render)
{
    metric_t *a = metrics_counter("fc_requests_total{class=\"2xx\"}", "requests by class");
    metric_t *g = metrics_gauge("fc_conns", "open connections");
    metric_t *b = metrics_counter("fc_requests_total{class=\"5xx\"}", "");
    static const double bounds[] = { 0.1, 1 };
    metric_t *h = metrics_histogram("fc_latency_seconds{path=\"/x\"}", "latency", bounds, 2);
    metric_inc(a);
    metric_add(a, 4);
    metric_inc(b);
    metric_set(g, 42);
    metric_add(g, -2);
    metric_observe(h, 0.05);
    metric_observe(h, 0.5);
    metric_observe(h, 5);
    ck_assert_int_eq(metric_get(a), 5);
    ck_assert_int_eq(metric_get(g), 40);
    ck_assert_int_eq(metric_get(h), 3);

    buf_t out;
    buf_init(&out);
    ck_assert_int_eq(metrics_render(&out), 0);
    const char *want =
        "# HELP fc_requests_total requests by class\n"
        "# TYPE fc_requests_total counter\n"
        "fc_requests_total{class=\"2xx\"} 5\n"
        "fc_requests_total{class=\"5xx\"} 1\n"
        "# HELP fc_conns open connections\n"
        "# TYPE fc_conns gauge\n"
        "fc_conns 40\n"
        "# HELP fc_latency_seconds latency\n"
        "# TYPE fc_latency_seconds histogram\n"
        "fc_latency_seconds_bucket{path=\"/x\",le=\"0.10000000000000001\"} 1\n"
        "fc_latency_seconds_bucket{path=\"/x\",le=\"1\"} 2\n"
        "fc_latency_seconds_bucket{path=\"/x\",le=\"+Inf\"} 3\n"
        "fc_latency_seconds_sum{path=\"/x\"} 5.5499999999999998\n"
        "fc_latency_seconds_count{path=\"/x\"} 3\n";
    ck_assert_str_eq(out.data, want);
    buf_free(&out);
    metrics_free_all();
    buf_init(&out);
    ck_assert_int_eq(metrics_render(&out), 0);
    ck_assert_uint_eq(out.len, 0);
    buf_free(&out);
}
END_TEST

START_TEST(test_null_safe_and_help_escape)
{
    metric_inc(NULL);
    metric_set(NULL, 1);
    metric_observe(NULL, 1);
    ck_assert_int_eq(metric_get(NULL), 0);
    metric_t *m = metrics_counter("fc_x", "two\nlines \\ here");
    metric_inc(m);
    buf_t out;
    buf_init(&out);
    metrics_render(&out);
    ck_assert_ptr_nonnull(strstr(out.data, "# HELP fc_x two\\nlines \\\\ here\n"));
    buf_free(&out);
    metrics_free_all();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_add_test(tc, test_render);
    tcase_add_test(tc, test_null_safe_and_help_escape);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
