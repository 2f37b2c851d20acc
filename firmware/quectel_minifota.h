/*
 * Quectel MiniFOTA (seed 002 2.3.1.2, 4, 5): the update flow of 2/4/8 MB LTE builds (EC200N-CN).
 * AT+QFOTADL="<base>.mini_1" restarts the module into its Mini system, which downloads and
 * checks .mini_1, has it applied to the Mini partition in upgrade mode, then, as the new Mini
 * system, downloads <base>.mini_2 and writes the big system while it downloads; four restarts
 * in all, only UPDATING / END URCs. The flow, the job record and the URC cadence are described
 * in quectel_minifota.c. One `struct qmini` per module, in struct modem.
 *
 * Besides the module hooks this header exports the pure parts of the flow (URL suffix, URC
 * cadence, the checks of .mini_1, the staging layout, the .mini_2 writer) for the unit tests.
 */
#ifndef MODTWIN_FIRMWARE_QUECTEL_MINIFOTA_H
#define MODTWIN_FIRMWARE_QUECTEL_MINIFOTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "firmware/at_engine.h"
#include "firmware/delta.h"
#include "firmware/fota_apply.h"
#include "firmware/fw_image.h"
#include "firmware/model.h"
#include "firmware/pkg.h"
#include "firmware/quectel_fota.h"
#include "hal/vclock.h"
#include "protocols/xfer.h"
#include "storage/flash.h"
#include "storage/ufs.h"

struct modem;

#define QMINI_URL_MAX         128 /* seed 002 3.3.1 note 1 */
#define QMINI_SUFFIX_1        ".mini_1"
#define QMINI_SUFFIX_2        ".mini_2"
#define QMINI_FILE            "fota.mini_1" /* where .mini_1 lands in UFS */
#define QMINI_CHECK_BYTES     2048u /* the head of .mini_1 the match check reads (5.1 case 2) */
#define QMINI_NODATA_TIMEOUT  300.0 /* virtual s without a checked .mini_1 head: back (case 1) */
#define QMINI_RETRY_SECONDS   30.0  /* virtual s between two download attempts */
#define QMINI_RESTART_SECONDS 0.5   /* virtual s from a decision to the restart */
#define QMINI_ERR_TIMEOUT     504   /* <err> of case 1: "DFOTA upgrade failed" */
#define QMINI_URC1_COUNT      24u   /* UPDATING URCs of the .mini_1 apply ... */
#define QMINI_URC1_TOP        49u   /* ... the last of which is 49 */
#define QMINI_URC2_BASE       60u   /* step 5 starts at 60 and adds ... */
#define QMINI_URC2_STEP       4u    /* ... 4 per tenth of the big system written */
#define QMINI_CMDS_MAX        24u   /* commands the Mini system keeps */
#define QMINI_TABLES_MAX      4u

/* Where the job stands; the NV record holds it across restarts. */
enum qmini_phase {
    QMINI_PH_NONE = 0,
    QMINI_PH_DL1,    /* old Mini system: download .mini_1 into UFS, check it (steps 3, 4) */
    QMINI_PH_APPLY1, /* upgrade mode: apply .mini_1 to the Mini partition (step 4) */
    QMINI_PH_DL2,    /* new Mini system: download .mini_2, write the big system (step 5) */
    QMINI_PH_REPORT, /* the big system prints END,<err> after its boot lines (step 6) */
    QMINI_PH_COUNT
};

/* What a power-on runs, decided from the record. */
enum qmini_boot { QMINI_BOOT_MAIN, QMINI_BOOT_MINI, QMINI_BOOT_UPGRADE };

/* The .mini_2 writer: takes the package as it arrives and writes the big system, one segment
 * at a time (erase, program), each flash operation a power-loss point. Fields are private. */
enum qmini_w2_stage {
    QMINI_W2_HEAD,
    QMINI_W2_TABLE,
    QMINI_W2_SEGS,
    QMINI_W2_TAIL,
    QMINI_W2_FAILED
};

