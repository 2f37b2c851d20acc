/*
 * PTY port. Why a keeper fd: without one, the master reports POLLHUP and EIO once the last host
 * closes (a level-triggered busy loop) and bytes written meanwhile reach the next opener. With
 * the keeper open neither happens; inotify on /dev/pts/N (IN_OPEN / IN_CLOSE_*) tells us when a
 * host comes and goes, and on each arrival the keeper's input queue is flushed of stale bytes.
 * Output pacing lives here because the queue does: a paced port's output waits in `out` until
 * the wire's schedule lets it go, so whoever watches out_len (a download) sees the backlog.
 * Not here: receive pacing and overrun (uart.c), line discipline (raw mode only).
 */
#include "hal/pty.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static int pty_make_raw(int fd)
{
    struct termios t;

    if (tcgetattr(fd, &t) < 0)
        return -errno;
    cfmakeraw(&t);
    cfsetispeed(&t, B115200);
    cfsetospeed(&t, B115200);
    if (tcsetattr(fd, TCSANOW, &t) < 0)
        return -errno;
    return 0;
}

/* Points link at target atomically (a host never sees the link missing). */
static int pty_link(const char *link, const char *target)
{
    char tmp[PATH_MAX + 16];

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.new%d", link, (int)getpid()) >= sizeof(tmp))
        return -ENAMETOOLONG;
    unlink(tmp);
    if (symlink(target, tmp) < 0)
        return -errno;
    if (rename(tmp, link) < 0) {
        int rc = -errno;
        unlink(tmp);
        return rc;
    }
    return 0;
}

/* ---- pacing arithmetic ---------------------------------------------------------------------- */

#define PTY_US          1000000LL
#define PTY_PACE_MAX_US (3600 * PTY_US) /* a longer stall counts as one hour (no overflow) */

static int64_t pty_us(double t)
{
    return (int64_t)(t * 1e6 + (t < 0 ? -0.5 : 0.5));
}

void pty_pace_start(struct pty_pace *pc, uint32_t baud, double now)
{
    pc->baud = baud;
    pc->t0 = pty_us(now);
    pc->sent = 0;
}

size_t pty_pace_room(const struct pty_pace *pc, double now)
{
    int64_t el = pty_us(now) - pc->t0;
    uint64_t may;

    if (!pc->baud)
        return SIZE_MAX;
    if (el <= 0)
        return 0;
    if (el > PTY_PACE_MAX_US)
        el = PTY_PACE_MAX_US;
    /* Bits on the wire in el microseconds, 10 per byte: el * baud / 10^7, floored. */
    may = (uint64_t)el * pc->baud / (10 * PTY_US);
    if (may <= pc->sent)
        return 0;
    return may - pc->sent > SIZE_MAX ? SIZE_MAX : (size_t)(may - pc->sent);
}

void pty_pace_sent(struct pty_pace *pc, size_t n)
{
    uint64_t k;

    pc->sent += n;
    if (!pc->baud)
        return;
    /* `baud` bytes take exactly 10 s: moving t0 on by that keeps the products small. */
    k = pc->sent / pc->baud;
    pc->t0 += (int64_t)k * 10 * PTY_US;
    pc->sent -= k * pc->baud;
}

double pty_pace_due(const struct pty_pace *pc, size_t n)
{
    uint64_t bits = (pc->sent + n) * 10 * (uint64_t)PTY_US; /* in bit-microseconds */
    uint64_t us = (bits + pc->baud - 1) / pc->baud;         /* rounded up: never early */

    return (double)(pc->t0 + (int64_t)us) / 1e6;
}

/* ---- output ---------------------------------------------------------------------------------- */

/*
 * Hands out[0, n) to the kernel, telling on_tx first; returns the bytes it took (fewer when the
 * host's side is full). A port that is gone loses everything queued.
 */
static size_t pty_put(struct pty *p, size_t n)
{
    size_t done = 0;

    if (p->on_tx && p->told < n) {
        p->on_tx(p->ctx, p->out + p->told, n - p->told);
        p->told = n;
    }
    while (done < n) {
        ssize_t w = write(p->master, p->out + done, n - done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN) {
                p->out_len = p->told = 0; /* the port is gone; nothing to keep */
                return done;
            }
            break;
        }
        done += (size_t)w;
    }
    memmove(p->out, p->out + done, p->out_len - done);
    p->out_len -= done;
    p->told -= done;
    return done;
}

