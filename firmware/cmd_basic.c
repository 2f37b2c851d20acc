/*
 * Basic commands (V.25ter, 3GPP 27.007 subset the documents use). Answers follow the Quectel
 * forms (docs/models.md lists each): "+CSQ: 23,99", "+CEREG: 0,1", ATI as manufacturer, model
 * and "Revision: <rev>". Handlers read and change only their module (struct modem); the engine
 * has already checked the form and the number of arguments.
 */
#include "firmware/cmd_basic.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "firmware/modem.h"

#define PORT(ctx) ((struct modem_port *)(ctx))
#define MODEM(ctx) (PORT(ctx)->m)

static const struct at_errtext cmd_basic_errors[] = {
    {0, "phone failure"},
    {3, "operation not allowed"},
    {4, "operation not supported"},
    {10, "SIM not inserted"},
    {13, "SIM failure"},
    {14, "SIM busy"},
    {20, "memory full"},
    {22, "not found"},
    {24, "text string too long"},
    {30, "no network service"},
    {50, "incorrect parameters"},
    {100, "unknown"},
};

const char *cmd_basic_errtext(int code)
{
    size_t n = sizeof(cmd_basic_errors) / sizeof(cmd_basic_errors[0]);

    return at_errtext_find(cmd_basic_errors, n, code);
}

/* The optional number of a basic command ("ATE" = "ATE0"), checked against [0, max]. */
static int basic_num(const struct at_req *r, long max, long *out)
{
    *out = r->has_num ? r->num : 0;
    return *out >= 0 && *out <= max ? 0 : -ERANGE;
}

/* ---- V.250 settings ------------------------------------------------------------------------- */

static int cmd_e(struct at_engine *e, const struct at_req *r, void *ctx)
{
    long v;

    (void)ctx;
    if (basic_num(r, 1, &v))
        return AT_RES_ERROR;
    e->echo = v;
    return AT_RES_OK;
}

static int cmd_v(struct at_engine *e, const struct at_req *r, void *ctx)
{
    long v;

    (void)ctx;
    if (basic_num(r, 1, &v))
        return AT_RES_ERROR;
    e->verbose = v;
    return AT_RES_OK;
}

static int cmd_q(struct at_engine *e, const struct at_req *r, void *ctx)
{
    long v;

    (void)ctx;
    if (basic_num(r, 1, &v))
        return AT_RES_ERROR;
    e->quiet = v;
    return AT_RES_OK;
}

static int cmd_z(struct at_engine *e, const struct at_req *r, void *ctx)
{
    long v;

    (void)e;
    if (basic_num(r, 0, &v))
        return AT_RES_ERROR;
    modem_load_profile(MODEM(ctx), PORT(ctx));
    return AT_RES_OK;
}

static int cmd_and_f(struct at_engine *e, const struct at_req *r, void *ctx)
{
    long v;

    if (basic_num(r, 0, &v))
        return AT_RES_ERROR;
    at_defaults(e);
    MODEM(ctx)->cmee = MODEM(ctx)->model->cmee_default;
    return AT_RES_OK;
}

static int cmd_and_w(struct at_engine *e, const struct at_req *r, void *ctx)
{
    long v;

    (void)e;
    if (basic_num(r, 0, &v))
        return AT_RES_ERROR;
    return modem_save_profile(MODEM(ctx), PORT(ctx)) ? AT_RES_ERROR : AT_RES_OK;
}

/* S3, S4, S5: the line end, line feed and back-space characters. */
static int cmd_sreg(struct at_engine *e, const struct at_req *r, void *ctx)
{
    uint8_t *reg = r->num == 3 ? &e->s3 : r->num == 4 ? &e->s4 : &e->s5;
    long v;

    (void)ctx;
    switch (r->form) {
    case AT_FORM_READ:
        at_info(e, "%03u", *reg);
        return AT_RES_OK;
    case AT_FORM_TEST:
        at_info(e, "S%ld: (0-127)", r->num);
        return AT_RES_OK;
    case AT_FORM_SET:
        if (r->nargs != 1 || at_arg_int(&r->args[0], 0, 127, &v))
            return AT_RES_ERROR;
        *reg = (uint8_t)v;
        return AT_RES_OK;
    default:
        return AT_RES_ERROR;
    }
}

