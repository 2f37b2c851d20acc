/*
 * Delta decoders of the firmware: what turns (source image, patch) into target bytes.
 *
 * Native packages cut the target into segments; each segment's patch decodes alone, so an apply
 * that was cut redoes at most one segment. Codecs per segment:
 *   RAW          the segment's bytes as they are
 *   ZSTD         one zstd frame, no dictionary (full packages)
 *   ZSTD_SRC     one zstd frame whose dictionary is the source window (raw content)
 *   BSDIFF_ZSTD  bsdiff-style copy-with-difference (control triples, diff bytes, extra bytes),
 *                the three streams in one zstd frame (layout in delta.c)
 * BSDIFF40 (as Debian's bsdiff writes it) is decoded as one stream over libbz2 for compatibility.
 * Decoders never read outside the source window or the patch and never write outside `out`.
 */
#ifndef MODTWIN_FIRMWARE_DELTA_H
#define MODTWIN_FIRMWARE_DELTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum delta_codec {
    DELTA_RAW = 0,
    DELTA_ZSTD = 1,
    DELTA_ZSTD_SRC = 2,
    DELTA_BSDIFF_ZSTD = 3,
    DELTA_CODEC_COUNT
};

/* The source bytes a segment may reference (the whole old image, or its unwritten suffix). */
struct delta_src {
    const uint8_t *base;
    size_t len;
};

struct delta_dec {
    void *dctx;       /* ZSTD_DCtx */
    uint8_t *scratch; /* BSDIFF_ZSTD: the decompressed control/diff/extra streams */
    size_t scratch_cap;
    size_t seg_max;
};

/* Prepares a decoder for segments of at most seg_max bytes. 0, -EINVAL or -ENOMEM. */
int delta_dec_init(struct delta_dec *d, size_t seg_max);
void delta_dec_free(struct delta_dec *d);

/*
 * Decodes one segment's patch into out[0, out_len). Returns 0 when exactly out_len bytes were
 * produced; -EBADMSG for any inconsistency (corrupt or truncated patch, a reference outside the
 * source window, a size mismatch); -EINVAL for an unknown codec or out_len > seg_max.
 */
int delta_dec_segment(struct delta_dec *d, enum delta_codec codec, const struct delta_src *src,
                      const uint8_t *patch, size_t patch_len, uint8_t *out, size_t out_len);

/* Bytes of RAM the decoder holds (decoder state and scratch), for the RAM bound. */
size_t delta_dec_ram(const struct delta_dec *d);

const char *delta_codec_name(enum delta_codec c);

/* ---- BSDIFF40 (compatibility) ---------------------------------------------------------------- */

/* Reads patch bytes [off, off+len) into buf; returns 0 or -errno. The patch may live in UFS. */
typedef int delta_read_fn(void *ctx, uint64_t off, void *buf, size_t len);

struct delta_bspatch; /* private to delta_bsdiff40.c: three bzip2 readers and the control state */

/*
 * Opens a BSDIFF40 patch of patch_len bytes, read through rd(ctx, ...), against src.
 * *new_size receives the target size from the header. 0, -EBADMSG (not BSDIFF40, bad header),
 * -ENOMEM. On success *out must be closed with delta_bspatch_close.
 */
int delta_bspatch_open(struct delta_bspatch **out, delta_read_fn *rd, void *ctx, uint64_t patch_len,
                       const struct delta_src *src, uint64_t *new_size);

/* Produces the next len target bytes, in order. 0 or -EBADMSG (then the reader is unusable). */
int delta_bspatch_read(struct delta_bspatch *b, uint8_t *out, size_t len);

/* RAM the reader holds (bzip2 states and buffers). */
size_t delta_bspatch_ram(const struct delta_bspatch *b);

void delta_bspatch_close(struct delta_bspatch *b);

#endif
