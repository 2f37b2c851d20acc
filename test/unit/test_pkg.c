/*
 * test_pkg.c: unit tests of the package container (firmware/pkg.c) and its generator
 * (tools/pack.c) on real packages built from generated images: delta, full, in-place and
 * MiniFOTA packages decode segment by segment to the target; every header byte and field,
 * every truncation and table corruption is refused with its own error; signatures. Not tested
 * here: the apply engine on flash (test_fota_apply.c) and the codecs' own edge cases.
 */
#include <errno.h>
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
#include <zlib.h>

#include "firmware/delta.h"
#include "firmware/fw_image.h"
#include "firmware/pkg.h"
#include "tools/cli.h"
#include "tools/pack.h"

/* Test keys (made with openssl ecparam -name prime256v1; never used for anything else). */
static const char key_a_priv[] =
    "-----BEGIN EC PRIVATE KEY-----\n"
    "MHcCAQEEIOtIoTFy5Iob2QLAKipxRQSt0V7mX8zyyGFD/bemAi21oAoGCCqGSM49\n"
    "AwEHoUQDQgAEC1Mbtu9TOnxTrc6vyfjsyBgoLJaPa/6NiQnCSoIDRxD/I7nB63MQ\n"
    "Aj3LfHLHEiCZprobvIfiQmXqqQE4NsMGYg==\n"
    "-----END EC PRIVATE KEY-----\n";
static const char key_a_pub[] = "-----BEGIN PUBLIC KEY-----\n"
                                "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEC1Mbtu9TOnxTrc6vyfjsyBgoLJaP\n"
                                "a/6NiQnCSoIDRxD/I7nB63MQAj3LfHLHEiCZprobvIfiQmXqqQE4NsMGYg==\n"
                                "-----END PUBLIC KEY-----\n";
static const char key_b_pub[] = "-----BEGIN PUBLIC KEY-----\n"
                                "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEQFnaqZuqmEHK1fEl5WhYubYmNjrs\n"
                                "oFp5iJyE7lN+FtOxKBykOqjL2d1057/plxX2nZhpDDE21SKk3jEvBtKxxQ==\n"
                                "-----END PUBLIC KEY-----\n";
static const char key_p384_pub[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEwLmdpqVJTK4Br3gE0JYFDjM8QY6TIY5M\n"
    "AfrWEDpc2R74bUxzNpQKkqUkVDtmtM2wG9oTTAEDYyDiLQyQrB5soShlwwpBItHP\n"
    "8QS6O7D+VGP6cb8FiyswVIyKEUhr+8Gv\n"
    "-----END PUBLIC KEY-----\n";

#define PROJECT  "EC200A"
#define BASELINE "EC200ACNLA"
#define REV_OLD  "EC200ACNLAR01A01M16"
#define REV_NEW  "EC200ACNLAR01A02M16"
#define LEVEL    3 /* fast; the container does not care which level made the frames */

/* Header offsets the tests poke at (firmware/pkg.h draws the map). */
enum {
    O_KIND = 8,
    O_FLAGS = 9,
    O_SEG_SIZE = 12,
    O_SEG_COUNT = 16,
    O_TABLE_CRC = 20,
    O_SOURCE_SIZE = 24,
    O_TARGET_SIZE = 32,
    O_SOURCE_CRC = 120,
    O_PROJECT = 128,
    O_BASELINE = 160,
    O_SOURCE_REV = 192,
    O_TARGET_REV = 256,
    O_TABLE_OFF = 320,
    O_PAYLOAD_OFF = 328,
    O_PAYLOAD_SIZE = 336,
    O_SIG_OFF = 344,
    O_SIG_SIZE = 352,
    O_CRC = 508,
};

struct blob {
    uint8_t *p;
    size_t len;
};

/* Built once for the whole group: images and the packages made from them. */
struct fix {
    struct blob old, new_img, mini_old, mini_new;
    struct blob delta, full, inplace, signed_delta, mini1, mini2;
};

/* ---- helpers --------------------------------------------------------------------------------- */

/* Little-endian field access of any width, to corrupt fields the way a bad download would. */
static uint32_t get_le(const uint8_t *p, int width)
{
    uint64_t v = 0;

    for (int i = width - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return (uint32_t)v;
}

static uint64_t get_le64(const uint8_t *p)
{
    return (uint64_t)get_le(p, 4) | (uint64_t)get_le(p + 4, 4) << 32;
}

static void put_le(uint8_t *p, int width, uint64_t v)
{
    for (int i = 0; i < width; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_field(const uint8_t *p, int width)
{
    return width == 8 ? get_le64(p) : get_le(p, width);
}

/* Recomputes the header CRC so the parser's later checks see the corrupted field itself. */
static void fix_hdr_crc(uint8_t *pkg)
{
    put_le(pkg + O_CRC, 4, crc32(0, pkg, O_CRC));
}

/* After editing the table: its CRC in the header, then the header's own CRC. */
static void fix_table_crc(uint8_t *pkg)
{
    uint64_t off = get_le64(pkg + O_TABLE_OFF);
    uint32_t n = get_le(pkg + O_SEG_COUNT, 4);

    put_le(pkg + O_TABLE_CRC, 4, crc32(0, pkg + off, n * PKG_SEG_ENTRY));
    fix_hdr_crc(pkg);
}

/* Every corruption works on its own copy: the fixture's packages stay pristine. */
static struct blob dup_blob(const struct blob *b)
{
    struct blob d = {malloc(b->len), b->len};

    assert_non_null(d.p);
    memcpy(d.p, b->p, b->len);
    return d;
}

/* A reader whose medium fails (a flash or file error): PKG_E_IO, not a package error. */
static int fail_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    (void)ctx;
    (void)off;
    (void)buf;
    (void)len;
    return -EIO;
}

/* An image whose body is derived from old's body like a rebuild (fw_gen_derive). */
static struct blob derive_image(const struct blob *old, const char *rev, double pct, uint64_t seed)
{
    struct fw_image_info info;
    uint8_t *body;
    size_t len;
    struct blob b;

    assert_int_equal(fw_image_parse(old->p, old->len, true, &info), 0);
    assert_int_equal(
        fw_gen_derive(old->p + FW_IMAGE_HDR, old->len - FW_IMAGE_HDR, pct, seed, &body, &len), 0);
    snprintf(info.revision, sizeof(info.revision), "%s", rev);
    b.len = FW_IMAGE_HDR + len;
    b.p = malloc(b.len);
    assert_non_null(b.p);
    memcpy(b.p + FW_IMAGE_HDR, body, len);
    fw_image_seal(&info, b.p, b.p + FW_IMAGE_HDR, len);
    free(body);
    return b;
}

/* A factory image of one revision: deterministic, so every run tests the same bytes. */
static struct blob factory(const char *rev, const char *project, size_t body)
{
    struct blob b;

    assert_int_equal(fw_image_factory(rev, project, BASELINE, body, &b.p, &b.len), 0);
    return b;
}

/* pack_build at the test level; a key signs the package. */
static struct blob build(enum pkg_kind kind, const struct blob *old, const struct blob *new_img,
                         uint32_t seg, bool inplace, const char *key)
{
    struct pack_opts o = {.kind = kind, .seg_size = seg, .level = LEVEL, .inplace = inplace};
    struct blob b;

    if (key) {
        o.key = (const uint8_t *)key;
        o.key_len = strlen(key);
    }
    assert_int_equal(pack_build(&o, old ? old->p : NULL, old ? old->len : 0, new_img->p,
                                new_img->len, &b.p, &b.len),
                     0);
    return b;
}

/*
 * Parses the package, reads its table and decodes every segment with delta_dec_segment into a
 * RAM copy of the target (what an apply engine does, without the flash), checking each
 * segment's CRC32 on the way. in_place: decode over one buffer that starts as the source and is
 * overwritten segment by segment, as on a module without room for staging.
 */
static void decode_all(const struct blob *pkg, const struct blob *old, const struct blob *new_img,
                       bool in_place)
{
    struct pkg_mem m = {pkg->p, pkg->len};
    struct pkg_hdr h;
    struct pkg_seg *segs;
    struct delta_dec d;
    uint8_t *flash, *seg, *patch;
    size_t old_len = old ? old->len : 0;
    size_t cap = new_img->len > old_len ? new_img->len : old_len;

    assert_int_equal(pkg_parse_header(pkg->p, pkg->len, pkg->len, &h), PKG_OK);
    assert_int_equal(pkg_read_table(&h, pkg_mem_read, &m, &segs), PKG_OK);
    assert_int_equal(h.target_size, new_img->len);
    assert_int_equal(delta_dec_init(&d, h.seg_size), 0);
    flash = calloc(1, cap);
    seg = malloc(h.seg_size);
    patch = malloc(h.seg_size);
    assert_true(flash && seg && patch);
    if (old)
        memcpy(flash, old->p, old->len);
    for (uint32_t i = 0; i < h.seg_count; i++) {
        size_t off = (size_t)i * h.seg_size;
        size_t len = new_img->len - off < h.seg_size ? new_img->len - off : h.seg_size;
        size_t lo = in_place ? (off < old_len ? off : old_len) : 0;
        /* staging reads the intact source; in place reads the not yet overwritten suffix */
        struct delta_src src = {in_place ? flash + lo : (old ? old->p : NULL), old_len - lo};

        assert_true(segs[i].len <= h.seg_size);
        assert_int_equal(pkg_mem_read(&m, h.payload_off + segs[i].off, patch, segs[i].len), 0);
        assert_int_equal(delta_dec_segment(&d, segs[i].codec, &src, patch, segs[i].len, seg, len),
                         0);
        assert_int_equal(crc32(0, seg, (uInt)len), segs[i].crc32);
        memcpy(flash + off, seg, len);
    }
    assert_memory_equal(flash, new_img->p, new_img->len);
    delta_dec_free(&d);
    free(patch);
    free(seg);
    free(flash);
    free(segs);
}

/* ---- group fixture --------------------------------------------------------------------------- */

/*
 * Images of about 300 KiB (a few segments of 64 KiB with a short last one) keep the whole file
 * well under a second while still crossing every segment boundary case.
 */
static int group_setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));

    if (!f)
        return -1;
    f->old = factory(REV_OLD, PROJECT, 300 * 1024 + 123);
    f->new_img = derive_image(&f->old, REV_NEW, 2.0, 7);
    f->mini_old = factory("MINI_R01", PROJECT, 60 * 1024);
    f->mini_new = derive_image(&f->mini_old, "MINI_R02", 1.0, 9);
    f->delta = build(PKG_DELTA, &f->old, &f->new_img, 64 * 1024, false, NULL);
    f->full = build(PKG_FULL, NULL, &f->new_img, 64 * 1024, false, NULL);
    f->inplace = build(PKG_DELTA, &f->old, &f->new_img, 32 * 1024, true, NULL);
    f->signed_delta = build(PKG_DELTA, &f->old, &f->new_img, 64 * 1024, false, key_a_priv);
    f->mini1 = build(PKG_MINI_1, &f->mini_old, &f->mini_new, 64 * 1024, false, NULL);
    f->mini2 = build(PKG_MINI_2, &f->old, &f->new_img, 64 * 1024, false, NULL);
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    struct fix *f = *state;
    struct blob *all[] = {&f->old,  &f->new_img, &f->mini_old,     &f->mini_new, &f->delta,
                          &f->full, &f->inplace, &f->signed_delta, &f->mini1,    &f->mini2};

    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        free(all[i]->p);
    free(f);
    return 0;
}

