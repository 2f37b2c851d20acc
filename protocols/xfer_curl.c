/*
 * xfer_curl.c: the HTTP, HTTPS, FTP and FTPS backend of the transfer core, on libcurl's
 * multi-socket API driven by the module's libev loop (the pattern of curl's evhiperfifo.c, with
 * its timer in fractional seconds and no exit() on error). One CURLM per xfer_env, created with
 * the first transfer; each socket libcurl wants watched gets an ev_io, its one timeout an
 * ev_timer; CURLOPT_PRIVATE leads from an easy handle back to its transfer. It maps libcurl
 * results, HTTP statuses and FTP replies to the error classes (docs/transfer-errors.md); the
 * core (xfer.c) does the sink, the limits and the milestones. It is not a cache or a retry loop.
 *
 * Schemes: "http", "https", "ftp", and "ftps", which here means EXPLICIT FTPS (AUTH TLS on the
 * control connection, protected data channel: CURLOPT_USE_SSL = CURLUSESSL_ALL on the same URL
 * rewritten to ftp://), default port 21, always passive. Implicit FTPS (port 990) is not offered:
 * the documents' servers and pyftpdlib speak the explicit form only.
 *
 * Process-wide state: libcurl wants curl_global_init before use. It keeps its own reference
 * count (7.88: each init is balanced by one curl_global_cleanup, the last one cleans up), so
 * each env's multi handle takes one reference when it is created and drops it when it is freed;
 * no flag of our own is needed (we may hold none: no mutable globals). The loop is
 * single-threaded, which is what that count requires.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "protocols/xfer_backend.h"

#define XFER_CURL_CONNECT_DEFAULT 30.0 /* s: libcurl's own default (300 s) hides gotcha 6 */
#define XFER_CURL_KICK            0.01 /* s: the FTPS kick period (probe-local gotcha 6) */
#define XFER_CURL_MAX_REDIRS      5L
#define XFER_CURL_BUFFER          (256L * 1024) /* bytes libcurl hands over per write call */
/* where the world's "refuse" sends every connection: nothing listens on TCP port 1 of the
 * loopback, so the kernel answers with a RST and libcurl takes its own COULDNT_CONNECT path */
#define XFER_CURL_REFUSE_TO "::127.0.0.1:1"

/* The backend's state in one env (env->curl). */
struct xfer_curl_env {
    struct xfer_env *env;
    CURLM *multi;
    ev_timer timer;           /* the one timeout libcurl asks for */
    ev_timer kick;            /* curl_multi_socket_all every 10 ms while an FTPS transfer runs */
    unsigned nftps;           /* running FTPS transfers */
    int running;              /* libcurl's count of running easy handles */
    struct xfer_curl_x *head; /* running transfers, for env_changed */
};

/* One socket libcurl asked us to watch (curl_multi_assign'ed to it). */
struct xfer_curl_sock {
    ev_io io;
    struct xfer_curl_env *ce;
};

/* One transfer (x->be_state). */
struct xfer_curl_x {
    struct xfer_curl_x *next, *prev;
    struct xfer_curl_env *ce;
    struct xfer *x;
    CURL *easy;
    struct curl_slist *connect_to;
    bool http, ftp, ftps;
    bool first;         /* no body byte seen yet */
    bool skip_body;     /* an HTTP 416 that means "already complete": drop its body */
    bool held;          /* the write callback returned CURL_WRITEFUNC_PAUSE (stall or pace) */
    int ftp_reply;      /* the last FTP error reply (>= 400), 0 if none */
    enum xfer_err werr; /* why the write callback stopped the transfer */
    int wdetail;
    ev_timer idle;  /* watchdog: no byte delivered for low_speed_time -> XFER_E_TIMEOUT */
    ev_timer pace;  /* the world's rate: resume when the schedule has caught up */
    double pace_t0; /* pacing base (ev_time) and bytes delivered since then */
    uint64_t pace_bytes;
};

static void xfer_curl_check(struct xfer_curl_env *ce);

/* ---- the multi handle on the loop -------------------------------------------------------- */

static void xfer_curl_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct xfer_curl_env *ce = w->data;

    (void)loop;
    (void)revents;
    curl_multi_socket_action(ce->multi, CURL_SOCKET_TIMEOUT, 0, &ce->running);
    xfer_curl_check(ce);
}

