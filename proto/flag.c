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
 * The record's shape is written once, in the field tables below (one per
 * record type: name on the wire, offset, kind, limits, required); pack,
 * decode, JSON output, copy and free walk them, as does common/jsonin.c's
 * JSON reader. The decoder builds a field's path ("flag.segments[1].rank")
 * only when it writes an error message, not for every field it reads.
 *
 * Attachments are kept as msgpack bytes. They are bounded in size and, by
 * mp_scan, in nesting: an attachment sits four levels deep in an event
 * (body, flag, variants, variant), so it may nest MP_MAX_DEPTH - 4 levels and
 * the whole event still unpacks.
 */
#include "proto/flag.h"

#include <inttypes.h>
#include <math.h>
#include <stddef.h>
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


/* ==== the schema =========================================================
 *
 * One table per record type, fields in wire order: the order flag_pack and
 * flag_to_json write them, and the order of the decoder's "missing field"
 * checks. Limits are those of a stored record; in_max are the looser ones
 * of JSON input (jsonin), where flag_validate speaks afterwards. */

#define FLD(T, nm, member, k) \
    .name = nm, .name_len = sizeof(nm) - 1, .kind = k, .off = offsetof(T, member)
#define CNT(T, member) .count_off = offsetof(T, member)
#define REC(nm, T, fields) { nm, sizeof(T), fields, sizeof(fields) / sizeof(fields[0]) }

static const flag_field_t constraint_fields[] = {
    { FLD(flag_constraint_t, "property", property, FLAG_K_STR),
      .flags = FLAG_F_REQUIRED | FLAG_F_IN_REQUIRED,
      .max = FLAG_MAX_STRING, .in_max = FLAG_MAX_STRING },
    { FLD(flag_constraint_t, "operator", op, FLAG_K_STR),
      .flags = FLAG_F_REQUIRED | FLAG_F_IN_REQUIRED,
      .max = FLAG_MAX_STRING, .in_max = FLAG_MAX_STRING },
    { FLD(flag_constraint_t, "value", value, FLAG_K_STR),
      .flags = FLAG_F_REQUIRED | FLAG_F_IN_REQUIRED,
      .max = FLAG_MAX_STRING, .in_max = FLAG_MAX_STRING },
};

static const flag_field_t distribution_fields[] = {
    { FLD(flag_distribution_t, "variantKey", variant_key, FLAG_K_STR),
      .flags = FLAG_F_REQUIRED | FLAG_F_IN_REQUIRED,
      .max = NAME_FLAG_KEY_MAX, .in_max = FLAG_MAX_STRING },
    { FLD(flag_distribution_t, "percent", percent, FLAG_K_U32),
      .flags = FLAG_F_REQUIRED | FLAG_F_IN_REQUIRED,
      .max = UINT32_MAX, .in_max = 100 },
};

const flag_rec_t flag_rec_constraint = REC("constraint", flag_constraint_t, constraint_fields);
const flag_rec_t flag_rec_distribution =
    REC("distribution", flag_distribution_t, distribution_fields);

/* Variant and segment ids: optional (0, a record from before ids, is not
 * written), accepted on JSON input; the publisher decides what they are. */
static const flag_field_t variant_fields[] = {
    { FLD(flag_variant_t, "id", id, FLAG_K_U64), .flags = FLAG_F_OMIT_ZERO,
      .max = UINT64_MAX, .in_max = UINT64_MAX },
    { FLD(flag_variant_t, "key", key, FLAG_K_STR),
      .flags = FLAG_F_REQUIRED | FLAG_F_IN_REQUIRED,
      .max = NAME_FLAG_KEY_MAX, .in_max = FLAG_MAX_STRING },
    { FLD(flag_variant_t, "attachment", attachment, FLAG_K_ATTACH),
      CNT(flag_variant_t, attachment_len),
      .max = FLAG_MAX_ATTACHMENT, .in_max = FLAG_MAX_ATTACHMENT },
};

