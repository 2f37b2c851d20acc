/*
 * The FOTA job: one table-driven state machine shared by every vendor family.
 *
 *   IDLE --start--> VERIFY --ok, now---------------------------> APPLY --done--> REBOOT
 *                      |    \--ok, after reboot--> WAIT --boot--> APPLY            |
 *                      \--refused--> IDLE                           \--failed--> IDLE
 *   REBOOT --boot into the new image--> REPORT --reported--> IDLE
 *
 * Entering a state writes the job journal (NV "fota.job"); the apply engine keeps its own
 * journal of segments (firmware/fota_apply.h). At power-on fota_boot() reads the journal and,
 * for a job cut in APPLY, resumes it, rolls it back or leaves the module bricked as the model's
 * power-loss policy says. Callbacks only post: the work runs from the module's virtual timer.
 * Family code sees engine events (struct fota_event) and maps them to its URCs and codes.
 * Not here: downloading (the families start a job once their package is in UFS).
 */
#ifndef MODTWIN_FIRMWARE_FOTA_H
#define MODTWIN_FIRMWARE_FOTA_H

#include <stdbool.h>
#include <stdint.h>

#include "firmware/fota_apply.h"
#include "firmware/fw_image.h"
#include "firmware/pkg.h"
#include "hal/vclock.h"
#include "storage/ufs.h"

struct modem;

enum fota_state {
    FOTA_ST_IDLE,
    FOTA_ST_VERIFY, /* the package is checked against the running image */
    FOTA_ST_WAIT,   /* verified; the apply starts after the next reboot */
    FOTA_ST_APPLY,  /* the apply engine runs, one step per tick */
    FOTA_ST_REBOOT, /* applied; the module restarts into the new image */
    FOTA_ST_REPORT, /* booted after a job; the outcome is to be reported */
    FOTA_ST_COUNT
};

/* What a power cut during APPLY leaves (per model, `--powerloss-policy`). */
enum fota_policy {
    FOTA_POLICY_RESUME,   /* the next boot continues the apply (forced upgrade mode) */
    FOTA_POLICY_ROLLBACK, /* the next boot drops the apply while the old image is intact */
    FOTA_POLICY_BRICK,    /* the module never boots again (the document warns of damage) */
};

enum fota_ev_kind {
    FOTA_EV_VERIFIED,    /* the package fits the running image */
    FOTA_EV_REFUSED,     /* err: why not; nothing was written */
    FOTA_EV_APPLY_START, /* resumed: after a power cut */
    FOTA_EV_PROGRESS,    /* pct: 0..100, each value once */
    FOTA_EV_APPLIED,     /* the new image is in place; the module reboots */
    FOTA_EV_FAILED,      /* err: the apply stopped; the old image runs (or nothing, bricked) */
    FOTA_EV_RESULT,      /* after the reboot (or a rollback): err PKG_OK = success */
};

struct fota_event {
    enum fota_ev_kind kind;
    enum pkg_err err;
    unsigned pct;
    bool resumed;
};

/* What a family does with engine events (URCs, codes). */
struct fota_family {
    const char *name;
    void (*on_event)(struct modem *m, const struct fota_event *ev);
    const void *data; /* the family's own static data (its variant) */
};

/* How a power-on goes. */
enum fota_boot {
    FOTA_BOOT_NORMAL,  /* boot lines, then fota_booted() reports a finished job */
    FOTA_BOOT_UPGRADE, /* no boot lines: the apply runs, then the module restarts */
    FOTA_BOOT_BRICKED, /* the module does not come up */
};

struct fota {
    struct modem *m;
    enum fota_state state;
    char file[UFS_NAME_MAX + 1]; /* the package in UFS */
    bool apply_now;              /* false: verify, reboot, then apply */
    enum pkg_err outcome;        /* of the last job, for REPORT */
    struct pkg_hdr hdr;
    struct pkg_seg *segs;
    struct fota_apply ap;
    bool ap_live;
    bool resumed;
    unsigned pct;
    struct vtimer tick;
};

/* Prepares f for module m (no I/O). */
void fota_init(struct fota *f, struct modem *m);

/*
 * Starts a job on the package `file` in UFS. apply_now: apply at once (Quectel upgrade_mode 1)
 * or after a reboot. -EBUSY unless idle, -ENOENT without the file, -EINVAL for a bad name,
 * -ENODEV when the module is not on. The outcome arrives as engine events.
 */
int fota_start(struct fota *f, const char *file, bool apply_now);

/*
 * Power-on, after storage is mounted and before the image is read: reads the journal and
 * decides how this boot goes (resume, roll back, brick, or normal).
 */
enum fota_boot fota_boot(struct fota *f);

/* The module finished booting normally: reports a finished job, resumes an interrupted verify. */
void fota_booted(struct fota *f);

/* Upgrade boot: the module came up in upgrade mode; the apply runs from here. */
void fota_upgrade(struct fota *f);

/* Power went (off or cut): drops RAM state, writes nothing. */
void fota_stop(struct fota *f);

/* The layout the model's topology uses, from its partitions. 0 or -EINVAL. */
int fota_layout(const struct modem *m, struct fota_layout *lay);

/* The flash offset of the image the module boots (the active slot). */
uint32_t fota_active_offset(const struct modem *m);

const char *fota_state_name(enum fota_state s);
const char *fota_policy_name(enum fota_policy p);

/* Parses "resume" / "rollback" / "brick"; 0 or -EINVAL. */
int fota_policy_parse(const char *s, enum fota_policy *p);

#endif
