/*
 * worker — the service threads: start and stop, the inbox, the tick, the
 * paced drain (worker.h).
 */
#include "gateway/lws/worker.h"
#include "gateway/lws/lws.h"
#include "gateway/lws/accept.h"
#include "gateway/lws/replay.h"
#include "gateway/lws/sse.h"
#include "gateway/clock.h"
#include "gateway/resync.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static gw_worker_t     *workers;
static long             nworkers;      /* threads started (main thread only) */
static atomic_long      nlive;         /* fully set up: what other threads may post to */
static pthread_mutex_t  start_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t   start_cv = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t  ctx_create_mu = PTHREAD_MUTEX_INITIALIZER;
static const struct lws_protocols *worker_protocols;   /* callback.c's */

static int worker_post(gw_worker_t *w, outq_ev_t *ev, gw_resume_t *res, uint64_t t_ns);

/* The index's callback: the first / last local subscriber of a channel. */
static void on_channel(void *arg, const char *channel, bool on)
{
    gw_worker_t *w = arg;
    w->g->bus.want(channel, on);
}

/* ==== stop ==== */

static void worker_begin_stop(gw_worker_t *w)
{
    int k;

    if (w->stopping)
        return;
    w->stopping = true;
    if (w->listen_wsi) {
        lws_set_timeout(w->listen_wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        w->listen_wsi = NULL;
    }
    for (k = CK_SSE; k <= CK_WS; k++)
        conn_transports[k]->stop(w);
}

/* ==== graceful drain (drain.h) ==== */

static _Atomic uint64_t drain_window_ns;   /* set by gw_lws_drain */

/* The next connection to drain, alternating SSE and WS; NULL if none. */
static gw_conn_t *drain_pick(gw_worker_t *w)
{
    gw_conn_t *c;
    int k;

    for (k = 0; k < 2; k++) {
        bool sse = (w->drain.closed + (uint64_t)k) % 2 == 0;
        for (c = sse ? w->sse : w->ws; c; c = c->next)
            if (!c->closing && !c->going_away)
                return c;
    }
    return NULL;
}

static void drain_tick(lws_sorted_usec_list_t *sul)
{
    gw_worker_t *w = lws_container_of(sul, gw_worker_t, drain_sul);
    uint64_t now = gw_now_ns(), due = drain_due(&w->drain, now), next, us;

    if (w->stopping)
        return;
    for (; due > 0; due--) {
        gw_conn_t *c = drain_pick(w);
        if (c == NULL) {   /* the rest left on their own */
            drain_done(&w->drain, w->drain.total - w->drain.closed);
            break;
        }
        conn_transport(c)->drain(w, c);
        drain_done(&w->drain, 1);
    }
    if (w->drain.closed >= w->drain.total)
        return;
    next = drain_next_ns(&w->drain);
    us = next > now ? (next - now) / 1000 : 0;
    /* at least 10 ms between turns: large counts close in batches */
    lws_sul_schedule(w->ctx, 0, &w->drain_sul, drain_tick, us < 10000 ? 10000 : (lws_usec_t)us);
}

static void worker_begin_drain(gw_worker_t *w)
{
    uint64_t n = 0, now = gw_now_ns();
    gw_conn_t *c;

    w->draining = true;
    for (c = w->sse; c; c = c->next)
        n += !c->closing;
    for (c = w->ws; c; c = c->next)
        n += !c->closing;
    drain_begin(&w->drain, now, atomic_load(&drain_window_ns), n,
                now ^ ((uint64_t)w->id << 48) ^ (uint64_t)(uintptr_t)w);
    log_info("draining connections", "thread=%d connections=%llu window_ms=%llu",
             w->id, (unsigned long long)n,
             (unsigned long long)(w->drain.window_ns / 1000000));
    drain_tick(&w->drain_sul);
}

void gw_lws_drain(uint64_t window_ns)
{
    long i, n = atomic_load(&nlive);

    atomic_store(&drain_window_ns, window_ns);
    for (i = 0; i < n; i++) {
        atomic_store(&workers[i].drain_req, true);
        if (workers[i].ctx)
            lws_cancel_service(workers[i].ctx);
    }
}

/* ==== the tick ==== */

static void worker_tick(lws_sorted_usec_list_t *sul)
{
    gw_worker_t *w = lws_container_of(sul, gw_worker_t, tick);
    uint64_t now = gw_now_ns();
    int k;

    if (w->stopping) {
        /* Second tick after the stop: whatever is left is closed by
         * lws_context_destroy. */
        w->done = true;
        lws_cancel_service(w->ctx);
        return;
    }
    if (w->hg_count)
        gate_expire(w, false);
    for (k = CK_SSE; k <= CK_WS; k++)
        conn_transports[k]->tick(w, now);
    lws_sul_schedule(w->ctx, 0, &w->tick, worker_tick, LWS_US_PER_SEC);
}

/* ==== the inbox ==== */

/* A channel-wide resync for worker i's subscribers of ch (past the inbox
 * bound: a resync must not be lost). */
static void post_resync(long i, const char *ch, const char *reason, const char *epoch, uint64_t offset)
{
    gw_resume_t *r = gw_resume_new(1);

    if (r == NULL)
        return;
    r->worker = (int)i;
    r->fd = -1;
    if (gw_resume_push(r, ch, strlen(ch), epoch, epoch ? strlen(epoch) : 0, offset) < 0) {
        gw_resume_free(r);
        return;
    }
    r->reason[0] = reason;
    if (worker_post(&workers[i], NULL, r, gw_now_ns()) != 0)
        gw_resume_free(r);
}

void gw_lws_resync(const char *ch, const char *reason, const char *epoch, uint64_t offset)
{
    long i, n = atomic_load(&nlive);

    for (i = 0; i < n; i++)
        post_resync(i, ch, reason, epoch, offset);
}

void worker_inbox(gw_worker_t *w)
{
    gw_item_t *it, *next;
    bool stop = false;

    pthread_mutex_lock(&w->mu);
    it = w->in_head;
    w->in_head = NULL;
    w->in_tail = &w->in_head;
    w->in_count = 0;
    pthread_mutex_unlock(&w->mu);

    if (atomic_load(&w->drain_req) && !w->draining && !w->stopping)
        worker_begin_drain(w);
    for (; it; it = next) {
        next = it->next;
        if (it->res) {
            replay_answer(w, it->res);
        } else if (it->ev == NULL) {
            stop = true;
        } else {
            if (!w->stopping)
                conn_fanout(w, it->ev, it->t_ns);
            outq_ev_unref(it->ev);
        }
        free(it);
    }
    if (stop) {
        worker_begin_stop(w);
        lws_sul_schedule(w->ctx, 0, &w->tick, worker_tick, 300 * LWS_US_PER_MS);
    }
}

static int worker_post(gw_worker_t *w, outq_ev_t *ev, gw_resume_t *res, uint64_t t_ns)
{
    gw_item_t *it = malloc(sizeof(*it));

    if (it == NULL)
        return -1;
    it->next = NULL;
    it->ev = ev;
    it->res = res;
    it->t_ns = t_ns;
    pthread_mutex_lock(&w->mu);
    if (ev && w->in_count >= (size_t)w->g->cfg.inbox_max) {
        pthread_mutex_unlock(&w->mu);
        free(it);
        return -1;
    }
    *w->in_tail = it;
    w->in_tail = &it->next;
    w->in_count++;
    pthread_mutex_unlock(&w->mu);
    if (w->ctx)
        lws_cancel_service(w->ctx);
    return 0;
}

void gw_lws_resume_done(gw_resume_t *r)
{
    if (r->worker < 0 || r->worker >= atomic_load(&nlive) ||
        worker_post(&workers[r->worker], NULL, r, gw_now_ns()) != 0)
        gw_resume_free(r);
}

void gw_lws_dispatch(outq_ev_t *oev)
{
    uint64_t t = gw_now_ns();
    long i, n = atomic_load(&nlive);

    for (i = 0; i < n; i++) {
        outq_ev_ref(oev);
        if (worker_post(&workers[i], oev, NULL, t) != 0) {
            outq_ev_unref(oev);
            const ev_t *ev = outq_ev_event(oev);
            metric_inc(workers[i].g->m.drops);
            log_warn("service thread inbox full, event dropped", "thread=%ld", i);
            /* never silent: the thread's subscribers of the channel are
             * told (flags: a fresh snapshot, which holds the change) */
            if (ev && ev->channel)
                post_resync(i, ev->channel, HIST_REASON_OVERLOAD, ev->epoch, ev->offset);
        }
    }
}

/* ==== threads ==== */

static int listen_socket(const gw_config_t *cfg)
{
    struct addrinfo hints, *res = NULL, *ai;
    char port[16];
    int s = -1, one = 1, rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%d", cfg->port);
    rc = getaddrinfo(cfg->host, port, &hints, &res);
    if (rc != 0) {
        log_error("bad listen address", "listen=%s err=\"%s\"", cfg->listen, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        s = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s < 0)
            continue;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
        if (bind(s, ai->ai_addr, ai->ai_addrlen) == 0 && listen(s, 4096) == 0)
            break;
        log_error("cannot listen", "listen=%s err=\"%s\"", cfg->listen, strerror(errno));
        close(s);
        s = -1;
    }
    freeaddrinfo(res);
    return s;
}

static void lws_log_emit(int level, const char *line)
{
    char raw[400], q[512];
    size_t n = strlen(line);

    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    snprintf(raw, sizeof(raw), "%.*s", (int)(n > 399 ? 399 : n), line);
    log_msg(level == LLL_ERR ? LOG_ERROR : LOG_WARN, "libwebsockets", "detail=%s",
            log_q(q, sizeof(q), raw));
}

static int worker_setup(gw_worker_t *w)
{
    struct lws_context_creation_info info;
    lws_adopt_desc_t ad;
    struct rlimit rl;

    w->idx = subidx_new(on_channel, w);
    if (w->idx == NULL)
        return -1;
    w->nfd = 65536;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 4194304)
        w->nfd = (size_t)rl.rlim_cur;
    w->by_fd = calloc(w->nfd, sizeof(*w->by_fd));
    if (w->by_fd == NULL)
        return -1;
    w->lim.max_events = (uint32_t)w->g->cfg.queue_max_events;
    w->lim.max_bytes = (size_t)w->g->cfg.queue_max_bytes;
    w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

    w->listen_fd = listen_socket(&w->g->cfg);
    if (w->listen_fd < 0)
        return -1;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0)
        return -1;
    w->hg_epfd = epoll_create1(EPOLL_CLOEXEC);
    w->hg = calloc(w->nfd, sizeof(*w->hg));
    w->hg_buf = malloc((size_t)w->g->cfg.max_header_bytes);
    if (w->hg_epfd < 0 || w->hg == NULL || w->hg_buf == NULL)
        return -1;

    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
    info.user = w;
    info.count_threads = 1;
    info.fd_limit_per_thread = 0;      /* any other value makes lws look fds up linearly */
    info.timeout_secs = 10;
    /* headgate has checked the raw head against FLAGCAST_MAX_HEADER_BYTES;
     * lws's table stores it with some overhead per header, so give it twice */
    info.max_http_header_data = (unsigned short)(w->g->cfg.max_header_bytes * 2 > 65535
                                                 ? 65535 : w->g->cfg.max_header_bytes * 2);
    info.server_string = "flagcast-gateway";
    pthread_mutex_lock(&ctx_create_mu);
    w->ctx = lws_create_context(&info);
    pthread_mutex_unlock(&ctx_create_mu);
    if (w->ctx == NULL)
        return -1;

    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.protocols = worker_protocols;
    info.vhost_name = "flagcast";
    info.keepalive_timeout = 5;
    w->vh = lws_create_vhost(w->ctx, &info);
    if (w->vh == NULL)
        return -1;

    memset(&ad, 0, sizeof(ad));
    ad.vh = w->vh;
    ad.type = LWS_ADOPT_RAW_FILE_DESC;
    ad.vh_prot_name = "flagcast-raw";
    ad.fd.filefd = w->epfd;
    w->ep_wsi = lws_adopt_descriptor_vhost_via_info(&ad);
    if (w->ep_wsi == NULL)
        return -1;
    ad.fd.filefd = w->hg_epfd;
    w->hg_wsi = lws_adopt_descriptor_vhost_via_info(&ad);
    if (w->hg_wsi == NULL)
        return -1;
    ad.fd.filefd = w->listen_fd;
    w->listen_wsi = lws_adopt_descriptor_vhost_via_info(&ad);
    if (w->listen_wsi == NULL)
        return -1;

    w->next_keepalive_ns = gw_now_ns() + (uint64_t)w->g->cfg.sse_keepalive * 1000000000ull;
    lws_sul_schedule(w->ctx, 0, &w->tick, worker_tick, LWS_US_PER_SEC);
    return 0;
}

