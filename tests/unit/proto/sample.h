/*
 * Shared by the proto unit tests: sample records and events built through
 * the public API, and deep equality helpers.
 */
#ifndef FLAGCAST_TEST_PROTO_SAMPLE_H
#define FLAGCAST_TEST_PROTO_SAMPLE_H

#include <stdlib.h>
#include <string.h>
#include <msgpack.h>

#include "proto/buf.h"
#include "proto/event.h"
#include "proto/flag.h"

static inline char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        abort();
    return d;
}

/* msgpack bytes of {"color":"red","n":[1,-2,3.5,true,null]} */
static inline char *sample_attachment(size_t *len)
{
    buf_t b;
    msgpack_packer pk;
    buf_init(&b);
    msgpack_packer_init(&pk, &b, buf_msgpack_write);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "color", 5);
    msgpack_pack_str_with_body(&pk, "red", 3);
    msgpack_pack_str_with_body(&pk, "n", 1);
    msgpack_pack_array(&pk, 5);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_int64(&pk, -2);
    msgpack_pack_double(&pk, 3.5);
    msgpack_pack_true(&pk);
    msgpack_pack_nil(&pk);
    return buf_steal(&b, len);
}

/* A record that uses every field. */
static inline void sample_flag(flag_t *f)
{
    flag_init(f);
    f->id = 7;
    f->key = xstrdup("new-checkout");
    f->enabled = true;
    f->description = xstrdup("New checkout \"flow\"\nline two \xe2\x80\xa8 caf\xc3\xa9");
    f->ntags = 2;
    f->tags = calloc(2, sizeof(char *));
    f->tags[0] = xstrdup("web");
    f->tags[1] = xstrdup("team:payments");
    f->nvariants = 2;
    f->variants = calloc(2, sizeof(flag_variant_t));
    f->variants[0].key = xstrdup("on");
    f->variants[0].attachment = sample_attachment(&f->variants[0].attachment_len);
    f->variants[1].key = xstrdup("off");
    f->nsegments = 2;
    f->segments = calloc(2, sizeof(flag_segment_t));
    flag_segment_t *s = &f->segments[0];
    s->description = xstrdup("beta users");
    s->rank = 1;
    s->rollout_percent = 50;
    s->nconstraints = 2;
    s->constraints = calloc(2, sizeof(flag_constraint_t));
    s->constraints[0].property = xstrdup("country");
    s->constraints[0].op = xstrdup("IN");
    s->constraints[0].value = xstrdup("[\"NL\",\"DE\"]");
    s->constraints[1].property = xstrdup("plan");
    s->constraints[1].op = xstrdup("EQ");
    s->constraints[1].value = xstrdup("\"pro\"");
    s->ndistributions = 2;
    s->distributions = calloc(2, sizeof(flag_distribution_t));
    s->distributions[0].variant_key = xstrdup("on");
    s->distributions[0].percent = 30;
    s->distributions[1].variant_key = xstrdup("off");
    s->distributions[1].percent = 70;
    s = &f->segments[1];
    s->rank = 2;
    s->rollout_percent = 100;
    f->version = 3;
    f->updated_at = 1700000000123ULL;
}

/* A minimal record: only the required fields. */
static inline void sample_flag_min(flag_t *f, const char *key)
{
    flag_init(f);
    f->id = 1;
    f->key = xstrdup(key);
}

static inline int str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static inline int bytes_eq(const char *a, size_t al, const char *b, size_t bl)
{
    if (!a || !b)
        return a == b;
    return al == bl && memcmp(a, b, al) == 0;
}

static inline int flag_eq(const flag_t *a, const flag_t *b)
{
    if (a->id != b->id || !str_eq(a->key, b->key) || a->enabled != b->enabled ||
        !str_eq(a->description, b->description) || a->ntags != b->ntags ||
        a->nvariants != b->nvariants || a->nsegments != b->nsegments ||
        a->version != b->version || a->updated_at != b->updated_at)
        return 0;
    for (size_t i = 0; i < a->ntags; i++)
        if (!str_eq(a->tags[i], b->tags[i]))
            return 0;
    for (size_t i = 0; i < a->nvariants; i++)
        if (a->variants[i].id != b->variants[i].id ||
            !str_eq(a->variants[i].key, b->variants[i].key) ||
            !bytes_eq(a->variants[i].attachment, a->variants[i].attachment_len,
                      b->variants[i].attachment, b->variants[i].attachment_len))
            return 0;
    for (size_t i = 0; i < a->nsegments; i++) {
        const flag_segment_t *x = &a->segments[i], *y = &b->segments[i];
        if (x->id != y->id || !str_eq(x->description, y->description) || x->rank != y->rank ||
            x->rollout_percent != y->rollout_percent ||
            x->nconstraints != y->nconstraints || x->ndistributions != y->ndistributions)
            return 0;
        for (size_t j = 0; j < x->nconstraints; j++)
            if (!str_eq(x->constraints[j].property, y->constraints[j].property) ||
                !str_eq(x->constraints[j].op, y->constraints[j].op) ||
                !str_eq(x->constraints[j].value, y->constraints[j].value))
                return 0;
        for (size_t j = 0; j < x->ndistributions; j++)
            if (!str_eq(x->distributions[j].variant_key, y->distributions[j].variant_key) ||
                x->distributions[j].percent != y->distributions[j].percent)
                return 0;
    }
    return 1;
}

static inline int ev_eq(const ev_t *a, const ev_t *b)
{
    if (!str_eq(a->channel, b->channel) || !str_eq(a->epoch, b->epoch) ||
        a->offset != b->offset || a->type != b->type || a->ts != b->ts ||
        !str_eq(a->actor, b->actor) ||
        !bytes_eq(a->data, a->data_len, b->data, b->data_len))
        return 0;
    if (!a->flag || !b->flag)
        return a->flag == b->flag;
    return flag_eq(a->flag, b->flag);
}

/* An event of type t: flag types carry sample_flag, messages a small map. */
static inline void sample_event(ev_t *ev, ev_type_t t)
{
    ev_init(ev);
    ev->type = t;
    ev->ts = 1700000000456ULL;
    ev->offset = 42;
    ev->epoch = xstrdup("e1f2a3b4");
    ev->actor = xstrdup("alice@example.com");
    if (ev_type_is_flag(t)) {
        ev->channel = xstrdup("flags");
        ev->flag = malloc(sizeof(flag_t));
        sample_flag(ev->flag);
    } else {
        ev->channel = xstrdup("chat.room1");
        buf_t b;
        msgpack_packer pk;
        buf_init(&b);
        msgpack_packer_init(&pk, &b, buf_msgpack_write);
        msgpack_pack_map(&pk, 2);
        msgpack_pack_str_with_body(&pk, "text", 4);
        msgpack_pack_str_with_body(&pk, "hi \"there\"\n", 11);
        msgpack_pack_str_with_body(&pk, "n", 1);
        msgpack_pack_uint64(&pk, 5);
        ev->data = buf_steal(&b, &ev->data_len);
    }
}

#endif
