/*
 * Unit tests for proto/event: round trips of every event type, the header,
 * strictness of the decoder (unknown fields, wrong types, limits, truncation
 * at every byte, garbage, deep nesting), and ev_value_check.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/event.h"
#include "proto/mpscan.h"
#include "sample.h"

/* ==== round trips ======================================================== */

START_TEST(test_roundtrip_every_type)
{
    for (int t = 0; t < EV_TYPE_COUNT; t++) {
        ev_t ev, back;
        buf_t b;
        char err[256];
        sample_event(&ev, (ev_type_t)t);
        buf_init(&b);
        ck_assert_int_eq(ev_encode(&ev, &b), 0);
        ck_assert_msg(ev_decode(b.data, b.len, &back, err, sizeof(err)) == 0,
                      "type %d: %s", t, err);
        ck_assert_msg(ev_eq(&ev, &back), "type %d differs after round trip", t);

        /* the re-encoding is byte for byte the same */
        buf_t b2;
        buf_init(&b2);
        ck_assert_int_eq(ev_encode(&back, &b2), 0);
        ck_assert_uint_eq(b.len, b2.len);
        ck_assert(memcmp(b.data, b2.data, b.len) == 0);
        buf_free(&b2);
        ev_free(&back);
        buf_free(&b);
        ev_free(&ev);
    }
}
END_TEST

START_TEST(test_roundtrip_body_only)
{
    for (int t = 0; t < EV_TYPE_COUNT; t++) {
        ev_t ev, back;
        buf_t b;
        char err[256];
        sample_event(&ev, (ev_type_t)t);
        buf_init(&b);
        ck_assert_int_eq(ev_encode_body(&ev, &b), 0);
        ck_assert_msg(ev_decode_body(b.data, b.len, &back, err, sizeof(err)) == 0, "%s", err);
        ck_assert_ptr_null(back.channel);
        ck_assert_ptr_null(back.epoch);
        ck_assert_int_eq(back.type, t);
        ck_assert(str_eq(back.actor, ev.actor));
        if (ev.flag)
            ck_assert(flag_eq(ev.flag, back.flag));
        else
            ck_assert(bytes_eq(ev.data, ev.data_len, back.data, back.data_len));
        /* a body alone is not a whole message */
        ev_t x;
        ck_assert_int_eq(ev_decode(b.data, b.len, &x, err, sizeof(err)), -1);
        ev_free(&back);
        buf_free(&b);
        ev_free(&ev);
    }
}
END_TEST

START_TEST(test_roundtrip_minimal)
{
    ev_t ev, back;
    buf_t b;
    char err[256];
    ev_init(&ev);
    ev.type = EV_FLAG_DELETED;
    ev.channel = xstrdup("flags");
    ev.epoch = xstrdup("x");
    ev.flag = malloc(sizeof(flag_t));
    sample_flag_min(ev.flag, "k");
    buf_init(&b);
    ck_assert_int_eq(ev_encode(&ev, &b), 0);
    ck_assert_msg(ev_decode(b.data, b.len, &back, err, sizeof(err)) == 0, "%s", err);
    ck_assert(ev_eq(&ev, &back));
    ck_assert_ptr_null(back.actor);
    ck_assert_ptr_null(back.flag->description);
    ev_free(&back);
    buf_free(&b);
    ev_free(&ev);
}
END_TEST

START_TEST(test_type_names)
{
    for (int t = 0; t < EV_TYPE_COUNT; t++) {
        ev_type_t back;
        const char *n = ev_type_name((ev_type_t)t);
        ck_assert_int_eq(ev_type_parse(n, strlen(n), &back), 0);
        ck_assert_int_eq(back, t);
    }
    ev_type_t x;
    ck_assert_str_eq(ev_type_name(EV_SEGMENT_UPDATED), "segment.updated");
    ck_assert_int_eq(ev_type_parse("flag.update", 11, &x), -1);
    ck_assert_int_eq(ev_type_parse("flag.updatedx", 13, &x), -1);
    ck_assert_int_eq(ev_type_parse("", 0, &x), -1);
    ck_assert(!ev_type_is_flag(EV_MESSAGE));
    ck_assert(ev_type_is_flag(EV_FLAG_TOGGLED));
}
END_TEST

