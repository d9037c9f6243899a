/*
 * harness — real processes for integration tests. See harness.h.
 *
 * What to start and when it is ready is harness.sh's knowledge: redis and
 * the daemons are spawned as `sh harness.sh redis_exec|daemon_exec ...`,
 * which exec()s them (the PID this table holds is the daemon's), and
 * readiness is `sh harness.sh wait_until ... redis_ping|is_code ...`, run
 * while this file watches the daemon so that one that dies is reported at
 * once.
 *
 * Spawned processes are kept in a small table with the PID of their
 * creator; h_kill_all(), registered with atexit on first spawn, only touches
 * the caller's own children. Check's fork mode exits the test child with
 * exit(), so atexit runs on failures as well; when the parent kills a child
 * that timed out, PR_SET_PDEATHSIG takes the grandchildren down with it.
 */
#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define H_MAX_PROCS 32

static struct { pid_t pid, owner; } procs[H_MAX_PROCS];
static char tmpdir[256];
static pid_t tmpdir_owner;
static int atexit_done;

long long h_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

static void cleanup(void)
{
    h_kill_all();
    if (tmpdir[0] && tmpdir_owner == getpid()) {
        const char *keep = getenv("FLAGCAST_KEEP_TMP");
        if (keep && *keep == '1')
            fprintf(stderr, "harness: kept %s\n", tmpdir);
        else
            nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        tmpdir[0] = '\0';
    }
}

static void ensure_atexit(void)
{
    if (!atexit_done) {
        atexit(cleanup);
        atexit_done = 1;
    }
}

const char *h_tmpdir(void)
{
    if (tmpdir[0] == '\0' || tmpdir_owner != getpid()) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof(tmpdir), "%s/flagcast-it-XXXXXX", base && *base ? base : "/tmp");
        if (mkdtemp(tmpdir) == NULL) {
            perror("harness: mkdtemp");
            tmpdir[0] = '\0';
            return NULL;
        }
        tmpdir_owner = getpid();
        ensure_atexit();
    }
    return tmpdir;
}

int h_free_port(void)
{
    const char *argv[] = { "/bin/sh", h_script(), "free_port", NULL };
    char *out = NULL;
    int port = -1;
    if (h_run(argv, NULL, &out, NULL, 10000) == 0 && out)
        port = atoi(out);
    free(out);
    if (port <= 0) {
        fprintf(stderr, "harness: harness.sh free_port gave no port\n");
        return -1;
    }
    return port;
}

const char *h_script(void)
{
    static char path[512];
    const char *env = getenv("FLAGCAST_HARNESS");
    if (env && *env)
        return env;
    if (path[0] == '\0') {
        const char *slash = strrchr(__FILE__, '/');
        int dirlen = slash ? (int)(slash - __FILE__) : 1;
        snprintf(path, sizeof(path), "%.*s/harness.sh", dirlen, slash ? __FILE__ : ".");
    }
    return path;
}

const char *h_bin(const char *name)
{
    static char path[512];
    const char *dir = getenv("FLAGCAST_BIN");
    snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "bin", name);
    return path;
}

/* ==== processes ==== */

static void track(pid_t pid)
{
    for (int i = 0; i < H_MAX_PROCS; i++) {
        if (procs[i].pid == 0) {
            procs[i].pid = pid;
            procs[i].owner = getpid();
            return;
        }
    }
    fprintf(stderr, "harness: too many processes; %d is not tracked\n", (int)pid);
}

static void untrack(pid_t pid)
{
    for (int i = 0; i < H_MAX_PROCS; i++)
        if (procs[i].pid == pid)
            procs[i].pid = 0;
}

static pid_t spawn_fds(const char *const argv[], const char *const env[], int outfd, int errfd)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        perror("harness: fork");
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        setpgid(0, 0);
        for (int i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        if (outfd >= 0)
            dup2(outfd, 1);
        if (errfd >= 0)
            dup2(errfd, 2);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        signal(SIGPIPE, SIG_DFL);
        execv(argv[0], (char *const *)argv);
        if (strchr(argv[0], '/') == NULL)
            execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "harness: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    ensure_atexit();
    track(pid);
    return pid;
}

