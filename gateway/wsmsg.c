/*
 * wsmsg — WebSocket client messages in, control messages out.
 *
 * Both encodings share one interpreter over jansson values: a JSON frame is
 * parsed by jansson directly; a msgpack frame is first walked by mp_scan
 * (bounded depth, no allocation, no trailing bytes), unpacked by msgpack-c,
 * and the values of the known top-level fields are converted to jansson
 * values (unknown fields are never converted, so nothing in them can make
 * the message fail). The ping id is the exception: it is kept as the raw
 * encoded bytes of whatever value the client sent, so that the pong echoes
 * it exactly in the same encoding.
 *
 * Every failure yields one of the codes in wsmsg.h and a message that
 * names the field, so a client developer sees what to fix; the caller sends
 * it back as {"type":"error",...} and keeps the connection.
 */
#include "gateway/wsmsg.h"

#include <jansson.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/jsonin.h"
#include "proto/eval_ctx.h"
#include "proto/event.h"
#include "proto/json.h"
#include "proto/mpscan.h"
#include "proto/names.h"

static const char *const err_codes[WSERR_COUNT] = {
    [WSERR_NONE]         = "",
    [WSERR_TOO_LARGE]    = "too_large",
    [WSERR_BAD_JSON]     = "bad_json",
    [WSERR_BAD_MESSAGE]  = "bad_message",
    [WSERR_UNKNOWN_TYPE] = "unknown_type",
    [WSERR_BAD_CHANNEL]  = "bad_channel",
    [WSERR_BAD_KEY]      = "bad_key",
    [WSERR_BAD_TAG]      = "bad_tag",
    [WSERR_BAD_ID]       = "bad_id",
    [WSERR_TOO_MANY]     = "too_many",
};

const char *wsmsg_err_code(wsmsg_err_t e)
{
    return (unsigned)e < WSERR_COUNT ? err_codes[e] : "bad_message";
}

void wsmsg_init(wsmsg_t *m)
{
    memset(m, 0, sizeof *m);
    filter_req_init(&m->req);
}

void wsmsg_free(wsmsg_t *m)
{
    filter_req_free(&m->req);
    for (size_t i = 0; i < m->nsince; i++) {
        free(m->since[i].channel);
        free(m->since[i].epoch);
    }
    free(m->since);
    free(m->token);
    free(m->ping_id);
    free(m->eval_body);
    wsmsg_init(m);
}