/* CURLMOPT_TIMERFUNCTION: -1 deletes the timer, otherwise milliseconds from now (0 = as soon as
 * possible: libcurl must not be re-entered from inside this callback, so a 0 s ev_timer). */
static int xfer_curl_timer_fn(CURLM *multi, long timeout_ms, void *userp)
{
    struct xfer_curl_env *ce = userp;

    (void)multi;
    ev_timer_stop(ce->env->loop, &ce->timer);
    if (timeout_ms >= 0) {
        ev_timer_set(&ce->timer, (double)timeout_ms / 1000.0, 0.0);
        ev_timer_start(ce->env->loop, &ce->timer);
    }
    return 0;
}

static void xfer_curl_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct xfer_curl_sock *cs = w->data;
    struct xfer_curl_env *ce = cs->ce;
    int action =
        ((revents & EV_READ) ? CURL_CSELECT_IN : 0) | ((revents & EV_WRITE) ? CURL_CSELECT_OUT : 0);

    (void)loop;
    /* cs may be freed inside (CURL_POLL_REMOVE): use nothing of it afterwards */
    curl_multi_socket_action(ce->multi, w->fd, action, &ce->running);
    xfer_curl_check(ce);
}

/* CURLMOPT_SOCKETFUNCTION: watch s for what libcurl wants, or stop watching it. */
static int xfer_curl_sock_fn(CURL *easy, curl_socket_t s, int what, void *userp, void *sockp)
{
    struct xfer_curl_env *ce = userp;
    struct xfer_curl_sock *cs = sockp;
    int events = ((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0);

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (cs) {
            ev_io_stop(ce->env->loop, &cs->io);
            free(cs);
        }
        return 0;
    }
    if (!cs) {
        cs = calloc(1, sizeof(*cs));
        if (!cs)
            return -1; /* libcurl fails the transfers on this socket (CURLE_ABORTED_BY_CALLBACK) */
        cs->ce = ce;
        cs->io.data = cs;
        ev_io_init(&cs->io, xfer_curl_io_cb, s, events);
        curl_multi_assign(ce->multi, s, cs);
    } else {
        ev_io_stop(ce->env->loop, &cs->io);
        ev_io_set(&cs->io, s, events);
    }
    if (events)
        ev_io_start(ce->env->loop, &cs->io);
    return 0;
}

/* The FTPS kick (probe-local gotcha 6): with multi_socket, libcurl 7.88 may drop the control
 * socket from its poll set while it waits for the data channel's TLS handshake, and some servers
 * only move on after RETR; asking libcurl to look at every socket every 10 ms unsticks it. */
static void xfer_curl_kick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct xfer_curl_env *ce = w->data;

    (void)loop;
    (void)revents;
    /* deprecated since 7.19.5 but the only call that looks at every socket: fenced here */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    curl_multi_socket_all(ce->multi, &ce->running);
#pragma GCC diagnostic pop
    xfer_curl_check(ce);
}

/* env->curl, created with the first transfer of env; NULL when libcurl cannot start. */
static struct xfer_curl_env *xfer_curl_env_get(struct xfer_env *env)
{
    struct xfer_curl_env *ce = env->curl;

    if (ce)
        return ce;
    ce = calloc(1, sizeof(*ce));
    if (!ce)
        return NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(ce);
        return NULL;
    }
    ce->multi = curl_multi_init();
    if (!ce->multi) {
        curl_global_cleanup();
        free(ce);
        return NULL;
    }
    ce->env = env;
    ev_timer_init(&ce->timer, xfer_curl_timer_cb, 0.0, 0.0);
    ce->timer.data = ce;
    ev_timer_init(&ce->kick, xfer_curl_kick_cb, XFER_CURL_KICK, XFER_CURL_KICK);
    ce->kick.data = ce;
    curl_multi_setopt(ce->multi, CURLMOPT_SOCKETFUNCTION, xfer_curl_sock_fn);
    curl_multi_setopt(ce->multi, CURLMOPT_SOCKETDATA, ce);
    curl_multi_setopt(ce->multi, CURLMOPT_TIMERFUNCTION, xfer_curl_timer_fn);
    curl_multi_setopt(ce->multi, CURLMOPT_TIMERDATA, ce);
    env->curl = ce;
    return ce;
}

