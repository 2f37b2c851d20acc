/*
 * test_quectel_minifota.c: unit tests of the MiniFOTA flow's pure parts
 * (firmware/quectel_minifota.c) on the flash model, with real images and real packages from
 * tools/pack.c: the suffix check, figure 3's URC cadence, the .mini_1 head check with every
 * refusal and its <err> code, the integrity check, the staging layout of the Mini update, the
 * streaming .mini_2 writer, and two power-loss sweeps: every flash operation of the mini_1 apply
 * and of the mini_2 write x every fault kind. After a cut the apply resumes from its journal
 * (its UPDATING URCs neither repeat nor skip a value) and the write starts again from the first
 * byte (step 5 repeats); either way the partition must end up exactly the target image.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "firmware/fw_image.h"
#include "firmware/model.h"
#include "firmware/quectel_codes.h"
#include "firmware/quectel_minifota.h"
#include "storage/nv.h"
#include "tools/pack.h"

#define TM_UNIT       4096u
#define TM_NV_OFF     0u
#define TM_NV_SIZE    (4u * TM_UNIT)
#define TM_SYS_OFF    TM_NV_SIZE
#define TM_SYS_SIZE   (64u << 10)
#define TM_MINI_OFF   (TM_SYS_OFF + TM_SYS_SIZE)
#define TM_MINI_SIZE  (32u << 10)
#define TM_FLASH_SIZE (TM_MINI_OFF + TM_MINI_SIZE)
#define TM_SEG        4096u
#define TM_KINDS      (FLASH_CUT_SKIP_ERASE + 1)
#define TM_PROJECT    "EC200N"
#define TM_BASELINE   "EC200NCNLAR03"

static const struct model_part tm_sys = {"system", TM_SYS_OFF, TM_SYS_SIZE};
static const struct model_part tm_mini = {"mini", TM_MINI_OFF, TM_MINI_SIZE};
static const struct flash_geom tm_geom = {TM_FLASH_SIZE, TM_UNIT, 256};

struct blob {
    uint8_t *p;
    size_t len;
};

/* Old and new images of both systems, the pair of packages, and the initial device. */
struct tm {
    struct blob mini_old, mini_new, big_old, big_new, mini1, mini2;
    struct fw_image_info mini_info;
    uint8_t *start; /* NV formatted, old big system, old Mini system */
};

static struct blob tm_factory(const char *rev, size_t body)
{
    struct blob b;

    assert_int_equal(fw_image_factory(rev, TM_PROJECT, TM_BASELINE, body, &b.p, &b.len), 0);
    return b;
}

/* A rebuild of old under a new revision (project and baseline kept). */
static struct blob tm_derive(const struct blob *old, const char *rev, double pct, uint64_t seed)
{
    struct fw_image_info info;
    uint8_t *body;
    size_t body_len;
    struct blob b;

    assert_int_equal(fw_image_parse(old->p, old->len, true, &info), 0);
    assert_int_equal(
        fw_gen_derive(old->p + FW_IMAGE_HDR, old->len - FW_IMAGE_HDR, pct, seed, &body, &body_len),
        0);
    snprintf(info.revision, sizeof(info.revision), "%s", rev);
    b.len = FW_IMAGE_HDR + body_len;
    b.p = malloc(b.len);
    assert_non_null(b.p);
    memcpy(b.p + FW_IMAGE_HDR, body, body_len);
    fw_image_seal(&info, b.p, b.p + FW_IMAGE_HDR, body_len);
    free(body);
    return b;
}

static struct blob tm_pack(enum pkg_kind kind, const struct blob *old, const struct blob *tgt,
                           bool inplace)
{
    struct pack_opts o = {.kind = kind, .seg_size = TM_SEG, .level = 3, .inplace = inplace};
    struct blob b;

    assert_int_equal(
        pack_build(&o, old ? old->p : NULL, old ? old->len : 0, tgt->p, tgt->len, &b.p, &b.len), 0);
    return b;
}

