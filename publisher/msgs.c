/*
 * msgs — channel messages, targeted messages with per-user A/B variants,
 * and the recipients ("users", "roles", "to") of both and of flag changes
 * (docs/API.md, "Messages").
 *
 * A message's "data" is any JSON value, packed once as msgpack; an A/B
 * message packs each variant once and gives each user the variant ab.c
 * picks. Publishing is one publish.lua "msg" call for every recipient.
 */
#include "publisher/msgs.h"
#include "publisher/ab.h"
#include "common/jsonin.h"
#include "common/log.h"
#include "proto/json.h"
#include "proto/names.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

/* ==== messages ==== */

static void on_msg_script(pub_t *p, redisReply *reply, void *arg)
{
    req_t *q = arg;
    store_reply_t sr;
    buf_t b;

    if (req_redis_failed(q, reply))
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        log_error("publish script failed", "error=\"%s\"", reply->str);
        return req_error(q, 500, NULL, "the publish script failed");
    }
    if (store_reply_parse(reply, &sr) < 0 || sr.status != 200 || sr.npub != q->nch)
        return req_error(q, 500, NULL, "unexpected reply from the publish script");
    metric_add(p->m.publications, (int64_t)q->nch);
    buf_init(&b);
    if (q->rt.id == RT_CHANNEL_MESSAGES) {
        buf_puts(&b, "{\"publication\":");
        req_put_publication(&b, &sr, 0);
        buf_putc(&b, '}');
        log_info("message published", "channel=%s offset=%lld actor=%s", q->channels[0],
                 sr.pub[2]->integer, q->who.name);
    } else {
        buf_puts(&b, "{\"publications\":[");
        for (size_t i = 0; i < q->nch; i++) {
            if (i)
                buf_putc(&b, ',');
            req_put_publication(&b, &sr, i);
            if (q->nvars) {
                b.len--; /* reopen the object for the variant's name */
                buf_puts(&b, ",\"variant\":");
                json_cstr(&b, q->vars[q->picks[i]].name);
                buf_putc(&b, '}');
            }
        }
        buf_puts(&b, "]}");
        log_info("targeted message published", "inboxes=%zu variants=%zu actor=%s", q->nch,
                 q->nvars, q->who.name);
    }
    req_reply(q, 200, &b);
    buf_free(&b);
}

/* One "msg" script call: the same body to every channel, or (A/B) each
 * user's variant body, encoded once per variant. */
static void msg_publish(req_t *q)
{
    pub_t *p = q->p;
    ev_t ev;
    size_t nb = q->nvars ? q->nvars : 1;
    store_pub_t *pubs = calloc(q->nch, sizeof(*pubs));
    buf_t *bodies = calloc(nb, sizeof(buf_t));
    int rc = -1;

    if (!pubs || !bodies)
        goto done;
    for (size_t i = 0; i < nb; i++) {
        buf_init(&bodies[i]);
        ev_init(&ev);
        ev.type = EV_MESSAGE;
        ev.ts = req_now_ms();
        ev.data = q->nvars ? q->vars[i].data : q->data;
        ev.data_len = q->nvars ? q->vars[i].len : q->data_len;
        ev.actor = q->who.name;
        if (ev_encode_body(&ev, &bodies[i]) < 0 || bodies[i].err)
            goto done;
    }
    for (size_t i = 0; i < q->nch; i++) {
        pubs[i].channel = q->channels[i];
        if (q->nvars) {
            pubs[i].body = bodies[q->picks[i]].data;
            pubs[i].body_len = bodies[q->picks[i]].len;
        }
    }
    store_call_t c = {
        .op = STORE_MSG, .body = q->nvars ? NULL : bodies[0].data,
        .body_len = q->nvars ? 0 : bodies[0].len, .history_size = p->cfg.history_size,
        .ttl = p->cfg.history_ttl, .pubs = pubs, .npub = q->nch,
    };
    rc = store_call(p, &c, on_msg_script, q);
done:
    if (bodies)
        for (size_t i = 0; i < nb; i++)
            buf_free(&bodies[i]);
    free(bodies);
    free(pubs);
    if (rc < 0)
        req_unavailable(q);
}

