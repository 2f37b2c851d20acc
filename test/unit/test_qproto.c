/*
 * test_qproto.c: unit tests of the protocol download mode (firmware/qproto.c) and of
 * `modtwin fota-send` (tools/fota_send.c). A sender and a receiver run against each other
 * through an in-memory channel that drops, corrupts, shortens and pads frames as each
 * table row says (or at random with a fixed seed); time passes only when nothing moves, as a
 * call to the sender's time-out. Every case checks what the receiver stored, byte for byte, and
 * that data() saw strictly contiguous offsets. The tool runs in a child process on a real PTY.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "firmware/qproto.h"
#include "tools/fota_send.h"

/* ---- an in-memory link with faults ---------------------------------------------------------- */

enum dir { H2M, M2H }; /* host to module, module to host */

enum fault_kind {
    FK_NONE,
    FK_DROP,      /* the frame never arrives */
    FK_FLIP,      /* byte `at` is inverted */
    FK_LOSE_BYTE, /* byte `at` is lost */
    FK_GARBAGE,   /* AT text and noise (with zeros) arrive before the frame */
    FK_HEAD_LOST, /* the first `at` bytes are lost (the module was not listening yet) */
    FK_DROP_FROM, /* this frame and every later one in this direction are lost */
};

struct fault {
    enum dir dir;
    unsigned frame; /* index among the frames sent in that direction, retransmissions too */
    enum fault_kind kind;
    size_t at;
};

#define MAX_FAULTS 4

struct tcase {
    const char *name;
    size_t size;     /* bytes of the host's package */
    size_t rx_total; /* what the module expects; 0 = size */
    size_t chunk;    /* sender's payload per frame; 0 = the default */
    size_t feed;     /* bytes per rx / tx feed; 0 = all at once */
    struct fault faults[MAX_FAULTS];
    unsigned random_pm; /* per mille of frames hit by a random fault; 0 = none */
    uint32_t seed;
    uint64_t fail_at; /* data() fails once it would store past this offset; 0 = never */
    int fail_err;
    uint64_t abort_at;         /* the host aborts once this many bytes are acknowledged; 0 = no */
    unsigned rx_timeout_after; /* the module's silence timer fires after this many host time-outs */
    int want_rx;
    int want_tx;
    unsigned want_reason; /* the module's ABORT reason the host saw */
    long want_stored;     /* -1: the receiver's got, whatever it is; else exactly */
    int want_timeouts;    /* -1: any */
};

struct chan {
    uint8_t *buf;
    size_t len, cap;
    unsigned frames;
    bool dead; /* FK_DROP_FROM hit */
};

struct rig {
    const struct tcase *c;
    uint8_t *pkg;
    uint8_t *store;
    size_t store_cap;
    uint64_t stored;
    unsigned data_calls;
    struct chan ch[2];
    uint32_t rng;
    unsigned timeouts;
    unsigned data0_sent; /* DATA frames at offset 0 the host sent */
    uint8_t last_h2m_type;
    struct qproto_rx rx;
    struct qproto_tx tx;
};

static uint32_t rig_rand(struct rig *r)
{
    /* xorshift32: fixed seed, same faults on every run */
    r->rng ^= r->rng << 13;
    r->rng ^= r->rng >> 17;
    r->rng ^= r->rng << 5;
    return r->rng;
}

static void chan_append(struct chan *ch, const uint8_t *buf, size_t len)
{
    if (ch->len + len > ch->cap) {
        ch->cap = (ch->len + len) * 2;
        ch->buf = realloc(ch->buf, ch->cap);
        assert_non_null(ch->buf);
    }
    memcpy(ch->buf + ch->len, buf, len);
    ch->len += len;
}

static const char garbage_text[] =
    "AT+QFOTADL=\"FILE:3000\",2\r\r\n010003\r\n+QIND: \"FOTA\",\"X\"\r\n";

/* One frame enters the link in direction d; the case's faults decide what arrives. */
static void chan_put(struct rig *r, enum dir d, const uint8_t *buf, size_t len)
{
    struct chan *ch = &r->ch[d];
    unsigned idx = ch->frames++;
    enum fault_kind kind = FK_NONE;
    size_t at = 0;
    uint8_t copy[QPROTO_WIRE_MAX + 64];

    assert_true(len <= QPROTO_WIRE_MAX && len >= QPROTO_WIRE_MIN);
    for (int i = 0; i < MAX_FAULTS; i++) {
        const struct fault *f = &r->c->faults[i];

        if (f->kind != FK_NONE && f->dir == d && f->frame == idx) {
            kind = f->kind;
            at = f->at;
        }
    }
    if (kind == FK_NONE && r->c->random_pm && rig_rand(r) % 1000 < r->c->random_pm) {
        kind = (enum fault_kind)(FK_DROP + rig_rand(r) % 5);
        at = rig_rand(r) % len;
    }
    if (kind == FK_DROP_FROM)
        ch->dead = true;
    if (ch->dead || kind == FK_DROP)
        return;
    memcpy(copy, buf, len);
    switch (kind) {
    case FK_FLIP:
        copy[at % len] ^= 0xFF;
        break;
    case FK_LOSE_BYTE:
        memmove(copy + at % len, copy + at % len + 1, len - at % len - 1);
        len--;
        break;
    case FK_GARBAGE: {
        uint8_t noise[40];

        for (size_t i = 0; i < sizeof(noise); i++)
            noise[i] = (uint8_t)(i % 7 == 3 ? 0 : rig_rand(r));
        chan_append(ch, (const uint8_t *)garbage_text, sizeof(garbage_text) - 1);
        chan_append(ch, noise, sizeof(noise));
        break;
    }
    case FK_HEAD_LOST:
        at %= len;
        memmove(copy, copy + at, len - at);
        len -= at;
        break;
    default:
        break;
    }
    chan_append(ch, copy, len);
}

