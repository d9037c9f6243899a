/*
 * accept — accepting, the head gate and the reaper (accept.h).
 */
#include "gateway/lws/accept.h"
#include "gateway/clock.h"
#include "gateway/headgate.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define GW_ACCEPT_BURST   256         /* accepts per readable listen socket */
#define GW_EPOLL_BATCH    256
#define GW_SSE_RX_MAX     (64 * 1024) /* bytes an SSE client may send after its request */
#define GW_HEAD_TIMEOUT_S 10   /* a head not complete by then: closed (lws: timeout_secs) */
#define GW_LINGER_S        2   /* after a refusal: read what is left, then close */

static uint32_t now_s(void) { return (uint32_t)(gw_now_ns() / 1000000000ull); }

static void gate_forget(gw_worker_t *w, int fd)
{
    if (w->hg[fd]) {
        w->hg[fd] = 0;
        w->hg_count--;
    }
}

static void gate_close(gw_worker_t *w, int fd)
{
    gate_forget(w, fd);
    close(fd);   /* also leaves hg_epfd */
}

static void gate_adopt(gw_worker_t *w, int fd)
{
    lws_sock_file_fd_type sfd;

    if (w->hg[fd]) {
        epoll_ctl(w->hg_epfd, EPOLL_CTL_DEL, fd, NULL);
        gate_forget(w, fd);
    }
    sfd.sockfd = fd;
    if (lws_adopt_descriptor_vhost(w->vh, LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP, sfd, NULL, NULL) == NULL)
        log_warn("adopting a connection failed", NULL);
}

