/*
 * conn — a connection's lifecycle, admission, write path and the fan-out
 * of one event (conn.h).
 */
#include "gateway/lws/conn.h"
#include "gateway/clock.h"
#include "gateway/ident.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

const gw_transport_t *conn_transports[CK_COUNT];

const char *conn_kind_name(const gw_conn_t *c)
{
    const gw_transport_t *t = conn_transport(c);
    return t ? t->name : "http";
}

void conn_peer(const gw_conn_t *c, char *out, size_t len)
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

/* The lws write protocol of c's bytes: WS binary (msgpack) or text, or
 * HTTP body bytes (SSE). */
static enum lws_write_protocol conn_write_proto(const gw_conn_t *c)
{
    if (c->kind != CK_WS)
        return LWS_WRITE_HTTP;
    return c->fmt == OUTQ_FMT_MSGPACK ? LWS_WRITE_BINARY : LWS_WRITE_TEXT;
}

/* ==== admission ==== */

admit_t conn_admit(const gw_worker_t *w, struct lws *wsi, bool cap)
{
    int fd = cap ? lws_get_socket_fd(wsi) : -1;
    /* Over the connection cap, or a socket beyond the worker's fd table
     * (its close could not be noticed by the reaper, nor its resume
     * answered): both are refused as full. The second can only happen with
     * an explicit FLAGCAST_MAX_CONNECTIONS above an unlimited open-file
     * limit. Before the flags were loaded once, a snapshot would claim
     * there are none: streams wait for that. Later outages keep serving the
     * last state. */
    bool full = cap && (atomic_load(&w->g->conns) >= w->g->cfg.max_conns ||
                        (fd >= 0 && (size_t)fd >= w->nfd));

    return admit_stream(atomic_load(&w->g->stopping), atomic_load(&w->g->mirror_ever), full);
}

bool conn_reserve(gw_worker_t *w)
{
    return admit_reserve(&w->g->conns, w->g->cfg.max_conns);
}

void conn_unreserve(gw_worker_t *w)
{
    admit_release(&w->g->conns);
}

/* ==== lifecycle ==== */

void conn_register(gw_worker_t *w, gw_conn_t *c, struct lws *wsi, int kind)
{
    c->w = w;
    c->wsi = wsi;
    c->kind = (uint8_t)kind;
    c->fd = lws_get_socket_fd(wsi);
    c->serial = ++w->serial;
    list_add(conn_transport(c)->list(w), c);
    metric_inc(conn_transport(c)->gauge(w->g));
    if (c->fd >= 0 && (size_t)c->fd < w->nfd)
        w->by_fd[c->fd] = c;
}

/* Undoes everything a stream connection holds; safe to call twice. */
void conn_release(gw_conn_t *c)
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
    list_del(conn_transport(c)->list(w), c);
    metric_add(conn_transport(c)->gauge(w->g), -1);
    conn_unreserve(w);   /* the slot admission reserved */
    c->kind = CK_NONE;
}

/* Closes c from outside its own callback, at the next service turn. */
void conn_kill(gw_conn_t *c, const char *reason)
{
    if (c->closing)
        return;
    c->closing = 1;
    log_debug("closing connection", "conn=%u transport=%s reason=\"%s\"",
              c->serial, conn_kind_name(c), reason);
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* Gives c the identity id (takes it): its inboxes are subscribed and what
 * it may no longer read (after a second `auth`) is dropped.
 * @return 0, or -1 with *err (id freed, c unchanged). */
int conn_set_identity(gw_conn_t *c, token_identity_t *id, const char **err)
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
int conn_check_channels(const token_identity_t *id, const filter_t *f, access_error_t *e,
                          char *ebuf, size_t elen)
{
    const char *bad = NULL;

    if (gw_ident_check_filter(id, f, e, &bad) == 0)
        return 0;
    snprintf(ebuf, elen, "channels: %s: %s", bad, e->message);
    return -1;
}

/* ==== writing ==== */

/* Writes what c has queued while lws has nothing of it pending.
 * @return 0, or -1 if the connection failed (it is being closed). */
int conn_flush(gw_conn_t *c)
{
    enum lws_write_protocol wp = conn_write_proto(c);
    const gw_transport_t *t = conn_transport(c);

    if (c->resuming)
        return 0;   /* the replay goes first; worker_resume flushes */
    while (!outq_empty(&c->q) && !lws_partial_buffered(c->wsi)) {
        const char *p;
        size_t n;

        outq_peek(&c->q, &p, &n);
        {
            /* lws buffers the rest of a short write itself (then it reports
             * partial_buffered), so an item is always written whole */
            const char *wp_p = p;
            size_t wp_n = n;
            if (c->pos && t->frame)
                t->frame(c, outq_peek(&c->q, NULL, NULL), &wp_p, &wp_n);
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

void conn_ctl_buf(buf_t *b)
{
    static const char room[LWS_PRE];
    buf_init(b);
    buf_append(b, room, LWS_PRE);
}

/* A control item from b (a buf_t that starts with LWS_PRE bytes of room;
 * takes its storage, also on failure). @return it with one reference, or
 * NULL (b failed, out of memory). */
outq_ev_t *conn_ctl_item(buf_t *b)
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
int conn_send_ctl(gw_conn_t *c, buf_t *b)
{
    outq_ev_t *e;

    if (b->err) {
        buf_free(b);
        return -1;
    }
    /* Replies are outside the queue limits (a snapshot may be larger), so
     * bound them here: a client that keeps asking without reading is cut. */
    if (outq_count(&c->q) > GW_CTL_QUEUE_MAX ||
        outq_bytes(&c->q) > 2 * (size_t)c->w->g->cfg.queue_max_bytes) {
        buf_free(b);
        metric_inc(c->w->g->m.slow_disconnects);
        log_warn("slow consumer disconnected",
                 "conn=%u transport=%s reason=\"replies not read\" queued=%zu queued_bytes=%zu",
                 c->serial, conn_kind_name(c), outq_count(&c->q), outq_bytes(&c->q));
        conn_kill(c, "replies not read");
        return -1;
    }
    if ((e = conn_ctl_item(b)) == NULL)
        return -1;
    if (outq_push_ctl(&c->q, e) != OUTQ_OK) {
        outq_ev_unref(e);
        return -1;
    }
    outq_ev_unref(e);
    return conn_flush(c);
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
        enum lws_write_protocol wp = conn_write_proto(c);

        if (!f->looked[fmt]) {
            f->data[fmt] = outq_ev_data(f->ev, (outq_fmt_t)fmt, &f->len[fmt]);
            f->looked[fmt] = true;
        }
        if (f->data[fmt] == NULL) {
            f->dropped++;
            return;
        }
        f->delivered++;
        if (c->pos) {   /* a list cursor (SSE): the transport's own frame */
            const char *pp = f->data[fmt];
            size_t pn = f->len[fmt];
            const gw_transport_t *t = conn_transport(c);
            if (t->frame)
                t->frame(c, f->ev, &pp, &pn);
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
        metric_inc(f->w->g->m.slow_disconnects);
        conn_kill(c, "slow consumer");
        break;
    }
    case OUTQ_ERROR:
        f->dropped++;
        break;
    }
}

void conn_fanout(gw_worker_t *w, outq_ev_t *e, uint64_t t_ns)
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
        metric_observe(w->g->m.fanout_seconds, (double)(gw_now_ns() - t_ns) / 1e9);
    if (f.delivered)
        metric_add(w->g->m.deliveries, f.delivered);
    if (f.conflated)
        metric_add(w->g->m.conflations, f.conflated);
    if (f.dropped)
        metric_add(w->g->m.drops, f.dropped);
}