/* ---- the module's and the host's callbacks -------------------------------------------------- */

static int rig_data(void *ctx, uint64_t off, const uint8_t *buf, size_t len)
{
    struct rig *r = ctx;

    /* The module's storage contract: in order, from 0, never a byte twice. */
    assert_int_equal(off, r->stored);
    assert_true(len > 0 && len <= QPROTO_MAX_PAYLOAD);
    if (r->c->fail_at && off + len > r->c->fail_at)
        return r->c->fail_err;
    assert_true(off + len <= r->store_cap);
    memcpy(r->store + off, buf, len);
    r->stored += len;
    r->data_calls++;
    return 0;
}

static void rig_reply(void *ctx, const uint8_t *buf, size_t len)
{
    chan_put(ctx, M2H, buf, len);
}

static int rig_read(void *ctx, uint64_t off, uint8_t *buf, size_t len)
{
    struct rig *r = ctx;

    assert_true(off + len <= r->c->size);
    memcpy(buf, r->pkg + off, len);
    return 0;
}

/* Decodes one whole frame as it was handed to the link (the tests' view of the wire). */
static bool decode_one(const uint8_t *buf, size_t len, struct qproto_frame *f,
                       struct qproto_parser *p)
{
    size_t used;

    qproto_parser_reset(p);
    return qproto_parse(p, buf, len, &used, f) == QPROTO_P_FRAME && used == len;
}

static int rig_send(void *ctx, const uint8_t *buf, size_t len)
{
    struct rig *r = ctx;
    struct qproto_parser p;
    struct qproto_frame f;

    assert_true(decode_one(buf, len, &f, &p));
    r->last_h2m_type = f.type;
    if (f.type == QPROTO_DATA && f.off == 0)
        r->data0_sent++;
    chan_put(r, H2M, buf, len);
    return 0;
}

static const struct qproto_rx_ops rig_rx_ops = {.data = rig_data, .reply = rig_reply};
static const struct qproto_tx_ops rig_tx_ops = {.read = rig_read, .send = rig_send};

/* Moves what one direction holds to its far end, in the case's feed size (or random sizes). */
static void rig_deliver(struct rig *r, enum dir d)
{
    struct chan *ch = &r->ch[d];
    uint8_t *buf = ch->buf;
    size_t len = ch->len, i = 0;

    /* Feeding makes the far end answer into the other direction; this one starts afresh. */
    ch->buf = NULL;
    ch->len = ch->cap = 0;
    while (i < len) {
        size_t n = r->c->feed ? r->c->feed : len - i;

        if (r->c->random_pm)
            n = 1 + rig_rand(r) % 1500;
        if (n > len - i)
            n = len - i;
        if (d == H2M)
            (void)qproto_rx_feed(&r->rx, buf + i, n);
        else
            (void)qproto_tx_feed(&r->tx, buf + i, n);
        i += n;
    }
    free(buf);
}

static void rig_run(struct rig *r)
{
    const struct tcase *c = r->c;

    qproto_tx_pump(&r->tx);
    for (unsigned step = 0; step < 100000; step++) {
        if (c->abort_at && qproto_tx_result(&r->tx) == QPROTO_MORE &&
            qproto_tx_acked(&r->tx) >= c->abort_at)
            qproto_tx_abort(&r->tx);
        if (r->ch[H2M].len) {
            rig_deliver(r, H2M);
            continue;
        }
        if (r->ch[M2H].len) {
            rig_deliver(r, M2H);
            continue;
        }
        if (qproto_tx_result(&r->tx) != QPROTO_MORE)
            return;
        /* Nothing moves: time passes. */
        if (c->rx_timeout_after && r->timeouts == c->rx_timeout_after)
            qproto_rx_timeout(&r->rx);
        else {
            r->timeouts++;
            qproto_tx_timeout(&r->tx);
        }
    }
    fail_msg("%s: the session never ended", c->name);
}

static void rig_check(const struct tcase *c)
{
    struct rig r = {.c = c, .rng = c->seed ? c->seed : 1};
    size_t rx_total = c->rx_total ? c->rx_total : c->size;

    r.pkg = malloc(c->size + 1);
    r.store_cap = rx_total > c->size ? rx_total : c->size;
    r.store = malloc(r.store_cap + 1);
    assert_non_null(r.pkg);
    assert_non_null(r.store);
    /* Zeros and 0xFF runs among the bytes: what COBS has to stuff. */
    for (size_t i = 0; i < c->size; i++)
        r.pkg[i] = (uint8_t)(i % 300 < 20 ? 0 : i % 300 < 40 ? 0xFF : (i * 131 + 7) >> 3);
    qproto_rx_init(&r.rx, rx_total, &rig_rx_ops, &r);
    qproto_tx_init(&r.tx, c->size, c->chunk, &rig_tx_ops, &r);
    rig_run(&r);

    if (qproto_rx_result(&r.rx) != c->want_rx || qproto_tx_result(&r.tx) != c->want_tx)
        fail_msg("%s: rx %d (want %d), tx %d (want %d), stored %llu, timeouts %u", c->name,
                 qproto_rx_result(&r.rx), c->want_rx, qproto_tx_result(&r.tx), c->want_tx,
                 (unsigned long long)r.stored, r.timeouts);
    assert_int_equal(qproto_tx_peer_reason(&r.tx), c->want_reason);
    assert_int_equal(qproto_rx_got(&r.rx), r.stored);
    if (c->want_stored >= 0)
        assert_int_equal(r.stored, (uint64_t)c->want_stored);
    assert_memory_equal(r.store, r.pkg, r.stored < c->size ? r.stored : c->size);
    if (c->want_rx == QPROTO_DONE) {
        assert_int_equal(r.stored, c->size);
        assert_int_equal(qproto_tx_acked(&r.tx), c->size);
    }
    if (c->want_timeouts >= 0 && r.timeouts != (unsigned)c->want_timeouts)
        fail_msg("%s: %u time-outs, want %d", c->name, r.timeouts, c->want_timeouts);
    free(r.pkg);
    free(r.store);
    free(r.ch[0].buf);
    free(r.ch[1].buf);
}

