/*
 * image.c: `modtwin image`, making and inspecting firmware image files (firmware/fw_image.h):
 * a fresh image of a revision, an image derived from another as a rebuild with some percent of
 * changes, a model's factory image (or, with --mini, its factory Mini-system image for MiniFOTA
 * pairs), and --info to show and check an image. It only reads and
 * writes files; it does not talk to a running module (loading an image is the control API's job).
 * Exit codes: 0 ok, 1 failure (I/O, invalid image), 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "firmware/fw_image.h"
#include "firmware/model.h"
#include "tools/cli.h"

/*
 * Limits of the options. 256 MiB is far above any model's flash (16 MiB) and leaves room for
 * benchmark models, while a typo such as 16G fails fast instead of exhausting memory.
 */
#define IMAGE_SIZE_MAX   (256ull << 20) /* body bytes of --size */
#define IMAGE_CHANGE_MAX 50.0           /* percent of --change */

static void image_usage(FILE *out)
{
    fprintf(out,
            "usage: modtwin image --revision REV --size SIZE [--project P] [--baseline B] -o OUT\n"
            "       modtwin image --from OLD --revision REV --change PCT [--seed S] -o OUT\n"
            "       modtwin image --model MODEL [--mini] -o OUT\n"
            "       modtwin image --info FILE\n"
            "  -r, --revision REV   revision reported by ATI / AT+CGMR (1 to 63 printable chars)\n"
            "  -s, --size SIZE      body bytes, 1 to 256M (K and M suffixes: powers of 1024)\n"
            "  -p, --project P      project (default: REV up to \"CN\", e.g. EC200A; else REV)\n"
            "  -b, --baseline B     baseline (default: REV up to its R<nn> release, e.g.\n"
            "                       EC200ACNHAR01 for EC200ACNHAR01A02M16; else REV without its\n"
            "                       last 3 characters); project and baseline: at most 31 chars\n"
            "  -f, --from OLD       derive from image OLD like a rebuild; project and baseline\n"
            "                       are OLD's unless given\n"
            "  -c, --change PCT     percent of OLD's body bytes changed, 0 < PCT <= 50\n"
            "      --seed S         seed of the changes (default: derived from REV)\n"
            "  -m, --model MODEL    the factory image of MODEL (see 'modtwin models')\n"
            "      --mini           with --model: MODEL's factory Mini-system image (MiniFOTA\n"
            "                       builds; what `modtwin pack --mini --mini-old` takes)\n"
            "  -i, --info FILE      print an image's header and check its body digest\n"
            "  -o, --output OUT     file to write\n"
            "  -h, --help           this text\n"
            "The same arguments always give the same bytes.\n");
}

/*
 * A usage error: one message naming the bad value and what is accepted, exit code 2. Scripts
 * tell a bad invocation (2) from a failed one (1) by the exit code alone.
 */
static int image_bad(const char *fmt, const char *val)
{
    fputs("modtwin image: ", stderr);
    fprintf(stderr, fmt, val);
    fputs(" (see 'modtwin image --help')\n", stderr);
    return 2;
}

/* The header's strings end up in AT answers: the parser rejects control characters. */
static bool image_printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return false;
    return true;
}

/* Default project: the part of REV before "CN" (EC200ACNHAR01A02M16 -> EC200A), else REV. */
static void image_default_project(const char *rev, char out[FW_NAME_MAX + 1])
{
    const char *cn = strstr(rev, "CN");
    size_t n = cn && cn > rev ? (size_t)(cn - rev) : strlen(rev);

    snprintf(out, FW_NAME_MAX + 1, "%.*s", (int)n, rev);
}

/*
 * Default baseline: Quectel-style revisions are <project><region><variant>R<nn>A<nn>[M<nn>],
 * and the baseline is the release, up to R<nn> (EC200ACNHAR01A02M16 -> EC200ACNHAR01). Other
 * revisions lose their last 3 characters (an app version suffix); short ones stay whole.
 */