static const flag_field_t segment_fields[] = {
    { FLD(flag_segment_t, "id", id, FLAG_K_U64), .flags = FLAG_F_OMIT_ZERO,
      .max = UINT64_MAX, .in_max = UINT64_MAX },
    { FLD(flag_segment_t, "description", description, FLAG_K_OPTSTR),
      .max = FLAG_MAX_DESCRIPTION, .in_max = FLAG_MAX_DESCRIPTION },
    { FLD(flag_segment_t, "rank", rank, FLAG_K_U32),
      .flags = FLAG_F_REQUIRED | FLAG_F_IN_INDEX, .max = UINT32_MAX, .in_max = 1000000 },
    { FLD(flag_segment_t, "rolloutPercent", rollout_percent, FLAG_K_U32),
      .flags = FLAG_F_REQUIRED, .max = UINT32_MAX, .in_max = 100, .in_default = 100 },
    { FLD(flag_segment_t, "constraints", constraints, FLAG_K_RECS),
      CNT(flag_segment_t, nconstraints), .rec = &flag_rec_constraint,
      .max = FLAG_MAX_CONSTRAINTS, .in_max = FLAG_MAX_CONSTRAINTS },
    { FLD(flag_segment_t, "distributions", distributions, FLAG_K_RECS),
      CNT(flag_segment_t, ndistributions), .rec = &flag_rec_distribution,
      .max = FLAG_MAX_DISTRIBUTIONS, .in_max = FLAG_MAX_DISTRIBUTIONS },
};

const flag_rec_t flag_rec_variant = REC("variant", flag_variant_t, variant_fields);
const flag_rec_t flag_rec_segment = REC("segment", flag_segment_t, segment_fields);

static const flag_field_t flag_fields[] = {
    { FLD(flag_t, "id", id, FLAG_K_U64), .flags = FLAG_F_REQUIRED, .max = UINT64_MAX },
    { FLD(flag_t, "key", key, FLAG_K_STR), .flags = FLAG_F_REQUIRED, .in_bit = FLAG_IN_KEY,
      .max = NAME_FLAG_KEY_MAX, .in_max = FLAG_MAX_STRING },
    { FLD(flag_t, "enabled", enabled, FLAG_K_BOOL), .flags = FLAG_F_REQUIRED,
      .in_bit = FLAG_IN_ENABLED },
    { FLD(flag_t, "description", description, FLAG_K_OPTSTR), .in_bit = FLAG_IN_DESCRIPTION,
      .max = FLAG_MAX_DESCRIPTION, .in_max = FLAG_MAX_DESCRIPTION },
    { FLD(flag_t, "tags", tags, FLAG_K_STRS), CNT(flag_t, ntags), .in_bit = FLAG_IN_TAGS,
      .max = FLAG_MAX_TAGS, .item_max = 64, .in_max = FLAG_MAX_TAGS,
      .in_item_max = FLAG_MAX_STRING },
    { FLD(flag_t, "variants", variants, FLAG_K_RECS), CNT(flag_t, nvariants),
      .in_bit = FLAG_IN_VARIANTS, .rec = &flag_rec_variant,
      .max = FLAG_MAX_VARIANTS, .in_max = FLAG_MAX_VARIANTS },
    { FLD(flag_t, "segments", segments, FLAG_K_RECS), CNT(flag_t, nsegments),
      .in_bit = FLAG_IN_SEGMENTS, .rec = &flag_rec_segment,
      .max = FLAG_MAX_SEGMENTS, .in_max = FLAG_MAX_SEGMENTS },
    { FLD(flag_t, "version", version, FLAG_K_U64), .flags = FLAG_F_REQUIRED, .max = UINT64_MAX },
    { FLD(flag_t, "updatedAt", updated_at, FLAG_K_U64), .flags = FLAG_F_REQUIRED,
      .max = UINT64_MAX },
};

const flag_rec_t flag_rec_flag = REC("flag", flag_t, flag_fields);

#undef FLD
#undef CNT
#undef REC

/* A field of obj, by its offset. */
#define AT(obj, off, T) (*(T *)((char *)(obj) + (off)))
#define CAT(obj, off, T) (*(T const *)((const char *)(obj) + (off)))

