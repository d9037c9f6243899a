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
 * Sentinel (redis+sentinel://): CONNECTING is preceded by DISCOVER, which
 * asks the sentinels in turn (one short-lived connection each, the list
 * rotated so a dead sentinel is not asked first every time) for
 * SENTINEL get-master-addr-by-name, and the handshake ends with ROLE instead
 * of PING: a node that does not say "master" is refused (a sentinel that
 * has not seen the failover yet, or a demoted master) and the connection
 * goes to WAIT, so discovery is retried with backoff. Every reconnect
 * discovers again. Beside it a watcher connection stays SUBSCRIBEd to
 * +switch-master on one sentinel: a switch of our master drops the current
 * connection (or cuts a backoff wait short), so a failover is followed as
 * soon as a sentinel announces it rather than at the next failed command.
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

typedef enum { RC_IDLE, RC_DISCOVER, RC_CONNECTING, RC_HANDSHAKE, RC_READY, RC_WAIT } rc_state_t;

/* The watcher's reconnect interval (it has no backoff: one attempt per
 * period, the next sentinel each time). */
#ifndef RCONN_WATCH_RETRY_MS
#define RCONN_WATCH_RETRY_MS 1000
#endif

struct rconn {
    struct event_base *base;
    redis_url_t        url;
    char               addr_host[REDIS_URL_HOST_MAX];  /* the data node: the URL's, or */
    int                addr_port;                       /* the master a sentinel named */
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
    /* sentinel mode */
    redisAsyncContext *sac;          /* DISCOVER: the sentinel being asked */
    size_t             sidx;         /* next sentinel to ask */
    size_t             stries;       /* sentinels asked in this round */
    redisAsyncContext *wac;          /* the +switch-master watcher */
    size_t             widx;
    struct event      *wtimer;       /* watcher reconnect */
    unsigned long      switches;     /* +switch-master events for our master */
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
        return 0;
    case REDIS_URL_CLUSTER:
        *err = "redis+cluster:// is not supported yet (use redis://host:port)";
        return -1;
    }
    *err = "unknown Redis URL kind";
    return -1;
}

static void rconn_connect(rconn_t *rc);
static void went_down(rconn_t *rc, const char *why);
static void discover_next(rconn_t *rc, const char *why);
static void rconn_connect_data(rconn_t *rc);

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
    } else if (rc->state == RC_DISCOVER && rc->sac) {
        redisAsyncContext *sac = rc->sac;
        sac->data = NULL;
        rc->sac = NULL;
        redisAsyncFree(sac);
        discover_next(rc, "no answer in time");
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
                 rc->addr_host, rc->addr_port, why ? why : "disconnected");
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

/* ROLE's reply starts with "master" on a master ("slave", "sentinel"
 * otherwise). */
static int role_is_master(const redisReply *r)
{
    return r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
           r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "master") == 0;
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
    if (strcmp((const char *)priv, "ROLE") == 0 && !role_is_master(reply)) {
        log_warn("redis node is not a master, refused", "conn=%s addr=%s:%d role=%s", rc->name,
                 rc->addr_host, rc->addr_port,
                 reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
                         reply->element[0]->type == REDIS_REPLY_STRING
                     ? reply->element[0]->str : "?");
        rc->down_why = "the node the sentinels named is not a master (yet)";
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
    log_info("redis connected", "conn=%s addr=%s:%d db=%d%s%s", rc->name, rc->addr_host,
             rc->addr_port, rc->url.db, rc->url.kind == REDIS_URL_SENTINEL ? " master=" : "",
             rc->url.kind == REDIS_URL_SENTINEL ? rc->url.master : "");
    if (rc->cb)
        rc->cb(rc, 1, rc->arg);
}

/* ==== sentinel: discovery ==== */

static void s_forget(rconn_t *rc)
{
    redisAsyncContext *sac = rc->sac;
    rc->sac = NULL;
    if (sac) {
        sac->data = NULL;
        redisAsyncFree(sac);
    }
}

