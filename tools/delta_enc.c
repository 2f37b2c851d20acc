/*
 * delta_enc.c: the host-side segment encoders of `modtwin pack` (ZSTD_SRC, BSDIFF_ZSTD, ZSTD,
 * RAW) and the choice of the smallest per segment. ZSTD_SRC compresses against one raw-content
 * CDict of the whole source (or a prefix of the unwritten source suffix, in place); BSDIFF_ZSTD
 * finds approximate matches with a suffix array of the source (libdivsufsort), in the manner of
 * bsdiff but written here, and stores its streams as firmware/delta.c documents. Encoder RAM is
 * not bounded (host tool); its input is trusted. Not here: the decoders, the package container.
 */
#define ZSTD_STATIC_LINKING_ONLY
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <divsufsort.h>
#include <zstd.h>

#include "tools/delta_enc.h"

#define DELTA_ENC_HDR_LEN    12u
#define DELTA_ENC_CTRL_SLACK 64u /* must equal DELTA_CTRL_SLACK in firmware/delta.c */
/* A new alignment must beat the current one by more than this many bytes over its match. */
#define DELTA_ENC_SWITCH_GAIN 8u
/* Segments longer than this get a CDict window that may not reach the whole source. */
#define DELTA_ENC_SEG_HINT (1u << 20)

/* One place where the target switches to a new alignment d = src index - target index. */
struct delta_enc_anchor {
    size_t s;  /* target index (segment-local) where the exact match starts */
    int64_t d; /* source index of target index j is j + d */
};

/* A growable byte buffer; all its allocation failures end in -ENOMEM. */
struct delta_enc_buf {
    uint8_t *p;
    size_t len, cap;
};

