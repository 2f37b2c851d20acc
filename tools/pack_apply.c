/*
 * `modtwin pack apply`: the firmware's own apply engine (firmware/fota_apply.c) run on the host.
 * It builds an in-memory NOR flash laid out for the chosen topology, programs the old image into
 * the active slot, checks the package (header, table, optional signature, source) as a module
 * would, applies it step by step and writes the resulting active image. It proves a package
 * applies; it is not a power-loss test (the unit test of fota_apply sweeps the cuts).
 *
 * Flash layout (4 KiB erase units, 256-byte pages):
 *   [0, 16 KiB)  NV (journal, slot flag)   then slot 0 (active), then slot 1 (staging / B) or
 *   the one-segment stash (in-place). Slots are the larger of the two images, rounded up.
 * Exit codes: 0 applied, 1 refused or failed (the package error's text), 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "firmware/fota_apply.h"
#include "firmware/pkg.h"
#include "storage/flash.h"
#include "storage/nv.h"
#include "tools/cli.h"

#define PACK_APPLY_UNIT    4096u
#define PACK_APPLY_NV_SIZE (4u * PACK_APPLY_UNIT)
/* The model's flash is addressed with 32 bits; leave room for two slots and NV. */
#define PACK_APPLY_IMG_MAX (1u << 30)

/* The package in RAM, read through the engine's reader interface. */
struct pack_apply_buf {
    const uint8_t *p;
    size_t len;
};

static const char *const pack_apply_topo_name[] = {"staging", "ab", "inplace"};

/* The engine's reader (delta_read_fn): a module reads its package from UFS the same way. A read
 * past the end is an I/O error, never a short read. */
static int pack_apply_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    const struct pack_apply_buf *b = ctx;

    if (off > b->len || len > b->len - off)
        return -EIO;
    memcpy(buf, b->p + off, len);
    return 0;
}

static void pack_apply_usage(FILE *out)
{
    fprintf(out, "usage: modtwin pack apply --source OLD PKG -o OUT [--topology staging|ab|inplace]"
                 " [--key PUB.pem]\n"
                 "  applies PKG to the image OLD with the firmware's apply engine on an in-memory\n"
                 "  flash and writes the new active image to OUT\n"
                 "  -s, --source OLD     the running image the package upgrades from\n"
                 "  -o, --output OUT     where to write the applied image\n"
                 "  -t, --topology T     staging (default; Quectel DFOTA), ab, inplace\n"
                 "                       (inplace needs a package built with --inplace)\n"
                 "  -k, --key PUB.pem    verify the package signature (ECDSA P-256) first\n");
}

/* Rounds up to whole erase units; callers bounded v, so it fits 32 bits. */
static uint32_t pack_apply_round(uint64_t v, uint32_t unit)
{
    return (uint32_t)((v + unit - 1) / unit * unit);
}

/* Refusal of the package: its error text, exit 1. */
static int pack_apply_refuse(enum pkg_err e, const char *what)
{
    fprintf(stderr, "modtwin pack apply: %s%s%s\n", what ? what : "", what ? ": " : "",
            pkg_err_name(e));
    return 1;
}

/* Checks header, table, signature and source before anything is flashed, as a module does
 * after download. Returns PKG_OK or the first refusal. */
static enum pkg_err pack_apply_check(struct pack_apply_buf *pb, struct pkg_hdr *h,
                                     struct pkg_seg **segs, const uint8_t *old, size_t old_len,
                                     const uint8_t *key, size_t key_len)
{
    uint8_t sha[32];
    enum pkg_err e;

    /* Header and table first: the signature's offset comes from the header. */
    e = pkg_parse_header(pb->p, pb->len, pb->len, h);
    if (e == PKG_OK)
        e = pkg_read_table(h, pack_apply_read, pb, segs);
    /* Without --key a signed package applies unverified, as on a module without a key. */
    if (e == PKG_OK && key)
        e = pkg_verify_signature(h, pack_apply_read, pb, key, key_len);
    if (e != PKG_OK)
        return e;
    /* A package that names a source (every delta; a full one built from an image) is only for
     * that exact image. */
    if (h->source_size != 0) {
        if (pkg_digest(old, old_len, sha, NULL, NULL) != 0)
            return PKG_E_IO;
        if (h->source_size != old_len || memcmp(sha, h->source_sha256, sizeof(sha)) != 0)
            return PKG_E_SOURCE_DIGEST;
    }
    return PKG_OK;
}

/* Lays out NV, slot 0 and slot 1 or the stash, in whole erase units. */
static int pack_apply_layout(enum fota_topo topo, const struct pkg_hdr *h, size_t old_len,
                             struct fota_layout *lay, struct flash_geom *g)
{
    uint64_t big = h->target_size > old_len ? h->target_size : old_len;
    uint64_t second;

