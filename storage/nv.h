/* nv.h: NV settings, a power-safe key/value log on a flash region (layout in nv.c). */
#ifndef MODTWIN_STORAGE_NV_H
#define MODTWIN_STORAGE_NV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/flash.h"

#define NV_KEY_MAX  31  /* bytes of a key, without NUL */
#define NV_VAL_MAX  512 /* bytes of a value */
#define NV_MAX_KEYS 128 /* live keys the RAM index holds; one more is -ENOSPC */

/* One live key in the RAM index; the value stays on flash. Private to nv.c. */
struct nv_ent {
    uint32_t rec;  /* record offset inside the active unit */
    uint32_t seq;  /* record sequence number */
    uint16_t size; /* record bytes, padded */
    uint16_t vlen;
    uint8_t klen;
    char key[NV_KEY_MAX + 1];
};

/* Caller-owned; all fields are private to nv.c. The flash is borrowed and must outlive it. */
struct nv {
    struct flash *f;
    uint32_t off;         /* region start on the flash */
    uint32_t unit_size;   /* flash erase unit */
    uint32_t units;       /* erase units in the region (>= 2) */
    uint32_t active;      /* index of the active unit in the region */
    uint32_t gen;         /* generation of the active unit */
    uint32_t wp;          /* next free byte inside the active unit */
    uint32_t seq;         /* sequence number of the next record */
    uint32_t live;        /* bytes of live records (what a compaction copies) */
    uint32_t compactions; /* since mount, for tests and stats */
    bool dirty;           /* the active unit's tail holds bytes we must not append after */
    uint32_t n;           /* entries in ent[] */
    struct nv_ent ent[NV_MAX_KEYS];
};

/* What nv_info reports. */
struct nv_info {
    uint32_t gen, active; /* generation and index of the active unit */
    uint32_t used, free;  /* bytes of the active unit used and left for appends */
    uint32_t live_bytes;  /* bytes a compaction would copy */
    uint32_t keys;        /* live keys */
    uint32_t compactions; /* since mount */
};

/* Mounts the region [off, off+size) of f: whole erase units, at least 2, each large enough
 * for its header and one record of the largest size (580 bytes). Formats a blank or unreadable
 * region; after any power cut mounts to a state where every key has exactly its old or its new
 * value, compacting away a torn tail (so mount itself may program and erase).
 * Returns 0; -EINVAL (bad region); or the flash's error (-EIO, -ECANCELED when it is dead),
 * after which *nv must not be used. No clean-up is needed on failure. */
int nv_mount(struct nv *nv, struct flash *f, uint32_t off, uint32_t size);

/* Forgets the RAM state; writes nothing (everything is already on flash). */
void nv_unmount(struct nv *nv);

/* Copies the value of key into buf (cap bytes). Returns the value length (>= 0); -ENOENT;
 * -ENOSPC if cap is smaller than the value (nothing copied); -EINVAL for a bad key. */
int nv_get(const struct nv *nv, const char *key, void *buf, size_t cap);

/* Stores len bytes of val under key (key: 1..NV_KEY_MAX bytes; len <= NV_VAL_MAX; val may be
 * NULL only when len is 0). Durable when it returns 0; after a power cut during the call the key
 * holds its old or its new value and no other key changes. Returns 0; -EINVAL (bad key or
 * length); -ENOSPC (NV_MAX_KEYS live keys, or the live set would not fit one erase unit);
 * or the flash's error, in which case the old value is still what nv_get returns. */
int nv_set(struct nv *nv, const char *key, const void *val, size_t len);

/* Deletes key (writes a tombstone, or compacts without it). Returns 0; -ENOENT; -EINVAL;
 * or the flash's error, with the same old-or-new guarantee as nv_set. */
int nv_del(struct nv *nv, const char *key);

/* An int64 stored as exactly 8 little-endian bytes. nv_get_i64 returns 0, -ENOENT, -EINVAL
 * (bad key, or a value that is not 8 bytes long); *out is written only on success. */
int nv_get_i64(const struct nv *nv, const char *key, int64_t *out);
int nv_set_i64(struct nv *nv, const char *key, int64_t v);

/* Calls fn for every live key, in no particular order, with a NUL-terminated key and the value
 * in a temporary buffer valid during the call. fn must not set or delete on this nv. A non-zero
 * return from fn stops the walk and is returned; else 0. */
typedef int nv_each_fn(void *ctx, const char *key, const void *val, size_t len);
int nv_foreach(const struct nv *nv, nv_each_fn *fn, void *ctx);

/* Fills *info from the RAM state; never touches the flash. */
void nv_info(const struct nv *nv, struct nv_info *info);

#endif
