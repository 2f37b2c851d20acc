/*
 * struct modem: one module instance. It owns everything of that module: its ports (PTY + AT
 * engine each), its flash and the NV and UFS areas on it, its radio view, its timers, and its
 * volatile settings. A fleet is many of these on one libev loop; nothing is shared but the loop
 * and the virtual clock.
 *
 * Power: OFF -> (power_on) BOOTING -> (boot lines) ON -> (off | cut) -> OFF; a power-on that
 * finds an update to apply goes to UPGRADE instead (no boot lines, the host is not heard, the
 * apply runs, then a restart), one that finds a broken image to BRICKED; during a MiniFOTA update
 * a power-on may run the Mini system instead of the big one (modem->system). A cut marks the
 * module dead at once (flash refuses writes, ports go silent) and releases its RAM state at the
 * next loop turn without writing anything; the next power-on rebuilds it from the state dir.
 */
#ifndef MODTWIN_FIRMWARE_MODEM_H
#define MODTWIN_FIRMWARE_MODEM_H

#include <ev.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "firmware/at_engine.h"
#include "firmware/dl.h"
#include "firmware/fota.h"
#include "firmware/fw_image.h"
#include "firmware/model.h"
#include "firmware/quectel_fota.h"
#include "firmware/quectel_minifota.h"
#include "hal/pty.h"
#include "hal/radio.h"
#include "hal/uart.h"
#include "hal/vclock.h"
#include "protocols/xfer.h"
#include "storage/flash.h"
#include "storage/nv.h"
#include "storage/ufs.h"

#define MODEM_MAX_PORTS 2
#define MODEM_MAX_CIDS 16
#define MODEM_CUT_URC_MAX 127
/* Bytes/s a module takes a raw transfer at on a port without flow control (seed 002 3.3.1.3:
 * "15 KB/s"): AT+QFUPL and AT+QFOTADL="FILE:..." set it as the port's rx_limit. */
#define MODEM_NOFLOW_RX_LIMIT 15360.0

enum modem_power { MODEM_OFF, MODEM_BOOTING, MODEM_ON, MODEM_DEAD, MODEM_UPGRADE, MODEM_BRICKED };

/*
 * Which firmware a boot runs: the big system (the "system" partition, every command) or, during
 * a MiniFOTA update, the Mini system (the "mini" partition: its own revision, its own boot lines,
 * registration and AT+QFOTADL only). An upgrade boot of the Mini system's update counts as MINI.
 */
enum modem_system { MODEM_SYS_MAIN, MODEM_SYS_MINI };

enum modem_event_kind {
    MODEM_EV_URC,
    MODEM_EV_RX,
    MODEM_EV_TX,
    MODEM_EV_STATE,
    MODEM_EV_FLASH,
    MODEM_EV_FOTA, /* data: the engine event as text ("apply 37", "refused: ...") */
};

/* An event for the control API stream and the trace file; data is valid during the call. */
struct modem_event {
    enum modem_event_kind kind;
    int port;         /* index into ports[], or -1 */
    const void *data; /* URC text, or raw bytes */
    size_t len;
    const char *state; /* MODEM_EV_STATE: "booting", "on", "off", "cut", "upgrade", "bricked" */
};

struct modem;
typedef void modem_event_fn(void *ctx, struct modem *m, const struct modem_event *ev);

struct modem_port {
    struct modem *m;
    int index;
    const char *kind; /* "uart" or "usb" */
    char link[PATH_MAX];
    struct pty pty;
    bool pty_open;
    struct uart uart; /* the receive FIFO between the wire and the AT engine */
    double rx_limit;  /* bytes/s a data mode takes at most (0: no limit), set by families */
    struct at_engine at;
    bool at_ready;
    /* a command job of this port that lives on the heap (AT+QFUPL, AT+QFDWL): dropped, without
     * writing anything, when the port stops with the power */
    void *job;
    void (*job_drop)(void *job);
};

/*
 * A PDP context as +CGDCONT and AT+QICSGP configure it. active: the context carries an address
 * (the network's default bearer while attached, or AT+QIACT); every context drops when the attach
 * is lost (modem_set_attached).
 */
