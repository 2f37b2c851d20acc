/*
 * test_ctl.c: unit tests of the control API (sim/ctl.c, sim/ctl_cmd.c) without a fleet.c: the
 * harness builds a struct fleet by hand with two modules, module 0 on with NV and UFS mounted on
 * a heap flash, module 1 off. Request handling is tested through ctl_handle (every command's
 * argument checks, each error's field), the socket through a real UNIX socket on the loop
 * (events, subscriptions, the 1 MiB line limit, a subscriber that stops reading).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "firmware/modem.h"
#include "sim/ctl.h"
#include "sim/fleet.h"

#define UNIT       4096u
#define NV_SIZE    (4 * UNIT)
#define SYS_SIZE   (8 * UNIT)
#define FLASH_SIZE (64 * UNIT)

/* nv, ufs, then a system slot and its staging area at the end (the factory image goes there). */
static const struct model_part test_parts[] = {
    {"nv", 0, NV_SIZE},
    {"ufs", NV_SIZE, FLASH_SIZE - NV_SIZE - 2 * SYS_SIZE},
    {"system", FLASH_SIZE - 2 * SYS_SIZE, SYS_SIZE},
    {"backup", FLASH_SIZE - SYS_SIZE, SYS_SIZE},
};
static const enum model_boot test_boot[] = {MODEL_BOOT_END};

/* A small model: 256 KiB flash, no AT tables (no port ever runs a command here). */
static const struct model test_model = {
    .name = "TEST-1",
    .family = "quectel",
    .manufacturer = "Test",
    .product = "T1",
    .revision = "T1R01A01",
    .project = "T1",
    .baseline = "T1R01",
    .image_size = 16384,
    .imei = "866123045678901",
    .ip = "10.0.0.1",
    .act = 7,
    .geom = {FLASH_SIZE, UNIT, 256},
    .parts = test_parts,
    .nparts = 4,
    .nports = 1,
    .boot = test_boot,
    .boot_seconds = 1.0,
    .cmee_default = 1,
    .topo = FOTA_TOPO_STAGING,
    .apply_step_seconds = 0.01,
};

struct harness {
    struct fleet f;
    struct pty_hub hub;
    struct modem m[2];
    char dir[64];
    char sock[100];
    int nevents; /* events the modules emitted through on_event */
};

/* Stands in for modem.c's reaper in hand-built modules: drops the RAM state, writes nothing. */
static void h_reap_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    struct modem *m = w->data;

    (void)revents;
    ev_idle_stop(loop, w);
    if (m->storage_ok) {
        ufs_unmount(&m->ufs);
        nv_unmount(&m->nv);
    }
    if (m->flash_open)
        flash_close(&m->flash);
    m->storage_ok = m->flash_open = false;
    m->power = MODEM_OFF;
}

static void h_on_event(void *ctx, struct modem *m, const struct modem_event *ev)
{
    struct harness *h = ctx;

    h->nevents++;
    if (h->f.ctl_open)
        ctl_event(&h->f.ctl, m, ev);
}

/* Module i by hand: off, or on with NV and UFS mounted on a heap flash. */
static void h_module(struct harness *h, int i, bool on)
{
    struct modem *m = &h->m[i];

    memset(m, 0, sizeof(*m));
    m->model = &test_model;
    m->loop = h->f.loop;
    m->hub = &h->hub;
    fota_init(&m->fota, m);
    m->clock = &h->f.clock;
    m->index = i;
    m->restore_after = -1;
    snprintf(m->dir, sizeof(m->dir), "%s/%d", h->dir, i);
    model_imei(&test_model, i, m->imei);
    radio_defaults(&m->radio, 7, "10.0.0.1");
    ev_idle_init(&m->reap, h_reap_cb);
    m->reap.data = m;
    m->on_event = h_on_event;
    m->event_ctx = h;
    m->cmee = 1;
    m->cfun = 1;
    if (!on)
        return;
    assert_int_equal(flash_open_mem(&m->flash, &test_model.geom), 0);
    m->flash_open = true;
    assert_int_equal(nv_mount(&m->nv, &m->flash, 0, NV_SIZE), 0);
    assert_int_equal(ufs_mount(&m->ufs, &m->flash, NV_SIZE, FLASH_SIZE - NV_SIZE), 0);
    m->storage_ok = true;
    m->power = MODEM_ON;
    m->boots = 1;
    /* What a boot would have read from the system slot. */
    snprintf(m->fw.revision, sizeof(m->fw.revision), "%s", test_model.revision);
    snprintf(m->fw.project, sizeof(m->fw.project), "%s", test_model.project);
    snprintf(m->fw.baseline, sizeof(m->fw.baseline), "%s", test_model.baseline);
    m->fw_ok = true;
}

static int h_setup(void **state)
{
    struct harness *h = calloc(1, sizeof(*h));
    char sub[96];

    assert_non_null(h);
    snprintf(h->dir, sizeof(h->dir), "/tmp/test_ctl.XXXXXX");
    assert_non_null(mkdtemp(h->dir));
    snprintf(h->sock, sizeof(h->sock), "%s/control.sock", h->dir);
    for (int i = 0; i < 2; i++) {
        snprintf(sub, sizeof(sub), "%s/%d", h->dir, i);
        assert_int_equal(mkdir(sub, 0700), 0);
    }
    h->f.loop = ev_loop_new(0);
    assert_non_null(h->f.loop);
    vclock_init(&h->f.clock, h->f.loop, 1);
    assert_int_equal(pty_hub_init(&h->hub, h->f.loop), 0);
    h->f.model = &test_model;
    h->f.modems = h->m;
    h->f.count = 2;
    h->f.ctl.fleet = &h->f; /* ctl_handle works without an open socket */
    h_module(h, 0, true);
    h_module(h, 1, false);
    *state = h;
    return 0;
}

