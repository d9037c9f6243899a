/*
 * conn — a service thread's state (gw_worker_t), its connections
 * (gw_conn_t), the table of operations each transport provides
 * (gw_transport_t, like Nchan's subscriber function tables), and the
 * connection basics every transport shares (conn.c): lifecycle, admission,
 * the write path and the fan-out of one event.
 *
 * Fan-out. The Redis thread appends a reference to each rendered event to
 * every worker's inbox (worker.c); the worker looks up the receivers in its
 * index and writes to each one directly from there (DESIGN.md measured this
 * faster than a writable callback per connection). A connection that lws
 * reports as behind (lws_partial_buffered) gets the event on its bounded
 * queue and is flushed from its writable callback; a queue over its limit
 * conflates flag events or closes the connection (outq.h).
 */
#ifndef FLAGCAST_GATEWAY_LWS_CONN_H
#define FLAGCAST_GATEWAY_LWS_CONN_H

#include <libwebsockets.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>

#include "common/token.h"
#include "gateway/access.h"
#include "gateway/admit.h"
#include "gateway/drain.h"
#include "gateway/gw.h"
#include "gateway/listcur.h"
#include "gateway/outq.h"
#include "gateway/resume.h"
#include "gateway/subidx.h"
#include "gateway/wsmsg.h"

#define GW_CTL_QUEUE_MAX  64          /* queued items above which pings get no pong */
#define GW_QUERY_MAX      8192

/* lws protocol ids (callback.c's table) */
enum { PROTO_JSON = 0, PROTO_MSGPACK = 1, PROTO_RAW = 2 };
/* what a connection is: an index into the transport table */
enum { CK_NONE = 0, CK_HTTP, CK_SSE, CK_WS, CK_COUNT };

struct gw_worker;
struct gw_conn;

/* A transport's operations (sse.c, ws.c). */
typedef struct gw_transport {
    const char *name;                         /* "sse", "ws": logs */
    /* The worker's list of such connections, and their gauge. */
    struct gw_conn **(*list)(struct gw_worker *w);
    metric_t *(*gauge)(const gw_t *g);
    /* lws says c may write: flush what is queued. @return 0, or -1 to close. */
    int  (*writable)(struct gw_conn *c);
    /* The bytes to write for event e instead of its shared frame p/n (the
     * SSE list cursor); NULL: the shared bytes always. */
    void (*frame)(struct gw_conn *c, outq_ev_t *e, const char **p, size_t *n);
    /* The acknowledgement of answer r is about to be queued: adjust it (WS
     * positions); may be NULL. */
    void (*ack)(struct gw_conn *c, gw_resume_t *r);
    /* Once a second, over the worker's list: keep-alives, pings, deadlines. */
    void (*tick)(struct gw_worker *w, uint64_t now);
    /* Tells c to reconnect elsewhere (the paced drain). */
    void (*drain)(struct gw_worker *w, struct gw_conn *c);
    /* The worker stops: every connection of the list is told and closed. */
    void (*stop)(struct gw_worker *w);
} gw_transport_t;

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
    uint8_t           kind;          /* CK_*: its transport (conn_transport) */
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
    listcur_t        *pos;           /* SSE over several channels: the position of
                                      * each, for the per-connection list cursor */
    uint8_t           going_away;    /* WS: drained, close 1001 when writable */
    uint8_t           auth_wait;     /* WS, auth required: no token yet, served nothing */
    uint16_t          close_code;    /* WS: close with this once the error is written */
    uint32_t          errors;        /* bad WS messages so far (FLAGCAST_WS_MAX_ERRORS
                                      * goes up to 1000000: no uint8_t wrap) */
    uint64_t          auth_deadline_ns; /* auth_wait: auth by then; close_code: killed by then */
    token_identity_t *id;            /* who the client is (owned), NULL: anonymous */
    struct gw_evreq  *ereq;          /* plain HTTP: an evaluation request whose body
                                      * is being read (lws/eval.c), NULL: none */
} gw_conn_t;

