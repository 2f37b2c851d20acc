/*
 * test_coap.c: unit tests of the CoAP download backend (protocols/coap_client.c) through the
 * transfer core (xfer_start) against the real libcoap server: coap-server-notls is started on a
 * free UDP port, images are PUT into its dynamic resources with coap-client-notls, and the
 * backend fetches them on a libev loop into a RAM sink. Covers block sizes, resume, the address
 * map, error classes and the world's stall, rate and outage. Skips (with a message) when the
 * libcoap3-bin binaries are missing. MODTWIN_COAP_BENCH=1 also times coap-client-notls.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <ev.h>

#include "protocols/xfer.h"

#define BIG_SIZE   (4u << 20) /* the 4 MiB image of the brief */
#define SMALL_SIZE 40003u     /* not a multiple of any block size */
#define MID_SIZE   200003u
#define GUARD_S    30.0 /* a test that runs longer than this has hung */

extern char **environ;

/*
 * The server and the images, set up once for the group: one coap-server-notls holds three
 * PUT-created resources in RAM (-d 10): "fw" (4 MiB), "mid" and "small" (sizes that are not a
 * multiple of any block size, so the last block is short). Tests never change them.
 */
struct fixture {
    pid_t server;
    unsigned port;
    char dir[64];
    uint8_t *big, *small, *mid;
    bool have_bins;
};

/*
 * One download: its own loop and env (so every test also creates and frees a libcoap context),
 * a RAM sink that records where writes landed, and what the callbacks saw. The world (net) and
 * the map belong to the run so a test can change them while the loop runs.
 */
struct run {
    struct ev_loop *loop;
    struct xfer_env env;
    struct xfer_net net;
    struct xfer_map map;
    struct xfer_opts o;
    ev_timer guard, action;
    uint8_t *buf;
    size_t cap;
    uint64_t first_off, next_off, committed;
    bool out_of_order;
    int done_calls;
    enum xfer_err err;
    int detail;
    uint64_t total, progress_total;
    struct xfer *x;
    uint64_t cancel_at; /* cancel from the progress callback past this many bytes */
    bool cancelled;
};

/* ---- helpers: files, processes, ports ------------------------------------------------------ */

/* Deterministic bytes (xorshift32): a failing comparison is reproducible. */
static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t s = seed;

    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        p[i] = (uint8_t)s;
    }
}

/* Whether PATH has an executable name (the libcoap3-bin binaries are optional here). */
static bool in_path(const char *name)
{
    const char *path = getenv("PATH");
    char buf[512];

    while (path && *path) {
        const char *end = strchr(path, ':');
        size_t n = end ? (size_t)(end - path) : strlen(path);
        snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, name);
        if (access(buf, X_OK) == 0)
            return true;
        path = end ? end + 1 : NULL;
    }
    return false;
}

/* Binds a UDP socket to 127.0.0.1:port (0 = any); returns the port bound or 0. */
static unsigned udp_probe(unsigned port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    unsigned got = 0;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        got = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return got;
}

/* A UDP port that is free now (the server also wants TCP on it: checked too). */
static unsigned free_port(void)
{
    for (int i = 0; i < 50; i++) {
        unsigned p = udp_probe(0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p)};
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        bool ok;

        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        if (fd >= 0)
            close(fd);
        if (p && ok)
            return p;
    }
    return 0;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Runs argv to its end with stdout/stderr to /dev/null; the exit status or -1. */
