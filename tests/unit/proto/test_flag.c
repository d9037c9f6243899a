/*
 * Unit tests for proto/flag: round trips, copy, validation limits (exact
 * limit accepted, limit + 1 refused), decoder strictness with field paths in
 * the messages, truncation at every byte, and flag_to_json parsed back with
 * jansson.
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/flag.h"
#include "proto/names.h"
#include "sample.h"

static void encode_ok(const flag_t *f, buf_t *b)
{
    buf_init(b);
    ck_assert_int_eq(flag_encode(f, b), 0);
}

START_TEST(test_roundtrip)
{
    flag_t f, back;
    buf_t b;
    char err[256];
    sample_flag(&f);
    encode_ok(&f, &b);
    ck_assert_msg(flag_decode(b.data, b.len, &back, err, sizeof(err)) == 0, "%s", err);
    ck_assert(flag_eq(&f, &back));
    buf_t b2;
    encode_ok(&back, &b2);
    ck_assert_uint_eq(b.len, b2.len);
    ck_assert(memcmp(b.data, b2.data, b.len) == 0);
    buf_free(&b2);
    flag_free(&back);
    ck_assert_ptr_null(back.key);     /* flag_free leaves it zeroed */
    buf_free(&b);
    flag_free(&f);

    sample_flag_min(&f, "min");
    encode_ok(&f, &b);
    ck_assert_msg(flag_decode(b.data, b.len, &back, err, sizeof(err)) == 0, "%s", err);
    ck_assert(flag_eq(&f, &back));
    flag_free(&back);
    buf_free(&b);
    flag_free(&f);
}
END_TEST

START_TEST(test_copy)
{
    flag_t f, c;
    sample_flag(&f);
    ck_assert_int_eq(flag_copy(&c, &f), 0);
    ck_assert(flag_eq(&f, &c));
    ck_assert_ptr_ne(c.key, f.key);
    ck_assert_ptr_ne(c.variants[0].attachment, f.variants[0].attachment);
    flag_free(&f);
    ck_assert_str_eq(c.segments[0].constraints[0].op, "IN");
    flag_free(&c);
}
END_TEST

START_TEST(test_has_tag)
{
    flag_t f;
    sample_flag(&f);
    ck_assert(flag_has_tag(&f, "web", 3));
    ck_assert(flag_has_tag(&f, "team:payments", 13));
    ck_assert(!flag_has_tag(&f, "we", 2));
    ck_assert(!flag_has_tag(&f, "webx", 4));
    flag_free(&f);
}
END_TEST

/* ==== validation limits ================================================== */

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = 0;
    return s;
}

/* Validates, and checks that a valid record also survives a round trip. */
static int valid(const flag_t *f, const char **err)
{
    int r = flag_validate(f, err);
    buf_t b;
    flag_t back;
    char eb[256];
    buf_init(&b);
    if (r == 0) {
        ck_assert_int_eq(flag_encode(f, &b), 0);
        ck_assert_msg(flag_decode(b.data, b.len, &back, eb, sizeof(eb)) == 0, "%s", eb);
        ck_assert(flag_eq(f, &back));
        flag_free(&back);
    } else {
        /* what validation refuses, the decoder refuses too */
        flag_encode(f, &b);
        if (b.len)
            ck_assert_int_eq(flag_decode(b.data, b.len, &back, eb, sizeof(eb)), -1);
    }
    buf_free(&b);
    return r;
}

START_TEST(test_limits_key)
{
    flag_t f;
    const char *err;
    sample_flag_min(&f, "k");
    free(f.key);
    f.key = repeat('a', NAME_FLAG_KEY_MAX);
    ck_assert_int_eq(valid(&f, &err), 0);
    free(f.key);
    f.key = repeat('a', NAME_FLAG_KEY_MAX + 1);
    ck_assert_int_eq(valid(&f, &err), -1);
    ck_assert_str_eq(err, "flag.key: flag key must be 1-128 bytes of [A-Za-z0-9_./:-]");
    free(f.key);
    f.key = xstrdup("");
    ck_assert_int_eq(flag_validate(&f, &err), -1);
    free(f.key);
    f.key = xstrdup("a b");
    ck_assert_int_eq(flag_validate(&f, &err), -1);
    free(f.key);
    f.key = NULL;
    ck_assert_int_eq(flag_validate(&f, &err), -1);
    flag_free(&f);
}
END_TEST