static void image_default_baseline(const char *rev, char out[FW_NAME_MAX + 1])
{
    const char *cn = strstr(rev, "CN"), *p = cn ? cn + 2 : rev;
    size_t len = strlen(rev), n = len > 3 ? len - 3 : len;

    for (; p[0] && p[1] && p[2]; p++) {
        if (p[0] == 'R' && p[1] >= '0' && p[1] <= '9' && p[2] >= '0' && p[2] <= '9') {
            n = (size_t)(p + 3 - rev);
            break;
        }
    }
    snprintf(out, FW_NAME_MAX + 1, "%.*s", (int)n, rev);
}

static void image_hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/*
 * --info: prints the header; exit 1 (with the reason on stderr) if the image is not valid.
 * The output is one "key: value" per line, stable for scripts and e2e tests to parse.
 */
static int image_info(const char *path)
{
    struct fw_image_info info;
    const char *why = NULL;
    char hex[65];
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc;

    rc = cli_read_file(path, &buf, &len);
    if (rc < 0) {
        fprintf(stderr, "modtwin image: %s: %s\n", path, strerror(-rc));
        return 1;
    }
    /* With only the digest wrong the header is still worth showing: it says what was meant. */
    rc = fw_image_check(buf, len, true, &info, &why);
    if (rc == -EBADMSG) {
        fprintf(stderr, "modtwin image: %s: not a valid image: %s\n", path, why);
        free(buf);
        return 1;
    }
    image_hex(info.body_sha256, 32, hex);
    printf("revision:  %s\nproject:   %s\nbaseline:  %s\nbody size: %llu\nsha256:    %s\n"
           "body:      %s\n",
           info.revision, info.project, info.baseline, (unsigned long long)info.body_size, hex,
           rc ? "DIGEST MISMATCH" : "digest ok");
    if (fw_image_size(&info) < len)
        printf("trailing:  %llu bytes after the image\n",
               (unsigned long long)(len - fw_image_size(&info)));
    if (rc)
        fprintf(stderr, "modtwin image: %s: not a valid image: %s\n", path, why);
    free(buf);
    return rc ? 1 : 0;
}

/*
 * Writes img to out (atomically: a reader never sees half an image) and says on stdout what
 * was written; exit code.
 */
static int image_write(const char *out, const uint8_t *img, size_t len)
{
    struct fw_image_info info;
    int rc = cli_write_file(out, img, len);

    if (rc < 0) {
        fprintf(stderr, "modtwin image: %s: %s\n", out, strerror(-rc));
        return 1;
    }
    if (fw_image_parse(img, len, false, &info) == 0)
        printf("%s: revision %s, project %s, baseline %s, body %llu bytes\n", out, info.revision,
               info.project, info.baseline, (unsigned long long)info.body_size);
    return 0;
}

/*
 * --from: OLD's body rebuilt with change_pct % changes, under a new header. The seed defaults
 * to the new revision's, so (OLD, REV, PCT) alone name the derived image; --seed makes two
 * different rebuilds with the same revision for tests that need them.
 */
