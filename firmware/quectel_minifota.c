/*
 * quectel_minifota.c: the MiniFOTA flow of Quectel's 8 MB LTE builds (EC200N-CN; seed 002
 * 2.3.1.2, 4 and 5) on real bytes: AT+QFOTADL="<base>.mini_1", four restarts, the Mini system
 * updated by delta, then the big system written whole while .mini_2 downloads. Not here: the
 * command syntax (cmd_quectel_fota.c), the DFOTA and NB jobs (quectel_fota.c), the apply engine
 * (fota_apply.c, driven here on the Mini partition without fota.c's job, whose contract stays).
 *
 * Design. The Mini system is a firmware image of its own (revision "<main>-MINI", the main
 * image's project and baseline, model->mini_image_size bytes of body) that the factory programs
 * into the "mini" partition. What a power-on runs follows from the job record (NV "qmini"):
 *
 *   record        this boot runs      and does                              the host sees
 *   ------------  ------------------  ------------------------------------  ----------------------
 *   none, REPORT  the big system      everything; REPORT: END,<err>, done   its boot lines [, END]
 *   DL1           the old Mini system .mini_1 -> UFS; head check; integrity RDY, +CFUN: 1, +CPIN
 *   APPLY1        upgrade mode        fota_apply, STAGING: active = "mini", UPDATING 2 .. 49
 *                                     staging = "system" (the big system
 *                                     is erased here: 2.3.1.2's "used for
 *                                     the Mini system's delta and backup")
 *   DL2           the new Mini system .mini_2 streamed into "system", then  RDY, +CFUN: 1, +CPIN,
 *                                     SHA-256 + MD5 of what was written      UPDATING 60 .. 96
 *
 *   big --QFOTADL: OK--> #1 DL1 --intact--> #2 APPLY1 --done--> #3 DL2 --verified--> #4 big, END,0
 *   DL1   head refused, not committed ------------------------> big: END,505/507/552/553 (case 2)
 *         no head checked after QMINI_NODATA_TIMEOUT s -------> big: END,504 (case 1)
 *         head passed: the record says "committed" and the module never goes back (case 3)
 *         complete but not intact ---> restart, DL1 again (step 4); other failures: retry
 *   APPLY1 a step fails --> DL1 again (the old Mini is intact until the restore); a cut resumes
 *   DL2   any failure --> retry after QMINI_RETRY_SECONDS (case 4); a cut --> step 5 anew
 *
 * The time-out of case 1 is checked when an attempt fails, never inside a running transfer, so
 * a download at `--speed max` is not cut by virtual time. AT+QFOTADL in the Mini system replaces
 * the URL of the running step (5.2). The record is written before every restart, so a cut
 * anywhere lands in a state whose next boot continues the right step. URCs and cadence: see
 * qmini_urc1 / qmini_urc2 below (figure 3).
 */
#include "firmware/quectel_minifota.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "firmware/modem.h"
#include "firmware/quectel_codes.h"

/* Record, NV "qmini": u8 version, u8 phase, u8 flags (bit 0 committed), u8 reserved,
 * u16 END code (little-endian), then the .mini_1 URL, NUL-terminated. */
#define QMINI_NV_KEY      "qmini"
#define QMINI_NV_VERSION  1
#define QMINI_F_COMMITTED 1u
#define QMINI_REC_HDR     6u
/* Header and segment table of a .mini_2 that the writer buffers: a 3 MiB system in 4 KiB
 * segments needs 19 KiB; more is a hostile header. */
#define QMINI_W2_TABLE_MAX (64u << 10)
#define QMINI_PATCH_SLACK  (64u << 10) /* as fota_apply: a patch may exceed its segment a little */

/* The Mini system keeps registration and the update (seed 002 2.3.1.2 note 1): identity, SIM,
 * signal, registration, attach, operator, and AT+QFOTADL. Everything else answers ERROR. */
static const char *const qmini_allowed[] = {
    "+CEREG", "+CESQ", "+CGATT", "+CGMI", "+CGMM", "+CGMR", "+CGSN",    "+COPS", "+CPIN",
    "+CREG",  "+CSQ",  "+GMI",   "+GMM",  "+GMR",  "+GSN",  "+QFOTADL", "E",     "I",
};

const enum model_boot qmini_boot_lines[] = {MODEL_BOOT_RDY, MODEL_BOOT_CFUN, MODEL_BOOT_CPIN,
                                            MODEL_BOOT_END};

/* ---- pure parts ------------------------------------------------------------------------------ */

bool qmini_url_ok(const char *url)
{
    size_t n = url ? strlen(url) : 0, s = strlen(QMINI_SUFFIX_1);

    /* The base name must not be empty: ".../.mini_1" names no package pair. */
    return n > s && strcmp(url + n - s, QMINI_SUFFIX_1) == 0 && url[n - s - 1] != '/';
}

int qmini_url_2(const char *url1, char *out, size_t cap)
{
    size_t n, s = strlen(QMINI_SUFFIX_1);

    if (!qmini_url_ok(url1) || (n = strlen(url1)) + 1 > cap)
        return -EINVAL;
    memcpy(out, url1, n - s);
    memcpy(out + n - s, QMINI_SUFFIX_2, s + 1);
    return 0;
}

/*
 * Figure 3 prints "2, 4, ..., 49" for the first part: 24 values floor(49 k / 24), which are 2 k
 * for k < 24 and 49 for the last. They are spread over the apply's progress; the value 60 (the
 * Mini system done) comes when the new Mini system starts step 5.
 */
unsigned qmini_urc1(unsigned k)
{
    return k * QMINI_URC1_TOP / QMINI_URC1_COUNT;
}

unsigned qmini_urc1_due(unsigned pct)
{
    return (pct > 100 ? 100 : pct) * QMINI_URC1_COUNT / 100;
}

/* "60, 64, 68, ..., 96": 60 + 4 j for the j-th tenth of the big system written, j < 10; the
 * last tenth is told by END,0 after the restart instead of a 100. */
unsigned qmini_urc2(unsigned j)
{
    return QMINI_URC2_BASE + QMINI_URC2_STEP * j;
}

