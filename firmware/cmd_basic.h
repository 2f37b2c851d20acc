/*
 * The V.25ter / 3GPP 27.007 commands every model has (SPEC §1.1): identity, echo and result
 * code settings, +CMEE, SIM and registration state, signal, contexts, port settings.
 */
#ifndef MODTWIN_FIRMWARE_CMD_BASIC_H
#define MODTWIN_FIRMWARE_CMD_BASIC_H

#include "firmware/at_engine.h"
#include "firmware/model.h"

struct modem;

extern const struct at_table cmd_basic_table;

/* +CMEE=2 text of a 27.007 code, or NULL. */
const char *cmd_basic_errtext(int code);

/* Prints one boot line of the model's list, in the module's present state. */
void cmd_basic_boot_line(struct modem *m, enum model_boot line);

/* Unsolicited +CREG / +CEREG for a new registration state, per the n of each. */
void cmd_basic_reg_urcs(struct modem *m, int stat);

#endif