#define OK_ROW .want_rx = QPROTO_DONE, .want_tx = QPROTO_DONE, .want_stored = -1

static const struct tcase cases[] = {
    {"clean 0 bytes", 0, .want_timeouts = 0, OK_ROW},
    {"clean 1 byte", 1, .want_timeouts = 0, OK_ROW},
    {"clean 1024 bytes (one full frame)", 1024, .want_timeouts = 0, OK_ROW},
    {"clean 1025 bytes (two frames)", 1025, .want_timeouts = 0, OK_ROW},
    {"clean 100 KiB", 100 << 10, .want_timeouts = 0, OK_ROW},
    {"clean 100 KiB, small frames", 100 << 10, .chunk = 100, .want_timeouts = 0, OK_ROW},
    {"every frame split into 1-byte feeds", 20000, .feed = 1, .want_timeouts = 0, OK_ROW},
    {"first DATA lost: the next one's NAK brings it back", 3000, .faults = {{H2M, 0, FK_DROP, 0}},
     .want_timeouts = 0, OK_ROW},
    {"a middle DATA lost", 5000, .faults = {{H2M, 2, FK_DROP, 0}}, .want_timeouts = 0, OK_ROW},
    {"the last DATA lost: END's NAK brings it back", 2000, .faults = {{H2M, 1, FK_DROP, 0}},
     .want_timeouts = 0, OK_ROW},
    {"END lost: the host times out and sends it again", 2000, .faults = {{H2M, 2, FK_DROP, 0}},
     .want_timeouts = 1, OK_ROW},
    {"ACKs lost mid-stream: the duplicates are not stored again", 5000,
     .faults = {{M2H, 0, FK_DROP, 0}, {M2H, 1, FK_DROP, 0}}, .want_timeouts = 1, OK_ROW},
    {"the final ACKs lost: DATA and END again after DONE", 1024,
     .faults = {{M2H, 0, FK_DROP, 0}, {M2H, 1, FK_DROP, 0}}, .want_timeouts = 1, OK_ROW},
    {"corrupted byte in a header", 3000, .faults = {{H2M, 0, FK_FLIP, 4}}, .want_timeouts = 0,
     OK_ROW},
    {"corrupted byte in a payload", 3000, .faults = {{H2M, 1, FK_FLIP, 600}}, .want_timeouts = 0,
     OK_ROW},
    {"corrupted CRC", 3000, .faults = {{H2M, 0, FK_FLIP, 1045}}, .want_timeouts = 0, OK_ROW},
    {"a byte lost inside a frame", 3000, .faults = {{H2M, 0, FK_LOSE_BYTE, 300}},
     .want_timeouts = 0, OK_ROW},
    {"a corrupted reply", 3000, .faults = {{M2H, 0, FK_FLIP, 7}}, .want_timeouts = -1, OK_ROW},
    {"garbage before a frame", 3000, .faults = {{H2M, 0, FK_GARBAGE, 0}}, .want_timeouts = -1,
     OK_ROW},
    {"garbage before a reply", 3000, .faults = {{M2H, 0, FK_GARBAGE, 0}}, .want_timeouts = 0,
     OK_ROW},
    {"the module missed the start of the first frame", 3000,
     .faults = {{H2M, 0, FK_HEAD_LOST, 100}}, .want_timeouts = 0, OK_ROW},
    {"lossy link, seed 1", 100 << 10, .random_pm = 80, .seed = 1, .want_timeouts = -1, OK_ROW},
    {"lossy link, seed 2, small frames", 30000, .chunk = 300, .random_pm = 120, .seed = 2,
     .want_timeouts = -1, OK_ROW},
    {"lossy link, seed 3, 1-byte feeds", 20000, .feed = 1, .random_pm = 100, .seed = 3,
     .want_timeouts = -1, OK_ROW},
    {"lossy link, seed 4, a third of the frames hit", 50000, .random_pm = 333, .seed = 4,
     .want_timeouts = -1, OK_ROW},
    {"host abort", 10000, .abort_at = 2048, .want_rx = QPROTO_ABORTED, .want_tx = -ECANCELED,
     .want_stored = -1, .want_timeouts = 0},
    {"data() error", 10000, .fail_at = 2048, .fail_err = -ENOSPC, .want_rx = -ENOSPC,
     .want_tx = -ECONNABORTED, .want_reason = QPROTO_R_STORAGE, .want_stored = 2048,
     .want_timeouts = 0},
    {"module time-out", 10000, .faults = {{H2M, 3, FK_DROP_FROM, 0}}, .rx_timeout_after = 3,
     .want_rx = -ETIMEDOUT, .want_tx = -ECONNABORTED, .want_reason = QPROTO_R_TIMEOUT,
     .want_stored = 3072, .want_timeouts = 3},
    {"more bytes than total", 3000, .rx_total = 2000, .want_rx = -EFBIG, .want_tx = -ECONNABORTED,
     .want_reason = QPROTO_R_TOO_LONG, .want_stored = 1024, .want_timeouts = 0},
    {"END short of total", 1500, .rx_total = 2000, .want_rx = -EPROTO, .want_tx = -ECONNABORTED,
     .want_reason = QPROTO_R_LENGTH, .want_stored = 1500, .want_timeouts = 0},
    {"the host gives up after 10 tries", 3000, .faults = {{H2M, 0, FK_DROP_FROM, 0}},
     .want_rx = QPROTO_MORE, .want_tx = -ETIMEDOUT, .want_stored = 0,
     .want_timeouts = QPROTO_TX_TRIES},
};