/* Capped at 9: the tenth that completes the image has no URC of its own (see above). */
unsigned qmini_urc2_due(uint64_t done, uint64_t total)
{
    uint64_t j = total ? done * 10 / total : 0;

    return j > 9 ? 9 : (unsigned)j;
}

/*
 * The engine's staging topology, pointed at other partitions: what it calls the active slot is
 * the Mini system, what it builds in is the big system's partition. The slot size is the smaller
 * of the two, so the engine refuses a Mini image that would not fit either.
 */
int qmini_layout(const struct model_part *mini, const struct model_part *sys,
                 struct fota_layout *lay)
{
    memset(lay, 0, sizeof(*lay));
    if (!mini || !sys)
        return -EINVAL;
    lay->topo = FOTA_TOPO_STAGING;
    lay->slot_off[0] = mini->off;
    lay->slot_off[1] = sys->off;
    lay->slot_size = mini->size < sys->size ? mini->size : sys->size;
    return 0;
}

/*
 * Parses a header whose file size is not known yet (the package is still on its way): the
 * size it implies is that of its last region. pkg_parse_header decodes every field before it
 * judges the layout, so a first pass with an unbounded size yields the fields to compute it.
 */
static enum pkg_err qmini_parse_head(const uint8_t *buf, size_t len, struct pkg_hdr *h)
{
    enum pkg_err e = pkg_parse_header(buf, len, UINT64_MAX, h);
    uint64_t end;

    if (e != PKG_E_LAYOUT)
        return e;
    if (h->flags & PKG_F_SIGNED) {
        if (h->sig_off > UINT64_MAX - h->sig_size)
            return PKG_E_LAYOUT;
        end = h->sig_off + h->sig_size;
    } else {
        if (h->payload_off > UINT64_MAX - h->payload_size)
            return PKG_E_LAYOUT;
        end = h->payload_off + h->payload_size;
    }
    return pkg_parse_header(buf, len, end, h);
}

/* The size of the package h describes (after qmini_parse_head succeeded). */
static uint64_t qmini_pkg_end(const struct pkg_hdr *h)
{
    return h->flags & PKG_F_SIGNED ? h->sig_off + h->sig_size : h->payload_off + h->payload_size;
}

/*
 * The order is a module's: what the package is, whom it is for, then the bytes it was made
 * from (the CRC32 of 5.1 case 2). An in-place .mini_1 is refused as a kind: the Mini update is
 * staged in the big system's area, where an in-place patch would decode wrongly.
 */
enum pkg_err qmini_check_head(const uint8_t *head, size_t len, const struct fw_image_info *run,
                              const uint8_t *run_img, uint32_t part_size, struct pkg_hdr *h)
{
    uint64_t img_len = fw_image_size(run);
    struct pkg_mem mm = {head, len};
    struct pkg_seg *segs = NULL;
    uint32_t crc = 0;
    enum pkg_err e = qmini_parse_head(head, len, h);

    if (e != PKG_OK)
        return e;
    if (h->kind != PKG_MINI_1 || (h->flags & PKG_F_INPLACE))
        return PKG_E_KIND;
    if (strcmp(h->project, run->project) != 0)
        return PKG_E_PROJECT;
    if (strcmp(h->baseline, run->baseline) != 0)
        return PKG_E_BASELINE;
    if (strcmp(h->source_rev, run->revision) != 0)
        return PKG_E_SOURCE_REV;
    if (h->source_size != img_len || img_len > part_size)
        return PKG_E_SOURCE_DIGEST;
    if (pkg_digest(run_img, (size_t)img_len, NULL, NULL, &crc))
        return PKG_E_IO;
    if (crc != h->source_crc32)
        return PKG_E_SOURCE_DIGEST;
    if (h->target_size > part_size)
        return PKG_E_TOO_BIG;
    /* The table too, when the head holds it (a small Mini image has a few segments). */
    if (h->table_off + (uint64_t)h->seg_count * PKG_SEG_ENTRY <= len) {
        e = pkg_read_table(h, pkg_mem_read, &mm, &segs);
        free(segs);
    }
    return e;
}

enum pkg_err qmini_check_pkg(delta_read_fn *rd, void *ctx, uint64_t size,
                             const struct fw_image_info *run, const uint8_t *run_img,
                             uint32_t part_size)
{
    struct delta_src src = {run_img, 0};
    struct delta_dec dec = {0};
    struct pkg_seg *segs = NULL;
    uint8_t hdr[PKG_HDR], *seg_buf = NULL, *patch = NULL;
    struct pkg_hdr h;
    uint32_t seg_cap, crc;
    enum pkg_err e;

    if (size < PKG_HDR)
        return PKG_E_TRUNCATED;
    if (rd(ctx, 0, hdr, sizeof(hdr)))
        return PKG_E_IO;
    e = qmini_check_head(hdr, sizeof(hdr), run, run_img, part_size, &h);
    if (e == PKG_OK)
        e = pkg_parse_header(hdr, sizeof(hdr), size, &h);
    if (e == PKG_OK)
        e = pkg_read_table(&h, rd, ctx, &segs);
    if (e != PKG_OK)
        return e;
    /* One segment and one patch at a time: the bound of the apply itself. */
    src.len = (size_t)h.source_size;
    seg_cap = h.target_size < h.seg_size ? (uint32_t)h.target_size : h.seg_size;
    seg_buf = malloc(seg_cap);
    patch = malloc((size_t)h.seg_size + QMINI_PATCH_SLACK);
    if (!seg_buf || !patch || delta_dec_init(&dec, seg_cap)) {
        e = PKG_E_IO;
        goto out;
    }
    for (uint32_t i = 0; i < h.seg_count && e == PKG_OK; i++) {
        uint64_t off = (uint64_t)i * h.seg_size;
        uint32_t len = (uint32_t)(h.target_size - off < seg_cap ? h.target_size - off : seg_cap);

        if (segs[i].len > h.seg_size + QMINI_PATCH_SLACK)
            e = PKG_E_SEGMENT;
        else if (rd(ctx, h.payload_off + segs[i].off, patch, segs[i].len))
            e = PKG_E_IO;
        else if (delta_dec_segment(&dec, (enum delta_codec)segs[i].codec, &src, patch, segs[i].len,
                                   seg_buf, len) ||
                 pkg_digest(seg_buf, len, NULL, NULL, &crc) || crc != segs[i].crc32)
            e = PKG_E_SEGMENT;
    }
out:
    delta_dec_free(&dec);
    free(patch);
    free(seg_buf);
    free(segs);
    return e;
}

