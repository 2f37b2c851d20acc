/*
 * delta.c: the per-segment delta decoders of the firmware (RAW, ZSTD, ZSTD_SRC, BSDIFF_ZSTD).
 * Input is hostile (it comes off the network): every length, offset and reference is checked
 * before use, nothing is asserted. Not here: the encoders (tools/delta_enc.c), the BSDIFF40
 * compatibility reader (delta_bsdiff40.c), the package container and the flash writes.
 *
 * BSDIFF_ZSTD patch = one zstd frame (no dictionary) whose content is
 *   u32le ctrl_len | u32le diff_len | u32le extra_len | ctrl[ctrl_len] | diff[] | extra[]
 * ctrl is a list of triples of LEB128 varints (add_len, copy_len, seek), seek zigzag-signed.
 * With sp = 0 at the start, each triple: out += src[sp + k] + diff[k] (mod 256) for k < add_len,
 * sp += add_len; out += the next copy_len extra bytes; sp += seek. sp stays in [0, src.len],
 * diff_len + extra_len == out_len, ctrl_len <= out_len + DELTA_CTRL_SLACK, and ctrl, diff and
 * extra are all consumed exactly when out is full.
 */
#define ZSTD_STATIC_LINKING_ONLY
#include <errno.h>
#include <string.h>
#include <stdlib.h>
#include <zstd.h>

#include "firmware/delta.h"

/* Header inside the BSDIFF_ZSTD frame: three little-endian u32 lengths. */
#define DELTA_HDR_LEN 12u
/* The control stream may exceed the segment by this much (tiny segments need a whole triple). */
#define DELTA_CTRL_SLACK 64u

/* A switch rather than a table of pointers: no relocated data, even read-only. */
const char *delta_codec_name(enum delta_codec c)
{
    switch (c) {
    case DELTA_RAW:
        return "raw";
    case DELTA_ZSTD:
        return "zstd";
    case DELTA_ZSTD_SRC:
        return "zstd-src";
    case DELTA_BSDIFF_ZSTD:
        return "bsdiff-zstd";
    default:
        return "unknown";
    }
}

int delta_dec_init(struct delta_dec *d, size_t seg_max)
{
    size_t cap;

    if (d == NULL)
        return -EINVAL;
    memset(d, 0, sizeof(*d));
    /* scratch = header + ctrl (<= seg + slack) + diff and extra (== seg), overflow-checked */
    if (seg_max > (SIZE_MAX - DELTA_HDR_LEN - DELTA_CTRL_SLACK) / 2)
        return -EINVAL;
    cap = DELTA_HDR_LEN + DELTA_CTRL_SLACK + 2 * seg_max;

    d->dctx = ZSTD_createDCtx();
    d->scratch = malloc(cap);
    if (d->dctx == NULL || d->scratch == NULL) {
        delta_dec_free(d);
        return -ENOMEM;
    }
    /*
     * Frames whose dictionary is a large source declare windows beyond the default limit
     * (2^27); the one-shot decode below never allocates a window buffer, so the maximum
     * costs no RAM and 64 MiB+ sources decode.
     */
    if (ZSTD_isError(ZSTD_DCtx_setParameter(d->dctx, ZSTD_d_windowLogMax, ZSTD_WINDOWLOG_MAX))) {
        delta_dec_free(d);
        return -EINVAL;
    }
    d->scratch_cap = cap;
    d->seg_max = seg_max;
    return 0;
}

void delta_dec_free(struct delta_dec *d)
{
    if (d == NULL)
        return;
    ZSTD_freeDCtx(d->dctx);
    free(d->scratch);
    memset(d, 0, sizeof(*d));
}

/*
 * The bound, not the current use: the DCtx, the by-reference DDict refPrefix creates (its
 * entropy tables; the source itself is referenced, not copied), the scratch and this struct.
 */
size_t delta_dec_ram(const struct delta_dec *d)
{
    size_t dctx;

    if (d == NULL || d->dctx == NULL)
        return 0;
    dctx = ZSTD_sizeof_DCtx(d->dctx);
    if (dctx < ZSTD_estimateDCtxSize() + ZSTD_estimateDDictSize(0, ZSTD_dlm_byRef))
        dctx = ZSTD_estimateDCtxSize() + ZSTD_estimateDDictSize(0, ZSTD_dlm_byRef);
    return sizeof(*d) + dctx + d->scratch_cap;
}

/*
 * Decodes exactly one zstd frame (patch must hold that frame and nothing else) into dst,
 * which must come out exactly dst_len bytes long. dict may be empty (then no dictionary).
 */
static int delta_unzstd(struct delta_dec *d, const uint8_t *dict, size_t dict_len,
                        const uint8_t *patch, size_t patch_len, uint8_t *dst, size_t dst_cap,
                        size_t *dst_len)
{
    size_t fsz, n;

    fsz = ZSTD_findFrameCompressedSize(patch, patch_len);
    if (ZSTD_isError(fsz) || fsz != patch_len)
        return -EBADMSG;
    /* A prefix applies to the next frame only; NULL clears whatever a failed call left. */
    if (ZSTD_isError(ZSTD_DCtx_reset(d->dctx, ZSTD_reset_session_only)))
        return -EBADMSG;
    if (ZSTD_isError(ZSTD_DCtx_refPrefix(d->dctx, dict_len ? dict : NULL, dict_len)))
        return -EBADMSG;
    n = ZSTD_decompressDCtx(d->dctx, dst, dst_cap, patch, patch_len);
    /* a failed frame may leave the prefix armed: clear it so the next call starts clean */
    ZSTD_DCtx_refPrefix(d->dctx, NULL, 0);
    if (ZSTD_isError(n))
        return -EBADMSG;
    *dst_len = n;
    return 0;
}

