/*
 * test_nv.c: unit tests of the NV settings store (storage/nv.c) on the flash model: the API,
 * bad inputs, compaction, persistence, corruption, and an exhaustive power-loss sweep (every
 * operation of a scenario crossing several compactions, every fault kind, plus a second cut
 * during the recovering mount). Not tested here: the flash model itself (test_flash.c).
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
#include <unistd.h>

#include <cmocka.h>

#include "storage/nv.h"

/* The smallest erase unit nv accepts is 580 bytes: small units keep the sweep fast. */
#define SMALL    1024u
#define DIGITS40 "0123456789012345678901234567890123456789"

static const struct flash_geom g_small2 = {2 * SMALL, SMALL, 256};
static const struct flash_geom g_big = {4 * 4096, 4096, 256};

static void mount_fresh(struct flash *f, struct nv *nv, const struct flash_geom *g)
{
    assert_int_equal(flash_open_mem(f, g), 0);
    assert_int_equal(nv_mount(nv, f, 0, g->size), 0);
}

/* Remount as after a reboot: RAM state dropped, flash kept. */
static void remount(struct flash *f, struct nv *nv)
{
    uint32_t off = nv->off, size = nv->units * nv->unit_size;

    nv_unmount(nv);
    flash_power_on(f);
    assert_int_equal(nv_mount(nv, f, off, size), 0);
}

static void expect_str(const struct nv *nv, const char *key, const char *want)
{
    char buf[NV_VAL_MAX + 1];
    int n = nv_get(nv, key, buf, NV_VAL_MAX);

    assert_int_equal(n, (int)strlen(want));
    buf[n] = '\0';
    assert_string_equal(buf, want);
}

static int count_keys(void *ctx, const char *key, const void *val, size_t len)
{
    (void)key;
    (void)val;
    (void)len;
    ++*(int *)ctx;
    return 0;
}

static int nkeys(const struct nv *nv)
{
    int n = 0;

    assert_int_equal(nv_foreach(nv, count_keys, &n), 0);
    return n;
}

static void test_basic(void **state)
{
    struct flash f;
    struct nv nv;
    struct nv_info in;
    int64_t v = 0;
    char buf[8];

    (void)state;
    mount_fresh(&f, &nv, &g_small2);
    assert_int_equal(nkeys(&nv), 0);
    assert_int_equal(nv_set(&nv, "apn", "cmnet", 5), 0);
    assert_int_equal(nv_set(&nv, "band", "B3", 2), 0);
    expect_str(&nv, "apn", "cmnet");
    assert_int_equal(nv_set(&nv, "apn", "ctnet", 5), 0);
    expect_str(&nv, "apn", "ctnet");
    assert_int_equal(nv_set(&nv, "empty", NULL, 0), 0);
    assert_int_equal(nv_get(&nv, "empty", buf, 0), 0);
    assert_int_equal(nv_set_i64(&nv, "boots", -1234567890123LL), 0);
    assert_int_equal(nv_get_i64(&nv, "boots", &v), 0);
    assert_true(v == -1234567890123LL);
    assert_int_equal(nv_get(&nv, "boots", buf, sizeof(buf)), 8);
    assert_int_equal(buf[0], (char)(-1234567890123LL & 0xff)); /* little-endian */
    assert_int_equal(nkeys(&nv), 4);
    assert_int_equal(nv_del(&nv, "band"), 0);
    assert_int_equal(nv_get(&nv, "band", buf, sizeof(buf)), -ENOENT);
    assert_int_equal(nkeys(&nv), 3);
    nv_info(&nv, &in);
    assert_int_equal(in.keys, 3);
    assert_int_equal(in.gen, 1);
    assert_int_equal(in.compactions, 0);

    remount(&f, &nv);
    expect_str(&nv, "apn", "ctnet");
    assert_int_equal(nv_get(&nv, "band", buf, sizeof(buf)), -ENOENT);
    assert_int_equal(nv_get_i64(&nv, "boots", &v), 0);
    assert_true(v == -1234567890123LL);
    assert_int_equal(nkeys(&nv), 3);
    assert_int_equal(flash_ops(&f), 0); /* a clean mount writes nothing */
    nv_unmount(&nv);
    flash_close(&f);
}