enum qmini_resume qmini_resume_kind(const uint8_t *head, size_t head_len, uint64_t size)
{
    struct pkg_hdr h;

    if (size == 0)
        return QMINI_RESUME_FRESH;
    /* Without a readable header the end is unknown: ask the server for the rest. */
    if (qmini_parse_head(head, head_len, &h) != PKG_OK)
        return QMINI_RESUME_APPEND;
    return size >= qmini_pkg_end(&h) ? QMINI_RESUME_COMPLETE : QMINI_RESUME_APPEND;
}

int qmini_apply_open(struct fota_apply *ap, struct flash *f, struct nv *nv,
                     const struct fota_layout *lay, const struct fota_pkg *pkg)
{
    int rc = fota_apply_resume(ap, f, nv, lay, pkg);

    /* No journal, or one of another package: this apply starts now. */
    if (rc == -ENOENT || rc == -ESTALE)
        rc = fota_apply_begin(ap, f, nv, lay, pkg);
    return rc;
}

/* ---- the .mini_2 writer ---------------------------------------------------------------------- */

/* The buffer starts at one header; it grows to the table and then to the largest patch once
 * the header says how big those are (bounded there, never by the network). */
int qmini_w2_begin(struct qmini_w2 *w, struct flash *f, uint32_t off, uint32_t size,
                   const char *project)
{
    memset(w, 0, sizeof(*w));
    w->flash = f;
    w->off = off;
    w->size = size;
    snprintf(w->project, sizeof(w->project), "%s", project ? project : "");
    w->cap = PKG_HDR;
    w->buf = malloc(w->cap);
    return w->buf ? 0 : -ENOMEM;
}

void qmini_w2_end(struct qmini_w2 *w)
{
    if (w->dec_live)
        delta_dec_free(&w->dec);
    free(w->buf);
    free(w->seg_buf);
    free(w->segs);
    memset(w, 0, sizeof(*w));
}

static int qmini_w2_fail(struct qmini_w2 *w, enum pkg_err e, int rc)
{
    w->err = e;
    w->stage = QMINI_W2_FAILED;
    return rc;
}

static int qmini_w2_grow(struct qmini_w2 *w, size_t cap)
{
    uint8_t *p;

    if (cap <= w->cap)
        return 0;
    p = realloc(w->buf, cap);
    if (!p)
        return -ENOMEM;
    w->buf = p;
    w->cap = cap;
    return 0;
}

/* Moves bytes into buf until it holds `want`; true when it does. */
static bool qmini_w2_fill(struct qmini_w2 *w, const uint8_t **p, size_t *n, size_t want)
{
    size_t k = want - w->len;

    if (k > *n)
        k = *n;
    memcpy(w->buf + w->len, *p, k);
    w->len += k;
    w->pos += k;
    *p += k;
    *n -= k;
    return w->len == want;
}

/* The header: a mini_2 of this project that fits the partition, whose table fits the buffer.
 * Only the project is compared: the baseline may be the one the update moves to. */
static int qmini_w2_head(struct qmini_w2 *w)
{
    const struct flash_geom *g = flash_geometry(w->flash);
    enum pkg_err e = qmini_parse_head(w->buf, PKG_HDR, &w->h);

    if (e == PKG_OK && w->h.kind != PKG_MINI_2)
        e = PKG_E_KIND;
    if (e == PKG_OK && strcmp(w->h.project, w->project) != 0)
        e = PKG_E_PROJECT;
    if (e == PKG_OK && w->h.target_size > w->size)
        e = PKG_E_TOO_BIG;
    if (e == PKG_OK && (w->h.payload_off > QMINI_W2_TABLE_MAX || w->h.seg_size % g->erase_size))
        e = PKG_E_LAYOUT;
    if (e != PKG_OK)
        return qmini_w2_fail(w, e, -EBADMSG);
    w->end = qmini_pkg_end(&w->h);
    if (qmini_w2_grow(w, (size_t)w->h.payload_off))
        return qmini_w2_fail(w, PKG_E_IO, -ENOMEM);
    w->stage = QMINI_W2_TABLE;
    return 0;
}

/* The table: patches must follow each other from the payload's start, so that each segment can
 * be written as soon as its patch is in (the order `modtwin pack` writes them). */
static int qmini_w2_table(struct qmini_w2 *w)
{
    struct pkg_mem mm = {w->buf, w->len};
    uint64_t next = 0;
    size_t patch_max = 1;
    uint32_t seg_cap;
    enum pkg_err e = pkg_read_table(&w->h, pkg_mem_read, &mm, &w->segs);

    if (e != PKG_OK)
        return qmini_w2_fail(w, e, -EBADMSG);
    for (uint32_t i = 0; i < w->h.seg_count; i++) {
        if (w->segs[i].off != next || w->segs[i].len > w->h.seg_size + QMINI_PATCH_SLACK)
            return qmini_w2_fail(w, PKG_E_LAYOUT, -EBADMSG);
        next += w->segs[i].len;
        if (w->segs[i].len > patch_max)
            patch_max = w->segs[i].len;
    }
    seg_cap = w->h.target_size < w->h.seg_size ? (uint32_t)w->h.target_size : w->h.seg_size;
    w->seg_buf = malloc(seg_cap);
    if (!w->seg_buf || qmini_w2_grow(w, patch_max) || delta_dec_init(&w->dec, seg_cap))
        return qmini_w2_fail(w, PKG_E_IO, -ENOMEM);
    w->dec_live = true;
    w->len = 0;
    w->stage = QMINI_W2_SEGS;
    return 0;
}

/* One patch is in: decode it (no source: mini_2 codecs stand alone), check its CRC32, erase
 * the segment's units and program it. A redo after a cut simply erases again. */
