/*
 * qproto: the transfer protocol of Quectel's "protocol download mode" (AT+QFOTADL="FILE:<n>",2)
 * as modtwin defines it (Quectel does not publish theirs): a host without hardware flow control
 * sends an update package of a known length over a UART that may lose or corrupt bytes.
 * docs/qfota-protocol.md is the definition; this header is the codec and the two state
 * machines, pure (no I/O, no clock, no globals): the module's firmware drives the receiver,
 * `modtwin fota-send` and the unit tests drive the sender.
 *
 * On the wire a frame is 0x00, COBS(header | payload | CRC-32), 0x00 (COBS: consistent overhead
 * byte stuffing, so 0x00 never occurs inside a frame and every 0x00 is a resync point):
 *
 *   off  size  field
 *   0    1     type     'D' DATA, 'E' END, 'A' ABORT (host -> module); 'K' ACK, 'N' NAK, 'A'
 *   1    1     flags    QPROTO_F_FIN on the ACK of END; 0 otherwise
 *   2    2     seq      little-endian; the sender counts every transmission; replies echo it
 *   4    8     off      little-endian; DATA: payload offset, END: total length, ACK / NAK: the
 *                       receiver's next expected offset, ABORT: a reason (enum qproto_reason)
 *   12   2     len      little-endian payload length (DATA 1..1024, others 0)
 *   14   len   payload
 *   14+len 4   crc      little-endian zlib crc32 of bytes 0 .. 13+len
 */
#ifndef MODTWIN_FIRMWARE_QPROTO_H
#define MODTWIN_FIRMWARE_QPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QPROTO_MAX_PAYLOAD 1024u /* DATA payload bytes at most */
#define QPROTO_HDR         14u   /* type, flags, seq, off, len */
#define QPROTO_CRC         4u
#define QPROTO_FRAME_MAX   (QPROTO_HDR + QPROTO_MAX_PAYLOAD + QPROTO_CRC) /* 1042, decoded */
/* COBS adds one code byte per 254 bytes (and one at the start); two delimiters frame it. */
#define QPROTO_COBS_MAX(n) ((n) + (n) / 254u + 1u)
#define QPROTO_WIRE_MAX    (QPROTO_COBS_MAX(QPROTO_FRAME_MAX) + 2u)        /* 1049 */
#define QPROTO_WIRE_MIN    (QPROTO_COBS_MAX(QPROTO_HDR + QPROTO_CRC) + 2u) /* 21: a reply */

#define QPROTO_WINDOW       2048u /* payload bytes the sender has unacknowledged at most */
#define QPROTO_TX_TRIES     10u   /* transmissions of one frame before the sender gives up */
#define QPROTO_TX_RETRY_MS  1000u /* the host retransmits after this long without a reply */
#define QPROTO_RX_SILENCE_S 10u   /* the module aborts after this long without a valid frame */
#define QPROTO_RX_LINGER_S  3u    /* the module keeps answering a repeated END after DONE */

enum qproto_type {
    QPROTO_DATA = 'D',
    QPROTO_END = 'E',
    QPROTO_ABORT = 'A',
    QPROTO_ACK = 'K',
    QPROTO_NAK = 'N',
};

#define QPROTO_F_FIN 0x01u /* ACK flag: the receiver holds all total bytes and took the END */

/* Why a side aborts: the `off` field of an ABORT frame. Values are wire values. */
enum qproto_reason {
    QPROTO_R_NONE = 0,
    QPROTO_R_TIMEOUT = 1,  /* the module heard no valid frame for QPROTO_RX_SILENCE_S */
    QPROTO_R_STORAGE = 2,  /* the module could not store the data */
    QPROTO_R_TOO_LONG = 3, /* data or END beyond the length AT+QFOTADL announced */
    QPROTO_R_LENGTH = 4,   /* END announced fewer bytes than AT+QFOTADL did */
    QPROTO_R_CANCEL = 5,   /* the host gave up or was interrupted */
};

/* Session results: what feed / timeout / result return besides -errno. */
enum qproto_result {
    QPROTO_MORE = 0,    /* keep going */
    QPROTO_DONE = 1,    /* every byte stored and the END acknowledged */
    QPROTO_ABORTED = 2, /* receiver: the host sent ABORT */
};

/* One decoded frame; payload points into the parser's buffer (valid until the next parse). */
struct qproto_frame {
    uint8_t type;
    uint8_t flags;
    uint16_t seq;
    uint64_t off;
    uint16_t len;
    const uint8_t *payload;
};

