/*
 * outq — shared rendered events and per-connection bounded queues.
 *
 * Shared event: the Redis thread decodes a message once into an ev_t and
 * wraps it here; each output format is rendered at most once, into a buffer
 * that starts with `headroom` spare bytes for the WebSocket frame header
 * that lws writes in front of the payload. Rendering is lazy and guarded by
 * a per-event mutex with an acquire/release flag per format, so the fast
 * path (already rendered) takes no lock; outq_ev_prepare lets the producer
 * render eagerly so that consumers never take the lock at all. The
 * reference count is a C11 atomic: producers and consumers on different
 * threads take and drop references without locks; the last one frees.
 *
 * Queue: a ring of (event, length, control?) items, grown by doubling and
 * freed when it empties, so an idle connection holds no queue storage. The
 * limits follow Redis's client output-buffer limits: a connection that
 * cannot keep up is closed (OUTQ_OVERFLOW) rather than allowed to grow
 * memory or slow the others; but because flags are state, a flag event
 * first replaces the queued older events of the same flag (conflation),
 * which is enough for a client that is only briefly behind.
 */
#include "gateway/outq.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "gateway/query.h"
#include "proto/buf.h"
#include "proto/render.h"

struct outq_ev {
    atomic_uint     refs;
    bool            raw;
    ev_t            ev;
    const char     *key;                      /* conflation key, in ev */
    flag_t         *prev;                     /* the flag before the change, or NULL */
    size_t          headroom;
    pthread_mutex_t mu;
    atomic_int      state[OUTQ_FMT_COUNT];    /* 0 not yet, 1 ready, -1 failed */
    char           *buf[OUTQ_FMT_COUNT];      /* headroom + payload */
    size_t          len[OUTQ_FMT_COUNT];      /* payload bytes */
};

/* ==== shared events ====================================================== */

static outq_ev_t *ev_alloc(size_t headroom)
{
    outq_ev_t *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    atomic_init(&e->refs, 1);
    e->headroom = headroom;
    for (int i = 0; i < OUTQ_FMT_COUNT; i++)
        atomic_init(&e->state[i], 0);
    pthread_mutex_init(&e->mu, NULL);
    return e;
}

outq_ev_t *outq_ev_new(ev_t *ev, size_t headroom)
{
    outq_ev_t *e = ev_alloc(headroom);
    if (!e) {
        ev_free(ev);
        return NULL;
    }
    e->ev = *ev;
    ev_init(ev);
    if (e->ev.channel && strcmp(e->ev.channel, "flags") == 0 && e->ev.flag && e->ev.flag->key)
        e->key = e->ev.flag->key;
    return e;
}

outq_ev_t *outq_ev_adopt_raw(char *p, size_t len, size_t headroom)
{
    if (!p || len < headroom) {
        free(p);
        return NULL;
    }
    outq_ev_t *e = ev_alloc(headroom);
    if (!e) {
        free(p);
        return NULL;
    }
    e->raw = true;
    for (int i = 0; i < OUTQ_FMT_COUNT; i++) {
        e->buf[i] = p;
        e->len[i] = len - headroom;
        atomic_store_explicit(&e->state[i], 1, memory_order_relaxed);
    }
    return e;
}

outq_ev_t *outq_ev_new_raw(const void *p, size_t n, size_t headroom)
{
    char *b = malloc(headroom + n + 1);
    if (!b)
        return NULL;
    memset(b, 0, headroom);
    if (n)
        memcpy(b + headroom, p, n);
    b[headroom + n] = '\0';
    return outq_ev_adopt_raw(b, headroom + n, headroom);
}

outq_ev_t *outq_ev_ref(outq_ev_t *e)
{
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
    return e;
}

