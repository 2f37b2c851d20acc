/* ufs.c: the module's "UFS" file area, a small power-safe flat file system on the NOR model.
 * It is: up to UFS_MAX_FILES named files, copy-on-write data blocks, one metadata log whose
 * commits are atomic under any cut (before, after, torn program, torn or skipped erase).
 * It is not: a directory tree, a cache, thread-safe, or a wear leveller (next-fit allocation
 * spreads writes a little). Unsynced data is lost on a cut, as in littlefs.
 *
 * Layout of the region (U erase units of UFS_BLOCK bytes; K = ufs_half_units(U)):
 *   units [0, K)      metadata half 0     units [K, 2K)   metadata half 1
 *   units [2K, U)     data blocks 0 .. U-2K-1
 * A half is a log of commit groups; a group is records ending in COMMIT, whose CRC-32 (zlib)
 * chains from the previous group's, so a group counts only if every byte of it and of all
 * groups before it landed. Record: u32 tag (type << 24 | payload length), then the payload,
 * little endian, no alignment:
 *   HEAD   magic "UFS1", version, rev, region units, K      (first record of a half only)
 *   NAME   slot u8, name bytes           create slot, or rename it; drops another slot of that name
 *   DATA   slot u8, pad[3], size u64, keep u32, n u32, n x {start u32, count u32}
 *          cut the slot's extent list to `keep` entries and append the n given ones
 *   DEL    slot u8                       remove the slot
 *   COMMIT crc u32                       CRC over the group from its first tag to this tag
 * The active half is the one whose first group (HEAD ...) is valid with the higher rev. When a
 * commit does not fit, the other half is erased and gets one group holding HEAD(rev + 1) and the
 * whole table (the "snapshot", state after the change): that group's COMMIT is the atomic
 * switch. K is sized so the largest possible snapshot (64 files, longest names, one extent per
 * data block) fits with a unit to spare, so a commit never fails for want of metadata room.
 * Data blocks are never written while the committed table references them, with one exception
 * that is safe: appending into the erased tail past a file's committed size. The free map is
 * rebuilt at mount from the table; nothing but the table is persistent.
 */
#include "storage/ufs.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Format constants. Bump UFS_VERSION on any change to the records below: an area written by
 * another version is "unreadable" and gets formatted, which is acceptable for a staging area
 * whose content (update packages) can be downloaded again. */
#define UFS_MAGIC   0x31534655u /* "UFS1" as little-endian bytes */
#define UFS_VERSION 1u

enum ufs_rec { UFS_R_HEAD = 1, UFS_R_NAME, UFS_R_DATA, UFS_R_DEL, UFS_R_COMMIT };

/* Sizes in bytes: a tag, fixed payload parts, one extent. */
#define UFS_TAG       4u
#define UFS_HEAD_LEN  20u
#define UFS_DATA_HDR  20u /* DATA payload before its extents */
#define UFS_EXT_LEN   8u
#define UFS_NONE      UINT32_MAX
#define UFS_MIN_UNITS 7u

/* Everything multi-byte on flash is little endian, written byte by byte, so the format does not
 * depend on the host and records need no alignment. */

/* ---- little helpers ---------------------------------------------------------------------- */

