/* ufs.h: the module's power-safe "UFS" file area on the NOR model (see ufs.c for the layout). */
#ifndef MODTWIN_STORAGE_UFS_H
#define MODTWIN_STORAGE_UFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "storage/flash.h"

#define UFS_NAME_MAX  80 /* bytes, without NUL */
#define UFS_MAX_FILES 64
/* Data block = metadata unit = the flash erase unit: the project default, which struct flash does
 * not expose publicly; ufs_mount cannot check it. */
#define UFS_BLOCK 4096u

/* Open flags: exactly one of UFS_RDONLY / UFS_WRONLY; the others only with UFS_WRONLY
 * (UFS_CREAT also with UFS_RDONLY). */
enum { UFS_RDONLY = 1, UFS_WRONLY = 2, UFS_CREAT = 4, UFS_TRUNC = 8, UFS_APPEND = 16 };

/* One run of physically consecutive data blocks. */
struct ufs_ext {
    uint32_t start; /* data block index (0 = first block after the metadata halves) */
    uint32_t count; /* >= 1 */
};

struct ufs_file;

/* One slot of the RAM file table: the last committed state of one file. */
struct ufs_ent {
    bool used;
    char name[UFS_NAME_MAX + 1];
    uint64_t size;
    struct ufs_ext *ext; /* heap, next entries, ceil(size / UFS_BLOCK) blocks in all */
    uint32_t next, ext_cap;
    uint32_t gen;            /* RAM only: bumped on create and remove, so stale handles notice */
    struct ufs_file *writer; /* the one handle open for writing, or NULL */
};

/* Caller-owned; fields are private to ufs.c (tests may read them). */
struct ufs {
    struct flash *f;
    uint32_t off, size;  /* region on the flash */
    uint32_t half_units; /* erase units per metadata half */
    uint32_t half_bytes;
    uint32_t data_off; /* absolute offset of data block 0 */
    uint32_t ndata;    /* data blocks */
    int cur;           /* active metadata half (0 or 1) */
    uint32_t rev;      /* revision of the active half */
    uint32_t log_pos;  /* next free byte in the active half */
    uint32_t log_crc;  /* CRC chain value after the last valid commit */
    uint64_t *used;    /* bitmap: block referenced by the committed table */
    uint64_t *pending; /* bitmap: block allocated by an open writer, not yet synced */
    uint32_t nfree;    /* blocks neither used nor pending */
    uint32_t cursor;   /* next-fit allocation cursor */
    uint8_t *buf;      /* staging for one commit group, half_bytes long */
    bool broken;       /* a metadata commit failed: RAM may be ahead of flash */
    struct ufs_ent ent[UFS_MAX_FILES];
};

/* An open file. Caller-owned; valid from a successful ufs_open until ufs_close / ufs_abort
 * (or ufs_unmount, which releases writers' memory). */
struct ufs_file {
    struct ufs *u; /* NULL when released */
    uint32_t slot, gen;
    int flags;
    uint64_t pos;
    /* writers only: the working copy of the file, copy-on-write at block granularity */
    uint64_t wsize; /* working size */
    uint32_t *wmap; /* logical block -> data block, nmap entries (heap) */
    uint32_t nmap, map_cap;
    uint32_t dmin;    /* wmap[l] for l < min(dmin, nmap) is the committed map (UINT32_MAX: all) */
    bool dirty;       /* something to publish at the next sync */
    int werr;         /* sticky error after a failed data program */
    uint32_t tail_ok; /* committed logical block verified for in-place append, or UINT32_MAX */
    bool cow;         /* block cow_lblk was copied from cow_src and still owes its old tail */
    uint32_t cow_lblk, cow_src, cow_valid;
};

struct ufs_stat {
    uint64_t size;
};

/* All calls are synchronous (flash work happens inside them, each program/erase a power-loss
 * point), never block on anything else, and may be called from event-loop callbacks; none may be
 * called from inside a ufs_each_fn. */

