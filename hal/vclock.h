/*
 * Virtual clock: the one time base of a fleet. The documents' waits (boot time, poll periods,
 * time-outs, simulated apply durations) run on it; `--speed F` makes it run F times faster than
 * real time, and speed 0 ("max") lets a due timer fire as soon as the loop is idle.
 * Socket-level time-outs of libcurl and libcoap do not use it: they stay real time.
 */
#ifndef MODTWIN_HAL_VCLOCK_H
#define MODTWIN_HAL_VCLOCK_H

#include <ev.h>
#include <stdbool.h>

struct vclock {
    struct ev_loop *loop;
    double speed;     /* > 0: factor over real time; 0: max (timers fire when the loop is idle) */
    double base_real; /* ev_now() when the speed was last set */
    double base_virt; /* virtual time at that moment */
    double jumped;    /* at max speed: virtual time reached by fired timers */
};

struct vtimer;
typedef void vtimer_fn(void *ctx);

struct vtimer {
    ev_timer w;
    struct vclock *clock;
    vtimer_fn *fn;
    void *ctx;
    double due; /* virtual time at which it fires */
};

/* Starts the clock at virtual time 0. speed 0 means max. */
void vclock_init(struct vclock *c, struct ev_loop *loop, double speed);

/* Virtual seconds since vclock_init. */
double vclock_now(const struct vclock *c);

/* Changes the speed from now on; timers already running keep their real-time schedule. */
void vclock_set_speed(struct vclock *c, double speed);

/* Parses "max" or a positive factor; 0 on success, -EINVAL otherwise. */
int vclock_parse_speed(const char *s, double *speed);

/* Arms t to call fn(ctx) after `after` virtual seconds; restarting a running timer is allowed. */
void vtimer_start(struct vtimer *t, struct vclock *c, double after, vtimer_fn *fn, void *ctx);
void vtimer_stop(struct vtimer *t);
bool vtimer_active(const struct vtimer *t);

#endif