static void s_on_connect(const redisAsyncContext *ac, int status)
{
    rconn_t *rc = ac->data;
    if (rc == NULL || rc->sac != ac || status == REDIS_OK)
        return;
    rc->sac = NULL;   /* hiredis frees it after this callback */
    discover_next(rc, ac->errstr);
}

static void s_on_disconnect(const redisAsyncContext *ac, int status)
{
    rconn_t *rc = ac->data;
    if (rc == NULL || rc->sac != ac)
        return;
    rc->sac = NULL;
    discover_next(rc, status == REDIS_OK ? "disconnected" : ac->errstr);
}

static void on_master_addr(redisAsyncContext *ac, void *r, void *priv)
{
    rconn_t *rc = priv;
    redisReply *reply = r;
    const char *why = "unexpected reply";
    long port = 0;

    if (reply == NULL || ac->data == NULL || rc->sac != ac)
        return;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[1]->type == REDIS_REPLY_STRING &&
        reply->element[0]->len > 0 && reply->element[0]->len < sizeof(rc->addr_host)) {
        char *e;
        port = strtol(reply->element[1]->str, &e, 10);
        if (*e == '\0' && port >= 1 && port <= 65535) {
            memcpy(rc->addr_host, reply->element[0]->str, reply->element[0]->len + 1);
            rc->addr_port = (int)port;
            evtimer_del(rc->timer);
            s_forget(rc);
            log_debug("sentinel named the master", "conn=%s master=%s addr=%s:%d", rc->name,
                      rc->url.master, rc->addr_host, rc->addr_port);
            rconn_connect_data(rc);
            return;
        }
    } else if (reply->type == REDIS_REPLY_NIL) {
        why = "the sentinel does not know this master name";
    } else if (reply->type == REDIS_REPLY_ERROR) {
        why = reply->str;
    }
    log_warn("sentinel gave no master", "conn=%s master=%s error=\"%.160s\"", rc->name,
             rc->url.master, why);
    evtimer_del(rc->timer);
    s_forget(rc);
    discover_next(rc, "no master address");
}

static void on_sentinel_auth(redisAsyncContext *ac, void *r, void *priv)
{
    rconn_t *rc = priv;
    redisReply *reply = r;
    if (reply && reply->type == REDIS_REPLY_ERROR && ac->data && rc->sac == ac)
        log_warn("sentinel AUTH failed", "conn=%s error=\"%.160s\"", rc->name, reply->str);
}

/* Asks the next sentinel of this round; when each has been asked, the round
 * ends in WAIT (backoff), and the next round starts over. */
static void discover_next(rconn_t *rc, const char *why)
{
    const redis_node_t *n;
    redisAsyncContext *sac;

    if (rc->freeing)
        return;
    if (rc->stries > 0 && why)
        log_debug("sentinel not usable", "conn=%s error=\"%s\"", rc->name, why);
    if (rc->stries >= rc->url.nnodes) {
        if (!rc->logged_down) {
            log_warn("redis unavailable", "conn=%s master=%s error=\"no sentinel of %zu named a "
                     "reachable master\"", rc->name, rc->url.master, rc->url.nnodes);
            rc->logged_down = 1;
        }
        schedule_retry(rc);
        return;
    }
    n = &rc->url.nodes[rc->sidx % rc->url.nnodes];
    rc->sidx++;
    rc->stries++;
    rc->state = RC_DISCOVER;
    sac = redisAsyncConnect(n->host, n->port);
    if (sac == NULL || sac->err) {
        if (sac)
            redisAsyncFree(sac);
        discover_next(rc, "cannot create a connection");
        return;
    }
    sac->data = rc;
    rc->sac = sac;
    redisLibeventAttach(sac, rc->base);
    redisAsyncSetConnectCallback(sac, s_on_connect);
    redisAsyncSetDisconnectCallback(sac, s_on_disconnect);
    arm_timer(rc, RCONN_CONNECT_TIMEOUT_MS);
    if (rc->url.sentinel_password[0])
        redisAsyncCommand(sac, on_sentinel_auth, rc, "AUTH %s", rc->url.sentinel_password);
    redisAsyncCommand(sac, on_master_addr, rc, "SENTINEL get-master-addr-by-name %s",
                      rc->url.master);
}

