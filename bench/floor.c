/*
 * floor — the fastest SSE fan-out this machine can do: the floor that the
 * gateway and Nchan are measured against.
 *
 * One thread, one epoll loop, no framework. A GET is answered with SSE
 * response headers and the connection joins the subscriber array; a POST
 * publishes its body on a Redis channel; a message that arrives on the Redis
 * SUBSCRIBE connection is framed once (`data: <body>\n\n`) and written to
 * every subscriber with exactly one send() each.
 *
 * Why the Redis round trip: the gateway receives events from Redis pub/sub
 * and Nchan (nchan_use_redis on) does too, each after an HTTP publish. The
 * floor takes the same path (HTTP POST → Redis PUBLISH → SUBSCRIBE message →
 * fan-out), so the three differ only in what happens after the message
 * reaches the server; the extra hop costs well under a millisecond against a
 * fan-out of tens of milliseconds.
 *
 * --procs N forks N copies, each with its own SO_REUSEPORT listener and its own
 * Redis subscription (the kernel spreads connections over them by hash): the
 * floor for a server that uses every core. --procs 1 is the one-core floor.
 *
 * What the floor skips on purpose: backpressure (a send that would block is
 * counted and the rest of the frame is dropped), filters, per-connection
 * queues, keep-alives. A subscriber's EOF is seen by epoll and its socket is
 * closed at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#define FL_MAX_FDS  65536
#define FL_REQ_MAX  8192         /* request head + body */
#define FL_BODY_MAX 4096

enum { K_FREE = 0, K_LISTEN, K_REDIS, K_PENDING, K_SUB };

typedef struct {
    int   kind;
    int   sub_idx;               /* index in subs[] for K_SUB */
    char *req;                   /* request bytes for K_PENDING */
    int   req_len;
} fl_fd_t;

static fl_fd_t fds[FL_MAX_FDS];
static int    *subs;
static int     nsubs;
static int     ep;
static redisContext *rsub, *rpub;
static const char *channel = "bench";
static unsigned long short_writes, published, fanouts;
static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
    (void)sig;
    stopping = 1;
}

static void fd_close(int fd)
{
    if (fds[fd].kind == K_SUB) {
        int i = fds[fd].sub_idx;
        subs[i] = subs[--nsubs];
        fds[subs[i]].sub_idx = i;
    }
    free(fds[fd].req);
    memset(&fds[fd], 0, sizeof fds[fd]);
    close(fd);                  /* also drops it from the epoll set */
}

static void reply_close(int fd, const char *status)
{
    char r[256];
    int n = snprintf(r, sizeof r, "HTTP/1.1 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status);
    (void)!send(fd, r, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    fd_close(fd);
}

/* A complete request in fds[fd].req: GET subscribes, POST publishes. */
static void handle_request(int fd)
{
    fl_fd_t *f = &fds[fd];
    char *hend = strstr(f->req, "\r\n\r\n");
    if (!hend)
        return;
    size_t hlen = (size_t)(hend + 4 - f->req);
    if (strncmp(f->req, "GET ", 4) == 0) {
        static const char hdr[] =
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            "Cache-Control: no-cache\r\nConnection: keep-alive\r\n\r\n:ok\n\n";
        if (send(fd, hdr, sizeof hdr - 1, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)(sizeof hdr - 1)) {
            fd_close(fd);
            return;
        }
        free(f->req);
        f->req = NULL;
        f->kind = K_SUB;
        f->sub_idx = nsubs;
        subs[nsubs++] = fd;
        return;
    }
    if (strncmp(f->req, "POST ", 5) == 0) {
        const char *cl = strcasestr(f->req, "\r\ncontent-length:");
        long len = cl && cl < hend ? strtol(cl + 17, NULL, 10) : -1;
        if (len < 0 || len > FL_BODY_MAX) {
            reply_close(fd, "411 Length Required");
            return;
        }
        if ((long)(f->req_len - (int)hlen) < len)
            return;                                  /* body not all here yet */
        redisReply *r = redisCommand(rpub, "PUBLISH %s %b", channel, f->req + hlen, (size_t)len);
        int ok = r && r->type == REDIS_REPLY_INTEGER;
        if (r)
            freeReplyObject(r);
        published++;
        reply_close(fd, ok ? "204 No Content" : "502 Bad Gateway");
        return;
    }
    reply_close(fd, "405 Method Not Allowed");
}

static void on_client(int fd)
{
    fl_fd_t *f = &fds[fd];
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        fd_close(fd);           /* a subscriber left: reaped right here */
        return;
    }
    if (n < 0 || f->kind == K_SUB)
        return;                 /* subscribers send nothing we need */
    if (f->req_len + n > FL_REQ_MAX) {
        reply_close(fd, "413 Payload Too Large");
        return;
    }
    char *nr = realloc(f->req, (size_t)(f->req_len + n + 1));
    if (!nr) {
        fd_close(fd);
        return;
    }
    f->req = nr;
    memcpy(f->req + f->req_len, buf, (size_t)n);
    f->req_len += (int)n;
    f->req[f->req_len] = '\0';
    handle_request(fd);
}

static void fanout(const char *p, size_t n)
{
    static char *frame;
    static size_t cap;
    size_t need = n + 8;
    if (need > cap) {
        free(frame);
        frame = malloc(need);
        cap = need;
    }
    memcpy(frame, "data: ", 6);
    memcpy(frame + 6, p, n);
    frame[6 + n] = '\n';
    frame[7 + n] = '\n';
    size_t fl = n + 8;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < nsubs; i++) {
        ssize_t w = send(subs[i], frame, fl, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w != (ssize_t)fl)
            short_writes++;
    }
    fanouts++;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "floor: fan-out %lu to %d subscribers: send loop %.2f ms\n", fanouts, nsubs,
            (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
}

static void on_redis(void)
{
    if (redisBufferRead(rsub) != REDIS_OK) {
        fprintf(stderr, "floor: redis: %s\n", rsub->errstr);
        exit(1);
    }
    void *rp;
    while (redisGetReplyFromReader(rsub, &rp) == REDIS_OK && rp) {
        redisReply *r = rp;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
            r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "message") == 0)
            fanout(r->element[2]->str, r->element[2]->len);
        freeReplyObject(r);
    }
}

