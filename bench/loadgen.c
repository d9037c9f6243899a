/*
 * loadgen — holds N SSE or WebSocket connections to one server and measures
 * how fast it fans one published event out to all of them.
 *
 * Design. One process may hold at most 20000 open files on these machines
 * (a hard limit that root cannot raise), so the parent forks W worker
 * processes, each holding a slice of the connections on its own epoll loop,
 * and keeps every shared number in one MAP_SHARED region created before the
 * fork: the parent writes commands and the publish time of each round, the
 * workers write their counters and one latency slot per (round, connection).
 * No pipes, no messages: the parent polls the counters.
 *
 * Connections bind their source address before connecting, spread over
 * 127.0.0.1 .. 127.0.0.K with IP_BIND_ADDRESS_NO_PORT, so the ephemeral port
 * is chosen per 4-tuple and far more than 60k connections fit.
 *
 * Every round the parent publishes one event by an HTTP POST whose body is
 * {"data":{"t":<send time, µs of CLOCK_MONOTONIC>,"seq":<round>}} (the same
 * body for flagcast's publisher, Nchan's publisher location and the floor).
 * Workers do not parse SSE or JSON: they scan the received bytes (the payload
 * bytes, for WebSocket) for `"t":` followed by a number, and a number equal to
 * a published round's t is a delivery of that round. Its latency is the
 * receive time minus t, so the largest latency of a round is the fan-out
 * completion time (publish to last delivery). The number may be quoted, since
 * some renderers turn data values into strings.
 *
 * RSS per connection: the VmRSS sum of the given server pids before the
 * workers connect and after every connection is up and a settle time passed,
 * divided by N. The close test closes K connections at once, then reports
 * how long the servers took to release K file descriptors (reaping) and the
 * CPU time they used over the next 10 s (utime+stime from /proc/<pid>/stat).
 *
 * Output: human lines on stderr, and key=value lines on stdout for scripts.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define LG_MAX_WORKERS 64
#define LG_MAX_ROUNDS  256
#define LG_MAX_PIDS    64
#define LG_MAX_URLS    16
#define LG_TAIL        32      /* bytes of a split `"t":<digits>` carried between reads */
#define LG_RBUF        65536

enum { CMD_RUN = 0, CMD_CLOSE = 1, CMD_STOP = 2 };
enum { MODE_SSE = 0, MODE_WS = 1 };

/* ==== shared state (one MAP_SHARED region, written before fork) ==== */

typedef struct {
    long connected;            /* handshakes done */
    long failed;               /* connect/handshake failures */
    long dropped;              /* closed by the server after connecting */
    long closed;               /* closed by us in the close test */
    int  close_done;           /* the close command was carried out */
    long delivered[LG_MAX_ROUNDS];
    char err[160];             /* first error, for the report */
} lg_wstat_t;

typedef struct {
    int      cmd;
    long     close_per_worker[LG_MAX_WORKERS];
    uint64_t round_t[LG_MAX_ROUNDS];       /* t of round r; 0 = not published */
    lg_wstat_t w[LG_MAX_WORKERS];
} lg_shared_t;

static lg_shared_t *sh;
static uint32_t *lat;          /* lat[r * nconns + i]: latency µs + 1, 0 = none */

/* ==== options ==== */

static struct {
    int   mode;
    char  host[LG_MAX_URLS][64];
    int   port[LG_MAX_URLS];
    char  path[LG_MAX_URLS][256];
    int   nurls;
    char  pub_host[64];
    int   pub_port;
    char  pub_path[512];
    const char *token;
    const char *ws_subscribe;
    const char *ws_protocol;
    long  nconns;
    int   workers;
    long  per_worker;
    int   src_ips;
    int   rounds;
    int   warmup;
    long  gap_ms;
    long  round_timeout_ms;
    long  settle_ms;
    long  connect_timeout_ms;
    int   inflight;
    long  close_n;
    long  close_watch_s;
    pid_t pids[LG_MAX_PIDS];
    int   npids;
    long  hold_s;
    const char *label;
} opt;

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {}
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

/* "http://host:port/path" (or ws://) → parts. @return 0 on success, -1 on failure. */
static int parse_url(const char *url, char *host, size_t hostlen, int *port,
                     char *path, size_t pathlen)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    const char *slash = strchr(p, '/');
    const char *hend = slash ? slash : p + strlen(p);
    const char *colon = memchr(p, ':', (size_t)(hend - p));
    if (!colon || (size_t)(colon - p) >= hostlen || colon == p)
        return -1;
    memcpy(host, p, (size_t)(colon - p));
    host[colon - p] = '\0';
    char *end;
    long v = strtol(colon + 1, &end, 10);
    if (end != hend || v <= 0 || v > 65535)
        return -1;
    *port = (int)v;
    snprintf(path, pathlen, "%s", slash ? slash : "/");
    return 0;
}

/* ==== /proc readers (server pids) ==== */

