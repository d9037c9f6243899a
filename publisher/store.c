/*
 * store — publish.lua's argument vector and reply, and the EVALSHA glue.
 *
 * The script text is embedded at build time (publish_lua, generated from
 * publish.lua by scripts/embed.sh). On every connect main.c calls
 * store_load_script(): SCRIPT LOAD, then remember the SHA. Until the SHA is
 * known, calls go out as EVAL with the text, which also loads it.
 *
 * The vector's layout is publish.lua's header, written down once here:
 *
 *   flag: KEYS  P:flags P:flag-ids {P:meta:<ch> P:hist:<ch>}...
 *         ARGV  "flag" mode key expected record body id history ttl
 *               {<ch> P:ch:<ch> epoch_candidate}...
 *   msg:  KEYS  {P:meta:<ch> P:hist:<ch>}...
 *         ARGV  "msg" body history ttl {<ch> P:ch:<ch> epoch_candidate [body]}...
 *
 * where a msg with per-publication bodies passes "" as its body and the
 * fourth element in each group.
 */
#include "publisher/store.h"
#include "common/log.h"
#include "publish_lua.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* ==== pure: the argument vector ==== */

typedef struct builder {
    store_args_t *a;
    int           cap;
    int           ok;
} builder_t;

static void put(builder_t *b, const char *s, size_t n)
{
    char *d;
    if (!b->ok)
        return;
    if (b->a->argc == b->cap) {
        b->ok = 0;
        return;
    }
    d = malloc(n + 1);
    if (d == NULL) {
        b->ok = 0;
        return;
    }
    memcpy(d, s ? s : "", n);
    d[n] = '\0';
    b->a->argv[b->a->argc] = d;
    b->a->lens[b->a->argc] = n;
    b->a->argc++;
}

static void put_str(builder_t *b, const char *s)
{
    put(b, s, s ? strlen(s) : 0);
}

static void put_num(builder_t *b, unsigned long long v)
{
    char num[24];
    snprintf(num, sizeof(num), "%llu", v);
    put_str(b, num);
}

static void put_key(builder_t *b, const char *prefix, const char *kind, const char *name)
{
    char key[PUB_KEY_MAX];
    int n = name ? snprintf(key, sizeof(key), "%s:%s:%s", prefix, kind, name)
                 : snprintf(key, sizeof(key), "%s:%s", prefix, kind);
    if (n < 0 || (size_t)n >= sizeof(key))
        b->ok = 0;
    else
        put(b, key, (size_t)n);
}