static int tm_setup(void **state)
{
    struct tm *t = calloc(1, sizeof(*t));
    struct flash f;
    struct nv nv;

    assert_non_null(t);
    t->mini_old = tm_factory("EC200NCNLAR03A01M08-MINI", 20 * 1024);
    t->mini_new = tm_derive(&t->mini_old, "EC200NCNLAR03A02M08-MINI", 2.0, 7);
    t->big_old = tm_factory("EC200NCNLAR03A01M08", 40 * 1024);
    t->big_new = tm_derive(&t->big_old, "EC200NCNLAR03A02M08", 3.0, 9);
    t->mini1 = tm_pack(PKG_MINI_1, &t->mini_old, &t->mini_new, false);
    t->mini2 = tm_pack(PKG_MINI_2, &t->big_old, &t->big_new, false);
    assert_int_equal(fw_image_parse(t->mini_old.p, t->mini_old.len, true, &t->mini_info), 0);
    /* The factory's device: both systems programmed, NV formatted. */
    assert_int_equal(flash_open_mem(&f, &tm_geom), 0);
    assert_int_equal(flash_write(&f, TM_SYS_OFF, t->big_old.p, (uint32_t)t->big_old.len), 0);
    assert_int_equal(flash_write(&f, TM_MINI_OFF, t->mini_old.p, (uint32_t)t->mini_old.len), 0);
    assert_int_equal(nv_mount(&nv, &f, TM_NV_OFF, TM_NV_SIZE), 0);
    nv_unmount(&nv);
    t->start = malloc(TM_FLASH_SIZE);
    assert_non_null(t->start);
    memcpy(t->start, flash_data(&f), TM_FLASH_SIZE);
    flash_close(&f);
    *state = t;
    return 0;
}

static int tm_teardown(void **state)
{
    struct tm *t = *state;
    struct blob *all[] = {&t->mini_old, &t->mini_new, &t->big_old,
                          &t->big_new,  &t->mini1,    &t->mini2};

    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        free(all[i]->p);
    free(t->start);
    free(t);
    return 0;
}

/* The device bypasses the op counter on purpose: loading the start is not part of a case. */
static void tm_load(struct flash *f, const uint8_t *img)
{
    memcpy(f->mem, img, f->geom.size);
    flash_power_on(f);
}

/* ---- URL and URCs ---------------------------------------------------------------------------- */

static void test_url_suffix(void **state)
{
    static const struct {
        const char *url;
        bool ok;
    } cases[] = {
        {"http://www.example.com:100/system_patch.mini_1", true},
        {"FTP://test:test@192.0.2.2:21/system_patch.mini_1", true},
        {"http://h/a.mini_1", true},
        {"http://h/system_patch.mini_2", false}, /* the second package is never named */
        {"http://h/system_patch.mini", false},
        {"http://h/system_patch.MINI_1", false}, /* the suffix is checked as printed */
        {"http://h/system_patch.mini_1.bin", false},
        {"http://h/system_patch.bin", false},
        {"http://h/.mini_1", false}, /* no base name */
        {".mini_1", false},
        {"", false},
    };
    char out[QMINI_URL_MAX + 1];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(qmini_url_ok(cases[i].url), cases[i].ok);
        assert_int_equal(qmini_url_2(cases[i].url, out, sizeof(out)), cases[i].ok ? 0 : -EINVAL);
    }
    assert_false(qmini_url_ok(NULL));
    assert_int_equal(
        qmini_url_2("http://www.example.com:100/system_patch.mini_1", out, sizeof(out)), 0);
    assert_string_equal(out, "http://www.example.com:100/system_patch.mini_2");
    /* the result must fit */
    assert_int_equal(qmini_url_2("http://h/a.mini_1", out, 17), -EINVAL);
    assert_int_equal(qmini_url_2("http://h/a.mini_1", out, 18), 0);
}