    /* One slot size for both images: the source sits in it, the target must fit it. A package
     * whose target is larger than the slot would be PKG_E_TOO_BIG on a module; here the slot
     * is made to fit, since the question is whether the package applies, not where. */
    if (big > PACK_APPLY_IMG_MAX || h->seg_size > PACK_APPLY_IMG_MAX)
        return -EFBIG;
    memset(lay, 0, sizeof(*lay));
    lay->topo = topo;
    lay->slot_size = pack_apply_round(big, PACK_APPLY_UNIT);
    lay->slot_off[0] = PACK_APPLY_NV_SIZE;
    /* In place needs only a one-segment stash beside the slot; the others a second slot. */
    if (topo == FOTA_TOPO_INPLACE) {
        lay->backup_off = lay->slot_off[0] + lay->slot_size;
        lay->backup_size = pack_apply_round(h->seg_size, PACK_APPLY_UNIT);
        second = lay->backup_size;
    } else {
        lay->slot_off[1] = lay->slot_off[0] + lay->slot_size;
        second = lay->slot_size;
    }
    /* The default NOR geometry of the models (DESIGN "Flash operations"). */
    memset(g, 0, sizeof(*g));
    g->size = (uint32_t)(lay->slot_off[0] + lay->slot_size + second);
    g->erase_size = PACK_APPLY_UNIT;
    g->page_size = FLASH_DEF_PAGE_SIZE;
    return 0;
}

/* Runs the engine to the end; prints what it did. Returns 0 or the exit code 1. */
static int pack_apply_run(struct fota_apply *a, struct flash *f, struct nv *nv,
                          const struct fota_layout *lay, const struct fota_pkg *pkg)
{
    unsigned per_phase[FOTA_PH_DONE + 1] = {0};
    unsigned steps = 0;
    uint64_t ops0;
    int rc;

    /* begin writes the first journal record into the NV region, as on the module. */
    rc = fota_apply_begin(a, f, nv, lay, pkg);
    if (rc < 0 && a->err == PKG_E_KIND && lay->topo == FOTA_TOPO_INPLACE)
        fprintf(stderr, "modtwin pack apply: in place needs a package made with --inplace\n");
    if (rc < 0)
        return pack_apply_refuse(a->err, "begin");
    ops0 = flash_ops(f);
    printf("apply: %s, %u segments of %u bytes, target %llu bytes\n",
           pack_apply_topo_name[lay->topo], (unsigned)pkg->hdr->seg_count,
           (unsigned)pkg->hdr->seg_size, (unsigned long long)pkg->hdr->target_size);
    /* The bound DESIGN asks for: the source is read in place and does not count. */
    printf("apply: RAM bound %zu bytes (decoder %zu, largest patch %u, segment buffer)\n",
           fota_apply_ram(a), delta_dec_ram(&a->dec), (unsigned)a->patch_cap);
    /* The loop a module's FOTA job runs between power-loss points, without the waiting. */
    do {
        enum fota_phase ph = a->phase;

        rc = fota_apply_step(a);
        /* A refusal mid-way (corrupt segment, wrong digest) names the step it happened in. */
        if (rc < 0) {
            fprintf(stderr, "modtwin pack apply: step %u (phase %d, segment %u) failed\n",
                    steps + 1, (int)ph, (unsigned)a->seg);
            return pack_apply_refuse(a->err, NULL);
        }
        /* Counted by the phase the step ran in: INPLACE steps stash, STASHED ones write. */
        per_phase[ph]++;
        steps++;
    } while (rc > 0);
    printf("apply: %u steps (build %u, verify %u, restore %u, switch %u, stash %u, in place %u),"
           " %llu flash operations, progress %u%%\n",
           steps, per_phase[FOTA_PH_BUILD], per_phase[FOTA_PH_VERIFY], per_phase[FOTA_PH_RESTORE],
           per_phase[FOTA_PH_SWITCH], per_phase[FOTA_PH_INPLACE], per_phase[FOTA_PH_STASHED],
           (unsigned long long)(flash_ops(f) - ops0), fota_apply_progress(a));
    return 0;
}