static int image_derive(const char *old_path, const char *rev, const char *project,
                        const char *baseline, double change, uint64_t seed, const char *out)
{
    struct fw_image_info info;
    struct fw_gen_stats st;
    const char *why = NULL;
    uint8_t *old = NULL, *body = NULL, *img = NULL;
    size_t old_len, body_len;
    int rc, ret = 1;

    rc = cli_read_file(old_path, &old, &old_len);
    if (rc < 0) {
        fprintf(stderr, "modtwin image: %s: %s\n", old_path, strerror(-rc));
        return 1;
    }
    /* A corrupt OLD would give a target that matches no real source: refuse it. */
    rc = fw_image_check(old, old_len, true, &info, &why);
    if (rc < 0) {
        fprintf(stderr, "modtwin image: %s: not a valid image: %s\n", old_path, why);
        goto out;
    }
    rc = fw_gen_derive_stats(old + FW_IMAGE_HDR, (size_t)info.body_size, change, seed, &body,
                             &body_len, &st);
    if (rc == 0 && body_len > SIZE_MAX - FW_IMAGE_HDR)
        rc = -ENOMEM;
    if (rc == 0 && !(img = malloc(FW_IMAGE_HDR + body_len)))
        rc = -ENOMEM;
    if (rc < 0) {
        fprintf(stderr, "modtwin image: %s\n", strerror(-rc));
        goto out;
    }
    snprintf(info.revision, sizeof(info.revision), "%s", rev);
    if (project)
        snprintf(info.project, sizeof(info.project), "%s", project);
    if (baseline)
        snprintf(info.baseline, sizeof(info.baseline), "%s", baseline);
    /* info still holds OLD's header: only the revision (and given names) change. */
    memcpy(img + FW_IMAGE_HDR, body, body_len);
    fw_image_seal(&info, img, img + FW_IMAGE_HDR, body_len);
    ret = image_write(out, img, FW_IMAGE_HDR + body_len);
    if (ret == 0)
        printf("  %zu edits (%zu bytes), %zu inserted runs (%zu bytes), %zu removed runs "
               "(%zu bytes), %zu of %zu pointers moved\n",
               st.edits, st.edit_bytes, st.inserts, st.insert_bytes, st.removes, st.remove_bytes,
               st.fixups, st.pointers);
out:
    free(img);
    free(body);
    free(old);
    return ret;
}

/* A fresh image or a model's factory image: both are fw_image_factory of a revision. */
static int image_fresh(const char *rev, const char *project, const char *baseline, size_t size,
                       const char *out)
{
    uint8_t *img = NULL;
    size_t len = 0;
    int rc = fw_image_factory(rev, project, baseline, size, &img, &len), ret;

    if (rc < 0) {
        fprintf(stderr, "modtwin image: %s\n", strerror(-rc));
        return 1;
    }
    ret = image_write(out, img, len);
    free(img);
    return ret;
}

/*
 * Parses all options first, then checks that they form exactly one mode, then runs it: no file
 * is read or written before the whole command line is known to be valid.
 */
