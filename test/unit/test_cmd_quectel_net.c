/*
 * Unit tests of the PDP-context state behind the Quectel context commands: every model's command
 * tables pass at_table_check (the Quectel context table among them, on the models that carry it),
 * the attach keeps the contexts in step (modem_set_attached), and modem_ctx_up says when a context
 * can carry data. The modem struct is set up by hand: these functions read fields only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "firmware/cmd_quectel_net.h"
#include "firmware/modem.h"

static void test_tables_sorted(void **state)
{
    size_t carriers = 0;

    (void)state;
    assert_int_equal(at_table_check(&cmd_quectel_net_table), 0);
    for (size_t i = 0; i < model_count(); i++) {
        const struct model *md = model_at(i);
        for (size_t t = 0; t < md->ntables; t++) {
            assert_int_equal(at_table_check(md->tables[t]), 0);
            carriers += md->tables[t] == &cmd_quectel_net_table;
        }
    }
    /* EC200A-CN, EC200N-CN and the two benchmark models; not BC260Y-CN */
    assert_int_equal(carriers, 4);
    assert_true(model_find("EC200N-CN")->minifota);
    assert_false(model_find("EC200A-CN")->minifota);
}

static void test_errtext(void **state)
{
    (void)state;
    assert_string_equal(cmd_quectel_net_errtext(CMD_QUECTEL_NET_E_OPEN_PDP),
                        "open PDP context failed");
    assert_string_equal(cmd_quectel_net_errtext(CMD_QUECTEL_NET_E_NOT_ALLOWED),
                        "operation not allowed");
    assert_string_equal(cmd_quectel_net_errtext(CMD_QUECTEL_NET_E_NO_APN), "APN not configured");
    assert_null(cmd_quectel_net_errtext(50));
    assert_null(cmd_quectel_net_errtext(550));
}

/* A booted, registered module of model name, not yet attached. */
static struct modem *test_modem(const char *name)
{
    struct modem *m = calloc(1, sizeof(*m));

    assert_non_null(m);
    m->model = model_find(name);
    assert_non_null(m->model);
    m->power = MODEM_ON;
    m->cfun = 1;
    m->radio.sim_present = true;
    m->radio.reg = RADIO_REG_HOME;
    return m;
}

static void test_attach_activates_default_bearer(void **state)
{
    struct modem *m = test_modem("EC200A-CN");

    (void)state;
    modem_set_attached(m, true);
    assert_true(m->attached);
    assert_true(m->pdp[1].active);
    assert_true(modem_ctx_up(m, 1));
    assert_false(modem_ctx_up(m, 2));
    /* a host-activated context, then the host deactivates the default bearer */
    m->pdp[2].active = true;
    m->pdp[1].active = false;
    /* staying attached does not bring the default bearer back ... */
    modem_set_attached(m, true);
    assert_false(m->pdp[1].active);
    assert_true(m->pdp[2].active);
    /* ... losing the attach drops every context, a new attach brings the default one only */
    modem_set_attached(m, false);
    assert_false(m->attached);
    for (int i = 0; i < MODEM_MAX_CIDS; i++)
        assert_false(m->pdp[i].active);
    modem_set_attached(m, true);
    assert_true(m->pdp[1].active);
    assert_false(m->pdp[2].active);
    free(m);
}

static void test_nb_default_bearer_is_cid_0(void **state)
{
    struct modem *m = test_modem("BC260Y-CN");

    (void)state;
    modem_set_attached(m, true);
    assert_true(m->pdp[0].active);
    assert_false(m->pdp[1].active);
    assert_true(modem_ctx_up(m, 0));
    free(m);
}

static void test_ctx_up_conditions(void **state)
{
    struct modem *m = test_modem("EC200A-CN");

    (void)state;
    modem_set_attached(m, true);
    assert_false(modem_ctx_up(m, -1));
    assert_false(modem_ctx_up(m, MODEM_MAX_CIDS));
    m->outage = true;
    assert_false(modem_ctx_up(m, 1));
    m->outage = false;
    m->radio.reg = RADIO_REG_ROAMING;
    assert_true(modem_ctx_up(m, 1));
    m->radio.reg = RADIO_REG_SEARCHING; /* the flags alone do not make a context usable */
    assert_false(modem_ctx_up(m, 1));
    m->radio.reg = RADIO_REG_HOME;
    m->cfun = 4;
    assert_false(modem_ctx_up(m, 1));
    m->cfun = 1;
    m->power = MODEM_BOOTING;
    assert_false(modem_ctx_up(m, 1));
    m->power = MODEM_ON;
    assert_true(modem_ctx_up(m, 1));
    m->attached = false;
    assert_false(modem_ctx_up(m, 1));
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables_sorted),
        cmocka_unit_test(test_errtext),
        cmocka_unit_test(test_attach_activates_default_bearer),
        cmocka_unit_test(test_nb_default_bearer_is_cid_0),
        cmocka_unit_test(test_ctx_up_conditions),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
