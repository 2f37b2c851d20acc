/*
 * test_fota_apply.c: unit tests of the apply engine (firmware/fota_apply.c) on the flash model,
 * with real images (fw_image/fw_gen) and real packages (tools/pack.c): clean applies of delta,
 * in-place and full packages in every topology, refusals (corrupt segment, wrong target digest
 * or MD5, too big, stale journal), and a power-loss sweep per topology: every flash operation of
 * the apply x every fault kind, plus a sampled second cut during the recovery.
 *
 * The sweep starts each case from a snapshot of the clean run taken before the step that holds
 * the cut, so it costs O(N) steps, not O(N^2) (the engine keeps no state between steps but the
 * journal, so a resume from the snapshot numbers its operations exactly like the clean run).
 * Oracles: the recovery reaches the next step boundary within one step, the flash outside NV
 * then equals the clean run's, at most one segment is decoded again; in the default (small)
 * sweep the recovery also runs to the end and the active image must be the target.
 * FOTA_SWEEP_FULL=1: 2 MiB images, 64 KiB segments, boundary oracle only (DESIGN "Sweep sizes").
 * FOTA_SWEEP_MODEL=<model> (with FOTA_SWEEP_FULL=1; make sweep-ec200a): that model's image size
 * and topology, 64 KiB segments, 256-byte pages: one whole update of that model, every operation.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <mbedtls/sha256.h>

#include "firmware/fota_apply.h"
#include "firmware/fw_image.h"
#include "firmware/model.h"
#include "firmware/pkg.h"
#include "tools/pack.h"

#define TF_UNIT    4096u
#define TF_NV_SIZE (4u * TF_UNIT) /* NV at [0, 16 KiB), the slots after it */
#define TF_KINDS   (FLASH_CUT_SKIP_ERASE + 1)

/* The package as the engine reads it; counts the patch reads (one per segment decode). */
struct tf_rd {
    const uint8_t *p;
    size_t len;
    uint64_t payload_off;
    uint64_t decodes;
};

/* One topology with its images, package, layout and initial flash. */
struct tf {
    enum fota_topo topo;
    struct flash_geom g;
    struct fota_layout lay;
    uint8_t *old, *tgt, *pkg, *start;
    size_t old_len, tgt_len, pkg_len;
    struct pkg_hdr h;
    struct pkg_seg *segs;
    struct tf_rd rd;
    struct fota_pkg fp;
    int first_slot; /* AB: the active slot the apply starts from */
};

static const char *const tf_kind_name[TF_KINDS] = {"BEFORE", "AFTER", "TORN_PROG", "TORN_ERASE",
                                                   "SKIP_ERASE"};
static const char *const tf_topo_name[] = {"staging", "ab", "inplace"};

/* Reads below the payload are the table (pkg_read_table); every read inside it is one patch,
 * which the engine reads exactly once per decode: the independent count of redone work. */
static int tf_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    struct tf_rd *rd = ctx;

    if (off > rd->len || len > rd->len - off)
        return -EIO;
    if (off >= rd->payload_off && len > 0)
        rd->decodes++;
    memcpy(buf, rd->p + off, len);
    return 0;
}

static uint32_t tf_round(uint64_t v, uint32_t unit)
{
    return (uint32_t)((v + unit - 1) / unit * unit);
}

/* A whole image around a body: header sealed over it. */
static uint8_t *tf_seal(const char *rev, const uint8_t *body, size_t body_len, size_t *len)
{
    struct fw_image_info info;
    uint8_t *img = malloc(FW_IMAGE_HDR + body_len);

    assert_non_null(img);
    memset(&info, 0, sizeof(info));
    snprintf(info.revision, sizeof(info.revision), "%s", rev);
    snprintf(info.project, sizeof(info.project), "%s", "TFPROJ");
    snprintf(info.baseline, sizeof(info.baseline), "%s", "TFBASE");
    memcpy(img + FW_IMAGE_HDR, body, body_len);
    fw_image_seal(&info, img, img + FW_IMAGE_HDR, body_len);
    *len = FW_IMAGE_HDR + body_len;
    return img;
}

/* The device content bypasses the op counter on purpose: a case starts from a snapshot, and
 * loading it is not part of the scenario (test-only access to the model's memory). */
static void tf_load(struct flash *f, const uint8_t *img)
{
    memcpy(f->mem, img, f->geom.size);
    flash_power_on(f);
}

/* Parses header and table of t->pkg (again, after a test patched it) the way a module does. */
static void tf_parse(struct tf *t)
{
    free(t->segs);
    t->segs = NULL;
    assert_int_equal(pkg_parse_header(t->pkg, t->pkg_len, t->pkg_len, &t->h), PKG_OK);
    t->rd = (struct tf_rd){t->pkg, t->pkg_len, t->h.payload_off, 0};
    assert_int_equal(pkg_read_table(&t->h, tf_read, &t->rd, &t->segs), PKG_OK);
    t->fp = (struct fota_pkg){&t->h, t->segs, tf_read, &t->rd};
}

