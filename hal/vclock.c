/*
 * Virtual clock over libev. Virtual time is a linear function of ev_now() at a finite speed; at
 * speed "max" it advances only when a timer fires (to that timer's due time), so a run at max
 * speed prints the same virtual time stamps as a run in real time would.
 * Not here: wall-clock dates (the module has no RTC model yet).
 */
#include "hal/vclock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void vclock_init(struct vclock *c, struct ev_loop *loop, double speed)
{
    memset(c, 0, sizeof(*c));
    c->loop = loop;
    c->speed = speed;
    c->base_real = ev_now(loop);
}

double vclock_now(const struct vclock *c)
{
    if (c->speed <= 0)
        return c->base_virt + c->jumped;
    return c->base_virt + (ev_now(c->loop) - c->base_real) * c->speed;
}

void vclock_set_speed(struct vclock *c, double speed)
{
    double now = vclock_now(c);

    c->base_virt = now;
    c->jumped = 0;
    c->base_real = ev_now(c->loop);
    c->speed = speed;
}

int vclock_parse_speed(const char *s, double *speed)
{
    char *end;
    double v;

    if (strcmp(s, "max") == 0) {
        *speed = 0;
        return 0;
    }
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0) || v > 1e9)
        return -EINVAL;
    *speed = v;
    return 0;
}

static void vtimer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct vtimer *t = (struct vtimer *)w;
    struct vclock *c = t->clock;

    (void)loop;
    (void)revents;
    /* At max speed the virtual clock jumps to the due time of what fires. */
    if (c->speed <= 0 && c->base_virt + c->jumped < t->due)
        c->jumped = t->due - c->base_virt;
    t->fn(t->ctx);
}

void vtimer_start(struct vtimer *t, struct vclock *c, double after, vtimer_fn *fn, void *ctx)
{
    double real;

    if (ev_is_active(&t->w))
        ev_timer_stop(c->loop, &t->w);
    if (after < 0)
        after = 0;
    t->clock = c;
    t->fn = fn;
    t->ctx = ctx;
    t->due = vclock_now(c) + after;
    /* At max speed a virtual second costs a microsecond of real time: enough for libev to keep
     * timers in due order, small enough that nothing waits. */
    real = c->speed > 0 ? after / c->speed : after * 1e-6;
    ev_timer_init(&t->w, vtimer_cb, real, 0);
    ev_timer_start(c->loop, &t->w);
}

void vtimer_stop(struct vtimer *t)
{
    if (t->clock && ev_is_active(&t->w))
        ev_timer_stop(t->clock->loop, &t->w);
}

bool vtimer_active(const struct vtimer *t)
{
    return t->clock && ev_is_active(&t->w);
}
