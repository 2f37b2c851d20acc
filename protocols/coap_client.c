/*
 * CoAP download backend (coap://): block-wise GET (RFC 7959 Block2) over libcoap 4.3.1 on the
 * module's libev loop. One libcoap context per xfer_env; its epoll fd is an ev_io and its
 * retransmission clock one ev_timer, so nothing ever blocks. Blocks are requested one at a time
 * by this file (not by libcoap's block mode, which would buffer or run ahead), so each block goes
 * straight to the sink in order and the world's stall and rate can hold the next request back.
 * Not here: coaps/DTLS (the BC260Y documents use plain coap://), Observe, uploads.
 */
#include "protocols/xfer_backend.h"

#include <coap3/coap.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Flow of one transfer (each arrow is one loop turn at most; nothing waits in place):
 *
 *   start: parse URL -> world (dns_fail, refuse) -> address map -> numeric address?
 *            |                                        no: getaddrinfo_a, polled by `pace`
 *            v
 *   session -> GET Block2(num, szx) --response--> deliver the new bytes -> M=1: next request
 *                                                   (now, or after `pace` for the rate, or held
 *                                                   while the world stalls)      M=0: done
 *   `watch` (connect_timeout before the first block, then low_speed_time) -> XFER_E_TIMEOUT
 *   libcoap's own CON retransmission gives up -> XFER_E_TIMEOUT; ICMP unreachable -> CONNECT
 */

#define COAP_CLIENT_HOST_MAX 256
#define COAP_CLIENT_GAI_POLL 0.005 /* s between checks of an asynchronous lookup */
#define COAP_CLIENT_BACKSTOP 1.0   /* s: longest sleep of the libcoap timer while busy */

/* A host name lookup in flight (glibc getaddrinfo_a). Outlives its transfer when a cancel
 * comes while glibc still owns it: it then waits on the env's orphan list. */
struct coap_client_lookup {
    struct gaicb req;
    struct addrinfo hints;
    struct coap_client_lookup *next;
    char host[COAP_CLIENT_HOST_MAX];
};

struct coap_client_env;

/* Per-transfer state (x->be_state). */
struct coap_client_xfer {
    struct coap_client_env *ce;
    struct coap_client_xfer *next; /* ce->list */
    struct xfer *x;                /* NULL once cancelled */
    coap_session_t *session;
    coap_optlist_t *uri_opts; /* Uri-Path / Uri-Query, added to every request */
    struct coap_client_lookup *lookup;
    uint16_t port;    /* after the map, host byte order */
    unsigned szx;     /* requested block size exponent: size = 16 << szx */
    uint64_t pos;     /* absolute offset of the next byte the sink expects */
    uint64_t size2;   /* Size2 from the server, 0 if not told */
    uint8_t token[8]; /* of the request in flight */
    size_t token_len;
    uint8_t etag[8]; /* the representation's ETag from the first block */
    size_t etag_len;
    bool in_flight; /* a request waits for its response */
    bool held;      /* the next request waits for the world's stall to end */
    bool got_block;
    bool ended; /* outcome decided; the reaper finishes and frees */
    enum xfer_err err;
    int detail;
    ev_tstamp last_req; /* when the last request went out (rate spacing) */
    ev_timer pace;      /* next request after a rate delay; lookup polling */
    ev_timer watch;     /* no response / no block for too long */
    ev_timer total;     /* opts.total_timeout */
};

/* Shared by all CoAP transfers of one xfer_env (env->coap). */
struct coap_client_env {
    struct xfer_env *env;
    coap_context_t *ctx;
    ev_io io;       /* libcoap's epoll fd */
    ev_timer timer; /* libcoap's retransmissions */
    struct coap_client_xfer *list;
    struct coap_client_lookup *orphans;
    unsigned in_io; /* > 0 while libcoap is on the stack: defer frees */
};

static const char *const coap_client_schemes[] = {"coap", NULL};

static void coap_client_reap(struct coap_client_env *ce);

/* ---- helpers ------------------------------------------------------------------------------ */

