/*
 * A fleet: N module instances of one model on one libev loop, one virtual clock, one control
 * socket and one trace file. Module n lives in its own state dir (DIR itself for one module,
 * DIR/<n>/ for several) and on its own PTYs.
 */
#ifndef MODTWIN_SIM_FLEET_H
#define MODTWIN_SIM_FLEET_H

#include <ev.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>

#include "firmware/modem.h"
#include "hal/vclock.h"
#include "sim/ctl.h"

struct fleet_opts {
    const struct model *model;
    int count;
    const char *state_dir; /* NULL: a temporary one, removed at exit */
    const char *link;      /* NULL: no symlinks; "%d" is replaced by the index */
    const char *control;   /* NULL: <state-dir>/control.sock */
    const char *trace;     /* NULL: no trace */
    double speed;          /* 0 = max */
    const uint8_t *image;  /* --image bytes (copied), or NULL: the model's factory image */
    size_t image_len;
    const struct xfer_map *map; /* --map entries, or NULL */
    const char *ca;        /* --ca trust store, or NULL */
    bool pacing;           /* --pacing: UARTs take and send bytes no faster than their baud */
    int policy;            /* enum fota_policy, or -1 for the model's */
};

struct fleet {
    struct ev_loop *loop;
    struct vclock clock;
    struct pty_hub hub;
    bool hub_ok;
    struct xfer_map map; /* shared by every module's transfers */
    struct model_image factory; /* what new state dirs are provisioned with, made once */
    const struct model *model;
    struct modem *modems;
    int count;
    char dir[PATH_MAX];
    bool temp_dir;
    char control[PATH_MAX];
    FILE *trace;
    struct ctl ctl;
    bool ctl_open;
    ev_signal sigint, sigterm;
    ev_timer stop_timer;
    bool stopping;
};

/* Creates the modules (powered off), the control socket and the trace. 0 or -errno. */
int fleet_init(struct fleet *f, struct ev_loop *loop, const struct fleet_opts *o);

/* Powers every module on. */
void fleet_power_on(struct fleet *f);

/* Prints one line per port: "<module> <port> <pty> [<link>]". */
void fleet_print_ports(const struct fleet *f, FILE *out);

/* Orderly power-off of every module, then the loop stops (SIGINT/SIGTERM do this). */
void fleet_shutdown(struct fleet *f);

/* Releases everything; removes a temporary state dir. */
void fleet_free(struct fleet *f);

/* The module at index i, or NULL. */
struct modem *fleet_modem(struct fleet *f, int i);

#endif
