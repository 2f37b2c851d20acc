/*
 * AT engine: bytes in, framed responses out, for one port.
 *
 *   host bytes -> [data mode? -> sink] -> line assembly (echo, BS, A/, limit)
 *              -> at_parse_line -> for each command: lookup, form and arity check, handler
 *              -> final result (OK / ERROR / +CME ERROR) -> held URCs -> held input
 *
 * A line runs to its end synchronously unless a handler returns AT_RES_PENDING (a transfer, a data
 * mode, a timer); then the engine is busy: input is held in a backlog and URCs in a queue until
 * at_finish() completes the command and the rest of the line. Not here: any command's meaning.
 */
#include "firmware/at_engine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void at_write(struct at_engine *e, const void *buf, size_t len)
{
    e->cfg.write(e->cfg.write_ctx, buf, len);
}

static void at_puts(struct at_engine *e, const char *s)
{
    at_write(e, s, strlen(s));
}

void at_defaults(struct at_engine *e)
{
    e->echo = e->cfg.echo_default;
    e->verbose = true;
    e->quiet = false;
    e->s3 = '\r';
    e->s4 = '\n';
    e->s5 = '\b';
}

void at_init(struct at_engine *e, const struct at_engine_cfg *cfg)
{
    memset(e, 0, sizeof(*e));
    e->cfg = *cfg;
    at_defaults(e);
}

void at_release(struct at_engine *e)
{
    free(e->urc);
    e->urc = NULL;
    e->urc_len = e->urc_cap = 0;
}

/* ---- output framing ---------------------------------------------------------------------- */

void at_vinfo(struct at_engine *e, const char *fmt, va_list ap)
{
    char buf[AT_LINE_MAX + 256];
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);

    if (n < 0)
        return;
    if ((size_t)n >= sizeof(buf))
        n = sizeof(buf) - 1;
    /* V1 frames the block with a leading <CR><LF>; every line ends with one. */
    if (e->verbose && !e->info_started)
        at_puts(e, "\r\n");
    e->info_started = true;
    at_write(e, buf, (size_t)n);
    at_puts(e, "\r\n");
}

void at_info(struct at_engine *e, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    at_vinfo(e, fmt, ap);
    va_end(ap);
}

void at_raw(struct at_engine *e, const void *buf, size_t len)
{
    at_write(e, buf, len);
}

void at_result(struct at_engine *e, int result)
{
    char buf[160];
    const char *text;
    int cmee = e->cfg.cmee ? *e->cfg.cmee : 0;

    if (result == AT_RES_SILENT || result == AT_RES_PENDING)
        return;
    if (result != AT_RES_OK)
        e->errors++;
    if (e->quiet)
        return;
    if (result > 0 && cmee == 0)
        result = AT_RES_ERROR;
    if (result == AT_RES_OK) {
        at_puts(e, e->verbose ? "\r\nOK\r\n" : "0\r");
        return;
    }
    if (result < 0) {
        at_puts(e, e->verbose ? "\r\nERROR\r\n" : "4\r");
        return;
    }
    text = cmee == 2 && e->cfg.errtext ? e->cfg.errtext(e->cfg.errtext_ctx, result) : NULL;
    if (text)
        snprintf(buf, sizeof(buf), "%s+CME ERROR: %s\r\n", e->verbose ? "\r\n" : "", text);
    else
        snprintf(buf, sizeof(buf), "%s+CME ERROR: %d\r\n", e->verbose ? "\r\n" : "", result);
    at_puts(e, buf);
}

static void at_urc_hold(struct at_engine *e, const char *buf, size_t len)
{
    if (e->urc_len + len > AT_URC_MAX) {
        e->urc_dropped++;
        return;
    }
    if (e->urc_len + len > e->urc_cap) {
        size_t cap = e->urc_cap ? e->urc_cap : 1024;
        char *n;
        while (cap < e->urc_len + len)
            cap *= 2;
        n = realloc(e->urc, cap);
        if (!n) {
            e->urc_dropped++;
            return;
        }
        e->urc = n;
        e->urc_cap = cap;
    }
    memcpy(e->urc + e->urc_len, buf, len);
    e->urc_len += len;
}

void at_urc(struct at_engine *e, const char *fmt, ...)
{
    char buf[AT_LINE_MAX + 8];
    va_list ap;
    int n;
    size_t pre = e->verbose ? 2 : 0;

    memcpy(buf, "\r\n", 2);
    va_start(ap, fmt);
    n = vsnprintf(buf + pre, sizeof(buf) - pre - 2, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(buf) - pre - 3)
        n = (int)(sizeof(buf) - pre - 3);
    memcpy(buf + pre + (size_t)n, "\r\n", 2);
    /* A URC never cuts into a response or into a data transfer (but a stream may carry them). */
    if (e->busy || (e->data && !e->data_urcs))
        at_urc_hold(e, buf, pre + (size_t)n + 2);
    else
        at_write(e, buf, pre + (size_t)n + 2);
}