/* Figure 3: "2, 4, ..., 49" then "60, 64, 68, ..., 96", then END,0. */
static void test_figure3_cadence(void **state)
{
    unsigned last = 0;

    (void)state;
    for (unsigned k = 1; k < QMINI_URC1_COUNT; k++)
        assert_int_equal(qmini_urc1(k), 2 * k);
    assert_int_equal(qmini_urc1(QMINI_URC1_COUNT), 49);
    assert_int_equal(qmini_urc1_due(0), 0);
    assert_int_equal(qmini_urc1_due(5), 1);
    assert_int_equal(qmini_urc1_due(99), 23); /* the last one only when the apply is done */
    assert_int_equal(qmini_urc1_due(100), 24);
    for (unsigned p = 0; p <= 100; p++) {
        assert_true(qmini_urc1_due(p) >= last);
        last = qmini_urc1_due(p);
    }
    for (unsigned j = 0; j < 10; j++)
        assert_int_equal(qmini_urc2(j), 60 + 4 * j);
    assert_int_equal(qmini_urc2(9), 96);
    assert_int_equal(qmini_urc2_due(0, 1000), 0);
    assert_int_equal(qmini_urc2_due(99, 1000), 0);
    assert_int_equal(qmini_urc2_due(100, 1000), 1);
    assert_int_equal(qmini_urc2_due(999, 1000), 9);
    assert_int_equal(qmini_urc2_due(1000, 1000), 9); /* no 100: END,0 says it */
    assert_int_equal(qmini_urc2_due(5, 0), 0);
}

/* ---- the Mini system's update ---------------------------------------------------------------- */

static void test_layout(void **state)
{
    const struct model *mo = model_find("EC200N-CN");
    struct fota_layout lay;

    (void)state;
    assert_non_null(mo);
    assert_int_equal(qmini_layout(model_part(mo, "mini"), model_part(mo, "system"), &lay), 0);
    assert_int_equal(lay.topo, FOTA_TOPO_STAGING);
    assert_int_equal(lay.slot_off[0], model_part(mo, "mini")->off);
    assert_int_equal(lay.slot_off[1], model_part(mo, "system")->off);
    assert_int_equal(lay.slot_size, 1u << 20);
    assert_int_equal(qmini_layout(NULL, model_part(mo, "system"), &lay), -EINVAL);
    /* the factory Mini system fits its partition, and its revision says what it is */
    {
        struct fw_image_info info;
        uint8_t *img;
        size_t len;

        assert_int_equal(model_mini_image(mo, &img, &len), 0);
        assert_true(len <= model_part(mo, "mini")->size);
        assert_int_equal(fw_image_parse(img, len, true, &info), 0);
        assert_string_equal(info.revision, "EC200NCNLAR03A01M08-MINI");
        assert_string_equal(info.project, mo->project);
        assert_string_equal(info.baseline, mo->baseline);
        free(img);
        assert_int_equal(model_mini_image(model_find("EC200A-CN"), &img, &len), -ENOENT);
    }
}