static int qmini_w2_segment(struct qmini_w2 *w)
{
    const struct pkg_seg *s = &w->segs[w->seg];
    uint32_t es = flash_geometry(w->flash)->erase_size;
    uint64_t at = (uint64_t)w->seg * w->h.seg_size;
    uint32_t len =
        (uint32_t)(w->h.target_size - at < w->h.seg_size ? w->h.target_size - at : w->h.seg_size);
    struct delta_src none = {NULL, 0};
    uint32_t crc = 0;
    int rc;

    if (delta_dec_segment(&w->dec, (enum delta_codec)s->codec, &none, w->buf, s->len, w->seg_buf,
                          len) ||
        pkg_digest(w->seg_buf, len, NULL, NULL, &crc) || crc != s->crc32)
        return qmini_w2_fail(w, PKG_E_SEGMENT, -EBADMSG);
    rc = flash_erase_range(w->flash, w->off + (uint32_t)at, (len + es - 1) / es * es);
    if (!rc)
        rc = flash_write(w->flash, w->off + (uint32_t)at, w->seg_buf, len);
    if (rc)
        return qmini_w2_fail(w, PKG_E_IO, rc);
    w->written += len;
    w->len = 0;
    if (++w->seg == w->h.seg_count)
        w->stage = QMINI_W2_TAIL;
    return 0;
}

int qmini_w2_feed(struct qmini_w2 *w, const uint8_t *buf, size_t len)
{
    int rc = 0;

    while (len && !rc) {
        switch (w->stage) {
        case QMINI_W2_HEAD:
            if (qmini_w2_fill(w, &buf, &len, PKG_HDR))
                rc = qmini_w2_head(w);
            break;
        case QMINI_W2_TABLE:
            if (qmini_w2_fill(w, &buf, &len, (size_t)w->h.payload_off))
                rc = qmini_w2_table(w);
            break;
        case QMINI_W2_SEGS:
            if (qmini_w2_fill(w, &buf, &len, w->segs[w->seg].len))
                rc = qmini_w2_segment(w);
            break;
        case QMINI_W2_TAIL:
            /* The signature gap and signature, if any: nothing to write. */
            if (len > w->end - w->pos)
                return qmini_w2_fail(w, PKG_E_LAYOUT, -EBADMSG);
            w->pos += len;
            len = 0;
            break;
        case QMINI_W2_FAILED:
        default:
            return -EBADMSG;
        }
    }
    return rc;
}

int qmini_w2_finish(struct qmini_w2 *w, uint64_t total)
{
    uint8_t sha[32], md5[16];

    if (w->stage != QMINI_W2_TAIL || w->pos != w->end || total != w->end)
        return qmini_w2_fail(w, PKG_E_TRUNCATED, -EBADMSG);
    /* What landed in flash, not what was decoded: a program that went wrong shows here. */
    if (pkg_digest(flash_data(w->flash) + w->off, (size_t)w->h.target_size, sha, md5, NULL))
        return qmini_w2_fail(w, PKG_E_IO, -EIO);
    if (memcmp(sha, w->h.target_sha256, sizeof(sha)) != 0)
        return qmini_w2_fail(w, PKG_E_TARGET_DIGEST, -EBADMSG);
    if (memcmp(md5, w->h.target_md5, sizeof(md5)) != 0)
        return qmini_w2_fail(w, PKG_E_TARGET_MD5, -EBADMSG);
    return 0;
}

unsigned qmini_w2_tenths(const struct qmini_w2 *w)
{
    return w->h.target_size ? (unsigned)(w->written * 10 / w->h.target_size) : 0;
}

/* ---- the job record -------------------------------------------------------------------------- */

/* One nv_set: the record is old or new after a cut, never a mix, which is what makes every
 * decision of the flow a single atomic step. No job means no record at all. */
static int qmini_save(struct qmini *q)
{
    uint8_t rec[QMINI_REC_HDR + QMINI_URL_MAX + 1];
    size_t n = strlen(q->url);
    int rc;

    if (q->phase == QMINI_PH_NONE) {
        rc = nv_del(&q->m->nv, QMINI_NV_KEY);
        return rc == -ENOENT ? 0 : rc;
    }
    rec[0] = QMINI_NV_VERSION;
    rec[1] = (uint8_t)q->phase;
    rec[2] = q->committed ? QMINI_F_COMMITTED : 0;
    rec[3] = 0;
    rec[4] = (uint8_t)(q->code & 0xff);
    rec[5] = (uint8_t)((q->code >> 8) & 0xff);
    memcpy(rec + QMINI_REC_HDR, q->url, n + 1);
    return nv_set(&q->m->nv, QMINI_NV_KEY, rec, QMINI_REC_HDR + n + 1);
}

/* Reads the record; false (and no job) when there is none or it cannot be read. */
static bool qmini_load(struct qmini *q)
{
    uint8_t rec[QMINI_REC_HDR + QMINI_URL_MAX + 1];
    int n = nv_get(&q->m->nv, QMINI_NV_KEY, rec, sizeof(rec));

    q->phase = QMINI_PH_NONE;
    if (n < (int)QMINI_REC_HDR + 1 || rec[0] != QMINI_NV_VERSION || rec[1] == QMINI_PH_NONE ||
        rec[1] >= QMINI_PH_COUNT || rec[n - 1] != 0)
        return false;
    q->phase = (enum qmini_phase)rec[1];
    q->committed = (rec[2] & QMINI_F_COMMITTED) != 0;
    q->code = rec[4] | rec[5] << 8;
    memcpy(q->url, rec + QMINI_REC_HDR, (size_t)n - QMINI_REC_HDR);
    return true;
}

/* ---- this boot's work ------------------------------------------------------------------------ */

static const struct model_part *qmini_part(const struct qmini *q, const char *name)
{
    return model_part(q->m->model, name);
}

