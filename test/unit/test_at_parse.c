/*
 * test_at_parse.c - table-driven cmocka tests of the pure AT line parser (firmware/at_parse.c).
 *
 * One table of lines with the expected return code and the expected commands (names, forms,
 * numbers, argument kinds and texts); each row runs as its own cmocka test, on a heap copy of
 * exactly len bytes so that ASan catches any read past the line. Then the line-length limits
 * and the at_arg_int / at_arg_uint64 / at_arg_is helpers, also from tables.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "firmware/at_parse.h"

/* An expected argument: kind, text and length (texts may hold NUL, so len is explicit). */
struct tc_arg {
    enum at_arg_kind kind;
    const char *text;
    size_t len;
};

/* An expected command; each field compared with the struct at_req field of the same name. */
struct tc_cmd {
    const char *name; /* NULL: this slot is not checked */
    bool basic;
    bool has_num;
    long num;
    enum at_form form;
    unsigned nargs;
    struct tc_arg args[AT_PARSE_MAX_ARGS];
    bool semi; /* dial_semicolon */
};

/* A row: the line, the expected return code and command count, then the commands. */
struct tc_line {
    const char *line;
    size_t len;
    int rc;
    unsigned n;
    struct tc_cmd cmds[4]; /* the first commands of the line; rows with more check only these */
};

/* sizeof, not strlen: lines and texts may hold NUL bytes on purpose. */
/*
 * LN(line) gives line and length; B/Q/OM are a BARE, quoted or omitted arg; BAS/BN a basic
 * command without/with a number; EXT an extended command (name, form, nargs, args...); SREG an
 * S-register (number, form, nargs, args...); DIAL a D command (text, ended by ';').
 */
// clang-format off
#define LN(s)   s, sizeof(s) - 1
#define B(t)    {AT_ARG_BARE, t, sizeof(t) - 1}
#define Q(t)    {AT_ARG_STR, t, sizeof(t) - 1}
#define OM      {AT_ARG_OMITTED, "", 0}
#define BAS(nm) {.name = nm, .basic = true}
#define BN(nm, v)                                                                                  \
    {                                                                                              \
        .name = nm, .basic = true, .has_num = true, .num = v                                       \
    }
#define EXT(nm, f, na, ...)                                                                        \
    {                                                                                              \
        .name = nm, .form = AT_FORM_##f, .nargs = na, .args = {__VA_ARGS__}                        \
    }
#define SREG(v, f, na, ...)                                                                        \
    {                                                                                              \
        .name = "S" #v, .basic = true, .has_num = true, .num = v, .form = AT_FORM_##f,             \
        .nargs = na, .args = {__VA_ARGS__}                                                         \
    }
#define DIAL(t, sm)                                                                                \
    {                                                                                              \
        .name = "D", .basic = true, .nargs = 1, .args = {B(t)}, .semi = sm                         \
    }
// clang-format on

