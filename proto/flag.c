/*
 * flag — the flag record: validation, msgpack encoding and decoding, JSON.
 *
 * The msgpack form is a map keyed by Flagent's JSON field names, so the same
 * names are used everywhere (P:flags, events, SSE/WS JSON). Optional values
 * (description, attachment) are omitted when NULL rather than written as nil.
 *
 * The decoder is strict because its input crosses a trust boundary (Redis,
 * and whatever wrote to it): every field is type-checked, unknown and
 * duplicate fields are refused, counts are checked against the limits before
 * anything is allocated, and each error names the offending field
 * ("flag.segments[1].distributions[0].percent: must be 0-100"). It is lenient
 * only where Redis's Lua cmsgpack differs from msgpack-c: strings may come as
 * bin, integers as doubles holding an exact non-negative integer, and a
 * missing or nil optional field is the same as an absent one.
 *
 * Attachments are kept as msgpack bytes. They are bounded in size and, by
 * mp_scan, in nesting: an attachment sits four levels deep in an event
 * (body, flag, variants, variant), so it may nest MP_MAX_DEPTH - 4 levels and
 * the whole event still unpacks.
 */
#include "proto/flag.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/json.h"
#include "proto/mpscan.h"
#include "proto/names.h"

_Static_assert(FLAG_MAX_ATTACHMENT_DEPTH == MP_MAX_DEPTH - 4,
               "an attachment must stay unpackable inside an event");

/* Flagent's constraint operators. */
static const char *const flag_ops[] = {
    "EQ", "NEQ", "LT", "LTE", "GT", "GTE", "EREG", "NEREG",
    "IN", "NOTIN", "CONTAINS", "NOTCONTAINS", NULL
};

/* ==== life cycle ========================================================= */

void flag_init(flag_t *f)
{
    memset(f, 0, sizeof(*f));
}

void flag_variant_free(flag_variant_t *v)
{
    free(v->key);
    free(v->attachment);
    memset(v, 0, sizeof(*v));
}

void flag_segment_free(flag_segment_t *s)
{
    free(s->description);
    for (size_t i = 0; i < s->nconstraints; i++) {
        free(s->constraints[i].property);
        free(s->constraints[i].op);
        free(s->constraints[i].value);
    }
    free(s->constraints);
    for (size_t i = 0; i < s->ndistributions; i++)
        free(s->distributions[i].variant_key);
    free(s->distributions);
    memset(s, 0, sizeof(*s));
}

void flag_free(flag_t *f)
{
    if (!f)
        return;
    free(f->key);
    free(f->description);
    for (size_t i = 0; i < f->ntags; i++)
        free(f->tags[i]);
    free(f->tags);
    for (size_t i = 0; i < f->nvariants; i++)
        flag_variant_free(&f->variants[i]);
    free(f->variants);
    for (size_t i = 0; i < f->nsegments; i++)
        flag_segment_free(&f->segments[i]);
    free(f->segments);
    flag_init(f);
}

/* strdup that keeps NULL as NULL; *ok is cleared on allocation failure. */
static char *dup_or_null(const char *s, int *ok)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *ok = 0;
    return d;
}

static void *dup_bytes(const void *p, size_t n, int *ok)
{
    if (!p)
        return NULL;
    void *d = malloc(n ? n : 1);
    if (!d) {
        *ok = 0;
        return NULL;
    }
    memcpy(d, p, n);
    return d;
}

