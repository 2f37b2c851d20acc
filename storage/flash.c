/*
 * flash.c: a NOR flash model (erase units, page programs that only clear bits, wear counters)
 * backed by a MAP_SHARED file or by heap memory. Every program and erase is numbered from
 * power-on; one armed fault rule cuts, tears or skips the nth operation and leaves the device
 * dead, which is how power-loss sweeps are built on top of it. What it knows in RAM of which pages
 * are blank spares work that cannot change anything (see enum flash_pg).
 * It is not a block device layer: no bad blocks, no ECC, no timing, no caching. Reads are free
 * and never numbered. Partitions and anything above them live elsewhere.
 */
#include "storage/flash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Chris Wellons' lowbias32: cheap, well mixed, and fixed forever so torn results are stable. */
static uint32_t flash_mix32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

/* Each byte gets its own mask, about half its bits set: a torn page is neither the old nor the
 * new content, which is what a CRC-protected format has to survive. The index is mixed before
 * the seed so that neighbouring seeds do not give shifted copies of one mask. */
uint8_t flash_tear_mask(uint32_t seed, uint32_t i)
{
    return (uint8_t)flash_mix32(seed ^ flash_mix32(i + 0x9e3779b9u));
}

/* Never the whole unit: a tear that erased everything would just be AFTER with another return
 * code. 0 (nothing erased) stays possible, as on a real part cut at the first pulse. */
uint32_t flash_tear_prefix(const struct flash *f, uint32_t seed)
{
    return flash_mix32(seed ^ 0x5bd1e995u) % f->geom.erase_size;
}

/* Fills in the defaults and checks the divisibility every other function relies on: with it,
 * a page never straddles an erase unit and the wear table covers the device exactly. */
static int flash_geom_check(const struct flash_geom *in, struct flash_geom *out)
{
    if (!in)
        return -EINVAL;
    out->size = in->size;
    out->erase_size = in->erase_size ? in->erase_size : FLASH_DEF_ERASE_SIZE;
    out->page_size = in->page_size ? in->page_size : FLASH_DEF_PAGE_SIZE;
    if (out->size == 0 || out->erase_size % out->page_size || out->size % out->erase_size)
        return -EINVAL;
    return 0;
}

/* Everything but the storage itself: counters, fault rule, callback. */
static void flash_init_state(struct flash *f, const struct flash_geom *g, bool mapped)
{
    memset(f, 0, sizeof(*f));
    f->geom = *g;
    f->units = g->size / g->erase_size;
    f->pages = g->size / g->page_size;
    f->mapped = mapped;
}

/* ---- what the model knows of its pages, in RAM -------------------------------------------- */

/*
 * Two bits per page, both clear = unknown: `blank` (the page reads all FLASH_ERASED) or `used`
 * (it holds a byte that is not). Learnt from the model's own operations (an erase leaves its
 * pages blank; a program leaves its page used when the bytes it wrote show it, else unknown) and
 * from reads (flash_blank), forgotten at every power-on (a harness may load content behind the
 * model's back). They let work be skipped that could not change anything: the 1->0 check of a
 * program onto a blank page, the write of an erase of a blank unit, the read that answers
 * "blank?" for a known page. And they keep the page tables clean: unknown pages are read a
 * window at a time (flash_peek), and a file-backed device's window is then unmapped again, so
 * that the next touch of such a page is the program's write. On Linux a first write to a shared
 * file page costs a fraction of a write after a read (the read maps it read-only, the write then
 * takes the write-protect fault: about 0.3 against 2 us per 4 KiB page). Numbering, wear and
 * faults never depend on these bits.
 */
enum flash_pg { FLASH_PG_UNKNOWN, FLASH_PG_BLANK, FLASH_PG_USED };

#define FLASH_PEEK (64u << 10) /* bytes flash_peek learns at once */

static bool flash_bit(const uint64_t *map, uint32_t pg)
{
    return (map[pg / 64] >> (pg % 64)) & 1;
}

