/*
 * Unit tests of a port's output pacing: the wire schedule's arithmetic with an injected clock
 * (exactly floor(t * baud / 10) bytes after t seconds, however the time is sliced), and a real
 * PTY driven by that clock (bytes reach the host in order, as many as the schedule allows, and
 * on_tx hears of them as they are written). No sleeps: the clock is the test's.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hal/pty.h"

#define T0 1700000000.0 /* an epoch-sized start: the precision ev_now() really has */

static const uint32_t bauds[] = {4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600};

/* floor(t * baud / 10) for t in microseconds, in integers. */
static uint64_t expect(uint32_t baud, uint64_t t_us)
{
    return t_us * baud / 10000000u;
}

static double at_us(uint64_t t_us)
{
    return T0 + (double)t_us / 1e6;
}

static void test_room_after_t_seconds(void **state)
{
    static const uint64_t times[] = {0,      1,       999,     1041,     1042,     10000,
                                     300000, 1000000, 9999999, 10000000, 12345678, 100000000};

    (void)state;
    for (size_t b = 0; b < sizeof(bauds) / sizeof(bauds[0]); b++) {
        for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
            struct pty_pace pc;
            pty_pace_start(&pc, bauds[b], T0);
            assert_int_equal(pty_pace_room(&pc, at_us(times[i])), expect(bauds[b], times[i]));
        }
    }
    /* one byte at 9600 baud takes 1041.67 us: none at 1041 us, one at 1042 us */
    {
        struct pty_pace pc;
        pty_pace_start(&pc, 9600, T0);
        assert_int_equal(pty_pace_room(&pc, at_us(1041)), 0);
        assert_int_equal(pty_pace_room(&pc, at_us(1042)), 1);
        assert_int_equal(pty_pace_room(&pc, T0 - 1), 0); /* a clock behind the start */
    }
}

/*
 * Sending all the room at irregular instants over 35 s (three 10 s rebases) leaves exactly
 * floor(t * baud / 10) bytes sent at every instant: slicing neither gains nor loses a byte.
 */
static void test_slices_add_up(void **state)
{
    (void)state;
    for (size_t b = 0; b < sizeof(bauds) / sizeof(bauds[0]); b++) {
        struct pty_pace pc;
        uint64_t total = 0, t = 0, step = 37;

        pty_pace_start(&pc, bauds[b], T0);
        while (t < 35000000) {
            size_t n = pty_pace_room(&pc, at_us(t));
            pty_pace_sent(&pc, n);
            total += n;
            assert_int_equal(total, expect(bauds[b], t));
            assert_int_equal(pty_pace_room(&pc, at_us(t)), 0);
            t += step;
            step = step * 7 % 104729 + 1; /* 1 us .. 0.1 s, no pattern */
        }
    }
}

/* A consumer that sends only part of its room keeps the rest for later, none beyond it. */
static void test_partial_sends_keep_the_rest(void **state)
{
    struct pty_pace pc;

    (void)state;
    pty_pace_start(&pc, 9600, T0);
    assert_int_equal(pty_pace_room(&pc, at_us(100000)), 96);
    pty_pace_sent(&pc, 40);
    assert_int_equal(pty_pace_room(&pc, at_us(100000)), 56);
    assert_int_equal(pty_pace_room(&pc, at_us(200000)), 152);
}

/* due(n) is the first microsecond at which n more bytes may have left. */
static void test_due(void **state)
{
    (void)state;
    for (size_t b = 0; b < sizeof(bauds) / sizeof(bauds[0]); b++) {
        struct pty_pace pc;
        pty_pace_start(&pc, bauds[b], T0);
        pty_pace_sent(&pc, pty_pace_room(&pc, at_us(123457)));
        for (size_t n = 1; n < 5000; n = n * 3 + 1) {
            double due = pty_pace_due(&pc, n);
            assert_true(pty_pace_room(&pc, due) >= n);
            assert_true(pty_pace_room(&pc, due - 1e-6) < n);
        }
    }
}

