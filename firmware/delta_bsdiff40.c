/*
 * delta_bsdiff40.c: a streaming reader of BSDIFF40 patches (the format Debian's bsdiff writes)
 * over libbz2. The patch is read through delta_read_fn in bounded chunks, the target comes out
 * in order in any chunk sizes, and every header field, control triple and stream end is
 * checked (input is hostile). RAM: this struct (three 16 KiB input buffers) plus three bzip2
 * decoders in small mode (about 2.3 MiB each for 900k blocks, counted through our allocator).
 * Not here: the native segment codecs (delta.c) and writing the target to flash.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <bzlib.h>

#include "firmware/delta.h"

#define DELTA_BSPATCH_HDR    32u
#define DELTA_BSPATCH_CHUNK  16384u /* compressed bytes read per rd() call, per stream */
#define DELTA_BSPATCH_TRIPLE 24u
/* Control triples that produce nothing, in a row: bsdiff never writes two; bounds hostile work. */
#define DELTA_BSPATCH_EMPTY_MAX 16u

enum { DELTA_BSPATCH_CTRL, DELTA_BSPATCH_DIFF, DELTA_BSPATCH_EXTRA, DELTA_BSPATCH_NSTREAMS };

/* One bzip2 stream of the patch: [off, end) still to be fed, and the decoder. */
struct delta_bspatch_stream {
    bz_stream bz;
    uint64_t off, end;
    bool live;  /* BZ2_bzDecompressInit done */
    bool ended; /* BZ_STREAM_END seen */
    uint8_t in[DELTA_BSPATCH_CHUNK];
};

struct delta_bspatch {
    delta_read_fn *rd;
    void *ctx;
    const uint8_t *src;
    size_t src_len;
    uint64_t new_size, done; /* target bytes produced so far */
    uint64_t add_left, copy_left;
    uint64_t sp;      /* source position of the next add byte, always in [0, src_len] */
    uint64_t sp_next; /* where sp goes once the current triple is finished */
    unsigned empty_run;
    bool failed;
    size_t bz_now, bz_peak; /* bytes bzip2 holds now / at most, through delta_bspatch_alloc */
    struct delta_bspatch_stream s[DELTA_BSPATCH_NSTREAMS];
};

/* bzip2's allocator hooks: a size header in front of each block so the RAM can be reported. */
static void *delta_bspatch_alloc(void *opaque, int items, int size)
{
    struct delta_bspatch *b = opaque;
    size_t n;
    size_t *p;

    if (items < 0 || size < 0 || (size && (size_t)items > (SIZE_MAX - 16) / (size_t)size))
        return NULL;
    n = (size_t)items * (size_t)size;
    p = malloc(n + 16);
    if (p == NULL)
        return NULL;
    p[0] = n;
    b->bz_now += n;
    if (b->bz_now > b->bz_peak)
        b->bz_peak = b->bz_now;
    return (uint8_t *)p + 16;
}

static void delta_bspatch_free_hook(void *opaque, void *ptr)
{
    struct delta_bspatch *b = opaque;
    size_t *p;

    if (ptr == NULL)
        return;
    p = (size_t *)(void *)((uint8_t *)ptr - 16);
    b->bz_now -= p[0];
    free(p);
}

/* bsdiff's "offtin": 63-bit magnitude little-endian, sign in the top bit of the last byte. */
static void delta_bspatch_offtin(const uint8_t *p, uint64_t *mag, bool *neg)
{
    uint64_t x = 0;

    for (int i = 7; i >= 0; i--)
        x = x << 8 | p[i];
    *neg = (x >> 63) != 0 && (x << 1) != 0; /* "-0" reads as 0, as bspatch does */
    *mag = x & ~(UINT64_C(1) << 63);
}

/*
 * Refills a stream's input buffer from the patch when bzip2 has used it up (bzip2 may still
 * hold output of a decoded block when its input is empty, so running dry is not an error here).
 */
static int delta_bspatch_feed(struct delta_bspatch *b, struct delta_bspatch_stream *s)
{
    uint64_t n = s->end - s->off;
    int rc;

    if (s->bz.avail_in != 0 || n == 0)
        return 0;
    if (n > DELTA_BSPATCH_CHUNK)
        n = DELTA_BSPATCH_CHUNK;
    rc = b->rd(b->ctx, s->off, s->in, (size_t)n);
    if (rc)
        return rc < 0 ? rc : -EIO;
    s->off += n;
    s->bz.next_in = (char *)s->in;
    s->bz.avail_in = (unsigned)n;
    return 0;
}

/*
 * Decompresses exactly len bytes of stream i into dst. 0, -EBADMSG (corrupt, truncated, or
 * the stream ended early) or the reader's error.
 */
