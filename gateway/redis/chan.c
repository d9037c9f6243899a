/*
 * chan — the Redis thread's per-channel records (gw_chan_t) in one hash
 * table (see chan.h for who owns which part of a record). A leaf: plain
 * memory, no Redis and no event loop.
 */
#include "gateway/redis/chan.h"

#include <stdlib.h>
#include <string.h>

static unsigned long hash_str(const char *s)
{
    unsigned long h = 5381;
    while (*s)
        h = h * 33 + (unsigned char)*s++;
    return h;
}

gw_chan_t *chan_get(chan_table_t *t, const char *name, bool create)
{
    gw_chan_t **pp = &t->b[hash_str(name) % CHAN_BUCKETS], *c;
    size_t n;

    for (c = *pp; c; c = c->next)
        if (strcmp(c->name, name) == 0)
            return c;
    if (!create)
        return NULL;
    n = strlen(name);
    c = calloc(1, sizeof(*c) + n + 1);
    if (c == NULL)
        return NULL;
    memcpy(c->name, name, n + 1);
    c->next = *pp;
    *pp = c;
    return c;
}

void chan_unlink(chan_table_t *t, gw_chan_t *dead)
{
    gw_chan_t **pp = &t->b[hash_str(dead->name) % CHAN_BUCKETS];

    for (; *pp; pp = &(*pp)->next)
        if (*pp == dead) {
            *pp = dead->next;
            break;
        }
    dead->next = NULL;
    dead->dead = true;
}

void chan_each(chan_table_t *t, void (*fn)(gw_chan_t *))
{
    size_t i;
    gw_chan_t *c;

    for (i = 0; i < CHAN_BUCKETS; i++)
        for (c = t->b[i]; c; c = c->next)
            fn(c);
}

gw_chan_t *chan_pop(chan_table_t *t)
{
    size_t i;

    for (i = 0; i < CHAN_BUCKETS; i++)
        if (t->b[i]) {
            gw_chan_t *c = t->b[i];
            t->b[i] = c->next;
            c->next = NULL;
            return c;
        }
    return NULL;
}

void chan_free(gw_chan_t *c)
{
    chan_evvec_clear(&c->held);
    chan_evvec_clear(&c->win);
    free(c);
}

int chan_evvec_push(chan_evvec_t *v, outq_ev_t *e)
{
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 16;
        outq_ev_t **nv = realloc(v->v, nc * sizeof(*nv));
        if (nv == NULL)
            return -1;
        v->v = nv;
        v->cap = nc;
    }
    v->v[v->n++] = e;
    return 0;
}

void chan_evvec_clear(chan_evvec_t *v)
{
    size_t i;

    for (i = 0; i < v->n; i++)
        outq_ev_unref(v->v[i]);
    free(v->v);
    v->v = NULL;
    v->n = v->cap = 0;
}
