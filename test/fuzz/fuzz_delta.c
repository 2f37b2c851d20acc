/*
 * fuzz_delta.c - libFuzzer target for the delta decoders (firmware/delta.c, delta_bsdiff40.c).
 *
 * The input is used whole as a segment patch for every codec, at a few output lengths, against
 * a fixed 4 KiB source made on the stack, and as a BSDIFF40 file read through delta_read_fn in
 * input-chosen chunk sizes. Buffers are exact-size heap copies so ASan sees any access outside
 * them; results must be 0 or -EBADMSG. Any other outcome is __builtin_trap(). No main: link
 * with -fsanitize=fuzzer.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "firmware/delta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

#define FZ_SRC_LEN  4096u
#define FZ_SEG_MAX  8192u
#define FZ_BS_LIMIT (1u << 20) /* BSDIFF40 targets are produced up to this many bytes */

struct fz_patch {
    const uint8_t *p;
    size_t len;
};

static int fz_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    const struct fz_patch *m = ctx;

    FZ_CHECK(off <= m->len && len <= m->len - off); /* the reader never asks past the end */
    memcpy(buf, m->p + off, len);
    return 0;
}

/* The fixed source: code-like words with some structure, same bytes every run. */
static void fz_source(uint8_t *s)
{
    uint32_t x = 0x12345678;

    for (size_t i = 0; i < FZ_SRC_LEN; i++) {
        x = x * 1103515245u + 12345u;
        s[i] = (uint8_t)(i % 16 < 8 ? (x >> 24) : i);
    }
}

static void fz_segments(const uint8_t *data, size_t size, const struct delta_src *w)
{
    struct delta_dec d;
    uint8_t *patch = malloc(size ? size : 1);
    const size_t lens[] = {0, 1, 64, FZ_SRC_LEN, size % (FZ_SEG_MAX + 1)};

    FZ_CHECK(patch != NULL);
    memcpy(patch, data, size);
    FZ_CHECK(delta_dec_init(&d, FZ_SEG_MAX) == 0);
    for (int c = 0; c < DELTA_CODEC_COUNT; c++) {
        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
            uint8_t *out = malloc(lens[i] ? lens[i] : 1);
            int rc;

            FZ_CHECK(out != NULL);
            rc = delta_dec_segment(&d, (enum delta_codec)c, w, patch, size, out, lens[i]);
            FZ_CHECK(rc == 0 || rc == -EBADMSG);
            if (rc == 0 && c == DELTA_RAW)
                FZ_CHECK(memcmp(out, data, size) == 0);
            free(out);
        }
    }
    delta_dec_free(&d);
    free(patch);
}

static void fz_bsdiff40(const uint8_t *data, size_t size, const struct delta_src *w)
{
    struct fz_patch m = {data, size};
    struct delta_bspatch *b = NULL;
    uint64_t ns = 0, done = 0;
    size_t chunk = size ? 1 + data[size - 1] * 37u : 1;
    int rc = delta_bspatch_open(&b, fz_read, &m, size, w, &ns);

    FZ_CHECK(rc == 0 || rc == -EBADMSG);
    if (rc)
        return;
    FZ_CHECK(b != NULL);
    while (done < ns && done < FZ_BS_LIMIT) {
        size_t n = ns - done < chunk ? (size_t)(ns - done) : chunk;
        uint8_t *out = malloc(n);

        FZ_CHECK(out != NULL);
        rc = delta_bspatch_read(b, out, n);
        free(out);
        FZ_CHECK(rc == 0 || rc == -EBADMSG);
        if (rc)
            break;
        done += n;
        chunk = chunk * 3 % 70001 + 1;
    }
    FZ_CHECK(delta_bspatch_ram(b) > 0);
    delta_bspatch_close(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *src = malloc(FZ_SRC_LEN);
    struct delta_src w;

    FZ_CHECK(src != NULL);
    fz_source(src);
    w.base = src;
    w.len = FZ_SRC_LEN;
    fz_segments(data, size, &w);
    fz_bsdiff40(data, size, &w);
    free(src);
    return 0;
}