/* Mask of bits [lo, hi) of one bitmap word, 0 <= lo < hi <= 64. */
static uint64_t flash_word_mask(uint32_t lo, uint32_t hi)
{
    uint64_t m = hi == 64 ? UINT64_MAX : ((uint64_t)1 << hi) - 1;
    return m & ~(((uint64_t)1 << lo) - 1);
}

/* Pages [pg, pg+n) become st, a word at a time (a 4 KiB block is 16 pages). */
static void flash_pg_set(struct flash *f, uint32_t pg, uint32_t n, enum flash_pg st)
{
    for (uint32_t end = pg + n; pg < end;) {
        uint32_t lo = pg % 64, hi = end - (pg - lo) < 64 ? end - (pg - lo) : 64;
        uint64_t m = flash_word_mask(lo, hi);
        f->blank[pg / 64] = st == FLASH_PG_BLANK ? f->blank[pg / 64] | m : f->blank[pg / 64] & ~m;
        f->used[pg / 64] = st == FLASH_PG_USED ? f->used[pg / 64] | m : f->used[pg / 64] & ~m;
        pg += hi - lo;
    }
}

/* Are all pages [pg, pg+n) known blank? */
static bool flash_pg_all_blank(const struct flash *f, uint32_t pg, uint32_t n)
{
    for (uint32_t end = pg + n; pg < end;) {
        uint32_t lo = pg % 64, hi = end - (pg - lo) < 64 ? end - (pg - lo) : 64;
        uint64_t m = flash_word_mask(lo, hi);
        if ((f->blank[pg / 64] & m) != m)
            return false;
        pg += hi - lo;
    }
    return true;
}

/* After a program of src[0, len) to off landed in full (the pages then hold exactly those bytes
 * there): a byte that is not 0xFF at either end of a page's part proves that page used, which
 * is what a download's data or a log record shows; otherwise nothing is claimed. Runs of pages
 * with the same outcome are set at once. */
static void flash_pg_programmed(struct flash *f, uint32_t off, const uint8_t *src, uint32_t len)
{
    uint32_t ps = f->geom.page_size, pg = off / ps, run = pg, i = 0, k = ps - off % ps;
    enum flash_pg cur = FLASH_PG_UNKNOWN;

    for (; i < len; pg++, i += k, k = ps) {
        uint32_t n = len - i < k ? len - i : k;
        enum flash_pg st = src[i] != FLASH_ERASED || src[i + n - 1] != FLASH_ERASED
                               ? FLASH_PG_USED
                               : FLASH_PG_UNKNOWN;
        if (pg != run && st != cur) {
            flash_pg_set(f, run, pg - run, cur);
            run = pg;
        }
        cur = st;
    }
    flash_pg_set(f, run, pg - run, cur);
}

/* Reads as all FLASH_ERASED? 64 bytes per branch: the blank checks before an allocation read
 * every block of a download once. */
static bool flash_mem_blank(const uint8_t *p, uint32_t len)
{
    uint32_t i = 0;

    for (; i + 64 <= len; i += 64) {
        uint64_t acc = UINT64_MAX;
        for (uint32_t k = 0; k < 64; k += 8) {
            uint64_t w;
            memcpy(&w, p + i + k, 8);
            acc &= w;
        }
        if (acc != UINT64_MAX)
            return false;
    }
    for (; i < len; i++)
        if (p[i] != FLASH_ERASED)
            return false;
    return true;
}

/* Learns every page of the aligned window of FLASH_PEEK bytes around page pg by reading it, then,
 * for a file-backed device, drops the window from the process's page tables again (flash_evict:
 * the bytes stay in the file). Returns whether bytes [in, in+n) of page pg read as erased. */
