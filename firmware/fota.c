/*
 * The FOTA job state machine (see the diagram in fota.h). One `struct fota` per module; its
 * work runs from a virtual-time tick: a verify, then one apply step per tick (a step is one
 * segment of flash work, so every flash operation of an update is a power-loss point), and a
 * state change writes the job journal before anything else happens in the new state.
 *
 * Job journal, NV key "fota.job": u8 version (1), u8 state, u8 apply_now, u8 outcome (enum
 * pkg_err), then the package file name, NUL-terminated. Not here: downloads, URCs and codes
 * (the families), the segment work itself (fota_apply.c).
 */
#include "firmware/fota.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "firmware/modem.h"

#define FOTA_JOB_KEY "fota.job"
#define FOTA_JOB_VERSION 1

static const char *const fota_state_names[FOTA_ST_COUNT] = {
    "idle", "verify", "wait", "apply", "reboot", "report",
};

const char *fota_state_name(enum fota_state s)
{
    return (unsigned)s < FOTA_ST_COUNT ? fota_state_names[s] : "?";
}

static const char *const fota_policy_names[] = {"resume", "rollback", "brick"};

const char *fota_policy_name(enum fota_policy p)
{
    return (unsigned)p <= FOTA_POLICY_BRICK ? fota_policy_names[p] : "?";
}

int fota_policy_parse(const char *s, enum fota_policy *p)
{
    for (unsigned i = 0; i <= FOTA_POLICY_BRICK; i++) {
        if (strcmp(s, fota_policy_names[i]) == 0) {
            *p = (enum fota_policy)i;
            return 0;
        }
    }
    return -EINVAL;
}

/* ---- layout ---------------------------------------------------------------------------------- */

int fota_layout(const struct modem *m, struct fota_layout *lay)
{
    const struct model_part *sys = model_part(m->model, "system");
    const struct model_part *other;

    memset(lay, 0, sizeof(*lay));
    lay->topo = m->model->topo;
    if (!sys)
        return -EINVAL;
    lay->slot_off[0] = sys->off;
    lay->slot_size = sys->size;
    switch (lay->topo) {
    case FOTA_TOPO_STAGING:
    case FOTA_TOPO_AB:
        /* The second slot: where the target is built (staging) or the other bank (A/B). */
        other = model_part(m->model, lay->topo == FOTA_TOPO_AB ? "system_b" : "backup");
        if (!other)
            return -EINVAL;
        lay->slot_off[1] = other->off;
        if (other->size < lay->slot_size)
            lay->slot_size = other->size;
        return 0;
    case FOTA_TOPO_INPLACE:
        other = model_part(m->model, "backup");
        if (!other)
            return -EINVAL;
        lay->backup_off = other->off;
        lay->backup_size = other->size;
        return 0;
    }
    return -EINVAL;
}

uint32_t fota_active_offset(const struct modem *m)
{
    struct fota_layout lay;

    if (fota_layout(m, &lay))
        return 0;
    if (lay.topo == FOTA_TOPO_AB && m->storage_ok && fota_apply_active_slot(&m->nv) == 1)
        return lay.slot_off[1];
    return lay.slot_off[0];
}

/* ---- journal --------------------------------------------------------------------------------- */

/* Enters state s: the journal says so before anything of s happens. 0 or -errno. */
static int fota_enter(struct fota *f, enum fota_state s)
{
    uint8_t rec[4 + UFS_NAME_MAX + 1];
    size_t n = strlen(f->file);

    f->state = s;
    if (s == FOTA_ST_IDLE)
        return nv_del(&f->m->nv, FOTA_JOB_KEY) == -ECANCELED ? -ECANCELED : 0;
    rec[0] = FOTA_JOB_VERSION;
    rec[1] = (uint8_t)s;
    rec[2] = f->apply_now;
    rec[3] = (uint8_t)f->outcome;
    memcpy(rec + 4, f->file, n + 1);
    return nv_set(&f->m->nv, FOTA_JOB_KEY, rec, 4 + n + 1);
}