static void pty_flush_out(struct pty *p)
{
    if (p->out_len)
        pty_put(p, p->out_len);
    if (p->out_len && !ev_is_active(&p->wio))
        ev_io_start(p->loop, &p->wio);
    else if (!p->out_len && ev_is_active(&p->wio))
        ev_io_stop(p->loop, &p->wio);
}

static void pty_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct pty *p = w->data;
    uint8_t buf[4096];
    ssize_t n;

    (void)loop;
    (void)revents;
    n = read(p->master, buf, sizeof(buf));
    if (n <= 0)
        return;
    p->rx(p->ctx, buf, (size_t)n);
}

/* Paced, bytes queued: the timer fires when the next chunk (PTY_PACE_TICK of wire) may leave. */
static void pty_pace_arm(struct pty *p, double now)
{
    size_t chunk = (size_t)((double)p->pace.baud / 10.0 * PTY_PACE_TICK);
    double after;

    if (chunk < 1)
        chunk = 1;
    if (chunk > p->out_len)
        chunk = p->out_len;
    /* A microsecond's margin: ev_now() is a double, the schedule counts whole microseconds. */
    after = pty_pace_due(&p->pace, chunk) - now + 1e-6;
    if (ev_is_active(&p->pace_w))
        ev_timer_stop(p->loop, &p->pace_w);
    ev_timer_set(&p->pace_w, after > 0 ? after : 0, 0);
    ev_timer_start(p->loop, &p->pace_w);
}

void pty_send_paced(struct pty *p, double now)
{
    size_t n;

    if (p->master < 0 || !p->pace.baud || p->held)
        return;
    n = pty_pace_room(&p->pace, now);
    if (n > p->out_len)
        n = p->out_len;
    if (n) {
        size_t took = pty_put(p, n);
        pty_pace_sent(&p->pace, took);
        if (took < n && p->out_len) {
            /* The host does not read: like a held CTS, the line waits and restarts later. */
            p->held = true;
            ev_io_start(p->loop, &p->wio);
        }
    }
    if (p->out_len && !p->held)
        pty_pace_arm(p, now);
    else if (ev_is_active(&p->pace_w))
        ev_timer_stop(p->loop, &p->pace_w);
}

static void pty_pace_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    pty_send_paced(w->data, ev_now(loop));
}

static void pty_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct pty *p = w->data;

    (void)revents;
    if (!p->pace.baud) {
        pty_flush_out(p);
        return;
    }
    /* The host reads again: the line starts afresh, with no credit for the time it waited. */
    ev_io_stop(loop, &p->wio);
    p->held = false;
    pty_pace_start(&p->pace, p->pace.baud, ev_now(loop));
    pty_send_paced(p, ev_now(loop));
}

/* One inotify event for port p: a host opened or closed its slave node. */
static void pty_notify(struct pty *p, uint32_t mask)
{
    if (mask & IN_OPEN) {
        /* A host arrives: whatever sits in the slave's queue is stale. */
        if (p->clients++ == 0) {
            tcflush(p->keeper, TCIFLUSH);
            p->out_len = p->told = 0;
        }
    }
    if (mask & (IN_CLOSE_WRITE | IN_CLOSE_NOWRITE)) {
        if (p->clients > 0)
            p->clients--;
    }
}

static void pty_hub_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct pty_hub *h = w->data;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t n;

    (void)loop;
    (void)revents;
    while ((n = read(h->fd, buf, sizeof(buf))) > 0) {
        for (char *q = buf; q < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)q;
            for (size_t i = 0; i < h->n; i++) {
                if (h->ports[i]->watch == ev->wd) {
                    pty_notify(h->ports[i], ev->mask);
                    break;
                }
            }
            q += sizeof(*ev) + ev->len;
        }
    }
}

