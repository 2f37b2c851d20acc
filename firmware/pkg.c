/*
 * pkg.c - the update-package container (layout in firmware/pkg.h, user reference in
 * docs/package-format.md): header parse and write, segment table read and write, the ECDSA
 * P-256 signature, and the digests the generator stores.
 *
 * It is the only file that speaks mbedtls 2.28 (sha256/md5 *_ret variants, pk parse/sign/verify).
 * It does NOT decode segments (firmware/delta.c), apply anything (firmware/fota*) or build
 * packages (tools/pack.c). Every input is untrusted (packages come off the network): nothing here
 * asserts, every size is checked before it is added, and parse errors come in a fixed order.
 */
#include "firmware/pkg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/md5.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>
#include <zlib.h>

/* Header field offsets (firmware/pkg.h draws the map). */
enum {
    PKG_O_MAGIC = 0,
    PKG_O_FORMAT = 4,
    PKG_O_HDR_SIZE = 6,
    PKG_O_KIND = 8,
    PKG_O_FLAGS = 9,
    PKG_O_SEG_SIZE = 12,
    PKG_O_SEG_COUNT = 16,
    PKG_O_TABLE_CRC = 20,
    PKG_O_SOURCE_SIZE = 24,
    PKG_O_TARGET_SIZE = 32,
    PKG_O_SOURCE_SHA = 40,
    PKG_O_TARGET_SHA = 72,
    PKG_O_TARGET_MD5 = 104,
    PKG_O_SOURCE_CRC = 120,
    PKG_O_PROJECT = 128,
    PKG_O_BASELINE = 160,
    PKG_O_SOURCE_REV = 192,
    PKG_O_TARGET_REV = 256,
    PKG_O_TABLE_OFF = 320,
    PKG_O_PAYLOAD_OFF = 328,
    PKG_O_PAYLOAD_SIZE = 336,
    PKG_O_SIG_OFF = 344,
    PKG_O_SIG_SIZE = 352,
    PKG_O_CRC = 508,
};

/* What this reader understands; anything else is refused before the CRC is even computed. */
#define PKG_FORMAT     1u
#define PKG_UNIT       4096u /* segment sizes are multiples of the erase unit */
#define PKG_F_KNOWN    (PKG_F_SIGNED | PKG_F_INPLACE)
#define PKG_TBL_CHUNK  64u   /* table entries read per call of the reader */
#define PKG_HASH_CHUNK 4096u /* bytes hashed per call of the reader when verifying */

/*
 * Texts users see (`pack inspect`, `pack apply`, traces); families map the codes, never these
 * strings, to their documented result codes.
 */
static const char *const pkg_err_names[PKG_E_COUNT] = {
    [PKG_OK] = "ok",
    [PKG_E_TRUNCATED] = "package truncated",
    [PKG_E_MAGIC] = "not a package (bad magic)",
    [PKG_E_FORMAT] = "unknown package format",
    [PKG_E_HDR_CRC] = "header CRC mismatch",
    [PKG_E_KIND] = "unknown package kind or flags",
    [PKG_E_LAYOUT] = "inconsistent package layout",
    [PKG_E_TABLE] = "segment table corrupt",
    [PKG_E_CODEC] = "codec unknown or not allowed for this kind",
    [PKG_E_SIGNATURE] = "signature mismatch",
    [PKG_E_UNSIGNED] = "package not signed",
    [PKG_E_PROJECT] = "package built for another project",
    [PKG_E_BASELINE] = "package built for another baseline",
    [PKG_E_SOURCE_REV] = "package built from another revision",
    [PKG_E_SOURCE_DIGEST] = "running image is not the package's source",
    [PKG_E_TOO_BIG] = "target does not fit the partition",
    [PKG_E_SEGMENT] = "segment failed to decode",
    [PKG_E_TARGET_DIGEST] = "target SHA-256 mismatch",
    [PKG_E_TARGET_MD5] = "target MD5 mismatch",
    [PKG_E_IO] = "I/O error",
    [PKG_E_INTERRUPTED] = "interrupted by a power loss, rolled back",
};

const char *pkg_err_name(enum pkg_err e)
{
    if ((unsigned)e >= PKG_E_COUNT)
        return "unknown error";
    return pkg_err_names[e];
}

/* ---- little-endian fields -------------------------------------------------------------------- */

/* Byte by byte, so neither the host's endianness nor the buffer's alignment matters. */

