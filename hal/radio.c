/*
 * Radio view: plain data plus a change notification. The firmware derives what it reports
 * (registration only with a card, CFUN=1 and a granted cell) from these inputs.
 */
#include "hal/radio.h"

#include <stdio.h>
#include <string.h>

void radio_defaults(struct radio *r, int act, const char *ip)
{
    radio_change_fn *fn = r->changed;
    void *ctx = r->ctx;

    memset(r, 0, sizeof(*r));
    r->changed = fn;
    r->ctx = ctx;
    r->sim_present = true;
    r->reg = RADIO_REG_HOME;
    r->rssi = 23;
    r->ber = 99;
    r->rscp = 255;
    r->ecno = 255;
    r->rsrq = 23;
    r->rsrp = 49;
    r->act = act;
    snprintf(r->oper, sizeof(r->oper), "%s", "CHINA MOBILE");
    snprintf(r->ip, sizeof(r->ip), "%s", ip);
}

void radio_set(struct radio *r, const struct radio *from)
{
    radio_change_fn *fn = r->changed;
    void *ctx = r->ctx;

    *r = *from;
    r->changed = fn;
    r->ctx = ctx;
    if (fn)
        fn(ctx, r);
}