/* The head check of 5.1 case 2 and the <err> each refusal prints. */
static void test_check_head(void **state)
{
    struct tm *t = *state;
    struct fw_image_info run = t->mini_info;
    struct pkg_hdr h;
    uint8_t *img = malloc(t->mini_old.len), head[QMINI_CHECK_BYTES];
    struct blob other, notpkg, inplace, delta, big;
    size_t n = t->mini1.len < sizeof(head) ? t->mini1.len : sizeof(head);

    assert_non_null(img);
    memcpy(img, t->mini_old.p, t->mini_old.len);
    assert_true(t->mini1.len > QMINI_CHECK_BYTES);
    memcpy(head, t->mini1.p, n);
#define CHECK(hd, len, want, code)                                                                 \
    do {                                                                                           \
        enum pkg_err e_ = qmini_check_head((hd), (len), &run, img, TM_MINI_SIZE, &h);              \
        assert_int_equal(e_, (want));                                                              \
        assert_int_equal(quectel_dfota_err(e_), (code));                                           \
    } while (0)
    CHECK(head, n, PKG_OK, 0);
    assert_int_equal(h.kind, PKG_MINI_1);
    assert_int_equal(h.source_size, t->mini_old.len);
    /* the header alone is enough to decide */
    CHECK(head, PKG_HDR, PKG_OK, 0);
    CHECK(head, PKG_HDR - 1, PKG_E_TRUNCATED, 505);
    /* the flashed image differs by one byte: its CRC32 no longer matches (507) */
    img[t->mini_old.len - 1] ^= 1;
    CHECK(head, n, PKG_E_SOURCE_DIGEST, 507);
    img[t->mini_old.len - 1] ^= 1;
    /* the module runs another Mini revision */
    snprintf(run.revision, sizeof(run.revision), "EC200NCNLAR03A00M08-MINI");
    CHECK(head, n, PKG_E_SOURCE_REV, 507);
    run = t->mini_info;
    /* another project (552) and another baseline (553) */
    snprintf(run.project, sizeof(run.project), "EC600N");
    CHECK(head, n, PKG_E_PROJECT, 552);
    run = t->mini_info;
    snprintf(run.baseline, sizeof(run.baseline), "EC200NCNLAR04");
    CHECK(head, n, PKG_E_BASELINE, 553);
    run = t->mini_info;
    /* a corrupted header (505) */
    head[200] ^= 0x40;
    CHECK(head, n, PKG_E_HDR_CRC, 505);
    head[200] ^= 0x40;
    /* a table byte (the table lies in the first 2 KiB here) */
    head[PKG_HDR + 3] ^= 0x01;
    CHECK(head, n, PKG_E_TABLE, 505);
    CHECK(head, PKG_HDR, PKG_OK, 0); /* without the table in view it cannot tell yet */
    head[PKG_HDR + 3] ^= 0x01;
    /* the partition is too small for the new Mini system (504) */
    assert_int_equal(qmini_check_head(head, n, &run, img, (uint32_t)t->mini_new.len - 1, &h),
                     PKG_E_TOO_BIG);
    /* other kinds: the .mini_2, a plain delta, an in-place .mini_1 */
    CHECK(t->mini2.p, QMINI_CHECK_BYTES, PKG_E_KIND, 505);
    delta = tm_pack(PKG_DELTA, &t->mini_old, &t->mini_new, false);
    CHECK(delta.p, QMINI_CHECK_BYTES, PKG_E_KIND, 505);
    inplace = tm_pack(PKG_MINI_1, &t->mini_old, &t->mini_new, true);
    CHECK(inplace.p, QMINI_CHECK_BYTES, PKG_E_KIND, 505);
    /* a pair made for another module's Mini system */
    other = tm_factory("EC200NCNLAR03A01M08-MINI", 20 * 1024 + 4);
    big = tm_pack(PKG_MINI_1, &other, &t->mini_new, false);
    CHECK(big.p, QMINI_CHECK_BYTES, PKG_E_SOURCE_DIGEST, 507);
    notpkg = tm_factory("not a package", 4096);
    CHECK(notpkg.p, notpkg.len, PKG_E_MAGIC, 505);
#undef CHECK
    free(other.p);
    free(big.p);
    free(notpkg.p);
    free(delta.p);
    free(inplace.p);
    free(img);
}