/* Error rows check only rc and that n is 0: an error leaves no commands behind. */
static const struct tc_line tc_lines[] = {
    /* The examples of the brief, in its order. */
    {LN("AT"), 0, 0, {{0}}},
    {LN("ATE0"), 0, 1, {BN("E", 0)}},
    {LN("ATE"), 0, 1, {BAS("E")}},
    {LN("ATI"), 0, 1, {BAS("I")}},
    {LN("ATE1V0"), 0, 2, {BN("E", 1), BN("V", 0)}},
    {LN("ATS3?"), 0, 1, {SREG(3, READ, 0)}},
    {LN("ATS3=13"), 0, 1, {SREG(3, SET, 1, B("13"))}},
    {LN("AT&W"), 0, 1, {BAS("&W")}},
    {LN("AT+CGMR"), 0, 1, {EXT("+CGMR", EXEC, 0)}},
    {LN("AT+CSCS=?"), 0, 1, {EXT("+CSCS", TEST, 0)}},
    {LN("AT+CMEE?"), 0, 1, {EXT("+CMEE", READ, 0)}},
    {LN("AT+CMEE=2;+CGMR"), 0, 2, {EXT("+CMEE", SET, 1, B("2")), EXT("+CGMR", EXEC, 0)}},
    {LN("AT+CMEE=2;+CGMR;"), 0, 2, {EXT("+CMEE", SET, 1, B("2")), EXT("+CGMR", EXEC, 0)}},
    {LN("ATE0;+CMEE=1"), 0, 2, {BN("E", 0), EXT("+CMEE", SET, 1, B("1"))}},
    {LN("AT+QICSGP=2,1,\"cmnet\",\"\",1"),
     0,
     1,
     {EXT("+QICSGP", SET, 5, B("2"), B("1"), Q("cmnet"), Q(""), B("1"))}},
    {LN("AT+QFOTADL=\"FILE:1024\",1,,50"),
     0,
     1,
     {EXT("+QFOTADL", SET, 4, Q("FILE:1024"), B("1"), OM, B("50"))}},
    {LN("AT+UPGRADE=\"PERIOD\",4294967296"),
     0,
     1,
     {EXT("+UPGRADE", SET, 2, Q("PERIOD"), B("4294967296"))}},
    {LN("AT+MFWDLOAD=0,4,0A0B0C0D"),
     0,
     1,
     {EXT("+MFWDLOAD", SET, 3, B("0"), B("4"), B("0A0B0C0D"))}},
    {LN("AT+MFWDLOAD=0,4,\"0A0B0C0D\""),
     0,
     1,
     {EXT("+MFWDLOAD", SET, 3, B("0"), B("4"), Q("0A0B0C0D"))}},
    {LN("AT + CSQ"), 0, 1, {EXT("+CSQ", EXEC, 0)}},
    {LN("AT+FOTAIP =1.2.3.4,80"), 0, 1, {EXT("+FOTAIP", SET, 2, B("1.2.3.4"), B("80"))}},
    {LN("AT+QCFG=\"fota/cid\",1"), 0, 1, {EXT("+QCFG", SET, 2, Q("fota/cid"), B("1"))}},
    {LN("at+qfotadl=\"http://h:80/a;b.zip\",1,,50"),
     0,
     1,
     {EXT("+QFOTADL", SET, 4, Q("http://h:80/a;b.zip"), B("1"), OM, B("50"))}},

    /* Prefix case, basic commands run together, S-registers. */
    {LN("at"), 0, 0, {{0}}},
    {LN("aT"), 0, 0, {{0}}},
    {LN("At "), 0, 0, {{0}}},
    {LN("ATI0"), 0, 1, {BN("I", 0)}},
    {LN("ATE0V1Q0"), 0, 3, {BN("E", 0), BN("V", 1), BN("Q", 0)}},
    {LN("ATE0 V1  Q0"), 0, 3, {BN("E", 0), BN("V", 1), BN("Q", 0)}},
    {LN("ate0v1x4z"), 0, 4, {BN("E", 0), BN("V", 1), BN("X", 4), BAS("Z")}},
    {LN("AT&F0&d2&w"), 0, 3, {BN("&F", 0), BN("&D", 2), BAS("&W")}},
    {LN("ATE0;"), 0, 1, {BN("E", 0)}},
    {LN("ATS3=?"), 0, 1, {SREG(3, TEST, 0)}},
    {LN("ATS003?"), 0, 1, {SREG(3, READ, 0)}},
    {LN("ats0=1v1"), 0, 2, {SREG(0, SET, 1, B("1")), BN("V", 1)}},
    {LN("ATS7= 60"), 0, 1, {SREG(7, SET, 1, B("60"))}},
    {LN("ATS3"), 0, 1, {SREG(3, EXEC, 0)}},
    {LN("ATE9223372036854775807"), 0, 1, {BN("E", LONG_MAX)}},
    {LN("ATE0+CMEE=1"), 0, 2, {BN("E", 0), EXT("+CMEE", SET, 1, B("1"))}},
    {LN("AT+CMEE=1;E0;V1"), 0, 3, {EXT("+CMEE", SET, 1, B("1")), BN("E", 0), BN("V", 1)}},

    /* Dial keeps its string verbatim up to ';'. */
    {LN("ATD*99#"), 0, 1, {DIAL("*99#", false)}},
    {LN("ATD*99***1#"), 0, 1, {DIAL("*99***1#", false)}},
    {LN("ATD10086;"), 0, 1, {DIAL("10086", true)}},
    {LN("atd>\"a;b\";+CSQ"), 0, 2, {DIAL(">\"a;b\"", true), EXT("+CSQ", EXEC, 0)}},

    /* Extended names: prefixes, name characters, case folding of names only, limits. */
    {LN("AT+cgmr"), 0, 1, {EXT("+CGMR", EXEC, 0)}},
    {LN("AT^sysinfo"), 0, 1, {EXT("^SYSINFO", EXEC, 0)}},
    {LN("AT$QCPDPP?"), 0, 1, {EXT("$QCPDPP", READ, 0)}},
    {LN("AT%x=1"), 0, 1, {EXT("%X", SET, 1, B("1"))}},
    {LN("AT+a.b/c:d_e-f!g%h=1"), 0, 1, {EXT("+A.B/C:D_E-F!G%H", SET, 1, B("1"))}},
    {LN("AT+qcfg=\"FoTa/Cid\",Hello"), 0, 1, {EXT("+QCFG", SET, 2, Q("FoTa/Cid"), B("Hello"))}},
    {LN("AT+ABCDEFGHIJKLMNOPQRSTUV"), 0, 1, {EXT("+ABCDEFGHIJKLMNOPQRSTUV", EXEC, 0)}},
    {LN("AT+ABCDEFGHIJKLMNOPQRSTUVW"), -E2BIG, 0, {{0}}},
    {LN("AT+CSQ  "), 0, 1, {EXT("+CSQ", EXEC, 0)}},
    {LN("AT+CSQ ;+CGMR ; "), 0, 2, {EXT("+CSQ", EXEC, 0), EXT("+CGMR", EXEC, 0)}},
    {LN("AT+X = ?"), 0, 1, {EXT("+X", TEST, 0)}},
    {LN("AT+X ?"), 0, 1, {EXT("+X", READ, 0)}},

    /* Arguments: omitted, empty string, escapes, separators inside quotes, blanks. */
    {LN("AT+X=1,"), 0, 1, {EXT("+X", SET, 2, B("1"), OM)}},
    {LN("AT+X=,"), 0, 1, {EXT("+X", SET, 2, OM, OM)}},
    {LN("AT+X=1,,"), 0, 1, {EXT("+X", SET, 3, B("1"), OM, OM)}},
    {LN("AT+X=,;+Y"), 0, 2, {EXT("+X", SET, 2, OM, OM), EXT("+Y", EXEC, 0)}},
    {LN("AT+X=\"\""), 0, 1, {EXT("+X", SET, 1, Q(""))}},
    {LN("AT+X=\" a,b;c \""), 0, 1, {EXT("+X", SET, 1, Q(" a,b;c "))}},
    {LN("AT+X=\"\\22q\\22\""), 0, 1, {EXT("+X", SET, 1, Q("\"q\""))}},
    {LN("AT+X=\"C:\\5Cdir\""), 0, 1, {EXT("+X", SET, 1, Q("C:\\dir"))}},
    {LN("AT+X=\"\\5c\\4a\""), 0, 1, {EXT("+X", SET, 1, Q("\\J"))}},
    {LN("AT+X=\"a\\\"b\""), 0, 1, {EXT("+X", SET, 1, Q("a\"b"))}},
    {LN("AT+X=\"\\q\\2\""), 0, 1, {EXT("+X", SET, 1, Q("q2"))}},
    {LN("AT+X=\"\\2g\""), 0, 1, {EXT("+X", SET, 1, Q("2g"))}},
    {LN("AT+X=\"\\00z\""), 0, 1, {EXT("+X", SET, 1, Q("\0z"))}},
    {LN("AT+X=\"\\FF\""), 0, 1, {EXT("+X", SET, 1, Q("\xff"))}},
    {LN("AT+X= 1 , abc def ,\"s\" ;+Y"),
     0,
     2,
     {EXT("+X", SET, 3, B("1"), B("abc def"), Q("s")), EXT("+Y", EXEC, 0)}},
    {LN("AT+X=\t-5\t"), 0, 1, {EXT("+X", SET, 1, B("-5"))}},
    {LN("AT+X=\"a\" ,1"), 0, 1, {EXT("+X", SET, 2, Q("a"), B("1"))}},
    {LN("AT+X=\xe4\xb8\xad,\"\xe6\x96\x87\""),
     0,
     1,
     {EXT("+X", SET, 2, B("\xe4\xb8\xad"), Q("\xe6\x96\x87"))}},
    {LN("AT+X=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16"),
     0,
     1,
     {EXT("+X", SET, 16, B("1"), B("2"), B("3"), B("4"), B("5"), B("6"), B("7"), B("8"), B("9"),
          B("10"), B("11"), B("12"), B("13"), B("14"), B("15"), B("16"))}},
    {LN("AT+X=,,,,,,,,,,,,,,,"),
     0,
     1,
     {EXT("+X", SET, 16, OM, OM, OM, OM, OM, OM, OM, OM, OM, OM, OM, OM, OM, OM, OM, OM)}},
    {LN("ATE0E1E0E1E0E1E0E1E0E1E0E1E0E1E0E1"), 0, 16, {BN("E", 0), BN("E", 1)}},

    /* Must fail: quoting, limits (17 args, 17 commands), NUL bytes, prefix, names, numbers. */
    {LN("AT+CGMR=\"abc"), -EINVAL, 0, {{0}}},
    {LN("AT+X=\"abc\\"), -EINVAL, 0, {{0}}},
    {LN("AT+X=\"abc\\\""), -EINVAL, 0, {{0}}},
    {LN("AT+X=\"a\"b"), -EINVAL, 0, {{0}}},
    {LN("AT+X=a\"b\""), -EINVAL, 0, {{0}}},
    {LN("AT+X=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"), -E2BIG, 0, {{0}}},
    {LN("AT+X=,,,,,,,,,,,,,,,,"), -E2BIG, 0, {{0}}},
    {LN("ATE0E1E0E1E0E1E0E1E0E1E0E1E0E1E0E1E0"), -E2BIG, 0, {{0}}},
    {LN("AT+A;+A;+A;+A;+A;+A;+A;+A;+A;+A;+A;+A;+A;+A;+A;+A;+A"), -E2BIG, 0, {{0}}},
    {LN("AT+C\0MEE"), -EINVAL, 0, {{0}}},
    {LN("AT+X=\"a\0\""), -EINVAL, 0, {{0}}},
    {LN("XYZ"), -ENOMSG, 0, {{0}}},
    {LN(""), -ENOMSG, 0, {{0}}},
    {LN("A"), -ENOMSG, 0, {{0}}},
    {LN(" AT"), -ENOMSG, 0, {{0}}},
    {LN("AX+CSQ"), -ENOMSG, 0, {{0}}},
    {LN("AT+=1"), -EINVAL, 0, {{0}}},
    {LN("AT+"), -EINVAL, 0, {{0}}},
    {LN("AT+1A"), -EINVAL, 0, {{0}}},
    {LN("ATE99999999999999999999"), -EINVAL, 0, {{0}}},
    {LN("ATE9223372036854775808"), -EINVAL, 0, {{0}}},
    {LN("ATS99999999999999999999?"), -EINVAL, 0, {{0}}},
    {LN("AT+C MEE=1"), -EINVAL, 0, {{0}}},
    {LN("AT+CMEE="), -EINVAL, 0, {{0}}},
    {LN("AT+CMEE= ;+CSQ"), -EINVAL, 0, {{0}}},
    {LN("ATS3="), -EINVAL, 0, {{0}}},
    {LN("ATS3=x"), -EINVAL, 0, {{0}}},
    {LN("ATS=1"), -EINVAL, 0, {{0}}},
    {LN("ATS?"), -EINVAL, 0, {{0}}},
    {LN("AT;"), -EINVAL, 0, {{0}}},
    {LN("AT+CSQ;;"), -EINVAL, 0, {{0}}},
    {LN("AT+CSQ+CGMR"), -EINVAL, 0, {{0}}},
    {LN("AT+CSQ?1"), -EINVAL, 0, {{0}}},
    {LN("AT+CSQ=?1"), -EINVAL, 0, {{0}}},
    {LN("AT+CSQ\r"), -EINVAL, 0, {{0}}},
    {LN("AT&1"), -EINVAL, 0, {{0}}},
    {LN("AT&"), -EINVAL, 0, {{0}}},
    {LN("AT0"), -EINVAL, 0, {{0}}},
    {LN("ATE0=1"), -EINVAL, 0, {{0}}},
    {LN("ATE?"), -EINVAL, 0, {{0}}},
    {LN("ATD\"abc"), -EINVAL, 0, {{0}}},
    {LN("AT\xff"), -EINVAL, 0, {{0}}},
};

