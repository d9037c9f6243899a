/*
 * flags — flag reads and mutations (docs/API.md, "Flags").
 *
 * Reads are one hiredis command. A mutation is one publish.lua call,
 * preceded by HGET (to merge a partial update onto the current record and
 * learn its version) and, for creates, HEXISTS and INCR of the id
 * sequence. Without If-Match an update that loses a race (412 from the
 * script) is recomputed from a fresh read, up to PUB_UPDATE_RETRIES times;
 * with If-Match the client's version is the one the script checks.
 *
 * Variant and segment ids (issue 12) are given here, before the script
 * call: a part keeps its id across an update when the client sends that id
 * back, and a variant also when its key stays the same; every other part
 * gets a fresh id from INCRBY P:part-seq (one counter for all flags, like
 * Flagent's table ids), so an id is never reused, in a flag or elsewhere.
 */
#include "publisher/flags.h"
#include "common/jsonin.h"
#include "common/log.h"
#include "proto/json.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ==== reads ==== */

static int cmp_flag_id(const void *a, const void *b)
{
    const flag_t *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static void on_list(redisAsyncContext *ac, void *r, void *priv)
{
    req_t *q = priv;
    redisReply *reply = r;
    flag_t *flags;
    size_t n = 0;
    buf_t b;

    if (req_redis_failed(q, reply))
        return;
    if (reply->type != REDIS_REPLY_ARRAY)
        return req_error(q, 500, NULL, "unexpected reply from Redis");
    flags = calloc(reply->elements / 2 + 1, sizeof(*flags));
    if (flags == NULL)
        return req_error(q, 500, NULL, "out of memory");
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        char err[256];
        redisReply *v = reply->element[i + 1];
        if (v->type != REDIS_REPLY_STRING ||
            flag_decode(v->str, v->len, &flags[n], err, sizeof(err)) < 0) {
            log_error("stored flag record unreadable", "error=\"%s\"", err);
            continue;
        }
        n++;
    }
    qsort(flags, n, sizeof(*flags), cmp_flag_id);
    buf_init(&b);
    buf_puts(&b, "{\"flags\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_putc(&b, ',');
        flag_to_json(&flags[i], &b);
        flag_free(&flags[i]);
    }
    buf_printf(&b, "],\"count\":%zu}", n);
    free(flags);
    req_reply(q, 200, &b);
    buf_free(&b);
}

/* Decodes the HGET P:flags reply for the request's flag key into f.
 * @return 0, or -1 when q was answered (503 Redis unavailable, 404 no such
 * flag, 500 unreadable record); f is then left zeroed. */
static int stored_flag(req_t *q, const redisReply *reply, flag_t *f)
{
    char err[256];

    flag_init(f);
    if (req_redis_failed(q, reply))
        return -1;
    if (reply->type == REDIS_REPLY_NIL) {
        req_error(q, 404, "not_found", "flag \"%s\" does not exist", q->rt.arg);
        return -1;
    }
    if (reply->type != REDIS_REPLY_STRING ||
        flag_decode(reply->str, reply->len, f, err, sizeof(err)) < 0) {
        req_error(q, 500, NULL, "stored flag record is unreadable");
        return -1;
    }
    return 0;
}

static void on_get(redisAsyncContext *ac, void *r, void *priv)
{
    req_t *q = priv;
    flag_t f;
    buf_t b;

    if (stored_flag(q, r, &f) != 0)
        return;
    buf_init(&b);
    buf_puts(&b, "{\"flag\":");
    flag_to_json(&f, &b);
    buf_printf(&b, ",\"version\":%llu}", (unsigned long long)f.version);
    {
        char etag[32];
        snprintf(etag, sizeof(etag), "\"%llu\"", (unsigned long long)f.version);
        evhttp_add_header(evhttp_request_get_output_headers(q->r), "ETag", etag);
    }
    flag_free(&f);
    req_reply(q, 200, &b);
    buf_free(&b);
}

