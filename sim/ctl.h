/*
 * The control API: a UNIX stream socket on the fleet's loop, one JSON object per line each way
 * (request -> reply; after `events` a client also receives a stream of module events).
 * docs/control-api.md is the user-facing reference of every command, its arguments and replies.
 *
 * Split: ctl.c owns the socket, the clients, their buffers and the event fan-out; ctl_cmd.c owns
 * the request -> reply mapping (ctl_handle and the command table) and touches no fd.
 */
#ifndef MODTWIN_SIM_CTL_H
#define MODTWIN_SIM_CTL_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

#define CTL_LINE_MAX    (1u << 20) /* a request line longer than this drops the client */
#define CTL_OUT_MAX     (8u << 20) /* pending output beyond this drops the client */
#define CTL_CLIENTS_MAX 64         /* further connections are closed at once */

/* Event kinds a client can subscribe to: bit (1u << enum modem_event_kind). */
#define CTL_EV_ALL 0x3fu

struct fleet;
struct modem;
struct modem_event;
struct ctl_client; /* one connection; private to ctl.c */

struct ctl {
    struct fleet *fleet;
    int fd; /* listening socket, -1 when closed */
    ev_io accept_w;
    struct ctl_client *clients; /* singly linked, newest first */
    char path[108];             /* sizeof(sun_path) */
    unsigned nclients;
    bool open;
};

/*
 * Creates the socket at path (mode 0600) and starts accepting on f->loop. A stale socket file is
 * removed first; a live one (something accepts on it) gives -EADDRINUSE and a path that exists
 * but is not a socket -EEXIST (never unlinked). Returns 0 or -errno (-ENAMETOOLONG for a path
 * that does not fit sun_path); on error nothing is left open. Not from a ctl callback.
 */
int ctl_open(struct ctl *c, struct fleet *f, const char *path);

/* Closes every client (pending output is discarded), the socket, and unlinks it. Safe on a
 * zeroed struct and twice. Must not be called from inside ctl_handle. */
void ctl_close(struct ctl *c);

/*
 * Fans one module event out to the subscribed clients as one JSON line (shape in
 * docs/control-api.md). The fleet calls it from its modem_event_fn for every event of every
 * module; it may be called from anywhere on the loop thread, also while ctl_handle runs (the
 * event then reaches the client before the reply of the request that caused it). Never blocks:
 * lines are queued and written when the socket is writable; a client whose queue passes
 * CTL_OUT_MAX is dropped. ev->data is copied; nothing is kept after the call.
 */
void ctl_event(struct ctl *c, const struct modem *m, const struct modem_event *ev);

/*
 * One request line (len bytes, no '\n', need not be NUL-terminated) -> a malloc'd reply line
 * without '\n' that the caller frees. `from` is the asking client, or NULL (tests, fuzzing):
 * then `events` still replies but subscribes nothing. Any byte string is acceptable input; the
 * reply names the bad field. Returns NULL only when memory runs out. Runs on the loop thread;
 * commands act at once (a power cut marks the module dead before the reply is built).
 */
char *ctl_handle(struct ctl *c, const char *line, size_t len, struct ctl_client *from);

/* ---- between ctl.c and ctl_cmd.c (not for other callers) ------------------------------------ */

/* Sets what cl receives: kinds is a CTL_EV_ALL subset (0 = nothing), module a module index or
 * -1 for every module. */
void ctl_subscribe(struct ctl_client *cl, unsigned kinds, int module);

/* The kinds cl is subscribed to, and the next client in c->clients or NULL (tests). */
unsigned ctl_subscribed(const struct ctl_client *cl);
struct ctl_client *ctl_client_next(const struct ctl_client *cl);

/* Event kind name ("urc", "rx", "tx", "state", "flash") by enum modem_event_kind, or NULL. */
const char *ctl_event_name(unsigned kind);

#endif
