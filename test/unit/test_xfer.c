/* test_xfer.c: unit tests of the transfer core (protocols/xfer.c), its libcurl backend
 * (protocols/xfer_curl.c) and the download job (firmware/dl.c): the address map and error names
 * table-driven, then downloads into a UFS on the in-memory NOR model from a tiny HTTP/1.1 server
 * written here on plain sockets on the same libev loop (Range, 404/500/416, server resets, a
 * server that stops sending, a body without a length) under the world's conditions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "firmware/dl.h"
#include "protocols/xfer.h"
#include "storage/flash.h"
#include "storage/ufs.h"

#define KIB 1024u

/* ---- the test server -------------------------------------------------------------------- */

struct srv;

struct conn {
    struct srv *s;
    struct conn *next;
    ev_io io;
    int fd;
    char req[4096];
    size_t rlen;
    char hdr[512];
    size_t hlen, hoff;
    const uint8_t *body;
    size_t blen, boff;
    size_t rst_after;  /* close with a RST after this many body bytes (0 = never) */
    size_t hang_after; /* stop sending after this many body bytes (0 = never) */
    bool stopped;
};

struct srv {
    struct ev_loop *loop;
    int lfd;
    unsigned port;
    ev_io accept_io;
    const uint8_t *data;
    size_t len;
    size_t reset_after; /* for /reset */
    unsigned hits;
    char last_range[64]; /* the Range header of the last request, "" if none */
    struct conn *conns;
};

static void conn_close(struct conn *c, bool rst)
{
    if (c->fd < 0)
        return;
    ev_io_stop(c->s->loop, &c->io);
    if (rst) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(c->fd);
    c->fd = -1;
}

/* Builds the response for the request in c->req. */
static void conn_respond(struct conn *c)
{
    struct srv *s = c->s;
    char path[256] = "";
    const char *r;
    unsigned long long from = 0;
    bool range = false;
    int status = 200;
    const char *reason = "OK";
    char extra[128] = "";

    sscanf(c->req, "GET %255s", path);
    s->hits++;
    s->last_range[0] = '\0';
    r = strcasestr(c->req, "\r\nRange: bytes=");
    if (r) {
        range = true;
        from = strtoull(r + 15, NULL, 10);
        snprintf(s->last_range, sizeof(s->last_range), "bytes=%llu-", from);
    }
    c->body = s->data;
    c->blen = s->len;
    if (strcmp(path, "/404") == 0 || strcmp(path, "/500") == 0) {
        status = path[1] == '4' ? 404 : 500;
        reason = status == 404 ? "Not Found" : "Internal Server Error";
        c->body = (const uint8_t *)"<html>error page</html>";
        c->blen = strlen((const char *)c->body);
        range = false;
    } else if (strcmp(path, "/file") != 0 && strcmp(path, "/reset") != 0 &&
               strcmp(path, "/hang") != 0 && strcmp(path, "/nolen") != 0) {
        status = 404;
        reason = "Not Found";
        c->blen = 0;
        range = false;
    }
    if (strcmp(path, "/reset") == 0)
        c->rst_after = s->reset_after;
    if (strcmp(path, "/hang") == 0)
        c->hang_after = 1000;
    if (range && from >= s->len) {
        status = 416;
        reason = "Range Not Satisfiable";
        snprintf(extra, sizeof(extra), "Content-Range: bytes */%zu\r\n", s->len);
        c->body = (const uint8_t *)"no";
        c->blen = 2;
    } else if (range) {
        status = 206;
        reason = "Partial Content";
        snprintf(extra, sizeof(extra), "Content-Range: bytes %llu-%zu/%zu\r\n", from, s->len - 1,
                 s->len);
        c->body += from;
        c->blen -= from;
    }
    if (strcmp(path, "/nolen") == 0)
        c->hlen = (size_t)snprintf(c->hdr, sizeof(c->hdr),
                                   "HTTP/1.1 %d %s\r\nConnection: close\r\n%s\r\n", status, reason,
                                   extra);
    else
        c->hlen = (size_t)snprintf(c->hdr, sizeof(c->hdr),
                                   "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n"
                                   "Accept-Ranges: bytes\r\nConnection: close\r\n%s\r\n",
                                   status, reason, c->blen, extra);
}

