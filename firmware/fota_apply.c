/*
 * fota_apply.c: the apply engine of fota_apply.h. It turns (source image in flash, package) into
 * the target image one step at a time; a step is the unit a power cut can interrupt, and the NV
 * journal, written only after a step has completed, says which step comes next. Every step
 * erases before it programs and reads only data that no earlier step of the same phase can have
 * destroyed, so redoing an interrupted step is always correct and costs at most one segment.
 * It is not the FOTA job (download, URCs, reboot: fota.c) nor the package parser (pkg.c).
 *
 * Journal record (NV key "fota.apply", 16 bytes, integers little-endian):
 *   0  u8 format (1)        1  u8 phase (enum fota_phase)   2  u8 topology (enum fota_topo)
 *   3  u8 source slot (AB: the slot active at begin; else 0)
 *   4  u32 segment          (the next segment of the phase; 0 for VERIFY / SWITCH / DONE)
 *   8  target SHA-256[0..7] (tells the package the record belongs to)
 * nv_set makes each record replace the previous one atomically (old or new, never a mix).
 * AB's "boot.slot" is an 8-byte integer (nv_set_i64), 0 or 1; absent means slot 0.
 */
#include "firmware/fota_apply.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#define FOTA_APPLY_REC    16u /* journal record bytes: small, it is written once per step */
#define FOTA_APPLY_FORMAT 1u
#define FOTA_APPLY_PREFIX 8u /* bytes of the target SHA-256 kept in the record */
/* A patch may be larger than its segment (a segment that does not compress is stored RAW, but
 * a codec's framing can still add a little); anything beyond this is a hostile table. */
#define FOTA_APPLY_PATCH_SLACK (64u * 1024u)

/*
 * The phase table: what one fota_apply_step does in each phase, and the journal it leaves.
 *
 *   phase      the step                                                 journal afterwards
 *   ---------  -------------------------------------------------------  -----------------------
 *   BUILD i    read patch i -> decode (source: the active slot, whole)  BUILD i+1, or VERIFY
 *              -> CRC32 -> erase + program seg i of the build slot        after the last one
 *              (STAGING: staging area; AB: the inactive slot)
 *   VERIFY     SHA-256 + MD5 of the whole built target                  STAGING: RESTORE 0
 *                                                                       AB: SWITCH
 *                                                                       INPLACE: DONE
 *   RESTORE i  read staging seg i -> CRC32 -> erase + program active i  RESTORE i+1, or DONE
 *   SWITCH     nv_set boot.slot = the other slot                        DONE
 *   INPLACE i  read patch i -> decode (source: the active slot from     STASHED i
 *              i*seg on, not yet overwritten) -> CRC32 -> erase +
 *              program the stash
 *   STASHED i  read the stash -> CRC32 -> erase + program active i      INPLACE i+1, or VERIFY
 *   DONE       nothing; step returns 0
 *
 *   STAGING: BUILD 0..n-1 -> VERIFY -> RESTORE 0..n-1 -> DONE
 *   AB:      BUILD 0..n-1 -> VERIFY -> SWITCH -> DONE
 *   INPLACE: (INPLACE i -> STASHED i) for i in 0..n-1 -> VERIFY -> DONE
 *
 * Why a redo is safe: BUILD reads only the active slot, which nothing writes before RESTORE;
 * RESTORE and STASHED read the staging area / the stash, which nothing writes in their phase;
 * INPLACE i reads active bytes from i*seg on, which only STASHED i (after it) overwrites.
 */

/* Number of bytes of segment i (the last one may be shorter). */
static uint32_t fota_apply_seg_len(const struct fota_apply *a, uint32_t i)
{
    uint64_t off = (uint64_t)i * a->pkg.hdr->seg_size;
    uint64_t left = a->pkg.hdr->target_size - off;

    return left < a->pkg.hdr->seg_size ? (uint32_t)left : a->pkg.hdr->seg_size;
}

