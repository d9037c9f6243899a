/*
 * metrics — registers the gateway's metric table (metrics.h).
 */
#include "gateway/metrics.h"

static const double fan_bounds[] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5,
};

#define counter(name, help)   metrics_counter(name, help)
#define gauge(name, help)     metrics_gauge(name, help)
#define histogram(name, help) \
    metrics_histogram(name, help, fan_bounds, sizeof(fan_bounds) / sizeof(fan_bounds[0]))

void gw_metrics_init(gw_metrics_t *m)
{
#define GW_METRIC_REGISTER(field, kind, name, help) m->field = kind(name, help);
    GW_METRICS(GW_METRIC_REGISTER)
#undef GW_METRIC_REGISTER
}