static void conn_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = w->data;
    ssize_t n;

    if (revents & EV_READ) {
        n = read(c->fd, c->req + c->rlen, sizeof(c->req) - 1 - c->rlen);
        if (n <= 0) {
            conn_close(c, false);
            return;
        }
        c->rlen += (size_t)n;
        c->req[c->rlen] = '\0';
        if (!strstr(c->req, "\r\n\r\n"))
            return;
        conn_respond(c);
        ev_io_stop(loop, w);
        ev_io_set(w, c->fd, EV_WRITE);
        ev_io_start(loop, w);
        return;
    }
    if (c->hoff < c->hlen) {
        n = send(c->fd, c->hdr + c->hoff, c->hlen - c->hoff, MSG_NOSIGNAL);
        if (n > 0)
            c->hoff += (size_t)n;
        return;
    }
    size_t want = c->blen - c->boff;
    if (want > 16 * KIB)
        want = 16 * KIB;
    if (c->rst_after && c->boff + want > c->rst_after)
        want = c->rst_after - c->boff;
    if (c->hang_after && c->boff + want > c->hang_after)
        want = c->hang_after - c->boff;
    if (want == 0) {
        if (c->hang_after && c->boff >= c->hang_after) {
            ev_io_stop(loop, w); /* keep the socket open, send nothing more */
            c->stopped = true;
            return;
        }
        conn_close(c, c->rst_after != 0);
        return;
    }
    n = send(c->fd, c->body + c->boff, want, MSG_NOSIGNAL);
    if (n > 0)
        c->boff += (size_t)n;
    else if (n < 0 && errno != EAGAIN)
        conn_close(c, false);
}

static void srv_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct srv *s = w->data;
    struct conn *c;
    int fd;

    (void)revents;
    fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->s = s;
    c->fd = fd;
    c->next = s->conns;
    s->conns = c;
    c->io.data = c;
    ev_io_init(&c->io, conn_cb, fd, EV_READ);
    ev_io_start(loop, &c->io);
}

static void srv_start(struct srv *s, struct ev_loop *loop, const uint8_t *data, size_t len)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof(a);
    int one = 1;

    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->data = data;
    s->len = len;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(s->lfd >= 0);
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->lfd, 16), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    s->accept_io.data = s;
    ev_io_init(&s->accept_io, srv_accept_cb, s->lfd, EV_READ);
    ev_io_start(loop, &s->accept_io);
}

static void srv_stop(struct srv *s)
{
    while (s->conns) {
        struct conn *c = s->conns;
        s->conns = c->next;
        conn_close(c, false);
        free(c);
    }
    ev_io_stop(s->loop, &s->accept_io);
    close(s->lfd);
}

/* ---- the rig: loop, server, flash + UFS, world, one job --------------------------------- */

struct rig {
    struct ev_loop *loop;
    struct srv srv;
    struct flash f;
    struct ufs u;
    struct xfer_map map;
    struct xfer_net net;
    struct xfer_env env;
    struct dl d;
    uint8_t *data;
    size_t len;
    struct xfer_opts opts;
    /* outcomes */
    unsigned done_calls;
    enum xfer_err err;
    int detail;
    int last_pct;
    unsigned pct_calls, unknown_calls;
    uint64_t cancel_at; /* dl_cancel from progress once got >= this (0 = never) */
    bool cancelled;
    uint64_t got_at_cancel;
};

static void fill(uint8_t *p, size_t len, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

static void rig_open(struct rig *r, size_t len, uint32_t ufs_size)
{
    struct flash_geom g = {.size = ufs_size, .erase_size = 4096, .page_size = 256};
    char spec[128];

    memset(r, 0, sizeof(*r));
    r->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(r->loop);
    r->len = len;
    r->data = malloc(len ? len : 1);
    assert_non_null(r->data);
    fill(r->data, len, (uint32_t)len);
    srv_start(&r->srv, r->loop, r->data, len);
    assert_int_equal(flash_open_mem(&r->f, &g), 0);
    assert_int_equal(ufs_mount(&r->u, &r->f, 0, ufs_size), 0);
    snprintf(spec, sizeof(spec), "fota.example.com:80=127.0.0.1:%u", r->srv.port);
    assert_int_equal(xfer_map_add(&r->map, spec), 0);
    r->net.up = true;
    r->env.loop = r->loop;
    r->env.map = &r->map;
    r->env.net = &r->net;
    r->opts.connect_timeout = 5;
    r->opts.low_speed_time = 5;
    r->opts.verify_peer = true;
    r->last_pct = -2;
}

static void rig_close(struct rig *r)
{
    dl_cancel(&r->d);
    xfer_env_free(&r->env);
    srv_stop(&r->srv);
    ufs_unmount(&r->u);
    flash_close(&r->f);
    ev_loop_destroy(r->loop);
    free(r->data);
}

static void on_done(void *ctx, struct dl *d, enum xfer_err err, int detail)
{
    struct rig *r = ctx;

    (void)d;
    r->done_calls++;
    r->err = err;
    r->detail = detail;
}

static void on_progress(void *ctx, struct dl *d, int percent, uint64_t got, uint64_t total)
{
    struct rig *r = ctx;

    (void)total;
    if (percent < 0) {
        r->unknown_calls++;
    } else {
        assert_true(percent > r->last_pct); /* only on change, and rising */
        r->last_pct = percent;
        r->pct_calls++;
    }
    if (r->cancel_at && got >= r->cancel_at && !r->cancelled) {
        r->cancelled = true;
        r->got_at_cancel = got;
        dl_cancel(d);
    }
}

static void guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    *(bool *)w->data = true;
    ev_break(loop, EVBREAK_ONE);
}

