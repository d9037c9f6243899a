/*
 * rconn — a self-healing hiredis async connection on libevent.
 *
 * States: IDLE → CONNECTING (TCP) → HANDSHAKE (AUTH / SELECT sent) → READY.
 * Any failure or disconnect goes to WAIT, a timer with capped exponential
 * backoff plus jitter, then CONNECTING again. Only READY lets commands
 * through; rconn_command() fails at once otherwise, so nothing piles up
 * while Redis is away. A connect that hangs is given up after
 * RCONN_CONNECT_TIMEOUT_MS.
 *
 * hiredis owns and frees its context after a disconnect callback; we only
 * forget our pointer there. When we drop a connection ourselves we call
 * redisAsyncFree(), which calls the pending callbacks with a NULL reply and
 * then our disconnect callback.
 */
#include "common/rconn.h"
#include "common/log.h"

#include <hiredis/adapters/libevent.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdint.h>
#include <time.h>

/* Tests may #include this file with shorter values. */
#ifndef RCONN_BACKOFF_MIN_MS
#define RCONN_BACKOFF_MIN_MS     100
#endif
#ifndef RCONN_BACKOFF_MAX_MS
#define RCONN_BACKOFF_MAX_MS     5000
#endif
#ifndef RCONN_DEFAULT_TIMEOUT_MS
#define RCONN_DEFAULT_TIMEOUT_MS 2000   /* a reply later than this fails the connection */
#endif
#ifndef RCONN_DEFAULT_PING_MS
#define RCONN_DEFAULT_PING_MS    1000   /* health ping interval while ready */
#endif
#ifndef RCONN_CONNECT_TIMEOUT_MS
#define RCONN_CONNECT_TIMEOUT_MS 3000   /* TCP connect + AUTH/SELECT/PING */
#endif

typedef enum { RC_IDLE, RC_CONNECTING, RC_HANDSHAKE, RC_READY, RC_WAIT } rc_state_t;

struct rconn {
    struct event_base *base;
    redis_url_t        url;
    char               name[64];
    rconn_state_cb    *cb;
    void              *arg;
    redisAsyncContext *ac;
    rc_state_t         state;
    struct event      *timer;        /* backoff wait, or connect timeout */
    unsigned           backoff_ms;
    unsigned long      connects;
    int                handshake_pending;
    int                freeing;
    int                logged_down;  /* "unreachable" logged once per outage */
    /* command timeout and health ping (0 = off) */
    unsigned           timeout_ms, ping_ms;
    char               ping_channel[160];  /* the subscribed connection's ping */
    struct event      *wd;           /* watchdog: oldest outstanding reply overdue */
    struct event      *ping;         /* periodic health ping while READY */
    struct rc_pend    *pend_head, *pend_tail;  /* tracked commands, oldest first */
    uint64_t           ping_sent;    /* ms when the outstanding ping went out, 0 none */
    const char        *down_why;     /* reason given to the next went_down */
    int                timing_out;   /* NULL replies now are from a timeout */
};

/* A command whose reply is awaited (not on a subscribed connection). */
typedef struct rc_pend {
    struct rc_pend  *prev, *next;
    rconn_t         *rc;
    redisCallbackFn *fn;
    void            *priv;
    uint64_t         sent;
} rc_pend_t;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

long rconn_overdue_in(uint64_t now, uint64_t oldest, unsigned timeout_ms)
{
    if (oldest == 0 || timeout_ms == 0)
        return -1;
    if (now >= oldest + timeout_ms)
        return 0;
    return (long)(oldest + timeout_ms - now);
}

/* ==== connection ==== */

int rconn_url_supported(const redis_url_t *url, const char **err)
{
    switch (url->kind) {
    case REDIS_URL_SINGLE:
        return 0;
    case REDIS_URL_SENTINEL:
        *err = "redis+sentinel:// is not supported yet (use redis://host:port)";
        return -1;
    case REDIS_URL_CLUSTER:
        *err = "redis+cluster:// is not supported yet (use redis://host:port)";
        return -1;
    }
    *err = "unknown Redis URL kind";
    return -1;
}

static void rconn_connect(rconn_t *rc);
static void went_down(rconn_t *rc, const char *why);

static unsigned rand_jitter(unsigned max)
{
    static unsigned seed;
    if (seed == 0)
        seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)&seed;
    return max ? (unsigned)rand_r(&seed) % max : 0;
}

static void timer_fire(evutil_socket_t fd, short what, void *arg)
{
    rconn_t *rc = arg;
    if (rc->state == RC_WAIT) {
        rconn_connect(rc);
    } else if ((rc->state == RC_CONNECTING || rc->state == RC_HANDSHAKE) && rc->ac) {
        /* hiredis calls the disconnect callback only for a connected
         * context, so detach it and go down ourselves; its pending
         * callbacks then see ac->data == NULL and return. */
        redisAsyncContext *ac = rc->ac;
        ac->data = NULL;
        went_down(rc, "connect or handshake timed out");
        redisAsyncFree(ac);
    }
}

