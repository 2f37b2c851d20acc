/*
 * The model registry. Identity strings follow each vendor's usual form; where the documents
 * print none, docs/models.md says what was chosen. Partition tables are the modtwin layout of
 * each part's flash (docs/models.md), not a vendor's secret map.
 */
#include "firmware/model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "firmware/cmd_basic.h"
#include "firmware/cmd_quectel_file.h"
#include "firmware/cmd_quectel_fota.h"
#include "firmware/cmd_quectel_net.h"
#include "firmware/quectel_fota.h"
#include "firmware/fw_image.h"

#define KiB(x) ((uint32_t)(x) << 10)
#define MiB(x) ((uint32_t)(x) << 20)

static const struct at_table *const quectel_tables[] = {
    &cmd_basic_table, &cmd_quectel_file_table, &cmd_quectel_net_table, &cmd_quectel_fota_table};
/* BC260Y-CN (NB-IoT) has no Quectel FILE, PDP-context or AT+QCFG commands in its documents. */
static const struct at_table *const quectel_nb_tables[] = {&cmd_basic_table,
                                                           &cmd_quectel_nb_fota_table};

static const enum model_boot quectel_boot[] = {
    MODEL_BOOT_RDY,   MODEL_BOOT_CFUN,     MODEL_BOOT_CPIN,
    MODEL_BOOT_QUSIM, MODEL_BOOT_SMS_DONE, MODEL_BOOT_END,
};

/* Seed 004 section 7: an update's result comes between +CFUN and +CPIN. */
static const enum model_boot quectel_nb_boot[] = {
    MODEL_BOOT_RDY, MODEL_BOOT_CFUN, MODEL_BOOT_FOTA, MODEL_BOOT_CPIN, MODEL_BOOT_IP, MODEL_BOOT_END,
};

/* 16 MB NOR: the DFOTA package lands in UFS, the new image is built in backup, then restored. */
static const struct model_part ec200a_parts[] = {
    {"boot", 0, KiB(256)},
    {"nv", KiB(256), KiB(128)},
    {"system", KiB(384), MiB(5)},
    {"backup", KiB(384) + MiB(5), MiB(5)},
    {"ufs", KiB(384) + MiB(10), MiB(16) - KiB(384) - MiB(10)},
};

/* 8 MB NOR: MiniFOTA keeps a small "Mini system" beside the big one. */
static const struct model_part ec200n_parts[] = {
    {"boot", 0, KiB(256)},
    {"nv", KiB(256), KiB(128)},
    {"system", KiB(384), MiB(3)},
    {"mini", KiB(384) + MiB(3), MiB(1)},
    {"backup", KiB(384) + MiB(4), KiB(64)},
    {"ufs", KiB(448) + MiB(4), MiB(8) - KiB(448) - MiB(4)},
};

/* NB-IoT: 4 MB; the image is built in backup and restored, the delta lands in the FOTA area. */
static const struct model_part bc260y_parts[] = {
    {"boot", 0, KiB(128)},
    {"nv", KiB(128), KiB(64)},
    {"system", KiB(192), KiB(1536)},
    {"backup", KiB(1728), KiB(1536)},
    {"ufs", KiB(3264), MiB(4) - KiB(3264)},
};

/* Benchmark-only: room for a 64 MiB download into UFS (DESIGN allows such models as data). */
static const struct model_part bench_parts[] = {
    {"boot", 0, KiB(256)},
    {"nv", KiB(256), KiB(128)},
    {"system", KiB(384), MiB(5)},
    {"backup", KiB(384) + MiB(5), MiB(5)},
    {"ufs", KiB(384) + MiB(10), MiB(96) - KiB(384) - MiB(10)},
};

/* Benchmark-only: EC200A-CN's layout with slots for a 16 MiB image (the DFOTA benchmark). */
static const struct model_part bench_dfota_parts[] = {
    {"boot", 0, KiB(256)},
    {"nv", KiB(256), KiB(128)},
    {"system", KiB(384), MiB(17)},
    {"backup", KiB(384) + MiB(17), MiB(17)},
    {"ufs", KiB(384) + MiB(34), MiB(64) - KiB(384) - MiB(34)},
};