static uint32_t pkg_get16(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t pkg_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t pkg_get64(const uint8_t *p)
{
    return (uint64_t)pkg_get32(p) | (uint64_t)pkg_get32(p + 4) << 32;
}

static void pkg_put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void pkg_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void pkg_put64(uint8_t *p, uint64_t v)
{
    pkg_put32(p, (uint32_t)v);
    pkg_put32(p + 4, (uint32_t)(v >> 32));
}

/* zlib's crc32 takes a uInt length: feed it in pieces so any size_t works. */
static uint32_t pkg_crc32(uint32_t crc, const uint8_t *p, size_t len)
{
    uLong c = crc;

    while (len) {
        uInt n = len > 0x40000000u ? 0x40000000u : (uInt)len;

        c = crc32(c, p, n);
        p += n;
        len -= n;
    }
    return (uint32_t)c;
}

/* A string field: must hold its NUL inside the field (cap = field size); copies it out. */
static bool pkg_get_str(const uint8_t *p, size_t cap, char *out)
{
    const uint8_t *nul = memchr(p, 0, cap);

    if (!nul)
        return false;
    memcpy(out, p, (size_t)(nul - p) + 1);
    return true;
}

/* Writes s NUL-padded into a cap-byte field, cut to cap - 1 characters. */
static void pkg_put_str(uint8_t *p, size_t cap, const char *s)
{
    size_t n = strnlen(s, cap - 1);

    memset(p, 0, cap);
    memcpy(p, s, n);
}

/* delta and mini_1 reference the running image; full and mini_2 carry the whole target. */
static bool pkg_kind_has_source(uint8_t kind)
{
    return kind == PKG_DELTA || kind == PKG_MINI_1;
}

/* ---- header ---------------------------------------------------------------------------------- */

/*
 * Checks, in this order, returning the first failure (docs/package-format.md lists it for users):
 *   1 fewer than 512 bytes (buffer or file)                          TRUNCATED
 *   2 magic                                                          MAGIC
 *   3 format version, header size                                    FORMAT
 *   4 CRC32 of bytes 0..507                                          HDR_CRC
 *   5 kind, unknown flag bits, in-place flag on a kind without source KIND
 *   6 segment size (0, not a 4 KiB multiple, > PKG_SEG_SIZE_MAX), target size 0, segment count,
 *     source size 0 for delta kinds, a string without its NUL, regions out of order / overlapping
 *     / overflowing, signed flag vs signature offset and size, signature size > PKG_SIG_MAX
 *                                                                    LAYOUT
 *   7 the file ends before the last region                           TRUNCATED
 *   8 bytes after the last region                                    LAYOUT
 * Reserved bytes are ignored (the CRC covers them): later formats may use them.
 */
enum pkg_err pkg_parse_header(const uint8_t *buf, size_t len, uint64_t file_size, struct pkg_hdr *h)
{
    uint64_t target, count, tbl_end, pay_end, end;

    if (len < PKG_HDR || file_size < PKG_HDR)
        return PKG_E_TRUNCATED;
    if (memcmp(buf + PKG_O_MAGIC, PKG_MAGIC, 4) != 0)
        return PKG_E_MAGIC;
    if (pkg_get16(buf + PKG_O_FORMAT) != PKG_FORMAT || pkg_get16(buf + PKG_O_HDR_SIZE) != PKG_HDR)
        return PKG_E_FORMAT;
    if (pkg_crc32(0, buf, PKG_O_CRC) != pkg_get32(buf + PKG_O_CRC))
        return PKG_E_HDR_CRC;

    /* From here on the bytes are the generator's: decode everything, then judge it. */
    memset(h, 0, sizeof(*h));
    h->kind = buf[PKG_O_KIND];
    h->flags = buf[PKG_O_FLAGS];
    if (h->kind < PKG_DELTA || h->kind > PKG_MINI_2 || (h->flags & ~PKG_F_KNOWN))
        return PKG_E_KIND;
    /* In place only means something when segments reference the source being overwritten. */
    if ((h->flags & PKG_F_INPLACE) && !pkg_kind_has_source(h->kind))
        return PKG_E_KIND;

    h->seg_size = pkg_get32(buf + PKG_O_SEG_SIZE);
    h->seg_count = pkg_get32(buf + PKG_O_SEG_COUNT);
    h->table_crc = pkg_get32(buf + PKG_O_TABLE_CRC);
    h->source_size = pkg_get64(buf + PKG_O_SOURCE_SIZE);
    h->target_size = pkg_get64(buf + PKG_O_TARGET_SIZE);
    memcpy(h->source_sha256, buf + PKG_O_SOURCE_SHA, 32);
    memcpy(h->target_sha256, buf + PKG_O_TARGET_SHA, 32);
    memcpy(h->target_md5, buf + PKG_O_TARGET_MD5, 16);
    h->source_crc32 = pkg_get32(buf + PKG_O_SOURCE_CRC);
    h->table_off = pkg_get64(buf + PKG_O_TABLE_OFF);
    h->payload_off = pkg_get64(buf + PKG_O_PAYLOAD_OFF);
    h->payload_size = pkg_get64(buf + PKG_O_PAYLOAD_SIZE);
    h->sig_off = pkg_get64(buf + PKG_O_SIG_OFF);
    h->sig_size = pkg_get32(buf + PKG_O_SIG_SIZE);

    /*
     * Segments are erase-unit multiples (an apply writes whole units) and bounded, because the
     * apply engine allocates one segment and one patch buffer from this field.
     */
    if (h->seg_size == 0 || h->seg_size % PKG_UNIT || h->seg_size > PKG_SEG_SIZE_MAX)
        return PKG_E_LAYOUT;
    target = h->target_size;
    if (target == 0)
        return PKG_E_LAYOUT;
    /* ceil(target / seg) without the overflow of target + seg - 1 */
    count = target / h->seg_size + (target % h->seg_size != 0);
    if (count != h->seg_count)
        return PKG_E_LAYOUT;
    if (pkg_kind_has_source(h->kind) && h->source_size == 0)
        return PKG_E_LAYOUT;
    /* A string that fills its field without a NUL would be read past it by every consumer. */
    if (!pkg_get_str(buf + PKG_O_PROJECT, sizeof(h->project), h->project) ||
        !pkg_get_str(buf + PKG_O_BASELINE, sizeof(h->baseline), h->baseline) ||
        !pkg_get_str(buf + PKG_O_SOURCE_REV, sizeof(h->source_rev), h->source_rev) ||
        !pkg_get_str(buf + PKG_O_TARGET_REV, sizeof(h->target_rev), h->target_rev))
        return PKG_E_LAYOUT;

    /* Regions in file order: header < table <= payload <= signature; gaps allowed (alignment). */
    if (h->table_off < PKG_HDR ||
        h->table_off > UINT64_MAX - (uint64_t)h->seg_count * PKG_SEG_ENTRY)
        return PKG_E_LAYOUT;
    tbl_end = h->table_off + (uint64_t)h->seg_count * PKG_SEG_ENTRY;
    if (h->payload_off < tbl_end || h->payload_off > UINT64_MAX - h->payload_size)
        return PKG_E_LAYOUT;
    pay_end = h->payload_off + h->payload_size;
    /* Flag and fields must agree: clearing the flag must not turn "signed" into "unsigned". */
    if (h->flags & PKG_F_SIGNED) {
        if (h->sig_off == 0 || h->sig_size == 0 || h->sig_size > PKG_SIG_MAX)
            return PKG_E_LAYOUT;
        if (h->sig_off < pay_end || h->sig_off > UINT64_MAX - h->sig_size)
            return PKG_E_LAYOUT;
        end = h->sig_off + h->sig_size;
    } else {
        if (h->sig_off != 0 || h->sig_size != 0)
            return PKG_E_LAYOUT;
        end = pay_end;
    }
    /*
     * Consistent but short is a download that stopped (retry); anything after the last region
     * is garbage the signature would not cover (refuse).
     */
    if (file_size < end)
        return PKG_E_TRUNCATED;
    if (file_size > end)
        return PKG_E_LAYOUT;
    return PKG_OK;
}

/*
 * The inverse of pkg_parse_header for the generator. Reserved bytes are zero; the CRC is last, so
 * a signer writes the header (with sig_off / sig_size) before hashing [0, sig_off).
 */
void pkg_write_header(const struct pkg_hdr *h, uint8_t buf[PKG_HDR])
{
    memset(buf, 0, PKG_HDR);
    memcpy(buf + PKG_O_MAGIC, PKG_MAGIC, 4);
    pkg_put16(buf + PKG_O_FORMAT, PKG_FORMAT);
    pkg_put16(buf + PKG_O_HDR_SIZE, PKG_HDR);
    buf[PKG_O_KIND] = h->kind;
    buf[PKG_O_FLAGS] = h->flags;
    pkg_put32(buf + PKG_O_SEG_SIZE, h->seg_size);
    pkg_put32(buf + PKG_O_SEG_COUNT, h->seg_count);
    pkg_put32(buf + PKG_O_TABLE_CRC, h->table_crc);
    pkg_put64(buf + PKG_O_SOURCE_SIZE, h->source_size);
    pkg_put64(buf + PKG_O_TARGET_SIZE, h->target_size);
    memcpy(buf + PKG_O_SOURCE_SHA, h->source_sha256, 32);
    memcpy(buf + PKG_O_TARGET_SHA, h->target_sha256, 32);
    memcpy(buf + PKG_O_TARGET_MD5, h->target_md5, 16);
    pkg_put32(buf + PKG_O_SOURCE_CRC, h->source_crc32);
    pkg_put_str(buf + PKG_O_PROJECT, sizeof(h->project), h->project);
    pkg_put_str(buf + PKG_O_BASELINE, sizeof(h->baseline), h->baseline);
    pkg_put_str(buf + PKG_O_SOURCE_REV, sizeof(h->source_rev), h->source_rev);
    pkg_put_str(buf + PKG_O_TARGET_REV, sizeof(h->target_rev), h->target_rev);
    pkg_put64(buf + PKG_O_TABLE_OFF, h->table_off);
    pkg_put64(buf + PKG_O_PAYLOAD_OFF, h->payload_off);
    pkg_put64(buf + PKG_O_PAYLOAD_SIZE, h->payload_size);
    pkg_put64(buf + PKG_O_SIG_OFF, h->sig_off);
    pkg_put32(buf + PKG_O_SIG_SIZE, h->sig_size);
    pkg_put32(buf + PKG_O_CRC, pkg_crc32(0, buf, PKG_O_CRC));
}

/* ---- segment table --------------------------------------------------------------------------- */

/* A reader's -ENODATA means "the package ends here" (a short download); anything else is I/O. */
static enum pkg_err pkg_read_err(int rc)
{
    return rc == -ENODATA ? PKG_E_TRUNCATED : PKG_E_IO;
}

/* Checks one decoded entry of segment i against the header (after the table CRC matched). */
static enum pkg_err pkg_check_seg(const struct pkg_hdr *h, uint32_t i, const struct pkg_seg *s)
{
    uint64_t seg_len = h->seg_size;

    if (s->codec >= DELTA_CODEC_COUNT)
        return PKG_E_CODEC;
    if (!pkg_kind_has_source(h->kind) &&
        (s->codec == DELTA_ZSTD_SRC || s->codec == DELTA_BSDIFF_ZSTD))
        return PKG_E_CODEC;
    if (i == h->seg_count - 1)
        seg_len = h->target_size - (uint64_t)i * h->seg_size;
    /*
     * A patch is never longer than its segment (the generator falls back to RAW), so the apply
     * engine can hold one patch in a segment-sized buffer; RAW is exactly the segment.
     */
    if (s->len == 0 || s->len > seg_len || (s->codec == DELTA_RAW && s->len != seg_len))
        return PKG_E_TABLE;
    if (s->off > h->payload_size || s->len > h->payload_size - s->off)
        return PKG_E_TABLE;
    return PKG_OK;
}

enum pkg_err pkg_read_table(const struct pkg_hdr *h, delta_read_fn *rd, void *ctx,
                            struct pkg_seg **segs)
{
    uint8_t chunk[PKG_TBL_CHUNK * PKG_SEG_ENTRY];
    struct pkg_seg *s;
    uint32_t crc = 0, i, n;
    enum pkg_err err = PKG_OK;
    int rc;

    /* h may come from anywhere (the caller's copy of a header): no zero-sized allocation. */
    *segs = NULL;
    if (h->seg_count == 0)
        return PKG_E_TABLE;
    s = calloc(h->seg_count, sizeof(*s));
    if (!s)
        return PKG_E_IO;
    /* Entries are decoded while the CRC runs; none is trusted before the CRC has matched. */
    for (i = 0; i < h->seg_count; i += n) {
        n = h->seg_count - i < PKG_TBL_CHUNK ? h->seg_count - i : PKG_TBL_CHUNK;
        rc = rd(ctx, h->table_off + (uint64_t)i * PKG_SEG_ENTRY, chunk, n * PKG_SEG_ENTRY);
        if (rc) {
            err = pkg_read_err(rc);
            goto out;
        }
        crc = pkg_crc32(crc, chunk, n * PKG_SEG_ENTRY);
        for (uint32_t j = 0; j < n; j++) {
            const uint8_t *e = chunk + j * PKG_SEG_ENTRY;

            s[i + j].off = pkg_get64(e);
            s[i + j].len = pkg_get32(e + 8);
            s[i + j].codec = e[12];
            s[i + j].crc32 = pkg_get32(e + 16);
        }
    }
    /* A wrong CRC is reported as such even if some entry is also out of range. */
    if (crc != h->table_crc) {
        err = PKG_E_TABLE;
        goto out;
    }
    for (i = 0; i < h->seg_count && err == PKG_OK; i++)
        err = pkg_check_seg(h, i, &s[i]);
out:
    if (err == PKG_OK)
        *segs = s;
    else
        free(s);
    return err;
}

/* Reserved bytes of each entry are written as zero, as pkg_read_table's forward rule expects. */
void pkg_write_table(const struct pkg_hdr *h, const struct pkg_seg *segs, uint8_t *out)
{
    for (uint32_t i = 0; i < h->seg_count; i++) {
        uint8_t *e = out + (size_t)i * PKG_SEG_ENTRY;

        memset(e, 0, PKG_SEG_ENTRY);
        pkg_put64(e, segs[i].off);
        pkg_put32(e + 8, segs[i].len);
        e[12] = segs[i].codec;
        pkg_put32(e + 16, segs[i].crc32);
    }
}

/* ---- digests and signature (mbedtls 2.28) ---------------------------------------------------- */

/* One pass per digest: the generator holds whole images in RAM, the module never calls this. */
int pkg_digest(const uint8_t *buf, size_t len, uint8_t sha256[32], uint8_t md5[16],
               uint32_t *crc32_out)
{
    int rc = 0;

    if (sha256 && mbedtls_sha256_ret(buf, len, sha256, 0) != 0)
        rc = -EIO;
    if (md5 && mbedtls_md5_ret(buf, len, md5) != 0)
        rc = -EIO;
    if (crc32_out)
        *crc32_out = pkg_crc32(0, buf, len);
    return rc;
}

/*
 * mbedtls wants a PEM key with its final NUL counted in the length; callers hand over file
 * contents without one. Copies into a NUL-terminated buffer when needed (*copy: free it).
 */
static int pkg_key_bytes(const uint8_t *key, size_t key_len, const uint8_t **out, size_t *out_len,
                         uint8_t **copy)
{
    *copy = NULL;
    *out = key;
    *out_len = key_len;
    if (key_len == 0 || key[key_len - 1] == '\0')
        return 0;
    if (key_len < 10 || memmem(key, key_len, "-----BEGIN", 10) == NULL)
        return 0; /* DER */
    *copy = malloc(key_len + 1);
    if (!*copy)
        return -ENOMEM;
    memcpy(*copy, key, key_len);
    (*copy)[key_len] = '\0';
    *out = *copy;
    *out_len = key_len + 1;
    return 0;
}

/* The only curve packages use. */
static bool pkg_key_is_p256(const mbedtls_pk_context *pk)
{
    return mbedtls_pk_get_type(pk) == MBEDTLS_PK_ECKEY &&
           mbedtls_pk_ec(*pk)->grp.id == MBEDTLS_ECP_DP_SECP256R1;
}

/*
 * Host side only. mbedtls' ECDSA is deterministic (RFC 6979) when MBEDTLS_ECDSA_DETERMINISTIC is
 * on, as in Debian's build: the DRBG then only blinds the computation, and the same inputs give
 * the same signature (and so the same package bytes).
 */
int pkg_sign(const uint8_t *buf, size_t len, const uint8_t *key, size_t key_len,
             uint8_t sig[PKG_SIG_MAX], size_t *sig_len)
{
    static const char pers[] = "modtwin pkg_sign";
    unsigned char der[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
    uint8_t hash[32], *copy;
    mbedtls_pk_context pk;
    mbedtls_entropy_context ent;
    mbedtls_ctr_drbg_context drbg;
    const uint8_t *k;
    size_t klen, dlen = 0;
    int rc;

    rc = pkg_key_bytes(key, key_len, &k, &klen, &copy);
    if (rc)
        return rc;
    mbedtls_pk_init(&pk);
    mbedtls_entropy_init(&ent);
    mbedtls_ctr_drbg_init(&drbg);
    if (mbedtls_pk_parse_key(&pk, k, klen, NULL, 0) != 0 || !pkg_key_is_p256(&pk)) {
        rc = -EINVAL;
        goto out;
    }
    if (mbedtls_sha256_ret(buf, len, hash, 0) != 0 ||
        mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &ent, (const unsigned char *)pers,
                              sizeof(pers) - 1) != 0) {
        rc = -EIO;
        goto out;
    }
    /* 2.28 signature: no output-size argument; der[] is MBEDTLS_PK_SIGNATURE_MAX_SIZE long. */
    if (mbedtls_pk_sign(&pk, MBEDTLS_MD_SHA256, hash, sizeof(hash), der, &dlen,
                        mbedtls_ctr_drbg_random, &drbg) != 0 ||
        dlen == 0 || dlen > PKG_SIG_MAX) {
        rc = -EIO;
        goto out;
    }
    memcpy(sig, der, dlen);
    *sig_len = dlen;
out:
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&ent);
    mbedtls_pk_free(&pk);
    free(copy);
    return rc;
}