static uint32_t delta_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* One LEB128 varint from [*p, end); at most 64 bits, no overlong tail. 0 or -EBADMSG. */
static int delta_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    unsigned shift = 0;

    while (*p < end) {
        uint8_t b = *(*p)++;

        if (shift == 63 && (b & 0x7e) != 0)
            return -EBADMSG; /* bits beyond 64 */
        x |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *v = x;
            return 0;
        }
        shift += 7;
        if (shift > 63)
            return -EBADMSG;
    }
    return -EBADMSG; /* truncated */
}

/* Applies the BSDIFF_ZSTD streams in s[0, n) to src into out[0, out_len). */
static int delta_apply_bsdiff(const uint8_t *s, size_t n, const struct delta_src *src, uint8_t *out,
                              size_t out_len)
{
    size_t ctrl_len, diff_len, extra_len, op = 0, sp = 0, dp = 0, ep = 0;
    const uint8_t *cp, *cend, *diff, *extra;

    if (n < DELTA_HDR_LEN)
        return -EBADMSG;
    ctrl_len = delta_le32(s);
    diff_len = delta_le32(s + 4);
    extra_len = delta_le32(s + 8);
    n -= DELTA_HDR_LEN;
    /* each length is checked against what remains, so no sum can overflow */
    if (ctrl_len > n || diff_len > n - ctrl_len || extra_len != n - ctrl_len - diff_len)
        return -EBADMSG;
    /* out_len <= seg_max <= SIZE_MAX / 2, so the slack cannot overflow */
    if (ctrl_len > out_len + DELTA_CTRL_SLACK || diff_len > out_len ||
        extra_len != out_len - diff_len)
        return -EBADMSG;
    cp = s + DELTA_HDR_LEN;
    cend = cp + ctrl_len;
    diff = cend;
    extra = diff + diff_len;

    while (cp < cend) {
        uint64_t add, copy, z, mag;

        if (delta_varint(&cp, cend, &add) || delta_varint(&cp, cend, &copy) ||
            delta_varint(&cp, cend, &z))
            return -EBADMSG;
        /* add bytes: inside the output, the diff stream and the source window */
        if (add > out_len - op || add > diff_len - dp || add > src->len - sp)
            return -EBADMSG;
        for (size_t k = 0; k < add; k++)
            out[op + k] = (uint8_t)(src->base[sp + k] + diff[dp + k]);
        op += (size_t)add;
        sp += (size_t)add;
        dp += (size_t)add;
        /* copy bytes: inside the output and the extra stream */
        if (copy > out_len - op || copy > extra_len - ep)
            return -EBADMSG;
        if (copy)
            memcpy(out + op, extra + ep, (size_t)copy);
        op += (size_t)copy;
        ep += (size_t)copy;
        mag = z >> 1; /* zigzag: the sign is bit 0, so no negation can overflow */
        if (z & 1) {
            if (mag >= sp) /* seek by -(mag + 1) must stay >= 0 */
                return -EBADMSG;
            sp -= (size_t)mag + 1;
        } else {
            if (mag > src->len - sp)
                return -EBADMSG;
            sp += (size_t)mag;
        }
    }
    /* diff_len + extra_len == out_len, so op == out_len implies both were used up */
    if (op != out_len || dp != diff_len || ep != extra_len)
        return -EBADMSG;
    return 0;
}

int delta_dec_segment(struct delta_dec *d, enum delta_codec codec, const struct delta_src *src,
                      const uint8_t *patch, size_t patch_len, uint8_t *out, size_t out_len)
{
    static const struct delta_src none = {NULL, 0};
    size_t n = 0;
    int rc;

    if ((unsigned)codec >= DELTA_CODEC_COUNT || d == NULL || d->dctx == NULL)
        return -EINVAL;
    if (out_len > d->seg_max || (out == NULL && out_len) || (patch == NULL && patch_len))
        return -EINVAL;
    if (src == NULL)
        src = &none;
    if (src->base == NULL && src->len)
        return -EINVAL;

    switch (codec) {
    case DELTA_RAW:
        if (patch_len != out_len)
            return -EBADMSG;
        if (out_len)
            memcpy(out, patch, out_len);
        return 0;
    case DELTA_ZSTD:
    case DELTA_ZSTD_SRC:
        if (codec == DELTA_ZSTD_SRC)
            rc = delta_unzstd(d, src->base, src->len, patch, patch_len, out, out_len, &n);
        else
            rc = delta_unzstd(d, NULL, 0, patch, patch_len, out, out_len, &n);
        if (rc == 0 && n != out_len)
            rc = -EBADMSG;
        return rc;
    case DELTA_BSDIFF_ZSTD:
        /* out_len <= seg_max, so the streams of a valid patch always fit the scratch */
        rc = delta_unzstd(d, NULL, 0, patch, patch_len, d->scratch, d->scratch_cap, &n);
        if (rc == 0)
            rc = delta_apply_bsdiff(d->scratch, n, src, out, out_len);
        return rc;
    default:
        return -EINVAL;
    }
}