static int delta_bspatch_pull(struct delta_bspatch *b, int i, uint8_t *dst, size_t len)
{
    struct delta_bspatch_stream *s = &b->s[i];

    while (len > 0) {
        unsigned want = len > (1u << 30) ? (1u << 30) : (unsigned)len, in;
        int rc;

        if (s->ended)
            return -EBADMSG; /* the stream holds fewer bytes than the control says */
        rc = delta_bspatch_feed(b, s);
        if (rc)
            return rc;
        s->bz.next_out = (char *)dst;
        s->bz.avail_out = want;
        in = s->bz.avail_in;
        rc = BZ2_bzDecompress(&s->bz);
        if (rc != BZ_OK && rc != BZ_STREAM_END)
            return -EBADMSG;
        if (rc == BZ_STREAM_END)
            s->ended = true;
        else if (s->bz.avail_out == want && s->bz.avail_in == in)
            return -EBADMSG; /* no progress: the input is used up, the stream truncated */
        len -= want - s->bz.avail_out;
        dst += want - s->bz.avail_out;
    }
    return 0;
}

/* At the end of the target: every stream must be at its end, with no byte left over. */
static int delta_bspatch_finish(struct delta_bspatch *b)
{
    for (int i = 0; i < DELTA_BSPATCH_NSTREAMS; i++) {
        struct delta_bspatch_stream *s = &b->s[i];
        uint8_t probe;

        /* the stream may still hold its end marker: it must end without another byte */
        while (!s->ended) {
            int rc = delta_bspatch_feed(b, s);

            if (rc)
                return rc;
            unsigned in = s->bz.avail_in;

            s->bz.next_out = (char *)&probe;
            s->bz.avail_out = 1;
            rc = BZ2_bzDecompress(&s->bz);
            if ((rc != BZ_OK && rc != BZ_STREAM_END) || s->bz.avail_out == 0)
                return -EBADMSG; /* corrupt, or more data than the control used */
            if (rc == BZ_OK && s->bz.avail_in == in)
                return -EBADMSG; /* truncated */
            s->ended = rc == BZ_STREAM_END;
        }
        if (s->bz.avail_in != 0 || s->off != s->end)
            return -EBADMSG; /* trailing bytes after the bzip2 stream */
    }
    return 0;
}

/* Reads and checks the next control triple; sets add_left, copy_left and sp_next. */
static int delta_bspatch_triple(struct delta_bspatch *b)
{
    uint8_t t[DELTA_BSPATCH_TRIPLE];
    uint64_t x, y, z, left = b->new_size - b->done, at;
    bool xn, yn, zn;
    int rc = delta_bspatch_pull(b, DELTA_BSPATCH_CTRL, t, sizeof(t));

    if (rc)
        return rc;
    delta_bspatch_offtin(t, &x, &xn);
    delta_bspatch_offtin(t + 8, &y, &yn);
    delta_bspatch_offtin(t + 16, &z, &zn);
    if (xn || yn || x > left || y > left - x)
        return -EBADMSG; /* negative length or beyond new_size */
    if (x > b->src_len - b->sp)
        return -EBADMSG; /* add bytes outside the source */
    at = b->sp + x;
    if (zn ? z > at : z > b->src_len - at)
        return -EBADMSG; /* seek outside the source */
    if (x == 0 && y == 0 && ++b->empty_run > DELTA_BSPATCH_EMPTY_MAX)
        return -EBADMSG;
    if (x || y)
        b->empty_run = 0;
    b->add_left = x;
    b->copy_left = y;
    b->sp_next = zn ? at - z : at + z;
    return 0;
}

/*
 * The control state machine: a triple is read only when the previous one is used up, an add
 * run pulls diff bytes into out and adds the source under them, a copy run pulls extra bytes,
 * and the seek is applied once both runs are done. Runs may span any number of calls.
 */
int delta_bspatch_read(struct delta_bspatch *b, uint8_t *out, size_t len)
{
    int rc;

    if (b == NULL || (out == NULL && len))
        return -EINVAL;
    if (b->failed)
        return -EBADMSG;
    if (len > b->new_size - b->done)
        return -EINVAL; /* the caller asks beyond new_size: its error, the reader stays usable */

    while (len > 0) {
        size_t n;

        if (b->add_left == 0 && b->copy_left == 0) {
            /* previous triple done: the next one (an empty one only moves sp) */
            rc = delta_bspatch_triple(b);
            if (rc)
                goto fail;
            if (b->add_left == 0 && b->copy_left == 0) {
                b->sp = b->sp_next;
                continue;
            }
        }
        if (b->add_left) {
            /* diff bytes straight into out, then the source bytes added */
            n = b->add_left < len ? (size_t)b->add_left : len;
            rc = delta_bspatch_pull(b, DELTA_BSPATCH_DIFF, out, n);
            if (rc)
                goto fail;
            for (size_t k = 0; k < n; k++)
                out[k] = (uint8_t)(out[k] + b->src[b->sp + k]);
            b->sp += n;
            b->add_left -= n;
        } else {
            n = b->copy_left < len ? (size_t)b->copy_left : len;
            rc = delta_bspatch_pull(b, DELTA_BSPATCH_EXTRA, out, n);
            if (rc)
                goto fail;
            b->copy_left -= n;
        }
        out += n;
        len -= n;
        b->done += n;
        if (b->add_left == 0 && b->copy_left == 0)
            b->sp = b->sp_next;
    }
    if (b->done == b->new_size && b->add_left == 0 && b->copy_left == 0) {
        rc = delta_bspatch_finish(b);
        if (rc)
            goto fail;
    }
    return 0;
fail:
    b->failed = true;
    return rc == -EBADMSG ? rc : (rc < 0 ? rc : -EBADMSG);
}