/* Allocate a result on the heap (it is ~11 KiB) so ASan sees its bounds too. */
static struct at_parse_result *tc_new_result(void)
{
    struct at_parse_result *res = calloc(1, sizeof(*res));

    assert_non_null(res);
    return res;
}

/* Every arg must point into the arena and end with a NUL there. */
static void tc_check_arg_in_arena(const struct at_parse_result *res, const struct at_arg *a)
{
    const char *lo = res->arena, *hi = res->arena + res->used;

    assert_true(a->s >= lo && a->s + a->len < hi);
    assert_int_equal(a->s[a->len], '\0');
}

/* Compare one parsed command with its table entry, args byte by byte including the NUL. */
static void tc_check_cmd(const struct at_parse_result *res, const struct at_req *r,
                         const struct tc_cmd *want)
{
    unsigned k;

    assert_string_equal(r->name, want->name);
    assert_int_equal(r->basic, want->basic);
    assert_int_equal(r->has_num, want->has_num);
    if (want->has_num)
        assert_int_equal(r->num, want->num);
    assert_int_equal(r->form, want->form);
    assert_int_equal(r->dial_semicolon, want->semi);
    assert_int_equal(r->nargs, want->nargs);
    for (k = 0; k < r->nargs; k++) {
        const struct at_arg *a = &r->args[k];

        tc_check_arg_in_arena(res, a);
        assert_int_equal(a->kind, want->args[k].kind);
        assert_int_equal(a->len, want->args[k].len);
        assert_memory_equal(a->s, want->args[k].text, a->len + 1);
    }
}

