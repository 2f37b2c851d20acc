/* test_ufs.c: unit tests of the UFS file area (storage/ufs.c) on the in-memory NOR model,
 * ending in a power-loss sweep: one scenario cut at every flash operation with every fault kind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/flash.h"
#include "storage/ufs.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

/* One flash device with one mounted area on it. */
struct rig {
    struct flash f;
    struct ufs u;
    uint32_t off, size;
};

static void rig_open(struct rig *r, uint32_t flash_size, uint32_t off, uint32_t size)
{
    struct flash_geom g = {.size = flash_size, .erase_size = 4096, .page_size = 256};

    memset(r, 0, sizeof(*r));
    assert_int_equal(flash_open_mem(&r->f, &g), 0);
    r->off = off;
    r->size = size;
    assert_int_equal(ufs_mount(&r->u, &r->f, off, size), 0);
}

/* A power cycle: RAM state dropped (unmount writes nothing), the flash powered on again. */
static void rig_remount(struct rig *r)
{
    ufs_unmount(&r->u);
    flash_power_on(&r->f);
    assert_int_equal(ufs_mount(&r->u, &r->f, r->off, r->size), 0);
}

static void rig_close(struct rig *r)
{
    struct flash_stats st;

    flash_stats(&r->f, &st);
    assert_int_equal(st.violations, 0); /* ufs never asks for a 0->1 program */
    ufs_unmount(&r->u);
    flash_close(&r->f);
}

static void fill(uint8_t *p, size_t len, uint32_t seed)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(seed * 131u + i * 7u + (i >> 8) + (i >> 13));
}

static void put_file(struct ufs *u, const char *name, const uint8_t *data, size_t len)
{
    struct ufs_file fh;

    assert_int_equal(ufs_open(u, &fh, name, UFS_WRONLY | UFS_CREAT | UFS_TRUNC), 0);
    assert_int_equal(ufs_write(&fh, data, len), (ssize_t)len);
    assert_int_equal(ufs_close(&fh), 0);
}

static void check_file(struct ufs *u, const char *name, const uint8_t *data, size_t len)
{
    struct ufs_stat st;
    uint8_t *got = malloc(len + 16);

    assert_non_null(got);
    assert_int_equal(ufs_stat(u, name, &st), 0);
    assert_int_equal(st.size, len);
    assert_int_equal(ufs_pread(u, name, 0, got, len + 16), (ssize_t)len);
    assert_memory_equal(got, data, len);
    free(got);
}

static uint64_t space_free(const struct ufs *u)
{
    uint64_t fr;
    assert_int_equal(ufs_space(u, &fr, NULL), 0);
    return fr;
}

/* ---- basic operations -------------------------------------------------------------------- */

static void test_create_write_read(void **state)
{
    struct rig r;
    struct ufs_file w, rd;
    uint8_t data[10000], got[10000];
    (void)state;

    rig_open(&r, 256 * KIB, 0, 256 * KIB);
    fill(data, sizeof(data), 1);
    assert_int_equal(ufs_open(&r.u, &w, "pkg.bin", UFS_RDONLY), -ENOENT);
    assert_int_equal(ufs_open(&r.u, &w, "pkg.bin", UFS_WRONLY | UFS_CREAT), 0);
    /* Created at open: visible and empty before any data is synced. */
    check_file(&r.u, "pkg.bin", data, 0);
    assert_int_equal(ufs_write(&w, data, 6000), 6000);
    check_file(&r.u, "pkg.bin", data, 0);
    assert_int_equal(ufs_sync(&w), 0);
    check_file(&r.u, "pkg.bin", data, 6000);
    assert_int_equal(ufs_write(&w, data + 6000, 4000), 4000);
    assert_int_equal(ufs_close(&w), 0);
    assert_int_equal(ufs_close(&w), -EBADF);
    check_file(&r.u, "pkg.bin", data, sizeof(data));

    /* A reader walks the file in odd-sized pieces. */
    assert_int_equal(ufs_open(&r.u, &rd, "pkg.bin", UFS_RDONLY), 0);
    assert_int_equal(ufs_write(&rd, data, 1), -EBADF);
    size_t at = 0;
    ssize_t n;
    while ((n = ufs_read(&rd, got + at, 777)) > 0)
        at += (size_t)n;
    assert_int_equal(n, 0);
    assert_int_equal(at, sizeof(data));
    assert_memory_equal(got, data, sizeof(data));
    assert_int_equal(ufs_pread(&r.u, "pkg.bin", 9990, got, 100), 10);
    assert_int_equal(ufs_pread(&r.u, "pkg.bin", 20000, got, 100), 0);
    assert_int_equal(ufs_sync(&rd), 0);
    assert_int_equal(ufs_close(&rd), 0);

    rig_remount(&r);
    check_file(&r.u, "pkg.bin", data, sizeof(data));
    rig_close(&r);
}

static void test_append_resync(void **state)
{
    struct rig r;
    struct ufs_file w;
    uint8_t data[60000];
    size_t at = 0;
    (void)state;

    rig_open(&r, 256 * KIB, 0, 256 * KIB);
    fill(data, sizeof(data), 2);
    /* A download: commit every few KiB, reopen with UFS_APPEND after each "cut". */
    for (int round = 0; round < 5; round++) {
        assert_int_equal(ufs_open(&r.u, &w, "dl", UFS_WRONLY | UFS_CREAT | UFS_APPEND), 0);
        for (int k = 0; k < 3; k++) {
            size_t n = 3333;
            assert_int_equal(ufs_write(&w, data + at, n), (ssize_t)n);
            at += n;
            assert_int_equal(ufs_sync(&w), 0);
            check_file(&r.u, "dl", data, at);
        }
        /* Unsynced tail, then the power goes: resume from the synced size. */
        assert_int_equal(ufs_write(&w, data + at, 1000), 1000);
        rig_remount(&r);
        check_file(&r.u, "dl", data, at);
    }
    /* The area did not leak the abandoned tails. */
    assert_int_equal(space_free(&r.u), (uint64_t)(r.u.ndata - (at + 4095) / 4096) * 4096);
    rig_close(&r);
}

