/*
 * config — defaults, then FLAGCAST_* environment variables, then long options.
 *
 * Values are not copied: a CFG_STR pointer points into the table's default,
 * the environment or argv, which all outlive the process's use of them.
 * Parsing is done in three passes over the table so the precedence is plain
 * to see; the first bad value stops parsing with a message naming its source.
 */
#include "common/config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef FLAGCAST_VERSION
#define FLAGCAST_VERSION "0.0.0"
#endif

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "1", "true", "yes", "on" };
    static const char *const no[] = { "0", "false", "no", "off" };
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) { *out = true; return 0; }
        if (strcasecmp(s, no[i]) == 0) { *out = false; return 0; }
    }
    return -1;
}

/* Stores value s into the option. @return 0 or -1 with errbuf set. */
static int set_value(const cfg_opt_t *o, const char *s, const char *source,
                     char *errbuf, size_t errlen)
{
    switch (o->type) {
    case CFG_STR:
        *(const char **)o->ptr = s;
        return 0;
    case CFG_BOOL:
        if (s == NULL || parse_bool(s, (bool *)o->ptr) < 0) {
            snprintf(errbuf, errlen, "%s: expected a boolean (true/false), got \"%s\"",
                     source, s ? s : "");
            return -1;
        }
        return 0;
    case CFG_INT: {
        char *end;
        long v;
        if (s == NULL || *s == '\0') {
            snprintf(errbuf, errlen, "%s: expected an integer, got an empty value", source);
            return -1;
        }
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno != 0 || *end != '\0' || end == s) {
            snprintf(errbuf, errlen, "%s: expected an integer, got \"%s\"", source, s);
            return -1;
        }
        if (o->min != o->max && (v < o->min || v > o->max)) {
            snprintf(errbuf, errlen, "%s: %ld is out of range [%ld, %ld]",
                     source, v, o->min, o->max);
            return -1;
        }
        *(long *)o->ptr = v;
        return 0;
    }
    }
    snprintf(errbuf, errlen, "%s: bad option type", source);
    return -1;
}

void cfg_usage(FILE *out, const cfg_opt_t *opts, const char *prog, const char *summary)
{
    fprintf(out, "Usage: %s [OPTION]...\n", prog);
    if (summary)
        fprintf(out, "%s\n", summary);
    fprintf(out, "\nEvery option can also be set by its environment variable; the command\n"
                 "line wins over the environment, which wins over the default.\n\n");
    for (const cfg_opt_t *o = opts; o->name; o++) {
        const char *arg = o->type == CFG_INT ? "=N" : o->type == CFG_BOOL ? "[=BOOL]" : "=VALUE";
        fprintf(out, "  --%s%s\n", o->name, arg);
        fprintf(out, "      %s\n", o->help ? o->help : "");
        fprintf(out, "      env %s, default %s\n", o->env ? o->env : "(none)",
                o->def ? (*o->def ? o->def : "\"\"") : "(unset)");
    }
    fprintf(out, "  --help\n      print this help and exit\n");
    fprintf(out, "  --version\n      print the version and exit\n");
}

int cfg_parse(const cfg_opt_t *opts, int argc, char **argv,
              const char *prog, const char *summary,
              char *errbuf, size_t errlen)
{
    char src[160];

    /* 1. defaults */
    for (const cfg_opt_t *o = opts; o->name; o++) {
        if (o->def == NULL) {
            if (o->type == CFG_STR)
                *(const char **)o->ptr = NULL;
            continue;
        }
        snprintf(src, sizeof(src), "default of --%s", o->name);
        if (set_value(o, o->def, src, errbuf, errlen) < 0)
            return -1;
    }
    /* 2. environment */
    for (const cfg_opt_t *o = opts; o->name; o++) {
        const char *v = o->env ? getenv(o->env) : NULL;
        if (v == NULL)
            continue;
        snprintf(src, sizeof(src), "%s", o->env);
        if (set_value(o, v, src, errbuf, errlen) < 0)
            return -1;
    }
    /* 3. command line */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const cfg_opt_t *o;
        const char *val = NULL;
        size_t nlen;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            cfg_usage(stdout, opts, prog, summary);
            return 1;
        }
        if (strcmp(a, "--version") == 0) {
            printf("%s %s\n", prog, FLAGCAST_VERSION);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            snprintf(errbuf, errlen, "unexpected argument \"%s\" (try --help)", a);
            return -1;
        }
        a += 2;
        nlen = strcspn(a, "=");
        if (a[nlen] == '=')
            val = a + nlen + 1;
        for (o = opts; o->name; o++)
            if (strlen(o->name) == nlen && strncmp(o->name, a, nlen) == 0)
                break;
        if (o->name == NULL) {
            snprintf(errbuf, errlen, "unknown option \"--%.*s\" (try --help)", (int)nlen, a);
            return -1;
        }
        if (val == NULL) {
            if (o->type == CFG_BOOL) {
                val = "true";
            } else if (i + 1 < argc) {
                val = argv[++i];
            } else {
                snprintf(errbuf, errlen, "option --%s needs a value", o->name);
                return -1;
            }
        }
        snprintf(src, sizeof(src), "--%s", o->name);
        if (set_value(o, val, src, errbuf, errlen) < 0)
            return -1;
    }
    return 0;
}

int cfg_parse_hostport(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon, *h;
    size_t hl;
    char *end;
    long p;

    if (s == NULL || hostlen == 0)
        return -1;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':')
            return -1;
        h = s + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
        if (hl == 0)
            return -1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -1;
        h = s;
        hl = (size_t)(colon - s);
        if (memchr(h, ':', hl) != NULL)   /* bare IPv6 needs brackets */
            return -1;
        if (hl == 0) {
            h = "0.0.0.0";
            hl = 7;
        }
    }
    if (hl >= hostlen)
        return -1;
    errno = 0;
    p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno || p < 0 || p > 65535)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}
