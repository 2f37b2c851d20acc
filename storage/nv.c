/*
 * nv.c: NV settings as a log of CRC-checked records in one active erase unit of a flash region;
 * the other units are spares that compaction rotates through. It is power-safe by construction:
 * a record counts only when its CRC matches, and a compacted unit counts only once its header,
 * programmed last, is valid. It is not a file system and not wear-leveled beyond the rotation;
 * the live set must fit one erase unit and the RAM index holds NV_MAX_KEYS keys.
 *
 * On-flash layout (all integers little-endian, offsets inside an erase unit):
 *   unit header, 16 bytes at 0:  magic "NVU1" | generation u32 | next sequence u32 |
 *                                crc32 of bytes 0..11
 *   records from 16, each padded to 4 bytes (padding stays 0xFF), 20-byte header:
 *     magic "NVR1" | sequence u32 | key length u8 | flags u8 (bit 0 = tombstone) | value
 *     length u16 | hcrc = crc32 of bytes 0..11 | crc = crc32 of bytes 0..15 + key + value
 *     then key bytes (no NUL), then value bytes
 *   The active unit is the valid header with the highest generation; within it, later records
 *   win. hcrc lets the scan trust a record's length even when its body is torn; a record with a
 *   bad crc is ignored, and a tail that is not clean 0xFF after the last good record makes the
 *   next write (or the mount) compact first, so nothing is ever appended after garbage.
 *
 * Compaction (unit A active, T = next unit in the region):
 *   erase T -> copy live records (+ the pending new one) -> program T's header (commit)
 *   -> erase A. Before the commit A is the newest valid unit; after it, T is.
 */
#include "storage/nv.h"

#include <errno.h>
#include <string.h>
#include <zlib.h>

#define NV_UNIT_MAGIC 0x3155564eu /* "NVU1" */
#define NV_REC_MAGIC  0x3152564eu /* "NVR1" */
#define NV_UNIT_HDR   16u
#define NV_REC_HDR    20u
#define NV_TOMB       0x01u
/* The largest record; also the floor for an erase unit (with the unit header). */
#define NV_REC_MAX ((NV_REC_HDR + NV_KEY_MAX + NV_VAL_MAX + 3u) & ~3u)

/* What the scan makes of the bytes at one position. */
enum nv_rec_kind { NV_REC_NONE, NV_REC_TORN, NV_REC_OK };

/* A parsed record header; key points into the flash mapping. */
struct nv_rec {
    uint32_t seq, size;
    uint16_t vlen;
    uint8_t klen;
    bool tomb;
    const uint8_t *key;
};

/* Byte by byte, not through a packed struct: the layout is the same on any host, and the
 * flash mapping need not be aligned for a uint32_t at a record's offset. */
static uint32_t nv_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void nv_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t nv_crc(uint32_t crc, const uint8_t *p, uint32_t len)
{
    return (uint32_t)crc32(crc, p, len);
}

/* Records start 4-aligned so the resync scan after garbage can step 4 bytes at a time. */
static uint32_t nv_rec_size(uint32_t klen, uint32_t vlen)
{
    return (NV_REC_HDR + klen + vlen + 3u) & ~3u;
}

static uint32_t nv_unit_off(const struct nv *nv, uint32_t unit)
{
    return nv->off + unit * nv->unit_size;
}

static const uint8_t *nv_unit_ptr(const struct nv *nv, uint32_t unit)
{
    return flash_data(nv->f) + nv_unit_off(nv, unit);
}

/* Key length 1..NV_KEY_MAX, or -EINVAL. */
static int nv_key_len(const char *key)
{
    size_t n;

    if (!key)
        return -EINVAL;
    n = strnlen(key, NV_KEY_MAX + 1);
    return n == 0 || n > NV_KEY_MAX ? -EINVAL : (int)n;
}

/* Linear: 128 short keys are cheaper to scan than to keep sorted across swaps and removals. */
static int nv_find(const struct nv *nv, const char *key, uint32_t klen)
{
    for (uint32_t i = 0; i < nv->n; i++)
        if (nv->ent[i].klen == klen && memcmp(nv->ent[i].key, key, klen) == 0)
            return (int)i;
    return -1;
}