static const struct xfer_net *coap_client_net(const struct coap_client_env *ce)
{
    static const struct xfer_net none = {.up = true};
    return ce->env->net ? ce->env->net : &none;
}

/*
 * Response code to error class. detail is the code written as class*100+detail (404, 500).
 * 2.05 is the only success a GET gets; other 2.xx are unexpected.
 */
static enum xfer_err coap_client_code_err(unsigned cls, unsigned det)
{
    if (cls == 2)
        return det == 5 ? XFER_OK : XFER_E_PROTOCOL;
    if (cls == 4 && det == 4)
        return XFER_E_NOT_FOUND;
    if (cls == 4 && (det == 1 || det == 3))
        return XFER_E_AUTH;
    if (cls == 4 || cls == 5)
        return XFER_E_SERVER;
    return XFER_E_PROTOCOL;
}

/* Re-arms the libcoap timer from what libcoap says its next deadline is (0 = none). While a
 * transfer runs, a backstop wake-up keeps a lost deadline from stalling it. Finishes what ended
 * first: coap_io_prepare_epoll() retransmits and may report a give-up through the nack handler. */
static void coap_client_arm(struct coap_client_env *ce)
{
    struct ev_loop *loop = ce->env->loop;
    coap_tick_t now;
    unsigned ms;
    double after;

    if (ce->in_io)
        return; /* the outermost caller arms */
    coap_ticks(&now);
    ce->in_io++;
    ms = coap_io_prepare_epoll(ce->ctx, now);
    ce->in_io--;
    coap_client_reap(ce);
    ev_timer_stop(loop, &ce->timer);
    if (!ce->list) {
        ev_io_stop(loop, &ce->io);
        return;
    }
    ev_io_start(loop, &ce->io);
    after = ms ? ms / 1000.0 : COAP_CLIENT_BACKSTOP;
    if (after > COAP_CLIENT_BACKSTOP)
        after = COAP_CLIENT_BACKSTOP;
    ev_timer_set(&ce->timer, after, 0.);
    ev_timer_start(loop, &ce->timer);
}

/* Lets libcoap do its due work (reads, retransmissions), then finishes what ended. */
static void coap_client_pump(struct coap_client_env *ce)
{
    ce->in_io++;
    coap_io_process(ce->ctx, COAP_IO_NO_WAIT);
    ce->in_io--;
    coap_client_arm(ce);
}

static void coap_client_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    coap_client_pump(w->data);
}

static void coap_client_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    coap_client_pump(w->data);
}

/* Frees lookups glibc has given back. */
static void coap_client_free_orphans(struct coap_client_env *ce, bool wait)
{
    struct coap_client_lookup **pp = &ce->orphans;

    while (*pp) {
        struct coap_client_lookup *l = *pp;
        if (wait) {
            /* Only at env_free: the lookup was cancelled but glibc's thread still owns it. */
            const struct gaicb *one[1] = {&l->req};
            while (gai_error(&l->req) == EAI_INPROGRESS)
                gai_suspend(one, 1, NULL);
        }
        if (gai_error(&l->req) == EAI_INPROGRESS) {
            pp = &l->next;
            continue;
        }
        *pp = l->next;
        if (l->req.ar_result)
            freeaddrinfo(l->req.ar_result);
        free(l);
    }
}

/* Releases everything of st but st itself. Never from inside coap_io_process. */
static void coap_client_release(struct coap_client_xfer *st)
{
    struct ev_loop *loop = st->ce->env->loop;

    ev_timer_stop(loop, &st->pace);
    ev_timer_stop(loop, &st->watch);
    ev_timer_stop(loop, &st->total);
    if (st->session) {
        coap_session_set_app_data(st->session, NULL);
        coap_session_release(st->session);
        st->session = NULL;
    }
    coap_delete_optlist(st->uri_opts);
    st->uri_opts = NULL;
    if (st->lookup) {
        if (gai_cancel(&st->lookup->req) == EAI_NOTCANCELED ||
            gai_error(&st->lookup->req) == EAI_INPROGRESS) {
            st->lookup->next = st->ce->orphans;
            st->ce->orphans = st->lookup;
        } else {
            if (st->lookup->req.ar_result)
                freeaddrinfo(st->lookup->req.ar_result);
            free(st->lookup);
        }
        st->lookup = NULL;
    }
}

