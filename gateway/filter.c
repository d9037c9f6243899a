/*
 * filter — what one connection wants, and the matching of events against it.
 *
 * The sets are small sorted arrays (at most max_items, 256 by default), so
 * membership is a binary search and an insertion a memmove: no hash table
 * per connection, nothing allocated for the common case of a connection that
 * wants every flag (mode ALL, all sets empty), which keeps an idle SSE
 * connection cheap. The rules for applying a request (subscribe,
 * unsubscribe, the SSE defaults) are in filter.h; the two mutating entry
 * points that can fail work on a copy and swap it in, so a failed request
 * leaves the filter as it was.
 */
#include "gateway/filter.h"

#include <stdlib.h>
#include <string.h>
#include "proto/names.h"

/* ==== sorted sets ======================================================= */

/* strcmp order between a NUL-terminated a and the n bytes of s. */
static int cmp_str(const char *a, const char *s, size_t n)
{
    size_t alen = strlen(a);
    int r = memcmp(a, s, alen < n ? alen : n);
    if (r != 0)
        return r;
    return alen < n ? -1 : alen > n ? 1 : 0;
}

/* @return true if found; *pos is its index, or where it would go. */
static bool strset_find(char *const *arr, uint32_t n, const char *s, size_t len, uint32_t *pos)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int r = cmp_str(arr[mid], s, len);
        if (r == 0) {
            if (pos)
                *pos = mid;
            return true;
        }
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (pos)
        *pos = lo;
    return false;
}

static int strset_add(char ***arr, uint32_t *n, const char *s, size_t len,
                      size_t max_items, const char *toomany, const char **err)
{
    uint32_t pos;
    if (strset_find(*arr, *n, s, len, &pos))
        return 0;
    if (*n >= max_items) {
        *err = toomany;
        return -1;
    }
    char *copy = malloc(len + 1);
    char **na = realloc(*arr, (*n + 1) * sizeof *na);
    if (!copy || !na) {
        free(copy);
        if (na)
            *arr = na;
        *err = "out of memory";
        return -1;
    }
    memcpy(copy, s, len);
    copy[len] = '\0';
    memmove(na + pos + 1, na + pos, (*n - pos) * sizeof *na);
    na[pos] = copy;
    *arr = na;
    (*n)++;
    return 0;
}

static void strset_del(char **arr, uint32_t *n, const char *s, size_t len)
{
    uint32_t pos;
    if (!strset_find(arr, *n, s, len, &pos))
        return;
    free(arr[pos]);
    memmove(arr + pos, arr + pos + 1, (*n - pos - 1) * sizeof *arr);
    (*n)--;
}

static void strset_free(char ***arr, uint32_t *n)
{
    for (uint32_t i = 0; i < *n; i++)
        free((*arr)[i]);
    free(*arr);
    *arr = NULL;
    *n = 0;
}

static int strset_copy(char ***dst, uint32_t *dn, char *const *src, uint32_t sn)
{
    *dst = NULL;
    *dn = 0;
    if (sn == 0)
        return 0;
    char **a = calloc(sn, sizeof *a);
    if (!a)
        return -1;
    for (uint32_t i = 0; i < sn; i++) {
        if (!(a[i] = strdup(src[i]))) {
            while (i--)
                free(a[i]);
            free(a);
            return -1;
        }
    }
    *dst = a;
    *dn = sn;
    return 0;
}