/* ---- identity ------------------------------------------------------------------------------- */

static int cmd_i(struct at_engine *e, const struct at_req *r, void *ctx)
{
    const struct modem *m = MODEM(ctx);
    long v;

    if (basic_num(r, 0, &v))
        return AT_RES_ERROR;
    at_info(e, "%s", m->model->manufacturer);
    at_info(e, "%s", m->model->product);
    at_info(e, "Revision: %s", modem_revision(m));
    return AT_RES_OK;
}

static int cmd_cgmi(struct at_engine *e, const struct at_req *r, void *ctx)
{
    (void)r;
    at_info(e, "%s", MODEM(ctx)->model->manufacturer);
    return AT_RES_OK;
}

static int cmd_cgmm(struct at_engine *e, const struct at_req *r, void *ctx)
{
    (void)r;
    at_info(e, "%s", MODEM(ctx)->model->product);
    return AT_RES_OK;
}

static int cmd_cgmr(struct at_engine *e, const struct at_req *r, void *ctx)
{
    (void)r;
    at_info(e, "%s", modem_revision(MODEM(ctx)));
    return AT_RES_OK;
}

static int cmd_cgsn(struct at_engine *e, const struct at_req *r, void *ctx)
{
    long v = 1;

    /* 27.007: AT+CGSN=1 is the IMEI with a prefix; exec and +GSN are the bare digits. */
    if (r->form == AT_FORM_SET && at_arg_int(&r->args[0], 0, 3, &v))
        return AT_CME_BAD_PARAM;
    if (r->form == AT_FORM_SET && v == 1)
        at_info(e, "+CGSN: \"%s\"", MODEM(ctx)->imei);
    else if (r->form == AT_FORM_SET && v != 0)
        return AT_CME_NOT_SUPPORTED;
    else
        at_info(e, "%s", MODEM(ctx)->imei);
    return AT_RES_OK;
}

static int cmd_cimi(struct at_engine *e, const struct at_req *r, void *ctx)
{
    const struct modem *m = MODEM(ctx);

    (void)r;
    if (!m->radio.sim_present)
        return AT_CME_SIM_NOT_INSERTED;
    at_info(e, "%s", m->model->imsi);
    return AT_RES_OK;
}

/* ---- error reporting and character set -------------------------------------------------------- */

static int cmd_cmee(struct at_engine *e, const struct at_req *r, void *ctx)
{
    struct modem *m = MODEM(ctx);
    long v;

    if (r->form == AT_FORM_READ) {
        at_info(e, "+CMEE: %d", m->cmee);
        return AT_RES_OK;
    }
    if (at_arg_int(&r->args[0], 0, 2, &v))
        return AT_CME_BAD_PARAM;
    m->cmee = (int)v;
    return AT_RES_OK;
}

static int cmd_cscs(struct at_engine *e, const struct at_req *r, void *ctx)
{
    static const char *const sets[] = {"GSM", "IRA", "UCS2"};
    struct modem *m = MODEM(ctx);

    if (r->form == AT_FORM_READ) {
        at_info(e, "+CSCS: \"%s\"", m->cscs);
        return AT_RES_OK;
    }
    for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
        if (at_arg_is(&r->args[0], sets[i])) {
            snprintf(m->cscs, sizeof(m->cscs), "%s", sets[i]);
            return AT_RES_OK;
        }
    }
    return AT_CME_BAD_PARAM;
}

/* ---- SIM, functionality, registration ------------------------------------------------------- */

static int cmd_cpin(struct at_engine *e, const struct at_req *r, void *ctx)
{
    const struct modem *m = MODEM(ctx);

    if (!m->radio.sim_present)
        return AT_CME_SIM_NOT_INSERTED;
    if (r->form == AT_FORM_SET)
        return AT_CME_NOT_ALLOWED; /* the card asks for no PIN */
    at_info(e, "+CPIN: READY");
    return AT_RES_OK;
}