static int seterr(wsmsg_error_t *e, wsmsg_err_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int seterr(wsmsg_error_t *e, wsmsg_err_t code, const char *fmt, ...)
{
    va_list ap;
    e->code = code;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

/* ==== the interpreter (over jansson values) ============================== */

static wsmsg_err_t add_err_code(const char *err, wsmsg_err_t dflt)
{
    return err && strncmp(err, "too many", 8) == 0 ? WSERR_TOO_MANY : dflt;
}

static int parse_strings(json_t *arr, const char *field, wsmsg_t *m, size_t max_items,
                         wsmsg_error_t *e)
{
    size_t i;
    json_t *v;
    if (!json_is_array(arr))
        return seterr(e, WSERR_BAD_MESSAGE, "\"%s\" must be an array of strings", field);
    if (json_array_size(arr) > max_items)
        return seterr(e, WSERR_TOO_MANY, "\"%s\": more than %zu items", field, max_items);
    json_array_foreach(arr, i, v) {
        const char *err = NULL;
        int r;
        wsmsg_err_t code;
        if (!json_is_string(v))
            return seterr(e, WSERR_BAD_MESSAGE, "\"%s\"[%zu] must be a string", field, i);
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (strcmp(field, "flags") == 0 || strcmp(field, "flagKeys") == 0) {
            r = filter_add_key(&m->req.items, s, n, max_items, &err);
            code = WSERR_BAD_KEY;
        } else if (strcmp(field, "tags") == 0) {
            r = filter_add_tag(&m->req.items, s, n, max_items, &err);
            code = WSERR_BAD_TAG;
        } else {
            r = filter_add_channel(&m->req.items, s, n, max_items, &err);
            code = WSERR_BAD_CHANNEL;
            if (r == 1) {
                m->req.flags_listed = true;
                r = 0;
            }
        }
        if (r < 0)
            return seterr(e, add_err_code(err, code), "\"%s\"[%zu]: %s", field, i,
                          err ? err : "invalid");
    }
    return 0;
}

static int parse_ids(json_t *arr, wsmsg_t *m, size_t max_items, wsmsg_error_t *e)
{
    size_t i;
    json_t *v;
    if (!json_is_array(arr))
        return seterr(e, WSERR_BAD_MESSAGE, "\"flagIDs\" must be an array of ids");
    if (json_array_size(arr) > max_items)
        return seterr(e, WSERR_TOO_MANY, "\"flagIDs\": more than %zu items", max_items);
    json_array_foreach(arr, i, v) {
        uint64_t id = 0;
        if (json_is_integer(v)) {
            json_int_t x = json_integer_value(v);
            if (x <= 0)
                return seterr(e, WSERR_BAD_ID, "\"flagIDs\"[%zu]: not a positive integer", i);
            id = (uint64_t)x;
        } else if (json_is_string(v)) {
            const char *s = json_string_value(v);
            size_t n = json_string_length(v);
            if (n == 0 || n > 20)
                return seterr(e, WSERR_BAD_ID, "\"flagIDs\"[%zu]: not a positive integer", i);
            for (size_t j = 0; j < n; j++) {
                unsigned d = (unsigned)(s[j] - '0');
                if (s[j] < '0' || s[j] > '9' || id > (UINT64_MAX - d) / 10)
                    return seterr(e, WSERR_BAD_ID, "\"flagIDs\"[%zu]: not a positive integer", i);
                id = id * 10 + d;
            }
            if (id == 0)
                return seterr(e, WSERR_BAD_ID, "\"flagIDs\"[%zu]: not a positive integer", i);
        } else {
            return seterr(e, WSERR_BAD_ID, "\"flagIDs\"[%zu]: not a positive integer", i);
        }
        const char *err = NULL;
        if (filter_add_id(&m->req.items, id, max_items, &err) != 0)
            return seterr(e, add_err_code(err, WSERR_BAD_ID), "\"flagIDs\"[%zu]: %s", i,
                          err ? err : "invalid");
    }
    return 0;
}

static int parse_since(json_t *obj, wsmsg_t *m, wsmsg_error_t *e)
{
    const char *ch;
    json_t *v;
    if (!json_is_object(obj))
        return seterr(e, WSERR_BAD_MESSAGE, "\"since\" must be an object");
    size_t n = json_object_size(obj);
    if (n > WSMSG_MAX_SINCE)
        return seterr(e, WSERR_TOO_MANY, "\"since\": more than %d channels", WSMSG_MAX_SINCE);
    if (n == 0)
        return 0;
    if (!(m->since = calloc(n, sizeof *m->since)))
        return seterr(e, WSERR_BAD_MESSAGE, "out of memory");
    json_object_foreach(obj, ch, v) {
        const char *err = NULL;
        if (name_channel_valid(ch, strlen(ch), &err) != 0)
            return seterr(e, WSERR_BAD_CHANNEL, "\"since\": %s", err ? err : "invalid channel");
        json_t *ep = json_object_get(v, "epoch"), *off = json_object_get(v, "offset");
        if (!json_is_object(v) || !json_is_string(ep) || !json_is_integer(off))
            return seterr(e, WSERR_BAD_MESSAGE,
                          "\"since\".%s must be {\"epoch\":string,\"offset\":integer}", ch);
        size_t elen = json_string_length(ep);
        if (elen == 0 || elen > EV_MAX_EPOCH || json_integer_value(off) < 0)
            return seterr(e, WSERR_BAD_MESSAGE, "\"since\".%s: bad epoch or offset", ch);
        wsmsg_since_t *s = &m->since[m->nsince];
        if (!(s->channel = strdup(ch)) || !(s->epoch = strdup(json_string_value(ep)))) {
            free(s->channel);
            s->channel = NULL;
            return seterr(e, WSERR_BAD_MESSAGE, "out of memory");
        }
        s->offset = (uint64_t)json_integer_value(off);
        m->nsince++;
    }
    return 0;
}

/* The fields each type takes ("id" everywhere: a client's correlation id,
 * echoed by pong). Anything else is refused: an unknown or misspelt filter
 * field (flagKey for flags, say) would otherwise answer `subscribed` with
 * empty lists, which reads like success. */
static const char *const sub_fields[] = {
    "type", "id", "flags", "flagKeys", "flagIDs", "flagIds", "tags", "channels",
    "subscribeAll", "since", NULL
};
static const char *const auth_fields[] = { "type", "id", "token", NULL };
static const char *const ping_fields[] = { "type", "id", NULL };
static const char *const eval_fields[] = {
    "type", "id", "flagKeys", "entityID", "entityType", "entityContext", NULL
};

#define WSMSG_MAX_CONTEXT (EVAL_CTX_MAX_PROPS - 2)   /* as evalapi bounds entityContext */

/* The evaluate message, into m->eval_body: a batch request of one entity,
 * checked here so that evalapi_parse accepts it. */
static int parse_evaluate(json_t *root, wsmsg_t *m, size_t max_items, wsmsg_error_t *e)
{
    json_t *keys = json_object_get(root, "flagKeys"), *v, *ent, *body;
    const char *names[] = { "entityID", "entityType" };
    size_t i;

    if (!keys)
        return seterr(e, WSERR_BAD_MESSAGE, "missing \"flagKeys\"");
    if (!json_is_array(keys) || json_array_size(keys) == 0)
        return seterr(e, WSERR_BAD_MESSAGE, "\"flagKeys\" must be a non-empty array of strings");
    if (json_array_size(keys) > max_items)
        return seterr(e, WSERR_TOO_MANY, "\"flagKeys\": more than %zu items", max_items);
    json_array_foreach(keys, i, v)
        if (!json_is_string(v))
            return seterr(e, WSERR_BAD_MESSAGE, "\"flagKeys\"[%zu] must be a string", i);
    if (!(ent = json_object()))
        return seterr(e, WSERR_BAD_MESSAGE, "out of memory");
    for (i = 0; i < 2; i++) {
        v = json_object_get(root, names[i]);
        if (!v || json_is_null(v))
            continue;
        if (!json_is_string(v)) {
            json_decref(ent);
            return seterr(e, WSERR_BAD_MESSAGE, "\"%s\" must be a string", names[i]);
        }
        json_object_set(ent, names[i], v);
    }
    v = json_object_get(root, "entityContext");
    if (v && !json_is_null(v)) {
        if (!json_is_object(v)) {
            json_decref(ent);
            return seterr(e, WSERR_BAD_MESSAGE, "\"entityContext\" must be an object");
        }
        if (json_object_size(v) > WSMSG_MAX_CONTEXT) {
            json_decref(ent);
            return seterr(e, WSERR_TOO_MANY, "\"entityContext\": more than %d properties",
                          WSMSG_MAX_CONTEXT);
        }
        json_object_set(ent, "entityContext", v);
    }
    body = json_pack("{sOs[o]}", "flagKeys", keys, "entities", ent);
    m->eval_body = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!m->eval_body)
        return seterr(e, WSERR_BAD_MESSAGE, "out of memory");
    m->eval_body_len = strlen(m->eval_body);
    /* A msgpack string may hold a NUL byte, which JSON text (and so the
     * evaluation API) refuses: read the body back as evalapi will. */
    json_error_t je;
    json_t *back = json_loadb(m->eval_body, m->eval_body_len, JSON_REJECT_DUPLICATES, &je);
    if (!back)
        return seterr(e, WSERR_BAD_MESSAGE, "evaluate: a string holds a NUL byte");
    json_decref(back);
    return 0;
}

static int check_fields(json_t *root, const char *type, const char *const *known,
                        wsmsg_error_t *e)
{
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) {
        size_t i;
        for (i = 0; known[i] && strcmp(known[i], k) != 0; i++)
            ;
        if (known[i])
            continue;
        char q[48], list[160];
        size_t n = strlen(k), o = 0, l = 0;
        for (size_t j = 0; j < n && o < sizeof q - 4; j++) {
            unsigned char c = (unsigned char)k[j];
            q[o++] = c >= 0x20 && c < 0x7f && c != '"' && c != '\\' ? (char)c : '?';
        }
        if (o < n)
            q[o++] = '.', q[o++] = '.', q[o++] = '.';
        q[o] = '\0';
        list[0] = '\0';
        for (i = 1; known[i] && l + strlen(known[i]) + 3 < sizeof list; i++)
            l += (size_t)snprintf(list + l, sizeof list - l, "%s%s", i > 1 ? ", " : "", known[i]);
        return seterr(e, WSERR_BAD_MESSAGE, "unknown field \"%s\" in %s (known: %s)", q, type, list);
    }
    return 0;
}

