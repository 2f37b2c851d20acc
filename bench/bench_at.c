/*
 * AT round-trip benchmark: 10,000 "AT" -> "OK" exchanges against modtwin and, in the same run,
 * against a minimal PTY responder (libev, raw PTY, no parser) built into this program; also the
 * time from process start to the PTY answering, and the RSS of idle modules at --count 100.
 * usage: bench_at MODTWIN_BINARY [exchanges]
 */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- the peer: a minimal PTY responder ------------------------------------------------------- */

struct responder {
    int master;
    char line[256];
    size_t len;
};

static void responder_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct responder *r = w->data;
    char buf[4096];
    ssize_t n = read(r->master, buf, sizeof(buf));

    (void)revents;
    if (n <= 0) {
        if (n == 0 || errno != EAGAIN)
            ev_break(loop, EVBREAK_ALL);
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == '\r') {
            if (write(r->master, "\r\nOK\r\n", 6) != 6)
                ev_break(loop, EVBREAK_ALL);
            r->len = 0;
        } else if (r->len < sizeof(r->line)) {
            r->line[r->len++] = buf[i];
        }
    }
}

/* Forks the responder; writes its slave path into path. */
static pid_t responder_start(char *path, size_t cap)
{
    int fds[2];
    pid_t pid;

    if (pipe(fds) < 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        struct responder r = {0};
        struct termios t;
        struct ev_loop *loop = ev_default_loop(0);
        ev_io w;
        int keeper;

        r.master = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK);
        grantpt(r.master);
        unlockpt(r.master);
        keeper = open(ptsname(r.master), O_RDWR | O_NOCTTY);
        tcgetattr(keeper, &t);
        cfmakeraw(&t);
        tcsetattr(keeper, TCSANOW, &t);
        if (write(fds[1], ptsname(r.master), strlen(ptsname(r.master)) + 1) < 0)
            _exit(1);
        ev_io_init(&w, responder_cb, r.master, EV_READ);
        w.data = &r;
        ev_io_start(loop, &w);
        ev_run(loop, 0);
        _exit(0);
    }
    close(fds[1]);
    if (read(fds[0], path, cap) <= 0)
        return -1;
    close(fds[0]);
    return pid;
}

/* ---- the host side ---------------------------------------------------------------------------- */

static int host_open(const char *path)
{
    struct termios t;
    int fd = open(path, O_RDWR | O_NOCTTY);

    if (fd < 0)
        return -1;
    tcgetattr(fd, &t);
    cfmakeraw(&t);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    tcsetattr(fd, TCSANOW, &t);
    return fd;
}

/* Sends line and reads until "OK\r\n"; returns the seconds it took, or -1. */
static double host_exchange(int fd, const char *line)
{
    char buf[512];
    size_t got = 0;
    double t0 = now_s();

    if (write(fd, line, strlen(line)) < 0)
        return -1;
    while (got < sizeof(buf) - 1) {
        ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (n <= 0)
            return -1;
        got += (size_t)n;
        buf[got] = 0;
        if (strstr(buf, "OK\r\n"))
            return now_s() - t0;
        if (strstr(buf, "ERROR"))
            return -1;
    }
    return -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static int round_trips(const char *name, const char *path, int count)
{
    double *t = calloc((size_t)count, sizeof(*t)), sum = 0;
    int fd = host_open(path);

    if (!t || fd < 0)
        return -1;
    for (int i = 0; i < 100; i++) /* warm-up */
        host_exchange(fd, "AT\r");
    for (int i = 0; i < count; i++) {
        t[i] = host_exchange(fd, "AT\r");
        if (t[i] < 0) {
            fprintf(stderr, "%s: exchange %d failed\n", name, i);
            return -1;
        }
        sum += t[i];
    }
    qsort(t, (size_t)count, sizeof(*t), cmp_double);
    printf("%-22s %6d exchanges  mean %7.1f us  p50 %7.1f us  p99 %7.1f us\n", name, count,
           sum / count * 1e6, t[count / 2] * 1e6, t[count * 99 / 100] * 1e6);
    close(fd);
    free(t);
    return 0;
}

/* Starts modtwin; returns its pid and fills the UART path of module `want` and the seconds to "ready". */
static pid_t modtwin_start(const char *bin, int count, int want, char *uart, size_t cap,
                           double *ready_s)
{
    char countbuf[16];
    int fds[2];
    pid_t pid;
    FILE *out;
    char line[1024];
    double t0 = now_s();

    snprintf(countbuf, sizeof(countbuf), "%d", count);
    if (pipe(fds) < 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execl(bin, bin, "run", "--speed", "max", "--count", countbuf, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    out = fdopen(fds[0], "r");
    uart[0] = 0;
    while (fgets(line, sizeof(line), out)) {
        int idx;
        char kind[16], pty[256];
        if (strcmp(line, "ready\n") == 0)
            break;
        if (sscanf(line, "%d %15s %255s", &idx, kind, pty) == 3 && idx == want &&
            strcmp(kind, "uart") == 0)
            snprintf(uart, cap, "%s", pty);
    }
    *ready_s = now_s() - t0;
    /* keep the pipe open in the child's favour: closing our end would SIGPIPE its stdout */
    return uart[0] ? pid : -1;
}

static double first_ok(const char *uart)
{
    int fd = host_open(uart);
    double t0 = now_s();

    if (fd < 0)
        return -1;
    /* the module is deaf until it has booted: retry until it answers */
    for (;;) {
        struct timespec d = {0, 200000};
        if (write(fd, "AT\r", 3) != 3)
            return -1;
        nanosleep(&d, NULL);
        char buf[256];
        int fl = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        fcntl(fd, F_SETFL, fl);
        if (n > 0) {
            buf[n] = 0;
            if (strstr(buf, "OK")) {
                close(fd);
                return now_s() - t0;
            }
        }
        if (now_s() - t0 > 20)
            return -1;
    }
}

static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

static void stop(pid_t pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

int main(int argc, char **argv)
{
    int count = argc > 2 ? atoi(argv[2]) : 10000;
    char peer[256], uart[256];
    double ready, ok;
    pid_t rp, mp;
    long rss1, rss100;

    if (argc < 2 || count < 100) {
        fprintf(stderr, "usage: bench_at MODTWIN [exchanges >= 100]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    rp = responder_start(peer, sizeof(peer));
    if (rp < 0 || round_trips("raw PTY responder", peer, count))
        return 1;
    stop(rp);

    mp = modtwin_start(argv[1], 1, 0, uart, sizeof(uart), &ready);
    if (mp < 0)
        return 1;
    ok = first_ok(uart);
    {
        int fd = host_open(uart);
        host_exchange(fd, "ATE0\r");
        close(fd);
    }
    if (round_trips("modtwin EC200A-CN", uart, count))
        return 1;
    rss1 = rss_kib(mp);
    stop(mp);
    printf("start to PTY ready: %.1f ms; to the first OK (boot at max speed): %.1f ms\n",
           ready * 1e3, (ready + ok) * 1e3);

    mp = modtwin_start(argv[1], 100, 99, uart, sizeof(uart), &ready);
    if (mp < 0 || first_ok(uart) < 0)
        return 1;
    rss100 = rss_kib(mp);
    stop(mp);
    printf("RSS: 1 module %ld KiB; 100 modules %ld KiB = %.1f KiB per idle module "
           "(start of 100: %.1f ms)\n",
           rss1, rss100, (double)(rss100 - rss1) / 99, ready * 1e3);
    return 0;
}