static bool flash_peek(struct flash *f, uint32_t pg, uint32_t in, uint32_t n)
{
    uint32_t ps = f->geom.page_size, wp = FLASH_PEEK / ps ? FLASH_PEEK / ps : 1;
    uint32_t first = pg - pg % wp, cnt = f->pages - first < wp ? f->pages - first : wp;
    const uint8_t *w = f->mem + (size_t)first * ps;
    bool b = flash_mem_blank(w + (size_t)(pg - first) * ps + in, n);

    for (uint32_t i = 0; i < cnt; i++)
        flash_pg_set(f, first + i, 1,
                     flash_mem_blank(w + (size_t)i * ps, ps) ? FLASH_PG_BLANK : FLASH_PG_USED);
    flash_evict(f, first * ps, cnt * ps);
    return b;
}

/* Opens (creating if needed) a file of exactly len bytes and maps it shared into *map.
 * A new file holds `fill` everywhere; it is built under "<path>.tmp" and renamed so that a
 * crash during creation leaves either the old state or a complete file. An existing file of
 * another size is -EINVAL unless `replace` (then it is rebuilt). An empty file counts as missing:
 * a user's `touch` can leave one. */
/* Writes len bytes of `fill` into a fresh file with pwrite, in 64 KiB pieces. */
static int flash_fill_file(int fd, uint8_t fill, uint64_t len)
{
    uint8_t buf[64 << 10];

    memset(buf, fill, sizeof(buf));
    for (uint64_t off = 0; off < len;) {
        size_t n = len - off < sizeof(buf) ? (size_t)(len - off) : sizeof(buf);
        ssize_t w = pwrite(fd, buf, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        off += (uint64_t)w;
    }
    return 0;
}

static int flash_map_file(const char *path, size_t len, uint8_t fill, bool replace, void **map)
{
    char tmp[4096];
    struct stat st;
    void *p = MAP_FAILED;
    bool made = false;
    int fd = -1, rc = 0;

    *map = NULL;
    /* O_CLOEXEC: no child process (a tool, a test helper) should inherit the device. */
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 && errno != ENOENT)
        return -errno;
    if (fd >= 0) {
        if (fstat(fd, &st) < 0) {
            rc = -errno;
            goto out;
        }
        if ((uint64_t)st.st_size != len && st.st_size != 0 && !replace) {
            rc = -EINVAL;
            goto out;
        }
        if ((uint64_t)st.st_size != len) {
            close(fd);
            fd = -1;
        }
    }
    if (fd < 0) {
        if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
            return -ENAMETOOLONG;
        fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
            return -errno;
        made = true;
        if (ftruncate(fd, (off_t)len) < 0) {
            rc = -errno;
            goto out;
        }
        /* Fill through the file, not the mapping: pages a module never touches then stay out
         * of its resident set (a fleet of idle modules costs little RAM). */
        if (fill != 0) {
            rc = flash_fill_file(fd, fill, len);
            if (rc)
                goto out;
        }
    }
    /* MAP_SHARED writes land in the page cache at once: a kill -9 of the process keeps every
     * byte that was programmed, and nothing else. No msync: surviving a host crash is not
     * part of the model. */
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        rc = -errno;
        goto out;
    }
    if (made) {
        if (rename(tmp, path) < 0) {
            rc = -errno;
            goto out;
        }
        made = false;
    }
    /* The mapping outlives the descriptor, so the fd is closed on every path. */
    *map = p;
    p = MAP_FAILED;
out:
    if (p != MAP_FAILED)
        munmap(p, len);
    if (made)
        unlink(tmp);
    if (fd >= 0)
        close(fd);
    return rc;
}

