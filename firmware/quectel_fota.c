/*
 * The Quectel update family (see the flow in quectel_fota.h): the job from AT+QFOTADL to END.
 * Download URCs come from dl.c's milestones or from the serial receive; after the package is in
 * UFS the FOTA engine takes over and this file only translates its events. The URC counts follow
 * the command's own examples: <download_URC_max> N prints exactly N DOWNLOADING URCs numbered
 * 1..N as the bytes arrive (the last one when done); <update_URC_max> likewise for UPDATING.
 * BC260Y prints the engine's percentage with a '%' and ",1,1" instead (seed 004 section 7).
 */
#include "firmware/quectel_fota.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "firmware/modem.h"

#define QFOTA_NV_KEY "qfota"
#define QFOTA_NV_VERSION 1

/* ---- variants -------------------------------------------------------------------------------- */

static const struct qfota_variant qfota_dfota = {
    .name = "dfota", .url_max = QFOTA_URL_MAX, .dl_default = 100, .upd_default = 100,
};

static const struct qfota_variant qfota_nb = {
    .name = "nb",
    .nb = true,
    .end_at_boot = true,
    .url_max = QFOTA_URL_MAX,
    .dl_default = 100,
    .upd_default = 100,
};

/* 2/4/8 MB builds: AT+QFOTADL starts the MiniFOTA flow of firmware/quectel_minifota.c. */
static const struct qfota_variant qfota_minifota = {
    .name = "minifota", .minifota = true, .url_max = QFOTA_URL_MAX,
};

static void qfota_on_event(struct modem *m, const struct fota_event *ev);

const struct fota_family quectel_dfota_family = {"quectel-dfota", qfota_on_event, &qfota_dfota};
const struct fota_family quectel_minifota_family = {"quectel-minifota", qfota_on_event,
                                                    &qfota_minifota};
const struct fota_family quectel_nb_family = {"quectel-nb", qfota_on_event, &qfota_nb};

const struct qfota_variant *qfota_variant(const struct modem *m)
{
    const struct fota_family *f = m->model->fota_family;

    return f ? f->data : NULL;
}

/* ---- URCs ------------------------------------------------------------------------------------ */

static const char *qfota_src_word(enum qfota_src s)
{
    switch (s) {
    case QFOTA_SRC_FTP:
        return "FTP";
    case QFOTA_SRC_COAP:
        return "COAP";
    case QFOTA_SRC_FILE:
    case QFOTA_SRC_PROTO:
        return "FILE";
    default:
        return "HTTP";
    }
}

/* DOWNLOADING URCs up to the count `upto` (LTE) or the percentage `upto` (BC260Y). */
static void qfota_dl_urcs(struct qfota *q, unsigned upto)
{
    const struct qfota_variant *v = qfota_variant(q->m);

    if (v->nb) {
        /* Every percentage once, as seed 004 7.2 prints 1%, 2%, ... 100%, even when a block
         * moves the transfer several percent at a time. */
        while (q->dl_sent < upto) {
            q->dl_sent++;
            if (q->dl_max)
                modem_urc(q->m, "+QIND: \"FOTA\",\"DOWNLOADING\",%u%%", q->dl_sent);
        }
        return;
    }
    while (q->dl_sent < upto && q->dl_sent < q->dl_max)
        modem_urc(q->m, "+QIND: \"FOTA\",\"DOWNLOADING\",%u", ++q->dl_sent);
}

/* The download progress in percent -> the URCs due. */
static void qfota_dl_progress_pct(struct qfota *q, unsigned pct)
{
    const struct qfota_variant *v = qfota_variant(q->m);

    if (pct > 100)
        pct = 100;
    qfota_dl_urcs(q, v->nb ? pct : pct * q->dl_max / 100);
}

static void qfota_upd_urcs(struct qfota *q, unsigned pct)
{
    const struct qfota_variant *v = qfota_variant(q->m);

    if (pct > 100)
        pct = 100;
    if (v->nb) {
        if (pct > q->upd_sent || (pct == 0 && q->upd_sent == 0 && q->upd_max))
            modem_urc(q->m, "+QIND: \"FOTA\",\"UPDATING\",%u%%,1,1", pct);
        if (pct > q->upd_sent)
            q->upd_sent = pct;
        return;
    }
    while (q->upd_sent < pct * q->upd_max / 100)
        modem_urc(q->m, "+QIND: \"FOTA\",\"UPDATING\",%u", ++q->upd_sent);
}

