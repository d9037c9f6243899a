/* Unit tests for common/jsonin: bounds (depth, numbers, sizes), types,
 * unknown fields, and the JSON → msgpack and JSON → flag_t conversions. */
#include "common/jsonin.h"
#include "proto/json.h"
#include "tests/unit/proto/sample.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static json_t *parse(const char *s, char *err)
{
    return jsonin_parse(s, strlen(s), err, 256);
}

START_TEST(test_parse_bounds)
{
    char err[256];
    json_t *v;
    ck_assert_ptr_null(parse("", err));
    ck_assert_ptr_nonnull(strstr(err, "empty"));
    ck_assert_ptr_null(parse("{\"a\":", err));
    ck_assert_ptr_nonnull(strstr(err, "invalid JSON"));
    ck_assert_ptr_null(parse("1 2", err));
    ck_assert_ptr_null(parse("{\"a\":1,\"a\":2}", err));
    ck_assert_ptr_null(parse("123456789012345678901234567890", err));
    ck_assert_ptr_null(parse("1e400", err));
    ck_assert_ptr_null(parse("\"\\u0000\" x", err));
    ck_assert_ptr_null(parse("{\"description\":\"a\\u0000b\"}", err)); /* NUL inside */
    /* depth: 32 levels pass, 33 do not */
    char deep[128];
    for (int d = 31; d <= 33; d++) {
        int o = 0;
        for (int i = 0; i < d; i++) deep[o++] = '[';
        deep[o++] = '1';
        for (int i = 0; i < d; i++) deep[o++] = ']';
        deep[o] = '\0';
        v = parse(deep, err);
        if (d + 1 <= JSONIN_MAX_DEPTH) {
            ck_assert_msg(v != NULL, "depth %d refused: %s", d, err);
            json_decref(v);
        } else {
            ck_assert_msg(v == NULL, "depth %d accepted", d);
            ck_assert_ptr_nonnull(strstr(err, "deeper"));
        }
    }
    /* far past jansson's own limit: an error, not a crash */
    size_t n = 100000;
    char *huge = malloc(2 * n + 1);
    memset(huge, '[', n);
    memset(huge + n, ']', n);
    huge[2 * n] = '\0';
    ck_assert_ptr_null(jsonin_parse(huge, 2 * n, err, sizeof(err)));
    free(huge);
    v = parse("{\"a\":[1,2.5,\"x\",null,true,{\"b\":false}]}", err);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(jsonin_depth(v, 32), 4); /* object, array, object, scalar */
    ck_assert_int_eq(jsonin_nesting(v, 32), 3); /* containers only */
    json_decref(v);
    static const struct { const char *j; int n; } nest[] = {
        { "1", 0 }, { "[]", 1 }, { "[1]", 1 }, { "{}", 1 }, { "[[]]", 2 }, { "[[1],2]", 2 },
        { "{\"a\":{\"b\":[]}}", 3 },
    };
    for (size_t i = 0; i < sizeof(nest) / sizeof(nest[0]); i++) {
        v = parse(nest[i].j, err);
        ck_assert_msg(jsonin_nesting(v, 32) == nest[i].n, "%s", nest[i].j);
        json_decref(v);
    }
}
END_TEST

START_TEST(test_to_msgpack)
{
    char err[256];
    const char *e;
    json_t *v = parse("{\"s\":\"h\\u00e9\",\"i\":-5,\"big\":9007199254740993,\"f\":2.5,"
                      "\"n\":null,\"t\":true,\"a\":[1,[2]],\"o\":{}}", err);
    buf_t b, j;
    buf_init(&b);
    ck_assert_int_eq(jsonin_to_msgpack(v, &b, &e), 0);
    buf_init(&j);
    ck_assert_int_eq(json_msgpack_bytes(&j, b.data, b.len), 0);
    ck_assert_str_eq(j.data, "{\"s\":\"h\xc3\xa9\",\"i\":-5,\"big\":9007199254740993,\"f\":2.5,"
                             "\"n\":null,\"t\":true,\"a\":[1,[2]],\"o\":{}}");
    buf_free(&j);
    buf_free(&b);
    /* the output limit is honoured */
    buf_init(&b);
    b.limit = 8;
    ck_assert_int_eq(jsonin_to_msgpack(v, &b, &e), -1);
    ck_assert_ptr_nonnull(e);
    buf_free(&b);
    json_decref(v);
    /* a tree built by hand past the depth limit is refused */
    json_t *root = json_array(), *cur = root;
    for (int i = 0; i < 40; i++) {
        json_t *n = json_array();
        json_array_append_new(cur, n);
        cur = n;
    }
    buf_init(&b);
    ck_assert_int_eq(jsonin_to_msgpack(root, &b, &e), -1);
    ck_assert_ptr_nonnull(strstr(e, "deep"));
    buf_free(&b);
    json_decref(root);
}
END_TEST

