/*
 * sse — Server-Sent Events framing (see sse.h).
 *
 * The WHATWG parser ends a line at CRLF, CR or LF, so a value holding any of
 * them would end its field early (and a blank line would end the event). Data
 * is therefore split at every line end into one "data:" line each; id and
 * event, which cannot be multi-line, are cut at the first CR or LF. Every
 * field is written as "name: value": the parser strips exactly one space
 * after the colon, so a value that itself starts with a space keeps it.
 */
#include "proto/sse.h"

#include <stdio.h>
#include <string.h>

/* Appends "name: value\n" with value cut at its first CR or LF. */
static void sse_field(buf_t *b, const char *name, const char *v)
{
    size_t n = strcspn(v, "\r\n");
    buf_puts(b, name);
    buf_append(b, ": ", 2);
    buf_append(b, v, n);
    buf_putc(b, '\n');
}

int sse_frame(buf_t *b, const char *id, const char *event, const char *data, size_t n)
{
    if (id)
        sse_field(b, "id", id);
    if (event)
        sse_field(b, "event", event);
    if (!data)
        n = 0;
    size_t i = 0;
    for (;;) {
        size_t j = i;
        while (j < n && data[j] != '\r' && data[j] != '\n')
            j++;
        buf_append(b, "data: ", 6);
        buf_append(b, data + i, j - i);
        buf_putc(b, '\n');
        if (j >= n)
            break;
        /* CRLF is one line end */
        j += (data[j] == '\r' && j + 1 < n && data[j + 1] == '\n') ? 2 : 1;
        i = j;
        if (i == n) {            /* data ends with a line end: keep the empty line */
            buf_append(b, "data: \n", 7);
            break;
        }
    }
    buf_putc(b, '\n');
    return b->err ? -1 : 0;
}

int sse_comment(buf_t *b, const char *text)
{
    buf_putc(b, ':');
    if (text && *text) {
        buf_putc(b, ' ');
        /* a comment is one line: cut at the first line end */
        buf_append(b, text, strcspn(text, "\r\n"));
    }
    buf_append(b, "\n\n", 2);
    return b->err ? -1 : 0;
}

int sse_retry(buf_t *b, unsigned ms)
{
    return buf_printf(b, "retry: %u\n\n", ms);
}
