/*
 * Control socket: a UNIX stream listener and its clients as ev_io watchers on the fleet's loop.
 * Each client has an input buffer (lines of at most CTL_LINE_MAX bytes) and an output queue that
 * is written only when the socket is writable, so a slow reader never blocks the loop; one that
 * lets CTL_OUT_MAX pile up is dropped. Module events are rendered once per event and appended to
 * every subscriber's queue. Not here: what a request means (ctl_cmd.c).
 */
#include "sim/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "firmware/modem.h"
#include "sim/fleet.h"

#define CTL_READ_CHUNK   65536u
#define CTL_ACCEPT_BURST 16

/* One connection. Lives in ctl->clients from accept until ctl_client_free; after a drop it
 * stays (dead) only while its own read callback is still on the stack. */
struct ctl_client {
    struct ctl *ctl;
    struct ctl_client *next;
    int fd;
    ev_io rw, ww;
    char *in; /* unprocessed input: in_len bytes, the first `scan` of them hold no '\n' */
    size_t in_len, in_cap, scan;
    char *out; /* queued output: bytes [out_off, out_len) are still to be written */
    size_t out_off, out_len, out_cap;
    unsigned kinds; /* subscribed event kinds, bit (1u << enum modem_event_kind) */
    int module;     /* event filter: a module index, or -1 for all */
    bool busy;      /* inside its read callback: freeing is deferred to its end */
    bool draining;  /* no more input or events; closed once the output is written */
    bool dead;      /* fd closed; freed as soon as it is not busy */
};

/* A growable text buffer for rendering an event line. */
struct ctl_buf {
    char *p;
    size_t len, cap;
    bool oom;
};

/* Event names on the wire, indexed by enum modem_event_kind (also the subscription bits). */
static const char *const ctl_event_names[] = {
    [MODEM_EV_URC] = "urc",     [MODEM_EV_RX] = "rx",       [MODEM_EV_TX] = "tx",
    [MODEM_EV_STATE] = "state", [MODEM_EV_FLASH] = "flash",     [MODEM_EV_FOTA] = "fota",
};

const char *ctl_event_name(unsigned kind)
{
    return kind < sizeof(ctl_event_names) / sizeof(ctl_event_names[0]) ? ctl_event_names[kind]
                                                                       : NULL;
}

void ctl_subscribe(struct ctl_client *cl, unsigned kinds, int module)
{
    cl->kinds = kinds & CTL_EV_ALL;
    cl->module = module;
}

unsigned ctl_subscribed(const struct ctl_client *cl)
{
    return cl->kinds;
}

struct ctl_client *ctl_client_next(const struct ctl_client *cl)
{
    return cl->next;
}

/* ---- clients --------------------------------------------------------------------------------- */

/* Unlinks and frees; the fd and watchers must already be gone (ctl_client_drop). */
static void ctl_client_free(struct ctl_client *cl)
{
    struct ctl *c = cl->ctl;

    for (struct ctl_client **pp = &c->clients; *pp; pp = &(*pp)->next) {
        if (*pp == cl) {
            *pp = cl->next;
            c->nclients--;
            break;
        }
    }
    free(cl->in);
    free(cl->out);
    free(cl);
}

/* Closes the connection now; the struct goes at once unless its read callback is running. */
static void ctl_client_drop(struct ctl_client *cl)
{
    struct ev_loop *loop = cl->ctl->fleet->loop;

    if (!cl->dead) {
        ev_io_stop(loop, &cl->rw);
        ev_io_stop(loop, &cl->ww);
        close(cl->fd);
        cl->fd = -1;
        cl->dead = true;
    }
    if (!cl->busy)
        ctl_client_free(cl);
}

/* Queues len bytes (and a '\n' when nl). Drops the client (returns -ENOBUFS) when its queue
 * would pass CTL_OUT_MAX, so a subscriber that stops reading costs bounded memory. */