static void test_truncate_and_overwrite(void **state)
{
    struct rig r;
    struct ufs_file w;
    uint8_t a[9000], b[6000], want[9000];
    (void)state;

    rig_open(&r, 256 * KIB, 0, 256 * KIB);
    fill(a, sizeof(a), 3);
    fill(b, sizeof(b), 4);
    put_file(&r.u, "f", a, sizeof(a));

    /* TRUNC: the old content stays visible until the sync. */
    assert_int_equal(ufs_open(&r.u, &w, "f", UFS_WRONLY | UFS_TRUNC), 0);
    assert_int_equal(ufs_write(&w, b, 1000), 1000);
    check_file(&r.u, "f", a, sizeof(a));
    assert_int_equal(ufs_close(&w), 0);
    check_file(&r.u, "f", b, 1000);

    /* TRUNC with no write still empties the file. */
    assert_int_equal(ufs_open(&r.u, &w, "f", UFS_WRONLY | UFS_TRUNC), 0);
    assert_int_equal(ufs_close(&w), 0);
    check_file(&r.u, "f", b, 0);

    /* Plain WRONLY overwrites from 0 and keeps what lies beyond (copy on write + tail). */
    put_file(&r.u, "f", a, sizeof(a));
    assert_int_equal(ufs_open(&r.u, &w, "f", UFS_WRONLY), 0);
    assert_int_equal(ufs_write(&w, b, 300), 300);
    assert_int_equal(ufs_sync(&w), 0);
    memcpy(want, a, sizeof(a));
    memcpy(want, b, 300);
    check_file(&r.u, "f", want, sizeof(want));
    assert_int_equal(ufs_write(&w, b + 300, 4500), 4500); /* crosses into block 1 */
    memcpy(want, b, 4800);
    assert_int_equal(ufs_close(&w), 0);
    check_file(&r.u, "f", want, sizeof(want));
    rig_remount(&r);
    check_file(&r.u, "f", want, sizeof(want));

    /* Overwrite past the end grows the file. */
    assert_int_equal(ufs_open(&r.u, &w, "f", UFS_WRONLY), 0);
    assert_int_equal(ufs_write(&w, a, 8000), 8000);
    assert_int_equal(ufs_write(&w, b, 3000), 3000);
    assert_int_equal(ufs_close(&w), 0);
    uint8_t big[11000];
    memcpy(big, a, 8000);
    memcpy(big + 8000, b, 3000);
    check_file(&r.u, "f", big, sizeof(big));
    assert_int_equal(space_free(&r.u), (uint64_t)(r.u.ndata - 3) * 4096);
    rig_close(&r);
}

static void test_abort_and_junk_tail(void **state)
{
    struct rig r;
    struct ufs_file w;
    uint8_t a[6000], b[3000];
    (void)state;

    rig_open(&r, 256 * KIB, 0, 256 * KIB);
    fill(a, sizeof(a), 5);
    fill(b, sizeof(b), 6);
    put_file(&r.u, "f", a, 5000);
    uint64_t fr = space_free(&r.u);
    /* An aborted append leaves programmed junk past the size in the last block... */
    assert_int_equal(ufs_open(&r.u, &w, "f", UFS_WRONLY | UFS_APPEND), 0);
    assert_int_equal(ufs_write(&w, b, 3000), 3000);
    assert_int_equal(ufs_abort(&w), 0);
    assert_int_equal(ufs_write(&w, b, 1), -EBADF);
    check_file(&r.u, "f", a, 5000);
    assert_int_equal(space_free(&r.u), fr);
    /* ...so the next append copies that block instead of programming over the junk. */
    assert_int_equal(ufs_open(&r.u, &w, "f", UFS_WRONLY | UFS_APPEND), 0);
    assert_int_equal(ufs_write(&w, a + 5000, 1000), 1000);
    assert_int_equal(ufs_close(&w), 0);
    check_file(&r.u, "f", a, 6000);
    rig_remount(&r);
    check_file(&r.u, "f", a, 6000);
    rig_close(&r);
}

static void test_rename_remove(void **state)
{
    struct rig r;
    struct ufs_file rd, w;
    uint8_t a[5000], b[7000], got[16];
    (void)state;

    rig_open(&r, 256 * KIB, 0, 256 * KIB);
    fill(a, sizeof(a), 7);
    fill(b, sizeof(b), 8);
    put_file(&r.u, "a", a, sizeof(a));
    put_file(&r.u, "b", b, sizeof(b));
    uint64_t fr = space_free(&r.u);

    assert_int_equal(ufs_rename(&r.u, "a", "b"), 0);
    assert_int_equal(ufs_stat(&r.u, "a", &(struct ufs_stat){0}), -ENOENT);
    check_file(&r.u, "b", a, sizeof(a));
    assert_int_equal(space_free(&r.u), fr + 2 * 4096); /* b's two blocks came back */
    assert_int_equal(ufs_rename(&r.u, "a", "c"), -ENOENT);
    assert_int_equal(ufs_rename(&r.u, "b", "b"), 0);
    rig_remount(&r);
    check_file(&r.u, "b", a, sizeof(a));

    /* A writer pins its file; a reader of a removed file sees -ENOENT. */
    assert_int_equal(ufs_open(&r.u, &w, "b", UFS_WRONLY), 0);
    assert_int_equal(ufs_open(&r.u, &rd, "b", UFS_WRONLY), -EBUSY);
    assert_int_equal(ufs_remove(&r.u, "b"), -EBUSY);
    assert_int_equal(ufs_rename(&r.u, "b", "x"), -EBUSY);
    assert_int_equal(ufs_abort(&w), 0);
    assert_int_equal(ufs_open(&r.u, &rd, "b", UFS_RDONLY), 0);
    assert_int_equal(ufs_remove(&r.u, "b"), 0);
    assert_int_equal(ufs_read(&rd, got, sizeof(got)), -ENOENT);
    assert_int_equal(ufs_close(&rd), 0);
    assert_int_equal(ufs_remove(&r.u, "b"), -ENOENT);
    assert_int_equal(ufs_pread(&r.u, "b", 0, got, 1), -ENOENT);
    assert_int_equal(space_free(&r.u), (uint64_t)r.u.ndata * 4096);
    rig_remount(&r);
    assert_int_equal(ufs_remove(&r.u, "b"), -ENOENT);
    assert_int_equal(space_free(&r.u), (uint64_t)r.u.ndata * 4096);
    rig_close(&r);
}

