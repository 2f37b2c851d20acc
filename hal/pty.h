/*
 * A serial port of the module as a host sees it: one Linux PTY in raw mode, with an optional
 * stable symlink. The emulator keeps its own slave fd open, so a host may close and reopen the
 * port at will (no HUP/EIO busy loop), and watches the slave node with inotify to know whether
 * a host holds it: output written while nobody listens is dropped, never delivered stale.
 */
#ifndef MODTWIN_HAL_PTY_H
#define MODTWIN_HAL_PTY_H

#include <ev.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PTY_OUT_MAX (4u << 20) /* pending output beyond this is dropped (host not reading) */

typedef void pty_rx_fn(void *ctx, const uint8_t *buf, size_t len);

/* Told of each batch of output as it is handed to the kernel (traces, event streams). */
typedef void pty_tx_fn(void *ctx, const uint8_t *buf, size_t len);

struct pty;

/*
 * One inotify instance for all the PTYs of a process (the kernel allows few instances per user:
 * 128 by default), dispatching open/close events to the port whose slave node they concern.
 */
struct pty_hub {
    struct ev_loop *loop;
    int fd;
    ev_io w;
    ev_prepare flush; /* writes every port's batched output before the loop sleeps */
    struct pty **ports; /* registered ports, any order */
    size_t n, cap;
};

/* 0 or -errno. */
int pty_hub_init(struct pty_hub *h, struct ev_loop *loop);

/* Closes the inotify instance; every port must be closed first. */
void pty_hub_free(struct pty_hub *h);

struct pty {
    struct ev_loop *loop;
    struct pty_hub *hub;
    int master, keeper, watch;
    char name[64];       /* /dev/pts/N */
    char link[PATH_MAX]; /* symlink to name, or "" */
    ev_io rio, wio;
    uint8_t *out; /* pending output, out_len bytes; the first `told` were given to on_tx */
    size_t out_len, out_cap, told;
    int clients; /* host opens of the slave seen through inotify */
    uint64_t dropped; /* output bytes dropped (no host, or host not reading) */
    pty_rx_fn *rx;
    pty_tx_fn *on_tx;
    void *ctx;
};

/*
 * Creates the PTY, sets it raw, points `link` (may be NULL) at it atomically and starts reading.
 * rx(ctx, ...) is called from the loop with every chunk the host writes.
 * Returns 0 or -errno; on failure nothing is left open.
 */
int pty_open(struct pty *p, struct pty_hub *hub, const char *link, pty_rx_fn *rx, void *ctx);

/* Stops the watchers, closes every fd (a host holding the port sees a hang-up) and removes the link. */
void pty_close(struct pty *p);

/*
 * Queues bytes for the host. Dropped (and counted) while no host has the port open. Output is
 * batched: everything queued during one loop turn goes out in one write before the loop sleeps.
 */
void pty_write(struct pty *p, const void *buf, size_t len);

/* Stops (true) or resumes reading what the host writes: its writes block once the PTY's buffer
 * is full, which is how RTS/CTS holds a sender. */
void pty_pause(struct pty *p, bool stop);

/* True while at least one host process has the slave open. */
bool pty_connected(const struct pty *p);

#endif
