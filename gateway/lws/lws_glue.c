/*
 * lws_glue — the gateway's libwebsockets side: SSE, WebSocket and plain HTTP
 * on one port, fan-out of the events the Redis thread hands over.
 *
 * Threads and sockets. FLAGCAST_THREADS workers each run their own
 * lws_context (lws 4.1.6 here is built with LWS_MAX_SMP 1, so one context
 * serves one thread). Each worker opens its own SO_REUSEPORT listen socket on
 * the same port and adopts it as a raw file descriptor; the kernel spreads
 * new connections over the workers, and each accepted socket is adopted as
 * HTTP (lws's own listen-share option does nothing in this build). A worker
 * owns its connections, its subscription index (subidx) and its queues; no
 * lock is taken on the delivery path except the one that swaps its inbox.
 *
 * Hand-off. The Redis thread appends a reference to each rendered event to
 * every worker's inbox and calls lws_cancel_service(); the worker drains the
 * inbox in LWS_CALLBACK_EVENT_WAIT_CANCELLED, looks up the receivers in its
 * index and writes to each one directly from there (DESIGN.md measured this
 * faster than a writable callback per connection). A connection that lws
 * reports as behind (lws_partial_buffered) gets the event on its bounded
 * queue and is flushed from its writable callback; a queue over its limit
 * conflates flag events or closes the connection (outq.h).
 *
 * Closed SSE subscribers. lws does not read an HTTP/1 stream after the
 * request, so a peer's FIN stays readable and lws's poll loop would spin on
 * it. Every SSE socket is therefore also registered, edge-triggered for
 * EPOLLIN|EPOLLRDHUP, in a per-worker epoll set whose fd is itself adopted
 * into lws: a close makes that fd readable in the same poll() turn, and we
 * drain/close the dead connection there. Idle connections cost nothing.
 *
 * Timers. One lws_sul per worker ticks once a second: SSE keep-alive
 * comments (every FLAGCAST_SSE_KEEPALIVE s), WS pings and the WS idle
 * timeout. No per-connection timers (lws's sorted timer list is linear).
 */
#include "gateway/lws/lws.h"
#include "gateway/clock.h"
#include "gateway/ident.h"
#include "gateway/admit.h"
#include "gateway/drain.h"
#include "gateway/filter.h"
#include "gateway/resync.h"
#include "gateway/query.h"
#include "gateway/headgate.h"
#include "gateway/subidx.h"
#include "gateway/wsmsg.h"
#include "common/log.h"
#include "proto/json.h"
#include "proto/names.h"
#include "proto/sse.h"

#include <libwebsockets.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define GW_ACCEPT_BURST   256         /* accepts per readable listen socket */
#define GW_EPOLL_BATCH    256
#define GW_SSE_RX_MAX     (64 * 1024) /* bytes an SSE client may send after its request */
#define GW_QUERY_MAX      8192
#define GW_CTL_QUEUE_MAX  64          /* queued items above which pings get no pong */
#define GW_TX_PACKET      (2u * 1024 * 1024)
/* lws allocates this much per WS connection for reading; client messages
 * are small and longer ones arrive in chunks that ws_receive reassembles. */
#define GW_WS_RX_CHUNK    128
/* WS close code for a missing, invalid or expired token (4000-4999 are the
 * application's; 4401 reads as HTTP's 401). */
#define GW_CLOSE_UNAUTHORIZED 4401

enum { PROTO_JSON = 0, PROTO_MSGPACK = 1, PROTO_RAW = 2 };
enum { CK_NONE = 0, CK_HTTP, CK_SSE, CK_WS };

struct gw_worker;

/* One connection: lws's per-session data (zeroed by lws). Kept small: the
 * idle cost per connection is what limits how many one process holds. */
typedef struct gw_conn {
    struct gw_worker *w;
    struct lws       *wsi;
    struct gw_conn   *prev, *next;   /* the worker's SSE or WS list */
    subidx_sub_t     *sub;
    outq_t            q;
    char             *rx;            /* WS message being reassembled */
    size_t            rx_len;
    uint64_t          last_rx_ns;    /* WS: last frame from the client */
    uint32_t          serial;        /* matches the epoll registration */
    int               fd;
    uint8_t           kind;
    uint8_t           fmt;           /* outq_fmt_t */
    uint8_t           ping_out;      /* WS: ping sent, nothing heard since */
    uint8_t           closing;       /* being closed; ignore it */
    uint8_t           rx_too_big;    /* WS: discarding an oversized message */
    uint8_t           resuming;      /* history replay under way: queue, don't write */
    gw_resume_t      *floor;         /* after a replay: per channel, the last offset
                                      * replayed; live events at or below are dropped */
    gw_resume_t      *rq;            /* requests waiting for the one under way */
    gw_resume_t      *starts;        /* WS: where each channel it streams began (or was
                                      * last resynced): live ever since, so a later
                                      * `since` for it replays nothing past there */
    struct conn_pos  *pos;           /* SSE over several channels: the position of
                                      * each, for the per-connection list cursor */
    uint8_t           going_away;    /* WS: drained, close 1001 when writable */
    uint8_t           auth_wait;     /* WS, auth required: no token yet, served nothing */
    uint16_t          close_code;    /* WS: close with this once the error is written */
    uint32_t          errors;        /* bad WS messages so far (FLAGCAST_WS_MAX_ERRORS
                                      * goes up to 1000000: no uint8_t wrap) */
    uint64_t          auth_deadline_ns; /* auth_wait: auth by then; close_code: killed by then */
    token_identity_t *id;            /* who the client is (owned), NULL: anonymous */
} gw_conn_t;

typedef struct gw_item {
    struct gw_item *next;
    outq_ev_t      *ev;              /* an event to fan out, or */
    gw_resume_t    *res;             /* a history replay for one connection, */
    uint64_t        t_ns;            /* (neither: a stop request) */
} gw_item_t;

typedef struct gw_worker {
    int                  id;
    pthread_t            tid;
    struct lws_context  *ctx;
    struct lws_vhost    *vh;
    struct lws          *listen_wsi;
    struct lws          *ep_wsi;
    int                  listen_fd;
    int                  epfd;
    int                  spare_fd;   /* released on EMFILE to shed a connection */
    /* inbox, filled by other threads */
    pthread_mutex_t      mu;
    gw_item_t           *in_head, **in_tail;
    size_t               in_count;
    /* owned by the worker thread */
    subidx_t            *idx;
    gw_conn_t           *sse, *ws;   /* lists */
    int                  hg_epfd;    /* connections whose head is not complete yet */
    struct lws          *hg_wsi;
    uint32_t            *hg;         /* per fd: 0, or deadline second << 1 | lingering */
    size_t               hg_count, hg_top;   /* pending; highest fd + 1 ever pending */
    char                *hg_buf;     /* FLAGCAST_MAX_HEADER_BYTES, for peeking */
    gw_conn_t          **by_fd;      /* epoll lookup */
    size_t               nfd;
    uint32_t             serial;
    lws_sorted_usec_list_t tick;
    uint64_t             next_keepalive_ns;
    outq_limits_t        lim;
    bool                 stopping;
    bool                 done;
    /* identity: a WS upgrade's token is verified in FILTER_PROTOCOL_CONNECTION
     * and its identity picked up by ESTABLISHED of the same wsi */
    struct lws          *pending_wsi;
    token_identity_t    *pending_id;
    /* a WS upgrade to refuse (admit_t) once established: close 1012/1013 */
    struct lws          *refuse_wsi;
    uint8_t              refuse;
    size_t               nexpiring;  /* connections whose token expires */
    /* graceful drain (drain.h): asked by gw_lws_drain, paced by drain_sul */
    atomic_bool          drain_req;
    bool                 draining;
    drain_t              drain;
    lws_sorted_usec_list_t drain_sul;
    /* start-up handshake with gw_lws_start */
    int                  start_rc;
    bool                 started;
} gw_worker_t;

static gw_worker_t     *workers;
static long             nworkers;      /* threads started (main thread only) */
static atomic_long      nlive;         /* fully set up: what other threads may post to */
static pthread_mutex_t  start_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t   start_cv = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t  ctx_create_mu = PTHREAD_MUTEX_INITIALIZER;

static unsigned char keepalive_bytes[LWS_PRE + 4];
static const size_t  keepalive_len = 3;   /* ":\n\n" */

static int gw_callback(struct lws *wsi, enum lws_callback_reasons reason,
                       void *user, void *in, size_t len);

