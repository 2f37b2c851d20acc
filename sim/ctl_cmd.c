/*
 * Control API commands: one request line -> one reply line (ctl_handle), through one sorted
 * table of commands. The engine checks the envelope (JSON object, id, cmd, module) and the
 * argument names before any command runs; a command's parse step type- and range-checks its
 * arguments once, then its run step acts on each addressed module (or on the fleet). Every error
 * names the field at fault. Not here: sockets and event fan-out (ctl.c). Every run step must
 * cope with a module in any power state (storage unmounted, flash closed, dead).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <mbedtls/base64.h>

#include "firmware/modem.h"
#include "sim/ctl.h"
#include "sim/fleet.h"

#define CTL_CMD_MAX_SECONDS 1e9 /* restore delays and speed factors beyond this are typos */
#define CTL_CMD_MAX_OP      9007199254740992.0 /* 2^53: every integer up to it is exact in JSON */
#define CTL_CMD_FIELD_ECHO  40 /* unknown names longer than this are not echoed in "field" */

/* The reply's error object: the first failure wins (later checks do not overwrite it). */
struct ctl_err {
    char field[64];
    char msg[192];
};

/* Everything any command's arguments parse into (one command uses a few fields). */
struct ctl_cmd_args {
    int action;     /* power: index into ctl_cmd_actions */
    double restore; /* power cut, cut_at: seconds until power returns, < 0 = stays off */
    uint64_t op;    /* cut_at */
    int fault;      /* cut_at: index into ctl_cmd_faults = enum flash_fault */
    uint32_t seed;
    unsigned net_set; /* network: bit i = ctl_cmd_net[i] given */
    int net[5];
    const char *oper, *ip;
    bool present; /* sim */
    bool has_speed;
    double speed;        /* time: 0 = max */
    unsigned kinds;      /* events */
    const char *name;    /* push, pull */
    unsigned char *data; /* push: decoded bytes (heap, freed by the engine) */
    size_t data_len;
    bool append;
    bool now; /* fota: apply at once (else after a reboot) */
    /* network: the world's transfer conditions (bit i of world_set = field given) */
    unsigned world_set;
    bool outage, dns_fail, refuse, stall;
    double rate, latency, cut_after;
    const char *url; /* download */
    bool resume;
    double timeout; /* download: connect and no-progress time-out, real seconds (0: default) */
    uint64_t offset, length;
    bool has_length;
};

/* One call: the request's parsed state as the run steps see it. */
struct ctl_cmd_call {
    struct ctl *c;
    struct fleet *f;
    struct ctl_client *from;
    int module; /* -1 = "all" */
    bool module_given;
    struct ctl_cmd_args a;
    struct ctl_err *e;
};

/* parse: type and range checks of args (may be NULL), no module touched; 0 or -EINVAL with e
 * filled. run: acts on one module (NULL for fleet commands); 0 with *out set, -EINVAL with
 * x->e filled, or -ENOMEM. */
typedef int ctl_cmd_parse_fn(const cJSON *args, struct ctl_cmd_args *a, struct ctl_err *e);
typedef int ctl_cmd_run_fn(struct ctl_cmd_call *x, struct modem *m, cJSON **out);

struct ctl_cmd_def {
    const char *name;
    const char *const *args; /* accepted argument names, NULL-terminated */
    bool per_module;         /* run once per addressed module; else once for the fleet */
    ctl_cmd_parse_fn *parse; /* NULL: no arguments beyond the name check */
    ctl_cmd_run_fn *run;
};

/* power actions; the index is what ctl_cmd_power switches on. */
static const char *const ctl_cmd_actions[] = {"on", "off", "cut", "reset", "reboot", NULL};
enum { CTL_CMD_ON, CTL_CMD_OFF, CTL_CMD_CUT, CTL_CMD_RESET, CTL_CMD_REBOOT };

/* Same order as enum flash_fault. */
static const char *const ctl_cmd_faults[] = {"before",     "after",      "torn-prog",
                                             "torn-erase", "skip-erase", NULL};

/* network's integer fields: name, range, and one extra value meaning "not known" (or -1). */
static const struct {
    const char *name;
    int lo, hi, alt;
} ctl_cmd_net[] = {
    {"reg", 0, 5, -1},    {"rssi", 0, 31, 99},  {"ber", 0, 7, 99},
    {"rsrq", 0, 34, 255}, {"rsrp", 0, 97, 255},
};
enum { CTL_NET_REG, CTL_NET_RSSI, CTL_NET_BER, CTL_NET_RSRQ, CTL_NET_RSRP, CTL_NET_N };