int flash_open(struct flash *f, const char *path, const struct flash_geom *g)
{
    struct flash_geom geom;
    char wpath[4096];
    void *mem = NULL, *wear = NULL;
    uint64_t *bits = NULL;
    size_t words;
    int rc;

    memset(f, 0, sizeof(*f));
    rc = flash_geom_check(g, &geom);
    if (rc < 0 || !path)
        return -EINVAL;
    /* Beside the device, so a state dir copied or deleted as a whole keeps the two together. */
    if (snprintf(wpath, sizeof(wpath), "%s.wear", path) >= (int)sizeof(wpath))
        return -ENAMETOOLONG;
    /* The device first: a size mismatch must fail before the wear table is touched. */
    rc = flash_map_file(path, geom.size, FLASH_ERASED, false, &mem);
    if (rc < 0)
        goto out;
    /* Wear is statistics: a missing or mismatched table restarts at zero rather than failing. */
    rc = flash_map_file(wpath, (size_t)(geom.size / geom.erase_size) * sizeof(uint32_t), 0, true,
                        &wear);
    if (rc < 0)
        goto out;
    words = ((size_t)(geom.size / geom.page_size) + 63) / 64;
    bits = calloc(2 * words, sizeof(uint64_t)); /* all unknown: learnt as pages are read */
    if (!bits) {
        rc = -ENOMEM;
        goto out;
    }
    flash_init_state(f, &geom, true);
    f->mem = mem;
    f->wear = wear;
    f->blank = bits;
    f->used = bits + words;
    mem = wear = NULL;
    bits = NULL;
out:
    if (mem)
        munmap(mem, geom.size);
    if (wear)
        munmap(wear, (size_t)(geom.size / geom.erase_size) * sizeof(uint32_t));
    free(bits);
    return rc;
}

int flash_open_mem(struct flash *f, const struct flash_geom *g)
{
    struct flash_geom geom;
    uint8_t *mem = NULL;
    uint32_t *wear = NULL;
    uint64_t *bits = NULL;
    size_t words;
    int rc;

    memset(f, 0, sizeof(*f));
    rc = flash_geom_check(g, &geom);
    if (rc < 0)
        return rc;
    /* Heap, not an anonymous mapping: ASan then sees overruns and leaks in sweeps. */
    words = ((size_t)(geom.size / geom.page_size) + 63) / 64;
    mem = malloc(geom.size);
    wear = calloc(geom.size / geom.erase_size, sizeof(*wear));
    bits = calloc(2 * words, sizeof(uint64_t));
    if (!mem || !wear || !bits) {
        rc = -ENOMEM;
        goto out;
    }
    memset(mem, FLASH_ERASED, geom.size);
    flash_init_state(f, &geom, false);
    f->mem = mem;
    f->wear = wear;
    f->blank = bits;
    f->used = bits + words;
    mem = NULL;
    wear = NULL;
    bits = NULL;
out:
    free(mem);
    free(wear);
    free(bits);
    return rc;
}

/* Zeroing at the end makes a second close, or a close after a failed open, harmless. */
void flash_close(struct flash *f)
{
    if (f->mapped) {
        if (f->mem)
            munmap(f->mem, f->geom.size);
        if (f->wear)
            munmap(f->wear, (size_t)f->units * sizeof(uint32_t));
    } else {
        free(f->mem);
        free(f->wear);
    }
    free(f->blank); /* f->used lives in the same block */
    memset(f, 0, sizeof(*f));
}

const struct flash_geom *flash_geometry(const struct flash *f)
{
    return &f->geom;
}

/* Read-only on purpose: a write through this pointer would bypass numbering, the NOR rule and
 * the fault rules, which is exactly what the choke point exists to prevent. */
const uint8_t *flash_data(const struct flash *f)
{
    return f->mem;
}

/* 64-bit sum: off + len must not wrap around to pass the check. */
static bool flash_in_range(const struct flash *f, uint32_t off, uint32_t len)
{
    return f->mem && (uint64_t)off + len <= f->geom.size;
}

/* Allowed on a dead device: after a cut, recovery code and tests inspect what is left. */
int flash_read(const struct flash *f, uint32_t off, void *buf, uint32_t len)
{
    if (!flash_in_range(f, off, len))
        return -EINVAL;
    if (len)
        memcpy(buf, f->mem + off, len);
    return 0;
}

/* The op that was hit: the flash dies first, so a callback that longjmps leaves it consistent. */
static void flash_cut(struct flash *f, uint64_t op)
{
    f->dead = true;
    f->armed = false;
    if (f->cut_fn)
        f->cut_fn(f->cut_ctx, op);
}

