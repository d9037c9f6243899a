/*
 * buf — a growable byte buffer.
 *
 * Every renderer and encoder in proto/ appends to a buf_t. A buffer whose
 * allocation failed, or that would grow past its limit, latches `err` and
 * ignores further appends, so a renderer can append freely and check once at
 * the end.
 */
#ifndef FLAGCAST_BUF_H
#define FLAGCAST_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct buf {
    char  *data;   /* owned; NUL-terminated after every append (not counted in len) */
    size_t len;
    size_t cap;
    size_t limit;  /* 0: unlimited; else appends past it fail */
    int    err;    /* latched: 1 once an append failed */
} buf_t;

void buf_init(buf_t *b);
void buf_free(buf_t *b);
void buf_reset(buf_t *b);                 /* len = 0, err = 0; keeps storage */
/* Undoes a failed render or encode: cuts b back to len, so it is never left
 * half-written (a latched err already makes the whole buffer unusable, so
 * then nothing changes). @return -1, for `return buf_rollback(b, start);`. */
int  buf_rollback(buf_t *b, size_t len);
/* @return 0 on success, -1 on failure (and err is latched). */
int  buf_reserve(buf_t *b, size_t extra);
int  buf_append(buf_t *b, const void *p, size_t n);
int  buf_puts(buf_t *b, const char *s);
int  buf_putc(buf_t *b, char c);
int  buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int  buf_vprintf(buf_t *b, const char *fmt, va_list ap);
/* Hands the storage to the caller (who frees it) and resets b. */
char *buf_steal(buf_t *b, size_t *len);

/* msgpack-c write callback appending to a buf_t (data = the buf_t *). */
int  buf_msgpack_write(void *data, const char *p, size_t n);

#endif