/* ---- names, header round trip ---------------------------------------------------------------- */

static void test_err_names(void **state)
{
    (void)state;
    for (int i = 0; i < PKG_E_COUNT; i++) {
        assert_non_null(pkg_err_name(i));
        assert_true(strlen(pkg_err_name(i)) > 1);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(pkg_err_name(i), pkg_err_name(j));
    }
    assert_string_equal(pkg_err_name(PKG_E_COUNT), "unknown error");
    assert_string_equal(pkg_err_name(PKG_E_HDR_CRC), "header CRC mismatch");
}

/* A synthetic header survives write + parse field by field; overlong strings are cut. */
static void test_header_roundtrip(void **state)
{
    struct pkg_hdr h = {0}, g;
    uint8_t buf[PKG_HDR];

    (void)state;
    h.kind = PKG_MINI_1;
    h.flags = PKG_F_SIGNED | PKG_F_INPLACE;
    h.seg_size = 8192;
    h.target_size = 3 * 8192 + 1;
    h.seg_count = 4;
    h.source_size = 77;
    h.table_crc = 0xdeadbeef;
    h.source_crc32 = 0x01020304;
    memset(h.source_sha256, 0x11, 32);
    memset(h.target_sha256, 0x22, 32);
    memset(h.target_md5, 0x33, 16);
    memset(h.project, 'p', FW_NAME_MAX); /* the longest that fits */
    strcpy(h.baseline, "B");
    strcpy(h.source_rev, "S");
    memset(h.target_rev, 't', FW_REV_MAX);
    h.table_off = PKG_HDR;
    h.payload_off = PKG_HDR + 4 * PKG_SEG_ENTRY;
    h.payload_size = 1000;
    h.sig_off = h.payload_off + 1000 + 3; /* a gap is allowed */
    h.sig_size = 71;
    pkg_write_header(&h, buf);
    assert_int_equal(pkg_parse_header(buf, sizeof(buf), h.sig_off + 71, &g), PKG_OK);
    assert_memory_equal(&g, &h, sizeof(h)); /* both zero-initialised, so padding matches */
}

/* ---- packages decode to their target --------------------------------------------------------- */