START_TEST(test_encode_refuses_inconsistent)
{
    ev_t ev;
    buf_t b;
    buf_init(&b);

    sample_event(&ev, EV_FLAG_UPDATED);
    free(ev.flag->key);
    ev.flag->key = xstrdup("bad key");            /* invalid flag */
    ck_assert_int_eq(ev_encode_body(&ev, &b), -1);
    ev_free(&ev);

    sample_event(&ev, EV_MESSAGE);
    ev.type = EV_FLAG_CREATED;                     /* flag type without flag */
    ck_assert_int_eq(ev_encode_body(&ev, &b), -1);
    ev.type = EV_MESSAGE;
    free(ev.channel);
    ev.channel = xstrdup("bad channel");
    ck_assert_int_eq(ev_encode(&ev, &b), -1);
    ck_assert_int_eq(ev_encode_body(&ev, &b), 0);  /* the body has no channel */
    b.len = 0;
    free(ev.data);
    ev.data = xstrdup("\xc1");                     /* not msgpack */
    ev.data_len = 1;
    ck_assert_int_eq(ev_encode_body(&ev, &b), -1);
    ck_assert_uint_eq(b.len, 0);                   /* nothing half-written */
    ev_free(&ev);
    buf_free(&b);
}
END_TEST

/* ==== hand-made messages ================================================= */

/* Packs header [1, ch, epoch, off] into b. */
static void pack_header(msgpack_packer *pk, const char *ch, const char *epoch, uint64_t off)
{
    msgpack_pack_array(pk, 4);
    msgpack_pack_uint64(pk, 1);
    msgpack_pack_str_with_body(pk, ch, strlen(ch));
    msgpack_pack_str_with_body(pk, epoch, strlen(epoch));
    msgpack_pack_uint64(pk, off);
}

static void pk_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

static int decode_buf(buf_t *b, ev_t *ev, char *err, size_t n)
{
    return ev_decode(b->data, b->len, ev, err, n);
}

