/*
 * pack.c - `modtwin pack`: builds update packages (delta, full, MiniFOTA pairs) from firmware
 * images, and `modtwin pack inspect` prints and checks one; `modtwin pack apply` is handed to
 * tools/pack_apply.c.
 *
 * The generator cuts the target image into segments and encodes each alone (tools/delta_enc.h),
 * then lays out header, table, payload and the optional signature (firmware/pkg.h). It is host
 * code: it may take seconds and memory proportional to the images; the module never runs it.
 * Digests and signatures go through firmware/pkg.c, which fences the mbedtls version.
 */
#include "tools/pack.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "firmware/delta.h"
#include "firmware/fw_image.h"
#include "tools/cli.h"
#include "tools/delta_enc.h"

/* Zero bytes tried between payload and signature before giving up (see pack_sign). */
#define PACK_SIG_PAD_MAX 64u

/* Names as `pack inspect` prints them; the MiniFOTA ones are the file suffixes of the pair. */
static const char *const pack_kind_names[] = {
    [PKG_DELTA] = "delta", [PKG_FULL] = "full", [PKG_MINI_1] = "mini_1", [PKG_MINI_2] = "mini_2"};

const char *pack_kind_name(unsigned kind)
{
    if (kind < PKG_DELTA || kind > PKG_MINI_2)
        return "?";
    return pack_kind_names[kind];
}

/* Kinds whose segments reference the running image (must match pkg.c's rule for codecs). */
static bool pack_has_source(enum pkg_kind kind)
{
    return kind == PKG_DELTA || kind == PKG_MINI_1;
}

/* ---- the generator --------------------------------------------------------------------------- */

/*
 * A growing byte buffer for the payload. The whole package is built in RAM: host-side images are
 * a few MiB and the header (written last) needs the payload's size anyway.
 */
struct pack_buf {
    uint8_t *p;
    size_t len, cap;
};