/* One table row; the line is copied to a heap block of exactly len bytes (no NUL after it). */
static void test_line(void **state)
{
    const struct tc_line *t = *state;
    struct at_parse_result *res = tc_new_result();
    char *buf = malloc(t->len ? t->len : 1);
    unsigned i;
    int rc;

    assert_non_null(buf);
    memcpy(buf, t->line, t->len);
    rc = at_parse_line(buf, t->len, res);
    assert_int_equal(rc, t->rc);
    assert_int_equal(res->n, t->n);
    assert_true(res->used <= sizeof(res->arena));
    for (i = 0; i < t->n && i < 4 && t->cmds[i].name != NULL; i++)
        tc_check_cmd(res, &res->reqs[i], &t->cmds[i]);
    free(buf);
    free(res);
}

/* A line exactly AT_PARSE_MAX_LINE long parses; one byte more is -E2BIG, before any syntax. */
static void test_line_limit(void **state)
{
    struct at_parse_result *res = tc_new_result();
    size_t len = AT_PARSE_MAX_LINE;
    char *buf = malloc(len + 1);

    (void)state;
    assert_non_null(buf);
    memcpy(buf, "AT+X=\"", 6);
    memset(buf + 6, 'h', len - 7);
    buf[len - 1] = '"';
    assert_int_equal(at_parse_line(buf, len, res), 0);
    assert_int_equal(res->n, 1);
    assert_int_equal(res->reqs[0].args[0].kind, AT_ARG_STR);
    assert_int_equal(res->reqs[0].args[0].len, len - 7);

    /* The same length as a bare hex payload, as AT+MFWDLOAD sends it. */
    buf[5] = 'A';
    buf[len - 1] = 'B';
    assert_int_equal(at_parse_line(buf, len, res), 0);
    assert_int_equal(res->reqs[0].args[0].kind, AT_ARG_BARE);
    assert_int_equal(res->reqs[0].args[0].len, len - 5);

    buf[len] = 'C';
    assert_int_equal(at_parse_line(buf, len + 1, res), -E2BIG);
    assert_int_equal(res->n, 0);
    free(buf);
    free(res);
}

