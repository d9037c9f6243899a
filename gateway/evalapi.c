/*
 * evalapi — the evaluation API's requests and answers (evalapi.h).
 *
 * Parsing keeps the jansson tree of the body and borrows every string from
 * it, so an eval request costs one parse and a few small arrays. Running
 * looks each flag up in the mirror, evaluates it with the evaluator the
 * mirror prepared (mirror_eval) and renders straight into the answer's
 * buffer: nothing is copied out of the mirror but the bytes of the answer.
 *
 * The shapes are Flagent's (../shared/EVALUATION.md, "Flagent's evaluation
 * API") and OFREP's (open-feature/protocol); docs/API.md lists them with
 * flagcast's choices: unknown members of a request are ignored (clients send
 * more than they need), a flagID of 0 counts as none, and ids the record does
 * not carry are null.
 */
#include "gateway/evalapi.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/eval.h"
#include "proto/eval_ctx.h"
#include "proto/json.h"

/* ==== ids ==== */

/* The record's id of a segment and of a variant, assigned by the
 * publisher: 0 for a record from before ids (rendered null). */
static uint64_t segment_id(const flag_segment_t *s)
{
    return s->id;
}

static uint64_t variant_id(const flag_variant_t *v)
{
    return v->id;
}

/* ==== paths ==== */

bool evalapi_route(const char *path, evalapi_kind_t *kind, const char **key, size_t *klen)
{
    static const char one[] = "/ofrep/v1/evaluate/flags/";

    *key = NULL;
    *klen = 0;
    if (strcmp(path, "/api/v1/evaluation") == 0) {
        *kind = EVALAPI_FLAGENT;
        return true;
    }
    if (strcmp(path, "/api/v1/evaluation/batch") == 0) {
        *kind = EVALAPI_FLAGENT_BATCH;
        return true;
    }
    if (strcmp(path, "/ofrep/v1/evaluate/flags") == 0) {
        *kind = EVALAPI_OFREP_BULK;
        return true;
    }
    if (strncmp(path, one, sizeof(one) - 1) == 0) {
        const char *k = path + sizeof(one) - 1;
        size_t n = strlen(k);
        if (n == 0 || n > EVALAPI_KEY_MAX || memchr(k, '/', n))
            return false;
        *kind = EVALAPI_OFREP_ONE;
        *key = k;
        *klen = n;
        return true;
    }
    return false;
}

/* ==== requests and replies ==== */

void evalapi_req_init(evalapi_req_t *r)
{
    memset(r, 0, sizeof(*r));
}

void evalapi_req_free(evalapi_req_t *r)
{
    json_decref(r->root);
    free(r->flag_ids);
    free(r->flag_keys);
    free(r->flag_tags);
    free(r->entities);
    free(r->key);
    evalapi_req_init(r);
}

void evalapi_reply_init(evalapi_reply_t *r)
{
    r->status = 0;
    buf_init(&r->body);
    r->etag[0] = '\0';
}

void evalapi_reply_free(evalapi_reply_t *r)
{
    buf_free(&r->body);
    r->status = 0;
    r->etag[0] = '\0';
}

static bool is_ofrep(evalapi_kind_t k)
{
    return k == EVALAPI_OFREP_ONE || k == EVALAPI_OFREP_BULK;
}

void evalapi_reply_error(evalapi_reply_t *out, evalapi_kind_t kind, const char *key,
                         unsigned status, const char *code, const char *msg)
{
    buf_reset(&out->body);
    out->status = status;
    out->etag[0] = '\0';
    if (is_ofrep(kind)) {
        buf_putc(&out->body, '{');
        if (key) {
            buf_puts(&out->body, "\"key\":");
            json_cstr(&out->body, key);
            buf_putc(&out->body, ',');
        }
        buf_puts(&out->body, "\"errorCode\":");
        json_cstr(&out->body, code);
        buf_puts(&out->body, ",\"errorDetails\":");
        json_cstr(&out->body, msg);
        buf_puts(&out->body, "}\n");
    } else {
        buf_puts(&out->body, "{\"error\":");
        json_cstr(&out->body, msg);
        buf_puts(&out->body, "}\n");
    }
}

