/*
 * buf — a growable byte buffer (see buf.h).
 *
 * The storage grows by doubling, so appending n bytes one by one costs O(n).
 * The buffer always keeps one spare byte for a terminating NUL, which makes
 * the contents usable as a C string without another copy. Any failure
 * (allocation, or the optional limit) latches `err`; later appends are then
 * no-ops that return -1, so a renderer can append freely and check once.
 */
#include "proto/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(buf_t *b)
{
    memset(b, 0, sizeof(*b));
}

void buf_free(buf_t *b)
{
    free(b->data);
    buf_init(b);
}

void buf_reset(buf_t *b)
{
    b->len = 0;
    b->err = 0;
    if (b->data)
        b->data[0] = '\0';
}

int buf_rollback(buf_t *b, size_t len)
{
    if (!b->err && len <= b->len) {
        b->len = len;
        if (b->data)
            b->data[len] = '\0';
    }
    return -1;
}

int buf_reserve(buf_t *b, size_t extra)
{
    if (b->err)
        return -1;
    if (extra > SIZE_MAX - b->len - 1 ||
        (b->limit && b->len + extra > b->limit)) {
        b->err = 1;
        return -1;
    }
    size_t need = b->len + extra + 1;           /* + NUL */
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (b->limit && cap > b->limit + 1)
        cap = b->limit + 1 > need ? b->limit + 1 : need;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->err = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int buf_append(buf_t *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) != 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int buf_puts(buf_t *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_putc(buf_t *b, char c)
{
    if (b->len + 1 < b->cap && !b->err &&
        (!b->limit || b->len + 1 <= b->limit)) {
        b->data[b->len++] = c;
        b->data[b->len] = '\0';
        return 0;
    }
    return buf_append(b, &c, 1);
}

int buf_vprintf(buf_t *b, const char *fmt, va_list ap)
{
    if (b->err)
        return -1;
    va_list ap2;
    va_copy(ap2, ap);
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        b->err = 1;
        return -1;
    }
    if ((size_t)n >= room) {
        if (buf_reserve(b, (size_t)n) != 0) {
            if (b->data)
                b->data[b->len] = '\0';
            return -1;
        }
        va_copy(ap2, ap);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
        va_end(ap2);
    } else if (b->limit && b->len + (size_t)n > b->limit) {
        b->data[b->len] = '\0';
        b->err = 1;
        return -1;
    }
    b->len += (size_t)n;
    return 0;
}

int buf_printf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return r;
}

char *buf_steal(buf_t *b, size_t *len)
{
    char *p = b->data;
    if (len)
        *len = b->len;
    if (!p)
        p = calloc(1, 1);
    buf_init(b);
    return p;
}

int buf_msgpack_write(void *data, const char *p, size_t n)
{
    return buf_append((buf_t *)data, p, n);
}