/* ==== sentinel: the +switch-master watcher ==== */

static void watch_connect(rconn_t *rc);

static void watch_later(rconn_t *rc)
{
    struct timeval tv = { RCONN_WATCH_RETRY_MS / 1000, (RCONN_WATCH_RETRY_MS % 1000) * 1000 };
    if (!rc->freeing)
        evtimer_add(rc->wtimer, &tv);
}

static void w_on_connect(const redisAsyncContext *ac, int status)
{
    rconn_t *rc = ac->data;
    if (rc == NULL || rc->wac != ac || status == REDIS_OK)
        return;
    rc->wac = NULL;
    watch_later(rc);
}

static void w_on_disconnect(const redisAsyncContext *ac, int status)
{
    rconn_t *rc = ac->data;
    if (rc == NULL || rc->wac != ac)
        return;
    rc->wac = NULL;
    watch_later(rc);
}

/* Pure, exposed for unit tests: whether a +switch-master payload
 * ("<name> <old-ip> <old-port> <new-ip> <new-port>") is about master. */
int rconn_switch_is_for(const char *payload, size_t len, const char *master)
{
    size_t n = strlen(master);
    return len > n && memcmp(payload, master, n) == 0 && payload[n] == ' ';
}

int rconn_switch_new_addr(const char *payload, size_t len, char *host, size_t hostlen,
                          int *port)
{
    const char *f[5];
    size_t fl[5], k = 0, i = 0;
    char pb[8];
    long p;
    char *e;

    while (k < 5 && i < len) {
        while (i < len && payload[i] == ' ')
            i++;
        f[k] = payload + i;
        while (i < len && payload[i] != ' ')
            i++;
        fl[k] = (size_t)(payload + i - f[k]);
        if (fl[k] > 0)
            k++;
    }
    if (k != 5 || fl[3] >= hostlen || fl[4] >= sizeof(pb))
        return -1;
    memcpy(pb, f[4], fl[4]);
    pb[fl[4]] = '\0';
    p = strtol(pb, &e, 10);
    if (*e != '\0' || p < 1 || p > 65535)
        return -1;
    memcpy(host, f[3], fl[3]);
    host[fl[3]] = '\0';
    *port = (int)p;
    return 0;
}

static void on_switch(redisAsyncContext *ac, void *r, void *priv)
{
    rconn_t *rc = priv;
    redisReply *reply = r;
    redisReply *m;

    if (reply == NULL || ac->data == NULL || rc->wac != ac)
        return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(reply->element[0]->str, "message") != 0)
        return;
    m = reply->element[2];
    if (m->type != REDIS_REPLY_STRING || !rconn_switch_is_for(m->str, m->len, rc->url.master))
        return;
    rc->switches++;
    log_info("sentinel: master switched", "conn=%s switch=\"%.200s\" state=%d", rc->name,
             m->str, (int)rc->state);
    {
        /* Already on (or connecting to) the new master, found by a
         * discovery that came after the switch: keep it. Dropping it would
         * fail a command in flight there for nothing (a write whose reply
         * is lost cannot be told applied or not). */
        char nh[REDIS_URL_HOST_MAX];
        int np;
        if (rc->ac && rconn_switch_new_addr(m->str, m->len, nh, sizeof(nh), &np) == 0 &&
            np == rc->addr_port && strcmp(nh, rc->addr_host) == 0)
            return;
    }
    if (rc->state == RC_READY || rc->state == RC_HANDSHAKE || rc->state == RC_CONNECTING) {
        if (rc->ac) {
            rc->down_why = "sentinel announced +switch-master";
            rc->backoff_ms = RCONN_BACKOFF_MIN_MS;
            if (rc->state == RC_READY) {
                redisAsyncFree(rc->ac);   /* on_disconnect → went_down → WAIT */
            } else {
                redisAsyncContext *old = rc->ac;
                old->data = NULL;
                went_down(rc, "sentinel announced +switch-master");
                redisAsyncFree(old);
            }
        }
    }
    if (rc->state == RC_WAIT) {
        /* no reason to wait out the backoff: the new master is known */
        evtimer_del(rc->timer);
        rc->backoff_ms = RCONN_BACKOFF_MIN_MS;
        arm_timer(rc, 1);
    }
}