/* ==== parsing ==== */

typedef struct perr {
    const char *code;    /* OFREP errorCode */
    char        msg[200];
} perr_t;

static int fail(perr_t *e, const char *code, const char *fmt, const char *arg)
{
    e->code = code;
    snprintf(e->msg, sizeof(e->msg), fmt, arg ? arg : "");
    return -1;
}

/* A context object: at most what eval_ctx holds, leaving room for the
 * claims an identity adds. */
static int check_context(const json_t *v, const char *name, const char *code, perr_t *e)
{
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return fail(e, code, "%s must be an object", name);
    if (json_object_size(v) > EVAL_CTX_MAX_PROPS - 2)
        return fail(e, code, "%s has too many properties", name);
    return 0;
}

/* An optional string member. @return 0 with *s (NULL: absent or null), or -1. */
static int opt_str(const json_t *o, const char *name, const char **s, size_t *len, perr_t *e)
{
    const json_t *v = json_object_get(o, name);
    *s = NULL;
    if (len)
        *len = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return fail(e, "PARSE_ERROR", "%s must be a string", name);
    *s = json_string_value(v);
    if (len)
        *len = json_string_length(v);
    return 0;
}

static int opt_bool(const json_t *o, const char *name, bool *b, perr_t *e)
{
    const json_t *v = json_object_get(o, name);
    *b = false;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return fail(e, "PARSE_ERROR", "%s must be a boolean", name);
    *b = json_is_true(v);
    return 0;
}

/* A flag id: a non-negative integer (0: none). */
static int opt_id(const json_t *v, const char *name, uint64_t *id, perr_t *e)
{
    *id = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return fail(e, "PARSE_ERROR", "%s must be a non-negative integer", name);
    *id = (uint64_t)json_integer_value(v);
    return 0;
}

/* Flagent's entity {entityID, entityType, entityContext}. */
static int parse_entity(const json_t *o, evalapi_entity_t *ent, perr_t *e)
{
    if (opt_str(o, "entityID", &ent->id, &ent->id_len, e) ||
        opt_str(o, "entityType", &ent->type, NULL, e))
        return -1;
    ent->context = json_object_get(o, "entityContext");
    if (check_context(ent->context, "entityContext", "PARSE_ERROR", e))
        return -1;
    if (ent->context && json_is_null(ent->context))
        ent->context = NULL;
    return 0;
}

/* A string array member into *out (borrowed strings). */
static int str_array(const json_t *o, const char *name, const char ***out, size_t *n,
                     perr_t *e)
{
    const json_t *a = json_object_get(o, name);
    *out = NULL;
    *n = 0;
    if (a == NULL || json_is_null(a))
        return 0;
    if (!json_is_array(a))
        return fail(e, "PARSE_ERROR", "%s must be an array of strings", name);
    if (json_array_size(a) > EVALAPI_MAX_SELECTORS)
        return fail(e, "PARSE_ERROR", "%s has too many items", name);
    if (json_array_size(a) == 0)
        return 0;
    if (!(*out = calloc(json_array_size(a), sizeof(**out))))
        return fail(e, "GENERAL", "out of memory%s", NULL);
    for (size_t i = 0; i < json_array_size(a); i++) {
        const json_t *v = json_array_get(a, i);
        if (!json_is_string(v))
            return fail(e, "PARSE_ERROR", "%s must be an array of strings", name);
        (*out)[(*n)++] = json_string_value(v);
    }
    return 0;
}

static int parse_flagent(const json_t *root, evalapi_req_t *r, perr_t *e)
{
    if (opt_id(json_object_get(root, "flagID"), "flagID", &r->flag_id, e) ||
        opt_str(root, "flagKey", &r->flag_key, NULL, e) ||
        opt_bool(root, "enableDebug", &r->debug, e))
        return -1;
    r->has_flag_id = r->flag_id > 0;
    if (r->flag_key && !r->flag_key[0])
        r->flag_key = NULL;
    if (!r->has_flag_id && !r->flag_key)
        return fail(e, "PARSE_ERROR", "flagID or flagKey is required%s", NULL);
    if (!(r->entities = calloc(1, sizeof(*r->entities))))
        return fail(e, "GENERAL", "out of memory%s", NULL);
    r->nentities = 1;
    return parse_entity(root, &r->entities[0], e);
}