/* Before the loop sleeps: one write per port for everything queued during this turn. */
static void pty_hub_flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct pty_hub *h = w->data;

    (void)loop;
    (void)revents;
    for (size_t i = 0; i < h->n; i++) {
        struct pty *p = h->ports[i];
        if (!p->out_len || ev_is_active(&p->wio))
            continue;
        if (!p->pace.baud)
            pty_flush_out(p);
        else if (!ev_is_active(&p->pace_w))
            pty_pace_arm(p, ev_now(loop)); /* sized for all this turn queued */
    }
}

int pty_hub_init(struct pty_hub *h, struct ev_loop *loop)
{
    memset(h, 0, sizeof(*h));
    h->loop = loop;
    h->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (h->fd < 0)
        return -errno;
    ev_io_init(&h->w, pty_hub_cb, h->fd, EV_READ);
    h->w.data = h;
    /* Arrivals must be seen before the bytes that follow them in the same loop turn. */
    ev_set_priority(&h->w, EV_MAXPRI);
    ev_io_start(loop, &h->w);
    ev_prepare_init(&h->flush, pty_hub_flush_cb);
    h->flush.data = h;
    ev_prepare_start(loop, &h->flush);
    return 0;
}

void pty_hub_free(struct pty_hub *h)
{
    if (h->fd < 0 || !h->loop)
        return;
    ev_io_stop(h->loop, &h->w);
    ev_prepare_stop(h->loop, &h->flush);
    close(h->fd);
    free(h->ports);
    h->ports = NULL;
    h->n = h->cap = 0;
    h->fd = -1;
}

static int pty_hub_add(struct pty_hub *h, struct pty *p)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        struct pty **n = realloc(h->ports, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        h->ports = n;
        h->cap = cap;
    }
    p->watch = inotify_add_watch(h->fd, p->name, IN_OPEN | IN_CLOSE_WRITE | IN_CLOSE_NOWRITE);
    if (p->watch < 0)
        return -errno;
    h->ports[h->n++] = p;
    return 0;
}

static void pty_hub_remove(struct pty_hub *h, struct pty *p)
{
    for (size_t i = 0; i < h->n; i++) {
        if (h->ports[i] == p) {
            h->ports[i] = h->ports[--h->n];
            break;
        }
    }
    inotify_rm_watch(h->fd, p->watch);
    p->watch = -1;
}