static const struct lws_protocols gw_protocols[] = {
    /* protocols[0] serves plain HTTP and SSE and is the WS default. */
    { "flagcast.json", gw_callback, sizeof(gw_conn_t), GW_WS_RX_CHUNK, PROTO_JSON, NULL, GW_TX_PACKET },
    { "flagcast.msgpack", gw_callback, sizeof(gw_conn_t), GW_WS_RX_CHUNK, PROTO_MSGPACK, NULL, GW_TX_PACKET },
    { "flagcast-raw", gw_callback, 0, 0, PROTO_RAW, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

static void conn_kill(gw_conn_t *c, const char *reason);
static gw_resume_t *ack_request(buf_t *b);
static void resume_start(gw_worker_t *w, gw_conn_t *c, gw_resume_t *r);
static outq_ev_t *snapshot_item(gw_conn_t *c, const char *epoch, uint64_t offset);
static outq_ev_t *position_item(gw_conn_t *c, const gw_resume_t *r);
static int  worker_post(struct gw_worker *w, outq_ev_t *ev, gw_resume_t *res, uint64_t t_ns);

static gw_t *G;   /* transitional */

/* Records that WS connection c streams ch live from (epoch, offset) on. */
static void ws_start_set(gw_conn_t *c, const char *ch, const char *epoch, uint64_t offset)
{
    if (c->kind == CK_WS)
        resume_start_set(&c->starts, ch, epoch, offset);
}

/* ==== small helpers ==== */

static gw_worker_t *wsi_worker(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

static const char *conn_kind_name(const gw_conn_t *c)
{
    return c->kind == CK_SSE ? "sse" : c->kind == CK_WS ? "ws" : "http";
}

static void conn_peer(gw_conn_t *c, char *out, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?", port[8] = "?";

    if (getpeername(c->fd, (struct sockaddr *)&ss, &sl) == 0)
        getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
                    NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(out, len, "%s:%s", host, port);
}

static void list_add(gw_conn_t **head, gw_conn_t *c)
{
    c->prev = NULL;
    c->next = *head;
    if (*head)
        (*head)->prev = c;
    *head = c;
}

static void list_del(gw_conn_t **head, gw_conn_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else if (*head == c)
        *head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

/* ==== index callbacks ==== */

static void on_channel(void *arg, const char *channel, bool on)
{
    (void)arg;
    G->bus.want(channel, on);
}

/* ==== writing ==== */

/* ==== SSE list cursors ====
 *
 * An SSE stream of one channel uses the id rendered into the shared frame
 * (<channel>/<epoch>/<offset>): that is its whole position. A stream of
 * several channels (flags plus application channels, or several channels)
 * needs the position of each, so the gateway keeps them per connection
 * (conn_pos: ~90 bytes a channel, only on such streams) and writes its
 * events with the connection's own list cursor in place of the shared id
 * line: the shared frame is copied after a per-connection `id:` line into
 * a per-thread buffer (one memcpy, no extra syscall). Channels without an
 * event yet are left out of the cursor. */

typedef struct conn_pos_ent {
    const char *ch;                  /* the filter's string, or "flags" */
    uint64_t    off;
    bool        known;
    char        epoch[EV_MAX_EPOCH + 1];
} conn_pos_ent_t;

typedef struct conn_pos {
    uint32_t       n;
    conn_pos_ent_t e[];
} conn_pos_t;

static _Thread_local buf_t pos_buf;   /* one per service thread, reused */

static conn_pos_t *pos_new(const filter_t *f)
{
    size_t n = (f->flags != FILTER_FLAGS_NONE) + f->nchannels, i, k = 0;
    conn_pos_t *p;

    if (n < 2)
        return NULL;
    if (n > GW_RESUME_MAX_CHANNELS)
        n = GW_RESUME_MAX_CHANNELS;
    p = calloc(1, sizeof(*p) + n * sizeof(p->e[0]));
    if (p == NULL)
        return NULL;
    if (f->flags != FILTER_FLAGS_NONE)
        p->e[k++].ch = "flags";
    for (i = 0; k < n && i < f->nchannels; i++)
        p->e[k++].ch = f->channels[i];
    p->n = (uint32_t)k;
    return p;
}

static void pos_set(conn_pos_t *p, const char *ch, const char *epoch, uint64_t off)
{
    uint32_t i;

    if (p == NULL || ch == NULL || epoch == NULL)
        return;
    for (i = 0; i < p->n; i++)
        if (strcmp(p->e[i].ch, ch) == 0) {
            snprintf(p->e[i].epoch, sizeof(p->e[i].epoch), "%s", epoch);
            p->e[i].off = off;
            p->e[i].known = true;
            return;
        }
}

/* Appends the list cursor (without "id: "). */
static void pos_format(const conn_pos_t *p, buf_t *b)
{
    uint32_t i;
    bool first = true;

    for (i = 0; i < p->n; i++) {
        if (!p->e[i].known)
            continue;
        buf_printf(b, "%s%s/%s/%llu", first ? "" : " ", p->e[i].ch, p->e[i].epoch,
                   (unsigned long long)p->e[i].off);
        first = false;
    }
}

/* The bytes to write for event e (shared frame p/n) on c: the shared ones,
 * or for a list-cursor stream the frame with c's own id line. */
static void pos_frame(gw_conn_t *c, outq_ev_t *e, const char **p, size_t *n)
{
    static const char room[LWS_PRE];
    const ev_t *ev = outq_ev_event(e);
    const char *nl;

    if (c->pos == NULL || ev == NULL || ev->channel == NULL)
        return;
    pos_set(c->pos, ev->channel, ev->epoch, ev->offset);
    buf_reset(&pos_buf);
    buf_append(&pos_buf, room, LWS_PRE);
    buf_puts(&pos_buf, "id: ");
    pos_format(c->pos, &pos_buf);
    buf_putc(&pos_buf, '\n');
    if (*n > 4 && memcmp(*p, "id: ", 4) == 0 && (nl = memchr(*p, '\n', *n)) != NULL)
        buf_append(&pos_buf, nl + 1, *n - (size_t)(nl + 1 - *p));
    else
        buf_append(&pos_buf, *p, *n);
    if (pos_buf.err)
        return;   /* the shared bytes, then */
    *p = pos_buf.data + LWS_PRE;
    *n = pos_buf.len - LWS_PRE;
}

/* Writes what c has queued while lws has nothing of it pending.
 * @return 0, or -1 if the connection failed (it is being closed). */
static int conn_flush(gw_conn_t *c)
{
    enum lws_write_protocol wp = c->kind == CK_WS
        ? (c->fmt == OUTQ_FMT_MSGPACK ? LWS_WRITE_BINARY : LWS_WRITE_TEXT)
        : LWS_WRITE_HTTP;

    if (c->resuming)
        return 0;   /* the replay goes first; worker_resume flushes */
    while (!outq_empty(&c->q) && !lws_partial_buffered(c->wsi)) {
        const char *p;
        size_t n;

        outq_peek(&c->q, &p, &n);
        if (outq_head_offset(&c->q) != 0) {
            /* never happens: lws buffers the rest of a short write itself */
            outq_pop(&c->q);
            continue;
        }
        {
            const char *wp_p = p;
            size_t wp_n = n;
            pos_frame(c, outq_peek(&c->q, NULL, NULL), &wp_p, &wp_n);
            if (lws_write(c->wsi, (unsigned char *)wp_p, wp_n, wp) < 0) {
                conn_kill(c, "write failed");
                return -1;
            }
        }
        outq_consume(&c->q, n);
    }
    if (!outq_empty(&c->q) || lws_partial_buffered(c->wsi))
        lws_callback_on_writable(c->wsi);
    return 0;
}

/* Writes bytes that are not shared (a prelude, a comment) straight away; p
 * must have LWS_PRE writable bytes before it for WS. */
/* A control item from b (a buf_t that starts with LWS_PRE bytes of room;
 * takes its storage, also on failure). @return it with one reference, or
 * NULL (b failed, out of memory). */
static outq_ev_t *ctl_item(buf_t *b)
{
    size_t len;
    char *p;

    if (b->err) {
        buf_free(b);
        return NULL;
    }
    p = buf_steal(b, &len);
    return p ? outq_ev_adopt_raw(p, len, LWS_PRE) : NULL;
}

/* Queues a control message (a buf_t that starts with LWS_PRE bytes of room)
 * for c and writes it if nothing is ahead of it. Takes b's storage. */
static int conn_send_ctl(gw_conn_t *c, buf_t *b)
{
    outq_ev_t *e;

    if (b->err) {
        buf_free(b);
        return -1;
    }
    /* Replies are outside the queue limits (a snapshot may be larger), so
     * bound them here: a client that keeps asking without reading is cut. */
    if (outq_count(&c->q) > GW_CTL_QUEUE_MAX ||
        outq_bytes(&c->q) > 2 * (size_t)G->cfg.queue_max_bytes) {
        buf_free(b);
        metric_inc(G->m.slow_disconnects);
        log_warn("slow consumer disconnected",
                 "conn=%u transport=%s reason=\"replies not read\" queued=%zu queued_bytes=%zu",
                 c->serial, conn_kind_name(c), outq_count(&c->q), outq_bytes(&c->q));
        conn_kill(c, "replies not read");
        return -1;
    }
    if ((e = ctl_item(b)) == NULL)
        return -1;
    if (outq_push_ctl(&c->q, e) != OUTQ_OK) {
        outq_ev_unref(e);
        return -1;
    }
    outq_ev_unref(e);
    return conn_flush(c);
}

/* ==== connection lifecycle ==== */

static void conn_register(gw_worker_t *w, gw_conn_t *c, struct lws *wsi, int kind)
{
    c->w = w;
    c->wsi = wsi;
    c->kind = (uint8_t)kind;
    c->fd = lws_get_socket_fd(wsi);
    c->serial = ++w->serial;
    if (kind == CK_SSE) {
        list_add(&w->sse, c);
        metric_inc(G->m.conns_sse);
    } else {
        list_add(&w->ws, c);
        metric_inc(G->m.conns_ws);
    }
    if (c->fd >= 0 && (size_t)c->fd < w->nfd)
        w->by_fd[c->fd] = c;
}

/* Undoes everything a stream connection holds; safe to call twice. */
static void conn_release(gw_conn_t *c)
{
    gw_worker_t *w = c->w;

    if (w == NULL || (c->kind != CK_SSE && c->kind != CK_WS))
        return;
    if (c->sub) {
        subidx_remove(w->idx, c->sub);
        c->sub = NULL;
    }
    outq_clear(&c->q);
    gw_resume_free(c->floor);
    c->floor = NULL;
    gw_resume_free(c->starts);
    c->starts = NULL;
    while (c->rq) {
        gw_resume_t *r = c->rq;
        c->rq = r->next;
        gw_resume_free(r);
    }
    free(c->pos);
    c->pos = NULL;
    free(c->rx);
    c->rx = NULL;
    c->rx_len = 0;
    if (c->id) {
        if (gw_ident_deadline(c->id))
            w->nexpiring--;
        token_identity_free(c->id);
        c->id = NULL;
    }
    if (c->fd >= 0 && (size_t)c->fd < w->nfd && w->by_fd[c->fd] == c)
        w->by_fd[c->fd] = NULL;
    if (c->kind == CK_SSE) {
        list_del(&w->sse, c);
        metric_add(G->m.conns_sse, -1);
    } else {
        list_del(&w->ws, c);
        metric_add(G->m.conns_ws, -1);
    }
    admit_release(&G->conns);   /* the slot admission reserved */
    c->kind = CK_NONE;
}

/* Closes c from outside its own callback, at the next service turn. */
static void conn_kill(gw_conn_t *c, const char *reason)
{
    if (c->closing)
        return;
    c->closing = 1;
    log_debug("closing connection", "conn=%u transport=%s reason=\"%s\"",
              c->serial, conn_kind_name(c), reason);
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* ==== fan-out ==== */

typedef struct fan_ctx {
    gw_worker_t *w;
    outq_ev_t   *ev;
    const ev_t  *dev;
    const char  *data[OUTQ_FMT_COUNT];   /* the shared bytes, looked up once */
    size_t       len[OUTQ_FMT_COUNT];
    bool         looked[OUTQ_FMT_COUNT];
    int64_t      delivered, conflated, dropped;  /* added to the metrics once */
} fan_ctx_t;

static void fan_visit(void *arg, void *owner)
{
    fan_ctx_t *f = arg;
    gw_conn_t *c = owner;
    size_t nrem = 0;
    outq_res_t r;

    if (c->closing)
        return;
    if (c->floor && resume_floor_dup(&c->floor, f->dev))
        return;   /* replayed from history already */
    /* Fast path: nothing queued and lws holds nothing: write now. */
    if (!c->resuming && outq_empty(&c->q) && !lws_partial_buffered(c->wsi)) {
        unsigned fmt = c->fmt;
        enum lws_write_protocol wp = c->kind == CK_WS
            ? (fmt == OUTQ_FMT_MSGPACK ? LWS_WRITE_BINARY : LWS_WRITE_TEXT)
            : LWS_WRITE_HTTP;

        if (!f->looked[fmt]) {
            f->data[fmt] = outq_ev_data(f->ev, (outq_fmt_t)fmt, &f->len[fmt]);
            f->looked[fmt] = true;
        }
        if (f->data[fmt] == NULL) {
            f->dropped++;
            return;
        }
        f->delivered++;
        if (c->pos) {
            const char *pp = f->data[fmt];
            size_t pn = f->len[fmt];
            pos_frame(c, f->ev, &pp, &pn);
            if (lws_write(c->wsi, (unsigned char *)pp, pn, wp) < 0)
                conn_kill(c, "write failed");
            return;
        }
        if (lws_write(c->wsi, (unsigned char *)f->data[fmt], f->len[fmt], wp) < 0)
            conn_kill(c, "write failed");
        return;
    }
    r = outq_push(&c->q, f->ev, &f->w->lim, &nrem);
    switch (r) {
    case OUTQ_OK:
    case OUTQ_CONFLATED:
        f->delivered++;
        f->conflated += (int64_t)nrem;
        if (!c->resuming)
            lws_callback_on_writable(c->wsi);
        break;
    case OUTQ_OVERFLOW: {
        char peer[80];
        conn_peer(c, peer, sizeof(peer));
        log_warn("slow consumer disconnected",
                 "conn=%u transport=%s peer=%s reason=\"queue over limit\" queued_events=%zu queued_bytes=%zu channel=%s",
                 c->serial, conn_kind_name(c), peer, outq_ev_count(&c->q), outq_ev_bytes(&c->q),
                 f->dev && f->dev->channel ? f->dev->channel : "?");
        f->dropped++;
        metric_inc(G->m.slow_disconnects);
        conn_kill(c, "slow consumer");
        break;
    }
    case OUTQ_ERROR:
        f->dropped++;
        break;
    }
}

static void worker_fanout(gw_worker_t *w, outq_ev_t *e, uint64_t t_ns)
{
    fan_ctx_t f;
    size_t n;

    memset(&f, 0, sizeof(f));
    f.w = w;
    f.ev = e;
    f.dev = outq_ev_event(e);
    if (f.dev == NULL)
        return;
    n = subidx_lookup_change(w->idx, f.dev, outq_ev_prev(e), fan_visit, &f);
    if (n > 0)
        metric_observe(G->m.fanout_seconds, (double)(gw_now_ns() - t_ns) / 1e9);
    if (f.delivered)
        metric_add(G->m.deliveries, f.delivered);
    if (f.conflated)
        metric_add(G->m.conflations, f.conflated);
    if (f.dropped)
        metric_add(G->m.drops, f.dropped);
}

/* ==== snapshot and prelude rendering ==== */

static int render_snapshot(const filter_t *f, mirror_fmt_t fmt, buf_t *out)
{
    int rc;

    pthread_rwlock_rdlock(&G->mirror_lock);
    rc = mirror_render_snapshot(G->mirror, f, fmt, out);
    pthread_rwlock_unlock(&G->mirror_lock);
    return rc;
}

/* ==== HTTP ==== */

/* Adds the CORS headers for the request's Origin, if allowed
 * (FLAGCAST_CORS_ORIGINS, admit.h): the origin is echoed with
 * Allow-Credentials, also under "*" (a literal "*" makes browsers refuse
 * EventSource(url, {withCredentials: true})); the gateway reads bearer
 * tokens only, never cookies, so credentials grant nothing more here. */
static int add_cors(struct lws *wsi, unsigned char **p, unsigned char *end)
{
    static const char expose[] = "X-Flagcast-Refused, Retry-After";
    char origin[256];
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);

    if (n <= 0 || (size_t)n >= sizeof(origin) ||
        lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) != n ||
        !admit_origin_allowed(G->cfg.cors_origins, origin, (size_t)n))
        return 0;
    if (lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-allow-origin:",
                                    (const unsigned char *)origin, n, p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"vary:",
                                    (const unsigned char *)"Origin", 6, p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-allow-credentials:",
                                    (const unsigned char *)"true", 4, p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-expose-headers:",
                                    (const unsigned char *)expose, sizeof(expose) - 1, p, end))
        return 1;
    return 0;
}

/* A complete response with a body. @return what the HTTP callback returns. */
static int http_reply(struct lws *wsi, unsigned status, const char *ctype,
                      const char *body, size_t blen)
{
    unsigned char hdr[LWS_PRE + 1024], *start = hdr + LWS_PRE, *p = start,
                  *end = hdr + sizeof(hdr) - 1;
    unsigned char *out;

    if (lws_add_http_common_headers(wsi, status, ctype, blen, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end) ||
        add_cors(wsi, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    if (blen) {
        out = malloc(LWS_PRE + blen);
        if (out == NULL)
            return -1;
        memcpy(out + LWS_PRE, body, blen);
        if (lws_write(wsi, out + LWS_PRE, blen, LWS_WRITE_HTTP_FINAL) != (int)blen) {
            free(out);
            return -1;
        }
        free(out);
    }
    if (lws_http_transaction_completed(wsi))
        return -1;
    return 0;
}

static int http_reply_json_error(struct lws *wsi, unsigned status, const char *msg)
{
    buf_t b;
    int rc;

    buf_init(&b);
    buf_puts(&b, "{\"error\":");
    json_cstr(&b, msg);
    buf_puts(&b, "}\n");
    rc = b.err ? -1 : http_reply(wsi, status, "application/json", b.data, b.len);
    buf_free(&b);
    return rc;
}

static int http_preflight(struct lws *wsi)
{
    unsigned char hdr[LWS_PRE + 1024], *start = hdr + LWS_PRE, *p = start,
                  *end = hdr + sizeof(hdr) - 1;
    static const char methods[] = "GET, OPTIONS";
    static const char headers[] = "Authorization, Last-Event-ID, Cache-Control, Content-Type, Accept";

    if (lws_add_http_common_headers(wsi, 204, NULL, 0, &p, end) ||
        add_cors(wsi, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-allow-methods:",
                                    (const unsigned char *)methods, sizeof(methods) - 1, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-allow-headers:",
                                    (const unsigned char *)headers, sizeof(headers) - 1, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-max-age:",
                                    (const unsigned char *)"600", 3, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* The query string as lws split it (decoded args), joined with '&'.
 * A token=... argument is not joined: lws decoded it once already and
 * query_parse would decode it again (an API key may hold '%' or '+'); its
 * value goes to tokbuf (toklen bytes) and *tok points at it, or *tok is NULL
 * if there is none (tok NULL: the argument is just dropped).
 * @return its length, or -1 if it (or the token) is longer than the buffer. */
static int get_query(struct lws *wsi, char *out, size_t outlen,
                     char *tokbuf, size_t toklen, const char **tok)
{
    size_t len = 0;
    int i, n;

    out[0] = '\0';
    if (tok)
        *tok = NULL;
    for (i = 0; i < 256; i++) {
        char *frag = out + len + (len ? 1 : 0);
        n = lws_hdr_copy_fragment(wsi, frag, (int)(outlen - len - 1), WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0) {
            if (lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i) > 0)
                return -1;
            break;
        }
        if (n >= 6 && memcmp(frag, "token=", 6) == 0) {
            size_t tl = (size_t)n - 6;
            bool fits = tok && tl < toklen;
            if (fits) {
                memcpy(tokbuf, frag + 6, tl);
                tokbuf[tl] = '\0';
                *tok = tokbuf;
            }
            explicit_bzero(frag, (size_t)n);
            out[len] = '\0';
            if (tok && !fits)
                return -1;
            continue;
        }
        if (len)
            out[len] = '&';
        len += (size_t)n + (len ? 1 : 0);
        if (len + 2 >= outlen)
            return -1;
    }
    out[len] = '\0';
    return (int)len;
}

static bool is_sse_path(const char *path)
{
    return strcmp(path, "/api/v1/realtime/sse") == 0 || strcmp(path, "/realtime/sse") == 0 ||
           strcmp(path, "/api/v1/events/stream") == 0;
}

static bool is_ws_path(const char *path)
{
    return strcmp(path, "/ws") == 0 || strcmp(path, "/api/v1/realtime/ws") == 0;
}

/* ==== identity (ident_glue.c decides, this keeps it per connection) ==== */

/* The token of a request: the Authorization bearer header first, else the
 * ?token= value get_query set aside (qtok, NULL if none); verified and
 * admitted under FLAGCAST_AUTH. A WebSocket without any token is let
 * through here even when auth is required (ws): it may still send `auth`.
 * @return 0 with *id (owned by the caller; NULL: anonymous), or -1 with *e. */
static int request_identity(struct lws *wsi, const char *qtok, bool ws,
                            token_identity_t **id, access_error_t *e)
{
    char hdr[TOKEN_MAX_BYTES + 64];
    const char *tok = qtok;
    size_t len = qtok ? strlen(qtok) : 0;
    int n, rc;

    *id = NULL;
    if (!access_uses_tokens(gw_access()))
        return 0;
    n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (n > 0) {
        if ((size_t)n >= sizeof(hdr) ||
            lws_hdr_copy(wsi, hdr, sizeof(hdr), WSI_TOKEN_HTTP_AUTHORIZATION) < 0) {
            metric_inc(G->m.auth_refused);
            return access_token_refused("Authorization header too long", e);
        }
        if (token_bearer(hdr, &tok, &len) != 0) {
            explicit_bzero(hdr, sizeof(hdr));
            metric_inc(G->m.auth_refused);
            return access_token_refused("Authorization is not a Bearer token", e);
        }
    }
    if (tok == NULL && ws)
        return 0;
    rc = gw_ident_admit(tok, len, id, e);
    if (n > 0)
        explicit_bzero(hdr, sizeof(hdr));
    return rc;
}

/* Gives c the identity id (takes it): its inboxes are subscribed and what
 * it may no longer read (after a second `auth`) is dropped.
 * @return 0, or -1 with *err (id freed, c unchanged). */
static int conn_set_identity(gw_conn_t *c, token_identity_t *id, const char **err)
{
    gw_worker_t *w = c->w;
    filter_t f;

    filter_init(&f);
    if ((c->sub && filter_copy(&f, subidx_filter(c->sub)) != 0) ||
        gw_ident_apply(id, &f, err) != 0) {
        if (*err == NULL)
            *err = "out of memory";
        filter_free(&f);
        token_identity_free(id);
        return -1;
    }
    if (filter_is_empty(&f)) {
        subidx_remove(w->idx, c->sub);
        c->sub = NULL;
    } else if (c->sub ? subidx_update(w->idx, c->sub, &f) != 0
                      : (c->sub = subidx_add(w->idx, c, &f)) == NULL) {
        *err = "out of memory";
        filter_free(&f);
        token_identity_free(id);
        return -1;
    }
    filter_free(&f);
    if (c->id) {
        if (gw_ident_deadline(c->id))
            w->nexpiring--;
        token_identity_free(c->id);
    }
    c->id = id;
    if (gw_ident_deadline(id))
        w->nexpiring++;
    c->auth_wait = 0;
    return 0;
}

/* Checks the channels of f for c's identity; on refusal writes a message
 * naming the channel into ebuf. @return 0, or -1 with *e. */
static int check_channels(const token_identity_t *id, const filter_t *f, access_error_t *e,
                          char *ebuf, size_t elen)
{
    const char *bad = NULL;

    if (gw_ident_check_filter(id, f, e, &bad) == 0)
        return 0;
    snprintf(ebuf, elen, "channels: %s: %s", bad, e->message);
    return -1;
}

/* Over the connection cap, or a socket beyond the worker's fd table (its
 * close could not be noticed by the reaper, nor its resume answered): both
 * are refused with 503. The second can only happen with an explicit
 * FLAGCAST_MAX_CONNECTIONS above an unlimited open-file limit. */
static bool over_capacity(const gw_worker_t *w, struct lws *wsi)
{
    int fd = lws_get_socket_fd(wsi);
    return atomic_load(&G->conns) >= G->cfg.max_conns || (fd >= 0 && (size_t)fd >= w->nfd);
}

/* Before the flags were loaded once, a snapshot would claim there are none:
 * streams wait for that (503). Later outages keep serving the last state. */
static bool not_started(void)
{
    return !atomic_load(&G->mirror_ever);
}

static _Thread_local uint64_t refuse_rnd;   /* jitter of refusals' retry hints */

/* Refuses a new SSE stream in a form EventSource retries (admit.h): 200
 * text/event-stream, a comment with the reason and a jittered retry: hint,
 * then the end of the response. A 5xx would end the EventSource for good. */
static int sse_refuse(struct lws *wsi, admit_t a)
{
    unsigned char hdr[LWS_PRE + 1024], *start = hdr + LWS_PRE, *p = start,
                  *end = hdr + sizeof(hdr) - 1;
    const char *why = admit_reason(a);
    unsigned char *out;
    buf_t b;
    int rc = -1;

    if (a == ADMIT_FULL)
        metric_inc(G->m.conns_rejected);
    if (refuse_rnd == 0)
        refuse_rnd = gw_now_ns() ^ (uint64_t)(uintptr_t)&refuse_rnd;
    buf_init(&b);
    admit_render_sse(a, admit_retry_ms(&refuse_rnd, (unsigned)G->cfg.sse_retry), &b);
    log_debug("stream refused", "transport=sse reason=%s", why);
    if (b.err ||
        lws_add_http_common_headers(wsi, HTTP_STATUS_OK, "text/event-stream", b.len, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-cache", 8, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"x-flagcast-refused:",
                                    (const unsigned char *)why, (int)strlen(why), &p, end) ||
        add_cors(wsi, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        goto out;
    out = malloc(LWS_PRE + b.len);
    if (out == NULL)
        goto out;
    memcpy(out + LWS_PRE, b.data, b.len);
    rc = lws_write(wsi, out + LWS_PRE, b.len, LWS_WRITE_HTTP_FINAL) == (int)b.len ? 0 : -1;
    free(out);
    if (rc == 0 && lws_http_transaction_completed(wsi))
        rc = -1;
out:
    buf_free(&b);
    return rc;
}

/* Starts an SSE stream: headers, retry hint, connection event, snapshot. */
static int sse_start(gw_worker_t *w, gw_conn_t *c, struct lws *wsi)
{
    unsigned char hdr[LWS_PRE + 1024], *start = hdr + LWS_PRE, *p = start,
                  *end = hdr + sizeof(hdr) - 1;
    char qs[GW_QUERY_MAX], err[400], tokbuf[TOKEN_MAX_BYTES + 1];
    const char *ferr = NULL, *tok = NULL;
    token_identity_t *id = NULL;
    access_error_t ae;
    query_t q;
    filter_t f;
    buf_t b, data;
    int n, rc = -1;
    bool held = false;   /* a cap slot, until conn_register hands it to c */

    {
        admit_t a = admit_stream(atomic_load(&G->stopping), !not_started(), over_capacity(w, wsi));
        if (a == ADMIT_OK && !(held = admit_reserve(&G->conns, G->cfg.max_conns)))
            a = ADMIT_FULL;
        if (a != ADMIT_OK)
            return sse_refuse(wsi, a);
    }
    n = get_query(wsi, qs, sizeof(qs), tokbuf, sizeof(tokbuf), &tok);
    if (n >= 0 && request_identity(wsi, tok, false, &id, &ae) != 0) {
        explicit_bzero(tokbuf, sizeof(tokbuf));
        admit_release(&G->conns);
        return http_reply_json_error(wsi, (unsigned)ae.status, ae.message);
    }
    explicit_bzero(tokbuf, sizeof(tokbuf));
    if (n < 0) {
        admit_release(&G->conns);
        return http_reply_json_error(wsi, 400, "query string too long");
    }
    query_init(&q);
    filter_init(&f);
    if (query_parse(qs, (size_t)n, NULL, &q, err, sizeof(err)) != 0) {
        rc = http_reply_json_error(wsi, 400, err);
        goto out;
    }
    if (filter_from_req(&f, &q.req, true, FILTER_MAX_ITEMS, &ferr) != 0) {
        rc = http_reply_json_error(wsi, 400, ferr ? ferr : "bad filter");
        goto out;
    }
    if (check_channels(id, &f, &ae, err, sizeof(err)) != 0) {
        rc = http_reply_json_error(wsi, (unsigned)ae.status, err);
        goto out;
    }
    if (gw_ident_apply(id, &f, &ferr) != 0) {   /* the identity's inboxes */
        rc = http_reply_json_error(wsi, 500, ferr);
        goto out;
    }

    if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, "text/event-stream",
                                    LWS_ILLEGAL_HTTP_CONTENT_LEN, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-cache", 8, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"x-accel-buffering:",
                                    (const unsigned char *)"no", 2, &p, end) ||
        add_cors(wsi, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        goto out;

    /* The prelude: retry hint, connection event; the snapshot follows. */
    buf_init(&b);
    buf_init(&data);
    buf_append(&b, hdr, LWS_PRE);   /* room, unused for HTTP */
    sse_retry(&b, (unsigned)G->cfg.sse_retry);
    wsmsg_render_connected(WSMSG_FMT_JSON, "Connected to flagcast SSE stream", NULL, "SSE", &data);
    sse_frame(&b, NULL, "connection", data.data, data.len);
    buf_free(&data);
    if (b.err) {
        buf_free(&b);
        goto out;
    }

    memset(c, 0, sizeof(*c));
    outq_init(&c->q, OUTQ_FMT_SSE);
    c->fmt = OUTQ_FMT_SSE;
    held = false;   /* c holds the slot now: conn_release gives it back */
    conn_register(w, c, wsi, CK_SSE);
    c->id = id;   /* conn_release frees it */
    id = NULL;
    if (gw_ident_deadline(c->id))
        w->nexpiring++;
    if (!filter_is_empty(&f)) {
        c->sub = subidx_add(w->idx, c, &f);
        if (c->sub == NULL) {
            buf_free(&b);
            goto out;   /* CLOSED_HTTP releases c */
        }
    }

    /* One request to the Redis thread answers the stream's start: resume
     * from history what the cursor names (the Last-Event-ID header from
     * browsers, or the lastEventId parameter: a cursor or a list cursor,
     * one item per channel; an item that does not parse, or names a channel
     * this stream does not want, is ignored: that channel starts live), and
     * the position of every other channel once its SUBSCRIBE is confirmed.
     * The prelude is written with the answer, so everything published after
     * the client saw `connection` reaches it; the snapshot comes with it
     * when the cursor does not cover flags (a replay is never preceded by a
     * newer snapshot). */
    if (c->sub)
        c->pos = pos_new(subidx_filter(c->sub));
    {
        char *curp = malloc(QUERY_MAX_CURSOR + 1);
        const char *cs = NULL, *ch, *ep, *it;
        size_t chlen, eplen, ilen, ipos = 0;
        uint64_t off;
        int cl = curp ? lws_hdr_custom_copy(wsi, curp, QUERY_MAX_CURSOR + 1, "last-event-id:", 14) : -1;
        gw_resume_t *r = ack_request(&b);

        if (r == NULL) {
            free(curp);
            goto out;
        }
        if (cl > 0)
            cs = curp;
        else if (q.last_event_id)
            cs = q.last_event_id;
        while (cs && c->sub && query_cursor_next(cs, strlen(cs), &ipos, &it, &ilen)) {
            if (query_parse_cursor(it, ilen, &ch, &chlen, &ep, &eplen, &off) != 0)
                continue;
            if (resume_add(r, subidx_filter(c->sub), ch, chlen, ep, eplen, off) == 0 && c->pos)
                pos_set(c->pos, r->channels[r->nch - 1], r->epochs[r->nch - 1], off);
        }
        r->snapshot = !resume_has(r, "flags");
        if (c->sub)
            resume_add_starts(r, subidx_filter(c->sub), NULL);
        free(curp);
        resume_start(w, c, r);
    }

    /* Keep ~1 KB per idle stream: drop the header table, no timeout. */
    lws_http_headers_detach(wsi);
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);

    if (c->fd >= 0) {
        struct epoll_event ev;
        ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
        ev.data.u64 = ((uint64_t)c->serial << 32) | (uint32_t)c->fd;
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
            log_warn("epoll_ctl failed", "err=\"%s\"", strerror(errno));
    }

    rc = c->closing ? -1 : 0;
out:
    if (held)
        admit_release(&G->conns);
    token_identity_free(id);
    query_free(&q);
    filter_free(&f);
    return rc;
}

static int http_route(gw_worker_t *w, gw_conn_t *c, struct lws *wsi, const char *path)
{
    if (lws_hdr_total_length(wsi, WSI_TOKEN_OPTIONS_URI) > 0)
        return http_preflight(wsi);
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0) {
        /* a body may follow that we will not read: answer, then close */
        http_reply_json_error(wsi, 405, "method not allowed");
        return -1;
    }

    if (is_sse_path(path))
        return sse_start(w, c, wsi);
    if (strcmp(path, "/healthz") == 0)
        return http_reply(wsi, 200, "application/json", "{\"status\":\"ok\"}\n", 16);
    if (strcmp(path, "/readyz") == 0) {
        if (atomic_load(&G->ready) && !atomic_load(&G->draining) && !atomic_load(&G->stopping))
            return http_reply(wsi, 200, "application/json", "{\"status\":\"ready\"}\n", 19);
        return http_reply(wsi, 503, "application/json", "{\"status\":\"not ready\"}\n", 23);
    }
    if (strcmp(path, "/api/v1/realtime/sse/health") == 0 || strcmp(path, "/realtime/sse/health") == 0) {
        /* Flagent's shape; unhealthy (503, with the reason) while new
         * streams would be refused or get no live events. */
        const char *why = admit_health(atomic_load(&G->ready), atomic_load(&G->mirror_ever),
                                       atomic_load(&G->draining) || atomic_load(&G->stopping));
        char body[200];
        int n = snprintf(body, sizeof(body),
                         "{\"status\":\"%s\",%s%s%s\"activeConnections\":%lld,\"protocol\":\"SSE\"}\n",
                         why ? "unhealthy" : "healthy", why ? "\"reason\":\"" : "", why ? why : "",
                         why ? "\"," : "", (long long)metric_get(G->m.conns_sse));
        return http_reply(wsi, why ? 503 : 200, "application/json", body, (size_t)n);
    }
    if (strcmp(path, "/metrics") == 0) {
        buf_t b;
        int rc;

        buf_init(&b);
        if (metrics_render(&b) != 0 || b.err) {
            buf_free(&b);
            return http_reply_json_error(wsi, 500, "metrics rendering failed");
        }
        rc = http_reply(wsi, 200, "text/plain; version=0.0.4", b.data, b.len);
        buf_free(&b);
        return rc;
    }
    if (is_ws_path(path))
        return http_reply_json_error(wsi, 426, "WebSocket upgrade required");
    return http_reply_json_error(wsi, 404, "not found");
}

/* ==== WebSocket ==== */

static wsmsg_fmt_t ws_fmt(const gw_conn_t *c)
{
    return c->fmt == OUTQ_FMT_MSGPACK ? WSMSG_FMT_MSGPACK : WSMSG_FMT_JSON;
}

static void ws_buf(buf_t *b)
{
    static const char room[LWS_PRE];
    buf_init(b);
    buf_append(b, room, LWS_PRE);
}

static void ws_send_error(gw_conn_t *c, const char *code, const char *message)
{
    buf_t b;

    metric_inc(G->m.ws_errors);
    ws_buf(&b);
    wsmsg_render_error(ws_fmt(c), code, message, &b);
    conn_send_ctl(c, &b);
}

/* Replies "subscribed" with the effective subscription f and, after a
 * subscribe, a snapshot of the flags it selects (unless `since` covers
 * flags). The reply waits until every channel the request starts (not in
 * old; NULL: none) is subscribed on Redis and its position known, so that
 * everything published after the client saw `subscribed` reaches it; the
 * `since` positions are replayed after it (then live, without a newer
 * snapshot before the replay). */
static void ws_send_state(gw_conn_t *c, const filter_t *f, const filter_t *old, bool snapshot,
                          const wsmsg_since_t *since, size_t nsince)
{
    gw_resume_t *r;
    buf_t b;
    size_t i;

    ws_buf(&b);
    wsmsg_render_subscribed(ws_fmt(c), f, &b);
    if ((r = ack_request(&b)) == NULL)
        return;
    for (i = 0; c->sub && i < nsince; i++)
        resume_add(r, f, since[i].channel, strlen(since[i].channel), since[i].epoch,
                   strlen(since[i].epoch), since[i].offset);
    r->snapshot = snapshot && f->flags != FILTER_FLAGS_NONE && !resume_has(r, "flags");
    if (c->sub)
        resume_add_starts(r, f, old);
    resume_start(c->w, c, r);
}

/* Applies a subscribe/unsubscribe request. @return 0, or -1 with *err. */
static int ws_apply(gw_conn_t *c, const filter_req_t *req, bool subscribe,
                    const wsmsg_since_t *since, size_t nsince, const char **err, const char **code)
{
    static _Thread_local char ebuf[400];   /* a refusal naming the channel */
    gw_worker_t *w = c->w;
    access_error_t ae;
    filter_t f, old;

    *code = "bad_message";
    if (subscribe && c->auth_wait) {
        *code = "unauthorized";
        *err = "authentication required: send an auth message first";
        return -1;
    }
    filter_init(&f);
    filter_init(&old);
    if (c->sub && (filter_copy(&f, subidx_filter(c->sub)) != 0 ||
                   filter_copy(&old, subidx_filter(c->sub)) != 0)) {
        filter_free(&f);
        filter_free(&old);
        *err = "out of memory";
        return -1;
    }
    if (subscribe) {
        if (filter_subscribe(&f, req, FILTER_MAX_ITEMS, err) != 0) {
            filter_free(&f);
            filter_free(&old);
            return -1;
        }
        if (check_channels(c->id, &f, &ae, ebuf, sizeof(ebuf)) != 0) {
            *code = ae.code;
            *err = ebuf;
            filter_free(&f);
            filter_free(&old);
            return -1;
        }
    } else {
        filter_unsubscribe(&f, req);
    }
    if (filter_is_empty(&f)) {
        subidx_remove(w->idx, c->sub);
        c->sub = NULL;
    } else if (c->sub) {
        if (subidx_update(w->idx, c->sub, &f) != 0) {
            filter_free(&f);
            filter_free(&old);
            *err = "out of memory";
            return -1;
        }
    } else {
        c->sub = subidx_add(w->idx, c, &f);
        if (c->sub == NULL) {
            filter_free(&f);
            filter_free(&old);
            *err = "out of memory";
            return -1;
        }
    }
    resume_starts_prune(c->starts, c->sub ? &f : NULL);
    ws_send_state(c, &f, &old, subscribe, since, nsince);
    filter_free(&f);
    filter_free(&old);
    return 0;
}

/* Sends `error` {code, message}, stops delivering to c and closes it with
 * close_code once the error is written (SERVER_WRITEABLE), or from the tick
 * if the client does not read within 2 s. */
static void ws_close_with(gw_conn_t *c, const char *code, const char *message, uint16_t close_code)
{
    if (c->closing || c->close_code)
        return;
    if (c->sub) {
        subidx_remove(c->w->idx, c->sub);
        c->sub = NULL;
    }
    c->auth_wait = 0;
    c->close_code = close_code;
    c->auth_deadline_ns = gw_now_ns() + 2000000000ull;
    ws_send_error(c, code, message);
    if (!c->closing)
        lws_callback_on_writable(c->wsi);
}

/* The `auth` message: a token that does not verify closes the connection
 * (4401); a valid one gives the connection its identity (inboxes included)
 * and is answered with `subscribed`. A later `auth` may refresh the token of
 * the same user (a new expiry, roles, channels); another user is refused. */
static void ws_auth(gw_conn_t *c, char *tok)
{
    token_identity_t *id = NULL;
    access_error_t ae;
    const char *err = NULL;
    size_t len = tok ? strlen(tok) : 0;
    int rc;

    if (!access_uses_tokens(gw_access()) || tok == NULL) {
        if (tok)
            explicit_bzero(tok, len);
        return;   /* FLAGCAST_AUTH=off: tokens are not looked at */
    }
    rc = gw_ident_admit(tok, len, &id, &ae);
    explicit_bzero(tok, len);
    if (rc != 0) {
        ws_close_with(c, ae.code, ae.message, GW_CLOSE_UNAUTHORIZED);
        return;
    }
    if (c->id && strcmp(c->id->user, id->user) != 0) {
        token_identity_free(id);
        ws_send_error(c, "forbidden", "a connection cannot change its user");
        c->errors++;
        return;
    }
    {
        /* the inboxes the identity adds start like subscribed channels */
        filter_t none, before;
        filter_init(&none);
        filter_init(&before);
        if (c->sub && filter_copy(&before, subidx_filter(c->sub)) != 0) {
            token_identity_free(id);
            ws_send_error(c, "internal", "out of memory");
            return;
        }
        if (conn_set_identity(c, id, &err) != 0) {
            filter_free(&before);
            ws_send_error(c, "internal", err);
            return;
        }
        ws_send_state(c, c->sub ? subidx_filter(c->sub) : &none, &before, false, NULL, 0);
        filter_free(&before);
    }
}

/* Handles one complete client message. @return 0, or -1 to close. */
static int ws_message(gw_conn_t *c, const char *p, size_t n, bool binary)
{
    wsmsg_t m;
    wsmsg_error_t e;
    const char *err = NULL, *code = NULL;
    int rc = 0;

    if (c->close_code)
        return 0;   /* being closed: nothing more is served */
    wsmsg_init(&m);
    if (wsmsg_parse(binary ? WSMSG_FMT_MSGPACK : WSMSG_FMT_JSON, p, n,
                    (size_t)G->cfg.ws_max_frame, 0, &m, &e) != 0) {
        ws_send_error(c, wsmsg_err_code(e.code), e.message);
        c->errors++;
        goto out;
    }
    switch (m.type) {
    case WSMSG_SUBSCRIBE:
    case WSMSG_UNSUBSCRIBE:
        if (ws_apply(c, &m.req, m.type == WSMSG_SUBSCRIBE, m.since,
                     m.type == WSMSG_SUBSCRIBE ? m.nsince : 0, &err, &code) != 0) {
            ws_send_error(c, code, err ? err : "subscription failed");
            c->errors++;
        }
        break;
    case WSMSG_PING: {
        buf_t b;
        if (outq_count(&c->q) > GW_CTL_QUEUE_MAX)
            break;   /* behind: the pong would only pile up */
        ws_buf(&b);
        wsmsg_render_pong(ws_fmt(c), &m, &b);
        conn_send_ctl(c, &b);
        break;
    }
    case WSMSG_AUTH:
        ws_auth(c, m.token);
        break;
    }
out:
    if (c->errors >= G->cfg.ws_max_errors) {
        log_info("closing abusive WebSocket client", "conn=%u errors=%u", c->serial, c->errors);
        rc = -1;
    }
    wsmsg_free(&m);
    return rc;
}

/* Collects fragments of one message, bounded by FLAGCAST_WS_MAX_FRAME.
 * @return 0, or -1 to close. */
static int ws_receive(gw_conn_t *c, struct lws *wsi, const char *in, size_t len)
{
    bool first = lws_is_first_fragment(wsi), final = lws_is_final_fragment(wsi);
    int rc = 0;

    c->last_rx_ns = gw_now_ns();
    c->ping_out = 0;
    if (first) {
        c->rx_len = 0;
        c->rx_too_big = 0;
    }
    if (!c->rx_too_big) {
        if (c->rx_len + len > (size_t)G->cfg.ws_max_frame) {
            c->rx_too_big = 1;
            free(c->rx);
            c->rx = NULL;
            c->rx_len = 0;
        } else if (first && final) {
            return ws_message(c, in, len, lws_frame_is_binary(wsi));
        } else {
            char *nb = realloc(c->rx, c->rx_len + len + 1);
            if (nb == NULL)
                return -1;
            c->rx = nb;
            memcpy(c->rx + c->rx_len, in, len);
            c->rx_len += len;
        }
    }
    if (!final)
        return 0;
    if (c->rx_too_big) {
        char msg[96];
        snprintf(msg, sizeof(msg), "message over %ld bytes", G->cfg.ws_max_frame);
        ws_send_error(c, "too_large", msg);
        c->errors++;
        c->rx_too_big = 0;
        if (c->errors >= G->cfg.ws_max_errors)
            rc = -1;
    } else {
        rc = ws_message(c, c->rx, c->rx_len, lws_frame_is_binary(wsi));
    }
    free(c->rx);
    c->rx = NULL;
    c->rx_len = 0;
    return rc;
}

static int ws_established(gw_worker_t *w, gw_conn_t *c, struct lws *wsi)
{
    const struct lws_protocols *pr = lws_get_protocol(wsi);
    char qs[GW_QUERY_MAX], err[256], tokbuf[TOKEN_MAX_BYTES + 1];
    const char *tok = NULL, *ierr = NULL;
    token_identity_t *id = NULL;
    access_error_t ae;
    query_t q;
    buf_t b;
    int n;

    /* The identity was verified when the upgrade was filtered; verify again
     * only if that was another wsi's (never expected). */
    n = get_query(wsi, qs, sizeof(qs), tokbuf, sizeof(tokbuf), &tok);
    if (w->pending_wsi == wsi) {
        id = w->pending_id;
        w->pending_id = NULL;
        w->pending_wsi = NULL;
    } else if (request_identity(wsi, n >= 0 ? tok : NULL, true, &id, &ae) != 0) {
        explicit_bzero(tokbuf, sizeof(tokbuf));
        memset(c, 0, sizeof(*c));
        return -1;
    }
    explicit_bzero(tokbuf, sizeof(tokbuf));

    memset(c, 0, sizeof(*c));
    /* The cap slot, atomically (the check in FILTER_PROTOCOL_CONNECTION is
     * only an early answer): full is closed 1013 like a refusal there. */
    if (!admit_reserve(&G->conns, G->cfg.max_conns)) {
        const char *msg = admit_message(ADMIT_FULL);
        token_identity_free(id);
        metric_inc(G->m.conns_rejected);
        log_debug("stream refused", "transport=ws reason=%s", admit_reason(ADMIT_FULL));
        lws_close_reason(wsi, (enum lws_close_status)admit_ws_close(ADMIT_FULL),
                         (unsigned char *)msg, strlen(msg));
        return -1;
    }
    c->fmt = pr && pr->id == PROTO_MSGPACK ? OUTQ_FMT_MSGPACK : OUTQ_FMT_JSON;
    outq_init(&c->q, (outq_fmt_t)c->fmt);
    conn_register(w, c, wsi, CK_WS);
    c->last_rx_ns = gw_now_ns();

    /* Who it is: its inboxes now; without a token under auth=required it
     * gets nothing until an `auth` message, within FLAGCAST_AUTH_TIMEOUT. */
    if (id) {
        if (conn_set_identity(c, id, &ierr) != 0)
            return -1;
    } else if (access_mode(gw_access()) == ACCESS_AUTH_REQUIRED) {
        c->auth_wait = 1;
        c->auth_deadline_ns = gw_now_ns() + (uint64_t)G->cfg.auth_timeout * 1000000000ull;
    }

    /* `connected` once the inboxes are subscribed (see ws_send_state) */
    ws_buf(&b);
    wsmsg_render_connected(ws_fmt(c), "Connected to flagcast WebSocket", NULL,
                           c->fmt == OUTQ_FMT_MSGPACK ? "flagcast.msgpack" : "flagcast.json", &b);
    {
        gw_resume_t *r = ack_request(&b);

        if (r == NULL)
            return -1;
        if (c->sub)
            resume_add_starts(r, subidx_filter(c->sub), NULL);
        resume_start(w, c, r);
    }

    /* Filters in the upgrade URL subscribe at once, like SSE's. */
    if (n > 0) {
        const char *ferr = NULL, *code = NULL;
        query_init(&q);
        if (query_parse(qs, (size_t)n, NULL, &q, err, sizeof(err)) != 0) {
            ws_send_error(c, "bad_message", err);
        } else if (q.channels_given || q.req.subscribe_all || q.req.items.nkeys ||
                   q.req.items.nids || q.req.items.ntags) {
            if (ws_apply(c, &q.req, true, NULL, 0, &ferr, &code) != 0)
                ws_send_error(c, code, ferr ? ferr : "subscription failed");
        }
        query_free(&q);
    }
    return 0;
}

/* FILTER_PROTOCOL_CONNECTION of a WS upgrade: a token in the header or the
 * query must verify (401 otherwise); its identity waits in the worker for
 * ESTABLISHED of the same wsi. @return 0, or -1 after answering. */
static int ws_identify(gw_worker_t *w, struct lws *wsi)
{
    char qs[GW_QUERY_MAX], tokbuf[TOKEN_MAX_BYTES + 1];
    const char *tok = NULL;
    token_identity_t *id = NULL;
    access_error_t ae;
    int rc = 0;

    token_identity_free(w->pending_id);
    w->pending_id = NULL;
    w->pending_wsi = NULL;
    if (!access_uses_tokens(gw_access()))
        return 0;
    if (get_query(wsi, qs, sizeof(qs), tokbuf, sizeof(tokbuf), &tok) < 0) {
        http_reply_json_error(wsi, 400, "query string too long");
        rc = -1;
    } else if (request_identity(wsi, tok, true, &id, &ae) != 0) {
        http_reply_json_error(wsi, (unsigned)ae.status, ae.message);
        rc = -1;
    } else {
        w->pending_wsi = wsi;
        w->pending_id = id;
    }
    explicit_bzero(tokbuf, sizeof(tokbuf));
    return rc;
}

/* ==== the reaper: closed SSE peers ==== */

static void reap_ready(gw_worker_t *w)
{
    struct epoll_event evs[GW_EPOLL_BATCH];
    char scratch[4096];   /* per call: workers run in parallel */
    int n, i;

    for (;;) {
        n = epoll_wait(w->epfd, evs, GW_EPOLL_BATCH, 0);
        if (n <= 0)
            return;
        for (i = 0; i < n; i++) {
            int fd = (int)(uint32_t)evs[i].data.u64;
            uint32_t serial = (uint32_t)(evs[i].data.u64 >> 32);
            gw_conn_t *c = fd >= 0 && (size_t)fd < w->nfd ? w->by_fd[fd] : NULL;
            size_t got = 0;
            bool dead = false;

            if (c == NULL || c->serial != serial || c->kind != CK_SSE || c->closing)
                continue;
            if (evs[i].events & (EPOLLHUP | EPOLLERR))
                dead = true;
            /* Drain what the client sent (nothing is expected after the
             * request); end of file or an error means it is gone. */
            while (!dead) {
                ssize_t r = recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT);
                if (r > 0) {
                    got += (size_t)r;
                    if (got > GW_SSE_RX_MAX) {
                        conn_kill(c, "client sent too much on an SSE stream");
                        break;
                    }
                    continue;
                }
                if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                    break;
                if (r < 0 && errno == EINTR)
                    continue;
                dead = true;
            }
            if (dead)
                conn_kill(c, "peer closed");
        }
        if (n < GW_EPOLL_BATCH)
            return;
    }
}

/* ==== accepting ==== */

/* ==== the head gate: a new connection's head is checked before lws ==== */

#define GW_HEAD_TIMEOUT_S 10   /* a head not complete by then: closed (lws: timeout_secs) */
#define GW_LINGER_S        2   /* after a refusal: read what is left, then close */

static uint32_t now_s(void) { return (uint32_t)(gw_now_ns() / 1000000000ull); }

static void gate_forget(gw_worker_t *w, int fd)
{
    if (w->hg[fd]) {
        w->hg[fd] = 0;
        w->hg_count--;
    }
}

static void gate_close(gw_worker_t *w, int fd)
{
    gate_forget(w, fd);
    close(fd);   /* also leaves hg_epfd */
}

static void gate_adopt(gw_worker_t *w, int fd)
{
    lws_sock_file_fd_type sfd;

    if (w->hg[fd]) {
        epoll_ctl(w->hg_epfd, EPOLL_CTL_DEL, fd, NULL);
        gate_forget(w, fd);
    }
    sfd.sockfd = fd;
    if (lws_adopt_descriptor_vhost(w->vh, LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP, sfd, NULL, NULL) == NULL)
        log_warn("adopting a connection failed", NULL);
}

/* Reads and drops what the client sends after a refusal; 1 once it closed. */
static int gate_discard(gw_worker_t *w, int fd)
{
    for (;;) {
        ssize_t r = recv(fd, w->hg_buf, (size_t)G->cfg.max_header_bytes, MSG_DONTWAIT);
        if (r > 0)
            continue;
        if (r < 0 && errno == EINTR)
            continue;
        return !(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
    }
}

/* Answers a head lws would drop without a word (431 / 400), then lingers:
 * closing with the head still unread would reset the connection and could
 * discard the answer before the client reads it. */
static void gate_refuse(gw_worker_t *w, int fd, headgate_t v)
{
    char body[256], msg[512];
    int n, status = v == HEADGATE_TOO_LARGE ? 431 : 400;

    if (v == HEADGATE_TOO_LARGE)
        snprintf(body, sizeof(body), "{\"error\":\"request head over %ld bytes (FLAGCAST_MAX_HEADER_BYTES)\"}\n",
                 G->cfg.max_header_bytes);
    else
        snprintf(body, sizeof(body), "{\"error\":\"bad request: %s\"}\n", headgate_reason(v));
    n = snprintf(msg, sizeof(msg),
                 "HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %zu\r\n"
                 "cache-control: no-store\r\nconnection: close\r\n\r\n%s",
                 status == 431 ? "431 Request Header Fields Too Large" : "400 Bad Request",
                 strlen(body), body);
    log_info("request refused", "status=%d reason=\"%s\"", status, headgate_reason(v));
    /* a few hundred bytes into an empty send buffer: never short */
    if (send(fd, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 || shutdown(fd, SHUT_WR) != 0 ||
        gate_discard(w, fd)) {
        gate_close(w, fd);
        return;
    }
    if (!w->hg[fd])
        w->hg_count++;
    w->hg[fd] = ((now_s() + GW_LINGER_S) << 1) | 1;
}

/* Looks at what fd sent so far; 1 once the connection left the gate. */
static int gate_try(gw_worker_t *w, int fd)
{
    ssize_t r = recv(fd, w->hg_buf, (size_t)G->cfg.max_header_bytes, MSG_PEEK | MSG_DONTWAIT);
    headgate_t v;

    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    if (r <= 0) {
        gate_close(w, fd);   /* gone before it asked anything */
        return 1;
    }
    v = headgate_check(w->hg_buf, (size_t)r, (size_t)G->cfg.max_header_bytes);
    if (v == HEADGATE_MORE)
        return 0;
    if (v == HEADGATE_OK)
        gate_adopt(w, fd);
    else
        gate_refuse(w, fd, v);
    return 1;
}

static void gate_new(gw_worker_t *w, int fd)
{
    struct epoll_event ev;

    if ((size_t)fd >= w->nfd) {
        gate_adopt(w, fd);   /* lws refuses it as over capacity */
        return;
    }
    if (gate_try(w, fd))
        return;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;   /* edge: peeked bytes stay unread */
    ev.data.fd = fd;
    if (epoll_ctl(w->hg_epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        gate_adopt(w, fd);
        return;
    }
    w->hg[fd] = (now_s() + GW_HEAD_TIMEOUT_S) << 1;
    w->hg_count++;
    if ((size_t)fd + 1 > w->hg_top)
        w->hg_top = (size_t)fd + 1;
}

static void gate_ready(gw_worker_t *w)
{
    struct epoll_event evs[GW_EPOLL_BATCH];
    int n, i;

    for (;;) {
        n = epoll_wait(w->hg_epfd, evs, GW_EPOLL_BATCH, 0);
        if (n <= 0)
            return;
        for (i = 0; i < n; i++) {
            int fd = evs[i].data.fd;

            if (fd < 0 || (size_t)fd >= w->nfd || !w->hg[fd])
                continue;
            if (w->hg[fd] & 1) {
                if (gate_discard(w, fd))
                    gate_close(w, fd);
            } else {
                gate_try(w, fd);
            }
        }
    }
}

/* Every second: heads that never completed, and refusals the client never
 * closed, are closed. */
static void gate_expire(gw_worker_t *w, bool all)
{
    uint32_t now = now_s();
    size_t fd;

    for (fd = 0; w->hg_count && fd < w->hg_top; fd++)
        if (w->hg[fd] && (all || (w->hg[fd] >> 1) <= now))
            gate_close(w, (int)fd);
}

static void accept_ready(gw_worker_t *w)
{
    int i, one = 1;

    for (i = 0; i < GW_ACCEPT_BURST; i++) {
        int s = accept4(w->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (s < 0) {
            if (errno == EINTR)
                continue;
            if ((errno == EMFILE || errno == ENFILE) && w->spare_fd >= 0) {
                /* Out of descriptors: shed this connection rather than let
                 * the listen socket spin readable. */
                close(w->spare_fd);
                s = accept4(w->listen_fd, NULL, NULL, SOCK_CLOEXEC);
                if (s >= 0)
                    close(s);
                w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                metric_inc(G->m.conns_rejected);
                log_warn("out of file descriptors, connection refused", NULL);
            }
            return;
        }
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        gate_new(w, s);
    }
}

/* ==== stop ==== */

static void worker_begin_stop(gw_worker_t *w)
{
    gw_conn_t *c, *next;
    buf_t b;

    if (w->stopping)
        return;
    w->stopping = true;
    if (w->listen_wsi) {
        lws_set_timeout(w->listen_wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        w->listen_wsi = NULL;
    }
    /* SSE: one last retry hint, then close; the client reconnects elsewhere. */
    buf_init(&b);
    buf_append(&b, keepalive_bytes, LWS_PRE);
    sse_retry(&b, (unsigned)G->cfg.sse_retry);
    for (c = w->sse; c; c = next) {
        next = c->next;
        if (!c->closing && !b.err && !lws_partial_buffered(c->wsi))
            lws_write(c->wsi, (unsigned char *)b.data + LWS_PRE, b.len - LWS_PRE, LWS_WRITE_HTTP);
        conn_kill(c, "shutting down");
    }
    buf_free(&b);
    /* WS: close 1001 from the writable callback. */
    for (c = w->ws; c; c = c->next)
        lws_callback_on_writable(c->wsi);
}

/* ==== graceful drain (drain.h) ==== */

static _Atomic uint64_t drain_window_ns;   /* set by gw_lws_drain */

/* Tells one connection to reconnect elsewhere: SSE a jittered retry: hint,
 * then close; WS close 1001 from its writable callback. */
static void drain_conn(gw_worker_t *w, gw_conn_t *c)
{
    if (c->kind == CK_SSE) {
        buf_t b;

        buf_init(&b);
        buf_append(&b, keepalive_bytes, LWS_PRE);
        sse_retry(&b, drain_retry_ms(&w->drain, (unsigned)G->cfg.sse_retry));
        if (!b.err && !lws_partial_buffered(c->wsi))
            lws_write(c->wsi, (unsigned char *)b.data + LWS_PRE, b.len - LWS_PRE, LWS_WRITE_HTTP);
        buf_free(&b);
        metric_inc(G->m.drained_sse);
        conn_kill(c, "draining");
    } else {
        c->going_away = 1;
        metric_inc(G->m.drained_ws);
        lws_callback_on_writable(c->wsi);
    }
}

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
        drain_conn(w, c);
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

/* Identity deadlines, from the tick (no per-connection timers): a token
 * past its exp (+ leeway, as token_verify counts it) closes its connection
 * (SSE: closed; WS: `error token_expired`, close 4401); a WS that owes an
 * `auth` message past FLAGCAST_AUTH_TIMEOUT is closed the same way; a WS
 * whose close waits on a client that does not read is killed after 2 s. */
static void ident_tick(gw_worker_t *w, uint64_t now)
{
    long long wall = (long long)time(NULL);
    gw_conn_t *c, *next;

    if (w->nexpiring > 0) {
        for (c = w->sse; c; c = next) {
            long long dl = gw_ident_deadline(c->id);
            next = c->next;
            if (!c->closing && dl && wall >= dl) {
                log_debug("token expired", "conn=%u transport=sse", c->serial);
                metric_inc(G->m.auth_expired);
                conn_kill(c, "token expired");
            }
        }
    }
    for (c = w->ws; c; c = next) {
        next = c->next;
        if (c->closing)
            continue;
        if (c->close_code) {
            if (now >= c->auth_deadline_ns)
                conn_kill(c, "close not taken");
        } else if (c->auth_wait) {
            if (now >= c->auth_deadline_ns) {
                metric_inc(G->m.auth_refused);
                ws_close_with(c, "unauthorized", "authentication required: no auth message in time",
                              GW_CLOSE_UNAUTHORIZED);
            }
        } else if (c->id && gw_ident_deadline(c->id) && wall >= gw_ident_deadline(c->id)) {
            log_debug("token expired", "conn=%u transport=ws", c->serial);
            metric_inc(G->m.auth_expired);
            ws_close_with(c, "token_expired", "the token expired", GW_CLOSE_UNAUTHORIZED);
        }
    }
}

static void worker_tick(lws_sorted_usec_list_t *sul)
{
    gw_worker_t *w = lws_container_of(sul, gw_worker_t, tick);
    uint64_t now = gw_now_ns();
    gw_conn_t *c, *next;

    if (w->stopping) {
        /* Second tick after the stop: whatever is left is closed by
         * lws_context_destroy. */
        w->done = true;
        lws_cancel_service(w->ctx);
        return;
    }
    if (w->hg_count)
        gate_expire(w, false);
    if (now >= w->next_keepalive_ns) {
        w->next_keepalive_ns = now + (uint64_t)G->cfg.sse_keepalive * 1000000000ull;
        for (c = w->sse; c; c = next) {
            next = c->next;
            if (c->closing || !outq_empty(&c->q) || lws_partial_buffered(c->wsi))
                continue;   /* busy streams need no keep-alive */
            if (lws_write(c->wsi, keepalive_bytes + LWS_PRE, keepalive_len, LWS_WRITE_HTTP) < 0)
                conn_kill(c, "write failed");
        }
    }
    for (c = w->ws; c; c = next) {
        uint64_t idle = now - c->last_rx_ns;
        next = c->next;
        if (c->closing)
            continue;
        if (idle >= (uint64_t)G->cfg.ws_idle_timeout * 1000000000ull) {
            conn_kill(c, "idle timeout");
        } else if (idle >= (uint64_t)G->cfg.ws_ping * 1000000000ull && !c->ping_out &&
                   !lws_partial_buffered(c->wsi) && outq_empty(&c->q)) {
            /* lws 4.1.6 does not report a pong with an empty payload
             * (ops-ws.c skips the callback), so the ping carries one. */
            unsigned char pb[LWS_PRE + 8];
            memcpy(pb + LWS_PRE, "flagcast", 8);
            c->ping_out = 1;
            if (lws_write(c->wsi, pb + LWS_PRE, 8, LWS_WRITE_PING) < 0)
                conn_kill(c, "write failed");
        }
    }
    ident_tick(w, now);
    lws_sul_schedule(w->ctx, 0, &w->tick, worker_tick, LWS_US_PER_SEC);
}

/* ==== resuming from history ==== */

/* c's list cursor with ch moved to (epoch, offset), NUL-terminated in
 * *lid, for a control item of a list-cursor SSE stream; else lid is left
 * empty (lid->data NULL). */
static void ctl_cursor(gw_conn_t *c, const char *ch, const char *epoch, uint64_t offset, buf_t *lid)
{
    buf_init(lid);
    if (c->pos == NULL || c->fmt != OUTQ_FMT_SSE)
        return;
    pos_set(c->pos, ch, epoch, offset);
    pos_format(c->pos, lid);
    buf_putc(lid, '\0');
    if (lid->err || lid->len <= 1)
        buf_free(lid);
}

/* A snapshot of what c's filter selects, in c's format; on SSE with the id
 * of the flags position it reflects (epoch NULL: none). @return a control
 * item with one reference, or NULL. */
static outq_ev_t *snapshot_item(gw_conn_t *c, const char *epoch, uint64_t offset)
{
    static const char room[LWS_PRE];
    const filter_t *f = c->sub ? subidx_filter(c->sub) : NULL;
    buf_t b, data, lid;
    int rc;

    if (f == NULL)
        return NULL;
    buf_init(&b);
    buf_append(&b, room, LWS_PRE);
    if (c->fmt != OUTQ_FMT_SSE && epoch == NULL) {
        rc = render_snapshot(f, c->fmt == OUTQ_FMT_MSGPACK ? MIRROR_FMT_MSGPACK : MIRROR_FMT_JSON, &b);
    } else if (c->fmt != OUTQ_FMT_SSE) {
        /* WS: the snapshot says where it stands ("channel", "epoch",
         * "offset", as events do), so a client resumes flags from it */
        buf_init(&data);
        rc = render_snapshot(f, c->fmt == OUTQ_FMT_MSGPACK ? MIRROR_FMT_MSGPACK : MIRROR_FMT_JSON, &data);
        if (rc == 0)
            rc = wsmsg_add_position(ws_fmt(c), data.data, data.len, "flags", epoch, offset, &b);
        buf_free(&data);
    } else {
        char id[QUERY_MAX_CURSOR + 1];
        ctl_cursor(c, "flags", epoch, offset, &lid);
        buf_init(&data);
        rc = render_snapshot(f, MIRROR_FMT_JSON, &data);
        if (rc == 0 && !lid.data && epoch && query_format_cursor(id, sizeof(id), "flags", epoch, offset) < 0)
            rc = -1;
        if (rc == 0)
            rc = sse_frame(&b, lid.data ? lid.data : epoch ? id : NULL, "snapshot", data.data, data.len);
        buf_free(&data);
        buf_free(&lid);
    }
    if (rc != 0) {
        buf_free(&b);
        return NULL;
    }
    return ctl_item(&b);
}

/* For an SSE start without a snapshot: `id: <cursor>` and a blank line (no
 * data, so no event is dispatched, but the last event id is set): the list
 * cursor of a multi-channel stream, or the one channel's position. @return
 * a control item, or NULL (no position answered). */
static outq_ev_t *position_item(gw_conn_t *c, const gw_resume_t *r)
{
    static const char room[LWS_PRE];
    char id[QUERY_MAX_CURSOR + 1];
    buf_t b;
    size_t i;

    for (i = 0; i < r->nch && !(r->pos_only[i] && r->ok[i] && r->epochs[i]); i++)
        ;
    if (i == r->nch)
        return NULL;
    buf_init(&b);
    buf_append(&b, room, LWS_PRE);
    buf_puts(&b, "id: ");
    if (c->pos) {
        pos_format(c->pos, &b);
    } else {
        if (query_format_cursor(id, sizeof(id), r->channels[i], r->epochs[i], r->last[i]) < 0) {
            buf_free(&b);
            return NULL;
        }
        buf_puts(&b, id);
    }
    buf_puts(&b, "\n\n");
    return ctl_item(&b);
}

/* A resync for c in its format (hist.h), or on `flags` a fresh snapshot of
 * what c's filter selects (flags are state: that makes the client whole).
 * @return a control item with one reference, or NULL. */
static outq_ev_t *resync_item(gw_conn_t *c, const char *ch, const char *reason,
                              const char *epoch, uint64_t offset)
{
    static const char room[LWS_PRE];
    const filter_t *f = c->sub ? subidx_filter(c->sub) : NULL;
    buf_t b, lid;
    int rc;

    if (f == NULL || !filter_wants_channel(f, ch, strlen(ch)))
        return NULL;
    if (strcmp(ch, "flags") == 0)
        return snapshot_item(c, epoch, offset);
    buf_init(&b);
    buf_append(&b, room, LWS_PRE);
    ctl_cursor(c, ch, epoch, offset, &lid);
    rc = hist_render_resync((outq_fmt_t)c->fmt, ch, reason, epoch, offset, lid.data, &b);
    buf_free(&lid);
    if (rc != 0) {
        buf_free(&b);
        return NULL;
    }
    return ctl_item(&b);
}

/* A channel-wide resync from the Redis thread (r->fd < 0): every local
 * subscriber of the channel gets it, after what it already has queued. */
static void worker_resync_all(gw_worker_t *w, gw_resume_t *r)
{
    gw_conn_t *lists[2] = { w->sse, w->ws }, *c, *next;
    size_t k;

    for (k = 0; k < 2; k++)
        for (c = lists[k]; c; c = next) {
            outq_ev_t *e;
            next = c->next;
            if (c->closing || c->resuming)
                continue;   /* a resuming one gets its own answer */
            e = resync_item(c, r->channels[0], r->reason[0], r->epochs[0], r->last[0]);
            if (e == NULL)
                continue;
            if (resume_start_find(c->starts, r->channels[0]) >= 0)   /* live again from there */
                ws_start_set(c, r->channels[0], r->epochs[0], r->last[0]);
            if (outq_push_ctl(&c->q, e) == OUTQ_OK)
                conn_flush(c);
            outq_ev_unref(e);
        }
    gw_resume_free(r);
}

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

/* The Redis thread's answer for c: resyncs (or fresh snapshots) for the
 * channels history could not honour, then the replayed events that c's
 * filter selects, then what was queued live meanwhile, minus what the
 * replay already covered. The replayed positions stay as c's floor, so a
 * live event that the replay already gave is never written twice. */
/* A WS acknowledgement (connected, subscribed) tells where each channel it
 * started begins ("positions", the shape `since` takes), so a client that
 * reconnects before its first event there resumes from its start, as an
 * SSE client does with the id-only frame. */
static void ws_ack_positions(gw_conn_t *c, gw_resume_t *r)
{
    wsmsg_since_t *pos;
    const char *msg;
    size_t i, n = 0, len;
    outq_ev_t *e;
    buf_t b;

    for (i = 0; i < r->nch; i++)
        n += r->pos_only[i] && r->ok[i] && r->epochs[i];
    if (n == 0 || (msg = outq_ev_data(r->prelude, (outq_fmt_t)c->fmt, &len)) == NULL ||
        (pos = calloc(n, sizeof(*pos))) == NULL)
        return;
    for (i = 0, n = 0; i < r->nch; i++)
        if (r->pos_only[i] && r->ok[i] && r->epochs[i]) {
            pos[n].channel = r->channels[i];
            pos[n].epoch = r->epochs[i];
            pos[n++].offset = r->last[i];
        }
    ws_buf(&b);
    if (wsmsg_add_positions(ws_fmt(c), msg, len, pos, n, &b) == 0 && (e = ctl_item(&b)) != NULL) {
        outq_ev_unref(r->prelude);
        r->prelude = e;
    } else {
        buf_free(&b);
    }
    free(pos);
}

static void worker_resume(gw_worker_t *w, gw_resume_t *r)
{
    gw_conn_t *c;
    const filter_t *f;
    outq_t nq;
    outq_ev_t *e;
    size_t i, replayed = 0;
    bool overflow = false, any_ok = false, flags_unsure = false;

    if (r->fd < 0) {
        worker_resync_all(w, r);
        return;
    }
    c = (size_t)r->fd < w->nfd ? w->by_fd[r->fd] : NULL;
    if (c == NULL || c->serial != r->serial || !c->resuming || c->closing) {
        gw_resume_free(r);
        return;
    }
    f = c->sub ? subidx_filter(c->sub) : NULL;
    outq_init(&nq, (outq_fmt_t)c->fmt);
    /* the acknowledgement first (SSE prelude, WS subscribed), then the
     * snapshot: both only now that every new channel is subscribed */
    if (r->prelude && c->kind == CK_WS)
        ws_ack_positions(c, r);
    if (r->prelude)
        outq_push_ctl(&nq, r->prelude);
    /* where the stream starts on each channel it had no cursor for: live
     * events up to there are before its start (the floor) */
    for (i = 0; i < r->nch; i++)
        if (r->pos_only[i] && r->ok[i] && r->epochs[i] && c->pos)
            pos_set(c->pos, r->channels[i], r->epochs[i], r->last[i]);
    /* A `since` for a channel the connection already streams (its inboxes,
     * started at `connected`): what came after its start came live, so the
     * replay stops there, and what is queued live is kept. */
    for (i = 0; i < r->nevs; i++) {
        const ev_t *dev = outq_ev_event(r->evs[i]);
        if (dev && resume_start_covers(c->starts, dev) && resume_streamed(c->starts, r, dev->channel)) {
            outq_ev_unref(r->evs[i]);
            memmove(r->evs + i, r->evs + i + 1, (r->nevs - i - 1) * sizeof(*r->evs));
            r->nevs--;
            i--;
        }
    }
    if (r->snapshot && f) {
        size_t k;
        for (k = 0; k < r->nch && !(r->pos_only[k] && strcmp(r->channels[k], "flags") == 0); k++)
            ;
        e = snapshot_item(c, k < r->nch && r->ok[k] ? r->epochs[k] : NULL, k < r->nch ? r->last[k] : 0);
        if (e) {
            outq_push_ctl(&nq, e);
            outq_ev_unref(e);
        }
    } else if (c->fmt == OUTQ_FMT_SSE && (e = position_item(c, r)) != NULL) {
        /* no snapshot carries the position: an id-only frame gives the
         * client a cursor before its first event (EventSource keeps it), so
         * a reconnect before then misses nothing either */
        outq_push_ctl(&nq, e);
        outq_ev_unref(e);
    }
    for (i = 0; i < r->nch; i++) {
        if (r->pos_only[i]) {
            any_ok |= r->ok[i];
            continue;
        }
        any_ok |= r->ok[i];
        if (!r->ok[i] && r->reason[i] &&
            (e = resync_item(c, r->channels[i], r->reason[i], r->epochs[i], r->last[i])) != NULL) {
            outq_push_ctl(&nq, e);
            outq_ev_unref(e);
        }
    }
    /* A change in the gap may have moved a flag out of the filter while
     * history does not say what it was before: then the flags part of the
     * replay is replaced by a snapshot at its end, which makes the flags
     * view whole (the other channels are replayed as usual). */
    for (i = 0; f && i < r->nevs && !flags_unsure; i++) {
        const ev_t *dev = outq_ev_event(r->evs[i]);
        flags_unsure = dev && outq_ev_prev(r->evs[i]) == NULL && resume_before_unknown(f, dev) &&
                       resume_replay_prev(r, i, dev->flag->id) == NULL;
    }
    if (flags_unsure) {
        size_t k;
        for (k = 0; k < r->nch && strcmp(r->channels[k], "flags") != 0; k++)
            ;
        e = snapshot_item(c, k < r->nch && r->ok[k] ? r->epochs[k] : NULL, k < r->nch ? r->last[k] : 0);
        if (e) {
            outq_push_ctl(&nq, e);
            outq_ev_unref(e);
        }
    }
    for (i = 0; i < r->nevs; i++) {
        const ev_t *dev = outq_ev_event(r->evs[i]);
        const flag_t *pv = outq_ev_prev(r->evs[i]);
        if (f && dev && pv == NULL && resume_before_unknown(f, dev))
            pv = resume_replay_prev(r, i, dev->flag->id);
        if (flags_unsure && dev && strcmp(dev->channel, "flags") == 0)
            continue;   /* the snapshot holds it */
        if (f && dev && (filter_match_event(f, dev) ||
                         (pv && filter_wants_channel(f, "flags", 5) && filter_match_flag(f, pv))) &&
            outq_ev_data(r->evs[i], (outq_fmt_t)c->fmt, NULL) != NULL &&
            outq_push_ctl(&nq, r->evs[i]) == OUTQ_OK)
            replayed++;
    }
    for (i = 0; i < r->nch; i++)
        if (!r->pos_only[i] && r->ok[i] && resume_streamed(c->starts, r, r->channels[i]))
            r->ok[i] = false;   /* live all along: no floor, nothing queued is a repeat */
    while ((e = outq_peek(&c->q, NULL, NULL)) != NULL) {
        const ev_t *dev = outq_ev_event(e);
        if (dev == NULL)
            outq_push_ctl(&nq, e);
        else if (!resume_dup(r, dev) && outq_push(&nq, e, &w->lim, NULL) == OUTQ_OVERFLOW)
            overflow = true;
        outq_pop(&c->q);
    }
    outq_clear(&c->q);
    c->q = nq;
    c->resuming = 0;
    /* from the answer on, each channel of it comes live (after its replay,
     * its resync, or from its start) */
    for (i = 0; i < r->nch; i++)
        if (r->epochs[i] && (r->ok[i] || r->reason[i]) && resume_start_find(c->starts, r->channels[i]) < 0)
            ws_start_set(c, r->channels[i], r->epochs[i], r->last[i]);

    metric_add(G->m.deliveries, (int64_t)replayed);
    for (i = 0; i < r->nch; i++)
        log_debug("resumed", "conn=%u channel=%s from=%llu recovered=%s to=%llu reason=\"%s\"", c->serial,
                  r->channels[i], (unsigned long long)r->offsets[i], r->ok[i] ? "true" : "false",
                  (unsigned long long)r->last[i], r->reason[i] ? r->reason[i] : "");
    /* keep the positions (not the events) as the floor */
    for (i = 0; i < r->nevs; i++)
        outq_ev_unref(r->evs[i]);
    free(r->evs);
    r->evs = NULL;
    r->nevs = r->cap = 0;
    if (r->prelude) {
        outq_ev_unref(r->prelude);
        r->prelude = NULL;
    }
    /* the replayed positions are the floor; those of the previous floor
     * still at the seam stay */
    c->floor = resume_floor_next(r, any_ok, c->floor);
    if (c->rq) {
        /* the connection's next request: the answer of this one is
         * queued (written once that one is answered too) */
        gw_resume_t *n = c->rq;
        c->rq = n->next;
        n->next = NULL;
        resume_start(w, c, n);
    }
    if (overflow) {
        metric_inc(G->m.slow_disconnects);
        log_warn("slow consumer disconnected", "conn=%u transport=%s reason=\"queue over limit during replay\"",
                 c->serial, conn_kind_name(c));
        conn_kill(c, "slow consumer");
        return;
    }
    conn_flush(c);
}

/* A start request whose answer is written after the acknowledgement in b
 * (takes b's storage). @return it, or NULL. */
static gw_resume_t *ack_request(buf_t *b)
{
    gw_resume_t *r = b->err ? NULL : gw_resume_new(4);

    if (r == NULL || (r->prelude = ctl_item(b)) == NULL) {
        buf_free(b);
        gw_resume_free(r);
        return NULL;
    }
    return r;
}

/* Sends r for c (takes r): c queues live events until the answer. A
 * request while another is under way waits for it (answers stay in the
 * order of the requests); one naming no channel only writes its prelude. */
static void resume_start(gw_worker_t *w, gw_conn_t *c, gw_resume_t *r)
{
    if (c->resuming) {
        gw_resume_t **pp = &c->rq;
        while (*pp)
            pp = &(*pp)->next;
        *pp = r;
        return;
    }
    if (r->nch > 0) {
        r->worker = w->id;
        r->serial = c->serial;
        r->fd = c->fd;
        c->resuming = 1;
        if (G->bus.resume(r) == 0)
            return;
        c->resuming = 0;   /* the Redis thread is gone: what can be said now */
    }
    if (r->prelude)
        outq_push_ctl(&c->q, r->prelude);
    if (r->snapshot) {
        outq_ev_t *e = snapshot_item(c, NULL, 0);
        if (e) {
            outq_push_ctl(&c->q, e);
            outq_ev_unref(e);
        }
    }
    gw_resume_free(r);
    conn_flush(c);
}

/* ==== the inbox ==== */

static void worker_drain(gw_worker_t *w)
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
            worker_resume(w, it->res);
        } else if (it->ev == NULL) {
            stop = true;
        } else {
            if (!w->stopping)
                worker_fanout(w, it->ev, it->t_ns);
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
    if (ev && w->in_count >= (size_t)G->cfg.inbox_max) {
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
            metric_inc(G->m.drops);
            log_warn("service thread inbox full, event dropped", "thread=%ld", i);
            /* never silent: the thread's subscribers of the channel are
             * told (flags: a fresh snapshot, which holds the change) */
            if (ev && ev->channel)
                post_resync(i, ev->channel, HIST_REASON_OVERLOAD, ev->epoch, ev->offset);
        }
    }
}

/* ==== the lws callback ==== */

static int gw_callback(struct lws *wsi, enum lws_callback_reasons reason,
                       void *user, void *in, size_t len)
{
    gw_conn_t *c = user;
    gw_worker_t *w;

    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED: {
        const struct lws_protocols *pr = lws_get_protocol(wsi);
        /* delivered once per protocol: act on the first only */
        if (pr && pr->id != PROTO_JSON)
            return 0;
        w = lws_context_user(lws_get_context(wsi));
        if (w)
            worker_drain(w);
        return 0;
    }

    case LWS_CALLBACK_RAW_RX_FILE:
        w = wsi_worker(wsi);
        if (wsi == w->listen_wsi)
            accept_ready(w);
        else if (wsi == w->ep_wsi)
            reap_ready(w);
        else if (wsi == w->hg_wsi)
            gate_ready(w);
        return 0;

    case LWS_CALLBACK_RAW_CLOSE_FILE:
        w = wsi_worker(wsi);
        if (wsi == w->listen_wsi)
            w->listen_wsi = NULL;
        if (wsi == w->ep_wsi)
            w->ep_wsi = NULL;
        if (wsi == w->hg_wsi)
            w->hg_wsi = NULL;
        return 0;

    case LWS_CALLBACK_HTTP: {
        char path[256];
        size_t n = len < sizeof(path) - 1 ? len : sizeof(path) - 1;

        w = wsi_worker(wsi);
        memcpy(path, in ? in : "", in ? n : 0);
        path[in ? n : 0] = '\0';
        return http_route(w, c, wsi, path) ? -1 : 0;
    }

    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (c == NULL || c->kind != CK_SSE)
            return 0;
        if (c->closing)
            return -1;
        return conn_flush(c) ? -1 : 0;

    case LWS_CALLBACK_CLOSED_HTTP:
        if (c)
            conn_release(c);
        return 0;

    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: {
        /* lws drops an upgrade naming no protocol it serves without an
         * answer: say which ones are (400), and log it. */
        char proto[512], bad[160], msg[256];
        int n = lws_hdr_total_length(wsi, WSI_TOKEN_PROTOCOL);

        if (n <= 0)
            return 0;
        if ((size_t)n >= sizeof(proto) || lws_hdr_copy(wsi, proto, sizeof(proto), WSI_TOKEN_PROTOCOL) < 0) {
            http_reply_json_error(wsi, 400, "Sec-WebSocket-Protocol too long");
            return -1;
        }
        if (admit_ws_subprotocol(proto, strlen(proto), bad, sizeof(bad)) == 0)
            return 0;
        snprintf(msg, sizeof(msg), "unsupported WebSocket subprotocol %s (supported: %s)", bad,
                 ADMIT_WS_PROTOCOLS);
        log_info("websocket upgrade refused", "reason=\"unsupported subprotocol\" asked=\"%s\"", bad);
        http_reply_json_error(wsi, 400, msg);
        return -1;
    }

    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        char path[64];
        int n = lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI);

        if (n <= 0 || !is_ws_path(path))
            return 1;
        /* A refusal the client should retry is upgraded and closed at once
         * with 1012 / 1013 from ESTABLISHED (admit.h): a 503 to the upgrade
         * reads as a failure, not as "come back". */
        {
            gw_worker_t *fw = wsi_worker(wsi);
            admit_t a = admit_stream(atomic_load(&G->stopping), !not_started(), false);
            if (a == ADMIT_OK && ws_identify(fw, wsi) != 0)
                return 1;
            if (a == ADMIT_OK && over_capacity(fw, wsi))
                a = ADMIT_FULL;
            if (a != ADMIT_OK) {
                if (a == ADMIT_FULL)
                    metric_inc(G->m.conns_rejected);
                token_identity_free(fw->pending_id);
                fw->pending_id = NULL;
                fw->pending_wsi = NULL;
                fw->refuse_wsi = wsi;
                fw->refuse = (uint8_t)a;
            }
        }
        return 0;
    }

    case LWS_CALLBACK_ESTABLISHED:
        w = wsi_worker(wsi);
        if (w->refuse_wsi == wsi) {   /* refused in FILTER_PROTOCOL_CONNECTION */
            admit_t a = (admit_t)w->refuse;
            const char *msg = admit_message(a);
            w->refuse_wsi = NULL;
            if (c)
                memset(c, 0, sizeof(*c));
            log_debug("stream refused", "transport=ws reason=%s", admit_reason(a));
            lws_close_reason(wsi, (enum lws_close_status)admit_ws_close(a),
                             (unsigned char *)msg, strlen(msg));
            return -1;
        }
        return ws_established(w, c, wsi) ? -1 : 0;

    case LWS_CALLBACK_RECEIVE:
        if (c == NULL || c->kind != CK_WS || c->closing)
            return 0;
        if (ws_receive(c, wsi, in, len) != 0) {
            static const char bye[] = "too many bad messages";
            lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, (unsigned char *)bye, sizeof(bye) - 1);
            return -1;
        }
        return 0;

    case LWS_CALLBACK_RECEIVE_PONG:
        if (c && c->kind == CK_WS) {
            c->last_rx_ns = gw_now_ns();
            c->ping_out = 0;
        }
        return 0;

    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (c == NULL || c->kind != CK_WS)
            return 0;
        if (c->closing)
            return -1;
        if (c->w->stopping || c->going_away) {
            static const char bye[] = "server shutting down";
            lws_close_reason(wsi, LWS_CLOSE_STATUS_GOINGAWAY, (unsigned char *)bye, sizeof(bye) - 1);
            return -1;
        }
        if (c->errors >= G->cfg.ws_max_errors) {
            static const char bye[] = "too many bad messages";
            lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, (unsigned char *)bye, sizeof(bye) - 1);
            return -1;
        }
        if (c->close_code) {   /* unauthorized / token expired: error first, then close */
            static const char bye[] = "unauthorized";
            if (conn_flush(c))
                return -1;
            if (!outq_empty(&c->q) || lws_partial_buffered(wsi))
                return 0;
            lws_close_reason(wsi, (enum lws_close_status)c->close_code, (unsigned char *)bye, sizeof(bye) - 1);
            return -1;
        }
        return conn_flush(c) ? -1 : 0;

    case LWS_CALLBACK_CLOSED:
        if (c)
            conn_release(c);
        return 0;

    default:
        return 0;
    }
}

/* ==== workers ==== */

static int listen_socket(void)
{
    struct addrinfo hints, *res = NULL, *ai;
    char port[16];
    int s = -1, one = 1, rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%d", G->cfg.port);
    rc = getaddrinfo(G->cfg.host, port, &hints, &res);
    if (rc != 0) {
        log_error("bad listen address", "listen=%s err=\"%s\"", G->cfg.listen, gai_strerror(rc));
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
        log_error("cannot listen", "listen=%s err=\"%s\"", G->cfg.listen, strerror(errno));
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
    w->lim.max_events = (uint32_t)G->cfg.queue_max_events;
    w->lim.max_bytes = (size_t)G->cfg.queue_max_bytes;
    w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

    w->listen_fd = listen_socket();
    if (w->listen_fd < 0)
        return -1;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0)
        return -1;
    w->hg_epfd = epoll_create1(EPOLL_CLOEXEC);
    w->hg = calloc(w->nfd, sizeof(*w->hg));
    w->hg_buf = malloc((size_t)G->cfg.max_header_bytes);
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
    info.max_http_header_data = (unsigned short)(G->cfg.max_header_bytes * 2 > 65535
                                                 ? 65535 : G->cfg.max_header_bytes * 2);
    info.server_string = "flagcast-gateway";
    pthread_mutex_lock(&ctx_create_mu);
    w->ctx = lws_create_context(&info);
    pthread_mutex_unlock(&ctx_create_mu);
    if (w->ctx == NULL)
        return -1;

    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.protocols = gw_protocols;
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

    w->next_keepalive_ns = gw_now_ns() + (uint64_t)G->cfg.sse_keepalive * 1000000000ull;
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
    buf_free(&pos_buf);   /* thread-local: freed by the thread that used it */
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

int gw_lws_start(gw_t *g)
{
    long i;

    G = g;

    memcpy(keepalive_bytes + LWS_PRE, ":\n\n", keepalive_len);
    lws_set_log_level(LLL_ERR, lws_log_emit);
    nworkers = G->cfg.threads;
    workers = calloc((size_t)nworkers, sizeof(*workers));
    if (workers == NULL)
        return -1;
    for (i = 0; i < nworkers; i++) {
        gw_worker_t *w = &workers[i];
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
            log_error("cannot start a service thread", "listen=%s", G->cfg.listen);
            nworkers = i + 1;
            gw_lws_stop();
            return -1;
        }
        atomic_store(&nlive, i + 1);
    }
    log_info("gateway listening", "listen=%s threads=%ld", G->cfg.listen, nworkers);
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