/* Would programming src over dst turn any 0 bit into 1? 64 bytes per branch: a 64 MiB download
 * programs every byte through here (unless its pages are known blank). */
static bool flash_violates(const uint8_t *dst, const uint8_t *src, uint32_t len)
{
    uint32_t i = 0;

    for (; i + 64 <= len; i += 64) {
        uint64_t bad = 0;
        for (uint32_t k = 0; k < 64; k += 8) {
            uint64_t d, n;
            memcpy(&d, dst + i + k, 8);
            memcpy(&n, src + i + k, 8);
            bad |= n & ~d;
        }
        if (bad)
            return true;
    }
    for (; i < len; i++)
        if (src[i] & ~dst[i])
            return true;
    return false;
}

int flash_prog(struct flash *f, uint32_t off, const void *buf, uint32_t len)
{
    const uint8_t *src = buf;
    uint8_t *dst;
    uint64_t op;
    uint32_t pg;
    int rc = 0;

    /* Argument errors first: they are caller bugs whether the power is on or not. */
    if (!flash_in_range(f, off, len))
        return -EINVAL;
    pg = off / f->geom.page_size;
    if (len && pg != (off + len - 1) / f->geom.page_size)
        return -EINVAL;
    if (f->dead)
        return -ECANCELED;
    if (len == 0)
        return 0;
    dst = f->mem + off;
    /* A 0->1 request is a driver bug, not a device operation: refuse it whole and do not
     * number it, so op numbers of a clean run do not depend on bugs. A blank page cannot
     * refuse anything. */
    if (!flash_bit(f->blank, pg) && flash_violates(dst, src, len)) {
        f->violations++;
        return -EIO;
    }
    /* From here on the device does something: the op gets its number, even when the fault
     * rule then decides that nothing lands. */
    op = ++f->ops;
    f->progs++;
    if (f->armed && op == f->fault_at) {
        /* The cut falls inside this op: its effect per kind, then death, then the callback. */
        rc = -ECANCELED;
        if (f->fault == FLASH_CUT_AFTER) {
            for (uint32_t i = 0; i < len; i++)
                dst[i] &= src[i];
            f->bytes_programmed += len;
            flash_pg_programmed(f, off, src, len); /* the check made old & new == new */
            rc = 0;
        } else if (f->fault == FLASH_CUT_TORN_PROG) {
            /* The cells were pulsed, so the bytes count as programmed even where they did not
             * change; the mask is indexed from the start of this request. */
            for (uint32_t i = 0; i < len; i++)
                dst[i] &= src[i] | flash_tear_mask(f->seed, i);
            f->bytes_programmed += len;
            flash_pg_set(f, pg, 1, FLASH_PG_UNKNOWN);
        }
        /* BEFORE, and the erase-only kinds, leave the page untouched. */
        flash_cut(f, op);
        return rc;
    }
    /* After the check above old & new is new: programming is a copy. */
    memcpy(dst, src, len);
    f->bytes_programmed += len;
    flash_pg_programmed(f, off, src, len);
    return 0;
}

/* Per page: known blank, known used (answers a whole-page question only: part of a used page
 * may still be blank), or read (a window at a time when unknown, see flash_peek). */
bool flash_blank(struct flash *f, uint32_t off, uint32_t len)
{
    uint32_t ps = f->geom.page_size, pg, n;

    if (!flash_in_range(f, off, len))
        return false;
    for (pg = off / ps, n = ps - off % ps; len; pg++, n = ps) {
        if (n > len)
            n = len;
        if (!flash_bit(f->blank, pg)) {
            bool used = flash_bit(f->used, pg), b;

            if (used && n == ps)
                return false;
            b = used ? flash_mem_blank(f->mem + off, n) : flash_peek(f, pg, off - pg * ps, n);
            if (n == ps)
                flash_pg_set(f, pg, 1, b ? FLASH_PG_BLANK : FLASH_PG_USED);
            if (!b)
                return false;
        }
        off += n;
        len -= n;
    }
    return true;
}

