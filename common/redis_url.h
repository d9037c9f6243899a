/*
 * redis_url — the FLAGCAST_REDIS_URL grammar, pure (no sockets, no event
 * loop, no hiredis), so that both daemons and their tests parse it the same
 * way and a fuzzer can reach it.
 *
 *   redis://[[user]:password@]host[:port][/db]
 *   redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/master-name[/db]
 *   redis+cluster://[[user]:password@]host[:port][,host[:port]...]
 *
 * A host is a name, an IPv4 address or an [IPv6] address in brackets; the
 * port defaults to 6379 (26379 for a sentinel). In the sentinel form the
 * hosts are the sentinels and the password is the master's (and replicas');
 * the sentinels' own password, if they have one, is given apart
 * (FLAGCAST_REDIS_SENTINEL_PASSWORD) since it is usually a different one.
 * A cluster has no databases, so its form takes no /db.
 */
#ifndef FLAGCAST_REDIS_URL_H
#define FLAGCAST_REDIS_URL_H

#include <stddef.h>

/* Limits of the grammar, each an error past it rather than a truncation. */
#define REDIS_URL_MAX_NODES  16    /* sentinels or cluster seed nodes */
#define REDIS_URL_HOST_MAX   256   /* bytes of one host, with its NUL */
#define REDIS_URL_NAME_MAX   128   /* bytes of a sentinel master name, with its NUL */

typedef enum {
    REDIS_URL_SINGLE = 0,   /* redis://: one server */
    REDIS_URL_SENTINEL,     /* redis+sentinel://: sentinels and a master name */
    REDIS_URL_CLUSTER,      /* redis+cluster://: seed nodes of a cluster */
} redis_url_kind_t;

typedef struct redis_node {
    char host[REDIS_URL_HOST_MAX];
    int  port;
} redis_node_t;

typedef struct redis_url {
    redis_url_kind_t kind;
    /* The server to connect to: for redis:// the one server; for the other
     * kinds a copy of nodes[0] (the first sentinel or seed), for logs. */
    char         host[REDIS_URL_HOST_MAX];
    int          port;
    char         password[256];      /* "" if none: AUTH to the data nodes */
    int          db;                 /* SELECT (0 for a cluster) */
    /* Sentinel and cluster: the listed nodes, in order (nnodes >= 1). For
     * redis:// nodes[0] is the server too, nnodes 1. */
    size_t       nnodes;
    redis_node_t nodes[REDIS_URL_MAX_NODES];
    char         master[REDIS_URL_NAME_MAX];   /* sentinel: the master's name */
    char         sentinel_password[256];       /* sentinel: AUTH to the sentinels,
                                                * never from the URL (the caller's) */
} redis_url_t;

/* Parses s into *u (which is zeroed first). @return 0, or -1 with *err set
 * to a static message naming what is wrong (never containing the input, so
 * a password is never echoed into a log). */
int redis_url_parse(const char *s, redis_url_t *u, const char **err);

/* The kind's scheme without "://", e.g. "redis+sentinel". */
const char *redis_url_kind_name(redis_url_kind_t kind);

#endif
