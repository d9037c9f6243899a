/*
 * metrics — a process-wide registry of counters, gauges and histograms,
 * rendered in the Prometheus text format (version 0.0.4).
 *
 * A metric is registered once at start-up (not thread-safe) and updated from
 * any thread afterwards (atomic). Names may carry labels:
 *   metrics_counter("flagcast_connections_total{transport=\"sse\"}", "...")
 * and series of one family (same name before '{') share # HELP / # TYPE.
 */
#ifndef FLAGCAST_METRICS_H
#define FLAGCAST_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include "proto/buf.h"

typedef struct metric metric_t;

metric_t *metrics_counter(const char *name, const char *help);
metric_t *metrics_gauge(const char *name, const char *help);
/* bounds: n ascending upper bounds (le), +Inf is added. */
metric_t *metrics_histogram(const char *name, const char *help,
                            const double *bounds, size_t n);

void     metric_inc(metric_t *m);                 /* counter/gauge += 1 */
void     metric_add(metric_t *m, int64_t v);      /* counter/gauge += v */
void     metric_set(metric_t *m, int64_t v);      /* gauge = v */
int64_t  metric_get(const metric_t *m);
void     metric_observe(metric_t *m, double v);   /* histogram */

/* Appends every registered metric. @return 0 or -1. */
int      metrics_render(buf_t *out);
/* Frees the registry (at exit, for leak checkers). */
void     metrics_free_all(void);

#endif