static int ctl_cmd_fail(struct ctl_err *e, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the first error (field and message) and returns -EINVAL. */
static int ctl_cmd_fail(struct ctl_err *e, const char *field, const char *fmt, ...)
{
    va_list ap;

    snprintf(e->field, sizeof(e->field), "%s", field);
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* The one wording for "this module cannot do that in its power state". */
static int ctl_cmd_off(struct ctl_err *e)
{
    return ctl_cmd_fail(e, "module", "module is off");
}

/* ---- argument helpers: 1 = given and valid, 0 = absent, -EINVAL = bad (e filled) ----------- */

/* Case-sensitive: "Action" is an unknown argument, not an alias. */
static const cJSON *ctl_cmd_arg(const cJSON *args, const char *name)
{
    return args ? cJSON_GetObjectItemCaseSensitive(args, name) : NULL;
}

/* An integral JSON number in [lo, hi] (or equal to alt when alt >= 0). */
static int ctl_cmd_int(const cJSON *args, const char *name, double lo, double hi, double alt,
                       double *out, struct ctl_err *e)
{
    const cJSON *it = ctl_cmd_arg(args, name);
    char field[40], or [32] = "";
    double v;

    if (!it)
        return 0;
    /* cJSON keeps the double: 1e300 or 2.5 must not be read through its saturated valueint. */
    v = cJSON_IsNumber(it) ? it->valuedouble : NAN;
    if (isfinite(v) && floor(v) == v && ((v >= lo && v <= hi) || (alt >= 0 && v == alt))) {
        *out = v;
        return 1;
    }
    snprintf(field, sizeof(field), "args.%s", name);
    if (alt >= 0)
        snprintf(or, sizeof(or), " or %.0f", alt);
    return ctl_cmd_fail(e, field, "must be an integer %.0f..%.0f%s", lo, hi, or);
}

/* A finite JSON number in [lo, hi]. */
static int ctl_cmd_num(const cJSON *args, const char *name, double lo, double hi, double *out,
                       struct ctl_err *e)
{
    const cJSON *it = ctl_cmd_arg(args, name);
    char field[40];

    if (!it)
        return 0;
    if (cJSON_IsNumber(it) && isfinite(it->valuedouble) && it->valuedouble >= lo &&
        it->valuedouble <= hi) {
        *out = it->valuedouble;
        return 1;
    }
    snprintf(field, sizeof(field), "args.%s", name);
    return ctl_cmd_fail(e, field, "must be a number %g..%g", lo, hi);
}

static int ctl_cmd_bool(const cJSON *args, const char *name, bool *out, struct ctl_err *e)
{
    const cJSON *it = ctl_cmd_arg(args, name);
    char field[40];

    if (!it)
        return 0;
    if (cJSON_IsBool(it)) {
        *out = cJSON_IsTrue(it);
        return 1;
    }
    snprintf(field, sizeof(field), "args.%s", name);
    return ctl_cmd_fail(e, field, "must be true or false");
}

/* A JSON string of 1..max bytes (0..max when empty_ok). */
static int ctl_cmd_str(const cJSON *args, const char *name, size_t max, bool empty_ok,
                       const char **out, struct ctl_err *e)
{
    const cJSON *it = ctl_cmd_arg(args, name);
    char field[40];
    size_t n;

    if (!it)
        return 0;
    snprintf(field, sizeof(field), "args.%s", name);
    if (!cJSON_IsString(it) || !it->valuestring)
        return ctl_cmd_fail(e, field, "must be a string");
    n = strlen(it->valuestring);
    if (n > max || (!n && !empty_ok))
        return ctl_cmd_fail(e, field, "must be a string of %d..%zu bytes", empty_ok ? 0 : 1, max);
    *out = it->valuestring;
    return 1;
}

/* A string out of names[] (NULL-terminated); *out is its index. */
static int ctl_cmd_enum(const cJSON *args, const char *name, const char *const *names, int *out,
                        struct ctl_err *e)
{
    const cJSON *it = ctl_cmd_arg(args, name);
    char field[40], list[128] = "";
    size_t used = 0;

    if (!it)
        return 0;
    for (int i = 0; names[i]; i++) {
        if (cJSON_IsString(it) && it->valuestring && strcmp(it->valuestring, names[i]) == 0) {
            *out = i;
            return 1;
        }
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", names[i]);
        if (used >= sizeof(list))
            used = sizeof(list) - 1;
    }
    snprintf(field, sizeof(field), "args.%s", name);
    return ctl_cmd_fail(e, field, "must be one of %s", list);
}

/* Printable ASCII without '"' (it goes into quoted AT responses such as +COPS). */
static bool ctl_cmd_printable(const char *s)
{
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7e || *s == '"')
            return false;
    return true;
}

/* restore (power cut, cut_at): seconds >= 0; absent = stays off (-1). */
static int ctl_cmd_restore(const cJSON *args, struct ctl_cmd_args *a, struct ctl_err *e)
{
    int rc = ctl_cmd_num(args, "restore", 0, CTL_CMD_MAX_SECONDS, &a->restore, e);

    if (rc == 0)
        a->restore = -1;
    return rc < 0 ? rc : 0;
}

/* ---- JSON output helpers --------------------------------------------------------------------- */

/* uint64 counters go out as JSON numbers: exact up to 2^53, far beyond any run. */
static void ctl_cmd_add_flash(cJSON *o, const struct flash_stats *st)
{
    cJSON_AddNumberToObject(o, "ops", (double)st->ops);
    cJSON_AddNumberToObject(o, "progs", (double)st->progs);
    cJSON_AddNumberToObject(o, "erases", (double)st->erases);
    cJSON_AddNumberToObject(o, "violations", (double)st->violations);
    cJSON_AddNumberToObject(o, "max_wear", st->max_wear);
}

/* The flash stats object of m, or JSON null while its flash is closed. */
static cJSON *ctl_cmd_flash_json(const struct modem *m)
{
    struct flash_stats st;
    cJSON *o;

    if (!m->flash_open)
        return cJSON_CreateNull();
    flash_stats(&m->flash, &st);
    o = cJSON_CreateObject();
    if (o)
        ctl_cmd_add_flash(o, &st);
    return o;
}

static void ctl_cmd_add_str(cJSON *o, const char *key, const char *s)
{
    if (s)
        cJSON_AddStringToObject(o, key, s);
    else
        cJSON_AddNullToObject(o, key);
}

/* ---- status, flash, files -------------------------------------------------------------------- */

/* status works in every state: fields that need a running module fall back to null or the
 * values the firmware reports while off (reg 0). */
static int ctl_cmd_status(struct ctl_cmd_call *x, struct modem *m, cJSON **out)
{
    cJSON *o = cJSON_CreateObject(), *ports;

    if (!o)
        return -ENOMEM;
    *out = o;
    ctl_cmd_add_str(o, "model", m->model ? m->model->name : NULL);
    cJSON_AddNumberToObject(o, "index", m->index);
    cJSON_AddStringToObject(o, "power", modem_power_name(m->power));
    ctl_cmd_add_str(o, "revision", m->model ? modem_revision(m) : NULL);
    cJSON_AddStringToObject(o, "imei", m->imei);
    /* A USB port has no PTY while the module is off (it re-enumerates after boot). */
    ports = cJSON_AddArrayToObject(o, "ports");
    for (unsigned i = 0; ports && i < m->nports && i < MODEM_MAX_PORTS; i++) {
        const struct modem_port *p = &m->ports[i];
        cJSON *po = cJSON_CreateObject();

        if (!po)
            break;
        ctl_cmd_add_str(po, "kind", p->kind);
        ctl_cmd_add_str(po, "pty", p->pty_open ? p->pty.name : NULL);
        ctl_cmd_add_str(po, "link", p->link[0] ? p->link : NULL);
        cJSON_AddBoolToObject(po, "connected", p->pty_open && pty_connected(&p->pty));
        /* bytes the module lost: UART overruns, and data sent before a data-mode prompt */
        cJSON_AddNumberToObject(po, "overrun", (double)p->uart.overrun);
        cJSON_AddNumberToObject(po, "dropped", p->at_ready ? (double)p->at.dropped : 0);
        cJSON_AddItemToArray(ports, po);
    }
    cJSON_AddNumberToObject(o, "boots", (double)m->boots);
    cJSON_AddNumberToObject(o, "cmee", m->cmee);
    cJSON_AddNumberToObject(o, "cfun", m->cfun);
    cJSON_AddNumberToObject(o, "reg", modem_reg_state(m));
    cJSON_AddBoolToObject(o, "sim", m->radio.sim_present);
    cJSON_AddItemToObject(o, "flash", ctl_cmd_flash_json(m));
    {
        cJSON *fo = cJSON_AddObjectToObject(o, "fota");
        if (fo) {
            cJSON_AddStringToObject(fo, "state", fota_state_name(m->fota.state));
            cJSON_AddStringToObject(fo, "policy", fota_policy_name(m->policy));
            cJSON_AddNumberToObject(fo, "outcome", m->fota.outcome);
            cJSON_AddStringToObject(fo, "outcome_text", pkg_err_name(m->fota.outcome));
            cJSON_AddNumberToObject(fo, "progress", m->fota.pct);
        }
    }
    {
        static const char *const dl_states[] = {"idle", "running", "done", "failed"};
        struct dl_status ds;
        cJSON *d = cJSON_AddObjectToObject(o, "download");

        dl_status(&m->dl, &ds);
        if (d) {
            cJSON_AddStringToObject(d, "state", dl_states[ds.state]);
            cJSON_AddNumberToObject(d, "got", (double)ds.got);
            cJSON_AddNumberToObject(d, "total", (double)ds.total);
            cJSON_AddStringToObject(d, "error", xfer_err_name(ds.err));
            cJSON_AddNumberToObject(d, "detail", ds.detail);
        }
    }
    cJSON_AddNumberToObject(o, "t", vclock_now(&x->f->clock));
    cJSON_AddNumberToObject(o, "speed", x->f->clock.speed);
    return 0;
}

static int ctl_cmd_flash(struct ctl_cmd_call *x, struct modem *m, cJSON **out)
{
    if (!m->flash_open)
        return ctl_cmd_off(x->e);
    *out = ctl_cmd_flash_json(m);
    return *out ? 0 : -ENOMEM;
}

/* ufs_list callback: one {name, size} per file into the array ctx. */
static int ctl_cmd_files_one(void *ctx, const char *name, uint64_t size)
{
    cJSON *o = cJSON_CreateObject();

    if (!o)
        return -ENOMEM;
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddNumberToObject(o, "size", (double)size);
    cJSON_AddItemToArray(ctx, o);
    return 0;
}

static int ctl_cmd_files(struct ctl_cmd_call *x, struct modem *m, cJSON **out)
{
    uint64_t free_b = 0, total = 0;
    cJSON *o, *files;

    if (!m->storage_ok)
        return ctl_cmd_off(x->e);
    o = cJSON_CreateObject();
    if (!o)
        return -ENOMEM;
    *out = o;
    files = cJSON_AddArrayToObject(o, "files");
    if (!files)
        return -ENOMEM;
    if (ufs_list(&m->ufs, ctl_cmd_files_one, files))
        return -ENOMEM;
    ufs_space(&m->ufs, &free_b, &total);
    cJSON_AddNumberToObject(o, "free", (double)free_b);
    cJSON_AddNumberToObject(o, "total", (double)total);
    return 0;
}

/* ---- power, cut_at --------------------------------------------------------------------------- */

static int ctl_cmd_power_parse(const cJSON *args, struct ctl_cmd_args *a, struct ctl_err *e)
{
    int rc = ctl_cmd_enum(args, "action", ctl_cmd_actions, &a->action, e);

    if (rc == 0)
        return ctl_cmd_fail(e, "args.action", "required: one of on, off, cut, reset, reboot");
    if (rc < 0)
        return rc;
    rc = ctl_cmd_restore(args, a, e);
    if (rc)
        return rc;
    if (a->restore >= 0 && a->action != CTL_CMD_CUT)
        return ctl_cmd_fail(e, "args.restore", "only with action cut");
    return 0;
}

/* The modem_* calls never fail on a module in the "wrong" state (they do nothing or restart it),
 * except power-on, which must start from off. */
static int ctl_cmd_power(struct ctl_cmd_call *x, struct modem *m, cJSON **out)
{
    int rc;

    switch (x->a.action) {
    case CTL_CMD_ON:
        if (m->power != MODEM_OFF)
            return ctl_cmd_fail(x->e, "args.action", "module is not off");
        rc = modem_power_on(m);
        if (rc)
            return ctl_cmd_fail(x->e, "args.action", "power-on failed: %s", strerror(-rc));
        break;
    case CTL_CMD_OFF:
        modem_power_off(m);
        break;
    case CTL_CMD_CUT:
        modem_power_cut(m, x->a.restore);
        break;
    case CTL_CMD_RESET:
        modem_reset(m);
        break;
    default:
        modem_reboot(m);
        break;
    }
    *out = cJSON_CreateObject();
    if (!*out)
        return -ENOMEM;
    cJSON_AddStringToObject(*out, "power", modem_power_name(m->power));
    return 0;
}

/* op is bounded by 2^53 so the double from JSON converts to uint64 exactly. */
static int ctl_cmd_cut_at_parse(const cJSON *args, struct ctl_cmd_args *a, struct ctl_err *e)
{
    double v;
    int rc;

    rc = ctl_cmd_int(args, "op", 1, CTL_CMD_MAX_OP, -1, &v, e);
    if (rc == 0)
        return ctl_cmd_fail(e, "args.op", "required: an integer 1..%.0f", CTL_CMD_MAX_OP);
    if (rc < 0)
        return rc;
    a->op = (uint64_t)v;
    a->fault = FLASH_CUT_BEFORE;
    if (ctl_cmd_enum(args, "fault", ctl_cmd_faults, &a->fault, e) < 0)
        return -EINVAL;
    v = 1;
    if (ctl_cmd_int(args, "seed", 0, UINT32_MAX, -1, &v, e) < 0)
        return -EINVAL;
    a->seed = (uint32_t)v;
    return ctl_cmd_restore(args, a, e);
}

static int ctl_cmd_cut_at(struct ctl_cmd_call *x, struct modem *m, cJSON **out)
{
    const struct ctl_cmd_args *a = &x->a;
    cJSON *o;

    /* A dead module's flash refuses everything already; arming it would never fire. */
    if (!m->flash_open || m->power == MODEM_OFF || m->power == MODEM_DEAD || flash_dead(&m->flash))
        return ctl_cmd_off(x->e);
    modem_arm_cut(m, a->op, (enum flash_fault)a->fault, a->seed, a->restore);
    o = cJSON_CreateObject();
    if (!o)
        return -ENOMEM;
    *out = o;
    cJSON_AddNumberToObject(o, "op", (double)a->op);
    cJSON_AddNumberToObject(o, "at", (double)(flash_ops(&m->flash) + a->op));
    cJSON_AddStringToObject(o, "fault", ctl_cmd_faults[a->fault]);
    cJSON_AddNumberToObject(o, "seed", a->seed);
    if (a->restore >= 0)
        cJSON_AddNumberToObject(o, "restore", a->restore);
    else
        cJSON_AddNullToObject(o, "restore");
    return 0;
}

/* ---- cut_on: a cut as a URC is about to go out ----------------------------------------------- */

static int ctl_cmd_cut_on_parse(const cJSON *args, struct ctl_cmd_args *a, struct ctl_err *e)
{
    int rc = ctl_cmd_str(args, "urc", MODEM_CUT_URC_MAX, true, &a->url, e);

    if (rc == 0)
        return ctl_cmd_fail(e, "args.urc", "required: the start of a URC (\"\" disarms)");
    if (rc < 0)
        return rc;
    return ctl_cmd_restore(args, a, e);
}

static int ctl_cmd_cut_on(struct ctl_cmd_call *x, struct modem *m, cJSON **out)
{
    const struct ctl_cmd_args *a = &x->a;

    modem_arm_cut_urc(m, a->url, a->restore);
    *out = cJSON_CreateObject();
    if (!*out)
        return -ENOMEM;
    cJSON_AddStringToObject(*out, "urc", a->url);
    if (a->restore >= 0)
        cJSON_AddNumberToObject(*out, "restore", a->restore);
    else
        cJSON_AddNullToObject(*out, "restore");
    return 0;
}

/* ---- network, sim ---------------------------------------------------------------------------- */

/* Each field is optional; net_set records which ones were given so run copies only those. */
static int ctl_cmd_network_parse(const cJSON *args, struct ctl_cmd_args *a, struct ctl_err *e)
{
    struct in6_addr addr;
    double v;
    int rc;

    for (int i = 0; i < CTL_NET_N; i++) {
        rc = ctl_cmd_int(args, ctl_cmd_net[i].name, ctl_cmd_net[i].lo, ctl_cmd_net[i].hi,
                         ctl_cmd_net[i].alt, &v, e);
        if (rc < 0)
            return rc;
        if (rc) {
            a->net[i] = (int)v;
            a->net_set |= 1u << i;
        }
    }
    rc = ctl_cmd_str(args, "oper", 31, true, &a->oper, e);
    if (rc < 0)
        return rc;
    if (a->oper && !ctl_cmd_printable(a->oper))
        return ctl_cmd_fail(e, "args.oper", "must be printable ASCII without '\"'");
    rc = ctl_cmd_str(args, "ip", 47, false, &a->ip, e);
    if (rc < 0)
        return rc;
    if (a->ip && inet_pton(AF_INET, a->ip, &addr) != 1 && inet_pton(AF_INET6, a->ip, &addr) != 1)
        return ctl_cmd_fail(e, "args.ip", "must be an IPv4 or IPv6 address");
    /* The world's transfer conditions: each given field is set, the others stay. */
    {
        bool *flags[] = {&a->outage, &a->dns_fail, &a->refuse, &a->stall};
        static const char *const names[] = {"outage", "dns_fail", "refuse", "stall"};
        for (int i = 0; i < 4; i++) {
            rc = ctl_cmd_bool(args, names[i], flags[i], e);
            if (rc < 0)
                return rc;
            a->world_set |= rc ? 1u << i : 0;
        }
    }
    rc = ctl_cmd_int(args, "rate", 0, CTL_CMD_MAX_OP, -1, &a->rate, e);
    if (rc < 0)
        return rc;
    a->world_set |= rc ? 1u << 4 : 0;
    rc = ctl_cmd_num(args, "latency", 0, 3600, &a->latency, e);
    if (rc < 0)
        return rc;
    a->world_set |= rc ? 1u << 5 : 0;
    rc = ctl_cmd_int(args, "cut_after", 0, CTL_CMD_MAX_OP, -1, &a->cut_after, e);
    if (rc < 0)
        return rc;
    a->world_set |= rc ? 1u << 6 : 0;
    return 0;
}

/* Changes go through radio_set on a copy, so the firmware sees one change (one round of
 * +CREG/+CEREG URCs) however many fields moved. */
static int ctl_cmd_network(struct ctl_cmd_call *x, struct modem *m, cJSON **out)
{
    const struct ctl_cmd_args *a = &x->a;
    struct radio r = m->radio;
    int *dst[CTL_NET_N] = {NULL, &r.rssi, &r.ber, &r.rsrq, &r.rsrp};
    cJSON *o;

    if (a->net_set || a->oper || a->ip) {
        if (a->net_set & (1u << CTL_NET_REG))
            r.reg = (enum radio_reg)a->net[CTL_NET_REG];
        for (int i = CTL_NET_RSSI; i < CTL_NET_N; i++)
            if (a->net_set & (1u << i))
                *dst[i] = a->net[i];
        if (a->oper)
            snprintf(r.oper, sizeof(r.oper), "%s", a->oper);
        if (a->ip)
            snprintf(r.ip, sizeof(r.ip), "%s", a->ip);
        radio_set(&m->radio, &r);
    }
    if (a->world_set) {
        if (a->world_set & 1u)
            m->outage = a->outage;
        if (a->world_set & 2u)
            m->net.dns_fail = a->dns_fail;
        if (a->world_set & 4u)
            m->net.refuse = a->refuse;
        if (a->world_set & 8u)
            m->net.stall = a->stall;
        if (a->world_set & 16u)
            m->net.rate = (uint64_t)a->rate;
        if (a->world_set & 32u)
            m->net.latency = a->latency;
        if (a->world_set & 64u)
            m->net.cut_after = (uint64_t)a->cut_after;
        modem_net_update(m);
    }
    o = cJSON_CreateObject();
    if (!o)
        return -ENOMEM;
    *out = o;
    cJSON_AddNumberToObject(o, "reg", m->radio.reg);
    cJSON_AddNumberToObject(o, "rssi", m->radio.rssi);
    cJSON_AddNumberToObject(o, "ber", m->radio.ber);
    cJSON_AddNumberToObject(o, "rsrq", m->radio.rsrq);
    cJSON_AddNumberToObject(o, "rsrp", m->radio.rsrp);
    cJSON_AddStringToObject(o, "oper", m->radio.oper);
    cJSON_AddStringToObject(o, "ip", m->radio.ip);
    cJSON_AddBoolToObject(o, "data", m->net.up);
    cJSON_AddBoolToObject(o, "outage", m->outage);
    cJSON_AddBoolToObject(o, "dns_fail", m->net.dns_fail);
    cJSON_AddBoolToObject(o, "refuse", m->net.refuse);
    cJSON_AddBoolToObject(o, "stall", m->net.stall);
    cJSON_AddNumberToObject(o, "rate", (double)m->net.rate);
    cJSON_AddNumberToObject(o, "latency", m->net.latency);
    cJSON_AddNumberToObject(o, "cut_after", (double)m->net.cut_after);
    return 0;
}

static int ctl_cmd_sim_parse(const cJSON *args, struct ctl_cmd_args *a, struct ctl_err *e)
{
    int rc = ctl_cmd_bool(args, "present", &a->present, e);

    if (rc == 0)
        return ctl_cmd_fail(e, "args.present", "required: true or false");
    return rc < 0 ? rc : 0;
}

/* The card slot is part of the radio view: same path as network, so +CPIN follows. */
static int ctl_cmd_sim(struct ctl_cmd_call *x, struct modem *m, cJSON **out)
{
    struct radio r = m->radio;

    r.sim_present = x->a.present;
    radio_set(&m->radio, &r);
    *out = cJSON_CreateObject();
    if (!*out)
        return -ENOMEM;
    cJSON_AddBoolToObject(*out, "sim", m->radio.sim_present);
    return 0;
}

/* ---- time, events ---------------------------------------------------------------------------- */

/* speed: "max", a number, or a number as text (the form --speed takes on the command line). */
static int ctl_cmd_time_parse(const cJSON *args, struct ctl_cmd_args *a, struct ctl_err *e)
{
    const cJSON *it = ctl_cmd_arg(args, "speed");

    if (!it)
        return 0;
    a->has_speed = true;
    if (cJSON_IsString(it) && it->valuestring &&
        vclock_parse_speed(it->valuestring, &a->speed) == 0)
        return 0;
    if (cJSON_IsNumber(it) && it->valuedouble > 0 && it->valuedouble <= CTL_CMD_MAX_SECONDS) {
        a->speed = it->valuedouble;
        return 0;
    }
    return ctl_cmd_fail(e, "args.speed", "must be \"max\" or a number > 0 and <= 1e9");
}

static int ctl_cmd_time(struct ctl_cmd_call *x, struct modem *m, cJSON **out)
{
    (void)m;
    if (x->a.has_speed)
        vclock_set_speed(&x->f->clock, x->a.speed);
    *out = cJSON_CreateObject();
    if (!*out)
        return -ENOMEM;
    cJSON_AddNumberToObject(*out, "t", vclock_now(&x->f->clock));
    cJSON_AddNumberToObject(*out, "speed", x->f->clock.speed);
    return 0;
}

/* kinds: absent = everything; [] = nothing (unsubscribe); duplicates are harmless. */
static int ctl_cmd_events_parse(const cJSON *args, struct ctl_cmd_args *a, struct ctl_err *e)
{
    const cJSON *kinds = ctl_cmd_arg(args, "kinds"), *k;
    unsigned i;

    a->kinds = CTL_EV_ALL;
    if (!kinds)
        return 0;
    if (!cJSON_IsArray(kinds))
        return ctl_cmd_fail(e, "args.kinds", "must be an array of urc, rx, tx, state, flash");
    a->kinds = 0;
    cJSON_ArrayForEach(k, kinds)
    {
        for (i = 0; ctl_event_name(i); i++)
            if (cJSON_IsString(k) && k->valuestring &&
                strcmp(k->valuestring, ctl_event_name(i)) == 0)
                break;
        if (!ctl_event_name(i))
            return ctl_cmd_fail(e, "args.kinds", "must be an array of urc, rx, tx, state, flash");
        a->kinds |= 1u << i;
    }
    return 0;
}

static int ctl_cmd_events(struct ctl_cmd_call *x, struct modem *m, cJSON **out)
{
    cJSON *o, *list;

    (void)m;
    /* An explicit module index filters the stream; absent or "all" means every module. */
    if (x->from)
        ctl_subscribe(x->from, x->a.kinds, x->module_given ? x->module : -1);
    o = cJSON_CreateObject();
    if (!o)
        return -ENOMEM;
    *out = o;
    list = cJSON_AddArrayToObject(o, "subscribed");
    for (unsigned i = 0; list && ctl_event_name(i); i++)
        if (x->a.kinds & (1u << i))
            cJSON_AddItemToArray(list, cJSON_CreateString(ctl_event_name(i)));
    return 0;
}

/* ---- push, pull ------------------------------------------------------------------------------ */

/* The data is decoded here, once, so a bad base64 string is refused before any module (of
 * "all") is touched; the engine frees a->data. */
static int ctl_cmd_push_parse(const cJSON *args, struct ctl_cmd_args *a, struct ctl_err *e)
{
    const char *b64 = NULL;
    size_t n = 0;
    int rc;

    rc = ctl_cmd_str(args, "name", UFS_NAME_MAX, false, &a->name, e);
    if (rc == 0)
        return ctl_cmd_fail(e, "args.name", "required: a file name of 1..%d bytes", UFS_NAME_MAX);
    if (rc < 0)
        return rc;
    rc = ctl_cmd_str(args, "data", CTL_LINE_MAX, true, &b64, e);
    if (rc == 0)
        return ctl_cmd_fail(e, "args.data", "required: base64 text");
    if (rc < 0)
        return rc;
    if (ctl_cmd_bool(args, "append", &a->append, e) < 0)
        return -EINVAL;
    /* First the size (dst NULL), then the bytes; both calls reject a bad character. */
    rc = mbedtls_base64_decode(NULL, 0, &n, (const unsigned char *)b64, strlen(b64));
    if (rc == MBEDTLS_ERR_BASE64_INVALID_CHARACTER)
        return ctl_cmd_fail(e, "args.data", "not valid base64");
    a->data = malloc(n ? n : 1);
    if (!a->data)
        return ctl_cmd_fail(e, "args.data", "out of memory");
    if (mbedtls_base64_decode(a->data, n, &a->data_len, (const unsigned char *)b64, strlen(b64)))
        return ctl_cmd_fail(e, "args.data", "not valid base64");
    return 0;
}

/* The field a UFS error belongs to, and its message. */
static int ctl_cmd_ufs_fail(struct ctl_err *e, struct modem *m, int rc)
{
    if (rc == -ECANCELED || (m->flash_open && flash_dead(&m->flash)))
        return ctl_cmd_fail(e, "module", "power was cut during the operation");
    switch (rc) {
    case -ENOSPC:
        return ctl_cmd_fail(e, "args.data", "no space");
    case -ENOENT:
        return ctl_cmd_fail(e, "args.name", "no such file");
    case -EINVAL:
        return ctl_cmd_fail(e, "args.name", "not a valid file name (1..%d bytes)", UFS_NAME_MAX);
    case -ENFILE:
        return ctl_cmd_fail(e, "args.name", "file table full (%d files)", UFS_MAX_FILES);
    case -EBUSY:
        return ctl_cmd_fail(e, "args.name", "file is open for writing");
    default:
        return ctl_cmd_fail(e, "args.data", "file area error: %s", strerror(-rc));
    }
}

/* A dead module still has its storage mounted until the next loop turn, but its flash refuses
 * writes: treat it as off rather than report a flash error. */
static int ctl_cmd_push(struct ctl_cmd_call *x, struct modem *m, cJSON **out)
{
    const struct ctl_cmd_args *a = &x->a;
    struct ufs_file fh;
    struct ufs_stat st = {0};
    ssize_t n;
    int rc;

    if (!m->storage_ok || m->power == MODEM_OFF || m->power == MODEM_DEAD || flash_dead(&m->flash))
        return ctl_cmd_off(x->e);
    rc = ufs_open(&m->ufs, &fh, a->name,
                  UFS_WRONLY | UFS_CREAT | (a->append ? UFS_APPEND : UFS_TRUNC));
    if (rc)
        goto out;
    n = a->data_len ? ufs_write(&fh, a->data, a->data_len) : 0;
    if (n < 0) {
        ufs_abort(&fh);
        rc = (int)n;
        goto out;
    }
    /* Close publishes the content atomically: after a cut the file is old or new, never torn. */
    rc = ufs_close(&fh);
    if (rc)
        goto out;
    ufs_stat(&m->ufs, a->name, &st);
    *out = cJSON_CreateObject();
    if (!*out) {
        rc = -ENOMEM;
        goto out;
    }
    cJSON_AddStringToObject(*out, "name", a->name);
    cJSON_AddNumberToObject(*out, "size", (double)st.size);
    cJSON_AddNumberToObject(*out, "written", (double)a->data_len);
out:
    modem_flash_event(m);
    if (rc && rc != -ENOMEM)
        return ctl_cmd_ufs_fail(x->e, m, rc);
    return rc;
}

/* offset and length of a read (pull, image). */
static int ctl_cmd_pull_parse_range(const cJSON *args, struct ctl_cmd_args *a, struct ctl_err *e)
{
    double v = 0;
    int rc;

    if (ctl_cmd_int(args, "offset", 0, CTL_CMD_MAX_OP, -1, &v, e) < 0)
        return -EINVAL;
    a->offset = (uint64_t)v;
    rc = ctl_cmd_int(args, "length", 0, CTL_CMD_MAX_OP, -1, &v, e);
    if (rc < 0)
        return rc;
    a->has_length = rc == 1;
    a->length = (uint64_t)v;
    return 0;
}

static int ctl_cmd_pull_parse(const cJSON *args, struct ctl_cmd_args *a, struct ctl_err *e)
{
    int rc = ctl_cmd_str(args, "name", UFS_NAME_MAX, false, &a->name, e);

    if (rc == 0)
        return ctl_cmd_fail(e, "args.name", "required: a file name of 1..%d bytes", UFS_NAME_MAX);
    if (rc < 0)
        return rc;
    return ctl_cmd_pull_parse_range(args, a, e);
}

/* Reads committed content only (what a power cut now would leave), so a file the firmware is
 * writing shows its last synced state. */
static int ctl_cmd_pull(struct ctl_cmd_call *x, struct modem *m, cJSON **out)
{
    const struct ctl_cmd_args *a = &x->a;
    unsigned char *buf = NULL, *b64 = NULL;
    struct ufs_stat st;
    size_t len = 0, got = 0, olen = 0;
    ssize_t n;
    int rc;

    if (!m->storage_ok)
        return ctl_cmd_off(x->e);
    rc = ufs_stat(&m->ufs, a->name, &st);
    if (rc)
        return ctl_cmd_ufs_fail(x->e, m, rc);
    if (a->offset > st.size)
        return ctl_cmd_fail(x->e, "args.offset", "beyond the end of the file (%llu bytes)",
                            (unsigned long long)st.size);
    len = (size_t)(st.size - a->offset);
    if (a->has_length && a->length < len)
        len = (size_t)a->length;
    buf = malloc(len ? len : 1);
    if (!buf) {
        rc = -ENOMEM;
        goto out;
    }
    while (got < len) {
        n = ufs_pread(&m->ufs, a->name, a->offset + got, buf + got, len - got);
        if (n <= 0) {
            rc = n ? ctl_cmd_ufs_fail(x->e, m, (int)n)
                   : ctl_cmd_fail(x->e, "args.name", "file shrank while reading");
            goto out;
        }
        got += (size_t)n;
    }
    mbedtls_base64_encode(NULL, 0, &olen, buf, len);
    b64 = malloc(olen + 1);
    if (!b64 || mbedtls_base64_encode(b64, olen + 1, &olen, buf, len)) {
        rc = -ENOMEM;
        goto out;
    }
    b64[olen] = '\0';
    *out = cJSON_CreateObject();
    if (!*out) {
        rc = -ENOMEM;
        goto out;
    }
    cJSON_AddStringToObject(*out, "name", a->name);
    cJSON_AddNumberToObject(*out, "size", (double)st.size);
    cJSON_AddNumberToObject(*out, "offset", (double)a->offset);
    cJSON_AddStringToObject(*out, "data", (const char *)b64);
out:
    free(buf);
    free(b64);
    return rc;
}

/* ---- firmware: the running image, update jobs ------------------------------------------------- */

static int ctl_cmd_fota_parse(const cJSON *args, struct ctl_cmd_args *a, struct ctl_err *e)
{
    int rc = ctl_cmd_str(args, "file", UFS_NAME_MAX, false, &a->name, e);

    if (rc == 0)
        return ctl_cmd_fail(e, "args.file", "required: the package's file name in UFS");
    if (rc < 0)
        return rc;
    a->now = true;
    return ctl_cmd_bool(args, "now", &a->now, e) < 0 ? -EINVAL : 0;
}

/* Starts an update job on a package already in UFS, as a platform-triggered update would. */
static int ctl_cmd_fota(struct ctl_cmd_call *x, struct modem *m, cJSON **out)
{
    int rc = fota_start(&m->fota, x->a.name, x->a.now);

    switch (rc) {
    case 0:
        break;
    case -ENODEV:
        return ctl_cmd_fail(x->e, "module", "module is not on");
    case -EBUSY:
        return ctl_cmd_fail(x->e, "args.file", "an update job is running (state %s)",
                            fota_state_name(m->fota.state));
    case -ENOENT:
        return ctl_cmd_fail(x->e, "args.file", "no such file");
    case -ECANCELED:
        return ctl_cmd_fail(x->e, "module", "power was cut during the operation");
    default:
        return ctl_cmd_fail(x->e, "args.file", "cannot start: %s", strerror(-rc));
    }
    *out = cJSON_CreateObject();
    if (!*out)
        return -ENOMEM;
    cJSON_AddStringToObject(*out, "state", fota_state_name(m->fota.state));
    return 0;
}

/* The running image: its header, and with `length` its bytes (base64) from `offset`. */
static int ctl_cmd_image(struct ctl_cmd_call *x, struct modem *m, cJSON **out)
{
    const struct ctl_cmd_args *a = &x->a;
    const struct model_part *sys = model_part(m->model, "system");
    const uint8_t *src;
    unsigned char *b64 = NULL;
    uint64_t size, len;
    size_t olen = 0;
    char hex[65];
    cJSON *o;

    if (!m->flash_open || !sys || m->power == MODEM_DEAD)
        return ctl_cmd_off(x->e);
    size = m->fw_ok ? fw_image_size(&m->fw) : sys->size;
    if (a->offset > size)
        return ctl_cmd_fail(x->e, "args.offset", "beyond the end of the image (%llu bytes)",
                            (unsigned long long)size);
    o = *out = cJSON_CreateObject();
    if (!o)
        return -ENOMEM;
    cJSON_AddBoolToObject(o, "valid", m->fw_ok);
    cJSON_AddNumberToObject(o, "offset", fota_active_offset(m));
    cJSON_AddNumberToObject(o, "size", (double)size);
    if (m->fw_ok) {
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", m->fw.body_sha256[i]);
        cJSON_AddStringToObject(o, "revision", m->fw.revision);
        cJSON_AddStringToObject(o, "project", m->fw.project);
        cJSON_AddStringToObject(o, "baseline", m->fw.baseline);
        cJSON_AddStringToObject(o, "body_sha256", hex);
    }
    if (!a->has_length)
        return 0;
    len = size - a->offset < a->length ? size - a->offset : a->length;
    src = flash_data(&m->flash) + fota_active_offset(m) + a->offset;
    mbedtls_base64_encode(NULL, 0, &olen, src, (size_t)len);
    b64 = malloc(olen + 1);
    if (!b64 || mbedtls_base64_encode(b64, olen + 1, &olen, src, (size_t)len)) {
        free(b64);
        return -ENOMEM;
    }
    b64[olen] = 0;
    cJSON_AddStringToObject(o, "data", (const char *)b64);
    free(b64);
    return 0;
}

/* ---- downloads ---------------------------------------------------------------------------- */

static int ctl_cmd_download_parse(const cJSON *args, struct ctl_cmd_args *a, struct ctl_err *e)
{
    int rc = ctl_cmd_str(args, "url", 1024, false, &a->url, e);

    if (rc == 0)
        return ctl_cmd_fail(e, "args.url", "required: the URL to fetch");
    if (rc < 0)
        return rc;
    rc = ctl_cmd_str(args, "file", UFS_NAME_MAX, false, &a->name, e);
    if (rc == 0)
        return ctl_cmd_fail(e, "args.file", "required: the UFS file to write");
    if (rc < 0)
        return rc;
    if (ctl_cmd_num(args, "timeout", 0.1, 600, &a->timeout, e) < 0)
        return -EINVAL;
    return ctl_cmd_bool(args, "resume", &a->resume, e) < 0 ? -EINVAL : 0;
}

/* The download job's milestones go to the event stream as "fota" events. */
static void ctl_cmd_dl_done(void *ctx, struct dl *d, enum xfer_err err, int detail)
{
    struct modem *m = ctx;

    (void)d;
    modem_fota_note(m, "download-end %d %s %d", (int)err, xfer_err_name(err), detail);
    modem_flash_event(m);
}

/* Fetches a URL into a UFS file through the module's own transfer stack (as a family would). */
static int ctl_cmd_download(struct ctl_cmd_call *x, struct modem *m, cJSON **out)
{
    const struct ctl_cmd_args *a = &x->a;
    struct xfer_opts o;
    struct dl_status st;
    int rc;

    if (m->power != MODEM_ON || !m->storage_ok)
        return ctl_cmd_fail(x->e, "module", "module is not on");
    if (m->dl.state == DL_RUNNING)
        return ctl_cmd_fail(x->e, "args.url", "a download is running");
    modem_xfer_defaults(m, &o);
    if (a->timeout > 0)
        o.connect_timeout = o.low_speed_time = a->timeout;
    rc = dl_start(&m->dl, &m->xenv, &m->ufs, a->url, a->name, a->resume, &o, ctl_cmd_dl_done, m);
    dl_status(&m->dl, &st);
    if (rc == -EPROTONOSUPPORT)
        return ctl_cmd_fail(x->e, "args.url", "%s", xfer_err_name(st.err));
    if (rc == -ENETDOWN)
        return ctl_cmd_fail(x->e, "module", "no data service (not registered or outage)");
    if (rc)
        return ctl_cmd_ufs_fail(x->e, m, rc);
    *out = cJSON_CreateObject();
    if (!*out)
        return -ENOMEM;
    cJSON_AddStringToObject(*out, "state", "running");
    cJSON_AddNumberToObject(*out, "from", (double)st.got);
    return 0;
}

/* ---- the table and the engine ---------------------------------------------------------------- */

/* Accepted argument names per command: anything else is an error naming it. */
static const char *const ctl_cmd_no_args[] = {NULL};
static const char *const ctl_cmd_cut_at_args[] = {"op", "fault", "seed", "restore", NULL};
static const char *const ctl_cmd_cut_on_args[] = {"urc", "restore", NULL};
static const char *const ctl_cmd_events_args[] = {"kinds", NULL};
static const char *const ctl_cmd_fota_args[] = {"file", "now", NULL};
static const char *const ctl_cmd_image_args[] = {"offset", "length", NULL};
static const char *const ctl_cmd_network_args[] = {
    "reg",    "rssi",     "ber",    "rsrq",  "rsrp", "oper",    "ip",        "outage",
    "dns_fail", "refuse", "stall", "rate", "latency", "cut_after", NULL};
static const char *const ctl_cmd_download_args[] = {"url", "file", "resume", "timeout", NULL};
static const char *const ctl_cmd_power_args[] = {"action", "restore", NULL};
static const char *const ctl_cmd_pull_args[] = {"name", "offset", "length", NULL};
static const char *const ctl_cmd_push_args[] = {"name", "data", "append", NULL};
static const char *const ctl_cmd_sim_args[] = {"present", NULL};
static const char *const ctl_cmd_time_args[] = {"speed", NULL};

/* Sorted by name. */
static const struct ctl_cmd_def ctl_cmd_table[] = {
    {"cut_at", ctl_cmd_cut_at_args, true, ctl_cmd_cut_at_parse, ctl_cmd_cut_at},
    {"cut_on", ctl_cmd_cut_on_args, true, ctl_cmd_cut_on_parse, ctl_cmd_cut_on},
    {"download", ctl_cmd_download_args, true, ctl_cmd_download_parse, ctl_cmd_download},
    {"events", ctl_cmd_events_args, false, ctl_cmd_events_parse, ctl_cmd_events},
    {"files", ctl_cmd_no_args, true, NULL, ctl_cmd_files},
    {"flash", ctl_cmd_no_args, true, NULL, ctl_cmd_flash},
    {"fota", ctl_cmd_fota_args, true, ctl_cmd_fota_parse, ctl_cmd_fota},
    {"image", ctl_cmd_image_args, true, ctl_cmd_pull_parse_range, ctl_cmd_image},
    {"network", ctl_cmd_network_args, true, ctl_cmd_network_parse, ctl_cmd_network},
    {"power", ctl_cmd_power_args, true, ctl_cmd_power_parse, ctl_cmd_power},
    {"pull", ctl_cmd_pull_args, true, ctl_cmd_pull_parse, ctl_cmd_pull},
    {"push", ctl_cmd_push_args, true, ctl_cmd_push_parse, ctl_cmd_push},
    {"sim", ctl_cmd_sim_args, true, ctl_cmd_sim_parse, ctl_cmd_sim},
    {"status", ctl_cmd_no_args, true, NULL, ctl_cmd_status},
    {"time", ctl_cmd_time_args, false, ctl_cmd_time_parse, ctl_cmd_time},
};

/* Strict UTF-8 (no overlongs, surrogates or NUL): the reply echoes request strings, and a
 * client's JSON decoder must be able to read it. */
/* cJSON itself does not validate UTF-8; checking the raw line first means every string we
 * echo (ids, names) is valid in the reply. */
static bool ctl_cmd_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned c = s[i], need, min, cp;

        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            need = 1, min = 0x80, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            need = 2, min = 0x800, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            need = 3, min = 0x10000, cp = c & 0x07;
        else
            return false;
        if (n - i <= need)
            return false;
        for (unsigned k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += need + 1;
    }
    return true;
}