#define PARTS(p) (p), sizeof(p) / sizeof((p)[0])
#define TABLES(t) (t), sizeof(t) / sizeof((t)[0])

static const struct model model_table[] = {
    {
        .name = "EC200A-CN",
        .family = "quectel",
        .manufacturer = "Quectel",
        .product = "EC200A",
        .revision = "EC200ACNHAR01A02M16",
        .project = "EC200A",
        .baseline = "EC200ACNHAR01",
        .image_size = MiB(3) + KiB(512),
        .imei = "866123045678901",
        .imsi = "460001234567890",
        .ip = "10.76.33.120",
        .ip_cid = 1,
        .act = 7,
        .geom = {MiB(16), KiB(4), 256},
        .parts = PARTS(ec200a_parts),
        .nports = 2,
        .boot = quectel_boot,
        .boot_seconds = 3.0,
        .off_line = "POWERED DOWN",
        .cmee_default = 1,
        .topo = FOTA_TOPO_STAGING,
        .policy = FOTA_POLICY_RESUME,
        .apply_step_seconds = 0.05,
        .fota_family = &quectel_dfota_family,
        .tables = TABLES(quectel_tables),
    },
    {
        .name = "EC200N-CN",
        .family = "quectel",
        .manufacturer = "Quectel",
        .product = "EC200N",
        .revision = "EC200NCNLAR03A01M08",
        .project = "EC200N",
        .baseline = "EC200NCNLAR03",
        .image_size = MiB(2),
        .imei = "866123045600011",
        .imsi = "460001234567891",
        .ip = "10.76.33.121",
        .ip_cid = 1,
        .act = 7,
        .geom = {MiB(8), KiB(4), 256},
        .parts = PARTS(ec200n_parts),
        .nports = 2,
        .boot = quectel_boot,
        .boot_seconds = 3.0,
        .off_line = "POWERED DOWN",
        .cmee_default = 1,
        .topo = FOTA_TOPO_INPLACE,
        .policy = FOTA_POLICY_RESUME,
        .apply_step_seconds = 0.05,
        .fota_family = &quectel_minifota_family,
        .tables = TABLES(quectel_tables),
        .minifota = true, /* 8 MB flash, not an EC200A: seed 002 §4 */
        /* The Mini system only registers and downloads: a quarter of the big one, half of
         * its partition, so a new Mini image may grow and still fit. */
        .mini_image_size = KiB(512),
    },
    {
        .name = "BC260Y-CN",
        .family = "quectel_nb",
        .manufacturer = "Quectel",
        .product = "BC260Y-CN",
        .revision = "BC260YCNAAR02A04",
        .project = "BC260Y",
        .baseline = "BC260YCNAAR02",
        .image_size = MiB(1) + KiB(256),
        .imei = "867123045600021",
        .imsi = "460041234567892",
        .ip = "100.125.10.122",
        .ip_cid = 0,
        .act = 9,
        .geom = {MiB(4), KiB(4), 256},
        .parts = PARTS(bc260y_parts),
        .nports = 1,
        .boot = quectel_nb_boot,
        .boot_seconds = 1.0,
        .off_line = NULL,
        .cmee_default = 1,
        .topo = FOTA_TOPO_STAGING,
        .policy = FOTA_POLICY_RESUME,
        .apply_step_seconds = 0.05,
        .fota_family = &quectel_nb_family,
        .tables = TABLES(quectel_nb_tables),
        .autobaud = true, /* seed 004 2.2 / 3.2 notes */
    },
    {
        .name = "BENCH-96M",
        .family = "quectel",
        .manufacturer = "Quectel",
        .product = "EC200A",
        .revision = "EC200ACNHAR01A02M16",
        .project = "EC200A",
        .baseline = "EC200ACNHAR01",
        .image_size = MiB(3) + KiB(512),
        .imei = "866123045699990",
        .imsi = "460001234567899",
        .ip = "10.76.33.199",
        .ip_cid = 1,
        .act = 7,
        .geom = {MiB(96), KiB(4), 256},
        .parts = PARTS(bench_parts),
        .nports = 1,
        .boot = quectel_boot,
        .boot_seconds = 3.0,
        .off_line = "POWERED DOWN",
        .cmee_default = 1,
        .topo = FOTA_TOPO_STAGING,
        .policy = FOTA_POLICY_RESUME,
        .apply_step_seconds = 0.05,
        .fota_family = &quectel_dfota_family,
        .tables = TABLES(quectel_tables),
        .bench = true,
    },
    {
        .name = "BENCH-DFOTA",
        .family = "quectel",
        .manufacturer = "Quectel",
        .product = "EC200A",
        .revision = "EC200ACNHAR01A02M16",
        .project = "EC200A",
        .baseline = "EC200ACNHAR01",
        .image_size = MiB(16) - FW_IMAGE_HDR, /* a 16 MiB image, header included */
        .imei = "866123045699980",
        .imsi = "460001234567898",
        .ip = "10.76.33.198",
        .ip_cid = 1,
        .act = 7,
        .geom = {MiB(64), KiB(4), 256},
        .parts = PARTS(bench_dfota_parts),
        .nports = 1,
        .boot = quectel_boot,
        .boot_seconds = 3.0,
        .off_line = "POWERED DOWN",
        .cmee_default = 1,
        .topo = FOTA_TOPO_STAGING,
        .policy = FOTA_POLICY_RESUME,
        .apply_step_seconds = 0.05,
        .fota_family = &quectel_dfota_family,
        .tables = TABLES(quectel_tables),
        .bench = true,
    },
};

