/*
 * qproto: codec and state machines of the protocol download mode (docs/qfota-protocol.md).
 * Framing is COBS between 0x00 delimiters with a CRC-32 over each decoded frame; the receiver
 * stores strictly in order (a go-back-N window: anything after a gap is refused with a NAK) and
 * the sender keeps at most QPROTO_WINDOW payload bytes unacknowledged. Pure: no I/O, no clock,
 * no globals; time-outs come in as calls (qproto_rx_timeout, qproto_tx_timeout). Not here: the
 * serial port (tools/fota_send.c) and the AT command that enters the mode (the firmware).
 */
#include "firmware/qproto.h"

#include <errno.h>
#include <string.h>

#include <zlib.h>

/* ---- codec ---------------------------------------------------------------------------------- */

static void qproto_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void qproto_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void qproto_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t qproto_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t qproto_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t qproto_get64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/*
 * COBS: each block is a code byte c followed by c - 1 non-zero bytes; a block with c < 0xFF
 * stands for its bytes plus one zero (the last block's zero is implied by the frame's end).
 * out must hold QPROTO_COBS_MAX(n) bytes. Returns the encoded length.
 */
static size_t qproto_cobs(const uint8_t *in, size_t n, uint8_t *out)
{
    size_t o = 1, code_at = 0;
    uint8_t code = 1;

    for (size_t i = 0; i < n; i++) {
        if (in[i] == 0) {
            out[code_at] = code;
            code_at = o++;
            code = 1;
            continue;
        }
        out[o++] = in[i];
        if (++code == 0xFF) {
            out[code_at] = code;
            code_at = o++;
            code = 1;
        }
    }
    out[code_at] = code;
    return o;
}

/* Decodes COBS in place (the output never overtakes the input). 0 or -EBADMSG. */
static int qproto_uncobs(uint8_t *buf, size_t n, size_t *out_len)
{
    size_t i = 0, o = 0;

    while (i < n) {
        uint8_t code = buf[i++];
        size_t k = (size_t)code - 1;

        if (code == 0 || k > n - i)
            return -EBADMSG;
        memmove(buf + o, buf + i, k);
        o += k;
        i += k;
        if (code != 0xFF && i < n)
            buf[o++] = 0;
    }
    *out_len = o;
    return 0;
}

size_t qproto_encode(const struct qproto_frame *f, uint8_t *out, size_t cap)
{
    uint8_t raw[QPROTO_FRAME_MAX];
    size_t n, w;

    if (f->len > QPROTO_MAX_PAYLOAD || cap < QPROTO_COBS_MAX(QPROTO_HDR + f->len + QPROTO_CRC) + 2)
        return 0;
    raw[0] = f->type;
    raw[1] = f->flags;
    qproto_put16(raw + 2, f->seq);
    qproto_put64(raw + 4, f->off);
    qproto_put16(raw + 12, f->len);
    if (f->len)
        memcpy(raw + QPROTO_HDR, f->payload, f->len);
    n = QPROTO_HDR + f->len;
    qproto_put32(raw + n, (uint32_t)crc32(0L, raw, (uInt)n));
    n += QPROTO_CRC;
    /* A leading delimiter too: whatever came before (AT text, a torn frame) ends here. */
    out[0] = 0;
    w = 1 + qproto_cobs(raw, n, out + 1);
    out[w++] = 0;
    return w;
}

void qproto_parser_reset(struct qproto_parser *p)
{
    p->len = 0;
    p->overlong = false;
}

/* The bytes between two delimiters: a frame, a bad frame, or noise too short to matter. */
static enum qproto_parse_ev qproto_blob(struct qproto_parser *p, struct qproto_frame *f)
{
    bool overlong = p->overlong;
    size_t enc = p->len, n;