/* Runs the loop until *flag or for at most secs; returns the time it took. */
static double run_until(struct rig *r, const unsigned *flag, double secs)
{
    bool expired = false;
    ev_timer guard;
    double t0;

    ev_now_update(r->loop);
    t0 = ev_now(r->loop);
    ev_timer_init(&guard, guard_cb, secs, 0.0);
    guard.data = &expired;
    ev_timer_start(r->loop, &guard);
    while (!expired && !(flag && *flag))
        ev_run(r->loop, EVRUN_ONCE);
    ev_timer_stop(r->loop, &guard);
    ev_now_update(r->loop);
    return ev_now(r->loop) - t0;
}

/* Starts a job on url (a path on the mapped host when it starts with '/'). */
static int rig_start(struct rig *r, const char *url, bool resume)
{
    char buf[256];

    if (url[0] == '/') {
        snprintf(buf, sizeof(buf), "http://fota.example.com%s", url);
        url = buf;
    }
    r->done_calls = 0;
    r->err = XFER_E_COUNT;
    r->last_pct = -2;
    dl_set_progress(&r->d, on_progress);
    return dl_start(&r->d, &r->env, &r->u, url, "fw.bin", resume, &r->opts, on_done, r);
}

/* Runs a job to its end; returns its class. */
static enum xfer_err rig_dl(struct rig *r, const char *url, bool resume)
{
    assert_int_equal(rig_start(r, url, resume), 0);
    run_until(r, &r->done_calls, 20.0);
    assert_int_equal(r->done_calls, 1);
    return r->err;
}

static uint64_t file_size(struct rig *r)
{
    struct ufs_stat st;

    if (ufs_stat(&r->u, "fw.bin", &st) < 0)
        return UINT64_MAX;
    return st.size;
}

/* The file holds exactly the first n bytes of the served data. */
static void assert_file_prefix(struct rig *r, uint64_t n)
{
    uint8_t *buf = malloc(n + 1);

    assert_non_null(buf);
    assert_int_equal(file_size(r), n);
    assert_int_equal(ufs_pread(&r->u, "fw.bin", 0, buf, n + 1), (ssize_t)n);
    assert_memory_equal(buf, r->data, n);
    free(buf);
}

static void put_file(struct rig *r, const void *p, size_t n)
{
    struct ufs_file fh;

    assert_int_equal(ufs_open(&r->u, &fh, "fw.bin", UFS_WRONLY | UFS_CREAT | UFS_TRUNC), 0);
    assert_int_equal(ufs_write(&fh, p, n), (ssize_t)n);
    assert_int_equal(ufs_close(&fh), 0);
}

#define UFS_BIG (4u * 1024u * 1024u)

/* ---- pure tables ------------------------------------------------------------------------ */

static void test_err_names(void **state)
{
    (void)state;
    for (int i = 0; i < XFER_E_COUNT; i++) {
        assert_non_null(xfer_err_name(i));
        assert_string_not_equal(xfer_err_name(i), "unknown");
        for (int j = 0; j < i; j++)
            assert_string_not_equal(xfer_err_name(i), xfer_err_name(j));
    }
    assert_string_equal(xfer_err_name(XFER_OK), "ok");
    assert_string_equal(xfer_err_name(XFER_E_STORAGE_FULL), "storage_full");
    assert_string_equal(xfer_err_name(XFER_E_COUNT), "unknown");
    assert_string_equal(xfer_err_name((enum xfer_err)99), "unknown");
}

