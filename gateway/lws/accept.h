/*
 * accept — a service thread's sockets before and after lws (accept.c):
 *
 *   - accepting: each worker has its own SO_REUSEPORT listen socket, adopted
 *     into lws as a raw descriptor; the kernel spreads new connections over
 *     the workers (lws's own listen-share option does nothing in lws 4.1.6);
 *   - the head gate: a new connection's head is peeked (MSG_PEEK) and
 *     checked by gateway/headgate.c before lws adopts it as HTTP: over
 *     FLAGCAST_MAX_HEADER_BYTES it gets 431, a bad target 400 (lws would
 *     drop both without a word); heads not complete yet wait in a per-worker
 *     epoll set, with a deadline;
 *   - the reaper: closed SSE peers, noticed through a per-worker epoll set
 *     (edge-triggered EPOLLIN|EPOLLRDHUP) whose fd is itself adopted into
 *     lws, so a close is seen in the same poll() turn and idle connections
 *     cost nothing.
 */
#ifndef FLAGCAST_GATEWAY_LWS_ACCEPT_H
#define FLAGCAST_GATEWAY_LWS_ACCEPT_H

#include <stdbool.h>
#include "gateway/lws/conn.h"

/* The listen socket is readable: accept a burst, each into the gate. */
void accept_ready(gw_worker_t *w);
/* The gate's epoll set is readable. */
void gate_ready(gw_worker_t *w);
/* Every second (all: at stop): heads that never completed, and refusals the
 * client never closed, are closed. */
void gate_expire(gw_worker_t *w, bool all);
/* The reaper's epoll set is readable: closed SSE peers are killed. */
void reap_ready(gw_worker_t *w);
/* Registers SSE connection c with the reaper. */
void reap_watch(gw_worker_t *w, gw_conn_t *c);

#endif