/* ---- the job record -------------------------------------------------------------------------- */

/* NV "qfota": u8 version, u8 source, u8 own file, u8 update URC count. */
static int qfota_save(struct qfota *q)
{
    uint8_t rec[4] = {QFOTA_NV_VERSION, (uint8_t)q->src, q->own_file, (uint8_t)q->upd_max};

    return nv_set(&q->m->nv, QFOTA_NV_KEY, rec, sizeof(rec));
}

/* Reads the record after a reboot; false when there is none. */
static bool qfota_load(struct qfota *q)
{
    uint8_t rec[4];

    if (q->src != QFOTA_SRC_NONE)
        return true;
    if (nv_get(&q->m->nv, QFOTA_NV_KEY, rec, sizeof(rec)) != (int)sizeof(rec) ||
        rec[0] != QFOTA_NV_VERSION || rec[1] > QFOTA_SRC_UFS || rec[3] > 100)
        return false;
    q->src = (enum qfota_src)rec[1];
    q->own_file = rec[2] != 0;
    q->upd_max = rec[3];
    q->upd_sent = 0;
    return true;
}

/* The job is over (END printed): its package and record go. */
static void qfota_finish(struct qfota *q)
{
    if (q->own_file)
        ufs_remove(&q->m->ufs, QFOTA_PKG_FILE);
    nv_del(&q->m->nv, QFOTA_NV_KEY);
    q->src = QFOTA_SRC_NONE;
}

static void qfota_end(struct qfota *q, enum pkg_err e)
{
    const struct qfota_variant *v = qfota_variant(q->m);

    modem_urc(q->m, "+QIND: \"FOTA\",\"END\",%d",
              v->nb ? quectel_nb_upgrade_err(e) : quectel_dfota_err(e));
    qfota_finish(q);
}

/* ---- engine events --------------------------------------------------------------------------- */

static void qfota_on_event(struct modem *m, const struct fota_event *ev)
{
    struct qfota *q = &m->qfota;
    const struct qfota_variant *v = qfota_variant(m);

    if (!qfota_load(q))
        return; /* a job the control API started: no URCs of a QFOTADL job */
    switch (ev->kind) {
    case FOTA_EV_REFUSED:
        qfota_end(q, ev->err);
        break;
    case FOTA_EV_APPLY_START:
        modem_urc(m, "+QIND: \"FOTA\",\"START\"");
        /* After a power cut the count goes on from the saved progress, which is shown again
         * (the host may not have seen it: the cut can come just before its URC). */
        if (v->nb) {
            q->upd_sent = ev->pct;
            if (ev->resumed && q->upd_max)
                modem_urc(m, "+QIND: \"FOTA\",\"UPDATING\",%u%%,1,1", ev->pct);
        } else {
            unsigned k = ev->pct * q->upd_max / 100;
            q->upd_sent = ev->resumed && k ? k - 1 : k;
            qfota_upd_urcs(q, ev->pct);
        }
        break;
    case FOTA_EV_PROGRESS:
        if (q->upd_max)
            qfota_upd_urcs(q, ev->pct);
        break;
    case FOTA_EV_APPLIED:
        /* LTE: the upgrade reports its result, then the module restarts (seed 002 3.3.1.1). */
        if (!v->end_at_boot)
            modem_urc(m, "+QIND: \"FOTA\",\"END\",0");
        break;
    case FOTA_EV_FAILED:
        /* Outside upgrade mode the job ends here; in it, the module restarts and the result
         * event after the boot ends the job (BC260Y prints END only then). */
        if (m->power != MODEM_UPGRADE)
            qfota_end(q, ev->err);
        else if (!v->end_at_boot)
            modem_urc(m, "+QIND: \"FOTA\",\"END\",%d", quectel_dfota_err(ev->err));
        break;
    case FOTA_EV_RESULT:
        /* LTE printed END before the restart, except for an apply a power cut rolled back. */
        if (v->end_at_boot || ev->err == PKG_E_INTERRUPTED)
            qfota_end(q, ev->err);
        else
            qfota_finish(q);
        break;
    default:
        break;
    }
}