static int pack_buf_add(struct pack_buf *b, const uint8_t *data, size_t len)
{
    if (len > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 1u << 16;
        uint8_t *p;

        while (cap - b->len < len) {
            if (cap > SIZE_MAX / 2)
                return -ENOMEM;
            cap *= 2;
        }
        p = realloc(b->p, cap);
        if (!p)
            return -ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    return 0;
}

/* Parses an input image and checks its body digest: a package of a broken image is no use. */
static int pack_image(const uint8_t *img, size_t len, struct fw_image_info *info)
{
    return fw_image_parse(img, len, true, info) ? -EBADMSG : 0;
}

/*
 * Encodes every segment of the target into payload, filling segs[]. One encoder serves all
 * segments: its suffix array and dictionary over the source are built once (the expensive part).
 * Segments past the end of the source of an in-place package have nothing left to reference and
 * are encoded like a full package's.
 */
static int pack_encode(const struct pack_opts *o, uint32_t seg, int level, const uint8_t *old,
                       size_t old_len, const uint8_t *tgt, size_t tgt_len, uint32_t count,
                       struct pkg_seg *segs, struct pack_buf *payload)
{
    struct delta_enc enc;
    bool src = pack_has_source(o->kind);
    int rc = 0;

    if (src) {
        rc = delta_enc_init(&enc, old, old_len, level);
        if (rc)
            return rc;
    }
    for (uint32_t i = 0; i < count && !rc; i++) {
        size_t off = (size_t)i * seg, len = tgt_len - off < seg ? tgt_len - off : seg;
        /* in place: what lies before this segment's offset has been overwritten by then */
        size_t src_min = o->inplace ? (off < old_len ? off : old_len) : 0;
        enum delta_codec codec;
        uint8_t *patch = NULL;
        size_t plen = 0;

        if (src && src_min < old_len)
            rc = delta_enc_segment(&enc, tgt, off, len, src_min, &codec, &patch, &plen);
        else
            rc = delta_enc_full(tgt + off, len, level, &codec, &patch, &plen);
        if (!rc && (plen == 0 || plen > len))
            rc = -EIO; /* the encoder's contract: RAW when nothing smaller was found */
        if (!rc) {
            /* patches are stored in target order, back to back */
            segs[i].off = payload->len;
            segs[i].len = (uint32_t)plen;
            segs[i].codec = (uint8_t)codec;
            (void)pkg_digest(tgt + off, len, NULL, NULL, &segs[i].crc32);
            rc = pack_buf_add(payload, patch, plen);
        }
        free(patch);
        if (!rc && o->progress)
            o->progress(o->progress_ctx, i + 1, count);
    }
    if (src)
        delta_enc_free(&enc);
    return rc;
}

/*
 * Signs out[0, sig_off). The header holds sig_off and sig_size and the signature covers the
 * header, but a P-256 DER signature is 70..72 bytes (rarely fewer) and signing is deterministic
 * (RFC 6979): so try each likely size until the signature comes out that long; if none does,
 * move the signature one zero byte further (the format allows a gap) and try again. About 2 in 3
 * packages need no gap; each try costs one SHA-256 of the package.
 */
static int pack_sign(const struct pack_opts *o, struct pkg_hdr *h, uint8_t *out, size_t *out_len)
{
    uint8_t sig[PKG_SIG_MAX];
    uint64_t pay_end = h->payload_off + h->payload_size;
    size_t slen = 0;
    int rc;

    for (unsigned pad = 0; pad < PACK_SIG_PAD_MAX; pad++) {
        for (uint32_t guess = 72; guess >= 70; guess--) {
            h->sig_off = pay_end + pad;
            h->sig_size = guess;
            pkg_write_header(h, out);
            rc = pkg_sign(out, (size_t)h->sig_off, o->key, o->key_len, sig, &slen);
            if (rc)
                return rc;
            /* the header already says guess bytes: only a signature of that length fits */
            if (slen == guess) {
                memcpy(out + h->sig_off, sig, slen);
                *out_len = (size_t)h->sig_off + slen;
                return 0;
            }
        }
    }
    return -EIO;
}

int pack_build(const struct pack_opts *o, const uint8_t *old, size_t old_len,
               const uint8_t *new_img, size_t new_len, uint8_t **pkg, size_t *pkg_len)
{
    struct fw_image_info si, ti;
    struct pkg_hdr h;
    struct pkg_seg *segs = NULL;
    struct pack_buf payload = {0};
    uint32_t seg = o->seg_size ? o->seg_size : PACK_SEG_DEFAULT;
    int level = o->level ? o->level : PACK_LEVEL_DEFAULT;
    uint64_t count;
    size_t tbl_len, total;
    uint8_t *out = NULL;
    int rc;

    /* Options first: nothing is encoded for a request that cannot succeed. */
    *pkg = NULL;
    *pkg_len = 0;
    if (o->kind < PKG_DELTA || o->kind > PKG_MINI_2 || seg % 4096 || seg > PKG_SEG_SIZE_MAX ||
        level < 1 || level > 22 || (o->inplace && !pack_has_source(o->kind)) ||
        (pack_has_source(o->kind) && !old))
        return -EINVAL;
    rc = pack_image(new_img, new_len, &ti);
    if (rc)
        return rc;
    /* a full kind may still be given the running image: then it is recorded, not referenced */
    if (old) {
        rc = pack_image(old, old_len, &si);
        if (rc)
            return rc;
        /* A delta never crosses projects or firmware lines (seed 004: R01 and R02 cannot
         * update into each other): the header names one project and one baseline. */
        if (strcmp(si.project, ti.project) != 0 ||
            (pack_has_source(o->kind) && strcmp(si.baseline, ti.baseline) != 0))
            return -EINVAL;
    }
    /* the table's size must fit the u32 count and its byte size a size_t, whatever the image */
    count = new_len / seg + (new_len % seg != 0);
    if (count == 0 || count > UINT32_MAX / PKG_SEG_ENTRY)
        return -EINVAL;

    memset(&h, 0, sizeof(h));
    h.kind = (uint8_t)o->kind;
    h.flags = (uint8_t)((o->inplace ? PKG_F_INPLACE : 0) | (o->key ? PKG_F_SIGNED : 0));
    h.seg_size = seg;
    h.seg_count = (uint32_t)count;
    h.target_size = new_len;
    rc = pkg_digest(new_img, new_len, h.target_sha256, h.target_md5, NULL);
    if (rc)
        return rc;
    memcpy(h.target_rev, ti.revision, sizeof(h.target_rev));
    /* The module compares project and baseline with what it runs: the source's, if any. */
    memcpy(h.project, old ? si.project : ti.project, sizeof(h.project));
    memcpy(h.baseline, old ? si.baseline : ti.baseline, sizeof(h.baseline));
    if (old) {
        h.source_size = old_len;
        memcpy(h.source_rev, si.revision, sizeof(h.source_rev));
        rc = pkg_digest(old, old_len, h.source_sha256, NULL, &h.source_crc32);
        if (rc)
            return rc;
    }

    segs = calloc(h.seg_count, sizeof(*segs));
    if (!segs)
        return -ENOMEM;
    rc = pack_encode(o, seg, level, old, old_len, new_img, new_len, h.seg_count, segs, &payload);
    if (rc)
        goto out;

    /*
     * Layout: header | table | payload | [gap] signature. The table CRC goes into the header,
     * and the header into the signed range, so the order of writing is table, payload, header.
     */
    tbl_len = (size_t)h.seg_count * PKG_SEG_ENTRY;
    h.table_off = PKG_HDR;
    h.payload_off = PKG_HDR + tbl_len;
    h.payload_size = payload.len;
    total = PKG_HDR + tbl_len + payload.len + (o->key ? PACK_SIG_PAD_MAX + PKG_SIG_MAX : 0);
    out = calloc(1, total);
    if (!out) {
        rc = -ENOMEM;
        goto out;
    }
    pkg_write_table(&h, segs, out + PKG_HDR);
    (void)pkg_digest(out + PKG_HDR, tbl_len, NULL, NULL, &h.table_crc);
    if (payload.len)
        memcpy(out + h.payload_off, payload.p, payload.len);
    /* total shrinks to the real end: the gap and signature room reserved above may go unused */
    if (o->key) {
        rc = pack_sign(o, &h, out, &total);
        if (rc)
            goto out;
    } else {
        pkg_write_header(&h, out);
    }
    *pkg = out;
    *pkg_len = total;
    out = NULL;
out:
    free(out);
    free(payload.p);
    free(segs);
    return rc;
}

/* ---- modtwin pack inspect -------------------------------------------------------------------- */

/* Digests in lower-case hex, as sha256sum and md5sum print them, to compare by eye. */
static void pack_hex(FILE *f, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02x", p[i]);
}

/* The signature gap must be zeros: anything else was not written by modtwin pack. */
static bool pack_all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static void pack_inspect_usage(FILE *out)
{
    fprintf(out, "usage: modtwin pack inspect [options] PKG\n"
                 "  prints every header field and a summary of the segment table, checks the\n"
                 "  header, the table CRC and entries, and the signature when a key is given\n"
                 "  -k, --key PUB.pem   verify the signature with this ECDSA P-256 public key\n"
                 "  -s, --segments      also list every segment\n"
                 "  -h, --help          this text\n"
                 "exit status: 0 valid, 1 invalid (the reason is printed), 2 usage\n");
}

/* Prints the header fields, one per line, with the names docs/package-format.md uses. */
static void pack_print_header(const char *path, size_t len, const struct pkg_hdr *h)
{
    printf("file            %s (%zu bytes)\n", path, len);
    printf("kind            %s (%u)\n", pack_kind_name(h->kind), h->kind);
    printf("flags           0x%02x%s%s\n", h->flags, h->flags & PKG_F_SIGNED ? " signed" : "",
           h->flags & PKG_F_INPLACE ? " in-place" : "");
    printf("project         %s\n", h->project);
    printf("baseline        %s\n", h->baseline);
    printf("source_rev      %s\n", h->source_rev);
    printf("target_rev      %s\n", h->target_rev);
    printf("source_size     %" PRIu64 "\n", h->source_size);
    printf("target_size     %" PRIu64 "\n", h->target_size);
    printf("source_sha256   ");
    pack_hex(stdout, h->source_sha256, 32);
    printf("\ntarget_sha256   ");
    pack_hex(stdout, h->target_sha256, 32);
    printf("\ntarget_md5      ");
    pack_hex(stdout, h->target_md5, 16);
    printf("\nsource_crc32    0x%08" PRIx32 "\n", h->source_crc32);
    printf("seg_size        %" PRIu32 "\n", h->seg_size);
    printf("seg_count       %" PRIu32 "\n", h->seg_count);
    printf("table_crc       0x%08" PRIx32 "\n", h->table_crc);
    printf("table_off       %" PRIu64 "\n", h->table_off);
    printf("payload_off     %" PRIu64 "\n", h->payload_off);
    printf("payload_size    %" PRIu64 "\n", h->payload_size);
    printf("sig_off         %" PRIu64 "\n", h->sig_off);
    printf("sig_size        %" PRIu32 "\n", h->sig_size);
}

/*
 * Segments and patch bytes per codec, and the payload against the target size: the figures to
 * compare segment sizes and levels by. Codec values are checked by pkg_read_table already.
 */
static void pack_print_table(const struct pkg_hdr *h, const struct pkg_seg *segs, bool each)
{
    uint64_t n[DELTA_CODEC_COUNT] = {0}, bytes[DELTA_CODEC_COUNT] = {0};

    for (uint32_t i = 0; i < h->seg_count; i++) {
        n[segs[i].codec]++;
        bytes[segs[i].codec] += segs[i].len;
        if (each)
            printf("segment %-7" PRIu32 " off %-10" PRIu64 " len %-8" PRIu32
                   " %-12s crc32 0x%08" PRIx32 "\n",
                   i, segs[i].off, segs[i].len, delta_codec_name(segs[i].codec), segs[i].crc32);
    }
    printf("table           %" PRIu32 " entries, CRC ok\n", h->seg_count);
    for (int c = 0; c < DELTA_CODEC_COUNT; c++)
        if (n[c])
            printf("codec %-11s %" PRIu64 " segments, %" PRIu64 " bytes\n",
                   delta_codec_name((enum delta_codec)c), n[c], bytes[c]);
    printf("ratio           %.2f %% of the target\n",
           100.0 * (double)h->payload_size / (double)h->target_size);
}

/*
 * `modtwin pack inspect`: the same checks a module makes before it downloads the rest (header),
 * before it applies (table) and, with a key, the signature. It stops at the first failure and
 * prints the pkg_err text, so a package that inspects clean is one the module accepts as a
 * container (whether it fits the running image is the apply's question).
 */
static int pack_inspect_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"segments", no_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *key_path = NULL, *path;
    uint8_t *buf = NULL, *key = NULL;
    size_t len = 0, key_len = 0;
    struct pkg_seg *segs = NULL;
    struct pkg_mem m;
    struct pkg_hdr h;
    enum pkg_err err;
    bool each = false;
    int c, rc, ret = 1;

    optind = 0; /* glibc: full re-initialisation, this may be the process's second getopt run */
    while ((c = getopt_long(argc, argv, "k:sh", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            key_path = optarg;
            break;
        case 's':
            each = true;
            break;
        case 'h':
            pack_inspect_usage(stdout);
            return 0;
        default:
            pack_inspect_usage(stderr);
            return 2;
        }
    }
    if (argc - optind != 1) {
        fprintf(stderr, "modtwin pack inspect: expected one package file\n");
        pack_inspect_usage(stderr);
        return 2;
    }
    path = argv[optind];
    rc = cli_read_file(path, &buf, &len);
    if (rc) {
        fprintf(stderr, "modtwin pack inspect: %s: %s\n", path, strerror(-rc));
        return 1;
    }
    if (key_path && (rc = cli_read_file(key_path, &key, &key_len)) != 0) {
        fprintf(stderr, "modtwin pack inspect: --key %s: %s\n", key_path, strerror(-rc));
        goto out;
    }
    /* header first: nothing below may trust a field before it passed */
    err = pkg_parse_header(buf, len, len, &h);
    if (err != PKG_OK) {
        fprintf(stderr, "modtwin pack inspect: %s: %s\n", path, pkg_err_name(err));
        goto out;
    }
    pack_print_header(path, len, &h);
    m = (struct pkg_mem){buf, len};
    err = pkg_read_table(&h, pkg_mem_read, &m, &segs);
    if (err != PKG_OK) {
        fprintf(stderr, "modtwin pack inspect: %s: %s\n", path, pkg_err_name(err));
        goto out;
    }
    pack_print_table(&h, segs, each);
    if (h.sig_off && h.sig_off > h.payload_off + h.payload_size)
        printf("gap             %" PRIu64 " zero bytes before the signature%s\n",
               h.sig_off - (h.payload_off + h.payload_size),
               pack_all_zero(buf + h.payload_off + h.payload_size,
                             (size_t)(h.sig_off - h.payload_off - h.payload_size))
                   ? ""
                   : " (NOT zero)");
    /* a key on the command line means "this must be signed by it", as on a module */
    if (!(h.flags & PKG_F_SIGNED)) {
        printf("signature       none\n");
        if (key) {
            fprintf(stderr, "modtwin pack inspect: %s: %s\n", path, pkg_err_name(PKG_E_UNSIGNED));
            goto out;
        }
    } else if (!key) {
        printf("signature       present, not verified (no --key)\n");
    } else {
        err = pkg_verify_signature(&h, pkg_mem_read, &m, key, key_len);
        if (err == PKG_E_IO) {
            fprintf(stderr, "modtwin pack inspect: --key %s: not an ECDSA P-256 public key\n",
                    key_path);
            goto out;
        }
        if (err != PKG_OK) {
            fprintf(stderr, "modtwin pack inspect: %s: %s\n", path, pkg_err_name(err));
            goto out;
        }
        printf("signature       ok\n");
    }
    ret = 0;
out:
    free(segs);
    free(key);
    free(buf);
    return ret;
}

/* ---- modtwin pack ---------------------------------------------------------------------------- */

static void pack_usage(FILE *out)
{
    fprintf(
        out,
        "usage: modtwin pack [options] OLD NEW -o PKG   delta package from image OLD to NEW\n"
        "       modtwin pack [options] NEW -o PKG       full package of image NEW\n"
        "       modtwin pack --mini --mini-old OLDMINI --mini-new NEWMINI [options] [OLD] NEW\n"
        "                    -o PKG                     MiniFOTA pair: PKG.mini_1 (delta of the\n"
        "                                               Mini system) and PKG.mini_2 (full\n"
        "                                               package of NEW; OLD, if given, is\n"
        "                                               recorded as its source)\n"
        "       modtwin pack inspect [--key PUB.pem] [--segments] PKG\n"
        "       modtwin pack apply ...                  see 'modtwin pack apply --help'\n"
        "options:\n"
        "  -o, --output PKG      the package file (with --mini: the base name)\n"
        "  -s, --segment SIZE    segment size, a multiple of 4K up to 16M (default 64K)\n"
        "  -l, --level N         zstd level 1..22 (default 19)\n"
        "  -i, --inplace         in-place delta: segment i references only source bytes at\n"
        "                        or after its own offset (delta and .mini_1 only)\n"
        "  -k, --sign KEY.pem    sign with an ECDSA P-256 private key (PEM or DER)\n"
        "  -m, --mini            make a MiniFOTA pair (needs --mini-old and --mini-new)\n"
        "      --mini-old FILE   the Mini system image the module runs now\n"
        "      --mini-new FILE   the Mini system image to install\n"
        "  -q, --quiet           no summary line\n"
        "  -h, --help            this text\n"
        "exit status: 0 ok, 1 failure, 2 usage\n");
}

/* Progress on a terminal: pack of a large image at level 19 takes a while. */
static void pack_progress(void *ctx, uint32_t done, uint32_t total)
{
    const char *name = ctx;

    fprintf(stderr, "\rmodtwin pack: %s: segment %" PRIu32 "/%" PRIu32 "%s", name, done, total,
            done == total ? "\n" : "");
}

/* What one invocation builds: paths of the images and the output, and the options. */
struct pack_job {
    struct pack_opts o;
    const char *old, *new_path, *out;
    bool quiet;
};

/*
 * Reads the inputs, builds one package, writes it; prints a summary. Exit status. The images are
 * checked here too (pack_build would only say -EBADMSG / -EINVAL) so the message names the file.
 */
static int pack_one(const struct pack_job *j)
{
    uint8_t *old = NULL, *img = NULL, *pkg = NULL;
    size_t old_len = 0, img_len = 0, pkg_len = 0;
    struct fw_image_info oi, ni;
    struct pack_opts o = j->o;
    int rc, ret = 1;

    rc = cli_read_file(j->new_path, &img, &img_len);
    if (rc) {
        fprintf(stderr, "modtwin pack: %s: %s\n", j->new_path, strerror(-rc));
        goto out;
    }
    if (fw_image_parse(img, img_len, true, &ni)) {
        fprintf(stderr, "modtwin pack: %s: not a valid firmware image\n", j->new_path);
        goto out;
    }
    if (j->old) {
        rc = cli_read_file(j->old, &old, &old_len);
        if (rc) {
            fprintf(stderr, "modtwin pack: %s: %s\n", j->old, strerror(-rc));
            goto out;
        }
        if (fw_image_parse(old, old_len, true, &oi)) {
            fprintf(stderr, "modtwin pack: %s: not a valid firmware image\n", j->old);
            goto out;
        }
        if (strcmp(oi.project, ni.project) != 0) {
            fprintf(stderr, "modtwin pack: %s is project '%s' but %s is '%s'\n", j->old, oi.project,
                    j->new_path, ni.project);
            goto out;
        }
        if (pack_has_source(o.kind) && strcmp(oi.baseline, ni.baseline) != 0) {
            fprintf(stderr,
                    "modtwin pack: %s is baseline '%s' but %s is '%s': a delta cannot cross "
                    "firmware lines (make a full package)\n",
                    j->old, oi.baseline, j->new_path, ni.baseline);
            goto out;
        }
    }
    if (isatty(STDERR_FILENO) && !j->quiet) {
        o.progress = pack_progress;
        o.progress_ctx = (void *)j->out;
    }
    rc = pack_build(&o, old, old_len, img, img_len, &pkg, &pkg_len);
    if (rc) {
        fprintf(stderr, "modtwin pack: %s: %s\n", j->out,
                rc == -EINVAL && o.key ? "the key is not an ECDSA P-256 private key"
                                       : strerror(-rc));
        goto out;
    }
    rc = cli_write_file(j->out, pkg, pkg_len);
    if (rc) {
        fprintf(stderr, "modtwin pack: %s: %s\n", j->out, strerror(-rc));
        goto out;
    }
    if (!j->quiet)
        printf("%s: %s %s%s%s, %zu bytes (%.2f %% of the target)%s%s\n", j->out,
               pack_kind_name(o.kind), j->old ? oi.revision : "", j->old ? " -> " : "", ni.revision,
               pkg_len, 100.0 * (double)pkg_len / (double)img_len, o.inplace ? ", in place" : "",
               o.key ? ", signed" : "");
    ret = 0;
out:
    free(pkg);
    free(img);
    free(old);
    return ret;
}

/* "PKG" + suffix; NULL when it does not fit (the pair's names differ only in the suffix). */
static const char *pack_suffixed(char *buf, size_t cap, const char *base, const char *suffix)
{
    return (size_t)snprintf(buf, cap, "%s%s", base, suffix) < cap ? buf : NULL;
}

/*
 * `modtwin pack`: inspect and apply are subcommands (dispatched before getopt so their options
 * are their own); everything else builds. One positional is a full package, two a delta; --mini
 * makes two packages from four images. The key is read once and used for both of a pair.
 */
int pack_main(int argc, char **argv)
{
    enum { OPT_MINI_OLD = 256, OPT_MINI_NEW };
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"segment", required_argument, NULL, 's'},
        {"level", required_argument, NULL, 'l'},
        {"inplace", no_argument, NULL, 'i'},
        {"sign", required_argument, NULL, 'k'},
        {"mini", no_argument, NULL, 'm'},
        {"mini-old", required_argument, NULL, OPT_MINI_OLD},
        {"mini-new", required_argument, NULL, OPT_MINI_NEW},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL, *key_path = NULL, *mini_old = NULL, *mini_new = NULL;
    struct pack_opts o = {.seg_size = PACK_SEG_DEFAULT, .level = PACK_LEVEL_DEFAULT};
    char name1[4096], name2[4096];
    struct pack_job j;
    uint8_t *key = NULL;
    size_t key_len = 0;
    bool mini = false, quiet = false;
    uint64_t size;
    long n;
    int c, rc, npos;

    if (argc >= 2 && strcmp(argv[1], "inspect") == 0)
        return pack_inspect_main(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "apply") == 0)
        return pack_apply_main(argc - 1, argv + 1);

    optind = 0; /* glibc: full re-initialisation, this may be the process's second getopt run */
    while ((c = getopt_long(argc, argv, "o:s:l:ik:mqh", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 's':
            if (cli_parse_size(optarg, PKG_SEG_SIZE_MAX, &size) || size == 0 || size % 4096) {
                fprintf(stderr,
                        "modtwin pack: --segment '%s': expected a multiple of 4K "
                        "from 4K to 16M\n",
                        optarg);
                return 2;
            }
            o.seg_size = (uint32_t)size;
            break;
        case 'l':
            if (cli_parse_long(optarg, 1, 22, &n)) {
                fprintf(stderr, "modtwin pack: --level '%s': expected 1..22\n", optarg);
                return 2;
            }
            o.level = (int)n;
            break;
        case 'i':
            o.inplace = true;
            break;
        case 'k':
            key_path = optarg;
            break;
        case 'm':
            mini = true;
            break;
        case OPT_MINI_OLD:
            mini_old = optarg;
            break;
        case OPT_MINI_NEW:
            mini_new = optarg;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            pack_usage(stdout);
            return 0;
        default:
            pack_usage(stderr);
            return 2;
        }
    }
    npos = argc - optind;
    if (!out || npos < 1 || npos > 2) {
        fprintf(stderr, "modtwin pack: expected [OLD] NEW and -o PKG\n");
        pack_usage(stderr);
        return 2;
    }
    /* the --mini options only make sense together; say which part is missing */
    if (!mini && (mini_old || mini_new)) {
        fprintf(stderr, "modtwin pack: --mini-old and --mini-new need --mini\n");
        return 2;
    }
    if (mini && (!mini_old || !mini_new)) {
        fprintf(stderr, "modtwin pack: --mini needs --mini-old OLDMINI and --mini-new NEWMINI\n");
        return 2;
    }
    /* a full package has no source to protect: --inplace there is a mistake, not a no-op */
    if (!mini && o.inplace && npos == 1) {
        fprintf(stderr, "modtwin pack: --inplace needs a delta package (OLD NEW)\n");
        return 2;
    }
    if (key_path) {
        rc = cli_read_file(key_path, &key, &key_len);
        if (rc) {
            fprintf(stderr, "modtwin pack: --sign %s: %s\n", key_path, strerror(-rc));
            return 1;
        }
        o.key = key;
        o.key_len = key_len;
    }

    /* the build options are complete: what remains is which images go into which file(s) */
    j = (struct pack_job){.o = o, .quiet = quiet};
    if (!mini) {
        j.o.kind = npos == 2 ? PKG_DELTA : PKG_FULL;
        j.old = npos == 2 ? argv[optind] : NULL;
        j.new_path = argv[optind + npos - 1];
        j.out = out;
        rc = pack_one(&j);
        goto done;
    }
    /* MiniFOTA: .mini_1 updates the Mini system (delta), .mini_2 the big system (full). */
    j.out = pack_suffixed(name1, sizeof(name1), out, ".mini_1");
    if (!j.out || !pack_suffixed(name2, sizeof(name2), out, ".mini_2")) {
        fprintf(stderr, "modtwin pack: -o '%s': name too long\n", out);
        rc = 2;
        goto done;
    }
    j.o.kind = PKG_MINI_1;
    j.old = mini_old;
    j.new_path = mini_new;
    rc = pack_one(&j);
    if (rc)
        goto done;
    j.o.kind = PKG_MINI_2;
    j.o.inplace = false;
    j.old = npos == 2 ? argv[optind] : NULL;
    j.new_path = argv[optind + npos - 1];
    j.out = name2;
    rc = pack_one(&j);
done:
    free(key);
    return rc;
}