/* Drops what a step holds in RAM (transfer, file handle, writer, apply); writes nothing. */
static void qmini_drop(struct qmini *q)
{
    vtimer_stop(&q->timer);
    if (q->x)
        xfer_cancel(q->x);
    q->x = NULL;
    if (q->fh_open)
        ufs_abort(&q->fh);
    q->fh_open = false;
    if (q->w2_live)
        qmini_w2_end(&q->w2);
    q->w2_live = false;
    if (q->ap_live)
        fota_apply_end(&q->ap);
    q->ap_live = false;
    free(q->segs);
    q->segs = NULL;
}

/* Timers of a module whose power was cut (it is torn down at the next loop turn) do nothing. */
static bool qmini_dead(const struct qmini *q)
{
    return q->m->power == MODEM_DEAD || q->m->power == MODEM_OFF;
}

static void qmini_restart_cb(void *ctx)
{
    struct qmini *q = ctx;

    if (!qmini_dead(q))
        modem_reboot(q->m);
}

/* The decision is in the record: the module restarts shortly (the host reads the answer or
 * the last URC first). */
static void qmini_restart(struct qmini *q)
{
    qmini_drop(q);
    modem_fota_note(q->m, "minifota restart (%s)",
                    q->phase == QMINI_PH_REPORT   ? "big system"
                    : q->phase == QMINI_PH_APPLY1 ? "upgrade mode"
                                                  : "mini system");
    vtimer_start(&q->timer, q->m->clock, QMINI_RESTART_SECONDS, qmini_restart_cb, q);
}

/* Back to the big system with an END code (cases 1 and 2): only before the commit. */
static void qmini_leave(struct qmini *q, int code)
{
    q->phase = QMINI_PH_REPORT;
    q->code = code;
    if (qmini_save(q) == -ECANCELED)
        return;
    qmini_drop(q);
    ufs_remove(&q->m->ufs, QMINI_FILE);
    qmini_restart(q);
}

static void qmini_dl1_attempt(void *ctx);
static void qmini_dl2_attempt(void *ctx);

static void qmini_retry(struct qmini *q, vtimer_fn *fn)
{
    vtimer_start(&q->timer, q->m->clock, QMINI_RETRY_SECONDS, fn, q);
}

/* ---- step 3: .mini_1 into UFS ---------------------------------------------------------------- */

/* The match check of the head; -EPERM when it refuses (q->verdict says why). Passing it the
 * first time commits the job: the record says so before the download goes on. */
static int qmini_dl1_check(struct qmini *q)
{
    struct modem *m = q->m;
    const struct model_part *mini = qmini_part(q, "mini");
    struct pkg_hdr h;
    enum pkg_err e;

    q->checked = true;
    e = qmini_check_head(q->head, q->head_len, &m->fw, flash_data(&m->flash) + mini->off,
                         mini->size, &h);
    modem_fota_note(m, "minifota mini_1 check %d %s", (int)e, pkg_err_name(e));
    if (e != PKG_OK) {
        q->verdict = e;
        return -EPERM;
    }
    if (q->committed)
        return 0;
    q->committed = true;
    return qmini_save(q);
}

/*
 * The sink of step 3 (called from the transfer, in the loop): bytes go to the UFS file as they
 * come, and the first 2 KiB are kept in RAM too, so the match check needs no read-back of
 * unsynced data. An error return ends the transfer; dl1_done then sorts out why.
 */
static int qmini_dl1_write(void *ctx, uint64_t off, const void *buf, size_t len)
{
    struct qmini *q = ctx;
    ssize_t n;
    int rc;

    if (!q->fh_open || off != q->got)
        return -EIO;
    n = ufs_write(&q->fh, buf, len);
    if (n < 0)
        return (int)n;
    if (q->head_len < QMINI_CHECK_BYTES) {
        size_t k = QMINI_CHECK_BYTES - q->head_len < len ? QMINI_CHECK_BYTES - q->head_len : len;
        memcpy(q->head + q->head_len, buf, k);
        q->head_len += k;
    }
    q->got += len;
    if (!q->checked && q->head_len == QMINI_CHECK_BYTES) {
        rc = qmini_dl1_check(q);
        if (rc)
            return rc;
    }
    /* As dl.c: a synced prefix every DL_SYNC_EVERY bytes, for a resume after a cut. */
    if (q->got - q->synced >= DL_SYNC_EVERY) {
        rc = ufs_sync(&q->fh);
        if (rc)
            return rc;
        q->synced = q->got;
    }
    return 0;
}

/* The end of a package shorter than the head: it is checked whole. */
static int qmini_dl1_commit(void *ctx, uint64_t total)
{
    struct qmini *q = ctx;
    int rc;

    (void)total;
    if (!q->checked) {
        rc = qmini_dl1_check(q);
        if (rc)
            return rc;
    }
    q->fh_open = false;
    rc = ufs_close(&q->fh);
    if (!rc)
        q->synced = q->got;
    return rc;
}

/* Package reader over the committed .mini_1 file (integrity check, the apply). */
static int qmini_ufs_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    struct qmini *q = ctx;
    ssize_t n = ufs_pread(&q->m->ufs, QMINI_FILE, off, buf, len);

    if (n < 0)
        return (int)n;
    return (size_t)n == len ? 0 : -ENODATA;
}

/* A failed attempt: back to the big system after case 1's time-out, else try again later. */
static void qmini_dl1_failed(struct qmini *q, enum xfer_err err)
{
    struct modem *m = q->m;

    modem_fota_note(m, "minifota mini_1 download failed: %s", xfer_err_name(err));
    if (!q->committed && vclock_now(m->clock) - q->started >= QMINI_NODATA_TIMEOUT) {
        qmini_leave(q, QMINI_ERR_TIMEOUT);
        return;
    }
    qmini_retry(q, qmini_dl1_attempt);
}

/* The download is complete: is the package intact? Then the upgrade; else step 3 again after a
 * restart (step 4). */
static void qmini_dl1_complete(struct qmini *q, uint64_t total)
{
    struct modem *m = q->m;
    const struct model_part *mini = qmini_part(q, "mini");
    enum pkg_err e = qmini_check_pkg(qmini_ufs_read, q, total, &m->fw,
                                     flash_data(&m->flash) + mini->off, mini->size);

    modem_fota_note(m, "minifota mini_1 integrity %d %s", (int)e, pkg_err_name(e));
    if (e != PKG_OK) {
        if (ufs_remove(&m->ufs, QMINI_FILE) == -ECANCELED)
            return;
        qmini_restart(q);
        return;
    }
    q->phase = QMINI_PH_APPLY1;
    if (qmini_save(q) == -ECANCELED)
        return;
    qmini_restart(q);
}