/* Lays out flash: NV, slot 0, slot 1 or the stash; slots hold whole segments of either image. */
static void tf_layout(struct tf *t, uint32_t seg, uint32_t page)
{
    size_t big = t->old_len > t->tgt_len ? t->old_len : t->tgt_len;
    uint32_t second;

    memset(&t->lay, 0, sizeof(t->lay));
    t->lay.topo = t->topo;
    t->lay.slot_size = tf_round(big, seg);
    t->lay.slot_off[0] = TF_NV_SIZE;
    if (t->topo == FOTA_TOPO_INPLACE) {
        t->lay.backup_off = TF_NV_SIZE + t->lay.slot_size;
        t->lay.backup_size = seg;
        second = seg;
    } else {
        t->lay.slot_off[1] = TF_NV_SIZE + t->lay.slot_size;
        second = t->lay.slot_size;
    }
    t->g = (struct flash_geom){TF_NV_SIZE + t->lay.slot_size + second, TF_UNIT, page};
}

/* The initial device: the old image in the active slot, NV formatted (and, for AB from slot 1,
 * the slot flag set). */
static void tf_start(struct tf *t)
{
    struct flash f;
    struct nv nv;
    uint32_t at = t->lay.slot_off[t->first_slot];

    assert_int_equal(flash_open_mem(&f, &t->g), 0);
    assert_int_equal(flash_write(&f, at, t->old, (uint32_t)t->old_len), 0);
    assert_int_equal(nv_mount(&nv, &f, 0, TF_NV_SIZE), 0);
    if (t->first_slot)
        assert_int_equal(nv_set_i64(&nv, FOTA_SLOT_KEY, 1), 0);
    nv_unmount(&nv);
    free(t->start);
    t->start = malloc(t->g.size);
    assert_non_null(t->start);
    memcpy(t->start, flash_data(&f), t->g.size);
    flash_close(&f);
}

/* Images of body_size bytes (the new one derived, ~3 % changed), a package of `kind` with
 * seg-byte segments, the layout (program pages of `page` bytes) and the initial flash. */
static struct tf *tf_new_geom(enum fota_topo topo, size_t body_size, uint32_t seg,
                              enum pkg_kind kind, bool inplace, uint32_t page)
{
    struct tf *t = calloc(1, sizeof(*t));
    struct pack_opts o;
    uint8_t *body;
    size_t body_len;

    assert_non_null(t);
    t->topo = topo;
    assert_int_equal(
        fw_image_factory("TF-A01", "TFPROJ", "TFBASE", body_size, &t->old, &t->old_len), 0);
    assert_int_equal(fw_gen_derive(t->old + FW_IMAGE_HDR, t->old_len - FW_IMAGE_HDR, 3.0,
                                   0x5eed + body_size, &body, &body_len),
                     0);
    t->tgt = tf_seal("TF-B02", body, body_len, &t->tgt_len);
    free(body);
    memset(&o, 0, sizeof(o));
    o.kind = kind;
    o.seg_size = seg;
    o.level = 3;
    o.inplace = inplace;
    assert_int_equal(pack_build(&o, t->old, t->old_len, t->tgt, t->tgt_len, &t->pkg, &t->pkg_len),
                     0);
    tf_parse(t);
    tf_layout(t, seg, page);
    tf_start(t);
    return t;
}

/* The default geometry: 4 KiB erase units, 256-byte pages. */
static struct tf *tf_new(enum fota_topo topo, size_t body_size, uint32_t seg, enum pkg_kind kind,
                         bool inplace)
{
    return tf_new_geom(topo, body_size, seg, kind, inplace, FLASH_DEF_PAGE_SIZE);
}

/* Releases everything tf_new made. */
static void tf_free(struct tf *t)
{
    free(t->old);
    free(t->tgt);
    free(t->pkg);
    free(t->start);
    free(t->segs);
    free(t);
}

/* SHA-256 as the engine computes it (mbedtls 2.28, the _ret variant). */
static void tf_sha(const uint8_t *p, size_t len, uint8_t out[32])
{
    assert_int_equal(mbedtls_sha256_ret(p, len, out, 0), 0);
}

/* Is the image at slot `slot` of f exactly img (bytes and SHA-256)? */
static bool tf_slot_is(const struct tf *t, const struct flash *f, int slot, const uint8_t *img,
                       size_t len)
{
    uint8_t a[32], b[32];
    const uint8_t *p = flash_data(f) + t->lay.slot_off[slot];

    tf_sha(p, len, a);
    tf_sha(img, len, b);
    return memcmp(p, img, len) == 0 && memcmp(a, b, 32) == 0;
}

/* The slot that holds the active image after a complete apply. */
static int tf_final_slot(const struct tf *t, const struct nv *nv)
{
    return t->topo == FOTA_TOPO_AB ? fota_apply_active_slot(nv) : 0;
}