/* Header fields every package must carry: kind, names, layout, and the digests of its images. */
static void check_common(const struct fix *f, const struct blob *pkg, uint8_t kind,
                         const struct blob *src, const struct blob *tgt, struct pkg_hdr *h)
{
    uint8_t sha[32], md5[16];
    uint32_t crc;

    (void)f;
    assert_int_equal(pkg_parse_header(pkg->p, pkg->len, pkg->len, h), PKG_OK);
    assert_int_equal(h->kind, kind);
    assert_string_equal(h->project, PROJECT);
    assert_string_equal(h->baseline, BASELINE);
    assert_int_equal(h->table_off, PKG_HDR);
    assert_int_equal(h->payload_off, PKG_HDR + h->seg_count * PKG_SEG_ENTRY);
    assert_int_equal(pkg_digest(tgt->p, tgt->len, sha, md5, NULL), 0);
    assert_memory_equal(h->target_sha256, sha, 32);
    assert_memory_equal(h->target_md5, md5, 16);
    if (src) {
        assert_int_equal(h->source_size, src->len);
        assert_int_equal(pkg_digest(src->p, src->len, sha, NULL, &crc), 0);
        assert_memory_equal(h->source_sha256, sha, 32);
        assert_int_equal(h->source_crc32, crc32(0, src->p, (uInt)src->len));
        assert_int_equal(h->source_crc32, crc);
    } else {
        assert_int_equal(h->source_size, 0);
        assert_string_equal(h->source_rev, "");
    }
}

static void test_delta_decodes(void **state)
{
    struct fix *f = *state;
    struct pkg_hdr h;

    check_common(f, &f->delta, PKG_DELTA, &f->old, &f->new_img, &h);
    assert_string_equal(h.source_rev, REV_OLD);
    assert_string_equal(h.target_rev, REV_NEW);
    assert_int_equal(h.flags, 0);
    assert_int_equal(h.seg_size, 64 * 1024);
    assert_int_equal(h.seg_count, (f->new_img.len + 65535) / 65536);
    assert_int_equal(h.sig_off, 0);
    assert_int_equal(f->delta.len, h.payload_off + h.payload_size);
    /* a 2 % rebuild must come out far smaller than the image */
    assert_true(f->delta.len < f->new_img.len / 4);
    decode_all(&f->delta, &f->old, &f->new_img, false);
}

static void test_full_decodes(void **state)
{
    struct fix *f = *state;
    struct pkg_mem m = {f->full.p, f->full.len};
    struct pkg_seg *segs;
    struct pkg_hdr h;

    check_common(f, &f->full, PKG_FULL, NULL, &f->new_img, &h);
    assert_string_equal(h.target_rev, REV_NEW);
    assert_int_equal(pkg_read_table(&h, pkg_mem_read, &m, &segs), PKG_OK);
    for (uint32_t i = 0; i < h.seg_count; i++)
        assert_true(segs[i].codec == DELTA_RAW || segs[i].codec == DELTA_ZSTD);
    free(segs);
    decode_all(&f->full, NULL, &f->new_img, false);
}

/* In place: decoding over the overwritten source still gives the target. */
static void test_inplace_decodes(void **state)
{
    struct fix *f = *state;
    struct pkg_hdr h;

    check_common(f, &f->inplace, PKG_DELTA, &f->old, &f->new_img, &h);
    assert_int_equal(h.flags, PKG_F_INPLACE);
    assert_int_equal(h.seg_size, 32 * 1024);
    decode_all(&f->inplace, &f->old, &f->new_img, true);
}

/* Small segments, a target that is not a segment multiple, a target larger than the source. */
static void test_odd_sizes_decode(void **state)
{
    struct fix *f = *state;
    struct blob small = factory("R_SMALL", PROJECT, 70 * 1024 + 5);
    struct blob big = derive_image(&small, "R_BIG", 8.0, 3);
    struct blob grown;
    struct blob p1, p2, p3;

    (void)f;
    /* derive may shrink or grow; append a fresh run to be sure the target outgrows the source */
    grown.len = big.len + 20000;
    grown.p = malloc(grown.len);
    assert_non_null(grown.p);
    {
        struct fw_image_info info;

        assert_int_equal(fw_image_parse(big.p, big.len, true, &info), 0);
        memcpy(grown.p, big.p, big.len);
        memset(grown.p + big.len, 0xA5, 20000);
        fw_image_seal(&info, grown.p, grown.p + FW_IMAGE_HDR, grown.len - FW_IMAGE_HDR);
    }
    p1 = build(PKG_DELTA, &small, &grown, 4096, false, NULL);
    p2 = build(PKG_DELTA, &small, &grown, 4096, true, NULL);
    p3 = build(PKG_FULL, NULL, &grown, 12288, false, NULL);
    decode_all(&p1, &small, &grown, false);
    decode_all(&p2, &small, &grown, true);
    decode_all(&p3, NULL, &grown, false);
    free(p1.p);
    free(p2.p);
    free(p3.p);
    free(grown.p);
    free(big.p);
    free(small.p);
}

/* ---- header corruption ----------------------------------------------------------------------- */

/* Without a CRC fix every flipped byte is refused: magic, format, else the CRC catches it. */
static void test_header_every_byte_flipped(void **state)
{
    struct fix *f = *state;
    const struct blob *pkgs[] = {&f->delta, &f->signed_delta, &f->full};
    struct pkg_hdr h;

    for (size_t k = 0; k < 3; k++) {
        struct blob b = dup_blob(pkgs[k]);

        for (unsigned off = 0; off < PKG_HDR; off++) {
            for (unsigned bit = 0; bit < 8; bit += 7) {
                enum pkg_err want = off < 4 ? PKG_E_MAGIC : off < 8 ? PKG_E_FORMAT : PKG_E_HDR_CRC;

                b.p[off] ^= (uint8_t)(1u << bit);
                assert_int_equal(pkg_parse_header(b.p, b.len, b.len, &h), want);
                b.p[off] ^= (uint8_t)(1u << bit);
            }
        }
        assert_int_equal(pkg_parse_header(b.p, b.len, b.len, &h), PKG_OK);
        free(b.p);
    }
}

/* With the CRC recomputed: reserved bytes are ignored, the fixed fields are still refused. */
static void test_header_flipped_crc_fixed(void **state)
{
    struct fix *f = *state;
    struct blob b = dup_blob(&f->delta);
    struct pkg_hdr h;

    for (unsigned off = 0; off < O_CRC; off++) {
        bool reserved = (off >= 10 && off < 12) || (off >= 124 && off < 128) || off >= 356;
        enum pkg_err e;

        b.p[off] ^= 0xFF;
        fix_hdr_crc(b.p);
        e = pkg_parse_header(b.p, b.len, b.len, &h);
        if (reserved)
            assert_int_equal(e, PKG_OK);
        if (off < 4)
            assert_int_equal(e, PKG_E_MAGIC);
        else if (off < 8)
            assert_int_equal(e, PKG_E_FORMAT);
        else if (off < 10)
            assert_int_equal(e, PKG_E_KIND);
        else if (off >= O_SEG_SIZE && off < O_TABLE_CRC)
            assert_int_equal(e, PKG_E_LAYOUT);
        else if (off >= O_TABLE_OFF && off < O_SIG_SIZE + 4)
            assert_true(e == PKG_E_LAYOUT || e == PKG_E_TRUNCATED);
        b.p[off] ^= 0xFF;
    }
    fix_hdr_crc(b.p);
    assert_int_equal(pkg_parse_header(b.p, b.len, b.len, &h), PKG_OK);
    free(b.p);
}