static void test_transfers(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("  %s\n", cases[i].name);
        rig_check(&cases[i]);
    }
}

/* The give-up path in detail: DATA at 0 went out exactly QPROTO_TX_TRIES times, then ABORT. */
static void test_give_up_counts(void **state)
{
    const struct tcase c = {"give up", 3000, .faults = {{H2M, 0, FK_DROP_FROM, 0}}};
    struct rig r = {.c = &c, .rng = 1};

    (void)state;
    r.pkg = calloc(1, c.size);
    r.store = calloc(1, c.size);
    r.store_cap = c.size;
    qproto_rx_init(&r.rx, c.size, &rig_rx_ops, &r);
    qproto_tx_init(&r.tx, c.size, 0, &rig_tx_ops, &r);
    rig_run(&r);
    assert_int_equal(qproto_tx_result(&r.tx), -ETIMEDOUT);
    assert_int_equal(r.data0_sent, QPROTO_TX_TRIES);
    assert_int_equal(r.last_h2m_type, QPROTO_ABORT);
    /* Over: more time-outs and replies change nothing and send nothing. */
    r.last_h2m_type = 0;
    assert_int_equal(qproto_tx_timeout(&r.tx), -ETIMEDOUT);
    assert_int_equal(qproto_tx_abort(&r.tx), -ETIMEDOUT);
    assert_int_equal(r.last_h2m_type, 0);
    free(r.pkg);
    free(r.store);
    free(r.ch[0].buf);
    free(r.ch[1].buf);
}

/* ---- the codec ------------------------------------------------------------------------------ */

static void test_codec_roundtrip(void **state)
{
    static const uint8_t types[] = {QPROTO_DATA, QPROTO_END, QPROTO_ABORT, QPROTO_ACK, QPROTO_NAK};
    static const uint16_t lens[] = {0, 1, 2, 253, 254, 255, 508, 509, 1000, 1024};
    uint8_t payload[QPROTO_MAX_PAYLOAD], wire[QPROTO_WIRE_MAX];
    struct qproto_parser p;
    struct qproto_frame f, g;

    (void)state;
    for (unsigned pat = 0; pat < 3; pat++) {
        for (size_t i = 0; i < sizeof(payload); i++)
            payload[i] = pat == 0 ? 0 : pat == 1 ? 0xFF : (uint8_t)(i * 37);
        for (size_t t = 0; t < sizeof(types); t++) {
            for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
                size_t n, used, got = 0;

                f = (struct qproto_frame){.type = types[t],
                                          .flags = (uint8_t)pat,
                                          .seq = (uint16_t)(0xFF00 + l),
                                          .off = 0x0102030405060708ull * (pat + 1),
                                          .len = lens[l],
                                          .payload = payload};
                n = qproto_encode(&f, wire, sizeof(wire));
                assert_true(n >= QPROTO_WIRE_MIN && n <= QPROTO_WIRE_MAX);
                assert_int_equal(wire[0], 0);
                assert_int_equal(wire[n - 1], 0);
                assert_null(memchr(wire + 1, 0, n - 2)); /* the only zeros are delimiters */
                /* whole, then one byte at a time */
                qproto_parser_reset(&p);
                assert_int_equal(qproto_parse(&p, wire, n, &used, &g), QPROTO_P_FRAME);
                assert_int_equal(used, n);
                assert_int_equal(g.type, f.type);
                assert_int_equal(g.flags, f.flags);
                assert_int_equal(g.seq, f.seq);
                assert_int_equal(g.off, f.off);
                assert_int_equal(g.len, f.len);
                assert_memory_equal(g.payload, payload, f.len);
                qproto_parser_reset(&p);
                for (size_t i = 0; i < n; i++) {
                    enum qproto_parse_ev ev = qproto_parse(&p, wire + i, 1, &used, &g);

                    assert_int_equal(used, 1);
                    if (ev == QPROTO_P_FRAME)
                        got++;
                    else
                        assert_int_equal(ev, QPROTO_P_NONE);
                }
                assert_int_equal(got, 1);
                assert_int_equal(g.off, f.off);
                assert_memory_equal(g.payload, payload, f.len);
            }
        }
    }
    /* too big a payload, too small a buffer */
    f.len = QPROTO_MAX_PAYLOAD + 1;
    assert_int_equal(qproto_encode(&f, wire, sizeof(wire)), 0);
    f.len = 10;
    assert_int_equal(qproto_encode(&f, wire, 20), 0);
}

/* Noise: short runs vanish, frame-sized junk is reported bad, and the next frame still parses. */
static void test_parser_noise(void **state)
{
    uint8_t junk[3000], wire[QPROTO_WIRE_MAX];
    struct qproto_frame f = {.type = QPROTO_ACK, .seq = 7, .off = 99}, g;
    struct qproto_parser p = {0};
    size_t n = qproto_encode(&f, wire, sizeof(wire)), used;
    const char *text = "\r\nOK\r\n\r\n010003\r\n";

    (void)state;
    assert_int_equal(qproto_parse(&p, (const uint8_t *)text, strlen(text), &used, &g),
                     QPROTO_P_NONE);
    assert_int_equal(qproto_parse(&p, wire, n, &used, &g), QPROTO_P_FRAME);
    assert_int_equal(g.off, 99);
    /* 3000 non-zero bytes: more than any frame; then a delimiter */
    memset(junk, 'x', sizeof(junk));
    assert_int_equal(qproto_parse(&p, junk, sizeof(junk), &used, &g), QPROTO_P_NONE);
    assert_int_equal(used, sizeof(junk));
    assert_int_equal(qproto_parse(&p, wire, n, &used, &g), QPROTO_P_BAD);
    assert_int_equal(used, 1); /* the leading delimiter ended the junk */
    assert_int_equal(qproto_parse(&p, wire + used, n - used, &used, &g), QPROTO_P_FRAME);
    assert_int_equal(g.seq, 7);
    /* 30 junk bytes (frame-sized) glued to a frame's leading delimiter: bad, then the frame */
    qproto_parser_reset(&p);
    assert_int_equal(qproto_parse(&p, junk, 30, &used, &g), QPROTO_P_NONE);
    assert_int_equal(qproto_parse(&p, wire, n, &used, &g), QPROTO_P_BAD);
    assert_int_equal(qproto_parse(&p, wire + 1, n - 1, &used, &g), QPROTO_P_FRAME);
    /* a valid COBS blob with a wrong length field or CRC */
    wire[5] ^= 0x01;
    assert_int_equal(qproto_parse(&p, wire, n, &used, &g), QPROTO_P_BAD);
}