    qproto_parser_reset(p);
    if (overlong)
        return QPROTO_P_BAD;
    /* Shorter than the smallest frame: blank lines, "OK", the tail of the 010003 line. */
    if (enc < QPROTO_COBS_MAX(QPROTO_HDR + QPROTO_CRC))
        return QPROTO_P_NONE;
    if (qproto_uncobs(p->buf, enc, &n) || n < QPROTO_HDR + QPROTO_CRC)
        return QPROTO_P_BAD;
    f->len = qproto_get16(p->buf + 12);
    if (f->len > QPROTO_MAX_PAYLOAD || n != QPROTO_HDR + (size_t)f->len + QPROTO_CRC)
        return QPROTO_P_BAD;
    if (qproto_get32(p->buf + n - QPROTO_CRC) != (uint32_t)crc32(0L, p->buf, (uInt)(n - 4)))
        return QPROTO_P_BAD;
    f->type = p->buf[0];
    f->flags = p->buf[1];
    f->seq = qproto_get16(p->buf + 2);
    f->off = qproto_get64(p->buf + 4);
    f->payload = p->buf + QPROTO_HDR;
    return QPROTO_P_FRAME;
}

enum qproto_parse_ev qproto_parse(struct qproto_parser *p, const uint8_t *buf, size_t len,
                                  size_t *used, struct qproto_frame *f)
{
    size_t i = 0;

    while (i < len) {
        const uint8_t *z = memchr(buf + i, 0, len - i);
        size_t n = z ? (size_t)(z - (buf + i)) : len - i;
        enum qproto_parse_ev ev;

        /* Past the longest frame there is no point keeping bytes: wait for the delimiter. */
        if (!p->overlong && n > sizeof(p->buf) - p->len) {
            p->overlong = true;
            p->len = 0;
        }
        if (!p->overlong) {
            memcpy(p->buf + p->len, buf + i, n);
            p->len += n;
        }
        i += n;
        if (!z)
            break;
        i++;
        ev = qproto_blob(p, f);
        if (ev != QPROTO_P_NONE) {
            *used = i;
            return ev;
        }
    }
    *used = i;
    return QPROTO_P_NONE;
}

const char *qproto_reason_str(unsigned reason)
{
    switch (reason) {
    case QPROTO_R_TIMEOUT:
        return "silence time-out";
    case QPROTO_R_STORAGE:
        return "storage error";
    case QPROTO_R_TOO_LONG:
        return "more data than announced";
    case QPROTO_R_LENGTH:
        return "END announced fewer bytes than AT+QFOTADL";
    case QPROTO_R_CANCEL:
        return "cancelled by the host";
    default:
        return "unknown reason";
    }
}

/* ---- receiver ------------------------------------------------------------------------------- */

/*
 * Receiver (result: MORE while the session runs):
 *
 *   state    frame / event                        action                        next state
 *   MORE     DATA off+len > total                 ABORT(TOO_LONG)               -EFBIG
 *   MORE     DATA len 0, or off > got (a gap)     NAK(got)                      MORE
 *   MORE     DATA off+len <= got (a duplicate)    ACK(got)                      MORE
 *   MORE     DATA off <= got < off+len            data(got, new part); ACK      MORE
 *   MORE     ...   data() failed                  ABORT(STORAGE)                data()'s -errno
 *   MORE     END off > total / off < total        ABORT(TOO_LONG / LENGTH)      -EFBIG / -EPROTO
 *   MORE     END off == total, got < total        NAK(got)                      MORE
 *   MORE     END off == total == got              ACK(total, FIN)               DONE
 *   MORE     ABORT                                ACK(got)                      ABORTED
 *   MORE     bad frame, unknown type              NAK(got)                      MORE
 *   MORE     qproto_rx_timeout                    ABORT(TIMEOUT)                -ETIMEDOUT
 *   DONE     END off == total, DATA within total  ACK(total, FIN)               DONE
 *   ABORTED  ABORT                                ACK(got)                      ABORTED
 *   -errno   DATA / END                           ABORT(reason) again           -errno
 *   -errno   ABORT                                ACK(got)                      -errno
 *   any      ACK / NAK (our own kind: an echo)    nothing                       same
 * Anything not listed is ignored. Every reply echoes the seq of the frame it answers.
 */

static void qproto_rx_send(struct qproto_rx *rx, uint8_t type, uint8_t flags, uint16_t seq,
                           uint64_t off)
{
    struct qproto_frame f = {.type = type, .flags = flags, .seq = seq, .off = off};
    uint8_t out[QPROTO_WIRE_MIN];
    size_t n = qproto_encode(&f, out, sizeof(out));

    rx->ops->reply(rx->ctx, out, n);
}