static void arm_timer(rconn_t *rc, unsigned ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    evtimer_add(rc->timer, &tv);
}

static void schedule_retry(rconn_t *rc)
{
    unsigned wait;
    rc->state = RC_WAIT;
    if (rc->freeing)
        return;
    wait = rc->backoff_ms + rand_jitter(rc->backoff_ms / 2 + 1);
    rc->backoff_ms = rc->backoff_ms * 2 > RCONN_BACKOFF_MAX_MS ? RCONN_BACKOFF_MAX_MS
                                                              : rc->backoff_ms * 2;
    arm_timer(rc, wait);
}

static void went_down(rconn_t *rc, const char *why)
{
    int was_ready = rc->state == RC_READY;
    rc->ac = NULL;
    if (rc->down_why) {
        why = rc->down_why;
        rc->down_why = NULL;
    }
    rc->ping_sent = 0;
    evtimer_del(rc->wd);
    evtimer_del(rc->ping);
    if (!rc->logged_down || was_ready) {
        log_warn("redis unavailable", "conn=%s addr=%s:%d error=\"%s\"", rc->name,
                 rc->url.host, rc->url.port, why ? why : "disconnected");
        rc->logged_down = 1;
    }
    evtimer_del(rc->timer);
    schedule_retry(rc);
    if (was_ready && rc->cb && !rc->freeing)
        rc->cb(rc, 0, rc->arg);
}

static uint64_t oldest_outstanding(const rconn_t *rc)
{
    uint64_t o = rc->pend_head ? rc->pend_head->sent : 0;
    if (rc->ping_sent && (o == 0 || rc->ping_sent < o))
        o = rc->ping_sent;
    return o;
}

static void wd_arm(rconn_t *rc)
{
    long ms = rconn_overdue_in(now_ms(), oldest_outstanding(rc), rc->timeout_ms);
    if (ms < 0 || rc->state != RC_READY)
        return;
    if (ms == 0)
        ms = 1;
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    evtimer_add(rc->wd, &tv);
}

/* A reply is overdue: the connection is treated as failed. Pending
 * callbacks get NULL (rconn_timed_out() is true meanwhile), then it
 * reconnects with backoff. */
static void wd_fire(evutil_socket_t fd, short what, void *arg)
{
    rconn_t *rc = arg;
    long ms;
    if (rc->state != RC_READY || rc->ac == NULL)
        return;
    ms = rconn_overdue_in(now_ms(), oldest_outstanding(rc), rc->timeout_ms);
    if (ms < 0)
        return;
    if (ms > 0) {
        wd_arm(rc);
        return;
    }
    rc->down_why = rc->ping_sent && (!rc->pend_head || rc->ping_sent <= rc->pend_head->sent)
                       ? "health ping unanswered within the timeout"
                       : "command reply not received within the timeout";
    rc->timing_out = 1;
    redisAsyncFree(rc->ac);   /* NULL replies, then on_disconnect → went_down */
    rc->timing_out = 0;
}

static void on_ping_reply(redisAsyncContext *ac, void *r, void *priv)
{
    rconn_t *rc = priv;
    redisReply *reply = r;
    if (reply == NULL || rc == NULL)
        return;
    /* a subscribed connection's heartbeat: ["subscribe", chan, n]; a
     * "message" on that channel is not an answer */
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        strcasecmp(reply->element[0]->str, "subscribe") != 0)
        return;
    rc->ping_sent = 0;
}

static void ping_fire(evutil_socket_t fd, short what, void *arg)
{
    rconn_t *rc = arg;
    int r;
    if (rc->state != RC_READY || rc->ac == NULL || rc->ping_sent)
        return;
    /* hiredis 0.14 never calls back a PING sent on a subscribed connection
     * (its ["pong",""] is looked up as a pattern), so there the ping is a
     * SUBSCRIBE to a private channel: answered in order, callback reused. */
    if (rc->ac->c.flags & REDIS_SUBSCRIBED)
        r = redisAsyncCommand(rc->ac, on_ping_reply, rc, "SUBSCRIBE %s", rc->ping_channel);
    else
        r = redisAsyncCommand(rc->ac, on_ping_reply, rc, "PING");
    if (r == REDIS_OK) {
        rc->ping_sent = now_ms();
        if (!evtimer_pending(rc->wd, NULL))
            wd_arm(rc);
    }
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    rconn_t *rc = ac->data;
    if (rc == NULL)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees the context itself after this callback. */
        went_down(rc, ac->errstr);
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    rconn_t *rc = ac->data;
    if (rc == NULL || rc->ac != ac)
        return;
    went_down(rc, status == REDIS_OK ? "disconnected" : ac->errstr);
}

