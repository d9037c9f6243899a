/* Unit tests for gateway/wsmsg: parsing (JSON and msgpack) and rendering. */
#include <check.h>
#include <jansson.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gateway/wsmsg.h"
#include "proto/eval_ctx.h"

static wsmsg_t m;
static wsmsg_error_t e;

static int pj(const char *s)
{
    return wsmsg_parse(WSMSG_FMT_JSON, s, strlen(s), 0, 0, &m, &e);
}

static void setup(void) { wsmsg_init(&m); }
static void teardown(void) { wsmsg_free(&m); }

#define ERR(code_) do { ck_assert_int_eq(e.code, code_); ck_assert(e.message[0]); } while (0)

START_TEST(json_subscribe_full)
{
    ck_assert_int_eq(pj("{\"type\":\"subscribe\",\"flags\":[\"b\",\"a\"],\"flagIDs\":[7,\"12\"],"
                        "\"tags\":[\"web\"],\"channels\":[\"chat.room1\",\"flags\"],"
                        "\"subscribeAll\":false,\"since\":{\"chat.room1\":{\"epoch\":\"ab\",\"offset\":5}},"
                        "\"id\":{\"x\":[1,2,{}]}}"), 0);
    ck_assert_int_eq(m.type, WSMSG_SUBSCRIBE);
    ck_assert_uint_eq(m.req.items.nkeys, 2);
    ck_assert_str_eq(m.req.items.keys[0], "a");
    ck_assert_uint_eq(m.req.items.nids, 2);
    ck_assert(m.req.items.ids[0] == 7 && m.req.items.ids[1] == 12);
    ck_assert_uint_eq(m.req.items.ntags, 1);
    ck_assert_uint_eq(m.req.items.nchannels, 1);
    ck_assert(m.req.flags_listed);
    ck_assert(!m.req.subscribe_all);
    ck_assert_uint_eq(m.nsince, 1);
    ck_assert_str_eq(m.since[0].channel, "chat.room1");
    ck_assert_str_eq(m.since[0].epoch, "ab");
    ck_assert(m.since[0].offset == 5);

    ck_assert_int_eq(pj("{\"type\":\"unsubscribe\",\"subscribeAll\":true}"), 0);
    ck_assert_int_eq(m.type, WSMSG_UNSUBSCRIBE);
    ck_assert(m.req.subscribe_all);
    ck_assert_uint_eq(m.req.items.nkeys, 0);            /* reset between parses */
}
END_TEST

/* A field the type does not take is refused naming it (a misspelt filter
 * must not answer `subscribed` with empty lists); the SSE names are
 * accepted as aliases. */
