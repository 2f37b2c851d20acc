/*
 * Quectel FILE commands over the UFS API: space (QFLDS), listing (QFLST), deletion (QFDEL),
 * upload (QFUPL: CONNECT, then exactly <file_size> raw bytes, optional 'A' per KiB) and download
 * (QFDWL: CONNECT, the bytes, +QFDWL: <size>,<checksum>). Names are "UFS:<name>" or "<name>".
 * An upload is written through ufs_write and published by one sync at its end: a time-out, an
 * error or a power cut leaves no partial file. Not here: QFOPEN/QFREAD handles, RAM: or SD:
 * storage, and what happens to the package afterwards (the FOTA commands).
 */
#include "firmware/cmd_quectel_file.h"

#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "firmware/modem.h"

#define PORT(ctx)  ((struct modem_port *)(ctx))
#define MODEM(ctx) (PORT(ctx)->m)

#define CMD_QUECTEL_FILE_DEF_SIZE    10240 /* manual: <file_size> default */
#define CMD_QUECTEL_FILE_DEF_TIMEOUT 5     /* manual: <timeout> default, seconds */
#define CMD_QUECTEL_FILE_ACK_EVERY   1024  /* ACK mode: one 'A' per this many bytes received */
#define CMD_QUECTEL_FILE_DWL_CHUNK   (16u << 10)
#define CMD_QUECTEL_FILE_DWL_STEP    (64u << 10)  /* bytes a download queues per loop turn */
#define CMD_QUECTEL_FILE_DWL_QUEUE   (256u << 10) /* ... while the port holds less than this */
#define CMD_QUECTEL_FILE_DWL_RETRY   0.01         /* virtual s before looking again when full */

/* ---- errno to +CME ERROR: the one map of this family ----------------------------------------- */

/*
 * What a UFS error means to the host. Errors with no file-level meaning (-EIO, flash errors)
 * become the failing step's own code (fallback): 409 writing, 410 opening, 411 reading, ...
 */
static const struct {
    int err;
    int code;
} cmd_quectel_file_errmap[] = {
    {ENOENT, CMD_QUECTEL_FILE_E_NOT_FOUND},  {EINVAL, CMD_QUECTEL_FILE_E_NAME},
    {ENAMETOOLONG, CMD_QUECTEL_FILE_E_NAME}, {EEXIST, CMD_QUECTEL_FILE_E_EXISTS},
    {ENFILE, CMD_QUECTEL_FILE_E_MAX_FILES},  {ENOSPC, CMD_QUECTEL_FILE_E_NO_SPACE},
    {ETIMEDOUT, CMD_QUECTEL_FILE_E_TIMEOUT}, {EFBIG, CMD_QUECTEL_FILE_E_TOO_LARGE},
    {EBUSY, CMD_QUECTEL_FILE_E_BUSY},
};

/* +CMEE=2 texts, as the Quectel FILE manuals word them. */
static const struct at_errtext cmd_quectel_file_texts[] = {
    {CMD_QUECTEL_FILE_E_INPUT, "invalid input value"},
    {CMD_QUECTEL_FILE_E_NOT_FOUND, "file not found"},
    {CMD_QUECTEL_FILE_E_NAME, "invalid file name"},
    {CMD_QUECTEL_FILE_E_EXISTS, "file already existed"},
    {CMD_QUECTEL_FILE_E_WRITE, "fail to write the file"},
    {CMD_QUECTEL_FILE_E_OPEN, "fail to open the file"},
    {CMD_QUECTEL_FILE_E_READ, "fail to read the file"},
    {CMD_QUECTEL_FILE_E_MAX_FILES, "reach the max number of file allowed to be opened"},
    {CMD_QUECTEL_FILE_E_LIST, "fail to list the file"},
    {CMD_QUECTEL_FILE_E_DELETE, "fail to delete the file"},
    {CMD_QUECTEL_FILE_E_DISK_INFO, "fail to get disk info"},
    {CMD_QUECTEL_FILE_E_NO_SPACE, "no space"},
    {CMD_QUECTEL_FILE_E_TIMEOUT, "time out"},
    {CMD_QUECTEL_FILE_E_TOO_LARGE, "file too large"},
    {CMD_QUECTEL_FILE_E_PARAM, "invalid parameter"},
    {CMD_QUECTEL_FILE_E_BUSY, "file already opened"},
};