/* ---- into the engine ------------------------------------------------------------------------- */

/* The package is in UFS: the engine verifies and applies it. */
static void qfota_hand_over(struct qfota *q, const char *file)
{
    int rc;

    rc = qfota_save(q);
    if (rc == -ECANCELED)
        return;
    if (!rc)
        rc = fota_start(&q->m->fota, file, q->apply_now);
    if (rc && rc != -ECANCELED)
        qfota_end(q, rc == -ENOENT ? PKG_E_TRUNCATED : PKG_E_IO);
}

/* ---- downloads ------------------------------------------------------------------------------- */

/* The context a download uses: AT+QCFG="fota/cid" on DFOTA builds, else the default bearer. */
static bool qfota_ctx_up(const struct qfota *q)
{
    const struct modem *m = q->m;
    const struct qfota_variant *v = qfota_variant(m);

    if (v->nb || v->minifota)
        return m->net.up;
    return modem_ctx_up(m, m->fota_cid);
}

/* What stands in the way of data now, for the codes that tell causes apart. */
static enum quectel_net qfota_net(const struct qfota *q)
{
    const struct modem *m = q->m;

    if (qfota_ctx_up(q))
        return QUECTEL_NET_OK;
    if (m->attached && m->outage)
        return QUECTEL_NET_OUTAGE;
    if (q->ctx_was_up)
        return QUECTEL_NET_CTX_LOST;
    if (m->net.up)
        return QUECTEL_NET_CTX_UNSET; /* registered and attached, the context not activated */
    return QUECTEL_NET_DOWN;
}

static void qfota_dl_end(struct qfota *q, enum xfer_err err, int detail, uint64_t got)
{
    const struct qfota_variant *v = qfota_variant(q->m);
    enum quectel_net net = qfota_net(q);
    int code;

    if (v->nb)
        code = quectel_nb_dl_err(err, net);
    else if (q->src == QFOTA_SRC_FTP)
        code = quectel_ftp_err(err, detail, got, net);
    else
        code = quectel_http_err(err, detail, got, net);
    if (err == XFER_OK)
        qfota_dl_progress_pct(q, 100);
    modem_urc(q->m, "+QIND: \"FOTA\",\"%sEND\",%d", qfota_src_word(q->src), code);
    if (err != XFER_OK) {
        qfota_finish(q);
        return;
    }
    qfota_hand_over(q, QFOTA_PKG_FILE);
}

static void qfota_dl_done(void *ctx, struct dl *d, enum xfer_err err, int detail)
{
    struct qfota *q = ctx;
    struct dl_status st;

    dl_status(d, &st);
    qfota_dl_end(q, err, detail, st.got);
    modem_flash_event(q->m);
}

static void qfota_dl_progress(void *ctx, struct dl *d, int percent, uint64_t got, uint64_t total)
{
    struct qfota *q = ctx;

    (void)d;
    (void)got;
    (void)total;
    if (percent >= 0)
        qfota_dl_progress_pct(q, (unsigned)percent);
}

/* FTP: does the URL's path name a file below the root? (The module stores from the root only.) */
static bool qfota_ftp_subdir(const char *url)
{
    const char *path = strstr(url, "://");

    path = path ? strchr(path + 3, '/') : NULL;
    return path && strchr(path + 1, '/') != NULL;
}