START_TEST(unknown_fields)
{
    ck_assert_int_eq(pj("{\"type\":\"subscribe\",\"flagKey\":[\"k1\"]}"), -1);
    ERR(WSERR_BAD_MESSAGE);
    ck_assert(strstr(e.message, "unknown field \"flagKey\" in subscribe (known: id, flags, flagKeys") ==
              e.message);
    ck_assert_uint_eq(m.req.items.nkeys, 0);
    ck_assert_int_eq(pj("{\"type\":\"ping\",\"flags\":[]}"), -1);
    ck_assert(strstr(e.message, "unknown field \"flags\" in ping") == e.message);
    ck_assert_int_eq(pj("{\"type\":\"auth\",\"token\":\"t\",\"extra\":1}"), -1);
    ck_assert(strstr(e.message, "\"extra\"") != NULL);
    ck_assert_int_eq(pj("{\"type\":\"subscribe\",\"token\":\"t\"}"), -1);

    ck_assert_int_eq(pj("{\"type\":\"subscribe\",\"flagKeys\":[\"a\",\"b\"],\"flags\":[\"c\"],"
                        "\"flagIds\":[3]}"), 0);
    ck_assert_uint_eq(m.req.items.nkeys, 3);
    ck_assert_uint_eq(m.req.items.nids, 1);

    /* msgpack: the unknown value is never converted, its name is refused */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str(&pk, 4); msgpack_pack_str_body(&pk, "type", 4);
    msgpack_pack_str(&pk, 9); msgpack_pack_str_body(&pk, "subscribe", 9);
    msgpack_pack_str(&pk, 3); msgpack_pack_str_body(&pk, "ext", 3);
    msgpack_pack_ext(&pk, 1, 1); msgpack_pack_ext_body(&pk, "x", 1);
    ck_assert_int_eq(wsmsg_parse(WSMSG_FMT_MSGPACK, sb.data, sb.size, 0, 0, &m, &e), -1);
    ERR(WSERR_BAD_MESSAGE);
    ck_assert(strstr(e.message, "unknown field \"ext\"") == e.message);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(json_auth_ping)
{
    ck_assert_int_eq(pj("{\"type\":\"auth\",\"token\":\"abc.def\"}"), 0);
    ck_assert_int_eq(m.type, WSMSG_AUTH);
    ck_assert_str_eq(m.token, "abc.def");
    ck_assert_int_eq(pj("{\"type\":\"auth\"}"), -1);
    ERR(WSERR_BAD_MESSAGE);
    ck_assert_int_eq(pj("{\"type\":\"auth\",\"token\":5}"), -1);
    ERR(WSERR_BAD_MESSAGE);

    ck_assert_int_eq(pj("{\"type\":\"ping\"}"), 0);
    ck_assert_int_eq(m.type, WSMSG_PING);
    ck_assert_ptr_null(m.ping_id);
    ck_assert_int_eq(pj("{\"type\":\"ping\",\"id\":{\"n\":[1,\"x\"]}}"), 0);
    ck_assert_str_eq(m.ping_id, "{\"n\":[1,\"x\"]}");

    buf_t b;
    buf_init(&b);
    ck_assert_int_eq(wsmsg_render_pong(WSMSG_FMT_JSON, &m, &b), 0);
    ck_assert_str_eq(b.data, "{\"type\":\"pong\",\"id\":{\"n\":[1,\"x\"]}}");
    buf_reset(&b);
    ck_assert_int_eq(wsmsg_render_pong(WSMSG_FMT_JSON, NULL, &b), 0);
    ck_assert_str_eq(b.data, "{\"type\":\"pong\"}");
    buf_free(&b);
}
END_TEST

START_TEST(json_errors)
{
    ck_assert_int_eq(pj("{\"type\":"), -1);
    ERR(WSERR_BAD_JSON);
    ck_assert_int_eq(pj("not json"), -1);
    ERR(WSERR_BAD_JSON);
    ck_assert_int_eq(pj("{\"type\":\"ping\"} trailing"), -1);
    ERR(WSERR_BAD_JSON);
    ck_assert_int_eq(wsmsg_parse(WSMSG_FMT_JSON, "", 0, 0, 0, &m, &e), -1);
    ERR(WSERR_BAD_JSON);
    ck_assert_int_eq(pj("[1,2]"), -1);
    ERR(WSERR_BAD_MESSAGE);
    ck_assert_int_eq(pj("{}"), -1);
    ERR(WSERR_BAD_MESSAGE);
    ck_assert_int_eq(pj("{\"type\":7}"), -1);
    ERR(WSERR_BAD_MESSAGE);
    ck_assert_int_eq(pj("{\"type\":\"explode\"}"), -1);
    ERR(WSERR_UNKNOWN_TYPE);
    ck_assert(strstr(e.message, "explode") != NULL);
    ck_assert_str_eq(wsmsg_err_code(e.code), "unknown_type");
    ck_assert_int_eq(pj("{\"type\":\"subscribe\",\"flags\":\"a\"}"), -1);
    ERR(WSERR_BAD_MESSAGE);
    ck_assert_int_eq(pj("{\"type\":\"subscribe\",\"flags\":[1]}"), -1);
    ERR(WSERR_BAD_MESSAGE);
    ck_assert_int_eq(pj("{\"type\":\"subscribe\",\"flags\":[\"bad key\"]}"), -1);
    ERR(WSERR_BAD_KEY);
    ck_assert_int_eq(pj("{\"type\":\"subscribe\",\"tags\":[\"\"]}"), -1);
    ERR(WSERR_BAD_TAG);
    ck_assert_int_eq(pj("{\"type\":\"subscribe\",\"channels\":[\"a b\"]}"), -1);
    ERR(WSERR_BAD_CHANNEL);
    ck_assert_int_eq(pj("{\"type\":\"subscribe\",\"flagIDs\":[0]}"), -1);
    ERR(WSERR_BAD_ID);
    ck_assert_int_eq(pj("{\"type\":\"subscribe\",\"flagIDs\":[-3]}"), -1);
    ERR(WSERR_BAD_ID);
    ck_assert_int_eq(pj("{\"type\":\"subscribe\",\"flagIDs\":[\"1x\"]}"), -1);
    ERR(WSERR_BAD_ID);
    ck_assert_int_eq(pj("{\"type\":\"subscribe\",\"flagIDs\":[1.5]}"), -1);
    ERR(WSERR_BAD_ID);
    ck_assert_int_eq(pj("{\"type\":\"subscribe\",\"subscribeAll\":\"yes\"}"), -1);
    ERR(WSERR_BAD_MESSAGE);
    ck_assert_int_eq(pj("{\"type\":\"subscribe\",\"since\":{\"c\":{\"epoch\":\"e\"}}}"), -1);
    ERR(WSERR_BAD_MESSAGE);
    ck_assert_int_eq(pj("{\"type\":\"subscribe\",\"since\":{\"bad ch\":{\"epoch\":\"e\",\"offset\":1}}}"), -1);
    ERR(WSERR_BAD_CHANNEL);
    ck_assert_int_eq(pj("{\"type\":\"subscribe\",\"type\":\"ping\"}"), -1);   /* duplicate key */
    ERR(WSERR_BAD_JSON);
    /* Nothing half-filled after an error. */
    ck_assert_int_eq(pj("{\"type\":\"subscribe\",\"flags\":[\"a\"],\"tags\":[7]}"), -1);
    ck_assert_uint_eq(m.req.items.nkeys, 0);
}
END_TEST

START_TEST(limits)
{
    char *big = malloc(WSMSG_MAX_FRAME + 2);
    memset(big, ' ', WSMSG_MAX_FRAME + 1);
    memcpy(big, "{\"type\":\"ping\"}", 15);
    ck_assert_int_eq(wsmsg_parse(WSMSG_FMT_JSON, big, WSMSG_MAX_FRAME, 0, 0, &m, &e), 0);
    ck_assert_int_eq(wsmsg_parse(WSMSG_FMT_JSON, big, WSMSG_MAX_FRAME + 1, 0, 0, &m, &e), -1);
    ERR(WSERR_TOO_LARGE);
    ck_assert_int_eq(wsmsg_parse(WSMSG_FMT_JSON, big, 100, 99, 0, &m, &e), -1);   /* knob */
    ERR(WSERR_TOO_LARGE);
    free(big);

    const char *three = "{\"type\":\"subscribe\",\"flags\":[\"a\",\"b\",\"c\"]}";
    ck_assert_int_eq(wsmsg_parse(WSMSG_FMT_JSON, three, strlen(three), 0, 3, &m, &e), 0);
    ck_assert_int_eq(wsmsg_parse(WSMSG_FMT_JSON, three, strlen(three), 0, 2, &m, &e), -1);
    ERR(WSERR_TOO_MANY);

    /* Deep nesting in an ignored field of a JSON message is still bounded by
     * the frame size; a ping id over its limit is refused. */
    char id[WSMSG_MAX_PING_ID + 64];
    int n = snprintf(id, sizeof id, "{\"type\":\"ping\",\"id\":\"%0*d\"}", WSMSG_MAX_PING_ID, 0);
    ck_assert_int_eq(wsmsg_parse(WSMSG_FMT_JSON, id, (size_t)n, 0, 0, &m, &e), -1);
    ERR(WSERR_TOO_LARGE);
}
END_TEST

/* ---- msgpack ------------------------------------------------------------ */

static void pk_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

START_TEST(msgpack_forms)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 5);
    pk_str(&pk, "type"); pk_str(&pk, "subscribe");
    pk_str(&pk, "id"); msgpack_pack_ext(&pk, 1, 1); msgpack_pack_ext_body(&pk, "x", 1);
    pk_str(&pk, "flags"); msgpack_pack_array(&pk, 1); pk_str(&pk, "k1");
    pk_str(&pk, "flagIDs"); msgpack_pack_array(&pk, 2); msgpack_pack_uint64(&pk, 9); pk_str(&pk, "10");
    pk_str(&pk, "subscribeAll"); msgpack_pack_true(&pk);
    ck_assert_int_eq(wsmsg_parse(WSMSG_FMT_MSGPACK, sb.data, sb.size, 0, 0, &m, &e), 0);
    ck_assert_int_eq(m.type, WSMSG_SUBSCRIBE);
    ck_assert_uint_eq(m.req.items.nkeys, 1);
    ck_assert_uint_eq(m.req.items.nids, 2);
    ck_assert(m.req.subscribe_all);

    /* Trailing bytes. */
    msgpack_pack_nil(&pk);
    ck_assert_int_eq(wsmsg_parse(WSMSG_FMT_MSGPACK, sb.data, sb.size, 0, 0, &m, &e), -1);
    ERR(WSERR_BAD_JSON);
    /* Truncated. */
    ck_assert_int_eq(wsmsg_parse(WSMSG_FMT_MSGPACK, sb.data, 5, 0, 0, &m, &e), -1);
    ERR(WSERR_BAD_JSON);

    /* An empty key (msgpack-c gives it a NULL pointer): an unknown field,
     * named in the error (the fuzzer's find). */
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 2);
    pk_str(&pk, "type"); pk_str(&pk, "subscribe");
    msgpack_pack_str(&pk, 0); msgpack_pack_str_body(&pk, NULL, 0);
    msgpack_pack_true(&pk);
    ck_assert_int_eq(wsmsg_parse(WSMSG_FMT_MSGPACK, sb.data, sb.size, 0, 0, &m, &e), -1);
    ERR(WSERR_BAD_MESSAGE);

    /* ping with a binary id: echoed byte for byte. */
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 2);
    pk_str(&pk, "type"); pk_str(&pk, "ping");
    pk_str(&pk, "id"); msgpack_pack_bin(&pk, 3); msgpack_pack_bin_body(&pk, "\x00\xff\x01", 3);
    ck_assert_int_eq(wsmsg_parse(WSMSG_FMT_MSGPACK, sb.data, sb.size, 0, 0, &m, &e), 0);
    ck_assert_int_eq(m.type, WSMSG_PING);
    ck_assert_uint_eq(m.ping_id_len, 5);
    ck_assert(memcmp(m.ping_id, "\xc4\x03\x00\xff\x01", 5) == 0);
    buf_t b;
    buf_init(&b);
    ck_assert_int_eq(wsmsg_render_pong(WSMSG_FMT_MSGPACK, &m, &b), 0);
    ck_assert(b.len == 1 + 5 + 5 + 3 + 5);
    ck_assert(memcmp(b.data + b.len - 5, "\xc4\x03\x00\xff\x01", 5) == 0);
    /* A JSON connection does not echo a msgpack id. */
    buf_reset(&b);
    wsmsg_render_pong(WSMSG_FMT_JSON, &m, &b);
    ck_assert_str_eq(b.data, "{\"type\":\"pong\"}");
    buf_free(&b);

    /* Wrong shapes. */
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_array(&pk, 0);
    ck_assert_int_eq(wsmsg_parse(WSMSG_FMT_MSGPACK, sb.data, sb.size, 0, 0, &m, &e), -1);
    ERR(WSERR_BAD_MESSAGE);
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_int(&pk, 1); pk_str(&pk, "x");
    ck_assert_int_eq(wsmsg_parse(WSMSG_FMT_MSGPACK, sb.data, sb.size, 0, 0, &m, &e), -1);
    ERR(WSERR_BAD_MESSAGE);
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 1);
    pk_str(&pk, "type"); pk_str(&pk, "nope");
    ck_assert_int_eq(wsmsg_parse(WSMSG_FMT_MSGPACK, sb.data, sb.size, 0, 0, &m, &e), -1);
    ERR(WSERR_UNKNOWN_TYPE);
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 2);
    pk_str(&pk, "type"); pk_str(&pk, "subscribe");
    pk_str(&pk, "channels"); msgpack_pack_array(&pk, 1); pk_str(&pk, "bad channel");
    ck_assert_int_eq(wsmsg_parse(WSMSG_FMT_MSGPACK, sb.data, sb.size, 0, 0, &m, &e), -1);
    ERR(WSERR_BAD_CHANNEL);
    /* Nesting beyond the limit. */
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 2);
    pk_str(&pk, "type"); pk_str(&pk, "ping");
    pk_str(&pk, "x");
    for (int i = 0; i < 40; i++)
        msgpack_pack_array(&pk, 1);
    msgpack_pack_nil(&pk);
    ck_assert_int_eq(wsmsg_parse(WSMSG_FMT_MSGPACK, sb.data, sb.size, 0, 0, &m, &e), -1);
    ERR(WSERR_BAD_JSON);
    /* A token with a NUL byte is refused, not truncated. */
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 2);
    pk_str(&pk, "type"); pk_str(&pk, "auth");
    pk_str(&pk, "token"); msgpack_pack_str(&pk, 3); msgpack_pack_str_body(&pk, "a\0b", 3);
    ck_assert_int_eq(wsmsg_parse(WSMSG_FMT_MSGPACK, sb.data, sb.size, 0, 0, &m, &e), -1);
    ERR(WSERR_BAD_MESSAGE);
    ck_assert_ptr_null(m.token);
    /* A nested map key that is not UTF-8 (found by fuzzing: jansson steals
     * the value even when the insert fails). */
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 2);
    pk_str(&pk, "type"); pk_str(&pk, "subscribe");
    pk_str(&pk, "flags"); msgpack_pack_array(&pk, 1); msgpack_pack_map(&pk, 1);
    msgpack_pack_str(&pk, 1); msgpack_pack_str_body(&pk, "\xff", 1); msgpack_pack_nil(&pk);
    ck_assert_int_eq(wsmsg_parse(WSMSG_FMT_MSGPACK, sb.data, sb.size, 0, 0, &m, &e), -1);
    ERR(WSERR_BAD_MESSAGE);
    /* A huge claimed array count is refused before any allocation. */
    ck_assert_int_eq(wsmsg_parse(WSMSG_FMT_MSGPACK, "\xdd\xff\xff\xff\xff", 5, 0, 0, &m, &e), -1);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* ---- rendering ---------------------------------------------------------- */

