/*
 * fw_gen.c: deterministic synthetic firmware bodies that compress and diff like real builds.
 * A body is 1-4 components (like the sub-images of a module's firmware), each laid out as a
 * linker would: a small header and a vector table, .text (Thumb-2-like functions followed by
 * literal pools), .rodata (log and AT strings, small-integer tables, command tables of
 * pointers), .data, then 0xFF padding. Absolute pointers are FW_GEN_BASE + body offset, so
 * fw_gen_derive can find them by value and move them when content shifts, as a relinker does.
 * It is not an instruction-set model: nothing here executes, the words only have the statistics
 * of code (skewed opcodes, skewed registers and small immediates, repeated idioms, calls).
 * Everything comes from one xoshiro256** stream per body: same parameters, same bytes, forever.
 * Changing any table or draw order here changes every model's factory image (see the test).
 */
#include "firmware/fw_image.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- random numbers: splitmix64 seeds xoshiro256** (both public-domain algorithms) ---- */

struct fw_gen_rng {
    uint64_t s[4];
};

static uint64_t fw_gen_splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void fw_gen_rng_init(struct fw_gen_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = fw_gen_splitmix(&seed);
}

static uint64_t fw_gen_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256** (Blackman, Vigna): fast, good enough, and fully specified by its code. */
static uint64_t fw_gen_next(struct fw_gen_rng *r)
{
    uint64_t *s = r->s, res = fw_gen_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = fw_gen_rotl(s[3], 45);
    return res;
}

/* Uniform in [0, n) (n > 0); the multiply-shift bias is far below anything that matters here. */
static uint32_t fw_gen_below(struct fw_gen_rng *r, uint32_t n)
{
    return (uint32_t)(((fw_gen_next(r) >> 32) * n) >> 32);
}

/* True with probability pct / 100. */
static bool fw_gen_chance(struct fw_gen_rng *r, uint32_t pct)
{
    return fw_gen_below(r, 100) < pct;
}

/* Log-uniform in [0, 2^bits): small values are much more likely, like real immediates. */
static uint32_t fw_gen_small(struct fw_gen_rng *r, unsigned bits)
{
    unsigned b = fw_gen_below(r, bits + 1);

    return b ? (uint32_t)(fw_gen_next(r) >> (64 - b)) : 0;
}

/* Index drawn from a table of weights (each < 256, total > 0). */
static unsigned fw_gen_pick(struct fw_gen_rng *r, const uint8_t *w, unsigned n)
{
    unsigned total = 0, x;

    for (unsigned i = 0; i < n; i++)
        total += w[i];
    x = fw_gen_below(r, total);
    for (unsigned i = 0; i < n; i++) {
        if (x < w[i])
            return i;
        x -= w[i];
    }
    return n - 1;
}

#define FW_GEN_COUNT(a)   (sizeof(a) / sizeof((a)[0]))
#define FW_GEN_WORD(r, a) ((a)[fw_gen_below((r), (uint32_t)FW_GEN_COUNT(a))])

/*
 * FNV-1a rather than anything keyed or salted: the seed must be the same on every machine and
 * in every release, since factory images (and the packages built against them) depend on it.
 */
uint64_t fw_gen_seed(const char *revision)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 */

    for (const char *p = revision ? revision : ""; *p; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
    return h;
}

/* ---- the body writer ---- */

#define FW_GEN_FUNCS     64 /* recent function starts remembered as call and pointer targets */
#define FW_GEN_HOT       12 /* the first functions of a component are called most (memcpy, log) */
#define FW_GEN_STRS      64 /* recent string starts remembered for command tables */
#define FW_GEN_IDIOMS    48
#define FW_GEN_IDIOM_LEN 6
#define FW_GEN_VECTORS   48 /* vector table entries; handlers are the first functions */

/*
 * The state of one generation: the output window [pos, end) of buf, the pointer targets of the
 * current component (body offsets), and its idioms (short instruction sequences the "compiler"
 * repeats). With no_ptrs (content inserted by fw_gen_derive) no absolute pointers are written:
 * their targets would be in the new body's coordinates, which the insertion cannot know yet.
 */
struct fw_gen_ctx {
    struct fw_gen_rng rng;
    uint8_t *buf;
    size_t pos, end;
    size_t text_lo, text_hi, ro_lo, ro_hi;
    size_t funcs[FW_GEN_FUNCS], strs[FW_GEN_STRS], first[FW_GEN_VECTORS];
    unsigned nfuncs, nstrs;
    uint16_t idiom[FW_GEN_IDIOMS][FW_GEN_IDIOM_LEN];
    uint8_t idiom_len[FW_GEN_IDIOMS];
    bool no_ptrs;
};

/*
 * All writes go through these helpers and are clipped at c->end, so an emitter may overrun its
 * section (a function longer than the room left) without any caller computing sizes first.
 */
static size_t fw_gen_room(const struct fw_gen_ctx *c)
{
    return c->end - c->pos;
}

/* Writes n bytes of p, or as many as fit before end (sections are cut where they end). */
static void fw_gen_put(struct fw_gen_ctx *c, const void *p, size_t n)
{
    if (n > fw_gen_room(c))
        n = fw_gen_room(c);
    memcpy(c->buf + c->pos, p, n);
    c->pos += n;
}

static void fw_gen_put16(struct fw_gen_ctx *c, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};

    fw_gen_put(c, b, 2);
}

static void fw_gen_put32(struct fw_gen_ctx *c, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

    fw_gen_put(c, b, 4);
}

static void fw_gen_fill(struct fw_gen_ctx *c, uint8_t v, size_t n)
{
    if (n > fw_gen_room(c))
        n = fw_gen_room(c);
    memset(c->buf + c->pos, v, n);
    c->pos += n;
}

static void fw_gen_align(struct fw_gen_ctx *c, size_t a, uint8_t v)
{
    fw_gen_fill(c, v, (a - c->pos % a) % a);
}

/* An absolute pointer to a body offset, or a plain constant when pointers are off. */
static uint32_t fw_gen_ptr(const struct fw_gen_ctx *c, size_t off)
{
    return c->no_ptrs ? (uint32_t)(off & 0xfffc) : FW_GEN_BASE + (uint32_t)off;
}

