/*
 * test_delta.c: unit tests of the delta codecs: firmware/delta.c (segment decoders),
 * firmware/delta_bsdiff40.c (BSDIFF40 reader) and tools/delta_enc.c (encoders). Round trips
 * over firmware-like image pairs made by a seeded generator (scattered edits, inserted and
 * removed runs, recompile-like pointer shifts), staging and in-place windows, each codec forced,
 * corruption and truncation of patches, BSDIFF40 patches made by the bsdiff CLI, and the size
 * claim of the design. Not tested here: the package container and the flash writes.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bzlib.h>
#include <cmocka.h>
#include <zstd.h>

#include "firmware/delta.h"
#include "test/lib/pairgen.h"
#include "tools/delta_enc.h"

#define SEG     65536u
#define KIB     1024u
#define MIB     (1024u * 1024u)

/* ---- a generator of firmware-like images and their next versions ---------------------------- */

/* The pairs come from the shared test generator (test/lib/pairgen.c), with the tests' mix. */
static uint8_t *tg_mutate(struct pairgen_rng *r, const uint8_t *src, size_t n,
                          const struct pairgen_edit *ed, size_t *out_len)
{
    uint8_t *t = pairgen_mutate(r, src, n, ed, &pairgen_mix_test, out_len);

    assert_non_null(t);
    return t;
}

static uint8_t *tg_new_image(uint64_t seed, size_t n)
{
    struct pairgen_rng r = {seed};
    uint8_t *p = malloc(n ? n : 1);

    assert_non_null(p);
    pairgen_image(&r, p, n, n, &pairgen_mix_test);
    return p;
}

/* ---- round trips ------------------------------------------------------------------------------
 */

struct rt_result {
    size_t patch_total;
    uint64_t stats[DELTA_CODEC_COUNT];
};

/*
 * Encodes tgt against src in segments of seg bytes (delta_enc_segment, or one forced codec if
 * force >= 0) and decodes each from exact-size copies, so ASan sees any access outside the
 * window or the patch. In place: segment i may only reference src[i * seg, sn).
 */
static void roundtrip(const uint8_t *src, size_t sn, const uint8_t *tgt, size_t tn, size_t seg,
                      int level, bool inplace, int force, struct rt_result *res)
{
    struct delta_enc e;
    struct delta_dec d;
    size_t off = 0;

    memset(res, 0, sizeof(*res));
    assert_int_equal(delta_enc_init(&e, src, sn, level), 0);
    assert_int_equal(delta_dec_init(&d, seg), 0);
    do {
        size_t len = tn - off < seg ? tn - off : seg, smin = inplace ? (off < sn ? off : sn) : 0;
        enum delta_codec c = DELTA_RAW;
        uint8_t *patch = NULL, *out, *win;
        size_t plen = 0;
        struct delta_src w;

        if (force >= 0) {
            c = (enum delta_codec)force;
            assert_int_equal(delta_enc_segment_codec(&e, c, tgt, off, len, smin, &patch, &plen), 0);
        } else {
            assert_int_equal(delta_enc_segment(&e, tgt, off, len, smin, &c, &patch, &plen), 0);
        }
        res->patch_total += plen;
        res->stats[c]++;
        out = malloc(len ? len : 1);
        win = malloc(sn - smin ? sn - smin : 1);
        assert_non_null(out);
        assert_non_null(win);
        if (sn - smin)
            memcpy(win, src + smin, sn - smin);
        w.base = win;
        w.len = sn - smin;
        assert_int_equal(delta_dec_segment(&d, c, &w, patch, plen, out, len), 0);
        if (len) /* an empty target may come as a NULL pointer: no arithmetic on it */
            assert_memory_equal(out, tgt + off, len);
        free(out);
        free(win);
        free(patch);
        off += len;
    } while (off < tn);
    delta_dec_free(&d);
    delta_enc_free(&e);
}