/* The integrity check of a complete .mini_1 (step 4). */
static void test_check_pkg(void **state)
{
    struct tm *t = *state;
    uint8_t *bad = malloc(t->mini1.len + 1);
    struct pkg_mem r = {t->mini1.p, t->mini1.len};
    struct pkg_hdr h;

    assert_non_null(bad);
    assert_int_equal(
        qmini_check_pkg(pkg_mem_read, &r, t->mini1.len, &t->mini_info, t->mini_old.p, TM_MINI_SIZE),
        PKG_OK);
    /* bytes of the last patch (a run: a few bits of a zstd stream do not change its output):
     * the head still passes, the segment does not */
    memcpy(bad, t->mini1.p, t->mini1.len);
    for (size_t i = 24; i < 40; i++)
        bad[t->mini1.len - i] ^= 0xa5;
    r.p = bad;
    assert_int_equal(
        qmini_check_head(bad, QMINI_CHECK_BYTES, &t->mini_info, t->mini_old.p, TM_MINI_SIZE, &h),
        PKG_OK);
    assert_int_equal(
        qmini_check_pkg(pkg_mem_read, &r, t->mini1.len, &t->mini_info, t->mini_old.p, TM_MINI_SIZE),
        PKG_E_SEGMENT);
    memcpy(bad, t->mini1.p, t->mini1.len);
    /* short and long */
    assert_int_equal(
        qmini_check_pkg(pkg_mem_read, &r, t->mini1.len - 1, &t->mini_info, t->mini_old.p,
                        TM_MINI_SIZE),
        PKG_E_TRUNCATED);
    bad[t->mini1.len] = 0;
    r.len = t->mini1.len + 1;
    assert_int_equal(
        qmini_check_pkg(pkg_mem_read, &r, t->mini1.len + 1, &t->mini_info, t->mini_old.p,
                        TM_MINI_SIZE),
        PKG_E_LAYOUT);
    assert_int_equal(
        qmini_check_pkg(pkg_mem_read, &r, 100, &t->mini_info, t->mini_old.p, TM_MINI_SIZE),
        PKG_E_TRUNCATED);
    free(bad);
}

/* Step 3 after a cut: nothing, a prefix, or the whole file (a cut between its last byte and
 * the next record must not ask the server for bytes past the end). */
static void test_resume_kind(void **state)
{
    struct tm *t = *state;
    const uint8_t *p = t->mini1.p;

    assert_int_equal(qmini_resume_kind(p, 0, 0), QMINI_RESUME_FRESH);
    assert_int_equal(qmini_resume_kind(p, 100, 100), QMINI_RESUME_APPEND);
    assert_int_equal(qmini_resume_kind(p, QMINI_CHECK_BYTES, t->mini1.len - 1),
                     QMINI_RESUME_APPEND);
    assert_int_equal(qmini_resume_kind(p, QMINI_CHECK_BYTES, t->mini1.len), QMINI_RESUME_COMPLETE);
    assert_int_equal(qmini_resume_kind(p, QMINI_CHECK_BYTES, t->mini1.len + 9),
                     QMINI_RESUME_COMPLETE);
    assert_int_equal(qmini_resume_kind(t->mini_old.p, QMINI_CHECK_BYTES, 4096),
                     QMINI_RESUME_APPEND);
}

/*
 * One run of the mini_1 apply as the upgrade boot does it: open (resume or begin), steps to
 * the end or the cut, the UPDATING values appended to urcs. Returns 0 (done) or the error.
 */
static int tm_apply_run(struct tm *t, struct flash *f, unsigned *urcs, size_t *nurcs)
{
    struct fota_layout lay;
    struct fota_apply ap;
    struct pkg_hdr h;
    struct pkg_seg *segs = NULL;
    struct pkg_mem r = {t->mini1.p, t->mini1.len};
    struct fota_pkg pkg;
    struct nv nv;
    unsigned sent;
    int rc;

    assert_int_equal(qmini_layout(&tm_mini, &tm_sys, &lay), 0);
    assert_int_equal(pkg_parse_header(t->mini1.p, t->mini1.len, t->mini1.len, &h), PKG_OK);
    assert_int_equal(pkg_read_table(&h, pkg_mem_read, &r, &segs), PKG_OK);
    pkg = (struct fota_pkg){&h, segs, pkg_mem_read, &r};
    rc = nv_mount(&nv, f, TM_NV_OFF, TM_NV_SIZE);
    if (rc) {
        free(segs);
        return rc;
    }
    rc = qmini_apply_open(&ap, f, &nv, &lay, &pkg);
    if (rc == 0) {
        sent = qmini_urc1_due(fota_apply_progress(&ap));
        do {
            rc = fota_apply_step(&ap);
            if (rc >= 0)
                while (sent < qmini_urc1_due(fota_apply_progress(&ap)))
                    urcs[(*nurcs)++] = qmini_urc1(++sent);
        } while (rc > 0);
        fota_apply_end(&ap);
    }
    if (rc == 0)
        rc = fota_apply_clear(&nv);
    nv_unmount(&nv);
    free(segs);
    return rc;
}

