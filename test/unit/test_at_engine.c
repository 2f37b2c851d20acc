/*
 * Unit tests of the AT engine with a fake command table and a capture buffer as the port:
 * framing per ATV/ATQ/+CMEE, echo, line assembly, the dispatcher's form and arity checks,
 * pending commands with held URCs and input, and data mode.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "firmware/at_engine.h"

struct fake {
    char out[16384];
    size_t len;
    int cmee;
    int pending_calls;
    char data[256];
    size_t data_len;
};

static void fake_write(void *ctx, const void *buf, size_t len)
{
    struct fake *f = ctx;

    assert_true(f->len + len < sizeof(f->out));
    memcpy(f->out + f->len, buf, len);
    f->len += len;
    f->out[f->len] = 0;
}

static int h_ok(struct at_engine *e, const struct at_req *r, void *ctx)
{
    (void)ctx;
    at_info(e, "+OKC: %u", r->nargs);
    return AT_RES_OK;
}

static int h_e(struct at_engine *e, const struct at_req *r, void *ctx)
{
    (void)ctx;
    e->echo = r->has_num && r->num;
    return AT_RES_OK;
}

static int h_v(struct at_engine *e, const struct at_req *r, void *ctx)
{
    (void)ctx;
    e->verbose = !r->has_num || r->num;
    return AT_RES_OK;
}

static int h_cme(struct at_engine *e, const struct at_req *r, void *ctx)
{
    (void)e;
    (void)r;
    (void)ctx;
    return AT_CME_BAD_PARAM;
}

static int h_wait(struct at_engine *e, const struct at_req *r, void *ctx)
{
    struct fake *f = ctx;

    (void)e;
    (void)r;
    f->pending_calls++;
    return AT_RES_PENDING;
}

static int fake_sink(void *ctx, const uint8_t *buf, size_t len, bool done)
{
    struct fake *f = ctx;

    memcpy(f->data + f->data_len, buf, len);
    f->data_len += len;
    return done ? AT_RES_OK : AT_RES_PENDING;
}

static int h_data(struct at_engine *e, const struct at_req *r, void *ctx)
{
    long n;

    if (at_arg_int(&r->args[0], 1, 200, &n))
        return AT_CME_BAD_PARAM;
    at_raw(e, "> ", 2);
    at_data_begin(e, (size_t)n, fake_sink, ctx);
    return AT_RES_PENDING;
}

static const struct at_cmd cmds[] = {
    {"+CME", AT_F_EXEC, 0, 0, NULL, h_cme},
    {"+DATA", AT_F_SET, 1, 1, NULL, h_data},
    {"+OKC", AT_F_EXEC | AT_F_SET | AT_F_READ, 1, 3, "+OKC: (0-9)", h_ok},
    {"+WAIT", AT_F_EXEC, 0, 0, NULL, h_wait},
    {"E", AT_F_EXEC, 0, 0, NULL, h_e},
    {"V", AT_F_EXEC, 0, 0, NULL, h_v},
};
static const struct at_table table = {"fake", cmds, sizeof(cmds) / sizeof(cmds[0])};
static const struct at_table *const tables[] = {&table};

static void setup_engine(struct at_engine *e, struct fake *f)
{
    struct at_engine_cfg cfg = {
        .tables = tables,
        .ntables = 1,
        .handler_ctx = f,
        .write = fake_write,
        .write_ctx = f,
        .cmee = &f->cmee,
        .echo_default = true,
    };

    memset(f, 0, sizeof(*f));
    f->cmee = 1;
    at_init(e, &cfg);
}

static void feed(struct at_engine *e, const char *s)
{
    at_input(e, (const uint8_t *)s, strlen(s));
}

static void expect(struct fake *f, const char *want)
{
    assert_string_equal(f->out, want);
    f->len = 0;
    f->out[0] = 0;
}

static void test_table_sorted(void **state)
{
    (void)state;
    assert_int_equal(at_table_check(&table), 0);
}

static void test_echo_and_ok(void **state)
{
    struct at_engine e;
    struct fake f;

    (void)state;
    setup_engine(&e, &f);
    feed(&e, "AT\r");
    expect(&f, "AT\r\r\nOK\r\n");
    feed(&e, "ATE0\r");
    expect(&f, "ATE0\r\r\nOK\r\n");
    feed(&e, "AT\r\n");
    expect(&f, "\r\nOK\r\n");
    at_release(&e);
}

static void test_forms_and_arity(void **state)
{
    struct at_engine e;
    struct fake f;

    (void)state;
    setup_engine(&e, &f);
    feed(&e, "ATE0\r");
    f.len = 0;
    f.out[0] = 0;
    feed(&e, "AT+OKC=?\r");
    expect(&f, "\r\n+OKC: (0-9)\r\n\r\nOK\r\n");
    feed(&e, "AT+OKC=1,2\r");
    expect(&f, "\r\n+OKC: 2\r\n\r\nOK\r\n");
    feed(&e, "AT+OKC=1,2,3,4\r");
    expect(&f, "\r\n+CME ERROR: 50\r\n");
    feed(&e, "AT+WAIT?\r");
    expect(&f, "\r\nERROR\r\n");
    feed(&e, "AT+CME=?\r"); /* no static reply, no test handler: plain OK */
    expect(&f, "\r\nOK\r\n");
    feed(&e, "AT+NOPE\r");
    expect(&f, "\r\nERROR\r\n");
    f.cmee = 0;
    feed(&e, "AT+CME\r");
    expect(&f, "\r\nERROR\r\n");
    at_release(&e);
}

