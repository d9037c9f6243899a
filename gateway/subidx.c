/*
 * subidx — the subscription index (see subidx.h for the model).
 *
 * One chained hash table maps (kind, bytes) to a bucket; a bucket holds a
 * doubly linked list of nodes, one per subscription registered there. Kinds:
 * 'c' logical channel (its node count is the channel's reference count),
 * 'a' all flags, 'k' flag key, 'i' flag id (8 bytes, host order), 't' tag.
 *
 * A subscription's nodes live in one array owned by it, so a registration
 * costs one allocation per subscription, not per node, and removal walks
 * that array unlinking each node in O(1). Registration is two-phase: all
 * nodes are linked first, and only then are the "first subscriber" channel
 * callbacks fired, so a registration that fails half-way (allocation) is
 * rolled back without the caller ever seeing a SUBSCRIBE/UNSUBSCRIBE flap.
 *
 * A lookup walks only the buckets an event can match; a generation counter
 * stamped on each visited subscription dedupes those registered in several
 * of them (tags), without allocating.
 */
#include "gateway/subidx.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct sx_bucket sx_bucket_t;

typedef struct sx_node {
    struct sx_node *prev, *next;
    sx_bucket_t    *b;
    subidx_sub_t   *sub;
} sx_node_t;

struct sx_bucket {
    sx_bucket_t *hnext;     /* hash chain */
    sx_node_t   *head;
    size_t       count;
    uint32_t     hash;
    uint32_t     klen;
    char         kind;
    bool         fresh;     /* created by a registration not yet announced */
    char         key[];     /* klen bytes, then NUL */
};

struct subidx_sub {
    subidx_sub_t *all_prev, *all_next;   /* every subscription, for free */
    void         *owner;
    filter_t      filter;
    sx_node_t    *nodes;
    size_t        nnodes;
    uint64_t      stamp;                 /* last lookup generation that saw it */
};

struct subidx {
    sx_bucket_t   **tab;
    size_t          tabsize;   /* power of two */
    size_t          nbuckets;
    size_t          nchannels;
    size_t          nsubs;
    subidx_sub_t   *subs;
    uint64_t        gen;
    size_t          last_visited;
    subidx_chan_cb  chan_cb;
    void           *chan_arg;
};

#define SX_INITIAL_TAB 64

/* ==== hash table ========================================================= */