/* Finishes and frees every ended transfer. xfer_finish posts done from a timer, so the owner
 * cannot re-enter this list from here. */
static void coap_client_reap(struct coap_client_env *ce)
{
    struct coap_client_xfer **pp = &ce->list;

    if (ce->in_io)
        return;
    while (*pp) {
        struct coap_client_xfer *st = *pp;
        if (!st->ended) {
            pp = &st->next;
            continue;
        }
        *pp = st->next;
        coap_client_release(st);
        if (st->x) {
            st->x->be_state = NULL;
            xfer_finish(st->x, st->err, st->detail);
        }
        free(st);
    }
    coap_client_free_orphans(ce, false);
}

/* Decides the outcome (first one wins); the reaper finishes as soon as libcoap is not on the
 * stack. */
static void coap_client_end(struct coap_client_xfer *st, enum xfer_err err, int detail)
{
    struct ev_loop *loop = st->ce->env->loop;

    if (st->ended)
        return;
    st->ended = true;
    st->err = err;
    st->detail = detail;
    ev_timer_stop(loop, &st->pace);
    ev_timer_stop(loop, &st->watch);
    ev_timer_stop(loop, &st->total);
    if (st->session)
        coap_session_set_app_data(st->session, NULL); /* later libcoap callbacks: ignored */
    coap_client_reap(st->ce);
}

/* ---- requests ----------------------------------------------------------------------------- */

/* Sends GET for the block holding st->pos. 0 or an xfer_err. */
static int coap_client_request(struct coap_client_xfer *st)
{
    uint64_t bs = (uint64_t)16 << st->szx;
    uint64_t num = st->pos / bs;
    uint8_t opt[8];
    coap_pdu_t *pdu;

    if (num > 0xFFFFF) /* Block2 NUM is 20 bits */
        return XFER_E_TOO_BIG;
    pdu = coap_new_pdu(COAP_MESSAGE_CON, COAP_REQUEST_CODE_GET, st->session);
    if (!pdu)
        return XFER_E_INTERNAL;
    coap_session_new_token(st->session, &st->token_len, st->token);
    if (!coap_add_token(pdu, st->token_len, st->token) ||
        (st->uri_opts && !coap_add_optlist_pdu(pdu, &st->uri_opts)) ||
        !coap_add_option(pdu, COAP_OPTION_BLOCK2,
                         coap_encode_var_safe(opt, sizeof(opt), (unsigned)(num << 4 | st->szx)),
                         opt) ||
        /* Size2 = 0 in the first request asks the server for the total size. */
        (!st->got_block && !coap_add_option(pdu, COAP_OPTION_SIZE2,
                                            coap_encode_var_safe(opt, sizeof(opt), 0), opt))) {
        coap_delete_pdu(pdu);
        return XFER_E_INTERNAL;
    }
    if (coap_send(st->session, pdu) == COAP_INVALID_MID)
        return XFER_E_CONNECT;
    st->in_flight = true;
    st->last_req = ev_now(st->ce->env->loop);
    return XFER_OK;
}

/* Sends the next request unless the world stalls (then it waits for env_changed while the
 * watchdog runs). libcoap is on the stack during coap_send, so ends are reaped afterwards. */
static void coap_client_next(struct coap_client_xfer *st)
{
    struct coap_client_env *ce = st->ce;
    int rc;

    if (coap_client_net(ce)->stall) {
        st->held = true;
        return;
    }
    st->held = false;
    ce->in_io++;
    rc = coap_client_request(st);
    if (rc != XFER_OK)
        coap_client_end(st, rc, 0);
    ce->in_io--;
    coap_client_arm(ce); /* st may be gone from here on */
}