/* SHA-256 of package bytes [0, end) read through rd in PKG_HASH_CHUNK pieces. */
static enum pkg_err pkg_hash_prefix(delta_read_fn *rd, void *ctx, uint64_t end, uint8_t hash[32])
{
    uint8_t chunk[PKG_HASH_CHUNK];
    mbedtls_sha256_context sha;
    enum pkg_err err = PKG_OK;
    int rc;

    mbedtls_sha256_init(&sha);
    if (mbedtls_sha256_starts_ret(&sha, 0) != 0) {
        err = PKG_E_IO;
        goto out;
    }
    for (uint64_t off = 0; off < end;) {
        size_t n = end - off < sizeof(chunk) ? (size_t)(end - off) : sizeof(chunk);

        rc = rd(ctx, off, chunk, n);
        if (rc) {
            err = pkg_read_err(rc);
            goto out;
        }
        if (mbedtls_sha256_update_ret(&sha, chunk, n) != 0) {
            err = PKG_E_IO;
            goto out;
        }
        off += n;
    }
    if (mbedtls_sha256_finish_ret(&sha, hash) != 0)
        err = PKG_E_IO;
out:
    mbedtls_sha256_free(&sha);
    return err;
}

/*
 * Streams the signed range through a 4 KiB buffer, so a module verifies a package in its file
 * area without holding it in RAM. A mismatch is SIGNATURE; a key that does not parse is IO (the
 * module's configuration, not the package, is broken).
 */
