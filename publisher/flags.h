/*
 * flags — the flag endpoints: reads (one hiredis command) and mutations
 * (one publish.lua call through store.c).
 *
 * Each function takes a request api.c has authenticated and checked (body
 * parsed, key valid, "to" recipients taken) and answers it, now or from a
 * Redis callback.
 */
#ifndef FLAGCAST_FLAGS_H
#define FLAGCAST_FLAGS_H

#include "publisher/req.h"

void flags_list(req_t *q);     /* GET /api/v1/flags */
void flags_get(req_t *q);      /* GET /api/v1/flags/{key} */
void flags_create(req_t *q);   /* POST /api/v1/flags */
void flags_delete(req_t *q);   /* DELETE /api/v1/flags/{key} */
/* PUT /api/v1/flags/{key}[/enabled|/segments|/variants]: q->type and
 * q->mask (the JSON fields the route accepts) set by the caller. */
void flags_update(req_t *q);

#endif