/* ---- clean applies ------------------------------------------------------------------------- */

/* Applies t's package from its initial flash to the end; checks target, journal, NOR rules and
 * the progress curve. Returns the number of steps. */
static unsigned tf_clean(struct tf *t, bool quiet)
{
    struct flash f;
    struct nv nv;
    struct fota_apply a;
    struct flash_stats st;
    uint32_t seg = 99;
    unsigned last = 0, steps = 0, p;
    uint64_t ops0;
    int rc;

    assert_int_equal(flash_open_mem(&f, &t->g), 0);
    tf_load(&f, t->start);
    assert_int_equal(nv_mount(&nv, &f, 0, TF_NV_SIZE), 0);
    assert_int_equal(fota_apply_journal(&nv, NULL), FOTA_PH_NONE);
    t->rd.decodes = 0;
    assert_int_equal(fota_apply_begin(&a, &f, &nv, &t->lay, &t->fp), 0);
    ops0 = flash_ops(&f);
    assert_int_equal(fota_apply_progress(&a), 0);
    do {
        rc = fota_apply_step(&a);
        assert_true(rc >= 0);
        steps++;
        p = fota_apply_progress(&a);
        assert_true(p >= last);
        assert_true(p < 100 || rc == 0);
        last = p;
    } while (rc > 0);
    assert_int_equal(fota_apply_progress(&a), 100);
    assert_int_equal(a.redone, 0);
    assert_int_equal(t->rd.decodes, t->h.seg_count);
    assert_int_equal(fota_apply_journal(&nv, &seg), FOTA_PH_DONE);
    if (t->topo == FOTA_TOPO_AB)
        assert_int_equal(fota_apply_active_slot(&nv), 1 - t->first_slot);
    assert_true(tf_slot_is(t, &f, tf_final_slot(t, &nv), t->tgt, t->tgt_len));
    /* A step after DONE does nothing. */
    assert_int_equal(fota_apply_step(&a), 0);
    flash_stats(&f, &st);
    assert_int_equal(st.violations, 0);
    if (!quiet)
        print_message("%s: %u segments, %u steps, %llu flash ops, RAM %zu bytes\n",
                      tf_topo_name[t->topo], (unsigned)t->h.seg_count, steps,
                      (unsigned long long)(flash_ops(&f) - ops0), fota_apply_ram(&a));
    fota_apply_end(&a);
    /* The journal stays until the outcome is reported; clearing it twice is fine. */
    assert_int_equal(fota_apply_clear(&nv), 0);
    assert_int_equal(fota_apply_clear(&nv), 0);
    assert_int_equal(fota_apply_journal(&nv, NULL), FOTA_PH_NONE);
    nv_unmount(&nv);
    flash_close(&f);
    return steps;
}

/* Staging: 2 steps per segment (build, restore) and one verify. */
static void test_clean_staging(void **state)
{
    struct tf *t = tf_new(FOTA_TOPO_STAGING, 200 * 1024, 16384, PKG_DELTA, false);

    (void)state;
    assert_int_equal(tf_clean(t, false), 2 * t->h.seg_count + 1);
    tf_free(t);
}

/* A/B: one build per segment, verify, switch. */
static void test_clean_ab(void **state)
{
    struct tf *t = tf_new(FOTA_TOPO_AB, 200 * 1024, 16384, PKG_DELTA, false);

    (void)state;
    assert_int_equal(tf_clean(t, false), t->h.seg_count + 2);
    /* The same from slot 1: the target goes to slot 0 and the flag back to 0. */
    t->first_slot = 1;
    tf_start(t);
    tf_clean(t, true);
    tf_free(t);
}

/* In place: stash and write per segment, then verify. */
static void test_clean_inplace(void **state)
{
    struct tf *t = tf_new(FOTA_TOPO_INPLACE, 200 * 1024, 16384, PKG_DELTA, true);

    (void)state;
    assert_int_equal(tf_clean(t, false), 2 * t->h.seg_count + 1);
    tf_free(t);
}

/* Full packages need no source: every topology, in place included. */
static void test_clean_full(void **state)
{
    (void)state;
    for (int topo = 0; topo <= FOTA_TOPO_INPLACE; topo++) {
        struct tf *t = tf_new((enum fota_topo)topo, 96 * 1024, 16384, PKG_FULL, false);

        tf_clean(t, true);
        tf_free(t);
    }
}

/* A segment size larger than the image (64 KiB over ~40 KiB): the only segment is short, its
 * last erase unit only partly programmed (the rest stays 0xFF), in every topology. */
static void test_clean_odd_sizes(void **state)
{
    (void)state;
    for (int topo = 0; topo <= FOTA_TOPO_INPLACE; topo++) {
        struct tf *t = tf_new((enum fota_topo)topo, 40 * 1024 + 123, 65536, PKG_DELTA,
                              topo == FOTA_TOPO_INPLACE);

        assert_int_equal(t->h.seg_count, 1);
        tf_clean(t, true);
        tf_free(t);
    }
}

