/*
 * xfer.c: the transport-neutral core of downloads (protocols/xfer.h). It owns struct xfer: the
 * scheme dispatch to a backend, the address map (--map), the world's latency before a transfer
 * starts, the sink accounting (resume offset, max size, the world's cut-after, storage errors)
 * and the milestones: progress and the exactly-once done, both posted from a zero ev_timer so
 * the owner never runs inside a library's call stack. It is not a transport: xfer_curl.c and
 * coap_client.c move the bytes and report how a transfer ended (protocols/xfer_backend.h).
 *
 * Life of a handle (x->delay is one timer reused for each phase, at most one active):
 *   xfer_start --latency>0--> [delay: latency] --> be->start
 *              --latency=0--> be->start at once (it never calls back from inside)
 *   running: xfer_deliver -> sink.write; a pending progress rides on [delay: 0 s]
 *   xfer_finish -> sink.commit (success only) -> [delay: 0 s] -> cb.done -> freed by the core
 * Release rules: xfer_cancel before done aborts silently and frees x; xfer_cancel from inside
 * done is a no-op (the core frees x when done returns), so after done the owner drops x.
 * Sinks must not call xfer_cancel from inside write/commit (they run in the backend's stack).
 */
#include "protocols/xfer.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "protocols/xfer_backend.h"

static const char *const xfer_err_names[XFER_E_COUNT] = {
    [XFER_OK] = "ok",
    [XFER_E_URL] = "url",
    [XFER_E_NO_NETWORK] = "no_network",
    [XFER_E_DNS] = "dns",
    [XFER_E_CONNECT] = "connect",
    [XFER_E_TIMEOUT] = "timeout",
    [XFER_E_RESET] = "reset",
    [XFER_E_TLS] = "tls",
    [XFER_E_AUTH] = "auth",
    [XFER_E_NOT_FOUND] = "not_found",
    [XFER_E_SERVER] = "server",
    [XFER_E_PROTOCOL] = "protocol",
    [XFER_E_TOO_BIG] = "too_big",
    [XFER_E_STORAGE_FULL] = "storage_full",
    [XFER_E_STORAGE] = "storage",
    [XFER_E_ABORTED] = "aborted",
    [XFER_E_INTERNAL] = "internal",
};

/* Every backend the core may dispatch to, in lookup order. */
static const struct xfer_backend *const xfer_backends[] = {
    &xfer_curl_backend,
    &xfer_coap_backend,
};
#define XFER_NBACKENDS (sizeof(xfer_backends) / sizeof(xfer_backends[0]))

/* The names are part of the frozen class list (docs/transfer-errors.md): logs and the control
 * API show them, so they never change once a family relies on them. */
const char *xfer_err_name(enum xfer_err e)
{
    if ((unsigned)e >= XFER_E_COUNT)
        return "unknown";
    return xfer_err_names[e];
}

/* ---- address map ---------------------------------------------------------------------- */

/* Splits "HOST:PORT" (HOST may be "[v6]") at its last colon; the brackets are dropped.
 * Returns 0 or -EINVAL; -E2BIG when HOST does not fit in cap bytes with its NUL. */
static int xfer_split_hostport(const char *s, size_t len, char *host, size_t cap, unsigned *port)
{
    const char *colon = NULL;
    const char *h = s;
    size_t hlen;
    char *end;
    char num[8];
    unsigned long v;

    for (size_t i = 0; i < len; i++)
        if (s[i] == ':')
            colon = s + i;
    if (!colon || colon == s)
        return -EINVAL;
    hlen = (size_t)(colon - s);
    if (h[0] == '[') { /* an IPv6 literal: "[::1]:80" */
        if (hlen < 3 || h[hlen - 1] != ']')
            return -EINVAL;
        h++;
        hlen -= 2;
    } else if (memchr(h, ':', hlen)) {
        return -EINVAL; /* a bare v6 literal is ambiguous: brackets required */
    }
    if (hlen >= cap)
        return -E2BIG;
    /* the port: 1..65535, digits only */
    size_t plen = len - (size_t)(colon + 1 - s);
    if (plen == 0 || plen >= sizeof(num))
        return -EINVAL;
    memcpy(num, colon + 1, plen);
    num[plen] = '\0';
    for (size_t i = 0; i < plen; i++)
        if (!isdigit((unsigned char)num[i]))
            return -EINVAL;
    v = strtoul(num, &end, 10);
    if (*end || v == 0 || v > 65535)
        return -EINVAL;
    for (size_t i = 0; i < hlen; i++)
        if (isspace((unsigned char)h[i]) || h[i] == '/' || h[i] == '@')
            return -EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (unsigned)v;
    return 0;
}

/* "HOST:PORT=ADDR:PORT": both sides split at their last colon, so IPv6 literals need brackets
 * ("[::1]:80"); names are matched case-insensitively (DNS names are). Nothing is resolved here:
 * ADDR goes to the transport as written (CURLOPT_CONNECT_TO, the CoAP client's own lookup). */