/* ---- dispatch ------------------------------------------------------------------------------ */

static const struct at_cmd *at_table_find(const struct at_table *t, const char *name)
{
    size_t lo = 0, hi = t->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, t->cmds[mid].name);
        if (c == 0)
            return &t->cmds[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const struct at_cmd *at_lookup(const struct at_engine *e, const char *name)
{
    for (size_t i = 0; i < e->cfg.ntables; i++) {
        const struct at_cmd *c = at_table_find(e->cfg.tables[i], name);
        if (c)
            return c;
    }
    return NULL;
}

int at_table_check(const struct at_table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        const struct at_cmd *c = &t->cmds[i];
        if (!c->name || !c->forms || c->min_args > c->max_args)
            return -EINVAL;
        if (c->max_args > AT_PARSE_MAX_ARGS || !c->fn)
            return -EINVAL;
        for (const char *p = c->name; *p; p++)
            if (*p >= 'a' && *p <= 'z')
                return -EINVAL;
        if (i && strcmp(t->cmds[i - 1].name, c->name) >= 0)
            return -EINVAL;
    }
    return 0;
}

/* Checks form and arity, then runs the handler. */
static int at_dispatch(struct at_engine *e, const struct at_req *r)
{
    const struct at_cmd *c = at_lookup(e, r->name);

    if (!c)
        return AT_RES_ERROR;
    if (r->form == AT_FORM_TEST && !r->basic) {
        if (c->test) {
            at_info(e, "%s", c->test);
            return AT_RES_OK;
        }
        if (!(c->forms & AT_F_TEST))
            return AT_RES_OK;
    }
    if (!(c->forms & (1u << r->form)))
        return AT_RES_ERROR;
    if (r->form == AT_FORM_SET && (r->nargs < c->min_args || r->nargs > c->max_args))
        return AT_CME_BAD_PARAM;
    return c->fn(e, r, e->cfg.handler_ctx);
}

static void at_input_backlog(struct at_engine *e);

static void at_end_line(struct at_engine *e)
{
    e->busy = false;
    if (e->urc_len) {
        size_t n = e->urc_len;
        e->urc_len = 0;
        at_write(e, e->urc, n);
    }
    at_input_backlog(e);
}

/* Runs the parsed line from e->next on until it ends or a command pends. */
static void at_run(struct at_engine *e)
{
    while (e->next < e->parsed.n) {
        int res;

        e->info_started = false;
        e->running = true;
        res = at_dispatch(e, &e->parsed.reqs[e->next]);
        e->running = false;
        if (e->has_deferred) {
            e->has_deferred = false;
            res = e->deferred;
        }
        if (res == AT_RES_PENDING)
            return;
        e->next++;
        if (res != AT_RES_OK) {
            at_result(e, res);
            at_end_line(e);
            return;
        }
    }
    at_result(e, AT_RES_OK);
    at_end_line(e);
}

void at_finish(struct at_engine *e, int result)
{
    if (e->running) {
        /* Finished from inside its own handler: at_run picks the result up. */
        e->deferred = result;
        e->has_deferred = true;
        return;
    }
    if (!e->busy || result == AT_RES_PENDING)
        return;
    e->next++;
    if (result != AT_RES_OK) {
        at_result(e, result);
        at_end_line(e);
        return;
    }
    at_run(e);
}

static void at_exec_line(struct at_engine *e, const char *line, size_t len)
{
    int rc;

    e->lines++;
    e->busy = true;
    e->next = 0;
    rc = at_parse_line(line, len, &e->parsed);
    if (rc) {
        at_result(e, AT_RES_ERROR);
        at_end_line(e);
        return;
    }
    at_run(e);
}

/* ---- data mode ----------------------------------------------------------------------------- */

void at_data_begin(struct at_engine *e, size_t want, at_data_fn *fn, void *ctx)
{
    e->dropped += e->backlog_len;
    e->backlog_len = 0;
    e->data = true;
    e->data_urcs = false;
    e->data_want = want;
    e->data_got = 0;
    e->data_fn = fn;
    e->data_ctx = ctx;
}

void at_stream_begin(struct at_engine *e, size_t want, at_data_fn *fn, void *ctx)
{
    at_data_begin(e, want, fn, ctx);
    e->data_urcs = true;
}