/* field for a name the client sent: echoed when short and plain, else just the parent. */
static void ctl_cmd_unknown(struct ctl_err *e, const char *parent, const char *name,
                            const char *what)
{
    char field[64];
    bool plain = strlen(name) <= CTL_CMD_FIELD_ECHO && *name;

    for (const char *p = name; plain && *p; p++)
        plain = *p > 0x20 && *p < 0x7f;
    if (plain)
        snprintf(field, sizeof(field), "%s%s%s", parent, *parent ? "." : "", name);
    else
        snprintf(field, sizeof(field), "%s", *parent ? parent : "request");
    ctl_cmd_fail(e, field, "%s", what);
}

/* Every member of obj must be one of names[] and appear once. */
/* A bitmask of seen names finds duplicates in one pass (cJSON keeps both copies and lookups
 * would silently use the first). */
static int ctl_cmd_check_names(const cJSON *obj, const char *const *names, const char *parent,
                               struct ctl_err *e)
{
    unsigned seen = 0;
    const cJSON *it;
    int i;

    cJSON_ArrayForEach(it, obj)
    {
        for (i = 0; names[i]; i++)
            if (it->string && strcmp(it->string, names[i]) == 0)
                break;
        if (!names[i] || !it->string) {
            ctl_cmd_unknown(e, parent, it->string ? it->string : "",
                            *parent ? "unknown argument" : "unknown field");
            return -EINVAL;
        }
        if (seen & (1u << i)) {
            ctl_cmd_unknown(e, parent, it->string, "given twice");
            return -EINVAL;
        }
        seen |= 1u << i;
    }
    return 0;
}

