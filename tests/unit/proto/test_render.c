/*
 * Unit tests for proto/render: the SSE/WS JSON of every event type parsed
 * back with jansson (Flagent's fields, numeric flagID/timestamp, a "data"
 * map of strings only), the msgpack rendering equal to the JSON one, SSE
 * framing of events, snapshots, and nothing half-written on failure.
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/json.h"
#include "proto/render.h"
#include "sample.h"

static json_t *parse(const char *s, size_t n)
{
    json_error_t je;
    json_t *j = json_loadb(s, n, 0, &je);
    ck_assert_msg(j != NULL, "%s: %.*s", je.text, (int)n, s);
    return j;
}

static json_t *render_json(const ev_t *ev)
{
    buf_t b;
    buf_init(&b);
    ck_assert_int_eq(render_event_json(ev, &b), 0);
    json_t *j = parse(b.data, b.len);
    buf_free(&b);
    return j;
}

static const char *jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    ck_assert_msg(json_is_string(v), "%s is not a string", k);
    return json_string_value(v);
}

START_TEST(test_flag_event_json)
{
    static const char *const verbs[] = {
        "Flag created", "Flag updated", "Flag deleted", "Flag toggled",
        "Segments updated", "Variants updated"
    };
    ev_type_t t = (ev_type_t)_i;
    ev_t ev;
    char want[128];
    sample_event(&ev, t);
    json_t *j = render_json(&ev);
    ck_assert_str_eq(jstr(j, "type"), ev_type_name(t));
    ck_assert(json_is_integer(json_object_get(j, "flagID")));
    ck_assert_int_eq(json_integer_value(json_object_get(j, "flagID")), 7);
    ck_assert_str_eq(jstr(j, "flagKey"), "new-checkout");
    snprintf(want, sizeof(want), "%s: new-checkout", verbs[t]);
    ck_assert_str_eq(jstr(j, "message"), want);
    ck_assert_str_eq(render_message_verb(t), verbs[t]);
    ck_assert(json_is_integer(json_object_get(j, "timestamp")));
    ck_assert_int_eq(json_integer_value(json_object_get(j, "timestamp")), 1700000000456LL);
    ck_assert_str_eq(jstr(j, "channel"), "flags");
    ck_assert_str_eq(jstr(j, "epoch"), "e1f2a3b4");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "offset")), 42);

    /* "data": every value a string (Flagent's Go/Kotlin clients insist) */
    json_t *d = json_object_get(j, "data");
    ck_assert(json_is_object(d));
    const char *k;
    json_t *v;
    json_object_foreach(d, k, v)
        ck_assert_msg(json_is_string(v), "data.%s is not a string", k);
    ck_assert_str_eq(jstr(d, "enabled"), "true");
    ck_assert_str_eq(jstr(d, "version"), "3");
    ck_assert_str_eq(jstr(d, "key"), "new-checkout");
    ck_assert_str_eq(jstr(d, "id"), "7");
    ck_assert_str_eq(jstr(d, "description"), ev.flag->description);
    ck_assert_str_eq(jstr(d, "actor"), "alice@example.com");
    ck_assert_int_eq(json_object_size(d), 6);

    /* "flag": the full record, exactly flag_to_json */
    buf_t fb;
    buf_init(&fb);
    ck_assert_int_eq(flag_to_json(ev.flag, &fb), 0);
    json_t *fj = parse(fb.data, fb.len);
    ck_assert(json_equal(fj, json_object_get(j, "flag")));
    json_decref(fj);
    buf_free(&fb);
    ck_assert_int_eq(json_object_size(j), 10);
    json_decref(j);

    /* a disabled flag without description, no actor */
    ev.flag->enabled = false;
    free(ev.flag->description);
    ev.flag->description = NULL;
    free(ev.actor);
    ev.actor = NULL;
    j = render_json(&ev);
    d = json_object_get(j, "data");
    ck_assert_str_eq(jstr(d, "enabled"), "false");
    ck_assert_ptr_null(json_object_get(d, "description"));
    ck_assert_ptr_null(json_object_get(d, "actor"));
    json_decref(j);
    ev_free(&ev);
}
END_TEST