static void qproto_rx_fail(struct qproto_rx *rx, int err, uint8_t reason, uint16_t seq)
{
    rx->result = err;
    rx->reason = reason;
    qproto_rx_send(rx, QPROTO_ABORT, 0, seq, reason);
}

static void qproto_rx_data(struct qproto_rx *rx, const struct qproto_frame *f)
{
    uint64_t skip;
    int rc;

    if (f->off > rx->total || f->len > rx->total - f->off) {
        qproto_rx_fail(rx, -EFBIG, QPROTO_R_TOO_LONG, f->seq);
        return;
    }
    if (f->len == 0 || f->off > rx->got) {
        qproto_rx_send(rx, QPROTO_NAK, 0, f->seq, rx->got);
        return;
    }
    /* A retransmission of what is stored already writes nothing; one that overlaps the end of
     * what is stored writes only the new part, so no byte is ever written twice. */
    skip = rx->got - f->off;
    if (skip < f->len) {
        rc = rx->ops->data(rx->ctx, rx->got, f->payload + skip, f->len - (size_t)skip);
        if (rc < 0) {
            qproto_rx_fail(rx, rc, QPROTO_R_STORAGE, f->seq);
            return;
        }
        rx->got = f->off + f->len;
    }
    qproto_rx_send(rx, QPROTO_ACK, 0, f->seq, rx->got);
}

static void qproto_rx_end(struct qproto_rx *rx, const struct qproto_frame *f)
{
    if (f->off > rx->total)
        qproto_rx_fail(rx, -EFBIG, QPROTO_R_TOO_LONG, f->seq);
    else if (f->off < rx->total)
        qproto_rx_fail(rx, -EPROTO, QPROTO_R_LENGTH, f->seq);
    else if (rx->got < rx->total)
        qproto_rx_send(rx, QPROTO_NAK, 0, f->seq, rx->got);
    else {
        rx->result = QPROTO_DONE;
        qproto_rx_send(rx, QPROTO_ACK, QPROTO_F_FIN, f->seq, rx->got);
    }
}

/* A frame after the session ended: answers only what lets the host finish cleanly. */
static void qproto_rx_after(struct qproto_rx *rx, const struct qproto_frame *f)
{
    if (f->type == QPROTO_ABORT && rx->result != QPROTO_DONE)
        qproto_rx_send(rx, QPROTO_ACK, 0, f->seq, rx->got);
    else if (rx->result == QPROTO_DONE &&
             ((f->type == QPROTO_END && f->off == rx->total) ||
              (f->type == QPROTO_DATA && f->off <= rx->total && f->len <= rx->total - f->off)))
        /* The host has not seen the final ACK: a repeated END or DATA (it went back) gets it. */
        qproto_rx_send(rx, QPROTO_ACK, QPROTO_F_FIN, f->seq, rx->got);
    else if (rx->result < 0 && (f->type == QPROTO_DATA || f->type == QPROTO_END))
        qproto_rx_send(rx, QPROTO_ABORT, 0, f->seq, rx->reason);
}

static void qproto_rx_frame(struct qproto_rx *rx, const struct qproto_frame *f)
{
    /* Our own reply kinds coming back (a looped line, an echo) must not start a ping-pong. */
    if (f->type == QPROTO_ACK || f->type == QPROTO_NAK)
        return;
    rx->frames++;
    rx->last_seq = f->seq;
    if (rx->result != QPROTO_MORE) {
        qproto_rx_after(rx, f);
        return;
    }
    switch (f->type) {
    case QPROTO_DATA:
        qproto_rx_data(rx, f);
        break;
    case QPROTO_END:
        qproto_rx_end(rx, f);
        break;
    case QPROTO_ABORT:
        rx->result = QPROTO_ABORTED;
        qproto_rx_send(rx, QPROTO_ACK, 0, f->seq, rx->got);
        break;
    default:
        qproto_rx_send(rx, QPROTO_NAK, 0, f->seq, rx->got);
        break;
    }
}