static void on_handshake(redisAsyncContext *ac, void *r, void *priv)
{
    rconn_t *rc = ac->data;
    redisReply *reply = r;
    if (rc == NULL || rc->ac != ac)
        return;
    if (reply == NULL)
        return; /* disconnecting; on_disconnect handles it */
    if (reply->type == REDIS_REPLY_ERROR) {
        log_error("redis handshake failed", "conn=%s command=%s error=\"%s\"", rc->name,
                  (const char *)priv, reply->str);
        redisAsyncFree(ac);
        return;
    }
    if (--rc->handshake_pending > 0)
        return;
    evtimer_del(rc->timer);
    rc->state = RC_READY;
    rc->backoff_ms = RCONN_BACKOFF_MIN_MS;
    rc->connects++;
    rc->logged_down = 0;
    rc->ping_sent = 0;
    if (rc->ping_ms) {
        struct timeval tv = { rc->ping_ms / 1000, (rc->ping_ms % 1000) * 1000 };
        evtimer_add(rc->ping, &tv);
    }
    log_info("redis connected", "conn=%s addr=%s:%d db=%d", rc->name, rc->url.host,
             rc->url.port, rc->url.db);
    if (rc->cb)
        rc->cb(rc, 1, rc->arg);
}

static void rconn_connect(rconn_t *rc)
{
    redisAsyncContext *ac = redisAsyncConnect(rc->url.host, rc->url.port);
    if (ac == NULL || ac->err) {
        const char *why = ac ? ac->errstr : "out of memory";
        if (!rc->logged_down) {
            log_warn("redis unavailable", "conn=%s addr=%s:%d error=\"%s\"", rc->name,
                     rc->url.host, rc->url.port, why);
            rc->logged_down = 1;
        }
        if (ac)
            redisAsyncFree(ac);
        schedule_retry(rc);
        return;
    }
    ac->data = rc;
    rc->ac = ac;
    rc->state = RC_CONNECTING;
    redisLibeventAttach(ac, rc->base);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    arm_timer(rc, RCONN_CONNECT_TIMEOUT_MS);
    /* The handshake is pipelined behind the connect; PING when there is
     * nothing else to send, so that readiness means "Redis answered". */
    rc->handshake_pending = 0;
    if (rc->url.password[0]) {
        rc->handshake_pending++;
        redisAsyncCommand(ac, on_handshake, "AUTH", "AUTH %s", rc->url.password);
    }
    if (rc->url.db) {
        rc->handshake_pending++;
        redisAsyncCommand(ac, on_handshake, "SELECT", "SELECT %d", rc->url.db);
    }
    rc->handshake_pending++;
    redisAsyncCommand(ac, on_handshake, "PING", "PING");
    rc->state = RC_HANDSHAKE;
}

rconn_t *rconn_new(struct event_base *base, const redis_url_t *url,
                   const char *name, rconn_state_cb *cb, void *arg)
{
    rconn_t *rc;
    const char *why;

    if (rconn_url_supported(url, &why) != 0) {
        log_error("unsupported Redis URL", "conn=%s error=\"%s\"", name ? name : "redis", why);
        return NULL;
    }
    rc = calloc(1, sizeof(*rc));
    if (rc == NULL)
        return NULL;
    rc->base = base;
    rc->url = *url;
    snprintf(rc->name, sizeof(rc->name), "%s", name ? name : "redis");
    rc->cb = cb;
    rc->arg = arg;
    rc->backoff_ms = RCONN_BACKOFF_MIN_MS;
    rc->timeout_ms = RCONN_DEFAULT_TIMEOUT_MS;
    rc->ping_ms = RCONN_DEFAULT_PING_MS;
    rconn_set_ping_prefix(rc, NULL);
    rc->timer = evtimer_new(base, timer_fire, rc);
    rc->wd = evtimer_new(base, wd_fire, rc);
    rc->ping = event_new(base, -1, EV_PERSIST, ping_fire, rc);
    if (rc->timer == NULL || rc->wd == NULL || rc->ping == NULL) {
        if (rc->timer)
            event_free(rc->timer);
        if (rc->wd)
            event_free(rc->wd);
        if (rc->ping)
            event_free(rc->ping);
        free(rc);
        return NULL;
    }
    return rc;
}

void rconn_set_timeouts(rconn_t *rc, unsigned timeout_ms, unsigned ping_ms)
{
    rc->timeout_ms = timeout_ms;
    rc->ping_ms = ping_ms;
}

bool rconn_timed_out(const rconn_t *rc)
{
    return rc && rc->timing_out;
}