static int cmd_cfun(struct at_engine *e, const struct at_req *r, void *ctx)
{
    struct modem *m = MODEM(ctx);
    long fun, rst = 0;

    if (r->form == AT_FORM_READ) {
        at_info(e, "+CFUN: %d", m->cfun);
        return AT_RES_OK;
    }
    if (at_arg_int(&r->args[0], 0, 4, &fun) || fun == 2 || fun == 3)
        return AT_CME_BAD_PARAM;
    if (r->nargs > 1 && at_arg_int(&r->args[1], 0, 1, &rst))
        return AT_CME_BAD_PARAM;
    if (rst) {
        /* AT+CFUN=1,1: OK first, then the module restarts. */
        at_result(e, AT_RES_OK);
        modem_reboot(m);
        return AT_RES_SILENT;
    }
    m->cfun = (int)fun;
    /* Registration, attach and data follow from the new functionality (modem_radio_changed). */
    m->radio.changed(m->radio.ctx, &m->radio);
    return AT_RES_OK;
}

static void reg_line(struct modem *m, char *buf, size_t cap, const char *cmd, int n, int stat,
                     bool urc)
{
    int len;

    if (urc)
        len = snprintf(buf, cap, "%s: %d", cmd, stat);
    else
        len = snprintf(buf, cap, "%s: %d,%d", cmd, n, stat);
    if (n >= 2 && (stat == RADIO_REG_HOME || stat == RADIO_REG_ROAMING) && len > 0 &&
        (size_t)len < cap)
        snprintf(buf + len, cap - (size_t)len, ",\"1A2B\",\"0C3D4E5\",%d", m->radio.act);
}

static int reg_cmd(struct at_engine *e, const struct at_req *r, struct modem *m, int *n,
                   const char *name)
{
    char line[96];
    long v;

    if (r->form == AT_FORM_READ) {
        reg_line(m, line, sizeof(line), name, *n, modem_reg_state(m), false);
        at_info(e, "%s", line);
        return AT_RES_OK;
    }
    if (at_arg_int(&r->args[0], 0, 2, &v))
        return AT_CME_BAD_PARAM;
    *n = (int)v;
    return AT_RES_OK;
}

static int cmd_creg(struct at_engine *e, const struct at_req *r, void *ctx)
{
    return reg_cmd(e, r, MODEM(ctx), &MODEM(ctx)->creg_n, "+CREG");
}

static int cmd_cereg(struct at_engine *e, const struct at_req *r, void *ctx)
{
    return reg_cmd(e, r, MODEM(ctx), &MODEM(ctx)->cereg_n, "+CEREG");
}

void cmd_basic_reg_urcs(struct modem *m, int stat)
{
    char line[96];

    if (m->creg_n) {
        reg_line(m, line, sizeof(line), "+CREG", m->creg_n, stat, true);
        modem_urc(m, "%s", line);
    }
    if (m->cereg_n) {
        reg_line(m, line, sizeof(line), "+CEREG", m->cereg_n, stat, true);
        modem_urc(m, "%s", line);
    }
}

static int cmd_cops(struct at_engine *e, const struct at_req *r, void *ctx)
{
    struct modem *m = MODEM(ctx);
    long mode;

    if (r->form == AT_FORM_TEST) {
        at_info(e, "+COPS: (1,\"%s\",\"CMCC\",\"46000\",%d),,(0-4),(0-2)", m->radio.oper,
                m->radio.act);
        return AT_RES_OK;
    }
    if (r->form == AT_FORM_SET) {
        if (at_arg_int(&r->args[0], 0, 4, &mode))
            return AT_CME_BAD_PARAM;
        return mode == 0 ? AT_RES_OK : AT_CME_NOT_SUPPORTED;
    }
    if (modem_reg_state(m) == RADIO_REG_HOME || modem_reg_state(m) == RADIO_REG_ROAMING)
        at_info(e, "+COPS: 0,0,\"%s\",%d", m->radio.oper, m->radio.act);
    else
        at_info(e, "+COPS: 0");
    return AT_RES_OK;
}