/* ==== variant and segment ids ==== */

/* Finds the part of parts[n] (each stride bytes, its id at off) whose id
 * is id and which is not yet in *taken (bit j: part j), and marks it.
 * @return its index, or -1 (none, or id 0). */
static int id_claim(uint64_t id, const void *parts, size_t n, size_t stride, size_t off,
                    uint64_t *taken)
{
    for (size_t j = 0; id && j < n && j < 64; j++) {
        uint64_t pid;
        memcpy(&pid, (const char *)parts + j * stride + off, sizeof(pid));
        if (pid == id && !(*taken & (1ull << j))) {
            *taken |= 1ull << j;
            return (int)j;
        }
    }
    return -1;
}

/* Keeps the ids of next's variants and segments that prev (the stored
 * record; NULL on create) gave them, and zeroes the others:
 *   1. an id the client sent that names one of prev's parts of that kind,
 *      not taken by an earlier part, is kept (a renamed variant too);
 *   2. a variant left without one takes the id of prev's variant with the
 *      same key, if that id is not taken.
 * An id prev does not have is not taken from the client: the part is new.
 * @return how many parts are left with id 0 (ids_fill gives them theirs). */
static size_t ids_keep(flag_t *next, const flag_t *prev)
{
    uint64_t vtaken = 0, staken = 0; /* bit j: prev's part j is taken */
    size_t fresh = 0;

    for (size_t i = 0; i < next->nvariants; i++) {
        flag_variant_t *v = &next->variants[i];
        if (!prev || id_claim(v->id, prev->variants, prev->nvariants, sizeof(*v),
                              offsetof(flag_variant_t, id), &vtaken) < 0)
            v->id = 0;
    }
    for (size_t i = 0; i < next->nvariants; i++) {
        flag_variant_t *v = &next->variants[i];
        for (size_t j = 0; prev && !v->id && j < prev->nvariants && j < 64; j++) {
            const flag_variant_t *p = &prev->variants[j];
            if (p->id && !(vtaken & (1ull << j)) && strcmp(p->key, v->key) == 0) {
                v->id = p->id;
                vtaken |= 1ull << j;
            }
        }
        fresh += v->id == 0;
    }
    for (size_t i = 0; i < next->nsegments; i++) {
        flag_segment_t *s = &next->segments[i];
        if (!prev || id_claim(s->id, prev->segments, prev->nsegments, sizeof(*s),
                              offsetof(flag_segment_t, id), &staken) < 0)
            s->id = 0;
        fresh += s->id == 0;
    }
    return fresh;
}

/* Gives the parts ids_keep left at 0 the ids first, first+1, ...
 * (variants, then segments, in order). */
static void ids_fill(flag_t *next, uint64_t first)
{
    for (size_t i = 0; i < next->nvariants; i++)
        if (next->variants[i].id == 0)
            next->variants[i].id = first++;
    for (size_t i = 0; i < next->nsegments; i++)
        if (next->segments[i].id == 0)
            next->segments[i].id = first++;
}

/* ==== flag mutations ==== */

static void flag_step_read(req_t *q);
static void flag_step_publish(req_t *q, const char *mode, uint64_t expected);

/* The script's mode and expected version for q (not a delete). */
static void flag_step_publish_change(req_t *q)
{
    if (q->type == EV_FLAG_CREATED)
        flag_step_publish(q, "create", 0);
    else
        flag_step_publish(q, "update", q->next.version - 1);
}

static void on_part_ids(redisAsyncContext *ac, void *r, void *priv)
{
    req_t *q = priv;
    redisReply *reply = r;
    if (req_redis_failed(q, reply))
        return;
    if (reply->type != REDIS_REPLY_INTEGER || reply->integer <= 0 ||
        (unsigned long long)reply->integer < q->fresh_ids)
        return req_error(q, 500, NULL, "cannot allocate variant and segment ids");
    ids_fill(&q->next, (uint64_t)reply->integer - q->fresh_ids + 1);
    flag_step_publish_change(q);
}