/* A pointer into [lo, hi) at a 4-aligned offset (+1 with thumb: a function address). */
static uint32_t fw_gen_ptr_in(struct fw_gen_ctx *c, size_t lo, size_t hi, bool thumb)
{
    size_t off = lo;

    if (hi > lo + 4)
        off = (lo + fw_gen_below(&c->rng, (uint32_t)(hi - lo))) & ~(size_t)3;
    return fw_gen_ptr(c, off) | (thumb && !c->no_ptrs);
}

/* ---- .text: Thumb-2-like instructions ---- */

/* Field layouts of the instruction templates below. */
enum fw_gen_fmt {
    FW_GEN_F_NONE,    /* fixed halfword (bx lr, nop) */
    FW_GEN_F_RD_IMM8, /* rd at 8, imm8 (movs, cmp, adds, subs, ldr sp-relative, ldr pc) */
    FW_GEN_F_IMM5,    /* imm5 at 6, rn at 3, rt at 0 (ldr/str/ldrb/strb/ldrh, shifts) */
    FW_GEN_F_3REG,    /* rm at 6, rn at 3, rd at 0 (adds/subs register) */
    FW_GEN_F_2REG,    /* rm at 3, rdn at 0 (data processing, uxtb, mov) */
    FW_GEN_F_BCOND,   /* cond at 8, signed imm8 (mostly short forward branches) */
    FW_GEN_F_B,       /* imm11 */
    FW_GEN_F_CBZ,     /* imm5 at 3, rn */
    FW_GEN_F_SP,      /* imm7 (add/sub sp) */
    FW_GEN_F_BL,      /* 32-bit call to a known function */
    FW_GEN_F_LDRW,    /* 32-bit ldr.w/str.w rt, [rn, #imm12] */
    FW_GEN_F_MOVW,    /* 32-bit movw rd, #imm16 */
};

struct fw_gen_insn {
    uint16_t op;
    uint8_t fmt;
};

/*
 * Roughly the opcode mix of compiled Cortex-M code: loads, moves, compares, branches, calls.
 * The weights below (same order) are what set the compression ratio of .text: a flatter mix
 * compresses worse. Measured: ~53 % with zstd -19 for .text alone.
 */
static const struct fw_gen_insn fw_gen_insns[] = {
    {0x6800, FW_GEN_F_IMM5},    {0x6000, FW_GEN_F_IMM5},    {0x2000, FW_GEN_F_RD_IMM8},
    {0x4600, FW_GEN_F_2REG},    {0x0000, FW_GEN_F_BL},      {0x2800, FW_GEN_F_RD_IMM8},
    {0xd000, FW_GEN_F_BCOND},   {0x4800, FW_GEN_F_RD_IMM8}, {0x7800, FW_GEN_F_IMM5},
    {0x9800, FW_GEN_F_RD_IMM8}, {0x9000, FW_GEN_F_RD_IMM8}, {0x3000, FW_GEN_F_RD_IMM8},
    {0x1800, FW_GEN_F_3REG},    {0xe000, FW_GEN_F_B},       {0x7000, FW_GEN_F_IMM5},
    {0xb100, FW_GEN_F_CBZ},     {0x8800, FW_GEN_F_IMM5},    {0x4280, FW_GEN_F_2REG},
    {0x3800, FW_GEN_F_RD_IMM8}, {0x0000, FW_GEN_F_LDRW},    {0x8000, FW_GEN_F_IMM5},
    {0x0000, FW_GEN_F_MOVW},    {0x4000, FW_GEN_F_2REG},    {0x4300, FW_GEN_F_2REG},
    {0x0000, FW_GEN_F_IMM5},    {0x0800, FW_GEN_F_IMM5},    {0xb2c0, FW_GEN_F_2REG},
    {0x1a00, FW_GEN_F_3REG},    {0x4770, FW_GEN_F_NONE},    {0xbf00, FW_GEN_F_NONE},
    {0xb900, FW_GEN_F_CBZ},     {0x4040, FW_GEN_F_2REG},    {0xb280, FW_GEN_F_2REG},
};

static const uint8_t fw_gen_insn_w[] = {
    60, 34, 40, 28, 26, 24, 22, 18, 16, 14, 11, 10, 9, 9, 8, 8, 7,
    7,  6,  8,  5,  5,  4,  4,  4,  4,  4,  3,  3,  2, 3, 2, 2,
};

/* r0-r3 carry arguments and results, so they dominate; r4-r7 hold locals. */
static const uint8_t fw_gen_reg_w[8] = {40, 26, 18, 14, 10, 8, 6, 5};

static unsigned fw_gen_reg(struct fw_gen_ctx *c)
{
    return fw_gen_pick(&c->rng, fw_gen_reg_w, 8);
}

/*
 * Remembers a function start as a future call target. The first FW_GEN_HOT stay for good (the
 * memcpy/printf of the component, called from everywhere); the rest is a ring of recent ones,
 * as calls in real code mostly go to nearby functions of the same object file.
 */
static void fw_gen_add_func(struct fw_gen_ctx *c, size_t off)
{
    if (c->nfuncs < FW_GEN_VECTORS)
        c->first[c->nfuncs] = off;
    if (c->nfuncs < FW_GEN_HOT)
        c->funcs[c->nfuncs++] = off;
    else
        c->funcs[FW_GEN_HOT + (c->nfuncs++ - FW_GEN_HOT) % (FW_GEN_FUNCS - FW_GEN_HOT)] = off;
}

/* A call target: usually one of the hot functions, else a recent one, else somewhere ahead. */
static size_t fw_gen_call_target(struct fw_gen_ctx *c)
{
    unsigned n = c->nfuncs < FW_GEN_FUNCS ? c->nfuncs : FW_GEN_FUNCS;

    if (n && fw_gen_chance(&c->rng, 85)) {
        if (fw_gen_chance(&c->rng, 60))
            return c->funcs[fw_gen_below(&c->rng, n < FW_GEN_HOT ? n : FW_GEN_HOT)];
        return c->funcs[fw_gen_below(&c->rng, n)];
    }
    return c->pos + 64 + 2 * fw_gen_small(&c->rng, 14);
}