/* ---- error classes ------------------------------------------------------------------------ */

/* libcurl result -> class, for results that carry no HTTP status or FTP reply of their own.
 * The same table is in docs/transfer-errors.md. */
static enum xfer_err xfer_curl_class(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return XFER_OK;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return XFER_E_URL;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return XFER_E_DNS;
    case CURLE_COULDNT_CONNECT:
    case CURLE_FTP_ACCEPT_FAILED:
        return XFER_E_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_FTP_ACCEPT_TIMEOUT:
        return XFER_E_TIMEOUT;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return XFER_E_RESET;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
        return XFER_E_TLS;
    case CURLE_LOGIN_DENIED:
    case CURLE_REMOTE_ACCESS_DENIED:
    case CURLE_AUTH_ERROR:
        return XFER_E_AUTH;
    case CURLE_REMOTE_FILE_NOT_FOUND:
        return XFER_E_NOT_FOUND;
    case CURLE_FTP_COULDNT_RETR_FILE:
    case CURLE_QUOTE_ERROR:
    case CURLE_FTP_PRET_FAILED:
        return XFER_E_SERVER;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_FTP_WEIRD_PASS_REPLY:
    case CURLE_FTP_WEIRD_PASV_REPLY:
    case CURLE_FTP_WEIRD_227_FORMAT:
    case CURLE_FTP_CANT_GET_HOST:
    case CURLE_FTP_COULDNT_SET_TYPE:
    case CURLE_FTP_COULDNT_USE_REST:
    case CURLE_FTP_PORT_FAILED:
    case CURLE_RANGE_ERROR:
    case CURLE_BAD_DOWNLOAD_RESUME:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_TOO_MANY_REDIRECTS:
        return XFER_E_PROTOCOL;
    case CURLE_FILESIZE_EXCEEDED:
        return XFER_E_TOO_BIG;
    default: /* OUT_OF_MEMORY, FAILED_INIT, BAD_FUNCTION_ARGUMENT, ... */
        return XFER_E_INTERNAL;
    }
}

/* An HTTP status of 400 or more -> class (the status itself is the detail). */
static enum xfer_err xfer_curl_http_class(long status)
{
    if (status == 401 || status == 403 || status == 407)
        return XFER_E_AUTH;
    if (status == 404)
        return XFER_E_NOT_FOUND;
    return XFER_E_SERVER;
}

/* Results where libcurl gave up because of an FTP reply: the reply code says more than the
 * result does (pyftpdlib and vsftpd answer a missing file with 550 to SIZE or RETR). */
static bool xfer_curl_ftp_reply_result(CURLcode rc)
{
    switch (rc) {
    case CURLE_LOGIN_DENIED:
    case CURLE_REMOTE_ACCESS_DENIED:
    case CURLE_REMOTE_FILE_NOT_FOUND:
    case CURLE_FTP_COULDNT_RETR_FILE:
    case CURLE_FTP_COULDNT_SET_TYPE:
    case CURLE_FTP_COULDNT_USE_REST:
    case CURLE_FTP_PRET_FAILED:
    case CURLE_QUOTE_ERROR:
    case CURLE_FTP_WEIRD_PASS_REPLY:
    case CURLE_WEIRD_SERVER_REPLY:
        return true;
    default:
        return false;
    }
}

/* An HTTP 416 to a resumed request whose Content-Range says "bytes * /N" with N equal to the
 * resume offset: the file is already complete, which is a success with nothing to fetch. */