/* ---- refusals ------------------------------------------------------------------------------ */

/* Runs begin + steps until the first error; returns it (or 0 when the apply completed). */
static int tf_run_until_error(struct tf *t, struct flash *f, struct nv *nv, struct fota_apply *a)
{
    int rc;

    tf_load(f, t->start);
    assert_int_equal(nv_mount(nv, f, 0, TF_NV_SIZE), 0);
    rc = fota_apply_begin(a, f, nv, &t->lay, &t->fp);
    if (rc < 0)
        return rc;
    do {
        rc = fota_apply_step(a);
    } while (rc > 0);
    return rc;
}

/* A corrupt patch in the middle of the package: PKG_E_SEGMENT at that segment; staging and A/B
 * still run the old image, untouched, and the journal names the bad segment. */
static void test_corrupt_segment(void **state)
{
    (void)state;
    for (int topo = 0; topo <= FOTA_TOPO_INPLACE; topo++) {
        struct tf *t =
            tf_new((enum fota_topo)topo, 160 * 1024, 16384, PKG_DELTA, topo == FOTA_TOPO_INPLACE);
        const struct pkg_seg *s = &t->segs[t->h.seg_count / 2];
        struct flash f;
        struct nv nv;
        struct fota_apply a;
        struct flash_stats st;
        uint32_t seg = 0;

        /* Flip bits in the middle of one patch: it fails to decode or yields a wrong CRC. */
        for (uint32_t i = 0; i < 8 && i < s->len; i++)
            t->pkg[t->h.payload_off + s->off + s->len / 2 + i - (s->len > 8 ? 4 : 0)] ^= 0x5a;
        assert_int_equal(flash_open_mem(&f, &t->g), 0);
        assert_int_equal(tf_run_until_error(t, &f, &nv, &a), -EBADMSG);
        assert_int_equal(a.err, PKG_E_SEGMENT);
        if (topo != FOTA_TOPO_INPLACE) {
            /* The source was never touched, the journal stops at the bad segment. */
            assert_true(tf_slot_is(t, &f, 0, t->old, t->old_len));
            assert_int_equal(fota_apply_journal(&nv, &seg), FOTA_PH_BUILD);
            assert_int_equal(seg, t->h.seg_count / 2);
            assert_int_equal(fota_apply_active_slot(&nv), 0);
        } else {
            assert_int_equal(fota_apply_journal(&nv, &seg), FOTA_PH_INPLACE);
        }
        flash_stats(&f, &st);
        assert_int_equal(st.violations, 0);
        fota_apply_end(&a);
        nv_unmount(&nv);
        flash_close(&f);
        tf_free(t);
    }
}

/* The header's target SHA-256 (or MD5) is wrong, the segments are fine: VERIFY refuses before
 * anything is restored or switched. */
static void tf_bad_digest(bool md5)
{
    for (int topo = 0; topo <= FOTA_TOPO_INPLACE; topo++) {
        struct tf *t =
            tf_new((enum fota_topo)topo, 128 * 1024, 16384, PKG_DELTA, topo == FOTA_TOPO_INPLACE);
        struct pkg_hdr h = t->h;
        struct flash f;
        struct nv nv;
        struct fota_apply a;

        if (md5)
            h.target_md5[3] ^= 1;
        else
            h.target_sha256[31] ^= 1;
        pkg_write_header(&h, t->pkg);
        tf_parse(t);
        assert_int_equal(flash_open_mem(&f, &t->g), 0);
        assert_int_equal(tf_run_until_error(t, &f, &nv, &a), -EBADMSG);
        assert_int_equal(a.err, md5 ? PKG_E_TARGET_MD5 : PKG_E_TARGET_DIGEST);
        assert_int_equal(fota_apply_journal(&nv, NULL), FOTA_PH_VERIFY);
        if (topo != FOTA_TOPO_INPLACE) {
            assert_true(tf_slot_is(t, &f, 0, t->old, t->old_len));
            assert_int_equal(fota_apply_active_slot(&nv), 0);
            assert_true(tf_slot_is(t, &f, 1, t->tgt, t->tgt_len));
        }
        assert_true(fota_apply_progress(&a) < 100);
        fota_apply_end(&a);
        nv_unmount(&nv);
        flash_close(&f);
        tf_free(t);
    }
}

static void test_bad_target_digest(void **state)
{
    (void)state;
    tf_bad_digest(false);
}

static void test_bad_target_md5(void **state)
{
    (void)state;
    tf_bad_digest(true);
}

/* A target one unit larger than the slot: refused at begin, before any flash operation or
 * journal record, so there is nothing to resume either. */