/* ---- each frame type at the receiver -------------------------------------------------------- */

struct capture {
    uint8_t out[4096];
    size_t len;
    uint64_t stored;
    unsigned calls;
    int fail;
};

static int cap_data(void *ctx, uint64_t off, const uint8_t *buf, size_t len)
{
    struct capture *k = ctx;

    (void)buf;
    assert_int_equal(off, k->stored);
    if (k->fail)
        return k->fail;
    k->stored += len;
    k->calls++;
    return 0;
}

static void cap_reply(void *ctx, const uint8_t *buf, size_t len)
{
    struct capture *k = ctx;

    assert_true(k->len + len <= sizeof(k->out));
    memcpy(k->out + k->len, buf, len);
    k->len += len;
}

static const struct qproto_rx_ops cap_ops = {.data = cap_data, .reply = cap_reply};

/* Feeds one frame; returns the result and decodes the single reply into *reply (type 0: none). */
static int rx_one(struct qproto_rx *rx, struct capture *k, uint8_t type, uint16_t seq, uint64_t off,
                  uint16_t len, struct qproto_frame *reply)
{
    static const uint8_t payload[QPROTO_MAX_PAYLOAD];
    struct qproto_frame f = {.type = type, .seq = seq, .off = off, .len = len, .payload = payload};
    uint8_t wire[QPROTO_WIRE_MAX];
    struct qproto_parser p;
    size_t n = qproto_encode(&f, wire, sizeof(wire));
    int rc;

    k->len = 0;
    rc = qproto_rx_feed(rx, wire, n);
    memset(reply, 0, sizeof(*reply));
    if (k->len)
        assert_true(decode_one(k->out, k->len, reply, &p));
    return rc;
}

struct rx_row {
    const char *name;
    uint8_t type;
    uint64_t off;
    uint16_t len;
    int want_rc;
    uint8_t want_type; /* 0: no reply */
    uint8_t want_flags;
    uint64_t want_off;
};

/* A receiver expecting 4096 bytes that already holds 1024 (so "behind" and "ahead" both exist). */
static const struct rx_row rx_rows[] = {
    {"DATA in order", QPROTO_DATA, 1024, 100, QPROTO_MORE, QPROTO_ACK, 0, 1124},
    {"DATA duplicate", QPROTO_DATA, 0, 1024, QPROTO_MORE, QPROTO_ACK, 0, 1024},
    {"DATA overlapping the end", QPROTO_DATA, 1000, 100, QPROTO_MORE, QPROTO_ACK, 0, 1100},
    {"DATA after a gap", QPROTO_DATA, 2048, 100, QPROTO_MORE, QPROTO_NAK, 0, 1024},
    {"DATA empty", QPROTO_DATA, 1024, 0, QPROTO_MORE, QPROTO_NAK, 0, 1024},
    {"DATA past total", QPROTO_DATA, 4000, 100, -EFBIG, QPROTO_ABORT, 0, QPROTO_R_TOO_LONG},
    {"END early", QPROTO_END, 4096, 0, QPROTO_MORE, QPROTO_NAK, 0, 1024},
    {"END longer", QPROTO_END, 5000, 0, -EFBIG, QPROTO_ABORT, 0, QPROTO_R_TOO_LONG},
    {"END shorter", QPROTO_END, 1024, 0, -EPROTO, QPROTO_ABORT, 0, QPROTO_R_LENGTH},
    {"ABORT", QPROTO_ABORT, QPROTO_R_CANCEL, 0, QPROTO_ABORTED, QPROTO_ACK, 0, 1024},
    {"ACK (an echo)", QPROTO_ACK, 1024, 0, QPROTO_MORE, 0, 0, 0},
    {"NAK (an echo)", QPROTO_NAK, 0, 0, QPROTO_MORE, 0, 0, 0},
    {"unknown type", 'Z', 0, 0, QPROTO_MORE, QPROTO_NAK, 0, 1024},
};

static void test_rx_frame_types(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rx_rows) / sizeof(rx_rows[0]); i++) {
        const struct rx_row *w = &rx_rows[i];
        struct capture k = {0};
        struct qproto_rx rx;
        struct qproto_frame reply;

        print_message("  %s\n", w->name);
        qproto_rx_init(&rx, 4096, &cap_ops, &k);
        assert_int_equal(rx_one(&rx, &k, QPROTO_DATA, 1, 0, 1024, &reply), QPROTO_MORE);
        assert_int_equal(reply.type, QPROTO_ACK);
        assert_int_equal(reply.seq, 1);
        assert_int_equal(rx_one(&rx, &k, w->type, 0x1234, w->off, w->len, &reply), w->want_rc);
        assert_int_equal(qproto_rx_result(&rx), w->want_rc);
        assert_int_equal(reply.type, w->want_type);
        if (w->want_type) {
            assert_int_equal(reply.seq, 0x1234); /* replies echo the seq they answer */
            assert_int_equal(reply.flags, w->want_flags);
            assert_int_equal(reply.off, w->want_off);
        }
        assert_int_equal(qproto_rx_got(&rx), k.stored);
    }
}