START_TEST(test_lua_style_encoding)
{
    /* what Redis's cmsgpack may produce: bin strings, doubles for integers */
    buf_t b;
    msgpack_packer pk;
    ev_t ev;
    char err[256];
    buf_init(&b);
    msgpack_packer_init(&pk, &b, buf_msgpack_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_double(&pk, 1.0);
    msgpack_pack_bin_with_body(&pk, "chat.room1", 10);
    msgpack_pack_bin_with_body(&pk, "ep", 2);
    msgpack_pack_double(&pk, 17.0);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_bin_with_body(&pk, "type", 4);
    msgpack_pack_bin_with_body(&pk, "message", 7);
    msgpack_pack_bin_with_body(&pk, "ts", 2);
    msgpack_pack_double(&pk, 1700000000000.0);
    msgpack_pack_bin_with_body(&pk, "data", 4);
    msgpack_pack_array(&pk, 0);
    ck_assert_msg(decode_buf(&b, &ev, err, sizeof(err)) == 0, "%s", err);
    ck_assert_str_eq(ev.channel, "chat.room1");
    ck_assert_str_eq(ev.epoch, "ep");
    ck_assert_uint_eq(ev.offset, 17);
    ck_assert_uint_eq(ev.ts, 1700000000000ULL);
    ck_assert_int_eq(ev.type, EV_MESSAGE);
    ck_assert_uint_eq(ev.data_len, 1);
    ev_free(&ev);

    /* a non-integral double offset is refused */
    b.len = 0;
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint64(&pk, 1);
    pk_str(&pk, "c");
    pk_str(&pk, "e");
    msgpack_pack_double(&pk, 17.5);
    msgpack_pack_map(&pk, 3);
    pk_str(&pk, "type"); pk_str(&pk, "message");
    pk_str(&pk, "ts"); msgpack_pack_uint64(&pk, 1);
    pk_str(&pk, "data"); msgpack_pack_nil(&pk);
    ck_assert_int_eq(decode_buf(&b, &ev, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "offset") != NULL, "%s", err);
    ck_assert_ptr_null(ev.channel);
    buf_free(&b);
}
END_TEST

/* A body map built by the test, one case per row. */
typedef struct bad_case {
    const char *name;
    void (*body)(msgpack_packer *pk);
    const char *want;   /* substring of the error */
} bad_case_t;

static void b_unknown(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 4);
    pk_str(pk, "type"); pk_str(pk, "message");
    pk_str(pk, "ts"); msgpack_pack_uint64(pk, 1);
    pk_str(pk, "data"); msgpack_pack_nil(pk);
    pk_str(pk, "extra"); msgpack_pack_nil(pk);
}
static void b_dup(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 4);
    pk_str(pk, "type"); pk_str(pk, "message");
    pk_str(pk, "ts"); msgpack_pack_uint64(pk, 1);
    pk_str(pk, "data"); msgpack_pack_nil(pk);
    pk_str(pk, "ts"); msgpack_pack_uint64(pk, 2);
}
static void b_type_int(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    pk_str(pk, "type"); msgpack_pack_uint64(pk, 1);
    pk_str(pk, "ts"); msgpack_pack_uint64(pk, 1);
    pk_str(pk, "data"); msgpack_pack_nil(pk);
}
static void b_type_unknown(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    pk_str(pk, "type"); pk_str(pk, "flag.exploded");
    pk_str(pk, "ts"); msgpack_pack_uint64(pk, 1);
    pk_str(pk, "data"); msgpack_pack_nil(pk);
}
static void b_ts_neg(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    pk_str(pk, "type"); pk_str(pk, "message");
    pk_str(pk, "ts"); msgpack_pack_int64(pk, -1);
    pk_str(pk, "data"); msgpack_pack_nil(pk);
}
static void b_no_ts(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    pk_str(pk, "type"); pk_str(pk, "message");
    pk_str(pk, "data"); msgpack_pack_nil(pk);
}
static void b_msg_no_data(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    pk_str(pk, "type"); pk_str(pk, "message");
    pk_str(pk, "ts"); msgpack_pack_uint64(pk, 1);
}
static void b_flag_no_flag(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    pk_str(pk, "type"); pk_str(pk, "flag.updated");
    pk_str(pk, "ts"); msgpack_pack_uint64(pk, 1);
}
static void b_flag_with_data(msgpack_packer *pk)
{
    flag_t f;
    sample_flag_min(&f, "k");
    msgpack_pack_map(pk, 4);
    pk_str(pk, "type"); pk_str(pk, "flag.updated");
    pk_str(pk, "ts"); msgpack_pack_uint64(pk, 1);
    pk_str(pk, "flag"); flag_pack(&f, pk);
    pk_str(pk, "data"); msgpack_pack_nil(pk);
    flag_free(&f);
}
static void b_bad_flag(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    pk_str(pk, "type"); pk_str(pk, "flag.updated");
    pk_str(pk, "ts"); msgpack_pack_uint64(pk, 1);
    pk_str(pk, "flag"); msgpack_pack_map(pk, 1);
    pk_str(pk, "key"); msgpack_pack_true(pk);
}
static void b_actor_long(msgpack_packer *pk)
{
    char a[EV_MAX_ACTOR + 2];
    memset(a, 'a', sizeof(a) - 1);
    a[sizeof(a) - 1] = 0;
    msgpack_pack_map(pk, 4);
    pk_str(pk, "type"); pk_str(pk, "message");
    pk_str(pk, "ts"); msgpack_pack_uint64(pk, 1);
    pk_str(pk, "data"); msgpack_pack_nil(pk);
    pk_str(pk, "actor"); pk_str(pk, a);
}
static void b_data_ext(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    pk_str(pk, "type"); pk_str(pk, "message");
    pk_str(pk, "ts"); msgpack_pack_uint64(pk, 1);
    pk_str(pk, "data"); msgpack_pack_ext_with_body(pk, "ab", 2, 5);
}
static void b_data_intkey(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    pk_str(pk, "type"); pk_str(pk, "message");
    pk_str(pk, "ts"); msgpack_pack_uint64(pk, 1);
    pk_str(pk, "data"); msgpack_pack_map(pk, 1);
    msgpack_pack_uint64(pk, 1); msgpack_pack_nil(pk);
}
static void b_not_map(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 0);
}
static void b_key_int(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_uint64(pk, 1); msgpack_pack_nil(pk);
}

