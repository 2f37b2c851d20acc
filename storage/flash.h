/* flash.h: a NOR flash model, the one choke point of every persistent change (see flash.c). */
#ifndef MODTWIN_STORAGE_FLASH_H
#define MODTWIN_STORAGE_FLASH_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#define FLASH_ERASED         0xFFu
#define FLASH_DEF_ERASE_SIZE 4096u
#define FLASH_DEF_PAGE_SIZE  256u

/* size must be a multiple of erase_size, erase_size a multiple of page_size.
 * erase_size or page_size 0 selects the default (4096 / 256); size has no default. */
struct flash_geom {
    uint32_t size, erase_size, page_size;
};

/* What a fault rule does to the operation it hits (see flash_arm). */
enum flash_fault {
    FLASH_CUT_BEFORE,
    FLASH_CUT_AFTER,
    FLASH_CUT_TORN_PROG,
    FLASH_CUT_TORN_ERASE,
    FLASH_CUT_SKIP_ERASE,
};

/* Runs synchronously inside the operation that was hit, after its effect landed and the flash
 * went dead; op is its number counted from power-on (flash_ops() at that moment). It may
 * longjmp out (unit-level sweeps): the flash is consistent when it runs. */
typedef void flash_cut_fn(void *ctx, uint64_t op);

struct flash_stats {
    uint64_t ops;              /* numbered operations since power-on (= flash_ops) */
    uint64_t progs, erases;    /* numbered operations since open, a faulted one included */
    uint64_t bytes_programmed; /* bytes of programs that landed, fully or torn, since open */
    uint64_t violations;       /* refused 0->1 programs since open */
    uint32_t max_wear;         /* highest erase count of any unit (persistent) */
};

/* Caller-owned; all fields are private to flash.c. */
struct flash {
    struct flash_geom geom;
    uint8_t *mem;           /* the device: a MAP_SHARED file mapping or heap memory */
    uint32_t *wear;         /* one erase counter per unit, mapped from "<path>.wear" or heap */
    uint64_t *blank, *used; /* heap, one bit per page each: what is known of it (RAM only) */
    uint32_t units;         /* geom.size / geom.erase_size */
    uint32_t pages;         /* geom.size / geom.page_size */
    bool mapped;            /* mem and wear are mmap()ed (file), else malloc()ed */
    bool dead;
    bool armed;
    enum flash_fault fault;
    uint32_t seed;
    uint64_t fault_at; /* op number (since power-on) the armed fault hits */
    uint64_t ops;      /* numbered operations since power-on */
    uint64_t progs, erases, bytes_programmed, violations;
    flash_cut_fn *cut_fn;
    void *cut_ctx;
};

/* File-backed device. The file is mapped MAP_SHARED, so a kill -9 leaves exactly what was
 * programmed. A missing (or empty) file is created filled with 0xFF (through "<path>.tmp" and
 * a rename, so a crash never leaves a half-filled device); an existing file is reused when its
 * size equals g->size. Wear counters live in "<path>.wear" (one native uint32 per unit), created
 * as zeros when missing or of the wrong size. The device starts powered on, disarmed.
 * Returns 0, -EINVAL (bad geometry, size mismatch), or -errno from the system. On error
 * *f holds nothing to release. Release with flash_close. */
int flash_open(struct flash *f, const char *path, const struct flash_geom *g);

/* The same device in heap memory, all 0xFF, wear 0 (tests, sweeps). Returns 0, -EINVAL, -ENOMEM. */
int flash_open_mem(struct flash *f, const struct flash_geom *g);

/* Unmaps or frees everything; *f may then be opened again. Safe on a zeroed struct. */
void flash_close(struct flash *f);

/* The geometry in use, defaults filled in; valid until flash_close. */
const struct flash_geom *flash_geometry(const struct flash *f);

/* Read-only view of the whole device (geom.size bytes), valid until flash_close. */
const uint8_t *flash_data(const struct flash *f);

/* Copies len bytes at off into buf. Works on a dead flash; never counts as an operation.
 * Returns 0 or -EINVAL (out of range). */
int flash_read(const struct flash *f, uint32_t off, void *buf, uint32_t len);