size_t flag_path_format(const flag_path_t *p, char *dst, size_t n)
{
    size_t at;
    int w;
    if (n == 0)
        return 0;
    dst[0] = '\0';
    if (!p)
        return 0;
    at = flag_path_format(p->up, dst, n);
    if (p->name)
        w = snprintf(dst + at, n - at, "%s%s", at ? "." : "", p->name);
    else
        w = snprintf(dst + at, n - at, "[%zu]", p->index);
    at += w > 0 ? (size_t)w : 0;
    return at < n ? at : n - 1;
}

/* ==== life cycle ========================================================= */

void flag_init(flag_t *f)
{
    memset(f, 0, sizeof(*f));
}

void flag_field_free(const flag_field_t *fd, void *obj)
{
    switch (fd->kind) {
    case FLAG_K_STR:
    case FLAG_K_OPTSTR:
        free(AT(obj, fd->off, char *));
        AT(obj, fd->off, char *) = NULL;
        break;
    case FLAG_K_STRS: {
        char **v = AT(obj, fd->off, char **);
        for (size_t i = 0; i < AT(obj, fd->count_off, size_t); i++)
            free(v[i]);
        free(v);
        AT(obj, fd->off, char **) = NULL;
        AT(obj, fd->count_off, size_t) = 0;
        break;
    }
    case FLAG_K_RECS: {
        char *v = AT(obj, fd->off, char *);
        for (size_t i = 0; i < AT(obj, fd->count_off, size_t); i++)
            flag_rec_free(fd->rec, v + i * fd->rec->size);
        free(v);
        AT(obj, fd->off, char *) = NULL;
        AT(obj, fd->count_off, size_t) = 0;
        break;
    }
    case FLAG_K_ATTACH:
        free(AT(obj, fd->off, char *));
        AT(obj, fd->off, char *) = NULL;
        AT(obj, fd->count_off, size_t) = 0;
        break;
    case FLAG_K_U64:
        AT(obj, fd->off, uint64_t) = 0;
        break;
    case FLAG_K_U32:
        AT(obj, fd->off, uint32_t) = 0;
        break;
    case FLAG_K_BOOL:
        AT(obj, fd->off, bool) = false;
        break;
    }
}

void flag_rec_free(const flag_rec_t *r, void *obj)
{
    for (unsigned i = 0; i < r->nfields; i++)
        flag_field_free(&r->fields[i], obj);
    memset(obj, 0, r->size);
}

void flag_variant_free(flag_variant_t *v)
{
    flag_rec_free(&flag_rec_variant, v);
}

void flag_segment_free(flag_segment_t *s)
{
    flag_rec_free(&flag_rec_segment, s);
}

void flag_free(flag_t *f)
{
    if (f)
        flag_rec_free(&flag_rec_flag, f);
}

/* Copies src's fields into dst (zeroed by the caller). On failure dst holds
 * what was copied so far, for flag_rec_free. @return 0 or -1. */
