/*
 * modtwin: one binary, subcommands.
 *   modtwin [run] [options]   start module(s) on PTYs (the default: one EC200A-CN)
 *   modtwin ctl ...           talk to a running instance's control socket
 *   modtwin models            list the models and the commands each implements
 *   modtwin image ...         make firmware images (fresh, derived, a model's factory image)
 *   modtwin pack ...          make, inspect and apply update packages
 *   modtwin fota-send ...     send a package in Quectel's protocol download mode
 * Exit codes: 0 ok, 1 failure, 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "firmware/fota.h"
#include "firmware/fw_image.h"
#include "firmware/model.h"
#include "protocols/xfer.h"
#include "sim/fleet.h"
#include "tools/cli.h"
#include "tools/fota_send.h"

#define MODTWIN_VERSION "0.1.0"

static void run_usage(FILE *out)
{
    fprintf(out,
            "usage: modtwin [run] [options]\n"
            "  -m, --model NAME      module model (default EC200A-CN; see 'modtwin models')\n"
            "  -n, --count N         number of modules (default 1, at most 1000)\n"
            "  -d, --state-dir DIR   persistent state (default: a temporary dir removed at exit)\n"
            "  -l, --link PATH       symlink to module 0's main port (PATH.usb: USB AT port);\n"
            "                        with --count, %%d in PATH is the index (else appended)\n"
            "  -c, --control SOCK    control socket (default <state-dir>/control.sock)\n"
            "  -s, --speed F|max     virtual clock speed (default 1 = real time)\n"
            "  -t, --trace FILE      timestamped AT traffic and events, one line each\n"
            "      --off             start powered off (power on through the control API)\n"
            "  -i, --image FILE      firmware image a new state dir is provisioned with\n"
            "                        (default: the model's factory image, see modtwin image)\n"
            "  -M, --map HOST:PORT=ADDR:PORT  send connections for HOST:PORT to ADDR:PORT\n"
            "                        (repeatable; names and IP literals, every transport)\n"
            "  -C, --ca FILE         trust store for HTTPS and FTPS (default: the system's)\n"
            "      --pacing          UART ports take and send bytes no faster than AT+IPR's\n"
            "                        baud rate (without AT+IFC=2,2 a faster host overruns\n"
            "                        the receive FIFO)\n"
            "  -p, --powerloss-policy resume|rollback|brick\n"
            "                        what a power cut during a firmware apply leaves\n"
            "                        (default: the model's, see docs/models.md)\n"
            "  -h, --help            this text\n");
}

static int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},   {"count", required_argument, NULL, 'n'},
        {"state-dir", required_argument, NULL, 'd'}, {"link", required_argument, NULL, 'l'},
        {"control", required_argument, NULL, 'c'}, {"speed", required_argument, NULL, 's'},
        {"trace", required_argument, NULL, 't'},   {"off", no_argument, NULL, 'o'},
        {"image", required_argument, NULL, 'i'},   {"powerloss-policy", required_argument, NULL, 'p'},
        {"map", required_argument, NULL, 'M'},     {"ca", required_argument, NULL, 'C'},
        {"pacing", no_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    struct fleet_opts o = {.model = model_find("EC200A-CN"), .count = 1, .speed = 1, .policy = -1};
    struct xfer_map map = {0};
    struct fw_image_info info;
    enum fota_policy policy;
    const char *image = NULL;
    uint8_t *img = NULL;
    size_t img_len = 0;
    struct ev_loop *loop;
    struct fleet f;
    bool off = false;
    long n;
    int c, rc;

    optind = 1;
    while ((c = getopt_long(argc, argv, "m:n:d:l:c:s:t:i:p:M:C:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            o.model = model_find(optarg);
            if (!o.model) {
                fprintf(stderr, "modtwin: unknown model '%s' (see 'modtwin models')\n", optarg);
                return 2;
            }
            break;
        case 'n':
            if (cli_parse_long(optarg, 1, 1000, &n)) {
                fprintf(stderr, "modtwin: --count '%s': expected 1..1000\n", optarg);
                return 2;
            }
            o.count = (int)n;
            break;
        case 'd':
            o.state_dir = optarg;
            break;
        case 'l':
            o.link = optarg;
            break;
        case 'c':
            o.control = optarg;
            break;
        case 's':
            if (vclock_parse_speed(optarg, &o.speed)) {
                fprintf(stderr, "modtwin: --speed '%s': expected 'max' or a factor > 0\n",
                        optarg);
                return 2;
            }
            break;
        case 't':
            o.trace = optarg;
            break;
        case 'o':
            off = true;
            break;
        case 'i':
            image = optarg;
            break;
        case 'M':
            if (xfer_map_add(&map, optarg)) {
                fprintf(stderr, "modtwin: --map '%s': expected HOST:PORT=ADDR:PORT (at most %d)\n",
                        optarg, XFER_MAP_MAX);
                return 2;
            }
            o.map = &map;
            break;
        case 'C':
            o.ca = optarg;
            break;
        case 'P':
            o.pacing = true;
            break;
        case 'p':
            if (fota_policy_parse(optarg, &policy)) {
                fprintf(stderr, "modtwin: --powerloss-policy '%s': expected resume, rollback "
                                "or brick\n", optarg);
                return 2;
            }
            o.policy = (int)policy;
            break;
        case 'h':
            run_usage(stdout);
            return 0;
        default:
            run_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "modtwin: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (image) {
        /* Read and checked once here; the fleet provisions new state dirs from these bytes. */
        const struct model_part *sys = model_part(o.model, "system");
        int rc2 = cli_read_file(image, &img, &img_len);
        if (rc2 || fw_image_parse(img, img_len, true, &info) || !sys || img_len > sys->size) {
            fprintf(stderr, "modtwin: --image '%s': %s\n", image,
                    rc2 ? strerror(-rc2)
                        : img_len > (sys ? sys->size : 0) ? "larger than the system partition"
                                                          : "not a valid firmware image");
            free(img);
            return 2;
        }
        o.image = img;
        o.image_len = img_len;
    }
    loop = ev_default_loop(EVFLAG_AUTO);
    rc = fleet_init(&f, loop, &o);
    free(img); /* the fleet keeps its own copy */
    if (rc) {
        fprintf(stderr, "modtwin: start: %s\n", strerror(-rc));
        fleet_free(&f);
        return 1;
    }
    if (!off)
        fleet_power_on(&f);
    printf("modtwin %s: %s x%d, state %s, control %s\n", MODTWIN_VERSION, o.model->name,
           o.count, f.dir, f.control);
    fleet_print_ports(&f, stdout);
    printf("ready\n");
    fflush(stdout);
    ev_run(loop, 0);
    fleet_free(&f);
    return 0;
}