/*
 * Thumb-2 BL encoding of a call from pc to target (offset relative to pc + 4). Calls are
 * relative, so the same call from two places encodes differently: that is much of why code
 * compresses worse than text, and a derive does not adjust them (only absolute words).
 */
static void fw_gen_bl(struct fw_gen_ctx *c, size_t target)
{
    int32_t off = (int32_t)((int64_t)target - (int64_t)c->pos - 4) >> 1;
    uint32_t s = off < 0, i1 = (uint32_t)(off >> 22) & 1, i2 = (uint32_t)(off >> 21) & 1;
    uint32_t j1 = !(i1 ^ s), j2 = !(i2 ^ s);

    fw_gen_put16(c, (uint16_t)(0xf000 | s << 10 | ((uint32_t)off >> 11 & 0x3ff)));
    fw_gen_put16(c, (uint16_t)(0xd000 | j1 << 13 | j2 << 11 | ((uint32_t)off & 0x7ff)));
}

/* One instruction from the template table (calls excluded when in an idiom). */
static void fw_gen_insn(struct fw_gen_ctx *c, bool calls)
{
    struct fw_gen_rng *r = &c->rng;
    const struct fw_gen_insn *t;
    uint32_t v, a, b;

    do
        t = &fw_gen_insns[fw_gen_pick(r, fw_gen_insn_w, FW_GEN_COUNT(fw_gen_insn_w))];
    while (!calls && t->fmt == FW_GEN_F_BL);
    v = t->op;
    switch ((enum fw_gen_fmt)t->fmt) {
    case FW_GEN_F_NONE:
        break;
    case FW_GEN_F_RD_IMM8:
        a = fw_gen_reg(c);
        v |= a << 8 | fw_gen_small(r, 8);
        break;
    case FW_GEN_F_IMM5:
        a = fw_gen_small(r, 5);
        b = fw_gen_reg(c);
        v |= a << 6 | b << 3 | fw_gen_reg(c);
        break;
    case FW_GEN_F_3REG:
        a = fw_gen_reg(c);
        b = fw_gen_reg(c);
        v |= a << 6 | b << 3 | fw_gen_reg(c);
        break;
    case FW_GEN_F_2REG:
        a = fw_gen_reg(c);
        v |= a << 3 | fw_gen_reg(c);
        break;
    case FW_GEN_F_BCOND:
        a = fw_gen_below(r, 14);
        b = fw_gen_chance(r, 75) ? fw_gen_small(r, 6) : 0x100 - fw_gen_small(r, 6);
        v |= a << 8 | (b & 0xff);
        break;
    case FW_GEN_F_B:
        v |= fw_gen_chance(r, 70) ? fw_gen_small(r, 8) : 0x800 - 1 - fw_gen_small(r, 8);
        v &= 0xe7ff;
        break;
    case FW_GEN_F_CBZ:
        a = fw_gen_small(r, 5);
        v |= a << 3 | fw_gen_reg(c);
        break;
    case FW_GEN_F_SP:
        v |= fw_gen_small(r, 5);
        break;
    case FW_GEN_F_BL:
        fw_gen_bl(c, fw_gen_call_target(c));
        return;
    case FW_GEN_F_LDRW:
        a = fw_gen_chance(r, 70) ? 0xf8d0 : 0xf8c0;
        fw_gen_put16(c, (uint16_t)(a | fw_gen_reg(c)));
        a = fw_gen_reg(c);
        v = a << 12 | fw_gen_small(r, 10) << 2;
        break;
    case FW_GEN_F_MOVW: {
        uint32_t imm = fw_gen_small(r, 16);

        fw_gen_put16(c, (uint16_t)(0xf240 | (imm >> 11 & 1) << 10 | imm >> 12));
        v = (imm >> 8 & 7) << 12 | fw_gen_reg(c) << 8 | (imm & 0xff);
        break;
    }
    }
    fw_gen_put16(c, (uint16_t)v);
}

/*
 * The component's idioms: short sequences every "function" may reuse verbatim, standing in for
 * what a compiler emits again and again (argument set-up before a log call, a field load and
 * compare). They give .text its long-range matches; per component, so components differ.
 */
static void fw_gen_make_idioms(struct fw_gen_ctx *c)
{
    uint8_t tmp[2 * FW_GEN_IDIOM_LEN + 4];
    uint8_t *saved_buf = c->buf;
    size_t saved_pos = c->pos, saved_end = c->end;

    for (unsigned i = 0; i < FW_GEN_IDIOMS; i++) {
        unsigned n = 2 + fw_gen_below(&c->rng, FW_GEN_IDIOM_LEN - 1), k = 0;

        c->buf = tmp;
        c->pos = 0;
        c->end = sizeof(tmp);
        while (c->pos < 2 * n)
            fw_gen_insn(c, false);
        for (size_t p = 0; p + 1 < c->pos && k < FW_GEN_IDIOM_LEN; p += 2)
            c->idiom[i][k++] = (uint16_t)(tmp[p] | tmp[p + 1] << 8);
        c->idiom_len[i] = (uint8_t)k;
    }
    c->buf = saved_buf;
    c->pos = saved_pos;
    c->end = saved_end;
}

/* Register lists of push {..., lr}: r4 alone up to r4-r11 style (low byte only in Thumb-1). */
static const uint8_t fw_gen_push_lists[] = {0x10, 0x30, 0x70, 0xf0, 0xf8, 0x00, 0x38, 0x1c};
static const uint8_t fw_gen_push_w[] = {30, 28, 22, 18, 8, 10, 4, 3};

/* The address of a known function (thumb bit set), or of somewhere in .text. */
static uint32_t fw_gen_func_ptr(struct fw_gen_ctx *c)
{
    unsigned n = c->nfuncs < FW_GEN_FUNCS ? c->nfuncs : FW_GEN_FUNCS;

    if (!n || c->no_ptrs)
        return fw_gen_ptr_in(c, c->text_lo, c->text_hi, true);
    return fw_gen_ptr(c, c->funcs[fw_gen_below(&c->rng, n)]) | 1;
}

