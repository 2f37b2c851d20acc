/*
 * Quectel PDP contexts and AT+QCFG: AT+QICSGP configures a context (APN, user, password,
 * authentication) in struct modem's pdp[], AT+QIACT / AT+QIDEACT switch its active flag,
 * AT+QCFG="fota/cid" picks the context a DFOTA download uses and AT+QCFG="usbifc" the USB AT
 * port's flow control. The attach itself (the network's default bearer coming and going) is the
 * module's business (modem_set_attached); here a host only adds or drops contexts on top of it.
 * Not here: sockets (AT+QIOPEN ...), DNS, or any AT+QCFG item other than these two.
 */
#include "firmware/cmd_quectel_net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "firmware/modem.h"

#define PORT(ctx)  ((struct modem_port *)(ctx))
#define MODEM(ctx) (PORT(ctx)->m)

#define CMD_QUECTEL_NET_CID_MAX (MODEM_MAX_CIDS - 1) /* <contextID>: 1-15 */

/* ---- error codes: the one table of this family -------------------------------------------- */

/* Every code a handler here returns, with its +CMEE=2 text (the TCP/IP manual's wording). */
static const struct at_errtext cmd_quectel_net_errors[] = {
    {CMD_QUECTEL_NET_E_OPEN_PDP, "open PDP context failed"},
    {CMD_QUECTEL_NET_E_NOT_ALLOWED, "operation not allowed"},
    {CMD_QUECTEL_NET_E_NO_APN, "APN not configured"},
};

const char *cmd_quectel_net_errtext(int code)
{
    size_t n = sizeof(cmd_quectel_net_errors) / sizeof(cmd_quectel_net_errors[0]);

    return at_errtext_find(cmd_quectel_net_errors, n, code);
}

/* ---- helpers ------------------------------------------------------------------------------- */

/* The <contextID> of a set form: 1-15, or -1 (the caller answers ERROR). */
static int cmd_quectel_net_cid(const struct at_arg *a)
{
    long cid;

    return at_arg_int(a, 1, CMD_QUECTEL_NET_CID_MAX, &cid) ? -1 : (int)cid;
}

/*
 * Whether a is a string field that fits cap bytes with its NUL: quoted (an omitted field is the
 * empty string), and free of '"' and control bytes so the read form prints it back verbatim.
 */
static bool cmd_quectel_net_str_ok(const struct at_arg *a, size_t cap)
{
    if (a->kind == AT_ARG_OMITTED)
        return true;
    if (a->kind != AT_ARG_STR || a->len >= cap)
        return false;
    for (size_t i = 0; i < a->len; i++)
        if ((unsigned char)a->s[i] < 0x20 || a->s[i] == '"' || a->s[i] == 0x7f)
            return false;
    return true;
}

/*
 * The address context cid holds. The network's default bearer has the address the world gives
 * (radio.ip); any other context gets one derived from it, so that each is distinct and the same
 * on every run: the last IPv4 octet n becomes (n + cid - 1) % 250 + 1 (never 0), the last IPv6
 * group g becomes (g + cid) & 0xffff.
 */
static void cmd_quectel_net_addr(const struct modem *m, int cid, char *out, size_t cap)
{
    const char *ip = m->radio.ip;
    const char *dot = strrchr(ip, '.'), *colon = strrchr(ip, ':');

    if (cid == m->model->ip_cid || (!dot && !colon)) {
        snprintf(out, cap, "%s", ip);
    } else if (dot) {
        unsigned long n = strtoul(dot + 1, NULL, 10);
        snprintf(out, cap, "%.*s.%lu", (int)(dot - ip), ip, (n + (unsigned long)cid - 1) % 250 + 1);
    } else {
        unsigned long g = strtoul(colon + 1, NULL, 16);
        snprintf(out, cap, "%.*s:%lx", (int)(colon - ip), ip, (g + (unsigned long)cid) & 0xffff);
    }
}

/* The +CGDCONT <PDP_type> that goes with a <context_type>. */
static const char *cmd_quectel_net_type_name(long type)
{
    return type == 2 ? "IPV6" : type == 3 ? "IPV4V6" : "IP";
}

static void cmd_quectel_net_copy(char *dst, size_t cap, const struct at_arg *a)
{
    snprintf(dst, cap, "%s", a && a->kind == AT_ARG_STR ? a->s : "");
}

/* ---- AT+QICSGP ------------------------------------------------------------------------------ */