/* Gives q->next's parts their ids (prev: the stored record, NULL on
 * create), allocating fresh ones if need be, then publishes. */
static void flag_step_ids(req_t *q, const flag_t *prev)
{
    const char *err;
    q->fresh_ids = ids_keep(&q->next, prev);
    if (q->fresh_ids == 0)
        return flag_step_publish_change(q);
    /* refuse an invalid record before spending ids on it */
    if (flag_validate(&q->next, &err) < 0)
        return req_error(q, 400, "invalid_flag", "%s", err);
    if (rconn_command(q->p->rc, on_part_ids, q, "INCRBY %s %llu", q->p->k_part_seq,
                      (unsigned long long)q->fresh_ids) < 0)
        req_unavailable(q);
}

static void on_flag_script(pub_t *p, redisReply *reply, void *arg)
{
    req_t *q = arg;
    store_reply_t sr;
    buf_t b;
    long long st;

    if (req_redis_failed(q, reply))
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        log_error("publish script failed", "error=\"%s\"", reply->str);
        return req_error(q, 500, NULL, "the publish script failed");
    }
    if (store_reply_parse(reply, &sr) < 0)
        return req_error(q, 500, NULL, "unexpected reply from the publish script");
    st = sr.status;
    if (st == 409)
        return req_error(q, 409, "conflict", "flag \"%s\" already exists", q->next.key);
    if (st == 404)
        return req_error(q, 404, "not_found", "flag \"%s\" does not exist", q->rt.arg);
    if (st == 412) {
        long long cur = sr.current;
        metric_inc(p->m.conflicts);
        if (!q->has_if_match && ++q->attempts < PUB_UPDATE_RETRIES) {
            flag_step_read(q);
            return;
        }
        char extra[64];
        snprintf(extra, sizeof(extra), ",\"currentVersion\":%lld", cur);
        buf_t eb;
        buf_init(&eb);
        buf_printf(&eb, "{\"error\":{\"code\":\"precondition_failed\",\"message\":");
        char msg[256];
        snprintf(msg, sizeof(msg), "flag \"%.128s\" is at version %lld, not %llu", q->rt.arg, cur,
                 (unsigned long long)(q->has_if_match ? q->if_match : q->next.version - 1));
        json_cstr(&eb, msg);
        buf_printf(&eb, "%s}}", extra);
        req_reply(q, 412, &eb);
        buf_free(&eb);
        return;
    }
    size_t npub = q->nch ? q->nch : 1;
    if (st != 200 || sr.npub != npub)
        return req_error(q, 500, NULL, "unexpected status from the publish script");
    metric_add(p->m.publications, (int64_t)npub);
    log_info(q->type == EV_FLAG_CREATED ? "flag created" : q->type == EV_FLAG_DELETED
                                                             ? "flag deleted" : "flag changed",
             "key=%s version=%llu event=%s actor=%s offset=%lld to=%zu", q->next.key,
             (unsigned long long)q->next.version, ev_type_name(q->type), q->who.name,
             sr.pub[2]->integer, q->nch);
    buf_init(&b);
    buf_puts(&b, "{\"flag\":");
    flag_to_json(&q->next, &b);
    buf_printf(&b, ",\"version\":%llu,\"event\":\"%s\",",
               (unsigned long long)q->next.version, ev_type_name(q->type));
    if (q->nch == 0) {
        buf_puts(&b, "\"publication\":");
        req_put_publication(&b, &sr, 0);
    } else {
        buf_puts(&b, "\"publications\":[");
        for (size_t i = 0; i < q->nch; i++) {
            if (i)
                buf_putc(&b, ',');
            req_put_publication(&b, &sr, i);
        }
        buf_putc(&b, ']');
    }
    buf_putc(&b, '}');
    {
        char etag[32];
        snprintf(etag, sizeof(etag), "\"%llu\"", (unsigned long long)q->next.version);
        if (q->type != EV_FLAG_DELETED)
            evhttp_add_header(evhttp_request_get_output_headers(q->r), "ETag", etag);
    }
    req_reply(q, q->type == EV_FLAG_CREATED ? 201 : 200, &b);
    buf_free(&b);
}

