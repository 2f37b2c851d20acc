/*
 * `modtwin fota-send`: the host side of Quectel's protocol download mode
 * (AT+QFOTADL="FILE:<length>",2) over a serial port without flow control, with the protocol of
 * firmware/qproto.h (docs/qfota-protocol.md).
 */
#ifndef MODTWIN_TOOLS_FOTA_SEND_H
#define MODTWIN_TOOLS_FOTA_SEND_H

#define FOTA_SEND_READY    "010003" /* the module's answer: protocol mode entered */
#define FOTA_SEND_READY_MS 5000u    /* how long the module may take to answer the command */
#define FOTA_SEND_WRITE_MS 5000u    /* how long one write may wait for the port */
#define FOTA_SEND_BAUD     115200   /* default --baud (the module's AT+IPR default) */

/*
 * modtwin fota-send [--baud N] [--mode M] PORT FILE (argv[0] is "fota-send"): opens PORT raw
 * at N baud without flow control, sends AT+QFOTADL="FILE:<size of FILE>",2[,M], waits for
 * 010003 and sends FILE with the protocol; progress on stderr when it is a terminal. Returns
 * the exit code: 0 the module acknowledged the whole package, 1 failure (the cause on stderr),
 * 2 usage. Nothing stays open when it returns. SIGINT and SIGTERM abort the transfer (an ABORT
 * frame tells the module) instead of killing the process; the signal mask is restored.
 */
int fota_send_main(int argc, char **argv);

#endif