/* After a block of len bytes: next request now, or later to keep under the world's rate. */
static void coap_client_schedule(struct coap_client_xfer *st, size_t len)
{
    uint64_t rate = coap_client_net(st->ce)->rate;
    ev_tstamp now = ev_now(st->ce->env->loop), at;

    if (rate == 0) {
        coap_client_next(st);
        return;
    }
    at = st->last_req + (double)len / (double)rate;
    if (at <= now) {
        coap_client_next(st);
        return;
    }
    ev_timer_set(&st->pace, at - now, 0.);
    ev_timer_start(st->ce->env->loop, &st->pace);
}

/* (Re)starts the no-progress watchdog; 0 s means none (libcoap's retransmission limit, 62-93 s
 * 45 s with the RFC 7252 defaults, still ends a dead transfer). */
static void coap_client_watch_arm(struct coap_client_xfer *st, double secs)
{
    ev_timer_stop(st->ce->env->loop, &st->watch);
    if (secs > 0) {
        ev_timer_set(&st->watch, secs, 0.);
        ev_timer_start(st->ce->env->loop, &st->watch);
    }
}

/* ---- libcoap callbacks -------------------------------------------------------------------- */

/* One response: check it belongs to the request in flight, then hand the new bytes over. */
static coap_response_t coap_client_on_response(coap_session_t *session, const coap_pdu_t *sent,
                                               const coap_pdu_t *rcvd, const coap_mid_t mid)
{
    struct coap_client_xfer *st = coap_session_get_app_data(session);
    coap_bin_const_t tok = coap_pdu_get_token(rcvd);
    coap_pdu_code_t code = coap_pdu_get_code(rcvd);
    unsigned cls = COAP_RESPONSE_CLASS(code), det = code & 0x1F;
    coap_opt_iterator_t it;
    coap_opt_t *opt;
    coap_block_t blk;
    uint64_t off, bs;
    const uint8_t *data = NULL;
    size_t len = 0;
    enum xfer_err e;

    (void)sent;
    (void)mid;
    if (!st || st->ended || !st->in_flight)
        return COAP_RESPONSE_OK;
    /* A late answer to an earlier request (its token is gone): not ours to use. */
    if (tok.length != st->token_len || memcmp(tok.s, st->token, tok.length) != 0)
        return COAP_RESPONSE_OK;
    st->in_flight = false;

    e = coap_client_code_err(cls, det);
    if (e != XFER_OK) {
        coap_client_end(st, e, (int)(cls * 100 + det));
        return COAP_RESPONSE_OK;
    }
    /* No Block2: the server sent the whole (small) representation in one message. */
    if (!coap_get_block(rcvd, COAP_OPTION_BLOCK2, &blk)) {
        blk.num = 0;
        blk.m = 0;
        blk.szx = 6;
    } else if (blk.szx == 7) { /* BERT is for CoAP over TCP only */
        coap_client_end(st, XFER_E_PROTOCOL, 205);
        return COAP_RESPONSE_OK;
    }
    bs = (uint64_t)16 << blk.szx;
    off = (uint64_t)blk.num * bs;
    coap_get_data(rcvd, &len, &data);

    /* The representation must not change between blocks (RFC 7959 §2.4: same ETag). */
    opt = coap_check_option(rcvd, COAP_OPTION_ETAG, &it);
    if (opt && coap_opt_length(opt) <= sizeof(st->etag)) {
        if (!st->got_block) {
            st->etag_len = coap_opt_length(opt);
            memcpy(st->etag, coap_opt_value(opt), st->etag_len);
        } else if (coap_opt_length(opt) != st->etag_len ||
                   memcmp(coap_opt_value(opt), st->etag, st->etag_len) != 0) {
            coap_client_end(st, XFER_E_PROTOCOL, 205);
            return COAP_RESPONSE_OK;
        }
    }
    opt = coap_check_option(rcvd, COAP_OPTION_SIZE2, &it);
    if (opt && !st->got_block) {
        st->size2 = coap_decode_var_bytes8(coap_opt_value(opt), coap_opt_length(opt));
        if (st->size2 >= st->pos && st->x)
            xfer_set_length(st->x, st->size2 - st->pos);
    }
    st->got_block = true;
    /* A server may answer with a smaller block than asked for (§2.2): follow it. */
    if (blk.szx < st->szx)
        st->szx = blk.szx;

    /*
     * Where the block lies against the next byte due (pos):
     *   wholly before pos   an old block (a duplicate, or the overlap of a resumed request):
     *                       nothing new, the watchdog keeps running, the due block is asked for
     *   starts after pos    a gap: bytes would be missing -> XFER_E_PROTOCOL
     *   covers pos          the bytes from pos on go to the sink, the watchdog restarts
     */
    if (off + len <= st->pos && !(len == 0 && off == st->pos)) {
        /* old bytes only */
    } else if (off > st->pos) {
        coap_client_end(st, XFER_E_PROTOCOL, 205);
        return COAP_RESPONSE_OK;
    } else {
        size_t skip = (size_t)(st->pos - off);
        if (len > skip) {
            e = xfer_deliver(st->x, data + skip, len - skip);
            if (st->ended) /* cancelled from inside deliver (the core forbids it; be safe) */
                return COAP_RESPONSE_OK;
            if (e != XFER_OK) { /* too big, the world's cut, the sink full or failing */
                coap_client_end(st, e, 0);
                return COAP_RESPONSE_OK;
            }
            st->pos += len - skip;
        }
        coap_client_watch_arm(st, st->x->o.low_speed_time);
    }
    /* M=0 ends the representation; a Size2 we were told must then match what arrived. */
    if (!blk.m) {
        if (st->size2 && st->pos != st->size2)
            coap_client_end(st, XFER_E_PROTOCOL, 205);
        else
            coap_client_end(st, XFER_OK, 205);
        return COAP_RESPONSE_OK;
    }
    coap_client_schedule(st, len);
    return COAP_RESPONSE_OK;
}