struct seen {
    int n;
    char names[8][UFS_NAME_MAX + 1];
    uint64_t sizes[8];
};

static int on_file(void *ctx, const char *name, uint64_t size)
{
    struct seen *s = ctx;
    if (s->n == 8)
        return -E2BIG;
    strcpy(s->names[s->n], name);
    s->sizes[s->n++] = size;
    return 0;
}

static int stop_at_first(void *ctx, const char *name, uint64_t size)
{
    (void)name;
    (void)size;
    ++*(int *)ctx;
    return 42;
}

static void test_list(void **state)
{
    struct rig r;
    struct seen s = {0};
    uint8_t d[5000];
    int calls = 0;
    (void)state;

    rig_open(&r, 256 * KIB, 0, 256 * KIB);
    fill(d, sizeof(d), 9);
    assert_int_equal(ufs_list(&r.u, on_file, &s), 0);
    assert_int_equal(s.n, 0);
    put_file(&r.u, "one", d, 1);
    put_file(&r.u, "two", d, 5000);
    put_file(&r.u, "three", d, 0);
    assert_int_equal(ufs_list(&r.u, on_file, &s), 0);
    assert_int_equal(s.n, 3);
    for (int i = 0; i < 3; i++) {
        uint64_t want = strcmp(s.names[i], "one") == 0   ? 1
                        : strcmp(s.names[i], "two") == 0 ? 5000
                                                         : 0;
        assert_int_equal(s.sizes[i], want);
    }
    assert_int_equal(ufs_list(&r.u, stop_at_first, &calls), 42);
    assert_int_equal(calls, 1);
    rig_close(&r);
}

static void test_space(void **state)
{
    struct rig r;
    struct ufs_file w;
    uint64_t fr, total;
    uint8_t blk[4096], blk2[4096];
    (void)state;

    rig_open(&r, 128 * KIB, 0, 128 * KIB);
    fill(blk, sizeof(blk), 10);
    assert_int_equal(ufs_space(&r.u, &fr, &total), 0);
    assert_int_equal(fr, total);
    assert_int_equal(total, (uint64_t)r.u.ndata * 4096);

    /* Honest: a new file can take exactly what ufs_space reports, not a byte more. */
    assert_int_equal(ufs_open(&r.u, &w, "fill", UFS_WRONLY | UFS_CREAT), 0);
    for (uint64_t at = 0; at < fr; at += sizeof(blk))
        assert_int_equal(ufs_write(&w, blk, sizeof(blk)), (ssize_t)sizeof(blk));
    assert_int_equal(space_free(&r.u), 0);
    assert_int_equal(ufs_write(&w, blk, 1), -ENOSPC);
    assert_int_equal(ufs_sync(&w), 0);
    assert_int_equal(ufs_write(&w, blk, 1), -ENOSPC);
    assert_int_equal(ufs_close(&w), 0);
    struct ufs_stat st;
    assert_int_equal(ufs_stat(&r.u, "fill", &st), 0);
    assert_int_equal(st.size, fr);
    rig_remount(&r);
    assert_int_equal(space_free(&r.u), 0);
    assert_int_equal(ufs_pread(&r.u, "fill", fr - 4096, blk2, sizeof(blk2)), 4096);
    assert_memory_equal(blk, blk2, sizeof(blk));
    assert_int_equal(ufs_remove(&r.u, "fill"), 0);
    assert_int_equal(space_free(&r.u), total);
    rig_close(&r);
}

static void test_space_enospc(void **state)
{
    struct rig r;
    struct ufs_file w, w2;
    uint64_t fr;
    uint8_t *d = malloc(128 * KIB);
    (void)state;

    assert_non_null(d);
    fill(d, 128 * KIB, 11);
    rig_open(&r, 128 * KIB, 0, 128 * KIB);
    fr = space_free(&r.u);
    put_file(&r.u, "keep", d, 5000);
    assert_int_equal(space_free(&r.u), fr - 2 * 4096);

    /* A write needing more blocks than are free fails whole: nothing of it becomes visible. */
    assert_int_equal(ufs_open(&r.u, &w, "big", UFS_WRONLY | UFS_CREAT), 0);
    assert_int_equal(ufs_write(&w, d, 8192), 8192);
    assert_int_equal(ufs_sync(&w), 0);
    uint64_t left = space_free(&r.u);
    assert_int_equal(ufs_write(&w, d + 8192, left + 1), -ENOSPC);
    assert_int_equal(space_free(&r.u), left);
    assert_int_equal(ufs_write(&w, d + 8192, left), (ssize_t)left);
    assert_int_equal(space_free(&r.u), 0);
    /* A second writer cannot have the blocks the first one holds unsynced. */
    assert_int_equal(ufs_open(&r.u, &w2, "other", UFS_WRONLY | UFS_CREAT), 0);
    assert_int_equal(ufs_write(&w2, d, 1), -ENOSPC);
    assert_int_equal(ufs_abort(&w2), 0);
    assert_int_equal(ufs_close(&w), 0);
    check_file(&r.u, "big", d, 8192 + left);
    check_file(&r.u, "keep", d, 5000);
    rig_remount(&r);
    assert_int_equal(space_free(&r.u), 0);
    check_file(&r.u, "big", d, 8192 + left);

    /* Remove: the space comes back and can be filled again. */
    assert_int_equal(ufs_remove(&r.u, "big"), 0);
    assert_int_equal(space_free(&r.u), fr - 2 * 4096);
    put_file(&r.u, "again", d, fr - 2 * 4096);
    assert_int_equal(space_free(&r.u), 0);
    rig_remount(&r);
    check_file(&r.u, "again", d, fr - 2 * 4096);
    check_file(&r.u, "keep", d, 5000);
    rig_close(&r);
    free(d);
}

