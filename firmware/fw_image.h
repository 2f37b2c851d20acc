/*
 * Firmware images: what a system partition holds and what ATI / AT+CGMR report.
 *
 *   0    magic "MTFW"            4    u16 format (1), u16 header size (256)
 *   8    revision[64]            72   project[32]          104  baseline[32]
 *   136  u64 body size           144  body SHA-256[32]     176  u32 CRC32 of bytes 0..175
 *   180  reserved, zero up to 256; then the body
 *
 * Integers little-endian, strings NUL-padded. The generator makes deterministic bodies that look
 * like a real build (code-like words, pointer tables, strings, padding) and derived bodies that
 * look like a rebuild of another (scattered edits, inserted and removed runs, shifted pointers).
 */
#ifndef MODTWIN_FIRMWARE_FW_IMAGE_H
#define MODTWIN_FIRMWARE_FW_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FW_IMAGE_MAGIC "MTFW"
#define FW_IMAGE_HDR 256u
#define FW_REV_MAX 63 /* characters of a revision string */
#define FW_NAME_MAX 31 /* characters of project and baseline */

struct fw_image_info {
    char revision[FW_REV_MAX + 1];
    char project[FW_NAME_MAX + 1];
    char baseline[FW_NAME_MAX + 1];
    uint64_t body_size;
    uint8_t body_sha256[32];
};

/*
 * Parses and checks the header of the image in buf[0, len): magic, format, CRC, body size
 * within len. With check_body, also the body's SHA-256. 0; -EBADMSG (not an image, bad CRC,
 * truncated); -EILSEQ (body digest mismatch).
 */
int fw_image_parse(const uint8_t *buf, size_t len, bool check_body, struct fw_image_info *info);

/*
 * fw_image_parse that also says why an image is rejected: *why (if why is not NULL) points to a
 * static string such as "bad magic" or "header CRC mismatch", or NULL on success. On -EILSEQ,
 * info (if not NULL) holds the header's fields, so a caller can show what the image claims to be.
 */
int fw_image_check(const uint8_t *buf, size_t len, bool check_body, struct fw_image_info *info,
                   const char **why);

/* Total size (header + body) of an image with this info. */
uint64_t fw_image_size(const struct fw_image_info *info);

/*
 * Writes the header for info into hdr[FW_IMAGE_HDR] (computes nothing but the CRC: the caller
 * fills body_size and body_sha256, e.g. with fw_image_seal).
 */
void fw_image_header(const struct fw_image_info *info, uint8_t hdr[FW_IMAGE_HDR]);

/* Fills info->body_size and ->body_sha256 from body and writes the header into img[0, 256). */
void fw_image_seal(struct fw_image_info *info, uint8_t *img, const uint8_t *body, size_t body_len);

/* Generator parameters: the same parameters always give the same bytes. */
struct fw_gen {
    uint64_t seed;
    size_t size; /* body bytes */
};

/* A seed derived from a revision string, so that an image is a function of its revision. */
uint64_t fw_gen_seed(const char *revision);

/* Writes a fresh body of g->size bytes into body. */
void fw_gen_body(const struct fw_gen *g, uint8_t *body);

/*
 * Derives a new body from old[0, old_len) like a rebuild would: about change_pct percent of the
 * bytes touched (scattered edits, inserted and removed runs, +small shifts of pointer-like 32-bit
 * words). *new_body is malloc'd, *new_len its size. 0 or -ENOMEM.
 */
int fw_gen_derive(const uint8_t *old, size_t old_len, double change_pct, uint64_t seed,
                  uint8_t **new_body, size_t *new_len);

/* What a derivation did; counts of operations and of the bytes they touched. */
struct fw_gen_stats {
    size_t edits, edit_bytes;     /* scattered edits in code-like words, bytes they changed */
    size_t inserts, insert_bytes; /* inserted runs (4-aligned, multiples of 4 bytes) */
    size_t removes, remove_bytes; /* removed runs (likewise) */
    size_t pointers, fixups;      /* pointer-like words kept, and those moved by a shift */
};

/* fw_gen_derive that also reports what it did into *st (if st is not NULL). */
int fw_gen_derive_stats(const uint8_t *old, size_t old_len, double change_pct, uint64_t seed,
                        uint8_t **new_body, size_t *new_len, struct fw_gen_stats *st);

/* Pointer-like words: 32-bit little-endian values in [FW_GEN_BASE, FW_GEN_BASE + body size). */
#define FW_GEN_BASE 0x08000000u

/*
 * The factory image of a model revision: header (revision, project, baseline) and a body of
 * body_size bytes from fw_gen_seed(revision). *img is malloc'd; *len = 256 + body_size.
 */
int fw_image_factory(const char *revision, const char *project, const char *baseline,
                     size_t body_size, uint8_t **img, size_t *len);

#endif
