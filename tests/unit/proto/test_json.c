/*
 * Unit tests for proto/json: string escaping (every control character,
 * quotes, backslash, U+2028/2029, every kind of invalid UTF-8) checked
 * against jansson, and msgpack-to-JSON (every type, numbers, base64, keys,
 * depth), with the streaming and the tree renderer compared on random values.
 */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/event.h"
#include "proto/json.h"

#define FFFD "\xef\xbf\xbd"

static char *render(const char *s, size_t n)
{
    buf_t b;
    buf_init(&b);
    ck_assert_int_eq(json_str(&b, s, n), 0);
    return buf_steal(&b, NULL);
}

static void expect(const char *in, size_t n, const char *want)
{
    char *got = render(in, n);
    ck_assert_msg(strcmp(got, want) == 0, "got %s want %s", got, want);
    free(got);
}

START_TEST(test_escapes)
{
    expect("", 0, "\"\"");
    expect("plain text", 10, "\"plain text\"");
    expect("a\"b\\c/d", 7, "\"a\\\"b\\\\c/d\"");
    expect("\n\r\t\b\f", 5, "\"\\n\\r\\t\\b\\f\"");
    expect("\x00\x01\x1f\x7f", 4, "\"\\u0000\\u0001\\u001f\x7f\"");
    expect("\xe2\x80\xa8x\xe2\x80\xa9", 7, "\"\\u2028x\\u2029\"");
    expect("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14,
           "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    buf_t b;
    buf_init(&b);
    ck_assert_int_eq(json_cstr(&b, NULL), 0);
    ck_assert_int_eq(json_cstr(&b, "x"), 0);
    ck_assert_str_eq(b.data, "null\"x\"");
    buf_free(&b);
}
END_TEST

START_TEST(test_every_control_char)
{
    for (int c = 0; c < 0x20; c++) {
        char in[3] = { 'a', (char)c, 'b' };
        char *got = render(in, 3);
        json_error_t je;
        json_t *j = json_loads(got, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        ck_assert_msg(j != NULL, "char %d: %s", c, je.text);
        ck_assert_uint_eq(json_string_length(j), 3);
        ck_assert(memcmp(json_string_value(j), in, 3) == 0);
        for (const char *p = got; *p; p++)
            ck_assert((unsigned char)*p >= 0x20);
        json_decref(j);
        free(got);
    }
}
END_TEST

START_TEST(test_invalid_utf8)
{
    expect("\x80", 1, "\"" FFFD "\"");                          /* lone continuation */
    expect("\xbf" "a", 2, "\"" FFFD "a\"");
    expect("\xc0\x80", 2, "\"" FFFD FFFD "\"");                 /* overlong NUL */
    expect("\xc1\xbf", 2, "\"" FFFD FFFD "\"");                 /* overlong */
    expect("\xe0\x80\x80", 3, "\"" FFFD FFFD FFFD "\"");        /* overlong 3-byte */
    expect("\xe0\x9f\xbf", 3, "\"" FFFD FFFD FFFD "\"");
    expect("\xf0\x80\x80\x80", 4, "\"" FFFD FFFD FFFD FFFD "\""); /* overlong 4-byte */
    expect("\xf0\x8f\xbf\xbf", 4, "\"" FFFD FFFD FFFD FFFD "\"");
    expect("\xed\xa0\x80", 3, "\"" FFFD FFFD FFFD "\"");        /* surrogate D800 */
    expect("\xed\xbf\xbf", 3, "\"" FFFD FFFD FFFD "\"");        /* surrogate DFFF */
    expect("\xed\x9f\xbf", 3, "\"\xed\x9f\xbf\"");              /* U+D7FF is fine */
    expect("\xf4\x90\x80\x80", 4, "\"" FFFD FFFD FFFD FFFD "\""); /* > U+10FFFF */
    expect("\xf4\x8f\xbf\xbf", 4, "\"\xf4\x8f\xbf\xbf\"");      /* U+10FFFF is fine */
    expect("\xf5\x80\x80\x80", 4, "\"" FFFD FFFD FFFD FFFD "\"");
    expect("\xff\xfe", 2, "\"" FFFD FFFD "\"");
    expect("\xe2\x82", 2, "\"" FFFD FFFD "\"");                 /* truncated at end */
    expect("\xe2\x82" "A", 3, "\"" FFFD FFFD "A\"");            /* truncated mid-string */
    expect("\xf0\x9f\x98", 3, "\"" FFFD FFFD FFFD "\"");
    expect("\xc3", 1, "\"" FFFD "\"");
    expect("\xc3\xc3\xa9", 3, "\"" FFFD "\xc3\xa9\"");
}
END_TEST

/* Every 1-, 2- and 3-byte input: the output is valid JSON of valid UTF-8;
 * if jansson deems the input valid UTF-8, it reads back unchanged. */
static void check_against_jansson(const char *in, size_t n)
{
    char *got = render(in, n);
    json_error_t je;
    json_t *j = json_loads(got, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    ck_assert_msg(j != NULL, "invalid JSON for %zu bytes %02x %02x %02x: %s", n,
                  n > 0 ? (unsigned char)in[0] : 0, n > 1 ? (unsigned char)in[1] : 0,
                  n > 2 ? (unsigned char)in[2] : 0, je.text);
    json_t *ref = json_stringn(in, n);
    if (ref) {
        ck_assert_msg(json_string_length(j) == n &&
                      memcmp(json_string_value(j), in, n) == 0,
                      "valid UTF-8 %02x %02x %02x changed", (unsigned char)in[0],
                      n > 1 ? (unsigned char)in[1] : 0, n > 2 ? (unsigned char)in[2] : 0);
        json_decref(ref);
    } else {
        ck_assert_msg(strstr(got, FFFD) != NULL, "invalid input kept as is");
    }
    json_decref(j);
    free(got);
}

START_TEST(test_exhaustive_short)
{
    char in[3];
    for (int a = 0; a < 256; a++) {
        in[0] = (char)a;
        check_against_jansson(in, 1);
        for (int b = 0; b < 256; b++) {
            in[1] = (char)b;
            check_against_jansson(in, 2);
        }
    }
    /* 3 bytes: every lead byte from 0xe0 with every continuation pair */
    for (int a = 0xe0; a < 0x100; a += 1)
        for (int b = 0x70; b < 0xd0; b++)
            for (int c = 0x70; c < 0xd0; c += 7) {
                in[0] = (char)a; in[1] = (char)b; in[2] = (char)c;
                check_against_jansson(in, 3);
            }
}
END_TEST

START_TEST(test_random_bytes)
{
    unsigned long long s = 88172645463325252ULL;
    char in[64];
    for (int iter = 0; iter < 50000; iter++) {
        size_t n = 1 + iter % 63;
        for (size_t i = 0; i < n; i++) {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            /* bias toward the interesting high bytes */
            in[i] = (char)((s & 3) ? (0x80 | (s >> 8)) : (s >> 8));
        }
        check_against_jansson(in, n);
    }
}
END_TEST

/* ==== msgpack values ===================================================== */

static char *mp_json(void (*fill)(msgpack_packer *))
{
    buf_t mp, out;
    msgpack_packer pk;
    buf_init(&mp);
    buf_init(&out);
    msgpack_packer_init(&pk, &mp, buf_msgpack_write);
    fill(&pk);
    if (json_msgpack_bytes(&out, mp.data, mp.len) != 0) {
        buf_free(&mp);
        buf_free(&out);
        return NULL;
    }
    /* the tree renderer says the same */
    msgpack_unpacked u;
    size_t off = 0;
    buf_t out2;
    buf_init(&out2);
    msgpack_unpacked_init(&u);
    ck_assert_int_eq(msgpack_unpack_next(&u, mp.data, mp.len, &off), MSGPACK_UNPACK_SUCCESS);
    ck_assert_int_eq(json_msgpack(&out2, &u.data), 0);
    ck_assert_str_eq(out.data, out2.data);
    msgpack_unpacked_destroy(&u);
    buf_free(&out2);
    buf_free(&mp);
    return buf_steal(&out, NULL);
}

static void f_scalars(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 14);
    msgpack_pack_nil(pk);
    msgpack_pack_true(pk);
    msgpack_pack_false(pk);
    msgpack_pack_uint64(pk, 0);
    msgpack_pack_uint64(pk, 18446744073709551615ULL);
    msgpack_pack_int64(pk, -1);
    msgpack_pack_int64(pk, INT64_MIN);
    msgpack_pack_int8(pk, -100);
    msgpack_pack_double(pk, 0.1);
    msgpack_pack_double(pk, -2.5e300);
    msgpack_pack_float(pk, 0.1f);
    msgpack_pack_double(pk, NAN);
    msgpack_pack_double(pk, INFINITY);
    msgpack_pack_double(pk, 1.0);
}

START_TEST(test_msgpack_scalars)
{
    char *s = mp_json(f_scalars);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "[null,true,false,0,18446744073709551615,-1,-9223372036854775808,"
                        "-100,0.1,-2.5e+300,0.1,null,null,1]");
    free(s);
}
END_TEST

static void f_bin(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 5);
    msgpack_pack_bin_with_body(pk, "", 0);
    msgpack_pack_bin_with_body(pk, "f", 1);
    msgpack_pack_bin_with_body(pk, "fo", 2);
    msgpack_pack_bin_with_body(pk, "foo", 3);
    msgpack_pack_bin_with_body(pk, "\xff\xfe\x00\x01", 4);
}