/* Reads and drops what the client sends after a refusal; 1 once it closed. */
static int gate_discard(gw_worker_t *w, int fd)
{
    for (;;) {
        ssize_t r = recv(fd, w->hg_buf, (size_t)w->g->cfg.max_header_bytes, MSG_DONTWAIT);
        if (r > 0)
            continue;
        if (r < 0 && errno == EINTR)
            continue;
        return !(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
    }
}

/* Answers a head lws would drop without a word (431 / 400), then lingers:
 * closing with the head still unread would reset the connection and could
 * discard the answer before the client reads it. */
static void gate_refuse(gw_worker_t *w, int fd, headgate_t v)
{
    char body[256], msg[512];
    int n, status = v == HEADGATE_TOO_LARGE ? 431 : 400;

    if (v == HEADGATE_TOO_LARGE)
        snprintf(body, sizeof(body), "{\"error\":\"request head over %ld bytes (FLAGCAST_MAX_HEADER_BYTES)\"}\n",
                 w->g->cfg.max_header_bytes);
    else
        snprintf(body, sizeof(body), "{\"error\":\"bad request: %s\"}\n", headgate_reason(v));
    n = snprintf(msg, sizeof(msg),
                 "HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %zu\r\n"
                 "cache-control: no-store\r\nconnection: close\r\n\r\n%s",
                 status == 431 ? "431 Request Header Fields Too Large" : "400 Bad Request",
                 strlen(body), body);
    log_info("request refused", "status=%d reason=\"%s\"", status, headgate_reason(v));
    /* a few hundred bytes into an empty send buffer: never short */
    if (send(fd, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 || shutdown(fd, SHUT_WR) != 0 ||
        gate_discard(w, fd)) {
        gate_close(w, fd);
        return;
    }
    if (!w->hg[fd])
        w->hg_count++;
    w->hg[fd] = ((now_s() + GW_LINGER_S) << 1) | 1;
}

/* Looks at what fd sent so far; 1 once the connection left the gate. */
static int gate_try(gw_worker_t *w, int fd)
{
    ssize_t r = recv(fd, w->hg_buf, (size_t)w->g->cfg.max_header_bytes, MSG_PEEK | MSG_DONTWAIT);
    headgate_t v;

    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    if (r <= 0) {
        gate_close(w, fd);   /* gone before it asked anything */
        return 1;
    }
    v = headgate_check(w->hg_buf, (size_t)r, (size_t)w->g->cfg.max_header_bytes);
    if (v == HEADGATE_MORE)
        return 0;
    if (v == HEADGATE_OK)
        gate_adopt(w, fd);
    else
        gate_refuse(w, fd, v);
    return 1;
}

static void gate_new(gw_worker_t *w, int fd)
{
    struct epoll_event ev;

    if ((size_t)fd >= w->nfd) {
        gate_adopt(w, fd);   /* lws refuses it as over capacity */
        return;
    }
    if (gate_try(w, fd))
        return;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;   /* edge: peeked bytes stay unread */
    ev.data.fd = fd;
    if (epoll_ctl(w->hg_epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        gate_adopt(w, fd);
        return;
    }
    w->hg[fd] = (now_s() + GW_HEAD_TIMEOUT_S) << 1;
    w->hg_count++;
    if ((size_t)fd + 1 > w->hg_top)
        w->hg_top = (size_t)fd + 1;
}

void gate_ready(gw_worker_t *w)
{
    struct epoll_event evs[GW_EPOLL_BATCH];
    int n, i;

    for (;;) {
        n = epoll_wait(w->hg_epfd, evs, GW_EPOLL_BATCH, 0);
        if (n <= 0)
            return;
        for (i = 0; i < n; i++) {
            int fd = evs[i].data.fd;

            if (fd < 0 || (size_t)fd >= w->nfd || !w->hg[fd])
                continue;
            if (w->hg[fd] & 1) {
                if (gate_discard(w, fd))
                    gate_close(w, fd);
            } else {
                gate_try(w, fd);
            }
        }
    }
}

/* Every second: heads that never completed, and refusals the client never
 * closed, are closed. */
void gate_expire(gw_worker_t *w, bool all)
{
    uint32_t now = now_s();
    size_t fd;

    for (fd = 0; w->hg_count && fd < w->hg_top; fd++)
        if (w->hg[fd] && (all || (w->hg[fd] >> 1) <= now))
            gate_close(w, (int)fd);
}

void accept_ready(gw_worker_t *w)
{
    int i, one = 1;

    for (i = 0; i < GW_ACCEPT_BURST; i++) {
        int s = accept4(w->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (s < 0) {
            if (errno == EINTR)
                continue;
            if ((errno == EMFILE || errno == ENFILE) && w->spare_fd >= 0) {
                /* Out of descriptors: shed this connection rather than let
                 * the listen socket spin readable. */
                close(w->spare_fd);
                s = accept4(w->listen_fd, NULL, NULL, SOCK_CLOEXEC);
                if (s >= 0)
                    close(s);
                w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                metric_inc(w->g->m.conns_rejected);
                log_warn("out of file descriptors, connection refused", NULL);
            }
            return;
        }
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        gate_new(w, s);
    }
}

/* ==== the reaper: closed SSE peers ==== */

void reap_ready(gw_worker_t *w)
{
    struct epoll_event evs[GW_EPOLL_BATCH];
    char scratch[4096];   /* per call: workers run in parallel */
    int n, i;

    for (;;) {
        n = epoll_wait(w->epfd, evs, GW_EPOLL_BATCH, 0);
        if (n <= 0)
            return;
        for (i = 0; i < n; i++) {
            int fd = (int)(uint32_t)evs[i].data.u64;
            uint32_t serial = (uint32_t)(evs[i].data.u64 >> 32);
            gw_conn_t *c = fd >= 0 && (size_t)fd < w->nfd ? w->by_fd[fd] : NULL;
            size_t got = 0;
            bool dead = false;

            if (c == NULL || c->serial != serial || c->kind != CK_SSE || c->closing)
                continue;
            if (evs[i].events & (EPOLLHUP | EPOLLERR))
                dead = true;
            /* Drain what the client sent (nothing is expected after the
             * request); end of file or an error means it is gone. */
            while (!dead) {
                ssize_t r = recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT);
                if (r > 0) {
                    got += (size_t)r;
                    if (got > GW_SSE_RX_MAX) {
                        conn_kill(c, "client sent too much on an SSE stream");
                        break;
                    }
                    continue;
                }
                if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                    break;
                if (r < 0 && errno == EINTR)
                    continue;
                dead = true;
            }
            if (dead)
                conn_kill(c, "peer closed");
        }
        if (n < GW_EPOLL_BATCH)
            return;
    }
}

void reap_watch(gw_worker_t *w, gw_conn_t *c)
{
    struct epoll_event ev;

    if (c->fd < 0)
        return;
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = ((uint64_t)c->serial << 32) | (uint32_t)c->fd;
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        log_warn("epoll_ctl failed", "err=\"%s\"", strerror(errno));
}