int flag_copy(flag_t *dst, const flag_t *src)
{
    int ok = 1;
    flag_init(dst);
    dst->id = src->id;
    dst->enabled = src->enabled;
    dst->version = src->version;
    dst->updated_at = src->updated_at;
    dst->key = dup_or_null(src->key, &ok);
    dst->description = dup_or_null(src->description, &ok);
    if (src->ntags) {
        dst->tags = calloc(src->ntags, sizeof(char *));
        if (!dst->tags)
            goto fail;
        dst->ntags = src->ntags;
        for (size_t i = 0; i < src->ntags; i++)
            dst->tags[i] = dup_or_null(src->tags[i], &ok);
    }
    if (src->nvariants) {
        dst->variants = calloc(src->nvariants, sizeof(flag_variant_t));
        if (!dst->variants)
            goto fail;
        dst->nvariants = src->nvariants;
        for (size_t i = 0; i < src->nvariants; i++) {
            const flag_variant_t *v = &src->variants[i];
            dst->variants[i].key = dup_or_null(v->key, &ok);
            dst->variants[i].attachment = dup_bytes(v->attachment, v->attachment_len, &ok);
            dst->variants[i].attachment_len = v->attachment ? v->attachment_len : 0;
        }
    }
    if (src->nsegments) {
        dst->segments = calloc(src->nsegments, sizeof(flag_segment_t));
        if (!dst->segments)
            goto fail;
        dst->nsegments = src->nsegments;
        for (size_t i = 0; i < src->nsegments; i++) {
            const flag_segment_t *s = &src->segments[i];
            flag_segment_t *d = &dst->segments[i];
            d->rank = s->rank;
            d->rollout_percent = s->rollout_percent;
            d->description = dup_or_null(s->description, &ok);
            if (s->nconstraints) {
                d->constraints = calloc(s->nconstraints, sizeof(flag_constraint_t));
                if (!d->constraints)
                    goto fail;
                d->nconstraints = s->nconstraints;
                for (size_t j = 0; j < s->nconstraints; j++) {
                    d->constraints[j].property = dup_or_null(s->constraints[j].property, &ok);
                    d->constraints[j].op = dup_or_null(s->constraints[j].op, &ok);
                    d->constraints[j].value = dup_or_null(s->constraints[j].value, &ok);
                }
            }
            if (s->ndistributions) {
                d->distributions = calloc(s->ndistributions, sizeof(flag_distribution_t));
                if (!d->distributions)
                    goto fail;
                d->ndistributions = s->ndistributions;
                for (size_t j = 0; j < s->ndistributions; j++) {
                    d->distributions[j].percent = s->distributions[j].percent;
                    d->distributions[j].variant_key =
                        dup_or_null(s->distributions[j].variant_key, &ok);
                }
            }
        }
    }
    if (ok)
        return 0;
fail:
    flag_free(dst);
    return -1;
}

/* ==== validation ========================================================= */