/* One function: prologue, body of instructions and idioms, epilogue, then its literal pool. */
static void fw_gen_func(struct fw_gen_ctx *c)
{
    struct fw_gen_rng *r = &c->rng;
    uint8_t list = fw_gen_push_lists[fw_gen_pick(r, fw_gen_push_w, sizeof(fw_gen_push_w))];
    unsigned n = 3 + fw_gen_small(r, 8), frame = fw_gen_chance(r, 35) ? fw_gen_small(r, 4) : 0;
    unsigned pool = fw_gen_below(r, 7);

    fw_gen_add_func(c, c->pos);
    fw_gen_put16(c, (uint16_t)(0xb500 | list));
    if (frame)
        fw_gen_put16(c, (uint16_t)(0xb080 | frame));
    for (unsigned i = 0; i < n && fw_gen_room(c) >= 4; i++) {
        if (fw_gen_chance(r, 30)) {
            unsigned k = fw_gen_below(r, FW_GEN_IDIOMS);

            for (unsigned j = 0; j < c->idiom_len[k]; j++)
                fw_gen_put16(c, c->idiom[k][j]);
        } else {
            fw_gen_insn(c, true);
        }
    }
    if (frame)
        fw_gen_put16(c, (uint16_t)(0xb000 | frame));
    fw_gen_put16(c, (uint16_t)(0xbd00 | list));
    if (c->pos % 4)
        fw_gen_put16(c, 0xbf00);
    /* The literal pool: string and function addresses, peripheral and RAM addresses, masks. */
    for (unsigned i = 0; i < pool; i++) {
        switch (fw_gen_below(r, 10)) {
        case 0:
        case 1:
        case 2:
            fw_gen_put32(c, fw_gen_ptr_in(c, c->ro_lo, c->ro_hi, false));
            break;
        case 3:
        case 4:
            fw_gen_put32(c, fw_gen_func_ptr(c));
            break;
        case 5: {
            uint32_t block = fw_gen_below(r, 64);

            fw_gen_put32(c, 0x40000000u | block << 10 | fw_gen_small(r, 6) << 2);
            break;
        }
        case 6:
        case 7:
            fw_gen_put32(c, 0x20000000u | fw_gen_small(r, 18) << 2);
            break;
        default:
            fw_gen_put32(c, fw_gen_chance(r, 50) ? fw_gen_small(r, 20)
                                                 : 0xffffffffu >> fw_gen_below(r, 32));
            break;
        }
    }
}

/* .text: functions back to back until end; the tail that fits no function is zero. */
static void fw_gen_text(struct fw_gen_ctx *c, size_t end)
{
    unsigned k = 0;

    c->end = end;
    while (fw_gen_room(c) >= 16) {
        fw_gen_func(c);
        /* Object-file boundaries: sections aligned to 16 or 32 bytes with zeros. */
        if (++k % (8 + fw_gen_below(&c->rng, 24)) == 0)
            fw_gen_align(c, fw_gen_chance(&c->rng, 50) ? 16 : 32, 0);
    }
    fw_gen_fill(c, 0, fw_gen_room(c));
}

/* ---- .rodata: strings, tables ---- */

/*
 * Vocabularies of the strings. A small vocabulary recombined gives text that compresses like a
 * firmware's log and AT strings (~27 % with zstd -19), far better than code.
 */
static const char *const fw_gen_tags[] = {
    "fota", "qmi",   "nas",  "mm",   "sms",   "uim",  "ds",    "ps",  "rrc",  "pdcp",
    "mac",  "nv",    "efs",  "http", "ftp",   "ssl",  "at",    "usb", "uart", "gnss",
    "pm",   "sleep", "coap", "mqtt", "lwm2m", "tcp",  "dns",   "ppp", "sim",  "cm",
    "wms",  "audio", "rf",   "l1",   "dfota", "boot", "flash",
};
static const char *const fw_gen_nouns[] = {
    "context", "bearer", "socket",  "buffer",   "timer",       "session", "package",      "image",
    "segment", "header", "request", "response", "handle",      "queue",   "event",        "state",
    "profile", "cell",   "band",    "channel",  "apn",         "pdp",     "registration", "signal",
    "file",    "block",  "sector",  "crc",      "checksum",    "version", "config",       "slot",
    "card",    "pin",    "url",     "host",     "port",        "payload", "frame",        "ack",
    "retry",   "attach", "detach",  "paging",   "measurement", "report",  "task",
};
static const char *const fw_gen_verbs[] = {
    "failed",    "ok",      "start",   "done",     "timeout",  "invalid",  "not found",
    "busy",      "aborted", "created", "released", "updated",  "mismatch", "overflow",
    "ready",     "closed",  "open",    "pending",  "rejected", "accepted", "resumed",
    "suspended", "erased",  "written", "verified",
};
static const char *const fw_gen_fmts[] = {
    "%d",   "%u",          "0x%08x", "%s", "%d/%d", "%p",  "%lu",
    "0x%x", "%d.%d.%d.%d", "\"%s\"", "%c", "%02x",  "%ld",
};
static const char *const fw_gen_funcs[] = {
    "init", "deinit", "open",  "close", "read",  "write", "get",  "set", "handle", "process",
    "send", "recv",   "alloc", "free",  "reset", "start", "stop", "cb",  "notify", "parse",
};
static const char *const fw_gen_atcmds[] = {
    "+CGMR",    "+CGMI",   "+CGMM",    "+CGSN",     "+CIMI",     "+CSQ",     "+CREG",    "+CEREG",
    "+CGREG",   "+COPS",   "+CFUN",    "+CPIN",     "+CGATT",    "+CGACT",   "+CGDCONT", "+CGPADDR",
    "+CMEE",    "+CMGF",   "+CMGS",    "+CNMI",     "+QFOTADL",  "+QIACT",   "+QIDEACT", "+QIOPEN",
    "+QICLOSE", "+QISEND", "+QIRD",    "+QHTTPURL", "+QHTTPGET", "+QFUPL",   "+QFDEL",   "+QFLST",
    "+QFLDS",   "+QCFG",   "+QENG",    "+QNWINFO",  "+QCCID",    "+QURCCFG", "+QSCLK",   "+QPOWD",
    "+QIND",    "+QGMR",   "+QMTOPEN", "+QMTCONN",  "+QSSLCFG",  "+QPING",   "+QNTP",    "+QLTS",
};
static const char *const fw_gen_dirs[] = {
    "usrdata", "data", "cache", "fota", "etc", "nv", "efs", "modem", "sys", "tmp",
};
static const char *const fw_gen_months[] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