static int parse_batch(const json_t *root, evalapi_req_t *r, perr_t *e)
{
    const json_t *ents = json_object_get(root, "entities");
    const json_t *ids = json_object_get(root, "flagIDs");
    const char *op;

    if (str_array(root, "flagKeys", &r->flag_keys, &r->nflag_keys, e) ||
        str_array(root, "flagTags", &r->flag_tags, &r->nflag_tags, e) ||
        opt_str(root, "flagTagsOperator", &op, NULL, e) ||
        opt_bool(root, "enableDebug", &r->debug, e))
        return -1;
    if (op && strcmp(op, "ALL") == 0)
        r->tags_all = true;
    else if (op && *op && strcmp(op, "ANY") != 0)
        return fail(e, "PARSE_ERROR", "flagTagsOperator must be ANY or ALL%s", NULL);
    if (ids && !json_is_null(ids)) {
        if (!json_is_array(ids))
            return fail(e, "PARSE_ERROR", "flagIDs must be an array of integers%s", NULL);
        if (json_array_size(ids) > EVALAPI_MAX_SELECTORS)
            return fail(e, "PARSE_ERROR", "flagIDs has too many items%s", NULL);
        if (json_array_size(ids) &&
            !(r->flag_ids = calloc(json_array_size(ids), sizeof(*r->flag_ids))))
            return fail(e, "GENERAL", "out of memory%s", NULL);
        for (size_t i = 0; i < json_array_size(ids); i++) {
            if (opt_id(json_array_get(ids, i), "flagIDs[]", &r->flag_ids[r->nflag_ids], e))
                return -1;
            r->nflag_ids++;
        }
    }
    if (r->nflag_ids + r->nflag_keys + r->nflag_tags == 0)
        return fail(e, "PARSE_ERROR", "flagIDs, flagKeys or flagTags is required%s", NULL);
    if (r->nflag_ids + r->nflag_keys + r->nflag_tags > EVALAPI_MAX_SELECTORS)
        return fail(e, "PARSE_ERROR", "too many flag selectors%s", NULL);
    if (ents == NULL || json_is_null(ents) || (json_is_array(ents) && json_array_size(ents) == 0))
        return fail(e, "PARSE_ERROR", "entities is required%s", NULL);
    if (!json_is_array(ents))
        return fail(e, "PARSE_ERROR", "entities must be an array of objects%s", NULL);
    if (json_array_size(ents) > EVALAPI_MAX_ENTITIES)
        return fail(e, "PARSE_ERROR", "entities has too many items%s", NULL);
    if (!(r->entities = calloc(json_array_size(ents), sizeof(*r->entities))))
        return fail(e, "GENERAL", "out of memory%s", NULL);
    for (size_t i = 0; i < json_array_size(ents); i++) {
        const json_t *o = json_array_get(ents, i);
        if (!json_is_object(o))
            return fail(e, "PARSE_ERROR", "entities must be an array of objects%s", NULL);
        if (parse_entity(o, &r->entities[r->nentities], e))
            return -1;
        r->nentities++;
    }
    return 0;
}

/* OFREP: {"context": {"targetingKey": "u1", ...}}; everything optional. */
static int parse_ofrep(const json_t *root, evalapi_req_t *r, perr_t *e)
{
    const json_t *ctx = json_object_get(root, "context");
    evalapi_entity_t *ent;

    if (check_context(ctx, "context", "INVALID_CONTEXT", e))
        return -1;
    if (!(r->entities = calloc(1, sizeof(*r->entities))))
        return fail(e, "GENERAL", "out of memory%s", NULL);
    r->nentities = 1;
    ent = &r->entities[0];
    if (ctx == NULL || json_is_null(ctx))
        return 0;
    ent->context = ctx;
    const json_t *tk = json_object_get(ctx, "targetingKey");
    if (tk && !json_is_null(tk)) {
        if (!json_is_string(tk))
            return fail(e, "INVALID_CONTEXT", "targetingKey must be a string%s", NULL);
        ent->id = json_string_value(tk);
        ent->id_len = json_string_length(tk);
    }
    return 0;
}