static int verr(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int verr(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (errbuf && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int op_known(const char *op)
{
    for (int i = 0; flag_ops[i]; i++)
        if (strcmp(op, flag_ops[i]) == 0)
            return 1;
    return 0;
}

/* The checks behind flag_validate, with the field's path in the message. */
static int flag_check(const flag_t *f, char *eb, size_t el)
{
    const char *e;

    if (name_flag_key_valid(f->key, f->key ? strlen(f->key) : 0, &e) != 0)
        return verr(eb, el, "flag.key: %s", e);
    if (f->description && strlen(f->description) > FLAG_MAX_DESCRIPTION)
        return verr(eb, el, "flag.description: longer than %d bytes", FLAG_MAX_DESCRIPTION);
    if (f->ntags > FLAG_MAX_TAGS || (f->ntags && !f->tags))
        return verr(eb, el, "flag.tags: more than %d tags", FLAG_MAX_TAGS);
    for (size_t i = 0; i < f->ntags; i++)
        if (name_tag_valid(f->tags[i], f->tags[i] ? strlen(f->tags[i]) : 0, &e) != 0)
            return verr(eb, el, "flag.tags[%zu]: %s", i, e);
    if (f->nvariants > FLAG_MAX_VARIANTS || (f->nvariants && !f->variants))
        return verr(eb, el, "flag.variants: more than %d variants", FLAG_MAX_VARIANTS);
    for (size_t i = 0; i < f->nvariants; i++) {
        const flag_variant_t *v = &f->variants[i];
        if (name_flag_key_valid(v->key, v->key ? strlen(v->key) : 0, &e) != 0)
            return verr(eb, el, "flag.variants[%zu].key: variant key must be 1-128 "
                        "bytes of [A-Za-z0-9_./:-]", i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(f->variants[j].key, v->key) == 0)
                return verr(eb, el, "flag.variants[%zu].key: duplicate variant key", i);
        if (v->attachment) {
            size_t end;
            if (v->attachment_len > FLAG_MAX_ATTACHMENT)
                return verr(eb, el, "flag.variants[%zu].attachment: larger than %d bytes",
                            i, FLAG_MAX_ATTACHMENT);
            if (mp_scan(v->attachment, v->attachment_len, FLAG_MAX_ATTACHMENT_DEPTH,
                        MP_SCAN_JSON, &end, &e) != 0)
                return verr(eb, el, "flag.variants[%zu].attachment: %s", i, e);
            if (end != v->attachment_len)
                return verr(eb, el, "flag.variants[%zu].attachment: trailing bytes", i);
        }
    }
    if (f->nsegments > FLAG_MAX_SEGMENTS || (f->nsegments && !f->segments))
        return verr(eb, el, "flag.segments: more than %d segments", FLAG_MAX_SEGMENTS);
    for (size_t i = 0; i < f->nsegments; i++) {
        const flag_segment_t *s = &f->segments[i];
        if (s->description && strlen(s->description) > FLAG_MAX_DESCRIPTION)
            return verr(eb, el, "flag.segments[%zu].description: longer than %d bytes",
                        i, FLAG_MAX_DESCRIPTION);
        if (s->rollout_percent > 100)
            return verr(eb, el, "flag.segments[%zu].rolloutPercent: must be 0-100", i);
        if (s->nconstraints > FLAG_MAX_CONSTRAINTS || (s->nconstraints && !s->constraints))
            return verr(eb, el, "flag.segments[%zu].constraints: more than %d constraints",
                        i, FLAG_MAX_CONSTRAINTS);
        for (size_t j = 0; j < s->nconstraints; j++) {
            const flag_constraint_t *c = &s->constraints[j];
            size_t pl = c->property ? strlen(c->property) : 0;
            if (pl == 0 || pl > FLAG_MAX_STRING)
                return verr(eb, el, "flag.segments[%zu].constraints[%zu].property: "
                            "must be 1-%d bytes", i, j, FLAG_MAX_STRING);
            if (!c->op || !op_known(c->op))
                return verr(eb, el, "flag.segments[%zu].constraints[%zu].operator: must be "
                            "one of EQ NEQ LT LTE GT GTE EREG NEREG IN NOTIN CONTAINS "
                            "NOTCONTAINS", i, j);
            if (!c->value || strlen(c->value) > FLAG_MAX_STRING)
                return verr(eb, el, "flag.segments[%zu].constraints[%zu].value: "
                            "must be a string of at most %d bytes", i, j, FLAG_MAX_STRING);
        }
        if (s->ndistributions > FLAG_MAX_DISTRIBUTIONS ||
            (s->ndistributions && !s->distributions))
            return verr(eb, el, "flag.segments[%zu].distributions: more than %d "
                        "distributions", i, FLAG_MAX_DISTRIBUTIONS);
        for (size_t j = 0; j < s->ndistributions; j++) {
            const flag_distribution_t *d = &s->distributions[j];
            if (name_flag_key_valid(d->variant_key,
                                    d->variant_key ? strlen(d->variant_key) : 0, &e) != 0)
                return verr(eb, el, "flag.segments[%zu].distributions[%zu].variantKey: "
                            "variant key must be 1-128 bytes of [A-Za-z0-9_./:-]", i, j);
            if (d->percent > 100)
                return verr(eb, el, "flag.segments[%zu].distributions[%zu].percent: "
                            "must be 0-100", i, j);
        }
    }
    return 0;
}

int flag_validate(const flag_t *f, const char **err)
{
    static _Thread_local char msg[256];
    if (flag_check(f, msg, sizeof(msg)) != 0) {
        if (err)
            *err = msg;
        return -1;
    }
    return 0;
}

/* ==== msgpack encoding =================================================== */

static int pack_cstr(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, s, n);
}

#define PACK_KEY(pk, lit) pack_cstr(pk, lit)

int flag_pack(const flag_t *f, msgpack_packer *pk)
{
    int r = 0;
    if (!f->key)
        return -1;
    r |= msgpack_pack_map(pk, 8 + (f->description != NULL));
    r |= PACK_KEY(pk, "id") | msgpack_pack_uint64(pk, f->id);
    r |= PACK_KEY(pk, "key") | pack_cstr(pk, f->key);
    r |= PACK_KEY(pk, "enabled") |
         (f->enabled ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
    if (f->description)
        r |= PACK_KEY(pk, "description") | pack_cstr(pk, f->description);
    r |= PACK_KEY(pk, "tags") | msgpack_pack_array(pk, f->ntags);
    for (size_t i = 0; i < f->ntags; i++)
        r |= pack_cstr(pk, f->tags[i] ? f->tags[i] : "");
    r |= PACK_KEY(pk, "variants") | msgpack_pack_array(pk, f->nvariants);
    for (size_t i = 0; i < f->nvariants; i++) {
        const flag_variant_t *v = &f->variants[i];
        r |= msgpack_pack_map(pk, 1 + (v->attachment != NULL));
        r |= PACK_KEY(pk, "key") | pack_cstr(pk, v->key ? v->key : "");
        if (v->attachment) {
            r |= PACK_KEY(pk, "attachment");
            /* the attachment is already msgpack: write its bytes as they are */
            r |= pk->callback(pk->data, v->attachment, v->attachment_len);
        }
    }
    r |= PACK_KEY(pk, "segments") | msgpack_pack_array(pk, f->nsegments);
    for (size_t i = 0; i < f->nsegments; i++) {
        const flag_segment_t *s = &f->segments[i];
        r |= msgpack_pack_map(pk, 4 + (s->description != NULL));
        if (s->description)
            r |= PACK_KEY(pk, "description") | pack_cstr(pk, s->description);
        r |= PACK_KEY(pk, "rank") | msgpack_pack_uint32(pk, s->rank);
        r |= PACK_KEY(pk, "rolloutPercent") | msgpack_pack_uint32(pk, s->rollout_percent);
        r |= PACK_KEY(pk, "constraints") | msgpack_pack_array(pk, s->nconstraints);
        for (size_t j = 0; j < s->nconstraints; j++) {
            const flag_constraint_t *c = &s->constraints[j];
            r |= msgpack_pack_map(pk, 3);
            r |= PACK_KEY(pk, "property") | pack_cstr(pk, c->property ? c->property : "");
            r |= PACK_KEY(pk, "operator") | pack_cstr(pk, c->op ? c->op : "");
            r |= PACK_KEY(pk, "value") | pack_cstr(pk, c->value ? c->value : "");
        }
        r |= PACK_KEY(pk, "distributions") | msgpack_pack_array(pk, s->ndistributions);
        for (size_t j = 0; j < s->ndistributions; j++) {
            const flag_distribution_t *d = &s->distributions[j];
            r |= msgpack_pack_map(pk, 2);
            r |= PACK_KEY(pk, "variantKey") |
                 pack_cstr(pk, d->variant_key ? d->variant_key : "");
            r |= PACK_KEY(pk, "percent") | msgpack_pack_uint32(pk, d->percent);
        }
    }
    r |= PACK_KEY(pk, "version") | msgpack_pack_uint64(pk, f->version);
    r |= PACK_KEY(pk, "updatedAt") | msgpack_pack_uint64(pk, f->updated_at);
    return r ? -1 : 0;
}

int flag_encode(const flag_t *f, buf_t *out)
{
    msgpack_packer pk;
    size_t start = out->len;
    const char *err;
    if (flag_validate(f, &err) != 0)
        return -1;
    msgpack_packer_init(&pk, out, buf_msgpack_write);
    if (flag_pack(f, &pk) != 0 || out->err) {
        return buf_rollback(out, start);
    }
    return 0;
}

/* ==== msgpack decoding =================================================== */

/* snprintf for field paths: a path cut short still reads fine in a message. */
static void mkpath(char *dst, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, n, fmt, ap);
    va_end(ap);
}

typedef struct dctx {
    char  *eb;
    size_t el;
} dctx_t;

/* A string field: str or bin (Lua's cmsgpack), no NUL byte, max bytes. */
static int get_str(dctx_t *d, const msgpack_object *o, size_t max, char **out,
                   const char *path)
{
    const char *p;
    size_t n;
    if (o->type == MSGPACK_OBJECT_STR) {
        p = o->via.str.ptr; n = o->via.str.size;
    } else if (o->type == MSGPACK_OBJECT_BIN) {
        p = o->via.bin.ptr; n = o->via.bin.size;
    } else {
        return verr(d->eb, d->el, "%s: must be a string", path);
    }
    if (n > max)
        return verr(d->eb, d->el, "%s: longer than %zu bytes", path, max);
    if (n && memchr(p, '\0', n))
        return verr(d->eb, d->el, "%s: contains a NUL byte", path);
    char *s = malloc(n + 1);
    if (!s)
        return verr(d->eb, d->el, "%s: out of memory", path);
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    *out = s;
    return 0;
}

/* An unsigned integer: positive int, or a double holding an exact one. */
static int get_uint(dctx_t *d, const msgpack_object *o, uint64_t max, uint64_t *out,
                    const char *path)
{
    uint64_t v;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        v = o->via.u64;
    } else if ((o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32) &&
               o->via.f64 >= 0 && o->via.f64 < 18446744073709551616.0 &&
               o->via.f64 == floor(o->via.f64)) {
        v = (uint64_t)o->via.f64;
    } else {
        return verr(d->eb, d->el, "%s: must be a non-negative integer", path);
    }
    if (v > max)
        return verr(d->eb, d->el, "%s: must be at most %" PRIu64, path, max);
    *out = v;
    return 0;
}

static int get_u32(dctx_t *d, const msgpack_object *o, uint32_t *out, const char *path)
{
    uint64_t v;
    if (get_uint(d, o, UINT32_MAX, &v, path) != 0)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* Matches a map key (str or bin) against a field name. */
static int key_is(const msgpack_object *k, const char *name)
{
    const char *p;
    size_t n, l = strlen(name);
    if (k->type == MSGPACK_OBJECT_STR) {
        p = k->via.str.ptr; n = k->via.str.size;
    } else if (k->type == MSGPACK_OBJECT_BIN) {
        p = k->via.bin.ptr; n = k->via.bin.size;
    } else {
        return 0;
    }
    return n == l && memcmp(p, name, n) == 0;
}

/* Looks a map key up in names[] (NULL-terminated). @return its index, or -1
 * with a message naming the unknown field. */
static int field_index(dctx_t *d, const msgpack_object *k, const char *const *names,
                       unsigned *seen, const char *path)
{
    for (int i = 0; names[i]; i++) {
        if (key_is(k, names[i])) {
            if (*seen & (1u << i))
                return verr(d->eb, d->el, "%s.%s: duplicate field", path, names[i]);
            *seen |= 1u << i;
            return i;
        }
    }
    if (k->type == MSGPACK_OBJECT_STR || k->type == MSGPACK_OBJECT_BIN) {
        const char *p = k->type == MSGPACK_OBJECT_STR ? k->via.str.ptr : k->via.bin.ptr;
        uint32_t n = k->type == MSGPACK_OBJECT_STR ? k->via.str.size : k->via.bin.size;
        int shown = n > 40 ? 40 : (int)n;
        for (int i = 0; i < shown; i++)
            if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] >= 0x7f)
                shown = i;
        return verr(d->eb, d->el, "%s: unknown field \"%.*s%s\"", path, shown, p,
                    shown < (int)n ? "..." : "");
    }
    return verr(d->eb, d->el, "%s: map key is not a string", path);
}

