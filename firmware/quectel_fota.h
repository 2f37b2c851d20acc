/*
 * The Quectel update family: what AT+QFOTADL starts and what the host then sees. A job fetches
 * the package into UFS (FTP, HTTP(S), CoAP through firmware/dl.h; FILE:<length> raw bytes or
 * the protocol mode over the AT port; or a file already in UFS), prints the download URCs, then
 * hands the file to the FOTA engine (firmware/fota.h) and maps its events to START / UPDATING /
 * END with the variant's codes and spelling. One `struct qfota` per module, in struct modem.
 *
 *   QFOTADL -> [xxxSTART, DOWNLOADING k.., xxxEND,<code>] -> engine: verify
 *     refused -> END,<err>           verified, upgrade_mode 1 -> START, UPDATING.., reboot, END,0
 *                                    verified, upgrade_mode 0 -> reboot, START, UPDATING.., END,0
 *
 * The settings a job needs across reboots (URC counts, whether the package file is the job's
 * own) are in NV "qfota" from the engine's start to its result. Not here: the command syntax
 * (cmd_quectel_fota.c), the apply itself (fota.c, fota_apply.c).
 */
#ifndef MODTWIN_FIRMWARE_QUECTEL_FOTA_H
#define MODTWIN_FIRMWARE_QUECTEL_FOTA_H

#include <stdbool.h>
#include <stdint.h>

#include <ev.h>

#include "firmware/fota.h"
#include "firmware/qproto.h"
#include "firmware/quectel_codes.h"
#include "hal/vclock.h"
#include "protocols/xfer.h"
#include "storage/ufs.h"

struct modem;
struct modem_port;

#define QFOTA_URL_MAX 255          /* every variant: <url> max length */
#define QFOTA_PKG_FILE "fota.pkg"  /* where a downloaded or received package lands in UFS */
#define QFOTA_FILE_TIMEOUT 5.0     /* real s without a byte before a FILE: receive fails */

/* Where the package comes from. */
enum qfota_src {
    QFOTA_SRC_NONE,
    QFOTA_SRC_FTP,
    QFOTA_SRC_HTTP,  /* http:// and https:// */
    QFOTA_SRC_COAP,
    QFOTA_SRC_FILE,  /* FILE:<length>: raw bytes on the AT port */
    QFOTA_SRC_PROTO, /* FILE:<length>,2: the protocol download mode */
    QFOTA_SRC_UFS,   /* a package already in UFS */
};

/* What differs between the variants: URC spelling, codes, limits. Static data. */
struct qfota_variant {
    const char *name;
    bool nb;            /* BC260Y: "3%"-style percentages, ",1,1", dl_err / upgrade_err */
    bool minifota;      /* 2/4/8 MB LTE builds: no FILE mode, no URC limits, no HTTPS */
    bool end_at_boot;   /* END comes among the boot lines after the restart (BC260Y), not
                           from the upgrade before it (LTE: END,0 then the module restarts) */
    unsigned url_max;   /* the longest <url> accepted */
    unsigned dl_default, upd_default; /* URC counts when the command leaves them out */
};

/* Job settings from AT+QFOTADL. */
struct qfota_req {
    enum qfota_src src;
    const char *url;   /* FTP / HTTP / CoAP URL, or the UFS file name for QFOTADA_SRC_UFS */
    uint64_t length;   /* FILE: / protocol mode */
    bool apply_now;    /* <upgrade_mode> 1 */
    unsigned dl_max, upd_max; /* URC counts, 0 = none */
};

struct qfota {
    struct modem *m;
    enum qfota_src src;     /* the job's source; NONE when no job runs */
    bool own_file;          /* the package file is the job's own: removed after END */
    bool apply_now;
    unsigned dl_max, upd_max, dl_sent, upd_sent;
    /* serial receive */
    struct modem_port *port;
    struct ufs_file fh;
    bool fh_open;
    uint64_t want, got;
    int rx_err;             /* the first write error of a FILE: receive (-errno) */
    double saved_limit;     /* the port's rx_limit before the receive */
    /* Serial time-outs are the wire's, in real time like a socket's (DESIGN "Time"): the FILE:
     * silence, the protocol's silence and its linger after the end. */
    ev_timer timer;
    struct qproto_rx rx;    /* protocol mode: the session */
    uint64_t rx_frames;     /* valid frames when the silence timer was last armed */
    bool lingering;         /* protocol mode: over, still answering repeated frames */
    int rx_result;          /* protocol mode: how the session ended */
    /* the network view of the download (for the codes that tell causes apart) */
    bool ctx_was_up;
};

/* The variant of m's model (NULL when the model has no Quectel update family). */
const struct qfota_variant *qfota_variant(const struct modem *m);

/* Engine-event families of the three variants (models point at them). */
extern const struct fota_family quectel_dfota_family;
extern const struct fota_family quectel_minifota_family;
extern const struct fota_family quectel_nb_family;

void qfota_init(struct qfota *q, struct modem *m);

/*
 * Starts a job from port p (the port a FILE: receive uses). Returns 0: the command answers OK
 * and the job reports by URCs; for the protocol mode the job has printed `010003` and put the
 * port in data mode: the command pends and ends silently when the session does (its FILEEND
 * follows). -EBUSY (a job runs),
 * -ENODEV (storage down), -ENOENT (SRC_UFS: no such file), -EINVAL. The caller has checked the
 * syntax. For FILE: the port enters data mode from here (the caller returns OK after it).
 */
int qfota_start(struct qfota *q, struct modem_port *p, const struct qfota_req *req);

/* Power went: stops timers and handles without writing anything. */
void qfota_stop(struct qfota *q);

/*
 * Whether the engine's coming result belongs to an AT+QFOTADL job (its record is in NV) and so
 * prints a URC; a job the control API started prints none. Reads the record into q.
 */
bool qfota_job_pending(struct qfota *q);

#endif