/* END of a complete package: ACK with FIN; after DONE only a repeated END or DATA is answered. */
static void test_rx_done_and_linger(void **state)
{
    struct capture k = {0};
    struct qproto_rx rx;
    struct qproto_frame reply;
    uint8_t noise[64];

    (void)state;
    qproto_rx_init(&rx, 1500, &cap_ops, &k);
    assert_int_equal(rx_one(&rx, &k, QPROTO_DATA, 1, 0, 1024, &reply), QPROTO_MORE);
    assert_int_equal(rx_one(&rx, &k, QPROTO_DATA, 2, 1024, 476, &reply), QPROTO_MORE);
    assert_int_equal(rx_one(&rx, &k, QPROTO_END, 3, 1500, 0, &reply), QPROTO_DONE);
    assert_int_equal(reply.type, QPROTO_ACK);
    assert_int_equal(reply.flags, QPROTO_F_FIN);
    assert_int_equal(reply.off, 1500);
    assert_int_equal(rx_one(&rx, &k, QPROTO_END, 4, 1500, 0, &reply), QPROTO_DONE);
    assert_int_equal(reply.flags, QPROTO_F_FIN);
    assert_int_equal(reply.seq, 4);
    /* a DATA again (the host went back: it lost the FIN): the FIN again, nothing stored */
    assert_int_equal(rx_one(&rx, &k, QPROTO_DATA, 5, 1024, 476, &reply), QPROTO_DONE);
    assert_int_equal(reply.type, QPROTO_ACK);
    assert_int_equal(reply.flags, QPROTO_F_FIN);
    assert_int_equal(reply.seq, 5);
    /* a DATA past total, a wrong END, an ABORT, noise: no reply, nothing stored */
    assert_int_equal(rx_one(&rx, &k, QPROTO_DATA, 6, 1400, 476, &reply), QPROTO_DONE);
    assert_int_equal(reply.type, 0);
    assert_int_equal(rx_one(&rx, &k, QPROTO_END, 7, 1400, 0, &reply), QPROTO_DONE);
    assert_int_equal(reply.type, 0);
    assert_int_equal(rx_one(&rx, &k, QPROTO_ABORT, 8, QPROTO_R_CANCEL, 0, &reply), QPROTO_DONE);
    assert_int_equal(reply.type, 0);
    memset(noise, 'n', sizeof(noise));
    noise[63] = 0;
    k.len = 0;
    assert_int_equal(qproto_rx_feed(&rx, noise, sizeof(noise)), QPROTO_DONE);
    assert_int_equal(k.len, 0);
    assert_int_equal(k.calls, 2);
    assert_int_equal(k.stored, 1500);
    qproto_rx_timeout(&rx); /* a late timer after DONE changes nothing */
    assert_int_equal(qproto_rx_result(&rx), QPROTO_DONE);
}

/* The silence time-out: ABORT(TIMEOUT) once, then -ETIMEDOUT from feed and result; nothing is
 * stored after it, and every later frame gets the ABORT again (the first may be lost). */
static void test_rx_timeout(void **state)
{
    struct capture k = {0};
    struct qproto_rx rx;
    struct qproto_frame reply;
    struct qproto_parser p;

    (void)state;
    qproto_rx_init(&rx, 4096, &cap_ops, &k);
    assert_int_equal(rx_one(&rx, &k, QPROTO_DATA, 9, 0, 1024, &reply), QPROTO_MORE);
    assert_int_equal(qproto_rx_frames(&rx), 1);
    k.len = 0;
    qproto_rx_timeout(&rx);
    assert_true(decode_one(k.out, k.len, &reply, &p));
    assert_int_equal(reply.type, QPROTO_ABORT);
    assert_int_equal(reply.off, QPROTO_R_TIMEOUT);
    assert_int_equal(qproto_rx_result(&rx), -ETIMEDOUT);
    k.len = 0;
    qproto_rx_timeout(&rx); /* a second firing sends nothing */
    assert_int_equal(k.len, 0);
    assert_int_equal(rx_one(&rx, &k, QPROTO_DATA, 10, 1024, 1024, &reply), -ETIMEDOUT);
    assert_int_equal(reply.type, QPROTO_ABORT);
    assert_int_equal(reply.off, QPROTO_R_TIMEOUT);
    assert_int_equal(reply.seq, 10);
    assert_int_equal(rx_one(&rx, &k, QPROTO_ABORT, 11, QPROTO_R_CANCEL, 0, &reply), -ETIMEDOUT);
    assert_int_equal(reply.type, QPROTO_ACK);
    assert_int_equal(k.stored, 1024);
    assert_int_equal(k.calls, 1);
}

/* A corrupted frame is answered with a NAK at once, carrying the last good frame's seq. */
static void test_rx_bad_frame_nak(void **state)
{
    static const uint8_t payload[100];
    struct qproto_frame f = {.type = QPROTO_DATA,
                             .seq = 3,
                             .off = 0,
                             .len = 100,
                             .payload = payload},
                        reply;
    struct capture k = {0};
    struct qproto_rx rx;
    struct qproto_parser p;
    uint8_t wire[QPROTO_WIRE_MAX];
    size_t n = qproto_encode(&f, wire, sizeof(wire));

    (void)state;
    qproto_rx_init(&rx, 4096, &cap_ops, &k);
    assert_int_equal(qproto_rx_feed(&rx, wire, n), QPROTO_MORE);
    f.seq = 4;
    f.off = 100;
    n = qproto_encode(&f, wire, sizeof(wire));
    wire[50] ^= 0x10;
    k.len = 0;
    assert_int_equal(qproto_rx_feed(&rx, wire, n), QPROTO_MORE);
    assert_true(decode_one(k.out, k.len, &reply, &p));
    assert_int_equal(reply.type, QPROTO_NAK);
    assert_int_equal(reply.off, 100);
    assert_int_equal(reply.seq, 3);
    assert_int_equal(k.stored, 100);
    assert_int_equal(qproto_rx_frames(&rx), 1);
}

