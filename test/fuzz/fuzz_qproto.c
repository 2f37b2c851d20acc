/*
 * fuzz_qproto.c - libFuzzer target for the protocol download mode (firmware/qproto.c).
 *
 * Header (6 bytes): the receiver's total (16 bits), a feed-split seed, a mode byte, and where
 * the module's silence timer fires. Mode bit 0 takes the rest as raw line bytes; otherwise it is
 * a list of records (type, flags, seq, off, len, payload) encoded as valid frames, with noise
 * between them when bit 1 is set, so the fuzzer reaches the state machine and not only the CRC.
 * The same frames (in raw mode, the same bytes) also go to a sender as replies. Every invariant
 * (data() contiguous and within total, nothing stored after the session ends, each reply one
 * valid module frame that tells the truth, sticky results) is checked with __builtin_trap().
 * No main: link with -fsanitize=fuzzer.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "firmware/qproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

struct fz_rx {
    struct qproto_rx rx;
    uint64_t stored;
    bool fail_storage; /* data() fails once stored passes half of total */
};

static int fz_data(void *ctx, uint64_t off, const uint8_t *buf, size_t len)
{
    struct fz_rx *f = ctx;

    FZ_CHECK(qproto_rx_result(&f->rx) == QPROTO_MORE);
    FZ_CHECK(off == f->stored && len > 0 && len <= QPROTO_MAX_PAYLOAD);
    FZ_CHECK(off + len <= f->rx.total);
    FZ_CHECK(buf != NULL);
    if (f->fail_storage && off + len > f->rx.total / 2)
        return -EIO;
    f->stored += len;
    return 0;
}

/* Each reply is one whole frame of the module's kinds, and what it says is true. */
static void fz_reply(void *ctx, const uint8_t *buf, size_t len)
{
    struct fz_rx *f = ctx;
    struct qproto_parser p;
    struct qproto_frame fr;
    size_t used;

    FZ_CHECK(len >= QPROTO_WIRE_MIN && len <= QPROTO_WIRE_MIN);
    qproto_parser_reset(&p);
    FZ_CHECK(qproto_parse(&p, buf, len, &used, &fr) == QPROTO_P_FRAME && used == len);
    FZ_CHECK(fr.len == 0);
    switch (fr.type) {
    case QPROTO_ACK:
        /* the session's own got (data() may not have returned yet for the ACK of a write) */
        FZ_CHECK(fr.off == qproto_rx_got(&f->rx));
        if (fr.flags & QPROTO_F_FIN)
            FZ_CHECK(fr.off == f->rx.total);
        break;
    case QPROTO_NAK:
        FZ_CHECK(fr.flags == 0 && fr.off == qproto_rx_got(&f->rx) && fr.off < f->rx.total + 1);
        break;
    case QPROTO_ABORT:
        FZ_CHECK(fr.off >= QPROTO_R_TIMEOUT && fr.off <= QPROTO_R_LENGTH);
        break;
    default:
        FZ_CHECK(0);
    }
}

static const struct qproto_rx_ops fz_rx_ops = {.data = fz_data, .reply = fz_reply};

struct fz_tx {
    uint64_t total;
    unsigned sends;
};

static int fz_read(void *ctx, uint64_t off, uint8_t *buf, size_t len)
{
    struct fz_tx *t = ctx;

    FZ_CHECK(off + len <= t->total && len <= QPROTO_MAX_PAYLOAD);
    memset(buf, 0xA5, len);
    return 0;
}

static int fz_send(void *ctx, const uint8_t *buf, size_t len)
{
    struct fz_tx *t = ctx;

    FZ_CHECK(buf[0] == 0 && buf[len - 1] == 0 && len <= QPROTO_WIRE_MAX);
    t->sends++;
    return 0;
}

static const struct qproto_tx_ops fz_tx_ops = {.read = fz_read, .send = fz_send};

/* Feeds buf to the receiver in pieces of pseudo-random size; results only ever move on. */
static void fz_feed(struct fz_rx *f, const uint8_t *buf, size_t len, uint32_t *rng,
                    size_t timeout_at, size_t *fed)
{
    while (len) {
        int before = qproto_rx_result(&f->rx), rc;
        size_t n;

        *rng = *rng * 1103515245u + 12345u;
        n = 1 + (*rng >> 16) % 700;
        if (n > len)
            n = len;
        if (*fed <= timeout_at && *fed + n > timeout_at)
            qproto_rx_timeout(&f->rx);
        rc = qproto_rx_feed(&f->rx, buf, n);
        FZ_CHECK(rc == qproto_rx_result(&f->rx));
        FZ_CHECK(before == QPROTO_MORE || rc == before);
        FZ_CHECK(rc == QPROTO_MORE || rc == QPROTO_DONE || rc == QPROTO_ABORTED || rc == -EFBIG ||
                 rc == -EPROTO || rc == -ETIMEDOUT || rc == -EIO);
        FZ_CHECK(qproto_rx_got(&f->rx) == f->stored && f->stored <= f->rx.total);
        if (rc == QPROTO_DONE)
            FZ_CHECK(f->stored == f->rx.total);
        buf += n;
        len -= n;
        *fed += n;
    }
}