static const bad_case_t bad_bodies[] = {
    { "unknown field", b_unknown, "unknown field \"extra\"" },
    { "duplicate field", b_dup, "body.ts: duplicate field" },
    { "type not a string", b_type_int, "body.type: must be a string" },
    { "unknown type", b_type_unknown, "body.type: unknown event type" },
    { "negative ts", b_ts_neg, "body.ts" },
    { "missing ts", b_no_ts, "missing field \"ts\"" },
    { "message without data", b_msg_no_data, "needs \"data\"" },
    { "flag event without flag", b_flag_no_flag, "needs a \"flag\"" },
    { "flag event with data", b_flag_with_data, "body.data" },
    { "bad flag", b_bad_flag, "flag.key: must be a string" },
    { "actor too long", b_actor_long, "body.actor" },
    { "ext in data", b_data_ext, "body.data: msgpack ext" },
    { "int key in data", b_data_intkey, "body.data: map keys must be strings" },
    { "body not a map", b_not_map, "body: must be a map" },
    { "body key not a string", b_key_int, "body: map key is not a string" },
};

START_TEST(test_bad_bodies)
{
    const bad_case_t *c = &bad_bodies[_i];
    buf_t b;
    msgpack_packer pk;
    ev_t ev;
    char err[256] = "";
    buf_init(&b);
    msgpack_packer_init(&pk, &b, buf_msgpack_write);
    pack_header(&pk, "flags", "ep", 1);
    c->body(&pk);
    ck_assert_msg(decode_buf(&b, &ev, err, sizeof(err)) == -1, "%s: accepted", c->name);
    ck_assert_msg(strstr(err, c->want) != NULL, "%s: got \"%s\", want \"%s\"",
                  c->name, err, c->want);
    /* left zeroed */
    ck_assert_ptr_null(ev.channel);
    ck_assert_ptr_null(ev.flag);
    ck_assert_ptr_null(ev.data);
    buf_free(&b);
}
END_TEST