static int qfota_download(struct qfota *q, const char *url)
{
    struct modem *m = q->m;
    struct xfer_opts o;
    struct dl_status st;
    int rc;

    modem_xfer_defaults(m, &o);
    q->ctx_was_up = qfota_ctx_up(q);
    modem_urc(m, "+QIND: \"FOTA\",\"%sSTART\"", qfota_src_word(q->src));
    if (q->src == QFOTA_SRC_FTP && qfota_ftp_subdir(url)) {
        modem_urc(m, "+QIND: \"FOTA\",\"FTPEND\",%d", QUECTEL_FTP_PATH);
        qfota_finish(q);
        return 0;
    }
    if (!q->ctx_was_up) {
        /* The documents want the context up first (AT+QIACT); nothing is sent without it. */
        qfota_dl_end(q, XFER_E_NO_NETWORK, 0, 0);
        return 0;
    }
    /* A package a power cut left half-downloaded is not resumed: its blocks are free again. */
    ufs_remove(&m->ufs, QFOTA_PKG_FILE);
    dl_set_progress(&m->dl, qfota_dl_progress);
    rc = dl_start(&m->dl, &m->xenv, &m->ufs, url, QFOTA_PKG_FILE, false, &o, qfota_dl_done, q);
    if (rc == -EBUSY)
        return rc;
    if (rc) {
        /* Refused before any byte moved: the END URC tells why, as a failed transfer would. */
        dl_status(&m->dl, &st);
        qfota_dl_end(q, st.err != XFER_OK ? st.err : XFER_E_INTERNAL, st.detail, 0);
    }
    return 0;
}

/* ---- FILE:<length> on the AT port ------------------------------------------------------------ */

static void qfota_timer_stop(struct qfota *q)
{
    ev_timer_stop(q->m->loop, &q->timer);
}

static void qfota_timer_start(struct qfota *q, double after,
                              void (*cb)(struct ev_loop *, ev_timer *, int))
{
    ev_timer_stop(q->m->loop, &q->timer);
    ev_timer_init(&q->timer, cb, after, 0);
    q->timer.data = q;
    ev_timer_start(q->m->loop, &q->timer);
}

static void qfota_file_close(struct qfota *q)
{
    struct modem_port *p = q->port;

    qfota_timer_stop(q);
    if (p) {
        p->rx_limit = q->saved_limit;
        modem_port_uart_update(q->m, p);
    }
    q->port = NULL;
}

static void qfota_file_fail(struct qfota *q)
{
    if (q->fh_open)
        ufs_abort(&q->fh);
    q->fh_open = false;
    qfota_file_close(q);
    modem_urc(q->m, "+QIND: \"FOTA\",\"FILEEND\",%d", QUECTEL_FILE_ERR);
    qfota_finish(q);
}

static void qfota_file_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct qfota *q = w->data;
    struct modem_port *p = q->port;

    (void)loop;
    (void)revents;
    qfota_file_fail(q);
    if (p)
        at_data_end(&p->at, AT_RES_SILENT);
    modem_flash_event(q->m);
}

static int qfota_file_data(void *ctx, const uint8_t *buf, size_t len, bool done)
{
    struct qfota *q = ctx;
    int rc;

    if (!q->rx_err) {
        ssize_t w = ufs_write(&q->fh, buf, len);
        if (w < 0)
            q->rx_err = (int)w;
    }
    q->got += len;
    if (q->want)
        qfota_dl_progress_pct(q, (unsigned)(q->got * 100 / q->want));
    if (!done) {
        qfota_timer_start(q, QFOTA_FILE_TIMEOUT, qfota_file_timeout);
        return AT_RES_PENDING;
    }
    if (q->rx_err) {
        qfota_file_fail(q);
        return AT_RES_SILENT;
    }
    q->fh_open = false;
    rc = ufs_close(&q->fh); /* one sync: the package appears whole or not at all */
    qfota_file_close(q);
    if (rc == -ECANCELED)
        return AT_RES_SILENT;
    if (rc) {
        modem_urc(q->m, "+QIND: \"FOTA\",\"FILEEND\",%d", QUECTEL_FILE_ERR);
        qfota_finish(q);
        return AT_RES_SILENT;
    }
    qfota_dl_progress_pct(q, 100);
    modem_urc(q->m, "+QIND: \"FOTA\",\"FILEEND\",0");
    qfota_hand_over(q, QFOTA_PKG_FILE);
    return AT_RES_SILENT;
}

