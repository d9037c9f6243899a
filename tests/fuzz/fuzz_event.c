/*
 * fuzz_event — the gateway's boundary with untrusted bytes: ev_decode.
 *
 * For every input that decodes, the event must render in every format
 * (SSE, WS JSON, WS msgpack) as valid JSON whose "data" holds only strings
 * for flag events, the msgpack rendering must say exactly what the JSON one
 * says, and encode → decode must give back an equal event. ev_decode_body
 * is run on the same bytes too. Any failure aborts, which libFuzzer reports.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/event.h"
#include "proto/json.h"
#include "proto/render.h"
#include "tests/unit/proto/sample.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (%s:%d)\n", \
                                          #c, __FILE__, __LINE__); abort(); } } while (0)

/* jansson as the JSON oracle. It refuses one thing that is valid JSON: a
 * "\u0000" inside an object key; that alone is let through. */
static int json_ok(const char *s, size_t n)
{
    json_error_t je;
    json_t *j = json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL |
                           JSON_DECODE_INT_AS_REAL, &je);
    if (j) {
        json_decref(j);
        return 1;
    }
    return strstr(je.text, "NUL byte in object key") != NULL;
}

static void check_event(const ev_t *ev)
{
    buf_t js, mp, conv, sse;
    buf_init(&js);
    buf_init(&mp);
    buf_init(&conv);
    buf_init(&sse);

    CHECK(render_event_json(ev, &js) == 0);
    CHECK(json_ok(js.data, js.len));
    json_error_t je;
    /* NULL only for a NUL inside a key of "data" or an attachment */
    json_t *j = json_loadb(js.data, js.len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &je);
    if (j) {
        if (ev_type_is_flag(ev->type)) {
            json_t *d = json_object_get(j, "data"), *v;
            const char *k;
            CHECK(json_is_object(d));
            json_object_foreach(d, k, v)
                CHECK(json_is_string(v));
            CHECK(json_is_number(json_object_get(j, "flagID")));
        }
        CHECK(json_is_number(json_object_get(j, "timestamp")));
        json_decref(j);
    }

    CHECK(render_event_msgpack(ev, &mp) == 0);
    CHECK(json_msgpack_bytes(&conv, mp.data, mp.len) == 0);
    CHECK(conv.len == js.len && memcmp(conv.data, js.data, js.len) == 0);

    CHECK(render_event_sse(ev, "id", &sse) == 0);
    CHECK(sse.len == js.len + strlen("id: id\nevent: \ndata: \n\n") +
                     strlen(ev_type_name(ev->type)));
    CHECK(memchr(js.data, '\n', js.len) == NULL && memchr(js.data, '\r', js.len) == NULL);

    buf_free(&js);
    buf_free(&mp);
    buf_free(&conv);
    buf_free(&sse);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ev_t ev, back;
    buf_t b;
    char err[256];

    if (ev_decode((const char *)data, size, &ev, err, sizeof(err)) == 0) {
        check_event(&ev);
        buf_init(&b);
        CHECK(ev_encode(&ev, &b) == 0);
        CHECK(ev_decode(b.data, b.len, &back, err, sizeof(err)) == 0);
        CHECK(ev_eq(&ev, &back));
        ev_free(&back);
        buf_free(&b);
        ev_free(&ev);
    } else {
        CHECK(err[0] != '\0');
        CHECK(ev.channel == NULL && ev.flag == NULL && ev.data == NULL);
    }

    if (ev_decode_body((const char *)data, size, &ev, err, sizeof(err)) == 0) {
        check_event(&ev);
        buf_init(&b);
        CHECK(ev_encode_body(&ev, &b) == 0);
        CHECK(ev_decode_body(b.data, b.len, &back, err, sizeof(err)) == 0);
        CHECK(ev_eq(&ev, &back));
        ev_free(&back);
        buf_free(&b);
        ev_free(&ev);
    }
    return 0;
}