/* Encodes record and event body and calls the script. */
static void flag_step_publish(req_t *q, const char *mode, uint64_t expected)
{
    pub_t *p = q->p;
    buf_t rec, body;
    ev_t ev;
    const char *err;
    store_pub_t *pubs;
    int rc = -1;

    if (flag_validate(&q->next, &err) < 0)
        return req_error(q, 400, "invalid_flag", "%s", err);
    buf_init(&rec);
    buf_init(&body);
    ev_init(&ev);
    ev.type = q->type;
    ev.ts = q->next.updated_at;
    ev.flag = &q->next;
    ev.actor = q->who.name;
    if (flag_encode(&q->next, &rec) < 0 || ev_encode_body(&ev, &body) < 0 || rec.err || body.err) {
        buf_free(&rec);
        buf_free(&body);
        return req_error(q, 500, NULL, "cannot encode the flag record");
    }
    /* Publications: "flags", or the inboxes named by "to" (which expire
     * like any non-flag channel). */
    size_t npub = q->nch ? q->nch : 1;
    pubs = calloc(npub, sizeof(*pubs));
    if (pubs) {
        for (size_t i = 0; i < npub; i++)
            pubs[i].channel = q->nch ? q->channels[i] : "flags";
        store_call_t c = {
            .op = STORE_FLAG, .mode = mode, .key = q->next.key, .expected = expected,
            .id = q->next.id, .record = rec.data, .record_len = rec.len,
            .body = body.data, .body_len = body.len, .history_size = p->cfg.history_size,
            .ttl = q->nch ? p->cfg.history_ttl : 0, .pubs = pubs, .npub = npub,
        };
        rc = store_call(p, &c, on_flag_script, q);
    }
    buf_free(&rec);
    buf_free(&body);
    free(pubs);
    if (rc < 0)
        req_unavailable(q);
}

static void on_flag_read(redisAsyncContext *ac, void *r, void *priv)
{
    req_t *q = priv;
    flag_t cur;
    char err[256];
    unsigned present;

    if (stored_flag(q, r, &cur) != 0)
        return;
    if (q->has_if_match && cur.version != q->if_match) {
        buf_t eb;
        char msg[256];
        metric_inc(q->p->m.conflicts);
        snprintf(msg, sizeof(msg), "flag \"%.128s\" is at version %llu, not %llu", q->rt.arg,
                 (unsigned long long)cur.version, (unsigned long long)q->if_match);
        buf_init(&eb);
        buf_puts(&eb, "{\"error\":{\"code\":\"precondition_failed\",\"message\":");
        json_cstr(&eb, msg);
        buf_printf(&eb, ",\"currentVersion\":%llu}}", (unsigned long long)cur.version);
        flag_free(&cur);
        req_reply(q, 412, &eb);
        buf_free(&eb);
        return;
    }
    /* the stored record's parts, whose ids the new record may keep */
    flag_t prev;
    flag_init(&prev);
    if (q->type != EV_FLAG_DELETED && flag_copy(&prev, &cur) < 0) {
        flag_free(&cur);
        return req_error(q, 500, NULL, "out of memory");
    }
    flag_free(&q->next);
    q->next = cur; /* takes ownership */
    if (q->body && jsonin_flag(q->body, q->mask, &q->next, &present, err, sizeof(err)) < 0) {
        flag_free(&prev);
        return req_error(q, 400, "invalid_field", "%s", err);
    }
    uint64_t expected = q->next.version;
    q->next.version = expected + 1;
    q->next.updated_at = req_now_ms();
    if (q->type == EV_FLAG_DELETED)
        flag_step_publish(q, "delete", expected);
    else
        flag_step_ids(q, &prev);
    flag_free(&prev);
}

