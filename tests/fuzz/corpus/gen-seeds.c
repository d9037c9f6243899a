/*
 * gen-seeds — writes the seed corpora of the proto fuzz targets, using the
 * unit tests' sample records. Run once from the top of the tree when the
 * formats change, and commit the result:
 *
 *   cc -std=c11 -D_GNU_SOURCE -I. tests/fuzz/corpus/gen-seeds.c proto/[a-z]*.c \
 *      -lmsgpackc -lm -o /tmp/gen-seeds && /tmp/gen-seeds tests/fuzz/corpus
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/event.h"
#include "proto/flag.h"
#include "tests/unit/proto/sample.h"

static const char *root;

static void put(const char *target, const char *name, const char *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s/%s", root, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    buf_t b;
    char name[64];
    if (argc != 2) {
        fprintf(stderr, "usage: gen-seeds CORPUS_DIR\n");
        return 2;
    }
    root = argv[1];
    buf_init(&b);

    for (int t = 0; t < EV_TYPE_COUNT; t++) {
        ev_t ev;
        sample_event(&ev, (ev_type_t)t);
        buf_reset(&b);
        if (ev_encode(&ev, &b) != 0)
            return 1;
        snprintf(name, sizeof(name), "%s", ev_type_name((ev_type_t)t));
        put("fuzz_event", name, b.data, b.len);
        buf_reset(&b);
        if (ev_encode_body(&ev, &b) != 0)
            return 1;
        snprintf(name, sizeof(name), "body-%s", ev_type_name((ev_type_t)t));
        put("fuzz_event", name, b.data, b.len);
        if (t == EV_MESSAGE)
            put("fuzz_mpjson", "message-data", ev.data, ev.data_len);
        else if (t == EV_FLAG_CREATED) {
            buf_reset(&b);
            flag_encode(ev.flag, &b);
            put("fuzz_flag", "full", b.data, b.len);
            buf_reset(&b);
            flag_to_json(ev.flag, &b);   /* not msgpack: a negative seed */
            put("fuzz_flag", "json-text", b.data, b.len);
            put("fuzz_mpjson", "attachment", ev.flag->variants[0].attachment,
                ev.flag->variants[0].attachment_len);
        }
        ev_free(&ev);
    }

    /* Lua cmsgpack style: bin strings, doubles for integers */
    msgpack_packer pk;
    buf_reset(&b);
    msgpack_packer_init(&pk, &b, buf_msgpack_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_double(&pk, 1.0);
    msgpack_pack_bin_with_body(&pk, "user:42", 7);
    msgpack_pack_bin_with_body(&pk, "ep", 2);
    msgpack_pack_double(&pk, 17.0);
    msgpack_pack_map(&pk, 4);
    msgpack_pack_bin_with_body(&pk, "type", 4);
    msgpack_pack_bin_with_body(&pk, "message", 7);
    msgpack_pack_bin_with_body(&pk, "ts", 2);
    msgpack_pack_double(&pk, 1700000000000.0);
    msgpack_pack_bin_with_body(&pk, "data", 4);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_bin_with_body(&pk, "k", 1);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_float(&pk, 0.5f);
    msgpack_pack_int64(&pk, -3);
    msgpack_pack_nil(&pk);
    msgpack_pack_uint64(&pk, 7);
    msgpack_pack_true(&pk);
    msgpack_pack_bin_with_body(&pk, "actor", 5);
    msgpack_pack_str_with_body(&pk, "bob", 3);
    put("fuzz_event", "lua-style", b.data, b.len);

    flag_t f;
    sample_flag_min(&f, "minimal");
    buf_reset(&b);
    flag_encode(&f, &b);
    put("fuzz_flag", "minimal", b.data, b.len);
    flag_free(&f);

    /* "full" has no variant or segment ids (a record from before them, which
     * test_flag reads); "full-ids" is the same record with them */
    sample_flag(&f);
    f.variants[0].id = 11;
    f.variants[1].id = 12;
    f.segments[0].id = 13;
    f.segments[1].id = 14;
    buf_reset(&b);
    flag_encode(&f, &b);
    put("fuzz_flag", "full-ids", b.data, b.len);
    flag_free(&f);

    /* every msgpack type once, for the JSON renderer */
    buf_reset(&b);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "all", 3);
    msgpack_pack_array(&pk, 10);
    msgpack_pack_nil(&pk);
    msgpack_pack_false(&pk);
    msgpack_pack_uint64(&pk, 18446744073709551615ULL);
    msgpack_pack_int64(&pk, -9000000000LL);
    msgpack_pack_float(&pk, 1.5f);
    msgpack_pack_double(&pk, 1e-300);
    msgpack_pack_str_with_body(&pk, "caf\xc3\xa9\n\xe2\x80\xa8\xff", 10);
    msgpack_pack_bin_with_body(&pk, "\x00\x01\x02", 3);
    msgpack_pack_ext_with_body(&pk, "x", 1, 3);
    msgpack_pack_map(&pk, 0);
    msgpack_pack_uint64(&pk, 5);
    msgpack_pack_str_with_body(&pk, "int key", 7);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_str_with_body(&pk, "array key", 9);
    put("fuzz_mpjson", "all-types", b.data, b.len);

    buf_free(&b);
    return 0;
}