START_TEST(test_limits_description)
{
    flag_t f;
    const char *err;
    sample_flag_min(&f, "k");
    f.description = repeat('d', FLAG_MAX_DESCRIPTION);
    ck_assert_int_eq(valid(&f, &err), 0);
    free(f.description);
    f.description = repeat('d', FLAG_MAX_DESCRIPTION + 1);
    ck_assert_int_eq(valid(&f, &err), -1);
    ck_assert_msg(strstr(err, "flag.description") != NULL, "%s", err);
    flag_free(&f);
}
END_TEST

START_TEST(test_limits_tags)
{
    flag_t f;
    const char *err;
    char name[16];
    sample_flag_min(&f, "k");
    f.tags = calloc(FLAG_MAX_TAGS + 1, sizeof(char *));
    for (int i = 0; i <= FLAG_MAX_TAGS; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        f.tags[i] = xstrdup(name);
    }
    f.ntags = FLAG_MAX_TAGS;
    ck_assert_int_eq(valid(&f, &err), 0);
    f.ntags = FLAG_MAX_TAGS + 1;
    ck_assert_int_eq(valid(&f, &err), -1);
    f.ntags = 4;
    free(f.tags[3]);
    f.tags[3] = repeat('x', 65);
    ck_assert_int_eq(valid(&f, &err), -1);
    ck_assert_str_eq(err, "flag.tags[3]: tag must be 1-64 bytes of [A-Za-z0-9_./:-]");
    free(f.tags[3]);
    f.tags[3] = repeat('x', 64);
    ck_assert_int_eq(valid(&f, &err), 0);
    f.tags[3][0] = ' ';
    ck_assert_int_eq(valid(&f, &err), -1);
    f.ntags = FLAG_MAX_TAGS + 1;
    flag_free(&f);
}
END_TEST

START_TEST(test_limits_variants)
{
    flag_t f;
    const char *err;
    char name[16];
    sample_flag_min(&f, "k");
    f.variants = calloc(FLAG_MAX_VARIANTS + 1, sizeof(flag_variant_t));
    for (int i = 0; i <= FLAG_MAX_VARIANTS; i++) {
        snprintf(name, sizeof(name), "v%d", i);
        f.variants[i].key = xstrdup(name);
    }
    f.nvariants = FLAG_MAX_VARIANTS;
    ck_assert_int_eq(valid(&f, &err), 0);
    f.nvariants = FLAG_MAX_VARIANTS + 1;
    ck_assert_int_eq(valid(&f, &err), -1);

    /* duplicate keys */
    f.nvariants = 3;
    free(f.variants[2].key);
    f.variants[2].key = xstrdup("v0");
    ck_assert_int_eq(valid(&f, &err), -1);
    ck_assert_str_eq(err, "flag.variants[2].key: duplicate variant key");
    free(f.variants[2].key);
    f.variants[2].key = xstrdup("v2");

    /* attachment: exactly FLAG_MAX_ATTACHMENT bytes (a str16), then one more */
    size_t body = FLAG_MAX_ATTACHMENT - 3;
    char *a = malloc(FLAG_MAX_ATTACHMENT + 1);
    a[0] = (char)0xda;
    a[1] = (char)(body >> 8); a[2] = (char)body;
    memset(a + 3, 'z', body);
    f.variants[1].attachment = a;
    f.variants[1].attachment_len = FLAG_MAX_ATTACHMENT;
    ck_assert_int_eq(valid(&f, &err), 0);
    body++;
    a[1] = (char)(body >> 8); a[2] = (char)body;
    a[FLAG_MAX_ATTACHMENT] = 'z';
    f.variants[1].attachment_len = FLAG_MAX_ATTACHMENT + 1;
    ck_assert_int_eq(valid(&f, &err), -1);
    ck_assert_msg(strstr(err, "flag.variants[1].attachment: larger than") != NULL, "%s", err);

    /* attachment must be exactly one JSON-able msgpack value */
    memcpy(a, "\x01\x02", 2);
    f.variants[1].attachment_len = 2;
    ck_assert_int_eq(flag_validate(&f, &err), -1);
    ck_assert_msg(strstr(err, "trailing") != NULL, "%s", err);
    memcpy(a, "\xd4\x01\x02", 3);
    f.variants[1].attachment_len = 3;
    ck_assert_int_eq(flag_validate(&f, &err), -1);
    f.variants[1].attachment_len = 0;
    ck_assert_int_eq(flag_validate(&f, &err), -1);

    /* nesting: 28 levels fit in an event, 29 do not */
    for (int i = 0; i < 29; i++)
        a[i] = (char)0x91;
    a[28] = (char)0x90;
    f.variants[1].attachment_len = 29;
    ck_assert_int_eq(flag_validate(&f, &err), -1);
    ck_assert_msg(strstr(err, "nesting too deep") != NULL, "%s", err);
    f.variants[1].attachment = a + 1;
    f.variants[1].attachment_len = 28;
    ck_assert_int_eq(valid(&f, &err), 0);
    f.variants[1].attachment = a;

    f.nvariants = FLAG_MAX_VARIANTS + 1;
    flag_free(&f);
}
END_TEST