static int h_teardown(void **state)
{
    struct harness *h = *state;
    char path[160];

    if (h->f.ctl_open)
        ctl_close(&h->f.ctl);
    for (int i = 0; i < 2; i++) {
        struct modem *m = &h->m[i];

        if (ev_is_active(&m->reap))
            ev_idle_stop(h->f.loop, &m->reap);
        vtimer_stop(&m->boot_timer);
        vtimer_stop(&m->restore_timer);
        fota_stop(&m->fota);
        for (unsigned j = 0; j < m->nports; j++)
            if (m->ports[j].pty_open)
                pty_close(&m->ports[j].pty);
        m->storage_ok = m->storage_ok && (ufs_unmount(&m->ufs), nv_unmount(&m->nv), false);
        if (m->flash_open)
            flash_close(&m->flash);
        snprintf(path, sizeof(path), "%s/%d/flash.bin", h->dir, i);
        unlink(path);
        snprintf(path, sizeof(path), "%s/%d/flash.bin.wear", h->dir, i);
        unlink(path);
        snprintf(path, sizeof(path), "%s/%d", h->dir, i);
        rmdir(path);
    }
    unlink(h->sock);
    rmdir(h->dir);
    pty_hub_free(&h->hub);
    ev_loop_destroy(h->f.loop);
    free(h);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------------- */

/* ctl_handle without a client; returns the parsed reply (caller deletes). */
static cJSON *h_req(struct harness *h, const char *req)
{
    char *text = ctl_handle(&h->f.ctl, req, strlen(req), NULL);
    cJSON *r;

    assert_non_null(text);
    assert_null(strchr(text, '\n'));
    r = cJSON_Parse(text);
    if (!r)
        fail_msg("reply is not JSON: %s", text);
    free(text);
    return r;
}

/* Expects ok:true and returns the reply. */
static cJSON *h_ok(struct harness *h, const char *req)
{
    cJSON *r = h_req(h, req);
    cJSON *err = cJSON_GetObjectItem(r, "error");

    if (!cJSON_IsTrue(cJSON_GetObjectItem(r, "ok")))
        fail_msg("%s -> error %s: %s", req, cJSON_GetStringValue(cJSON_GetObjectItem(err, "field")),
                 cJSON_GetStringValue(cJSON_GetObjectItem(err, "message")));
    assert_non_null(cJSON_GetObjectItem(r, "result"));
    return r;
}

static cJSON *h_result(cJSON *reply)
{
    return cJSON_GetObjectItem(reply, "result");
}

static double h_num(const cJSON *o, const char *key)
{
    const cJSON *it = cJSON_GetObjectItem(o, key);

    if (!cJSON_IsNumber(it))
        fail_msg("%s is not a number", key);
    return it->valuedouble;
}

/* Expects ok:false naming field; message (when not NULL) must be contained in the message. */
static void h_err(struct harness *h, const char *req, const char *field, const char *message)
{
    cJSON *r = h_req(h, req);
    cJSON *err = cJSON_GetObjectItem(r, "error");
    const char *f = cJSON_GetStringValue(cJSON_GetObjectItem(err, "field"));
    const char *msg = cJSON_GetStringValue(cJSON_GetObjectItem(err, "message"));

    if (!cJSON_IsFalse(cJSON_GetObjectItem(r, "ok")) || !f || !msg)
        fail_msg("%s: expected an error on %s", req, field);
    if (strcmp(f, field) != 0)
        fail_msg("%s: error on %s (%s), expected %s", req, f, msg, field);
    if (message && !strstr(msg, message))
        fail_msg("%s: message '%s' lacks '%s'", req, msg, message);
    assert_non_null(*msg ? msg : NULL);
    cJSON_Delete(r);
}

/* ---- envelope -------------------------------------------------------------------------------- */

static void test_malformed(void **state)
{
    struct harness *h = *state;
    static const char *const bad[] = {
        "{",
        "not json",
        "{\"cmd\":\"status\"",
        "{\"cmd\":\"status\"} trailing",
        "{\"cmd\":\"status\"}{}",
        "[1,2]",
        "42",
        "\"status\"",
        "null",
        "",
        "   ",
        "{\"cmd\":\"status\",}",
        "{\"cmd\":\"\xff\"}",         /* not UTF-8 */
        "{\"cmd\":\"\xc0\xaf\"}",     /* overlong */
        "{\"cmd\":\"\xed\xa0\x80\"}", /* surrogate */
        "{\"cmd\":\"\\ud800\"}",      /* lone surrogate escape */
        "{\"id\":1,\"cmd\":\"status\""
        "1e999", /* garbage number */
    };
    char nul[] = "{\"cmd\":\"status\"}\0";
    char *text;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        h_err(h, bad[i], "request", NULL);
    /* An embedded NUL is refused, not read as the end of the line. */
    text = ctl_handle(&h->f.ctl, nul, sizeof(nul) - 1, NULL);
    assert_non_null(strstr(text, "\"field\":\"request\""));
    free(text);
    /* Not NUL-terminated: only len bytes count. */
    text = ctl_handle(&h->f.ctl, "{\"cmd\":\"status\"}xyz", 16, NULL);
    assert_non_null(strstr(text, "\"ok\":true"));
    free(text);
    /* NULL fleet or line: an error, not a crash. */
    text = ctl_handle(NULL, "{\"cmd\":\"status\"}", 16, NULL);
    assert_non_null(strstr(text, "\"ok\":false"));
    free(text);
    text = ctl_handle(&h->f.ctl, NULL, 0, NULL);
    assert_non_null(strstr(text, "\"ok\":false"));
    free(text);
}

static void test_id_cmd_module(void **state)
{
    struct harness *h = *state;
    cJSON *r;

    r = h_ok(h, "{\"id\":7,\"cmd\":\"status\"}");
    assert_int_equal(h_num(r, "id"), 7);
    cJSON_Delete(r);
    r = h_ok(h, "{\"id\":\"abc\",\"cmd\":\"status\",\"module\":0}");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(r, "id")), "abc");
    cJSON_Delete(r);
    /* The id comes back on errors too. */
    r = h_req(h, "{\"id\":9,\"cmd\":\"nope\"}");
    assert_int_equal(h_num(r, "id"), 9);
    cJSON_Delete(r);
    h_err(h, "{\"id\":{},\"cmd\":\"status\"}", "id", NULL);
    h_err(h, "{\"id\":true,\"cmd\":\"status\"}", "id", NULL);
    h_err(h, "{}", "cmd", "required");
    h_err(h, "{\"cmd\":5}", "cmd", "string");
    h_err(h, "{\"cmd\":\"nope\"}", "cmd", "unknown");
    h_err(h, "{\"cmd\":\"STATUS\"}", "cmd", "unknown");
    h_err(h, "{\"cmd\":\"status\",\"extra\":1}", "extra", "unknown");
    h_err(h, "{\"cmd\":\"status\",\"cmd\":\"status\"}", "cmd", "twice");
    h_err(h, "{\"cmd\":\"status\",\"module\":2}", "module", "0..1");
    h_err(h, "{\"cmd\":\"status\",\"module\":-1}", "module", NULL);
    h_err(h, "{\"cmd\":\"status\",\"module\":0.5}", "module", NULL);
    h_err(h, "{\"cmd\":\"status\",\"module\":1e300}", "module", NULL);
    h_err(h, "{\"cmd\":\"status\",\"module\":1e999}", "module", NULL);
    h_err(h, "{\"cmd\":\"status\",\"module\":\"0\"}", "module", NULL);
    h_err(h, "{\"cmd\":\"status\",\"module\":\"ALL\"}", "module", NULL);
    h_err(h, "{\"cmd\":\"status\",\"module\":null}", "module", NULL);
    h_err(h, "{\"cmd\":\"status\",\"args\":[]}", "args", "object");
    h_err(h, "{\"cmd\":\"status\",\"args\":{\"x\":1}}", "args.x", "unknown");
    /* A long or odd unknown name is not echoed into "field". */
    h_err(h, "{\"cmd\":\"status\",\"args\":{\"a b\":1}}", "args", "unknown");
    h_err(h, "{\"cmd\":\"status\",\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\":1}",
          "request", "unknown");
    /* args null is the same as no args. */
    cJSON_Delete(h_ok(h, "{\"cmd\":\"status\",\"args\":null}"));
}

