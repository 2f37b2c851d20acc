/*
 * What the transfer core (xfer.c) and its backends (xfer_curl.c, coap_client.c) share. Not for
 * the firmware: it uses protocols/xfer.h only. The core owns struct xfer, the sink accounting
 * (resume offset, max size, the world's cut-after), the latency delay and the exactly-once
 * done callback; a backend moves bytes and reports how it ended.
 */
#ifndef MODTWIN_PROTOCOLS_XFER_BACKEND_H
#define MODTWIN_PROTOCOLS_XFER_BACKEND_H

#include "protocols/xfer.h"

struct xfer_backend {
    const char *name;
    const char *const *schemes; /* NULL-terminated, lower case: "http", "https", ... */
    /* Starts moving bytes for x (after the latency delay); 0 or an xfer_err for an immediate
     * failure (the core then reports it through done). */
    int (*start)(struct xfer *x);
    /* Stops x's transfer at once and frees the backend's part; no callback. */
    void (*cancel)(struct xfer *x);
    /* The world's conditions changed: apply them to running transfers (rate, stall). */
    void (*env_changed)(struct xfer_env *env);
    /* Frees the backend's shared state in env (env->curl / env->coap). */
    void (*env_free)(struct xfer_env *env);
};

extern const struct xfer_backend xfer_curl_backend;
extern const struct xfer_backend xfer_coap_backend;

struct xfer {
    struct xfer_env *env;
    const struct xfer_backend *be;
    void *be_state;          /* the backend's per-transfer state */
    struct xfer_opts o;      /* copy; strings below are owned copies */
    char *url, *user, *pass, *ca_file;
    struct xfer_sink sink;
    struct xfer_cb cb;
    uint64_t got;            /* bytes delivered to the sink in this transfer */
    uint64_t total;          /* expected total (resume offset + content length), 0 if unknown */
    bool finished;           /* done was posted */
    enum xfer_err err;
    int detail;
    ev_timer delay;          /* latency before start, and the deferred done */
};

/*
 * A backend hands received bytes over: the core applies max_size (XFER_E_TOO_BIG), the world's
 * cut_after (XFER_E_RESET) and writes to the sink (XFER_E_STORAGE_FULL / XFER_E_STORAGE).
 * Returns XFER_OK, or the class that must end the transfer (the backend then stops and calls
 * xfer_finish with it).
 */
enum xfer_err xfer_deliver(struct xfer *x, const void *buf, size_t len);

/* A backend learned the content length (of what remains to be fetched). */
void xfer_set_length(struct xfer *x, uint64_t remaining);

/*
 * A backend's transfer ended (the backend has released its own resources for x, or will not
 * touch x again). The core commits the sink on success and posts done from a zero timer (never
 * from inside the backend's call stack). Called at most once per transfer.
 */
void xfer_finish(struct xfer *x, enum xfer_err err, int detail);

#endif
