/*
 * fota_send.c: `modtwin fota-send`, the host of Quectel's protocol download mode. It opens the
 * serial port raw (no RTS/CTS, no XON/XOFF), asks for the mode with AT+QFOTADL="FILE:<n>",2,
 * waits for the 010003 line and sends the package with the qproto sender (firmware/qproto.h):
 * a poll() loop feeds the port's bytes to the sender and turns silence into qproto_tx_timeout.
 * It does not retry the AT command nor resume a failed transfer: a new run starts over.
 * Exit codes: 0 the module acknowledged the whole package, 1 failure, 2 usage.
 */
#include "tools/fota_send.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "firmware/qproto.h"
#include "tools/cli.h"

#define FOTA_SEND_LINE 256 /* longest line kept while waiting for 010003 (others are cut) */

/* Everything one run owns; the fds are -1 when closed. */
struct fota_send {
    const char *port;
    const char *file;
    long baud;
    int fd;    /* the serial port */
    int file_fd;
    int sig_fd; /* SIGINT / SIGTERM, blocked and read through a signalfd */
    sigset_t old_mask;
    bool mask_set;
    uint64_t size;
    bool progress; /* stderr is a terminal */
    int shown_pct; /* last percentage printed, -1 = none */
    unsigned rto_ms;
    char line[FOTA_SEND_LINE]; /* the current line while waiting for 010003 */
    size_t line_len;
    uint8_t rest[4096]; /* bytes that came after the 010003 line in the same read */
    size_t rest_len;
    struct qproto_tx tx;
};

/* termios knows speeds as constants, not numbers. */
static const struct {
    long baud;
    speed_t speed;
} fota_send_speeds[] = {
    {1200, B1200},       {2400, B2400},       {4800, B4800},       {9600, B9600},
    {19200, B19200},     {38400, B38400},     {57600, B57600},     {115200, B115200},
    {230400, B230400},   {460800, B460800},   {921600, B921600},   {1000000, B1000000},
    {1500000, B1500000}, {2000000, B2000000}, {3000000, B3000000}, {4000000, B4000000},
};

static void fota_send_usage(FILE *out)
{
    fprintf(out,
            "usage: modtwin fota-send [--baud N] PORT FILE\n"
            "  sends FILE (an update package) to the module on serial port PORT in Quectel's\n"
            "  protocol download mode: AT+QFOTADL=\"FILE:<size>\",2, then the protocol of\n"
            "  docs/qfota-protocol.md, for ports without hardware flow control\n"
            "  -b, --baud N   the port's baud rate, as the module's AT+IPR (default %d)\n"
            "  -h, --help     this text\n"
            "Exit codes: 0 the module took the whole package, 1 failure, 2 usage.\n",
            FOTA_SEND_BAUD);
}

static uint64_t fota_send_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int fota_send_poll_ms(uint64_t deadline)
{
    uint64_t now = fota_send_now_ms();

    return deadline > now ? (int)(deadline - now) : 0;
}

/*
 * The retransmission time-out: QPROTO_TX_RETRY_MS plus twice the time a full window takes on
 * the wire at this baud (10 bits a byte), so that a slow link never looks like a lost frame.
 */
static unsigned fota_send_rto(long baud)
{
    uint64_t wire = 2ull * QPROTO_WIRE_MAX * 10u * 1000u / (uint64_t)baud;

    return QPROTO_TX_RETRY_MS + 2u * (unsigned)wire;
}

