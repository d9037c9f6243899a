/*
 * sse — Server-Sent Events framing (WHATWG HTML, "Server-sent events").
 *
 * A field value must not contain CR or LF; multi-line data is split into one
 * "data:" line per line (CRLF, CR and LF all end a line). Pure functions that
 * append to a buf_t.
 */
#ifndef FLAGCAST_SSE_H
#define FLAGCAST_SSE_H

#include <stddef.h>
#include "proto/buf.h"

/* Appends one event: optional "id:", optional "event:", "data:" lines, and
 * the blank line. id/event must not contain CR/LF (they are cut at the first
 * one). @return 0 or -1. */
int sse_frame(buf_t *b, const char *id, const char *event, const char *data, size_t n);
/* ": <text>\n\n" — a comment (text NULL or empty: ":\n\n", the keep-alive
 * gateway/lws/sse.c renders once). */
int sse_comment(buf_t *b, const char *text);
/* "retry: <ms>\n\n". */
int sse_retry(buf_t *b, unsigned ms);

#endif