/* Order of the index does not matter (foreach promises none), so removal is a swap. */
static void nv_remove(struct nv *nv, int i)
{
    nv->live -= nv->ent[i].size;
    nv->ent[i] = nv->ent[--nv->n];
}

/* A unit counts only with an intact header: its CRC is what makes the header the commit
 * point of a compaction, since a torn header program cannot pass it. */
static bool nv_unit_valid(const uint8_t *u, uint32_t *gen, uint32_t *seq)
{
    if (nv_get32(u) != NV_UNIT_MAGIC || nv_get32(u + 12) != nv_crc(0, u, 12))
        return false;
    *gen = nv_get32(u + 4);
    *seq = nv_get32(u + 8);
    return true;
}

/* Reads the record at pos of a unit of us bytes. Everything here is untrusted: the bytes may be
 * anything a cut or a bit flip left. TORN = the header is sound (its length can be skipped) but
 * the body is not; NONE = no record starts here. */
static enum nv_rec_kind nv_rec_parse(const uint8_t *u, uint32_t pos, uint32_t us, struct nv_rec *r)
{
    const uint8_t *h = u + pos;
    uint32_t body, crc;

    /* Magic first: it rejects blank space and most garbage without a CRC. */
    if (pos + NV_REC_HDR > us || nv_get32(h) != NV_REC_MAGIC)
        return NV_REC_NONE;
    if (nv_get32(h + 12) != nv_crc(0, h, 12))
        return NV_REC_NONE;
    r->seq = nv_get32(h + 4);
    r->klen = h[8];
    r->tomb = h[9] & NV_TOMB;
    r->vlen = (uint16_t)(h[10] | h[11] << 8);
    r->key = h + NV_REC_HDR;
    r->size = nv_rec_size(r->klen, r->vlen);
    /* A sound header can still describe nonsense a foreign writer left: bound everything
     * before the lengths are used for the body CRC or the skip. */
    if (r->klen == 0 || r->klen > NV_KEY_MAX || r->vlen > NV_VAL_MAX || (h[9] & ~NV_TOMB) ||
        (r->tomb && r->vlen) || pos + r->size > us)
        return NV_REC_NONE;
    body = (uint32_t)r->klen + r->vlen;
    crc = nv_crc(nv_crc(0, h, 16), h + NV_REC_HDR, body);
    /* Keys are C strings in the API: a NUL inside would make two keys look alike. */
    if (crc != nv_get32(h + 16) || memchr(r->key, '\0', r->klen))
        return NV_REC_TORN;
    return NV_REC_OK;
}

/* Builds a record in buf (NV_REC_MAX bytes); returns its length without padding. */
static uint32_t nv_rec_build(uint8_t *buf, uint32_t seq, const char *key, uint32_t klen,
                             const void *val, uint32_t vlen, bool tomb)
{
    nv_put32(buf, NV_REC_MAGIC);
    nv_put32(buf + 4, seq);
    buf[8] = (uint8_t)klen;
    buf[9] = tomb ? NV_TOMB : 0;
    buf[10] = (uint8_t)vlen;
    buf[11] = (uint8_t)(vlen >> 8);
    nv_put32(buf + 12, nv_crc(0, buf, 12));
    memcpy(buf + NV_REC_HDR, key, klen);
    if (vlen)
        memcpy(buf + NV_REC_HDR + klen, val, vlen);
    nv_put32(buf + 16, nv_crc(nv_crc(0, buf, 16), buf + NV_REC_HDR, klen + vlen));
    return NV_REC_HDR + klen + vlen;
}

/* Adds a scanned record to the index. Records come in log order, so a later one wins; the
 * sequence check only guards against what a resync after corruption might dig up. */
static void nv_apply(struct nv *nv, const struct nv_rec *r, uint32_t pos)
{
    int i = nv_find(nv, (const char *)r->key, r->klen);
    struct nv_ent *e;

    if (i >= 0 && nv->ent[i].seq > r->seq)
        return;
    if (r->tomb) {
        if (i >= 0)
            nv_remove(nv, i);
        return;
    }
    if (i >= 0) {
        nv_remove(nv, i);
    } else if (nv->n == NV_MAX_KEYS) {
        return; /* our writer never gets here; a foreign log might */
    }
    e = &nv->ent[nv->n++];
    memset(e, 0, sizeof(*e));
    e->rec = pos;
    e->seq = r->seq;
    e->size = (uint16_t)r->size;
    e->vlen = r->vlen;
    e->klen = r->klen;
    memcpy(e->key, r->key, r->klen);
    nv->live += r->size;
}

