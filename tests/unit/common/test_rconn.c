/* Unit tests for common/rconn (the URL grammar is test_redis_url's): a connection that keeps
 * retrying against a closed port without ever becoming ready, and one that
 * gives up on a server that accepts but never answers. The .c is included
 * to shorten its timeouts. */
#define RCONN_CONNECT_TIMEOUT_MS 200
#define RCONN_BACKOFF_MIN_MS 20
#define RCONN_DEFAULT_TIMEOUT_MS 150
#define RCONN_DEFAULT_PING_MS 50
#include "common/rconn.c"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int states;
static void on_state(rconn_t *rc, int up, void *arg)
{
    states++;
}

static void stop(evutil_socket_t fd, short w, void *arg)
{
    event_base_loopbreak(arg);
}

START_TEST(test_not_ready_while_down)
{
    struct event_base *base = event_base_new();
    redis_url_t u;
    const char *err;
    /* Port 1 on loopback: refused at once. */
    ck_assert_int_eq(redis_url_parse("redis://127.0.0.1:1", &u, &err), 0);
    rconn_t *rc = rconn_new(base, &u, "test", on_state, NULL);
    ck_assert_ptr_nonnull(rc);
    ck_assert_int_eq(rconn_start(rc), 0);
    ck_assert_int_eq(rconn_start(rc), -1);
    struct event *t = evtimer_new(base, stop, base);
    struct timeval tv = { 0, 400000 };
    evtimer_add(t, &tv);
    event_base_dispatch(base);
    ck_assert(!rconn_ready(rc));
    ck_assert_ptr_null(rconn_ctx(rc));
    ck_assert_int_eq(rconn_command(rc, NULL, NULL, "PING"), -1);
    ck_assert_int_eq(states, 0);
    ck_assert_uint_eq(rconn_reconnects(rc), 0);
    rconn_free(rc);
    event_free(t);
    event_base_free(base);
}
END_TEST

static int accepted;
static int held[16];

static void on_accept(evutil_socket_t fd, short w, void *arg)
{
    int c = accept(fd, NULL, NULL);
    if (c >= 0 && accepted < 16)
        held[accepted++] = c; /* kept open, never answered */
    else if (c >= 0)
        close(c);
}

START_TEST(test_silent_server_times_out_and_retries)
{
    struct event_base *base = event_base_new();
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t al = sizeof(a);
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(ls, 16), 0);
    ck_assert_int_eq(getsockname(ls, (struct sockaddr *)&a, &al), 0);
    struct event *ev = event_new(base, ls, EV_READ | EV_PERSIST, on_accept, NULL);
    event_add(ev, NULL);

    char url[64];
    redis_url_t u;
    const char *err;
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", ntohs(a.sin_port));
    ck_assert_int_eq(redis_url_parse(url, &u, &err), 0);
    states = 0;
    rconn_t *rc = rconn_new(base, &u, "test", on_state, NULL);
    ck_assert_int_eq(rconn_start(rc), 0);
    struct event *t = evtimer_new(base, stop, base);
    struct timeval tv = { 0, 700000 }; /* 200 ms timeout, ~20-30 ms backoff, again */
    evtimer_add(t, &tv);
    event_base_dispatch(base);
    ck_assert(!rconn_ready(rc));
    ck_assert_int_eq(states, 0);
    ck_assert_int_ge(accepted, 2); /* it gave up on the first and tried again */
    rconn_free(rc);
    for (int i = 0; i < accepted; i++)
        close(held[i]);
    event_free(t);
    event_free(ev);
    close(ls);
    event_base_free(base);
}
END_TEST

START_TEST(test_overdue_in)
{
    ck_assert_int_eq(rconn_overdue_in(1000, 0, 2000), -1);    /* nothing outstanding */
    ck_assert_int_eq(rconn_overdue_in(1000, 900, 0), -1);     /* timeout off */
    ck_assert_int_eq(rconn_overdue_in(1000, 900, 2000), 1900);
    ck_assert_int_eq(rconn_overdue_in(2900, 900, 2000), 0);   /* exactly due */
    ck_assert_int_eq(rconn_overdue_in(5000, 900, 2000), 0);
}
END_TEST

/* A server that answers the handshake PING once, then stalls (like a
 * SIGSTOPped Redis): the command gets NULL while rconn_timed_out(), the
 * connection goes down, and it reconnects. */
static int stall_fd = -1, stall_conns;
static void on_stall_read(evutil_socket_t fd, short w, void *arg)
{
    char b[512];
    ssize_t n = read(fd, b, sizeof(b));
    if (n > 0 && !*(int *)arg) {
        *(int *)arg = 1;
        (void)!write(fd, "+PONG\r\n", 7);
    }
}
static int answered[16];
static struct event *conn_ev[16];
static int conn_fd[16];
static void on_stall_accept(evutil_socket_t fd, short w, void *arg)
{
    int c = accept(fd, NULL, NULL);
    if (c < 0 || stall_conns >= 16)
        return;
    conn_fd[stall_conns] = c;
    conn_ev[stall_conns] = event_new(arg, c, EV_READ | EV_PERSIST, on_stall_read,
                                     &answered[stall_conns]);
    event_add(conn_ev[stall_conns], NULL);
    stall_conns++;
    stall_fd = c;
}
static int ups, downs, null_replies, null_timed_out;
static rconn_t *stall_rc;
static void on_cmd(redisAsyncContext *ac, void *r, void *priv)
{
    if (r == NULL) {
        null_replies++;
        null_timed_out += rconn_timed_out(stall_rc);
    }
}
static void on_stall_state(rconn_t *rc, int up, void *arg)
{
    if (up) {
        ups++;
        if (ups == 1)
            ck_assert_int_eq(rconn_command(rc, on_cmd, NULL, "GET k"), 0);
    } else {
        downs++;
    }
}