static void tm_assert_figure3_part1(const unsigned *urcs, size_t n)
{
    assert_int_equal(n, QMINI_URC1_COUNT);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(urcs[i], qmini_urc1((unsigned)i + 1));
}

/* Every flash operation of the mini_1 apply x every fault kind; the recovery is the next
 * upgrade boot (NV mounted again, the journal resumed). */
static void test_sweep_apply1(void **state)
{
    struct tm *t = *state;
    struct flash f;
    struct flash_stats st;
    unsigned urcs[4 * QMINI_URC1_COUNT];
    size_t n = 0;
    uint64_t clean_ops, cases = 0;

    assert_int_equal(flash_open_mem(&f, &tm_geom), 0);
    tm_load(&f, t->start);
    assert_int_equal(tm_apply_run(t, &f, urcs, &n), 0);
    clean_ops = flash_ops(&f);
    tm_assert_figure3_part1(urcs, n);
    assert_memory_equal(flash_data(&f) + TM_MINI_OFF, t->mini_new.p, t->mini_new.len);
    /* the new Mini system was built in the big system's area: that one is gone */
    assert_memory_not_equal(flash_data(&f) + TM_SYS_OFF, t->big_old.p, FW_IMAGE_HDR);
    for (int kind = 0; kind < TM_KINDS; kind++) {
        for (uint64_t op = 1; op <= clean_ops; op++) {
            tm_load(&f, t->start);
            flash_arm(&f, op, (enum flash_fault)kind, (uint32_t)op * 2654435761u);
            n = 0;
            /* A cut after the last operation landed (AFTER) leaves a finished apply: the module
             * had moved its record on by then, and no upgrade boot follows. */
            if (tm_apply_run(t, &f, urcs, &n) != 0) {
                assert_true(flash_dead(&f));
                flash_power_on(&f); /* the next boot: upgrade mode again */
                assert_int_equal(tm_apply_run(t, &f, urcs, &n), 0);
            }
            tm_assert_figure3_part1(urcs, n);
            assert_memory_equal(flash_data(&f) + TM_MINI_OFF, t->mini_new.p, t->mini_new.len);
            cases++;
        }
    }
    flash_stats(&f, &st);
    assert_int_equal(st.violations, 0);
    print_message("mini_1 apply: %llu flash ops, %llu cut cases\n", (unsigned long long)clean_ops,
                  (unsigned long long)cases);
    flash_close(&f);
}

/* ---- the big system's write ------------------------------------------------------------------ */

/* Feeds pkg to a fresh writer in chunks of `chunk` bytes; 0 when finished and verified. */
static int tm_w2_run(struct flash *f, const struct blob *pkg, size_t chunk, const char *project,
                     struct qmini_w2 *w, unsigned *tenths)
{
    int rc = qmini_w2_begin(w, f, TM_SYS_OFF, TM_SYS_SIZE, project);
    unsigned last = 0;

    for (size_t off = 0; !rc && off < pkg->len; off += chunk) {
        rc = qmini_w2_feed(w, pkg->p + off, pkg->len - off < chunk ? pkg->len - off : chunk);
        assert_true(qmini_w2_tenths(w) >= last);
        last = qmini_w2_tenths(w);
    }
    if (!rc)
        rc = qmini_w2_finish(w, pkg->len);
    if (tenths)
        *tenths = last;
    return rc;
}