static void test_names(void **state)
{
    struct rig r;
    struct ufs_file w;
    char at_max[UFS_NAME_MAX + 1], over[UFS_NAME_MAX + 2];
    uint8_t d[100];
    (void)state;

    rig_open(&r, 256 * KIB, 0, 256 * KIB);
    fill(d, sizeof(d), 12);
    memset(at_max, 'n', UFS_NAME_MAX);
    at_max[UFS_NAME_MAX] = 0;
    memset(over, 'o', UFS_NAME_MAX + 1);
    over[UFS_NAME_MAX + 1] = 0;
    put_file(&r.u, at_max, d, sizeof(d));
    assert_int_equal(ufs_open(&r.u, &w, over, UFS_WRONLY | UFS_CREAT), -EINVAL);
    assert_int_equal(ufs_open(&r.u, &w, "", UFS_WRONLY | UFS_CREAT), -EINVAL);
    assert_int_equal(ufs_open(&r.u, &w, NULL, UFS_WRONLY | UFS_CREAT), -EINVAL);
    assert_int_equal(ufs_rename(&r.u, at_max, over), -EINVAL);
    assert_int_equal(ufs_remove(&r.u, over), -EINVAL);
    assert_int_equal(ufs_stat(&r.u, over, &(struct ufs_stat){0}), -EINVAL);
    /* Bad flag combinations. */
    assert_int_equal(ufs_open(&r.u, &w, "x", UFS_CREAT), -EINVAL);
    assert_int_equal(ufs_open(&r.u, &w, "x", UFS_RDONLY | UFS_WRONLY), -EINVAL);
    assert_int_equal(ufs_open(&r.u, &w, "x", UFS_RDONLY | UFS_TRUNC), -EINVAL);
    assert_int_equal(ufs_open(&r.u, &w, "x", UFS_WRONLY | 64), -EINVAL);
    rig_remount(&r);
    check_file(&r.u, at_max, d, sizeof(d));
    rig_close(&r);
}

static void test_max_files(void **state)
{
    struct rig r;
    struct ufs_file w;
    char name[UFS_NAME_MAX + 1];
    uint8_t d[64];
    (void)state;

    /* 64 files with the longest names: the largest table the snapshot must hold. */
    rig_open(&r, 512 * KIB, 0, 512 * KIB);
    fill(d, sizeof(d), 13);
    name[UFS_NAME_MAX] = 0;
    for (int i = 0; i < UFS_MAX_FILES; i++) {
        memset(name, 'a' + i % 26, UFS_NAME_MAX);
        snprintf(name, sizeof(name), "%02d", i);
        name[2] = 'x';
        put_file(&r.u, name, d, (size_t)i);
    }
    assert_int_equal(ufs_open(&r.u, &w, "one-too-many", UFS_WRONLY | UFS_CREAT), -ENFILE);
    /* Churn until the log wraps into the other half twice, then check everything. */
    uint32_t rev = r.u.rev;
    memset(name, 'a', UFS_NAME_MAX);
    snprintf(name, sizeof(name), "%02d", 0);
    name[2] = 'x';
    for (int i = 0; r.u.rev < rev + 2; i++) {
        assert_true(i < 10000);
        put_file(&r.u, name, d, (size_t)(i % 64));
    }
    put_file(&r.u, name, d, 0);
    rig_remount(&r);
    for (int i = 0; i < UFS_MAX_FILES; i++) {
        memset(name, 'a' + i % 26, UFS_NAME_MAX);
        snprintf(name, sizeof(name), "%02d", i);
        name[2] = 'x';
        check_file(&r.u, name, d, (size_t)i);
    }
    assert_int_equal(ufs_remove(&r.u, name), 0);
    assert_int_equal(ufs_open(&r.u, &w, "now-fits", UFS_WRONLY | UFS_CREAT), 0);
    assert_int_equal(ufs_close(&w), 0);
    rig_close(&r);
}

static void test_unsynced_lost(void **state)
{
    struct rig r;
    struct ufs_file w, w2;
    uint8_t a[9000], b[9000];
    (void)state;

    rig_open(&r, 256 * KIB, 0, 256 * KIB);
    fill(a, sizeof(a), 14);
    fill(b, sizeof(b), 15);
    put_file(&r.u, "old", a, sizeof(a));
    uint64_t fr = space_free(&r.u);
    assert_int_equal(ufs_open(&r.u, &w, "old", UFS_WRONLY | UFS_TRUNC), 0);
    assert_int_equal(ufs_write(&w, b, sizeof(b)), (ssize_t)sizeof(b));
    assert_int_equal(ufs_open(&r.u, &w2, "new", UFS_WRONLY | UFS_CREAT), 0);
    assert_int_equal(ufs_write(&w2, b, 100), 100);
    rig_remount(&r); /* power cut: neither handle synced */
    assert_int_equal(ufs_close(&w), -EBADF);
    assert_int_equal(ufs_abort(&w2), -EBADF);
    check_file(&r.u, "old", a, sizeof(a));
    check_file(&r.u, "new", b, 0);
    assert_int_equal(space_free(&r.u), fr);
    rig_close(&r);
}

static void test_persistence_offset_region(void **state)
{
    struct rig r;
    uint8_t a[20000], b[300], *outside;
    (void)state;

    /* The area sits in the middle of the device; the bytes around it are never touched. */
    rig_open(&r, 512 * KIB, 64 * KIB, 256 * KIB);
    ufs_unmount(&r.u);
    outside = malloc(512 * KIB);
    assert_non_null(outside);
    fill(outside, 512 * KIB, 16);
    assert_int_equal(flash_write(&r.f, 0, outside, 64 * KIB), 0);
    assert_int_equal(flash_write(&r.f, 320 * KIB, outside + 320 * KIB, 192 * KIB), 0);
    assert_int_equal(ufs_mount(&r.u, &r.f, r.off, r.size), 0);
    fill(a, sizeof(a), 17);
    fill(b, sizeof(b), 18);
    for (int i = 0; i < 300; i++) {
        put_file(&r.u, "a", a, sizeof(a) - (size_t)i);
        put_file(&r.u, "b", b, (size_t)i);
    }
    rig_remount(&r);
    check_file(&r.u, "a", a, sizeof(a) - 299);
    check_file(&r.u, "b", b, 299);
    assert_memory_equal(flash_data(&r.f), outside, 64 * KIB);
    assert_memory_equal(flash_data(&r.f) + 320 * KIB, outside + 320 * KIB, 192 * KIB);
    /* Misaligned or too small regions are refused. */
    ufs_unmount(&r.u);
    assert_int_equal(ufs_mount(&r.u, &r.f, 100, 256 * KIB), -EINVAL);
    assert_int_equal(ufs_mount(&r.u, &r.f, 0, 6 * 4096), -EINVAL);
    assert_int_equal(ufs_mount(&r.u, &r.f, 0, 1024 * KIB), -EINVAL);
    assert_int_equal(ufs_mount(&r.u, &r.f, r.off, r.size), 0);
    check_file(&r.u, "a", a, sizeof(a) - 299);
    free(outside);
    rig_close(&r);
}