static void pair_roundtrip(uint64_t seed, size_t n, const struct pairgen_edit *ed, size_t seg, int level,
                           bool inplace, struct rt_result *res)
{
    struct pairgen_rng r = {seed * 7919u + 1};
    uint8_t *src = tg_new_image(seed, n), *tgt;
    size_t tn;

    tgt = tg_mutate(&r, src, n, ed, &tn);
    roundtrip(src, n, tgt, tn, seg, level, inplace, -1, res);
    free(src);
    free(tgt);
}

static const struct pairgen_edit ed_scatter = {2000, 3, 2, false};
static const struct pairgen_edit ed_recompile = {200, 4, 2, true};

static void test_roundtrip_edges(void **state)
{
    static const uint8_t one_a[1] = {0x41}, one_b[1] = {0x42};
    struct rt_result res;
    uint8_t *img = tg_new_image(5, 100000);

    (void)state;
    roundtrip(NULL, 0, NULL, 0, SEG, 3, false, -1, &res);   /* empty to empty */
    roundtrip(one_a, 1, one_b, 1, SEG, 3, false, -1, &res); /* one byte each */
    roundtrip(one_a, 1, NULL, 0, SEG, 3, false, -1, &res);
    roundtrip(NULL, 0, img, 100000, SEG, 3, false, -1, &res); /* no source: not a multiple */
    roundtrip(img, 100000, one_b, 1, SEG, 3, false, -1, &res);
    roundtrip(img, 100000, img, 100000, SEG, 3, false, -1, &res); /* identical */
    assert_true(res.patch_total < 200);
    roundtrip(img, 100000, img + 1, 99999, 4096, 3, true, -1, &res); /* in place, shifted */
    free(img);
}

static void test_roundtrip_random(void **state)
{
    struct rt_result res;

    (void)state;
    for (uint64_t seed = 1; seed <= 24; seed++) {
        struct pairgen_rng r = {seed};
        size_t n = 1 + pairgen_below(&r, 300 * KIB);
        size_t seg = seed % 3 == 0 ? 4096 : SEG;

        pair_roundtrip(seed, n, seed % 2 ? &ed_scatter : &ed_recompile, seg, seed % 5 ? 3 : 19,
                       false, &res);
    }
}

static void test_roundtrip_1mib(void **state)
{
    struct rt_result res;

    (void)state;
    pair_roundtrip(101, MIB, &ed_recompile, SEG, 9, false, &res);
    print_message("1 MiB recompile-like: %zu bytes (raw %llu zstd-src %llu bsdiff-zstd %llu)\n",
                  res.patch_total, (unsigned long long)res.stats[DELTA_RAW],
                  (unsigned long long)res.stats[DELTA_ZSTD_SRC],
                  (unsigned long long)res.stats[DELTA_BSDIFF_ZSTD]);
    pair_roundtrip(102, MIB, &ed_scatter, SEG, 9, false, &res);
}

static void test_roundtrip_16mib(void **state)
{
    struct rt_result res;

    (void)state;
    pair_roundtrip(103, 16 * MIB, &ed_recompile, SEG, 3, false, &res);
    print_message("16 MiB recompile-like at level 3: %zu bytes\n", res.patch_total);
}

static void test_roundtrip_inplace(void **state)
{
    struct rt_result res;

    (void)state;
    for (uint64_t seed = 200; seed < 206; seed++) {
        struct pairgen_rng r = {seed};
        size_t n = 4096 + pairgen_below(&r, 400 * KIB);

        pair_roundtrip(seed, n, seed % 2 ? &ed_scatter : &ed_recompile, seed % 3 ? SEG : 16384, 3,
                       true, &res);
        /* segment 0 has the whole source as its window; no later one may use BSDIFF_ZSTD */
        assert_true(res.stats[DELTA_BSDIFF_ZSTD] <= 1);
    }
}

