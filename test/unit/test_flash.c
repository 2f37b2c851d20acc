/*
 * test_flash.c: unit tests of the NOR flash model (storage/flash.c): geometry, the 1->0 rule,
 * page and erase limits, wear, file persistence, every fault kind with exact bytes, flash_blank,
 * and flash_write against a loop of flash_prog calls (it may program a range in one piece).
 * Not tested here: anything built on the flash (NV has its own tests and sweep).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/flash.h"

#define UNIT 4096u
#define PAGE 256u

static const struct flash_geom geom4 = {4 * UNIT, UNIT, PAGE};

/* A 4-unit memory flash whose first page holds 0x00..0xff and unit 1 a 0xA5 pattern. */
static void mkflash(struct flash *f)
{
    uint8_t page[PAGE];

    assert_int_equal(flash_open_mem(f, &geom4), 0);
    for (uint32_t i = 0; i < PAGE; i++)
        page[i] = (uint8_t)i;
    assert_int_equal(flash_prog(f, 0, page, PAGE), 0);
    memset(page, 0xa5, sizeof(page));
    for (uint32_t o = UNIT; o < 2 * UNIT; o += PAGE)
        assert_int_equal(flash_prog(f, o, page, PAGE), 0);
    flash_power_on(f);
}

static void test_geometry(void **state)
{
    struct flash f;
    struct flash_geom bad[] = {
        {0, UNIT, PAGE},        /* no size */
        {UNIT + 1, UNIT, PAGE}, /* not whole units */
        {UNIT, UNIT, 300},      /* unit not whole pages */
    };
    struct flash_geom def = {2 * UNIT, 0, 0};
    struct flash_stats st;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(flash_open_mem(&f, &bad[i]), -EINVAL);
    assert_int_equal(flash_open_mem(&f, NULL), -EINVAL);
    assert_int_equal(flash_open_mem(&f, &def), 0);
    assert_int_equal(flash_geometry(&f)->erase_size, FLASH_DEF_ERASE_SIZE);
    assert_int_equal(flash_geometry(&f)->page_size, FLASH_DEF_PAGE_SIZE);
    for (uint32_t i = 0; i < def.size; i++)
        assert_int_equal(flash_data(&f)[i], 0xff);
    flash_stats(&f, &st);
    assert_int_equal(st.ops + st.progs + st.erases + st.violations + st.max_wear, 0);
    assert_false(flash_dead(&f));
    flash_close(&f);
    flash_close(&f); /* idempotent on a closed struct */
}

static void test_nor_rule(void **state)
{
    struct flash f;
    uint8_t b;
    struct flash_stats st;

    (void)state;
    assert_int_equal(flash_open_mem(&f, &geom4), 0);
    b = 0xf0;
    assert_int_equal(flash_prog(&f, 10, &b, 1), 0);
    b = 0x0f; /* would raise bits 4..7 */
    assert_int_equal(flash_prog(&f, 10, &b, 1), -EIO);
    assert_int_equal(flash_data(&f)[10], 0xf0);
    b = 0x30; /* clears bits only */
    assert_int_equal(flash_prog(&f, 10, &b, 1), 0);
    assert_int_equal(flash_data(&f)[10], 0x30);
    b = 0x30; /* the same value again is fine */
    assert_int_equal(flash_prog(&f, 10, &b, 1), 0);
    b = 0xff; /* asking for a 1 where a 0 is: refused too (strict, catches double programs) */
    assert_int_equal(flash_prog(&f, 10, &b, 1), -EIO);
    assert_int_equal(flash_data(&f)[10], 0x30);
    assert_int_equal(flash_prog(&f, 11, &b, 1), 0); /* 0xff over erased: a no-op */
    flash_stats(&f, &st);
    assert_int_equal(st.violations, 2);
    assert_int_equal(st.progs, 4); /* refused requests are not numbered */
    assert_int_equal(flash_ops(&f), 4);
    assert_int_equal(st.bytes_programmed, 4);
    flash_close(&f);
}