/* Opens the port raw at s->baud, without flow control of either kind. 0 or -errno. */
static int fota_send_open_port(struct fota_send *s, speed_t speed)
{
    struct termios t;

    /* Non-blocking: every wait goes through poll() with a deadline, so a port that stops taking
     * or giving bytes (a module gone, a stuck adapter) cannot hang the tool. */
    s->fd = open(s->port, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (s->fd < 0)
        return -errno;
    if (tcgetattr(s->fd, &t))
        return -errno;
    /* Raw: frames are binary, so no echo, no CR/LF translation, no signal characters. */
    cfmakeraw(&t);
    /* CLOCAL: adapters without modem lines must not wait for a carrier. */
    t.c_cflag |= CLOCAL | CREAD;
    /* The mode exists for ports without flow control: RTS/CTS off, and XON/XOFF off too, since
     * 0x11 and 0x13 occur in frames and must not pause the line. */
    t.c_cflag &= ~(tcflag_t)CRTSCTS;
    t.c_iflag &= ~(tcflag_t)(IXON | IXOFF | IXANY);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    if (cfsetispeed(&t, speed) || cfsetospeed(&t, speed) || tcsetattr(s->fd, TCSANOW, &t))
        return -errno;
    /* Whatever the module said before this run (URCs, an old session) is not for us. */
    tcflush(s->fd, TCIOFLUSH);
    return 0;
}

/* Writes all of buf, waiting for the port at most FOTA_SEND_WRITE_MS. 0 or -errno. */
static int fota_send_write(struct fota_send *s, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint64_t deadline = fota_send_now_ms() + FOTA_SEND_WRITE_MS;

    while (len) {
        ssize_t n = write(s->fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            struct pollfd pfd = {.fd = s->fd, .events = POLLOUT};
            int ms = fota_send_poll_ms(deadline);

            if (!ms)
                return -ETIMEDOUT;
            if (poll(&pfd, 1, ms) < 0 && errno != EINTR)
                return -errno;
            continue;
        }
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads what the port holds (it is readable). >0 bytes, or -errno (-EIO: the port closed). */
static ssize_t fota_send_read(struct fota_send *s, uint8_t *buf, size_t cap)
{
    ssize_t n = read(s->fd, buf, cap);

    /* poll() said readable, but a signal or a spurious wake-up may leave nothing to read. */
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n == 0)
        return -EIO; /* a PTY whose other end went away */
    return n < 0 ? -errno : n;
}

/* qproto_tx_ops: package bytes from the file. */
static int fota_send_tx_read(void *ctx, uint64_t off, uint8_t *buf, size_t len)
{
    struct fota_send *s = ctx;

    while (len) {
        ssize_t n = pread(s->file_fd, buf, len, (off_t)off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -ENODATA; /* the file shrank under us */
        buf += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

/* qproto_tx_ops: frames to the module. */
static int fota_send_tx_send(void *ctx, const uint8_t *buf, size_t len)
{
    return fota_send_write(ctx, buf, len);
}

static const struct qproto_tx_ops fota_send_ops = {
    .read = fota_send_tx_read,
    .send = fota_send_tx_send,
};

/* Takes the pending SIGINT / SIGTERM off the signalfd, so that restoring the signal mask at the
 * end does not deliver it again: an interrupted run exits 1 like any other failure. */
static int fota_send_take_signal(struct fota_send *s)
{
    struct signalfd_siginfo si;

    while (read(s->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
        ;
    return -ECANCELED;
}

/*
 * One line of the module's answer. 1: 010003; 0: anything else (the echo, a URC, a blank
 * line); -ECONNREFUSED: ERROR or +CME ERROR (s->line keeps it for the message).
 */
static int fota_send_line(struct fota_send *s)
{
    s->line[s->line_len] = '\0';
    s->line_len = 0;
    if (strcmp(s->line, FOTA_SEND_READY) == 0)
        return 1;
    if (strcmp(s->line, "ERROR") == 0 || strncmp(s->line, "+CME ERROR", 10) == 0)
        return -ECONNREFUSED;
    return 0;
}

/*
 * Sends the AT command and waits for 010003, skipping the echo and any other line; the bytes
 * after the 010003 line are kept in s->rest. 0, -ECONNREFUSED (the module answered an error),
 * -ETIMEDOUT (nothing in FOTA_SEND_READY_MS), -ECANCELED (a signal) or a port error.
 */
static int fota_send_handshake(struct fota_send *s)
{
    char cmd[96];
    uint64_t deadline;
    int n, rc;

    /* The document's form has nothing after the 2: the update runs at once when the package
     * is in (as <upgrade_mode> 1). */
    n = snprintf(cmd, sizeof(cmd), "AT+QFOTADL=\"FILE:%" PRIu64 "\",2\r", s->size);
    rc = fota_send_write(s, cmd, (size_t)n);
    if (rc)
        return rc;
    deadline = fota_send_now_ms() + FOTA_SEND_READY_MS;
    for (;;) {
        struct pollfd pfd[2] = {{.fd = s->fd, .events = POLLIN},
                                {.fd = s->sig_fd, .events = POLLIN}};
        uint8_t buf[sizeof(s->rest)];
        int ms = fota_send_poll_ms(deadline);
        ssize_t got;

        if (!ms)
            return -ETIMEDOUT;
        if (poll(pfd, 2, ms) < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (pfd[1].revents)
            return fota_send_take_signal(s);
        if (!pfd[0].revents)
            continue;
        got = fota_send_read(s, buf, sizeof(buf));
        if (got < 0)
            return (int)got;
        for (ssize_t i = 0; i < got; i++) {
            if (buf[i] != '\r' && buf[i] != '\n') {
                if (s->line_len < sizeof(s->line) - 1)
                    s->line[s->line_len++] = (char)buf[i];
                continue;
            }
            rc = fota_send_line(s);
            if (rc < 0)
                return rc;
            if (rc == 1) {
                s->rest_len = (size_t)(got - i - 1);
                memcpy(s->rest, buf + i + 1, s->rest_len);
                return 0;
            }
        }
    }
}

static void fota_send_show(struct fota_send *s, bool last)
{
    uint64_t acked = qproto_tx_acked(&s->tx);
    int pct = s->size ? (int)(acked * 100u / s->size) : 100;

    if (!s->progress || (pct == s->shown_pct && !last))
        return;
    if (pct == s->shown_pct) {
        fputc('\n', stderr); /* the line is up to date: only end it */
        return;
    }
    s->shown_pct = pct;
    fprintf(stderr, "\rmodtwin fota-send: %" PRIu64 " / %" PRIu64 " bytes (%d%%)%s", acked, s->size,
            pct, last ? "\n" : "");
}

/*
 * The transfer: pump, then feed what the module says; silence for the RTO is a time-out, a
 * signal an abort. Returns the sender's result (QPROTO_DONE or -errno).
 */
static int fota_send_transfer(struct fota_send *s)
{
    uint64_t deadline, replies;
    int rc;

    qproto_tx_init(&s->tx, s->size, 0, &fota_send_ops, s);
    rc = qproto_tx_pump(&s->tx);
    /* Bytes that came with the 010003 line belong to the protocol (noise to it, in practice). */
    if (rc == QPROTO_MORE && s->rest_len)
        rc = qproto_tx_feed(&s->tx, s->rest, s->rest_len);
    replies = qproto_tx_replies(&s->tx);
    deadline = fota_send_now_ms() + s->rto_ms;
    while (rc == QPROTO_MORE) {
        struct pollfd pfd[2] = {{.fd = s->fd, .events = POLLIN},
                                {.fd = s->sig_fd, .events = POLLIN}};
        uint8_t buf[4096];
        ssize_t got;
        int n = poll(pfd, 2, fota_send_poll_ms(deadline));

        if (n < 0 && errno != EINTR)
            return -errno;
        if (n > 0 && pfd[1].revents) {
            fota_send_take_signal(s);
            rc = qproto_tx_abort(&s->tx);
            break;
        }
        if (n > 0 && pfd[0].revents) {
            got = fota_send_read(s, buf, sizeof(buf));
            if (got < 0)
                return (int)got;
            rc = qproto_tx_feed(&s->tx, buf, (size_t)got);
            fota_send_show(s, false);
        }
        /* Any valid reply shows the module alive: the retransmission clock starts over. */
        if (qproto_tx_replies(&s->tx) != replies) {
            replies = qproto_tx_replies(&s->tx);
            deadline = fota_send_now_ms() + s->rto_ms;
        } else if (rc == QPROTO_MORE && !fota_send_poll_ms(deadline)) {
            rc = qproto_tx_timeout(&s->tx);
            deadline = fota_send_now_ms() + s->rto_ms;
        }
    }
    if (rc == QPROTO_DONE)
        fota_send_show(s, true);
    else if (s->progress && s->shown_pct >= 0)
        fputc('\n', stderr);
    return rc;
}

/* Explains a failed run on stderr. */
static void fota_send_explain(const struct fota_send *s, int rc, bool in_transfer)
{
    uint64_t at = qproto_tx_acked(&s->tx);

    if (!in_transfer && rc == -ETIMEDOUT)
        fprintf(stderr,
                "modtwin fota-send: no %s from the module on %s within %u s (is it a "
                "model with the protocol download mode, at %ld baud?)\n",
                FOTA_SEND_READY, s->port, FOTA_SEND_READY_MS / 1000, s->baud);
    else if (!in_transfer && rc == -ECONNREFUSED)
        fprintf(stderr, "modtwin fota-send: the module refused AT+QFOTADL: %s\n", s->line);
    else if (rc == -ECANCELED && in_transfer)
        fprintf(stderr,
                "modtwin fota-send: interrupted at byte %" PRIu64 "; the module was told "
                "to abort\n",
                at);
    else if (rc == -ECANCELED)
        fprintf(stderr, "modtwin fota-send: interrupted\n");
    else if (rc == -ECONNABORTED)
        fprintf(stderr,
                "modtwin fota-send: the module aborted the transfer at byte %" PRIu64 ": %s\n", at,
                qproto_reason_str(qproto_tx_peer_reason(&s->tx)));
    else if (rc == -ETIMEDOUT)
        fprintf(stderr,
                "modtwin fota-send: no answer from the module at byte %" PRIu64 " after %u tries\n",
                at, QPROTO_TX_TRIES);
    else if (rc == -EIO && in_transfer)
        fprintf(stderr, "modtwin fota-send: %s: the port closed at byte %" PRIu64 "\n", s->port,
                at);
    else
        fprintf(stderr, "modtwin fota-send: %s: %s\n", s->port, strerror(-rc));
}

/* Blocks SIGINT and SIGTERM and reads them through a signalfd: no handler, no global flag. */
static int fota_send_signals(struct fota_send *s)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &set, &s->old_mask))
        return -errno;
    s->mask_set = true;
    s->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    return s->sig_fd < 0 ? -errno : 0;
}

static void fota_send_close(struct fota_send *s)
{
    if (s->fd >= 0)
        close(s->fd);
    if (s->file_fd >= 0)
        close(s->file_fd);
    if (s->sig_fd >= 0)
        close(s->sig_fd);
    s->fd = s->file_fd = s->sig_fd = -1;
    /* A signal that arrived after the transfer ended is delivered now, with its default action. */
    if (s->mask_set)
        sigprocmask(SIG_SETMASK, &s->old_mask, NULL);
    s->mask_set = false;
}

/* Parses the options into s; 0, or the exit code of a usage error (2) or of --help (0) + 1. */
static int fota_send_args(struct fota_send *s, int argc, char **argv)
{
    static const struct option opts[] = {
        {"baud", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "b:h", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (cli_parse_long(optarg, 1, 4000000, &s->baud)) {
                fprintf(stderr, "modtwin fota-send: --baud '%s': expected a baud rate\n", optarg);
                return 2;
            }
            break;
        case 'h':
            fota_send_usage(stdout);
            return 1;
        default:
            fota_send_usage(stderr);
            return 2;
        }
    }
    if (argc - optind != 2) {
        fprintf(stderr, "modtwin fota-send: expected PORT and FILE (see 'modtwin fota-send "
                        "--help')\n");
        return 2;
    }
    s->port = argv[optind];
    s->file = argv[optind + 1];
    return 0;
}

int fota_send_main(int argc, char **argv)
{
    struct fota_send *s = calloc(1, sizeof(*s));
    struct stat st;
    speed_t speed = 0;
    int rc, code = 1;

    if (!s) {
        fprintf(stderr, "modtwin fota-send: out of memory\n");
        return 1;
    }
    s->fd = s->file_fd = s->sig_fd = -1;
    s->baud = FOTA_SEND_BAUD;
    s->shown_pct = -1;
    rc = fota_send_args(s, argc, argv);
    if (rc) {
        free(s);
        return rc == 1 ? 0 : rc;
    }
    /* Only the rates termios can set: a port at another rate than the module's is silent. */
    for (size_t i = 0; i < sizeof(fota_send_speeds) / sizeof(fota_send_speeds[0]); i++)
        if (fota_send_speeds[i].baud == s->baud)
            speed = fota_send_speeds[i].speed;
    if (!speed) {
        fprintf(stderr, "modtwin fota-send: --baud %ld: not a standard rate (1200 .. 4000000)\n",
                s->baud);
        free(s);
        return 2;
    }
    s->rto_ms = fota_send_rto(s->baud);
    s->progress = isatty(STDERR_FILENO);

    s->file_fd = open(s->file, O_RDONLY | O_CLOEXEC);
    if (s->file_fd < 0 || fstat(s->file_fd, &st)) {
        fprintf(stderr, "modtwin fota-send: %s: %s\n", s->file, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        fprintf(stderr, "modtwin fota-send: %s: not a regular file\n", s->file);
        goto out;
    }
    /* The length goes into the AT command; the bytes are read frame by frame (pread), so a
     * package of any size needs no more memory than one frame. */
    s->size = (uint64_t)st.st_size;
    rc = fota_send_signals(s);
    if (rc) {
        fprintf(stderr, "modtwin fota-send: signals: %s\n", strerror(-rc));
        goto out;
    }
    rc = fota_send_open_port(s, speed);
    if (rc) {
        fprintf(stderr, "modtwin fota-send: %s: %s\n", s->port,
                rc == -ENOTTY ? "not a serial port" : strerror(-rc));
        goto out;
    }
    rc = fota_send_handshake(s);
    if (rc) {
        fota_send_explain(s, rc, false);
        goto out;
    }
    rc = fota_send_transfer(s);
    if (rc != QPROTO_DONE) {
        fota_send_explain(s, rc, true);
        goto out;
    }
    code = 0;
out:
    fota_send_close(s);
    free(s);
    return code;
}
