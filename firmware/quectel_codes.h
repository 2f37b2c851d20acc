/*
 * The Quectel result codes of an update: what a transfer class (protocols/xfer.h) or a package
 * verdict (firmware/pkg.h) becomes in <FTP_err>, <HTTP_err>, <err> (seed 002 section 6) and in
 * BC260Y's <dl_err> / <upgrade_err> (seed 004 section 8). Pure functions over one table each, so
 * the choice of every code is in one place (docs/models/quectel.md lists them).
 */
#ifndef MODTWIN_FIRMWARE_QUECTEL_CODES_H
#define MODTWIN_FIRMWARE_QUECTEL_CODES_H

#include <stdbool.h>
#include <stdint.h>

#include "firmware/pkg.h"
#include "protocols/xfer.h"

/* Codes that are not a transfer class: the family raises them itself. */
enum {
    QUECTEL_FTP_PATH = 612,       /* <file_path> not in the root directory */
    QUECTEL_HTTP_URL_EMPTY = 712, /* "http://" and nothing else */
    QUECTEL_HTTP_NET_UNSET = 708, /* the fota/cid context was never activated */
    QUECTEL_HTTP_NET_DEACT = 709, /* the context went down during the download */
    QUECTEL_FILE_ERR = 500,       /* a FILE: receive failed */
    QUECTEL_NB_DL_NET_DEACT = 13, /* BC260Y: the PDN went down during the download */
};

/*
 * Why the network could not carry a download, for the codes that tell these apart: the module
 * is not registered or attached; the fota/cid context is not active; the context dropped while
 * the transfer ran; the network is there but nothing flows (outage).
 */
enum quectel_net {
    QUECTEL_NET_OK,
    QUECTEL_NET_DOWN,
    QUECTEL_NET_CTX_UNSET,
    QUECTEL_NET_CTX_LOST,
    QUECTEL_NET_OUTAGE,
};

/* A finished FTP download: class, the FTP reply code that ended it (or 0), bytes received. */
int quectel_ftp_err(enum xfer_err err, int reply, uint64_t got, enum quectel_net net);

/* A finished HTTP(S) download: class, HTTP status (or 0), bytes received. */
int quectel_http_err(enum xfer_err err, int status, uint64_t got, enum quectel_net net);

/* BC260Y <dl_err> for a finished CoAP or HTTP download. */
int quectel_nb_dl_err(enum xfer_err err, enum quectel_net net);

/* LTE <err> for a package verdict (PKG_OK -> 0). */
int quectel_dfota_err(enum pkg_err e);

/* BC260Y <upgrade_err> (PKG_OK -> 0, anything else 255). */
int quectel_nb_upgrade_err(enum pkg_err e);

#endif
