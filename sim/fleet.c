/*
 * Fleet: creates the modules of one run, routes their events to the trace file and the control
 * socket, and shuts them down in order on SIGINT/SIGTERM. Not here: what a module does
 * (firmware/) or what the control commands mean (sim/ctl_cmd.c).
 */
#define _XOPEN_SOURCE 700
#include "sim/fleet.h"

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fleet_mkdirs(const char *path)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);

    if (n >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0755) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* "<link>" for one module; "%d" replaced by the index, or the index appended in a fleet. */
static int fleet_link_name(char *out, size_t cap, const char *link, int index, int count)
{
    const char *pct = strstr(link, "%d");
    int n;

    if (pct)
        n = snprintf(out, cap, "%.*s%d%s", (int)(pct - link), link, index, pct + 2);
    else if (count > 1)
        n = snprintf(out, cap, "%s%d", link, index);
    else
        n = snprintf(out, cap, "%s", link);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* Writes bytes to the trace with C escapes, so the trace stays one line per event. */
static void fleet_trace_bytes(FILE *t, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c == '\r')
            fputs("\\r", t);
        else if (c == '\n')
            fputs("\\n", t);
        else if (c == '\\')
            fputs("\\\\", t);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(t, "\\x%02x", c);
        else
            fputc(c, t);
    }
}

static void fleet_event(void *ctx, struct modem *m, const struct modem_event *ev)
{
    struct fleet *f = ctx;

    if (f->trace) {
        static const char *const kinds[] = {"urc", "rx", "tx", "state", "flash", "fota"};
        const char *port = ev->port >= 0 ? m->ports[ev->port].kind : "-";
        fprintf(f->trace, "%.6f m%d %s %s ", vclock_now(&f->clock), m->index, port,
                kinds[ev->kind]);
        if (ev->kind == MODEM_EV_STATE)
            fputs(ev->state, f->trace);
        else if (ev->kind == MODEM_EV_FLASH)
            fprintf(f->trace, "ops=%llu", (unsigned long long)flash_ops(&m->flash));
        else
            fleet_trace_bytes(f->trace, ev->data, ev->len);
        fputc('\n', f->trace);
    }
    if (f->ctl_open)
        ctl_event(&f->ctl, m, ev);
}

static void fleet_break_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static void fleet_signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    fleet_shutdown(w->data);
}

void fleet_shutdown(struct fleet *f)
{
    /* A timer rather than ev_break at once: the modules' last lines still reach the host. */
    static const ev_tstamp drain = 0.05;
    ev_timer *t = &f->stop_timer;

    if (f->stopping)
        return;
    f->stopping = true;
    for (int i = 0; i < f->count; i++)
        modem_power_off(&f->modems[i]);
    ev_timer_init(t, fleet_break_cb, drain, 0);
    ev_timer_start(f->loop, t);
}

struct modem *fleet_modem(struct fleet *f, int i)
{
    return i >= 0 && i < f->count ? &f->modems[i] : NULL;
}

