/*
 * fuzz_ctl.c - libFuzzer target for the control API's request handler (sim/ctl_cmd.c).
 *
 * The input is split at '\n' into request lines that all go to ctl_handle in order, so a run can
 * push, cut, pull and list in one input. The fleet is built by hand once (two modules of a small
 * test model: module 0 on with NV and UFS on a heap flash, module 1 on as well but left for
 * power-offs) and rebuilt before every input, so each input starts from the same state. The
 * loop never runs: cuts and power-offs leave modules dead, so power-on never touches the disk.
 * Each reply must be one JSON object with "ok"; anything else is __builtin_trap(). No main.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "firmware/modem.h"
#include "sim/ctl.h"
#include "sim/fleet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

#define FZ_UNIT 4096u
#define FZ_NV (4 * FZ_UNIT)
#define FZ_SIZE (32 * FZ_UNIT)

static const struct model_part fz_parts[] = {{"nv", 0, FZ_NV}, {"ufs", FZ_NV, FZ_SIZE - FZ_NV}};
static const enum model_boot fz_boot[] = {MODEL_BOOT_END};
static const struct model fz_model = {
    .name = "FUZZ-1",
    .revision = "FZ01",
    .imei = "866123045678901",
    .ip = "10.0.0.1",
    .act = 7,
    .geom = {FZ_SIZE, FZ_UNIT, 256},
    .parts = fz_parts,
    .nparts = 2,
    .boot = fz_boot,
    .boot_seconds = 1.0,
    .cmee_default = 1,
};

/* The reaper never runs (the loop does not), but modem_stop starts it: it needs a callback. */
static void fz_reap(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void)revents;
    ev_idle_stop(loop, w);
}

static void fz_module(struct fleet *f, struct modem *m, int i)
{
    memset(m, 0, sizeof(*m));
    m->model = &fz_model;
    m->loop = f->loop;
    m->clock = &f->clock;
    m->index = i;
    m->restore_after = -1;
    m->cfun = 1;
    model_imei(&fz_model, i, m->imei);
    radio_defaults(&m->radio, 7, "10.0.0.1");
    ev_idle_init(&m->reap, fz_reap);
    m->reap.data = m;
    if (flash_open_mem(&m->flash, &fz_model.geom))
        abort();
    m->flash_open = true;
    if (nv_mount(&m->nv, &m->flash, 0, FZ_NV) ||
        ufs_mount(&m->ufs, &m->flash, FZ_NV, FZ_SIZE - FZ_NV))
        abort();
    m->storage_ok = true;
    m->power = MODEM_ON;
}

static void fz_release(struct fleet *f, struct modem *m)
{
    if (ev_is_active(&m->reap))
        ev_idle_stop(f->loop, &m->reap);
    vtimer_stop(&m->boot_timer);
    vtimer_stop(&m->restore_timer);
    if (m->storage_ok) {
        ufs_unmount(&m->ufs);
        nv_unmount(&m->nv);
    }
    if (m->flash_open)
        flash_close(&m->flash);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct modem mods[2];
    struct fleet f;
    size_t start = 0, end;

    memset(&f, 0, sizeof(f));
    f.loop = ev_default_loop(0);
    vclock_init(&f.clock, f.loop, 1);
    f.model = &fz_model;
    f.modems = mods;
    f.count = 2;
    f.ctl.fleet = &f;
    for (int i = 0; i < 2; i++)
        fz_module(&f, &mods[i], i);
    while (start <= size) {
        const uint8_t *nl = memchr(data + start, '\n', size - start);
        char *reply;
        cJSON *r;

        end = nl ? (size_t)(nl - data) : size;
        /* Exactly the line's bytes, not NUL-terminated: ASan sees any read past them. */
        reply = ctl_handle(&f.ctl, (const char *)data + start, end - start, NULL);
        FZ_CHECK(reply != NULL);
        FZ_CHECK(strchr(reply, '\n') == NULL);
        r = cJSON_Parse(reply);
        FZ_CHECK(cJSON_IsObject(r));
        FZ_CHECK(cJSON_IsBool(cJSON_GetObjectItem(r, "ok")));
        if (cJSON_IsFalse(cJSON_GetObjectItem(r, "ok")))
            FZ_CHECK(cJSON_IsString(
                cJSON_GetObjectItem(cJSON_GetObjectItem(r, "error"), "field")));
        else
            FZ_CHECK(cJSON_GetObjectItem(r, "result") != NULL);
        cJSON_Delete(r);
        free(reply);
        start = end + 1;
    }
    for (int i = 0; i < 2; i++)
        fz_release(&f, &mods[i]);
    return 0;
}
