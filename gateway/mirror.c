/*
 * mirror — the in-memory copy of P:flags (see mirror.h for the contract).
 *
 * Two sorted arrays of pointers to the same owned flag_t records: by key
 * (strcmp) and by id. Flags are few (thousands) and change rarely compared
 * with how often snapshots are read, so sorted arrays beat hash tables here:
 * binary-search lookups, snapshots already in key order, and no per-entry
 * node allocations. Every mutation first reserves the room it needs, so an
 * allocation failure leaves the mirror unchanged.
 */
#include "gateway/mirror.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "proto/render.h"

/* A stored record and its evaluator, in one allocation. The flag comes
 * first, so the arrays' flag_t pointers are the mflag_t pointers. The
 * eval_flag_t borrows the flag_t beside it and is freed first. */
typedef struct mflag {
    flag_t       f;
    eval_flag_t *ef;
} mflag_t;

struct mirror {
    flag_t  **by_key;
    flag_t  **by_id;
    size_t    n, cap;
    uint64_t  gen;
};

mirror_t *mirror_new(void)
{
    return calloc(1, sizeof(mirror_t));
}

static void flag_destroy(flag_t *f)
{
    if (f) {
        eval_flag_free(((mflag_t *)f)->ef);
        flag_free(f);
        free(f);
    }
}

/* A new, empty stored record with no evaluator yet. */
static flag_t *mflag_alloc(void)
{
    mflag_t *mf = calloc(1, sizeof(*mf));
    return mf ? &mf->f : NULL;
}

/* Prepares the evaluator of a stored record. @return 0 or -1 (memory). */
static int mflag_prepare(flag_t *f)
{
    mflag_t *mf = (mflag_t *)f;
    return eval_flag_new(&mf->ef, &mf->f, NULL, 0);
}

void mirror_clear(mirror_t *m)
{
    for (size_t i = 0; i < m->n; i++)
        flag_destroy(m->by_key[i]);
    free(m->by_key);
    free(m->by_id);
    m->by_key = m->by_id = NULL;
    m->n = m->cap = 0;
    m->gen++;
}

void mirror_free(mirror_t *m)
{
    if (!m)
        return;
    mirror_clear(m);
    free(m);
}

/* strcmp order of a NUL-terminated a against n bytes of s. */
static int cmp_key(const char *a, const char *s, size_t n)
{
    size_t alen = strlen(a);
    int r = memcmp(a, s, alen < n ? alen : n);
    if (r != 0)
        return r;
    return alen < n ? -1 : alen > n ? 1 : 0;
}

static bool find_key(const mirror_t *m, const char *key, size_t len, size_t *pos)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = cmp_key(m->by_key[mid]->key, key, len);
        if (r == 0) {
            *pos = mid;
            return true;
        }
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return false;
}

static bool find_id(const mirror_t *m, uint64_t id, size_t *pos)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t v = m->by_id[mid]->id;
        if (v == id) {
            *pos = mid;
            return true;
        }
        if (v < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return false;
}

static int reserve(mirror_t *m, size_t need)
{
    if (need <= m->cap)
        return 0;
    size_t ncap = m->cap ? m->cap * 2 : 16;
    while (ncap < need)
        ncap *= 2;
    flag_t **a = realloc(m->by_key, ncap * sizeof *a);
    if (!a)
        return -1;
    m->by_key = a;
    flag_t **b = realloc(m->by_id, ncap * sizeof *b);
    if (!b)
        return -1;
    m->by_id = b;
    m->cap = ncap;
    return 0;
}

/* Unlinks f (present in both arrays) and frees it. */
static void remove_flag(mirror_t *m, flag_t *f)
{
    size_t pk, pi;
    if (find_key(m, f->key, strlen(f->key), &pk) && m->by_key[pk] == f)
        memmove(m->by_key + pk, m->by_key + pk + 1, (m->n - pk - 1) * sizeof *m->by_key);
    if (find_id(m, f->id, &pi)) {
        /* Several flags may not share an id, but be exact about the pointer. */
        while (pi > 0 && m->by_id[pi - 1]->id == f->id)
            pi--;
        while (pi < m->n && m->by_id[pi] != f)
            pi++;
        if (pi < m->n)
            memmove(m->by_id + pi, m->by_id + pi + 1, (m->n - pi - 1) * sizeof *m->by_id);
    }
    m->n--;
    flag_destroy(f);
}