static uint32_t fota_apply_round(const struct fota_apply *a, uint32_t len)
{
    uint32_t es = flash_geometry(a->flash)->erase_size;

    return (len + es - 1) / es * es;
}

/* The slot the source image is read from, and the one the target is built in. */
static uint32_t fota_apply_src_off(const struct fota_apply *a)
{
    return a->lay.topo == FOTA_TOPO_AB ? a->lay.slot_off[a->active] : a->lay.slot_off[0];
}

static uint32_t fota_apply_build_off(const struct fota_apply *a)
{
    switch (a->lay.topo) {
    case FOTA_TOPO_STAGING:
        return a->lay.slot_off[1];
    case FOTA_TOPO_AB:
        return a->lay.slot_off[1 - a->active];
    case FOTA_TOPO_INPLACE:
        break;
    }
    return a->lay.slot_off[0];
}

/* Flash and NV trouble: a cut (-ECANCELED) passes through unchanged so the caller knows the
 * power went and must not touch the flash again; anything else is an I/O failure. */
static int fota_apply_io(struct fota_apply *a, int rc)
{
    a->err = PKG_E_IO;
    return rc < 0 ? rc : -EIO;
}

static int fota_apply_refuse(struct fota_apply *a, enum pkg_err err, int rc)
{
    a->err = err;
    return rc;
}

static void fota_apply_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t fota_apply_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Commits "phase, seg" as the next step: durable when it returns 0, and only then does the
 * RAM state move on, so a failed write leaves the step to be redone. */
static int fota_apply_journal_put(struct fota_apply *a, enum fota_phase phase, uint32_t seg)
{
    uint8_t rec[FOTA_APPLY_REC];
    int rc;

    rec[0] = FOTA_APPLY_FORMAT;
    rec[1] = (uint8_t)phase;
    rec[2] = (uint8_t)a->lay.topo;
    rec[3] = (uint8_t)a->active;
    fota_apply_put32(rec + 4, seg);
    memcpy(rec + 8, a->pkg.hdr->target_sha256, FOTA_APPLY_PREFIX);
    rc = nv_set(a->nv, FOTA_APPLY_KEY, rec, sizeof(rec));
    if (rc < 0)
        return fota_apply_io(a, rc);
    a->phase = phase;
    a->seg = seg;
    return 0;
}

/* Erases the units under [off, off + len) and programs buf there. Whole units are erased, so
 * the bytes past len in the last unit stay 0xFF: nothing is ever programmed over old data. */
static int fota_apply_program(struct fota_apply *a, uint32_t off, const uint8_t *buf, uint32_t len)
{
    int rc = flash_erase_range(a->flash, off, fota_apply_round(a, len));

    if (rc == 0)
        rc = flash_write(a->flash, off, buf, len);
    return rc < 0 ? fota_apply_io(a, rc) : 0;
}

/* Reads patch i and decodes it into seg_buf against the source window, then checks the CRC32
 * the table promises. Touches no flash: a failure here leaves everything as it was. */
static int fota_apply_decode(struct fota_apply *a, uint32_t i, const struct delta_src *src)
{
    const struct pkg_seg *s = &a->pkg.segs[i];
    uint32_t len = fota_apply_seg_len(a, i);
    int rc;

    /* Only the first decode after a resume can repeat work the cut interrupted. */
    if (a->resumed)
        a->redone++;
    rc = a->pkg.read(a->pkg.ctx, a->pkg.hdr->payload_off + s->off, a->patch_buf, s->len);
    if (rc < 0)
        return fota_apply_refuse(a, PKG_E_IO, rc);
    rc = delta_dec_segment(&a->dec, (enum delta_codec)s->codec, src, a->patch_buf, s->len,
                           a->seg_buf, len);
    if (rc < 0 || (uint32_t)crc32(0L, a->seg_buf, len) != s->crc32)
        return fota_apply_refuse(a, PKG_E_SEGMENT, -EBADMSG);
    return 0;
}

