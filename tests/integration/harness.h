/*
 * harness — the C binding of the integration tests' one harness,
 * tests/integration/harness.sh (read its top comment first). harness.sh
 * knows how redis-server, the publisher and the gateway are started, what
 * a free loopback port is and when each is ready; the shell tests source
 * it, and this file executes it:
 *
 *   h_redis_start      sh harness.sh redis_exec PORT DIR --loglevel warning
 *   h_daemon_start     sh harness.sh daemon_exec NAME PORT REDIS_URL VAR=value...
 *   h_wait_ready       sh harness.sh wait_until SECONDS WHAT PROBE...
 *   h_free_port        sh harness.sh free_port
 *
 * The *_exec commands become the daemon, so its PID is a child of the
 * test: this file reaps it, returns its exit status and kills it by PID.
 * On top of that, what only C tests need:
 *
 *   - a private temp dir;
 *   - processes spawned with extra env vars and a log file in the temp dir,
 *     tracked by PID and killed at exit (atexit) even when a test fails;
 *     each child also gets PR_SET_PDEATHSIG, so a test killed by a timeout
 *     does not leave orphans behind;
 *   - redis-server stopped and restarted on the same port;
 *   - the publisher fixture (redis, publisher, subscriber) every publisher
 *     test starts from;
 *   - a tiny blocking HTTP/1.1 client;
 *   - a blocking hiredis subscriber (PSUBSCRIBE) with a per-call deadline;
 *   - a dump of every key of a Redis, to check that bad input changed nothing.
 *
 * Everything is process-local: with Check's fork mode each test (a child)
 * owns what it spawned, and only the creator of a process or temp dir
 * cleans it up. Functions return -1 / NULL on failure after printing why on
 * stderr, so a test can simply ck_assert on the result.
 */
#ifndef FLAGCAST_HARNESS_H
#define FLAGCAST_HARNESS_H

#include <stddef.h>
#include <sys/types.h>
#include <hiredis/hiredis.h>

/* The temp dir of this process (created on first use, removed at exit
 * unless FLAGCAST_KEEP_TMP=1). */
const char *h_tmpdir(void);
/* A TCP port free on 127.0.0.1 right now (harness.sh free_port), or -1. */
int h_free_port(void);
/* The path of harness.sh: $FLAGCAST_HARNESS, else the one next to this
 * file's source (relative to the repository root, where make runs). */
const char *h_script(void);
/* $FLAGCAST_BIN/name (or bin/name when FLAGCAST_BIN is unset); static buffer. */
const char *h_bin(const char *name);
/* Milliseconds on a monotonic clock. */
long long h_now_ms(void);

/* Spawns argv[0] (a path) with the current environment plus env ("K=V",
 * NULL-terminated, may be NULL). stdout and stderr go to <tmpdir>/<logname>.
 * @return the PID, or -1. */
pid_t h_spawn(const char *const argv[], const char *const env[], const char *logname);
/* Sends sig and waits up to timeout_ms for the process to exit (then
 * SIGKILL). @return its wait status, or -1. */
int h_stop(pid_t pid, int sig, int timeout_ms);
/* Whether the PID is still running (not yet reaped). */
int h_alive(pid_t pid);
/* Kills every process this process spawned. Also runs at exit. */
void h_kill_all(void);
/* Runs a program to completion (at most timeout_ms), capturing stdout and
 * stderr into malloc'd strings (either may be NULL). @return the exit code,
 * or -1 (killed / could not run). */
int h_run(const char *const argv[], const char *const env[], char **out, char **err,
          int timeout_ms);
/* Prints the last lines of a log file of the temp dir to stderr. */
void h_print_log(const char *logname);

/* ==== redis ==== */

typedef struct h_redis {
    pid_t pid;
    int   port;
    char  url[160];      /* redis://127.0.0.1:<port>, or redis://:<password>@... */
    char  password[64];  /* "" if none */
} h_redis_t;

/* Starts redis-server (port 0: a free one) and waits until it answers PING.
 * @return 0 or -1. */