static int delta_enc_buf_reserve(struct delta_enc_buf *b, size_t more)
{
    size_t cap;
    uint8_t *p;

    if (more <= b->cap - b->len)
        return 0;
    if (more > SIZE_MAX / 2 - b->len)
        return -ENOMEM;
    cap = b->cap ? b->cap : 256;
    while (cap - b->len < more)
        cap *= 2;
    p = realloc(b->p, cap);
    if (p == NULL)
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

static void delta_enc_varint(struct delta_enc_buf *b, uint64_t v)
{
    /* the caller reserved 10 bytes per varint */
    while (v >= 0x80) {
        b->p[b->len++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b->p[b->len++] = (uint8_t)v;
}

static void delta_enc_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* log2 rounded up of n, clamped to zstd's window bounds. */
static int delta_enc_wlog(uint64_t n)
{
    int w = ZSTD_WINDOWLOG_MIN;

    while (w < ZSTD_WINDOWLOG_MAX && (UINT64_C(1) << w) < n)
        w++;
    return w;
}

int delta_enc_init(struct delta_enc *e, const uint8_t *src, size_t src_len, int level)
{
    if (e == NULL || (src == NULL && src_len) || level < 1 || level > ZSTD_maxCLevel())
        return -EINVAL;
    /* 32-bit suffix array indices; also keeps every alignment within int64_t */
    if (src_len > (size_t)INT32_MAX - 1)
        return -EINVAL;
    memset(e, 0, sizeof(*e));
    e->src = src;
    e->src_len = src_len;
    e->level = level;
    e->cctx = ZSTD_createCCtx();
    if (e->cctx == NULL)
        return -ENOMEM;
    /* the CDict and the suffix array are built on first use: in-place packages need neither */
    return 0;
}

void delta_enc_free(struct delta_enc *e)
{
    if (e == NULL)
        return;
    ZSTD_freeCDict(e->cdict);
    ZSTD_freeCCtx(e->cctx);
    free(e->sa);
    memset(e, 0, sizeof(*e));
}

/*
 * The raw-content CDict over the whole source. Its window covers the source plus a segment,
 * and for the chain/tree strategies the chain covers the source too: matches of a similar image
 * sit about src_len back, beyond the reach of the default tables of large sources.
 */
static int delta_enc_cdict(struct delta_enc *e)
{
    ZSTD_compressionParameters cp;

    if (e->cdict != NULL || e->src_len == 0)
        return 0;
    cp = ZSTD_getCParams(e->level, DELTA_ENC_SEG_HINT, e->src_len);
    /*
     * libzstd's fast and dfast CDicts tag their indices ("short cache") and so load only the
     * last 16 MiB of a dictionary: past that, take the first level that is greedy or better.
     */
    for (int l = e->level;
         cp.strategy < ZSTD_greedy && e->src_len >= (1u << 24) - 64 && l < ZSTD_maxCLevel();)
        cp = ZSTD_getCParams(++l, DELTA_ENC_SEG_HINT, e->src_len);
    cp.windowLog = (unsigned)delta_enc_wlog((uint64_t)e->src_len + DELTA_ENC_SEG_HINT);
    /* hash (and for dfast the long hash) large enough to keep most source positions */
    if (cp.hashLog < cp.windowLog && cp.hashLog < 24)
        cp.hashLog = cp.windowLog < 24 ? cp.windowLog : 24;
    if (cp.strategy >= ZSTD_dfast) {
        unsigned want = cp.windowLog + (cp.strategy >= ZSTD_btlazy2 ? 1 : 0);

        if (want > 26) /* 256 MiB of chain table is where the host cost stops being worth it */
            want = 26;
        if (cp.chainLog < want)
            cp.chainLog = want;
    }
    e->cdict = ZSTD_createCDict_advanced(e->src, e->src_len, ZSTD_dlm_byRef, ZSTD_dct_rawContent,
                                         cp, ZSTD_defaultCMem);
    return e->cdict ? 0 : -ENOMEM;
}

static int delta_enc_sa(struct delta_enc *e)
{
    if (e->sa != NULL || e->src_len == 0)
        return 0;
    e->sa = malloc(e->src_len * sizeof(*e->sa));
    if (e->sa == NULL)
        return -ENOMEM;
    if (divsufsort(e->src, e->sa, (saidx_t)e->src_len) != 0) {
        free(e->sa);
        e->sa = NULL;
        return -ENOMEM;
    }
    return 0;
}

/* Compresses in[0, n) with the cctx as it is set up; *out is malloc'd. */
static int delta_enc_zstd_run(ZSTD_CCtx *cctx, const uint8_t *in, size_t n, uint8_t **out,
                              size_t *out_len)
{
    size_t cap = ZSTD_compressBound(n), r;
    uint8_t *p = malloc(cap);

    if (p == NULL)
        return -ENOMEM;
    r = ZSTD_compress2(cctx, p, cap, in, n);
    if (ZSTD_isError(r)) {
        free(p);
        return -ENOMEM; /* with a bound-sized buffer only an allocation can fail */
    }
    *out = p;
    *out_len = r;
    return 0;
}

/* Resets the cctx to a plain frame at level: content size written, no checksum. */
static int delta_enc_cctx_plain(ZSTD_CCtx *cctx, int level)
{
    ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
    if (ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 0)))
        return -EINVAL;
    return 0;
}

/*
 * ZSTD_SRC: one frame whose dictionary is the window src[src_min, src_len). src_min == 0 uses
 * the shared CDict, attached rather than copied so a frame does not pay for the source's tables;
 * src_min > 0 loads the suffix as a prefix for this frame only.
 */
static int delta_enc_zstd_src(struct delta_enc *e, const uint8_t *seg, size_t len, size_t src_min,
                              uint8_t **out, size_t *out_len)
{
    size_t win = e->src_len - src_min;
    int rc = delta_enc_cctx_plain(e->cctx, e->level);

    if (rc)
        return rc;
    if (win == 0)
        return delta_enc_zstd_run(e->cctx, seg, len, out, out_len);
    if (ZSTD_isError(ZSTD_CCtx_setParameter(e->cctx, ZSTD_c_windowLog,
                                            delta_enc_wlog((uint64_t)win + len))) ||
        ZSTD_isError(
            ZSTD_CCtx_setParameter(e->cctx, ZSTD_c_enableLongDistanceMatching, ZSTD_ps_disable)))
        return -EINVAL;
    if (src_min == 0) {
        rc = delta_enc_cdict(e);
        if (rc)
            return rc;
        if (ZSTD_isError(
                ZSTD_CCtx_setParameter(e->cctx, ZSTD_c_forceAttachDict, ZSTD_dictForceAttach)) ||
            ZSTD_isError(ZSTD_CCtx_refCDict(e->cctx, e->cdict)))
            return -EINVAL;
    } else if (ZSTD_isError(ZSTD_CCtx_refPrefix(e->cctx, e->src + src_min, win))) {
        return -EINVAL;
    }
    return delta_enc_zstd_run(e->cctx, seg, len, out, out_len);
}

/* ---- BSDIFF_ZSTD ----------------------------------------------------------------------------- */

/* Length of the common prefix of a[0, n) and b[0, n). */
static size_t delta_enc_lcp(const uint8_t *a, const uint8_t *b, size_t n)
{
    size_t i = 0;

    while (i + 8 <= n) {
        uint64_t x, y;

        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y)
            return i + (size_t)(__builtin_ctzll(x ^ y) >> 3); /* little-endian host */
        i += 8;
    }
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

/*
 * The longest prefix of t[0, n) that occurs in the source: binary search for t's place among
 * the sorted suffixes; the longest match is one of the two neighbours of that place.
 */
static size_t delta_enc_search(const struct delta_enc *e, const uint8_t *t, size_t n, size_t *pos)
{
    const uint8_t *s = e->src;
    size_t lo = 0, hi = e->src_len - 1, l1, l2, p1, p2;

    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2, p = (size_t)e->sa[mid], m = e->src_len - p;
        size_t k = delta_enc_lcp(s + p, t, m < n ? m : n);

        /* suffix < t when it differs lower, or is a proper prefix of t */
        if ((k < m && k < n && s[p + k] < t[k]) || (k == m && k < n))
            lo = mid;
        else
            hi = mid;
    }
    p1 = (size_t)e->sa[lo];
    p2 = (size_t)e->sa[hi];
    l1 = delta_enc_lcp(s + p1, t, e->src_len - p1 < n ? e->src_len - p1 : n);
    l2 = delta_enc_lcp(s + p2, t, e->src_len - p2 < n ? e->src_len - p2 : n);
    *pos = l1 >= l2 ? p1 : p2;
    return l1 >= l2 ? l1 : l2;
}

