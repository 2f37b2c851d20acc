/*
 * AT+QFOTADL syntax (seed 002 section 3.3.1, seed 004 sections 2.2 and 3.2). Everything the
 * command line can be wrong about answers ERROR at once, as the documents say; what only the
 * server or the package can be wrong about comes later as a URC code. The job itself is
 * firmware/quectel_fota.c, or on MiniFOTA builds firmware/quectel_minifota.c (the flow itself and
 * the checks of its packages are there; the suffix check of the URL is here).
 */
#include "firmware/cmd_quectel_fota.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "firmware/modem.h"
#include "firmware/quectel_fota.h"

#define PORT(ctx) ((struct modem_port *)(ctx))

/* ---- URL forms ------------------------------------------------------------------------------- */

static bool cmd_quectel_fota_prefix(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/*
 * FTP://<user>:<password>@<server>:<port>/<file_path>: each field within its limit, a port in
 * 1..65535. A path below the root is accepted here and refused by the job (612), as the module
 * finds out only when it looks for the file. 0 or -EINVAL.
 */
static int cmd_quectel_fota_ftp_url(const char *url)
{
    const char *auth = url + strlen("ftp://"), *slash = strchr(auth, '/'), *at, *host, *colon;
    size_t alen = slash ? (size_t)(slash - auth) : strlen(auth);

    if (!slash || !slash[1] || strlen(slash + 1) > CMD_QUECTEL_FOTA_FTP_FIELD_MAX)
        return -EINVAL;
    at = memrchr(auth, '@', alen);
    host = at ? at + 1 : auth;
    if (at) {
        const char *sep = memchr(auth, ':', (size_t)(at - auth));
        size_t ulen = sep ? (size_t)(sep - auth) : (size_t)(at - auth);
        size_t plen = sep ? (size_t)(at - sep - 1) : 0;
        if (ulen > CMD_QUECTEL_FOTA_FTP_FIELD_MAX || plen > CMD_QUECTEL_FOTA_FTP_FIELD_MAX)
            return -EINVAL;
    }
    colon = memchr(host, ':', (size_t)(slash - host));
    if ((size_t)((colon ? colon : slash) - host) > CMD_QUECTEL_FOTA_FTP_FIELD_MAX ||
        (colon ? colon : slash) == host)
        return -EINVAL;
    if (colon) {
        long port = 0;
        const char *d = colon + 1;
        if (d == slash)
            return -EINVAL;
        for (; d < slash; d++) {
            if (*d < '0' || *d > '9' || (port = port * 10 + (*d - '0')) > 65535)
                return -EINVAL;
        }
        if (port < 1)
            return -EINVAL;
    }
    return 0;
}

/* "FILE:<length>": the length in 1..2^32-1. */
static int cmd_quectel_fota_file_len(const char *s, uint64_t *len)
{
    uint64_t v = 0;

    s += strlen("FILE:");
    if (!*s)
        return -EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || (v = v * 10 + (uint64_t)(*s - '0')) > UINT32_MAX)
            return -EINVAL;
    }
    if (!v)
        return -EINVAL;
    *len = v;
    return 0;
}

/* "/data/ufs/<file>" or "UFS:<file>": a package the host put into UFS (fwupd's way). */
static const char *cmd_quectel_fota_ufs_name(const char *s)
{
    const char *name = NULL;

    if (cmd_quectel_fota_prefix(s, "/data/ufs/"))
        name = s + strlen("/data/ufs/");
    else if (cmd_quectel_fota_prefix(s, "UFS:"))
        name = s + strlen("UFS:");
    if (!name || !*name || strlen(name) > UFS_NAME_MAX || strpbrk(name, "/\\:*?\"<>|"))
        return NULL;
    return name;
}

/* ---- LTE: AT+QFOTADL=<url>[,<upgrade_mode>[,<download_URC_max>[,<update_URC_max>]]] --------- */