/* ---- status, power, cut_at ---------------------------------------------------------------------
 */

static void test_status(void **state)
{
    struct harness *h = *state;
    cJSON *r, *res, *arr;

    r = h_ok(h, "{\"cmd\":\"status\"}");
    res = h_result(r);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(res, "model")), "TEST-1");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(res, "power")), "on");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(res, "revision")), "T1R01A01");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(res, "imei")), h->m[0].imei);
    assert_int_equal(h_num(res, "index"), 0);
    assert_int_equal(h_num(res, "reg"), 1);
    assert_int_equal(h_num(res, "boots"), 1);
    assert_int_equal(h_num(res, "speed"), 1);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(res, "sim")));
    assert_true(cJSON_IsArray(cJSON_GetObjectItem(res, "ports")));
    assert_true(h_num(cJSON_GetObjectItem(res, "flash"), "ops") > 0); /* the format wrote */
    cJSON_Delete(r);

    /* An off module: flash closed, nothing registered. */
    r = h_ok(h, "{\"cmd\":\"status\",\"module\":1}");
    res = h_result(r);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(res, "power")), "off");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(res, "flash")));
    assert_int_equal(h_num(res, "reg"), 0);
    assert_int_equal(h_num(res, "index"), 1);
    cJSON_Delete(r);

    r = h_ok(h, "{\"cmd\":\"status\",\"module\":\"all\"}");
    arr = h_result(r);
    assert_int_equal(cJSON_GetArraySize(arr), 2);
    assert_int_equal(h_num(cJSON_GetArrayItem(arr, 1), "index"), 1);
    cJSON_Delete(r);
    h_err(h, "{\"cmd\":\"status\",\"args\":{\"verbose\":true}}", "args.verbose", NULL);
}

static void test_power(void **state)
{
    struct harness *h = *state;
    cJSON *r;

    h_err(h, "{\"cmd\":\"power\"}", "args.action", "required");
    h_err(h, "{\"cmd\":\"power\",\"args\":{}}", "args.action", "required");
    h_err(h, "{\"cmd\":\"power\",\"args\":{\"action\":\"zap\"}}", "args.action",
          "must be one of on, off, cut, reset, reboot");
    h_err(h, "{\"cmd\":\"power\",\"args\":{\"action\":1}}", "args.action", NULL);
    h_err(h, "{\"cmd\":\"power\",\"args\":{\"action\":\"on\"}}", "args.action",
          "module is not off");
    h_err(h, "{\"cmd\":\"power\",\"args\":{\"action\":\"off\",\"restore\":1}}", "args.restore",
          "only with action cut");
    h_err(h, "{\"cmd\":\"power\",\"args\":{\"action\":\"cut\",\"restore\":-1}}", "args.restore",
          NULL);
    h_err(h, "{\"cmd\":\"power\",\"args\":{\"action\":\"cut\",\"restore\":\"2\"}}", "args.restore",
          NULL);
    h_err(h, "{\"cmd\":\"power\",\"args\":{\"action\":\"cut\",\"restore\":1e999}}", "args.restore",
          NULL);
    h_err(h, "{\"cmd\":\"power\",\"args\":{\"action\":\"cut\",\"delay\":1}}", "args.delay",
          "unknown");
    assert_int_equal(h->m[0].power, MODEM_ON);

    /* A cut: dead at once, the flash refuses writes, an event went out. */
    r = h_ok(h, "{\"cmd\":\"power\",\"args\":{\"action\":\"cut\",\"restore\":2.5}}");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(h_result(r), "power")), "dead");
    assert_int_equal(h->m[0].power, MODEM_DEAD);
    assert_true(flash_dead(&h->m[0].flash));
    assert_true(h->m[0].restore_after == 2.5);
    assert_int_equal(h->nevents, 1);
    cJSON_Delete(r);
    /* Off on a module already off is a no-op; with "all" each module reports. */
    r = h_ok(h, "{\"cmd\":\"power\",\"module\":\"all\",\"args\":{\"action\":\"off\"}}");
    assert_int_equal(cJSON_GetArraySize(h_result(r)), 2);
    cJSON_Delete(r);
    /* "all" with one module failing: ok false, the error names it, the array shows both. */
    r = h_req(h, "{\"cmd\":\"power\",\"module\":\"all\",\"args\":{\"action\":\"on\"}}");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(r, "ok")));
    assert_string_equal(
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "error"), "message")),
        "module 0: module is not off");
    assert_non_null(cJSON_GetObjectItem(cJSON_GetArrayItem(h_result(r), 0), "error"));
    assert_string_equal(
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(h_result(r), 1), "power")),
        "booting");
    cJSON_Delete(r);
    assert_int_equal(h->m[1].power, MODEM_BOOTING);
    assert_true(h->m[1].storage_ok);
}

