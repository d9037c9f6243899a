/*
 * mpscan — a bounds-checked, non-recursive walk over msgpack bytes.
 *
 * msgpack-c's unpacker allocates every array and map up front from the
 * count in its header (a 5-byte "array32 of 4e9 elements" asks for ~96 GB),
 * and gives up at 32 levels of nesting with a bare NOMEM error. The decoders
 * in proto/ therefore walk untrusted bytes with mp_scan first: it finds where
 * one object ends, refuses nesting beyond a limit and any container that
 * claims more elements than there are bytes left, and allocates nothing.
 * Only then is the object handed to msgpack_unpack_next.
 */
#ifndef FLAGCAST_MPSCAN_H
#define FLAGCAST_MPSCAN_H

#include <stddef.h>

/* msgpack-c's own nesting limit (MSGPACK_EMBED_STACK_SIZE): a container
 * nested deeper than this can never be unpacked. */
#define MP_MAX_DEPTH 32

/* Flags for mp_scan. */
#define MP_SCAN_JSON 1   /* refuse ext values and map keys that are not str/bin */

/* Walks one msgpack object at p (n bytes available). Containers may nest at
 * most max_depth levels (an object that is itself an array counts 1).
 * On success *end is the number of bytes the object takes.
 * @return 0 on success, -1 on failure with *err set to a static message. */
int mp_scan(const char *p, size_t n, int max_depth, unsigned flags,
            size_t *end, const char **err);

#endif