int fleet_init(struct fleet *f, struct ev_loop *loop, const struct fleet_opts *o)
{
    char dir[PATH_MAX + 16], link[PATH_MAX];
    int rc;

    memset(f, 0, sizeof(*f));
    f->loop = loop;
    f->model = o->model;
    f->count = o->count;
    vclock_init(&f->clock, loop, o->speed);
    rc = pty_hub_init(&f->hub, loop);
    if (rc)
        return rc;
    f->hub_ok = true;
    if (o->map)
        f->map = *o->map;
    if (o->image) {
        f->factory.img = malloc(o->image_len ? o->image_len : 1);
        if (!f->factory.img)
            return -ENOMEM;
        memcpy(f->factory.img, o->image, o->image_len);
        f->factory.len = o->image_len;
    }
    if (o->state_dir) {
        if (strlen(o->state_dir) >= sizeof(f->dir))
            return -ENAMETOOLONG;
        strcpy(f->dir, o->state_dir);
        rc = fleet_mkdirs(f->dir);
        if (rc)
            return rc;
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(f->dir, sizeof(f->dir), "%s/modtwin.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(f->dir))
            return -errno;
        f->temp_dir = true;
    }
    if (o->trace) {
        f->trace = fopen(o->trace, "a");
        if (!f->trace)
            return -errno;
        setvbuf(f->trace, NULL, _IOLBF, 0);
    }
    f->modems = calloc((size_t)f->count, sizeof(*f->modems));
    if (!f->modems)
        return -ENOMEM;
    for (int i = 0; i < f->count; i++) {
        if (f->count > 1)
            snprintf(dir, sizeof(dir), "%s/%d", f->dir, i);
        else
            snprintf(dir, sizeof(dir), "%s", f->dir);
        rc = fleet_mkdirs(dir);
        if (rc)
            return rc;
        if (o->link) {
            rc = fleet_link_name(link, sizeof(link), o->link, i, f->count);
            if (rc)
                return rc;
        }
        rc = modem_init(&f->modems[i], o->model, i, dir, o->link ? link : NULL, &f->hub, &f->clock);
        if (rc)
            return rc;
        f->modems[i].on_event = fleet_event;
        f->modems[i].event_ctx = f;
        if (o->policy >= 0)
            f->modems[i].policy = (enum fota_policy)o->policy;
        f->modems[i].factory = &f->factory;
        f->modems[i].map = &f->map;
        f->modems[i].xenv.map = &f->map;
        f->modems[i].ca_file = o->ca;
        f->modems[i].pacing = o->pacing;
    }
    if ((size_t)snprintf(f->control, sizeof(f->control), "%s",
                         o->control ? o->control : "") >= sizeof(f->control))
        return -ENAMETOOLONG;
    if (!o->control &&
        (size_t)snprintf(f->control, sizeof(f->control), "%s/control.sock", f->dir) >=
            sizeof(f->control))
        return -ENAMETOOLONG;
    rc = ctl_open(&f->ctl, f, f->control);
    if (rc)
        return rc;
    f->ctl_open = true;
    ev_signal_init(&f->sigint, fleet_signal_cb, SIGINT);
    ev_signal_init(&f->sigterm, fleet_signal_cb, SIGTERM);
    f->sigint.data = f->sigterm.data = f;
    ev_signal_start(loop, &f->sigint);
    ev_signal_start(loop, &f->sigterm);
    return 0;
}

void fleet_power_on(struct fleet *f)
{
    for (int i = 0; i < f->count; i++)
        modem_power_on(&f->modems[i]);
}

void fleet_print_ports(const struct fleet *f, FILE *out)
{
    for (int i = 0; i < f->count; i++) {
        const struct modem *m = &f->modems[i];
        for (unsigned j = 0; j < m->nports; j++) {
            const struct modem_port *p = &m->ports[j];
            if (!p->pty_open)
                continue;
            fprintf(out, "%d %s %s%s%s\n", i, p->kind, p->pty.name, p->link[0] ? " " : "",
                    p->link);
        }
    }
}

static int fleet_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void fleet_free(struct fleet *f)
{
    if (f->ctl_open)
        ctl_close(&f->ctl);
    f->ctl_open = false;
    if (f->modems)
        for (int i = 0; i < f->count; i++)
            modem_free(&f->modems[i]);
    free(f->modems);
    f->modems = NULL;
    model_image_free(&f->factory);
    if (f->hub_ok)
        pty_hub_free(&f->hub);
    f->hub_ok = false;
    if (f->loop) {
        ev_signal_stop(f->loop, &f->sigint);
        ev_signal_stop(f->loop, &f->sigterm);
    }
    if (f->trace)
        fclose(f->trace);
    f->trace = NULL;
    if (f->temp_dir)
        nftw(f->dir, fleet_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}