/* ---- corruption --------------------------------------------------------------------------- */

static void test_corrupt_record_ignored(void **state)
{
    struct rig r;
    struct ufs_file w;
    uint8_t a[5000], b[7000];
    (void)state;

    rig_open(&r, 256 * KIB, 0, 256 * KIB);
    fill(a, sizeof(a), 19);
    fill(b, sizeof(b), 20);
    put_file(&r.u, "x", a, sizeof(a));
    put_file(&r.u, "y", b, 100);
    assert_int_equal(ufs_open(&r.u, &w, "x", UFS_WRONLY | UFS_TRUNC), 0);
    assert_int_equal(ufs_write(&w, b, sizeof(b)), (ssize_t)sizeof(b));
    uint32_t start = r.u.log_pos, half = r.u.off + (uint32_t)r.u.cur * r.u.half_bytes;
    assert_int_equal(ufs_close(&w), 0);
    uint32_t end = r.u.log_pos;
    assert_true(end > start);

    /* Clear one bit of the newest record's size field (7000 -> 6992: still well formed, same
     * block count, so only the CRC can tell): the record is ignored, x keeps its old content. */
    uint32_t at = half + start + 8;
    assert_int_equal(flash_data(&r.f)[at], 7000 & 0xFF);
    uint8_t byte = (uint8_t)(flash_data(&r.f)[at] & ~8u);
    assert_int_equal(flash_prog(&r.f, at, &byte, 1), 0);
    rig_remount(&r);
    check_file(&r.u, "x", a, sizeof(a));
    check_file(&r.u, "y", b, 100);

    /* The junk after the last good record forces the next commit into the other half. */
    int cur = r.u.cur;
    put_file(&r.u, "z", b, 3000);
    assert_int_not_equal(r.u.cur, cur);
    rig_remount(&r);
    check_file(&r.u, "x", a, sizeof(a));
    check_file(&r.u, "z", b, 3000);
    assert_int_equal(space_free(&r.u), (uint64_t)(r.u.ndata - 2 - 1 - 1) * 4096);
    rig_close(&r);
}

static void test_format_garbage(void **state)
{
    struct rig r;
    uint8_t *junk = malloc(128 * KIB), d[100];
    (void)state;

    assert_non_null(junk);
    fill(junk, 128 * KIB, 21);
    struct flash_geom g = {.size = 128 * KIB};
    memset(&r, 0, sizeof(r));
    r.size = 128 * KIB;
    assert_int_equal(flash_open_mem(&r.f, &g), 0);
    assert_int_equal(flash_write(&r.f, 0, junk, 128 * KIB), 0);
    assert_int_equal(ufs_mount(&r.u, &r.f, 0, 128 * KIB), 0); /* unreadable: formatted */
    struct seen s = {0};
    assert_int_equal(ufs_list(&r.u, on_file, &s), 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(space_free(&r.u), (uint64_t)r.u.ndata * 4096);
    fill(d, sizeof(d), 22);
    put_file(&r.u, "f", d, sizeof(d));
    rig_remount(&r);
    check_file(&r.u, "f", d, sizeof(d));
    free(junk);
    rig_close(&r);
}

/* ---- scale -------------------------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_16mib_file(void **state)
{
    struct rig r;
    struct ufs_file w;
    const size_t total = 16 * MIB, chunk = 64 * KIB;
    uint8_t *d = malloc(total), *got = malloc(total);
    (void)state;

    assert_non_null(d);
    assert_non_null(got);
    fill(d, total, 23);
    rig_open(&r, 20 * MIB, 0, 20 * MIB);
    double t0 = now_s();
    assert_int_equal(ufs_open(&r.u, &w, "update.pkg", UFS_WRONLY | UFS_CREAT | UFS_TRUNC), 0);
    for (size_t at = 0; at < total; at += chunk) {
        assert_int_equal(ufs_write(&w, d + at, chunk), (ssize_t)chunk);
        if ((at + chunk) % (256 * KIB) == 0)
            assert_int_equal(ufs_sync(&w), 0); /* a download's periodic commit */
    }
    assert_int_equal(ufs_close(&w), 0);
    double t1 = now_s();
    print_message("    16 MiB written with 64 syncs in %.3f s (%llu flash ops)\n", t1 - t0,
                  (unsigned long long)flash_ops(&r.f));
    assert_true(t1 - t0 < 1.0);
    assert_int_equal(ufs_pread(&r.u, "update.pkg", 0, got, total), (ssize_t)total);
    assert_memory_equal(got, d, total);
    rig_remount(&r);
    memset(got, 0, total);
    assert_int_equal(ufs_pread(&r.u, "update.pkg", 0, got, total), (ssize_t)total);
    assert_memory_equal(got, d, total);
    assert_int_equal(r.u.ent[0].next, 1); /* one contiguous extent */
    rig_close(&r);
    free(d);
    free(got);
}

/* ---- syncs against the table ----------------------------------------------------------------
 * A sync derives the new extent list and the free map from what changed since the last sync;
 * a mount derives both from the whole table. They must agree at every point. */

/* The used map is exactly the union of the table's extents (no block twice), pending blocks are
 * not used, the free count is what neither map holds, and every extent list is maximal runs
 * unless it came from a replay (after a mount). */