static void test_cut_at(void **state)
{
    struct harness *h = *state;
    cJSON *r, *res;
    uint64_t ops = flash_ops(&h->m[0].flash);

    h_err(h, "{\"cmd\":\"cut_at\"}", "args.op", "required");
    h_err(h, "{\"cmd\":\"cut_at\",\"args\":{\"op\":0}}", "args.op", NULL);
    h_err(h, "{\"cmd\":\"cut_at\",\"args\":{\"op\":-3}}", "args.op", NULL);
    h_err(h, "{\"cmd\":\"cut_at\",\"args\":{\"op\":1.5}}", "args.op", "integer");
    h_err(h, "{\"cmd\":\"cut_at\",\"args\":{\"op\":1e300}}", "args.op", NULL);
    h_err(h, "{\"cmd\":\"cut_at\",\"args\":{\"op\":\"5\"}}", "args.op", NULL);
    h_err(h, "{\"cmd\":\"cut_at\",\"args\":{\"op\":5,\"fault\":\"torn\"}}", "args.fault",
          "before, after, torn-prog, torn-erase, skip-erase");
    h_err(h, "{\"cmd\":\"cut_at\",\"args\":{\"op\":5,\"seed\":-1}}", "args.seed", NULL);
    h_err(h, "{\"cmd\":\"cut_at\",\"args\":{\"op\":5,\"seed\":4294967296}}", "args.seed", NULL);
    h_err(h, "{\"cmd\":\"cut_at\",\"args\":{\"op\":5,\"restore\":true}}", "args.restore", NULL);
    h_err(h, "{\"cmd\":\"cut_at\",\"module\":1,\"args\":{\"op\":5}}", "module", "module is off");

    r = h_ok(h, "{\"cmd\":\"cut_at\",\"args\":{\"op\":3,\"fault\":\"torn-prog\",\"seed\":"
                "4294967295,\"restore\":0}}");
    res = h_result(r);
    assert_int_equal(h_num(res, "op"), 3);
    assert_int_equal(h_num(res, "at"), ops + 3);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(res, "fault")), "torn-prog");
    assert_true(h_num(res, "seed") == 4294967295.0);
    assert_true(h->m[0].flash.armed);
    assert_int_equal(h->m[0].flash.fault, FLASH_CUT_TORN_PROG);
    assert_true(h->m[0].flash.fault_at == ops + 3);
    cJSON_Delete(r);
}

static void test_cut_on(void **state)
{
    struct harness *h = *state;
    char line[256];
    cJSON *r;

    h_err(h, "{\"cmd\":\"cut_on\"}", "args.urc", "required");
    h_err(h, "{\"cmd\":\"cut_on\",\"args\":{\"urc\":5}}", "args.urc", NULL);
    h_err(h, "{\"cmd\":\"cut_on\",\"args\":{\"urc\":\"x\",\"restore\":-1}}", "args.restore",
          NULL);
    snprintf(line, sizeof(line), "{\"cmd\":\"cut_on\",\"args\":{\"urc\":\"%0*d\"}}",
             MODEM_CUT_URC_MAX + 1, 0);
    h_err(h, line, "args.urc", NULL);
    r = h_ok(h, "{\"cmd\":\"cut_on\",\"args\":{\"urc\":\"+QIND: \\\"FOTA\\\"\",\"restore\":1}}");
    assert_string_equal(h->m[0].cut_urc, "+QIND: \"FOTA\"");
    assert_true(h->m[0].cut_urc_restore == 1.0);
    cJSON_Delete(r);
    /* another URC passes; the armed one cuts the power instead of going out */
    modem_urc(&h->m[0], "+CEREG: 1");
    assert_int_equal(h->m[0].power, MODEM_ON);
    modem_urc(&h->m[0], "+QIND: \"FOTA\",\"START\"");
    assert_int_equal(h->m[0].power, MODEM_DEAD);
    assert_string_equal(h->m[0].cut_urc, ""); /* used up */
    r = h_ok(h, "{\"cmd\":\"cut_on\",\"args\":{\"urc\":\"\"}}");
    cJSON_Delete(r);
}

/* ---- network, sim, time
 * -------------------------------------------------------------------------- */