/* One page program = one numbered operation; [off, off+len) must lie inside one page.
 * The result is exactly buf: asking for a 1 where the cell holds 0 (0->1) is refused whole,
 * so a double program with a different value is caught; 0xFF over erased cells is a no-op.
 * Returns 0; -EINVAL (out of range, crosses a page); -ECANCELED (dead: nothing written, not
 * numbered); -EIO on a 0->1 request (nothing written, a violation counted, not numbered);
 * or the fault's result when the armed fault hits it. len 0 is a no-op. */
int flash_prog(struct flash *f, uint32_t off, const void *buf, uint32_t len);

/* Programs [off, off+len) page by page (one operation per page touched) and stops at the first
 * error, which it returns; pages before it stay programmed. Exactly a loop of flash_prog calls
 * in effect, numbering, counters and faults (a range no fault rule reaches and that breaks no
 * 1->0 rule is checked and copied in one piece; anything else goes page by page). */
int flash_write(struct flash *f, uint32_t off, const void *buf, uint32_t len);

/* Does [off, off+len) read as erased (every byte FLASH_ERASED)? A read: never numbered, works on
 * a dead flash. Pages whose state the model knows since power-on (it erased or programmed them,
 * or read them before) are answered from RAM without touching the device memory; the rest are
 * read and remembered (a file-backed device's pages read here leave the resident set again,
 * as after flash_evict). Returns false for a range out of bounds; true for len 0. */
bool flash_blank(struct flash *f, uint32_t off, uint32_t len);

/* Erases the erase unit that starts at off: one numbered operation, bumps that unit's wear.
 * Returns 0, -EINVAL (unaligned, out of range), -ECANCELED (dead), or the fault's result. */
int flash_erase(struct flash *f, uint32_t off);

/* Erases whole units in [off, off+len), one operation each, stopping at the first error.
 * off and len must be unit-aligned (-EINVAL, checked before anything is erased). */
int flash_erase_range(struct flash *f, uint32_t off, uint32_t len);

/* Arms one fault rule (replacing any earlier one): the nth numbered program/erase from now
 * (1 = the next) is hit, then the flash is dead and the cut callback runs. nth 0 disarms.
 *   BEFORE      the op does not happen; returns -ECANCELED
 *   AFTER       the op happens in full; returns 0
 *   TORN_PROG   a program lands as old & (new | flash_tear_mask(seed, i)) per byte i;
 *               returns -ECANCELED. An erase hit by it behaves as BEFORE.
 *   TORN_ERASE  an erase leaves its first flash_tear_prefix(f, seed) bytes erased and the rest
 *               as it was (wear still counts); returns -ECANCELED. A program: as BEFORE.
 *   SKIP_ERASE  an erase silently does nothing and returns 0. A program: as BEFORE. */
void flash_arm(struct flash *f, uint64_t nth, enum flash_fault kind, uint32_t seed);
void flash_disarm(struct flash *f);

/* Registers the cut callback (NULL removes it); kept across flash_power_on. */
void flash_set_cut_cb(struct flash *f, flash_cut_fn *fn, void *ctx);

/* Power cut from outside: dead from now on, no callback. */
void flash_kill(struct flash *f);
bool flash_dead(const struct flash *f);

/* A new power-on: alive, op counter 0, fault rule disarmed; content, wear, stats and the cut
 * callback are kept. What the model knew of blank pages is dropped (it is RAM, and a harness
 * may have loaded the content behind the model's back). */
void flash_power_on(struct flash *f);

/* Numbered operations (programs + erases) since power-on. */
uint64_t flash_ops(const struct flash *f);

/*
 * Lets the host drop the resident pages of [off, off+len) from this process (a file-backed
 * device only; the bytes stay in the file). Not a device operation: nothing changes, nothing is
 * numbered. A module calls it after reading a large area once (the boot loader's image check).
 */
void flash_evict(const struct flash *f, uint32_t off, uint32_t len);
void flash_stats(const struct flash *f, struct flash_stats *st);

/* Erase count of one unit; 0 for a unit out of range. */
uint32_t flash_wear(const struct flash *f, uint32_t unit);

/* The fault model's arithmetic, public so tests can predict torn results exactly.
 * flash_tear_mask: mask byte for byte i of a torn program (1 bits = did not land).
 * flash_tear_prefix: bytes a torn erase leaves erased, in [0, erase_size). */
uint8_t flash_tear_mask(uint32_t seed, uint32_t i);
uint32_t flash_tear_prefix(const struct flash *f, uint32_t seed);

#endif
