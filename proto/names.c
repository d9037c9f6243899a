/*
 * names — validation of channel names, flag keys and tags.
 *
 * These rules decide what may become part of a Redis key (P:ch:{ch},
 * P:hist:{ch}) or an SSE/WS filter, so they are deliberately narrow: plain
 * ASCII, no spaces, no braces, bounded length. The character classes are
 * table-driven so that a check is one pass with no branches per class.
 */
#include "proto/names.h"

#include <stdbool.h>
#include <string.h>

/* [A-Za-z0-9._:-] for channels; [A-Za-z0-9_./:-] for keys and tags. */
static bool is_chan_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' || c == '-';
}

static bool is_key_char(unsigned char c)
{
    return is_chan_char(c) || c == '/';
}

static int all_chars(const char *s, size_t len, bool (*ok)(unsigned char))
{
    for (size_t i = 0; i < len; i++)
        if (!ok((unsigned char)s[i]))
            return -1;
    return 0;
}

chan_kind_t name_channel_kind(const char *s, size_t len, const char **err)
{
    const char *e = NULL;
    if (!s || len == 0 || len > NAME_CHANNEL_MAX ||
        all_chars(s, len, is_chan_char) != 0) {
        e = "channel must be 1-200 bytes of [A-Za-z0-9._:-]";
    } else if (len == 5 && memcmp(s, "flags", 5) == 0) {
        return CHAN_FLAGS;
    } else if (len >= 5 && memcmp(s, "user:", 5) == 0) {
        if (len > 5)
            return CHAN_USER;
        e = "channel \"user:\" needs a user id after the colon";
    } else if (len >= 5 && memcmp(s, "role:", 5) == 0) {
        if (len > 5)
            return CHAN_ROLE;
        e = "channel \"role:\" needs a role name after the colon";
    } else {
        return CHAN_APP;
    }
    if (err)
        *err = e;
    return CHAN_INVALID;
}

int name_channel_valid(const char *s, size_t len, const char **err)
{
    return name_channel_kind(s, len, err) == CHAN_INVALID ? -1 : 0;
}

int name_flag_key_valid(const char *s, size_t len, const char **err)
{
    if (!s || len == 0 || len > NAME_FLAG_KEY_MAX ||
        all_chars(s, len, is_key_char) != 0) {
        if (err)
            *err = "flag key must be 1-128 bytes of [A-Za-z0-9_./:-]";
        return -1;
    }
    return 0;
}

int name_tag_valid(const char *s, size_t len, const char **err)
{
    if (!s || len == 0 || len > 64 || all_chars(s, len, is_key_char) != 0) {
        if (err)
            *err = "tag must be 1-64 bytes of [A-Za-z0-9_./:-]";
        return -1;
    }
    return 0;
}
