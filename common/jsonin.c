/*
 * jsonin — jansson in, flag_t / msgpack out.
 *
 * jansson parses with its own recursion cap (2048); we then walk the tree
 * once to enforce JSONIN_MAX_DEPTH before anything else looks at it, so the
 * converters below can recurse freely up to that depth. A flag is read by
 * walking proto/flag.c's field tables (the in_max limits, the JSON-input
 * defaults and required marks); a top-level field is read into a blank
 * record and moved into f only when the whole value parsed, so a failure
 * never leaves a half-built array behind in f.
 */
#include "common/jsonin.h"

#include <inttypes.h>
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

/* The field's path as text ("segments[1].rank"). */
static const char *pstr(const flag_path_t *p, char *w, size_t n)
{
    flag_path_format(p, w, n);
    return w;
}

#define PATH(p) pstr((p), w, sizeof(w))

/* Copies a JSON string field (no NUL bytes allowed) into *out. */
static int get_str(const json_t *v, const flag_path_t *path, size_t max, char **out,
                   char *errbuf, size_t errlen)
{
    char w[160];
    size_t n;
    if (!json_is_string(v)) {
        snprintf(errbuf, errlen, "%s must be a string, not %s", PATH(path), type_name(v));
        return -1;
    }
    n = json_string_length(v);
    if (n > max) {
        snprintf(errbuf, errlen, "%s is longer than %zu bytes", PATH(path), max);
        return -1;
    }
    if (memchr(json_string_value(v), '\0', n)) {
        snprintf(errbuf, errlen, "%s must not contain NUL characters", PATH(path));
        return -1;
    }
    *out = strndup(json_string_value(v), n);
    if (*out == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static int get_uint(const json_t *v, const flag_path_t *path, uint64_t max, uint64_t *out,
                    char *errbuf, size_t errlen)
{
    char w[160];
    json_int_t i;
    if (!json_is_integer(v)) {
        snprintf(errbuf, errlen, "%s must be an integer, not %s", PATH(path), type_name(v));
        return -1;
    }
    i = json_integer_value(v);
    if (i < 0 || (uint64_t)i > max) {
        snprintf(errbuf, errlen, "%s must be between 0 and %" PRIu64, PATH(path), max);
        return -1;
    }
    *out = (uint64_t)i;
    return 0;
}

/* An array of at most max elements: *out gets n+1 zeroed elements (so an
 * empty array is not NULL) and *count n at once, so that freeing the field
 * after a failure frees what was read. */
static int get_array(const json_t *v, const flag_path_t *path, const char *expected,
                     uint64_t max, size_t size, void **out, size_t *count, char *errbuf,
                     size_t errlen)
{
    char w[160];
    if (!json_is_array(v)) {
        snprintf(errbuf, errlen, "%s must be %s, not %s", PATH(path), expected, type_name(v));
        return -1;
    }
    if (json_array_size(v) > max) {
        snprintf(errbuf, errlen, "too many %s (at most %" PRIu64 ")", PATH(path), max);
        return -1;
    }
    *out = calloc(json_array_size(v) + 1, size);
    if (*out == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    *count = json_array_size(v);
    return 0;
}

#define AT(obj, off, T) (*(T *)((char *)(obj) + (off)))

static int read_rec(const flag_rec_t *r, const json_t *o, void *obj, size_t index,
                    const flag_path_t *path, char *errbuf, size_t errlen);

/* Reads one field's JSON value v into obj's (zeroed) field, by the table. */
static int read_value(const flag_field_t *fd, const json_t *v, void *obj,
                      const flag_path_t *path, char *errbuf, size_t errlen)
{
    char w[160];
    uint64_t u;

    switch (fd->kind) {
    case FLAG_K_U64:
        return get_uint(v, path, fd->in_max, &AT(obj, fd->off, uint64_t), errbuf, errlen);
    case FLAG_K_U32:
        if (get_uint(v, path, fd->in_max, &u, errbuf, errlen) < 0)
            return -1;
        AT(obj, fd->off, uint32_t) = (uint32_t)u;
        return 0;
    case FLAG_K_BOOL:
        if (!json_is_boolean(v)) {
            snprintf(errbuf, errlen, "%s must be a boolean, not %s", PATH(path), type_name(v));
            return -1;
        }
        AT(obj, fd->off, bool) = json_is_true(v);
        return 0;
    case FLAG_K_OPTSTR:
        if (json_is_null(v))
            return 0;
        /* fall through */
    case FLAG_K_STR:
        return get_str(v, path, fd->in_max, &AT(obj, fd->off, char *), errbuf, errlen);
    case FLAG_K_STRS: {
        size_t i;
        json_t *e;
        if (get_array(v, path, "an array of strings", fd->in_max, sizeof(char *),
                      (void **)&AT(obj, fd->off, char **), &AT(obj, fd->count_off, size_t),
                      errbuf, errlen) < 0)
            return -1;
        json_array_foreach(v, i, e) {
            flag_path_t el = { path, NULL, i };
            if (get_str(e, &el, fd->in_item_max, &AT(obj, fd->off, char **)[i], errbuf,
                        errlen) < 0)
                return -1;
        }
        return 0;
    }
    case FLAG_K_RECS: {
        size_t i, sz = fd->rec->size;
        json_t *e;
        if (get_array(v, path, "an array", fd->in_max, sz, (void **)&AT(obj, fd->off, char *),
                      &AT(obj, fd->count_off, size_t), errbuf, errlen) < 0)
            return -1;
        json_array_foreach(v, i, e) {
            flag_path_t el = { path, NULL, i };
            if (read_rec(fd->rec, e, AT(obj, fd->off, char *) + i * sz, i, &el, errbuf,
                         errlen) < 0)
                return -1;
        }
        return 0;
    }
    case FLAG_K_ATTACH: {
        buf_t b;
        const char *err;
        if (jsonin_nesting(v, FLAG_MAX_ATTACHMENT_DEPTH) > FLAG_MAX_ATTACHMENT_DEPTH) {
            snprintf(errbuf, errlen, "%s nests deeper than %d levels", PATH(path),
                     FLAG_MAX_ATTACHMENT_DEPTH);
            return -1;
        }
        if (json_is_null(v))
            return 0;
        buf_init(&b);
        b.limit = fd->in_max;
        if (jsonin_to_msgpack(v, &b, &err) < 0) {
            buf_free(&b);
            snprintf(errbuf, errlen, "%s: %s (at most %" PRIu64 " bytes)", PATH(path), err,
                     fd->in_max);
            return -1;
        }
        AT(obj, fd->off, char *) = buf_steal(&b, &AT(obj, fd->count_off, size_t));
        if (AT(obj, fd->off, char *) == NULL) {
            snprintf(errbuf, errlen, "out of memory");
            return -1;
        }
        return 0;
    }
    }
    snprintf(errbuf, errlen, "%s: unsupported field", PATH(path));
    return -1;
}

static const flag_field_t *find_field(const flag_rec_t *r, const char *name)
{
    for (unsigned i = 0; i < r->nfields; i++)
        if (strcmp(r->fields[i].name, name) == 0)
            return &r->fields[i];
    return NULL;
}

/* Reads a sub-record (a variant, segment, ...; element `index` of its
 * array) into obj, zeroed: unknown fields first, then each field of the
 * table in order; an absent one is an error if required, else its default. */
static int read_rec(const flag_rec_t *r, const json_t *o, void *obj, size_t index,
                    const flag_path_t *path, char *errbuf, size_t errlen)
{
    char w[160];
    const char *k;
    json_t *v;

    if (!json_is_object(o)) {
        snprintf(errbuf, errlen, "%s must be an object, not %s", PATH(path), type_name(o));
        return -1;
    }
    json_object_foreach((json_t *)o, k, v) {
        if (find_field(r, k) == NULL) {
            snprintf(errbuf, errlen, "unknown field \"%.64s\" in %s", k, PATH(path));
            return -1;
        }
    }
    for (unsigned i = 0; i < r->nfields; i++) {
        const flag_field_t *fd = &r->fields[i];
        flag_path_t sub = { path, fd->name, 0 };
        if ((v = json_object_get(o, fd->name)) != NULL) {
            if (read_value(fd, v, obj, &sub, errbuf, errlen) < 0)
                return -1;
        } else if (fd->flags & FLAG_F_IN_REQUIRED) {
            snprintf(errbuf, errlen, "%s is required", PATH(&sub));
            return -1;
        } else if (fd->kind == FLAG_K_U32) {
            AT(obj, fd->off, uint32_t) =
                fd->flags & FLAG_F_IN_INDEX ? (uint32_t)index : fd->in_default;
        }
    }
    return 0;
}

/* Bytes of a field's value at its offset (and whether it has a count). */
static size_t value_size(const flag_field_t *fd)
{
    switch (fd->kind) {
    case FLAG_K_U64: return sizeof(uint64_t);
    case FLAG_K_U32: return sizeof(uint32_t);
    case FLAG_K_BOOL: return sizeof(bool);
    default: return sizeof(void *);
    }
}

int jsonin_flag(const json_t *o, unsigned allowed, flag_t *f, unsigned *present,
                char *errbuf, size_t errlen)
{
    const char *k;
    json_t *v;

    *present = 0;
    if (!json_is_object(o)) {
        snprintf(errbuf, errlen, "the request body must be a JSON object, not %s",
                 type_name(o));
        return -1;
    }
    json_object_foreach((json_t *)o, k, v) {
        const flag_field_t *fd = find_field(&flag_rec_flag, k);
        unsigned bit = fd ? fd->in_bit : 0;
        flag_t tmp;
        if (bit == 0 || !(allowed & bit)) {
            if (fd && !bit)
                snprintf(errbuf, errlen, "field \"%s\" is read-only", k);
            else if (bit)
                snprintf(errbuf, errlen, "field \"%s\" cannot be set here", k);
            else
                snprintf(errbuf, errlen, "unknown field \"%.64s\"", k);
            return -1;
        }
        *present |= bit;
        /* Read into a blank record, then move the field over: a failure
         * leaves f's value of that field as it was. */
        flag_init(&tmp);
        flag_path_t path = { NULL, fd->name, 0 };
        if (read_value(fd, v, &tmp, &path, errbuf, errlen) < 0) {
            flag_field_free(fd, &tmp);
            return -1;
        }
        flag_field_free(fd, f);
        memcpy((char *)f + fd->off, (char *)&tmp + fd->off, value_size(fd));
        if (fd->kind == FLAG_K_STRS || fd->kind == FLAG_K_RECS || fd->kind == FLAG_K_ATTACH)
            AT(f, fd->count_off, size_t) = AT(&tmp, fd->count_off, size_t);
    }
    return 0;
}
