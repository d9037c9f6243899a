/*
 * msgs — the message endpoints and the recipients of a publication.
 *
 * Each function takes a request api.c has authenticated and checked (body
 * parsed) and answers it, now or from the script's reply.
 */
#ifndef FLAGCAST_MSGS_H
#define FLAGCAST_MSGS_H

#include <stddef.h>
#include "publisher/req.h"

/* POST /api/v1/channels/{channel}/messages */
void msgs_channel(req_t *q);
/* POST /api/v1/messages (users and roles, optionally per-user A/B) */
void msgs_targeted(req_t *q);

/* The "to" of a flag mutation: a body field {"users": [...], "roles": [...]}
 * (removed from the body, so jsonin_flag never sees it) and/or the query
 * parameters to.users=a,b and to.roles=r (the form for DELETE); both forms
 * add up. With recipients the event goes to their inboxes (q->channels)
 * instead of "flags". Does not answer q.
 * @return 0, or -1 with err set (the caller answers 400). */
int  msgs_take_to(req_t *q, const char *query, char *err, size_t errlen);

#endif