int xfer_map_add(struct xfer_map *m, const char *spec)
{
    const char *eq;
    char host[sizeof(m->e[0].host)], addr[sizeof(m->e[0].addr)];
    unsigned port, to_port;
    unsigned i;
    int rc;

    if (!m || !spec)
        return -EINVAL;
    eq = strchr(spec, '=');
    if (!eq || strchr(eq + 1, '='))
        return -EINVAL;
    rc = xfer_split_hostport(spec, (size_t)(eq - spec), host, sizeof(host), &port);
    if (rc < 0)
        return rc;
    rc = xfer_split_hostport(eq + 1, strlen(eq + 1), addr, sizeof(addr), &to_port);
    if (rc < 0)
        return rc;
    /* a later entry for the same HOST:PORT replaces the earlier one */
    for (i = 0; i < m->n; i++)
        if (m->e[i].port == port && strcasecmp(m->e[i].host, host) == 0)
            break;
    if (i == m->n) {
        if (m->n >= XFER_MAP_MAX)
            return -E2BIG;
        m->n++;
    }
    strcpy(m->e[i].host, host);
    m->e[i].port = port;
    strcpy(m->e[i].addr, addr);
    m->e[i].to_port = to_port;
    return 0;
}

bool xfer_map_lookup(const struct xfer_map *m, const char *host, unsigned port, const char **addr,
                     unsigned *to_port)
{
    size_t hlen;

    if (!m || !host)
        return false;
    /* accept "[v6]" as well as the bare literal (curl_url hands out the bracketed form) */
    hlen = strlen(host);
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
        host++;
        hlen -= 2;
    }
    for (unsigned i = 0; i < m->n && i < XFER_MAP_MAX; i++) {
        if (m->e[i].port != port || strlen(m->e[i].host) != hlen ||
            strncasecmp(m->e[i].host, host, hlen) != 0)
            continue;
        if (addr)
            *addr = m->e[i].addr;
        if (to_port)
            *to_port = m->e[i].to_port;
        return true;
    }
    return false;
}

/* ---- handles ---------------------------------------------------------------------------- */

/* The backend whose scheme list holds url's scheme, or NULL. */
static const struct xfer_backend *xfer_pick_backend(const char *url)
{
    const char *sep = strstr(url, "://");
    size_t n;

    if (!sep || sep == url)
        return NULL;
    n = (size_t)(sep - url);
    for (size_t b = 0; b < XFER_NBACKENDS; b++) {
        const char *const *s = xfer_backends[b]->schemes;
        for (; s && *s; s++)
            if (strlen(*s) == n && strncasecmp(*s, url, n) == 0)
                return xfer_backends[b];
    }
    return NULL;
}

/* Frees x and its owned strings; the timer must be stopped and the backend done with x. */
static void xfer_free(struct xfer *x)
{
    free(x->url);
    free(x->user);
    free(x->pass);
    free(x->ca_file);
    free(x);
}

/* strdup that maps NULL to NULL; false on allocation failure. */
static bool xfer_dup(char **dst, const char *src)
{
    *dst = NULL;
    if (!src)
        return true;
    *dst = strdup(src);
    return *dst != NULL;
}

/* The deferred done: runs from the loop, then frees x. x->be is cleared first so that an
 * xfer_cancel from inside done recognises the situation and leaves the freeing to us. */
static void xfer_done_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct xfer *x = w->data;
    uint64_t total = x->o.resume_from + x->got;

    (void)revents;
    ev_timer_stop(loop, w);
    x->be = NULL;
    if (x->cb.done)
        x->cb.done(x->cb.ctx, x->err, x->detail, total);
    xfer_free(x);
}

/* A pending progress milestone (coalesced: one per loop turn at most). */
static void xfer_progress_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct xfer *x = w->data;

    (void)loop;
    (void)revents;
    if (x->cb.progress && !x->finished)
        x->cb.progress(x->cb.ctx, x->o.resume_from + x->got, x->total);
}

/* The latency delay ran out: hand the transfer to its backend. */
static void xfer_latency_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct xfer *x = w->data;
    int rc;

    (void)loop;
    (void)revents;
    rc = x->be->start(x);
    if (rc != XFER_OK)
        xfer_finish(x, (enum xfer_err)rc, 0);
}