struct modem_pdp {
    bool defined, active;
    char type[8];  /* +CGDCONT <PDP_type>: "IP", "IPV6", "IPV4V6", "Non-IP" */
    int ip_type;   /* the same as AT+QICSGP's <context_type>: 1 IPv4, 2 IPv6, 3 IPv4v6, 0 none */
    char apn[64];
    char user[64], pwd[64];
    int auth;      /* 0 none, 1 PAP, 2 CHAP, 3 PAP or CHAP */
};

struct modem {
    const struct model *model;
    struct ev_loop *loop;
    struct vclock *clock;
    struct pty_hub *hub;
    int index;
    char dir[PATH_MAX]; /* state dir: flash.bin, flash.bin.wear */
    char imei[16];
    enum modem_power power;
    struct modem_port ports[MODEM_MAX_PORTS];
    unsigned nports;
    struct flash flash;
    bool flash_open;
    struct nv nv;
    struct ufs ufs;
    bool storage_ok;
    struct radio radio;
    /* transfers: the world's conditions, the shared address map, the download job */
    struct xfer_net net;       /* up is derived (modem_net_update); the rest the world sets */
    bool outage;               /* the world: registered, but no data flows */
    const struct xfer_map *map;
    const char *ca_file;       /* --ca: the trust store for HTTPS / FTPS, or NULL */
    struct xfer_env xenv;
    struct dl dl;
    struct fota fota;
    struct qfota qfota; /* the Quectel update family's job (AT+QFOTADL) */
    struct qmini qmini; /* the MiniFOTA flow (2/4/8 MB Quectel builds) */
    enum modem_system system; /* what this boot runs (set at power-on) */
    struct fw_image_info fw; /* the running image (valid when fw_ok) */
    bool fw_ok;
    enum fota_policy policy;      /* what a cut during an apply leaves */
    struct model_image *factory;  /* what a new state dir is provisioned with (the fleet's);
                                     NULL: the model's factory image, made for the occasion */
    struct vtimer boot_timer;
    struct vtimer restore_timer;
    ev_idle reap; /* releases a dead module's RAM state at the next loop turn */
    double restore_after; /* < 0: stay off after a cut */
    uint64_t boots;
    uint64_t flash_ops_seen;
    /* volatile settings (AT&W keeps echo, V, Q and CMEE in NV) */
    int cmee;
    int cfun;
    int creg_n, cereg_n;
    int reg_seen; /* the last registration state reported by URC */
    char cscs[8];
    long ipr;       /* AT+IPR; 0 = auto-baud (kept in NV on models with model->autobaud) */
    bool fota_held; /* auto-baud: the update's result waits for the host's first characters */
    int ifc_rx, ifc_tx;
    int usbifc_rx, usbifc_tx; /* AT+QCFG="usbifc",<rx>,<tx> as the host set them (0 or 2) */
    bool usb_flow;  /* USB AT port flow control (AT+QCFG="usbifc",2,2) */
    int fota_cid;   /* AT+QCFG="fota/cid": the context a DFOTA download uses (default 1) */
    bool pacing;    /* --pacing: the UART takes and sends bytes no faster than its baud rate */
    bool attached;      /* +CGATT: attached to the packet domain */
    bool attach_wanted; /* cleared by AT+CGATT=0: LTE attaches on registration otherwise */
    struct modem_pdp pdp[MODEM_MAX_CIDS];
    /* the control API's cut_on rule: cut as a URC starting with this is about to go out */
    char cut_urc[MODEM_CUT_URC_MAX + 1];
    double cut_urc_restore;
    modem_event_fn *on_event;
    void *event_ctx;
};

/*
 * Prepares m (no I/O yet besides creating the UART PTY, which lives as long as m):
 * link is the main port's symlink path or NULL ("<link>.usb" for the USB port).
 * Returns 0 or -errno.
 */
int modem_init(struct modem *m, const struct model *model, int index, const char *dir,
               const char *link, struct pty_hub *hub, struct vclock *clock);

