/*
 * fuzz_mpjson — json_msgpack_bytes on arbitrary bytes: it must refuse or
 * produce valid JSON, leave the buffer untouched on refusal, and agree with
 * the tree renderer (msgpack-c unpack + json_msgpack) whenever the bytes
 * hold one value msgpack-c can unpack (the two fail together only for a map
 * key that is a container with more than 1 KB of JSON text).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/event.h"
#include "proto/json.h"
#include "proto/mpscan.h"

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *err;
    buf_t out;
    buf_init(&out);
    buf_puts(&out, "x");
    int r = json_msgpack_bytes(&out, p, size);
    if (r != 0) {
        CHECK(out.len == 1 && out.err == 0);
    } else {
        CHECK(json_ok(out.data + 1, out.len - 1));
    }

    size_t end, off = 0;
    if (mp_scan(p, size, EV_MAX_DEPTH, 0, &end, &err) == 0 && end == size) {
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        CHECK(msgpack_unpack_next(&u, p, size, &off) == MSGPACK_UNPACK_SUCCESS);
        CHECK(off == size);
        buf_t tree;
        buf_init(&tree);
        int r2 = json_msgpack(&tree, &u.data);
        CHECK(r2 == r);   /* both fail only for a container key over 1 KB */
        if (r2 == 0)
            CHECK(tree.len == out.len - 1 &&
                  memcmp(tree.data, out.data + 1, tree.len) == 0);
        else
            CHECK(tree.len == 0 && tree.err == 0);
        buf_free(&tree);
        msgpack_unpacked_destroy(&u);
    } else {
        CHECK(r != 0);
    }
    buf_free(&out);
    return 0;
}
