/*
 * dl: the module's download job. It fetches one URL into one UFS file through the transfer core
 * (protocols/xfer.h), syncing the file every DL_SYNC_EVERY bytes and at the end, so that after a
 * power cut the file holds a synced prefix and a resumed download continues from its size.
 * struct dl is owned by struct modem (one job per module); the FOTA engine and the vendor
 * families start it and read its milestones. Everything goes through the UFS API.
 */
#ifndef MODTWIN_FIRMWARE_DL_H
#define MODTWIN_FIRMWARE_DL_H

#include <stdbool.h>
#include <stdint.h>

#include "protocols/xfer.h"
#include "storage/ufs.h"

#define DL_SYNC_EVERY (256u * 1024u) /* bytes between two syncs of the file */

enum dl_state { DL_IDLE = 0, DL_RUNNING, DL_DONE, DL_FAILED };

struct dl;

/* The job ended (not called after dl_cancel, nor for a dl_start that failed). err is XFER_OK on
 * success; detail the HTTP status / FTP reply code when there was one. The callback may call
 * dl_start again (a retry) or dl_cancel. */
typedef void dl_done_fn(void *ctx, struct dl *d, enum xfer_err err, int detail);

/* Progress: called when the percentage changes (got * 100 / total), or, while the total is
 * unknown, with percent -1 after a sync (at most once per loop turn). got and total count from the
 * start of the file (a resumed job starts at the resume offset). The callback may call dl_cancel.
 */
typedef void dl_progress_fn(void *ctx, struct dl *d, int percent, uint64_t got, uint64_t total);

struct dl_status {
    enum dl_state state;
    uint64_t got;      /* bytes of the file so far (resume offset included) */
    uint64_t total;    /* expected size of the file, 0 while unknown */
    enum xfer_err err; /* DL_FAILED: why; XFER_OK otherwise */
    int detail;        /* HTTP status / FTP reply code, or 0 */
};

/* Caller-owned; zeroed = idle. Fields are private to dl.c. */
struct dl {
    enum dl_state state;
    struct xfer *x;
    struct ufs *u;
    struct ufs_file fh;
    bool open;            /* fh is a live writer */
    uint64_t resume_from; /* the file's synced size when the job started (0 unless resuming) */
    uint64_t got, total;  /* as in struct dl_status */
    uint64_t synced;      /* bytes of the file known synced */
    uint64_t reported;    /* the synced size last reported while the total is unknown */
    int percent;          /* last reported, -1 = none yet */
    enum xfer_err err;
    int detail;
    dl_done_fn *done;
    dl_progress_fn *progress;
    void *ctx;
};

/*
 * Starts downloading url into UFS file `file`: a fresh download (UFS_WRONLY | UFS_CREAT |
 * UFS_TRUNC; the old content stays until the first sync) or, when resume is true, an append from
 * the file's committed size, asked of the server as resume_from (a missing file starts at 0).
 * base holds the family's settings (time-outs, credentials, TLS, max_size); its url and
 * resume_from are ignored. Returns 0 (done follows exactly once, from the loop), -EBUSY (a job is
 * running), -EINVAL (bad argument or file name), -ENETDOWN (no network: xfer_start said
 * XFER_E_NO_NETWORK), -EPROTONOSUPPORT (a URL no backend takes), -ENOMEM, or a ufs_open error;
 * on error no callback follows and dl_status shows DL_FAILED with the class. Loop context only;
 * may be called from inside this job's done callback.
 */
int dl_start(struct dl *d, struct xfer_env *env, struct ufs *u, const char *url, const char *file,
             bool resume, const struct xfer_opts *base, dl_done_fn *done, void *ctx);

/* Sets the progress callback (kept across dl_start; NULL for none). */
void dl_set_progress(struct dl *d, dl_progress_fn *fn);

/*
 * Stops a running job at once (a power cut, AT cancel): the transfer is cancelled, the file
 * handle aborted without a sync (the file keeps its last synced prefix), nothing more is
 * written and no callback follows. The job is then DL_FAILED with XFER_E_ABORTED. A no-op when
 * nothing runs. Safe from inside dl's callbacks; not from inside a UFS or flash callback.
 */
void dl_cancel(struct dl *d);

/* Fills *st (never fails). */
void dl_status(const struct dl *d, struct dl_status *st);

#endif
