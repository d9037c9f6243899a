/*
 * flag — the flag record (DESIGN.md, "Message bytes"), Flagent-like:
 *
 *   { id, key, enabled, description, tags[], variants[] {id, key, attachment},
 *     segments[] {id, description, rank, rolloutPercent, constraints[]
 *     {property, operator, value}, distributions[] {variantKey, percent}},
 *     version, updatedAt }
 *
 * A variant's and a segment's id (Flagent's variantID / segmentID) is given
 * by the publisher and kept across updates; 0 means none, is not written,
 * and is what a record from before ids reads as.
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
    uint64_t id;             /* 0: none (a record from before ids) */
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
    uint64_t             id;            /* 0: none (a record from before ids) */
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

/* ==== the schema ====
 *
 * Each record type is described once, as a table of its fields in wire
 * order; flag_pack, flag_unpack, flag_to_json, flag_copy, flag_free and
 * common/jsonin.c's reader walk these tables, so a field is added in one
 * place. flag_validate's checks (names, operators, uniqueness) stay
 * hand-written: they are rules about values, not about the shape. */
typedef enum flag_kind {
    FLAG_K_U64,     /* uint64_t */
    FLAG_K_U32,     /* uint32_t */
    FLAG_K_BOOL,    /* bool */
    FLAG_K_STR,     /* char *, always written (NULL packs as "") */
    FLAG_K_OPTSTR,  /* char *, NULL: omitted; nil or JSON null reads as NULL */
    FLAG_K_STRS,    /* char ** with a size_t count at count_off */
    FLAG_K_RECS,    /* array of `rec` with a size_t count at count_off */
    FLAG_K_ATTACH,  /* msgpack bytes of any value (char *), size_t length at
                     * count_off; NULL: omitted; nil or JSON null reads as NULL */
} flag_kind_t;

/* flag_field_t.flags */
#define FLAG_F_REQUIRED    0x01u /* a stored record (msgpack) must have it */
#define FLAG_F_IN_REQUIRED 0x02u /* JSON input must have it (within a sub-record) */
#define FLAG_F_OMIT_ZERO   0x04u /* a U64 holding 0 is not written (0 = none) */
#define FLAG_F_IN_INDEX    0x08u /* JSON input: absent means the element's index */

/* Bits of the top-level fields settable through JSON input (common/jsonin.h
 * names them JSONIN_*). A top-level field with in_bit 0 is read-only. */
#define FLAG_IN_KEY         (1u << 0)
#define FLAG_IN_DESCRIPTION (1u << 1)
#define FLAG_IN_ENABLED     (1u << 2)
#define FLAG_IN_TAGS        (1u << 3)
#define FLAG_IN_VARIANTS    (1u << 4)
#define FLAG_IN_SEGMENTS    (1u << 5)

struct flag_rec;

typedef struct flag_field {
    const char *name;       /* msgpack map key and JSON name */
    uint8_t     name_len;
    uint8_t     kind;       /* flag_kind_t */
    uint8_t     flags;      /* FLAG_F_* */
    uint8_t     in_bit;     /* FLAG_IN_* (top level only) */
    uint16_t    off;        /* offsetof the value */
    uint16_t    count_off;  /* offsetof the count or length (STRS, RECS, ATTACH) */
    /* Limits of a stored record: integers' largest value, strings' bytes,
     * arrays' elements (item: each string of a STRS). */
    uint64_t    max;
    uint32_t    item_max;
    /* The same for JSON input, where the record is not yet validated and
     * flag_validate gives the better message. */
    uint64_t    in_max;
    uint32_t    in_item_max;
    uint32_t    in_default; /* JSON input, U32 absent from a sub-record */
    const struct flag_rec *rec; /* RECS: the element's record */
} flag_field_t;

typedef struct flag_rec {
    const char         *name;   /* "flag", "variant", ... */
    size_t              size;   /* of the C struct */
    const flag_field_t *fields;
    unsigned            nfields; /* at most 32 */
} flag_rec_t;

extern const flag_rec_t flag_rec_flag;         /* flag_t */
extern const flag_rec_t flag_rec_variant;      /* flag_variant_t */
extern const flag_rec_t flag_rec_segment;      /* flag_segment_t */
extern const flag_rec_t flag_rec_constraint;   /* flag_constraint_t */
extern const flag_rec_t flag_rec_distribution; /* flag_distribution_t */

/* A field's path in an error message, formatted only when a message is
 * written: "flag.segments[1].rank" (msgpack) or "segments[1].rank" (JSON
 * input). Each level lives on its walker's stack. */
typedef struct flag_path {
    const struct flag_path *up;
    const char *name;        /* a field, or NULL for an element of up */
    size_t      index;
} flag_path_t;
/* Writes p into dst[n] (NUL-terminated, cut short if need be).
 * @return the length written. */
size_t flag_path_format(const flag_path_t *p, char *dst, size_t n);

/* Frees what one field of obj owns and zeroes the field (and its count). */
void flag_field_free(const flag_field_t *fd, void *obj);
/* Frees what a record owns (every field, sub-records too), zeroes it. */
void flag_rec_free(const flag_rec_t *r, void *obj);

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
 * name_flag_key_valid, tags by name_tag_valid, variant keys unique, non-zero
 * variant ids unique among variants and segment ids among segments, percents
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