static int missing(dctx_t *d, unsigned seen, unsigned required, const char *const *names,
                   const char *path)
{
    for (int i = 0; names[i]; i++)
        if ((required & (1u << i)) && !(seen & (1u << i)))
            return verr(d->eb, d->el, "%s: missing field \"%s\"", path, names[i]);
    return 0;
}

/* An array of at most max elements; *out gets calloc(n, size) (NULL if 0). */
static int get_array(dctx_t *d, const msgpack_object *o, size_t max, size_t size,
                     void **out, size_t *n, const char *path)
{
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return verr(d->eb, d->el, "%s: must be an array", path);
    if (o->via.array.size > max)
        return verr(d->eb, d->el, "%s: more than %zu elements", path, max);
    *n = 0;
    *out = NULL;
    if (o->via.array.size == 0)
        return 0;
    *out = calloc(o->via.array.size, size);
    if (!*out)
        return verr(d->eb, d->el, "%s: out of memory", path);
    *n = o->via.array.size;
    return 0;
}

static int get_map(dctx_t *d, const msgpack_object *o, const char *path)
{
    if (o->type != MSGPACK_OBJECT_MAP)
        return verr(d->eb, d->el, "%s: must be a map", path);
    return 0;
}

static int unpack_variant(dctx_t *d, const msgpack_object *o, flag_variant_t *v,
                          const char *path)
{
    static const char *const names[] = { "key", "attachment", NULL };
    char sub[96];
    unsigned seen = 0;
    if (get_map(d, o, path) != 0)
        return -1;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *val = &o->via.map.ptr[i].val;
        int fi = field_index(d, k, names, &seen, path);
        if (fi < 0)
            return -1;
        mkpath(sub, sizeof(sub), "%s.%s", path, names[fi]);
        if (fi == 0) {
            if (get_str(d, val, NAME_FLAG_KEY_MAX, &v->key, sub) != 0)
                return -1;
        } else if (val->type != MSGPACK_OBJECT_NIL) {
            buf_t b;
            msgpack_packer pk;
            buf_init(&b);
            b.limit = FLAG_MAX_ATTACHMENT;
            msgpack_packer_init(&pk, &b, buf_msgpack_write);
            if (msgpack_pack_object(&pk, *val) != 0 || b.err) {
                buf_free(&b);
                return verr(d->eb, d->el, "%s: larger than %d bytes", sub,
                            FLAG_MAX_ATTACHMENT);
            }
            v->attachment = buf_steal(&b, &v->attachment_len);
            if (!v->attachment)
                return verr(d->eb, d->el, "%s: out of memory", sub);
        }
    }
    return missing(d, seen, 1u, names, path);
}