/*
 * A string as firmware carries them, without its NUL; returns its length. Every draw is its
 * own statement: the order of evaluation of function arguments is unspecified in C, and the
 * bytes must not depend on the compiler.
 */
static int fw_gen_string(struct fw_gen_ctx *c, char *s, size_t size)
{
    struct fw_gen_rng *r = &c->rng;
    const char *tag = FW_GEN_WORD(r, fw_gen_tags), *noun = FW_GEN_WORD(r, fw_gen_nouns);
    const char *verb = FW_GEN_WORD(r, fw_gen_verbs), *fmt = FW_GEN_WORD(r, fw_gen_fmts);
    const char *noun2 = FW_GEN_WORD(r, fw_gen_nouns), *fn = FW_GEN_WORD(r, fw_gen_funcs);
    const char *at = FW_GEN_WORD(r, fw_gen_atcmds), *dir = FW_GEN_WORD(r, fw_gen_dirs);
    unsigned kind = fw_gen_below(r, 16), n[6];

    for (int i = 0; i < 6; i++)
        n[i] = fw_gen_below(r, 60);
    switch (kind) {
    case 0:
    case 1:
    case 2:
    case 3:
    case 4: /* log messages */
        return snprintf(s, size, "[%s] %s %s, %s=%s%s", tag, noun, verb, noun2, fmt,
                        n[0] < 36 ? "\r\n" : "");
    case 5:
    case 6:
        return snprintf(s, size, "%s_%s_%s: %s %s (%s)", tag, noun, fn, noun2, verb, fmt);
    case 7:
    case 8:
    case 9: /* __func__ names */
        return snprintf(s, size, "%s_%s_%s", tag, noun, fn);
    case 10:
    case 11: /* AT command names and answers */
        if (n[0] < 30)
            return snprintf(s, size, "%s", at);
        return snprintf(s, size, "%s: \"%s\",%s", at, noun, fmt);
    case 12: /* versions and build stamps */
        return snprintf(s, size, "V%u.%u.%u build %s %2u 20%02u %02u:%02u:%02u", n[0] % 4,
                        n[1] % 20, n[2], fw_gen_months[n[3] % 12], 1 + n[4] % 28, 18 + n[5] % 7,
                        n[1] % 24, n[3], n[5]);
    case 13: /* paths */
        return snprintf(s, size, "/%s/%s/%s_%s.%s", dir, tag, noun, fn, n[0] < 30 ? "cfg" : "bin");
    case 14: /* assertions: source file and line */
        return snprintf(s, size, "ASSERT %s/src/%s_%s.c:%u", tag, tag, noun, 10 + n[0] * 50 + n[1]);
    default:
        return snprintf(s, size, "%s %s", noun, verb);
    }
}

/* n strings, each NUL-terminated and padded to 4 bytes as compilers place them. */
static void fw_gen_strings(struct fw_gen_ctx *c, unsigned n)
{
    char s[160];

    for (unsigned i = 0; i < n && fw_gen_room(c) >= 8; i++) {
        int len = fw_gen_string(c, s, sizeof(s));

        if (len < 0)
            len = 0;
        if ((size_t)len >= sizeof(s))
            len = sizeof(s) - 1;
        c->strs[c->nstrs++ % FW_GEN_STRS] = c->pos;
        fw_gen_put(c, s, (size_t)len + 1);
        fw_gen_align(c, 4, 0);
    }
}

/* Small-integer tables: band lists, step tables, enum maps (u8, u16 or u32 entries). */
static void fw_gen_int_table(struct fw_gen_ctx *c)
{
    struct fw_gen_rng *r = &c->rng;
    unsigned width = 1u << fw_gen_below(r, 3), n = 8 + fw_gen_below(r, 120 / width);
    unsigned mode = fw_gen_below(r, 3), v = fw_gen_small(r, 6), step = 1 + fw_gen_small(r, 4);

    for (unsigned i = 0; i < n && fw_gen_room(c) >= width; i++) {
        uint8_t b[4] = {0};

        if (mode == 0)
            v += step + fw_gen_below(r, 2); /* increasing with small deltas */
        else if (mode == 1)
            v = fw_gen_small(r, 5); /* small enum values */
        else
            v = i % (2 + step) * step; /* repeating pattern */
        for (unsigned k = 0; k < width; k++)
            b[k] = (uint8_t)(v >> (8 * k));
        fw_gen_put(c, b, width);
    }
    fw_gen_align(c, 4, 0);
}

/* A command table: {name, handler, flags, min/max} entries pointing at strings and functions. */
static void fw_gen_ptr_table(struct fw_gen_ctx *c)
{
    struct fw_gen_rng *r = &c->rng;
    unsigned n = 4 + fw_gen_below(r, 36);

    for (unsigned i = 0; i < n && fw_gen_room(c) >= 16; i++) {
        unsigned known = c->nstrs < FW_GEN_STRS ? c->nstrs : FW_GEN_STRS;
        size_t name = known ? c->strs[fw_gen_below(r, known)] : c->ro_lo;
        uint32_t a, b;

        fw_gen_put32(c, fw_gen_ptr(c, name));
        fw_gen_put32(c, fw_gen_func_ptr(c));
        a = fw_gen_small(r, 4);
        b = fw_gen_small(r, 3);
        fw_gen_put32(c, a | b << 8);
        a = fw_gen_small(r, 3);
        b = fw_gen_small(r, 8);
        fw_gen_put32(c, a | b << 16);
    }
}

