/*
 * replay — a connection's requests to the Redis thread and their answers
 * on its service thread (replay.c): the start of a stream acknowledged once
 * its channels are subscribed, replays from history, snapshots, resyncs.
 *
 * Each answer is applied in the order of the connection's requests: the
 * acknowledgement first (SSE prelude, WS `connected`/`subscribed`), then a
 * snapshot or the replay, then what was queued live meanwhile minus what
 * the replay already covered. The replayed positions stay as the
 * connection's floor (resume.h), so a live event the replay already gave
 * is never written twice.
 */
#ifndef FLAGCAST_GATEWAY_LWS_REPLAY_H
#define FLAGCAST_GATEWAY_LWS_REPLAY_H

#include "gateway/lws/conn.h"

/* A start request whose answer is written after the acknowledgement in b
 * (takes b's storage). @return it, or NULL. */
gw_resume_t *replay_ack_request(buf_t *b);
/* Sends r for c (takes r): c queues live events until the answer. A
 * request while another is under way waits for it (answers stay in the
 * order of the requests); one naming no channel only writes its prelude. */
void replay_start(gw_worker_t *w, gw_conn_t *c, gw_resume_t *r);
/* The Redis thread's answer r (takes it): for its connection, or (r->fd < 0)
 * a channel-wide resync for every local subscriber. */
void replay_answer(gw_worker_t *w, gw_resume_t *r);

#endif