static int run_cmd(char *const argv[])
{
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int st = -1;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) != 0)
        pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    if (pid < 0 || waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Writes data to DIR/name and PUTs it as resource /name (coap-client exits 0 even on failure:
 * the downloads check the bytes). */
static int put_image(struct fixture *f, const char *name, const uint8_t *data, size_t len)
{
    char file[128], uri[128];
    FILE *fp;

    snprintf(file, sizeof(file), "%s/%s", f->dir, name);
    fp = fopen(file, "wb");
    if (!fp || fwrite(data, 1, len, fp) != len) {
        if (fp)
            fclose(fp);
        return -1;
    }
    fclose(fp);
    snprintf(uri, sizeof(uri), "coap://127.0.0.1:%u/%s", f->port, name);
    char *argv[] = {
        "coap-client-notls", "-m", "put", "-b", "1024", "-B", "30", "-f", file, uri, NULL};
    return run_cmd(argv);
}

/*
 * Starts the server on a free port and uploads the images. Missing binaries are not a failure:
 * every test then skips with a message. The server is ready once its UDP port is taken.
 */
static int group_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char portstr[16];
    posix_spawn_file_actions_t fa;

    if (!f)
        return -1;
    *state = f;
    f->have_bins = in_path("coap-server-notls") && in_path("coap-client-notls");
    if (!f->have_bins) {
        fprintf(stderr, "test_coap: coap-server-notls/coap-client-notls not found "
                        "(apt-get install libcoap3-bin): tests skipped\n");
        return 0;
    }
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_coap.XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    f->port = free_port();
    if (!f->port)
        return -1;
    snprintf(portstr, sizeof(portstr), "%u", f->port);
    char *argv[] = {"coap-server-notls", "-A", "127.0.0.1", "-p", portstr, "-d", "10", NULL};
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    if (posix_spawnp(&f->server, argv[0], &fa, NULL, argv, environ) != 0)
        f->server = 0;
    posix_spawn_file_actions_destroy(&fa);
    if (!f->server)
        return -1;
    /* Ready once it holds the port (we can no longer bind it). */
    for (int i = 0; i < 500 && udp_probe(f->port) == f->port; i++)
        usleep(10000);
    f->big = malloc(BIG_SIZE);
    f->small = malloc(SMALL_SIZE);
    f->mid = malloc(MID_SIZE);
    if (!f->big || !f->small || !f->mid)
        return -1;
    fill(f->big, BIG_SIZE, 0x1234567);
    fill(f->small, SMALL_SIZE, 0xabcdef);
    fill(f->mid, MID_SIZE, 0x7777);
    if (put_image(f, "fw", f->big, BIG_SIZE) != 0 ||
        put_image(f, "small", f->small, SMALL_SIZE) != 0 ||
        put_image(f, "mid", f->mid, MID_SIZE) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    struct fixture *f = *state;
    char path[128];

    if (f->server > 0) {
        kill(f->server, SIGTERM);
        waitpid(f->server, NULL, 0);
    }
    if (f->dir[0]) {
        const char *names[] = {"fw", "small", "mid"};
        for (size_t i = 0; i < 3; i++) {
            snprintf(path, sizeof(path), "%s/%s", f->dir, names[i]);
            unlink(path);
        }
        rmdir(f->dir);
    }
    free(f->big);
    free(f->small);
    free(f->mid);
    free(f);
    return 0;
}

/* ---- the RAM sink and callbacks ------------------------------------------------------------ */

/* The RAM sink: the first offset must be the resume offset and every later write must follow
 * the previous one (the backend delivers in order); past the buffer it is full. */
static int sink_write(void *ctx, uint64_t off, const void *buf, size_t len)
{
    struct run *r = ctx;

    if (r->next_off == UINT64_MAX)
        r->first_off = r->next_off = off;
    if (off != r->next_off)
        r->out_of_order = true;
    if (off + len > r->cap)
        return -ENOSPC;
    memcpy(r->buf + off, buf, len);
    r->next_off = off + len;
    return 0;
}

static int sink_commit(void *ctx, uint64_t total)
{
    ((struct run *)ctx)->committed = total;
    return 0;
}

/* Progress milestones come from the core's zero timer, so cancelling here is allowed. */
static void on_progress(void *ctx, uint64_t got, uint64_t total)
{
    struct run *r = ctx;

    r->progress_total = total;
    if (r->cancel_at && got >= r->cancel_at && !r->cancelled) {
        r->cancelled = true;
        xfer_cancel(r->x);
        r->x = NULL;
        ev_break(r->loop, EVBREAK_ALL);
    }
}

/* done must come exactly once: it is counted, and it stops the loop. */
static void on_done(void *ctx, enum xfer_err err, int detail, uint64_t total)
{
    struct run *r = ctx;

    r->done_calls++;
    r->err = err;
    r->detail = detail;
    r->total = total;
    r->x = NULL;
    ev_break(r->loop, EVBREAK_ALL);
}

static void guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

/* A fresh run with generous time-outs (a loaded CI box must not turn them into failures). */
static void run_init(struct run *r, size_t cap)
{
    memset(r, 0, sizeof(*r));
    r->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(r->loop);
    r->net.up = true;
    r->env.loop = r->loop;
    r->env.net = &r->net;
    r->env.map = &r->map;
    r->buf = calloc(1, cap ? cap : 1);
    assert_non_null(r->buf);
    r->cap = cap;
    r->next_off = UINT64_MAX;
    r->err = XFER_E_COUNT;
    r->o.connect_timeout = 5;
    r->o.low_speed_time = 5;
    ev_timer_init(&r->guard, guard_cb, GUARD_S, 0.);
}

/* Starts url and runs the loop until done (or the guard). Returns the seconds it took. */
static double run_url(struct run *r, const char *url)
{
    struct xfer_sink sink = {sink_write, sink_commit, r};
    struct xfer_cb cb = {on_progress, on_done, r};
    enum xfer_err e = XFER_E_COUNT;
    double t0 = now_s();

    r->o.url = url;
    r->x = xfer_start(&r->env, &r->o, &sink, &cb, &e);
    if (!r->x) {
        r->err = e;
        return 0;
    }
    ev_timer_start(r->loop, &r->guard);
    ev_run(r->loop, 0);
    ev_timer_stop(r->loop, &r->guard);
    return now_s() - t0;
}

static void run_free(struct run *r)
{
    if (r->x)
        xfer_cancel(r->x);
    xfer_env_free(&r->env);
    /* Nothing of ours may be left on the loop. */
    ev_run(r->loop, EVRUN_NOWAIT);
    ev_loop_destroy(r->loop);
    free(r->buf);
}

/* Skips the calling test when the libcoap binaries are missing. */
static void need_server(void **state)
{
    struct fixture *f = *state;

    if (!f->have_bins) {
        fprintf(stderr, "test_coap: skipped: coap-server-notls not installed\n");
        skip();
    }
}

static void url_of(char *buf, size_t cap, const struct fixture *f, const char *res)
{
    snprintf(buf, cap, "coap://127.0.0.1:%u/%s", f->port, res);
}

/* A whole download of data (len bytes) from resource res with the given block size. */
static void fetch_and_compare(void **state, const char *res, const uint8_t *data, size_t len,
                              unsigned block, uint64_t resume)
{
    struct fixture *f = *state;
    struct run r;
    char url[128];
    double secs;

    need_server(state);
    run_init(&r, len);
    r.o.coap_block = block;
    r.o.resume_from = resume;
    url_of(url, sizeof(url), f, res);
    secs = run_url(&r, url);
    assert_int_equal(r.done_calls, 1);
    assert_int_equal(r.err, XFER_OK);
    assert_int_equal(r.detail, 205);
    assert_int_equal(r.total, len);
    assert_int_equal(r.committed, len);
    /* From Size2. coap-server 4.3.1 sends Size2 only with block 0, so a resumed download
     * may not learn the total. */
    if (resume == 0 || r.progress_total != 0)
        assert_int_equal(r.progress_total, len);
    assert_false(r.out_of_order);
    assert_int_equal(r.first_off, resume);
    assert_int_equal(r.next_off, len);
    assert_memory_equal(r.buf + resume, data + resume, len - resume);
    fprintf(stderr, "test_coap: %s block %u from %llu: %zu bytes in %.3f s\n", res,
            block ? block : 1024, (unsigned long long)resume, len, secs);
    run_free(&r);
}

/* ---- a lossy relay on the test's loop (drops or duplicates chosen datagrams) -------------- */

struct relay {
    int front, back; /* front: the client's side; back: connected to the server */
    struct sockaddr_in client;
    ev_io fio, bio;
    unsigned up_n, down_n; /* datagrams seen each way */
    unsigned drop_up;      /* drop this client->server datagram (1-based), 0 = none */
    unsigned dup_down;     /* send this server->client datagram twice */
    unsigned port;
};

static void relay_front_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct relay *rl = w->data;
    uint8_t buf[2048];
    socklen_t len = sizeof(rl->client);
    ssize_t n = recvfrom(rl->front, buf, sizeof(buf), 0, (struct sockaddr *)&rl->client, &len);

    (void)loop;
    (void)revents;
    if (n < 0 || ++rl->up_n == rl->drop_up)
        return;
    if (send(rl->back, buf, (size_t)n, 0) < 0)
        return;
}

