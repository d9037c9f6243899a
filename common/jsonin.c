/*
 * jsonin — jansson in, flag_t / msgpack out.
 *
 * jansson parses with its own recursion cap (2048); we then walk the tree
 * once to enforce JSONIN_MAX_DEPTH before anything else looks at it, so the
 * converters below can recurse freely up to that depth. Each flag field has
 * a reader that replaces the field in f only when the whole value parsed,
 * so a failure never leaves a half-built array behind in f.
 */
#include "common/jsonin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ==== parsing and values ==== */

int jsonin_depth(const json_t *v, int limit)
{
    int best = 0;
    if (v == NULL)
        return 0;
    if (limit < 0)
        return 1;
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            int d = jsonin_depth(e, limit - 1);
            if (d > best)
                best = d;
            if (best > limit)
                break;
        }
    } else if (json_is_object(v)) {
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)v, k, e) {
            int d = jsonin_depth(e, limit - 1);
            if (d > best)
                best = d;
            if (best > limit)
                break;
        }
    }
    return best + 1;
}

int jsonin_nesting(const json_t *v, int limit)
{
    int best = 0;
    size_t i;
    const char *k;
    json_t *e;

    if (!json_is_array(v) && !json_is_object(v))
        return 0;
    if (limit < 0)
        return 1;
    if (json_is_array(v)) {
        json_array_foreach(v, i, e) {
            int d = jsonin_nesting(e, limit - 1);
            best = d > best ? d : best;
            if (best > limit)
                break;
        }
    } else {
        json_object_foreach((json_t *)v, k, e) {
            int d = jsonin_nesting(e, limit - 1);
            best = d > best ? d : best;
            if (best > limit)
                break;
        }
    }
    return best + 1;
}

json_t *jsonin_parse(const char *p, size_t n, char *errbuf, size_t errlen)
{
    json_error_t je;
    json_t *v;

    if (n == 0) {
        snprintf(errbuf, errlen, "the request body is empty (expected JSON)");
        return NULL;
    }
    v = json_loadb(p, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (v == NULL) {
        snprintf(errbuf, errlen, "invalid JSON at line %d column %d: %s", je.line,
                 je.column, je.text);
        return NULL;
    }
    if (jsonin_depth(v, JSONIN_MAX_DEPTH) > JSONIN_MAX_DEPTH) {
        snprintf(errbuf, errlen, "JSON nested deeper than %d levels", JSONIN_MAX_DEPTH);
        json_decref(v);
        return NULL;
    }
    return v;
}

int jsonin_pack(const json_t *v, msgpack_packer *pk, int depth, const char **err)
{
    if (depth > JSONIN_MAX_DEPTH) {
        *err = "value nested too deeply";
        return -1;
    }
    switch (json_typeof(v)) {
    case JSON_NULL:
        return msgpack_pack_nil(pk);
    case JSON_TRUE:
        return msgpack_pack_true(pk);
    case JSON_FALSE:
        return msgpack_pack_false(pk);
    case JSON_INTEGER:
        return msgpack_pack_int64(pk, json_integer_value(v));
    case JSON_REAL:
        return msgpack_pack_double(pk, json_real_value(v));
    case JSON_STRING: {
        size_t n = json_string_length(v);
        if (msgpack_pack_str(pk, n) < 0)
            return -1;
        return msgpack_pack_str_body(pk, json_string_value(v), n);
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *e;
        if (msgpack_pack_array(pk, json_array_size(v)) < 0)
            return -1;
        json_array_foreach(v, i, e) {
            if (jsonin_pack(e, pk, depth + 1, err) < 0)
                return -1;
        }
        return 0;
    }
    case JSON_OBJECT: {
        const char *k;
        json_t *e;
        if (msgpack_pack_map(pk, json_object_size(v)) < 0)
            return -1;
        json_object_foreach((json_t *)v, k, e) {
            size_t kl = strlen(k);
            if (msgpack_pack_str(pk, kl) < 0 || msgpack_pack_str_body(pk, k, kl) < 0)
                return -1;
            if (jsonin_pack(e, pk, depth + 1, err) < 0)
                return -1;
        }
        return 0;
    }
    }
    *err = "unsupported JSON value";
    return -1;
}

int jsonin_to_msgpack(const json_t *v, buf_t *out, const char **err)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, buf_msgpack_write);
    *err = NULL;
    if (jsonin_pack(v, &pk, 1, err) < 0 || out->err) {
        if (*err == NULL)
            *err = out->err ? "value too large" : "cannot encode value";
        return -1;
    }
    return 0;
}

/* ==== flag fields ==== */

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "a value";
}

#define FAIL(...) do { snprintf(errbuf, errlen, __VA_ARGS__); goto fail; } while (0)