void qproto_rx_init(struct qproto_rx *rx, uint64_t total, const struct qproto_rx_ops *ops,
                    void *ctx)
{
    memset(rx, 0, sizeof(*rx));
    rx->ops = ops;
    rx->ctx = ctx;
    rx->total = total;
    rx->result = QPROTO_MORE;
}

int qproto_rx_feed(struct qproto_rx *rx, const uint8_t *buf, size_t len)
{
    struct qproto_frame f;
    size_t used;

    while (len) {
        enum qproto_parse_ev ev = qproto_parse(&rx->p, buf, len, &used, &f);

        buf += used;
        len -= used;
        if (ev == QPROTO_P_FRAME)
            qproto_rx_frame(rx, &f);
        else if (ev == QPROTO_P_BAD && rx->result == QPROTO_MORE)
            /* Something frame-sized was torn or corrupted: tell the host where we are now
             * rather than let it wait for its time-out. The seq is the last good frame's, so
             * a host that has already gone back since sees it as stale. */
            qproto_rx_send(rx, QPROTO_NAK, 0, rx->last_seq, rx->got);
    }
    return rx->result;
}

void qproto_rx_timeout(struct qproto_rx *rx)
{
    if (rx->result == QPROTO_MORE)
        qproto_rx_fail(rx, -ETIMEDOUT, QPROTO_R_TIMEOUT, rx->last_seq);
}

int qproto_rx_result(const struct qproto_rx *rx)
{
    return rx->result;
}

uint64_t qproto_rx_got(const struct qproto_rx *rx)
{
    return rx->got;
}

uint64_t qproto_rx_frames(const struct qproto_rx *rx)
{
    return rx->frames;
}

/* ---- sender --------------------------------------------------------------------------------- */

/*
 * Sender (result: MORE while the session runs; acked <= next <= total):
 *
 *   event                                   action                                  result
 *   pump                                    DATA from next while next - acked +     MORE
 *                                           chunk <= WINDOW; END once next == total
 *   ACK(off), acked < off <= sent           acked = off, tries = 0                  MORE
 *   ACK(total, FIN)                         -                                       DONE
 *   NAK(off) not stale, acked <= off        acked = off; next = off (go back);      MORE, or
 *                                           ++tries == TRIES: ABORT(CANCEL)         -ETIMEDOUT
 *   ABORT(reason) from the module           keep the reason                         -ECONNABORTED
 *   timeout (no reply for the RTO)          next = acked (go back); ++tries ==      MORE, or
 *                                           TRIES: ABORT(CANCEL)                    -ETIMEDOUT
 *   qproto_tx_abort                         ABORT(CANCEL)                           -ECANCELED
 * A stale NAK answers a transmission from before the last go-back (its seq is older than
 * rewind_seq): the frames it complains about have been sent again already.
 */

static int qproto_tx_send(struct qproto_tx *tx, uint8_t type, uint64_t off, size_t len)
{
    struct qproto_frame f = {
        .type = type, .seq = tx->seq++, .off = off, .len = (uint16_t)len, .payload = tx->payload};
    size_t n = qproto_encode(&f, tx->frame, sizeof(tx->frame));
    int rc = tx->ops->send(tx->ctx, tx->frame, n);

    if (rc < 0)
        tx->result = rc;
    return rc < 0 ? rc : 0;
}

/* Gives up: a last ABORT (best effort: the session has failed whatever the port says). */
static void qproto_tx_give_up(struct qproto_tx *tx, int err)
{
    (void)qproto_tx_send(tx, QPROTO_ABORT, QPROTO_R_CANCEL, 0);
    tx->result = err;
}

/* Goes back to off (what the receiver expects) and counts a try of the frame there. */
static void qproto_tx_rewind(struct qproto_tx *tx, uint64_t off)
{
    if (++tx->tries >= QPROTO_TX_TRIES) {
        qproto_tx_give_up(tx, -ETIMEDOUT);
        return;
    }
    tx->next = off;
    tx->end_sent = false;
    tx->rewind_seq = tx->seq;
}

/* The receiver holds [0, off): progress when that is more than we knew. */
static void qproto_tx_advance(struct qproto_tx *tx, uint64_t off)
{
    if (off <= tx->acked)
        return;
    tx->acked = off;
    tx->tries = 0;
    if (tx->next < off)
        tx->next = off; /* an ACK that was late for a go-back */
}