/* Interprets root (an object). The ping id is handled by the caller. */
static int interpret(json_t *root, wsmsg_t *m, size_t max_items, wsmsg_error_t *e)
{
    json_t *t = json_object_get(root, "type"), *v;
    if (!t)
        return seterr(e, WSERR_BAD_MESSAGE, "missing \"type\"");
    if (!json_is_string(t))
        return seterr(e, WSERR_BAD_MESSAGE, "\"type\" must be a string");
    const char *type = json_string_value(t);
    if (strcmp(type, "subscribe") == 0 || strcmp(type, "unsubscribe") == 0) {
        m->type = type[0] == 's' ? WSMSG_SUBSCRIBE : WSMSG_UNSUBSCRIBE;
        if (check_fields(root, type, sub_fields, e))
            return -1;
        if ((v = json_object_get(root, "flags")) && parse_strings(v, "flags", m, max_items, e))
            return -1;
        if ((v = json_object_get(root, "flagKeys")) &&
            parse_strings(v, "flagKeys", m, max_items, e))
            return -1;
        if ((v = json_object_get(root, "flagIDs")) && parse_ids(v, m, max_items, e))
            return -1;
        if ((v = json_object_get(root, "flagIds")) && parse_ids(v, m, max_items, e))
            return -1;
        if ((v = json_object_get(root, "tags")) && parse_strings(v, "tags", m, max_items, e))
            return -1;
        if ((v = json_object_get(root, "channels")) &&
            parse_strings(v, "channels", m, max_items, e))
            return -1;
        if ((v = json_object_get(root, "subscribeAll"))) {
            if (!json_is_boolean(v))
                return seterr(e, WSERR_BAD_MESSAGE, "\"subscribeAll\" must be true or false");
            m->req.subscribe_all = json_is_true(v);
        }
        if ((v = json_object_get(root, "since")) && parse_since(v, m, e))
            return -1;
        return 0;
    }
    if (strcmp(type, "auth") == 0) {
        m->type = WSMSG_AUTH;
        if (check_fields(root, type, auth_fields, e))
            return -1;
        v = json_object_get(root, "token");
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            strlen(json_string_value(v)) != json_string_length(v))
            return seterr(e, WSERR_BAD_MESSAGE, "\"token\" must be a non-empty string without NUL");
        if (json_string_length(v) > WSMSG_MAX_TOKEN)
            return seterr(e, WSERR_TOO_LARGE, "\"token\" longer than %d bytes", WSMSG_MAX_TOKEN);
        if (!(m->token = strdup(json_string_value(v))))
            return seterr(e, WSERR_BAD_MESSAGE, "out of memory");
        return 0;
    }
    if (strcmp(type, "ping") == 0) {
        m->type = WSMSG_PING;
        return check_fields(root, type, ping_fields, e);
    }
    if (strcmp(type, "evaluate") == 0) {
        m->type = WSMSG_EVALUATE;
        if (check_fields(root, type, eval_fields, e))
            return -1;
        return parse_evaluate(root, m, max_items, e);
    }
    char q[48];
    size_t n = json_string_length(t), o = 0;
    for (size_t i = 0; i < n && o < sizeof q - 4; i++) {
        unsigned char c = (unsigned char)type[i];
        q[o++] = c >= 0x20 && c < 0x7f && c != '"' && c != '\\' ? (char)c : '?';
    }
    if (o < n)
        q[o++] = '.', q[o++] = '.', q[o++] = '.';
    q[o] = '\0';
    return seterr(e, WSERR_UNKNOWN_TYPE,
                  "unknown type \"%s\" (expected subscribe, unsubscribe, auth, ping or evaluate)", q);
}

