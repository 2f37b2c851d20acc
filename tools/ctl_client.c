/*
 * `modtwin ctl`: the command-line client of the control socket. Each subcommand builds one
 * request (docs/control-api.md), sends it as one line and prints the reply's result as JSON on
 * stdout; push and pull split big files into several requests; events streams event lines until
 * the server closes or the process is killed. Exit 0 ok, 1 the server said ok:false (the error's
 * field and message on stderr) or the socket failed, 2 usage. Range checks are the server's job:
 * the client only checks that a value has the right syntax.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <mbedtls/base64.h>

#include "tools/cli.h"

#define CTL_CLIENT_CHUNK   (512u << 10) /* file bytes per push/pull request: < 1 MiB as base64 */
#define CTL_CLIENT_TIMEOUT 60           /* seconds to wait for a reply (not for events) */

/* The connection and a line reader over it (replies can be megabytes: a pull of a big file). */
struct ctl_client_conn {
    const char *path;
    int fd;    /* -1 until the first request: usage errors never need the socket */
    char *buf; /* received bytes not yet returned as lines */
    size_t len, cap;
    long next_id;
};

/* Options shared by every subcommand. */
struct ctl_client_opts {
    const char *socket;
    const char *module; /* NULL: not sent (the server's default, module 0) */
    bool pretty;
};

/* One subcommand: its usage line, one-line help and handler (argv[0] is its name). */
struct ctl_client_sub {
    const char *name;
    const char *usage; /* after "modtwin ctl [options] " */
    const char *help;
    int (*fn)(struct ctl_client_conn *k, const struct ctl_client_opts *o, int argc, char **argv);
};

/* ---- connection ------------------------------------------------------------------------------ */

/* Connects to k->path with a reply deadline, so a hung server cannot hang a CI job. */
static int ctl_client_connect(struct ctl_client_conn *k)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct timeval tv = {.tv_sec = CTL_CLIENT_TIMEOUT};
    const char *path = k->path;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "modtwin ctl: socket path too long (at most %zu bytes): %s\n",
                sizeof(sa.sun_path) - 1, path);
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, path);
    k->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (k->fd < 0 || connect(k->fd, (struct sockaddr *)&sa, sizeof(sa))) {
        int rc = -errno;

        fprintf(stderr, "modtwin ctl: cannot connect to %s: %s\n", path, strerror(errno));
        if (k->fd >= 0)
            close(k->fd);
        k->fd = -1;
        return rc;
    }
    setsockopt(k->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return 0;
}

static void ctl_client_disconnect(struct ctl_client_conn *k)
{
    if (k->fd >= 0)
        close(k->fd);
    free(k->buf);
    k->fd = -1;
    k->buf = NULL;
}

/* The next line from the server (malloc'd, no '\n'), or NULL at EOF / error / time-out. */
static char *ctl_client_readline(struct ctl_client_conn *k)
{
    for (;;) {
        char *nl = k->len ? memchr(k->buf, '\n', k->len) : NULL;
        ssize_t n;

        if (nl) {
            size_t ll = (size_t)(nl - k->buf);
            char *line = malloc(ll + 1);

            if (!line)
                return NULL;
            memcpy(line, k->buf, ll);
            line[ll] = '\0';
            memmove(k->buf, nl + 1, k->len - ll - 1);
            k->len -= ll + 1;
            return line;
        }
        if (k->cap - k->len < 65536) {
            char *p = realloc(k->buf, k->cap + 65536 + k->cap / 2);

            if (!p)
                return NULL;
            k->buf = p;
            k->cap += 65536 + k->cap / 2;
        }
        n = read(k->fd, k->buf + k->len, k->cap - k->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            fprintf(stderr, "modtwin ctl: no reply within %d s\n", CTL_CLIENT_TIMEOUT);
            return NULL;
        }
        if (n <= 0)
            return NULL;
        k->len += (size_t)n;
    }
}