/*
 * The arena's worst cases at the line limit: 16 commands x 16 bare args (every arg costs a
 * NUL), and 16 x 16 single-char quoted args. Neither may overflow nor be refused.
 */
static void test_arena_worst_case(void **state)
{
    struct at_parse_result *res = tc_new_result();
    char *buf = malloc(AT_PARSE_MAX_LINE);
    size_t len, pad;
    unsigned c, a;
    int quoted;

    (void)state;
    assert_non_null(buf);
    for (quoted = 0; quoted < 2; quoted++) {
        len = 0;
        buf[len++] = 'A';
        buf[len++] = 'T';
        for (c = 0; c < AT_PARSE_MAX_CMDS; c++) {
            if (c > 0)
                buf[len++] = ';';
            memcpy(buf + len, "+A=", 3);
            len += 3;
            for (a = 0; a < AT_PARSE_MAX_ARGS; a++) {
                if (a > 0)
                    buf[len++] = ',';
                if (quoted)
                    buf[len++] = '"';
                buf[len++] = 'v';
                if (quoted)
                    buf[len++] = '"';
            }
        }
        /* Pad the last arg so the line is exactly at the limit. */
        pad = AT_PARSE_MAX_LINE - len;
        if (quoted) {
            memmove(buf + len - 1 + pad, buf + len - 1, 1);
            memset(buf + len - 1, 'w', pad);
        } else {
            memset(buf + len, 'w', pad);
        }
        len = AT_PARSE_MAX_LINE;
        assert_int_equal(at_parse_line(buf, len, res), 0);
        assert_int_equal(res->n, AT_PARSE_MAX_CMDS);
        assert_int_equal(res->reqs[15].nargs, AT_PARSE_MAX_ARGS);
        assert_int_equal(res->reqs[15].args[15].len, 1 + pad);
        assert_true(res->used <= sizeof(res->arena));
        for (c = 0; c < res->n; c++)
            for (a = 0; a < res->reqs[c].nargs; a++)
                tc_check_arg_in_arena(res, &res->reqs[c].args[a]);
    }
    free(buf);
    free(res);
}