/* ---- each reply at the sender --------------------------------------------------------------- */

struct sent {
    struct qproto_frame f[16];
    unsigned n;
};

static int sent_read(void *ctx, uint64_t off, uint8_t *buf, size_t len)
{
    (void)ctx;
    memset(buf, (int)(off & 0xFF), len);
    return 0;
}

static int sent_send(void *ctx, const uint8_t *buf, size_t len)
{
    struct sent *s = ctx;
    struct qproto_parser p;

    assert_true(s->n < 16);
    assert_true(decode_one(buf, len, &s->f[s->n], &p));
    s->f[s->n].payload = NULL; /* points into p */
    s->n++;
    return 0;
}

static const struct qproto_tx_ops sent_ops = {.read = sent_read, .send = sent_send};

static int tx_reply(struct qproto_tx *tx, uint8_t type, uint8_t flags, uint16_t seq, uint64_t off)
{
    struct qproto_frame f = {.type = type, .flags = flags, .seq = seq, .off = off};
    uint8_t wire[QPROTO_WIRE_MAX];

    return qproto_tx_feed(tx, wire, qproto_encode(&f, wire, sizeof(wire)));
}

static void test_tx_replies(void **state)
{
    struct sent s = {0};
    struct qproto_tx tx;

    (void)state;
    /* 5000 bytes: the window lets DATA 0 and 1024 out, no more */
    qproto_tx_init(&tx, 5000, 0, &sent_ops, &s);
    assert_int_equal(qproto_tx_pump(&tx), QPROTO_MORE);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.f[0].type, QPROTO_DATA);
    assert_int_equal(s.f[1].off, 1024);
    assert_int_equal(s.f[1].len, 1024);
    /* an ACK beyond anything sent, or a FIN before the end, is bogus */
    assert_int_equal(tx_reply(&tx, QPROTO_ACK, 0, 0, 4096), QPROTO_MORE);
    assert_int_equal(tx_reply(&tx, QPROTO_ACK, QPROTO_F_FIN, 0, 2048), QPROTO_MORE);
    /* a FIN short of total still acknowledges (ACK semantics) but is not DONE */
    assert_int_equal(qproto_tx_acked(&tx), 2048);
    assert_int_equal(s.n, 4); /* DATA 2048 and 3072 */
    assert_int_equal(s.f[3].off, 3072);
    /* a NAK at 2048 (for seq 3, after the last rewind): go back, send 2048 and 3072 again */
    assert_int_equal(tx_reply(&tx, QPROTO_NAK, 0, 3, 2048), QPROTO_MORE);
    assert_int_equal(s.n, 6);
    assert_int_equal(s.f[4].off, 2048);
    assert_int_equal(s.f[4].seq, 4);
    /* the same NAK again (for seq 3: before the rewind) is stale */
    assert_int_equal(tx_reply(&tx, QPROTO_NAK, 0, 3, 2048), QPROTO_MORE);
    assert_int_equal(s.n, 6);
    /* an old ACK behind acked changes nothing */
    assert_int_equal(tx_reply(&tx, QPROTO_ACK, 0, 1, 1024), QPROTO_MORE);
    assert_int_equal(qproto_tx_acked(&tx), 2048);
    /* everything acknowledged: the last DATA and END go out; END's ACK has FIN */
    assert_int_equal(tx_reply(&tx, QPROTO_ACK, 0, 5, 4096), QPROTO_MORE);
    assert_int_equal(s.n, 8);
    assert_int_equal(s.f[6].off, 4096);
    assert_int_equal(s.f[6].len, 904);
    assert_int_equal(s.f[7].type, QPROTO_END);
    assert_int_equal(s.f[7].off, 5000);
    assert_int_equal(tx_reply(&tx, QPROTO_ACK, 0, 6, 5000), QPROTO_MORE); /* not yet FIN */
    assert_int_equal(tx_reply(&tx, QPROTO_ACK, QPROTO_F_FIN, 7, 5000), QPROTO_DONE);
    assert_int_equal(qproto_tx_replies(&tx), 6); /* the two bogus ACKs are not replies */

    /* the module's ABORT ends the session with its reason */
    memset(&s, 0, sizeof(s));
    qproto_tx_init(&tx, 5000, 0, &sent_ops, &s);
    qproto_tx_pump(&tx);
    assert_int_equal(tx_reply(&tx, QPROTO_ABORT, 0, 0, QPROTO_R_STORAGE), -ECONNABORTED);
    assert_int_equal(qproto_tx_peer_reason(&tx), QPROTO_R_STORAGE);
    assert_string_equal(qproto_reason_str(QPROTO_R_STORAGE), "storage error");
    /* a finished session ignores what comes after */
    assert_int_equal(tx_reply(&tx, QPROTO_ACK, QPROTO_F_FIN, 0, 5000), -ECONNABORTED);
}

/* ---- modtwin fota-send on a PTY ------------------------------------------------------------- */

struct pty_run {
    int master;
    pid_t pid;
    char cmd[128];
    size_t cmd_len;
};

/* Starts `modtwin fota-send ARGS... SLAVE FILE` in a child with a PTY pair between us. */
static void pty_start(struct pty_run *t, const char *file, const char *extra)
{
    char slave[64];

    memset(t, 0, sizeof(*t));
    t->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    assert_true(t->master >= 0);
    assert_int_equal(grantpt(t->master), 0);
    assert_int_equal(unlockpt(t->master), 0);
    assert_int_equal(ptsname_r(t->master, slave, sizeof(slave)), 0);
    fflush(NULL);
    t->pid = fork();
    assert_true(t->pid >= 0);
    if (t->pid == 0) {
        char *argv[] = {"fota-send", (char *)extra, slave, (char *)file, NULL};

        if (!extra) {
            argv[1] = slave;
            argv[2] = (char *)file;
            argv[3] = NULL;
        }
        close(t->master);
        _exit(fota_send_main(extra ? 4 : 3, argv));
    }
}