const char *cmd_quectel_file_errtext(int code)
{
    size_t n = sizeof(cmd_quectel_file_texts) / sizeof(cmd_quectel_file_texts[0]);

    return at_errtext_find(cmd_quectel_file_texts, n, code);
}

static int cmd_quectel_file_code(int rc, int fallback)
{
    for (size_t i = 0; i < sizeof(cmd_quectel_file_errmap) / sizeof(cmd_quectel_file_errmap[0]);
         i++)
        if (-rc == cmd_quectel_file_errmap[i].err)
            return cmd_quectel_file_errmap[i].code;
    return fallback;
}

void cmd_quectel_file_checksum(uint16_t *sum, bool *odd, const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        *sum ^= *odd ? buf[i] : (uint16_t)(buf[i] << 8);
        *odd = !*odd;
    }
}

/* ---- names ----------------------------------------------------------------------------------- */

/*
 * The UFS name of a <filename> argument: "UFS:" is optional; any other "XXX:" storage prefix is
 * a storage this module does not have (-ENODEV). With pattern, '*' and '?' are allowed.
 * Returns 0, -EINVAL (not a string, empty, a character no file name may hold), -ENAMETOOLONG
 * (more than UFS_NAME_MAX bytes) or -ENODEV.
 */
static int cmd_quectel_file_name(const struct at_arg *a, bool pattern, char out[UFS_NAME_MAX + 1])
{
    const char *s = a->s;
    size_t len = a->len;
    const char *colon;

    if (a->kind == AT_ARG_OMITTED)
        return -EINVAL;
    if (len >= 4 && strncasecmp(s, "UFS:", 4) == 0) {
        s += 4;
        len -= 4;
    } else if ((colon = memchr(s, ':', len)) != NULL && colon > s) {
        return -ENODEV;
    }
    if (len == 0)
        return -EINVAL;
    if (len > UFS_NAME_MAX)
        return -ENAMETOOLONG;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || strchr("\"\\/:<>|", c))
            return -EINVAL;
        if (!pattern && (c == '*' || c == '?'))
            return -EINVAL;
    }
    memcpy(out, s, len);
    out[len] = 0;
    return 0;
}

/* The +CME ERROR code for a bad <filename>. */
static int cmd_quectel_file_name_code(int rc)
{
    return rc == -ENODEV ? CMD_QUECTEL_FILE_E_PARAM : CMD_QUECTEL_FILE_E_NAME;
}

/* ---- AT+QFLDS -------------------------------------------------------------------------------- */

static int cmd_quectel_file_qflds(struct at_engine *e, const struct at_req *r, void *ctx)
{
    struct modem *m = MODEM(ctx);
    uint64_t free_bytes, total;

    /* UFS is the only storage modtwin models; the exec form reports the same numbers. */
    if (r->form == AT_FORM_SET && !at_arg_is(&r->args[0], "UFS"))
        return CMD_QUECTEL_FILE_E_PARAM;
    if (!m->storage_ok)
        return CMD_QUECTEL_FILE_E_DISK_INFO;
    ufs_space(&m->ufs, &free_bytes, &total);
    at_info(e, "+QFLDS: %" PRIu64 ",%" PRIu64, free_bytes, total);
    return AT_RES_OK;
}

/* ---- AT+QFLST -------------------------------------------------------------------------------- */

struct cmd_quectel_file_lst {
    struct at_engine *e;
    const char *pattern; /* NULL: every file */
    unsigned found;
};

static int cmd_quectel_file_lst_one(void *ctx, const char *name, uint64_t size)
{
    struct cmd_quectel_file_lst *l = ctx;

    /* fnmatch: '*' and '?' as the manuals' <name_pattern>; a plain name matches only itself. */
    if (l->pattern && fnmatch(l->pattern, name, 0) != 0)
        return 0;
    l->found++;
    at_info(l->e, "+QFLST: \"UFS:%s\",%" PRIu64, name, size);
    return 0;
}

static int cmd_quectel_file_qflst(struct at_engine *e, const struct at_req *r, void *ctx)
{
    struct modem *m = MODEM(ctx);
    struct cmd_quectel_file_lst l = {.e = e};
    char pat[UFS_NAME_MAX + 1];
    int rc;

    if (r->form == AT_FORM_SET) {
        rc = cmd_quectel_file_name(&r->args[0], true, pat);
        if (rc)
            return cmd_quectel_file_name_code(rc);
        if (strcmp(pat, "*") != 0)
            l.pattern = pat;
    }
    if (!m->storage_ok)
        return CMD_QUECTEL_FILE_E_LIST;
    ufs_list(&m->ufs, cmd_quectel_file_lst_one, &l);
    /* A plain name that is not there is an error (fwupd relies on it); a wildcard is not. */
    if (l.pattern && !l.found && !strpbrk(pat, "*?"))
        return CMD_QUECTEL_FILE_E_NOT_FOUND;
    return AT_RES_OK;
}