static void test_too_big(void **state)
{
    (void)state;
    for (int topo = 0; topo <= FOTA_TOPO_INPLACE; topo++) {
        struct tf *t =
            tf_new((enum fota_topo)topo, 96 * 1024, 16384, PKG_DELTA, topo == FOTA_TOPO_INPLACE);
        struct fota_layout lay = t->lay;
        struct flash f;
        struct nv nv;
        struct fota_apply a;

        lay.slot_size = tf_round(t->tgt_len, TF_UNIT) - TF_UNIT;
        assert_int_equal(flash_open_mem(&f, &t->g), 0);
        tf_load(&f, t->start);
        assert_int_equal(nv_mount(&nv, &f, 0, TF_NV_SIZE), 0);
        assert_int_equal(fota_apply_begin(&a, &f, &nv, &lay, &t->fp), -EFBIG);
        assert_int_equal(a.err, PKG_E_TOO_BIG);
        assert_int_equal(flash_ops(&f), 0);
        assert_int_equal(fota_apply_journal(&nv, NULL), FOTA_PH_NONE);
        assert_int_equal(fota_apply_resume(&a, &f, &nv, &t->lay, &t->fp), -ENOENT);
        /* A stash smaller than a segment is too small as well. */
        if (topo == FOTA_TOPO_INPLACE) {
            lay = t->lay;
            lay.backup_size = TF_UNIT;
            assert_int_equal(fota_apply_begin(&a, &f, &nv, &lay, &t->fp), -EFBIG);
            assert_int_equal(a.err, PKG_E_TOO_BIG);
        }
        fota_apply_end(&a);
        nv_unmount(&nv);
        flash_close(&f);
        tf_free(t);
    }
}

/* In place, a normal delta (which may read overwritten source bytes) is refused; a journal of
 * another package is stale. */
static void test_wrong_package(void **state)
{
    struct tf *t = tf_new(FOTA_TOPO_STAGING, 96 * 1024, 16384, PKG_DELTA, false);
    struct fota_layout lay;
    struct pkg_hdr h2;
    struct flash f;
    struct nv nv;
    struct fota_apply a;
    struct fota_pkg fp2;

    (void)state;
    assert_int_equal(flash_open_mem(&f, &t->g), 0);
    tf_load(&f, t->start);
    assert_int_equal(nv_mount(&nv, &f, 0, TF_NV_SIZE), 0);
    lay = t->lay;
    lay.topo = FOTA_TOPO_INPLACE;
    lay.slot_off[1] = 0;
    lay.backup_off = t->lay.slot_off[1];
    lay.backup_size = 16384;
    assert_int_equal(fota_apply_begin(&a, &f, &nv, &lay, &t->fp), -EINVAL);
    assert_int_equal(a.err, PKG_E_KIND);

    /* One step of the real package, then a resume attempt for a package with another target. */
    assert_int_equal(fota_apply_begin(&a, &f, &nv, &t->lay, &t->fp), 0);
    assert_int_equal(fota_apply_step(&a), 1);
    fota_apply_end(&a);
    h2 = t->h;
    h2.target_sha256[0] ^= 0xff;
    fp2 = t->fp;
    fp2.hdr = &h2;
    assert_int_equal(fota_apply_resume(&a, &f, &nv, &t->lay, &fp2), -ESTALE);
    /* The journal of a staging apply is stale for an A/B one. */
    lay = t->lay;
    lay.topo = FOTA_TOPO_AB;
    assert_int_equal(fota_apply_resume(&a, &f, &nv, &lay, &t->fp), -ESTALE);
    assert_int_equal(fota_apply_resume(&a, &f, &nv, &t->lay, &t->fp), 0);
    assert_int_equal(a.phase, FOTA_PH_BUILD);
    assert_int_equal(a.seg, 1);
    fota_apply_end(&a);
    nv_unmount(&nv);
    flash_close(&f);
    tf_free(t);
}

/* The package store fails under the engine (a UFS read error): PKG_E_IO with the reader's
 * errno, the journal still at the segment, and a retry once it reads again completes. */
static void test_read_error(void **state)
{
    struct tf *t = tf_new(FOTA_TOPO_STAGING, 96 * 1024, 16384, PKG_DELTA, false);
    struct flash f;
    struct nv nv;
    struct fota_apply a;
    uint32_t seg = 0;
    int rc;

    (void)state;
    assert_int_equal(flash_open_mem(&f, &t->g), 0);
    tf_load(&f, t->start);
    assert_int_equal(nv_mount(&nv, &f, 0, TF_NV_SIZE), 0);
    assert_int_equal(fota_apply_begin(&a, &f, &nv, &t->lay, &t->fp), 0);
    assert_int_equal(fota_apply_step(&a), 1);
    t->rd.len = t->h.payload_off + t->segs[1].off; /* segment 1 is beyond the readable end */
    assert_int_equal(fota_apply_step(&a), -EIO);
    assert_int_equal(a.err, PKG_E_IO);
    assert_int_equal(fota_apply_journal(&nv, &seg), FOTA_PH_BUILD);
    assert_int_equal(seg, 1);
    t->rd.len = t->pkg_len;
    do {
        rc = fota_apply_step(&a);
    } while (rc > 0);
    assert_int_equal(rc, 0);
    assert_int_equal(a.err, PKG_OK);
    assert_true(tf_slot_is(t, &f, 0, t->tgt, t->tgt_len));
    fota_apply_end(&a);
    nv_unmount(&nv);
    flash_close(&f);
    tf_free(t);
}

