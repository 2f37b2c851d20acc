/*
 * Quectel FILE commands on the module's UFS area (EC200A-CN, EC200N-CN, BENCH-96M): AT+QFLDS,
 * AT+QFLST, AT+QFDEL, AT+QFUPL and AT+QFDWL, the way hosts such as fwupd's DFOTA updater use them
 * to put an update package into UFS. docs/models/quectel.md shows each as it runs on modtwin.
 */
#ifndef MODTWIN_FIRMWARE_CMD_QUECTEL_FILE_H
#define MODTWIN_FIRMWARE_CMD_QUECTEL_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "firmware/at_engine.h"

/* Quectel FILE error codes (+CME ERROR: <err>), as Quectel's own BG95 SDK names them. */
enum {
    CMD_QUECTEL_FILE_E_INPUT = 400,     /* invalid input value */
    CMD_QUECTEL_FILE_E_NOT_FOUND = 405, /* file not found */
    CMD_QUECTEL_FILE_E_NAME = 406,      /* invalid file name */
    CMD_QUECTEL_FILE_E_EXISTS = 407,    /* file already existed */
    CMD_QUECTEL_FILE_E_WRITE = 409,     /* fail to write the file */
    CMD_QUECTEL_FILE_E_OPEN = 410,      /* fail to open the file */
    CMD_QUECTEL_FILE_E_READ = 411,      /* fail to read the file */
    CMD_QUECTEL_FILE_E_MAX_FILES = 413, /* reach the max number of files */
    CMD_QUECTEL_FILE_E_LIST = 417,      /* fail to list the file */
    CMD_QUECTEL_FILE_E_DELETE = 418,    /* fail to delete the file */
    CMD_QUECTEL_FILE_E_DISK_INFO = 419, /* fail to get disk info */
    CMD_QUECTEL_FILE_E_NO_SPACE = 420,  /* no space */
    CMD_QUECTEL_FILE_E_TIMEOUT = 421,   /* time out */
    CMD_QUECTEL_FILE_E_TOO_LARGE = 423, /* file too large */
    CMD_QUECTEL_FILE_E_PARAM = 425,     /* invalid parameter */
    CMD_QUECTEL_FILE_E_BUSY = 426,      /* file already opened */
};


extern const struct at_table cmd_quectel_file_table;

/*
 * The 16-bit checksum Quectel prints after QFUPL / QFDWL: the XOR of the data taken as
 * big-endian 16-bit words, an odd last byte being the high half of a word whose low half is 0.
 * *odd carries whether the bytes fed so far are odd in number, so the data may come in pieces
 * (start with *sum = 0, *odd = false). Pure; may be called from anywhere.
 */
void cmd_quectel_file_checksum(uint16_t *sum, bool *odd, const uint8_t *buf, size_t len);

/* The +CMEE=2 text of a FILE error code (the manuals' wording), or NULL for another code. */
const char *cmd_quectel_file_errtext(int code);

#endif