static int unpack_constraint(dctx_t *d, const msgpack_object *o, flag_constraint_t *c,
                             const char *path)
{
    static const char *const names[] = { "property", "operator", "value", NULL };
    char sub[128];
    unsigned seen = 0;
    if (get_map(d, o, path) != 0)
        return -1;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *val = &o->via.map.ptr[i].val;
        int fi = field_index(d, k, names, &seen, path);
        if (fi < 0)
            return -1;
        mkpath(sub, sizeof(sub), "%s.%s", path, names[fi]);
        char **dst = fi == 0 ? &c->property : fi == 1 ? &c->op : &c->value;
        if (get_str(d, val, FLAG_MAX_STRING, dst, sub) != 0)
            return -1;
    }
    return missing(d, seen, 7u, names, path);
}

static int unpack_distribution(dctx_t *d, const msgpack_object *o, flag_distribution_t *x,
                               const char *path)
{
    static const char *const names[] = { "variantKey", "percent", NULL };
    char sub[128];
    unsigned seen = 0;
    if (get_map(d, o, path) != 0)
        return -1;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *val = &o->via.map.ptr[i].val;
        int fi = field_index(d, k, names, &seen, path);
        if (fi < 0)
            return -1;
        mkpath(sub, sizeof(sub), "%s.%s", path, names[fi]);
        if (fi == 0 ? get_str(d, val, NAME_FLAG_KEY_MAX, &x->variant_key, sub)
                    : get_u32(d, val, &x->percent, sub))
            return -1;
    }
    return missing(d, seen, 3u, names, path);
}

