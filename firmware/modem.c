/*
 * Module instance: power sequencing, ports, storage mounting, URC fan-out and events.
 *
 *   OFF --power_on--> BOOTING --boot time--> ON --power_off/reboot--> DEAD --reap--> OFF
 *                                              \--cut (any time)-----> DEAD --reap--> OFF
 *
 * DEAD means "no longer runs": the flash refuses writes after a cut and the ports print nothing.
 * Its RAM state is dropped by an ev_idle at the next loop turn, never inside the call stack that
 * cut it (a cut can happen inside a flash operation deep in a handler). Not here: what the
 * commands do (cmd_*.c) and how a fleet is laid out (sim/fleet.c).
 */
#include "firmware/modem.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "firmware/cmd_basic.h"
#include "firmware/cmd_quectel_file.h"
#include "firmware/cmd_quectel_net.h"

#define MODEM_PROFILE_KEY "at.profile"
#define MODEM_PROVISIONED_KEY "fw.provisioned"
#define MODEM_IPR_KEY "at.ipr"
#define MODEM_MINI_PROVISIONED_KEY "fw.mini.provisioned"

static void modem_emit(struct modem *m, const struct modem_event *ev)
{
    if (m->on_event)
        m->on_event(m->event_ctx, m, ev);
}

void modem_event_state(struct modem *m, const char *state)
{
    struct modem_event ev = {.kind = MODEM_EV_STATE, .port = -1, .state = state};

    modem_emit(m, &ev);
}

void modem_flash_event(struct modem *m)
{
    struct modem_event ev = {.kind = MODEM_EV_FLASH, .port = -1};

    if (!m->flash_open || flash_ops(&m->flash) == m->flash_ops_seen)
        return;
    m->flash_ops_seen = flash_ops(&m->flash);
    modem_emit(m, &ev);
}

const char *modem_power_name(enum modem_power p)
{
    static const char *const names[] = {"off", "booting", "on", "dead", "upgrade", "bricked"};

    return p <= MODEM_BRICKED ? names[p] : "?";
}

const char *modem_revision(const struct modem *m)
{
    return m->fw_ok ? m->fw.revision : "";
}