/*
 * Encodes f (with f->len payload bytes at f->payload; len <= QPROTO_MAX_PAYLOAD) as wire bytes,
 * delimiters included, into out (cap >= QPROTO_WIRE_MAX always suffices). Returns the number of
 * bytes written, or 0 when f->len is too big or cap too small.
 */
size_t qproto_encode(const struct qproto_frame *f, uint8_t *out, size_t cap);

/* Reassembles frames from a byte stream; caller-owned, zeroed or qproto_parser_reset() = empty. */
struct qproto_parser {
    uint8_t buf[QPROTO_WIRE_MAX]; /* encoded bytes since the last delimiter, decoded in place */
    size_t len;
    bool overlong; /* more than QPROTO_WIRE_MAX bytes without a delimiter: a bad frame */
};

enum qproto_parse_ev {
    QPROTO_P_NONE,  /* every byte was taken; nothing complete */
    QPROTO_P_FRAME, /* *f holds a valid frame */
    QPROTO_P_BAD,   /* a delimiter ended bytes long enough to have been a frame, but not valid */
};

void qproto_parser_reset(struct qproto_parser *p);

/*
 * Takes bytes from buf until a frame (or a bad one) completes or buf is used up; *used tells how
 * many were taken, so the caller calls again with the rest. Short runs of other bytes (AT text,
 * line noise shorter than a frame) are dropped silently. A QPROTO_P_FRAME's payload points into
 * p and stays valid until the next call.
 */
enum qproto_parse_ev qproto_parse(struct qproto_parser *p, const uint8_t *buf, size_t len,
                                  size_t *used, struct qproto_frame *f);

/* A short English text for a reason ("silence time-out", ...; "unknown reason" otherwise). */
const char *qproto_reason_str(unsigned reason);

/* ---- receiver (the module) ------------------------------------------------------------------ */

/* Stores len package bytes at off: 0 or -errno (the session then aborts with that error). Calls
 * come in order: off is always the previous off + len, from 0; never twice for a byte. */
typedef int qproto_data_fn(void *ctx, uint64_t off, const uint8_t *buf, size_t len);
/* Bytes for the host (a whole frame each call); the callee queues them on its port. */
typedef void qproto_reply_fn(void *ctx, const uint8_t *buf, size_t len);

struct qproto_rx_ops {
    qproto_data_fn *data;
    qproto_reply_fn *reply;
};

/* Caller-owned (e.g. in struct modem); fields are private to qproto.c. */
struct qproto_rx {
    struct qproto_parser p;
    const struct qproto_rx_ops *ops;
    void *ctx;
    uint64_t total;    /* the length AT+QFOTADL announced */
    uint64_t got;      /* bytes stored, from offset 0 */
    uint64_t frames;   /* valid frames received */
    uint16_t last_seq; /* seq of the last valid frame, echoed by replies to bad ones */
    uint8_t reason;    /* the reason of the ABORT this side sent, QPROTO_R_NONE if none */
    int result;        /* enum qproto_result or -errno */
};

/* Starts a session for a package of total bytes. ops must outlive the session. */
void qproto_rx_init(struct qproto_rx *rx, uint64_t total, const struct qproto_rx_ops *ops,
                    void *ctx);

/*
 * Bytes from the host. Calls ops->data for new in-order payload and ops->reply for each answer,
 * from inside this call. Returns QPROTO_MORE (keep feeding), QPROTO_DONE (all total bytes stored
 * and the END acknowledged), QPROTO_ABORTED (the host sent ABORT), or -errno: a data() error
 * (its own value), -EFBIG (the host sent more than total), -EPROTO (END announced fewer bytes),
 * -ETIMEDOUT (qproto_rx_timeout ran). Once the session is over the result sticks; feeding then
 * stays safe: after DONE a repeated END or DATA gets the final ACK again (the host may have
 * lost it: keep feeding for QPROTO_RX_LINGER_S if you can), after an error each valid frame is
 * answered with the ABORT again, and nothing is ever stored.
 */
int qproto_rx_feed(struct qproto_rx *rx, const uint8_t *buf, size_t len);

/*
 * The firmware's silence timer fired (QPROTO_RX_SILENCE_S without a new valid frame; see
 * qproto_rx_frames): while the session runs, sends ABORT(QPROTO_R_TIMEOUT) and ends it with
 * -ETIMEDOUT. A no-op once the session is over.
 */
void qproto_rx_timeout(struct qproto_rx *rx);

/* The session's state: what the last feed returned, or -ETIMEDOUT after a time-out. */
int qproto_rx_result(const struct qproto_rx *rx);