/* ---- power-loss sweep ---------------------------------------------------------------------- */

/* One action of the clean run (0 = begin, then the steps): the journal it leaves, its flash
 * operations, whether it decodes a segment, and the decodes still to come from it on. */
struct tf_mark {
    enum fota_phase phase;
    uint32_t seg;
    uint64_t ops;
    uint64_t dec_left;
};

struct tf_sweep {
    struct tf *t;
    bool to_end;         /* default sweep: recover to DONE and check the image */
    uint8_t *pre, *post; /* the clean flash before and after the action */
    struct tf_mark mark;
    int action;
    uint64_t cases, doubles, total_ops;
    uint32_t max_redone;
};

/* The flash outside NV (NV compacts at other moments after a cut) equals the clean run's. */
static bool tf_same_areas(const struct tf *t, const struct flash *f, const uint8_t *want)
{
    return memcmp(flash_data(f) + TF_NV_SIZE, want + TF_NV_SIZE, t->g.size - TF_NV_SIZE) == 0;
}

/*
 * A recovery after a cut (the caller powered on, maybe armed a second cut): mount, resume (or
 * begin when the first record never landed), step to the boundary after the cut action and
 * compare with the clean run, then (to_end) on to DONE. Returns 0 or the first error; *ops
 * gets the operations it took to the boundary, *steps the steps to it.
 */
static int tf_recover(struct tf_sweep *sw, struct flash *f, bool to_end, uint64_t *ops,
                      unsigned *steps, const char **why)
{
    struct tf *t = sw->t;
    struct nv nv;
    struct fota_apply a;
    uint64_t dec0 = t->rd.decodes;
    bool at_mark = false;
    int rc;

    *steps = 0;
    *why = NULL;
    /* The boot path: mount NV (it may compact a torn tail, i.e. program and erase), then the
     * journal decides. A second cut may hit anywhere in here. */
    rc = nv_mount(&nv, f, 0, TF_NV_SIZE);
    if (rc < 0)
        return rc;
    rc = fota_apply_resume(&a, f, &nv, &t->lay, &t->fp);
    if (rc == -ENOENT)
        rc = fota_apply_begin(&a, f, &nv, &t->lay, &t->fp);
    /* The boundary is reached when the engine's next step is the one after the cut action. */
    while (rc >= 0) {
        if (!at_mark && a.phase == sw->mark.phase && a.seg == sw->mark.seg) {
            at_mark = true;
            *ops = flash_ops(f);
            if (!tf_same_areas(t, f, sw->post))
                *why = "flash differs from the clean run at the next step boundary";
            else if (t->rd.decodes - dec0 > 1)
                *why = "more than one segment decoded to reach the boundary";
            if (*why || !to_end)
                break;
        }
        if (a.phase == FOTA_PH_DONE)
            break;
        rc = fota_apply_step(&a);
        if (!at_mark)
            ++*steps;
    }
    /* The oracles of a completed recovery, checked only when no second cut stopped it. */
    if (rc >= 0 && !*why && !at_mark)
        *why = "the recovery passed the boundary without stopping at it";
    if (rc >= 0 && !*why && a.redone > 1)
        *why = "the engine redid more than one segment";
    if (rc >= 0 && !*why && t->rd.decodes - dec0 > sw->mark.dec_left)
        *why = "segments before the cut were decoded again";
    if (rc >= 0 && !*why && to_end) {
        uint32_t seg;

        if (fota_apply_journal(&nv, &seg) != FOTA_PH_DONE || fota_apply_progress(&a) != 100)
            *why = "the journal does not say DONE";
        else if (memcmp(flash_data(f) + t->lay.slot_off[tf_final_slot(t, &nv)], t->tgt,
                        t->tgt_len) != 0)
            *why = "the active image is not the target";
    }
    if (a.redone > sw->max_redone)
        sw->max_redone = a.redone;
    fota_apply_end(&a);
    nv_unmount(&nv);
    return rc < 0 ? rc : 0;
}

/* Starts the action from its snapshot with a cut armed at its nth operation and runs until the
 * flash dies (or the apply ends: AFTER on its very last operation). */