int evalapi_parse(evalapi_kind_t kind, const char *key, size_t klen,
                  const char *body, size_t len, evalapi_req_t *req, evalapi_reply_t *out)
{
    json_error_t jerr;
    perr_t e = { .code = "PARSE_ERROR", .msg = "" };
    int rc;

    evalapi_req_init(req);
    req->kind = kind;
    if (kind == EVALAPI_OFREP_ONE) {
        if (!key || !(req->key = strndup(key, klen))) {
            evalapi_reply_error(out, kind, NULL, 500, "GENERAL", "out of memory");
            return -1;
        }
    }
    /* OFREP's context is optional: an empty body is {} there. */
    if (len == 0 && is_ofrep(kind))
        req->root = json_object();
    else
        req->root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (req->root == NULL) {
        if (len == 0 && is_ofrep(kind)) {
            evalapi_reply_error(out, kind, req->key, 500, "GENERAL", "out of memory");
        } else {
            char msg[260];
            snprintf(msg, sizeof(msg), "invalid JSON: %s (line %d, column %d)", jerr.text,
                     jerr.line, jerr.column);
            evalapi_reply_error(out, kind, req->key, 400, "PARSE_ERROR", msg);
        }
        evalapi_req_free(req);
        return -1;
    }
    if (!json_is_object(req->root)) {
        evalapi_reply_error(out, kind, req->key, 400, "PARSE_ERROR", "the body must be a JSON object");
        evalapi_req_free(req);
        return -1;
    }
    switch (kind) {
    case EVALAPI_FLAGENT:       rc = parse_flagent(req->root, req, &e); break;
    case EVALAPI_FLAGENT_BATCH: rc = parse_batch(req->root, req, &e); break;
    case EVALAPI_OFREP_ONE:
    case EVALAPI_OFREP_BULK:    rc = parse_ofrep(req->root, req, &e); break;
    default:                    rc = fail(&e, "GENERAL", "unknown request%s", NULL); break;
    }
    if (rc != 0) {
        bool oom = strcmp(e.code, "GENERAL") == 0;
        evalapi_reply_error(out, kind, req->key, oom ? 500 : 400, e.code, e.msg);
        evalapi_req_free(req);
        return -1;
    }
    return 0;
}

/* ==== one evaluation ==== */

/* What one entity is evaluated as, after the identity rules. */
typedef struct subject {
    const char *id;
    size_t      id_len;      /* 0: none (a generated id is used) */
    bool        bound;       /* the identity's sub */
    eval_ctx_t  ctx;
    buf_t       roles;       /* the identity's roles, comma-joined (ctx borrows it) */
} subject_t;

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void subject_free(subject_t *s)
{
    eval_ctx_free(&s->ctx);
    buf_free(&s->roles);
}

/* Fills s for entity ent under who. @return 0 or -1 (memory, full context). */
static int subject_make(subject_t *s, const evalapi_req_t *req, const evalapi_entity_t *ent,
                        const evalapi_who_t *who)
{
    eval_ctx_init(&s->ctx);
    buf_init(&s->roles);
    s->bound = who->id && !who->evaluator && who->id->user;
    s->id = s->bound ? who->id->user : ent->id;
    s->id_len = s->bound ? strlen(who->id->user) : ent->id_len;
    if (ent->context) {
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)ent->context, k, v) {
            if (is_ofrep(req->kind) && strcmp(k, "targetingKey") == 0)
                continue;
            if (eval_ctx_add_json(&s->ctx, k, strlen(k), v) != 0)
                return -1;
        }
    }
    if (s->bound) {
        for (size_t i = 0; i < who->id->nroles; i++) {
            if (i)
                buf_putc(&s->roles, ',');
            buf_puts(&s->roles, who->id->roles[i]);
        }
        if (s->roles.err ||
            eval_ctx_add_str(&s->ctx, "sub", 3, s->id, s->id_len) != 0 ||
            eval_ctx_add_str(&s->ctx, "roles", 5, s->roles.data ? s->roles.data : "",
                             s->roles.len) != 0)
            return -1;
    }
    return 0;
}