/* Each codec forced on every segment of a few pairs, including tiny segments. */
static void test_forced_codecs(void **state)
{
    (void)state;
    for (uint64_t seed = 300; seed < 304; seed++) {
        struct pairgen_rng r = {seed * 31};
        size_t n = seed == 300 ? 3 : 1 + pairgen_below(&r, 200 * KIB), tn;
        uint8_t *src = tg_new_image(seed, n), *tgt = tg_mutate(&r, src, n, &ed_recompile, &tn);

        for (int c = 0; c < DELTA_CODEC_COUNT; c++) {
            struct rt_result res;

            roundtrip(src, n, tgt, tn, seed % 2 ? SEG : 1000, 5, false, c, &res);
            assert_int_equal(res.stats[c],
                             (tn + (seed % 2 ? SEG : 1000) - 1) / (seed % 2 ? SEG : 1000) +
                                 (tn == 0));
            if (c == DELTA_ZSTD_SRC)
                roundtrip(src, n, tgt, tn, 4096, 5, true, c, &res);
        }
        free(src);
        free(tgt);
    }
}

/*
 * A segment copied from the very start of a 64 MiB source must reach it: the encoder's window
 * covers the source, and the decoder accepts the 128 MiB window the frame declares. The rest of
 * the source is a short repeating pattern, so even level 1's hash table keeps the head.
 */
static void test_far_reference(void **state)
{
    size_t n = 64 * MIB;
    uint8_t *src = malloc(n), *out = malloc(SEG), *patch = NULL;
    struct pairgen_rng r = {77};
    struct delta_enc e;
    struct delta_dec d;
    struct delta_src w;
    size_t plen = 0;

    (void)state;
    assert_non_null(src);
    assert_non_null(out);
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v = i < SEG ? pairgen_next(&r) : (i / 8) % 61;

        memcpy(src + i, &v, 8);
    }
    assert_int_equal(delta_enc_init(&e, src, n, 1), 0);
    assert_int_equal(delta_dec_init(&d, SEG), 0);
    assert_int_equal(delta_enc_segment_codec(&e, DELTA_ZSTD_SRC, src, 0, SEG, 0, &patch, &plen), 0);
    print_message("64 MiB source, segment = its first 64 KiB: ZSTD_SRC patch %zu bytes\n", plen);
    assert_true(plen < 1024);
    w.base = src;
    w.len = n;
    assert_int_equal(delta_dec_segment(&d, DELTA_ZSTD_SRC, &w, patch, plen, out, SEG), 0);
    assert_memory_equal(out, src, SEG);
    free(patch);
    delta_enc_free(&e);
    delta_dec_free(&d);
    free(src);
    free(out);
}

/* ---- hostile patches ---------------------------------------------------------------------------
 */

/*
 * Every byte of the patch flipped, and the patch cut at every length: the decoder answers
 * -EBADMSG or 0 with exactly out_len bytes (a flipped literal can decode "fine": the package's
 * per-segment CRC catches that, not the codec). Truncation is always -EBADMSG.
 */
static void corrupt_one(struct delta_dec *d, enum delta_codec c, const struct delta_src *w,
                        const uint8_t *patch, size_t plen, const uint8_t *want, size_t len,
                        unsigned *wrong_ok)
{
    uint8_t *out = malloc(len ? len : 1);

    assert_non_null(out);
    for (size_t i = 0; i < plen; i++) {
        uint8_t *p = malloc(plen);
        int rc;

        assert_non_null(p);
        memcpy(p, patch, plen);
        p[i] ^= (uint8_t)(1u << (i % 8));
        rc = delta_dec_segment(d, c, w, p, plen, out, len);
        assert_true(rc == 0 || rc == -EBADMSG);
        if (rc == 0 && memcmp(out, want, len) != 0)
            ++*wrong_ok;
        free(p);
    }
    for (size_t cut = 0; cut < plen; cut++) {
        uint8_t *p = malloc(cut ? cut : 1);

        assert_non_null(p);
        memcpy(p, patch, cut);
        assert_int_equal(delta_dec_segment(d, c, w, p, cut, out, len), -EBADMSG);
        free(p);
    }
    free(out);
}