/* Eleven entries: a linear scan is as fast as a bsearch and keeps the table simple. */
static const struct ctl_cmd_def *ctl_cmd_find(const char *name)
{
    for (size_t i = 0; i < sizeof(ctl_cmd_table) / sizeof(ctl_cmd_table[0]); i++)
        if (strcmp(ctl_cmd_table[i].name, name) == 0)
            return &ctl_cmd_table[i];
    return NULL;
}

static const char *const ctl_cmd_top[] = {"id", "cmd", "args", "module", NULL};

/* Parses and checks the envelope; fills x and *def. */
/* Order of checks: field names, cmd, module, args; the first failure is the one reported. A
 * fleet command (time, events) checks module only when one is given. */
static int ctl_cmd_envelope(struct ctl_cmd_call *x, const cJSON *req, const cJSON **args,
                            const struct ctl_cmd_def **def)
{
    const cJSON *cmd, *mod;
    struct ctl_err *e = x->e;
    int count = x->f ? x->f->count : 0;

    if (ctl_cmd_check_names(req, ctl_cmd_top, "", e))
        return -EINVAL;
    cmd = cJSON_GetObjectItemCaseSensitive(req, "cmd");
    if (!cmd)
        return ctl_cmd_fail(e, "cmd", "required");
    if (!cJSON_IsString(cmd) || !cmd->valuestring)
        return ctl_cmd_fail(e, "cmd", "must be a string");
    *def = ctl_cmd_find(cmd->valuestring);
    if (!*def)
        return ctl_cmd_fail(e, "cmd",
                            "unknown command (cut_at, cut_on, events, files, flash, network, "
                            "power, pull, push, sim, status, time)");
    mod = cJSON_GetObjectItemCaseSensitive(req, "module");
    x->module = 0;
    if (mod) {
        x->module_given = true;
        if (cJSON_IsString(mod) && mod->valuestring && strcmp(mod->valuestring, "all") == 0) {
            x->module = -1;
        } else if (cJSON_IsNumber(mod) && isfinite(mod->valuedouble) &&
                   floor(mod->valuedouble) == mod->valuedouble && mod->valuedouble >= 0 &&
                   mod->valuedouble < count) {
            x->module = (int)mod->valuedouble;
        } else if (count == 0) {
            return ctl_cmd_fail(e, "module", "the fleet has no modules");
        } else {
            return ctl_cmd_fail(e, "module", "must be an integer 0..%d or \"all\"", count - 1);
        }
    } else if ((*def)->per_module && count == 0) {
        return ctl_cmd_fail(e, "module", "the fleet has no modules");
    }
    *args = cJSON_GetObjectItemCaseSensitive(req, "args");
    if (*args && cJSON_IsNull(*args))
        *args = NULL;
    if (*args && !cJSON_IsObject(*args))
        return ctl_cmd_fail(e, "args", "must be an object");
    if (*args && ctl_cmd_check_names(*args, (*def)->args, "args", e))
        return -EINVAL;
    return 0;
}