/* Copies a JSON string field (no NUL bytes allowed) into *out. */
static int get_str(const json_t *v, const char *what, size_t max, char **out,
                   char *errbuf, size_t errlen)
{
    size_t n;
    if (!json_is_string(v)) {
        snprintf(errbuf, errlen, "%s must be a string, not %s", what, type_name(v));
        return -1;
    }
    n = json_string_length(v);
    if (n > max) {
        snprintf(errbuf, errlen, "%s is longer than %zu bytes", what, max);
        return -1;
    }
    if (memchr(json_string_value(v), '\0', n)) {
        snprintf(errbuf, errlen, "%s must not contain NUL characters", what);
        return -1;
    }
    *out = strndup(json_string_value(v), n);
    if (*out == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static int get_u32(const json_t *v, const char *what, uint32_t max, uint32_t *out,
                   char *errbuf, size_t errlen)
{
    json_int_t i;
    if (!json_is_integer(v)) {
        snprintf(errbuf, errlen, "%s must be an integer, not %s", what, type_name(v));
        return -1;
    }
    i = json_integer_value(v);
    if (i < 0 || i > (json_int_t)max) {
        snprintf(errbuf, errlen, "%s must be between 0 and %u", what, max);
        return -1;
    }
    *out = (uint32_t)i;
    return 0;
}

static int check_fields(const json_t *o, const char *what, const char *const *names,
                        char *errbuf, size_t errlen)
{
    const char *k;
    json_t *e;
    json_object_foreach((json_t *)o, k, e) {
        int ok = 0;
        for (const char *const *n = names; *n; n++)
            if (strcmp(*n, k) == 0)
                ok = 1;
        if (!ok) {
            snprintf(errbuf, errlen, "unknown field \"%.64s\" in %s", k, what);
            return -1;
        }
    }
    return 0;
}

static int read_tags(const json_t *v, flag_t *f, char *errbuf, size_t errlen)
{
    char **tags = NULL;
    size_t n = 0, i;
    json_t *e;

    if (!json_is_array(v)) {
        snprintf(errbuf, errlen, "tags must be an array of strings, not %s", type_name(v));
        return -1;
    }
    if (json_array_size(v) > FLAG_MAX_TAGS) {
        snprintf(errbuf, errlen, "too many tags (at most %d)", FLAG_MAX_TAGS);
        return -1;
    }
    tags = calloc(json_array_size(v) + 1, sizeof(char *));
    if (tags == NULL)
        FAIL("out of memory");
    json_array_foreach(v, i, e) {
        char what[32];
        snprintf(what, sizeof(what), "tags[%zu]", i);
        if (get_str(e, what, FLAG_MAX_STRING, &tags[n], errbuf, errlen) < 0)
            goto fail;
        n++;
    }
    for (i = 0; i < f->ntags; i++)
        free(f->tags[i]);
    free(f->tags);
    f->tags = tags;
    f->ntags = n;
    return 0;
fail:
    for (i = 0; i < n; i++)
        free(tags[i]);
    free(tags);
    return -1;
}

/* Frees n variants and the array (flag_variant_free: the one place that
 * knows a variant's fields). */
static void free_variants(flag_variant_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        flag_variant_free(&v[i]);
    free(v);
}

static int read_variants(const json_t *v, flag_t *f, char *errbuf, size_t errlen)
{
    static const char *const fields[] = { "key", "attachment", NULL };
    flag_variant_t *vs = NULL;
    size_t n = 0, i;
    json_t *e;

    if (!json_is_array(v)) {
        snprintf(errbuf, errlen, "variants must be an array, not %s", type_name(v));
        return -1;
    }
    if (json_array_size(v) > FLAG_MAX_VARIANTS) {
        snprintf(errbuf, errlen, "too many variants (at most %d)", FLAG_MAX_VARIANTS);
        return -1;
    }
    vs = calloc(json_array_size(v) + 1, sizeof(*vs));
    if (vs == NULL)
        FAIL("out of memory");
    json_array_foreach(v, i, e) {
        char what[48];
        json_t *key, *att;
        snprintf(what, sizeof(what), "variants[%zu]", i);
        if (!json_is_object(e))
            FAIL("%s must be an object, not %s", what, type_name(e));
        if (check_fields(e, what, fields, errbuf, errlen) < 0)
            goto fail;
        n++;
        key = json_object_get(e, "key");
        if (key == NULL)
            FAIL("%s.key is required", what);
        snprintf(what, sizeof(what), "variants[%zu].key", i);
        if (get_str(key, what, FLAG_MAX_STRING, &vs[i].key, errbuf, errlen) < 0)
            goto fail;
        att = json_object_get(e, "attachment");
        if (att && jsonin_nesting(att, FLAG_MAX_ATTACHMENT_DEPTH) > FLAG_MAX_ATTACHMENT_DEPTH)
            FAIL("variants[%zu].attachment nests deeper than %d levels", i,
                 FLAG_MAX_ATTACHMENT_DEPTH);
        if (att && !json_is_null(att)) {
            buf_t b;
            const char *err;
            buf_init(&b);
            b.limit = FLAG_MAX_ATTACHMENT;
            if (jsonin_to_msgpack(att, &b, &err) < 0) {
                buf_free(&b);
                FAIL("variants[%zu].attachment: %s (at most %d bytes)", i, err,
                     FLAG_MAX_ATTACHMENT);
            }
            vs[i].attachment = buf_steal(&b, &vs[i].attachment_len);
        }
    }
    free_variants(f->variants, f->nvariants);
    f->variants = vs;
    f->nvariants = n;
    return 0;
fail:
    free_variants(vs, n);
    return -1;
}

/* Frees n segments and the array (flag_segment_free, as above). */
static void free_segments(flag_segment_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        flag_segment_free(&s[i]);
    free(s);
}

static int read_segment(const json_t *e, size_t i, flag_segment_t *s, char *errbuf,
                        size_t errlen)
{
    static const char *const fields[] = { "rank", "rolloutPercent", "description",
                                          "constraints", "distributions", NULL };
    static const char *const cfields[] = { "property", "operator", "value", NULL };
    static const char *const dfields[] = { "variantKey", "percent", NULL };
    char what[80];
    json_t *v, *c;
    size_t j;

    snprintf(what, sizeof(what), "segments[%zu]", i);
    if (!json_is_object(e)) {
        snprintf(errbuf, errlen, "%s must be an object, not %s", what, type_name(e));
        return -1;
    }
    if (check_fields(e, what, fields, errbuf, errlen) < 0)
        return -1;
    s->rank = (uint32_t)i;
    if ((v = json_object_get(e, "rank"))) {
        snprintf(what, sizeof(what), "segments[%zu].rank", i);
        if (get_u32(v, what, 1000000, &s->rank, errbuf, errlen) < 0)
            return -1;
    }
    s->rollout_percent = 100;
    if ((v = json_object_get(e, "rolloutPercent"))) {
        snprintf(what, sizeof(what), "segments[%zu].rolloutPercent", i);
        if (get_u32(v, what, 100, &s->rollout_percent, errbuf, errlen) < 0)
            return -1;
    }
    if ((v = json_object_get(e, "description")) && !json_is_null(v)) {
        snprintf(what, sizeof(what), "segments[%zu].description", i);
        if (get_str(v, what, FLAG_MAX_DESCRIPTION, &s->description, errbuf, errlen) < 0)
            return -1;
    }
    if ((v = json_object_get(e, "constraints"))) {
        if (!json_is_array(v)) {
            snprintf(errbuf, errlen, "segments[%zu].constraints must be an array", i);
            return -1;
        }
        if (json_array_size(v) > FLAG_MAX_CONSTRAINTS) {
            snprintf(errbuf, errlen, "segments[%zu]: too many constraints (at most %d)", i,
                     FLAG_MAX_CONSTRAINTS);
            return -1;
        }
        s->constraints = calloc(json_array_size(v) + 1, sizeof(*s->constraints));
        if (s->constraints == NULL) {
            snprintf(errbuf, errlen, "out of memory");
            return -1;
        }
        json_array_foreach(v, j, c) {
            flag_constraint_t *k = &s->constraints[j];
            json_t *x;
            snprintf(what, sizeof(what), "segments[%zu].constraints[%zu]", i, j);
            if (!json_is_object(c)) {
                snprintf(errbuf, errlen, "%s must be an object", what);
                return -1;
            }
            if (check_fields(c, what, cfields, errbuf, errlen) < 0)
                return -1;
            s->nconstraints++;
            static const char *const names[] = { "property", "operator", "value" };
            char **dst[] = { &k->property, &k->op, &k->value };
            for (int f = 0; f < 3; f++) {
                char w2[112];
                snprintf(w2, sizeof(w2), "%s.%s", what, names[f]);
                x = json_object_get(c, names[f]);
                if (x == NULL) {
                    snprintf(errbuf, errlen, "%s is required", w2);
                    return -1;
                }
                if (get_str(x, w2, FLAG_MAX_STRING, dst[f], errbuf, errlen) < 0)
                    return -1;
            }
        }
    }
    if ((v = json_object_get(e, "distributions"))) {
        if (!json_is_array(v)) {
            snprintf(errbuf, errlen, "segments[%zu].distributions must be an array", i);
            return -1;
        }
        if (json_array_size(v) > FLAG_MAX_DISTRIBUTIONS) {
            snprintf(errbuf, errlen, "segments[%zu]: too many distributions (at most %d)", i,
                     FLAG_MAX_DISTRIBUTIONS);
            return -1;
        }
        s->distributions = calloc(json_array_size(v) + 1, sizeof(*s->distributions));
        if (s->distributions == NULL) {
            snprintf(errbuf, errlen, "out of memory");
            return -1;
        }
        json_array_foreach(v, j, c) {
            flag_distribution_t *d = &s->distributions[j];
            json_t *x;
            char w2[112];
            snprintf(what, sizeof(what), "segments[%zu].distributions[%zu]", i, j);
            if (!json_is_object(c)) {
                snprintf(errbuf, errlen, "%s must be an object", what);
                return -1;
            }
            if (check_fields(c, what, dfields, errbuf, errlen) < 0)
                return -1;
            s->ndistributions++;
            snprintf(w2, sizeof(w2), "%s.variantKey", what);
            if ((x = json_object_get(c, "variantKey")) == NULL) {
                snprintf(errbuf, errlen, "%s is required", w2);
                return -1;
            }
            if (get_str(x, w2, FLAG_MAX_STRING, &d->variant_key, errbuf, errlen) < 0)
                return -1;
            snprintf(w2, sizeof(w2), "%s.percent", what);
            if ((x = json_object_get(c, "percent")) == NULL) {
                snprintf(errbuf, errlen, "%s is required", w2);
                return -1;
            }
            if (get_u32(x, w2, 100, &d->percent, errbuf, errlen) < 0)
                return -1;
        }
    }
    return 0;
}

static int read_segments(const json_t *v, flag_t *f, char *errbuf, size_t errlen)
{
    flag_segment_t *ss;
    size_t n = 0, i;
    json_t *e;

    if (!json_is_array(v)) {
        snprintf(errbuf, errlen, "segments must be an array, not %s", type_name(v));
        return -1;
    }
    if (json_array_size(v) > FLAG_MAX_SEGMENTS) {
        snprintf(errbuf, errlen, "too many segments (at most %d)", FLAG_MAX_SEGMENTS);
        return -1;
    }
    ss = calloc(json_array_size(v) + 1, sizeof(*ss));
    if (ss == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    json_array_foreach(v, i, e) {
        n++;
        if (read_segment(e, i, &ss[i], errbuf, errlen) < 0) {
            free_segments(ss, n);
            return -1;
        }
    }
    free_segments(f->segments, f->nsegments);
    f->segments = ss;
    f->nsegments = n;
    return 0;
}

int jsonin_flag(const json_t *o, unsigned allowed, flag_t *f, unsigned *present,
                char *errbuf, size_t errlen)
{
    static const struct { const char *name; unsigned bit; } fields[] = {
        { "key", JSONIN_KEY },           { "description", JSONIN_DESCRIPTION },
        { "enabled", JSONIN_ENABLED },   { "tags", JSONIN_TAGS },
        { "variants", JSONIN_VARIANTS }, { "segments", JSONIN_SEGMENTS },
    };
    const char *k;
    json_t *v;

    *present = 0;
    if (!json_is_object(o)) {
        snprintf(errbuf, errlen, "the request body must be a JSON object, not %s",
                 type_name(o));
        return -1;
    }
    json_object_foreach((json_t *)o, k, v) {
        unsigned bit = 0;
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
            if (strcmp(k, fields[i].name) == 0)
                bit = fields[i].bit;
        if (bit == 0 || !(allowed & bit)) {
            if (!strcmp(k, "id") || !strcmp(k, "version") || !strcmp(k, "updatedAt"))
                snprintf(errbuf, errlen, "field \"%s\" is read-only", k);
            else if (bit)
                snprintf(errbuf, errlen, "field \"%s\" cannot be set here", k);
            else
                snprintf(errbuf, errlen, "unknown field \"%.64s\"", k);
            return -1;
        }
        *present |= bit;
        switch (bit) {
        case JSONIN_KEY: {
            char *s;
            if (get_str(v, "key", 1024, &s, errbuf, errlen) < 0)
                return -1;
            free(f->key);
            f->key = s;
            break;
        }
        case JSONIN_DESCRIPTION: {
            char *s = NULL;
            if (!json_is_null(v) &&
                get_str(v, "description", FLAG_MAX_DESCRIPTION, &s, errbuf, errlen) < 0)
                return -1;
            free(f->description);
            f->description = s;
            break;
        }
        case JSONIN_ENABLED:
            if (!json_is_boolean(v)) {
                snprintf(errbuf, errlen, "enabled must be a boolean, not %s", type_name(v));
                return -1;
            }
            f->enabled = json_is_true(v);
            break;
        case JSONIN_TAGS:
            if (read_tags(v, f, errbuf, errlen) < 0)
                return -1;
            break;
        case JSONIN_VARIANTS:
            if (read_variants(v, f, errbuf, errlen) < 0)
                return -1;
            break;
        case JSONIN_SEGMENTS:
            if (read_segments(v, f, errbuf, errlen) < 0)
                return -1;
            break;
        }
    }
    return 0;
}