/* ---- AT+QFDEL -------------------------------------------------------------------------------- */

struct cmd_quectel_file_names {
    char name[UFS_MAX_FILES][UFS_NAME_MAX + 1];
    unsigned n;
};

static int cmd_quectel_file_collect(void *ctx, const char *name, uint64_t size)
{
    struct cmd_quectel_file_names *c = ctx;

    (void)size;
    if (c->n < UFS_MAX_FILES)
        snprintf(c->name[c->n++], UFS_NAME_MAX + 1, "%s", name);
    return 0;
}

static int cmd_quectel_file_qfdel(struct at_engine *e, const struct at_req *r, void *ctx)
{
    struct modem *m = MODEM(ctx);
    struct cmd_quectel_file_names *all;
    char name[UFS_NAME_MAX + 1];
    int rc, res = AT_RES_OK;

    (void)e;
    rc = cmd_quectel_file_name(&r->args[0], true, name);
    if (rc)
        return cmd_quectel_file_name_code(rc);
    if (!m->storage_ok)
        return CMD_QUECTEL_FILE_E_DELETE;
    if (strcmp(name, "*") != 0) {
        if (strpbrk(name, "*?"))
            return CMD_QUECTEL_FILE_E_NAME; /* only "*" as a whole means "every file" */
        rc = ufs_remove(&m->ufs, name);
        return rc ? cmd_quectel_file_code(rc, CMD_QUECTEL_FILE_E_DELETE) : AT_RES_OK;
    }
    /* "*": every file; one being written (an upload on the other port) stays and is reported. */
    all = malloc(sizeof(*all));
    if (!all)
        return CMD_QUECTEL_FILE_E_DELETE;
    all->n = 0;
    ufs_list(&m->ufs, cmd_quectel_file_collect, all);
    for (unsigned i = 0; i < all->n; i++) {
        rc = ufs_remove(&m->ufs, all->name[i]);
        if (rc && rc != -ENOENT && res == AT_RES_OK)
            res = cmd_quectel_file_code(rc, CMD_QUECTEL_FILE_E_DELETE);
    }
    free(all);
    return res;
}

/* ---- jobs: an upload or a download in progress ----------------------------------------------- */

/*
 * One running QFUPL or QFDWL of one port. The job lives on the heap from the handler to its end;
 * its timer is always armed while it lives (the upload's time-out, the download's next step), so
 * every job ends in a callback that frees it. A job whose module restarted under it (a power cut,
 * AT+CFUN=1,1 from the other port) finds a new boot count there and only releases itself: the
 * unmount already dropped its UFS writer and the engine it talked to was reset.
 */
struct cmd_quectel_file_job {
    struct modem_port *p;
    uint64_t boots; /* m->boots when the job started */
    char name[UFS_NAME_MAX + 1];
    struct ufs_file fh; /* upload: the writer */
    struct vtimer timer;
    uint64_t size, done;
    double timeout;     /* upload: seconds without data before it ends with 421 */
    bool ack;           /* upload: ACK mode */
    int err;            /* upload: first error (a CME code); the rest of the data is drained */
    double saved_limit; /* upload: the port's rx_limit before */
    uint16_t sum;
    bool odd;
};

static bool cmd_quectel_file_orphan(const struct cmd_quectel_file_job *j)
{
    const struct modem *m = j->p->m;

    return j->boots != m->boots || m->power != MODEM_ON || !m->storage_ok;
}

/* Puts the port's receive pace back and frees the job. */
static void cmd_quectel_file_job_free(struct cmd_quectel_file_job *j, bool restore)
{
    vtimer_stop(&j->timer);
    if (restore) {
        j->p->rx_limit = j->saved_limit;
        modem_port_uart_update(j->p->m, j->p);
    }
    if (j->p->job == j) {
        j->p->job = NULL;
        j->p->job_drop = NULL;
    }
    free(j);
}