static bool xfer_curl_already_complete(struct xfer_curl_x *xcx)
{
    struct curl_header *h;
    unsigned long long n;
    char *end;

    if (xcx->x->o.resume_from == 0)
        return false;
    if (curl_easy_header(xcx->easy, "Content-Range", 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
        return false;
    if (strncasecmp(h->value, "bytes */", 8) != 0)
        return false;
    errno = 0;
    n = strtoull(h->value + 8, &end, 10);
    return errno == 0 && end != h->value + 8 && n == xcx->x->o.resume_from;
}

/* How a finished easy handle ended: class, and the status / reply code as detail. */
static enum xfer_err xfer_curl_outcome(struct xfer_curl_x *xcx, CURLcode rc, int *detail)
{
    long code = 0;

    curl_easy_getinfo(xcx->easy, CURLINFO_RESPONSE_CODE, &code);
    *detail = 0;
    if (xcx->http) {
        *detail = (int)code;
        if (code == 416 && xfer_curl_already_complete(xcx))
            return XFER_OK;
    }
    /* the write callback stopped it: a sink error, a limit, the world's cut, a bad status */
    if (xcx->werr != XFER_OK &&
        (rc == CURLE_WRITE_ERROR || rc == CURLE_ABORTED_BY_CALLBACK || rc == CURLE_OK)) {
        *detail = xcx->wdetail;
        return xcx->werr;
    }
    if (xcx->http && code >= 400 && (rc == CURLE_OK || rc == CURLE_RANGE_ERROR))
        return xfer_curl_http_class(code);
    if (xcx->ftp) {
        if (rc == CURLE_OK)
            return XFER_OK; /* the last reply is QUIT's 221: no detail worth reporting */
        /* CURLINFO_RESPONSE_CODE may hold QUIT's 221 by now: the header callback kept the
         * error reply that made libcurl give up */
        code = xcx->ftp_reply;
        if (xfer_curl_ftp_reply_result(rc) && code >= 400) {
            *detail = (int)code;
            if (code == 530)
                return XFER_E_AUTH;
            if (code == 550)
                return XFER_E_NOT_FOUND;
            return XFER_E_SERVER;
        }
        /* Other results that followed an error reply (libcurl reads 421 as a time-out, 425 /
         * 426 as a failed data connection): the class stays libcurl's, the reply is the
         * detail. */
        if (code >= 400)
            *detail = (int)code;
    }
    return xfer_curl_class(rc);
}

/* ---- transfers ---------------------------------------------------------------------------- */

/* Releases everything of xcx (the easy handle leaves the multi); x is left to the caller. */
static void xfer_curl_release(struct xfer_curl_x *xcx)
{
    struct xfer_curl_env *ce = xcx->ce;
    struct ev_loop *loop = ce->env->loop;

    if (xcx->prev)
        xcx->prev->next = xcx->next;
    else
        ce->head = xcx->next;
    if (xcx->next)
        xcx->next->prev = xcx->prev;
    ev_timer_stop(loop, &xcx->idle);
    ev_timer_stop(loop, &xcx->pace);
    if (xcx->ftps && --ce->nftps == 0)
        ev_timer_stop(loop, &ce->kick);
    curl_multi_remove_handle(ce->multi, xcx->easy);
    curl_easy_cleanup(xcx->easy);
    curl_slist_free_all(xcx->connect_to);
    xcx->x->be_state = NULL;
    free(xcx);
}

/* The transfer ended: release it, then tell the core (which posts done from the loop). */
static void xfer_curl_end(struct xfer_curl_x *xcx, enum xfer_err err, int detail)
{
    struct xfer *x = xcx->x;

    xfer_curl_release(xcx);
    xfer_finish(x, err, detail);
}

/* Collects the transfers libcurl has finished. */
static void xfer_curl_check(struct xfer_curl_env *ce)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(ce->multi, &left))) {
        struct xfer_curl_x *xcx = NULL;
        CURLcode rc = msg->data.result;
        enum xfer_err err;
        int detail;

        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&xcx);
        if (!xcx)
            continue;
        err = xfer_curl_outcome(xcx, rc, &detail);
        xfer_curl_end(xcx, err, detail); /* msg is invalid from here on */
    }
}

/* The watchdog: nothing was delivered for low_speed_time (a stalled server, or the world's
 * stall holding the transfer paused). libcurl's own low-speed check stays set as well, but it
 * averages over a 5 s window and skips paused transfers, so it reacts seconds late after a
 * burst; this is the "under 1 byte/s for low_speed_time" the documents mean. */
static void xfer_curl_idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    xfer_curl_end(w->data, XFER_E_TIMEOUT, 0);
}

/* Bytes moved (or the transfer may move again): restart the watchdog. */
static void xfer_curl_idle_kick(struct xfer_curl_x *xcx)
{
    if (xcx->x->o.low_speed_time > 0.0)
        ev_timer_again(xcx->ce->env->loop, &xcx->idle);
}

