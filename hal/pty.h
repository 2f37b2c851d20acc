/*
 * A serial port of the module as a host sees it: one Linux PTY in raw mode, with an optional
 * stable symlink. The emulator keeps its own slave fd open, so a host may close and reopen the
 * port at will (no HUP/EIO busy loop), and watches the slave node with inotify to know whether
 * a host holds it: output written while nobody listens is dropped, never delivered stale.
 * A port may pace its output at a baud rate (pty_set_baud), as a UART's transmitter does.
 */
#ifndef MODTWIN_HAL_PTY_H
#define MODTWIN_HAL_PTY_H

#include <ev.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PTY_OUT_MAX   (4u << 20) /* pending output beyond this is dropped (host not reading) */
#define PTY_PACE_TICK 0.005      /* seconds of wire per paced write (a late timer: what is due) */

typedef void pty_rx_fn(void *ctx, const uint8_t *buf, size_t len);

/* Told of each batch of output as it is handed to the kernel (traces, event streams). */
typedef void pty_tx_fn(void *ctx, const uint8_t *buf, size_t len);

struct pty;

/*
 * The transmit schedule of a wire at `baud` bits per second and 10 bits per byte (start, 8 data,
 * stop): a byte may leave once its last bit has, so after t seconds exactly floor(t * baud / 10)
 * bytes may have left. Time is counted in whole microseconds, which keeps the count exact and
 * the same however often it is asked. Pure arithmetic: the caller gives the time (seconds).
 */
struct pty_pace {
    uint32_t baud; /* 0: not paced */
    int64_t t0;    /* microseconds: when the line started sending after it was idle */
    uint64_t sent; /* bytes that left since t0 (t0 moves on by 10 s per `baud` bytes) */
};

/* Starts a schedule at `now`: the line was idle, its next byte starts then. */
void pty_pace_start(struct pty_pace *pc, uint32_t baud, double now);

/* Bytes that may leave at `now` beyond those already sent; SIZE_MAX when not paced. */
size_t pty_pace_room(const struct pty_pace *pc, double now);

/* Counts n bytes as sent; n must not exceed pty_pace_room(). */
void pty_pace_sent(struct pty_pace *pc, size_t n);

/* The time (seconds) at which n more bytes may have left; only for baud > 0. */
double pty_pace_due(const struct pty_pace *pc, size_t n);

/*
 * One inotify instance for all the PTYs of a process (the kernel allows few instances per user:
 * 128 by default), dispatching open/close events to the port whose slave node they concern.
 */
struct pty_hub {
    struct ev_loop *loop;
    int fd;
    ev_io w;
    ev_prepare flush;   /* writes every port's batched output before the loop sleeps */
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
    struct pty_pace pace; /* output pacing; pace.baud 0: one write per loop turn */
    ev_timer pace_w;      /* paced: the next write */
    bool held;            /* paced: the kernel took less than offered; waiting for the host */
    int clients;          /* host opens of the slave seen through inotify */
    uint64_t dropped;     /* output bytes dropped (no host, or host not reading) */
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

/*
 * Stops the watchers, closes every fd (a host holding the port sees a hang-up) and removes the
 * link. Output still queued, paced or not, is written first for a host that reads.
 */
void pty_close(struct pty *p);

/*
 * Queues bytes for the host. Dropped (and counted) while no host has the port open. Unpaced
 * output is batched: everything queued during one loop turn goes out in one write before the
 * loop sleeps. Paced output leaves at the baud rate, in order; its queue grows as needed and is
 * dropped from only when the host has stopped reading (the kernel refuses bytes) and it holds
 * PTY_OUT_MAX. on_tx is told of bytes as they are handed to the kernel.
 */
void pty_write(struct pty *p, const void *buf, size_t len);

/*
 * Paces the output at `baud` bits per second (10 bits per byte), in real time like a wire;
 * 0 turns pacing off (what is queued then goes out before the loop sleeps). A new rate applies
 * to bytes that have not left yet. Setting the current rate again changes nothing.
 */
void pty_set_baud(struct pty *p, uint32_t baud);

/*
 * Paced ports: writes what the schedule lets leave by `now` (seconds on the loop's clock) and
 * arms the timer for the next bytes. The port's timer calls it with ev_now(); tests call it
 * with a clock of their own. Does nothing on an unpaced port.
 */
void pty_send_paced(struct pty *p, double now);

/*
 * Drops the output not yet handed to the kernel, as a UART's transmit buffer loses it when the
 * power goes. Bytes already written stay on the host's side.
 */
void pty_discard(struct pty *p);

/* Stops (true) or resumes reading what the host writes: its writes block once the PTY's buffer
 * is full, which is how RTS/CTS holds a sender. */
void pty_pause(struct pty *p, bool stop);

/* True while at least one host process has the slave open. */
bool pty_connected(const struct pty *p);

#endif