/* Records: type, flags, seq (2), off (3, scaled), len (2, mod 1025), payload. */
static void fz_records(struct fz_rx *f, const uint8_t *data, size_t size, bool noise, uint32_t *rng,
                       size_t timeout_at, size_t *fed, uint8_t *all, size_t *all_len)
{
    uint8_t wire[QPROTO_WIRE_MAX];

    while (size >= 8) {
        struct qproto_frame fr = {
            .type = data[0],
            .flags = data[1],
            .seq = (uint16_t)(data[2] | data[3] << 8),
            .off = (uint64_t)(data[4] | data[5] << 8 | data[6] << 16),
        };
        size_t plen = (size_t)(data[7] % 16) * 64 + data[7] / 16; /* 0 .. 975, odd sizes too */
        size_t n;

        /* Offsets near what the receiver holds are the interesting ones. */
        if (fr.type == QPROTO_DATA && (data[6] & 0x80))
            fr.off = qproto_rx_got(&f->rx) - (data[4] % 3 == 0 ? 0 : data[5] % 64);
        if (fr.type == QPROTO_END && (data[6] & 0x80))
            fr.off = f->rx.total;
        if (fr.type == QPROTO_ABORT)
            fr.off &= 7;
        if ((fr.type == QPROTO_ACK || fr.type == QPROTO_NAK) && (data[6] & 0x40))
            fr.off %= f->rx.total + 1; /* offsets a sender of this total may believe */
        data += 8;
        size -= 8;
        if (plen > size)
            plen = size;
        fr.len = (uint16_t)plen;
        fr.payload = data;
        n = qproto_encode(&fr, wire, sizeof(wire));
        FZ_CHECK(n >= QPROTO_WIRE_MIN && n <= QPROTO_WIRE_MAX);
        memcpy(all + *all_len, wire, n); /* the sender gets the same frames as replies */
        *all_len += n;
        fz_feed(f, wire, n, rng, timeout_at, fed);
        if (noise && plen)
            fz_feed(f, data, plen % 40, rng, timeout_at, fed);
        data += plen;
        size -= plen;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_rx f = {0};
    struct fz_tx t = {0};
    struct qproto_tx tx;
    const uint8_t *replies;
    uint8_t *all = NULL;
    size_t replies_len = 0;
    uint32_t rng;
    size_t timeout_at, fed = 0;
    uint64_t total;
    uint8_t mode;
    int rc;

    if (size < 6)
        return 0;
    total = (uint64_t)(data[0] | data[1] << 8);
    rng = data[2];
    mode = data[3];
    timeout_at = (size_t)(data[4] | data[5] << 8);
    if (!(mode & 4))
        timeout_at = SIZE_MAX; /* most runs: no silence */
    f.fail_storage = mode & 8;
    data += 6;
    size -= 6;

    qproto_rx_init(&f.rx, total, &fz_rx_ops, &f);
    if (mode & 1) {
        fz_feed(&f, data, size, &rng, timeout_at, &fed);
        replies = data;
        replies_len = size;
    } else {
        /* a record of 8 + n input bytes encodes to at most 21 + n + n / 254 + 1 */
        all = malloc(3 * size + QPROTO_WIRE_MAX);
        if (!all)
            return 0;
        fz_records(&f, data, size, mode & 2, &rng, timeout_at, &fed, all, &replies_len);
        replies = all;
    }
    /* A late timer, then more bytes: a finished session stores nothing more. */
    qproto_rx_timeout(&f.rx);
    FZ_CHECK(qproto_rx_result(&f.rx) != QPROTO_MORE);
    fz_feed(&f, data, size, &rng, SIZE_MAX, &fed);

    /* The same bytes as a module's replies to a sender. */
    t.total = total;
    qproto_tx_init(&tx, total, 1 + (mode >> 4) * 64, &fz_tx_ops, &t);
    rc = qproto_tx_pump(&tx);
    for (size_t i = 0; i < replies_len && rc == QPROTO_MORE; i += 97) {
        size_t n = replies_len - i < 97 ? replies_len - i : 97;

        rc = qproto_tx_feed(&tx, replies + i, n);
        FZ_CHECK(rc == QPROTO_MORE || rc == QPROTO_DONE || rc == -ECONNABORTED || rc == -ETIMEDOUT);
        FZ_CHECK(qproto_tx_acked(&tx) <= total);
        FZ_CHECK(tx.next <= total && tx.acked <= tx.sent);
        FZ_CHECK(tx.next - tx.acked <= QPROTO_WINDOW + QPROTO_MAX_PAYLOAD);
        if (rc == QPROTO_DONE)
            FZ_CHECK(qproto_tx_acked(&tx) == total);
        if (rc == QPROTO_MORE && (replies[i] & 0x11) == 0x11)
            rc = qproto_tx_timeout(&tx);
    }
    FZ_CHECK(t.sends > 0);
    free(all);
    return 0;
}
