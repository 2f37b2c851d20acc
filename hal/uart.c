/*
 * UART receive FIFO. The drain is a real-time timer (the wire is real time, like the sockets of
 * the transfer libraries): every tick the module takes rate * elapsed bytes. Overruns drop the
 * newest bytes, as a hardware FIFO does when it is full. Not here: baud pacing of the output
 * (the PTY's queue does it: pty_set_baud) and parity or framing errors.
 */
#include "hal/uart.h"

#include <stdlib.h>
#include <string.h>

#define UART_TICK 0.005 /* seconds between drains */

static void uart_hold(struct uart *u, bool stop)
{
    if (u->throttled == stop)
        return;
    u->throttled = stop;
    if (u->throttle)
        u->throttle(u->ctx, stop);
}

static void uart_drain_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct uart *u = w->data;
    double now = ev_now(loop);
    size_t take;

    (void)revents;
    if (u->rate > 0) {
        u->credit += (now - u->last) * u->rate;
        /* Idle time does not bank credit beyond one FIFO: a burst after a pause still paces. */
        if (u->credit > UART_FIFO)
            u->credit = UART_FIFO;
        take = u->credit < (double)u->len ? (size_t)u->credit : u->len;
    } else {
        take = u->len;
    }
    u->last = now;
    if (take) {
        /* Copy first: delivering may change the rate, stop this timer or feed more bytes. */
        uint8_t chunk[UART_FIFO];
        size_t n = take > sizeof(chunk) ? sizeof(chunk) : take;
        memcpy(chunk, u->buf, n);
        memmove(u->buf, u->buf + n, u->len - n);
        u->len -= n;
        u->credit -= (double)n;
        u->deliver(u->ctx, chunk, n);
    }
    if (u->len < UART_FIFO / 2)
        uart_hold(u, false);
    if (!u->len && ev_is_active(&u->drain))
        ev_timer_stop(loop, &u->drain);
}

void uart_init(struct uart *u, struct ev_loop *loop, uart_deliver_fn *deliver,
               uart_throttle_fn *throttle, void *ctx)
{
    memset(u, 0, sizeof(*u));
    u->loop = loop;
    u->deliver = deliver;
    u->throttle = throttle;
    u->ctx = ctx;
    ev_timer_init(&u->drain, uart_drain_cb, UART_TICK, UART_TICK);
    u->drain.data = u;
}

void uart_release(struct uart *u)
{
    if (u->loop && ev_is_active(&u->drain))
        ev_timer_stop(u->loop, &u->drain);
    uart_hold(u, false);
    free(u->buf);
    u->buf = NULL;
    u->len = u->cap = 0;
}

void uart_config(struct uart *u, double rate, bool flow)
{
    u->rate = rate > 0 ? rate : 0;
    u->flow = flow;
    u->credit = 0;
    u->last = ev_now(u->loop);
    if (!flow)
        uart_hold(u, false);
}

void uart_rx(struct uart *u, const uint8_t *buf, size_t len)
{
    size_t keep = len;

    if (u->rate <= 0 && !u->len) {
        u->deliver(u->ctx, buf, len);
        return;
    }
    if (!u->flow && u->len + keep > UART_FIFO) {
        keep = u->len < UART_FIFO ? UART_FIFO - u->len : 0;
        u->overrun += len - keep;
    }
    if (u->len + keep > u->cap) {
        size_t cap = u->cap ? u->cap : UART_FIFO;
        uint8_t *n;
        while (cap < u->len + keep)
            cap *= 2;
        n = realloc(u->buf, cap);
        if (!n) {
            u->overrun += keep;
            return;
        }
        u->buf = n;
        u->cap = cap;
    }
    memcpy(u->buf + u->len, buf, keep);
    u->len += keep;
    /* RTS: a full FIFO stops the sender (what was already on the wire is kept). */
    if (u->flow && u->len >= UART_FIFO)
        uart_hold(u, true);
    if (!ev_is_active(&u->drain)) {
        u->last = ev_now(u->loop);
        ev_timer_start(u->loop, &u->drain);
    }
}