/* NULL arguments, and an error after a success leaves no stale commands behind. */
static void test_misuse(void **state)
{
    struct at_parse_result *res = tc_new_result();

    (void)state;
    assert_int_equal(at_parse_line(NULL, 0, res), -EINVAL);
    assert_int_equal(at_parse_line("AT", 2, NULL), -EINVAL);
    assert_int_equal(at_parse_line("AT+CSQ;+CGMR", 12, res), 0);
    assert_int_equal(res->n, 2);
    assert_int_equal(at_parse_line("AT+CSQ;+CG MR", 13, res), -EINVAL);
    assert_int_equal(res->n, 0);
    /* len is obeyed even when the buffer goes on: only "AT+CSQ" is seen. */
    assert_int_equal(at_parse_line("AT+CSQ=\"unterminated", 6, res), 0);
    assert_int_equal(res->reqs[0].form, AT_FORM_EXEC);
    free(res);
}

/* at_arg_int rows: the arg, the range asked for, the expected rc and value. */
struct tc_int {
    struct tc_arg arg;
    long min, max;
    int rc;
    long val;
};

static const struct tc_int tc_ints[] = {
    {B("0"), 0, 1, 0, 0},
    {B("1"), 0, 1, 0, 1},
    {B("2"), 0, 1, -ERANGE, 0},
    {B("-1"), 0, 1, -ERANGE, 0},
    {B("-1"), -5, 5, 0, -1},
    {B("+7"), 0, 10, 0, 7},
    {B("007"), 0, 10, 0, 7},
    {Q("50"), 0, 100, 0, 50},
    {Q("-50"), -100, 100, 0, -50},
    {Q(" 50"), 0, 100, -EINVAL, 0},
    {Q(""), 0, 100, -EINVAL, 0},
    {OM, 0, 100, -ENOENT, 0},
    {B("-"), -5, 5, -EINVAL, 0},
    {B("+"), -5, 5, -EINVAL, 0},
    {B("1a"), 0, 100, -EINVAL, 0},
    {B("0x10"), 0, 100, -EINVAL, 0},
    {B("0A0B"), 0, 100000, -EINVAL, 0},
    {B("1.5"), 0, 100, -EINVAL, 0},
    {Q("1\0"), 0, 100, -EINVAL, 0},
    {B("9223372036854775807"), LONG_MIN, LONG_MAX, 0, LONG_MAX},
    {B("9223372036854775808"), LONG_MIN, LONG_MAX, -ERANGE, 0},
    {B("-9223372036854775808"), LONG_MIN, LONG_MAX, 0, LONG_MIN},
    {B("-9223372036854775809"), LONG_MIN, LONG_MAX, -ERANGE, 0},
    {B("18446744073709551616"), LONG_MIN, LONG_MAX, -ERANGE, 0},
    {B("99999999999999999999999999999999"), LONG_MIN, LONG_MAX, -ERANGE, 0},
    {B("99999999999999999999999999999999x"), LONG_MIN, LONG_MAX, -EINVAL, 0},
    {B("00000000000000000000000000000042"), 0, 100, 0, 42},
    {B("4294967296"), 0, 4294967295L, -ERANGE, 0},
    {B("4294967295"), 0, 4294967295L, 0, 4294967295L},
};