START_TEST(test_msgpack_bin_base64)
{
    char *s = mp_json(f_bin);
    ck_assert_str_eq(s, "[\"\",\"Zg==\",\"Zm8=\",\"Zm9v\",\"//4AAQ==\"]");
    free(s);
}
END_TEST

static void f_keys(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 6);
    msgpack_pack_str_with_body(pk, "s\"k", 3); msgpack_pack_uint64(pk, 1);
    msgpack_pack_bin_with_body(pk, "bk", 2); msgpack_pack_uint64(pk, 2);
    msgpack_pack_uint64(pk, 7); msgpack_pack_uint64(pk, 3);
    msgpack_pack_int64(pk, -7); msgpack_pack_map(pk, 0);
    msgpack_pack_true(pk); msgpack_pack_array(pk, 0);
    msgpack_pack_nil(pk); msgpack_pack_str_with_body(pk, "v", 1);
}

static void f_container_key(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    msgpack_pack_array(pk, 2);
    msgpack_pack_uint64(pk, 1);
    msgpack_pack_str_with_body(pk, "x", 1);
    msgpack_pack_uint64(pk, 1);
    msgpack_pack_str_with_body(pk, "k", 1);
    msgpack_pack_uint64(pk, 2);
}

START_TEST(test_msgpack_keys)
{
    char *s = mp_json(f_keys);
    ck_assert_str_eq(s, "{\"s\\\"k\":1,\"bk\":2,\"7\":3,\"-7\":{},\"true\":[],\"null\":\"v\"}");
    free(s);
    s = mp_json(f_container_key);       /* via the tree fallback */
    ck_assert_str_eq(s, "{\"[1,\\\"x\\\"]\":1,\"k\":2}");
    free(s);
}
END_TEST