/* The end of an attempt of step 3, in the order of precedence: a refused head (case 2, or a
 * retry once committed), a transfer failure (case 1 or 3), a complete file (step 4). */
static void qmini_dl1_done(void *ctx, enum xfer_err err, int detail, uint64_t total)
{
    struct qmini *q = ctx;
    struct modem *m = q->m;

    (void)detail;
    q->x = NULL;
    if (m->power != MODEM_ON)
        return; /* cut: nothing more happens */
    if (q->fh_open) {
        /* Keep what arrived after the commit, so the next attempt resumes from it. */
        q->fh_open = false;
        if (q->committed && q->verdict == PKG_OK && q->got > q->synced && ufs_close(&q->fh) == 0)
            q->synced = q->got;
        else
            ufs_abort(&q->fh);
    }
    if (q->verdict != PKG_OK) {
        if (!q->committed) {
            qmini_leave(q, quectel_dfota_err(q->verdict)); /* case 2 */
        } else {
            /* Committed: the big system is not an option any more; the host may correct
             * the URL (5.2) while the module retries. */
            ufs_remove(&m->ufs, QMINI_FILE);
            qmini_retry(q, qmini_dl1_attempt);
        }
    } else if (err != XFER_OK) {
        qmini_dl1_failed(q, err);
    } else {
        qmini_dl1_complete(q, total);
    }
    modem_flash_event(m);
}

/* Whether an FTP URL names a file below the root, which the module cannot fetch. */
static bool qmini_ftp_subdir(const char *url)
{
    const char *path = strstr(url, "://");

    path = path ? strchr(path + 3, '/') : NULL;
    return strncasecmp(url, "ftp://", 6) == 0 && path && strchr(path + 1, '/') != NULL;
}

/* One attempt of step 3. After the commit it continues the file a cut or a failure left;
 * before, it starts afresh. */
static void qmini_dl1_attempt(void *ctx)
{
    struct qmini *q = ctx;
    struct modem *m = q->m;
    struct xfer_sink sink = {qmini_dl1_write, qmini_dl1_commit, q};
    struct xfer_cb cb = {NULL, qmini_dl1_done, q};
    struct xfer_opts o;
    struct ufs_stat st = {0};
    enum xfer_err xe = XFER_E_URL;
    bool resume;
    int rc;

    if (qmini_dead(q))
        return;
    q->got = q->synced = 0;
    q->head_len = 0;
    q->checked = false;
    q->verdict = PKG_OK;
    resume = q->committed && ufs_stat(&m->ufs, QMINI_FILE, &st) == 0 && st.size > 0;
    if (resume) {
        /* The head was checked before the commit; keep it for a file shorter than 2 KiB. */
        ssize_t n = ufs_pread(&m->ufs, QMINI_FILE, 0, q->head,
                              st.size < QMINI_CHECK_BYTES ? (size_t)st.size : QMINI_CHECK_BYTES);
        q->head_len = n > 0 ? (size_t)n : 0;
        q->checked = true;
        q->got = q->synced = st.size;
    }
    /* Everything had arrived when the power went: a Range from the end would only fail. */
    if (resume && qmini_resume_kind(q->head, q->head_len, st.size) == QMINI_RESUME_COMPLETE) {
        qmini_dl1_complete(q, st.size);
        return;
    }
    /* The module stores from the FTP root only (seed 002 3.3.1.1): nothing to fetch. */
    if (qmini_ftp_subdir(q->url)) {
        qmini_dl1_failed(q, XFER_E_URL);
        return;
    }
    modem_xfer_defaults(m, &o);
    o.url = q->url;
    o.resume_from = q->got;
    q->x = xfer_start(&m->xenv, &o, &sink, &cb, &xe);
    if (!q->x) {
        qmini_dl1_failed(q, xe);
        return;
    }
    rc = ufs_open(&m->ufs, &q->fh, QMINI_FILE,
                  UFS_WRONLY | UFS_CREAT | (resume ? UFS_APPEND : UFS_TRUNC));
    if (rc) {
        xfer_cancel(q->x);
        q->x = NULL;
        if (rc != -ECANCELED)
            qmini_dl1_failed(q, XFER_E_STORAGE);
        return;
    }
    q->fh_open = true;
    modem_fota_note(m, "minifota mini_1 download from %llu", (unsigned long long)q->got);
}

/* ---- step 4: the mini_1 apply in upgrade mode ------------------------------------------------ */

static void qmini_apply_urcs(struct qmini *q, unsigned pct)
{
    unsigned due = qmini_urc1_due(pct);

    while (q->urc_sent < due)
        modem_urc(q->m, "+QIND: \"FOTA\",\"UPDATING\",%u", qmini_urc1(++q->urc_sent));
}

/* The apply stopped for good: the record goes back to step 3 (the old Mini system is intact
 * unless the restore had begun; then the boot finds no Mini system and the module is dead, as
 * 2.3.1.2's warning about a failed MiniFOTA says). */
static void qmini_apply_failed(struct qmini *q, enum pkg_err e)
{
    struct modem *m = q->m;

    modem_fota_note(m, "minifota mini_1 apply failed %d %s", (int)e, pkg_err_name(e));
    q->phase = QMINI_PH_DL1;
    if (qmini_save(q) == -ECANCELED)
        return;
    qmini_drop(q);
    if (fota_apply_clear(&m->nv) == -ECANCELED || ufs_remove(&m->ufs, QMINI_FILE) == -ECANCELED)
        return;
    qmini_restart(q);
}