static int cmd_csq(struct at_engine *e, const struct at_req *r, void *ctx)
{
    const struct modem *m = MODEM(ctx);
    bool svc = m->cfun == 1 && m->radio.sim_present && m->radio.reg != RADIO_REG_NONE;

    (void)r;
    at_info(e, "+CSQ: %d,%d", svc ? m->radio.rssi : 99, svc ? m->radio.ber : 99);
    return AT_RES_OK;
}

static int cmd_cesq(struct at_engine *e, const struct at_req *r, void *ctx)
{
    const struct modem *m = MODEM(ctx);
    bool svc = m->cfun == 1 && m->radio.sim_present && m->radio.reg != RADIO_REG_NONE;

    (void)r;
    /* <rxlev>,<ber>,<rscp>,<ecno>,<rsrq>,<rsrp>; GSM and UMTS fields are unknown on LTE. */
    at_info(e, "+CESQ: 99,99,%d,%d,%d,%d", m->radio.rscp, m->radio.ecno,
            svc ? m->radio.rsrq : 255, svc ? m->radio.rsrp : 255);
    return AT_RES_OK;
}

/* ---- packet domain ---------------------------------------------------------------------------- */

static int cmd_cgatt(struct at_engine *e, const struct at_req *r, void *ctx)
{
    struct modem *m = MODEM(ctx);
    int stat = modem_reg_state(m);
    long v;

    if (r->form == AT_FORM_READ) {
        at_info(e, "+CGATT: %d", m->attached ? 1 : 0);
        return AT_RES_OK;
    }
    if (at_arg_int(&r->args[0], 0, 1, &v))
        return AT_CME_BAD_PARAM;
    if (v && stat != RADIO_REG_HOME && stat != RADIO_REG_ROAMING)
        return AT_CME_NO_NETWORK;
    m->attach_wanted = v;
    modem_set_attached(m, v); /* an attach activates the default bearer, a detach drops all */
    modem_net_update(m);
    return AT_RES_OK;
}

static int cmd_cgdcont(struct at_engine *e, const struct at_req *r, void *ctx)
{
    struct modem *m = MODEM(ctx);
    long cid;

    if (r->form == AT_FORM_READ) {
        for (int i = 0; i < MODEM_MAX_CIDS; i++)
            if (m->pdp[i].defined)
                at_info(e, "+CGDCONT: %d,\"%s\",\"%s\",\"0.0.0.0\",0,0", i, m->pdp[i].type,
                        m->pdp[i].apn);
        return AT_RES_OK;
    }
    if (at_arg_int(&r->args[0], 1, MODEM_MAX_CIDS - 1, &cid))
        return AT_CME_BAD_PARAM;
    if (r->nargs == 1) {
        memset(&m->pdp[cid], 0, sizeof(m->pdp[cid]));
        return AT_RES_OK;
    }
    if (!at_arg_is(&r->args[1], "IP") && !at_arg_is(&r->args[1], "IPV6") &&
        !at_arg_is(&r->args[1], "IPV4V6") && !at_arg_is(&r->args[1], "Non-IP"))
        return AT_CME_BAD_PARAM;
    if (r->nargs > 2 && r->args[2].len >= sizeof(m->pdp[cid].apn))
        return AT_CME_TEXT_TOO_LONG;
    m->pdp[cid].defined = true;
    snprintf(m->pdp[cid].type, sizeof(m->pdp[cid].type), "%s", r->args[1].s);
    /* AT+QICSGP's <context_type> of the same context; Non-IP has none (0). */
    m->pdp[cid].ip_type = at_arg_is(&r->args[1], "IP")       ? 1
                          : at_arg_is(&r->args[1], "IPV6")   ? 2
                          : at_arg_is(&r->args[1], "IPV4V6") ? 3
                                                             : 0;
    snprintf(m->pdp[cid].apn, sizeof(m->pdp[cid].apn), "%s", r->nargs > 2 ? r->args[2].s : "");
    return AT_RES_OK;
}