static int unpack_segment(dctx_t *d, const msgpack_object *o, flag_segment_t *s,
                          const char *path)
{
    static const char *const names[] = {
        "description", "rank", "rolloutPercent", "constraints", "distributions", NULL
    };
    char sub[96], el[128];
    unsigned seen = 0;
    if (get_map(d, o, path) != 0)
        return -1;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *val = &o->via.map.ptr[i].val;
        int fi = field_index(d, k, names, &seen, path);
        if (fi < 0)
            return -1;
        mkpath(sub, sizeof(sub), "%s.%s", path, names[fi]);
        switch (fi) {
        case 0:
            if (val->type != MSGPACK_OBJECT_NIL &&
                get_str(d, val, FLAG_MAX_DESCRIPTION, &s->description, sub) != 0)
                return -1;
            break;
        case 1:
            if (get_u32(d, val, &s->rank, sub) != 0)
                return -1;
            break;
        case 2:
            if (get_u32(d, val, &s->rollout_percent, sub) != 0)
                return -1;
            break;
        case 3:
            if (get_array(d, val, FLAG_MAX_CONSTRAINTS, sizeof(flag_constraint_t),
                          (void **)&s->constraints, &s->nconstraints, sub) != 0)
                return -1;
            for (size_t j = 0; j < s->nconstraints; j++) {
                mkpath(el, sizeof(el), "%s[%zu]", sub, j);
                if (unpack_constraint(d, &val->via.array.ptr[j], &s->constraints[j], el))
                    return -1;
            }
            break;
        case 4:
            if (get_array(d, val, FLAG_MAX_DISTRIBUTIONS, sizeof(flag_distribution_t),
                          (void **)&s->distributions, &s->ndistributions, sub) != 0)
                return -1;
            for (size_t j = 0; j < s->ndistributions; j++) {
                mkpath(el, sizeof(el), "%s[%zu]", sub, j);
                if (unpack_distribution(d, &val->via.array.ptr[j], &s->distributions[j], el))
                    return -1;
            }
            break;
        }
    }
    return missing(d, seen, (1u << 1) | (1u << 2), names, path);
}