START_TEST(test_bad_headers)
{
    buf_t b;
    msgpack_packer pk;
    ev_t ev;
    char err[256];
    char longepoch[EV_MAX_EPOCH + 2];
    memset(longepoch, 'e', sizeof(longepoch) - 1);
    longepoch[sizeof(longepoch) - 1] = 0;
    buf_init(&b);
    msgpack_packer_init(&pk, &b, buf_msgpack_write);

    struct { const char *ch, *ep; uint64_t ver; int n; const char *want; } cases[] = {
        { "flags", "ep", 2, 4, "header[0]" },
        { "bad channel", "ep", 1, 4, "header[1] (channel)" },
        { "", "ep", 1, 4, "header[1] (channel)" },
        { "user:", "ep", 1, 4, "header[1] (channel)" },
        { "flags", "", 1, 4, "header[2] (epoch)" },
        { "flags", "a b", 1, 4, "header[2] (epoch)" },
        { "flags", longepoch, 1, 4, "header[2] (epoch)" },
        { "flags", "ep", 1, 3, "header: must be an array of 4" },
        { "flags", "ep", 1, 5, "header: must be an array of 4" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        b.len = 0;
        msgpack_pack_array(&pk, (size_t)cases[i].n);
        msgpack_pack_uint64(&pk, cases[i].ver);
        pk_str(&pk, cases[i].ch);
        pk_str(&pk, cases[i].ep);
        if (cases[i].n > 3)
            msgpack_pack_uint64(&pk, 1);
        if (cases[i].n > 4)
            msgpack_pack_uint64(&pk, 1);
        b_msg_no_data(&pk);
        ck_assert_int_eq(decode_buf(&b, &ev, err, sizeof(err)), -1);
        ck_assert_msg(strstr(err, cases[i].want) != NULL, "case %zu: %s", i, err);
    }
    /* exactly EV_MAX_EPOCH bytes is fine */
    longepoch[EV_MAX_EPOCH] = 0;
    b.len = 0;
    pack_header(&pk, "user:42", longepoch, 9);
    msgpack_pack_map(&pk, 3);
    pk_str(&pk, "type"); pk_str(&pk, "message");
    pk_str(&pk, "ts"); msgpack_pack_uint64(&pk, 1);
    pk_str(&pk, "data"); msgpack_pack_nil(&pk);
    ck_assert_msg(decode_buf(&b, &ev, err, sizeof(err)) == 0, "%s", err);
    ck_assert_str_eq(ev.channel, "user:42");
    ev_free(&ev);
    buf_free(&b);
}
END_TEST

START_TEST(test_trailing_and_missing)
{
    ev_t ev;
    buf_t b;
    char err[256];
    sample_event(&ev, EV_MESSAGE);
    buf_init(&b);
    ck_assert_int_eq(ev_encode(&ev, &b), 0);
    ev_free(&ev);
    buf_putc(&b, '\xc0');
    ck_assert_int_eq(decode_buf(&b, &ev, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "trailing") != NULL, "%s", err);

    /* header only */
    buf_t h;
    msgpack_packer pk;
    buf_init(&h);
    msgpack_packer_init(&pk, &h, buf_msgpack_write);
    pack_header(&pk, "flags", "ep", 1);
    ck_assert_int_eq(decode_buf(&h, &ev, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "body") != NULL, "%s", err);
    ck_assert_int_eq(ev_decode(NULL, 0, &ev, err, sizeof(err)), -1);
    ck_assert_int_eq(ev_decode("", 0, &ev, NULL, 0), -1);
    buf_free(&h);
    buf_free(&b);
}
END_TEST

START_TEST(test_truncated_every_byte)
{
    for (int t = 0; t < EV_TYPE_COUNT; t++) {
        ev_t ev, back;
        buf_t b;
        char err[256];
        sample_event(&ev, (ev_type_t)t);
        buf_init(&b);
        ck_assert_int_eq(ev_encode(&ev, &b), 0);
        for (size_t n = 0; n < b.len; n++) {
            /* a private copy of exactly n bytes, so ASan sees any overread */
            char *p = malloc(n ? n : 1);
            memcpy(p, b.data, n);
            ck_assert_msg(ev_decode(p, n, &back, err, sizeof(err)) == -1,
                          "type %d: %zu of %zu bytes accepted", t, n, b.len);
            ck_assert(err[0] != '\0');
            ck_assert_ptr_null(back.channel);
            free(p);
        }
        buf_free(&b);
        ev_free(&ev);
    }
}
END_TEST

START_TEST(test_garbage)
{
    /* a fixed-seed generator: random bytes, and random single-byte
     * corruptions of a valid message; nothing may crash or leak */
    unsigned long long s = 0x9e3779b97f4a7c15ULL;
    ev_t ev, back;
    buf_t b;
    char err[256];
    sample_event(&ev, EV_FLAG_UPDATED);
    buf_init(&b);
    ck_assert_int_eq(ev_encode(&ev, &b), 0);
    for (int iter = 0; iter < 20000; iter++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        size_t n = 1 + (size_t)(s % 300);
        char *p = malloc(b.len);
        if (iter % 2) {
            for (size_t i = 0; i < n; i++) {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                p[i] = (char)s;
            }
        } else {
            memcpy(p, b.data, b.len);
            p[s % b.len] ^= (char)(1 + (s >> 8) % 255);
            n = b.len;
        }
        if (ev_decode(p, n, &back, err, sizeof(err)) == 0)
            ev_free(&back);
        free(p);
    }
    buf_free(&b);
    ev_free(&ev);
}
END_TEST

/* ==== nesting and limits ================================================= */

/* A message whose data is `levels` nested arrays (innermost empty). */
static void nested_message(buf_t *b, int levels, int as_map)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, b, buf_msgpack_write);
    pack_header(&pk, "chat.room1", "ep", 1);
    msgpack_pack_map(&pk, 3);
    pk_str(&pk, "type"); pk_str(&pk, "message");
    pk_str(&pk, "ts"); msgpack_pack_uint64(&pk, 1);
    pk_str(&pk, "data");
    for (int i = 0; i < levels; i++) {
        if (as_map) {
            msgpack_pack_map(&pk, 1);
            pk_str(&pk, "k");
        } else {
            msgpack_pack_array(&pk, i + 1 < levels ? 1 : 0);
        }
    }
    if (as_map)
        msgpack_pack_nil(&pk);
}

