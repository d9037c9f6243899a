/*
 * textlist — small text helpers shared by the settings parsers: walking a
 * comma-separated list, and comparing a secret in constant time.
 */
#ifndef FLAGCAST_TEXTLIST_H
#define FLAGCAST_TEXTLIST_H

#include <stddef.h>

/* Walks a comma list: skips separators and blanks, sets *item and *len to
 * the next item with surrounding blanks trimmed, and advances *p past it.
 * @return 1 if an item was found, 0 at the end of the list. */
int textlist_next(const char **p, const char **item, size_t *len);

/* Compares s (len bytes, len <= max) with a zero-padded buffer of max bytes
 * holding a secret of secret_len bytes. Always reads all max bytes, so the
 * time taken says nothing about where they differ.
 * @return 1 if equal, 0 otherwise. */
int textlist_secret_equal(const char *s, size_t len, const char *padded,
                          size_t secret_len, size_t max);

#endif