START_TEST(test_message_event_json)
{
    ev_t ev;
    sample_event(&ev, EV_MESSAGE);
    json_t *j = render_json(&ev);
    ck_assert_str_eq(jstr(j, "type"), "message");
    ck_assert_str_eq(jstr(j, "channel"), "chat.room1");
    ck_assert_str_eq(jstr(j, "epoch"), "e1f2a3b4");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "offset")), 42);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "timestamp")), 1700000000456LL);
    json_t *d = json_object_get(j, "data");
    ck_assert_str_eq(jstr(d, "text"), "hi \"there\"\n");
    ck_assert_int_eq(json_integer_value(json_object_get(d, "n")), 5);
    ck_assert_str_eq(jstr(j, "actor"), "alice@example.com");
    ck_assert_int_eq(json_object_size(j), 7);
    json_decref(j);

    free(ev.actor);
    ev.actor = NULL;
    j = render_json(&ev);
    ck_assert_ptr_null(json_object_get(j, "actor"));
    ck_assert_int_eq(json_object_size(j), 6);
    json_decref(j);
    ev_free(&ev);
}
END_TEST

/* The msgpack rendering, converted to JSON, equals the JSON rendering. */
START_TEST(test_msgpack_matches_json)
{
    ev_t ev;
    sample_event(&ev, (ev_type_t)_i);
    buf_t mp, js;
    buf_init(&mp);
    buf_init(&js);
    ck_assert_int_eq(render_event_msgpack(&ev, &mp), 0);
    ck_assert_int_eq(json_msgpack_bytes(&js, mp.data, mp.len), 0);
    json_t *a = parse(js.data, js.len);
    json_t *b = render_json(&ev);
    ck_assert_msg(json_equal(a, b), "msgpack: %s", js.data);
    json_decref(a);
    json_decref(b);
    buf_free(&mp);
    buf_free(&js);
    ev_free(&ev);
}
END_TEST

START_TEST(test_sse_event)
{
    ev_t ev;
    buf_t b, j;
    sample_event(&ev, EV_FLAG_UPDATED);
    buf_init(&b);
    buf_init(&j);
    ck_assert_int_eq(render_event_json(&ev, &j), 0);
    ck_assert_int_eq(render_event_sse(&ev, "e1f2a3b4:42", &b), 0);
    char *want = malloc(j.len + 64);
    sprintf(want, "id: e1f2a3b4:42\nevent: flag.updated\ndata: %s\n\n", j.data);
    ck_assert_str_eq(b.data, want);
    /* the description has a newline and U+2028: still one data line */
    ck_assert_ptr_null(strchr(j.data, '\n'));
    ck_assert_ptr_null(strchr(j.data, '\r'));
    ck_assert_ptr_null(strstr(j.data, "\xe2\x80\xa8"));

    buf_reset(&b);
    ck_assert_int_eq(render_event_sse(&ev, NULL, &b), 0);
    ck_assert_str_eq(b.data, want + strlen("id: e1f2a3b4:42\n"));

    /* an id with a line break is cut there */
    buf_reset(&b);
    ck_assert_int_eq(render_event_sse(&ev, "1\r\nevent: evil", &b), 0);
    ck_assert(strncmp(b.data, "id: 1\nevent: flag.updated\ndata: {", 33) == 0);
    free(want);
    buf_free(&b);
    buf_free(&j);
    ev_free(&ev);
}
END_TEST