/* Evaluates f for s; log (FLAG_MAX_SEGMENTS entries) gets the debug log. */
static void run_one(const flag_t *f, const subject_t *s, uint64_t rnd, uint64_t now_ms,
                    eval_seglog_t *log, eval_result_t *r)
{
    eval_input_t in = {
        .entity_id = s->id, .entity_id_len = s->id ? s->id_len : 0,
        .random = (int32_t)(uint32_t)rnd, .ctx = &s->ctx, .now_ms = now_ms,
        .log = log, .log_cap = log ? FLAG_MAX_SEGMENTS : 0,
    };
    eval_run(mirror_eval(f), &in, r);
}

static void put_u64_or_null(buf_t *b, uint64_t v)
{
    if (v)
        buf_printf(b, "%" PRIu64, v);
    else
        buf_puts(b, "null");
}

/* s escaped as inside a JSON string, without the quotes. */
static void put_escaped(buf_t *b, const char *s)
{
    size_t at = b->len;
    json_cstr(b, s);
    if (!b->err && b->len >= at + 2) {
        memmove(b->data + at, b->data + at + 1, b->len - at - 2);
        b->len -= 2;
        b->data[b->len] = '\0';
    }
}

static void put_json(buf_t *b, const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s == NULL) {
        b->err = 1;
        return;
    }
    buf_puts(b, s);
    free(s);
}

/* ==== Flagent ==== */

/* One Flagent result. f NULL: the flag asked for (by id or key) is not in
 * the mirror. */
static void flagent_result(buf_t *b, const flag_t *f, uint64_t want_id, const char *want_key,
                           const evalapi_entity_t *ent, const subject_t *s, uint64_t rnd,
                           bool debug, uint64_t now_ms)
{
    eval_seglog_t log[FLAG_MAX_SEGMENTS];
    eval_result_t r;
    const char *eid;
    size_t eidn;

    memset(&r, 0, sizeof(r));
    if (f)
        run_one(f, s, rnd, now_ms, debug ? log : NULL, &r);
    buf_puts(b, "{\"flagID\":");
    buf_printf(b, "%" PRIu64, f ? f->id : want_id);
    buf_puts(b, ",\"flagKey\":");
    json_cstr(b, f ? f->key : want_key ? want_key : "");
    buf_puts(b, ",\"flagSnapshotID\":");
    buf_printf(b, "%" PRIu64, f ? f->version : 0);
    buf_puts(b, ",\"flagTags\":[");
    for (size_t i = 0; f && i < f->ntags; i++) {
        if (i)
            buf_putc(b, ',');
        json_cstr(b, f->tags[i]);
    }
    buf_puts(b, "],\"segmentID\":");
    put_u64_or_null(b, r.segment ? segment_id(r.segment) : 0);
    buf_puts(b, ",\"variantID\":");
    put_u64_or_null(b, r.variant ? variant_id(r.variant) : 0);
    buf_puts(b, ",\"variantKey\":");
    json_cstr(b, r.variant ? r.variant->key : NULL);
    buf_puts(b, ",\"variantAttachment\":");
    if (r.variant && r.variant->attachment) {
        if (json_msgpack_bytes(b, r.variant->attachment, r.variant->attachment_len) != 0)
            buf_puts(b, "null");
    } else {
        buf_puts(b, "null");
    }

    /* evalContext: the entity as evaluated (the generated id, the bound sub) */
    buf_puts(b, ",\"evalContext\":{\"entityID\":");
    if (f) {
        eid = eval_result_entity(&r, &eidn);
        json_str(b, eid, eidn);
    } else {
        json_str(b, s->id ? s->id : "", s->id ? s->id_len : 0);
    }
    if (ent->type) {
        buf_puts(b, ",\"entityType\":");
        json_cstr(b, ent->type);
    }
    if (ent->context) {
        buf_puts(b, ",\"entityContext\":");
        put_json(b, ent->context);
    }
    buf_puts(b, "},\"evalDebugLog\":");
    if (!f) {
        buf_puts(b, "{\"msg\":\"");
        if (want_id)
            buf_printf(b, "flagID %" PRIu64, want_id);
        else {
            buf_puts(b, "flagKey ");
            put_escaped(b, want_key ? want_key : "");
        }
        buf_puts(b, " not found or deleted\",\"segmentDebugLogs\":[]}");
    } else if (debug) {
        buf_t msg;
        buf_init(&msg);
        eval_flag_msg(&msg, f, r.reason);
        if (msg.len == 0 && !r.variant && r.nlog > 0)
            eval_seglog_msg(&msg, &log[0], segment_id(log[0].segment),
                            log[0].variant ? variant_id(log[0].variant) : 0);
        buf_puts(b, "{\"msg\":");
        json_str(b, msg.data ? msg.data : "", msg.len);
        buf_puts(b, ",\"segmentDebugLogs\":[");
        for (size_t i = 0; i < r.nlog; i++) {
            buf_reset(&msg);
            eval_seglog_msg(&msg, &log[i], segment_id(log[i].segment),
                            log[i].variant ? variant_id(log[i].variant) : 0);
            buf_puts(b, i ? ",{\"segmentID\":" : "{\"segmentID\":");
            put_u64_or_null(b, segment_id(log[i].segment));
            buf_puts(b, ",\"msg\":");
            json_str(b, msg.data ? msg.data : "", msg.len);
            buf_putc(b, '}');
        }
        if (msg.err)
            b->err = 1;
        buf_free(&msg);
        buf_puts(b, "]}");
    } else {
        buf_puts(b, "null");
    }
    buf_printf(b, ",\"timestamp\":%" PRIu64 "}", now_ms);
}