static void tf_cut(struct tf_sweep *sw, struct flash *f, uint64_t n, int kind)
{
    struct tf *t = sw->t;
    struct nv nv;
    struct fota_apply a;
    int rc;

    tf_load(f, sw->pre);
    assert_int_equal(nv_mount(&nv, f, 0, TF_NV_SIZE), 0);
    if (sw->action == 0) {
        flash_arm(f, n, (enum flash_fault)kind, (uint32_t)(n * 2654435761u + (uint32_t)kind));
        rc = fota_apply_begin(&a, f, &nv, &t->lay, &t->fp);
        rc = rc == 0 ? 1 : rc;
    } else {
        assert_int_equal(fota_apply_resume(&a, f, &nv, &t->lay, &t->fp), 0);
        flash_arm(f, n, (enum flash_fault)kind, (uint32_t)(n * 2654435761u + (uint32_t)kind));
        rc = 1;
    }
    while (rc > 0)
        rc = fota_apply_step(&a);
    if (!flash_dead(f))
        fail_msg("%s: %s at op %u of action %d never hit", tf_topo_name[t->topo],
                 tf_kind_name[kind], (unsigned)n, sw->action);
    /* A cut shows as -ECANCELED at once (or not at all, when AFTER hit the last operation). */
    if (rc != 0 && !(rc == -ECANCELED && a.err == PKG_E_IO))
        fail_msg("%s: %s at op %u of action %d: step returned %d (err %d)", tf_topo_name[t->topo],
                 tf_kind_name[kind], (unsigned)n, sw->action, rc, (int)a.err);
    fota_apply_end(&a);
    nv_unmount(&nv);
}

static void tf_case(struct tf_sweep *sw, struct flash *f, uint64_t n, int kind)
{
    struct tf *t = sw->t;
    struct flash_stats st0, st;
    const char *why;
    uint64_t r_ops = 0, ops2;
    unsigned steps;
    int rc;

    /* Violations are counted since open; the case must not add any. */
    flash_stats(f, &st0);
    tf_cut(sw, f, n, kind);
    flash_power_on(f);
    rc = tf_recover(sw, f, sw->to_end, &r_ops, &steps, &why);
    flash_stats(f, &st);
    if (rc < 0 || why || steps > 1 || st.violations != st0.violations)
        fail_msg("%s: %s at op %u of action %d (phase %d seg %u): rc %d, %u steps, %u "
                 "violations: %s",
                 tf_topo_name[t->topo], tf_kind_name[kind], (unsigned)n, sw->action,
                 (int)sw->mark.phase, (unsigned)sw->mark.seg, rc, steps,
                 (unsigned)(st.violations - st0.violations), why ? why : "");
    sw->cases++;

    /* Double fault for a sample: a second cut at the first, middle and last operation of the
     * recovery to the boundary, then a clean recovery. */
    if (n % 8 != 1 || r_ops == 0)
        return;
    for (int j = 0; j < 3; j++) {
        uint64_t m = j == 0 ? 1 : j == 1 ? r_ops / 2 + 1 : r_ops;
        int kind2 = (kind + j + 1) % TF_KINDS;

        if ((j == 1 && (m == 1 || m == r_ops)) || (j == 2 && r_ops == 1))
            continue;
        tf_cut(sw, f, n, kind);
        flash_power_on(f);
        flash_arm(f, m, (enum flash_fault)kind2, (uint32_t)(m * 40503u + n));
        rc = tf_recover(sw, f, false, &ops2, &steps, &why);
        if (!flash_dead(f))
            fail_msg("%s: second cut %s at op %u of the recovery never hit", tf_topo_name[t->topo],
                     tf_kind_name[kind2], (unsigned)m);
        flash_power_on(f);
        rc = tf_recover(sw, f, sw->to_end, &ops2, &steps, &why);
        flash_stats(f, &st);
        if (rc < 0 || why || steps > 1 || st.violations != st0.violations)
            fail_msg("%s: %s at op %u of action %d, then %s at recovery op %u: rc %d: %s",
                     tf_topo_name[t->topo], tf_kind_name[kind], (unsigned)n, sw->action,
                     tf_kind_name[kind2], (unsigned)m, rc, why ? why : "");
        sw->doubles++;
    }
}

/* FOTA_SWEEP_FULL=1 (make sweep-full) selects the exhaustive full-size sweep. */
static bool tf_full(void)
{
    const char *e = getenv("FOTA_SWEEP_FULL");

    return e && *e && strcmp(e, "0") != 0;
}

/* The clean run, action by action; before moving on, every operation of the action is cut by
 * every fault kind. */