static void relay_back_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct relay *rl = w->data;
    uint8_t buf[2048];
    ssize_t n = recv(rl->back, buf, sizeof(buf), 0);
    int copies;

    (void)loop;
    (void)revents;
    if (n < 0)
        return;
    copies = ++rl->down_n == rl->dup_down ? 2 : 1;
    while (copies-- > 0)
        if (sendto(rl->front, buf, (size_t)n, 0, (struct sockaddr *)&rl->client,
                   sizeof(rl->client)) < 0)
            return;
}

static void relay_open(struct relay *rl, struct ev_loop *loop, unsigned server_port)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);

    memset(rl, 0, sizeof(*rl));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rl->front = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    rl->back = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    assert_true(rl->front >= 0 && rl->back >= 0);
    assert_int_equal(bind(rl->front, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(rl->front, (struct sockaddr *)&a, &len), 0);
    rl->port = ntohs(a.sin_port);
    a.sin_port = htons((uint16_t)server_port);
    assert_int_equal(connect(rl->back, (struct sockaddr *)&a, sizeof(a)), 0);
    ev_io_init(&rl->fio, relay_front_cb, rl->front, EV_READ);
    ev_io_init(&rl->bio, relay_back_cb, rl->back, EV_READ);
    rl->fio.data = rl->bio.data = rl;
    ev_io_start(loop, &rl->fio);
    ev_io_start(loop, &rl->bio);
}