static bool has_tag(const flag_t *f, const char *tag)
{
    for (size_t i = 0; i < f->ntags; i++)
        if (strcmp(f->tags[i], tag) == 0)
            return true;
    return false;
}

/* Whether f is selected by the batch's flagTags (ANY or ALL of them). */
static bool tags_select(const evalapi_req_t *req, const flag_t *f)
{
    if (req->nflag_tags == 0)
        return false;
    for (size_t i = 0; i < req->nflag_tags; i++) {
        bool h = has_tag(f, req->flag_tags[i]);
        if (h && !req->tags_all)
            return true;
        if (!h && req->tags_all)
            return false;
    }
    return req->tags_all;
}

static int run_flagent(const mirror_t *m, const evalapi_req_t *req, const evalapi_env_t *env,
                       evalapi_reply_t *out)
{
    buf_t *b = &out->body;
    size_t ntagged = 0, nflags;

    if (req->kind == EVALAPI_FLAGENT_BATCH) {
        for (size_t i = 0; i < mirror_count(m); i++)
            ntagged += tags_select(req, mirror_at(m, i));
        nflags = req->nflag_ids + req->nflag_keys + ntagged;
        if (nflags && req->nentities > EVALAPI_MAX_RESULTS / nflags) {
            evalapi_reply_error(out, req->kind, NULL, 400, "PARSE_ERROR",
                        "too many results (entities x flags over 100000)");
            return 0;
        }
        buf_puts(b, "{\"evaluationResults\":[");
    }
    bool first = true;
    for (size_t ei = 0; ei < req->nentities; ei++) {
        const evalapi_entity_t *ent = &req->entities[ei];
        uint64_t rnd = splitmix64(env->seed + ei);
        subject_t s;

        if (subject_make(&s, req, ent, &env->who) != 0) {
            subject_free(&s);
            return -1;
        }
        if (req->kind == EVALAPI_FLAGENT) {
            const flag_t *f = req->has_flag_id ? mirror_get_id(m, req->flag_id)
                            : mirror_get(m, req->flag_key, strlen(req->flag_key));
            flagent_result(b, f, req->flag_id, req->has_flag_id ? NULL : req->flag_key, ent,
                           &s, rnd, req->debug, env->now_ms);
            buf_putc(b, '\n');
        } else {
            for (size_t i = 0; i < req->nflag_ids; i++) {
                if (!first)
                    buf_putc(b, ',');
                first = false;
                flagent_result(b, mirror_get_id(m, req->flag_ids[i]), req->flag_ids[i], NULL,
                               ent, &s, rnd, req->debug, env->now_ms);
            }
            for (size_t i = 0; i < req->nflag_keys; i++) {
                const char *k = req->flag_keys[i];
                if (!first)
                    buf_putc(b, ',');
                first = false;
                flagent_result(b, mirror_get(m, k, strlen(k)), 0, k, ent, &s, rnd,
                               req->debug, env->now_ms);
            }
            for (size_t i = 0; ntagged && i < mirror_count(m); i++) {
                const flag_t *f = mirror_at(m, i);
                if (!tags_select(req, f))
                    continue;
                if (!first)
                    buf_putc(b, ',');
                first = false;
                flagent_result(b, f, 0, NULL, ent, &s, rnd, req->debug, env->now_ms);
            }
        }
        subject_free(&s);
        if (b->err)
            return -1;
    }
    if (req->kind == EVALAPI_FLAGENT_BATCH)
        buf_puts(b, "]}\n");
    out->status = 200;
    return b->err ? -1 : 0;
}