/* The source window: the whole source image in its slot (clipped to the slot, so a lying
 * header cannot make the decoder read past it), or for in-place from segment i's offset on. */
static struct delta_src fota_apply_window(const struct fota_apply *a, uint32_t i)
{
    uint64_t size = a->pkg.hdr->source_size, skip = 0;
    struct delta_src src;

    if (size > a->lay.slot_size)
        size = a->lay.slot_size;
    if (a->lay.topo == FOTA_TOPO_INPLACE)
        skip = (uint64_t)i * a->pkg.hdr->seg_size;
    if (skip > size)
        skip = size;
    src.base = flash_data(a->flash) + fota_apply_src_off(a) + skip;
    src.len = (size_t)(size - skip);
    return src;
}

/* BUILD i. The source slot is not written in this phase, so a redo decodes the same bytes;
 * the build area of segment i is erased first, whatever a cut left there. */
static int fota_apply_build(struct fota_apply *a)
{
    uint32_t i = a->seg, len = fota_apply_seg_len(a, i);
    uint32_t off = fota_apply_build_off(a) + i * a->pkg.hdr->seg_size;
    struct delta_src src = fota_apply_window(a, i);
    int rc;

    rc = fota_apply_decode(a, i, &src);
    if (rc == 0)
        rc = fota_apply_program(a, off, a->seg_buf, len);
    if (rc == 0 && i + 1 < a->pkg.hdr->seg_count)
        rc = fota_apply_journal_put(a, FOTA_PH_BUILD, i + 1);
    else if (rc == 0)
        rc = fota_apply_journal_put(a, FOTA_PH_VERIFY, 0);
    return rc;
}

/* VERIFY. The digests cover the target as it sits in flash, not as it was decoded, so anything
 * that went wrong on the way (a program that did not land) shows here, while the source is
 * still intact (STAGING, AB). No flash operation but the journal: a cut just verifies again. */
static int fota_apply_verify(struct fota_apply *a)
{
    const uint8_t *img = flash_data(a->flash) + fota_apply_build_off(a);
    size_t len = (size_t)a->pkg.hdr->target_size;
    uint8_t sha[32], md5[16];
    enum fota_phase next = FOTA_PH_DONE;

    if (pkg_digest(img, len, sha, md5, NULL) != 0)
        return fota_apply_refuse(a, PKG_E_IO, -EIO);
    if (memcmp(sha, a->pkg.hdr->target_sha256, sizeof(sha)) != 0)
        return fota_apply_refuse(a, PKG_E_TARGET_DIGEST, -EBADMSG);
    if (memcmp(md5, a->pkg.hdr->target_md5, sizeof(md5)) != 0)
        return fota_apply_refuse(a, PKG_E_TARGET_MD5, -EBADMSG);
    if (a->lay.topo == FOTA_TOPO_STAGING)
        next = FOTA_PH_RESTORE;
    else if (a->lay.topo == FOTA_TOPO_AB)
        next = FOTA_PH_SWITCH;
    return fota_apply_journal_put(a, next, 0);
}

/* Copies a segment that already sits in flash (staging area or stash) into seg_buf and checks
 * it against the table: what was verified must still be there before it replaces the source. */
static int fota_apply_fetch(struct fota_apply *a, uint32_t from, uint32_t i)
{
    uint32_t len = fota_apply_seg_len(a, i);

    if (flash_read(a->flash, from, a->seg_buf, len) < 0)
        return fota_apply_refuse(a, PKG_E_IO, -EIO);
    if ((uint32_t)crc32(0L, a->seg_buf, len) != a->pkg.segs[i].crc32)
        return fota_apply_refuse(a, PKG_E_IO, -EIO);
    return 0;
}

/* RESTORE i: the Quectel copy-back. The staging area is only read from here on, so a cut in
 * the middle of active segment i is repaired by copying it again. */