static int rec_copy(const flag_rec_t *r, void *dst, const void *src)
{
    for (unsigned i = 0; i < r->nfields; i++) {
        const flag_field_t *fd = &r->fields[i];
        switch (fd->kind) {
        case FLAG_K_U64:
            AT(dst, fd->off, uint64_t) = CAT(src, fd->off, uint64_t);
            break;
        case FLAG_K_U32:
            AT(dst, fd->off, uint32_t) = CAT(src, fd->off, uint32_t);
            break;
        case FLAG_K_BOOL:
            AT(dst, fd->off, bool) = CAT(src, fd->off, bool);
            break;
        case FLAG_K_STR:
        case FLAG_K_OPTSTR: {
            const char *s = CAT(src, fd->off, const char *);
            if (s && !(AT(dst, fd->off, char *) = strdup(s)))
                return -1;
            break;
        }
        case FLAG_K_STRS: {
            size_t n = CAT(src, fd->count_off, size_t);
            char *const *s = CAT(src, fd->off, char *const *);
            char **d;
            if (n == 0)
                break;
            if (!(d = calloc(n, sizeof(char *))))
                return -1;
            AT(dst, fd->off, char **) = d;
            AT(dst, fd->count_off, size_t) = n;
            for (size_t j = 0; j < n; j++)
                if (s[j] && !(d[j] = strdup(s[j])))
                    return -1;
            break;
        }
        case FLAG_K_RECS: {
            size_t n = CAT(src, fd->count_off, size_t), sz = fd->rec->size;
            const char *s = CAT(src, fd->off, const char *);
            char *d;
            if (n == 0)
                break;
            if (!(d = calloc(n, sz)))
                return -1;
            AT(dst, fd->off, char *) = d;
            AT(dst, fd->count_off, size_t) = n;
            for (size_t j = 0; j < n; j++)
                if (rec_copy(fd->rec, d + j * sz, s + j * sz) != 0)
                    return -1;
            break;
        }
        case FLAG_K_ATTACH: {
            const char *s = CAT(src, fd->off, const char *);
            size_t n = CAT(src, fd->count_off, size_t);
            char *d;
            if (!s)
                break;
            if (!(d = malloc(n ? n : 1)))
                return -1;
            memcpy(d, s, n);
            AT(dst, fd->off, char *) = d;
            AT(dst, fd->count_off, size_t) = n;
            break;
        }
        }
    }
    return 0;
}

int flag_copy(flag_t *dst, const flag_t *src)
{
    flag_init(dst);
    if (rec_copy(&flag_rec_flag, dst, src) == 0)
        return 0;
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
        for (size_t j = 0; v->id && j < i; j++)
            if (f->variants[j].id == v->id)
                return verr(eb, el, "flag.variants[%zu].id: duplicate variant id", i);
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
        for (size_t j = 0; s->id && j < i; j++)
            if (f->segments[j].id == s->id)
                return verr(eb, el, "flag.segments[%zu].id: duplicate segment id", i);
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

/* Whether a field is written: optional ones are left out when empty. */
static bool field_present(const flag_field_t *fd, const void *obj)
{
    switch (fd->kind) {
    case FLAG_K_OPTSTR:
    case FLAG_K_ATTACH:
        return CAT(obj, fd->off, const char *) != NULL;
    case FLAG_K_U64:
        return !(fd->flags & FLAG_F_OMIT_ZERO) || CAT(obj, fd->off, uint64_t) != 0;
    default:
        return true;
    }
}

static int pack_str(msgpack_packer *pk, const char *s, size_t n)
{
    return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, s, n);
}

static int pack_cstr(msgpack_packer *pk, const char *s)
{
    return pack_str(pk, s, strlen(s));
}

static int pack_rec(const flag_rec_t *r, const void *obj, msgpack_packer *pk)
{
    unsigned n = 0;
    int rc;
    for (unsigned i = 0; i < r->nfields; i++)
        n += field_present(&r->fields[i], obj);
    rc = msgpack_pack_map(pk, n);
    for (unsigned i = 0; i < r->nfields; i++) {
        const flag_field_t *fd = &r->fields[i];
        if (!field_present(fd, obj))
            continue;
        rc |= pack_str(pk, fd->name, fd->name_len);
        switch (fd->kind) {
        case FLAG_K_U64:
            rc |= msgpack_pack_uint64(pk, CAT(obj, fd->off, uint64_t));
            break;
        case FLAG_K_U32:
            rc |= msgpack_pack_uint32(pk, CAT(obj, fd->off, uint32_t));
            break;
        case FLAG_K_BOOL:
            rc |= CAT(obj, fd->off, bool) ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
            break;
        case FLAG_K_STR:
        case FLAG_K_OPTSTR: {
            const char *s = CAT(obj, fd->off, const char *);
            rc |= pack_cstr(pk, s ? s : "");
            break;
        }
        case FLAG_K_STRS: {
            size_t cnt = CAT(obj, fd->count_off, size_t);
            char *const *v = CAT(obj, fd->off, char *const *);
            rc |= msgpack_pack_array(pk, cnt);
            for (size_t j = 0; j < cnt; j++)
                rc |= pack_cstr(pk, v[j] ? v[j] : "");
            break;
        }
        case FLAG_K_RECS: {
            size_t cnt = CAT(obj, fd->count_off, size_t);
            const char *v = CAT(obj, fd->off, const char *);
            rc |= msgpack_pack_array(pk, cnt);
            for (size_t j = 0; j < cnt; j++)
                rc |= pack_rec(fd->rec, v + j * fd->rec->size, pk);
            break;
        }
        case FLAG_K_ATTACH:
            /* the attachment is already msgpack: write its bytes as they are */
            rc |= pk->callback(pk->data, CAT(obj, fd->off, const char *),
                               CAT(obj, fd->count_off, size_t));
            break;
        }
    }
    return rc;
}