static void test_bad_inputs(void **state)
{
    struct flash f;
    struct nv nv;
    char big[NV_VAL_MAX + 1], key[40];
    int64_t v;
    int rc = 0;

    (void)state;
    memset(big, 'x', sizeof(big));
    mount_fresh(&f, &nv, &g_small2);
    assert_int_equal(nv_set(&nv, NULL, "a", 1), -EINVAL);
    assert_int_equal(nv_set(&nv, "", "a", 1), -EINVAL);
    memset(key, 'k', sizeof(key));
    key[NV_KEY_MAX + 1] = '\0';
    assert_int_equal(nv_set(&nv, key, "a", 1), -EINVAL);
    key[NV_KEY_MAX] = '\0';
    assert_int_equal(nv_set(&nv, key, "a", 1), 0);
    expect_str(&nv, key, "a");
    assert_int_equal(nv_set(&nv, "k", big, NV_VAL_MAX + 1), -EINVAL);
    assert_int_equal(nv_set(&nv, "k", NULL, 1), -EINVAL);
    assert_int_equal(nv_get(&nv, "nope", big, sizeof(big)), -ENOENT);
    assert_int_equal(nv_get(&nv, "", big, sizeof(big)), -EINVAL);
    assert_int_equal(nv_del(&nv, "nope"), -ENOENT);
    assert_int_equal(nv_get_i64(&nv, "nope", &v), -ENOENT);
    assert_int_equal(nv_set(&nv, "s", "abc", 3), 0);
    assert_int_equal(nv_get(&nv, "s", big, 2), -ENOSPC);
    assert_int_equal(nv_get_i64(&nv, "s", &v), -EINVAL);
    assert_int_equal(nv_set(&nv, "s", big, 9), 0);
    assert_int_equal(nv_get_i64(&nv, "s", &v), -EINVAL); /* longer than 8 */
    /* the live set must fit one unit: 2 x 536 bytes do not fit 1024 */
    assert_int_equal(nv_set(&nv, "v1", big, NV_VAL_MAX), 0);
    assert_int_equal(nv_set(&nv, "v2", big, NV_VAL_MAX), -ENOSPC);
    assert_int_equal(nv_set(&nv, "v1", big, NV_VAL_MAX - 1), 0); /* replacing still fits */
    assert_int_equal(nv_get(&nv, "v1", big, sizeof(big)), NV_VAL_MAX - 1);
    nv_unmount(&nv);
    flash_close(&f);

    /* NV_MAX_KEYS live keys, then -ENOSPC; deleting one makes room */
    mount_fresh(&f, &nv, &g_big);
    for (int i = 0; i < NV_MAX_KEYS && rc == 0; i++) {
        snprintf(key, sizeof(key), "%d", i);
        rc = nv_set(&nv, key, "", 0);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(nv_set(&nv, "one-more", "", 0), -ENOSPC);
    assert_int_equal(nv_set(&nv, "7", "x", 1), 0); /* an existing key is fine */
    assert_int_equal(nv_del(&nv, "7"), 0);
    assert_int_equal(nv_set(&nv, "one-more", "", 0), 0);
    remount(&f, &nv);
    assert_int_equal(nkeys(&nv), NV_MAX_KEYS);
    nv_unmount(&nv);

    /* regions: aligned, >= 2 units, inside the flash, units big enough */
    assert_int_equal(nv_mount(&nv, &f, 100, 2 * 4096), -EINVAL);
    assert_int_equal(nv_mount(&nv, &f, 0, 4096), -EINVAL);
    assert_int_equal(nv_mount(&nv, &f, 0, 4096 + 100), -EINVAL);
    assert_int_equal(nv_mount(&nv, &f, 3 * 4096, 2 * 4096), -EINVAL);
    assert_int_equal(nv_mount(&nv, NULL, 0, 2 * 4096), -EINVAL);
    flash_close(&f);
    {
        const struct flash_geom tiny = {4 * 512, 512, 256};

        assert_int_equal(flash_open_mem(&f, &tiny), 0);
        assert_int_equal(nv_mount(&nv, &f, 0, 4 * 512), -EINVAL);
        flash_close(&f);
    }
}

static void test_compaction(void **state)
{
    const struct flash_geom g = {4 * SMALL, SMALL, 128};
    struct flash f;
    struct nv nv;
    struct nv_info in;
    char val[64];
    int64_t v;
    uint32_t n;

    (void)state;
    /* a region that does not start at 0: units 1..3 */
    assert_int_equal(flash_open_mem(&f, &g), 0);
    assert_int_equal(nv_mount(&nv, &f, SMALL, 3 * SMALL), 0);
    assert_int_equal(nv_set(&nv, "keep", "me", 2), 0);
    for (int i = 0; i < 400; i++) {
        snprintf(val, sizeof(val), "value-%d-%.*s", i, i % 40, DIGITS40);
        assert_int_equal(nv_set(&nv, i % 2 ? "odd" : "even", val, strlen(val)), 0);
        assert_int_equal(nv_set_i64(&nv, "count", i), 0);
    }
    nv_info(&nv, &in);
    assert_true(in.compactions >= 10);
    assert_int_equal(in.keys, 4);
    expect_str(&nv, "keep", "me");
    for (uint32_t i = 0; i < SMALL; i++)
        assert_int_equal(flash_data(&f)[i], 0xff); /* outside the region: untouched */
    /* the rotation spreads the erases over the three units */
    assert_true(flash_wear(&f, 1) > 2 && flash_wear(&f, 2) > 2 && flash_wear(&f, 3) > 2);
    assert_int_equal(flash_wear(&f, 0), 0);

    remount(&f, &nv);
    expect_str(&nv, "keep", "me");
    snprintf(val, sizeof(val), "value-%d-%.*s", 399, 399 % 40, DIGITS40);
    expect_str(&nv, "odd", val);
    assert_int_equal(nv_get_i64(&nv, "count", &v), 0);
    assert_true(v == 399);
    nv_info(&nv, &in);
    assert_int_equal(in.keys, 4);
    /* deleting when the unit is full compacts without writing a tombstone (24 bytes here) */
    while (nv_info(&nv, &in), in.free >= 24)
        assert_int_equal(nv_set(&nv, "pad", "p", 1), 0); /* a 24-byte record */
    n = in.compactions;
    assert_int_equal(nv_del(&nv, "odd"), 0);
    nv_info(&nv, &in);
    assert_int_equal(in.compactions, n + 1);
    remount(&f, &nv);
    assert_int_equal(nv_get(&nv, "odd", val, sizeof(val)), -ENOENT);
    expect_str(&nv, "keep", "me");
    nv_unmount(&nv);
    flash_close(&f);
}

static void test_file_persistence(void **state)
{
    char dir[] = "/tmp/test_nv.XXXXXX", path[64], wear[80];
    struct flash f;
    struct nv nv;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/nv.bin", dir);
    snprintf(wear, sizeof(wear), "%s.wear", path);
    assert_int_equal(flash_open(&f, path, &g_small2), 0);
    assert_int_equal(nv_mount(&nv, &f, 0, g_small2.size), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(nv_set_i64(&nv, "n", i), 0);
    assert_int_equal(nv_set(&nv, "imei", "861234567890123", 15), 0);
    /* no unmount, no clean close of the NV: only the flash mapping goes away */
    flash_close(&f);
    assert_int_equal(flash_open(&f, path, &g_small2), 0);
    assert_int_equal(nv_mount(&nv, &f, 0, g_small2.size), 0);
    expect_str(&nv, "imei", "861234567890123");
    {
        int64_t v = 0;

        assert_int_equal(nv_get_i64(&nv, "n", &v), 0);
        assert_true(v == 99);
    }
    nv_unmount(&nv);
    flash_close(&f);
    unlink(path);
    unlink(wear);
    rmdir(dir);
}

/* Offset of the first record whose key is `key` (searched as bytes after a 20-byte header). */
static uint32_t find_record(const struct flash *f, uint32_t from, const char *key)
{
    const uint8_t *d = flash_data(f);
    size_t kl = strlen(key);

    for (uint32_t o = from; o + 20 + kl <= flash_geometry(f)->size; o++)
        if (d[o + 8] == kl && memcmp(d + o + 20, key, kl) == 0 && d[o] == 'N' && d[o + 1] == 'V')
            return o;
    fail_msg("record %s not found", key);
    return 0;
}

/* Clears bits of one byte in place: a legal program, so the flash API can play bit rot. */
static void rot(struct flash *f, uint32_t off, uint8_t clear)
{
    uint8_t b = flash_data(f)[off] & (uint8_t)~clear;

    assert_int_not_equal(b, flash_data(f)[off]);
    assert_int_equal(flash_prog(f, off, &b, 1), 0);
}

static void test_corruption(void **state)
{
    struct flash f;
    struct nv nv;
    char buf[16];

    (void)state;
    mount_fresh(&f, &nv, &g_small2);
    assert_int_equal(nv_set(&nv, "aaa", "1111", 4), 0);
    assert_int_equal(nv_set(&nv, "bbb", "old", 3), 0);
    assert_int_equal(nv_set(&nv, "bbb", "new", 3), 0);
    assert_int_equal(nv_set(&nv, "ccc", "3333", 4), 0);
    assert_int_equal(nv_set(&nv, "ddd", "4444", 4), 0);
    assert_int_equal(nv_set(&nv, "eee", "5555", 4), 0);
    /* a value byte of bbb=new: its CRC fails, the older bbb wins */
    rot(&f, find_record(&f, find_record(&f, 0, "bbb") + 1, "bbb") + 23 + 1, 0x01);
    /* the magic of ccc: its header is gone, the scan resyncs and finds ddd */
    rot(&f, find_record(&f, 0, "ccc"), 0x40);
    /* the length field of ddd: its header CRC fails */
    rot(&f, find_record(&f, 0, "ddd") + 10, 0x04);
    remount(&f, &nv);
    expect_str(&nv, "aaa", "1111");
    expect_str(&nv, "bbb", "old");
    assert_int_equal(nv_get(&nv, "ccc", buf, sizeof(buf)), -ENOENT);
    assert_int_equal(nv_get(&nv, "ddd", buf, sizeof(buf)), -ENOENT);
    expect_str(&nv, "eee", "5555");
    /* the mount compacted the garbage away; the store works and stays consistent */
    assert_true(flash_ops(&f) > 0);
    assert_int_equal(nv_set(&nv, "ccc", "again", 5), 0);
    remount(&f, &nv);
    expect_str(&nv, "ccc", "again");
    expect_str(&nv, "bbb", "old");
    assert_int_equal(nkeys(&nv), 4);
    assert_int_equal(flash_ops(&f), 0);
    nv_unmount(&nv);
    flash_close(&f);

    /* an unreadable region (garbage everywhere) is formatted */
    assert_int_equal(flash_open_mem(&f, &g_small2), 0);
    for (uint32_t o = 0; o < g_small2.size; o += 4) {
        uint8_t w[4] = {(uint8_t)(o * 31), (uint8_t)(o >> 3), 0x4e, (uint8_t)(o ^ 0x55)};

        assert_int_equal(flash_prog(&f, o, w, 4), 0);
    }
    assert_int_equal(nv_mount(&nv, &f, 0, g_small2.size), 0);
    assert_int_equal(nkeys(&nv), 0);
    assert_int_equal(nv_set(&nv, "x", "y", 1), 0);
    remount(&f, &nv);
    expect_str(&nv, "x", "y");
    nv_unmount(&nv);
    flash_close(&f);
}

static void test_dead_flash(void **state)
{
    struct flash f;
    struct nv nv;

    (void)state;
    mount_fresh(&f, &nv, &g_small2);
    assert_int_equal(nv_set(&nv, "a", "1", 1), 0);
    flash_kill(&f);
    assert_int_equal(nv_set(&nv, "a", "2", 1), -ECANCELED);
    assert_int_equal(nv_del(&nv, "a"), -ECANCELED);
    expect_str(&nv, "a", "1");
    nv_unmount(&nv);
    assert_int_equal(nv_mount(&nv, &f, 0, g_small2.size), 0); /* a clean mount only reads */
    expect_str(&nv, "a", "1");
    nv_unmount(&nv);
    flash_close(&f);
}

/* A failed write while the RAM state survives (the flash comes back without a reboot): the
 * next write must not append after the torn bytes. */
static void test_write_error_recovery(void **state)
{
    struct flash f;
    struct nv nv;
    char buf[8];

    (void)state;
    mount_fresh(&f, &nv, &g_small2);
    assert_int_equal(nv_set(&nv, "a", "1", 1), 0);
    flash_arm(&f, 1, FLASH_CUT_TORN_PROG, 5);
    assert_int_equal(nv_set(&nv, "b", "22222222", 8), -ECANCELED);
    flash_power_on(&f);
    assert_int_equal(nv_get(&nv, "b", buf, sizeof(buf)), -ENOENT);
    assert_int_equal(nv_set(&nv, "c", "3", 1), 0);
    assert_int_equal(nv_set(&nv, "b", "2", 1), 0);
    expect_str(&nv, "a", "1");
    remount(&f, &nv);
    expect_str(&nv, "a", "1");
    expect_str(&nv, "b", "2");
    expect_str(&nv, "c", "3");
    assert_int_equal(flash_ops(&f), 0);
    nv_unmount(&nv);
    flash_close(&f);
}

/* A stray programmed byte near the end of the active unit, past the last offset where a record
 * header fits: the mount must see it, or the append that reaches it fails. */
static void test_stray_tail(void **state)
{
    struct flash f;
    struct nv nv;
    struct nv_info in;
    uint8_t b = 0x00, big[NV_VAL_MAX];

    (void)state;
    memset(big, 'v', sizeof(big));
    mount_fresh(&f, &nv, &g_small2);
    assert_int_equal(nv_set(&nv, "a", "1", 1), 0); /* bytes 16..36 */
    nv_info(&nv, &in);
    assert_int_equal(flash_prog(&f, in.active * SMALL + 1010, &b, 1), 0);
    remount(&f, &nv);
    /* x: 533 bytes from 40 (padded to 576); y: 435 bytes from 576, its last byte at 1010 */
    assert_int_equal(nv_set(&nv, "x", big, NV_VAL_MAX), 0);
    assert_int_equal(nv_set(&nv, "y", big, 414), 0);
    expect_str(&nv, "a", "1");
    remount(&f, &nv);
    assert_int_equal(nv_get(&nv, "y", big, sizeof(big)), 414);
    nv_unmount(&nv);
    flash_close(&f);
}

/* ---- power-loss sweep ---------------------------------------------------------------- */

#define SW_KEYS  6
#define SW_STEPS 48
#define SW_VMAX  80

struct sw_state {
    bool has[SW_KEYS];
    uint32_t len[SW_KEYS];
    uint8_t val[SW_KEYS][SW_VMAX];
};

struct sw_step {
    bool del;
    int key;
    uint32_t len;
    uint8_t val[SW_VMAX];
};

struct sweep {
    struct flash_geom g;
    uint32_t off, size;
    uint8_t *start; /* flash image the scenario starts from */
    struct sw_step step[SW_STEPS];
    struct sw_state model[SW_STEPS + 1]; /* model[i] = state before step i */
    uint64_t cases, doubles, mounts;     /* cut once, cut again while recovering, mounts */
};

static const char *const sw_name[SW_KEYS] = {"k0", "k1", "k2", "k3", "k4", "k5"};

static uint32_t sw_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static int sw_apply(struct nv *nv, const struct sw_step *st)
{
    if (st->del)
        return nv_del(nv, sw_name[st->key]);
    return nv_set(nv, sw_name[st->key], st->val, st->len);
}

/* Fresh flash holding the start image, powered on, counter 0. */
static void sw_flash(const struct sweep *sw, struct flash *f, const uint8_t *img)
{
    assert_int_equal(flash_open_mem(f, &sw->g), 0);
    assert_int_equal(flash_write(f, 0, img, sw->g.size), 0);
    flash_power_on(f);
}

static void sw_build(struct sweep *sw)
{
    struct flash f;
    struct nv nv;
    uint32_t r = 0x2545f491u;

    memset(&sw->model[0], 0, sizeof(sw->model[0]));
    assert_int_equal(flash_open_mem(&f, &sw->g), 0);
    assert_int_equal(nv_mount(&nv, &f, sw->off, sw->size), 0);
    for (int k = 0; k < 4; k++) {
        struct sw_state *m = &sw->model[0];

        m->has[k] = true;
        m->len[k] = 10 + 5 * (uint32_t)k;
        memset(m->val[k], 'A' + k, m->len[k]);
        assert_int_equal(nv_set(&nv, sw_name[k], m->val[k], m->len[k]), 0);
    }
    sw->start = malloc(sw->g.size);
    assert_non_null(sw->start);
    memcpy(sw->start, flash_data(&f), sw->g.size);
    nv_unmount(&nv);
    flash_close(&f);

    for (int i = 0; i < SW_STEPS; i++) {
        struct sw_step *st = &sw->step[i];
        struct sw_state *m = &sw->model[i + 1];

        *m = sw->model[i];
        st->key = (int)(sw_rand(&r) % SW_KEYS);
        st->del = m->has[st->key] && sw_rand(&r) % 4 == 0;
        if (st->del) {
            m->has[st->key] = false;
            continue;
        }
        st->len = 1 + sw_rand(&r) % SW_VMAX;
        for (uint32_t j = 0; j < st->len; j++)
            st->val[j] = (uint8_t)sw_rand(&r);
        m->has[st->key] = true;
        m->len[st->key] = st->len;
        memcpy(m->val[st->key], st->val, st->len);
    }
}

static bool sw_match(const struct sw_state *m, int k, int rc, const uint8_t *buf)
{
    if (!m->has[k])
        return rc == -ENOENT;
    return rc == (int)m->len[k] && memcmp(buf, m->val[k], m->len[k]) == 0;
}

/* Checks that every key holds its state before step i, or (the key of step i only) after it.
 * i == SW_STEPS: everything ran; the final state. Returns NULL or what is wrong. */
static const char *sw_check(const struct sweep *sw, const struct nv *nv, int i)
{
    uint8_t buf[NV_VAL_MAX];
    int rc, n = 0, want = 0;

    for (int k = 0; k < SW_KEYS; k++) {
        rc = nv_get(nv, sw_name[k], buf, sizeof(buf));
        if (sw_match(&sw->model[i], k, rc, buf)) {
            want += sw->model[i].has[k];
            continue;
        }
        if (i < SW_STEPS && k == sw->step[i].key && sw_match(&sw->model[i + 1], k, rc, buf)) {
            want += sw->model[i + 1].has[k];
            continue;
        }
        return i < SW_STEPS && k == sw->step[i].key ? "interrupted key: neither old nor new"
                                                    : "an untouched key changed";
    }
    if (nv_foreach(nv, count_keys, &n) != 0 || n != want)
        return "unexpected keys";
    return NULL;
}

/* Mounts after a cut, checks old-or-new against step i, proves the store still works and that
 * the recovered state is stable across one more remount. */
static const char *sw_recover(struct sweep *sw, struct flash *f, int i)
{
    struct nv nv;
    const char *err;
    uint8_t buf[8];

    flash_power_on(f);
    sw->mounts++;
    if (nv_mount(&nv, f, sw->off, sw->size) != 0)
        return "mount failed";
    err = sw_check(sw, &nv, i);
    if (err)
        return err;
    if (nv_set(&nv, "zz", "ok", 2) != 0 || nv_get(&nv, "zz", buf, sizeof(buf)) != 2)
        return "store does not work after recovery";
    if (nv_del(&nv, "zz") != 0)
        return "delete after recovery";
    nv_unmount(&nv);
    flash_power_on(f);
    if (nv_mount(&nv, f, sw->off, sw->size) != 0)
        return "second mount failed";
    err = sw_check(sw, &nv, i);
    nv_unmount(&nv);
    return err;
}

/* Runs the scenario until its first error; returns the index of the failed step (or SW_STEPS). */
static int sw_run(const struct sweep *sw, struct nv *nv)
{
    for (int i = 0; i < SW_STEPS; i++)
        if (sw_apply(nv, &sw->step[i]) != 0)
            return i;
    return SW_STEPS;
}

static const char *const sw_kind_name[] = {"BEFORE", "AFTER", "TORN_PROG", "TORN_ERASE",
                                           "SKIP_ERASE"};

/* A second cut at every op of the recovering mount, then a clean mount. */
static void sw_double(struct sweep *sw, const uint8_t *img, int i, uint64_t n, int kind)
{
    struct flash f;
    struct nv nv;
    uint64_t m;
    const char *err;

    sw_flash(sw, &f, img);
    assert_int_equal(nv_mount(&nv, &f, sw->off, sw->size), 0);
    m = flash_ops(&f);
    nv_unmount(&nv);
    flash_close(&f);
    for (uint64_t j = 1; j <= m; j++) {
        for (int k2 = 0; k2 <= FLASH_CUT_SKIP_ERASE; k2++) {
            sw_flash(sw, &f, img);
            flash_arm(&f, j, (enum flash_fault)k2, (uint32_t)(j * 40503u + n));
            (void)nv_mount(&nv, &f, sw->off, sw->size);
            sw->doubles++;
            err = sw_recover(sw, &f, i);
            if (err)
                fail_msg("cut %s at op %u, then %s at mount op %u: %s", sw_kind_name[kind],
                         (unsigned)n, sw_kind_name[k2], (unsigned)j, err);
            flash_close(&f);
        }
    }
}

static void sw_sweep(struct sweep *sw)
{
    struct flash f;
    struct nv nv;
    struct nv_info in;
    uint64_t total, base;
    uint32_t compactions;
    uint8_t *img = malloc(sw->g.size);
    const char *err;
    int i;

    assert_non_null(img);
    sw_build(sw);
    /* clean run: count the scenario's operations, and prove it crosses two compactions */
    sw_flash(sw, &f, sw->start);
    assert_int_equal(nv_mount(&nv, &f, sw->off, sw->size), 0);
    base = flash_ops(&f);
    assert_int_equal(sw_run(sw, &nv), SW_STEPS);
    total = flash_ops(&f) - base;
    nv_info(&nv, &in);
    assert_true(in.compactions >= 2);
    compactions = in.compactions;
    assert_null(sw_check(sw, &nv, SW_STEPS));
    nv_unmount(&nv);
    flash_close(&f);

    for (uint64_t n = 1; n <= total; n++) {
        for (int kind = 0; kind <= FLASH_CUT_SKIP_ERASE; kind++) {
            int seeds = kind == FLASH_CUT_TORN_PROG || kind == FLASH_CUT_TORN_ERASE ? 3 : 1;

            for (int s = 0; s < seeds; s++) {
                sw_flash(sw, &f, sw->start);
                assert_int_equal(nv_mount(&nv, &f, sw->off, sw->size), 0);
                flash_arm(&f, n, (enum flash_fault)kind, (uint32_t)(n * 2654435761u + s));
                i = sw_run(sw, &nv);
                nv_unmount(&nv);
                sw->cases++;
                if (!flash_dead(&f))
                    fail_msg("%s at op %u never hit", sw_kind_name[kind], (unsigned)n);
                flash_power_on(&f);
                memcpy(img, flash_data(&f), sw->g.size);
                err = sw_recover(sw, &f, i);
                if (err)
                    fail_msg("%s at op %u (step %d, seed %d): %s", sw_kind_name[kind], (unsigned)n,
                             i, s, err);
                flash_close(&f);
                sw_double(sw, img, i, n, kind);
            }
        }
    }
    print_message("sweep: %u-byte units, %u-byte pages, region %u at %u: %u ops, %u compactions;"
                  " %u cases, %u double cuts, %u recovery mounts\n",
                  (unsigned)sw->g.erase_size, (unsigned)sw->g.page_size, (unsigned)sw->size,
                  (unsigned)sw->off, (unsigned)total, (unsigned)compactions, (unsigned)sw->cases,
                  (unsigned)sw->doubles, (unsigned)sw->mounts);
    free(sw->start);
    free(img);
}

static void test_powerloss_sweep_2units(void **state)
{
    struct sweep *sw = calloc(1, sizeof(*sw));

    (void)state;
    assert_non_null(sw);
    sw->g = g_small2;
    sw->off = 0;
    sw->size = g_small2.size;
    sw_sweep(sw);
    free(sw);
}

static void test_powerloss_sweep_3units(void **state)
{
    struct sweep *sw = calloc(1, sizeof(*sw));

    (void)state;
    assert_non_null(sw);
    sw->g = (struct flash_geom){4 * SMALL, SMALL, 128};
    sw->off = SMALL;
    sw->size = 3 * SMALL;
    sw_sweep(sw);
    free(sw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_compaction),
        cmocka_unit_test(test_file_persistence),
        cmocka_unit_test(test_corruption),
        cmocka_unit_test(test_dead_flash),
        cmocka_unit_test(test_write_error_recovery),
        cmocka_unit_test(test_stray_tail),
        cmocka_unit_test(test_powerloss_sweep_2units),
        cmocka_unit_test(test_powerloss_sweep_3units),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