/* AT+IPR mid-stream: a new schedule from the moment of the change, at the new rate. */
static void test_rate_change(void **state)
{
    struct pty_pace pc;

    (void)state;
    pty_pace_start(&pc, 9600, T0);
    pty_pace_sent(&pc, pty_pace_room(&pc, at_us(500000)));
    assert_int_equal(pc.sent, 480);
    pty_pace_start(&pc, 115200, at_us(500000));
    assert_int_equal(pty_pace_room(&pc, at_us(1500000)), 11520);
    pty_pace_start(&pc, 0, at_us(1500000));
    assert_int_equal(pty_pace_room(&pc, at_us(1500000)), SIZE_MAX); /* not paced */
}

/* ---- a real PTY on the test's clock ---------------------------------------------------------- */

struct port {
    struct ev_loop *loop;
    struct pty_hub hub;
    struct pty pty;
    int host;
    uint8_t told[1 << 16]; /* what on_tx heard */
    size_t ntold;
    int tx_calls;
};

static void port_rx(void *ctx, const uint8_t *buf, size_t len)
{
    (void)ctx;
    (void)buf;
    (void)len;
}

static void port_tx(void *ctx, const uint8_t *buf, size_t len)
{
    struct port *t = ctx;

    assert_true(t->ntold + len <= sizeof(t->told));
    memcpy(t->told + t->ntold, buf, len);
    t->ntold += len;
    t->tx_calls++;
}

static void port_open(struct port *t)
{
    memset(t, 0, sizeof(*t));
    t->loop = ev_loop_new(0);
    assert_int_equal(pty_hub_init(&t->hub, t->loop), 0);
    assert_int_equal(pty_open(&t->pty, &t->hub, NULL, port_rx, t), 0);
    t->pty.on_tx = port_tx;
    t->host = open(t->pty.name, O_RDONLY | O_NOCTTY | O_NONBLOCK);
    assert_true(t->host >= 0);
    /* The hub learns of the host through inotify, in a loop turn. */
    for (int i = 0; i < 2000 && !pty_connected(&t->pty); i++) {
        ev_run(t->loop, EVRUN_NOWAIT);
        if (!pty_connected(&t->pty))
            usleep(1000);
    }
    assert_true(pty_connected(&t->pty));
}

static void port_close(struct port *t)
{
    close(t->host);
    pty_close(&t->pty);
    pty_hub_free(&t->hub);
    ev_loop_destroy(t->loop);
}

/* Reads what the host has until `want` bytes are in (the kernel passes them on asynchronously). */
static size_t host_read(struct port *t, uint8_t *buf, size_t have, size_t want)
{
    while (have < want) {
        struct pollfd pfd = {.fd = t->host, .events = POLLIN};
        ssize_t n;
        if (poll(&pfd, 1, 2000) <= 0)
            break;
        n = read(t->host, buf + have, want - have);
        if (n < 0 && errno != EAGAIN)
            break;
        if (n > 0)
            have += (size_t)n;
    }
    return have;
}

static void fill(uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(i * 131 + i / 256);
}

/* The schedule's start (the loop's time of the first write) on the test's clock. */
static double port_start(const struct port *t)
{
    return (double)t->pty.pace.t0 / 1e6;
}

static void test_pty_paced_in_order(void **state)
{
    struct port t;
    uint8_t data[3000], got[3000];
    size_t have = 0;
    double now;

    (void)state;
    fill(data, sizeof(data));
    port_open(&t);
    pty_set_baud(&t.pty, 9600);
    for (size_t off = 0; off < sizeof(data); off += 700)
        pty_write(&t.pty, data + off, sizeof(data) - off < 700 ? sizeof(data) - off : 700);
    now = port_start(&t);
    assert_int_equal(t.pty.out_len, sizeof(data));
    assert_int_equal(t.ntold, 0); /* nothing left yet */
    for (uint64_t us = 0; us <= 3200000; us += 77777) {
        size_t want = expect(9600, us) < sizeof(data) ? expect(9600, us) : sizeof(data);
        pty_send_paced(&t.pty, now + (double)us / 1e6);
        assert_int_equal(t.ntold, want); /* told as written, no sooner */
        assert_int_equal(t.pty.out_len, sizeof(data) - want);
        have = host_read(&t, got, have, want);
        assert_int_equal(have, want);
    }
    assert_int_equal(have, sizeof(data));
    assert_memory_equal(got, data, sizeof(data));
    assert_memory_equal(t.told, data, sizeof(data));
    assert_int_equal(t.pty.dropped, 0);
    port_close(&t);
}