static void test_w2_clean(void **state)
{
    struct tm *t = *state;
    static const size_t chunks[] = {1, 7, 512, 4096, 65536, 1u << 20};
    struct qmini_w2 w;
    struct flash f;
    unsigned tenths;

    assert_int_equal(flash_open_mem(&f, &tm_geom), 0);
    for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
        tm_load(&f, t->start);
        assert_int_equal(tm_w2_run(&f, &t->mini2, chunks[i], TM_PROJECT, &w, &tenths), 0);
        assert_int_equal(tenths, 10);
        assert_int_equal(w.err, PKG_OK);
        assert_memory_equal(flash_data(&f) + TM_SYS_OFF, t->big_new.p, t->big_new.len);
        /* the Mini system's partition is not touched */
        assert_memory_equal(flash_data(&f) + TM_MINI_OFF, t->mini_old.p, t->mini_old.len);
        qmini_w2_end(&w);
    }
    flash_close(&f);
}

static void test_w2_refusals(void **state)
{
    struct tm *t = *state;
    struct qmini_w2 w;
    struct flash f;
    struct blob b = {malloc(t->mini2.len + 1), t->mini2.len}, huge, full;

    assert_non_null(b.p);
    assert_int_equal(flash_open_mem(&f, &tm_geom), 0);
    tm_load(&f, t->start);
#define REFUSED(pkg, project, want)                                                                \
    do {                                                                                           \
        assert_int_equal(tm_w2_run(&f, (pkg), 999, (project), &w, NULL), -EBADMSG);                \
        assert_int_equal(w.err, (want));                                                           \
        qmini_w2_end(&w);                                                                          \
    } while (0)
    REFUSED(&t->mini2, "EC600N", PKG_E_PROJECT);
    REFUSED(&t->mini1, TM_PROJECT, PKG_E_KIND);
    full = tm_pack(PKG_FULL, NULL, &t->big_new, false);
    REFUSED(&full, TM_PROJECT, PKG_E_KIND);
    /* a corrupted patch byte: that segment is refused before it is written */
    memcpy(b.p, t->mini2.p, t->mini2.len);
    for (size_t i = 24; i < 40; i++)
        b.p[b.len - i] ^= 0xa5;
    REFUSED(&b, TM_PROJECT, PKG_E_SEGMENT);
    memcpy(b.p, t->mini2.p, t->mini2.len);
    /* short: everything written so far, but no end */
    b.len = t->mini2.len - 1;
    REFUSED(&b, TM_PROJECT, PKG_E_TRUNCATED);
    /* a byte too many */
    b.p[t->mini2.len] = 0;
    b.len = t->mini2.len + 1;
    REFUSED(&b, TM_PROJECT, PKG_E_LAYOUT);
    /* an image bigger than the partition */
    huge = tm_factory("EC200NCNLAR03A09M08", TM_SYS_SIZE);
    free(full.p);
    full = tm_pack(PKG_MINI_2, NULL, &huge, false);
    REFUSED(&full, TM_PROJECT, PKG_E_TOO_BIG);
    /* a valid package whose first two patches are stored the other way round: a reader with
     * random access could apply it, a writer that writes while it downloads cannot */
    {
        struct pkg_mem r = {t->mini2.p, t->mini2.len};
        struct pkg_hdr h;
        struct pkg_seg *segs = NULL;
        uint8_t *po;

        memcpy(b.p, t->mini2.p, t->mini2.len);
        b.len = t->mini2.len;
        assert_int_equal(pkg_parse_header(b.p, b.len, b.len, &h), PKG_OK);
        assert_int_equal(pkg_read_table(&h, pkg_mem_read, &r, &segs), PKG_OK);
        po = b.p + h.payload_off;
        memcpy(po, t->mini2.p + h.payload_off + segs[1].off, segs[1].len);
        memcpy(po + segs[1].len, t->mini2.p + h.payload_off, segs[0].len);
        segs[0].off = segs[1].len;
        segs[1].off = 0;
        pkg_write_table(&h, segs, b.p + h.table_off);
        assert_int_equal(pkg_digest(b.p + h.table_off, (size_t)h.seg_count * PKG_SEG_ENTRY, NULL,
                                    NULL, &h.table_crc),
                         0);
        pkg_write_header(&h, b.p);
        free(segs);
        r.p = b.p;
        assert_int_equal(pkg_parse_header(b.p, b.len, b.len, &h), PKG_OK);
        assert_int_equal(pkg_read_table(&h, pkg_mem_read, &r, &segs), PKG_OK);
        free(segs);
        REFUSED(&b, TM_PROJECT, PKG_E_LAYOUT);
    }
#undef REFUSED
    /* a refused writer takes nothing more */
    assert_int_equal(qmini_w2_begin(&w, &f, TM_SYS_OFF, TM_SYS_SIZE, "EC600N"), 0);
    assert_int_equal(qmini_w2_feed(&w, t->mini2.p, PKG_HDR), -EBADMSG);
    assert_int_equal(qmini_w2_feed(&w, t->mini2.p, 1), -EBADMSG);
    qmini_w2_end(&w);
    free(huge.p);
    free(full.p);
    free(b.p);
    flash_close(&f);
}