/*
 * AT+QICSGP=<cid>[,<context_type>,<APN>[,<username>,<password>[,<authentication>]]]
 *
 * Seed 002 (§3.3.1.1-2) sends a five-field form, AT+QICSGP=2,1,"cmnet","",1, and says of it
 * "user name and password empty, authentication PAP". So five fields whose fifth is a bare
 * integer read as <cid>,<type>,<APN>,<username>,<authentication> with an empty password; a
 * quoted fifth field is the password (authentication then 0). docs/errata.md records the choice.
 */
static int cmd_quectel_net_qicsgp(struct at_engine *e, const struct at_req *r, void *ctx)
{
    struct modem *m = MODEM(ctx);
    const struct at_arg *user = NULL, *pwd = NULL;
    struct modem_pdp *pdp;
    long type, auth = 0;
    int cid = cmd_quectel_net_cid(&r->args[0]);

    if (cid < 0)
        return AT_RES_ERROR;
    pdp = &m->pdp[cid];
    if (r->nargs == 1) {
        /* A context nobody configured reads as the defaults a configuration starts from. */
        at_info(e, "+QICSGP: %d,\"%s\",\"%s\",\"%s\",%d", pdp->defined ? pdp->ip_type : 1, pdp->apn,
                pdp->user, pdp->pwd, pdp->auth);
        return AT_RES_OK;
    }
    if (r->nargs != 3 && r->nargs != 5 && r->nargs != 6)
        return AT_RES_ERROR;
    if (at_arg_int(&r->args[1], 1, 3, &type) ||
        !cmd_quectel_net_str_ok(&r->args[2], sizeof(pdp->apn)))
        return AT_RES_ERROR;
    if (r->nargs == 5 && r->args[4].kind == AT_ARG_BARE) {
        user = &r->args[3];
        if (at_arg_int(&r->args[4], 0, 3, &auth))
            return AT_RES_ERROR;
    } else if (r->nargs >= 5) {
        user = &r->args[3];
        pwd = &r->args[4];
        if (r->nargs == 6 && at_arg_int(&r->args[5], 0, 3, &auth))
            return AT_RES_ERROR;
    }
    if ((user && !cmd_quectel_net_str_ok(user, sizeof(pdp->user))) ||
        (pwd && !cmd_quectel_net_str_ok(pwd, sizeof(pdp->pwd))))
        return AT_RES_ERROR;
    /* An active context keeps the parameters it was activated with (AT+QIDEACT first). */
    if (pdp->active)
        return CMD_QUECTEL_NET_E_NOT_ALLOWED;
    pdp->defined = true;
    pdp->ip_type = (int)type;
    snprintf(pdp->type, sizeof(pdp->type), "%s", cmd_quectel_net_type_name(type));
    cmd_quectel_net_copy(pdp->apn, sizeof(pdp->apn), &r->args[2]);
    cmd_quectel_net_copy(pdp->user, sizeof(pdp->user), user);
    cmd_quectel_net_copy(pdp->pwd, sizeof(pdp->pwd), pwd);
    pdp->auth = (int)auth;
    return AT_RES_OK;
}

/* ---- AT+QIACT / AT+QIDEACT ------------------------------------------------------------------ */

/*
 * AT+QIACT=<cid>: configured (the default context, +CGDCONT or AT+QICSGP) else 573; already
 * active: OK; the module attached and registered, and the context of an IP type, else 561.
 */
static int cmd_quectel_net_qiact(struct at_engine *e, const struct at_req *r, void *ctx)
{
    struct modem *m = MODEM(ctx);
    int stat = modem_reg_state(m), cid;
    char addr[64];

    if (r->form == AT_FORM_READ) {
        for (int i = 1; i <= CMD_QUECTEL_NET_CID_MAX; i++) {
            if (!m->pdp[i].active)
                continue;
            cmd_quectel_net_addr(m, i, addr, sizeof(addr));
            at_info(e, "+QIACT: %d,1,%d,\"%s\"", i, m->pdp[i].ip_type, addr);
        }
        return AT_RES_OK;
    }
    cid = cmd_quectel_net_cid(&r->args[0]);
    if (cid < 0)
        return AT_RES_ERROR;
    if (!m->pdp[cid].defined)
        return CMD_QUECTEL_NET_E_NO_APN;
    if (m->pdp[cid].active)
        return AT_RES_OK;
    if (!m->attached || (stat != RADIO_REG_HOME && stat != RADIO_REG_ROAMING) ||
        m->pdp[cid].ip_type == 0)
        return CMD_QUECTEL_NET_E_OPEN_PDP;
    m->pdp[cid].active = true;
    return AT_RES_OK;
}