/* .rodata: mostly strings, with integer tables and command tables in between. */
static void fw_gen_rodata(struct fw_gen_ctx *c, size_t end)
{
    struct fw_gen_rng *r = &c->rng;

    c->end = end;
    while (fw_gen_room(c) >= 16) {
        unsigned k = fw_gen_below(r, 100);

        if (k < 70)
            fw_gen_strings(c, 4 + fw_gen_below(r, 40));
        else if (k < 84)
            fw_gen_int_table(c);
        else if (k < 94)
            fw_gen_ptr_table(c);
        else
            fw_gen_align(c, 16, 0);
    }
    fw_gen_fill(c, 0, fw_gen_room(c));
}

/* .data: initial values of variables: zeros, small numbers, pointers, all-ones, RAM addresses. */
static void fw_gen_data(struct fw_gen_ctx *c, size_t end)
{
    struct fw_gen_rng *r = &c->rng;

    c->end = end;
    while (fw_gen_room(c) >= 4) {
        unsigned k = fw_gen_below(r, 10);

        if (k < 4)
            fw_gen_put32(c, 0);
        else if (k < 6)
            fw_gen_put32(c, fw_gen_small(r, 12));
        else if (k < 7)
            fw_gen_put32(c, fw_gen_ptr_in(c, c->ro_lo, c->ro_hi, false));
        else if (k < 8)
            fw_gen_put32(c, fw_gen_func_ptr(c));
        else if (k < 9)
            fw_gen_put32(c, 0xffffffffu);
        else
            fw_gen_put32(c, 0x20000000u | fw_gen_small(r, 18) << 2);
    }
    fw_gen_fill(c, 0, fw_gen_room(c));
}

static const char *const fw_gen_comp_names[] = {"apps", "modem", "dsp", "tz", "rpm", "ims"};

/*
 * One component in [lo, hi): a 64-byte header (name, load address, size), a vector table, then
 * .text, .rodata, .data in proportions drawn per component, and 0xFF padding to hi.
 */
static void fw_gen_component(struct fw_gen_ctx *c, size_t lo, size_t hi, unsigned index)
{
    struct fw_gen_rng *r = &c->rng;
    size_t size = hi - lo;
    size_t text = size * (50 + fw_gen_below(r, 12)) / 100;
    size_t ro = size * (22 + fw_gen_below(r, 8)) / 100;
    size_t data = size * (3 + fw_gen_below(r, 4)) / 100;
    size_t hdr = 64 + 4 * FW_GEN_VECTORS, vectors, end;
    char name[32] = {0};

    c->pos = lo;
    c->end = hi;
    c->nfuncs = c->nstrs = 0;
    c->text_lo = lo + hdr < hi ? lo + hdr : lo;
    c->text_hi = lo + text > c->text_lo ? (lo + text) & ~(size_t)3 : c->text_lo;
    c->ro_lo = c->text_hi;
    c->ro_hi = (c->ro_lo + ro) & ~(size_t)3;
    if (c->ro_hi > hi)
        c->ro_hi = hi & ~(size_t)3;
    fw_gen_make_idioms(c);

    snprintf(name, sizeof(name), "%s", fw_gen_comp_names[index % FW_GEN_COUNT(fw_gen_comp_names)]);
    fw_gen_put(c, name, 16);
    fw_gen_put32(c, 0x4d4f4455u); /* "UDOM" */
    fw_gen_put32(c, fw_gen_ptr(c, lo));
    fw_gen_put32(c, (uint32_t)size);
    fw_gen_put32(c, 1 + fw_gen_below(r, 9));
    fw_gen_fill(c, 0, lo + 64 - c->pos);
    /* Vector table: written once .text exists (handlers are its first functions). */
    vectors = c->pos;
    fw_gen_fill(c, 0, 4 * FW_GEN_VECTORS);
    if (c->pos < c->text_hi)
        fw_gen_text(c, c->text_hi);
    end = c->pos;
    c->pos = vectors;
    c->end = vectors + 4 * FW_GEN_VECTORS < hi ? vectors + 4 * FW_GEN_VECTORS : hi;
    fw_gen_put32(c, 0x20040000u);                 /* initial stack pointer */
    for (unsigned i = 1; i < FW_GEN_VECTORS; i++) /* handlers, some unused (zero) */
        fw_gen_put32(c, i < c->nfuncs && fw_gen_chance(r, 80) ? fw_gen_ptr(c, c->first[i]) | 1 : 0);
    c->pos = end;
    c->end = hi;
    if (c->pos < c->ro_hi)
        fw_gen_rodata(c, c->ro_hi);
    if (c->pos < c->ro_hi + data && c->ro_hi + data <= hi)
        fw_gen_data(c, (c->ro_hi + data) & ~(size_t)3);
    c->end = hi;
    fw_gen_fill(c, 0xff, fw_gen_room(c));
}

/*
 * The body: components one after another. The context (~2 KiB) lives on the stack: this
 * function cannot fail, and must not, since a fallback body would be a different image.
 */
void fw_gen_body(const struct fw_gen *g, uint8_t *body)
{
    struct fw_gen_ctx ctx, *c = &ctx;
    size_t n, lo = 0, unit;

    if (!g->size)
        return;
    memset(c, 0, sizeof(*c));
    fw_gen_rng_init(&c->rng, g->seed);
    c->buf = body;
    /* 1 component per 2 MiB, at most 4; boundaries on 4 KiB (erase units) when big enough. */
    n = 1 + g->size / (2u << 20);
    if (n > 4)
        n = 4;
    unit = g->size >= (64u << 10) ? 4096 : 4;
    for (size_t i = 0; i < n; i++) {
        size_t hi = i + 1 == n ? g->size : g->size * (i + 1) / n / unit * unit;

        if (hi < lo)
            hi = lo;
        fw_gen_component(c, lo, hi, (unsigned)i);
        lo = hi;
    }
}

/* ---- derivation: a rebuild of an old body ---- */

static uint32_t fw_gen_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void fw_gen_set32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/*
 * Pointer-like: the generator's absolute addresses. A code word can fall in the range by
 * chance (lsrs with a zero shift); a derive then "moves" it too, which is harmless noise.
 */