static void relay_close(struct relay *rl, struct ev_loop *loop)
{
    ev_io_stop(loop, &rl->fio);
    ev_io_stop(loop, &rl->bio);
    close(rl->front);
    close(rl->back);
}

/* ---- tests --------------------------------------------------------------------------------- */

/* The 4 MiB image with the default block size (1024), timed. */
static void test_fetch_4mib_1024(void **state)
{
    struct fixture *f = *state;

    fetch_and_compare(state, "fw", f ? f->big : NULL, BIG_SIZE, 0, 0);
    if (getenv("MODTWIN_COAP_BENCH")) {
        /* The reference client on the same server, same block size, for comparison. */
        char url[128];
        double t0 = now_s();
        url_of(url, sizeof(url), f, "fw");
        char *argv[] = {"coap-client-notls", "-b", "1024", "-B", "30", "-o",
                        "/dev/null",         url,  NULL};
        run_cmd(argv);
        fprintf(stderr, "test_coap: coap-client-notls -b 1024 -o /dev/null: %.3f s\n",
                now_s() - t0);
    }
}

static void test_block_512(void **state)
{
    struct fixture *f = *state;

    fetch_and_compare(state, "mid", f ? f->mid : NULL, MID_SIZE, 512, 0);
}

static void test_block_64(void **state)
{
    struct fixture *f = *state;

    fetch_and_compare(state, "small", f ? f->small : NULL, SMALL_SIZE, 64, 0);
}

/* A block size that is not a power of two rounds down (1000 -> 512). */
static void test_block_rounds_down(void **state)
{
    struct fixture *f = *state;

    fetch_and_compare(state, "small", f ? f->small : NULL, SMALL_SIZE, 1000, 0);
}

/* Resume at a block boundary, then inside a block (the overlap is skipped). */
static void test_resume(void **state)
{
    struct fixture *f = *state;

    fetch_and_compare(state, "mid", f ? f->mid : NULL, MID_SIZE, 1024, 100 * 1024);
    fetch_and_compare(state, "mid", f ? f->mid : NULL, MID_SIZE, 512, 5000);
}

/* The documents' host name through the address map (--map fota.example:5683=127.0.0.1:P). */
static void test_map(void **state)
{
    struct fixture *f = *state;
    struct run r;
    char spec[128];

    need_server(state);
    run_init(&r, SMALL_SIZE);
    snprintf(spec, sizeof(spec), "fota.example:5683=127.0.0.1:%u", f->port);
    assert_int_equal(xfer_map_add(&r.map, spec), 0);
    run_url(&r, "coap://fota.example:5683/small");
    assert_int_equal(r.err, XFER_OK);
    assert_memory_equal(r.buf, f->small, SMALL_SIZE);
    run_free(&r);
}