/* ==== JSON frames ======================================================== */

static int parse_json(const char *p, size_t n, size_t max_items, wsmsg_t *m, wsmsg_error_t *e)
{
    json_error_t je;
    json_t *root = json_loadb(p, n, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return seterr(e, WSERR_BAD_JSON, "invalid JSON at byte %d: %s", je.position, je.text);
    int r;
    if (!json_is_object(root)) {
        r = seterr(e, WSERR_BAD_MESSAGE, "a message must be a JSON object");
    } else if ((r = interpret(root, m, max_items, e)) == 0 && (m->type == WSMSG_PING || m->type == WSMSG_EVALUATE)) {
        json_t *id = json_object_get(root, "id");
        if (id) {
            char *s = json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT);
            if (!s)
                r = seterr(e, WSERR_BAD_MESSAGE, "out of memory");
            else if (strlen(s) > WSMSG_MAX_PING_ID) {
                free(s);
                r = seterr(e, WSERR_TOO_LARGE, "ping \"id\" over %d bytes", WSMSG_MAX_PING_ID);
            } else {
                m->ping_id = s;
                m->ping_id_len = strlen(s);
                m->ping_id_fmt = WSMSG_FMT_JSON;
            }
        }
    }
    json_decref(root);
    return r;
}

/* ==== msgpack frames ===================================================== */