static long proc_rss_kb(pid_t pid)
{
    char fn[64], line[256];
    snprintf(fn, sizeof fn, "/proc/%d/status", (int)pid);
    FILE *f = fopen(fn, "r");
    if (!f)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

static long proc_cpu_ticks(pid_t pid)
{
    char fn[64], buf[1024];
    snprintf(fn, sizeof fn, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(fn, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');   /* comm may hold spaces */
    if (!p)
        return -1;
    /* fields after ')': state(3) ... utime(14) stime(15) */
    unsigned long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (long)(ut + st);
}

static long proc_nfds(pid_t pid)
{
    char fn[64];
    snprintf(fn, sizeof fn, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(fn);
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static long sum_pids(long (*fn)(pid_t))
{
    long s = 0;
    for (int i = 0; i < opt.npids; i++) {
        long v = fn(opt.pids[i]);
        if (v < 0)
            return -1;
        s += v;
    }
    return s;
}

/* ==== worker: one epoll loop over a slice of connections ==== */

enum { ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_DEAD };

typedef struct conn {
    int      fd;
    uint8_t  st;
    uint8_t  tail_len;
    uint8_t  ws_hlen;          /* WS frame header bytes collected */
    uint8_t  ws_inpay;         /* 1 while reading a payload */
    uint8_t  ws_op;
    uint8_t  ctl_len;
    uint64_t ws_remain;
    char     tail[LG_TAIL];
    uint8_t  ws_hdr[14];
    char    *hbuf;             /* response header bytes during the handshake */
    uint16_t hlen;
    char    *ctl;              /* ping payload being collected (≤125) */
} conn_t;

static conn_t *conns;
static long    c_lo, c_n;      /* global index of conns[0], count */
static int     wid;
static int     ep;
static char    scratch[LG_RBUF + LG_TAIL];
static lg_wstat_t *me;

static void werr(const char *fmt, ...)
{
    if (me->err[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(me->err, sizeof me->err, fmt, ap);
    va_end(ap);
}

static void conn_kill(conn_t *c, int by_server)
{
    if (c->st == ST_DEAD)
        return;
    if (c->st == ST_OPEN && by_server)
        __atomic_add_fetch(&me->dropped, 1, __ATOMIC_RELAXED);
    else if (c->st != ST_OPEN) {
        __atomic_add_fetch(&me->failed, 1, __ATOMIC_RELAXED);
    }
    close(c->fd);
    c->fd = -1;
    c->st = ST_DEAD;
    free(c->hbuf);
    c->hbuf = NULL;
    free(c->ctl);
    c->ctl = NULL;
}

static void record(conn_t *c, uint64_t v, uint64_t now)
{
    for (int r = 0; r < opt.rounds + opt.warmup; r++) {
        uint64_t t = __atomic_load_n(&sh->round_t[r], __ATOMIC_ACQUIRE);
        if (t == v && t != 0) {
            uint32_t *slot = &lat[(size_t)r * (size_t)opt.nconns + (size_t)(c_lo + (c - conns))];
            if (*slot == 0) {
                uint64_t d = now > v ? now - v : 0;
                *slot = d >= UINT32_MAX - 1 ? UINT32_MAX - 1 : (uint32_t)d + 1;
                __atomic_add_fetch(&me->delivered[r], 1, __ATOMIC_RELAXED);
            }
            return;
        }
    }
}

/* Scans event payload bytes for `"t":` [spaces] ["] digits. A match split
 * across reads is carried in c->tail. */
static void scan(conn_t *c, const char *p, size_t n, uint64_t now)
{
    char *s = scratch;
    size_t m = c->tail_len;
    memcpy(s, c->tail, m);
    memcpy(s + m, p, n);
    m += n;
    size_t i = 0, keep = m > 3 ? m - 3 : 0;
    while (i + 4 <= m) {
        char *q = memmem(s + i, m - i, "\"t\":", 4);
        if (!q)
            break;
        size_t j = (size_t)(q - s) + 4;
        while (j < m && s[j] == ' ')
            j++;
        if (j < m && s[j] == '"')
            j++;
        size_t d0 = j;
        uint64_t v = 0;
        while (j < m && isdigit((unsigned char)s[j]) && j - d0 < 20)
            v = v * 10 + (uint64_t)(s[j++] - '0');
        if (j == m) {                      /* may continue in the next read */
            keep = (size_t)(q - s);
            i = m;
            break;
        }
        if (j > d0)
            record(c, v, now);
        i = j;
        keep = i > keep ? i : keep;
    }
    if (keep < i && i < m)
        keep = i;
    size_t rest = m - keep;
    if (rest > LG_TAIL)
        rest = 0;                          /* junk: too long to be a number */
    memcpy(c->tail, s + keep, rest);
    c->tail_len = (uint8_t)rest;
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *q = p;
    while (n) {
        ssize_t w = send(fd, q, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {         /* tiny writes; a full buffer here is rare */
                struct timespec ts = { 0, 100000 };
                nanosleep(&ts, NULL);
                continue;
            }
            return -1;
        }
        q += w;
        n -= (size_t)w;
    }
    return 0;
}

/* A masked client frame (RFC 6455 §5.3). */
static int ws_send(conn_t *c, int op, const char *p, size_t n)
{
    char f[14 + 1024];
    if (n > 1024)
        return -1;
    size_t h = 0;
    f[h++] = (char)(0x80 | op);
    if (n < 126)
        f[h++] = (char)(0x80 | n);
    else {
        f[h++] = (char)(0x80 | 126);
        f[h++] = (char)(n >> 8);
        f[h++] = (char)(n & 0xff);
    }
    uint8_t key[4] = { 0x37, 0xfa, 0x21, 0x3d };
    memcpy(f + h, key, 4);
    h += 4;
    for (size_t i = 0; i < n; i++)
        f[h + i] = (char)(p[i] ^ key[i & 3]);
    return send_all(c->fd, f, h + n);
}

static void ws_feed(conn_t *c, const char *p, size_t n, uint64_t now)
{
    while (n) {
        if (!c->ws_inpay) {
            c->ws_hdr[c->ws_hlen++] = (uint8_t)*p++;
            n--;
            if (c->ws_hlen < 2)
                continue;
            uint8_t l7 = c->ws_hdr[1] & 0x7f;
            size_t need = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + ((c->ws_hdr[1] & 0x80) ? 4 : 0);
            if (c->ws_hlen < need)
                continue;
            uint64_t len = l7;
            if (l7 == 126)
                len = ((uint64_t)c->ws_hdr[2] << 8) | c->ws_hdr[3];
            else if (l7 == 127) {
                len = 0;
                for (int i = 0; i < 8; i++)
                    len = (len << 8) | c->ws_hdr[2 + i];
            }
            c->ws_op = c->ws_hdr[0] & 0x0f;
            c->ws_remain = len;
            c->ws_hlen = 0;
            c->ws_inpay = 1;
            c->ctl_len = 0;
            if (c->ws_op == 0x9 && !c->ctl)
                c->ctl = malloc(128);
        } else {
            size_t k = n < c->ws_remain ? n : (size_t)c->ws_remain;
            if (c->ws_op <= 0x2)
                scan(c, p, k, now);
            else if (c->ws_op == 0x9 && c->ctl && c->ctl_len + k <= 125) {
                memcpy(c->ctl + c->ctl_len, p, k);
                c->ctl_len = (uint8_t)(c->ctl_len + k);
            }
            p += k;
            n -= k;
            c->ws_remain -= k;
        }
        if (c->ws_inpay && c->ws_remain == 0) {
            c->ws_inpay = 0;
            if (c->ws_op == 0x9) {
                ws_send(c, 0xA, c->ctl ? c->ctl : "", c->ctl_len);
            } else if (c->ws_op == 0x8) {
                conn_kill(c, 1);
                return;
            }
        }
    }
}

static void body_feed(conn_t *c, const char *p, size_t n, uint64_t now)
{
    if (opt.mode == MODE_WS)
        ws_feed(c, p, n, now);
    else
        scan(c, p, n, now);
}

static int conn_start(conn_t *c, long gi)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        werr("socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in src = { .sin_family = AF_INET };
    src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(gi % opt.src_ips));
    if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
        werr("bind 127.0.0.%ld: %s", 1 + gi % opt.src_ips, strerror(errno));
        close(fd);
        return -1;
    }
    int u = (int)(gi % opt.nurls);
    struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port[u]) };
    inet_pton(AF_INET, opt.host[u], &dst.sin_addr);
    if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0 && errno != EINPROGRESS) {
        werr("connect: %s", strerror(errno));
        close(fd);
        return -1;
    }
    c->fd = fd;
    c->st = ST_CONNECTING;
    struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    return 0;
}

static void conn_send_request(conn_t *c)
{
    char req[1024];
    int n, u = (int)((c_lo + (c - conns)) % opt.nurls);
    if (opt.mode == MODE_WS) {
        char proto[160] = "";
        if (opt.ws_protocol && *opt.ws_protocol)
            snprintf(proto, sizeof proto, "Sec-WebSocket-Protocol: %s\r\n", opt.ws_protocol);
        n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s\r\n",
                     opt.path[u], opt.host[u], opt.port[u], proto);
    } else {
        n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n"
                     "Cache-Control: no-cache\r\n\r\n",
                     opt.path[u], opt.host[u], opt.port[u]);
    }
    if (send_all(c->fd, req, (size_t)n) < 0) {
        werr("send request: %s", strerror(errno));
        conn_kill(c, 0);
        return;
    }
    c->st = ST_HANDSHAKE;
    c->hbuf = malloc(2048);
    c->hlen = 0;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_handshake(conn_t *c, const char *p, size_t n, uint64_t now)
{
    size_t room = 2047 - c->hlen;
    size_t k = n < room ? n : room;
    memcpy(c->hbuf + c->hlen, p, k);
    c->hlen = (uint16_t)(c->hlen + k);
    c->hbuf[c->hlen] = '\0';
    char *e = strstr(c->hbuf, "\r\n\r\n");
    if (!e) {
        if (c->hlen >= 2047) {
            werr("response headers too long");
            conn_kill(c, 0);
        }
        return;
    }
    int status = 0;
    if (sscanf(c->hbuf, "HTTP/1.%*d %d", &status) != 1 ||
        status != (opt.mode == MODE_WS ? 101 : 200)) {
        char line[80];
        snprintf(line, sizeof line, "%.*s", (int)strcspn(c->hbuf, "\r\n"), c->hbuf);
        werr("handshake refused: %s", line);
        conn_kill(c, 0);
        return;
    }
    size_t hdr = (size_t)(e + 4 - c->hbuf);
    /* bytes after the headers that arrived in this read */
    size_t before = c->hlen - k;            /* header bytes from earlier reads */
    size_t used = hdr > before ? hdr - before : 0;
    free(c->hbuf);
    c->hbuf = NULL;
    c->st = ST_OPEN;
    if (opt.mode == MODE_WS && opt.ws_subscribe && *opt.ws_subscribe)
        if (ws_send(c, 0x1, opt.ws_subscribe, strlen(opt.ws_subscribe)) < 0) {
            werr("ws subscribe: %s", strerror(errno));
            conn_kill(c, 0);
            return;
        }
    __atomic_add_fetch(&me->connected, 1, __ATOMIC_RELEASE);
    if (used < n)
        body_feed(c, p + used, n - used, now);
}

static void conn_readable(conn_t *c)
{
    static char rbuf[LG_RBUF];
    ssize_t r = recv(c->fd, rbuf, sizeof rbuf, 0);
    uint64_t now = mono_us();
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
        if (c->st != ST_OPEN)
            werr("server closed during handshake: %s", r == 0 ? "EOF" : strerror(errno));
        conn_kill(c, 1);
        return;
    }
    if (r < 0)
        return;
    if (c->st == ST_HANDSHAKE)
        conn_handshake(c, rbuf, (size_t)r, now);
    else
        body_feed(c, rbuf, (size_t)r, now);
}