/* libcoap gave up on a CON request. */
static void coap_client_on_nack(coap_session_t *session, const coap_pdu_t *sent,
                                const coap_nack_reason_t reason, const coap_mid_t mid)
{
    struct coap_client_xfer *st = coap_session_get_app_data(session);
    enum xfer_err e;

    (void)sent;
    (void)mid;
    if (!st || st->ended)
        return;
    switch (reason) {
    case COAP_NACK_TOO_MANY_RETRIES:
        e = XFER_E_TIMEOUT;
        break;
    case COAP_NACK_RST: /* the peer rejected the message: like a TCP reset */
        e = st->got_block ? XFER_E_RESET : XFER_E_CONNECT;
        break;
    case COAP_NACK_TLS_FAILED:
        e = XFER_E_TLS;
        break;
    case COAP_NACK_ICMP_ISSUE: /* port or host unreachable */
    case COAP_NACK_NOT_DELIVERABLE:
    default:
        e = XFER_E_CONNECT;
        break;
    }
    coap_client_end(st, e, 0);
}

/* ---- timers ------------------------------------------------------------------------------- */

/* The watchdog or the total time-out ran out: TIMEOUT, as libcurl's low-speed abort. */
static void coap_client_watch_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    coap_client_end(w->data, XFER_E_TIMEOUT, 0);
}

static int coap_client_connect(struct coap_client_xfer *st, const struct addrinfo *ai);