static int ctl_client_send(struct ctl_client *cl, const char *buf, size_t len, bool nl)
{
    size_t need = len + (nl ? 1 : 0);

    if (cl->dead)
        return -EPIPE;
    if (cl->out_len - cl->out_off + need > CTL_OUT_MAX) {
        fprintf(stderr,
                "modtwin: control: dropping a client that does not read (%zu bytes "
                "queued)\n",
                cl->out_len - cl->out_off);
        ctl_client_drop(cl);
        return -ENOBUFS;
    }
    /* Reuse the written head of the buffer before growing it. */
    if (cl->out_off && cl->out_len + need > cl->out_cap) {
        memmove(cl->out, cl->out + cl->out_off, cl->out_len - cl->out_off);
        cl->out_len -= cl->out_off;
        cl->out_off = 0;
    }
    if (cl->out_len + need > cl->out_cap) {
        size_t cap = cl->out_cap ? cl->out_cap : 4096;
        char *p;

        while (cap < cl->out_len + need)
            cap *= 2;
        p = realloc(cl->out, cap);
        if (!p) {
            ctl_client_drop(cl);
            return -ENOMEM;
        }
        cl->out = p;
        cl->out_cap = cap;
    }
    memcpy(cl->out + cl->out_len, buf, len);
    cl->out_len += len;
    if (nl)
        cl->out[cl->out_len++] = '\n';
    ev_io_start(cl->ctl->fleet->loop, &cl->ww);
    return 0;
}

/* Stops reading; the client is closed once its queued output is written. */
static void ctl_client_drain(struct ctl_client *cl)
{
    if (cl->dead)
        return;
    cl->draining = true;
    ev_io_stop(cl->ctl->fleet->loop, &cl->rw);
    if (cl->out_off == cl->out_len)
        ctl_client_drop(cl);
}

/* Writable: send as much as the kernel takes. The watcher runs only while output is queued, so
 * an idle client costs nothing; EAGAIN just waits for the next turn. */
static void ctl_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct ctl_client *cl = w->data;
    ssize_t n;

    (void)revents;
    while (cl->out_off < cl->out_len) {
        n = send(cl->fd, cl->out + cl->out_off, cl->out_len - cl->out_off,
                 MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            ctl_client_drop(cl);
            return;
        }
        cl->out_off += (size_t)n;
    }
    ev_io_stop(loop, w);
    cl->out_off = cl->out_len = 0;
    /* Give back the memory of a burst (a big pull, a flood of events). */
    if (cl->out_cap > (256u << 10)) {
        free(cl->out);
        cl->out = NULL;
        cl->out_cap = 0;
    }
    if (cl->draining)
        ctl_client_drop(cl);
}

/* Handles one complete line (without '\n'); blank lines are ignored. */
/* The reply is queued, never written here: a reply to a big pull must not block the loop. */
static void ctl_client_line(struct ctl_client *cl, char *line, size_t len)
{
    char *reply;
    size_t i;

    if (len && line[len - 1] == '\r')
        len--;
    for (i = 0; i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'); i++)
        ;
    if (i == len)
        return;
    reply = ctl_handle(cl->ctl, line, len, cl);
    if (!reply) {
        static const char oom[] =
            "{\"ok\":false,\"error\":{\"field\":\"request\",\"message\":\"out of memory\"}}";
        ctl_client_send(cl, oom, sizeof(oom) - 1, true);
        return;
    }
    ctl_client_send(cl, reply, strlen(reply), true);
    free(reply);
}

/* A line over the limit: the client gets one error line, then the connection is closed (we
 * cannot resynchronise inside a line we did not keep). */
static void ctl_client_toolong(struct ctl_client *cl)
{
    char msg[128];
    int n = snprintf(msg, sizeof(msg),
                     "{\"ok\":false,\"error\":{\"field\":\"request\",\"message\":"
                     "\"line longer than %u bytes\"}}",
                     CTL_LINE_MAX);

    ctl_client_send(cl, msg, (size_t)n, true);
    ctl_client_drain(cl);
}

/* Runs every complete line in the input buffer, then keeps the partial tail. */
static void ctl_client_lines(struct ctl_client *cl, bool eof)
{
    size_t start = 0;
    char *nl;

    while (!cl->dead && !cl->draining && cl->scan < cl->in_len) {
        /* Only bytes not scanned before are searched: a slowly arriving 1 MiB line stays O(n). */
        nl = memchr(cl->in + cl->scan, '\n', cl->in_len - cl->scan);
        if (!nl) {
            cl->scan = cl->in_len;
            break;
        }
        if ((size_t)(nl - (cl->in + start)) > CTL_LINE_MAX) {
            ctl_client_toolong(cl);
            return;
        }
        ctl_client_line(cl, cl->in + start, (size_t)(nl - (cl->in + start)));
        start = (size_t)(nl - cl->in) + 1;
        cl->scan = start;
    }
    if (cl->dead || cl->draining)
        return;
    memmove(cl->in, cl->in + start, cl->in_len - start);
    cl->in_len -= start;
    cl->scan -= start;
    if (cl->in_len > CTL_LINE_MAX) {
        ctl_client_toolong(cl);
        return;
    }
    if (eof) {
        /* A last line without '\n' (printf '{...}' | nc -U) still counts. */
        if (cl->in_len)
            ctl_client_line(cl, cl->in, cl->in_len);
        cl->in_len = cl->scan = 0;
        ctl_client_drain(cl);
    }
}

/* Readable: one read per callback (fair to other clients and to the modules' ports), then every
 * complete line is handled in order. */
static void ctl_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct ctl_client *cl = w->data;
    ssize_t n;

    (void)loop;
    (void)revents;
    if (cl->in_cap - cl->in_len < CTL_READ_CHUNK) {
        size_t cap = cl->in_len + CTL_READ_CHUNK;
        char *p = realloc(cl->in, cap);

        if (!p) {
            ctl_client_drop(cl);
            return;
        }
        cl->in = p;
        cl->in_cap = cap;
    }
    n = read(cl->fd, cl->in + cl->in_len, cl->in_cap - cl->in_len);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n < 0) {
        ctl_client_drop(cl);
        return;
    }
    cl->in_len += (size_t)n;
    /* Commands may emit events that drop this very client: keep the struct until we return. */
    cl->busy = true;
    ctl_client_lines(cl, n == 0);
    cl->busy = false;
    if (cl->dead)
        ctl_client_free(cl);
}