/* Does target byte j match its source byte under alignment d (0 when outside the source)? */
static int delta_enc_eq(const struct delta_enc *e, const uint8_t *t, size_t j, int64_t d)
{
    int64_t k = (int64_t)j + d;

    return k >= 0 && (uint64_t)k < e->src_len && e->src[k] == t[j];
}

/*
 * Pass 1: where the target switches alignment. At each position the longest exact match in the
 * source is found; it becomes an anchor when it beats the current alignment by more than
 * DELTA_ENC_SWITCH_GAIN bytes over its length (bsdiff's test), and the scan jumps over it
 * either way, so each target byte costs one search at most and the walk stays near linear.
 */
static int delta_enc_anchors(const struct delta_enc *e, const uint8_t *t, size_t m,
                             struct delta_enc_anchor **out, size_t *count)
{
    struct delta_enc_anchor *a = NULL;
    size_t n = 0, cap = 0, i = 0;
    int64_t d = 0;

    while (i < m) {
        /* the longest exact match here, and its alignment */
        size_t pos, len = delta_enc_search(e, t + i, m - i, &pos), cur = 0;
        int64_t nd = (int64_t)pos - (int64_t)i;

        if (len <= DELTA_ENC_SWITCH_GAIN) {
            /* nothing worth a triple starts here: the byte goes to extra (or the current add) */
            i++;
            continue;
        }
        /* how well the current alignment already covers the same bytes */
        if (n > 0 && nd != d)
            for (size_t j = i; j < i + len; j++)
                cur += (size_t)delta_enc_eq(e, t, j, d);
        if (n == 0 || (nd != d && len > cur + DELTA_ENC_SWITCH_GAIN)) {
            if (n == cap) {
                struct delta_enc_anchor *p;

                cap = cap ? 2 * cap : 64;
                p = realloc(a, cap * sizeof(*a));
                if (p == NULL) {
                    free(a);
                    return -ENOMEM;
                }
                a = p;
            }
            a[n].s = i;
            a[n].d = nd;
            n++;
            d = nd;
        }
        i += len;
    }
    *out = a;
    *count = n;
    return 0;
}