static void qmini_apply_tick(void *ctx)
{
    struct qmini *q = ctx;
    struct modem *m = q->m;
    int rc;

    if (qmini_dead(q) || !q->ap_live)
        return;
    rc = fota_apply_step(&q->ap);
    if (rc == -ECANCELED)
        return;
    if (rc < 0) {
        qmini_apply_failed(q, q->ap.err != PKG_OK ? q->ap.err : PKG_E_IO);
        modem_flash_event(m);
        return;
    }
    qmini_apply_urcs(q, fota_apply_progress(&q->ap));
    if (rc > 0) {
        vtimer_start(&q->timer, m->clock, m->model->apply_step_seconds, qmini_apply_tick, q);
        modem_flash_event(m);
        return;
    }
    /* The new Mini system is in place. The record moves on first: a cut before the clean-up
     * boots the new Mini system, which clears the rest (qmini_booted). */
    q->phase = QMINI_PH_DL2;
    if (qmini_save(q) == -ECANCELED)
        return;
    qmini_drop(q);
    if (fota_apply_clear(&m->nv) == 0 && ufs_remove(&m->ufs, QMINI_FILE) != -ECANCELED)
        qmini_restart(q);
    modem_flash_event(m);
}

void qmini_upgrade(struct qmini *q)
{
    struct modem *m = q->m;
    struct fota_layout lay;
    struct fota_pkg pkg;
    struct ufs_stat st;
    uint8_t hdr[PKG_HDR];
    enum pkg_err e = PKG_E_IO;
    int rc;

    if (q->phase != QMINI_PH_APPLY1)
        return;
    if (ufs_stat(&m->ufs, QMINI_FILE, &st) == 0 && st.size >= PKG_HDR &&
        qmini_ufs_read(q, 0, hdr, sizeof(hdr)) == 0) {
        e = pkg_parse_header(hdr, sizeof(hdr), st.size, &q->hdr);
        if (e == PKG_OK)
            e = pkg_read_table(&q->hdr, qmini_ufs_read, q, &q->segs);
    }
    if (e == PKG_OK && qmini_layout(qmini_part(q, "mini"), qmini_part(q, "system"), &lay))
        e = PKG_E_IO;
    if (e != PKG_OK) {
        qmini_apply_failed(q, e);
        return;
    }
    pkg = (struct fota_pkg){&q->hdr, q->segs, qmini_ufs_read, q};
    rc = qmini_apply_open(&q->ap, &m->flash, &m->nv, &lay, &pkg);
    if (rc == -ECANCELED)
        return;
    if (rc) {
        qmini_apply_failed(q, q->ap.err != PKG_OK ? q->ap.err : PKG_E_IO);
        return;
    }
    q->ap_live = true;
    /* After a cut the count goes on from the journal's progress. */
    q->urc_sent = qmini_urc1_due(fota_apply_progress(&q->ap));
    modem_fota_note(m, "minifota mini_1 apply from %u%%", fota_apply_progress(&q->ap));
    vtimer_start(&q->timer, m->clock, m->model->apply_step_seconds, qmini_apply_tick, q);
}

/* ---- step 5: .mini_2 into the big system ----------------------------------------------------- */

static void qmini_dl2_urcs(struct qmini *q)
{
    unsigned due = qmini_urc2_due(q->w2.written, q->w2.h.target_size);

    while (q->urc_sent < due)
        modem_urc(q->m, "+QIND: \"FOTA\",\"UPDATING\",%u", qmini_urc2(++q->urc_sent));
}

/* The sink of step 5: the writer programs the big system as the bytes arrive. A cut inside
 * returns -ECANCELED, which passes through so the transfer stops with nothing more written. */
static int qmini_dl2_write(void *ctx, uint64_t off, const void *buf, size_t len)
{
    struct qmini *q = ctx;
    int rc;

    if (off != q->w2.pos)
        return -EIO;
    rc = qmini_w2_feed(&q->w2, buf, len);
    /* A package the writer refuses is a storage failure to the transfer; the reason stays. */
    return rc == -EBADMSG ? -EIO : rc;
}

/* URCs from the loop, not from inside the sink: at most one burst per loop turn. */
static void qmini_dl2_progress(void *ctx, uint64_t got, uint64_t total)
{
    (void)got;
    (void)total;
    qmini_dl2_urcs(ctx);
}

static void qmini_dl2_done(void *ctx, enum xfer_err err, int detail, uint64_t total)
{
    struct qmini *q = ctx;
    struct modem *m = q->m;
    int rc = -EIO;

    (void)detail;
    q->x = NULL;
    if (m->power != MODEM_ON)
        return;
    if (err == XFER_OK)
        rc = qmini_w2_finish(&q->w2, total);
    modem_fota_note(m, "minifota mini_2 %s %d %s", err == XFER_OK ? "written" : "failed",
                    (int)q->w2.err, err == XFER_OK ? pkg_err_name(q->w2.err) : xfer_err_name(err));
    if (rc == 0) {
        qmini_dl2_urcs(q);
        q->phase = QMINI_PH_REPORT;
        q->code = 0;
        if (qmini_save(q) != -ECANCELED)
            qmini_restart(q);
    } else {
        /* Case 4: the big system is gone; wait and try again (after a cut: at the boot). */
        qmini_w2_end(&q->w2);
        q->w2_live = false;
        qmini_retry(q, qmini_dl2_attempt);
    }
    modem_flash_event(m);
}

/* One attempt of step 5: a fresh writer, the .mini_2 URL of the job's base name. Failing to
 * even start is a failure like any other: try again later. */
static void qmini_dl2_attempt(void *ctx)
{
    struct qmini *q = ctx;
    struct modem *m = q->m;
    const struct model_part *sys = qmini_part(q, "system");
    struct xfer_sink sink = {qmini_dl2_write, NULL, q};
    struct xfer_cb cb = {qmini_dl2_progress, qmini_dl2_done, q};
    char url[QMINI_URL_MAX + 1];
    struct xfer_opts o;
    enum xfer_err xe = XFER_E_URL;

    if (qmini_dead(q))
        return;
    if (q->w2_live)
        qmini_w2_end(&q->w2);
    q->w2_live = false;
    if (qmini_url_2(q->url, url, sizeof(url)) || qmini_ftp_subdir(url) ||
        qmini_w2_begin(&q->w2, &m->flash, sys->off, sys->size, m->fw.project)) {
        qmini_retry(q, qmini_dl2_attempt);
        return;
    }
    q->w2_live = true;
    modem_xfer_defaults(m, &o);
    o.url = url;
    q->x = xfer_start(&m->xenv, &o, &sink, &cb, &xe);
    if (!q->x) {
        modem_fota_note(m, "minifota mini_2 failed: %s", xfer_err_name(xe));
        qmini_retry(q, qmini_dl2_attempt);
        return;
    }
    modem_fota_note(m, "minifota mini_2 download");
}