static void test_arg_int(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(tc_ints) / sizeof(tc_ints[0]); i++) {
        const struct tc_int *t = &tc_ints[i];
        struct at_arg a = {t->arg.kind, t->arg.text, t->arg.len};
        long v = 12345;
        int rc = at_arg_int(&a, t->min, t->max, &v);

        if (rc != t->rc)
            fail_msg("at_arg_int row %zu (%s): rc %d, want %d", i, t->arg.text, rc, t->rc);
        assert_int_equal(v, t->rc == 0 ? t->val : 12345); /* untouched on error */
    }
    assert_int_equal(at_arg_int(NULL, 0, 1, NULL), -EINVAL);
}

/* at_arg_uint64 rows, as for at_arg_int; 2^32 is the case AT+UPGRADE="PERIOD" needs. */
struct tc_u64 {
    struct tc_arg arg;
    uint64_t min, max;
    int rc;
    uint64_t val;
};

static const struct tc_u64 tc_u64s[] = {
    {B("4294967296"), 0, UINT64_MAX, 0, 4294967296ULL},
    {Q("4294967296"), 0, UINT64_MAX, 0, 4294967296ULL},
    {B("4294967296"), 0, 4294967295ULL, -ERANGE, 0},
    {B("18446744073709551615"), 0, UINT64_MAX, 0, UINT64_MAX},
    {B("18446744073709551616"), 0, UINT64_MAX, -ERANGE, 0},
    {B("184467440737095516150"), 0, UINT64_MAX, -ERANGE, 0},
    {B("-0"), 0, 10, 0, 0},
    {B("-1"), 0, 10, -ERANGE, 0},
    {B("+5"), 0, 10, 0, 5},
    {B("5"), 6, 10, -ERANGE, 0},
    {OM, 0, 10, -ENOENT, 0},
    {B("x"), 0, 10, -EINVAL, 0},
    {B("0x1"), 0, 10, -EINVAL, 0},
};

static void test_arg_uint64(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(tc_u64s) / sizeof(tc_u64s[0]); i++) {
        const struct tc_u64 *t = &tc_u64s[i];
        struct at_arg a = {t->arg.kind, t->arg.text, t->arg.len};
        uint64_t v = 12345;
        int rc = at_arg_uint64(&a, t->min, t->max, &v);

        if (rc != t->rc)
            fail_msg("at_arg_uint64 row %zu (%s): rc %d, want %d", i, t->arg.text, rc, t->rc);
        assert_true(v == (t->rc == 0 ? t->val : 12345));
    }
    assert_int_equal(at_arg_uint64(NULL, 0, 1, NULL), -EINVAL);
}

/* at_arg_is on args taken from a real parse, so kinds and arena pointers are the parser's. */
static void test_arg_is(void **state)
{
    struct at_parse_result *res = tc_new_result();
    const struct at_arg *a = res->reqs[0].args;
    static const char line[] = "AT+UPGRADE=\"Period\",url,,\"\",\"ke\\00y\"";

    (void)state;
    assert_int_equal(at_parse_line(line, sizeof(line) - 1, res), 0);
    assert_int_equal(res->reqs[0].nargs, 5);
    assert_true(at_arg_is(&a[0], "PERIOD"));
    assert_true(at_arg_is(&a[0], "period"));
    assert_false(at_arg_is(&a[0], "PERIO"));
    assert_false(at_arg_is(&a[0], "PERIODS"));
    assert_true(at_arg_is(&a[1], "URL"));
    assert_false(at_arg_is(&a[2], ""));   /* omitted is not a word */
    assert_true(at_arg_is(&a[3], ""));    /* "" is the empty word */
    assert_false(at_arg_is(&a[4], "ke")); /* the embedded NUL does not end the arg */
    assert_false(at_arg_is(&a[0], NULL));
    assert_false(at_arg_is(NULL, "x"));
    free(res);
}