static void usage(FILE *f)
{
    fprintf(f,
"usage: bench-floor [--listen HOST:PORT] [--redis HOST:PORT] [--channel NAME]\n"
"Raw epoll SSE server: GET subscribes, POST publishes through Redis; each\n"
"event goes out with one send() per subscriber.\n"
"  --listen HOST:PORT  (default 127.0.0.1:8090)\n"
"  --redis HOST:PORT   (default 127.0.0.1:6379)\n"
"  --channel NAME      Redis pub/sub channel (default bench)\n"
"  --procs N           processes sharing the port by SO_REUSEPORT (default 1)\n"
"  --help\n");
}

static int split_hostport(const char *s, char *host, size_t hl, int *port)
{
    const char *c = strrchr(s, ':');
    if (!c || (size_t)(c - s) >= hl)
        return -1;
    memcpy(host, s, (size_t)(c - s));
    host[c - s] = '\0';
    if (!*host)
        snprintf(host, hl, "127.0.0.1");
    char *end;
    long p = strtol(c + 1, &end, 10);
    if (*end || p <= 0 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

int main(int argc, char **argv)
{
    const char *listen_s = "127.0.0.1:8090", *redis_s = "127.0.0.1:6379";
    int procs = 1;
    static const struct option lo[] = {
        { "listen", 1, 0, 'l' }, { "redis", 1, 0, 'r' }, { "channel", 1, 0, 'c' },
        { "procs", 1, 0, 'p' }, { "help", 0, 0, 'h' }, { 0, 0, 0, 0 }
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'l': listen_s = optarg; break;
        case 'r': redis_s = optarg; break;
        case 'c': channel = optarg; break;
        case 'p': procs = atoi(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    char lhost[64], rhost[64];
    int lport, rport;
    if (split_hostport(listen_s, lhost, sizeof lhost, &lport) < 0 ||
        split_hostport(redis_s, rhost, sizeof rhost, &rport) < 0) {
        fprintf(stderr, "floor: expected HOST:PORT\n");
        return 2;
    }
    if (procs < 1 || procs > 64) {
        fprintf(stderr, "floor: --procs must be 1..64\n");
        return 2;
    }
    for (int i = 1; i < procs; i++) {
        pid_t k = fork();
        if (k < 0) {
            fprintf(stderr, "floor: fork: %s\n", strerror(errno));
            return 1;
        }
        if (k == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            break;
        }
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    subs = calloc(FL_MAX_FDS, sizeof *subs);

    rpub = redisConnect(rhost, rport);
    rsub = redisConnect(rhost, rport);
    if (!rpub || rpub->err || !rsub || rsub->err) {
        fprintf(stderr, "floor: cannot connect to redis %s\n", redis_s);
        return 1;
    }
    redisReply *r = redisCommand(rsub, "SUBSCRIBE %s", channel);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        fprintf(stderr, "floor: SUBSCRIBE failed\n");
        return 1;
    }
    freeReplyObject(r);
    /* From here the subscriber context is read by hand, without blocking. */
    fcntl(rsub->fd, F_SETFL, fcntl(rsub->fd, F_GETFL) | O_NONBLOCK);
    rsub->flags &= ~REDIS_BLOCK;

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(ls, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)lport) };
    if (inet_pton(AF_INET, lhost, &a.sin_addr) != 1 ||
        bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 4096) < 0) {
        fprintf(stderr, "floor: cannot listen on %s: %s\n", listen_s, strerror(errno));
        return 1;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN };
    ev.data.fd = ls;
    fds[ls].kind = K_LISTEN;
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    ev.data.fd = rsub->fd;
    fds[rsub->fd].kind = K_REDIS;
    epoll_ctl(ep, EPOLL_CTL_ADD, rsub->fd, &ev);
    fprintf(stderr, "floor: listening on %s, channel %s on redis %s\n", listen_s, channel, redis_s);

    struct epoll_event evs[512];
    while (!stopping) {
        int n = epoll_wait(ep, evs, 512, 1000);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fds[fd].kind == K_LISTEN) {
                for (;;) {
                    int c = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (c < 0)
                        break;
                    if (c >= FL_MAX_FDS) {
                        close(c);
                        continue;
                    }
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    fds[c].kind = K_PENDING;
                    struct epoll_event cev = { .events = EPOLLIN | EPOLLRDHUP };
                    cev.data.fd = c;
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                }
            } else if (fds[fd].kind == K_REDIS) {
                on_redis();
            } else if (fds[fd].kind != K_FREE) {
                on_client(fd);
            }
        }
    }
    fprintf(stderr, "floor: exiting: %lu publishes, %lu fan-outs, %lu short writes, %d subscribers\n",
            published, fanouts, short_writes, nsubs);
    return 0;
}
