/*
 * textlist — comma lists and constant-time secret comparison, used by the
 * admin-token, API-key and private-channel settings parsers.
 */
#include "common/textlist.h"

#include <string.h>

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

int textlist_next(const char **p, const char **item, size_t *len)
{
    const char *s = *p, *end;
    if (s == NULL)
        return 0;
    while (*s == ',' || is_blank(*s))
        s++;
    if (*s == '\0') {
        *p = s;
        return 0;
    }
    end = s + strcspn(s, ",");
    *p = end;
    while (end > s && is_blank(end[-1]))
        end--;
    *item = s;
    *len = (size_t)(end - s);
    return 1;
}

int textlist_secret_equal(const char *s, size_t len, const char *padded,
                          size_t secret_len, size_t max)
{
    unsigned diff = (unsigned)(secret_len ^ len);
    for (size_t j = 0; j < max; j++) {
        unsigned char c = j < len ? (unsigned char)s[j] : 0;
        diff |= (unsigned)(c ^ (unsigned char)padded[j]);
    }
    return diff == 0;
}