void at_data_end(struct at_engine *e, int result)
{
    if (!e->data)
        return;
    e->data = false;
    if (e->busy) {
        at_finish(e, result);
        return;
    }
    /* A stream after its command's final result: URCs held meanwhile go out now. */
    if (e->urc_len) {
        size_t n = e->urc_len;
        e->urc_len = 0;
        at_write(e, e->urc, n);
    }
}

/* Feeds data-mode bytes; returns how many of buf it took. */
static size_t at_data_feed(struct at_engine *e, const uint8_t *buf, size_t len)
{
    size_t take = e->data_want - e->data_got;
    int res;

    if (take > len)
        take = len;
    e->data_got += take;
    res = e->data_fn(e->data_ctx, buf, take, e->data_got == e->data_want);
    if (res != AT_RES_PENDING)
        at_data_end(e, res);
    else if (e->data_got == e->data_want)
        at_data_end(e, AT_RES_ERROR); /* a sink must conclude at the end */
    return take;
}

/* ---- line assembly ------------------------------------------------------------------------- */

static void at_hold_input(struct at_engine *e, const uint8_t *buf, size_t len)
{
    size_t room = sizeof(e->backlog) - e->backlog_len;

    if (len > room)
        len = room; /* a host that floods a busy module loses bytes, as on a UART */
    memcpy(e->backlog + e->backlog_len, buf, len);
    e->backlog_len += len;
}

static void at_input_backlog(struct at_engine *e)
{
    uint8_t buf[AT_BACKLOG_MAX];
    size_t n = e->backlog_len;

    if (!n)
        return;
    memcpy(buf, e->backlog, n);
    e->backlog_len = 0;
    at_input(e, buf, n);
}

void at_input(struct at_engine *e, const uint8_t *buf, size_t len)
{
    size_t i = 0, echo_from = 0;

    while (i < len) {
        uint8_t c;

        if (e->data) {
            if (e->echo && i > echo_from)
                at_write(e, buf + echo_from, i - echo_from);
            i += at_data_feed(e, buf + i, len - i);
            echo_from = i;
            continue;
        }
        if (e->busy) {
            if (e->echo && i > echo_from)
                at_write(e, buf + echo_from, i - echo_from);
            at_hold_input(e, buf + i, len - i);
            return;
        }
        c = buf[i++];
        switch (e->ls) {
        case AT_LS_IDLE:
            /* V.250: whatever precedes "AT" is ignored. */
            if (c == 'A' || c == 'a')
                e->ls = AT_LS_A;
            break;
        case AT_LS_A:
            if (c == 'T' || c == 't') {
                e->ls = AT_LS_LINE;
                e->line[0] = 'A';
                e->line[1] = (char)c;
                e->len = 2;
                e->too_long = false;
            } else if (c == '/') {
                /* A/ repeats the last line at once, without <CR>. */
                e->ls = AT_LS_IDLE;
                if (e->echo)
                    at_write(e, buf + echo_from, i - echo_from);
                echo_from = i;
                if (e->last_len)
                    at_exec_line(e, e->last, e->last_len);
            } else if (c != 'A' && c != 'a') {
                e->ls = AT_LS_IDLE;
            }
            break;
        case AT_LS_LINE:
            if (c == e->s3) {
                e->ls = AT_LS_IDLE;
                if (e->echo)
                    at_write(e, buf + echo_from, i - echo_from);
                echo_from = i;
                if (e->too_long) {
                    e->busy = true;
                    at_result(e, AT_RES_ERROR);
                    at_end_line(e);
                    break;
                }
                memcpy(e->last, e->line, e->len);
                e->last_len = e->len;
                at_exec_line(e, e->line, e->len);
                if (e->data) {
                    /* Whatever came in before the prompt went out is lost, as on a module
                     * whose UART driver flushes when it enters data mode. */
                    e->dropped += len - i;
                    i = echo_from = len;
                }
            } else if (c == e->s5 || c == 0x7f) {
                if (e->len > 2)
                    e->len--;
            } else if (c == e->s4) {
                /* A line feed is not part of a command line. */
            } else if (e->len < sizeof(e->line)) {
                e->line[e->len++] = (char)c;
            } else {
                e->too_long = true;
            }
            break;
        }
    }
    if (e->echo && !e->data && i > echo_from)
        at_write(e, buf + echo_from, i - echo_from);
}

const char *at_errtext_find(const struct at_errtext *t, size_t n, int code)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].code == code)
            return t[i].text;
    return NULL;
}
