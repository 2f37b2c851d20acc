/*
 * dl.c: the module's download job (firmware/dl.h): one URL into one UFS file. It is the sink
 * of a transfer (protocols/xfer.h): bytes go through ufs_write, a ufs_sync every DL_SYNC_EVERY
 * bytes publishes the prefix so far (each sync is a power-loss point after which the file holds
 * exactly that prefix), and the end syncs the rest. It is not a FOTA state machine: it knows
 * nothing of packages, URCs or codes; the families map its error class to their codes.
 *
 *   IDLE/DONE/FAILED --dl_start--> RUNNING --done(OK)----> DONE     (file synced in full)
 *                                          --done(err)---> FAILED   (received prefix synced)
 *                                          --dl_cancel--> FAILED   (ABORTED, nothing synced)
 */
#include "firmware/dl.h"

#include <errno.h>
#include <string.h>

/* ---- the sink: bytes into the UFS file ---------------------------------------------------- */

/* The xfer sink's write: ufs_write at the handle's position (which is the file's end, since a
 * fresh job truncated and a resumed one appends), then a sync once DL_SYNC_EVERY bytes have
 * piled up since the last one. -ENOSPC from either passes through as is: the core turns it into
 * XFER_E_STORAGE_FULL, anything else into XFER_E_STORAGE. */
static int dl_sink_write(void *ctx, uint64_t off, const void *buf, size_t len)
{
    struct dl *d = ctx;
    ssize_t n;
    int rc;

    if (!d->open)
        return -EBADF;
    if (off != d->got)
        return -EIO; /* the core hands bytes over in order; anything else is a bug upstream */
    n = ufs_write(&d->fh, buf, len);
    if (n < 0)
        return (int)n;
    d->got += len;
    if (d->got - d->synced >= DL_SYNC_EVERY) {
        rc = ufs_sync(&d->fh);
        if (rc < 0)
            return rc;
        d->synced = d->got; /* without a total, dl_on_progress reports this sync */
    }
    return 0;
}

/* The xfer sink's commit (success only): the final sync, and the handle is released. */
static int dl_sink_commit(void *ctx, uint64_t total)
{
    struct dl *d = ctx;
    int rc;

    (void)total;
    if (!d->open)
        return -EBADF;
    d->open = false;
    rc = ufs_close(&d->fh); /* syncs; the handle is released even when that fails */
    if (rc == 0)
        d->synced = d->got;
    return rc;
}

/* ---- milestones from the transfer --------------------------------------------------------- */

static void dl_report(struct dl *d, int percent)
{
    if (percent == d->percent)
        return;
    d->percent = percent;
    if (d->progress)
        d->progress(d->ctx, d, percent, d->got, d->total);
}

/* Progress from the core (already coalesced to one per loop turn); reported only when the
 * integer percentage moves, which is what the families' DOWNLOADING URCs need. */
static void dl_on_progress(void *ctx, uint64_t got, uint64_t total)
{
    struct dl *d = ctx;

    (void)got; /* d->got is what the file holds, counted by the sink */
    d->total = total;
    if (total) {
        dl_report(d, (int)(d->got >= total ? 100 : d->got * 100 / total));
    } else if (d->synced > d->reported) {
        /* without a total there is no percentage: a sync is the milestone (reported from
         * here, the loop, never from inside the sink, which runs in libcurl's stack) */
        d->reported = d->synced;
        if (d->progress)
            d->progress(d->ctx, d, -1, d->got, 0);
    }
}

static void dl_on_done(void *ctx, enum xfer_err err, int detail, uint64_t total)
{
    struct dl *d = ctx;

    d->x = NULL; /* the core frees the transfer when we return */
    if (d->open) {
        /* a failure: keep what arrived (a resume continues from it) unless the writer is
         * broken or nothing new came; ufs_abort leaves the last synced state */
        d->open = false;
        if (err != XFER_E_STORAGE && d->got > d->synced && ufs_close(&d->fh) == 0)
            d->synced = d->got;
        else
            ufs_abort(&d->fh);
    }
    d->err = err;
    d->detail = detail;
    if (err == XFER_OK) {
        d->state = DL_DONE;
        d->total = total;
        dl_report(d, 100); /* the last percentage may have been coalesced away */
    } else {
        d->state = DL_FAILED;
    }
    if (d->done)
        d->done(d->ctx, d, err, detail); /* last: it may start the next job */
}