static void test_network_sim(void **state)
{
    struct harness *h = *state;
    static const struct {
        const char *args, *field;
    } bad[] = {
        {"{\"reg\":6}", "args.reg"},
        {"{\"reg\":-1}", "args.reg"},
        {"{\"reg\":\"1\"}", "args.reg"},
        {"{\"reg\":1.5}", "args.reg"},
        {"{\"rssi\":32}", "args.rssi"},
        {"{\"rssi\":98}", "args.rssi"},
        {"{\"ber\":8}", "args.ber"},
        {"{\"rsrq\":35}", "args.rsrq"},
        {"{\"rsrq\":254}", "args.rsrq"},
        {"{\"rsrp\":98}", "args.rsrp"},
        {"{\"rsrp\":1e20}", "args.rsrp"},
        {"{\"oper\":5}", "args.oper"},
        {"{\"oper\":\"0123456789012345678901234567890X\"}", "args.oper"},
        {"{\"oper\":\"a\\\"b\"}", "args.oper"},
        {"{\"oper\":\"a\\nb\"}", "args.oper"},
        {"{\"ip\":\"\"}", "args.ip"},
        {"{\"ip\":\"10.0.0.256\"}", "args.ip"},
        {"{\"ip\":\"0123456789012345678901234567890123456789012345678\"}", "args.ip"},
        {"{\"apn\":\"x\"}", "args.apn"},
        {"{\"reg\":1,\"reg\":2}", "args.reg"},
    };
    char req[256];
    cJSON *r, *res;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(req, sizeof(req), "{\"cmd\":\"network\",\"args\":%s}", bad[i].args);
        h_err(h, req, bad[i].field, NULL);
    }
    h_err(h, "{\"cmd\":\"network\",\"args\":{\"rssi\":40}}", "args.rssi",
          "must be an integer 0..31 or 99");
    assert_int_equal(h->m[0].radio.rssi, 23); /* nothing changed by a refused request */

    r = h_ok(h, "{\"cmd\":\"network\",\"args\":{\"reg\":0,\"rssi\":99,\"ber\":7,\"rsrq\":255,"
                "\"rsrp\":0,\"oper\":\"TEST NET\",\"ip\":\"fd00::1\"}}");
    res = h_result(r);
    assert_int_equal(h_num(res, "reg"), 0);
    assert_int_equal(h_num(res, "rssi"), 99);
    assert_int_equal(h_num(res, "ber"), 7);
    assert_int_equal(h_num(res, "rsrq"), 255);
    assert_int_equal(h_num(res, "rsrp"), 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(res, "ip")), "fd00::1");
    assert_int_equal(h->m[0].radio.reg, RADIO_REG_NONE);
    assert_string_equal(h->m[0].radio.oper, "TEST NET");
    cJSON_Delete(r);
    /* No args: a report. */
    r = h_ok(h, "{\"cmd\":\"network\",\"module\":1}");
    assert_int_equal(h_num(h_result(r), "reg"), 1);
    cJSON_Delete(r);

    h_err(h, "{\"cmd\":\"sim\"}", "args.present", "required");
    h_err(h, "{\"cmd\":\"sim\",\"args\":{\"present\":1}}", "args.present", NULL);
    h_err(h, "{\"cmd\":\"sim\",\"args\":{\"present\":\"false\"}}", "args.present", NULL);
    r = h_ok(h, "{\"cmd\":\"sim\",\"module\":\"all\",\"args\":{\"present\":false}}");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetArrayItem(h_result(r), 1), "sim")));
    assert_false(h->m[0].radio.sim_present);
    assert_false(h->m[1].radio.sim_present);
    cJSON_Delete(r);
}

static void test_time(void **state)
{
    struct harness *h = *state;
    cJSON *r;

    h_err(h, "{\"cmd\":\"time\",\"args\":{\"speed\":0}}", "args.speed", NULL);
    h_err(h, "{\"cmd\":\"time\",\"args\":{\"speed\":-2}}", "args.speed", NULL);
    h_err(h, "{\"cmd\":\"time\",\"args\":{\"speed\":1e10}}", "args.speed", NULL);
    h_err(h, "{\"cmd\":\"time\",\"args\":{\"speed\":\"fast\"}}", "args.speed", NULL);
    h_err(h, "{\"cmd\":\"time\",\"args\":{\"speed\":null}}", "args.speed", NULL);
    h_err(h, "{\"cmd\":\"time\",\"module\":5}", "module", NULL);
    r = h_ok(h, "{\"cmd\":\"time\"}");
    assert_int_equal(h_num(h_result(r), "speed"), 1);
    cJSON_Delete(r);
    r = h_ok(h, "{\"cmd\":\"time\",\"args\":{\"speed\":\"max\"}}");
    assert_int_equal(h_num(h_result(r), "speed"), 0);
    assert_true(h->f.clock.speed == 0);
    cJSON_Delete(r);
    r = h_ok(h, "{\"cmd\":\"time\",\"args\":{\"speed\":100}}");
    assert_true(h->f.clock.speed == 100);
    cJSON_Delete(r);
    r = h_ok(h, "{\"cmd\":\"time\",\"args\":{\"speed\":\"2.5\"}}");
    assert_true(h->f.clock.speed == 2.5);
    cJSON_Delete(r);
}

/* ---- files -------------------------------------------------------------------------------------
 */