/* Accepts a few connections per turn; each gets its own watchers and empty buffers, and no
 * subscription until it sends `events`. */
static void ctl_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct ctl *c = w->data;
    struct ctl_client *cl;
    int fd;

    (void)revents;
    for (int i = 0; i < CTL_ACCEPT_BURST; i++) {
        fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                fprintf(stderr, "modtwin: control: accept: %s\n", strerror(errno));
            return;
        }
        cl = c->nclients < CTL_CLIENTS_MAX ? calloc(1, sizeof(*cl)) : NULL;
        if (!cl) {
            fprintf(stderr, "modtwin: control: refusing a client (%u connected)\n", c->nclients);
            close(fd);
            continue;
        }
        cl->ctl = c;
        cl->fd = fd;
        cl->module = -1;
        ev_io_init(&cl->rw, ctl_read_cb, fd, EV_READ);
        ev_io_init(&cl->ww, ctl_write_cb, fd, EV_WRITE);
        cl->rw.data = cl->ww.data = cl;
        ev_io_start(loop, &cl->rw);
        cl->next = c->clients;
        c->clients = cl;
        c->nclients++;
    }
}

/* ---- socket ---------------------------------------------------------------------------------- */

/* 0 when path is a socket nobody accepts on (stale), -EADDRINUSE when it is live. */
static int ctl_probe(const struct sockaddr_un *sa)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc = 0;

    if (fd < 0)
        return -errno;
    if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 || errno == EAGAIN)
        rc = -EADDRINUSE;
    else if (errno != ECONNREFUSED && errno != ENOENT)
        rc = -errno;
    close(fd);
    return rc;
}

int ctl_open(struct ctl *c, struct fleet *f, const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;
    bool bound = false;
    mode_t old;
    int rc = 0;

    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->fleet = f;
    if (!path || !*path)
        return -EINVAL;
    if (strlen(path) >= sizeof(sa.sun_path) || strlen(path) >= sizeof(c->path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    /* A socket file left by a killed run is stale; never unlink anything else, or a live peer. */
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return -EEXIST;
        rc = ctl_probe(&sa);
        if (rc)
            return rc;
        if (unlink(path) && errno != ENOENT)
            return -errno;
    }
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        rc = -errno;
        goto out;
    }
    /* The socket is born 0600: nobody else may drive the modules, not even for a moment. */
    old = umask(0177);
    rc = bind(c->fd, (const struct sockaddr *)&sa, sizeof(sa)) ? -errno : 0;
    umask(old);
    if (rc)
        goto out;
    bound = true;
    if (chmod(path, 0600) || listen(c->fd, 64)) {
        rc = -errno;
        goto out;
    }
    strcpy(c->path, path);
    ev_io_init(&c->accept_w, ctl_accept_cb, c->fd, EV_READ);
    c->accept_w.data = c;
    ev_io_start(f->loop, &c->accept_w);
    c->open = true;
out:
    if (rc) {
        if (bound)
            unlink(path);
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
    }
    return rc;
}