struct qmini_w2 {
    struct flash *flash;
    uint32_t off, size; /* the big system's partition */
    char project[FW_NAME_MAX + 1];
    enum qmini_w2_stage stage;
    struct pkg_hdr h;
    struct pkg_seg *segs;
    uint32_t seg;      /* the next segment */
    uint64_t pos, end; /* package bytes taken; the package's size as its header says */
    uint64_t written;  /* target bytes in flash */
    uint8_t *buf;      /* header and table, then one patch */
    size_t len, cap;
    uint8_t *seg_buf;
    struct delta_dec dec;
    bool dec_live;
    enum pkg_err err; /* why it stopped */
};

struct qmini {
    struct modem *m;
    enum qmini_phase phase;
    bool committed;              /* the .mini_1 head passed: no way back to the big system */
    int code;                    /* REPORT: the END <err> */
    char url[QMINI_URL_MAX + 1]; /* the .mini_1 URL */
    /* this boot */
    double started; /* virtual time step 3 began (case 1's time-out) */
    struct xfer *x;
    struct ufs_file fh;
    bool fh_open;
    uint64_t got, synced;
    uint8_t head[QMINI_CHECK_BYTES];
    size_t head_len;
    bool checked;         /* this attempt checked its head */
    enum pkg_err verdict; /* the head check refused the package */
    struct qmini_w2 w2;
    bool w2_live;
    unsigned urc_sent; /* APPLY1: k of 24 printed; DL2: tenths printed after 60 */
    struct fota_apply ap;
    bool ap_live;
    struct pkg_hdr hdr;
    struct pkg_seg *segs;
    struct vtimer timer; /* attempts, apply steps, restarts */
    /* the Mini system's command set, filtered from the model's tables */
    struct at_cmd cmds[QMINI_CMDS_MAX];
    struct at_table tabs[QMINI_TABLES_MAX];
    const struct at_table *tabp[QMINI_TABLES_MAX];
    size_t ntabs;
};

/* The boot lines of the Mini system: RDY, +CFUN: 1, +CPIN (it registers, nothing else). */
extern const enum model_boot qmini_boot_lines[];

/* ---- the module's hooks (firmware/modem.c, cmd_quectel_fota.c) ------------------------------ */

/* Prepares q for module m (no I/O); builds the Mini system's command set from the model. A
 * zeroed struct qmini (a module built without it) does nothing in the hooks below. */
void qmini_init(struct qmini *q, struct modem *m);

/*
 * Power-on, storage mounted, no engine job pending: reads the record and says what this boot
 * runs. Never writes. MAIN on models without MiniFOTA.
 */
enum qmini_boot qmini_boot(struct qmini *q);

/* The module finished booting (boot lines printed): reports a finished job in the big system,
 * starts step 3 or 5 in the Mini system. */
void qmini_booted(struct qmini *q);

/* Upgrade boot: applies .mini_1 (one step per apply_step_seconds), then restarts. */
void qmini_upgrade(struct qmini *q);

/* Power went: stops timers and transfers, releases RAM; writes nothing. */
void qmini_stop(struct qmini *q);

/*
 * AT+QFOTADL on a MiniFOTA build, src FTP or HTTP. In the big system: records the job and
 * restarts into the Mini system shortly after (the command answers OK first). In the Mini
 * system: replaces the URL of the step in progress and starts it again (seed 002 5.2).
 * 0; -EINVAL (not "<base>.mini_1", too long, another source); -EBUSY (another job runs);
 * -ENODEV (storage down, or no valid Mini system to restart into); an NV error.
 */
int qmini_start(struct qmini *q, enum qfota_src src, const char *url);

/* The command tables of the Mini system (valid as long as q). */
const struct at_table *const *qmini_tables(const struct qmini *q, size_t *n);