/* Reads the journal into f; false when there is none (or it is unreadable). */
static bool fota_load(struct fota *f)
{
    uint8_t rec[4 + UFS_NAME_MAX + 1];
    int n = nv_get(&f->m->nv, FOTA_JOB_KEY, rec, sizeof(rec));

    if (n < 5 || rec[0] != FOTA_JOB_VERSION || rec[1] >= FOTA_ST_COUNT || rec[n - 1] != 0 ||
        rec[3] >= PKG_E_COUNT)
        return false;
    f->state = (enum fota_state)rec[1];
    f->apply_now = rec[2] != 0;
    f->outcome = (enum pkg_err)rec[3];
    memcpy(f->file, rec + 4, (size_t)n - 4);
    return true;
}

/* ---- events ---------------------------------------------------------------------------------- */

static void fota_post(struct fota *f, enum fota_ev_kind kind, enum pkg_err err, unsigned pct)
{
    struct fota_event ev = {.kind = kind, .err = err, .pct = pct, .resumed = f->resumed};
    const struct fota_family *fam = f->m->model->fota_family;

    modem_fota_event(f->m, &ev);
    if (fam && fam->on_event)
        fam->on_event(f->m, &ev);
}

/* ---- the package ----------------------------------------------------------------------------- */

static int fota_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    struct fota *f = ctx;
    ssize_t n = ufs_pread(&f->m->ufs, f->file, off, buf, len);

    if (n < 0)
        return (int)n;
    return (size_t)n == len ? 0 : -ENODATA;
}

static void fota_drop_package(struct fota *f)
{
    if (f->ap_live)
        fota_apply_end(&f->ap);
    f->ap_live = false;
    free(f->segs);
    f->segs = NULL;
}

/* Header and table of the job's package. */
static enum pkg_err fota_open_package(struct fota *f)
{
    uint8_t hdr[PKG_HDR];
    struct ufs_stat st;
    enum pkg_err e;

    fota_drop_package(f);
    if (ufs_stat(&f->m->ufs, f->file, &st))
        return PKG_E_IO;
    if (st.size < PKG_HDR)
        return PKG_E_TRUNCATED;
    if (fota_read(f, 0, hdr, sizeof(hdr)))
        return PKG_E_IO;
    e = pkg_parse_header(hdr, sizeof(hdr), st.size, &f->hdr);
    if (e != PKG_OK)
        return e;
    return pkg_read_table(&f->hdr, fota_read, f, &f->segs);
}

/*
 * Does the package fit the running image? The order is the order a module checks in: what the
 * package is, whom it is for, then the bytes it was made from.
 */
static enum pkg_err fota_verify(struct fota *f)
{
    const struct modem *m = f->m;
    const struct pkg_hdr *h = &f->hdr;
    struct fota_layout lay;
    uint8_t sha[32];
    enum pkg_err e = fota_open_package(f);

    if (e != PKG_OK)
        return e;
    if (fota_layout(m, &lay))
        return PKG_E_IO;
    if (h->kind != PKG_DELTA && h->kind != PKG_FULL)
        return PKG_E_KIND;
    if (lay.topo == FOTA_TOPO_INPLACE && h->kind == PKG_DELTA && !(h->flags & PKG_F_INPLACE))
        return PKG_E_KIND;
    if (!m->fw_ok)
        return PKG_E_SOURCE_DIGEST;
    if (strcmp(h->project, m->fw.project) != 0)
        return PKG_E_PROJECT;
    if (strcmp(h->baseline, m->fw.baseline) != 0)
        return PKG_E_BASELINE;
    if (h->kind == PKG_DELTA) {
        if (strcmp(h->source_rev, m->fw.revision) != 0)
            return PKG_E_SOURCE_REV;
        if (h->source_size != fw_image_size(&m->fw) || h->source_size > lay.slot_size)
            return PKG_E_SOURCE_DIGEST;
        if (pkg_digest(flash_data(&m->flash) + fota_active_offset(m), h->source_size, sha, NULL,
                       NULL))
            return PKG_E_IO;
        if (memcmp(sha, h->source_sha256, sizeof(sha)) != 0)
            return PKG_E_SOURCE_DIGEST;
    }
    if (h->target_size > lay.slot_size)
        return PKG_E_TOO_BIG;
    return PKG_OK;
}