START_TEST(test_snapshot)
{
    flag_t a, b;
    sample_flag(&a);
    sample_flag_min(&b, "other");
    const flag_t *flags[] = { &a, &b };
    buf_t out, mp, conv;
    buf_init(&out);
    buf_init(&mp);
    buf_init(&conv);
    ck_assert_int_eq(render_snapshot_json(flags, 2, &out), 0);
    json_t *j = parse(out.data, out.len);
    ck_assert_str_eq(jstr(j, "type"), "snapshot");
    json_t *arr = json_object_get(j, "flags");
    ck_assert_int_eq(json_array_size(arr), 2);
    ck_assert_str_eq(jstr(json_array_get(arr, 1), "key"), "other");
    ck_assert_int_eq(render_snapshot_msgpack(flags, 2, &mp), 0);
    ck_assert_int_eq(json_msgpack_bytes(&conv, mp.data, mp.len), 0);
    json_t *k = parse(conv.data, conv.len);
    ck_assert(json_equal(j, k));
    json_decref(j);
    json_decref(k);

    buf_reset(&out);
    ck_assert_int_eq(render_snapshot_json(NULL, 0, &out), 0);
    ck_assert_str_eq(out.data, "{\"type\":\"snapshot\",\"flags\":[]}");
    buf_free(&out);
    buf_free(&mp);
    buf_free(&conv);
    flag_free(&a);
    flag_free(&b);
}
END_TEST

START_TEST(test_failure_writes_nothing)
{
    ev_t ev;
    buf_t b;
    sample_event(&ev, EV_FLAG_UPDATED);
    flag_free(ev.flag);
    free(ev.flag);
    ev.flag = NULL;               /* a flag event without its flag */
    buf_init(&b);
    buf_puts(&b, "prefix");
    ck_assert_int_eq(render_event_json(&ev, &b), -1);
    ck_assert_int_eq(render_event_sse(&ev, "1", &b), -1);
    ck_assert_int_eq(render_event_msgpack(&ev, &b), -1);
    ck_assert_str_eq(b.data, "prefix");
    ck_assert_uint_eq(b.len, 6);

    /* a message whose data bytes are corrupt */
    ev_free(&ev);
    sample_event(&ev, EV_MESSAGE);
    ev.data[0] = (char)0xc1;
    ck_assert_int_eq(render_event_json(&ev, &b), -1);
    ck_assert_str_eq(b.data, "prefix");

    /* a buffer limit latches err */
    ev_free(&ev);
    sample_event(&ev, EV_FLAG_UPDATED);
    b.limit = 64;
    ck_assert_int_eq(render_event_json(&ev, &b), -1);
    ck_assert_int_eq(b.err, 1);
    buf_free(&b);
    ev_free(&ev);
}
END_TEST

START_TEST(test_decoded_event_renders)
{
    /* decode → render: what a gateway does */
    ev_t ev, back;
    buf_t b, out;
    char err[256];
    sample_event(&ev, EV_FLAG_TOGGLED);
    buf_init(&b);
    buf_init(&out);
    ck_assert_int_eq(ev_encode(&ev, &b), 0);
    ck_assert_int_eq(ev_decode(b.data, b.len, &back, err, sizeof(err)), 0);
    ck_assert_int_eq(render_event_json(&back, &out), 0);
    json_t *x = parse(out.data, out.len), *y = render_json(&ev);
    ck_assert(json_equal(x, y));
    json_decref(x);
    json_decref(y);
    ev_free(&back);
    ev_free(&ev);
    buf_free(&b);
    buf_free(&out);
}
END_TEST

static Suite *render_suite(void)
{
    Suite *s = suite_create("render");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_flag_event_json, 0, EV_MESSAGE);
    tcase_add_test(tc, test_message_event_json);
    tcase_add_loop_test(tc, test_msgpack_matches_json, 0, EV_TYPE_COUNT);
    tcase_add_test(tc, test_sse_event);
    tcase_add_test(tc, test_snapshot);
    tcase_add_test(tc, test_failure_writes_nothing);
    tcase_add_test(tc, test_decoded_event_renders);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(render_suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