/* An optional URC count: omitted -> def; 0 or 5..100. */
static int cmd_quectel_fota_count(const struct at_req *r, unsigned i, unsigned def, unsigned *out)
{
    long v;

    if (r->nargs <= i || r->args[i].kind == AT_ARG_OMITTED) {
        *out = def;
        return 0;
    }
    if (at_arg_int(&r->args[i], 0, 100, &v) || (v > 0 && v < 5))
        return -EINVAL;
    *out = (unsigned)v;
    return 0;
}

static int cmd_quectel_fota_qfotadl(struct at_engine *e, const struct at_req *r, void *ctx)
{
    struct modem_port *p = PORT(ctx);
    struct modem *m = p->m;
    const struct qfota_variant *v = qfota_variant(m);
    const struct at_arg *a = &r->args[0];
    struct qfota_req req = {.apply_now = true};
    long mode = 1;
    bool proto = false;
    int rc;

    if (!v)
        return AT_RES_ERROR;
    if (r->form == AT_FORM_TEST) {
        /* MiniFOTA builds take no URC settings (seed 002 section 4.2). */
        at_info(e, v->minifota ? "+QFOTADL: <url>,(0,1)"
                               : "+QFOTADL: <url>,(0,1),(0,5-100),(0,5-100)");
        return AT_RES_OK;
    }
    if (r->nargs > 4 || a->kind != AT_ARG_STR || a->len == 0 || a->len > v->url_max)
        return AT_RES_ERROR;
    if (r->nargs > 1 && r->args[1].kind != AT_ARG_OMITTED &&
        at_arg_int(&r->args[1], 0, 2, &mode))
        return AT_RES_ERROR;
    if (cmd_quectel_fota_count(r, 2, v->dl_default, &req.dl_max) ||
        cmd_quectel_fota_count(r, 3, v->upd_default, &req.upd_max))
        return AT_RES_ERROR;
    req.url = a->s;
    if (cmd_quectel_fota_prefix(a->s, "ftp://")) {
        if (cmd_quectel_fota_ftp_url(a->s))
            return AT_RES_ERROR;
        req.src = QFOTA_SRC_FTP;
    } else if (cmd_quectel_fota_prefix(a->s, "http://") ||
               cmd_quectel_fota_prefix(a->s, "https://")) {
        if (v->minifota && cmd_quectel_fota_prefix(a->s, "https://"))
            return AT_RES_ERROR; /* MiniFOTA: HTTP only (seed 002 3.3.1.2 note 1) */
        req.src = QFOTA_SRC_HTTP;
    } else if (cmd_quectel_fota_prefix(a->s, "FILE:")) {
        if (v->minifota || cmd_quectel_fota_file_len(a->s, &req.length))
            return AT_RES_ERROR;
        /* "FILE:<length>",2 is the protocol download mode, with nothing after the 2. */
        proto = mode == 2;
        if (proto && r->nargs > 2)
            return AT_RES_ERROR;
        req.src = proto ? QFOTA_SRC_PROTO : QFOTA_SRC_FILE;
    } else if ((req.url = cmd_quectel_fota_ufs_name(a->s)) != NULL) {
        if (v->minifota)
            return AT_RES_ERROR;
        req.src = QFOTA_SRC_UFS;
    } else {
        return AT_RES_ERROR;
    }
    if (mode == 2 && !proto)
        return AT_RES_ERROR;
    /* MiniFOTA: no URC settings, and a shorter URL (seed 002 section 3.3.1 notes). */
    if (v->minifota && (r->nargs > 2 || a->len > CMD_QUECTEL_FOTA_MINI_URL_MAX))
        return AT_RES_ERROR;
    /* MiniFOTA: "<base>.mini_1" only (4.1 note 2), then the two-package flow with its restarts. */
    if (v->minifota)
        return qmini_url_ok(a->s) && !qmini_start(&m->qmini, req.src, a->s) ? AT_RES_OK
                                                                            : AT_RES_ERROR;
    req.apply_now = mode != 0;
    rc = qfota_start(&m->qfota, p, &req);
    if (rc)
        return AT_RES_ERROR;
    /* The protocol mode answered 010003 and holds the port until its session ends. */
    return proto ? AT_RES_PENDING : AT_RES_OK;
}

