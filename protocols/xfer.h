/*
 * Transfers: a transport-neutral download API for the firmware. A download streams a URL's
 * content into a sink (a UFS file, a flash area) on the module's event loop, never blocking it,
 * and posts milestones to its owner: progress, done, or failed with an error class. Backends:
 * xfer_curl.c (HTTP, HTTPS, FTP, FTPS over libcurl multi-socket on libev), coap_client.c (CoAP
 * block-wise over libcoap). Each vendor family maps the error classes to its documented codes
 * (docs/transfer-errors.md).
 */
#ifndef MODTWIN_PROTOCOLS_XFER_H
#define MODTWIN_PROTOCOLS_XFER_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Error classes: every failure of every transport is exactly one of these. */
enum xfer_err {
    XFER_OK = 0,
    XFER_E_URL,          /* malformed URL, unsupported scheme, field too long */
    XFER_E_NO_NETWORK,   /* not registered, no active context, network outage */
    XFER_E_DNS,          /* the host name does not resolve */
    XFER_E_CONNECT,      /* connection refused or host unreachable */
    XFER_E_TIMEOUT,      /* connect, response or transfer time-out; a stalled transfer */
    XFER_E_RESET,        /* connection reset or closed before the end */
    XFER_E_TLS,          /* TLS handshake or certificate verification failed */
    XFER_E_AUTH,         /* login refused: FTP 530, HTTP 401/403, CoAP 4.01 */
    XFER_E_NOT_FOUND,    /* HTTP 404, FTP 550, CoAP 4.04 */
    XFER_E_SERVER,       /* any other error status: HTTP 4xx/5xx, FTP 4xx/5xx, CoAP 4.xx/5.xx */
    XFER_E_PROTOCOL,     /* a malformed or unexpected response */
    XFER_E_TOO_BIG,      /* the content is larger than the sink may take */
    XFER_E_STORAGE_FULL, /* the sink ran out of room */
    XFER_E_STORAGE,      /* the sink failed otherwise (flash error) */
    XFER_E_ABORTED,      /* cancelled by the owner (power cut, user) */
    XFER_E_INTERNAL,     /* out of memory, library failure */
    XFER_E_COUNT
};

const char *xfer_err_name(enum xfer_err e);

/*
 * Where the bytes go. write gets the next bytes at offset `off` (monotonic, starting at the
 * resume offset); returns 0, -ENOSPC (-> XFER_E_STORAGE_FULL), or another -errno
 * (-> XFER_E_STORAGE). commit is called once at the end with the total size (it may sync a
 * file); 0 or -errno. Both may be called from the loop only.
 */
struct xfer_sink {
    int (*write)(void *ctx, uint64_t off, const void *buf, size_t len);
    int (*commit)(void *ctx, uint64_t total);
    void *ctx;
};

/* Network conditions the world imposes (sim/), read when a download starts and on changes. */
struct xfer_net {
    bool up;                  /* registered with an active context; false -> XFER_E_NO_NETWORK */
    bool dns_fail;            /* every lookup fails -> XFER_E_DNS */
    bool refuse;              /* every connection is refused -> XFER_E_CONNECT */
    bool stall;               /* transfers stop moving (the low-speed limit then fires) */
    uint64_t rate;            /* bytes per second, 0 = unlimited */
    double latency;           /* seconds added before each transfer starts */
    uint64_t cut_after;       /* reset the connection after this many bytes, 0 = never */
};

/* Address map: "HOST:PORT=ADDR:PORT" entries applied to every transport (--map). */
#define XFER_MAP_MAX 16
struct xfer_map {
    unsigned n;
    struct {
        char host[128];
        unsigned port;
        char addr[64];
        unsigned to_port;
    } e[XFER_MAP_MAX];
};

/* Parses one "HOST:PORT=ADDR:PORT" into m; 0, -EINVAL, -E2BIG. */
int xfer_map_add(struct xfer_map *m, const char *spec);

/* Looks host:port up; fills addr/port and returns true when mapped. */
bool xfer_map_lookup(const struct xfer_map *m, const char *host, unsigned port,
                     const char **addr, unsigned *to_port);

/* Per-download settings from the family (the documents' time-outs, credentials, TLS). */
struct xfer_opts {
    const char *url;
    const char *user, *pass;  /* FTP / HTTP credentials when not in the URL, or NULL */
    uint64_t resume_from;     /* Range / REST offset */
    uint64_t max_size;        /* XFER_E_TOO_BIG beyond this; 0 = no limit */
    double connect_timeout;   /* seconds, real time */
    double low_speed_time;    /* abort when under 1 byte/s for this long (a stall) */
    double total_timeout;     /* 0 = none */
    bool verify_peer;         /* TLS certificate check (on by default) */
    const char *ca_file;      /* trust store, or NULL for the system's */
    unsigned coap_block;      /* CoAP block size (16..1024), 0 = 1024 */
};

struct xfer;

/* Milestones. progress: bytes so far and the total if known (0 otherwise). done: err ==
 * XFER_OK on success; detail is the HTTP status / FTP reply code / CoAP code when there was one.
 * The owner may free the xfer from inside done. */
struct xfer_cb {
    void (*progress)(void *ctx, uint64_t got, uint64_t total);
    void (*done)(void *ctx, enum xfer_err err, int detail, uint64_t total);
    void *ctx;
};

/* Shared by all downloads of one module: the loop, the address map, the network conditions. */
struct xfer_env {
    struct ev_loop *loop;
    const struct xfer_map *map;
    const struct xfer_net *net;
    void *curl; /* the backend's shared state (xfer_curl.c), created lazily */
    void *coap; /* (coap_client.c) */
};

/*
 * Starts a download of o->url into sink. Returns a handle, or NULL with *err set (XFER_E_URL for
 * a scheme no backend takes, XFER_E_NO_NETWORK when env->net->up is false, XFER_E_INTERNAL).
 * Every later outcome arrives through cb->done exactly once (never from inside xfer_start).
 */
struct xfer *xfer_start(struct xfer_env *env, const struct xfer_opts *o, const struct xfer_sink *sink,
                        const struct xfer_cb *cb, enum xfer_err *err);

/* Cancels: no callback follows. Safe from inside callbacks. */
void xfer_cancel(struct xfer *x);

/* The world changed (outage, stall, rate): running downloads apply it. */
void xfer_env_changed(struct xfer_env *env);

/* Releases the backends' shared state; all downloads must be finished or cancelled. */
void xfer_env_free(struct xfer_env *env);

#endif
