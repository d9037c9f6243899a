/*
 * metrics — the gateway's metrics, in one table: name, kind, help. Each row
 * becomes a handle in gw_metrics_t; gw_metrics_init registers them all
 * (common/metrics.h renders them on /metrics). Labelled series of one family
 * share their help text through one macro.
 */
#ifndef FLAGCAST_GATEWAY_METRICS_H
#define FLAGCAST_GATEWAY_METRICS_H

#include "common/metrics.h"

#define GW_H_CONNS   "Open streaming connections by transport."
#define GW_H_DRAINED "Connections told to reconnect elsewhere during a drain."

/* X(field, kind, name, help): kind is counter, gauge or histogram (the
 * histogram's bounds are gw_metrics_init's). */
#define GW_METRICS(X)                                                                          \
    X(conns_sse, gauge, "flagcast_gateway_connections{transport=\"sse\"}", GW_H_CONNS)          \
    X(conns_ws, gauge, "flagcast_gateway_connections{transport=\"ws\"}", GW_H_CONNS)            \
    X(conns_rejected, counter, "flagcast_gateway_connections_rejected_total",                  \
      "Connections refused with 503 over FLAGCAST_MAX_CONNECTIONS.")                           \
    X(events_received, counter, "flagcast_gateway_events_received_total",                      \
      "Messages received from Redis pub/sub.")                                                 \
    X(events_malformed, counter, "flagcast_gateway_events_malformed_total",                    \
      "Messages from Redis that failed to decode and were dropped.")                           \
    X(deliveries, counter, "flagcast_gateway_deliveries_total",                                \
      "Events queued for a client connection.")                                                \
    X(conflations, counter, "flagcast_gateway_conflations_total",                              \
      "Queued flag events replaced by a newer event of the same flag.")                        \
    X(drops, counter, "flagcast_gateway_drops_total",                                          \
      "Events dropped for a connection (queue over its limit).")                               \
    X(slow_disconnects, counter, "flagcast_gateway_slow_consumer_disconnects_total",           \
      "Connections closed because their queue passed its limit.")                              \
    X(redis_reconnects, counter, "flagcast_gateway_redis_reconnects_total",                    \
      "Reconnects of the Redis subscriber connection.")                                        \
    X(ws_errors, counter, "flagcast_gateway_ws_client_errors_total",                           \
      "Malformed or unknown WebSocket client messages.")                                       \
    X(fanout_seconds, histogram, "flagcast_gateway_fanout_seconds",                            \
      "Hand-off of an event to a service thread until its last write there.")                  \
    X(auth_refused, counter, "flagcast_gateway_auth_refused_total",                            \
      "Connections or auth messages refused for a missing or invalid token (401, WS 4401).")   \
    X(auth_expired, counter, "flagcast_gateway_auth_expired_total",                            \
      "Connections closed because their token expired.")                                       \
    X(resumes, counter, "flagcast_gateway_resumes_total",                                      \
      "Channel positions clients asked to resume from (Last-Event-ID, WS since).")             \
    X(history_reads, counter, "flagcast_gateway_history_reads_total",                          \
      "XRANGE pages read from history, for resumes and gap fills.")                            \
    X(gap_fills, counter, "flagcast_gateway_gap_fills_total",                                  \
      "Gaps filled from history: a lost pub/sub message or a Redis reconnect.")                \
    X(resyncs, counter, "flagcast_gateway_resyncs_total",                                      \
      "Resyncs sent (flags: snapshots) where history could not fill a gap.")                   \
    X(offsets_rejected, counter, "flagcast_gateway_offsets_rejected_total",                    \
      "Live events dropped because their offset is not in the channel's history (a writer outside the publisher)") \
    X(rollbacks, counter, "flagcast_gateway_history_rollbacks_total",                          \
      "Channels whose history was found behind the position delivered (Redis restarted from older data): clients resynced") \
    X(draining, gauge, "flagcast_gateway_draining",                                            \
      "1 from SIGTERM/SIGINT on: /readyz answers 503 and clients are drained.")                \
    X(drained_sse, counter, "flagcast_gateway_drained_total{transport=\"sse\"}", GW_H_DRAINED) \
    X(drained_ws, counter, "flagcast_gateway_drained_total{transport=\"ws\"}", GW_H_DRAINED)

typedef struct gw_metrics {
#define GW_METRIC_FIELD(field, kind, name, help) metric_t *field;
    GW_METRICS(GW_METRIC_FIELD)
#undef GW_METRIC_FIELD
} gw_metrics_t;

/* Registers every metric of the table into m. Call once. */
void gw_metrics_init(gw_metrics_t *m);

#endif