static bool fw_gen_is_ptr(uint32_t w, size_t len)
{
    return w >= FW_GEN_BASE && w - FW_GEN_BASE < len;
}

/* A word that looks like instructions: not a pointer, padding, small integer or text. */
static bool fw_gen_codelike(uint32_t w, size_t len)
{
    unsigned text = 0;

    if (w >> 16 == 0 || w == 0xffffffffu || fw_gen_is_ptr(w, len))
        return false;
    for (int i = 0; i < 32; i += 8) {
        unsigned b = w >> i & 0xff;

        text += b == 0 || (b >= 0x20 && b < 0x7f);
    }
    return text < 4;
}

/*
 * An inserted or removed run of old bytes: insert before off, or remove [off, off + len).
 * Offsets and lengths are multiples of 4, so every old 4-aligned word stays 4-aligned in the
 * new body and pointer words remain findable by the next derivation.
 */
struct fw_gen_op {
    size_t off, len;
    bool insert;
};

#define FW_GEN_MAX_RUNS 32

static int fw_gen_op_cmp(const void *a, const void *b)
{
    const struct fw_gen_op *x = a, *y = b;

    /* A total order: qsort is not stable, and ties must not depend on the C library. */
    if (x->off != y->off)
        return x->off < y->off ? -1 : 1;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return (int)x->insert - (int)y->insert;
}

/*
 * Shift of old offset t in the new body (a target inside a removed run moves to its start).
 * Linear in the runs: there are at most FW_GEN_MAX_RUNS of them.
 */
static int64_t fw_gen_shift(const struct fw_gen_op *ops, size_t nops, size_t t)
{
    int64_t d = 0;

    for (size_t i = 0; i < nops && ops[i].off <= t; i++) {
        if (ops[i].insert)
            d += (int64_t)ops[i].len;
        else if (t >= ops[i].off + ops[i].len)
            d -= (int64_t)ops[i].len;
        else
            return d - (int64_t)(t - ops[i].off);
    }
    return d;
}

/* Whether [off, off + n) touches a removed run (editing it would be wasted). */
static bool fw_gen_removed(const struct fw_gen_op *ops, size_t nops, size_t off, size_t n)
{
    for (size_t i = 0; i < nops; i++)
        if (!ops[i].insert && off < ops[i].off + ops[i].len && ops[i].off < off + n)
            return true;
    return false;
}

/*
 * Scattered edits in code-like words of body (a copy of old): clusters of small changes, as a
 * recompiled function shows (an immediate, a register, an instruction replaced). Words whose
 * neighbours are not code-like are skipped, so strings, tables and pointers stay intact.
 */
static void fw_gen_edits(struct fw_gen_ctx *c, const uint8_t *old, uint8_t *body, size_t len,
                         size_t budget, const struct fw_gen_op *ops, size_t nops,
                         struct fw_gen_stats *st)
{
    struct fw_gen_rng *r = &c->rng;
    size_t words = len / 4, tries = 0, limit = 64 + budget * 4;

    if (words < 3)
        return;
    while (st->edit_bytes < budget && tries++ < limit) {
        size_t centre = 1 + fw_gen_below(r, (uint32_t)(words - 2));
        unsigned n = 1 + fw_gen_below(r, 6);

        for (unsigned e = 0; e < n && st->edit_bytes < budget; e++) {
            size_t w = centre + fw_gen_below(r, 256), changed = 0;
            unsigned span = 1 + fw_gen_small(r, 2);

            w = w < 128 ? 1 : w - 128;
            if (w + span + 1 > words || fw_gen_removed(ops, nops, 4 * w, 4 * span))
                continue;
            for (size_t k = w - 1; k <= w + span; k++)
                if (!fw_gen_codelike(fw_gen_get32(old + 4 * k), len))
                    goto next;
            for (size_t k = w; k < w + span; k++) {
                uint8_t *p = body + 4 * k + 2 * fw_gen_below(r, 2);
                uint16_t h = (uint16_t)(p[0] | p[1] << 8);
                uint32_t before = fw_gen_get32(body + 4 * k);

                switch (fw_gen_below(r, 4)) {
                case 0: /* another register */
                    h ^= (uint16_t)(1 + fw_gen_below(r, 7));
                    break;
                case 1: /* another immediate */
                    h = (uint16_t)((h & 0xff00) | fw_gen_small(r, 8));
                    break;
                default: { /* another instruction */
                    uint8_t tmp[4];

                    c->buf = tmp;
                    c->pos = 0;
                    c->end = 2;
                    fw_gen_insn(c, false);
                    h = (uint16_t)(tmp[0] | tmp[1] << 8);
                    break;
                }
                }
                p[0] = (uint8_t)h;
                p[1] = (uint8_t)(h >> 8);
                if (fw_gen_is_ptr(fw_gen_get32(body + 4 * k), len))
                    fw_gen_set32(body + 4 * k, before); /* never forge a pointer */
                for (int b = 0; b < 4; b++)
                    changed += body[4 * k + b] != old[4 * k + b];
            }
            if (changed) {
                st->edits++;
                st->edit_bytes += changed;
            }
        next:;
        }
    }
}

/* What kind of content surrounds old offset off: 0 code, 1 text, 2 erased padding. */
static int fw_gen_region(const uint8_t *old, size_t len, size_t off)
{
    size_t lo = off >= 32 ? off - 32 : 0, hi = off + 32 < len ? off + 32 : len;
    unsigned text = 0, ff = 0;

    for (size_t i = lo; i < hi; i++) {
        text += old[i] == 0 || (old[i] >= 0x20 && old[i] < 0x7f);
        ff += old[i] == 0xff;
    }
    if (hi > lo && ff * 10 >= (hi - lo) * 9)
        return 2;
    return hi > lo && text * 10 >= (hi - lo) * 8;
}