/*
 * Pass 2: the extent of each anchor's alignment. Forward from anchor k and backward from anchor
 * k + 1, each as far as the running score 2 * matches - length peaks (so the region stays at
 * least half matching and its diff bytes mostly zero); where the two overlap, the split is put
 * where the two alignments together match best. Writes the region [b[k], f[k]) of each anchor.
 */
static void delta_enc_extents(const struct delta_enc *e, const uint8_t *t, size_t m,
                              const struct delta_enc_anchor *a, size_t n, size_t *b, size_t *f)
{
    for (size_t k = 0; k <= n; k++) {
        size_t lo = k ? a[k - 1].s : 0, hi = k < n ? a[k].s : m, lenf = 0, lenb = 0;
        int64_t sc = 0, best = 0;

        /* forward extension of anchor k - 1 over [lo, hi) */
        if (k > 0) {
            size_t mk = 0;

            for (size_t j = lo; j < hi && (int64_t)j + a[k - 1].d < (int64_t)e->src_len; j++) {
                mk += (size_t)delta_enc_eq(e, t, j, a[k - 1].d);
                sc = 2 * (int64_t)mk - (int64_t)(j - lo + 1);
                if (sc > best) {
                    best = sc;
                    lenf = j - lo + 1;
                }
            }
        }
        /* backward extension of anchor k over (lo, hi], staying at source index >= 0 */
        if (k < n) {
            size_t mk = 0;

            best = 0;
            for (size_t j = hi; j > lo && (int64_t)j - 1 + a[k].d >= 0; j--) {
                mk += (size_t)delta_enc_eq(e, t, j - 1, a[k].d);
                sc = 2 * (int64_t)mk - (int64_t)(hi - j + 1);
                if (sc > best) {
                    best = sc;
                    lenb = hi - j + 1;
                }
            }
        }
        if (k > 0 && k < n && lo + lenf > hi - lenb) {
            /* overlap [hi - lenb, lo + lenf): split where the left alignment stops paying */
            size_t ol = hi - lenb, oh = lo + lenf, split = ol;

            sc = 0;
            best = 0;
            for (size_t j = ol; j < oh; j++) {
                sc += delta_enc_eq(e, t, j, a[k - 1].d) - delta_enc_eq(e, t, j, a[k].d);
                if (sc > best) {
                    best = sc;
                    split = j + 1;
                }
            }
            lenf = split - lo;
            lenb = hi - split;
        }
        if (k > 0)
            f[k - 1] = lo + lenf;
        if (k < n)
            b[k] = hi - lenb;
    }
}

/* Appends one control triple (add, copy, seek) as varints, seek zigzag-coded. */
static void delta_enc_triple(struct delta_enc_buf *c, uint64_t add, uint64_t copy, int64_t seek)
{
    delta_enc_varint(c, add);
    delta_enc_varint(c, copy);
    delta_enc_varint(c, seek >= 0 ? (uint64_t)seek << 1 : ((uint64_t)(-(seek + 1)) << 1) | 1);
}

/*
 * BSDIFF_ZSTD for seg[0, m) against the whole source. -E2BIG when the control stream would
 * exceed what the decoder accepts (the segment is then better sent another way).
 */