static void test_map_parse(void **state)
{
    static const struct {
        const char *spec;
        int rc;
        const char *host;
        unsigned port;
        const char *addr;
        unsigned to_port;
    } cases[] = {
        {"fota.example.com:80=127.0.0.1:18080", 0, "fota.example.com", 80, "127.0.0.1", 18080},
        {"1.2.3.4:21=127.0.0.1:2121", 0, "1.2.3.4", 21, "127.0.0.1", 2121},
        {"[2001:db8::1]:443=[::1]:8443", 0, "2001:db8::1", 443, "::1", 8443},
        {"h:65535=a:1", 0, "h", 65535, "a", 1},
        {"", -EINVAL, NULL, 0, NULL, 0},
        {"host", -EINVAL, NULL, 0, NULL, 0},
        {"host:80", -EINVAL, NULL, 0, NULL, 0},
        {"host:80=", -EINVAL, NULL, 0, NULL, 0},
        {"host:80=1.2.3.4", -EINVAL, NULL, 0, NULL, 0},
        {"host:0=1.2.3.4:1", -EINVAL, NULL, 0, NULL, 0},
        {"host:65536=1.2.3.4:1", -EINVAL, NULL, 0, NULL, 0},
        {"host:80=1.2.3.4:x", -EINVAL, NULL, 0, NULL, 0},
        {"host:+80=1.2.3.4:1", -EINVAL, NULL, 0, NULL, 0},
        {":80=1.2.3.4:1", -EINVAL, NULL, 0, NULL, 0},
        {"host:80=1.2.3.4:1=x", -EINVAL, NULL, 0, NULL, 0},
        {"::1:80=1.2.3.4:1", -EINVAL, NULL, 0, NULL, 0},
        {"[::1:80=1.2.3.4:1", -EINVAL, NULL, 0, NULL, 0},
        {"ho st:80=1.2.3.4:1", -EINVAL, NULL, 0, NULL, 0},
    };
    char longhost[300];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct xfer_map m = {0};
        const char *addr = NULL;
        unsigned to = 0;

        assert_int_equal(xfer_map_add(&m, cases[i].spec), cases[i].rc);
        if (cases[i].rc < 0) {
            assert_int_equal(m.n, 0);
            continue;
        }
        assert_int_equal(m.n, 1);
        assert_true(xfer_map_lookup(&m, cases[i].host, cases[i].port, &addr, &to));
        assert_string_equal(addr, cases[i].addr);
        assert_int_equal(to, cases[i].to_port);
        to = cases[i].port == 65535 ? 1 : cases[i].port + 1;
        assert_false(xfer_map_lookup(&m, cases[i].host, to, NULL, NULL));
    }
    memset(longhost, 'a', 200);
    strcpy(longhost + 200, ":80=1.2.3.4:1");
    {
        struct xfer_map m = {0};
        assert_int_equal(xfer_map_add(&m, longhost), -E2BIG);
    }
}

static void test_map_lookup(void **state)
{
    struct xfer_map m = {0};
    const char *addr;
    unsigned to;
    char spec[64];

    (void)state;
    assert_int_equal(xfer_map_add(&m, "Fota.Example.com:80=127.0.0.1:1000"), 0);
    assert_int_equal(xfer_map_add(&m, "[::1]:80=127.0.0.1:1001"), 0);
    /* case-insensitive names, either v6 form */
    assert_true(xfer_map_lookup(&m, "fota.example.COM", 80, &addr, &to));
    assert_int_equal(to, 1000);
    assert_true(xfer_map_lookup(&m, "[::1]", 80, &addr, &to));
    assert_int_equal(to, 1001);
    assert_true(xfer_map_lookup(&m, "::1", 80, &addr, &to));
    assert_false(xfer_map_lookup(&m, "fota.example", 80, &addr, &to));
    assert_false(xfer_map_lookup(NULL, "x", 80, &addr, &to));
    /* a later entry for the same HOST:PORT replaces the earlier one */
    assert_int_equal(xfer_map_add(&m, "fota.example.com:80=127.0.0.2:2000"), 0);
    assert_int_equal(m.n, 2);
    assert_true(xfer_map_lookup(&m, "fota.example.com", 80, &addr, &to));
    assert_string_equal(addr, "127.0.0.2");
    assert_int_equal(to, 2000);
    /* the table is bounded */
    for (unsigned i = m.n; i < XFER_MAP_MAX; i++) {
        snprintf(spec, sizeof(spec), "h%u:80=127.0.0.1:%u", i, 3000 + i);
        assert_int_equal(xfer_map_add(&m, spec), 0);
    }
    assert_int_equal(xfer_map_add(&m, "one.more:80=127.0.0.1:1"), -E2BIG);
    assert_int_equal(m.n, XFER_MAP_MAX);
}