struct xfer *xfer_start(struct xfer_env *env, const struct xfer_opts *o,
                        const struct xfer_sink *sink, const struct xfer_cb *cb, enum xfer_err *err)
{
    enum xfer_err dummy;
    const struct xfer_backend *be;
    struct xfer *x;
    double latency;
    int rc;

    if (!err)
        err = &dummy;
    if (!env || !env->loop || !o || !sink || !sink->write || !cb) {
        *err = XFER_E_INTERNAL;
        return NULL;
    }
    if (!o->url || !*o->url || !(be = xfer_pick_backend(o->url))) {
        *err = XFER_E_URL;
        return NULL;
    }
    if (env->net && !env->net->up) {
        *err = XFER_E_NO_NETWORK;
        return NULL;
    }
    x = calloc(1, sizeof(*x));
    if (!x) {
        *err = XFER_E_INTERNAL;
        return NULL;
    }
    x->env = env;
    x->be = be;
    x->o = *o;
    x->sink = *sink;
    x->cb = *cb;
    if (!xfer_dup(&x->url, o->url) || !xfer_dup(&x->user, o->user) ||
        !xfer_dup(&x->pass, o->pass) || !xfer_dup(&x->ca_file, o->ca_file)) {
        xfer_free(x);
        *err = XFER_E_INTERNAL;
        return NULL;
    }
    /* the copy's strings point at our own copies, never at the caller's buffers */
    x->o.url = x->url;
    x->o.user = x->user;
    x->o.pass = x->pass;
    x->o.ca_file = x->ca_file;
    x->delay.data = x;
    *err = XFER_OK;

    latency = env->net ? env->net->latency : 0.0;
    if (latency > 0.0) {
        ev_timer_init(&x->delay, xfer_latency_cb, latency, 0.0);
        ev_timer_start(env->loop, &x->delay);
        return x;
    }
    /* The backend's start never calls back synchronously; an immediate failure is still
     * reported through done, from the loop. */
    rc = be->start(x);
    if (rc != XFER_OK)
        xfer_finish(x, (enum xfer_err)rc, 0);
    return x;
}

/* Order of the checks: a transfer already finished takes nothing; max_size before cut_after
 * (a too-big file fails the same way on a good or a bad network); cut_after before the sink, so
 * the prefix before the cut is written; the sink last. A progress milestone is queued on the
 * zero timer rather than called here, so an owner's xfer_cancel from inside progress never runs
 * inside libcurl's write callback. */
enum xfer_err xfer_deliver(struct xfer *x, const void *buf, size_t len)
{
    const struct xfer_net *net = x->env->net;
    uint64_t pos = x->o.resume_from + x->got;
    enum xfer_err cut = XFER_OK;
    int rc;

    if (x->finished)
        return XFER_E_ABORTED;
    if (len == 0)
        return XFER_OK;
    /* a known total beyond the limit fails before the first byte lands */
    if (x->o.max_size && (x->total > x->o.max_size || pos + len > x->o.max_size))
        return XFER_E_TOO_BIG;
    /* the world resets the connection after cut_after bytes of this transfer: the bytes
     * before the cut still land, as they would have reached the module */
    if (net && net->cut_after && x->got + len > net->cut_after) {
        if (x->got >= net->cut_after)
            return XFER_E_RESET;
        len = (size_t)(net->cut_after - x->got);
        cut = XFER_E_RESET;
    }
    rc = x->sink.write(x->sink.ctx, pos, buf, len);
    if (rc == -ENOSPC)
        return XFER_E_STORAGE_FULL;
    if (rc < 0)
        return XFER_E_STORAGE;
    x->got += len;
    if (x->cb.progress && !ev_is_active(&x->delay)) {
        ev_timer_init(&x->delay, xfer_progress_cb, 0.0, 0.0);
        ev_timer_start(x->env->loop, &x->delay);
    }
    return cut;
}

/* The total counts from the start of the file (resume offset included), like progress's got. */
void xfer_set_length(struct xfer *x, uint64_t remaining)
{
    x->total = x->o.resume_from + remaining;
}

/* The sink is committed here, synchronously, so a commit failure can still change the class;
 * the owner hears of it only from the zero timer. */
void xfer_finish(struct xfer *x, enum xfer_err err, int detail)
{
    if (x->finished)
        return;
    x->finished = true;
    ev_timer_stop(x->env->loop, &x->delay); /* a pending progress or latency */
    if (err == XFER_OK && x->sink.commit) {
        int rc = x->sink.commit(x->sink.ctx, x->o.resume_from + x->got);
        if (rc == -ENOSPC)
            err = XFER_E_STORAGE_FULL;
        else if (rc < 0)
            err = XFER_E_STORAGE;
    }
    x->err = err;
    x->detail = detail;
    ev_timer_init(&x->delay, xfer_done_cb, 0.0, 0.0);
    ev_timer_start(x->env->loop, &x->delay);
}

/* Three cases: inside done (x->be cleared: nothing to do, the core frees x afterwards); after
 * xfer_finish but before done ran (the backend already let go: stop the timer, free); running or
 * waiting out the latency (the backend is told only if it was started). */
void xfer_cancel(struct xfer *x)
{
    if (!x || !x->be)
        return; /* NULL, or called from inside done: the core frees x after done */
    if (!x->finished) {
        /* the backend holds x unless we are still in the latency delay */
        bool waiting = ev_is_active(&x->delay) && ev_cb(&x->delay) == xfer_latency_cb;
        if (!waiting)
            x->be->cancel(x);
    }
    ev_timer_stop(x->env->loop, &x->delay);
    xfer_free(x);
}

/* Every backend sees every change; one without state in env ignores it. */
void xfer_env_changed(struct xfer_env *env)
{
    if (!env)
        return;
    for (size_t b = 0; b < XFER_NBACKENDS; b++)
        if (xfer_backends[b]->env_changed)
            xfer_backends[b]->env_changed(env);
}

void xfer_env_free(struct xfer_env *env)
{
    if (!env)
        return;
    for (size_t b = 0; b < XFER_NBACKENDS; b++)
        if (xfer_backends[b]->env_free)
            xfer_backends[b]->env_free(env);
}
