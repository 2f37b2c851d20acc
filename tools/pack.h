/*
 * The package generator behind `modtwin pack` as a library, for the CLI and the tests.
 * Formats: firmware/pkg.h (container), firmware/fw_image.h (images), docs/package-format.md.
 */
#ifndef MODTWIN_TOOLS_PACK_H
#define MODTWIN_TOOLS_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "firmware/pkg.h"

#define PACK_SEG_DEFAULT   (64u << 10)
#define PACK_LEVEL_DEFAULT 19

/* Called after each segment is encoded (progress on a terminal); may be NULL. */
typedef void pack_progress_fn(void *ctx, uint32_t done, uint32_t total);

struct pack_opts {
    enum pkg_kind kind; /* PKG_DELTA / PKG_MINI_1 need a source; PKG_FULL / PKG_MINI_2 do not */
    uint32_t seg_size;  /* 0: PACK_SEG_DEFAULT; else a multiple of 4 KiB <= PKG_SEG_SIZE_MAX */
    int level;          /* zstd level 1..22; 0: PACK_LEVEL_DEFAULT */
    bool inplace;       /* delta kinds: segment i references source bytes >= i * seg_size only */
    const uint8_t *key; /* ECDSA P-256 private key (PEM or DER) to sign with, or NULL */
    size_t key_len;
    pack_progress_fn *progress;
    void *progress_ctx;
};

/*
 * Builds a package from whole images (fw_image.h; both bodies are checked against their
 * SHA-256). old may be NULL for full kinds; when given to a full kind, the header still records
 * it as the source (revision, size, digests) so a module can check what it upgrades from.
 * Project and baseline are the source's when there is one (what the module compares with its
 * running firmware), else the target's; a source and target of different projects are refused.
 * *pkg is malloc'd (caller frees). 0; -EINVAL (bad options, no source for a delta kind, project
 * mismatch, unusable key); -EBADMSG (an input is not a valid image); -ENOMEM; -EIO.
 */
int pack_build(const struct pack_opts *o, const uint8_t *old, size_t old_len,
               const uint8_t *new_img, size_t new_len, uint8_t **pkg, size_t *pkg_len);

/* Short name of a package kind ("delta", "full", "mini_1", "mini_2"; "?" if unknown). */
const char *pack_kind_name(unsigned kind);

#endif