/* The pace timer: either polls a lookup in flight or sends the rate-delayed request. */
static void coap_client_pace_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct coap_client_xfer *st = w->data;
    struct coap_client_lookup *l;
    const struct addrinfo *ai;
    int rc;

    (void)revents;
    if (!st->lookup) {
        coap_client_next(st);
        return;
    }
    rc = gai_error(&st->lookup->req);
    if (rc == EAI_INPROGRESS)
        return; /* repeating timer: look again */
    ev_timer_stop(loop, w);
    if (rc != 0 || !st->lookup->req.ar_result) {
        coap_client_end(st, XFER_E_DNS, 0);
        return;
    }
    l = st->lookup;
    st->lookup = NULL;
    /* IPv4 first when the name has both: test servers listen on 127.0.0.1, and "localhost"
     * would otherwise go to ::1. No fallback to a second address (no connection to fail). */
    ai = l->req.ar_result;
    for (const struct addrinfo *a = ai; a; a = a->ai_next)
        if (a->ai_family == AF_INET) {
            ai = a;
            break;
        }
    rc = coap_client_connect(st, ai); /* st may be gone if rc == XFER_OK */
    freeaddrinfo(l->req.ar_result);
    free(l);
    if (rc != XFER_OK)
        coap_client_end(st, rc, 0);
}

/* ---- start, cancel, env ------------------------------------------------------------------- */

/* Creates the env's context on first use. coap_startup() is process-wide but idempotent in
 * 4.3.1 (a static "started" flag inside libcoap), so calling it per env is safe; coap_cleanup()
 * does nothing on POSIX and is not called. */
static struct coap_client_env *coap_client_env_get(struct xfer_env *env)
{
    struct coap_client_env *ce = env->coap;

    if (ce)
        return ce;
    ce = calloc(1, sizeof(*ce));
    if (!ce)
        return NULL;
    coap_startup();
    ce->ctx = coap_new_context(NULL);
    if (!ce->ctx || coap_context_get_coap_fd(ce->ctx) < 0) {
        if (ce->ctx)
            coap_free_context(ce->ctx);
        free(ce);
        return NULL;
    }
    ce->env = env;
    /* No COAP_BLOCK_USE_LIBCOAP: Block2 is ours, one block per response, nothing buffered. */
    coap_context_set_block_mode(ce->ctx, 0);
    coap_register_response_handler(ce->ctx, coap_client_on_response);
    coap_register_nack_handler(ce->ctx, coap_client_on_nack);
    ev_io_init(&ce->io, coap_client_io_cb, coap_context_get_coap_fd(ce->ctx), EV_READ);
    ce->io.data = ce;
    ev_timer_init(&ce->timer, coap_client_timer_cb, 0., 0.);
    ce->timer.data = ce;
    env->coap = ce;
    return ce;
}

/* Opens the session to ai's address and sends the first request. */
static int coap_client_connect(struct coap_client_xfer *st, const struct addrinfo *ai)
{
    coap_address_t dst;

    if (ai->ai_addrlen > sizeof(dst.addr))
        return XFER_E_DNS;
    coap_address_init(&dst);
    memcpy(&dst.addr, ai->ai_addr, ai->ai_addrlen);
    dst.size = ai->ai_addrlen;
    coap_address_set_port(&dst, st->port);
    st->session = coap_new_client_session(st->ce->ctx, NULL, &dst, COAP_PROTO_UDP);
    if (!st->session)
        return XFER_E_CONNECT;
    coap_session_set_app_data(st->session, st);
    coap_client_next(st);
    return XFER_OK;
}

/* Uri-Path and Uri-Query options of the URL (percent-decoded by libcoap). */
static int coap_client_uri_opts(struct coap_client_xfer *st, const coap_uri_t *uri)
{
    size_t cap = uri->path.length + uri->query.length + 64, blen;
    unsigned char *buf = malloc(cap), *p;
    int n, rc = XFER_E_URL;

    if (!buf)
        return XFER_E_INTERNAL;
    if (uri->path.length) {
        blen = cap;
        p = buf;
        n = coap_split_path(uri->path.s, uri->path.length, buf, &blen);
        if (n < 0)
            goto out;
        while (n-- > 0) {
            coap_insert_optlist(
                &st->uri_opts,
                coap_new_optlist(COAP_OPTION_URI_PATH, coap_opt_length(p), coap_opt_value(p)));
            p += coap_opt_size(p);
        }
    }
    if (uri->query.length) {
        blen = cap;
        p = buf;
        n = coap_split_query(uri->query.s, uri->query.length, buf, &blen);
        if (n < 0)
            goto out;
        while (n-- > 0) {
            coap_insert_optlist(
                &st->uri_opts,
                coap_new_optlist(COAP_OPTION_URI_QUERY, coap_opt_length(p), coap_opt_value(p)));
            p += coap_opt_size(p);
        }
    }
    rc = XFER_OK;
out:
    free(buf);
    return rc;
}