static void check_maps(const struct ufs *u, bool maximal)
{
    size_t words = (u->ndata + 63) / 64;
    uint64_t *want = calloc(words, sizeof(uint64_t));
    uint32_t busy = 0;

    assert_non_null(want);
    for (int s = 0; s < UFS_MAX_FILES; s++) {
        const struct ufs_ent *e = &u->ent[s];
        uint64_t blocks = 0;
        if (!e->used)
            continue;
        for (uint32_t i = 0; i < e->next; i++) {
            if (maximal && i + 1 < e->next)
                assert_int_not_equal(e->ext[i].start + e->ext[i].count, e->ext[i + 1].start);
            for (uint32_t k = 0; k < e->ext[i].count; k++) {
                uint32_t b = e->ext[i].start + k;
                assert_false((want[b / 64] >> (b % 64)) & 1);
                want[b / 64] |= (uint64_t)1 << (b % 64);
            }
            blocks += e->ext[i].count;
        }
        assert_int_equal(blocks, (e->size + UFS_BLOCK - 1) / UFS_BLOCK);
    }
    for (size_t w = 0; w < words; w++) {
        assert_int_equal(u->used[w], want[w]);
        assert_int_equal(u->used[w] & u->pending[w], 0);
        busy += (uint32_t)__builtin_popcountll(want[w] | u->pending[w]);
    }
    assert_int_equal(u->nfree, u->ndata - busy);
    free(want);
}

static void test_sync_against_table(void **state)
{
    struct rig r;
    struct ufs_file w;
    const size_t max = 400 * KIB;
    uint8_t *d = malloc(max), *want = calloc(1, max);
    size_t have = 0; /* committed size of "f" */
    (void)state;

    assert_non_null(d);
    assert_non_null(want);
    fill(d, max, 31);
    rig_open(&r, MIB, 0, MIB);
    /* a file in the way, removed later: the download's blocks come in more than one run */
    put_file(&r.u, "a", d, 100 * KIB);
    /* a truncating download in odd pieces, a sync every third write */
    assert_int_equal(ufs_open(&r.u, &w, "f", UFS_WRONLY | UFS_CREAT | UFS_TRUNC), 0);
    for (size_t at = 0, i = 0; at < 200 * KIB; i++) {
        size_t n = 200 * KIB - at < 7000 ? 200 * KIB - at : 7000;
        assert_int_equal(ufs_write(&w, d + at, n), (ssize_t)n);
        at += n;
        check_maps(&r.u, true);
        if (i % 3 == 2 || at == 200 * KIB) {
            assert_int_equal(ufs_sync(&w), 0);
            memcpy(want, d, at);
            have = at;
            check_maps(&r.u, true);
            check_file(&r.u, "f", want, have);
        }
        if (at == 70000) {
            assert_int_equal(ufs_remove(&r.u, "a"), 0);
            check_maps(&r.u, true);
        }
    }
    assert_int_equal(ufs_close(&w), 0);
    /* overwrite from 0: copy on write of the first blocks, then of blocks further in */
    assert_int_equal(ufs_open(&r.u, &w, "f", UFS_WRONLY), 0);
    assert_int_equal(ufs_write(&w, d + 300 * KIB, 5000), 5000);
    assert_int_equal(ufs_sync(&w), 0);
    memcpy(want, d + 300 * KIB, 5000);
    check_maps(&r.u, true);
    check_file(&r.u, "f", want, have);
    assert_int_equal(ufs_write(&w, d + 310 * KIB, 30 * KIB), 30 * KIB);
    assert_int_equal(ufs_close(&w), 0);
    memcpy(want + 5000, d + 310 * KIB, 30 * KIB);
    check_maps(&r.u, true);
    check_file(&r.u, "f", want, have);
    /* append: in place into the tail block, then new blocks; an abort loses the unsynced rest */
    assert_int_equal(ufs_open(&r.u, &w, "f", UFS_WRONLY | UFS_APPEND), 0);
    assert_int_equal(ufs_write(&w, d + 200 * KIB, 9000), 9000);
    assert_int_equal(ufs_sync(&w), 0);
    memcpy(want + have, d + 200 * KIB, 9000);
    have += 9000;
    check_maps(&r.u, true);
    assert_int_equal(ufs_write(&w, d, 20000), 20000);
    check_maps(&r.u, true);
    assert_int_equal(ufs_abort(&w), 0);
    check_maps(&r.u, true);
    check_file(&r.u, "f", want, have);
    /* a mount rebuilds the same maps from the log */
    uint32_t nfree = r.u.nfree;
    rig_remount(&r);
    check_maps(&r.u, false);
    assert_int_equal(r.u.nfree, nfree);
    check_file(&r.u, "f", want, have);
    /* and a truncating rewrite frees the old blocks */
    put_file(&r.u, "f", d, 50 * KIB);
    check_maps(&r.u, true);
    check_file(&r.u, "f", d, 50 * KIB);
    rig_close(&r);
    free(d);
    free(want);
}

/* ---- power-loss sweep ----------------------------------------------------------------------
 * A model of the committed files runs in lock step with the scenario. When a step fails (the
 * flash died), the remounted area must equal the model just before or just after that step. */

#define SW_FILES 8
#define SW_MAX   (64 * KIB)

struct sw_file {
    char name[8];
    uint8_t *data;
    size_t len;
};

struct sw_model {
    int n;
    struct sw_file f[SW_FILES];
};

enum sw_op { SW_OPEN, SW_WRITE, SW_SYNC, SW_CLOSE, SW_ABORT, SW_RENAME, SW_REMOVE };

struct sw_step {
    enum sw_op op;
    const char *a, *b;
    int flags;
    uint32_t len;
};

static const struct sw_step sw_scenario[] = {
    {SW_OPEN, "A", NULL, UFS_WRONLY | UFS_CREAT, 0},
    {SW_WRITE, NULL, NULL, 0, 3000},
    {SW_SYNC, NULL, NULL, 0, 0},
    {SW_WRITE, NULL, NULL, 0, 6000}, /* crosses two block boundaries */
    {SW_SYNC, NULL, NULL, 0, 0},
    {SW_WRITE, NULL, NULL, 0, 2500},
    {SW_CLOSE, NULL, NULL, 0, 0},
    {SW_RENAME, "A", "B", 0, 0}, /* over an existing B */
    {SW_REMOVE, "C", NULL, 0, 0},
    {SW_OPEN, "B", NULL, UFS_WRONLY | UFS_APPEND, 0},
    {SW_WRITE, NULL, NULL, 0, 5000}, /* in place into B's last block, then new blocks */
    {SW_SYNC, NULL, NULL, 0, 0},
    {SW_WRITE, NULL, NULL, 0, 100},
    {SW_ABORT, NULL, NULL, 0, 0},
    {SW_OPEN, "B", NULL, UFS_WRONLY | UFS_APPEND, 0}, /* junk tail: copy on write */
    {SW_WRITE, NULL, NULL, 0, 700},
    {SW_CLOSE, NULL, NULL, 0, 0},
    {SW_OPEN, "D", NULL, UFS_WRONLY, 0}, /* overwrite the head, keep the tail */
    {SW_WRITE, NULL, NULL, 0, 300},
    {SW_CLOSE, NULL, NULL, 0, 0},
    {SW_OPEN, "E", NULL, UFS_WRONLY | UFS_CREAT | UFS_TRUNC, 0},
    {SW_WRITE, NULL, NULL, 0, 9000},
    {SW_CLOSE, NULL, NULL, 0, 0},
    {SW_OPEN, "B", NULL, UFS_WRONLY | UFS_TRUNC, 0},
    {SW_WRITE, NULL, NULL, 0, 4500},
    {SW_CLOSE, NULL, NULL, 0, 0},
    {SW_RENAME, "E", "F", 0, 0},
    {SW_REMOVE, "D", NULL, 0, 0},
};

