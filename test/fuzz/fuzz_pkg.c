/*
 * fuzz_pkg.c - libFuzzer target for the package container (firmware/pkg.c).
 *
 * The input is a whole package: pkg_parse_header, then pkg_read_table through an in-memory
 * reader that refuses to read past the input, then pkg_verify_signature with a fixed test key.
 * Each input runs twice: as it is, and with its header CRC and table CRC recomputed, so the
 * fuzzer reaches the layout, table and signature checks instead of stopping at the CRCs. Any
 * broken invariant is __builtin_trap(). No main: link with -fsanitize=fuzzer.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "firmware/pkg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

/* A P-256 test public key (its private half signs nothing but test packages). */
static const char fz_pub[] = "-----BEGIN PUBLIC KEY-----\n"
                             "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEC1Mbtu9TOnxTrc6vyfjsyBgoLJaP\n"
                             "a/6NiQnCSoIDRxD/I7nB63MQAj3LfHLHEiCZprobvIfiQmXqqQE4NsMGYg==\n"
                             "-----END PUBLIC KEY-----\n";

static void fz_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t fz_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void fz_one(const uint8_t *data, size_t size)
{
    struct pkg_mem m = {data, size};
    struct pkg_seg *segs = NULL;
    struct pkg_hdr h;
    enum pkg_err e;

    e = pkg_parse_header(data, size, size, &h);
    FZ_CHECK((unsigned)e < PKG_E_COUNT && pkg_err_name(e) != NULL);
    if (size < PKG_HDR)
        FZ_CHECK(e == PKG_E_TRUNCATED);
    if (e != PKG_OK)
        return;
    /* what an accepted header promises */
    FZ_CHECK(h.seg_size && h.seg_size % 4096 == 0 && h.seg_size <= PKG_SEG_SIZE_MAX);
    FZ_CHECK(h.seg_count && (uint64_t)(h.seg_count - 1) * h.seg_size < h.target_size);
    FZ_CHECK(h.target_size <= (uint64_t)h.seg_count * h.seg_size);
    FZ_CHECK(h.table_off >= PKG_HDR && h.payload_off + h.payload_size <= size);
    FZ_CHECK(memchr(h.project, 0, sizeof(h.project)) && memchr(h.target_rev, 0, 64));

    e = pkg_read_table(&h, pkg_mem_read, &m, &segs);
    FZ_CHECK(e == PKG_OK || e == PKG_E_TABLE || e == PKG_E_CODEC || e == PKG_E_TRUNCATED);
    FZ_CHECK((e == PKG_OK) == (segs != NULL));
    for (uint32_t i = 0; segs && i < h.seg_count; i++) {
        FZ_CHECK(segs[i].codec < DELTA_CODEC_COUNT);
        FZ_CHECK(segs[i].len && segs[i].len <= h.seg_size);
        FZ_CHECK(segs[i].off + segs[i].len <= h.payload_size);
    }
    free(segs);

    e = pkg_verify_signature(&h, pkg_mem_read, &m, (const uint8_t *)fz_pub, sizeof(fz_pub));
    FZ_CHECK(e == PKG_OK || e == PKG_E_SIGNATURE || e == PKG_E_UNSIGNED);
    FZ_CHECK((e == PKG_E_UNSIGNED) == !(h.flags & PKG_F_SIGNED));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy;
    uint64_t table_off;
    uint32_t count;

    fz_one(data, size);
    if (size < PKG_HDR)
        return 0;
    /* the same bytes with valid CRCs: table CRC (if the table is inside), then header CRC */
    copy = malloc(size);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    table_off = fz_get32(copy + 320) | (uint64_t)fz_get32(copy + 324) << 32;
    count = fz_get32(copy + 16);
    if (table_off <= size && count <= (size - table_off) / PKG_SEG_ENTRY)
        fz_put32(copy + 20, (uint32_t)crc32(0, copy + table_off, count * PKG_SEG_ENTRY));
    fz_put32(copy + 508, (uint32_t)crc32(0, copy, 508));
    fz_one(copy, size);
    free(copy);
    return 0;
}