enum { F_ID, F_KEY, F_ENABLED, F_DESCRIPTION, F_TAGS, F_VARIANTS, F_SEGMENTS,
       F_VERSION, F_UPDATED_AT };

static int flag_unpack_fields(dctx_t *d, const msgpack_object *o, flag_t *f)
{
    static const char *const names[] = {
        "id", "key", "enabled", "description", "tags", "variants", "segments",
        "version", "updatedAt", NULL
    };
    const char *path = "flag";
    char sub[64], el[96];
    unsigned seen = 0;
    if (get_map(d, o, path) != 0)
        return -1;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *val = &o->via.map.ptr[i].val;
        int fi = field_index(d, k, names, &seen, path);
        if (fi < 0)
            return -1;
        mkpath(sub, sizeof(sub), "%s.%s", path, names[fi]);
        switch (fi) {
        case F_ID:
            if (get_uint(d, val, UINT64_MAX, &f->id, sub) != 0)
                return -1;
            break;
        case F_KEY:
            if (get_str(d, val, NAME_FLAG_KEY_MAX, &f->key, sub) != 0)
                return -1;
            break;
        case F_ENABLED:
            if (val->type != MSGPACK_OBJECT_BOOLEAN)
                return verr(d->eb, d->el, "%s: must be a boolean", sub);
            f->enabled = val->via.boolean;
            break;
        case F_DESCRIPTION:
            if (val->type != MSGPACK_OBJECT_NIL &&
                get_str(d, val, FLAG_MAX_DESCRIPTION, &f->description, sub) != 0)
                return -1;
            break;
        case F_TAGS:
            if (get_array(d, val, FLAG_MAX_TAGS, sizeof(char *), (void **)&f->tags,
                          &f->ntags, sub) != 0)
                return -1;
            for (size_t j = 0; j < f->ntags; j++) {
                mkpath(el, sizeof(el), "%s[%zu]", sub, j);
                if (get_str(d, &val->via.array.ptr[j], 64, &f->tags[j], el) != 0)
                    return -1;
            }
            break;
        case F_VARIANTS:
            if (get_array(d, val, FLAG_MAX_VARIANTS, sizeof(flag_variant_t),
                          (void **)&f->variants, &f->nvariants, sub) != 0)
                return -1;
            for (size_t j = 0; j < f->nvariants; j++) {
                mkpath(el, sizeof(el), "%s[%zu]", sub, j);
                if (unpack_variant(d, &val->via.array.ptr[j], &f->variants[j], el) != 0)
                    return -1;
            }
            break;
        case F_SEGMENTS:
            if (get_array(d, val, FLAG_MAX_SEGMENTS, sizeof(flag_segment_t),
                          (void **)&f->segments, &f->nsegments, sub) != 0)
                return -1;
            for (size_t j = 0; j < f->nsegments; j++) {
                mkpath(el, sizeof(el), "%s[%zu]", sub, j);
                if (unpack_segment(d, &val->via.array.ptr[j], &f->segments[j], el) != 0)
                    return -1;
            }
            break;
        case F_VERSION:
            if (get_uint(d, val, UINT64_MAX, &f->version, sub) != 0)
                return -1;
            break;
        case F_UPDATED_AT:
            if (get_uint(d, val, UINT64_MAX, &f->updated_at, sub) != 0)
                return -1;
            break;
        }
    }
    unsigned required = (1u << F_ID) | (1u << F_KEY) | (1u << F_ENABLED) |
                        (1u << F_VERSION) | (1u << F_UPDATED_AT);
    if (missing(d, seen, required, names, path) != 0)
        return -1;
    return flag_check(f, d->eb, d->el);
}

int flag_unpack(const msgpack_object *o, flag_t *f, char *errbuf, size_t errlen)
{
    dctx_t d = { errbuf, errlen };
    flag_init(f);
    if (errbuf && errlen)
        errbuf[0] = '\0';
    if (flag_unpack_fields(&d, o, f) != 0) {
        flag_free(f);
        return -1;
    }
    return 0;
}

