/*
 * The radio and the SIM slot as the firmware sees them: what the network world (sim/) decided
 * about registration, signal and the address a context gets, and whether a card is inserted.
 * The world writes these through radio_set(); the firmware reads them and is told of changes.
 */
#ifndef MODTWIN_HAL_RADIO_H
#define MODTWIN_HAL_RADIO_H

#include <stdbool.h>

/* 3GPP 27.007 <stat> of +CREG / +CEREG. */
enum radio_reg {
    RADIO_REG_NONE = 0,
    RADIO_REG_HOME = 1,
    RADIO_REG_SEARCHING = 2,
    RADIO_REG_DENIED = 3,
    RADIO_REG_UNKNOWN = 4,
    RADIO_REG_ROAMING = 5,
};

struct radio;
typedef void radio_change_fn(void *ctx, const struct radio *r);

struct radio {
    bool sim_present;
    enum radio_reg reg; /* what the network grants while the module asks for service */
    int rssi, ber;      /* +CSQ: 0-31 or 99, 0-7 or 99 */
    int rscp, ecno, rsrq, rsrp; /* +CESQ: 255 = not known */
    int act;            /* access technology of +COPS / +CREG: 7 = E-UTRAN, 9 = NB-IoT */
    char oper[32];      /* operator name */
    char ip[48];        /* address a context gets */
    radio_change_fn *changed;
    void *ctx;
};

/* A registered cell with fair signal and the given address. */
void radio_defaults(struct radio *r, int act, const char *ip);

/* Copies the world-visible fields of from into r (keeps r's callback) and tells the firmware. */
void radio_set(struct radio *r, const struct radio *from);

#endif