START_TEST(test_limits_segments)
{
    flag_t f;
    const char *err;
    sample_flag_min(&f, "k");
    f.segments = calloc(FLAG_MAX_SEGMENTS + 1, sizeof(flag_segment_t));
    f.nsegments = FLAG_MAX_SEGMENTS;
    ck_assert_int_eq(valid(&f, &err), 0);
    f.nsegments = FLAG_MAX_SEGMENTS + 1;
    ck_assert_int_eq(valid(&f, &err), -1);
    f.nsegments = 2;

    flag_segment_t *s = &f.segments[1];
    s->rollout_percent = 100;
    ck_assert_int_eq(valid(&f, &err), 0);
    s->rollout_percent = 101;
    ck_assert_int_eq(valid(&f, &err), -1);
    ck_assert_str_eq(err, "flag.segments[1].rolloutPercent: must be 0-100");
    s->rollout_percent = 0;

    s->constraints = calloc(FLAG_MAX_CONSTRAINTS + 1, sizeof(flag_constraint_t));
    for (int i = 0; i <= FLAG_MAX_CONSTRAINTS; i++) {
        s->constraints[i].property = xstrdup("p");
        s->constraints[i].op = xstrdup("EQ");
        s->constraints[i].value = xstrdup("");
    }
    s->nconstraints = FLAG_MAX_CONSTRAINTS;
    ck_assert_int_eq(valid(&f, &err), 0);
    s->nconstraints = FLAG_MAX_CONSTRAINTS + 1;
    ck_assert_int_eq(valid(&f, &err), -1);
    s->nconstraints = 1;
    free(s->constraints[0].value);
    s->constraints[0].value = repeat('v', FLAG_MAX_STRING);
    ck_assert_int_eq(valid(&f, &err), 0);
    free(s->constraints[0].value);
    s->constraints[0].value = repeat('v', FLAG_MAX_STRING + 1);
    ck_assert_int_eq(valid(&f, &err), -1);
    ck_assert_msg(strstr(err, "flag.segments[1].constraints[0].value") != NULL, "%s", err);
    free(s->constraints[0].value);
    s->constraints[0].value = xstrdup("x");
    free(s->constraints[0].op);
    s->constraints[0].op = xstrdup("LIKE");
    ck_assert_int_eq(valid(&f, &err), -1);
    ck_assert_msg(strstr(err, "constraints[0].operator: must be one of") != NULL, "%s", err);
    free(s->constraints[0].op);
    s->constraints[0].op = xstrdup("NOTCONTAINS");
    free(s->constraints[0].property);
    s->constraints[0].property = xstrdup("");
    ck_assert_int_eq(valid(&f, &err), -1);
    free(s->constraints[0].property);
    s->constraints[0].property = xstrdup("p");
    ck_assert_int_eq(valid(&f, &err), 0);
    s->nconstraints = FLAG_MAX_CONSTRAINTS + 1;

    s->distributions = calloc(FLAG_MAX_DISTRIBUTIONS + 1, sizeof(flag_distribution_t));
    for (int i = 0; i <= FLAG_MAX_DISTRIBUTIONS; i++)
        s->distributions[i].variant_key = xstrdup("v");
    s->ndistributions = FLAG_MAX_DISTRIBUTIONS;
    s->nconstraints = 0;
    ck_assert_int_eq(valid(&f, &err), 0);
    s->ndistributions = FLAG_MAX_DISTRIBUTIONS + 1;
    ck_assert_int_eq(valid(&f, &err), -1);
    s->ndistributions = 1;
    s->distributions[0].percent = 100;
    ck_assert_int_eq(valid(&f, &err), 0);
    s->distributions[0].percent = 101;
    ck_assert_int_eq(valid(&f, &err), -1);
    ck_assert_str_eq(err, "flag.segments[1].distributions[0].percent: must be 0-100");
    s->distributions[0].percent = 1;
    s->distributions[0].variant_key[0] = '{';
    ck_assert_int_eq(valid(&f, &err), -1);

    s->nconstraints = FLAG_MAX_CONSTRAINTS + 1;
    s->ndistributions = FLAG_MAX_DISTRIBUTIONS + 1;
    f.nsegments = FLAG_MAX_SEGMENTS + 1;
    flag_free(&f);
}
END_TEST