static void test_push_pull_files(void **state)
{
    struct harness *h = *state;
    char *big, *req;
    size_t n = 300000, b64 = (n + 2) / 3 * 4;
    cJSON *r, *res, *files;

    /* "hello\0\xff" in base64 */
    r = h_ok(h, "{\"cmd\":\"push\",\"args\":{\"name\":\"a.bin\",\"data\":\"aGVsbG8A/w==\"}}");
    assert_int_equal(h_num(h_result(r), "size"), 7);
    cJSON_Delete(r);
    r = h_ok(h, "{\"cmd\":\"pull\",\"args\":{\"name\":\"a.bin\"}}");
    res = h_result(r);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(res, "data")), "aGVsbG8A/w==");
    assert_int_equal(h_num(res, "size"), 7);
    cJSON_Delete(r);
    /* Append, then a range. */
    cJSON_Delete(h_ok(h, "{\"cmd\":\"push\",\"args\":{\"name\":\"a.bin\",\"data\":\"QUJD\","
                         "\"append\":true}}"));
    r = h_ok(h, "{\"cmd\":\"pull\",\"args\":{\"name\":\"a.bin\",\"offset\":7,\"length\":2}}");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(h_result(r), "data")), "QUI=");
    assert_int_equal(h_num(h_result(r), "size"), 10);
    cJSON_Delete(r);
    r = h_ok(h, "{\"cmd\":\"pull\",\"args\":{\"name\":\"a.bin\",\"offset\":10}}");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(h_result(r), "data")), "");
    cJSON_Delete(r);
    /* An empty file. */
    cJSON_Delete(h_ok(h, "{\"cmd\":\"push\",\"args\":{\"name\":\"empty\",\"data\":\"\"}}"));

    r = h_ok(h, "{\"cmd\":\"files\"}");
    res = h_result(r);
    files = cJSON_GetObjectItem(res, "files");
    assert_int_equal(cJSON_GetArraySize(files), 2);
    assert_string_equal(
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(files, 0), "name")), "a.bin");
    assert_int_equal(h_num(cJSON_GetArrayItem(files, 0), "size"), 10);
    assert_true(h_num(res, "free") < h_num(res, "total"));
    cJSON_Delete(r);

    h_err(h, "{\"cmd\":\"push\",\"args\":{\"data\":\"\"}}", "args.name", "required");
    h_err(h, "{\"cmd\":\"push\",\"args\":{\"name\":\"x\"}}", "args.data", "required");
    h_err(h, "{\"cmd\":\"push\",\"args\":{\"name\":\"\",\"data\":\"\"}}", "args.name", NULL);
    h_err(h, "{\"cmd\":\"push\",\"args\":{\"name\":7,\"data\":\"\"}}", "args.name", NULL);
    h_err(h, "{\"cmd\":\"push\",\"args\":{\"name\":\"x\",\"data\":\"@@@@\"}}", "args.data",
          "base64");
    h_err(h, "{\"cmd\":\"push\",\"args\":{\"name\":\"x\",\"data\":\"QU=J\"}}", "args.data",
          "base64");
    h_err(h, "{\"cmd\":\"push\",\"args\":{\"name\":\"x\",\"data\":[]}}", "args.data", NULL);
    h_err(h, "{\"cmd\":\"push\",\"args\":{\"name\":\"x\",\"data\":\"\",\"append\":1}}",
          "args.append", NULL);
    h_err(h,
          "{\"cmd\":\"push\",\"args\":{\"name\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\",\"data\":\"\"}}",
          "args.name", NULL);
    h_err(h, "{\"cmd\":\"push\",\"module\":1,\"args\":{\"name\":\"x\",\"data\":\"\"}}", "module",
          "module is off");
    h_err(h, "{\"cmd\":\"pull\",\"args\":{\"name\":\"missing\"}}", "args.name", "no such file");
    h_err(h, "{\"cmd\":\"pull\",\"args\":{\"name\":\"a.bin\",\"offset\":11}}", "args.offset", NULL);
    h_err(h, "{\"cmd\":\"pull\",\"args\":{\"name\":\"a.bin\",\"length\":-1}}", "args.length", NULL);
    h_err(h, "{\"cmd\":\"pull\",\"module\":1,\"args\":{\"name\":\"a.bin\"}}", "module", NULL);
    h_err(h, "{\"cmd\":\"files\",\"module\":1}", "module", "module is off");
    h_err(h, "{\"cmd\":\"flash\",\"module\":1}", "module", "module is off");

    /* Bigger than the whole area: no space, and the old file is untouched. */
    big = malloc(b64 + 100);
    assert_non_null(big);
    req = big;
    req += sprintf(req, "{\"cmd\":\"push\",\"args\":{\"name\":\"a.bin\",\"data\":\"");
    memset(req, 'A', b64);
    strcpy(req + b64, "\"}}");
    h_err(h, big, "args.data", "no space");
    free(big);
    r = h_ok(h, "{\"cmd\":\"pull\",\"args\":{\"name\":\"a.bin\",\"length\":7}}");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(h_result(r), "data")),
                        "aGVsbG8A/w==");
    cJSON_Delete(r);

    /* A cut armed for the next flash operation hits the push itself. */
    cJSON_Delete(h_ok(h, "{\"cmd\":\"cut_at\",\"args\":{\"op\":1}}"));
    h_err(h, "{\"cmd\":\"push\",\"args\":{\"name\":\"b\",\"data\":\"QUJD\"}}", "module",
          "power was cut");
    assert_int_equal(h->m[0].power, MODEM_DEAD);
    h_err(h, "{\"cmd\":\"push\",\"args\":{\"name\":\"b\",\"data\":\"QUJD\"}}", "module",
          "module is off");
}

static void test_flash_cmd(void **state)
{
    struct harness *h = *state;
    cJSON *r = h_ok(h, "{\"cmd\":\"flash\"}");
    struct flash_stats st;

    flash_stats(&h->m[0].flash, &st);
    assert_true(h_num(h_result(r), "ops") == (double)st.ops);
    assert_true(h_num(h_result(r), "erases") == (double)st.erases);
    assert_non_null(cJSON_GetObjectItem(h_result(r), "max_wear"));
    cJSON_Delete(r);
}

static void test_events_cmd(void **state)
{
    struct harness *h = *state;
    cJSON *r, *sub;

    h_err(h, "{\"cmd\":\"events\",\"args\":{\"kinds\":\"urc\"}}", "args.kinds", NULL);
    h_err(h, "{\"cmd\":\"events\",\"args\":{\"kinds\":[\"urc\",\"bogus\"]}}", "args.kinds", NULL);
    h_err(h, "{\"cmd\":\"events\",\"args\":{\"kinds\":[1]}}", "args.kinds", NULL);
    r = h_ok(h, "{\"cmd\":\"events\"}");
    sub = cJSON_GetObjectItem(h_result(r), "subscribed");
    assert_int_equal(cJSON_GetArraySize(sub), 6); /* urc rx tx state flash fota */
    cJSON_Delete(r);
    r = h_ok(h, "{\"cmd\":\"events\",\"args\":{\"kinds\":[\"state\",\"urc\",\"state\"]}}");
    sub = cJSON_GetObjectItem(h_result(r), "subscribed");
    assert_int_equal(cJSON_GetArraySize(sub), 2);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetArrayItem(sub, 0)), "urc");
    cJSON_Delete(r);
    r = h_ok(h, "{\"cmd\":\"events\",\"args\":{\"kinds\":[]}}");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(h_result(r), "subscribed")), 0);
    cJSON_Delete(r);
}

/* ---- the socket
 * ---------------------------------------------------------------------------------- */

static void h_open(struct harness *h)
{
    assert_int_equal(ctl_open(&h->f.ctl, &h->f, h->sock), 0);
    h->f.ctl_open = true;
}

static int h_connect(struct harness *h)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", h->sock);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    for (int i = 0; i < 10; i++)
        ev_run(h->f.loop, EVRUN_NOWAIT);
    return fd;
}