/* SET a field, ADD to it (wrapping: -1 means one less), or FILL width bytes with a value. */
enum op { SET, ADD, FILL };

struct field_case {
    unsigned off;
    int width; /* 1, 2, 4, 8; FILL: bytes */
    enum op op;
    int64_t v;
    enum pkg_err want;
};

/* Cases on an unsigned delta package (the base: 300 KiB target, 64 KiB segments). */
static const struct field_case field_cases[] = {
    {0, 1, SET, 'X', PKG_E_MAGIC},
    {3, 1, SET, 'k', PKG_E_MAGIC},
    {4, 2, SET, 2, PKG_E_FORMAT},
    {4, 2, SET, 0, PKG_E_FORMAT},
    {6, 2, SET, 256, PKG_E_FORMAT},
    {6, 2, SET, 513, PKG_E_FORMAT},
    {O_KIND, 1, SET, 0, PKG_E_KIND},
    {O_KIND, 1, SET, 5, PKG_E_KIND},
    {O_KIND, 1, SET, 255, PKG_E_KIND},
    {O_FLAGS, 1, SET, 0x04, PKG_E_KIND},
    {O_FLAGS, 1, SET, 0x80, PKG_E_KIND},
    {O_FLAGS, 1, SET, PKG_F_SIGNED, PKG_E_LAYOUT}, /* signed flag, no signature */
    {O_FLAGS, 1, SET, PKG_F_INPLACE, PKG_OK},      /* the flag alone is consistent */
    {O_SEG_SIZE, 4, SET, 0, PKG_E_LAYOUT},
    {O_SEG_SIZE, 4, SET, 4095, PKG_E_LAYOUT},
    {O_SEG_SIZE, 4, ADD, 1, PKG_E_LAYOUT},
    {O_SEG_SIZE, 4, SET, 4096, PKG_E_LAYOUT},      /* count no longer matches */
    {O_SEG_SIZE, 4, SET, 32u << 20, PKG_E_LAYOUT}, /* above PKG_SEG_SIZE_MAX */
    {O_SEG_SIZE, 4, SET, 0xFFFFF000, PKG_E_LAYOUT},
    {O_SEG_COUNT, 4, ADD, 1, PKG_E_LAYOUT},
    {O_SEG_COUNT, 4, ADD, -1, PKG_E_LAYOUT},
    {O_SEG_COUNT, 4, SET, 0, PKG_E_LAYOUT},
    {O_SEG_COUNT, 4, SET, 0xFFFFFFFF, PKG_E_LAYOUT},
    {O_TABLE_CRC, 4, ADD, 1, PKG_OK},         /* the table read catches it */
    {O_SOURCE_SIZE, 8, SET, 0, PKG_E_LAYOUT}, /* a delta needs a source */
    {O_SOURCE_SIZE, 8, ADD, 1, PKG_OK},       /* checked against the running image later */
    {O_TARGET_SIZE, 8, SET, 0, PKG_E_LAYOUT},
    {O_TARGET_SIZE, 8, ADD, 1 << 20, PKG_E_LAYOUT},
    {O_TARGET_SIZE, 8, SET, -1, PKG_E_LAYOUT},
    {O_TARGET_SIZE, 8, ADD, 1, PKG_OK}, /* same count: the digests catch it at apply */
    {40, 1, ADD, 1, PKG_OK},            /* digests are not the parser's business */
    {104, 1, ADD, 1, PKG_OK},
    {O_SOURCE_CRC, 4, ADD, 1, PKG_OK},
    {O_PROJECT, 32, FILL, 'x', PKG_E_LAYOUT}, /* no NUL inside the field */
    {O_BASELINE, 32, FILL, 'x', PKG_E_LAYOUT},
    {O_SOURCE_REV, 64, FILL, 'x', PKG_E_LAYOUT},
    {O_TARGET_REV, 64, FILL, 'x', PKG_E_LAYOUT},
    {O_PROJECT, 31, FILL, 'x', PKG_OK}, /* the longest name still has its NUL */
    {O_TARGET_REV, 63, FILL, 'x', PKG_OK},
    {O_TABLE_OFF, 8, SET, 0, PKG_E_LAYOUT},
    {O_TABLE_OFF, 8, SET, 511, PKG_E_LAYOUT},
    {O_TABLE_OFF, 8, ADD, 24, PKG_E_LAYOUT}, /* table runs into the payload */
    {O_TABLE_OFF, 8, SET, -1, PKG_E_LAYOUT},
    {O_TABLE_OFF, 8, ADD, -1, PKG_E_LAYOUT},
    {O_PAYLOAD_OFF, 8, ADD, -1, PKG_E_LAYOUT}, /* payload overlaps the table */
    {O_PAYLOAD_OFF, 8, SET, 0, PKG_E_LAYOUT},
    {O_PAYLOAD_OFF, 8, ADD, 1, PKG_E_TRUNCATED}, /* consistent, but beyond the file */
    {O_PAYLOAD_OFF, 8, SET, -1, PKG_E_LAYOUT},
    {O_PAYLOAD_SIZE, 8, ADD, 1, PKG_E_TRUNCATED},
    {O_PAYLOAD_SIZE, 8, ADD, -1, PKG_E_LAYOUT}, /* a byte after the last region */
    {O_PAYLOAD_SIZE, 8, SET, -1, PKG_E_LAYOUT},
    {O_PAYLOAD_SIZE, 8, SET, 0, PKG_E_LAYOUT},
    {O_SIG_OFF, 8, SET, 1000, PKG_E_LAYOUT}, /* unsigned, yet a signature offset */
    {O_SIG_SIZE, 4, SET, 70, PKG_E_LAYOUT},
    {10, 2, SET, 0xFFFF, PKG_OK}, /* reserved: ignored, the CRC covers them */
    {124, 4, SET, 0x12345678, PKG_OK},
    {356, 8, SET, -1, PKG_OK},
    {500, 8, SET, -1, PKG_OK},
};

/* Cases on a signed delta package. */
static const struct field_case sig_cases[] = {
    {O_FLAGS, 1, SET, 0, PKG_E_LAYOUT}, /* signature fields without the flag */
    {O_SIG_OFF, 8, SET, 0, PKG_E_LAYOUT},
    {O_SIG_OFF, 8, ADD, 1, PKG_E_TRUNCATED},
    {O_SIG_OFF, 8, ADD, -1, PKG_E_LAYOUT},
    {O_SIG_OFF, 8, SET, 600, PKG_E_LAYOUT}, /* inside the table */
    {O_SIG_OFF, 8, SET, -1, PKG_E_LAYOUT},
    {O_SIG_SIZE, 4, SET, 0, PKG_E_LAYOUT},
    {O_SIG_SIZE, 4, SET, PKG_SIG_MAX + 1, PKG_E_LAYOUT},
    {O_SIG_SIZE, 4, SET, 0xFFFFFFFF, PKG_E_LAYOUT},
    {O_SIG_SIZE, 4, ADD, 1, PKG_E_TRUNCATED},
    {O_SIG_SIZE, 4, ADD, -1, PKG_E_LAYOUT},
    {O_PAYLOAD_SIZE, 8, ADD, 1, PKG_E_LAYOUT}, /* payload runs into the signature */
    {O_FLAGS, 1, SET, PKG_F_SIGNED | 0x40, PKG_E_KIND},
};