static int fota_apply_restore(struct fota_apply *a)
{
    uint32_t i = a->seg, rel = i * a->pkg.hdr->seg_size;
    int rc;

    rc = fota_apply_fetch(a, a->lay.slot_off[1] + rel, i);
    if (rc == 0)
        rc = fota_apply_program(a, a->lay.slot_off[0] + rel, a->seg_buf, fota_apply_seg_len(a, i));
    if (rc == 0 && i + 1 < a->pkg.hdr->seg_count)
        rc = fota_apply_journal_put(a, FOTA_PH_RESTORE, i + 1);
    else if (rc == 0)
        rc = fota_apply_journal_put(a, FOTA_PH_DONE, 0);
    return rc;
}

static int fota_apply_switch(struct fota_apply *a)
{
    /* Idempotent: after a cut between the two NV writes the slot is simply set again. */
    int rc = nv_set_i64(a->nv, FOTA_SLOT_KEY, 1 - a->active);

    if (rc < 0)
        return fota_apply_io(a, rc);
    return fota_apply_journal_put(a, FOTA_PH_DONE, 0);
}

/* INPLACE i: decode from the active slot's bytes at i*seg and after (an in-place package never
 * references earlier ones, which are already new) and park the result in the stash, so that
 * the next step can destroy active segment i and still finish it after a cut. */
static int fota_apply_stash(struct fota_apply *a)
{
    uint32_t i = a->seg;
    struct delta_src src = fota_apply_window(a, i);
    int rc;

    rc = fota_apply_decode(a, i, &src);
    if (rc == 0)
        rc = fota_apply_program(a, a->lay.backup_off, a->seg_buf, fota_apply_seg_len(a, i));
    if (rc == 0)
        rc = fota_apply_journal_put(a, FOTA_PH_STASHED, i);
    return rc;
}

/* The stash is read back from flash even when seg_buf still holds it: one path for the normal
 * run and the resume, and the CRC check proves the stash is what was decoded. */
static int fota_apply_unstash(struct fota_apply *a)
{
    uint32_t i = a->seg, off = a->lay.slot_off[0] + i * a->pkg.hdr->seg_size;
    int rc;

    rc = fota_apply_fetch(a, a->lay.backup_off, i);
    if (rc == 0)
        rc = fota_apply_program(a, off, a->seg_buf, fota_apply_seg_len(a, i));
    if (rc == 0 && i + 1 < a->pkg.hdr->seg_count)
        rc = fota_apply_journal_put(a, FOTA_PH_INPLACE, i + 1);
    else if (rc == 0)
        rc = fota_apply_journal_put(a, FOTA_PH_VERIFY, 0);
    return rc;
}

/* One row of the phase table above; the journal write at the end of each row is what makes
 * the step count as done. */
int fota_apply_step(struct fota_apply *a)
{
    int rc;

    a->err = PKG_OK; /* a retried step must not report an older failure */
    switch (a->phase) {
    case FOTA_PH_BUILD:
        rc = fota_apply_build(a);
        break;
    case FOTA_PH_VERIFY:
        rc = fota_apply_verify(a);
        break;
    case FOTA_PH_RESTORE:
        rc = fota_apply_restore(a);
        break;
    case FOTA_PH_SWITCH:
        rc = fota_apply_switch(a);
        break;
    case FOTA_PH_INPLACE:
        rc = fota_apply_stash(a);
        break;
    case FOTA_PH_STASHED:
        rc = fota_apply_unstash(a);
        break;
    case FOTA_PH_DONE:
        return 0;
    case FOTA_PH_NONE:
    default:
        return fota_apply_refuse(a, PKG_E_IO, -EINVAL);
    }
    if (rc < 0)
        return rc;
    /* One step has completed since the resume: later decodes are first-time work. */
    a->resumed = false;
    return a->phase == FOTA_PH_DONE ? 0 : 1;
}

/* ---- begin / resume ------------------------------------------------------------------------ */

static bool fota_apply_aligned(uint32_t off, uint32_t len, uint32_t es, uint32_t size)
{
    return off % es == 0 && len % es == 0 && len > 0 && (uint64_t)off + len <= size;
}