START_TEST(test_deep_nesting)
{
    ev_t ev;
    buf_t b;
    char err[256];
    buf_init(&b);
    /* 31 levels inside the body map is the deepest msgpack-c can unpack */
    nested_message(&b, EV_MAX_DEPTH - 1, 0);
    ck_assert_msg(decode_buf(&b, &ev, err, sizeof(err)) == 0, "%s", err);
    /* it re-encodes and decodes again */
    buf_t b2;
    buf_init(&b2);
    ck_assert_int_eq(ev_encode(&ev, &b2), 0);
    ev_free(&ev);
    ck_assert_int_eq(decode_buf(&b2, &ev, err, sizeof(err)), 0);
    ev_free(&ev);
    buf_free(&b2);

    int depths[] = { EV_MAX_DEPTH, EV_MAX_DEPTH + 1, 100, 10000, 200000 };
    for (size_t i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
        for (int m = 0; m < 2; m++) {
            b.len = 0;
            nested_message(&b, depths[i], m);
            ck_assert_int_eq(decode_buf(&b, &ev, err, sizeof(err)), -1);
            ck_assert_msg(strstr(err, "nesting too deep") != NULL, "%d: %s", depths[i], err);
        }
    }
    /* the same depth limit on the publisher side: ev_encode_body refuses
     * data that the gateways could not decode */
    ev_init(&ev);
    ev.type = EV_MESSAGE;
    b.len = 0;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, buf_msgpack_write);
    for (int i = 0; i < EV_MAX_DEPTH; i++)
        msgpack_pack_array(&pk, i + 1 < EV_MAX_DEPTH ? 1 : 0);
    ev.data = b.data;
    ev.data_len = b.len;
    buf_t out;
    buf_init(&out);
    ck_assert_int_eq(ev_encode_body(&ev, &out), -1);
    ev.data = b.data + 1;               /* one level less: fine */
    ev.data_len = b.len - 1;
    ck_assert_int_eq(ev_encode_body(&ev, &out), 0);
    buf_free(&out);
    buf_free(&b);
}
END_TEST

START_TEST(test_huge_counts)
{
    /* containers that claim billions of elements must not make msgpack-c
     * allocate for them */
    static const unsigned char arr32[] = { 0x94, 0x01, 0xa1, 'c', 0xa1, 'e', 0x01,
                                           0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0 };
    static const unsigned char map32[] = { 0x94, 0x01, 0xa1, 'c', 0xa1, 'e', 0x01,
                                           0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0 };
    static const unsigned char str32[] = { 0x94, 0x01, 0xa1, 'c', 0xa1, 'e', 0x01,
                                           0xdb, 0xff, 0xff, 0xff, 0xff, 'x' };
    static const unsigned char hdr[] = { 0xdd, 0x7f, 0xff, 0xff, 0xff };
    ev_t ev;
    char err[256];
    ck_assert_int_eq(ev_decode((const char *)arr32, sizeof(arr32), &ev, err, sizeof(err)), -1);
    ck_assert_int_eq(ev_decode((const char *)map32, sizeof(map32), &ev, err, sizeof(err)), -1);
    ck_assert_int_eq(ev_decode((const char *)str32, sizeof(str32), &ev, err, sizeof(err)), -1);
    ck_assert_int_eq(ev_decode((const char *)hdr, sizeof(hdr), &ev, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "truncated") != NULL, "%s", err);
}
END_TEST