/* Cases on a full package. */
static const struct field_case full_cases[] = {
    {O_FLAGS, 1, SET, PKG_F_INPLACE, PKG_E_KIND}, /* in place means nothing without a source */
    {O_SOURCE_SIZE, 8, SET, 0, PKG_OK},
    {O_KIND, 1, SET, PKG_MINI_2, PKG_OK},
    {O_KIND, 1, SET, PKG_DELTA, PKG_E_LAYOUT}, /* a delta without a source */
};

/* Applies each case to a copy of base, fixes the header CRC, expects the case's error. */
static void run_field_cases(const struct blob *base, const struct field_case *c, size_t n)
{
    struct pkg_hdr h;

    for (size_t i = 0; i < n; i++) {
        struct blob b = dup_blob(base);
        uint8_t *p = b.p + c[i].off;

        if (c[i].op == FILL)
            memset(p, (int)c[i].v, (size_t)c[i].width);
        else
            put_le(p, c[i].width,
                   (c[i].op == ADD ? get_field(p, c[i].width) : 0) + (uint64_t)c[i].v);
        fix_hdr_crc(b.p);
        if (pkg_parse_header(b.p, b.len, b.len, &h) != c[i].want)
            fail_msg("case %zu (offset %u): got '%s', want '%s'", i, c[i].off,
                     pkg_err_name(pkg_parse_header(b.p, b.len, b.len, &h)),
                     pkg_err_name(c[i].want));
        free(b.p);
    }
}

static void test_header_field_table(void **state)
{
    struct fix *f = *state;

    run_field_cases(&f->delta, field_cases, sizeof(field_cases) / sizeof(field_cases[0]));
    run_field_cases(&f->signed_delta, sig_cases, sizeof(sig_cases) / sizeof(sig_cases[0]));
    run_field_cases(&f->full, full_cases, sizeof(full_cases) / sizeof(full_cases[0]));
}

/* The first error wins: a bad magic beats a bad format beats a bad CRC, and so on. */
static void test_header_error_order(void **state)
{
    struct fix *f = *state;
    struct blob b = dup_blob(&f->delta);
    struct pkg_hdr h;

    b.p[O_KIND] = 9;                  /* KIND */
    put_le(b.p + O_SEG_SIZE, 4, 100); /* LAYOUT */
    fix_hdr_crc(b.p);
    assert_int_equal(pkg_parse_header(b.p, b.len, b.len, &h), PKG_E_KIND);
    b.p[O_CRC] ^= 1;
    assert_int_equal(pkg_parse_header(b.p, b.len, b.len, &h), PKG_E_HDR_CRC);
    b.p[4] = 9;
    assert_int_equal(pkg_parse_header(b.p, b.len, b.len, &h), PKG_E_FORMAT);
    b.p[0] = 0;
    assert_int_equal(pkg_parse_header(b.p, b.len, b.len, &h), PKG_E_MAGIC);
    assert_int_equal(pkg_parse_header(b.p, 511, b.len, &h), PKG_E_TRUNCATED);
    free(b.p);
}

/* ---- truncation ------------------------------------------------------------------------------ */

/* Every prefix: the header refuses it; a table or signature read through it stops cleanly. */
static void test_truncation_every_length(void **state)
{
    struct fix *f = *state;
    const struct blob *pkgs[] = {&f->delta, &f->signed_delta};

    for (size_t k = 0; k < 2; k++) {
        const struct blob *b = pkgs[k];
        struct pkg_hdr full_h, h;

        assert_int_equal(pkg_parse_header(b->p, b->len, b->len, &full_h), PKG_OK);
        for (size_t len = 0; len <= b->len; len++) {
            struct pkg_mem m = {b->p, len};
            struct pkg_seg *segs = NULL;
            enum pkg_err e = pkg_parse_header(b->p, len, len, &h);
            enum pkg_err t;

            assert_int_equal(e, len == b->len ? PKG_OK : PKG_E_TRUNCATED);
            /* an engine that trusts the header's sizes, reading a short download */
            if (len % 97 && len != b->len && len > PKG_HDR + 200)
                continue; /* the table is only 120 bytes: sample the rest */
            t = pkg_read_table(&full_h, pkg_mem_read, &m, &segs);
            assert_int_equal(t, len >= full_h.table_off + full_h.seg_count * PKG_SEG_ENTRY
                                    ? PKG_OK
                                    : PKG_E_TRUNCATED);
            free(segs);
            if (k == 1) {
                t = pkg_verify_signature(&full_h, pkg_mem_read, &m, (const uint8_t *)key_a_pub,
                                         sizeof(key_a_pub));
                assert_int_equal(t, len == b->len ? PKG_OK : PKG_E_TRUNCATED);
            }
        }
    }
}

static void test_trailing_bytes(void **state)
{
    struct fix *f = *state;
    struct blob b = {malloc(f->delta.len + 1), f->delta.len + 1};
    struct pkg_hdr h;

    assert_non_null(b.p);
    memcpy(b.p, f->delta.p, f->delta.len);
    b.p[f->delta.len] = 0;
    assert_int_equal(pkg_parse_header(b.p, b.len, b.len, &h), PKG_E_LAYOUT);
    /* a caller that reads the header alone passes only 512 bytes but the true file size */
    assert_int_equal(pkg_parse_header(b.p, PKG_HDR, f->delta.len, &h), PKG_OK);
    free(b.p);
}

/* ---- table corruption ------------------------------------------------------------------------ */

static void test_table_every_byte_flipped(void **state)
{
    struct fix *f = *state;
    struct blob b = dup_blob(&f->delta);
    struct pkg_mem m = {b.p, b.len};
    struct pkg_seg *segs;
    struct pkg_hdr h;

    assert_int_equal(pkg_parse_header(b.p, b.len, b.len, &h), PKG_OK);
    for (uint64_t off = h.table_off; off < h.table_off + h.seg_count * PKG_SEG_ENTRY; off++) {
        b.p[off] ^= 0x10;
        assert_int_equal(pkg_read_table(&h, pkg_mem_read, &m, &segs), PKG_E_TABLE);
        assert_null(segs);
        b.p[off] ^= 0x10;
    }
    assert_int_equal(pkg_read_table(&h, pkg_mem_read, &m, &segs), PKG_OK);
    free(segs);
    free(b.p);
}

struct table_case {
    unsigned entry; /* 0: first; 1: last */
    unsigned off;   /* within the entry */
    int width;
    enum op op;
    int64_t v;
    enum pkg_err want;
};