static bool fota_apply_apart(uint32_t a_off, uint32_t a_len, uint32_t b_off, uint32_t b_len)
{
    return (uint64_t)a_off + a_len <= b_off || (uint64_t)b_off + b_len <= a_off;
}

/* The layout must be whole erase units inside the device, its areas apart. A bad layout is a
 * model's (caller's) bug, reported as an I/O error. */
static bool fota_apply_layout_ok(const struct fota_layout *l, const struct flash *f)
{
    const struct flash_geom *g = flash_geometry(f);
    uint32_t es = g->erase_size, n = l->slot_size;

    if (!fota_apply_aligned(l->slot_off[0], n, es, g->size))
        return false;
    switch (l->topo) {
    case FOTA_TOPO_STAGING:
    case FOTA_TOPO_AB:
        return fota_apply_aligned(l->slot_off[1], n, es, g->size) &&
               fota_apply_apart(l->slot_off[0], n, l->slot_off[1], n);
    case FOTA_TOPO_INPLACE:
        return fota_apply_aligned(l->backup_off, l->backup_size, es, g->size) &&
               fota_apply_apart(l->slot_off[0], n, l->backup_off, l->backup_size);
    }
    return false;
}

/* Checks everything begin and resume share and takes the RAM; on failure a holds nothing to
 * release. The segment buffer is clipped to the target: a one-segment package of a small image
 * does not need a seg_size buffer. */
static int fota_apply_setup(struct fota_apply *a, struct flash *f, struct nv *nv,
                            const struct fota_layout *lay, const struct fota_pkg *pkg)
{
    const struct pkg_hdr *h;
    uint32_t es, cap = 1, seg_cap;
    uint64_t count;
    bool needs_src = false;
    int rc;

    memset(a, 0, sizeof(*a));
    /* Until every check passed, a failure is the caller's (bad arguments or layout). */
    a->err = PKG_E_IO;
    if (!f || !nv || !lay || !pkg || !pkg->hdr || !pkg->read || !fota_apply_layout_ok(lay, f))
        return -EINVAL;
    h = pkg->hdr;
    es = flash_geometry(f)->erase_size;
    /* ceil(target / seg) without the overflow of target + seg - 1 */
    count = h->seg_size ? h->target_size / h->seg_size + (h->target_size % h->seg_size != 0) : 0;
    /* Segments must be whole erase units, or erasing one would destroy part of its neighbour
     * (which a redo could not restore); pkg.c only promises 4 KiB multiples. */
    if (h->seg_size == 0 || h->seg_size % es || h->target_size == 0 || count != h->seg_count ||
        !pkg->segs)
        return fota_apply_refuse(a, PKG_E_LAYOUT, -EINVAL);
    if (h->target_size > lay->slot_size)
        return fota_apply_refuse(a, PKG_E_TOO_BIG, -EFBIG);
    if (lay->topo == FOTA_TOPO_INPLACE && lay->backup_size < h->seg_size)
        return fota_apply_refuse(a, PKG_E_TOO_BIG, -EFBIG);
    /* The patch buffer is sized by the largest entry; a hostile table must not size it. */
    for (uint32_t i = 0; i < h->seg_count; i++) {
        if ((uint64_t)pkg->segs[i].len > (uint64_t)h->seg_size + FOTA_APPLY_PATCH_SLACK)
            return fota_apply_refuse(a, PKG_E_SEGMENT, -EINVAL);
        if (pkg->segs[i].len > cap)
            cap = pkg->segs[i].len;
        /* RAW and ZSTD segments stand alone; the other codecs read the source window. */
        needs_src |= pkg->segs[i].codec != DELTA_RAW && pkg->segs[i].codec != DELTA_ZSTD;
    }
    /* In place, a normal delta would read source bytes already overwritten. */
    if (lay->topo == FOTA_TOPO_INPLACE && needs_src && !(h->flags & PKG_F_INPLACE))
        return fota_apply_refuse(a, PKG_E_KIND, -EINVAL);

    seg_cap = h->target_size < h->seg_size ? (uint32_t)h->target_size : h->seg_size;
    a->flash = f;
    a->nv = nv;
    a->lay = *lay;
    a->pkg = *pkg;
    a->patch_cap = cap;
    a->seg_buf = malloc(seg_cap);
    a->patch_buf = malloc(cap);
    rc = a->seg_buf && a->patch_buf ? delta_dec_init(&a->dec, seg_cap) : -ENOMEM;
    if (rc < 0) {
        free(a->seg_buf);
        free(a->patch_buf);
        memset(a, 0, sizeof(*a));
        return fota_apply_refuse(a, PKG_E_IO, rc);
    }
    a->err = PKG_OK;
    return 0;
}

