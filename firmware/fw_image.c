/*
 * fw_image.c: the firmware image container of firmware/fw_image.h: a 256-byte header (magic,
 * format, revision/project/baseline strings, body size and SHA-256, CRC32 of the first 176
 * bytes) followed by the body. Parsing checks everything a boot loader would before trusting
 * an image; it never trusts a length it has not checked against the buffer. Bodies themselves
 * come from the generator (fw_gen.c); this file only frames and checks them.
 */
#include "firmware/fw_image.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/sha256.h>
#include <zlib.h>

/* Field offsets of the header, as drawn in fw_image.h. */
#define FW_IMAGE_OFF_FORMAT   4
#define FW_IMAGE_OFF_HDRSIZE  6
#define FW_IMAGE_OFF_REV      8
#define FW_IMAGE_OFF_PROJECT  72
#define FW_IMAGE_OFF_BASELINE 104
#define FW_IMAGE_OFF_BODYSIZE 136
#define FW_IMAGE_OFF_SHA      144
#define FW_IMAGE_OFF_CRC      176
#define FW_IMAGE_FORMAT       1u

/*
 * Little-endian accessors: the header is a byte layout, never a struct overlaid on the buffer,
 * so alignment and host byte order do not matter (the flash model hands out unaligned data).
 */

static uint16_t fw_image_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t fw_image_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t fw_image_get64(const uint8_t *p)
{
    return (uint64_t)fw_image_get32(p) | (uint64_t)fw_image_get32(p + 4) << 32;
}

static void fw_image_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void fw_image_put64(uint8_t *p, uint64_t v)
{
    fw_image_put32(p, (uint32_t)v);
    fw_image_put32(p + 4, (uint32_t)(v >> 32));
}

/* The CRC covers bytes 0..175: everything but itself and the reserved tail. */
static uint32_t fw_image_crc(const uint8_t *hdr)
{
    return (uint32_t)crc32(0L, hdr, FW_IMAGE_OFF_CRC);
}

/*
 * Copies the NUL-terminated string of field[0, size) into out[size]. The string must end
 * inside the field (at most size - 1 characters) and be printable ASCII: these strings go
 * verbatim into ATI / AT+CGMR answers, where a CR or LF would forge a response line.
 */
static int fw_image_get_str(const uint8_t *field, size_t size, char *out)
{
    const uint8_t *nul = memchr(field, 0, size);

    if (!nul)
        return -EBADMSG;
    for (const uint8_t *p = field; p < nul; p++)
        if (*p < 0x20 || *p > 0x7e)
            return -EBADMSG;
    memcpy(out, field, (size_t)(nul - field));
    out[nul - field] = '\0';
    return 0;
}

/*
 * The checks run in the order a boot loader would trust the fields: the fixed words first (so
 * random data is "bad magic", the most useful message), then the CRC, then what the CRC
 * vouches for. The reserved bytes 180..255 are neither covered nor checked: a later format may
 * use them, and a reader of format 1 must then not reject the image for it.
 */
int fw_image_check(const uint8_t *buf, size_t len, bool check_body, struct fw_image_info *info,
                   const char **why)
{
    struct fw_image_info tmp;
    const char *reason = NULL;
    uint8_t digest[32];
    int rc = -EBADMSG;

    if (!info)
        info = &tmp;
    if (!buf || len < FW_IMAGE_HDR) {
        reason = "shorter than the 256-byte header";
        goto out;
    }
    if (memcmp(buf, FW_IMAGE_MAGIC, 4) != 0) {
        reason = "bad magic (not an MTFW image)";
        goto out;
    }
    if (fw_image_get16(buf + FW_IMAGE_OFF_FORMAT) != FW_IMAGE_FORMAT) {
        reason = "unknown format version";
        goto out;
    }
    if (fw_image_get16(buf + FW_IMAGE_OFF_HDRSIZE) != FW_IMAGE_HDR) {
        reason = "bad header size";
        goto out;
    }
    /* The CRC first: a field that fails a later check was then written that way, not torn. */
    if (fw_image_get32(buf + FW_IMAGE_OFF_CRC) != fw_image_crc(buf)) {
        reason = "header CRC mismatch";
        goto out;
    }
    if (fw_image_get_str(buf + FW_IMAGE_OFF_REV, FW_REV_MAX + 1, info->revision) < 0 ||
        !info->revision[0]) {
        reason = "revision empty, unterminated or not printable";
        goto out;
    }
    if (fw_image_get_str(buf + FW_IMAGE_OFF_PROJECT, FW_NAME_MAX + 1, info->project) < 0) {
        reason = "project unterminated or not printable";
        goto out;
    }
    if (fw_image_get_str(buf + FW_IMAGE_OFF_BASELINE, FW_NAME_MAX + 1, info->baseline) < 0) {
        reason = "baseline unterminated or not printable";
        goto out;
    }
    info->body_size = fw_image_get64(buf + FW_IMAGE_OFF_BODYSIZE);
    memcpy(info->body_sha256, buf + FW_IMAGE_OFF_SHA, 32);
    /* Subtract on the known-good side: body_size + 256 could wrap for a hostile header. */
    if (info->body_size > len - FW_IMAGE_HDR) {
        reason = "body size beyond the end of the data (truncated image)";
        goto out;
    }
    /* The header is good from here on: info stays filled even if the body then fails. */
    rc = 0;
    if (!check_body)
        goto out;
    /* A body larger than size_t cannot have passed the check above, so the cast is exact. */
    if (mbedtls_sha256_ret(buf + FW_IMAGE_HDR, (size_t)info->body_size, digest, 0) != 0 ||
        memcmp(digest, info->body_sha256, 32) != 0) {
        reason = "body SHA-256 mismatch";
        rc = -EILSEQ;
    }
out:
    if (why)
        *why = reason;
    return rc;
}