int pack_apply_main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"source", required_argument, NULL, 's'},   {"output", required_argument, NULL, 'o'},
        {"topology", required_argument, NULL, 't'}, {"key", required_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
    const char *src_path = NULL, *out_path = NULL, *key_path = NULL, *pkg_path;
    enum fota_topo topo = FOTA_TOPO_STAGING;
    uint8_t *old = NULL, *pbuf = NULL, *img = NULL, *key = NULL;
    size_t old_len = 0, pkg_len = 0, key_len = 0;
    struct pack_apply_buf pb;
    struct pkg_hdr h;
    struct pkg_seg *segs = NULL;
    struct fota_layout lay;
    struct flash_geom g;
    struct flash f = {0};
    struct nv nv;
    struct fota_apply a = {0};
    struct fota_pkg pkg;
    bool nv_up = false;
    enum pkg_err e;
    int c, rc, ret = 1, slot;

    optind = 0; /* glibc: full re-initialisation, this may not be the first getopt run */
    while ((c = getopt_long(argc, argv, "s:o:t:k:h", lo, NULL)) != -1) {
        switch (c) {
        case 's':
            src_path = optarg;
            break;
        case 'o':
            out_path = optarg;
            break;
        case 'k':
            key_path = optarg;
            break;
        case 't':
            /* The table's index is the enum value. */
            for (c = 0; c < 3 && strcmp(optarg, pack_apply_topo_name[c]) != 0; c++)
                ;
            if (c == 3) {
                fprintf(stderr,
                        "modtwin pack apply: bad --topology '%s' (staging, ab or "
                        "inplace)\n",
                        optarg);
                return 2;
            }
            topo = (enum fota_topo)c;
            break;
        case 'h':
            pack_apply_usage(stdout);
            return 0;
        default:
            pack_apply_usage(stderr);
            return 2;
        }
    }
    /* Exactly one package; the source and the output are not optional. */
    if (!src_path || !out_path || optind != argc - 1) {
        fprintf(stderr, "modtwin pack apply: need --source OLD, one PKG and -o OUT\n");
        pack_apply_usage(stderr);
        return 2;
    }
    /* Everything is read whole: a package and an image fit in RAM on the host. */
    pkg_path = argv[optind];
    if ((rc = cli_read_file(src_path, &old, &old_len)) < 0 ||
        (rc = cli_read_file(pkg_path, &pbuf, &pkg_len)) < 0) {
        fprintf(stderr, "modtwin pack apply: cannot read '%s': %s\n", old ? pkg_path : src_path,
                strerror(-rc));
        goto out;
    }
    if (key_path && (rc = cli_read_file(key_path, &key, &key_len)) < 0) {
        fprintf(stderr, "modtwin pack apply: cannot read key '%s': %s\n", key_path, strerror(-rc));
        goto out;
    }
    pb.p = pbuf;
    pb.len = pkg_len;
    /* All package checks before anything is flashed, in the order a module makes them. */
    e = pack_apply_check(&pb, &h, &segs, old, old_len, key, key_len);
    if (e != PKG_OK) {
        ret = pack_apply_refuse(e, pkg_path);
        goto out;
    }
    /* Too large for a 32-bit flash model: the package may be fine, this host model is not. */
    if (pack_apply_layout(topo, &h, old_len, &lay, &g) < 0) {
        ret = pack_apply_refuse(PKG_E_TOO_BIG, pkg_path);
        goto out;
    }
    /* The module's flash: old image in the active slot, a fresh NV region. */
    if (flash_open_mem(&f, &g) < 0 ||
        flash_write(&f, lay.slot_off[0], old, (uint32_t)old_len) < 0 ||
        nv_mount(&nv, &f, 0, PACK_APPLY_NV_SIZE) < 0) {
        ret = pack_apply_refuse(PKG_E_IO, "flash");
        goto out;
    }
    nv_up = true;
    /* The package stays in RAM (pb) until the engine is done with it, as the contract says. */
    pkg.hdr = &h;
    pkg.segs = segs;
    pkg.read = pack_apply_read;
    pkg.ctx = &pb;
    ret = pack_apply_run(&a, &f, &nv, &lay, &pkg);
    if (ret != 0)
        goto out;

    /* The image the module would boot: AB boots the slot the switch selected. */
    slot = topo == FOTA_TOPO_AB ? fota_apply_active_slot(&nv) : 0;
    img = malloc((size_t)h.target_size);
    if (!img || flash_read(&f, lay.slot_off[slot], img, (uint32_t)h.target_size) < 0) {
        ret = pack_apply_refuse(PKG_E_IO, "flash");
        goto out;
    }
    /* Atomic (temp file + rename): a failed apply never leaves a half-written OUT. */
    rc = cli_write_file(out_path, img, (size_t)h.target_size);
    if (rc < 0) {
        fprintf(stderr, "modtwin pack apply: cannot write '%s': %s\n", out_path, strerror(-rc));
        ret = 1;
        goto out;
    }
    printf("apply: ok, slot %d, %llu bytes written to %s (%s)\n", slot,
           (unsigned long long)h.target_size, out_path, h.target_rev);
    ret = 0;
out:
    /* Every path ends here; each release is safe on what was never set up. */
    fota_apply_end(&a);
    if (nv_up)
        nv_unmount(&nv);
    flash_close(&f);
    free(segs);
    free(img);
    free(old);
    free(pbuf);
    free(key);
    return ret;
}