void flash_evict(const struct flash *f, uint32_t off, uint32_t len)
{
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t start, end;

    /* Anonymous memory would be zeroed by MADV_DONTNEED: only a file mapping may forget. */
    if (!f->mapped || pg <= 0 || !flash_in_range(f, off, len) || !len)
        return;
    start = ((uintptr_t)(f->mem + off) + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1);
    end = (uintptr_t)(f->mem + off + len) & ~((uintptr_t)pg - 1);
    if (end > start)
        madvise((void *)start, end - start, MADV_DONTNEED);
}

/* Would any page of [off, off+len) refuse its part of src? Pages known blank are not read. */
static bool flash_range_violates(const struct flash *f, uint32_t off, const uint8_t *src,
                                 uint32_t len)
{
    uint32_t ps = f->geom.page_size, pg = off / ps, n = ps - off % ps;

    for (; len; pg++, n = ps) {
        if (n > len)
            n = len;
        if (!flash_bit(f->blank, pg) && flash_violates(f->mem + off, src, n))
            return true;
        off += n;
        src += n;
        len -= n;
    }
    return false;
}

int flash_write(struct flash *f, uint32_t off, const void *buf, uint32_t len)
{
    const uint8_t *src = buf;
    int rc;

    /* Checked whole up front: a write that cannot fit must not program its first pages. */
    if (!flash_in_range(f, off, len))
        return -EINVAL;
    /* The whole range in one piece when the loop below could only program every page in turn:
     * powered, no page refusing, and no armed fault among the n ops it would number. Same
     * bytes, op numbers and counters; one check and one copy instead of n calls (a download
     * programs 16 pages per 4 KiB block). */
    if (len && !f->dead) {
        uint32_t ps = f->geom.page_size, pg = off / ps, n = (off + len - 1) / ps - pg + 1;

        if (!(f->armed && f->fault_at > f->ops && f->fault_at - f->ops <= n) &&
            !flash_range_violates(f, off, src, len)) {
            memcpy(f->mem + off, src, len);
            flash_pg_programmed(f, off, src, len);
            f->ops += n;
            f->progs += n;
            f->bytes_programmed += len;
            return 0;
        }
    }
    while (len) {
        uint32_t room = f->geom.page_size - off % f->geom.page_size;
        uint32_t n = len < room ? len : room;

        rc = flash_prog(f, off, src, n);
        if (rc < 0)
            return rc;
        off += n;
        src += n;
        len -= n;
    }
    return 0;
}

/* The effect of an erase that lands in full: skipped for a unit already known blank, where it
 * could not change a byte (and would dirty every page of it in the file for nothing). */
static void flash_erase_unit(struct flash *f, uint32_t off)
{
    uint32_t ppu = f->geom.erase_size / f->geom.page_size, pg = off / f->geom.page_size;

    if (flash_pg_all_blank(f, pg, ppu))
        return;
    memset(f->mem + off, FLASH_ERASED, f->geom.erase_size);
    flash_pg_set(f, pg, ppu, FLASH_PG_BLANK);
}