/* The plain form for callers that only branch on the result (boot, FOTA verify). */
int fw_image_parse(const uint8_t *buf, size_t len, bool check_body, struct fw_image_info *info)
{
    return fw_image_check(buf, len, check_body, info, NULL);
}

uint64_t fw_image_size(const struct fw_image_info *info)
{
    return FW_IMAGE_HDR + info->body_size;
}

/* Copies at most max characters of s into a zeroed field: the field stays NUL-terminated. */
static void fw_image_put_str(uint8_t *field, const char *s, size_t max)
{
    memcpy(field, s, strnlen(s, max));
}

/*
 * Zero first: strings are NUL-padded and the reserved tail is zero, so two headers of the same
 * info are byte-identical (package digests depend on it).
 */
void fw_image_header(const struct fw_image_info *info, uint8_t hdr[FW_IMAGE_HDR])
{
    memset(hdr, 0, FW_IMAGE_HDR);
    memcpy(hdr, FW_IMAGE_MAGIC, 4);
    hdr[FW_IMAGE_OFF_FORMAT] = FW_IMAGE_FORMAT;
    hdr[FW_IMAGE_OFF_HDRSIZE] = FW_IMAGE_HDR & 0xff;
    hdr[FW_IMAGE_OFF_HDRSIZE + 1] = FW_IMAGE_HDR >> 8;
    fw_image_put_str(hdr + FW_IMAGE_OFF_REV, info->revision, FW_REV_MAX);
    fw_image_put_str(hdr + FW_IMAGE_OFF_PROJECT, info->project, FW_NAME_MAX);
    fw_image_put_str(hdr + FW_IMAGE_OFF_BASELINE, info->baseline, FW_NAME_MAX);
    fw_image_put64(hdr + FW_IMAGE_OFF_BODYSIZE, info->body_size);
    memcpy(hdr + FW_IMAGE_OFF_SHA, info->body_sha256, 32);
    fw_image_put32(hdr + FW_IMAGE_OFF_CRC, fw_image_crc(hdr));
}

void fw_image_seal(struct fw_image_info *info, uint8_t *img, const uint8_t *body, size_t body_len)
{
    info->body_size = body_len;
    /* mbedtls 2.28 fails only on bad arguments, which these are not. */
    (void)mbedtls_sha256_ret(body, body_len, info->body_sha256, 0);
    fw_image_header(info, img);
}

/*
 * Copies s into a string field of out_size bytes; -EINVAL if it does not fit or would not
 * parse back (the factory never makes an image its own parser rejects). NULL means empty.
 */
static int fw_image_set_str(char *out, size_t out_size, const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n >= out_size)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if ((uint8_t)s[i] < 0x20 || (uint8_t)s[i] > 0x7e)
            return -EINVAL;
    memcpy(out, s ? s : "", n + 1);
    return 0;
}

int fw_image_factory(const char *revision, const char *project, const char *baseline,
                     size_t body_size, uint8_t **img, size_t *len)
{
    struct fw_image_info info;
    struct fw_gen g;
    uint8_t *buf;

    memset(&info, 0, sizeof(info));
    if (!revision || !*revision ||
        fw_image_set_str(info.revision, sizeof(info.revision), revision) < 0 ||
        fw_image_set_str(info.project, sizeof(info.project), project) < 0 ||
        fw_image_set_str(info.baseline, sizeof(info.baseline), baseline) < 0)
        return -EINVAL;
    /* An absurd size is an allocation that cannot succeed, not a bad argument. */
    if (body_size > SIZE_MAX - FW_IMAGE_HDR)
        return -ENOMEM;
    buf = malloc(FW_IMAGE_HDR + body_size);
    if (!buf)
        return -ENOMEM;
    /* The body is a function of the revision alone: same revision, same factory image. */
    g.seed = fw_gen_seed(revision);
    g.size = body_size;
    fw_gen_body(&g, buf + FW_IMAGE_HDR);
    fw_image_seal(&info, buf, buf + FW_IMAGE_HDR, body_size);
    *img = buf;
    *len = FW_IMAGE_HDR + body_size;
    return 0;
}
