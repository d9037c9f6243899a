/*
 * names — validation of channel names and flag keys (DESIGN.md, "Logical
 * channels"). Pure functions, no allocation.
 */
#ifndef FLAGCAST_NAMES_H
#define FLAGCAST_NAMES_H

#include <stddef.h>

#define NAME_CHANNEL_MAX 200   /* bytes */
#define NAME_FLAG_KEY_MAX 128  /* bytes */

typedef enum {
    CHAN_INVALID = -1,
    CHAN_FLAGS = 0,   /* the built-in "flags" channel */
    CHAN_APP,         /* an application channel */
    CHAN_USER,        /* "user:<id>" */
    CHAN_ROLE         /* "role:<name>" */
} chan_kind_t;

/* A channel name is 1-200 bytes of [A-Za-z0-9._:-]; "user:" and "role:"
 * need a non-empty rest. @return its kind, or CHAN_INVALID with *err set to a
 * static message. */
chan_kind_t name_channel_kind(const char *s, size_t len, const char **err);
int name_channel_valid(const char *s, size_t len, const char **err); /* 0 ok, -1 */

/* A flag key is 1-128 bytes of [A-Za-z0-9_./:-] (Flagent's rule).
 * @return 0 if valid, -1 with *err set. */
int name_flag_key_valid(const char *s, size_t len, const char **err);

/* A tag: 1-64 bytes of [A-Za-z0-9_./:-]. */
int name_tag_valid(const char *s, size_t len, const char **err);

#endif
