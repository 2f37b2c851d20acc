/*
 * test_quectel_codes.c: the Quectel result-code maps (firmware/quectel_codes.c), table-driven:
 * every transfer class and package verdict has a code in each table, the FTP reply codes map to
 * 614-629 in RFC 959 order, and the network causes split the HTTP codes 707-710. Not tested
 * here: when the family prints them (test/e2e/test_quectel_fota.py).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "firmware/quectel_codes.h"

static void test_ftp(void **state)
{
    static const struct {
        enum xfer_err err;
        int reply;
        uint64_t got;
        enum quectel_net net;
        int want;
    } cases[] = {
        {XFER_OK, 0, 10, QUECTEL_NET_OK, 0},
        {XFER_E_DNS, 0, 0, QUECTEL_NET_OK, 604},
        {XFER_E_NO_NETWORK, 0, 0, QUECTEL_NET_DOWN, 605},
        {XFER_E_NO_NETWORK, 0, 0, QUECTEL_NET_OUTAGE, 605},
        {XFER_E_CONNECT, 0, 0, QUECTEL_NET_OK, 605},
        {XFER_E_RESET, 0, 0, QUECTEL_NET_OK, 606},
        {XFER_E_RESET, 0, 5, QUECTEL_NET_OK, 607},
        {XFER_E_TIMEOUT, 0, 0, QUECTEL_NET_OK, 609},
        {XFER_E_URL, 0, 0, QUECTEL_NET_OK, 610},
        {XFER_E_STORAGE, 0, 0, QUECTEL_NET_OK, 611},
        {XFER_E_STORAGE_FULL, 0, 0, QUECTEL_NET_OK, 613},
        {XFER_E_AUTH, 530, 0, QUECTEL_NET_OK, 625},
        {XFER_E_AUTH, 0, 0, QUECTEL_NET_OK, 625},
        {XFER_E_NOT_FOUND, 550, 0, QUECTEL_NET_OK, 627},
        {XFER_E_SERVER, 421, 0, QUECTEL_NET_OK, 614},
        {XFER_E_SERVER, 425, 0, QUECTEL_NET_OK, 615},
        {XFER_E_SERVER, 426, 0, QUECTEL_NET_OK, 616},
        {XFER_E_SERVER, 450, 0, QUECTEL_NET_OK, 617},
        {XFER_E_SERVER, 451, 0, QUECTEL_NET_OK, 618},
        {XFER_E_SERVER, 452, 0, QUECTEL_NET_OK, 619},
        {XFER_E_SERVER, 500, 0, QUECTEL_NET_OK, 620},
        {XFER_E_SERVER, 501, 0, QUECTEL_NET_OK, 621},
        {XFER_E_SERVER, 502, 0, QUECTEL_NET_OK, 622},
        {XFER_E_SERVER, 503, 0, QUECTEL_NET_OK, 623},
        {XFER_E_SERVER, 504, 0, QUECTEL_NET_OK, 624},
        {XFER_E_SERVER, 532, 0, QUECTEL_NET_OK, 626},
        {XFER_E_SERVER, 551, 0, QUECTEL_NET_OK, 628},
        {XFER_E_SERVER, 552, 0, QUECTEL_NET_OK, 629},
        {XFER_E_SERVER, 553, 0, QUECTEL_NET_OK, 612},
        {XFER_E_INTERNAL, 0, 0, QUECTEL_NET_OK, 601},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(quectel_ftp_err(cases[i].err, cases[i].reply, cases[i].got,
                                         cases[i].net),
                         cases[i].want);
    for (int e = 1; e < XFER_E_COUNT; e++) {
        int c = quectel_ftp_err((enum xfer_err)e, 0, 1, QUECTEL_NET_OK);
        assert_true(c >= 601 && c <= 629);
    }
}

static void test_http(void **state)
{
    (void)state;
    assert_int_equal(quectel_http_err(XFER_OK, 200, 1, QUECTEL_NET_OK), 0);
    assert_int_equal(quectel_http_err(XFER_E_NO_NETWORK, 0, 0, QUECTEL_NET_DOWN), 707);
    assert_int_equal(quectel_http_err(XFER_E_NO_NETWORK, 0, 0, QUECTEL_NET_CTX_UNSET), 708);
    assert_int_equal(quectel_http_err(XFER_E_NO_NETWORK, 0, 9, QUECTEL_NET_CTX_LOST), 709);
    assert_int_equal(quectel_http_err(XFER_E_NO_NETWORK, 0, 9, QUECTEL_NET_OUTAGE), 710);
    assert_int_equal(quectel_http_err(XFER_E_DNS, 0, 0, QUECTEL_NET_OK), 714);
    assert_int_equal(quectel_http_err(XFER_E_CONNECT, 0, 0, QUECTEL_NET_OK), 716);
    assert_int_equal(quectel_http_err(XFER_E_RESET, 0, 9, QUECTEL_NET_OK), 717);
    assert_int_equal(quectel_http_err(XFER_E_RESET, 0, 0, QUECTEL_NET_OK), 719);
    assert_int_equal(quectel_http_err(XFER_E_TIMEOUT, 0, 9, QUECTEL_NET_OK), 722);
    assert_int_equal(quectel_http_err(XFER_E_TIMEOUT, 0, 0, QUECTEL_NET_OK), 728);
    assert_int_equal(quectel_http_err(XFER_E_NOT_FOUND, 404, 0, QUECTEL_NET_OK), 723);
    assert_int_equal(quectel_http_err(XFER_E_INTERNAL, 0, 0, QUECTEL_NET_OK), 729);
    for (int e = 1; e < XFER_E_COUNT; e++) {
        int c = quectel_http_err((enum xfer_err)e, 0, 1, QUECTEL_NET_OK);
        assert_true(c >= 701 && c <= 730);
    }
}

static void test_nb(void **state)
{
    static const int allowed[] = {1, 2, 12, 13, 99, 100, 101};

    (void)state;
    assert_int_equal(quectel_nb_dl_err(XFER_OK, QUECTEL_NET_OK), 0);
    assert_int_equal(quectel_nb_dl_err(XFER_E_DNS, QUECTEL_NET_OK), 2);
    assert_int_equal(quectel_nb_dl_err(XFER_E_NO_NETWORK, QUECTEL_NET_DOWN), 99);
    assert_int_equal(quectel_nb_dl_err(XFER_E_NO_NETWORK, QUECTEL_NET_CTX_LOST), 13);
    assert_int_equal(quectel_nb_dl_err(XFER_E_STORAGE, QUECTEL_NET_OK), 100);
    assert_int_equal(quectel_nb_dl_err(XFER_E_STORAGE_FULL, QUECTEL_NET_OK), 101);
    for (int e = 1; e < XFER_E_COUNT; e++) {
        int c = quectel_nb_dl_err((enum xfer_err)e, QUECTEL_NET_OK), ok = 0;
        for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
            ok |= c == allowed[i];
        assert_true(ok);
    }
    assert_int_equal(quectel_nb_upgrade_err(PKG_OK), 0);
    assert_int_equal(quectel_nb_upgrade_err(PKG_E_PROJECT), 255);
}

static void test_dfota(void **state)
{
    static const int allowed[] = {504, 505, 506, 507, 552, 553};

    (void)state;
    assert_int_equal(quectel_dfota_err(PKG_OK), 0);
    assert_int_equal(quectel_dfota_err(PKG_E_PROJECT), 552);
    assert_int_equal(quectel_dfota_err(PKG_E_BASELINE), 553);
    assert_int_equal(quectel_dfota_err(PKG_E_SOURCE_REV), 507);
    assert_int_equal(quectel_dfota_err(PKG_E_TARGET_MD5), 506);
    assert_int_equal(quectel_dfota_err(PKG_E_HDR_CRC), 505);
    assert_int_equal(quectel_dfota_err(PKG_E_INTERRUPTED), 504);
    for (int e = 1; e < PKG_E_COUNT; e++) {
        int c = quectel_dfota_err((enum pkg_err)e), ok = 0;
        for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
            ok |= c == allowed[i];
        assert_true(ok);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ftp),
        cmocka_unit_test(test_http),
        cmocka_unit_test(test_nb),
        cmocka_unit_test(test_dfota),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