static json_t *as_json(const buf_t *b)
{
    json_error_t je;
    json_t *j = json_loadb(b->data, b->len, 0, &je);
    ck_assert_msg(j != NULL, "invalid JSON: %s", b->data);
    return j;
}

START_TEST(render_control_messages)
{
    buf_t b;
    filter_t f;
    const char *err;
    buf_init(&b);

    ck_assert_int_eq(wsmsg_render_connected(WSMSG_FMT_JSON, "Connected \"x\"", "c-1", "flagcast.json", &b), 0);
    json_t *j = as_json(&b);
    ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "connected");
    ck_assert_str_eq(json_string_value(json_object_get(j, "message")), "Connected \"x\"");
    ck_assert_str_eq(json_string_value(json_object_get(j, "connectionId")), "c-1");
    json_decref(j);
    buf_reset(&b);
    ck_assert_int_eq(wsmsg_render_connected(WSMSG_FMT_JSON, "hi", NULL, NULL, &b), 0);
    ck_assert_str_eq(b.data, "{\"type\":\"connected\",\"message\":\"hi\"}");

    filter_init(&f);
    f.flags = FILTER_FLAGS_SOME;
    filter_add_key(&f, "k", 1, 256, &err);
    filter_add_id(&f, 3, 256, &err);
    filter_add_channel(&f, "chat", 4, 256, &err);
    buf_reset(&b);
    ck_assert_int_eq(wsmsg_render_subscribed(WSMSG_FMT_JSON, &f, &b), 0);
    ck_assert_str_eq(b.data, "{\"type\":\"subscribed\",\"channels\":[\"flags\",\"chat\"],"
                             "\"flags\":[\"k\"],\"flagIDs\":[3],\"tags\":[],\"subscribeAll\":false}");
    f.flags = FILTER_FLAGS_NONE;
    buf_reset(&b);
    ck_assert_int_eq(wsmsg_render_subscribed(WSMSG_FMT_JSON, &f, &b), 0);
    ck_assert(strstr(b.data, "\"channels\":[\"chat\"]") != NULL);
    f.flags = FILTER_FLAGS_ALL;
    buf_reset(&b);
    ck_assert_int_eq(wsmsg_render_subscribed(WSMSG_FMT_MSGPACK, &f, &b), 0);
    ck_assert_uint_eq((unsigned char)b.data[0], 0x86);       /* fixmap of 6 */
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    ck_assert_int_eq(msgpack_unpack_next(&u, b.data, b.len, &off), MSGPACK_UNPACK_SUCCESS);
    ck_assert_uint_eq(off, b.len);
    const msgpack_object_kv *last = &u.data.via.map.ptr[5];
    ck_assert(last->val.type == MSGPACK_OBJECT_BOOLEAN && last->val.via.boolean);
    msgpack_unpacked_destroy(&u);
    filter_free(&f);

    buf_reset(&b);
    ck_assert_int_eq(wsmsg_render_error(WSMSG_FMT_JSON, "bad_json", "line\n\"q\"", &b), 0);
    j = as_json(&b);
    ck_assert_str_eq(json_string_value(json_object_get(j, "code")), "bad_json");
    ck_assert_str_eq(json_string_value(json_object_get(j, "message")), "line\n\"q\"");
    json_decref(j);
    buf_reset(&b);
    ck_assert_int_eq(wsmsg_render_error(WSMSG_FMT_MSGPACK, "too_large", "x", &b), 0);
    ck_assert_uint_eq((unsigned char)b.data[0], 0x83);
    buf_reset(&b);
    ck_assert_int_eq(wsmsg_render_connected(WSMSG_FMT_MSGPACK, "m", "id", NULL, &b), 0);
    ck_assert_uint_eq((unsigned char)b.data[0], 0x83);
    buf_free(&b);
}
END_TEST

