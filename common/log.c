/*
 * log — logfmt lines on stderr.
 *
 * Every line is formatted into a stack buffer first and written with a single
 * write(2), so lines from different threads never interleave. The level and
 * component are process-wide and set once at start-up. A line longer than the
 * buffer is cut (with "…") rather than split.
 */
#include "common/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static _Atomic int log_level = LOG_INFO;
static char log_component[64] = "";

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void log_set_level(log_level_t lvl)
{
    log_level = (int)lvl;
}

int log_level_parse(const char *s, log_level_t *lvl)
{
    for (int i = 0; i < 4; i++) {
        if (s && strcmp(s, level_names[i]) == 0) {
            *lvl = (log_level_t)i;
            return 0;
        }
    }
    if (s && strcmp(s, "warning") == 0) {
        *lvl = LOG_WARN;
        return 0;
    }
    return -1;
}

void log_set_component(const char *name)
{
    snprintf(log_component, sizeof(log_component), "%s", name ? name : "");
}

/* A value needs quotes if it is empty or holds a space, '"', '=', '\\' or a
 * control character. */
static int needs_quote(const char *s)
{
    if (*s == '\0')
        return 1;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
            return 1;
    }
    return 0;
}

const char *log_q(char *buf, size_t len, const char *s)
{
    static const char ellipsis[] = "\xe2\x80\xa6"; /* … */
    size_t o = 0;

    if (len == 0)
        return buf;
    if (s == NULL)
        s = "";
    if (!needs_quote(s)) {
        size_t n = strlen(s);
        if (n < len) {
            memcpy(buf, s, n + 1);
            return buf;
        }
    }
    /* Room needed at the end: ellipsis (3) + quote (1) + NUL (1). */
    if (len < 8) {
        buf[0] = '\0';
        return buf;
    }
    buf[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        size_t n;
        switch (*p) {
        case '"':  n = 2; memcpy(esc, "\\\"", 2); break;
        case '\\': n = 2; memcpy(esc, "\\\\", 2); break;
        case '\n': n = 2; memcpy(esc, "\\n", 2); break;
        case '\r': n = 2; memcpy(esc, "\\r", 2); break;
        case '\t': n = 2; memcpy(esc, "\\t", 2); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                n = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", *p);
            else {
                esc[0] = (char)*p;
                n = 1;
            }
        }
        if (o + n + 5 > len) {
            /* Do not cut inside a UTF-8 sequence. */
            while (o > 1 && ((unsigned char)buf[o - 1] & 0xC0) == 0x80)
                o--;
            if (o > 1 && ((unsigned char)buf[o - 1] & 0xC0) == 0xC0)
                o--;
            memcpy(buf + o, ellipsis, 3);
            o += 3;
            break;
        }
        memcpy(buf + o, esc, n);
        o += n;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

void log_msg(log_level_t lvl, const char *msg, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    char q[1024];
    struct timespec ts;
    struct tm tm;
    size_t o;
    int n;

    if ((int)lvl < log_level)
        return;
    if ((int)lvl < 0 || lvl > LOG_ERROR)
        lvl = LOG_ERROR;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(line, sizeof(line),
                 "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L, level_names[lvl]);
    o = (size_t)n;
    if (log_component[0] && o < sizeof(line))
        o += (size_t)snprintf(line + o, sizeof(line) - o, " component=%s", log_component);
    if (o < sizeof(line))
        o += (size_t)snprintf(line + o, sizeof(line) - o, " msg=%s", log_q(q, sizeof(q), msg));
    if (fmt && *fmt && o + 1 < sizeof(line)) {
        va_list ap;
        line[o++] = ' ';
        va_start(ap, fmt);
        n = vsnprintf(line + o, sizeof(line) - o, fmt, ap);
        va_end(ap);
        if (n > 0)
            o += (size_t)n;
    }
    if (o >= sizeof(line) - 1) {
        o = sizeof(line) - 5;
        memcpy(line + o, "\xe2\x80\xa6", 3);
        o += 3;
    }
    line[o++] = '\n';
    /* One write per line; a short write to stderr is not retried. */
    ssize_t w = write(STDERR_FILENO, line, o);
    (void)w;
}