/* 16 hex chars of randomness: a channel's epoch candidate. */
static void put_epoch_candidate(builder_t *b)
{
    unsigned char rnd[8];
    char out[17];
    ssize_t n = getrandom(rnd, sizeof(rnd), 0);
    if (n != (ssize_t)sizeof(rnd)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = ((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u) ^
                     ((uint64_t)getpid() << 32);
        memcpy(rnd, &x, sizeof(rnd));
    }
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", rnd[i]);
    put(b, out, 16);
}

void store_args_free(store_args_t *a)
{
    for (int i = 0; i < a->argc; i++)
        free(a->argv[i]);
    free(a->argv);
    free(a->lens);
    memset(a, 0, sizeof(*a));
}

int store_args_build(const char *prefix, const store_call_t *c, store_args_t *a)
{
    builder_t b = { a, 0, 1 };
    int flag = c->op == STORE_FLAG;
    int per_pub = !flag && c->body == NULL;
    size_t nkeys = (flag ? 2 : 0) + 2 * c->npub;

    memset(a, 0, sizeof(*a));
    if (c->npub == 0 || c->npub > 100000)
        return -1;
    b.cap = (int)(3 + nkeys + (flag ? 9 : 4) + (per_pub ? 4 : 3) * c->npub);
    a->argv = calloc((size_t)b.cap, sizeof(char *));
    a->lens = calloc((size_t)b.cap, sizeof(size_t));
    if (a->argv == NULL || a->lens == NULL) {
        store_args_free(a);
        return -1;
    }
    a->argc = 2;                      /* EVALSHA sha / EVAL script: the sender's */
    put_num(&b, nkeys);
    if (flag) {
        put_key(&b, prefix, "flags", NULL);
        put_key(&b, prefix, "flag-ids", NULL);
    }
    for (size_t i = 0; i < c->npub; i++) {
        put_key(&b, prefix, "meta", c->pubs[i].channel);
        put_key(&b, prefix, "hist", c->pubs[i].channel);
    }
    if (flag) {
        put_str(&b, "flag");
        put_str(&b, c->mode);
        put_str(&b, c->key);
        put_num(&b, c->expected);
        put(&b, c->record, c->record_len);
        put(&b, c->body, c->body_len);
        put_num(&b, c->id);
    } else {
        put_str(&b, "msg");
        put(&b, per_pub ? "" : c->body, per_pub ? 0 : c->body_len);
    }
    put_num(&b, (unsigned long long)c->history_size);
    put_num(&b, (unsigned long long)c->ttl);
    for (size_t i = 0; i < c->npub; i++) {
        put_str(&b, c->pubs[i].channel);
        put_key(&b, prefix, "ch", c->pubs[i].channel);
        put_epoch_candidate(&b);
        if (per_pub)
            put(&b, c->pubs[i].body, c->pubs[i].body_len);
    }
    if (!b.ok || a->argc != b.cap) {
        store_args_free(a);
        return -1;
    }
    return 0;
}

/* ==== pure: the reply ==== */

int store_reply_parse(const redisReply *r, store_reply_t *out)
{
    memset(out, 0, sizeof(*out));
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_INTEGER)
        return -1;
    out->status = r->element[0]->integer;
    if (out->status != 200) {
        if (r->elements > 1 && r->element[1]->type == REDIS_REPLY_INTEGER)
            out->current = r->element[1]->integer;
        return 0;
    }
    if ((r->elements - 1) % 3 != 0)
        return -1;
    for (size_t i = 1; i < r->elements; i += 3) {
        if (r->element[i]->type != REDIS_REPLY_STRING ||
            r->element[i + 1]->type != REDIS_REPLY_STRING ||
            r->element[i + 2]->type != REDIS_REPLY_INTEGER)
            return -1;
    }
    out->npub = (r->elements - 1) / 3;
    out->pub = r->element + 1;
    return 0;
}

/* ==== glue: SCRIPT LOAD, EVALSHA, NOSCRIPT ==== */

typedef struct call {
    pub_t        *p;
    store_cb     *cb;
    void         *arg;
    store_args_t  args;
    int           retried;
    redisReply   *held;      /* the script's reply, kept while WAIT runs */
} call_t;

static void call_free(call_t *c)
{
    store_args_free(&c->args);
    if (c->held)
        freeReplyObject(c->held);
    free(c);
}

/* ==== glue: WAIT for replicas ==== */

/* A deep copy of r that freeReplyObject() frees (hiredis frees an async
 * reply when its callback returns; the script's must outlive WAIT's). */
static redisReply *reply_copy(const redisReply *r)
{
    redisReply *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->type = r->type;
    c->integer = r->integer;
    if (r->str) {
        c->str = malloc(r->len + 1);
        if (c->str == NULL)
            goto fail;
        memcpy(c->str, r->str, r->len);
        c->str[r->len] = '\0';
        c->len = r->len;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
        c->element = calloc(r->elements, sizeof(*c->element));
        if (c->element == NULL)
            goto fail;
        c->elements = r->elements;
        for (size_t i = 0; i < r->elements; i++)
            if ((c->element[i] = reply_copy(r->element[i])) == NULL)
                goto fail;
    }
    return c;
fail:
    freeReplyObject(c);
    return NULL;
}

/* Answers c with "NOTACKED <why>" and frees it. */
static void not_acked(call_t *c, const char *fmt, long long got)
{
    char msg[200];
    redisReply e;
    int n = snprintf(msg, sizeof(msg), "%s ", STORE_NOTACKED);
    snprintf(msg + n, sizeof(msg) - (size_t)n, fmt, got, c->p->cfg.min_replicas);
    memset(&e, 0, sizeof(e));
    e.type = REDIS_REPLY_ERROR;
    e.str = msg;
    e.len = strlen(msg);
    log_warn("write not acknowledged by enough replicas", "reason=\"%s\"", msg + n);
    c->cb(c->p, &e, c->arg);
    call_free(c);
}