pid_t h_spawn(const char *const argv[], const char *const env[], const char *logname)
{
    char path[512];
    const char *dir = h_tmpdir();
    int fd;
    pid_t pid;

    if (dir == NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/%s", dir, logname ? logname : "proc.log");
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) {
        perror("harness: open log");
        return -1;
    }
    pid = spawn_fds(argv, env, fd, fd);
    close(fd);
    return pid;
}

int h_alive(pid_t pid)
{
    int st;
    if (pid <= 0)
        return 0;
    return waitpid(pid, &st, WNOHANG) == 0;
}

int h_stop(pid_t pid, int sig, int timeout_ms)
{
    int st = -1;
    long long deadline = h_now_ms() + timeout_ms;
    if (pid <= 0)
        return -1;
    kill(pid, sig);
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            break;
        if (r < 0) {
            st = -1;
            break;
        }
        if (h_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            break;
        }
        sleep_ms(5);
    }
    untrack(pid);
    return st;
}

void h_kill_all(void)
{
    for (int i = 0; i < H_MAX_PROCS; i++) {
        if (procs[i].pid > 0 && procs[i].owner == getpid()) {
            pid_t pid = procs[i].pid;
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            procs[i].pid = 0;
        }
    }
}

static char *slurp_fd(int fd)
{
    size_t cap = 4096, len = 0;
    char *s = malloc(cap);
    ssize_t n;
    if (s == NULL)
        return NULL;
    lseek(fd, 0, SEEK_SET);
    while ((n = read(fd, s + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (cap - len < 2) {
            char *t = realloc(s, cap * 2);
            if (t == NULL)
                break;
            s = t;
            cap *= 2;
        }
    }
    s[len] = '\0';
    return s;
}

int h_run(const char *const argv[], const char *const env[], char **out, char **err,
          int timeout_ms)
{
    char po[512], pe[512];
    const char *dir = h_tmpdir();
    int fo, fe, st, code = -1;
    pid_t pid;
    static int seq;

    if (dir == NULL)
        return -1;
    snprintf(po, sizeof(po), "%s/run-%d.out", dir, ++seq);
    snprintf(pe, sizeof(pe), "%s/run-%d.err", dir, seq);
    fo = open(po, O_RDWR | O_CREAT | O_TRUNC, 0644);
    fe = open(pe, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fo < 0 || fe < 0)
        return -1;
    pid = spawn_fds(argv, env, fo, fe);
    if (pid > 0) {
        long long deadline = h_now_ms() + timeout_ms;
        for (;;) {
            pid_t r = waitpid(pid, &st, WNOHANG);
            if (r == pid) {
                code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
                break;
            }
            if (r < 0 || h_now_ms() > deadline) {
                fprintf(stderr, "harness: %s timed out\n", argv[0]);
                kill(pid, SIGKILL);
                waitpid(pid, &st, 0);
                break;
            }
            sleep_ms(2);
        }
        untrack(pid);
    }
    if (out)
        *out = slurp_fd(fo);
    if (err)
        *err = slurp_fd(fe);
    close(fo);
    close(fe);
    return code;
}

void h_print_log(const char *logname)
{
    char path[512];
    FILE *f;
    char line[1024];
    if (h_tmpdir() == NULL)
        return;
    snprintf(path, sizeof(path), "%s/%s", h_tmpdir(), logname);
    if ((f = fopen(path, "r")) == NULL)
        return;
    fprintf(stderr, "---- %s ----\n", logname);
    while (fgets(line, sizeof(line), f))
        fputs(line, stderr);
    fclose(f);
}

/* ==== redis ==== */

redisContext *h_redis_connect(int port)
{
    struct timeval tv = { 2, 0 };
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c == NULL || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

redisContext *h_redis_connect_auth(int port, const char *password)
{
    redisContext *c = h_redis_connect(port);
    if (c && password && *password) {
        redisReply *r = redisCommand(c, "AUTH %s", password);
        int ok = r && r->type == REDIS_REPLY_STATUS;
        if (r)
            freeReplyObject(r);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

int h_redis_start(h_redis_t *r, int port)
{
    return h_redis_start_auth(r, port, NULL);
}

int h_redis_start_auth(h_redis_t *r, int port, const char *password)
{
    char portbuf[16], log[64], what[64];
    const char *dir = h_tmpdir();
    if (dir == NULL)
        return -1;
    if (port == 0 && (port = h_free_port()) < 0)
        return -1;
    snprintf(portbuf, sizeof(portbuf), "%d", port);
    snprintf(log, sizeof(log), "redis-%d.log", port);
    const char *argv[] = { "/bin/sh", h_script(), "redis_exec", portbuf, dir,
                           "--loglevel", "warning", NULL, NULL, NULL };
    if (password && *password) {
        argv[7] = "--requirepass";
        argv[8] = password;
    }
    r->port = port;
    snprintf(r->password, sizeof(r->password), "%s", password ? password : "");
    if (r->password[0])
        snprintf(r->url, sizeof(r->url), "redis://:%s@127.0.0.1:%d", r->password, port);
    else
        snprintf(r->url, sizeof(r->url), "redis://127.0.0.1:%d", port);
    r->pid = h_spawn(argv, NULL, log);
    if (r->pid < 0)
        return -1;
    snprintf(what, sizeof(what), "redis-server on port %d", port);
    const char *probe[] = { "redis_ping", portbuf, r->password, NULL };
    if (h_wait_ready(r->pid, what, probe, 5000) == 0)
        return 0;
    h_print_log(log);
    return -1;
}

int h_redis_stop(h_redis_t *r)
{
    int st = h_stop(r->pid, SIGKILL, 2000);
    r->pid = 0;
    return st == -1 ? -1 : 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char *h_redis_dump(int port)
{
    redisContext *c = h_redis_connect(port);
    redisReply *keys;
    char **names;
    size_t n, cap = 4096, len = 0;
    char *out;

    if (c == NULL)
        return NULL;
    keys = redisCommand(c, "KEYS *");
    if (keys == NULL || keys->type != REDIS_REPLY_ARRAY) {
        redisFree(c);
        return NULL;
    }
    n = keys->elements;
    names = calloc(n + 1, sizeof(char *));
    out = malloc(cap);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        names[i] = keys->element[i]->str;
    qsort(names, n, sizeof(char *), cmp_str);
    for (size_t i = 0; i < n; i++) {
        redisReply *t = redisCommand(c, "TYPE %s", names[i]);
        redisReply *ttl = redisCommand(c, "PTTL %s", names[i]);
        redisReply *d = redisCommand(c, "DUMP %s", names[i]);
        size_t need = strlen(names[i]) + 64 + (d && d->type == REDIS_REPLY_STRING ? d->len * 2 : 0);
        if (len + need + 1 > cap) {
            while (len + need + 1 > cap)
                cap *= 2;
            out = realloc(out, cap);
        }
        len += (size_t)sprintf(out + len, "%s\t%s\t%s\t", names[i], t ? t->str : "?",
                               ttl && ttl->integer >= 0 ? "ttl" : "-");
        if (d && d->type == REDIS_REPLY_STRING)
            for (size_t j = 0; j < d->len; j++)
                len += (size_t)sprintf(out + len, "%02x", (unsigned char)d->str[j]);
        out[len++] = '\n';
        out[len] = '\0';
        if (t) freeReplyObject(t);
        if (ttl) freeReplyObject(ttl);
        if (d) freeReplyObject(d);
    }
    free(names);
    freeReplyObject(keys);
    redisFree(c);
    return out;
}

/* ==== daemons ==== */

int h_wait_status(int port, const char *path, int status, int timeout_ms)
{
    long long deadline = h_now_ms() + timeout_ms;
    while (h_now_ms() < deadline) {
        h_resp_t r;
        if (h_http(port, "GET", path, NULL, NULL, 0, &r) == 0) {
            int s = r.status;
            h_resp_free(&r);
            if (s == status)
                return 0;
        }
        sleep_ms(10);
    }
    return -1;
}

int h_wait_ready(pid_t pid, const char *what, const char *const probe[], int timeout_ms)
{
    char secs[16];
    const char *argv[24];
    size_t n = 0;
    int st;

    snprintf(secs, sizeof(secs), "%d", (timeout_ms + 999) / 1000);
    argv[n++] = "/bin/sh";
    argv[n++] = h_script();
    argv[n++] = "wait_until";
    argv[n++] = secs;
    argv[n++] = what;
    for (size_t i = 0; probe[i] && n < 23; i++)
        argv[n++] = probe[i];
    argv[n] = NULL;
    /* Polled as often as the C harness always did, about; its "FAIL: timed
     * out ..." goes to the test's stderr. */
    const char *env[] = { "WAIT_STEP=0.02", NULL };
    pid_t waiter = spawn_fds(argv, env, -1, -1);
    if (waiter < 0)
        return -1;
    for (;;) {
        pid_t r = waitpid(waiter, &st, WNOHANG);
        if (r == waiter) {
            untrack(waiter);
            return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
        }
        if (r < 0) {
            untrack(waiter);
            return -1;
        }
        if (!h_alive(pid)) {
            fprintf(stderr, "harness: %s: the process exited before it was ready\n", what);
            h_stop(waiter, SIGKILL, 1000);
            return -1;
        }
        sleep_ms(5);
    }
}

pid_t h_daemon_start(const char *name, int port, const char *redis_url,
                     const char *const env[], const char *logname, const char *path,
                     int timeout_ms)
{
    char portbuf[16], url[256], what[128];
    const char *argv[40];
    size_t n = 0;

    snprintf(portbuf, sizeof(portbuf), "%d", port);
    argv[n++] = "/bin/sh";
    argv[n++] = h_script();
    argv[n++] = "daemon_exec";
    argv[n++] = name;
    argv[n++] = portbuf;
    argv[n++] = redis_url;
    for (size_t i = 0; env && env[i] && n < 39; i++)
        argv[n++] = env[i];
    argv[n] = NULL;
    pid_t pid = h_spawn(argv, NULL, logname);
    if (pid < 0)
        return -1;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    snprintf(what, sizeof(what), "flagcast-%s: GET %s answering 200", name, path);
    const char *probe[] = { "is_code", "200", url, NULL };
    if (h_wait_ready(pid, what, probe, timeout_ms) == 0)
        return pid;
    h_print_log(logname);
    h_stop(pid, SIGKILL, 1000);
    return -1;
}

/* ==== the publisher fixture ==== */

int h_pubfix_start(h_pubfix_t *f, const char *const env[], const char *pattern)
{
    memset(f, 0, sizeof(*f));
    if (h_redis_start(&f->redis, 0) < 0 || (f->port = h_free_port()) < 0)
        return -1;
    f->pid = h_daemon_start("publisher", f->port, f->redis.url, env, "publisher.log", "/readyz",
                            5000);
    if (f->pid < 0)
        return -1;
    if ((f->sub = h_sub_new(f->redis.port, pattern)) == NULL) {
        fprintf(stderr, "harness: cannot PSUBSCRIBE %s on port %d\n", pattern, f->redis.port);
        return -1;
    }
    return 0;
}

void h_pubfix_stop(h_pubfix_t *f)
{
    h_sub_free(f->sub);
    f->sub = NULL;
    h_kill_all();
}

/* ==== HTTP ==== */

static int dechunk(char *b, size_t n, size_t *outlen)
{
    size_t i = 0, o = 0;
    for (;;) {
        char *end;
        unsigned long sz = strtoul(b + i, &end, 16);
        char *crlf = strstr(b + i, "\r\n");
        if (crlf == NULL || end == b + i)
            return -1;
        i = (size_t)(crlf - b) + 2;
        if (sz == 0)
            break;
        if (i + sz > n)
            return -1;
        memmove(b + o, b + i, sz);
        o += sz;
        i += sz + 2;
    }
    b[o] = '\0';
    *outlen = o;
    return 0;
}

int h_http(int port, const char *method, const char *path, const char *headers,
           const char *body, size_t body_len, h_resp_t *resp)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    struct timeval tv = { 10, 0 };
    char *req, *buf = NULL, *hdr_end;
    size_t cap = 8192, len = 0, reqlen;
    int fd;

    memset(resp, 0, sizeof(*resp));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    if (body == NULL)
        body_len = 0;
    reqlen = strlen(method) + strlen(path) + (headers ? strlen(headers) : 0) + body_len + 256;
    req = malloc(reqlen);
    int hl = snprintf(req, reqlen,
                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n%s"
                      "%s",
                      method, path, port, headers ? headers : "", "");
    if (body) {
        hl += snprintf(req + hl, reqlen - (size_t)hl, "Content-Length: %zu\r\n", body_len);
        if (!strstr(headers ? headers : "", "Content-Type"))
            hl += snprintf(req + hl, reqlen - (size_t)hl, "Content-Type: application/json\r\n");
    }
    hl += snprintf(req + hl, reqlen - (size_t)hl, "\r\n");
    if (body_len)
        memcpy(req + hl, body, body_len);
    size_t total = (size_t)hl + body_len, sent = 0;
    while (sent < total) {
        ssize_t w = send(fd, req + sent, total - sent, MSG_NOSIGNAL);
        if (w <= 0)
            break; /* the server may answer early (413) and close */
        sent += (size_t)w;
    }
    free(req);
    buf = malloc(cap);
    for (;;) {
        ssize_t r;
        if (cap - len < 4096) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        r = recv(fd, buf + len, cap - len - 1, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    if (len < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || (hdr_end = strstr(buf, "\r\n\r\n")) == NULL) {
        free(buf);
        return -1;
    }
    resp->status = atoi(buf + 9);
    *hdr_end = '\0';
    resp->headers = strdup(buf);
    size_t blen = len - (size_t)(hdr_end + 4 - buf);
    resp->body = malloc(blen + 1);
    memcpy(resp->body, hdr_end + 4, blen);
    resp->body[blen] = '\0';
    resp->body_len = blen;
    free(buf);
    char te[64];
    if (h_resp_header(resp, "Transfer-Encoding", te, sizeof(te)) == 0 &&
        strcasecmp(te, "chunked") == 0 &&
        dechunk(resp->body, resp->body_len, &resp->body_len) < 0) {
        h_resp_free(resp);
        return -1;
    }
    return 0;
}

void h_resp_free(h_resp_t *r)
{
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

int h_resp_header(const h_resp_t *resp, const char *name, char *out, size_t len)
{
    const char *p = resp->headers ? strstr(resp->headers, "\r\n") : NULL;
    size_t nl = strlen(name);
    while (p) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1, *e;
            while (*v == ' ')
                v++;
            e = strstr(v, "\r\n");
            size_t vl = e ? (size_t)(e - v) : strlen(v);
            if (vl >= len)
                vl = len - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return 0;
        }
        p = strstr(p, "\r\n");
    }
    return -1;
}

/* ==== subscriber ==== */

struct h_sub {
    redisContext *c;
};

h_sub_t *h_sub_new(int port, const char *pattern)
{
    h_sub_t *s = calloc(1, sizeof(*s));
    redisReply *r;
    s->c = h_redis_connect(port);
    if (s->c == NULL) {
        free(s);
        return NULL;
    }
    r = redisCommand(s->c, "PSUBSCRIBE %s", pattern);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject(r);
        redisFree(s->c);
        free(s);
        return NULL;
    }
    freeReplyObject(r);
    return s;
}

int h_sub_next(h_sub_t *s, int timeout_ms, char **channel, char **msg, size_t *len)
{
    long long deadline = h_now_ms() + timeout_ms;
    for (;;) {
        void *rv = NULL;
        if (redisGetReplyFromReader(s->c, &rv) != REDIS_OK)
            return -1;
        if (rv) {
            redisReply *r = rv;
            /* ["pmessage", pattern, channel, payload] */
            if (r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
                strcmp(r->element[0]->str, "pmessage") == 0) {
                *channel = strdup(r->element[2]->str);
                *msg = malloc(r->element[3]->len + 1);
                memcpy(*msg, r->element[3]->str, r->element[3]->len);
                (*msg)[r->element[3]->len] = '\0';
                *len = r->element[3]->len;
                freeReplyObject(r);
                return 1;
            }
            freeReplyObject(r);
            continue;
        }
        long long left = deadline - h_now_ms();
        if (left <= 0)
            return 0;
        struct pollfd pfd = { .fd = s->c->fd, .events = POLLIN };
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno != EINTR)
            return -1;
        if (pr > 0 && redisBufferRead(s->c) != REDIS_OK)
            return -1;
    }
}

void h_sub_free(h_sub_t *s)
{
    if (s == NULL)
        return;
    redisFree(s->c);
    free(s);
}