static int add_channel(req_t *q, const char *kind, const char *name, size_t len,
                       char *err, size_t errlen)
{
    char ch[NAME_CHANNEL_MAX + 2];
    const char *e;
    int n = snprintf(ch, sizeof(ch), "%s%.*s", kind, (int)len, name);
    if (n < 0 || (size_t)n >= sizeof(ch) || memchr(name, '\0', len) ||
        name_channel_kind(ch, (size_t)n, &e) == CHAN_INVALID) {
        snprintf(err, errlen, "bad %s \"%.64s\": %s", *kind == 'u' ? "user id" : "role",
                 name, (size_t)n >= sizeof(ch) ? "too long" : "must be [A-Za-z0-9._:-]");
        return -1;
    }
    for (size_t i = 0; i < q->nch; i++)
        if (strcmp(q->channels[i], ch) == 0)
            return 0; /* duplicate: one publication per inbox */
    if (q->nch == PUB_MAX_TARGETS) {
        snprintf(err, errlen, "too many recipients (at most %d users and roles)", PUB_MAX_TARGETS);
        return -1;
    }
    q->channels[q->nch] = strdup(ch);
    if (q->channels[q->nch] == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    q->nch++;
    if (*kind == 'r')
        q->nroles++;
    return 0;
}

/* Adds the recipients of a JSON array of strings (field: its name in
 * messages, e.g. "users" or "to.users"). @return 0 or -1 with err set. */
static int add_recipients(req_t *q, const char *field, const json_t *v, char *err,
                          size_t errlen)
{
    size_t i;
    json_t *x;
    const char *kind = strstr(field, "users") ? "user:" : "role:";
    if (!json_is_array(v)) {
        snprintf(err, errlen, "%s must be an array of strings", field);
        return -1;
    }
    json_array_foreach(v, i, x) {
        if (!json_is_string(x)) {
            snprintf(err, errlen, "%s[%zu] must be a string", field, i);
            return -1;
        }
        if (add_channel(q, kind, json_string_value(x), json_string_length(x), err, errlen) < 0)
            return -1;
    }
    return 0;
}

/* Adds the recipients of a comma list from the query string. */
static int add_recipient_list(req_t *q, const char *kind, const char *list, char *err,
                              size_t errlen)
{
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == 0) {
            snprintf(err, errlen, "to.%s has an empty item", *kind == 'u' ? "users" : "roles");
            return -1;
        }
        if (add_channel(q, kind, p, n, err, errlen) < 0)
            return -1;
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* See msgs.h. */
int msgs_take_to(req_t *q, const char *query, char *err, size_t errlen)
{
    int given = 0;
    q->channels = calloc(PUB_MAX_TARGETS, sizeof(char *));
    if (q->channels == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (q->body && q->method == EVHTTP_REQ_DELETE) {
        const char *k;
        json_t *v;
        if (!json_is_object(q->body)) {
            snprintf(err, errlen, "the body of DELETE, if any, must be {\"to\": {...}}");
            return -1;
        }
        json_object_foreach(q->body, k, v) {
            if (strcmp(k, "to") != 0) {
                snprintf(err, errlen, "unknown field \"%.64s\" (DELETE takes only \"to\")", k);
                return -1;
            }
        }
    }
    json_t *to = json_is_object(q->body) ? json_object_get(q->body, "to") : NULL;
    if (to) {
        const char *k;
        json_t *v;
        if (!json_is_object(to)) {
            snprintf(err, errlen, "to must be an object {\"users\": [...], \"roles\": [...]}");
            return -1;
        }
        json_object_foreach(to, k, v) {
            if (strcmp(k, "users") && strcmp(k, "roles")) {
                snprintf(err, errlen, "unknown field \"to.%.64s\"", k);
                return -1;
            }
            char field[16];
            snprintf(field, sizeof(field), "to.%s", k);
            if (add_recipients(q, field, v, err, errlen) < 0)
                return -1;
        }
        given = 1;
        json_object_del(q->body, "to");
    }
    if (query && *query) {
        struct evkeyvalq kv;
        struct evkeyval *e;
        int bad = 0;
        TAILQ_INIT(&kv);
        if (evhttp_parse_query_str(query, &kv) < 0) {
            snprintf(err, errlen, "malformed query string");
            return -1;
        }
        TAILQ_FOREACH(e, &kv, next) {
            if (bad)
                break;
            if (!strcmp(e->key, "to.users") || !strcmp(e->key, "to.roles")) {
                given = 1;
                bad = add_recipient_list(q, e->key[3] == 'u' ? "user:" : "role:", e->value,
                                         err, errlen) < 0;
            } else {
                snprintf(err, errlen, "unknown query parameter \"%.64s\"", e->key);
                bad = 1;
            }
        }
        evhttp_clear_headers(&kv);
        if (bad)
            return -1;
    }
    if (given && q->nch == 0) {
        snprintf(err, errlen, "to names no user and no role");
        return -1;
    }
    return 0;
}

static int cmp_variant(const void *a, const void *b)
{
    return strcmp(((const ab_variant_t *)a)->name, ((const ab_variant_t *)b)->name);
}

/* Reads "variants" and "weights" of an A/B message into q->vars (sorted by
 * name), each payload packed once as {"variant": name, "data": payload}.
 * @return 0 or -1 with err set. */
static int parse_variants(req_t *q, json_t *variants, json_t *weights, char *err,
                          size_t errlen)
{
    const char *k, *e;
    json_t *v;
    size_t n = json_is_object(variants) ? json_object_size(variants) : 0;

    if (!json_is_object(variants) || n == 0 || n > PUB_MAX_VARIANTS) {
        snprintf(err, errlen, "variants must be an object of 1-%d {\"name\": payload}",
                 PUB_MAX_VARIANTS);
        return -1;
    }
    if (weights && !json_is_object(weights)) {
        snprintf(err, errlen, "weights must be an object {\"name\": integer}");
        return -1;
    }
    q->vars = calloc(n, sizeof(*q->vars));
    if (q->vars == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    json_object_foreach(variants, k, v) {
        ab_variant_t *a = &q->vars[q->nvars];
        size_t klen = strlen(k);
        if (name_flag_key_valid(k, klen, &e) < 0 || klen > 64) {
            snprintf(err, errlen, "bad variant name \"%.64s\": 1-64 bytes of [A-Za-z0-9_./:-]",
                     k);
            return -1;
        }
        if (jsonin_nesting(v, EV_MAX_DATA_DEPTH) > EV_MAX_DATA_DEPTH - 1) {
            snprintf(err, errlen, "variants.%s nests deeper than %d levels", k,
                     EV_MAX_DATA_DEPTH - 1);
            return -1;
        }
        a->weight = 1;
        if (weights) {
            json_t *w = json_object_get(weights, k);
            if (!json_is_integer(w) || json_integer_value(w) < 0 ||
                json_integer_value(w) > PUB_MAX_WEIGHT) {
                snprintf(err, errlen, "weights.%s must be an integer 0-%d (give every variant "
                         "a weight, or none)", k, PUB_MAX_WEIGHT);
                return -1;
            }
            a->weight = (uint64_t)json_integer_value(w);
        }
        a->name = strdup(k);
        json_t *wrap = json_pack("{s:s,s:O}", "variant", k, "data", v);
        buf_t b;
        buf_init(&b);
        b.limit = EV_MAX_BYTES - 4096;
        int bad = a->name == NULL || wrap == NULL || jsonin_to_msgpack(wrap, &b, &e) < 0;
        if (wrap)
            json_decref(wrap);
        q->nvars++;
        if (bad) {
            buf_free(&b);
            snprintf(err, errlen, "variants.%s: %s", k, a->name && wrap ? e : "out of memory");
            return -1;
        }
        a->data = buf_steal(&b, &a->len);
        q->var_total += a->weight;
    }
    if (weights) {
        json_object_foreach(weights, k, v) {
            if (json_object_get(variants, k) == NULL) {
                snprintf(err, errlen, "weights.%.64s names no variant", k);
                return -1;
            }
        }
    }
    if (q->var_total == 0) {
        snprintf(err, errlen, "the weights add up to 0");
        return -1;
    }
    qsort(q->vars, q->nvars, sizeof(*q->vars), cmp_variant);
    return 0;
}

/* Reads "data" (or, for a per-user A/B message, "key", "variants" and
 * "weights") and, for targeted messages, "users"/"roles".
 * @return 0 or -1 with err set. */
static int parse_message(req_t *q, char *err, size_t errlen)
{
    const char *k;
    json_t *v, *data = NULL, *variants = NULL, *weights = NULL, *key = NULL;
    buf_t b;
    const char *e;

    if (!json_is_object(q->body)) {
        snprintf(err, errlen, "the request body must be a JSON object");
        return -1;
    }
    q->channels = calloc(PUB_MAX_TARGETS, sizeof(char *));
    if (q->channels == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    json_object_foreach(q->body, k, v) {
        if (strcmp(k, "data") == 0) {
            data = v;
        } else if (q->rt.id == RT_MESSAGES && (!strcmp(k, "users") || !strcmp(k, "roles"))) {
            if (add_recipients(q, k, v, err, errlen) < 0)
                return -1;
        } else if (q->rt.id == RT_MESSAGES && !strcmp(k, "variants")) {
            variants = v;
        } else if (q->rt.id == RT_MESSAGES && !strcmp(k, "weights")) {
            weights = v;
        } else if (q->rt.id == RT_MESSAGES && !strcmp(k, "key")) {
            key = v;
        } else {
            snprintf(err, errlen, "unknown field \"%.64s\"", k);
            return -1;
        }
    }
    if (q->rt.id == RT_MESSAGES && q->nch == 0) {
        snprintf(err, errlen, "give at least one recipient in \"users\" or \"roles\"");
        return -1;
    }
    if (variants) {
        if (data) {
            snprintf(err, errlen, "give either \"data\" or \"variants\", not both");
            return -1;
        }
        if (q->nroles) {
            snprintf(err, errlen, "variants go to users only: a role inbox is shared by all "
                     "its members, so it cannot carry a per-user variant");
            return -1;
        }
        if (!json_is_string(key) || json_string_length(key) == 0 ||
            json_string_length(key) > 256) {
            snprintf(err, errlen, "an A/B message needs \"key\": a string of 1-256 bytes "
                     "(the same key gives each user the same variant)");
            return -1;
        }
        if (parse_variants(q, variants, weights, err, errlen) < 0)
            return -1;
        q->ab_key = strdup(json_string_value(key));
        q->picks = calloc(q->nch, sizeof(*q->picks));
        if (q->ab_key == NULL || q->picks == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        uint64_t *w = calloc(q->nvars, sizeof(*w));
        if (w == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        for (size_t i = 0; i < q->nvars; i++)
            w[i] = q->vars[i].weight;
        for (size_t i = 0; i < q->nch; i++) {
            const char *user = q->channels[i] + 5; /* after "user:" */
            q->picks[i] = ab_pick(q->ab_key, strlen(q->ab_key), user, strlen(user), w,
                                  q->nvars, q->var_total);
        }
        free(w);
        return 0;
    }
    if (key || weights) {
        snprintf(err, errlen, "\"%s\" is only used with \"variants\"", key ? "key" : "weights");
        return -1;
    }
    if (data == NULL) {
        snprintf(err, errlen, "field \"data\" is required");
        return -1;
    }
    if (jsonin_nesting(data, EV_MAX_DATA_DEPTH) > EV_MAX_DATA_DEPTH) {
        snprintf(err, errlen, "data nests deeper than %d levels", EV_MAX_DATA_DEPTH);
        return -1;
    }
    buf_init(&b);
    b.limit = EV_MAX_BYTES - 4096;
    if (jsonin_to_msgpack(data, &b, &e) < 0) {
        buf_free(&b);
        snprintf(err, errlen, "data: %s", e);
        return -1;
    }
    q->data = buf_steal(&b, &q->data_len);
    return 0;
}


/* ==== entry points ==== */

void msgs_channel(req_t *q)
{
    const char *e;
    char err[512];
    chan_kind_t kind = name_channel_kind(q->rt.arg, q->rt.arglen, &e);
    if (kind == CHAN_INVALID)
        return req_error(q, 400, "invalid_channel", "bad channel name: %s", e);
    if (kind == CHAN_FLAGS)
        return req_error(q, 400, "invalid_channel",
                         "channel \"flags\" is reserved for flag events");
    if (parse_message(q, err, sizeof(err)) < 0)
        return req_error(q, 400, "invalid_field", "%s", err);
    q->channels[q->nch++] = strdup(q->rt.arg);
    if (q->channels[0] == NULL)
        return req_error(q, 500, NULL, "out of memory");
    msg_publish(q);
}

void msgs_targeted(req_t *q)
{
    char err[512];
    if (parse_message(q, err, sizeof(err)) < 0)
        return req_error(q, 400, "invalid_field", "%s", err);
    msg_publish(q);
}