/* Reads the AT command the tool sends (up to its \r). */
static void pty_read_cmd(struct pty_run *t)
{
    while (!memchr(t->cmd, '\r', t->cmd_len)) {
        struct pollfd pfd = {.fd = t->master, .events = POLLIN};
        ssize_t n;

        assert_true(poll(&pfd, 1, 10000) == 1);
        n = read(t->master, t->cmd + t->cmd_len, sizeof(t->cmd) - 1 - t->cmd_len);
        assert_true(n > 0);
        t->cmd_len += (size_t)n;
    }
    t->cmd[t->cmd_len] = '\0';
}

static int pty_exit_code(struct pty_run *t)
{
    int st;

    assert_int_equal(waitpid(t->pid, &st, 0), t->pid);
    close(t->master);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

struct pty_module {
    int fd;
    uint8_t *store;
    uint64_t stored;
};

static int pty_data(void *ctx, uint64_t off, const uint8_t *buf, size_t len)
{
    struct pty_module *m = ctx;

    assert_int_equal(off, m->stored);
    memcpy(m->store + off, buf, len);
    m->stored += len;
    return 0;
}

static void pty_reply(void *ctx, const uint8_t *buf, size_t len)
{
    struct pty_module *m = ctx;

    assert_int_equal(write(m->fd, buf, len), (ssize_t)len);
}

static const struct qproto_rx_ops pty_ops = {.data = pty_data, .reply = pty_reply};

static void test_fota_send_pty(void **state)
{
    char path[] = "/tmp/test_qproto_XXXXXX", want[64];
    size_t size = 50000;
    uint8_t *pkg = malloc(size);
    struct pty_module m = {.store = calloc(1, size)};
    struct pty_run t;
    struct qproto_rx rx;
    bool flipped = false;
    int fd = mkstemp(path);

    (void)state;
    assert_true(fd >= 0 && pkg && m.store);
    for (size_t i = 0; i < size; i++)
        pkg[i] = (uint8_t)(i * 2654435761u >> 13);
    assert_int_equal(write(fd, pkg, size), (ssize_t)size);
    close(fd);

    pty_start(&t, path, NULL);
    pty_read_cmd(&t);
    snprintf(want, sizeof(want), "AT+QFOTADL=\"FILE:%zu\",2\r", size);
    assert_string_equal(t.cmd, want);
    /* echo, a URC, then the answer; the module's first frame byte is corrupted on the way */
    m.fd = t.master;
    {
        const char *ans = "AT+QFOTADL=\"FILE:50000\",2\r\r\n+CREG: 1\r\n\r\n010003\r\n";

        assert_int_equal(write(t.master, ans, strlen(ans)), (ssize_t)strlen(ans));
    }
    qproto_rx_init(&rx, size, &pty_ops, &m);
    /* Until the tool closes its end (EIO on the master); a bound instead of a clock. */
    for (int i = 0; i < 3000; i++) {
        struct pollfd pfd = {.fd = t.master, .events = POLLIN};
        uint8_t buf[4096];
        ssize_t n;

        if (poll(&pfd, 1, 100) == 0)
            continue;
        n = read(t.master, buf, sizeof(buf));
        if (n <= 0)
            break;
        if (!flipped && n > 40) {
            buf[30] ^= 0x40;
            flipped = true;
        }
        qproto_rx_feed(&rx, buf, (size_t)n);
    }
    assert_int_equal(pty_exit_code(&t), 0);
    assert_int_equal(qproto_rx_result(&rx), QPROTO_DONE);
    assert_int_equal(m.stored, size);
    assert_memory_equal(m.store, pkg, size);

    /* an ERROR answer fails the run with exit code 1 */
    pty_start(&t, path, NULL);
    pty_read_cmd(&t);
    snprintf(want, sizeof(want), "AT+QFOTADL=\"FILE:%zu\",2\r", size);
    assert_string_equal(t.cmd, want);
    assert_int_equal(write(t.master, "\r\nERROR\r\n", 9), 9);
    assert_int_equal(pty_exit_code(&t), 1);

    unlink(path);
    free(pkg);
    free(m.store);
}

/* Usage errors are exit code 2 and never touch the port. */
static void test_fota_send_usage(void **state)
{
    char *no_args[] = {"fota-send", NULL};
    char *bad_baud[] = {"fota-send", "--baud", "12345", "/dev/null", "/dev/null", NULL};
    char *bad_opt[] = {"fota-send", "--mode", "1", "/dev/null", "/dev/null", NULL};
    char *not_tty[] = {"fota-send", "/dev/null", "/dev/null", NULL};

    (void)state;
    assert_int_equal(fota_send_main(1, no_args), 2);
    assert_int_equal(fota_send_main(5, bad_baud), 2);
    assert_int_equal(fota_send_main(5, bad_opt), 2); /* no such option */
    /* /dev/null as FILE is not a regular file: a failure, not a usage error */
    assert_int_equal(fota_send_main(3, not_tty), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_roundtrip), cmocka_unit_test(test_parser_noise),
        cmocka_unit_test(test_rx_frame_types),  cmocka_unit_test(test_rx_done_and_linger),
        cmocka_unit_test(test_rx_timeout),      cmocka_unit_test(test_rx_bad_frame_nak),
        cmocka_unit_test(test_tx_replies),      cmocka_unit_test(test_transfers),
        cmocka_unit_test(test_give_up_counts),  cmocka_unit_test(test_fota_send_usage),
        cmocka_unit_test(test_fota_send_pty),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