START_TEST(positions_added)
{
    buf_t m, b;
    wsmsg_since_t pos[2] = { { "quiet", "-", 0 }, { "chat", "e1", 42 } };

    buf_init(&m);
    buf_init(&b);
    ck_assert_int_eq(wsmsg_render_connected(WSMSG_FMT_JSON, "hi", NULL, NULL, &m), 0);
    ck_assert_int_eq(wsmsg_add_positions(WSMSG_FMT_JSON, m.data, m.len, pos, 2, &b), 0);
    buf_putc(&b, '\0');
    ck_assert_str_eq(b.data, "{\"type\":\"connected\",\"message\":\"hi\",\"positions\":"
                             "{\"quiet\":{\"epoch\":\"-\",\"offset\":0},\"chat\":{\"epoch\":\"e1\",\"offset\":42}}}");
    /* none: unchanged */
    buf_reset(&b);
    ck_assert_int_eq(wsmsg_add_positions(WSMSG_FMT_JSON, m.data, m.len, pos, 0, &b), 0);
    ck_assert_uint_eq(b.len, m.len);
    ck_assert(memcmp(b.data, m.data, m.len) == 0);
    /* not an object these renderers made */
    buf_reset(&b);
    ck_assert_int_eq(wsmsg_add_positions(WSMSG_FMT_JSON, "[1]", 3, pos, 1, &b), -1);
    ck_assert_int_eq(wsmsg_add_positions(WSMSG_FMT_MSGPACK, "\x91\x01", 2, pos, 1, &b), -1);

    /* msgpack: one more map entry, decodable, the positions last */
    filter_t f;
    const char *err;
    filter_init(&f);
    filter_add_channel(&f, "chat", 4, 256, &err);
    buf_reset(&m);
    buf_reset(&b);
    ck_assert_int_eq(wsmsg_render_subscribed(WSMSG_FMT_MSGPACK, &f, &m), 0);
    ck_assert_int_eq(wsmsg_add_positions(WSMSG_FMT_MSGPACK, m.data, m.len, pos + 1, 1, &b), 0);
    ck_assert_uint_eq((unsigned char)b.data[0], 0x87);
    msgpack_unpacked u;
    size_t off = 0;
    msgpack_unpacked_init(&u);
    ck_assert_int_eq(msgpack_unpack_next(&u, b.data, b.len, &off), MSGPACK_UNPACK_SUCCESS);
    ck_assert_uint_eq(off, b.len);
    const msgpack_object_kv *kv = &u.data.via.map.ptr[6];
    ck_assert(kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == 9 &&
              memcmp(kv->key.via.str.ptr, "positions", 9) == 0);
    ck_assert(kv->val.type == MSGPACK_OBJECT_MAP && kv->val.via.map.size == 1);
    const msgpack_object *p = &kv->val.via.map.ptr[0].val;
    ck_assert(p->type == MSGPACK_OBJECT_MAP && p->via.map.size == 2);
    ck_assert(p->via.map.ptr[1].val.type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
              p->via.map.ptr[1].val.via.u64 == 42);
    msgpack_unpacked_destroy(&u);
    filter_free(&f);

    /* a snapshot with its position, as events carry it */
    buf_reset(&b);
    ck_assert_int_eq(wsmsg_add_position(WSMSG_FMT_JSON, "{\"type\":\"snapshot\",\"flags\":[]}", 30,
                                        "flags", "e9", 7, &b), 0);
    buf_putc(&b, '\0');
    ck_assert_str_eq(b.data, "{\"type\":\"snapshot\",\"flags\":[],\"channel\":\"flags\",\"epoch\":\"e9\",\"offset\":7}");
    buf_reset(&b);
    ck_assert_int_eq(wsmsg_add_position(WSMSG_FMT_MSGPACK, "\x81\xa1t\x01", 4, "flags", "-", 0, &b), 0);
    ck_assert_uint_eq((unsigned char)b.data[0], 0x84);
    off = 0;
    msgpack_unpacked_init(&u);
    ck_assert_int_eq(msgpack_unpack_next(&u, b.data, b.len, &off), MSGPACK_UNPACK_SUCCESS);
    ck_assert_uint_eq(off, b.len);
    ck_assert(u.data.via.map.ptr[3].val.type == MSGPACK_OBJECT_POSITIVE_INTEGER);
    msgpack_unpacked_destroy(&u);
    buf_reset(&b);
    ck_assert_int_eq(wsmsg_add_position(WSMSG_FMT_JSON, "[]", 2, "flags", "e", 1, &b), -1);
    buf_free(&m);
    buf_free(&b);
}
END_TEST