/* Block size exponent for opts.coap_block: 0 -> 1024; others round down to a power of two
 * within 16..1024. */
static unsigned coap_client_szx(unsigned block)
{
    unsigned szx = 6;

    if (block == 0)
        return 6;
    while (szx > 0 && (16u << szx) > block)
        szx--;
    return szx;
}

/* Starts an asynchronous lookup of host (glibc getaddrinfo_a, its own thread). */
static int coap_client_resolve(struct coap_client_xfer *st, const char *host)
{
    struct gaicb *reqs[1];

    st->lookup = calloc(1, sizeof(*st->lookup));
    if (!st->lookup)
        return XFER_E_INTERNAL;
    snprintf(st->lookup->host, sizeof(st->lookup->host), "%s", host);
    st->lookup->hints.ai_socktype = SOCK_DGRAM;
    st->lookup->req.ar_name = st->lookup->host;
    st->lookup->req.ar_request = &st->lookup->hints;
    reqs[0] = &st->lookup->req;
    if (getaddrinfo_a(GAI_NOWAIT, reqs, 1, NULL) != 0) {
        free(st->lookup);
        st->lookup = NULL;
        return XFER_E_DNS;
    }
    ev_timer_set(&st->pace, 0., COAP_CLIENT_GAI_POLL);
    ev_timer_start(st->ce->env->loop, &st->pace);
    return XFER_OK;
}

/* Takes st off the env's list (it may not be at the head). */
static void coap_client_unlink(struct coap_client_xfer *st)
{
    struct coap_client_xfer **pp = &st->ce->list;

    while (*pp && *pp != st)
        pp = &(*pp)->next;
    if (*pp)
        *pp = st->next;
}

/*
 * backend.start: parse the URL, apply the world and the address map, then either send the first
 * request at once (an address literal) or start a lookup. Failures before anything is on the
 * wire come back as the return value (the core reports them); later ones through the reaper.
 */
static int coap_client_start(struct xfer *x)
{
    struct coap_client_env *ce = coap_client_env_get(x->env);
    const struct xfer_net *net;
    struct coap_client_xfer *st;
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICHOST};
    struct addrinfo *ai = NULL;
    char host[COAP_CLIENT_HOST_MAX];
    const char *to_addr;
    unsigned to_port;
    coap_uri_t uri;
    int rc;

    if (!ce)
        return XFER_E_INTERNAL;
    net = coap_client_net(ce);
    if (coap_split_uri((const uint8_t *)x->url, strlen(x->url), &uri) < 0 ||
        uri.scheme != COAP_URI_SCHEME_COAP || uri.host.length == 0 ||
        uri.host.length >= sizeof(host))
        return XFER_E_URL;
    if (net->dns_fail)
        return XFER_E_DNS;
    if (net->refuse)
        return XFER_E_CONNECT;

    st = calloc(1, sizeof(*st));
    if (!st)
        return XFER_E_INTERNAL;
    st->ce = ce;
    st->x = x;
    st->szx = coap_client_szx(x->o.coap_block);
    st->pos = x->o.resume_from; /* requests start at its block; the overlap is skipped */
    ev_timer_init(&st->pace, coap_client_pace_cb, 0., 0.);
    ev_timer_init(&st->watch, coap_client_watch_cb, 0., 0.);
    ev_timer_init(&st->total, coap_client_watch_cb, 0., 0.);
    st->pace.data = st->watch.data = st->total.data = st;
    rc = coap_client_uri_opts(st, &uri);
    if (rc != XFER_OK)
        goto fail;

    memcpy(host, uri.host.s, uri.host.length);
    host[uri.host.length] = '\0';
    st->port = uri.port;
    if (x->env->map && xfer_map_lookup(x->env->map, host, uri.port, &to_addr, &to_port)) {
        if (strlen(to_addr) >= sizeof(host) || to_port > 0xFFFF) {
            rc = XFER_E_URL;
            goto fail;
        }
        strcpy(host, to_addr);
        st->port = (uint16_t)to_port;
    }

    /* Linked before the first request so that the loop watchers see a busy env. */
    x->be_state = st;
    st->next = ce->list;
    ce->list = st;
    coap_client_watch_arm(st,
                          x->o.connect_timeout > 0 ? x->o.connect_timeout : x->o.low_speed_time);
    if (x->o.total_timeout > 0) {
        ev_timer_set(&st->total, x->o.total_timeout, 0.);
        ev_timer_start(ce->env->loop, &st->total);
    }

    /* Ends during the first send are returned, not finished: the core reports them. */
    ce->in_io++;
    if (getaddrinfo(host, NULL, &hints, &ai) == 0) {
        /* An address literal: no lookup, no blocking. */
        rc = coap_client_connect(st, ai);
        freeaddrinfo(ai);
    } else {
        /* A name: glibc resolves it on its own thread; the pace timer polls for the answer. */
        rc = coap_client_resolve(st, host);
    }
    ce->in_io--;
    if (rc == XFER_OK && st->ended)
        rc = st->err;
    if (rc != XFER_OK) {
        coap_client_unlink(st);
        x->be_state = NULL;
        goto fail;
    }
    coap_client_arm(ce);
    return XFER_OK;