enum pkg_err pkg_verify_signature(const struct pkg_hdr *h, delta_read_fn *rd, void *ctx,
                                  const uint8_t *key, size_t key_len)
{
    uint8_t hash[32], sig[PKG_SIG_MAX], *copy;
    mbedtls_pk_context pk;
    enum pkg_err err;
    const uint8_t *k;
    size_t klen;
    int rc;

    if (!(h->flags & PKG_F_SIGNED) || h->sig_off == 0 || h->sig_size == 0)
        return PKG_E_UNSIGNED;
    /* A header that did not come from pkg_parse_header may still say anything. */
    if (h->sig_size > PKG_SIG_MAX)
        return PKG_E_SIGNATURE;
    if (pkg_key_bytes(key, key_len, &k, &klen, &copy) != 0)
        return PKG_E_IO;
    mbedtls_pk_init(&pk);
    if (mbedtls_pk_parse_public_key(&pk, k, klen) != 0 || !pkg_key_is_p256(&pk)) {
        err = PKG_E_IO; /* the verifier's key is broken: not the package's fault */
        goto out;
    }
    err = pkg_hash_prefix(rd, ctx, h->sig_off, hash);
    if (err != PKG_OK)
        goto out;
    rc = rd(ctx, h->sig_off, sig, h->sig_size);
    if (rc) {
        err = pkg_read_err(rc);
        goto out;
    }
    /* mbedtls refuses trailing bytes after the DER (SIG_LEN_MISMATCH): sig_size must be exact. */
    if (mbedtls_pk_verify(&pk, MBEDTLS_MD_SHA256, hash, sizeof(hash), sig, h->sig_size) != 0)
        err = PKG_E_SIGNATURE;
out:
    mbedtls_pk_free(&pk);
    free(copy);
    return err;
}

int pkg_mem_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    const struct pkg_mem *m = ctx;

    if (off > m->len || len > m->len - off)
        return -ENODATA;
    memcpy(buf, m->p + off, len);
    return 0;
}