static void test_page_limits(void **state)
{
    struct flash f;
    uint8_t buf[600];

    (void)state;
    memset(buf, 0x11, sizeof(buf));
    assert_int_equal(flash_open_mem(&f, &geom4), 0);
    assert_int_equal(flash_prog(&f, PAGE - 5, buf, 10), -EINVAL);
    assert_int_equal(flash_prog(&f, PAGE - 5, buf, 5), 0);
    assert_int_equal(flash_prog(&f, 4 * UNIT - 1, buf, 2), -EINVAL);
    assert_int_equal(flash_prog(&f, 4 * UNIT + 1, buf, 0), -EINVAL);
    assert_int_equal(flash_ops(&f), 1);
    /* 600 bytes from offset 300: pages 1, 2, 3 -> three operations */
    assert_int_equal(flash_write(&f, 300, buf, 600), 0);
    assert_int_equal(flash_ops(&f), 4);
    assert_int_equal(flash_data(&f)[299], 0xff);
    assert_int_equal(flash_data(&f)[300], 0x11);
    assert_int_equal(flash_data(&f)[899], 0x11);
    assert_int_equal(flash_data(&f)[900], 0xff);
    assert_int_equal(flash_write(&f, 4 * UNIT - 10, buf, 11), -EINVAL);
    assert_int_equal(flash_read(&f, 4 * UNIT - 10, buf, 11), -EINVAL);
    assert_int_equal(flash_read(&f, 300, buf, 600), 0);
    assert_int_equal(flash_ops(&f), 4); /* reads never count */
    flash_close(&f);
}

static void test_erase_and_wear(void **state)
{
    struct flash f;
    struct flash_stats st;

    (void)state;
    mkflash(&f);
    assert_int_equal(flash_erase(&f, 100), -EINVAL);
    assert_int_equal(flash_erase(&f, 4 * UNIT), -EINVAL);
    assert_int_equal(flash_erase_range(&f, 0, UNIT + 1), -EINVAL);
    assert_int_equal(flash_erase_range(&f, UNIT, 4 * UNIT), -EINVAL);
    assert_int_equal(flash_ops(&f), 0);
    assert_int_equal(flash_erase(&f, UNIT), 0);
    for (uint32_t i = UNIT; i < 2 * UNIT; i++)
        assert_int_equal(flash_data(&f)[i], 0xff);
    assert_int_equal(flash_data(&f)[1], 1); /* unit 0 untouched */
    assert_int_equal(flash_erase_range(&f, 0, 3 * UNIT), 0);
    assert_int_equal(flash_ops(&f), 4);
    assert_int_equal(flash_data(&f)[1], 0xff);
    assert_int_equal(flash_wear(&f, 0), 1);
    assert_int_equal(flash_wear(&f, 1), 2);
    assert_int_equal(flash_wear(&f, 2), 1);
    assert_int_equal(flash_wear(&f, 3), 0);
    assert_int_equal(flash_wear(&f, 4), 0); /* out of range */
    flash_stats(&f, &st);
    assert_int_equal(st.erases, 4);
    assert_int_equal(st.max_wear, 2);
    flash_close(&f);
}

struct tmpdir {
    char dir[64], dev[96], wear[112];
};

static void tmpdir_make(struct tmpdir *t)
{
    strcpy(t->dir, "/tmp/test_flash.XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->dev, sizeof(t->dev), "%s/flash.bin", t->dir);
    snprintf(t->wear, sizeof(t->wear), "%s.wear", t->dev);
}

static void tmpdir_drop(struct tmpdir *t)
{
    unlink(t->dev);
    unlink(t->wear);
    rmdir(t->dir);
}

static off_t file_size(const char *path)
{
    struct stat st;

    return stat(path, &st) < 0 ? -1 : st.st_size;
}

static void test_file_persistence(void **state)
{
    struct tmpdir t;
    struct flash f;
    struct flash_geom other = {8 * UNIT, UNIT, PAGE};
    uint8_t b[4] = {1, 2, 3, 4}, rd[4];
    int fd;

    (void)state;
    tmpdir_make(&t);
    assert_int_equal(flash_open(&f, t.dev, &geom4), 0);
    assert_int_equal(file_size(t.dev), 4 * UNIT);
    assert_int_equal(file_size(t.wear), 4 * sizeof(uint32_t));
    assert_int_equal(flash_data(&f)[123], 0xff);
    assert_int_equal(flash_prog(&f, UNIT + 8, b, 4), 0);
    /* The mapping is shared: the file has the bytes before any close (what kill -9 leaves). */
    fd = open(t.dev, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, rd, 4, UNIT + 8), 4);
    close(fd);
    assert_memory_equal(rd, b, 4);
    assert_int_equal(flash_erase(&f, 2 * UNIT), 0);
    assert_int_equal(flash_erase(&f, 2 * UNIT), 0);
    assert_int_equal(flash_erase(&f, 3 * UNIT), 0);
    flash_close(&f);

    assert_int_equal(flash_open(&f, t.dev, &geom4), 0);
    assert_memory_equal(flash_data(&f) + UNIT + 8, b, 4);
    assert_int_equal(flash_data(&f)[UNIT + 12], 0xff);
    assert_int_equal(flash_wear(&f, 0), 0);
    assert_int_equal(flash_wear(&f, 2), 2);
    assert_int_equal(flash_wear(&f, 3), 1);
    assert_int_equal(flash_ops(&f), 0);
    flash_close(&f);

    /* Another size is someone else's device: refused, and left alone. */
    assert_int_equal(flash_open(&f, t.dev, &other), -EINVAL);
    assert_int_equal(file_size(t.dev), 4 * UNIT);
    /* A wear table of the wrong size restarts at zero; the content is kept. */
    assert_int_equal(truncate(t.wear, 3), 0);
    assert_int_equal(flash_open(&f, t.dev, &geom4), 0);
    assert_int_equal(flash_wear(&f, 2), 0);
    assert_memory_equal(flash_data(&f) + UNIT + 8, b, 4);
    flash_close(&f);
    tmpdir_drop(&t);
}