static void test_corruption(void **state)
{
    size_t n = 12000, tn, seg = 4096;
    struct pairgen_rng r = {400};
    uint8_t *src = tg_new_image(400, n), *tgt = tg_mutate(&r, src, n, &ed_recompile, &tn);
    struct delta_enc e;
    struct delta_dec d;
    struct delta_src w = {src, n};
    unsigned wrong_ok = 0;

    (void)state;
    assert_int_equal(delta_enc_init(&e, src, n, 19), 0);
    assert_int_equal(delta_dec_init(&d, seg), 0);
    for (int c = 0; c < DELTA_CODEC_COUNT; c++) {
        uint8_t *patch = NULL, *out = malloc(seg + 1);
        size_t plen = 0, len = tn < seg ? tn : seg;

        assert_non_null(out);
        assert_int_equal(
            delta_enc_segment_codec(&e, (enum delta_codec)c, tgt, 0, len, 0, &patch, &plen), 0);
        corrupt_one(&d, (enum delta_codec)c, &w, patch, plen, tgt, len, &wrong_ok);
        /* wrong out_len, unknown codec, out_len beyond seg_max */
        assert_int_equal(delta_dec_segment(&d, c, &w, patch, plen, out, len - 1), -EBADMSG);
        if (len < seg)
            assert_int_equal(delta_dec_segment(&d, c, &w, patch, plen, out, len + 1), -EBADMSG);
        assert_int_equal(delta_dec_segment(&d, DELTA_CODEC_COUNT, &w, patch, plen, out, len),
                         -EINVAL);
        assert_int_equal(delta_dec_segment(&d, (enum delta_codec) - 1, &w, patch, plen, out, len),
                         -EINVAL);
        assert_int_equal(delta_dec_segment(&d, c, &w, patch, plen, out, seg + 1), -EINVAL);
        /* a window too short for the references: -EBADMSG, never a read outside it */
        if (c == DELTA_BSDIFF_ZSTD || c == DELTA_ZSTD_SRC) {
            struct delta_src shortw = {src, 100};
            int rc = delta_dec_segment(&d, c, &shortw, patch, plen, out, len);

            assert_true(rc == -EBADMSG || (rc == 0 && c == DELTA_ZSTD_SRC));
        }
        /* the decoder is still good after all that */
        assert_int_equal(delta_dec_segment(&d, c, &w, patch, plen, out, len), 0);
        assert_memory_equal(out, tgt, len);
        free(patch);
        free(out);
    }
    print_message("corruption: %u flipped patches decoded to other bytes (no checksum in a "
                  "segment; the package CRC catches them)\n",
                  wrong_ok);
    delta_enc_free(&e);
    delta_dec_free(&d);
    free(src);
    free(tgt);
}