size_t model_count(void)
{
    return sizeof(model_table) / sizeof(model_table[0]);
}

const struct model *model_at(size_t i)
{
    return i < model_count() ? &model_table[i] : NULL;
}

const struct model *model_find(const char *name)
{
    for (size_t i = 0; i < model_count(); i++)
        if (strcasecmp(model_table[i].name, name) == 0)
            return &model_table[i];
    return NULL;
}

const struct model_part *model_part(const struct model *m, const char *name)
{
    for (size_t i = 0; i < m->nparts; i++)
        if (strcmp(m->parts[i].name, name) == 0)
            return &m->parts[i];
    return NULL;
}

/* Luhn check digit over the first 14 digits. */
static int model_luhn(const char *d)
{
    int sum = 0;

    for (int i = 0; i < 14; i++) {
        int v = d[i] - '0';
        if (i % 2) {
            v *= 2;
            if (v > 9)
                v -= 9;
        }
        sum += v;
    }
    return (10 - sum % 10) % 10;
}

int model_factory_image(const struct model *m, uint8_t **img, size_t *len)
{
    return fw_image_factory(m->revision, m->project, m->baseline, m->image_size, img, len);
}

int model_mini_image(const struct model *m, uint8_t **img, size_t *len)
{
    char rev[FW_REV_MAX + 1];

    if (!m->mini_image_size)
        return -ENOENT;
    if (snprintf(rev, sizeof(rev), "%s%s", m->revision, MODEL_MINI_SUFFIX) >= (int)sizeof(rev))
        return -ENAMETOOLONG;
    return fw_image_factory(rev, m->project, m->baseline, m->mini_image_size, img, len);
}

int model_image_get(struct model_image *c, const struct model *m, const uint8_t **img,
                    size_t *len)
{
    if (!c->img) {
        int rc = model_factory_image(m, &c->img, &c->len);
        if (rc)
            return rc;
    }
    *img = c->img;
    *len = c->len;
    return 0;
}

void model_image_free(struct model_image *c)
{
    free(c->img);
    c->img = NULL;
    c->len = 0;
}

void model_imei(const struct model *m, int index, char out[16])
{
    unsigned long long body = 0;

    for (int i = 0; i < 14; i++)
        body = body * 10 + (unsigned)(m->imei[i] - '0');
    body += (unsigned)index;
    snprintf(out, 16, "%014llu", body % 100000000000000ULL);
    out[14] = (char)('0' + model_luhn(out));
    out[15] = 0;
}