/* A name that is not mapped goes through the asynchronous lookup ("localhost": /etc/hosts). */
static void test_name_lookup(void **state)
{
    struct fixture *f = *state;
    struct run r;
    char url[128];

    need_server(state);
    run_init(&r, SMALL_SIZE);
    snprintf(url, sizeof(url), "coap://localhost:%u/small", f->port);
    run_url(&r, url);
    assert_int_equal(r.err, XFER_OK);
    assert_memory_equal(r.buf, f->small, SMALL_SIZE);
    run_free(&r);
}

/* A resource the server does not have: 4.04 -> NOT_FOUND with detail 404. */
static void test_not_found(void **state)
{
    struct fixture *f = *state;
    struct run r;
    char url[128];

    need_server(state);
    run_init(&r, 16);
    url_of(url, sizeof(url), f, "no/such/image");
    run_url(&r, url);
    assert_int_equal(r.done_calls, 1);
    assert_int_equal(r.err, XFER_E_NOT_FOUND);
    assert_int_equal(r.detail, 404);
    run_free(&r);
}

/*
 * Nothing listens on the port: the kernel answers the first datagram with ICMP port
 * unreachable, libcoap reports COAP_NACK_ICMP_ISSUE and the backend ends with CONNECT at once
 * (a real network may drop the ICMP: then the 1 s connect_timeout gives TIMEOUT).
 */
static void test_no_server(void **state)
{
    struct run r;
    char url[128];
    unsigned port;
    double secs;

    need_server(state);
    port = free_port();
    assert_true(port != 0);
    run_init(&r, 16);
    r.o.connect_timeout = 1;
    snprintf(url, sizeof(url), "coap://127.0.0.1:%u/fw", port);
    secs = run_url(&r, url);
    assert_int_equal(r.done_calls, 1);
    assert_int_equal(r.err, XFER_E_CONNECT);
    assert_true(secs < 0.9);
    run_free(&r);
}

/* The world's DNS outage and refusal apply before any datagram. */
static void test_world_dns_refuse(void **state)
{
    struct fixture *f = *state;
    struct run r;
    char url[128];

    need_server(state);
    url_of(url, sizeof(url), f, "small");
    run_init(&r, SMALL_SIZE);
    r.net.dns_fail = true;
    run_url(&r, url);
    assert_int_equal(r.err, XFER_E_DNS);
    run_free(&r);

    run_init(&r, SMALL_SIZE);
    r.net.refuse = true;
    run_url(&r, url);
    assert_int_equal(r.err, XFER_E_CONNECT);
    run_free(&r);
}

/* A URL without a host fails in the backend, an unknown scheme already in the core. */
static void test_bad_urls(void **state)
{
    struct run r;

    (void)state;
    run_init(&r, 16);
    run_url(&r, "coap:///nohost");
    assert_int_equal(r.err, XFER_E_URL);
    run_free(&r);
    run_init(&r, 16);
    run_url(&r, "coaps://127.0.0.1/fw"); /* no backend takes coaps */
    assert_int_equal(r.err, XFER_E_URL);
    run_free(&r);
}

/* A stall holds the next block request back; low_speed_time then ends it with TIMEOUT. */
static void test_stall_times_out(void **state)
{
    struct fixture *f = *state;
    struct run r;
    char url[128];
    double secs;

    need_server(state);
    run_init(&r, SMALL_SIZE);
    r.net.stall = true;
    r.o.connect_timeout = 0;
    r.o.low_speed_time = 0.3;
    url_of(url, sizeof(url), f, "small");
    secs = run_url(&r, url);
    assert_int_equal(r.err, XFER_E_TIMEOUT);
    assert_true(secs >= 0.29 && secs < 2);
    run_free(&r);
}

/* The world recovers from its stall while the transfer waits. */
static void unstall_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct run *r = w->data;

    (void)loop;
    (void)revents;
    r->net.stall = false;
    xfer_env_changed(&r->env);
}