/* ---- downloads -------------------------------------------------------------------------- */

static void test_http_download(void **state)
{
    struct rig r;
    struct dl_status st;

    (void)state;
    rig_open(&r, 1 * 1024 * KIB + 123, UFS_BIG);
    assert_int_equal(rig_dl(&r, "/file", false), XFER_OK);
    assert_int_equal(r.detail, 200);
    assert_file_prefix(&r, r.len);
    assert_int_equal(r.last_pct, 100);
    assert_true(r.pct_calls >= 10);
    dl_status(&r.d, &st);
    assert_int_equal(st.state, DL_DONE);
    assert_int_equal(st.got, r.len);
    assert_int_equal(st.total, r.len);
    assert_int_equal(st.err, XFER_OK);
    assert_string_equal(r.srv.last_range, "");
    /* a second download truncates and rewrites */
    assert_int_equal(rig_dl(&r, "/file", false), XFER_OK);
    assert_file_prefix(&r, r.len);
    rig_close(&r);
}

static void test_resume_from_offset(void **state)
{
    struct rig r;
    struct dl_status st;

    (void)state;
    rig_open(&r, 700 * KIB, UFS_BIG);
    put_file(&r, r.data, 300000);
    assert_int_equal(rig_dl(&r, "/file", true), XFER_OK);
    assert_int_equal(r.detail, 206);
    assert_string_equal(r.srv.last_range, "bytes=300000-");
    assert_file_prefix(&r, r.len);
    dl_status(&r.d, &st);
    assert_int_equal(st.total, r.len);
    /* resuming a complete file: the server's 416 "bytes * /len" means done */
    assert_int_equal(rig_dl(&r, "/file", true), XFER_OK);
    assert_file_prefix(&r, r.len);
    /* resume with no file at all starts at 0 */
    assert_int_equal(ufs_remove(&r.u, "fw.bin"), 0);
    assert_int_equal(rig_dl(&r, "/file", true), XFER_OK);
    assert_string_equal(r.srv.last_range, "");
    assert_file_prefix(&r, r.len);
    rig_close(&r);
}

static void test_cut_after_then_resume(void **state)
{
    struct rig r;

    (void)state;
    rig_open(&r, 600 * KIB, UFS_BIG);
    r.net.cut_after = 200000;
    assert_int_equal(rig_dl(&r, "/file", false), XFER_E_RESET);
    assert_file_prefix(&r, 200000); /* what arrived before the cut is kept (synced) */
    r.net.cut_after = 0;
    assert_int_equal(rig_dl(&r, "/file", true), XFER_OK);
    assert_string_equal(r.srv.last_range, "bytes=200000-");
    assert_file_prefix(&r, r.len);
    rig_close(&r);
}

static void test_server_reset(void **state)
{
    struct rig r;
    struct dl_status st;

    (void)state;
    rig_open(&r, 500 * KIB, UFS_BIG);
    r.srv.reset_after = 100000;
    assert_int_equal(rig_dl(&r, "/reset", false), XFER_E_RESET);
    dl_status(&r.d, &st);
    assert_int_equal(st.state, DL_FAILED);
    assert_int_equal(st.err, XFER_E_RESET);
    assert_true(file_size(&r) <= 100000);
    assert_file_prefix(&r, file_size(&r));
    rig_close(&r);
}

static void test_http_errors(void **state)
{
    static const uint8_t old[] = "old content";
    struct rig r;

    (void)state;
    rig_open(&r, 64 * KIB, UFS_BIG);
    put_file(&r, old, sizeof(old));
    assert_int_equal(rig_dl(&r, "/404", false), XFER_E_NOT_FOUND);
    assert_int_equal(r.detail, 404);
    assert_int_equal(rig_dl(&r, "/500", false), XFER_E_SERVER);
    assert_int_equal(r.detail, 500);
    /* an error page is not content: the old file is untouched */
    {
        uint8_t buf[64];
        assert_int_equal(ufs_pread(&r.u, "fw.bin", 0, buf, sizeof(buf)), (ssize_t)sizeof(old));
        assert_memory_equal(buf, old, sizeof(old));
    }
    rig_close(&r);
}