/* ==== OFREP ==== */

/* Whether r depended on the entity's bucket (a split, or a segment whose
 * rollout the bucket decided): such a result needs a targeting key. */
static bool needs_bucket(const eval_result_t *r, const eval_seglog_t *log)
{
    if (r->reason == EVAL_REASON_SPLIT)
        return true;
    for (size_t i = 0; i < r->nlog; i++)
        if (log[i].outcome == EVAL_SEG_NOT_ROLLED_IN)
            return true;
    return false;
}

/* One OFREP result for f into b. @return 0 (a value or no value), or 1 when
 * the result is TARGETING_KEY_MISSING (rendered as the error entry). */
static int ofrep_result(buf_t *b, const flag_t *f, const subject_t *s, uint64_t rnd,
                        uint64_t now_ms)
{
    eval_seglog_t log[FLAG_MAX_SEGMENTS];
    eval_result_t r;

    run_one(f, s, rnd, now_ms, log, &r);
    buf_puts(b, "{\"key\":");
    json_cstr(b, f->key);
    if (s->id_len == 0 && needs_bucket(&r, log)) {
        buf_puts(b, ",\"errorCode\":\"TARGETING_KEY_MISSING\",\"errorDetails\":");
        buf_puts(b, "\"flag ");
        put_escaped(b, f->key);
        buf_puts(b, " splits by entity: the context needs a targetingKey\"}");
        return 1;
    }
    if (r.variant) {
        size_t at = b->len;
        buf_puts(b, ",\"value\":");
        if (eval_variant_value(r.variant, b, NULL) != 0) {
            buf_rollback(b, at);
            if (b->err)
                return 0;
        }
        buf_puts(b, ",\"variant\":");
        json_cstr(b, r.variant->key);
    }
    buf_puts(b, ",\"reason\":");
    json_cstr(b, eval_reason_ofrep(r.reason));
    buf_printf(b, ",\"metadata\":{\"flagID\":%" PRIu64 ",\"flagSnapshotID\":%" PRIu64, f->id,
               f->version);
    if (r.segment && segment_id(r.segment))
        buf_printf(b, ",\"segmentID\":%" PRIu64, segment_id(r.segment));
    if (r.variant && variant_id(r.variant))
        buf_printf(b, ",\"variantID\":%" PRIu64, variant_id(r.variant));
    buf_puts(b, "}}");
    return 0;
}