/* What a cut callback saw. */
struct cut_log {
    int calls;
    uint64_t op;
    bool dead_inside;
    struct flash *f;
};

static void cut_record(void *ctx, uint64_t op)
{
    struct cut_log *log = ctx;

    log->calls++;
    log->op = op;
    log->dead_inside = flash_dead(log->f);
}

/* Arms kind at the next op of a fresh flash, runs a program of 0x0F.. over page 0. */
static int faulted_prog(struct flash *f, struct cut_log *log, enum flash_fault kind, uint32_t seed,
                        uint8_t *newb)
{
    mkflash(f);
    memset(log, 0, sizeof(*log));
    log->f = f;
    flash_set_cut_cb(f, cut_record, log);
    for (uint32_t i = 0; i < PAGE; i++)
        newb[i] = (uint8_t)(0x0f ^ (i * 7)) & (uint8_t)i; /* only clears bits of page 0 */
    flash_arm(f, 1, kind, seed);
    return flash_prog(f, 0, newb, PAGE);
}

static void test_fault_prog(void **state)
{
    struct flash f;
    struct cut_log log;
    uint8_t newb[PAGE];
    int rc, partial = 0;

    (void)state;
    /* BEFORE, and the erase-only kinds: nothing lands */
    const enum flash_fault none[] = {FLASH_CUT_BEFORE, FLASH_CUT_TORN_ERASE, FLASH_CUT_SKIP_ERASE};
    for (size_t k = 0; k < 3; k++) {
        rc = faulted_prog(&f, &log, none[k], 7, newb);
        assert_int_equal(rc, -ECANCELED);
        for (uint32_t i = 0; i < PAGE; i++)
            assert_int_equal(flash_data(&f)[i], i);
        assert_true(flash_dead(&f));
        assert_int_equal(log.calls, 1);
        assert_int_equal(log.op, 1);
        assert_true(log.dead_inside);
        flash_close(&f);
    }
    /* AFTER: lands in full, reports success */
    rc = faulted_prog(&f, &log, FLASH_CUT_AFTER, 7, newb);
    assert_int_equal(rc, 0);
    assert_memory_equal(flash_data(&f), newb, PAGE);
    assert_true(flash_dead(&f));
    assert_int_equal(log.calls, 1);
    flash_close(&f);
    /* TORN_PROG: old & (new | mask), exactly */
    rc = faulted_prog(&f, &log, FLASH_CUT_TORN_PROG, 12345, newb);
    assert_int_equal(rc, -ECANCELED);
    for (uint32_t i = 0; i < PAGE; i++) {
        uint8_t old = (uint8_t)i, want = old & (newb[i] | flash_tear_mask(12345, i));

        assert_int_equal(flash_data(&f)[i], want);
        partial += want != old && want != newb[i];
    }
    assert_true(partial > 0); /* some bytes really are half-programmed */
    assert_true(flash_dead(&f));
    assert_int_equal(log.calls, 1);
    flash_close(&f);
    /* the mask depends on the seed */
    assert_true(memcmp((uint8_t[]){flash_tear_mask(1, 0), flash_tear_mask(1, 1),
                                   flash_tear_mask(1, 2), flash_tear_mask(1, 3)},
                       (uint8_t[]){flash_tear_mask(2, 0), flash_tear_mask(2, 1),
                                   flash_tear_mask(2, 2), flash_tear_mask(2, 3)},
                       4) != 0);
}