static void test_rate_limit(void **state)
{
    struct rig r;
    double t;

    (void)state;
    rig_open(&r, 600 * KIB, UFS_BIG);
    r.net.rate = 1000 * KIB; /* 0.6 s at the rate */
    assert_int_equal(rig_start(&r, "/file", false), 0);
    t = run_until(&r, &r.done_calls, 20.0);
    assert_int_equal(r.err, XFER_OK);
    assert_true(t >= 0.35); /* loosely: libcurl averages its rate */
    assert_true(t < 5.0);
    assert_file_prefix(&r, r.len);
    rig_close(&r);
}

static void test_stall_timeout(void **state)
{
    struct rig r;
    double t;

    (void)state;
    rig_open(&r, 300 * KIB, UFS_BIG);
    r.net.stall = true;
    r.opts.low_speed_time = 0.3;
    assert_int_equal(rig_start(&r, "/file", false), 0);
    t = run_until(&r, &r.done_calls, 10.0);
    assert_int_equal(r.done_calls, 1);
    assert_int_equal(r.err, XFER_E_TIMEOUT);
    assert_true(t >= 0.25 && t < 3.0);
    rig_close(&r);
}

static void test_stall_then_move(void **state)
{
    struct rig r;

    (void)state;
    rig_open(&r, 600 * KIB, UFS_BIG);
    r.net.rate = 2000 * KIB;
    assert_int_equal(rig_start(&r, "/file", false), 0);
    run_until(&r, NULL, 0.1);
    r.net.stall = true;
    xfer_env_changed(&r.env);
    run_until(&r, NULL, 0.3);
    assert_int_equal(r.done_calls, 0);
    r.net.stall = false;
    r.net.rate = 0;
    xfer_env_changed(&r.env);
    run_until(&r, &r.done_calls, 10.0);
    assert_int_equal(r.err, XFER_OK);
    assert_file_prefix(&r, r.len);
    rig_close(&r);
}

static void test_server_stops_sending(void **state)
{
    struct rig r;
    double t;

    (void)state;
    rig_open(&r, 300 * KIB, UFS_BIG);
    r.opts.low_speed_time = 0.5;
    assert_int_equal(rig_start(&r, "/hang", false), 0);
    t = run_until(&r, &r.done_calls, 10.0);
    assert_int_equal(r.err, XFER_E_TIMEOUT);
    assert_true(t >= 0.45 && t < 3.0);
    rig_close(&r);
}

static void test_refuse_and_dns(void **state)
{
    struct rig r;
    char url[128];

    (void)state;
    rig_open(&r, 10 * KIB, UFS_BIG);
    r.net.refuse = true;
    assert_int_equal(rig_dl(&r, "/file", false), XFER_E_CONNECT);
    r.net.refuse = false;
    r.net.dns_fail = true;
    assert_int_equal(rig_dl(&r, "/file", false), XFER_E_DNS);
    /* an IP literal needs no lookup */
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/file", r.srv.port);
    assert_int_equal(rig_dl(&r, url, false), XFER_OK);
    r.net.dns_fail = false;
    /* a real lookup failure takes the same path */
    assert_int_equal(rig_dl(&r, "http://nonexistent.invalid/file", false), XFER_E_DNS);
    /* and a real refusal: nothing listens on port 1 */
    assert_int_equal(rig_dl(&r, "http://127.0.0.1:1/file", false), XFER_E_CONNECT);
    assert_file_prefix(&r, r.len);
    rig_close(&r);
}

static void test_no_network(void **state)
{
    struct rig r;
    struct dl_status st;

    (void)state;
    rig_open(&r, 600 * KIB, UFS_BIG);
    r.net.up = false;
    assert_int_equal(rig_start(&r, "/file", false), -ENETDOWN);
    dl_status(&r.d, &st);
    assert_int_equal(st.state, DL_FAILED);
    assert_int_equal(st.err, XFER_E_NO_NETWORK);
    /* an outage in the middle ends the transfer */
    r.net.up = true;
    r.net.rate = 500 * KIB;
    assert_int_equal(rig_start(&r, "/file", false), 0);
    run_until(&r, NULL, 0.2);
    r.net.up = false;
    xfer_env_changed(&r.env);
    run_until(&r, &r.done_calls, 5.0);
    assert_int_equal(r.done_calls, 1);
    assert_int_equal(r.err, XFER_E_NO_NETWORK);
    rig_close(&r);
}