int flash_erase(struct flash *f, uint32_t off)
{
    uint32_t es = f->geom.erase_size, ps = f->geom.page_size, unit;
    uint64_t op;
    int rc;

    /* !f->mem: a closed or never opened device is a caller bug, not a crash. */
    if (!f->mem || off % es || off >= f->geom.size)
        return -EINVAL;
    if (f->dead)
        return -ECANCELED;
    unit = off / es;
    /* An erase cannot violate anything (it only sets bits), so it is numbered at once. */
    op = ++f->ops;
    f->erases++;
    if (f->armed && op == f->fault_at) {
        rc = -ECANCELED;
        switch (f->fault) {
        case FLASH_CUT_AFTER:
            flash_erase_unit(f, off);
            f->wear[unit]++;
            rc = 0;
            break;
        case FLASH_CUT_TORN_ERASE: {
            /* The cells were stressed even though the erase did not finish. Pages wholly in
             * the erased prefix are blank now; a used page it ends in may or may not be; those
             * after it are as they were, and so is what is known of them. */
            uint32_t prefix = flash_tear_prefix(f, f->seed), pg = off / ps + prefix / ps;
            memset(f->mem + off, FLASH_ERASED, prefix);
            flash_pg_set(f, off / ps, prefix / ps, FLASH_PG_BLANK);
            if (prefix % ps && !flash_bit(f->blank, pg))
                flash_pg_set(f, pg, 1, FLASH_PG_UNKNOWN);
            f->wear[unit]++;
            break;
        }
        case FLASH_CUT_SKIP_ERASE:
            /* The lie a weak driver tells: success, no effect. Whatever relies on the erase
             * must be found out by its own checks after the next power-on. */
            rc = 0;
            break;
        case FLASH_CUT_BEFORE:
        case FLASH_CUT_TORN_PROG:
            break;
        }
        flash_cut(f, op);
        return rc;
    }
    flash_erase_unit(f, off);
    f->wear[unit]++;
    return 0;
}

int flash_erase_range(struct flash *f, uint32_t off, uint32_t len)
{
    uint32_t es = f->geom.erase_size;
    int rc;

    if (!flash_in_range(f, off, len) || off % es || len % es)
        return -EINVAL;
    /* One op per unit, as on a real part: a cut can land between two units of one range. */
    for (uint32_t o = off; o < off + len; o += es) {
        rc = flash_erase(f, o);
        if (rc < 0)
            return rc;
    }
    return 0;
}

void flash_arm(struct flash *f, uint64_t nth, enum flash_fault kind, uint32_t seed)
{
    if (nth == 0) {
        flash_disarm(f);
        return;
    }
    /* Relative to the current count so a caller can arm after any set-up it does not want to
     * sweep (a mount, say) without knowing how many ops that set-up took. */
    f->armed = true;
    f->fault = kind;
    f->seed = seed;
    f->fault_at = f->ops + nth;
}

void flash_disarm(struct flash *f)
{
    f->armed = false;
    f->fault_at = 0;
}

void flash_set_cut_cb(struct flash *f, flash_cut_fn *fn, void *ctx)
{
    f->cut_fn = fn;
    f->cut_ctx = ctx;
}

/* An outside cut (power supply, kill from the control API) comes from the owner, who already
 * knows: no callback, and the fault rule is void because no op will reach it. */
void flash_kill(struct flash *f)
{
    f->dead = true;
    f->armed = false;
}

bool flash_dead(const struct flash *f)
{
    return f->dead;
}

/* The callback is kept: it is wiring of the owner, not state of the power cycle. */
void flash_power_on(struct flash *f)
{
    f->dead = false;
    f->ops = 0;
    flash_disarm(f);
    if (f->blank) /* both maps, one block */
        memset(f->blank, 0, 2 * (((size_t)f->pages + 63) / 64) * sizeof(uint64_t));
}

/* The number a "cut at flash-op N" refers to: it restarts at every power-on. */
uint64_t flash_ops(const struct flash *f)
{
    return f->ops;
}

void flash_stats(const struct flash *f, struct flash_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->ops = f->ops;
    st->progs = f->progs;
    st->erases = f->erases;
    st->bytes_programmed = f->bytes_programmed;
    st->violations = f->violations;
    /* Computed, not tracked: the table may come from a file written by an earlier run. */
    for (uint32_t u = 0; u < f->units; u++)
        if (f->wear[u] > st->max_wear)
            st->max_wear = f->wear[u];
}

/* 0 rather than an error out of range: this is a statistic for reports, not a driver call. */
uint32_t flash_wear(const struct flash *f, uint32_t unit)
{
    return unit < f->units ? f->wear[unit] : 0;
}