/* Releases everything, the UART PTY included. The module must be off or dead. */
void modem_free(struct modem *m);

/* Power-on: mount storage, bring up the ports, print the boot lines after the boot time. */
int modem_power_on(struct modem *m);

/* Orderly power-off: the off line, then off. */
void modem_power_off(struct modem *m);

/*
 * Power cut now: nothing is written or printed from this point on. restore_after >= 0 powers the
 * module on again after that many virtual seconds; < 0 leaves it off.
 */
void modem_power_cut(struct modem *m, double restore_after);

/* Cut at the nth flash operation from now (1 = the next), with the given fault model. */
void modem_arm_cut(struct modem *m, uint64_t nth, enum flash_fault kind, uint32_t seed,
                   double restore_after);

/*
 * Arms a power cut for the moment the module is about to emit a URC whose text starts with
 * prefix (the host never sees that URC); "" disarms. The rule outlives restarts and is used up
 * when it fires. restore_after as for modem_power_cut.
 */
void modem_arm_cut_urc(struct modem *m, const char *prefix, double restore_after);

/* An orderly restart (AT+CFUN=1,1, a reboot action). */
void modem_reboot(struct modem *m);

/* An abrupt reset: a cut followed at once by a power-on. */
void modem_reset(struct modem *m);

const char *modem_power_name(enum modem_power p);

/* The firmware revision the module runs (ATI, +CGMR). */
const char *modem_revision(const struct modem *m);

/* Registration state the module reports (+CREG/+CEREG <stat>). */
int modem_reg_state(const struct modem *m);

/* Sends a URC to the module's ports (and the event stream). */
void modem_urc(struct modem *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Emits a flash event when the flash was programmed or erased since the last one. The module
 * calls it after each AT line, timer and boot; code that works on the flash from outside (the
 * control API's file push) calls it after its burst.
 */
void modem_flash_event(struct modem *m);

/*
 * Recomputes whether data can flow (registered, attached, no outage) and tells running
 * transfers about any change of the world's conditions.
 */
void modem_net_update(struct modem *m);

/*
 * Sets the packet-domain attach and keeps the contexts in step with it: an attach activates the
 * network's default bearer (cid model->ip_cid), losing it deactivates every context. Callers
 * call modem_net_update() afterwards. May be called from a handler or a radio callback.
 */
void modem_set_attached(struct modem *m, bool attached);

/*
 * Whether context cid can carry data now: cid in range, the context active, the module attached
 * and registered (home or roaming), and no outage. Pure.
 */
bool modem_ctx_up(const struct modem *m, int cid);

/* The transfer options a module uses unless a family says otherwise (time-outs, trust store). */
void modem_xfer_defaults(const struct modem *m, struct xfer_opts *o);

/* Emits a "fota" event with a text of its own (download milestones, engine events). */
void modem_fota_note(struct modem *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Emits a FOTA engine event for the control API and the trace. */
void modem_fota_event(struct modem *m, const struct fota_event *ev);

/* Emits a state event. */
void modem_event_state(struct modem *m, const char *state);

/*
 * Applies the port's receive settings: the baud rate (with --pacing), a data mode's limit
 * (rx_limit) and flow control (+IFC on the UART, usbifc on USB); and, with --pacing, the UART's
 * transmit rate (the same baud rate). Handlers that change any of them call it.
 */
void modem_port_uart_update(struct modem *m, struct modem_port *p);

/* Whether port p's receiver has hardware flow control (AT+IFC=2,2 on the UART, AT+QCFG="usbifc",2,2
 * on USB). */
bool modem_port_flow(const struct modem *m, const struct modem_port *p);

/* Saves the AT&W profile of port p; 0 or -errno. */
int modem_save_profile(struct modem *m, struct modem_port *p);

/* Loads the AT&W profile into port p (ATZ, boot). */
void modem_load_profile(struct modem *m, struct modem_port *p);

/* Saves m->ipr in NV, read back at every power-on (models with model->autobaud); 0 or -errno. */
int modem_save_ipr(struct modem *m);

#endif