static uint32_t sx_hash(char kind, const void *key, size_t n)
{
    uint32_t h = 2166136261u;
    h = (h ^ (unsigned char)kind) * 16777619u;
    const unsigned char *p = key;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static sx_bucket_t *sx_find(const subidx_t *idx, char kind, const void *key, size_t n)
{
    uint32_t h = sx_hash(kind, key, n);
    for (sx_bucket_t *b = idx->tab[h & (idx->tabsize - 1)]; b; b = b->hnext)
        if (b->hash == h && b->kind == kind && b->klen == n && memcmp(b->key, key, n) == 0)
            return b;
    return NULL;
}

static void sx_grow(subidx_t *idx)
{
    size_t ns = idx->tabsize * 2;
    sx_bucket_t **nt = calloc(ns, sizeof *nt);
    if (!nt)
        return;                /* keep the old table: longer chains, still correct */
    for (size_t i = 0; i < idx->tabsize; i++) {
        sx_bucket_t *b = idx->tab[i], *next;
        for (; b; b = next) {
            next = b->hnext;
            b->hnext = nt[b->hash & (ns - 1)];
            nt[b->hash & (ns - 1)] = b;
        }
    }
    free(idx->tab);
    idx->tab = nt;
    idx->tabsize = ns;
}

static sx_bucket_t *sx_get(subidx_t *idx, char kind, const void *key, size_t n)
{
    sx_bucket_t *b = sx_find(idx, kind, key, n);
    if (b)
        return b;
    if (!(b = calloc(1, sizeof *b + n + 1)))
        return NULL;
    b->hash = sx_hash(kind, key, n);
    b->kind = kind;
    b->klen = (uint32_t)n;
    memcpy(b->key, key, n);
    b->key[n] = '\0';
    b->fresh = true;
    size_t slot = b->hash & (idx->tabsize - 1);
    b->hnext = idx->tab[slot];
    idx->tab[slot] = b;
    idx->nbuckets++;
    if (kind == 'c')
        idx->nchannels++;
    if (idx->nbuckets > idx->tabsize)
        sx_grow(idx);
    return b;
}

static void sx_drop_bucket(subidx_t *idx, sx_bucket_t *b)
{
    sx_bucket_t **pp = &idx->tab[b->hash & (idx->tabsize - 1)];
    while (*pp != b)
        pp = &(*pp)->hnext;
    *pp = b->hnext;
    idx->nbuckets--;
    if (b->kind == 'c')
        idx->nchannels--;
    free(b);
}

/* ==== registration ======================================================= */

static void sx_link(sx_bucket_t *b, sx_node_t *n, subidx_sub_t *s)
{
    n->b = b;
    n->sub = s;
    n->prev = NULL;
    n->next = b->head;
    if (b->head)
        b->head->prev = n;
    b->head = n;
    b->count++;
}

/* Unlinks n; frees its bucket when emptied, announcing a channel's last
 * subscriber unless the bucket was never announced. */
static void sx_unlink(subidx_t *idx, sx_node_t *n)
{
    sx_bucket_t *b = n->b;
    if (!b)
        return;
    if (n->prev)
        n->prev->next = n->next;
    else
        b->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    n->b = NULL;
    if (--b->count == 0) {
        if (b->kind == 'c' && !b->fresh && idx->chan_cb)
            idx->chan_cb(idx->chan_arg, b->key, false);
        sx_drop_bucket(idx, b);
    }
}

static size_t sx_count_regs(const filter_t *f)
{
    size_t n = f->nchannels;
    if (f->flags != FILTER_FLAGS_NONE)
        n++;                               /* ("c", "flags") */
    if (f->flags == FILTER_FLAGS_ALL)
        n++;                               /* ("a") */
    else if (f->flags == FILTER_FLAGS_SOME)
        n += f->nkeys ? f->nkeys : f->nids ? f->nids : f->ntags;
    return n;
}

/* Links s into every bucket f needs, into a new node array. On success
 * nodes_out and nnodes_out hold it and the fresh channel buckets are announced.
 * @return 0, or -1 with nothing changed. */
static int sx_register(subidx_t *idx, subidx_sub_t *s, const filter_t *f,
                       sx_node_t **nodes_out, size_t *nnodes_out)
{
    size_t total = sx_count_regs(f), k = 0;
    sx_node_t *nodes = NULL;
    if (total && !(nodes = calloc(total, sizeof *nodes)))
        return -1;

#define REG(kind, key, len)                                     \
    do {                                                        \
        sx_bucket_t *b_ = sx_get(idx, (kind), (key), (len));    \
        if (!b_)                                                \
            goto fail;                                          \
        sx_link(b_, &nodes[k++], s);                            \
    } while (0)

    for (uint32_t i = 0; i < f->nchannels; i++)
        REG('c', f->channels[i], strlen(f->channels[i]));
    if (f->flags != FILTER_FLAGS_NONE)
        REG('c', "flags", 5);
    if (f->flags == FILTER_FLAGS_ALL) {
        REG('a', "", 0);
    } else if (f->flags == FILTER_FLAGS_SOME) {
        if (f->nkeys) {
            for (uint32_t i = 0; i < f->nkeys; i++)
                REG('k', f->keys[i], strlen(f->keys[i]));
        } else if (f->nids) {
            for (uint32_t i = 0; i < f->nids; i++)
                REG('i', &f->ids[i], sizeof f->ids[i]);
        } else {
            for (uint32_t i = 0; i < f->ntags; i++)
                REG('t', f->tags[i], strlen(f->tags[i]));
        }
    }
#undef REG

    for (size_t i = 0; i < k; i++) {
        sx_bucket_t *b = nodes[i].b;
        if (b->fresh) {
            b->fresh = false;
            if (b->kind == 'c' && idx->chan_cb)
                idx->chan_cb(idx->chan_arg, b->key, true);
        }
    }
    *nodes_out = nodes;
    *nnodes_out = k;
    return 0;

fail:
    /* Fresh buckets emptied here are dropped silently (never announced). */
    while (k--)
        sx_unlink(idx, &nodes[k]);
    free(nodes);
    return -1;
}

static void sx_unregister(subidx_t *idx, sx_node_t *nodes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sx_unlink(idx, &nodes[i]);
    free(nodes);
}

/* ==== public ============================================================= */

subidx_t *subidx_new(subidx_chan_cb chan_cb, void *chan_arg)
{
    subidx_t *idx = calloc(1, sizeof *idx);
    if (!idx)
        return NULL;
    if (!(idx->tab = calloc(SX_INITIAL_TAB, sizeof *idx->tab))) {
        free(idx);
        return NULL;
    }
    idx->tabsize = SX_INITIAL_TAB;
    idx->chan_cb = chan_cb;
    idx->chan_arg = chan_arg;
    return idx;
}

void subidx_free(subidx_t *idx)
{
    if (!idx)
        return;
    subidx_sub_t *s = idx->subs, *next;
    for (; s; s = next) {
        next = s->all_next;
        filter_free(&s->filter);
        free(s->nodes);
        free(s);
    }
    for (size_t i = 0; i < idx->tabsize; i++) {
        sx_bucket_t *b = idx->tab[i], *bn;
        for (; b; b = bn) {
            bn = b->hnext;
            free(b);
        }
    }
    free(idx->tab);
    free(idx);
}

subidx_sub_t *subidx_add(subidx_t *idx, void *owner, const filter_t *f)
{
    subidx_sub_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->owner = owner;
    if (filter_copy(&s->filter, f) != 0) {
        free(s);
        return NULL;
    }
    if (sx_register(idx, s, &s->filter, &s->nodes, &s->nnodes) != 0) {
        filter_free(&s->filter);
        free(s);
        return NULL;
    }
    s->all_next = idx->subs;
    if (idx->subs)
        idx->subs->all_prev = s;
    idx->subs = s;
    idx->nsubs++;
    return s;
}

int subidx_update(subidx_t *idx, subidx_sub_t *s, const filter_t *f)
{
    filter_t nf;
    sx_node_t *nodes;
    size_t nnodes;
    if (filter_copy(&nf, f) != 0)
        return -1;
    if (sx_register(idx, s, &nf, &nodes, &nnodes) != 0) {
        filter_free(&nf);
        return -1;
    }
    sx_unregister(idx, s->nodes, s->nnodes);
    filter_free(&s->filter);
    s->filter = nf;
    s->nodes = nodes;
    s->nnodes = nnodes;
    return 0;
}

void subidx_remove(subidx_t *idx, subidx_sub_t *s)
{
    if (!s)
        return;
    sx_unregister(idx, s->nodes, s->nnodes);
    if (s->all_prev)
        s->all_prev->all_next = s->all_next;
    else
        idx->subs = s->all_next;
    if (s->all_next)
        s->all_next->all_prev = s->all_prev;
    idx->nsubs--;
    filter_free(&s->filter);
    free(s);
}

const filter_t *subidx_filter(const subidx_sub_t *s)
{
    return &s->filter;
}

void *subidx_owner(const subidx_sub_t *s)
{
    return s->owner;
}

/* Visits every subscription of bucket b; check: verify the flag filter and
 * dedupe by stamp. */
/* check (and prev, if set): a candidate matches if its filter selects the
 * record check or the record prev (the flag before the change). */
static size_t sx_visit(subidx_t *idx, const sx_bucket_t *b, const flag_t *check,
                       const flag_t *prev, subidx_visit_cb visit, void *arg)
{
    size_t m = 0;
    if (!b)
        return 0;
    for (const sx_node_t *n = b->head; n; n = n->next) {
        subidx_sub_t *s = n->sub;
        if (check) {
            if (s->stamp == idx->gen)
                continue;
            s->stamp = idx->gen;
        }
        idx->last_visited++;
        if (check && !filter_match_flag(&s->filter, check) &&
            !(prev && filter_match_flag(&s->filter, prev)))
            continue;
        m++;
        if (visit)
            visit(arg, s->owner);
    }
    return m;
}

static size_t sx_visit_flag(subidx_t *idx, const flag_t *fl, const flag_t *check,
                            const flag_t *prev, subidx_visit_cb visit, void *arg)
{
    size_t m = 0;

    if (fl->key)
        m += sx_visit(idx, sx_find(idx, 'k', fl->key, strlen(fl->key)), check, prev, visit, arg);
    m += sx_visit(idx, sx_find(idx, 'i', &fl->id, sizeof fl->id), check, prev, visit, arg);
    for (size_t i = 0; i < fl->ntags; i++)
        if (fl->tags[i])
            m += sx_visit(idx, sx_find(idx, 't', fl->tags[i], strlen(fl->tags[i])),
                          check, prev, visit, arg);
    return m;
}

size_t subidx_lookup_change(subidx_t *idx, const ev_t *ev, const flag_t *prev,
                            subidx_visit_cb visit, void *arg)
{
    size_t m = 0;
    idx->gen++;
    idx->last_visited = 0;
    if (!ev->channel)
        return 0;
    size_t clen = strlen(ev->channel);
    if (clen == 5 && memcmp(ev->channel, "flags", 5) == 0) {
        const flag_t *fl = ev->flag;
        if (!fl)
            return sx_visit(idx, sx_find(idx, 'c', "flags", 5), NULL, NULL, visit, arg);
        /* Mode ALL subscriptions sit only in "a": no check, no dedupe. */
        m += sx_visit(idx, sx_find(idx, 'a', "", 0), NULL, NULL, visit, arg);
        m += sx_visit_flag(idx, fl, fl, prev, visit, arg);
        if (prev)   /* those the flag left */
            m += sx_visit_flag(idx, prev, fl, prev, visit, arg);
        return m;
    }
    return sx_visit(idx, sx_find(idx, 'c', ev->channel, clen), NULL, NULL, visit, arg);
}

size_t subidx_lookup(subidx_t *idx, const ev_t *ev, subidx_visit_cb visit, void *arg)
{
    return subidx_lookup_change(idx, ev, NULL, visit, arg);
}

void subidx_foreach_channel(const subidx_t *idx,
                            void (*fn)(void *arg, const char *channel, size_t count),
                            void *arg)
{
    for (size_t i = 0; i < idx->tabsize; i++)
        for (const sx_bucket_t *b = idx->tab[i]; b; b = b->hnext)
            if (b->kind == 'c' && !b->fresh)
                fn(arg, b->key, b->count);
}

size_t subidx_channel_count(const subidx_t *idx, const char *ch)
{
    const sx_bucket_t *b = sx_find(idx, 'c', ch, strlen(ch));
    return b ? b->count : 0;
}

void subidx_get_stats(const subidx_t *idx, subidx_stats_t *st)
{
    st->subs = idx->nsubs;
    st->channels = idx->nchannels;
    st->buckets = idx->nbuckets;
    st->last_visited = idx->last_visited;
}
