/*
 * gwtest — small helpers shared by the gateway unit tests: build flag
 * records and events without going through the msgpack decoder.
 */
#ifndef FLAGCAST_GWTEST_H
#define FLAGCAST_GWTEST_H

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "proto/event.h"
#include "proto/flag.h"

/* A flag with key, id, version and a NULL-terminated list of tags. */
static inline void gwt_flag(flag_t *f, const char *key, uint64_t id, uint64_t version, ...)
{
    va_list ap;
    const char *t;
    flag_init(f);
    f->key = strdup(key);
    f->id = id;
    f->version = version;
    f->enabled = true;
    va_start(ap, version);
    while ((t = va_arg(ap, const char *)) != NULL) {
        f->tags = realloc(f->tags, (f->ntags + 1) * sizeof *f->tags);
        f->tags[f->ntags++] = strdup(t);
    }
    va_end(ap);
}

/* An event on "flags" with a copy of flag fl (type t). */
static inline void gwt_flag_ev(ev_t *ev, ev_type_t t, const flag_t *fl, uint64_t offset)
{
    ev_init(ev);
    ev->channel = strdup("flags");
    ev->epoch = strdup("e1");
    ev->offset = offset;
    ev->type = t;
    ev->ts = 1700000000000ull;
    ev->flag = calloc(1, sizeof *ev->flag);
    flag_copy(ev->flag, fl);
}

/* A message event on channel ch with msgpack data (a fixstr "hi"). */
static inline void gwt_msg_ev(ev_t *ev, const char *ch, uint64_t offset)
{
    ev_init(ev);
    ev->channel = strdup(ch);
    ev->epoch = strdup("e1");
    ev->offset = offset;
    ev->type = EV_MESSAGE;
    ev->ts = 1700000000000ull;
    ev->data = malloc(3);
    memcpy(ev->data, "\xa2hi", 3);
    ev->data_len = 3;
}

#endif