/* Builds the index from the active unit and sets wp, seq and dirty. The scan walks the whole
 * unit rather than stopping at the first gap, so that records after a corrupted one are still
 * found and any stray byte anywhere past the last good record marks the tail dirty. */
static void nv_scan(struct nv *nv, uint32_t seq_base)
{
    const uint8_t *u = nv_unit_ptr(nv, nv->active);
    uint32_t us = nv->unit_size, pos = NV_UNIT_HDR, end = NV_UNIT_HDR;
    struct nv_rec r;

    nv->seq = seq_base;
    while (pos + NV_REC_HDR <= us) {
        switch (nv_rec_parse(u, pos, us, &r)) {
        case NV_REC_OK:
            nv_apply(nv, &r, pos);
            if (r.seq >= nv->seq)
                nv->seq = r.seq + 1;
            pos += r.size;
            end = pos;
            break;
        case NV_REC_TORN:
            nv->dirty = true;
            pos += r.size;
            break;
        case NV_REC_NONE:
            /* Blank, or garbage (which the next compaction drops): step on at record
             * alignment to find what follows. */
            if (nv_get32(u + pos) != 0xffffffffu)
                nv->dirty = true;
            pos += 4;
            break;
        }
    }
    /* The resync above steps over the last 19 bytes without looking: check the tail byte by
     * byte, since an append must only ever program erased cells. */
    nv->wp = end;
    for (uint32_t i = end; i < us && !nv->dirty; i++)
        if (u[i] != FLASH_ERASED)
            nv->dirty = true;
}

/* Writes a complete unit header for generation gen at the start of unit t. The next sequence
 * number goes with it so that sequences keep rising even when compaction drops the record that
 * carried the highest one (a deleted key). */
static int nv_write_header(struct nv *nv, uint32_t t, uint32_t gen)
{
    uint8_t h[NV_UNIT_HDR];

    nv_put32(h, NV_UNIT_MAGIC);
    nv_put32(h + 4, gen);
    nv_put32(h + 8, nv->seq);
    nv_put32(h + 12, nv_crc(0, h, 12));
    return flash_write(nv->f, nv_unit_off(nv, t), h, sizeof(h));
}

/* Replaces entry skip (-1: none) by pend (NULL: none), pend's record now lying at rec. */
static void nv_commit_ent(struct nv *nv, int skip, const struct nv_ent *pend, uint32_t rec)
{
    if (skip >= 0)
        nv_remove(nv, skip);
    if (pend) {
        nv->ent[nv->n] = *pend;
        nv->ent[nv->n].rec = rec;
        nv->live += pend->size;
        nv->n++;
    }
}

/*
 * Copies the live set, minus entry skip, plus the record rec/rlen described by pend, into the
 * next unit, and makes it active. Every step is a power-loss point:
 *   erase T | program records | program header (commit) | erase A
 * A cut before the commit leaves A the newest valid unit (T is erased again next time); after
 * it T is, and a stale A has a lower generation. An error after the commit is returned, but the
 * RAM state already follows T, as the flash does.
 */
