/*
 * rconn — a Redis connection (hiredis async on libevent) that reconnects by
 * itself: capped exponential backoff with jitter (100 ms doubling to 5 s),
 * AUTH and SELECT from the URL on every connect, and a state callback so the
 * owner can reload scripts, resubscribe and flip readiness.
 *
 * With a redis+sentinel:// URL it asks the sentinels for the master on
 * every (re)connect, refuses a node whose ROLE is not master, and follows
 * +switch-master (see rconn.c). The sentinels' password is the URL's
 * sentinel_password, else FLAGCAST_REDIS_SENTINEL_PASSWORD from the
 * environment (read by rconn_new, so both daemons honour it).
 *
 * While disconnected, rconn_command() fails at once (the caller answers 503
 * or retries later); it never queues unbounded work.
 */
#ifndef FLAGCAST_RCONN_H
#define FLAGCAST_RCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>
#include <hiredis/async.h>

#include "common/redis_url.h"   /* redis_url_t, redis_url_parse: users of rconn need them */

typedef struct rconn rconn_t;

/* Called on the loop thread when the connection becomes ready (connected = 1,
 * after AUTH/SELECT) and when it is lost (connected = 0). */
typedef void rconn_state_cb(rconn_t *rc, int connected, void *arg);

/* 0 if rconn can serve this kind of URL, else -1 with *err saying why (a
 * static message): the daemons check it at start, before anything else. */
int rconn_url_supported(const redis_url_t *url, const char **err);

/* @return the connection, or NULL (out of memory, or a URL kind that
 * rconn_url_supported() refuses: logged). */
rconn_t *rconn_new(struct event_base *base, const redis_url_t *url,
                   const char *name, rconn_state_cb *cb, void *arg);
/* Command timeout and health ping interval in ms (0 = off; defaults 2000
 * and 1000). A tracked command whose reply is later than timeout_ms, or a
 * ping unanswered that long, fails the connection: pending callbacks get a
 * NULL reply, the state callback reports it down, and it reconnects with
 * backoff. On a subscribed connection the ping is a SUBSCRIBE to a private
 * channel. Call before rconn_start(). */
void rconn_set_timeouts(rconn_t *rc, unsigned timeout_ms, unsigned ping_ms);
/* The subscribed connection's ping channel is "<prefix>:rconn-ping:<name>"
 * (prefix NULL or "": "flagcast"), so it stays inside the deployment's key
 * prefix (FLAGCAST_REDIS_PREFIX). */
void rconn_set_ping_prefix(rconn_t *rc, const char *prefix);
/* True while NULL replies are delivered because of a timeout. */
bool rconn_timed_out(const rconn_t *rc);
/* Pure, exposed for unit tests: ms until a reply sent at `oldest` (ms, 0 = none) is overdue, 0 if it
 * is, -1 if nothing is outstanding or the timeout is off. */
long rconn_overdue_in(uint64_t now, uint64_t oldest, unsigned timeout_ms);
/* Starts connecting (asynchronously). @return 0 or -1. */
int  rconn_start(rconn_t *rc);
bool rconn_ready(const rconn_t *rc);
/* The hiredis context while ready, else NULL. Valid until the next state
 * callback; never store it. */
redisAsyncContext *rconn_ctx(rconn_t *rc);
/* Sends a command while ready. @return 0, or -1 if not connected (fn is then
 * never called). When the connection drops, pending callbacks are called
 * with a NULL reply. */
int  rconn_command(rconn_t *rc, redisCallbackFn *fn, void *privdata, const char *fmt, ...);
int  rconn_command_argv(rconn_t *rc, redisCallbackFn *fn, void *privdata,
                       int argc, const char **argv, const size_t *argvlen);
/* Drops the current connection (for tests / after a protocol error); it
 * reconnects with backoff. */
void rconn_drop(rconn_t *rc);
/* Number of successful reconnects after the first connect. */
unsigned long rconn_reconnects(const rconn_t *rc);
/* Sentinel mode: +switch-master events seen for our master. */
unsigned long rconn_switches(const rconn_t *rc);
/* The data node's address: the URL's, or the master a sentinel named last.
 * Valid until the next state callback. */
const char *rconn_addr(const rconn_t *rc, int *port);
/* Pure, exposed for unit tests: whether a +switch-master message
 * ("<name> <old-ip> <old-port> <new-ip> <new-port>") is about master. */
int rconn_switch_is_for(const char *payload, size_t len, const char *master);
/* Pure, exposed for unit tests: the new master's address of such a message.
 * @return 0, or -1 if it is not five fields with a valid port. */
int rconn_switch_new_addr(const char *payload, size_t len, char *host, size_t hostlen,
                          int *port);
/* Disconnects and frees; pending callbacks get a NULL reply. */
void rconn_free(rconn_t *rc);

#endif