int flag_pack(const flag_t *f, msgpack_packer *pk)
{
    if (!f->key)
        return -1;
    return pack_rec(&flag_rec_flag, f, pk) ? -1 : 0;
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

typedef struct dctx {
    char  *eb;
    size_t el;
} dctx_t;

static int derr(dctx_t *d, const flag_path_t *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "<path>: <message>" into the error buffer. */
static int derr(dctx_t *d, const flag_path_t *path, const char *fmt, ...)
{
    if (d->eb && d->el) {
        size_t at = flag_path_format(path, d->eb, d->el);
        if (at + 2 < d->el) {
            memcpy(d->eb + at, ": ", 3);
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(d->eb + at + 2, d->el - at - 2, fmt, ap);
            va_end(ap);
        }
    }
    return -1;
}

/* A string field: str or bin (Lua's cmsgpack), no NUL byte, max bytes. */
static int get_str(dctx_t *d, const msgpack_object *o, size_t max, char **out,
                   const flag_path_t *path)
{
    const char *p;
    size_t n;
    if (o->type == MSGPACK_OBJECT_STR) {
        p = o->via.str.ptr; n = o->via.str.size;
    } else if (o->type == MSGPACK_OBJECT_BIN) {
        p = o->via.bin.ptr; n = o->via.bin.size;
    } else {
        return derr(d, path, "must be a string");
    }
    if (n > max)
        return derr(d, path, "longer than %zu bytes", max);
    if (n && memchr(p, '\0', n))
        return derr(d, path, "contains a NUL byte");
    char *s = malloc(n + 1);
    if (!s)
        return derr(d, path, "out of memory");
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    *out = s;
    return 0;
}

/* An unsigned integer: positive int, or a double holding an exact one. */
static int get_uint(dctx_t *d, const msgpack_object *o, uint64_t max, uint64_t *out,
                    const flag_path_t *path)
{
    uint64_t v;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        v = o->via.u64;
    } else if ((o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32) &&
               o->via.f64 >= 0 && o->via.f64 < 18446744073709551616.0 &&
               o->via.f64 == floor(o->via.f64)) {
        v = (uint64_t)o->via.f64;
    } else {
        return derr(d, path, "must be a non-negative integer");
    }
    if (v > max)
        return derr(d, path, "must be at most %" PRIu64, max);
    *out = v;
    return 0;
}

/* An array of at most max elements; *out gets calloc(n, size) (NULL if 0)
 * and *n its size at once, so a failure later frees the whole array. */
static int get_array(dctx_t *d, const msgpack_object *o, size_t max, size_t size,
                     void **out, size_t *n, const flag_path_t *path)
{
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return derr(d, path, "must be an array");
    if (o->via.array.size > max)
        return derr(d, path, "more than %zu elements", max);
    if (o->via.array.size == 0)
        return 0;
    *out = calloc(o->via.array.size, size);
    if (!*out)
        return derr(d, path, "out of memory");
    *n = o->via.array.size;
    return 0;
}

/* Looks a map key (str or bin) up in r's fields. @return its index, or -1
 * with a message naming the unknown or duplicate field. */
static int field_index(dctx_t *d, const msgpack_object *k, const flag_rec_t *r,
                       uint32_t *seen, const flag_path_t *path)
{
    const char *p;
    size_t n;
    if (k->type == MSGPACK_OBJECT_STR) {
        p = k->via.str.ptr; n = k->via.str.size;
    } else if (k->type == MSGPACK_OBJECT_BIN) {
        p = k->via.bin.ptr; n = k->via.bin.size;
    } else {
        return derr(d, path, "map key is not a string");
    }
    for (unsigned i = 0; i < r->nfields; i++) {
        const flag_field_t *fd = &r->fields[i];
        if (fd->name_len == n && memcmp(fd->name, p, n) == 0) {
            if (*seen & (1u << i)) {
                flag_path_t sub = { path, fd->name, 0 };
                return derr(d, &sub, "duplicate field");
            }
            *seen |= 1u << i;
            return (int)i;
        }
    }
    int shown = n > 40 ? 40 : (int)n;
    for (int i = 0; i < shown; i++)
        if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] >= 0x7f)
            shown = i;
    return derr(d, path, "unknown field \"%.*s%s\"", shown, p, shown < (int)n ? "..." : "");
}