/* A stall shorter than low_speed_time: the download resumes when the world says so. */
static void test_stall_then_resume(void **state)
{
    struct fixture *f = *state;
    struct run r;
    char url[128];
    double secs;

    need_server(state);
    run_init(&r, SMALL_SIZE);
    r.net.stall = true;
    r.o.low_speed_time = 2;
    ev_timer_init(&r.action, unstall_cb, 0.2, 0.);
    r.action.data = &r;
    ev_timer_start(r.loop, &r.action);
    url_of(url, sizeof(url), f, "small");
    secs = run_url(&r, url);
    assert_int_equal(r.err, XFER_OK);
    assert_memory_equal(r.buf, f->small, SMALL_SIZE);
    assert_true(secs >= 0.19);
    run_free(&r);
}

/* 40 KB at 100 KB/s: block requests are spaced, so it takes at least ~0.39 s. */
static void test_rate(void **state)
{
    struct fixture *f = *state;
    struct run r;
    char url[128];
    double secs;

    need_server(state);
    run_init(&r, SMALL_SIZE);
    r.net.rate = 100000;
    url_of(url, sizeof(url), f, "small");
    secs = run_url(&r, url);
    assert_int_equal(r.err, XFER_OK);
    assert_memory_equal(r.buf, f->small, SMALL_SIZE);
    assert_true(secs >= 0.37);
    assert_true(secs < 3);
    run_free(&r);
}

/* The world loses the network while the transfer runs. */
static void outage_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct run *r = w->data;

    (void)loop;
    (void)revents;
    r->net.up = false;
    xfer_env_changed(&r->env);
}

/* An outage mid-transfer (paced so that it is still running) ends it with NO_NETWORK. */
static void test_outage(void **state)
{
    struct fixture *f = *state;
    struct run r;
    char url[128];

    need_server(state);
    run_init(&r, SMALL_SIZE);
    r.net.rate = 20000;
    ev_timer_init(&r.action, outage_cb, 0.2, 0.);
    r.action.data = &r;
    ev_timer_start(r.loop, &r.action);
    url_of(url, sizeof(url), f, "small");
    run_url(&r, url);
    assert_int_equal(r.err, XFER_E_NO_NETWORK);
    assert_true(r.next_off > 0 && r.next_off < SMALL_SIZE);
    run_free(&r);
}

/* The core's own classes through this backend: cut_after -> RESET, max_size -> TOO_BIG. */
static void test_cut_and_max(void **state)
{
    struct fixture *f = *state;
    struct run r;
    char url[128];

    need_server(state);
    url_of(url, sizeof(url), f, "mid");
    run_init(&r, MID_SIZE);
    r.net.cut_after = 5000;
    run_url(&r, url);
    assert_int_equal(r.err, XFER_E_RESET);
    assert_int_equal(r.next_off, 5000);
    assert_memory_equal(r.buf, f->mid, 5000);
    run_free(&r);

    run_init(&r, MID_SIZE);
    r.o.max_size = 100000;
    run_url(&r, url);
    assert_int_equal(r.err, XFER_E_TOO_BIG);
    run_free(&r);
}

/* A sink that is too small: STORAGE_FULL. */
static void test_sink_full(void **state)
{
    struct fixture *f = *state;
    struct run r;
    char url[128];

    need_server(state);
    run_init(&r, 10000);
    url_of(url, sizeof(url), f, "small");
    run_url(&r, url);
    assert_int_equal(r.err, XFER_E_STORAGE_FULL);
    run_free(&r);
}

/* Cancel from the progress callback: no done follows; the env then serves a new download. */
static void test_cancel_then_again(void **state)
{
    struct fixture *f = *state;
    struct run r;
    struct xfer_sink sink = {sink_write, sink_commit, &r};
    struct xfer_cb cb = {on_progress, on_done, &r};
    enum xfer_err e;
    char url[128];

    need_server(state);
    run_init(&r, BIG_SIZE);
    r.cancel_at = 100000;
    url_of(url, sizeof(url), f, "fw");
    run_url(&r, url);
    assert_true(r.cancelled);
    assert_int_equal(r.done_calls, 0);
    assert_null(r.x);
    /* Same env, a second transfer. */
    r.cancel_at = 0;
    r.next_off = UINT64_MAX;
    r.o.url = url;
    url_of(url, sizeof(url), f, "small");
    r.x = xfer_start(&r.env, &r.o, &sink, &cb, &e);
    assert_non_null(r.x);
    ev_timer_start(r.loop, &r.guard);
    ev_run(r.loop, 0);
    ev_timer_stop(r.loop, &r.guard);
    assert_int_equal(r.done_calls, 1);
    assert_int_equal(r.err, XFER_OK);
    assert_memory_equal(r.buf, f->small, SMALL_SIZE);
    run_free(&r);
}