/* Converts a msgpack value to jansson; NULL if it has no JSON form. */
static json_t *mp_to_json(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return o->via.u64 > (uint64_t)INT64_MAX ? NULL : json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR:
        return json_stringn(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < o->via.array.size; i++) {
            json_t *v = mp_to_json(&o->via.array.ptr[i]);
            if (!v || json_array_append_new(a, v) != 0) {   /* steals v, even on failure */
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; m && i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            if (k->type != MSGPACK_OBJECT_STR) {
                json_decref(m);
                return NULL;
            }
            /* an empty key may come with a NULL pointer */
            char *ks = k->via.str.size ? strndup(k->via.str.ptr, k->via.str.size) : strdup("");
            json_t *v = ks && strlen(ks) == k->via.str.size ? mp_to_json(&o->via.map.ptr[i].val) : NULL;
            /* json_object_set_new steals v even when it fails (e.g. a key
             * that is not UTF-8). */
            if (!v || json_object_set_new(m, ks, v) != 0) {
                free(ks);
                json_decref(m);
                return NULL;
            }
            free(ks);
        }
        return m;
    }
    default:
        return NULL;
    }
}

static bool str_is(const msgpack_object *k, const char *lit)
{
    size_t n = strlen(lit);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
           memcmp(k->via.str.ptr, lit, n) == 0;
}

static int parse_msgpack(const char *p, size_t n, size_t max_items, wsmsg_t *m, wsmsg_error_t *e)
{
    static const char *const known[] = {
        "type", "flags", "flagKeys", "flagIDs", "flagIds", "tags", "channels", "subscribeAll",
        "since", "token", "entityID", "entityType", "entityContext"
    };
    const char *err = NULL;
    size_t end = 0;
    if (mp_scan(p, n, WSMSG_MAX_DEPTH, 0, &end, &err) != 0)
        return seterr(e, WSERR_BAD_JSON, "invalid msgpack: %s", err ? err : "malformed");
    if (end != n)
        return seterr(e, WSERR_BAD_JSON, "invalid msgpack: %zu trailing bytes", n - end);

    msgpack_unpacked u;
    size_t off = 0;
    int r = -1;
    json_t *root = NULL;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, p, n, &off) != MSGPACK_UNPACK_SUCCESS || off != n) {
        seterr(e, WSERR_BAD_JSON, "invalid msgpack");
        goto out;
    }
    const msgpack_object *o = &u.data;
    if (o->type != MSGPACK_OBJECT_MAP) {
        seterr(e, WSERR_BAD_MESSAGE, "a message must be a msgpack map");
        goto out;
    }
    if (!(root = json_object())) {
        seterr(e, WSERR_BAD_MESSAGE, "out of memory");
        goto out;
    }
    const msgpack_object *id = NULL;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR) {
            seterr(e, WSERR_BAD_MESSAGE, "map keys must be strings");
            goto out;
        }
        if (str_is(k, "id")) {
            id = &o->via.map.ptr[i].val;
            json_object_set_new(root, "id", json_true());   /* a field check placeholder */
            continue;
        }
        size_t j;
        for (j = 0; j < sizeof known / sizeof *known; j++)
            if (str_is(k, known[j]))
                break;
        if (j == sizeof known / sizeof *known) {
            /* Unknown: its value is never converted; its name is kept for
             * the field check of interpret(). */
            /* an empty key may come with a NULL pointer */
            char *ks = k->via.str.size ? strndup(k->via.str.ptr, k->via.str.size) : strdup("");
            if (!ks || strlen(ks) != k->via.str.size ||
                json_object_set_new(root, ks, json_true()) != 0) {
                free(ks);
                seterr(e, WSERR_BAD_MESSAGE, "unknown field with a key that is not UTF-8 text");
                goto out;
            }
            free(ks);
            continue;
        }
        for (j = 0; j < sizeof known / sizeof *known; j++) {
            if (!str_is(k, known[j]))
                continue;
            json_t *v = mp_to_json(&o->via.map.ptr[i].val);
            if (!v) {
                seterr(e, WSERR_BAD_MESSAGE, "\"%s\": a value with no JSON form", known[j]);
                goto out;
            }
            if (json_object_get(root, known[j])) {
                json_decref(v);
                seterr(e, WSERR_BAD_MESSAGE, "duplicate key \"%s\"", known[j]);
                goto out;
            }
            json_object_set_new(root, known[j], v);
            break;
        }
    }
    if (interpret(root, m, max_items, e) != 0)
        goto out;
    if ((m->type == WSMSG_PING || m->type == WSMSG_EVALUATE) && id) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        if (msgpack_pack_object(&pk, *id) != 0 || !sb.data) {
            msgpack_sbuffer_destroy(&sb);
            seterr(e, WSERR_BAD_MESSAGE, "out of memory");
            goto out;
        }
        if (sb.size > WSMSG_MAX_PING_ID) {
            msgpack_sbuffer_destroy(&sb);
            seterr(e, WSERR_TOO_LARGE, "ping \"id\" over %d bytes", WSMSG_MAX_PING_ID);
            goto out;
        }
        m->ping_id = sb.data;          /* malloc'd by the sbuffer */
        m->ping_id_len = sb.size;
        m->ping_id_fmt = WSMSG_FMT_MSGPACK;
    }
    r = 0;