/* Lets a held transfer receive again; false when it ended (libcurl failed it). */
static bool xfer_curl_resume(struct xfer_curl_x *xcx)
{
    CURLcode rc;
    int detail;

    xcx->held = false;
    /* may hand the held bytes to the write callback right here (which may hold it again) */
    rc = curl_easy_pause(xcx->easy, CURLPAUSE_CONT);
    if (rc == CURLE_OK)
        return true;
    enum xfer_err err = xfer_curl_outcome(xcx, rc, &detail);
    xfer_curl_end(xcx, err, detail);
    return false;
}

/* The pacing delay is over: receive again unless the world stalls. */
static void xfer_curl_pace_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct xfer_curl_x *xcx = w->data;
    struct xfer_curl_env *ce = xcx->ce; /* xcx may be gone after the resume */
    const struct xfer_net *net = xcx->x->env->net;

    (void)loop;
    (void)revents;
    xfer_curl_idle_kick(xcx); /* time spent waiting for the rate is not a stall */
    if (!(net && net->stall))
        xfer_curl_resume(xcx);
    xfer_curl_check(ce);
}

/* The world's rate: seconds this transfer is ahead of its schedule (<= 0: on time). libcurl's
 * CURLOPT_MAX_RECV_SPEED_LARGE alone is too coarse here (7.88 reads up to 100 buffers per turn
 * before it checks), so the sink is paced too: a chunk that comes early is held back. */
static double xfer_curl_ahead(struct xfer_curl_x *xcx, uint64_t rate)
{
    double now = ev_time();

    if (xcx->pace_t0 == 0.0)
        xcx->pace_t0 = now;
    return (double)xcx->pace_bytes / (double)rate - (now - xcx->pace_t0);
}

/* CURLOPT_WRITEFUNCTION: body bytes to the core. Returning less than n stops the transfer
 * (CURLE_WRITE_ERROR); the reason is kept in werr. */
static size_t xfer_curl_write_fn(char *ptr, size_t size, size_t nmemb, void *userp)
{
    struct xfer_curl_x *xcx = userp;
    struct xfer *x = xcx->x;
    const struct xfer_net *net = x->env->net;
    size_t n = size * nmemb;
    enum xfer_err err;

    if (xcx->first) {
        curl_off_t len = -1;
        long code = 0;

        if (xcx->http) {
            /* FAILONERROR is off so that the status reaches us; an error page is not content */
            curl_easy_getinfo(xcx->easy, CURLINFO_RESPONSE_CODE, &code);
            if (code >= 400) {
                if (code == 416 && xfer_curl_already_complete(xcx)) {
                    xcx->skip_body = true;
                    xfer_set_length(x, 0);
                } else {
                    xcx->werr = xfer_curl_http_class(code);
                    xcx->wdetail = (int)code;
                    return 0;
                }
            }
        }
        if (!xcx->skip_body &&
            curl_easy_getinfo(xcx->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len) == CURLE_OK &&
            len >= 0)
            xfer_set_length(x, (uint64_t)len);
        xcx->first = false;
    }
    if (xcx->skip_body)
        return n;
    if (!ev_is_active(&xcx->idle))
        xfer_curl_idle_kick(xcx); /* the watchdog runs from the first body byte on */
    /* held bytes: libcurl keeps them and hands them over again after curl_easy_pause(CONT) */
    if (net && net->stall) {
        xcx->held = true;
        return CURL_WRITEFUNC_PAUSE;
    }
    if (net && net->rate) {
        double ahead = xfer_curl_ahead(xcx, net->rate);
        if (ahead > 0.001) {
            xcx->held = true;
            ev_timer_stop(xcx->ce->env->loop, &xcx->idle);
            ev_timer_set(&xcx->pace, ahead, 0.0);
            ev_timer_start(xcx->ce->env->loop, &xcx->pace);
            return CURL_WRITEFUNC_PAUSE;
        }
    }
    err = xfer_deliver(x, ptr, n);
    if (err != XFER_OK) {
        xcx->werr = err;
        xcx->wdetail = 0;
        return 0;
    }
    xcx->pace_bytes += n;
    xfer_curl_idle_kick(xcx);
    return n;
}

/* CURLOPT_HEADERFUNCTION for FTP: every server reply line passes here; keep the code of the
 * last final line ("NNN text") when it is an error reply, and forget it when a later final line
 * is not (an optional SIZE refused with 550 does not stand for what ends the transfer). */