static int nv_compact(struct nv *nv, int skip, const uint8_t *rec, uint32_t rlen,
                      const struct nv_ent *pend)
{
    uint32_t a = nv->active, t = (a + 1) % nv->units;
    uint32_t toff = nv_unit_off(nv, t), pos = NV_UNIT_HDR;
    const uint8_t *src = nv_unit_ptr(nv, a);
    int rc;

    rc = flash_erase(nv->f, toff);
    if (rc < 0)
        goto out;
    for (uint32_t i = 0; i < nv->n; i++) {
        const struct nv_ent *e = &nv->ent[i];

        if ((int)i == skip)
            continue;
        rc = flash_write(nv->f, toff + pos, src + e->rec, NV_REC_HDR + e->klen + e->vlen);
        if (rc < 0)
            goto out;
        pos += e->size;
    }
    if (rec) {
        rc = flash_write(nv->f, toff + pos, rec, rlen);
        if (rc < 0)
            goto out;
    }
    rc = nv_write_header(nv, t, nv->gen + 1);
    if (rc < 0)
        goto out;
    /* Committed: the RAM index follows the copy order above. */
    pos = NV_UNIT_HDR;
    for (uint32_t i = 0; i < nv->n; i++) {
        if ((int)i == skip)
            continue;
        nv->ent[i].rec = pos;
        pos += nv->ent[i].size;
    }
    nv_commit_ent(nv, skip, pend, pos);
    nv->active = t;
    nv->gen++;
    nv->wp = pos + (pend ? pend->size : 0);
    nv->dirty = false;
    nv->compactions++;
    rc = flash_erase(nv->f, nv_unit_off(nv, a));
out:
    return rc;
}

/* Appends rec (rlen bytes, padded size `size`) at wp when it fits a clean tail, else compacts.
 * Only the unpadded bytes are programmed: padding stays erased, and one page program fewer
 * crossing a page boundary means one power-loss point fewer. */
static int nv_put(struct nv *nv, int skip, const uint8_t *rec, uint32_t rlen, uint32_t size,
                  const struct nv_ent *pend)
{
    int rc;

    if (nv->dirty || nv->wp + size > nv->unit_size)
        return nv_compact(nv, skip, pend ? rec : NULL, rlen, pend);
    rc = flash_write(nv->f, nv_unit_off(nv, nv->active) + nv->wp, rec, rlen);
    if (rc < 0) {
        /* Part of the record may have landed: never append after it. */
        nv->dirty = true;
        return rc;
    }
    nv_commit_ent(nv, skip, pend, nv->wp);
    nv->wp += size;
    return 0;
}

/* Only unit 0 is erased: the other units are erased as compaction targets before any use, and
 * none of them holds a valid header (else there would be nothing to format). A cut during the
 * format leaves no valid header again, so the next mount formats again. */
static int nv_format(struct nv *nv)
{
    int rc;

    memset(nv->ent, 0, sizeof(nv->ent));
    nv->n = 0;
    nv->live = 0;
    nv->active = 0;
    nv->gen = 1;
    nv->seq = 1;
    nv->wp = NV_UNIT_HDR;
    nv->dirty = false;
    rc = flash_erase(nv->f, nv_unit_off(nv, 0));
    if (rc < 0)
        return rc;
    return nv_write_header(nv, 0, nv->gen);
}

int nv_mount(struct nv *nv, struct flash *f, uint32_t off, uint32_t size)
{
    uint32_t us, gen, seq, best_seq = 0;
    bool found = false;

    memset(nv, 0, sizeof(*nv));
    if (!f || !flash_data(f))
        return -EINVAL;
    us = flash_geometry(f)->erase_size;
    if (off % us || size % us || size / us < 2 || (uint64_t)off + size > flash_geometry(f)->size ||
        us < NV_UNIT_HDR + NV_REC_MAX)
        return -EINVAL;
    nv->f = f;
    nv->off = off;
    nv->unit_size = us;
    nv->units = size / us;
    /* The newest valid header wins; an older valid unit is one whose erase a cut prevented. */
    for (uint32_t u = 0; u < nv->units; u++) {
        if (!nv_unit_valid(nv_unit_ptr(nv, u), &gen, &seq))
            continue;
        if (!found || gen > nv->gen) {
            found = true;
            nv->active = u;
            nv->gen = gen;
            best_seq = seq;
        }
    }
    if (!found)
        return nv_format(nv);
    nv_scan(nv, best_seq);
    /* Heal at once: a torn tail costs one compaction here instead of an error later. */
    if (nv->dirty)
        return nv_compact(nv, -1, NULL, 0, NULL);
    return 0;
}

void nv_unmount(struct nv *nv)
{
    memset(nv, 0, sizeof(*nv));
}

