/*
 * fuzz_headgate — libFuzzer target for the request-head check run before
 * lws (gateway/headgate.c). Invariants: a verdict is one of the four; a
 * head the check passes has its end within the limit; more bytes never turn
 * a final verdict back into "wait"; a shorter limit never passes a head a
 * longer one found too large.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "gateway/headgate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    size_t limit = size > 2 ? (size_t)data[0] * 4 + 1 : 64;
    headgate_t v = headgate_check(s, size, limit), w;

    if (v < HEADGATE_MORE || v > HEADGATE_BAD)
        abort();
    if (v == HEADGATE_MORE && size >= limit)
        abort();
    /* a prefix that was final stays final with the same verdict */
    for (size_t n = 0; n <= size; n += 1 + size / 8) {
        w = headgate_check(s, n, limit);
        if (w != HEADGATE_MORE && w != v)
            abort();
    }
    if (v == HEADGATE_OK && headgate_check(s, size, limit * 2) != HEADGATE_OK)
        abort();
    (void)headgate_reason(v);
    return 0;
}