int fota_apply_begin(struct fota_apply *a, struct flash *f, struct nv *nv,
                     const struct fota_layout *lay, const struct fota_pkg *pkg)
{
    enum fota_phase first;
    int rc = fota_apply_setup(a, f, nv, lay, pkg);

    if (rc < 0)
        return rc;
    /* AB builds into whichever slot is not running now; the journal remembers which, because
     * after the switch the slot flag no longer says where the apply started. */
    if (lay->topo == FOTA_TOPO_AB)
        a->active = fota_apply_active_slot(nv);
    /* The first record makes the apply resumable; before it lands there is nothing to resume
     * and the caller simply begins again. */
    first = lay->topo == FOTA_TOPO_INPLACE ? FOTA_PH_INPLACE : FOTA_PH_BUILD;
    rc = fota_apply_journal_put(a, first, 0);
    if (rc < 0)
        goto out;
    return 0;
out:
    fota_apply_end(a);
    a->err = PKG_E_IO;
    return rc;
}

/* Is phase a phase of this topology, with a segment number that fits it? */
static bool fota_apply_phase_ok(enum fota_topo topo, unsigned phase, uint32_t seg, uint32_t count)
{
    bool segs = seg < count, none = seg == 0;

    switch (phase) {
    case FOTA_PH_BUILD:
        return topo != FOTA_TOPO_INPLACE && segs;
    case FOTA_PH_VERIFY:
    case FOTA_PH_DONE:
        return none;
    case FOTA_PH_RESTORE:
        return topo == FOTA_TOPO_STAGING && segs;
    case FOTA_PH_SWITCH:
        return topo == FOTA_TOPO_AB && none;
    case FOTA_PH_STASHED:
    case FOTA_PH_INPLACE:
        return topo == FOTA_TOPO_INPLACE && segs;
    }
    return false;
}

int fota_apply_resume(struct fota_apply *a, struct flash *f, struct nv *nv,
                      const struct fota_layout *lay, const struct fota_pkg *pkg)
{
    uint8_t rec[FOTA_APPLY_REC];
    uint32_t seg;
    int rc, n;

    /* The same checks as begin: the package is re-read after a reboot and must still fit. */
    rc = fota_apply_setup(a, f, nv, lay, pkg);
    if (rc < 0)
        return rc;
    n = nv_get(nv, FOTA_APPLY_KEY, rec, sizeof(rec));
    if (n == -ENOENT) {
        rc = -ENOENT;
        goto out;
    }
    /* A record this engine cannot read, of another topology or with the wrong digest prefix
     * belongs to some other apply: stale for this package. */
    seg = n == (int)sizeof(rec) ? fota_apply_get32(rec + 4) : 0;
    if (n != (int)sizeof(rec) || rec[0] != FOTA_APPLY_FORMAT || rec[2] != (uint8_t)lay->topo ||
        rec[3] > 1 || memcmp(rec + 8, pkg->hdr->target_sha256, FOTA_APPLY_PREFIX) != 0 ||
        !fota_apply_phase_ok(lay->topo, rec[1], seg, pkg->hdr->seg_count)) {
        rc = -ESTALE;
        goto out;
    }
    /* Nothing in flash is trusted beyond the journal: the next step starts with an erase of
     * whatever the interrupted one may have left half done. resumed stays set until a step
     * completes, so only that first step can count as a redo. */
    a->active = lay->topo == FOTA_TOPO_AB ? rec[3] : 0;
    a->phase = (enum fota_phase)rec[1];
    a->seg = seg;
    a->resumed = true;
    return 0;
out:
    fota_apply_end(a);
    a->err = PKG_OK;
    return rc;
}