static void sw_free(struct sw_model *m)
{
    for (int i = 0; i < m->n; i++)
        free(m->f[i].data);
    m->n = 0;
}

static void sw_copy(struct sw_model *dst, const struct sw_model *src)
{
    sw_free(dst);
    for (int i = 0; i < src->n; i++) {
        dst->f[i] = src->f[i];
        dst->f[i].data = malloc(SW_MAX);
        assert_non_null(dst->f[i].data);
        memcpy(dst->f[i].data, src->f[i].data, src->f[i].len);
    }
    dst->n = src->n;
}

static struct sw_file *sw_find(struct sw_model *m, const char *name)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->f[i].name, name) == 0)
            return &m->f[i];
    return NULL;
}

static void sw_add(struct sw_model *m, const char *name, const uint8_t *data, size_t len)
{
    struct sw_file *f = &m->f[m->n++];
    snprintf(f->name, sizeof(f->name), "%s", name);
    f->data = malloc(SW_MAX);
    assert_non_null(f->data);
    memcpy(f->data, data, len);
    f->len = len;
}

static void sw_del(struct sw_model *m, const char *name)
{
    struct sw_file *f = sw_find(m, name);
    free(f->data);
    *f = m->f[--m->n];
}

/* Does the mounted area hold exactly the files of m? */
static bool sw_equal(struct ufs *u, const struct sw_model *m, uint8_t *tmp)
{
    struct seen s = {0};
    if (ufs_list(u, on_file, &s) || s.n != m->n)
        return false;
    for (int i = 0; i < m->n; i++) {
        struct ufs_stat st;
        if (ufs_stat(u, m->f[i].name, &st) || st.size != m->f[i].len)
            return false;
        if (ufs_pread(u, m->f[i].name, 0, tmp, SW_MAX) != (ssize_t)m->f[i].len ||
            memcmp(tmp, m->f[i].data, m->f[i].len) != 0)
            return false;
    }
    return true;
}

/* Runs the scenario on u and the model m. Returns the index of the first failing step (m is
 * then the state after it, pre the state before it) or the step count. With states, records the
 * model after each step (states[i + 1]) and the flash op count at its end (ops_after[i]). */
static size_t sw_run(struct ufs *u, struct sw_model *m, struct sw_model *pre,
                     struct sw_model *states, uint64_t *ops_after)
{
    struct ufs_file fh;
    uint8_t *pend = malloc(SW_MAX), data[16 * KIB];
    size_t plen = 0, pos = 0, i;
    const char *open_name = NULL;
    char cur[8] = "";

    assert_non_null(pend);
    for (i = 0; i < sizeof(sw_scenario) / sizeof(sw_scenario[0]); i++) {
        const struct sw_step *s = &sw_scenario[i];
        int rc = 0;
        sw_copy(pre, m);
        switch (s->op) {
        case SW_OPEN: {
            snprintf(cur, sizeof(cur), "%s", s->a);
            open_name = cur;
            if (!sw_find(m, s->a))
                sw_add(m, s->a, data, 0); /* UFS_CREAT commits the empty file */
            struct sw_file *f = sw_find(m, s->a);
            plen = (s->flags & UFS_TRUNC) ? 0 : f->len;
            memcpy(pend, f->data, plen);
            pos = (s->flags & UFS_APPEND) ? plen : 0;
            rc = ufs_open(u, &fh, s->a, s->flags);
            break;
        }
        case SW_WRITE:
            fill(data, s->len, (uint32_t)i);
            memcpy(pend + pos, data, s->len);
            pos += s->len;
            if (pos > plen)
                plen = pos;
            rc = (int)ufs_write(&fh, data, s->len);
            rc = rc == (int)s->len ? 0 : rc < 0 ? rc : -EIO;
            break;
        case SW_SYNC:
        case SW_CLOSE: {
            struct sw_file *f = sw_find(m, open_name);
            memcpy(f->data, pend, plen);
            f->len = plen;
            rc = s->op == SW_SYNC ? ufs_sync(&fh) : ufs_close(&fh);
            break;
        }
        case SW_ABORT:
            rc = ufs_abort(&fh);
            break;
        case SW_RENAME:
            if (sw_find(m, s->b))
                sw_del(m, s->b);
            snprintf(sw_find(m, s->a)->name, 8, "%s", s->b);
            rc = ufs_rename(u, s->a, s->b);
            break;
        case SW_REMOVE:
            sw_del(m, s->a);
            rc = ufs_remove(u, s->a);
            break;
        }
        if (rc) {
            if (s->op != SW_OPEN && s->op != SW_CLOSE && s->op != SW_ABORT)
                ufs_abort(&fh); /* release a writer's memory; harmless otherwise */
            break;
        }
        if (states) {
            sw_copy(&states[i + 1], m);
            ops_after[i] = flash_ops(u->f);
        }
    }
    free(pend);
    return i;
}

struct sw_ctx {
    uint32_t region;
    uint8_t *image; /* the device before the scenario */
    struct sw_model initial;
};

/* Builds the starting device: files B, C, D, and a log churned to near its end so that the
 * scenario's commits compact into the other half part way through. */