/* Hand-made BSDIFF_ZSTD bodies: the checks of the stream layout itself. */
static void test_bsdiff_zstd_layout(void **state)
{
    static const uint8_t src[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    struct delta_src w = {src, sizeof(src)};
    struct delta_dec d;
    struct {
        const char *what;
        uint8_t body[40];
        size_t len, out_len;
        int rc;
    } cases[] = {
        /* ctrl (4,0,0): add 4 bytes with zero diff -> 1 2 3 4 */
        {"ok", {3, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0}, 19, 4, 0},
        /* add beyond the source */
        {"add>src",
         {3, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
         24,
         9,
         -EBADMSG},
        /* seek below 0: (0,1,-1) */
        {"seek<0", {3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 9}, 16, 1, -EBADMSG},
        /* seek beyond the end: (0,1,+9) */
        {"seek>len", {3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 18, 9}, 16, 1, -EBADMSG},
        /* overlong varint */
        {"varint",
         {11,   0,    0,    0,    0,    0,    0,    0,    0,    0,    0,   0,
          0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02},
         23,
         0,
         -EBADMSG},
        /* truncated triple */
        {"cut", {2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 14, 0, -EBADMSG},
        /* lengths that do not add up */
        {"sum", {3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0}, 16, 1, -EBADMSG},
        /* extra left over */
        {"left", {3, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0, 7, 7}, 17, 2, -EBADMSG},
        /* header too short */
        {"hdr", {0, 0, 0}, 3, 0, -EBADMSG},
        /* empty ctrl, empty target */
        {"empty", {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 12, 0, 0},
    };

    (void)state;
    assert_int_equal(delta_dec_init(&d, 64), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t frame[2 * 256], out[64];
        size_t fl = ZSTD_compress(frame, 256, cases[i].body, cases[i].len, 1);
        int rc;

        assert_false(ZSTD_isError(fl));
        rc = delta_dec_segment(&d, DELTA_BSDIFF_ZSTD, &w, frame, fl, out, cases[i].out_len);
        if (rc != cases[i].rc)
            print_message("case %s: rc %d\n", cases[i].what, rc);
        assert_int_equal(rc, cases[i].rc);
        if (i == 0) {
            assert_memory_equal(out, src, 4);
            /* two frames back to back are not one patch */
            memcpy(frame + fl, frame, fl);
            assert_int_equal(delta_dec_segment(&d, DELTA_BSDIFF_ZSTD, &w, frame, 2 * fl, out, 4),
                             -EBADMSG);
        }
    }
    delta_dec_free(&d);
}

/* ---- BSDIFF40 via the bsdiff CLI ----------------------------------------------------------------
 */

struct mem_patch {
    const uint8_t *p;
    size_t len;
    unsigned reads;
};

static int mem_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    struct mem_patch *m = ctx;

    if (off > m->len || len > m->len - off)
        return -EIO;
    memcpy(buf, m->p + off, len);
    m->reads++;
    return 0;
}

static void write_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    uint8_t *p;
    long sz;

    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    p = malloc(sz ? (size_t)sz : 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return p;
}

/* Runs bsdiff old new patch in dir; returns the patch. */
static uint8_t *make_bsdiff(const char *dir, const uint8_t *a, size_t an, const uint8_t *b,
                            size_t bn, size_t *plen)
{
    char o[256], nw[256], pa[256];
    pid_t pid;
    int st;

    snprintf(o, sizeof(o), "%s/old", dir);
    snprintf(nw, sizeof(nw), "%s/new", dir);
    snprintf(pa, sizeof(pa), "%s/patch", dir);
    write_file(o, a, an);
    write_file(nw, b, bn);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl("/usr/bin/bsdiff", "bsdiff", o, nw, pa, (char *)NULL);
        _exit(127);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return read_file(pa, plen);
}

/* Decodes a whole BSDIFF40 patch in chunks of the given sizes (cycled); 0 or the error. */
static int bspatch_all(const uint8_t *patch, size_t plen, const uint8_t *src, size_t sn,
                       uint8_t **out, uint64_t *out_len, const size_t *chunks, size_t nchunks,
                       size_t *ram)
{
    struct mem_patch m = {patch, plen, 0};
    struct delta_src w = {src, sn};
    struct delta_bspatch *b = NULL;
    uint64_t ns = 0, done = 0;
    uint8_t *o;
    int rc = delta_bspatch_open(&b, mem_read, &m, plen, &w, &ns);

    *out = NULL;
    if (rc)
        return rc;
    if (ns > 64 * MIB) {
        delta_bspatch_close(b);
        return -EFBIG;
    }
    o = malloc(ns ? ns : 1);
    assert_non_null(o);
    for (size_t i = 0; done < ns && rc == 0; i++) {
        size_t c = chunks[i % nchunks];

        if (c > ns - done)
            c = ns - done;
        rc = delta_bspatch_read(b, o + done, c);
        done += c;
    }
    if (ram)
        *ram = delta_bspatch_ram(b);
    delta_bspatch_close(b);
    if (rc) {
        free(o);
        return rc;
    }
    *out = o;
    *out_len = ns;
    return 0;
}

static void put_offtin(uint8_t *p, int64_t v)
{
    uint64_t m = v < 0 ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v;

    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(m >> (8 * i));
    if (v < 0)
        p[7] |= 0x80;
}

static void test_bsdiff40(void **state)
{
    static const size_t odd[] = {1, 7, 4093, 65537, 3, 100000};
    char dir[] = "/tmp/test_delta.XXXXXX";
    static const size_t sizes[] = {1, 5000, 100000, MIB};

    (void)state;
    if (access("/usr/bin/bsdiff", X_OK) != 0) {
        print_message("SKIP: /usr/bin/bsdiff missing (apt-get install bsdiff)\n");
        skip();
    }
    assert_non_null(mkdtemp(dir));
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct pairgen_rng r = {500 + i};
        uint8_t *src = tg_new_image(500 + i, sizes[i]), *tgt, *patch, *out;
        size_t tn, plen, ram = 0;
        uint64_t on;

        tgt = tg_mutate(&r, src, sizes[i], i % 2 ? &ed_scatter : &ed_recompile, &tn);
        patch = make_bsdiff(dir, src, sizes[i], tgt, tn, &plen);
        assert_int_equal(bspatch_all(patch, plen, src, sizes[i], &out, &on, odd, 6, &ram), 0);
        assert_int_equal(on, tn);
        assert_memory_equal(out, tgt, tn);
        if (sizes[i] == MIB)
            print_message("BSDIFF40 1 MiB: patch %zu bytes, reader RAM %zu bytes\n", plen, ram);
        free(out);
        free(src);
        free(tgt);
        free(patch);
    }
    /* target 0 bytes (the CLI cannot mmap an empty file, so the patch is made here) */
    {
        static const uint8_t one[1] = {9};
        uint8_t patch[32 + 3 * 64], *out;
        size_t plen = 32;
        uint64_t on;

        memcpy(patch, "BSDIFF40", 8);
        memset(patch + 8, 0, 24);
        for (int i = 0; i < 3; i++) {
            unsigned int zl = 64;

            assert_int_equal(
                BZ2_bzBuffToBuffCompress((char *)patch + plen, &zl, (char *)"", 0, 9, 0, 0), BZ_OK);
            if (i < 2)
                put_offtin(patch + 8 + 8 * i, zl);
            plen += zl;
        }
        assert_int_equal(bspatch_all(patch, plen, one, 1, &out, &on, odd, 6, NULL), 0);
        assert_int_equal(on, 0);
        free(out);
        /* the same with one triple (0,0,0) too many in the control stream */
        {
            static const char zero3[24];
            uint8_t p2[32 + 3 * 128];
            unsigned int zl = 128;
            size_t l2;

            memcpy(p2, patch, 32);
            assert_int_equal(
                BZ2_bzBuffToBuffCompress((char *)p2 + 32, &zl, (char *)zero3, 24, 9, 0, 0), BZ_OK);
            put_offtin(p2 + 8, zl);
            l2 = 32 + zl;
            memcpy(p2 + l2, patch + 32 + (plen - 32) / 3, 2 * (plen - 32) / 3);
            l2 += 2 * (plen - 32) / 3;
            assert_int_equal(bspatch_all(p2, l2, one, 1, &out, &on, odd, 6, NULL), -EBADMSG);
        }
    }
    {
        char cmd[300];

        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        assert_int_equal(system(cmd), 0);
    }
}

static void test_bsdiff40_corrupt(void **state)
{
    static const size_t whole[] = {SIZE_MAX};
    static const size_t odd[] = {13, 1, 511};
    char dir[] = "/tmp/test_delta.XXXXXX";
    struct pairgen_rng r = {600};
    uint8_t *src, *tgt, *patch, *p, *out;
    size_t n = 6000, tn, plen, bad = 0, okwrong = 0;
    uint64_t on;

    (void)state;
    if (access("/usr/bin/bsdiff", X_OK) != 0) {
        print_message("SKIP: /usr/bin/bsdiff missing\n");
        skip();
    }
    assert_non_null(mkdtemp(dir));
    src = tg_new_image(600, n);
    tgt = tg_mutate(&r, src, n, &ed_recompile, &tn);
    patch = make_bsdiff(dir, src, n, tgt, tn, &plen);
    p = malloc(plen + 1);
    assert_non_null(p);

    /* header fields */
    memcpy(p, patch, plen);
    p[3] = 'X';
    assert_int_equal(bspatch_all(p, plen, src, n, &out, &on, whole, 1, NULL), -EBADMSG);
    for (int f = 0; f < 3; f++) {
        memcpy(p, patch, plen);
        put_offtin(p + 8 + 8 * f, -5); /* negative length */
        assert_int_equal(bspatch_all(p, plen, src, n, &out, &on, whole, 1, NULL), -EBADMSG);
        memcpy(p, patch, plen);
        put_offtin(p + 8 + 8 * f, (int64_t)plen); /* beyond the patch (or the wrong new size) */
        assert_int_equal(bspatch_all(p, plen, src, n, &out, &on, whole, 1, NULL), -EBADMSG);
    }
    memcpy(p, patch, plen);
    put_offtin(p + 24, (int64_t)tn + 1); /* new size one more than the control covers */
    assert_int_equal(bspatch_all(p, plen, src, n, &out, &on, whole, 1, NULL), -EBADMSG);
    memcpy(p, patch, plen);
    put_offtin(p + 24, (int64_t)tn - 1); /* one less: the last triple overruns */
    assert_int_equal(bspatch_all(p, plen, src, n, &out, &on, whole, 1, NULL), -EBADMSG);
    /* trailing garbage and a source that is too short */
    memcpy(p, patch, plen);
    p[plen] = 0;
    assert_int_equal(bspatch_all(p, plen + 1, src, n, &out, &on, whole, 1, NULL), -EBADMSG);
    assert_int_equal(bspatch_all(patch, plen, src, n / 2, &out, &on, whole, 1, NULL), -EBADMSG);
    /* every byte flipped, every truncation */
    for (size_t i = 0; i < plen; i++) {
        int rc;

        memcpy(p, patch, plen);
        p[i] ^= (uint8_t)(1u << (i % 8));
        rc = bspatch_all(p, plen, src, n, &out, &on, odd, 3, NULL);
        assert_true(rc == 0 || rc == -EBADMSG || rc == -EFBIG);
        if (rc == 0) {
            okwrong += on != tn || memcmp(out, tgt, tn) != 0;
            free(out);
        } else {
            bad++;
        }
    }
    for (size_t cut = 0; cut < plen; cut++)
        assert_int_equal(bspatch_all(patch, cut, src, n, &out, &on, odd, 3, NULL), -EBADMSG);
    print_message("BSDIFF40 %zu-byte patch: %zu of %zu flips rejected, %zu decoded to other "
                  "bytes\n",
                  plen, bad, plen, okwrong);
    free(p);
    free(patch);
    free(src);
    free(tgt);
    {
        char cmd[300];

        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        assert_int_equal(system(cmd), 0);
    }
}

/* ---- the size claim
 * ------------------------------------------------------------------------------ */

static void test_size_claim(void **state)
{
    struct rt_result chosen, src_only, bs_only;
    struct pairgen_rng r = {700};
    size_t n = 4 * MIB, tn;
    uint8_t *src = tg_new_image(700, n), *tgt = tg_mutate(&r, src, n, &ed_recompile, &tn);
    struct delta_enc e;
    struct delta_dec d;

    (void)state;
    roundtrip(src, n, tgt, tn, SEG, 12, false, -1, &chosen);
    roundtrip(src, n, tgt, tn, SEG, 12, false, DELTA_ZSTD_SRC, &src_only);
    roundtrip(src, n, tgt, tn, SEG, 12, false, DELTA_BSDIFF_ZSTD, &bs_only);
    print_message("4 MiB recompile-like, level 12, 64 KiB segments: chosen %zu (zstd-src %llu, "
                  "bsdiff-zstd %llu segs), plain zstd-src %zu, bsdiff-zstd only %zu\n",
                  chosen.patch_total, (unsigned long long)chosen.stats[DELTA_ZSTD_SRC],
                  (unsigned long long)chosen.stats[DELTA_BSDIFF_ZSTD], src_only.patch_total,
                  bs_only.patch_total);
    assert_true(chosen.patch_total <= src_only.patch_total);
    /* the decoder's RAM bound: state plus scratch, about two segments and a DCtx */
    assert_int_equal(delta_enc_init(&e, src, n, 3), 0);
    assert_int_equal(delta_dec_init(&d, SEG), 0);
    print_message("delta_dec_ram at 64 KiB segments: %zu bytes\n", delta_dec_ram(&d));
    assert_true(delta_dec_ram(&d) < 2 * SEG + 256 * KIB);
    delta_dec_free(&d);
    delta_enc_free(&e);
    free(src);
    free(tgt);
}

static void test_full(void **state)
{
    uint8_t *img = tg_new_image(800, 200000), *patch, noise[5000];
    struct pairgen_rng r = {800};
    struct delta_dec d;
    enum delta_codec c;
    size_t plen;
    uint8_t out[SEG];

    (void)state;
    assert_int_equal(delta_dec_init(&d, SEG), 0);
    assert_int_equal(delta_enc_full(img, SEG, 19, &c, &patch, &plen), 0);
    assert_int_equal(c, DELTA_ZSTD);
    assert_int_equal(delta_dec_segment(&d, c, NULL, patch, plen, out, SEG), 0);
    assert_memory_equal(out, img, SEG);
    free(patch);
    for (size_t i = 0; i < sizeof(noise); i++)
        noise[i] = (uint8_t)pairgen_next(&r);
    assert_int_equal(delta_enc_full(noise, sizeof(noise), 19, &c, &patch, &plen), 0);
    assert_int_equal(c, DELTA_RAW);
    assert_int_equal(plen, sizeof(noise));
    assert_int_equal(delta_dec_segment(&d, c, NULL, patch, plen, out, sizeof(noise)), 0);
    assert_memory_equal(out, noise, sizeof(noise));
    free(patch);
    assert_int_equal(delta_enc_full(NULL, 0, 19, &c, &patch, &plen), 0);
    assert_int_equal(delta_dec_segment(&d, c, NULL, patch, plen, out, 0), 0);
    free(patch);
    assert_int_equal(delta_enc_full(img, 10, 0, &c, &patch, &plen), -EINVAL);
    {
        struct delta_dec d2;

        assert_int_equal(delta_dec_init(&d2, SIZE_MAX), -EINVAL);
    }
    assert_string_equal(delta_codec_name(DELTA_BSDIFF_ZSTD), "bsdiff-zstd");
    assert_string_equal(delta_codec_name(DELTA_CODEC_COUNT), "unknown");
    delta_dec_free(&d);
    free(img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_edges),
        cmocka_unit_test(test_roundtrip_random),
        cmocka_unit_test(test_roundtrip_1mib),
        cmocka_unit_test(test_roundtrip_16mib),
        cmocka_unit_test(test_roundtrip_inplace),
        cmocka_unit_test(test_forced_codecs),
        cmocka_unit_test(test_far_reference),
        cmocka_unit_test(test_corruption),
        cmocka_unit_test(test_bsdiff_zstd_layout),
        cmocka_unit_test(test_bsdiff40),
        cmocka_unit_test(test_bsdiff40_corrupt),
        cmocka_unit_test(test_size_claim),
        cmocka_unit_test(test_full),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
