/*
 * Delta benchmark: patch size and apply speed/RAM of our segmented encoder (level 19, 64 KiB
 * segments, ZSTD_SRC or BSDIFF_ZSTD per segment) against the bsdiff/bspatch CLIs and
 * `zstd -19 --long=25 --patch-from`, on two seeded firmware-like image pairs: A (5 % scattered
 * edits and inserted/removed runs) and B (recompile-like: inserts that shift code and every
 * pointer past them). The CLIs run as subprocesses (fork/exec, wait4 for time and peak RSS);
 * ours runs in this process and reports delta_dec_ram as its RAM bound.
 * usage: bench_delta [MiB=16]
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <zstd.h>

#include "firmware/delta.h"
#include "test/lib/pairgen.h"
#include "tools/delta_enc.h"

#define BD_SEG     65536u
#define BD_LEVEL   19

static double bd_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Image pairs come from the shared test generator (test/lib/pairgen.c), with the bench mix. */

/* ---- files and subprocesses -------------------------------------------------------------------
 */

static void bd_write(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");

    if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static long bd_size(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static bool bd_same(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "rb");
    uint8_t *b = malloc(n + 1);
    bool ok;

    if (f == NULL || b == NULL) {
        free(b);
        if (f)
            fclose(f);
        return false;
    }
    ok = fread(b, 1, n + 1, f) == n && memcmp(b, p, n) == 0;
    fclose(f);
    free(b);
    return ok;
}

struct bd_run {
    double secs;
    long maxrss_kb;
    int status;
};

/*
 * fork/exec argv, wait4: wall time, peak RSS, exit status (-1 when it did not exit 0). Linux
 * counts the RSS a child had at exec, and a fork of this process holds the images: so the
 * commands are started by a launcher forked before anything big is allocated (bd_launcher_*).
 */
static struct bd_run bd_exec_here(char *const argv[])
{
    struct bd_run r = {0, 0, -1};
    struct rusage ru;
    double t0 = bd_now();
    int st;
    pid_t pid = fork();

    if (pid < 0)
        return r;
    if (pid == 0) {
        execvp(argv[0], argv);
        _exit(127);
    }
    if (wait4(pid, &st, 0, &ru) != pid)
        return r;
    r.secs = bd_now() - t0;
    r.maxrss_kb = ru.ru_maxrss;
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

struct bd_launcher {
    int req, res; /* pipe ends: requests to the launcher, results from it */
    pid_t pid;
};

#define BD_REQ_MAX 4096

/* The launcher: reads NUL-separated argv blocks, runs each, writes back a struct bd_run. */
static void bd_launcher_loop(int req, int res)
{
    char buf[BD_REQ_MAX];
    uint32_t len;

    while (read(req, &len, sizeof(len)) == (ssize_t)sizeof(len) && len < sizeof(buf) &&
           read(req, buf, len) == (ssize_t)len) {
        char *argv[32];
        size_t n = 0;
        struct bd_run r;

        for (size_t i = 0; i < len && n < 31; i += strlen(buf + i) + 1)
            argv[n++] = buf + i;
        argv[n] = NULL;
        r = bd_exec_here(argv);
        if (write(res, &r, sizeof(r)) != (ssize_t)sizeof(r))
            break;
    }
    _exit(0);
}

static int bd_launcher_start(struct bd_launcher *l)
{
    int a[2], b[2];

    if (pipe(a) != 0 || pipe(b) != 0)
        return -errno;
    l->pid = fork();
    if (l->pid < 0)
        return -errno;
    if (l->pid == 0) {
        close(a[1]);
        close(b[0]);
        bd_launcher_loop(a[0], b[1]);
    }
    close(a[0]);
    close(b[1]);
    l->req = a[1];
    l->res = b[0];
    return 0;
}

static struct bd_run bd_exec(const struct bd_launcher *l, char *const argv[])
{
    struct bd_run r = {0, 0, -1};
    char buf[BD_REQ_MAX];
    uint32_t len = 0;

    for (size_t i = 0; argv[i] != NULL; i++) {
        size_t k = strlen(argv[i]) + 1;

        if (k > sizeof(buf) - len)
            return r;
        memcpy(buf + len, argv[i], k);
        len += (uint32_t)k;
    }
    if (write(l->req, &len, sizeof(len)) != (ssize_t)sizeof(len) ||
        write(l->req, buf, len) != (ssize_t)len ||
        read(l->res, &r, sizeof(r)) != (ssize_t)sizeof(r))
        r.status = -1;
    return r;
}

/* ---- one pair
 * ------------------------------------------------------------------------------------ */

struct bd_result {
    const char *name;
    size_t old_len, new_len;
    double zstd19_ratio; /* the source alone at zstd -19 (first 4 MiB), to show it is not noise */
    size_t ours, bsdiff, zstdpf;
    uint64_t stats[DELTA_CODEC_COUNT];
    double enc_s, bsdiff_s, zstdpf_s;
    double ours_mbs, bspatch_mbs, zstdd_mbs;
    size_t ours_ram;
    long bsdiff_rss, bspatch_rss, zstdd_rss, zstdpf_rss;
    bool ok;
};

static void bd_pair(const struct bd_launcher *l, const char *dir, const char *name, uint64_t seed,
                    size_t n, const struct pairgen_edit *ed, struct bd_result *res)
{
    struct pairgen_rng r = {seed};
    uint8_t *src = malloc(n), *tgt, *out, **patches;
    size_t tn, nseg, *plen, sample = n < (4u << 20) ? n : (4u << 20);
    enum delta_codec *codecs;
    struct delta_enc e;
    struct delta_dec d;
    char old[300], nw[300], pb[300], pz[300], ob[300], oz[300], pf[320];
    double t0, best = 1e9;

    memset(res, 0, sizeof(*res));
    res->name = name;
    if (src == NULL)
        abort();
    pairgen_image(&r, src, n, n, &pairgen_mix_bench);
    tgt = pairgen_mutate(&r, src, n, ed, &pairgen_mix_bench, &tn);
    if (!tgt)
        abort();
    res->old_len = n;
    res->new_len = tn;
    {
        size_t cap = ZSTD_compressBound(sample);
        uint8_t *z = malloc(cap);
        size_t zl = ZSTD_compress(z, cap, src, sample, 19);

        res->zstd19_ratio = ZSTD_isError(zl) ? 0 : (double)zl / (double)sample;
        free(z);
    }
    snprintf(old, sizeof(old), "%s/%s.old", dir, name);
    snprintf(nw, sizeof(nw), "%s/%s.new", dir, name);
    snprintf(pb, sizeof(pb), "%s/%s.bsdiff", dir, name);
    snprintf(pz, sizeof(pz), "%s/%s.zst", dir, name);
    snprintf(ob, sizeof(ob), "%s/%s.out_bspatch", dir, name);
    snprintf(oz, sizeof(oz), "%s/%s.out_zstd", dir, name);
    snprintf(pf, sizeof(pf), "--patch-from=%s", old);
    bd_write(old, src, n);
    bd_write(nw, tgt, tn);

    /* ours: encode every segment, keep the patches for the apply */
    nseg = (tn + BD_SEG - 1) / BD_SEG;
    patches = calloc(nseg + 1, sizeof(*patches));
    plen = calloc(nseg + 1, sizeof(*plen));
    codecs = calloc(nseg + 1, sizeof(*codecs));
    out = malloc(tn + 1);
    if (patches == NULL || plen == NULL || codecs == NULL || out == NULL ||
        delta_enc_init(&e, src, n, BD_LEVEL) != 0 || delta_dec_init(&d, BD_SEG) != 0)
        abort();
    t0 = bd_now();
    for (size_t i = 0; i < nseg; i++) {
        size_t off = i * BD_SEG, len = tn - off < BD_SEG ? tn - off : BD_SEG;

        if (delta_enc_segment(&e, tgt, off, len, 0, &codecs[i], &patches[i], &plen[i]) != 0)
            abort();
        res->ours += plen[i];
    }
    res->enc_s = bd_now() - t0;
    memcpy(res->stats, e.stats, sizeof(res->stats));
    delta_enc_free(&e);

    /* ours: apply (best of 3), every segment into its place in the target */
    res->ok = true;
    for (int rep = 0; rep < 3; rep++) {
        struct delta_src w = {src, n};

        memset(out, 0, tn);
        t0 = bd_now();
        for (size_t i = 0; i < nseg; i++) {
            size_t off = i * BD_SEG, len = tn - off < BD_SEG ? tn - off : BD_SEG;

            if (delta_dec_segment(&d, codecs[i], &w, patches[i], plen[i], out + off, len) != 0)
                res->ok = false;
        }
        t0 = bd_now() - t0;
        best = t0 < best ? t0 : best;
        if (memcmp(out, tgt, tn) != 0)
            res->ok = false;
    }
    res->ours_mbs = (double)tn / best / 1e6;
    res->ours_ram = delta_dec_ram(&d);
    delta_dec_free(&d);

    /* bsdiff / bspatch */
    {
        char *a1[] = {"bsdiff", old, nw, pb, NULL};
        char *a2[] = {"bspatch", old, ob, pb, NULL};
        struct bd_run x = bd_exec(l, a1), y;

        res->bsdiff_s = x.secs;
        res->bsdiff_rss = x.maxrss_kb;
        res->bsdiff = x.status == 0 ? (size_t)bd_size(pb) : 0;
        y = bd_exec(l, a2);
        res->bspatch_mbs = y.status == 0 ? (double)tn / y.secs / 1e6 : 0;
        res->bspatch_rss = y.maxrss_kb;
        if (y.status != 0 || !bd_same(ob, tgt, tn))
            fprintf(stderr, "%s: bspatch failed or differs\n", name);
    }
    /* zstd --patch-from */
    {
        char *a1[] = {"zstd", "-q", "-f", "-19", "--long=25", pf, nw, "-o", pz, NULL};
        char *a2[] = {"zstd", "-q", "-f", "-d", "--long=25", pf, pz, "-o", oz, NULL};
        struct bd_run x = bd_exec(l, a1), y;

        res->zstdpf_s = x.secs;
        res->zstdpf_rss = x.maxrss_kb;
        res->zstdpf = x.status == 0 ? (size_t)bd_size(pz) : 0;
        y = bd_exec(l, a2);
        res->zstdd_mbs = y.status == 0 ? (double)tn / y.secs / 1e6 : 0;
        res->zstdd_rss = y.maxrss_kb;
        if (y.status != 0 || !bd_same(oz, tgt, tn))
            fprintf(stderr, "%s: zstd -d --patch-from failed or differs\n", name);
    }
    for (size_t i = 0; i < nseg; i++)
        free(patches[i]);
    free(patches);
    free(plen);
    free(codecs);
    free(out);
    free(src);
    free(tgt);
}

int main(int argc, char **argv)
{
    static const struct pairgen_edit kind_a = {11600, 60, 30, false};
    static const struct pairgen_edit kind_b = {50, 40, 10, true};
    char dir[] = "/tmp/bench_delta.XXXXXX", cmd[64];
    long mib = argc > 1 ? strtol(argv[1], NULL, 10) : 16;
    struct bd_result res[2];
    struct bd_launcher l;
    int st;

    if (bd_launcher_start(&l) != 0) {
        perror("launcher");
        return 1;
    }
    if (mib < 1 || mib > 1024) {
        fprintf(stderr, "usage: bench_delta [MiB=16]\n");
        return 2;
    }
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    bd_pair(&l, dir, "A", 1, (size_t)mib << 20, &kind_a, &res[0]);
    bd_pair(&l, dir, "B", 2, (size_t)mib << 20, &kind_b, &res[1]);

    printf("delta benchmark, %ld MiB images, ours = level %d, %u KiB segments\n", mib, BD_LEVEL,
           BD_SEG / 1024);
    printf("A: 5%% scattered edits + inserted/removed runs; B: recompile-like pointer shifts + "
           "inserts\n\n");
    for (int i = 0; i < 2; i++) {
        const struct bd_result *x = &res[i];

        printf("pair %s: old %zu, new %zu bytes; old alone at zstd -19: %.1f %%\n", x->name,
               x->old_len, x->new_len, 100.0 * x->zstd19_ratio);
        printf("  %-28s %12s %8s %10s %12s %12s\n", "", "patch bytes", "% new", "make s",
               "apply MB/s", "apply RAM");
        printf("  %-28s %12zu %7.2f%% %10.1f %12.0f %9zu KB (bound)\n",
               "ours (zstd-src|bsdiff-zstd)", x->ours, 100.0 * (double)x->ours / (double)x->new_len,
               x->enc_s, x->ours_mbs, x->ours_ram / 1024);
        printf("  %-28s %12zu %7.2f%% %10.1f %12.0f %9ld KB (RSS)\n", "bsdiff / bspatch", x->bsdiff,
               100.0 * (double)x->bsdiff / (double)x->new_len, x->bsdiff_s, x->bspatch_mbs,
               x->bspatch_rss);
        printf("  %-28s %12zu %7.2f%% %10.1f %12.0f %9ld KB (RSS)\n",
               "zstd -19 --long=25 patch-from", x->zstdpf,
               100.0 * (double)x->zstdpf / (double)x->new_len, x->zstdpf_s, x->zstdd_mbs,
               x->zstdd_rss);
        printf("  segments: zstd-src %llu, bsdiff-zstd %llu, raw %llu; round trip %s\n",
               (unsigned long long)x->stats[DELTA_ZSTD_SRC],
               (unsigned long long)x->stats[DELTA_BSDIFF_ZSTD],
               (unsigned long long)x->stats[DELTA_RAW], x->ok ? "ok" : "FAILED");
        printf("  goals: size %.3fx bsdiff (<= 1.05: %s); apply %.1fx zstd -d --patch-from "
               "(> 1: %s)\n\n",
               x->bsdiff ? (double)x->ours / (double)x->bsdiff : 0,
               x->bsdiff && (double)x->ours <= 1.05 * (double)x->bsdiff ? "met" : "NOT met",
               x->zstdd_mbs > 0 ? x->ours_mbs / x->zstdd_mbs : 0,
               x->ours_mbs > x->zstdd_mbs ? "met" : "NOT met");
    }
    close(l.req);
    close(l.res);
    waitpid(l.pid, &st, 0);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return res[0].ok && res[1].ok ? 0 : 1;
}