START_TEST(test_size_limit)
{
    /* a message of exactly EV_MAX_BYTES is accepted, one byte more is not */
    buf_t b;
    msgpack_packer pk;
    ev_t ev;
    char err[256];
    buf_init(&b);
    msgpack_packer_init(&pk, &b, buf_msgpack_write);
    pack_header(&pk, "chat.room1", "ep", 1);
    msgpack_pack_map(&pk, 3);
    pk_str(&pk, "type"); pk_str(&pk, "message");
    pk_str(&pk, "ts"); msgpack_pack_uint64(&pk, 1);
    pk_str(&pk, "data");
    size_t fixed = b.len + 5;                    /* str32 header */
    size_t n = EV_MAX_BYTES - fixed;
    char *s = malloc(n + 1);
    memset(s, 'x', n + 1);
    size_t mark = b.len;
    msgpack_pack_str_with_body(&pk, s, n);
    ck_assert_uint_eq(b.len, EV_MAX_BYTES);
    ck_assert_msg(decode_buf(&b, &ev, err, sizeof(err)) == 0, "%s", err);
    ev_free(&ev);
    b.len = mark;
    msgpack_pack_str_with_body(&pk, s, n + 1);
    ck_assert_uint_eq(b.len, EV_MAX_BYTES + 1);
    ck_assert_int_eq(decode_buf(&b, &ev, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "larger than") != NULL, "%s", err);
    free(s);
    buf_free(&b);
}
END_TEST

