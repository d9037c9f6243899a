/*
 * store — calls of publish.lua (see that file for the operations).
 *
 * store_eval() copies its arguments, sends EVALSHA and, if Redis answers
 * NOSCRIPT (script cache flushed, failover), sends the same call once more
 * as EVAL with the script text and reloads the SHA for later calls.
 * The callback gets the script's reply, or NULL if Redis went away; the
 * reply lives only for the callback.
 */
#ifndef FLAGCAST_STORE_H
#define FLAGCAST_STORE_H

#include <hiredis/hiredis.h>
#include "publisher/pub.h"

typedef void store_cb(pub_t *p, redisReply *reply, void *arg);

/* argv: KEYS then ARGV (nkeys of them are keys).
 * @return 0, or -1 if Redis is not connected (cb is then never called). */
int store_eval(pub_t *p, int nkeys, int argc, const char **argv, const size_t *lens,
               store_cb *cb, void *arg);

#endif