out:
    json_decref(root);
    msgpack_unpacked_destroy(&u);
    return r;
}

int wsmsg_parse(wsmsg_fmt_t fmt, const char *p, size_t n, size_t max_frame,
                size_t max_items, wsmsg_t *m, wsmsg_error_t *e)
{
    wsmsg_free(m);
    e->code = WSERR_NONE;
    e->message[0] = '\0';
    if (!max_frame)
        max_frame = WSMSG_MAX_FRAME;
    if (!max_items)
        max_items = WSMSG_MAX_ITEMS;
    if (n > max_frame)
        return seterr(e, WSERR_TOO_LARGE, "frame of %zu bytes over the limit of %zu", n, max_frame);
    if (n == 0 || !p)
        return seterr(e, WSERR_BAD_JSON, "empty frame");
    int r = fmt == WSMSG_FMT_MSGPACK ? parse_msgpack(p, n, max_items, m, e)
                                     : parse_json(p, n, max_items, m, e);
    if (r != 0)
        wsmsg_free(m);
    return r;
}

/* ==== rendering ========================================================== */

static int mp_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, s, n);
}

int wsmsg_render_connected(wsmsg_fmt_t fmt, const char *message,
                           const char *connection_id, const char *protocol, buf_t *out)
{
    if (!message)
        message = "";
    if (fmt == WSMSG_FMT_MSGPACK) {
        msgpack_packer pk;
        msgpack_packer_init(&pk, out, buf_msgpack_write);
        int r = msgpack_pack_map(&pk, 2 + (connection_id != NULL) + (protocol != NULL));
        r |= mp_str(&pk, "type") | mp_str(&pk, "connected");
        r |= mp_str(&pk, "message") | mp_str(&pk, message);
        if (connection_id)
            r |= mp_str(&pk, "connectionId") | mp_str(&pk, connection_id);
        if (protocol)
            r |= mp_str(&pk, "protocol") | mp_str(&pk, protocol);
        return r || out->err ? -1 : 0;
    }
    buf_puts(out, "{\"type\":\"connected\",\"message\":");
    json_cstr(out, message);
    if (connection_id) {
        buf_puts(out, ",\"connectionId\":");
        json_cstr(out, connection_id);
    }
    if (protocol) {
        buf_puts(out, ",\"protocol\":");
        json_cstr(out, protocol);
    }
    buf_putc(out, '}');
    return out->err ? -1 : 0;
}

