/*
 * store — EVALSHA with a NOSCRIPT fallback, and script loading.
 *
 * The script text is embedded at build time (publish_lua, generated from
 * publish.lua by scripts/embed.sh). On every connect main.c calls
 * store_load_script(): SCRIPT LOAD, then remember the SHA. Until the SHA is
 * known, calls go out as EVAL with the text, which also loads it.
 */
#include "publisher/store.h"
#include "common/log.h"
#include "publish_lua.h"

#include <stdlib.h>
#include <string.h>

typedef struct call {
    pub_t    *p;
    store_cb *cb;
    void     *arg;
    int       argc;       /* of argv below, starting at "EVALSHA" */
    char    **argv;
    size_t   *lens;
    int       retried;
} call_t;

static void call_free(call_t *c)
{
    for (int i = 0; i < c->argc; i++)
        free(c->argv[i]);
    free(c->argv);
    free(c->lens);
    free(c);
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
    c->cb(c->p, reply, c->arg);
    call_free(c);
}

/* Sends EVALSHA if the SHA is known and this is the first try, else EVAL. */
static int send_call(call_t *c)
{
    pub_t *p = c->p;
    free(c->argv[0]);
    free(c->argv[1]);
    c->argv[1] = NULL;
    if (p->sha[0] && !c->retried) {
        c->argv[0] = strdup("EVALSHA");
        c->argv[1] = strdup(p->sha);
    } else {
        c->argv[0] = strdup("EVAL");
        c->argv[1] = strdup(publish_lua);
    }
    if (c->argv[0] == NULL || c->argv[1] == NULL)
        return -1;
    c->lens[0] = strlen(c->argv[0]);
    c->lens[1] = strlen(c->argv[1]);
    return rconn_command_argv(p->rc, on_reply, c, c->argc, (const char **)c->argv, c->lens);
}

int store_eval(pub_t *p, int nkeys, int argc, const char **argv, const size_t *lens,
               store_cb *cb, void *arg)
{
    call_t *c;
    char num[24];

    if (!rconn_ready(p->rc))
        return -1;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -1;
    c->p = p;
    c->cb = cb;
    c->arg = arg;
    c->argc = argc + 3;
    c->argv = calloc((size_t)c->argc, sizeof(char *));
    c->lens = calloc((size_t)c->argc, sizeof(size_t));
    if (c->argv == NULL || c->lens == NULL) {
        call_free(c);
        return -1;
    }
    snprintf(num, sizeof(num), "%d", nkeys);
    c->argv[2] = strdup(num);
    c->lens[2] = strlen(num);
    for (int i = 0; i < argc; i++) {
        c->argv[i + 3] = malloc(lens[i] + 1);
        if (c->argv[i + 3] == NULL) {
            call_free(c);
            return -1;
        }
        memcpy(c->argv[i + 3], argv[i], lens[i]);
        c->argv[i + 3][lens[i]] = '\0';
        c->lens[i + 3] = lens[i];
    }
    if (c->argv[2] == NULL || send_call(c) < 0) {
        call_free(c);
        return -1;
    }
    return 0;
}