static void flag_step_read(req_t *q)
{
    if (rconn_command(q->p->rc, on_flag_read, q, "HGET %s %b", q->p->k_flags, q->rt.arg,
                      q->rt.arglen) < 0)
        req_unavailable(q);
}

static void on_create_id(redisAsyncContext *ac, void *r, void *priv)
{
    req_t *q = priv;
    redisReply *reply = r;
    if (req_redis_failed(q, reply))
        return;
    if (reply->type != REDIS_REPLY_INTEGER || reply->integer <= 0)
        return req_error(q, 500, NULL, "cannot allocate a flag id");
    q->next.id = (uint64_t)reply->integer;
    q->next.version = 1;
    q->next.updated_at = req_now_ms();
    flag_step_ids(q, NULL);
}

static void on_create_exists(redisAsyncContext *ac, void *r, void *priv)
{
    req_t *q = priv;
    redisReply *reply = r;
    if (req_redis_failed(q, reply))
        return;
    if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 1)
        return req_error(q, 409, "conflict", "flag \"%s\" already exists", q->next.key);
    if (rconn_command(q->p->rc, on_create_id, q, "INCR %s", q->p->k_seq) < 0)
        req_unavailable(q);
}


/* ==== entry points ==== */

void flags_list(req_t *q)
{
    if (rconn_command(q->p->rc, on_list, q, "HGETALL %s", q->p->k_flags) < 0)
        req_unavailable(q);
}

void flags_get(req_t *q)
{
    if (rconn_command(q->p->rc, on_get, q, "HGET %s %b", q->p->k_flags, q->rt.arg,
                      q->rt.arglen) < 0)
        req_unavailable(q);
}

void flags_create(req_t *q)
{
    unsigned present;
    const char *e;
    char err[512];

    q->type = EV_FLAG_CREATED;
    if (jsonin_flag(q->body, JSONIN_ALL, &q->next, &present, err, sizeof(err)) < 0)
        return req_error(q, 400, "invalid_field", "%s", err);
    if (!(present & JSONIN_KEY))
        return req_error(q, 400, "invalid_field", "field \"key\" is required");
    q->next.id = 1;
    q->next.version = 1;
    if (flag_validate(&q->next, &e) < 0)
        return req_error(q, 400, "invalid_flag", "%s", e);
    q->rt.arglen = strlen(q->next.key);
    snprintf(q->rt.arg, sizeof(q->rt.arg), "%s", q->next.key);
    if (rconn_command(q->p->rc, on_create_exists, q, "HEXISTS %s %s", q->p->k_flags,
                      q->next.key) < 0)
        req_unavailable(q);
}

void flags_delete(req_t *q)
{
    q->type = EV_FLAG_DELETED;
    flag_step_read(q);
}

void flags_update(req_t *q)
{
    flag_t probe;
    unsigned present;
    char err[512];

    /* Check the body's fields and types against an empty record first, so
     * a bad body is refused before Redis is asked anything. */
    flag_init(&probe);
    int bad = jsonin_flag(q->body, q->mask, &probe, &present, err, sizeof(err)) < 0;
    flag_free(&probe);
    if (bad)
        return req_error(q, 400, "invalid_field", "%s", err);
    if ((present & ~(unsigned)JSONIN_KEY) == 0)
        return req_error(q, 400, "invalid_field",
                         "nothing to change: give description, enabled, tags, variants "
                         "or segments");
    json_t *k = json_object_get(q->body, "key");
    if (k && strcmp(json_string_value(k), q->rt.arg) != 0)
        return req_error(q, 400, "invalid_field",
                         "field \"key\" cannot change a flag's key (it is \"%s\")", q->rt.arg);
    flag_step_read(q);
}