/* The port stops with the power: the upload's unsynced bytes are lost, nothing is written. */
static void cmd_quectel_file_job_drop(void *job)
{
    struct cmd_quectel_file_job *j = job;

    ufs_abort(&j->fh); /* -EBADF for a download's unused handle: nothing to drop */
    cmd_quectel_file_job_free(j, false);
}

/* The port owns j from here: a power cut drops it with the port. */
static void cmd_quectel_file_job_attach(struct cmd_quectel_file_job *j)
{
    j->p->job = j;
    j->p->job_drop = cmd_quectel_file_job_drop;
}

/* ---- AT+QFUPL -------------------------------------------------------------------------------- */

/*
 *   handler: checks -> open (created empty, committed) -> CONNECT -> data mode, timer armed
 *   data:    ufs_write each chunk, 'A' per KiB (ACK mode), timer re-armed
 *            all <file_size> bytes in -> sync + close -> "+QFUPL: <size>,<checksum>", OK
 *   timer:   no data for <timeout> s -> abort, remove the file -> +CME ERROR: 421
 *   error:   the first write error is kept, the rest of the data drained, the file removed
 */

/* Drops what an unfinished upload wrote: the handle, then the empty entry it created. */
static void cmd_quectel_file_upl_discard(struct cmd_quectel_file_job *j)
{
    ufs_abort(&j->fh);
    ufs_remove(&j->p->m->ufs, j->name);
}

static int cmd_quectel_file_upl_end(struct cmd_quectel_file_job *j)
{
    struct at_engine *e = &j->p->at;
    int rc, res = j->err;

    if (!res) {
        rc = ufs_close(&j->fh); /* the one sync: the whole file appears at once */
        if (rc) {
            res = cmd_quectel_file_code(rc, CMD_QUECTEL_FILE_E_WRITE);
            ufs_remove(&j->p->m->ufs, j->name);
        }
    } else {
        cmd_quectel_file_upl_discard(j);
    }
    if (!res)
        at_info(e, "+QFUPL: %" PRIu64 ",%x", j->done, j->sum);
    cmd_quectel_file_job_free(j, true);
    return res ? res : AT_RES_OK;
}

static void cmd_quectel_file_upl_timeout(void *ctx)
{
    struct cmd_quectel_file_job *j = ctx;
    struct modem_port *p = j->p;
    struct modem *m = p->m;

    if (cmd_quectel_file_orphan(j)) {
        ufs_abort(&j->fh); /* -EBADF if the unmount already released it */
        cmd_quectel_file_job_free(j, false);
        return;
    }
    cmd_quectel_file_upl_discard(j);
    cmd_quectel_file_job_free(j, true);
    at_data_end(&p->at, CMD_QUECTEL_FILE_E_TIMEOUT);
    modem_flash_event(m);
}

static int cmd_quectel_file_upl_data(void *ctx, const uint8_t *buf, size_t len, bool done)
{
    static const char acks[] = "AAAAAAAAAAAAAAAA";
    struct cmd_quectel_file_job *j = ctx;
    uint64_t n;

    if (!j->err) {
        ssize_t w = ufs_write(&j->fh, buf, len);
        if (w < 0)
            j->err = cmd_quectel_file_code((int)w, CMD_QUECTEL_FILE_E_WRITE);
    }
    cmd_quectel_file_checksum(&j->sum, &j->odd, buf, len);
    n = (j->done + len) / CMD_QUECTEL_FILE_ACK_EVERY - j->done / CMD_QUECTEL_FILE_ACK_EVERY;
    j->done += len;
    /* ACK mode: the host sends the next KiB only after its 'A', so no FIFO overruns. */
    while (j->ack && n) {
        size_t k = n < sizeof(acks) - 1 ? (size_t)n : sizeof(acks) - 1;
        at_raw(&j->p->at, acks, k);
        n -= k;
    }
    if (done)
        return cmd_quectel_file_upl_end(j);
    /* <timeout> counts from the last byte received (BG96 manual: "no data inputted"). */
    vtimer_start(&j->timer, j->p->m->clock, j->timeout, cmd_quectel_file_upl_timeout, j);
    return AT_RES_PENDING;
}