static void sw_setup(struct sw_ctx *c)
{
    struct rig r;
    uint8_t d[8000];

    rig_open(&r, c->region, 0, c->region);
    fill(d, sizeof(d), 100);
    put_file(&r.u, "B", d, 5000);
    sw_add(&c->initial, "B", d, 5000);
    fill(d, sizeof(d), 101);
    put_file(&r.u, "C", d, 3000);
    sw_add(&c->initial, "C", d, 3000);
    fill(d, sizeof(d), 102);
    put_file(&r.u, "D", d, 4100);
    sw_add(&c->initial, "D", d, 4100);
    while (r.u.log_pos < r.u.half_bytes - 200) {
        assert_int_equal(ufs_rename(&r.u, "D", "Dx"), 0);
        assert_int_equal(ufs_rename(&r.u, "Dx", "D"), 0);
    }
    c->image = malloc(c->region);
    assert_non_null(c->image);
    memcpy(c->image, flash_data(&r.f), c->region);
    rig_close(&r);
}

static void sw_fresh(struct sw_ctx *c, struct rig *r)
{
    struct flash_geom g = {.size = c->region};

    memset(r, 0, sizeof(*r));
    assert_int_equal(flash_open_mem(&r->f, &g), 0);
    assert_int_equal(flash_write(&r->f, 0, c->image, c->region), 0);
    flash_power_on(&r->f);
    r->off = 0;
    r->size = c->region;
    assert_int_equal(ufs_mount(&r->u, &r->f, 0, c->region), 0);
    assert_int_equal(flash_ops(&r->f), 0); /* mounting a good area writes nothing */
}

static void test_power_loss_sweep(void **state)
{
    static const enum flash_fault kinds[] = {FLASH_CUT_BEFORE, FLASH_CUT_AFTER, FLASH_CUT_TORN_PROG,
                                             FLASH_CUT_TORN_ERASE, FLASH_CUT_SKIP_ERASE};
    enum { NSTEPS = sizeof(sw_scenario) / sizeof(sw_scenario[0]) };
    const size_t nsteps = NSTEPS;
    struct sw_ctx c = {.region = 128 * KIB};
    struct sw_model m = {0}, pre = {0}, states[NSTEPS + 1];
    uint64_t ops_after[NSTEPS];
    struct rig r;
    uint8_t *tmp = malloc(SW_MAX), nd[5000];
    unsigned long runs = 0, as_old = 0, as_new = 0, compactions = 0;
    (void)state;

    assert_non_null(tmp);
    fill(nd, sizeof(nd), 200);
    sw_setup(&c);

    /* The clean run counts the operations and checks the model itself. */
    sw_fresh(&c, &r);
    int rev0 = (int)r.u.rev;
    memset(states, 0, sizeof(states));
    sw_copy(&m, &c.initial);
    sw_copy(&states[0], &c.initial);
    assert_int_equal(sw_run(&r.u, &m, &pre, states, ops_after), nsteps);
    uint64_t nops = flash_ops(&r.f);
    assert_true((int)r.u.rev == rev0 + 1); /* the scenario compacts once */
    assert_true(sw_equal(&r.u, &m, tmp));
    rig_remount(&r);
    assert_true(sw_equal(&r.u, &m, tmp));
    rig_close(&r);

    double t0 = now_s();
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        for (uint64_t n = 1; n <= nops; n++) {
            sw_fresh(&c, &r);
            uint32_t rev = r.u.rev;
            sw_copy(&m, &c.initial);
            flash_arm(&r.f, n, kinds[k], (uint32_t)(n * 2654435761u) ^ (uint32_t)k);
            size_t failed = sw_run(&r.u, &m, &pre, NULL, NULL);
            assert_true(flash_dead(&r.f));
            /* The step that op n belongs to; the error shows there, or later when the cut op
             * itself reported success (AFTER, SKIP_ERASE). */
            size_t cut = 0;
            while (ops_after[cut] < n)
                cut++;
            assert_true(failed >= cut);
            if (kinds[k] != FLASH_CUT_AFTER && kinds[k] != FLASH_CUT_SKIP_ERASE)
                assert_int_equal(failed, cut);
            rig_remount(&r);
            compactions += r.u.rev != rev;
            bool old = sw_equal(&r.u, &states[cut], tmp);
            bool new = sw_equal(&r.u, &states[cut + 1], tmp);
            if (!old && !new)
                fail_msg("kind %zu op %llu (step %zu): area is neither before nor after", k,
                         (unsigned long long)n, cut);
            as_old += old;
            as_new += new && !old;
            /* Still usable, and no block leaked: free = total - blocks of the files. */
            put_file(&r.u, "new", nd, sizeof(nd));
            check_file(&r.u, "new", nd, sizeof(nd));
            uint64_t blocks = 0;
            for (int i = 0; i < UFS_MAX_FILES; i++)
                if (r.u.ent[i].used)
                    blocks += (r.u.ent[i].size + 4095) / 4096;
            assert_int_equal(space_free(&r.u), (r.u.ndata - blocks) * 4096);
            rig_remount(&r);
            check_file(&r.u, "new", nd, sizeof(nd));
            rig_close(&r);
            runs++;
        }
    }
    print_message("    sweep: %llu ops x 5 kinds = %lu runs in %.2f s (%lu old, %lu new, "
                  "%lu after compaction)\n",
                  (unsigned long long)nops, runs, now_s() - t0, as_old, as_new, compactions);
    sw_free(&m);
    sw_free(&pre);
    for (size_t i = 0; i <= nsteps; i++)
        sw_free(&states[i]);
    sw_free(&c.initial);
    free(c.image);
    free(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_write_read),
        cmocka_unit_test(test_append_resync),
        cmocka_unit_test(test_truncate_and_overwrite),
        cmocka_unit_test(test_abort_and_junk_tail),
        cmocka_unit_test(test_rename_remove),
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_space),
        cmocka_unit_test(test_space_enospc),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_max_files),
        cmocka_unit_test(test_unsynced_lost),
        cmocka_unit_test(test_persistence_offset_region),
        cmocka_unit_test(test_corrupt_record_ignored),
        cmocka_unit_test(test_format_garbage),
        cmocka_unit_test(test_16mib_file),
        cmocka_unit_test(test_sync_against_table),
        cmocka_unit_test(test_power_loss_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