/* ==== decoder strictness ================================================= */

static void pk_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* The required fields, then `extra` more pairs written by the caller. */
static void pack_base(msgpack_packer *pk, int extra)
{
    msgpack_pack_map(pk, 5 + (size_t)extra);
    pk_str(pk, "id"); msgpack_pack_uint64(pk, 1);
    pk_str(pk, "key"); pk_str(pk, "k");
    pk_str(pk, "enabled"); msgpack_pack_false(pk);
    pk_str(pk, "version"); msgpack_pack_uint64(pk, 1);
    pk_str(pk, "updatedAt"); msgpack_pack_uint64(pk, 1);
}

typedef struct bad {
    void (*fn)(msgpack_packer *pk);
    const char *want;
} bad_t;

static void x_unknown(msgpack_packer *pk)
{ pack_base(pk, 1); pk_str(pk, "colour"); msgpack_pack_nil(pk); }
static void x_dup(msgpack_packer *pk)
{ pack_base(pk, 1); pk_str(pk, "key"); pk_str(pk, "k2"); }
static void x_id_str(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    pk_str(pk, "id"); pk_str(pk, "1");
}
static void x_id_neg(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    pk_str(pk, "id"); msgpack_pack_int64(pk, -1);
}
static void x_id_frac(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    pk_str(pk, "id"); msgpack_pack_double(pk, 1.5);
}
static void x_enabled_int(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    pk_str(pk, "enabled"); msgpack_pack_uint64(pk, 1);
}
static void x_missing_key(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 4);
    pk_str(pk, "id"); msgpack_pack_uint64(pk, 1);
    pk_str(pk, "enabled"); msgpack_pack_false(pk);
    pk_str(pk, "version"); msgpack_pack_uint64(pk, 1);
    pk_str(pk, "updatedAt"); msgpack_pack_uint64(pk, 1);
}
static void x_tags_map(msgpack_packer *pk)
{ pack_base(pk, 1); pk_str(pk, "tags"); msgpack_pack_map(pk, 0); }
static void x_tag_int(msgpack_packer *pk)
{
    pack_base(pk, 1); pk_str(pk, "tags"); msgpack_pack_array(pk, 2);
    pk_str(pk, "a"); msgpack_pack_uint64(pk, 3);
}
static void x_tag_nul(msgpack_packer *pk)
{
    pack_base(pk, 1); pk_str(pk, "tags"); msgpack_pack_array(pk, 1);
    msgpack_pack_str_with_body(pk, "a\0b", 3);
}
static void x_tags_many(msgpack_packer *pk)
{
    pack_base(pk, 1); pk_str(pk, "tags"); msgpack_pack_array(pk, FLAG_MAX_TAGS + 1);
    for (int i = 0; i <= FLAG_MAX_TAGS; i++)
        pk_str(pk, "t");
}
static void x_variant_unknown(msgpack_packer *pk)
{
    pack_base(pk, 1); pk_str(pk, "variants"); msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 2); pk_str(pk, "key"); pk_str(pk, "v");
    pk_str(pk, "weight"); msgpack_pack_uint64(pk, 3);
}
static void x_variant_id_str(msgpack_packer *pk)
{
    pack_base(pk, 1); pk_str(pk, "variants"); msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 2); pk_str(pk, "id"); pk_str(pk, "3");
    pk_str(pk, "key"); pk_str(pk, "v");
}
static void x_variant_id_dup(msgpack_packer *pk)
{
    pack_base(pk, 1); pk_str(pk, "variants"); msgpack_pack_array(pk, 2);
    msgpack_pack_map(pk, 2); pk_str(pk, "id"); msgpack_pack_uint64(pk, 3);
    pk_str(pk, "key"); pk_str(pk, "a");
    msgpack_pack_map(pk, 2); pk_str(pk, "id"); msgpack_pack_uint64(pk, 3);
    pk_str(pk, "key"); pk_str(pk, "b");
}
static void x_segment_id_dup(msgpack_packer *pk)
{
    pack_base(pk, 1); pk_str(pk, "segments"); msgpack_pack_array(pk, 2);
    for (int i = 0; i < 2; i++) {
        msgpack_pack_map(pk, 3); pk_str(pk, "id"); msgpack_pack_uint64(pk, 9);
        pk_str(pk, "rank"); msgpack_pack_uint64(pk, 0);
        pk_str(pk, "rolloutPercent"); msgpack_pack_uint64(pk, 100);
    }
}
static void x_variant_nokey(msgpack_packer *pk)
{
    pack_base(pk, 1); pk_str(pk, "variants"); msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 0);
}
static void x_attachment_ext(msgpack_packer *pk)
{
    pack_base(pk, 1); pk_str(pk, "variants"); msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 2); pk_str(pk, "key"); pk_str(pk, "v");
    pk_str(pk, "attachment"); msgpack_pack_ext_with_body(pk, "x", 1, 1);
}
static void x_segment_type(msgpack_packer *pk)
{
    pack_base(pk, 1); pk_str(pk, "segments"); msgpack_pack_array(pk, 1);
    pk_str(pk, "s");
}
static void x_segment_rollout(msgpack_packer *pk)
{
    pack_base(pk, 1); pk_str(pk, "segments"); msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 2);
    pk_str(pk, "rank"); msgpack_pack_uint64(pk, 1);
    pk_str(pk, "rolloutPercent"); msgpack_pack_uint64(pk, 0x100000000ULL);
}
static void x_segment_norank(msgpack_packer *pk)
{
    pack_base(pk, 1); pk_str(pk, "segments"); msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 1);
    pk_str(pk, "rolloutPercent"); msgpack_pack_uint64(pk, 1);
}
static void x_constraint_missing(msgpack_packer *pk)
{
    pack_base(pk, 1); pk_str(pk, "segments"); msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 3);
    pk_str(pk, "rank"); msgpack_pack_uint64(pk, 1);
    pk_str(pk, "rolloutPercent"); msgpack_pack_uint64(pk, 1);
    pk_str(pk, "constraints"); msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 2);
    pk_str(pk, "property"); pk_str(pk, "p");
    pk_str(pk, "operator"); pk_str(pk, "EQ");
}
static void x_distribution_pct(msgpack_packer *pk)
{
    pack_base(pk, 1); pk_str(pk, "segments"); msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 3);
    pk_str(pk, "rank"); msgpack_pack_uint64(pk, 1);
    pk_str(pk, "rolloutPercent"); msgpack_pack_uint64(pk, 1);
    pk_str(pk, "distributions"); msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 2);
    pk_str(pk, "variantKey"); pk_str(pk, "v");
    pk_str(pk, "percent"); pk_str(pk, "50");
}
static void x_not_map(msgpack_packer *pk) { msgpack_pack_array(pk, 1); msgpack_pack_nil(pk); }
static void x_key_not_str(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_uint64(pk, 1); msgpack_pack_nil(pk);
}