static void tf_sweep_run(enum fota_topo topo)
{
    bool full = tf_full();
    struct tf_sweep sw = {0};
    struct flash clean, f;
    struct nv nv;
    struct fota_apply a;
    struct timespec t0, t1;
    uint64_t ops0, dec0;
    int rc = 1;

    const char *model_name = getenv("FOTA_SWEEP_MODEL");
    const struct model *md = full && model_name && *model_name ? model_find(model_name) : NULL;

    if (full && model_name && *model_name) {
        assert_non_null(md);
        if (md->topo != topo) {
            print_message("sweep %s: skipped (%s applies %s)\n", tf_topo_name[topo], md->name,
                          tf_topo_name[md->topo]);
            return;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* Small: 1 KiB pages keep N at a few hundred; full: the default 256-byte pages. */
    sw.t = md ? tf_new_geom(topo, md->image_size, 65536, PKG_DELTA, topo == FOTA_TOPO_INPLACE,
                            FLASH_DEF_PAGE_SIZE)
         : full ? tf_new_geom(topo, 2048 * 1024 - FW_IMAGE_HDR, 65536, PKG_DELTA,
                              topo == FOTA_TOPO_INPLACE, FLASH_DEF_PAGE_SIZE)
                : tf_new_geom(topo, 160 * 1024 - FW_IMAGE_HDR, 16384, PKG_DELTA,
                              topo == FOTA_TOPO_INPLACE, 1024);
    sw.to_end = !full;
    sw.pre = malloc(sw.t->g.size);
    sw.post = malloc(sw.t->g.size);
    assert_non_null(sw.pre);
    assert_non_null(sw.post);
    assert_int_equal(flash_open_mem(&clean, &sw.t->g), 0);
    assert_int_equal(flash_open_mem(&f, &sw.t->g), 0);
    tf_load(&clean, sw.t->start);
    assert_int_equal(nv_mount(&nv, &clean, 0, TF_NV_SIZE), 0);

    /* Action 0 is begin (its first journal record), then one action per step until DONE. */
    for (sw.action = 0; rc > 0; sw.action++) {
        memcpy(sw.pre, flash_data(&clean), sw.t->g.size);
        ops0 = flash_ops(&clean);
        dec0 = sw.t->rd.decodes;
        if (sw.action == 0) {
            assert_int_equal(fota_apply_begin(&a, &clean, &nv, &sw.t->lay, &sw.t->fp), 0);
        } else {
            rc = fota_apply_step(&a);
            assert_true(rc >= 0);
        }
        sw.mark.phase = a.phase;
        sw.mark.seg = a.seg;
        sw.mark.ops = flash_ops(&clean) - ops0;
        /* Decodes from this action on: all a recovery from a cut in it may do (to DONE). */
        sw.mark.dec_left = sw.t->h.seg_count - dec0;
        sw.total_ops += sw.mark.ops;
        memcpy(sw.post, flash_data(&clean), sw.t->g.size);
        for (uint64_t n = 1; n <= sw.mark.ops; n++)
            for (int kind = 0; kind < TF_KINDS; kind++)
                tf_case(&sw, &f, n, kind);
    }
    assert_true(tf_slot_is(sw.t, &clean, tf_final_slot(sw.t, &nv), sw.t->tgt, sw.t->tgt_len));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    print_message("sweep %s%s%s%s%s: %u segments of %u B, image %zu B, N = %llu flash ops in %d"
                  " actions; %llu cases, %llu double cuts, max redone %u; %.2f s\n",
                  tf_topo_name[topo], full ? " (full" : "", md ? ", " : "",
                  md ? md->name : "", full ? ")" : "", (unsigned)sw.t->h.seg_count,
                  (unsigned)sw.t->h.seg_size, sw.t->tgt_len, (unsigned long long)sw.total_ops,
                  sw.action, (unsigned long long)sw.cases, (unsigned long long)sw.doubles,
                  (unsigned)sw.max_redone,
                  (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    assert_true(sw.max_redone <= 1);
    fota_apply_end(&a);
    nv_unmount(&nv);
    flash_close(&clean);
    flash_close(&f);
    free(sw.pre);
    free(sw.post);
    tf_free(sw.t);
}

/* One cmocka test per topology, so a failure names it and the runner counts three. */
static void test_sweep_staging(void **state)
{
    (void)state;
    tf_sweep_run(FOTA_TOPO_STAGING);
}

static void test_sweep_ab(void **state)
{
    (void)state;
    tf_sweep_run(FOTA_TOPO_AB);
}

static void test_sweep_inplace(void **state)
{
    (void)state;
    tf_sweep_run(FOTA_TOPO_INPLACE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_staging),     cmocka_unit_test(test_clean_ab),
        cmocka_unit_test(test_clean_inplace),     cmocka_unit_test(test_clean_full),
        cmocka_unit_test(test_clean_odd_sizes),   cmocka_unit_test(test_corrupt_segment),
        cmocka_unit_test(test_bad_target_digest), cmocka_unit_test(test_bad_target_md5),
        cmocka_unit_test(test_too_big),           cmocka_unit_test(test_wrong_package),
        cmocka_unit_test(test_read_error),        cmocka_unit_test(test_sweep_staging),
        cmocka_unit_test(test_sweep_ab),          cmocka_unit_test(test_sweep_inplace),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