/* ---- entry points ---------------------------------------------------------------------------- */

static bool qmini_is_allowed(const char *name)
{
    for (size_t i = 0; i < sizeof(qmini_allowed) / sizeof(qmini_allowed[0]); i++)
        if (strcmp(qmini_allowed[i], name) == 0)
            return true;
    return false;
}

void qmini_init(struct qmini *q, struct modem *m)
{
    size_t ncmds = 0;

    memset(q, 0, sizeof(*q));
    q->m = m;
    /* Each filtered table keeps its source's order, so the engine's binary search holds. */
    for (size_t t = 0; t < m->model->ntables && q->ntabs < QMINI_TABLES_MAX; t++) {
        const struct at_table *src = m->model->tables[t];
        struct at_table *dst = &q->tabs[q->ntabs];

        dst->family = src->family;
        dst->cmds = &q->cmds[ncmds];
        dst->n = 0;
        for (size_t i = 0; i < src->n && ncmds < QMINI_CMDS_MAX; i++) {
            if (qmini_is_allowed(src->cmds[i].name)) {
                q->cmds[ncmds++] = src->cmds[i];
                dst->n++;
            }
        }
        if (dst->n)
            q->tabp[q->ntabs++] = dst;
    }
}

const struct at_table *const *qmini_tables(const struct qmini *q, size_t *n)
{
    *n = q->ntabs;
    return q->tabp;
}

/* Nothing of a previous boot survives in RAM: the record is all the next boot knows. */
enum qmini_boot qmini_boot(struct qmini *q)
{
    struct modem *m = q->m;

    qmini_drop(q);
    q->phase = QMINI_PH_NONE;
    q->committed = false;
    q->urc_sent = 0;
    if (!m || !m->model->minifota || !m->storage_ok || !qmini_load(q))
        return QMINI_BOOT_MAIN;
    switch (q->phase) {
    case QMINI_PH_DL1:
    case QMINI_PH_DL2:
        return QMINI_BOOT_MINI;
    case QMINI_PH_APPLY1:
        return QMINI_BOOT_UPGRADE;
    default:
        return QMINI_BOOT_MAIN;
    }
}

void qmini_booted(struct qmini *q)
{
    struct modem *m = q->m;

    if (!m)
        return;
    switch (q->phase) {
    case QMINI_PH_REPORT:
        /* Step 6 (or case 1 / 2): the result after the big system's boot lines. */
        modem_urc(m, "+QIND: \"FOTA\",\"END\",%d", q->code);
        modem_fota_note(m, "minifota end %d", q->code);
        q->phase = QMINI_PH_NONE;
        if (qmini_save(q) == -ECANCELED)
            return;
        ufs_remove(&m->ufs, QMINI_FILE);
        break;
    case QMINI_PH_DL1:
        q->started = vclock_now(m->clock);
        qmini_dl1_attempt(q);
        break;
    case QMINI_PH_DL2:
        /* The new Mini system: the mini_1 part is done (60), the leftovers of the apply go. */
        if (fota_apply_clear(&m->nv) == -ECANCELED || ufs_remove(&m->ufs, QMINI_FILE) == -ECANCELED)
            return;
        q->urc_sent = 0;
        modem_urc(m, "+QIND: \"FOTA\",\"UPDATING\",%u", qmini_urc2(0));
        qmini_dl2_attempt(q);
        break;
    default:
        break;
    }
    modem_flash_event(m);
}

void qmini_stop(struct qmini *q)
{
    qmini_drop(q);
}

/* The big system only records the job and restarts: everything else happens in the Mini
 * system, so the answer to the host is immediate and a cut after OK loses nothing. */
int qmini_start(struct qmini *q, enum qfota_src src, const char *url)
{
    struct modem *m = q->m;
    const struct model_part *mini = qmini_part(q, "mini");
    struct fw_image_info info;
    int rc;

    if (!m->storage_ok || !mini)
        return -ENODEV;
    if ((src != QFOTA_SRC_FTP && src != QFOTA_SRC_HTTP) || !qmini_url_ok(url) ||
        strlen(url) > QMINI_URL_MAX)
        return -EINVAL;
    if (m->system == MODEM_SYS_MINI) {
        /* 5.2: a corrected URL for the step in progress, which starts again with it. */
        if (q->phase != QMINI_PH_DL1 && q->phase != QMINI_PH_DL2)
            return -EBUSY;
        qmini_drop(q);
        snprintf(q->url, sizeof(q->url), "%s", url);
        rc = qmini_save(q);
        if (rc)
            return rc;
        modem_fota_note(m, "minifota new url");
        if (q->phase == QMINI_PH_DL2) {
            qmini_dl2_attempt(q);
            return 0;
        }
        /* What arrived was another package's: the corrected one starts from its first byte. */
        ufs_remove(&m->ufs, QMINI_FILE);
        q->started = vclock_now(m->clock);
        qmini_dl1_attempt(q);
        return 0;
    }
    if (q->phase != QMINI_PH_NONE || m->fota.state != FOTA_ST_IDLE ||
        m->qfota.src != QFOTA_SRC_NONE)
        return -EBUSY;
    /* A restart into a Mini system that is not there would leave nothing running. */
    if (fw_image_parse(flash_data(&m->flash) + mini->off, mini->size, true, &info))
        return -ENODEV;
    snprintf(q->url, sizeof(q->url), "%s", url);
    q->phase = QMINI_PH_DL1;
    q->committed = false;
    q->code = 0;
    rc = qmini_save(q);
    if (rc) {
        q->phase = QMINI_PH_NONE;
        return rc;
    }
    qmini_restart(q);
    return 0;
}
