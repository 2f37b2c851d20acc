/*
 * Update packages: the container the module downloads and the apply engine reads.
 *
 *   0    magic "MTPK"        4    u16 format (1), u16 header size (512)
 *   8    u8 kind             9    u8 flags (bit 0 signed, bit 1 in-place)    10  u16 reserved
 *   12   u32 segment size    16   u32 segment count     20  u32 CRC32 of the segment table
 *   24   u64 source size     32   u64 target size       (whole images, headers included)
 *   40   source SHA-256[32]  72   target SHA-256[32]    104 target MD5[16]
 *   120  u32 CRC32 of the source image (MiniFOTA checks the flashed image against it)
 *   124  u32 reserved
 *   128  project[32]         160  baseline[32]          192 source revision[64]  256 target revision[64]
 *   320  u64 table offset    328  u64 payload offset    336 u64 payload size
 *   344  u64 signature offset (0: unsigned)             352 u32 signature size   356 reserved
 *   508  u32 CRC32 of bytes 0..507
 *   table: one 24-byte entry per segment: u64 patch offset (from the payload start), u32 patch
 *          length, u8 codec (enum delta_codec), 3 reserved, u32 CRC32 of the segment's target
 *          bytes, u32 reserved
 *   payload: the segments' patches; then the optional signature: ECDSA P-256 (DER) over the
 *          SHA-256 of bytes [0, signature offset).
 * Everything a MiniFOTA module checks before it commits (kind, source CRC32, revisions) is in
 * the first 2 KiB. Integers little-endian, strings NUL-padded.
 */
#ifndef MODTWIN_FIRMWARE_PKG_H
#define MODTWIN_FIRMWARE_PKG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "firmware/delta.h"
#include "firmware/fw_image.h"

#define PKG_MAGIC "MTPK"
#define PKG_HDR 512u
#define PKG_SEG_ENTRY 24u
#define PKG_SIG_MAX 80u

enum pkg_kind { PKG_DELTA = 1, PKG_FULL = 2, PKG_MINI_1 = 3, PKG_MINI_2 = 4 };

enum { PKG_F_SIGNED = 1u << 0, PKG_F_INPLACE = 1u << 1 };

/*
 * Why a package is refused. Each family maps these to its documented codes (Quectel 504-507 /
 * 552 / 553, BC260Y 255, OneMO 854 / 858-860, WeFOTA FAIL_VERIFY, Luat -1003 / cause 26).
 */
enum pkg_err {
    PKG_OK = 0,
    PKG_E_TRUNCATED,     /* shorter than its header, table or payload say */
    PKG_E_MAGIC,         /* not a package */
    PKG_E_FORMAT,        /* unknown format version or header size */
    PKG_E_HDR_CRC,       /* header CRC mismatch */
    PKG_E_KIND,          /* unknown kind or flags */
    PKG_E_LAYOUT,        /* segment size / count / offsets inconsistent */
    PKG_E_TABLE,         /* segment table CRC or an entry out of bounds */
    PKG_E_CODEC,         /* unknown codec, or one the kind does not allow */
    PKG_E_SIGNATURE,     /* signature present but wrong */
    PKG_E_UNSIGNED,      /* a signature is required and there is none */
    PKG_E_PROJECT,       /* built for another project */
    PKG_E_BASELINE,      /* built for another baseline (firmware line) */
    PKG_E_SOURCE_REV,    /* built from another revision than the running one */
    PKG_E_SOURCE_DIGEST, /* the running image is not the package's source (SHA-256 / CRC32) */
    PKG_E_TOO_BIG,       /* the target does not fit the partition */
    PKG_E_SEGMENT,       /* a segment failed to decode or its CRC32 is wrong */
    PKG_E_TARGET_DIGEST, /* the applied image's SHA-256 is wrong */
    PKG_E_TARGET_MD5,    /* the applied image's MD5 is wrong */
    PKG_E_IO,            /* flash or file error */
    PKG_E_INTERRUPTED,   /* a power loss stopped the apply and the job was rolled back */
    PKG_E_COUNT
};