static size_t xfer_curl_header_fn(char *buf, size_t size, size_t nitems, void *userp)
{
    struct xfer_curl_x *xcx = userp;
    size_t n = size * nitems;
    int code;

    if (n < 4 || buf[0] < '1' || buf[0] > '5' || buf[1] < '0' || buf[1] > '9' || buf[2] < '0' ||
        buf[2] > '9' || buf[3] != ' ')
        return n;
    code = (buf[0] - '0') * 100 + (buf[1] - '0') * 10 + (buf[2] - '0');
    if (code >= 400)
        xcx->ftp_reply = code;
    else if (code != 221) /* QUIT's goodbye after the failure says nothing about it */
        xcx->ftp_reply = 0;
    return n;
}

/* True when host (maybe "[v6]") is an IP literal: no lookup happens for it. */
static bool xfer_curl_ip_literal(const char *host)
{
    unsigned char buf[16];
    char tmp[64];
    size_t len = strlen(host);

    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        if (len - 2 >= sizeof(tmp))
            return false;
        memcpy(tmp, host + 1, len - 2);
        tmp[len - 2] = '\0';
        return inet_pton(AF_INET6, tmp, buf) == 1;
    }
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* CURLOPT_CONNECT_TO from the world: every map entry (redirects to a mapped host follow the map
 * too), or one catch-all to a closed port when the world refuses connections. */
static int xfer_curl_connect_to(struct xfer_curl_x *xcx)
{
    const struct xfer_map *m = xcx->x->env->map;
    const struct xfer_net *net = xcx->x->env->net;
    char line[sizeof(m->e[0].host) + sizeof(m->e[0].addr) + 32];
    struct curl_slist *l;

    if (net && net->refuse) {
        xcx->connect_to = curl_slist_append(NULL, XFER_CURL_REFUSE_TO);
        return xcx->connect_to ? 0 : -ENOMEM;
    }
    for (unsigned i = 0; m && i < m->n && i < XFER_MAP_MAX; i++) {
        const char *h = m->e[i].host, *a = m->e[i].addr;
        bool h6 = strchr(h, ':') != NULL, a6 = strchr(a, ':') != NULL;

        snprintf(line, sizeof(line), "%s%s%s:%u:%s%s%s:%u", h6 ? "[" : "", h, h6 ? "]" : "",
                 m->e[i].port, a6 ? "[" : "", a, a6 ? "]" : "", m->e[i].to_port);
        l = curl_slist_append(xcx->connect_to, line);
        if (!l)
            return -ENOMEM;
        xcx->connect_to = l;
    }
    return 0;
}

/* Parses x's URL with curl_url: the scheme decides the protocol flags; ftps:// is rewritten to
 * ftp:// (explicit FTPS, see the banner). *url gets the URL to hand to libcurl (curl_free it). */
static enum xfer_err xfer_curl_parse(struct xfer_curl_x *xcx, char **url)
{
    const struct xfer_net *net = xcx->x->env->net;
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    enum xfer_err err = XFER_E_URL;