int pty_open(struct pty *p, struct pty_hub *hub, const char *link, pty_rx_fn *rx, void *ctx)
{
    const char *sp;
    int rc;

    memset(p, 0, sizeof(*p));
    p->loop = hub->loop;
    p->hub = hub;
    p->rx = rx;
    p->ctx = ctx;
    p->keeper = p->watch = -1;
    p->master = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (p->master < 0)
        return -errno;
    if (grantpt(p->master) < 0 || unlockpt(p->master) < 0 || !(sp = ptsname(p->master))) {
        rc = -errno;
        goto out;
    }
    snprintf(p->name, sizeof(p->name), "%s", sp);
    p->keeper = open(p->name, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (p->keeper < 0) {
        rc = -errno;
        goto out;
    }
    rc = pty_make_raw(p->keeper);
    if (rc)
        goto out;
    if (link && *link) {
        if (strlen(link) >= sizeof(p->link)) {
            rc = -ENAMETOOLONG;
            goto out;
        }
        rc = pty_link(link, p->name);
        if (rc)
            goto out;
        strcpy(p->link, link);
    }
    rc = pty_hub_add(hub, p);
    if (rc)
        goto out;
    ev_io_init(&p->rio, pty_read_cb, p->master, EV_READ);
    ev_io_init(&p->wio, pty_write_cb, p->master, EV_WRITE);
    ev_timer_init(&p->pace_w, pty_pace_cb, 0, 0);
    p->rio.data = p->wio.data = p->pace_w.data = p;
    ev_io_start(p->loop, &p->rio);
    return 0;
out:
    if (p->link[0])
        unlink(p->link);
    if (p->keeper >= 0)
        close(p->keeper);
    close(p->master);
    p->master = p->keeper = -1;
    return rc;
}

/*
 * A hang-up discards what the host has not read yet (the line discipline flushes its input), so
 * a host reading the last words before a restart (a USB port's "END,0") gets a moment to: while
 * bytes are queued or the slave holds unread ones, wait, up to PTY_LINGER_MS real milliseconds.
 * Bytes written to the master reach the slave's queue a little later (the kernel moves them in a
 * worker), so the queue must stay empty for PTY_LINGER_QUIET_MS in a row before the port closes.
 * Only ports a host has open linger.
 */
#define PTY_LINGER_MS 200
#define PTY_LINGER_QUIET_MS 10

static void pty_linger(struct pty *p)
{
    int quiet = 0;

    for (int i = 0; i < PTY_LINGER_MS && quiet < PTY_LINGER_QUIET_MS; i++) {
        int unread = 0;
        if (p->out_len)
            pty_flush_out(p); /* what did not fit the slave's queue before */
        if (ioctl(p->keeper, FIONREAD, &unread))
            return;
        quiet = p->out_len || unread > 0 ? 0 : quiet + 1;
        usleep(1000);
    }
}

void pty_close(struct pty *p)
{
    if (p->master < 0)
        return;
    if (p->clients)
        pty_linger(p); /* the last words still reach a host that reads, paced or not */
    else if (p->out_len)
        pty_flush_out(p);
    ev_io_stop(p->loop, &p->rio);
    ev_io_stop(p->loop, &p->wio);
    ev_timer_stop(p->loop, &p->pace_w);
    p->held = false;
    pty_hub_remove(p->hub, p);
    if (p->link[0]) {
        char target[sizeof(p->name)];
        ssize_t n = readlink(p->link, target, sizeof(target) - 1);
        /* Remove the link only while it is still ours. */
        if (n > 0 && (size_t)n < sizeof(target)) {
            target[n] = 0;
            if (strcmp(target, p->name) == 0)
                unlink(p->link);
        }
    }
    close(p->keeper);
    close(p->master);
    free(p->out);
    p->out = NULL;
    p->out_len = p->out_cap = p->told = 0;
    p->master = p->keeper = -1;
}

void pty_pause(struct pty *p, bool stop)
{
    if (p->master < 0)
        return;
    if (stop && ev_is_active(&p->rio))
        ev_io_stop(p->loop, &p->rio);
    else if (!stop && !ev_is_active(&p->rio))
        ev_io_start(p->loop, &p->rio);
}

bool pty_connected(const struct pty *p)
{
    return p->clients > 0;
}

void pty_write(struct pty *p, const void *buf, size_t len)
{
    if (p->master < 0 || !len)
        return;
    /* A paced backlog is the module's own queue and only capped while the host stalls. */
    if (p->clients == 0 || (p->out_len + len > PTY_OUT_MAX && (!p->pace.baud || p->held))) {
        p->dropped += len;
        return;
    }
    if (p->out_len + len > p->out_cap) {
        size_t cap = p->out_cap ? p->out_cap : 4096;
        uint8_t *n;
        while (cap < p->out_len + len)
            cap *= 2;
        n = realloc(p->out, cap);
        if (!n) {
            p->dropped += len;
            return;
        }
        p->out = n;
        p->out_cap = cap;
    }
    /* An empty queue means an idle line (bytes leave only once their last bit has): the
     * next byte starts now, without credit for the idle time. */
    if (p->pace.baud && !p->out_len && !p->held)
        pty_pace_start(&p->pace, p->pace.baud, ev_now(p->loop));
    memcpy(p->out + p->out_len, buf, len);
    p->out_len += len;
}

void pty_set_baud(struct pty *p, uint32_t baud)
{
    if (p->master < 0 || p->pace.baud == baud)
        return;
    /* Bytes still queued leave at the new rate, from now on. */
    pty_pace_start(&p->pace, baud, ev_now(p->loop));
    if (ev_is_active(&p->pace_w))
        ev_timer_stop(p->loop, &p->pace_w);
    /* A port waiting for the host keeps waiting; its write watcher serves either mode. */
    p->held = baud && ev_is_active(&p->wio);
    if (baud && p->out_len && !p->held)
        pty_pace_arm(p, ev_now(p->loop));
}

void pty_discard(struct pty *p)
{
    p->out_len = p->told = 0;
    if (p->master < 0)
        return;
    if (ev_is_active(&p->pace_w))
        ev_timer_stop(p->loop, &p->pace_w);
    if (ev_is_active(&p->wio))
        ev_io_stop(p->loop, &p->wio);
    p->held = false;
}