static int delta_enc_bsdiff(struct delta_enc *e, const uint8_t *seg, size_t m, uint8_t **out,
                            size_t *out_len)
{
    struct delta_enc_anchor *a = NULL;
    struct delta_enc_buf ctrl = {0}, body = {0};
    size_t n = 0, *b = NULL, *f = NULL, dl = 0, el = 0, k;
    int rc;

    if (m > UINT32_MAX / 2)
        return -EINVAL;
    rc = delta_enc_sa(e);
    if (rc == 0 && e->src_len > 0)
        rc = delta_enc_anchors(e, seg, m, &a, &n);
    if (rc)
        return rc;
    b = malloc((n + 1) * sizeof(*b));
    f = malloc((n + 1) * sizeof(*f));
    rc = -ENOMEM;
    if (b == NULL || f == NULL || delta_enc_buf_reserve(&ctrl, 30 * (n + 2)))
        goto out;
    delta_enc_extents(e, seg, m, a, n, b, f);

    /*
     * control: one leading triple reaches the first region (extra bytes before it, then a seek
     * to its source position), then one triple per anchor: its add region, the extra bytes up
     * to the next region, and the seek from this region's end to the next one's start.
     */
    if (n == 0) {
        delta_enc_triple(&ctrl, 0, m, 0);
    } else {
        if (b[0] > 0 || (int64_t)b[0] + a[0].d != 0)
            delta_enc_triple(&ctrl, 0, b[0], (int64_t)b[0] + a[0].d);
        for (k = 0; k < n; k++) {
            size_t next = k + 1 < n ? b[k + 1] : m;
            int64_t seek =
                k + 1 < n ? ((int64_t)b[k + 1] + a[k + 1].d) - ((int64_t)f[k] + a[k].d) : 0;

            delta_enc_triple(&ctrl, f[k] - b[k], next - f[k], seek);
            dl += f[k] - b[k];
        }
    }
    el = m - dl;
    if (ctrl.len > m + DELTA_ENC_CTRL_SLACK) {
        rc = -E2BIG;
        goto out;
    }
    /* body = header, ctrl, diff bytes (target - source), extra bytes (literal) */
    if (delta_enc_buf_reserve(&body, DELTA_ENC_HDR_LEN + ctrl.len + m))
        goto out;
    delta_enc_le32(body.p, (uint32_t)ctrl.len);
    delta_enc_le32(body.p + 4, (uint32_t)dl);
    delta_enc_le32(body.p + 8, (uint32_t)el);
    memcpy(body.p + DELTA_ENC_HDR_LEN, ctrl.p, ctrl.len);
    body.len = DELTA_ENC_HDR_LEN + ctrl.len;
    for (k = 0; k < n; k++)
        for (size_t j = b[k]; j < f[k]; j++)
            body.p[body.len++] = (uint8_t)(seg[j] - e->src[(int64_t)j + a[k].d]);
    if (n == 0) {
        memcpy(body.p + body.len, seg, m);
        body.len += m;
    } else {
        memcpy(body.p + body.len, seg, b[0]);
        body.len += b[0];
        for (k = 0; k < n; k++) {
            size_t next = k + 1 < n ? b[k + 1] : m;

            memcpy(body.p + body.len, seg + f[k], next - f[k]);
            body.len += next - f[k];
        }
    }
    rc = delta_enc_cctx_plain(e->cctx, e->level);
    if (rc == 0)
        rc = delta_enc_zstd_run(e->cctx, body.p, body.len, out, out_len);
out:
    free(a);
    free(b);
    free(f);
    free(ctrl.p);
    free(body.p);
    return rc;
}

/* RAW: the segment's bytes as they are (a 1-byte buffer for an empty one, never NULL). */
static int delta_enc_raw(const uint8_t *seg, size_t len, uint8_t **out, size_t *out_len)
{
    uint8_t *p = malloc(len ? len : 1);

    if (p == NULL)
        return -ENOMEM;
    if (len)
        memcpy(p, seg, len);
    *out = p;
    *out_len = len;
    return 0;
}