typedef struct gw_item {
    struct gw_item *next;
    outq_ev_t      *ev;              /* an event to fan out, or */
    gw_resume_t    *res;             /* a history replay for one connection, */
    uint64_t        t_ns;            /* (neither: a stop request) */
} gw_item_t;

/* A service thread: its lws context, sockets, index and connections. */
typedef struct gw_worker {
    gw_t                *g;          /* the process context */
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

static inline gw_worker_t *wsi_worker(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

/* The transports, by CK_* (filled once by gw_lws_start, read-only after). */
extern const gw_transport_t *conn_transports[CK_COUNT];

static inline const gw_transport_t *conn_transport(const gw_conn_t *c)
{
    return c->kind < CK_COUNT ? conn_transports[c->kind] : NULL;
}

/* The WS message format of c's subprotocol. */
static inline wsmsg_fmt_t conn_wsmsg_fmt(const gw_conn_t *c)
{
    return c->fmt == OUTQ_FMT_MSGPACK ? WSMSG_FMT_MSGPACK : WSMSG_FMT_JSON;
}

/* "sse", "ws" or "http", for logs. */
const char *conn_kind_name(const gw_conn_t *c);
/* The peer's address as host:port, for logs. */
void conn_peer(const gw_conn_t *c, char *out, size_t len);

/* ==== admission: every refusal of a new stream is decided here ==== */

/* Whether a new stream may start now: not while the drain window is open,
 * not before the flags were loaded once, and (cap) not over the connection
 * cap or beyond the worker's fd table. */
admit_t conn_admit(const gw_worker_t *w, struct lws *wsi, bool cap);
/* Reserves a cap slot (conn_register hands it to the connection; give it
 * back with conn_unreserve if the stream does not start). @return false if
 * full. */
bool conn_reserve(gw_worker_t *w);
void conn_unreserve(gw_worker_t *w);

/* ==== lifecycle ==== */

/* Makes c (its slot reserved) a streaming connection of transport kind. */
void conn_register(gw_worker_t *w, gw_conn_t *c, struct lws *wsi, int kind);
/* Undoes everything a stream connection holds; safe to call twice. */
void conn_release(gw_conn_t *c);
/* Closes c from outside its own callback, at the next service turn. */
void conn_kill(gw_conn_t *c, const char *reason);
/* Gives c the identity id (takes it): its inboxes are subscribed and what
 * it may no longer read (after a second `auth`) is dropped.
 * @return 0, or -1 with *err (id freed, c unchanged). */
int  conn_set_identity(gw_conn_t *c, token_identity_t *id, const char **err);
/* Checks the channels of f for id; on refusal writes a message naming the
 * channel into ebuf. @return 0, or -1 with *e. */
int  conn_check_channels(const token_identity_t *id, const filter_t *f, access_error_t *e,
                         char *ebuf, size_t elen);

/* ==== writing ==== */

/* Writes what c has queued while lws has nothing of it pending.
 * @return 0, or -1 if the connection failed (it is being closed). */
int  conn_flush(gw_conn_t *c);
/* A control item from b (a buf_t that starts with LWS_PRE bytes of room;
 * takes its storage, also on failure). @return it with one reference, or
 * NULL. */
outq_ev_t *conn_ctl_item(buf_t *b);
/* Queues a control message (a buf_t that starts with LWS_PRE bytes of room)
 * for c and writes it if nothing is ahead of it. Takes b's storage. */
int  conn_send_ctl(gw_conn_t *c, buf_t *b);
/* A buf_t holding LWS_PRE bytes of room, for conn_ctl_item. */
void conn_ctl_buf(buf_t *b);

/* ==== fan-out ==== */

/* Writes (or queues) event e to every local connection it selects. */
void conn_fanout(gw_worker_t *w, outq_ev_t *e, uint64_t t_ns);

#endif