START_TEST(test_flag_full)
{
    char err[256];
    unsigned present;
    flag_t f;
    json_t *v = parse("{\"key\":\"k\",\"enabled\":true,\"description\":\"d\",\"tags\":[\"a\",\"b\"],"
                      "\"variants\":[{\"key\":\"on\",\"attachment\":{\"c\":1}},{\"key\":\"off\"}],"
                      "\"segments\":[{\"rank\":3,\"rolloutPercent\":40,\"description\":\"s\","
                      "\"constraints\":[{\"property\":\"p\",\"operator\":\"EQ\",\"value\":\"v\"}],"
                      "\"distributions\":[{\"variantKey\":\"on\",\"percent\":100}]}]}", err);
    ck_assert_ptr_nonnull(v);
    flag_init(&f);
    ck_assert_msg(jsonin_flag(v, JSONIN_ALL, &f, &present, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(present, JSONIN_ALL);
    ck_assert_str_eq(f.key, "k");
    ck_assert(f.enabled);
    ck_assert_str_eq(f.description, "d");
    ck_assert_uint_eq(f.ntags, 2);
    ck_assert_uint_eq(f.nvariants, 2);
    ck_assert_ptr_nonnull(f.variants[0].attachment);
    ck_assert_ptr_null(f.variants[1].attachment);
    ck_assert_uint_eq(f.nsegments, 1);
    ck_assert_uint_eq(f.segments[0].rank, 3);
    ck_assert_uint_eq(f.segments[0].rollout_percent, 40);
    ck_assert_str_eq(f.segments[0].constraints[0].op, "EQ");
    ck_assert_str_eq(f.segments[0].distributions[0].variant_key, "on");
    f.id = 1;
    f.version = 1;
    const char *e;
    ck_assert_msg(flag_validate(&f, &e) == 0, "%s", e);
    json_decref(v);

    /* A partial update keeps the other fields. */
    v = parse("{\"enabled\":false}", err);
    ck_assert_int_eq(jsonin_flag(v, JSONIN_ENABLED, &f, &present, err, sizeof(err)), 0);
    ck_assert_uint_eq(present, JSONIN_ENABLED);
    ck_assert(!f.enabled);
    ck_assert_uint_eq(f.ntags, 2);
    json_decref(v);
    /* A failing field leaves the previous value of that field. */
    v = parse("{\"tags\":[\"x\",1]}", err);
    ck_assert_int_eq(jsonin_flag(v, JSONIN_ALL, &f, &present, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "tags[1] must be a string, not an integer");
    ck_assert_uint_eq(f.ntags, 2);
    ck_assert_str_eq(f.tags[0], "a");
    json_decref(v);
    flag_free(&f);
}
END_TEST

/* Every field through every walker: a record with all fields set, rendered
 * by flag_to_json and read back by jsonin_flag, is the same record and packs
 * to the same bytes (id, version and updatedAt are not JSON input: the
 * publisher sets them). */
START_TEST(test_flag_every_field_roundtrip)
{
    flag_t f, back;
    buf_t js, b1, b2;
    char err[256];
    unsigned present;
    json_error_t je;

    sample_flag(&f);
    f.variants[0].id = 5;     /* ids too (the second variant has none) */
    f.segments[0].id = 6;
    f.segments[1].id = 7;
    buf_init(&js);
    ck_assert_int_eq(flag_to_json(&f, &js), 0);
    json_t *v = json_loadb(js.data, js.len, 0, &je);
    ck_assert_msg(v != NULL, "%s", je.text);
    json_object_del(v, "id");
    json_object_del(v, "version");
    json_object_del(v, "updatedAt");
    flag_init(&back);
    ck_assert_msg(jsonin_flag(v, JSONIN_ALL, &back, &present, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(present, JSONIN_ALL);
    back.id = f.id;
    back.version = f.version;
    back.updated_at = f.updated_at;
    ck_assert(flag_eq(&f, &back));
    buf_init(&b1);
    buf_init(&b2);
    ck_assert_int_eq(flag_encode(&f, &b1), 0);
    ck_assert_int_eq(flag_encode(&back, &b2), 0);
    ck_assert_uint_eq(b1.len, b2.len);
    ck_assert(memcmp(b1.data, b2.data, b1.len) == 0);
    buf_free(&b1);
    buf_free(&b2);
    buf_free(&js);
    json_decref(v);
    flag_free(&back);
    flag_free(&f);
}
END_TEST

START_TEST(test_flag_errors)
{
    static const struct { const char *json; unsigned allowed; const char *msg; } cases[] = {
        { "[]", JSONIN_ALL, "must be a JSON object" },
        { "{\"nope\":1}", JSONIN_ALL, "unknown field \"nope\"" },
        { "{\"id\":1}", JSONIN_ALL, "read-only" },
        { "{\"version\":1}", JSONIN_ALL, "read-only" },
        { "{\"tags\":[]}", JSONIN_ENABLED, "cannot be set here" },
        { "{\"key\":1}", JSONIN_ALL, "key must be a string" },
        { "{\"enabled\":\"true\"}", JSONIN_ALL, "enabled must be a boolean" },
        { "{\"enabled\":null}", JSONIN_ALL, "enabled must be a boolean" },
        { "{\"description\":5}", JSONIN_ALL, "description must be a string" },
        { "{\"tags\":\"a\"}", JSONIN_ALL, "tags must be an array" },
        { "{\"variants\":[1]}", JSONIN_ALL, "variants[0] must be an object" },
        { "{\"variants\":[{}]}", JSONIN_ALL, "variants[0].key is required" },
        { "{\"variants\":[{\"key\":\"a\",\"x\":1}]}", JSONIN_ALL, "unknown field \"x\" in variants[0]" },
        { "{\"segments\":{}}", JSONIN_ALL, "segments must be an array" },
        { "{\"segments\":[{\"rolloutPercent\":101}]}", JSONIN_ALL, "between 0 and 100" },
        { "{\"segments\":[{\"rolloutPercent\":-1}]}", JSONIN_ALL, "between 0 and 100" },
        { "{\"segments\":[{\"rolloutPercent\":50.5}]}", JSONIN_ALL, "must be an integer" },
        { "{\"segments\":[{\"rank\":\"1\"}]}", JSONIN_ALL, "rank must be an integer" },
        { "{\"segments\":[{\"constraints\":[{\"property\":\"p\",\"operator\":\"EQ\"}]}]}",
          JSONIN_ALL, "constraints[0].value is required" },
        { "{\"segments\":[{\"constraints\":[{\"property\":\"p\",\"operator\":\"EQ\",\"value\":1}]}]}",
          JSONIN_ALL, "value must be a string" },
        { "{\"segments\":[{\"distributions\":[{\"variantKey\":\"a\"}]}]}", JSONIN_ALL,
          "percent is required" },
        { "{\"variants\":[{\"id\":-1,\"key\":\"a\"}]}", JSONIN_ALL,
          "variants[0].id must be between 0 and" },
        { "{\"segments\":[{\"id\":\"7\"}]}", JSONIN_ALL,
          "segments[0].id must be an integer, not a string" },
        /* nested arrays and objects name the wrong type, as top-level ones do */
        { "{\"segments\":[{\"constraints\":5}]}", JSONIN_ALL,
          "segments[0].constraints must be an array, not an integer" },
        { "{\"segments\":[{\"distributions\":[[]]}]}", JSONIN_ALL,
          "segments[0].distributions[0] must be an object, not an array" },
        { "{\"segments\":[{},{\"constraints\":[{},{}]}]}", JSONIN_ALL,
          "segments[1].constraints[0].property is required" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256];
        unsigned present;
        flag_t f;
        json_t *v = parse(cases[i].json, err);
        ck_assert_msg(v != NULL, "case %zu did not parse: %s", i, err);
        flag_init(&f);
        ck_assert_msg(jsonin_flag(v, cases[i].allowed, &f, &present, err, sizeof(err)) == -1,
                      "case %zu accepted", i);
        ck_assert_msg(strstr(err, cases[i].msg) != NULL, "case %zu: \"%s\" lacks \"%s\"", i,
                      err, cases[i].msg);
        flag_free(&f);
        json_decref(v);
    }
}
END_TEST

START_TEST(test_flag_limits)
{
    char err[256];
    unsigned present;
    flag_t f;
    buf_t b;
    buf_init(&b);
    buf_puts(&b, "{\"tags\":[");
    for (int i = 0; i <= FLAG_MAX_TAGS; i++)
        buf_printf(&b, "%s\"t%d\"", i ? "," : "", i);
    buf_puts(&b, "]}");
    json_t *v = parse(b.data, err);
    flag_init(&f);
    ck_assert_int_eq(jsonin_flag(v, JSONIN_ALL, &f, &present, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "too many tags"));
    json_decref(v);
    buf_reset(&b);
    /* an attachment over FLAG_MAX_ATTACHMENT */
    buf_puts(&b, "{\"variants\":[{\"key\":\"a\",\"attachment\":\"");
    for (int i = 0; i < FLAG_MAX_ATTACHMENT + 10; i++)
        buf_putc(&b, 'x');
    buf_puts(&b, "\"}]}");
    v = parse(b.data, err);
    ck_assert_int_eq(jsonin_flag(v, JSONIN_ALL, &f, &present, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "attachment"));
    json_decref(v);
    /* attachments may nest FLAG_MAX_ATTACHMENT_DEPTH containers, not one more;
     * what jsonin accepts, flag_validate and the event encoder accept too. */
    for (int d = FLAG_MAX_ATTACHMENT_DEPTH; d <= FLAG_MAX_ATTACHMENT_DEPTH + 1; d++) {
        buf_reset(&b);
        buf_puts(&b, "{\"key\":\"k\",\"variants\":[{\"key\":\"a\",\"attachment\":");
        for (int i = 0; i < d; i++) buf_putc(&b, '[');
        for (int i = 0; i < d; i++) buf_putc(&b, ']');
        buf_puts(&b, "}]}");
        v = parse(b.data, err);
        ck_assert_ptr_nonnull(v);
        flag_free(&f);
        flag_init(&f);
        int rc = jsonin_flag(v, JSONIN_ALL, &f, &present, err, sizeof(err));
        json_decref(v);
        if (d == FLAG_MAX_ATTACHMENT_DEPTH) {
            ck_assert_msg(rc == 0, "%s", err);
            const char *e;
            f.id = 1;
            f.version = 1;
            ck_assert_msg(flag_validate(&f, &e) == 0, "%s", e);
            ev_t ev;
            buf_t body;
            ev_init(&ev);
            ev.type = EV_FLAG_CREATED;
            ev.flag = &f;
            buf_init(&body);
            ck_assert_int_eq(ev_encode_body(&ev, &body), 0);
            buf_free(&body);
        } else {
            ck_assert_int_eq(rc, -1);
            ck_assert_ptr_nonnull(strstr(err, "nests deeper"));
        }
    }
    buf_free(&b);
    flag_free(&f);
}
END_TEST

/* Variant and segment ids are accepted on input (a client sends them back
 * to keep them); absent ones read as 0. */
START_TEST(test_flag_ids)
{
    char err[256];
    unsigned present;
    flag_t f;
    json_t *v = parse("{\"key\":\"k\",\"variants\":[{\"id\":7,\"key\":\"on\"},{\"key\":\"off\"}],"
                      "\"segments\":[{\"id\":9007199254740993},{}]}", err);
    ck_assert_ptr_nonnull(v);
    flag_init(&f);
    ck_assert_msg(jsonin_flag(v, JSONIN_ALL, &f, &present, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(f.variants[0].id, 7);
    ck_assert_uint_eq(f.variants[1].id, 0);
    ck_assert_uint_eq(f.segments[0].id, 9007199254740993ULL);
    ck_assert_uint_eq(f.segments[1].id, 0);
    ck_assert_uint_eq(f.segments[1].rank, 1);
    json_decref(v);
    flag_free(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jsonin");
    TCase *tc = tcase_create("jsonin");
    tcase_add_test(tc, test_parse_bounds);
    tcase_add_test(tc, test_to_msgpack);
    tcase_add_test(tc, test_flag_full);
    tcase_add_test(tc, test_flag_ids);
    tcase_add_test(tc, test_flag_every_field_roundtrip);
    tcase_add_test(tc, test_flag_errors);
    tcase_add_test(tc, test_flag_limits);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