int flag_decode(const char *p, size_t n, flag_t *f, char *errbuf, size_t errlen)
{
    const char *e;
    size_t end, off = 0;

    flag_init(f);
    if (!p || n == 0)
        return verr(errbuf, errlen, "flag: empty input");
    if (mp_scan(p, n, MP_MAX_DEPTH, 0, &end, &e) != 0)
        return verr(errbuf, errlen, "flag: %s", e);
    if (end != n)
        return verr(errbuf, errlen, "flag: %zu trailing bytes after the record", n - end);

    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    int r;
    if (msgpack_unpack_next(&u, p, n, &off) != MSGPACK_UNPACK_SUCCESS || off != n)
        r = verr(errbuf, errlen, "flag: malformed msgpack");
    else
        r = flag_unpack(&u.data, f, errbuf, errlen);
    msgpack_unpacked_destroy(&u);
    return r;
}

/* ==== JSON =============================================================== */

static void json_key(buf_t *b, const char *lit)
{
    buf_puts(b, lit);
}

static void json_u64(buf_t *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%" PRIu64, v);
    buf_append(b, tmp, (size_t)n);
}

int flag_to_json(const flag_t *f, buf_t *out)
{
    json_key(out, "{\"id\":");
    json_u64(out, f->id);
    json_key(out, ",\"key\":");
    json_cstr(out, f->key);
    json_key(out, f->enabled ? ",\"enabled\":true" : ",\"enabled\":false");
    if (f->description) {
        json_key(out, ",\"description\":");
        json_cstr(out, f->description);
    }
    json_key(out, ",\"tags\":[");
    for (size_t i = 0; i < f->ntags; i++) {
        if (i)
            buf_putc(out, ',');
        json_cstr(out, f->tags[i]);
    }
    json_key(out, "],\"variants\":[");
    for (size_t i = 0; i < f->nvariants; i++) {
        const flag_variant_t *v = &f->variants[i];
        json_key(out, i ? ",{\"key\":" : "{\"key\":");
        json_cstr(out, v->key);
        if (v->attachment) {
            json_key(out, ",\"attachment\":");
            if (json_msgpack_bytes(out, v->attachment, v->attachment_len) != 0)
                return -1;
        }
        buf_putc(out, '}');
    }
    json_key(out, "],\"segments\":[");
    for (size_t i = 0; i < f->nsegments; i++) {
        const flag_segment_t *s = &f->segments[i];
        buf_puts(out, i ? ",{" : "{");
        if (s->description) {
            json_key(out, "\"description\":");
            json_cstr(out, s->description);
            buf_putc(out, ',');
        }
        json_key(out, "\"rank\":");
        json_u64(out, s->rank);
        json_key(out, ",\"rolloutPercent\":");
        json_u64(out, s->rollout_percent);
        json_key(out, ",\"constraints\":[");
        for (size_t j = 0; j < s->nconstraints; j++) {
            const flag_constraint_t *c = &s->constraints[j];
            json_key(out, j ? ",{\"property\":" : "{\"property\":");
            json_cstr(out, c->property);
            json_key(out, ",\"operator\":");
            json_cstr(out, c->op);
            json_key(out, ",\"value\":");
            json_cstr(out, c->value);
            buf_putc(out, '}');
        }
        json_key(out, "],\"distributions\":[");
        for (size_t j = 0; j < s->ndistributions; j++) {
            const flag_distribution_t *d = &s->distributions[j];
            json_key(out, j ? ",{\"variantKey\":" : "{\"variantKey\":");
            json_cstr(out, d->variant_key);
            json_key(out, ",\"percent\":");
            json_u64(out, d->percent);
            buf_putc(out, '}');
        }
        json_key(out, "]}");
    }
    json_key(out, "],\"version\":");
    json_u64(out, f->version);
    json_key(out, ",\"updatedAt\":");
    json_u64(out, f->updated_at);
    buf_putc(out, '}');
    return out->err ? -1 : 0;
}

bool flag_has_tag(const flag_t *f, const char *tag, size_t len)
{
    for (size_t i = 0; i < f->ntags; i++)
        if (f->tags[i] && strlen(f->tags[i]) == len && memcmp(f->tags[i], tag, len) == 0)
            return true;
    return false;
}
