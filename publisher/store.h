/*
 * store — the one place that speaks publish.lua's calling convention.
 *
 * The script's argument vector (see publish.lua's header) is built here and
 * only here, by store_args_build(), from a store_call_t that says what to
 * write and where to publish; its reply is read here too, by
 * store_reply_parse(). Both are pure (no event loop), so a unit test can
 * EVAL the real script with the real vector and check the published bytes.
 *
 * store_call() is the glue: it sends the vector as EVALSHA and, if Redis
 * answers NOSCRIPT (script cache flushed, failover), sends it once more as
 * EVAL with the script text and reloads the SHA for later calls. With
 * cfg.min_replicas > 0, a script call that wrote (status 200) is followed by
 * WAIT min_replicas wait_ms, and the callback gets the script's reply only
 * once that many replicas have it; else an error reply STORE_NOTACKED. The
 * callback gets the script's reply, or NULL if Redis went away before the
 * script answered; the reply lives only for the callback.
 */
#ifndef FLAGCAST_STORE_H
#define FLAGCAST_STORE_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>
#include "publisher/pub.h"

/* One publication of a call: a channel ("flags", "user:<id>", "chat.x") and,
 * for per-publication bodies (A/B messages), its body. */
typedef struct store_pub {
    const char *channel;
    const char *body;        /* NULL: the call's body */
    size_t      body_len;
} store_pub_t;

typedef enum store_op { STORE_FLAG, STORE_MSG } store_op_t;

/* What one script call does. Pointers are borrowed: store_args_build
 * copies what it keeps. */
typedef struct store_call {
    store_op_t         op;
    /* STORE_FLAG only */
    const char        *mode;         /* "create", "update" or "delete" */
    const char        *key;          /* the flag's key */
    uint64_t           expected;     /* stored version the script checks (not for create) */
    uint64_t           id;           /* the flag's id */
    const char        *record;       /* msgpack flag record */
    size_t             record_len;
    /* both */
    const char        *body;         /* event body; NULL (STORE_MSG): one per publication */
    size_t             body_len;
    long               history_size; /* entries kept per channel */
    long               ttl;          /* seconds a channel's history lives; 0: forever */
    const store_pub_t *pubs;         /* at least one */
    size_t             npub;
} store_call_t;

/* A built argument vector: argv[0] and argv[1] are left NULL for the sender
 * ("EVALSHA" sha, or "EVAL" script text), argv[2] is the key count, then
 * KEYS and ARGV as publish.lua reads them. Owns every string. */
typedef struct store_args {
    int     argc;
    char  **argv;
    size_t *lens;
} store_args_t;

/* Builds the vector of call c, with key names under prefix and a fresh
 * random epoch candidate per publication.
 * @return 0, or -1 (a key name too long, out of memory) with a zeroed. */
int  store_args_build(const char *prefix, const store_call_t *c, store_args_t *a);
void store_args_free(store_args_t *a);

/* A script reply, read: status 200 with npub publications (each the
 * channel, epoch and offset elements), or 404 / 409 / 412 (current: the
 * stored version, 0 if not given). Points into the redisReply. */
typedef struct store_reply {
    long long          status;
    long long          current;
    size_t             npub;
    redisReply *const *pub;          /* pub[3*i], pub[3*i+1], pub[3*i+2] */
} store_reply_t;

/* @return 0 with out filled, or -1 if r is not the shape the script
 * returns (r must not be NULL). */
int  store_reply_parse(const redisReply *r, store_reply_t *out);

/* The error reply store_call() hands its callback when the script wrote
 * but fewer than cfg.min_replicas replicas acknowledged it in cfg.wait_ms:
 * "NOTACKED <what happened>". */
#define STORE_NOTACKED "NOTACKED"

typedef void store_cb(pub_t *p, redisReply *reply, void *arg);

/* Builds c's vector and sends it (see above).
 * @return 0, or -1 if Redis is not connected or the vector cannot be built
 * (cb is then never called). */
int  store_call(pub_t *p, const store_call_t *c, store_cb *cb, void *arg);

/* (Re)loads the Lua script; main.c calls it on every Redis connect. */
void store_load_script(pub_t *p);

#endif