static void h_send(struct harness *h, int fd, const char *s)
{
    size_t off = 0, len = strlen(s);

    while (off < len) {
        ssize_t n = write(fd, s + off, len - off);

        if (n < 0 && errno == EAGAIN) {
            ev_run(h->f.loop, EVRUN_NOWAIT);
            continue;
        }
        assert_true(n > 0);
        off += (size_t)n;
    }
}

/* Runs the loop until a whole line arrives on fd; returns it (caller frees) or NULL on EOF. */
static char *h_line(struct harness *h, int fd)
{
    char *buf = malloc(1 << 16);
    size_t len = 0;

    assert_non_null(buf);
    for (int spins = 0; spins < 2000; spins++) {
        ssize_t n = read(fd, buf + len, 1);

        if (n == 1) {
            if (buf[len] == '\n') {
                buf[len] = '\0';
                return buf;
            }
            if (++len >= (1 << 16) - 1)
                fail_msg("line too long");
            spins = 0;
            continue;
        }
        if (n == 0) {
            free(buf);
            return NULL;
        }
        ev_run(h->f.loop, EVRUN_NOWAIT);
        poll(NULL, 0, 1);
    }
    fail_msg("no line");
    return NULL;
}

/* Nothing pending on fd after the loop ran. */
static void h_quiet(struct harness *h, int fd)
{
    char c;

    for (int i = 0; i < 10; i++)
        ev_run(h->f.loop, EVRUN_NOWAIT);
    assert_int_equal(read(fd, &c, 1), -1);
    assert_int_equal(errno, EAGAIN);
}

static void test_socket_basic(void **state)
{
    struct harness *h = *state;
    struct stat st;
    char *line;
    int fd;

    h_open(h);
    assert_int_equal(stat(h->sock, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    fd = h_connect(h);
    assert_int_equal(h->f.ctl.nclients, 1);
    /* Two requests in one write, CRLF and a blank line between: two replies, in order. */
    h_send(h, fd, "{\"id\":1,\"cmd\":\"status\"}\r\n\n{\"id\":2,\"cmd\":\"nope\"}\n");
    line = h_line(h, fd);
    assert_non_null(strstr(line, "{\"id\":1,\"ok\":true,\"result\":{"));
    free(line);
    line = h_line(h, fd);
    assert_non_null(strstr(line, "{\"id\":2,\"ok\":false,\"error\":{\"field\":\"cmd\""));
    free(line);
    /* A request split over writes. */
    h_send(h, fd, "{\"id\":3,\"cmd\":");
    h_quiet(h, fd);
    h_send(h, fd, "\"time\"}\n");
    line = h_line(h, fd);
    assert_non_null(strstr(line, "\"id\":3,\"ok\":true"));
    free(line);
    /* A half-close still gets the reply to an unterminated last line, then EOF. */
    h_send(h, fd, "{\"id\":4,\"cmd\":\"time\"}");
    shutdown(fd, SHUT_WR);
    line = h_line(h, fd);
    assert_non_null(strstr(line, "\"id\":4,\"ok\":true"));
    free(line);
    assert_null(h_line(h, fd));
    assert_int_equal(h->f.ctl.nclients, 0);
    close(fd);

    /* Close: the socket file goes. */
    ctl_close(&h->f.ctl);
    h->f.ctl_open = false;
    assert_int_equal(stat(h->sock, &st), -1);
    ctl_close(&h->f.ctl); /* twice is fine */
}

static void test_socket_stale(void **state)
{
    struct harness *h = *state;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct ctl other;
    int fd;

    /* A socket file nobody listens on is replaced. */
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", h->sock);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
    h_open(h);
    /* A live one is not. */
    assert_int_equal(ctl_open(&other, &h->f, h->sock), -EADDRINUSE);
    ctl_close(&h->f.ctl);
    h->f.ctl_open = false;
    /* Neither is a regular file. */
    fd = open(h->sock, O_CREAT | O_WRONLY, 0600);
    close(fd);
    assert_int_equal(ctl_open(&other, &h->f, h->sock), -EEXIST);
    unlink(h->sock);
    assert_int_equal(ctl_open(&other, &h->f, ""), -EINVAL);
    assert_int_equal(ctl_open(&other, &h->f,
                              "/tmp/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                              "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
                     -ENAMETOOLONG);
}

static void test_socket_long_line(void **state)
{
    struct harness *h = *state;
    size_t n = CTL_LINE_MAX + 10;
    char *big = malloc(n + 1), *line;
    int fd;

    h_open(h);
    fd = h_connect(h);
    memset(big, ' ', n);
    big[n] = '\0';
    h_send(h, fd, big);
    line = h_line(h, fd);
    assert_non_null(strstr(line, "\"field\":\"request\""));
    assert_non_null(strstr(line, "longer than"));
    free(line);
    assert_null(h_line(h, fd)); /* dropped */
    assert_int_equal(h->f.ctl.nclients, 0);
    close(fd);

    /* Exactly at the limit with its newline is still a request (here: bad JSON padding). */
    fd = h_connect(h);
    memset(big, ' ', CTL_LINE_MAX);
    memcpy(big, "{\"cmd\":\"time\"}", 14);
    big[CTL_LINE_MAX] = '\n';
    big[CTL_LINE_MAX + 1] = '\0';
    h_send(h, fd, big);
    line = h_line(h, fd);
    assert_non_null(strstr(line, "\"ok\":true"));
    free(line);
    assert_int_equal(h->f.ctl.nclients, 1);
    close(fd);
    free(big);
}

static void test_socket_events(void **state)
{
    struct harness *h = *state;
    static const uint8_t bytes[] = {'A', 'T', '\r', '\n', 0x00, 0xff, '"', '\\'};
    struct modem_event rx = {.kind = MODEM_EV_RX, .port = -1, .data = bytes, .len = sizeof(bytes)};
    struct modem_event urc = {.kind = MODEM_EV_URC, .port = -1, .data = "+CREG: 1", .len = 8};
    int sub, plain, mod1;
    char *line;
    cJSON *ev;

    h_open(h);
    sub = h_connect(h);
    plain = h_connect(h);
    mod1 = h_connect(h);
    h_send(h, sub, "{\"cmd\":\"events\",\"args\":{\"kinds\":[\"state\",\"rx\"]}}\n");
    line = h_line(h, sub);
    assert_string_equal(line, "{\"ok\":true,\"result\":{\"subscribed\":[\"rx\",\"state\"]}}");
    free(line);
    h_send(h, mod1, "{\"cmd\":\"events\",\"module\":1}\n");
    free(h_line(h, mod1));
    /* Bookkeeping: newest client first. */
    assert_int_equal(ctl_subscribed(h->f.ctl.clients), CTL_EV_ALL);
    assert_int_equal(ctl_subscribed(ctl_client_next(h->f.ctl.clients)), 0);
    assert_int_equal(ctl_subscribed(ctl_client_next(ctl_client_next(h->f.ctl.clients))),
                     (1u << MODEM_EV_STATE) | (1u << MODEM_EV_RX));

    /* A state event from a command of the subscriber itself, then the reply. */
    h_send(h, sub, "{\"id\":5,\"cmd\":\"power\",\"args\":{\"action\":\"cut\"}}\n");
    line = h_line(h, sub);
    ev = cJSON_Parse(line);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(ev, "event")), "state");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(ev, "state")), "cut");
    assert_int_equal(h_num(ev, "module"), 0);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(ev, "port")));
    assert_non_null(cJSON_GetObjectItem(ev, "t"));
    cJSON_Delete(ev);
    free(line);
    line = h_line(h, sub);
    assert_non_null(strstr(line, "\"id\":5,\"ok\":true"));
    free(line);

    /* Bytes as Latin-1 code points, \u00XX for everything not printable ASCII. */
    h->m[0].nports = 1;
    h->m[0].ports[0].kind = "uart";
    rx.port = 0;
    ctl_event(&h->f.ctl, &h->m[0], &rx);
    ctl_event(&h->f.ctl, &h->m[0], &urc); /* not subscribed: not sent */
    line = h_line(h, sub);
    assert_non_null(strstr(line, "\"event\":\"rx\",\"module\":0,\"port\":\"uart\""));
    assert_non_null(strstr(line, "\"data\":\"AT\\u000d\\u000a\\u0000\\u00ff\\\"\\\\\"}"));
    ev = cJSON_Parse(line);
    assert_non_null(ev);
    cJSON_Delete(ev);
    free(line);
    h_quiet(h, sub);
    h_quiet(h, plain);
    h_quiet(h, mod1); /* module 0's events do not reach a module 1 subscriber */
    ctl_event(&h->f.ctl, &h->m[1], &urc);
    line = h_line(h, mod1);
    assert_non_null(strstr(line, "\"event\":\"urc\",\"module\":1"));
    assert_non_null(strstr(line, "\"text\":\"+CREG: 1\""));
    free(line);

    /* A subscribed client still sends requests; an empty list unsubscribes. */
    h_send(h, sub, "{\"cmd\":\"events\",\"args\":{\"kinds\":[]}}\n");
    free(h_line(h, sub));
    ctl_event(&h->f.ctl, &h->m[0], &rx);
    h_quiet(h, sub);
    close(sub);
    close(plain);
    close(mod1);
    for (int i = 0; i < 10; i++)
        ev_run(h->f.loop, EVRUN_NOWAIT);
    assert_int_equal(h->f.ctl.nclients, 0);
}