/*
 * The table rows become one cmocka test each (named "lineNNN <line>", so a failure names its
 * row), followed by the fixed tests; cmocka's macros want a static array, hence the runtime one.
 */
/* Hex payloads: OneMO's AT+MFWDLOAD=<off>,<len>,<hex> at its documented 512-byte maximum. */
static void test_arg_hex(void **state)
{
    static struct at_parse_result r;
    char line[1200];
    uint8_t out[512];
    int n = snprintf(line, sizeof(line), "AT+MFWDLOAD=0,512,");

    (void)state;
    for (int i = 0; i < 512; i++)
        n += snprintf(line + n, sizeof(line) - (size_t)n, i % 2 ? "%02x" : "%02X", i & 0xff);
    assert_int_equal(at_parse_line(line, (size_t)n, &r), 0);
    assert_int_equal(r.reqs[0].args[2].kind, AT_ARG_BARE);
    assert_int_equal(at_arg_hex(&r.reqs[0].args[2], 512, out, sizeof(out)), 0);
    for (int i = 0; i < 512; i++)
        assert_int_equal(out[i], i & 0xff);
    assert_int_equal(at_arg_hex(&r.reqs[0].args[2], 511, out, sizeof(out)), -EMSGSIZE);
    assert_int_equal(at_arg_hex(&r.reqs[0].args[2], 512, out, 100), -ENOSPC);
    assert_int_equal(at_parse_line(LN("AT+X=\"0aFf\",abc,0g,,\"\""), &r), 0);
    assert_int_equal(at_arg_hex(&r.reqs[0].args[0], 2, out, 2), 0);
    assert_int_equal(out[0], 0x0a);
    assert_int_equal(out[1], 0xff);
    assert_int_equal(at_arg_hex(&r.reqs[0].args[1], 1, out, 2), -EINVAL); /* odd */
    assert_int_equal(at_arg_hex(&r.reqs[0].args[2], 1, out, 2), -EINVAL); /* not hex */
    assert_int_equal(at_arg_hex(&r.reqs[0].args[3], 0, out, 2), -ENOENT);
    assert_int_equal(at_arg_hex(&r.reqs[0].args[4], 0, out, 0), 0);     /* "" is 0 bytes */
    assert_int_equal(at_arg_hex(NULL, 0, out, 0), -EINVAL);
}

int main(void)
{
    size_t nrows = sizeof(tc_lines) / sizeof(tc_lines[0]);
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_line_limit), cmocka_unit_test(test_arena_worst_case),
        cmocka_unit_test(test_misuse),     cmocka_unit_test(test_arg_int),
        cmocka_unit_test(test_arg_uint64), cmocka_unit_test(test_arg_is),
        cmocka_unit_test(test_arg_hex),
    };
    size_t nfixed = sizeof(fixed) / sizeof(fixed[0]);
    struct CMUnitTest *tests = calloc(nrows + nfixed, sizeof(*tests));
    char(*names)[64] = calloc(nrows, sizeof(*names));
    size_t i, k;
    int rc;

    if (tests == NULL || names == NULL)
        return 1;
    /* One test per row, named after its line with unprintable bytes shown as '.'. */
    for (i = 0; i < nrows; i++) {
        int n = snprintf(names[i], sizeof(names[i]), "line%03zu ", i);

        for (k = 0; k < tc_lines[i].len && (size_t)n < sizeof(names[i]) - 1; k++) {
            unsigned char ch = (unsigned char)tc_lines[i].line[k];

            names[i][n++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '.';
        }
        names[i][n] = '\0';
        tests[i] = (struct CMUnitTest){names[i], test_line, NULL, NULL, (void *)&tc_lines[i]};
    }
    memcpy(tests + nrows, fixed, sizeof(fixed));
    rc = _cmocka_run_group_tests("at_parse", tests, nrows + nfixed, NULL, NULL);
    free(names);
    free(tests);
    return rc;
}