static void worker_main(void)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    me = &sh->w[wid];
    ep = epoll_create1(EPOLL_CLOEXEC);
    conns = calloc((size_t)c_n, sizeof *conns);
    if (!conns || ep < 0) {
        werr("out of memory");
        __atomic_add_fetch(&me->failed, c_n, __ATOMIC_RELEASE);
        _exit(1);
    }
    long next = 0, pending = 0;
    uint64_t started = mono_us();
    struct epoll_event evs[1024];
    int closed_cmd = 0;
    for (;;) {
        int cmd = __atomic_load_n(&sh->cmd, __ATOMIC_ACQUIRE);
        if (cmd == CMD_STOP)
            break;
        if (cmd == CMD_CLOSE && !closed_cmd) {
            closed_cmd = 1;
            long want = sh->close_per_worker[wid], done = 0;
            for (long i = 0; i < c_n && done < want; i++)
                if (conns[i].st == ST_OPEN) {
                    close(conns[i].fd);
                    conns[i].fd = -1;
                    conns[i].st = ST_DEAD;
                    done++;
                }
            __atomic_store_n(&me->closed, done, __ATOMIC_RELEASE);
            __atomic_store_n(&me->close_done, 1, __ATOMIC_RELEASE);
        }
        /* keep at most `inflight` handshakes under way */
        while (next < c_n && pending < opt.inflight) {
            conn_t *c = &conns[next];
            if (conn_start(c, c_lo + next) < 0) {
                c->st = ST_DEAD;
                c->fd = -1;
                __atomic_add_fetch(&me->failed, 1, __ATOMIC_RELAXED);
            } else
                pending++;
            next++;
        }
        int n = epoll_wait(ep, evs, 1024, 50);
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (c->st == ST_DEAD)
                continue;
            uint8_t st0 = c->st;
            if (c->st == ST_CONNECTING) {
                int err = 0;
                socklen_t el = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err) {
                    werr("connect: %s", strerror(err));
                    conn_kill(c, 0);
                } else
                    conn_send_request(c);
            } else if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
                conn_readable(c);
            if (st0 != ST_OPEN && (c->st == ST_OPEN || c->st == ST_DEAD))
                pending--;
        }
        if (next < c_n || pending > 0) {
            if (mono_us() - started > (uint64_t)opt.connect_timeout_ms * 1000u) {
                werr("connect timeout: %ld handshakes unfinished", (c_n - next) + pending);
                for (long i = 0; i < c_n; i++)
                    if (conns[i].st == ST_CONNECTING || conns[i].st == ST_HANDSHAKE)
                        conn_kill(&conns[i], 0);
                __atomic_add_fetch(&me->failed, c_n - next, __ATOMIC_RELAXED);
                next = c_n;
                pending = 0;
            }
        }
    }
    _exit(0);
}

