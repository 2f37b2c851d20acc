/*
 * The receive side of a module's UART as the firmware sees it: a FIFO the module drains at its
 * own pace. Without flow control a host that sends faster than the module takes bytes overruns
 * the FIFO and bytes are lost, as on a real UART with AT+IFC=0,0; with RTS/CTS (AT+IFC=2,2) the
 * module stops the sender instead (the PTY is no longer read, so the host's writes block). With
 * no rate set bytes pass straight through, as fast as the host writes them. The transmit side
 * (output at the baud rate) is the PTY's: pty_set_baud.
 */
#ifndef MODTWIN_HAL_UART_H
#define MODTWIN_HAL_UART_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UART_FIFO 4096u /* bytes the receiver holds before it overruns (or asserts RTS) */

typedef void uart_deliver_fn(void *ctx, const uint8_t *buf, size_t len);
typedef void uart_throttle_fn(void *ctx, bool stop);

struct uart {
    struct ev_loop *loop;
    uint8_t *buf; /* received, not yet taken by the module */
    size_t len, cap;
    double rate;    /* bytes per second the module takes; 0 = everything at once */
    bool flow;      /* RTS/CTS */
    bool throttled; /* the sender is held */
    double last;    /* ev_now of the last drain */
    double credit;  /* bytes the module may take now */
    uint64_t overrun; /* bytes lost to overruns */
    ev_timer drain;
    uart_deliver_fn *deliver;
    uart_throttle_fn *throttle;
    void *ctx;
};

void uart_init(struct uart *u, struct ev_loop *loop, uart_deliver_fn *deliver,
               uart_throttle_fn *throttle, void *ctx);

/* Drops what the FIFO holds and stops the drain; releases the sender. */
void uart_release(struct uart *u);

/* Sets the module's take rate (bytes/s, 0 = no limit) and whether RTS/CTS is on. */
void uart_config(struct uart *u, double rate, bool flow);

/* Bytes from the wire (the PTY). */
void uart_rx(struct uart *u, const uint8_t *buf, size_t len);

#endif