int wsmsg_render_subscribed(wsmsg_fmt_t fmt, const filter_t *f, buf_t *out)
{
    bool fl = f->flags != FILTER_FLAGS_NONE;
    if (fmt == WSMSG_FMT_MSGPACK) {
        msgpack_packer pk;
        msgpack_packer_init(&pk, out, buf_msgpack_write);
        int r = msgpack_pack_map(&pk, 6);
        r |= mp_str(&pk, "type") | mp_str(&pk, "subscribed");
        r |= mp_str(&pk, "channels") | msgpack_pack_array(&pk, f->nchannels + fl);
        if (fl)
            r |= mp_str(&pk, "flags");
        for (uint32_t i = 0; i < f->nchannels; i++)
            r |= mp_str(&pk, f->channels[i]);
        r |= mp_str(&pk, "flags") | msgpack_pack_array(&pk, f->nkeys);
        for (uint32_t i = 0; i < f->nkeys; i++)
            r |= mp_str(&pk, f->keys[i]);
        r |= mp_str(&pk, "flagIDs") | msgpack_pack_array(&pk, f->nids);
        for (uint32_t i = 0; i < f->nids; i++)
            r |= msgpack_pack_uint64(&pk, f->ids[i]);
        r |= mp_str(&pk, "tags") | msgpack_pack_array(&pk, f->ntags);
        for (uint32_t i = 0; i < f->ntags; i++)
            r |= mp_str(&pk, f->tags[i]);
        r |= mp_str(&pk, "subscribeAll");
        r |= f->flags == FILTER_FLAGS_ALL ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
        return r || out->err ? -1 : 0;
    }
    buf_puts(out, "{\"type\":\"subscribed\",\"channels\":[");
    if (fl)
        buf_puts(out, "\"flags\"");
    for (uint32_t i = 0; i < f->nchannels; i++) {
        if (i || fl)
            buf_putc(out, ',');
        json_cstr(out, f->channels[i]);
    }
    buf_puts(out, "],\"flags\":[");
    for (uint32_t i = 0; i < f->nkeys; i++) {
        if (i)
            buf_putc(out, ',');
        json_cstr(out, f->keys[i]);
    }
    buf_puts(out, "],\"flagIDs\":[");
    for (uint32_t i = 0; i < f->nids; i++)
        buf_printf(out, "%s%llu", i ? "," : "", (unsigned long long)f->ids[i]);
    buf_puts(out, "],\"tags\":[");
    for (uint32_t i = 0; i < f->ntags; i++) {
        if (i)
            buf_putc(out, ',');
        json_cstr(out, f->tags[i]);
    }
    buf_puts(out, "],\"subscribeAll\":");
    buf_puts(out, f->flags == FILTER_FLAGS_ALL ? "true}" : "false}");
    return out->err ? -1 : 0;
}

int wsmsg_render_pong(wsmsg_fmt_t fmt, const wsmsg_t *ping, buf_t *out)
{
    bool id = ping && ping->ping_id && ping->ping_id_fmt == fmt;
    if (fmt == WSMSG_FMT_MSGPACK) {
        msgpack_packer pk;
        msgpack_packer_init(&pk, out, buf_msgpack_write);
        int r = msgpack_pack_map(&pk, id ? 2 : 1);
        r |= mp_str(&pk, "type") | mp_str(&pk, "pong");
        if (id) {
            r |= mp_str(&pk, "id");
            buf_append(out, ping->ping_id, ping->ping_id_len);   /* already msgpack */
        }
        return r || out->err ? -1 : 0;
    }
    buf_puts(out, "{\"type\":\"pong\"");
    if (id) {
        buf_puts(out, ",\"id\":");
        buf_append(out, ping->ping_id, ping->ping_id_len);       /* already JSON */
    }
    buf_putc(out, '}');
    return out->err ? -1 : 0;
}

int wsmsg_render_evaluation(wsmsg_fmt_t fmt, const wsmsg_t *req, const char *results,
                            size_t len, buf_t *out)
{
    bool id = req && req->ping_id && req->ping_id_fmt == fmt;
    if (fmt == WSMSG_FMT_MSGPACK) {
        msgpack_packer pk;
        json_error_t je;
        const char *err = NULL;
        json_t *v = json_loadb(results, len, 0, &je);
        int r;
        if (!json_is_array(v)) {
            json_decref(v);
            return -1;
        }
        msgpack_packer_init(&pk, out, buf_msgpack_write);
        r = msgpack_pack_map(&pk, id ? 3 : 2);
        r |= mp_str(&pk, "type") | mp_str(&pk, "evaluation");
        if (id) {
            r |= mp_str(&pk, "id");
            buf_append(out, req->ping_id, req->ping_id_len);   /* already msgpack */
        }
        r |= mp_str(&pk, "results");
        r |= jsonin_to_msgpack(v, out, &err);
        json_decref(v);
        return r || out->err ? -1 : 0;
    }
    buf_puts(out, "{\"type\":\"evaluation\"");
    if (id) {
        buf_puts(out, ",\"id\":");
        buf_append(out, req->ping_id, req->ping_id_len);        /* already JSON */
    }
    buf_puts(out, ",\"results\":");
    buf_append(out, results, len);
    buf_putc(out, '}');
    return out->err ? -1 : 0;
}