/* ==== parent ==== */

static long total(size_t off)
{
    long s = 0;
    for (int i = 0; i < opt.workers; i++)
        s += __atomic_load_n((long *)((char *)&sh->w[i] + off), __ATOMIC_ACQUIRE);
    return s;
}
#define TOTAL(field) total(offsetof(lg_wstat_t, field))

static long delivered(int r)
{
    long s = 0;
    for (int i = 0; i < opt.workers; i++)
        s += __atomic_load_n(&sh->w[i].delivered[r], __ATOMIC_ACQUIRE);
    return s;
}

/* POSTs one event; t is taken right before the request is written. */
static int publish(int seq, uint64_t *t_out)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)opt.pub_port) };
    inet_pton(AF_INET, opt.pub_host, &a.sin_addr);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        fprintf(stderr, "loadgen: publish connect %s:%d: %s\n", opt.pub_host, opt.pub_port, strerror(errno));
        close(fd);
        return -1;
    }
    struct timeval tv = { 10, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char auth[600] = "";
    if (opt.token && *opt.token)
        snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", opt.token);
    uint64_t t = mono_us();
    char body[128], req[2048];
    int bl = snprintf(body, sizeof body, "{\"data\":{\"t\":%llu,\"seq\":%d}}", (unsigned long long)t, seq);
    int n = snprintf(req, sizeof req,
                     "POST %s HTTP/1.1\r\nHost: %s:%d\r\n%sContent-Type: application/json\r\n"
                     "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
                     opt.pub_path, opt.pub_host, opt.pub_port, auth, bl, body);
    __atomic_store_n(&sh->round_t[seq], t, __ATOMIC_RELEASE);
    *t_out = t;
    if (send_all(fd, req, (size_t)n) < 0) {
        fprintf(stderr, "loadgen: publish send: %s\n", strerror(errno));
        close(fd);
        return -1;
    }
    char resp[2048];
    size_t got = 0;
    while (got < sizeof resp - 1) {
        ssize_t r = recv(fd, resp + got, sizeof resp - 1 - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
        resp[got] = '\0';
        if (strstr(resp, "\r\n\r\n"))
            break;
    }
    resp[got] = '\0';
    close(fd);
    int status = 0;
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1 || status < 200 || status > 299) {
        fprintf(stderr, "loadgen: publish refused: %.*s\n", (int)strcspn(resp, "\r\n"), resp);
        return -1;
    }
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void usage(FILE *f)
{
    fprintf(f,
"usage: bench-loadgen --url URL --publish URL [options]\n"
"Holds N SSE or WebSocket connections, publishes events, reports fan-out timings.\n"
"  --url URL[,URL..]     subscriber URL(s), http://127.0.0.1:PORT/PATH (required);\n"
"                        connection i goes to URL i mod count (several servers)\n"
"  --ws                  WebSocket instead of SSE (URL path is the upgrade path)\n"
"  --ws-subscribe JSON   text frame sent after the handshake (default none)\n"
"  --ws-protocol NAME    Sec-WebSocket-Protocol to ask for (default none)\n"
"  --publish URL         POST URL that publishes one event (required unless --rounds 0)\n"
"  --token TOKEN         Authorization: Bearer TOKEN on publishes\n"
"  --connections N       connections to hold (default 1000)\n"
"  --workers W           worker processes (default: N / per-worker, rounded up)\n"
"  --per-worker N        most connections per worker (default 18000; fd limit 20000)\n"
"  --src-ips K           spread sources over 127.0.0.1..127.0.0.K (default 8)\n"
"  --inflight N          handshakes under way per worker (default 256)\n"
"  --connect-timeout MS  for all connections to be up (default 120000)\n"
"  --settle MS           wait after connecting before RSS is read (default 2000)\n"
"  --rounds R            measured publishes (default 5; 0 = connect and measure RSS)\n"
"  --warmup W            unmeasured publishes first, each must reach all (default 1)\n"
"  --gap MS              pause between rounds (default 300)\n"
"  --round-timeout MS    wait for a round's deliveries (default 10000)\n"
"  --pids P1,P2,..       server pids for RSS, fd and CPU readings\n"
"  --close K             then close K connections at once and watch the servers\n"
"  --close-watch S       seconds of server CPU to sum after closing (default 10)\n"
"  --hold S              keep the connections S seconds before exiting (default 0)\n"
"  --label NAME          name printed in the result line\n"
"  --help\n"
"Output: key=value lines on stdout; progress on stderr.\n");
}

int main(int argc, char **argv)
{
    opt.nconns = 1000;
    opt.per_worker = 18000;
    opt.src_ips = 8;
    opt.inflight = 256;
    opt.connect_timeout_ms = 120000;
    opt.settle_ms = 2000;
    opt.rounds = 5;
    opt.warmup = 1;
    opt.gap_ms = 300;
    opt.round_timeout_ms = 10000;
    opt.close_watch_s = 10;
    opt.label = "run";
    const char *url = NULL, *pub = NULL;

    static const struct option lo[] = {
        { "url", 1, 0, 'u' }, { "ws", 0, 0, 'W' }, { "ws-subscribe", 1, 0, 'S' },
        { "ws-protocol", 1, 0, 'P' }, { "publish", 1, 0, 'p' }, { "token", 1, 0, 'T' },
        { "connections", 1, 0, 'n' }, { "workers", 1, 0, 'w' }, { "per-worker", 1, 0, 'm' },
        { "src-ips", 1, 0, 's' }, { "inflight", 1, 0, 'i' }, { "connect-timeout", 1, 0, 'C' },
        { "settle", 1, 0, 'e' }, { "rounds", 1, 0, 'r' }, { "warmup", 1, 0, 'a' },
        { "gap", 1, 0, 'g' }, { "round-timeout", 1, 0, 'R' }, { "pids", 1, 0, 'd' },
        { "close", 1, 0, 'c' }, { "close-watch", 1, 0, 'x' }, { "hold", 1, 0, 'H' },
        { "label", 1, 0, 'l' }, { "help", 0, 0, 'h' }, { 0, 0, 0, 0 }
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'u': url = optarg; break;
        case 'W': opt.mode = MODE_WS; break;
        case 'S': opt.ws_subscribe = optarg; break;
        case 'P': opt.ws_protocol = optarg; break;
        case 'p': pub = optarg; break;
        case 'T': opt.token = optarg; break;
        case 'n': opt.nconns = atol(optarg); break;
        case 'w': opt.workers = atoi(optarg); break;
        case 'm': opt.per_worker = atol(optarg); break;
        case 's': opt.src_ips = atoi(optarg); break;
        case 'i': opt.inflight = atoi(optarg); break;
        case 'C': opt.connect_timeout_ms = atol(optarg); break;
        case 'e': opt.settle_ms = atol(optarg); break;
        case 'r': opt.rounds = atoi(optarg); break;
        case 'a': opt.warmup = atoi(optarg); break;
        case 'g': opt.gap_ms = atol(optarg); break;
        case 'R': opt.round_timeout_ms = atol(optarg); break;
        case 'd': {
            char *s = optarg, *end;
            while (*s && opt.npids < LG_MAX_PIDS) {
                long v = strtol(s, &end, 10);
                if (end == s || v <= 0)
                    die("--pids: bad pid list '%s'", optarg);
                opt.pids[opt.npids++] = (pid_t)v;
                s = *end == ',' ? end + 1 : end;
                if (*end && *end != ',')
                    die("--pids: bad pid list '%s'", optarg);
            }
            break;
        }
        case 'c': opt.close_n = atol(optarg); break;
        case 'x': opt.close_watch_s = atol(optarg); break;
        case 'H': opt.hold_s = atol(optarg); break;
        case 'l': opt.label = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc)
        die("unexpected argument '%s' (see --help)", argv[optind]);
    if (!url)
        die("--url is required (see --help)");
    {
        char *list = strdup(url), *save = NULL;
        for (char *u = strtok_r(list, ",", &save); u; u = strtok_r(NULL, ",", &save)) {
            if (opt.nurls == LG_MAX_URLS)
                die("--url: at most %d URLs", LG_MAX_URLS);
            if (parse_url(u, opt.host[opt.nurls], sizeof opt.host[0], &opt.port[opt.nurls],
                          opt.path[opt.nurls], sizeof opt.path[0]) < 0)
                die("--url: expected http://HOST:PORT/PATH, got '%s'", u);
            opt.nurls++;
        }
        free(list);
        if (!opt.nurls)
            die("--url is empty");
    }
    if (opt.rounds < 0 || opt.warmup < 0 || opt.rounds + opt.warmup > LG_MAX_ROUNDS)
        die("--rounds + --warmup must be 0..%d", LG_MAX_ROUNDS);
    if (opt.rounds + opt.warmup > 0) {
        if (!pub)
            die("--publish is required when publishing (see --help)");
        if (parse_url(pub, opt.pub_host, sizeof opt.pub_host, &opt.pub_port,
                      opt.pub_path, sizeof opt.pub_path) < 0)
            die("--publish: expected http://HOST:PORT/PATH, got '%s'", pub);
    }
    if (opt.nconns < 1 || opt.nconns > 2000000)
        die("--connections must be 1..2000000");
    if (opt.per_worker < 1 || opt.per_worker > 19500)
        die("--per-worker must be 1..19500 (a process holds at most 20000 files)");
    if (opt.workers == 0)
        opt.workers = (int)((opt.nconns + opt.per_worker - 1) / opt.per_worker);
    if (opt.workers < 1 || opt.workers > LG_MAX_WORKERS || opt.workers > opt.nconns)
        die("--workers must be 1..%d and at most --connections", LG_MAX_WORKERS);
    if ((opt.nconns + opt.workers - 1) / opt.workers > opt.per_worker)
        die("%ld connections over %d workers exceeds --per-worker %ld",
            opt.nconns, opt.workers, opt.per_worker);
    if (opt.src_ips < 1 || opt.src_ips > 254)
        die("--src-ips must be 1..254");
    if (opt.inflight < 1)
        die("--inflight must be positive");
    if (opt.close_n < 0 || opt.close_n > opt.nconns)
        die("--close must be 0..--connections");
    signal(SIGPIPE, SIG_IGN);
    int nrounds = opt.rounds + opt.warmup;

    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    size_t latn = (size_t)(nrounds ? nrounds : 1) * (size_t)opt.nconns;
    lat = mmap(NULL, latn * sizeof *lat, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED || lat == MAP_FAILED)
        die("mmap: %s", strerror(errno));

    long rss0 = opt.npids ? sum_pids(proc_rss_kb) : -1;
    if (opt.npids && rss0 < 0)
        die("cannot read /proc/<pid>/status of the given --pids");

    fprintf(stderr, "loadgen[%s]: %ld %s connections to %s over %d worker(s), sources 127.0.0.1-%d\n",
            opt.label, opt.nconns, opt.mode == MODE_WS ? "WS" : "SSE", url, opt.workers, opt.src_ips);
    pid_t kids[LG_MAX_WORKERS];
    long per = opt.nconns / opt.workers, extra = opt.nconns % opt.workers, lo0 = 0;
    uint64_t t_conn = mono_us();
    for (int i = 0; i < opt.workers; i++) {
        long cnt = per + (i < extra ? 1 : 0);
        pid_t k = fork();
        if (k < 0)
            die("fork: %s", strerror(errno));
        if (k == 0) {
            wid = i;
            c_lo = lo0;
            c_n = cnt;
            worker_main();
        }
        kids[i] = k;
        lo0 += cnt;
    }

    int rc = 0;
    /* ---- wait for the connections ---- */
    long last = -1;
    uint64_t last_print = mono_us();
    for (;;) {
        long up = TOTAL(connected), bad = TOTAL(failed);
        if (up + bad >= opt.nconns)
            break;
        uint64_t now = mono_us();
        if (now - last_print > 2000000 && up != last) {
            fprintf(stderr, "loadgen[%s]: %ld connected\n", opt.label, up);
            last_print = now;
            last = up;
        }
        sleep_ms(20);
    }
    double connect_s = (double)(mono_us() - t_conn) / 1e6;
    long up = TOTAL(connected), bad = TOTAL(failed);
    printf("label=%s connections=%ld connected=%ld failed=%ld connect_s=%.2f\n",
           opt.label, opt.nconns, up, bad, connect_s);
    fprintf(stderr, "loadgen[%s]: %ld connected, %ld failed in %.2f s\n", opt.label, up, bad, connect_s);
    if (bad) {
        for (int i = 0; i < opt.workers; i++)
            if (sh->w[i].err[0]) {
                fprintf(stderr, "loadgen[%s]: first error: %s\n", opt.label, sh->w[i].err);
                break;
            }
        rc = 1;
        goto out;
    }
    sleep_ms(opt.settle_ms);
    if (opt.npids) {
        long rss1 = sum_pids(proc_rss_kb);
        double per_conn = (double)(rss1 - rss0) * 1024.0 / (double)opt.nconns;
        printf("rss_before_kb=%ld rss_after_kb=%ld rss_per_conn_b=%.0f\n", rss0, rss1, per_conn);
        fprintf(stderr, "loadgen[%s]: server RSS %ld -> %ld KB, %.0f B per connection\n",
                opt.label, rss0, rss1, per_conn);
    }

    /* ---- rounds ---- */
    double *comp = calloc((size_t)(opt.rounds + 1), sizeof *comp);
    int ncomp = 0;
    long expected = up;
    for (int r = 0; r < nrounds; r++) {
        uint64_t t;
        long want = expected - TOTAL(dropped);
        if (publish(r, &t) < 0) {
            rc = 1;
            goto out;
        }
        uint64_t dl = t + (uint64_t)opt.round_timeout_ms * 1000u;
        while (delivered(r) < want && mono_us() < dl) {
            sleep_ms(1);
            want = expected - TOTAL(dropped);
        }
        long got = delivered(r);
        uint32_t mx = 0;
        for (long i = 0; i < opt.nconns; i++) {
            uint32_t v = lat[(size_t)r * (size_t)opt.nconns + (size_t)i];
            if (v > mx)
                mx = v;
        }
        double ms = mx ? (double)(mx - 1) / 1000.0 : 0;
        int warm = r < opt.warmup;
        printf("round=%d%s delivered=%ld expected=%ld completion_ms=%.2f\n",
               r - opt.warmup + 1, warm ? " warmup=1" : "", got, want, ms);
        fprintf(stderr, "loadgen[%s]: %s %d: %ld/%ld delivered, last after %.2f ms\n", opt.label,
                warm ? "warmup" : "round", warm ? r + 1 : r - opt.warmup + 1, got, want, ms);
        if (got < want) {
            fprintf(stderr, "loadgen[%s]: round timed out with %ld of %ld deliveries\n",
                    opt.label, got, want);
            rc = 1;
        }
        if (!warm && got == want)
            comp[ncomp++] = ms;
        sleep_ms(opt.gap_ms);
    }
    if (opt.rounds > 0 && ncomp > 0) {
        size_t nl = 0;
        uint32_t *all = malloc((size_t)opt.rounds * (size_t)opt.nconns * sizeof *all);
        for (int r = opt.warmup; r < nrounds; r++)
            for (long i = 0; i < opt.nconns; i++) {
                uint32_t v = lat[(size_t)r * (size_t)opt.nconns + (size_t)i];
                if (v)
                    all[nl++] = v - 1;
            }
        qsort(all, nl, sizeof *all, cmp_u32);
        qsort(comp, (size_t)ncomp, sizeof *comp, cmp_d);
        double med = ncomp % 2 ? comp[ncomp / 2] : (comp[ncomp / 2 - 1] + comp[ncomp / 2]) / 2;
        double p50 = all[nl / 2] / 1000.0, p99 = all[(size_t)((double)nl * 0.99)] / 1000.0;
        double mxl = all[nl - 1] / 1000.0;
        double dps = (double)opt.nconns / (med / 1000.0);
        printf("result label=%s conns=%ld rounds=%d completion_med_ms=%.2f completion_min_ms=%.2f "
               "completion_max_ms=%.2f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f deliveries_per_s=%.0f\n",
               opt.label, opt.nconns, ncomp, med, comp[0], comp[ncomp - 1], p50, p99, mxl, dps);
        fprintf(stderr, "loadgen[%s]: fan-out to %ld: median %.2f ms (min %.2f, max %.2f) over %d rounds; "
                "latency p50 %.2f p99 %.2f max %.2f ms; %.0f deliveries/s\n",
                opt.label, opt.nconns, med, comp[0], comp[ncomp - 1], ncomp, p50, p99, mxl, dps);
        free(all);
    }
    free(comp);

    /* ---- close test ---- */
    if (opt.close_n > 0) {
        long left = opt.close_n;
        for (int i = 0; i < opt.workers; i++) {
            long share = opt.close_n / opt.workers + (i < opt.close_n % opt.workers ? 1 : 0);
            sh->close_per_worker[i] = share < left ? share : left;
            left -= sh->close_per_worker[i];
        }
        long fd0 = opt.npids ? sum_pids(proc_nfds) : -1;
        long cpu0 = opt.npids ? sum_pids(proc_cpu_ticks) : -1;
        uint64_t tc = mono_us();
        __atomic_store_n(&sh->cmd, CMD_CLOSE, __ATOMIC_RELEASE);
        for (int i = 0; i < opt.workers; i++)
            while (!__atomic_load_n(&sh->w[i].close_done, __ATOMIC_ACQUIRE))
                sleep_ms(1);
        long nclosed = TOTAL(closed);
        double reap_ms = -1;
        if (opt.npids) {
            uint64_t dl = tc + (uint64_t)opt.close_watch_s * 1000000u;
            while (mono_us() < dl) {
                long fdn = sum_pids(proc_nfds);
                if (fdn >= 0 && fd0 - fdn >= nclosed) {
                    reap_ms = (double)(mono_us() - tc) / 1000.0;
                    break;
                }
                sleep_ms(5);
            }
            while (mono_us() < dl)
                sleep_ms(20);
            long cpu1 = sum_pids(proc_cpu_ticks);
            double cpu_s = (double)(cpu1 - cpu0) / (double)sysconf(_SC_CLK_TCK);
            printf("close conns=%ld reap_ms=%.0f cpu_s=%.2f over_s=%ld cpu_pct=%.1f\n", nclosed,
                   reap_ms, cpu_s, opt.close_watch_s, 100.0 * cpu_s / (double)opt.close_watch_s);
            fprintf(stderr, "loadgen[%s]: closed %ld: servers released them in %s%.0f ms; "
                    "server CPU %.2f s over %ld s (%.1f%% of a core)\n", opt.label, nclosed,
                    reap_ms < 0 ? "NOT within the watch, " : "", reap_ms, cpu_s,
                    opt.close_watch_s, 100.0 * cpu_s / (double)opt.close_watch_s);
            if (reap_ms < 0)
                rc = 1;
        }
    }
    if (opt.hold_s > 0)
        sleep_ms(opt.hold_s * 1000);
    if (TOTAL(dropped) > 0)
        fprintf(stderr, "loadgen[%s]: %ld connections were closed by the server\n",
                opt.label, TOTAL(dropped));
    printf("dropped=%ld\n", TOTAL(dropped));

out:
    __atomic_store_n(&sh->cmd, CMD_STOP, __ATOMIC_RELEASE);
    for (int i = 0; i < opt.workers; i++) {
        int st;
        uint64_t dl = mono_us() + 5000000u;
        while (waitpid(kids[i], &st, WNOHANG) == 0) {
            if (mono_us() > dl) {
                kill(kids[i], SIGKILL);
                waitpid(kids[i], &st, 0);
                break;
            }
            sleep_ms(10);
        }
    }
    fflush(stdout);
    return rc;
}
