/*
 * config — settings from defaults, then FLAGCAST_* environment variables,
 * then long options (--listen=HOST:PORT or --listen HOST:PORT), in that order
 * of precedence (the command line wins). Each daemon describes its settings
 * in a table of cfg_opt_t; --help prints them with their env var and default,
 * --version prints the version.
 */
#ifndef FLAGCAST_CONFIG_H
#define FLAGCAST_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum { CFG_STR, CFG_INT, CFG_BOOL } cfg_type_t;

typedef struct cfg_opt {
    const char *name;     /* long option without "--", e.g. "listen" */
    const char *env;      /* e.g. "FLAGCAST_LISTEN"; NULL: no env var */
    cfg_type_t  type;
    const char *def;      /* default as text; NULL: unset */
    const char *help;     /* one line */
    void       *ptr;      /* CFG_STR: const char **; CFG_INT: long *; CFG_BOOL: bool * */
    long        min, max; /* CFG_INT bounds (ignored if min == max) */
} cfg_opt_t;

/* Fills every ptr from the table (opts ends with a zeroed entry).
 * @return 0 to run, 1 if --help or --version was printed (exit 0),
 *         -1 on a bad value or unknown option (errbuf says which; exit 2). */
int  cfg_parse(const cfg_opt_t *opts, int argc, char **argv,
               const char *prog, const char *summary,
               char *errbuf, size_t errlen);
void cfg_usage(FILE *out, const cfg_opt_t *opts, const char *prog, const char *summary);

/* "host:port" → host (copied into host[hostlen]) and port.
 * Accepts "host:port", ":port" (host "0.0.0.0") and "[v6]:port".
 * @return 0 or -1. */
int  cfg_parse_hostport(const char *s, char *host, size_t hostlen, int *port);

#endif
