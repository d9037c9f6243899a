/*
 * listcur — the SSE list cursor of a stream over several channels.
 *
 * An SSE stream of one channel uses the id rendered into the shared frame
 * (<channel>/<epoch>/<offset>): that is its whole position. A stream of
 * several channels (flags plus application channels, or several channels)
 * needs the position of each, so the gateway keeps them per connection
 * (~90 bytes a channel, only on such streams) and writes its events with
 * the connection's own list cursor in place of the shared id line
 * ("id: flags/e1/4 chat/e2/9"; query.h parses it back). Channels without an
 * event yet are left out of the cursor. Pure.
 */
#ifndef FLAGCAST_GATEWAY_LISTCUR_H
#define FLAGCAST_GATEWAY_LISTCUR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "gateway/filter.h"
#include "proto/buf.h"
#include "proto/event.h"

typedef struct listcur_ent {
    const char *ch;                  /* the filter's string, or "flags" */
    uint64_t    off;
    bool        known;
    char        epoch[EV_MAX_EPOCH + 1];
} listcur_ent_t;

typedef struct listcur {
    uint32_t      n;
    listcur_ent_t e[];
} listcur_t;

/* The cursor of a stream filtered by f (flags first, then f's channels, at
 * most max of them); it points into f's strings, so it lives no longer
 * than f. @return it, or NULL if f names (or max allows) fewer than two
 * channels (the shared id is the whole position then) or on allocation
 * failure. */
listcur_t *listcur_new(const filter_t *f, size_t max);
/* Moves ch to (epoch, off); a channel the cursor does not hold, or a NULL
 * argument, is ignored. */
void listcur_set(listcur_t *p, const char *ch, const char *epoch, uint64_t off);
/* Appends the known positions, space-separated (without "id: "). */
void listcur_format(const listcur_t *p, buf_t *b);
/* Appends SSE frame (frame, n) with its id line replaced by "id: " and
 * p's cursor (a frame without an id line gets one in front). */
void listcur_frame(const listcur_t *p, const char *frame, size_t n, buf_t *out);

#endif