/* Fills out[0, n) with new content like the surroundings of the insertion point. */
static void fw_gen_insertion(struct fw_gen_ctx *c, const uint8_t *old, size_t old_len, size_t off,
                             uint8_t *out, size_t n)
{
    int kind = fw_gen_region(old, old_len, off);

    c->buf = out;
    c->pos = 0;
    c->end = n;
    c->no_ptrs = true;
    c->nfuncs = c->nstrs = 0;
    c->text_lo = c->text_hi = c->ro_lo = c->ro_hi = 0;
    if (kind == 2)
        fw_gen_fill(c, 0xff, n);
    else if (kind == 1)
        while (fw_gen_room(c) >= 8)
            fw_gen_strings(c, 1);
    else
        while (fw_gen_room(c) >= 16)
            fw_gen_func(c);
    fw_gen_fill(c, 0, fw_gen_room(c));
}

/*
 * Draws the inserted and removed runs: sorted, 4-aligned, removals not overlapping anything.
 * About 2 KiB per run, at least 2 and at most FW_GEN_MAX_RUNS: "a few" moves, as a rebuild
 * that adds or drops some functions and strings shows, not a reshuffle.
 */
static size_t fw_gen_plan_runs(struct fw_gen_rng *r, size_t old_len, size_t budget,
                               struct fw_gen_op *ops)
{
    size_t nruns, avg, n = 0, words = old_len / 4;

    if (budget < 8 || words < 4)
        return 0;
    nruns = budget / 2048;
    nruns = nruns < 2 ? 2 : nruns > FW_GEN_MAX_RUNS ? FW_GEN_MAX_RUNS : nruns;
    avg = budget / nruns;
    for (size_t i = 0; i < nruns; i++) {
        size_t len = (avg / 2 + fw_gen_below(r, (uint32_t)(avg > 1 ? avg : 1) + 1)) & ~(size_t)3;

        ops[i].off = 4 * (size_t)fw_gen_below(r, (uint32_t)words);
        ops[i].len = len ? len : 4;
        ops[i].insert = fw_gen_chance(r, 50);
    }
    qsort(ops, nruns, sizeof(*ops), fw_gen_op_cmp);
    /* Clip removals at the next op and at the end; drop what became empty or collides. */
    for (size_t i = 0; i < nruns; i++) {
        size_t next = i + 1 < nruns ? ops[i + 1].off : words * 4;

        if (n && ops[n - 1].off + (ops[n - 1].insert ? 0 : ops[n - 1].len) > ops[i].off)
            continue;
        if (n && ops[n - 1].off == ops[i].off)
            continue;
        if (!ops[i].insert && ops[i].off + ops[i].len > next)
            ops[i].len = next - ops[i].off;
        if (ops[i].len)
            ops[n++] = ops[i];
    }
    return n;
}

/*
 * A rebuild in three passes: plan the runs (40 % of the budget), spend the rest of the budget
 * on scattered edits in a copy of old, then copy old into new around the runs, replacing each
 * pointer word (found in the unedited old) by its target's new address. The edits never touch
 * a pointer word, so "pointer in old" and "pointer to move" are the same set.
 */
int fw_gen_derive_stats(const uint8_t *old, size_t old_len, double change_pct, uint64_t seed,
                        uint8_t **new_body, size_t *new_len, struct fw_gen_stats *st)
{
    struct fw_gen_op ops[FW_GEN_MAX_RUNS];
    struct fw_gen_stats tmp_st;
    struct fw_gen_ctx *c = NULL;
    uint8_t *body = NULL, *out = NULL;
    size_t budget, nops, len, used = 0, o = 0, w = 0;
    int rc = -ENOMEM;

    if (!st)
        st = &tmp_st;
    memset(st, 0, sizeof(*st));
    if (!(change_pct > 0)) /* also NaN */
        change_pct = 0;
    if (change_pct > 100)
        change_pct = 100;
    budget = (size_t)((double)old_len * change_pct / 100.0 + 0.5);

    c = calloc(1, sizeof(*c));
    body = malloc(old_len ? old_len : 1);
    if (!c || !body)
        goto out;
    /* A different stream from fw_gen_body's for the same number (a seed may be a revision's). */
    fw_gen_rng_init(&c->rng, seed ^ 0x6a09e667f3bcc908ull);
    fw_gen_make_idioms(c); /* for inserted functions */
    memcpy(body, old, old_len);
    nops = fw_gen_plan_runs(&c->rng, old_len, budget * 2 / 5, ops);
    /* Edits make up what the runs did not use (clipping may have shrunk them). */
    len = old_len;
    for (size_t i = 0; i < nops; i++) {
        used += ops[i].len;
        if (ops[i].insert)
            len += ops[i].len;
        else
            len -= ops[i].len;
    }
    fw_gen_edits(c, old, body, old_len, budget > used ? budget - used : 0, ops, nops, st);
    out = malloc(len ? len : 1);
    if (!out)
        goto out;
    /* Copy old (edited) bytes around the runs, move pointer words, generate inserted runs. */
    for (size_t i = 0; i <= nops; i++) {
        size_t stop = i < nops ? ops[i].off : old_len;

        for (; o < stop; o++, w++) {
            uint32_t v;

            if (o % 4 == 0 && o + 4 <= old_len &&
                fw_gen_is_ptr(v = fw_gen_get32(old + o), old_len)) {
                int64_t d = fw_gen_shift(ops, nops, v - FW_GEN_BASE);

                fw_gen_set32(out + w, (uint32_t)((int64_t)v + d));
                st->pointers++;
                st->fixups += d != 0;
                o += 3;
                w += 3;
                continue;
            }
            out[w] = body[o];
        }
        if (i == nops)
            break;
        if (ops[i].insert) {
            fw_gen_insertion(c, old, old_len, ops[i].off, out + w, ops[i].len);
            w += ops[i].len;
            st->inserts++;
            st->insert_bytes += ops[i].len;
        } else {
            o += ops[i].len;
            st->removes++;
            st->remove_bytes += ops[i].len;
        }
    }
    *new_body = out;
    *new_len = len;
    out = NULL;
    rc = 0;
out:
    free(out);
    free(body);
    free(c);
    return rc;
}

int fw_gen_derive(const uint8_t *old, size_t old_len, double change_pct, uint64_t seed,
                  uint8_t **new_body, size_t *new_len)
{
    return fw_gen_derive_stats(old, old_len, change_pct, seed, new_body, new_len, NULL);
}