/* ---- the pure parts (unit tests) ------------------------------------------------------------ */

/* Whether url names "<base>.mini_1" with a non-empty base (the suffix check of 4.1 note 2). */
bool qmini_url_ok(const char *url);

/* The .mini_2 URL of the same base name into out[cap]. 0 or -EINVAL. */
int qmini_url_2(const char *url1, char *out, size_t cap);

/* Figure 3: the k-th (1..24) UPDATING value of the mini_1 apply, and how many are due at the
 * apply's progress pct (0..100). */
unsigned qmini_urc1(unsigned k);
unsigned qmini_urc1_due(unsigned pct);

/* Figure 3: step 5's value after j (0..9) tenths, and how many tenths are due (at most 9). */
unsigned qmini_urc2(unsigned j);
unsigned qmini_urc2_due(uint64_t done, uint64_t total);

/* The staging layout of the mini_1 apply: the Mini partition is the active slot, the big
 * system's partition (erasable by then) the staging area. 0 or -EINVAL. */
int qmini_layout(const struct model_part *mini, const struct model_part *sys,
                 struct fota_layout *lay);

/*
 * The match check on the first len bytes of .mini_1 (all of it when shorter than 2 KiB):
 * header, kind mini_1 (not in place), project, baseline, source revision, size and CRC32 of the
 * Mini image `run` in flash at run_img, the target fitting part_size, and the segment table
 * when it lies within the bytes. PKG_OK or the reason (*h filled as far as parsed).
 */
enum pkg_err qmini_check_head(const uint8_t *head, size_t len, const struct fw_image_info *run,
                              const uint8_t *run_img, uint32_t part_size, struct pkg_hdr *h);

/*
 * The integrity check of a complete .mini_1 of `size` bytes read through rd: the head check,
 * the exact size, the table, and every segment decoded against run_img with its CRC32.
 */
enum pkg_err qmini_check_pkg(delta_read_fn *rd, void *ctx, uint64_t size,
                             const struct fw_image_info *run, const uint8_t *run_img,
                             uint32_t part_size);

/* How step 3 goes on with a file of `size` bytes kept from before (head: its first bytes). */
enum qmini_resume {
    QMINI_RESUME_FRESH,    /* nothing usable: download from the first byte */
    QMINI_RESUME_APPEND,   /* a prefix: download the rest */
    QMINI_RESUME_COMPLETE, /* all the header promises is there (a cut came after the last byte):
                              no download, the integrity check decides */
};
enum qmini_resume qmini_resume_kind(const uint8_t *head, size_t head_len, uint64_t size);

/* Opens the mini_1 apply: resumes the journal in nv, or begins afresh. fota_apply's codes. */
int qmini_apply_open(struct fota_apply *ap, struct flash *f, struct nv *nv,
                     const struct fota_layout *lay, const struct fota_pkg *pkg);

/* Starts a writer of the partition [off, off + size) for a package of `project`. 0, -ENOMEM. */
int qmini_w2_begin(struct qmini_w2 *w, struct flash *f, uint32_t off, uint32_t size,
                   const char *project);

/*
 * Takes the next len bytes of .mini_2; writes each segment as soon as its patch is complete.
 * 0; -EBADMSG with w->err the reason (not a mini_2 of this project, too big, a segment that
 * does not decode to its CRC, bytes past the end); -ECANCELED after a power cut; a flash error.
 */
int qmini_w2_feed(struct qmini_w2 *w, const uint8_t *buf, size_t len);

/* The package ended at `total` bytes: complete, and the written image's SHA-256 and MD5 are
 * the header's? 0 or -EBADMSG (w->err). */
int qmini_w2_finish(struct qmini_w2 *w, uint64_t total);

/* Tenths (0..10) of the target written. */
unsigned qmini_w2_tenths(const struct qmini_w2 *w);

void qmini_w2_end(struct qmini_w2 *w);

#endif