struct pkg_hdr {
    uint8_t kind, flags;
    uint32_t seg_size, seg_count, table_crc;
    uint64_t source_size, target_size;
    uint8_t source_sha256[32], target_sha256[32], target_md5[16];
    uint32_t source_crc32;
    char project[FW_NAME_MAX + 1], baseline[FW_NAME_MAX + 1];
    char source_rev[FW_REV_MAX + 1], target_rev[FW_REV_MAX + 1];
    uint64_t table_off, payload_off, payload_size, sig_off;
    uint32_t sig_size;
};

struct pkg_seg {
    uint64_t off; /* from the payload start */
    uint32_t len;
    uint8_t codec;
    uint32_t crc32; /* of the target bytes of this segment */
};

/* A package held in memory, read through the delta_read_fn interface pkg_read_table and
 * pkg_verify_signature take (a module reads its package from UFS the same way). */
struct pkg_mem {
    const uint8_t *p;
    size_t len;
};

/* delta_read_fn over a struct pkg_mem: 0, or -ENODATA past its end (reported as truncation). */
int pkg_mem_read(void *ctx, uint64_t off, void *buf, size_t len);

/* Short English text of an error ("header CRC mismatch"). */
const char *pkg_err_name(enum pkg_err e);

/*
 * Parses and checks the header in buf[0, len) (len >= PKG_HDR) against the package's total size:
 * magic, format, CRC, kind/flags, layout (segment size a multiple of 4 KiB, count matches the
 * target size, table and payload and signature inside the file, no overlaps). Returns PKG_OK or
 * the first error found.
 */
enum pkg_err pkg_parse_header(const uint8_t *buf, size_t len, uint64_t file_size,
                              struct pkg_hdr *h);

/* Writes h as a 512-byte header (CRC included) into buf. */
void pkg_write_header(const struct pkg_hdr *h, uint8_t buf[PKG_HDR]);

/*
 * Reads and checks the segment table through rd: its CRC, each entry inside the payload, codecs
 * known and allowed for the kind (full and mini_2 packages may not reference a source).
 * *segs is malloc'd (h->seg_count entries). PKG_OK, PKG_E_TABLE, PKG_E_CODEC, PKG_E_TRUNCATED,
 * PKG_E_IO.
 */
enum pkg_err pkg_read_table(const struct pkg_hdr *h, delta_read_fn *rd, void *ctx,
                            struct pkg_seg **segs);

/* Serializes segs into h->seg_count entries of PKG_SEG_ENTRY bytes at out (the generator). */
void pkg_write_table(const struct pkg_hdr *h, const struct pkg_seg *segs, uint8_t *out);

/*
 * Verifies the signature with a PEM or DER public key (ECDSA P-256). PKG_OK, PKG_E_UNSIGNED (no
 * signature), PKG_E_SIGNATURE, PKG_E_IO.
 */
enum pkg_err pkg_verify_signature(const struct pkg_hdr *h, delta_read_fn *rd, void *ctx,
                                  const uint8_t *key, size_t key_len);

/* ---- Generator side (modtwin pack); mbedtls stays fenced in pkg.c ---------------------------- */

/* The largest segment size pkg_parse_header accepts (bounds the apply engine's segment buffer). */
#define PKG_SEG_SIZE_MAX (16u << 20)

/*
 * Digests of buf[0, len) as the header holds them: SHA-256, MD5 and zlib CRC32; any output may
 * be NULL. 0 or -EIO.
 */
int pkg_digest(const uint8_t *buf, size_t len, uint8_t sha256[32], uint8_t md5[16],
               uint32_t *crc32);

/*
 * Signs buf[0, len) (normally the package bytes [0, signature offset)) with an ECDSA P-256
 * private key in PEM or DER (key_len may or may not count a PEM's final NUL): DER signature of
 * the SHA-256 into sig[PKG_SIG_MAX], *sig_len its length. 0, -EINVAL (not a P-256 private key),
 * -ENOMEM, -EIO.
 */
int pkg_sign(const uint8_t *buf, size_t len, const uint8_t *key, size_t key_len,
             uint8_t sig[PKG_SIG_MAX], size_t *sig_len);

#endif
