/*
 * Unit tests of the UART receive FIFO on a real libev loop: pass-through without a rate, the
 * module's pace with one, overruns without flow control, backpressure with RTS/CTS.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hal/uart.h"

struct sink {
    uint8_t got[65536];
    size_t len;
    int holds, releases;
};

static void sink_deliver(void *ctx, const uint8_t *buf, size_t len)
{
    struct sink *s = ctx;

    assert_true(s->len + len <= sizeof(s->got));
    memcpy(s->got + s->len, buf, len);
    s->len += len;
}

static void sink_throttle(void *ctx, bool stop)
{
    struct sink *s = ctx;

    if (stop)
        s->holds++;
    else
        s->releases++;
}

/* Runs the loop until the FIFO is empty (or `limit` seconds pass); returns the seconds taken. */
static double run_until_empty(struct ev_loop *loop, struct uart *u, double limit)
{
    double t0 = ev_time();

    while (u->len && ev_time() - t0 < limit)
        ev_run(loop, EVRUN_ONCE);
    return ev_time() - t0;
}

static void fill(uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(i * 7 + 3);
}

static void test_pass_through(void **state)
{
    struct ev_loop *loop = ev_loop_new(0);
    struct sink s = {0};
    struct uart u;
    uint8_t data[100];

    (void)state;
    fill(data, sizeof(data));
    uart_init(&u, loop, sink_deliver, sink_throttle, &s);
    uart_rx(&u, data, sizeof(data));
    assert_int_equal(s.len, sizeof(data)); /* at once, no timer */
    assert_memory_equal(s.got, data, sizeof(data));
    uart_release(&u);
    ev_loop_destroy(loop);
}

static void test_overrun_without_flow_control(void **state)
{
    struct ev_loop *loop = ev_loop_new(0);
    struct sink s = {0};
    struct uart u;
    uint8_t data[10000];
    double took;

    (void)state;
    fill(data, sizeof(data));
    uart_init(&u, loop, sink_deliver, sink_throttle, &s);
    uart_config(&u, 20000, false);
    uart_rx(&u, data, sizeof(data));
    assert_int_equal(u.overrun, sizeof(data) - UART_FIFO);
    took = run_until_empty(loop, &u, 5);
    /* what the FIFO held arrives, in order, at about the module's pace; the rest is lost */
    assert_int_equal(s.len, UART_FIFO);
    assert_memory_equal(s.got, data, UART_FIFO);
    assert_true(took > 0.1);
    assert_int_equal(s.holds, 0);
    uart_release(&u);
    ev_loop_destroy(loop);
}

static void test_backpressure_with_rts_cts(void **state)
{
    struct ev_loop *loop = ev_loop_new(0);
    struct sink s = {0};
    struct uart u;
    uint8_t data[10000];

    (void)state;
    fill(data, sizeof(data));
    uart_init(&u, loop, sink_deliver, sink_throttle, &s);
    uart_config(&u, 50000, true);
    uart_rx(&u, data, sizeof(data));
    assert_int_equal(u.overrun, 0);
    assert_int_equal(s.holds, 1); /* the sender is stopped */
    run_until_empty(loop, &u, 5);
    assert_int_equal(s.len, sizeof(data));
    assert_memory_equal(s.got, data, sizeof(data));
    assert_int_equal(s.releases, 1); /* and let go once the FIFO drained */
    uart_release(&u);
    ev_loop_destroy(loop);
}

static void test_pace(void **state)
{
    struct ev_loop *loop = ev_loop_new(0);
    struct sink s = {0};
    struct uart u;
    uint8_t data[3000];
    double took;

    (void)state;
    fill(data, sizeof(data));
    uart_init(&u, loop, sink_deliver, sink_throttle, &s);
    uart_config(&u, 10000, false); /* 3000 bytes at 10 kB/s: about 0.3 s */
    uart_rx(&u, data, sizeof(data));
    took = run_until_empty(loop, &u, 5);
    assert_int_equal(s.len, sizeof(data));
    assert_true(took > 0.2); /* never faster than the module takes bytes */
    uart_release(&u);
    ev_loop_destroy(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pass_through),
        cmocka_unit_test(test_overrun_without_flow_control),
        cmocka_unit_test(test_backpressure_with_rts_cts),
        cmocka_unit_test(test_pace),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