/* Mounts the area [off, off+size) of f (both erase-unit aligned, at least 7 units; f must use
 * 4 KiB erase units). A blank or unreadable area is formatted (empty). After any power cut the
 * area mounts to the last committed state: every file is exactly its old or new content. Never
 * writes to the flash except to format. Returns 0, -EINVAL (bad region), -ENOMEM, or a flash
 * error from formatting. On error *u holds nothing to release. */
int ufs_mount(struct ufs *u, struct flash *f, uint32_t off, uint32_t size);

/* Drops the RAM state without writing anything (unsynced data is lost, as in a power cut).
 * Handles still open become invalid; writers' memory is freed here, so a writer handle must
 * still be valid memory at unmount (close or abort handles that go out of scope first).
 * Safe on a zeroed struct (ufs_mount leaves *u zeroed when it fails). */
void ufs_unmount(struct ufs *u);

/* Opens name. UFS_CREAT creates a missing file (committed at once, empty); UFS_TRUNC makes the
 * writer start empty (the old content stays until the next sync); UFS_APPEND starts at the end;
 * a plain UFS_WRONLY overwrites from offset 0, keeping what lies beyond. Returns 0, -ENOENT,
 * -EINVAL (name empty or longer than UFS_NAME_MAX, bad flags), -ENFILE (table full), -EBUSY
 * (already open for writing), -ENOMEM, -EIO (area broken) or a flash error. */
int ufs_open(struct ufs *u, struct ufs_file *fh, const char *name, int flags);

/* Reads the committed content at the handle's position (readers only). Returns bytes read,
 * 0 at the end, -EBADF (not open for reading / released), -ENOENT (removed since open). */
ssize_t ufs_read(struct ufs_file *fh, void *buf, size_t len);

/* Reads committed content of name at off. Returns bytes read (0 past the end) or -ENOENT,
 * -EINVAL. */
ssize_t ufs_pread(struct ufs *u, const char *name, uint64_t off, void *buf, size_t len);

/* Writes at the handle's position (writers only); invisible until the next sync. Returns len,
 * -ENOSPC when the blocks it needs are not free (nothing written), -EBADF, -ENOENT, -EIO, or a
 * flash error (the handle then refuses further writes and syncs; abort it). */
ssize_t ufs_write(struct ufs_file *fh, const void *buf, size_t len);

/* Publishes everything written so far atomically: after a power cut at any point the file is
 * exactly its old or its new content. Cost is one small metadata record (plus copying the old
 * tail of a block overwritten in place), not a rewrite of the file. 0 for readers.
 * Returns 0, -EBADF, -ENOENT, -EIO, or a flash error. */
int ufs_sync(struct ufs_file *fh);

/* Syncs (writers) and releases the handle; it is released even when the sync fails. */
int ufs_close(struct ufs_file *fh);

/* Releases the handle without publishing unsynced writes. Returns 0 or -EBADF. */
int ufs_abort(struct ufs_file *fh);

/* Removes name atomically, freeing its blocks. Returns 0, -ENOENT, -EINVAL, -EBUSY (open for
 * writing), -EIO, or a flash error. Readers of it then get -ENOENT. */
int ufs_remove(struct ufs *u, const char *name);

/* Renames from to to in one atomic commit, replacing an existing to. Returns 0, -ENOENT,
 * -EINVAL, -EBUSY (either is open for writing), -EIO, or a flash error. */
int ufs_rename(struct ufs *u, const char *from, const char *to);

/* Committed size of name. Returns 0, -ENOENT, -EINVAL. */
int ufs_stat(const struct ufs *u, const char *name, struct ufs_stat *st);

/* Calls fn for each file (table order) with its committed size; stops at the first non-zero
 * return of fn and returns it, else 0. fn must not change the area. */
typedef int ufs_each_fn(void *ctx, const char *name, uint64_t size);
int ufs_list(const struct ufs *u, ufs_each_fn *fn, void *ctx);

/* free_bytes: what a new file can take now (free blocks x UFS_BLOCK; blocks held by open
 * writers are not free); total_bytes: the data area. Either pointer may be NULL. Returns 0. */
int ufs_space(const struct ufs *u, uint64_t *free_bytes, uint64_t *total_bytes);

#endif