static void f_ext(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 2);
    msgpack_pack_ext_with_body(pk, "abc", 3, 1);
    msgpack_pack_uint64(pk, 1);
}

START_TEST(test_nested_container_keys)
{
    /* maps whose keys are maps whose keys are maps...: each level escapes
     * the one inside again; the key text bound keeps this linear */
    buf_t mp, out;
    msgpack_packer pk;
    buf_init(&mp);
    buf_init(&out);
    msgpack_packer_init(&pk, &mp, buf_msgpack_write);
    for (int i = 0; i < 31; i++)
        msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "\"\\", 2);
    for (int i = 0; i < 31; i++)
        msgpack_pack_uint64(&pk, 1);
    buf_puts(&out, "keep");
    ck_assert_int_eq(json_msgpack_bytes(&out, mp.data, mp.len), -1);
    ck_assert_str_eq(out.data, "keep");
    ck_assert_int_eq(out.err, 0);

    /* a few levels are fine */
    buf_reset(&mp);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "a", 1);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_uint64(&pk, 2);
    buf_reset(&out);
    ck_assert_int_eq(json_msgpack_bytes(&out, mp.data, mp.len), 0);
    ck_assert_str_eq(out.data, "{\"{\\\"a\\\":1}\":2}");
    buf_free(&mp);
    buf_free(&out);
}
END_TEST

START_TEST(test_msgpack_ext)
{
    char *s = mp_json(f_ext);
    ck_assert_str_eq(s, "[null,1]");
    free(s);
}
END_TEST

START_TEST(test_msgpack_depth_and_errors)
{
    buf_t mp, out;
    msgpack_packer pk;
    buf_init(&mp);
    buf_init(&out);
    msgpack_packer_init(&pk, &mp, buf_msgpack_write);
    for (int i = 0; i < EV_MAX_DEPTH; i++)
        msgpack_pack_array(&pk, i + 1 < EV_MAX_DEPTH ? 1 : 0);
    ck_assert_int_eq(json_msgpack_bytes(&out, mp.data, mp.len), 0);
    ck_assert_uint_eq(out.len, 2 * EV_MAX_DEPTH);

    /* 33 levels: refused, and out is left as it was */
    buf_reset(&mp);
    buf_reset(&out);
    buf_puts(&out, "keep");
    for (int i = 0; i < EV_MAX_DEPTH + 1; i++)
        msgpack_pack_array(&pk, i < EV_MAX_DEPTH ? 1 : 0);
    ck_assert_int_eq(json_msgpack_bytes(&out, mp.data, mp.len), -1);
    ck_assert_str_eq(out.data, "keep");
    ck_assert_int_eq(out.err, 0);

    /* trailing bytes, truncation, 0xc1, empty input */
    ck_assert_int_eq(json_msgpack_bytes(&out, "\x01\x02", 2), -1);
    ck_assert_int_eq(json_msgpack_bytes(&out, "\x92\x01", 2), -1);
    ck_assert_int_eq(json_msgpack_bytes(&out, "\xc1", 1), -1);
    ck_assert_int_eq(json_msgpack_bytes(&out, "", 0), -1);
    ck_assert_int_eq(json_msgpack_bytes(&out, "\xdd\xff\xff\xff\xff", 5), -1);
    ck_assert_int_eq(json_msgpack_bytes(&out, "\xdb\xff\xff\xff\xff" "a", 6), -1);
    ck_assert_str_eq(out.data, "keep");
    buf_free(&mp);
    buf_free(&out);
}
END_TEST