static int unpack_rec(dctx_t *d, const flag_rec_t *r, const msgpack_object *o, void *obj,
                      const flag_path_t *path);

static int unpack_field(dctx_t *d, const flag_field_t *fd, const msgpack_object *val,
                        void *obj, const flag_path_t *path)
{
    switch (fd->kind) {
    case FLAG_K_U64:
        return get_uint(d, val, fd->max, &AT(obj, fd->off, uint64_t), path);
    case FLAG_K_U32: {
        uint64_t v;
        if (get_uint(d, val, fd->max, &v, path) != 0)
            return -1;
        AT(obj, fd->off, uint32_t) = (uint32_t)v;
        return 0;
    }
    case FLAG_K_BOOL:
        if (val->type != MSGPACK_OBJECT_BOOLEAN)
            return derr(d, path, "must be a boolean");
        AT(obj, fd->off, bool) = val->via.boolean;
        return 0;
    case FLAG_K_OPTSTR:
        if (val->type == MSGPACK_OBJECT_NIL)
            return 0;
        /* fall through */
    case FLAG_K_STR:
        return get_str(d, val, fd->max, &AT(obj, fd->off, char *), path);
    case FLAG_K_STRS: {
        char **v = NULL;
        if (get_array(d, val, fd->max, sizeof(char *), (void **)&AT(obj, fd->off, char **),
                      &AT(obj, fd->count_off, size_t), path) != 0)
            return -1;
        v = AT(obj, fd->off, char **);
        for (size_t j = 0; j < AT(obj, fd->count_off, size_t); j++) {
            flag_path_t el = { path, NULL, j };
            if (get_str(d, &val->via.array.ptr[j], fd->item_max, &v[j], &el) != 0)
                return -1;
        }
        return 0;
    }
    case FLAG_K_RECS: {
        size_t sz = fd->rec->size;
        if (get_array(d, val, fd->max, sz, (void **)&AT(obj, fd->off, char *),
                      &AT(obj, fd->count_off, size_t), path) != 0)
            return -1;
        char *v = AT(obj, fd->off, char *);
        for (size_t j = 0; j < AT(obj, fd->count_off, size_t); j++) {
            flag_path_t el = { path, NULL, j };
            if (unpack_rec(d, fd->rec, &val->via.array.ptr[j], v + j * sz, &el) != 0)
                return -1;
        }
        return 0;
    }
    case FLAG_K_ATTACH: {
        buf_t b;
        msgpack_packer pk;
        if (val->type == MSGPACK_OBJECT_NIL)
            return 0;
        buf_init(&b);
        b.limit = fd->max;
        msgpack_packer_init(&pk, &b, buf_msgpack_write);
        if (msgpack_pack_object(&pk, *val) != 0 || b.err) {
            buf_free(&b);
            return derr(d, path, "larger than %" PRIu64 " bytes", fd->max);
        }
        AT(obj, fd->off, char *) = buf_steal(&b, &AT(obj, fd->count_off, size_t));
        if (!AT(obj, fd->off, char *))
            return derr(d, path, "out of memory");
        return 0;
    }
    }
    return derr(d, path, "unsupported field");
}