static int cmd_models(int argc, char **argv)
{
    (void)argv;
    if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        printf("usage: modtwin models\n  lists every model, its identity, flash, ports and "
               "the AT commands it implements\n");
        return 0;
    }
    for (size_t i = 0; i < model_count(); i++) {
        const struct model *m = model_at(i);
        printf("%s%s\n  family %s; %s %s; revision %s\n  flash %u KiB (erase %u, page %u); "
               "ports %s\n  partitions:",
               m->name, m->bench ? " (benchmark model)" : "", m->family, m->manufacturer,
               m->product, m->revision, m->geom.size >> 10, m->geom.erase_size,
               m->geom.page_size, m->nports > 1 ? "uart, usb" : "uart");
        for (size_t j = 0; j < m->nparts; j++)
            printf(" %s@0x%x+%uK", m->parts[j].name, m->parts[j].off, m->parts[j].size >> 10);
        printf("\n  commands:");
        for (size_t t = 0; t < m->ntables; t++)
            for (size_t j = 0; j < m->tables[t]->n; j++)
                printf(" %s%s", "AT",
                       m->tables[t]->cmds[j].name);
        printf("\n");
    }
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: modtwin [run] [options]   start module(s) (modtwin run --help)\n"
                 "       modtwin ctl ...           control a running instance (modtwin ctl "
                 "--help)\n"
                 "       modtwin models            list the models\n"
                 "       modtwin image ...         make firmware images (modtwin image --help)\n"
                 "       modtwin pack ...          make, inspect, apply packages (modtwin pack "
                 "--help)\n"
                 "       modtwin fota-send ...     send a package in protocol download mode\n"
                 "       modtwin --version\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
            printf("modtwin %s\n", MODTWIN_VERSION);
            return 0;
        }
        if (argc >= 2 && strcmp(argv[1], "--help") == 0 && argc == 2) {
            usage(stdout);
            return 0;
        }
        return cmd_run(argc, argv);
    }
    if (strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (strcmp(argv[1], "ctl") == 0)
        return ctl_client_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "models") == 0)
        return cmd_models(argc - 1, argv + 1);
    if (strcmp(argv[1], "image") == 0)
        return image_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "pack") == 0)
        return pack_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "fota-send") == 0)
        return fota_send_main(argc - 1, argv + 1);
    fprintf(stderr, "modtwin: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
