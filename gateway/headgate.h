/*
 * headgate — checks a request head before libwebsockets parses it.
 *
 * lws 4.1 closes a connection whose head it cannot parse without any answer
 * and without a callback: a head over its header table, a %00 (or a raw
 * control byte) in the request target. A client then sees an empty reply
 * and cannot tell why. The gateway therefore looks at the bytes of a new
 * connection first (MSG_PEEK, nothing consumed) and hands the connection to
 * lws only once the head is complete and lws can take it; otherwise it
 * answers 431 (head over FLAGCAST_MAX_HEADER_BYTES) or 400 itself.
 *
 * Pure: no I/O. lws/accept.c does the peeking, waiting and answering.
 */
#ifndef FLAGCAST_GW_HEADGATE_H
#define FLAGCAST_GW_HEADGATE_H

#include <stddef.h>

typedef enum headgate {
    HEADGATE_MORE = 0,    /* no end of head yet, under the limit: wait */
    HEADGATE_OK,          /* complete and acceptable: hand it to lws */
    HEADGATE_TOO_LARGE,   /* limit bytes and no end of head: 431 */
    HEADGATE_BAD          /* the request target holds %00 or a control byte: 400 */
} headgate_t;

/* The verdict on the first len bytes a client sent, for a head of at most
 * limit bytes (request line, headers and the blank line). A head ends at
 * CRLF CRLF, or LF LF (lws accepts bare LFs). Only the first head is
 * looked at; what follows it (a pipelined request) is lws's. */
headgate_t headgate_check(const char *buf, size_t len, size_t limit);

/* A one-line reason for the client, for HEADGATE_TOO_LARGE / _BAD. */
const char *headgate_reason(headgate_t v);

#endif