/* ---- the job ------------------------------------------------------------------------------ */

/* dl_start's errno for a transfer that could not start. */
static int dl_errno(enum xfer_err e)
{
    switch (e) {
    case XFER_E_URL:
        return -EPROTONOSUPPORT;
    case XFER_E_NO_NETWORK:
        return -ENETDOWN;
    case XFER_E_INTERNAL:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

int dl_start(struct dl *d, struct xfer_env *env, struct ufs *u, const char *url, const char *file,
             bool resume, const struct xfer_opts *base, dl_done_fn *done, void *ctx)
{
    struct xfer_opts o = {.verify_peer = true};
    struct xfer_sink sink = {.write = dl_sink_write, .commit = dl_sink_commit, .ctx = d};
    struct xfer_cb cb = {.progress = dl_on_progress, .done = dl_on_done, .ctx = d};
    struct ufs_stat st = {0};
    enum xfer_err xe;
    size_t flen;
    int flags = UFS_WRONLY | UFS_CREAT;
    int rc;

    if (!d || !env || !u || !url || !file)
        return -EINVAL;
    if (d->state == DL_RUNNING)
        return -EBUSY;
    flen = strlen(file);
    if (flen == 0 || flen > UFS_NAME_MAX)
        return -EINVAL;
    if (resume) {
        rc = ufs_stat(u, file, &st);
        if (rc < 0 && rc != -ENOENT)
            return rc;
        flags |= UFS_APPEND;
    } else {
        flags |= UFS_TRUNC;
    }
    /* the family's settings, with this job's URL and offset; a NULL base means defaults with
     * TLS verification on */
    if (base)
        o = *base;
    o.url = url;
    o.resume_from = st.size;

    d->u = u;
    d->resume_from = d->got = d->synced = d->reported = st.size;
    d->total = 0;
    d->percent = -1;
    d->err = XFER_OK;
    d->detail = 0;
    d->done = done;
    d->ctx = ctx;
    d->open = false;
    /* the transfer first: it never calls back from inside xfer_start, so the file can be
     * opened after it, and a refused start leaves the file untouched */
    d->x = xfer_start(env, &o, &sink, &cb, &xe);
    if (!d->x) {
        d->state = DL_FAILED;
        d->err = xe;
        return dl_errno(xe);
    }
    rc = ufs_open(u, &d->fh, file, flags);
    if (rc < 0) {
        xfer_cancel(d->x);
        d->x = NULL;
        d->state = DL_FAILED;
        d->err = rc == -ENOSPC ? XFER_E_STORAGE_FULL : XFER_E_STORAGE;
        return rc;
    }
    d->open = true;
    d->state = DL_RUNNING;
    return 0;
}

void dl_set_progress(struct dl *d, dl_progress_fn *fn)
{
    d->progress = fn;
}

void dl_cancel(struct dl *d)
{
    if (!d || d->state != DL_RUNNING)
        return;
    xfer_cancel(d->x);
    d->x = NULL;
    if (d->open) {
        ufs_abort(&d->fh); /* no sync: the file keeps its last synced prefix */
        d->open = false;
    }
    d->state = DL_FAILED;
    d->err = XFER_E_ABORTED;
    d->detail = 0;
}

/* A snapshot; err is reported only for a failed job, so a stale class never shows. */
void dl_status(const struct dl *d, struct dl_status *st)
{
    st->state = d->state;
    st->got = d->got;
    st->total = d->total;
    st->err = d->state == DL_FAILED ? d->err : XFER_OK;
    st->detail = d->detail;
}