START_TEST(test_actor_limit)
{
    ev_t ev, back;
    buf_t b;
    char err[256];
    sample_event(&ev, EV_MESSAGE);
    free(ev.actor);
    ev.actor = malloc(EV_MAX_ACTOR + 2);
    memset(ev.actor, 'a', EV_MAX_ACTOR + 1);
    ev.actor[EV_MAX_ACTOR] = 0;                   /* exactly the limit */
    buf_init(&b);
    ck_assert_int_eq(ev_encode(&ev, &b), 0);
    ck_assert_msg(ev_decode(b.data, b.len, &back, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(strlen(back.actor), EV_MAX_ACTOR);
    ev_free(&back);
    ev.actor[EV_MAX_ACTOR] = 'a';                 /* one more */
    ev.actor[EV_MAX_ACTOR + 1] = 0;
    buf_reset(&b);
    ck_assert_int_eq(ev_encode(&ev, &b), -1);
    ck_assert_uint_eq(b.len, 0);
    buf_free(&b);
    ev_free(&ev);
}
END_TEST

START_TEST(test_value_check)
{
    msgpack_zone z;
    msgpack_object o;
    const char *err = NULL;
    /* build nested arrays as a msgpack_object tree by hand */
    msgpack_zone_init(&z, 4096);
    msgpack_object *cur = &o;
    for (int i = 0; i < EV_MAX_DEPTH; i++) {
        cur->type = MSGPACK_OBJECT_ARRAY;
        cur->via.array.size = 1;
        cur->via.array.ptr = msgpack_zone_malloc(&z, sizeof(msgpack_object));
        cur = cur->via.array.ptr;
    }
    cur->type = MSGPACK_OBJECT_NIL;
    ck_assert_int_eq(ev_value_check(&o, 0, &err), 0);
    ck_assert_int_eq(ev_value_check(&o, 1, &err), -1);
    ck_assert_str_eq(err, "nested deeper than 32 levels");
    ck_assert_int_eq(ev_value_check(o.via.array.ptr, 1, &err), 0);
    cur->type = MSGPACK_OBJECT_EXT;
    ck_assert_int_eq(ev_value_check(&o, 0, &err), -1);
    msgpack_zone_destroy(&z);
}
END_TEST

START_TEST(test_mp_scan)
{
    const char *err;
    size_t end;
    /* fixarray of 2 then a trailing byte */
    ck_assert_int_eq(mp_scan("\x92\x01\x02\xc0", 4, 32, 0, &end, &err), 0);
    ck_assert_uint_eq(end, 3);
    ck_assert_int_eq(mp_scan("\x92\x01", 2, 32, 0, &end, &err), -1);
    ck_assert_int_eq(mp_scan("\xc1", 1, 32, 0, &end, &err), -1);
    ck_assert_int_eq(mp_scan("", 0, 32, 0, &end, &err), -1);
    /* depth: [[]] is 2 levels */
    ck_assert_int_eq(mp_scan("\x91\x90", 2, 2, 0, &end, &err), 0);
    ck_assert_int_eq(mp_scan("\x91\x90", 2, 1, 0, &end, &err), -1);
    /* JSON mode: ext refused, int keys refused, bin keys fine */
    ck_assert_int_eq(mp_scan("\xd4\x01\x02", 3, 32, MP_SCAN_JSON, &end, &err), -1);
    ck_assert_int_eq(mp_scan("\xd4\x01\x02", 3, 32, 0, &end, &err), 0);
    ck_assert_int_eq(mp_scan("\x81\x01\xc0", 3, 32, MP_SCAN_JSON, &end, &err), -1);
    ck_assert_int_eq(mp_scan("\x81\xc4\x01k\xc0", 5, 32, MP_SCAN_JSON, &end, &err), 0);
    ck_assert_int_eq(mp_scan("\x81\xa1k\x81\x02\xc0", 6, 32, MP_SCAN_JSON, &end, &err), -1);
    /* every fixed-size type */
    static const char all[] = "\xdc\x00\x13\xc0\xc2\xc3\xcc\x01\xcd\x01\x02\xce\x01\x02\x03\x04"
        "\xcf\x01\x02\x03\x04\x05\x06\x07\x08\xd0\x01\xd1\x01\x02\xd2\x01\x02\x03\x04"
        "\xd3\x01\x02\x03\x04\x05\x06\x07\x08\xca\x01\x02\x03\x04"
        "\xcb\x01\x02\x03\x04\x05\x06\x07\x08\xc4\x01x\xd9\x01x\xda\x00\x01x"
        "\xe0\x7f\xc7\x01\x05x";
    ck_assert_int_eq(mp_scan(all, sizeof(all) - 1, 32, 0, &end, &err), 0);
    ck_assert_uint_eq(end, sizeof(all) - 1);
}
END_TEST

static Suite *event_suite(void)
{
    Suite *s = suite_create("event");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_roundtrip_every_type);
    tcase_add_test(tc, test_roundtrip_body_only);
    tcase_add_test(tc, test_roundtrip_minimal);
    tcase_add_test(tc, test_type_names);
    tcase_add_test(tc, test_encode_refuses_inconsistent);
    tcase_add_test(tc, test_lua_style_encoding);
    tcase_add_loop_test(tc, test_bad_bodies, 0, sizeof(bad_bodies) / sizeof(bad_bodies[0]));
    tcase_add_test(tc, test_bad_headers);
    tcase_add_test(tc, test_trailing_and_missing);
    tcase_add_test(tc, test_truncated_every_byte);
    tcase_add_test(tc, test_garbage);
    tcase_add_test(tc, test_deep_nesting);
    tcase_add_test(tc, test_huge_counts);
    tcase_add_test(tc, test_size_limit);
    tcase_add_test(tc, test_actor_limit);
    tcase_add_test(tc, test_value_check);
    tcase_add_test(tc, test_mp_scan);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(event_suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