static const bad_t bads[] = {
    { x_unknown, "flag: unknown field \"colour\"" },
    { x_dup, "flag.key: duplicate field" },
    { x_id_str, "flag.id: must be a non-negative integer" },
    { x_id_neg, "flag.id: must be a non-negative integer" },
    { x_id_frac, "flag.id: must be a non-negative integer" },
    { x_enabled_int, "flag.enabled: must be a boolean" },
    { x_missing_key, "flag: missing field \"key\"" },
    { x_tags_map, "flag.tags: must be an array" },
    { x_tag_int, "flag.tags[1]: must be a string" },
    { x_tag_nul, "flag.tags[0]: contains a NUL byte" },
    { x_tags_many, "flag.tags: more than 64 elements" },
    { x_variant_unknown, "flag.variants[0]: unknown field \"weight\"" },
    { x_variant_id_str, "flag.variants[0].id: must be a non-negative integer" },
    { x_variant_id_dup, "flag.variants[1].id: duplicate variant id" },
    { x_segment_id_dup, "flag.segments[1].id: duplicate segment id" },
    { x_variant_nokey, "flag.variants[0]: missing field \"key\"" },
    { x_attachment_ext, "flag.variants[0].attachment: msgpack: ext" },
    { x_segment_type, "flag.segments[0]: must be a map" },
    { x_segment_rollout, "flag.segments[0].rolloutPercent: must be at most" },
    { x_segment_norank, "flag.segments[0]: missing field \"rank\"" },
    { x_constraint_missing, "flag.segments[0].constraints[0]: missing field \"value\"" },
    { x_distribution_pct, "flag.segments[0].distributions[0].percent: must be a non-negative" },
    { x_not_map, "flag: must be a map" },
    { x_key_not_str, "flag: map key is not a string" },
};