void modem_fota_note(struct modem *m, const char *fmt, ...)
{
    struct modem_event out = {.kind = MODEM_EV_FOTA, .port = -1};
    char text[160];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    out.data = text;
    out.len = n < 0 ? 0 : (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1;
    modem_emit(m, &out);
}

void modem_fota_event(struct modem *m, const struct fota_event *ev)
{
    static const char *const kinds[] = {"verified", "refused", "apply-start", "progress",
                                        "applied",  "failed",  "result"};

    if (ev->kind == FOTA_EV_PROGRESS || ev->kind == FOTA_EV_APPLY_START)
        modem_fota_note(m, "%s %u%s", kinds[ev->kind], ev->pct, ev->resumed ? " resumed" : "");
    else if (ev->err != PKG_OK || ev->kind == FOTA_EV_RESULT)
        modem_fota_note(m, "%s %d %s", kinds[ev->kind], (int)ev->err, pkg_err_name(ev->err));
    else
        modem_fota_note(m, "%s", kinds[ev->kind]);
}

int modem_reg_state(const struct modem *m)
{
    if (m->power != MODEM_ON || !m->radio.sim_present || m->cfun != 1)
        return RADIO_REG_NONE;
    return m->radio.reg;
}

/* ---- ports ---------------------------------------------------------------------------------- */

static void modem_port_write(void *ctx, const void *buf, size_t len)
{
    struct modem_port *p = ctx;
    struct modem *m = p->m;

    /* After a cut nothing reaches the host. */
    if (m->power == MODEM_DEAD || m->power == MODEM_OFF || !p->pty_open)
        return;
    pty_write(&p->pty, buf, len);
}

/* The PTY hands a batch to the kernel: that is what the host sees, one event per batch. */
static void modem_port_tx(void *ctx, const uint8_t *buf, size_t len)
{
    struct modem_port *p = ctx;
    struct modem_event ev = {.kind = MODEM_EV_TX, .port = p->index, .data = buf, .len = len};

    modem_emit(p->m, &ev);
}

/* Bytes the module takes from its receive FIFO. */
static void modem_port_deliver(void *ctx, const uint8_t *buf, size_t len)
{
    struct modem_port *p = ctx;
    struct modem *m = p->m;
    struct modem_event ev = {.kind = MODEM_EV_RX, .port = p->index, .data = buf, .len = len};

    if (m->power != MODEM_ON || !p->at_ready)
        return;
    modem_emit(m, &ev);
    if (m->fota_held) {
        /* The host's first characters gave the rate: the withheld result goes out now. */
        m->fota_held = false;
        fota_booted(&m->fota);
    }
    at_input(&p->at, buf, len);
    modem_flash_event(m);
}

static void modem_port_throttle(void *ctx, bool stop)
{
    struct modem_port *p = ctx;

    if (p->pty_open)
        pty_pause(&p->pty, stop);
}

static void modem_port_rx(void *ctx, const uint8_t *buf, size_t len)
{
    struct modem_port *p = ctx;
    struct modem *m = p->m;

    /* A module that is off or still booting does not hear the host. */
    if (m->power != MODEM_ON || !p->at_ready)
        return;
    uart_rx(&p->uart, buf, len);
}

bool modem_port_flow(const struct modem *m, const struct modem_port *p)
{
    return p->index == 0 ? m->ifc_rx == 2 && m->ifc_tx == 2 : m->usb_flow;
}

void modem_port_uart_update(struct modem *m, struct modem_port *p)
{
    uint32_t baud = (uint32_t)(m->ipr > 0 ? m->ipr : 115200);
    double wire = m->pacing ? (double)baud / 10.0 : 0;
    double rate = wire;
    bool flow = modem_port_flow(m, p);

    if (p->rx_limit > 0 && (rate <= 0 || p->rx_limit < rate))
        rate = p->rx_limit;
    uart_config(&p->uart, rate, flow);
    /* The UART also sends at its baud rate; the USB port has no baud rate to keep. */
    if (p->index == 0 && p->pty_open)
        pty_set_baud(&p->pty, m->pacing ? baud : 0);
}

/* A cut: what the UART had still to send dies with the power (only a paced port holds any). */
static void modem_port_tx_cut(struct modem *m)
{
    if (m->pacing && m->ports[0].pty_open)
        pty_discard(&m->ports[0].pty);
}

static const char *modem_errtext(void *ctx, int code)
{
    const char *text = cmd_basic_errtext(code);

    (void)ctx;
    /* The 27.007 codes first; the Quectel FILE (4xx) and TCP/IP (5xx) codes do not overlap. */
    if (!text)
        text = cmd_quectel_file_errtext(code);
    return text ? text : cmd_quectel_net_errtext(code);
}

static void modem_port_start(struct modem *m, struct modem_port *p)
{
    struct at_engine_cfg cfg = {
        .tables = m->model->tables,
        .ntables = m->model->ntables,
        .handler_ctx = p,
        .write = modem_port_write,
        .write_ctx = p,
        .cmee = &m->cmee,
        .errtext = modem_errtext,
        .errtext_ctx = m,
        .echo_default = true,
    };

    /* The Mini system answers only its few commands; the rest is ERROR (unknown to it). */
    if (m->system == MODEM_SYS_MINI)
        cfg.tables = qmini_tables(&m->qmini, &cfg.ntables);
    at_init(&p->at, &cfg);
    p->at_ready = true;
    modem_load_profile(m, p);
    uart_init(&p->uart, m->loop, modem_port_deliver, modem_port_throttle, p);
    p->rx_limit = 0;
    modem_port_uart_update(m, p);
}

static void modem_port_stop(struct modem_port *p)
{
    if (p->job && p->job_drop)
        p->job_drop(p->job);
    p->job = NULL;
    p->job_drop = NULL;
    if (p->at_ready) {
        uart_release(&p->uart);
        at_release(&p->at);
    }
    p->at_ready = false;
}

/* ---- profile (AT&W / ATZ) ------------------------------------------------------------------- */

int modem_save_profile(struct modem *m, struct modem_port *p)
{
    uint8_t v[4] = {p->at.echo, p->at.verbose, p->at.quiet, (uint8_t)m->cmee};

    if (!m->storage_ok)
        return -EIO;
    return nv_set(&m->nv, MODEM_PROFILE_KEY, v, sizeof(v));
}

void modem_load_profile(struct modem *m, struct modem_port *p)
{
    uint8_t v[4];

    at_defaults(&p->at);
    m->cmee = m->model->cmee_default;
    if (!m->storage_ok || nv_get(&m->nv, MODEM_PROFILE_KEY, v, sizeof(v)) != (int)sizeof(v))
        return;
    p->at.echo = v[0] != 0;
    p->at.verbose = v[1] != 0;
    p->at.quiet = v[2] != 0;
    if (v[3] <= 2)
        m->cmee = v[3];
}

int modem_save_ipr(struct modem *m)
{
    if (!m->storage_ok)
        return -EIO;
    return nv_set_i64(&m->nv, MODEM_IPR_KEY, m->ipr);
}

/* ---- URCs and the radio ----------------------------------------------------------------------- */

void modem_urc(struct modem *m, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    struct modem_event ev = {.kind = MODEM_EV_URC, .port = -1, .data = text};

    if (m->power != MODEM_ON && m->power != MODEM_BOOTING && m->power != MODEM_UPGRADE)
        return;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (m->cut_urc[0] && strncmp(text, m->cut_urc, strlen(m->cut_urc)) == 0) {
        m->cut_urc[0] = 0;
        modem_power_cut(m, m->cut_urc_restore);
        return;
    }
    ev.len = strlen(text);
    modem_emit(m, &ev);
    for (unsigned i = 0; i < m->nports; i++)
        if (m->ports[i].at_ready)
            at_urc(&m->ports[i].at, "%s", text);
}

void modem_net_update(struct modem *m)
{
    int stat = modem_reg_state(m);
    bool up = (stat == RADIO_REG_HOME || stat == RADIO_REG_ROAMING) && m->attached && !m->outage;

    m->net.up = up;
    xfer_env_changed(&m->xenv);
}

void modem_set_attached(struct modem *m, bool attached)
{
    int cid = m->model->ip_cid;

    /* Only the attach itself activates the default bearer: a host's AT+QIDEACT of it holds
     * until the next attach, whatever else the radio reports meanwhile. */
    if (attached && !m->attached && cid >= 0 && cid < MODEM_MAX_CIDS)
        m->pdp[cid].active = true;
    if (!attached)
        for (int i = 0; i < MODEM_MAX_CIDS; i++)
            m->pdp[i].active = false;
    m->attached = attached;
}

bool modem_ctx_up(const struct modem *m, int cid)
{
    int stat = modem_reg_state(m);

    if (cid < 0 || cid >= MODEM_MAX_CIDS || !m->pdp[cid].active)
        return false;
    return m->attached && (stat == RADIO_REG_HOME || stat == RADIO_REG_ROAMING) && !m->outage;
}

void modem_xfer_defaults(const struct modem *m, struct xfer_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->connect_timeout = 20;
    o->low_speed_time = 20;
    o->verify_peer = true;
    o->ca_file = m->ca_file;
}

static void modem_radio_changed(void *ctx, const struct radio *r)
{
    struct modem *m = ctx;
    int stat = modem_reg_state(m);

    (void)r;
    /* LTE attaches with the registration (unless the host detached with AT+CGATT=0). */
    modem_set_attached(m,
                       m->attach_wanted && (stat == RADIO_REG_HOME || stat == RADIO_REG_ROAMING));
    if (m->power != MODEM_ON || stat == m->reg_seen) {
        modem_net_update(m);
        return;
    }
    m->reg_seen = stat;
    cmd_basic_reg_urcs(m, stat);
    modem_net_update(m);
}

/* ---- power ------------------------------------------------------------------------------------ */

static void modem_booted(void *ctx)
{
    struct modem *m = ctx;
    const enum model_boot *lines = m->system == MODEM_SYS_MINI ? qmini_boot_lines : m->model->boot;
    bool reported = false;

    m->power = MODEM_ON;
    m->reg_seen = modem_reg_state(m);
    m->attach_wanted = true;
    modem_set_attached(m, m->reg_seen == RADIO_REG_HOME || m->reg_seen == RADIO_REG_ROAMING);
    modem_net_update(m);
    modem_event_state(m, "on");
    for (const enum model_boot *b = lines; *b != MODEL_BOOT_END; b++) {
        if (*b == MODEL_BOOT_FOTA) {
            /* The model says where among its boot lines an update's result appears. In
             * auto-baud mode it waits for the host's first characters (seed 004 2.2 note). */
            if (m->model->autobaud && m->ipr == 0 && m->fota.state == FOTA_ST_REPORT &&
                qfota_job_pending(&m->qfota))
                m->fota_held = true;
            else
                fota_booted(&m->fota);
            reported = true;
        } else {
            cmd_basic_boot_line(m, *b);
        }
    }
    if (!reported)
        fota_booted(&m->fota);
    qmini_booted(&m->qmini);
    modem_flash_event(m);
}

/* An upgrade boot: the apply runs now; the module restarts when it is done. */
static void modem_upgrade_started(void *ctx)
{
    struct modem *m = ctx;

    /* The Mini system's update (MiniFOTA step 4) or an engine job. */
    if (m->system == MODEM_SYS_MINI)
        qmini_upgrade(&m->qmini);
    else
        fota_upgrade(&m->fota);
    modem_flash_event(m);
}

/*
 * Factory programming of a new state dir: the image goes into the active slot through the flash
 * model, then NV records that it is there. A cut before that record simply programs it again.
 */
static int modem_provision(struct modem *m)
{
    const struct flash_geom *g = flash_geometry(&m->flash);
    struct fw_image_info info;
    uint32_t off = fota_active_offset(m), span;
    const struct model_part *sys = model_part(m->model, "system");
    struct model_image own = {0}, *cache = m->factory ? m->factory : &own;
    int64_t done = 0;
    const uint8_t *img;
    size_t len = 0;
    int rc;

    if (nv_get_i64(&m->nv, MODEM_PROVISIONED_KEY, &done) == 0 && done)
        return 0;
    rc = model_image_get(cache, m->model, &img, &len);
    if (rc)
        return rc;
    if (!sys || fw_image_parse(img, len, true, &info) || len > sys->size) {
        rc = -EINVAL;
        goto out;
    }
    span = (uint32_t)((len + g->erase_size - 1) / g->erase_size * g->erase_size);
    rc = flash_erase_range(&m->flash, off, span);
    if (!rc)
        rc = flash_write(&m->flash, off, img, (uint32_t)len);
    if (!rc)
        rc = nv_set_i64(&m->nv, MODEM_PROVISIONED_KEY, 1);
out:
    model_image_free(&own);
    return rc;
}

/*
 * MiniFOTA builds: the factory also programs the Mini system into its partition, once (after a
 * MiniFOTA update the partition holds the new Mini system, which must stay).
 */
static int modem_provision_mini(struct modem *m)
{
    const struct flash_geom *g = flash_geometry(&m->flash);
    const struct model_part *mini = model_part(m->model, "mini");
    int64_t done = 0;
    uint8_t *img = NULL;
    size_t len = 0;
    int rc;

    if (!m->model->mini_image_size || !mini ||
        (nv_get_i64(&m->nv, MODEM_MINI_PROVISIONED_KEY, &done) == 0 && done))
        return 0;
    rc = model_mini_image(m->model, &img, &len);
    if (rc)
        return rc;
    rc = len > mini->size ? -EINVAL : 0;
    if (!rc)
        rc = flash_erase_range(&m->flash, mini->off,
                               (uint32_t)((len + g->erase_size - 1) / g->erase_size *
                                          g->erase_size));
    if (!rc)
        rc = flash_write(&m->flash, mini->off, img, (uint32_t)len);
    if (!rc)
        rc = nv_set_i64(&m->nv, MODEM_MINI_PROVISIONED_KEY, 1);
    free(img);
    return rc;
}

/* What the boot loader finds in the active slot (or the Mini system's partition): a valid
 * image, or nothing it can run. */
static void modem_read_image(struct modem *m)
{
    const struct model_part *sys = model_part(m->model, "system");
    uint32_t off = fota_active_offset(m);

    if (m->system == MODEM_SYS_MINI) {
        sys = model_part(m->model, "mini");
        off = sys ? sys->off : 0;
    }
    m->fw_ok = sys && fw_image_parse(flash_data(&m->flash) + off, sys->size, true, &m->fw) == 0;
    /* The check read the whole image once; an idle module need not keep it resident. */
    if (sys)
        flash_evict(&m->flash, off, sys->size);
}

static int modem_mount(struct modem *m)
{
    const struct model_part *nvp = model_part(m->model, "nv");
    const struct model_part *ufp = model_part(m->model, "ufs");
    char path[PATH_MAX + 16];
    int rc;

    if (!m->flash_open) {
        snprintf(path, sizeof(path), "%s/flash.bin", m->dir);
        rc = flash_open(&m->flash, path, &m->model->geom);
        if (rc)
            return rc;
        m->flash_open = true;
    }
    flash_power_on(&m->flash);
    m->flash_ops_seen = 0;
    m->storage_ok = false;
    if (!nvp || !ufp)
        return -EINVAL;
    rc = nv_mount(&m->nv, &m->flash, nvp->off, nvp->size);
    if (rc)
        return rc;
    rc = ufs_mount(&m->ufs, &m->flash, ufp->off, ufp->size);
    if (rc) {
        nv_unmount(&m->nv);
        return rc;
    }
    m->storage_ok = true;
    return 0;
}

static void modem_settings_defaults(struct modem *m)
{
    m->cmee = m->model->cmee_default;
    m->cfun = 1;
    m->creg_n = m->cereg_n = 0;
    snprintf(m->cscs, sizeof(m->cscs), "GSM");
    m->ipr = 115200;
    m->fota_held = false;
    if (m->model->autobaud) {
        int64_t ipr = 0;
        /* Auto-baud until AT+IPR fixes a rate, which the module keeps. */
        if (!m->storage_ok || nv_get_i64(&m->nv, MODEM_IPR_KEY, &ipr) || ipr < 0 || ipr > 921600)
            ipr = 0;
        m->ipr = (long)ipr;
    }
    m->ifc_rx = m->ifc_tx = 0;
    m->usbifc_rx = m->usbifc_tx = 0;
    m->usb_flow = false;
    m->fota_cid = 1;
    /* No context is active before the attach after boot (modem_booted). */
    m->attached = false;
    memset(m->pdp, 0, sizeof(m->pdp));
    m->pdp[1].defined = true;
    m->pdp[1].ip_type = 1;
    snprintf(m->pdp[1].type, sizeof(m->pdp[1].type), "IP");
}

int modem_power_on(struct modem *m)
{
    enum fota_boot how = FOTA_BOOT_NORMAL;
    int rc;

    if (m->power != MODEM_OFF)
        return -EBUSY;
    vtimer_stop(&m->restore_timer);
    rc = modem_mount(m);
    if (rc) {
        fprintf(stderr, "modtwin: module %d: storage: %s\n", m->index, strerror(-rc));
        if (!m->flash_open)
            return rc;
        /* A module whose NV or UFS cannot mount still boots, as a real one would. */
    }
    flash_set_cut_cb(&m->flash, NULL, NULL);
    modem_settings_defaults(m);
    m->fw_ok = false;
    m->system = MODEM_SYS_MAIN;
    if (m->storage_ok) {
        rc = modem_provision(m);
        if (!rc)
            rc = modem_provision_mini(m);
        if (rc && rc != -ECANCELED)
            fprintf(stderr, "modtwin: module %d: factory image: %s\n", m->index, strerror(-rc));
        how = fota_boot(&m->fota);
        /* No engine job: a MiniFOTA record may send this boot to the Mini system. */
        if (how == FOTA_BOOT_NORMAL) {
            enum qmini_boot mb = qmini_boot(&m->qmini);
            if (mb != QMINI_BOOT_MAIN)
                m->system = MODEM_SYS_MINI;
            if (mb == QMINI_BOOT_UPGRADE)
                how = FOTA_BOOT_UPGRADE;
        }
    }
    modem_read_image(m);
    if (how == FOTA_BOOT_NORMAL && !m->fw_ok)
        how = FOTA_BOOT_BRICKED; /* nothing valid to run: the boot loader stops here */
    for (unsigned i = 0; i < m->nports; i++) {
        struct modem_port *p = &m->ports[i];
        if (!p->pty_open) {
            rc = pty_open(&p->pty, m->hub, p->link[0] ? p->link : NULL, modem_port_rx, p);
            if (rc)
                fprintf(stderr, "modtwin: module %d: %s port: %s\n", m->index, p->kind,
                        strerror(-rc));
            p->pty_open = rc == 0;
            p->pty.on_tx = modem_port_tx;
        }
        modem_port_start(m, p);
    }
    m->boots++;
    switch (how) {
    case FOTA_BOOT_BRICKED:
        m->power = MODEM_BRICKED;
        modem_event_state(m, "bricked");
        break;
    case FOTA_BOOT_UPGRADE:
        m->power = MODEM_UPGRADE;
        modem_event_state(m, "upgrade");
        vtimer_start(&m->boot_timer, m->clock, m->model->boot_seconds, modem_upgrade_started, m);
        break;
    case FOTA_BOOT_NORMAL:
        m->power = MODEM_BOOTING;
        modem_event_state(m, "booting");
        vtimer_start(&m->boot_timer, m->clock, m->model->boot_seconds, modem_booted, m);
        break;
    }
    modem_flash_event(m);
    return 0;
}

/* Drops the RAM state of a module that stopped running. Writes nothing. */
static void modem_teardown(struct modem *m)
{
    vtimer_stop(&m->boot_timer);
    fota_stop(&m->fota);
    qfota_stop(&m->qfota);
    qmini_stop(&m->qmini);
    /* Transfers die with the power; the download's unsynced bytes are lost (ufs_abort). */
    dl_cancel(&m->dl);
    xfer_env_free(&m->xenv);
    m->net.up = false;
    for (unsigned i = 0; i < m->nports; i++) {
        struct modem_port *p = &m->ports[i];
        modem_port_stop(p);
        /* USB ports vanish with the power, as CDC ports do; the UART stays. */
        if (i > 0 && p->pty_open) {
            pty_close(&p->pty);
            p->pty_open = false;
        }
    }
    if (m->storage_ok) {
        ufs_unmount(&m->ufs);
        nv_unmount(&m->nv);
        m->storage_ok = false;
    }
    if (m->flash_open) {
        flash_close(&m->flash);
        m->flash_open = false;
    }
    m->power = MODEM_OFF;
}

static void modem_restore(void *ctx)
{
    modem_power_on(ctx);
}

static void modem_reap_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    struct modem *m = w->data;

    (void)revents;
    ev_idle_stop(loop, w);
    modem_teardown(m);
    modem_event_state(m, "off");
    if (m->restore_after >= 0)
        vtimer_start(&m->restore_timer, m->clock, m->restore_after, modem_restore, m);
}