static const struct table_case table_cases[] = {
    {0, 12, 1, SET, DELTA_CODEC_COUNT, PKG_E_CODEC},
    {1, 12, 1, SET, 0xFF, PKG_E_CODEC},
    {0, 0, 8, SET, -1, PKG_E_TABLE},    /* patch offset beyond the payload */
    {1, 0, 8, ADD, 1, PKG_E_TABLE},     /* last patch ends one byte past the payload */
    {0, 8, 4, SET, 0, PKG_E_TABLE},     /* empty patch */
    {0, 8, 4, SET, -1, PKG_E_TABLE},    /* longer than the payload and the segment */
    {0, 8, 4, SET, 65537, PKG_E_TABLE}, /* longer than its segment */
    {1, 0, 8, SET, 0, PKG_OK},          /* entries may share bytes: the decoder judges them */
    {0, 16, 4, ADD, 1, PKG_OK},         /* the segment CRC is checked after decoding */
    {0, 13, 3, SET, 0xFFFFFF, PKG_OK},  /* reserved */
    {1, 20, 4, SET, 0xFFFFFFFF, PKG_OK},
};

/* One table edit with both CRCs fixed, so that only the entry check can refuse it. */
static enum pkg_err table_case_run(const struct blob *base, const struct table_case *c)
{
    struct blob b = dup_blob(base);
    struct pkg_mem m = {b.p, b.len};
    struct pkg_seg *segs = NULL;
    struct pkg_hdr h;
    enum pkg_err e;
    uint8_t *p;

    assert_int_equal(pkg_parse_header(b.p, b.len, b.len, &h), PKG_OK);
    p = b.p + h.table_off + (c->entry ? h.seg_count - 1 : 0) * PKG_SEG_ENTRY + c->off;
    put_le(p, c->width, (c->op == ADD ? get_field(p, c->width) : 0) + (uint64_t)c->v);
    fix_table_crc(b.p);
    assert_int_equal(pkg_parse_header(b.p, b.len, b.len, &h), PKG_OK);
    e = pkg_read_table(&h, pkg_mem_read, &m, &segs);
    assert_true(e == PKG_OK ? segs != NULL : segs == NULL);
    free(segs);
    free(b.p);
    return e;
}

static void test_table_cases(void **state)
{
    struct fix *f = *state;
    struct table_case c;
    struct pkg_mem m = {f->delta.p, f->delta.len};
    struct pkg_seg *segs;
    struct pkg_hdr h;

    for (size_t i = 0; i < sizeof(table_cases) / sizeof(table_cases[0]); i++) {
        enum pkg_err e = table_case_run(&f->delta, &table_cases[i]);

        if (e != table_cases[i].want)
            fail_msg("table case %zu: got '%s', want '%s'", i, pkg_err_name(e),
                     pkg_err_name(table_cases[i].want));
    }
    /* a full or mini_2 package may not reference a source */
    c = (struct table_case){0, 12, 1, SET, DELTA_ZSTD_SRC, PKG_E_CODEC};
    assert_int_equal(table_case_run(&f->full, &c), PKG_E_CODEC);
    c.v = DELTA_BSDIFF_ZSTD;
    assert_int_equal(table_case_run(&f->mini2, &c), PKG_E_CODEC);
    c.v = DELTA_ZSTD;
    assert_int_equal(table_case_run(&f->mini2, &c), PKG_OK);
    /* RAW must be exactly its segment: a short RAW patch is refused */
    c = (struct table_case){0, 12, 1, SET, DELTA_RAW, PKG_E_TABLE};
    assert_int_equal(pkg_parse_header(f->delta.p, f->delta.len, f->delta.len, &h), PKG_OK);
    assert_int_equal(pkg_read_table(&h, pkg_mem_read, &m, &segs), PKG_OK);
    if (segs[0].codec != DELTA_RAW)
        assert_int_equal(table_case_run(&f->delta, &c), PKG_E_TABLE);
    free(segs);
    /* reader failures */
    assert_int_equal(pkg_read_table(&h, fail_read, NULL, &segs), PKG_E_IO);
    assert_null(segs);
}

/* ---- signature ------------------------------------------------------------------------------- */

/* Parse, then verify: what a module does with a downloaded package and its configured key. */
static enum pkg_err verify(const struct blob *b, const char *key, size_t key_len)
{
    struct pkg_mem m = {b->p, b->len};
    struct pkg_hdr h;
    enum pkg_err e = pkg_parse_header(b->p, b->len, b->len, &h);

    if (e != PKG_OK)
        return e;
    return pkg_verify_signature(&h, pkg_mem_read, &m, (const uint8_t *)key, key_len);
}

static void test_signature(void **state)
{
    struct fix *f = *state;
    struct blob b;
    struct pkg_hdr h;
    size_t n;

    assert_int_equal(
        pkg_parse_header(f->signed_delta.p, f->signed_delta.len, f->signed_delta.len, &h), PKG_OK);
    assert_int_equal(h.flags, PKG_F_SIGNED);
    assert_true(h.sig_size >= 8 && h.sig_size <= 72);
    assert_int_equal(f->signed_delta.p[h.sig_off], 0x30); /* DER SEQUENCE */
    assert_int_equal(h.sig_off + h.sig_size, f->signed_delta.len);
    /* the key with or without its final NUL */
    assert_int_equal(verify(&f->signed_delta, key_a_pub, sizeof(key_a_pub)), PKG_OK);
    assert_int_equal(verify(&f->signed_delta, key_a_pub, strlen(key_a_pub)), PKG_OK);
    assert_int_equal(verify(&f->signed_delta, key_b_pub, strlen(key_b_pub)), PKG_E_SIGNATURE);
    /* not a usable key: the verifier's problem, not the package's */
    assert_int_equal(verify(&f->signed_delta, key_p384_pub, strlen(key_p384_pub)), PKG_E_IO);
    assert_int_equal(verify(&f->signed_delta, "garbage", 7), PKG_E_IO);
    assert_int_equal(verify(&f->signed_delta, key_a_priv, strlen(key_a_priv)), PKG_E_IO);
    /* unsigned package, key given */
    assert_int_equal(verify(&f->delta, key_a_pub, strlen(key_a_pub)), PKG_E_UNSIGNED);
    /* the signed package decodes like the unsigned one */
    decode_all(&f->signed_delta, &f->old, &f->new_img, false);
    /* deterministic ECDSA (RFC 6979, on in Debian's mbedtls): the same inputs, the same bytes */
    b = build(PKG_DELTA, &f->old, &f->new_img, 64 * 1024, false, key_a_priv);
    assert_int_equal(b.len, f->signed_delta.len);
    assert_memory_equal(b.p, f->signed_delta.p, b.len);
    free(b.p);

    /* a flipped byte anywhere in the payload, table or signature */
    b = dup_blob(&f->signed_delta);
    for (n = h.table_off; n < b.len; n += (n < h.payload_off ? 7 : 997)) {
        b.p[n] ^= 0x01;
        assert_int_equal(verify(&b, key_a_pub, strlen(key_a_pub)), PKG_E_SIGNATURE);
        b.p[n] ^= 0x01;
    }
    for (n = h.sig_off; n < b.len; n++) {
        b.p[n] ^= 0x80;
        assert_int_equal(verify(&b, key_a_pub, strlen(key_a_pub)), PKG_E_SIGNATURE);
        b.p[n] ^= 0x80;
    }
    /* a header change with its CRC fixed: the signature still catches it */
    b.p[O_TARGET_REV] ^= 0x01;
    fix_hdr_crc(b.p);
    assert_int_equal(verify(&b, key_a_pub, strlen(key_a_pub)), PKG_E_SIGNATURE);
    free(b.p);
}