START_TEST(test_decode_bad)
{
    buf_t b;
    msgpack_packer pk;
    flag_t f;
    char err[256] = "";
    buf_init(&b);
    msgpack_packer_init(&pk, &b, buf_msgpack_write);
    bads[_i].fn(&pk);
    ck_assert_int_eq(flag_decode(b.data, b.len, &f, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, bads[_i].want) != NULL, "case %d: got \"%s\", want \"%s\"",
                  _i, err, bads[_i].want);
    ck_assert_ptr_null(f.key);
    ck_assert_ptr_null(f.tags);
    ck_assert_ptr_null(f.variants);
    ck_assert_ptr_null(f.segments);
    buf_free(&b);
}
END_TEST

START_TEST(test_decode_lenient_lua)
{
    /* bin strings, doubles for integers, nil optional fields, missing arrays */
    buf_t b;
    msgpack_packer pk;
    flag_t f;
    char err[256];
    buf_init(&b);
    msgpack_packer_init(&pk, &b, buf_msgpack_write);
    msgpack_pack_map(&pk, 8);
    msgpack_pack_bin_with_body(&pk, "id", 2); msgpack_pack_double(&pk, 12.0);
    msgpack_pack_bin_with_body(&pk, "key", 3); msgpack_pack_bin_with_body(&pk, "kk", 2);
    msgpack_pack_bin_with_body(&pk, "enabled", 7); msgpack_pack_true(&pk);
    pk_str(&pk, "description"); msgpack_pack_nil(&pk);
    pk_str(&pk, "version"); msgpack_pack_float(&pk, 2.0f);
    pk_str(&pk, "updatedAt"); msgpack_pack_double(&pk, 1700000000000.0);
    pk_str(&pk, "tags"); msgpack_pack_array(&pk, 1);
    msgpack_pack_bin_with_body(&pk, "t1", 2);
    pk_str(&pk, "variants"); msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 2);
    pk_str(&pk, "key"); pk_str(&pk, "v");
    pk_str(&pk, "attachment"); msgpack_pack_nil(&pk);
    ck_assert_msg(flag_decode(b.data, b.len, &f, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(f.id, 12);
    ck_assert_str_eq(f.key, "kk");
    ck_assert_uint_eq(f.version, 2);
    ck_assert_uint_eq(f.updated_at, 1700000000000ULL);
    ck_assert_ptr_null(f.description);
    ck_assert_str_eq(f.tags[0], "t1");
    ck_assert_ptr_null(f.variants[0].attachment);
    ck_assert_uint_eq(f.nsegments, 0);
    flag_free(&f);
    buf_free(&b);
}
END_TEST

START_TEST(test_decode_truncated_and_trailing)
{
    flag_t f, back;
    buf_t b;
    char err[256];
    sample_flag(&f);
    encode_ok(&f, &b);
    for (size_t n = 0; n < b.len; n++) {
        char *p = malloc(n ? n : 1);
        memcpy(p, b.data, n);
        ck_assert_msg(flag_decode(p, n, &back, err, sizeof(err)) == -1, "%zu bytes", n);
        ck_assert_ptr_null(back.key);
        free(p);
    }
    buf_putc(&b, 0);
    ck_assert_int_eq(flag_decode(b.data, b.len, &back, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "trailing") != NULL, "%s", err);
    buf_free(&b);
    flag_free(&f);
}
END_TEST

START_TEST(test_decode_deep_attachment)
{
    buf_t b;
    msgpack_packer pk;
    flag_t f;
    char err[256];
    int depths[] = { 29, 40, 10000 };
    for (size_t d = 0; d < 3; d++) {
        buf_init(&b);
        msgpack_packer_init(&pk, &b, buf_msgpack_write);
        pack_base(&pk, 1);
        pk_str(&pk, "variants"); msgpack_pack_array(&pk, 1);
        msgpack_pack_map(&pk, 2); pk_str(&pk, "key"); pk_str(&pk, "v");
        pk_str(&pk, "attachment");
        for (int i = 0; i < depths[d]; i++)
            msgpack_pack_array(&pk, i + 1 < depths[d] ? 1 : 0);
        ck_assert_int_eq(flag_decode(b.data, b.len, &f, err, sizeof(err)), -1);
        ck_assert_msg(strstr(err, "nesting too deep") != NULL, "%s", err);
        buf_free(&b);
    }
}
END_TEST

/* ==== JSON =============================================================== */

START_TEST(test_to_json)
{
    flag_t f;
    buf_t b;
    json_error_t je;
    sample_flag(&f);
    buf_init(&b);
    ck_assert_int_eq(flag_to_json(&f, &b), 0);
    json_t *j = json_loadb(b.data, b.len, 0, &je);
    ck_assert_msg(j != NULL, "%s: %s", je.text, b.data);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "id")), 7);
    ck_assert_str_eq(json_string_value(json_object_get(j, "key")), "new-checkout");
    ck_assert(json_is_true(json_object_get(j, "enabled")));
    ck_assert_str_eq(json_string_value(json_object_get(j, "description")), f.description);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "tags"), 1)),
                     "team:payments");
    json_t *v0 = json_array_get(json_object_get(j, "variants"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(v0, "key")), "on");
    json_t *att = json_object_get(v0, "attachment");
    ck_assert_str_eq(json_string_value(json_object_get(att, "color")), "red");
    json_t *n = json_object_get(att, "n");
    ck_assert_int_eq(json_array_size(n), 5);
    ck_assert_int_eq(json_integer_value(json_array_get(n, 1)), -2);
    ck_assert(json_real_value(json_array_get(n, 2)) == 3.5);
    ck_assert(json_is_null(json_array_get(n, 4)));
    json_t *v1 = json_array_get(json_object_get(j, "variants"), 1);
    ck_assert_ptr_null(json_object_get(v1, "attachment"));   /* omitted */
    json_t *s0 = json_array_get(json_object_get(j, "segments"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(s0, "description")), "beta users");
    ck_assert_int_eq(json_integer_value(json_object_get(s0, "rolloutPercent")), 50);
    json_t *c0 = json_array_get(json_object_get(s0, "constraints"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(c0, "operator")), "IN");
    ck_assert_str_eq(json_string_value(json_object_get(c0, "value")), "[\"NL\",\"DE\"]");
    json_t *d1 = json_array_get(json_object_get(s0, "distributions"), 1);
    ck_assert_str_eq(json_string_value(json_object_get(d1, "variantKey")), "off");
    ck_assert_int_eq(json_integer_value(json_object_get(d1, "percent")), 70);
    json_t *s1 = json_array_get(json_object_get(j, "segments"), 1);
    ck_assert_ptr_null(json_object_get(s1, "description"));
    ck_assert_int_eq(json_integer_value(json_object_get(j, "version")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "updatedAt")), 1700000000123LL);
    ck_assert_int_eq(json_object_size(j), 9);
    json_decref(j);

    /* the minimal record: no description */
    flag_free(&f);
    sample_flag_min(&f, "m");
    buf_reset(&b);
    ck_assert_int_eq(flag_to_json(&f, &b), 0);
    ck_assert_str_eq(b.data, "{\"id\":1,\"key\":\"m\",\"enabled\":false,\"tags\":[],"
                     "\"variants\":[],\"segments\":[],\"version\":0,\"updatedAt\":0}");
    flag_free(&f);
    buf_free(&b);
}
END_TEST

