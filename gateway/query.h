/*
 * query — the query string of an SSE (or WS upgrade) request.
 *
 * Parameters (names are case-sensitive; values are percent-decoded, `+` is a
 * space):
 *   flagKey=k        repeated: one flag key each (Flagent's form)
 *   flagID=7         repeated: one numeric flag id each (alias flagId)
 *   flagKeys=a,b     comma list of keys (alias flags, the WS field's name)
 *   flagIDs=1,2      comma list of ids (alias flagIds)
 *   tags=t1,t2       comma list of tags (repeatable)
 *   channels=c1,c2   comma list of logical channels (repeatable); "flags"
 *                    among them sets flags_listed
 *   subscribeAll=true|false|1|0
 *   token=...        a bearer token for browsers that cannot set headers
 *   lastEventId=...  the SSE cursor to resume from (alias lastEventID;
 *                    browsers send the Last-Event-ID header instead, which
 *                    the caller reads itself)
 * Any other name is an error naming it and the known ones: a misspelt filter
 * (`flagkey=`) must not silently stream every flag. Ignored: `_` (the
 * cache-buster jQuery and others add, `_=1700000000`). Empty values and empty items of a comma list are
 * ignored. Duplicates collapse. Anything malformed is an error with a
 * message fit for a 400 response: a bad percent escape, a NUL byte, an
 * invalid key / tag / channel name, a non-numeric or zero id, more than
 * max_items values in one list, a query longer than max_bytes, a token or
 * lastEventId over its limit.
 *
 * Pass the raw query (the part after '?', a leading '?' is skipped). If the
 * caller only has lws's already-decoded arguments it may join them with '&':
 * valid keys, ids, tags, channels and JWTs contain no '%', '+' or '&', so a
 * second decoding changes nothing for them.
 *
 * SSE cursor: the gateway sends `id: <channel>/<epoch>/<offset>` (channel
 * names and epochs contain no '/'); query_parse_cursor splits one. A stream
 * of several channels gets a *list cursor*: one such item per channel with
 * a known position, separated by single spaces (names and epochs contain
 * none), e.g. `flags/e1/42 chat.room1/e2/7`; query_cursor_next walks one.
 */
#ifndef FLAGCAST_GW_QUERY_H
#define FLAGCAST_GW_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "gateway/filter.h"

/* For error messages and docs/API.md. */
#define QUERY_KNOWN_PARAMS "flagKey, flagKeys (flags), flagID (flagId), flagIDs (flagIds), tags, " \
                           "channels, subscribeAll, lastEventId (lastEventID), token"
#define QUERY_IGNORED_PARAMS "_"

#define QUERY_MAX_BYTES       8192  /* default bound of the whole query string */
#define QUERY_MAX_ITEMS       FILTER_MAX_ITEMS
#define QUERY_MAX_TOKEN       4096  /* bytes, decoded */
/* Bytes of lastEventId / Last-Event-ID, decoded (a list cursor). lws keeps the
 * whole request head in one 4 KB header table per connection (raising it costs
 * ~1 KB of RSS on every connection, measured), so a cursor must leave room for
 * the request line and the other headers: a longer request gets no answer. */
#define QUERY_MAX_CURSOR      3072

typedef struct query_limits {
    size_t max_bytes;   /* 0: QUERY_MAX_BYTES */
    size_t max_items;   /* 0: QUERY_MAX_ITEMS, per list */
} query_limits_t;

typedef struct query {
    filter_req_t req;        /* what the client asked for; see filter.h */
    bool   channels_given;   /* a non-empty channels= was present */
    char  *token;            /* owned, NUL-terminated, or NULL */
    char  *last_event_id;    /* owned, NUL-terminated, or NULL */
} query_t;

void query_init(query_t *q);
void query_free(query_t *q);   /* frees the contents, leaves q initialized */

/* Parses len bytes of qs into q (which must be initialized and is reset
 * first). lim may be NULL for the defaults. On error q is left empty and
 * errbuf holds a message naming the parameter, e.g.
 *   "flagID: not a positive integer: \"abc\"".
 * @return 0 on success, -1 on failure. */
int  query_parse(const char *qs, size_t len, const query_limits_t *lim,
                 query_t *q, char *errbuf, size_t errlen);

/* Percent-decodes n bytes of s into out (at least n bytes; not
 * NUL-terminated), `+` becoming a space when plus_space. @return the decoded
 * length, or -1 on a bad escape ("%4", "%zz") or a decoded NUL byte. */
long query_decode(const char *s, size_t n, bool plus_space, char *out);

/* Splits a cursor "<channel>/<epoch>/<offset>" (the SSE id the gateway sends)
 * into its parts: channel and epoch point into s (not NUL-terminated), with
 * their lengths. The channel must be a valid channel name, the epoch 1..
 * EV_MAX_EPOCH bytes, the offset a decimal uint64. @return 0 or -1. */
int  query_parse_cursor(const char *s, size_t n,
                        const char **channel, size_t *channel_len,
                        const char **epoch, size_t *epoch_len, uint64_t *offset);

/* Walks a list cursor: from *pos in s (n bytes), skips spaces and gives the
 * next item (up to the next space). @return 1 with *item / *item_len and
 * *pos advanced, or 0 at the end. Items are not validated (parse each with
 * query_parse_cursor). */
int  query_cursor_next(const char *s, size_t n, size_t *pos, const char **item, size_t *item_len);

/* Writes the cursor of (channel, epoch, offset) into out (NUL-terminated).
 * @return its length, or -1 if it does not fit in outlen. */
int  query_format_cursor(char *out, size_t outlen, const char *channel,
                         const char *epoch, uint64_t offset);

#endif