static int unpack_rec(dctx_t *d, const flag_rec_t *r, const msgpack_object *o, void *obj,
                      const flag_path_t *path)
{
    uint32_t seen = 0;
    if (o->type != MSGPACK_OBJECT_MAP)
        return derr(d, path, "must be a map");
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        int fi = field_index(d, &o->via.map.ptr[i].key, r, &seen, path);
        if (fi < 0)
            return -1;
        flag_path_t sub = { path, r->fields[fi].name, 0 };
        if (unpack_field(d, &r->fields[fi], &o->via.map.ptr[i].val, obj, &sub) != 0)
            return -1;
    }
    for (unsigned i = 0; i < r->nfields; i++)
        if ((r->fields[i].flags & FLAG_F_REQUIRED) && !(seen & (1u << i)))
            return derr(d, path, "missing field \"%s\"", r->fields[i].name);
    return 0;
}

int flag_unpack(const msgpack_object *o, flag_t *f, char *errbuf, size_t errlen)
{
    static const flag_path_t root = { NULL, "flag", 0 };
    dctx_t d = { errbuf, errlen };
    flag_init(f);
    if (errbuf && errlen)
        errbuf[0] = '\0';
    if (unpack_rec(&d, &flag_rec_flag, o, f, &root) != 0 || flag_check(f, errbuf, errlen) != 0) {
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

static void json_u64(buf_t *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%" PRIu64, v);
    buf_append(b, tmp, (size_t)n);
}

static int json_rec(const flag_rec_t *r, const void *obj, buf_t *out)
{
    bool first = true;
    buf_putc(out, '{');
    for (unsigned i = 0; i < r->nfields; i++) {
        const flag_field_t *fd = &r->fields[i];
        if (!field_present(fd, obj))
            continue;
        if (!first)
            buf_putc(out, ',');
        first = false;
        buf_putc(out, '"');
        buf_append(out, fd->name, fd->name_len);
        buf_append(out, "\":", 2);
        switch (fd->kind) {
        case FLAG_K_U64:
            json_u64(out, CAT(obj, fd->off, uint64_t));
            break;
        case FLAG_K_U32:
            json_u64(out, CAT(obj, fd->off, uint32_t));
            break;
        case FLAG_K_BOOL:
            buf_puts(out, CAT(obj, fd->off, bool) ? "true" : "false");
            break;
        case FLAG_K_STR:
        case FLAG_K_OPTSTR:
            json_cstr(out, CAT(obj, fd->off, const char *));
            break;
        case FLAG_K_STRS: {
            char *const *v = CAT(obj, fd->off, char *const *);
            buf_putc(out, '[');
            for (size_t j = 0; j < CAT(obj, fd->count_off, size_t); j++) {
                if (j)
                    buf_putc(out, ',');
                json_cstr(out, v[j]);
            }
            buf_putc(out, ']');
            break;
        }
        case FLAG_K_RECS: {
            const char *v = CAT(obj, fd->off, const char *);
            buf_putc(out, '[');
            for (size_t j = 0; j < CAT(obj, fd->count_off, size_t); j++) {
                if (j)
                    buf_putc(out, ',');
                if (json_rec(fd->rec, v + j * fd->rec->size, out) != 0)
                    return -1;
            }
            buf_putc(out, ']');
            break;
        }
        case FLAG_K_ATTACH:
            if (json_msgpack_bytes(out, CAT(obj, fd->off, const char *),
                                   CAT(obj, fd->count_off, size_t)) != 0)
                return -1;
            break;
        }
    }
    buf_putc(out, '}');
    return 0;
}

int flag_to_json(const flag_t *f, buf_t *out)
{
    if (json_rec(&flag_rec_flag, f, out) != 0)
        return -1;
    return out->err ? -1 : 0;
}

bool flag_has_tag(const flag_t *f, const char *tag, size_t len)
{
    for (size_t i = 0; i < f->ntags; i++)
        if (f->tags[i] && strlen(f->tags[i]) == len && memcmp(f->tags[i], tag, len) == 0)
            return true;
    return false;
}
