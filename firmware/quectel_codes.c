/*
 * Quectel update result codes (see quectel_codes.h). The FTP codes 614-629 of seed 002 are RFC 959's
 * negative replies in order (421, 425, 426, 450, 451, 452, 500-504, 530, 532, 550-552), so a reply
 * code the server sent decides first; the class decides otherwise. HTTP has no such table: the
 * status stays in the engine's event, the host sees 723 "response failed". Not here: which of
 * these a family prints when (firmware/quectel_fota.c).
 */
#include "firmware/quectel_codes.h"

#include <stddef.h>

#define N(t) (sizeof(t) / sizeof((t)[0]))

/* RFC 959 reply -> <FTP_err>. */
static const struct {
    int reply, code;
} quectel_ftp_replies[] = {
    {421, 614}, {425, 615}, {426, 616}, {450, 617}, {451, 618}, {452, 619},
    {500, 620}, {501, 621}, {502, 622}, {503, 623}, {504, 624}, {530, 625},
    {532, 626}, {550, 627}, {551, 628}, {552, 629}, {553, 612},
};

/* Class -> <FTP_err> when no reply code decides. */
static const int quectel_ftp_class[XFER_E_COUNT] = {
    [XFER_OK] = 0,
    [XFER_E_URL] = 610,          /* invalid parameter */
    [XFER_E_NO_NETWORK] = 605,   /* network error */
    [XFER_E_DNS] = 604,          /* DNS resolution failed */
    [XFER_E_CONNECT] = 605,      /* network error: the control connection never opened */
    [XFER_E_TIMEOUT] = 609,      /* time-out */
    [XFER_E_RESET] = 607,        /* data connection closed (606 before any data) */
    [XFER_E_TLS] = 601,          /* unknown: the table has no TLS code */
    [XFER_E_AUTH] = 625,         /* login failed */
    [XFER_E_NOT_FOUND] = 627,    /* requested action not taken (550) */
    [XFER_E_SERVER] = 627,       /* requested action not taken */
    [XFER_E_PROTOCOL] = 620,     /* the server's reply was not understood */
    [XFER_E_TOO_BIG] = 613,      /* file error: it does not fit */
    [XFER_E_STORAGE_FULL] = 613, /* file error */
    [XFER_E_STORAGE] = 611,      /* file open (write) failed */
    [XFER_E_ABORTED] = 601,
    [XFER_E_INTERNAL] = 601,
};

int quectel_ftp_err(enum xfer_err err, int reply, uint64_t got, enum quectel_net net)
{
    if (err == XFER_OK)
        return 0;
    if (err == XFER_E_NO_NETWORK && net == QUECTEL_NET_OUTAGE)
        return 605;
    for (size_t i = 0; i < N(quectel_ftp_replies); i++)
        if (quectel_ftp_replies[i].reply == reply)
            return quectel_ftp_replies[i].code;
    if (err == XFER_E_RESET && got == 0)
        return 606; /* the control connection closed before the data came */
    return (unsigned)err < XFER_E_COUNT ? quectel_ftp_class[err] : 601;
}

/* Class -> <HTTP_err>. */
static const int quectel_http_class[XFER_E_COUNT] = {
    [XFER_OK] = 0,
    [XFER_E_URL] = 711,          /* URL error */
    [XFER_E_NO_NETWORK] = 707,   /* network open failed (not registered / attached) */
    [XFER_E_DNS] = 714,          /* DNS error */
    [XFER_E_CONNECT] = 716,      /* socket connect error */
    [XFER_E_TIMEOUT] = 728,      /* waiting for the response timed out (722 once data came) */
    [XFER_E_RESET] = 717,        /* socket read error (719 socket closed before any data) */
    [XFER_E_TLS] = 716,          /* the TLS connection could not be set up */
    [XFER_E_AUTH] = 723,         /* response failed */
    [XFER_E_NOT_FOUND] = 723,
    [XFER_E_SERVER] = 723,
    [XFER_E_PROTOCOL] = 721,     /* data decode error */
    [XFER_E_TOO_BIG] = 701,      /* unknown: the table has no storage code */
    [XFER_E_STORAGE_FULL] = 701,
    [XFER_E_STORAGE] = 701,
    [XFER_E_ABORTED] = 701,
    [XFER_E_INTERNAL] = 729,     /* memory allocation failed */
};