/* Queued output is discarded: clients see the connection close, as with a killed process. */
void ctl_close(struct ctl *c)
{
    if (!c->open)
        return;
    while (c->clients) {
        c->clients->busy = false;
        ctl_client_drop(c->clients);
    }
    ev_io_stop(c->fleet->loop, &c->accept_w);
    close(c->fd);
    c->fd = -1;
    unlink(c->path);
    c->open = false;
}

/* ---- events ---------------------------------------------------------------------------------- */

/* Appends n bytes and keeps the text NUL-terminated; after a failed allocation the buffer is
 * marked oom and the event is skipped rather than sent truncated. */
static void ctl_buf_put(struct ctl_buf *b, const void *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *p;

        while (cap < b->len + n + 1)
            cap *= 2;
        p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void ctl_buf_printf(struct ctl_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void ctl_buf_printf(struct ctl_buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        ctl_buf_put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* Bytes as a JSON string of Latin-1 code points: printable ASCII as is, all else \u00XX, so
 * any byte sequence survives a JSON round trip (decode, then encode each char as latin-1). */
static void ctl_buf_bytes(struct ctl_buf *b, const void *data, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = data;
    size_t run = 0;

    ctl_buf_put(b, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = s[i];
        char esc[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};

        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') {
            run++;
            continue;
        }
        ctl_buf_put(b, s + i - run, run);
        run = 0;
        if (ch == '"' || ch == '\\')
            ctl_buf_put(b, (const char[]){'\\', (char)ch}, 2);
        else
            ctl_buf_put(b, esc, sizeof(esc));
    }
    ctl_buf_put(b, s + len - run, run);
    ctl_buf_put(b, "\"", 1);
}

/* Renders ev as one JSON line (no '\n') into b. */
/* The same line goes to every subscriber, so it is built by hand here (no cJSON tree per
 * event): AT traffic can be thousands of events a second. */
static void ctl_event_render(struct ctl_buf *b, double t, const struct modem *m,
                             const struct modem_event *ev)
{
    ctl_buf_printf(b, "{\"event\":\"%s\",\"module\":%d,\"port\":", ctl_event_name(ev->kind),
                   m->index);
    if (ev->port >= 0 && (unsigned)ev->port < m->nports && m->ports[ev->port].kind)
        ctl_buf_bytes(b, m->ports[ev->port].kind, strlen(m->ports[ev->port].kind));
    else
        ctl_buf_put(b, "null", 4);
    ctl_buf_printf(b, ",\"t\":%.6f", t);
    switch (ev->kind) {
    case MODEM_EV_URC:
    case MODEM_EV_FOTA:
        ctl_buf_put(b, ",\"text\":", 8);
        ctl_buf_bytes(b, ev->data, ev->data ? ev->len : 0);
        break;
    case MODEM_EV_RX:
    case MODEM_EV_TX:
        ctl_buf_put(b, ",\"data\":", 8);
        ctl_buf_bytes(b, ev->data, ev->data ? ev->len : 0);
        break;
    case MODEM_EV_STATE:
        ctl_buf_put(b, ",\"state\":", 9);
        ctl_buf_bytes(b, ev->state ? ev->state : "", ev->state ? strlen(ev->state) : 0);
        break;
    case MODEM_EV_FLASH: {
        struct flash_stats st = {0};

        if (m->flash_open)
            flash_stats(&m->flash, &st);
        ctl_buf_printf(b,
                       ",\"ops\":%" PRIu64 ",\"progs\":%" PRIu64 ",\"erases\":%" PRIu64
                       ",\"violations\":%" PRIu64 ",\"max_wear\":%" PRIu32,
                       st.ops, st.progs, st.erases, st.violations, st.max_wear);
        break;
    }
    }
    ctl_buf_put(b, "}", 1);
}

/* Called by the fleet for every module event; cheap when nobody subscribed (no rendering). */
void ctl_event(struct ctl *c, const struct modem *m, const struct modem_event *ev)
{
    struct ctl_buf b = {0};
    struct ctl_client *cl, *next;

    if (!c || !c->open || !m || !ev || !ctl_event_name(ev->kind))
        return;
    for (cl = c->clients; cl; cl = next) {
        next = cl->next;
        if (cl->dead || cl->draining || !(cl->kinds & (1u << ev->kind)))
            continue;
        if (cl->module >= 0 && cl->module != m->index)
            continue;
        /* Rendered once, for the first subscriber that wants it. */
        if (!b.p && !b.oom)
            ctl_event_render(&b, vclock_now(&c->fleet->clock), m, ev);
        if (b.oom)
            break;
        ctl_client_send(cl, b.p, b.len, true);
    }
    free(b.p);
}