static void test_concat_and_numeric(void **state)
{
    struct at_engine e;
    struct fake f;

    (void)state;
    setup_engine(&e, &f);
    feed(&e, "ATE0;+OKC;+OKC=1\r");
    expect(&f, "ATE0;+OKC;+OKC=1\r\r\n+OKC: 0\r\n\r\n+OKC: 1\r\n\r\nOK\r\n");
    feed(&e, "ATV0\r");
    expect(&f, "0\r");
    feed(&e, "AT+OKC\r");
    expect(&f, "+OKC: 0\r\n0\r");
    feed(&e, "AT+CME\r");
    expect(&f, "+CME ERROR: 50\r\n");
    at_release(&e);
}

static void test_pending_holds_urcs_and_input(void **state)
{
    struct at_engine e;
    struct fake f;

    (void)state;
    setup_engine(&e, &f);
    feed(&e, "ATE0\r");
    f.len = 0;
    f.out[0] = 0;
    feed(&e, "AT+WAIT;+OKC\rAT+OKC=5\r");
    assert_int_equal(f.pending_calls, 1);
    expect(&f, "");
    at_urc(&e, "+URC: %d", 1);
    expect(&f, "");
    at_finish(&e, AT_RES_OK);
    /* the rest of the line, its OK, then the held URC, then the held line */
    expect(&f, "\r\n+OKC: 0\r\n\r\nOK\r\n\r\n+URC: 1\r\n\r\n+OKC: 1\r\n\r\nOK\r\n");
    at_urc(&e, "+URC: %d", 2);
    expect(&f, "\r\n+URC: 2\r\n");
    at_release(&e);
}

static void test_data_mode(void **state)
{
    struct at_engine e;
    struct fake f;

    (void)state;
    setup_engine(&e, &f);
    feed(&e, "ATE0\r");
    f.len = 0;
    f.out[0] = 0;
    feed(&e, "AT+DATA=5\r");
    expect(&f, "> ");
    feed(&e, "ab\r");
    feed(&e, "\ncdAT\r");
    assert_int_equal(f.data_len, 5);
    assert_memory_equal(f.data, "ab\r\nc", 5);
    /* the transfer's OK, then the line that followed the data */
    expect(&f, "\r\nOK\r\n\r\nOK\r\n");
    at_release(&e);
}

static void test_bytes_before_the_prompt_are_lost(void **state)
{
    struct at_engine e;
    struct fake f;

    (void)state;
    setup_engine(&e, &f);
    feed(&e, "ATE0\r");
    f.len = 0;
    f.out[0] = 0;
    /* the host did not wait for the prompt: "xyz" is gone, the next 5 bytes are the data */
    feed(&e, "AT+DATA=5\rxyz");
    expect(&f, "> ");
    assert_int_equal(e.dropped, 3);
    feed(&e, "12345");
    assert_int_equal(f.data_len, 5);
    assert_memory_equal(f.data, "12345", 5);
    expect(&f, "\r\nOK\r\n");
    at_release(&e);
}

static void test_line_limit_and_repeat(void **state)
{
    struct at_engine e;
    struct fake f;
    char big[AT_LINE_MAX + 100];

    (void)state;
    setup_engine(&e, &f);
    feed(&e, "ATE0\r");
    f.len = 0;
    f.out[0] = 0;
    memset(big, 'X', sizeof(big));
    memcpy(big, "AT+", 3);
    big[sizeof(big) - 2] = '\r';
    big[sizeof(big) - 1] = 0;
    feed(&e, big);
    expect(&f, "\r\nERROR\r\n");
    feed(&e, "AT+OKC=7\r");
    expect(&f, "\r\n+OKC: 1\r\n\r\nOK\r\n");
    feed(&e, "A/");
    expect(&f, "\r\n+OKC: 1\r\n\r\nOK\r\n");
    feed(&e, "AT+OKX\b\bKC\r");
    expect(&f, "\r\n+OKC: 0\r\n\r\nOK\r\n");
    at_release(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_sorted),
        cmocka_unit_test(test_echo_and_ok),
        cmocka_unit_test(test_forms_and_arity),
        cmocka_unit_test(test_concat_and_numeric),
        cmocka_unit_test(test_pending_holds_urcs_and_input),
        cmocka_unit_test(test_data_mode),
        cmocka_unit_test(test_bytes_before_the_prompt_are_lost),
        cmocka_unit_test(test_line_limit_and_repeat),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