static void qproto_tx_frame(struct qproto_tx *tx, const struct qproto_frame *f)
{
    /* Our own kinds coming back (an echoing port) are not replies. */
    if (f->type != QPROTO_ACK && f->type != QPROTO_NAK && f->type != QPROTO_ABORT)
        return;
    if (f->type == QPROTO_ABORT) {
        tx->replies++;
        tx->peer_reason = f->off > 0xFF ? 0xFF : (uint8_t)f->off;
        tx->result = -ECONNABORTED;
        return;
    }
    /* An offset the sender never reached, or behind what is acknowledged, is stale or bogus. */
    if (f->off > tx->sent || f->off < tx->acked)
        return;
    tx->replies++;
    if (f->type == QPROTO_ACK) {
        qproto_tx_advance(tx, f->off);
        if ((f->flags & QPROTO_F_FIN) && f->off == tx->total)
            tx->result = QPROTO_DONE;
        return;
    }
    if ((int16_t)(uint16_t)(f->seq - tx->rewind_seq) < 0)
        return;
    qproto_tx_advance(tx, f->off);
    qproto_tx_rewind(tx, f->off);
}

void qproto_tx_init(struct qproto_tx *tx, uint64_t total, size_t chunk,
                    const struct qproto_tx_ops *ops, void *ctx)
{
    memset(tx, 0, sizeof(*tx));
    tx->ops = ops;
    tx->ctx = ctx;
    tx->total = total;
    tx->chunk = chunk == 0 || chunk > QPROTO_MAX_PAYLOAD ? QPROTO_MAX_PAYLOAD : chunk;
    tx->result = QPROTO_MORE;
}

int qproto_tx_pump(struct qproto_tx *tx)
{
    while (tx->result == QPROTO_MORE) {
        if (tx->next < tx->total) {
            uint64_t inflight = tx->next - tx->acked;
            size_t n =
                tx->total - tx->next < tx->chunk ? (size_t)(tx->total - tx->next) : tx->chunk;
            int rc;

            if (inflight && inflight + n > QPROTO_WINDOW)
                break;
            rc = tx->ops->read(tx->ctx, tx->next, tx->payload, n);
            if (rc < 0) {
                tx->result = rc;
                break;
            }
            if (qproto_tx_send(tx, QPROTO_DATA, tx->next, n))
                break;
            tx->next += n;
            if (tx->sent < tx->next)
                tx->sent = tx->next;
        } else if (!tx->end_sent) {
            /* Right behind the last DATA: if that one is lost, the END's NAK says so at once. */
            if (qproto_tx_send(tx, QPROTO_END, tx->total, 0))
                break;
            tx->end_sent = true;
        } else {
            break;
        }
    }
    return tx->result;
}

int qproto_tx_feed(struct qproto_tx *tx, const uint8_t *buf, size_t len)
{
    struct qproto_frame f;
    size_t used;

    while (len && tx->result == QPROTO_MORE) {
        enum qproto_parse_ev ev = qproto_parse(&tx->p, buf, len, &used, &f);

        buf += used;
        len -= used;
        if (ev == QPROTO_P_FRAME)
            qproto_tx_frame(tx, &f);
    }
    return qproto_tx_pump(tx);
}

int qproto_tx_timeout(struct qproto_tx *tx)
{
    if (tx->result != QPROTO_MORE)
        return tx->result;
    qproto_tx_rewind(tx, tx->acked);
    return qproto_tx_pump(tx);
}

int qproto_tx_abort(struct qproto_tx *tx)
{
    if (tx->result == QPROTO_MORE)
        qproto_tx_give_up(tx, -ECANCELED);
    return tx->result;
}

int qproto_tx_result(const struct qproto_tx *tx)
{
    return tx->result;
}

uint64_t qproto_tx_acked(const struct qproto_tx *tx)
{
    return tx->acked;
}

uint64_t qproto_tx_replies(const struct qproto_tx *tx)
{
    return tx->replies;
}

unsigned qproto_tx_peer_reason(const struct qproto_tx *tx)
{
    return tx->peer_reason;
}