static void watch_fire(evutil_socket_t fd, short what, void *arg)
{
    watch_connect(arg);
}

static void watch_connect(rconn_t *rc)
{
    const redis_node_t *n;
    redisAsyncContext *wac;

    if (rc->freeing || rc->wac)
        return;
    n = &rc->url.nodes[rc->widx % rc->url.nnodes];
    rc->widx++;
    wac = redisAsyncConnect(n->host, n->port);
    if (wac == NULL || wac->err) {
        if (wac)
            redisAsyncFree(wac);
        watch_later(rc);
        return;
    }
    wac->data = rc;
    rc->wac = wac;
    redisLibeventAttach(wac, rc->base);
    redisAsyncSetConnectCallback(wac, w_on_connect);
    redisAsyncSetDisconnectCallback(wac, w_on_disconnect);
    if (rc->url.sentinel_password[0])
        redisAsyncCommand(wac, NULL, NULL, "AUTH %s", rc->url.sentinel_password);
    redisAsyncCommand(wac, on_switch, rc, "SUBSCRIBE +switch-master");
}

/* ==== connecting ==== */

static void rconn_connect(rconn_t *rc)
{
    if (rc->url.kind == REDIS_URL_SENTINEL) {
        rc->stries = 0;
        discover_next(rc, NULL);
        return;
    }
    rconn_connect_data(rc);
}

static void rconn_connect_data(rconn_t *rc)
{
    int sentinel = rc->url.kind == REDIS_URL_SENTINEL;
    redisAsyncContext *ac = redisAsyncConnect(rc->addr_host, rc->addr_port);
    if (ac == NULL || ac->err) {
        const char *why = ac ? ac->errstr : "out of memory";
        if (!rc->logged_down) {
            log_warn("redis unavailable", "conn=%s addr=%s:%d error=\"%s\"", rc->name,
                     rc->addr_host, rc->addr_port, why);
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
    if (sentinel)
        redisAsyncCommand(ac, on_handshake, "ROLE", "ROLE");
    else
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
    memcpy(rc->addr_host, url->host, sizeof(rc->addr_host));
    rc->addr_port = url->port;
    if (url->kind == REDIS_URL_SENTINEL && url->sentinel_password[0] == '\0') {
        /* The gateway has no setting for it: read it here, for both. */
        const char *sp = getenv("FLAGCAST_REDIS_SENTINEL_PASSWORD");
        if (sp && strlen(sp) < sizeof(rc->url.sentinel_password))
            strcpy(rc->url.sentinel_password, sp);
    }
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
    rc->wtimer = evtimer_new(base, watch_fire, rc);
    if (rc->timer == NULL || rc->wd == NULL || rc->ping == NULL || rc->wtimer == NULL) {
        if (rc->wtimer)
            event_free(rc->wtimer);
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
    if (rc->url.kind == REDIS_URL_SENTINEL)
        watch_connect(rc);
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

unsigned long rconn_switches(const rconn_t *rc)
{
    return rc ? rc->switches : 0;
}

const char *rconn_addr(const rconn_t *rc, int *port)
{
    *port = rc->addr_port;
    return rc->addr_host;
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
    s_forget(rc);
    if (rc->wac) {
        redisAsyncContext *wac = rc->wac;
        rc->wac = NULL;
        wac->data = NULL;
        redisAsyncFree(wac);
    }
    event_free(rc->timer);
    event_free(rc->wd);
    event_free(rc->ping);
    event_free(rc->wtimer);
    free(rc);
}