static void *worker_main(void *arg)
{
    gw_worker_t *w = arg;
    int rc = worker_setup(w);

    pthread_mutex_lock(&start_mu);
    w->start_rc = rc;
    w->started = true;
    pthread_cond_broadcast(&start_cv);
    pthread_mutex_unlock(&start_mu);
    if (rc != 0)
        return NULL;

    while (!w->done) {
        if (lws_service(w->ctx, 0) < 0)
            break;
    }
    sse_thread_free();   /* thread-local: freed by the thread that used it */
    return NULL;
}

static void worker_cleanup(gw_worker_t *w)
{
    gw_item_t *it, *next;

    if (w->ctx) {
        lws_sul_cancel(&w->tick);
        lws_sul_cancel(&w->drain_sul);
        lws_context_destroy(w->ctx);
        w->ctx = NULL;
        token_identity_free(w->pending_id);
        w->pending_id = NULL;
    }
    for (it = w->in_head; it; it = next) {
        next = it->next;
        outq_ev_unref(it->ev);
        gw_resume_free(it->res);
        free(it);
    }
    w->in_head = NULL;
    if (w->idx)
        subidx_free(w->idx);
    if (w->hg) {
        gate_expire(w, true);
        free(w->hg);
    }
    free(w->hg_buf);
    if (w->hg_epfd >= 0)
        close(w->hg_epfd);
    free(w->by_fd);
    if (w->epfd >= 0)
        close(w->epfd);
    if (w->spare_fd >= 0)
        close(w->spare_fd);
}