static int run_ofrep(const mirror_t *m, const evalapi_req_t *req, const evalapi_env_t *env,
                     evalapi_reply_t *out)
{
    buf_t *b = &out->body;
    subject_t s;
    uint64_t rnd = splitmix64(env->seed);

    if (req->kind == EVALAPI_OFREP_BULK) {
        if (evalapi_etag(m, req, &env->who, out->etag) != 0)
            return -1;
        if (env->if_none_match && evalapi_etag_match(env->if_none_match, out->etag)) {
            out->status = 304;
            return 0;
        }
    }
    if (subject_make(&s, req, &req->entities[0], &env->who) != 0) {
        subject_free(&s);
        return -1;
    }
    if (req->kind == EVALAPI_OFREP_ONE) {
        const flag_t *f = mirror_get(m, req->key, strlen(req->key));
        if (f == NULL) {
            char msg[160];
            snprintf(msg, sizeof(msg), "flag %.100s%s not found", req->key,
                     strlen(req->key) > 100 ? "..." : "");
            evalapi_reply_error(out, req->kind, req->key, 404, "FLAG_NOT_FOUND", msg);
        } else {
            out->status = ofrep_result(b, f, &s, rnd, env->now_ms) ? 400 : 200;
            buf_putc(b, '\n');
        }
    } else {
        buf_puts(b, "{\"flags\":[");
        for (size_t i = 0; i < mirror_count(m); i++) {
            if (i)
                buf_putc(b, ',');
            ofrep_result(b, mirror_at(m, i), &s, splitmix64(rnd + i), env->now_ms);
        }
        buf_puts(b, "]}\n");
        out->status = 200;
    }
    subject_free(&s);
    return b->err ? -1 : 0;
}

int evalapi_run(const mirror_t *m, const evalapi_req_t *req, const evalapi_env_t *env,
                evalapi_reply_t *out)
{
    int rc;

    buf_reset(&out->body);
    out->etag[0] = '\0';
    out->status = 0;
    if (is_ofrep(req->kind))
        rc = run_ofrep(m, req, env, out);
    else
        rc = run_flagent(m, req, env, out);
    if (rc != 0)
        evalapi_reply_error(out, req->kind, req->key, 500, "GENERAL", "out of memory");
    return rc;
}

/* ==== ETag ==== */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

int evalapi_etag(const mirror_t *m, const evalapi_req_t *req, const evalapi_who_t *who,
                 char out[EVALAPI_ETAG_LEN])
{
    uint64_t h = 0xcbf29ce484222325ull;
    const evalapi_entity_t *ent = req->nentities ? &req->entities[0] : NULL;
    bool bound = who->id && !who->evaluator && who->id->user;

    h = fnv(h, "ofrep-bulk-1", 13);
    for (size_t i = 0; i < mirror_count(m); i++) {
        const flag_t *f = mirror_at(m, i);
        h = fnv(h, f->key, strlen(f->key) + 1);
        h = fnv(h, &f->version, sizeof(f->version));
    }
    if (bound) {
        h = fnv(h, "\1", 1);
        h = fnv(h, who->id->user, strlen(who->id->user) + 1);
        for (size_t i = 0; i < who->id->nroles; i++)
            h = fnv(h, who->id->roles[i], strlen(who->id->roles[i]) + 1);
    } else {
        h = fnv(h, "\2", 1);
    }
    if (ent && ent->context) {
        char *s = json_dumps(ent->context, JSON_COMPACT | JSON_SORT_KEYS);
        if (s == NULL)
            return -1;
        h = fnv(h, s, strlen(s));
        free(s);
    }
    snprintf(out, EVALAPI_ETAG_LEN, "\"%016" PRIx64 "\"", h);
    return 0;
}

bool evalapi_etag_match(const char *inm, const char *etag)
{
    size_t el = strlen(etag);
    const char *p = inm;

    if (inm == NULL || el == 0)
        return false;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        const char *q = p;
        while (*q && *q != ',')
            q++;
        const char *e = q;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e - p >= 2 && p[0] == 'W' && p[1] == '/')
            p += 2;
        if ((e - p == 1 && *p == '*') || ((size_t)(e - p) == el && memcmp(p, etag, el) == 0))
            return true;
        p = q;
    }
    return false;
}