/* Opens the package file for a serial receive of length bytes on port p; paces the port. */
static int qfota_file_open(struct qfota *q, struct modem_port *p, uint64_t length)
{
    struct modem *m = q->m;
    uint64_t free_bytes, total, need;
    int rc;

    ufs_space(&m->ufs, &free_bytes, &total);
    /* An old package of ours is replaced: its blocks count as free. */
    need = (length + UFS_BLOCK - 1) / UFS_BLOCK * UFS_BLOCK;
    if (need > total)
        return -EFBIG;
    ufs_remove(&m->ufs, QFOTA_PKG_FILE);
    ufs_space(&m->ufs, &free_bytes, &total);
    if (need > free_bytes)
        return -ENOSPC;
    rc = ufs_open(&m->ufs, &q->fh, QFOTA_PKG_FILE, UFS_WRONLY | UFS_CREAT | UFS_TRUNC);
    if (rc)
        return rc;
    q->fh_open = true;
    q->port = p;
    q->want = length;
    q->got = 0;
    q->rx_err = 0;
    /* Without flow control the module takes the package at its own pace (seed 002: 15 KB/s). */
    q->saved_limit = p->rx_limit;
    if (!modem_port_flow(m, p)) {
        p->rx_limit = MODEM_NOFLOW_RX_LIMIT;
        modem_port_uart_update(m, p);
    }
    return 0;
}

static int qfota_file_begin(struct qfota *q, struct modem_port *p, uint64_t length)
{
    struct modem *m = q->m;
    int rc = qfota_file_open(q, p, length);

    if (rc)
        return rc;
    modem_urc(m, "+QIND: \"FOTA\",\"FILESTART\"");
    at_stream_begin(&p->at, (size_t)length, qfota_file_data, q);
    qfota_timer_start(q, QFOTA_FILE_TIMEOUT, qfota_file_timeout);
    return 0;
}

/* ---- FILE:<length>,2: the protocol download mode (docs/qfota-protocol.md) -------------------- */

/*
 *   handler: file opened, "010003", data mode (URCs held), silence timer armed
 *   data:    bytes -> qproto_rx_feed: in-order payload -> ufs_write; replies -> the port
 *            a valid frame re-arms the 10 s silence timer
 *   over:    DONE -> sync; error, abort or silence -> the file dropped; then QPROTO_RX_LINGER_S
 *            more in data mode answering repeated frames; then the port returns to AT commands,
 *            FILEEND,<0|500> and the rest of the job follow
 */

static int qfota_proto_store(void *ctx, uint64_t off, const uint8_t *buf, size_t len)
{
    struct qfota *q = ctx;
    ssize_t w;

    (void)off; /* the receiver hands the bytes over in order, each once */
    w = ufs_write(&q->fh, buf, len);
    return w < 0 ? (int)w : 0;
}

static void qfota_proto_reply(void *ctx, const uint8_t *buf, size_t len)
{
    struct qfota *q = ctx;

    at_raw(&q->port->at, buf, len);
}

static const struct qproto_rx_ops qfota_proto_ops = {qfota_proto_store, qfota_proto_reply};

static void qfota_proto_linger_end(struct ev_loop *loop, ev_timer *w, int revents);

/* The session ended (result r): keep or drop the package, then linger. */
static void qfota_proto_over(struct qfota *q, int r)
{
    int rc = -EIO;

    q->rx_result = r;
    if (r == QPROTO_DONE) {
        q->fh_open = false;
        rc = ufs_close(&q->fh); /* one sync: the package appears whole or not at all */
    } else if (q->fh_open) {
        ufs_abort(&q->fh);
        q->fh_open = false;
    }
    if (rc == -ECANCELED)
        return; /* the power went */
    if (rc)
        q->rx_result = rc;
    q->lingering = true;
    qfota_timer_start(q, QPROTO_RX_LINGER_S, qfota_proto_linger_end);
}

/* Back to AT commands: the URCs held during the session go out, the job goes on. */
static void qfota_proto_linger_end(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct qfota *q = w->data;
    struct modem_port *p = q->port;

    (void)loop;
    (void)revents;
    q->lingering = false;
    qfota_file_close(q);
    if (q->rx_result == QPROTO_DONE) {
        modem_urc(q->m, "+QIND: \"FOTA\",\"FILEEND\",0");
        qfota_hand_over(q, QFOTA_PKG_FILE);
    } else {
        modem_urc(q->m, "+QIND: \"FOTA\",\"FILEEND\",%d", QUECTEL_FILE_ERR);
        qfota_finish(q);
    }
    if (p)
        at_data_end(&p->at, AT_RES_SILENT);
    modem_flash_event(q->m);
}