static void test_bad_url(void **state)
{
    struct rig r;
    struct dl_status st;

    (void)state;
    rig_open(&r, 10 * KIB, UFS_BIG);
    assert_int_equal(rig_start(&r, "gopher://x/y", false), -EPROTONOSUPPORT);
    dl_status(&r.d, &st);
    assert_int_equal(st.err, XFER_E_URL);
    assert_int_equal(rig_start(&r, "no-scheme", false), -EPROTONOSUPPORT);
    assert_int_equal(file_size(&r), UINT64_MAX); /* nothing was created */
    assert_int_equal(rig_dl(&r, "http://", false), XFER_E_URL);
    rig_close(&r);
}

static void test_max_size(void **state)
{
    struct rig r;

    (void)state;
    rig_open(&r, 100 * KIB, UFS_BIG);
    r.opts.max_size = r.len - 1;
    assert_int_equal(rig_dl(&r, "/file", false), XFER_E_TOO_BIG);
    /* without a length the limit hits when the bytes pass it */
    assert_int_equal(rig_dl(&r, "/nolen", false), XFER_E_TOO_BIG);
    r.opts.max_size = r.len;
    assert_int_equal(rig_dl(&r, "/file", false), XFER_OK);
    assert_file_prefix(&r, r.len);
    rig_close(&r);
}

static void test_unknown_length(void **state)
{
    struct rig r;
    struct dl_status st;

    (void)state;
    rig_open(&r, 600 * KIB, UFS_BIG);
    assert_int_equal(rig_dl(&r, "/nolen", false), XFER_OK);
    assert_file_prefix(&r, r.len);
    assert_true(r.unknown_calls >= 1); /* after the syncs (coalesced per loop turn) */
    assert_int_equal(r.pct_calls, 1);  /* the 100 % at the end, once the size is known */
    dl_status(&r.d, &st);
    assert_int_equal(st.total, r.len);
    rig_close(&r);
}

static void test_storage_full(void **state)
{
    struct rig r;
    uint64_t total;

    (void)state;
    rig_open(&r, 256 * KIB, 128 * KIB); /* the area cannot hold the file */
    ufs_space(&r.u, NULL, &total);
    assert_true(total < r.len);
    assert_int_equal(rig_dl(&r, "/file", false), XFER_E_STORAGE_FULL);
    rig_close(&r);
}

static void test_cancel_no_callback(void **state)
{
    struct rig r;
    struct dl_status st;

    (void)state;
    rig_open(&r, 600 * KIB, UFS_BIG);
    r.net.rate = 500 * KIB;
    assert_int_equal(rig_start(&r, "/file", false), 0);
    run_until(&r, NULL, 0.1);
    dl_cancel(&r.d);
    run_until(&r, NULL, 0.3);
    assert_int_equal(r.done_calls, 0);
    dl_status(&r.d, &st);
    assert_int_equal(st.state, DL_FAILED);
    assert_int_equal(st.err, XFER_E_ABORTED);
    /* cancelled while still in the world's latency */
    r.net.latency = 0.2;
    assert_int_equal(rig_start(&r, "/file", false), 0);
    dl_cancel(&r.d);
    run_until(&r, NULL, 0.4);
    assert_int_equal(r.done_calls, 0);
    /* cancelled right after start, before libcurl ran */
    r.net.latency = 0;
    assert_int_equal(rig_start(&r, "/file", false), 0);
    dl_cancel(&r.d);
    run_until(&r, NULL, 0.2);
    assert_int_equal(r.done_calls, 0);
    /* the job can start again */
    r.net.rate = 0;
    assert_int_equal(rig_dl(&r, "/file", false), XFER_OK);
    assert_file_prefix(&r, r.len);
    rig_close(&r);
}

