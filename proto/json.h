/*
 * json — JSON output for proto/: string escaping and msgpack-to-JSON.
 *
 * Strings: quotes, backslashes and every control character are escaped
 * (\n \r \t \b \f, others as \u00XX); U+2028/U+2029 are escaped so the text is
 * also valid JavaScript; invalid UTF-8 (bad lead bytes, truncated or overlong
 * sequences, surrogates, > U+10FFFF) is replaced by U+FFFD, one per bad byte.
 * Output is therefore always valid UTF-8 JSON.
 */
#ifndef FLAGCAST_JSON_H
#define FLAGCAST_JSON_H

#include <stddef.h>
#include <msgpack.h>
#include "proto/buf.h"

/* Appends s (n bytes) as a quoted JSON string. @return 0 or -1. */
int json_str(buf_t *b, const char *s, size_t n);
int json_cstr(buf_t *b, const char *s);   /* NUL-terminated; NULL renders null */

/* Appends a msgpack value as JSON: nil→null, bool, ints, floats (non-finite
 * → null), str (escaped as above), bin (base64 string), array, map (non-str
 * keys are rendered as their JSON text, quoted; bin keys as text; a key's
 * text may be at most 1 KB). Depth is bounded by EV_MAX_DEPTH; on failure
 * nothing is appended. @return 0 or -1. */
int json_msgpack(buf_t *b, const msgpack_object *o);
/* Same, from msgpack bytes holding exactly one object. */
int json_msgpack_bytes(buf_t *b, const char *p, size_t n);

#endif