static void qfota_proto_silence(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct qfota *q = w->data;

    (void)loop;
    (void)revents;
    qproto_rx_timeout(&q->rx);
    qfota_proto_over(q, qproto_rx_result(&q->rx));
    modem_flash_event(q->m);
}

static int qfota_proto_data(void *ctx, const uint8_t *buf, size_t len, bool done)
{
    struct qfota *q = ctx;
    int r = qproto_rx_feed(&q->rx, buf, len);

    (void)done; /* the mode has no byte count: the session says when it is over */
    if (q->lingering)
        return AT_RES_PENDING;
    if (qproto_rx_frames(&q->rx) != q->rx_frames) {
        q->rx_frames = qproto_rx_frames(&q->rx);
        qfota_timer_start(q, QPROTO_RX_SILENCE_S, qfota_proto_silence);
    }
    if (r != QPROTO_MORE)
        qfota_proto_over(q, r);
    return AT_RES_PENDING;
}

static int qfota_proto_begin(struct qfota *q, struct modem_port *p, uint64_t length)
{
    int rc = qfota_file_open(q, p, length);

    if (rc)
        return rc;
    qproto_rx_init(&q->rx, length, &qfota_proto_ops, q);
    q->rx_frames = 0;
    q->lingering = false;
    at_info(&p->at, "010003");
    at_data_begin(&p->at, SIZE_MAX, qfota_proto_data, q);
    qfota_timer_start(q, QPROTO_RX_SILENCE_S, qfota_proto_silence);
    return 0;
}

/* ---- entry points ---------------------------------------------------------------------------- */

void qfota_init(struct qfota *q, struct modem *m)
{
    memset(q, 0, sizeof(*q));
    q->m = m;
    ev_timer_init(&q->timer, qfota_file_timeout, 0, 0);
    q->timer.data = q;
}

int qfota_start(struct qfota *q, struct modem_port *p, const struct qfota_req *req)
{
    struct modem *m = q->m;
    const struct qfota_variant *v = qfota_variant(m);
    struct ufs_stat st;
    int rc;

    if (!v || !m->storage_ok)
        return -ENODEV;
    if (q->src != QFOTA_SRC_NONE || m->fota.state != FOTA_ST_IDLE)
        return -EBUSY;
    if (req->src == QFOTA_SRC_UFS && ufs_stat(&m->ufs, req->url, &st))
        return -ENOENT;
    q->src = req->src;
    q->apply_now = req->apply_now;
    q->dl_max = req->dl_max;
    q->upd_max = req->upd_max;
    q->dl_sent = q->upd_sent = 0;
    q->own_file = req->src != QFOTA_SRC_UFS;
    switch (req->src) {
    case QFOTA_SRC_FTP:
    case QFOTA_SRC_HTTP:
    case QFOTA_SRC_COAP:
        rc = qfota_download(q, req->url);
        break;
    case QFOTA_SRC_FILE:
        rc = qfota_file_begin(q, p, req->length);
        break;
    case QFOTA_SRC_PROTO:
        rc = qfota_proto_begin(q, p, req->length);
        break;
    case QFOTA_SRC_UFS:
        qfota_hand_over(q, req->url);
        rc = 0;
        break;
    default:
        rc = -EINVAL;
        break;
    }
    if (rc)
        q->src = QFOTA_SRC_NONE;
    return rc;
}

bool qfota_job_pending(struct qfota *q)
{
    return q->m->storage_ok && qfota_load(q);
}

void qfota_stop(struct qfota *q)
{
    qfota_timer_stop(q);
    q->lingering = false;
    /* The unmount drops the writer; nothing is written from here. */
    q->fh_open = false;
    q->port = NULL;
    q->src = QFOTA_SRC_NONE;
}