/* Every flash operation of the write x every fault kind; the recovery writes from the first
 * byte again (seed 002 2.3.1.2 step 5: "after a power loss the module repeats step 5"). */
static void test_sweep_w2(void **state)
{
    struct tm *t = *state;
    struct qmini_w2 w;
    struct flash f;
    struct flash_stats st;
    uint64_t clean_ops, cases = 0;

    assert_int_equal(flash_open_mem(&f, &tm_geom), 0);
    tm_load(&f, t->start);
    assert_int_equal(tm_w2_run(&f, &t->mini2, 1500, TM_PROJECT, &w, NULL), 0);
    qmini_w2_end(&w);
    clean_ops = flash_ops(&f);
    for (int kind = 0; kind < TM_KINDS; kind++) {
        for (uint64_t op = 1; op <= clean_ops; op++) {
            int rc;

            tm_load(&f, t->start);
            flash_arm(&f, op, (enum flash_fault)kind, (uint32_t)op * 40503u);
            rc = tm_w2_run(&f, &t->mini2, 1500, TM_PROJECT, &w, NULL);
            qmini_w2_end(&w);
            /* the cut stops the write (or hits its very last program, which landed) */
            assert_true(rc == -ECANCELED || (rc == 0 && op == clean_ops));
            assert_true(flash_dead(&f));
            flash_power_on(&f);
            assert_int_equal(tm_w2_run(&f, &t->mini2, 1500, TM_PROJECT, &w, NULL), 0);
            qmini_w2_end(&w);
            assert_memory_equal(flash_data(&f) + TM_SYS_OFF, t->big_new.p, t->big_new.len);
            cases++;
        }
    }
    flash_stats(&f, &st);
    assert_int_equal(st.violations, 0);
    print_message("mini_2 write: %llu flash ops, %llu cut cases\n", (unsigned long long)clean_ops,
                  (unsigned long long)cases);
    flash_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_suffix),   cmocka_unit_test(test_figure3_cadence),
        cmocka_unit_test(test_layout),       cmocka_unit_test(test_check_head),
        cmocka_unit_test(test_check_pkg),    cmocka_unit_test(test_resume_kind),
        cmocka_unit_test(test_sweep_apply1), cmocka_unit_test(test_w2_clean),
        cmocka_unit_test(test_w2_refusals),  cmocka_unit_test(test_sweep_w2),
    };

    return cmocka_run_group_tests(tests, tm_setup, tm_teardown);
}