static bool idset_find(const uint64_t *arr, uint32_t n, uint64_t id, uint32_t *pos)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (arr[mid] == id) {
            if (pos)
                *pos = mid;
            return true;
        }
        if (arr[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (pos)
        *pos = lo;
    return false;
}

/* ==== public ============================================================ */

void filter_init(filter_t *f)
{
    memset(f, 0, sizeof *f);
}

void filter_free(filter_t *f)
{
    strset_free(&f->channels, &f->nchannels);
    strset_free(&f->keys, &f->nkeys);
    strset_free(&f->tags, &f->ntags);
    free(f->ids);
    filter_init(f);
}

int filter_copy(filter_t *dst, const filter_t *src)
{
    filter_init(dst);
    dst->flags = src->flags;
    if (strset_copy(&dst->channels, &dst->nchannels, src->channels, src->nchannels) != 0 ||
        strset_copy(&dst->keys, &dst->nkeys, src->keys, src->nkeys) != 0 ||
        strset_copy(&dst->tags, &dst->ntags, src->tags, src->ntags) != 0)
        goto fail;
    if (src->nids) {
        if (!(dst->ids = malloc(src->nids * sizeof *dst->ids)))
            goto fail;
        memcpy(dst->ids, src->ids, src->nids * sizeof *dst->ids);
        dst->nids = src->nids;
    }
    return 0;
fail:
    filter_free(dst);
    return -1;
}

void filter_req_init(filter_req_t *r)
{
    memset(r, 0, sizeof *r);
}

void filter_req_free(filter_req_t *r)
{
    filter_free(&r->items);
    filter_req_init(r);
}

int filter_add_channel(filter_t *f, const char *s, size_t n, size_t max_items, const char **err)
{
    const char *e = NULL;
    chan_kind_t k = name_channel_kind(s, n, &e);
    if (k == CHAN_INVALID) {
        *err = e ? e : "invalid channel name";
        return -1;
    }
    if (k == CHAN_FLAGS)
        return 1;
    return strset_add(&f->channels, &f->nchannels, s, n, max_items, "too many channels", err);
}

int filter_add_key(filter_t *f, const char *s, size_t n, size_t max_items, const char **err)
{
    const char *e = NULL;
    if (name_flag_key_valid(s, n, &e) != 0) {
        *err = e ? e : "invalid flag key";
        return -1;
    }
    return strset_add(&f->keys, &f->nkeys, s, n, max_items, "too many flag keys", err);
}

int filter_add_tag(filter_t *f, const char *s, size_t n, size_t max_items, const char **err)
{
    const char *e = NULL;
    if (name_tag_valid(s, n, &e) != 0) {
        *err = e ? e : "invalid tag";
        return -1;
    }
    return strset_add(&f->tags, &f->ntags, s, n, max_items, "too many tags", err);
}

int filter_add_id(filter_t *f, uint64_t id, size_t max_items, const char **err)
{
    uint32_t pos;
    if (id == 0) {
        *err = "flag id must be a positive integer";
        return -1;
    }
    if (idset_find(f->ids, f->nids, id, &pos))
        return 0;
    if (f->nids >= max_items) {
        *err = "too many flag ids";
        return -1;
    }
    uint64_t *na = realloc(f->ids, (f->nids + 1) * sizeof *na);
    if (!na) {
        *err = "out of memory";
        return -1;
    }
    memmove(na + pos + 1, na + pos, (f->nids - pos) * sizeof *na);
    na[pos] = id;
    f->ids = na;
    f->nids++;
    return 0;
}

bool filter_has_channel(const filter_t *f, const char *s, size_t n)
{
    return strset_find(f->channels, f->nchannels, s, n, NULL);
}

bool filter_has_key(const filter_t *f, const char *s, size_t n)
{
    return strset_find(f->keys, f->nkeys, s, n, NULL);
}

bool filter_has_tag(const filter_t *f, const char *s, size_t n)
{
    return strset_find(f->tags, f->ntags, s, n, NULL);
}

bool filter_has_id(const filter_t *f, uint64_t id)
{
    return idset_find(f->ids, f->nids, id, NULL);
}

static bool has_flag_items(const filter_t *f)
{
    return f->nkeys || f->nids || f->ntags;
}

/* Adds r's items to f in place; f may be half-updated on failure. */
static int subscribe_into(filter_t *f, const filter_req_t *r, size_t max_items, const char **err)
{
    const filter_t *it = &r->items;
    for (uint32_t i = 0; i < it->nchannels; i++)
        if (filter_add_channel(f, it->channels[i], strlen(it->channels[i]), max_items, err) < 0)
            return -1;
    for (uint32_t i = 0; i < it->nkeys; i++)
        if (filter_add_key(f, it->keys[i], strlen(it->keys[i]), max_items, err) < 0)
            return -1;
    for (uint32_t i = 0; i < it->nids; i++)
        if (filter_add_id(f, it->ids[i], max_items, err) < 0)
            return -1;
    for (uint32_t i = 0; i < it->ntags; i++)
        if (filter_add_tag(f, it->tags[i], strlen(it->tags[i]), max_items, err) < 0)
            return -1;
    if (r->subscribe_all)
        f->flags = FILTER_FLAGS_ALL;
    else if (has_flag_items(it)) {
        if (f->flags != FILTER_FLAGS_ALL)
            f->flags = FILTER_FLAGS_SOME;
    } else if (r->flags_listed && f->flags == FILTER_FLAGS_NONE)
        f->flags = FILTER_FLAGS_ALL;
    return 0;
}

int filter_subscribe(filter_t *f, const filter_req_t *r, size_t max_items, const char **err)
{
    filter_t tmp;
    const char *e = "out of memory";
    if (max_items == 0)
        max_items = FILTER_MAX_ITEMS;
    if (filter_copy(&tmp, f) != 0 || subscribe_into(&tmp, r, max_items, &e) != 0) {
        filter_free(&tmp);
        if (err)
            *err = e;
        return -1;
    }
    filter_free(f);
    *f = tmp;
    return 0;
}

void filter_unsubscribe(filter_t *f, const filter_req_t *r)
{
    const filter_t *it = &r->items;
    for (uint32_t i = 0; i < it->nchannels; i++)
        strset_del(f->channels, &f->nchannels, it->channels[i], strlen(it->channels[i]));
    if (r->flags_listed) {
        f->flags = FILTER_FLAGS_NONE;
        strset_free(&f->keys, &f->nkeys);
        strset_free(&f->tags, &f->ntags);
        free(f->ids);
        f->ids = NULL;
        f->nids = 0;
    }
    for (uint32_t i = 0; i < it->nkeys; i++)
        strset_del(f->keys, &f->nkeys, it->keys[i], strlen(it->keys[i]));
    for (uint32_t i = 0; i < it->ntags; i++)
        strset_del(f->tags, &f->ntags, it->tags[i], strlen(it->tags[i]));
    for (uint32_t i = 0; i < it->nids; i++) {
        uint32_t pos;
        if (idset_find(f->ids, f->nids, it->ids[i], &pos)) {
            memmove(f->ids + pos, f->ids + pos + 1, (f->nids - pos - 1) * sizeof *f->ids);
            f->nids--;
        }
    }
    /* Release storage of emptied sets, so an idle filter holds nothing. */
    if (!f->nchannels) strset_free(&f->channels, &f->nchannels);
    if (!f->nkeys) strset_free(&f->keys, &f->nkeys);
    if (!f->ntags) strset_free(&f->tags, &f->ntags);
    if (!f->nids) { free(f->ids); f->ids = NULL; }
    if (r->subscribe_all && f->flags == FILTER_FLAGS_ALL)
        f->flags = has_flag_items(f) ? FILTER_FLAGS_SOME : FILTER_FLAGS_NONE;
    if (f->flags == FILTER_FLAGS_SOME && !has_flag_items(f))
        f->flags = FILTER_FLAGS_NONE;
}

int filter_from_req(filter_t *f, const filter_req_t *r, bool default_flags,
                    size_t max_items, const char **err)
{
    filter_t tmp;
    filter_init(&tmp);
    if (filter_subscribe(&tmp, r, max_items, err) != 0)
        return -1;
    if (default_flags && tmp.flags == FILTER_FLAGS_NONE &&
        r->items.nchannels == 0 && !r->flags_listed)
        tmp.flags = FILTER_FLAGS_ALL;
    filter_free(f);
    *f = tmp;
    return 0;
}

bool filter_match_flag(const filter_t *f, const flag_t *flag)
{
    switch (f->flags) {
    case FILTER_FLAGS_NONE:
        return false;
    case FILTER_FLAGS_ALL:
        return true;
    case FILTER_FLAGS_SOME:
        break;
    }
    if (!flag)
        return false;
    if (f->nkeys && (!flag->key || !filter_has_key(f, flag->key, strlen(flag->key))))
        return false;
    if (f->nids && !filter_has_id(f, flag->id))
        return false;
    if (f->ntags) {
        bool any = false;
        for (size_t i = 0; i < flag->ntags && !any; i++)
            any = flag->tags[i] && filter_has_tag(f, flag->tags[i], strlen(flag->tags[i]));
        if (!any)
            return false;
    }
    return true;
}

static bool is_flags(const char *ch, size_t n)
{
    return n == 5 && memcmp(ch, "flags", 5) == 0;
}

bool filter_match_event(const filter_t *f, const ev_t *ev)
{
    if (!ev->channel)
        return false;
    size_t n = strlen(ev->channel);
    if (is_flags(ev->channel, n)) {
        if (f->flags == FILTER_FLAGS_NONE)
            return false;
        if (!ev->flag)
            return true;
        return filter_match_flag(f, ev->flag);
    }
    return filter_has_channel(f, ev->channel, n);
}

bool filter_wants_channel(const filter_t *f, const char *ch, size_t n)
{
    if (is_flags(ch, n))
        return f->flags != FILTER_FLAGS_NONE;
    return filter_has_channel(f, ch, n);
}

bool filter_is_empty(const filter_t *f)
{
    return f->flags == FILTER_FLAGS_NONE && f->nchannels == 0;
}