/* Unpaced output is as before: nothing until the loop turn ends, then everything in one write. */
static void test_pty_unpaced_batch(void **state)
{
    struct port t;
    uint8_t data[3000], got[3000];

    (void)state;
    fill(data, sizeof(data));
    port_open(&t);
    for (size_t off = 0; off < sizeof(data); off += 1000)
        pty_write(&t.pty, data + off, 1000);
    pty_send_paced(&t.pty, ev_now(t.loop) + 100); /* no effect on an unpaced port */
    assert_int_equal(t.ntold, 0);
    ev_run(t.loop, EVRUN_NOWAIT);
    assert_int_equal(t.tx_calls, 1);
    assert_int_equal(t.pty.out_len, 0);
    assert_int_equal(host_read(&t, got, 0, sizeof(data)), sizeof(data));
    assert_memory_equal(got, data, sizeof(data));
    port_close(&t);
}

/* A paced backlog beyond PTY_OUT_MAX is kept whole; a cut drops it; the line then starts anew. */
static void test_pty_paced_keeps_then_discards(void **state)
{
    struct port t;
    const size_t big_len = 1 << 20;
    uint8_t *big = malloc(big_len);
    uint8_t got[10];
    double now;

    (void)state;
    assert_non_null(big);
    fill(big, big_len);
    port_open(&t);
    pty_set_baud(&t.pty, 9600);
    for (int i = 0; i < 5; i++)
        pty_write(&t.pty, big, big_len);
    free(big);
    assert_int_equal(t.pty.out_len, 5 * big_len);
    assert_int_equal(t.pty.dropped, 0);
    pty_discard(&t.pty);
    assert_int_equal(t.pty.out_len, 0);
    assert_false(ev_is_active(&t.pty.pace_w));
    pty_write(&t.pty, "after cut!", 10);
    now = port_start(&t);
    pty_send_paced(&t.pty, now + 0.010416); /* 10 bytes take 10416.67 us */
    assert_int_equal(t.ntold, 9);
    pty_send_paced(&t.pty, now + 0.010417);
    assert_int_equal(t.ntold, 10);
    assert_int_equal(host_read(&t, got, 0, sizeof(got)), sizeof(got));
    assert_memory_equal(got, "after cut!", 10);
    port_close(&t);
}

/* Paced output with the loop running: it all arrives, in order, and the timer stops after. */
static void test_pty_paced_on_the_loop(void **state)
{
    struct port t;
    uint8_t data[600], got[600];
    size_t have = 0;

    (void)state;
    fill(data, sizeof(data));
    port_open(&t);
    pty_set_baud(&t.pty, 115200); /* 600 bytes: about 52 ms */
    pty_write(&t.pty, data, sizeof(data));
    for (int i = 0; i < 10000 && t.pty.out_len; i++)
        ev_run(t.loop, EVRUN_ONCE);
    assert_int_equal(t.pty.out_len, 0);
    assert_true(t.tx_calls > 1); /* in several paced writes */
    assert_false(ev_is_active(&t.pty.pace_w));
    have = host_read(&t, got, have, sizeof(got));
    assert_int_equal(have, sizeof(data));
    assert_memory_equal(got, data, sizeof(data));
    port_close(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_room_after_t_seconds),
        cmocka_unit_test(test_slices_add_up),
        cmocka_unit_test(test_partial_sends_keep_the_rest),
        cmocka_unit_test(test_due),
        cmocka_unit_test(test_rate_change),
        cmocka_unit_test(test_pty_paced_in_order),
        cmocka_unit_test(test_pty_unpaced_batch),
        cmocka_unit_test(test_pty_paced_keeps_then_discards),
        cmocka_unit_test(test_pty_paced_on_the_loop),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