/* Runs def on the addressed module(s) or the fleet; with "all" *out is an array in module order
 * where a module that failed has {"error":{...}}; the first failure is the reply's error. */
static int ctl_cmd_run(struct ctl_cmd_call *x, const struct ctl_cmd_def *def, cJSON **out)
{
    struct ctl_err first = {{0}, {0}};
    cJSON *arr, *one;
    int rc = 0, r;

    if (!def->per_module || x->module >= 0) {
        r = def->run(x, def->per_module ? &x->f->modems[x->module] : NULL, out);
        if (r) {
            cJSON_Delete(*out);
            *out = NULL;
        }
        return r;
    }
    arr = cJSON_CreateArray();
    if (!arr)
        return -ENOMEM;
    *out = arr;
    for (int i = 0; i < x->f->count; i++) {
        one = NULL;
        x->e->field[0] = x->e->msg[0] = '\0';
        r = def->run(x, &x->f->modems[i], &one);
        if (r) {
            cJSON_Delete(one);
            one = cJSON_CreateObject();
            if (r == -ENOMEM)
                ctl_cmd_fail(x->e, "request", "out of memory");
            if (one) {
                cJSON *err = cJSON_AddObjectToObject(one, "error");
                cJSON_AddStringToObject(err, "field", x->e->field);
                cJSON_AddStringToObject(err, "message", x->e->msg);
            }
            if (!rc) {
                rc = -EINVAL;
                snprintf(first.field, sizeof(first.field), "%s", x->e->field);
                snprintf(first.msg, sizeof(first.msg), "module %d: %.170s", i, x->e->msg);
            }
        }
        if (one)
            cJSON_AddItemToArray(arr, one);
    }
    if (rc)
        *x->e = first;
    return rc;
}