    *url = NULL;
    if (!u)
        return XFER_E_INTERNAL;
    if (curl_url_set(u, CURLUPART_URL, xcx->x->o.url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host)
        goto out;
    if (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0) {
        xcx->http = true;
    } else if (strcmp(scheme, "ftp") == 0) {
        xcx->ftp = true;
    } else if (strcmp(scheme, "ftps") == 0) {
        xcx->ftp = xcx->ftps = true;
        if (curl_url_set(u, CURLUPART_SCHEME, "ftp", 0) != CURLUE_OK)
            goto out;
    } else {
        goto out;
    }
    /* the world's DNS outage: a name fails exactly as an unresolvable one does (XFER_E_DNS
     * through done); an IP literal needs no lookup and is not affected */
    if (net && net->dns_fail && !xfer_curl_ip_literal(host)) {
        err = XFER_E_DNS;
        goto out;
    }
    if (curl_url_get(u, CURLUPART_URL, url, 0) != CURLUE_OK)
        goto out;
    err = XFER_OK;
out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return err;
}

/* Seconds -> whole milliseconds, rounded up (a positive time never becomes 0 = "none"). */
static long xfer_curl_ms(double s)
{
    double ms = s * 1000.0;

    if (ms >= (double)LONG_MAX)
        return LONG_MAX;
    return (long)ms + ((double)(long)ms < ms ? 1 : 0);
}

/* Applies every option of x to xcx->easy; false when libcurl refuses one. */
static bool xfer_curl_setopts(struct xfer_curl_x *xcx, const char *url)
{
    const struct xfer_opts *o = &xcx->x->o;
    const struct xfer_net *net = xcx->x->env->net;
    CURL *e = xcx->easy;
    double ct = o->connect_timeout > 0.0 ? o->connect_timeout : XFER_CURL_CONNECT_DEFAULT;
    CURLcode rc = CURLE_OK;

    /* each setopt's result folds into rc; the first failure wins */
#define XFER_CURL_SET(opt, val)                                                                    \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(e, opt, val);                                                    \
    } while (0)
    XFER_CURL_SET(CURLOPT_URL, url);
    XFER_CURL_SET(CURLOPT_PRIVATE, (void *)xcx);
    XFER_CURL_SET(CURLOPT_WRITEFUNCTION, xfer_curl_write_fn);
    XFER_CURL_SET(CURLOPT_WRITEDATA, (void *)xcx);
    XFER_CURL_SET(CURLOPT_NOSIGNAL, 1L);
    XFER_CURL_SET(CURLOPT_NOPROGRESS, 1L);
    /* Big reads: each one is a sink write (flash programs) and a loop turn; 16 KiB pieces
     * made a 64 MiB download four thousand rounds of that. */
    XFER_CURL_SET(CURLOPT_BUFFERSIZE, XFER_CURL_BUFFER);
    XFER_CURL_SET(CURLOPT_PROTOCOLS_STR, "http,https,ftp");
    XFER_CURL_SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    XFER_CURL_SET(CURLOPT_FOLLOWLOCATION, 1L);
    XFER_CURL_SET(CURLOPT_MAXREDIRS, XFER_CURL_MAX_REDIRS);
    XFER_CURL_SET(CURLOPT_FAILONERROR, 0L);
    /* a fresh connection per transfer, closed after it: the world's conditions (refuse, map,
     * dns_fail) act on every download, and an FTPS control connection verified under one trust
     * store is never reused under another (7.88 does not compare TLS settings for ftp://) */
    XFER_CURL_SET(CURLOPT_FRESH_CONNECT, 1L);
    XFER_CURL_SET(CURLOPT_FORBID_REUSE, 1L);
    XFER_CURL_SET(CURLOPT_CONNECTTIMEOUT_MS, xfer_curl_ms(ct));
    if (o->low_speed_time > 0.0) {
        XFER_CURL_SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
        XFER_CURL_SET(CURLOPT_LOW_SPEED_TIME, (xfer_curl_ms(o->low_speed_time) + 999) / 1000);
    }
    if (o->total_timeout > 0.0)
        XFER_CURL_SET(CURLOPT_TIMEOUT_MS, xfer_curl_ms(o->total_timeout));
    if (o->resume_from)
        XFER_CURL_SET(CURLOPT_RESUME_FROM_LARGE, (curl_off_t)o->resume_from);
    if (o->user)
        XFER_CURL_SET(CURLOPT_USERNAME, o->user);
    if (o->pass)
        XFER_CURL_SET(CURLOPT_PASSWORD, o->pass);
    XFER_CURL_SET(CURLOPT_SSL_VERIFYPEER, o->verify_peer ? 1L : 0L);
    XFER_CURL_SET(CURLOPT_SSL_VERIFYHOST, o->verify_peer ? 2L : 0L);
    if (o->ca_file)
        XFER_CURL_SET(CURLOPT_CAINFO, o->ca_file);
    if (xcx->ftp) {
        XFER_CURL_SET(CURLOPT_FTP_USE_EPSV, 1L); /* passive: EPSV, then PASV */
        XFER_CURL_SET(CURLOPT_HEADERFUNCTION, xfer_curl_header_fn);
        XFER_CURL_SET(CURLOPT_HEADERDATA, (void *)xcx);
        if (xcx->ftps)
            XFER_CURL_SET(CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    }
    if (xcx->connect_to)
        XFER_CURL_SET(CURLOPT_CONNECT_TO, xcx->connect_to);
    if (net && net->rate)
        XFER_CURL_SET(CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)net->rate);
#undef XFER_CURL_SET
    return rc == CURLE_OK;
}