/* Inserts f (owned) into both arrays; room is reserved. */
static void insert_flag(mirror_t *m, flag_t *f)
{
    size_t pk, pi;
    find_key(m, f->key, strlen(f->key), &pk);
    find_id(m, f->id, &pi);
    memmove(m->by_key + pk + 1, m->by_key + pk, (m->n - pk) * sizeof *m->by_key);
    m->by_key[pk] = f;
    memmove(m->by_id + pi + 1, m->by_id + pi, (m->n - pi) * sizeof *m->by_id);
    m->by_id[pi] = f;
    m->n++;
}

int mirror_put(mirror_t *m, const flag_t *f)
{
    size_t pos;
    if (!f->key || !f->key[0])
        return -1;
    flag_t *old = find_key(m, f->key, strlen(f->key), &pos) ? m->by_key[pos] : NULL;
    if (old && f->version <= old->version)
        return 0;
    flag_t *copy = mflag_alloc();
    if (!copy || flag_copy(copy, f) != 0 || mflag_prepare(copy) != 0 ||
        reserve(m, m->n + 1) != 0) {
        flag_destroy(copy);
        return -1;
    }
    if (old)
        remove_flag(m, old);
    /* Ids are unique: a record now holding this id under another key is
     * stale (the new event is the newer truth). */
    if (find_id(m, f->id, &pos))
        remove_flag(m, m->by_id[pos]);
    insert_flag(m, copy);
    m->gen++;
    return 1;
}

int mirror_apply(mirror_t *m, const ev_t *ev)
{
    if (!ev->flag || !ev_type_is_flag(ev->type) || !ev->flag->key)
        return 0;
    if (ev->type != EV_FLAG_DELETED)
        return mirror_put(m, ev->flag);
    size_t pos;
    const char *key = ev->flag->key;
    if (!find_key(m, key, strlen(key), &pos))
        return 0;
    if (m->by_key[pos]->version > ev->flag->version)
        return 0;
    remove_flag(m, m->by_key[pos]);
    m->gen++;
    return 1;
}

static int qcmp_key(const void *a, const void *b)
{
    return strcmp((*(flag_t *const *)a)->key, (*(flag_t *const *)b)->key);
}

static int qcmp_id(const void *a, const void *b)
{
    uint64_t x = (*(flag_t *const *)a)->id, y = (*(flag_t *const *)b)->id;
    if (x != y)
        return x < y ? -1 : 1;
    /* Same id: order by key, so which record is kept does not depend on qsort. */
    return qcmp_key(a, b);
}

int mirror_load(mirror_t *m, const char *const *vals, const size_t *lens, size_t n,
                size_t *nbad, char *errbuf, size_t errlen)
{
    size_t bad = 0, k = 0;
    flag_t **by_key = NULL, **by_id = NULL;
    char eb[200];
    if (errbuf && errlen)
        errbuf[0] = '\0';
    if (n && (!(by_key = calloc(n, sizeof *by_key)) || !(by_id = calloc(n, sizeof *by_id))))
        goto oom;

    for (size_t i = 0; i < n; i++) {
        flag_t *f = mflag_alloc();
        if (!f)
            goto oom;
        eb[0] = '\0';
        if (flag_decode(vals[i], lens[i], f, eb, sizeof eb) != 0 || !f->key || !f->key[0]) {
            if (!bad && errbuf && errlen)
                snprintf(errbuf, errlen, "record %zu: %s", i, eb[0] ? eb : "no key");
            bad++;
            flag_destroy(f);
            continue;
        }
        if (mflag_prepare(f) != 0) {
            flag_destroy(f);
            goto oom;
        }
        by_key[k++] = f;
    }
    /* Duplicate keys, then duplicate ids: keep one, count the rest. */
    if (k)
        qsort(by_key, k, sizeof *by_key, qcmp_key);
    size_t w = 0;
    for (size_t i = 0; i < k; i++) {
        if (w && strcmp(by_key[w - 1]->key, by_key[i]->key) == 0) {
            if (!bad && errbuf && errlen)
                snprintf(errbuf, errlen, "duplicate flag key %s", by_key[i]->key);
            bad++;
            flag_destroy(by_key[i]);
        } else {
            by_key[w++] = by_key[i];
        }
    }
    k = w;
    if (k) {
        memcpy(by_id, by_key, k * sizeof *by_id);
        qsort(by_id, k, sizeof *by_id, qcmp_id);
    }
    w = 0;
    for (size_t i = 0; i < k; i++) {
        if (w && by_id[w - 1]->id == by_id[i]->id) {
            if (!bad && errbuf && errlen)
                snprintf(errbuf, errlen, "duplicate flag id %llu", (unsigned long long)by_id[i]->id);
            bad++;
            flag_destroy(by_id[i]);
        } else {
            by_id[w++] = by_id[i];
        }
    }
    if (w != k) {
        k = w;
        memcpy(by_key, by_id, k * sizeof *by_key);
        qsort(by_key, k, sizeof *by_key, qcmp_key);
    }

    for (size_t i = 0; i < m->n; i++)
        flag_destroy(m->by_key[i]);
    free(m->by_key);
    free(m->by_id);
    m->by_key = by_key;
    m->by_id = by_id;
    m->n = k;
    m->cap = n;
    m->gen++;
    if (nbad)
        *nbad = bad;
    return 0;

oom:
    for (size_t i = 0; i < k; i++)
        flag_destroy(by_key[i]);
    free(by_key);
    free(by_id);
    if (errbuf && errlen)
        snprintf(errbuf, errlen, "out of memory");
    return -1;
}