/* AT+QIDEACT=<cid>: OK whether or not the context was active. */
static int cmd_quectel_net_qideact(struct at_engine *e, const struct at_req *r, void *ctx)
{
    int cid = cmd_quectel_net_cid(&r->args[0]);

    (void)e;
    if (cid < 0)
        return AT_RES_ERROR;
    MODEM(ctx)->pdp[cid].active = false;
    return AT_RES_OK;
}

/* ---- AT+QCFG -------------------------------------------------------------------------------- */

/* AT+QCFG="fota/cid"[,<cid>]. MiniFOTA builds have no such item (seed 002 §3.3.1.1 note 2). */
static int cmd_quectel_net_fota_cid(struct at_engine *e, const struct at_req *r, struct modem *m)
{
    int cid;

    if (m->model->minifota || r->nargs > 2)
        return AT_RES_ERROR;
    if (r->nargs == 1) {
        at_info(e, "+QCFG: \"fota/cid\",%d", m->fota_cid);
        return AT_RES_OK;
    }
    cid = cmd_quectel_net_cid(&r->args[1]);
    if (cid < 0)
        return AT_RES_ERROR;
    m->fota_cid = cid;
    return AT_RES_OK;
}

/* AT+QCFG="usbifc"[,<rx>,<tx>]: 0 none, 2 RTS/CTS; both 2 turn the USB port's flow control on. */
static int cmd_quectel_net_usbifc(struct at_engine *e, const struct at_req *r, struct modem *m)
{
    long rx, tx;

    if (r->nargs == 1) {
        at_info(e, "+QCFG: \"usbifc\",%d,%d", m->usbifc_rx, m->usbifc_tx);
        return AT_RES_OK;
    }
    if (r->nargs != 3 || at_arg_int(&r->args[1], 0, 2, &rx) || rx == 1 ||
        at_arg_int(&r->args[2], 0, 2, &tx) || tx == 1)
        return AT_RES_ERROR;
    m->usbifc_rx = (int)rx;
    m->usbifc_tx = (int)tx;
    m->usb_flow = rx == 2 && tx == 2;
    /* The USB port's receive FIFO holds the sender from now on (or lets it overrun again). */
    if (m->nports > 1 && m->ports[1].at_ready)
        modem_port_uart_update(m, &m->ports[1]);
    return AT_RES_OK;
}

static int cmd_quectel_net_qcfg(struct at_engine *e, const struct at_req *r, void *ctx)
{
    struct modem *m = MODEM(ctx);

    if (r->form == AT_FORM_TEST) {
        if (!m->model->minifota)
            at_info(e, "+QCFG: \"fota/cid\",(1-%d)", CMD_QUECTEL_NET_CID_MAX);
        at_info(e, "+QCFG: \"usbifc\",(0,2),(0,2)");
        return AT_RES_OK;
    }
    if (at_arg_is(&r->args[0], "fota/cid"))
        return cmd_quectel_net_fota_cid(e, r, m);
    if (at_arg_is(&r->args[0], "usbifc"))
        return cmd_quectel_net_usbifc(e, r, m);
    return AT_RES_ERROR; /* an item this module does not have */
}

/* ---- table ---------------------------------------------------------------------------------- */

/* Sorted by name (strcmp). Test forms as Quectel's manuals print them. */
static const struct at_cmd cmd_quectel_net_cmds[] = {
    {"+QCFG", AT_F_SET | AT_F_TEST, 1, 3, NULL, cmd_quectel_net_qcfg},
    {"+QIACT", AT_F_READ | AT_F_SET, 1, 1, "+QIACT: (1-15)", cmd_quectel_net_qiact},
    {"+QICSGP", AT_F_SET, 1, 6, "+QICSGP: (1-15),(1-3),<APN>,<username>,<password>,(0-3)",
     cmd_quectel_net_qicsgp},
    {"+QIDEACT", AT_F_SET, 1, 1, "+QIDEACT: (1-15)", cmd_quectel_net_qideact},
};

const struct at_table cmd_quectel_net_table = {
    "quectel_net",
    cmd_quectel_net_cmds,
    sizeof(cmd_quectel_net_cmds) / sizeof(cmd_quectel_net_cmds[0]),
};