static int cmd_cgpaddr(struct at_engine *e, const struct at_req *r, void *ctx)
{
    struct modem *m = MODEM(ctx);
    bool up = m->attached;
    long cid;

    /* The address belongs to the context the network activated (the model's default one). */
    if (r->form == AT_FORM_SET) {
        if (at_arg_int(&r->args[0], 0, MODEM_MAX_CIDS - 1, &cid))
            return AT_CME_BAD_PARAM;
        at_info(e, "+CGPADDR: %ld,\"%s\"", cid,
                up && cid == m->model->ip_cid ? m->radio.ip : "0.0.0.0");
        return AT_RES_OK;
    }
    if (up)
        at_info(e, "+CGPADDR: %d,\"%s\"", m->model->ip_cid, m->radio.ip);
    return AT_RES_OK;
}

/* ---- port settings ---------------------------------------------------------------------------- */

static int cmd_ipr(struct at_engine *e, const struct at_req *r, void *ctx)
{
    static const long rates[] = {0,     4800,   9600,   19200,  38400,
                                 57600, 115200, 230400, 460800, 921600};
    struct modem *m = MODEM(ctx);
    long v;

    if (r->form == AT_FORM_READ) {
        at_info(e, "+IPR: %ld", m->ipr);
        return AT_RES_OK;
    }
    if (at_arg_int(&r->args[0], 0, 921600, &v))
        return AT_CME_BAD_PARAM;
    for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
        if (rates[i] == v) {
            long was = m->ipr;
            m->ipr = v;
            /* An auto-baud model keeps the rate (or the return to auto-baud) across restarts. */
            if (m->model->autobaud && modem_save_ipr(m)) {
                m->ipr = was;
                return AT_RES_ERROR;
            }
            modem_port_uart_update(m, PORT(ctx));
            return AT_RES_OK;
        }
    }
    return AT_CME_BAD_PARAM;
}

static int cmd_ifc(struct at_engine *e, const struct at_req *r, void *ctx)
{
    struct modem *m = MODEM(ctx);
    long rx, tx;

    if (r->form == AT_FORM_READ) {
        at_info(e, "+IFC: %d,%d", m->ifc_rx, m->ifc_tx);
        return AT_RES_OK;
    }
    if (at_arg_int(&r->args[0], 0, 2, &rx) || rx == 1)
        return AT_CME_BAD_PARAM;
    tx = rx;
    if (r->nargs > 1 && (at_arg_int(&r->args[1], 0, 2, &tx) || tx == 1))
        return AT_CME_BAD_PARAM;
    m->ifc_rx = (int)rx;
    m->ifc_tx = (int)tx;
    modem_port_uart_update(m, &m->ports[0]);
    return AT_RES_OK;
}

/* ---- boot lines ------------------------------------------------------------------------------- */

void cmd_basic_boot_line(struct modem *m, enum model_boot line)
{
    bool sim = m->radio.sim_present;
    int stat = modem_reg_state(m);

    switch (line) {
    case MODEL_BOOT_RDY:
        modem_urc(m, "RDY");
        break;
    case MODEL_BOOT_CFUN:
        modem_urc(m, "+CFUN: 1");
        break;
    case MODEL_BOOT_CPIN:
        modem_urc(m, sim ? "+CPIN: READY" : "+CPIN: NOT READY");
        break;
    case MODEL_BOOT_QUSIM:
        if (sim)
            modem_urc(m, "+QUSIM: 1");
        break;
    case MODEL_BOOT_SMS_DONE:
        if (sim)
            modem_urc(m, "+QIND: SMS DONE");
        break;
    case MODEL_BOOT_IP:
        if (stat == RADIO_REG_HOME || stat == RADIO_REG_ROAMING)
            modem_urc(m, "+IP: %s", m->radio.ip);
        break;
    case MODEL_BOOT_FOTA: /* placed by the module itself (modem_booted) */
    case MODEL_BOOT_END:
        break;
    }
}