int image_main(int argc, char **argv)
{
    enum { OPT_SEED = 0x100, OPT_MINI };
    static const struct option opts[] = {
        {"revision", required_argument, NULL, 'r'},
        {"size", required_argument, NULL, 's'},
        {"project", required_argument, NULL, 'p'},
        {"baseline", required_argument, NULL, 'b'},
        {"from", required_argument, NULL, 'f'},
        {"change", required_argument, NULL, 'c'},
        {"seed", required_argument, NULL, OPT_SEED},
        {"model", required_argument, NULL, 'm'},
        {"mini", no_argument, NULL, OPT_MINI},
        {"info", required_argument, NULL, 'i'},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *rev = NULL, *project = NULL, *baseline = NULL, *from = NULL, *model = NULL;
    const char *info = NULL, *out = NULL, *size_arg = NULL, *change_arg = NULL;
    char def_project[FW_NAME_MAX + 1], def_baseline[FW_NAME_MAX + 1], *end;
    double change = 0;
    uint64_t seed = 0, size = 0;
    bool have_seed = false, mini = false;
    int c, modes;

    /* Our own messages name the bad value; getopt's would not say the accepted range. */
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":r:s:p:b:f:c:m:i:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            rev = optarg;
            break;
        case 's':
            size_arg = optarg;
            if (cli_parse_size(optarg, IMAGE_SIZE_MAX, &size) < 0 || size == 0)
                return image_bad("--size '%s': expected 1 byte to 256M (K/M suffixes)", optarg);
            break;
        case 'p':
            project = optarg;
            break;
        case 'b':
            baseline = optarg;
            break;
        case 'f':
            from = optarg;
            break;
        case 'c':
            change_arg = optarg;
            errno = 0;
            change = strtod(optarg, &end);
            if (end == optarg || *end || errno || !isfinite(change) || change <= 0 ||
                change > IMAGE_CHANGE_MAX)
                return image_bad("--change '%s': expected a percentage, 0 < PCT <= 50", optarg);
            break;
        case OPT_SEED:
            errno = 0;
            seed = strtoull(optarg, &end, 0);
            if (end == optarg || *end || errno || optarg[0] == '-')
                return image_bad("--seed '%s': expected an integer, 0 to 2^64-1", optarg);
            have_seed = true;
            break;
        case 'm':
            model = optarg;
            break;
        case OPT_MINI:
            mini = true;
            break;
        case 'i':
            info = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'h':
            image_usage(stdout);
            return 0;
        case ':':
            return image_bad("option '%s' needs a value", argv[optind - 1]);
        default:
            return image_bad("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return image_bad("unexpected argument '%s'", argv[optind]);
    if (mini && !model)
        return image_bad("%s", "--mini goes with --model MODEL");

    /* Exactly one mode; each mode's options are checked before any file is touched. */
    modes = !!from + !!model + !!info + (!from && !model && !info && (rev || size_arg));
    if (modes != 1) {
        fprintf(stderr, "modtwin image: give one of --revision/--size, --from, --model, --info "
                        "(see 'modtwin image --help')\n");
        return 2;
    }
    /* Options that would be silently ignored are errors: a typo must not pass unnoticed. */
    if (info) {
        if (rev || size_arg || project || baseline || change_arg || have_seed || out)
            return image_bad("--info '%s' takes no other option", info);
        return image_info(info);
    }
    /* The three generating modes: common checks first, then each mode's own. */
    if (!out)
        return image_bad("%s", "missing -o OUT");
    if (rev && (!*rev || strlen(rev) > FW_REV_MAX || !image_printable(rev)))
        return image_bad("--revision '%s': expected 1 to 63 printable characters", rev);
    if (project && (strlen(project) > FW_NAME_MAX || !image_printable(project)))
        return image_bad("--project '%s': expected at most 31 printable characters", project);
    if (baseline && (strlen(baseline) > FW_NAME_MAX || !image_printable(baseline)))
        return image_bad("--baseline '%s': expected at most 31 printable characters", baseline);

    if (model) {
        const struct model *m = model_find(model);
        uint8_t *img = NULL;
        size_t len = 0;
        int ret;

        if (!m)
            return image_bad("unknown model '%s'; 'modtwin models' lists them", model);
        if (rev || size_arg || project || baseline || change_arg || have_seed)
            return image_bad("--model '%s' takes only -o and --mini", model);
        if (mini && !m->mini_image_size)
            return image_bad("--mini: model '%s' has no Mini system (MiniFOTA builds only)",
                             model);
        /* The very bytes a new state dir of this model boots (or holds as its Mini system). */
        ret = mini ? model_mini_image(m, &img, &len) : model_factory_image(m, &img, &len);
        if (ret < 0) {
            fprintf(stderr, "modtwin image: %s\n", strerror(-ret));
            return 1;
        }
        ret = image_write(out, img, len);
        free(img);
        return ret;
    }
    if (!rev)
        return image_bad("%s", "missing --revision REV");
    if (from) {
        if (!change_arg)
            return image_bad("--from '%s' needs --change PCT (0 < PCT <= 50)", from);
        if (size_arg)
            return image_bad("--size '%s' does not go with --from (the size follows OLD)",
                             size_arg);
        return image_derive(from, rev, project, baseline, change,
                            have_seed ? seed : fw_gen_seed(rev), out);
    }
    if (!size_arg)
        return image_bad("%s", "missing --size SIZE (1 byte to 256M)");
    if (change_arg || have_seed)
        return image_bad("%s", "--change and --seed go with --from");
    /* A fresh image: names not given are derived from the revision (see --help). */
    if (!project) {
        image_default_project(rev, def_project);
        project = def_project;
    }
    if (!baseline) {
        image_default_baseline(rev, def_baseline);
        baseline = def_baseline;
    }
    return image_fresh(rev, project, baseline, (size_t)size, out);
}