static void ufs_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t ufs_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void ufs_put64(uint8_t *p, uint64_t v)
{
    ufs_put32(p, (uint32_t)v);
    ufs_put32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t ufs_get64(const uint8_t *p)
{
    return (uint64_t)ufs_get32(p) | (uint64_t)ufs_get32(p + 4) << 32;
}

/* Block bitmaps: one bit per data block, 64 to a word so the allocator can skip full words. */
static bool ufs_bit(const uint64_t *map, uint32_t i)
{
    return (map[i / 64] >> (i % 64)) & 1;
}

static void ufs_bit_set(uint64_t *map, uint32_t i)
{
    map[i / 64] |= (uint64_t)1 << (i % 64);
}

static void ufs_bit_clr(uint64_t *map, uint32_t i)
{
    map[i / 64] &= ~((uint64_t)1 << (i % 64));
}

/* Runs of blocks go a word at a time (below): a sync of a 64 MiB file then costs blocks / 64
 * steps per bitmap, not one per block. The mask of bits [lo, hi) of a word, 0 <= lo < hi <= 64. */
static uint64_t ufs_word_mask(uint32_t lo, uint32_t hi)
{
    uint64_t m = hi == 64 ? UINT64_MAX : ((uint64_t)1 << hi) - 1;
    return m & ~(((uint64_t)1 << lo) - 1);
}

/* Clears the run's bits in used; returns how many were set. */
static uint32_t ufs_run_unuse(uint64_t *used, uint32_t start, uint32_t count)
{
    uint32_t freed = 0;

    for (uint32_t b = start, end = start + count; b < end;) {
        uint32_t lo = b % 64, hi = end - (b - lo) < 64 ? end - (b - lo) : 64;
        uint64_t m = ufs_word_mask(lo, hi), had = used[b / 64] & m;
        freed += had == m ? hi - lo : (uint32_t)__builtin_popcountll(had);
        used[b / 64] &= ~m;
        b += hi - lo;
    }
    return freed;
}

/* Sets the run's bits in used and clears them in pending (NULL: none); returns how many blocks
 * were in neither map, i.e. leave the free count. */
static uint32_t ufs_run_use(uint64_t *used, uint64_t *pending, uint32_t start, uint32_t count)
{
    uint32_t taken = 0;

    for (uint32_t b = start, end = start + count; b < end;) {
        uint32_t lo = b % 64, hi = end - (b - lo) < 64 ? end - (b - lo) : 64;
        uint64_t m = ufs_word_mask(lo, hi), busy = used[b / 64];
        if (pending) {
            busy |= pending[b / 64];
            pending[b / 64] &= ~m;
        }
        busy &= m;
        taken += busy == 0 ? hi - lo : (uint32_t)__builtin_popcountll(m & ~busy);
        used[b / 64] |= m;
        b += hi - lo;
    }
    return taken;
}

static uint64_t ufs_blocks_for(uint64_t size)
{
    return (size + UFS_BLOCK - 1) / UFS_BLOCK;
}

/* Units per metadata half: the worst snapshot (HEAD, 64 x (NAME + DATA header), one extent per
 * unit of the region, COMMIT) rounded up, plus one unit of log room. */
static uint32_t ufs_half_units(uint32_t units)
{
    uint64_t worst = UFS_TAG + UFS_HEAD_LEN +
                     (uint64_t)UFS_MAX_FILES * (2 * UFS_TAG + 1 + UFS_NAME_MAX + UFS_DATA_HDR) +
                     (uint64_t)UFS_EXT_LEN * units + UFS_TAG + 4;
    return (uint32_t)((worst + UFS_BLOCK - 1) / UFS_BLOCK) + 1;
}

/* Absolute flash offsets of a metadata half and (below) of a data block's bytes. */
static uint32_t ufs_half_off(const struct ufs *u, int h)
{
    return u->off + (uint32_t)h * u->half_bytes;
}

static const uint8_t *ufs_blk_ptr(const struct ufs *u, uint32_t blk)
{
    return flash_data(u->f) + u->data_off + (size_t)blk * UFS_BLOCK;
}

/* Length of a valid name (1..UFS_NAME_MAX) or -EINVAL. */
static int ufs_name_len(const char *name)
{
    if (!name)
        return -EINVAL;
    size_t n = strnlen(name, UFS_NAME_MAX + 1);
    return (n == 0 || n > UFS_NAME_MAX) ? -EINVAL : (int)n;
}

/* Slot holding name, or -ENOENT. A linear scan: the table has 64 entries. */
static int ufs_find(const struct ufs *u, const char *name)
{
    for (int i = 0; i < UFS_MAX_FILES; i++)
        if (u->ent[i].used && strcmp(u->ent[i].name, name) == 0)
            return i;
    return -ENOENT;
}

/* Erases one unit unless it already reads blank (saves an operation and wear). */
static int ufs_erase_unit(struct ufs *u, uint32_t abs_off)
{
    if (flash_blank(u->f, abs_off, UFS_BLOCK))
        return 0;
    return flash_erase(u->f, abs_off);
}

/* Grows a file's extent array to hold n entries (doubling, so replaying appends stays linear). */
static int ufs_ext_reserve(struct ufs_ent *e, uint32_t n)
{
    if (n <= e->ext_cap)
        return 0;
    uint32_t cap = e->ext_cap ? e->ext_cap : 4;
    while (cap < n)
        cap *= 2;
    struct ufs_ext *x = realloc(e->ext, (size_t)cap * sizeof(*x));
    if (!x)
        return -ENOMEM;
    e->ext = x;
    e->ext_cap = cap;
    return 0;
}

/* Empties a slot; the generation survives and moves on, so handles to the old file go stale. */
static void ufs_ent_clear(struct ufs_ent *e)
{
    uint32_t gen = e->gen;

    free(e->ext);
    memset(e, 0, sizeof(*e));
    e->gen = gen + 1;
}

/* Moves a committed file's blocks out of (set=false) or into (set=true) the used map, keeping
 * the free count exact (a block listed twice moves once). */
static void ufs_mark(struct ufs *u, const struct ufs_ent *e, bool set)
{
    for (uint32_t i = 0; i < e->next; i++) {
        if (set)
            u->nfree -= ufs_run_use(u->used, NULL, e->ext[i].start, e->ext[i].count);
        else
            u->nfree += ufs_run_unuse(u->used, e->ext[i].start, e->ext[i].count);
    }
}

/* ---- record building and the commit ------------------------------------------------------- */

/* Records are staged in u->buf at *pos; each helper writes the tag and returns the payload.
 * The group is at most half_bytes long by the sizing in ufs_half_units. */
static uint8_t *ufs_rec(struct ufs *u, uint32_t *pos, enum ufs_rec type, uint32_t len)
{
    uint8_t *p = u->buf + *pos;
    ufs_put32(p, (uint32_t)type << 24 | len);
    *pos += UFS_TAG + len;
    return p + UFS_TAG;
}

/* NAME with the slot's current RAM name (create or rename). */
static void ufs_rec_name(struct ufs *u, uint32_t *pos, uint32_t slot)
{
    size_t n = strlen(u->ent[slot].name);
    uint8_t *p = ufs_rec(u, pos, UFS_R_NAME, (uint32_t)(1 + n));
    p[0] = (uint8_t)slot;
    memcpy(p + 1, u->ent[slot].name, n);
}

/* DATA with the slot's current RAM size and its extents from index keep on. */
static void ufs_rec_data(struct ufs *u, uint32_t *pos, uint32_t slot, uint32_t keep)
{
    const struct ufs_ent *e = &u->ent[slot];
    uint32_t n = e->next - keep;
    uint8_t *p = ufs_rec(u, pos, UFS_R_DATA, UFS_DATA_HDR + n * UFS_EXT_LEN);

    memset(p, 0, 4);
    p[0] = (uint8_t)slot;
    ufs_put64(p + 4, e->size);
    ufs_put32(p + 12, keep);
    ufs_put32(p + 16, n);
    for (uint32_t i = 0; i < n; i++) {
        ufs_put32(p + UFS_DATA_HDR + i * UFS_EXT_LEN, e->ext[keep + i].start);
        ufs_put32(p + UFS_DATA_HDR + i * UFS_EXT_LEN + 4, e->ext[keep + i].count);
    }
}

static void ufs_rec_del(struct ufs *u, uint32_t *pos, uint32_t slot)
{
    ufs_rec(u, pos, UFS_R_DEL, 1)[0] = (uint8_t)slot;
}

/* Appends COMMIT to the group in buf[0, len) and returns the group's chained CRC. */
static uint32_t ufs_seal(struct ufs *u, uint32_t *len, uint32_t crc_in)
{
    uint8_t *p = ufs_rec(u, len, UFS_R_COMMIT, 4);
    uint32_t crc = (uint32_t)crc32(crc_in, u->buf, *len - 4);
    ufs_put32(p, crc);
    return crc;
}

/* Writes the whole table (already holding the change) as the first group of the other half,
 * then switches to it. Until that group's last page lands the active half stays the old one. */
static int ufs_compact(struct ufs *u)
{
    int other = u->cur ^ 1, rc;
    uint32_t len = 0;
    uint8_t *p = ufs_rec(u, &len, UFS_R_HEAD, UFS_HEAD_LEN);

    ufs_put32(p, UFS_MAGIC);
    ufs_put32(p + 4, UFS_VERSION);
    ufs_put32(p + 8, u->rev + 1);
    ufs_put32(p + 12, u->size / UFS_BLOCK);
    ufs_put32(p + 16, u->half_units);
    for (uint32_t i = 0; i < UFS_MAX_FILES; i++) {
        if (!u->ent[i].used)
            continue;
        ufs_rec_name(u, &len, i);
        ufs_rec_data(u, &len, i, 0);
    }
    uint32_t crc = ufs_seal(u, &len, 0);

    /* Erase everything first: a torn or skipped erase leaves the other half without a valid
     * first group (or with an older rev), so the active half still wins at mount. */
    for (uint32_t k = 0; k < u->half_units; k++) {
        rc = ufs_erase_unit(u, ufs_half_off(u, other) + k * UFS_BLOCK);
        if (rc)
            goto out;
    }
    /* Page by page; the COMMIT (and its CRC) is in the last page, so this is the switch. */
    rc = flash_write(u->f, ufs_half_off(u, other), u->buf, len);
    if (rc)
        goto out;
    u->cur = other;
    u->rev++;
    u->log_pos = len;
    u->log_crc = crc;
out:
    if (rc)
        u->broken = true;
    return rc;
}

/* Commits the group in buf[0, len) (the RAM table already shows its effect): appended to the
 * active half when it fits, else by compaction. A failure leaves RAM ahead of the flash, so the
 * area is marked broken until the next mount. */
static int ufs_commit(struct ufs *u, uint32_t len)
{
    /* log_pos == half_bytes also means "tail not erased" (see ufs_mount): compact. */
    if (u->log_pos > u->half_bytes || len + UFS_TAG + 4 > u->half_bytes - u->log_pos)
        return ufs_compact(u);
    uint32_t crc = ufs_seal(u, &len, u->log_crc);
    int rc = flash_write(u->f, ufs_half_off(u, u->cur) + u->log_pos, u->buf, len);
    if (rc) {
        u->broken = true;
        return rc;
    }
    u->log_pos += len;
    u->log_crc = crc;
    return 0;
}

/* ---- mount: scanning and replaying the log ---------------------------------------------- */

/* Checks the group at h[pos]: every record well formed, the chained CRC right, and for the
 * first group of a half a leading HEAD that matches this region. Returns the group's end, or 0
 * when there is no valid group at pos. Semantic checks against the table come at replay. */
static uint32_t ufs_scan_group(const struct ufs *u, const uint8_t *h, uint32_t pos, uint32_t crc_in,
                               bool first, uint32_t *crc_out)
{
    uint32_t p = pos;

    for (;;) {
        if (u->half_bytes - p < UFS_TAG)
            return 0;
        uint32_t tag = ufs_get32(h + p), type = tag >> 24, len = tag & 0xFFFFFF;
        const uint8_t *r = h + p + UFS_TAG;
        /* Every length and index is checked before use: this is data read from flash. */
        if (len > u->half_bytes - p - UFS_TAG)
            return 0;
        if (first && p == pos && type != UFS_R_HEAD)
            return 0;
        switch (type) {
        case UFS_R_HEAD:
            /* A HEAD for another geometry (region resized) makes the half unreadable. */
            if (!first || p != pos || len != UFS_HEAD_LEN || ufs_get32(r) != UFS_MAGIC ||
                ufs_get32(r + 4) != UFS_VERSION || ufs_get32(r + 12) != u->size / UFS_BLOCK ||
                ufs_get32(r + 16) != u->half_units)
                return 0;
            break;
        case UFS_R_NAME:
            if (len < 2 || len > 1 + UFS_NAME_MAX || r[0] >= UFS_MAX_FILES ||
                memchr(r + 1, 0, len - 1))
                return 0;
            break;
        case UFS_R_DATA: {
            if (len < UFS_DATA_HDR || (len - UFS_DATA_HDR) % UFS_EXT_LEN || r[0] >= UFS_MAX_FILES ||
                ufs_get32(r + 16) != (len - UFS_DATA_HDR) / UFS_EXT_LEN)
                return 0;
            /* Extents must lie inside the data area; overlaps are caught at map rebuild. */
            for (uint32_t i = UFS_DATA_HDR; i < len; i += UFS_EXT_LEN) {
                uint32_t start = ufs_get32(r + i), count = ufs_get32(r + i + 4);
                if (count == 0 || start >= u->ndata || count > u->ndata - start)
                    return 0;
            }
            break;
        }
        case UFS_R_DEL:
            if (len != 1 || r[0] >= UFS_MAX_FILES)
                return 0;
            break;
        case UFS_R_COMMIT: {
            /* The chain seed (crc_in) ties the group to everything before it in this half. */
            if (len != 4)
                return 0;
            uint32_t crc = (uint32_t)crc32(crc_in, h + pos, p + UFS_TAG - pos);
            if (crc != ufs_get32(r))
                return 0;
            *crc_out = crc;
            return p + UFS_TAG + len;
        }
        default:
            return 0; /* includes an erased tag (0xFF...) */
        }
        p += UFS_TAG + len;
    }
}

/* Replays one DATA record: the file's extent list is cut to keep entries and the new ones are
 * appended, exactly as stored (no merging), so RAM indexes match the log for later records. */
static void ufs_apply_data(struct ufs *u, const uint8_t *r, int *err)
{
    struct ufs_ent *e = &u->ent[r[0]];
    uint64_t size = ufs_get64(r + 4), blocks = 0;
    uint32_t keep = ufs_get32(r + 12), n = ufs_get32(r + 16);

    /* A record that does not fit the table is ignored rather than trusted. */
    if (!e->used || keep > e->next || size > (uint64_t)u->ndata * UFS_BLOCK)
        return;
    for (uint32_t i = 0; i < keep; i++)
        blocks += e->ext[i].count;
    for (uint32_t i = 0; i < n; i++)
        blocks += ufs_get32(r + UFS_DATA_HDR + i * UFS_EXT_LEN + 4);
    if (blocks != ufs_blocks_for(size))
        return;
    if (ufs_ext_reserve(e, keep + n)) {
        *err = -ENOMEM;
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        e->ext[keep + i].start = ufs_get32(r + UFS_DATA_HDR + i * UFS_EXT_LEN);
        e->ext[keep + i].count = ufs_get32(r + UFS_DATA_HDR + i * UFS_EXT_LEN + 4);
    }
    e->next = keep + n;
    e->size = size;
}

/* Applies a group that ufs_scan_group accepted. Returns 0 or -ENOMEM. */
static int ufs_apply_group(struct ufs *u, const uint8_t *h, uint32_t pos)
{
    int err = 0;

    for (uint32_t p = pos;;) {
        uint32_t tag = ufs_get32(h + p), len = tag & 0xFFFFFF;
        const uint8_t *r = h + p + UFS_TAG;
        switch (tag >> 24) {
        case UFS_R_NAME: {
            /* A rename over a name is written as DEL + NAME; the drop below only matters for a
             * log that lacks the DEL, and keeps names unique whatever the log says. */
            struct ufs_ent *e = &u->ent[r[0]];
            for (int i = 0; i < UFS_MAX_FILES; i++) {
                struct ufs_ent *o = &u->ent[i];
                if (o != e && o->used && strlen(o->name) == len - 1 &&
                    memcmp(o->name, r + 1, len - 1) == 0)
                    ufs_ent_clear(o);
            }
            e->used = true;
            memcpy(e->name, r + 1, len - 1);
            e->name[len - 1] = 0;
            break;
        }
        case UFS_R_DATA:
            ufs_apply_data(u, r, &err);
            break;
        case UFS_R_DEL:
            if (u->ent[r[0]].used)
                ufs_ent_clear(&u->ent[r[0]]);
            break;
        case UFS_R_COMMIT:
            return err;
        default:
            break; /* HEAD */
        }
        p += UFS_TAG + len;
    }
}

/* Rebuilds the used map from the table. A file whose blocks collide with an earlier file's
 * can only come from corruption; it is dropped so the survivor's blocks stay its own. */
static void ufs_rebuild_map(struct ufs *u)
{
    u->nfree = u->ndata;
    for (int s = 0; s < UFS_MAX_FILES; s++) {
        struct ufs_ent *e = &u->ent[s];
        bool clash = false;
        if (!e->used)
            continue;
        for (uint32_t i = 0; i < e->next && !clash; i++)
            for (uint32_t k = 0; k < e->ext[i].count && !clash; k++)
                clash = ufs_bit(u->used, e->ext[i].start + k);
        if (clash)
            ufs_ent_clear(e);
        else
            ufs_mark(u, e, true);
    }
}

int ufs_mount(struct ufs *u, struct flash *f, uint32_t off, uint32_t size)
{
    int rc = 0, best = -1;
    uint32_t revs[2] = {0, 0}, crc = 0;
    uint8_t probe;

    /* Geometry first: everything below indexes the flash view without further checks. */
    memset(u, 0, sizeof(*u));
    if (!f || flash_geometry(f)->erase_size != UFS_BLOCK || off % UFS_BLOCK ||
        size % UFS_BLOCK || size / UFS_BLOCK < UFS_MIN_UNITS ||
        off > UINT32_MAX - size || flash_read(f, off + size - 1, &probe, 1))
        return -EINVAL;
    u->f = f;
    u->off = off;
    u->size = size;
    u->half_units = ufs_half_units(size / UFS_BLOCK);
    if (2 * u->half_units >= size / UFS_BLOCK)
        return -EINVAL;
    u->half_bytes = u->half_units * UFS_BLOCK;
    u->data_off = off + 2 * u->half_bytes;
    u->ndata = size / UFS_BLOCK - 2 * u->half_units;
    size_t words = (u->ndata + 63) / 64;
    u->used = calloc(words, sizeof(uint64_t));
    u->pending = calloc(words, sizeof(uint64_t));
    u->buf = malloc(u->half_bytes);
    if (!u->used || !u->pending || !u->buf) {
        rc = -ENOMEM;
        goto out;
    }

    /* Pick the valid half with the higher revision (serial-number comparison). */
    for (int h = 0; h < 2; h++) {
        const uint8_t *hp = flash_data(f) + ufs_half_off(u, h);
        if (!ufs_scan_group(u, hp, 0, 0, true, &crc))
            continue;
        revs[h] = ufs_get32(hp + UFS_TAG + 8);
        if (best < 0 || (int32_t)(revs[h] - revs[best]) > 0)
            best = h;
    }
    /* Neither half valid happens only for a blank area, foreign data, or a cut during the
     * very first format (which then simply runs again). */
    if (best < 0) {
        /* Blank or unreadable: format = compact an empty table into half 0 with rev 1. */
        u->cur = 1;
        u->rev = 0;
        rc = ufs_compact(u);
        if (rc)
            goto out;
    } else {
        const uint8_t *hp = flash_data(f) + ufs_half_off(u, best);
        uint32_t pos = 0, end, chain = 0;
        /* Replay groups until the first one that is torn, corrupt or simply absent. */
        u->cur = best;
        u->rev = revs[best];
        while ((end = ufs_scan_group(u, hp, pos, chain, pos == 0, &crc)) != 0) {
            rc = ufs_apply_group(u, hp, pos);
            if (rc)
                goto out;
            pos = end;
            chain = crc;
        }
        u->log_pos = pos;
        u->log_crc = chain;
        /* Anything but erased flash after the last good group (a torn commit) cannot be
         * programmed over: make the next commit compact into the other half. */
        if (!flash_blank(f, ufs_half_off(u, best) + pos, u->half_bytes - pos))
            u->log_pos = u->half_bytes;
    }
    /* The free map is derived, never stored: blocks of unsynced writes before a cut are
     * simply not referenced and come back free here. */
    ufs_rebuild_map(u);
out:
    if (rc)
        ufs_unmount(u);
    return rc;
}

/* Writes nothing: a power cut and an unmount look the same on flash. */
void ufs_unmount(struct ufs *u)
{
    /* Writers own heap maps that only the table knows about here; free them and make the
     * handles fail cleanly (-EBADF) instead of dangling. */
    for (int i = 0; i < UFS_MAX_FILES; i++) {
        struct ufs_file *w = u->ent[i].writer;
        if (w) {
            free(w->wmap);
            w->wmap = NULL;
            w->u = NULL;
        }
        free(u->ent[i].ext);
    }
    free(u->used);
    free(u->pending);
    free(u->buf);
    memset(u, 0, sizeof(*u));
}

/* ---- handles ------------------------------------------------------------------------------ */

/* The handle's file, or -EBADF (released) / -ENOENT (removed since open). */
/* The generation check is what makes a handle to a removed (and maybe reused) slot fail
 * instead of reading another file. */
static int ufs_fh_ent(const struct ufs_file *fh, struct ufs_ent **ep)
{
    if (!fh || !fh->u || fh->slot >= UFS_MAX_FILES)
        return -EBADF;
    struct ufs_ent *e = &fh->u->ent[fh->slot];
    if (!e->used || e->gen != fh->gen)
        return -ENOENT;
    *ep = e;
    return 0;
}

int ufs_open(struct ufs *u, struct ufs_file *fh, const char *name, int flags)
{
    int acc = flags & (UFS_RDONLY | UFS_WRONLY), slot, rc = 0;
    bool wr = acc == UFS_WRONLY;

    memset(fh, 0, sizeof(*fh));
    if (!u || !u->f || (flags & ~(UFS_RDONLY | UFS_WRONLY | UFS_CREAT | UFS_TRUNC | UFS_APPEND)) ||
        (acc != UFS_RDONLY && acc != UFS_WRONLY) || (!wr && (flags & (UFS_TRUNC | UFS_APPEND))) ||
        ufs_name_len(name) < 0)
        return -EINVAL;
    /* A missing file is created at once (like littlefs), so list/stat see it while a download
     * into it is still unsynced, and a cut leaves it empty rather than absent. */
    slot = ufs_find(u, name);
    if (slot < 0) {
        if (!(flags & UFS_CREAT))
            return -ENOENT;
        if (u->broken)
            return -EIO;
        for (slot = 0; slot < UFS_MAX_FILES && u->ent[slot].used; slot++)
            ;
        if (slot == UFS_MAX_FILES)
            return -ENFILE;
        struct ufs_ent *e = &u->ent[slot];
        uint32_t len = 0;
        e->used = true;
        strcpy(e->name, name);
        ufs_rec_name(u, &len, (uint32_t)slot);
        rc = ufs_commit(u, len);
        if (rc)
            return rc;
    }
    struct ufs_ent *e = &u->ent[slot];
    if (wr) {
        if (e->writer)
            return -EBUSY;
        if (u->broken)
            return -EIO;
        /* TRUNC starts from an empty working map; the old blocks stay referenced (and
         * untouched) until the sync that publishes the new content. */
        if (flags & UFS_TRUNC) {
            fh->dirty = e->size != 0;
        } else {
            /* The working map starts as the committed one, expanded block by block: 4 bytes
             * per block (64 KiB for a 64 MiB file), which makes copy on write, in-place
             * append and the sync's extent diff simple array work. */
            fh->map_cap = fh->nmap = (uint32_t)ufs_blocks_for(e->size);
            fh->wsize = e->size;
            fh->pos = (flags & UFS_APPEND) ? e->size : 0;
            if (fh->map_cap) {
                fh->wmap = malloc((size_t)fh->map_cap * sizeof(uint32_t));
                if (!fh->wmap)
                    return -ENOMEM;
            }
            uint32_t l = 0;
            for (uint32_t i = 0; i < e->next; i++)
                for (uint32_t k = 0; k < e->ext[i].count && l < fh->nmap; k++)
                    fh->wmap[l++] = e->ext[i].start + k;
        }
        e->writer = fh;
    }
    fh->u = u;
    fh->slot = (uint32_t)slot;
    fh->gen = e->gen;
    fh->flags = flags;
    fh->tail_ok = UFS_NONE;
    fh->dmin = UFS_NONE; /* the working map is the committed one, or (TRUNC) empty */
    return rc;
}

/* Copies committed bytes of e at off; the extents were range-checked at mount. One walk over
 * the extent list per call: a download lands in one or a few extents, so this stays cheap
 * without an index. Reads go straight to the memory-mapped view (reads are not operations). */
static ssize_t ufs_read_ent(const struct ufs *u, const struct ufs_ent *e, uint64_t off, void *buf,
                            size_t len)
{
    uint64_t at = 0; /* logical byte where extent i starts */
    size_t done = 0;

    if (off >= e->size)
        return 0;
    if (len > e->size - off)
        len = (size_t)(e->size - off);
    if (len > SSIZE_MAX)
        len = SSIZE_MAX;
    for (uint32_t i = 0; i < e->next && done < len; i++) {
        uint64_t ext_bytes = (uint64_t)e->ext[i].count * UFS_BLOCK;
        uint64_t cur = off + done;
        if (cur < at + ext_bytes) {
            size_t n = (size_t)(at + ext_bytes - cur);
            if (n > len - done)
                n = len - done;
            memcpy((uint8_t *)buf + done, ufs_blk_ptr(u, e->ext[i].start) + (cur - at), n);
            done += n;
        }
        at += ext_bytes;
    }
    return (ssize_t)done;
}

/* Readers see the committed state at the time of each call, never a writer's pending blocks. */
ssize_t ufs_read(struct ufs_file *fh, void *buf, size_t len)
{
    struct ufs_ent *e;
    int rc = ufs_fh_ent(fh, &e);

    if (rc)
        return rc;
    if ((fh->flags & (UFS_RDONLY | UFS_WRONLY)) != UFS_RDONLY)
        return -EBADF;
    ssize_t n = ufs_read_ent(fh->u, e, fh->pos, buf, len);
    if (n > 0)
        fh->pos += (uint64_t)n;
    return n;
}

ssize_t ufs_pread(struct ufs *u, const char *name, uint64_t off, void *buf, size_t len)
{
    if (ufs_name_len(name) < 0)
        return -EINVAL;
    int slot = ufs_find(u, name);
    if (slot < 0)
        return slot;
    return ufs_read_ent(u, &u->ent[slot], off, buf, len);
}

/* Bytes of committed block l that belong to the committed file. */
static uint32_t ufs_valid(const struct ufs_ent *e, uint32_t l)
{
    uint64_t base = (uint64_t)l * UFS_BLOCK;
    if (e->size <= base)
        return 0;
    return e->size - base >= UFS_BLOCK ? UFS_BLOCK : (uint32_t)(e->size - base);
}

/* May the writer program committed block l from in-block offset o on? Only past the committed
 * bytes, and only if everything there is still erased (an aborted or cut append leaves junk). */
static bool ufs_inplace_ok(struct ufs_file *fh, uint32_t l, uint32_t o)
{
    const struct ufs_ent *e = &fh->u->ent[fh->slot];
    uint32_t v = ufs_valid(e, l);

    if (fh->tail_ok == l)
        return true;
    if (o < v ||
        !flash_blank(fh->u->f, fh->u->data_off + fh->wmap[l] * UFS_BLOCK + v, UFS_BLOCK - v))
        return false;
    fh->tail_ok = l;
    return true;
}

/* Takes a free block (next fit) for a writer and makes sure it is erased. */
/* Next fit keeps a sequential download in consecutive blocks (one extent) and spreads erases
 * over the area; full 64-block words are skipped, so a scan costs ndata / 64 at worst. */
static int ufs_alloc(struct ufs *u, uint32_t *blk)
{
    uint32_t b = u->cursor;

    for (uint32_t seen = 0; seen < u->ndata;) {
        if (b >= u->ndata)
            b = 0;
        uint64_t busy = u->used[b / 64] | u->pending[b / 64];
        if (b % 64 == 0 && busy == UINT64_MAX) {
            b += 64;
            seen += 64;
            continue;
        }
        if (!((busy >> (b % 64)) & 1)) {
            int rc = ufs_erase_unit(u, u->data_off + b * UFS_BLOCK);
            if (rc)
                return rc;
            ufs_bit_set(u->pending, b);
            u->nfree--;
            u->cursor = b + 1;
            *blk = b;
            return 0;
        }
        b++;
        seen++;
    }
    return -ENOSPC;
}

/* Finds or makes the writable data block for logical block l, written from offset o. */
static int ufs_prep_block(struct ufs_file *fh, uint32_t l, uint32_t o, uint32_t *phys)
{
    struct ufs *u = fh->u;
    uint32_t nb;
    int rc;

    /* Three cases: a block this writer already owns (program in place), a committed block
     * (in place past its end if erased there, else copy on write), or a new block at the end. */
    if (l > fh->nmap)
        return -EINVAL; /* writes are sequential: no holes */
    if (l < fh->nmap) {
        uint32_t b = fh->wmap[l];
        if (ufs_bit(u->pending, b) || ufs_inplace_ok(fh, l, o)) {
            *phys = b;
            return 0;
        }
        /* Copy on write: the new block gets the old bytes before o now, the old bytes after
         * the write frontier at sync (ufs_fill_tail). */
        uint32_t v = ufs_valid(&u->ent[fh->slot], l);
        rc = ufs_alloc(u, &nb);
        if (rc)
            return rc;
        fh->wmap[l] = nb;
        if (l < fh->dmin)
            fh->dmin = l;
        rc = flash_write(u->f, u->data_off + nb * UFS_BLOCK, ufs_blk_ptr(u, b), o < v ? o : v);
        if (rc)
            return rc;
        if (o < v) {
            fh->cow = true;
            fh->cow_lblk = l;
            fh->cow_src = b;
            fh->cow_valid = v;
        }
    } else {
        rc = ufs_alloc(u, &nb);
        if (rc)
            return rc;
        if (fh->nmap < fh->dmin)
            fh->dmin = fh->nmap;
        fh->wmap[fh->nmap++] = nb;
    }
    *phys = nb;
    return 0;
}

/* Common gate of write and sync: a live writer on an area that is not broken, no sticky error. */
static int ufs_writer(struct ufs_file *fh, struct ufs_ent **ep)
{
    int rc = ufs_fh_ent(fh, ep);
    if (rc)
        return rc;
    if ((fh->flags & (UFS_RDONLY | UFS_WRONLY)) != UFS_WRONLY)
        return -EBADF;
    if (fh->u->broken)
        return -EIO;
    return fh->werr;
}

ssize_t ufs_write(struct ufs_file *fh, const void *buf, size_t len)
{
    struct ufs_ent *e;
    int rc = ufs_writer(fh, &e);

    if (rc)
        return rc;
    if (len == 0)
        return 0;
    if (len > SSIZE_MAX)
        return -EINVAL;
    struct ufs *u = fh->u;
    uint64_t end = fh->pos + len, max = (uint64_t)u->ndata * UFS_BLOCK;
    if (end > max || end < fh->pos)
        return -ENOSPC;
    uint32_t first = (uint32_t)(fh->pos / UFS_BLOCK), last = (uint32_t)((end - 1) / UFS_BLOCK);

    /* Count the blocks this write needs before touching anything: all or nothing. Blocks
     * held by other open writers are not free, so two downloads cannot overbook the area. */
    uint32_t need = 0;
    for (uint32_t l = first; l <= last; l++) {
        uint32_t o = l == first ? (uint32_t)(fh->pos % UFS_BLOCK) : 0;
        if (l >= fh->nmap || (!ufs_bit(u->pending, fh->wmap[l]) && !ufs_inplace_ok(fh, l, o)))
            need++;
    }
    if (need > u->nfree)
        return -ENOSPC;
    if (last >= fh->map_cap) {
        uint32_t cap = fh->map_cap ? fh->map_cap : 16;
        while (cap <= last)
            cap = cap > UINT32_MAX / 2 ? last + 1 : cap * 2;
        uint32_t *m = realloc(fh->wmap, (size_t)cap * sizeof(uint32_t));
        if (!m)
            return -ENOMEM;
        fh->wmap = m;
        fh->map_cap = cap;
    }

    /* One block at a time: find or make its writable block, then program (page by page). */
    const uint8_t *src = buf;
    size_t left = len;
    while (left) {
        uint32_t l = (uint32_t)(fh->pos / UFS_BLOCK), o = (uint32_t)(fh->pos % UFS_BLOCK), b;
        uint32_t n = UFS_BLOCK - o < left ? UFS_BLOCK - o : (uint32_t)left;
        rc = ufs_prep_block(fh, l, o, &b);
        if (!rc)
            rc = flash_write(u->f, u->data_off + b * UFS_BLOCK + o, src, n);
        if (rc) {
            /* Part of the block may be programmed: rewriting it would need 0->1 bits. */
            fh->werr = rc;
            return rc;
        }
        fh->dirty = true;
        fh->pos += n;
        src += n;
        left -= n;
        if (fh->pos > fh->wsize)
            fh->wsize = fh->pos;
    }
    return (ssize_t)len;
}

/* A copied-on-write block still owes the old bytes between the write frontier and the end of
 * the old content of that block (overwrite mode): program them before publishing. */
static int ufs_fill_tail(struct ufs_file *fh)
{
    /* w: how far this writer has programmed the block; the old bytes from w to cow_valid are
     * still part of the file (overwrite mode keeps what lies beyond the write position). */
    struct ufs *u = fh->u;
    uint64_t base = (uint64_t)fh->cow_lblk * UFS_BLOCK;
    uint32_t w = fh->pos - base >= UFS_BLOCK ? UFS_BLOCK : (uint32_t)(fh->pos - base);

    if (!fh->cow)
        return 0;
    fh->cow = false;
    if (w >= fh->cow_valid)
        return 0;
    return flash_write(u->f, u->data_off + fh->wmap[fh->cow_lblk] * UFS_BLOCK + w,
                       ufs_blk_ptr(u, fh->cow_src) + w, fh->cow_valid - w);
}

int ufs_sync(struct ufs_file *fh)
{
    struct ufs_ent *e;
    struct ufs_ext *nx = NULL;
    uint32_t nn = 0, keep = 0, len = 0;
    int rc;

    if (fh && fh->u && (fh->flags & (UFS_RDONLY | UFS_WRONLY)) == UFS_RDONLY)
        return 0; /* a reader has nothing to publish, even if its file was removed */
    rc = ufs_writer(fh, &e);
    if (rc || !fh->dirty)
        return rc;
    /* Order is what makes it atomic: every data byte (tail included) is on flash before the
     * one DATA record that points at it; a cut anywhere before that record's last page leaves
     * the old extent list, whose blocks nobody wrote. */
    struct ufs *u = fh->u;
    rc = ufs_fill_tail(fh);
    if (rc) {
        fh->werr = rc;
        return rc;
    }

    /* The working map as maximal runs; the leading runs equal to the committed ones are kept
     * by reference, so an append costs a record of one or two extents. Below dmin the working
     * map is the committed one, whose extents are merged whole: only the blocks mapped since the
     * last sync are visited one by one, so a sync costs what was written since, not the size
     * of the file (the runs come out exactly as a walk over every block would make them). */
    uint32_t same = fh->dmin < fh->nmap ? fh->dmin : fh->nmap, at = 0;
    if (fh->nmap) {
        nx = malloc((size_t)(e->next + (fh->nmap - same)) * sizeof(*nx));
        if (!nx)
            return -ENOMEM;
    }
    for (uint32_t i = 0; i < e->next && at < same; at += e->ext[i++].count) {
        uint32_t c = e->ext[i].count < same - at ? e->ext[i].count : same - at;
        if (nn && nx[nn - 1].start + nx[nn - 1].count == e->ext[i].start) {
            nx[nn - 1].count += c;
        } else {
            nx[nn].start = e->ext[i].start;
            nx[nn++].count = c;
        }
    }
    for (uint32_t l = same; l < fh->nmap; l++) {
        if (nn && nx[nn - 1].start + nx[nn - 1].count == fh->wmap[l]) {
            nx[nn - 1].count++;
        } else {
            nx[nn].start = fh->wmap[l];
            nx[nn++].count = 1;
        }
    }
    while (keep < nn && keep < e->next && nx[keep].start == e->ext[keep].start &&
           nx[keep].count == e->ext[keep].count)
        keep++;

    /* RAM first (the old blocks become free, the new ones used), then the record. Blocks kept
     * by reference go from used to free to used again, which keeps the free count exact;
     * pending blocks were never counted free, so they move over without changing it. */
    ufs_mark(u, e, false);
    for (uint32_t i = 0; i < nn; i++)
        u->nfree -= ufs_run_use(u->used, u->pending, nx[i].start, nx[i].count);
    free(e->ext);
    e->ext = nx;
    e->next = e->ext_cap = nn;
    e->size = fh->wsize;
    fh->dmin = UFS_NONE; /* the working map is the committed one from here on */
    ufs_rec_data(u, &len, fh->slot, keep);
    rc = ufs_commit(u, len);
    if (rc)
        return rc;
    fh->dirty = false;
    fh->tail_ok = UFS_NONE;
    return 0;
}

/* Gives back a writer's unpublished blocks and detaches the handle. */
/* The pending blocks hold only unsynced data (after a sync none are left), so they are simply
 * free again; their content is erased when they are next allocated. */
static void ufs_release(struct ufs_file *fh)
{
    struct ufs *u = fh->u;

    if (fh->slot < UFS_MAX_FILES && u->ent[fh->slot].writer == fh) {
        for (uint32_t l = 0; l < fh->nmap; l++) {
            if (ufs_bit(u->pending, fh->wmap[l])) {
                ufs_bit_clr(u->pending, fh->wmap[l]);
                u->nfree++;
            }
        }
        u->ent[fh->slot].writer = NULL;
    }
    free(fh->wmap);
    fh->wmap = NULL;
    fh->u = NULL;
}

/* A failed sync still releases: the caller cannot retry on a handle whose blocks may be half
 * programmed, and after a flash failure a remount is due anyway. */
int ufs_close(struct ufs_file *fh)
{
    if (!fh || !fh->u)
        return -EBADF;
    int rc = ufs_sync(fh);
    ufs_release(fh);
    return rc;
}

int ufs_abort(struct ufs_file *fh)
{
    if (!fh || !fh->u)
        return -EBADF;
    ufs_release(fh);
    return 0;
}

int ufs_remove(struct ufs *u, const char *name)
{
    uint32_t len = 0;

    if (ufs_name_len(name) < 0)
        return -EINVAL;
    int slot = ufs_find(u, name);
    if (slot < 0)
        return slot;
    if (u->ent[slot].writer)
        return -EBUSY;
    if (u->broken)
        return -EIO;
    /* The blocks are free in RAM before the DEL lands; nothing can reuse them in between, and
     * any later reuse comes after the DEL is on flash (operations are strictly ordered). */
    ufs_mark(u, &u->ent[slot], false);
    ufs_ent_clear(&u->ent[slot]);
    ufs_rec_del(u, &len, (uint32_t)slot);
    return ufs_commit(u, len);
}

int ufs_rename(struct ufs *u, const char *from, const char *to)
{
    uint32_t len = 0;

    if (ufs_name_len(from) < 0 || ufs_name_len(to) < 0)
        return -EINVAL;
    int src = ufs_find(u, from), dst = ufs_find(u, to);
    if (src < 0)
        return src;
    if (src == dst)
        return 0; /* same name: nothing to do, no commit */
    if (u->ent[src].writer || (dst >= 0 && u->ent[dst].writer))
        return -EBUSY;
    if (u->broken)
        return -EIO;
    /* One group: DEL(to) + NAME(from -> to); replay applies both or neither, so after a cut
     * there is either the old pair of files or just the renamed one, never two or none. */
    if (dst >= 0) {
        ufs_mark(u, &u->ent[dst], false);
        ufs_ent_clear(&u->ent[dst]);
        ufs_rec_del(u, &len, (uint32_t)dst);
    }
    strcpy(u->ent[src].name, to);
    ufs_rec_name(u, &len, (uint32_t)src);
    return ufs_commit(u, len);
}

/* Committed size only: a writer's unsynced growth is not visible here. */
int ufs_stat(const struct ufs *u, const char *name, struct ufs_stat *st)
{
    if (ufs_name_len(name) < 0)
        return -EINVAL;
    int slot = ufs_find(u, name);
    if (slot < 0)
        return slot;
    st->size = u->ent[slot].size;
    return 0;
}

/* Table order is slot order: stable across remounts, not sorted. */
int ufs_list(const struct ufs *u, ufs_each_fn *fn, void *ctx)
{
    for (int i = 0; i < UFS_MAX_FILES; i++) {
        if (!u->ent[i].used)
            continue;
        int rc = fn(ctx, u->ent[i].name, u->ent[i].size);
        if (rc)
            return rc;
    }
    return 0;
}

/* Metadata lives in its own reserved halves, so every free block is usable by file data. */
int ufs_space(const struct ufs *u, uint64_t *free_bytes, uint64_t *total_bytes)
{
    if (free_bytes)
        *free_bytes = (uint64_t)u->nfree * UFS_BLOCK;
    if (total_bytes)
        *total_bytes = (uint64_t)u->ndata * UFS_BLOCK;
    return 0;
}