/* Sorted by name (strcmp): '&' < '+' < letters. */
static const struct at_cmd cmd_basic_cmds[] = {
    {"&F", AT_F_EXEC, 0, 0, NULL, cmd_and_f},
    {"&W", AT_F_EXEC, 0, 0, NULL, cmd_and_w},
    {"+CEREG", AT_F_READ | AT_F_SET, 1, 1, "+CEREG: (0-2)", cmd_cereg},
    {"+CESQ", AT_F_EXEC, 0, 0, "+CESQ: (0-63,99),(0-7,99),(0-96,255),(0-49,255),(0-34,255),(0-97,255)", cmd_cesq},
    {"+CFUN", AT_F_READ | AT_F_SET, 1, 2, "+CFUN: (0,1,4),(0,1)", cmd_cfun},
    {"+CGATT", AT_F_READ | AT_F_SET, 1, 1, "+CGATT: (0,1)", cmd_cgatt},
    {"+CGDCONT", AT_F_READ | AT_F_SET, 1, 6, "+CGDCONT: (1-15),\"IP\",,,(0-2),(0-4)", cmd_cgdcont},
    {"+CGMI", AT_F_EXEC, 0, 0, NULL, cmd_cgmi},
    {"+CGMM", AT_F_EXEC, 0, 0, NULL, cmd_cgmm},
    {"+CGMR", AT_F_EXEC, 0, 0, NULL, cmd_cgmr},
    {"+CGPADDR", AT_F_EXEC | AT_F_READ | AT_F_SET, 1, 1, "+CGPADDR: (1-15)", cmd_cgpaddr},
    {"+CGSN", AT_F_EXEC | AT_F_SET, 1, 1, "+CGSN: (0-3)", cmd_cgsn},
    {"+CIMI", AT_F_EXEC, 0, 0, NULL, cmd_cimi},
    {"+CMEE", AT_F_READ | AT_F_SET, 1, 1, "+CMEE: (0-2)", cmd_cmee},
    {"+COPS", AT_F_READ | AT_F_SET | AT_F_TEST, 1, 4, NULL, cmd_cops},
    {"+CPIN", AT_F_READ | AT_F_SET, 1, 2, NULL, cmd_cpin},
    {"+CREG", AT_F_READ | AT_F_SET, 1, 1, "+CREG: (0-2)", cmd_creg},
    {"+CSCS", AT_F_READ | AT_F_SET, 1, 1, "+CSCS: (\"GSM\",\"IRA\",\"UCS2\")", cmd_cscs},
    {"+CSQ", AT_F_EXEC, 0, 0, "+CSQ: (0-31,99),(0-7,99)", cmd_csq},
    {"+GMI", AT_F_EXEC, 0, 0, NULL, cmd_cgmi},
    {"+GMM", AT_F_EXEC, 0, 0, NULL, cmd_cgmm},
    {"+GMR", AT_F_EXEC, 0, 0, NULL, cmd_cgmr},
    {"+GSN", AT_F_EXEC, 0, 0, NULL, cmd_cgsn},
    {"+IFC", AT_F_READ | AT_F_SET, 1, 2, "+IFC: (0,2),(0,2)", cmd_ifc},
    {"+IPR", AT_F_READ | AT_F_SET, 1, 1,
     "+IPR: (0,4800,9600,19200,38400,57600,115200,230400,460800,921600)", cmd_ipr},
    {"E", AT_F_EXEC, 0, 0, NULL, cmd_e},
    {"I", AT_F_EXEC, 0, 0, NULL, cmd_i},
    {"Q", AT_F_EXEC, 0, 0, NULL, cmd_q},
    {"S3", AT_F_READ | AT_F_SET | AT_F_TEST, 1, 1, NULL, cmd_sreg},
    {"S4", AT_F_READ | AT_F_SET | AT_F_TEST, 1, 1, NULL, cmd_sreg},
    {"S5", AT_F_READ | AT_F_SET | AT_F_TEST, 1, 1, NULL, cmd_sreg},
    {"V", AT_F_EXEC, 0, 0, NULL, cmd_v},
    {"Z", AT_F_EXEC, 0, 0, NULL, cmd_z},
};

const struct at_table cmd_basic_table = {
    "basic",
    cmd_basic_cmds,
    sizeof(cmd_basic_cmds) / sizeof(cmd_basic_cmds[0]),
};