static int cmd_quectel_file_qfupl(struct at_engine *e, const struct at_req *r, void *ctx)
{
    struct modem_port *p = PORT(ctx);
    struct modem *m = p->m;
    struct cmd_quectel_file_job *j;
    struct ufs_stat st;
    uint64_t size = CMD_QUECTEL_FILE_DEF_SIZE, free_bytes, total, need;
    long timeout = CMD_QUECTEL_FILE_DEF_TIMEOUT, ack = 0;
    char name[UFS_NAME_MAX + 1];
    int rc;

    rc = cmd_quectel_file_name(&r->args[0], false, name);
    if (rc)
        return cmd_quectel_file_name_code(rc);
    if (r->nargs > 1 && r->args[1].kind != AT_ARG_OMITTED &&
        at_arg_uint64(&r->args[1], 1, UINT32_MAX, &size))
        return CMD_QUECTEL_FILE_E_INPUT;
    if (r->nargs > 2 && r->args[2].kind != AT_ARG_OMITTED &&
        at_arg_int(&r->args[2], 1, 65535, &timeout))
        return CMD_QUECTEL_FILE_E_INPUT;
    if (r->nargs > 3 && r->args[3].kind != AT_ARG_OMITTED && at_arg_int(&r->args[3], 0, 1, &ack))
        return CMD_QUECTEL_FILE_E_INPUT;
    if (!m->storage_ok)
        return CMD_QUECTEL_FILE_E_OPEN;
    /*
     * An existing file is not overwritten (407; fwupd deletes its old package first). An empty
     * one is what a power cut during an upload leaves (the entry is committed at open, the data
     * only by the final sync; QFUPL never makes an empty file itself): it is replaced.
     */
    if (ufs_stat(&m->ufs, name, &st) == 0) {
        if (st.size)
            return CMD_QUECTEL_FILE_E_EXISTS;
        rc = ufs_remove(&m->ufs, name);
        if (rc)
            return cmd_quectel_file_code(rc, CMD_QUECTEL_FILE_E_OPEN);
    }
    /* Checked before CONNECT so a host never sends a package that cannot fit; the space is
     * counted in whole UFS blocks, as ufs_write allocates it. */
    ufs_space(&m->ufs, &free_bytes, &total);
    need = (size + UFS_BLOCK - 1) / UFS_BLOCK * UFS_BLOCK;
    if (need > total)
        return CMD_QUECTEL_FILE_E_TOO_LARGE;
    if (need > free_bytes)
        return CMD_QUECTEL_FILE_E_NO_SPACE;
    j = calloc(1, sizeof(*j));
    if (!j)
        return CMD_QUECTEL_FILE_E_OPEN;
    rc = ufs_open(&m->ufs, &j->fh, name, UFS_WRONLY | UFS_CREAT | UFS_TRUNC);
    if (rc) {
        free(j);
        return cmd_quectel_file_code(rc, CMD_QUECTEL_FILE_E_OPEN);
    }
    j->p = p;
    j->boots = m->boots;
    snprintf(j->name, sizeof(j->name), "%s", name);
    j->size = size;
    j->timeout = (double)timeout;
    j->ack = ack == 1;
    /* Without flow control the module takes file data at its own pace (seed 002: ~15 KB/s). */
    j->saved_limit = p->rx_limit;
    if (!modem_port_flow(m, p)) {
        p->rx_limit = MODEM_NOFLOW_RX_LIMIT;
        modem_port_uart_update(m, p);
    }
    /* CONNECT on its own line (V.250 code 1 under ATV0); bytes sent before it are lost. */
    at_raw(e, e->verbose ? "\r\nCONNECT\r\n" : "1\r", e->verbose ? 11 : 2);
    at_data_begin(e, (size_t)size, cmd_quectel_file_upl_data, j);
    vtimer_start(&j->timer, m->clock, j->timeout, cmd_quectel_file_upl_timeout, j);
    cmd_quectel_file_job_attach(j);
    return AT_RES_PENDING;
}

/* ---- AT+QFDWL -------------------------------------------------------------------------------- */

/*
 *   handler: stat -> CONNECT -> step
 *   step:    queue up to 64 KiB while the port holds < 256 KiB; the rest on the next timer
 *   end:     "\r\n+QFDWL: <size>,<checksum>\r\n", OK; a read failure ends it with 411
 */