size_t mirror_count(const mirror_t *m)
{
    return m->n;
}

uint64_t mirror_generation(const mirror_t *m)
{
    return m->gen;
}

const flag_t *mirror_get(const mirror_t *m, const char *key, size_t len)
{
    size_t pos;
    return find_key(m, key, len, &pos) ? m->by_key[pos] : NULL;
}

const flag_t *mirror_get_id(const mirror_t *m, uint64_t id)
{
    size_t pos;
    return find_id(m, id, &pos) ? m->by_id[pos] : NULL;
}

const flag_t *mirror_at(const mirror_t *m, size_t i)
{
    return i < m->n ? m->by_key[i] : NULL;
}

const eval_flag_t *mirror_eval(const flag_t *f)
{
    return f ? ((const mflag_t *)f)->ef : NULL;
}

int mirror_snapshot(const mirror_t *m, const filter_t *f, const flag_t ***out, size_t *n)
{
    const flag_t **res = NULL;
    size_t k = 0;
    *out = NULL;
    *n = 0;
    if (f->flags == FILTER_FLAGS_NONE || m->n == 0)
        return 0;
    size_t max = m->n;
    if (f->flags == FILTER_FLAGS_SOME && f->nkeys && f->nkeys < max)
        max = f->nkeys;
    else if (f->flags == FILTER_FLAGS_SOME && !f->nkeys && f->nids && f->nids < max)
        max = f->nids;
    if (!(res = malloc(max * sizeof *res)))
        return -1;

    if (f->flags == FILTER_FLAGS_SOME && f->nkeys) {
        /* f->keys is sorted, so the result is too. */
        for (uint32_t i = 0; i < f->nkeys; i++) {
            const flag_t *fl = mirror_get(m, f->keys[i], strlen(f->keys[i]));
            if (fl && filter_match_flag(f, fl))
                res[k++] = fl;
        }
    } else if (f->flags == FILTER_FLAGS_SOME && f->nids) {
        for (uint32_t i = 0; i < f->nids; i++) {
            const flag_t *fl = mirror_get_id(m, f->ids[i]);
            if (fl && filter_match_flag(f, fl))
                res[k++] = fl;
        }
        if (k > 1)
            qsort(res, k, sizeof *res, qcmp_key);
    } else {
        for (size_t i = 0; i < m->n; i++)
            if (filter_match_flag(f, m->by_key[i]))
                res[k++] = m->by_key[i];
    }
    if (k == 0) {
        free(res);
        return 0;
    }
    *out = res;
    *n = k;
    return 0;
}

int mirror_render_snapshot(const mirror_t *m, const filter_t *f, mirror_fmt_t fmt, buf_t *out)
{
    const flag_t **list;
    size_t n;
    if (mirror_snapshot(m, f, &list, &n) != 0)
        return -1;
    int r = fmt == MIRROR_FMT_MSGPACK
        ? render_snapshot_msgpack((const flag_t *const *)list, n, out)
        : render_snapshot_json((const flag_t *const *)list, n, out);
    free(list);
    return r;
}
