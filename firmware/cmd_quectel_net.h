/*
 * Quectel PDP-context and configuration commands (EC200A-CN, EC200N-CN, BENCH-96M): AT+QICSGP,
 * AT+QIACT, AT+QIDEACT and the AT+QCFG items "fota/cid" and "usbifc", in the forms of Quectel's
 * LTE Standard(A) TCP/IP and general AT manuals, as the DFOTA guide (seed 002 §3.3.1) uses them.
 * docs/models/quectel.md shows each as it runs on modtwin.
 */
#ifndef MODTWIN_FIRMWARE_CMD_QUECTEL_NET_H
#define MODTWIN_FIRMWARE_CMD_QUECTEL_NET_H

#include "firmware/at_engine.h"

/*
 * The Quectel TCP/IP codes (+CME ERROR: <err>) these commands use, for a set form that is well
 * formed but cannot be done now. A malformed one (a value out of range, a missing field) is a
 * plain ERROR, as on the modules.
 */
enum {
    CMD_QUECTEL_NET_E_OPEN_PDP = 561,    /* open PDP context failed: not attached, Non-IP */
    CMD_QUECTEL_NET_E_NOT_ALLOWED = 572, /* operation not allowed: AT+QICSGP on an active one */
    CMD_QUECTEL_NET_E_NO_APN = 573,      /* APN not configured: AT+QIACT on an unset context */
};

extern const struct at_table cmd_quectel_net_table;

/* The +CMEE=2 text of one of the codes above, or NULL for any other code. Pure. */
const char *cmd_quectel_net_errtext(int code);

#endif
