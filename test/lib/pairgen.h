/*
 * Firmware-like image pairs for the delta tests and benchmarks: a seeded generator of code-like
 * bodies and of "next versions" of them (scattered overwrites, inserted and removed runs, and,
 * for recompile-like pairs, pointer literals that follow the code they point to). Test support
 * only; the product's own generator is firmware/fw_gen.c.
 */
#ifndef MODTWIN_TEST_PAIRGEN_H
#define MODTWIN_TEST_PAIRGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PAIRGEN_PTRBASE 0x08000000u /* pointer literals are PTRBASE + an offset in the image */

/* splitmix64 */
struct pairgen_rng {
    uint64_t s;
};

uint64_t pairgen_next(struct pairgen_rng *r);

/* Uniform in [0, n); 0 for n == 0. */
size_t pairgen_below(struct pairgen_rng *r, size_t n);

void pairgen_put32(uint8_t *p, uint32_t v);
uint32_t pairgen_get32(const uint8_t *p);

/*
 * The mix of an image: each run of 16..255 bytes draws a kind in [0, kinds): below code_end
 * instructions (one in six a pointer literal; register field below(reg_range) << 12, immediate
 * below(imm_range) << imm_shift), then small-integer tables, strings, padding, and the rest
 * random bytes.
 */
struct pairgen_mix {
    unsigned kinds, code_end, table_end, strings_end, padding_end;
    unsigned reg_range, imm_range, imm_shift;
};

/* The unit tests' mix (more random bytes) and the benchmark's (compresses to about 34 %). */
extern const struct pairgen_mix pairgen_mix_test, pairgen_mix_bench;

/* Fills p[0, n) for an image of image_len bytes (pointer literals stay inside it). */
void pairgen_image(struct pairgen_rng *r, uint8_t *p, size_t n, size_t image_len,
                   const struct pairgen_mix *mix);

struct pairgen_edit {
    unsigned overwrites_per_mib; /* scattered 1..8-byte overwrites */
    unsigned inserts, removes;   /* runs of 4..1024 bytes, word aligned */
    bool recompile;              /* pointers past an insert or remove follow it */
};

/* The next version of src[0, n) in a malloc'd buffer (*out_len bytes), or NULL without memory. */
uint8_t *pairgen_mutate(struct pairgen_rng *r, const uint8_t *src, size_t n,
                        const struct pairgen_edit *ed, const struct pairgen_mix *mix,
                        size_t *out_len);

#endif
