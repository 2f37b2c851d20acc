/*
 * Delta encoders (host side, `modtwin pack`): for each target segment the smaller of a zstd
 * frame over the source as a raw-content dictionary and a bsdiff-style encoding found with a
 * suffix array of the source (libdivsufsort), its streams compressed by zstd; RAW if neither
 * is smaller than the segment. The output decodes with firmware/delta.h.
 */
#ifndef MODTWIN_TOOLS_DELTA_ENC_H
#define MODTWIN_TOOLS_DELTA_ENC_H

#include <stddef.h>
#include <stdint.h>

#include "firmware/delta.h"

struct delta_enc {
    const uint8_t *src;
    size_t src_len;
    int level;
    void *cdict;   /* ZSTD_CDict over the whole source (raw content), built once */
    void *cctx;    /* ZSTD_CCtx */
    int32_t *sa;   /* suffix array of src (divsufsort), built once */
    uint64_t stats[DELTA_CODEC_COUNT]; /* segments encoded per codec */
};

/* Prepares an encoder over src (kept by pointer; must outlive the encoder). level: zstd 1..22. */
int delta_enc_init(struct delta_enc *e, const uint8_t *src, size_t src_len, int level);
void delta_enc_free(struct delta_enc *e);

/*
 * Encodes seg = tgt[off, off + len) referencing source bytes src[src_min, src_len) only
 * (src_min = 0 for staging and A/B packages; the segment's own offset for in-place packages,
 * where only ZSTD_SRC over that suffix is tried). On success *patch is malloc'd (caller frees),
 * *codec says how to decode it with the window {src + src_min, src_len - src_min}.
 * Returns 0, -EINVAL or -ENOMEM.
 */
int delta_enc_segment(struct delta_enc *e, const uint8_t *tgt, size_t off, size_t len,
                      size_t src_min, enum delta_codec *codec, uint8_t **patch, size_t *patch_len);

/*
 * Encodes the segment with the given codec only (tests, tools that force a codec); same
 * arguments and ownership as delta_enc_segment, e->stats untouched. -EINVAL for an unknown
 * codec or BSDIFF_ZSTD with src_min > 0; -E2BIG when BSDIFF_ZSTD's control stream would exceed
 * the decoder's bound (segment length + 64 bytes); -ENOMEM.
 */
int delta_enc_segment_codec(struct delta_enc *e, enum delta_codec codec, const uint8_t *tgt,
                            size_t off, size_t len, size_t src_min, uint8_t **patch,
                            size_t *patch_len);

/* Encodes a segment with no source (full packages): ZSTD, or RAW if that is not smaller. */
int delta_enc_full(const uint8_t *seg, size_t len, int level, enum delta_codec *codec,
                   uint8_t **patch, size_t *patch_len);

#endif