/* One codec, no choice; the checks shared by every codec are here. */
int delta_enc_segment_codec(struct delta_enc *e, enum delta_codec codec, const uint8_t *tgt,
                            size_t off, size_t len, size_t src_min, uint8_t **patch,
                            size_t *patch_len)
{
    const uint8_t *seg;
    int rc;

    if (e == NULL || e->cctx == NULL || patch == NULL || patch_len == NULL ||
        (tgt == NULL && len) || off > SIZE_MAX - len || src_min > e->src_len)
        return -EINVAL;
    seg = len ? tgt + off : (const uint8_t *)"";
    switch (codec) {
    case DELTA_RAW:
        return delta_enc_raw(seg, len, patch, patch_len);
    case DELTA_ZSTD:
        rc = delta_enc_cctx_plain(e->cctx, e->level);
        return rc ? rc : delta_enc_zstd_run(e->cctx, seg, len, patch, patch_len);
    case DELTA_ZSTD_SRC:
        return delta_enc_zstd_src(e, seg, len, src_min, patch, patch_len);
    case DELTA_BSDIFF_ZSTD:
        if (src_min != 0)
            return -EINVAL; /* its matches may reach anywhere in the source */
        return delta_enc_bsdiff(e, seg, len, patch, patch_len);
    default:
        return -EINVAL;
    }
}

/*
 * Tries every codec the window allows and keeps the smallest; RAW when none is strictly
 * smaller than the segment. Ties go to the earlier codec (ZSTD_SRC decodes fastest).
 */
int delta_enc_segment(struct delta_enc *e, const uint8_t *tgt, size_t off, size_t len,
                      size_t src_min, enum delta_codec *codec, uint8_t **patch, size_t *patch_len)
{
    static const enum delta_codec order[] = {DELTA_ZSTD_SRC, DELTA_BSDIFF_ZSTD};
    enum delta_codec best = DELTA_RAW;
    uint8_t *bp = NULL;
    size_t bl = len; /* RAW's size: a codec must be strictly smaller to win */

    if (codec == NULL || patch == NULL || patch_len == NULL)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        uint8_t *p;
        size_t pl;
        int rc;

        if (order[i] == DELTA_BSDIFF_ZSTD && src_min != 0)
            continue;
        rc = delta_enc_segment_codec(e, order[i], tgt, off, len, src_min, &p, &pl);
        if (rc == -E2BIG)
            continue;
        if (rc) {
            free(bp);
            return rc;
        }
        if (pl < bl) {
            free(bp);
            bp = p;
            bl = pl;
            best = order[i];
        } else {
            free(p);
        }
    }
    if (best == DELTA_RAW) {
        int rc = delta_enc_raw(len ? tgt + off : NULL, len, &bp, &bl);

        if (rc)
            return rc;
    }
    e->stats[best]++;
    *codec = best;
    *patch = bp;
    *patch_len = bl;
    return 0;
}

/* Full packages: no source, so plain zstd, or RAW if zstd does not shrink the segment. */
int delta_enc_full(const uint8_t *seg, size_t len, int level, enum delta_codec *codec,
                   uint8_t **patch, size_t *patch_len)
{
    ZSTD_CCtx *cctx;
    uint8_t *p = NULL;
    size_t pl = 0;
    int rc;

    if ((seg == NULL && len) || codec == NULL || patch == NULL || patch_len == NULL || level < 1 ||
        level > ZSTD_maxCLevel())
        return -EINVAL;
    cctx = ZSTD_createCCtx();
    if (cctx == NULL)
        return -ENOMEM;
    rc = delta_enc_cctx_plain(cctx, level);
    if (rc == 0)
        rc = delta_enc_zstd_run(cctx, len ? seg : (const uint8_t *)"", len, &p, &pl);
    ZSTD_freeCCtx(cctx);
    if (rc)
        return rc;
    if (pl < len) {
        *codec = DELTA_ZSTD;
        *patch = p;
        *patch_len = pl;
        return 0;
    }
    free(p);
    *codec = DELTA_RAW;
    return delta_enc_raw(seg, len, patch, patch_len);
}
