/*
 * fuzz_jsonin — libFuzzer target for the admin API's JSON input
 * (common/jsonin.c). Any bytes go through jsonin_parse exactly as a request
 * body does; a parsed value is then read as a flag (jsonin_flag with every
 * field allowed, then flag_validate) and packed as msgpack
 * (jsonin_to_msgpack), as a message's "data" is.
 *
 * Invariants (abort on violation): a refused input leaves an error message;
 * packed msgpack decodes back as exactly one object that uses every byte and
 * whose depth is within what jsonin_nesting said; a flag that validates
 * round-trips through flag_encode / flag_decode.
 */
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "common/jsonin.h"
#include "proto/flag.h"

/* Container nesting of a msgpack object (a scalar is 0). */
static int mp_nesting(const msgpack_object *o)
{
    int d = 0;
    if (o->type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            int x = mp_nesting(&o->via.array.ptr[i]);
            d = x > d ? x : d;
        }
        return d + 1;
    }
    if (o->type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            int x = mp_nesting(&o->via.map.ptr[i].val);
            d = x > d ? x : d;
            if (o->via.map.ptr[i].key.type != MSGPACK_OBJECT_STR)
                abort();
        }
        return d + 1;
    }
    return 0;
}

static void check_pack(const json_t *v)
{
    buf_t b;
    const char *err = NULL;
    int nest = jsonin_nesting(v, JSONIN_MAX_DEPTH + 1);

    buf_init(&b);
    b.limit = 1 << 20;
    if (jsonin_to_msgpack(v, &b, &err) == 0 && !b.err) {
        msgpack_unpacked u;
        size_t off = 0;
        msgpack_unpacked_init(&u);
        if (msgpack_unpack_next(&u, b.data, b.len, &off) != MSGPACK_UNPACK_SUCCESS)
            abort();
        if (off != b.len)
            abort();
        if (mp_nesting(&u.data) != nest)
            abort();
        if (json_is_object(v) && (u.data.type != MSGPACK_OBJECT_MAP ||
                                  u.data.via.map.size != json_object_size(v)))
            abort();
        if (json_is_array(v) && (u.data.type != MSGPACK_OBJECT_ARRAY ||
                                 u.data.via.array.size != json_array_size(v)))
            abort();
        msgpack_unpacked_destroy(&u);
    } else if (!b.err && (err == NULL || !*err)) {
        abort();
    }
    buf_free(&b);
}

static void check_flag(const json_t *v)
{
    flag_t f, g;
    unsigned present = 0;
    char errbuf[256];
    const char *e;

    flag_init(&f);
    errbuf[0] = '\0';
    if (jsonin_flag(v, JSONIN_ALL, &f, &present, errbuf, sizeof(errbuf)) < 0) {
        if (!errbuf[0])
            abort();
        flag_free(&f);
        return;
    }
    f.id = 1;
    f.version = 1;
    if ((present & JSONIN_KEY) && flag_validate(&f, &e) == 0) {
        buf_t b;
        buf_init(&b);
        if (flag_encode(&f, &b) == 0 && !b.err) {
            flag_init(&g);
            if (flag_decode(b.data, b.len, &g, errbuf, sizeof(errbuf)) < 0)
                abort();
            if (strcmp(g.key, f.key) != 0 || g.enabled != f.enabled ||
                g.nvariants != f.nvariants || g.nsegments != f.nsegments ||
                g.ntags != f.ntags)
                abort();
            flag_free(&g);
        }
        buf_free(&b);
    }
    flag_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char errbuf[512];
    json_t *v;

    errbuf[0] = '\0';
    v = jsonin_parse((const char *)data, size, errbuf, sizeof(errbuf));
    if (v == NULL) {
        if (!errbuf[0])
            abort();
        return 0;
    }
    if (jsonin_depth(v, JSONIN_MAX_DEPTH) > JSONIN_MAX_DEPTH)
        abort();
    check_pack(v);
    check_flag(v);
    json_decref(v);
    return 0;
}