/* A file's bytes (tests run from the top of the tree). */
static char *slurp_file(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    char *p = malloc(1 << 16);
    ck_assert_msg(fp != NULL, "cannot open %s", path);
    ck_assert_ptr_nonnull(p);
    *n = fread(p, 1, 1 << 16, fp);
    fclose(fp);
    return p;
}

/* A record from before ids (the full corpus seed has none) decodes with
 * ids 0 and packs back to the same bytes: no "id" is written for them. */
START_TEST(test_ids_old_record)
{
    flag_t f;
    char err[256];
    buf_t b, j;
    size_t n;
    char *p = slurp_file("tests/fuzz/corpus/fuzz_flag/full", &n);

    ck_assert_msg(flag_decode(p, n, &f, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_gt(f.nvariants, 0);
    ck_assert_uint_gt(f.nsegments, 0);
    for (size_t i = 0; i < f.nvariants; i++)
        ck_assert_uint_eq(f.variants[i].id, 0);
    for (size_t i = 0; i < f.nsegments; i++)
        ck_assert_uint_eq(f.segments[i].id, 0);
    buf_init(&b);
    ck_assert_int_eq(flag_encode(&f, &b), 0);
    ck_assert_uint_eq(b.len, n);
    ck_assert(memcmp(b.data, p, n) == 0);
    buf_init(&j);
    ck_assert_int_eq(flag_to_json(&f, &j), 0);
    ck_assert_ptr_null(strstr(j.data, "\"variants\":[{\"id\""));
    ck_assert_ptr_null(strstr(j.data, "\"segments\":[{\"id\""));
    buf_free(&b);
    buf_free(&j);
    flag_free(&f);
    free(p);
}
END_TEST

/* Ids round-trip through msgpack, flag_copy and JSON; "id" comes first in
 * a variant and a segment, and is left out where it is 0. */
START_TEST(test_ids_roundtrip)
{
    flag_t f, back, copy;
    char err[256];
    buf_t b, j;

    sample_flag(&f);
    f.variants[0].id = 11;
    f.variants[1].id = 0;                /* a part without one stays without */
    f.segments[0].id = 12;
    f.segments[1].id = 4294967296ULL + 5; /* past 32 bits */
    buf_init(&b);
    ck_assert_int_eq(flag_encode(&f, &b), 0);
    ck_assert_int_eq(flag_decode(b.data, b.len, &back, err, sizeof(err)), 0);
    ck_assert(flag_eq(&f, &back));
    ck_assert_uint_eq(back.segments[1].id, 4294967296ULL + 5);
    ck_assert_int_eq(flag_copy(&copy, &back), 0);
    ck_assert(flag_eq(&copy, &f));
    buf_init(&j);
    ck_assert_int_eq(flag_to_json(&f, &j), 0);
    ck_assert_ptr_nonnull(strstr(j.data, "\"variants\":[{\"id\":11,\"key\":\"on\""));
    ck_assert_ptr_nonnull(strstr(j.data, "},{\"key\":\"off\"}]"));
    ck_assert_ptr_nonnull(strstr(j.data, "\"segments\":[{\"id\":12,\"description\":"));
    ck_assert_ptr_nonnull(strstr(j.data, "{\"id\":4294967301,\"rank\":"));
    buf_free(&b);
    buf_free(&j);
    flag_free(&f);
    flag_free(&back);
    flag_free(&copy);
}
END_TEST

static Suite *flag_suite(void)
{
    Suite *s = suite_create("flag");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_roundtrip);
    tcase_add_test(tc, test_copy);
    tcase_add_test(tc, test_has_tag);
    tcase_add_test(tc, test_limits_key);
    tcase_add_test(tc, test_limits_description);
    tcase_add_test(tc, test_limits_tags);
    tcase_add_test(tc, test_limits_variants);
    tcase_add_test(tc, test_limits_segments);
    tcase_add_loop_test(tc, test_decode_bad, 0, (int)(sizeof(bads) / sizeof(bads[0])));
    tcase_add_test(tc, test_decode_lenient_lua);
    tcase_add_test(tc, test_decode_truncated_and_trailing);
    tcase_add_test(tc, test_decode_deep_attachment);
    tcase_add_test(tc, test_to_json);
    tcase_add_test(tc, test_ids_old_record);
    tcase_add_test(tc, test_ids_roundtrip);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(flag_suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
