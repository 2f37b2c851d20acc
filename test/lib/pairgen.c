/*
 * Seeded image pairs for the delta tests and benchmarks (see pairgen.h). The same seed gives
 * the same bytes everywhere: every random draw is made in a fixed order.
 */
#include "test/lib/pairgen.h"

#include <stdlib.h>
#include <string.h>

const struct pairgen_mix pairgen_mix_test = {20, 11, 13, 16, 18, 16, 64, 0};
const struct pairgen_mix pairgen_mix_bench = {40, 22, 26, 32, 39, 4, 8, 2};

uint64_t pairgen_next(struct pairgen_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15u);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

size_t pairgen_below(struct pairgen_rng *r, size_t n)
{
    return n ? (size_t)(pairgen_next(r) % n) : 0;
}

void pairgen_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

uint32_t pairgen_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void pairgen_image(struct pairgen_rng *r, uint8_t *p, size_t n, size_t image_len,
                   const struct pairgen_mix *mix)
{
    static const uint32_t ops[] = {0xe92d4ff0, 0xe8bd8ff0, 0xe59f0000, 0xe3a00000, 0xeb000000,
                                   0xe1a00000, 0xe2800001, 0xe3500000, 0x1a000000, 0xe5900000,
                                   0xe5801000, 0xe12fff1e, 0xe0800001, 0xe2411001};
    static const char *const words[] = {
        "modem",   "AT+QFOTADL", "error", "timeout",      "socket",      "+CME ERROR", "flash",
        "segment", "network",    "OK",    "registration", "PDP context", "%s:%d",      "sim"};
    size_t i = 0;

    while (i < n) {
        size_t kind = pairgen_below(r, mix->kinds), run = 16 + pairgen_below(r, 240), k;

        if (run > n - i)
            run = n - i;
        if (kind < mix->code_end) { /* instructions, some of them pointer literals */
            for (k = 0; k + 4 <= run; k += 4) {
                uint32_t w = ops[pairgen_below(r, sizeof(ops) / sizeof(ops[0]))];

                if (pairgen_below(r, 6) == 0) {
                    w = PAIRGEN_PTRBASE + (uint32_t)(pairgen_below(r, image_len) & ~3u);
                } else {
                    /* two statements: the draws must come in this order */
                    uint32_t reg = (uint32_t)pairgen_below(r, mix->reg_range);
                    w |= reg << 12 | (uint32_t)pairgen_below(r, mix->imm_range) << mix->imm_shift;
                }
                pairgen_put32(p + i + k, w);
            }
            for (; k < run; k++)
                p[i + k] = 0;
        } else if (kind < mix->table_end) { /* small-integer table */
            uint32_t v = (uint32_t)pairgen_below(r, 100);

            for (k = 0; k < run; k++)
                p[i + k] = (uint8_t)(k % 2 ? 0 : (v += (uint32_t)pairgen_below(r, 4)));
        } else if (kind < mix->strings_end) { /* strings */
            for (k = 0; k < run;) {
                const char *w = words[pairgen_below(r, sizeof(words) / sizeof(words[0]))];
                size_t wl = strlen(w) + 1;

                if (wl > run - k)
                    wl = run - k;
                memcpy(p + i + k, w, wl);
                k += wl;
            }
        } else if (kind < mix->padding_end) { /* padding */
            memset(p + i, pairgen_below(r, 2) ? 0xff : 0x00, run);
        } else { /* compressed or random data */
            for (k = 0; k < run; k++)
                p[i + k] = (uint8_t)pairgen_next(r);
        }
        i += run;
    }
}

uint8_t *pairgen_mutate(struct pairgen_rng *r, const uint8_t *src, size_t n,
                        const struct pairgen_edit *ed, const struct pairgen_mix *mix,
                        size_t *out_len)
{
    size_t nev = ed->inserts + ed->removes, o = 0, s = 0;
    size_t *at = calloc(nev + 1, sizeof(size_t));
    /* which events insert is drawn per event: room for every one of them inserting */
    uint8_t *t = malloc(n + nev * 1024u + 16);
    long *shift_at = calloc(nev + 1, sizeof(long));
    long shift = 0;

    if (!at || !t || !shift_at) {
        free(at);
        free(t);
        free(shift_at);
        return NULL;
    }
    for (size_t k = 0; k < nev; k++)
        at[k] = pairgen_below(r, n) & ~(size_t)3;
    /* sort the event positions (few of them) */
    for (size_t k = 1; k < nev; k++)
        for (size_t j = k; j > 0 && at[j - 1] > at[j]; j--) {
            size_t x = at[j];

            at[j] = at[j - 1];
            at[j - 1] = x;
        }
    for (size_t k = 0; k < nev; k++) {
        size_t len = 4 * (1 + pairgen_below(r, 256));

        if (at[k] < s)
            at[k] = s;
        memcpy(t + o, src + s, at[k] - s);
        o += at[k] - s;
        s = at[k];
        if (pairgen_below(r, nev) < ed->inserts) {
            pairgen_image(r, t + o, len, n, mix);
            o += len;
            shift += (long)len;
        } else {
            if (len > n - s)
                len = n - s;
            s += len;
            shift -= (long)len;
        }
        shift_at[k] = shift;
    }
    memcpy(t + o, src + s, n - s);
    o += n - s;
    if (ed->recompile) {
        /* every pointer-looking word follows the code it points to */
        for (size_t j = 0; j + 4 <= o; j += 4) {
            uint32_t w = pairgen_get32(t + j);
            long sh = 0;

            if (w < PAIRGEN_PTRBASE || w >= PAIRGEN_PTRBASE + n)
                continue;
            for (size_t k = 0; k < nev && at[k] <= w - PAIRGEN_PTRBASE; k++)
                sh = shift_at[k];
            pairgen_put32(t + j, (uint32_t)((long)w + sh));
        }
    }
    for (size_t k = 0; k < (size_t)ed->overwrites_per_mib * (o / 4096 + 1) / 256; k++) {
        size_t pos = pairgen_below(r, o), len = 1 + pairgen_below(r, 8);

        for (size_t j = pos; j < pos + len && j < o; j++)
            t[j] = (uint8_t)pairgen_next(r);
    }
    free(at);
    free(shift_at);
    *out_len = o;
    return t;
}