static void test_power_cut_keeps_synced_prefix(void **state)
{
    struct rig r;
    uint64_t kept;

    (void)state;
    rig_open(&r, 1200 * KIB, UFS_BIG);
    r.cancel_at = 600 * KIB; /* the "cut": dl_cancel from inside progress */
    assert_int_equal(rig_start(&r, "/file", false), 0);
    run_until(&r, NULL, 3.0);
    assert_true(r.cancelled);
    assert_int_equal(r.done_calls, 0);
    kept = file_size(&r);
    assert_true(kept >= 2 * DL_SYNC_EVERY - 64 * KIB && kept <= r.got_at_cancel);
    assert_true(kept >= DL_SYNC_EVERY);
    assert_file_prefix(&r, kept);
    /* a power cycle of the storage, then resume from the synced size */
    ufs_unmount(&r.u);
    flash_power_on(&r.f);
    assert_int_equal(ufs_mount(&r.u, &r.f, 0, UFS_BIG), 0);
    assert_int_equal(file_size(&r), kept);
    r.cancel_at = 0;
    assert_int_equal(rig_dl(&r, "/file", true), XFER_OK);
    assert_file_prefix(&r, r.len);
    rig_close(&r);
}

static void test_latency(void **state)
{
    struct rig r;
    double t;

    (void)state;
    rig_open(&r, 10 * KIB, UFS_BIG);
    r.net.latency = 0.25;
    assert_int_equal(rig_start(&r, "/file", false), 0);
    t = run_until(&r, &r.done_calls, 5.0);
    assert_int_equal(r.err, XFER_OK);
    assert_true(t >= 0.24);
    rig_close(&r);
}

/* ---- the core without dl: a memory sink, cancel from inside progress -------------------- */

struct mem {
    uint8_t buf[64 * KIB];
    unsigned progress, done;
    struct xfer *x;
};

static int mem_write(void *ctx, uint64_t off, const void *buf, size_t len)
{
    struct mem *m = ctx;

    if (off + len > sizeof(m->buf))
        return -ENOSPC;
    memcpy(m->buf + off, buf, len);
    return 0;
}

static void mem_progress(void *ctx, uint64_t got, uint64_t total)
{
    struct mem *m = ctx;

    (void)got;
    (void)total;
    m->progress++;
    xfer_cancel(m->x); /* safe from inside a callback: nothing follows */
    m->x = NULL;
}

static void mem_done(void *ctx, enum xfer_err err, int detail, uint64_t total)
{
    struct mem *m = ctx;

    (void)err;
    (void)detail;
    (void)total;
    m->done++;
    xfer_cancel(m->x); /* from inside done: a no-op, the core frees it */
}

static void test_core_cancel_in_callbacks(void **state)
{
    struct rig r;
    struct mem *m = calloc(1, sizeof(*m));
    struct xfer_sink sink = {.write = mem_write, .ctx = m};
    struct xfer_cb cb = {.progress = mem_progress, .done = mem_done, .ctx = m};
    struct xfer_opts o = {.url = "http://fota.example.com/file", .connect_timeout = 5};
    enum xfer_err err;

    (void)state;
    assert_non_null(m);
    rig_open(&r, 40 * KIB, UFS_BIG);
    m->x = xfer_start(&r.env, &o, &sink, &cb, &err);
    assert_non_null(m->x);
    assert_int_equal(err, XFER_OK);
    run_until(&r, NULL, 1.0);
    assert_int_equal(m->progress, 1);
    assert_int_equal(m->done, 0);
    /* done with a cancel inside it; no progress this time */
    cb.progress = NULL;
    m->x = xfer_start(&r.env, &o, &sink, &cb, &err);
    assert_non_null(m->x);
    run_until(&r, &m->done, 5.0);
    assert_int_equal(m->done, 1);
    assert_memory_equal(m->buf, r.data, r.len);
    rig_close(&r);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_names),
        cmocka_unit_test(test_map_parse),
        cmocka_unit_test(test_map_lookup),
        cmocka_unit_test(test_http_download),
        cmocka_unit_test(test_resume_from_offset),
        cmocka_unit_test(test_cut_after_then_resume),
        cmocka_unit_test(test_server_reset),
        cmocka_unit_test(test_http_errors),
        cmocka_unit_test(test_rate_limit),
        cmocka_unit_test(test_stall_timeout),
        cmocka_unit_test(test_stall_then_move),
        cmocka_unit_test(test_server_stops_sending),
        cmocka_unit_test(test_refuse_and_dns),
        cmocka_unit_test(test_no_network),
        cmocka_unit_test(test_bad_url),
        cmocka_unit_test(test_max_size),
        cmocka_unit_test(test_unknown_length),
        cmocka_unit_test(test_storage_full),
        cmocka_unit_test(test_cancel_no_callback),
        cmocka_unit_test(test_power_cut_keeps_synced_prefix),
        cmocka_unit_test(test_latency),
        cmocka_unit_test(test_core_cancel_in_callbacks),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