/* Two downloads at once on one env (one libcoap context, two sessions). */
static void test_two_at_once(void **state)
{
    struct fixture *f = *state;
    struct run a, b;
    struct xfer_sink sa = {sink_write, sink_commit, &a}, sb = {sink_write, sink_commit, &b};
    struct xfer_cb ca = {NULL, on_done, &a}, cbb = {NULL, on_done, &b};
    enum xfer_err e;
    char ua[128], ub[128];

    need_server(state);
    run_init(&a, MID_SIZE);
    run_init(&b, SMALL_SIZE);
    ev_loop_destroy(b.loop);
    b.loop = a.loop; /* b shares a's loop and env */
    url_of(ua, sizeof(ua), f, "mid");
    url_of(ub, sizeof(ub), f, "small");
    a.o.url = ua;
    b.o.url = ub;
    a.x = xfer_start(&a.env, &a.o, &sa, &ca, &e);
    b.x = xfer_start(&a.env, &b.o, &sb, &cbb, &e);
    assert_non_null(a.x);
    assert_non_null(b.x);
    ev_timer_start(a.loop, &a.guard);
    while (a.done_calls + b.done_calls < 2 && ev_is_active(&a.guard))
        ev_run(a.loop, EVRUN_ONCE);
    ev_timer_stop(a.loop, &a.guard);
    assert_int_equal(a.err, XFER_OK);
    assert_int_equal(b.err, XFER_OK);
    assert_memory_equal(a.buf, f->mid, MID_SIZE);
    assert_memory_equal(b.buf, f->small, SMALL_SIZE);
    free(b.buf);
    run_free(&a);
}

/*
 * A lost request (the 3rd datagram) is retransmitted by libcoap from the ev_timer this backend
 * arms (ACK_TIMEOUT 2 s x 1..1.5), and a duplicated response is ignored: the bytes still match.
 * The relay runs on the same loop; the map sends the documents' host name to it.
 */
static void test_loss_and_duplicate(void **state)
{
    struct fixture *f = *state;
    struct relay rl;
    struct run r;
    char spec[128];
    double secs;

    need_server(state);
    run_init(&r, SMALL_SIZE);
    relay_open(&rl, r.loop, f->port);
    rl.drop_up = 3;
    rl.dup_down = 5;
    snprintf(spec, sizeof(spec), "fota.example:5683=127.0.0.1:%u", rl.port);
    assert_int_equal(xfer_map_add(&r.map, spec), 0);
    secs = run_url(&r, "coap://fota.example:5683/small");
    relay_close(&rl, r.loop);
    assert_int_equal(r.err, XFER_OK);
    assert_false(r.out_of_order);
    assert_memory_equal(r.buf, f->small, SMALL_SIZE);
    assert_true(secs >= 1.9 && secs < 4.5);
    assert_int_equal(rl.up_n, 40 + 1); /* 40 blocks of 1024 and the retransmission */
    fprintf(stderr, "test_coap: a lost request cost %.2f s (libcoap retransmission)\n", secs);
    run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fetch_4mib_1024),
        cmocka_unit_test(test_block_512),
        cmocka_unit_test(test_block_64),
        cmocka_unit_test(test_block_rounds_down),
        cmocka_unit_test(test_resume),
        cmocka_unit_test(test_map),
        cmocka_unit_test(test_name_lookup),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_no_server),
        cmocka_unit_test(test_world_dns_refuse),
        cmocka_unit_test(test_bad_urls),
        cmocka_unit_test(test_stall_times_out),
        cmocka_unit_test(test_stall_then_resume),
        cmocka_unit_test(test_rate),
        cmocka_unit_test(test_outage),
        cmocka_unit_test(test_cut_and_max),
        cmocka_unit_test(test_sink_full),
        cmocka_unit_test(test_cancel_then_again),
        cmocka_unit_test(test_two_at_once),
        cmocka_unit_test(test_loss_and_duplicate),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