/* Random msgpack values: both renderers agree and jansson parses the text. */
static unsigned long long rs = 0x2545F4914F6CDD1DULL;
static unsigned rnd(unsigned n)
{
    rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17;
    return (unsigned)(rs % n);
}

static void random_value(msgpack_packer *pk, int depth)
{
    unsigned k = rnd(depth < 6 ? 12 : 9);
    char s[8];
    switch (k) {
    case 0: msgpack_pack_nil(pk); break;
    case 1: msgpack_pack_true(pk); break;
    case 2: msgpack_pack_uint64(pk, (uint64_t)rs >> rnd(64)); break;
    case 3: msgpack_pack_int64(pk, -(int64_t)(rs >> (1 + rnd(63)))); break;
    case 4: msgpack_pack_double(pk, (double)(int64_t)rs / (double)(1 + rnd(1000))); break;
    case 5: msgpack_pack_float(pk, (float)rnd(100000) / 7.0f); break;
    case 6:
    case 7:
        for (int i = 0; i < 8; i++)
            s[i] = (char)rnd(256);
        msgpack_pack_str_with_body(pk, s, rnd(9));
        break;
    case 8:
        for (int i = 0; i < 8; i++)
            s[i] = (char)rnd(256);
        msgpack_pack_bin_with_body(pk, s, rnd(9));
        break;
    case 9:
    case 10: {
        unsigned n = rnd(4);
        msgpack_pack_array(pk, n);
        for (unsigned i = 0; i < n; i++)
            random_value(pk, depth + 1);
        break;
    }
    default: {
        unsigned n = rnd(4);
        msgpack_pack_map(pk, n);
        for (unsigned i = 0; i < n; i++) {
            if (rnd(5) == 0) {
                msgpack_pack_int64(pk, (int64_t)rnd(100) - 50);
            } else {
                for (int j = 0; j < 4; j++)
                    s[j] = (char)('a' + rnd(26));
                msgpack_pack_str_with_body(pk, s, 1 + rnd(4));
            }
            random_value(pk, depth + 1);
        }
    }
    }
}

static void f_random(msgpack_packer *pk)
{
    random_value(pk, 0);
}

START_TEST(test_msgpack_random)
{
    for (int i = 0; i < 5000; i++) {
        char *s = mp_json(f_random);
        ck_assert_ptr_nonnull(s);
        json_error_t je;
        json_t *j = json_loads(s, JSON_DECODE_ANY | JSON_ALLOW_NUL |
                               JSON_DECODE_INT_AS_REAL, &je);
        ck_assert_msg(j != NULL, "%s: %s", je.text, s);
        json_decref(j);
        free(s);
    }
}
END_TEST

START_TEST(test_buffer_limit)
{
    /* a buffer that hits its limit latches err and the call fails */
    buf_t b;
    buf_init(&b);
    b.limit = 8;
    ck_assert_int_eq(json_str(&b, "0123456789", 10), -1);
    ck_assert_int_eq(b.err, 1);
    buf_free(&b);
}
END_TEST

static Suite *json_suite(void)
{
    Suite *s = suite_create("json");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_escapes);
    tcase_add_test(tc, test_every_control_char);
    tcase_add_test(tc, test_invalid_utf8);
    tcase_add_test(tc, test_exhaustive_short);
    tcase_add_test(tc, test_random_bytes);
    tcase_add_test(tc, test_msgpack_scalars);
    tcase_add_test(tc, test_msgpack_bin_base64);
    tcase_add_test(tc, test_msgpack_keys);
    tcase_add_test(tc, test_msgpack_ext);
    tcase_add_test(tc, test_nested_container_keys);
    tcase_add_test(tc, test_msgpack_depth_and_errors);
    tcase_add_test(tc, test_msgpack_random);
    tcase_add_test(tc, test_buffer_limit);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(json_suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