/* Package bytes stored so far (progress). */
uint64_t qproto_rx_got(const struct qproto_rx *rx);

/* Valid frames received so far: the firmware re-arms its silence timer when this grows, so that
 * line noise alone does not keep a dead session alive. */
uint64_t qproto_rx_frames(const struct qproto_rx *rx);

/* ---- sender (the host) ---------------------------------------------------------------------- */

/* Reads len package bytes at off into buf: 0 or -errno (the session fails with it). */
typedef int qproto_read_fn(void *ctx, uint64_t off, uint8_t *buf, size_t len);
/* Bytes for the module (a whole frame each call): 0 or -errno (the session fails with it). */
typedef int qproto_send_fn(void *ctx, const uint8_t *buf, size_t len);

struct qproto_tx_ops {
    qproto_read_fn *read;
    qproto_send_fn *send;
};

/* Caller-owned; fields are private to qproto.c. */
struct qproto_tx {
    struct qproto_parser p;
    const struct qproto_tx_ops *ops;
    void *ctx;
    uint64_t total;
    uint64_t acked;      /* the receiver holds [0, acked) */
    uint64_t next;       /* offset of the next DATA frame to send */
    uint64_t sent;       /* the highest offset sent so far: replies beyond it are bogus */
    uint64_t replies;    /* valid replies received */
    uint16_t seq;        /* seq of the next transmission */
    uint16_t rewind_seq; /* first seq sent since the last rewind: NAKs of older ones are stale */
    unsigned tries;      /* rewinds since acked last grew */
    size_t chunk;        /* payload bytes per DATA frame */
    bool end_sent;       /* END is in flight */
    uint8_t peer_reason; /* the reason of the module's ABORT */
    int result;          /* QPROTO_MORE, QPROTO_DONE or -errno */
    uint8_t frame[QPROTO_WIRE_MAX];
    uint8_t payload[QPROTO_MAX_PAYLOAD];
};

/*
 * Starts sending a package of total bytes (nothing is sent yet: call qproto_tx_pump). chunk is
 * the payload per DATA frame, 1..QPROTO_MAX_PAYLOAD (0 = QPROTO_MAX_PAYLOAD).
 */
void qproto_tx_init(struct qproto_tx *tx, uint64_t total, size_t chunk,
                    const struct qproto_tx_ops *ops, void *ctx);

/*
 * Sends what the window allows: DATA frames until QPROTO_WINDOW payload bytes are unacknowledged
 * (always at least one), then END once every byte has been sent. Returns the session's state
 * (as qproto_tx_result).
 */
int qproto_tx_pump(struct qproto_tx *tx);

/*
 * Bytes from the module. ACKs advance the window, a NAK makes the sender go back to the offset
 * the receiver expects (stale NAKs, sent before the last rewind, are ignored), an ABORT ends the
 * session; then pumps. Other bytes (AT text, noise) are skipped. Returns QPROTO_MORE, QPROTO_DONE
 * (the module acknowledged END with QPROTO_F_FIN), -ECONNABORTED (the module aborted:
 * qproto_tx_peer_reason says why), -ETIMEDOUT (a NAK made the frame at acked exceed
 * QPROTO_TX_TRIES transmissions), or a read / send error.
 */
int qproto_tx_feed(struct qproto_tx *tx, const uint8_t *buf, size_t len);

/*
 * No reply came within the retransmission time-out: goes back to the first unacknowledged byte
 * and sends again. When the frame there has been sent QPROTO_TX_TRIES times, sends
 * ABORT(QPROTO_R_CANCEL) instead and ends the session with -ETIMEDOUT. Returns the state.
 */
int qproto_tx_timeout(struct qproto_tx *tx);

/* The host gives up (e.g. interrupted): sends ABORT(QPROTO_R_CANCEL) while the session runs and
 * ends it with -ECANCELED. Returns the state. */
int qproto_tx_abort(struct qproto_tx *tx);

/* QPROTO_MORE, QPROTO_DONE or -errno (see qproto_tx_feed). */
int qproto_tx_result(const struct qproto_tx *tx);

/* Bytes the module acknowledged (progress). */
uint64_t qproto_tx_acked(const struct qproto_tx *tx);

/* Valid replies received so far: the host restarts its retransmission timer when this grows. */
uint64_t qproto_tx_replies(const struct qproto_tx *tx);

/* The reason (enum qproto_reason) of the module's ABORT; QPROTO_R_NONE if it sent none. */
unsigned qproto_tx_peer_reason(const struct qproto_tx *tx);

#endif