int quectel_http_err(enum xfer_err err, int status, uint64_t got, enum quectel_net net)
{
    (void)status;
    if (err == XFER_OK)
        return 0;
    if (err == XFER_E_NO_NETWORK) {
        switch (net) {
        case QUECTEL_NET_CTX_UNSET:
            return QUECTEL_HTTP_NET_UNSET;
        case QUECTEL_NET_CTX_LOST:
            return QUECTEL_HTTP_NET_DEACT;
        case QUECTEL_NET_OUTAGE:
            return 710; /* network error */
        default:
            return 707;
        }
    }
    if (err == XFER_E_TIMEOUT && got)
        return 722;
    if (err == XFER_E_RESET && !got)
        return 719;
    return (unsigned)err < XFER_E_COUNT ? quectel_http_class[err] : 701;
}

/* Class -> BC260Y <dl_err>. */
static const int quectel_nb_class[XFER_E_COUNT] = {
    [XFER_OK] = 0,
    [XFER_E_URL] = 1,
    [XFER_E_NO_NETWORK] = 99, /* network unavailable */
    [XFER_E_DNS] = 2,
    [XFER_E_CONNECT] = 12,    /* download failed */
    [XFER_E_TIMEOUT] = 12,
    [XFER_E_RESET] = 12,
    [XFER_E_TLS] = 12,
    [XFER_E_AUTH] = 12,
    [XFER_E_NOT_FOUND] = 12,
    [XFER_E_SERVER] = 12,
    [XFER_E_PROTOCOL] = 12,
    [XFER_E_TOO_BIG] = 101,      /* flash not enough */
    [XFER_E_STORAGE_FULL] = 101,
    [XFER_E_STORAGE] = 100,      /* flash write error */
    [XFER_E_ABORTED] = 1,
    [XFER_E_INTERNAL] = 1,       /* unknown */
};

int quectel_nb_dl_err(enum xfer_err err, enum quectel_net net)
{
    if (err == XFER_E_NO_NETWORK && net == QUECTEL_NET_CTX_LOST)
        return QUECTEL_NB_DL_NET_DEACT;
    return (unsigned)err < XFER_E_COUNT ? quectel_nb_class[err] : 1;
}

/* Package verdict -> LTE <err>. */
static const int quectel_dfota_codes[PKG_E_COUNT] = {
    [PKG_OK] = 0,
    [PKG_E_TRUNCATED] = 505,     /* package check error */
    [PKG_E_MAGIC] = 505,
    [PKG_E_FORMAT] = 505,
    [PKG_E_HDR_CRC] = 505,
    [PKG_E_KIND] = 505,
    [PKG_E_LAYOUT] = 505,
    [PKG_E_TABLE] = 505,
    [PKG_E_CODEC] = 505,
    [PKG_E_SIGNATURE] = 505,
    [PKG_E_UNSIGNED] = 505,
    [PKG_E_PROJECT] = 552,       /* project name mismatch */
    [PKG_E_BASELINE] = 553,      /* baseline name mismatch */
    [PKG_E_SOURCE_REV] = 507,    /* version mismatch */
    [PKG_E_SOURCE_DIGEST] = 507, /* the running image is not the one the package was made from */
    [PKG_E_TOO_BIG] = 504,       /* upgrade failed */
    [PKG_E_SEGMENT] = 505,
    [PKG_E_TARGET_DIGEST] = 506, /* the built image's check failed */
    [PKG_E_TARGET_MD5] = 506,    /* firmware MD5 check error */
    [PKG_E_IO] = 504,
    [PKG_E_INTERRUPTED] = 504,
};

int quectel_dfota_err(enum pkg_err e)
{
    return (unsigned)e < PKG_E_COUNT ? quectel_dfota_codes[e] : 504;
}

int quectel_nb_upgrade_err(enum pkg_err e)
{
    return e == PKG_OK ? 0 : 255;
}