/* Stops the module now; its RAM state goes at the next loop turn. */
static void modem_stop(struct modem *m, double restore_after)
{
    m->power = MODEM_DEAD;
    m->restore_after = restore_after;
    vtimer_stop(&m->boot_timer);
    vtimer_stop(&m->fota.tick);
    vtimer_stop(&m->qmini.timer);
    if (!ev_is_active(&m->reap))
        ev_idle_start(m->loop, &m->reap);
}

void modem_arm_cut_urc(struct modem *m, const char *prefix, double restore_after)
{
    snprintf(m->cut_urc, sizeof(m->cut_urc), "%s", prefix);
    m->cut_urc_restore = restore_after;
}

void modem_power_cut(struct modem *m, double restore_after)
{
    modem_port_tx_cut(m);
    if (m->power == MODEM_OFF) {
        vtimer_stop(&m->restore_timer);
        return;
    }
    if (m->flash_open)
        flash_kill(&m->flash);
    if (m->power != MODEM_DEAD)
        modem_event_state(m, "cut");
    modem_stop(m, restore_after);
}

static void modem_flash_cut(void *ctx, uint64_t op)
{
    struct modem *m = ctx;

    (void)op;
    modem_power_cut(m, m->restore_after);
}

void modem_arm_cut(struct modem *m, uint64_t nth, enum flash_fault kind, uint32_t seed,
                   double restore_after)
{
    if (!m->flash_open)
        return;
    m->restore_after = restore_after;
    flash_set_cut_cb(&m->flash, modem_flash_cut, m);
    flash_arm(&m->flash, nth, kind, seed);
}