int nv_get(const struct nv *nv, const char *key, void *buf, size_t cap)
{
    const struct nv_ent *e;
    int klen = nv_key_len(key), i, rc;

    if (klen < 0)
        return klen;
    i = nv_find(nv, key, (uint32_t)klen);
    if (i < 0)
        return -ENOENT;
    e = &nv->ent[i];
    /* The index was built from CRC-checked records (or our own writes): no re-check here. */
    if (e->vlen > cap)
        return -ENOSPC;
    rc = flash_read(nv->f, nv_unit_off(nv, nv->active) + e->rec + NV_REC_HDR + e->klen, buf,
                    e->vlen);
    return rc < 0 ? rc : e->vlen;
}

int nv_set(struct nv *nv, const char *key, const void *val, size_t len)
{
    uint8_t rec[NV_REC_MAX];
    struct nv_ent pend;
    uint32_t size, rlen, live;
    int klen = nv_key_len(key), i;

    if (klen < 0 || len > NV_VAL_MAX || (!val && len))
        return -EINVAL;
    i = nv_find(nv, key, (uint32_t)klen);
    if (i < 0 && nv->n == NV_MAX_KEYS)
        return -ENOSPC;
    size = nv_rec_size((uint32_t)klen, (uint32_t)len);
    live = nv->live - (i >= 0 ? nv->ent[i].size : 0) + size;
    /* Refused before anything is written: a compaction that cannot hold the result would
     * erase a spare for nothing. */
    if (NV_UNIT_HDR + live > nv->unit_size)
        return -ENOSPC;
    memset(&pend, 0, sizeof(pend));
    /* Consumed even if the write fails: a sequence number must never be reused. */
    pend.seq = nv->seq++;
    pend.size = (uint16_t)size;
    pend.vlen = (uint16_t)len;
    pend.klen = (uint8_t)klen;
    memcpy(pend.key, key, (size_t)klen);
    rlen = nv_rec_build(rec, pend.seq, key, (uint32_t)klen, val, (uint32_t)len, false);
    return nv_put(nv, i, rec, rlen, size, &pend);
}

int nv_del(struct nv *nv, const char *key)
{
    uint8_t rec[NV_REC_HDR + NV_KEY_MAX];
    uint32_t rlen;
    int klen = nv_key_len(key), i;

    if (klen < 0)
        return klen;
    i = nv_find(nv, key, (uint32_t)klen);
    if (i < 0)
        return -ENOENT;
    /* A compaction simply leaves the key out, so the tombstone is only ever appended. */
    rlen = nv_rec_build(rec, nv->seq++, key, (uint32_t)klen, NULL, 0, true);
    return nv_put(nv, i, rec, rlen, nv_rec_size((uint32_t)klen, 0), NULL);
}

int nv_get_i64(const struct nv *nv, const char *key, int64_t *out)
{
    uint8_t b[8];
    uint64_t v = 0;
    int rc;

    /* A longer value is not an int64, not a too-small buffer of the caller's. */
    rc = nv_get(nv, key, b, sizeof(b));
    if (rc == -ENOSPC)
        return -EINVAL;
    if (rc < 0)
        return rc;
    if (rc != (int)sizeof(b))
        return -EINVAL;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    *out = (int64_t)v;
    return 0;
}

int nv_set_i64(struct nv *nv, const char *key, int64_t v)
{
    uint8_t b[8];
    uint64_t u = (uint64_t)v;

    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(u >> (8 * i));
    return nv_set(nv, key, b, sizeof(b));
}

int nv_foreach(const struct nv *nv, nv_each_fn *fn, void *ctx)
{
    uint8_t val[NV_VAL_MAX];
    int rc;

    for (uint32_t i = 0; i < nv->n; i++) {
        const struct nv_ent *e = &nv->ent[i];

        rc = flash_read(nv->f, nv_unit_off(nv, nv->active) + e->rec + NV_REC_HDR + e->klen, val,
                        e->vlen);
        if (rc < 0)
            return rc;
        rc = fn(ctx, e->key, val, e->vlen);
        if (rc)
            return rc;
    }
    return 0;
}

void nv_info(const struct nv *nv, struct nv_info *info)
{
    memset(info, 0, sizeof(*info));
    info->gen = nv->gen;
    info->active = nv->active;
    info->used = nv->wp;
    info->free = nv->dirty ? 0 : nv->unit_size - nv->wp;
    info->live_bytes = nv->live;
    info->keys = nv->n;
    info->compactions = nv->compactions;
}
