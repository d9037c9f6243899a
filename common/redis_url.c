/*
 * redis_url — parser of the three Redis URL forms (see redis_url.h).
 *
 * The string is cut from the left: scheme, then the authority (up to the
 * first '/'), in which the last '@' ends the credentials and ',' separates
 * the nodes, then the path. Every piece is checked for its length before it
 * is copied, so the result is either whole or an error; nothing is
 * truncated silently. Error messages are static and never quote the input.
 */
#include "common/redis_url.h"

#include <stdlib.h>
#include <string.h>

#define DB_MAX 1000000

typedef struct {
    const char        *prefix;
    redis_url_kind_t   kind;
    int                default_port;
} scheme_t;

static const scheme_t schemes[] = {
    { "redis://", REDIS_URL_SINGLE, 6379 },
    { "redis+sentinel://", REDIS_URL_SENTINEL, 26379 },
    { "redis+cluster://", REDIS_URL_CLUSTER, 6379 },
};

const char *redis_url_kind_name(redis_url_kind_t kind)
{
    switch (kind) {
    case REDIS_URL_SINGLE:   return "redis";
    case REDIS_URL_SENTINEL: return "redis+sentinel";
    case REDIS_URL_CLUSTER:  return "redis+cluster";
    }
    return "?";
}

/* [s, e) all decimal digits, at least one, value <= max. @return it or -1. */
static long parse_num(const char *s, const char *e, long max)
{
    long v = 0;
    if (s == e)
        return -1;
    for (; s < e; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
        if (v > max)
            return -1;
    }
    return v;
}

/* One node, [s, e): host, host:port, [v6] or [v6]:port. */
static int parse_node(const char *s, const char *e, int default_port, redis_node_t *n,
                      const char **err)
{
    const char *hs, *he, *colon;
    size_t len;

    if (s == e) {
        *err = "Redis URL has an empty host (two commas, or a comma at an end?)";
        return -1;
    }
    if (*s == '[') {
        const char *rb = memchr(s, ']', (size_t)(e - s));
        if (rb == NULL) {
            *err = "Redis URL has an unterminated [IPv6] host";
            return -1;
        }
        hs = s + 1;
        he = rb;
        if (rb + 1 < e && rb[1] != ':') {
            *err = "Redis URL: unexpected text after ]";
            return -1;
        }
        colon = rb + 1 < e ? rb + 1 : NULL;
    } else {
        colon = memchr(s, ':', (size_t)(e - s));
        hs = s;
        he = colon ? colon : e;
    }
    len = (size_t)(he - hs);
    if (len == 0 || len >= sizeof(n->host)) {
        *err = "Redis URL host is empty or too long";
        return -1;
    }
    for (const char *p = hs; p < he; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '@' || *p == '[' || *p == ']' ||
            (*s != '[' && *p == ':')) {
            *err = "Redis URL host has a space, control byte or stray @ [ ] :";
            return -1;
        }
    memcpy(n->host, hs, len);
    n->host[len] = '\0';
    n->port = default_port;
    if (colon) {
        long port;
        if (colon + 1 == e) {
            *err = "Redis URL port is empty";
            return -1;
        }
        port = parse_num(colon + 1, e, 65535);
        if (port < 1) {
            *err = "Redis URL port must be 1-65535";
            return -1;
        }
        n->port = (int)port;
    }
    return 0;
}

/* "/db" or "" (end of string) at s. */
static int parse_db(const char *s, redis_url_t *u, const char **err)
{
    long db;
    if (*s == '\0' || (s[0] == '/' && s[1] == '\0'))
        return 0;
    db = parse_num(s + 1, s + strlen(s), DB_MAX);
    if (db < 0) {
        *err = "Redis URL database must be a number 0-1000000";
        return -1;
    }
    u->db = (int)db;
    return 0;
}

int redis_url_parse(const char *s, redis_url_t *u, const char **err)
{
    const scheme_t *sc = NULL;
    const char *p, *auth_end, *at, *hostp;
    size_t i, n;

    memset(u, 0, sizeof(*u));
    u->port = 6379;
    if (s == NULL) {
        *err = "Redis URL is missing";
        return -1;
    }
    for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
        if (strncmp(s, schemes[i].prefix, strlen(schemes[i].prefix)) == 0) {
            sc = &schemes[i];
            break;
        }
    if (sc == NULL) {
        *err = "Redis URL must start with redis://, redis+sentinel:// or redis+cluster://";
        return -1;
    }
    u->kind = sc->kind;
    p = s + strlen(sc->prefix);
    auth_end = p + strcspn(p, "/");

    /* credentials: up to the last '@' of the authority */
    at = NULL;
    for (const char *q = p; q < auth_end; q++)
        if (*q == '@')
            at = q;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon == NULL) {
            *err = "Redis URL credentials must be :password@ or user:password@";
            return -1;
        }
        n = (size_t)(at - colon - 1);
        if (n >= sizeof(u->password)) {
            *err = "Redis password too long";
            return -1;
        }
        memcpy(u->password, colon + 1, n);
        u->password[n] = '\0';
        hostp = at + 1;
    } else {
        hostp = p;
    }

    /* nodes, separated by ',' */
    if (hostp == auth_end) {
        *err = "Redis URL has no host";
        return -1;
    }
    while (hostp <= auth_end) {
        const char *comma = memchr(hostp, ',', (size_t)(auth_end - hostp));
        const char *ne = comma ? comma : auth_end;
        if (u->nnodes == REDIS_URL_MAX_NODES) {
            *err = "Redis URL lists more than 16 nodes";
            return -1;
        }
        if (parse_node(hostp, ne, sc->default_port, &u->nodes[u->nnodes], err) != 0)
            return -1;
        u->nnodes++;
        if (comma == NULL)
            break;
        hostp = comma + 1;
    }
    if (sc->kind == REDIS_URL_SINGLE && u->nnodes > 1) {
        *err = "redis:// takes one host; list several with redis+sentinel:// or redis+cluster://";
        return -1;
    }
    memcpy(u->host, u->nodes[0].host, sizeof(u->host));
    u->port = u->nodes[0].port;

    /* path */
    p = auth_end;
    switch (sc->kind) {
    case REDIS_URL_SINGLE:
        return parse_db(p, u, err);
    case REDIS_URL_CLUSTER:
        if (*p != '\0' && strcmp(p, "/") != 0) {
            *err = "redis+cluster:// takes no path (a cluster has no databases)";
            return -1;
        }
        return 0;
    case REDIS_URL_SENTINEL: {
        const char *ns, *ne;
        if (*p != '/' || p[1] == '\0' || p[1] == '/') {
            *err = "redis+sentinel:// needs the master's name: redis+sentinel://host:port/name";
            return -1;
        }
        ns = p + 1;
        ne = ns + strcspn(ns, "/");
        n = (size_t)(ne - ns);
        if (n >= sizeof(u->master)) {
            *err = "Redis Sentinel master name too long (127 bytes at most)";
            return -1;
        }
        for (const char *q = ns; q < ne; q++)
            if ((unsigned char)*q <= ' ' || *q == 0x7f) {
                *err = "Redis Sentinel master name has a space or control byte";
                return -1;
            }
        memcpy(u->master, ns, n);
        u->master[n] = '\0';
        return parse_db(ne, u, err);
    }
    }
    return 0;
}