/* ---- NB: AT+QFOTADL=<URL> ------------------------------------------------------------------- */

/*
 * Seed 004 2.2 gives <port> the default 80 for CoAP as for HTTP (CoAP itself would use 5683):
 * "coap://host/path" becomes "coap://host:80/path" in out (the URL as given otherwise).
 */
static void cmd_quectel_fota_nb_port(const char *url, char *out, size_t cap)
{
    const char *host = url + strlen("coap://");
    size_t hlen = strcspn(host, "/?#");
    const char *rb = memchr(host, ']', hlen); /* an IPv6 literal's colons are not the port's */
    const char *tail = rb ? rb + 1 : host;

    if (!cmd_quectel_fota_prefix(url, "coap://") ||
        memchr(tail, ':', hlen - (size_t)(tail - host))) {
        snprintf(out, cap, "%s", url);
        return;
    }
    snprintf(out, cap, "%.*s:80%s", (int)(host - url + (ptrdiff_t)hlen), url, host + hlen);
}

static int cmd_quectel_fota_nb_qfotadl(struct at_engine *e, const struct at_req *r, void *ctx)
{
    struct modem_port *p = PORT(ctx);
    struct modem *m = p->m;
    const struct at_arg *a = &r->args[0];
    struct qfota_req req = {.apply_now = true, .dl_max = 100, .upd_max = 100};
    char url[QFOTA_URL_MAX + 8];

    (void)e;
    if (r->nargs > 1 || a->kind != AT_ARG_STR || a->len == 0 || a->len > QFOTA_URL_MAX)
        return AT_RES_ERROR;
    cmd_quectel_fota_nb_port(a->s, url, sizeof(url));
    req.url = url;
    if (cmd_quectel_fota_prefix(a->s, "coap://")) {
        /* CoAP reports no download progress: COAPSTART, then COAPEND (seed 004 2.2, 7.1). */
        req.src = QFOTA_SRC_COAP;
        req.dl_max = 0;
    } else if (cmd_quectel_fota_prefix(a->s, "http://")) {
        req.src = QFOTA_SRC_HTTP;
    } else {
        /* Another scheme (https too): accepted, then refused by URC (seed 004 section 6.9). */
        modem_urc(m, "+QIND: \"FOTA\",\"NOTSUPPORT\"");
        return AT_RES_OK;
    }
    return qfota_start(&m->qfota, p, &req) ? AT_RES_ERROR : AT_RES_OK;
}

static const struct at_cmd cmd_quectel_fota_cmds[] = {
    /* Arity is checked in the handler: the documents answer every error with a plain ERROR. */
    {"+QFOTADL", AT_F_SET | AT_F_TEST, 1, AT_PARSE_MAX_ARGS, NULL, cmd_quectel_fota_qfotadl},
};

const struct at_table cmd_quectel_fota_table = {"quectel_fota", cmd_quectel_fota_cmds,
                                                sizeof(cmd_quectel_fota_cmds) /
                                                    sizeof(cmd_quectel_fota_cmds[0])};

static const struct at_cmd cmd_quectel_nb_fota_cmds[] = {
    {"+QFOTADL", AT_F_SET, 1, AT_PARSE_MAX_ARGS, "+QFOTADL=<URL>", cmd_quectel_fota_nb_qfotadl},
};

const struct at_table cmd_quectel_nb_fota_table = {"quectel_nb_fota", cmd_quectel_nb_fota_cmds,
                                                   sizeof(cmd_quectel_nb_fota_cmds) /
                                                       sizeof(cmd_quectel_nb_fota_cmds[0])};