static void test_fault_erase(void **state)
{
    struct flash f;
    struct cut_log log;
    uint32_t prefix;

    (void)state;
    /* BEFORE and TORN_PROG: the erase does not happen, no wear */
    const enum flash_fault none[] = {FLASH_CUT_BEFORE, FLASH_CUT_TORN_PROG};
    for (size_t k = 0; k < 2; k++) {
        mkflash(&f);
        memset(&log, 0, sizeof(log));
        log.f = &f;
        flash_set_cut_cb(&f, cut_record, &log);
        flash_arm(&f, 1, none[k], 3);
        assert_int_equal(flash_erase(&f, UNIT), -ECANCELED);
        for (uint32_t i = UNIT; i < 2 * UNIT; i++)
            assert_int_equal(flash_data(&f)[i], 0xa5);
        assert_int_equal(flash_wear(&f, 1), 0);
        assert_int_equal(log.calls, 1);
        assert_true(flash_dead(&f));
        flash_close(&f);
    }
    /* AFTER: erased, wear counted, success */
    mkflash(&f);
    flash_arm(&f, 1, FLASH_CUT_AFTER, 3);
    assert_int_equal(flash_erase(&f, UNIT), 0);
    for (uint32_t i = UNIT; i < 2 * UNIT; i++)
        assert_int_equal(flash_data(&f)[i], 0xff);
    assert_int_equal(flash_wear(&f, 1), 1);
    assert_true(flash_dead(&f));
    flash_close(&f);
    /* TORN_ERASE: a prefix erased, the rest as it was */
    mkflash(&f);
    prefix = flash_tear_prefix(&f, 99);
    assert_true(prefix < UNIT);
    flash_arm(&f, 1, FLASH_CUT_TORN_ERASE, 99);
    assert_int_equal(flash_erase(&f, UNIT), -ECANCELED);
    for (uint32_t i = 0; i < UNIT; i++)
        assert_int_equal(flash_data(&f)[UNIT + i], i < prefix ? 0xff : 0xa5);
    assert_int_equal(flash_wear(&f, 1), 1);
    assert_true(flash_dead(&f));
    assert_int_not_equal(flash_tear_prefix(&f, 99), flash_tear_prefix(&f, 100));
    flash_close(&f);
    /* SKIP_ERASE: nothing happens, success is reported, then dead */
    mkflash(&f);
    flash_arm(&f, 1, FLASH_CUT_SKIP_ERASE, 0);
    assert_int_equal(flash_erase(&f, UNIT), 0);
    for (uint32_t i = UNIT; i < 2 * UNIT; i++)
        assert_int_equal(flash_data(&f)[i], 0xa5);
    assert_int_equal(flash_wear(&f, 1), 0);
    assert_true(flash_dead(&f));
    flash_close(&f);
}