/* ---- progress, RAM, journal access --------------------------------------------------------- */

unsigned fota_apply_progress(const struct fota_apply *a)
{
    uint64_t n, total, done;

    if (!a->pkg.hdr || a->phase == FOTA_PH_NONE)
        return 0;
    if (a->phase == FOTA_PH_DONE)
        return 100;
    n = a->pkg.hdr->seg_count;
    /* Work units: every segment of every phase, plus verify, plus the switch (AB). Each phase
     * starts where the previous one ends, so the value never goes back, across a resume too. */
    total = a->lay.topo == FOTA_TOPO_AB ? n + 2 : 2 * n + 1;
    switch (a->phase) {
    case FOTA_PH_BUILD:
        done = a->seg;
        break;
    case FOTA_PH_INPLACE:
        done = 2 * (uint64_t)a->seg;
        break;
    case FOTA_PH_STASHED:
        done = 2 * (uint64_t)a->seg + 1;
        break;
    case FOTA_PH_VERIFY:
        done = a->lay.topo == FOTA_TOPO_INPLACE ? 2 * n : n;
        break;
    case FOTA_PH_RESTORE:
        done = n + 1 + a->seg;
        break;
    default: /* SWITCH */
        done = n + 1;
        break;
    }
    /* 100 means the new image is active, nothing less. */
    done = done * 100 / total;
    return done > 99 ? 99 : (unsigned)done;
}

void fota_apply_end(struct fota_apply *a)
{
    if (!a)
        return;
    delta_dec_free(&a->dec);
    free(a->seg_buf);
    free(a->patch_buf);
    memset(&a->dec, 0, sizeof(a->dec));
    a->seg_buf = NULL;
    a->patch_buf = NULL;
}

/* The source is not counted: it is read in place through the flash model's mapping (DESIGN
 * "RAM bound of the apply"). */
size_t fota_apply_ram(const struct fota_apply *a)
{
    const struct pkg_hdr *h = a->pkg.hdr;
    size_t seg;

    if (!h || !a->seg_buf)
        return 0;
    seg = h->target_size < h->seg_size ? (size_t)h->target_size : h->seg_size;
    return seg + a->patch_cap + delta_dec_ram(&a->dec);
}

enum fota_phase fota_apply_journal(const struct nv *nv, uint32_t *seg)
{
    uint8_t rec[FOTA_APPLY_REC];

    if (nv_get(nv, FOTA_APPLY_KEY, rec, sizeof(rec)) != (int)sizeof(rec) ||
        rec[0] != FOTA_APPLY_FORMAT || rec[1] == FOTA_PH_NONE || rec[1] > FOTA_PH_DONE)
        return FOTA_PH_NONE;
    if (seg)
        *seg = fota_apply_get32(rec + 4);
    return (enum fota_phase)rec[1];
}

int fota_apply_clear(struct nv *nv)
{
    int rc = nv_del(nv, FOTA_APPLY_KEY);

    /* Clearing twice (a cut right after the first clear) is not an error. */
    return rc == -ENOENT ? 0 : rc;
}

int fota_apply_active_slot(const struct nv *nv)
{
    int64_t v = 0;

    /* Stored by the switch as an 8-byte integer; anything unreadable means slot 0. */
    if (nv_get_i64(nv, FOTA_SLOT_KEY, &v) != 0)
        return 0;
    return v == 1 ? 1 : 0;
}