/* evaluate: the batch body it becomes, its id kept like ping's, its
 * errors; the evaluation reply in both encodings. */
START_TEST(evaluate_messages)
{
    ck_assert_int_eq(pj("{\"type\":\"evaluate\",\"id\":7,\"flagKeys\":[\"a\",\"b\"],"
                        "\"entityID\":\"u1\",\"entityType\":\"user\","
                        "\"entityContext\":{\"plan\":\"pro\"}}"), 0);
    ck_assert_int_eq(m.type, WSMSG_EVALUATE);
    ck_assert_str_eq(m.eval_body, "{\"flagKeys\":[\"a\",\"b\"],\"entities\":[{\"entityID\":"
                     "\"u1\",\"entityType\":\"user\",\"entityContext\":{\"plan\":\"pro\"}}]}");
    ck_assert_uint_eq(m.eval_body_len, strlen(m.eval_body));
    ck_assert_str_eq(m.ping_id, "7");
    ck_assert_uint_eq(m.req.items.nkeys, 0);   /* not a subscription */

    ck_assert_int_eq(pj("{\"type\":\"evaluate\",\"flagKeys\":[\"a\"]}"), 0);
    ck_assert_str_eq(m.eval_body, "{\"flagKeys\":[\"a\"],\"entities\":[{}]}");
    ck_assert_ptr_null(m.ping_id);

    ck_assert_int_eq(pj("{\"type\":\"evaluate\"}"), -1);
    ERR(WSERR_BAD_MESSAGE);
    ck_assert(strstr(e.message, "flagKeys"));
    ck_assert_ptr_null(m.eval_body);
    ck_assert_int_eq(pj("{\"type\":\"evaluate\",\"flagKeys\":[]}"), -1);
    ERR(WSERR_BAD_MESSAGE);
    ck_assert_int_eq(pj("{\"type\":\"evaluate\",\"flagKeys\":[1]}"), -1);
    ERR(WSERR_BAD_MESSAGE);
    ck_assert_int_eq(pj("{\"type\":\"evaluate\",\"flagKeys\":\"a\"}"), -1);
    ERR(WSERR_BAD_MESSAGE);
    ck_assert_int_eq(pj("{\"type\":\"evaluate\",\"flagKeys\":[\"a\"],\"entityID\":5}"), -1);
    ERR(WSERR_BAD_MESSAGE);
    ck_assert(strstr(e.message, "entityID"));
    ck_assert_int_eq(pj("{\"type\":\"evaluate\",\"flagKeys\":[\"a\"],\"entityContext\":[]}"), -1);
    ERR(WSERR_BAD_MESSAGE);
    /* entityContext is bounded as evalapi bounds it (room for the two
     * properties the evaluation adds): the limit passes, one more does not */
    {
        static char big[16384];
        for (int n = EVAL_CTX_MAX_PROPS - 2; n <= EVAL_CTX_MAX_PROPS - 1; n++) {
            size_t o = (size_t)snprintf(big, sizeof big,
                                        "{\"type\":\"evaluate\",\"flagKeys\":[\"a\"],\"entityContext\":{");
            for (int i = 0; i < n; i++)
                o += (size_t)snprintf(big + o, sizeof big - o, "%s\"p%d\":%d", i ? "," : "", i, i);
            snprintf(big + o, sizeof big - o, "}}");
            ck_assert_uint_lt(o + 2, sizeof big);
            if (n == EVAL_CTX_MAX_PROPS - 2) {
                ck_assert_int_eq(pj(big), 0);
            } else {
                ck_assert_int_eq(pj(big), -1);
                ERR(WSERR_TOO_MANY);
                ck_assert(strstr(e.message, "entityContext"));
            }
        }
    }
    ck_assert_int_eq(pj("{\"type\":\"evaluate\",\"flagKeys\":[\"a\"],\"entities\":[]}"), -1);
    ERR(WSERR_BAD_MESSAGE);
    ck_assert(strstr(e.message, "unknown field \"entities\" in evaluate"));
    const char *two = "{\"type\":\"evaluate\",\"flagKeys\":[\"a\",\"b\"]}";
    ck_assert_int_eq(wsmsg_parse(WSMSG_FMT_JSON, two, strlen(two), 0, 1, &m, &e), -1);
    ERR(WSERR_TOO_MANY);

    /* msgpack */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    pk_str(&pk, "type"); pk_str(&pk, "evaluate");
    pk_str(&pk, "id"); pk_str(&pk, "r1");
    pk_str(&pk, "flagKeys"); msgpack_pack_array(&pk, 1); pk_str(&pk, "k");
    pk_str(&pk, "entityContext"); msgpack_pack_map(&pk, 1); pk_str(&pk, "n"); msgpack_pack_int(&pk, 3);
    ck_assert_int_eq(wsmsg_parse(WSMSG_FMT_MSGPACK, sb.data, sb.size, 0, 0, &m, &e), 0);
    ck_assert_int_eq(m.type, WSMSG_EVALUATE);
    ck_assert_str_eq(m.eval_body, "{\"flagKeys\":[\"k\"],\"entities\":[{\"entityContext\":{\"n\":3}}]}");
    ck_assert_int_eq(m.ping_id_fmt, WSMSG_FMT_MSGPACK);

    /* a NUL in a msgpack string: JSON text (the evaluation API) cannot hold it */
    msgpack_sbuffer nb;
    msgpack_sbuffer_init(&nb);
    msgpack_packer_init(&pk, &nb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    pk_str(&pk, "type"); pk_str(&pk, "evaluate");
    pk_str(&pk, "flagKeys"); msgpack_pack_array(&pk, 1); pk_str(&pk, "k");
    pk_str(&pk, "entityID"); msgpack_pack_str(&pk, 2); msgpack_pack_str_body(&pk, "\0x", 2);
    ck_assert_int_eq(wsmsg_parse(WSMSG_FMT_MSGPACK, nb.data, nb.size, 0, 0, &m, &e), -1);
    ERR(WSERR_BAD_MESSAGE);
    ck_assert_ptr_null(m.eval_body);
    msgpack_sbuffer_destroy(&nb);
    ck_assert_int_eq(wsmsg_parse(WSMSG_FMT_MSGPACK, sb.data, sb.size, 0, 0, &m, &e), 0);

    /* the reply, msgpack: {"type":"evaluation","id":"r1","results":[{"a":1}]} */
    buf_t b;
    buf_init(&b);
    ck_assert_int_eq(wsmsg_render_evaluation(WSMSG_FMT_MSGPACK, &m, "[{\"a\":1}]", 9, &b), 0);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    ck_assert_int_eq(msgpack_unpack_next(&u, b.data, b.len, NULL), MSGPACK_UNPACK_SUCCESS);
    ck_assert_int_eq(u.data.type, MSGPACK_OBJECT_MAP);
    ck_assert_uint_eq(u.data.via.map.size, 3);
    ck_assert_int_eq(u.data.via.map.ptr[2].val.type, MSGPACK_OBJECT_ARRAY);
    ck_assert_uint_eq(u.data.via.map.ptr[2].val.via.array.size, 1);
    msgpack_unpacked_destroy(&u);
    buf_reset(&b);
    ck_assert_int_eq(wsmsg_render_evaluation(WSMSG_FMT_MSGPACK, &m, "{}", 2, &b), -1);
    msgpack_sbuffer_destroy(&sb);

    /* the reply, JSON */
    ck_assert_int_eq(pj("{\"type\":\"evaluate\",\"id\":[1],\"flagKeys\":[\"a\"]}"), 0);
    buf_reset(&b);
    ck_assert_int_eq(wsmsg_render_evaluation(WSMSG_FMT_JSON, &m, "[]", 2, &b), 0);
    buf_putc(&b, '\0');
    ck_assert_str_eq(b.data, "{\"type\":\"evaluation\",\"id\":[1],\"results\":[]}");
    buf_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("wsmsg");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, json_subscribe_full);
    tcase_add_test(tc, json_auth_ping);
    tcase_add_test(tc, unknown_fields);
    tcase_add_test(tc, json_errors);
    tcase_add_test(tc, limits);
    tcase_add_test(tc, msgpack_forms);
    tcase_add_test(tc, render_control_messages);
    tcase_add_test(tc, positions_added);
    tcase_add_test(tc, evaluate_messages);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