/* Queues what the port has room for; returns AT_RES_PENDING while bytes remain, else a result. */
static int cmd_quectel_file_dwl_step(struct cmd_quectel_file_job *j)
{
    struct modem_port *p = j->p;
    uint8_t buf[CMD_QUECTEL_FILE_DWL_CHUNK];
    size_t queued = 0;
    char line[64];
    int n;

    while (j->done < j->size && queued < CMD_QUECTEL_FILE_DWL_STEP &&
           p->pty.out_len < CMD_QUECTEL_FILE_DWL_QUEUE) {
        uint64_t left = j->size - j->done;
        /* By name, not by handle: a file removed meanwhile reads -ENOENT and ends it. */
        ssize_t got = ufs_pread(&p->m->ufs, j->name, j->done, buf,
                                left < sizeof(buf) ? (size_t)left : sizeof(buf));
        if (got <= 0)
            return CMD_QUECTEL_FILE_E_READ; /* removed or shrunk on the other port */
        at_raw(&p->at, buf, (size_t)got);
        cmd_quectel_file_checksum(&j->sum, &j->odd, buf, (size_t)got);
        j->done += (uint64_t)got;
        queued += (size_t)got;
    }
    if (j->done < j->size)
        return AT_RES_PENDING;
    n = snprintf(line, sizeof(line), "\r\n+QFDWL: %" PRIu64 ",%x\r\n", j->done, j->sum);
    at_raw(&p->at, line, (size_t)n);
    return AT_RES_OK;
}

static void cmd_quectel_file_dwl_tick(void *ctx)
{
    struct cmd_quectel_file_job *j = ctx;
    struct at_engine *e = &j->p->at;
    int res;

    if (cmd_quectel_file_orphan(j)) {
        cmd_quectel_file_job_free(j, false);
        return;
    }
    res = cmd_quectel_file_dwl_step(j);
    if (res == AT_RES_PENDING) {
        vtimer_start(&j->timer, j->p->m->clock,
                     j->p->pty.out_len < CMD_QUECTEL_FILE_DWL_QUEUE ? 0
                                                                    : CMD_QUECTEL_FILE_DWL_RETRY,
                     cmd_quectel_file_dwl_tick, j);
        return;
    }
    cmd_quectel_file_job_free(j, false);
    at_finish(e, res);
}

static int cmd_quectel_file_qfdwl(struct at_engine *e, const struct at_req *r, void *ctx)
{
    struct modem_port *p = PORT(ctx);
    struct modem *m = p->m;
    struct cmd_quectel_file_job *j;
    struct ufs_stat st;
    char name[UFS_NAME_MAX + 1];
    int rc, res;

    rc = cmd_quectel_file_name(&r->args[0], false, name);
    if (rc)
        return cmd_quectel_file_name_code(rc);
    if (!m->storage_ok)
        return CMD_QUECTEL_FILE_E_OPEN;
    rc = ufs_stat(&m->ufs, name, &st);
    if (rc)
        return cmd_quectel_file_code(rc, CMD_QUECTEL_FILE_E_OPEN);
    j = calloc(1, sizeof(*j));
    if (!j)
        return CMD_QUECTEL_FILE_E_OPEN;
    j->p = p;
    j->boots = m->boots;
    snprintf(j->name, sizeof(j->name), "%s", name);
    j->size = st.size;
    at_raw(e, e->verbose ? "\r\nCONNECT\r\n" : "1\r", e->verbose ? 11 : 2);
    res = cmd_quectel_file_dwl_step(j);
    if (res != AT_RES_PENDING) {
        free(j);
        return res;
    }
    vtimer_start(&j->timer, m->clock, 0, cmd_quectel_file_dwl_tick, j);
    cmd_quectel_file_job_attach(j);
    return AT_RES_PENDING;
}

/* ---- table ----------------------------------------------------------------------------------- */

/* Sorted by name (strcmp). Test forms as Quectel's manuals print them. */
static const struct at_cmd cmd_quectel_file_cmds[] = {
    {"+QFDEL", AT_F_SET, 1, 1, "+QFDEL: <filename>", cmd_quectel_file_qfdel},
    {"+QFDWL", AT_F_SET, 1, 1, "+QFDWL: <filename>", cmd_quectel_file_qfdwl},
    {"+QFLDS", AT_F_EXEC | AT_F_SET, 1, 1, NULL, cmd_quectel_file_qflds},
    {"+QFLST", AT_F_EXEC | AT_F_SET, 1, 1, NULL, cmd_quectel_file_qflst},
    {"+QFUPL", AT_F_SET, 1, 4, "+QFUPL: <filename>[,(1-<freesize>)[,(1-65535)[,(0,1)]]]",
     cmd_quectel_file_qfupl},
};

const struct at_table cmd_quectel_file_table = {
    "quectel_file",
    cmd_quectel_file_cmds,
    sizeof(cmd_quectel_file_cmds) / sizeof(cmd_quectel_file_cmds[0]),
};