int workers_start(gw_t *g, const struct lws_protocols *protocols)
{
    long i;

    worker_protocols = protocols;
    lws_set_log_level(LLL_ERR, lws_log_emit);
    nworkers = g->cfg.threads;
    workers = calloc((size_t)nworkers, sizeof(*workers));
    if (workers == NULL)
        return -1;
    for (i = 0; i < nworkers; i++) {
        gw_worker_t *w = &workers[i];
        w->g = g;
        w->id = (int)i;
        w->listen_fd = w->epfd = w->hg_epfd = w->spare_fd = -1;
        pthread_mutex_init(&w->mu, NULL);
        w->in_tail = &w->in_head;
        if (pthread_create(&w->tid, NULL, worker_main, w) != 0) {
            log_error("cannot start a service thread", "err=\"%s\"", strerror(errno));
            nworkers = i;
            gw_lws_stop();
            return -1;
        }
        pthread_mutex_lock(&start_mu);
        while (!w->started)
            pthread_cond_wait(&start_cv, &start_mu);
        pthread_mutex_unlock(&start_mu);
        if (w->start_rc != 0) {
            log_error("cannot start a service thread", "listen=%s", g->cfg.listen);
            nworkers = i + 1;
            gw_lws_stop();
            return -1;
        }
        atomic_store(&nlive, i + 1);
    }
    log_info("gateway listening", "listen=%s threads=%ld", g->cfg.listen, nworkers);
    return 0;
}

void gw_lws_stop(void)
{
    long i;

    atomic_store(&nlive, 0);
    for (i = 0; i < nworkers; i++) {
        gw_worker_t *w = &workers[i];
        if (w->start_rc == 0 && w->ctx)
            worker_post(w, NULL, NULL, 0);
    }
    for (i = 0; i < nworkers; i++) {
        gw_worker_t *w = &workers[i];
        pthread_join(w->tid, NULL);
        worker_cleanup(w);
    }
    /* The array itself stays: another thread may still hold its address
     * for a moment after nlive went to 0. */
    nworkers = 0;
}