int rconn_start(rconn_t *rc)
{
    if (rc == NULL || rc->state != RC_IDLE)
        return -1;
    rconn_connect(rc);
    return 0;
}

bool rconn_ready(const rconn_t *rc)
{
    return rc && rc->state == RC_READY;
}

redisAsyncContext *rconn_ctx(rconn_t *rc)
{
    return rconn_ready(rc) ? rc->ac : NULL;
}

static void pend_unlink(rc_pend_t *p)
{
    rconn_t *rc = p->rc;
    if (p->prev)
        p->prev->next = p->next;
    else if (rc->pend_head == p)
        rc->pend_head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else if (rc->pend_tail == p)
        rc->pend_tail = p->prev;
    p->prev = p->next = NULL;
}

static void on_tracked(redisAsyncContext *ac, void *r, void *priv)
{
    rc_pend_t *p = priv;
    pend_unlink(p);
    if (p->fn)
        p->fn(ac, r, p->priv);
    free(p);
}

/* Commands with a reply to wait for are tracked for the timeout; pub/sub
 * commands and anything on a subscribed connection are not (the health
 * ping covers those). @return the record, or NULL to send untracked. */
static rc_pend_t *pend_new(rconn_t *rc, const char *cmd, size_t len,
                           redisCallbackFn *fn, void *priv)
{
    rc_pend_t *p;
    if (rc->timeout_ms == 0 || (rc->ac->c.flags & REDIS_SUBSCRIBED))
        return NULL;
    if (cmd[0] == 'p' || cmd[0] == 'P')
        cmd++, len--;
    if ((len == 9 && strncasecmp(cmd, "subscribe", 9) == 0) ||
        (len == 11 && strncasecmp(cmd, "unsubscribe", 11) == 0))
        return NULL;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->rc = rc;
    p->fn = fn;
    p->priv = priv;
    p->sent = now_ms();
    return p;
}

static void pend_link(rc_pend_t *p)
{
    rconn_t *rc = p->rc;
    p->prev = rc->pend_tail;
    if (rc->pend_tail)
        rc->pend_tail->next = p;
    else
        rc->pend_head = p;
    rc->pend_tail = p;
    if (!evtimer_pending(rc->wd, NULL))
        wd_arm(rc);
}

/* After sending a tracked command (p NULL: not tracked): tracks it if it
 * was sent. @return 0, or -1 if the send failed. */
static int pend_commit(rc_pend_t *p, int r)
{
    if (p) {
        if (r == REDIS_OK)
            pend_link(p);
        else
            free(p);
    }
    return r == REDIS_OK ? 0 : -1;
}

int rconn_command(rconn_t *rc, redisCallbackFn *fn, void *privdata, const char *fmt, ...)
{
    va_list ap;
    int r;
    rc_pend_t *p;
    if (!rconn_ready(rc))
        return -1;
    p = pend_new(rc, fmt, strcspn(fmt, " "), fn, privdata);
    va_start(ap, fmt);
    r = p ? redisvAsyncCommand(rc->ac, on_tracked, p, fmt, ap)
          : redisvAsyncCommand(rc->ac, fn, privdata, fmt, ap);
    va_end(ap);
    return pend_commit(p, r);
}

int rconn_command_argv(rconn_t *rc, redisCallbackFn *fn, void *privdata,
                       int argc, const char **argv, const size_t *argvlen)
{
    rc_pend_t *p;
    int r;
    if (!rconn_ready(rc) || argc < 1)
        return -1;
    p = pend_new(rc, argv[0], argvlen ? argvlen[0] : strlen(argv[0]), fn, privdata);
    r = p ? redisAsyncCommandArgv(rc->ac, on_tracked, p, argc, argv, argvlen)
          : redisAsyncCommandArgv(rc->ac, fn, privdata, argc, argv, argvlen);
    return pend_commit(p, r);
}

void rconn_drop(rconn_t *rc)
{
    if (rc && rc->ac)
        redisAsyncFree(rc->ac);
}

unsigned long rconn_reconnects(const rconn_t *rc)
{
    return rc && rc->connects > 0 ? rc->connects - 1 : 0;
}

void rconn_set_ping_prefix(rconn_t *rc, const char *prefix)
{
    snprintf(rc->ping_channel, sizeof(rc->ping_channel), "%s:rconn-ping:%s",
             prefix && *prefix ? prefix : "flagcast", rc->name);
}

void rconn_free(rconn_t *rc)
{
    if (rc == NULL)
        return;
    rc->freeing = 1;
    if (rc->ac) {
        redisAsyncContext *ac = rc->ac;
        rc->ac = NULL;
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    event_free(rc->timer);
    event_free(rc->wd);
    event_free(rc->ping);
    free(rc);
}