int  h_redis_start(h_redis_t *r, int port);
/* Same, with --requirepass password (NULL: none). The helpers below that
 * take only a port do not authenticate; use h_redis_connect_auth. */
int  h_redis_start_auth(h_redis_t *r, int port, const char *password);
int  h_redis_stop(h_redis_t *r);
/* A blocking connection (2 s timeout). Caller frees with redisFree. */
redisContext *h_redis_connect(int port);
/* Connects and sends AUTH password (if not NULL/""). */
redisContext *h_redis_connect_auth(int port, const char *password);
/* "key\ttype\tttl?\thex(DUMP)\n" for every key, sorted: equal dumps mean
 * equal data. Caller frees. */
char *h_redis_dump(int port);

/* ==== daemons ==== */

/* Runs harness.sh's wait_until with probe (a harness.sh probe and its
 * arguments, NULL-terminated: { "is_code", "200", url, NULL } or
 * { "redis_ping", port, password, NULL }) for up to timeout_ms (rounded up
 * to whole seconds), watching pid meanwhile. On a timeout harness.sh prints
 * "FAIL: timed out after Ns waiting for: what"; if pid exits first this
 * says so. @return 0 once the probe passed, -1 otherwise. */
int h_wait_ready(pid_t pid, const char *what, const char *const probe[], int timeout_ms);
/* Spawns flagcast-<name> ("publisher", "gateway") through harness.sh's
 * daemon_exec on 127.0.0.1:port against redis_url, with env ("K=V",
 * NULL-terminated, may be NULL; it may override both), logging to logname
 * (appended), and waits until GET path answers 200. On failure prints the
 * log and kills the process. @return its PID, or -1. */
pid_t h_daemon_start(const char *name, int port, const char *redis_url,
                     const char *const env[], const char *logname, const char *path,
                     int timeout_ms);
/* Polls GET path until it answers `status`. @return 0 or -1 on timeout. */
int h_wait_status(int port, const char *path, int status, int timeout_ms);

/* ==== the publisher fixture ==== */

typedef struct h_sub h_sub_t;

/* What every publisher test starts with: a redis-server on a free port,
 * the publisher on another (env added, log publisher.log) ready on
 * /readyz, and a subscriber PSUBSCRIBEd to pattern ("<prefix>:ch:*"). */
typedef struct h_pubfix {
    h_redis_t redis;
    int       port;   /* the publisher's */
    pid_t     pid;    /* the publisher's */
    h_sub_t  *sub;
} h_pubfix_t;

/* @return 0, or -1 after printing why. */
int  h_pubfix_start(h_pubfix_t *f, const char *const env[], const char *pattern);
/* Frees the subscriber and kills every process this process spawned. */
void h_pubfix_stop(h_pubfix_t *f);

/* ==== HTTP ==== */

typedef struct h_resp {
    int    status;
    char  *headers;   /* raw header block, NUL-terminated */
    char  *body;      /* NUL-terminated (dechunked) */
    size_t body_len;
} h_resp_t;

/* One request on a fresh connection (Connection: close). headers: extra
 * header lines, each ending in "\r\n" (may be NULL). body may be NULL.
 * @return 0 with resp filled (free with h_resp_free), or -1. */
int  h_http(int port, const char *method, const char *path, const char *headers,
            const char *body, size_t body_len, h_resp_t *resp);
void h_resp_free(h_resp_t *resp);
/* A header's value (case-insensitive name) copied into out. @return 0/-1. */
int  h_resp_header(const h_resp_t *resp, const char *name, char *out, size_t len);

/* ==== subscriber ==== */

/* PSUBSCRIBEs to pattern on a fresh connection. */
h_sub_t *h_sub_new(int port, const char *pattern);
/* Waits up to timeout_ms for the next message. @return 1 with *channel
 * and *msg (malloc'd, caller frees) set, 0 on timeout, -1 on error. */
int  h_sub_next(h_sub_t *s, int timeout_ms, char **channel, char **msg, size_t *len);
void h_sub_free(h_sub_t *s);

#endif
