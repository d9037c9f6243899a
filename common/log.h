/*
 * log — one logfmt line per event on stderr:
 *   ts=2026-11-23T13:50:00.123Z level=info msg="gateway listening" listen=0.0.0.0:8080
 * Thread-safe (one write(2) per line). Values containing spaces, quotes, '='
 * or control characters are quoted and escaped by log_kv().
 */
#ifndef FLAGCAST_LOG_H
#define FLAGCAST_LOG_H

#include <stddef.h>

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;

void log_set_level(log_level_t lvl);
/* "debug"|"info"|"warn"|"error" → level. @return 0 or -1. */
int  log_level_parse(const char *s, log_level_t *lvl);
/* Sets the "component" field printed on every line (e.g. "gateway"). */
void log_set_component(const char *name);

/* msg is quoted as needed; fmt (may be NULL) is printf-style text appended
 * after it, made of key=value pairs the caller formats, e.g.
 *   log_msg(LOG_INFO, "redis connected", "addr=%s:%d", host, port);
 * Use log_q() for values that may need quoting. */
void log_msg(log_level_t lvl, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Quotes s for logfmt into buf (always NUL-terminated; truncated with "…" if
 * long). @return buf. */
const char *log_q(char *buf, size_t len, const char *s);

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