START_TEST(test_stalled_server_times_out)
{
    struct event_base *base = event_base_new();
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t al = sizeof(a);
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(ls, 16), 0);
    ck_assert_int_eq(getsockname(ls, (struct sockaddr *)&a, &al), 0);
    struct event *ev = event_new(base, ls, EV_READ | EV_PERSIST, on_stall_accept, base);
    event_add(ev, NULL);
    char url[64];
    redis_url_t u;
    const char *err;
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", ntohs(a.sin_port));
    ck_assert_int_eq(redis_url_parse(url, &u, &err), 0);
    stall_rc = rconn_new(base, &u, "test", on_stall_state, NULL);
    ck_assert_int_eq(rconn_start(stall_rc), 0);
    struct event *t = evtimer_new(base, stop, base);
    struct timeval tv = { 0, 500000 }; /* up at once, down after ~150 ms, up again */
    evtimer_add(t, &tv);
    event_base_dispatch(base);
    ck_assert_int_ge(ups, 2);
    ck_assert_int_ge(downs, 1);
    ck_assert_int_eq(null_replies, 1);
    ck_assert_int_eq(null_timed_out, 1);
    ck_assert(!rconn_timed_out(stall_rc));
    rconn_free(stall_rc);
    for (int i = 0; i < stall_conns; i++) {
        event_free(conn_ev[i]);
        close(conn_fd[i]);
    }
    event_free(t);
    event_free(ev);
    close(ls);
    event_base_free(base);
}
END_TEST

/* A URL kind rconn cannot serve yet is refused at rconn_new, with a reason. */
START_TEST(test_refuses_unsupported_kinds)
{
    struct event_base *base = event_base_new();
    redis_url_t u;
    const char *err = NULL;
    ck_assert_int_eq(redis_url_parse("redis+cluster://127.0.0.1:1", &u, &err), 0);
    ck_assert_int_eq(rconn_url_supported(&u, &err), -1);
    ck_assert_ptr_nonnull(strstr(err, "redis+cluster"));
    ck_assert_ptr_null(rconn_new(base, &u, "test", on_state, NULL));
    ck_assert_int_eq(redis_url_parse("redis://127.0.0.1:1", &u, &err), 0);
    ck_assert_int_eq(rconn_url_supported(&u, &err), 0);
    event_base_free(base);
}
END_TEST

START_TEST(test_switch_is_for)
{
    const char *m = "mymaster 127.0.0.1 6379 127.0.0.1 6380";
    ck_assert(rconn_switch_is_for(m, strlen(m), "mymaster"));
    ck_assert(!rconn_switch_is_for(m, strlen(m), "mymaste"));
    ck_assert(!rconn_switch_is_for(m, strlen(m), "my"));
    ck_assert(!rconn_switch_is_for(m, strlen(m), "mymaster2"));
    ck_assert(!rconn_switch_is_for("mymaster", 8, "mymaster"));
    ck_assert(!rconn_switch_is_for(m, 5, "mymaster"));
    char h[64];
    int port = 0;
    ck_assert_int_eq(rconn_switch_new_addr(m, strlen(m), h, sizeof(h), &port), 0);
    ck_assert_str_eq(h, "127.0.0.1");
    ck_assert_int_eq(port, 6380);
    ck_assert_int_eq(rconn_switch_new_addr(m, strlen(m) - 1, h, sizeof(h), &port), 0);
    ck_assert_int_eq(port, 638);
    ck_assert_int_eq(rconn_switch_new_addr("m a 1 b", 7, h, sizeof(h), &port), -1);
    ck_assert_int_eq(rconn_switch_new_addr("m a 1 b x", 9, h, sizeof(h), &port), -1);
    ck_assert_int_eq(rconn_switch_new_addr("m a 1 b 0", 9, h, sizeof(h), &port), -1);
    ck_assert_int_eq(rconn_switch_new_addr("m a 1 bbbbbbbb 1", 16, h, 4, &port), -1);
}
END_TEST

/* A sentinel URL's sentinel password comes from the environment when the
 * caller gave none. */
START_TEST(test_sentinel_password_from_env)
{
    struct event_base *base = event_base_new();
    redis_url_t u;
    const char *err = NULL;
    ck_assert_int_eq(redis_url_parse("redis+sentinel://127.0.0.1:1/m", &u, &err), 0);
    ck_assert_int_eq(rconn_url_supported(&u, &err), 0);
    setenv("FLAGCAST_REDIS_SENTINEL_PASSWORD", "from-env", 1);
    rconn_t *rc = rconn_new(base, &u, "test", on_state, NULL);
    ck_assert_ptr_nonnull(rc);
    ck_assert_str_eq(rc->url.sentinel_password, "from-env");
    rconn_free(rc);
    strcpy(u.sentinel_password, "given");
    rc = rconn_new(base, &u, "test", on_state, NULL);
    ck_assert_str_eq(rc->url.sentinel_password, "given");
    rconn_free(rc);
    unsetenv("FLAGCAST_REDIS_SENTINEL_PASSWORD");
    event_base_free(base);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rconn");
    TCase *tc = tcase_create("rconn");
    tcase_add_test(tc, test_not_ready_while_down);
    tcase_add_test(tc, test_silent_server_times_out_and_retries);
    tcase_add_test(tc, test_overdue_in);
    tcase_add_test(tc, test_refuses_unsupported_kinds);
    tcase_add_test(tc, test_switch_is_for);
    tcase_add_test(tc, test_sentinel_password_from_env);
    tcase_add_test(tc, test_stalled_server_times_out);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