int wsmsg_render_error(wsmsg_fmt_t fmt, const char *code, const char *message, buf_t *out)
{
    if (!code)
        code = "bad_message";
    if (!message)
        message = "";
    if (fmt == WSMSG_FMT_MSGPACK) {
        msgpack_packer pk;
        msgpack_packer_init(&pk, out, buf_msgpack_write);
        int r = msgpack_pack_map(&pk, 3);
        r |= mp_str(&pk, "type") | mp_str(&pk, "error");
        r |= mp_str(&pk, "code") | mp_str(&pk, code);
        r |= mp_str(&pk, "message") | mp_str(&pk, message);
        return r || out->err ? -1 : 0;
    }
    buf_puts(out, "{\"type\":\"error\",\"code\":");
    json_cstr(out, code);
    buf_puts(out, ",\"message\":");
    json_cstr(out, message);
    buf_putc(out, '}');
    return out->err ? -1 : 0;
}

/* Copies a rendered object but its end, with room for `more` entries: a
 * msgpack fixmap header raised by more (our renderers write fixmaps), or
 * JSON without its closing brace. @return 0, or -1 (not such an object). */
static int open_object(wsmsg_fmt_t fmt, const char *msg, size_t len, unsigned more, buf_t *out)
{
    if (fmt == WSMSG_FMT_MSGPACK) {
        if (len == 0 || ((unsigned char)msg[0] & 0xf0) != 0x80 ||
            ((unsigned char)msg[0] & 0x0f) + more > 15)
            return -1;
        buf_putc(out, (char)((unsigned char)msg[0] + more));
        buf_append(out, msg + 1, len - 1);
        return out->err ? -1 : 0;
    }
    if (len < 2 || msg[0] != '{' || msg[len - 1] != '}')
        return -1;
    buf_append(out, msg, len - 1);
    return out->err ? -1 : 0;
}

int wsmsg_add_position(wsmsg_fmt_t fmt, const char *msg, size_t len, const char *channel,
                       const char *epoch, uint64_t offset, buf_t *out)
{
    if (open_object(fmt, msg, len, 3, out) != 0)
        return -1;
    if (fmt == WSMSG_FMT_MSGPACK) {
        msgpack_packer pk;
        msgpack_packer_init(&pk, out, buf_msgpack_write);
        int r = mp_str(&pk, "channel") | mp_str(&pk, channel) | mp_str(&pk, "epoch") |
                mp_str(&pk, epoch) | mp_str(&pk, "offset") | msgpack_pack_uint64(&pk, offset);
        return r || out->err ? -1 : 0;
    }
    buf_puts(out, ",\"channel\":");
    json_cstr(out, channel);
    buf_puts(out, ",\"epoch\":");
    json_cstr(out, epoch);
    buf_printf(out, ",\"offset\":%llu}", (unsigned long long)offset);
    return out->err ? -1 : 0;
}

int wsmsg_add_positions(wsmsg_fmt_t fmt, const char *msg, size_t len,
                        const wsmsg_since_t *pos, size_t npos, buf_t *out)
{
    if (open_object(fmt, msg, len, npos ? 1 : 0, out) != 0)
        return -1;
    if (fmt == WSMSG_FMT_MSGPACK) {
        msgpack_packer pk;
        int r = 0;
        msgpack_packer_init(&pk, out, buf_msgpack_write);
        if (npos)
            r = mp_str(&pk, "positions") | msgpack_pack_map(&pk, npos);
        for (size_t i = 0; i < npos; i++) {
            r |= mp_str(&pk, pos[i].channel) | msgpack_pack_map(&pk, 2);
            r |= mp_str(&pk, "epoch") | mp_str(&pk, pos[i].epoch);
            r |= mp_str(&pk, "offset") | msgpack_pack_uint64(&pk, pos[i].offset);
        }
        return r || out->err ? -1 : 0;
    }
    if (npos) {
        buf_puts(out, ",\"positions\":{");
        for (size_t i = 0; i < npos; i++) {
            if (i)
                buf_putc(out, ',');
            json_cstr(out, pos[i].channel);
            buf_puts(out, ":{\"epoch\":");
            json_cstr(out, pos[i].epoch);
            buf_printf(out, ",\"offset\":%llu}", (unsigned long long)pos[i].offset);
        }
        buf_putc(out, '}');
    }
    buf_putc(out, '}');
    return out->err ? -1 : 0;
}