/* The whole buffer or an error; MSG_NOSIGNAL: a server gone away is an error, not SIGPIPE. */
static int ctl_client_write(int fd, const char *s, size_t len)
{
    while (len) {
        ssize_t n = send(fd, s, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -errno;
        s += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Sends one line and returns the parsed reply (event lines before it are skipped), or NULL. */
/* One request at a time: the first line that is not an event is its reply. */
static cJSON *ctl_client_line(struct ctl_client_conn *k, const char *line)
{
    char *text;
    cJSON *r;

    if (k->fd < 0 && ctl_client_connect(k))
        return NULL;
    if (ctl_client_write(k->fd, line, strlen(line)) || ctl_client_write(k->fd, "\n", 1)) {
        fprintf(stderr, "modtwin ctl: send: %s\n", strerror(errno));
        return NULL;
    }
    for (;;) {
        text = ctl_client_readline(k);
        if (!text) {
            fprintf(stderr, "modtwin ctl: the server closed the connection\n");
            return NULL;
        }
        r = cJSON_Parse(text);
        free(text);
        if (r && !cJSON_GetObjectItem(r, "event"))
            return r;
        cJSON_Delete(r);
    }
}

/* Completes req (id, cmd, module; takes ownership of args) and sends it. */
/* Builds {"id","cmd","module","args"}: -m is passed through as the server expects it. */
static cJSON *ctl_client_call(struct ctl_client_conn *k, const struct ctl_client_opts *o,
                              const char *cmd, cJSON *args)
{
    cJSON *req = cJSON_CreateObject(), *reply = NULL;
    char *text = NULL;
    long v;

    if (!req) {
        cJSON_Delete(args);
        return NULL;
    }
    cJSON_AddNumberToObject(req, "id", (double)k->next_id++);
    cJSON_AddStringToObject(req, "cmd", cmd);
    if (o->module && strcmp(o->module, "all") == 0)
        cJSON_AddStringToObject(req, "module", "all");
    else if (o->module && cli_parse_long(o->module, 0, 1000000, &v) == 0)
        cJSON_AddNumberToObject(req, "module", (double)v);
    if (args)
        cJSON_AddItemToObject(req, "args", args);
    text = cJSON_PrintUnformatted(req);
    if (text)
        reply = ctl_client_line(k, text);
    free(text);
    cJSON_Delete(req);
    return reply;
}

/* Reports an ok:false reply on stderr; returns the exit code for reply (0 or 1). */
static int ctl_client_check(const cJSON *reply)
{
    const cJSON *err = cJSON_GetObjectItem(reply, "error");

    if (!reply)
        return 1;
    if (cJSON_IsTrue(cJSON_GetObjectItem(reply, "ok")))
        return 0;
    fprintf(stderr, "modtwin ctl: %s: %s\n",
            cJSON_GetStringValue(cJSON_GetObjectItem(err, "field")) ?: "?",
            cJSON_GetStringValue(cJSON_GetObjectItem(err, "message")) ?: "error");
    return 1;
}

/* One JSON document per line on stdout (indented with --pretty), flushed for pipes. */
static void ctl_client_print(const struct ctl_client_opts *o, const cJSON *item)
{
    char *text = o->pretty ? cJSON_Print(item) : cJSON_PrintUnformatted(item);

    if (text)
        printf("%s\n", text);
    free(text);
    fflush(stdout);
}

/* The usual ending: print the result, exit 0, or report the error, exit 1. */
static int ctl_client_finish(const struct ctl_client_opts *o, cJSON *reply)
{
    int rc = ctl_client_check(reply);

    if (reply && !rc)
        ctl_client_print(o, cJSON_GetObjectItem(reply, "result"));
    cJSON_Delete(reply);
    return rc;
}

/* ---- option helpers -------------------------------------------------------------------------- */

/* A usage error naming the bad value; returns the usage exit code. */
static int ctl_client_bad(const char *sub, const char *what, const char *value)
{
    fprintf(stderr, "modtwin ctl %s: %s '%s' (see 'modtwin ctl %s --help')\n", sub, what,
            value ? value : "", sub);
    return 2;
}

/* Adds a number option to args; 0, or 2 (usage) when s is not a number. */
static int ctl_client_num(cJSON *args, const char *sub, const char *key, const char *s)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (end == s || *end || errno)
        return ctl_client_bad(sub, "not a number:", s);
    cJSON_AddNumberToObject(args, key, v);
    return 0;
}

/* getopt_long over a subcommand's argv; only --help unless longopts adds more. Returns the
 * option, -1 at the end, or '?' (usage error already printed by getopt). */
/* The caller reset optind to 0 so GNU getopt starts a fresh scan of the subcommand's argv. */
static int ctl_client_opt(int argc, char **argv, const char *shortopts,
                          const struct option *longopts)
{
    return getopt_long(argc, argv, shortopts, longopts, NULL);
}

/* ---- subcommands ----------------------------------------------------------------------------- */

static const struct option ctl_client_help_only[] = {{"help", no_argument, NULL, 'h'},
                                                     {NULL, 0, NULL, 0}};

/* status, files, flash, image: no arguments. */
/* The server checks the numbers and names; here only the shape of the command line. */
static int ctl_client_simple(struct ctl_client_conn *k, const struct ctl_client_opts *o, int argc,
                             char **argv)
{
    if (argc != 1)
        return ctl_client_bad(argv[0], "unexpected argument", argv[1]);
    return ctl_client_finish(o, ctl_client_call(k, o, argv[0], NULL));
}

/* power ACTION [--restore S]: the action word goes as typed so the server names bad ones. */
static int ctl_client_power(struct ctl_client_conn *k, const struct ctl_client_opts *o, int argc,
                            char **argv)
{
    static const struct option lo[] = {{"restore", required_argument, NULL, 'r'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    cJSON *args = cJSON_CreateObject();
    int c, rc = 0;

    while (!rc && (c = ctl_client_opt(argc, argv, "r:", lo)) != -1)
        rc = c == 'r' ? ctl_client_num(args, "power", "restore", optarg) : 2;
    if (!rc && optind != argc - 1)
        rc = ctl_client_bad("power", "expected one action (on, off, cut, reset, reboot), got",
                            optind < argc ? argv[argc - 1] : "");
    if (rc) {
        cJSON_Delete(args);
        return rc;
    }
    cJSON_AddStringToObject(args, "action", argv[optind]);
    return ctl_client_finish(o, ctl_client_call(k, o, "power", args));
}

/* fota FILE [--after-reboot]: start an update job on a package already in UFS. */
static int ctl_client_fota(struct ctl_client_conn *k, const struct ctl_client_opts *o, int argc,
                           char **argv)
{
    static const struct option lo[] = {{"after-reboot", no_argument, NULL, 'a'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    cJSON *args = cJSON_CreateObject();
    bool now = true;
    int c, rc = 0;

    while (!rc && (c = ctl_client_opt(argc, argv, "a", lo)) != -1) {
        if (c == 'a')
            now = false;
        else
            rc = 2;
    }
    if (!rc && optind != argc - 1)
        rc = ctl_client_bad("fota", "expected one UFS file name, got",
                            optind < argc ? argv[argc - 1] : "");
    if (rc) {
        cJSON_Delete(args);
        return rc;
    }
    cJSON_AddStringToObject(args, "file", argv[optind]);
    cJSON_AddBoolToObject(args, "now", now);
    return ctl_client_finish(o, ctl_client_call(k, o, "fota", args));
}

/* cut-at OP [--fault F] [--seed N] [--restore S] -> cut_at. */
static int ctl_client_cut_at(struct ctl_client_conn *k, const struct ctl_client_opts *o, int argc,
                             char **argv)
{
    static const struct option lo[] = {{"fault", required_argument, NULL, 'f'},
                                       {"seed", required_argument, NULL, 'S'},
                                       {"restore", required_argument, NULL, 'r'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    cJSON *args = cJSON_CreateObject();
    int c, rc = 0;

    while (!rc && (c = ctl_client_opt(argc, argv, "f:S:r:", lo)) != -1) {
        if (c == 'f')
            cJSON_AddStringToObject(args, "fault", optarg);
        else if (c == 'S')
            rc = ctl_client_num(args, "cut-at", "seed", optarg);
        else if (c == 'r')
            rc = ctl_client_num(args, "cut-at", "restore", optarg);
        else
            rc = 2;
    }
    if (!rc && optind != argc - 1)
        rc = ctl_client_bad("cut-at", "expected one operation number, got",
                            optind < argc ? argv[argc - 1] : "");
    if (!rc)
        rc = ctl_client_num(args, "cut-at", "op", argv[optind]);
    if (rc) {
        cJSON_Delete(args);
        return rc;
    }
    return ctl_client_finish(o, ctl_client_call(k, o, "cut_at", args));
}

/* network [--reg N] ...: the long option's val indexes lo[] to find the argument name. */
static int ctl_client_network(struct ctl_client_conn *k, const struct ctl_client_opts *o, int argc,
                              char **argv)
{
    static const struct option lo[] = {{"reg", required_argument, NULL, 1},
                                       {"rssi", required_argument, NULL, 2},
                                       {"ber", required_argument, NULL, 3},
                                       {"rsrq", required_argument, NULL, 4},
                                       {"rsrp", required_argument, NULL, 5},
                                       {"oper", required_argument, NULL, 6},
                                       {"ip", required_argument, NULL, 7},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    cJSON *args = cJSON_CreateObject();
    int c, rc = 0;

    while (!rc && (c = ctl_client_opt(argc, argv, "", lo)) != -1) {
        if (c >= 1 && c <= 5)
            rc = ctl_client_num(args, argv[0], lo[c - 1].name, optarg);
        else if (c == 6 || c == 7)
            cJSON_AddStringToObject(args, lo[c - 1].name, optarg);
        else
            rc = 2;
    }
    if (!rc && optind != argc)
        rc = ctl_client_bad("network", "unexpected argument", argv[optind]);
    if (rc) {
        cJSON_Delete(args);
        return rc;
    }
    return ctl_client_finish(o, ctl_client_call(k, o, "network", args));
}

/* sim present|absent (insert|remove as aliases). */
static int ctl_client_sim(struct ctl_client_conn *k, const struct ctl_client_opts *o, int argc,
                          char **argv)
{
    cJSON *args;
    bool present;

    if (ctl_client_opt(argc, argv, "", ctl_client_help_only) != -1)
        return 2;
    if (optind != argc - 1)
        return ctl_client_bad("sim", "expected present or absent, got",
                              optind < argc ? argv[argc - 1] : "");
    if (strcmp(argv[optind], "present") == 0 || strcmp(argv[optind], "insert") == 0)
        present = true;
    else if (strcmp(argv[optind], "absent") == 0 || strcmp(argv[optind], "remove") == 0)
        present = false;
    else
        return ctl_client_bad("sim", "expected present or absent, got", argv[optind]);
    args = cJSON_CreateObject();
    cJSON_AddBoolToObject(args, "present", present);
    return ctl_client_finish(o, ctl_client_call(k, o, "sim", args));
}

/* time [--speed F|max]: without --speed it only reports. */
static int ctl_client_time(struct ctl_client_conn *k, const struct ctl_client_opts *o, int argc,
                           char **argv)
{
    static const struct option lo[] = {{"speed", required_argument, NULL, 's'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    const char *speed = NULL;
    cJSON *args = NULL;
    int c;

    while ((c = ctl_client_opt(argc, argv, "s:", lo)) != -1) {
        if (c != 's')
            return 2;
        speed = optarg;
    }
    if (optind < argc)
        return ctl_client_bad("time", "unexpected argument", argv[optind]);
    if (speed) {
        args = cJSON_CreateObject();
        /* A number goes as a number, "max" (or anything else) as text for the server to judge. */
        if (strcmp(speed, "max") == 0 || ctl_client_num(args, "time", "speed", speed) != 0) {
            cJSON_DeleteItemFromObject(args, "speed");
            cJSON_AddStringToObject(args, "speed", speed);
        }
    }
    return ctl_client_finish(o, ctl_client_call(k, o, "time", args));
}

/* events [--kinds a,b]: subscribe, then copy event lines to stdout until EOF or a signal. */
static int ctl_client_events(struct ctl_client_conn *k, const struct ctl_client_opts *o, int argc,
                             char **argv)
{
    static const struct option lo[] = {{"kinds", required_argument, NULL, 'k'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    struct timeval none = {0};
    cJSON *args = NULL, *kinds, *reply;
    char *line, *save = NULL, *tok, *list;
    int c, rc;

    while ((c = ctl_client_opt(argc, argv, "k:", lo)) != -1) {
        if (c != 'k') {
            cJSON_Delete(args);
            return 2;
        }
        cJSON_Delete(args);
        args = cJSON_CreateObject();
        kinds = cJSON_AddArrayToObject(args, "kinds");
        list = strdup(optarg);
        for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
            cJSON_AddItemToArray(kinds, cJSON_CreateString(tok));
        free(list);
    }
    if (optind < argc) {
        cJSON_Delete(args);
        return ctl_client_bad("events", "unexpected argument", argv[optind]);
    }
    reply = ctl_client_call(k, o, "events", args);
    rc = ctl_client_check(reply);
    cJSON_Delete(reply);
    if (rc)
        return rc;
    /* From here on the stream has no deadline: events come when they come. */
    setsockopt(k->fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
    while ((line = ctl_client_readline(k)) != NULL) {
        printf("%s\n", line);
        fflush(stdout);
        free(line);
    }
    return 0;
}

/* push LOCAL NAME: reads LOCAL whole, then sends it in CTL_CLIENT_CHUNK pieces (a request line
 * is at most 1 MiB on the server). */
static int ctl_client_push(struct ctl_client_conn *k, const struct ctl_client_opts *o, int argc,
                           char **argv)
{
    static const struct option lo[] = {
        {"append", no_argument, NULL, 'a'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    unsigned char *data = NULL, *b64 = NULL;
    size_t len = 0, cap = 0, off = 0, olen;
    bool append = false;
    cJSON *args, *reply = NULL;
    FILE *in = NULL;
    int c, rc = 1;

    while ((c = ctl_client_opt(argc, argv, "a", lo)) != -1) {
        if (c != 'a')
            return 2;
        append = true;
    }
    if (optind != argc - 2)
        return ctl_client_bad("push", "expected LOCAL NAME, got",
                              optind < argc ? argv[optind] : "");
    in = strcmp(argv[optind], "-") == 0 ? stdin : fopen(argv[optind], "rb");
    if (!in) {
        fprintf(stderr, "modtwin ctl push: %s: %s\n", argv[optind], strerror(errno));
        return 1;
    }
    for (;;) {
        size_t n;

        if (cap - len < 65536) {
            unsigned char *p = realloc(data, cap * 2 + 65536);

            if (!p)
                goto out;
            data = p;
            cap = cap * 2 + 65536;
        }
        n = fread(data + len, 1, cap - len, in);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(in)) {
        fprintf(stderr, "modtwin ctl push: %s: read error\n", argv[optind]);
        goto out;
    }
    /* One request per chunk: the first truncates (unless --append), the others append. */
    do {
        size_t n = len - off < CTL_CLIENT_CHUNK ? len - off : CTL_CLIENT_CHUNK;

        mbedtls_base64_encode(NULL, 0, &olen, data + off, n);
        free(b64);
        b64 = malloc(olen + 1);
        if (!b64 || mbedtls_base64_encode(b64, olen + 1, &olen, data + off, n))
            goto out;
        b64[olen] = '\0';
        args = cJSON_CreateObject();
        cJSON_AddStringToObject(args, "name", argv[optind + 1]);
        cJSON_AddStringToObject(args, "data", (const char *)b64);
        cJSON_AddBoolToObject(args, "append", append || off > 0);
        cJSON_Delete(reply);
        reply = ctl_client_call(k, o, "push", args);
        rc = ctl_client_check(reply);
        off += n;
    } while (!rc && off < len);
    if (!rc) {
        /* One result for the whole file, not for its last chunk. */
        cJSON *res = cJSON_GetObjectItem(reply, "result");

        cJSON_ReplaceItemInObject(res, "written", cJSON_CreateNumber((double)len));
        ctl_client_print(o, res);
    }
out:
    if (in && in != stdin)
        fclose(in);
    cJSON_Delete(reply);
    free(data);
    free(b64);
    return rc;
}

/* pull NAME LOCAL: reads the file in CTL_CLIENT_CHUNK ranges until its size is reached. */
static int ctl_client_pull(struct ctl_client_conn *k, const struct ctl_client_opts *o, int argc,
                           char **argv)
{
    unsigned char *bytes = NULL;
    double size = 0, off = 0;
    cJSON *args, *reply = NULL, *res;
    const char *b64;
    size_t n = 0;
    FILE *out = NULL;
    int rc = 1;

    if (ctl_client_opt(argc, argv, "", ctl_client_help_only) != -1)
        return 2;
    if (optind != argc - 2)
        return ctl_client_bad("pull", "expected NAME LOCAL, got",
                              optind < argc ? argv[optind] : "");
    do {
        args = cJSON_CreateObject();
        cJSON_AddStringToObject(args, "name", argv[optind]);
        cJSON_AddNumberToObject(args, "offset", off);
        cJSON_AddNumberToObject(args, "length", CTL_CLIENT_CHUNK);
        cJSON_Delete(reply);
        reply = ctl_client_call(k, o, "pull", args);
        if ((rc = ctl_client_check(reply)) != 0)
            goto out;
        rc = 1;
        res = cJSON_GetObjectItem(reply, "result");
        size = cJSON_GetNumberValue(cJSON_GetObjectItem(res, "size"));
        b64 = cJSON_GetStringValue(cJSON_GetObjectItem(res, "data"));
        if (!b64)
            goto out;
        mbedtls_base64_decode(NULL, 0, &n, (const unsigned char *)b64, strlen(b64));
        free(bytes);
        bytes = malloc(n + 1);
        if (!bytes ||
            mbedtls_base64_decode(bytes, n + 1, &n, (const unsigned char *)b64, strlen(b64)))
            goto out;
        /* Opened only once the file is known to exist: a failed pull leaves LOCAL alone. */
        if (!out)
            out = strcmp(argv[optind + 1], "-") == 0 ? stdout : fopen(argv[optind + 1], "wb");
        if (!out || fwrite(bytes, 1, n, out) != n) {
            fprintf(stderr, "modtwin ctl pull: %s: %s\n", argv[optind + 1], strerror(errno));
            goto out;
        }
        off += (double)n;
    } while (n > 0 && off < size);
    rc = 0;
    if (out != stdout) {
        cJSON *r = cJSON_CreateObject();

        cJSON_AddStringToObject(r, "name", argv[optind]);
        cJSON_AddNumberToObject(r, "size", size);
        cJSON_AddStringToObject(r, "local", argv[optind + 1]);
        ctl_client_print(o, r);
        cJSON_Delete(r);
    }
out:
    if (out && out != stdout && fclose(out) && !rc) {
        fprintf(stderr, "modtwin ctl pull: %s: %s\n", argv[optind + 1], strerror(errno));
        rc = 1;
    }
    if (out == stdout)
        fflush(stdout);
    cJSON_Delete(reply);
    free(bytes);
    return rc;
}

/* raw JSON: for trying requests by hand and for testing the server's error replies. */
static int ctl_client_raw(struct ctl_client_conn *k, const struct ctl_client_opts *o, int argc,
                          char **argv)
{
    cJSON *req, *reply, *cmd;
    bool events;
    char *line;
    int rc;

    if (ctl_client_opt(argc, argv, "", ctl_client_help_only) != -1)
        return 2;
    if (optind != argc - 1)
        return ctl_client_bad("raw", "expected one JSON request, got",
                              optind < argc ? argv[argc - 1] : "");
    req = cJSON_Parse(argv[optind]);
    cmd = cJSON_GetObjectItem(req, "cmd");
    events = cJSON_IsString(cmd) && strcmp(cmd->valuestring, "events") == 0;
    cJSON_Delete(req);
    /* Sent as typed: the server's answer to a bad request is the point of raw. */
    reply = ctl_client_line(k, argv[optind]);
    if (!reply)
        return 1;
    rc = cJSON_IsTrue(cJSON_GetObjectItem(reply, "ok")) ? 0 : 1;
    ctl_client_print(o, reply);
    cJSON_Delete(reply);
    if (!rc && events) {
        struct timeval none = {0};

        setsockopt(k->fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
        while ((line = ctl_client_readline(k)) != NULL) {
            printf("%s\n", line);
            fflush(stdout);
            free(line);
        }
    }
    return rc;
}
/* cut-on URC [--restore S] -> cut_on ("" disarms). */
static int ctl_client_cut_on(struct ctl_client_conn *k, const struct ctl_client_opts *o, int argc,
                             char **argv)
{
    static const struct option lo[] = {{"restore", required_argument, NULL, 'r'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    cJSON *args = cJSON_CreateObject();
    int c, rc = 0;

    while (!rc && (c = ctl_client_opt(argc, argv, "r:", lo)) != -1)
        rc = c == 'r' ? ctl_client_num(args, "cut-on", "restore", optarg) : 2;
    if (!rc && optind != argc - 1)
        rc = ctl_client_bad("cut-on", "expected the start of one URC, got",
                            optind < argc ? argv[argc - 1] : "");
    if (rc) {
        cJSON_Delete(args);
        return rc;
    }
    cJSON_AddStringToObject(args, "urc", argv[optind]);
    return ctl_client_finish(o, ctl_client_call(k, o, "cut_on", args));
}

/* Usage lines double as the reference in --help; keep them in step with docs/control-api.md. */
static const struct ctl_client_sub ctl_client_subs[] = {
    {"status", "status", "the module's power, identity, ports, settings, flash counters, time",
     ctl_client_simple},
    {"power", "power on|off|cut|reset|reboot [--restore SECONDS]",
     "power action; --restore (with cut) powers on again after SECONDS of virtual time",
     ctl_client_power},
    {"cut-at",
     "cut-at OP [--fault before|after|torn-prog|torn-erase|skip-erase] [--seed N] "
     "[--restore SECONDS]",
     "cut the power at the OP-th flash program/erase from now", ctl_client_cut_at},
    {"cut-on", "cut-on URC [--restore SECONDS]",
     "cut the power as a URC starting with URC is about to go out (\"\" disarms)",
     ctl_client_cut_on},
    {"network",
     "network [--reg 0-5] [--rssi 0-31|99] [--ber 0-7|99] [--rsrq 0-34|255] "
     "[--rsrp 0-97|255] [--oper NAME] [--ip ADDR]",
     "change what the network grants; without options prints the current values",
     ctl_client_network},
    {"sim", "sim present|absent", "insert or remove the SIM card", ctl_client_sim},
    {"time", "time [--speed F|max]", "print (or change) the virtual clock's time and speed",
     ctl_client_time},
    {"events", "events [--kinds urc,rx,tx,state,flash]",
     "print event lines as they happen until the server closes or you stop it", ctl_client_events},
    {"push", "push LOCAL NAME [--append]", "copy a local file (- = stdin) into the module's UFS",
     ctl_client_push},
    {"pull", "pull NAME LOCAL", "copy a UFS file to a local file (- = stdout)", ctl_client_pull},
    {"files", "files", "list the UFS files with free and total bytes", ctl_client_simple},
    {"fota", "fota FILE [--after-reboot]",
     "start a firmware update from a package in UFS (at once, or after a reboot)",
     ctl_client_fota},
    {"image", "image", "the running firmware image: revision, project, baseline, digest",
     ctl_client_simple},
    {"flash", "flash", "the flash counters (ops, progs, erases, violations, max_wear)",
     ctl_client_simple},
    {"raw", "raw 'JSON'", "send one request as typed; prints the whole reply", ctl_client_raw},
};

#define CTL_CLIENT_NSUBS (sizeof(ctl_client_subs) / sizeof(ctl_client_subs[0]))

static void ctl_client_sub_help(const struct ctl_client_sub *s, FILE *out)
{
    fprintf(out, "usage: modtwin ctl [-s SOCK] [-m N|all] %s\n  %s\n", s->usage, s->help);
}

static void ctl_client_usage(FILE *out)
{
    fprintf(out, "usage: modtwin ctl [options] COMMAND [args]\n"
                 "  -s, --socket PATH   control socket (default: $MODTWIN_CONTROL)\n"
                 "  -m, --module N|all  module index (default 0) or every module\n"
                 "  -p, --pretty        indent the JSON output\n"
                 "  -h, --help          this text ('modtwin ctl COMMAND --help' for one command)\n"
                 "commands:\n");
    for (size_t i = 0; i < CTL_CLIENT_NSUBS; i++)
        fprintf(out, "  %-9s %s\n", ctl_client_subs[i].name, ctl_client_subs[i].help);
    fprintf(out, "Prints the reply's result as JSON. Exit 0 ok, 1 refused or failed, 2 usage.\n"
                 "Reference: docs/control-api.md\n");
}

/* Global options, then the subcommand; --help anywhere after the subcommand shows its help
 * without needing a socket. */
int ctl_client_main(int argc, char **argv)
{
    static const struct option opts[] = {{"socket", required_argument, NULL, 's'},
                                         {"module", required_argument, NULL, 'm'},
                                         {"pretty", no_argument, NULL, 'p'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct ctl_client_opts o = {.socket = getenv("MODTWIN_CONTROL")};
    const struct ctl_client_sub *sub = NULL;
    struct ctl_client_conn k;
    long v;
    int c, rc;

    optind = 0; /* a fresh GNU getopt scan; '+' stops at the subcommand */
    while ((c = getopt_long(argc, argv, "+s:m:ph", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            o.socket = optarg;
            break;
        case 'm':
            if (strcmp(optarg, "all") != 0 && cli_parse_long(optarg, 0, 1000000, &v)) {
                fprintf(stderr, "modtwin ctl: --module '%s': expected an index >= 0 or 'all'\n",
                        optarg);
                return 2;
            }
            o.module = optarg;
            break;
        case 'p':
            o.pretty = true;
            break;
        case 'h':
            ctl_client_usage(stdout);
            return 0;
        default:
            ctl_client_usage(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        ctl_client_usage(stderr);
        return 2;
    }
    for (size_t i = 0; i < CTL_CLIENT_NSUBS; i++)
        if (strcmp(argv[optind], ctl_client_subs[i].name) == 0 ||
            (strcmp(argv[optind], "cut_at") == 0 && strcmp(ctl_client_subs[i].name, "cut-at") == 0) ||
            (strcmp(argv[optind], "cut_on") == 0 && strcmp(ctl_client_subs[i].name, "cut-on") == 0))
            sub = &ctl_client_subs[i];
    if (!sub) {
        fprintf(stderr, "modtwin ctl: unknown command '%s'\n", argv[optind]);
        ctl_client_usage(stderr);
        return 2;
    }
    argc -= optind;
    argv += optind;
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            ctl_client_sub_help(sub, stdout);
            return 0;
        }
    }
    if (!o.socket || !*o.socket) {
        fprintf(stderr, "modtwin ctl: no socket: give -s PATH or set MODTWIN_CONTROL\n");
        return 2;
    }
    memset(&k, 0, sizeof(k));
    k.path = o.socket;
    k.fd = -1;
    k.next_id = 1;
    optind = 0;
    rc = sub->fn(&k, &o, argc, argv);
    ctl_client_disconnect(&k);
    return rc;
}
