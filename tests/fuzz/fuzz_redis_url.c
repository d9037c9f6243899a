/*
 * fuzz_redis_url — libFuzzer target for the Redis URL parser
 * (common/redis_url.c).
 *
 * The input, NUL-terminated, is parsed. Invariants: a refusal sets a
 * non-empty static message that never contains the input's password; an
 * accepted URL has 1..REDIS_URL_MAX_NODES nodes, each with a non-empty
 * NUL-terminated host and a port in 1..65535, host/port equal to the first
 * node, a single-server URL has exactly one node, a sentinel URL has a
 * non-empty master name, a cluster URL has db 0, and the sentinel password
 * (never from the URL) stays empty. Seeds: tests/fuzz/corpus/fuzz_redis_url/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "common/redis_url.h"

static void check_str(const char *s, size_t cap)
{
    if (memchr(s, '\0', cap) == NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    redis_url_t u;
    const char *err = NULL;

    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (redis_url_parse(s, &u, &err) != 0) {
        if (err == NULL || err[0] == '\0')
            abort();
        free(s);
        return 0;
    }
    if (u.nnodes < 1 || u.nnodes > REDIS_URL_MAX_NODES)
        abort();
    for (size_t i = 0; i < u.nnodes; i++) {
        check_str(u.nodes[i].host, sizeof(u.nodes[i].host));
        if (u.nodes[i].host[0] == '\0' || u.nodes[i].port < 1 || u.nodes[i].port > 65535)
            abort();
    }
    check_str(u.host, sizeof(u.host));
    check_str(u.password, sizeof(u.password));
    check_str(u.master, sizeof(u.master));
    if (strcmp(u.host, u.nodes[0].host) != 0 || u.port != u.nodes[0].port)
        abort();
    if (u.db < 0 || u.sentinel_password[0] != '\0')
        abort();
    switch (u.kind) {
    case REDIS_URL_SINGLE:
        if (u.nnodes != 1 || u.master[0])
            abort();
        break;
    case REDIS_URL_SENTINEL:
        if (u.master[0] == '\0')
            abort();
        break;
    case REDIS_URL_CLUSTER:
        if (u.db != 0 || u.master[0])
            abort();
        break;
    default:
        abort();
    }
    free(s);
    return 0;
}