static void on_wait(redisAsyncContext *ac, void *r, void *priv)
{
    call_t *c = priv;
    redisReply *reply = r;

    if (reply == NULL)
        return not_acked(c, "the Redis connection was lost before replicas acknowledged it "
                            "(%lld of %ld)", 0);
    if (reply->type != REDIS_REPLY_INTEGER)
        return not_acked(c, "WAIT failed (%lld of %ld replicas known to have it)", 0);
    if (reply->integer < c->p->cfg.min_replicas)
        return not_acked(c, "only %lld of %ld replicas acknowledged it", reply->integer);
    c->cb(c->p, c->held, c->arg);
    call_free(c);
}

/* After a script reply that wrote: WAIT. @return 1 if c now waits (or was
 * answered), 0 if the reply is to be passed on as it is. */
static int maybe_wait(call_t *c, const redisReply *reply)
{
    store_reply_t sr;
    pub_t *p = c->p;

    if (p->cfg.min_replicas <= 0 || reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
        store_reply_parse(reply, &sr) < 0 || sr.status != 200)
        return 0;
    c->held = reply_copy(reply);
    if (c->held == NULL) {
        not_acked(c, "the publisher ran out of memory (%lld of %ld)", 0);
        return 1;
    }
    if (rconn_command(p->rc, on_wait, c, "WAIT %ld %ld", p->cfg.min_replicas,
                      p->cfg.wait_ms) != 0)
        not_acked(c, "the Redis connection was lost before WAIT (%lld of %ld)", 0);
    return 1;
}

static void on_load(redisAsyncContext *ac, void *r, void *priv)
{
    pub_t *p = priv;
    redisReply *reply = r;
    if (reply == NULL)
        return;
    if (reply->type == REDIS_REPLY_STRING && reply->len == 40) {
        memcpy(p->sha, reply->str, 40);
        p->sha[40] = '\0';
        log_info("script loaded", "sha=%s", p->sha);
    } else {
        log_error("script load failed", "error=\"%s\"",
                  reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
    }
}

void store_load_script(pub_t *p)
{
    p->sha[0] = '\0';
    rconn_command(p->rc, on_load, p, "SCRIPT LOAD %s", publish_lua);
}

static int send_call(call_t *c);

static void on_reply(redisAsyncContext *ac, void *r, void *priv)
{
    call_t *c = priv;
    redisReply *reply = r;

    if (reply && reply->type == REDIS_REPLY_ERROR && !c->retried &&
        strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        metric_inc(c->p->m.noscript);
        log_warn("script missing in Redis, reloading", NULL);
        c->retried = 1;
        store_load_script(c->p);
        if (send_call(c) == 0)
            return;
        reply = NULL;
    }
    if (maybe_wait(c, reply))
        return;
    c->cb(c->p, reply, c->arg);
    call_free(c);
}

/* Sends EVALSHA if the SHA is known and this is the first try, else EVAL. */
static int send_call(call_t *c)
{
    pub_t *p = c->p;
    char **argv = c->args.argv;
    free(argv[0]);
    free(argv[1]);
    argv[1] = NULL;
    if (p->sha[0] && !c->retried) {
        argv[0] = strdup("EVALSHA");
        argv[1] = strdup(p->sha);
    } else {
        argv[0] = strdup("EVAL");
        argv[1] = strdup(publish_lua);
    }
    if (argv[0] == NULL || argv[1] == NULL)
        return -1;
    c->args.lens[0] = strlen(argv[0]);
    c->args.lens[1] = strlen(argv[1]);
    return rconn_command_argv(p->rc, on_reply, c, c->args.argc, (const char **)argv,
                              c->args.lens);
}

int store_call(pub_t *p, const store_call_t *sc, store_cb *cb, void *arg)
{
    call_t *c;

    if (!rconn_ready(p->rc))
        return -1;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -1;
    c->p = p;
    c->cb = cb;
    c->arg = arg;
    if (store_args_build(p->cfg.prefix, sc, &c->args) < 0 || send_call(c) < 0) {
        call_free(c);
        return -1;
    }
    return 0;
}