static int xfer_curl_start(struct xfer *x)
{
    struct xfer_curl_env *ce = xfer_curl_env_get(x->env);
    struct xfer_curl_x *xcx;
    char *url = NULL;
    enum xfer_err err;

    if (!ce)
        return XFER_E_INTERNAL;
    xcx = calloc(1, sizeof(*xcx));
    if (!xcx)
        return XFER_E_INTERNAL;
    xcx->ce = ce;
    xcx->x = x;
    xcx->first = true;
    ev_timer_init(&xcx->idle, xfer_curl_idle_cb, 0.0, x->o.low_speed_time);
    xcx->idle.data = xcx;
    ev_timer_init(&xcx->pace, xfer_curl_pace_cb, 0.0, 0.0);
    xcx->pace.data = xcx;
    err = xfer_curl_parse(xcx, &url);
    if (err != XFER_OK)
        goto fail;
    err = XFER_E_INTERNAL;
    if (xfer_curl_connect_to(xcx) < 0)
        goto fail;
    xcx->easy = curl_easy_init();
    if (!xcx->easy || !xfer_curl_setopts(xcx, url))
        goto fail;
    /* the multi's timer callback schedules the first step; nothing runs from in here */
    if (curl_multi_add_handle(ce->multi, xcx->easy) != CURLM_OK)
        goto fail;
    curl_free(url);
    xcx->next = ce->head;
    if (ce->head)
        ce->head->prev = xcx;
    ce->head = xcx;
    if (xcx->ftps && ce->nftps++ == 0)
        ev_timer_start(ce->env->loop, &ce->kick);
    x->be_state = xcx;
    return XFER_OK;
fail:
    curl_free(url);
    if (xcx->easy)
        curl_easy_cleanup(xcx->easy);
    curl_slist_free_all(xcx->connect_to);
    free(xcx);
    return err;
}

static void xfer_curl_cancel(struct xfer *x)
{
    if (x->be_state)
        xfer_curl_release(x->be_state);
}

/* The world changed: an outage ends every transfer; a new rate starts a new pacing schedule;
 * the end of a stall releases held transfers (a new stall needs nothing here: the write
 * callback reads net->stall and holds the next bytes back). */
static void xfer_curl_env_changed(struct xfer_env *env)
{
    struct xfer_curl_env *ce = env->curl;
    const struct xfer_net *net = env->net;
    struct xfer_curl_x *xcx, *next;

    if (!ce || !net)
        return;
    for (xcx = ce->head; xcx; xcx = next) {
        next = xcx->next;
        if (!net->up) {
            xfer_curl_end(xcx, XFER_E_NO_NETWORK, 0);
            continue;
        }
        curl_easy_setopt(xcx->easy, CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)net->rate);
        xcx->pace_t0 = 0.0;
        xcx->pace_bytes = 0;
        if (!net->stall && xcx->held) {
            ev_timer_stop(env->loop, &xcx->pace);
            xfer_curl_idle_kick(xcx);
            xfer_curl_resume(xcx);
        }
    }
    /* a resumed transfer may have left work for libcurl (or ended): collect it */
    xfer_curl_check(ce);
}

static void xfer_curl_env_free(struct xfer_env *env)
{
    struct xfer_curl_env *ce = env->curl;

    if (!ce)
        return;
    /* the contract says none is left; a leftover is released without a callback */
    while (ce->head)
        xfer_curl_release(ce->head);
    curl_multi_cleanup(ce->multi); /* closes cached connections: CURL_POLL_REMOVE frees sockets */
    ev_timer_stop(env->loop, &ce->timer);
    ev_timer_stop(env->loop, &ce->kick);
    curl_global_cleanup();
    free(ce);
    env->curl = NULL;
}

static const char *const xfer_curl_schemes[] = {"http", "https", "ftp", "ftps", NULL};

const struct xfer_backend xfer_curl_backend = {
    .name = "curl",
    .schemes = xfer_curl_schemes,
    .start = xfer_curl_start,
    .cancel = xfer_curl_cancel,
    .env_changed = xfer_curl_env_changed,
    .env_free = xfer_curl_env_free,
};