/* ---- the tick -------------------------------------------------------------------------------- */

static void fota_tick(void *ctx);

static void fota_schedule(struct fota *f, double after)
{
    vtimer_start(&f->tick, f->m->clock, after, fota_tick, f);
}

/* The apply stopped for good: report, forget the job, and leave upgrade mode if in it. */
static void fota_fail(struct fota *f, enum pkg_err err)
{
    bool upgrading = f->m->power == MODEM_UPGRADE;

    fota_drop_package(f);
    fota_apply_clear(&f->m->nv);
    f->outcome = err;
    fota_post(f, FOTA_EV_FAILED, err, f->pct);
    if (fota_enter(f, upgrading ? FOTA_ST_REPORT : FOTA_ST_IDLE) == -ECANCELED)
        return;
    if (upgrading)
        modem_reboot(f->m);
}

/* Opens the apply: a fresh begin, or a resume of what the apply journal says. */
static void fota_apply_open(struct fota *f)
{
    struct fota_layout lay;
    struct fota_pkg pkg;
    enum pkg_err e = fota_open_package(f);
    int rc;

    if (e == PKG_OK && fota_layout(f->m, &lay))
        e = PKG_E_IO;
    if (e != PKG_OK) {
        fota_fail(f, e);
        return;
    }
    pkg = (struct fota_pkg){&f->hdr, f->segs, fota_read, f};
    rc = fota_apply_resume(&f->ap, &f->m->flash, &f->m->nv, &lay, &pkg);
    if (rc == -ENOENT || rc == -ESTALE)
        rc = fota_apply_begin(&f->ap, &f->m->flash, &f->m->nv, &lay, &pkg);
    if (rc == -ECANCELED)
        return;
    if (rc) {
        fota_fail(f, f->ap.err != PKG_OK ? f->ap.err : PKG_E_IO);
        return;
    }
    f->ap_live = true;
    f->pct = fota_apply_progress(&f->ap);
    fota_post(f, FOTA_EV_APPLY_START, PKG_OK, f->pct);
    fota_schedule(f, f->m->model->apply_step_seconds);
}

static void fota_tick_verify(struct fota *f)
{
    enum pkg_err e = fota_verify(f);

    if (e != PKG_OK) {
        fota_drop_package(f);
        f->outcome = e;
        if (fota_enter(f, FOTA_ST_IDLE) == -ECANCELED)
            return;
        fota_post(f, FOTA_EV_REFUSED, e, 0);
        return;
    }
    fota_post(f, FOTA_EV_VERIFIED, PKG_OK, 0);
    if (fota_enter(f, f->apply_now ? FOTA_ST_APPLY : FOTA_ST_WAIT))
        return;
    if (f->apply_now)
        fota_apply_open(f);
    else
        modem_reboot(f->m);
}

static void fota_tick_apply(struct fota *f)
{
    int rc = fota_apply_step(&f->ap);
    unsigned pct;

    if (rc == -ECANCELED)
        return; /* the power went: nothing more happens */
    if (rc < 0) {
        fota_fail(f, f->ap.err != PKG_OK ? f->ap.err : PKG_E_IO);
        return;
    }
    pct = fota_apply_progress(&f->ap);
    if (pct != f->pct) {
        f->pct = pct;
        fota_post(f, FOTA_EV_PROGRESS, PKG_OK, pct);
    }
    if (rc > 0) {
        fota_schedule(f, f->m->model->apply_step_seconds);
        return;
    }
    fota_drop_package(f);
    f->outcome = PKG_OK;
    if (fota_enter(f, FOTA_ST_REBOOT))
        return;
    fota_post(f, FOTA_EV_APPLIED, PKG_OK, 100);
    modem_reboot(f->m);
}