static void test_dead_and_power_on(void **state)
{
    struct flash f;
    uint8_t b = 0, buf[PAGE * 2];
    struct cut_log log = {0};

    (void)state;
    memset(buf, 0, sizeof(buf));
    mkflash(&f);
    log.f = &f;
    flash_set_cut_cb(&f, cut_record, &log);
    flash_kill(&f);
    assert_true(flash_dead(&f));
    assert_int_equal(log.calls, 0); /* an outside cut runs no callback */
    assert_int_equal(flash_prog(&f, 2 * UNIT, &b, 1), -ECANCELED);
    assert_int_equal(flash_write(&f, 2 * UNIT, buf, sizeof(buf)), -ECANCELED);
    assert_int_equal(flash_erase(&f, 0), -ECANCELED);
    assert_int_equal(flash_erase_range(&f, 0, 2 * UNIT), -ECANCELED);
    assert_int_equal(flash_ops(&f), 0); /* refused ops are not numbered */
    assert_int_equal(flash_data(&f)[2 * UNIT], 0xff);
    assert_int_equal(flash_data(&f)[5], 5);
    assert_int_equal(flash_read(&f, 0, buf, 8), 0); /* reads still work */
    assert_int_equal(buf[7], 7);

    flash_power_on(&f);
    assert_false(flash_dead(&f));
    assert_int_equal(flash_prog(&f, 2 * UNIT, &b, 1), 0);
    assert_int_equal(flash_ops(&f), 1);

    /* power-on resets the counter and disarms; content and wear survive */
    flash_arm(&f, 2, FLASH_CUT_BEFORE, 0);
    assert_int_equal(flash_erase(&f, 3 * UNIT), 0);
    flash_power_on(&f);
    assert_int_equal(flash_ops(&f), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(flash_erase(&f, 3 * UNIT), 0);
    assert_false(flash_dead(&f));
    assert_int_equal(flash_wear(&f, 3), 4);
    assert_int_equal(flash_data(&f)[2 * UNIT], 0);

    /* a multi-page write stops at the cut: pages before it stay */
    flash_power_on(&f);
    flash_arm(&f, 2, FLASH_CUT_BEFORE, 0);
    assert_int_equal(flash_write(&f, 3 * UNIT, buf, sizeof(buf)), -ECANCELED);
    assert_int_equal(flash_data(&f)[3 * UNIT + PAGE - 1], 0);
    assert_int_equal(flash_data(&f)[3 * UNIT + PAGE], 0xff);
    assert_int_equal(log.calls, 1);
    assert_int_equal(log.op, 2);

    /* disarm really disarms */
    flash_power_on(&f);
    flash_arm(&f, 1, FLASH_CUT_BEFORE, 0);
    flash_disarm(&f);
    assert_int_equal(flash_erase(&f, 3 * UNIT), 0);
    flash_arm(&f, 0, FLASH_CUT_BEFORE, 0); /* nth 0 disarms too */
    assert_int_equal(flash_erase(&f, 3 * UNIT), 0);
    assert_false(flash_dead(&f));
    flash_close(&f);
}

static void test_cut_callback_op(void **state)
{
    struct flash f;
    struct cut_log log = {0};
    uint8_t b = 0x7f;

    (void)state;
    mkflash(&f);
    log.f = &f;
    flash_set_cut_cb(&f, cut_record, &log);
    assert_int_equal(flash_erase(&f, 2 * UNIT), 0);
    assert_int_equal(flash_prog(&f, 2 * UNIT, &b, 1), 0);
    /* nth counts from now; the callback gets the op number since power-on */
    flash_arm(&f, 3, FLASH_CUT_BEFORE, 0);
    assert_int_equal(flash_prog(&f, 2 * UNIT + 1, &b, 1), 0);
    assert_int_equal(flash_erase(&f, 3 * UNIT), 0);
    assert_int_equal(log.calls, 0);
    assert_int_equal(flash_prog(&f, 2 * UNIT + 2, &b, 1), -ECANCELED);
    assert_int_equal(log.calls, 1);
    assert_int_equal(log.op, 5);
    assert_int_equal(flash_ops(&f), 5);
    assert_int_equal(flash_data(&f)[2 * UNIT + 2], 0xff);
    /* dead: no more ops, no more callbacks */
    assert_int_equal(flash_prog(&f, 2 * UNIT + 3, &b, 1), -ECANCELED);
    assert_int_equal(log.calls, 1);
    assert_int_equal(flash_ops(&f), 5);
    /* removing the callback */
    flash_power_on(&f);
    flash_set_cut_cb(&f, NULL, NULL);
    flash_arm(&f, 1, FLASH_CUT_AFTER, 0);
    assert_int_equal(flash_prog(&f, 2 * UNIT + 3, &b, 1), 0);
    assert_int_equal(log.calls, 1);
    assert_true(flash_dead(&f));
    flash_close(&f);
}

/* flash_write must be a loop of flash_prog calls in every observable way: a range crossing four
 * pages (partial first and last), cut at each of its pages by each fault kind, with a 0->1 request
 * in its third page, or clean; device A uses flash_write, device B the loop. */
static void write_vs_loop(enum flash_fault kind, uint64_t nth, bool refuse)
{
    const uint32_t off = 2 * UNIT + 100, len = 3 * PAGE;
    struct flash a, b;
    struct cut_log la = {0}, lb = {0};
    struct flash_stats sa, sb;
    uint8_t buf[3 * PAGE];
    uint8_t zero = 0;
    int ra, rb = 0;

    for (uint32_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(i * 37 + 11);
    mkflash(&a);
    mkflash(&b);
    if (refuse) { /* a cleared byte in the third page that buf wants set: 0->1 */
        assert_int_equal(flash_prog(&a, off + 2 * PAGE, &zero, 1), 0);
        assert_int_equal(flash_prog(&b, off + 2 * PAGE, &zero, 1), 0);
        buf[2 * PAGE] = 0x01;
    }
    la.f = &a;
    lb.f = &b;
    flash_set_cut_cb(&a, cut_record, &la);
    flash_set_cut_cb(&b, cut_record, &lb);
    flash_arm(&a, nth, kind, 42);
    flash_arm(&b, nth, kind, 42);
    ra = flash_write(&a, off, buf, len);
    for (uint32_t o = off; o < off + len && rb == 0;) {
        uint32_t n = PAGE - o % PAGE < off + len - o ? PAGE - o % PAGE : off + len - o;
        rb = flash_prog(&b, o, buf + (o - off), n);
        o += n;
    }
    assert_int_equal(ra, rb);
    assert_memory_equal(flash_data(&a), flash_data(&b), geom4.size);
    flash_stats(&a, &sa);
    flash_stats(&b, &sb);
    assert_memory_equal(&sa, &sb, sizeof(sa));
    assert_int_equal(flash_dead(&a), flash_dead(&b));
    assert_int_equal(la.calls, lb.calls);
    assert_int_equal(la.op, lb.op);
    /* and the next program sees the same device (the NOR rule still holds on A) */
    if (!flash_dead(&a)) {
        uint8_t ff = 0xff;
        assert_int_equal(flash_prog(&a, off + 1, &ff, 1), flash_prog(&b, off + 1, &ff, 1));
        assert_int_equal(flash_ops(&a), flash_ops(&b));
    }
    flash_close(&a);
    flash_close(&b);
}

static void test_write_is_a_prog_loop(void **state)
{
    const enum flash_fault kinds[] = {FLASH_CUT_BEFORE, FLASH_CUT_AFTER, FLASH_CUT_TORN_PROG,
                                      FLASH_CUT_TORN_ERASE, FLASH_CUT_SKIP_ERASE};

    (void)state;
    for (int refuse = 0; refuse < 2; refuse++) {
        write_vs_loop(FLASH_CUT_BEFORE, 0, refuse); /* disarmed */
        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
            for (uint64_t nth = 1; nth <= 5; nth++) /* each page of the range, and past it */
                write_vs_loop(kinds[k], nth, refuse);
    }
}

/* flash_blank answers from what the model did, from what it read, and after a power-on from
 * the device alone: content loaded behind its back (as test_fota_apply does) is not trusted. */
static void test_blank(void **state)
{
    struct flash f;
    struct flash_stats st;
    uint8_t b = 0x5a, ff[PAGE], zero = 0;

    (void)state;
    memset(ff, 0xff, sizeof(ff));
    mkflash(&f);
    assert_true(flash_blank(&f, 2 * UNIT, 2 * UNIT));
    assert_true(flash_blank(&f, 0, 0));
    assert_false(flash_blank(&f, 3 * UNIT, UNIT + 1)); /* out of range */
    assert_false(flash_blank(&f, 0, PAGE));
    assert_false(flash_blank(&f, UNIT + 10, 1));
    /* a programmed byte: its page is not blank, the bytes around it are */
    assert_int_equal(flash_prog(&f, 2 * UNIT + 300, &b, 1), 0);
    assert_false(flash_blank(&f, 2 * UNIT, UNIT));
    assert_false(flash_blank(&f, 2 * UNIT + PAGE, PAGE));
    assert_true(flash_blank(&f, 2 * UNIT + PAGE, 300 - PAGE));
    assert_true(flash_blank(&f, 2 * UNIT + 301, UNIT - 301));
    /* 0xFF over erased cells changes nothing: still blank */
    assert_int_equal(flash_write(&f, 3 * UNIT, ff, PAGE), 0);
    assert_true(flash_blank(&f, 3 * UNIT, UNIT));
    /* an erase makes blank again, and stays one numbered op with its wear, blank or not */
    flash_power_on(&f);
    assert_int_equal(flash_erase(&f, 2 * UNIT), 0);
    assert_true(flash_blank(&f, 2 * UNIT, UNIT));
    assert_int_equal(flash_erase(&f, 2 * UNIT), 0);
    assert_int_equal(flash_erase(&f, 3 * UNIT), 0);
    assert_int_equal(flash_ops(&f), 3);
    assert_int_equal(flash_wear(&f, 2), 2);
    assert_int_equal(flash_wear(&f, 3), 1);
    flash_stats(&f, &st);
    assert_int_equal(st.erases, 3);
    /* a torn erase: the erased prefix is blank, the page it ends in is not */
    uint32_t prefix = flash_tear_prefix(&f, 99);
    flash_arm(&f, 1, FLASH_CUT_TORN_ERASE, 99);
    assert_int_equal(flash_erase(&f, UNIT), -ECANCELED);
    assert_true(flash_blank(&f, UNIT, prefix));
    assert_false(flash_blank(&f, UNIT, prefix + 1));
    assert_false(flash_blank(&f, UNIT + prefix - prefix % PAGE, PAGE));
    /* content loaded behind the model's back, then a power-on: a page it had seen blank now
     * holds zeros, and both the answer and the NOR rule follow the device */
    flash_power_on(&f);
    assert_true(flash_blank(&f, 2 * UNIT, PAGE));
    memset(f.mem + 2 * UNIT, 0, PAGE);
    flash_power_on(&f);
    assert_false(flash_blank(&f, 2 * UNIT, PAGE));
    b = 0x01;
    assert_int_equal(flash_prog(&f, 2 * UNIT, &b, 1), -EIO);
    assert_int_equal(flash_write(&f, 2 * UNIT, ff, PAGE), -EIO);
    assert_int_equal(flash_write(&f, 2 * UNIT, &zero, 1), 0);
    flash_close(&f);
}

/* A file-backed device learns the pages it knows nothing of by reading them (and unmapping them
 * again): right answers after a reopen, for pages programmed, erased or never touched, whole or
 * in part. */
static void test_blank_file(void **state)
{
    struct tmpdir t;
    struct flash f;
    uint8_t b = 0x42, buf[PAGE];
    int fd;

    (void)state;
    tmpdir_make(&t);
    assert_int_equal(flash_open(&f, t.dev, &geom4), 0);
    assert_true(flash_blank(&f, 0, 4 * UNIT));
    assert_int_equal(flash_prog(&f, UNIT + 5, &b, 1), 0);
    assert_int_equal(flash_prog(&f, 3 * UNIT + 4095, &b, 1), 0);
    /* learning a window unmaps it, freshly programmed pages included: nothing is lost */
    flash_power_on(&f);
    assert_true(flash_blank(&f, 2 * UNIT, PAGE));
    assert_int_equal(flash_data(&f)[UNIT + 5], 0x42);
    fd = open(t.dev, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, buf, 1, 3 * UNIT + 4095), 1);
    close(fd);
    assert_int_equal(buf[0], 0x42);
    flash_close(&f);
    assert_int_equal(flash_open(&f, t.dev, &geom4), 0);
    assert_true(flash_blank(&f, 0, UNIT + 5));
    assert_false(flash_blank(&f, UNIT, PAGE));
    assert_false(flash_blank(&f, UNIT + 5, 1));
    assert_true(flash_blank(&f, UNIT + 6, 3 * UNIT - 7));
    assert_false(flash_blank(&f, UNIT + 6, 3 * UNIT - 6));
    assert_int_equal(flash_erase(&f, UNIT), 0);
    assert_true(flash_blank(&f, 0, 3 * UNIT + 4095));
    /* what the model learnt is the device: programs still obey the NOR rule */
    memset(buf, 0x0f, sizeof(buf));
    assert_int_equal(flash_write(&f, 2 * UNIT, buf, PAGE), 0);
    memset(buf, 0x1f, sizeof(buf));
    assert_int_equal(flash_write(&f, 2 * UNIT, buf, PAGE), -EIO);
    assert_int_equal(flash_data(&f)[2 * UNIT], 0x0f);
    flash_close(&f);
    tmpdir_drop(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_geometry),
        cmocka_unit_test(test_nor_rule),
        cmocka_unit_test(test_page_limits),
        cmocka_unit_test(test_erase_and_wear),
        cmocka_unit_test(test_file_persistence),
        cmocka_unit_test(test_fault_prog),
        cmocka_unit_test(test_fault_erase),
        cmocka_unit_test(test_dead_and_power_on),
        cmocka_unit_test(test_cut_callback_op),
        cmocka_unit_test(test_write_is_a_prog_loop),
        cmocka_unit_test(test_blank),
        cmocka_unit_test(test_blank_file),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