static void test_socket_slow_subscriber(void **state)
{
    struct harness *h = *state;
    static uint8_t chunk[65536];
    struct modem_event rx = {.kind = MODEM_EV_RX, .port = -1, .data = chunk, .len = sizeof(chunk)};
    int slow, other;
    char *line;

    memset(chunk, 0x80, sizeof(chunk)); /* 6 bytes each in JSON: ~384 KiB per event */
    h_open(h);
    slow = h_connect(h);
    other = h_connect(h);
    h_send(h, slow, "{\"cmd\":\"events\"}\n");
    free(h_line(h, slow));
    /* slow never reads again; the loop keeps turning and the queue grows to the limit. */
    for (int i = 0; i < 64 && h->f.ctl.nclients == 2; i++) {
        ctl_event(&h->f.ctl, &h->m[0], &rx);
        ev_run(h->f.loop, EVRUN_NOWAIT);
    }
    assert_int_equal(h->f.ctl.nclients, 1);
    /* The other client is served as before. */
    h_send(h, other, "{\"id\":1,\"cmd\":\"time\"}\n");
    line = h_line(h, other);
    assert_non_null(strstr(line, "\"ok\":true"));
    free(line);
    close(slow);
    close(other);
}

/* Power-on through the API with a file-backed flash in the state dir, then boot on the loop. */
static void test_power_on_boot(void **state)
{
    struct harness *h = *state;
    char *line;
    cJSON *r;
    int fd;

    h_open(h);
    fd = h_connect(h);
    h_send(h, fd, "{\"cmd\":\"events\",\"module\":1,\"args\":{\"kinds\":[\"state\"]}}\n");
    free(h_line(h, fd));
    h_send(h, fd, "{\"cmd\":\"time\",\"args\":{\"speed\":\"max\"}}\n");
    free(h_line(h, fd));
    h_send(h, fd, "{\"cmd\":\"power\",\"module\":1,\"args\":{\"action\":\"on\"}}\n");
    line = h_line(h, fd);
    assert_non_null(strstr(line, "\"state\":\"booting\""));
    free(line);
    line = h_line(h, fd);
    assert_non_null(strstr(line, "\"power\":\"booting\""));
    free(line);
    line = h_line(h, fd); /* the boot timer fired at max speed */
    assert_non_null(strstr(line, "\"state\":\"on\""));
    assert_non_null(strstr(line, "\"t\":1."));
    free(line);
    r = h_ok(h, "{\"cmd\":\"files\",\"module\":1}");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(h_result(r), "files")), 0);
    cJSON_Delete(r);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_malformed, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_id_cmd_module, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_status, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_power, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_cut_on, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_cut_at, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_network_sim, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_time, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_push_pull_files, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_flash_cmd, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_events_cmd, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_socket_basic, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_socket_stale, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_socket_long_line, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_socket_events, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_socket_slow_subscriber, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_power_on_boot, h_setup, h_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