static void fota_tick(void *ctx)
{
    struct fota *f = ctx;

    if (f->state == FOTA_ST_VERIFY)
        fota_tick_verify(f);
    else if (f->state == FOTA_ST_APPLY && f->ap_live)
        fota_tick_apply(f);
    modem_flash_event(f->m);
}

/* ---- entry points ---------------------------------------------------------------------------- */

void fota_init(struct fota *f, struct modem *m)
{
    memset(f, 0, sizeof(*f));
    f->m = m;
}

int fota_start(struct fota *f, const char *file, bool apply_now)
{
    struct ufs_stat st;
    int rc;

    if (f->m->power != MODEM_ON || !f->m->storage_ok)
        return -ENODEV;
    if (f->state != FOTA_ST_IDLE)
        return -EBUSY;
    if (!file || !*file || strlen(file) > UFS_NAME_MAX)
        return -EINVAL;
    if (ufs_stat(&f->m->ufs, file, &st))
        return -ENOENT;
    strcpy(f->file, file);
    f->apply_now = apply_now;
    f->outcome = PKG_OK;
    f->resumed = false;
    f->pct = 0;
    rc = fota_enter(f, FOTA_ST_VERIFY);
    if (rc)
        return rc;
    fota_schedule(f, 0);
    return 0;
}

/* May this interrupted apply be dropped? Only while the running image is still untouched. */
static bool fota_can_roll_back(const struct fota *f)
{
    uint32_t seg;
    enum fota_phase ph = fota_apply_journal(&f->m->nv, &seg);

    return ph == FOTA_PH_NONE || ph == FOTA_PH_BUILD || ph == FOTA_PH_VERIFY ||
           ph == FOTA_PH_SWITCH;
}

enum fota_boot fota_boot(struct fota *f)
{
    fota_drop_package(f);
    f->state = FOTA_ST_IDLE;
    f->resumed = false;
    f->pct = 0;
    if (!fota_load(f))
        return FOTA_BOOT_NORMAL;
    switch (f->state) {
    case FOTA_ST_WAIT:
        /* Verified before the reboot: this boot is the upgrade. */
        if (fota_enter(f, FOTA_ST_APPLY))
            return FOTA_BOOT_NORMAL;
        return FOTA_BOOT_UPGRADE;
    case FOTA_ST_APPLY:
        f->resumed = true;
        if (f->m->policy == FOTA_POLICY_BRICK)
            return FOTA_BOOT_BRICKED;
        if (f->m->policy == FOTA_POLICY_ROLLBACK && fota_can_roll_back(f)) {
            fota_apply_clear(&f->m->nv);
            f->outcome = PKG_E_INTERRUPTED;
            fota_enter(f, FOTA_ST_REPORT);
            return FOTA_BOOT_NORMAL;
        }
        return FOTA_BOOT_UPGRADE;
    case FOTA_ST_REBOOT:
        fota_apply_clear(&f->m->nv);
        fota_enter(f, FOTA_ST_REPORT);
        return FOTA_BOOT_NORMAL;
    default:
        return FOTA_BOOT_NORMAL;
    }
}

void fota_booted(struct fota *f)
{
    switch (f->state) {
    case FOTA_ST_REPORT:
        fota_post(f, FOTA_EV_RESULT, f->outcome, f->outcome == PKG_OK ? 100 : f->pct);
        fota_enter(f, FOTA_ST_IDLE);
        break;
    case FOTA_ST_VERIFY:
        /* Cut while verifying: nothing was written; verify again. */
        fota_schedule(f, 0);
        break;
    default:
        break;
    }
}

void fota_upgrade(struct fota *f)
{
    if (f->state == FOTA_ST_APPLY)
        fota_apply_open(f);
}

void fota_stop(struct fota *f)
{
    vtimer_stop(&f->tick);
    fota_drop_package(f);
}