/* Signing the same inputs twice gives a package that verifies both times. */
static void test_sign_api(void **state)
{
    uint8_t sig[PKG_SIG_MAX];
    size_t len = 0;
    static const uint8_t msg[] = "modtwin";

    (void)state;
    assert_int_equal(
        pkg_sign(msg, sizeof(msg), (const uint8_t *)key_a_priv, strlen(key_a_priv), sig, &len), 0);
    assert_true(len >= 8 && len <= 72);
    assert_int_equal(
        pkg_sign(msg, sizeof(msg), (const uint8_t *)key_a_pub, strlen(key_a_pub), sig, &len),
        -EINVAL);
    assert_int_equal(pkg_sign(msg, sizeof(msg), (const uint8_t *)"x", 1, sig, &len), -EINVAL);
}

/* ---- MiniFOTA -------------------------------------------------------------------------------- */

/* mini_1: what the module checks is in the first 2 KiB; mini_2: a full package of the system. */
static void test_minifota_pair(void **state)
{
    struct fix *f = *state;
    struct pkg_mem m = {f->mini2.p, f->mini2.len};
    struct pkg_seg *segs;
    struct pkg_hdr h;

    assert_true(f->mini1.len >= 2048);
    assert_int_equal(pkg_parse_header(f->mini1.p, 2048, f->mini1.len, &h), PKG_OK);
    assert_int_equal(h.kind, PKG_MINI_1);
    assert_int_equal(h.source_crc32, crc32(0, f->mini_old.p, (uInt)f->mini_old.len));
    assert_int_equal(h.source_size, f->mini_old.len);
    assert_string_equal(h.source_rev, "MINI_R01");
    assert_string_equal(h.target_rev, "MINI_R02");
    decode_all(&f->mini1, &f->mini_old, &f->mini_new, false);

    assert_int_equal(pkg_parse_header(f->mini2.p, f->mini2.len, f->mini2.len, &h), PKG_OK);
    assert_int_equal(h.kind, PKG_MINI_2);
    /* the big system's running revision is recorded, but nothing references it */
    assert_string_equal(h.source_rev, REV_OLD);
    assert_int_equal(h.source_crc32, crc32(0, f->old.p, (uInt)f->old.len));
    assert_int_equal(pkg_read_table(&h, pkg_mem_read, &m, &segs), PKG_OK);
    for (uint32_t i = 0; i < h.seg_count; i++)
        assert_true(segs[i].codec == DELTA_RAW || segs[i].codec == DELTA_ZSTD);
    free(segs);
    decode_all(&f->mini2, NULL, &f->new_img, false);
}

/* ---- pack_build arguments -------------------------------------------------------------------- */

static void test_build_bad_args(void **state)
{
    struct fix *f = *state;
    struct pack_opts o = {.kind = PKG_DELTA, .level = LEVEL};
    struct blob other = factory("R_OTHER", "BC260Y", 8192);
    uint8_t *pkg = (uint8_t *)1;
    size_t len = 1;
    struct blob bad = dup_blob(&f->new_img);

#define BUILD(old_, new_) pack_build(&o, (old_)->p, (old_)->len, (new_)->p, (new_)->len, &pkg, &len)
    o.seg_size = 1000;
    assert_int_equal(BUILD(&f->old, &f->new_img), -EINVAL);
    assert_null(pkg);
    o.seg_size = 32u << 20;
    assert_int_equal(BUILD(&f->old, &f->new_img), -EINVAL);
    o.seg_size = 0;
    o.level = 23;
    assert_int_equal(BUILD(&f->old, &f->new_img), -EINVAL);
    o.level = LEVEL;
    o.kind = 9;
    assert_int_equal(BUILD(&f->old, &f->new_img), -EINVAL);
    o.kind = PKG_FULL;
    o.inplace = true;
    assert_int_equal(BUILD(&f->old, &f->new_img), -EINVAL);
    o.inplace = false;
    o.kind = PKG_DELTA;
    assert_int_equal(pack_build(&o, NULL, 0, f->new_img.p, f->new_img.len, &pkg, &len), -EINVAL);
    assert_int_equal(BUILD(&other, &f->new_img), -EINVAL); /* another project */
    {
        /* another firmware line of the same project: a delta may not cross it, a full may */
        struct blob line;
        assert_int_equal(fw_image_factory("R_LINE", PROJECT, "OTHERLINE", 8192, &line.p,
                                          &line.len),
                         0);
        assert_int_equal(BUILD(&line, &f->new_img), -EINVAL);
        o.kind = PKG_FULL;
        assert_int_equal(BUILD(&line, &f->new_img), 0);
        free(pkg);
        pkg = (uint8_t *)1;
        o.kind = PKG_DELTA;
        free(line.p);
    }
    bad.p[bad.len - 1] ^= 1;                               /* body digest wrong */
    assert_int_equal(BUILD(&f->old, &bad), -EBADMSG);
    assert_int_equal(BUILD(&bad, &f->new_img), -EBADMSG);
    o.key = (const uint8_t *)key_a_pub; /* a public key cannot sign */
    o.key_len = strlen(key_a_pub);
    assert_int_equal(BUILD(&f->old, &f->new_img), -EINVAL);
    assert_null(pkg);
#undef BUILD
    free(bad.p);
    free(other.p);
}

/* ---- the CLI --------------------------------------------------------------------------------- */

/* Runs `modtwin pack ...` in this process (argv from a NULL-terminated list); the exit status. */
static int run(const char *const *args)
{
    char *argv[32];
    int argc = 0;

    while (args[argc]) {
        argv[argc] = (char *)args[argc];
        argc++;
    }
    argv[argc] = NULL;
    return pack_main(argc, argv);
}

static void write_blob(const char *path, const struct blob *b)
{
    assert_int_equal(cli_write_file(path, b->p, b->len), 0);
}

/*
 * The command line end to end in a temporary directory: every build mode, inspect with and
 * without keys, exit codes 0 / 1 / 2 as docs/package-format.md states them.
 */
