/*
 * Models are data: one `struct model` per module type (identity strings, flash geometry and
 * partitions, ports, boot lines, defaults, command families). Adding a model needs no code unless
 * it brings a new command family. The registry is a static const table.
 */
#ifndef MODTWIN_FIRMWARE_MODEL_H
#define MODTWIN_FIRMWARE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "firmware/at_engine.h"
#include "firmware/fota.h"
#include "storage/flash.h"

struct model_part {
    const char *name; /* "boot", "nv", "system", "backup", "mini", "ufs" */
    uint32_t off, size;
};

/* What the module prints after power-on, in order; the text depends on the module's state. */
enum model_boot {
    MODEL_BOOT_END = 0,
    MODEL_BOOT_RDY,       /* RDY */
    MODEL_BOOT_CFUN,      /* +CFUN: 1 */
    MODEL_BOOT_CPIN,      /* +CPIN: READY, or +CPIN: NOT READY without a card */
    MODEL_BOOT_QUSIM,     /* +QUSIM: 1 (with a card) */
    MODEL_BOOT_SMS_DONE,  /* +QIND: SMS DONE (with a card) */
    MODEL_BOOT_IP,        /* +IP: <addr> once registered */
    MODEL_BOOT_FOTA,      /* the result of a finished update (the family's URC), if any */
};

struct model {
    const char *name;         /* --model value, e.g. "EC200A-CN" */
    const char *family;       /* "quectel", "quectel_nb", ... */
    const char *manufacturer; /* +CGMI and the first ATI line */
    const char *product;      /* +CGMM and the second ATI line */
    const char *revision;     /* factory firmware revision (+CGMR, ATI "Revision: ") */
    const char *project;      /* image header: the firmware project packages are built for */
    const char *baseline;     /* image header: the firmware line (R01 and R02 do not mix) */
    size_t image_size;        /* factory image body bytes */
    const char *imei;         /* module 0's IMEI; module n adds n (Luhn digit recomputed) */
    const char *imsi;
    const char *ip;           /* address the network gives */
    int ip_cid;               /* the context +CGPADDR reports the address on */
    int act;                  /* 7 LTE, 9 NB-IoT */
    struct flash_geom geom;
    const struct model_part *parts;
    size_t nparts;
    unsigned nports;          /* 1: main UART; 2: main UART and USB AT */
    const enum model_boot *boot;
    double boot_seconds;      /* virtual seconds from power-on to the first boot line */
    const char *off_line;     /* printed on an orderly power-off, or NULL */
    int cmee_default;
    enum fota_topo topo;      /* how an update is applied */
    enum fota_policy policy;  /* what a cut during the apply leaves (default) */
    double apply_step_seconds; /* virtual time one apply step (one segment) takes */
    const struct fota_family *fota_family; /* URCs and codes of update events, or NULL */
    const struct at_table *const *tables;
    size_t ntables;
    bool bench;               /* a benchmark-only model, not a real product */
    bool minifota; /* MiniFOTA build (2/4/8 MB): no fota/cid, no HTTPS, no FILE mode, no URC limits */
    bool autobaud; /* starts in auto-baud mode (+IPR: 0) and keeps AT+IPR in NV; while in it, an
                      update's result URC waits for the host's first characters (BC260Y-CN) */
    size_t mini_image_size; /* MiniFOTA: body bytes of the factory Mini-system image (0: none) */
};

/* A Mini system's revision is the main revision it ships with plus this suffix. */
#define MODEL_MINI_SUFFIX "-MINI"

size_t model_count(void);
const struct model *model_at(size_t i);

/* The model called name (case-insensitive), or NULL. */
const struct model *model_find(const char *name);

/* The partition called name, or NULL. */
const struct model_part *model_part(const struct model *m, const char *name);

/*
 * The model's factory image (header + body), byte for byte what `modtwin image --model` writes
 * and what a new state dir boots. *img is malloc'd. 0 or -errno.
 */
int model_factory_image(const struct model *m, uint8_t **img, size_t *len);

/*
 * The model's factory Mini-system image (MiniFOTA builds): revision "<revision>-MINI", the main
 * image's project and baseline, mini_image_size bytes of body; what `modtwin image --model M
 * --mini` writes and what a new state dir holds in its "mini" partition. *img is malloc'd.
 * 0, -ENOENT (the model has no Mini system) or -errno.
 */
int model_mini_image(const struct model *m, uint8_t **img, size_t *len);

/*
 * The image new state dirs are provisioned with, made once and shared by the modules of a fleet:
 * `--image`'s bytes when the owner set img, else the model's factory image on first use.
 */
struct model_image {
    uint8_t *img;
    size_t len;
};

/* The image (made on first use); 0 or -errno. The bytes stay owned by c. */
int model_image_get(struct model_image *c, const struct model *m, const uint8_t **img,
                    size_t *len);

void model_image_free(struct model_image *c);

/* Writes the IMEI of module `index` of this model (15 digits and NUL) into out[16]. */
void model_imei(const struct model *m, int index, char out[16]);

#endif
