/*
 * The apply engine: turns the running image plus a package into the new image, in flash, one
 * step at a time, so that a power cut at any flash operation is survivable and a resume redoes
 * at most one segment. Three topologies, chosen by the model:
 *
 *   STAGING  (Quectel DFOTA)  build the target in a staging area from the intact source, verify
 *            it, then RESTORE: copy it over the active partition segment by segment.
 *   AB       build the target in the inactive slot, verify, switch the active slot (one NV write).
 *   INPLACE  overwrite the active partition segment by segment; each new segment is first decoded
 *            into RAM and stashed in a one-segment backup area, so a cut while the segment is
 *            erased or programmed is redone from the stash (needs in-place packages, whose
 *            segment i references only source bytes at or after its own offset).
 *
 * Progress lives in a journal record in NV ("fota.apply"), written when a step completes: the
 * phase and the next segment. The RAM bound is one segment buffer, one patch buffer and the
 * decoder state (fota_apply_ram); the source is read through the flash model's read-only view.
 * Not here: downloading, URCs, reboots (firmware/fota.c), the package format (firmware/pkg.c).
 */
#ifndef MODTWIN_FIRMWARE_FOTA_APPLY_H
#define MODTWIN_FIRMWARE_FOTA_APPLY_H

#include <stdbool.h>
#include <stdint.h>

#include "firmware/delta.h"
#include "firmware/pkg.h"
#include "storage/flash.h"
#include "storage/nv.h"

enum fota_topo { FOTA_TOPO_STAGING, FOTA_TOPO_AB, FOTA_TOPO_INPLACE };

/* Where the images live, in flash offsets. */
struct fota_layout {
    enum fota_topo topo;
    uint32_t slot_off[2]; /* STAGING: [0] active, [1] staging; AB: the two slots; INPLACE: [0] */
    uint32_t slot_size;   /* each slot's size */
    uint32_t backup_off;  /* INPLACE: the stash (one segment, erase-aligned) */
    uint32_t backup_size;
};

enum fota_phase {
    FOTA_PH_NONE = 0, /* no apply in progress */
    FOTA_PH_BUILD,    /* STAGING / AB: segment `seg` of the target is next to build */
    FOTA_PH_VERIFY,   /* the target is complete; its digests are next to check */
    FOTA_PH_RESTORE,  /* STAGING: segment `seg` is next to copy from staging to active */
    FOTA_PH_STASHED,  /* INPLACE: segment `seg` is in the stash, to be written in place */
    FOTA_PH_INPLACE,  /* INPLACE: segment `seg` is next to decode */
    FOTA_PH_SWITCH,   /* AB: the slot switch is next */
    FOTA_PH_DONE,     /* the new image is active */
};

/* The package as the engine reads it: header, table and a reader of its bytes. */
struct fota_pkg {
    const struct pkg_hdr *hdr;
    const struct pkg_seg *segs;
    delta_read_fn *read;
    void *ctx;
};

struct fota_apply {
    struct flash *flash;
    struct nv *nv;
    struct fota_layout lay;
    struct fota_pkg pkg;
    int active;               /* AB: the active slot at begin; else 0 */
    enum fota_phase phase;
    uint32_t seg;             /* next segment of the phase */
    uint32_t redone;          /* segments decoded more than once since this apply resumed */
    bool resumed;             /* from fota_apply_resume until its first step completes */
    struct delta_dec dec;
    uint8_t *seg_buf, *patch_buf;
    uint32_t patch_cap;
    enum pkg_err err;         /* why the last step failed */
};

/* NV keys: the journal, and (AB) the active slot. */
#define FOTA_APPLY_KEY "fota.apply"
#define FOTA_SLOT_KEY "boot.slot"

/*
 * Starts a fresh apply of pkg: checks the target fits the layout (PKG_E_TOO_BIG) and writes the
 * first journal record. The package must stay readable until fota_apply_end. 0 or -errno (then
 * a->err tells a package reason, PKG_E_IO for flash/NV trouble).
 */
int fota_apply_begin(struct fota_apply *a, struct flash *f, struct nv *nv,
                     const struct fota_layout *lay, const struct fota_pkg *pkg);

/*
 * Resumes the apply the journal in nv describes, for the same package (the journal holds the
 * first 8 bytes of the target SHA-256 to tell). -ENOENT if there is none, -ESTALE if it is for
 * another package.
 */
int fota_apply_resume(struct fota_apply *a, struct flash *f, struct nv *nv,
                      const struct fota_layout *lay, const struct fota_pkg *pkg);

/*
 * Does one step (decode + erase + program one segment, verify, copy one segment, switch).
 * Returns 1 when more steps remain, 0 when the new image is active (the journal then says
 * DONE), or -errno on failure with a->err set (PKG_E_SEGMENT, PKG_E_TARGET_DIGEST,
 * PKG_E_TARGET_MD5, PKG_E_IO). After a flash cut it returns -ECANCELED: nothing more happens.
 */
int fota_apply_step(struct fota_apply *a);

/* 0..100: how far the apply is, counting every step of every phase. */
unsigned fota_apply_progress(const struct fota_apply *a);

/* Releases RAM (the journal stays as it is). */
void fota_apply_end(struct fota_apply *a);

/* Bytes of RAM the apply holds: buffers plus decoder state. */
size_t fota_apply_ram(const struct fota_apply *a);

/* Reads the journal: phase and segment, or FOTA_PH_NONE. */
enum fota_phase fota_apply_journal(const struct nv *nv, uint32_t *seg);

/* Removes the journal (after the outcome was reported). 0 or -errno. */
int fota_apply_clear(struct nv *nv);

/* AB: the active slot (0 when never switched); NV FOTA_SLOT_KEY holds it as an i64. */
int fota_apply_active_slot(const struct nv *nv);

#endif