static void test_cli(void **state)
{
    struct fix *f = *state;
    char dir[] = "/tmp/test_pkg.XXXXXX", p_old[256], p_new[256], p_mo[256], p_mn[256], p_pkg[256],
         p_m1[256], p_m2[256], p_key[256], p_pub[256], p_pubb[256];
    struct blob k = {(uint8_t *)key_a_priv, strlen(key_a_priv)};
    struct blob pub = {(uint8_t *)key_a_pub, strlen(key_a_pub)};
    struct blob pubb = {(uint8_t *)key_b_pub, strlen(key_b_pub)};
    struct blob got;
    struct pkg_hdr h;

    assert_non_null(mkdtemp(dir));
    snprintf(p_old, sizeof(p_old), "%s/old.bin", dir);
    snprintf(p_new, sizeof(p_new), "%s/new.bin", dir);
    snprintf(p_mo, sizeof(p_mo), "%s/mini_old.bin", dir);
    snprintf(p_mn, sizeof(p_mn), "%s/mini_new.bin", dir);
    snprintf(p_pkg, sizeof(p_pkg), "%s/up.pkg", dir);
    snprintf(p_m1, sizeof(p_m1), "%s/up.pkg.mini_1", dir);
    snprintf(p_m2, sizeof(p_m2), "%s/up.pkg.mini_2", dir);
    snprintf(p_key, sizeof(p_key), "%s/k.pem", dir);
    snprintf(p_pub, sizeof(p_pub), "%s/k.pub", dir);
    snprintf(p_pubb, sizeof(p_pubb), "%s/b.pub", dir);
    write_blob(p_old, &f->old);
    write_blob(p_new, &f->new_img);
    write_blob(p_mo, &f->mini_old);
    write_blob(p_mn, &f->mini_new);
    write_blob(p_key, &k);
    write_blob(p_pub, &pub);
    write_blob(p_pubb, &pubb);

    /* delta, signed, in place, small segments */
    assert_int_equal(
        run((const char *[]){"pack", p_old, p_new, "-o", p_pkg, "--level", "3", "--segment", "16K",
                             "--inplace", "--sign", p_key, "-q", NULL}),
        0);
    assert_int_equal(cli_read_file(p_pkg, &got.p, &got.len), 0);
    assert_int_equal(pkg_parse_header(got.p, got.len, got.len, &h), PKG_OK);
    assert_int_equal(h.flags, PKG_F_SIGNED | PKG_F_INPLACE);
    assert_int_equal(h.seg_size, 16384);
    decode_all(&got, &f->old, &f->new_img, true);
    free(got.p);
    assert_int_equal(run((const char *[]){"pack", "inspect", p_pkg, NULL}), 0);
    assert_int_equal(run((const char *[]){"pack", "inspect", "--key", p_pub, "-s", p_pkg, NULL}),
                     0);
    assert_int_equal(run((const char *[]){"pack", "inspect", "--key", p_pubb, p_pkg, NULL}), 1);
    assert_int_equal(run((const char *[]){"pack", "inspect", "--key", p_new, p_pkg, NULL}), 1);
    assert_int_equal(run((const char *[]){"pack", "inspect", p_new, NULL}), 1); /* an image */
    assert_int_equal(run((const char *[]){"pack", "inspect", NULL}), 2);
    assert_int_equal(run((const char *[]){"pack", "inspect", "--help", NULL}), 0);

    /* full, unsigned: inspect with a key says UNSIGNED */
    assert_int_equal(run((const char *[]){"pack", p_new, "-o", p_pkg, "-l", "1", "-q", NULL}), 0);
    assert_int_equal(cli_read_file(p_pkg, &got.p, &got.len), 0);
    assert_int_equal(pkg_parse_header(got.p, got.len, got.len, &h), PKG_OK);
    assert_int_equal(h.kind, PKG_FULL);
    assert_int_equal(h.seg_size, PACK_SEG_DEFAULT);
    free(got.p);
    assert_int_equal(run((const char *[]){"pack", "inspect", "-k", p_pub, p_pkg, NULL}), 1);

    /* MiniFOTA pair */
    assert_int_equal(run((const char *[]){"pack", "--mini", "--mini-old", p_mo, "--mini-new", p_mn,
                                          p_old, p_new, "-o", p_pkg, "-l", "3", "-q", NULL}),
                     0);
    assert_int_equal(cli_read_file(p_m1, &got.p, &got.len), 0);
    assert_int_equal(pkg_parse_header(got.p, 2048, got.len, &h), PKG_OK);
    assert_int_equal(h.kind, PKG_MINI_1);
    assert_int_equal(h.source_crc32, crc32(0, f->mini_old.p, (uInt)f->mini_old.len));
    free(got.p);
    assert_int_equal(cli_read_file(p_m2, &got.p, &got.len), 0);
    assert_int_equal(pkg_parse_header(got.p, got.len, got.len, &h), PKG_OK);
    assert_int_equal(h.kind, PKG_MINI_2);
    free(got.p);
    assert_int_equal(run((const char *[]){"pack", "inspect", p_m1, NULL}), 0);
    assert_int_equal(run((const char *[]){"pack", "inspect", p_m2, NULL}), 0);

    /* usage errors */
    assert_int_equal(run((const char *[]){"pack", "--help", NULL}), 0);
    assert_int_equal(run((const char *[]){"pack", p_new, NULL}), 2); /* no -o */
    assert_int_equal(run((const char *[]){"pack", "-o", p_pkg, NULL}), 2);
    assert_int_equal(run((const char *[]){"pack", "a", "b", "c", "-o", p_pkg, NULL}), 2);
    assert_int_equal(run((const char *[]){"pack", p_new, "-o", p_pkg, "-s", "5000", NULL}), 2);
    assert_int_equal(run((const char *[]){"pack", p_new, "-o", p_pkg, "-s", "32M", NULL}), 2);
    assert_int_equal(run((const char *[]){"pack", p_new, "-o", p_pkg, "-l", "0", NULL}), 2);
    assert_int_equal(run((const char *[]){"pack", p_new, "-o", p_pkg, "--inplace", NULL}), 2);
    assert_int_equal(run((const char *[]){"pack", p_new, "-o", p_pkg, "--mini", NULL}), 2);
    assert_int_equal(run((const char *[]){"pack", p_new, "-o", p_pkg, "--mini-old", p_mo, NULL}),
                     2);
    assert_int_equal(run((const char *[]){"pack", p_new, "-o", p_pkg, "--bogus", NULL}), 2);
    /* failures */
    assert_int_equal(run((const char *[]){"pack", p_pkg, "-o", p_m1, "-q", NULL}), 1);
    assert_int_equal(run((const char *[]){"pack", "/nonexistent", "-o", p_m1, NULL}), 1);
    assert_int_equal(run((const char *[]){"pack", p_new, "-o", p_m1, "-k", p_pub, NULL}), 1);
    /* apply is handed over */
    assert_int_equal(run((const char *[]){"pack", "apply", "--help", NULL}), 0);

    {
        const char *files[] = {p_old, p_new, p_mo, p_mn, p_pkg, p_m1, p_m2, p_key, p_pub, p_pubb};

        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
            unlink(files[i]);
        rmdir(dir);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_names),
        cmocka_unit_test(test_header_roundtrip),
        cmocka_unit_test(test_delta_decodes),
        cmocka_unit_test(test_full_decodes),
        cmocka_unit_test(test_inplace_decodes),
        cmocka_unit_test(test_odd_sizes_decode),
        cmocka_unit_test(test_header_every_byte_flipped),
        cmocka_unit_test(test_header_flipped_crc_fixed),
        cmocka_unit_test(test_header_field_table),
        cmocka_unit_test(test_header_error_order),
        cmocka_unit_test(test_truncation_every_length),
        cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_table_every_byte_flipped),
        cmocka_unit_test(test_table_cases),
        cmocka_unit_test(test_signature),
        cmocka_unit_test(test_sign_api),
        cmocka_unit_test(test_minifota_pair),
        cmocka_unit_test(test_build_bad_args),
        cmocka_unit_test(test_cli),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