/*
 * Header checks only need the 32 bytes; the three streams are located by the two lengths and
 * the patch length, and their decoders are set up now so the first read cannot fail on memory.
 */
int delta_bspatch_open(struct delta_bspatch **out, delta_read_fn *rd, void *ctx, uint64_t patch_len,
                       const struct delta_src *src, uint64_t *new_size)
{
    uint8_t h[DELTA_BSPATCH_HDR];
    uint64_t clen, dlen, nsize;
    bool cn, dn, nn;
    struct delta_bspatch *b;
    int rc;

    if (out == NULL || rd == NULL || src == NULL || new_size == NULL ||
        (src->base == NULL && src->len))
        return -EINVAL;
    *out = NULL;
    if (patch_len < DELTA_BSPATCH_HDR)
        return -EBADMSG;
    rc = rd(ctx, 0, h, sizeof(h));
    if (rc)
        return rc < 0 ? rc : -EIO;
    if (memcmp(h, "BSDIFF40", 8) != 0)
        return -EBADMSG;
    delta_bspatch_offtin(h + 8, &clen, &cn);
    delta_bspatch_offtin(h + 16, &dlen, &dn);
    delta_bspatch_offtin(h + 24, &nsize, &nn);
    /* lengths non-negative, and ctrl + diff must fit in what follows the header */
    if (cn || dn || nn || clen > patch_len - DELTA_BSPATCH_HDR ||
        dlen > patch_len - DELTA_BSPATCH_HDR - clen)
        return -EBADMSG;

    b = calloc(1, sizeof(*b));
    if (b == NULL)
        return -ENOMEM;
    b->rd = rd;
    b->ctx = ctx;
    b->src = src->base;
    b->src_len = src->len;
    b->new_size = nsize;
    b->s[DELTA_BSPATCH_CTRL].off = DELTA_BSPATCH_HDR;
    b->s[DELTA_BSPATCH_CTRL].end = DELTA_BSPATCH_HDR + clen;
    b->s[DELTA_BSPATCH_DIFF].off = DELTA_BSPATCH_HDR + clen;
    b->s[DELTA_BSPATCH_DIFF].end = DELTA_BSPATCH_HDR + clen + dlen;
    b->s[DELTA_BSPATCH_EXTRA].off = DELTA_BSPATCH_HDR + clen + dlen;
    b->s[DELTA_BSPATCH_EXTRA].end = patch_len;
    for (int i = 0; i < DELTA_BSPATCH_NSTREAMS; i++) {
        struct delta_bspatch_stream *s = &b->s[i];

        s->bz.bzalloc = delta_bspatch_alloc;
        s->bz.bzfree = delta_bspatch_free_hook;
        s->bz.opaque = b;
        /* small = 1: half the RAM of the fast mode, at about half the speed */
        rc = BZ2_bzDecompressInit(&s->bz, 0, 1);
        if (rc != BZ_OK) {
            delta_bspatch_close(b);
            return rc == BZ_MEM_ERROR ? -ENOMEM : -EINVAL;
        }
        s->live = true;
    }
    /* An empty target must still have well-formed, exactly consumed streams. */
    if (nsize == 0) {
        rc = delta_bspatch_finish(b);
        if (rc) {
            delta_bspatch_close(b);
            return rc;
        }
    }
    *out = b;
    *new_size = nsize;
    return 0;
}

size_t delta_bspatch_ram(const struct delta_bspatch *b)
{
    if (b == NULL)
        return 0;
    /* bzip2 allocates its block arrays on the first block header, so peak, not now */
    return sizeof(*b) + b->bz_peak + DELTA_BSPATCH_NSTREAMS * 16;
}

void delta_bspatch_close(struct delta_bspatch *b)
{
    if (b == NULL)
        return;
    for (int i = 0; i < DELTA_BSPATCH_NSTREAMS; i++)
        if (b->s[i].live)
            BZ2_bzDecompressEnd(&b->s[i].bz);
    free(b);
}