/* Never trusts line: it need not be NUL-terminated, may hold anything, and every failure path
 * still produces a well-formed reply (NULL only when even that cannot be allocated). */
char *ctl_handle(struct ctl *c, const char *line, size_t len, struct ctl_client *from)
{
    struct ctl_err e = {{0}, {0}};
    struct ctl_cmd_call x = {.c = c, .f = c ? c->fleet : NULL, .from = from, .e = &e};
    const struct ctl_cmd_def *def = NULL;
    const cJSON *args = NULL, *id;
    cJSON *req = NULL, *reply, *result = NULL, *err;
    const char *end = NULL;
    char *text = NULL;
    int rc;

    reply = cJSON_CreateObject();
    if (!reply)
        return NULL;
    if (!line || !ctl_cmd_utf8((const unsigned char *)line, len)) {
        rc = ctl_cmd_fail(&e, "request", "not valid UTF-8 text (or contains NUL)");
        goto out;
    }
    /* With a length cJSON never reads past the line; trailing bytes are checked below. */
    req = cJSON_ParseWithLengthOpts(line, len, &end, false);
    if (!req) {
        rc = ctl_cmd_fail(&e, "request", "invalid JSON at byte %zu",
                          end && end >= line ? (size_t)(end - line) : (size_t)0);
        goto out;
    }
    for (; end && end < line + len && strchr(" \t\r\n", *end); end++)
        ;
    if (end && end < line + len) {
        rc = ctl_cmd_fail(&e, "request", "data after the JSON object at byte %zu",
                          (size_t)(end - line));
        goto out;
    }
    if (!cJSON_IsObject(req)) {
        rc = ctl_cmd_fail(&e, "request", "must be a JSON object");
        goto out;
    }
    /* The id is echoed on every reply, errors included, once it is known to be valid. */
    id = cJSON_GetObjectItemCaseSensitive(req, "id");
    if (id && !cJSON_IsNumber(id) && !cJSON_IsString(id)) {
        rc = ctl_cmd_fail(&e, "id", "must be a number or a string");
        goto out;
    }
    if (id)
        cJSON_AddItemToObject(reply, "id", cJSON_Duplicate(id, false));
    if (!x.f) {
        rc = ctl_cmd_fail(&e, "request", "no fleet");
        goto out;
    }
    rc = ctl_cmd_envelope(&x, req, &args, &def);
    if (rc)
        goto out;
    if (def->parse) {
        rc = def->parse(args, &x.a, &e);
        if (rc)
            goto out;
    }
    rc = ctl_cmd_run(&x, def, &result);
out:
    cJSON_AddBoolToObject(reply, "ok", rc == 0);
    if (rc) {
        if (rc == -ENOMEM && !e.field[0])
            ctl_cmd_fail(&e, "request", "out of memory");
        err = cJSON_AddObjectToObject(reply, "error");
        if (err) {
            cJSON_AddStringToObject(err, "field", e.field);
            cJSON_AddStringToObject(err, "message", e.msg);
        }
    }
    /* With "all" a partial failure still carries the per-module results. */
    if (result && !cJSON_AddItemToObject(reply, "result", result))
        cJSON_Delete(result);
    text = cJSON_PrintUnformatted(reply);
    cJSON_Delete(reply);
    cJSON_Delete(req);
    free(x.a.data);
    return text;
}
