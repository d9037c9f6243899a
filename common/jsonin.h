/*
 * jsonin — JSON input (jansson) for the admin API: parse a request body,
 * turn any JSON value into msgpack bytes, and read a flag_t from a JSON
 * object. The boundary with untrusted input, so everything is bounded:
 * nesting depth (JSONIN_MAX_DEPTH), integer range (jansson refuses integers
 * beyond int64 and floats beyond double), output size (the buf_t's limit),
 * and every field's type; unknown fields are errors.
 *
 * Errors are written to errbuf as one sentence that names the field, fit to
 * send back to the client.
 */
#ifndef FLAGCAST_JSONIN_H
#define FLAGCAST_JSONIN_H

#include <jansson.h>
#include <msgpack.h>
#include <stddef.h>
#include "proto/buf.h"
#include "proto/event.h"
#include "proto/flag.h"

#define JSONIN_MAX_DEPTH 32   /* same as EV_MAX_DEPTH */

/* Fields of a flag in JSON input (bit mask): the in_bit of proto/flag.c's
 * table. The table's other top-level fields (id, version, updatedAt) are
 * read-only. */
#define JSONIN_KEY         FLAG_IN_KEY
#define JSONIN_DESCRIPTION FLAG_IN_DESCRIPTION
#define JSONIN_ENABLED     FLAG_IN_ENABLED
#define JSONIN_TAGS        FLAG_IN_TAGS
#define JSONIN_VARIANTS    FLAG_IN_VARIANTS
#define JSONIN_SEGMENTS    FLAG_IN_SEGMENTS
#define JSONIN_ALL         0x3fu

/* Parses exactly one JSON value from p[n] (no trailing text; NUL bytes are
 * errors) and checks its depth.
 * @return a new reference (json_decref it), or NULL with errbuf set. */
json_t *jsonin_parse(const char *p, size_t n, char *errbuf, size_t errlen);

/* Nesting depth of v (a scalar is 1). Stops counting past limit+1. */
int jsonin_depth(const json_t *v, int limit);
/* Container nesting of v as msgpack-c and mp_scan count it: a scalar is 0,
 * [] and [1] are 1, [[1]] is 2. Compare with EV_MAX_DATA_DEPTH and
 * FLAG_MAX_ATTACHMENT_DEPTH. Stops counting past limit+1. */
int jsonin_nesting(const json_t *v, int limit);

/* Appends v as msgpack: null, true/false, integer, real, string (str),
 * array, object (map with str keys, in object order).
 * @return 0, or -1 with *err set (too deep, or out's limit reached). */
int jsonin_to_msgpack(const json_t *v, buf_t *out, const char **err);
int jsonin_pack(const json_t *v, msgpack_packer *pk, int depth, const char **err);

/* Reads the fields of object o that are in `allowed` into f (which the
 * caller initialised, possibly with a current record: fields present in o
 * replace f's, others are kept). A field not in `allowed`, or unknown, or of
 * the wrong type, is an error. *present receives the mask of fields found.
 * Does not run flag_validate (the caller does, after merging).
 * @return 0, or -1 with errbuf set (f may then hold a partial update; the
 * caller frees it). */
int jsonin_flag(const json_t *o, unsigned allowed, flag_t *f, unsigned *present,
                char *errbuf, size_t errlen);

#endif