void outq_ev_unref(outq_ev_t *e)
{
    if (!e || atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (e->raw) {
        free(e->buf[0]);
    } else {
        for (int i = 0; i < OUTQ_FMT_COUNT; i++)
            free(e->buf[i]);
        ev_free(&e->ev);
    }
    if (e->prev) {
        flag_free(e->prev);
        free(e->prev);
    }
    pthread_mutex_destroy(&e->mu);
    free(e);
}

unsigned outq_ev_refs(const outq_ev_t *e)
{
    return atomic_load_explicit(&((outq_ev_t *)e)->refs, memory_order_relaxed);
}

void outq_ev_set_prev(outq_ev_t *e, flag_t *prev)
{
    if (e->prev) {
        flag_free(e->prev);
        free(e->prev);
    }
    e->prev = prev;
}

const flag_t *outq_ev_prev(const outq_ev_t *e)
{
    return e->prev;
}

const ev_t *outq_ev_event(const outq_ev_t *e)
{
    return e->raw ? NULL : &e->ev;
}

const char *outq_ev_key(const outq_ev_t *e)
{
    return e->key;
}

/* Renders format fmt; called under e->mu. @return 0 or -1. */
static int render(outq_ev_t *e, outq_fmt_t fmt)
{
    buf_t b;
    int r;
    buf_init(&b);
    if (buf_reserve(&b, e->headroom + 512) != 0)
        goto fail;
    memset(b.data, 0, e->headroom);
    b.len = e->headroom;
    switch (fmt) {
    case OUTQ_FMT_SSE: {
        char id[QUERY_MAX_CURSOR + 1];
        const char *idp = NULL;
        if (e->ev.channel && e->ev.epoch &&
            query_format_cursor(id, sizeof id, e->ev.channel, e->ev.epoch, e->ev.offset) > 0)
            idp = id;
        r = render_event_sse(&e->ev, idp, &b);
        break;
    }
    case OUTQ_FMT_JSON:
        r = render_event_json(&e->ev, &b);
        break;
    case OUTQ_FMT_MSGPACK:
        r = render_event_msgpack(&e->ev, &b);
        break;
    default:
        r = -1;
    }
    if (r != 0 || b.err)
        goto fail;
    e->len[fmt] = b.len - e->headroom;
    e->buf[fmt] = buf_steal(&b, NULL);
    return e->buf[fmt] ? 0 : -1;
fail:
    buf_free(&b);
    return -1;
}

const char *outq_ev_data(outq_ev_t *e, outq_fmt_t fmt, size_t *len)
{
    if ((unsigned)fmt >= OUTQ_FMT_COUNT)
        return NULL;
    int st = atomic_load_explicit(&e->state[fmt], memory_order_acquire);
    if (st == 0) {
        pthread_mutex_lock(&e->mu);
        st = atomic_load_explicit(&e->state[fmt], memory_order_relaxed);
        if (st == 0) {
            st = render(e, fmt) == 0 ? 1 : -1;
            atomic_store_explicit(&e->state[fmt], st, memory_order_release);
        }
        pthread_mutex_unlock(&e->mu);
    }
    if (st != 1)
        return NULL;
    if (len)
        *len = e->len[fmt];
    return e->buf[fmt] + e->headroom;
}

int outq_ev_prepare(outq_ev_t *e, unsigned fmt_mask)
{
    int rc = 0;
    for (int i = 0; i < OUTQ_FMT_COUNT; i++)
        if ((fmt_mask & (1u << i)) && !outq_ev_data(e, (outq_fmt_t)i, NULL))
            rc = -1;
    return rc;
}

/* ==== queue ============================================================== */

void outq_init(outq_t *q, outq_fmt_t fmt)
{
    memset(q, 0, sizeof *q);
    q->fmt = fmt;
}

void outq_clear(outq_t *q)
{
    for (uint32_t i = 0; i < q->count; i++)
        outq_ev_unref(q->ring[(q->head + i) % q->cap].ev);
    free(q->ring);
    outq_init(q, q->fmt);
}

static outq_item_t *item_at(const outq_t *q, uint32_t i)
{
    return &q->ring[(q->head + i) % q->cap];
}

/* Makes room for one more item. @return 0 or -1. */
static int ensure_room(outq_t *q)
{
    if (q->count < q->cap)
        return 0;
    uint32_t ncap = q->cap ? q->cap * 2 : 4;
    if (ncap < q->cap)
        return -1;
    outq_item_t *nr = malloc((size_t)ncap * sizeof *nr);
    if (!nr)
        return -1;
    for (uint32_t i = 0; i < q->count; i++)
        nr[i] = *item_at(q, i);
    free(q->ring);
    q->ring = nr;
    q->cap = ncap;
    q->head = 0;
    return 0;
}

static void append(outq_t *q, outq_ev_t *e, size_t len, bool ctl)
{
    outq_item_t *it = &q->ring[(q->head + q->count) % q->cap];
    it->ev = outq_ev_ref(e);
    it->len = (uint32_t)len;
    it->ctl = ctl;
    q->count++;
    q->bytes += len;
    if (!ctl) {
        q->ev_count++;
        q->ev_bytes += len;
    }
}

/* True if item i may be conflated away by an event with key. */
static bool conflatable(const outq_t *q, uint32_t i, const char *key)
{
    const outq_item_t *it = item_at(q, i);
    if (it->ctl || (i == 0 && q->off > 0))
        return false;
    const char *k = it->ev->key;
    return k && (k == key || strcmp(k, key) == 0);
}

outq_res_t outq_push(outq_t *q, outq_ev_t *e, const outq_limits_t *lim, size_t *nremoved)
{
    size_t max_ev = lim && lim->max_events ? lim->max_events : OUTQ_MAX_EVENTS;
    size_t max_b = lim && lim->max_bytes ? lim->max_bytes : OUTQ_MAX_BYTES;
    size_t len, rc = 0, rb = 0;
    if (nremoved)
        *nremoved = 0;
    if (!outq_ev_data(e, q->fmt, &len) || len > UINT32_MAX)
        return OUTQ_ERROR;

    /* A queue with no event always takes one, however large: the limits
     * bound a backlog, not one event. */
    bool over = q->ev_count > 0 && (q->ev_count + 1 > max_ev || q->ev_bytes + len > max_b);
    if (over) {
        const char *key = e->key;
        if (!key)
            return OUTQ_OVERFLOW;
        for (uint32_t i = 0; i < q->count; i++) {
            if (conflatable(q, i, key)) {
                rc++;
                rb += item_at(q, i)->len;
            }
        }
        size_t left = q->ev_count - rc;
        if (rc == 0 || (left > 0 && (left + 1 > max_ev || q->ev_bytes - rb + len > max_b)))
            return OUTQ_OVERFLOW;
        /* Remove in place, keeping the order of the rest. */
        uint32_t w = 0;
        for (uint32_t r = 0; r < q->count; r++) {
            outq_item_t it = *item_at(q, r);
            if (conflatable(q, r, key)) {
                q->bytes -= it.len;
                q->ev_count--;
                q->ev_bytes -= it.len;
                outq_ev_unref(it.ev);
            } else {
                *item_at(q, w++) = it;
            }
        }
        q->count = w;
        if (nremoved)
            *nremoved = rc;
    } else if (ensure_room(q) != 0) {
        return OUTQ_ERROR;
    }
    append(q, e, len, false);
    return over ? OUTQ_CONFLATED : OUTQ_OK;
}

outq_res_t outq_push_ctl(outq_t *q, outq_ev_t *e)
{
    size_t len;
    if (!outq_ev_data(e, q->fmt, &len) || len > UINT32_MAX)
        return OUTQ_ERROR;
    if (ensure_room(q) != 0)
        return OUTQ_ERROR;
    append(q, e, len, true);
    return OUTQ_OK;
}

outq_ev_t *outq_peek(const outq_t *q, const char **p, size_t *n)
{
    if (q->count == 0)
        return NULL;
    const outq_item_t *it = item_at(q, 0);
    const char *d = outq_ev_data(it->ev, q->fmt, NULL);
    if (p)
        *p = d + q->off;
    if (n)
        *n = it->len - q->off;
    return it->ev;
}

size_t outq_head_offset(const outq_t *q)
{
    return q->off;
}

void outq_pop(outq_t *q)
{
    if (q->count == 0)
        return;
    outq_item_t *it = item_at(q, 0);
    q->bytes -= it->len - q->off;
    if (!it->ctl) {
        q->ev_count--;
        q->ev_bytes -= it->len;
    }
    outq_ev_unref(it->ev);
    q->off = 0;
    q->head = (q->head + 1) % q->cap;
    if (--q->count == 0) {
        free(q->ring);
        q->ring = NULL;
        q->cap = 0;
        q->head = 0;
    }
}

void outq_consume(outq_t *q, size_t n)
{
    if (q->count == 0)
        return;
    const outq_item_t *it = item_at(q, 0);
    size_t left = it->len - q->off;
    if (n >= left) {
        outq_pop(q);
        return;
    }
    q->off += n;
    q->bytes -= n;
}
