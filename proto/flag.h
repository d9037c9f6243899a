/*
 * flag — the flag record (DESIGN.md, "Message bytes"), Flagent-like:
 *
 *   { id, key, enabled, description, tags[], variants[] {key, attachment},
 *     segments[] {rank, rolloutPercent, description, constraints[]
 *     {property, operator, value}, distributions[] {variantKey, percent}},
 *     version, updatedAt }
 *
 * The same record is stored in P:flags (msgpack), carried in events, and
 * rendered as JSON. A variant's attachment is any value; it is kept as the
 * msgpack bytes of that value (NULL when absent), so that it round-trips
 * without a generic tree type.
 *
 * Ownership: a flag_t owns every string and array it points to; flag_free()
 * releases them (not the flag_t itself, which may live on the stack).
 */
#ifndef FLAGCAST_FLAG_H
#define FLAGCAST_FLAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>
#include "proto/buf.h"

/* Limits: a record beyond them is rejected by flag_validate and the decoder. */
#define FLAG_MAX_TAGS          64
#define FLAG_MAX_VARIANTS      64
#define FLAG_MAX_SEGMENTS      64
#define FLAG_MAX_CONSTRAINTS   64
#define FLAG_MAX_DISTRIBUTIONS 64
#define FLAG_MAX_DESCRIPTION   4096       /* bytes */
#define FLAG_MAX_STRING        1024       /* constraint property/operator/value */
#define FLAG_MAX_ATTACHMENT    (64 * 1024) /* msgpack bytes */
/* Containers an attachment may nest: it sits 4 levels deep in an event
 * (body, flag, variants, variant) and msgpack-c unpacks at most 32. */
#define FLAG_MAX_ATTACHMENT_DEPTH 28

typedef struct flag_variant {
    char   *key;
    char   *attachment;      /* msgpack bytes of any value, or NULL */
    size_t  attachment_len;
} flag_variant_t;

typedef struct flag_constraint {
    char *property;
    char *op;                /* "operator" on the wire: EQ, NEQ, IN, ... */
    char *value;
} flag_constraint_t;

typedef struct flag_distribution {
    char    *variant_key;
    uint32_t percent;        /* 0-100 */
} flag_distribution_t;

typedef struct flag_segment {
    char                *description;   /* may be NULL */
    uint32_t             rank;
    uint32_t             rollout_percent; /* 0-100 */
    flag_constraint_t   *constraints;   size_t nconstraints;
    flag_distribution_t *distributions; size_t ndistributions;
} flag_segment_t;

typedef struct flag {
    uint64_t        id;
    char           *key;
    bool            enabled;
    char           *description;   /* may be NULL */
    char          **tags;          size_t ntags;
    flag_variant_t *variants;      size_t nvariants;
    flag_segment_t *segments;      size_t nsegments;
    uint64_t        version;
    uint64_t        updated_at;    /* ms since the epoch */
} flag_t;

void flag_init(flag_t *f);             /* zeroes */
void flag_free(flag_t *f);             /* frees the contents, leaves f zeroed */
/* Free the contents of one variant / one segment (its constraints and
 * distributions), not the struct itself, and leave it zeroed. Every reader
 * of a record (the msgpack decoder here, common/jsonin.c) frees partial
 * arrays with these, so a field added to a struct is freed in one place. */
void flag_variant_free(flag_variant_t *v);
void flag_segment_free(flag_segment_t *s);
/* Deep copy. @return 0 on success, -1 on allocation failure. */
int  flag_copy(flag_t *dst, const flag_t *src);

/* Checks names, limits and ranges: key and variant keys/variantKeys by
 * name_flag_key_valid, tags by name_tag_valid, variant keys unique, percents
 * 0-100, constraint property 1-1024 bytes, value at most 1024, operator one
 * of Flagent's EQ NEQ LT LTE GT GTE EREG NEREG IN NOTIN CONTAINS NOTCONTAINS,
 * attachment one JSON-able msgpack value (no ext, string map keys) within
 * FLAG_MAX_ATTACHMENT bytes and FLAG_MAX_ATTACHMENT_DEPTH levels.
 * *err names the field ("flag.tags[3]: tag must be ..."); it points to a
 * thread-local buffer, valid until the next call on the same thread.
 * @return 0 if valid, -1 with *err set. */
int  flag_validate(const flag_t *f, const char **err);

/* Packs the record as a msgpack map. @return 0, or -1 on failure. */
int  flag_pack(const flag_t *f, msgpack_packer *pk);
/* Packs into a fresh buffer (appends to out). Validates first: an invalid
 * record appends nothing and returns -1 (flag_validate says why). */
int  flag_encode(const flag_t *f, buf_t *out);

/* Decodes a record from a msgpack object (a map with the fields above;
 * unknown or duplicate fields, wrong types, sizes over the limits and
 * anything flag_validate refuses are errors). id, key, enabled, version and
 * updatedAt are required; a missing or nil description/attachment is NULL,
 * missing arrays are empty. As Redis's Lua cmsgpack may write them, strings
 * may be str or bin and integers doubles holding an exact non-negative
 * integer. On error f is left zeroed and errbuf holds a message naming the
 * field. @return 0 or -1. */
int  flag_unpack(const msgpack_object *o, flag_t *f, char *errbuf, size_t errlen);
/* Decodes a record from msgpack bytes (exactly one object). */
int  flag_decode(const char *p, size_t n, flag_t *f, char *errbuf, size_t errlen);

/* Renders the record as a JSON object (Flagent's field names). */
int  flag_to_json(const flag_t *f, buf_t *out);

/* True if tag is one of the flag's tags. Tests and fuzz targets only (the
 * gateway matches tags itself, in gateway/filter.c). */
bool flag_has_tag(const flag_t *f, const char *tag, size_t len);

#endif