void modem_power_off(struct modem *m)
{
    if (m->power == MODEM_OFF || m->power == MODEM_DEAD)
        return;
    if (m->model->off_line && m->power == MODEM_ON) {
        char line[64];
        int n = snprintf(line, sizeof(line), "\r\n%s\r\n", m->model->off_line);
        /* The last words go out directly: held URCs would die with the module. */
        for (unsigned i = 0; i < m->nports; i++)
            if (m->ports[i].at_ready)
                at_raw(&m->ports[i].at, line, (size_t)n);
    }
    modem_stop(m, -1);
}

void modem_reboot(struct modem *m)
{
    if (m->power == MODEM_OFF) {
        modem_power_on(m);
        return;
    }
    if (m->power != MODEM_DEAD)
        modem_event_state(m, "reboot");
    modem_stop(m, 0);
}

void modem_reset(struct modem *m)
{
    if (m->power == MODEM_OFF) {
        modem_power_on(m);
        return;
    }
    modem_power_cut(m, 0);
}

/* ---- life cycle ------------------------------------------------------------------------------- */

int modem_init(struct modem *m, const struct model *model, int index, const char *dir,
               const char *link, struct pty_hub *hub, struct vclock *clock)
{
    int rc;

    memset(m, 0, sizeof(*m));
    m->model = model;
    m->loop = hub->loop;
    m->hub = hub;
    m->clock = clock;
    m->index = index;
    m->restore_after = -1;
    if (strlen(dir) >= sizeof(m->dir))
        return -ENAMETOOLONG;
    strcpy(m->dir, dir);
    model_imei(model, index, m->imei);
    radio_defaults(&m->radio, model->act, model->ip);
    fota_init(&m->fota, m);
    qfota_init(&m->qfota, m);
    qmini_init(&m->qmini, m);
    m->policy = model->policy;
    m->xenv.loop = hub->loop;
    m->xenv.net = &m->net;
    m->radio.changed = modem_radio_changed;
    m->radio.ctx = m;
    ev_idle_init(&m->reap, modem_reap_cb);
    m->reap.data = m;
    m->nports = model->nports > MODEM_MAX_PORTS ? MODEM_MAX_PORTS : model->nports;
    for (unsigned i = 0; i < m->nports; i++) {
        struct modem_port *p = &m->ports[i];
        p->m = m;
        p->index = (int)i;
        p->kind = i == 0 ? "uart" : "usb";
        if (link && snprintf(p->link, sizeof(p->link), "%s%s", link, i ? ".usb" : "") >=
                        (int)sizeof(p->link))
            return -ENAMETOOLONG;
    }
    /* The UART exists while the process does: a host may open it before power-on. */
    rc = pty_open(&m->ports[0].pty, hub, link, modem_port_rx, &m->ports[0]);
    if (rc)
        return rc;
    m->ports[0].pty.on_tx = modem_port_tx;
    m->ports[0].pty_open = true;
    return 0;
}

void modem_free(struct modem *m)
{
    if (ev_is_active(&m->reap))
        ev_idle_stop(m->loop, &m->reap);
    vtimer_stop(&m->restore_timer);
    if (m->power != MODEM_OFF)
        modem_teardown(m);
    for (unsigned i = 0; i < m->nports; i++) {
        if (m->ports[i].pty_open)
            pty_close(&m->ports[i].pty);
        m->ports[i].pty_open = false;
    }
}
