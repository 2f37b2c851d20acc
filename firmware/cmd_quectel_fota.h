/*
 * AT+QFOTADL: the command tables of the Quectel update family. The LTE table (EC200A-CN,
 * EC200N-CN) takes the FTP / HTTP(S) / FILE: / UFS forms of seed 002; the NB table (BC260Y-CN)
 * the single <URL> form of seed 004. Both parse and check, then start a job in
 * firmware/quectel_fota.c.
 */
#ifndef MODTWIN_FIRMWARE_CMD_QUECTEL_FOTA_H
#define MODTWIN_FIRMWARE_CMD_QUECTEL_FOTA_H

#include "firmware/at_engine.h"

#define CMD_QUECTEL_FOTA_FTP_FIELD_MAX 50 /* <username>, <password>, <serverURL>, <file_path> */
#define CMD_QUECTEL_FOTA_MINI_URL_MAX 128 /* MiniFOTA builds */

extern const struct at_table cmd_quectel_fota_table;
extern const struct at_table cmd_quectel_nb_fota_table;

#endif
