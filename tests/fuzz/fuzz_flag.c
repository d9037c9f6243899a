/*
 * fuzz_flag — flag_decode (the records gateways load from P:flags) and
 * flag_to_json.
 *
 * For every input that decodes: the record validates, renders as JSON that
 * jansson accepts, copies and re-encodes to an equal record, and the
 * re-encoding is stable (encode(decode(encode(x))) == encode(x)).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/flag.h"
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    flag_t f, back, copy;
    char err[256];
    const char *e;

    if (flag_decode((const char *)data, size, &f, err, sizeof(err)) != 0) {
        CHECK(err[0] != '\0');
        CHECK(f.key == NULL && f.tags == NULL && f.variants == NULL && f.segments == NULL);
        return 0;
    }
    CHECK(flag_validate(&f, &e) == 0);

    buf_t js;
    buf_init(&js);
    CHECK(flag_to_json(&f, &js) == 0);
    CHECK(json_ok(js.data, js.len));
    buf_free(&js);

    CHECK(flag_copy(&copy, &f) == 0);
    CHECK(flag_eq(&copy, &f));
    flag_free(&copy);

    buf_t b1, b2;
    buf_init(&b1);
    buf_init(&b2);
    CHECK(flag_encode(&f, &b1) == 0);
    CHECK(flag_decode(b1.data, b1.len, &back, err, sizeof(err)) == 0);
    CHECK(flag_eq(&f, &back));
    CHECK(flag_encode(&back, &b2) == 0);
    CHECK(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);
    for (size_t i = 0; i < f.ntags; i++)
        CHECK(flag_has_tag(&f, f.tags[i], strlen(f.tags[i])));
    flag_free(&back);
    buf_free(&b1);
    buf_free(&b2);
    flag_free(&f);
    return 0;
}