fail:
    coap_client_release(st);
    free(st);
    coap_client_arm(ce);
    return rc;
}

/* backend.cancel: may come from the owner's callbacks, never from inside libcoap (the core
 * posts them from its own timer); the reaper still guards against that. */
static void coap_client_cancel(struct xfer *x)
{
    struct coap_client_xfer *st = x->be_state;
    struct coap_client_env *ce;

    if (!st)
        return;
    ce = st->ce;
    x->be_state = NULL;
    st->x = NULL; /* no callback follows; x may be freed right after this */
    coap_client_end(st, XFER_E_ABORTED, 0);
    coap_client_arm(ce);
}

/* The world changed: an outage ends transfers, a stall holds their next request back (the
 * watchdog then ends them), the end of a stall sends the held request. Rate applies from the
 * next block on. */
static void coap_client_env_changed(struct xfer_env *env)
{
    struct coap_client_env *ce = env->coap;
    const struct xfer_net *net;
    struct coap_client_xfer *st;

    if (!ce)
        return;
    net = coap_client_net(ce);
    ce->in_io++; /* ends below are reaped once, after the walk */
    for (st = ce->list; st; st = st->next) {
        if (st->ended)
            continue;
        if (!net->up)
            coap_client_end(st, XFER_E_NO_NETWORK, 0);
        else if (st->held && !net->stall)
            coap_client_next(st);
    }
    ce->in_io--;
    coap_client_arm(ce);
}

/* backend.env_free: the context goes with its sockets; a lookup glibc still owns is waited for
 * here (teardown only, the one place this file may wait). */
static void coap_client_env_free(struct xfer_env *env)
{
    struct coap_client_env *ce = env->coap;

    if (!ce)
        return;
    /* Transfers left behind (the contract says none): release them quietly. */
    while (ce->list) {
        struct coap_client_xfer *st = ce->list;
        ce->list = st->next;
        if (st->x)
            st->x->be_state = NULL;
        coap_client_release(st);
        free(st);
    }
    ev_io_stop(env->loop, &ce->io);
    ev_timer_stop(env->loop, &ce->timer);
    coap_client_free_orphans(ce, true);
    coap_free_context(ce->ctx);
    free(ce);
    env->coap = NULL;
}

const struct xfer_backend xfer_coap_backend = {
    .name = "coap",
    .schemes = coap_client_schemes,
    .start = coap_client_start,
    .cancel = coap_client_cancel,
    .env_changed = coap_client_env_changed,
    .env_free = coap_client_env_free,
};
